//! `cargo xtask bench market [--clip FILE] [--renditions 240p,144p]`: a clip uploaded to a
//! devnet (release build, 1 validator, its 2 workers and 2 verifiers, all on this machine) from
//! `kinema upload --wait` to a playable ladder, against `kinema media ladder` making the same
//! renditions with the same preset alone; and what the creator paid per segment.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::{Running, cargo, corpus, ensure_ffmpeg, ensure_wasm_target, run, target_dir};

/// `kinema devnet` with 1 validator (its RPC on `port`, libp2p on `port + 1`, the relay's HTTP
/// on `port + 2` and libp2p on `port + 3`) and `extra` options, data in `dir`; returns once it
/// serves, and kills it when dropped.
pub(crate) fn start_devnet(
    kinema: &Path,
    dir: &Path,
    port: u16,
    extra: &[&str],
) -> Result<Running> {
    let mut devnet = Command::new(kinema);
    devnet
        .args(["devnet", "--validators", "1", "--rpc-port", &port.to_string()])
        .args(["--p2p-port", &(port + 1).to_string(), "--http-port", &(port + 2).to_string()])
        .args(["--relay-port", &(port + 3).to_string()])
        .args(extra)
        .arg("--data-dir")
        .arg(dir);
    Running::until(&mut devnet, "upload a clip")
}

pub(crate) fn bench(args: &[String]) -> Result<()> {
    let mut clip = corpus("bikes.mp4");
    let mut renditions = "240p,144p".to_owned();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let value = it.next().with_context(|| format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--clip" => clip = PathBuf::from(value),
            "--renditions" => renditions = value.clone(),
            other => bail!(
                "unknown option {other}; usage: cargo xtask bench market [--clip FILE] [--renditions LIST]"
            ),
        }
    }
    ensure_ffmpeg()?;
    ensure_wasm_target()?;
    cargo(&["build", "--release", "--locked", "-p", "kinema-cli"])?;
    let kinema = target_dir().join("release/kinema");
    let work = target_dir().join(format!("bench-market-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let port = 41_650u16;
    let devnet = start_devnet(&kinema, &work.join("devnet"), port, &[])?;
    let relay = format!("http://127.0.0.1:{}", port + 2);
    let rpc = format!("http://127.0.0.1:{port}");
    let faucet = work.join("devnet/faucet.key");
    let balance = |who: &str| -> Result<u64> {
        let out =
            run(Command::new(&kinema).args(["chain", "balance", "--rpc", &rpc, who, "--json"]))?;
        let v: serde_json::Value = serde_json::from_str(&out)?;
        v["balance"].as_u64().context("no balance")
    };
    let address =
        run(Command::new(&kinema).args(["wallet", "address"]).arg(&faucet))?.trim().to_owned();
    let before = balance(&address)?;

    let started = Instant::now();
    let out = Command::new(&kinema)
        .arg("upload")
        .arg(&clip)
        .args(["--relay", &relay, "--key"])
        .arg(&faucet)
        .args(["--renditions", &renditions, "--wait", "--json"])
        .output()?;
    let market = started.elapsed().as_secs_f64();
    if !out.status.success() {
        bail!("kinema upload: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let job = answer["job"].to_string();
    let status =
        Command::new(&kinema).args(["job", "status", "--rpc", &rpc, &job, "--json"]).output()?;
    let status: serde_json::Value = serde_json::from_slice(&status.stdout)?;
    let segments = status["segments"].as_u64().unwrap_or(1).max(1);
    let spent = before - balance(&address)?;
    let paid: u64 =
        status["paid"].as_object().map_or(0, |p| p.values().filter_map(|v| v.as_u64()).sum());
    drop(devnet);

    let started = Instant::now();
    let made = Command::new(&kinema)
        .args(["media", "ladder"])
        .arg(&clip)
        .arg("--out")
        .arg(work.join("ladder"))
        .args(["--renditions", &renditions, "--preset", "veryfast"])
        .output()?;
    let alone = started.elapsed().as_secs_f64();
    if !made.status.success() {
        bail!("kinema media ladder: {}", String::from_utf8_lossy(&made.stderr).trim());
    }
    println!(
        "market benchmark: {} ({segments} segments, {renditions}, x264 veryfast), 1 validator, \
         2 workers and 2 verifiers on this machine",
        clip.display()
    );
    println!("  kinema upload --wait, upload to playable: {market:.1} s");
    println!("  kinema media ladder alone:                {alone:.1} s");
    println!("  ratio {:.2}", market / alone);
    println!(
        "  the creator spent {spent} ({:.0} per segment): {paid} to workers and verifiers \
         ({:.0} per segment), the rest transaction fees and refunds",
        spent as f64 / segments as f64,
        paid as f64 / segments as f64
    );
    std::fs::remove_dir_all(&work)?;
    Ok(())
}
