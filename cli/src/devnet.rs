//! A local chain: N validators in one process, each with its own store, its libp2p node on
//! 127.0.0.1 (dialling the others over TCP) and its RPC on 127.0.0.1.
//!
//! `<dir>/devnet.json` records the chain (id, genesis time, validator count); each validator's
//! key, libp2p identity and store live in `<dir>/validator-<i>/`; `<dir>/faucet.key` holds the
//! funded key. Started again on the same directory it resumes from the stores, with the same
//! peer ids.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use kinema_chain::Address;
use kinema_chain::block::{Validator, ValidatorSet};
use kinema_chain::crypto::SecretKey;
use kinema_net::p2p;
use kinema_node::app::Genesis;
use kinema_node::builder::{Builder, Running};
use kinema_node::consensus::node::NodeHandle;
use libp2p::Multiaddr;
use libp2p::multiaddr::Protocol;
use serde::{Deserialize, Serialize};

use crate::node::load_or_create_key;
use crate::wallet::load_key;

/// The devnet's chain id.
pub(crate) const CHAIN_ID: &str = "kinema-devnet";
/// The devnet relay's bandwidth price per MiB: a ticket (256 KiB, a quarter of this on
/// average) of the least face value that keeps fees ≤ 1 % wins one time in a hundred, and the
/// faucet's gift pays for 100 GiB.
pub(crate) const BANDWIDTH_PRICE: u64 = 1_000_000;
/// What the faucet's uploads and publications may hold on the devnet's relay: 1 TiB.
pub(crate) const FAUCET_QUOTA: u64 = 1 << 40;

/// What the faucet starts with.
pub(crate) const FAUCET_BALANCE: u64 = 1_000_000_000_000_000;
/// What each validator starts with (to pay for reporting misbehaviour).
const VALIDATOR_BALANCE: u64 = 1_000_000_000_000;
/// Blocks per epoch: staking changes the validator set every this many blocks.
const EPOCH_LENGTH: u64 = 100;
/// Each validator's stake, so its voting power.
const VALIDATOR_STAKE: u64 = 1_000_000;

/// What a devnet directory records about its chain (`devnet.json`).
#[derive(Debug, Serialize, Deserialize)]
struct Record {
    chain_id: String,
    genesis_time_ms: u64,
    validators: usize,
    faucet: Address,
}

/// How to run a devnet.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) validators: usize,
    pub(crate) data_dir: PathBuf,
    pub(crate) rpc_port: u16,
    pub(crate) p2p_port: u16,
    /// An empty block at most this often.
    pub(crate) empty_block_interval: Duration,
    /// Past states each validator keeps besides epoch boundaries; `None` keeps all.
    pub(crate) keep_states: Option<u64>,
}

/// A running devnet.
pub(crate) struct Devnet {
    nodes: Vec<(Running, Multiaddr)>,
    addresses: Vec<Address>,
    faucet: Address,
}

fn validator_dir(dir: &Path, i: usize) -> PathBuf {
    dir.join(format!("validator-{i}"))
}

/// Creates the devnet's keys and record (`devnet.json`) in `dir`, or reads them back.
fn prepare(dir: &Path, validators: usize) -> Result<(Record, Vec<SecretKey>)> {
    let record_path = dir.join("devnet.json");
    if record_path.exists() {
        let text = std::fs::read_to_string(&record_path)
            .with_context(|| format!("{}: cannot read", record_path.display()))?;
        let record: Record = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a devnet record", record_path.display()))?;
        if record.validators != validators {
            bail!(
                "{}: this devnet has {} validators, not {validators}; use another --data-dir \
                 for another size",
                dir.display(),
                record.validators
            );
        }
        let keys = (0..validators)
            .map(|i| load_key(&validator_dir(dir, i).join("key.json")))
            .collect::<Result<Vec<_>>>()?;
        return Ok((record, keys));
    }
    if validators == 0 {
        bail!("--validators must be at least 1");
    }
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    let faucet_path = dir.join("faucet.key");
    let faucet = load_or_create_key(&faucet_path)?;
    let mut keys = Vec::with_capacity(validators);
    for i in 0..validators {
        let vdir = validator_dir(dir, i);
        std::fs::create_dir_all(&vdir)
            .with_context(|| format!("{}: cannot create", vdir.display()))?;
        keys.push(load_or_create_key(&vdir.join("key.json"))?);
    }
    let genesis_time_ms =
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    let record =
        Record { chain_id: CHAIN_ID.into(), genesis_time_ms, validators, faucet: faucet.address() };
    // Written last and atomically: a directory without it is started over.
    let tmp = dir.join(".devnet.json.tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(&record)? + "\n")
        .and_then(|()| std::fs::rename(&tmp, &record_path))
        .with_context(|| format!("{}: cannot write", record_path.display()))?;
    Ok((record, keys))
}

impl Devnet {
    /// Starts (or resumes) the devnet in `options.data_dir`.
    pub(crate) async fn start(options: &Options) -> Result<Self> {
        let dir = &options.data_dir;
        let (record, keys) = prepare(dir, options.validators)?;
        let set = ValidatorSet::new(
            keys.iter()
                .map(|k| Validator { public_key: k.public(), power: VALIDATOR_STAKE })
                .collect(),
        )?;
        let mut balances: Vec<(Address, u64)> =
            keys.iter().map(|k| (k.address(), VALIDATOR_BALANCE)).collect();
        balances.push((record.faucet, FAUCET_BALANCE));
        let genesis = Genesis {
            chain_id: record.chain_id.clone(),
            time_ms: record.genesis_time_ms,
            balances,
            validators: set,
            epoch_length: EPOCH_LENGTH,
        };
        let mut identities = Vec::with_capacity(keys.len());
        let mut p2p_addresses = Vec::with_capacity(keys.len());
        for i in 0..keys.len() {
            let seed = load_or_create_key(&validator_dir(dir, i).join("p2p.key"))?.seed();
            let identity = p2p::keypair_from_seed(seed)?;
            let port = u16::try_from(usize::from(options.p2p_port) + i)
                .context("--p2p-port plus the validator count goes past port 65535")?;
            let address: Multiaddr = format!("/ip4/127.0.0.1/tcp/{port}").parse()?;
            p2p_addresses.push(
                address
                    .with_p2p(identity.public().to_peer_id())
                    .map_err(|a| anyhow::anyhow!("{a} already names a peer"))?,
            );
            identities.push(identity);
        }
        let mut devnet = Devnet {
            nodes: Vec::new(),
            addresses: keys.iter().map(SecretKey::address).collect(),
            faucet: record.faucet,
        };
        let text = serde_json::to_string_pretty(&genesis)? + "\n";
        let genesis_path = dir.join("genesis.json");
        let tmp = dir.join(".genesis.json.tmp");
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, &genesis_path))
            .with_context(|| format!("{}: cannot write", genesis_path.display()))?;
        for (i, (key, identity)) in keys.into_iter().zip(identities).enumerate() {
            let port = u16::try_from(usize::from(options.rpc_port) + i)
                .context("--rpc-port plus the validator count goes past port 65535")?;
            let listen: Multiaddr =
                p2p_addresses[i].iter().filter(|p| !matches!(p, Protocol::P2p(_))).collect();
            let peers = p2p_addresses.iter().enumerate().filter(|(j, _)| *j != i);
            let store = validator_dir(dir, i).join("chain.redb");
            let running = Builder::new(&genesis, key, store, identity)
                .listen(vec![listen])
                .peers(peers.map(|(_, a)| a.clone()).collect())
                .rpc(SocketAddr::from(([127, 0, 0, 1], port)))
                .empty_block_interval(options.empty_block_interval)
                .keep_states(options.keep_states)
                .start()
                .await
                .with_context(|| format!("validator {i}"))?;
            devnet.nodes.push((running, p2p_addresses[i].clone()));
        }
        Ok(devnet)
    }

    /// The hash of the genesis block: what a light client of this chain is told to trust.
    pub(crate) fn genesis(&self) -> Result<kinema_chain::Hash> {
        let header = self.node(0).store().header(0)?;
        Ok(header.context("the store has no genesis block")?.hash())
    }

    /// Each validator's RPC address.
    pub(crate) fn rpc(&self) -> impl Iterator<Item = SocketAddr> {
        self.nodes.iter().map(|(n, _)| n.rpc)
    }

    /// Each validator's libp2p address (with its peer id).
    pub(crate) fn p2p_addresses(&self) -> impl Iterator<Item = &Multiaddr> {
        self.nodes.iter().map(|(_, a)| a)
    }

    /// Each validator's address.
    pub(crate) fn addresses(&self) -> &[Address] {
        &self.addresses
    }

    /// The faucet's address.
    pub(crate) fn faucet(&self) -> Address {
        self.faucet
    }

    /// Validator `i`'s node.
    pub(crate) fn node(&self, i: usize) -> &NodeHandle {
        &self.nodes[i].0.node
    }

    /// Waits until a validator stops by itself (an error stopped it) and returns its error.
    pub(crate) async fn failed(&mut self) -> Result<()> {
        loop {
            if let Some(i) = self.nodes.iter().position(|(n, _)| n.node.is_finished()) {
                let result = self.nodes[i].0.node.join().await;
                return result.with_context(|| format!("validator {i}"));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Stops every validator and RPC server.
    pub(crate) async fn stop(self) -> Result<()> {
        for (i, (node, _)) in self.nodes.into_iter().enumerate() {
            node.stop().await.with_context(|| format!("validator {i}"))?;
        }
        Ok(())
    }
}
