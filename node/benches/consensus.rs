//! Transfers per second through one validator, end to end: `cargo bench -p kinema-chain
//! --bench consensus`. (Finality with 4 validators over libp2p is `cargo bench -p kinema-node
//! --bench finality`.)
//!
//! - **throughput**: one validator; 20,000 transfers from 200 senders submitted to its node
//!   (signature, nonce and balance checks, gossip), proposed, executed in wasmtime, committed
//!   durably. Transfers per second from the first submission to the last commit.
//!
//! Prints the figure with its ratio to the target (≥ 5,000 transfers/s).

#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::time::{Duration, Instant};

use kinema_chain::block::{Validator, ValidatorSet};
use kinema_chain::crypto::SecretKey;
use kinema_chain::tx::{Call, Tx};
use kinema_chain::{Address, encode};
use kinema_node::app::Genesis;
use kinema_node::consensus::node::{Hub, NodeHandle};
use kinema_node::consensus::{Config, start};

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

/// One validator with `funded` accounts.
fn validator(dir: &std::path::Path, funded: &[SecretKey]) -> NodeHandle {
    let key = key(1_000_000);
    let set = ValidatorSet::new(vec![Validator { public_key: key.public(), power: 100 }]).unwrap();
    let balances: Vec<(Address, u64)> =
        funded.iter().map(|k| (k.address(), u64::MAX / 1024)).collect();
    let genesis = Genesis {
        chain_id: CHAIN.into(),
        time_ms: 0,
        balances,
        validators: set,
        epoch_length: 1000,
    };
    let mut config = Config::new(key);
    config.empty_block_interval = Duration::from_millis(100);
    start(&dir.join("chain.redb"), &genesis, config, Hub::new().join()).unwrap()
}

async fn throughput() {
    let dir = tempfile::tempdir().unwrap();
    let senders: Vec<SecretKey> = (0..200).map(|i| key(10 + i)).collect();
    let node = validator(dir.path(), &senders);
    node.wait_for(1).await.unwrap();
    let per_sender = 100u64;
    let to = key(2).address();
    let txs: Vec<Vec<u8>> = (0..per_sender)
        .flat_map(|nonce| senders.iter().map(move |s| (s, nonce)))
        .map(|(s, nonce)| transfer(s, nonce, to))
        .collect();
    let total = txs.len();
    let start_height = node.store().head().unwrap().unwrap().height;
    let started = Instant::now();
    let client = node.client();
    let submitter = tokio::spawn(async move {
        for tx in txs {
            client.submit(tx).await.unwrap().unwrap();
        }
    });
    let mut head = node.head();
    let last = senders.last().unwrap().address();
    loop {
        head.changed().await.unwrap();
        let height = head.borrow().height;
        let account = node.store().account(&last, height).unwrap().0.unwrap();
        if account.nonce == per_sender {
            break;
        }
    }
    let elapsed = started.elapsed();
    submitter.await.unwrap();
    let height = node.store().head().unwrap().unwrap().height;
    let rate = total as f64 / elapsed.as_secs_f64();
    println!(
        "throughput, 1 validator: {total} transfers in {:.2} s over {} blocks = {rate:.0} transfers/s",
        elapsed.as_secs_f64(),
        height - start_height
    );
    println!("  rate / 5,000 target = {:.2}", rate / 5_000.0);
    node.stop().await.unwrap();
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        throughput().await;
    });
}
