//! `kinema node`: one chain node in this process (kinema-node's builder), so validators can
//! run as separate processes on separate hosts; and the key files nodes keep.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use kinema_chain::crypto::SecretKey;
use kinema_net::p2p;
use kinema_node::app::Genesis;
use kinema_node::builder::Builder;
use libp2p::Multiaddr;

use crate::wallet::{load_key, new_key, write_key};

/// The key at `path`; a new one written there when there is none.
pub(crate) fn load_or_create_key(path: &Path) -> Result<SecretKey> {
    if path.exists() {
        return load_key(path);
    }
    let key = new_key()?;
    write_key(path, &key)?;
    Ok(key)
}

/// `kinema node`: one chain node in this process.
#[derive(Debug, Args)]
pub(crate) struct NodeCommand {
    /// Its store, libp2p identity and (unless --key) consensus key live here.
    #[arg(long)]
    data_dir: PathBuf,
    /// The chain's genesis (a devnet writes <dir>/genesis.json).
    #[arg(long)]
    genesis: PathBuf,
    /// The validator key; a node whose key is not a validator's follows the chain without
    /// voting. Default: <data-dir>/key.json, created if missing.
    #[arg(long)]
    key: Option<PathBuf>,
    /// Where its libp2p node listens.
    #[arg(long, default_value = "/ip4/127.0.0.1/tcp/26800")]
    listen: Vec<Multiaddr>,
    /// Peers to dial (a validator's libp2p address, as the devnet prints it).
    #[arg(long)]
    peer: Vec<Multiaddr>,
    /// Where its RPC listens.
    #[arg(long, default_value = "127.0.0.1:26660")]
    rpc: SocketAddr,
    /// Keep the state of only this many recent heights (and of every epoch boundary, which
    /// light clients prove validator sets from); default: every height's.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    keep_states: Option<u64>,
}

pub(crate) fn run(command: NodeCommand) -> Result<()> {
    let text = std::fs::read_to_string(&command.genesis)
        .with_context(|| format!("{}: cannot read the genesis", command.genesis.display()))?;
    let genesis: Genesis = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a Kinema genesis", command.genesis.display()))?;
    std::fs::create_dir_all(&command.data_dir)
        .with_context(|| format!("{}: cannot create", command.data_dir.display()))?;
    let key = match &command.key {
        Some(path) => load_key(path)?,
        None => load_or_create_key(&command.data_dir.join("key.json"))?,
    };
    let identity =
        p2p::keypair_from_seed(load_or_create_key(&command.data_dir.join("p2p.key"))?.seed())?;
    if command.listen.is_empty() {
        bail!("--listen: give at least one address");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let validator = genesis.validators.get(&key.address()).is_some();
        let address = key.address();
        let node = Builder::new(&genesis, key, command.data_dir.join("chain.redb"), identity)
            .listen(command.listen)
            .peers(command.peer)
            .rpc(command.rpc)
            .keep_states(command.keep_states)
            .start()
            .await?;
        let role = if validator { "validator" } else { "full node (not a genesis validator)" };
        say!("node {address}: {role} of chain {}", genesis.chain_id);
        say!("  peer id {}", node.p2p.peer_id());
        for address in node.p2p.listening().await {
            say!("  p2p {address}");
        }
        say!("  rpc http://{}", node.rpc);
        let mut node = node;
        tokio::select! {
            signal = crate::stop_requested() => {
                say!("stopping ({})", signal?);
                node.stop().await.context("stopping the node")
            }
            ended = node.join() => ended.context("the node stopped"),
        }
    })
}
