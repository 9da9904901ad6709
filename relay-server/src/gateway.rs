//! The HLS gateway, `GET /hls/{content}/{path}`: `master.m3u8` and each rendition's
//! `index.m3u8` written from the content's `manifest.json` with kinema-media's own functions (so
//! they are the ladder's files byte for byte), and segments served by blake3 from the blob store
//! or fetched from peers (verified, and kept).
//!
//! A manifest is accepted only when every rendition is a plain name and every segment is named
//! by its hash, so no path escapes the gateway.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use kinema_chain::Hash;
use kinema_http::{Error, Result};
use kinema_media::hls::{self, Manifest};
use kinema_net::blobs::BlobStore;
use kinema_net::p2p::P2p;

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
    manifests: Mutex<HashMap<Hash, Arc<Manifest>>>,
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
    if manifest.renditions.is_empty() {
        return Err(Error::unprocessable("the manifest lists no rendition"));
    }
    for rendition in &manifest.renditions {
        let name = &rendition.rendition.name;
        if name.is_empty() || name.contains(['/', '\\', '.']) {
            return Err(Error::unprocessable(format!(
                "rendition name {name:?} is not a plain name"
            )));
        }
        if rendition.playlist != format!("{name}/index.m3u8") {
            let why = format!("rendition {name}'s playlist is {:?}", rendition.playlist);
            return Err(Error::unprocessable(why));
        }
        if rendition.segments.is_empty() {
            return Err(Error::unprocessable(format!("rendition {name} has no segment")));
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
        Self { p2p, blobs, metrics, manifests: Mutex::new(HashMap::new()) }
    }

    /// Blob `name` from the store, or fetched from peers (and kept): 404 when no peer has it,
    /// 504 when none sent it in time.
    pub async fn blob(&self, name: Hash) -> Result<Vec<u8>> {
        let blobs = self.blobs.clone();
        if blobs.has(&name) {
            return tokio::task::spawn_blocking(move || blobs.get(&name))
                .await
                .map_err(Error::internal)?
                .map_err(Error::internal);
        }
        match tokio::time::timeout(FETCH_TIMEOUT, self.p2p.fetch(name)).await {
            Ok(Ok(bytes)) => Ok(bytes),
            Ok(Err(e)) => Err(Error::not_found(e.to_string())),
            Err(_) => Err(Error::new(
                axum::http::StatusCode::GATEWAY_TIMEOUT,
                format!("no peer sent blob {name} within {} s", FETCH_TIMEOUT.as_secs()),
            )),
        }
    }

    /// Keeps content `id`'s checked manifest in memory.
    pub fn remember(&self, id: Hash, manifest: Arc<Manifest>) {
        let mut manifests = self.manifests.lock().unwrap_or_else(|e| e.into_inner());
        if manifests.len() >= MANIFESTS_KEPT {
            manifests.clear();
        }
        manifests.insert(id, manifest);
    }

    /// The manifest of content `id`, from memory, the store or peers.
    async fn manifest(&self, id: Hash) -> Result<Arc<Manifest>> {
        let known = self.manifests.lock().unwrap_or_else(|e| e.into_inner()).get(&id).cloned();
        if let Some(known) = known {
            return Ok(known);
        }
        let bytes = self.blob(id).await.map_err(|e| e.context(format_args!("content {id}")))?;
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
        (status = 504, description = "no peer sent it in time", body = kinema_chain::rpc::ErrorReply),
    ),
)]
pub async fn hls(
    State(gateway): State<Arc<Gateway>>,
    Path((content, path)): Path<(String, String)>,
) -> Result<Response> {
    let id = parse_hash(&content, "content id")?;
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
    let bytes = gateway.blob(segment.blake3).await?;
    Ok(gateway.served("video/mp2t", bytes))
}
