//! Epochs: the validator set changes only at epoch boundaries, and the state says what it
//! becomes.
//!
//! With epoch length `L`, epoch `e` is heights `e·L + 1 ..= (e + 1)·L`. The state after block
//! `e·L` (the genesis block for `e = 0`) holds epoch `e`'s validator set at
//! [`validator_set_key`]`(e)`; every header of the epoch names that set's hash. Executing the
//! last block of an epoch writes the next epoch's set: every account that staked (the chain keeps
//! their keys at [`STAKERS_KEY`]) with its stake as power, the largest [`MAX_VALIDATORS`].
//!
//! A light client that trusts epoch `e`'s set follows to `e + 1` with [`follow`]: the last
//! header of epoch `e`, certified by the trusted set, and a state proof of the next set against
//! that header's state root. This module does no IO and builds for wasm32.

use crate::block::{Certificate, Header, ValidatorSet};
use crate::state::Proof;
use crate::{Address, Error, PublicKey};

/// Where the state keeps the epoch length (set at genesis).
pub const EPOCH_LENGTH_KEY: &[u8] = b"chain/epoch_length";

/// Where the state keeps every account that ever staked, with its public key, ordered by
/// address (borsh `Vec<(Address, PublicKey)>`).
pub const STAKERS_KEY: &[u8] = b"chain/stakers";

/// The most validators an epoch has; the stakes beyond them do not vote.
pub const MAX_VALIDATORS: usize = 100;

/// The state key of epoch `epoch`'s validator set.
pub fn validator_set_key(epoch: u64) -> Vec<u8> {
    let mut key = b"chain/validator_set/".to_vec();
    key.extend_from_slice(&epoch.to_be_bytes());
    key
}

/// The epoch of block `height` (the genesis block counts as epoch 0).
pub fn epoch_of(height: u64, length: u64) -> u64 {
    height.saturating_sub(1) / length.max(1)
}

/// Whether block `height` is the last of its epoch (its execution writes the next set).
pub fn is_last_of_epoch(height: u64, length: u64) -> bool {
    height > 0 && height.is_multiple_of(length.max(1))
}

/// The next epoch's set from the stakers and their stakes (`stake_of`), or `current` when no
/// one has stake left (a chain never runs out of validators).
pub fn next_set(
    stakers: &[(Address, PublicKey)],
    mut stake_of: impl FnMut(&Address) -> Result<u64, Error>,
    current: &ValidatorSet,
) -> Result<ValidatorSet, Error> {
    let mut candidates = Vec::new();
    for (address, public_key) in stakers {
        let power = stake_of(address)?;
        if power > 0 {
            candidates.push(crate::block::Validator { public_key: *public_key, power });
        }
    }
    if candidates.is_empty() {
        return Ok(current.clone());
    }
    // The largest stakes; equal stakes in address order (the stakers list is ordered).
    candidates.sort_by_key(|v| std::cmp::Reverse(v.power));
    candidates.truncate(MAX_VALIDATORS);
    ValidatorSet::new(candidates)
}

/// The light client's step from a trusted set to the next epoch's: `header` is the last block
/// of its epoch, `certificate` finalizes it under `trusted`, and `proof` shows that its state
/// holds `next` as the following epoch's set. Returns `next`, now trusted.
pub fn follow(
    header: &Header,
    certificate: &Certificate,
    trusted: &ValidatorSet,
    epoch_length: u64,
    next: ValidatorSet,
    proof: &Proof,
) -> Result<ValidatorSet, Error> {
    if !is_last_of_epoch(header.height, epoch_length) {
        return Err(Error::BadProof {
            why: format!(
                "block {} is not the last of an epoch of {epoch_length} blocks",
                header.height
            ),
        });
    }
    certificate.verify(header, trusted)?;
    let epoch = epoch_of(header.height, epoch_length) + 1;
    proof.verify(header.state_root, &validator_set_key(epoch), Some(&crate::encode(&next)))?;
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::Validator;
    use crate::crypto::SecretKey;

    #[test]
    fn epochs_count_from_height_one() {
        assert_eq!(
            (epoch_of(0, 10), epoch_of(1, 10), epoch_of(10, 10), epoch_of(11, 10)),
            (0, 0, 0, 1)
        );
        assert!(is_last_of_epoch(10, 10) && is_last_of_epoch(20, 10));
        assert!(!is_last_of_epoch(0, 10) && !is_last_of_epoch(11, 10));
    }

    #[test]
    fn the_next_set_keeps_the_largest_stakes_and_never_empties() {
        let stakers: Vec<(Address, PublicKey)> = (0..(MAX_VALIDATORS + 5) as u32)
            .map(|i| {
                let mut seed = [1u8; 32];
                seed[..4].copy_from_slice(&i.to_le_bytes());
                let key = SecretKey::from_seed(seed);
                (key.address(), key.public())
            })
            .collect();
        let stake = |a: &Address| Ok(u64::from(a.0[0]) % 7);
        let current =
            ValidatorSet::new(vec![Validator { public_key: stakers[0].1, power: 1 }]).unwrap();
        let next = next_set(&stakers, stake, &current).unwrap();
        assert!(next.validators().len() <= MAX_VALIDATORS);
        assert!(next.validators().iter().all(|v| v.power > 0));
        let smallest_in = next.validators().iter().map(|v| v.power).min().unwrap();
        let keys: Vec<PublicKey> = next.validators().iter().map(|v| v.public_key).collect();
        for (address, key) in &stakers {
            if !keys.contains(key) {
                assert!(stake(address).unwrap() <= smallest_in);
            }
        }
        let nobody = next_set(&stakers, |_| Ok(0), &current).unwrap();
        assert_eq!(nobody, current);
    }
}
