//! `kinema devnet` (validators and a relay), `kinema publish` and `kinema relay` as a user runs
//! them: a ladder published to the devnet's relay plays whole through its HLS gateway.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use super::chain::{Process, free_ports};
use super::{corpus, kinema, ladder};

/// `kinema devnet` with one validator, its ports from `port` on (RPC, validator, HTTP, relay
/// TCP, relay websocket), data in `dir`, and `extra` options; returns once it has printed its
/// URLs, with what it printed.
pub(super) fn network(dir: &Path, port: u16, extra: &[&OsStr]) -> (Process, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kinema"))
        .args(["devnet", "--validators", "1", "--rpc-port", &port.to_string()])
        .args(["--p2p-port", &(port + 1).to_string(), "--http-port", &(port + 2).to_string()])
        .args(["--relay-port", &(port + 3).to_string()])
        .args(extra)
        .arg("--data-dir")
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let process = Process(child);
    // It prints the relay's URLs, then how to publish.
    let mut printed = String::new();
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        printed.push_str(&line);
        printed.push('\n');
        if line.contains("publish a ladder") {
            break;
        }
    }
    // Keep reading what it prints: a closed pipe would end it.
    std::thread::spawn(move || lines.for_each(drop));
    (process, printed)
}

#[test]
fn devnet_relay_serves_a_published_ladder() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_ports();
    let (_devnet, printed) = network(&tmp.path().join("devnet"), port, &[]);
    let relay = format!("http://127.0.0.1:{}", port + 2);
    assert!(printed.contains(&format!("http    {relay}")), "{printed}");
    let ws = format!("/ip4/127.0.0.1/tcp/{}/ws/p2p/", port + 4);
    assert!(printed.contains(&format!("browser {ws}")), "{printed}");

    let out = tmp.path().join("ladder");
    let made = ladder(&corpus("carphone_pristine.mp4"), &out, &["--renditions", "144p"]);
    assert!(made.status.success(), "{made:?}");
    // The devnet says which key to publish with: its faucet's, with a generous quota there.
    let faucet = tmp.path().join("devnet/faucet.key");
    assert!(printed.contains(&format!("--key {}", faucet.display())), "{printed}");
    let publish = |key: &std::path::Path| {
        kinema(&[
            "publish".as_ref(),
            out.as_os_str(),
            "--relay".as_ref(),
            relay.as_ref(),
            "--key".as_ref(),
            key.as_os_str(),
            "--json".as_ref(),
        ])
    };
    // A key file that is not one is named.
    let not_a_key = tmp.path().join("not-a-key");
    std::fs::write(&not_a_key, "{}").unwrap();
    let failed = publish(&not_a_key);
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(!failed.status.success() && stderr.contains("--key"), "{stderr}");
    let published = publish(&faucet);
    assert!(published.status.success(), "{published:?}");
    let content: serde_json::Value = serde_json::from_slice(&published.stdout).unwrap();
    let master = format!("{relay}{}", content["hls"].as_str().unwrap());
    let read = Command::new("ffmpeg")
        .args(["-v", "error", "-i", &master, "-map", "0", "-f", "null", "-"])
        .output()
        .unwrap();
    assert!(read.status.success() && read.stderr.is_empty(), "{read:?}");

    // The relay dialled the validator.
    let status = ureq::get(&format!("{relay}/api/v1/status")).call().unwrap().into_body();
    let status: serde_json::Value = serde_json::from_reader(status.into_reader()).unwrap();
    assert!(status["connected_peers"].as_u64().unwrap() >= 1, "{status}");

    // Bad inputs: one line naming what is wrong.
    let missing = tmp.path().join("no-ladder");
    let failed = kinema(&[
        "publish".as_ref(),
        missing.as_os_str(),
        "--relay".as_ref(),
        relay.as_ref(),
        "--key".as_ref(),
        faucet.as_os_str(),
    ]);
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert_eq!(failed.status.code(), Some(1));
    assert!(
        stderr.starts_with("kinema: error: ") && stderr.contains("no-ladder/manifest.json"),
        "{stderr}"
    );
    let bad_assets = kinema(&[
        "relay".as_ref(),
        "--data-dir".as_ref(),
        tmp.path().join("relay").as_os_str(),
        "--assets".as_ref(),
        missing.as_os_str(),
    ]);
    let stderr = String::from_utf8_lossy(&bad_assets.stderr);
    assert!(stderr.contains("--assets") && stderr.contains("no index.html"), "{stderr}");
    let bad_proxy = kinema(&[
        "relay".as_ref(),
        "--data-dir".as_ref(),
        tmp.path().join("relay").as_os_str(),
        "--trusted-proxy".as_ref(),
        "proxy.example".as_ref(),
    ]);
    let stderr = String::from_utf8_lossy(&bad_proxy.stderr);
    assert!(stderr.contains("--trusted-proxy") && stderr.contains("proxy.example"), "{stderr}");
}

#[test]
fn a_relay_keeps_its_webrtc_certificate_so_its_address() {
    use std::os::unix::fs::PermissionsExt;

    let tmp = tempfile::tempdir().unwrap();
    let certhash = || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kinema"))
            .args([
                "relay",
                "--http",
                "127.0.0.1:0",
                "--listen",
                "/ip4/127.0.0.1/udp/0/webrtc-direct",
            ])
            .arg("--data-dir")
            .arg(tmp.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let _relay = Process(child);
        let line = BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find(|l| l.contains("/webrtc-direct/certhash/"))
            .expect("the relay printed no webrtc-direct address");
        let (_, hash) = line.split_once("/certhash/").unwrap();
        hash.split('/').next().unwrap().to_owned()
    };
    let first = certhash();
    assert_eq!(certhash(), first, "the address changed across a restart");
    let pem = std::fs::metadata(tmp.path().join("webrtc.pem")).unwrap();
    assert_eq!(pem.permissions().mode() & 0o777, 0o600);
}
