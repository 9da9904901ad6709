//! What Kinema's tests share.
//!
//! - [`corpus`]: a clip of the shared test corpus (`../shared/corpus` beside the workspace, or
//!   `KINEMA_CORPUS`);
//! - [`wait_until`] / [`wait_until_async`]: wait for a condition with a deadline, checking it
//!   often, instead of sleeping a fixed time and hoping; [`eventually`]: repeat an attempt
//!   until it gives a value;
//! - [`check_openapi`]: that a server's OpenAPI document is whole;
//! - [`fuzz`]: mutations and checks for the property tests over decoders.
//!
//! ```
//! use std::time::Duration;
//! let start = std::time::Instant::now();
//! kinema_test_support::wait_until("a tenth of a second passed", Duration::from_secs(5), || {
//!     start.elapsed() >= Duration::from_millis(100)
//! });
//! ```

#![allow(clippy::print_stderr)] // a test's helper says what it waits for

pub mod fuzz;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The corpus directory: `KINEMA_CORPUS`, or `shared/corpus` beside the workspace.
pub fn corpus_dir() -> PathBuf {
    std::env::var_os("KINEMA_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus"))
}

/// The corpus clip `name`; panics, saying where it looked, when it is not there.
pub fn corpus(name: &str) -> PathBuf {
    let path = corpus_dir().join(name);
    assert!(path.is_file(), "corpus clip {} is missing (set KINEMA_CORPUS)", path.display());
    path
}

/// How often a wait checks its condition.
const POLL: Duration = Duration::from_millis(20);

/// Checks `condition` until it holds; panics naming `what` when `deadline` passes first.
pub fn wait_until(what: &str, deadline: Duration, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(start.elapsed() < deadline, "waited {deadline:?} for {what}");
        std::thread::sleep(POLL);
    }
}

/// [`wait_until`] for a condition that must be awaited (a request to a node), on tokio.
pub async fn wait_until_async<F: Future<Output = bool>>(
    what: &str,
    deadline: Duration,
    mut condition: impl FnMut() -> F,
) {
    let start = Instant::now();
    while !condition().await {
        assert!(start.elapsed() < deadline, "waited {deadline:?} for {what}");
        tokio::time::sleep(POLL).await;
    }
}

/// Makes `attempt` until it gives a value (a fetch that succeeds once the network has learnt
/// who provides a blob), and returns it; panics naming `what` when `deadline` passes first.
pub async fn eventually<T, F: Future<Output = Option<T>>>(
    what: &str,
    deadline: Duration,
    mut attempt: impl FnMut() -> F,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = attempt().await {
            return value;
        }
        assert!(start.elapsed() < deadline, "waited {deadline:?} for {what}");
        tokio::time::sleep(POLL).await;
    }
}

/// A STUN binding request whose USERNAME names `ufrag` on both sides, with `transaction` as its
/// id: the first datagram of a webrtc-direct handshake, as a browser sends it (no integrity,
/// no fingerprint: the listener reads the username alone before it starts a peer connection).
pub fn stun_binding_request(ufrag: &str, transaction: [u8; 12]) -> Vec<u8> {
    let user = format!("{ufrag}:{ufrag}").into_bytes();
    let mut attribute = vec![0x00, 0x06]; // USERNAME
    attribute.extend((user.len() as u16).to_be_bytes());
    attribute.extend(&user);
    attribute.resize(attribute.len().next_multiple_of(4), 0);
    let mut message = vec![0x00, 0x01]; // a binding request
    message.extend((attribute.len() as u16).to_be_bytes());
    message.extend(0x2112_a442_u32.to_be_bytes()); // the magic cookie
    message.extend(transaction);
    message.extend(attribute);
    message
}

/// Checks that `document` is a whole OpenAPI 3.1 document: every `$ref` resolves, every
/// operation has an `operationId` and responses, every parameter of a path template is declared.
pub fn check_openapi(document: &serde_json::Value) {
    use serde_json::Value;
    fn refs<'a>(value: &'a Value, found: &mut Vec<&'a str>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get("$ref") {
                    found.push(r);
                }
                map.values().for_each(|v| refs(v, found));
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, found)),
            _ => {}
        }
    }
    assert_eq!(document["openapi"], "3.1.0");
    let mut found = Vec::new();
    refs(document, &mut found);
    assert!(!found.is_empty(), "no $ref: schemas are all inline?");
    for r in found {
        let resolves =
            r.strip_prefix('#').is_some_and(|pointer| document.pointer(pointer).is_some());
        assert!(resolves, "{r} does not resolve");
    }
    let paths = document["paths"].as_object().map(|p| p.iter()).into_iter().flatten();
    for (path, item) in paths {
        let operations = item.as_object().map(|o| o.iter()).into_iter().flatten();
        for (method, operation) in operations {
            assert!(operation["operationId"].is_string(), "{method} {path}: no operationId");
            let answers = operation["responses"].as_object().map_or(0, |r| r.len());
            assert!(answers > 0, "{method} {path}: no responses");
            let declared = operation["parameters"].as_array().map(|p| p.as_slice()).unwrap_or(&[]);
            for name in path.split('{').skip(1).filter_map(|p| p.split('}').next()) {
                let found = declared.iter().any(|p| p["name"] == name && p["in"] == "path");
                assert!(found, "{method} {path}: parameter {name} undeclared");
            }
        }
    }
}
