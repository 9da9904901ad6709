//! `cargo xtask bench webrtc-flood [--datagrams N] [--sources K]`: what a flood of webrtc-direct
//! handshakes costs a relay. Starts `kinema relay` (the debug build) with a webrtc-direct
//! listener on loopback, sends it N STUN binding requests, each from a new UDP socket on one of
//! K loopback addresses (127.0.0.1 up) and each naming a new ICE username, as the first
//! message of a handshake that is never finished, and prints the relay's memory (RSS) and file
//! descriptors before and after, with its count of handshakes admitted, refused and failed
//! (`/metrics`). Unguarded, libp2p-webrtc kept a peer connection and its socket for every one
//! (`kinema_net::p2p::webrtc`).

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::{Running, cargo, target_dir};

pub(crate) fn bench(args: &[String]) -> Result<()> {
    let mut datagrams = 4000usize;
    let mut sources = 4u8;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let value = it.next().with_context(|| format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--datagrams" => datagrams = value.parse().context("--datagrams: a number")?,
            "--sources" => sources = value.parse().context("--sources: a number, 1 to 250")?,
            other => bail!(
                "unknown option {other}; usage: cargo xtask bench webrtc-flood [--datagrams N] [--sources K]"
            ),
        }
    }
    if !(1..=250).contains(&sources) {
        bail!("--sources: 1 to 250 loopback addresses");
    }
    cargo(&["build", "--locked", "-p", "kinema-cli"])?;
    let kinema = target_dir().join("debug/kinema");
    let work = target_dir().join(format!("bench-webrtc-flood-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    let (http, udp) = (43_600u16, 43_601u16);
    let relay = Running::until(
        Command::new(&kinema)
            .args(["relay", "--http", &format!("127.0.0.1:{http}")])
            .args(["--listen", &format!("/ip4/127.0.0.1/udp/{udp}/webrtc-direct")])
            .arg("--data-dir")
            .arg(&work),
        "/webrtc-direct/",
    )?;
    let pid = relay.id();
    let before = (rss_kib(pid)?, descriptors(pid)?);

    // Each socket stays open until the end, so that no address is used twice: the relay hears
    // an address once.
    let started = Instant::now();
    let mut sockets = Vec::with_capacity(datagrams);
    for i in 0..datagrams {
        let from = format!("127.0.0.{}", 1 + i % sources as usize);
        let socket =
            UdpSocket::bind((from.as_str(), 0)).with_context(|| format!("a socket on {from}"))?;
        socket.send_to(&binding_request(i), ("127.0.0.1", udp))?;
        sockets.push(socket);
        if i % 50 == 49 {
            // The relay reads one datagram at a time: a burst larger than its socket's buffer
            // would be dropped by the kernel, not by the relay.
            std::thread::sleep(Duration::from_millis(25));
        }
    }
    let sent = started.elapsed();
    // Decided: admitted or refused; the admitted fail after libp2p-webrtc's 10 s.
    let deadline = Instant::now() + Duration::from_secs(90);
    let counts = loop {
        let counts = handshakes(http)?;
        let (admitted, refused, failed) = counts;
        if (admitted + refused) as usize >= datagrams * 95 / 100 && failed == admitted {
            break counts;
        }
        if Instant::now() > deadline {
            eprintln!("waited 90 s; the relay decided on fewer than 95 % of the datagrams");
            break counts;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let after = (rss_kib(pid)?, descriptors(pid)?);
    drop(sockets);
    drop(relay);
    let _ = std::fs::remove_dir_all(&work);

    let (admitted, refused, failed) = counts;
    println!(
        "webrtc-direct flood: {datagrams} STUN binding requests from {sources} loopback \
         address(es), sent in {:.1} s, to a debug kinema relay",
        sent.as_secs_f64()
    );
    println!("  handshakes admitted {admitted}, refused {refused}, failed {failed}");
    println!(
        "  RSS {:.1} MiB -> {:.1} MiB ({:+.0} bytes per datagram)",
        before.0 as f64 / 1024.0,
        after.0 as f64 / 1024.0,
        (after.0 as f64 - before.0 as f64) * 1024.0 / datagrams as f64
    );
    println!("  file descriptors {} -> {}", before.1, after.1);
    Ok(())
}

/// The `i`th binding request: a new ICE username, and a transaction id of its own.
fn binding_request(i: usize) -> Vec<u8> {
    let ufrag = format!("libp2p+webrtc+v1/flood{i:016x}{:016x}", std::process::id());
    let mut transaction = [0; 12];
    transaction[..8].copy_from_slice(&(i as u64).to_be_bytes());
    transaction[8..].copy_from_slice(&std::process::id().to_be_bytes());
    kinema_test_support::stun_binding_request(&ufrag, transaction)
}

fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS in /proc/<pid>/status")
}

fn descriptors(pid: u32) -> Result<usize> {
    Ok(std::fs::read_dir(format!("/proc/{pid}/fd"))?.count())
}

/// The relay's webrtc-direct handshakes admitted, refused and failed, from its `/metrics`.
fn handshakes(http: u16) -> Result<(u64, u64, u64)> {
    let mut stream = TcpStream::connect(("127.0.0.1", http))?;
    write!(stream, "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    let counter = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("kinema_relay_webrtc_handshakes_{name}_total ")))
            .and_then(|v| v.trim().parse().ok())
            .with_context(|| format!("no webrtc_handshakes_{name} in the relay's /metrics"))
    };
    Ok((counter("admitted")?, counter("refused")?, counter("failed")?))
}
