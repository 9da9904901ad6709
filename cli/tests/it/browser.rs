//! The browser light node end to end, in real headless Chromium (Debian's, driven by
//! playwright-core from `tests/e2e`): `kinema devnet` serves the light-node page from its relay;
//! the page loads the wasm light node, connects to the relay over websocket, fetches a segment
//! that only a native peer holds (the relay fetches it from the peer), verifies every group of
//! it, and verifies the finalized headers validators gossip (forwarded by the relay) from the
//! genesis validator set; over webrtc-direct too.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use kinema_net::blobs::BlobStore;
use kinema_net::p2p::{self, P2pConfig};
use libp2p::Multiaddr;

use super::chain::free_ports;
use super::relay::network;
use super::{corpus, ladder};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The light-node page: `KINEMA_LIGHT_NODE`, or built by `cargo xtask light-node`.
fn light_node_page() -> PathBuf {
    if let Some(dir) = std::env::var_os("KINEMA_LIGHT_NODE") {
        return dir.into();
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let built = Command::new(cargo)
        .args(["run", "--quiet", "--locked", "-p", "xtask", "--", "light-node"])
        .current_dir(root())
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(built.status.success(), "cargo xtask light-node failed");
    let text = String::from_utf8(built.stdout).unwrap();
    PathBuf::from(text.lines().last().unwrap())
}

/// `tests/e2e`, its npm packages installed.
fn e2e() -> PathBuf {
    let dir = root().join("tests/e2e");
    if !dir.join("node_modules").is_dir() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir)
            .status()
            .expect("npm is needed for the browser tests (cargo xtask test installs Node)");
        assert!(status.success(), "npm ci in {} failed", dir.display());
    }
    assert!(
        Path::new("/usr/bin/chromium").exists() || std::env::var_os("CHROMIUM").is_some(),
        "no Chromium: install Debian's chromium (cargo xtask test does) or set CHROMIUM"
    );
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_light_node_fetches_and_verifies_in_chromium() {
    let page = light_node_page();
    let e2e = e2e();
    let tmp = tempfile::tempdir().unwrap();

    // A segment of a ladder, held by a native peer only.
    let out = tmp.path().join("ladder");
    let made = ladder(&corpus("carphone_pristine.mp4"), &out, &["--renditions", "144p"]);
    assert!(made.status.success(), "{made:?}");
    let manifest: kinema_media::Manifest =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    let segment = &manifest.renditions[0].segments[0];
    let bytes = std::fs::read(out.join("144p").join(&segment.file)).unwrap();
    let store = Arc::new(BlobStore::open(&tmp.path().join("peer")).unwrap());
    assert_eq!(store.put(&bytes).unwrap(), segment.blake3);

    let port = free_ports();
    let extra =
        ["--empty-block-interval".as_ref(), "0.3".as_ref(), "--assets".as_ref(), page.as_os_str()];
    let (_devnet, printed) = network(&tmp.path().join("devnet"), port, &extra);
    let relay_at: Option<Multiaddr> = printed.lines().find_map(|line| {
        let address = line.trim().strip_prefix("p2p     ")?;
        address.contains(&format!("/tcp/{}/", port + 3)).then(|| address.parse().unwrap())
    });
    let (peer, _link) = p2p::start(P2pConfig {
        peers: vec![relay_at.expect("the devnet printed no relay address")],
        blobs: Some(store),
        ..P2pConfig::new(p2p::keypair_from_seed([61; 32]).unwrap())
    })
    .unwrap();
    tokio::time::timeout(Duration::from_secs(20), peer.connected_to(1)).await.unwrap();

    let url = format!("http://127.0.0.1:{}/?segment={}", port + 2, segment.blake3);
    let ids = ["relay-status", "segment-result", "header-result"];
    let result = page_result(&e2e, url, &ids).await;
    let element = |id: &str| element_of(&result, id);
    let (state, text) = element("segment-result");
    assert_eq!(state, "verified", "{result}");
    assert!(
        text.starts_with(&format!("verified {} bytes of {}", bytes.len(), segment.blake3)),
        "{text}"
    );
    let (state, text) = element("header-result");
    assert_eq!(state, "verified", "{result}");
    assert!(
        text.contains("certified by 1000000 of 1000000 power (epoch 0), heard over gossip"),
        "{text}"
    );
    let (state, text) = element("relay-status");
    assert_eq!(state, "connected", "{result}");
    assert!(text.starts_with("connected over websocket"), "{text}");
    assert_eq!(result["errors"], serde_json::json!([]), "{result}");

    // Over webrtc-direct: the page connects and fetches the segment (now from the relay's
    // store) in 15 KiB pieces, each group checked once its pieces are in.
    let url = format!(
        "http://127.0.0.1:{}/?transport=webrtc-direct&segment={}",
        port + 2,
        segment.blake3
    );
    let result = page_result(&e2e, url, &["relay-status", "segment-result"]).await;
    let (state, text) = element_of(&result, "relay-status");
    assert_eq!(state, "connected", "{result}");
    assert!(text.starts_with("connected over webrtc-direct"), "{text}");
    let (state, text) = element_of(&result, "segment-result");
    assert_eq!(state, "verified", "{result}");
    assert!(
        text.starts_with(&format!("verified {} bytes of {}", bytes.len(), segment.blake3)),
        "{text}"
    );
    // libp2p-webrtc-websys 0.5 reports its data channel's callback firing after the stream it
    // belonged to is gone (rust-libp2p issue 5636); anything else is an error of ours.
    let known = "Error: closure invoked recursively or after being dropped";
    let errors = result["errors"].as_array().unwrap();
    assert!(errors.iter().all(|e| e == known), "{result}");
}

/// Opens `url` in Chromium and returns what `light-node.mjs` saw of the elements `ids`.
async fn page_result(e2e: &Path, url: String, ids: &[&str]) -> serde_json::Value {
    let mut args = vec!["light-node.mjs".to_owned(), url];
    args.extend(ids.iter().map(|id| (*id).to_owned()));
    let dir = e2e.to_owned();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node").args(&args).current_dir(dir).output()
    })
    .await
    .unwrap()
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or("{}"))
        .unwrap_or_else(|e| panic!("{e}: {stdout} {}", String::from_utf8_lossy(&output.stderr)))
}

/// An element's `data-state` and text in a [`page_result`].
fn element_of(result: &serde_json::Value, id: &str) -> (String, String) {
    let e = &result["elements"][id];
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
    (text(&e["state"]), text(&e["text"]))
}
