//! Kinema's chain.
//!
//! So far this crate holds the types every node, the relay and the browser light node share,
//! with their one canonical encoding, and the checks a light client makes:
//!
//! - [`Address`], [`Hash`], [`PublicKey`], [`Signature`]: fixed-size ids, printed as lowercase
//!   hex ([`ids`]);
//! - [`crypto::SecretKey`]: ed25519 keys, domain-separated signatures, key files;
//! - [`tx`]: [`tx::Account`], [`tx::Tx`] (transfer, stake, unstake, contract call, evidence),
//!   [`tx::SignedTx`], double-sign [`tx::Evidence`];
//! - [`block`]: [`block::Header`], [`block::Block`], [`block::ValidatorSet`], votes and
//!   [`block::Certificate`] (precommits from more than 2/3 of the power);
//! - [`epoch`]: when the validator set changes, what it becomes, and how a light client
//!   follows it;
//! - [`state`]: the Jellyfish Merkle Tree over blake3 that commits to the state, and
//!   [`state::Proof`], which shows what a key holds (or that it holds nothing) under a header's
//!   state root;
//! - [`store`] (native only): blocks and the tree in one redb database, each block committed
//!   atomically and durably with its state;
//! - [`host`] (native only): the contract host — wasmtime with fuel metering and a
//!   deterministic configuration, running the system contracts of `contracts-wasm/`, which this
//!   crate's build script compiles for wasm32 and embeds;
//! - [`execute`] (native only): the checks a transaction must pass (signature, chain, nonce,
//!   fee, evidence) and its execution through the contracts, the fee charged in fuel; double-sign
//!   evidence slashes the offender's stake once;
//! - [`mempool`] (native only): bounded admission with those checks counted past each sender's
//!   queued transactions, every refusal with its reason;
//! - [`app`] (native only): what consensus drives — propose a block from the mempool,
//!   validate another node's block by re-executing it, commit a decided block;
//! - [`consensus`] (native only): Malachite's Tendermint core behind Kinema's small
//!   [`consensus::Engine`] trait, the tokio runner and the transport it talks over (an
//!   in-process one here; kinema-node brings libp2p);
//! - [`rpc`] (native only): the JSON-over-HTTP RPC and its OpenAPI document.
//!
//! ```
//! use kinema_chain::crypto::SecretKey;
//! use kinema_chain::tx::{Call, Tx};
//!
//! let key = SecretKey::from_seed([7; 32]);
//! let tx = Tx {
//!     chain_id: "kinema-devnet".into(),
//!     signer: key.public(),
//!     nonce: 0,
//!     fee: 1_000,
//!     call: Call::Transfer { to: SecretKey::from_seed([8; 32]).address(), amount: 5 },
//! };
//! let signed = tx.sign(&key);
//! assert!(signed.check_signature().is_ok());
//! let bytes = kinema_chain::encode(&signed);
//! assert_eq!(kinema_chain::decode::<kinema_chain::tx::SignedTx>(&bytes).unwrap(), signed);
//! ```
//!
//! Not built yet: deployed (non-system) contracts.
//!
//! **Encoding.** Everything that is hashed or signed is encoded with borsh: one byte sequence
//! per value (little-endian integers, length-prefixed strings and lists, no maps, no floats), and
//! decoding refuses trailing bytes, so `decode(encode(x)) == x` and `encode(decode(b)) == b`.
//! The `jmt` crate speaks borsh too.

pub mod block;
pub mod contract;
pub mod crypto;
pub mod epoch;
mod error;
pub mod execute;
pub mod gossip;
pub mod ids;
pub mod light;
pub mod rpc;
pub mod state;
pub mod tx;

pub use error::Error;
pub use ids::{Address, Hash, PublicKey, Signature};

/// The canonical encoding of `value`.
pub fn encode<T: borsh::BorshSerialize>(value: &T) -> Vec<u8> {
    // Writing into a Vec cannot fail.
    borsh::to_vec(value).unwrap_or_default()
}

/// Decodes the canonical encoding of a `T`; all of `bytes` must be used.
pub fn decode<T: borsh::BorshDeserialize>(bytes: &[u8]) -> Result<T, Error> {
    borsh::from_slice(bytes)
        .map_err(|e| Error::BadEncoding { what: std::any::type_name::<T>(), why: e.to_string() })
}
