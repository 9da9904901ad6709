//! Native peers over libp2p: TCP and websocket with noise and yamux, QUIC, and webrtc-direct
//! (what browsers dial without a certificate a CA signed: listened on, never dialled, its
//! handshakes bounded, see [`webrtc`]); identify and ping; circuit relay v2
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

mod behaviour;
mod fetch;
mod gossip;
mod serve;
pub mod webrtc;

use kinema_chain::Hash;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use libp2p::swarm::SwarmEvent;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::{Multiaddr, PeerId, gossipsub, identify, identity, kad, relay, request_response};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, warn};

use crate::addr::peer_of;
use crate::blobs::BlobStore;
pub use crate::fetch::FetchError;
use crate::gossip::{Check, Registry};
use behaviour::{Behaviour, BehaviourEvent};
pub use fetch::{MAX_FETCHES, MAX_WAITERS};

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
    /// webrtc-direct handshakes admitted, refused ([`webrtc::Guard`]'s bounds) and failed.
    pub webrtc_admitted: AtomicU64,
    /// See `webrtc_admitted`.
    pub webrtc_refused: AtomicU64,
    /// See `webrtc_admitted`.
    pub webrtc_failed: AtomicU64,
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

enum Command {
    Publish(gossipsub::TopicHash, Vec<u8>),
    Send(PeerId, Vec<u8>),
    Provide(Hash),
    Fetch(Hash, Option<PeerId>, oneshot::Sender<Result<Vec<u8>, FetchError>>),
    Ban(PeerId),
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
    banned: Arc<std::sync::Mutex<Banned>>,
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
    pub async fn provide(&self, name: Hash) -> Result<(), FetchError> {
        self.commands.send(Command::Provide(name)).await.map_err(|_| FetchError::Stopped)
    }

    /// Finds the providers of blob `name` and fetches it, checking every 16 KiB group against
    /// the name as it arrives; a provider that sends a bad one is banned and the next provider
    /// goes on from that group. The blob is kept in the node's store and provided.
    pub async fn fetch(&self, name: Hash) -> Result<Vec<u8>, FetchError> {
        self.fetch_via(name, None).await
    }

    /// Fetches blob `name` from `peer` alone (a relay, which fetches what it lacks from the
    /// providers), checking every group as [`P2p::fetch`] does.
    pub async fn fetch_from(&self, peer: PeerId, name: Hash) -> Result<Vec<u8>, FetchError> {
        self.fetch_via(name, Some(peer)).await
    }

    async fn fetch_via(&self, name: Hash, from: Option<PeerId>) -> Result<Vec<u8>, FetchError> {
        let (reply, answer) = oneshot::channel();
        let command = Command::Fetch(name, from, reply);
        self.commands.send(command).await.map_err(|_| FetchError::Stopped)?;
        answer.await.map_err(|_| FetchError::Stopped)?
    }

    /// The peers banned for sending bad data.
    pub fn banned(&self) -> Vec<PeerId> {
        self.banned.lock().map(|b| b.order.iter().copied().collect()).unwrap_or_default()
    }

    /// Whether it holds a connection to `peer` now.
    pub fn is_connected(&self, peer: &PeerId) -> bool {
        self.peers.lock().is_ok_and(|p| p.contains_key(peer))
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
            Command::Ban(peer) => write!(f, "Ban({peer})"),
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

    /// Bans `peer`, which sent what only a liar sends: it is disconnected, and again whenever
    /// it connects.
    pub fn ban(&self, peer: PeerId) {
        self.queue(Command::Ban(peer));
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
    let stats = Arc::new(Stats::default());
    let mut swarm = behaviour::build(&config, stats.clone())?;
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
    let banned = Arc::new(std::sync::Mutex::new(Banned::default()));
    let known = Arc::new(std::sync::Mutex::new(HashMap::new()));
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
        rejected: HashMap::new(),
        unanswered: HashMap::new(),
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
    banned: Arc<std::sync::Mutex<Banned>>,
    /// Gossip refused since the last [`FORGIVE`], by the peer it came from.
    rejected: HashMap<PeerId, u32>,
    /// Pings unanswered in a row, by connection (open connections only).
    unanswered: HashMap<libp2p::swarm::ConnectionId, u32>,
    /// Fetches under way, by blob.
    fetches: HashMap<Hash, fetch::Pending>,
    /// Work done off the swarm's task (blob reads and writes), coming back.
    done: mpsc::Sender<Done>,
    done_rx: mpsc::Receiver<Done>,
    /// Blob reads under way at most.
    readers: Arc<tokio::sync::Semaphore>,
    /// Provider queries, and segment requests in flight, by the blob they fetch.
    queries: HashMap<kad::QueryId, Hash>,
    requests: HashMap<request_response::OutboundRequestId, (Hash, u32)>,
}

/// What a blocking task hands back to the swarm's task.
enum Done {
    /// The answer to a segment request.
    Answer(request_response::ResponseChannel<Vec<u8>>, Vec<u8>),
    /// A fetched blob is in the store: provide it.
    Kept(Hash),
}

/// Blob reads a node runs at once; more requests wait their turn.
const READERS: usize = 16;
/// Pings in a row a connection may leave unanswered before it is closed (libp2p's ping closes
/// nothing itself). A webrtc-direct connection whose browser vanished (a killed tab, a lost
/// network) is never closed by libp2p-webrtc 0.10.0-alpha, which does not watch the peer
/// connection's state: without this it stayed open for good, holding one of the node's
/// [`MAX_CONNECTIONS`] and its peer connection's memory and socket. Pings go every 5 s and
/// wait 10 s.
const MAX_UNANSWERED: u32 = 3;
/// Gossip messages a peer may have refused before it is banned, and how often the count
/// starts again: an honest peer forwards only what it checked itself, so it is refused only
/// around a height or epoch change.
const MAX_REFUSED: u32 = 32;
const FORGIVE: Duration = Duration::from_secs(60);
/// Peers whose refused messages are counted at most.
const REFUSED_PEERS: usize = 1024;

/// Peers banned at most: a peer can make new identities without end, so the oldest ban is
/// forgotten first (a forgotten peer that misbehaves again is banned again).
pub const MAX_BANNED: usize = 4096;

/// The banned peers, oldest first, at most [`MAX_BANNED`].
#[derive(Debug, Default)]
struct Banned {
    peers: HashSet<PeerId>,
    order: std::collections::VecDeque<PeerId>,
}

impl Banned {
    fn insert(&mut self, peer: PeerId) {
        if !self.peers.insert(peer) {
            return;
        }
        self.order.push_back(peer);
        while self.order.len() > MAX_BANNED
            && let Some(oldest) = self.order.pop_front()
        {
            self.peers.remove(&oldest);
        }
    }
}

/// How often fetches waiting to search again are looked at.
const REQUERY_TICK: Duration = Duration::from_millis(250);

impl SwarmTask {
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
        // A peer given at several addresses is dialled once, at all of them (the swarm tries
        // them side by side): dialled one address at a time, the first dial in flight would
        // keep the others from ever being tried.
        let mut named: Vec<(PeerId, Vec<Multiaddr>)> = Vec::new();
        for address in &self.peers {
            match peer_of(address).or_else(|| self.answered.get(address).copied()) {
                Some(id) if self.swarm.is_connected(&id) => {}
                Some(id) => match named.iter_mut().find(|(known, _)| *known == id) {
                    Some((_, addresses)) => addresses.push(address.clone()),
                    None => named.push((id, vec![address.clone()])),
                },
                None => {
                    let dial = DialOpts::unknown_peer_id().address(address.clone()).build();
                    if let Err(e) = self.swarm.dial(dial) {
                        debug!(%address, "dial: {e}");
                    }
                }
            }
        }
        for (id, addresses) in named {
            // A peer being dialled already is not dialled again (one connection is enough).
            let dial = DialOpts::peer_id(id)
                .addresses(addresses)
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .build();
            if let Err(e) = self.swarm.dial(dial) {
                debug!(peer = %id, "dial: {e}");
            }
        }
    }

    async fn run(mut self) {
        self.redial();
        let mut redial = tokio::time::interval(REDIAL);
        let mut requery = tokio::time::interval(REQUERY_TICK);
        let mut forgive = tokio::time::interval(FORGIVE);
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
                    Some(Command::Ban(peer)) => self.ban(peer, "its messages were refused"),
                    Some(Command::Fetch(name, from, reply)) => self.start_fetch(name, from, reply),
                },
                Some(done) = self.done_rx.recv() => self.on_done(done),
                _ = redial.tick() => self.redial(),
                _ = requery.tick() => self.requery_due(),
                _ = forgive.tick() => self.rejected.clear(),
                event = self.swarm.select_next_some() => self.on_event(event),
            }
        }
    }

    fn is_banned(&self, peer: &PeerId) -> bool {
        self.banned.lock().is_ok_and(|b| b.peers.contains(peer))
    }

    /// Bans `peer`: disconnected now and whenever it connects again.
    fn ban(&mut self, peer: PeerId, why: &str) {
        warn!(%peer, "banned: {why}");
        if let Ok(mut banned) = self.banned.lock() {
            banned.insert(peer);
        }
        let _ = self.swarm.disconnect_peer_id(peer);
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
                    self.on_segment_failure(name, peer);
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
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(event)) => self.on_gossip(event),
            SwarmEvent::Behaviour(BehaviourEvent::Direct(event)) => self.on_direct(event),
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
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                endpoint,
                num_established,
                ..
            } => {
                self.unanswered.remove(&connection_id);
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
            SwarmEvent::Behaviour(BehaviourEvent::Ping(libp2p::ping::Event {
                peer,
                connection,
                result,
            })) => match result {
                Ok(_) => {
                    self.unanswered.remove(&connection);
                }
                // (A failure told after its connection closed is not counted: nothing would
                // take it out again.)
                Err(_) if !self.swarm.is_connected(&peer) => {}
                Err(e) => {
                    let unanswered = self.unanswered.entry(connection).or_default();
                    *unanswered += 1;
                    if *unanswered >= MAX_UNANSWERED {
                        debug!(%peer, "{MAX_UNANSWERED} pings unanswered ({e}): closing");
                        self.unanswered.remove(&connection);
                        self.swarm.close_connection(connection);
                    }
                }
            },
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

/// A libp2p identity from 32 secret bytes (kept in a node's data directory).
pub fn keypair_from_seed(seed: [u8; 32]) -> Result<identity::Keypair, P2pError> {
    let mut seed = seed;
    identity::Keypair::ed25519_from_bytes(&mut seed).map_err(|e| P2pError::Build(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ban_list_of_a_peer_that_makes_new_identities_stays_bounded() {
        let mut banned = Banned::default();
        let first = PeerId::random();
        banned.insert(first);
        for _ in 0..MAX_BANNED + 100 {
            banned.insert(PeerId::random());
        }
        assert_eq!((banned.peers.len(), banned.order.len()), (MAX_BANNED, MAX_BANNED));
        // The oldest went first; the newest are still banned.
        assert!(!banned.peers.contains(&first));
        let last = *banned.order.back().unwrap_or(&first);
        assert!(banned.peers.contains(&last));
        banned.insert(last);
        assert_eq!(banned.order.len(), MAX_BANNED);
    }
}
