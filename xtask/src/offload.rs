//! `cargo xtask bench offload [--tabs N] [--clip FILE] [--price P]`: N viewers' tabs in headless
//! Chromium join one video a second apart and play it through, first sharing with each other
//! (the player's default), then each from the relay alone (`#share=0`, the baseline). Prints,
//! for each run, the share of segment bytes that came from other viewers' browsers, the share
//! of segments verified, stalls per tab, answers of 429 and time to first frame; the target is
//! a share of at least 0.9·(N−1)/N with no more stalls than the baseline.
//!
//! Each tab pays in bandwidth tickets with a key of its own, funded on the devnet's chain
//! before it starts, at the relay's price (`--price` per MiB, high enough that a ticket wins
//! often and the redeemed sum says something on a few MiB). Once the tabs ended, each one's
//! winning tickets are claimed for the faucet and redeemed on chain; it prints bytes delivered
//! between tabs against tickets paid, credited, won and redeemed.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::market::start_devnet;
use crate::{cargo, corpus, ensure_ffmpeg, ensure_wasm_target, root, run, target_dir};

pub(crate) fn bench(args: &[String]) -> Result<()> {
    let mut tabs = 4usize;
    let mut clip = corpus("trailer_bbb.mp4");
    let mut price = 40_000_000u64;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let value = it.next().with_context(|| format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--tabs" => tabs = value.parse().context("--tabs: a number")?,
            "--clip" => clip = PathBuf::from(value),
            "--price" => price = value.parse().context("--price: a number")?,
            other => bail!(
                "unknown option {other}; usage: cargo xtask bench offload [--tabs N] [--clip FILE] [--price P]"
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
    run(Command::new(&kinema)
        .args(["media", "ladder"])
        .arg(&clip)
        .args(["--renditions", "240p,144p", "--out"])
        .arg(&ladder))
    .context("the ladder")?;
    let port = 42_650u16;
    let price_arg = price.to_string();
    let extra = ["--workers", "0", "--verifiers", "0", "--bandwidth-price", &price_arg];
    let _devnet = start_devnet(&kinema, &work.join("devnet"), port, &extra)?;
    let relay = format!("http://127.0.0.1:{}", port + 2);
    let rpc = format!("http://127.0.0.1:{port}");
    let faucet = work.join("devnet/faucet.key");
    let keys = fund_viewers(&kinema, &work, &rpc, &faucet, tabs)?;
    let keys_file = work.join("keys.json");
    std::fs::write(&keys_file, serde_json::to_string(&keys)?)?;
    let faucet_address = run(Command::new(&kinema).args(["wallet", "address"]).arg(&faucet))?;
    let published = run(Command::new(&kinema)
        .arg("publish")
        .arg(&ladder)
        .args(["--relay", &relay, "--key"])
        .arg(&faucet)
        .arg("--json"))
    .context("publishing")?;
    let content: Value = serde_json::from_str(&published)?;
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
        if share {
            cmd.arg("--keys").arg(&keys_file).args(["--claim-for", faucet_address.trim()]);
        } else {
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
            "{:>4} {:>8} {:>6} {:>4} {:>10} {:>10} {:>10} {:>10} {:>8}",
            "tab",
            "ttff ms",
            "stalls",
            "429",
            "peers KiB",
            "relay KiB",
            "served KiB",
            "verified",
            "ended"
        );
        let (mut peers, mut relayed, mut stalls, mut verified) = (0.0, 0.0, 0.0, 0.0);
        let mut throttled = 0.0;
        for (i, t) in tabs_seen.iter().enumerate() {
            let (p, r) = (stat(t, "peerBytes"), stat(t, "relayBytes"));
            peers += p;
            relayed += r;
            stalls += stat(t, "stalls");
            verified += stat(t, "verified");
            throttled += stat(t, "throttled");
            println!(
                "{i:>4} {:>8} {:>6} {:>4} {:>10.0} {:>10.0} {:>10.0} {:>10} {:>8}",
                stat(t, "ttffMs"),
                stat(t, "stalls"),
                stat(t, "throttled"),
                p / 1024.0,
                r / 1024.0,
                stat(t, "servedBytes") / 1024.0,
                stat(t, "verified"),
                t["ended"]
            );
        }
        let share_of_peers = if peers + relayed > 0.0 { peers / (peers + relayed) } else { 0.0 };
        println!(
            "share from viewers' browsers {share_of_peers:.3} (target ≥ {target:.3}); segments verified {verified} of {} played; stalls {stalls} in all; {throttled} answers of 429",
            tabs_seen.len() * segments
        );
        if share {
            tickets_report(
                &kinema,
                &work,
                &rpc,
                &faucet,
                faucet_address.trim(),
                price,
                peers,
                &result,
            )?;
        } else {
            baseline_stalls = Some(stalls);
        }
    }
    if let Some(stalls) = baseline_stalls {
        println!("baseline stalls {stalls}");
    }
    Ok(())
}

/// Bandwidth keys for `tabs` viewers, each funded from the faucet with a ticket deposit;
/// returns their seeds (what a tab keeps).
fn fund_viewers(
    kinema: &std::path::Path,
    work: &std::path::Path,
    rpc: &str,
    faucet: &std::path::Path,
    tabs: usize,
) -> Result<Vec<String>> {
    const DEPOSIT: u64 = 100_000_000_000;
    let mut seeds = Vec::new();
    for i in 0..tabs {
        let key = work.join(format!("viewer-{i}.key"));
        let address = run(Command::new(kinema).args(["wallet", "new", "--out"]).arg(&key))?;
        run(Command::new(kinema)
            .args(["tx", "transfer", "--rpc", rpc, "--key"])
            .arg(faucet)
            .args(["--to", address.trim(), "--amount", &(DEPOSIT + 10_000_000).to_string()])
            .arg("--wait"))?;
        run(Command::new(kinema)
            .args(["tx", "fund-tickets", "--rpc", rpc, "--key"])
            .arg(&key)
            .args(["--deposit", &DEPOSIT.to_string(), "--wait"]))?;
        let file: Value = serde_json::from_slice(&std::fs::read(&key)?)?;
        seeds
            .push(file["secret_key"].as_str().context("a key file with no secret_key")?.to_owned());
    }
    Ok(seeds)
}

/// Bytes delivered between tabs against the tickets that paid for them; the winners claimed
/// for the faucet are redeemed on chain.
#[allow(clippy::too_many_arguments)]
fn tickets_report(
    kinema: &std::path::Path,
    work: &std::path::Path,
    rpc: &str,
    faucet: &std::path::Path,
    faucet_address: &str,
    price: u64,
    delivered: f64,
    result: &Value,
) -> Result<()> {
    let tabs = result["tabs"].as_array().cloned().unwrap_or_default();
    let sum =
        |key: &str| tabs.iter().map(|t| t["account"][key].as_f64().unwrap_or(0.0)).sum::<f64>();
    let winners: Vec<String> = tabs
        .iter()
        .flat_map(|t| t["winners"].as_array().cloned().unwrap_or_default())
        .filter_map(|w| w.as_str().map(str::to_owned))
        .collect();
    let owed = delivered / f64::from(1 << 20) * price as f64;
    println!(
        "tickets at {price} per MiB: {:.0} KiB delivered between tabs owes {owed:.0}; paid {} tickets worth {:.0} ({:.3} of it; under a whole ticket per pair of tabs stays unpaid); credited {:.0}; settled {}",
        delivered / 1024.0,
        sum("tickets_paid"),
        sum("paid"),
        sum("paid") / owed.max(1.0),
        sum("credited"),
        result["settled"],
    );
    // A figure of the faucet's, as `kinema chain <what> --json` reports it.
    let figure = |what: &str, path: &[&str]| -> Result<f64> {
        let out = run(Command::new(kinema).args([
            "chain",
            what,
            "--rpc",
            rpc,
            faucet_address,
            "--json",
        ]))?;
        let report: Value = serde_json::from_str(&out)?;
        Ok(path.iter().fold(&report, |v, key| &v[*key]).as_f64().unwrap_or(0.0))
    };
    let earned = || figure("tickets", &["earned", "amount"]);
    let balance = || figure("balance", &["balance"]);
    if winners.is_empty() {
        println!("no winning ticket to redeem");
        return Ok(());
    }
    let file = work.join("winners.json");
    std::fs::write(&file, serde_json::to_string(&winners)?)?;
    let (before, balance_before) = (earned()?, balance()?);
    run(Command::new(kinema)
        .args(["tx", "redeem-tickets", "--rpc", rpc, "--key"])
        .arg(faucet)
        .arg("--winners")
        .arg(&file)
        .arg("--wait"))?;
    let redeemed = earned()? - before;
    let fees = redeemed - (balance()? - balance_before);
    println!(
        "{} winners claimed for the faucet and redeemed: {redeemed:.0} paid on chain ({:.3} of what the tickets paid), fees {fees:.0} ({:.2} % of it)",
        winners.len(),
        redeemed / sum("paid").max(1.0),
        100.0 * fees / redeemed.max(1.0),
    );
    Ok(())
}
