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

impl AccountReply {
    /// Checks the reply against `state_root`, the state root of the block at its height as the
    /// caller trusts it (a light client's verified header): the proof must show exactly this
    /// account under that root (or no account, when it does not exist).
    pub fn check(&self, state_root: &Hash) -> Result<(), crate::Error> {
        let bad = |why: String| crate::Error::BadProof { why };
        if self.state_root != *state_root {
            return Err(bad(format!(
                "the reply is against state root {}, block {} has {state_root}",
                self.state_root, self.height
            )));
        }
        let bytes = hex::decode(self.proof.trim_start_matches("0x"))
            .map_err(|e| bad(format!("the proof is not hex: {e}")))?;
        let proof: crate::state::Proof = crate::decode(&bytes)?;
        let account = self.exists.then(|| crate::tx::Account {
            nonce: self.nonce,
            balance: self.balance,
            stake: self.stake,
            unbonding: self.unbonding.clone(),
        });
        proof.verify_account(*state_root, &self.address, account.as_ref())
    }
}

impl StateReply {
    /// Checks the reply against `state_root`, the root of the block at `self.height` as a
    /// light client verified it: it must be read under that root, for `key`, and its proof
    /// must show that `key` holds its value there (or nothing). Returns the value's bytes.
    pub fn check(&self, key: &[u8], state_root: &Hash) -> Result<Option<Vec<u8>>, crate::Error> {
        let bad = |why: String| crate::Error::BadProof { why };
        if self.state_root != *state_root {
            return Err(bad(format!(
                "the reply is against state root {}, block {} has {state_root}",
                self.state_root, self.height
            )));
        }
        if self.key != hex::encode(key) {
            return Err(bad(format!(
                "the reply is for key {}, not {}",
                self.key,
                hex::encode(key)
            )));
        }
        let value = self
            .value
            .as_deref()
            .map(hex::decode)
            .transpose()
            .map_err(|e| bad(format!("the value is not hex: {e}")))?;
        let bytes = hex::decode(self.proof.trim_start_matches("0x"))
            .map_err(|e| bad(format!("the proof is not hex: {e}")))?;
        let proof: crate::state::Proof = crate::decode(&bytes)?;
        proof.verify(*state_root, key, value.as_deref())?;
        Ok(value)
    }
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

/// `GET /api/v1/state/{key}`: what a state key holds at the head, with its proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StateReply {
    /// The key, hex.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[0-9a-f]*$"))]
    pub key: String,
    /// The height read.
    pub height: u64,
    /// The state root at that height, which `proof` is against.
    pub state_root: Hash,
    /// Hex of the value (a contract's borsh encoding), or null when the key holds nothing.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[0-9a-f]*$"))]
    pub value: Option<String>,
    /// Hex of the canonical encoding of the state proof (inclusion, or exclusion).
    #[cfg_attr(feature = "openapi", schema(pattern = "^[0-9a-f]*$"))]
    pub proof: String,
}

/// Where a job is, in [`JobReply`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum JobStateReply {
    /// Being worked on.
    Open,
    /// Every segment accepted, everyone paid, the ladder recorded.
    Done,
    /// A segment ran out of attempts.
    Failed,
    /// Cancelled by its creator.
    Cancelled,
}

/// Where one rendition of one segment is, in [`ResultReply`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ResultState {
    /// Waiting for its first worker.
    Queued,
    /// A worker has it.
    Transcoding,
    /// Its result is being checked, or waits out its challenge window.
    Verifying,
    /// Accepted.
    Accepted,
    /// Its last worker missed its deadline or failed its check; waiting for the next.
    Retried,
}

/// One rendition of one segment of a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResultReply {
    /// The segment.
    pub segment: u32,
    /// The rendition (the rung's name).
    pub rendition: String,
    /// The worker that has it or made it, if any.
    pub worker: Option<Address>,
    /// Where it is.
    pub state: ResultState,
    /// The last verdict on the segment: `pass` or `fail`.
    pub verdict: Option<String>,
    /// The last verdict's reasons.
    pub reasons: Option<String>,
    /// Workers it was assigned to so far.
    pub attempts: u8,
    /// The rendition's blake3, once a result names it.
    pub hash: Option<Hash>,
    /// Its size in bytes, once a result names it.
    pub size: Option<u64>,
}

/// `GET /api/v1/jobs/{id}`: a job and every segment × rendition in its latest state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobReply {
    /// The job.
    pub id: u64,
    /// The height read.
    pub height: u64,
    /// Where it is.
    pub state: JobStateReply,
    /// Who posted it.
    pub creator: Address,
    /// blake3 of the source's manifest.
    pub source: Hash,
    /// Source segments.
    pub segments: u32,
    /// The renditions asked for (rung names).
    pub renditions: Vec<String>,
    /// Paid per segment-rendition.
    pub price: u64,
    /// The height it was posted at.
    pub posted: u64,
    /// Escrow not yet owed to anyone.
    pub escrow: u64,
    /// Owed to workers and verifiers, paid when the job ends.
    pub owed: std::collections::BTreeMap<Address, u64>,
    /// Paid when it ended.
    pub paid: std::collections::BTreeMap<Address, u64>,
    /// Returned to the creator when it ended.
    pub refunded: u64,
    /// Why it failed, when it did.
    pub failure: Option<String>,
    /// When done: the recorded hash of its accepted ladder.
    pub ladder: Option<Hash>,
    /// The content id (blake3 of the ladder's manifest) its creator published it under.
    pub content: Option<Hash>,
    /// One per segment × rendition, segment by segment.
    pub results: Vec<ResultReply>,
}

impl JobReply {
    /// Job `id` as the state read by `read` (at `height`) holds it; `None` when there is no such
    /// job.
    pub fn read(
        id: u64,
        height: u64,
        mut read: impl FnMut(&[u8]) -> Result<Option<Vec<u8>>, crate::Error>,
    ) -> Result<Option<Self>, crate::Error> {
        use kinema_contracts::jobs::{self, JobState, Stage};
        let Some(bytes) = read(&jobs::job_key(id))? else { return Ok(None) };
        let job: jobs::Job = crate::decode(&bytes)?;
        let mut results = Vec::new();
        for segment in 0..job.args.segments {
            let slot: jobs::Slot = match read(&jobs::slot_key(id, segment))? {
                Some(bytes) => crate::decode(&bytes)?,
                None => jobs::Slot::default(),
            };
            let (worker, state, work) = match &slot.stage {
                Stage::Queued if slot.attempts > 0 => (None, ResultState::Retried, None),
                Stage::Queued => (None, ResultState::Queued, None),
                Stage::Assigned { worker, .. } if slot.attempts > 1 => {
                    (Some(*worker), ResultState::Retried, None)
                }
                Stage::Assigned { worker, .. } => (Some(*worker), ResultState::Transcoding, None),
                Stage::Submitted(work)
                | Stage::Checking { work, .. }
                | Stage::Window { work, .. } => {
                    (Some(work.worker), ResultState::Verifying, Some(work))
                }
                Stage::Accepted(work) => (Some(work.worker), ResultState::Accepted, Some(work)),
            };
            let last = slot.verdicts.last();
            for (r, rung) in job.args.ladder.rungs.iter().enumerate() {
                let output = work.and_then(|w| w.outputs.get(r));
                results.push(ResultReply {
                    segment,
                    rendition: rung.name.clone(),
                    worker: worker.map(Address),
                    state,
                    verdict: last.map(|v| if v.pass { "pass" } else { "fail" }.to_owned()),
                    reasons: last.map(|v| v.reasons.clone()),
                    attempts: slot.attempts,
                    hash: output.map(|o| Hash(o.hash)),
                    size: output.map(|o| o.size),
                });
            }
        }
        let amounts =
            |list: &[([u8; 20], u64)]| list.iter().map(|(a, n)| (Address(*a), *n)).collect();
        Ok(Some(Self {
            id,
            height,
            state: match job.state {
                JobState::Open => JobStateReply::Open,
                JobState::Done => JobStateReply::Done,
                JobState::Failed => JobStateReply::Failed,
                JobState::Cancelled => JobStateReply::Cancelled,
            },
            creator: Address(job.creator),
            source: Hash(job.args.source),
            segments: job.args.segments,
            renditions: job.args.ladder.rungs.iter().map(|r| r.name.clone()).collect(),
            price: job.args.price,
            posted: job.posted,
            escrow: job.escrow,
            owed: amounts(&job.owed),
            paid: amounts(&job.paid),
            refunded: job.refunded,
            failure: job.failure,
            ladder: job.ladder.map(Hash),
            content: job.content.map(Hash),
            results,
        }))
    }
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
