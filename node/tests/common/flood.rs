//! A peer that is no validator flooding the consensus topic with junk blocks at every height:
//! for every round, more well-formed blocks than a validator executes per height, some signed
//! by itself, some claiming a validator as proposer with a signature it made up.
//!
//! Shared by `tests/p2p.rs` and `benches/finality.rs`, which include this file as a module (a
//! bench cannot import a test, and kinema-test-support does not depend on kinema-node).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kinema_chain::block::{Block, Header};
use kinema_chain::crypto::SecretKey;
use kinema_chain::{Address, Hash, encode};
use kinema_net::gossip::{Registry, Verdict};
use kinema_net::p2p::{self, P2p, P2pConfig};
use kinema_node::consensus::{Message, ProposedBlock, Topic};
use kinema_node::store::Store;
use libp2p::{Multiaddr, PeerId};
use malachitebft_core_types::Round;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How often it publishes a batch: two blocks for each of four rounds of the coming height.
const EVERY: Duration = Duration::from_millis(20);
/// How long an identity waits to be connected to every validator before it floods anyway.
const CONNECT: Duration = Duration::from_secs(5);

/// Who the flood comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Identities {
    /// One peer throughout: once every validator has banned it, it reaches no one.
    One,
    /// A new peer (a new key, new connections) each time every validator has banned the last.
    Fresh,
}

/// What a flood did so far.
#[derive(Debug, Clone, Default)]
pub(crate) struct FloodReport {
    /// The peer ids it flooded from, in order.
    pub(crate) identities: Vec<PeerId>,
    /// Junk blocks it published while connected to a validator.
    pub(crate) published: u64,
    /// Its batch ticks, and those at which it was connected to a validator.
    pub(crate) ticks: u64,
    pub(crate) connected_ticks: u64,
}

#[derive(Debug, Default)]
struct Counts {
    identities: Mutex<Vec<PeerId>>,
    published: AtomicU64,
    ticks: AtomicU64,
    connected_ticks: AtomicU64,
}

/// A flood on its own task; dropping it stops it (and closes its connections).
#[derive(Debug)]
pub(crate) struct Flood {
    task: JoinHandle<()>,
    counts: Arc<Counts>,
}

impl Flood {
    /// Floods the validators of chain `chain_id` listening at `validators`, following the
    /// height from `store` (a validator's) and claiming `claimed` as the proposer of half its
    /// blocks. Returns once its first identity is connected to every validator (or gave up
    /// waiting).
    pub(crate) async fn start(
        chain_id: &str,
        validators: Vec<Multiaddr>,
        store: Arc<Store>,
        claimed: Address,
        identities: Identities,
    ) -> Self {
        let counts = Arc::new(Counts::default());
        let (connected, first) = oneshot::channel();
        let task = tokio::spawn(run(
            chain_id.to_owned(),
            validators,
            store,
            claimed,
            identities,
            counts.clone(),
            connected,
        ));
        let _ = first.await;
        Self { task, counts }
    }

    /// What it did so far.
    pub(crate) fn report(&self) -> FloodReport {
        let load = |n: &AtomicU64| n.load(Ordering::Relaxed);
        FloodReport {
            identities: self.counts.identities.lock().map(|i| i.clone()).unwrap_or_default(),
            published: load(&self.counts.published),
            ticks: load(&self.counts.ticks),
            connected_ticks: load(&self.counts.connected_ticks),
        }
    }

    /// Whether it is still going.
    pub(crate) fn is_running(&self) -> bool {
        !self.task.is_finished()
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A libp2p node joined to the consensus topic (accepting anything on it), dialling
/// `validators`, with identity number `n`.
fn peer(chain_id: &str, validators: &[Multiaddr], n: u64) -> (P2p, p2p::Messages) {
    let mut topics = Registry::new();
    topics.register(Topic::Consensus.name(chain_id), |_| Verdict::Accept);
    let mut seed = [66; 32];
    seed[..8].copy_from_slice(&n.to_le_bytes());
    p2p::start(P2pConfig {
        peers: validators.to_vec(),
        gossip: topics,
        ..P2pConfig::new(p2p::keypair_from_seed(seed).expect("an identity"))
    })
    .expect("a libp2p node")
}

async fn run(
    chain_id: String,
    validators: Vec<Multiaddr>,
    store: Arc<Store>,
    claimed: Address,
    identities: Identities,
    counts: Arc<Counts>,
    connected: oneshot::Sender<()>,
) {
    // The blocks' signer: not a validator.
    let flooder = SecretKey::from_seed([66; 32]);
    let topic = Topic::Consensus.name(&chain_id);
    let mut connected = Some(connected);
    let mut n = 0u64;
    for identity in 0.. {
        let (node, messages) = peer(&chain_id, &validators, identity);
        if let Ok(mut ids) = counts.identities.lock() {
            ids.push(node.peer_id());
        }
        let _ = tokio::time::timeout(CONNECT, node.connected_to(validators.len())).await;
        if let Some(connected) = connected.take() {
            let _ = connected.send(());
        }
        let mut was_connected = false;
        loop {
            counts.ticks.fetch_add(1, Ordering::Relaxed);
            if node.peers().is_empty() {
                // Banned by every validator (or never let in): come back as another peer.
                if identities == Identities::Fresh && was_connected {
                    break;
                }
            } else {
                was_connected = true;
                counts.connected_ticks.fetch_add(1, Ordering::Relaxed);
                let height = store.head().ok().flatten().map_or(1, |h| h.height + 1);
                for round in 0..4 {
                    for proposer in [flooder.address(), claimed] {
                        n += 1;
                        let header = Header {
                            chain_id: chain_id.clone(),
                            height,
                            parent: Hash::of("junk", &n.to_le_bytes()),
                            time_ms: n,
                            proposer,
                            state_root: Hash::ZERO,
                            tx_root: Hash::ZERO,
                            validator_set_hash: Hash::ZERO,
                        };
                        let block = Block { header, txs: Vec::new() };
                        let round = Round::new(round);
                        let mut part =
                            ProposedBlock::signed(&chain_id, round, Round::Nil, block, &flooder);
                        part.proposer = proposer;
                        messages.publish(&topic, encode(&Message::Block(part)));
                        counts.published.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            tokio::time::sleep(EVERY).await;
        }
        // Its handles dropped, its swarm stops and its connections close.
        drop((node, messages));
    }
}
