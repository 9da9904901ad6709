//! `kinema chain devnet`, `chain status`, `chain balance`, `tx transfer` and `tx stake` as a
//! user runs them: the devnet (validators over libp2p on loopback) is a child process, killed
//! and resumed.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::kinema;

/// Nine consecutive free ports on 127.0.0.1: four for the RPC, four for libp2p, one for a
/// node of its own.
pub(super) fn free_ports() -> u16 {
    // Tests run side by side in this process: each call takes its own block to probe from, so
    // two devnets never find the same free block before either binds it.
    static NEXT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    let start = 20_000 + (std::process::id() % 20_000) as u16;
    loop {
        let base = start + NEXT.fetch_add(11, std::sync::atomic::Ordering::Relaxed);
        assert!(base < 60_000, "no free block of 9 ports");
        if (0..9).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok()) {
            return base;
        }
    }
}

pub(super) struct Process(pub(super) Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn devnet(dir: &std::path::Path, port: u16) -> Process {
    let child = Command::new(env!("CARGO_BIN_EXE_kinema"))
        .args(["chain", "devnet", "--validators", "4", "--rpc-port", &port.to_string()])
        .args(["--p2p-port", &(port + 4).to_string()])
        .args(["--empty-block-interval", "0.2", "--keep-states", "20", "--data-dir"])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Process(child)
}

fn json(args: &[&str]) -> Value {
    let args: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
    let out = kinema(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?}: {stderr}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 1, "one JSON object: {text}");
    serde_json::from_str(&text).unwrap()
}

/// The status once the RPC answers and the chain is past `height`.
fn status_past(rpc: &str, height: u64) -> Value {
    // Generous: this binary's other tests (Chromium, ffmpeg, other devnets) share two cores.
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let out = kinema(&[
            "chain".as_ref(),
            "status".as_ref(),
            "--rpc".as_ref(),
            rpc.as_ref(),
            "--json".as_ref(),
        ]);
        if out.status.success() {
            let status: Value = serde_json::from_slice(&out.stdout).unwrap();
            if status["height"].as_u64().unwrap() > height {
                return status;
            }
        }
        assert!(Instant::now() < deadline, "{rpc} not past height {height} within 3 minutes");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_devnet_finalizes_transfers_and_resumes_after_a_kill() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("devnet");
    let port = free_ports();
    let rpc = |i: u16| format!("http://127.0.0.1:{}", port + i);
    let net = devnet(&dir, port);
    let status = status_past(&rpc(0), 1);
    for key in ["height", "finalized_height", "state_root", "validators"] {
        assert!(status.get(key).is_some(), "status has no {key}: {status}");
    }
    assert_eq!(status["validators"].as_array().unwrap().len(), 4);
    assert_eq!(status["state_root"].as_str().unwrap().len(), 64);

    let me = tmp.path().join("me.key");
    let out = kinema(&["wallet".as_ref(), "new".as_ref(), "--out".as_ref(), me.as_os_str()]);
    let address = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let faucet = dir.join("faucet.key");
    let sent = json(&[
        "tx",
        "transfer",
        "--rpc",
        &rpc(1),
        "--key",
        faucet.to_str().unwrap(),
        "--to",
        &format!("0x{address}"),
        "--amount",
        "5000000",
        "--wait",
        "--json",
    ]);
    assert!(sent["height"].as_u64().unwrap() >= 1, "{sent}");
    let staked = json(&[
        "tx",
        "stake",
        "--rpc",
        &rpc(2),
        "--key",
        me.to_str().unwrap(),
        "--amount",
        "1000",
        "--fee",
        "100000",
        "--wait",
        "--json",
    ]);
    let height = staked["height"].as_u64().unwrap();
    // Every validator holds the same account once it reaches that height.
    for i in 0..4 {
        status_past(&rpc(i), height - 1);
        let account = json(&["chain", "balance", "--rpc", &rpc(i), &address, "--json"]);
        assert_eq!(account["stake"], 1000, "{account}");
        assert_eq!(account["nonce"], 1, "{account}");
        let balance = account["balance"].as_u64().unwrap();
        assert!(balance < 5_000_000 - 1000 && balance > 5_000_000 - 101_000, "{account}");
    }

    // Ticket funds: put in, shown, on their way out.
    let key = me.to_str().unwrap();
    let base = ["--rpc", &rpc(1), "--key", key, "--fee", "200000", "--wait", "--json"];
    let fund = [&["tx", "fund-tickets", "--deposit", "30000", "--reserve", "20000"][..], &base];
    let funded = json(&fund.concat());
    json(&[&["tx", "unlock-tickets"][..], &base].concat());
    let funded_height = funded["height"].as_u64().unwrap();
    status_past(&rpc(1), funded_height + 1);
    let tickets = json(&["chain", "tickets", "--rpc", &rpc(1), &address, "--json"]);
    assert_eq!(tickets["funds"]["deposit"], 30000, "{tickets}");
    assert_eq!(tickets["funds"]["reserve"], 20000, "{tickets}");
    assert!(tickets["funds"]["unlocks_at"].as_u64().unwrap() > funded_height, "{tickets}");
    assert_eq!(tickets["earned"]["tickets"], 0, "{tickets}");

    // A refused transaction says why, on one line.
    let rpc0 = rpc(0);
    let words =
        ["tx", "stake", "--rpc", &rpc0, "--key", me.to_str().unwrap(), "--amount", "999999999"];
    let args: Vec<&std::ffi::OsStr> = words.iter().map(std::ffi::OsStr::new).collect();
    let refused = kinema(&args);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1));
    assert!(stderr.contains("422") && stderr.contains("balance"), "{stderr}");

    // Killed (no chance to clean up) and started again on the same directory: it resumes.
    let before = status_past(&rpc(0), height)["height"].as_u64().unwrap();
    drop(net);
    let mut net = devnet(&dir, port);
    let after = status_past(&rpc(3), before);
    assert!(after["height"].as_u64().unwrap() > before);
    let account = json(&["chain", "balance", "--rpc", &rpc(3), &address, "--json"]);
    assert_eq!(account["stake"], 1000, "{account}");

    // A node of its own (another process, not a validator) joins from the genesis file and
    // one validator's address, and catches up with the chain.
    let full = Command::new(env!("CARGO_BIN_EXE_kinema"))
        .args(["node", "--data-dir"])
        .arg(tmp.path().join("full"))
        .arg("--genesis")
        .arg(dir.join("genesis.json"))
        .args([
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--peer",
            &format!("/ip4/127.0.0.1/tcp/{}", port + 4),
        ])
        .args(["--rpc", &format!("127.0.0.1:{}", port + 8)])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut full = Process(full);
    let own = format!("http://127.0.0.1:{}", port + 8);
    let joined = status_past(&own, after["height"].as_u64().unwrap());
    assert_eq!(joined["validators"].as_array().unwrap().len(), 4);
    let account = json(&["chain", "balance", "--rpc", &own, &address, "--json"]);
    assert_eq!(account["stake"], 1000, "{account}");

    // SIGTERM (what kill, systemd and container runtimes send) stops the node and the devnet
    // cleanly, as Ctrl-C does.
    assert!(terminate(&mut full).success());
    assert!(terminate(&mut net).success());
}

/// Sends SIGTERM to `process` and waits (up to a minute) for it to exit.
fn terminate(process: &mut Process) -> std::process::ExitStatus {
    let pid = process.0.id().to_string();
    let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(sent.success(), "kill -TERM {pid}");
    let mut status = None;
    kinema_test_support::wait_until(
        &format!("process {pid} to exit"),
        Duration::from_secs(60),
        || {
            status = process.0.try_wait().unwrap();
            status.is_some()
        },
    );
    status.unwrap()
}
