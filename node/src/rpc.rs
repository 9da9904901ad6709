//! A node's RPC: JSON over HTTP (axum), described by the OpenAPI document utoipa generates from
//! the handlers and kinema-chain's [`rpc`](kinema_chain::rpc) types, served at
//! `/api/v1/openapi.json`.
//!
//! - `GET /api/v1/status`: heights, the head's hash and state root, the validators;
//! - `GET /api/v1/accounts/{address}`: an account at the head, with its state proof;
//! - `GET /api/v1/blocks/{height}`: a committed block and its certificate;
//! - `GET /api/v1/validator-sets/{epoch}`: an epoch's validators, with the state proof against
//!   the last block of the epoch before (what a light client needs to follow the set);
//! - `GET /api/v1/state/{key}`: what a state key (hex) holds at the head, with its proof: a
//!   contract's own view (a market member reads its tasks here);
//! - `GET /api/v1/jobs/{id}`: a market job and every segment × rendition in its latest state;
//! - `POST /api/v1/txs` with `{"tx": "<hex of the signed transaction's canonical bytes>"}`:
//!   admits it into the mempool (and gossips it) or says why not.
//!
//! Every error is a 4xx or 5xx status with `{"error": "<what is wrong>"}` (kinema-http's
//! `Error`, its 404 and its JSON for what axum refuses on its own); bodies over [`MAX_BODY`]
//! are refused (413) and answers not ready in [`TIMEOUT`] are 408. Pages of any origin may read
//! the answers (tower-http's CORS), so the browser light node of any page can.

use std::str::FromStr;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::{Json, Router};
use kinema_chain::rpc::{
    AccountReply, BlockReply, ErrorReply, JobReply, StateReply, StatusReply, SubmitReply,
    SubmitRequest, ValidatorReply, ValidatorSetReply,
};
use kinema_chain::tx::SignedTx;
use kinema_chain::{Address, Error};
use kinema_http as http;
use kinema_http::limits;
use kinema_http::openapi::Refusal;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::consensus::node::NodeClient;

/// Request bodies larger than this are refused (413).
pub const MAX_BODY: usize = 1 << 20;

/// Answers not ready within this are given up (408).
pub const TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone)]
struct Rpc {
    node: NodeClient,
    chain_id: String,
}

#[derive(OpenApi)]
#[openapi(info(
    title = "Kinema chain RPC",
    description = "A Kinema validator's view of the chain. Addresses are 40 hex characters, \
        hashes 64; a 0x prefix is accepted on input. Every error is a 4xx or 5xx with \
        {\"error\": \"<what is wrong>\"}."
))]
struct Document;

/// What any route may answer: the timeout's.
const REFUSALS: &[Refusal] =
    &[(axum::http::StatusCode::REQUEST_TIMEOUT, "no answer within the time allowed")];

/// The routes, with what the document says of each.
fn routes() -> OpenApiRouter<Rpc> {
    OpenApiRouter::with_openapi(Document::openapi())
        .routes(routes!(status))
        .routes(routes!(account))
        .routes(routes!(block))
        .routes(routes!(validator_set))
        .routes(routes!(state))
        .routes(routes!(job))
        .routes(routes!(submit))
}

/// The OpenAPI 3.1 document of the RPC.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    kinema_http::openapi::split(routes(), REFUSALS).1
}

/// The RPC of `node`, whose chain is `chain_id`.
pub fn router(node: NodeClient, chain_id: &str) -> Router {
    let rpc = Rpc { node, chain_id: chain_id.to_owned() };
    let (router, _) = kinema_http::openapi::split(routes(), REFUSALS);
    router
        .layer(limits::body_limit(MAX_BODY))
        .fallback(kinema_http::no_endpoint)
        .with_state(rpc)
        .layer(limits::timeout(TIMEOUT))
        .layer(axum::middleware::from_fn(kinema_http::json_errors))
        // Lets pages of any origin read the answers: the browser light node verifies what it
        // reads, so nothing here needs the same-origin policy's protection.
        .layer(limits::cors())
}

type Answer<T> = Result<Json<T>, http::Error>;

/// `GET /api/v1/status`.
#[utoipa::path(
    get,
    path = "/api/v1/status",
    operation_id = "status",
    summary = "Heights, head, state root and validators",
    responses(
        (status = 200, body = StatusReply),
        (status = 500, description = "the node failed", body = ErrorReply),
    ),
)]
async fn status(State(rpc): State<Rpc>) -> Answer<StatusReply> {
    let status = rpc.node.status().await?;
    let validators = rpc
        .node
        .store()
        .validators_at(status.consensus_height)?
        .validators()
        .iter()
        .map(|v| ValidatorReply { address: Address::of(&v.public_key), power: v.power })
        .collect();
    Ok(Json(StatusReply {
        chain_id: rpc.chain_id.clone(),
        height: status.height,
        finalized_height: status.height,
        block: status.block,
        state_root: status.state_root,
        consensus_height: status.consensus_height,
        round: status.round,
        node: status.address,
        pending_transactions: status.pending_transactions,
        validators,
    }))
}

/// `GET /api/v1/accounts/{address}`.
#[utoipa::path(
    get,
    path = "/api/v1/accounts/{address}",
    operation_id = "account",
    summary = "An account at the head, with its state proof",
    params(("address" = Address, Path, description = "the account's address")),
    responses(
        (status = 200, body = AccountReply),
        (status = 400, description = "not an address", body = ErrorReply),
        (status = 500, description = "the node failed", body = ErrorReply),
    ),
)]
async fn account(State(rpc): State<Rpc>, Path(address): Path<String>) -> Answer<AccountReply> {
    let address =
        Address::from_str(&address).map_err(|e| http::Error::bad_request(e.to_string()))?;
    let store = rpc.node.store();
    let head = head(store)?;
    let (account, proof) = store.account(&address, head.height)?;
    let exists = account.is_some();
    let account = account.unwrap_or_default();
    Ok(Json(AccountReply {
        address,
        height: head.height,
        state_root: head.state_root,
        exists,
        balance: account.balance,
        nonce: account.nonce,
        stake: account.stake,
        unbonding: account.unbonding,
        proof: hex::encode(kinema_chain::encode(&proof)),
    }))
}

/// `GET /api/v1/blocks/{height}`.
#[utoipa::path(
    get,
    path = "/api/v1/blocks/{height}",
    operation_id = "block",
    summary = "A committed block and its certificate",
    params(("height" = u64, Path, description = "the block's height")),
    responses(
        (status = 200, body = BlockReply),
        (status = 400, description = "not a height", body = ErrorReply),
        (status = 404, description = "no block at that height yet", body = ErrorReply),
        (status = 500, description = "the node failed", body = ErrorReply),
    ),
)]
async fn block(State(rpc): State<Rpc>, Path(height): Path<String>) -> Answer<BlockReply> {
    let height: u64 = height
        .parse()
        .map_err(|_| http::Error::bad_request(format!("{height:?} is not a block height")))?;
    let store = rpc.node.store();
    let Some(block) = store.block(height)? else {
        return Err(http::Error::not_found(format!("no block at height {height} yet")));
    };
    Ok(Json(BlockReply { block, certificate: store.certificate(height)? }))
}

/// `GET /api/v1/validator-sets/{epoch}`.
#[utoipa::path(
    get,
    path = "/api/v1/validator-sets/{epoch}",
    operation_id = "validatorSet",
    summary = "An epoch's validators with their state proof",
    params(("epoch" = u64, Path, description = "the epoch")),
    responses(
        (status = 200, body = ValidatorSetReply),
        (status = 400, description = "not an epoch", body = ErrorReply),
        (status = 404, description = "the epoch's set is not decided yet", body = ErrorReply),
        (status = 500, description = "the node failed", body = ErrorReply),
    ),
)]
async fn validator_set(
    State(rpc): State<Rpc>,
    Path(epoch): Path<String>,
) -> Answer<ValidatorSetReply> {
    let epoch: u64 = epoch
        .parse()
        .map_err(|_| http::Error::bad_request(format!("{epoch:?} is not an epoch")))?;
    let store = rpc.node.store();
    let epoch_length = store.epoch_length()?;
    let height = epoch.saturating_mul(epoch_length);
    let head = store.head()?.map_or(0, |h| h.height);
    if height > head {
        let why = format!("epoch {epoch}'s set is decided at block {height}, the head is {head}");
        return Err(http::Error::not_found(why));
    }
    let (value, proof) =
        store.get_with_proof(&kinema_chain::epoch::validator_set_key(epoch), height)?;
    let value = value.ok_or_else(|| Error::Store {
        what: "reading a validator set",
        detail: format!("block {height} holds no set for epoch {epoch}"),
    })?;
    Ok(Json(ValidatorSetReply {
        epoch,
        epoch_length,
        height,
        validators: kinema_chain::decode(&value)?,
        proof: hex::encode(kinema_chain::encode(&proof)),
    }))
}

/// The longest state key `GET /api/v1/state/{key}` reads, in bytes.
pub const MAX_KEY: usize = 256;

fn head(store: &crate::store::Store) -> Result<crate::store::Head, Error> {
    store.head()?.ok_or_else(|| Error::Store {
        what: "reading the head",
        detail: "the store has no genesis block".into(),
    })
}

/// `GET /api/v1/state/{key}`.
#[utoipa::path(
    get,
    path = "/api/v1/state/{key}",
    operation_id = "state",
    summary = "What a state key holds at the head, with its state proof",
    params(("key" = String, Path, description = "the key, hex (at most 256 bytes)")),
    responses(
        (status = 200, body = StateReply),
        (status = 400, description = "not a hex key, or too long", body = ErrorReply),
        (status = 500, description = "the node failed", body = ErrorReply),
    ),
)]
async fn state(State(rpc): State<Rpc>, Path(key): Path<String>) -> Answer<StateReply> {
    let bytes = hex::decode(key.trim_start_matches("0x"))
        .map_err(|e| http::Error::bad_request(format!("key {key:?} is not hex: {e}")))?;
    if bytes.len() > MAX_KEY {
        let why = format!("the key is {} bytes, over {MAX_KEY}", bytes.len());
        return Err(http::Error::bad_request(why));
    }
    let store = rpc.node.store();
    let head = head(store)?;
    let (value, proof) = store.get_with_proof(&bytes, head.height)?;
    Ok(Json(StateReply {
        key: hex::encode(&bytes),
        height: head.height,
        state_root: head.state_root,
        value: value.map(hex::encode),
        proof: hex::encode(kinema_chain::encode(&proof)),
    }))
}

/// `GET /api/v1/jobs/{id}`.
#[utoipa::path(
    get,
    path = "/api/v1/jobs/{id}",
    operation_id = "job",
    summary = "A market job and every segment × rendition in its latest state",
    params(("id" = u64, Path, description = "the job's number")),
    responses(
        (status = 200, body = JobReply),
        (status = 400, description = "not a job number", body = ErrorReply),
        (status = 404, description = "no such job", body = ErrorReply),
        (status = 500, description = "the node failed", body = ErrorReply),
    ),
)]
async fn job(State(rpc): State<Rpc>, Path(id): Path<String>) -> Answer<JobReply> {
    let id: u64 =
        id.parse().map_err(|_| http::Error::bad_request(format!("{id:?} is not a job number")))?;
    let store = rpc.node.store().clone();
    let reply = tokio::task::spawn_blocking(move || {
        let head = head(&store)?;
        JobReply::read(id, head.height, |key| store.get(key, head.height))
    })
    .await
    .map_err(|e| Error::Store { what: "reading a job", detail: e.to_string() })??;
    reply.map(Json).ok_or_else(|| http::Error::not_found(format!("there is no job {id}")))
}

/// `POST /api/v1/txs`.
#[utoipa::path(
    post,
    path = "/api/v1/txs",
    operation_id = "submit",
    summary = "Submit a signed transaction",
    request_body = SubmitRequest,
    responses(
        (status = 200, description = "admitted into the mempool", body = SubmitReply),
        (status = 400, description = "not JSON, or the transaction not hex", body = ErrorReply),
        (status = 413, description = "the body is over the limit", body = ErrorReply),
        (status = 415, description = "not application/json", body = ErrorReply),
        (status = 422, description = "the transaction is malformed or refused", body = ErrorReply),
        (status = 500, description = "the node failed", body = ErrorReply),
    ),
)]
async fn submit(State(rpc): State<Rpc>, Json(request): Json<SubmitRequest>) -> Answer<SubmitReply> {
    let bytes = hex::decode(request.tx.trim_start_matches("0x"))
        .map_err(|e| http::Error::bad_request(format!("\"tx\" is not hex: {e}")))?;
    let tx = kinema_chain::decode::<SignedTx>(&bytes)
        .map_err(|e| http::Error::unprocessable(format!("malformed transaction: {e}")))?;
    let hash = rpc
        .node
        .submit(bytes)
        .await?
        .map_err(|refusal| http::Error::unprocessable(refusal.to_string()))?;
    Ok(Json(SubmitReply { hash, sender: tx.sender(), nonce: tx.tx.nonce }))
}
