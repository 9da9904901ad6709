//! What accounts write: blobs (`PUT /api/v1/blobs/{hash}`), streamed to disk and hashed as they
//! arrive, and content (`POST /api/v1/content`), a ladder's checked manifest. Both are signed
//! ([`crate::auth`]); what they store is pinned in the blob store (never evicted) and counted
//! against the signer's quota ([`crate::limits::Quotas`]): a blob once, for whoever pinned it
//! first, and a manifest with every segment it names, so publishing content the relay must then
//! fetch from peers costs what keeping it costs.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use futures::StreamExt;
use kinema_chain::rpc::ErrorReply;
use kinema_chain::{Address, Hash};
use kinema_http::{Error, Result};
use kinema_net::blobs::{BlobError, BlobStore, Written};

use crate::api::{self, Content};
use crate::auth::Signer;
use crate::db::{DbError, now};
use crate::gateway::{check_manifest, parse_hash};
use crate::routes::{AppState, Octets};

/// 413 for a charge past the account's quota, 500 for anything else.
pub(crate) fn charge_failed(e: DbError) -> Error {
    match e {
        DbError::OverQuota { .. } => Error::new(StatusCode::PAYLOAD_TOO_LARGE, e.to_string()),
        e => Error::internal(e),
    }
}

/// `PUT /api/v1/blobs/{hash}`.
#[utoipa::path(
    put,
    path = "/api/v1/blobs/{hash}",
    operation_id = "uploadBlob",
    summary = "Store a blob (a segment) under its hash, pinned, counted against the signer's quota",
    params(("hash" = Hash, Path, description = "blake3 of the body")),
    request_body(content = inline(Octets), content_type = "application/octet-stream"),
    responses(
        (status = 201, description = "stored", body = api::Blob),
        (status = 400, description = "the name is not a hash", body = ErrorReply),
        (status = 401, description = "unsigned, or signed wrongly", body = ErrorReply),
        (status = 403, description = "the account may not store here", body = ErrorReply),
        (status = 413, description = "over the upload limit or the account's quota", body = ErrorReply),
        (status = 422, description = "the body does not hash to the name, or is not the size the content that pinned it declared", body = ErrorReply),
        (status = 451, description = "refused by the relay's operator", body = ErrorReply),
        (status = 500, description = "the store failed", body = ErrorReply),
    ),
)]
pub(crate) async fn upload_blob(
    State(state): State<AppState>,
    Extension(signer): Extension<Signer>,
    Path(hash): Path<String>,
    body: Body,
) -> Result<(StatusCode, Json<api::Blob>)> {
    let name = parse_hash(&hash, "blob name")?;
    let relay = &state.relay;
    relay.refuse_denied(&name)?;
    let quota = relay.quota(&signer)?;
    if signer.body != name {
        let why = format!("the signature covers a body of blake3 {}, not {name}", signer.body);
        return Err(crate::auth::unauthorized(why));
    }
    let used = relay.db.used(&signer.account).await.map_err(Error::internal)?;
    // What this upload may take: the relay's limit, and what is left of the quota (unless
    // someone pinned the blob already: then it costs nothing).
    let pinned = relay.blobs.is_pinned(&name);
    let room = if pinned { u64::MAX } else { quota.saturating_sub(used) };
    let limit = (relay.max_upload as u64).min(room);
    let written = receive(&relay.blobs, body, limit, || {
        if room < relay.max_upload as u64 {
            format!(
                "account {} holds {used} of its {quota} bytes; this blob is larger than the \
                 {room} left",
                signer.account
            )
        } else {
            format!("the request body is over the {}-byte limit", relay.max_upload)
        }
    })
    .await?;
    signer.check_body(&written.name())?;
    let size = written.len();
    // Pinned already (by a manifest, at the size it declared): it must be that size, or a
    // manifest declaring small segments would let their real bytes in uncharged.
    let declared = relay.db.pinned_bytes(&name).await.map_err(Error::internal)?;
    if let Some(declared) = declared
        && declared != size
    {
        return Err(Error::unprocessable(format!(
            "blob {name} has {size} bytes; the content that pinned it declared {declared}"
        )));
    }
    relay.db.pin(&signer.account, quota, &[(name, size)]).await.map_err(charge_failed)?;
    let blobs = relay.blobs.clone();
    tokio::task::spawn_blocking(move || blobs.commit(written, Some(name), true))
        .await
        .map_err(Error::internal)?
        .map_err(|e| match e {
            BlobError::WrongHash { .. } => Error::unprocessable(e.to_string()),
            e => Error::internal(e),
        })?;
    let _ = relay.p2p.provide(name).await;
    Ok((StatusCode::CREATED, Json(api::Blob { blake3: name, bytes: size })))
}

/// Streams `body` into a blob of the store's (not yet committed), at most `limit` bytes (413
/// with `too_large()` beyond).
async fn receive(
    blobs: &BlobStore,
    body: Body,
    limit: u64,
    too_large: impl Fn() -> String,
) -> Result<Written> {
    let writer = blobs.writer().map_err(Error::internal)?;
    // Written on a blocking thread, a piece at a time, as the pieces arrive.
    let (pieces, mut arriving) = tokio::sync::mpsc::channel::<Bytes>(8);
    let writing = tokio::task::spawn_blocking(move || {
        let mut writer = writer;
        while let Some(piece) = arriving.blocking_recv() {
            writer.write(&piece)?;
        }
        writer.finish()
    });
    let mut stream = body.into_data_stream();
    let mut received = 0u64;
    let mut refused = None;
    while let Some(piece) = stream.next().await {
        let piece = match piece {
            Ok(piece) => piece,
            Err(e) => {
                let inner = e.into_inner();
                refused = Some(if inner.is::<http_body_util::LengthLimitError>() {
                    Error::new(StatusCode::PAYLOAD_TOO_LARGE, too_large())
                } else {
                    Error::bad_request(format!("reading the request body: {inner}"))
                });
                break;
            }
        };
        received += piece.len() as u64;
        if received > limit {
            refused = Some(Error::new(StatusCode::PAYLOAD_TOO_LARGE, too_large()));
            break;
        }
        if pieces.send(piece).await.is_err() {
            // The writer failed: its error follows.
            break;
        }
    }
    drop(pieces);
    // Refused or not, the writer is done (and its file removed) before the answer.
    let written = writing.await.map_err(Error::internal)?;
    if let Some(refused) = refused {
        return Err(refused);
    }
    written.map_err(Error::internal)
}

/// `POST /api/v1/content`.
#[utoipa::path(
    post,
    path = "/api/v1/content",
    operation_id = "addContent",
    summary = "Publish a ladder by its manifest.json (its blake3 is the content id); the manifest \
        and every segment it names are pinned and counted against the signer's quota",
    request_body(
        content = Object,
        content_type = "application/json",
        description = "a ladder's manifest.json, as `kinema media ladder` wrote it",
    ),
    responses(
        (status = 201, description = "added", body = Content),
        (status = 400, description = "not a ladder's manifest", body = ErrorReply),
        (status = 401, description = "unsigned, or signed wrongly", body = ErrorReply),
        (status = 403, description = "the account may not store here", body = ErrorReply),
        (status = 413, description = "over the body limit or the account's quota", body = ErrorReply),
        (status = 422, description = "a manifest the gateway will not serve", body = ErrorReply),
        (status = 451, description = "refused by the relay's operator", body = ErrorReply),
        (status = 500, description = "the store or the index failed", body = ErrorReply),
    ),
)]
pub(crate) async fn add_content(
    State(state): State<AppState>,
    Extension(signer): Extension<Signer>,
    bytes: Bytes,
) -> Result<(StatusCode, Json<Content>)> {
    let quota = state.relay.quota(&signer)?;
    signer.check_body(&Hash::digest(&bytes))?;
    let content = publish(&state, &signer.account, quota, bytes).await?;
    Ok((StatusCode::CREATED, Json(content)))
}

/// Publishes a ladder's `manifest.json` for `account` (which may hold `quota` bytes): checked,
/// pinned with every segment it names and charged, stored, provided and indexed.
pub(crate) async fn publish(
    state: &AppState,
    account: &Address,
    quota: u64,
    bytes: Bytes,
) -> Result<Content> {
    let relay = &state.relay;
    let id = Hash::digest(&bytes);
    relay.refuse_denied(&id)?;
    let manifest = check_manifest(&bytes)?;
    let segments = manifest.renditions.iter().flat_map(|r| &r.segments);
    let mut pins = vec![(id, bytes.len() as u64)];
    for segment in segments.clone() {
        relay.refuse_denied(&segment.blake3)?;
        pins.push((segment.blake3, segment.bytes));
    }
    relay.db.pin(account, quota, &pins).await.map_err(charge_failed)?;
    let blobs = relay.blobs.clone();
    let names: Vec<Hash> = pins.iter().map(|(name, _)| *name).collect();
    let stored = bytes.clone();
    tokio::task::spawn_blocking(move || {
        // Pinned first, so what is fetched for it later is kept.
        names.iter().try_for_each(|name| blobs.pin(name))?;
        blobs.put(&stored)
    })
    .await
    .map_err(Error::internal)?
    .map_err(Error::internal)?;
    let _ = relay.p2p.provide(id).await;
    let content = Content {
        id,
        name: manifest.source.name.clone(),
        duration_ms: (manifest.source.duration * 1000.0).round() as i64,
        renditions: manifest.renditions.iter().map(|r| r.rendition.name.clone()).collect(),
        segments: manifest.segment_durations.len() as i64,
        bytes: segments.map(|s| s.bytes as i64).sum(),
        added: now(),
        hls: Content::hls_path(&id),
    };
    relay.db.add_content(&content).await.map_err(Error::internal)?;
    state.gateway.remember(id, std::sync::Arc::new(manifest));
    // Content added before keeps its first time.
    Ok(relay.db.content_by_id(&id).await.map_err(Error::internal)?.unwrap_or(content))
}

/// `GET /api/v1/accounts/{address}`.
#[utoipa::path(
    get,
    path = "/api/v1/accounts/{address}",
    operation_id = "account",
    summary = "What an account's writes hold on the relay, and its quota",
    params(("address" = String, Path, description = "the account's address, 40 hex digits")),
    responses(
        (status = 200, body = api::Account),
        (status = 400, description = "not an address", body = ErrorReply),
        (status = 500, description = "the index failed", body = ErrorReply),
    ),
)]
pub(crate) async fn account(
    State(state): State<AppState>,
    Path(address): Path<String>,
) -> Result<Json<api::Account>> {
    let address: Address =
        address.parse().map_err(|e| Error::bad_request(format!("account address: {e}")))?;
    let used = state.relay.db.used(&address).await.map_err(Error::internal)?;
    Ok(Json(api::Account { address, used, quota: state.relay.quotas.of(&address) }))
}
