//! The relay's REST API under `/api/v1/`: every request and reply, shared by the server that
//! answers them and the [`Client`] that asks, natively (`kinema publish`) and in the browser.
//!
//! This module links no server crate and builds for `wasm32-unknown-unknown` (the crate without
//! its default `server` feature). The client is reqwest's: hyper natively, the browser's `fetch`
//! on wasm32.
//!
//! ```no_run
//! # async fn run() -> Result<(), kinema_relay::api::Error> {
//! let relay = kinema_relay::api::Client::new("http://127.0.0.1:26600");
//! let status = relay.status().await?;
//! println!("relay {} of chain {}", status.peer_id, status.chain_id);
//! let manifest = std::fs::read("ladder/manifest.json").unwrap_or_default();
//! let content = relay.add_content(manifest).await?;
//! println!("play {}", relay.url(&content.hls));
//! # Ok(())
//! # }
//! ```
//!
//! **Writes are signed.** `PUT`, `POST` and `DELETE` carry an `Authorization: Kinema key=<public
//! key>,time=<unix ms>,body=<blake3 of the body>,sig=<signature>` header ([`WriteAuth`]): an
//! ed25519 signature by a chain account's key over the method, the path (with its query), the
//! body's blake3 and the time. A relay refuses a write with 401 when the header is missing or
//! wrong, when the time is more than [`REPLAY_WINDOW_MS`] from its clock or when it saw the
//! same signature before; it counts what an account stores against that account's quota. A
//! [`Client`] given a key ([`Client::with_key`]) signs its writes.
//!
//! Ids are kinema-chain's: a content id and a blob's name are blake3 hashes ([`Hash`](struct@Hash), 64 hex
//! digits). Peer ids and multiaddrs are libp2p's text forms. Every error answer is a 4xx or 5xx
//! with kinema-chain's [`ErrorReply`].

use kinema_chain::crypto::{Domain, SecretKey};
use kinema_chain::rpc::ErrorReply;
use kinema_chain::{Address, Hash, PublicKey, Signature};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// `GET /api/v1/status`: who the relay is and where to dial it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct Status {
    /// The relay's libp2p peer id.
    pub peer_id: String,
    /// Every multiaddr it can be dialled on (with `/p2p/<peer id>`).
    pub addresses: Vec<String>,
    /// Those a browser can dial (websocket, webrtc-direct).
    pub browser_addresses: Vec<String>,
    /// Peers connected now.
    pub connected_peers: u64,
    /// Peers in the index.
    pub known_peers: u64,
    /// Content in the index.
    pub content: u64,
    /// The chain it serves: a light node that follows its finalized headers over gossip joins
    /// `/kinema/<chain_id>/headers/1`.
    pub chain_id: String,
    /// A chain node's RPC browsers may read blocks and validator sets from, if the relay knows
    /// one.
    pub chain_rpc: Option<String>,
    /// The hash of the chain's genesis block, if the relay's operator named it: the browser app,
    /// which this relay serves, checks what the chain RPC says from there (a light client).
    #[serde(default)]
    pub genesis: Option<Hash>,
    /// What viewers pay the peers that deliver to them, per MiB of checked segment bytes, in
    /// bandwidth tickets (kinema-chain's `tickets`), if the operator set a price.
    #[serde(default)]
    pub bandwidth_price_per_mib: Option<u64>,
    /// Seconds since it started.
    pub uptime_seconds: u64,
    /// Its version.
    pub version: String,
}

/// A peer the relay has seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct Peer {
    /// Its libp2p peer id.
    pub peer_id: String,
    /// The addresses it was last connected from.
    pub addresses: Vec<String>,
    /// What it runs (identify's agent version).
    pub agent: Option<String>,
    /// Unix seconds when first seen.
    pub first_seen: i64,
    /// Unix seconds when last seen.
    pub last_seen: i64,
    /// Whether it is connected now.
    pub connected: bool,
}

/// `GET /api/v1/peers`: the peers seen, most recent first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct Peers {
    /// At most 1000.
    pub peers: Vec<Peer>,
}

/// A piece of content: a ladder, named by the blake3 of its `manifest.json`, and where to play
/// it. `GET /api/v1/content/{id}`, and `POST /api/v1/content`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct Content {
    /// blake3 of its `manifest.json`.
    pub id: Hash,
    /// The source's file name.
    pub name: String,
    /// Duration in milliseconds.
    pub duration_ms: i64,
    /// Rendition names, tallest first.
    pub renditions: Vec<String>,
    /// Segments per rendition.
    pub segments: i64,
    /// Bytes of all segments of all renditions.
    pub bytes: i64,
    /// Unix seconds when added.
    pub added: i64,
    /// Its master playlist on the relay (a path: [`Client::url`] makes it a URL).
    pub hls: String,
}

impl Content {
    /// The master playlist's path of content `id` on a relay.
    pub fn hls_path(id: &Hash) -> String {
        format!("/hls/{id}/master.m3u8")
    }
}

/// `GET /api/v1/content`: the content indexed, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct ContentList {
    /// At most 1000.
    pub content: Vec<Content>,
}

/// `PUT /api/v1/blobs/{hash}`'s answer: the blob stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct Blob {
    /// Its name, the blake3 of its bytes.
    pub blake3: Hash,
    /// Its size.
    pub bytes: u64,
}

/// An account's use of a relay's store: what its uploads and publications hold, and how much
/// they may (`GET /api/v1/accounts/{address}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct Account {
    /// The account.
    #[cfg_attr(feature = "server", schema(value_type = String))]
    pub address: Address,
    /// Bytes its writes hold on the relay.
    pub used: u64,
    /// Bytes they may hold.
    pub quota: u64,
}

/// Why the operator refuses a content id or blob (`PUT /api/v1/admin/denied/{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct Deny {
    /// The reason, shown to whoever asks for it (a legal notice's reference, say).
    pub reason: String,
}

/// A content id or blob the relay refuses to store or serve (451).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct Denied {
    /// The content id or blob name.
    pub id: Hash,
    /// Why.
    pub reason: String,
    /// When, in Unix seconds.
    pub added: i64,
}

/// The operator's deny list (`GET /api/v1/admin/denied`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct DenyList {
    /// Newest first.
    pub denied: Vec<Denied>,
}

/// `POST /api/v1/uploads`: a source file the client is about to send in chunks. The upload's
/// id follows from the signer, the file's blake3 and its size, so asking again for the same
/// file answers the upload already under way (how a client resumes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct NewUpload {
    /// The file's name (shown, and the source's name in its manifest).
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its blake3: the relay checks the whole file against it once every chunk is in.
    pub blake3: Hash,
    /// The ladder's rung heights; rungs above the source are left out. Empty: the media
    /// engine's default ladder.
    #[serde(default)]
    pub heights: Vec<u32>,
}

/// Where an upload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum UploadState {
    /// Chunks are coming in.
    Receiving,
    /// Every byte is in and checked; the media engine is cutting it into source segments.
    Cutting,
    /// Cut: the source is content on the relay, and a job can be posted for it.
    Ready,
    /// The file could not be cut ([`Upload::error`] says why).
    Failed,
}

/// An upload (`GET /api/v1/uploads/{id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct Upload {
    /// Its id.
    pub id: Hash,
    /// Who is uploading.
    #[cfg_attr(feature = "server", schema(value_type = String))]
    pub account: Address,
    /// The file's name.
    pub name: String,
    /// Its size.
    pub size: u64,
    /// Its blake3.
    pub blake3: Hash,
    /// Bytes received so far: where the next chunk starts.
    pub received: u64,
    /// Where it is.
    pub state: UploadState,
    /// While cutting, the share done (0 to 1).
    pub progress: f64,
    /// Why it failed.
    pub error: Option<String>,
    /// Once ready: the blake3 of the source's manifest (a content id on the relay).
    pub source: Option<Hash>,
    /// Once ready: source segments.
    pub segments: u32,
    /// Once ready: the source's duration in milliseconds.
    pub duration_ms: i64,
    /// Once ready: the ladder a job for it asks for (the rungs the source reaches).
    #[cfg_attr(feature = "server", schema(value_type = Option<Object>))]
    pub ladder: Option<kinema_contracts::jobs::Ladder>,
    /// Once ready: a poster (JPEG, a blob's blake3), if one could be made.
    #[serde(default)]
    pub poster: Option<Hash>,
    /// Once ready: a seek-preview sprite, if one could be made.
    #[serde(default)]
    pub preview: Option<Preview>,
    /// Unix seconds when it began.
    pub added: i64,
}

/// A seek-preview sprite: tile `i` (column `i % columns`, row `i / columns`, each `width ×
/// height` pixels) shows the frame at `i × every_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct Preview {
    /// The sprite (JPEG), a blob's blake3.
    pub sprite: Hash,
    /// Milliseconds between tiles.
    pub every_ms: u32,
    /// Tiles per row.
    pub columns: u32,
    /// Rows.
    pub rows: u32,
    /// Tiles with a picture.
    pub count: u32,
    /// A tile's width.
    pub width: u32,
    /// A tile's height.
    pub height: u32,
}

/// The largest chunk `PUT /api/v1/uploads/{id}?offset=` takes.
pub const MAX_CHUNK: usize = 16 << 20;

/// Who may see a video in listings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// Listed on the relay's public page.
    Public,
    /// Never listed: watched by its link only.
    Unlisted,
}

/// `POST /api/v1/videos`: what a creator tells of a job's video.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct NewVideo {
    /// The upload its source came from.
    pub upload: Hash,
    /// The job transcoding it (the signer's, for that upload's source).
    pub job: u64,
    /// Its title (1 to [`MAX_TITLE`] characters).
    pub title: String,
    /// Its description (at most [`MAX_DESCRIPTION`] characters).
    #[serde(default)]
    pub description: String,
    /// Its tags (at most [`MAX_TAGS`], each 1 to [`MAX_TAG`] characters).
    #[serde(default)]
    pub tags: Vec<String>,
    /// Who sees it listed.
    pub visibility: Visibility,
    /// A WebVTT captions file, stored as a blob (`PUT /api/v1/blobs/{hash}`) first.
    #[serde(default)]
    pub captions: Option<Hash>,
}

/// The longest title.
pub const MAX_TITLE: usize = 200;
/// The longest description.
pub const MAX_DESCRIPTION: usize = 5000;
/// The most tags.
pub const MAX_TAGS: usize = 16;
/// The longest tag.
pub const MAX_TAG: usize = 32;
/// The largest captions file.
pub const MAX_CAPTIONS: u64 = 1 << 20;

/// A video: a job's ladder with what its creator told of it (`GET /api/v1/videos/{job}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct Video {
    /// The job that transcodes it.
    pub job: u64,
    /// Its creator.
    #[cfg_attr(feature = "server", schema(value_type = String))]
    pub creator: Address,
    /// The blake3 of its source's manifest.
    pub source: Hash,
    /// Its title.
    pub title: String,
    /// Its description.
    pub description: String,
    /// Its tags.
    pub tags: Vec<String>,
    /// Who sees it listed.
    pub visibility: Visibility,
    /// Its WebVTT captions' blake3.
    pub captions: Option<Hash>,
    /// Once the job is done and its ladder published: the content id.
    pub content: Option<Hash>,
    /// Its poster (JPEG), from its upload.
    #[serde(default)]
    pub poster: Option<Hash>,
    /// Its seek-preview sprite, from its upload.
    #[serde(default)]
    pub preview: Option<Preview>,
    /// Unix seconds when told.
    pub added: i64,
}

/// A list of videos, newest first (`GET /api/v1/videos`: public ones, or the one published as
/// `?content=`; `GET /api/v1/videos/mine`: the signer's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct VideoList {
    /// At most 1000.
    pub videos: Vec<Video>,
}

/// What a tab signs with its libp2p identity key (ed25519) to join (`leave`: false) or leave a
/// content's swarm with its `address`, at `at_ms` (Unix time in milliseconds): the relay takes
/// a join or a leave only from the tab the address names, and only within [`SWARM_SKEW_MS`]
/// of its own clock.
pub fn swarm_statement(content: &Hash, leave: bool, address: &str, at_ms: u64) -> Vec<u8> {
    let head: &[u8] = b"kinema/swarm/v1\0";
    [head, &content.0, &[u8::from(leave)], &at_ms.to_le_bytes(), address.as_bytes()].concat()
}

/// How far a swarm statement's time may be from the relay's clock.
pub const SWARM_SKEW_MS: u64 = 60_000;

/// `GET /api/v1/swarms/{content}`'s answer: the `/webrtc` addresses of the other browsers
/// watching that content through this relay, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct Swarm {
    /// `<relay>/p2p-circuit/webrtc/p2p/<tab>` each.
    pub peers: Vec<String>,
}

/// `POST /api/v1/faucet`'s answer: funds sent to the signer (a devnet's relay only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct Gift {
    /// Who gets it.
    #[cfg_attr(feature = "server", schema(value_type = String))]
    pub to: Address,
    /// How much.
    pub amount: u64,
    /// The transfer's hash.
    pub tx: Hash,
}

/// Whether a request to `path` with `method` must be signed: every write, and the reads that
/// show what only their signer may see (the operator's deny list, a creator's own videos).
pub fn must_sign(method: &str, path: &str) -> bool {
    !matches!(method, "GET" | "HEAD" | "OPTIONS")
        || path.starts_with("/api/v1/admin/")
        || path == "/api/v1/videos/mine"
}

/// How far a signed write's time may be from the relay's clock, either way, in milliseconds;
/// a relay remembers the signatures it accepted for that long, and refuses them again.
pub const REPLAY_WINDOW_MS: u64 = 5 * 60 * 1000;

/// The scheme of a signed write's `Authorization` header.
pub const AUTH_SCHEME: &str = "Kinema";

/// A write's signature: who, when, over which body ([`WriteAuth::sign`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteAuth {
    /// The signer's public key (its address is the account).
    pub key: PublicKey,
    /// When it was signed, Unix milliseconds.
    pub time_ms: u64,
    /// The body's blake3.
    pub body: Hash,
    /// The signature over [`WriteAuth::message`].
    pub signature: Signature,
}

impl WriteAuth {
    /// What is signed: `<method>\n<path and query>\n<body blake3>\n<time ms>`.
    pub fn message(method: &str, path: &str, body: &Hash, time_ms: u64) -> Vec<u8> {
        format!("{method}\n{path}\n{body}\n{time_ms}").into_bytes()
    }

    /// `key`'s signature of a `method` request to `path` (with its query) carrying `body`, at
    /// `time_ms`.
    pub fn sign(key: &SecretKey, method: &str, path: &str, body: &[u8], time_ms: u64) -> Self {
        let body = Hash::digest(body);
        let signature = key.sign(Domain::RelayWrite, &Self::message(method, path, &body, time_ms));
        Self { key: key.public(), time_ms, body, signature }
    }

    /// The `Authorization` header's value.
    pub fn header(&self) -> String {
        format!(
            "{AUTH_SCHEME} key={},time={},body={},sig={}",
            self.key, self.time_ms, self.body, self.signature
        )
    }

    /// Reads an `Authorization` header's value; the reason when it is not one.
    pub fn parse(header: &str) -> Result<Self, String> {
        let params = header
            .strip_prefix(AUTH_SCHEME)
            .and_then(|rest| rest.strip_prefix(' '))
            .ok_or_else(|| format!("the Authorization scheme is not {AUTH_SCHEME}"))?;
        let (mut key, mut time_ms, mut body, mut signature) = (None, None, None, None);
        for param in params.split(',') {
            let (name, value) = param
                .trim()
                .split_once('=')
                .ok_or_else(|| format!("Authorization parameter {param:?} is not name=value"))?;
            let bad = |e: &dyn std::fmt::Display| format!("Authorization {name}: {e}");
            match name {
                "key" => key = Some(value.parse::<PublicKey>().map_err(|e| bad(&e))?),
                "time" => time_ms = Some(value.parse::<u64>().map_err(|e| bad(&e))?),
                "body" => body = Some(value.parse::<Hash>().map_err(|e| bad(&e))?),
                "sig" => signature = Some(value.parse::<Signature>().map_err(|e| bad(&e))?),
                _ => return Err(format!("Authorization has an unknown parameter {name:?}")),
            }
        }
        let missing = |what: &str| format!("Authorization lacks {what}=");
        Ok(Self {
            key: key.ok_or_else(|| missing("key"))?,
            time_ms: time_ms.ok_or_else(|| missing("time"))?,
            body: body.ok_or_else(|| missing("body"))?,
            signature: signature.ok_or_else(|| missing("sig"))?,
        })
    }

    /// Checks the signature for a `method` request to `path`: the signer's account, or why not.
    pub fn verify(&self, method: &str, path: &str) -> Result<Address, String> {
        let message = Self::message(method, path, &self.body, self.time_ms);
        self.key
            .verify(Domain::RelayWrite, &message, &self.signature)
            .map(|()| Address::of(&self.key))
            .map_err(|_| {
                format!("the signature is not {}'s over {method} {path}", Address::of(&self.key))
            })
    }
}

/// Now, in Unix milliseconds: the browser's clock on wasm32.
pub fn now_ms() -> u64 {
    #[cfg(target_arch = "wasm32")]
    {
        js_sys::Date::now() as u64
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }
}

/// What went wrong asking a relay.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request did not get an answer (no connection, an invalid URL, ...).
    #[error("{method} {url}: {why}")]
    Send {
        /// `GET`, `PUT`, `POST`.
        method: &'static str,
        /// What was asked.
        url: String,
        /// Why it failed.
        why: String,
    },
    /// The relay refused: an error status and what it said was wrong.
    #[error("{method} {url}: {status}: {error}")]
    Refused {
        /// `GET`, `PUT`, `POST`.
        method: &'static str,
        /// What was asked.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The relay's reason.
        error: String,
    },
    /// The answer was not what the API says it is.
    #[error("{method} {url}: the answer is not the API's: {why}")]
    Decode {
        /// `GET`, `PUT`, `POST`.
        method: &'static str,
        /// What was asked.
        url: String,
        /// Why it does not decode.
        why: String,
    },
}

/// A relay's API, at its base URL.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    http: reqwest::Client,
    key: Option<SecretKey>,
}

/// The HTTP client: natively, a connection attempt gives up after 10 s and an answer that
/// stalls for 60 s is dropped (a relay that hangs must not hang its caller); in a browser,
/// `fetch` has its own.
fn http_client() -> reqwest::Client {
    #[cfg(not(target_arch = "wasm32"))]
    let builder = reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(10))
        .read_timeout(std::time::Duration::from_secs(60));
    #[cfg(target_arch = "wasm32")]
    let builder = reqwest::Client::builder();
    builder.build().unwrap_or_default()
}

/// Error answers longer than this are cut when quoted.
const QUOTED: usize = 200;

impl Client {
    /// The API of the relay at `base` (`http://host:port`).
    pub fn new(base: &str) -> Self {
        Self { base: base.trim_end_matches('/').to_owned(), http: http_client(), key: None }
    }

    /// The client, signing its writes with `key` (whose account they count against).
    pub fn with_key(self, key: SecretKey) -> Self {
        Self { key: Some(key), ..self }
    }

    /// The relay's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `path` (`/hls/...`, as [`Content::hls`] gives it) on this relay.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Who the relay is and where to dial it.
    pub async fn status(&self) -> Result<Status, Error> {
        self.json("GET", "/api/v1/status", None).await
    }

    /// The peers it has seen.
    pub async fn peers(&self) -> Result<Peers, Error> {
        self.json("GET", "/api/v1/peers", None).await
    }

    /// The content it indexes.
    pub async fn content_list(&self) -> Result<ContentList, Error> {
        self.json("GET", "/api/v1/content", None).await
    }

    /// Content `id`.
    pub async fn content(&self, id: &Hash) -> Result<Content, Error> {
        self.json("GET", &format!("/api/v1/content/{id}"), None).await
    }

    /// Adds a ladder by its `manifest.json`'s bytes (their blake3 is the content id): the
    /// relay then serves it from the blobs it holds or fetches from peers.
    pub async fn add_content(&self, manifest: Vec<u8>) -> Result<Content, Error> {
        self.json("POST", "/api/v1/content", Some(manifest)).await
    }

    /// Stores `bytes` (a segment) under their blake3 `name`.
    pub async fn put_blob(&self, name: &Hash, bytes: Vec<u8>) -> Result<Blob, Error> {
        self.json("PUT", &format!("/api/v1/blobs/{name}"), Some(bytes)).await
    }

    /// An account's use of the relay's store.
    pub async fn account(&self, address: &Address) -> Result<Account, Error> {
        self.json("GET", &format!("/api/v1/accounts/{address}"), None).await
    }

    /// The operator's deny list (the client's key must be the operator's).
    pub async fn denied(&self) -> Result<DenyList, Error> {
        self.json("GET", "/api/v1/admin/denied", None).await
    }

    /// Refuses content id or blob `id` on the relay, for `reason` (the operator's key only).
    pub async fn deny(&self, id: &Hash, reason: &str) -> Result<Denied, Error> {
        let body = serde_json::to_vec(&Deny { reason: reason.to_owned() }).unwrap_or_default();
        self.json("PUT", &format!("/api/v1/admin/denied/{id}"), Some(body)).await
    }

    /// Takes `id` off the deny list (the operator's key only).
    pub async fn allow(&self, id: &Hash) -> Result<(), Error> {
        self.send("DELETE", &format!("/api/v1/admin/denied/{id}"), None).await.map(|_| ())
    }

    /// Blob `name`, from the relay's store or fetched by it from peers. The relay checks it
    /// against its name; so should the caller where it matters.
    pub async fn blob(&self, name: &Hash) -> Result<Vec<u8>, Error> {
        self.send("GET", &format!("/api/v1/blobs/{name}"), None).await.map(|(_, bytes)| bytes)
    }

    /// Begins (or, for a file begun before, resumes) an upload.
    pub async fn new_upload(&self, upload: &NewUpload) -> Result<Upload, Error> {
        let body = serde_json::to_vec(upload).unwrap_or_default();
        self.json("POST", "/api/v1/uploads", Some(body)).await
    }

    /// Upload `id`.
    pub async fn upload(&self, id: &Hash) -> Result<Upload, Error> {
        self.json("GET", &format!("/api/v1/uploads/{id}"), None).await
    }

    /// Sends `bytes` of upload `id` from `offset` (which must be what the relay has received).
    pub async fn put_chunk(&self, id: &Hash, offset: u64, bytes: Vec<u8>) -> Result<Upload, Error> {
        self.json("PUT", &format!("/api/v1/uploads/{id}?offset={offset}"), Some(bytes)).await
    }

    /// Tells what a job's video is.
    pub async fn add_video(&self, video: &NewVideo) -> Result<Video, Error> {
        let body = serde_json::to_vec(video).unwrap_or_default();
        self.json("POST", "/api/v1/videos", Some(body)).await
    }

    /// The public videos.
    pub async fn videos(&self) -> Result<VideoList, Error> {
        self.json("GET", "/api/v1/videos", None).await
    }

    /// The client's key's own videos, unlisted ones too.
    pub async fn my_videos(&self) -> Result<VideoList, Error> {
        self.json("GET", "/api/v1/videos/mine", None).await
    }

    /// The video published as content `id`, if any.
    pub async fn video_of(&self, id: &Hash) -> Result<Option<Video>, Error> {
        let list: VideoList =
            self.json("GET", &format!("/api/v1/videos?content={id}"), None).await?;
        Ok(list.videos.into_iter().next())
    }

    /// The video of job `job`.
    pub async fn video(&self, job: u64) -> Result<Video, Error> {
        self.json("GET", &format!("/api/v1/videos/{job}"), None).await
    }

    /// Publishes the ladder of job `job`, which is done: the relay assembles its manifest from
    /// the accepted results, checks it against the ladder hash the chain recorded and adds it
    /// as content (charged to the client's key); the job's video, if any, gets its id.
    pub async fn publish_ladder(&self, job: u64) -> Result<Content, Error> {
        self.json("POST", &format!("/api/v1/jobs/{job}/ladder"), Some(Vec::new())).await
    }

    /// Takes the client's video of job `job` off the relay's listings.
    pub async fn remove_video(&self, job: u64) -> Result<(), Error> {
        self.send("DELETE", &format!("/api/v1/videos/{job}"), None).await.map(|_| ())
    }

    /// Asks a devnet's relay for funds for the client's key.
    pub async fn faucet(&self) -> Result<Gift, Error> {
        self.json("POST", "/api/v1/faucet", Some(Vec::new())).await
    }

    /// Sends a request and decodes its JSON answer.
    async fn json<T: DeserializeOwned>(
        &self,
        method: &'static str,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<T, Error> {
        let (url, bytes) = self.send(method, path, body).await?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Decode {
            method,
            url,
            why: e.to_string(),
        })
    }

    /// Sends a request; an answer with an error status is an [`Error::Refused`] with the
    /// relay's reason.
    async fn send(
        &self,
        method: &'static str,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(String, Vec<u8>), Error> {
        let url = self.url(path);
        let failed =
            |e: reqwest::Error| Error::Send { method, url: url.clone(), why: e.to_string() };
        let request = match method {
            "PUT" => self.http.put(&url),
            "POST" => self.http.post(&url),
            "DELETE" => self.http.delete(&url),
            _ => self.http.get(&url),
        };
        // Writes, and the reads only their signer may see, are signed when the client has a key.
        let request = match (&self.key, must_sign(method, path.split('?').next().unwrap_or(path))) {
            (Some(key), true) => {
                let auth = WriteAuth::sign(
                    key,
                    method,
                    path,
                    body.as_deref().unwrap_or_default(),
                    now_ms(),
                );
                request.header("authorization", auth.header())
            }
            _ => request,
        };
        let request = match body {
            Some(body) => request.body(body),
            None => request,
        };
        let response = request.send().await.map_err(failed)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(failed)?.to_vec();
        if status.is_client_error() || status.is_server_error() {
            let error = match serde_json::from_slice::<ErrorReply>(&bytes) {
                Ok(reply) => reply.error,
                Err(_) => String::from_utf8_lossy(&bytes).chars().take(QUOTED).collect(),
            };
            return Err(Error::Refused { method, url, status: status.as_u16(), error });
        }
        Ok((url, bytes))
    }
}
