//! What a consensus message must show before a node acts on it or forwards it.
//!
//! A [`View`] is what the checks need: the chain, the height being decided, its validator set
//! and the seed its proposers are drawn from. The engine checks what reaches it against its own
//! view; the [`Guard`] holds a copy the engine keeps current, which the gossip layer asks
//! ([`Guard::admits`]) before it delivers or forwards a message, so that nothing a
//! non-validator makes up travels further than the first honest node:
//!
//! - a vote or a proposal must be signed by a member of the set;
//! - a block must be signed by the proposer of its round (the signature of the round's
//!   proposal), for the height being decided, or by a member for the next height;
//! - a finalized header must carry a certificate: more than 2/3 of the set's power when the
//!   header names this set, more than 1/3 of it otherwise (a later epoch's head, which a node
//!   behind cannot check in full, must still be signed by validators it knows);
//! - a message for a height far from the one being decided is ignored, not held against its
//!   sender (a node behind hears the chain ahead of it); a forgery is rejected, and gossip that
//!   keeps sending forgeries gets its sender banned;
//! - a transaction must be for this chain and signed by its sender;
//! - sync requests and answers never travel on gossip: they go to one peer.

use std::sync::RwLock;

use kinema_chain::block::ValidatorSet;
use kinema_chain::epoch::is_last_of_epoch;
use kinema_chain::gossip::{Finalized, Topic};
use kinema_chain::tx::SignedTx;
use kinema_chain::{Address, Hash, PublicKey};
use kinema_net::gossip::Verdict;
use malachitebft_core_consensus::{LivenessMsg, SignedConsensusMsg};

use super::context::Ctx;
use super::{Message, ProposedBlock};

/// What the checks of one height need.
#[derive(Debug, Clone)]
pub struct View {
    ctx: Ctx,
    chain_id: String,
    height: u64,
    validators: ValidatorSet,
    seed: Hash,
    /// Whether the height is the last of its epoch (the next is decided by another set).
    epoch_ends: bool,
    /// Whether it is the first of its epoch (the one before was decided by another set).
    epoch_starts: bool,
}

impl View {
    /// Deciding `height` of `chain_id` with `validators`, proposers drawn from `seed` (the hash
    /// of the block below), in epochs of `epoch_length` blocks.
    pub fn new(
        chain_id: &str,
        height: u64,
        validators: ValidatorSet,
        seed: Hash,
        epoch_length: u64,
    ) -> Self {
        Self {
            ctx: Ctx::new(chain_id),
            chain_id: chain_id.to_owned(),
            height,
            validators,
            seed,
            epoch_ends: is_last_of_epoch(height, epoch_length),
            epoch_starts: height == 0 || is_last_of_epoch(height - 1, epoch_length),
        }
    }

    /// How a message for `height` is checked against this set.
    /// The height before is checked too: a node that committed it still forwards its late votes
    /// to peers still deciding it.
    fn checked_at(&self, height: u64) -> Checked {
        let next = height == self.height + 1;
        let previous = height + 1 == self.height;
        if height == self.height || (next && !self.epoch_ends) || (previous && !self.epoch_starts) {
            Checked::Now
        } else if next {
            Checked::NextEpoch
        } else {
            Checked::Elsewhere
        }
    }

    /// The height being decided.
    pub fn height(&self) -> u64 {
        self.height
    }

    /// The proposer of `round` of the height being decided.
    pub fn proposer(&self, round: u32) -> Option<Address> {
        let index = self.validators.proposer_index(self.seed, self.height, round);
        self.validators.validators().get(index).map(|v| Address::of(&v.public_key))
    }

    /// Whether `part` may be acted on: for this height signed by its round's proposer, or for
    /// the next height signed by a member (the next height's proposers are not drawn yet).
    /// A block for another height is ignored; one signed by anyone else is a lie.
    pub fn check_block(&self, part: &ProposedBlock) -> Result<(), Refused> {
        let height = part.block.header.height;
        match self.checked_at(height) {
            Checked::Now => {}
            Checked::NextEpoch => return Ok(()),
            Checked::Elsewhere => {
                let why = format!("a block for height {height} while deciding {}", self.height);
                return Err(Refused::Ignore(why));
            }
        }
        let Some(member) = self.validators.get(&part.proposer) else {
            let why = format!("a block proposed by {}, not a validator", part.proposer);
            return Err(Refused::Lie(why));
        };
        if height == self.height {
            let round = part.round.as_u32().unwrap_or(0);
            if self.proposer(round) != Some(part.proposer) {
                let why = format!("{} is not the proposer of round {round}", part.proposer);
                return Err(Refused::Lie(why));
            }
        }
        if !part.check(&self.chain_id, &member.public_key) {
            return Err(Refused::Lie(format!("the block's signature is not {}'s", part.proposer)));
        }
        Ok(())
    }

    /// Whether `heard` is certified: by more than 2/3 of the set's power when its header names
    /// this set (a certificate that does not verify is a lie), by more than 1/3 otherwise (a
    /// later epoch's head signed by fewer of the validators this node knows is ignored).
    pub fn check_head(&self, heard: &Finalized) -> Verdict {
        let Finalized { header, certificate } = heard;
        if header.chain_id != self.chain_id {
            return Verdict::Reject;
        }
        if header.validator_set_hash == self.validators.hash() {
            return certificate.verify(header, &self.validators).is_ok().into();
        }
        let signed = certificate.power_signed_by(header, &self.validators);
        if 3 * signed > self.validators.total_power() { Verdict::Accept } else { Verdict::Ignore }
    }

    fn check_signed(
        &self,
        height: u64,
        signer: &Address,
        check: impl Fn(&PublicKey) -> bool,
    ) -> Verdict {
        match self.checked_at(height) {
            Checked::Now => {
                self.validators.get(signer).is_some_and(|member| check(&member.public_key)).into()
            }
            // Consensus itself drops what does not verify under the next epoch's set.
            Checked::NextEpoch => Verdict::Accept,
            Checked::Elsewhere => Verdict::Ignore,
        }
    }

    fn check_vote(&self, vote: &malachitebft_core_types::SignedVote<Ctx>) -> Verdict {
        let m = &vote.message;
        self.check_signed(m.height.0, &m.validator.0, |key| {
            self.ctx.check_vote(m, &vote.signature, key)
        })
    }

    /// What to do with `message`, heard on `topic`.
    pub fn admits(&self, topic: Topic, message: &Message) -> Verdict {
        if message.topic() != topic {
            return Verdict::Reject;
        }
        match message {
            Message::Consensus(SignedConsensusMsg::Vote(vote))
            | Message::Liveness(LivenessMsg::Vote(vote)) => self.check_vote(vote),
            Message::Consensus(SignedConsensusMsg::Proposal(proposal)) => {
                let m = &proposal.message;
                self.check_signed(m.height.0, &m.proposer.0, |key| {
                    self.ctx.check_proposal(m, &proposal.signature, key)
                })
            }
            // Their votes are checked by consensus itself; they only move a stuck round.
            Message::Liveness(_) => Verdict::Accept,
            Message::Block(part) => match self.check_block(part) {
                Ok(()) => Verdict::Accept,
                Err(Refused::Ignore(_)) => Verdict::Ignore,
                Err(Refused::Lie(_)) => Verdict::Reject,
            },
            Message::Tx(bytes) => kinema_chain::decode::<SignedTx>(bytes)
                .is_ok_and(|tx| tx.tx.chain_id == self.chain_id && tx.check_signature().is_ok())
                .into(),
            Message::Finalized(heard) => self.check_head(heard),
            Message::SyncRequest { .. } | Message::SyncResponse { .. } => Verdict::Reject,
        }
    }
}

/// How a message's height is checked against a view.
enum Checked {
    /// Against this set: this height or the next within the epoch.
    Now,
    /// Not at all: the next height, decided by the next epoch's set.
    NextEpoch,
    /// Not at all: stale, or too far ahead to be this node's business yet.
    Elsewhere,
}

/// Why a block is not acted on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// It is for another height: right or wrong, not this node's business now.
    Ignore(String),
    /// Its signature is not its round's proposer's: only a liar sends it.
    Lie(String),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Ignore(why) | Refused::Lie(why) => f.write_str(why),
        }
    }
}

/// The engine's current [`View`], shared with the gossip layer's checks.
#[derive(Debug, Default)]
pub struct Guard {
    view: RwLock<Option<View>>,
}

impl Guard {
    /// A guard that admits what decodes as its topic's kind until the engine gives it a view.
    pub fn new() -> Self {
        Self::default()
    }

    /// The view to check against from now on.
    pub fn set(&self, view: View) {
        if let Ok(mut current) = self.view.write() {
            *current = Some(view);
        }
    }

    /// What to do with `bytes`, heard on `topic`.
    pub fn admits(&self, topic: Topic, bytes: &[u8]) -> Verdict {
        let Ok(message) = kinema_chain::decode::<Message>(bytes) else { return Verdict::Reject };
        match self.view.read().ok().as_deref().and_then(Option::as_ref) {
            Some(view) => view.admits(topic, &message),
            // Not started yet: nothing to check against but the kind.
            None => {
                let direct =
                    matches!(message, Message::SyncRequest { .. } | Message::SyncResponse { .. });
                (message.topic() == topic && !direct).into()
            }
        }
    }
}
