//! The market from the command line: `kinema worker`, `kinema verifier`, `kinema upload`,
//! `kinema job status` and `kinema tx bond`, each a thin wrapper of kinema-node's
//! [`market`](kinema_node::market) roles; and the devnet's workers and verifiers.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use kinema_chain::crypto::SecretKey;
use kinema_chain::rpc::{JobReply, JobStateReply, ResultState};
use kinema_chain::tx::Call;
use kinema_chain::{Address, encode};
use kinema_contracts::jobs::{self, BondArgs, Member, Role};
use kinema_contracts::system::JOBS;
use kinema_media::Ffmpeg;
use kinema_media::hw::{self, HwChoice};
use kinema_media::rendition;
use kinema_media::transcode::EncodeSettings;
use kinema_node::market::{self, upload, verifier, worker};
use kinema_relay::api;
use kinema_relay::chain::{ChainClient, Signer};

use crate::wallet::load_key;

/// Where a role reaches the chain and the relay.
#[derive(Debug, Args)]
pub(crate) struct Reach {
    /// The relay (http://host:port) media moves through.
    #[arg(long)]
    relay: String,
    /// A chain node's RPC; default: the one the relay's status names.
    #[arg(long)]
    rpc: Option<String>,
    /// The account's key file.
    #[arg(long)]
    key: PathBuf,
}

impl Reach {
    /// The key, the relay's client (signing with the key) and the chain's.
    async fn open(&self) -> Result<(SecretKey, api::Client, ChainClient)> {
        let key = load_key(&self.key).context("--key")?;
        let relay = api::Client::new(&self.relay).with_key(key.clone());
        let rpc = match &self.rpc {
            Some(rpc) => rpc.clone(),
            None => relay
                .status()
                .await
                .context("--relay")?
                .chain_rpc
                .context("the relay names no chain RPC; give --rpc")?,
        };
        Ok((key, relay, ChainClient::new(&rpc).context("--rpc")?))
    }
}

/// `kinema worker` / `kinema verifier`.
#[derive(Debug, Args)]
pub(crate) struct RoleArgs {
    #[command(flatten)]
    reach: Reach,
    /// Where task files are kept while working (default: a directory under the system's
    /// temporary directory).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Decode with: auto (the first usable hardware decoder, else the CPU), none, cuda, vaapi
    /// or qsv (workers only).
    #[arg(long, default_value = "auto")]
    hwaccel: String,
}

/// `kinema upload`.
#[derive(Debug, Args)]
pub(crate) struct UploadArgs {
    /// The clip.
    input: PathBuf,
    #[command(flatten)]
    reach: Reach,
    /// Rendition heights; those above the source are skipped.
    #[arg(long, default_value = "720p,480p,360p,240p")]
    renditions: String,
    /// Paid per segment-rendition accepted.
    #[arg(long, default_value_t = 1_000)]
    price: u64,
    /// Blocks a worker has to answer an assignment.
    #[arg(long, default_value_t = 30)]
    deadline: u64,
    /// Share of results checked, in basis points (after each worker's first ten, which are
    /// always checked).
    #[arg(long, default_value_t = jobs::DEFAULT_VERIFY_BPS)]
    verify_bps: u16,
    /// x264 preset the job fixes.
    #[arg(long, default_value = jobs::DEFAULT_PRESET)]
    preset: String,
    /// x264 constant rate factor the job fixes.
    #[arg(long, default_value_t = 23)]
    crf: u8,
    /// Wait until every segment is accepted, then publish the ladder and print its HLS URL.
    #[arg(long)]
    wait: bool,
    /// How long --wait waits, in seconds.
    #[arg(long, default_value_t = 1800)]
    timeout: u64,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// `kinema job publish`.
#[derive(Debug, Args)]
pub(crate) struct JobPublishArgs {
    /// The job's number.
    job: u64,
    #[command(flatten)]
    reach: Reach,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// `kinema job cancel`.
#[derive(Debug, Args)]
pub(crate) struct JobCancelArgs {
    /// The job's number.
    job: u64,
    /// A chain node's RPC.
    #[arg(long)]
    rpc: String,
    /// The creator's key file.
    #[arg(long)]
    key: PathBuf,
}

/// `kinema job status`.
#[derive(Debug, Args)]
pub(crate) struct JobStatusArgs {
    /// A chain node's RPC.
    #[arg(long)]
    rpc: String,
    /// The job's number.
    job: u64,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn work_dir(dir: Option<PathBuf>, role: &str, me: Address) -> PathBuf {
    dir.unwrap_or_else(|| std::env::temp_dir().join(format!("kinema-{role}-{me}")))
}

/// The member `address` is, if bonded.
async fn membership(chain: &ChainClient, address: &Address) -> Result<Option<Member>> {
    let pool: Vec<Member> = chain.read(b"jobs/pool").await?.unwrap_or_default();
    Ok(pool.into_iter().find(|m| m.address == address.0))
}

/// Refuses to start a role that is not bonded as `role` with at least the minimum.
async fn check_bond(chain: &ChainClient, address: &Address, role: Role) -> Result<()> {
    match membership(chain, address).await? {
        Some(m) if m.role == role && m.bond >= jobs::MIN_BOND => Ok(()),
        Some(m) if m.role != role => bail!("{address} is bonded as a {:?}, not a {role:?}", m.role),
        Some(m) => bail!(
            "{address} has a bond of {}, under the {} a {role:?} needs: kinema tx bond --role {} \
             --amount ...",
            m.bond,
            jobs::MIN_BOND,
            role_name(role)
        ),
        None => bail!(
            "{address} is not bonded: kinema tx bond --role {} --amount {} first",
            role_name(role),
            jobs::MIN_BOND
        ),
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Worker => "worker",
        Role::Verifier => "verifier",
    }
}

pub(crate) fn run_worker(args: RoleArgs) -> Result<()> {
    runtime()?.block_on(async {
        let choice: HwChoice = args.hwaccel.parse().context("--hwaccel")?;
        let ff = Ffmpeg::locate()?;
        let hwaccel = decoder(&ff, choice).context("--hwaccel")?;
        let (key, relay, chain) = args.reach.open().await?;
        let me = key.address();
        check_bond(&chain, &me, Role::Worker).await?;
        let worker = worker::Worker {
            signer: Signer::new(chain, key).await?,
            relay,
            ff: Arc::new(ff),
            dir: work_dir(args.dir, "worker", me),
            encoder: Arc::new(worker::Honest),
            hwaccel,
        };
        if let Some(accel) = hwaccel {
            say!("worker {me}: decoding with {accel:?}");
        }
        say!("worker {me}: waiting for tasks (Ctrl-C stops it)");
        worker.run(|e| print_worker(&me, &e), stopped()).await?;
        say!("worker {me}: stopped");
        Ok(())
    })
}

pub(crate) fn run_verifier(args: RoleArgs) -> Result<()> {
    runtime()?.block_on(async {
        let (key, relay, chain) = args.reach.open().await?;
        let me = key.address();
        check_bond(&chain, &me, Role::Verifier).await?;
        let verifier = verifier::Verifier {
            signer: Signer::new(chain, key).await?,
            relay,
            ff: Arc::new(Ffmpeg::locate()?),
            dir: work_dir(args.dir, "verifier", me),
        };
        say!("verifier {me}: waiting for tasks (Ctrl-C stops it)");
        verifier.run(|e| print_verifier(&me, &e), stopped()).await?;
        say!("verifier {me}: stopped");
        Ok(())
    })
}

/// The hardware decoder a worker uses: `choice` resolved against what really works here.
fn decoder(ff: &Ffmpeg, choice: HwChoice) -> Result<Option<hw::HwAccel>> {
    Ok(match choice {
        HwChoice::None => None,
        choice => hw::detect(ff)?.resolve(choice)?,
    })
}

/// A future that completes on Ctrl-C or SIGTERM.
async fn stopped() {
    if let Ok(by) = crate::stop_requested().await {
        say!("stopping ({by})");
    }
}

fn print_worker(me: &Address, event: &worker::Event) {
    match event {
        worker::Event::Started { job, segment } => {
            say!("worker {me}: job {job} segment {segment}: transcoding")
        }
        worker::Event::Submitted { job, segment, tx } => {
            say!("worker {me}: job {job} segment {segment}: result submitted ({tx})")
        }
        worker::Event::Failed { job, segment, why } => {
            say!("worker {me}: job {job} segment {segment}: failed, will retry: {why}")
        }
    }
}

fn print_verifier(me: &Address, event: &verifier::Event) {
    match event {
        verifier::Event::Verdict { job, segment, pass: true, .. } => {
            say!("verifier {me}: job {job} segment {segment}: pass")
        }
        verifier::Event::Verdict { job, segment, reasons, .. } => {
            say!("verifier {me}: job {job} segment {segment}: fail: {reasons}")
        }
        verifier::Event::Failed { job, segment, why } => {
            say!("verifier {me}: job {job} segment {segment}: not checked, will retry: {why}")
        }
    }
}

pub(crate) fn run_upload(args: UploadArgs) -> Result<()> {
    let encode =
        EncodeSettings { preset: args.preset.clone(), crf: args.crf, ..Default::default() };
    encode.validate()?;
    if !args.input.is_file() {
        bail!("{}: no such file", args.input.display());
    }
    let order = upload::Order {
        input: args.input.clone(),
        heights: rendition::parse_heights(&args.renditions).context("--renditions")?,
        preset: args.preset.clone(),
        crf: args.crf,
        price: args.price,
        deadline: args.deadline,
        verify_bps: args.verify_bps,
    };
    let json = args.json;
    runtime()?.block_on(async {
        let (key, relay, chain) = args.reach.open().await?;
        let mut signer = Signer::new(chain.clone(), key).await?;
        let mut last = None;
        let posted = upload::post(&mut signer, &relay, &order, |e| {
            if !json {
                print_upload(&e, &mut last)
            }
        })
        .await?;
        if !args.wait {
            if json {
                say!("{}", serde_json::json!({ "job": posted.job, "source": posted.source }));
            } else {
                say!(
                    "job {} posted; kinema job status --rpc {} {}",
                    posted.job,
                    chain.base(),
                    posted.job
                );
            }
            return Ok(());
        }
        let mut last = None;
        let timeout = Duration::from_secs(args.timeout);
        let finished = upload::wait(&mut signer, &relay, &posted, timeout, |e| {
            if !json {
                print_upload(&e, &mut last)
            }
        })
        .await?;
        if json {
            let out = serde_json::json!({
                "job": posted.job,
                "content": finished.content,
                "hls": finished.hls,
                "paid": finished.job.paid,
            });
            say!("{out}");
        } else {
            let paid: u64 = finished.job.paid.values().sum();
            say!("job {} done: paid {paid}, refunded {}", posted.job, finished.job.refunded);
            say!("content {}", finished.content);
            say!("play {}", finished.hls);
            say!("watch {}", relay.url(&format!("/watch/{}", finished.content)));
        }
        Ok(())
    })
}

fn print_upload(event: &upload::Event, last: &mut Option<JobReply>) {
    match event {
        // One line when the clip is all sent; the chunks before it are not worth a line each.
        upload::Event::Sent { bytes, of } if bytes == of => say!("sent {of} bytes to the relay"),
        upload::Event::Sent { .. } | upload::Event::Cutting(_) => {}
        upload::Event::Published { source, segments } => {
            say!("source {source}: {segments} segments on the relay")
        }
        upload::Event::Posted { job } => say!("job {job} posted"),
        upload::Event::Job(job) => {
            let before = last.as_ref().map(|l| &l.results);
            for (i, r) in job.results.iter().enumerate() {
                if before.and_then(|b| b.get(i)).is_some_and(|b| b.state == r.state) {
                    continue;
                }
                let worker = r.worker.map(|w| format!(" by {w}")).unwrap_or_default();
                say!("  segment {} {}: {}{worker}", r.segment, r.rendition, state_name(r.state));
            }
            *last = Some((**job).clone());
        }
    }
}

fn state_name(state: ResultState) -> &'static str {
    match state {
        ResultState::Queued => "queued",
        ResultState::Transcoding => "transcoding",
        ResultState::Verifying => "verifying",
        ResultState::Accepted => "accepted",
        ResultState::Retried => "retried",
    }
}

pub(crate) fn run_job_publish(args: JobPublishArgs) -> Result<()> {
    runtime()?.block_on(async {
        let (key, relay, chain) = args.reach.open().await?;
        let job = chain.job(args.job).await?;
        let mut signer = Signer::new(chain, key).await?;
        let finished = upload::publish_ladder(&mut signer, &relay, args.job, job).await?;
        if args.json {
            let out = serde_json::json!({
                "job": args.job,
                "content": finished.content,
                "hls": finished.hls,
                "paid": finished.job.paid,
            });
            say!("{out}");
        } else {
            say!("content {}", finished.content);
            say!("play {}", finished.hls);
        }
        Ok(())
    })
}

pub(crate) fn run_job_cancel(args: JobCancelArgs) -> Result<()> {
    let key = load_key(&args.key).context("--key")?;
    runtime()?.block_on(async {
        let chain = ChainClient::new(&args.rpc).context("--rpc")?;
        let before = chain.job(args.job).await?;
        if before.state != JobStateReply::Open {
            bail!("job {} is {}, not open", args.job, state_label(before.state));
        }
        if before.creator != key.address() {
            bail!("job {} is {}'s, not {}'s to cancel", args.job, before.creator, key.address());
        }
        let mut signer = Signer::new(chain.clone(), key).await?;
        let call = Call::Contract {
            contract: Address(JOBS),
            method: "cancel".into(),
            args: encode(&args.job),
        };
        let reply = signer.send(call, market::FEE).await?;
        chain.wait_committed(&reply).await?;
        let job = chain.job(args.job).await?;
        if job.state != JobStateReply::Cancelled {
            bail!("job {} is still {}: the cancel was refused", args.job, state_label(job.state));
        }
        let paid: u64 = job.paid.values().sum();
        say!(
            "job {} cancelled: paid {paid} for accepted work, refunded {}",
            args.job,
            job.refunded
        );
        Ok(())
    })
}

fn state_label(state: JobStateReply) -> &'static str {
    match state {
        JobStateReply::Open => "open",
        JobStateReply::Done => "done",
        JobStateReply::Failed => "failed",
        JobStateReply::Cancelled => "cancelled",
    }
}

pub(crate) fn run_job_status(args: JobStatusArgs) -> Result<()> {
    let job = runtime()?.block_on(async { ChainClient::new(&args.rpc)?.job(args.job).await })?;
    if args.json {
        say!("{}", serde_json::to_string(&job)?);
        return Ok(());
    }
    let state = state_label(job.state);
    let accepted = job.results.iter().filter(|r| r.state == ResultState::Accepted).count();
    say!("job {}: {state}, {accepted} of {} results accepted", job.id, job.results.len());
    if let Some(why) = &job.failure {
        say!("  failed: {why}");
    }
    for r in &job.results {
        let worker = r.worker.map(|w| format!(" by {w}")).unwrap_or_default();
        let verdict =
            r.verdict.as_deref().map(|v| format!(", last verdict {v}")).unwrap_or_default();
        say!(
            "  segment {} {}: {}{worker} (attempts {}{verdict})",
            r.segment,
            r.rendition,
            state_name(r.state),
            r.attempts
        );
    }
    for (who, amount) in &job.paid {
        say!("  paid {who} {amount}");
    }
    if job.refunded > 0 {
        say!("  refunded {}", job.refunded);
    }
    Ok(())
}

/// The call `kinema tx bond` sends.
pub(crate) fn bond_call(role: &str, amount: u64) -> Result<Call> {
    let role = match role {
        "worker" => Role::Worker,
        "verifier" => Role::Verifier,
        other => bail!("--role {other:?}: expected worker or verifier"),
    };
    Ok(Call::Contract {
        contract: Address(JOBS),
        method: "bond".into(),
        args: encode(&BondArgs { role, amount }),
    })
}

/// The devnet's market members: keys under `<data-dir>/<role>-<i>/key.json`, funded by the
/// faucet and bonded when they are not yet, each running as a task of this process.
pub(crate) struct Members {
    tasks: Vec<tokio::task::JoinHandle<Result<()>>>,
    stop: tokio::sync::watch::Sender<bool>,
}

/// What a devnet member starts with: enough to bond and to pay fees for a long while.
const MEMBER_FUNDS: u64 = 1_000_000_000_000;
/// What a devnet member bonds.
const MEMBER_BOND: u64 = 100_000_000;

/// A devnet member's role, key and directory.
pub(crate) type MemberKey = (Role, SecretKey, PathBuf);

/// The keys of `workers` workers and `verifiers` verifiers under `data_dir` (made the first
/// time).
pub(crate) fn member_keys(
    data_dir: &std::path::Path,
    (workers, verifiers): (usize, usize),
) -> Result<Vec<MemberKey>> {
    let mut keys = Vec::new();
    for (role, n) in [(Role::Worker, workers), (Role::Verifier, verifiers)] {
        for i in 0..n {
            let dir = data_dir.join(format!("{}-{i}", role_name(role)));
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("{}: cannot create", dir.display()))?;
            keys.push((role, crate::node::load_or_create_key(&dir.join("key.json"))?, dir));
        }
    }
    Ok(keys)
}

/// What names a member's role on the devnet's lines.
pub(crate) fn role_label(role: Role) -> &'static str {
    role_name(role)
}

impl Members {
    /// Funds and bonds the members `keys` names where they are not yet, then starts each.
    pub(crate) async fn start(
        keys: Vec<MemberKey>,
        faucet: SecretKey,
        rpc: &str,
        relay: &str,
    ) -> Result<Self> {
        let chain = ChainClient::new(rpc)?;
        let ff = Ffmpeg::locate()?;
        // Hardware decoding where this machine has it.
        let hwaccel = decoder(&ff, HwChoice::Auto)?;
        let ff = Arc::new(ff);
        // The faucet funds, each member bonds; every transaction is committed before the roles
        // start.
        let mut faucet = Signer::new(chain.clone(), faucet).await?;
        let mut pending = Vec::new();
        for (_, key, _) in &keys {
            if chain.account(&key.address()).await?.balance < MEMBER_FUNDS / 2 {
                let call = Call::Transfer { to: key.address(), amount: MEMBER_FUNDS };
                pending.push(faucet.send(call, market::FEE).await?);
            }
        }
        for reply in &pending {
            chain.wait_committed(reply).await?;
        }
        let mut pending = Vec::new();
        for (role, key, _) in &keys {
            if membership(&chain, &key.address()).await?.is_none() {
                let mut signer = Signer::new(chain.clone(), key.clone()).await?;
                let call = bond_call(role_name(*role), MEMBER_BOND)?;
                pending.push(signer.send(call, market::FEE).await?);
            }
        }
        for reply in &pending {
            chain.wait_committed(reply).await?;
        }
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mut tasks = Vec::new();
        for (role, key, dir) in keys {
            let me = key.address();
            let signer = Signer::new(chain.clone(), key.clone()).await?;
            let relay = api::Client::new(relay).with_key(key);
            let mut stopped = stopped.clone();
            let stop = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            let dir = dir.join("work");
            tasks.push(match role {
                Role::Worker => {
                    let worker = worker::Worker {
                        signer,
                        relay,
                        ff: ff.clone(),
                        dir,
                        encoder: Arc::new(worker::Honest),
                        hwaccel,
                    };
                    tokio::spawn(worker.run(move |e| print_worker(&me, &e), stop))
                }
                Role::Verifier => {
                    let verifier = verifier::Verifier { signer, relay, ff: ff.clone(), dir };
                    tokio::spawn(verifier.run(move |e| print_verifier(&me, &e), stop))
                }
            });
        }
        Ok(Self { tasks, stop })
    }

    /// Stops every member (each finishes the task it is on) and waits for them.
    pub(crate) async fn stop(self) -> Result<()> {
        let _ = self.stop.send(true);
        for task in self.tasks {
            task.await.context("a market member panicked")??;
        }
        Ok(())
    }
}
