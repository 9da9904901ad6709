//! A worker: transcodes the segments the jobs contract draws it for and submits the results.
//!
//! Every [`super::POLL`] it reads its task list. For each transcode task it fetches the job, the
//! source manifest and the source segment from the relay (each checked against its blake3),
//! encodes every rung with the job's settings through an [`Encoder`] (ffmpeg; a hardware
//! decoder when one is given), publishes each rendition to the relay and submits a result
//! naming their blake3 and sizes. A task it cannot do (a blob missing, ffmpeg failing) is
//! reported and tried again at the next poll, until the task's deadline takes it away.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use kinema_chain::Hash;
use kinema_chain::tx::Call;
use kinema_contracts::jobs::{Output, ResultArgs, Task, TaskKind};
use kinema_contracts::system::JOBS;
use kinema_media::Ffmpeg;
use kinema_media::hw::HwAccel;
use kinema_media::transcode::{self, EncodeSettings};
use kinema_relay::api;

use super::{FEE, POLL, Queue};
use kinema_relay::chain::Signer;

/// What turns a source segment into renditions. [`Honest`] is the job's encode; a test
/// harness may bring another (a cheat) to see the market catch it.
pub trait Encoder: Send + Sync + 'static {
    /// Encodes `task`, which is segment `at.1` of job `at.0`.
    fn encode(
        &self,
        ff: &Ffmpeg,
        at: (u64, u32),
        task: &transcode::Task<'_>,
        settings: &EncodeSettings,
        hwaccel: Option<HwAccel>,
    ) -> kinema_media::Result<()>;
}

/// The job's own encode.
#[derive(Debug, Clone, Copy, Default)]
pub struct Honest;

impl Encoder for Honest {
    fn encode(
        &self,
        ff: &Ffmpeg,
        _: (u64, u32),
        task: &transcode::Task<'_>,
        settings: &EncodeSettings,
        hwaccel: Option<HwAccel>,
    ) -> kinema_media::Result<()> {
        transcode::transcode(ff, task, settings, hwaccel)
    }
}

/// What a worker reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// It started on a segment.
    Started {
        /// The job.
        job: u64,
        /// The segment.
        segment: u32,
    },
    /// Its result for a segment is submitted.
    Submitted {
        /// The job.
        job: u64,
        /// The segment.
        segment: u32,
        /// The result transaction.
        tx: Hash,
    },
    /// A task failed this time; it is tried again.
    Failed {
        /// The job.
        job: u64,
        /// The segment.
        segment: u32,
        /// Why.
        why: String,
    },
}

/// A worker.
pub struct Worker {
    /// Who it is on the chain (bonded as a worker), and how it sends.
    pub signer: Signer,
    /// The relay it moves media through, signing its writes with the worker's key.
    pub relay: api::Client,
    /// ffmpeg.
    pub ff: Arc<Ffmpeg>,
    /// Where it keeps a task's files while it works on it.
    pub dir: PathBuf,
    /// How it encodes.
    pub encoder: Arc<dyn Encoder>,
    /// A hardware decoder to use, if any.
    pub hwaccel: Option<HwAccel>,
}

impl Worker {
    /// Works until `stop` completes (between tasks; a task in progress is finished first).
    pub async fn run(
        mut self,
        mut events: impl FnMut(Event) + Send,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<()> {
        tokio::fs::create_dir_all(&self.dir)
            .await
            .with_context(|| format!("{}: cannot create", self.dir.display()))?;
        let mut queue = Queue::default();
        tokio::pin!(stop);
        loop {
            let me = self.signer.address();
            let tasks = match super::tasks_of(self.signer.client(), &me, TaskKind::Transcode).await
            {
                Ok(tasks) => tasks,
                Err(e) => {
                    events(Event::Failed { job: 0, segment: 0, why: format!("{e:#}") });
                    Vec::new()
                }
            };
            let next = queue.next(&tasks);
            let mut pause = POLL;
            if let Some(task) = next {
                events(Event::Started { job: task.job, segment: task.segment });
                match self.work(&task).await {
                    Ok(tx) => {
                        queue.answered(&task);
                        events(Event::Submitted { job: task.job, segment: task.segment, tx });
                        // The next task right away.
                        pause = Duration::ZERO;
                    }
                    Err(e) => {
                        queue.failed(&task);
                        let why = format!("{e:#}");
                        events(Event::Failed { job: task.job, segment: task.segment, why });
                    }
                }
            }
            tokio::select! {
                () = &mut stop => return Ok(()),
                () = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// Does one transcode task; the result transaction's hash.
    async fn work(&mut self, task: &Task) -> Result<Hash> {
        let chain = self.signer.client();
        let job = super::job_of(chain, task).await?;
        let source = super::source_manifest(&self.relay, &job).await?;
        let entry = &source.renditions[0].segments[task.segment as usize];
        let dir = tempfile::tempdir_in(&self.dir).context("a work directory")?;
        let input = dir.path().join("source.ts");
        super::fetch_to(&self.relay, &entry.blake3, &input)
            .await
            .with_context(|| format!("source segment {}", task.segment))?;
        let renditions: Vec<_> = job.args.ladder.rungs.iter().map(super::rendition).collect();
        let outputs: Vec<PathBuf> =
            renditions.iter().map(|r| dir.path().join(format!("{}.ts", r.name))).collect();
        let settings = super::settings(&job.args.ladder);
        let (ff, encoder, hwaccel) = (self.ff.clone(), self.encoder.clone(), self.hwaccel);
        let (input_path, out_paths, rends) = (input.clone(), outputs.clone(), renditions.clone());
        let key = (task.job, task.segment);
        tokio::task::spawn_blocking(move || {
            let task = transcode::Task {
                source: &input_path,
                outputs: rends.iter().zip(out_paths).collect(),
            };
            encoder.encode(&ff, key, &task, &settings, hwaccel)
        })
        .await
        .context("the encoder panicked")?
        .with_context(|| format!("transcoding segment {} of job {}", task.segment, task.job))?;
        let mut announced = Vec::with_capacity(outputs.len());
        for path in &outputs {
            let bytes =
                tokio::fs::read(path).await.with_context(|| format!("{}", path.display()))?;
            let hash = Hash::digest(&bytes);
            announced.push(Output { hash: hash.0, size: bytes.len() as u64 });
            self.relay.put_blob(&hash, bytes).await?;
        }
        let args = ResultArgs { job: task.job, segment: task.segment, outputs: announced };
        let call = Call::Contract {
            contract: kinema_chain::Address(JOBS),
            method: "result".into(),
            args: kinema_chain::encode(&args),
        };
        Ok(self.signer.send(call, FEE).await?.hash)
    }
}
