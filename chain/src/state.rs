//! The state's commitment: a Jellyfish Merkle Tree hashed with blake3, and the proofs a light
//! client checks against a header's state root.
//!
//! Keys are byte strings (accounts live under [`account_key`]); the tree is keyed by their
//! blake3 hash. A proof shows either that a key holds exactly some value or that it holds
//! nothing. This module does no IO and builds for wasm32; kinema-node's `store` keeps the tree on
//! disk.

use borsh::{BorshDeserialize, BorshSerialize};
use jmt::proof::SparseMerkleProof;
use jmt::{KeyHash, RootHash, SimpleHasher};

use crate::tx::Account;
use crate::{Address, Error, Hash};

/// blake3 for the tree (jmt adds its own leaf and node prefixes).
#[derive(Clone)]
pub struct Blake3(blake3::Hasher);

impl SimpleHasher for Blake3 {
    fn new() -> Self {
        Self(blake3::Hasher::new())
    }

    fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    fn finalize(self) -> [u8; 32] {
        *self.0.finalize().as_bytes()
    }
}

/// The tree's key hash of `key`.
pub fn key_hash(key: &[u8]) -> KeyHash {
    KeyHash::with::<Blake3>(key)
}

/// Where `address`'s [`Account`] lives (the accounts contract's key).
pub fn account_key(address: &Address) -> Vec<u8> {
    kinema_contracts::accounts::key(&address.0)
}

/// Proof of what a key holds (or that it holds nothing) under a state root.
#[derive(Clone, BorshSerialize, BorshDeserialize)]
pub struct Proof(SparseMerkleProof<Blake3>);

impl std::fmt::Debug for Proof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Proof({} bytes)", crate::encode(self).len())
    }
}

impl Proof {
    /// The tree's own proof (what a store reads with `get_with_proof`).
    pub fn new(proof: SparseMerkleProof<Blake3>) -> Self {
        Self(proof)
    }

    /// Checks that under `root`, `key` holds `value` (`None`: nothing).
    pub fn verify(&self, root: Hash, key: &[u8], value: Option<&[u8]>) -> Result<(), Error> {
        self.0
            .verify(RootHash(root.0), key_hash(key), value)
            .map_err(|e| Error::BadProof { why: e.to_string() })
    }

    /// Checks that under `root`, `address`'s account is `account` (`None`: no account).
    pub fn verify_account(
        &self,
        root: Hash,
        address: &Address,
        account: Option<&Account>,
    ) -> Result<(), Error> {
        let value = account.map(crate::encode);
        self.verify(root, &account_key(address), value.as_deref())
    }
}
