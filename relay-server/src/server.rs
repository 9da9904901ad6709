//! Starting a relay: its blob store and index, its libp2p node, its HTTP server.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use kinema_chain::gossip::{Finalized, Topic};
use kinema_net::blobs::BlobStore;
use kinema_net::gossip::Registry;
use kinema_net::p2p::{self, Messages, P2p, P2pConfig};
use libp2p::{Multiaddr, identity};
use tokio::task::JoinHandle;

use crate::db::Db;
use crate::limits::{Limits, Quotas, forget_idle_clients};
use crate::routes::{self, AppState, Setup};

/// How to run a relay.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where its blob store and (by default) its SQLite index live.
    pub data_dir: PathBuf,
    /// Its libp2p identity (keep it: browsers and peers dial it by its peer id).
    pub keypair: identity::Keypair,
    /// The HTTP listen address.
    pub http: SocketAddr,
    /// libp2p listen addresses (TCP, `/ws`, `/quic-v1`).
    pub listen: Vec<Multiaddr>,
    /// Peers to dial.
    pub peers: Vec<Multiaddr>,
    /// Addresses others reach it on, when not its listen addresses.
    pub external: Vec<Multiaddr>,
    /// Its webrtc-direct certificate, PEM (keep it: its hash is in the address browsers dial);
    /// `None`: a new one each start.
    pub webrtc_certificate: Option<String>,
    /// The index: `sqlite://...` or `postgres://...`; `None` is `<data_dir>/relay.db`.
    pub database_url: Option<String>,
    /// The chain it belongs to (names its gossip topic).
    pub chain_id: String,
    /// A chain node's RPC that browsers may read headers from (told in `/api/v1/status`).
    pub chain_rpc: Option<String>,
    /// The chain's genesis hash, told to browsers (the app's light client starts from it).
    pub genesis: Option<kinema_chain::Hash>,
    /// The bandwidth price per MiB, told to browsers (what viewers' tickets pay peers).
    pub bandwidth_price_per_mib: Option<u64>,
    /// What is served at `/`: the creator app, the player and the light node's page.
    pub assets: crate::routes::Assets,
    /// Request limits.
    pub limits: Limits,
    /// A reverse proxy in front of the HTTP server: its requests are rate-limited by the
    /// client its `X-Forwarded-For` names; without it that header is ignored.
    pub trusted_proxy: Option<IpAddr>,
    /// What each account's writes may hold.
    pub quotas: Quotas,
    /// Bytes the blobs fetched for others (not pinned) may take on disk.
    pub cache_budget: u64,
    /// The operator's account, which may change the deny list over the API.
    pub operator: Option<kinema_chain::Address>,
    /// A deny list to read at start: a content id or blob name per line, then its reason.
    pub deny_list: Option<PathBuf>,
    /// ffmpeg, to cut uploads and assemble ladders; `None`: found on the PATH if there (a relay
    /// without it takes no uploads to cut).
    pub ffmpeg: Option<Arc<kinema_media::Ffmpeg>>,
    /// A devnet's faucet key: `POST /api/v1/faucet` gives from its account.
    pub faucet: Option<kinema_chain::crypto::SecretKey>,
}

/// The default cache budget: 10 GiB.
pub const CACHE_BUDGET: u64 = 10 << 30;

/// A running relay.
pub struct Relay {
    /// Where its HTTP server listens.
    pub http: SocketAddr,
    /// Its libp2p node.
    pub p2p: P2p,
    /// Its index.
    pub db: Db,
    server: JoinHandle<()>,
    indexer: JoinHandle<()>,
    forgetter: JoinHandle<()>,
    heads: Option<JoinHandle<()>>,
    _messages: Messages,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("http", &self.http)
            .field("peer_id", &self.p2p.peer_id())
            .finish()
    }
}

/// How long the libp2p listeners may take to start.
const LISTENERS_UP: Duration = Duration::from_secs(10);
/// How soon a new or changed peer is written to the index.
const INDEX_EVERY: Duration = Duration::from_secs(2);
/// How often an unchanged connected peer's last sighting is written.
const SEEN_EVERY: Duration = Duration::from_secs(60);

/// Starts a relay on the current tokio runtime.
pub async fn start(config: Config) -> Result<Relay> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating {}", config.data_dir.display()))?;
    let deny_list = match &config.deny_list {
        Some(path) => crate::admin::read_deny_list(path)?,
        None => Vec::new(),
    };
    let blobs = Arc::new(BlobStore::with_cache_budget(
        &config.data_dir.join("blobs"),
        config.cache_budget,
    )?);
    let url = match &config.database_url {
        Some(url) => url.clone(),
        None => format!("sqlite://{}?mode=rwc", config.data_dir.join("relay.db").display()),
    };
    let db = Db::open(&url).await?;
    let (p2p, messages) = p2p::start(P2pConfig {
        listen: config.listen.clone(),
        peers: config.peers.clone(),
        external: config.external.clone(),
        blobs: Some(blobs.clone()),
        relay: true,
        fetch_missing: true,
        webrtc_certificate: config.webrtc_certificate.clone(),
        gossip: gossip(&config.chain_id),
        ..P2pConfig::new(config.keypair.clone())
    })?;
    // What it tells browsers and peers to dial is whole once every listener has its address.
    tokio::time::timeout(LISTENERS_UP, p2p.listeners_up()).await.map_err(|_| {
        let listen: Vec<String> = config.listen.iter().map(|a| a.to_string()).collect();
        anyhow::anyhow!(
            "the libp2p listeners ({}) did not start within {} s",
            listen.join(", "),
            LISTENERS_UP.as_secs()
        )
    })?;
    let listener = tokio::net::TcpListener::bind(config.http)
        .await
        .with_context(|| format!("listening for HTTP on {}", config.http))?;
    let http_at = listener.local_addr()?;
    let state = AppState::new(Setup {
        p2p: p2p.clone(),
        db: db.clone(),
        blobs,
        assets: config.assets,
        chain_id: config.chain_id.clone(),
        chain_rpc: config.chain_rpc,
        genesis: config.genesis,
        bandwidth_price_per_mib: config.bandwidth_price_per_mib,
        quotas: config.quotas,
        operator: config.operator,
        denied: db.denied().await?,
        max_upload: config.limits.max_upload,
        max_source: config.limits.max_source,
        uploads: config.data_dir.join("uploads"),
        ffmpeg: config.ffmpeg.or_else(|| kinema_media::Ffmpeg::locate().ok().map(Arc::new)),
        faucet: config.faucet.map(crate::events::Faucet::new),
    });
    for (id, reason) in deny_list {
        crate::admin::deny_id(&state, id, &reason)
            .await
            .map_err(|e| anyhow::anyhow!("--deny-list: denying {id}: {}", e.message()))?;
    }
    let heads = state
        .relay
        .chain
        .clone()
        .map(|chain| tokio::spawn(state.relay.heads.clone().follow(chain)));
    tokio::spawn(crate::uploads::resume_cuts(state.clone()));
    let (app, limiter) = routes::router(state, &config.limits, config.trusted_proxy)
        .context("--rate: the request rate")?;
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    let server = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("relay HTTP server: {e}");
        }
    });
    let forgetter = forget_idle_clients(limiter);
    let indexer = tokio::spawn(index_peers(p2p.clone(), db.clone()));
    Ok(Relay { http: http_at, p2p, db, server, indexer, forgetter, heads, _messages: messages })
}

/// The gossip a relay joins: the chain's finalized headers, which it forwards to the browsers
/// connected to it (a message passes when it decodes as a header with its certificate).
fn gossip(chain_id: &str) -> Registry {
    let mut registry = Registry::new();
    registry.register(Topic::Headers.name(chain_id), |bytes| {
        Finalized::from_gossip(bytes).is_some().into()
    });
    registry
}

/// Writes the connected peers to the index: a peer that is new or changed (addresses, agent)
/// within [`INDEX_EVERY`], an unchanged one's last sighting every [`SEEN_EVERY`].
async fn index_peers(p2p: P2p, db: Db) {
    let mut written: HashMap<libp2p::PeerId, (Vec<String>, Option<String>, Instant)> =
        HashMap::new();
    let mut every = tokio::time::interval(INDEX_EVERY);
    loop {
        every.tick().await;
        let now = Instant::now();
        let peers = p2p.peers();
        written.retain(|id, _| peers.iter().any(|p| p.peer_id == *id));
        for peer in peers {
            let addresses: Vec<String> = peer.addresses.iter().map(|a| a.to_string()).collect();
            let unchanged = written.get(&peer.peer_id).is_some_and(|(a, agent, at)| {
                *a == addresses && *agent == peer.agent && now.duration_since(*at) < SEEN_EVERY
            });
            if unchanged {
                continue;
            }
            let id = peer.peer_id.to_string();
            match db.saw_peer(&id, &addresses, peer.agent.as_deref()).await {
                Ok(()) => {
                    written.insert(peer.peer_id, (addresses, peer.agent, now));
                }
                Err(e) => tracing::warn!("indexing peer {id}: {e}"),
            }
        }
    }
}

impl Relay {
    /// Its HTTP base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.http)
    }

    /// Waits until its HTTP server stops (it does not on its own).
    pub async fn wait(&mut self) {
        let _ = (&mut self.server).await;
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.server.abort();
        self.indexer.abort();
        self.forgetter.abort();
        if let Some(heads) = &self.heads {
            heads.abort();
        }
    }
}
