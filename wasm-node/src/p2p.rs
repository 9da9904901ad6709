//! Native peers over libp2p: TCP with noise and yamux; identify and ping; gossipsub for what
//! every validator must hear (consensus messages, transactions) and a one-way request-response
//! protocol for what goes to one peer (a block asked for, its answer); kademlia provider
//! records for blobs, and a segment protocol that fetches a blob from its providers in batches
//! of 16 KiB groups, each checked against the blob's name as it arrives ([`crate::verified`]):
//! a provider that sends a bad group is disconnected and banned, and the fetch goes on from
//! that group with the next provider.
//!
//! [`start`] runs the swarm on its own task and returns a [`P2p`] handle and a [`P2pLink`]:
//! the link is a chain [`Transport`], so a consensus engine runs over it unchanged. Every queue
//! between the two is bounded; what does not fit is dropped and counted (consensus re-sends
//! what matters), never buffered without end. Peers given at start are redialled while they
//! are unreachable.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use kinema_chain::consensus::Peer;
use kinema_chain::consensus::node::{INBOX, Transport};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{
    Multiaddr, PeerId, StreamProtocol, connection_limits, gossipsub, identify, identity, kad,
    noise, ping, request_response, tcp, yamux,
};
use tokio::sync::{mpsc, oneshot, watch};

use crate::blobs::BlobStore;
use crate::verified::{GROUP, Outboard, groups};
use tracing::{debug, warn};

/// The largest message either protocol carries: a block of 10,000 transactions is ~2 MB.
pub const MAX_MESSAGE: usize = 16 << 20;
/// Connections a node keeps at most, and per peer.
const MAX_CONNECTIONS: u32 = 256;
const MAX_PER_PEER: u32 = 2;
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
    /// The chain: its id names the gossip topic.
    pub chain_id: String,
    /// The blobs it serves (and keeps what it fetches in).
    pub blobs: Option<Arc<BlobStore>>,
}

/// Groups a segment request asks for at most (1 MiB).
const BATCH: u32 = 64;

/// A segment request: which blob, from which group, how many, and whether to send the outboard.
#[derive(Debug, Clone, borsh::BorshSerialize, borsh::BorshDeserialize)]
struct SegmentRequest {
    name: [u8; 32],
    first: u32,
    count: u32,
    outboard: bool,
}

/// Its answer.
#[derive(Debug, Clone, borsh::BorshSerialize, borsh::BorshDeserialize)]
enum SegmentResponse {
    NotFound,
    Found { outboard: Option<Vec<u8>>, groups: Vec<Vec<u8>> },
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

async fn read_message<T: futures::AsyncRead + Unpin + Send>(io: &mut T) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_MESSAGE {
        let why = format!("a message of {len} bytes is over the {MAX_MESSAGE}-byte limit");
        return Err(io::Error::new(io::ErrorKind::InvalidData, why));
    }
    let mut bytes = vec![0; len];
    io.read_exact(&mut bytes).await?;
    Ok(bytes)
}

async fn write_message<T: futures::AsyncWrite + Unpin + Send>(
    io: &mut T,
    bytes: Vec<u8>,
) -> io::Result<()> {
    let len = u32::try_from(bytes.len())
        .ok()
        .filter(|l| *l as usize <= MAX_MESSAGE)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "message too large"))?;
    io.write_all(&len.to_be_bytes()).await?;
    io.write_all(&bytes).await?;
    io.close().await
}

/// The codec of both request-response protocols: length-prefixed bytes both ways (the direct
/// protocol answers with nothing, an acknowledgement).
#[derive(Debug, Clone, Default)]
struct Bytes;

impl request_response::Codec for Bytes {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    fn read_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> impl Future<Output = io::Result<Vec<u8>>> + Send
    where
        T: futures::AsyncRead + Unpin + Send,
    {
        read_message(io)
    }

    fn read_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> impl Future<Output = io::Result<Vec<u8>>> + Send
    where
        T: futures::AsyncRead + Unpin + Send,
    {
        read_message(io)
    }

    fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        bytes: Vec<u8>,
    ) -> impl Future<Output = io::Result<()>> + Send
    where
        T: futures::AsyncWrite + Unpin + Send,
    {
        write_message(io, bytes)
    }

    fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        bytes: Vec<u8>,
    ) -> impl Future<Output = io::Result<()>> + Send
    where
        T: futures::AsyncWrite + Unpin + Send,
    {
        write_message(io, bytes)
    }
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    limits: connection_limits::Behaviour,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    gossipsub: gossipsub::Behaviour,
    direct: request_response::Behaviour<Bytes>,
    kad: kad::Behaviour<kad::store::MemoryStore>,
    segments: request_response::Behaviour<Bytes>,
}

enum Command {
    Publish(Vec<u8>),
    Send(Peer, Vec<u8>),
    Provide(blake3::Hash),
    Fetch(blake3::Hash, oneshot::Sender<Result<Vec<u8>, FetchError>>),
}

/// A running node's handle: its identity, addresses and counters.
#[derive(Debug, Clone)]
pub struct P2p {
    peer_id: PeerId,
    listening: watch::Receiver<Vec<Multiaddr>>,
    connected: watch::Receiver<usize>,
    dropped: Arc<AtomicU64>,
    commands: mpsc::Sender<Command>,
    banned: Arc<std::sync::Mutex<HashSet<PeerId>>>,
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
        let (reply, answer) = oneshot::channel();
        self.commands.send(Command::Fetch(name, reply)).await.map_err(|_| FetchError::Stopped)?;
        answer.await.map_err(|_| FetchError::Stopped)?
    }

    /// The peers banned for sending bad data.
    pub fn banned(&self) -> Vec<PeerId> {
        self.banned.lock().map(|b| b.iter().copied().collect()).unwrap_or_default()
    }
}

/// The consensus engine's end: a [`Transport`] over the swarm.
#[derive(Debug)]
pub struct P2pLink {
    commands: mpsc::Sender<Command>,
    inbox: mpsc::Receiver<(Peer, Arc<[u8]>)>,
    dropped: Arc<AtomicU64>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Publish(b) => write!(f, "Publish({} bytes)", b.len()),
            Command::Send(p, b) => write!(f, "Send({p:?}, {} bytes)", b.len()),
            Command::Provide(name) => write!(f, "Provide({name})"),
            Command::Fetch(name, _) => write!(f, "Fetch({name})"),
        }
    }
}

impl P2pLink {
    fn queue(&self, command: Command) {
        if self.commands.try_send(command).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Transport for P2pLink {
    fn broadcast(&mut self, bytes: Vec<u8>) {
        self.queue(Command::Publish(bytes));
    }

    fn send(&mut self, to: Peer, bytes: Vec<u8>) {
        self.queue(Command::Send(to, bytes));
    }

    fn recv(&mut self) -> impl Future<Output = Option<(Peer, Arc<[u8]>)>> + Send {
        self.inbox.recv()
    }
}

/// Starts a node on the current tokio runtime: listens, dials its peers, joins the chain's
/// gossip topic.
pub fn start(config: P2pConfig) -> Result<(P2p, P2pLink), P2pError> {
    let build = |e: &dyn std::fmt::Display| P2pError::Build(e.to_string());
    let topic = gossipsub::IdentTopic::new(format!("/kinema/{}/consensus/1", config.chain_id));
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(config.keypair.clone())
        .with_tokio()
        .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)
        .map_err(|e| build(&e))?
        .with_behaviour(|key| {
            let gossip_config = gossipsub::ConfigBuilder::default()
                .max_transmit_size(MAX_MESSAGE)
                .heartbeat_interval(Duration::from_millis(500))
                .validation_mode(gossipsub::ValidationMode::Strict)
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
            Ok(Behaviour {
                limits: connection_limits::Behaviour::new(limits),
                identify: identify::Behaviour::new(identify::Config::new(
                    "/kinema/1.0.0".into(),
                    key.public(),
                )),
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
    swarm.behaviour_mut().gossipsub.subscribe(&topic).map_err(|e| build(&e))?;
    for address in &config.listen {
        swarm
            .listen_on(address.clone())
            .map_err(|e| P2pError::Listen { address: address.clone(), why: e.to_string() })?;
    }
    let peer_id = *swarm.local_peer_id();
    let (commands_tx, commands) = mpsc::channel(INBOX);
    let (inbox_tx, inbox) = mpsc::channel(INBOX);
    let (listening_tx, listening) = watch::channel(Vec::new());
    let (connected_tx, connected) = watch::channel(0);
    let dropped = Arc::new(AtomicU64::new(0));
    let banned = Arc::new(std::sync::Mutex::new(HashSet::new()));
    let handle = P2p {
        peer_id,
        listening,
        connected,
        dropped: dropped.clone(),
        commands: commands_tx.clone(),
        banned: banned.clone(),
    };
    let link = P2pLink { commands: commands_tx, inbox, dropped: dropped.clone() };
    let task = SwarmTask {
        swarm,
        topic,
        peers: config.peers,
        commands,
        inbox: inbox_tx,
        listening: listening_tx,
        connected: connected_tx,
        dropped,
        names: HashMap::new(),
        ids: Vec::new(),
        answered: HashMap::new(),
        blobs: config.blobs,
        announced: false,
        banned,
        fetches: HashMap::new(),
        queries: HashMap::new(),
        requests: HashMap::new(),
    };
    tokio::spawn(task.run());
    Ok((handle, link))
}

struct SwarmTask {
    swarm: libp2p::Swarm<Behaviour>,
    topic: gossipsub::IdentTopic,
    peers: Vec<Multiaddr>,
    commands: mpsc::Receiver<Command>,
    inbox: mpsc::Sender<(Peer, Arc<[u8]>)>,
    listening: watch::Sender<Vec<Multiaddr>>,
    connected: watch::Sender<usize>,
    dropped: Arc<AtomicU64>,
    /// The engine's names for libp2p peers, and back.
    names: HashMap<PeerId, Peer>,
    ids: Vec<PeerId>,
    /// Who answered at a configured address that names no peer.
    answered: HashMap<Multiaddr, PeerId>,
    blobs: Option<Arc<BlobStore>>,
    /// Whether the store's blobs were announced since start.
    announced: bool,
    banned: Arc<std::sync::Mutex<HashSet<PeerId>>>,
    /// Fetches under way, by blob.
    fetches: HashMap<blake3::Hash, Fetch>,
    /// Provider queries, and segment requests in flight, by the blob they fetch.
    queries: HashMap<kad::QueryId, blake3::Hash>,
    requests: HashMap<request_response::OutboundRequestId, blake3::Hash>,
}

/// One blob being fetched.
#[derive(Default)]
struct Fetch {
    replies: Vec<oneshot::Sender<Result<Vec<u8>, FetchError>>>,
    providers: VecDeque<PeerId>,
    tried: HashSet<PeerId>,
    outboard: Option<Outboard>,
    data: Vec<u8>,
    /// The provider asked now.
    asking: Option<PeerId>,
    /// Whether the provider query has ended.
    searched: bool,
    /// Provider queries made; one that finds no one is repeated a few times (a node that just
    /// joined may not know the network yet).
    queries: u32,
    /// When to ask again.
    retry_at: Option<tokio::time::Instant>,
}

/// Provider queries a fetch makes before it gives up.
const QUERIES: u32 = 4;
/// The wait before asking again.
const REQUERY: Duration = Duration::from_millis(500);

impl SwarmTask {
    fn name(&mut self, peer: PeerId) -> Peer {
        if let Some(name) = self.names.get(&peer) {
            return *name;
        }
        let name = Peer(self.ids.len() as u64);
        self.ids.push(peer);
        self.names.insert(peer, name);
        name
    }

    fn deliver(&mut self, from: PeerId, bytes: Vec<u8>) {
        let from = self.name(from);
        if self.inbox.try_send((from, bytes.into())).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn redial(&mut self) {
        for address in self.peers.clone() {
            let named = address.iter().find_map(|p| match p {
                libp2p::multiaddr::Protocol::P2p(id) => Some(id),
                _ => None,
            });
            let known = named.or_else(|| self.answered.get(&address).copied());
            if known.is_some_and(|id| self.swarm.is_connected(&id)) {
                continue;
            }
            if let Err(e) = self.swarm.dial(address.clone()) {
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
                    Some(Command::Publish(bytes)) => {
                        let topic = self.topic.clone();
                        if let Err(e) = self.swarm.behaviour_mut().gossipsub.publish(topic, bytes) {
                            // No peer yet (or a duplicate): consensus re-sends what matters.
                            debug!("gossip: {e}");
                        }
                    }
                    Some(Command::Send(to, bytes)) => {
                        if let Some(peer) = self.ids.get(to.0 as usize).copied() {
                            self.swarm.behaviour_mut().direct.send_request(&peer, bytes);
                        }
                    }
                    Some(Command::Provide(name)) => self.provide(name),
                    Some(Command::Fetch(name, reply)) => self.start_fetch(name, reply),
                },
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
        reply: oneshot::Sender<Result<Vec<u8>, FetchError>>,
    ) {
        if let Some(store) = &self.blobs
            && store.has(&name)
            && let Ok(bytes) = store.get(&name)
        {
            let _ = reply.send(Ok(bytes));
            return;
        }
        let fetch = self.fetches.entry(name).or_default();
        fetch.replies.push(reply);
        if fetch.replies.len() == 1 {
            self.query(name);
        }
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

    /// Asks the current provider for the next batch, or ends the fetch.
    fn advance(&mut self, name: blake3::Hash) {
        let Some(fetch) = self.fetches.get_mut(&name) else { return };
        if fetch.asking.is_some() {
            return;
        }
        if let Some(outboard) = &fetch.outboard
            && fetch.data.len() as u64 == outboard.len()
        {
            let data = std::mem::take(&mut fetch.data);
            self.finish(name, Ok(data));
            return;
        }
        match fetch.providers.front().copied() {
            Some(peer) => {
                let request = SegmentRequest {
                    name: *name.as_bytes(),
                    first: (fetch.data.len() / GROUP) as u32,
                    count: BATCH,
                    outboard: fetch.outboard.is_none(),
                };
                fetch.asking = Some(peer);
                let bytes = borsh::to_vec(&request).unwrap_or_default();
                let id = self.swarm.behaviour_mut().segments.send_request(&peer, bytes);
                self.requests.insert(id, name);
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
        if let (Ok(bytes), Some(store)) = (&result, &self.blobs) {
            match store.put(bytes) {
                Ok(_) => self.provide(name),
                Err(e) => warn!(%name, "keeping a fetched blob: {e}"),
            }
        }
        for reply in fetch.replies {
            let _ = reply.send(result.clone());
        }
    }

    /// Drops `peer` from a fetch: it answered without the blob, or failed.
    fn skip(&mut self, name: blake3::Hash, peer: PeerId) {
        if let Some(fetch) = self.fetches.get_mut(&name) {
            fetch.providers.retain(|p| *p != peer);
            fetch.tried.insert(peer);
            fetch.asking = None;
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

    fn on_segment(&mut self, name: blake3::Hash, peer: PeerId, bytes: &[u8]) {
        let Some(fetch) = self.fetches.get_mut(&name) else { return };
        fetch.asking = None;
        let (outboard, groups_sent) = match borsh::from_slice::<SegmentResponse>(bytes) {
            Ok(SegmentResponse::Found { outboard, groups }) => (outboard, groups),
            Ok(SegmentResponse::NotFound) => {
                self.skip(name, peer);
                return self.advance(name);
            }
            Err(e) => return self.penalize(name, peer, &format!("undecodable answer: {e}")),
        };
        if fetch.outboard.is_none() {
            match outboard.map(|b| Outboard::from_bytes(name, &b)) {
                Some(Ok(outboard)) => fetch.outboard = Some(outboard),
                Some(Err(e)) => return self.penalize(name, peer, &e.to_string()),
                None => return self.penalize(name, peer, "no outboard"),
            }
        }
        let Some(outboard) = fetch.outboard.clone() else { return };
        let before = fetch.data.len();
        for group in groups_sent {
            let index = fetch.data.len() / GROUP;
            if let Err(e) = outboard.check(name, index, &group) {
                return self.penalize(name, peer, &e.to_string());
            }
            fetch.data.extend_from_slice(&group);
            if fetch.data.len() as u64 == outboard.len() {
                break;
            }
        }
        let complete = fetch.data.len() as u64 == outboard.len();
        if fetch.data.len() == before && !complete {
            // Nothing new: this provider does not have it after all.
            self.skip(name, peer);
        }
        self.advance(name);
    }

    /// What this node answers to a segment request.
    fn serve(&self, request: &[u8]) -> Vec<u8> {
        let answer = match (borsh::from_slice::<SegmentRequest>(request), &self.blobs) {
            (Ok(request), Some(store)) => {
                let name = blake3::Hash::from_bytes(request.name);
                match store.outboard(&name) {
                    Ok(outboard) => {
                        let first = request.first as usize;
                        let end =
                            (first + request.count.min(BATCH) as usize).min(groups(outboard.len()));
                        // Past the end, or unreadable: nothing more to send.
                        let groups = store.groups(&name, &outboard, first..end).unwrap_or_default();
                        let outboard = request.outboard.then(|| outboard.to_bytes());
                        SegmentResponse::Found { outboard, groups }
                    }
                    Err(_) => SegmentResponse::NotFound,
                }
            }
            _ => SegmentResponse::NotFound,
        };
        borsh::to_vec(&answer).unwrap_or_default()
    }

    fn on_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Segments(request_response::Event::Message {
                peer,
                message,
                ..
            })) => match message {
                request_response::Message::Request { request, channel, .. } => {
                    let answer = self.serve(&request);
                    let _ = self.swarm.behaviour_mut().segments.send_response(channel, answer);
                }
                request_response::Message::Response { request_id, response } => {
                    if let Some(name) = self.requests.remove(&request_id) {
                        self.on_segment(name, peer, &response);
                    }
                }
            },
            SwarmEvent::Behaviour(BehaviourEvent::Segments(
                request_response::Event::OutboundFailure { peer, request_id, error, .. },
            )) => {
                debug!(%peer, "segment request failed: {error}");
                if let Some(name) = self.requests.remove(&request_id) {
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
                message,
                ..
            })) => {
                let from = message.source.unwrap_or(propagation_source);
                self.deliver(from, message.data);
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
                // Learn where an inbound peer listens, so gossip can reach it after a restart
                // and kademlia can route to it.
                for address in info.listen_addrs {
                    self.swarm.behaviour_mut().kad.add_address(&peer_id, address.clone());
                    self.swarm.add_peer_address(peer_id, address);
                }
            }
            SwarmEvent::NewListenAddr { address, .. } => {
                self.listening.send_modify(|a| a.push(address));
            }
            SwarmEvent::ConnectionEstablished { peer_id, .. } if self.is_banned(&peer_id) => {
                let _ = self.swarm.disconnect_peer_id(peer_id);
            }
            SwarmEvent::ConnectionEstablished { peer_id, endpoint, .. } => {
                if let libp2p::core::ConnectedPoint::Dialer { address, .. } = endpoint
                    && self.peers.contains(&address)
                {
                    self.answered.insert(address, peer_id);
                }
                let n = self.swarm.connected_peers().count();
                self.connected.send_replace(n);
            }
            SwarmEvent::ConnectionClosed { .. } => {
                let n = self.swarm.connected_peers().count();
                self.connected.send_replace(n);
            }
            SwarmEvent::ListenerError { error, .. } => warn!("listener: {error}"),
            _ => {}
        }
    }
}

/// A libp2p identity from 32 secret bytes (kept in a node's data directory).
pub fn keypair_from_seed(seed: [u8; 32]) -> Result<identity::Keypair, P2pError> {
    let mut seed = seed;
    identity::Keypair::ed25519_from_bytes(&mut seed).map_err(|e| P2pError::Build(e.to_string()))
}
