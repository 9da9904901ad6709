//! Kinema's system contracts, compiled to `wasm32-unknown-unknown` and run by the chain's
//! wasmtime host with fuel metering.
//!
//! Three contracts, each at its own address ([`system`]): [`accounts`] (transfers, staking and
//! unstaking with an unbonding period), [`jobs`], the transcode market (jobs paid from
//! escrow, segments assigned to bonded workers by stake with a random share, results checked by
//! drawn verifiers, cheats slashed, the accepted ladder recorded), and [`tickets`], bandwidth
//! paid in probabilistic micropayment tickets. The logic is written against [`Host`], the contract's whole view of the
//! world; on wasm32 `abi` implements it with the host's imports and exports one function per
//! method (feature `contract`, which the chain's build turns on for the module it embeds);
//! natively any Rust value can (tests, the native-speed comparison).
//!
//! The ABI (imports from module `kinema`, all pointers into the module's exported `memory`):
//!
//! | import | meaning |
//! |---|---|
//! | `input_len() -> i32`, `input_read(ptr)` | the call's borsh-encoded arguments |
//! | `caller(ptr)` | the 20-byte address that signed the transaction |
//! | `height() -> i64` | the height of the block being executed |
//! | `storage_read(key, key_len, out, cap) -> i32` | value length (copies up to `cap` bytes), -1 when absent |
//! | `storage_write(key, key_len, value, value_len)`, `storage_remove(key, key_len)` | state changes |
//! | `emit(ptr, len)` | an event |
//! | `output(ptr, len)` | why the call refused (with return value 1) |
//! | `blake3(ptr, len, out)` | 32-byte hash |
//! | `ed25519_verify(key, msg, msg_len, sig) -> i32` | 1 when the signature verifies |
//!
//! An exported method is named `<contract>.<method>` (`accounts.transfer`, `jobs.post`), takes
//! nothing and returns 0 (done) or 1 (refused, reason in `output`); a refused or trapping call
//! changes nothing but the fee.
//!
//! Before a block's transactions the chain writes its parent's hash under [`block_hash_key`]
//! (the last [`BLOCK_HASHES_KEPT`] stay), so a contract draws from finalized hashes that nobody
//! knew when the transaction it answers was signed.

#[cfg(all(target_arch = "wasm32", feature = "contract"))]
mod abi;
pub mod accounts;
#[cfg(all(target_arch = "wasm32", feature = "contract"))]
mod heap;
pub mod jobs;
pub mod system;
pub mod tickets;

use borsh::{BorshDeserialize, BorshSerialize};

/// A 20-byte account address.
pub type Address = [u8; 20];

/// What a contract sees of the chain.
pub trait Host {
    /// The value under `key`.
    fn read(&self, key: &[u8]) -> Option<Vec<u8>>;
    /// Sets `key` to `value`.
    fn write(&mut self, key: &[u8], value: &[u8]);
    /// Removes `key`.
    fn remove(&mut self, key: &[u8]);
    /// Who signed the transaction.
    fn caller(&self) -> Address;
    /// The height of the block being executed.
    fn height(&self) -> u64;
    /// Records an event.
    fn emit(&mut self, event: &[u8]);
    /// blake3 of `bytes`.
    fn hash(&self, bytes: &[u8]) -> [u8; 32];
    /// Whether `signature` is `key`'s ed25519 signature of `message` (strictly: no malleable
    /// signatures, no small-order keys).
    fn verify(&self, key: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> bool;
}

/// Block hashes the state keeps: a contract can read the hash of any of the last this many
/// blocks.
pub const BLOCK_HASHES_KEPT: u64 = 256;

/// Where the state holds the hash of the block at `height` (written by the chain before the
/// block after it executes).
pub fn block_hash_key(height: u64) -> Vec<u8> {
    let mut key = b"chain/block/".to_vec();
    key.extend_from_slice(&height.to_be_bytes());
    key
}

/// The hash of the block at `height`, when the state still holds it.
pub fn block_hash(host: &impl Host, height: u64) -> Result<Option<[u8; 32]>, Refusal> {
    read_value(host, &block_hash_key(height))
}

/// A host over a map in memory: the contracts run natively against it (tests, the
/// native-speed comparison).
#[derive(Debug, Clone, Default)]
pub struct MemoryHost {
    /// The state.
    pub state: std::collections::BTreeMap<Vec<u8>, Vec<u8>>,
    /// Who calls.
    pub caller: Address,
    /// The block height.
    pub height: u64,
    /// Events emitted.
    pub events: Vec<Vec<u8>>,
}

impl Host for MemoryHost {
    fn read(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.state.get(key).cloned()
    }

    fn write(&mut self, key: &[u8], value: &[u8]) {
        self.state.insert(key.to_vec(), value.to_vec());
    }

    fn remove(&mut self, key: &[u8]) {
        self.state.remove(key);
    }

    fn caller(&self) -> Address {
        self.caller
    }

    fn height(&self) -> u64 {
        self.height
    }

    fn emit(&mut self, event: &[u8]) {
        self.events.push(event.to_vec());
    }

    fn hash(&self, bytes: &[u8]) -> [u8; 32] {
        *blake3::hash(bytes).as_bytes()
    }

    fn verify(&self, key: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> bool {
        ed25519_dalek::VerifyingKey::from_bytes(key)
            .map(|k| {
                k.verify_strict(message, &ed25519_dalek::Signature::from_bytes(signature)).is_ok()
            })
            .unwrap_or(false)
    }
}

/// Why a call refused; the host reports it with the failed transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub String);

/// Reads a borsh value from the host's storage; a value that does not decode is treated as
/// corrupt state and refused.
pub fn read_value<T: BorshDeserialize>(host: &impl Host, key: &[u8]) -> Result<Option<T>, Refusal> {
    host.read(key)
        .map(|bytes| {
            borsh::from_slice(&bytes).map_err(|e| Refusal(format!("corrupt state value: {e}")))
        })
        .transpose()
}

/// Writes a borsh value to the host's storage.
pub fn write_value<T: BorshSerialize>(host: &mut impl Host, key: &[u8], value: &T) {
    // Serialising into a Vec cannot fail.
    let bytes = borsh::to_vec(value).unwrap_or_default();
    host.write(key, &bytes);
}
