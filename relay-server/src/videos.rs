//! Videos: a job's ladder with what its creator tells of it (title, description, tags,
//! visibility, captions), and the ladder's publication once the job is done.
//!
//! - `POST /api/v1/videos` (signed by the job's creator): the job must be the signer's, for
//!   the source an upload of theirs became; captions are a WebVTT blob stored first;
//! - `GET /api/v1/videos`: public videos whose ladder is published (unlisted ones never), or
//!   with `?content=` the video published as that content id; `GET /api/v1/videos/mine` (a
//!   signed read): the signer's, every visibility; `GET /api/v1/videos/{job}`; `DELETE
//!   /api/v1/videos/{job}` (its creator): off the listings;
//! - `POST /api/v1/jobs/{id}/ladder` (signed; charged to the signer): for a done job, the
//!   ladder's manifest assembled from the accepted results (kinema-media's
//!   `ladder::assemble`), checked against the ladder hash the chain recorded
//!   (`kinema_contracts::jobs::check_ladder`) and published as content; its video, if any,
//!   gets the content id. Its creator then records that id on the chain (`jobs.publish`),
//!   after checking the manifest itself.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use kinema_chain::Hash;
use kinema_chain::rpc::{ErrorReply, JobStateReply};
use kinema_contracts::jobs::{self, Job};
use kinema_http::{Error, Result};
use kinema_media::hls::Manifest;
use kinema_media::ladder;
use kinema_media::rendition::Rendition;

use crate::api::{
    Content, MAX_CAPTIONS, MAX_DESCRIPTION, MAX_TAG, MAX_TAGS, MAX_TITLE, NewVideo, UploadState,
    Video, VideoList,
};
use crate::auth::Signer;
use crate::chain::{ChainClient, ClientError};
use crate::db::now;
use crate::gateway::parse_hash;
use crate::routes::AppState;

/// Videos a listing returns at most.
const LIST_LIMIT: i64 = 1000;

/// The relay's chain client: 503 when it follows no chain RPC.
pub(crate) fn chain(state: &AppState) -> Result<&ChainClient> {
    state.relay.chain.as_ref().ok_or_else(|| {
        Error::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "this relay follows no chain RPC (start it with --chain-rpc)",
        )
    })
}

/// A chain RPC's failure as the relay's answer: the node's refusal as a 502 naming it.
pub(crate) fn chain_failed(e: ClientError) -> Error {
    Error::new(StatusCode::BAD_GATEWAY, format!("the chain RPC: {e}"))
}

/// `POST /api/v1/videos`.
#[utoipa::path(
    post,
    path = "/api/v1/videos",
    operation_id = "addVideo",
    summary = "Tell what a job's video is: title, description, tags, visibility, captions",
    request_body = NewVideo,
    responses(
        (status = 201, description = "added", body = Video),
        (status = 400, description = "not a video, or a field out of range", body = ErrorReply),
        (status = 401, description = "unsigned, or signed wrongly", body = ErrorReply),
        (status = 403, description = "the upload or the job is not the signer's", body = ErrorReply),
        (status = 404, description = "no such upload or job", body = ErrorReply),
        (status = 409, description = "the job has a video already, or the upload is not cut", body = ErrorReply),
        (status = 422, description = "the job is not for the upload's source, or the captions are not WebVTT", body = ErrorReply),
        (status = 502, description = "the chain RPC failed", body = ErrorReply),
        (status = 503, description = "the relay follows no chain", body = ErrorReply),
    ),
)]
pub(crate) async fn add_video(
    State(state): State<AppState>,
    Extension(signer): Extension<Signer>,
    bytes: Bytes,
) -> Result<(StatusCode, Json<Video>)> {
    signer.check_body(&Hash::digest(&bytes))?;
    let new: NewVideo = serde_json::from_slice(&bytes)
        .map_err(|e| Error::bad_request(format!("the body is not a video: {e}")))?;
    check_fields(&new)?;
    let relay = &state.relay;
    let (upload, _) = relay
        .db
        .upload(&new.upload)
        .await
        .map_err(Error::internal)?
        .ok_or_else(|| Error::not_found(format!("no upload {}", new.upload)))?;
    if upload.account != signer.account {
        return Err(Error::new(
            StatusCode::FORBIDDEN,
            format!("upload {} is account {}'s", upload.id, upload.account),
        ));
    }
    let Some(source) = upload.source.filter(|_| upload.state == UploadState::Ready) else {
        return Err(Error::new(
            StatusCode::CONFLICT,
            format!("upload {} is not cut yet", upload.id),
        ));
    };
    let job = match chain(&state)?.job(new.job).await {
        Ok(job) => job,
        Err(ClientError::Refused { status: 404, .. }) => {
            return Err(Error::not_found(format!("no job {} on the chain", new.job)));
        }
        Err(e) => return Err(chain_failed(e)),
    };
    if job.creator != signer.account {
        return Err(Error::new(
            StatusCode::FORBIDDEN,
            format!("job {} was posted by {}, not {}", new.job, job.creator, signer.account),
        ));
    }
    if job.source != source {
        return Err(Error::unprocessable(format!(
            "job {} transcodes source {}, not upload {}'s {source}",
            new.job, job.source, upload.id
        )));
    }
    if let Some(captions) = new.captions {
        check_captions(&state, &captions).await?;
    }
    let video = Video {
        job: new.job,
        creator: signer.account,
        source,
        title: new.title.trim().to_owned(),
        description: new.description,
        tags: new.tags.iter().map(|t| t.trim().to_owned()).collect(),
        visibility: new.visibility,
        captions: new.captions,
        content: job.content,
        added: now(),
        poster: upload.poster,
        preview: upload.preview,
    };
    if !relay.db.add_video(&video).await.map_err(Error::internal)? {
        return Err(Error::new(
            StatusCode::CONFLICT,
            format!("job {} has a video already", new.job),
        ));
    }
    Ok((StatusCode::CREATED, Json(video)))
}

/// 400 naming the first field out of range.
fn check_fields(new: &NewVideo) -> Result<()> {
    let title = new.title.trim().chars().count();
    if !(1..=MAX_TITLE).contains(&title) {
        return Err(Error::bad_request(format!(
            "the title has {title} characters; it takes 1 to {MAX_TITLE}"
        )));
    }
    let description = new.description.chars().count();
    if description > MAX_DESCRIPTION {
        return Err(Error::bad_request(format!(
            "the description has {description} characters; it takes at most {MAX_DESCRIPTION}"
        )));
    }
    if new.tags.len() > MAX_TAGS {
        return Err(Error::bad_request(format!(
            "{} tags; a video takes at most {MAX_TAGS}",
            new.tags.len()
        )));
    }
    for tag in &new.tags {
        let length = tag.trim().chars().count();
        if !(1..=MAX_TAG).contains(&length) || tag.chars().any(char::is_control) {
            return Err(Error::bad_request(format!(
                "tag {tag:?}: 1 to {MAX_TAG} characters, none a control character"
            )));
        }
    }
    Ok(())
}

/// Captions `name` must be a stored, pinned WebVTT file of at most [`MAX_CAPTIONS`] bytes.
async fn check_captions(state: &AppState, name: &Hash) -> Result<()> {
    let relay = &state.relay;
    if !relay.blobs.is_pinned(name) {
        return Err(Error::not_found(format!(
            "captions {name} are not stored here: PUT /api/v1/blobs/{name} first"
        )));
    }
    let bytes = state.gateway.blob(*name, None).await?;
    if bytes.len() as u64 > MAX_CAPTIONS {
        return Err(Error::unprocessable(format!(
            "captions {name} have {} bytes; at most {MAX_CAPTIONS}",
            bytes.len()
        )));
    }
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| Error::unprocessable(format!("captions {name} are not UTF-8 text")))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let header = text.lines().next().unwrap_or_default();
    if header != "WEBVTT" && !header.starts_with("WEBVTT ") && !header.starts_with("WEBVTT\t") {
        return Err(Error::unprocessable(format!(
            "captions {name} are not WebVTT: the first line is not WEBVTT"
        )));
    }
    Ok(())
}

/// `GET /api/v1/videos` filters.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub(crate) struct Filter {
    /// Only the video published as this content id (whatever its visibility: who has the id has
    /// the link).
    content: Option<String>,
}

/// `GET /api/v1/videos`.
#[utoipa::path(
    get,
    path = "/api/v1/videos",
    operation_id = "videos",
    summary = "Public videos whose ladder is published, newest first; or the video published as \
        a content id",
    params(Filter),
    responses(
        (status = 200, body = VideoList),
        (status = 400, description = "the content id is not a hash", body = ErrorReply),
        (status = 451, description = "the content is refused by the relay's operator", body = ErrorReply),
        (status = 500, description = "the index failed", body = ErrorReply),
    ),
)]
pub(crate) async fn videos(
    State(state): State<AppState>,
    Query(filter): Query<Filter>,
) -> Result<Json<VideoList>> {
    let db = &state.relay.db;
    let videos = match filter.content {
        Some(id) => {
            let id = parse_hash(&id, "content id")?;
            state.relay.refuse_denied(&id)?;
            db.video_of(&id).await.map_err(Error::internal)?.into_iter().collect()
        }
        None => db.videos(None, LIST_LIMIT).await.map_err(Error::internal)?,
    };
    Ok(Json(VideoList { videos }))
}

/// `GET /api/v1/videos/mine`.
#[utoipa::path(
    get,
    path = "/api/v1/videos/mine",
    operation_id = "myVideos",
    summary = "The signer's videos, unlisted ones too, newest first (a signed read)",
    responses(
        (status = 200, body = VideoList),
        (status = 401, description = "unsigned, or signed wrongly", body = ErrorReply),
        (status = 500, description = "the index failed", body = ErrorReply),
    ),
)]
pub(crate) async fn my_videos(
    State(state): State<AppState>,
    Extension(signer): Extension<Signer>,
) -> Result<Json<VideoList>> {
    let db = &state.relay.db;
    let videos = db.videos(Some(&signer.account), LIST_LIMIT).await.map_err(Error::internal)?;
    Ok(Json(VideoList { videos }))
}

/// `GET /api/v1/videos/{job}`.
#[utoipa::path(
    get,
    path = "/api/v1/videos/{job}",
    operation_id = "video",
    summary = "The video of a job",
    params(("job" = u64, Path, description = "the job's number")),
    responses(
        (status = 200, body = Video),
        (status = 404, description = "no such video", body = ErrorReply),
    ),
)]
pub(crate) async fn video(
    State(state): State<AppState>,
    Path(job): Path<u64>,
) -> Result<Json<Video>> {
    match state.relay.db.video(job).await.map_err(Error::internal)? {
        Some(video) => Ok(Json(video)),
        None => Err(Error::not_found(format!("no video of job {job}"))),
    }
}

/// `DELETE /api/v1/videos/{job}`.
#[utoipa::path(
    delete,
    path = "/api/v1/videos/{job}",
    operation_id = "removeVideo",
    summary = "Take a video off the relay's listings (its creator only; its content stays)",
    params(("job" = u64, Path, description = "the job's number")),
    responses(
        (status = 204, description = "removed"),
        (status = 401, description = "unsigned, or signed wrongly", body = ErrorReply),
        (status = 403, description = "another account's video", body = ErrorReply),
        (status = 404, description = "no such video", body = ErrorReply),
    ),
)]
pub(crate) async fn remove_video(
    State(state): State<AppState>,
    Extension(signer): Extension<Signer>,
    Path(job): Path<u64>,
) -> Result<StatusCode> {
    let db = &state.relay.db;
    let video = db
        .video(job)
        .await
        .map_err(Error::internal)?
        .ok_or_else(|| Error::not_found(format!("no video of job {job}")))?;
    if video.creator != signer.account {
        return Err(Error::new(
            StatusCode::FORBIDDEN,
            format!("the video of job {job} is {}'s", video.creator),
        ));
    }
    db.remove_video(job).await.map_err(Error::internal)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/jobs/{id}/ladder`.
#[utoipa::path(
    post,
    path = "/api/v1/jobs/{id}/ladder",
    operation_id = "publishLadder",
    summary = "Publish a done job's ladder: assembled from its accepted results, checked against \
        the ladder hash the chain recorded, added as content (charged to the signer)",
    params(("id" = u64, Path, description = "the job's number")),
    responses(
        (status = 201, description = "published", body = Content),
        (status = 401, description = "unsigned, or signed wrongly", body = ErrorReply),
        (status = 403, description = "the account may not store here", body = ErrorReply),
        (status = 404, description = "no such job, or a segment no peer has", body = ErrorReply),
        (status = 409, description = "the job is not done", body = ErrorReply),
        (status = 413, description = "over the account's quota", body = ErrorReply),
        (status = 422, description = "the results do not make a ladder the chain recorded", body = ErrorReply),
        (status = 502, description = "the chain RPC failed", body = ErrorReply),
        (status = 503, description = "the relay follows no chain, or has no ffmpeg", body = ErrorReply),
    ),
)]
pub(crate) async fn publish_ladder(
    State(state): State<AppState>,
    Extension(signer): Extension<Signer>,
    Path(id): Path<u64>,
) -> Result<(StatusCode, Json<Content>)> {
    let quota = state.relay.quota(&signer)?;
    let chain = chain(&state)?;
    let reply = match chain.job(id).await {
        Ok(reply) => reply,
        Err(ClientError::Refused { status: 404, .. }) => {
            return Err(Error::not_found(format!("no job {id} on the chain")));
        }
        Err(e) => return Err(chain_failed(e)),
    };
    if reply.state != JobStateReply::Done {
        return Err(Error::new(
            StatusCode::CONFLICT,
            format!("job {id} is {:?}, not done", reply.state).to_lowercase(),
        ));
    }
    let job: Job = chain
        .read(&jobs::job_key(id))
        .await
        .map_err(chain_failed)?
        .ok_or_else(|| Error::not_found(format!("no job {id} on the chain")))?;
    let manifest = assemble(&state, id, &job, &reply).await?;
    let bytes = serde_json::to_vec_pretty(&manifest).map_err(Error::internal)?;
    let content = crate::writes::publish(&state, &signer.account, quota, bytes.into()).await?;
    if state.relay.db.video(id).await.map_err(Error::internal)?.is_some() {
        state.relay.db.set_video_content(id, &content.id).await.map_err(Error::internal)?;
    }
    Ok((StatusCode::CREATED, Json(content)))
}

/// Job `id`'s ladder manifest from its accepted results, checked against the recorded hash.
async fn assemble(
    state: &AppState,
    id: u64,
    job: &Job,
    reply: &kinema_chain::rpc::JobReply,
) -> Result<Manifest> {
    let ff = state.relay.uploads.ffmpeg()?;
    let segments = job.args.segments as usize;
    let rungs = &job.args.ladder.rungs;
    // outputs[r][s]: rung r's segment s, as the job accepted it.
    let mut outputs = vec![vec![(Hash::ZERO, 0u64); segments]; rungs.len()];
    for result in &reply.results {
        let (Some(r), Some(hash), Some(size)) =
            (rungs.iter().position(|g| g.name == result.rendition), result.hash, result.size)
        else {
            return Err(Error::unprocessable(format!(
                "job {id}: segment {} {} is accepted without an output of a rung",
                result.segment, result.rendition
            )));
        };
        let Some(slot) = outputs[r].get_mut(result.segment as usize) else {
            return Err(Error::unprocessable(format!(
                "job {id}: a result for segment {} of {segments}",
                result.segment
            )));
        };
        *slot = (hash, size);
    }
    let source_id = Hash(job.args.source);
    let source: Manifest = serde_json::from_slice(&state.gateway.blob(source_id, None).await?)
        .map_err(|e| Error::unprocessable(format!("the source manifest {source_id}: {e}")))?;
    source
        .check()
        .map_err(|why| Error::unprocessable(format!("the source manifest {source_id}: {why}")))?;
    let tmp = tempfile::tempdir().map_err(Error::internal)?;
    let mut firsts = Vec::with_capacity(rungs.len());
    for (rung, o) in rungs.iter().zip(&outputs) {
        let (hash, size) = o.first().copied().unwrap_or((Hash::ZERO, 0));
        let bytes = state.gateway.blob(hash, Some(size)).await?;
        let path = tmp.path().join(format!("{}.ts", rung.name));
        tokio::fs::write(&path, bytes).await.map_err(Error::internal)?;
        firsts.push(path);
    }
    let renditions: Vec<Rendition> = rungs
        .iter()
        .map(|rung| Rendition {
            name: rung.name.clone(),
            width: rung.width,
            height: rung.height,
            max_bitrate: rung.max_kbps.saturating_mul(1000),
        })
        .collect();
    let job = job.clone();
    tokio::task::spawn_blocking(move || {
        let manifest = ladder::assemble(&ff, &source, renditions, &outputs, &firsts)
            .map_err(|e| Error::unprocessable(format!("assembling job {id}'s ladder: {e}")))?;
        manifest
            .check()
            .map_err(|why| Error::unprocessable(format!("job {id}'s assembled manifest: {why}")))?;
        jobs::check_ladder(id, &job, &manifest.outputs()).map_err(Error::unprocessable)?;
        drop(tmp);
        Ok(manifest)
    })
    .await
    .map_err(Error::internal)?
}
