//! The chain end to end: `cargo bench -p kinema-chain --bench consensus`.
//!
//! - **finality**: 4 validators (devnet settings: an empty block a second at most, 1 s step
//!   timeouts), each with its RPC on 127.0.0.1. A transfer is posted over HTTP to validator 0;
//!   the clock stops when validator 0 has committed a block holding it (BFT: committed is
//!   final). 30 transfers one after another, at random moments relative to the block rhythm.
//! - **throughput**: one validator; 20,000 transfers from 200 senders submitted to its node
//!   (signature, nonce and balance checks, gossip), proposed, executed in wasmtime, committed
//!   durably. Transfers per second from the first submission to the last commit.
//!
//! Prints each figure with its ratio to the target (finality ≤ 1 s, ≥ 5,000 transfers/s).

#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use kinema_chain::app::{App, Genesis};
use kinema_chain::block::{Validator, ValidatorSet};
use kinema_chain::consensus::node::{Hub, NodeHandle};
use kinema_chain::consensus::{Config, MalachiteEngine};
use kinema_chain::crypto::SecretKey;
use kinema_chain::tx::{Call, Tx};
use kinema_chain::{Address, encode, rpc};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CHAIN: &str = "kinema-bench";
const FEE: u64 = 1_000_000;

fn key(i: u32) -> SecretKey {
    let mut seed = [7u8; 32];
    seed[..4].copy_from_slice(&i.to_le_bytes());
    SecretKey::from_seed(seed)
}

fn transfer(from: &SecretKey, nonce: u64, to: Address) -> Vec<u8> {
    let call = Call::Transfer { to, amount: 1 };
    encode(&Tx { chain_id: CHAIN.into(), signer: from.public(), nonce, fee: FEE, call }.sign(from))
}

/// `validators` validators over one hub, `funded` accounts, each validator's RPC on loopback.
async fn network(
    dir: &std::path::Path,
    validators: u32,
    funded: &[SecretKey],
    empty_block_interval: Duration,
) -> (Vec<NodeHandle>, Vec<SocketAddr>) {
    let keys: Vec<SecretKey> = (0..validators).map(|i| key(1_000_000 + i)).collect();
    let set = ValidatorSet::new(
        keys.iter().map(|k| Validator { public_key: k.public(), power: 100 }).collect(),
    )
    .unwrap();
    let mut balances: Vec<(Address, u64)> =
        funded.iter().map(|k| (k.address(), u64::MAX / 1024)).collect();
    balances.extend(keys.iter().map(|k| (k.address(), 1_000 * FEE)));
    let genesis = Genesis {
        chain_id: CHAIN.into(),
        time_ms: 0,
        balances,
        validators: set,
        epoch_length: 1000,
    };
    let hub = Hub::new();
    let (mut nodes, mut rpcs) = (Vec::new(), Vec::new());
    for (i, k) in keys.into_iter().enumerate() {
        let app = App::open(&dir.join(format!("v{i}.redb")), &genesis, 100_000).unwrap();
        let store = app.store().clone();
        let mut config = Config::new(k);
        config.empty_block_interval = empty_block_interval;
        let engine = MalachiteEngine::new(app, config).unwrap();
        let node = NodeHandle::spawn(engine, hub.join(), store).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        rpcs.push(listener.local_addr().unwrap());
        let router = rpc::router(node.client(), CHAIN);
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        nodes.push(node);
    }
    (nodes, rpcs)
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

async fn finality() {
    let dir = tempfile::tempdir().unwrap();
    let sender = key(1);
    let (nodes, rpcs) =
        network(dir.path(), 4, std::slice::from_ref(&sender), Duration::from_secs(1)).await;
    nodes[0].wait_for(2).await.unwrap();
    let to = key(2).address();
    let mut times = Vec::new();
    for nonce in 0..30u64 {
        // Land at a different point of the block rhythm each time.
        tokio::time::sleep(Duration::from_millis(137 * (nonce % 7))).await;
        let started = Instant::now();
        let status = post(rpcs[0], &transfer(&sender, nonce, to)).await;
        assert!(status.contains(" 200 "), "{status}");
        let mut head = nodes[0].head();
        loop {
            let store = nodes[0].store();
            let height = head.borrow().height;
            let account = store.account(&sender.address(), height).unwrap().0.unwrap();
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
    let p90 = times[times.len() * 9 / 10];
    println!(
        "finality, 4 validators, loopback RPC: median {:.0} ms, p90 {:.0} ms, max {:.0} ms, min {:.0} ms ({} transfers)",
        ms(median),
        ms(p90),
        ms(times[times.len() - 1]),
        ms(times[0]),
        times.len()
    );
    println!("  median / 1 s target = {:.3}", median.as_secs_f64());
    for node in nodes {
        node.stop().await.unwrap();
    }
}

async fn throughput() {
    let dir = tempfile::tempdir().unwrap();
    let senders: Vec<SecretKey> = (0..200).map(|i| key(10 + i)).collect();
    let (nodes, _) = network(dir.path(), 1, &senders, Duration::from_millis(100)).await;
    nodes[0].wait_for(1).await.unwrap();
    let per_sender = 100u64;
    let to = key(2).address();
    let txs: Vec<Vec<u8>> = (0..per_sender)
        .flat_map(|nonce| senders.iter().map(move |s| (s, nonce)))
        .map(|(s, nonce)| transfer(s, nonce, to))
        .collect();
    let total = txs.len();
    let start_height = nodes[0].store().head().unwrap().unwrap().height;
    let started = Instant::now();
    let node = nodes[0].client();
    let submitter = tokio::spawn(async move {
        for tx in txs {
            node.submit(tx).await.unwrap().unwrap();
        }
    });
    let mut head = nodes[0].head();
    let last = senders.last().unwrap().address();
    loop {
        head.changed().await.unwrap();
        let height = head.borrow().height;
        let account = nodes[0].store().account(&last, height).unwrap().0.unwrap();
        if account.nonce == per_sender {
            break;
        }
    }
    let elapsed = started.elapsed();
    submitter.await.unwrap();
    let height = nodes[0].store().head().unwrap().unwrap().height;
    let rate = total as f64 / elapsed.as_secs_f64();
    println!(
        "throughput, 1 validator: {total} transfers in {:.2} s over {} blocks = {rate:.0} transfers/s",
        elapsed.as_secs_f64(),
        height - start_height
    );
    println!("  rate / 5,000 target = {:.2}", rate / 5_000.0);
    for node in nodes {
        node.stop().await.unwrap();
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        finality().await;
        throughput().await;
    });
}
