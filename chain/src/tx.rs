//! Accounts and signed transactions.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::block::{SignedProposal, SignedVote};
use crate::crypto::{Domain, SecretKey};
use crate::{Address, Error, Hash, PublicKey, Signature};

pub use kinema_contracts::accounts::{Account, Unbonding};

/// What a transaction does.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Call {
    /// Move `amount` from the signer's balance to `to`.
    Transfer {
        /// Receiver.
        to: Address,
        /// Amount.
        amount: u64,
    },
    /// Bond `amount` of the signer's balance as stake.
    Stake {
        /// Amount.
        amount: u64,
    },
    /// Start unbonding `amount` of the signer's stake.
    Unstake {
        /// Amount.
        amount: u64,
    },
    /// Call `method` of a contract with borsh-encoded `args`.
    Contract {
        /// The contract's address.
        contract: Address,
        /// Exported method name.
        method: String,
        /// Arguments, encoded as the contract expects.
        args: Vec<u8>,
    },
    /// Report misbehaviour for slashing.
    Evidence(Box<Evidence>),
}

/// Proof that a validator misbehaved.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Evidence {
    /// Two votes by one validator for different blocks at the same height, round and step.
    DoubleSign {
        /// One vote.
        first: SignedVote,
        /// The conflicting vote.
        second: SignedVote,
    },
    /// Two proposals by one validator for different blocks in the same height and round.
    DoubleProposal {
        /// One proposal.
        first: SignedProposal,
        /// The conflicting proposal.
        second: SignedProposal,
    },
}

impl Evidence {
    /// The validator it accuses, once the evidence is checked: both signatures valid, same
    /// validator, same chain, height, round (and kind, for votes), different blocks.
    pub fn offender(&self) -> Result<Address, Error> {
        let bad = |why: &str| Error::BadEvidence { why: why.to_owned() };
        match self {
            Evidence::DoubleSign { first, second } => {
                let (a, b) = (&first.vote, &second.vote);
                if first.validator != second.validator {
                    return Err(bad("the votes are by different validators"));
                }
                if (&a.chain_id, a.height, a.round, a.kind)
                    != (&b.chain_id, b.height, b.round, b.kind)
                {
                    return Err(bad("the votes are for different steps"));
                }
                if a.block == b.block {
                    return Err(bad("the votes agree"));
                }
                first.check()?;
                second.check()?;
                Ok(Address::of(&first.validator))
            }
            Evidence::DoubleProposal { first, second } => {
                let (a, b) = (&first.proposal, &second.proposal);
                if first.proposer != second.proposer {
                    return Err(bad("the proposals are by different validators"));
                }
                if (&a.chain_id, a.height, a.round) != (&b.chain_id, b.height, b.round) {
                    return Err(bad("the proposals are for different rounds"));
                }
                if a.block == b.block {
                    return Err(bad("the proposals agree"));
                }
                first.check()?;
                second.check()?;
                Ok(Address::of(&first.proposer))
            }
        }
    }

    /// The chain the evidence is about.
    pub fn chain_id(&self) -> &str {
        match self {
            Evidence::DoubleSign { first, .. } => &first.vote.chain_id,
            Evidence::DoubleProposal { first, .. } => &first.proposal.chain_id,
        }
    }

    /// The height of the offence.
    pub fn height(&self) -> u64 {
        match self {
            Evidence::DoubleSign { first, .. } => first.vote.height,
            Evidence::DoubleProposal { first, .. } => first.proposal.height,
        }
    }

    /// What identifies the offence (one punishment each): its kind, height, round and, for
    /// votes, step.
    pub fn offence(&self) -> Vec<u8> {
        match self {
            Evidence::DoubleSign { first, .. } => {
                let vote = &first.vote;
                crate::encode(&(vote.height, vote.round, vote.kind))
            }
            Evidence::DoubleProposal { first, .. } => {
                let proposal = &first.proposal;
                crate::encode(&("proposal", proposal.height, proposal.round))
            }
        }
    }
}

/// An unsigned transaction.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Tx {
    /// The chain it is for (a signature never carries over to another chain).
    pub chain_id: String,
    /// Who signs and pays.
    pub signer: PublicKey,
    /// The signer's account nonce.
    pub nonce: u64,
    /// The most the signer pays in fuel.
    pub fee: u64,
    /// What it does.
    pub call: Call,
}

impl Tx {
    /// What it takes from the signer's balance at most: the fee, and what a transfer sends or
    /// a stake locks.
    pub fn cost(&self) -> u64 {
        let moved = match &self.call {
            Call::Transfer { amount, .. } | Call::Stake { amount } => *amount,
            Call::Unstake { .. } | Call::Contract { .. } | Call::Evidence(_) => 0,
        };
        self.fee.saturating_add(moved)
    }

    /// Signs it with `key` (whose public key should be [`Tx::signer`]).
    pub fn sign(self, key: &SecretKey) -> SignedTx {
        let signature = key.sign(Domain::Tx, &crate::encode(&self));
        SignedTx { tx: self, signature }
    }
}

/// A transaction with its signature.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct SignedTx {
    /// The transaction.
    pub tx: Tx,
    /// The signer's signature over its canonical encoding.
    pub signature: Signature,
}

/// A signed transaction whose signature has been checked (only [`VerifiedTx::new`] makes one),
/// so that the node checks it once: on admission, not again when its block is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedTx(SignedTx);

impl VerifiedTx {
    /// `tx`, once its signature verifies.
    pub fn new(tx: SignedTx) -> Result<Self, Error> {
        tx.check_signature()?;
        Ok(Self(tx))
    }

    /// The transaction.
    pub fn into_inner(self) -> SignedTx {
        self.0
    }
}

impl std::ops::Deref for VerifiedTx {
    type Target = SignedTx;

    fn deref(&self) -> &SignedTx {
        &self.0
    }
}

impl SignedTx {
    /// The sender's address.
    pub fn sender(&self) -> Address {
        Address::of(&self.tx.signer)
    }

    /// Its hash: what names it in blocks, mempools and receipts.
    pub fn hash(&self) -> Hash {
        Hash::of("kinema 2026 tx", &crate::encode(self))
    }

    /// Checks the signature.
    pub fn check_signature(&self) -> Result<(), Error> {
        self.tx.signer.verify(Domain::Tx, &crate::encode(&self.tx), &self.signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transfer(key: &SecretKey, chain: &str) -> Tx {
        Tx {
            chain_id: chain.into(),
            signer: key.public(),
            nonce: 0,
            fee: 10,
            call: Call::Transfer { to: Address([1; 20]), amount: 5 },
        }
    }

    #[test]
    fn a_signed_transaction_checks_and_a_changed_one_does_not() {
        let key = SecretKey::from_seed([3; 32]);
        let signed = transfer(&key, "kinema-devnet").sign(&key);
        assert!(signed.check_signature().is_ok());
        assert_eq!(signed.sender(), key.address());
        let mut changed = signed.clone();
        changed.tx.call = Call::Transfer { to: Address([1; 20]), amount: 500 };
        assert!(changed.check_signature().is_err());
        let mut other_chain = signed.clone();
        other_chain.tx.chain_id = "kinema-main".into();
        assert!(other_chain.check_signature().is_err());
        assert_ne!(signed.hash(), changed.hash());
    }
}
