//! Native peers over libp2p: TCP and websocket with noise and yamux, QUIC, and webrtc-direct
//! (what browsers dial without a certificate a CA signed); identify and ping; circuit relay v2
//! (a relay serves reservations and circuits when asked to; every node can listen through a
//! relay with a `/p2p-circuit` address); gossipsub on the topics of a [`Registry`] (a message
//! that fails its topic's check is rejected and not forwarded) and a one-way request-response
//! protocol for what goes to one peer (a block asked for, its answer); kademlia provider records for blobs, and a segment
//! protocol that fetches a blob from its providers in batches of 16 KiB groups, each checked
//! against the blob's name as it arrives ([`crate::wire::Download`]): a provider that sends a
//! bad group is disconnected and banned, and the fetch goes on from that group with the next
//! provider. A relay also answers for blobs it lacks, by fetching them first. Blobs are read
//! and written on blocking threads, not on the swarm's task.
//!
//! [`start`] runs the swarm on its own task and returns a [`P2p`] handle and its [`Messages`]
//! (kinema-node makes them the consensus engine's transport). Every queue between the two is
//! bounded; what does not fit is dropped and counted (consensus re-sends what matters), never
//! buffered without end. Peers given at start are redialled while they
//! are unreachable.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use libp2p::core::Transport as _;
use libp2p::core::muxing::StreamMuxerBox;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{
    Multiaddr, PeerId, StreamProtocol, connection_limits, gossipsub, identify, identity, kad,
    noise, ping, relay, request_response, tcp, yamux,
};
use tokio::sync::{mpsc, oneshot, watch};

use crate::addr::peer_of;
use crate::blobs::BlobStore;
use crate::gossip::{Check, Registry};
use crate::verified::{GROUP, groups};
use crate::wire::{Answer, BATCH, Bytes, Download, SegmentRequest, SegmentResponse, piece_len};
use tracing::{debug, warn};

/// What a node says it runs (identify's agent version).
pub const AGENT: &str = concat!("kinema/", env!("CARGO_PKG_VERSION"));
pub use crate::wire::MAX_MESSAGE;
/// Connections a node keeps at most, and per peer.
const MAX_CONNECTIONS: u32 = 256;
const MAX_PER_PEER: u32 = 2;
/// Messages, commands and finished blob work queued at most between the swarm's task and its
/// handles; what does not fit is dropped and counted.
pub const QUEUE: usize = 1024;
/// How often unreachable peers given at start are dialled again.
const REDIAL: Duration = Duration::from_secs(2);

/// What the node is and whom it knows.
#[derive(Debug, Clone)]
pub struct P2pConfig {
    /// Its libp2p identity (keep it across restarts: it is the node's peer id).
    pub keypair: identity::Keypair,
    /// Where it listens, e.g. `/ip4/127.0.0.1/tcp/26700`.
    pub listen: Vec<Multiaddr>,
    /// Peers to dial (and redial while unreachable).
    pub peers: Vec<Multiaddr>,
    /// The gossip topics it joins, with what their messages must pass to be delivered and
    /// forwarded.
    pub gossip: Registry,
    /// The blobs it serves (and keeps what it fetches in).
    pub blobs: Option<Arc<BlobStore>>,
    /// Where others can reach it, when that is not where it listens (behind a port forward or
    /// a proxy). A relay with none announces its listen addresses.
    pub external: Vec<Multiaddr>,
    /// Serve circuit relay v2: reservations and circuits for peers that cannot be dialled.
    pub relay: bool,
    /// Asked for a blob it does not hold, fetch it from its providers and answer with it (a
    /// relay does this for browsers, which cannot reach the providers themselves). Needs
    /// `blobs`.
    pub fetch_missing: bool,
    /// The certificate of its webrtc-direct listener, PEM ([`webrtc_certificate`] makes one):
    /// its hash is part of the listen address, so keeping it keeps the address. `None`: a new
    /// one each start.
    pub webrtc_certificate: Option<String>,
}

/// A new certificate for a webrtc-direct listener, PEM.
pub fn webrtc_certificate() -> Result<String, P2pError> {
    libp2p_webrtc::tokio::Certificate::generate(&mut rand::rng())
        .map(|c| c.serialize_pem())
        .map_err(|e| P2pError::Build(format!("making a webrtc certificate: {e}")))
}

impl P2pConfig {
    /// A node with identity `keypair` that listens nowhere, knows no one, joins no topic,
    /// holds no blobs and relays nothing.
    pub fn new(keypair: identity::Keypair) -> Self {
        Self {
            keypair,
            listen: Vec::new(),
            peers: Vec::new(),
            gossip: Registry::new(),
            blobs: None,
            external: Vec::new(),
            relay: false,
            fetch_missing: false,
            webrtc_certificate: None,
        }
    }
}

/// A connected peer, as this node knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// Its peer id.
    pub peer_id: PeerId,
    /// The addresses of its connections (the remote end).
    pub addresses: Vec<Multiaddr>,
    /// What it says it runs (identify's agent version), once identified.
    pub agent: Option<String>,
}

/// What a node has done since it started.
#[derive(Debug, Default)]
pub struct Stats {
    /// Segment requests answered with data.
    pub segment_requests: AtomicU64,
    /// Bytes of blob data sent in those answers.
    pub segment_bytes: AtomicU64,
    /// Blobs fetched from providers.
    pub fetched: AtomicU64,
    /// Relay reservations accepted.
    pub reservations: AtomicU64,
    /// Relayed circuits opened.
    pub circuits: AtomicU64,
}

/// Why a fetch failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// No provider of the blob was found, or none answered with good data.
    #[error("no provider of blob {0} answered with it")]
    NotFound(blake3::Hash),
    /// The node has stopped.
    #[error("the node has stopped")]
    Stopped,
}

/// Why the swarm could not start.
#[derive(Debug, thiserror::Error)]
pub enum P2pError {
    /// The transport or a behaviour could not be built.
    #[error("building the libp2p swarm: {0}")]
    Build(String),
    /// A listen address was refused.
    #[error("listening on {address}: {why}")]
    Listen {
        /// The address.
        address: Multiaddr,
        /// The reason.
        why: String,
    },
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    limits: connection_limits::Behaviour,
    relay: Toggle<relay::Behaviour>,
    relay_client: relay::client::Behaviour,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    gossipsub: gossipsub::Behaviour,
    direct: request_response::Behaviour<Bytes>,
    kad: kad::Behaviour<kad::store::MemoryStore>,
    segments: request_response::Behaviour<Bytes>,
}

enum Command {
    Publish(gossipsub::TopicHash, Vec<u8>),
    Send(PeerId, Vec<u8>),
    Provide(blake3::Hash),
    Fetch(blake3::Hash, Option<PeerId>, oneshot::Sender<Result<Vec<u8>, FetchError>>),
}

/// A running node's handle: its identity, addresses and counters.
#[derive(Debug, Clone)]
pub struct P2p {
    peer_id: PeerId,
    listening: watch::Receiver<Vec<Multiaddr>>,
    /// Listeners started with the node (circuits aside), and how many have an address.
    listeners: usize,
    up: watch::Receiver<usize>,
    connected: watch::Receiver<usize>,
    dropped: Arc<AtomicU64>,
    commands: mpsc::Sender<Command>,
    banned: Arc<std::sync::Mutex<HashSet<PeerId>>>,
    peers: Arc<std::sync::Mutex<HashMap<PeerId, PeerInfo>>>,
    stats: Arc<Stats>,
    external: Vec<Multiaddr>,
}

impl P2p {
    /// Its peer id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// The addresses it listens on, once the listeners are up (with `/p2p/<peer id>`).
    pub async fn listening(&self) -> Vec<Multiaddr> {
        let mut rx = self.listening.clone();
        let Ok(addrs) = rx.wait_for(|a| !a.is_empty()).await else { return Vec::new() };
        addrs.iter().map(|a| a.clone().with_p2p(self.peer_id).unwrap_or_else(|a| a)).collect()
    }

    /// Where it can be dialled now: its external addresses, then those it listens on (with
    /// `/p2p/<peer id>`).
    pub fn addresses(&self) -> Vec<Multiaddr> {
        let listening = self.listening.borrow().clone();
        self.external
            .iter()
            .chain(&listening)
            .map(|a| a.clone().with_p2p(self.peer_id).unwrap_or_else(|a| a))
            .collect()
    }

    /// Waits until every listener it was started with (circuits aside) has its address.
    pub async fn listeners_up(&self) {
        let mut rx = self.up.clone();
        let _ = rx.wait_for(|n| *n >= self.listeners).await;
    }

    /// Waits until it is connected to at least `n` peers.
    pub async fn connected_to(&self, n: usize) {
        let mut rx = self.connected.clone();
        let _ = rx.wait_for(|c| *c >= n).await;
    }

    /// Messages dropped because a queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Announces (in kademlia) that this node provides blob `name`.
    pub async fn provide(&self, name: blake3::Hash) -> Result<(), FetchError> {
        self.commands.send(Command::Provide(name)).await.map_err(|_| FetchError::Stopped)
    }

    /// Finds the providers of blob `name` and fetches it, checking every 16 KiB group against
    /// the name as it arrives; a provider that sends a bad one is banned and the next provider
    /// goes on from that group. The blob is kept in the node's store and provided.
    pub async fn fetch(&self, name: blake3::Hash) -> Result<Vec<u8>, FetchError> {
        self.fetch_via(name, None).await
    }

    /// Fetches blob `name` from `peer` alone (a relay, which fetches what it lacks from the
    /// providers), checking every group as [`P2p::fetch`] does.
    pub async fn fetch_from(
        &self,
        peer: PeerId,
        name: blake3::Hash,
    ) -> Result<Vec<u8>, FetchError> {
        self.fetch_via(name, Some(peer)).await
    }

    async fn fetch_via(
        &self,
        name: blake3::Hash,
        from: Option<PeerId>,
    ) -> Result<Vec<u8>, FetchError> {
        let (reply, answer) = oneshot::channel();
        let command = Command::Fetch(name, from, reply);
        self.commands.send(command).await.map_err(|_| FetchError::Stopped)?;
        answer.await.map_err(|_| FetchError::Stopped)?
    }

    /// The peers banned for sending bad data.
    pub fn banned(&self) -> Vec<PeerId> {
        self.banned.lock().map(|b| b.iter().copied().collect()).unwrap_or_default()
    }

    /// The peers it is connected to, by peer id.
    pub fn peers(&self) -> Vec<PeerInfo> {
        let mut peers: Vec<PeerInfo> =
            self.peers.lock().map(|p| p.values().cloned().collect()).unwrap_or_default();
        peers.sort_by_key(|p| p.peer_id);
        peers
    }

    /// Its counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
}

/// Messages to and from peers: gossip published on a topic, one-way messages to one peer
/// (`/kinema/direct/1`), and what arrives by either, with the peer it came from. What does not
/// fit a queue is dropped and counted ([`P2p::dropped`]).
#[derive(Debug)]
pub struct Messages {
    commands: mpsc::Sender<Command>,
    inbox: mpsc::Receiver<(PeerId, Arc<[u8]>)>,
    dropped: Arc<AtomicU64>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Publish(t, b) => write!(f, "Publish({t:?}, {} bytes)", b.len()),
            Command::Send(p, b) => write!(f, "Send({p:?}, {} bytes)", b.len()),
            Command::Provide(name) => write!(f, "Provide({name})"),
            Command::Fetch(name, from, _) => write!(f, "Fetch({name} from {from:?})"),
        }
    }
}

impl Messages {
    fn queue(&self, command: Command) {
        if self.commands.try_send(command).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Publishes `bytes` on gossip topic `topic` (one of the registry's).
    pub fn publish(&self, topic: &str, bytes: Vec<u8>) {
        self.queue(Command::Publish(gossipsub::IdentTopic::new(topic).hash(), bytes));
    }

    /// Sends `bytes` to `to` alone.
    pub fn send(&self, to: PeerId, bytes: Vec<u8>) {
        self.queue(Command::Send(to, bytes));
    }

    /// The next message that arrived, and who it came from: its author when this node is
    /// connected to it, otherwise the peer that forwarded it. `None` once the node stopped.
    pub async fn recv(&mut self) -> Option<(PeerId, Arc<[u8]>)> {
        self.inbox.recv().await
    }
}

/// Starts a node on the current tokio runtime: listens, dials its peers, joins the gossip
/// topics of its registry.
pub fn start(config: P2pConfig) -> Result<(P2p, Messages), P2pError> {
    let build = |e: &dyn std::fmt::Display| P2pError::Build(e.to_string());
    let topics: HashMap<gossipsub::TopicHash, (gossipsub::IdentTopic, Check)> = config
        .gossip
        .topics()
        .map(|(name, check)| {
            let topic = gossipsub::IdentTopic::new(name);
            (topic.hash(), (topic, check.clone()))
        })
        .collect();
    // Both rustls providers are linked (QUIC's and the websocket's); webrtc's DTLS asks for the
    // process default, which must then be chosen. Already chosen (another node): fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let pem = match &config.webrtc_certificate {
        Some(pem) => pem.clone(),
        None => webrtc_certificate()?,
    };
    let certificate = libp2p_webrtc::tokio::Certificate::from_pem(&pem)
        .map_err(|e| P2pError::Build(format!("the webrtc certificate: {e}")))?;
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(config.keypair.clone())
        .with_tokio()
        .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)
        .map_err(|e| build(&e))?
        .with_quic()
        .with_other_transport(|key| {
            libp2p_webrtc::tokio::Transport::new(key.clone(), certificate)
                .map(|(peer, connection), _| (peer, StreamMuxerBox::new(connection)))
        })
        .map_err(|e| build(&e))?
        .with_dns()
        .map_err(|e| build(&e))?
        .with_websocket(noise::Config::new, yamux::Config::default)
        .now_or_never()
        .ok_or_else(|| P2pError::Build("the websocket transport did not build at once".into()))?
        .map_err(|e| build(&e))?
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .map_err(|e| build(&e))?
        .with_behaviour(|key, relay_client| {
            let gossip_config = gossipsub::ConfigBuilder::default()
                .max_transmit_size(MAX_MESSAGE)
                .heartbeat_interval(Duration::from_millis(500))
                .validation_mode(gossipsub::ValidationMode::Strict)
                // Each message is checked against its topic before it is forwarded.
                .validate_messages()
                .build()
                .map_err(|e| e.to_string())?;
            let gossipsub = gossipsub::Behaviour::new(
                gossipsub::MessageAuthenticity::Signed(key.clone()),
                gossip_config,
            )?;
            let limits = connection_limits::ConnectionLimits::default()
                .with_max_established(Some(MAX_CONNECTIONS))
                .with_max_established_per_peer(Some(MAX_PER_PEER));
            let protocol =
                |name| [(StreamProtocol::new(name), request_response::ProtocolSupport::Full)];
            let timeout =
                request_response::Config::default().with_request_timeout(Duration::from_secs(30));
            let direct =
                request_response::Behaviour::new(protocol("/kinema/direct/1"), timeout.clone());
            let segments = request_response::Behaviour::new(protocol("/kinema/segment/1"), timeout);
            let id = key.public().to_peer_id();
            let mut kad = kad::Behaviour::with_config(
                id,
                kad::store::MemoryStore::new(id),
                kad::Config::new(StreamProtocol::new("/kinema/kad/1")),
            );
            // Answer queries without waiting to learn an external address (loopback devnets).
            kad.set_mode(Some(kad::Mode::Server));
            let relay = config.relay.then(|| relay::Behaviour::new(id, relay_config()));
            Ok(Behaviour {
                limits: connection_limits::Behaviour::new(limits),
                relay: relay.into(),
                relay_client,
                identify: identify::Behaviour::new(
                    identify::Config::new("/kinema/1.0.0".into(), key.public())
                        .with_agent_version(AGENT.into()),
                ),
                ping: ping::Behaviour::default(),
                gossipsub,
                direct,
                kad,
                segments,
            })
        })
        .map_err(|e| build(&e))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();
    for (topic, _) in topics.values() {
        swarm.behaviour_mut().gossipsub.subscribe(topic).map_err(|e| build(&e))?;
    }
    for address in &config.external {
        swarm.add_external_address(address.clone());
    }
    let mut peers = config.peers;
    let mut circuits = Vec::new();
    let mut direct = HashSet::new();
    for address in &config.listen {
        if let Some(relay) = circuit_relay(address) {
            // Listened on once connected to the relay (see `Circuit`); dialled like any peer.
            let relay = relay.map_err(|why| P2pError::Listen { address: address.clone(), why })?;
            if !peers.contains(&relay.1) {
                peers.push(relay.1);
            }
            circuits.push(Circuit { address: address.clone(), relay: relay.0, listener: None });
            continue;
        }
        let id = swarm
            .listen_on(address.clone())
            .map_err(|e| P2pError::Listen { address: address.clone(), why: e.to_string() })?;
        direct.insert(id);
    }
    let peer_id = *swarm.local_peer_id();
    let (commands_tx, commands) = mpsc::channel(QUEUE);
    let (inbox_tx, inbox) = mpsc::channel(QUEUE);
    let (done_tx, done_rx) = mpsc::channel(QUEUE);
    let (listening_tx, listening) = watch::channel(Vec::new());
    let (up_tx, up) = watch::channel(0);
    let (connected_tx, connected) = watch::channel(0);
    let dropped = Arc::new(AtomicU64::new(0));
    let banned = Arc::new(std::sync::Mutex::new(HashSet::new()));
    let known = Arc::new(std::sync::Mutex::new(HashMap::new()));
    let stats = Arc::new(Stats::default());
    let handle = P2p {
        peer_id,
        listening,
        listeners: direct.len(),
        up,
        connected,
        dropped: dropped.clone(),
        commands: commands_tx.clone(),
        banned: banned.clone(),
        peers: known.clone(),
        stats: stats.clone(),
        external: config.external.clone(),
    };
    let messages = Messages { commands: commands_tx, inbox, dropped: dropped.clone() };
    let task = SwarmTask {
        swarm,
        topics,
        peers,
        circuits,
        commands,
        inbox: inbox_tx,
        listening: listening_tx,
        direct,
        reported: HashSet::new(),
        up: up_tx,
        connected: connected_tx,
        dropped,
        answered: HashMap::new(),
        blobs: config.blobs,
        fetch_missing: config.fetch_missing,
        announce_listening: config.relay && config.external.is_empty(),
        known,
        stats,
        announced: false,
        banned,
        fetches: HashMap::new(),
        queries: HashMap::new(),
        requests: HashMap::new(),
        done: done_tx,
        done_rx,
        readers: Arc::new(tokio::sync::Semaphore::new(READERS)),
    };
    tokio::spawn(task.run());
    Ok((handle, messages))
}

/// A circuit address to listen on: `<relay address>/p2p/<relay>/p2p-circuit`.
///
/// The listener starts only once the relay is connected: libp2p's relay client dials the relay
/// itself when it is not, and gives up for good (closing the listener) when another dial of
/// the same peer is under way. A listener that closes (the relay restarted) is opened again
/// once the relay is back.
struct Circuit {
    address: Multiaddr,
    relay: PeerId,
    listener: Option<libp2p::core::transport::ListenerId>,
}

/// For a `/p2p-circuit` address, the relay it names and the relay's own address.
fn circuit_relay(address: &Multiaddr) -> Option<Result<(PeerId, Multiaddr), String>> {
    use libp2p::multiaddr::Protocol;
    let at = address.iter().position(|p| p == Protocol::P2pCircuit)?;
    let relay: Multiaddr = address.iter().take(at).collect();
    Some(match relay.iter().last() {
        Some(Protocol::P2p(id)) => Ok((id, relay)),
        _ => Err("a circuit address names its relay: <address>/p2p/<relay id>/p2p-circuit".into()),
    })
}

struct SwarmTask {
    swarm: libp2p::Swarm<Behaviour>,
    /// The gossip topics joined, by hash, with their checks.
    topics: HashMap<gossipsub::TopicHash, (gossipsub::IdentTopic, Check)>,
    peers: Vec<Multiaddr>,
    circuits: Vec<Circuit>,
    commands: mpsc::Receiver<Command>,
    inbox: mpsc::Sender<(PeerId, Arc<[u8]>)>,
    listening: watch::Sender<Vec<Multiaddr>>,
    /// The listeners started with the node (circuits aside), those that reported an address,
    /// and how many of the first did.
    direct: HashSet<libp2p::core::transport::ListenerId>,
    reported: HashSet<libp2p::core::transport::ListenerId>,
    up: watch::Sender<usize>,
    connected: watch::Sender<usize>,
    dropped: Arc<AtomicU64>,
    /// Who answered at a configured address that names no peer.
    answered: HashMap<Multiaddr, PeerId>,
    blobs: Option<Arc<BlobStore>>,
    fetch_missing: bool,
    /// Whether its listen addresses are its external ones (a relay reached on them: a relay
    /// grants reservations only with an external address to put in them).
    announce_listening: bool,
    /// The connected peers, shared with the handle.
    known: Arc<std::sync::Mutex<HashMap<PeerId, PeerInfo>>>,
    stats: Arc<Stats>,
    /// Whether the store's blobs were announced since start.
    announced: bool,
    banned: Arc<std::sync::Mutex<HashSet<PeerId>>>,
    /// Fetches under way, by blob.
    fetches: HashMap<blake3::Hash, Fetch>,
    /// Work done off the swarm's task (blob reads and writes), coming back.
    done: mpsc::Sender<Done>,
    done_rx: mpsc::Receiver<Done>,
    /// Blob reads under way at most.
    readers: Arc<tokio::sync::Semaphore>,
    /// Provider queries, and segment requests in flight, by the blob they fetch.
    queries: HashMap<kad::QueryId, blake3::Hash>,
    requests: HashMap<request_response::OutboundRequestId, (blake3::Hash, u32)>,
}

/// What a blocking task hands back to the swarm's task.
enum Done {
    /// The answer to a segment request.
    Answer(request_response::ResponseChannel<Vec<u8>>, Vec<u8>),
    /// A fetched blob is in the store: provide it.
    Kept(blake3::Hash),
}

/// Blob reads a node runs at once; more requests wait their turn.
const READERS: usize = 16;

/// One blob being fetched.
struct Fetch {
    download: Download,
    replies: Vec<oneshot::Sender<Result<Vec<u8>, FetchError>>>,
    /// Segment requests for the blob from peers, answered when it is here.
    waiting: Vec<(request_response::ResponseChannel<Vec<u8>>, Vec<u8>)>,
    providers: VecDeque<PeerId>,
    tried: HashSet<PeerId>,
    /// The provider asked now, and how many of its answers are awaited.
    provider: Option<PeerId>,
    in_flight: usize,
    /// Whether the provider query has ended.
    searched: bool,
    /// Provider queries made; one that finds no one is repeated a few times (a node that just
    /// joined may not know the network yet).
    queries: u32,
    /// When to ask again.
    retry_at: Option<tokio::time::Instant>,
}

impl Fetch {
    fn new(name: blake3::Hash) -> Self {
        Self {
            download: Download::new(name),
            replies: Vec::new(),
            waiting: Vec::new(),
            providers: VecDeque::new(),
            tried: HashSet::new(),
            provider: None,
            in_flight: 0,
            searched: false,
            queries: 0,
            retry_at: None,
        }
    }
}

/// Batches of a fetch asked of its provider at once. Each answer is a yamux stream of its own,
/// whose window starts at 256 KiB, so a 1 MiB answer takes several round trips: over a 20 ms
/// round trip one batch at a time needs at least 640 ms for 32 MiB; 4 in flight took 991 ms,
/// 8 572 ms, 16 399 ms (`cargo bench -p kinema-node --bench segments`). A provider holds up to
/// this many answers (16 MiB) per fetch.
const IN_FLIGHT: usize = 16;

/// Provider queries a fetch makes before it gives up.
const QUERIES: u32 = 4;
/// The wait before asking again.
const REQUERY: Duration = Duration::from_millis(500);

impl SwarmTask {
    fn deliver(&mut self, from: PeerId, bytes: Vec<u8>) {
        if self.inbox.try_send((from, bytes.into())).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Opens the circuit listeners whose relay is connected and that are not open.
    fn listen_through_relays(&mut self) {
        for circuit in &mut self.circuits {
            if circuit.listener.is_none() && self.swarm.is_connected(&circuit.relay) {
                match self.swarm.listen_on(circuit.address.clone()) {
                    Ok(id) => circuit.listener = Some(id),
                    Err(e) => warn!(address = %circuit.address, "listening through the relay: {e}"),
                }
            }
        }
    }

    fn redial(&mut self) {
        self.listen_through_relays();
        for address in self.peers.clone() {
            let named = peer_of(&address);
            let known = named.or_else(|| self.answered.get(&address).copied());
            if known.is_some_and(|id| self.swarm.is_connected(&id)) {
                continue;
            }
            // A peer being dialled already is not dialled again (one connection is enough).
            let dial = match known {
                Some(id) => DialOpts::peer_id(id)
                    .addresses(vec![address.clone()])
                    .condition(PeerCondition::DisconnectedAndNotDialing)
                    .build(),
                None => DialOpts::unknown_peer_id().address(address.clone()).build(),
            };
            if let Err(e) = self.swarm.dial(dial) {
                debug!(%address, "dial: {e}");
            }
        }
    }

    async fn run(mut self) {
        self.redial();
        let mut redial = tokio::time::interval(REDIAL);
        let mut requery = tokio::time::interval(REQUERY / 2);
        loop {
            tokio::select! {
                command = self.commands.recv() => match command {
                    None => return,
                    Some(Command::Publish(topic, bytes)) => {
                        let Some((topic, _)) = self.topics.get(&topic) else {
                            debug!(%topic, "publishing on a topic not joined");
                            continue;
                        };
                        let topic = topic.clone();
                        if let Err(e) = self.swarm.behaviour_mut().gossipsub.publish(topic, bytes) {
                            // No peer yet (or a duplicate): consensus re-sends what matters.
                            debug!("gossip: {e}");
                        }
                    }
                    Some(Command::Send(to, bytes)) => {
                        self.swarm.behaviour_mut().direct.send_request(&to, bytes);
                    }
                    Some(Command::Provide(name)) => self.provide(name),
                    Some(Command::Fetch(name, from, reply)) => self.start_fetch(name, from, reply),
                },
                Some(done) = self.done_rx.recv() => self.on_done(done),
                _ = redial.tick() => self.redial(),
                _ = requery.tick() => self.requery_due(),
                event = self.swarm.select_next_some() => self.on_event(event),
            }
        }
    }

    /// Announces everything the store holds (once the node knows a peer to announce it to,
    /// and again after a restart).
    fn provide_held(&mut self) {
        let held = self.blobs.as_ref().map(|b| b.list()).transpose();
        match held {
            Ok(names) => names.into_iter().flatten().for_each(|name| self.provide(name)),
            Err(e) => warn!("listing the blob store: {e}"),
        }
    }

    fn provide(&mut self, name: blake3::Hash) {
        let key = kad::RecordKey::new(name.as_bytes());
        if let Err(e) = self.swarm.behaviour_mut().kad.start_providing(key) {
            warn!(%name, "providing: {e}");
        }
    }

    fn start_fetch(
        &mut self,
        name: blake3::Hash,
        from: Option<PeerId>,
        reply: oneshot::Sender<Result<Vec<u8>, FetchError>>,
    ) {
        if let Some(store) = &self.blobs
            && store.has(&name)
            && let Ok(bytes) = store.get(&name)
        {
            let _ = reply.send(Ok(bytes));
            return;
        }
        if let Some(peer) = from
            && !self.fetches.contains_key(&name)
        {
            // One peer asked, no provider search.
            let fetch = Fetch {
                providers: VecDeque::from([peer]),
                searched: true,
                queries: QUERIES,
                replies: vec![reply],
                ..Fetch::new(name)
            };
            self.fetches.insert(name, fetch);
            return self.advance(name);
        }
        self.fetch_entry(name).replies.push(reply);
    }

    /// The fetch of `name`, started if it was not under way.
    fn fetch_entry(&mut self, name: blake3::Hash) -> &mut Fetch {
        if let std::collections::hash_map::Entry::Vacant(entry) = self.fetches.entry(name) {
            entry.insert(Fetch::new(name));
            self.query(name);
        }
        self.fetches.entry(name).or_insert_with(|| Fetch::new(name))
    }

    fn query(&mut self, name: blake3::Hash) {
        if let Some(fetch) = self.fetches.get_mut(&name) {
            fetch.queries += 1;
            fetch.searched = false;
            fetch.retry_at = None;
            let key = kad::RecordKey::new(name.as_bytes());
            let id = self.swarm.behaviour_mut().kad.get_providers(key);
            self.queries.insert(id, name);
        }
    }

    fn requery_due(&mut self) {
        let now = tokio::time::Instant::now();
        let due: Vec<blake3::Hash> = self
            .fetches
            .iter()
            .filter(|(_, f)| f.retry_at.is_some_and(|at| at <= now))
            .map(|(n, _)| *n)
            .collect();
        for name in due {
            self.query(name);
        }
    }

    fn is_banned(&self, peer: &PeerId) -> bool {
        self.banned.lock().is_ok_and(|b| b.contains(peer))
    }

    fn on_providers(&mut self, name: blake3::Hash, found: Vec<PeerId>, last: bool) {
        let local = *self.swarm.local_peer_id();
        let banned: Vec<bool> = found.iter().map(|p| self.is_banned(p)).collect();
        let Some(fetch) = self.fetches.get_mut(&name) else { return };
        for (peer, banned) in found.into_iter().zip(banned) {
            if peer != local
                && !banned
                && !fetch.tried.contains(&peer)
                && !fetch.providers.contains(&peer)
            {
                fetch.providers.push_back(peer);
            }
        }
        fetch.searched |= last;
        self.advance(name);
    }

    /// Keeps [`IN_FLIGHT`] batches asked of the current provider, or ends the fetch.
    fn advance(&mut self, name: blake3::Hash) {
        let Some(fetch) = self.fetches.get_mut(&name) else { return };
        if fetch.download.is_complete() {
            let data = std::mem::replace(&mut fetch.download, Download::new(name)).into_bytes();
            self.finish(name, Ok(data));
            return;
        }
        match fetch.providers.front().copied() {
            Some(peer) => {
                if fetch.provider != Some(peer) {
                    // A new provider: what the last one left unanswered is asked again.
                    fetch.provider = Some(peer);
                    fetch.in_flight = 0;
                    fetch.download.ask_again();
                }
                while fetch.in_flight < IN_FLIGHT {
                    let Some((first, bytes)) = fetch.download.next_batch() else { break };
                    let id = self.swarm.behaviour_mut().segments.send_request(&peer, bytes);
                    self.requests.insert(id, (name, first));
                    fetch.in_flight += 1;
                }
            }
            None if fetch.searched && fetch.queries < QUERIES => {
                fetch.searched = false;
                fetch.retry_at = Some(tokio::time::Instant::now() + REQUERY);
            }
            None if fetch.searched => self.finish(name, Err(FetchError::NotFound(name))),
            None => {}
        }
    }

    fn finish(&mut self, name: blake3::Hash, result: Result<Vec<u8>, FetchError>) {
        let Some(fetch) = self.fetches.remove(&name) else { return };
        if result.is_ok() {
            self.stats.fetched.fetch_add(1, Ordering::Relaxed);
        }
        let (Ok(bytes), Some(store)) = (&result, self.blobs.clone()) else {
            for reply in fetch.replies {
                let _ = reply.send(result.clone());
            }
            for (channel, request) in fetch.waiting {
                self.serve(channel, request);
            }
            return;
        };
        // Kept on a blocking thread; then the fetch returns, the requests that waited for it
        // are answered from the store, and it is provided.
        let (stats, done) = (self.stats.clone(), self.done.clone());
        let (bytes, replies, waiting) = (bytes.clone(), fetch.replies, fetch.waiting);
        tokio::spawn(async move {
            let kept = tokio::task::spawn_blocking(move || {
                let kept = store.put(&bytes);
                if let Err(e) = &kept {
                    warn!(%name, "keeping a fetched blob: {e}");
                }
                for reply in replies {
                    let _ = reply.send(Ok(bytes.clone()));
                }
                let answers: Vec<Done> = waiting
                    .into_iter()
                    .map(|(channel, request)| {
                        Done::Answer(channel, answer(Some(&store), &stats, &request))
                    })
                    .collect();
                (kept.is_ok(), answers)
            })
            .await;
            let Ok((kept, answers)) = kept else { return };
            for answer in answers {
                let _ = done.send(answer).await;
            }
            if kept {
                let _ = done.send(Done::Kept(name)).await;
            }
        });
    }

    /// Drops `peer` from a fetch: it answered without the blob, or failed.
    fn skip(&mut self, name: blake3::Hash, peer: PeerId) {
        if let Some(fetch) = self.fetches.get_mut(&name) {
            fetch.providers.retain(|p| *p != peer);
            fetch.tried.insert(peer);
            if fetch.provider == Some(peer) {
                fetch.provider = None;
                fetch.in_flight = 0;
            }
        }
    }

    /// Bans `peer` for sending data that does not match what it claimed, and goes on with the
    /// next provider.
    fn penalize(&mut self, name: blake3::Hash, peer: PeerId, why: &str) {
        warn!(%peer, %name, "bad data, banned: {why}");
        if let Ok(mut banned) = self.banned.lock() {
            banned.insert(peer);
        }
        let _ = self.swarm.disconnect_peer_id(peer);
        self.skip(name, peer);
        self.advance(name);
    }

    fn on_segment(&mut self, name: blake3::Hash, first: u32, peer: PeerId, bytes: &[u8]) {
        let Some(fetch) = self.fetches.get_mut(&name) else { return };
        if fetch.provider != Some(peer) {
            // An answer from a provider given up on.
            return;
        }
        fetch.in_flight = fetch.in_flight.saturating_sub(1);
        match fetch.download.accept_batch(first, bytes) {
            Answer::NotFound | Answer::Added(0) => {
                // Not held, or nothing new: this provider does not have it after all.
                self.skip(name, peer);
                self.advance(name);
            }
            Answer::Bad(why) => self.penalize(name, peer, &why),
            Answer::Added(_) | Answer::Complete => self.advance(name),
        }
    }

    /// Answers a segment request: at once, or once the blob is fetched when this node fetches
    /// what it is asked for and does not hold.
    fn on_request(
        &mut self,
        channel: request_response::ResponseChannel<Vec<u8>>,
        request: Vec<u8>,
    ) {
        if self.fetch_missing
            && let Ok(asked) = borsh::from_slice::<SegmentRequest>(&request)
            && let Some(store) = &self.blobs
        {
            let name = blake3::Hash::from_bytes(asked.name);
            if !store.has(&name) {
                self.fetch_entry(name).waiting.push((channel, request));
                return;
            }
        }
        self.serve(channel, request);
    }

    /// Answers a segment request from the store on a blocking thread (reading a blob must not
    /// hold up the swarm); the answer comes back as a [`Done`]. At most [`READERS`] read at
    /// once.
    fn serve(&self, channel: request_response::ResponseChannel<Vec<u8>>, request: Vec<u8>) {
        let (blobs, stats, done) = (self.blobs.clone(), self.stats.clone(), self.done.clone());
        let readers = self.readers.clone();
        tokio::spawn(async move {
            let Ok(_permit) = readers.acquire_owned().await else { return };
            let read = move || answer(blobs.as_deref(), &stats, &request);
            let Ok(answer) = tokio::task::spawn_blocking(read).await else { return };
            let _ = done.send(Done::Answer(channel, answer)).await;
        });
    }

    fn on_done(&mut self, done: Done) {
        match done {
            Done::Answer(channel, answer) => {
                let _ = self.swarm.behaviour_mut().segments.send_response(channel, answer);
            }
            Done::Kept(name) => self.provide(name),
        }
    }

    fn on_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Segments(request_response::Event::Message {
                peer,
                message,
                ..
            })) => match message {
                request_response::Message::Request { request, channel, .. } => {
                    self.on_request(channel, request);
                }
                request_response::Message::Response { request_id, response } => {
                    if let Some((name, first)) = self.requests.remove(&request_id) {
                        self.on_segment(name, first, peer, &response);
                    }
                }
            },
            SwarmEvent::Behaviour(BehaviourEvent::Segments(
                request_response::Event::OutboundFailure { peer, request_id, error, .. },
            )) => {
                debug!(%peer, "segment request failed: {error}");
                if let Some((name, _)) = self.requests.remove(&request_id) {
                    self.skip(name, peer);
                    self.advance(name);
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Kad(kad::Event::RoutingUpdated {
                is_new_peer: true,
                ..
            })) if !self.announced => {
                self.announced = true;
                self.provide_held();
            }
            SwarmEvent::Behaviour(BehaviourEvent::Kad(kad::Event::OutboundQueryProgressed {
                id,
                result: kad::QueryResult::GetProviders(result),
                step,
                ..
            })) => {
                let Some(name) = self.queries.get(&id).copied() else { return };
                if step.last {
                    self.queries.remove(&id);
                }
                let found = match result {
                    Ok(kad::GetProvidersOk::FoundProviders { providers, .. }) => {
                        providers.into_iter().collect()
                    }
                    Ok(kad::GetProvidersOk::FinishedWithNoAdditionalRecord { .. }) | Err(_) => {
                        Vec::new()
                    }
                };
                self.on_providers(name, found, step.last);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => {
                let fits =
                    self.topics.get(&message.topic).is_some_and(|(_, check)| check(&message.data));
                let verdict = if fits {
                    gossipsub::MessageAcceptance::Accept
                } else {
                    debug!(%propagation_source, topic = %message.topic, "gossip rejected");
                    gossipsub::MessageAcceptance::Reject
                };
                let gossip = &mut self.swarm.behaviour_mut().gossipsub;
                gossip.report_message_validation_result(&message_id, &propagation_source, verdict);
                if fits {
                    // Its author when this node can answer it directly (a block asked for
                    // after a header is heard goes there), otherwise the peer it came through.
                    let from = message
                        .source
                        .filter(|author| self.swarm.is_connected(author))
                        .unwrap_or(propagation_source);
                    self.deliver(from, message.data);
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Direct(request_response::Event::Message {
                peer,
                message: request_response::Message::Request { request, channel, .. },
                ..
            })) => {
                self.deliver(peer, request);
                let _ = self.swarm.behaviour_mut().direct.send_response(channel, Vec::new());
            }
            SwarmEvent::Behaviour(BehaviourEvent::Direct(
                request_response::Event::OutboundFailure { peer, error, .. },
            )) => debug!(%peer, "direct message failed: {error}"),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => {
                if let Ok(mut peers) = self.known.lock()
                    && let Some(known) = peers.get_mut(&peer_id)
                {
                    known.agent = Some(info.agent_version.clone());
                }
                // Learn where an inbound peer listens, so gossip can reach it after a restart
                // and kademlia can route to it.
                for address in info.listen_addrs {
                    self.swarm.behaviour_mut().kad.add_address(&peer_id, address.clone());
                    self.swarm.add_peer_address(peer_id, address);
                }
            }
            SwarmEvent::NewListenAddr { listener_id, address } => {
                if self.announce_listening {
                    self.swarm.add_external_address(address.clone());
                }
                self.listening.send_modify(|a| a.push(address));
                if self.direct.contains(&listener_id) && self.reported.insert(listener_id) {
                    self.up.send_replace(self.reported.len());
                }
            }
            SwarmEvent::ConnectionEstablished { peer_id, .. } if self.is_banned(&peer_id) => {
                let _ = self.swarm.disconnect_peer_id(peer_id);
            }
            SwarmEvent::ConnectionEstablished { peer_id, endpoint, .. } => {
                let remote = endpoint.get_remote_address().clone();
                if let Ok(mut peers) = self.known.lock() {
                    let known = peers.entry(peer_id).or_insert_with(|| PeerInfo {
                        peer_id,
                        addresses: Vec::new(),
                        agent: None,
                    });
                    known.addresses.push(remote);
                }
                if let libp2p::core::ConnectedPoint::Dialer { address, .. } = endpoint
                    && self.peers.contains(&address)
                {
                    self.answered.insert(address, peer_id);
                }
                self.listen_through_relays();
                let n = self.swarm.connected_peers().count();
                self.connected.send_replace(n);
            }
            SwarmEvent::ConnectionClosed { peer_id, endpoint, num_established, .. } => {
                if let Ok(mut peers) = self.known.lock() {
                    if num_established == 0 {
                        peers.remove(&peer_id);
                    } else if let Some(known) = peers.get_mut(&peer_id) {
                        let remote = endpoint.get_remote_address();
                        if let Some(i) = known.addresses.iter().position(|a| a == remote) {
                            known.addresses.remove(i);
                        }
                    }
                }
                let n = self.swarm.connected_peers().count();
                self.connected.send_replace(n);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Relay(
                relay::Event::ReservationReqAccepted { .. },
            )) => {
                self.stats.reservations.fetch_add(1, Ordering::Relaxed);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Relay(relay::Event::CircuitReqAccepted {
                ..
            })) => {
                self.stats.circuits.fetch_add(1, Ordering::Relaxed);
            }
            SwarmEvent::ListenerError { error, .. } => warn!("listener: {error}"),
            SwarmEvent::ListenerClosed { listener_id, addresses, reason: Err(e) } => {
                warn!(?addresses, "listener closed: {e}");
                self.on_event(SwarmEvent::ListenerClosed {
                    listener_id,
                    addresses,
                    reason: Ok(()),
                });
            }
            SwarmEvent::ListenerClosed { listener_id, .. } => {
                for circuit in &mut self.circuits {
                    if circuit.listener == Some(listener_id) {
                        circuit.listener = None;
                    }
                }
            }
            _ => {}
        }
    }
}

/// Up to `len` bytes of blob `name` from `request.offset` bytes into group `request.first`
/// (nothing past its end, or when unreadable).
/// What a node holding `blobs` answers to a segment request.
fn answer(blobs: Option<&BlobStore>, stats: &Stats, request: &[u8]) -> Vec<u8> {
    let answer = match (borsh::from_slice::<SegmentRequest>(request), blobs) {
        (Ok(request), Some(store)) => {
            let name = blake3::Hash::from_bytes(request.name);
            match store.outboard(&name) {
                Ok(outboard) => {
                    let sent_outboard = request.outboard.then(|| outboard.to_bytes());
                    let groups = if request.max_bytes == 0 {
                        let first = request.first as usize;
                        let end =
                            (first + request.count.min(BATCH) as usize).min(groups(outboard.len()));
                        // Past the end, or unreadable: nothing more to send.
                        store.groups(&name, &outboard, first..end).unwrap_or_default()
                    } else {
                        let outboard_len = sent_outboard.as_ref().map_or(0, Vec::len);
                        let len = piece_len(request.max_bytes, outboard_len);
                        vec![piece(store, &name, &outboard, &request, len)]
                    };
                    let sent: usize = groups.iter().map(Vec::len).sum();
                    stats.segment_requests.fetch_add(1, Ordering::Relaxed);
                    stats.segment_bytes.fetch_add(sent as u64, Ordering::Relaxed);
                    SegmentResponse::Found { outboard: sent_outboard, groups }
                }
                Err(_) => SegmentResponse::NotFound,
            }
        }
        _ => SegmentResponse::NotFound,
    };
    borsh::to_vec(&answer).unwrap_or_default()
}

fn piece(
    store: &BlobStore,
    name: &blake3::Hash,
    outboard: &crate::verified::Outboard,
    request: &SegmentRequest,
    len: usize,
) -> Vec<u8> {
    let start = request.first as usize * GROUP + request.offset as usize;
    let end = (start + len).min(outboard.len() as usize);
    if start >= end {
        return Vec::new();
    }
    let (first, last) = (start / GROUP, end.div_ceil(GROUP));
    let Ok(read) = store.groups(name, outboard, first..last) else { return Vec::new() };
    read.concat()[start - first * GROUP..end - first * GROUP].to_vec()
}

/// A relay's limits: more circuits than libp2p's defaults, and long enough and large enough
/// that a provider behind NAT can serve whole segments through them (libp2p's defaults, 2
/// minutes and 128 KiB, are meant for hole punching only).
fn relay_config() -> relay::Config {
    relay::Config {
        max_circuits: 256,
        max_circuits_per_peer: 16,
        max_circuit_duration: Duration::from_secs(3600),
        max_circuit_bytes: 1 << 30,
        ..relay::Config::default()
    }
}

/// A libp2p identity from 32 secret bytes (kept in a node's data directory).
pub fn keypair_from_seed(seed: [u8; 32]) -> Result<identity::Keypair, P2pError> {
    let mut seed = seed;
    identity::Keypair::ed25519_from_bytes(&mut seed).map_err(|e| P2pError::Build(e.to_string()))
}
