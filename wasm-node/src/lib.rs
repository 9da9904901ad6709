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

mod bandwidth;
mod peers;
mod webrtc;

use bandwidth::{News, TabLedger};
use kinema_chain::tickets::protocol::{MAX_TICKET_MESSAGE, Step, TICKETS_PROTOCOL, TicketReply};
use peers::{Browsers, Kept};

#[derive(NetworkBehaviour)]
struct LightBehaviour {
    relay_client: relay::client::Behaviour,
    /// The signaling streams of `/webrtc` (opened and answered by `webrtc::Transport`).
    streams: libp2p_stream::Behaviour,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    segments: request_response::Behaviour<Bytes>,
    /// Bandwidth tickets, paid to the browsers that deliver and taken for what is served.
    tickets: request_response::Behaviour<Bytes>,
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
    /// A direct connection to another browser at its `/webrtc` address.
    Connect(Multiaddr, PeerId, oneshot::Sender<Result<(), String>>),
    /// A segment from the browsers this one reaches directly, every group checked.
    FetchDirect(Hash, Reply),
    /// Tickets are on: the funds of senders are read through this.
    Bandwidth(mpsc::Sender<kinema_chain::Address>),
    /// What the chain reader heard.
    Chain(News),
}

/// What waits on a dial.
enum Waiter {
    Ping(oneshot::Sender<Result<Duration, String>>),
    Connect(oneshot::Sender<Result<(), String>>),
}

impl Waiter {
    fn fail(self, why: String) {
        match self {
            Waiter::Ping(reply) => drop(reply.send(Err(why))),
            Waiter::Connect(reply) => drop(reply.send(Err(why))),
        }
    }
}

/// A segment being fetched: from whom now, and whom to ask next if that one cannot give it.
struct Fetching {
    download: Download,
    reply: Reply,
    from: PeerId,
    next: Vec<PeerId>,
}

/// A dial waiting for its connection (and, for a ping, its answer).
struct Dialing {
    peer: PeerId,
    /// For a `/webrtc` address: the address, dialled once the relayed connection is up, and
    /// then the direct connection, the one whose ping answers.
    direct: Option<(Multiaddr, Option<libp2p::swarm::ConnectionId>)>,
    reply: Waiter,
}

/// Pings waiting for an answer at most (others are refused).
const PINGS: usize = 16;

/// A light node connected to a relay.
#[wasm_bindgen]
pub struct LightNode {
    peer_id: PeerId,
    /// Its identity, which signs what it tells the relay of itself.
    keypair: libp2p::identity::Keypair,
    relay: PeerId,
    /// Answers of at most this many bytes (webrtc), or whole groups (0).
    max_bytes: u32,
    commands: mpsc::Sender<Command>,
    /// Whether it follows a chain's headers.
    follows_chain: bool,
    headers: Rc<RefCell<Headers>>,
    kept: Rc<RefCell<Kept>>,
    browsers: Rc<RefCell<Browsers>>,
    ledger: Rc<RefCell<Option<TabLedger>>>,
    store: Rc<RefCell<Option<js_sys::Function>>>,
}

/// A segment request waiting on the page's store: its bytes, and where it is answered.
type Waiting = (Vec<u8>, request_response::ResponseChannel<Vec<u8>>);

/// Reads from the page's store under way.
type Loads = futures::stream::FuturesUnordered<
    futures::future::LocalBoxFuture<'static, (Hash, Option<Vec<u8>>)>,
>;

/// Segments asked of the page's store at once, at most (other misses are answered not found).
const LOADING: usize = 8;
/// Requests waiting on one segment from the page's store, at most.
const WAITING_PER_LOAD: usize = 16;

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

/// Sends the swarm's task the command `make` builds around a reply channel, and waits for the
/// task's answer.
async fn ask<T>(
    mut commands: mpsc::Sender<Command>,
    make: impl FnOnce(oneshot::Sender<Result<T, String>>) -> Command,
) -> Result<T, JsError> {
    let (reply, answer) = oneshot::channel();
    commands.send(make(reply)).await.map_err(|_| js("the light node has stopped"))?;
    answer.await.map_err(|_| js("the light node has stopped"))?.map_err(js)
}

/// A promise of segment `hash` (64 hex digits) as the command `make` fetches it: a
/// `Uint8Array`, every group checked.
fn fetch(
    commands: mpsc::Sender<Command>,
    hash: String,
    make: fn(Hash, Reply) -> Command,
) -> js_sys::Promise {
    wasm_bindgen_futures::future_to_promise(async move {
        let name: Hash = hash.trim().parse().map_err(|e| js(format!("segment name: {e}")))?;
        let bytes = ask(commands, |reply| make(name, reply)).await?;
        Ok(js_sys::Uint8Array::from(bytes.as_slice()).into())
    })
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
        let identity = keypair.clone();
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
                        request_response::ProtocolSupport::Full,
                    )],
                    request_response::Config::default()
                        .with_request_timeout(Duration::from_secs(60)),
                ),
                tickets: request_response::Behaviour::with_codec(
                    Bytes::limited(MAX_TICKET_MESSAGE),
                    [(
                        StreamProtocol::new(TICKETS_PROTOCOL),
                        request_response::ProtocolSupport::Full,
                    )],
                    request_response::Config::default()
                        .with_request_timeout(Duration::from_secs(30)),
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
        let kept = Rc::new(RefCell::new(Kept::default()));
        let browsers = Rc::new(RefCell::new(Browsers::default()));
        let ledger = Rc::new(RefCell::new(None));
        let store = Rc::new(RefCell::new(None));
        let task = Task {
            swarm,
            relay,
            relay_address,
            max_bytes,
            headers: headers.clone(),
            kept: kept.clone(),
            browsers: browsers.clone(),
            ledger: ledger.clone(),
            store: store.clone(),
            loading: HashMap::new(),
            asks: None,
            ticket_asks: HashMap::new(),
        };
        wasm_bindgen_futures::spawn_local(task.run(requests));
        let follows_chain = chain.is_some();
        Ok(LightNode {
            peer_id,
            keypair: identity,
            relay,
            max_bytes,
            commands,
            follows_chain,
            headers,
            kept,
            browsers,
            ledger,
            store,
        })
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
        ask(self.commands.clone(), Command::Listen).await
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
        let rtt = ask(self.commands.clone(), |reply| Command::Ping(address, peer, reply)).await?;
        Ok(rtt.as_secs_f64() * 1000.0)
    }

    /// Opens a direct connection to the browser at `address` (a `/webrtc` one, as another
    /// node's [`LightNode::listen`] gave), signalled through the relay; resolves once it is up.
    /// A browser caught sending bad data is refused.
    #[wasm_bindgen(js_name = connectBrowser)]
    pub async fn connect_browser(&self, address: String) -> Result<(), JsError> {
        let address: Multiaddr =
            address.parse().map_err(|e| js(format!("address {address:?}: {e}")))?;
        let Some((_, peer)) = webrtc::relayed_part(&address) else {
            return Err(js(format!("{address} is no <relay>/p2p-circuit/webrtc/p2p/<peer>")));
        };
        if self.browsers.borrow().is_banned(&peer) {
            return Err(js(format!("{peer} sent bad data before")));
        }
        if self.browsers.borrow().has(&peer) {
            return Ok(());
        }
        ask(self.commands.clone(), |reply| Command::Connect(address, peer, reply)).await
    }

    /// Fetches the segment named `hash` from the browsers this one holds direct connections
    /// to, one after another; every 16 KiB group is checked, and a browser that sends a bad
    /// one is disconnected and never asked again. Resolves to the bytes, or rejects when none
    /// of them has it.
    #[wasm_bindgen(js_name = fetchFromBrowsers)]
    pub fn fetch_from_browsers(&self, hash: String) -> js_sys::Promise {
        fetch(self.commands.clone(), hash, Command::FetchDirect)
    }

    /// Keeps `bytes` as segment `hash` to serve to other browsers (the last 64 MiB kept);
    /// refused unless they hash to it.
    pub fn keep(&self, hash: String, bytes: Vec<u8>) -> Result<(), JsError> {
        let name: Hash = hash.trim().parse().map_err(|e| js(format!("segment name: {e}")))?;
        self.kept.borrow_mut().keep(name, bytes).map_err(js)
    }

    /// Bytes of segments served to others so far.
    #[wasm_bindgen(js_name = servedBytes)]
    pub fn served_bytes(&self) -> f64 {
        self.kept.borrow().served as f64
    }

    /// Browsers this one holds a direct connection to now.
    #[wasm_bindgen(js_name = browserPeers)]
    pub fn browser_peers(&self) -> u32 {
        self.browsers.borrow().len() as u32
    }

    /// Turns bandwidth tickets on: from now on the node pays the browsers that deliver to it
    /// in tickets signed with `key` (a secret key's seed, 64 hex digits: one with ticket funds
    /// on chain, or a fresh one that only earns), one per 256 KiB that checked out, at
    /// `price_per_mib` (what the relay advertises); and it takes tickets from those it serves,
    /// each sender's funds read from the chain RPC at `chain_rpc` and checked against a state
    /// proof under a block verified from the genesis `genesis` (64 hex digits, trusted by the
    /// page). `seed` is 32 bytes from `crypto.getRandomValues` (the secret values winners are
    /// drawn with). Resolves to the address tickets pay.
    pub async fn bandwidth(
        &self,
        key: String,
        seed: Vec<u8>,
        price_per_mib: f64,
        chain_rpc: String,
        genesis: String,
    ) -> Result<String, JsError> {
        if self.ledger.borrow().is_some() {
            return Err(js("tickets are on already"));
        }
        let key = secret_key(&key)?;
        let seed: [u8; 32] =
            seed.try_into().map_err(|_| js("the seed: expected 32 random bytes"))?;
        if !(1.0..=1e18).contains(&price_per_mib) || price_per_mib.fract() != 0.0 {
            return Err(js(format!("the price {price_per_mib}: expected a whole number from 1")));
        }
        let genesis: Hash = genesis.trim().parse().map_err(|e| js(format!("the genesis: {e}")))?;
        let chain = kinema_relay::chain::ChainClient::new(&chain_rpc).map_err(js)?;
        let height = chain.status().await.map_err(js)?.height;
        let address = key.address().to_string();
        // Above every nonce this key signed in an earlier page (a thousand a millisecond).
        let nonce = (js_sys::Date::now() as u64).saturating_mul(1000);
        let ledger = kinema_chain::tickets::protocol::Ledger::new(
            key,
            seed,
            price_per_mib as u64,
            height,
            nonce,
        )
        .ok_or_else(|| js("a price that rounds to nothing a ticket"))?;
        if self.ledger.borrow().is_some() {
            return Err(js("tickets are on already"));
        }
        *self.ledger.borrow_mut() = Some(ledger);
        let (asks, asked) = mpsc::channel(kinema_chain::tickets::protocol::MAX_WAITING);
        let mut commands = self.commands.clone();
        commands
            .send(Command::Bandwidth(asks))
            .await
            .map_err(|_| js("the light node has stopped"))?;
        wasm_bindgen_futures::spawn_local(bandwidth::follow(chain, genesis, asked, commands));
        Ok(address)
    }

    /// What tickets did so far, as JSON: `{address, height, tickets_taken, credited, winners,
    /// winnings, tickets_paid, paid, resigned, refused_by}` (see `kinema_chain::tickets::protocol::Account`).
    pub fn account(&self) -> Result<String, JsError> {
        let mut ledger = self.ledger.borrow_mut();
        let ledger = ledger.as_mut().ok_or_else(|| js("tickets are off"))?;
        serde_json::to_string(&ledger.account()).map_err(js)
    }

    /// The winning tickets held, handed over to be redeemed: a JSON array of their redemption
    /// arguments (hex of borsh `RedeemArgs`), each with this node's claim for `claim_for` (an
    /// address) to redeem it and be paid, when given. The terms given so far are void from now
    /// on (payers sign again on the new ones).
    #[wasm_bindgen(js_name = takeWinners)]
    pub fn take_winners(&self, claim_for: Option<String>) -> Result<String, JsError> {
        let claim_for = claim_for
            .map(|a| a.trim().parse::<kinema_chain::Address>())
            .transpose()
            .map_err(|e| js(format!("the address to claim for: {e}")))?;
        let mut ledger = self.ledger.borrow_mut();
        let ledger = ledger.as_mut().ok_or_else(|| js("tickets are off"))?;
        let winners: Vec<String> = ledger
            .take_winners(claim_for)
            .iter()
            .map(|w| hex::encode(borsh::to_vec(w).unwrap_or_default()))
            .collect();
        serde_json::to_string(&winners).map_err(js)
    }

    /// Where segments not kept in memory are looked for when another browser asks for one:
    /// `load(hash)` (64 hex digits) resolves to the segment's bytes, or null (the player's
    /// IndexedDB store). What it gives is checked against the hash before it is served.
    #[wasm_bindgen(js_name = serveFrom)]
    pub fn serve_from(&self, load: js_sys::Function) {
        *self.store.borrow_mut() = Some(load);
    }

    /// The "mine bandwidth" switch: whether the node serves what it kept to other browsers,
    /// and the bytes it serves at most (0: no cap); it stops once the cap is reached.
    #[wasm_bindgen(js_name = setServing)]
    pub fn set_serving(&self, on: bool, cap_bytes: f64) {
        let mut kept = self.kept.borrow_mut();
        kept.paused = !on;
        kept.cap = (cap_bytes >= 1.0).then_some(cap_bytes as u64);
    }

    /// Signs, with this node's identity key, its statement that it joins (`leave` false) or
    /// leaves the swarm of `content` (64 hex digits) with `address` at `at_ms` (Unix time in
    /// ms): what the relay's `GET /api/v1/swarms/{content}?join=|leave=&at=&sig=` asks for.
    /// The signature, hex.
    #[wasm_bindgen(js_name = signSwarm)]
    pub fn sign_swarm(
        &self,
        content: &str,
        leave: bool,
        address: &str,
        at_ms: f64,
    ) -> Result<String, JsError> {
        let content: Hash = content.trim().parse().map_err(|e| js(format!("content id: {e}")))?;
        let statement = kinema_relay::api::swarm_statement(&content, leave, address, at_ms as u64);
        Ok(hex::encode(self.keypair.sign(&statement).map_err(js)?))
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
        fetch(self.commands.clone(), hash, Command::Fetch)
    }
}

/// The swarm's task and what it shares with the page.
struct Task {
    swarm: libp2p::Swarm<LightBehaviour>,
    relay: PeerId,
    relay_address: Multiaddr,
    /// Answers of at most this many bytes from the relay (webrtc-direct), or whole groups (0).
    max_bytes: u32,
    headers: Rc<RefCell<Headers>>,
    kept: Rc<RefCell<Kept>>,
    browsers: Rc<RefCell<Browsers>>,
    ledger: Rc<RefCell<Option<TabLedger>>>,
    /// The page's store, asked for segments not kept in memory.
    store: Rc<RefCell<Option<js_sys::Function>>>,
    /// Segments being read from the page's store, with the requests waiting for them.
    loading: HashMap<Hash, Vec<Waiting>>,
    /// Where the funds of senders are asked for, once tickets are on.
    asks: Option<mpsc::Sender<kinema_chain::Address>>,
    /// Ticket requests on their way: to whom, and how many tickets each carried.
    ticket_asks: HashMap<request_response::OutboundRequestId, (PeerId, usize)>,
}

impl Task {
    /// Answers a segment request from what is kept, or, when the page's store may hold it,
    /// once the store was asked.
    fn serve(
        &mut self,
        loads: &mut Loads,
        request: Vec<u8>,
        channel: request_response::ResponseChannel<Vec<u8>>,
    ) {
        let missing = self.kept.borrow().missing(&request);
        let load = self.store.borrow().clone();
        if let (Some(name), Some(load)) = (missing, load) {
            if let Some(waiting) = self.loading.get_mut(&name) {
                if waiting.len() < WAITING_PER_LOAD {
                    waiting.push((request, channel));
                    return;
                }
            } else if self.loading.len() < LOADING {
                self.loading.insert(name, vec![(request, channel)]);
                loads.push(Box::pin(async move {
                    let bytes = async {
                        let promise = load.call1(&JsValue::NULL, &name.to_string().into()).ok()?;
                        let value = wasm_bindgen_futures::JsFuture::from(js_sys::Promise::resolve(
                            &promise,
                        ))
                        .await
                        .ok()?;
                        value.dyn_into::<js_sys::Uint8Array>().ok().map(|a| a.to_vec())
                    }
                    .await;
                    (name, bytes)
                }));
                return;
            }
        }
        let answer = self.kept.borrow_mut().answer(&request);
        let _ = self.swarm.behaviour_mut().segments.send_response(channel, answer);
    }

    /// What the page's store gave for a segment asked of this node and not kept in memory:
    /// kept (when it is the segment) and served to the requests that waited.
    fn loaded(&mut self, name: Hash, bytes: Option<Vec<u8>>) {
        if let Some(bytes) = bytes {
            // Refused unless they are the segment: then it is not found.
            let _ = self.kept.borrow_mut().keep(name, bytes);
        }
        for (request, channel) in self.loading.remove(&name).unwrap_or_default() {
            let answer = self.kept.borrow_mut().answer(&request);
            let _ = self.swarm.behaviour_mut().segments.send_response(channel, answer);
        }
    }

    /// Carries out what the ledger asks for.
    fn steps(&mut self, steps: Vec<Step<PeerId, request_response::ResponseChannel<Vec<u8>>>>) {
        let mut steps = std::collections::VecDeque::from(steps);
        while let Some(step) = steps.pop_front() {
            match step {
                Step::Ask(peer, request) => {
                    let sent = match &request {
                        kinema_chain::tickets::protocol::TicketRequest::Pay(tickets) => {
                            tickets.len()
                        }
                        kinema_chain::tickets::protocol::TicketRequest::Terms => 0,
                    };
                    let tickets = &mut self.swarm.behaviour_mut().tickets;
                    let id = tickets.send_request(&peer, request.encode());
                    self.ticket_asks.insert(id, (peer, sent));
                }
                Step::Answer(channel, reply) => {
                    let tickets = &mut self.swarm.behaviour_mut().tickets;
                    let _ = tickets.send_response(channel, reply.encode());
                }
                Step::ReadFunds(sender) => {
                    let asked = self.asks.as_mut().map(|asks| asks.try_send(sender));
                    if !matches!(asked, Some(Ok(()))) {
                        let why = "the chain reader is busy or gone".to_owned();
                        if let Some(ledger) = self.ledger.borrow_mut().as_mut() {
                            steps.extend(ledger.funds(sender, Err(why)));
                        }
                    }
                }
            }
        }
    }

    /// Runs `f` on the ledger, if tickets are on, and carries out what it asks.
    fn with_ledger(
        &mut self,
        f: impl FnOnce(&mut TabLedger) -> Vec<Step<PeerId, request_response::ResponseChannel<Vec<u8>>>>,
    ) {
        let steps = self.ledger.borrow_mut().as_mut().map(f).unwrap_or_default();
        self.steps(steps);
    }

    /// Sends the next request of `fetching` to whom it asks, or to the next one when `ask_next`.
    fn ask(
        &mut self,
        downloads: &mut HashMap<request_response::OutboundRequestId, Fetching>,
        mut fetching: Fetching,
        ask_next: bool,
    ) {
        if ask_next {
            let Some(next) = fetching.next.pop() else {
                let why = format!("no browser peer holds segment {}", fetching.download.name());
                let _ = fetching.reply.send(Err(why));
                return;
            };
            fetching.from = next;
            fetching.download = Download::new(fetching.download.name());
        }
        let segments = &mut self.swarm.behaviour_mut().segments;
        let id = segments.send_request(&fetching.from, fetching.download.request());
        downloads.insert(id, fetching);
    }

    /// An answer from whom `fetching` asked.
    fn answered(
        &mut self,
        downloads: &mut HashMap<request_response::OutboundRequestId, Fetching>,
        mut fetching: Fetching,
        response: &[u8],
    ) {
        let name = fetching.download.name();
        let from_relay = fetching.from == self.relay;
        let before = fetching.download.received();
        let answer = fetching.download.accept(response);
        if !from_relay && !matches!(answer, Answer::Bad(_)) {
            // Paid for what checked out; a peer caught lying is paid nothing of its answer.
            let (peer, got) = (fetching.from, fetching.download.received() - before);
            self.with_ledger(|ledger| ledger.delivered(peer, got));
        }
        match answer {
            Answer::Complete => {
                let _ = fetching.reply.send(Ok(fetching.download.into_bytes()));
            }
            Answer::Added(0) if from_relay => {
                let _ =
                    fetching.reply.send(Err(format!("the relay stopped sending segment {name}")));
            }
            Answer::Added(0) => self.ask(downloads, fetching, true),
            Answer::Added(_) => self.ask(downloads, fetching, false),
            Answer::NotFound if from_relay => {
                let why = format!("no peer the relay reaches holds segment {name}");
                let _ = fetching.reply.send(Err(why));
            }
            Answer::NotFound => self.ask(downloads, fetching, true),
            Answer::Bad(why) if from_relay => {
                let _ = self.swarm.disconnect_peer_id(self.relay);
                let why =
                    format!("the relay sent bad data for segment {name} ({why}); disconnected");
                let _ = fetching.reply.send(Err(why));
            }
            Answer::Bad(_) => {
                // A browser that lies is dropped and never asked again; the next one goes on.
                self.browsers.borrow_mut().ban(fetching.from);
                let _ = self.swarm.disconnect_peer_id(fetching.from);
                self.ask(downloads, fetching, true);
            }
        }
    }

    /// Drives the swarm: segment fetches from the relay or from browsers (every group checked),
    /// segment requests answered from what the page kept, a reservation at the relay and
    /// `/webrtc` listening when asked, dials and pings.
    async fn run(mut self, mut requests: mpsc::Receiver<Command>) {
        let mut downloads: HashMap<request_response::OutboundRequestId, Fetching> = HashMap::new();
        let mut listening: Vec<oneshot::Sender<Result<String, String>>> = Vec::new();
        let mut reachable: Option<String> = None;
        // Whether `/webrtc` listening was asked for (after the first reservation).
        let mut signaling = false;
        let mut dialing: Vec<Dialing> = Vec::new();
        // Relayed connections to browsers, closed once a direct one is up.
        let mut relayed: HashMap<PeerId, Vec<libp2p::swarm::ConnectionId>> = HashMap::new();
        let mut loads = Loads::new();
        loop {
            futures::select! {
                (name, bytes) = loads.select_next_some() => self.loaded(name, bytes),
                request = requests.next() => match request {
                    None => return,
                    Some(Command::Fetch(name, reply)) => {
                        let download = Download::in_pieces(name, self.max_bytes);
                        let fetching = Fetching { download, reply, from: self.relay, next: Vec::new() };
                        self.ask(&mut downloads, fetching, false);
                    }
                    Some(Command::FetchDirect(name, reply)) => {
                        let mut next = self.browsers.borrow().to_ask();
                        let Some(from) = next.pop() else {
                            let _ = reply.send(Err(format!("no browser peer holds segment {name}")));
                            continue;
                        };
                        let fetching = Fetching { download: Download::new(name), reply, from, next };
                        self.ask(&mut downloads, fetching, false);
                    }
                    Some(Command::Bandwidth(asks)) => self.asks = Some(asks),
                    Some(Command::Chain(News::Height(height))) => {
                        if let Some(ledger) = self.ledger.borrow_mut().as_mut() {
                            ledger.height(height);
                        }
                    }
                    Some(Command::Chain(News::Funds(sender, read))) => {
                        self.with_ledger(|ledger| ledger.funds(sender, read));
                    }
                    Some(Command::Listen(reply)) => {
                        if let Some(address) = &reachable {
                            let _ = reply.send(Ok(address.clone()));
                        } else if listening.len() >= PINGS {
                            let _ = reply.send(Err("too many wait to listen already".into()));
                        } else {
                            if listening.is_empty() {
                                let circuit = self.relay_address.clone().with(Protocol::P2pCircuit);
                                if let Err(e) = self.swarm.listen_on(circuit.clone()) {
                                    let _ = reply.send(Err(format!("listening on {circuit}: {e}")));
                                    continue;
                                }
                            }
                            listening.push(reply);
                        }
                    }
                    Some(Command::Ping(address, peer, reply)) => {
                        self.dial(&mut dialing, address, peer, Waiter::Ping(reply));
                    }
                    Some(Command::Connect(address, peer, reply)) => {
                        if self.browsers.borrow().len() >= peers::MAX_BROWSERS {
                            let why = format!("{} browsers are connected already", peers::MAX_BROWSERS);
                            let _ = reply.send(Err(why));
                        } else {
                            self.dial(&mut dialing, address, peer, Waiter::Connect(reply));
                        }
                    }
                },
                event = self.swarm.select_next_some().fuse() => match event {
                    SwarmEvent::Behaviour(LightBehaviourEvent::Segments(
                        request_response::Event::Message {
                            message: request_response::Message::Response { request_id, response },
                            ..
                        },
                    )) => {
                        if let Some(fetching) = downloads.remove(&request_id) {
                            self.answered(&mut downloads, fetching, &response);
                        }
                    }
                    SwarmEvent::Behaviour(LightBehaviourEvent::Segments(
                        request_response::Event::Message {
                            message: request_response::Message::Request { request, channel, .. },
                            ..
                        },
                    )) => {
                        self.serve(&mut loads, request, channel);
                    }
                    SwarmEvent::Behaviour(LightBehaviourEvent::Tickets(
                        request_response::Event::Message {
                            message: request_response::Message::Request { request, channel, .. },
                            ..
                        },
                    )) => {
                        if self.ledger.borrow().is_none() {
                            let tickets = &mut self.swarm.behaviour_mut().tickets;
                            let _ = tickets.send_response(channel, TicketReply::Closed.encode());
                        } else {
                            self.with_ledger(|ledger| ledger.request(&request, channel));
                        }
                    }
                    SwarmEvent::Behaviour(LightBehaviourEvent::Tickets(
                        request_response::Event::Message {
                            message: request_response::Message::Response { request_id, response },
                            ..
                        },
                    )) => {
                        if let Some((peer, sent)) = self.ticket_asks.remove(&request_id) {
                            // A reply that does not decode is a peer that takes no tickets.
                            let reply = TicketReply::decode(&response).unwrap_or(TicketReply::Closed);
                            self.with_ledger(|ledger| ledger.replied(peer, sent, reply));
                        }
                    }
                    SwarmEvent::Behaviour(LightBehaviourEvent::Tickets(
                        request_response::Event::OutboundFailure { request_id, .. },
                    )) => {
                        if let Some((peer, _)) = self.ticket_asks.remove(&request_id) {
                            self.with_ledger(|ledger| {
                                ledger.forget(&peer);
                                Vec::new()
                            });
                        }
                    }
                    SwarmEvent::Behaviour(LightBehaviourEvent::Gossipsub(
                        gossipsub::Event::Message { message, .. },
                    )) => {
                        if let Some(finalized) = Finalized::from_gossip(&message.data)
                            && let Ok(json) = serde_json::to_string(&finalized)
                        {
                            self.headers.borrow_mut().hear(json);
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
                                let webrtc = self
                                    .relay_address
                                    .clone()
                                    .with(Protocol::P2pCircuit)
                                    .with(Protocol::WebRTC);
                                if let Err(e) = self.swarm.listen_on(webrtc.clone()) {
                                    for waiter in listening.drain(..) {
                                        let _ = waiter.send(Err(format!("listening on {webrtc}: {e}")));
                                    }
                                }
                            }
                            continue;
                        }
                        let me = *self.swarm.local_peer_id();
                        let address = address.with_p2p(me).unwrap_or_else(|a| a).to_string();
                        for waiter in listening.drain(..) {
                            let _ = waiter.send(Ok(address.clone()));
                        }
                        reachable = Some(address);
                    }
                    SwarmEvent::ConnectionEstablished { peer_id, connection_id, endpoint, .. } => {
                        let address = endpoint.get_remote_address();
                        let webrtc = address.iter().any(|p| p == Protocol::WebRTC);
                        let circuit = !webrtc && address.iter().any(|p| p == Protocol::P2pCircuit);
                        if webrtc {
                            if self.browsers.borrow().is_banned(&peer_id) {
                                let _ = self.swarm.close_connection(connection_id);
                                continue;
                            }
                            self.browsers.borrow_mut().connected(peer_id, connection_id);
                            // The relayed connection carried the signaling; closed now, so that
                            // no request goes through the relay (requests take any connection).
                            for relayed in relayed.remove(&peer_id).unwrap_or_default() {
                                let _ = self.swarm.close_connection(relayed);
                            }
                        } else if circuit {
                            if self.browsers.borrow().has(&peer_id) {
                                let _ = self.swarm.close_connection(connection_id);
                            } else {
                                relayed.entry(peer_id).or_default().push(connection_id);
                            }
                        }
                        self.established(&mut dialing, peer_id, connection_id, webrtc);
                    }
                    SwarmEvent::ConnectionClosed { peer_id, connection_id, num_established, .. } => {
                        self.browsers.borrow_mut().closed(&peer_id, connection_id);
                        if num_established == 0 {
                            self.with_ledger(|ledger| {
                                ledger.forget(&peer_id);
                                Vec::new()
                            });
                        }
                        if let Some(ids) = relayed.get_mut(&peer_id) {
                            ids.retain(|id| *id != connection_id);
                            if ids.is_empty() {
                                relayed.remove(&peer_id);
                            }
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
                        let answered = |w: &mut Dialing| {
                            matches!(w.reply, Waiter::Ping(_))
                                && w.peer == peer
                                && w.direct.as_ref().is_none_or(|(_, c)| *c == Some(connection))
                        };
                        for waiting in dialing.extract_if(.., answered) {
                            if let Waiter::Ping(reply) = waiting.reply {
                                let _ = reply.send(result.clone());
                            }
                        }
                    }
                    SwarmEvent::OutgoingConnectionError { peer_id: Some(peer), error, .. } => {
                        for waiting in dialing.extract_if(.., |w| w.peer == peer) {
                            waiting.reply.fail(format!("connecting to {peer}: {error}"));
                        }
                    }
                    SwarmEvent::Behaviour(LightBehaviourEvent::Segments(
                        request_response::Event::OutboundFailure { request_id, error, .. },
                    )) => {
                        if let Some(fetching) = downloads.remove(&request_id) {
                            if fetching.from == self.relay {
                                let why =
                                    format!("fetching segment {}: {error}", fetching.download.name());
                                let _ = fetching.reply.send(Err(why));
                            } else {
                                self.ask(&mut downloads, fetching, true);
                            }
                        }
                    }
                    _ => {}
                },
            }
        }
    }

    /// Dials `address` for `reply` (a `/webrtc` one once the relayed connection is up).
    fn dial(
        &mut self,
        dialing: &mut Vec<Dialing>,
        address: Multiaddr,
        peer: PeerId,
        reply: Waiter,
    ) {
        let (first, direct) = match webrtc::relayed_part(&address) {
            Some((relayed, _)) => (relayed, Some((address.clone(), None))),
            None => (address.clone(), None),
        };
        if dialing.len() >= PINGS {
            reply.fail(format!("{PINGS} dials wait already"));
        } else if let Err(e) = self.swarm.dial(first.clone()) {
            reply.fail(format!("dialling {first}: {e}"));
        } else {
            dialing.push(Dialing { peer, direct, reply });
        }
    }

    /// A connection to `peer` is up: a relayed one is followed by the `/webrtc` dial, a direct
    /// one answers who waited to connect.
    fn established(
        &mut self,
        dialing: &mut Vec<Dialing>,
        peer: PeerId,
        connection: libp2p::swarm::ConnectionId,
        webrtc: bool,
    ) {
        let mut done = Vec::new();
        for (i, waiting) in dialing.iter_mut().enumerate() {
            if waiting.peer != peer {
                continue;
            }
            let Some((address, direct)) = &mut waiting.direct else { continue };
            if webrtc {
                direct.get_or_insert(connection);
                if matches!(waiting.reply, Waiter::Connect(_)) {
                    done.push((i, None));
                }
            } else if direct.is_none()
                && let Err(e) = self.swarm.dial(address.clone())
            {
                done.push((i, Some(format!("dialling {address}: {e}"))));
            }
        }
        for (i, failed) in done.into_iter().rev() {
            match (dialing.remove(i).reply, failed) {
                (reply, Some(why)) => reply.fail(why),
                (Waiter::Connect(reply), None) => drop(reply.send(Ok(()))),
                (Waiter::Ping(_), None) => {}
            }
        }
    }
}

/// A secret key from its seed, 64 hex digits.
fn secret_key(seed: &str) -> Result<kinema_chain::crypto::SecretKey, JsError> {
    let seed: [u8; 32] = hex::decode(seed.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| js("the key: expected a seed of 64 hex digits"))?;
    Ok(kinema_chain::crypto::SecretKey::from_seed(seed))
}

/// Signs, with `key` (a seed, 64 hex digits), the claims that let `claim_for` (an address)
/// redeem `winners` (a JSON array of hex borsh `RedeemArgs`, as `LightNode::takeWinners` gave
/// them without a claim) and be paid; returns them, claimed, in the same order. A ticket that
/// does not pay `key` is refused.
#[wasm_bindgen(js_name = claimWinners)]
pub fn claim_winners(key: &str, winners: &str, claim_for: &str) -> Result<String, JsError> {
    let key = secret_key(key)?;
    let payee: kinema_chain::Address =
        claim_for.trim().parse().map_err(|e| js(format!("the address to claim for: {e}")))?;
    let winners: Vec<String> = parse(winners, "the winners")?;
    let mut claimed = Vec::with_capacity(winners.len());
    for (i, winner) in winners.iter().enumerate() {
        let mut args: kinema_chain::tickets::RedeemArgs = hex::decode(winner)
            .ok()
            .and_then(|bytes| borsh::from_slice(&bytes).ok())
            .ok_or_else(|| js(format!("winner {i}: not the hex of a redemption")))?;
        if args.ticket.ticket.recipient != key.address().0 {
            let pays = kinema_chain::Address(args.ticket.ticket.recipient);
            return Err(js(format!("winner {i} pays {pays}, not this key")));
        }
        kinema_chain::tickets::claim(&key, &mut args, payee);
        claimed.push(hex::encode(borsh::to_vec(&args).unwrap_or_default()));
    }
    serde_json::to_string(&claimed).map_err(js)
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
