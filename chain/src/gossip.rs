//! What the chain's nodes gossip, as far as nodes that do not run consensus need to know (the
//! browser light node among them, so this module builds for wasm32): the topics, and the
//! finalized headers validators announce on [`Topic::Headers`].

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::block::{Certificate, Header};

/// What a broadcast is about: each kind has its own gossip topic, so a node can follow one
/// without hearing the others (a relay or a browser follows finalized headers only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    /// Proposals, votes, blocks being decided.
    Consensus,
    /// Transactions for the mempools.
    Transactions,
    /// Finalized headers with their certificates ([`Finalized`]).
    Headers,
}

impl Topic {
    /// Every topic.
    pub const ALL: [Topic; 3] = [Topic::Consensus, Topic::Transactions, Topic::Headers];

    /// Its gossipsub topic on chain `chain_id`: `/kinema/<chain>/<consensus|txs|headers>/1`.
    pub fn name(self, chain_id: &str) -> String {
        let kind = match self {
            Topic::Consensus => "consensus",
            Topic::Transactions => "txs",
            Topic::Headers => "headers",
        };
        format!("/kinema/{chain_id}/{kind}/1")
    }
}

/// A block just committed: its header and certificate, all a light client needs to follow the
/// chain. Not trusted until the certificate is checked against the header's validator set.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Finalized {
    /// The header.
    pub header: Header,
    /// Its certificate.
    pub certificate: Certificate,
}

/// The first byte of a [`Topic::Headers`] message: the tag of the consensus message that
/// carries a [`Finalized`] (`consensus::Message::Finalized`; the chain's tests pin it).
pub const FINALIZED_TAG: u8 = 4;

impl Finalized {
    /// The header a [`Topic::Headers`] message carries, if it is one.
    pub fn from_gossip(bytes: &[u8]) -> Option<Finalized> {
        match bytes.split_first() {
            Some((&FINALIZED_TAG, rest)) => crate::decode(rest).ok(),
            _ => None,
        }
    }
}
