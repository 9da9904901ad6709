//! The HLS gateway, `GET /hls/{content}/{path}`: `master.m3u8` and each rendition's
//! `index.m3u8` written from the content's `manifest.json` with kinema-media's own functions (so
//! they are the ladder's files byte for byte), and segments served by blake3 from the blob store
//! or fetched from peers (verified, and kept).
//!
//! A manifest is accepted only when it passes kinema-media's checks (rendition names a short
//! `[a-z0-9_-]` word, RFC 6381 codec strings, sizes and durations in range: no manifest can
//! write a line of its own into a playlist) and every segment is named by its hash, so no path
//! escapes the gateway. A blob is served only once checked against its name (and a segment
//! against the size its manifest gives); a stored blob that fails the check is removed.
//! What the operator denies is answered 451.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use kinema_chain::Hash;
use kinema_http::{Error, Result};
use kinema_media::hls::{self, Manifest};
use kinema_net::blobs::BlobStore;
use kinema_net::p2p::{FetchError, P2p};

use crate::metrics::Metrics;

/// How long the gateway waits for a blob from peers.
const FETCH_TIMEOUT: Duration = Duration::from_secs(30);
/// Manifests kept in memory at most (they are blobs too, read again when forgotten).
const MANIFESTS_KEPT: usize = 1024;

/// The playlists' media type.
const M3U8: &str = "application/vnd.apple.mpegurl";

/// Blobs from the store or the network, and the manifests read from them.
#[derive(Debug)]
pub struct Gateway {
    p2p: P2p,
    blobs: Arc<BlobStore>,
    metrics: Metrics,
    manifests: Mutex<Kept<Arc<Manifest>>>,
}

/// What is kept in memory by content id (manifests), at most [`MANIFESTS_KEPT`], the oldest
/// forgotten first.
#[derive(Debug)]
struct Kept<T> {
    by_id: HashMap<Hash, T>,
    order: VecDeque<Hash>,
}

impl<T> Default for Kept<T> {
    fn default() -> Self {
        Self { by_id: HashMap::new(), order: VecDeque::new() }
    }
}

impl<T> Kept<T> {
    fn insert(&mut self, id: Hash, manifest: T) {
        if self.by_id.insert(id, manifest).is_none() {
            self.order.push_back(id);
        }
        while self.by_id.len() > MANIFESTS_KEPT
            && let Some(oldest) = self.order.pop_front()
        {
            self.by_id.remove(&oldest);
        }
    }

    fn remove(&mut self, id: &Hash) {
        if self.by_id.remove(id).is_some() {
            self.order.retain(|kept| kept != id);
        }
    }
}

/// `text` as a blake3 hash, or a 400 naming it as `what`.
pub fn parse_hash(text: &str, what: &str) -> Result<Hash> {
    text.parse().map_err(|e| Error::bad_request(format!("{what}: {e}")))
}

/// Checks that `bytes` are a ladder's manifest a gateway can serve: 400 when they are not a
/// manifest, 422 when it is one the gateway will not serve.
pub fn check_manifest(bytes: &[u8]) -> Result<Manifest> {
    let manifest: Manifest = serde_json::from_slice(bytes).map_err(|e| {
        Error::bad_request(format!("the body is not a ladder's manifest.json: {e}"))
    })?;
    if manifest.version != hls::MANIFEST_VERSION {
        let why = format!(
            "manifest version {} is not {} (the version this relay reads)",
            manifest.version,
            hls::MANIFEST_VERSION
        );
        return Err(Error::unprocessable(why));
    }
    manifest.check().map_err(|why| Error::unprocessable(why.to_string()))?;
    for rendition in &manifest.renditions {
        let name = &rendition.rendition.name;
        if rendition.playlist != format!("{name}/index.m3u8") {
            let why = format!("rendition {name}'s playlist is {:?}", rendition.playlist);
            return Err(Error::unprocessable(why));
        }
        for segment in &rendition.segments {
            if segment.file != format!("{}.ts", segment.blake3) {
                let why = format!("segment {:?} is not named by its blake3 hash", segment.file);
                return Err(Error::unprocessable(why));
            }
        }
    }
    Ok(manifest)
}

impl Gateway {
    /// A gateway over `blobs`, fetching what they lack through `p2p`, counting what it serves.
    pub fn new(p2p: P2p, blobs: Arc<BlobStore>, metrics: Metrics) -> Self {
        Self { p2p, blobs, metrics, manifests: Mutex::new(Kept::default()) }
    }

    /// Blob `name` from the store (checked against its name: one that fails is removed), or
    /// fetched from peers (checked group by group, and kept): 404 when no peer has it, 503
    /// when the relay fetches too much at once, 504 when no peer sent it in time; 502 when it
    /// is not `expected_len` bytes long.
    pub async fn blob(&self, name: Hash, expected_len: Option<u64>) -> Result<Vec<u8>> {
        let blobs = self.blobs.clone();
        let bytes = if blobs.has(&name) {
            let read = tokio::task::spawn_blocking(move || {
                let bytes = blobs.get(&name)?;
                if Hash::digest(&bytes) == name {
                    return Ok(Some(bytes));
                }
                blobs.remove(&name).map(|()| None)
            });
            match read.await.map_err(Error::internal)?.map_err(Error::internal)? {
                Some(bytes) => bytes,
                None => {
                    tracing::error!(%name, "a stored blob does not hash to its name: removed");
                    return Err(Error::internal(format!(
                        "the stored copy of blob {name} was damaged and is removed; ask again"
                    )));
                }
            }
        } else {
            match tokio::time::timeout(FETCH_TIMEOUT, self.p2p.fetch(name)).await {
                Ok(Ok(bytes)) => bytes,
                Ok(Err(e @ FetchError::Busy(_))) => {
                    return Err(Error::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()));
                }
                Ok(Err(e)) => return Err(Error::not_found(e.to_string())),
                Err(_) => {
                    return Err(Error::new(
                        StatusCode::GATEWAY_TIMEOUT,
                        format!("no peer sent blob {name} within {} s", FETCH_TIMEOUT.as_secs()),
                    ));
                }
            }
        };
        if let Some(expected) = expected_len
            && bytes.len() as u64 != expected
        {
            return Err(Error::new(
                StatusCode::BAD_GATEWAY,
                format!("blob {name} has {} bytes, its manifest says {expected}", bytes.len()),
            ));
        }
        Ok(bytes)
    }

    /// Keeps content `id`'s checked manifest in memory.
    pub fn remember(&self, id: Hash, manifest: Arc<Manifest>) {
        self.manifests.lock().unwrap_or_else(|e| e.into_inner()).insert(id, manifest);
    }

    /// Forgets content `id`'s manifest.
    pub fn forget(&self, id: &Hash) {
        self.manifests.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
    }

    /// Content `id`'s manifest when it is kept in memory.
    fn known(&self, id: &Hash) -> Option<Arc<Manifest>> {
        self.manifests.lock().unwrap_or_else(|e| e.into_inner()).by_id.get(id).cloned()
    }

    /// The segments content `id`'s manifest names, when the relay knows the manifest (in
    /// memory or in its store; it does not ask peers).
    pub async fn segments_of(&self, id: Hash) -> Vec<Hash> {
        let manifest = match self.known(&id) {
            Some(manifest) => Some(manifest),
            None if self.blobs.has(&id) => {
                let blobs = self.blobs.clone();
                let bytes = tokio::task::spawn_blocking(move || blobs.get(&id)).await;
                bytes.ok().and_then(|b| b.ok()).and_then(|b| check_manifest(&b).ok()).map(Arc::new)
            }
            None => None,
        };
        let Some(manifest) = manifest else { return Vec::new() };
        manifest.renditions.iter().flat_map(|r| &r.segments).map(|s| s.blake3).collect()
    }

    /// The manifest of content `id`, from memory, the store or peers.
    async fn manifest(&self, id: Hash) -> Result<Arc<Manifest>> {
        if let Some(known) = self.known(&id) {
            return Ok(known);
        }
        let bytes =
            self.blob(id, None).await.map_err(|e| e.context(format_args!("content {id}")))?;
        let manifest = Arc::new(check_manifest(&bytes)?);
        self.remember(id, manifest.clone());
        Ok(manifest)
    }

    /// `bytes` as an answer of `content_type`, immutable (named by their hash), counted.
    pub fn served(&self, content_type: &'static str, bytes: Vec<u8>) -> Response {
        self.metrics.served(bytes.len());
        let headers = [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ];
        (headers, bytes).into_response()
    }
}

/// `GET /hls/{content}/{path}`: playlists written from the manifest, segments by hash.
#[utoipa::path(
    get,
    path = "/hls/{content}/{path}",
    operation_id = "hls",
    summary = "master.m3u8, <rendition>/index.m3u8 or <rendition>/<blake3>.ts",
    params(
        ("content" = Hash, Path, description = "the content id: blake3 of its manifest.json"),
        ("path" = String, Path, description = "what of it (may hold a /)"),
    ),
    responses(
        (status = 200, description = "a playlist or a segment", content(
            (String = "application/vnd.apple.mpegurl"),
            (inline(crate::routes::Octets) = "video/mp2t"),
        )),
        (status = 400, description = "the content id is not a hash", body = kinema_chain::rpc::ErrorReply),
        (status = 404, description = "no such content, or no such file of it", body = kinema_chain::rpc::ErrorReply),
        (status = 451, description = "refused by the relay's operator", body = kinema_chain::rpc::ErrorReply),
        (status = 502, description = "a segment is not the size its manifest gives", body = kinema_chain::rpc::ErrorReply),
        (status = 503, description = "too many fetches under way", body = kinema_chain::rpc::ErrorReply),
        (status = 504, description = "no peer sent it in time", body = kinema_chain::rpc::ErrorReply),
    ),
)]
pub async fn hls(
    State(state): State<crate::routes::AppState>,
    Path((content, path)): Path<(String, String)>,
) -> Result<Response> {
    let id = parse_hash(&content, "content id")?;
    state.relay.refuse_denied(&id)?;
    let gateway = &state.gateway;
    let manifest = gateway.manifest(id).await?;
    let missing = || Error::not_found(format!("content {id} has no {path:?}"));
    if path == "master.m3u8" {
        let text = hls::master_playlist(&manifest.renditions);
        return Ok(gateway.served(M3U8, text.into_bytes()));
    }
    let (rendition, file) = path.split_once('/').ok_or_else(missing)?;
    let rendition =
        manifest.renditions.iter().find(|r| r.rendition.name == rendition).ok_or_else(missing)?;
    if file == "index.m3u8" {
        let text = hls::media_playlist(&rendition.segments);
        return Ok(gateway.served(M3U8, text.into_bytes()));
    }
    let segment = rendition.segments.iter().find(|s| s.file == file).ok_or_else(missing)?;
    state.relay.refuse_denied(&segment.blake3)?;
    let bytes = gateway.blob(segment.blake3, Some(segment.bytes)).await?;
    Ok(gateway.served("video/mp2t", bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_cache_keeps_at_most_its_bound_forgetting_the_oldest() {
        let id = |i: usize| Hash::digest(&i.to_le_bytes());
        let mut kept = Kept::default();
        for i in 0..MANIFESTS_KEPT + 100 {
            kept.insert(id(i), i);
            // Inserting one already kept adds nothing.
            kept.insert(id(i), i);
        }
        assert_eq!((kept.by_id.len(), kept.order.len()), (MANIFESTS_KEPT, MANIFESTS_KEPT));
        assert!(!kept.by_id.contains_key(&id(99)) && kept.by_id.contains_key(&id(100)));
        kept.remove(&id(100));
        assert_eq!((kept.by_id.len(), kept.order.len()), (MANIFESTS_KEPT - 1, MANIFESTS_KEPT - 1));
    }
}
