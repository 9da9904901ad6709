//! Property tests over decoders: arbitrary bytes, and valid encodings with a few bytes changed,
//! must give a value or an error that says something, never a panic.
//!
//! Every such test is named `fuzz_...`; CI runs them at proptest's default case count and
//! `cargo xtask fuzz [--cases N]` runs them all at N cases each.
//!
//! ```
//! use kinema_test_support::fuzz::{Mutation, mutate};
//! let changed = mutate(b"abc", &[Mutation::Flip(1, 0xff), Mutation::Truncate(2)]);
//! assert_eq!(changed, [b'a', b'b' ^ 0xff]);
//! ```

use proptest::prelude::*;

/// One change to a byte string (positions are taken modulo its length).
#[derive(Debug, Clone)]
pub enum Mutation {
    /// XOR the byte at a position.
    Flip(usize, u8),
    /// Insert a byte before a position.
    Insert(usize, u8),
    /// Remove the byte at a position.
    Remove(usize),
    /// Keep only the bytes before a position.
    Truncate(usize),
}

/// A few changes.
pub fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    let one = prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(at, x)| Mutation::Flip(at, x)),
        (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Mutation::Insert(at, b)),
        any::<usize>().prop_map(Mutation::Remove),
        any::<usize>().prop_map(Mutation::Truncate),
    ];
    prop::collection::vec(one, 1..6)
}

/// `bytes` with `mutations` applied in order.
pub fn mutate(bytes: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    for m in mutations {
        let len = out.len();
        match *m {
            Mutation::Flip(at, x) if len > 0 => out[at % len] ^= x,
            Mutation::Insert(at, b) => out.insert(at % (len + 1), b),
            Mutation::Remove(at) if len > 0 => {
                out.remove(at % len);
            }
            Mutation::Truncate(at) => out.truncate(at % (len + 1)),
            _ => {}
        }
    }
    out
}

/// Checks that `decode` gives a value or an error whose message says something (it must not
/// panic: a panic fails the property).
pub fn explains<T, E: std::fmt::Display>(
    what: &str,
    result: Result<T, E>,
) -> Result<(), TestCaseError> {
    if let Err(e) = result {
        prop_assert!(!e.to_string().trim().is_empty(), "{what}: an error that says nothing");
    }
    Ok(())
}
