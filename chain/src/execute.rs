//! Executing transactions: the checks every transaction must pass, then its call in the
//! contract host, with the fee charged in fuel.
//!
//! A call names a system contract by address and method (`Call::Contract`, resolved through
//! `kinema_contracts::system`); transfer, stake and unstake keep their own variants as
//! shorthands for the accounts contract's methods. A block begins with its parent's hash
//! written to the state ([`Executor::begin_block`]) and ends with the chain calling the jobs
//! contract's `tick` ([`Executor::end_block`]).
//!
//! A transaction that fails a check ([`Rejection`]: signature, chain, nonce, fee) is not
//! executable and never enters a block. One that passes is executed: its signer pays the whole
//! fee up front and its nonce advances; its call runs with the fee as its fuel; the fuel it did
//! not burn is refunded. Whatever the call does — succeed, refuse, trap, run out of fuel — the
//! block goes on.
//!
//! Double-sign evidence is checked (two votes signed by the same validator in the same step, or
//! two proposals by the same proposer in the same round, for different blocks of this chain)
//! and makes the chain — caller [`SYSTEM`], which no transaction can be —
//! call the accounts contract's `slash`, burning [`DOUBLE_SIGN_SLASH_BPS`] of the offender's
//! bonded and unbonding stake; the offence is recorded so it is punished once.

use std::collections::BTreeMap;
use std::sync::Arc;

use kinema_contracts::accounts::{
    DOUBLE_SIGN_SLASH_BPS, SYSTEM, SlashArgs, TransferArgs, UNBONDING_PERIOD,
};
use kinema_contracts::{BLOCK_HASHES_KEPT, block_hash_key, system};

use crate::contract::{self, ContractHost, Failure, StateView};
use crate::state::account_key;
use crate::tx::{Account, Call, Evidence, SignedTx, VerifiedTx};
use crate::{Address, Error, Hash, PublicKey, epoch};

/// Why a transaction cannot be executed at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// Its signature does not verify.
    #[error("the signature does not verify")]
    BadSignature,
    /// It is for another chain.
    #[error("it is for chain {found:?}, this is {expected:?}")]
    WrongChain {
        /// This chain.
        expected: String,
        /// The transaction's.
        found: String,
    },
    /// Its nonce is not the account's next one.
    #[error("nonce {found}, the account's next is {expected}")]
    WrongNonce {
        /// The account's next nonce.
        expected: u64,
        /// The transaction's.
        found: u64,
    },
    /// The signer cannot pay the fee.
    #[error("fee {fee} exceeds the balance {balance}")]
    CannotPayFee {
        /// The fee offered.
        fee: u64,
        /// The signer's balance.
        balance: u64,
    },
    /// The fee is below what even a rejected call costs.
    #[error("fee {fee} is below the minimum {minimum}")]
    FeeTooLow {
        /// The fee offered.
        fee: u64,
        /// The minimum.
        minimum: u64,
    },
    /// The signer cannot pay the fee and what the call moves.
    #[error("it needs {needed} (fee and amount), the balance is {balance}")]
    Underfunded {
        /// Fee plus amount.
        needed: u64,
        /// The signer's balance.
        balance: u64,
    },
    /// Its misbehaviour evidence proves nothing.
    #[error("{0}")]
    BadEvidence(String),
    /// Its evidence was already used.
    #[error("this misbehaviour of {0} was already punished")]
    DuplicateEvidence(Address),
    /// What it asks for is not something this chain does yet.
    #[error("{0}")]
    Unsupported(String),
}

/// The least fee a transaction may offer: enough fuel to load an account and refuse.
pub const MIN_FEE: u64 = 1_000;

/// What executing a transaction did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The transaction.
    pub tx: Hash,
    /// Done, or why not.
    pub result: Result<(), Failure>,
    /// Fee charged (the fuel burnt).
    pub fee: u64,
    /// Events emitted.
    pub events: Vec<Vec<u8>>,
}

/// Committed state, readable at each version (the height of the block after which it holds):
/// a node's store, or in a browser the values a state proof showed.
pub trait StateSource: Send + Sync + std::fmt::Debug {
    /// The value under `key` after block `version`.
    fn get(&self, key: &[u8], version: u64) -> Result<Option<Vec<u8>>, Error>;
}

/// The state a block executes against: the committed state at its parent, plus the block's own
/// changes.
#[derive(Debug, Clone)]
pub struct Overlay {
    store: Option<Arc<dyn StateSource>>,
    base: Option<u64>,
    changes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl Overlay {
    /// The state after the block at `base` in `store` (`None`: before genesis).
    pub fn new(store: Option<Arc<dyn StateSource>>, base: Option<u64>) -> Self {
        Self { store, base, changes: BTreeMap::new() }
    }

    /// The changes so far, to commit with the block.
    pub fn into_changes(self) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        self.changes.into_iter().collect()
    }

    /// The height of the block executed on it: the one after its base.
    pub fn height(&self) -> u64 {
        self.base.map_or(0, |base| base + 1)
    }

    /// Sets `key`.
    pub fn set(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) {
        self.changes.insert(key, value);
    }

    /// `address`'s account (the default for one that does not exist).
    pub fn account(&self, address: &Address) -> Result<Account, Error> {
        self.get(&account_key(address))?
            .map(|bytes| crate::decode::<Account>(&bytes))
            .transpose()
            .map(Option::unwrap_or_default)
    }

    fn set_account(&mut self, address: &Address, account: &Account) {
        self.set(account_key(address), Some(crate::encode(account)));
    }
}

impl StateView for Overlay {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        if let Some(value) = self.changes.get(key) {
            return Ok(value.clone());
        }
        match (&self.store, self.base) {
            (Some(store), Some(base)) => store.get(key, base),
            _ => Ok(None),
        }
    }
}

/// Runs transactions for one chain.
#[derive(Debug, Clone)]
pub struct Executor {
    chain_id: String,
    host: Arc<dyn ContractHost<Overlay>>,
}

impl Executor {
    /// An executor for `chain_id` whose contract calls run in `host`.
    pub fn new(chain_id: &str, host: Arc<dyn ContractHost<Overlay>>) -> Self {
        Self { chain_id: chain_id.to_owned(), host }
    }

    /// The checks a transaction must pass to be executable on `state`; a block's executor runs
    /// them on every transaction in order.
    pub fn check(&self, state: &Overlay, tx: &SignedTx) -> Result<Result<(), Rejection>, Error> {
        let account = state.account(&tx.sender())?;
        Ok(self
            .check_after(tx, account.nonce, account.balance)
            .and_then(|()| evidence_in_time(tx, state.height())))
    }

    /// The same checks for a transaction queued behind others of its sender: its nonce must be
    /// `next_nonce` and its fee and amount within `balance` (what is left after the queued
    /// transactions' fees and amounts).
    pub fn check_after(
        &self,
        tx: &SignedTx,
        next_nonce: u64,
        balance: u64,
    ) -> Result<(), Rejection> {
        self.check_with(tx, next_nonce, balance, true)
    }

    fn check_with(
        &self,
        tx: &SignedTx,
        next_nonce: u64,
        balance: u64,
        check_signature: bool,
    ) -> Result<(), Rejection> {
        if tx.tx.chain_id != self.chain_id {
            return Err(Rejection::WrongChain {
                expected: self.chain_id.clone(),
                found: tx.tx.chain_id.clone(),
            });
        }
        if check_signature && tx.check_signature().is_err() {
            return Err(Rejection::BadSignature);
        }
        if tx.tx.fee < MIN_FEE {
            return Err(Rejection::FeeTooLow { fee: tx.tx.fee, minimum: MIN_FEE });
        }
        if tx.tx.nonce != next_nonce {
            return Err(Rejection::WrongNonce { expected: next_nonce, found: tx.tx.nonce });
        }
        if balance < tx.tx.fee {
            return Err(Rejection::CannotPayFee { fee: tx.tx.fee, balance });
        }
        if balance < tx.tx.cost() {
            return Err(Rejection::Underfunded { needed: tx.tx.cost(), balance });
        }
        if let Call::Contract { contract, .. } = &tx.tx.call
            && system::name(&contract.0).is_none()
        {
            let why = format!(
                "no contract lives at {contract}: the system contracts are {}",
                system::CONTRACTS.map(|(a, name)| format!("{name} at {}", Address(a))).join(", ")
            );
            return Err(Rejection::Unsupported(why));
        }
        if let Call::Evidence(evidence) = &tx.tx.call {
            if evidence.chain_id() != self.chain_id {
                let why = format!("it is about chain {:?}", evidence.chain_id());
                return Err(Rejection::BadEvidence(why));
            }
            evidence.offender().map_err(|e| Rejection::BadEvidence(e.to_string()))?;
        }
        Ok(())
    }

    /// [`Executor::check_after`], and for evidence that the offence is not punished yet on
    /// `state`: what a transaction queued behind others of its sender must pass.
    pub fn check_queued(
        &self,
        state: &Overlay,
        tx: &VerifiedTx,
        next_nonce: u64,
        balance: u64,
    ) -> Result<Result<(), Rejection>, Error> {
        if let Err(rejection) = self
            .check_with(tx, next_nonce, balance, false)
            .and_then(|()| evidence_in_time(tx, state.height()))
        {
            return Ok(Err(rejection));
        }
        match punished(state, tx)? {
            Some(offender) => Ok(Err(Rejection::DuplicateEvidence(offender))),
            None => Ok(Ok(())),
        }
    }

    /// Executes `tx` on `state` at `height`: the checks, then the call. `state` comes back with
    /// the transaction's effects (none but the fee and nonce when the call failed).
    pub fn execute(
        &self,
        state: Overlay,
        tx: &SignedTx,
        height: u64,
    ) -> Result<(Result<Receipt, Rejection>, Overlay), Error> {
        self.execute_with(state, tx, height, true)
    }

    /// [`Executor::execute`] for a transaction whose signature was checked on admission.
    pub fn execute_verified(
        &self,
        state: Overlay,
        tx: &VerifiedTx,
        height: u64,
    ) -> Result<(Result<Receipt, Rejection>, Overlay), Error> {
        self.execute_with(state, tx, height, false)
    }

    fn execute_with(
        &self,
        state: Overlay,
        tx: &SignedTx,
        height: u64,
        check_signature: bool,
    ) -> Result<(Result<Receipt, Rejection>, Overlay), Error> {
        let mut state = state;
        let sender = tx.sender();
        let mut account = state.account(&sender)?;
        if let Err(rejection) = self
            .check_with(tx, account.nonce, account.balance, check_signature)
            .and_then(|()| evidence_in_time(tx, height))
        {
            return Ok((Err(rejection), state));
        }
        let mut caller = sender;
        let mut record = None;
        let (contract, method, args) = match &tx.tx.call {
            Call::Transfer { to, amount } => (
                "accounts",
                "transfer".to_owned(),
                crate::encode(&TransferArgs { to: to.0, amount: *amount }),
            ),
            Call::Stake { amount } => ("accounts", "stake".to_owned(), crate::encode(amount)),
            Call::Unstake { amount } => ("accounts", "unstake".to_owned(), crate::encode(amount)),
            Call::Evidence(evidence) => {
                // Checked above; one punishment per offence (validator, height, round, step).
                let offender = evidence.offender().map_err(|e| Error::BadEvidence {
                    why: format!("evidence checked a moment ago no longer holds: {e}"),
                })?;
                let key = evidence_key(evidence);
                if state.get(&key)?.is_some() {
                    return Ok((Err(Rejection::DuplicateEvidence(offender)), state));
                }
                record = Some(key);
                caller = Address(SYSTEM);
                let args = SlashArgs { offender: offender.0, bps: DOUBLE_SIGN_SLASH_BPS };
                ("accounts", "slash".to_owned(), crate::encode(&args))
            }
            Call::Contract { contract, method, args } => {
                let Some(name) = system::name(&contract.0) else {
                    unreachable!("check_with refuses calls to no contract")
                };
                (name, method.clone(), args.clone())
            }
        };
        // The whole fee up front, the nonce advanced.
        account.balance -= tx.tx.fee;
        account.nonce += 1;
        state.set_account(&sender, &account);

        let call = contract::Call {
            contract,
            method: &method,
            args: &args,
            caller,
            height,
            fuel: tx.tx.fee,
        };
        let (outcome, mut state) = self.host.call(state, &call)?;
        for (key, value) in outcome.writes {
            state.set(key, value);
        }
        if let (Ok(()), Some(key)) = (&outcome.result, record) {
            state.set(key, Some(vec![1]));
        }
        // However it was called, a stake makes its signer a candidate validator.
        if outcome.result.is_ok() && (contract, method.as_str()) == ("accounts", "stake") {
            register_staker(&mut state, sender, tx.tx.signer)?;
        }
        // The unburnt fuel back.
        let mut account = state.account(&sender)?;
        account.balance = account.balance.saturating_add(tx.tx.fee - outcome.fuel_used);
        state.set_account(&sender, &account);
        let receipt = Receipt {
            tx: tx.hash(),
            result: outcome.result,
            fee: outcome.fuel_used,
            events: outcome.events,
        };
        Ok((Ok(receipt), state))
    }
}

/// Fuel the end of a block may burn (the jobs contract's timers; a block handles at most
/// [`kinema_contracts::jobs::WORK_PER_BLOCK`] draws' worth).
pub const END_BLOCK_FUEL: u64 = 100_000_000;

/// What the end of a block did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockEnd {
    /// Done, or why not (its changes are then dropped; the block goes on).
    pub result: Result<(), Failure>,
    /// Fuel burnt (nobody pays it: every validator runs it).
    pub fuel_used: u64,
    /// Events emitted.
    pub events: Vec<Vec<u8>>,
}

impl Executor {
    /// What happens before a block's transactions: the state records its parent's hash (the
    /// block at `height - 1`), so contracts draw from a hash no transaction in the block could
    /// know when it was signed; the hash [`kinema_contracts::BLOCK_HASHES_KEPT`] blocks older
    /// is forgotten.
    pub fn begin_block(&self, state: &mut Overlay, height: u64, parent: Hash) {
        let parent_height = height.saturating_sub(1);
        state.set(block_hash_key(parent_height), Some(crate::encode(&parent.0)));
        if let Some(old) = parent_height.checked_sub(BLOCK_HASHES_KEPT) {
            state.set(block_hash_key(old), None);
        }
    }

    /// What happens after a block's transactions: the chain ([`SYSTEM`]) calls `jobs.tick`,
    /// which handles the market's timers due at `height`, with [`END_BLOCK_FUEL`].
    pub fn end_block(&self, state: Overlay, height: u64) -> Result<(BlockEnd, Overlay), Error> {
        let call = contract::Call {
            contract: "jobs",
            method: "tick",
            args: &[],
            caller: Address(SYSTEM),
            height,
            fuel: END_BLOCK_FUEL,
        };
        let (outcome, mut state) = self.host.call(state, &call)?;
        for (key, value) in outcome.writes {
            state.set(key, value);
        }
        let end = BlockEnd {
            result: outcome.result,
            fuel_used: outcome.fuel_used,
            events: outcome.events,
        };
        Ok((end, state))
    }
}

/// Evidence is refused once the stake bonded at its offence may have left: after the unbonding
/// period, what the offender unstaked then is paid out and no longer slashable.
fn evidence_in_time(tx: &SignedTx, height: u64) -> Result<(), Rejection> {
    let Call::Evidence(evidence) = &tx.tx.call else { return Ok(()) };
    let offence = evidence.height();
    if height >= offence.saturating_add(UNBONDING_PERIOD) {
        return Err(Rejection::BadEvidence(format!(
            "the offence at height {offence} is {} blocks old, past the unbonding period of \
             {UNBONDING_PERIOD}: the stake it could slash may have left",
            height - offence
        )));
    }
    Ok(())
}

/// Adds a staker to the list the next epochs' validator sets are drawn from (once).
fn register_staker(state: &mut Overlay, address: Address, key: PublicKey) -> Result<(), Error> {
    let mut stakers: Vec<(Address, PublicKey)> = match state.get(epoch::STAKERS_KEY)? {
        Some(bytes) => crate::decode(&bytes)?,
        None => Vec::new(),
    };
    if let Err(at) = stakers.binary_search_by_key(&address, |(a, _)| *a) {
        stakers.insert(at, (address, key));
        state.set(epoch::STAKERS_KEY.to_vec(), Some(crate::encode(&stakers)));
    }
    Ok(())
}

/// For evidence whose offence `state` records as punished already, the offender.
pub fn punished(state: &Overlay, tx: &SignedTx) -> Result<Option<Address>, Error> {
    let Call::Evidence(evidence) = &tx.tx.call else {
        return Ok(None);
    };
    if state.get(&evidence_key(evidence))?.is_none() {
        return Ok(None);
    }
    let offender = evidence.offender().map_err(|e| Error::BadEvidence {
        why: format!("evidence admitted earlier no longer holds: {e}"),
    })?;
    Ok(Some(offender))
}

/// Where the chain records that an offence was punished: validator, height, round and step.
fn evidence_key(evidence: &Evidence) -> Vec<u8> {
    let accused = match evidence {
        Evidence::DoubleSign { first, .. } => &first.validator,
        Evidence::DoubleProposal { first, .. } => &first.proposer,
    };
    let mut key = b"evidence/".to_vec();
    key.extend_from_slice(&Address::of(accused).0);
    key.extend_from_slice(&evidence.offence());
    key
}
