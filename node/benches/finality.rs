//! Time from submitting a transfer to its finality, 4 validators over libp2p on loopback:
//! `cargo bench -p kinema-node --bench finality`.
//!
//! Devnet settings (an empty block a second at most, a 50 ms batch window, 1 s step timeouts);
//! each validator has its own store, its libp2p node on 127.0.0.1 (TCP, noise, yamux,
//! gossipsub) and its RPC on 127.0.0.1. A transfer is posted over HTTP to validator 0's RPC;
//! the clock stops when validator 0 has committed a block holding it (BFT: committed is
//! final). 30 transfers one after another, at different moments of the block rhythm. Prints
//! the median and its ratio to the 1 s target.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

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
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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

async fn network(
    dir: &std::path::Path,
    sender: &SecretKey,
) -> (Vec<(NodeHandle, P2p)>, SocketAddr) {
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
    (nodes, rpc_at.unwrap())
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let sender = key(1);
        let (nodes, rpc_at) = network(dir.path(), &sender).await;
        let node = &nodes[0].0;
        node.wait_for(3).await.unwrap();
        let to = key(2).address();
        let mut times = Vec::new();
        for nonce in 0..30u64 {
            tokio::time::sleep(Duration::from_millis(137 * (nonce % 7))).await;
            let call = Call::Transfer { to, amount: 1 };
            let tx = Tx { chain_id: CHAIN.into(), signer: sender.public(), nonce, fee: FEE, call };
            let bytes = encode(&tx.sign(&sender));
            let started = Instant::now();
            let status = post(rpc_at, &bytes).await;
            assert!(status.contains(" 200 "), "{status}");
            let mut head = node.head();
            loop {
                let height = head.borrow().height;
                let account = node.store().account(&sender.address(), height).unwrap().0.unwrap();
                if account.nonce > nonce {
                    break;
                }
                head.changed().await.unwrap();
            }
            times.push(started.elapsed());
        }
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let median = times[times.len() / 2];
        println!(
            "finality, 4 validators over libp2p (loopback TCP), transfer posted to the RPC: \
             median {:.0} ms, p90 {:.0} ms, min {:.0} ms, max {:.0} ms ({} transfers)",
            ms(median),
            ms(times[times.len() * 9 / 10]),
            ms(times[0]),
            ms(times[times.len() - 1]),
            times.len()
        );
        println!("  median / 1 s target = {:.3}", median.as_secs_f64());
        let dropped: u64 = nodes.iter().map(|(_, p)| p.dropped()).sum();
        println!("  messages dropped by full queues: {dropped}");
        for (node, _) in nodes {
            node.stop().await.unwrap();
        }
    });
}
