//! Consensus: Malachite's Tendermint core deciding Kinema's blocks.
//!
//! The engine is sans-IO: it takes messages, timer expiries and transactions, and answers with
//! [`Output`]s — bytes to broadcast or send to one peer, timers to set or cancel, blocks
//! committed. [`node`] runs an engine on tokio over any [`node::Transport`]: [`node::Hub`] is
//! the in-process one of this crate's tests, kinema-node's libp2p link the one of real
//! networks (and of `kinema chain devnet`). Anything that speaks [`Engine`] can replace
//! Malachite.
//!
//! How a height is decided ([`MalachiteEngine`]):
//! 1. Malachite asks the round's proposer (drawn by stake from the hash of the last finalized
//!    block) for a value. The proposer builds a block from its mempool — after a short batch
//!    window when transactions wait (at once when a full block waits), after the empty-block
//!    interval otherwise — broadcasts it, and proposes its header hash.
//! 2. Every validator re-executes a block it receives ([`crate::app::App::validate`]) and
//!    tells Malachite whether it is valid; Malachite prevotes and precommits.
//! 3. Precommits from more than 2/3 of the stake decide it: the block is committed with those
//!    signatures as its [`kinema_chain::block::Certificate`].
//! 4. Double votes Malachite saw during the height become evidence transactions, which slash
//!    the offender's stake once included.
//!
//! Everything consensus receives or signs for the current height goes to a write-ahead log in
//! the store before it acts on it; a validator that restarts replays it and signs nothing that
//! contradicts what it signed before. A validator that is behind (it restarted, or missed a
//! height) fetches each missing block with its certificate from a peer that announced a higher
//! head, checks the certificate, re-executes the block and commits it.

pub mod clock;
pub mod context;
mod engine;
pub mod guard;
pub mod node;

use std::path::Path;
use std::time::Duration;

use borsh::{BorshDeserialize, BorshSerialize};
use malachitebft_core_consensus::{LivenessMsg, SignedConsensusMsg};
use malachitebft_core_types::Round;

pub use engine::{Config, MalachiteEngine};
use node::{NodeHandle, Transport};

use crate::app::{App, Genesis};
use crate::mempool::Refusal;
use crate::store::Head;
use context::Ctx;
use kinema_chain::block::{self as chain, Block, Certificate};
use kinema_chain::crypto::{Domain, SecretKey};
use kinema_chain::gossip::Finalized;
pub use kinema_chain::gossip::Topic;
use kinema_chain::tx::VerifiedTx;
use kinema_chain::{Address, Error, Hash, PublicKey, Signature};

/// A peer on the consensus network, as the transport names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Peer(pub u64);

/// A timer an engine set; the runner hands it back when it expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timer(engine::TimerKind);

impl Timer {
    /// Whether it is one of the consensus steps' timeouts (which [`Output::CancelAll`] clears).
    pub fn is_step(&self) -> bool {
        matches!(self.0, engine::TimerKind::Step(_))
    }
}

/// What an engine asks its runner to do.
#[derive(Debug)]
pub enum Output {
    /// Send these bytes to every peer following the topic.
    Broadcast(Topic, Vec<u8>),
    /// Send these bytes to one peer.
    Send(Peer, Vec<u8>),
    /// Hand this timer back after this long (replacing it if set).
    Schedule(Timer, Duration),
    /// Forget this timer.
    Cancel(Timer),
    /// Forget every consensus timer.
    CancelAll,
    /// A block was committed.
    Committed(Head),
    /// This peer sent what only a liar sends (a block no proposer signed): stop listening to
    /// it.
    Penalize(Peer),
}

/// Where a validator stands.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Status {
    /// The last committed block.
    pub height: u64,
    /// Its hash.
    pub block: Hash,
    /// The state root after it.
    pub state_root: Hash,
    /// The height being decided.
    pub consensus_height: u64,
    /// Its round.
    pub round: u32,
    /// This validator.
    pub address: Address,
    /// Transactions waiting.
    pub pending_transactions: usize,
}

/// A consensus engine: the part of a validator that decides blocks.
pub trait Engine: Send + 'static {
    /// Starts (or resumes) deciding the next height.
    fn start(&mut self) -> Result<Vec<Output>, Error>;

    /// Handles bytes a peer sent.
    fn on_message(&mut self, from: Peer, bytes: &[u8]) -> Result<Vec<Output>, Error>;

    /// Handles an expired timer.
    fn on_timer(&mut self, timer: Timer) -> Result<Vec<Output>, Error>;

    /// Admits a transaction and gossips it.
    fn submit(&mut self, tx: VerifiedTx) -> Result<(Result<Hash, Refusal>, Vec<Output>), Error>;

    /// Where it stands.
    fn status(&self) -> Result<Status, Error>;
}

/// What every node does to start: opens the store at `path` (a new one from `genesis`) and
/// runs a Malachite validator with `config` over `transport`. A node whose key is not a
/// validator's follows the chain without voting.
pub fn start<T: Transport>(
    path: &Path,
    genesis: &Genesis,
    config: Config,
    transport: T,
) -> Result<NodeHandle, Error> {
    let app = App::open(path, genesis, config.mempool_capacity)?;
    app.store().keep_states(config.keep_states);
    let store = app.store().clone();
    let engine = MalachiteEngine::new(app, config)?;
    NodeHandle::spawn(engine, transport, store)
}

/// What validators send each other.
#[derive(Debug, Clone, BorshSerialize, BorshDeserialize)]
pub enum Message {
    /// A signed proposal or vote.
    Consensus(SignedConsensusMsg<Ctx>),
    /// A rebroadcast vote or a round's certificate, to get a stuck round going.
    Liveness(LivenessMsg<Ctx>),
    /// The block a proposal names.
    Block(ProposedBlock),
    /// A transaction (its canonical bytes) for the mempools.
    Tx(Vec<u8>),
    /// A block just committed, announced on [`Topic::Headers`] for light clients; it tells
    /// validators behind it how far the chain is. Its tag is [`kinema_chain::gossip::FINALIZED_TAG`].
    Finalized(Finalized),
    /// Asks for the committed blocks from a height on, with their certificates.
    SyncRequest {
        /// The first height.
        height: u64,
    },
    /// Consecutive committed blocks, each with its certificate (up to 64, or fewer when
    /// they are large or the chain ends).
    SyncResponse {
        /// The blocks, lowest first.
        blocks: Vec<(Block, Certificate)>,
    },
}

impl Message {
    /// The topic it is gossiped on.
    pub fn topic(&self) -> Topic {
        match self {
            Message::Tx(_) => Topic::Transactions,
            Message::Finalized(_) => Topic::Headers,
            _ => Topic::Consensus,
        }
    }
}

/// A block as its round's proposer streams it, signed as that round's proposal: a node acts on
/// it only when the signature is the round's proposer's, so no one else can make it execute
/// blocks (nor fill the blocks it executes per height).
#[derive(Debug, Clone, BorshSerialize, BorshDeserialize)]
pub struct ProposedBlock {
    /// The round.
    pub round: Round,
    /// The polka round it carries over from, or [`Round::Nil`].
    pub pol_round: Round,
    /// The round's proposer (not always the block's author: a block can be re-proposed).
    pub proposer: Address,
    /// The block.
    pub block: Block,
    /// The proposer's signature over the chain's proposal of the block in this round
    /// ([`kinema_chain::block::Proposal`], proposal domain): the signature its proposal carries.
    pub signature: Signature,
}

impl ProposedBlock {
    /// `block` proposed in `round` (carried over from `pol_round`), signed with `key`.
    pub fn signed(
        chain_id: &str,
        round: Round,
        pol_round: Round,
        block: Block,
        key: &SecretKey,
    ) -> Self {
        let proposal = Self::proposal(chain_id, round, pol_round, &block);
        let signature = key.sign(Domain::Proposal, &kinema_chain::encode(&proposal));
        Self { round, pol_round, proposer: key.address(), block, signature }
    }

    fn proposal(chain_id: &str, round: Round, pol_round: Round, block: &Block) -> chain::Proposal {
        chain::Proposal {
            chain_id: chain_id.to_owned(),
            height: block.header.height,
            round: round.as_u32().unwrap_or(0),
            block: block.header.hash(),
            pol_round: pol_round.as_u32(),
        }
    }

    /// Whether its signature is `key`'s.
    pub fn check(&self, chain_id: &str, key: &PublicKey) -> bool {
        let proposal = Self::proposal(chain_id, self.round, self.pol_round, &self.block);
        key.verify(Domain::Proposal, &kinema_chain::encode(&proposal), &self.signature).is_ok()
    }
}
