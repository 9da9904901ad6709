//! Verified streaming: a blob named by its blake3 hash, checked 16 KiB at a time.
//!
//! blake3 hashes its input as a binary tree of 1 KiB chunks. A blob's [`Outboard`] holds the
//! chaining value of every 16 KiB group of chunks (32 bytes per 16 KiB, 0.2 %); before any data
//! arrives, the receiver rebuilds the root from them with blake3's own merge rules and compares
//! it with the name it asked for, so a sender cannot make up an outboard. Each group is then
//! checked against its chaining value as it arrives: a peer that sends one wrong byte is caught
//! at that group, before the next one is read. This module does no IO and builds for wasm32.

use blake3::hazmat::{self, ChainingValue, HasherExt, Mode};
use kinema_chain::Hash;

/// Bytes per verified group: 16 chunks of 1 KiB.
pub const GROUP: usize = 16 * 1024;

/// Why data does not match the hash it was asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mismatch {
    /// The outboard does not hash to the blob's name.
    #[error("the outboard of {len} bytes does not hash to {expected}")]
    Outboard {
        /// The blob's name.
        expected: Hash,
        /// The length the outboard claims.
        len: u64,
    },
    /// A group's bytes do not match its chaining value.
    #[error("group {index} (bytes {start}..) does not match the blob's hash")]
    Group {
        /// Which group.
        index: usize,
        /// Its first byte.
        start: u64,
    },
    /// A group has the wrong length for its place.
    #[error("group {index} has {found} bytes, {expected} expected")]
    Length {
        /// Which group.
        index: usize,
        /// Its length at that place.
        expected: usize,
        /// What came.
        found: usize,
    },
}

/// The chaining value of every group of a blob, and its length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outboard {
    len: u64,
    cvs: Vec<ChainingValue>,
}

fn group_cv(index: usize, bytes: &[u8]) -> ChainingValue {
    let mut hasher = blake3::Hasher::new();
    hasher.set_input_offset((index * GROUP) as u64);
    hasher.update(bytes);
    hasher.finalize_non_root()
}

/// How many groups a blob of `len` bytes has (an empty blob has one, empty).
pub fn groups(len: u64) -> usize {
    len.div_ceil(GROUP as u64).max(1) as usize
}

impl Outboard {
    /// The outboard of `data`, with its name.
    pub fn compute(data: &[u8]) -> (Hash, Self) {
        let hash = Hash::digest(data);
        let cvs = if data.len() <= GROUP {
            // A single group is the root itself: it is checked against the name directly.
            Vec::new()
        } else {
            data.chunks(GROUP).enumerate().map(|(i, g)| group_cv(i, g)).collect()
        };
        (hash, Self { len: data.len() as u64, cvs })
    }

    /// An outboard built from a blob's bytes as they arrive, in pieces of any size: what
    /// [`Outboard::compute`] gives, without the whole blob in memory.
    pub fn builder() -> OutboardBuilder {
        OutboardBuilder {
            hasher: blake3::Hasher::new(),
            group: Vec::with_capacity(GROUP),
            cvs: Vec::new(),
            len: 0,
        }
    }

    /// The blob's length.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the blob is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Its bytes: the length (8 bytes, little-endian), then the chaining values.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + 32 * self.cvs.len());
        out.extend_from_slice(&self.len.to_le_bytes());
        for cv in &self.cvs {
            out.extend_from_slice(cv);
        }
        out
    }

    /// Reads [`Outboard::to_bytes`] back and checks it against the blob's name `expected`.
    pub fn from_bytes(expected: Hash, bytes: &[u8]) -> Result<Self, Mismatch> {
        let bad = |len| Mismatch::Outboard { expected, len };
        let (len, rest) = bytes.split_first_chunk::<8>().ok_or(bad(0))?;
        let len = u64::from_le_bytes(*len);
        // In u64 and checked: the length is the sender's, and on wasm32 a usize product of it
        // would wrap and let a short outboard through.
        let wanted = if len <= GROUP as u64 { 0 } else { len.div_ceil(GROUP as u64) };
        if wanted.checked_mul(32) != Some(rest.len() as u64) {
            return Err(bad(len));
        }
        let cvs = rest.chunks_exact(32).map(|c| c.try_into().unwrap_or([0; 32])).collect();
        let outboard = Self { len, cvs };
        if wanted > 0 && outboard.root(0, len) != Root::Hash(expected.into()) {
            return Err(bad(len));
        }
        Ok(outboard)
    }

    /// The chaining value (or, for the whole blob, the hash) of the subtree of `len` bytes at
    /// `offset`, from the group chaining values.
    fn root(&self, offset: u64, len: u64) -> Root {
        let whole = offset == 0 && len == self.len;
        if len <= GROUP as u64 {
            return Root::Cv(self.cvs[(offset / GROUP as u64) as usize]);
        }
        let left = hazmat::left_subtree_len(len);
        let (Root::Cv(l), Root::Cv(r)) =
            (self.root(offset, left), self.root(offset + left, len - left))
        else {
            unreachable!("subtrees below the root are chaining values")
        };
        if whole {
            Root::Hash(hazmat::merge_subtrees_root(&l, &r, Mode::Hash))
        } else {
            Root::Cv(hazmat::merge_subtrees_non_root(&l, &r, Mode::Hash))
        }
    }

    /// Checks group `index` of the blob named `name` (its bytes in full).
    pub fn check(&self, name: Hash, index: usize, bytes: &[u8]) -> Result<(), Mismatch> {
        let start = (index * GROUP) as u64;
        let expected = self.len.saturating_sub(start).min(GROUP as u64) as usize;
        if index >= groups(self.len) || bytes.len() != expected {
            return Err(Mismatch::Length { index, expected, found: bytes.len() });
        }
        let good = if self.cvs.is_empty() {
            Hash::digest(bytes) == name
        } else {
            group_cv(index, bytes) == self.cvs[index]
        };
        if good { Ok(()) } else { Err(Mismatch::Group { index, start }) }
    }
}

/// [`Outboard::builder`]: the hash and the group chaining values of bytes fed in order.
#[derive(Debug, Clone)]
pub struct OutboardBuilder {
    hasher: blake3::Hasher,
    /// The group being filled (whole groups are hashed as soon as they are).
    group: Vec<u8>,
    cvs: Vec<ChainingValue>,
    len: u64,
}

impl OutboardBuilder {
    /// Feeds the next `bytes`.
    pub fn update(&mut self, mut bytes: &[u8]) {
        self.hasher.update(bytes);
        self.len += bytes.len() as u64;
        while !bytes.is_empty() {
            // A full group is hashed only once more bytes follow it: the last group may be a
            // whole one, and a blob of one group has no chaining values.
            if self.group.len() == GROUP {
                let index = self.cvs.len();
                self.cvs.push(group_cv(index, &self.group));
                self.group.clear();
            }
            let take = (GROUP - self.group.len()).min(bytes.len());
            self.group.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
        }
    }

    /// The bytes fed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was fed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The name and the outboard of what was fed.
    pub fn finish(mut self) -> (Hash, Outboard) {
        let hash = Hash(*self.hasher.finalize().as_bytes());
        if self.len > GROUP as u64 {
            let index = self.cvs.len();
            self.cvs.push(group_cv(index, &self.group));
        } else {
            self.cvs.clear();
        }
        (hash, Outboard { len: self.len, cvs: self.cvs })
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Root {
    Cv(ChainingValue),
    Hash(blake3::Hash),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 + i / 7) as u8).collect()
    }

    #[test]
    fn an_outboard_claiming_a_length_it_does_not_cover_is_refused() {
        let name = Hash::digest(b"anything");
        // Lengths whose group count times 32 wraps a 32-bit usize, or a 64-bit one.
        for len in [(1u64 << 32) * GROUP as u64 + 1, (1u64 << 49) * GROUP as u64, u64::MAX] {
            let mut bytes = len.to_le_bytes().to_vec();
            bytes.extend_from_slice(&[7; 64]);
            let refused = Outboard::from_bytes(name, &bytes);
            assert_eq!(refused, Err(Mismatch::Outboard { expected: name, len }), "{len}");
            assert!(Outboard::from_bytes(name, &len.to_le_bytes()).is_err(), "{len}");
        }
    }

    #[test]
    fn outboards_rebuild_blake3_at_every_shape() {
        // Empty, one byte, one group exactly, a byte more, powers of two and odd tails.
        for len in [0, 1, GROUP, GROUP + 1, 2 * GROUP, 3 * GROUP - 5, 5 * GROUP, 17 * GROUP + 100] {
            let bytes = data(len);
            let (hash, outboard) = Outboard::compute(&bytes);
            assert_eq!(hash, Hash::digest(&bytes), "{len}");
            let back = Outboard::from_bytes(hash, &outboard.to_bytes()).unwrap();
            assert_eq!(back, outboard);
            // Built from pieces of any size, the same.
            for piece in [1, 1000, GROUP - 1, GROUP, GROUP + 3] {
                let mut builder = Outboard::builder();
                bytes.chunks(piece).for_each(|p| builder.update(p));
                assert_eq!(builder.len(), len as u64);
                assert_eq!(builder.finish(), (hash, outboard.clone()), "{len} in {piece}");
            }
            for (i, group) in bytes.chunks(GROUP).enumerate() {
                back.check(hash, i, group).unwrap();
            }
            if len == 0 {
                back.check(hash, 0, &[]).unwrap();
            }
        }
    }

    #[test]
    fn a_wrong_byte_is_caught_in_its_group_and_a_made_up_outboard_is_refused() {
        let bytes = data(6 * GROUP + 123);
        let (hash, outboard) = Outboard::compute(&bytes);
        let mut bad = bytes[3 * GROUP..4 * GROUP].to_vec();
        bad[77] ^= 1;
        assert_eq!(
            outboard.check(hash, 3, &bad),
            Err(Mismatch::Group { index: 3, start: 3 * GROUP as u64 })
        );
        // Another blob's outboard, or a tampered one, does not hash to this name.
        let (_, other) = Outboard::compute(&data(6 * GROUP + 124));
        assert!(Outboard::from_bytes(hash, &other.to_bytes()).is_err());
        let mut tampered = outboard.to_bytes();
        tampered[8 + 32 * 3] ^= 1;
        assert!(Outboard::from_bytes(hash, &tampered).is_err());
        // Groups of the wrong size or past the end.
        assert!(matches!(outboard.check(hash, 6, &bytes[..10]), Err(Mismatch::Length { .. })));
        assert!(matches!(outboard.check(hash, 7, &[]), Err(Mismatch::Length { .. })));
        // A small blob is checked whole against its name.
        let small = data(100);
        let (name, outboard) = Outboard::compute(&small);
        let mut wrong = small.clone();
        wrong[0] ^= 1;
        assert!(outboard.check(name, 0, &wrong).is_err());
    }
}
