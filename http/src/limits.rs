//! What a client may send and how often, and who may read the answers: tower-http's body limit,
//! timeout and CORS layers and tower_governor's rate limit, with their refusals answered as
//! [`Error`]s that say which limit was hit.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, DefaultBodyLimit};
use axum::http::{HeaderValue, Method, Request, Response, StatusCode, header};
use axum::response::IntoResponse;
use tower::ServiceBuilder;
use tower::layer::util::{Identity, Stack};
use tower::util::MapResponseLayer;
use tower_governor::governor::{GovernorConfig, GovernorConfigBuilder, SharedRateLimiter};
use tower_governor::key_extractor::KeyExtractor;
use tower_governor::{GovernorError, GovernorLayer};
use tower_http::cors::{Any, CorsLayer};
use tower_http::limit::{RequestBodyLimitLayer, ResponseBody};
use tower_http::timeout::TimeoutLayer;

use crate::Error;

/// The layers [`body_limit`] stacks: tower-http's limit, axum's own limit off, and the 413
/// rewritten to say the limit.
pub type BodyLimit<F> = ServiceBuilder<
    Stack<RequestBodyLimitLayer, Stack<DefaultBodyLimit, Stack<MapResponseLayer<F>, Identity>>>,
>;

/// An answer from behind tower-http's body limit.
pub type Limited = Response<ResponseBody<Body>>;

/// A layer refusing request bodies over `limit` bytes: 413 with an [`Error`] naming the
/// limit, whether the body says its length up front or not. It replaces axum's default limit
/// (2 MiB), so a route may allow more; put it on the routes it is for (`Router::layer` covers
/// the routes added before it).
pub fn body_limit(
    limit: usize,
) -> BodyLimit<impl Fn(Limited) -> axum::response::Response + Clone + Send + Sync + 'static> {
    let too_large = move |response: Limited| {
        // tower-http's own refusal is plain text; a handler's 413 (a quota) is JSON already.
        let json = response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|t| t.as_bytes().starts_with(b"application/json"));
        if response.status() == StatusCode::PAYLOAD_TOO_LARGE && !json {
            let why = format!("the request body is over the {limit}-byte limit");
            return Error::new(StatusCode::PAYLOAD_TOO_LARGE, why).into_response();
        }
        response.map(Body::new)
    };
    ServiceBuilder::new()
        .layer(MapResponseLayer::new(too_large))
        .layer(DefaultBodyLimit::disable())
        .layer(RequestBodyLimitLayer::new(limit))
}

/// Answers not ready within `timeout` become 408.
pub fn timeout(timeout: Duration) -> TimeoutLayer {
    TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, timeout)
}

/// Pages of any origin may read the answers and send requests (no credentials are involved:
/// everything served is public, and what a browser reads it checks itself).
pub fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::HEAD, Method::POST, Method::PUT, Method::DELETE])
        .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION])
}

/// How often a client may send requests.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Requests per second, sustained.
    pub per_second: f64,
    /// Requests it may make at once above that rate.
    pub burst: u32,
    /// A reverse proxy in front of the server: requests from this address are counted against
    /// the client its `X-Forwarded-For` names (the last address, the one the proxy added).
    /// Without it, or for requests from elsewhere, the client is the socket's address and the
    /// header is ignored (anyone can write it).
    pub trusted_proxy: Option<IpAddr>,
}

/// Tells clients apart for the rate limit: by socket address, or behind the trusted proxy by
/// the address it forwarded for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp {
    /// See [`Rate::trusted_proxy`].
    pub trusted_proxy: Option<IpAddr>,
}

impl ClientIp {
    /// The client of a request that came from `peer` with `forwarded_for` (the
    /// `X-Forwarded-For` header, if any).
    pub fn client(&self, peer: IpAddr, forwarded_for: Option<&HeaderValue>) -> IpAddr {
        if self.trusted_proxy != Some(peer) {
            return peer;
        }
        forwarded_for
            .and_then(|value| value.to_str().ok())
            .and_then(|list| list.rsplit(',').next())
            .and_then(|last| last.trim().parse().ok())
            .unwrap_or(peer)
    }
}

impl KeyExtractor for ClientIp {
    type Key = IpAddr;

    fn extract<T>(&self, request: &Request<T>) -> Result<IpAddr, GovernorError> {
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .ok_or(GovernorError::UnableToExtractKey)?
            .0
            .ip();
        Ok(self.client(peer, request.headers().get("x-forwarded-for")))
    }
}

/// The rate limiter's state: one bucket per client.
pub type Limiter = SharedRateLimiter<IpAddr, governor::middleware::NoOpMiddleware>;

/// Why a rate could not be set up.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "a rate limit of {per_second} requests per second with bursts of {burst}: expected a positive, \
     finite rate and a burst of at least 1"
)]
pub struct BadRate {
    /// The rate asked for.
    pub per_second: f64,
    /// The burst asked for.
    pub burst: u32,
}

/// The layer holding each client to `rate` (429 with an [`Error`] and `Retry-After` in whole
/// seconds, rounded up, beyond it; `limited` is called for each refusal), and its limiter,
/// whose idle clients the owner should forget now and then
/// ([`retain_recent`](governor::RateLimiter::retain_recent)).
///
/// The server must be served with `into_make_service_with_connect_info::<SocketAddr>()`; without
/// the socket address every request fails with 500.
pub fn rate_limit(
    rate: Rate,
    limited: impl Fn() + Send + Sync + 'static,
) -> Result<(GovernorLayer<ClientIp, governor::middleware::NoOpMiddleware, Body>, Limiter), BadRate>
{
    let bad = BadRate { per_second: rate.per_second, burst: rate.burst };
    if !rate.per_second.is_finite() || rate.per_second <= 0.0 || rate.burst == 0 {
        return Err(bad);
    }
    let period = Duration::try_from_secs_f64(1.0 / rate.per_second).map_err(|_| bad.clone())?;
    let config: GovernorConfig<ClientIp, _> = GovernorConfigBuilder::default()
        .key_extractor(ClientIp { trusted_proxy: rate.trusted_proxy })
        .period(period.max(Duration::from_nanos(1)))
        .burst_size(rate.burst)
        .finish()
        .ok_or(bad)?;
    let limiter = config.limiter().clone();
    let per_second = rate.per_second;
    let layer = GovernorLayer::new(Arc::new(config)).error_handler(move |error| match error {
        GovernorError::TooManyRequests { wait_time, .. } => {
            limited();
            // tower_governor rounds the wait down; a client told 0 would come straight back.
            let wait = wait_time + 1;
            let why = format!(
                "too many requests from this client: the limit is {per_second} per second; \
                 retry in {wait} s"
            );
            let mut response = Error::new(StatusCode::TOO_MANY_REQUESTS, why).into_response();
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait));
            response
        }
        GovernorError::UnableToExtractKey => {
            Error::internal("the server cannot tell clients apart: it has no socket addresses")
                .into_response()
        }
        GovernorError::Other { code, msg, .. } => {
            Error::new(code, msg.unwrap_or_else(|| "the rate limiter refused".into()))
                .into_response()
        }
    });
    Ok((layer, limiter))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_counts_only_from_the_trusted_proxy() {
        let proxy = IpAddr::from([10, 0, 0, 1]);
        let client = IpAddr::from([192, 0, 2, 7]);
        let other = IpAddr::from([198, 51, 100, 9]);
        let header = HeaderValue::from_static("203.0.113.5, 192.0.2.7");
        let behind = ClientIp { trusted_proxy: Some(proxy) };
        assert_eq!(behind.client(proxy, Some(&header)), client);
        assert_eq!(behind.client(other, Some(&header)), other);
        assert_eq!(behind.client(proxy, None), proxy);
        let garbage = HeaderValue::from_static("not an address");
        assert_eq!(behind.client(proxy, Some(&garbage)), proxy);
        assert_eq!(ClientIp { trusted_proxy: None }.client(proxy, Some(&header)), proxy);
    }

    #[test]
    fn rates_must_be_positive() {
        for (per_second, burst) in [(0.0, 1), (-1.0, 1), (f64::NAN, 1), (1.0, 0)] {
            let rate = Rate { per_second, burst, trusted_proxy: None };
            assert!(rate_limit(rate, || {}).is_err(), "{per_second} {burst}");
        }
        assert!(rate_limit(Rate { per_second: 0.5, burst: 1, trusted_proxy: None }, || {}).is_ok());
    }
}
