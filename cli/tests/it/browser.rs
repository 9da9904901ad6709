//! What browsers get, end to end in real headless Chromium (Debian's, driven by playwright-core
//! from `tests/e2e`), served by `kinema devnet`'s relay from what its build embedded:
//! - the light-node page loads the wasm light node, connects to the relay over websocket,
//!   fetches a segment that only a native peer holds (the relay fetches it from the peer),
//!   verifies every group of it, and verifies the finalized headers validators gossip
//!   (forwarded by the relay) from the genesis validator set; over webrtc-direct too;
//! - the player plays a ladder from its content id alone, every segment checked;
//! - the creator app takes a clip from a new wallet to a played watch link;
//! - a Kinema tab and a js-libp2p tab reach each other over libp2p `/webrtc`.

use std::path::{Path, PathBuf};
use std::process::Command;
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

/// `tests/<name>`, its npm packages installed.
fn npm_dir(name: &str) -> PathBuf {
    let dir = root().join("tests").join(name);
    if !dir.join("node_modules").is_dir() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir)
            .status()
            .expect("npm is needed for the browser tests (cargo xtask test installs Node)");
        assert!(status.success(), "npm ci in {} failed", dir.display());
    }
    dir
}

/// `tests/e2e`, its npm packages installed, and Chromium.
fn e2e() -> PathBuf {
    assert!(
        Path::new("/usr/bin/chromium").exists() || std::env::var_os("CHROMIUM").is_some(),
        "no Chromium: install Debian's chromium (cargo xtask test does) or set CHROMIUM"
    );
    npm_dir("e2e")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_light_node_fetches_and_verifies_in_chromium() {
    // Three libp2p nodes in one page, two of them over WebRTC: it takes its turn too.
    let _heavy = super::HEAVY.lock().await;
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
    let extra = ["--empty-block-interval".as_ref(), "0.3".as_ref()];
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

    // The genesis the page is told to trust comes in the link, as the devnet prints it.
    let genesis = printed
        .lines()
        .find_map(|line| line.strip_prefix("genesis "))
        .expect("the devnet printed no genesis")
        .to_owned();
    assert!(printed.contains(&format!("/node.html#genesis={genesis}")), "{printed}");
    let url = format!(
        "http://127.0.0.1:{}/node.html?reach=1&segment={}#genesis={genesis}",
        port + 2,
        segment.blake3
    );
    let ids = [
        "relay-status",
        "segment-result",
        "trust",
        "header-result",
        "reach-result",
        "browser-fetch",
    ];
    let result = page_result(&e2e, url, &ids).await;
    let element = |id: &str| element_of(&result, id);
    let (state, text) = element("segment-result");
    assert_eq!(state, "verified", "{result}");
    assert!(
        text.starts_with(&format!("verified {} bytes of {}", bytes.len(), segment.blake3)),
        "{text}"
    );
    let (state, text) = element("trust");
    assert_eq!(
        (state.as_str(), text),
        ("verified", format!("trusting genesis {genesis} of chain kinema-devnet")),
        "{result}"
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
    // Reachable through the relay: a second node of the page dials the circuit and pings.
    let (state, text) = element("reach-result");
    eprintln!("reach: {text}");
    assert_eq!(state, "verified", "{result}");
    assert!(text.contains("/p2p-circuit/webrtc/p2p/12D3Koo"), "{text}");
    assert!(text.contains("pinged it over a direct WebRTC connection"), "{text}");
    // The first node keeps the segment; the second fetches it from the first, directly.
    let (state, text) = element("browser-fetch");
    assert_eq!(state, "verified", "{result}");
    let from_browser =
        format!("verified {} bytes of {} from a browser", bytes.len(), segment.blake3);
    assert!(text.starts_with(&from_browser), "{text}");
    assert_eq!(result["errors"], serde_json::json!([]), "{result}");

    // Over webrtc-direct: the page connects and fetches the segment (now from the relay's
    // store) in 15 KiB pieces, each group checked once its pieces are in.
    let url = format!(
        "http://127.0.0.1:{}/node.html?transport=webrtc-direct&segment={}",
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
    node_script(e2e, args).await
}

/// What an end-to-end script (`node <args>` in `dir`, on a blocking thread) printed last: one
/// JSON line. Panics with its output when that line is not JSON.
async fn node_script<S: AsRef<std::ffi::OsStr> + Send + 'static>(
    dir: &Path,
    args: Vec<S>,
) -> serde_json::Value {
    let dir = dir.to_owned();
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

/// `path` from the chain RPC at `rpc`, once it answers it.
async fn rpc_get(rpc: &str, path: &str) -> String {
    let url = format!("{rpc}{path}");
    kinema_test_support::eventually(
        &format!("{path} from the RPC"),
        Duration::from_secs(60),
        || {
            let url = url.clone();
            async move {
                let read = move || {
                    let mut answer = ureq::get(&url).call().ok()?;
                    answer.body_mut().read_to_string().ok()
                };
                tokio::task::spawn_blocking(read).await.unwrap()
            }
        },
    )
    .await
}

/// What the page shows of `ids` when the chain RPC it is told to use lies: a relay or a chain
/// RPC may be anyone's, and only the genesis in the link is trusted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_light_node_says_not_verified_when_the_chain_rpc_lies() {
    use kinema_chain::block::{
        Certificate, CommitSignature, Validator, ValidatorSet, Vote, VoteKind,
    };
    use kinema_chain::crypto::{Domain, SecretKey};
    use kinema_chain::rpc::{BlockReply, ValidatorSetReply};

    let e2e = e2e();
    let tmp = tempfile::tempdir().unwrap();
    let port = free_ports();
    let extra = ["--empty-block-interval".as_ref(), "0.3".as_ref()];
    let dir = tmp.path().join("devnet");
    let (_devnet, printed) = network(&dir, port, &extra);
    let genesis = printed.lines().find_map(|l| l.strip_prefix("genesis ")).unwrap().to_owned();
    let rpc = format!("http://127.0.0.1:{port}");
    let block0 = rpc_get(&rpc, "/api/v1/blocks/0").await;
    let set0 = rpc_get(&rpc, "/api/v1/validator-sets/0").await;
    let mut block6: BlockReply =
        serde_json::from_str(&rpc_get(&rpc, "/api/v1/blocks/6").await).unwrap();

    // A validator set of someone else's keys, named as the genesis set.
    let stranger = SecretKey::from_seed([66; 32]);
    let mut forged_set: ValidatorSetReply = serde_json::from_str(&set0).unwrap();
    forged_set.validators =
        ValidatorSet::new(vec![Validator { public_key: stranger.public(), power: 1 }]).unwrap();
    // A block of another chain, certified there by this chain's own validator.
    let validator = SecretKey::from_key_file(
        &std::fs::read_to_string(dir.join("validator-0/key.json")).unwrap(),
    )
    .unwrap();
    let mut other = block6.clone();
    other.block.header.chain_id = "kinema-other".into();
    let hash = other.block.header.hash();
    let precommit = kinema_chain::encode(&Vote {
        chain_id: "kinema-other".into(),
        height: 6,
        round: 0,
        kind: VoteKind::Precommit,
        block: Some(hash),
    });
    let signature = CommitSignature {
        validator: validator.address(),
        signature: validator.sign(Domain::Vote, &precommit),
    };
    other.certificate =
        Some(Certificate { height: 6, round: 0, block: hash, signatures: vec![signature] });
    // This chain's block 6 with a certificate whose signature is made up.
    if let Some(certificate) = block6.certificate.as_mut() {
        certificate.signatures[0].signature = kinema_chain::Signature([7; 64]);
    }

    // A chain RPC that answers with those.
    let answers: std::collections::HashMap<&str, String> = [
        ("/forged-set/api/v1/blocks/0", block0.clone()),
        ("/forged-set/api/v1/validator-sets/0", serde_json::to_string(&forged_set).unwrap()),
        ("/lies/api/v1/blocks/0", block0),
        ("/lies/api/v1/validator-sets/0", set0),
        ("/lies/api/v1/blocks/5", serde_json::to_string(&other).unwrap()),
        ("/lies/api/v1/blocks/6", serde_json::to_string(&block6).unwrap()),
    ]
    .into_iter()
    .collect();
    let answers = Arc::new(answers);
    let liar = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let liar_at = liar.local_addr().unwrap();
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let answers = answers.clone();
        async move {
            let body = answers.get(uri.path()).cloned();
            let status = if body.is_some() { 200 } else { 404 };
            (
                axum::http::StatusCode::from_u16(status).unwrap(),
                [("access-control-allow-origin", "*"), ("content-type", "application/json")],
                body.unwrap_or_default(),
            )
        }
    });
    tokio::spawn(async move { axum::serve(liar, app).await.unwrap() });

    let page_url = |rpc: &str, query: &str| {
        format!(
            "http://127.0.0.1:{}/node.html?rpc=http://{liar_at}{rpc}{query}#genesis={genesis}",
            port + 2
        )
    };
    let result = page_result(&e2e, page_url("/forged-set", ""), &["trust"]).await;
    let (state, text) = element_of(&result, "trust");
    assert_eq!(state, "failed", "{result}");
    assert!(
        text.starts_with("not verified: ") && text.contains("is not the one genesis"),
        "{text}"
    );

    let result = page_result(&e2e, page_url("/lies", "&block=5"), &["trust", "block-result"]).await;
    assert_eq!(element_of(&result, "trust").0, "verified", "{result}");
    let (state, text) = element_of(&result, "block-result");
    assert_eq!(state, "failed", "{result}");
    assert!(
        text.starts_with("not verified: ") && text.contains("of chain \"kinema-other\""),
        "{text}"
    );

    let result = page_result(&e2e, page_url("/lies", "&block=6"), &["block-result"]).await;
    let (state, text) = element_of(&result, "block-result");
    assert_eq!(state, "failed", "{result}");
    assert!(text.starts_with("not verified: ") && text.contains("does not verify"), "{text}");
}

/// A devnet (no market members) under `dir` with bigbuckbunny's 240p and 144p ladder published
/// on its relay: the devnet (running while it is held), the relay's URL, the ladder's directory
/// and its content id.
/// A devnet with `bigbuckbunny.mp4`'s ladder published: the devnet, its relay's URL, the
/// ladder's directory, its content id and the chain's RPC.
fn published_ladder(dir: &Path) -> (super::chain::Process, String, PathBuf, String, String) {
    let out = dir.join("ladder");
    let made = ladder(&corpus("bigbuckbunny.mp4"), &out, &["--renditions", "240p,144p"]);
    assert!(made.status.success(), "{made:?}");
    let port = free_ports();
    let extra = ["--workers".as_ref(), "0".as_ref(), "--verifiers".as_ref(), "0".as_ref()];
    let (devnet, _) = network(&dir.join("devnet"), port, &extra);
    let relay = format!("http://127.0.0.1:{}", port + 2);
    let faucet = dir.join("devnet/faucet.key");
    let published = super::kinema(&[
        "publish".as_ref(),
        out.as_os_str(),
        "--relay".as_ref(),
        relay.as_ref(),
        "--key".as_ref(),
        faucet.as_os_str(),
        "--json".as_ref(),
    ]);
    assert!(published.status.success(), "{published:?}");
    let content: serde_json::Value = serde_json::from_slice(&published.stdout).unwrap();
    let id = content["id"].as_str().unwrap().to_owned();
    (devnet, relay, out, id, format!("http://127.0.0.1:{port}"))
}

/// A new key funded from the devnet's faucet with a bandwidth-ticket deposit; its seed.
fn funded_viewer(dir: &Path, rpc: &str, deposit: u64) -> String {
    let key = dir.join("viewer.key");
    let made =
        super::kinema(&["wallet".as_ref(), "new".as_ref(), "--out".as_ref(), key.as_os_str()]);
    assert!(made.status.success(), "{made:?}");
    let address = String::from_utf8_lossy(&made.stdout).trim().to_owned();
    let faucet = dir.join("devnet/faucet.key");
    let amount = (deposit + 10_000_000).to_string();
    let sent = super::kinema(
        &[
            "tx",
            "transfer",
            "--rpc",
            rpc,
            "--key",
            faucet.to_str().unwrap(),
            "--to",
            &address,
            "--amount",
            &amount,
            "--wait",
        ]
        .map(std::ffi::OsStr::new),
    );
    assert!(sent.status.success(), "{sent:?}");
    let deposit = deposit.to_string();
    let funded = super::kinema(
        &[
            "tx",
            "fund-tickets",
            "--rpc",
            rpc,
            "--key",
            key.to_str().unwrap(),
            "--deposit",
            &deposit,
            "--wait",
        ]
        .map(std::ffi::OsStr::new),
    );
    assert!(funded.status.success(), "{funded:?}");
    let file: serde_json::Value = serde_json::from_slice(&std::fs::read(&key).unwrap()).unwrap();
    file["secret_key"].as_str().unwrap().to_owned()
}

/// Browser to browser over libp2p `/webrtc` with the reference implementation: a Kinema tab
/// and a js-libp2p tab (`@libp2p/webrtc`, bundled from `tests/interop`) on one relay each listen
/// on `<relay>/p2p-circuit/webrtc`; each dials the other, the two signal through the relay,
/// and each pings the other over the direct connection. Then the js-libp2p tab lies: a viewer
/// that asks it for a segment drops it and plays on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kinema_tab_and_a_js_libp2p_tab_ping_each_other_over_webrtc() {
    let _heavy = super::HEAVY.lock().await;
    let e2e = e2e();
    let interop = npm_dir("interop");
    let tmp = tempfile::tempdir().unwrap();
    let bundle = tmp.path().join("js-libp2p.js");
    let bundled =
        Command::new("node").arg("bundle.mjs").arg(&bundle).current_dir(&interop).output().unwrap();
    assert!(bundled.status.success(), "{bundled:?}");
    let (_devnet, relay, _, id, _) = published_ladder(tmp.path());
    let args: Vec<std::ffi::OsString> =
        vec!["webrtc-interop.mjs".into(), relay.into(), bundle.into(), "--liar".into(), id.into()];
    let result = node_script(&e2e, args).await;
    eprintln!("webrtc interop: {result}");
    assert_eq!(result["ok"], true, "{result}");
    assert_eq!(result["errors"], serde_json::json!([]), "{result}");
    let kinema = result["kinema"]["address"].as_str().unwrap();
    let kinema_peer = kinema.rsplit('/').next().unwrap();
    assert!(kinema.contains("/p2p-circuit/webrtc/p2p/"), "{result}");
    // js-libp2p dialled the Kinema tab's /webrtc address and pinged it over that connection.
    assert!(result["jsPingsKinema"]["rtt"].as_f64().is_some(), "{result}");
    let js_saw = result["jsPingsKinema"]["connections"].as_array().unwrap();
    assert!(js_saw.iter().any(|a| a.as_str() == Some(kinema)), "{result}");
    // The Kinema tab dialled js-libp2p's: js-libp2p holds a direct WebRTC connection from it.
    assert!(result["kinemaPingsJs"]["rtt"].as_f64().is_some(), "{result}");
    let direct = format!("/webrtc/p2p/{kinema_peer}");
    let js_now = result["jsConnections"].as_array().unwrap();
    assert!(js_now.iter().any(|a| a.as_str() == Some(direct.as_str())), "{result}");

    // The js-libp2p tab turns liar for a published video: a viewer connects to it, asks it,
    // drops it at the first bad answer, and plays on from the relay without a stall.
    let viewer = &result["viewer"];
    let stat = |key: &str| viewer["stats"][key].as_str().and_then(|v| v.parse::<u64>().ok());
    assert_eq!(viewer["ended"], true, "{result}");
    assert_eq!((stat("stalls"), stat("peerBytes"), stat("browsers")), (Some(0), Some(0), Some(0)));
    assert!(stat("verified").is_some_and(|v| v >= 3), "{result}");
    assert_eq!(result["lies"], 1, "asked once, then dropped: {result}");
}

/// The player in Chromium: a published ladder played to its end from its content id alone,
/// every segment checked, no stall; a relay answer with a flipped byte rejected and fetched
/// again while playback goes on; content nobody has named as such.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_player_plays_a_ladder_checking_every_segment() {
    let _heavy = super::HEAVY.lock().await;
    let e2e = e2e();
    let tmp = tempfile::tempdir().unwrap();
    let (_devnet, relay, out, id, rpc) = published_ladder(tmp.path());
    let viewer = funded_viewer(tmp.path(), &rpc, 1_000 * kinema_chain::tickets::MIN_FACE_VALUE);
    let manifest: kinema_media::Manifest =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    let segments = manifest.renditions[0].segments.len();

    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("player");
    std::fs::create_dir_all(&shots).unwrap();
    let play = |extra: Vec<String>| {
        let mut args = vec!["player.mjs".to_owned(), format!("{relay}/watch/{id}#autoplay=1")];
        args.extend(extra);
        let dir = e2e.clone();
        async move {
            let result = node_script(&dir, args).await;
            eprintln!("player: {result}");
            result
        }
    };
    let number = |r: &serde_json::Value, key: &str| -> u64 {
        r["stats"][key].as_str().and_then(|v| v.parse().ok()).unwrap_or(u64::MAX)
    };

    // Through the light node: to the end, every segment checked, nothing rejected, no stall.
    // Then again from what the tab kept, and once more after every kept copy was damaged.
    let shot = shots.join("played.png").to_string_lossy().into_owned();
    let args = vec![
        "--screenshot".into(),
        shot,
        "--replay".into(),
        "--second".into(),
        "--second-key".into(),
        viewer,
    ];
    let result = play(args).await;
    assert_eq!(result["ended"], true, "{result}");
    assert_eq!(result["error"], serde_json::Value::Null, "{result}");
    assert_eq!(number(&result, "rejected"), 0, "{result}");
    assert_eq!(number(&result, "stalls"), 0, "{result}");
    assert!(number(&result, "verified") >= segments as u64, "{result}");
    assert!(number(&result, "relayBytes") > 0, "{result}");
    assert!(number(&result, "ttffMs") < 60_000, "{result}");
    assert_eq!(result["errors"], serde_json::json!([]), "{result}");
    let replay = &result["replay"];
    assert_eq!((replay["ended"].as_bool(), number(replay, "stalls")), (Some(true), 0), "{result}");
    assert!(number(replay, "verified") >= segments as u64, "{result}");
    assert!(number(replay, "storeBytes") > 0, "{result}");
    assert_eq!(number(replay, "relayBytes"), 0, "a replay fetches nothing: {result}");
    let corrupted = &result["corrupted"];
    let flipped = result["flipped"].as_u64().unwrap();
    assert!(flipped > segments as u64, "the manifest and every segment were kept: {result}");
    assert_eq!(corrupted["ended"], true, "{result}");
    assert_eq!(number(corrupted, "stalls"), 0, "{result}");
    assert_eq!(number(corrupted, "storeBytes"), 0, "no damaged copy is played: {result}");
    assert!(number(corrupted, "storeRejected") >= segments as u64, "{result}");
    assert!(number(corrupted, "relayBytes") > 0, "{result}");
    // A second viewer (nothing kept) takes segments from the first viewer's tab, directly: after
    // its replay the first tab holds them in IndexedDB alone, and reads them from there.
    let second = &result["second"];
    assert_eq!(second["ended"], true, "{result}");
    assert_eq!((number(second, "stalls"), number(second, "rejected")), (0, 0), "{result}");
    assert!(number(second, "verified") >= segments as u64, "{result}");
    assert!(number(second, "peerBytes") > 0, "{result}");
    let served = result["firstServed"].as_str().and_then(|s| s.parse::<u64>().ok());
    assert!(served.is_some_and(|s| s > 0), "{result}");
    // It paid the first in tickets for every whole 256 KiB that checked out (segments it
    // played from the first tab, and any it stopped waiting for), at the relay's price, and
    // the first took them all (the payer's funds read from the chain with a proof).
    let (first, paying) = (&result["firstAccount"], &result["secondAccount"]);
    let at_least = number(second, "peerBytes") / kinema_chain::tickets::BYTES_PER_TICKET;
    let tickets = paying["tickets_paid"].as_u64().unwrap_or(0);
    assert!(at_least > 0 && tickets >= at_least, "{result}");
    assert_eq!(first["tickets_taken"].as_u64(), Some(tickets), "{result}");
    let price = 1_000_000 / 4; // the devnet's price per MiB, for a quarter MiB
    assert_eq!(first["credited"].as_u64(), Some(tickets * price), "{result}");
    assert_eq!(paying["paid"], first["credited"], "{result}");

    // Through the relay's blob API only, one answer tampered: rejected, fetched again, played on.
    let first = manifest.renditions.iter().map(|r| r.segments[1].blake3.to_string());
    for hash in first {
        let result = play(vec!["--no-peers".into(), "--tamper".into(), hash]).await;
        if result["tampered"].as_u64() == Some(0) {
            continue; // the player never asked for this rendition
        }
        assert_eq!(result["ended"], true, "{result}");
        assert_eq!(number(&result, "rejected"), 1, "{result}");
        assert_eq!(number(&result, "stalls"), 0, "{result}");
        break;
    }

    // Content nobody has.
    let nobody = "ab".repeat(32);
    let mut args = vec!["player.mjs".to_owned(), format!("{relay}/watch.html#content={nobody}")];
    args.push("--no-peers".into());
    let result = node_script(&e2e, args).await;
    assert_eq!(result["error"]["state"], "no-content", "{result}");
}

/// The creator app in Chromium on a devnet, as a creator uses it: a wallet made and funded from
/// the faucet; a larger clip whose upload is cut off by a reload and resumed where the relay
/// is; a corpus clip uploaded with captions, the first chunk's answer lost on the way; the job
/// followed live to done, its ladder checked and recorded; the watch link played to its end
/// with every segment verified, the captions shown; the bandwidth key the player made for the
/// browser funded from the wallet; each worker's key, imported into another browser, shows what
/// it earned. Screenshots of each step go to `<target tmp>/studio/`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_creator_app_uploads_a_clip_and_its_watch_link_plays() {
    let _heavy = super::HEAVY.lock().await;
    let e2e = e2e();
    let tmp = tempfile::tempdir().unwrap();
    let port = free_ports();
    let (_devnet, _) = network(&tmp.path().join("devnet"), port, &[]);
    let relay = format!("http://127.0.0.1:{}", port + 2);
    let rpc = format!("http://127.0.0.1:{port}");
    let captions = tmp.path().join("captions.vtt");
    std::fs::write(
        &captions,
        "WEBVTT\n\n00:00.000 --> 00:04.000\nBikes at the crossing\n\n00:04.000 --> 00:09.000\nEvery segment checked\n",
    )
    .unwrap();
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("studio");
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).unwrap();
    let args: Vec<std::ffi::OsString> = vec![
        "studio.mjs".into(),
        format!("{relay}/").into(),
        corpus("bikes.mp4").into(),
        shots.clone().into(),
        "--drop-chunk".into(),
        "--captions".into(),
        captions.into(),
        "--resume".into(),
        corpus("trailer_bbb.mp4").into(),
        "--earnings".into(),
        format!(
            "{},{}",
            tmp.path().join("devnet/worker-0/key.json").display(),
            tmp.path().join("devnet/worker-1/key.json").display()
        )
        .into(),
    ];
    let result = node_script(&e2e, args).await;
    eprintln!("studio: {result}");
    assert_eq!(result["ok"], true, "{result}");
    let step = |name: &str| {
        result["steps"].as_array().unwrap().iter().find(|s| s["name"] == name).cloned().unwrap()
    };

    let address = step("wallet")["address"].as_str().unwrap().to_owned();
    assert_eq!(address.len(), 40, "{address}");
    assert_eq!(step("funded")["balance"], kinema_relay::GIFT.to_string());
    assert_eq!(step("funded")["checked"], "true", "{result}");
    // Ticket funds put in from the wallet and read back with their proof.
    let tickets = step("tickets");
    assert_eq!(
        (tickets["deposit"].as_str(), tickets["reserve"].as_str()),
        (Some("1000000000"), Some("500000000")),
        "{result}"
    );
    assert_eq!(tickets["earned"], "0", "{result}");
    assert!(tickets["checked"].as_str().unwrap().contains("proved at block"), "{result}");
    // The key the player made for this browser, funded from the wallet and read back proved.
    let browser = step("browser");
    let seed: [u8; 32] =
        hex::decode(browser["seed"].as_str().unwrap()).unwrap().try_into().unwrap();
    let key = kinema_chain::crypto::SecretKey::from_seed(seed).address().to_string();
    assert_eq!(browser["key"].as_str(), Some(key.as_str()), "{result}");
    assert_eq!(browser["deposit"], "300000000", "{result}");
    assert_eq!(browser["winners"], "0", "it served nobody: {result}");
    // The player's "mine bandwidth" switch turned off and an upload cap set, from the app.
    assert_eq!((browser["mine"].as_str(), browser["cap"].as_str()), (Some("0"), Some("64")));
    // Resumed after the reload from where the relay was (its first chunk), not from 0.
    let offsets = step("resumed")["offsets"].as_array().unwrap().clone();
    assert_eq!(step("resumed")["stage"], "ready", "{result}");
    assert_eq!(offsets[0], serde_json::json!({ "offset": 0, "reloaded": false }), "{result}");
    let after: Vec<u64> = offsets
        .iter()
        .filter(|o| o["reloaded"] == true)
        .map(|o| o["offset"].as_u64().unwrap())
        .collect();
    assert_eq!(after.first(), Some(&(4 << 20)), "{result}");
    // The lost answer: the chunk was in, and the app went on.
    assert_eq!(result["dropped"], 1, "{result}");
    let uploaded = step("uploaded");
    assert_eq!(
        (uploaded["stage"].as_str(), uploaded["percent"].as_u64()),
        (Some("ready"), Some(100))
    );
    assert!(uploaded["cost"].as_str().unwrap().starts_with("costs "), "{result}");

    let done = step("done");
    assert_eq!(done["state"], "done", "{result}");
    let href = done["href"].as_str().unwrap();
    let content: kinema_chain::Hash = href.strip_prefix("/watch/").unwrap().parse().unwrap();
    assert_eq!(done["published"], 1, "{result}");
    assert_eq!(done["public"], 1, "{result}");
    // The relay knows the video, and the chain records its ladder as the job's content.
    let videos: serde_json::Value =
        serde_json::from_str(&rpc_get(&relay, &format!("/api/v1/videos?content={content}")).await)
            .unwrap();
    let video = &videos["videos"][0];
    assert_eq!(video["creator"], address.as_str(), "{video}");
    assert!(video["captions"].is_string(), "{video}");
    let job = video["job"].as_u64().unwrap();
    let reply: serde_json::Value =
        serde_json::from_str(&rpc_get(&rpc, &format!("/api/v1/jobs/{job}")).await).unwrap();
    assert_eq!(reply["content"], content.to_string(), "{reply}");

    let played = step("played");
    let stat = |key: &str| played["stats"][key].as_str().and_then(|v| v.parse::<u64>().ok());
    assert_eq!(played["ended"], true, "{result}");
    assert_eq!(played["error"], serde_json::Value::Null, "{result}");
    assert_eq!((stat("rejected"), stat("stalls")), (Some(0), Some(0)), "{result}");
    let segments = reply["segments"].as_u64().unwrap();
    assert!(stat("verified").unwrap() >= segments, "{result}");
    assert_eq!(played["title"], "Bikes at the crossing", "{result}");
    assert_eq!(played["captions"]["mode"], "showing", "{result}");
    assert_eq!(played["captions"]["cues"], 2, "{result}");
    // Stills: the poster before it plays, a library thumbnail, the seek bar's preview (bikes.mp4
    // is 10 s: a tile every 2 s, three quarters in is tile 3).
    assert_eq!(played["poster"], true, "{result}");
    assert!(done["thumbnail"].as_u64().unwrap_or(0) > 0, "{result}");
    assert_eq!(played["preview"], serde_json::json!({ "shown": true, "tile": 3 }), "{result}");
    // Each worker's key, imported into a browser, shows what the chain paid it.
    for earned in result["earnings"].as_array().unwrap() {
        let address = earned["address"].as_str().unwrap();
        let paid = reply["paid"][address].as_u64().unwrap_or(0);
        assert_eq!(earned["paid"].as_u64(), Some(paid), "{result}");
        assert_eq!(earned["jobs"].as_u64(), Some(u64::from(paid > 0)), "{result}");
    }
    let paid_workers = result["earnings"].as_array().unwrap().iter().filter(|e| e["paid"] != 0);
    assert!(paid_workers.count() >= 1, "{result}");
    // The only errors the page saw are the connections the test cut.
    for error in result["errors"].as_array().unwrap() {
        assert!(error.as_str().unwrap().contains("ERR_CONNECTION_RESET"), "{result}");
    }
}
