//! The chain's error type.

use crate::{Address, PublicKey};

/// What can go wrong with chain data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A hex id could not be parsed.
    #[error("{text:?} is not a valid {what}: {why}")]
    BadHex { what: &'static str, text: String, why: String },
    /// Bytes are not the canonical encoding of the expected type.
    #[error("not a valid {what} encoding: {why}")]
    BadEncoding { what: &'static str, why: String },
    /// A public key is not a valid ed25519 point.
    #[error("public key {key} is not a valid ed25519 key")]
    BadPublicKey { key: PublicKey },
    /// A signature does not verify.
    #[error("the signature of {signer} does not verify")]
    BadSignature { signer: Address },
    /// A key file is malformed.
    #[error("not a Kinema key file: {why}")]
    BadKeyFile { why: String },
    /// A validator set is malformed.
    #[error("invalid validator set: {why}")]
    BadValidatorSet { why: String },
    /// A certificate does not finalize the header it is checked against.
    #[error("the certificate for height {height} is invalid: {why}")]
    BadCertificate { height: u64, why: String },
    /// Misbehaviour evidence does not prove anything.
    #[error("invalid evidence: {why}")]
    BadEvidence { why: String },
    /// What a light client was shown does not follow from what it trusts.
    #[error("not verified: {why}")]
    NotTrusted { why: String },
    /// A state proof does not hold under the root it is checked against.
    #[error("the state proof does not hold: {why}")]
    BadProof { why: String },
    /// The contract host could not be set up or run.
    #[error("contract host: {what}: {detail}")]
    Contract { what: &'static str, detail: String },
    /// Consensus cannot go on.
    #[error("consensus: {why}")]
    Consensus { why: String },
    /// A node's runtime failed (a socket, a task).
    #[error("node: {what}: {detail}")]
    Node { what: &'static str, detail: String },
    /// The store failed or refused an operation.
    #[error("chain store: {what}: {detail}")]
    Store { what: &'static str, detail: String },
}
