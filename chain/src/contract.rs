//! What the state transition needs from a contract runtime: [`ContractHost`] runs one call of
//! a system contract against a [`StateView`] and returns its [`Outcome`].
//!
//! The chain never runs wasm itself. A native node brings wasmtime (kinema-node's `wasm`
//! host, with fuel metering and a deterministic configuration); a browser can bring its own
//! engine and re-execute a transaction on state proofs. Whatever the host, a call never changes
//! state directly: it returns its writes, which the executor applies only when the call
//! succeeded.

use std::collections::BTreeMap;

use crate::{Address, Error};

/// Read access to the state a call runs against.
pub trait StateView: Send + 'static {
    /// The value under `key`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, Error>;
}

impl StateView for BTreeMap<Vec<u8>, Vec<u8>> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        Ok(BTreeMap::get(self, key).cloned())
    }
}

/// One contract call.
#[derive(Debug, Clone)]
pub struct Call<'a> {
    /// The contract.
    pub contract: &'a str,
    /// The exported method.
    pub method: &'a str,
    /// Its borsh-encoded arguments.
    pub args: &'a [u8],
    /// Who signed the transaction.
    pub caller: Address,
    /// Height of the block being executed.
    pub height: u64,
    /// The most fuel it may burn.
    pub fuel: u64,
}

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The contract refused, saying why.
    Refused(String),
    /// It ran out of fuel.
    OutOfFuel,
    /// It trapped.
    Trap(String),
    /// No such contract or method.
    NoSuchMethod(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Refused(why) => write!(f, "refused: {why}"),
            Failure::OutOfFuel => f.write_str("out of fuel"),
            Failure::Trap(what) => write!(f, "trapped: {what}"),
            Failure::NoSuchMethod(what) => write!(f, "no such method: {what}"),
        }
    }
}

/// What a call did.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Done, or why not.
    pub result: Result<(), Failure>,
    /// Fuel burnt (charged whatever the result).
    pub fuel_used: u64,
    /// State changes (`None`: removed); empty unless the call succeeded.
    pub writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// Events emitted; empty unless the call succeeded.
    pub events: Vec<Vec<u8>>,
}

/// A runtime for the system contracts.
///
/// `Err` is a fault of the host itself (it could not set up an instance, a state read failed
/// below the contract); everything the contract does — refuse, trap, run out of fuel — is an
/// [`Outcome`] whose `result` says so.
pub trait ContractHost<V: StateView>: Send + Sync + std::fmt::Debug {
    /// Runs `call` against `view`, which is handed back with the outcome.
    fn call(&self, view: V, call: &Call<'_>) -> Result<(Outcome, V), Error>;
}
