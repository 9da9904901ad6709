//! Fixed-size byte identifiers: [`Hash`](struct@Hash), [`Address`], [`PublicKey`], [`Signature`].
//!
//! Each is printed as lowercase hex and parsed from hex with or without a `0x` prefix, in either
//! case; in JSON it is that hex string. Its canonical (borsh) encoding is the raw bytes. With the
//! `openapi` feature each is a `utoipa` schema: a string with that hex pattern.

use std::fmt;
use std::str::FromStr;

use borsh::{BorshDeserialize, BorshSerialize};

use crate::Error;

macro_rules! hex_id {
    ($(#[$doc:meta])* $name:ident, $len:literal, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, BorshSerialize, BorshDeserialize)]
        pub struct $name(pub [u8; $len]);

        impl $name {
            /// Its bytes.
            pub fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex::encode(self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({self})", stringify!($name))
            }
        }

        impl FromStr for $name {
            type Err = Error;

            fn from_str(text: &str) -> Result<Self, Error> {
                parse_hex(text, $what).map(Self)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                hex_schema($what, 2 * $len)
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $name {}
    };
}

hex_id!(
    /// A blake3 hash, the one content address of Kinema: of a segment, a blob or a manifest
    /// (the plain hash of its bytes, [`Hash::digest`]), and of a block header, a transaction, a
    /// validator set (domain-separated, [`Hash::of`]); a state root.
    Hash,
    32,
    "hash"
);
hex_id!(
    /// An account: the first 20 bytes of the blake3 hash of its ed25519 public key.
    Address,
    20,
    "address"
);
hex_id!(
    /// An ed25519 public key.
    PublicKey,
    32,
    "public key"
);
hex_id!(
    /// An ed25519 signature.
    Signature,
    64,
    "signature"
);

impl Hash {
    /// The all-zero hash: the parent of the first block, the root of an empty list.
    pub const ZERO: Hash = Hash([0; 32]);

    /// The blake3 hash of `bytes` in the key-derivation mode under `domain`, so that hashes of
    /// different kinds of things can never collide.
    pub fn of(domain: &str, bytes: &[u8]) -> Hash {
        let mut hasher = blake3::Hasher::new_derive_key(domain);
        hasher.update(bytes);
        Hash(*hasher.finalize().as_bytes())
    }

    /// The plain blake3 hash of `bytes`: the name of a segment, blob or manifest.
    pub fn digest(bytes: &[u8]) -> Hash {
        Hash(*blake3::hash(bytes).as_bytes())
    }
}

impl From<blake3::Hash> for Hash {
    fn from(hash: blake3::Hash) -> Hash {
        Hash(*hash.as_bytes())
    }
}

impl From<Hash> for blake3::Hash {
    fn from(hash: Hash) -> blake3::Hash {
        blake3::Hash::from_bytes(hash.0)
    }
}

impl Address {
    /// The address of `key`.
    pub fn of(key: &PublicKey) -> Address {
        let hash = blake3::hash(&key.0);
        let mut out = [0; 20];
        out.copy_from_slice(&hash.as_bytes()[..20]);
        Address(out)
    }
}

/// The OpenAPI schema of an id: a string of `digits` hex digits, `0x` optional.
#[cfg(feature = "openapi")]
fn hex_schema(
    what: &str,
    digits: usize,
) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(format!("^(0x)?[0-9a-fA-F]{{{digits}}}$")))
        .description(Some(format!("a {what}: {digits} hex digits, lowercase on output")))
        .into()
}

fn parse_hex<const N: usize>(text: &str, what: &'static str) -> Result<[u8; N], Error> {
    let digits = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")).unwrap_or(text);
    let bad = |why: String| Error::BadHex { what, text: text.to_owned(), why };
    if digits.len() != 2 * N {
        return Err(bad(format!("expected {} hex digits, found {}", 2 * N, digits.len())));
    }
    let mut out = [0; N];
    hex::decode_to_slice(digits, &mut out).map_err(|e| bad(e.to_string()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_print_as_lowercase_hex_and_parse_with_or_without_0x() {
        let a = Address([0xab; 20]);
        let text = a.to_string();
        assert_eq!(text, "ab".repeat(20));
        assert_eq!(text.parse::<Address>().unwrap(), a);
        assert_eq!(format!("0x{}", text.to_uppercase()).parse::<Address>().unwrap(), a);
        assert_eq!(serde_json::to_string(&a).unwrap(), format!("\"{text}\""));
        assert_eq!(serde_json::from_str::<Address>(&format!("\"0x{text}\"")).unwrap(), a);
    }

    #[test]
    fn bad_hex_says_what_is_wrong() {
        let short = "abc".parse::<Address>().unwrap_err().to_string();
        assert!(short.contains("address") && short.contains("40 hex digits, found 3"), "{short}");
        let odd = format!("{}zz", "0".repeat(38)).parse::<Address>().unwrap_err().to_string();
        assert!(odd.contains("Invalid character"), "{odd}");
        assert!("00".parse::<Hash>().unwrap_err().to_string().contains("64 hex digits"));
    }

    #[test]
    fn hashes_are_separated_by_domain() {
        assert_ne!(Hash::of("kinema a", b"x"), Hash::of("kinema b", b"x"));
        assert_eq!(Hash::of("kinema a", b"x"), Hash::of("kinema a", b"x"));
    }
}
