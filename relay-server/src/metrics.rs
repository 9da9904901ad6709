//! `GET /metrics`: what the relay has done, in OpenMetrics text (prometheus-client), which
//! Prometheus scrapes. Counted here: HTTP answers by route and status, requests refused for
//! their rate, bytes served; read at each scrape: the libp2p node's counters and the index's
//! sizes. Every name starts with `kinema_relay_`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use kinema_net::p2p::P2p;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::Registry;

use crate::db::Db;

/// An HTTP answer's labels.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct Answer {
    /// The route class ([`route`]).
    route: &'static str,
    /// The status code.
    status: u16,
}

/// The relay's metrics.
#[derive(Debug, Clone)]
pub struct Metrics(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    registry: Registry,
    answers: Family<Answer, Counter>,
    rate_limited: Counter,
    served_bytes: Counter,
    known_peers: Gauge,
    content: Gauge,
    db: Db,
}

impl Metrics {
    /// The metrics of a relay running `p2p` over the index `db`.
    pub fn new(p2p: P2p, db: Db) -> Self {
        let mut registry = Registry::with_prefix("kinema_relay");
        let answers = Family::<Answer, Counter>::default();
        registry.register("http_requests", "HTTP answers by route and status", answers.clone());
        let rate_limited = Counter::default();
        registry.register(
            "http_rate_limited",
            "Requests refused for their rate",
            rate_limited.clone(),
        );
        let served_bytes = Counter::default();
        registry.register(
            "served_bytes",
            "Blob and playlist bytes served over HTTP",
            served_bytes.clone(),
        );
        let known_peers = Gauge::default();
        registry.register("known_peers", "Peers in the index", known_peers.clone());
        let content = Gauge::default();
        registry.register("content", "Content in the index", content.clone());
        registry.register_collector(Box::new(P2pMetrics(p2p)));
        Self(Arc::new(Inner {
            registry,
            answers,
            rate_limited,
            served_bytes,
            known_peers,
            content,
            db,
        }))
    }

    /// Counts a request refused for its rate.
    pub fn rate_limited(&self) {
        self.0.rate_limited.inc();
    }

    /// Counts `bytes` served.
    pub fn served(&self, bytes: usize) {
        self.0.served_bytes.inc_by(bytes as u64);
    }

    /// The text exposition, the index's sizes read now.
    pub async fn encode(&self) -> kinema_http::Result<String> {
        let (known, content) = self.0.db.counts().await.map_err(kinema_http::Error::internal)?;
        self.0.known_peers.set(known);
        self.0.content.set(content);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.0.registry)
            .map_err(kinema_http::Error::internal)?;
        Ok(text)
    }
}

/// The route class a path is counted under: `healthz`, `metrics`, `blobs`, `content`, `api`
/// (the rest of `/api/v1/`), `hls` or `assets`.
fn route(path: &str) -> &'static str {
    match path {
        "/healthz" => "healthz",
        "/metrics" => "metrics",
        p if p.starts_with("/api/v1/blobs") => "blobs",
        p if p.starts_with("/api/v1/content") => "content",
        p if p.starts_with("/api/v1/") => "api",
        p if p.starts_with("/hls/") => "hls",
        _ => "assets",
    }
}

/// Middleware: counts every answer (refusals by the layers inside it included) by route and
/// status.
pub async fn count(State(metrics): State<Metrics>, request: Request, next: Next) -> Response {
    let route = route(request.uri().path());
    let response = next.run(request).await;
    let status = response.status().as_u16();
    metrics.0.answers.get_or_create(&Answer { route, status }).inc();
    response
}

/// `GET /metrics`.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    summary = "OpenMetrics text exposition",
    responses(
        (status = 200, description = "the metrics", content_type = "application/openmetrics-text", body = String),
        (status = 500, description = "the index failed", body = kinema_chain::rpc::ErrorReply),
    ),
)]
pub async fn serve(State(metrics): State<Metrics>) -> kinema_http::Result<Response> {
    let text = metrics.encode().await?;
    let kind = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    Ok(([(header::CONTENT_TYPE, kind)], text).into_response())
}

/// The libp2p node's counters, read at each scrape.
#[derive(Debug)]
struct P2pMetrics(P2p);

impl Collector for P2pMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let p2p = &self.0;
        let stats = p2p.stats();
        let gauges = [
            ("connected_peers", "libp2p peers connected now", p2p.peers().len()),
            ("banned_peers", "Peers banned for sending bad data", p2p.banned().len()),
        ];
        for (name, help, value) in gauges {
            let metric = ConstGauge::new(value as i64);
            metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)?;
        }
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let counters = [
            (
                "segment_requests",
                "Segment requests answered over libp2p",
                load(&stats.segment_requests),
            ),
            ("segment_bytes", "Blob bytes sent over libp2p", load(&stats.segment_bytes)),
            ("fetched_blobs", "Blobs fetched from peers", load(&stats.fetched)),
            ("reservations", "Circuit relay reservations accepted", load(&stats.reservations)),
            ("circuits", "Relayed circuits opened", load(&stats.circuits)),
            (
                "webrtc_handshakes_admitted",
                "webrtc-direct handshakes started",
                load(&stats.webrtc_admitted),
            ),
            (
                "webrtc_handshakes_refused",
                "webrtc-direct handshakes refused (too many at once, or failed before)",
                load(&stats.webrtc_refused),
            ),
            (
                "webrtc_handshakes_failed",
                "webrtc-direct handshakes that failed (each keeps what it held until a restart)",
                load(&stats.webrtc_failed),
            ),
            ("p2p_dropped", "libp2p messages dropped on full queues", p2p.dropped()),
        ];
        for (name, help, value) in counters {
            let metric = ConstCounter::new(value);
            metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)?;
        }
        Ok(())
    }
}
