//! Native peers over libp2p: TCP with noise and yamux; identify and ping; gossipsub for what
//! every validator must hear (consensus messages, transactions) and a one-way request-response
//! protocol for what goes to one peer (a block asked for, its answer).
//!
//! [`start`] runs the swarm on its own task and returns a [`P2p`] handle and a [`P2pLink`]:
//! the link is a chain [`Transport`], so a consensus engine runs over it unchanged. Every queue
//! between the two is bounded; what does not fit is dropped and counted (consensus re-sends
//! what matters), never buffered without end. Peers given at start are redialled while they
//! are unreachable.

use std::collections::HashMap;
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
    Multiaddr, PeerId, StreamProtocol, connection_limits, gossipsub, identify, identity, noise,
    ping, request_response, tcp, yamux,
};
use tokio::sync::{mpsc, watch};
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

/// The raw-bytes codec of the direct protocol: a request is a length-prefixed message, the
/// answer is empty (it only acknowledges).
#[derive(Debug, Clone, Default)]
struct Direct;

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

impl request_response::Codec for Direct {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = ();

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
        _: &mut T,
    ) -> impl Future<Output = io::Result<()>> + Send
    where
        T: futures::AsyncRead + Unpin + Send,
    {
        std::future::ready(Ok(()))
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        bytes: Vec<u8>,
    ) -> io::Result<()>
    where
        T: futures::AsyncWrite + Unpin + Send,
    {
        let len = u32::try_from(bytes.len())
            .ok()
            .filter(|l| *l as usize <= MAX_MESSAGE)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "message too large"))?;
        io.write_all(&len.to_be_bytes()).await?;
        io.write_all(&bytes).await?;
        io.close().await
    }

    fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        (): (),
    ) -> impl Future<Output = io::Result<()>> + Send
    where
        T: futures::AsyncWrite + Unpin + Send,
    {
        io.close()
    }
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    limits: connection_limits::Behaviour,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    gossipsub: gossipsub::Behaviour,
    direct: request_response::Behaviour<Direct>,
}

enum Command {
    Publish(Vec<u8>),
    Send(Peer, Vec<u8>),
}

/// A running node's handle: its identity, addresses and counters.
#[derive(Debug, Clone)]
pub struct P2p {
    peer_id: PeerId,
    listening: watch::Receiver<Vec<Multiaddr>>,
    connected: watch::Receiver<usize>,
    dropped: Arc<AtomicU64>,
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
            let direct = request_response::Behaviour::new(
                [(
                    StreamProtocol::new("/kinema/direct/1"),
                    request_response::ProtocolSupport::Full,
                )],
                request_response::Config::default().with_request_timeout(Duration::from_secs(30)),
            );
            Ok(Behaviour {
                limits: connection_limits::Behaviour::new(limits),
                identify: identify::Behaviour::new(identify::Config::new(
                    "/kinema/1.0.0".into(),
                    key.public(),
                )),
                ping: ping::Behaviour::default(),
                gossipsub,
                direct,
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
    let handle = P2p { peer_id, listening, connected, dropped: dropped.clone() };
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
}

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
                },
                _ = redial.tick() => self.redial(),
                event = self.swarm.select_next_some() => self.on_event(event),
            }
        }
    }

    fn on_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
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
                let _ = self.swarm.behaviour_mut().direct.send_response(channel, ());
            }
            SwarmEvent::Behaviour(BehaviourEvent::Direct(
                request_response::Event::OutboundFailure { peer, error, .. },
            )) => debug!(%peer, "direct message failed: {error}"),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => {
                // Learn where an inbound peer listens, so gossip can reach it after a restart.
                for address in info.listen_addrs {
                    self.swarm.add_peer_address(peer_id, address);
                }
            }
            SwarmEvent::NewListenAddr { address, .. } => {
                self.listening.send_modify(|a| a.push(address));
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
