//! `cargo xtask bench offload [--tabs N] [--clip FILE]`: N viewers' tabs in headless Chromium
//! join one video a second apart and play it through, first sharing with each other (the
//! player's default), then each from the relay alone (`#share=0`, the baseline). Prints, for
//! each run, the share of segment bytes that came from other viewers' browsers, the share of
//! segments verified, stalls per tab and time to first frame; the target is a share of at least
//! 0.9·(N−1)/N with no more stalls than the baseline.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::market::Devnet;
use crate::{cargo, corpus, ensure_ffmpeg, ensure_wasm_target, root, target_dir};

pub(crate) fn bench(args: &[String]) -> Result<()> {
    let mut tabs = 4usize;
    let mut clip = corpus("trailer_bbb.mp4");
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let value = it.next().with_context(|| format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--tabs" => tabs = value.parse().context("--tabs: a number")?,
            "--clip" => clip = PathBuf::from(value),
            other => bail!(
                "unknown option {other}; usage: cargo xtask bench offload [--tabs N] [--clip FILE]"
            ),
        }
    }
    ensure_ffmpeg()?;
    ensure_wasm_target()?;
    crate::ensure_browser()?;
    // The debug build: what is measured is where bytes come from, not the relay's speed.
    cargo(&["build", "--locked", "-p", "kinema-cli"])?;
    let kinema = target_dir().join("debug/kinema");
    let work = target_dir().join(format!("bench-offload-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let ladder = work.join("ladder");
    let made = Command::new(&kinema)
        .args(["media", "ladder"])
        .arg(&clip)
        .args(["--renditions", "240p,144p", "--out"])
        .arg(&ladder)
        .output()?;
    if !made.status.success() {
        bail!("the ladder: {}", String::from_utf8_lossy(&made.stderr));
    }
    let port = 42_650u16;
    let extra = ["--workers", "0", "--verifiers", "0"];
    let _devnet = Devnet::start(&kinema, &work.join("devnet"), port, &extra)?;
    let relay = format!("http://127.0.0.1:{}", port + 2);
    let published = Command::new(&kinema)
        .arg("publish")
        .arg(&ladder)
        .args(["--relay", &relay, "--key"])
        .arg(work.join("devnet/faucet.key"))
        .arg("--json")
        .output()?;
    if !published.status.success() {
        bail!("publishing: {}", String::from_utf8_lossy(&published.stderr));
    }
    let content: Value = serde_json::from_slice(&published.stdout)?;
    let id = content["id"].as_str().context("no content id")?.to_owned();
    let manifest: Value = serde_json::from_slice(&std::fs::read(ladder.join("manifest.json"))?)?;
    let segments = manifest["renditions"][0]["segments"].as_array().map_or(0, Vec::len);
    println!(
        "{} ({segments} segments of 2 s, 240p and 144p), {tabs} tabs joining a second apart",
        clip.display()
    );
    let target = 0.9 * (tabs as f64 - 1.0) / tabs as f64;
    let mut baseline_stalls = None;
    for share in [true, false] {
        let mut cmd = Command::new("node");
        cmd.arg("offload.mjs").arg(&relay).arg(&id).args(["--tabs", &tabs.to_string()]);
        if !share {
            cmd.arg("--no-share");
        }
        let out = cmd.current_dir(root().join("tests/e2e")).output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let result: Value = serde_json::from_str(text.lines().last().unwrap_or("{}"))
            .with_context(|| {
                format!("offload.mjs: {text} {}", String::from_utf8_lossy(&out.stderr))
            })?;
        if result["ok"] != true {
            bail!("offload.mjs failed: {result}");
        }
        let tabs_seen = result["tabs"].as_array().cloned().unwrap_or_default();
        let stat = |t: &Value, key: &str| {
            t["stats"][key].as_str().and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
        };
        println!(
            "\n{}",
            if share { "sharing (the player's default)" } else { "each from the relay (#share=0)" }
        );
        println!(
            "{:>4} {:>8} {:>6} {:>10} {:>10} {:>10} {:>10} {:>8}",
            "tab", "ttff ms", "stalls", "peers KiB", "relay KiB", "served KiB", "verified", "ended"
        );
        let (mut peers, mut relayed, mut stalls, mut verified) = (0.0, 0.0, 0.0, 0.0);
        for (i, t) in tabs_seen.iter().enumerate() {
            let (p, r) = (stat(t, "peerBytes"), stat(t, "relayBytes"));
            peers += p;
            relayed += r;
            stalls += stat(t, "stalls");
            verified += stat(t, "verified");
            println!(
                "{i:>4} {:>8} {:>6} {:>10.0} {:>10.0} {:>10.0} {:>10} {:>8}",
                stat(t, "ttffMs"),
                stat(t, "stalls"),
                p / 1024.0,
                r / 1024.0,
                stat(t, "servedBytes") / 1024.0,
                stat(t, "verified"),
                t["ended"]
            );
        }
        let share_of_peers = if peers + relayed > 0.0 { peers / (peers + relayed) } else { 0.0 };
        println!(
            "share from viewers' browsers {share_of_peers:.3} (target ≥ {target:.3}); segments verified {verified} of {} played; stalls {stalls} in all",
            tabs_seen.len() * segments
        );
        if !share {
            baseline_stalls = Some(stalls);
        }
    }
    if let Some(stalls) = baseline_stalls {
        println!("baseline stalls {stalls}");
    }
    Ok(())
}
