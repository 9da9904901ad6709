//! Kinema's chain logic: what a native node and a browser both run.
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
//! - [`Address`], [`Hash`](struct@Hash), [`PublicKey`], [`Signature`]: fixed-size ids, printed as lowercase
//!   hex ([`ids`]); [`Hash`](struct@Hash) is also the content address of segments, blobs and manifests;
//! - [`crypto::SecretKey`]: ed25519 keys, domain-separated signatures, key files;
//! - [`tx`]: [`tx::Account`], [`tx::Tx`] (transfer, stake, unstake, contract call, evidence),
//!   [`tx::SignedTx`], double-sign [`tx::Evidence`];
//! - [`block`]: [`block::Header`], [`block::Block`], [`block::ValidatorSet`], votes and
//!   [`block::Certificate`] (precommits from more than 2/3 of the power);
//! - [`epoch`]: when the validator set changes, what it becomes, and how a light client
//!   follows it;
//! - [`state`]: the Jellyfish Merkle Tree's hasher and keys, and [`state::Proof`], which shows
//!   what a key holds (or that it holds nothing) under a header's state root;
//! - [`contract`]: [`contract::ContractHost`], what the state transition needs of a contract
//!   runtime (kinema-node brings wasmtime; a browser can bring its own engine);
//! - [`execute`]: the checks a transaction must pass and its execution through a contract host,
//!   the fee charged in fuel, double-sign evidence slashing the offender once;
//! - [`gossip`]: the gossip topics and the finalized header a node that runs no consensus reads;
//! - [`light`]: the light client — a trusted validator set and the certificate checks against
//!   it, epoch by epoch;
//! - [`rpc`]: the chain RPC's requests and replies, shared by its server and its clients;
//! - [`tickets`]: bandwidth tickets off chain — a serving peer's terms and checks, a viewer's
//!   tickets per verified byte.
//!
//! The crate does no IO, draws no randomness and builds for `wasm32-unknown-unknown`; with the
//! `openapi` feature its RPC types describe themselves for utoipa.
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
pub mod tickets;
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
