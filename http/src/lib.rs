//! The HTTP server pieces Kinema's chain RPC (kinema-node's `rpc`) and relay (kinema-relay)
//! share, so that both answer the same way:
//!
//! - [`Error`]: every error answer, a status and kinema-chain's
//!   [`kinema_chain::rpc::ErrorReply`] (`{"error": "<what is wrong>"}`);
//! - [`no_endpoint`]: the one 404 for a path neither server has;
//! - [`json_errors`]: a middleware that turns the errors axum and tower-http answer on their own
//!   (a rejected body, 405, 408, 413) into that JSON, naming the request;
//! - [`limits`]: tower-http's body limit (413 naming the limit), timeout (408) and CORS, and
//!   tower_governor's per-client rate limit (429 with `Retry-After`), the client told by its
//!   socket address or, behind a trusted proxy, by `X-Forwarded-For`;
//! - [`openapi`]: the route `/api/v1/openapi.json` serving the document utoipa generated from
//!   the handlers.
//!
//! ```
//! use axum::Router;
//! use axum::routing::get;
//!
//! async fn answer() -> Result<&'static str, kinema_http::Error> {
//!     Err(kinema_http::Error::bad_request("height \"x\" is not a number"))
//! }
//!
//! let app: Router = Router::new()
//!     .route("/api/v1/answer", get(answer))
//!     .fallback(kinema_http::no_endpoint)
//!     .layer(axum::middleware::from_fn(kinema_http::json_errors))
//!     .layer(kinema_http::limits::cors());
//! # let _ = app;
//! ```
//!
//! **Why a crate of its own.** kinema-chain holds the error's wire type but builds for wasm32
//! and holds no server code; kinema-node links wasmtime, redb and Malachite, which the relay must
//! not; the relay links sqlx, which the node must not. Both can depend on this small crate
//! (axum, tower-http, tower_governor, utoipa and kinema-chain) without pulling in each other.

pub mod limits;
pub mod openapi;

use std::fmt;

use axum::Json;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use kinema_chain::rpc::ErrorReply;

/// The path of the OpenAPI document both servers serve.
pub const OPENAPI_PATH: &str = "/api/v1/openapi.json";

/// An error answer: a status and what is wrong, sent as an
/// [`kinema_chain::rpc::ErrorReply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    status: StatusCode,
    message: String,
}

/// A handler's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An answer with `status` saying `message`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, message: message.into() }
    }

    /// 400: the request is malformed.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404: what the request names is not there.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 422: the request is well formed but refused.
    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }

    /// 500: the server failed.
    pub fn internal(why: impl fmt::Display) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, why.to_string())
    }

    /// The same error, its message after `what: `.
    pub fn context(self, what: impl fmt::Display) -> Self {
        Self { message: format!("{what}: {}", self.message), ..self }
    }

    /// Its status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// What is wrong.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.status, self.message)
    }
}

impl std::error::Error for Error {}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        (self.status, Json(ErrorReply { error: self.message })).into_response()
    }
}

impl From<kinema_chain::Error> for Error {
    fn from(e: kinema_chain::Error) -> Self {
        Self::internal(e)
    }
}

/// The answer to a path no route serves (404).
pub async fn no_endpoint() -> Error {
    Error::not_found(format!("no such endpoint; see {OPENAPI_PATH}"))
}

/// Error answers larger than this are cut when rewritten as JSON.
const MAX_ERROR_TEXT: usize = 16 << 10;

/// Middleware: an error answer (4xx, 5xx) that is not JSON already (what axum's extractors,
/// its method router and tower-http's layers answer) becomes an [`ErrorReply`] that names the
/// request and says what the original said (or the status's reason when it said nothing). Its
/// other headers (`Allow`, `Retry-After`) stay.
pub async fn json_errors(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    let status = response.status();
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|t| t.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, MAX_ERROR_TEXT).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_owned(),
        Err(_) => String::new(),
    };
    let said = if text.is_empty() {
        status.canonical_reason().unwrap_or("failed").to_lowercase()
    } else {
        text
    };
    let reply = ErrorReply { error: format!("{method} {path}: {said}") };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let body = serde_json::to_vec(&reply).unwrap_or_default();
    Response::from_parts(parts, Body::from(body))
}
