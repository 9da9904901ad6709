//! Assembles a full node: its store and consensus engine, the libp2p node it talks over and its
//! RPC server. `kinema node` starts one; `kinema devnet` starts several in one process.
//!
//! ```no_run
//! # async fn run(genesis: kinema_node::app::Genesis, key: kinema_chain::crypto::SecretKey)
//! #     -> Result<(), kinema_node::builder::Error> {
//! use kinema_node::builder::Builder;
//!
//! let identity = libp2p::identity::Keypair::generate_ed25519();
//! let node = Builder::new(&genesis, key, "node/chain.redb".into(), identity)
//!     .listen(vec!["/ip4/127.0.0.1/tcp/26800".parse().unwrap()])
//!     .rpc("127.0.0.1:26660".parse().unwrap())
//!     .start()
//!     .await?;
//! println!("rpc on http://{}", node.rpc);
//! node.stop().await?;
//! # Ok(()) }
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use kinema_chain::crypto::SecretKey;
use kinema_net::p2p::{self, P2p, P2pConfig, P2pError};
use libp2p::Multiaddr;
use libp2p::identity::Keypair;
use tokio::task::JoinHandle;

use crate::app::Genesis;
use crate::consensus::node::NodeHandle;
use crate::consensus::{self, Config};
use crate::link::{self, P2pLink};
use crate::rpc;

/// Why a node could not start or stop.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The RPC's address could not be listened on.
    #[error("cannot listen on {at} for the RPC: {source}")]
    Rpc {
        /// The address.
        at: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The libp2p node did not start.
    #[error(transparent)]
    P2p(#[from] P2pError),
    /// The store or the engine failed.
    #[error("{store}: {source}")]
    Chain {
        /// The store's path.
        store: PathBuf,
        /// What failed.
        source: kinema_chain::Error,
    },
    /// The engine failed while stopping.
    #[error("stopping the node: {0}")]
    Stop(kinema_chain::Error),
}

/// What one node needs: the chain, its key, where it keeps its store, its libp2p identity; and
/// where it listens, whom it dials, where its RPC is, how it paces blocks and prunes states.
#[derive(Debug)]
pub struct Builder<'a> {
    genesis: &'a Genesis,
    key: SecretKey,
    store: PathBuf,
    identity: Keypair,
    listen: Vec<Multiaddr>,
    peers: Vec<Multiaddr>,
    rpc: SocketAddr,
    empty_block_interval: Duration,
    keep_states: Option<u64>,
}

impl<'a> Builder<'a> {
    /// A node of `genesis`'s chain signing with `key` (a validator if the key is one), its
    /// store at `store`, its peer id `identity`'s. By default it listens on no libp2p address,
    /// dials no one, serves its RPC on a free loopback port, makes an empty block at most
    /// every second and keeps every state.
    pub fn new(genesis: &'a Genesis, key: SecretKey, store: PathBuf, identity: Keypair) -> Self {
        Self {
            genesis,
            key,
            store,
            identity,
            listen: Vec::new(),
            peers: Vec::new(),
            rpc: SocketAddr::from(([127, 0, 0, 1], 0)),
            empty_block_interval: Duration::from_secs(1),
            keep_states: None,
        }
    }

    /// Where its libp2p node listens.
    pub fn listen(mut self, listen: Vec<Multiaddr>) -> Self {
        self.listen = listen;
        self
    }

    /// Peers it dials (and redials while unreachable).
    pub fn peers(mut self, peers: Vec<Multiaddr>) -> Self {
        self.peers = peers;
        self
    }

    /// Where its RPC listens.
    pub fn rpc(mut self, at: SocketAddr) -> Self {
        self.rpc = at;
        self
    }

    /// An empty block at most this often.
    pub fn empty_block_interval(mut self, interval: Duration) -> Self {
        self.empty_block_interval = interval;
        self
    }

    /// Past states kept besides epoch boundaries; `None` keeps all.
    pub fn keep_states(mut self, states: Option<u64>) -> Self {
        self.keep_states = states;
        self
    }

    /// Opens the store (a new one from the genesis), starts the engine over a libp2p node and
    /// serves the RPC.
    pub async fn start(self) -> Result<Running, Error> {
        let at = self.rpc;
        let listener =
            tokio::net::TcpListener::bind(at).await.map_err(|source| Error::Rpc { at, source })?;
        let rpc = listener.local_addr().map_err(|source| Error::Rpc { at, source })?;
        let mut config = Config::new(self.key);
        config.empty_block_interval = self.empty_block_interval;
        config.keep_states = self.keep_states;
        let chain_id = &self.genesis.chain_id;
        let (p2p, messages) = p2p::start(P2pConfig {
            listen: self.listen,
            peers: self.peers,
            gossip: link::gossip(chain_id, config.guard.clone()),
            ..P2pConfig::new(self.identity)
        })?;
        let node =
            consensus::start(&self.store, self.genesis, config, P2pLink::new(messages, chain_id))
                .map_err(|source| Error::Chain { store: self.store.clone(), source })?;
        let router = rpc::router(node.client(), chain_id);
        let server = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                tracing::warn!("RPC on {rpc} stopped: {e}");
            }
        });
        Ok(Running { node, p2p, rpc, server })
    }
}

/// A started node.
#[derive(Debug)]
pub struct Running {
    /// Its consensus engine.
    pub node: NodeHandle,
    /// Its libp2p node.
    pub p2p: P2p,
    /// Where its RPC listens.
    pub rpc: SocketAddr,
    server: JoinHandle<()>,
}

impl Running {
    /// Stops its RPC server and its node.
    pub async fn stop(self) -> Result<(), Error> {
        self.server.abort();
        self.node.stop().await.map_err(Error::Stop)
    }

    /// Waits until the node stops by itself (its engine failed), then stops the RPC server.
    pub async fn join(&mut self) -> Result<(), Error> {
        let ended = self.node.join().await;
        self.server.abort();
        ended.map_err(Error::Stop)
    }
}
