//! The mempool: signed transactions waiting for a block, admitted only when they would be
//! executable after the sender's transactions already waiting.
//!
//! Admission decodes the bytes (refusing anything that is not exactly one canonical
//! [`SignedTx`]), then runs the executor's checks with the sender's next nonce and remaining
//! balance counted past its queued transactions. Every refusal says why ([`Refusal`]). The pool
//! is bounded; [`Mempool::take`] hands out transactions in nonce order per sender, taking from
//! senders in turn; [`Mempool::prune`] drops what a committed block made stale.

use std::collections::{BTreeMap, HashSet};

use kinema_chain::execute::{Executor, Overlay, Rejection};
use kinema_chain::tx::{SignedTx, VerifiedTx};
use kinema_chain::{Address, Error, Hash};

/// Why the mempool did not take a transaction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The bytes are not a signed transaction.
    #[error("malformed transaction: {0}")]
    Malformed(String),
    /// It would not be executable.
    #[error("{0}")]
    Rejected(#[from] Rejection),
    /// It is already waiting.
    #[error("transaction {0} is already in the mempool")]
    Duplicate(Hash),
    /// The pool is full.
    #[error("the mempool is full ({0} transactions)")]
    Full(usize),
}

/// Transactions waiting for a block.
#[derive(Debug)]
pub struct Mempool {
    capacity: usize,
    /// Per sender, its queued transactions by nonce (consecutive from its account's nonce).
    queues: BTreeMap<Address, BTreeMap<u64, VerifiedTx>>,
    hashes: HashSet<Hash>,
}

impl Mempool {
    /// An empty pool holding at most `capacity` transactions.
    pub fn new(capacity: usize) -> Self {
        Self { capacity, queues: BTreeMap::new(), hashes: HashSet::new() }
    }

    /// Transactions waiting.
    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    /// Whether none is waiting.
    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// How many of `sender`'s transactions wait.
    pub fn queued(&self, sender: &Address) -> u64 {
        self.queues.get(sender).map_or(0, |q| q.len() as u64)
    }

    /// Decodes and admits a transaction received as bytes.
    pub fn add_bytes(
        &mut self,
        executor: &Executor,
        state: &Overlay,
        bytes: &[u8],
    ) -> Result<Result<Hash, Refusal>, Error> {
        match kinema_chain::decode::<SignedTx>(bytes) {
            Ok(tx) => self.add(executor, state, tx),
            Err(e) => Ok(Err(Refusal::Malformed(e.to_string()))),
        }
    }

    /// Admits `tx` if its signature verifies and it would be executable on `state` after its
    /// sender's queued transactions.
    pub fn add(
        &mut self,
        executor: &Executor,
        state: &Overlay,
        tx: SignedTx,
    ) -> Result<Result<Hash, Refusal>, Error> {
        let hash = tx.hash();
        if self.hashes.contains(&hash) {
            return Ok(Err(Refusal::Duplicate(hash)));
        }
        match VerifiedTx::new(tx) {
            Ok(tx) => self.add_verified(executor, state, tx),
            Err(_) => Ok(Err(Refusal::Rejected(Rejection::BadSignature))),
        }
    }

    /// [`Mempool::add`] for a transaction whose signature was checked already.
    pub fn add_verified(
        &mut self,
        executor: &Executor,
        state: &Overlay,
        tx: VerifiedTx,
    ) -> Result<Result<Hash, Refusal>, Error> {
        let hash = tx.hash();
        if self.hashes.contains(&hash) {
            return Ok(Err(Refusal::Duplicate(hash)));
        }
        if self.len() >= self.capacity {
            return Ok(Err(Refusal::Full(self.capacity)));
        }
        let sender = tx.sender();
        let account = state.account(&sender)?;
        let next_nonce = account.nonce + self.queued(&sender);
        let queued = self.queues.get(&sender);
        let queued_costs: u64 = queued.map_or(0, |q| q.values().map(|t| t.tx.cost()).sum());
        let balance = account.balance.saturating_sub(queued_costs);
        if let Err(rejection) = executor.check_queued(state, &tx, next_nonce, balance)? {
            return Ok(Err(rejection.into()));
        }
        self.hashes.insert(hash);
        self.queues.entry(sender).or_default().insert(tx.tx.nonce, tx);
        Ok(Ok(hash))
    }

    /// Up to `max` transactions for a block, each sender's in nonce order, senders in turn.
    /// They stay in the pool until [`Mempool::prune`] sees them committed.
    pub fn take(&self, max: usize) -> Vec<VerifiedTx> {
        let mut cursors: Vec<_> = self.queues.values().map(|q| q.values()).collect();
        let mut out = Vec::with_capacity(max.min(self.len()));
        while out.len() < max {
            let before = out.len();
            for cursor in &mut cursors {
                if out.len() == max {
                    break;
                }
                if let Some(tx) = cursor.next() {
                    out.push(tx.clone());
                }
            }
            if out.len() == before {
                break;
            }
        }
        out
    }

    /// Drops every transaction whose nonce `state` (the state after a committed block) has
    /// used, and re-checks the rest in nonce order: from the first that is no longer executable
    /// (evidence another validator's report already punished, a fee the balance no longer
    /// covers) a sender's queue is dropped, since nothing behind a nonce gap can execute.
    pub fn prune(&mut self, state: &Overlay) -> Result<(), Error> {
        let mut emptied = Vec::new();
        for (sender, queue) in &mut self.queues {
            let account = state.account(sender)?;
            let mut keep = account.nonce;
            let mut balance = account.balance;
            for (nonce, tx) in queue.range(account.nonce..) {
                // Signatures and the rest were checked on admission and cannot change.
                let ok = *nonce == keep
                    && balance >= tx.tx.cost()
                    && kinema_chain::execute::punished(state, tx)?.is_none();
                if !ok {
                    break;
                }
                balance -= tx.tx.cost();
                keep += 1;
            }
            let dropped: Vec<u64> =
                queue.keys().copied().filter(|n| *n < account.nonce || *n >= keep).collect();
            for nonce in dropped {
                if let Some(tx) = queue.remove(&nonce) {
                    self.hashes.remove(&tx.hash());
                }
            }
            if queue.is_empty() {
                emptied.push(*sender);
            }
        }
        for sender in emptied {
            self.queues.remove(&sender);
        }
        Ok(())
    }
}
