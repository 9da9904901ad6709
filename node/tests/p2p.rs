//! Validators over real libp2p connections on loopback: they finalize blocks, carry a transfer
//! to every validator, and one that is stopped restarts with its identity and catches up.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

#[path = "common/flood.rs"]
#[allow(dead_code)] // what only the finality bench uses (fresh identities, its counts)
mod flood;

use std::sync::Arc;
use std::time::Duration;

use kinema_chain::block::{Validator, ValidatorSet};
use kinema_chain::crypto::SecretKey;
use kinema_chain::tx::{Call, Tx};
use kinema_chain::{Address, encode};
use kinema_net::p2p::{self, P2p, P2pConfig, P2pError};
use kinema_node::app::Genesis;
use kinema_node::consensus::guard::Guard;
use kinema_node::consensus::node::NodeHandle;
use kinema_node::consensus::{Config, start};
use kinema_node::link::{self, P2pLink};
use kinema_test_support::wait_until_async;
use libp2p::Multiaddr;

use flood::{Flood, Identities};

const CHAIN: &str = "kinema-p2p-test";

const FEE: u64 = 1_000_000;
const PATIENCE: Duration = Duration::from_secs(60);

/// A libp2p node on the test chain's gossip, with the consensus transport over it.
fn start_p2p(config: P2pConfig, guard: &Arc<Guard>) -> Result<(P2p, P2pLink), P2pError> {
    let gossip = link::gossip(CHAIN, guard.clone());
    let (p2p, messages) = p2p::start(P2pConfig { gossip, ..config })?;
    Ok((p2p, P2pLink::new(messages, CHAIN)))
}

fn key(seed: u8) -> SecretKey {
    SecretKey::from_seed([seed; 32])
}

struct Net {
    dir: tempfile::TempDir,
    genesis: Genesis,
    keys: Vec<SecretKey>,
    nodes: Vec<Option<(NodeHandle, P2p)>>,
    addresses: Vec<Multiaddr>,
}

impl Net {
    fn new(n: u8) -> Self {
        let keys: Vec<SecretKey> = (0..n).map(|i| key(100 + i)).collect();
        let validators = ValidatorSet::new(
            keys.iter().map(|k| Validator { public_key: k.public(), power: 100 }).collect(),
        )
        .unwrap();
        let mut balances: Vec<(Address, u64)> =
            keys.iter().map(|k| (k.address(), 100 * FEE)).collect();
        balances.push((key(1).address(), 1_000 * FEE));
        let genesis = Genesis {
            chain_id: CHAIN.into(),
            time_ms: 0,
            balances,
            validators,
            epoch_length: 1000,
        };
        Self {
            dir: tempfile::tempdir().unwrap(),
            genesis,
            keys,
            nodes: (0..n).map(|_| None).collect(),
            addresses: Vec::new(),
        }
    }

    /// Starts validator `i`, listening on `listen` and dialling every address known so far.
    async fn start(&mut self, i: usize, listen: Multiaddr) {
        let path = self.dir.path().join(format!("validator-{i}.redb"));
        let mut config = Config::new(self.keys[i].clone());
        config.empty_block_interval = Duration::from_millis(100);
        config.step_timeout = Duration::from_millis(500);
        let (p2p, link) = start_p2p(
            P2pConfig {
                listen: vec![listen],
                peers: self.addresses.clone(),
                ..P2pConfig::new(p2p::keypair_from_seed([200 + i as u8; 32]).unwrap())
            },
            &config.guard,
        )
        .unwrap();
        let node = start(&path, &self.genesis, config, link).unwrap();
        let address = p2p.listening().await.remove(0);
        if !self.addresses.contains(&address) {
            self.addresses.push(address);
        }
        self.nodes[i] = Some((node, p2p));
    }

    fn node(&self, i: usize) -> &NodeHandle {
        &self.nodes[i].as_ref().expect("running").0
    }

    async fn wait_all(&self, height: u64) {
        for (node, _) in self.nodes.iter().flatten() {
            tokio::time::timeout(PATIENCE, node.wait_for(height))
                .await
                .unwrap_or_else(|_| panic!("no block {height} within {PATIENCE:?}"))
                .unwrap();
        }
    }

    fn balance(&self, i: usize, address: &Address) -> u64 {
        let store = self.node(i).store();
        let head = store.head().unwrap().unwrap().height;
        store.account(address, head).unwrap().0.map_or(0, |a| a.balance)
    }
}

fn loopback() -> Multiaddr {
    "/ip4/127.0.0.1/tcp/0".parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validators_over_libp2p_finalize_and_a_restarted_one_catches_up() {
    let mut net = Net::new(4);
    for i in 0..4 {
        net.start(i, loopback()).await;
    }
    net.wait_all(2).await;

    // A transfer submitted to one validator reaches every validator's state.
    let to = key(2).address();
    let call = Call::Transfer { to, amount: 42 };
    let tx = Tx { chain_id: CHAIN.into(), signer: key(1).public(), nonce: 0, fee: FEE, call };
    net.node(2).submit(encode(&tx.sign(&key(1)))).await.unwrap().unwrap();
    wait_until_async("the transfer to reach everyone", PATIENCE, || async {
        (0..4).all(|i| net.balance(i, &to) == 42)
    })
    .await;

    // Validator 3 stops (its swarm with it); the others go on; it restarts on the same port
    // with the same identity and catches up over the network.
    let (node, p2p) = net.nodes[3].take().unwrap();
    let port_address = net.addresses[3].clone();
    drop(p2p);
    node.stop().await.unwrap();
    let head = net.node(0).store().head().unwrap().unwrap().height;
    net.wait_all(head + 3).await;
    let listen: Multiaddr =
        port_address.iter().filter(|p| !matches!(p, libp2p::multiaddr::Protocol::P2p(_))).collect();
    net.start(3, listen).await;
    let target = net.node(0).store().head().unwrap().unwrap().height + 2;
    net.wait_all(target).await;
    for h in 1..=target {
        let block = net.node(0).store().block(h).unwrap().unwrap();
        assert_eq!(net.node(3).store().block(h).unwrap().unwrap().header, block.header);
    }
    assert_eq!(net.balance(3, &to), 42);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_hear_certified_headers_and_mislabelled_gossip_goes_nowhere() {
    use kinema_chain::gossip::Finalized;
    use kinema_node::consensus::node::Transport;
    use kinema_node::consensus::{Message, Topic};

    let mut net = Net::new(1);
    net.start(0, loopback()).await;

    // A follower runs no consensus: it only reads what gossip brings it.
    let (follower, mut link) = start_p2p(
        P2pConfig {
            listen: vec![loopback()],
            peers: net.addresses.clone(),
            ..P2pConfig::new(p2p::keypair_from_seed([90; 32]).unwrap())
        },
        &Arc::new(Guard::new()),
    )
    .unwrap();
    let follower_at = follower.listening().await.remove(0);

    // Every header it hears is certified by the genesis set and is what the validator committed.
    let mut heights = std::collections::BTreeSet::new();
    while heights.len() < 3 {
        let (_, bytes) = tokio::time::timeout(PATIENCE, link.recv()).await.unwrap().unwrap();
        let Some(heard) = Finalized::from_gossip(&bytes) else { continue };
        heard.certificate.verify(&heard.header, &net.genesis.validators).unwrap();
        let committed = net.node(0).store().block(heard.header.height).unwrap().unwrap();
        assert_eq!(committed.header, heard.header);
        heights.insert(heard.header.height);
    }

    // A peer that publishes a transaction on the headers topic is not listened to there; the
    // same peer's transactions on their own topic arrive.
    let (_rogue, mut rogue_link) = start_p2p(
        P2pConfig {
            peers: vec![follower_at],
            ..P2pConfig::new(p2p::keypair_from_seed([91; 32]).unwrap())
        },
        &Arc::new(Guard::new()),
    )
    .unwrap();
    let publisher = tokio::spawn(async move {
        loop {
            let mislabelled = encode(&Message::Tx(b"mislabelled".to_vec()));
            rogue_link.broadcast(Topic::Headers, mislabelled);
            rogue_link.broadcast(Topic::Transactions, encode(&Message::Tx(b"on topic".to_vec())));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let mut on_topic = 0;
    while on_topic < 5 {
        let (_, bytes) = tokio::time::timeout(PATIENCE, link.recv()).await.unwrap().unwrap();
        match kinema_chain::decode::<Message>(&bytes) {
            Ok(Message::Tx(tx)) if tx == b"on topic" => on_topic += 1,
            Ok(Message::Tx(tx)) => panic!("delivered from the wrong topic: {tx:?}"),
            _ => {}
        }
    }
    publisher.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_node_that_knows_one_validator_catches_up_with_a_long_chain() {
    let mut net = Net::new(4);
    for i in 0..4 {
        net.start(i, loopback()).await;
    }
    net.wait_all(60).await;

    // Not a validator, and connected to validator 0 only: every header the others publish
    // reaches it through validator 0, whose blocks it must then ask for.
    let mut config = Config::new(key(93));
    config.empty_block_interval = Duration::from_millis(100);
    let (_p2p, link) = start_p2p(
        P2pConfig {
            listen: vec![loopback()],
            peers: net.addresses[..1].to_vec(),
            ..P2pConfig::new(p2p::keypair_from_seed([92; 32]).unwrap())
        },
        &config.guard,
    )
    .unwrap();
    let late = start(&net.dir.path().join("late.redb"), &net.genesis, config, link).unwrap();
    let target = net.node(0).store().head().unwrap().unwrap().height + 20;
    tokio::time::timeout(PATIENCE, late.wait_for(target))
        .await
        .unwrap_or_else(|_| panic!("the late node did not reach block {target}"))
        .unwrap();
    // Caught up, it decides along with the validators (it can be a moment ahead of one).
    net.wait_all(target).await;
    for h in [1, target / 2, target] {
        let block = net.node(0).store().block(h).unwrap().unwrap();
        assert_eq!(late.store().block(h).unwrap().unwrap().header, block.header);
    }
    late.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junk_blocks_flooded_at_every_height_do_not_stall_consensus() {
    let mut net = Net::new(4);
    for i in 0..4 {
        net.start(i, loopback()).await;
    }
    net.wait_all(2).await;

    // A peer that is no validator joins the consensus topic and, at every height, publishes
    // far more well-formed blocks than a validator executes per height: for every round, some
    // signed by itself, some claiming a validator with a signature it made up.
    let store = net.node(0).store().clone();
    let claimed = net.keys[0].address();
    let flood = Flood::start(CHAIN, net.addresses.clone(), store, claimed, Identities::One).await;
    let start = net.node(0).store().head().unwrap().unwrap().height;

    // The validators keep finalizing while it floods, and stop listening to it.
    net.wait_all(start + 10).await;
    let flooder = flood.report().identities[0];
    wait_until_async("the flooder to be banned", PATIENCE, || async {
        net.nodes.iter().flatten().any(|(_, p2p)| p2p.banned().contains(&flooder))
    })
    .await;
    assert!(flood.is_running(), "the flood stopped before the validators went on");
    assert!(flood.report().published > 0);
}
