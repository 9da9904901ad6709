//! Uploads in chunks, and the cut that turns one into a job's source.
//!
//! A creator's client (the browser app) sends its file in chunks, each a signed write whose
//! signature covers the chunk's blake3 ([`crate::auth`]): `POST /api/v1/uploads` names the file
//! (size, blake3, the ladder's heights) and answers its upload, whose id follows from the
//! signer and the file, so asking again resumes it; `PUT /api/v1/uploads/{id}?offset=` appends
//! a chunk at exactly what the relay has (409 with what it has otherwise); `GET
//! /api/v1/uploads/{id}` tells where it is. Once the last byte is in, the whole file is checked
//! against its declared blake3 and the media engine cuts it into source segments
//! (`kinema_media::ladder::cut`, one cut at a time); the source is then content on the relay,
//! pinned and charged to the uploader, and the upload names the ladder a job for it asks
//! for. Bytes in flight are bounded: a chunk at most [`MAX_CHUNK`](crate::api::MAX_CHUNK), a file at most the
//! relay's [`Limits::max_source`](crate::Limits) and the uploader's quota, and
//! [`MAX_OPEN`] uploads under way per account.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path as FsPath, PathBuf};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use kinema_chain::Hash;
use kinema_chain::rpc::ErrorReply;
use kinema_contracts::jobs::{Ladder, Rung};
use kinema_http::{Error, Result};
use kinema_media::Ffmpeg;
use kinema_media::ladder::{self, Progress};
use kinema_media::thumbs;

use crate::api::{NewUpload, Preview, Upload, UploadState};
use crate::auth::Signer;
use crate::db::now;
use crate::gateway::parse_hash;
use crate::routes::{AppState, Octets};

/// Uploads one account may have under way (receiving or cutting) at once.
pub(crate) const MAX_OPEN: i64 = 4;
/// The most rungs an upload may ask for (the jobs contract's limit).
const MAX_HEIGHTS: usize = kinema_contracts::jobs::MAX_RUNGS;
/// The longest file name kept.
const MAX_NAME: usize = 120;

/// The relay's uploads: their files, and the cuts' progress.
pub(crate) struct Uploads {
    /// `<dir>/<id>/<name>`: an upload's file; `<dir>/<id>/cut`: its cut.
    dir: PathBuf,
    ffmpeg: Option<Arc<Ffmpeg>>,
    /// Uploads a chunk is being written to now (one at a time each).
    writing: Mutex<HashSet<Hash>>,
    /// The cuts under way, and the share done.
    progress: Mutex<HashMap<Hash, f64>>,
    /// One cut at a time: each ffmpeg takes the machine's cores.
    cutting: tokio::sync::Semaphore,
}

impl Uploads {
    pub(crate) fn new(dir: PathBuf, ffmpeg: Option<Arc<Ffmpeg>>) -> Self {
        Self {
            dir,
            ffmpeg,
            writing: Mutex::default(),
            progress: Mutex::default(),
            cutting: tokio::sync::Semaphore::new(1),
        }
    }

    fn file(&self, upload: &Upload) -> PathBuf {
        self.dir.join(upload.id.to_string()).join(file_name(&upload.name))
    }

    pub(crate) fn ffmpeg(&self) -> Result<Arc<Ffmpeg>> {
        self.ffmpeg.clone().ok_or_else(|| {
            Error::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "this relay has no ffmpeg: it takes no uploads to cut (install ffmpeg and restart it)",
            )
        })
    }

    /// `upload` with what is received (its file's length) and the cut's progress.
    fn filled(&self, mut upload: Upload) -> Upload {
        upload.received = match upload.state {
            UploadState::Receiving => std::fs::metadata(self.file(&upload)).map_or(0, |m| m.len()),
            _ => upload.size,
        };
        let progress = self.progress.lock().unwrap_or_else(|e| e.into_inner());
        upload.progress = match upload.state {
            UploadState::Cutting => progress.get(&upload.id).copied().unwrap_or(0.0),
            UploadState::Ready => 1.0,
            _ => 0.0,
        };
        upload
    }
}

/// `name` as a file name: letters, digits, `.`, `-`, `_` and spaces, at most [`MAX_NAME`]
/// characters, never empty or hidden.
fn file_name(name: &str) -> String {
    let kept: String =
        name.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ' ') {
                    c
                } else {
                    '_'
                }
            })
            .take(MAX_NAME)
            .collect();
    let kept = kept.trim_start_matches('.').trim();
    if kept.is_empty() { "upload".into() } else { kept.into() }
}

/// An upload's id: the signer, the file and the ladder asked for.
fn upload_id(account: &kinema_chain::Address, new: &NewUpload) -> Hash {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"kinema/upload/v1");
    hasher.update(&account.0);
    hasher.update(&new.blake3.0);
    hasher.update(&new.size.to_le_bytes());
    for height in &new.heights {
        hasher.update(&height.to_le_bytes());
    }
    Hash(*hasher.finalize().as_bytes())
}

/// `POST /api/v1/uploads`.
#[utoipa::path(
    post,
    path = "/api/v1/uploads",
    operation_id = "newUpload",
    summary = "Begin an upload in chunks, or resume the signer's upload of the same file",
    request_body = NewUpload,
    responses(
        (status = 200, description = "the upload of this file under way", body = Upload),
        (status = 201, description = "begun", body = Upload),
        (status = 400, description = "not a new upload, or a size or height out of range", body = ErrorReply),
        (status = 401, description = "unsigned, or signed wrongly", body = ErrorReply),
        (status = 403, description = "the account may not store here", body = ErrorReply),
        (status = 409, description = "the account has too many uploads under way", body = ErrorReply),
        (status = 413, description = "larger than the relay takes or the account's quota", body = ErrorReply),
        (status = 503, description = "the relay cannot cut video (no ffmpeg)", body = ErrorReply),
    ),
)]
pub(crate) async fn new_upload(
    State(state): State<AppState>,
    Extension(signer): Extension<Signer>,
    bytes: Bytes,
) -> Result<(StatusCode, Json<Upload>)> {
    signer.check_body(&Hash::digest(&bytes))?;
    let relay = &state.relay;
    let uploads = &relay.uploads;
    uploads.ffmpeg()?;
    let quota = relay.quota(&signer)?;
    let new: NewUpload = serde_json::from_slice(&bytes)
        .map_err(|e| Error::bad_request(format!("the body is not a new upload: {e}")))?;
    if new.name.trim().is_empty() {
        return Err(Error::bad_request("the upload's name is empty"));
    }
    if new.size == 0 {
        return Err(Error::bad_request(format!("{}: the file is empty", new.name)));
    }
    if new.heights.len() > MAX_HEIGHTS || new.heights.iter().any(|h| !(64..=4320).contains(h)) {
        return Err(Error::bad_request(format!(
            "heights {:?}: at most {MAX_HEIGHTS}, each 64 to 4320 pixels",
            new.heights
        )));
    }
    if new.size > relay.max_source {
        return Err(Error::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "{}: {} bytes; this relay takes files up to {}",
                new.name, new.size, relay.max_source
            ),
        ));
    }
    let id = upload_id(&signer.account, &new);
    if let Some((upload, _)) = relay.db.upload(&id).await.map_err(Error::internal)? {
        return Ok((StatusCode::OK, Json(uploads.filled(upload))));
    }
    let used = relay.db.used(&signer.account).await.map_err(Error::internal)?;
    if used.saturating_add(new.size) > quota {
        return Err(Error::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "account {} holds {used} of its {quota} bytes; {} ({} bytes) does not fit",
                signer.account, new.name, new.size
            ),
        ));
    }
    if relay.db.open_uploads(&signer.account).await.map_err(Error::internal)? >= MAX_OPEN {
        return Err(Error::new(
            StatusCode::CONFLICT,
            format!(
                "account {} has {MAX_OPEN} uploads under way; finish one first",
                signer.account
            ),
        ));
    }
    let upload = Upload {
        id,
        account: signer.account,
        name: new.name.chars().take(MAX_NAME).collect(),
        size: new.size,
        blake3: new.blake3,
        received: 0,
        state: UploadState::Receiving,
        progress: 0.0,
        error: None,
        source: None,
        segments: 0,
        duration_ms: 0,
        ladder: None,
        added: now(),
        poster: None,
        preview: None,
    };
    let file = uploads.file(&upload);
    tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(file.parent().unwrap_or(FsPath::new(".")))?;
        std::fs::File::create(&file).map(drop)
    })
    .await
    .map_err(Error::internal)?
    .map_err(Error::internal)?;
    relay.db.add_upload(&upload, &new.heights).await.map_err(Error::internal)?;
    Ok((StatusCode::CREATED, Json(upload)))
}

/// `GET /api/v1/uploads/{id}`.
#[utoipa::path(
    get,
    path = "/api/v1/uploads/{id}",
    operation_id = "upload",
    summary = "Where an upload is: bytes received, the cut's progress, what it became",
    params(("id" = Hash, Path, description = "the upload's id")),
    responses(
        (status = 200, body = Upload),
        (status = 400, description = "the id is not a hash", body = ErrorReply),
        (status = 404, description = "no such upload", body = ErrorReply),
    ),
)]
pub(crate) async fn upload(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Upload>> {
    let id = parse_hash(&id, "upload id")?;
    let (upload, _) = state
        .relay
        .db
        .upload(&id)
        .await
        .map_err(Error::internal)?
        .ok_or_else(|| Error::not_found(format!("no upload {id}")))?;
    Ok(Json(state.relay.uploads.filled(upload)))
}

/// Where a chunk goes.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub(crate) struct Offset {
    /// The byte of the file the chunk starts at: what the relay has received.
    offset: u64,
}

/// `PUT /api/v1/uploads/{id}?offset=`.
#[utoipa::path(
    put,
    path = "/api/v1/uploads/{id}",
    operation_id = "putChunk",
    summary = "Append a chunk to an upload; with the last, the file is checked and cut",
    params(("id" = Hash, Path, description = "the upload's id"), Offset),
    request_body(content = inline(Octets), content_type = "application/octet-stream"),
    responses(
        (status = 200, description = "appended", body = Upload),
        (status = 400, description = "an empty chunk, or a bad id or offset", body = ErrorReply),
        (status = 401, description = "unsigned, or signed wrongly", body = ErrorReply),
        (status = 403, description = "another account's upload", body = ErrorReply),
        (status = 404, description = "no such upload", body = ErrorReply),
        (status = 409, description = "the offset is not what the relay has, the upload takes no more chunks, or a chunk of it is being written", body = ErrorReply),
        (status = 413, description = "over the chunk limit, or past the file's end", body = ErrorReply),
        (status = 422, description = "the whole file does not hash to its declared blake3 (the upload starts again)", body = ErrorReply),
    ),
)]
pub(crate) async fn put_chunk(
    State(state): State<AppState>,
    Extension(signer): Extension<Signer>,
    Path(id): Path<String>,
    Query(Offset { offset }): Query<Offset>,
    bytes: Bytes,
) -> Result<Json<Upload>> {
    let id = parse_hash(&id, "upload id")?;
    signer.check_body(&Hash::digest(&bytes))?;
    let relay = &state.relay;
    let uploads = &relay.uploads;
    let (upload, heights) = relay
        .db
        .upload(&id)
        .await
        .map_err(Error::internal)?
        .ok_or_else(|| Error::not_found(format!("no upload {id}")))?;
    if upload.account != signer.account {
        return Err(Error::new(
            StatusCode::FORBIDDEN,
            format!("upload {id} is account {}'s, not {}'s", upload.account, signer.account),
        ));
    }
    if upload.state != UploadState::Receiving {
        return Err(Error::new(
            StatusCode::CONFLICT,
            format!("upload {id} has every byte; it is {:?}", upload.state).to_lowercase(),
        ));
    }
    if bytes.is_empty() {
        return Err(Error::bad_request(format!("an empty chunk of upload {id}")));
    }
    if !uploads.writing.lock().unwrap_or_else(|e| e.into_inner()).insert(id) {
        return Err(Error::new(
            StatusCode::CONFLICT,
            format!("a chunk of upload {id} is being written; send the next once it is answered"),
        ));
    }
    let written = append(uploads.file(&upload), upload.size, offset, bytes).await;
    uploads.writing.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
    let received = written?;
    let mut upload = upload;
    if received == upload.size {
        let file = uploads.file(&upload);
        let hashed = tokio::task::spawn_blocking(move || -> std::io::Result<Hash> {
            let mut hasher = blake3::Hasher::new();
            hasher.update_reader(std::fs::File::open(&file)?)?;
            Ok(Hash(*hasher.finalize().as_bytes()))
        })
        .await
        .map_err(Error::internal)?
        .map_err(Error::internal)?;
        if hashed != upload.blake3 {
            let file = uploads.file(&upload);
            tokio::task::spawn_blocking(move || std::fs::File::create(file).map(drop))
                .await
                .map_err(Error::internal)?
                .map_err(Error::internal)?;
            return Err(Error::unprocessable(format!(
                "the {} bytes of upload {id} hash to {hashed}, not {} as declared; the upload \
                 starts again from 0",
                upload.size, upload.blake3
            )));
        }
        upload.state = UploadState::Cutting;
        relay.db.set_upload(&upload).await.map_err(Error::internal)?;
        tokio::spawn(cut(state.clone(), upload.clone(), heights));
    }
    Ok(Json(uploads.filled(upload)))
}

/// Appends `bytes` at `offset` of `file` (whose upload is `size` bytes); what is received.
async fn append(file: PathBuf, size: u64, offset: u64, bytes: Bytes) -> Result<u64> {
    tokio::task::spawn_blocking(move || {
        let have = std::fs::metadata(&file).map_err(Error::internal)?.len();
        if offset != have {
            return Err(Error::new(
                StatusCode::CONFLICT,
                format!("the relay has {have} bytes of this upload; send from offset {have}, not {offset}"),
            ));
        }
        let end = offset.saturating_add(bytes.len() as u64);
        if end > size {
            return Err(Error::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("a chunk ending at byte {end} of a {size}-byte upload"),
            ));
        }
        let mut out = std::fs::OpenOptions::new().append(true).open(&file).map_err(Error::internal)?;
        out.write_all(&bytes).map_err(Error::internal)?;
        out.sync_data().map_err(Error::internal)?;
        Ok(end)
    })
    .await
    .map_err(Error::internal)?
}

/// Cuts `upload` (every byte in and checked), publishes its source as content charged to its
/// uploader and records what it became; failures are recorded with their reason.
pub(crate) async fn cut(state: AppState, mut upload: Upload, heights: Vec<u32>) {
    let relay = state.relay.clone();
    let id = upload.id;
    match cut_and_publish(&state, &upload, heights).await {
        Ok((source, segments, duration_ms, ladder)) => {
            upload.state = UploadState::Ready;
            upload.source = Some(source);
            upload.segments = segments;
            upload.duration_ms = duration_ms;
            upload.ladder = Some(ladder);
            // Stills help people choose and scrub; a video that has none still plays.
            match stills(&state, &upload).await {
                Ok((poster, preview)) => {
                    (upload.poster, upload.preview) = (Some(poster), Some(preview))
                }
                Err(e) => tracing::warn!("upload {id}: no stills: {}", e.message()),
            }
        }
        Err(e) => {
            tracing::warn!("upload {id}: {}", e.message());
            upload.state = UploadState::Failed;
            upload.error = Some(e.message().to_owned());
        }
    }
    relay.uploads.progress.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
    if let Err(e) = relay.db.set_upload(&upload).await {
        tracing::error!("upload {id}: recording its state: {e}");
    }
    // What was cut is in the blob store now; the file and the cut go.
    let dir = relay.uploads.dir.join(id.to_string());
    let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(dir)).await;
}

/// The cut itself: the source's manifest blake3, segments, duration and the job's ladder.
async fn cut_and_publish(
    state: &AppState,
    upload: &Upload,
    heights: Vec<u32>,
) -> Result<(Hash, u32, i64, Ladder)> {
    let relay = &state.relay;
    let uploads = &relay.uploads;
    let ff = uploads.ffmpeg()?;
    let _turn = uploads.cutting.acquire().await.map_err(Error::internal)?;
    let input = uploads.file(upload);
    let out = uploads.dir.join(upload.id.to_string()).join("cut");
    let mut config = ladder::Config { workers: 1, ..ladder::Config::default() };
    // The ladder it proposes is the market's default encode; the job's creator may change it.
    config.encode.preset = kinema_contracts::jobs::DEFAULT_PRESET.into();
    if !heights.is_empty() {
        config.heights = heights;
    }
    let relay_for_cut = relay.clone();
    let id = upload.id;
    let (settings, cut_out) = (config.encode.clone(), out.clone());
    // The media engine names the file by its path here; the uploader knows it by its name.
    let (path, name) = (input.display().to_string(), upload.name.clone());
    let named = move |e: kinema_media::Error| e.to_string().replace(&path, &name);
    let cut = tokio::task::spawn_blocking(move || {
        let _ = std::fs::remove_dir_all(&cut_out);
        let mut segments = 0usize;
        let mut done = 0usize;
        ladder::cut(&ff, &input, &cut_out, &config, &mut |p| {
            match p {
                Progress::Planned { segments: n, .. } => segments = n.max(1),
                Progress::Cut { .. } => done += 1,
                _ => {}
            }
            let share = if segments == 0 { 0.0 } else { done as f64 / segments as f64 };
            relay_for_cut
                .uploads
                .progress
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id, share);
        })
    })
    .await
    .map_err(Error::internal)?
    .map_err(|e| Error::unprocessable(named(e)))?;
    if cut.renditions.is_empty() {
        return Err(Error::unprocessable(format!(
            "{}: no rendition of the ladder fits the source",
            upload.name
        )));
    }
    let dir = out.join(ladder::SOURCE_RENDITION);
    let manifest_bytes =
        tokio::fs::read(out.join("manifest.json")).await.map_err(Error::internal)?;
    let quota = state.relay.quotas.of(&upload.account);
    let content =
        crate::writes::publish(state, &upload.account, quota, manifest_bytes.into()).await?;
    // Every segment the manifest names, pinned by it already, into the store.
    let blobs = relay.blobs.clone();
    let files: Vec<(Hash, PathBuf)> = cut
        .manifest
        .renditions
        .iter()
        .flat_map(|r| &r.segments)
        .map(|s| (s.blake3, dir.join(&s.file)))
        .collect();
    let names: Vec<Hash> = files.iter().map(|(name, _)| *name).collect();
    tokio::task::spawn_blocking(move || {
        files.iter().try_for_each(|(name, path)| {
            let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
            blobs.put_as(*name, &bytes).map_err(|e| e.to_string())
        })
    })
    .await
    .map_err(Error::internal)?
    .map_err(Error::internal)?;
    for name in names {
        let _ = relay.p2p.provide(name).await;
    }
    let ladder = Ladder {
        codec: "h264".into(),
        preset: settings.preset,
        crf: settings.crf,
        rungs: cut
            .renditions
            .iter()
            .map(|r| Rung {
                name: r.name.clone(),
                width: r.width,
                height: r.height,
                max_kbps: r.max_bitrate.div_ceil(1000),
            })
            .collect(),
    };
    let segments = u32::try_from(content.segments).unwrap_or(u32::MAX);
    Ok((content.id, segments, content.duration_ms, ladder))
}

/// A poster's height, and a seek-preview tile's.
const POSTER_HEIGHT: u32 = 360;
const TILE_HEIGHT: u32 = 90;
/// Seconds between seek-preview tiles, and tiles to a sprite's row.
const TILE_EVERY: f64 = 2.0;
const TILE_COLUMNS: u32 = 10;

/// A poster and a seek-preview sprite of a cut `upload` (its file still there), stored as blobs
/// pinned and charged to its uploader.
async fn stills(state: &AppState, upload: &Upload) -> Result<(Hash, Preview)> {
    let relay = &state.relay;
    let ff = relay.uploads.ffmpeg()?;
    let input = relay.uploads.file(upload);
    let dir = relay.uploads.dir.join(upload.id.to_string());
    let duration = upload.duration_ms as f64 / 1000.0;
    let made = tokio::task::spawn_blocking(move || {
        let (poster, sprite) = (dir.join("poster.jpg"), dir.join("sprite.jpg"));
        thumbs::poster(&ff, &input, duration, POSTER_HEIGHT, &poster)?;
        let layout =
            thumbs::sprite(&ff, &input, duration, TILE_EVERY, TILE_HEIGHT, TILE_COLUMNS, &sprite)?;
        let read = |path: &FsPath| {
            std::fs::read(path).map_err(|e| kinema_media::Error::Ffmpeg {
                what: format!("reading {}", path.display()),
                detail: e.to_string(),
            })
        };
        Ok::<_, kinema_media::Error>((read(&poster)?, read(&sprite)?, layout))
    })
    .await
    .map_err(Error::internal)?
    .map_err(|e| Error::unprocessable(e.to_string()))?;
    let (poster, sprite, layout) = made;
    let (poster_name, sprite_name) = (Hash::digest(&poster), Hash::digest(&sprite));
    let quota = relay.quotas.of(&upload.account);
    let pins = [(poster_name, poster.len() as u64), (sprite_name, sprite.len() as u64)];
    relay.db.pin(&upload.account, quota, &pins).await.map_err(crate::writes::charge_failed)?;
    let blobs = relay.blobs.clone();
    tokio::task::spawn_blocking(move || {
        for (name, bytes) in [(poster_name, poster), (sprite_name, sprite)] {
            blobs.pin(&name)?;
            blobs.put_as(name, &bytes)?;
        }
        Ok::<_, kinema_net::blobs::BlobError>(())
    })
    .await
    .map_err(Error::internal)?
    .map_err(Error::internal)?;
    let preview = Preview {
        sprite: sprite_name,
        every_ms: layout.every_ms,
        columns: layout.columns,
        rows: layout.rows,
        count: layout.count,
        width: layout.width,
        height: layout.height,
    };
    Ok((poster_name, preview))
}

/// Cuts again what was being cut when the relay stopped.
pub(crate) async fn resume_cuts(state: AppState) {
    let cutting = match state.relay.db.uploads_in(UploadState::Cutting).await {
        Ok(cutting) => cutting,
        Err(e) => return tracing::error!("reading the uploads being cut: {e}"),
    };
    for upload in cutting {
        let heights = match state.relay.db.upload(&upload.id).await {
            Ok(Some((_, heights))) => heights,
            _ => Vec::new(),
        };
        tokio::spawn(cut(state.clone(), upload, heights));
    }
}
