//! The chain RPC's requests and replies: JSON over HTTP, shared by the node that serves them
//! (kinema-node's `rpc`), the command line and the browser, which check what they read.
//!
//! Every error is a 4xx or 5xx status with an [`ErrorReply`]. With the `openapi` feature every
//! type here is a `utoipa` schema, which the servers' generated OpenAPI documents use.

use serde::{Deserialize, Serialize};

use crate::block::{Block, Certificate, ValidatorSet};
use crate::tx::Unbonding;
use crate::{Address, Hash};

/// Every error answer: what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorReply {
    /// What is wrong, for a person.
    pub error: String,
}

/// `GET /api/v1/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StatusReply {
    /// The chain.
    pub chain_id: String,
    /// The last committed block; with BFT finality it is final.
    pub height: u64,
    /// The last finalized block (the same as `height`).
    pub finalized_height: u64,
    /// Its header hash.
    pub block: Hash,
    /// The state root after it.
    pub state_root: Hash,
    /// The height being decided and its round.
    pub consensus_height: u64,
    /// The round.
    pub round: u32,
    /// The validator this node runs.
    pub node: Address,
    /// Transactions in its mempool.
    pub pending_transactions: usize,
    /// The validators deciding `consensus_height`, and their power.
    pub validators: Vec<ValidatorReply>,
}

/// A validator in [`StatusReply`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ValidatorReply {
    /// Its address.
    pub address: Address,
    /// Its voting power.
    pub power: u64,
}

/// `GET /api/v1/accounts/{address}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AccountReply {
    /// The account.
    pub address: Address,
    /// The height read.
    pub height: u64,
    /// The state root at that height, which `proof` is against.
    pub state_root: Hash,
    /// Whether the account exists (an account never funded reads as zeros, and its proof is
    /// one of exclusion).
    pub exists: bool,
    /// Spendable balance.
    pub balance: u64,
    /// The next transaction's nonce.
    pub nonce: u64,
    /// Staked.
    pub stake: u64,
    /// Unstaked, waiting for release.
    #[cfg_attr(feature = "openapi", schema(schema_with = openapi::unbonding))]
    pub unbonding: Vec<Unbonding>,
    /// Hex of the canonical encoding of the state proof (inclusion, or exclusion for an
    /// account that does not exist yet).
    #[cfg_attr(feature = "openapi", schema(pattern = "^[0-9a-f]*$"))]
    pub proof: String,
}

/// `GET /api/v1/blocks/{height}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BlockReply {
    /// The block.
    pub block: Block,
    /// Its certificate (none for genesis).
    pub certificate: Option<Certificate>,
}

/// `GET /api/v1/validator-sets/{epoch}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ValidatorSetReply {
    /// The epoch.
    pub epoch: u64,
    /// Blocks per epoch.
    pub epoch_length: u64,
    /// The block whose state holds the set (the last of the epoch before; 0 for epoch 0).
    pub height: u64,
    /// The validators.
    pub validators: ValidatorSet,
    /// Hex of the canonical encoding of the state proof against block `height`'s state root.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[0-9a-f]*$"))]
    pub proof: String,
}

/// `POST /api/v1/txs` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SubmitRequest {
    /// Hex of the signed transaction's canonical encoding (`0x` optional).
    #[cfg_attr(feature = "openapi", schema(pattern = "^(0x)?[0-9a-fA-F]*$"))]
    pub tx: String,
}

/// `POST /api/v1/txs` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SubmitReply {
    /// The transaction's hash.
    pub hash: Hash,
    /// Its sender.
    pub sender: Address,
    /// Its nonce: it is committed once the sender's account nonce is past it.
    pub nonce: u64,
}

/// The schemas of the chain's own types the replies carry, which have no derive of their own.
#[cfg(feature = "openapi")]
mod openapi {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, Type};
    use utoipa::openapi::{RefOr, schema};
    use utoipa::{PartialSchema, ToSchema};

    use crate::PublicKey;
    use crate::block::{Block, Certificate, ValidatorSet};

    fn integer(description: &str) -> ObjectBuilder {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(schema::SchemaFormat::KnownFormat(schema::KnownFormat::Int64)))
            .minimum(Some(0))
            .description(Some(description))
    }

    /// `AccountReply::unbonding`: kinema-contracts' `Unbonding`s.
    pub(super) fn unbonding() -> impl Into<RefOr<Schema>> {
        let entry = ObjectBuilder::new()
            .property("amount", integer("how much"))
            .required("amount")
            .property("release_height", integer("the first height at which it is released"))
            .required("release_height");
        ArrayBuilder::new().items(entry)
    }

    impl PartialSchema for ValidatorSet {
        fn schema() -> RefOr<Schema> {
            let validator = ObjectBuilder::new()
                .property("public_key", PublicKey::schema())
                .required("public_key")
                .property("power", integer("voting power"))
                .required("power");
            ArrayBuilder::new()
                .items(validator)
                .description(Some("the validators of an epoch, ordered by address"))
                .into()
        }
    }

    impl ToSchema for ValidatorSet {}

    impl PartialSchema for Block {
        fn schema() -> RefOr<Schema> {
            ObjectBuilder::new()
                .description(Some("a header and its transactions (kinema-chain's block::Block)"))
                .into()
        }
    }

    impl ToSchema for Block {}

    impl PartialSchema for Certificate {
        fn schema() -> RefOr<Schema> {
            ObjectBuilder::new()
                .description(Some(
                    "precommits for a block from more than 2/3 of the voting power \
                     (kinema-chain's block::Certificate)",
                ))
                .into()
        }
    }

    impl ToSchema for Certificate {}
}
