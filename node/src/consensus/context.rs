//! Kinema's types as Malachite sees them: the [`Ctx`] that parameterises its consensus core.
//!
//! The value consensus decides on is a block's header hash; the block itself travels beside
//! the signed proposal and each node re-executes it before voting for it. A vote signs the same
//! bytes as [`block::Vote`], so the precommits of a decision are exactly the signatures a
//! [`Certificate`](kinema_chain::block::Certificate) carries and a light client checks.

use std::fmt;
use std::sync::Arc;

use borsh::{BorshDeserialize, BorshSerialize};
use malachitebft_core_types as mc;
use mc::{NilOrVal, Round, SignedMessage, VoteType};

use kinema_chain::block::{self, Block, ValidatorSet, VoteKind};
use kinema_chain::crypto::{Domain, SecretKey};
use kinema_chain::{Address, Error, Hash, PublicKey, Signature};

/// A block height as consensus counts it.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    BorshSerialize,
    BorshDeserialize,
)]
pub struct Height(pub u64);

impl fmt::Display for Height {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl mc::Height for Height {
    const ZERO: Self = Self(0);
    // Height 0 is the genesis block, which no one votes on.
    const INITIAL: Self = Self(1);

    fn increment_by(&self, n: u64) -> Self {
        Self(self.0.saturating_add(n))
    }

    fn decrement_by(&self, n: u64) -> Option<Self> {
        self.0.checked_sub(n).map(Self)
    }

    fn as_u64(&self) -> u64 {
        self.0
    }
}

/// A validator's address as Malachite sees it: the chain's [`Address`] (Malachite's traits can
/// only be implemented here on this crate's own types). Encoded exactly as the address.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize,
)]
pub struct ValidatorAddress(pub Address);

impl fmt::Display for ValidatorAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl mc::Address for ValidatorAddress {}

/// The value a height decides: a block's header hash (votes carry the hash itself). Encoded
/// exactly as the hash.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize,
)]
pub struct BlockHash(pub Hash);

impl mc::Value for BlockHash {
    type Id = Hash;

    fn id(&self) -> Hash {
        self.0
    }
}

/// The block as a proposal part: it always travels whole.
impl mc::ProposalPart<Ctx> for Block {
    fn is_first(&self) -> bool {
        true
    }

    fn is_last(&self) -> bool {
        true
    }
}

/// A proposal: the round's proposer proposes the block with this header hash.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Proposal {
    /// Height.
    pub height: Height,
    /// Round.
    pub round: Round,
    /// The block's header hash.
    pub block: BlockHash,
    /// The round of the polka this block carries over from, or [`Round::Nil`].
    pub pol_round: Round,
    /// Who proposes.
    pub proposer: ValidatorAddress,
}

impl Proposal {
    /// The chain's own proposal, whose encoding is what the proposer signs.
    pub fn to_chain_proposal(&self, chain_id: &str) -> block::Proposal {
        block::Proposal {
            chain_id: chain_id.to_owned(),
            height: self.height.0,
            round: self.round.as_u32().unwrap_or(0),
            block: self.block.0,
            pol_round: self.pol_round.as_u32(),
        }
    }
}

impl mc::Proposal<Ctx> for Proposal {
    fn height(&self) -> Height {
        self.height
    }

    fn round(&self) -> Round {
        self.round
    }

    fn value(&self) -> &BlockHash {
        &self.block
    }

    fn take_value(self) -> BlockHash {
        self.block
    }

    fn pol_round(&self) -> Round {
        self.pol_round
    }

    fn validator_address(&self) -> &ValidatorAddress {
        &self.proposer
    }
}

/// A prevote or precommit by one validator.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Vote {
    /// Height.
    pub height: Height,
    /// Round.
    pub round: Round,
    /// Prevote or precommit.
    pub kind: VoteType,
    /// The block voted for, or nil.
    pub block: NilOrVal<Hash>,
    /// Who votes.
    pub validator: ValidatorAddress,
}

impl Vote {
    /// The chain's own vote, whose encoding is what the validator signs.
    pub fn to_chain_vote(&self, chain_id: &str) -> block::Vote {
        block::Vote {
            chain_id: chain_id.to_owned(),
            height: self.height.0,
            round: self.round.as_u32().unwrap_or(0),
            kind: match self.kind {
                VoteType::Prevote => VoteKind::Prevote,
                VoteType::Precommit => VoteKind::Precommit,
            },
            block: match self.block {
                NilOrVal::Nil => None,
                NilOrVal::Val(hash) => Some(hash),
            },
        }
    }
}

impl mc::Vote<Ctx> for Vote {
    fn height(&self) -> Height {
        self.height
    }

    fn round(&self) -> Round {
        self.round
    }

    fn value(&self) -> &NilOrVal<Hash> {
        &self.block
    }

    fn take_value(self) -> NilOrVal<Hash> {
        self.block
    }

    fn vote_type(&self) -> VoteType {
        self.kind
    }

    fn validator_address(&self) -> &ValidatorAddress {
        &self.validator
    }

    fn extension(&self) -> Option<&mc::SignedExtension<Ctx>> {
        None
    }

    fn take_extension(&mut self) -> Option<mc::SignedExtension<Ctx>> {
        None
    }

    // Kinema runs with vote extensions disabled.
    fn extend(self, _extension: mc::SignedExtension<Ctx>) -> Self {
        self
    }
}

/// A validator as consensus sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Its address.
    pub address: ValidatorAddress,
    /// Its consensus key.
    pub public_key: PublicKey,
    /// Its voting power.
    pub power: u64,
}

impl mc::Validator<Ctx> for Member {
    fn address(&self) -> &ValidatorAddress {
        &self.address
    }

    fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    fn voting_power(&self) -> u64 {
        self.power
    }
}

/// The validators of a height and the seed its proposers are drawn from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validators {
    set: ValidatorSet,
    members: Vec<Member>,
    total: u64,
    seed: Hash,
}

impl Validators {
    /// `set`, drawing proposers from `seed` (the hash of the finalized block below the height).
    pub fn new(set: ValidatorSet, seed: Hash) -> Result<Self, Error> {
        let members: Vec<Member> = set
            .validators()
            .iter()
            .map(|v| Member {
                address: ValidatorAddress(Address::of(&v.public_key)),
                public_key: v.public_key,
                power: v.power,
            })
            .collect();
        // Malachite multiplies the total by a threshold's denominator in 64 bits.
        let total = u64::try_from(set.total_power())
            .ok()
            .filter(|t| *t <= u64::MAX / 8)
            .ok_or_else(|| Error::BadValidatorSet {
                why: "its total power is above 2^61, more than consensus can count".into(),
            })?;
        Ok(Self { set, members, total, seed })
    }

    /// The chain's validator set.
    pub fn set(&self) -> &ValidatorSet {
        &self.set
    }

    /// The member with `address`.
    pub fn member(&self, address: &ValidatorAddress) -> Option<&Member> {
        self.members.binary_search_by_key(address, |m| m.address).ok().map(|i| &self.members[i])
    }
}

impl mc::ValidatorSet<Ctx> for Validators {
    fn count(&self) -> usize {
        self.members.len()
    }

    fn total_voting_power(&self) -> u64 {
        self.total
    }

    fn get_by_address(&self, address: &ValidatorAddress) -> Option<&Member> {
        self.member(address)
    }

    fn get_by_index(&self, index: usize) -> Option<&Member> {
        self.members.get(index)
    }
}

/// Ed25519 over Kinema's domain-separated messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ed25519;

impl mc::SigningScheme for Ed25519 {
    type DecodingError = Error;
    type Signature = Signature;
    type PublicKey = PublicKey;
    type PrivateKey = SecretKey;

    fn decode_signature(bytes: &[u8]) -> Result<Signature, Error> {
        kinema_chain::decode(bytes)
    }

    fn encode_signature(signature: &Signature) -> Vec<u8> {
        signature.0.to_vec()
    }

    fn decode_public_key(bytes: &[u8]) -> Result<PublicKey, Error> {
        kinema_chain::decode(bytes)
    }

    fn encode_public_key(public_key: &PublicKey) -> Vec<u8> {
        public_key.0.to_vec()
    }
}

/// Kinema's consensus context: the chain whose messages are signed.
#[derive(Debug, Clone)]
pub struct Ctx {
    chain_id: Arc<str>,
}

impl Ctx {
    /// The context of chain `chain_id`.
    pub fn new(chain_id: &str) -> Self {
        Self { chain_id: chain_id.into() }
    }

    /// The chain id.
    pub fn chain_id(&self) -> &str {
        &self.chain_id
    }

    /// What a proposer signs: the chain's own [`block::Proposal`]'s encoding.
    fn proposal_bytes(&self, proposal: &Proposal) -> Vec<u8> {
        kinema_chain::encode(&proposal.to_chain_proposal(&self.chain_id))
    }

    /// `vote` signed with `key`.
    pub fn sign_vote(&self, vote: Vote, key: &SecretKey) -> mc::SignedVote<Ctx> {
        let bytes = kinema_chain::encode(&vote.to_chain_vote(&self.chain_id));
        let signature = key.sign(Domain::Vote, &bytes);
        SignedMessage::new(vote, signature)
    }

    /// `proposal` signed with `key`.
    pub fn sign_proposal(&self, proposal: Proposal, key: &SecretKey) -> mc::SignedProposal<Ctx> {
        let signature = key.sign(Domain::Proposal, &self.proposal_bytes(&proposal));
        SignedMessage::new(proposal, signature)
    }

    /// Whether `signature` is `key`'s over `vote`.
    pub fn check_vote(&self, vote: &Vote, signature: &Signature, key: &PublicKey) -> bool {
        let bytes = kinema_chain::encode(&vote.to_chain_vote(&self.chain_id));
        key.verify(Domain::Vote, &bytes, signature).is_ok()
    }

    /// Whether `signature` is `key`'s over `proposal`.
    pub fn check_proposal(
        &self,
        proposal: &Proposal,
        signature: &Signature,
        key: &PublicKey,
    ) -> bool {
        key.verify(Domain::Proposal, &self.proposal_bytes(proposal), signature).is_ok()
    }

    /// The chain's form of a signed proposal, for evidence.
    pub fn chain_signed_proposal(
        &self,
        signed: &mc::SignedProposal<Ctx>,
        key: PublicKey,
    ) -> block::SignedProposal {
        block::SignedProposal {
            proposal: signed.message.to_chain_proposal(&self.chain_id),
            proposer: key,
            signature: signed.signature,
        }
    }

    /// The chain's form of a double vote.
    pub fn chain_signed_vote(
        &self,
        signed: &mc::SignedVote<Ctx>,
        key: PublicKey,
    ) -> block::SignedVote {
        block::SignedVote {
            vote: signed.message.to_chain_vote(&self.chain_id),
            validator: key,
            signature: signed.signature,
        }
    }
}

impl mc::Context for Ctx {
    type Address = ValidatorAddress;
    type Height = Height;
    type ProposalPart = Block;
    type Proposal = Proposal;
    type Validator = Member;
    type ValidatorSet = Validators;
    type Timeouts = mc::LinearTimeouts;
    type Value = BlockHash;
    type Vote = Vote;
    type Extension = ();
    type SigningScheme = Ed25519;

    fn select_proposer<'a>(
        &self,
        validators: &'a Validators,
        height: Height,
        round: Round,
    ) -> &'a Member {
        let round = round.as_u32().unwrap_or(0);
        &validators.members[validators.set.proposer_index(validators.seed, height.0, round)]
    }

    fn new_proposal(
        &self,
        height: Height,
        round: Round,
        block: BlockHash,
        pol_round: Round,
        proposer: ValidatorAddress,
    ) -> Proposal {
        Proposal { height, round, block, pol_round, proposer }
    }

    fn new_prevote(
        &self,
        height: Height,
        round: Round,
        block: NilOrVal<Hash>,
        validator: ValidatorAddress,
    ) -> Vote {
        Vote { height, round, kind: VoteType::Prevote, block, validator }
    }

    fn new_precommit(
        &self,
        height: Height,
        round: Round,
        block: NilOrVal<Hash>,
        validator: ValidatorAddress,
    ) -> Vote {
        Vote { height, round, kind: VoteType::Precommit, block, validator }
    }
}
