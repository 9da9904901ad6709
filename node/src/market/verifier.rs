//! A verifier: checks the results the jobs contract draws it for and gives its verdicts.
//!
//! For each check task it reads the segment's result (each rung's blake3 and size) and its
//! sample seed (the hash of the block that holds the result), fetches the source segment and
//! every rendition from the relay, and runs kinema-media's verifier on all of them in one pass
//! with that seed. A rendition the relay has no provider of for [`MISSING_TRIES`] polls, or whose
//! bytes are not the size the result announced, fails the result: the worker announced what it
//! did not deliver. A verifier-side failure (ffmpeg failing on the source) gives no verdict and
//! is tried again.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use kinema_chain::Hash;
use kinema_chain::tx::Call;
use kinema_contracts::jobs::{self, MAX_REASONS, Slot, Stage, Task, TaskKind, VerdictArgs};
use kinema_contracts::system::JOBS;
use kinema_media::Ffmpeg;
use kinema_media::verify::{self, Seed, Thresholds, Verdict};
use kinema_relay::api;

use super::{FEE, POLL, Queue};
use kinema_relay::chain::Signer;

/// Polls in a row a rendition may be missing from the relay (answered 404: no provider has
/// it) before the result fails for it. An honest worker publishes its renditions before it
/// submits the result, so the second look is already generous.
pub const MISSING_TRIES: u32 = 2;

/// What a verifier reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// It gave a verdict.
    Verdict {
        /// The job.
        job: u64,
        /// The segment.
        segment: u32,
        /// Pass or fail.
        pass: bool,
        /// Why, when it failed.
        reasons: String,
    },
    /// A task could not be checked this time; it is tried again.
    Failed {
        /// The job.
        job: u64,
        /// The segment.
        segment: u32,
        /// Why.
        why: String,
    },
}

/// A verifier.
pub struct Verifier {
    /// Who it is on the chain (bonded as a verifier), and how it sends.
    pub signer: Signer,
    /// The relay it reads media from.
    pub relay: api::Client,
    /// ffmpeg.
    pub ff: Arc<Ffmpeg>,
    /// Where it keeps a task's files while it checks.
    pub dir: PathBuf,
}

/// The outcome of one check.
enum Checked {
    Verdict(bool, String),
    /// A rendition is not on the relay (yet).
    Missing(String),
}

/// Whether the relay answered that no one has the blob (rather than not answering at all).
fn is_missing(error: &anyhow::Error) -> bool {
    matches!(error.downcast_ref::<api::Error>(), Some(api::Error::Refused { status: 404, .. }))
}

impl Verifier {
    /// Checks until `stop` completes (between tasks).
    pub async fn run(
        mut self,
        mut events: impl FnMut(Event) + Send,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<()> {
        tokio::fs::create_dir_all(&self.dir)
            .await
            .with_context(|| format!("{}: cannot create", self.dir.display()))?;
        let thresholds = Arc::new(Thresholds::calibrated());
        let mut queue = Queue::default();
        let mut missing: HashMap<(u64, u32), u32> = HashMap::new();
        tokio::pin!(stop);
        loop {
            let me = self.signer.address();
            let tasks = super::tasks_of(self.signer.client(), &me, TaskKind::Check)
                .await
                .unwrap_or_else(|e| {
                    events(Event::Failed { job: 0, segment: 0, why: format!("{e:#}") });
                    Vec::new()
                });
            missing.retain(|d, _| tasks.iter().any(|t| (t.job, t.segment) == *d));
            let next = queue.next(&tasks);
            if let Some(task) = next {
                let key = (task.job, task.segment);
                let answer = match self.check(&task, &thresholds).await {
                    Ok(Checked::Verdict(pass, reasons)) => Some((pass, reasons)),
                    Ok(Checked::Missing(what)) => {
                        let tries = missing.entry(key).or_default();
                        *tries += 1;
                        if *tries >= MISSING_TRIES {
                            Some((false, format!("{what} was never published")))
                        } else {
                            None
                        }
                    }
                    Err(e) => {
                        queue.failed(&task);
                        let why = format!("{e:#}");
                        events(Event::Failed { job: task.job, segment: task.segment, why });
                        None
                    }
                };
                if let Some((pass, reasons)) = answer {
                    match self.answer(&task, pass, &reasons).await {
                        Ok(()) => {
                            queue.answered(&task);
                            events(Event::Verdict {
                                job: task.job,
                                segment: task.segment,
                                pass,
                                reasons,
                            });
                        }
                        Err(e) => events(Event::Failed {
                            job: task.job,
                            segment: task.segment,
                            why: format!("{e:#}"),
                        }),
                    }
                }
            }
            tokio::select! {
                () = &mut stop => return Ok(()),
                () = tokio::time::sleep(POLL) => {}
            }
        }
    }

    async fn check(&self, task: &Task, thresholds: &Arc<Thresholds>) -> Result<Checked> {
        let chain = self.signer.client();
        let job = super::job_of(chain, task).await?;
        let slot: Slot =
            chain.read(&jobs::slot_key(task.job, task.segment)).await?.unwrap_or_default();
        let Stage::Checking { work, review, .. } = slot.stage else {
            anyhow::bail!("segment {} of job {} is not being checked", task.segment, task.job);
        };
        let source = super::source_manifest(&self.relay, &job).await?;
        let entry = &source.renditions[0].segments[task.segment as usize];
        let dir = tempfile::tempdir_in(&self.dir).context("a work directory")?;
        let input = dir.path().join("source.ts");
        super::fetch_to(&self.relay, &entry.blake3, &input)
            .await
            .with_context(|| format!("source segment {}", task.segment))?;
        let rungs = &job.args.ladder.rungs;
        let mut files = Vec::with_capacity(rungs.len());
        for (rung, output) in rungs.iter().zip(&work.outputs) {
            let name = Hash(output.hash);
            let path = dir.path().join(format!("{}.ts", rung.name));
            let what = format!("rendition {} ({name})", rung.name);
            let size = match super::fetch_to(&self.relay, &name, &path).await {
                Ok(size) => size,
                Err(e) if is_missing(&e) => return Ok(Checked::Missing(what)),
                Err(e) => return Err(e.context(what)),
            };
            if size != output.size {
                let why = format!("{what} is {size} bytes, the result announced {}", output.size);
                return Ok(Checked::Verdict(false, why));
            }
            files.push(path);
        }
        let expects: Vec<_> = rungs.iter().map(|r| super::expect(&job.args.ladder, r)).collect();
        let seed = Seed::from_bytes(&review.seed);
        let (ff, thresholds) = (self.ff.clone(), thresholds.clone());
        let names: Vec<String> = rungs.iter().map(|r| r.name.clone()).collect();
        let reports = tokio::task::spawn_blocking(move || {
            let checks: Vec<_> = files.iter().map(|f| f.as_path()).zip(expects.iter()).collect();
            verify::verify_all(&ff, &input, &checks, &thresholds, &seed)
        })
        .await
        .context("the verifier panicked")?
        .context("checking the source segment")?;
        drop(dir);
        let mut reasons = Vec::new();
        for (name, report) in names.iter().zip(reports) {
            match report {
                Ok(report) if report.verdict == Verdict::Pass => {}
                Ok(report) => {
                    for finding in report.reasons {
                        reasons.push(format!("{name}: {}: {}", finding.reason, finding.detail));
                    }
                }
                // A rendition the verifier cannot compare with its source at all fails.
                Err(e) => reasons.push(format!("{name}: {e}")),
            }
        }
        let mut text = reasons.join("; ");
        if text.len() > MAX_REASONS {
            let mut end = MAX_REASONS;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
        }
        Ok(Checked::Verdict(reasons.is_empty(), text))
    }

    async fn answer(&mut self, task: &Task, pass: bool, reasons: &str) -> Result<()> {
        let args =
            VerdictArgs { job: task.job, segment: task.segment, pass, reasons: reasons.to_owned() };
        let call = Call::Contract {
            contract: kinema_chain::Address(JOBS),
            method: "verdict".into(),
            args: kinema_chain::encode(&args),
        };
        self.signer.send(call, FEE).await?;
        Ok(())
    }
}
