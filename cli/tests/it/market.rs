//! The market end to end as a user runs it: `kinema devnet` with its workers and verifiers,
//! two byzantine workers of the test's own (one burns a logo into every other segment it is
//! given, one of the verifier's tamper families; one announces renditions it never publishes),
//! and `kinema upload --wait`:
//! the job is done with only honest renditions, the cheat is slashed and no one else, and the
//! ladder plays whole through the relay.

use std::ffi::OsStr;
use std::sync::Arc;
use std::time::Duration;

use kinema_chain::crypto::SecretKey;
use kinema_chain::tx::Call;
use kinema_contracts::jobs::{self, BondArgs, Member, Role};
use kinema_contracts::system::JOBS;
use kinema_media::Ffmpeg;
use kinema_media::hw::HwAccel;
use kinema_media::transcode::{EncodeSettings, Task};
use kinema_node::market::worker::{self, Encoder, Worker};
use kinema_relay::api;
use kinema_relay::chain::{ChainClient, Signer};
use serde_json::Value;

use super::chain::free_ports;
use super::relay::network;
use super::{corpus, kinema};

/// The job's own encode, then a logo over a fifth of the picture (one of the verifier's tamper
/// families) on the first segment it gets and every other one after.
#[derive(Default)]
struct Logo {
    segments: std::sync::atomic::AtomicU32,
    /// The blake3 of every rendition it tampered.
    tampered: std::sync::Mutex<Vec<String>>,
}

impl Encoder for Logo {
    fn encode(
        &self,
        ff: &Ffmpeg,
        at: (u64, u32),
        task: &Task<'_>,
        settings: &EncodeSettings,
        hwaccel: Option<HwAccel>,
    ) -> kinema_media::Result<()> {
        worker::Honest.encode(ff, at, task, settings, hwaccel)?;
        if self.segments.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 2 == 1 {
            return Ok(());
        }
        for (_, path) in &task.outputs {
            let marked = path.with_extension("logo.ts");
            let status = std::process::Command::new("ffmpeg")
                .args(["-v", "error", "-y", "-copyts", "-i"])
                .arg(path)
                .args([
                    "-map",
                    "0",
                    "-vf",
                    "drawbox=x=0:y=0:w=iw*0.45:h=ih*0.45:color=white:t=fill",
                ])
                .args(["-c:v", "libx264", "-preset", &settings.preset, "-crf", "23"])
                .args(["-c:a", "copy", "-f", "mpegts", "-mpegts_copyts", "1"])
                .arg(&marked)
                .status()
                .unwrap();
            assert!(status.success(), "the logo on {}", path.display());
            std::fs::rename(&marked, path).unwrap();
            let hash = blake3::hash(&std::fs::read(path).unwrap()).to_hex().to_string();
            self.tampered.lock().unwrap().push(hash);
        }
        Ok(())
    }
}

#[test]
fn a_job_completes_with_only_honest_renditions_and_the_cheat_is_slashed() {
    let _heavy = super::HEAVY.blocking_lock();
    let tmp = tempfile::tempdir().unwrap();
    let port = free_ports();
    let dir = tmp.path().join("devnet");
    let extra: Vec<&OsStr> = ["--empty-block-interval", "0.3"].iter().map(OsStr::new).collect();
    let (_devnet, printed) = network(&dir, port, &extra);
    let rpc = format!("http://127.0.0.1:{port}");
    let relay = format!("http://127.0.0.1:{}", port + 2);
    eprintln!("devnet: rpc {rpc}, relay {relay}");
    let honest: Vec<String> = printed
        .lines()
        .filter_map(|l| l.trim().strip_prefix("worker ").map(str::to_owned))
        .collect();
    assert_eq!(honest.len(), 2, "{printed}");
    assert_eq!(printed.lines().filter(|l| l.trim().starts_with("verifier ")).count(), 2);

    // The cheat: funded by the faucet, bonded far above the honest workers so it is drawn first.
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let cheat = SecretKey::from_seed([66; 32]);
    let chain = ChainClient::new(&rpc).unwrap();
    let bond = 100_000_000_000;
    let stop = tokio::sync::watch::channel(false);
    let logo = Arc::new(Logo::default());
    // A second one announces renditions it never puts on the relay.
    let ghost = SecretKey::from_seed([77; 32]);
    let (cheat_worker, ghost) = runtime.block_on(async {
        let faucet = kinema_node_key(&dir.join("faucet.key"));
        let mut faucet = Signer::new(chain.clone(), faucet).await.unwrap();
        let mut signers = Vec::new();
        for key in [&cheat, &ghost] {
            let fund = Call::Transfer { to: key.address(), amount: 2 * bond };
            chain.wait_committed(&faucet.send(fund, 5_000_000).await.unwrap()).await.unwrap();
            let mut signer = Signer::new(chain.clone(), key.clone()).await.unwrap();
            let args = BondArgs { role: Role::Worker, amount: bond };
            let call = Call::Contract {
                contract: kinema_chain::Address(JOBS),
                method: "bond".into(),
                args: kinema_chain::encode(&args),
            };
            chain.wait_committed(&signer.send(call, 5_000_000).await.unwrap()).await.unwrap();
            signers.push(signer);
        }
        let ghost = signers.pop().unwrap();
        let signer = signers.pop().unwrap();
        let worker = Worker {
            signer,
            relay: api::Client::new(&relay).with_key(cheat.clone()),
            ff: Arc::new(Ffmpeg::locate().unwrap()),
            dir: tmp.path().join("cheat"),
            encoder: logo.clone(),
            hwaccel: None,
        };
        (worker, ghost)
    });
    let mut stopped = stop.1.clone();
    let cheat_task =
        runtime.spawn(cheat_worker.run(|e: worker::Event| eprintln!("cheat: {e:?}"), async move {
            let _ = stopped.wait_for(|s| *s).await;
        }));

    let mut stopped = stop.1.clone();
    let ghost_task = runtime.spawn(async move {
        let mut ghost = ghost;
        let mut answered = std::collections::HashSet::new();
        loop {
            let me = ghost.address();
            let tasks: Vec<jobs::Task> =
                ghost.client().read(&jobs::tasks_key(&me.0)).await.unwrap().unwrap_or_default();
            for task in tasks {
                if !answered.insert((task.job, task.segment)) {
                    continue;
                }
                let job: jobs::Job =
                    ghost.client().read(&jobs::job_key(task.job)).await.unwrap().unwrap();
                let outputs = (0..job.args.ladder.rungs.len() as u8)
                    .map(|r| jobs::Output { hash: [r ^ task.segment as u8 ^ 0x55; 32], size: 1000 })
                    .collect();
                let args = jobs::ResultArgs { job: task.job, segment: task.segment, outputs };
                let call = Call::Contract {
                    contract: kinema_chain::Address(JOBS),
                    method: "result".into(),
                    args: kinema_chain::encode(&args),
                };
                ghost.send(call, 5_000_000).await.unwrap();
                eprintln!("ghost: job {} segment {}: announced", task.job, task.segment);
            }
            tokio::select! {
                _ = stopped.wait_for(|s| *s) => return answered.len(),
                () = tokio::time::sleep(Duration::from_millis(300)) => {}
            }
        }
    });

    let clip = corpus("bikes.mp4");
    let faucet = dir.join("faucet.key");
    let started = std::time::Instant::now();
    let out = kinema(&[
        "upload".as_ref(),
        clip.as_os_str(),
        "--relay".as_ref(),
        relay.as_ref(),
        "--key".as_ref(),
        faucet.as_os_str(),
        "--renditions".as_ref(),
        "240p,144p".as_ref(),
        "--deadline".as_ref(),
        "100".as_ref(),
        "--wait".as_ref(),
        "--timeout".as_ref(),
        "300".as_ref(),
        "--json".as_ref(),
    ]);
    let took = started.elapsed();
    let _ = stop.0.send(true);
    runtime.block_on(cheat_task).unwrap().unwrap();
    let ghosted = runtime.block_on(ghost_task).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        // What the chain says of the job, to see where it stopped.
        let job = kinema(&[
            "job".as_ref(),
            "status".as_ref(),
            "--rpc".as_ref(),
            rpc.as_ref(),
            "0".as_ref(),
        ]);
        panic!(
            "{stderr}\n{}{}",
            String::from_utf8_lossy(&job.stdout),
            String::from_utf8_lossy(&job.stderr)
        );
    }
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    eprintln!("upload to playable: {took:?}: {answer}");
    for key in ["job", "content", "hls", "paid"] {
        assert!(answer.get(key).is_some(), "{answer}");
    }

    // The job as the chain tells it: done, every result accepted, none by the cheat.
    let job = kinema(&[
        "job".as_ref(),
        "status".as_ref(),
        "--rpc".as_ref(),
        rpc.as_ref(),
        answer["job"].to_string().as_ref(),
        "--json".as_ref(),
    ]);
    assert!(job.status.success(), "{job:?}");
    let job: Value = serde_json::from_slice(&job.stdout).unwrap();
    assert_eq!(job["state"], "done", "{job}");
    // The chain links the content id to the job.
    assert_eq!(job["content"], answer["content"], "{job}");
    let results = job["results"].as_array().unwrap();
    assert_eq!(job["renditions"], serde_json::json!(["240p", "144p"]), "{job}");
    assert_eq!(results.len(), 5 * 2, "{job}");
    let me = cheat.address().to_string();
    let ghost_address = SecretKey::from_seed([77; 32]).address().to_string();
    let tampered = logo.tampered.lock().unwrap().clone();
    assert!(!tampered.is_empty(), "the cheat was never drawn");
    assert!(ghosted > 0, "the ghost was never drawn");
    for r in results {
        assert_eq!(r["state"], "accepted", "{r}");
        assert!(!tampered.contains(&r["hash"].as_str().unwrap().to_owned()), "{r}");
    }
    // Both cheats failed their checks (the ghost's renditions "never published") and were
    // slashed; the honest kept their bonds.
    let id = answer["job"].as_u64().unwrap();
    let reasons: Vec<String> = (0..5)
        .flat_map(|s| {
            let slot: jobs::Slot =
                runtime.block_on(chain.read(&jobs::slot_key(id, s))).unwrap().unwrap_or_default();
            slot.verdicts.into_iter().filter(|v| !v.pass).map(|v| v.reasons)
        })
        .collect();
    assert!(reasons.iter().any(|r| r.contains("never published")), "{reasons:?}");
    assert!(reasons.iter().any(|r| !r.contains("never published")), "{reasons:?}");
    assert!(results.iter().any(|r| r["attempts"].as_u64().unwrap() > 1), "{job}");
    let pool: Vec<Member> = runtime.block_on(chain.read(b"jobs/pool")).unwrap().unwrap();
    for m in &pool {
        let address = kinema_chain::Address(m.address).to_string();
        if address == me || address == ghost_address {
            assert!(m.bond < bond, "a cheat was not slashed: {m:?}");
        } else {
            let bonded = if m.role == Role::Worker { &honest } else { &vec![] };
            assert!(m.role == Role::Verifier || bonded.contains(&address), "{m:?}");
            assert_eq!(m.bond, 100_000_000, "an honest member was slashed: {m:?}");
        }
    }
    // Everyone paid out of the escrow, the rest refunded: nothing lost, nothing paid twice.
    let paid: u64 = job["paid"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
    let escrow = 5 * 2 * 1_000 * (10_000 + jobs::VERIFY_FEE_BPS) / 10_000;
    assert_eq!(paid + job["refunded"].as_u64().unwrap(), escrow, "{job}");

    // What is refused, each in one line naming what is wrong: a source that is not video, a
    // job its creator cannot pay for, a worker that is not bonded.
    let notes = tmp.path().join("notes.txt");
    std::fs::write(&notes, "not a video\n".repeat(50)).unwrap();
    let upload = |input: &std::path::Path, price: &str| {
        kinema(&[
            "upload".as_ref(),
            input.as_os_str(),
            "--relay".as_ref(),
            relay.as_ref(),
            "--key".as_ref(),
            faucet.as_os_str(),
            "--renditions".as_ref(),
            "144p".as_ref(),
            "--price".as_ref(),
            price.as_ref(),
        ])
    };
    let refused = |out: &std::process::Output, phrase: &str| {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(phrase), "{stderr} does not say {phrase:?}");
    };
    refused(&upload(&notes, "1000"), "notes.txt");
    refused(&upload(&clip, "1000000000000000"), "cost");
    let stranger = tmp.path().join("stranger.key");
    std::fs::write(&stranger, SecretKey::from_seed([5; 32]).to_key_file()).unwrap();
    let worker = kinema(&[
        "worker".as_ref(),
        "--relay".as_ref(),
        relay.as_ref(),
        "--key".as_ref(),
        stranger.as_os_str(),
    ]);
    refused(&worker, "not bonded");
    let cancel = kinema(&[
        "job".as_ref(),
        "cancel".as_ref(),
        answer["job"].to_string().as_ref(),
        "--rpc".as_ref(),
        rpc.as_ref(),
        "--key".as_ref(),
        faucet.as_os_str(),
    ]);
    refused(&cancel, "is done, not open");
    // A second job, posted without waiting, cancelled by its creator: the rest returns.
    let posted = kinema(&[
        "upload".as_ref(),
        clip.as_os_str(),
        "--relay".as_ref(),
        relay.as_ref(),
        "--key".as_ref(),
        faucet.as_os_str(),
        "--renditions".as_ref(),
        "144p".as_ref(),
        "--json".as_ref(),
    ]);
    assert!(posted.status.success(), "{posted:?}");
    let second: Value = serde_json::from_slice(&posted.stdout).unwrap();
    let id = second["job"].to_string();
    let cancel = |key: &std::path::Path| {
        kinema(&[
            "job".as_ref(),
            "cancel".as_ref(),
            id.as_ref(),
            "--rpc".as_ref(),
            rpc.as_ref(),
            "--key".as_ref(),
            key.as_os_str(),
        ])
    };
    refused(&cancel(&stranger), "not");
    let cancelled = cancel(&faucet);
    assert!(cancelled.status.success(), "{cancelled:?}");
    assert!(String::from_utf8_lossy(&cancelled.stdout).contains("cancelled"), "{cancelled:?}");

    // The ladder plays whole.
    let read = std::process::Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-i",
            answer["hls"].as_str().unwrap(),
            "-map",
            "0",
            "-f",
            "null",
            "-",
        ])
        .output()
        .unwrap();
    assert!(read.status.success() && read.stderr.is_empty(), "{read:?}");
    // As long as its source.
    let length = |url: &OsStr| -> f64 {
        let out = std::process::Command::new("ffprobe")
            .args(["-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0"])
            .arg(url)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    };
    let (ladder, source) =
        (length(answer["hls"].as_str().unwrap().as_ref()), length(clip.as_os_str()));
    assert!((ladder - source).abs() < 0.1, "the ladder lasts {ladder} s, its source {source} s");
}

fn kinema_node_key(path: &std::path::Path) -> SecretKey {
    SecretKey::from_key_file(&std::fs::read_to_string(path).unwrap()).unwrap()
}
