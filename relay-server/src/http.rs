//! The relay's HTTP side.
//!
//! - `GET /healthz`: 200 while the relay runs; `GET /metrics`: Prometheus text;
//! - `GET /api/v1/status`: its peer id and the multiaddrs browsers and peers dial;
//! - `GET /api/v1/peers`: the peers it has seen (from the index), and whether connected now;
//! - `GET /api/v1/content`, `GET /api/v1/content/{id}`, `POST /api/v1/content` (a ladder's
//!   `manifest.json`; its blake3 is the content id);
//! - `PUT /api/v1/blobs/{hash}` (a segment, checked against its hash), `GET /api/v1/blobs/{hash}`
//!   (from the store, or fetched from peers);
//! - `GET /hls/{content}/master.m3u8`, `.../{rendition}/index.m3u8`, `.../{rendition}/{hash}.ts`;
//! - `GET /api/v1/openapi.json`; `GET /` and other paths: the static assets.
//!
//! Every error is a 4xx or 5xx with `{"error": "<what is wrong>"}`; each client (IP address) is
//! held to a request rate (429 with `Retry-After` beyond it).

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::path::{Component, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use kinema_chain::Hash;
use kinema_media::hls::{self, Manifest};
use kinema_net::blobs::BlobStore;
use kinema_net::p2p::P2p;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::Limits;
use crate::db::{ContentRow, Db, PeerRow, now};

/// How long the gateway waits for a blob from peers.
const FETCH_TIMEOUT: Duration = Duration::from_secs(30);
/// Rows a listing returns at most.
const LIST_LIMIT: i64 = 1000;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

/// What a relay's HTTP side serves from.
pub struct Setup {
    /// The relay's libp2p node.
    pub p2p: P2p,
    /// Its index.
    pub db: Db,
    /// Its blob store.
    pub blobs: Arc<BlobStore>,
    /// The static assets' directory.
    pub assets: Option<PathBuf>,
    /// Request limits.
    pub limits: Limits,
    /// The chain it serves (its gossip topics are named after it).
    pub chain_id: String,
    /// A chain RPC to tell browsers of.
    pub chain_rpc: Option<String>,
}

struct Inner {
    p2p: P2p,
    db: Db,
    blobs: Arc<BlobStore>,
    assets: Option<PathBuf>,
    limits: Limits,
    chain_id: String,
    chain_rpc: Option<String>,
    manifests: Mutex<HashMap<Hash, Arc<Manifest>>>,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    served_bytes: AtomicU64,
    limited: AtomicU64,
    started: Instant,
}

impl AppState {
    /// The state of a relay's HTTP side.
    pub fn new(setup: Setup) -> Self {
        let Setup { p2p, db, blobs, assets, limits, chain_id, chain_rpc } = setup;
        Self(Arc::new(Inner {
            p2p,
            db,
            blobs,
            assets,
            limits,
            chain_id,
            chain_rpc,
            manifests: Mutex::new(HashMap::new()),
            buckets: Mutex::new(HashMap::new()),
            requests: Mutex::new(BTreeMap::new()),
            served_bytes: AtomicU64::new(0),
            limited: AtomicU64::new(0),
            started: Instant::now(),
        }))
    }
}

/// The relay's routes.
pub fn router(state: AppState) -> Router {
    let upload = DefaultBodyLimit::max(state.0.limits.max_upload);
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .route("/api/v1/status", get(status))
        .route("/api/v1/peers", get(peers))
        .route("/api/v1/content", get(list_content).post(add_content))
        .route("/api/v1/content/{id}", get(content))
        .route("/api/v1/blobs/{hash}", put(upload_blob).layer(upload).get(blob))
        .route("/api/v1/openapi.json", get(|| async { Json(openapi_document()) }))
        .route("/api/v1/{*rest}", get(no_endpoint).post(no_endpoint).put(no_endpoint))
        .route("/hls/{content}/{*path}", get(gateway))
        .fallback(get(asset))
        .layer(DefaultBodyLimit::max(state.0.limits.max_body))
        .layer(middleware::from_fn_with_state(state.clone(), admit))
        .with_state(state)
}

/// An error answer: a status and what is wrong.
#[derive(Debug)]
pub struct Failure(StatusCode, String);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<crate::db::DbError> for Failure {
    fn from(e: crate::db::DbError) -> Self {
        Failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

fn bad(why: impl Into<String>) -> Failure {
    Failure(StatusCode::BAD_REQUEST, why.into())
}

/// A body that was refused (too large, or unreadable), as a failure that says so.
fn body(body: Result<Bytes, BytesRejection>, limit: usize) -> Result<Bytes, Failure> {
    body.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => Failure(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is over the {limit}-byte limit"),
        ),
        status => Failure(status, format!("reading the request body: {e}")),
    })
}

fn parse_hash(text: &str, what: &str) -> Result<Hash, Failure> {
    let hex = text.strip_prefix("0x").unwrap_or(text);
    Hash::from_str(hex).map_err(|_| bad(format!("{what} {text:?} is not 64 hex digits")))
}

/// The route class a path is counted under in `/metrics`.
fn route_class(path: &str) -> &'static str {
    match path {
        "/healthz" => "healthz",
        "/metrics" => "metrics",
        p if p.starts_with("/api/v1/blobs") => "blobs",
        p if p.starts_with("/api/v1/content") => "content",
        p if p.starts_with("/api/v1/") => "api",
        p if p.starts_with("/hls/") => "hls",
        _ => "assets",
    }
}

/// Holds each client to its request rate (a token bucket per IP address), and counts every
/// answer by route and status.
async fn admit(
    State(state): State<AppState>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    let class = route_class(request.uri().path());
    let limits = state.0.limits;
    let admitted = {
        let mut buckets = state.0.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if buckets.len() > 100_000 {
            // Forget clients idle long enough to have a full bucket again.
            let full = Duration::from_secs_f64(limits.burst / limits.requests_per_second);
            buckets.retain(|_, (_, at)| now.duration_since(*at) < full);
        }
        let (tokens, at) = buckets.entry(from.ip()).or_insert((limits.burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * limits.requests_per_second)
            .min(limits.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err((1.0 - *tokens) / limits.requests_per_second)
        }
    };
    let response = match admitted {
        Ok(()) => next.run(request).await,
        Err(wait) => {
            state.0.limited.fetch_add(1, Ordering::Relaxed);
            let why = format!(
                "too many requests from {}: the limit is {} per second",
                from.ip(),
                limits.requests_per_second
            );
            let mut response = Failure(StatusCode::TOO_MANY_REQUESTS, why).into_response();
            let seconds = HeaderValue::from(wait.ceil().max(1.0) as u64);
            response.headers_mut().insert(header::RETRY_AFTER, seconds);
            response
        }
    };
    let key = (class, response.status().as_u16());
    *state.0.requests.lock().unwrap_or_else(|e| e.into_inner()).entry(key).or_default() += 1;
    response
}

async fn no_endpoint() -> Failure {
    Failure(StatusCode::NOT_FOUND, "no such endpoint; see /api/v1/openapi.json".into())
}

/// `GET /api/v1/status`.
#[derive(Debug, Serialize, Deserialize)]
pub struct StatusReply {
    /// The relay's libp2p peer id.
    pub peer_id: String,
    /// Every multiaddr it can be dialled on (with `/p2p/<peer id>`).
    pub addresses: Vec<String>,
    /// Those a browser can dial (websocket, webrtc-direct).
    pub browser_addresses: Vec<String>,
    /// Peers connected now.
    pub connected_peers: usize,
    /// Peers in the index.
    pub known_peers: i64,
    /// Content in the index.
    pub content: i64,
    /// The chain it serves: a light node that follows its finalized headers over gossip joins
    /// `/kinema/<chain_id>/headers/1`.
    pub chain_id: String,
    /// A chain node's RPC browsers may read blocks and validator sets from, if the relay knows
    /// one.
    pub chain_rpc: Option<String>,
    /// Seconds since it started.
    pub uptime_seconds: u64,
    /// Its version.
    pub version: String,
}

async fn status(State(state): State<AppState>) -> Result<Json<StatusReply>, Failure> {
    let p2p = &state.0.p2p;
    let addresses: Vec<String> = p2p.addresses().iter().map(|a| a.to_string()).collect();
    let browser_addresses = addresses
        .iter()
        .filter(|a| a.contains("/ws/") || a.contains("/webrtc-direct/"))
        .cloned()
        .collect();
    let (known_peers, content) = state.0.db.counts().await?;
    Ok(Json(StatusReply {
        peer_id: p2p.peer_id().to_string(),
        addresses,
        browser_addresses,
        connected_peers: p2p.peers().len(),
        known_peers,
        content,
        chain_id: state.0.chain_id.clone(),
        chain_rpc: state.0.chain_rpc.clone(),
        uptime_seconds: state.0.started.elapsed().as_secs(),
        version: env!("CARGO_PKG_VERSION").into(),
    }))
}

/// One entry of `GET /api/v1/peers`.
#[derive(Debug, Serialize, Deserialize)]
pub struct PeerReply {
    /// What the index holds.
    #[serde(flatten)]
    pub peer: PeerRow,
    /// Whether it is connected now.
    pub connected: bool,
}

async fn peers(State(state): State<AppState>) -> Result<Json<Value>, Failure> {
    let connected: Vec<String> =
        state.0.p2p.peers().iter().map(|p| p.peer_id.to_string()).collect();
    let peers: Vec<PeerReply> = state
        .0
        .db
        .peers(LIST_LIMIT)
        .await?
        .into_iter()
        .map(|peer| PeerReply { connected: connected.contains(&peer.peer_id), peer })
        .collect();
    Ok(Json(json!({ "peers": peers })))
}

/// One piece of content, with where to play it.
#[derive(Debug, Serialize, Deserialize)]
pub struct ContentReply {
    /// What the index holds.
    #[serde(flatten)]
    pub content: ContentRow,
    /// Its master playlist on this relay.
    pub hls: String,
}

fn content_reply(content: ContentRow) -> ContentReply {
    ContentReply { hls: format!("/hls/{}/master.m3u8", content.id), content }
}

async fn list_content(State(state): State<AppState>) -> Result<Json<Value>, Failure> {
    let content: Vec<ContentReply> =
        state.0.db.content(LIST_LIMIT).await?.into_iter().map(content_reply).collect();
    Ok(Json(json!({ "content": content })))
}

async fn content(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ContentReply>, Failure> {
    let id = parse_hash(&id, "content id")?.to_string();
    match state.0.db.content_by_id(&id).await? {
        Some(row) => Ok(Json(content_reply(row))),
        None => Err(Failure(StatusCode::NOT_FOUND, format!("no content {id}"))),
    }
}

/// Checks that `bytes` are a ladder's manifest a gateway can serve.
fn check_manifest(bytes: &[u8]) -> Result<Manifest, Failure> {
    let unprocessable = |why: String| Failure(StatusCode::UNPROCESSABLE_ENTITY, why);
    let manifest: Manifest = serde_json::from_slice(bytes)
        .map_err(|e| bad(format!("the body is not a ladder's manifest.json: {e}")))?;
    if manifest.version != hls::MANIFEST_VERSION {
        let why = format!(
            "manifest version {} is not {} (the version this relay reads)",
            manifest.version,
            hls::MANIFEST_VERSION
        );
        return Err(unprocessable(why));
    }
    if manifest.renditions.is_empty() {
        return Err(unprocessable("the manifest lists no rendition".into()));
    }
    for rendition in &manifest.renditions {
        let name = &rendition.rendition.name;
        if name.is_empty() || name.contains(['/', '\\', '.']) {
            return Err(unprocessable(format!("rendition name {name:?} is not a plain name")));
        }
        if rendition.playlist != format!("{name}/index.m3u8") {
            let why = format!("rendition {name}'s playlist is {:?}", rendition.playlist);
            return Err(unprocessable(why));
        }
        if rendition.segments.is_empty() {
            return Err(unprocessable(format!("rendition {name} has no segment")));
        }
        for segment in &rendition.segments {
            if segment.file != format!("{}.ts", segment.blake3) {
                let why = format!("segment {:?} is not named by its blake3 hash", segment.file);
                return Err(unprocessable(why));
            }
        }
    }
    Ok(manifest)
}

async fn add_content(
    State(state): State<AppState>,
    upload: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<ContentReply>), Failure> {
    let bytes = body(upload, state.0.limits.max_body)?;
    let manifest = check_manifest(&bytes)?;
    let blobs = state.0.blobs.clone();
    let stored = bytes.clone();
    let id = tokio::task::spawn_blocking(move || blobs.put(&stored))
        .await
        .map_err(|e| Failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| Failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let _ = state.0.p2p.provide(id).await;
    let row = ContentRow {
        id: id.to_string(),
        name: manifest.source.name.clone(),
        duration_ms: (manifest.source.duration * 1000.0).round() as i64,
        renditions: manifest.renditions.iter().map(|r| r.rendition.name.clone()).collect(),
        segments: manifest.segment_durations.len() as i64,
        bytes: manifest.renditions.iter().flat_map(|r| &r.segments).map(|s| s.bytes as i64).sum(),
        added: now(),
    };
    state.0.db.add_content(&row).await?;
    state.0.manifests.lock().unwrap_or_else(|e| e.into_inner()).insert(id, Arc::new(manifest));
    let row = state.0.db.content_by_id(&row.id).await?.unwrap_or(row);
    Ok((StatusCode::CREATED, Json(content_reply(row))))
}

async fn upload_blob(
    State(state): State<AppState>,
    Path(hash): Path<String>,
    upload: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), Failure> {
    let name = parse_hash(&hash, "blob name")?;
    let bytes = body(upload, state.0.limits.max_upload)?;
    let size = bytes.len();
    let blobs = state.0.blobs.clone();
    tokio::task::spawn_blocking(move || blobs.put_as(name, &bytes))
        .await
        .map_err(|e| Failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| match e {
            kinema_net::blobs::BlobError::WrongHash { .. } => {
                Failure(StatusCode::UNPROCESSABLE_ENTITY, e.to_string())
            }
            e => Failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        })?;
    let _ = state.0.p2p.provide(name).await;
    Ok((StatusCode::CREATED, Json(json!({ "blake3": name.to_string(), "bytes": size }))))
}

/// Blob `name` from the store, or fetched from peers (and kept).
async fn get_blob(state: &AppState, name: Hash) -> Result<Vec<u8>, Failure> {
    let blobs = state.0.blobs.clone();
    if blobs.has(&name) {
        return tokio::task::spawn_blocking(move || blobs.get(&name))
            .await
            .map_err(|e| Failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
            .map_err(|e| Failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()));
    }
    match tokio::time::timeout(FETCH_TIMEOUT, state.0.p2p.fetch(name)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) => Err(Failure(StatusCode::NOT_FOUND, e.to_string())),
        Err(_) => Err(Failure(
            StatusCode::GATEWAY_TIMEOUT,
            format!("no peer sent blob {name} within {} s", FETCH_TIMEOUT.as_secs()),
        )),
    }
}

fn served(state: &AppState, content_type: &'static str, bytes: Vec<u8>) -> Response {
    state.0.served_bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
    let headers = [
        (header::CONTENT_TYPE, content_type),
        (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
    ];
    (headers, bytes).into_response()
}

async fn blob(
    State(state): State<AppState>,
    Path(hash): Path<String>,
) -> Result<Response, Failure> {
    let name = parse_hash(&hash, "blob name")?;
    let bytes = get_blob(&state, name).await?;
    Ok(served(&state, "application/octet-stream", bytes))
}

/// The manifest of content `id`, from memory, the store or peers.
async fn manifest(state: &AppState, id: Hash) -> Result<Arc<Manifest>, Failure> {
    if let Some(known) = state.0.manifests.lock().unwrap_or_else(|e| e.into_inner()).get(&id) {
        return Ok(known.clone());
    }
    let bytes =
        get_blob(state, id).await.map_err(|f| Failure(f.0, format!("content {id}: {}", f.1)))?;
    let manifest = Arc::new(check_manifest(&bytes)?);
    state.0.manifests.lock().unwrap_or_else(|e| e.into_inner()).insert(id, manifest.clone());
    Ok(manifest)
}

const M3U8: &str = "application/vnd.apple.mpegurl";

/// `GET /hls/{content}/{path}`: playlists written from the manifest, segments by hash.
async fn gateway(
    State(state): State<AppState>,
    Path((content, path)): Path<(String, String)>,
) -> Result<Response, Failure> {
    let id = parse_hash(&content, "content id")?;
    let manifest = manifest(&state, id).await?;
    let missing = || Failure(StatusCode::NOT_FOUND, format!("content {id} has no {path:?}"));
    if path == "master.m3u8" {
        let text = hls::master_playlist(&manifest.renditions);
        return Ok(served(&state, M3U8, text.into_bytes()));
    }
    let (rendition, file) = path.split_once('/').ok_or_else(missing)?;
    let rendition =
        manifest.renditions.iter().find(|r| r.rendition.name == rendition).ok_or_else(missing)?;
    if file == "index.m3u8" {
        let text = hls::media_playlist(&rendition.segments);
        return Ok(served(&state, M3U8, text.into_bytes()));
    }
    let segment = rendition.segments.iter().find(|s| s.file == file).ok_or_else(missing)?;
    let bytes = get_blob(&state, segment.blake3).await?;
    Ok(served(&state, "video/mp2t", bytes))
}

/// A static asset; `/` is `index.html`.
async fn asset(State(state): State<AppState>, uri: Uri) -> Result<Response, Failure> {
    let not_found = || Failure(StatusCode::NOT_FOUND, format!("no {}", uri.path()));
    let dir = state.0.assets.as_ref().ok_or_else(not_found)?;
    let relative = uri.path().trim_start_matches('/');
    let relative = if relative.is_empty() { "index.html" } else { relative };
    let relative = std::path::Path::new(relative);
    if !relative.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(bad(format!("{} is not a plain path", uri.path())));
    }
    let bytes = tokio::fs::read(dir.join(relative)).await.map_err(|_| not_found())?;
    let content_type = match relative.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript",
        Some("wasm") => "application/wasm",
        Some("css") => "text/css",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    };
    Ok(([(header::CONTENT_TYPE, content_type)], bytes).into_response())
}

/// `GET /metrics`: Prometheus text exposition.
async fn metrics(State(state): State<AppState>) -> Result<Response, Failure> {
    use std::fmt::Write as _;
    let inner = &state.0;
    let stats = inner.p2p.stats();
    let (known, content) = inner.db.counts().await?;
    let mut text = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(String, u64)]| {
        let _ = writeln!(text, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(text, "{name}{labels} {value}");
        }
    };
    let requests: Vec<(String, u64)> = inner
        .requests
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|((route, status), n)| (format!("{{route=\"{route}\",status=\"{status}\"}}"), *n))
        .collect();
    let one = |value: u64| [(String::new(), value)];
    let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    metric(
        "kinema_relay_http_requests_total",
        "counter",
        "HTTP answers by route and status.",
        &requests,
    );
    metric(
        "kinema_relay_http_rate_limited_total",
        "counter",
        "Requests refused for their rate.",
        &one(load(&inner.limited)),
    );
    metric(
        "kinema_relay_served_bytes_total",
        "counter",
        "Blob and playlist bytes served over HTTP.",
        &one(load(&inner.served_bytes)),
    );
    metric(
        "kinema_relay_connected_peers",
        "gauge",
        "libp2p peers connected now.",
        &one(inner.p2p.peers().len() as u64),
    );
    metric("kinema_relay_known_peers", "gauge", "Peers in the index.", &one(known as u64));
    metric("kinema_relay_content", "gauge", "Content in the index.", &one(content as u64));
    metric(
        "kinema_relay_banned_peers",
        "gauge",
        "Peers banned for sending bad data.",
        &one(inner.p2p.banned().len() as u64),
    );
    metric(
        "kinema_relay_segment_requests_total",
        "counter",
        "Segment requests answered over libp2p.",
        &one(load(&stats.segment_requests)),
    );
    metric(
        "kinema_relay_segment_bytes_total",
        "counter",
        "Blob bytes sent over libp2p.",
        &one(load(&stats.segment_bytes)),
    );
    metric(
        "kinema_relay_fetched_blobs_total",
        "counter",
        "Blobs fetched from peers.",
        &one(load(&stats.fetched)),
    );
    metric(
        "kinema_relay_reservations_total",
        "counter",
        "Circuit relay reservations accepted.",
        &one(load(&stats.reservations)),
    );
    metric(
        "kinema_relay_circuits_total",
        "counter",
        "Relayed circuits opened.",
        &one(load(&stats.circuits)),
    );
    metric(
        "kinema_relay_p2p_dropped_total",
        "counter",
        "libp2p messages dropped on full queues.",
        &one(inner.p2p.dropped()),
    );
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
}

/// The OpenAPI 3.1 document of the relay's API.
pub fn openapi_document() -> Value {
    let error = json!({
        "description": "what is wrong",
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } },
    });
    let errors = |codes: &[&str]| -> serde_json::Map<String, Value> {
        codes.iter().map(|c| ((*c).to_owned(), error.clone())).collect()
    };
    let responses = |ok: &str, ok_description: &str, schema: Value, codes: &[&str]| -> Value {
        let mut map = errors(codes);
        let content = match schema {
            Value::Null => json!({}),
            Value::String(media) => json!({ media: { "schema": { "type": "string" } } }),
            schema => json!({ "application/json": { "schema": schema } }),
        };
        map.insert(ok.into(), json!({ "description": ok_description, "content": content }));
        Value::Object(map)
    };
    let schema = |name: &str| json!({ "$ref": format!("#/components/schemas/{name}") });
    let hash = json!({ "type": "string", "pattern": "^(0x)?[0-9a-fA-F]{64}$" });
    let int = json!({ "type": "integer", "format": "int64" });
    let strings = json!({ "type": "array", "items": { "type": "string" } });
    let path_hash = |name: &str, what: &str| json!([{ "name": name, "in": "path", "required": true, "description": what, "schema": hash }]);
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Kinema relay API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "A Kinema relay: its libp2p addresses, the peers and content it \
                indexes, blob upload and download, and the HLS gateway. Hashes are blake3, \
                64 hex digits. Every client is held to a request rate (429 beyond it)."
        },
        "paths": {
            "/healthz": { "get": {
                "operationId": "healthz", "summary": "200 while the relay runs",
                "responses": responses("200", "live", json!("text/plain"), &[]),
            } },
            "/metrics": { "get": {
                "operationId": "metrics", "summary": "Prometheus text exposition",
                "responses": responses("200", "metrics", json!("text/plain"), &["500"]),
            } },
            "/api/v1/status": { "get": {
                "operationId": "status", "summary": "Peer id and the multiaddrs to dial",
                "responses": responses("200", "OK", schema("Status"), &["429", "500"]),
            } },
            "/api/v1/peers": { "get": {
                "operationId": "peers", "summary": "Peers seen, newest first",
                "responses": responses("200", "OK", json!({ "type": "object",
                    "required": ["peers"],
                    "properties": { "peers": { "type": "array", "items": schema("Peer") } } }),
                    &["429", "500"]),
            } },
            "/api/v1/content": {
                "get": {
                    "operationId": "listContent", "summary": "Content indexed, newest first",
                    "responses": responses("200", "OK", json!({ "type": "object",
                        "required": ["content"],
                        "properties": { "content": { "type": "array", "items": schema("Content") } } }),
                        &["429", "500"]),
                },
                "post": {
                    "operationId": "addContent",
                    "summary": "Add a ladder by its manifest.json; its blake3 is the content id",
                    "requestBody": { "required": true, "content": { "application/json": {
                        "schema": { "type": "object", "description": "a ladder's manifest.json" } } } },
                    "responses": responses("201", "added", schema("Content"), &["400", "413", "422", "429", "500"]),
                },
            },
            "/api/v1/content/{id}": { "get": {
                "operationId": "content", "summary": "One piece of content",
                "parameters": path_hash("id", "blake3 of its manifest.json"),
                "responses": responses("200", "OK", schema("Content"), &["400", "404", "429", "500"]),
            } },
            "/api/v1/blobs/{hash}": {
                "put": {
                    "operationId": "uploadBlob", "summary": "Store a blob (a segment) under its hash",
                    "parameters": path_hash("hash", "blake3 of the body"),
                    "requestBody": { "required": true, "content": { "application/octet-stream": {
                        "schema": { "type": "string", "format": "binary" } } } },
                    "responses": responses("201", "stored", json!({ "type": "object",
                        "required": ["blake3", "bytes"],
                        "properties": { "blake3": hash, "bytes": int } }),
                        &["400", "413", "422", "429", "500"]),
                },
                "get": {
                    "operationId": "blob", "summary": "A blob, from the store or from peers",
                    "parameters": path_hash("hash", "its blake3"),
                    "responses": responses("200", "the blob", json!("application/octet-stream"),
                        &["400", "404", "429", "504"]),
                },
            },
            "/hls/{content}/{path}": { "get": {
                "operationId": "hls",
                "summary": "master.m3u8, <rendition>/index.m3u8 or <rendition>/<blake3>.ts",
                "parameters": [
                    { "name": "content", "in": "path", "required": true, "schema": hash },
                    { "name": "path", "in": "path", "required": true, "schema": { "type": "string" } },
                ],
                "responses": responses("200", "a playlist or a segment", json!("application/vnd.apple.mpegurl"),
                    &["400", "404", "429", "504"]),
            } },
            "/api/v1/openapi.json": { "get": {
                "operationId": "openapi", "summary": "This document",
                "responses": responses("200", "OK", json!({ "type": "object" }), &[]),
            } },
        },
        "components": { "schemas": {
            "Error": { "type": "object", "required": ["error"],
                "properties": { "error": { "type": "string" } } },
            "Status": { "type": "object",
                "required": ["peer_id", "addresses", "browser_addresses", "connected_peers",
                    "known_peers", "content", "chain_id", "uptime_seconds", "version"],
                "properties": {
                    "peer_id": { "type": "string" }, "addresses": strings,
                    "browser_addresses": strings, "connected_peers": int, "known_peers": int,
                    "content": int, "uptime_seconds": int, "version": { "type": "string" },
                    "chain_id": { "type": "string" }, "chain_rpc": { "type": ["string", "null"] },
                } },
            "Peer": { "type": "object",
                "required": ["peer_id", "addresses", "first_seen", "last_seen", "connected"],
                "properties": {
                    "peer_id": { "type": "string" }, "addresses": strings,
                    "agent": { "type": ["string", "null"] }, "first_seen": int, "last_seen": int,
                    "connected": { "type": "boolean" },
                } },
            "Content": { "type": "object",
                "required": ["id", "name", "duration_ms", "renditions", "segments", "bytes", "added", "hls"],
                "properties": {
                    "id": hash, "name": { "type": "string" }, "duration_ms": int,
                    "renditions": strings, "segments": int, "bytes": int, "added": int,
                    "hls": { "type": "string" },
                } },
        } },
    })
}
