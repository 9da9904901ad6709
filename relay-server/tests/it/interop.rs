//! Interoperability with the reference implementation: a js-libp2p node (npm `libp2p` with its
//! websocket transport, noise, yamux, identify and ping; `tests/interop/`) dials the relay over
//! websocket and completes identify and ping; a Kinema node dials a js-libp2p node and does the
//! same.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use kinema_net::p2p::{self, AGENT, P2pConfig};
use kinema_relay::{Config, Limits};
use serde_json::Value;

/// `tests/interop`, its npm packages installed (once, whichever test asks first).
fn harness() -> PathBuf {
    static INSTALLED: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/interop");
            if !dir.join("node_modules").is_dir() {
                let status = Command::new("npm")
                    .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                    .current_dir(&dir)
                    .status()
                    .expect("npm is needed for the interop tests (cargo xtask test installs it)");
                assert!(status.success(), "npm ci in {} failed", dir.display());
            }
            dir
        })
        .clone()
}

fn last_json(stdout: &[u8]) -> Value {
    let text = String::from_utf8_lossy(stdout);
    let line = text.lines().last().unwrap_or_else(|| panic!("no output: {text}"));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_libp2p_dials_the_relay_over_websocket() {
    let dir = harness();
    let data = tempfile::tempdir().unwrap();
    let relay = kinema_relay::start(Config {
        keypair: p2p::keypair_from_seed([91; 32]).unwrap(),
        listen: vec!["/ip4/127.0.0.1/tcp/0/ws".parse().unwrap()],
        chain_id: "kinema-interop".into(),
        ..crate::relay::config(data.path(), None, Limits::default())
    })
    .await
    .unwrap();
    let address = relay.p2p.listening().await.remove(0).to_string();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node").arg("interop.mjs").arg("dial").arg(&address).current_dir(&dir).output()
    })
    .await
    .unwrap()
    .unwrap();
    let result = last_json(&output.stdout);
    assert_eq!(result["ok"], true, "{result} {}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(result["peer"], relay.p2p.peer_id().to_string());
    assert_eq!(result["agentVersion"], AGENT);
    assert_eq!(result["protocolVersion"], "/kinema/1.0.0");
    let protocols: Vec<&str> =
        result["protocols"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
    for protocol in [
        "/ipfs/id/1.0.0",
        "/ipfs/ping/1.0.0",
        "/kinema/segment/1",
        "/libp2p/circuit/relay/0.2.0/hop",
    ] {
        assert!(protocols.contains(&protocol), "{protocol} not in {protocols:?}");
    }
    assert!(result["rtt_ms"].as_f64().unwrap() >= 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kinema_node_dials_js_libp2p() {
    let dir = harness();
    let mut child = Command::new("node")
        .arg("interop.mjs")
        .arg("listen")
        .current_dir(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    let address = first["listening"].as_str().unwrap().parse().unwrap();
    let (node, _link) = p2p::start(P2pConfig {
        peers: vec![address],
        ..P2pConfig::new(p2p::keypair_from_seed([92; 32]).unwrap())
    })
    .unwrap();
    tokio::time::timeout(Duration::from_secs(20), node.connected_to(1)).await.unwrap();
    // The Kinema side identifies the js-libp2p node too.
    let agent =
        kinema_test_support::eventually("js-libp2p identified", Duration::from_secs(10), || {
            std::future::ready(node.peers().first().and_then(|p| p.agent.clone()))
        });
    assert!(agent.await.starts_with("js-libp2p/"));
    let rest: Vec<String> =
        tokio::task::spawn_blocking(move || lines.map_while(Result::ok).collect()).await.unwrap();
    let status = child.wait().unwrap();
    let result: Value = serde_json::from_str(rest.last().unwrap()).unwrap();
    assert!(status.success(), "{result}");
    assert_eq!(result["ok"], true, "{result}");
    assert_eq!(result["peer"], node.peer_id().to_string());
    assert_eq!(result["agentVersion"], AGENT);
    assert_eq!(result["inboundPing"], true);
    assert!(result["rtt_ms"].as_f64().is_some(), "{result}");
}
