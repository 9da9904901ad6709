//! Blocks, validator sets, votes and the commit certificates a light client checks.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::crypto::{Domain, SecretKey};
use crate::tx::SignedTx;
use crate::{Address, Error, Hash, PublicKey, Signature};

/// A block header: everything a light client follows.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Header {
    /// The chain it belongs to.
    pub chain_id: String,
    /// Height; the genesis block is 0.
    pub height: u64,
    /// Hash of the previous header ([`Hash::ZERO`] for the first).
    pub parent: Hash,
    /// Proposal time, milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// Who proposed it.
    pub proposer: Address,
    /// Root of the state after its transactions.
    pub state_root: Hash,
    /// [`tx_root`] of its transactions.
    pub tx_root: Hash,
    /// [`ValidatorSet::hash`] of the validators that certify it.
    pub validator_set_hash: Hash,
}

impl Header {
    /// Its hash: what votes and certificates sign, and the next header's parent.
    pub fn hash(&self) -> Hash {
        Hash::of("kinema 2026 header", &crate::encode(self))
    }
}

/// A header and its transactions.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Block {
    /// The header.
    pub header: Header,
    /// The transactions, in execution order.
    pub txs: Vec<SignedTx>,
}

/// The binary Merkle root of the transactions' hashes ([`Hash::ZERO`] when there are none): an
/// odd node is carried up unpaired.
pub fn tx_root(txs: &[SignedTx]) -> Hash {
    let mut level: Vec<Hash> =
        txs.iter().map(|t| Hash::of("kinema 2026 tx leaf", &t.hash().0)).collect();
    if level.is_empty() {
        return Hash::ZERO;
    }
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [a, b] => {
                    let mut both = [0; 64];
                    both[..32].copy_from_slice(&a.0);
                    both[32..].copy_from_slice(&b.0);
                    Hash::of("kinema 2026 tx node", &both)
                }
                [a] => *a,
                _ => unreachable!("chunks of two"),
            })
            .collect();
    }
    level[0]
}

/// A validator and its voting power (its stake).
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Validator {
    /// Its consensus key.
    pub public_key: PublicKey,
    /// Voting power.
    pub power: u64,
}

/// The validators of an epoch, ordered by address. Decoding checks what [`ValidatorSet::new`]
/// checks, and that the order is canonical.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, Serialize, Deserialize)]
#[serde(try_from = "Vec<Validator>", into = "Vec<Validator>")]
pub struct ValidatorSet {
    validators: Vec<Validator>,
}

impl BorshDeserialize for ValidatorSet {
    fn deserialize_reader<R: std::io::Read>(reader: &mut R) -> std::io::Result<Self> {
        let validators = Vec::<Validator>::deserialize_reader(reader)?;
        let invalid =
            |e: Error| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string());
        let sorted = validators.is_sorted_by_key(|v| Address::of(&v.public_key));
        if !sorted {
            return Err(invalid(Error::BadValidatorSet { why: "not ordered by address".into() }));
        }
        Self::new(validators).map_err(invalid)
    }
}

impl TryFrom<Vec<Validator>> for ValidatorSet {
    type Error = Error;

    fn try_from(validators: Vec<Validator>) -> Result<Self, Error> {
        Self::new(validators)
    }
}

impl From<ValidatorSet> for Vec<Validator> {
    fn from(set: ValidatorSet) -> Self {
        set.validators
    }
}

impl ValidatorSet {
    /// A set of `validators`; none may have zero power or appear twice.
    pub fn new(mut validators: Vec<Validator>) -> Result<Self, Error> {
        validators.sort_by_key(|v| Address::of(&v.public_key));
        if validators.is_empty() {
            return Err(Error::BadValidatorSet { why: "it is empty".into() });
        }
        if let Some(v) = validators.iter().find(|v| v.power == 0) {
            return Err(Error::BadValidatorSet {
                why: format!("{} has no power", Address::of(&v.public_key)),
            });
        }
        if let Some(w) = validators.windows(2).find(|w| w[0].public_key == w[1].public_key) {
            return Err(Error::BadValidatorSet {
                why: format!("{} appears twice", Address::of(&w[0].public_key)),
            });
        }
        Ok(Self { validators })
    }

    /// The validators, ordered by address.
    pub fn validators(&self) -> &[Validator] {
        &self.validators
    }

    /// The validator with `address`.
    pub fn get(&self, address: &Address) -> Option<&Validator> {
        self.validators
            .binary_search_by_key(address, |v| Address::of(&v.public_key))
            .ok()
            .map(|i| &self.validators[i])
    }

    /// Sum of all voting power.
    pub fn total_power(&self) -> u128 {
        self.validators.iter().map(|v| u128::from(v.power)).sum()
    }

    /// Its hash, as headers carry it.
    pub fn hash(&self) -> Hash {
        Hash::of("kinema 2026 validator set", &crate::encode(self))
    }

    /// The proposer for `height` and `round`: drawn with probability proportional to power from
    /// `seed` (the hash of a finalized block, which no one could choose), so every node picks the
    /// same one and no one can predict it before the seed is final.
    pub fn proposer(&self, seed: Hash, height: u64, round: u32) -> &Validator {
        &self.validators[self.proposer_index(seed, height, round)]
    }

    /// The position of [`ValidatorSet::proposer`] in [`ValidatorSet::validators`].
    pub fn proposer_index(&self, seed: Hash, height: u64, round: u32) -> usize {
        let draw = Hash::of("kinema 2026 proposer", &crate::encode(&(seed, height, round)));
        // 128 bits of the draw modulo the total: the bias is below 2^-64 for any real stake.
        let mut low = [0u8; 16];
        low.copy_from_slice(&draw.0[..16]);
        let mut target = u128::from_le_bytes(low) % self.total_power();
        for (index, v) in self.validators.iter().enumerate() {
            let power = u128::from(v.power);
            if target < power {
                return index;
            }
            target -= power;
        }
        // The draw is below the total, so the walk always ends inside the list.
        self.validators.len() - 1
    }
}

/// Prevote or precommit.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum VoteKind {
    /// First round of voting.
    Prevote,
    /// Second round; >2/3 of power precommitting a block commits it.
    Precommit,
}

/// A consensus vote.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Vote {
    /// The chain.
    pub chain_id: String,
    /// Height voted on.
    pub height: u64,
    /// Round within the height.
    pub round: u32,
    /// Which step.
    pub kind: VoteKind,
    /// The header hash voted for; `None` is a vote for no block.
    pub block: Option<Hash>,
}

impl Vote {
    /// Signs it with `key`.
    pub fn sign(self, key: &SecretKey) -> SignedVote {
        let signature = key.sign(Domain::Vote, &crate::encode(&self));
        SignedVote { vote: self, validator: key.public(), signature }
    }
}

/// A vote with its validator's signature.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct SignedVote {
    /// The vote.
    pub vote: Vote,
    /// Who voted.
    pub validator: PublicKey,
    /// The signature over the vote's canonical encoding.
    pub signature: Signature,
}

impl SignedVote {
    /// Checks the signature.
    pub fn check(&self) -> Result<(), Error> {
        self.validator.verify(Domain::Vote, &crate::encode(&self.vote), &self.signature)
    }
}

/// A round's proposal as its proposer signs it: the block it puts forward.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Proposal {
    /// The chain.
    pub chain_id: String,
    /// Height.
    pub height: u64,
    /// Round within the height.
    pub round: u32,
    /// The proposed block's header hash.
    pub block: Hash,
    /// The round of the polka it carries over from, if any.
    pub pol_round: Option<u32>,
}

impl Proposal {
    /// Signs it with `key`.
    pub fn sign(self, key: &SecretKey) -> SignedProposal {
        let signature = key.sign(Domain::Proposal, &crate::encode(&self));
        SignedProposal { proposal: self, proposer: key.public(), signature }
    }
}

/// A proposal with its proposer's signature.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct SignedProposal {
    /// The proposal.
    pub proposal: Proposal,
    /// Who proposed.
    pub proposer: PublicKey,
    /// The signature over the proposal's canonical encoding.
    pub signature: Signature,
}

impl SignedProposal {
    /// Checks the signature.
    pub fn check(&self) -> Result<(), Error> {
        self.proposer.verify(Domain::Proposal, &crate::encode(&self.proposal), &self.signature)
    }
}

/// One validator's precommit signature in a certificate.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct CommitSignature {
    /// The validator.
    pub validator: Address,
    /// Its signature over the precommit [`Vote`] for the block.
    pub signature: Signature,
}

/// Proof that a block is final: precommits for it from more than 2/3 of the voting power.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Certificate {
    /// Height of the block.
    pub height: u64,
    /// Round in which it was committed.
    pub round: u32,
    /// The block's header hash.
    pub block: Hash,
    /// The precommits.
    pub signatures: Vec<CommitSignature>,
}

impl Certificate {
    /// Checks that it finalizes `header` under `validators` (the set `header` names): the
    /// height and hash match, every signer is a validator, signs once and signs the precommit,
    /// and the signers hold more than 2/3 of the power. Returns the power that signed.
    pub fn verify(&self, header: &Header, validators: &ValidatorSet) -> Result<u128, Error> {
        let bad = |why: String| Error::BadCertificate { height: self.height, why };
        if header.validator_set_hash != validators.hash() {
            return Err(bad("the header names another validator set".into()));
        }
        if self.height != header.height || self.block != header.hash() {
            return Err(bad(format!("it certifies another block than {}", header.hash())));
        }
        let precommit = self.precommit(header);
        let mut seen = Vec::with_capacity(self.signatures.len());
        let mut power = 0u128;
        for s in &self.signatures {
            let Some(v) = validators.get(&s.validator) else {
                return Err(bad(format!("{} is not a validator", s.validator)));
            };
            if seen.contains(&s.validator) {
                return Err(bad(format!("{} signs twice", s.validator)));
            }
            seen.push(s.validator);
            v.public_key.verify(Domain::Vote, &precommit, &s.signature)?;
            power += u128::from(v.power);
        }
        let total = validators.total_power();
        if 3 * power <= 2 * total {
            return Err(bad(format!("signers hold {power} of {total} power, not more than 2/3")));
        }
        Ok(power)
    }
}

impl Certificate {
    /// The bytes each of its signers signed: the precommit of its block.
    fn precommit(&self, header: &Header) -> Vec<u8> {
        crate::encode(&Vote {
            chain_id: header.chain_id.clone(),
            height: self.height,
            round: self.round,
            kind: VoteKind::Precommit,
            block: Some(self.block),
        })
    }

    /// The power of `validators` whose precommits in it for `header` verify: members only, each
    /// once, other signers ignored, and none of `verify`'s requirement that the header name
    /// this set. Enough to tell a real head of a later epoch (signed by validators this node
    /// knows) from a made-up one, without trusting it.
    pub fn power_signed_by(&self, header: &Header, validators: &ValidatorSet) -> u128 {
        if self.height != header.height || self.block != header.hash() {
            return 0;
        }
        let precommit = self.precommit(header);
        let mut seen = Vec::with_capacity(self.signatures.len());
        let mut power = 0u128;
        for s in &self.signatures {
            let Some(v) = validators.get(&s.validator) else { continue };
            if seen.contains(&s.validator) {
                continue;
            }
            if v.public_key.verify(Domain::Vote, &precommit, &s.signature).is_ok() {
                seen.push(s.validator);
                power += u128::from(v.power);
            }
        }
        power
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tx_roots_pair_up_and_carry_odd_nodes() {
        use crate::tx::{Call, Tx};
        assert_eq!(tx_root(&[]), Hash::ZERO);
        let key = SecretKey::from_seed([5; 32]);
        let txs: Vec<SignedTx> = (0..3)
            .map(|nonce| {
                let call = Call::Stake { amount: 1 };
                Tx { chain_id: "t".into(), signer: key.public(), nonce, fee: 1, call }.sign(&key)
            })
            .collect();
        let leaf = |t: &SignedTx| Hash::of("kinema 2026 tx leaf", &t.hash().0);
        let node = |a: Hash, b: Hash| Hash::of("kinema 2026 tx node", &[a.0, b.0].concat());
        assert_eq!(tx_root(&txs[..1]), leaf(&txs[0]));
        let pair = node(leaf(&txs[0]), leaf(&txs[1]));
        assert_eq!(tx_root(&txs[..2]), pair);
        assert_eq!(tx_root(&txs), node(pair, leaf(&txs[2])));
    }

    #[test]
    fn validator_sets_refuse_empty_zero_power_and_duplicates() {
        let v = |seed, power| Validator {
            public_key: SecretKey::from_seed([seed; 32]).public(),
            power,
        };
        assert!(ValidatorSet::new(vec![]).is_err());
        assert!(ValidatorSet::new(vec![v(1, 0)]).is_err());
        let twice = ValidatorSet::new(vec![v(1, 5), v(1, 6)]).unwrap_err().to_string();
        assert!(twice.contains("appears twice"), "{twice}");
        let set = ValidatorSet::new(vec![v(2, 5), v(1, 6)]).unwrap();
        assert_eq!(set.total_power(), 11);
        let a = SecretKey::from_seed([1; 32]).address();
        assert_eq!(set.get(&a).map(|v| v.power), Some(6));

        // Decoding applies the same rules, and wants the canonical order.
        assert_eq!(crate::decode::<ValidatorSet>(&crate::encode(&set)).unwrap(), set);
        let mut reversed = set.validators().to_vec();
        reversed.reverse();
        let err = crate::decode::<ValidatorSet>(&crate::encode(&reversed)).unwrap_err();
        assert!(err.to_string().contains("not ordered"), "{err}");
        assert!(crate::decode::<ValidatorSet>(&crate::encode(&vec![v(3, 0)])).is_err());
        let json = serde_json::to_string(&vec![v(1, 5), v(1, 6)]).unwrap();
        assert!(serde_json::from_str::<ValidatorSet>(&json).is_err());
    }

    #[test]
    fn proposers_are_drawn_by_power_and_agree_everywhere() {
        let v = |seed, power| Validator {
            public_key: SecretKey::from_seed([seed; 32]).public(),
            power,
        };
        let set = ValidatorSet::new(vec![v(1, 10), v(2, 20), v(3, 30), v(4, 40)]).unwrap();
        let seed = Hash::of("test seed", b"finalized block");
        assert_eq!(set.proposer(seed, 9, 0), set.proposer(seed, 9, 0));
        let mut counts = std::collections::HashMap::new();
        for height in 0..20_000 {
            *counts.entry(set.proposer(seed, height, 0).power).or_insert(0u32) += 1;
        }
        // Each validator's share within 1.5 points of its 10/20/30/40 %.
        for (power, count) in counts {
            let share = f64::from(count) / 200.0;
            assert!((share - power as f64).abs() < 1.5, "power {power}: {share:.2} %");
        }
        // Another seed, another order of proposers.
        let other = Hash::of("test seed", b"another block");
        let differs = (0..20).any(|h| set.proposer(seed, h, 0) != set.proposer(other, h, 0));
        assert!(differs);
    }
}
