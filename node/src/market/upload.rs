//! An upload: the creator's side of a job.
//!
//! [`post`] sends the clip to the relay in signed chunks (kinema-relay's uploads: the relay
//! checks each chunk and the whole file, and cuts it into source segments with the media
//! engine, as it does for the browser app), then posts the job for that source (escrowing its
//! cost). [`wait`] follows the job until every segment × rendition is accepted, then has the
//! relay assemble the ladder's manifest from the accepted results, checks it here against the
//! ladder hash the chain recorded, and records its content id (the id the HLS gateway serves)
//! with the job on the chain.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use kinema_chain::rpc::{JobReply, JobStateReply};
use kinema_chain::tx::Call;
use kinema_chain::{Address, Hash};
use kinema_contracts::jobs::{self, Job, PostArgs, PublishArgs};
use kinema_contracts::system::JOBS;
use kinema_media::hls::Manifest;
use kinema_relay::api::{self, NewUpload, UploadState};

use super::{FEE, POLL};
use kinema_relay::chain::Signer;

/// Bytes per chunk sent to the relay.
pub const CHUNK: u64 = 4 << 20;

/// What to make of a clip and what to pay for it.
#[derive(Debug, Clone)]
pub struct Order {
    /// The clip.
    pub input: PathBuf,
    /// The rung heights asked for (those above the source are left out; empty: the relay's
    /// default ladder).
    pub heights: Vec<u32>,
    /// The x264 preset the job fixes.
    pub preset: String,
    /// The constant rate factor the job fixes.
    pub crf: u8,
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
    /// Bytes of the clip the relay has.
    Sent {
        /// Received so far.
        bytes: u64,
        /// The clip's size.
        of: u64,
    },
    /// The relay is cutting it: the share done.
    Cutting(f64),
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

/// Bytes `at..at + len` of `path`.
async fn read_at(path: &Path, at: u64, len: u64) -> Result<Vec<u8>> {
    let file = path.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut file = std::fs::File::open(&file)?;
        file.seek(SeekFrom::Start(at))?;
        let mut bytes = Vec::with_capacity(len as usize);
        file.take(len).read_to_end(&mut bytes)?;
        Ok::<_, std::io::Error>(bytes)
    })
    .await
    .context("reading panicked")?
    .with_context(|| format!("{}: cannot read", path.display()))
}

/// Sends `order.input` to `relay` in chunks (resuming an upload of it the relay has begun),
/// waits for the relay's cut and posts the job as `signer`; returns once the job is on the
/// chain.
pub async fn post(
    signer: &mut Signer,
    relay: &api::Client,
    order: &Order,
    mut events: impl FnMut(Event) + Send,
) -> Result<Posted> {
    let input = &order.input;
    let path = input.clone();
    let (size, blake3) = tokio::task::spawn_blocking(move || {
        let mut hasher = blake3::Hasher::new();
        let size = std::io::copy(&mut std::fs::File::open(&path)?, &mut hasher)?;
        Ok::<_, std::io::Error>((size, Hash(*hasher.finalize().as_bytes())))
    })
    .await
    .context("hashing panicked")?
    .with_context(|| format!("{}: cannot read", input.display()))?;
    let name = input.file_name().map_or("upload".into(), |n| n.to_string_lossy().into_owned());
    let new = NewUpload { name, size, blake3, heights: order.heights.clone() };
    let mut upload = relay.new_upload(&new).await?;
    while upload.state == UploadState::Receiving && upload.received < size {
        events(Event::Sent { bytes: upload.received, of: size });
        let len = CHUNK.min(size - upload.received);
        let bytes = read_at(input, upload.received, len).await?;
        upload = match relay.put_chunk(&upload.id, upload.received, bytes).await {
            Ok(upload) => upload,
            // The relay has other bytes than thought (an answer lost): where it is.
            Err(api::Error::Refused { status: 409, .. }) => relay.upload(&upload.id).await?,
            Err(e) => return Err(e.into()),
        };
    }
    events(Event::Sent { bytes: size, of: size });
    let upload = loop {
        match upload.state {
            UploadState::Ready => break upload,
            UploadState::Failed => bail!(
                "the relay could not cut {}: {}",
                input.display(),
                upload.error.as_deref().unwrap_or("no reason given")
            ),
            _ => events(Event::Cutting(upload.progress)),
        }
        tokio::time::sleep(POLL).await;
        upload = relay.upload(&upload.id).await?;
    };
    let (Some(source), Some(mut ladder)) = (upload.source, upload.ladder) else {
        bail!("the relay's upload {} is ready without a source", upload.id);
    };
    ladder.preset.clone_from(&order.preset);
    ladder.crf = order.crf;
    let segments = upload.segments as usize;
    let args = PostArgs {
        source: source.0,
        segments: upload.segments,
        ladder,
        price: order.price,
        deadline: order.deadline,
        verify_bps: order.verify_bps,
    };
    // Refused before anything is sent: a job its creator cannot pay for.
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
    publish_ladder(signer, relay, posted.job, reply).await
}

/// Publishes the ladder of job `id`, which is done (`reply` is its state): `relay` assembles
/// its manifest from the accepted results and adds it as content; the manifest is fetched
/// back by its id and checked here against the recorded ladder hash and, when the job has no
/// content id yet and `signer` is its creator, that id is recorded on the chain.
pub async fn publish_ladder(
    signer: &mut Signer,
    relay: &api::Client,
    id: u64,
    reply: JobReply,
) -> Result<Finished> {
    let chain = signer.client().clone();
    if reply.state != JobStateReply::Done {
        bail!("job {id} is not done");
    }
    let posted = Posted { job: id, source: reply.source };
    let job: Job = chain.read(&jobs::job_key(posted.job)).await?.context("the job vanished")?;
    let added = relay.publish_ladder(id).await?;
    let content = added.id;
    let bytes = super::fetch(relay, &content).await?;
    let manifest: Manifest = serde_json::from_slice(&bytes)
        .with_context(|| format!("content {content} is not a ladder's manifest"))?;
    manifest.check().map_err(|why| anyhow::anyhow!("the ladder's manifest {content}: {why}"))?;
    super::check_ladder(posted.job, &job, &manifest)?;
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
