//! The application a consensus engine drives: propose a block from the mempool, validate a
//! block someone else proposed by re-executing it, commit a decided block.
//!
//! [`crate::consensus`] calls it. Every node that validates and commits the same blocks reaches
//! the same state root at every height.

use std::path::Path;
use std::sync::Arc;

use crate::mempool::{Mempool, Refusal};
use crate::store::{Head, Pending, Store};
use crate::wasm::Host;
use kinema_chain::block::{Block, Certificate, Header, ValidatorSet, tx_root};
use kinema_chain::contract::StateView;
use kinema_chain::crypto::SecretKey;
use kinema_chain::execute::{Executor, Overlay, Receipt, StateSource};
use kinema_chain::state::account_key;
use kinema_chain::tx::{Account, Call, SignedTx, Tx, VerifiedTx};
use kinema_chain::{Address, Error, Hash, PublicKey, epoch};

/// The chain's first state (in JSON, what nodes of one chain share).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Genesis {
    /// The chain id.
    pub chain_id: String,
    /// Genesis time, milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// Funded accounts.
    pub balances: Vec<(Address, u64)>,
    /// The validators of the first epoch (their hash goes into its headers); each one's
    /// account starts with its power as stake.
    pub validators: ValidatorSet,
    /// Blocks per epoch: the validator set changes every this many blocks.
    pub epoch_length: u64,
}

/// Why a proposed block is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Invalid {
    /// It does not extend the head.
    #[error("block {height} does not extend the head: {why}")]
    NotNext {
        /// Its height.
        height: u64,
        /// What does not match.
        why: String,
    },
    /// Its time is not after its parent's.
    #[error("its time {time_ms} ms is not after its parent's {parent_ms} ms")]
    Time {
        /// Its time.
        time_ms: u64,
        /// Its parent's.
        parent_ms: u64,
    },
    /// A transaction in it is not executable.
    #[error("transaction {index} is not executable: {why}")]
    Transaction {
        /// Its position.
        index: usize,
        /// The executor's reason.
        why: String,
    },
    /// Its encoding is over [`MAX_BLOCK_BYTES`].
    #[error("it is {bytes} bytes, over the {MAX_BLOCK_BYTES}-byte limit")]
    TooLarge {
        /// Its size.
        bytes: usize,
    },
    /// Its header names another proposer than the one of the round it was built in.
    #[error("its header names proposer {found}; the round's proposer is {expected}")]
    Proposer {
        /// The round's proposer.
        expected: Address,
        /// The header's.
        found: Address,
    },
    /// Its header does not commit to what executing it gives.
    #[error("its {field} is {found}, executing it gives {expected}")]
    Mismatch {
        /// `state_root`, `tx_root` or `validator_set_hash`.
        field: &'static str,
        /// What executing gives.
        expected: Hash,
        /// What the header says.
        found: Hash,
    },
}

/// The largest block, encoded: well inside a gossip message (16 MiB) and a sync answer's budget.
pub const MAX_BLOCK_BYTES: usize = 4 << 20;

/// A block ready to be committed, with what executing it did.
#[derive(Debug)]
pub struct Executed {
    /// The block.
    pub block: Block,
    /// One receipt per transaction.
    pub receipts: Vec<Receipt>,
    pending: Pending,
}

/// A node's chain application.
#[derive(Debug)]
pub struct App {
    chain_id: String,
    /// Blocks per epoch, as the state records it.
    epoch_length: u64,
    store: Arc<Store>,
    executor: Executor,
    mempool: Mempool,
}

impl App {
    /// Opens the chain stored at `path`; a new store starts from `genesis`.
    pub fn open(path: &Path, genesis: &Genesis, mempool_capacity: usize) -> Result<Self, Error> {
        let store = Arc::new(Store::open(path)?);
        let mut app = Self {
            chain_id: genesis.chain_id.clone(),
            epoch_length: genesis.epoch_length.max(1),
            executor: Executor::new(&genesis.chain_id, Arc::new(Host::new()?)),
            mempool: Mempool::new(mempool_capacity),
            store,
        };
        if app.store.head()?.is_none() {
            let mut accounts = std::collections::BTreeMap::<Address, Account>::new();
            for (address, balance) in &genesis.balances {
                accounts.entry(*address).or_default().balance += balance;
            }
            for v in genesis.validators.validators() {
                accounts.entry(Address::of(&v.public_key)).or_default().stake += v.power;
            }
            let mut state = Overlay::new(None, None);
            for (address, account) in &accounts {
                state.set(account_key(address), Some(kinema_chain::encode(account)));
            }
            let mut stakers: Vec<(Address, PublicKey)> = genesis
                .validators
                .validators()
                .iter()
                .map(|v| (Address::of(&v.public_key), v.public_key))
                .collect();
            stakers.sort();
            state.set(epoch::STAKERS_KEY.to_vec(), Some(kinema_chain::encode(&stakers)));
            state.set(epoch::validator_set_key(0), Some(kinema_chain::encode(&genesis.validators)));
            let length = kinema_chain::encode(&app.epoch_length);
            state.set(epoch::EPOCH_LENGTH_KEY.to_vec(), Some(length));
            let pending = app.store.prepare(state.into_changes())?;
            let header = Header {
                chain_id: genesis.chain_id.clone(),
                height: 0,
                parent: Hash::ZERO,
                time_ms: genesis.time_ms,
                proposer: Address([0; 20]),
                state_root: pending.root(),
                tx_root: tx_root(&[]),
                validator_set_hash: genesis.validators.hash(),
            };
            app.store.commit(pending, &Block { header, txs: Vec::new() }, None)?;
        }
        // A store opened again keeps the epoch length its genesis wrote.
        app.epoch_length = app.store.epoch_length()?;
        Ok(app)
    }

    /// The time of `head`'s block.
    fn head_time(&self, head: &Head) -> Result<u64, Error> {
        let header = self.store.header(head.height)?.ok_or(Error::Store {
            what: "reading the head's header",
            detail: format!("block {} is missing", head.height),
        })?;
        Ok(header.time_ms)
    }

    /// The last committed block.
    pub fn head(&self) -> Result<Head, Error> {
        self.store.head()?.ok_or(Error::Store {
            what: "reading the head",
            detail: "the store has no genesis block".into(),
        })
    }

    /// The store.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The chain id.
    pub fn chain_id(&self) -> &str {
        &self.chain_id
    }

    /// Blocks per epoch.
    pub fn epoch_length(&self) -> u64 {
        self.epoch_length
    }

    /// The validators of the epoch of block `height` (at most the head's next).
    pub fn validators_at(&self, height: u64) -> Result<ValidatorSet, Error> {
        self.store.validators_at(height)
    }

    /// At the last block of an epoch, writes the next epoch's validator set into `state`.
    fn close_epoch(
        &self,
        height: u64,
        current: &ValidatorSet,
        state: &mut Overlay,
    ) -> Result<(), Error> {
        if !epoch::is_last_of_epoch(height, self.epoch_length) {
            return Ok(());
        }
        let stakers: Vec<(Address, PublicKey)> = match state.get(epoch::STAKERS_KEY)? {
            Some(bytes) => kinema_chain::decode(&bytes)?,
            None => Vec::new(),
        };
        let next = epoch::next_set(&stakers, |a| Ok(state.account(a)?.stake), current)?;
        let key = epoch::validator_set_key(epoch::epoch_of(height, self.epoch_length) + 1);
        state.set(key, Some(kinema_chain::encode(&next)));
        Ok(())
    }

    /// The state after the head.
    fn head_state(&self) -> Result<(Head, Overlay), Error> {
        let head = self.head()?;
        let store: Arc<dyn StateSource> = self.store.clone();
        let state = Overlay::new(Some(store), Some(head.height));
        Ok((head, state))
    }

    /// Admits a transaction received as bytes into the mempool.
    pub fn submit(&mut self, bytes: &[u8]) -> Result<Result<Hash, Refusal>, Error> {
        let (_, state) = self.head_state()?;
        self.mempool.add_bytes(&self.executor, &state, bytes)
    }

    /// Admits a transaction whose signature was checked (off the consensus thread) into the
    /// mempool.
    pub fn submit_verified(&mut self, tx: VerifiedTx) -> Result<Result<Hash, Refusal>, Error> {
        let (_, state) = self.head_state()?;
        self.mempool.add_verified(&self.executor, &state, tx)
    }

    /// Signs `call` with `key` at the sender's next nonce (past what it has queued) and admits
    /// it into the mempool.
    pub fn submit_call(
        &mut self,
        key: &SecretKey,
        call: Call,
        fee: u64,
    ) -> Result<Result<SignedTx, Refusal>, Error> {
        let (_, state) = self.head_state()?;
        let address = key.address();
        let nonce = state.account(&address)?.nonce + self.mempool.queued(&address);
        let tx = Tx { chain_id: self.chain_id.clone(), signer: key.public(), nonce, fee, call };
        let signed = tx.sign(key);
        Ok(self.mempool.add(&self.executor, &state, signed.clone())?.map(|_| signed))
    }

    /// Transactions waiting.
    pub fn pending_transactions(&self) -> usize {
        self.mempool.len()
    }

    /// A block on the head with up to `max_txs` mempool transactions (those no longer
    /// executable are left out), proposed by `proposer` at `time_ms` (or 1 ms after the head's
    /// time, when `time_ms` is not after it: block times only go forward).
    pub fn propose(
        &self,
        proposer: Address,
        time_ms: u64,
        max_txs: usize,
    ) -> Result<Executed, Error> {
        let (head, mut state) = self.head_state()?;
        let height = head.height + 1;
        let time_ms = time_ms.max(self.head_time(&head)? + 1);
        let validators = self.validators_at(height)?;
        self.executor.begin_block(&mut state, height, head.block);
        let mut txs = Vec::new();
        let mut receipts = Vec::new();
        // The header and the list's length, then each transaction.
        let mut bytes = 1024;
        for tx in self.mempool.take(max_txs) {
            let size = kinema_chain::encode(&*tx).len();
            if bytes + size > MAX_BLOCK_BYTES {
                break;
            }
            bytes += size;
            let (receipt, next) = self.executor.execute_verified(state, &tx, height)?;
            state = next;
            if let Ok(receipt) = receipt {
                txs.push(tx.into_inner());
                receipts.push(receipt);
            }
        }
        let (_, mut state) = self.executor.end_block(state, height)?;
        self.close_epoch(height, &validators, &mut state)?;
        let pending = self.store.prepare(state.into_changes())?;
        let header = Header {
            chain_id: self.chain_id.clone(),
            height,
            parent: head.block,
            time_ms,
            proposer,
            state_root: pending.root(),
            tx_root: tx_root(&txs),
            validator_set_hash: validators.hash(),
        };
        Ok(Executed { block: Block { header, txs }, receipts, pending })
    }

    /// Re-executes a block someone proposed and checks that its header commits to the result,
    /// that it is within [`MAX_BLOCK_BYTES`] and, when `proposer` is given (the proposer of the
    /// round the block was built in; a block certified already needs no such check), that its
    /// header names that proposer.
    pub fn validate(
        &self,
        block: Block,
        proposer: Option<Address>,
    ) -> Result<Result<Executed, Invalid>, Error> {
        let bytes = kinema_chain::encode(&block).len();
        if bytes > MAX_BLOCK_BYTES {
            return Ok(Err(Invalid::TooLarge { bytes }));
        }
        if let Some(expected) = proposer
            && block.header.proposer != expected
        {
            return Ok(Err(Invalid::Proposer { expected, found: block.header.proposer }));
        }
        let (head, mut state) = self.head_state()?;
        let header = &block.header;
        let not_next = |why: String| Ok(Err(Invalid::NotNext { height: header.height, why }));
        if header.height != head.height + 1 || header.parent != head.block {
            return not_next(format!("the head is block {} ({})", head.height, head.block));
        }
        if header.chain_id != self.chain_id {
            return not_next(format!("it is for chain {:?}", header.chain_id));
        }
        let parent_ms = self.head_time(&head)?;
        if header.time_ms <= parent_ms {
            return Ok(Err(Invalid::Time { time_ms: header.time_ms, parent_ms }));
        }
        let mismatch = |field, expected: Hash, found: Hash| {
            Ok(Err(Invalid::Mismatch { field, expected, found }))
        };
        let validators = self.validators_at(header.height)?;
        if header.validator_set_hash != validators.hash() {
            return mismatch("validator_set_hash", validators.hash(), header.validator_set_hash);
        }
        let root = tx_root(&block.txs);
        if header.tx_root != root {
            return mismatch("tx_root", root, header.tx_root);
        }
        self.executor.begin_block(&mut state, header.height, header.parent);
        let mut receipts = Vec::with_capacity(block.txs.len());
        for (index, tx) in block.txs.iter().enumerate() {
            let (receipt, next) = self.executor.execute(state, tx, header.height)?;
            state = next;
            match receipt {
                Ok(r) => receipts.push(r),
                Err(e) => return Ok(Err(Invalid::Transaction { index, why: e.to_string() })),
            }
        }
        let (_, mut state) = self.executor.end_block(state, header.height)?;
        self.close_epoch(header.height, &validators, &mut state)?;
        let pending = self.store.prepare(state.into_changes())?;
        if pending.root() != header.state_root {
            return mismatch("state_root", pending.root(), header.state_root);
        }
        Ok(Ok(Executed { block, receipts, pending }))
    }

    /// Commits a decided block with the certificate that finalized it and drops its
    /// transactions from the mempool.
    pub fn commit(
        &mut self,
        executed: Executed,
        certificate: Option<&Certificate>,
    ) -> Result<Head, Error> {
        let head = self.store.commit(executed.pending, &executed.block, certificate)?;
        let (_, state) = self.head_state()?;
        self.mempool.prune(&state)?;
        Ok(head)
    }

    /// `address`'s account at the head.
    pub fn account(&self, address: &Address) -> Result<Account, Error> {
        let (_, state) = self.head_state()?;
        state.account(address)
    }
}
