//! Time from submitting a transfer to its finality, 4 validators over libp2p on loopback:
//! `cargo bench -p kinema-node --bench finality`.
//!
//! Devnet settings (an empty block a second at most, a 50 ms batch window, 1 s step timeouts);
//! each validator has its own store, its libp2p node on 127.0.0.1 (TCP, noise, yamux,
//! gossipsub) and its RPC on 127.0.0.1. A transfer is posted over HTTP to validator 0's RPC;
//! the clock stops when validator 0 has committed a block holding it (BFT: committed is
//! final). 30 transfers one after another, at different moments of the block rhythm.
//!
//! Twice: on a quiet network, then while a peer that is no validator floods the consensus
//! topic with junk blocks at every height (`tests/common/flood.rs`, as the p2p test
//! `junk_blocks_flooded_at_every_height_do_not_stall_consensus` does). Validators ban a peer
//! whose gossip they refuse, so the flooder comes back under a fresh identity (new key, new
//! connections) each time every validator has banned the last. Prints the median and p90 of
//! each, the flooded median's ratio to the quiet one, the quiet median's ratio to the 1 s
//! target, and what the flood did meanwhile.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

#[path = "../tests/common/flood.rs"]
#[allow(dead_code)] // what only the p2p test uses (a single identity)
mod flood;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
use kinema_node::rpc;
use libp2p::Multiaddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use flood::{Flood, Identities};

const CHAIN: &str = "kinema-bench";

/// A libp2p node on the test chain's gossip, with the consensus transport over it.
fn start_p2p(config: P2pConfig, guard: &Arc<Guard>) -> Result<(P2p, P2pLink), P2pError> {
    let gossip = link::gossip(CHAIN, guard.clone());
    let (p2p, messages) = p2p::start(P2pConfig { gossip, ..config })?;
    Ok((p2p, P2pLink::new(messages, CHAIN)))
}
const FEE: u64 = 1_000_000;

fn key(seed: u8) -> SecretKey {
    SecretKey::from_seed([seed; 32])
}

/// Posts a transaction to an RPC over HTTP/1.1 and returns the status line.
async fn post(at: SocketAddr, tx: &[u8]) -> String {
    let body = format!("{{\"tx\":\"{}\"}}", hex::encode(tx));
    let request = format!(
        "POST /api/v1/txs HTTP/1.1\r\nHost: kinema\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(at).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    answer.lines().next().unwrap_or_default().to_owned()
}

/// The 4 validators (their nodes and libp2p handles), validator 0's RPC address and where
/// they listen.
async fn network(
    dir: &std::path::Path,
    sender: &SecretKey,
) -> (Vec<(NodeHandle, P2p)>, SocketAddr, Vec<Multiaddr>) {
    let keys: Vec<SecretKey> = (0..4).map(|i| key(100 + i)).collect();
    let set = ValidatorSet::new(
        keys.iter().map(|k| Validator { public_key: k.public(), power: 100 }).collect(),
    )
    .unwrap();
    let mut balances: Vec<(Address, u64)> =
        keys.iter().map(|k| (k.address(), 1_000 * FEE)).collect();
    balances.push((sender.address(), 1_000_000 * FEE));
    let genesis = Genesis {
        chain_id: CHAIN.into(),
        time_ms: 0,
        balances,
        validators: set,
        epoch_length: 1000,
    };
    let mut nodes = Vec::new();
    let mut addresses = Vec::new();
    let mut rpc_at = None;
    for (i, k) in keys.into_iter().enumerate() {
        let config = Config::new(k);
        let (p2p, link) = start_p2p(
            P2pConfig {
                listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
                peers: addresses.clone(),
                ..P2pConfig::new(p2p::keypair_from_seed([50 + i as u8; 32]).unwrap())
            },
            &config.guard,
        )
        .unwrap();
        addresses.push(p2p.listening().await.remove(0));
        let path = dir.join(format!("v{i}.redb"));
        let node = start(&path, &genesis, config, link).unwrap();
        if i == 0 {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            rpc_at = Some(listener.local_addr().unwrap());
            let router = rpc::router(node.client(), CHAIN);
            tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        }
        nodes.push((node, p2p));
    }
    (nodes, rpc_at.unwrap(), addresses)
}

/// Transfers per run.
const TRANSFERS: u64 = 30;

/// Posts [`TRANSFERS`] transfers from `sender` (nonces on from `*nonce`) to validator 0's RPC
/// one after another; the time each took to be committed by validator 0, sorted.
async fn measure(
    node: &NodeHandle,
    rpc_at: SocketAddr,
    sender: &SecretKey,
    nonce: &mut u64,
) -> Vec<Duration> {
    let to = key(2).address();
    let mut times = Vec::new();
    for i in 0..TRANSFERS {
        tokio::time::sleep(Duration::from_millis(137 * (i % 7))).await;
        let call = Call::Transfer { to, amount: 1 };
        let tx =
            Tx { chain_id: CHAIN.into(), signer: sender.public(), nonce: *nonce, fee: FEE, call };
        let bytes = encode(&tx.sign(sender));
        let started = Instant::now();
        let status = post(rpc_at, &bytes).await;
        assert!(status.contains(" 200 "), "{status}");
        let mut head = node.head();
        loop {
            let height = head.borrow().height;
            let account = node.store().account(&sender.address(), height).unwrap().0.unwrap();
            if account.nonce > *nonce {
                break;
            }
            head.changed().await.unwrap();
        }
        times.push(started.elapsed());
        *nonce += 1;
    }
    times.sort();
    times
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(times: &[Duration]) -> Duration {
    times[times.len() / 2]
}

fn print_times(what: &str, times: &[Duration]) {
    println!(
        "finality, 4 validators over libp2p (loopback TCP), transfer posted to the RPC, {what}: \
         median {:.0} ms, p90 {:.0} ms, min {:.0} ms, max {:.0} ms ({} transfers)",
        ms(median(times)),
        ms(times[times.len() * 9 / 10]),
        ms(times[0]),
        ms(times[times.len() - 1]),
        times.len()
    );
}

fn dropped(nodes: &[(NodeHandle, P2p)]) -> u64 {
    nodes.iter().map(|(_, p)| p.dropped()).sum()
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let sender = key(1);
        let (nodes, rpc_at, addresses) = network(dir.path(), &sender).await;
        let node = &nodes[0].0;
        node.wait_for(3).await.unwrap();
        let mut nonce = 0;

        let quiet = measure(node, rpc_at, &sender, &mut nonce).await;
        let quiet_dropped = dropped(&nodes);

        let store = node.store().clone();
        let claimed = key(100).address();
        let flood = Flood::start(CHAIN, addresses, store, claimed, Identities::Fresh).await;
        let flooded = measure(node, rpc_at, &sender, &mut nonce).await;
        assert!(flood.is_running(), "the flood stopped during the measurement");
        let report = flood.report();
        drop(flood);
        let flooded_dropped = dropped(&nodes) - quiet_dropped;

        print_times("no flood", &quiet);
        print_times("junk-block flood", &flooded);
        println!(
            "  flooded median / quiet median = {:.2}; quiet median / 1 s target = {:.3}",
            median(&flooded).as_secs_f64() / median(&quiet).as_secs_f64(),
            median(&quiet).as_secs_f64()
        );
        // How much of the flood reached the validators: each identity is heard until a
        // validator has refused more than 32 of its messages, then banned.
        let bans: usize = nodes
            .iter()
            .map(|(_, p)| p.banned().iter().filter(|id| report.identities.contains(id)).count())
            .sum();
        println!(
            "  the flood: {} junk blocks published from {} identities, connected to a validator \
             {:.0} % of the time; {bans} bans of them by the validators",
            report.published,
            report.identities.len(),
            100.0 * report.connected_ticks as f64 / report.ticks.max(1) as f64,
        );
        println!(
            "  messages dropped by full queues: {quiet_dropped} without the flood, \
             {flooded_dropped} with it"
        );
        for (node, _) in nodes {
            node.stop().await.unwrap();
        }
    });
}
