//! The light client: one epoch's validator set, trusted, the certificate check of headers
//! against it, and the move to the next epoch's set on a state proof ([`epoch::follow`]).
//!
//! Its trust starts from one hash it is given by someone it trusts — the genesis block's, built
//! into an app for a named network or carried in the link a user opened — never from whoever
//! answers its requests: the genesis block must hash to it, and the genesis validator set must be
//! the one that block names. Every header it checks after must be of the genesis block's chain.
//!
//! It reads nothing itself: the caller hands it the chain RPC's answers (or headers heard over
//! gossip) and it says what they prove. The browser light node wraps it for JavaScript.
//!
//! ```
//! use kinema_chain::Hash;
//! use kinema_chain::light::LightClient;
//! use kinema_chain::rpc::{BlockReply, ValidatorSetReply};
//! # fn run(block: BlockReply, set: ValidatorSetReply, genesis: Hash) -> Result<(), kinema_chain::Error> {
//! let client = LightClient::new(&block, set, genesis)?;
//! assert_eq!(client.epoch(), 0);
//! # Ok(()) }
//! ```

use serde::{Deserialize, Serialize};

use crate::block::{Certificate, Header, ValidatorSet};
use crate::epoch::{self, epoch_of};
use crate::rpc::{BlockReply, ValidatorSetReply};
use crate::state::Proof;
use crate::{Error, Hash};

/// A trusted validator set and the epoch it decides.
#[derive(Debug, Clone)]
pub struct LightClient {
    chain_id: String,
    genesis: Hash,
    set: ValidatorSet,
    epoch: u64,
    epoch_length: u64,
}

/// What a checked header shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verified {
    /// Its height.
    pub height: u64,
    /// Its hash.
    pub hash: Hash,
    /// The state root after it.
    pub state_root: Hash,
    /// Its time (ms since the Unix epoch).
    pub time_ms: u64,
    /// The power that signed its certificate (a decimal string: JavaScript's numbers are
    /// doubles).
    pub signed_power: String,
    /// The trusted set's total power (a decimal string).
    pub total_power: String,
}

fn refused(why: String) -> Error {
    Error::NotTrusted { why }
}

impl LightClient {
    /// Trusts the chain whose genesis block hashes to `trusted`: `block` is the chain RPC's
    /// answer for `blocks/0`, `set` its answer for `validator-sets/0`; both must match it.
    pub fn new(block: &BlockReply, set: ValidatorSetReply, trusted: Hash) -> Result<Self, Error> {
        let header = &block.block.header;
        if header.height != 0 {
            return Err(refused(format!("block {} is not the genesis block", header.height)));
        }
        let hash = header.hash();
        if hash != trusted {
            return Err(refused(format!(
                "the genesis block is {hash}, not the trusted genesis {trusted}"
            )));
        }
        if set.epoch != 0 {
            return Err(refused(format!(
                "the genesis set is epoch 0's, not epoch {}'s",
                set.epoch
            )));
        }
        if set.validators.hash() != header.validator_set_hash {
            return Err(refused(format!(
                "the genesis validator set {} is not the one genesis {trusted} names ({})",
                set.validators.hash(),
                header.validator_set_hash
            )));
        }
        if set.epoch_length == 0 {
            return Err(refused("an epoch length of 0".into()));
        }
        Ok(Self {
            chain_id: header.chain_id.clone(),
            genesis: trusted,
            set: set.validators,
            epoch: 0,
            epoch_length: set.epoch_length,
        })
    }

    /// The chain it follows.
    pub fn chain_id(&self) -> &str {
        &self.chain_id
    }

    /// The genesis block it trusts.
    pub fn genesis(&self) -> Hash {
        self.genesis
    }

    fn same_chain(&self, header: &Header) -> Result<(), Error> {
        if header.chain_id != self.chain_id {
            return Err(refused(format!(
                "block {} is of chain {:?}; the client follows {:?}",
                header.height, header.chain_id, self.chain_id
            )));
        }
        Ok(())
    }

    /// The epoch whose validator set it trusts.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Blocks per epoch.
    pub fn epoch_length(&self) -> u64 {
        self.epoch_length
    }

    /// The trusted set.
    pub fn validators(&self) -> &ValidatorSet {
        &self.set
    }

    /// Checks a `blocks/{height}` answer of the trusted epoch: its certificate under the
    /// trusted set.
    pub fn verify_block(&self, reply: &BlockReply) -> Result<Verified, Error> {
        let header = &reply.block.header;
        let certificate = reply.certificate.as_ref().ok_or_else(|| {
            refused(format!("block {} comes without a certificate", header.height))
        })?;
        self.verify(header, certificate)
    }

    /// Checks `header` of the trusted epoch: `certificate` under the trusted set.
    pub fn verify(&self, header: &Header, certificate: &Certificate) -> Result<Verified, Error> {
        self.same_chain(header)?;
        let epoch = epoch_of(header.height, self.epoch_length);
        if epoch != self.epoch {
            return Err(refused(format!(
                "block {} is in epoch {epoch}; the client follows epoch {}",
                header.height, self.epoch
            )));
        }
        let signed = certificate.verify(header, &self.set)?;
        Ok(Verified {
            height: header.height,
            hash: header.hash(),
            state_root: header.state_root,
            time_ms: header.time_ms,
            signed_power: signed.to_string(),
            total_power: self.set.total_power().to_string(),
        })
    }

    /// Moves to the next epoch: `last_block` is the trusted epoch's last block, `next` the next
    /// epoch's `validator-sets/{e}` answer with its state proof.
    pub fn follow_epoch(
        &mut self,
        last_block: &BlockReply,
        next: ValidatorSetReply,
    ) -> Result<(), Error> {
        if next.epoch != self.epoch + 1 {
            return Err(refused(format!(
                "set of epoch {}, not of epoch {}",
                next.epoch,
                self.epoch + 1
            )));
        }
        let header = &last_block.block.header;
        self.same_chain(header)?;
        let certificate = last_block.certificate.as_ref().ok_or_else(|| {
            refused(format!("block {} comes without a certificate", header.height))
        })?;
        let proof_bytes = hex::decode(&next.proof)
            .map_err(|e| Error::BadProof { why: format!("the proof is not hex: {e}") })?;
        let proof: Proof = crate::decode(&proof_bytes)?;
        self.set = epoch::follow(
            header,
            certificate,
            &self.set,
            self.epoch_length,
            next.validators,
            &proof,
        )?;
        self.epoch += 1;
        Ok(())
    }
}
