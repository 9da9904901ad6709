//! kinema-http's pieces on a small router, driven without a socket: every refusal is an
//! `{"error": ...}` naming the request, with its status and headers.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use axum::routing::{get, post};
use axum::{Json, Router};
use kinema_http::limits::{self, Rate};
use serde_json::Value;
use tower::ServiceExt;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// `POST /echo`: a JSON body back.
#[utoipa::path(post, path = "/echo", responses((status = 200, body = Object)))]
async fn echo(Json(body): Json<Value>) -> Json<Value> {
    Json(body)
}

fn app(limit: usize) -> Router {
    let router = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/upload", post(|body: axum::body::Bytes| async move { body.len().to_string() }));
    let (documented, _) =
        kinema_http::openapi::split(OpenApiRouter::new().routes(routes!(echo)), &[]);
    router
        .layer(limits::body_limit(limit))
        .merge(documented)
        .fallback(kinema_http::no_endpoint)
        .layer(axum::middleware::from_fn(kinema_http::json_errors))
        .layer(limits::cors())
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Value,
}

async fn send(app: &Router, request: Request<Body>) -> Answer {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    Answer { status, headers, body }
}

fn request(method: &str, path: &str, body: impl Into<Body>) -> Request<Body> {
    Request::builder().method(method).uri(path).body(body.into()).unwrap()
}

/// Checks that `answer` is `status` with an error saying `phrase`.
fn refused(answer: &Answer, status: StatusCode, phrase: &str) {
    assert_eq!(answer.status, status, "{}", answer.body);
    let why = answer.body["error"].as_str().unwrap_or_else(|| panic!("not JSON: {}", answer.body));
    assert!(why.contains(phrase), "{why:?} does not say {phrase:?}");
    assert_eq!(answer.headers[header::CONTENT_TYPE], "application/json");
}

#[tokio::test]
async fn refusals_are_json_and_name_the_request() {
    let app = app(16);
    refused(
        &send(&app, request("GET", "/nothing", Body::empty())).await,
        StatusCode::NOT_FOUND,
        "no such endpoint; see /api/v1/openapi.json",
    );
    let wrong_method = send(&app, request("DELETE", "/healthz", Body::empty())).await;
    refused(&wrong_method, StatusCode::METHOD_NOT_ALLOWED, "DELETE /healthz: method not allowed");
    assert!(wrong_method.headers.contains_key(header::ALLOW));
    refused(
        &send(&app, request("POST", "/echo", "{}")).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "POST /echo: Expected request with `Content-Type: application/json`",
    );
    let not_json = Request::builder()
        .method("POST")
        .uri("/echo")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{not json"))
        .unwrap();
    refused(&send(&app, not_json).await, StatusCode::BAD_REQUEST, "POST /echo: Failed to parse");
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused_naming_it() {
    let app = app(16);
    assert_eq!(send(&app, request("POST", "/upload", vec![1u8; 16])).await.body, 16);
    let sized = Request::builder()
        .method("POST")
        .uri("/upload")
        .header(header::CONTENT_LENGTH, "17")
        .body(Body::from(vec![1u8; 17]))
        .unwrap();
    refused(&send(&app, sized).await, StatusCode::PAYLOAD_TOO_LARGE, "over the 16-byte limit");
    // A body that does not say its length is cut where it passes the limit.
    let chunks = futures_chunks(vec![vec![1u8; 10], vec![1u8; 10]]);
    refused(
        &send(&app, request("POST", "/upload", chunks)).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "over the 16-byte limit",
    );
}

fn futures_chunks(chunks: Vec<Vec<u8>>) -> Body {
    Body::from_stream(futures::stream::iter(chunks.into_iter().map(Ok::<_, std::io::Error>)))
}

#[tokio::test]
async fn any_origin_may_read() {
    let app = app(16);
    let preflight = Request::builder()
        .method("OPTIONS")
        .uri("/echo")
        .header(header::ORIGIN, "https://example.org")
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .body(Body::empty())
        .unwrap();
    let answer = send(&app, preflight).await;
    assert!(answer.status.is_success());
    assert_eq!(answer.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    let read = Request::builder()
        .uri("/healthz")
        .header(header::ORIGIN, "https://example.org")
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&app, read).await.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
}

#[tokio::test]
async fn the_document_describes_its_routes_and_itself() {
    let refusals = [(StatusCode::TOO_MANY_REQUESTS, "over the rate")];
    let (_, document) =
        kinema_http::openapi::split(OpenApiRouter::<()>::new().routes(routes!(echo)), &refusals);
    let echoed = &document.paths.paths["/echo"];
    let limited = &echoed.post.as_ref().unwrap().responses.responses["429"];
    assert!(serde_json::to_string(limited).unwrap().contains("ErrorReply"));
    assert!(document.components.as_ref().unwrap().schemas.contains_key("ErrorReply"));
    let app = app(16);
    let served = send(&app, request("GET", kinema_http::OPENAPI_PATH, Body::empty())).await;
    assert_eq!(served.status, StatusCode::OK);
    let (_, plain) =
        kinema_http::openapi::split(OpenApiRouter::<()>::new().routes(routes!(echo)), &[]);
    assert_eq!(served.body, serde_json::to_value(&plain).unwrap());
    assert!(served.body["paths"]["/echo"]["post"].is_object());
    assert!(served.body["paths"][kinema_http::OPENAPI_PATH]["get"].is_object());
}

#[tokio::test]
async fn clients_over_their_rate_wait_as_told_each_by_its_own_address() {
    let counted = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let count = counted.clone();
    let rate = Rate { per_second: 0.5, burst: 2, trusted_proxy: Some([10, 0, 0, 1].into()) };
    let (layer, limiter) = limits::rate_limit(rate, move || {
        count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    })
    .unwrap();
    let app = app(16).layer(layer);
    let from = |peer: [u8; 4], forwarded: Option<&str>| {
        let mut request = request("GET", "/healthz", Body::empty());
        if let Some(client) = forwarded {
            request.headers_mut().insert("x-forwarded-for", client.parse().unwrap());
        }
        request.extensions_mut().insert(ConnectInfo(SocketAddr::from((peer, 40000))));
        request
    };
    for _ in 0..2 {
        assert_eq!(send(&app, from([192, 0, 2, 1], None)).await.status, StatusCode::OK);
    }
    let limited = send(&app, from([192, 0, 2, 1], None)).await;
    refused(&limited, StatusCode::TOO_MANY_REQUESTS, "the limit is 0.5 per second");
    assert_eq!(limited.headers[header::RETRY_AFTER], "2");
    // Another client has its own allowance, also behind the proxy; a forged header from
    // elsewhere changes nothing.
    assert_eq!(send(&app, from([10, 0, 0, 1], Some("192.0.2.2"))).await.status, StatusCode::OK);
    let forged = send(&app, from([192, 0, 2, 1], Some("192.0.2.3"))).await;
    assert_eq!(forged.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(counted.load(std::sync::atomic::Ordering::Relaxed), 2);
    assert_eq!(limiter.len(), 2);
    // Without socket addresses the server cannot tell clients apart, and says so.
    let anonymous = send(&app, request("GET", "/healthz", Body::empty())).await;
    refused(&anonymous, StatusCode::INTERNAL_SERVER_ERROR, "cannot tell clients apart");
}
