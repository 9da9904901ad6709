//! Kinema's browser light node (wasm32, wasm-bindgen): a libp2p node in the page that reaches the
//! network through a relay over websocket, and the chain's light client.
//!
//! JavaScript API (see `www/index.html`):
//!
//! ```js
//! import init, { LightNode, LightClient } from "./kinema_wasm_node.js";
//! await init();
//! const node = await LightNode.connect("/ip4/127.0.0.1/tcp/26901/ws/p2p/12D3Koo...", "kinema-devnet");
//! const bytes = await node.fetchSegment("<64 hex digits>"); // Uint8Array, every group checked
//! const client = new LightClient(await (await fetch(rpc + "/api/v1/blocks/0")).text(),
//!     await (await fetch(rpc + "/api/v1/validator-sets/0")).text(), genesisHash);
//! const header = JSON.parse(client.verifyBlock(await (await fetch(rpc + "/api/v1/blocks/7")).text()));
//! const heard = JSON.parse(client.verifyHeader(await node.nextHeader())); // over gossip
//! const address = await node.listen(); // "<relay>/p2p-circuit/webrtc/p2p/<this tab>"
//! const ms = await other.ping(address); // another tab: direct WebRTC, signalled through the relay
//! ```
//!
//! A segment is fetched from the relay (which fetches it from its providers when it does not
//! hold it) in batches of 16 KiB groups, each checked against the segment's blake3 name as it
//! arrives (`Download`): a relay that sends one bad byte is caught at that group and
//! disconnected. Given the chain's id, the node joins the chain's gossip topic of finalized
//! headers through the relay: validators publish each block's header and certificate as they
//! commit it, and `LightNode::next_header` hands them to the page. Blocks and headers are
//! trusted only with a certificate of more than 2/3 of the power of the validator set the
//! client follows, epoch by epoch, from the genesis set.

// The light node is the browser's; natively this crate is empty (the workspace builds it for
// the host too, so `cargo test --workspace` needs no target filter).
#![cfg(target_arch = "wasm32")]

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::time::Duration;

use futures::channel::{mpsc, oneshot};
use futures::{FutureExt, SinkExt, StreamExt};
use kinema_chain::Hash;
use kinema_chain::gossip::{Finalized, Topic};
use kinema_chain::light;
use kinema_chain::rpc::{BlockReply, ValidatorSetReply};
use kinema_net::addr::peer_of;
use libp2p::core::muxing::StreamMuxerBox;
use libp2p::core::upgrade::Version;
use libp2p::core::{Multiaddr, Transport as _};
use libp2p::multiaddr::Protocol;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{
    PeerId, StreamProtocol, gossipsub, identify, noise, ping, relay, request_response,
    webrtc_websys, websocket_websys, yamux,
};
use wasm_bindgen::prelude::*;

use kinema_net::wire::{Answer, Bytes, Download, SEGMENT_PROTOCOL};

mod webrtc;

#[derive(NetworkBehaviour)]
struct LightBehaviour {
    relay_client: relay::client::Behaviour,
    /// The signaling streams of `/webrtc` (opened and answered by `webrtc::Transport`).
    streams: libp2p_stream::Behaviour,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    segments: request_response::Behaviour<Bytes>,
    gossipsub: gossipsub::Behaviour,
}

/// Finalized headers heard and not yet taken, and the pages waiting for one.
#[derive(Default)]
struct Headers {
    heard: VecDeque<String>,
    waiting: VecDeque<oneshot::Sender<String>>,
}

impl Headers {
    fn hear(&mut self, json: String) {
        while let Some(waiter) = self.waiting.pop_front() {
            if !waiter.is_canceled() {
                let _ = waiter.send(json);
                return;
            }
        }
        if self.heard.len() == HEARD {
            self.heard.pop_front();
        }
        self.heard.push_back(json);
    }
}

/// Finalized headers kept for the page at most; the oldest go first.
const HEARD: usize = 64;

type Reply = oneshot::Sender<Result<Vec<u8>, String>>;

/// What the page asks of the swarm's task.
enum Command {
    /// A segment, every group checked.
    Fetch(Hash, Reply),
    /// A reservation at the relay: the node's address through it.
    Listen(oneshot::Sender<Result<String, String>>),
    /// A ping to another peer, dialled at an address (through a relay, or `/webrtc` after a
    /// relayed connection carried the signaling): its round trip.
    Ping(Multiaddr, PeerId, oneshot::Sender<Result<Duration, String>>),
}

/// A ping waiting for its answer.
struct Pinging {
    peer: PeerId,
    /// For a `/webrtc` address: the address, dialled once the relayed connection is up, and
    /// then the direct connection, the one whose ping answers.
    direct: Option<(Multiaddr, Option<libp2p::swarm::ConnectionId>)>,
    reply: oneshot::Sender<Result<Duration, String>>,
}

/// Pings waiting for an answer at most (others are refused).
const PINGS: usize = 16;

/// A light node connected to a relay.
#[wasm_bindgen]
pub struct LightNode {
    peer_id: PeerId,
    relay: PeerId,
    /// Answers of at most this many bytes (webrtc), or whole groups (0).
    max_bytes: u32,
    commands: mpsc::Sender<Command>,
    /// Whether it follows a chain's headers.
    follows_chain: bool,
    headers: Rc<RefCell<Headers>>,
}

/// Fetches queued for the swarm at most.
const FETCHES: usize = 64;
/// The largest answer asked for over webrtc: with its framing, under one 16 KiB frame.
const WEBRTC_PIECE: u32 = 15 * 1024;

/// An error with each of its causes, `: `-separated.
fn causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(cause) = next {
        text.push_str(&format!(": {cause}"));
        next = cause.source();
    }
    text
}

fn js(why: impl std::fmt::Display) -> JsError {
    JsError::new(&why.to_string())
}

#[wasm_bindgen]
impl LightNode {
    /// Connects to the relay at `address`, a websocket or webrtc-direct multiaddr naming the
    /// relay's peer id (`/ip4/.../tcp/.../ws/p2p/<id>`,
    /// `/ip4/.../udp/.../webrtc-direct/certhash/.../p2p/<id>`, as the relay's `/api/v1/status`
    /// lists them). With `chain` (a chain id, as the relay's status names it), it follows that
    /// chain's finalized headers over gossip.
    pub async fn connect(address: String, chain: Option<String>) -> Result<LightNode, JsError> {
        let address: Multiaddr =
            address.parse().map_err(|e| js(format!("relay address {address:?}: {e}")))?;
        let Some(relay) = peer_of(&address) else {
            return Err(js(format!("relay address {address} names no peer (/p2p/<id>)")));
        };
        let keypair = libp2p::identity::Keypair::generate_ed25519();
        let noise = noise::Config::new(&keypair).map_err(js)?;
        let gossip_config = gossipsub::ConfigBuilder::default()
            .validation_mode(gossipsub::ValidationMode::Strict)
            .build()
            .map_err(js)?;
        let gossipsub = gossipsub::Behaviour::new(
            gossipsub::MessageAuthenticity::Signed(keypair.clone()),
            gossip_config,
        )
        .map_err(js)?;
        let webrtc = webrtc_websys::Transport::new(webrtc_websys::Config::new(&keypair));
        let streams = libp2p_stream::Behaviour::new();
        let browsers = webrtc::Transport::new(streams.new_control());
        // `/webrtc` first: the relay client's transport would take a `/p2p-circuit/webrtc`
        // address for a relayed one of its own.
        let (relayed, relay_client) = relay::client::new(keypair.public().to_peer_id());
        let relay_noise = noise::Config::new(&keypair).map_err(js)?;
        let mut swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
            .with_wasm_bindgen()
            .with_other_transport(|_| {
                browsers
                    .map(|(peer, connection), _| (peer, StreamMuxerBox::new(connection)))
                    .or_transport(
                        relayed
                            .upgrade(Version::V1Lazy)
                            .authenticate(relay_noise)
                            .multiplex(yamux::Config::default())
                            .map(|(peer, connection), _| (peer, StreamMuxerBox::new(connection))),
                    )
                    .map(|either, _| either.into_inner())
                    .or_transport(
                        websocket_websys::Transport::default()
                            .upgrade(Version::V1Lazy)
                            .authenticate(noise)
                            .multiplex(yamux::Config::default())
                            .map(|(peer, connection), _| (peer, StreamMuxerBox::new(connection))),
                    )
                    .map(|either, _| either.into_inner())
                    .or_transport(
                        webrtc.map(|(peer, connection), _| (peer, StreamMuxerBox::new(connection))),
                    )
                    .map(|either, _| either.into_inner())
                    .boxed()
            })
            .map_err(js)?
            .with_behaviour(|key| LightBehaviour {
                relay_client,
                streams,
                identify: identify::Behaviour::new(
                    identify::Config::new("/kinema/1.0.0".into(), key.public()).with_agent_version(
                        concat!("kinema-light/", env!("CARGO_PKG_VERSION")).into(),
                    ),
                ),
                ping: ping::Behaviour::default(),
                segments: request_response::Behaviour::new(
                    [(
                        StreamProtocol::new(SEGMENT_PROTOCOL),
                        request_response::ProtocolSupport::Outbound,
                    )],
                    request_response::Config::default()
                        .with_request_timeout(Duration::from_secs(60)),
                ),
                gossipsub,
            })
            .map_err(js)?
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(3600)))
            .build();
        let peer_id = *swarm.local_peer_id();
        if let Some(chain) = &chain {
            let topic = gossipsub::IdentTopic::new(Topic::Headers.name(chain));
            swarm.behaviour_mut().gossipsub.subscribe(&topic).map_err(js)?;
        }
        swarm.dial(address.clone()).map_err(|e| js(format!("dialling {address}: {e}")))?;
        loop {
            match swarm.select_next_some().await {
                SwarmEvent::ConnectionEstablished { peer_id, .. } if peer_id == relay => break,
                SwarmEvent::OutgoingConnectionError { error, .. } => {
                    return Err(js(format!("connecting to the relay {address}: {error}")));
                }
                _ => {}
            }
        }
        let (commands, requests) = mpsc::channel(FETCHES);
        // libp2p's webrtc streams in the browser take one 16 KiB frame of unread data at most.
        let webrtc = address.iter().any(|p| p.tag() == "webrtc-direct");
        let max_bytes = if webrtc { WEBRTC_PIECE } else { 0 };
        let headers = Rc::new(RefCell::new(Headers::default()));
        let relay_address = address;
        let task = run(swarm, requests, relay, relay_address.clone(), max_bytes, headers.clone());
        wasm_bindgen_futures::spawn_local(task);
        let follows_chain = chain.is_some();
        Ok(LightNode { peer_id, relay, max_bytes, commands, follows_chain, headers })
    }

    /// The next finalized header heard over gossip (the oldest of up to 64 not taken yet), as
    /// JSON `{header, certificate}` for [`LightClient::verify_header`]; waits for one. Not
    /// checked: whoever publishes on the topic can send anything that decodes.
    #[wasm_bindgen(js_name = nextHeader)]
    pub async fn next_header(&self) -> Result<String, JsError> {
        if !self.follows_chain {
            return Err(js("the node follows no chain: connect with the chain's id"));
        }
        let waiting = {
            let mut headers = self.headers.borrow_mut();
            if let Some(json) = headers.heard.pop_front() {
                return Ok(json);
            }
            let (tx, rx) = oneshot::channel();
            headers.waiting.push_back(tx);
            rx
        };
        waiting.await.map_err(|_| js("the light node has stopped"))
    }

    /// Makes the node reachable from other browsers: a circuit relay v2 reservation at its
    /// relay, and `/webrtc` listening there; resolves to the address other nodes dial it at,
    /// `<relay address>/p2p-circuit/webrtc/p2p/<this peer>`.
    pub async fn listen(&self) -> Result<String, JsError> {
        let (reply, answer) = oneshot::channel();
        let mut commands = self.commands.clone();
        commands
            .send(Command::Listen(reply))
            .await
            .map_err(|_| js("the light node has stopped"))?;
        answer.await.map_err(|_| js("the light node has stopped"))?.map_err(js)
    }

    /// Connects to the node at `address` (one another node's [`LightNode::listen`] gave: for a
    /// `/webrtc` address, a relayed connection that carries the signaling, then the direct
    /// one) and pings it (over the direct connection); resolves to the round trip in
    /// milliseconds.
    pub async fn ping(&self, address: String) -> Result<f64, JsError> {
        let address: Multiaddr =
            address.parse().map_err(|e| js(format!("address {address:?}: {e}")))?;
        let Some(peer) = peer_of(&address) else {
            return Err(js(format!("address {address} names no peer (/p2p/<id>)")));
        };
        let (reply, answer) = oneshot::channel();
        let mut commands = self.commands.clone();
        let command = Command::Ping(address, peer, reply);
        commands.send(command).await.map_err(|_| js("the light node has stopped"))?;
        let rtt = answer.await.map_err(|_| js("the light node has stopped"))?.map_err(js)?;
        Ok(rtt.as_secs_f64() * 1000.0)
    }

    /// This node's peer id.
    #[wasm_bindgen(js_name = peerId)]
    pub fn peer_id(&self) -> String {
        self.peer_id.to_string()
    }

    /// The most bytes one answer carries: 15 KiB pieces over webrtc-direct, 0 (whole 1 MiB
    /// batches of groups) over websocket.
    #[wasm_bindgen(js_name = answerLimit)]
    pub fn answer_limit(&self) -> u32 {
        self.max_bytes
    }

    /// The relay's peer id.
    #[wasm_bindgen(js_name = relayPeerId)]
    pub fn relay_peer_id(&self) -> String {
        self.relay.to_string()
    }

    /// Fetches the segment named `hash` (64 hex digits) through the relay; resolves to its
    /// bytes (a `Uint8Array`), every 16 KiB group checked against the name, or rejects saying
    /// why (not found, or bad data: the relay is then disconnected).
    #[wasm_bindgen(js_name = fetchSegment)]
    pub fn fetch_segment(&self, hash: String) -> js_sys::Promise {
        let mut commands = self.commands.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let name: Hash = hash.trim().parse().map_err(|e| js(format!("segment name: {e}")))?;
            let (reply, answer) = oneshot::channel();
            let command = Command::Fetch(name, reply);
            commands.send(command).await.map_err(|_| js("the light node has stopped"))?;
            let bytes = answer.await.map_err(|_| js("the light node has stopped"))?.map_err(js)?;
            Ok(js_sys::Uint8Array::from(bytes.as_slice()).into())
        })
    }
}

/// Drives the swarm: sends each download's requests to the relay and checks the answers; holds
/// a reservation at the relay when asked, and pings peers through it.
async fn run(
    mut swarm: libp2p::Swarm<LightBehaviour>,
    mut requests: mpsc::Receiver<Command>,
    relay: PeerId,
    relay_address: Multiaddr,
    max_bytes: u32,
    headers: Rc<RefCell<Headers>>,
) {
    let mut downloads: HashMap<request_response::OutboundRequestId, (Download, Reply)> =
        HashMap::new();
    let mut listening: Vec<oneshot::Sender<Result<String, String>>> = Vec::new();
    let mut reachable: Option<String> = None;
    // Whether `/webrtc` listening was asked for (after the first reservation).
    let mut signaling = false;
    let mut pings: Vec<Pinging> = Vec::new();
    loop {
        futures::select! {
            request = requests.next() => match request {
                None => return,
                Some(Command::Fetch(name, reply)) => {
                    let download = Download::in_pieces(name, max_bytes);
                    let segments = &mut swarm.behaviour_mut().segments;
                    let id = segments.send_request(&relay, download.request());
                    downloads.insert(id, (download, reply));
                }
                Some(Command::Listen(reply)) => {
                    if let Some(address) = &reachable {
                        let _ = reply.send(Ok(address.clone()));
                    } else if listening.len() >= PINGS {
                        let _ = reply.send(Err("too many wait to listen already".into()));
                    } else {
                        if listening.is_empty() {
                            let circuit = relay_address.clone().with(Protocol::P2pCircuit);
                            if let Err(e) = swarm.listen_on(circuit.clone()) {
                                let _ = reply.send(Err(format!("listening on {circuit}: {e}")));
                                continue;
                            }
                        }
                        listening.push(reply);
                    }
                }
                Some(Command::Ping(address, peer, reply)) => {
                    // A `/webrtc` address is dialled once the relayed connection is up.
                    let (first, direct) = match webrtc::relayed_part(&address) {
                        Some((relayed, _)) => (relayed, Some((address.clone(), None))),
                        None => (address.clone(), None),
                    };
                    if pings.len() >= PINGS {
                        let _ = reply.send(Err(format!("{PINGS} pings wait already")));
                    } else if let Err(e) = swarm.dial(first.clone()) {
                        let _ = reply.send(Err(format!("dialling {first}: {e}")));
                    } else {
                        pings.push(Pinging { peer, direct, reply });
                    }
                }
            },
            event = swarm.select_next_some().fuse() => match event {
                SwarmEvent::Behaviour(LightBehaviourEvent::Segments(
                    request_response::Event::Message {
                        message: request_response::Message::Response { request_id, response },
                        ..
                    },
                )) => {
                    let Some((mut download, reply)) = downloads.remove(&request_id) else {
                        continue;
                    };
                    let name = download.name();
                    match download.accept(&response) {
                        Answer::Complete => {
                            let _ = reply.send(Ok(download.into_bytes()));
                        }
                        Answer::Added(0) => {
                            let why = format!("the relay stopped sending segment {name}");
                            let _ = reply.send(Err(why));
                        }
                        Answer::Added(_) => {
                            let segments = &mut swarm.behaviour_mut().segments;
                            let id = segments.send_request(&relay, download.request());
                            downloads.insert(id, (download, reply));
                        }
                        Answer::NotFound => {
                            let why = format!("no peer the relay reaches holds segment {name}");
                            let _ = reply.send(Err(why));
                        }
                        Answer::Bad(why) => {
                            let _ = swarm.disconnect_peer_id(relay);
                            let why = format!(
                                "the relay sent bad data for segment {name} ({why}); disconnected"
                            );
                            let _ = reply.send(Err(why));
                        }
                    }
                }
                SwarmEvent::Behaviour(LightBehaviourEvent::Gossipsub(
                    gossipsub::Event::Message { message, .. },
                )) => {
                    if let Some(finalized) = Finalized::from_gossip(&message.data)
                        && let Ok(json) = serde_json::to_string(&finalized)
                    {
                        headers.borrow_mut().hear(json);
                    }
                }
                SwarmEvent::NewListenAddr { address, .. }
                    if address.iter().any(|p| p == Protocol::P2pCircuit) =>
                {
                    if !address.iter().any(|p| p == Protocol::WebRTC) {
                        // Reserved at the relay (one address per way to reach it): now other
                        // browsers may signal through it, once.
                        if !signaling {
                            signaling = true;
                            let webrtc = relay_address
                                .clone()
                                .with(Protocol::P2pCircuit)
                                .with(Protocol::WebRTC);
                            if let Err(e) = swarm.listen_on(webrtc.clone()) {
                                for waiter in listening.drain(..) {
                                    let _ = waiter.send(Err(format!("listening on {webrtc}: {e}")));
                                }
                            }
                        }
                        continue;
                    }
                    let me = *swarm.local_peer_id();
                    let address = address.with_p2p(me).unwrap_or_else(|a| a).to_string();
                    for waiter in listening.drain(..) {
                        let _ = waiter.send(Ok(address.clone()));
                    }
                    reachable = Some(address);
                }
                SwarmEvent::ConnectionEstablished { peer_id, connection_id, endpoint, .. } => {
                    let webrtc = endpoint.get_remote_address().iter().any(|p| p == Protocol::WebRTC);
                    let mut failed = Vec::new();
                    for (i, waiting) in pings.iter_mut().enumerate() {
                        if waiting.peer != peer_id {
                            continue;
                        }
                        let Some((address, connection)) = &mut waiting.direct else { continue };
                        if webrtc {
                            connection.get_or_insert(connection_id);
                        } else if connection.is_none()
                            && let Err(e) = swarm.dial(address.clone())
                        {
                            failed.push((i, format!("dialling {address}: {e}")));
                        }
                    }
                    for (i, why) in failed.into_iter().rev() {
                        let _ = pings.remove(i).reply.send(Err(why));
                    }
                }
                SwarmEvent::ListenerClosed { reason: Err(error), addresses, .. } => {
                    reachable = None;
                    let why = causes(&error);
                    for waiter in listening.drain(..) {
                        let at = addresses.iter().map(|a| a.to_string()).collect::<Vec<_>>();
                        let _ = waiter.send(Err(format!("listening at {at:?}: {why}")));
                    }
                }
                SwarmEvent::Behaviour(LightBehaviourEvent::Ping(ping::Event {
                    peer, connection, result,
                })) => {
                    let result = result.map_err(|e| e.to_string());
                    let answered = |w: &mut Pinging| {
                        w.peer == peer
                            && w.direct.as_ref().is_none_or(|(_, c)| *c == Some(connection))
                    };
                    for waiting in pings.extract_if(.., answered) {
                        let _ = waiting.reply.send(result.clone());
                    }
                }
                SwarmEvent::OutgoingConnectionError { peer_id: Some(peer), error, .. } => {
                    for waiting in pings.extract_if(.., |w| w.peer == peer) {
                        let _ = waiting.reply.send(Err(format!("connecting to {peer}: {error}")));
                    }
                }
                SwarmEvent::Behaviour(LightBehaviourEvent::Segments(
                    request_response::Event::OutboundFailure { request_id, error, .. },
                )) => {
                    if let Some((download, reply)) = downloads.remove(&request_id) {
                        let why = format!("fetching segment {}: {error}", download.name());
                        let _ = reply.send(Err(why));
                    }
                }
                _ => {}
            },
        }
    }
}

/// The blake3 of `bytes`, 64 lowercase hex digits: what names a segment and a manifest, so the
/// player can check what it got from anywhere but the light node.
#[wasm_bindgen(js_name = blake3Hex)]
pub fn blake3_hex(bytes: &[u8]) -> String {
    kinema_chain::Hash::digest(bytes).to_string()
}

/// The chain's light client ([`kinema_chain::light::LightClient`]) for JavaScript: the
/// validator set of one epoch, trusted, and the check of blocks against it.
#[wasm_bindgen]
pub struct LightClient(light::LightClient);

fn parse<T: serde::de::DeserializeOwned>(json: &str, what: &str) -> Result<T, JsError> {
    serde_json::from_str(json).map_err(|e| js(format!("{what}: {e}")))
}

fn verified(v: &light::Verified) -> Result<String, JsError> {
    serde_json::to_string(v).map_err(js)
}

#[wasm_bindgen]
impl LightClient {
    /// Trusts the chain whose genesis block hashes to `genesis` (64 hex digits, from the app
    /// or the link the user opened, never from the network): `genesis_block` is the chain RPC's
    /// answer for `blocks/0` and `genesis_set` for `validator-sets/0`; both must match it.
    #[wasm_bindgen(constructor)]
    pub fn new(
        genesis_block: &str,
        genesis_set: &str,
        genesis: &str,
    ) -> Result<LightClient, JsError> {
        let trusted: Hash = genesis.trim().parse().map_err(|e| js(format!("the genesis: {e}")))?;
        let block: BlockReply = parse(genesis_block, "the genesis block")?;
        let set: ValidatorSetReply = parse(genesis_set, "the genesis validator set")?;
        light::LightClient::new(&block, set, trusted).map(LightClient).map_err(js)
    }

    /// The chain it follows.
    #[wasm_bindgen(js_name = chainId)]
    pub fn chain_id(&self) -> String {
        self.0.chain_id().to_owned()
    }

    /// The genesis block it trusts (64 hex digits).
    pub fn genesis(&self) -> String {
        self.0.genesis().to_string()
    }

    /// The epoch whose validator set it trusts.
    pub fn epoch(&self) -> f64 {
        self.0.epoch() as f64
    }

    /// Blocks per epoch.
    #[wasm_bindgen(js_name = epochLength)]
    pub fn epoch_length(&self) -> f64 {
        self.0.epoch_length() as f64
    }

    /// Checks a `blocks/{height}` answer of the trusted epoch: its certificate under the trusted
    /// set. Returns JSON `{height, hash, state_root, time_ms, signed_power, total_power}`.
    #[wasm_bindgen(js_name = verifyBlock)]
    pub fn verify_block(&self, block: &str) -> Result<String, JsError> {
        let reply: BlockReply = parse(block, "the block")?;
        verified(&self.0.verify_block(&reply).map_err(js)?)
    }

    /// Checks a finalized header heard over gossip ([`LightNode::next_header`]'s JSON) of the
    /// trusted epoch: its certificate under the trusted set. Returns what
    /// [`LightClient::verify_block`] returns.
    #[wasm_bindgen(js_name = verifyHeader)]
    pub fn verify_header(&self, finalized: &str) -> Result<String, JsError> {
        let heard: Finalized = parse(finalized, "the finalized header")?;
        verified(&self.0.verify(&heard.header, &heard.certificate).map_err(js)?)
    }

    /// Moves to the next epoch: `last_block` is the trusted epoch's last block (a `blocks/{h}`
    /// answer), `next_set` the next epoch's `validator-sets/{e}` answer with its state proof.
    #[wasm_bindgen(js_name = followEpoch)]
    pub fn follow_epoch(&mut self, last_block: &str, next_set: &str) -> Result<(), JsError> {
        let block: BlockReply = parse(last_block, "the epoch's last block")?;
        let next: ValidatorSetReply = parse(next_set, "the next validator set")?;
        self.0.follow_epoch(&block, next).map_err(js)
    }
}
