//! The relay's index of peers and content, in SQLite (a file in the data directory, the default)
//! or Postgres, through sqlx's Any driver with the same portable SQL and migrations.

use std::time::{SystemTime, UNIX_EPOCH};

use kinema_chain::Hash;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Row};

use kinema_chain::Address;

use crate::api::{Content, Denied, Peer, Upload, UploadState, Video};

/// What went wrong with the database.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// Connecting or migrating failed.
    #[error("database {url}: {why}")]
    Open {
        /// Where (without a password).
        url: String,
        /// The reason.
        why: String,
    },
    /// A query failed.
    #[error("database: {0}")]
    Query(#[from] sqlx::Error),
    /// An account would hold more than its quota.
    #[error("account {account} holds {used} of its {quota} bytes; this needs {more} more")]
    OverQuota {
        /// The account.
        account: Address,
        /// What it holds.
        used: u64,
        /// What it may hold.
        quota: u64,
        /// What the write adds.
        more: u64,
    },
    /// A row holds what this relay did not write.
    #[error("database: content id {id:?} is not a blake3 hash")]
    Corrupt {
        /// The id found.
        id: String,
    },
}

/// The index.
#[derive(Debug, Clone)]
pub struct Db {
    pool: AnyPool,
}

/// Now, in Unix seconds.
pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// `url` without its password, for messages.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let user = &url[scheme + 3..at];
            let user = user.split(':').next().unwrap_or_default();
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

impl Db {
    /// Connects to `url` (`sqlite://<file>?mode=rwc` or `postgres://...`) and brings its schema
    /// up to date.
    pub async fn open(url: &str) -> Result<Self, DbError> {
        install_default_drivers();
        let failed = |why: String| DbError::Open { url: redacted(url), why };
        // SQLite allows one writer; more connections only queue on its lock.
        let connections = if url.starts_with("sqlite:") { 1 } else { 8 };
        let pool = AnyPoolOptions::new()
            .max_connections(connections)
            .connect(url)
            .await
            .map_err(|e| failed(e.to_string()))?;
        sqlx::migrate!("./migrations").run(&pool).await.map_err(|e| failed(e.to_string()))?;
        Ok(Self { pool })
    }

    /// Records that `peer` is connected now.
    pub async fn saw_peer(
        &self,
        peer_id: &str,
        addresses: &[String],
        agent: Option<&str>,
    ) -> Result<(), DbError> {
        let now = now();
        let addresses = serde_json::to_string(addresses).unwrap_or_default();
        sqlx::query(
            "INSERT INTO peers (peer_id, addresses, agent, first_seen, last_seen) \
             VALUES ($1, $2, $3, $4, $4) \
             ON CONFLICT (peer_id) DO UPDATE SET addresses = $2, \
             agent = COALESCE($3, peers.agent), last_seen = $4",
        )
        .bind(peer_id)
        .bind(addresses)
        .bind(agent)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The peers seen, most recent first (`connected` is false: the index does not know).
    pub async fn peers(&self, limit: i64) -> Result<Vec<Peer>, DbError> {
        let rows = sqlx::query(
            "SELECT peer_id, addresses, agent, first_seen, last_seen FROM peers \
             ORDER BY last_seen DESC, peer_id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Peer {
                    peer_id: row.try_get(0)?,
                    addresses: serde_json::from_str(&row.try_get::<String, _>(1)?)
                        .unwrap_or_default(),
                    agent: row.try_get(2)?,
                    first_seen: row.try_get(3)?,
                    last_seen: row.try_get(4)?,
                    connected: false,
                })
            })
            .collect()
    }

    /// Adds content (or leaves it as it is when it is known).
    pub async fn add_content(&self, content: &Content) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO content (id, name, duration_ms, renditions, segments, bytes, added) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING",
        )
        .bind(content.id.to_string())
        .bind(&content.name)
        .bind(content.duration_ms)
        .bind(serde_json::to_string(&content.renditions).unwrap_or_default())
        .bind(content.segments)
        .bind(content.bytes)
        .bind(content.added)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The content known, newest first.
    pub async fn content(&self, limit: i64) -> Result<Vec<Content>, DbError> {
        let rows = sqlx::query(
            "SELECT id, name, duration_ms, renditions, segments, bytes, added FROM content \
             ORDER BY added DESC, id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(content_row).collect()
    }

    /// One piece of content.
    pub async fn content_by_id(&self, id: &Hash) -> Result<Option<Content>, DbError> {
        let row = sqlx::query(
            "SELECT id, name, duration_ms, renditions, segments, bytes, added FROM content \
             WHERE id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(content_row).transpose()
    }

    /// How many peers and pieces of content it knows.
    pub async fn counts(&self) -> Result<(i64, i64), DbError> {
        let peers = sqlx::query("SELECT COUNT(*) FROM peers").fetch_one(&self.pool).await?;
        let content = sqlx::query("SELECT COUNT(*) FROM content").fetch_one(&self.pool).await?;
        Ok((peers.try_get(0)?, content.try_get(0)?))
    }
}

impl Db {
    /// Bytes `account`'s writes hold.
    pub async fn used(&self, account: &Address) -> Result<u64, DbError> {
        let row = sqlx::query("SELECT used FROM accounts WHERE address = $1")
            .bind(account.to_string())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|row| row.try_get::<i64, _>(0)).transpose()?.map_or(0, |u| u.max(0) as u64))
    }

    /// Pins `blobs` (name and bytes) for `account`, charging it for those no one pinned yet,
    /// all or nothing: [`DbError::OverQuota`] when that would take it past `quota`. Returns the
    /// bytes charged.
    pub async fn pin(
        &self,
        account: &Address,
        quota: u64,
        blobs: &[(Hash, u64)],
    ) -> Result<u64, DbError> {
        let mut tx = self.pool.begin().await?;
        let address = account.to_string();
        let mut new = Vec::new();
        for (name, bytes) in blobs {
            let pinned = sqlx::query("SELECT 1 FROM pins WHERE hash = $1")
                .bind(name.to_string())
                .fetch_optional(&mut *tx)
                .await?;
            if pinned.is_none() && !new.iter().any(|(n, _)| n == name) {
                new.push((*name, *bytes));
            }
        }
        let more: u64 = new.iter().map(|(_, b)| *b).sum();
        sqlx::query(
            "INSERT INTO accounts (address, used) VALUES ($1, 0) ON CONFLICT (address) DO NOTHING",
        )
        .bind(&address)
        .execute(&mut *tx)
        .await?;
        let charged = sqlx::query(
            "UPDATE accounts SET used = used + $2 WHERE address = $1 AND used + $2 <= $3",
        )
        .bind(&address)
        .bind(i64::try_from(more).unwrap_or(i64::MAX))
        .bind(i64::try_from(quota).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await?;
        if charged.rows_affected() != 1 {
            drop(tx);
            let used = self.used(account).await?;
            return Err(DbError::OverQuota { account: *account, used, quota, more });
        }
        let now = now();
        for (name, bytes) in &new {
            sqlx::query("INSERT INTO pins (hash, account, bytes, added) VALUES ($1, $2, $3, $4)")
                .bind(name.to_string())
                .bind(&address)
                .bind(i64::try_from(*bytes).unwrap_or(i64::MAX))
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(more)
    }

    /// The bytes `name` was pinned at (its declared size when a manifest pinned it), if pinned.
    pub async fn pinned_bytes(&self, name: &Hash) -> Result<Option<u64>, DbError> {
        let row = sqlx::query("SELECT bytes FROM pins WHERE hash = $1")
            .bind(name.to_string())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|row| row.try_get::<i64, _>(0)).transpose()?.map(|b| b.max(0) as u64))
    }

    /// Unpins `name`, giving its bytes back to the account that pinned it; whether it was.
    pub async fn unpin(&self, name: &Hash) -> Result<bool, DbError> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query("SELECT account, bytes FROM pins WHERE hash = $1")
            .bind(name.to_string())
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else { return Ok(false) };
        let (account, bytes): (String, i64) = (row.try_get(0)?, row.try_get(1)?);
        sqlx::query("UPDATE accounts SET used = used - $2 WHERE address = $1")
            .bind(&account)
            .bind(bytes)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM pins WHERE hash = $1")
            .bind(name.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Adds `id` to the deny list (or changes its reason), as a segment of content `part_of`
    /// when it is one; content `id` leaves the index.
    pub async fn deny(
        &self,
        id: &Hash,
        reason: &str,
        part_of: Option<&Hash>,
    ) -> Result<Denied, DbError> {
        let added = now();
        sqlx::query(
            "INSERT INTO denied (id, reason, part_of, added) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (id) DO UPDATE SET reason = $2, part_of = $3",
        )
        .bind(id.to_string())
        .bind(reason)
        .bind(part_of.map(|p| p.to_string()))
        .bind(added)
        .execute(&self.pool)
        .await?;
        sqlx::query("DELETE FROM content WHERE id = $1")
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(Denied { id: *id, reason: reason.to_owned(), added })
    }

    /// Takes `id` off the deny list, and the segments denied with it; whether it was on it.
    pub async fn allow(&self, id: &Hash) -> Result<bool, DbError> {
        let done = sqlx::query("DELETE FROM denied WHERE id = $1")
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        sqlx::query("DELETE FROM denied WHERE part_of = $1")
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The deny list, newest first.
    pub async fn denied(&self) -> Result<Vec<Denied>, DbError> {
        let rows = sqlx::query("SELECT id, reason, added FROM denied ORDER BY added DESC, id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let id: String = row.try_get(0)?;
                let id = id.parse().map_err(|_| DbError::Corrupt { id })?;
                Ok(Denied { id, reason: row.try_get(1)?, added: row.try_get(2)? })
            })
            .collect()
    }
}

fn content_row(row: &sqlx::any::AnyRow) -> Result<Content, DbError> {
    let id: String = row.try_get(0)?;
    let id: Hash = id.parse().map_err(|_| DbError::Corrupt { id })?;
    Ok(Content {
        hls: Content::hls_path(&id),
        id,
        name: row.try_get(1)?,
        duration_ms: row.try_get(2)?,
        renditions: serde_json::from_str(&row.try_get::<String, _>(3)?).unwrap_or_default(),
        segments: row.try_get(4)?,
        bytes: row.try_get(5)?,
        added: row.try_get(6)?,
    })
}

/// An upload's row: everything but what is received, which is the length of its file.
const UPLOAD_COLUMNS: &str = "id, account, name, size, blake3, heights, state, error, source, \
     segments, duration_ms, ladder, added, poster, preview";

const VIDEO_COLUMNS: &str = "job, creator, source, title, description, tags, visibility, \
     captions, content, added, poster, preview";

fn parse<T: std::str::FromStr>(text: &str) -> Result<T, DbError> {
    text.parse().map_err(|_| DbError::Corrupt { id: text.to_owned() })
}

fn json_text<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, DbError> {
    serde_json::from_str(text).map_err(|_| DbError::Corrupt { id: text.to_owned() })
}

/// An upload's row (its `received` 0: the caller reads the file's length) and its heights.
fn upload_row(row: &sqlx::any::AnyRow) -> Result<(Upload, Vec<u32>), DbError> {
    let optional_hash = |i: usize| -> Result<Option<Hash>, DbError> {
        row.try_get::<Option<String>, _>(i)?.map(|t| parse(&t)).transpose()
    };
    let upload = Upload {
        id: parse(&row.try_get::<String, _>(0)?)?,
        account: parse(&row.try_get::<String, _>(1)?)?,
        name: row.try_get(2)?,
        size: row.try_get::<i64, _>(3)?.max(0) as u64,
        blake3: parse(&row.try_get::<String, _>(4)?)?,
        received: 0,
        state: from_json(&format!("\"{}\"", row.try_get::<String, _>(6)?))?,
        progress: 0.0,
        error: row.try_get(7)?,
        source: optional_hash(8)?,
        segments: u32::try_from(row.try_get::<i64, _>(9)?).unwrap_or(0),
        duration_ms: row.try_get(10)?,
        ladder: row.try_get::<Option<String>, _>(11)?.map(|t| from_json(&t)).transpose()?,
        added: row.try_get(12)?,
        poster: optional_hash(13)?,
        preview: row.try_get::<Option<String>, _>(14)?.map(|t| from_json(&t)).transpose()?,
    };
    Ok((upload, from_json(&row.try_get::<String, _>(5)?)?))
}

fn video_row(row: &sqlx::any::AnyRow) -> Result<Video, DbError> {
    let optional_hash = |i: usize| -> Result<Option<Hash>, DbError> {
        row.try_get::<Option<String>, _>(i)?.map(|t| parse(&t)).transpose()
    };
    Ok(Video {
        job: u64::try_from(row.try_get::<i64, _>(0)?).unwrap_or(0),
        creator: parse(&row.try_get::<String, _>(1)?)?,
        source: parse(&row.try_get::<String, _>(2)?)?,
        title: row.try_get(3)?,
        description: row.try_get(4)?,
        tags: from_json(&row.try_get::<String, _>(5)?)?,
        visibility: from_json(&format!("\"{}\"", row.try_get::<String, _>(6)?))?,
        captions: optional_hash(7)?,
        content: optional_hash(8)?,
        added: row.try_get(9)?,
        poster: optional_hash(10)?,
        preview: row.try_get::<Option<String>, _>(11)?.map(|t| from_json(&t)).transpose()?,
    })
}

/// A unit enum's serde name (`"ready"` → `ready`).
fn word<T: serde::Serialize>(value: &T) -> String {
    json_text(value).trim_matches('"').to_owned()
}

impl Db {
    /// Adds `upload` (asking for `heights`), or leaves the one with its id as it is.
    pub async fn add_upload(&self, upload: &Upload, heights: &[u32]) -> Result<(), DbError> {
        sqlx::query(&format!(
            "INSERT INTO uploads ({UPLOAD_COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, NULL, NULL, 0, 0, NULL, $8, NULL, NULL) \
             ON CONFLICT (id) DO NOTHING"
        ))
        .bind(upload.id.to_string())
        .bind(upload.account.to_string())
        .bind(&upload.name)
        .bind(upload.size as i64)
        .bind(upload.blake3.to_string())
        .bind(json_text(&heights))
        .bind(word(&upload.state))
        .bind(upload.added)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Upload `id` and the heights it asked for.
    pub async fn upload(&self, id: &Hash) -> Result<Option<(Upload, Vec<u32>)>, DbError> {
        let row = sqlx::query(&format!("SELECT {UPLOAD_COLUMNS} FROM uploads WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(upload_row).transpose()
    }

    /// The uploads in `state`, oldest first.
    pub async fn uploads_in(&self, state: UploadState) -> Result<Vec<Upload>, DbError> {
        let rows = sqlx::query(&format!(
            "SELECT {UPLOAD_COLUMNS} FROM uploads WHERE state = $1 ORDER BY added, id"
        ))
        .bind(word(&state))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|row| upload_row(row).map(|(u, _)| u)).collect()
    }

    /// How many of `account`'s uploads are receiving or cutting.
    pub async fn open_uploads(&self, account: &Address) -> Result<i64, DbError> {
        let row = sqlx::query(
            "SELECT COUNT(*) FROM uploads WHERE account = $1 AND state IN ('receiving', 'cutting')",
        )
        .bind(account.to_string())
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get(0)?)
    }

    /// Writes upload `upload.id`'s state, error and (once cut) what it became.
    pub async fn set_upload(&self, upload: &Upload) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE uploads SET state = $2, error = $3, source = $4, segments = $5, \
             duration_ms = $6, ladder = $7, poster = $8, preview = $9 WHERE id = $1",
        )
        .bind(upload.id.to_string())
        .bind(word(&upload.state))
        .bind(upload.error.clone())
        .bind(upload.source.map(|s| s.to_string()))
        .bind(i64::from(upload.segments))
        .bind(upload.duration_ms)
        .bind(upload.ladder.as_ref().map(json_text))
        .bind(upload.poster.map(|p| p.to_string()))
        .bind(upload.preview.as_ref().map(json_text))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Adds `video` (or answers false when its job has one).
    pub async fn add_video(&self, video: &Video) -> Result<bool, DbError> {
        let done = sqlx::query(&format!(
            "INSERT INTO videos ({VIDEO_COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (job) DO NOTHING"
        ))
        .bind(video.job as i64)
        .bind(video.creator.to_string())
        .bind(video.source.to_string())
        .bind(&video.title)
        .bind(&video.description)
        .bind(json_text(&video.tags))
        .bind(word(&video.visibility))
        .bind(video.captions.map(|c| c.to_string()))
        .bind(video.content.map(|c| c.to_string()))
        .bind(video.added)
        .bind(video.poster.map(|p| p.to_string()))
        .bind(video.preview.as_ref().map(json_text))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The video of job `job`.
    pub async fn video(&self, job: u64) -> Result<Option<Video>, DbError> {
        let row = sqlx::query(&format!("SELECT {VIDEO_COLUMNS} FROM videos WHERE job = $1"))
            .bind(job as i64)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(video_row).transpose()
    }

    /// The video published as content `content`.
    pub async fn video_of(&self, content: &Hash) -> Result<Option<Video>, DbError> {
        // Two jobs of one source and ladder make one content id: the newest video speaks for it.
        let row = sqlx::query(&format!(
            "SELECT {VIDEO_COLUMNS} FROM videos WHERE content = $1 ORDER BY added DESC, job DESC LIMIT 1"
        ))
            .bind(content.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(video_row).transpose()
    }

    /// Public videos whose ladder is published (`creator`: `None`), or every video of
    /// `creator`'s; newest first.
    pub async fn videos(
        &self,
        creator: Option<&Address>,
        limit: i64,
    ) -> Result<Vec<Video>, DbError> {
        let public = format!(
            "SELECT {VIDEO_COLUMNS} FROM videos WHERE visibility = 'public' \
             AND content IS NOT NULL ORDER BY added DESC, job DESC LIMIT $1"
        );
        let of_creator = format!(
            "SELECT {VIDEO_COLUMNS} FROM videos WHERE creator = $2 \
             ORDER BY added DESC, job DESC LIMIT $1"
        );
        let rows = match creator {
            None => sqlx::query(&public).bind(limit),
            Some(creator) => sqlx::query(&of_creator).bind(limit).bind(creator.to_string()),
        }
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(video_row).collect()
    }

    /// Sets the content id of job `job`'s video.
    pub async fn set_video_content(&self, job: u64, content: &Hash) -> Result<(), DbError> {
        sqlx::query("UPDATE videos SET content = $2 WHERE job = $1")
            .bind(job as i64)
            .bind(content.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Removes job `job`'s video; whether there was one.
    pub async fn remove_video(&self, job: u64) -> Result<bool, DbError> {
        let done = sqlx::query("DELETE FROM videos WHERE job = $1")
            .bind(job as i64)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_stay_out_of_messages() {
        assert_eq!(redacted("postgres://me:secret@db:5432/x"), "postgres://me:***@db:5432/x");
        assert_eq!(redacted("sqlite:///tmp/relay.db?mode=rwc"), "sqlite:///tmp/relay.db?mode=rwc");
    }
}
