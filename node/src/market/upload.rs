//! An upload: the creator's side of a job.
//!
//! [`post`] cuts the clip into source segments on this machine (kinema-media's
//! [`ladder::cut`]), publishes them and their manifest to the relay as content, and posts the
//! job (escrowing its cost). [`wait`] follows the job until every segment × rendition is
//! accepted, then assembles the ladder's manifest from the accepted results (checked against
//! the ladder hash the chain recorded), publishes it (its blake3 is the content id the HLS
//! gateway serves) and records that content id with the job on the chain.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use kinema_chain::rpc::{JobReply, JobStateReply};
use kinema_chain::tx::Call;
use kinema_chain::{Address, Hash};
use kinema_contracts::jobs::{self, Job, Ladder, PostArgs, PublishArgs, Rung};
use kinema_contracts::system::JOBS;
use kinema_media::Ffmpeg;
use kinema_media::hls::Manifest;
use kinema_media::ladder::{self, Config, Progress};
use kinema_relay::api;

use super::{FEE, POLL};
use crate::client::Signer;

/// What to make of a clip and what to pay for it.
#[derive(Debug, Clone)]
pub struct Order {
    /// The clip.
    pub input: PathBuf,
    /// How the media engine cuts it and which rungs (heights) it asks for.
    pub config: Config,
    /// Paid per segment-rendition accepted.
    pub price: u64,
    /// Blocks a worker has to answer an assignment.
    pub deadline: u64,
    /// Share of results checked, in basis points.
    pub verify_bps: u16,
}

/// What an upload reports.
#[derive(Debug, Clone)]
pub enum Event {
    /// The media engine's progress cutting the clip.
    Cut(Progress),
    /// The source is on the relay.
    Published {
        /// The source manifest's blake3.
        source: Hash,
        /// Its segments.
        segments: usize,
    },
    /// The job is on the chain.
    Posted {
        /// Its number.
        job: u64,
    },
    /// The job's state changed.
    Job(Box<JobReply>),
}

/// A posted job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posted {
    /// Its number.
    pub job: u64,
    /// Its source manifest's blake3.
    pub source: Hash,
}

/// A finished job's ladder, published.
#[derive(Debug, Clone)]
pub struct Finished {
    /// The job as it ended.
    pub job: JobReply,
    /// The ladder's content id (blake3 of its manifest).
    pub content: Hash,
    /// Its master playlist's URL on the relay.
    pub hls: String,
}

/// Cuts `order.input` under `dir`, publishes the source to `relay` and posts the job as
/// `signer`; returns once the job is on the chain.
pub async fn post(
    signer: &mut Signer,
    relay: &api::Client,
    ff: Arc<Ffmpeg>,
    order: &Order,
    dir: &Path,
    mut events: impl FnMut(Event) + Send,
) -> Result<Posted> {
    let out = dir.join("source");
    let (input, config, cut_dir) = (order.input.clone(), order.config.clone(), out.clone());
    // Progress crosses from the cutting thread; when the reader lags, the cut waits for it.
    let (progress_tx, mut progress_rx) = tokio::sync::mpsc::channel(64);
    let cutting = tokio::task::spawn_blocking(move || {
        ladder::cut(&ff, &input, &cut_dir, &config, &mut |p| {
            let _ = progress_tx.blocking_send(p);
        })
    });
    while let Some(p) = progress_rx.recv().await {
        events(Event::Cut(p));
    }
    let cut = cutting
        .await
        .context("the cut panicked")?
        .with_context(|| format!("cutting {}", order.input.display()))?;
    if cut.renditions.is_empty() {
        bail!(
            "{}: no rendition of {:?} fits the source",
            order.input.display(),
            order.config.heights
        );
    }
    let source = Hash::digest(
        &tokio::fs::read(out.join("manifest.json")).await.context("the cut's manifest.json")?,
    );
    let segments = cut.manifest.segment_durations.len();
    let settings = &order.config.encode;
    let ladder = Ladder {
        codec: "h264".into(),
        preset: settings.preset.clone(),
        crf: settings.crf,
        rungs: cut
            .renditions
            .iter()
            .map(|r| Rung {
                name: r.name.clone(),
                width: r.width,
                height: r.height,
                max_kbps: r.max_bitrate.div_ceil(1000),
            })
            .collect(),
    };
    let args = PostArgs {
        source: source.0,
        segments: u32::try_from(segments).context("too many segments")?,
        ladder,
        price: order.price,
        deadline: order.deadline,
        verify_bps: order.verify_bps,
    };
    // Refused before anything is published or sent: a job its creator cannot pay for.
    let cost = jobs::cost(&args).context("the job's cost overflows")?;
    let balance = signer.client().account(&signer.address()).await?.balance;
    if balance < cost.saturating_add(FEE) {
        bail!(
            "the job costs {cost} ({segments} segments x {} renditions x {} and a verification \
             fee each) and the fee up to {FEE}; {} has {balance}",
            args.ladder.rungs.len(),
            args.price,
            signer.address()
        );
    }
    if publish(relay, &out, &cut.manifest).await? != source {
        bail!("the relay took the source under another id");
    }
    events(Event::Published { source, segments });
    let call = Call::Contract {
        contract: Address(JOBS),
        method: "post".into(),
        args: kinema_chain::encode(&args),
    };
    let reply = signer.send(call, FEE).await?;
    signer.client().wait_committed(&reply).await?;
    let chain = signer.client();
    let me = signer.address();
    // A committed transaction may still have been refused: then this account's last job is an
    // earlier one, or none.
    let refused =
        || anyhow::anyhow!("transaction {} was refused: the job was not posted", reply.hash);
    let job: u64 = chain.read(&jobs::latest_key(&me.0)).await?.ok_or_else(refused)?;
    let posted: Job = chain.read(&jobs::job_key(job)).await?.ok_or_else(refused)?;
    if posted.args != args {
        return Err(refused());
    }
    events(Event::Posted { job });
    Ok(Posted { job, source })
}

/// Publishes a directory's content (every segment its manifest names, then the manifest) to
/// `relay`; its id.
pub async fn publish(relay: &api::Client, dir: &Path, manifest: &Manifest) -> Result<Hash> {
    for rendition in &manifest.renditions {
        for segment in &rendition.segments {
            let path = dir.join(&rendition.rendition.name).join(&segment.file);
            let bytes = tokio::fs::read(&path)
                .await
                .with_context(|| format!("{}: cannot read", path.display()))?;
            relay.put_blob(&segment.blake3, bytes).await?;
        }
    }
    let path = dir.join("manifest.json");
    let bytes =
        tokio::fs::read(&path).await.with_context(|| format!("{}: cannot read", path.display()))?;
    let id = Hash::digest(&bytes);
    let added = relay.add_content(bytes).await?;
    if added.id != id {
        bail!("the relay named content {id} {}", added.id);
    }
    Ok(id)
}

/// Follows job `posted` until it is done (or fails, or `timeout` passes), then publishes its
/// ladder to `relay`.
pub async fn wait(
    signer: &mut Signer,
    relay: &api::Client,
    ff: Arc<Ffmpeg>,
    posted: &Posted,
    timeout: Duration,
    mut events: impl FnMut(Event) + Send,
) -> Result<Finished> {
    let chain = signer.client().clone();
    let started = Instant::now();
    let mut last: Option<JobReply> = None;
    let reply = loop {
        let reply = chain.job(posted.job).await?;
        let changed =
            last.as_ref().is_none_or(|l| (&l.state, &l.results) != (&reply.state, &reply.results));
        if changed {
            events(Event::Job(Box::new(reply.clone())));
        }
        match reply.state {
            JobStateReply::Done => break reply,
            JobStateReply::Failed => {
                bail!(
                    "job {} failed: {}",
                    posted.job,
                    reply.failure.as_deref().unwrap_or("no reason recorded")
                )
            }
            JobStateReply::Cancelled => bail!("job {} was cancelled", posted.job),
            JobStateReply::Open => {}
        }
        if started.elapsed() > timeout {
            bail!("job {} is not done after {timeout:?}", posted.job);
        }
        last = Some(reply);
        tokio::time::sleep(POLL).await;
    };
    publish_ladder(signer, relay, ff, posted.job, reply).await
}

/// Publishes the ladder of job `id`, which is done (`reply` is its state): assembles its
/// manifest from the accepted results, checks it against the recorded ladder hash, puts it on
/// `relay` and, when the job has no content id yet and `signer` is its creator, records it.
pub async fn publish_ladder(
    signer: &mut Signer,
    relay: &api::Client,
    ff: Arc<Ffmpeg>,
    id: u64,
    reply: JobReply,
) -> Result<Finished> {
    let chain = signer.client().clone();
    if reply.state != JobStateReply::Done {
        bail!("job {id} is not done");
    }
    let posted = Posted { job: id, source: reply.source };
    let job: Job = chain.read(&jobs::job_key(posted.job)).await?.context("the job vanished")?;
    let segments = job.args.segments as usize;
    let rungs = &job.args.ladder.rungs;
    // outputs[r][s]: rung r's segment s, as the job accepted it.
    let mut outputs = vec![vec![(Hash::ZERO, 0u64); segments]; rungs.len()];
    for result in &reply.results {
        let r =
            rungs.iter().position(|g| g.name == result.rendition).context("a result of no rung")?;
        let (Some(hash), Some(size)) = (result.hash, result.size) else {
            bail!("segment {} {} is accepted without an output", result.segment, result.rendition);
        };
        outputs[r][result.segment as usize] = (hash, size);
    }
    let source = super::source_manifest(relay, &job).await?;
    let tmp = tempfile::tempdir().context("a temporary directory")?;
    let mut firsts = Vec::with_capacity(rungs.len());
    for (rung, o) in rungs.iter().zip(&outputs) {
        let path = tmp.path().join(format!("{}.ts", rung.name));
        super::fetch_to(relay, &o[0].0, &path).await?;
        firsts.push(path);
    }
    let renditions: Vec<_> = rungs.iter().map(super::rendition).collect();
    let manifest = tokio::task::spawn_blocking(move || {
        ladder::assemble(&ff, &source, renditions, &outputs, &firsts)
    })
    .await
    .context("assembling panicked")??;
    manifest.check().map_err(|why| anyhow::anyhow!("the assembled manifest: {why}"))?;
    super::check_ladder(posted.job, &job, &manifest)?;
    let bytes = serde_json::to_vec_pretty(&manifest)?;
    let content = Hash::digest(&bytes);
    let added = relay.add_content(bytes).await?;
    if added.id != content {
        bail!("the relay named content {content} {}", added.id);
    }
    // The chain links the content id to the job, once, at its creator's word.
    if job.content.is_none() && signer.address().0 == job.creator {
        let args = PublishArgs { job: posted.job, content: content.0 };
        let call = Call::Contract {
            contract: Address(JOBS),
            method: "publish".into(),
            args: kinema_chain::encode(&args),
        };
        let reply = signer.send(call, FEE).await?;
        signer.client().wait_committed(&reply).await?;
    }
    let reply = chain.job(posted.job).await?;
    if reply.content.is_some_and(|c| c != content) {
        bail!("job {} is published as {:?}, not {content}", posted.job, reply.content);
    }
    Ok(Finished { job: reply, content, hls: relay.url(&added.hls) })
}
