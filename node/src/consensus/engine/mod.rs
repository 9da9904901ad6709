//! [`MalachiteEngine`]: Malachite's consensus core driving an [`App`].
//!
//! The engine is sans-IO and reads no clock of its own ([`Config::clock`]): `mod.rs` holds the
//! state and the [`Engine`] implementation; [`effects`] answers Malachite's effects, [`wal`]
//! writes and replays the write-ahead log, [`sync`] fetches committed blocks from peers ahead,
//! [`evidence`] reports double signing.

mod effects;
mod evidence;
mod sync;
mod wal;

use wal::WalEntry;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use borsh::{BorshDeserialize, BorshSerialize};
use malachitebft_core_consensus::{
    self as mcc, ConsensusMsg, Effect, Input, LivenessMsg, LocallyProposedValue, Params,
    ProposedValue, Resumable, SignedConsensusMsg, State,
};
use malachitebft_core_types::{
    CertificateError, CommitCertificate, LinearTimeouts, NilOrVal, PolkaCertificate, Round,
    RoundCertificate, RoundCertificateType, SignedProposal, SignedVote, ThresholdParam,
    ThresholdParams, Timeout, TimeoutKind, Validity, ValueOrigin, ValuePayload,
    VoteExtensionPolicy,
};
use tracing::{debug, info, warn};

use super::clock::{Clock, SystemClock};
use super::context::{BlockHash, Ctx, Height, ValidatorAddress, Validators};
use super::guard::{Guard, Refused, View};
use super::{Engine, Message, Output, Peer, ProposedBlock, Status, Timer};
use crate::app::{App, Executed};
use crate::mempool::Refusal;
use kinema_chain::block::{Block, Certificate, CommitSignature};
use kinema_chain::crypto::SecretKey;
use kinema_chain::gossip::Finalized;
use kinema_chain::tx::{Call, Evidence, VerifiedTx};
use kinema_chain::{Address, Error, Hash, PublicKey};

/// The fee a validator offers for reporting a double vote (most of it comes back unburnt).
const EVIDENCE_FEE: u64 = 1_000_000;
/// Blocks of later heights kept until their height starts.
const EARLY_BLOCKS: usize = 64;
/// Blocks re-executed per height at most: anyone can build a valid block, so a peer could
/// otherwise make a validator re-execute without end.
const BLOCKS_PER_HEIGHT: usize = 64;
/// How often a validator checks whether a peer is ahead of it.
const SYNC_EVERY: Duration = Duration::from_millis(500);
/// How long a block request may go unanswered before another peer is asked.
const SYNC_PATIENCE: Duration = Duration::from_secs(2);
/// Blocks one sync answer carries at most, and the bytes after which it takes no more (it
/// always carries one).
const SYNC_BATCH: u64 = 64;
const SYNC_BATCH_BYTES: usize = 4 << 20;
/// How far ahead of a validator's clock a proposed block's time may be for it to vote for it.
/// Times only go forward ([`App::validate`]), so a proposer with a fast clock would otherwise
/// drag the chain's time ahead of the world's.
const MAX_TIME_AHEAD: Duration = Duration::from_secs(5);
/// Peers whose announced heads a node remembers.
const AHEAD_PEERS: usize = 32;

/// How a validator runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Its consensus key (its account's key).
    pub key: SecretKey,
    /// How long a proposer waits for transactions before proposing an empty block.
    pub empty_block_interval: Duration,
    /// How long a proposer with transactions waiting collects more before proposing (unless
    /// a full block's worth waits): a block per transaction would spend the height's fixed
    /// cost — votes, write-ahead log, a durable commit — on each.
    pub batch_window: Duration,
    /// The prevote and precommit timeouts of round 0; each later round waits half of it
    /// longer. The propose timeout adds the empty-block interval.
    pub step_timeout: Duration,
    /// Transactions in a block at most.
    pub max_block_txs: usize,
    /// Transactions the mempool holds at most.
    pub mempool_capacity: usize,
    /// States of past heights kept besides the epoch boundaries' ([`crate::store::Store::keep_states`]);
    /// `None` keeps every one.
    pub keep_states: Option<u64>,
    /// Where it reads the time (the system's clocks but in tests).
    pub clock: Arc<dyn Clock>,
    /// Where it keeps its current view for the gossip layer's checks
    /// ([`super::link`](crate::link)'s registry asks it).
    pub guard: Arc<Guard>,
}

impl Config {
    /// Defaults for `key`: an empty block a second at most, a 50 ms batch window, 1 s steps,
    /// 10,000 transactions a block, 100,000 in the mempool, every state kept.
    pub fn new(key: SecretKey) -> Self {
        Self {
            key,
            empty_block_interval: Duration::from_secs(1),
            batch_window: Duration::from_millis(50),
            step_timeout: Duration::from_secs(1),
            max_block_txs: 10_000,
            mempool_capacity: 100_000,
            keep_states: None,
            clock: Arc::new(SystemClock),
            guard: Arc::new(Guard::new()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum TimerKind {
    Step(Timeout),
    Batch,
    EmptyBlock,
    Sync,
}

/// A validator deciding blocks with Malachite's Tendermint core.
pub struct MalachiteEngine {
    consensus: State<Ctx>,
    shell: Shell,
}

impl std::fmt::Debug for MalachiteEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MalachiteEngine")
            .field("address", &self.shell.address)
            .field("height", &self.consensus.height())
            .field("round", &self.consensus.round())
            .finish_non_exhaustive()
    }
}

/// Everything but Malachite's state: what answers its effects.
struct Shell {
    ctx: Ctx,
    config: Config,
    address: Address,
    app: App,
    timeouts: LinearTimeouts,
    validators: Validators,
    /// What messages of the height are checked against (the guard holds a copy).
    view: View,
    out: Vec<Output>,
    /// Blocks of the height being decided that execute, by header hash.
    blocks: HashMap<Hash, Executed>,
    /// Those that do not.
    invalid: HashSet<Hash>,
    /// The blocks this validator built, by round.
    own: BTreeMap<Round, Hash>,
    /// Blocks for later heights.
    early: VecDeque<ProposedBlock>,
    /// The round Malachite asked this validator to propose in.
    to_propose: Option<(Height, Round)>,
    batch_due: bool,
    empty_block_due: bool,
    /// A height Malachite finalized; the next one starts once its block is committed.
    finalized: Option<Height>,
    replaying: bool,
    /// An error that stops the validator (the store failed).
    fatal: Option<Error>,
    /// The heads peers announced (the latest each), at most [`AHEAD_PEERS`].
    ahead: HashMap<Peer, u64>,
    /// The peer last asked for blocks, the first height asked, and when.
    requested: Option<(Peer, u64, Instant)>,
}

impl MalachiteEngine {
    /// A validator for `app`'s chain with `config`'s key. It may be a validator of the genesis
    /// set or not (then it follows the chain without voting).
    pub fn new(app: App, config: Config) -> Result<Self, Error> {
        let ctx = Ctx::new(app.chain_id());
        let head = app.head()?;
        let set = app.validators_at(head.height + 1)?;
        let validators = Validators::new(set.clone(), head.block)?;
        let view = View::new(app.chain_id(), head.height + 1, set, head.block, app.epoch_length());
        config.guard.set(view.clone());
        let address = config.key.address();
        let params = Params {
            address: ValidatorAddress(address),
            threshold_params: ThresholdParams::default(),
            value_payload: ValuePayload::ProposalAndParts,
            enabled: true,
        };
        let consensus = State::new(
            ctx.clone(),
            Height(head.height + 1),
            validators.clone(),
            params,
            4096,
            1024,
        );
        let step = config.step_timeout;
        let timeouts = LinearTimeouts {
            propose: step + config.empty_block_interval,
            propose_delta: step / 2,
            prevote: step,
            prevote_delta: step / 2,
            precommit: step,
            precommit_delta: step / 2,
            rebroadcast: 3 * step + config.empty_block_interval,
            max_timeout: Duration::from_secs(60),
        };
        let shell = Shell {
            ctx,
            config,
            address,
            app,
            timeouts,
            validators,
            view,
            out: Vec::new(),
            blocks: HashMap::new(),
            invalid: HashSet::new(),
            own: BTreeMap::new(),
            early: VecDeque::new(),
            to_propose: None,
            batch_due: false,
            empty_block_due: false,
            finalized: None,
            replaying: false,
            fatal: None,
            ahead: HashMap::new(),
            requested: None,
        };
        Ok(Self { consensus, shell })
    }

    /// Feeds one input to Malachite, answering the effects it yields.
    fn feed(&mut self, input: Input<Ctx>) {
        let shell = &mut self.shell;
        let result: Result<(), mcc::Error<Ctx>> = mcc::process!(
            input: input,
            state: &mut self.consensus,
            metrics: &(),
            with: effect => shell.handle(effect)
        );
        if let Err(e) = result {
            warn!(validator = %self.shell.address, "consensus refused an input: {e}");
        }
    }

    /// Starts deciding `height` (the head's next), replaying its write-ahead log if this
    /// validator already took part in it.
    fn start_height(&mut self, height: u64) -> Result<(), Error> {
        let head = self.shell.app.head()?;
        debug_assert_eq!(head.height + 1, height);
        let set = self.shell.app.validators_at(height)?;
        let validators = Validators::new(set.clone(), head.block)?;
        let shell = &mut self.shell;
        let epoch_length = shell.app.epoch_length();
        shell.view = View::new(shell.app.chain_id(), height, set, head.block, epoch_length);
        shell.config.guard.set(shell.view.clone());
        shell.validators = validators.clone();
        shell.blocks.clear();
        shell.invalid.clear();
        shell.own.clear();
        shell.to_propose = None;
        shell.batch_due = false;
        shell.empty_block_due = false;
        let mut wal = Vec::new();
        for bytes in shell.app.store().wal(height)? {
            wal.push(kinema_chain::decode::<WalEntry>(&bytes)?);
        }
        let restart = !wal.is_empty();
        let policy = VoteExtensionPolicy::Disabled;
        self.feed(Input::StartHeight(Height(height), validators, restart, None, policy));
        if restart {
            info!(validator = %self.shell.address, height, entries = wal.len(), "replaying the write-ahead log");
            let mut blocks = Vec::new();
            let mut inputs = Vec::new();
            for entry in wal {
                match entry {
                    WalEntry::Block(block) => blocks.push(block),
                    other => inputs.extend(other.input()),
                }
            }
            self.shell.replaying = true;
            for block in &blocks {
                self.shell.accept(block)?;
            }
            self.consensus.index_wal_entries(inputs.iter());
            for input in inputs {
                self.feed(input);
            }
            self.consensus.reset_entries_index();
            self.shell.replaying = false;
        }
        let early: Vec<ProposedBlock> = self.shell.early.drain(..).collect();
        for block in early {
            if self.shell.view.check_block(&block).is_ok() {
                self.on_block_checked(block)?;
            }
        }
        Ok(())
    }

    fn on_block(&mut self, from: Peer, proposed: ProposedBlock) -> Result<(), Error> {
        let height = proposed.block.header.height;
        let current = self.consensus.height().0;
        if height < current {
            return Ok(());
        }
        match self.shell.view.check_block(&proposed) {
            Ok(()) => {}
            Err(Refused::Ignore(why)) => {
                debug!(validator = %self.shell.address, ?from, "block ignored: {why}");
                return Ok(());
            }
            Err(Refused::Lie(why)) => {
                // Only a liar makes a block its round's proposer did not sign; it costs nothing
                // but this check, and the peer that sent it is not listened to again.
                warn!(validator = %self.shell.address, ?from, "block refused: {why}");
                self.shell.out.push(Output::Penalize(from));
                return Ok(());
            }
        }
        self.on_block_checked(proposed)
    }

    /// A block whose signature was checked: kept for the next height, or validated now.
    fn on_block_checked(&mut self, proposed: ProposedBlock) -> Result<(), Error> {
        let height = proposed.block.header.height;
        let current = self.consensus.height().0;
        if height > current {
            if self.shell.early.len() == EARLY_BLOCKS {
                self.shell.early.pop_front();
            }
            self.shell.early.push_back(proposed);
            return Ok(());
        }
        let Some(validity) = self.shell.accept(&proposed)? else {
            return Ok(());
        };
        let value = ProposedValue {
            height: Height(height),
            round: proposed.round,
            valid_round: proposed.pol_round,
            proposer: ValidatorAddress(proposed.proposer),
            value: BlockHash(proposed.block.header.hash()),
            validity,
        };
        self.feed(Input::ProposedValue(value, ValueOrigin::Consensus));
        Ok(())
    }

    /// Runs what Malachite's effects left to do, and returns what the runner must do.
    fn settle(&mut self) -> Result<Vec<Output>, Error> {
        loop {
            if let Some(e) = self.shell.fatal.take() {
                return Err(e);
            }
            if let Some(height) = self.shell.finalized.take() {
                let head = self.shell.app.head()?;
                if head.height >= height.0 {
                    self.start_height(head.height + 1)?;
                } else {
                    // Decided without its block: fetch it from whoever committed it.
                    warn!(validator = %self.shell.address, height = height.0, "decided a block it never received; asking peers");
                    self.shell.broadcast(&Message::SyncRequest { height: height.0 });
                }
                continue;
            }
            if let Some((height, round)) = self.shell.to_propose {
                let shell = &self.shell;
                let waiting = shell.app.pending_transactions();
                let ready = round > Round::ZERO
                    || shell.empty_block_due
                    || (shell.batch_due && waiting > 0)
                    || waiting >= shell.config.max_block_txs
                    || shell.own.contains_key(&round);
                if ready {
                    self.shell.to_propose = None;
                    let block = self.shell.build(round)?;
                    self.feed(Input::Propose(LocallyProposedValue::new(
                        height,
                        round,
                        BlockHash(block),
                    )));
                    continue;
                }
            }
            break;
        }
        Ok(std::mem::take(&mut self.shell.out))
    }
}

impl Engine for MalachiteEngine {
    fn start(&mut self) -> Result<Vec<Output>, Error> {
        let head = self.shell.app.head()?;
        self.start_height(head.height + 1)?;
        self.shell.out.push(Output::Schedule(Timer(TimerKind::Sync), SYNC_EVERY));
        self.settle()
    }

    fn on_message(&mut self, from: Peer, bytes: &[u8]) -> Result<Vec<Output>, Error> {
        let message = match kinema_chain::decode::<Message>(bytes) {
            Ok(message) => message,
            Err(e) => {
                debug!(validator = %self.shell.address, ?from, "undecodable message: {e}");
                return Ok(Vec::new());
            }
        };
        match message {
            Message::Consensus(SignedConsensusMsg::Vote(vote))
            | Message::Liveness(LivenessMsg::Vote(vote)) => self.feed(Input::Vote(vote)),
            Message::Consensus(SignedConsensusMsg::Proposal(proposal)) => {
                self.feed(Input::Proposal(proposal));
            }
            Message::Liveness(LivenessMsg::PolkaCertificate(c)) => {
                self.feed(Input::PolkaCertificate(c));
            }
            Message::Liveness(LivenessMsg::SkipRoundCertificate(c)) => {
                self.feed(Input::RoundCertificate(c));
            }
            Message::Block(block) => self.on_block(from, block)?,
            Message::Tx(bytes) => {
                if let Err(refusal) = self.shell.app.submit(&bytes)? {
                    debug!(validator = %self.shell.address, "gossiped transaction refused: {refusal}");
                }
            }
            Message::Finalized(heard) => {
                // Only a hint of where the chain is: what is fetched because of it is checked.
                self.shell.heard_head(from, &heard);
            }
            Message::SyncRequest { height } => {
                let blocks = self.shell.committed_from(height)?;
                if !blocks.is_empty() {
                    let reply = Message::SyncResponse { blocks };
                    self.shell.out.push(Output::Send(from, kinema_chain::encode(&reply)));
                }
            }
            Message::SyncResponse { blocks } => self.on_synced(from, blocks)?,
        }
        self.settle()
    }

    fn on_timer(&mut self, timer: Timer) -> Result<Vec<Output>, Error> {
        match timer.0 {
            TimerKind::Step(timeout) => self.feed(Input::TimeoutElapsed(timeout)),
            TimerKind::Batch => self.shell.batch_due = true,
            TimerKind::EmptyBlock => self.shell.empty_block_due = true,
            TimerKind::Sync => {
                self.shell.request_blocks();
                self.shell.out.push(Output::Schedule(Timer(TimerKind::Sync), SYNC_EVERY));
            }
        }
        self.settle()
    }

    fn submit(&mut self, tx: VerifiedTx) -> Result<(Result<Hash, Refusal>, Vec<Output>), Error> {
        let bytes = kinema_chain::encode(&*tx);
        let admitted = self.shell.app.submit_verified(tx)?;
        if admitted.is_ok() {
            self.shell.broadcast(&Message::Tx(bytes));
        }
        Ok((admitted, self.settle()?))
    }

    fn status(&self) -> Result<Status, Error> {
        let head = self.shell.app.head()?;
        Ok(Status {
            height: head.height,
            block: head.block,
            state_root: head.state_root,
            consensus_height: self.consensus.height().0,
            round: self.consensus.round().as_u32().unwrap_or(0),
            address: self.shell.address,
            pending_transactions: self.shell.app.pending_transactions(),
        })
    }
}

impl Shell {
    fn broadcast(&mut self, message: &Message) {
        self.out.push(Output::Broadcast(message.topic(), kinema_chain::encode(message)));
    }

    /// Re-executes a block of the current height (once), logging the ones that execute.
    /// `None` when this height has seen too many blocks to look at another.
    fn accept(&mut self, proposed: &ProposedBlock) -> Result<Option<Validity>, Error> {
        let hash = proposed.block.header.hash();
        if self.blocks.contains_key(&hash) {
            return Ok(Some(Validity::Valid));
        }
        if self.invalid.contains(&hash) {
            return Ok(Some(Validity::Invalid));
        }
        if self.blocks.len() + self.invalid.len() >= BLOCKS_PER_HEIGHT {
            return Ok(None);
        }
        let time_ms = proposed.block.header.time_ms;
        let now = self.config.clock.unix_ms();
        if time_ms > now + MAX_TIME_AHEAD.as_millis() as u64 {
            warn!(validator = %self.address, "block {hash} is {} ms ahead of this clock", time_ms - now);
            self.invalid.insert(hash);
            return Ok(Some(Validity::Invalid));
        }
        let built_in = proposed.pol_round.as_u32().unwrap_or(proposed.round.as_u32().unwrap_or(0));
        let author = self.view.proposer(built_in);
        match self.app.validate(proposed.block.clone(), author)? {
            Ok(executed) => {
                self.wal(proposed.block.header.height, &WalEntry::Block(proposed.clone()));
                if proposed.proposer == self.address {
                    self.own.insert(proposed.round, hash);
                }
                self.blocks.insert(hash, executed);
                Ok(Some(Validity::Valid))
            }
            Err(why) => {
                warn!(validator = %self.address, "block {hash} does not execute: {why}");
                self.invalid.insert(hash);
                Ok(Some(Validity::Invalid))
            }
        }
    }

    /// The block this validator proposes in `round`: the one it built for that round before
    /// a restart, or a new one from its mempool, broadcast.
    fn build(&mut self, round: Round) -> Result<Hash, Error> {
        if let Some(hash) = self.own.get(&round) {
            return Ok(*hash);
        }
        let executed = self.app.propose(
            self.address,
            self.config.clock.unix_ms(),
            self.config.max_block_txs,
        )?;
        let block = executed.block.clone();
        let hash = block.header.hash();
        let chain_id = self.app.chain_id().to_owned();
        let proposed = ProposedBlock::signed(&chain_id, round, Round::Nil, block, &self.config.key);
        self.wal(proposed.block.header.height, &WalEntry::Block(proposed.clone()));
        self.broadcast(&Message::Block(proposed));
        self.own.insert(round, hash);
        self.blocks.insert(hash, executed);
        Ok(hash)
    }

    /// Commits `executed`; `announce` publishes its header and certificate on the headers
    /// topic.
    fn commit(
        &mut self,
        executed: Executed,
        certificate: &Certificate,
        announce: bool,
    ) -> Result<crate::store::Head, Error> {
        let txs = executed.block.txs.len();
        let header = announce.then(|| executed.block.header.clone());
        let head = self.app.commit(executed, Some(certificate))?;
        debug!(validator = %self.address, height = head.height, txs, "committed");
        self.out.push(Output::Committed(head.clone()));
        if let Some(header) = header {
            let certificate = certificate.clone();
            self.broadcast(&Message::Finalized(Finalized { header, certificate }));
        }
        Ok(head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::Genesis;
    use kinema_chain::Signature;
    use kinema_chain::block::{Validator, ValidatorSet};

    const CHAIN: &str = "kinema-engine-test";

    /// An engine whose chain has one validator, `key`, with its store in `dir`.
    fn engine(dir: &tempfile::TempDir, key: &SecretKey) -> MalachiteEngine {
        let validators = ValidatorSet::new(vec![Validator { public_key: key.public(), power: 1 }])
            .expect("a validator set");
        let genesis = Genesis {
            chain_id: CHAIN.into(),
            time_ms: 0,
            balances: Vec::new(),
            validators,
            epoch_length: 100,
        };
        let app = App::open(&dir.path().join("chain.redb"), &genesis, 10).expect("a store");
        MalachiteEngine::new(app, Config::new(key.clone())).expect("an engine")
    }

    #[test]
    fn a_block_from_too_far_ahead_is_voted_against() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let key = SecretKey::from_seed([7; 32]);
        let mut engine = engine(&dir, &key);
        let shell = &mut engine.shell;
        let block_at = |shell: &Shell, time_ms| {
            let block = shell.app.propose(key.address(), time_ms, 10).expect("a block").block;
            ProposedBlock::signed(CHAIN, Round::new(0), Round::Nil, block, &key)
        };
        let ahead = MAX_TIME_AHEAD.as_millis() as u64;
        let clock = shell.config.clock.unix_ms();
        let now = block_at(shell, clock + ahead / 2);
        let future = block_at(shell, clock + 2 * ahead);
        assert_eq!(shell.accept(&future).expect("no store error"), Some(Validity::Invalid));
        assert_eq!(shell.accept(&now).expect("no store error"), Some(Validity::Valid));
    }

    #[test]
    fn blocks_their_rounds_proposer_did_not_sign_are_refused_unexecuted() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let key = SecretKey::from_seed([7; 32]);
        let chain = CHAIN;
        let mut engine = engine(&dir, &key);
        let now = engine.shell.config.clock.unix_ms();
        let block = |engine: &MalachiteEngine, ms| {
            engine.shell.app.propose(key.address(), now + ms, 10).expect("a block").block
        };
        let (liar, junk) = (Peer(5), SecretKey::from_seed([9; 32]));
        // A flood of well-formed blocks signed by someone who is not the round's proposer, and
        // one that claims the proposer with a made-up signature: none is executed, none counts
        // against the height's budget, and their sender is penalized.
        for ms in 0..(2 * BLOCKS_PER_HEIGHT as u64) {
            let part =
                ProposedBlock::signed(chain, Round::new(0), Round::Nil, block(&engine, ms), &junk);
            engine.on_block(liar, part).expect("no store error");
        }
        let mut forged =
            ProposedBlock::signed(chain, Round::new(0), Round::Nil, block(&engine, 999), &key);
        forged.signature = Signature([1; 64]);
        engine.on_block(liar, forged).expect("no store error");
        assert!(engine.shell.blocks.is_empty() && engine.shell.invalid.is_empty());
        let penalties =
            engine.shell.out.iter().filter(|o| matches!(o, Output::Penalize(p) if *p == liar));
        assert_eq!(penalties.count(), 2 * BLOCKS_PER_HEIGHT + 1);
        // The proposer's own block is still taken.
        let real = ProposedBlock::signed(chain, Round::new(0), Round::Nil, block(&engine, 5), &key);
        engine.on_block(Peer(1), real).expect("no store error");
        assert_eq!(engine.shell.blocks.len(), 1);
    }
}
