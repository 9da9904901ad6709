//! A node's RPC: JSON over HTTP (axum), described by the OpenAPI document it serves at
//! `/api/v1/openapi.json`.
//!
//! - `GET /api/v1/status`: heights, the head's hash and state root, the validators;
//! - `GET /api/v1/accounts/{address}`: an account at the head, with its state proof;
//! - `GET /api/v1/blocks/{height}`: a committed block and its certificate;
//! - `GET /api/v1/validator-sets/{epoch}`: an epoch's validators, with the state proof against
//!   the last block of the epoch before (what a light client needs to follow the set);
//! - `POST /api/v1/txs` with `{"tx": "<hex of the signed transaction's canonical bytes>"}`:
//!   admits it into the mempool (and gossips it) or says why not.
//!
//! Every error is a 4xx or 5xx status with `{"error": "<what is wrong>"}`. Answers carry
//! `Access-Control-Allow-Origin: *`, so the browser light node of any page can read them.

use std::str::FromStr;

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use kinema_chain::rpc::{
    AccountReply, BlockReply, StatusReply, SubmitReply, SubmitRequest, ValidatorReply,
    ValidatorSetReply,
};
use kinema_chain::tx::SignedTx;
use kinema_chain::{Address, Error};
use serde_json::{Value, json};

use crate::consensus::node::NodeClient;

/// Request bodies larger than this are refused (413).
pub const MAX_BODY: usize = 1 << 20;

#[derive(Clone)]
struct Rpc {
    node: NodeClient,
    chain_id: String,
}

/// The RPC of `node`, whose chain is `chain_id`.
pub fn router(node: NodeClient, chain_id: &str) -> Router {
    let rpc = Rpc { node, chain_id: chain_id.to_owned() };
    Router::new()
        .route("/api/v1/status", get(status))
        .route("/api/v1/accounts/{address}", get(account))
        .route("/api/v1/blocks/{height}", get(block))
        .route("/api/v1/validator-sets/{epoch}", get(validator_set))
        .route("/api/v1/txs", post(submit))
        .route("/api/v1/openapi.json", get(openapi))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::map_response(allow_any_origin))
        .with_state(rpc)
}

/// Lets pages of any origin read the answers: the browser light node verifies what it reads,
/// so nothing here needs the same-origin policy's protection.
async fn allow_any_origin(mut response: Response) -> Response {
    let any = axum::http::HeaderValue::from_static("*");
    response.headers_mut().insert(axum::http::header::ACCESS_CONTROL_ALLOW_ORIGIN, any);
    response
}

/// An error answer: a status and what is wrong.
#[derive(Debug)]
struct Failure(StatusCode, String);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

type Answer<T> = Result<Json<T>, Failure>;

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

async fn account(State(rpc): State<Rpc>, Path(address): Path<String>) -> Answer<AccountReply> {
    let address =
        Address::from_str(&address).map_err(|e| Failure(StatusCode::BAD_REQUEST, e.to_string()))?;
    let store = rpc.node.store();
    let head = store.head()?.ok_or_else(|| Error::Store {
        what: "reading the head",
        detail: "the store has no genesis block".into(),
    })?;
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

async fn block(State(rpc): State<Rpc>, Path(height): Path<String>) -> Answer<BlockReply> {
    let height: u64 = height.parse().map_err(|_| {
        Failure(StatusCode::BAD_REQUEST, format!("{height:?} is not a block height"))
    })?;
    let store = rpc.node.store();
    let Some(block) = store.block(height)? else {
        return Err(Failure(StatusCode::NOT_FOUND, format!("no block at height {height} yet")));
    };
    Ok(Json(BlockReply { block, certificate: store.certificate(height)? }))
}

async fn validator_set(
    State(rpc): State<Rpc>,
    Path(epoch): Path<String>,
) -> Answer<ValidatorSetReply> {
    let epoch: u64 = epoch
        .parse()
        .map_err(|_| Failure(StatusCode::BAD_REQUEST, format!("{epoch:?} is not an epoch")))?;
    let store = rpc.node.store();
    let epoch_length = store.epoch_length()?;
    let height = epoch.saturating_mul(epoch_length);
    let head = store.head()?.map_or(0, |h| h.height);
    if height > head {
        let why = format!("epoch {epoch}'s set is decided at block {height}, the head is {head}");
        return Err(Failure(StatusCode::NOT_FOUND, why));
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

async fn submit(
    State(rpc): State<Rpc>,
    body: Result<Json<SubmitRequest>, axum::extract::rejection::JsonRejection>,
) -> Answer<SubmitReply> {
    let Json(request) = body.map_err(|e| Failure(e.status(), e.body_text()))?;
    let bytes = hex::decode(request.tx.trim_start_matches("0x"))
        .map_err(|e| Failure(StatusCode::BAD_REQUEST, format!("\"tx\" is not hex: {e}")))?;
    let refused = |why: String| Failure(StatusCode::UNPROCESSABLE_ENTITY, why);
    let tx = kinema_chain::decode::<SignedTx>(&bytes)
        .map_err(|e| refused(format!("malformed transaction: {e}")))?;
    let hash = rpc.node.submit(bytes).await?.map_err(|refusal| refused(refusal.to_string()))?;
    Ok(Json(SubmitReply { hash, sender: tx.sender(), nonce: tx.tx.nonce }))
}

async fn not_found() -> Failure {
    Failure(StatusCode::NOT_FOUND, "no such endpoint; see /api/v1/openapi.json".into())
}

async fn openapi() -> Json<Value> {
    Json(openapi_document())
}

/// The OpenAPI 3.1 document of the RPC.
pub fn openapi_document() -> Value {
    let error = json!({ "$ref": "#/components/schemas/Error" });
    let errors = |codes: &[&str]| -> Value {
        let mut map = serde_json::Map::new();
        for code in codes {
            map.insert(
                (*code).to_owned(),
                json!({
                    "description": "what is wrong",
                    "content": { "application/json": { "schema": error } },
                }),
            );
        }
        Value::Object(map)
    };
    let ok = |schema: &str, more: Value| -> Value {
        let mut responses = json!({
            "200": {
                "description": "OK",
                "content": { "application/json": {
                    "schema": { "$ref": format!("#/components/schemas/{schema}") }
                } },
            }
        });
        if let (Some(r), Value::Object(more)) = (responses.as_object_mut(), more) {
            r.extend(more);
        }
        responses
    };
    let hex = |what: &str| json!({ "type": "string", "pattern": "^(0x)?[0-9a-fA-F]+$", "description": what });
    let int = json!({ "type": "integer", "format": "int64", "minimum": 0 });
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Kinema chain RPC",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "A Kinema validator's view of the chain. Addresses are 40 hex \
                characters, hashes 64; a 0x prefix is accepted on input."
        },
        "paths": {
            "/api/v1/status": { "get": {
                "operationId": "status",
                "summary": "Heights, head, state root and validators",
                "responses": ok("Status", errors(&["500"])),
            } },
            "/api/v1/accounts/{address}": { "get": {
                "operationId": "account",
                "summary": "An account at the head, with its state proof",
                "parameters": [{ "name": "address", "in": "path", "required": true,
                    "schema": hex("the account's address") }],
                "responses": ok("Account", errors(&["400", "500"])),
            } },
            "/api/v1/blocks/{height}": { "get": {
                "operationId": "block",
                "summary": "A committed block and its certificate",
                "parameters": [{ "name": "height", "in": "path", "required": true,
                    "schema": int }],
                "responses": ok("Block", errors(&["400", "404", "500"])),
            } },
            "/api/v1/validator-sets/{epoch}": { "get": {
                "operationId": "validatorSet",
                "summary": "An epoch's validators with their state proof",
                "parameters": [{ "name": "epoch", "in": "path", "required": true,
                    "schema": int }],
                "responses": ok("ValidatorSet", errors(&["400", "404", "500"])),
            } },
            "/api/v1/txs": { "post": {
                "operationId": "submit",
                "summary": "Submit a signed transaction",
                "requestBody": { "required": true, "content": { "application/json": {
                    "schema": { "$ref": "#/components/schemas/SubmitRequest" } } } },
                "responses": ok("SubmitReply", errors(&["400", "413", "415", "422", "500"])),
            } },
            "/api/v1/openapi.json": { "get": {
                "operationId": "openapi",
                "summary": "This document",
                "responses": { "200": { "description": "OpenAPI 3.1",
                    "content": { "application/json": { "schema": { "type": "object" } } } } },
            } },
        },
        "components": { "schemas": {
            "Error": { "type": "object", "required": ["error"],
                "properties": { "error": { "type": "string" } } },
            "Validator": { "type": "object", "required": ["address", "power"],
                "properties": { "address": hex("address"), "power": int } },
            "Status": { "type": "object",
                "required": ["chain_id", "height", "finalized_height", "block", "state_root",
                    "consensus_height", "round", "node", "pending_transactions", "validators"],
                "properties": {
                    "chain_id": { "type": "string" },
                    "height": int, "finalized_height": int,
                    "block": hex("the head's header hash"),
                    "state_root": hex("the state root after the head"),
                    "consensus_height": int,
                    "round": { "type": "integer", "minimum": 0 },
                    "node": hex("the validator this node runs"),
                    "pending_transactions": int,
                    "validators": { "type": "array",
                        "items": { "$ref": "#/components/schemas/Validator" } },
                } },
            "Account": { "type": "object",
                "required": ["address", "height", "state_root", "exists", "balance", "nonce",
                    "stake", "unbonding", "proof"],
                "properties": {
                    "address": hex("address"), "height": int, "state_root": hex("state root"),
                    "exists": { "type": "boolean" },
                    "balance": int, "nonce": int, "stake": int,
                    "unbonding": { "type": "array", "items": { "type": "object",
                        "required": ["amount", "release_height"],
                        "properties": { "amount": int, "release_height": int } } },
                    "proof": hex("canonical encoding of the state proof"),
                } },
            "Block": { "type": "object", "required": ["block"],
                "properties": {
                    "block": { "type": "object", "description": "header and transactions" },
                    "certificate": { "type": ["object", "null"],
                        "description": "precommits of more than 2/3 of the power" },
                } },
            "ValidatorSet": { "type": "object",
                "required": ["epoch", "epoch_length", "height", "validators", "proof"],
                "properties": {
                    "epoch": int, "epoch_length": int, "height": int,
                    "validators": { "type": "array", "items": { "type": "object",
                        "required": ["public_key", "power"],
                        "properties": { "public_key": hex("ed25519 public key"),
                            "power": int } } },
                    "proof": hex("canonical encoding of the state proof"),
                } },
            "SubmitRequest": { "type": "object", "required": ["tx"],
                "properties": { "tx": hex("the signed transaction's canonical encoding") } },
            "SubmitReply": { "type": "object", "required": ["hash", "sender", "nonce"],
                "properties": { "hash": hex("transaction hash"), "sender": hex("address"),
                    "nonce": int } },
        } },
    })
}
