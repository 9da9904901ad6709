//! The market's roles, the programs that do the work the jobs contract pays for: a
//! [`worker`] transcodes the segments it is drawn for, a [`verifier`] checks the results it is
//! drawn for, and [`upload`] cuts a clip, publishes its source, posts the job and, once every
//! segment is accepted, publishes the ladder.
//!
//! Each reads its tasks from the chain (the jobs contract's list per member, through
//! [`kinema_relay::chain::ChainClient`]), moves media through a relay (kinema-relay's API: blobs
//! named by their blake3, checked again here), runs ffmpeg through kinema-media, and answers
//! with a transaction.

pub mod upload;
pub mod verifier;
pub mod worker;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use kinema_chain::Hash;
use kinema_contracts::jobs::{self, Job, Ladder, Rung, Task, TaskKind};
use kinema_media::hls::Manifest;
use kinema_media::rendition::Rendition;
use kinema_media::transcode::EncodeSettings;
use kinema_media::verify::Expect;
use kinema_relay::api;

use kinema_relay::chain::ChainClient;

/// How often a role asks the chain for its tasks.
pub const POLL: Duration = Duration::from_millis(500);

/// How long a task that failed waits before it is tried again (the others go first).
pub const RETRY_AFTER: Duration = Duration::from_secs(2);

/// Which of a member's listed tasks it takes next: not one it answered already (the answer
/// waits to be committed, then the task leaves the list), not one that failed within
/// [`RETRY_AFTER`].
#[derive(Debug, Default)]
pub(crate) struct Queue {
    answered: HashSet<(u64, u32)>,
    failed: HashMap<(u64, u32), Instant>,
}

impl Queue {
    /// The next task of `listed` (the list just read); what left the list is forgotten.
    pub(crate) fn next(&mut self, listed: &[Task]) -> Option<Task> {
        self.answered.retain(|d| listed.iter().any(|t| (t.job, t.segment) == *d));
        self.failed.retain(|_, at| at.elapsed() < RETRY_AFTER);
        listed.iter().copied().find(|t| {
            let key = (t.job, t.segment);
            !self.answered.contains(&key) && !self.failed.contains_key(&key)
        })
    }

    /// `task` is answered.
    pub(crate) fn answered(&mut self, task: &Task) {
        self.answered.insert((task.job, task.segment));
    }

    /// `task` failed this time.
    pub(crate) fn failed(&mut self, task: &Task) {
        self.failed.insert((task.job, task.segment), Instant::now());
    }
}

/// The fee a role offers per transaction; what the call does not burn comes back.
pub const FEE: u64 = 5_000_000;

/// Blob `name` from the relay, checked against its name.
pub async fn fetch(relay: &api::Client, name: &Hash) -> Result<Vec<u8>> {
    let bytes = relay.blob(name).await?;
    let got = Hash::digest(&bytes);
    if got != *name {
        bail!("the relay answered blob {name} with {} bytes that hash to {got}", bytes.len());
    }
    Ok(bytes)
}

/// Blob `name` from the relay, checked, written to `path`.
pub async fn fetch_to(relay: &api::Client, name: &Hash, path: &Path) -> Result<u64> {
    let bytes = fetch(relay, name).await?;
    tokio::fs::write(path, &bytes)
        .await
        .with_context(|| format!("{}: cannot write", path.display()))?;
    Ok(bytes.len() as u64)
}

/// The source manifest a job names, checked: one rendition of the job's segment count.
pub async fn source_manifest(relay: &api::Client, job: &Job) -> Result<Manifest> {
    let source = Hash(job.args.source);
    let bytes =
        fetch(relay, &source).await.with_context(|| format!("the source manifest {source}"))?;
    let manifest: Manifest = serde_json::from_slice(&bytes)
        .with_context(|| format!("the source manifest {source} is not a manifest"))?;
    manifest.check().map_err(|why| anyhow::anyhow!("the source manifest {source}: {why}"))?;
    let segments = manifest.renditions.first().map_or(0, |r| r.segments.len());
    if manifest.renditions.len() != 1 || segments != job.args.segments as usize {
        bail!(
            "the source manifest {source} lists {} renditions of {segments} segments; the job \
             has {} segments",
            manifest.renditions.len(),
            job.args.segments
        );
    }
    Ok(manifest)
}

/// The media engine's rendition for a job's rung.
pub fn rendition(rung: &Rung) -> Rendition {
    Rendition {
        name: rung.name.clone(),
        width: rung.width,
        height: rung.height,
        max_bitrate: rung.max_kbps.saturating_mul(1000),
    }
}

/// The encode a job fixes, one thread per process as the ladder runs it.
pub fn settings(ladder: &Ladder) -> EncodeSettings {
    EncodeSettings {
        preset: ladder.preset.clone(),
        crf: ladder.crf,
        threads: 1,
        deterministic: false,
    }
}

/// What a verifier expects of a rung: its size and cap, the job's preset and CRF, the source's
/// frame rate and audio.
pub fn expect(ladder: &Ladder, rung: &Rung) -> Expect {
    Expect {
        width: rung.width,
        height: rung.height,
        fps: None,
        audio_copy: true,
        preset: ladder.preset.clone(),
        crf: ladder.crf,
        max_bitrate: rung.max_kbps.saturating_mul(1000),
    }
}

/// The job of `task`, or an error naming it.
pub async fn job_of(chain: &ChainClient, task: &Task) -> Result<Job> {
    chain
        .read::<Job>(&jobs::job_key(task.job))
        .await?
        .with_context(|| format!("job {} is not on the chain", task.job))
}

/// Checks that `manifest` is the ladder job `id` accepted ([`jobs::check_ladder`]).
pub fn check_ladder(id: u64, job: &Job, manifest: &Manifest) -> Result<()> {
    jobs::check_ladder(id, job, &manifest.outputs()).map_err(|why| anyhow::anyhow!(why))
}

/// `member`'s tasks of `kind`.
pub async fn tasks_of(
    chain: &ChainClient,
    member: &kinema_chain::Address,
    kind: TaskKind,
) -> Result<Vec<Task>> {
    let all: Vec<Task> = chain.read(&jobs::tasks_key(&member.0)).await?.unwrap_or_default();
    Ok(all.into_iter().filter(|t| t.kind == kind).collect())
}
