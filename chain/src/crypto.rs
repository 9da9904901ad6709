//! Keys and signatures: ed25519 over domain-separated messages.
//!
//! Every signed message is `domain || 0x00 || bytes`, with one domain per kind of message
//! ([`Domain`]), so a signature made for one purpose (a vote) can never be replayed as another
//! (a transaction). Verification is strict (no malleable or small-order keys).
//!
//! This module draws no randomness: a key comes from 32 seed bytes the caller supplies.

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};

use crate::{Address, Error, PublicKey, Signature};

/// What a signature is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Domain {
    /// A transaction.
    Tx,
    /// A consensus vote.
    Vote,
    /// A consensus proposal.
    Proposal,
    /// A write to a relay's API (an upload, a publication, an operator's order).
    RelayWrite,
    /// A bandwidth ticket, signed by the viewer that pays it.
    Ticket,
    /// A ticket recipient's leave for another account to redeem it and be paid.
    TicketClaim,
}

impl Domain {
    fn tag(self) -> &'static [u8] {
        match self {
            Domain::Tx => b"kinema/tx/v1",
            Domain::Vote => b"kinema/vote/v1",
            Domain::Proposal => b"kinema/proposal/v1",
            Domain::RelayWrite => b"kinema/relay-write/v1",
            // The tickets contract checks these two itself.
            Domain::Ticket => kinema_contracts::tickets::TICKET_DOMAIN,
            Domain::TicketClaim => kinema_contracts::tickets::CLAIM_DOMAIN,
        }
    }
}

fn message(domain: Domain, bytes: &[u8]) -> Vec<u8> {
    let tag = domain.tag();
    let mut out = Vec::with_capacity(tag.len() + 1 + bytes.len());
    out.extend_from_slice(tag);
    out.push(0);
    out.extend_from_slice(bytes);
    out
}

/// An ed25519 secret key.
#[derive(Clone)]
pub struct SecretKey(SigningKey);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey(for {})", self.address())
    }
}

impl SecretKey {
    /// The key for 32 seed bytes (which must be secret and uniformly random).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self(SigningKey::from_bytes(&seed))
    }

    /// The seed bytes.
    pub fn seed(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The public key.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }

    /// The account address.
    pub fn address(&self) -> Address {
        Address::of(&self.public())
    }

    /// Signs `bytes` for `domain`.
    pub fn sign(&self, domain: Domain, bytes: &[u8]) -> Signature {
        Signature(self.0.sign(&message(domain, bytes)).to_bytes())
    }

    /// The key file text: one JSON object with the address, the public key and the seed.
    pub fn to_key_file(&self) -> String {
        let file = KeyFile {
            address: self.address(),
            public_key: self.public(),
            secret_key: hex::encode(self.seed()),
        };
        // Three strings always serialise.
        serde_json::to_string_pretty(&file).unwrap_or_default() + "\n"
    }

    /// Reads [`SecretKey::to_key_file`]'s text back, checking that its address and public key
    /// belong to its seed.
    pub fn from_key_file(text: &str) -> Result<Self, Error> {
        let bad = |why: String| Error::BadKeyFile { why };
        let file: KeyFile = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        let seed: [u8; 32] = hex::decode(&file.secret_key)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| bad("secret_key is not 64 hex digits".into()))?;
        let key = Self::from_seed(seed);
        if key.public() != file.public_key || key.address() != file.address {
            return Err(bad("its address and public key do not belong to its secret key".into()));
        }
        Ok(key)
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    address: Address,
    public_key: PublicKey,
    secret_key: String,
}

impl PublicKey {
    /// Checks `signature` on `bytes` for `domain`.
    pub fn verify(&self, domain: Domain, bytes: &[u8], signature: &Signature) -> Result<(), Error> {
        let key =
            VerifyingKey::from_bytes(&self.0).map_err(|_| Error::BadPublicKey { key: *self })?;
        let signature = ed25519_dalek::Signature::from_bytes(&signature.0);
        key.verify_strict(&message(domain, bytes), &signature)
            .map_err(|_| Error::BadSignature { signer: Address::of(self) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_only_for_their_domain_key_and_bytes() {
        let key = SecretKey::from_seed([7; 32]);
        let sig = key.sign(Domain::Tx, b"hello");
        let public = key.public();
        assert!(public.verify(Domain::Tx, b"hello", &sig).is_ok());
        assert!(public.verify(Domain::Vote, b"hello", &sig).is_err());
        assert!(public.verify(Domain::Tx, b"hellO", &sig).is_err());
        let other = SecretKey::from_seed([8; 32]).public();
        assert!(matches!(
            other.verify(Domain::Tx, b"hello", &sig),
            Err(Error::BadSignature { .. })
        ));
    }

    #[test]
    fn key_files_round_trip_and_are_checked() {
        let key = SecretKey::from_seed([42; 32]);
        let text = key.to_key_file();
        assert!(text.contains(&key.address().to_string()));
        assert_eq!(SecretKey::from_key_file(&text).unwrap().seed(), [42; 32]);
        let other = SecretKey::from_seed([43; 32]).address().to_string();
        let forged = text.replace(&key.address().to_string(), &other);
        let err = SecretKey::from_key_file(&forged).unwrap_err().to_string();
        assert!(err.contains("do not belong"), "{err}");
        assert!(SecretKey::from_key_file("{}").is_err());
        assert!(!format!("{key:?}").contains(&hex::encode([42u8; 32])));
    }
}
