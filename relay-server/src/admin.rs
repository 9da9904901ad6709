//! The operator's deny list: content ids and blobs the relay refuses to store or serve (451),
//! read from a file at start (`--deny-list`) and changed at `/api/v1/admin/denied`, whose every
//! request the operator's key signs. Denying content also denies the segments its manifest
//! names, takes them and the manifest out of the store and the content out of the index.

use std::path::Path as FilePath;

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use kinema_chain::Hash;
use kinema_chain::rpc::ErrorReply;
use kinema_http::{Error, Result};

use crate::api::{self, Denied};
use crate::auth::Signer;
use crate::gateway::parse_hash;
use crate::routes::AppState;

/// Longest reason kept, in characters.
const MAX_REASON: usize = 500;

/// 403 unless the operator signed.
fn operator_only(state: &AppState, signer: &Signer) -> Result<()> {
    match state.relay.operator {
        Some(operator) if operator == signer.account => Ok(()),
        Some(_) => Err(Error::new(
            StatusCode::FORBIDDEN,
            format!("only the relay's operator may change its deny list, not {}", signer.account),
        )),
        None => Err(Error::new(
            StatusCode::FORBIDDEN,
            "this relay has no operator key: its deny list is its --deny-list file alone",
        )),
    }
}

/// `GET /api/v1/admin/denied`.
#[utoipa::path(
    get,
    path = "/api/v1/admin/denied",
    operation_id = "denied",
    summary = "The deny list (signed by the operator)",
    responses(
        (status = 200, body = api::DenyList),
        (status = 401, description = "unsigned, or signed wrongly", body = ErrorReply),
        (status = 403, description = "not the operator", body = ErrorReply),
        (status = 500, description = "the index failed", body = ErrorReply),
    ),
)]
pub(crate) async fn denied(
    State(state): State<AppState>,
    Extension(signer): Extension<Signer>,
) -> Result<Json<api::DenyList>> {
    signer.check_body(&Hash::digest(b""))?;
    operator_only(&state, &signer)?;
    let denied = state.relay.db.denied().await.map_err(Error::internal)?;
    Ok(Json(api::DenyList { denied }))
}

/// `PUT /api/v1/admin/denied/{id}`.
#[utoipa::path(
    put,
    path = "/api/v1/admin/denied/{id}",
    operation_id = "deny",
    summary = "Refuse a content id (and its segments) or a blob (signed by the operator)",
    params(("id" = Hash, Path, description = "a content id or a blob's name")),
    request_body(content = api::Deny, content_type = "application/json"),
    responses(
        (status = 200, body = Denied),
        (status = 400, description = "not a hash, or no reason", body = ErrorReply),
        (status = 401, description = "unsigned, or signed wrongly", body = ErrorReply),
        (status = 403, description = "not the operator", body = ErrorReply),
        (status = 500, description = "the store or the index failed", body = ErrorReply),
    ),
)]
pub(crate) async fn deny(
    State(state): State<AppState>,
    Extension(signer): Extension<Signer>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Denied>> {
    signer.check_body(&Hash::digest(&body))?;
    operator_only(&state, &signer)?;
    let id = parse_hash(&id, "id")?;
    let deny: api::Deny = serde_json::from_slice(&body)
        .map_err(|e| Error::bad_request(format!("the body is not {{\"reason\": ...}}: {e}")))?;
    let denied = deny_id(&state, id, &deny.reason).await?;
    Ok(Json(denied))
}

/// `DELETE /api/v1/admin/denied/{id}`.
#[utoipa::path(
    delete,
    path = "/api/v1/admin/denied/{id}",
    operation_id = "allow",
    summary = "Take a content id or blob off the deny list (signed by the operator)",
    params(("id" = Hash, Path, description = "a content id or a blob's name")),
    responses(
        (status = 204, description = "taken off (its content must be published again)"),
        (status = 400, description = "not a hash", body = ErrorReply),
        (status = 401, description = "unsigned, or signed wrongly", body = ErrorReply),
        (status = 403, description = "not the operator", body = ErrorReply),
        (status = 404, description = "not on the list", body = ErrorReply),
        (status = 500, description = "the index failed", body = ErrorReply),
    ),
)]
pub(crate) async fn allow(
    State(state): State<AppState>,
    Extension(signer): Extension<Signer>,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    signer.check_body(&Hash::digest(b""))?;
    operator_only(&state, &signer)?;
    let id = parse_hash(&id, "id")?;
    let relay = &state.relay;
    let was = relay.db.allow(&id).await.map_err(Error::internal)?;
    relay.set_denied(relay.db.denied().await.map_err(Error::internal)?);
    if was {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Error::not_found(format!("{id} is not denied")))
    }
}

/// Denies `id` and, when it is content whose manifest the relay holds, its segments; removes
/// them from the store and the content from the index.
pub(crate) async fn deny_id(state: &AppState, id: Hash, reason: &str) -> Result<Denied> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > MAX_REASON || reason.contains(char::is_control)
    {
        return Err(Error::bad_request(format!(
            "the reason must be one line of 1 to {MAX_REASON} characters"
        )));
    }
    let relay = &state.relay;
    let segments = state.gateway.segments_of(id).await;
    let denied = relay.db.deny(&id, reason, None).await.map_err(Error::internal)?;
    let mut gone = vec![id];
    for segment in segments {
        relay.db.deny(&segment, reason, Some(&id)).await.map_err(Error::internal)?;
        gone.push(segment);
    }
    for name in &gone {
        relay.db.unpin(name).await.map_err(Error::internal)?;
    }
    let blobs = relay.blobs.clone();
    tokio::task::spawn_blocking(move || gone.iter().try_for_each(|name| blobs.remove(name)))
        .await
        .map_err(Error::internal)?
        .map_err(Error::internal)?;
    state.gateway.forget(&id);
    relay.set_denied(relay.db.denied().await.map_err(Error::internal)?);
    Ok(denied)
}

/// Reads a deny-list file: one hash per line, then optionally its reason; blank lines and
/// lines starting with `#` are skipped.
pub(crate) fn read_deny_list(path: &FilePath) -> anyhow::Result<Vec<(Hash, String)>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("--deny-list {}: {e}", path.display()))?;
    let mut list = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (id, reason) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let id: Hash = id.parse().map_err(|e| {
            anyhow::anyhow!("--deny-list {} line {}: {id:?}: {e}", path.display(), number + 1)
        })?;
        let reason = match reason.trim() {
            "" => format!("listed in {}", path.display()),
            reason => reason.chars().filter(|c| !c.is_control()).take(MAX_REASON).collect(),
        };
        list.push((id, reason));
    }
    Ok(list)
}
