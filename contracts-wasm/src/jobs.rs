//! The transcode market: a creator pays for a ladder, bonded workers that nobody trusts
//! transcode it, drawn verifiers check a sample of the work, cheats are slashed, the honest are
//! paid, and the accepted ladder is recorded.
//!
//! **Members.** A worker or a verifier bonds part of its balance here ([`bond`]); the bond is
//! what a draw weighs and what a slash cuts. Unbonding ([`unbond`]) takes
//! [`UNBONDING_BLOCKS`] blocks, during which the bond is still slashable. At most [`MAX_POOL`]
//! members.
//!
//! **A job** ([`post`]) names its source (the blake3 of its manifest, which lists the source
//! segments' blake3 and sizes), its segment count, the ladder (codec, preset, CRF and each
//! rung's size and bit-rate cap: everything a verifier needs to encode the same rung itself), a
//! price per segment-rendition, a deadline in blocks per assignment and a verification rate. Its
//! whole cost is escrowed at once: the workers' pay plus one verification fee per segment.
//!
//! **The life of a segment**, driven by [`tick`] (which the chain calls at the end of every
//! block) and by the members' transactions:
//! 1. *Assigned* one block after the job was posted: drawn among the workers that are bonded,
//!    not suspended and not tried for this segment yet, by bond with a random share
//!    ([`RANDOM_SHARE_BPS`] of draws are uniform), from the hash of the block that posted it.
//! 2. The worker answers with a [`result`] (each rung's blake3 and size) before its deadline.
//!    Otherwise it is suspended for [`SUSPEND_BLOCKS`] and the segment drawn again; after
//!    [`MAX_ATTEMPTS`] the job fails.
//! 3. One block later the hash of the block that holds the result — which the worker could not
//!    know — decides whether it is checked (always for a worker's first [`FIRST_CHECKED`]
//!    results, else at the job's rate) and draws the verifier. The same hash is the seed of the
//!    verifier's sample positions.
//! 4. A failing [`verdict`] slashes the worker [`SLASH_BPS`] of its bond (half of it to the
//!    verifier, the rest burnt), suspends it and draws the segment again, and the other
//!    segments it holds as well. A passing one pays the
//!    verifier its fee from the escrow and opens a challenge window of [`WINDOW`] blocks, as an
//!    unchecked result does. A verifier that does not answer in [`VERDICT_BLOCKS`] is suspended
//!    and another drawn (three in all; then the result is dropped unpaid, no one slashed, and
//!    the segment drawn again: a result that must be checked is never accepted unchecked).
//! 5. Within the window any member may [`challenge`]: three more verifiers are drawn, the
//!    majority of those who answer decides, and the losing side (the worker and the verifier who
//!    passed it, or the challenger) is slashed, half of it shared by the winners.
//! 6. At the window's end the result is accepted and the worker owed its pay. When every
//!    segment is accepted the ladder's hash ([`ladder_hash`]) is computed over the next blocks,
//!    [`RECORD_CHUNK`] segments a block, and recorded with the job ([`ladder_key`]); the job is
//!    done: everyone owed is paid in one batch and the unspent escrow returns to the creator.
//!
//! The creator may [`cancel`] an open job: accepted work is paid, the rest of the escrow
//! returns. Every table has a bound; every amount is checked; the value a job holds is always
//! `escrow + owed`, and [`burnt`] counts what slashing destroyed, so balances add up.

use borsh::{BorshDeserialize, BorshSerialize};

use crate::accounts::{self, SYSTEM};
use crate::{Address, Host, Refusal, block_hash, read_value, write_value};

/// Members (workers and verifiers) at most.
pub const MAX_POOL: usize = 256;
/// The least bond a member is drawn with.
pub const MIN_BOND: u64 = 10_000;
/// Tasks a member holds at most; one that holds this many is not drawn until it answers, and
/// the rest of a job waits for a member with room (so a deadline is for a short queue).
pub const MAX_TASKS: u32 = 4;
/// Segments a job has at most.
pub const MAX_SEGMENTS: u32 = 4096;
/// Rungs a ladder has at most.
pub const MAX_RUNGS: usize = 8;
/// Longest rung name.
pub const MAX_NAME: usize = 16;
/// Largest rendition of one segment a result may announce.
pub const MAX_OUTPUT_BYTES: u64 = 64 << 20;
/// Longest reason a verdict may give.
pub const MAX_REASONS: usize = 512;
/// Shortest and longest assignment deadline, in blocks.
pub const DEADLINES: std::ops::RangeInclusive<u64> = 2..=10_000;
/// Times a segment is assigned at most (a missed deadline or a failed verdict each use one).
pub const MAX_ATTEMPTS: u8 = 3;
/// Blocks between unbonding and withdrawing: longer than anything a member's work can still
/// be judged in (a deadline, a check, a window and a challenge), so no one leaves with the
/// bond a verdict on its work would slash.
pub const UNBONDING_BLOCKS: u64 = 1_000;
// A result is judged within: the sampling block, every verifier's turn, the window and a
// challenge's answers; withdrawing also waits for the member's open tasks.
const _: () = assert!(
    UNBONDING_BLOCKS
        > 2 + MAX_VERIFIER_DRAWS as u64 * (VERDICT_BLOCKS + 1) + WINDOW + VERDICT_BLOCKS + 1
);

/// Blocks a worker that missed a deadline, or a verifier that missed a verdict, is not drawn.
pub const SUSPEND_BLOCKS: u64 = 100;
/// Blocks a verifier has to answer (it may hold [`MAX_TASKS`] checks, each some seconds of
/// CPU).
pub const VERDICT_BLOCKS: u64 = 100;
/// Verifiers drawn for one result at most, one after another when they do not answer.
pub const MAX_VERIFIER_DRAWS: usize = 3;
/// Verifiers a challenge draws.
pub const CHALLENGE_VERIFIERS: usize = 3;
/// Blocks an accepted-to-be result can be challenged.
pub const WINDOW: u64 = 10;
/// Results of a worker that are always checked.
pub const FIRST_CHECKED: u32 = 10;
/// The default verification rate, in basis points: a worker that cheats on every result is
/// caught within 20 of them with probability ≥ 99 % when the verifier catches 95 % of tampering
/// (1 - (1 - 0.22 × 0.95)^20 = 0.991).
pub const DEFAULT_VERIFY_BPS: u16 = 2_200;
/// The x264 preset a job asks for unless its creator says otherwise: fast enough for browsers'
/// and small workers' turns, and what a verifier re-encodes with.
pub const DEFAULT_PRESET: &str = "veryfast";
/// A verdict's fee, in basis points of the segment's pay (its price times its rungs).
pub const VERIFY_FEE_BPS: u64 = 2_000;
/// Share of a member's bond a lost verdict or challenge slashes, in basis points.
pub const SLASH_BPS: u64 = 1_000;
/// Share of draws that ignore the bond (uniform among the eligible), in basis points.
pub const RANDOM_SHARE_BPS: u64 = 2_000;
/// Work the end of one block does at most, in draws (a timer's [`TimerKind::work`]); the
/// timers that do not fit wait for the next block.
pub const WORK_PER_BLOCK: u32 = 1024;
/// Segments one assignment timer draws at most.
pub const ASSIGN_BATCH: u32 = 16;
/// Blocks before a draw that found nobody eligible is tried again.
pub const RETRY_BLOCKS: u64 = 5;

/// The presets a job may fix (x264's).
pub const PRESETS: [&str; 9] = [
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
];

/// What a member does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum Role {
    /// Transcodes assigned segments.
    Worker,
    /// Checks drawn results.
    Verifier,
}

/// A bonded member.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Member {
    /// Its account.
    pub address: Address,
    /// What it does.
    pub role: Role,
    /// Bonded: drawn by, slashable.
    pub bond: u64,
    /// Leaving, still slashable until `release_height`.
    pub unbonding: u64,
    /// When `unbonding` may be withdrawn.
    pub release_height: u64,
    /// Not drawn before this height.
    pub suspended_until: u64,
    /// Results it submitted (its first [`FIRST_CHECKED`] are always checked).
    pub results: u32,
    /// Tasks it holds now (its [`tasks_key`] list); at [`MAX_TASKS`] it is not drawn.
    pub tasks: u32,
}

/// What a member is to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum TaskKind {
    /// Transcode the segment and submit a [`result`].
    Transcode,
    /// Check the segment's result and give a [`verdict`].
    Check,
}

/// One task of a member's, in its list under [`tasks_key`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Task {
    /// The job.
    pub job: u64,
    /// The segment.
    pub segment: u32,
    /// What to do.
    pub kind: TaskKind,
}

/// One rung of a job's ladder.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Rung {
    /// Its name (`[a-z0-9_-]`, at most [`MAX_NAME`] bytes).
    pub name: String,
    /// Width in pixels (even).
    pub width: u32,
    /// Height in pixels (even).
    pub height: u32,
    /// Bit-rate cap, kbit/s.
    pub max_kbps: u32,
}

/// The encode a job fixes: what a verifier encodes itself to judge a rendition.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Ladder {
    /// The codec (`h264`).
    pub codec: String,
    /// The x264 preset.
    pub preset: String,
    /// The constant rate factor (0–51).
    pub crf: u8,
    /// The rungs, 1 to [`MAX_RUNGS`].
    pub rungs: Vec<Rung>,
}

/// Arguments of [`post`].
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct PostArgs {
    /// blake3 of the source's manifest.
    pub source: [u8; 32],
    /// Source segments, 1 to [`MAX_SEGMENTS`].
    pub segments: u32,
    /// What to make of each.
    pub ladder: Ladder,
    /// Paid per segment-rendition accepted.
    pub price: u64,
    /// Blocks a worker has to answer an assignment.
    pub deadline: u64,
    /// Share of results checked, in basis points.
    pub verify_bps: u16,
}

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum JobState {
    /// Being worked on.
    Open,
    /// Every segment accepted, everyone paid.
    Done,
    /// A segment ran out of attempts; accepted work paid, the rest refunded.
    Failed,
    /// Cancelled by its creator; accepted work paid, the rest refunded.
    Cancelled,
}

/// A job, stored under [`job_key`].
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Job {
    /// Who posted and pays.
    pub creator: Address,
    /// What [`post`] asked.
    pub args: PostArgs,
    /// The height it was posted at.
    pub posted: u64,
    /// Where it is.
    pub state: JobState,
    /// Escrow not yet owed to anyone.
    pub escrow: u64,
    /// Owed, paid when the job ends.
    pub owed: Vec<(Address, u64)>,
    /// Paid when it ended.
    pub paid: Vec<(Address, u64)>,
    /// Returned to the creator when it ended.
    pub refunded: u64,
    /// Segments accepted.
    pub accepted: u32,
    /// Why it failed, when it did.
    pub failure: Option<String>,
    /// Every segment accepted, being recorded: the next segment to hash and the chain so far.
    pub recording: Option<(u32, [u8; 32])>,
    /// When done: the hash of the accepted ladder ([`ladder_hash`]).
    pub ladder: Option<[u8; 32]>,
    /// The content id its creator published the ladder under ([`publish`]), if any.
    pub content: Option<[u8; 32]>,
}

/// One rendition of a segment, as a result announces it.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Output {
    /// Its blake3.
    pub hash: [u8; 32],
    /// Its size in bytes.
    pub size: u64,
}

/// A verifier's answer.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Verdict {
    /// Who gave it.
    pub verifier: Address,
    /// Pass or fail.
    pub pass: bool,
    /// The verifier's reasons.
    pub reasons: String,
    /// The height it came in.
    pub height: u64,
}

/// A worker's result.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Work {
    /// The worker.
    pub worker: Address,
    /// One per rung.
    pub outputs: Vec<Output>,
    /// The height of the block that holds it.
    pub at: u64,
}

/// What is known of a result once its block's hash decided its check.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Review {
    /// The verifiers' sample seed: the hash of the block that holds the result.
    pub seed: [u8; 32],
    /// Who passed it, if anyone did.
    pub passed_by: Option<Address>,
    /// Every verifier drawn for it so far (none is drawn twice).
    pub drawn: Vec<Address>,
}

/// A check in progress: one drawn verifier, or three for a challenge.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Check {
    /// Who is to answer now.
    pub verifiers: Vec<Address>,
    /// Answers so far (verifier, pass).
    pub votes: Vec<(Address, bool)>,
    /// The last height an answer counts.
    pub due: u64,
    /// Who challenged a pass (a challenge's check), if anyone.
    pub challenger: Option<Address>,
}

/// Where a segment is.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum Stage {
    /// Waiting to be drawn.
    Queued,
    /// A worker has it until `due`.
    Assigned {
        /// The worker.
        worker: Address,
        /// The last height its result counts.
        due: u64,
    },
    /// A result, waiting one block for the hash that decides its check.
    Submitted(Work),
    /// Drawn verifiers are checking it.
    Checking {
        /// The result.
        work: Work,
        /// Its seed and verifiers so far.
        review: Review,
        /// The check.
        check: Check,
    },
    /// Accepted at `ends` unless challenged first.
    Window {
        /// The result.
        work: Work,
        /// Its seed and verifiers so far.
        review: Review,
        /// The height it is accepted at.
        ends: u64,
    },
    /// Accepted; its worker is owed its pay.
    Accepted(Work),
}

/// A segment of a job, stored under [`slot_key`] (absent: queued, never tried).
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Slot {
    /// Where it is.
    pub stage: Stage,
    /// Assignments so far.
    pub attempts: u8,
    /// Workers it was assigned to (none gets it twice).
    pub tried: Vec<Address>,
    /// Verdicts given on its results.
    pub verdicts: Vec<Verdict>,
    /// Changes with every stage, so a timer set for an earlier stage does nothing.
    pub stamp: u32,
}

impl Default for Slot {
    fn default() -> Self {
        Self {
            stage: Stage::Queued,
            attempts: 0,
            tried: Vec::new(),
            verdicts: Vec::new(),
            stamp: 0,
        }
    }
}

/// What a timer does when its block ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum TimerKind {
    /// Draw workers for the job's queued segments from `segment` on.
    Assign,
    /// A worker's deadline.
    Expire,
    /// Decide whether a result is checked, and draw its verifier.
    Sample,
    /// A verifier's deadline.
    VerdictDue,
    /// The challenge window's end.
    Close,
    /// Hash the next chunk of a finished job's outputs; record it after the last.
    Record,
    /// Draw a worker again for a segment that found nobody eligible.
    Redraw,
}

impl TimerKind {
    /// What handling it costs at most, in draws of a worker or verifier (the unit of
    /// [`WORK_PER_BLOCK`]).
    pub fn work(self) -> u32 {
        match self {
            TimerKind::Assign => ASSIGN_BATCH,
            // Reading a chunk's slots costs about a quarter of a draw each.
            TimerKind::Record => RECORD_CHUNK / 4,
            TimerKind::Expire
            | TimerKind::Sample
            | TimerKind::VerdictDue
            | TimerKind::Close
            | TimerKind::Redraw => 1,
        }
    }
}

/// Something due at a height.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Timer {
    /// The job.
    pub job: u64,
    /// The segment.
    pub segment: u32,
    /// The slot's stamp when it was set (ignored when it changed since).
    pub stamp: u32,
    /// What to do.
    pub kind: TimerKind,
}

/// Arguments of [`bond`].
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct BondArgs {
    /// The role (a member keeps the one it first bonded with).
    pub role: Role,
    /// Moved from the balance to the bond.
    pub amount: u64,
}

/// Arguments of [`result`].
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct ResultArgs {
    /// The job.
    pub job: u64,
    /// The segment.
    pub segment: u32,
    /// One per rung, in the ladder's order.
    pub outputs: Vec<Output>,
}

/// Arguments of [`verdict`].
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct VerdictArgs {
    /// The job.
    pub job: u64,
    /// The segment.
    pub segment: u32,
    /// Pass or fail.
    pub pass: bool,
    /// Why (at most [`MAX_REASONS`] bytes).
    pub reasons: String,
}

/// Arguments of [`challenge`].
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct ChallengeArgs {
    /// The job.
    pub job: u64,
    /// The segment.
    pub segment: u32,
}

const POOL_KEY: &[u8] = b"jobs/pool";
/// Where the next job's number is kept: how many jobs were ever posted.
pub const NEXT_KEY: &[u8] = b"jobs/next";
const BURNT_KEY: &[u8] = b"jobs/burnt";
const BACKLOG_KEY: &[u8] = b"jobs/backlog";

/// Where job `id` lives.
pub fn job_key(id: u64) -> Vec<u8> {
    let mut key = b"jobs/job/".to_vec();
    key.extend_from_slice(&id.to_be_bytes());
    key
}

/// Where segment `segment` of job `id` lives.
pub fn slot_key(id: u64, segment: u32) -> Vec<u8> {
    let mut key = b"jobs/slot/".to_vec();
    key.extend_from_slice(&id.to_be_bytes());
    key.extend_from_slice(&segment.to_be_bytes());
    key
}

/// Where `member`'s tasks live: what a worker or verifier polls.
pub fn tasks_key(member: &Address) -> Vec<u8> {
    let mut key = b"jobs/tasks/".to_vec();
    key.extend_from_slice(member);
    key
}

/// `member`'s tasks.
pub fn tasks(host: &impl Host, member: &Address) -> Result<Vec<Task>, Refusal> {
    Ok(read_value(host, &tasks_key(member))?.unwrap_or_default())
}

fn set_tasks(host: &mut impl Host, pool: &mut [Member], who: &Address, list: &[Task]) {
    if list.is_empty() {
        host.remove(&tasks_key(who));
    } else {
        write_value(host, &tasks_key(who), &list.to_vec());
    }
    if let Some(m) = member(pool, who) {
        m.tasks = list.len() as u32;
    }
}

fn give_task(
    host: &mut impl Host,
    pool: &mut [Member],
    who: &Address,
    task: Task,
) -> Result<(), Refusal> {
    let mut list = tasks(host, who)?;
    list.push(task);
    set_tasks(host, pool, who, &list);
    Ok(())
}

fn take_task(
    host: &mut impl Host,
    pool: &mut [Member],
    who: &Address,
    job: u64,
    segment: u32,
) -> Result<(), Refusal> {
    let mut list = tasks(host, who)?;
    list.retain(|t| (t.job, t.segment) != (job, segment));
    set_tasks(host, pool, who, &list);
    Ok(())
}

/// Where the id of the last job `creator` posted lives.
pub fn latest_key(creator: &Address) -> Vec<u8> {
    let mut key = b"jobs/latest/".to_vec();
    key.extend_from_slice(creator);
    key
}

/// Where the job that made a ladder (by [`ladder_hash`]) is recorded.
pub fn ladder_key(ladder: &[u8; 32]) -> Vec<u8> {
    let mut key = b"jobs/ladder/".to_vec();
    key.extend_from_slice(ladder);
    key
}

fn due_key(height: u64) -> Vec<u8> {
    let mut key = b"jobs/due/".to_vec();
    key.extend_from_slice(&height.to_be_bytes());
    key
}

/// The bonded members.
pub fn pool(host: &impl Host) -> Result<Vec<Member>, Refusal> {
    Ok(read_value(host, POOL_KEY)?.unwrap_or_default())
}

/// Job `id`.
pub fn job(host: &impl Host, id: u64) -> Result<Option<Job>, Refusal> {
    read_value(host, &job_key(id))
}

/// Segment `segment` of job `id` (queued and untried when nothing is stored).
pub fn slot(host: &impl Host, id: u64, segment: u32) -> Result<Slot, Refusal> {
    Ok(read_value(host, &slot_key(id, segment))?.unwrap_or_default())
}

/// What slashing has destroyed so far.
pub fn burnt(host: &impl Host) -> Result<u64, Refusal> {
    Ok(read_value(host, BURNT_KEY)?.unwrap_or_default())
}

/// Segments one record timer hashes.
pub const RECORD_CHUNK: u32 = 256;

fn ladder_start(hash: impl Fn(&[u8]) -> [u8; 32], id: u64, args: &PostArgs) -> [u8; 32] {
    hash(&borsh::to_vec(&(b"kinema ladder v1", id, args)).unwrap_or_default())
}

fn ladder_step(
    hash: impl Fn(&[u8]) -> [u8; 32],
    acc: &[u8; 32],
    chunk: &[Vec<Output>],
) -> [u8; 32] {
    hash(&borsh::to_vec(&(acc, chunk)).unwrap_or_default())
}

/// The hash that names a finished job's ladder: a blake3 chain from the job's id and what it
/// asked, over its segments' outputs [`RECORD_CHUNK`] at a time. Anyone holding the accepted
/// results can recompute it; the contract records it a chunk per timer, so no block's end
/// hashes a whole long job.
pub fn ladder_hash(id: u64, args: &PostArgs, outputs: &[Vec<Output>]) -> [u8; 32] {
    let hash = |bytes: &[u8]| *blake3::hash(bytes).as_bytes();
    let mut acc = ladder_start(hash, id, args);
    for chunk in outputs.chunks(RECORD_CHUNK as usize) {
        acc = ladder_step(hash, &acc, chunk);
    }
    acc
}

/// A rendition of a ladder as [`check_ladder`] reads it: its name, and each segment's blake3 and
/// size in segment order.
pub type RenditionOutputs<N> = (N, Vec<([u8; 32], u64)>);

/// Checks that `renditions` (each rung's name and its segments' blake3 and size, in segment
/// order; `kinema_media`'s `Manifest::outputs`) are
/// the ladder job `id` accepted: every rung of the job, every segment, hashing to the ladder
/// hash the chain recorded when it was done. What a ladder's manifest holds, read however the
/// caller reads it (a creator before publishing, a relay before serving, a browser).
pub fn check_ladder<N: AsRef<str>>(
    id: u64,
    job: &Job,
    renditions: &[RenditionOutputs<N>],
) -> Result<(), String> {
    let Some(recorded) = job.ladder else { return Err(format!("job {id} has recorded no ladder")) };
    let rungs = &job.args.ladder.rungs;
    let segments = job.args.segments as usize;
    let mut outputs = vec![Vec::with_capacity(rungs.len()); segments];
    for rung in rungs {
        let Some((_, rendition)) = renditions.iter().find(|(name, _)| name.as_ref() == rung.name)
        else {
            return Err(format!("the manifest has no rendition {} of job {id}", rung.name));
        };
        if rendition.len() != segments {
            return Err(format!(
                "the manifest's {} has {} segments, job {id} {segments}",
                rung.name,
                rendition.len(),
            ));
        }
        for (per_segment, &(hash, size)) in outputs.iter_mut().zip(rendition) {
            per_segment.push(Output { hash, size });
        }
    }
    if renditions.len() != rungs.len() {
        return Err(format!(
            "the manifest has {} renditions, job {id} {}",
            renditions.len(),
            rungs.len()
        ));
    }
    if ladder_hash(id, &job.args, &outputs) != recorded {
        return Err(format!("the manifest's segments are not the ones job {id} accepted"));
    }
    Ok(())
}

fn refuse<T>(why: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal(why.into()))
}

fn emit<T: BorshSerialize>(host: &mut impl Host, event: &T) {
    host.emit(&borsh::to_vec(event).unwrap_or_default());
}

fn load_job(host: &impl Host, id: u64) -> Result<Job, Refusal> {
    job(host, id)?.ok_or_else(|| Refusal(format!("there is no job {id}")))
}

fn member<'a>(pool: &'a mut [Member], who: &Address) -> Option<&'a mut Member> {
    pool.iter_mut().find(|m| &m.address == who)
}

/// The segment's pay: its price times its rungs.
fn segment_pay(job: &Job) -> u64 {
    job.args.price.saturating_mul(job.args.ladder.rungs.len() as u64)
}

fn verify_fee(job: &Job) -> u64 {
    (u128::from(segment_pay(job)) * u128::from(VERIFY_FEE_BPS) / 10_000) as u64
}

fn owe(job: &mut Job, to: Address, amount: u64) {
    match job.owed.iter_mut().find(|(a, _)| *a == to) {
        Some((_, owed)) => *owed = owed.saturating_add(amount),
        None => job.owed.push((to, amount)),
    }
}

fn add_burnt(host: &mut impl Host, amount: u64) -> Result<(), Refusal> {
    let total = burnt(host)?.saturating_add(amount);
    write_value(host, BURNT_KEY, &total);
    Ok(())
}

/// The timers due at a height: entries `0..count` under [`timer_key`], those before `done`
/// handled already.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
struct Due {
    count: u32,
    done: u32,
}

fn timer_key(height: u64, index: u32) -> Vec<u8> {
    let mut key = due_key(height);
    key.extend_from_slice(&index.to_be_bytes());
    key
}

/// Sets `timer` for the end of block `height`: one entry of its own, so setting a timer costs
/// the same however many are set for that height.
fn schedule(host: &mut impl Host, height: u64, timer: Timer) -> Result<(), Refusal> {
    let key = due_key(height);
    let mut due: Due = read_value(host, &key)?.unwrap_or_default();
    write_value(host, &timer_key(height, due.count), &timer);
    due.count += 1;
    write_value(host, &key, &due);
    Ok(())
}

/// A pseudo-random number from a finalized block hash and what it is for.
fn random(host: &impl Host, seed: &[u8; 32], what: &[u8], job: u64, segment: u32, n: u64) -> u64 {
    let bytes = borsh::to_vec(&(seed, what, job, segment, n)).unwrap_or_default();
    let hash = host.hash(&bytes);
    u64::from_le_bytes([hash[0], hash[1], hash[2], hash[3], hash[4], hash[5], hash[6], hash[7]])
}

/// The hash of the newest block the state holds: a block at `height` runs with its parent's.
fn latest_seed(host: &impl Host) -> Result<[u8; 32], Refusal> {
    let parent = host.height().saturating_sub(1);
    block_hash(host, parent)?
        .ok_or_else(|| Refusal(format!("the state holds no hash of block {parent}")))
}

/// The hash of block `at` (the one that holds a result), or the newest one when it is no
/// longer kept.
fn seed_of(host: &impl Host, at: u64) -> Result<[u8; 32], Refusal> {
    match block_hash(host, at)? {
        Some(hash) => Ok(hash),
        None => latest_seed(host),
    }
}

/// Draws one of the members with `role` that are bonded, not suspended and not in `exclude`:
/// uniformly for [`RANDOM_SHARE_BPS`] of draws, by bond otherwise.
fn draw(
    host: &impl Host,
    pool: &[Member],
    role: Role,
    exclude: &[Address],
    seed: &[u8; 32],
    (job, segment, n): (u64, u32, u64),
) -> Option<Address> {
    let now = host.height();
    let eligible: Vec<&Member> = pool
        .iter()
        .filter(|m| m.role == role && m.bond >= MIN_BOND && m.suspended_until <= now)
        .filter(|m| m.tasks < MAX_TASKS)
        .filter(|m| !exclude.contains(&m.address))
        .collect();
    if eligible.is_empty() {
        return None;
    }
    let share = random(host, seed, b"share", job, segment, n) % 10_000;
    let pick = random(host, seed, b"pick", job, segment, n);
    if share < RANDOM_SHARE_BPS {
        return Some(eligible[(pick % eligible.len() as u64) as usize].address);
    }
    let total: u128 = eligible.iter().map(|m| u128::from(m.bond)).sum();
    let mut target = u128::from(pick) % total;
    for m in &eligible {
        let weight = u128::from(m.bond);
        if target < weight {
            return Some(m.address);
        }
        target -= weight;
    }
    eligible.last().map(|m| m.address)
}

/// Cuts [`SLASH_BPS`] of `who`'s bond and unbonding; what was cut.
fn slash(pool: &mut [Member], who: &Address) -> u64 {
    let Some(m) = member(pool, who) else { return 0 };
    let cut = |amount: u64| (u128::from(amount) * u128::from(SLASH_BPS) / 10_000) as u64;
    let (from_bond, from_unbonding) = (cut(m.bond), cut(m.unbonding));
    m.bond -= from_bond;
    m.unbonding -= from_unbonding;
    from_bond + from_unbonding
}

fn suspend(pool: &mut [Member], who: &Address, now: u64) {
    if let Some(m) = member(pool, who) {
        m.suspended_until = m.suspended_until.max(now.saturating_add(SUSPEND_BLOCKS));
    }
}

/// Shares half of `slashed` among `winners` (straight to their balances) and burns the rest.
fn share_slash(host: &mut impl Host, slashed: u64, winners: &[Address]) -> Result<(), Refusal> {
    let mut burn = slashed;
    if !winners.is_empty() {
        let each = slashed / 2 / winners.len() as u64;
        for w in winners {
            accounts::credit(host, w, each)?;
            burn -= each;
        }
    }
    add_burnt(host, burn)
}

fn check_name(name: &str) -> Result<(), Refusal> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if !ok {
        return refuse(format!(
            "rung name {name:?} is not 1 to {MAX_NAME} characters of a-z, 0-9, _ and -"
        ));
    }
    Ok(())
}

fn check_post(args: &PostArgs) -> Result<(), Refusal> {
    if !(1..=MAX_SEGMENTS).contains(&args.segments) {
        return refuse(format!("{} segments: a job has 1 to {MAX_SEGMENTS}", args.segments));
    }
    let ladder = &args.ladder;
    if ladder.codec != "h264" {
        return refuse(format!("codec {:?}: jobs are h264", ladder.codec));
    }
    if !PRESETS.contains(&ladder.preset.as_str()) {
        return refuse(format!("preset {:?} is not one of {}", ladder.preset, PRESETS.join(", ")));
    }
    if ladder.crf > 51 {
        return refuse(format!("CRF {} is over 51", ladder.crf));
    }
    if ladder.rungs.is_empty() || ladder.rungs.len() > MAX_RUNGS {
        return refuse(format!("{} rungs: a ladder has 1 to {MAX_RUNGS}", ladder.rungs.len()));
    }
    for (i, rung) in ladder.rungs.iter().enumerate() {
        check_name(&rung.name)?;
        if ladder.rungs[..i].iter().any(|r| r.name == rung.name) {
            return refuse(format!("rung {:?} is named twice", rung.name));
        }
        let even = |v: u32| v.is_multiple_of(2) && (16..=8192).contains(&v);
        if !even(rung.width) || !even(rung.height) {
            return refuse(format!(
                "rung {:?} is {}x{}: sizes are even, 16 to 8192",
                rung.name, rung.width, rung.height
            ));
        }
        if !(1..=200_000).contains(&rung.max_kbps) {
            return refuse(format!(
                "rung {:?} caps at {} kbit/s: caps are 1 to 200000",
                rung.name, rung.max_kbps
            ));
        }
    }
    if args.price == 0 {
        return refuse("the price is 0");
    }
    if !DEADLINES.contains(&args.deadline) {
        return refuse(format!(
            "deadline {} blocks: deadlines are {} to {}",
            args.deadline,
            DEADLINES.start(),
            DEADLINES.end()
        ));
    }
    if args.verify_bps > 10_000 {
        return refuse(format!("verification rate {} is over 10000 basis points", args.verify_bps));
    }
    Ok(())
}

/// The escrow a job needs: its pay, and one verification fee per segment.
pub fn cost(args: &PostArgs) -> Option<u64> {
    let pay = u128::from(args.price) * args.ladder.rungs.len() as u128;
    let per_segment = pay + pay * u128::from(VERIFY_FEE_BPS) / 10_000;
    u64::try_from(per_segment * u128::from(args.segments)).ok()
}

/// Bonds `args.amount` of the caller's balance as a member with `args.role`.
pub fn bond(host: &mut impl Host, args: &BondArgs) -> Result<(), Refusal> {
    let who = host.caller();
    let mut pool = pool(host)?;
    let full = pool.len() >= MAX_POOL;
    match member(&mut pool, &who) {
        Some(m) if m.role != args.role => {
            return refuse(format!("{} is bonded as a {:?} already", hex(&who), m.role));
        }
        Some(m) => m.bond = m.bond.saturating_add(args.amount),
        None if full => {
            return refuse(format!("the market has its {MAX_POOL} members already"));
        }
        None => pool.push(Member {
            address: who,
            role: args.role,
            bond: args.amount,
            unbonding: 0,
            release_height: 0,
            suspended_until: 0,
            results: 0,
            tasks: 0,
        }),
    }
    accounts::debit(host, &who, args.amount, "to bond")?;
    write_value(host, POOL_KEY, &pool);
    emit(host, &(b"bond", who, args.role, args.amount));
    Ok(())
}

/// Starts unbonding `amount` of the caller's bond; [`withdraw`] pays it back
/// [`UNBONDING_BLOCKS`] blocks later (slashable until then).
pub fn unbond(host: &mut impl Host, amount: u64) -> Result<(), Refusal> {
    let who = host.caller();
    let now = host.height();
    let mut pool = pool(host)?;
    let Some(m) = member(&mut pool, &who) else {
        return refuse(format!("{} has no bond", hex(&who)));
    };
    if m.bond < amount {
        return refuse(format!("bond {} is less than the {amount} to unbond", m.bond));
    }
    m.bond -= amount;
    m.unbonding = m.unbonding.saturating_add(amount);
    m.release_height = now.saturating_add(UNBONDING_BLOCKS);
    write_value(host, POOL_KEY, &pool);
    Ok(())
}

/// Pays the caller's released unbonding back into its balance (once it holds no task); a
/// member left with nothing is removed.
pub fn withdraw(host: &mut impl Host) -> Result<(), Refusal> {
    let who = host.caller();
    let now = host.height();
    let mut pool = pool(host)?;
    let Some(m) = member(&mut pool, &who) else {
        return refuse(format!("{} has no bond", hex(&who)));
    };
    if m.tasks > 0 {
        return refuse(format!("{} holds {} tasks: answer them first", hex(&who), m.tasks));
    }
    if m.unbonding == 0 || m.release_height > now {
        return refuse(format!(
            "nothing to withdraw: {} unbonding, released at height {}",
            m.unbonding, m.release_height
        ));
    }
    let amount = std::mem::take(&mut m.unbonding);
    pool.retain(|m| m.bond > 0 || m.unbonding > 0);
    write_value(host, POOL_KEY, &pool);
    accounts::credit(host, &who, amount)
}

/// Posts a job and escrows its [`cost`]; its segments are drawn one block later.
pub fn post(host: &mut impl Host, args: &PostArgs) -> Result<(), Refusal> {
    check_post(args)?;
    let creator = host.caller();
    let now = host.height();
    let Some(cost) = cost(args) else {
        return refuse("the job's cost overflows");
    };
    accounts::debit(host, &creator, cost, "the job's escrow needs")?;
    let id: u64 = read_value(host, NEXT_KEY)?.unwrap_or_default();
    write_value(host, NEXT_KEY, &(id + 1));
    let job = Job {
        creator,
        args: args.clone(),
        posted: now,
        state: JobState::Open,
        escrow: cost,
        owed: Vec::new(),
        paid: Vec::new(),
        refunded: 0,
        accepted: 0,
        failure: None,
        recording: None,
        ladder: None,
        content: None,
    };
    write_value(host, &job_key(id), &job);
    write_value(host, &latest_key(&creator), &id);
    schedule(host, now + 1, Timer { job: id, segment: 0, stamp: 0, kind: TimerKind::Assign })?;
    emit(host, &(b"job", id, creator, cost));
    Ok(())
}

/// Arguments of [`publish`].
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct PublishArgs {
    /// The job.
    pub job: u64,
    /// The blake3 of the ladder's `manifest.json`.
    pub content: [u8; 32],
}

/// Where the job a content id was published from is recorded.
pub fn content_key(content: &[u8; 32]) -> Vec<u8> {
    let mut key = b"jobs/content/".to_vec();
    key.extend_from_slice(content);
    key
}

/// Records, for a done job of the caller's, the content id its ladder is published under (the
/// blake3 of the manifest built from its accepted results), once. Anyone holding that manifest
/// can check it against the job's recorded [`ladder_hash`]; the chain keeps the link from the
/// content id to the job and its creator.
pub fn publish(host: &mut impl Host, args: &PublishArgs) -> Result<(), Refusal> {
    let mut job = load_job(host, args.job)?;
    if host.caller() != job.creator {
        return refuse(format!("job {} is not {}'s to publish", args.job, hex(&host.caller())));
    }
    if job.state != JobState::Done {
        return refuse(format!("job {} is {:?}, not done", args.job, job.state));
    }
    if let Some(content) = job.content {
        return refuse(format!("job {} is published as {} already", args.job, hex32(&content)));
    }
    let key = content_key(&args.content);
    if let Some(other) = read_value::<u64>(host, &key)? {
        return refuse(format!("content {} is job {other}'s already", hex32(&args.content)));
    }
    job.content = Some(args.content);
    write_value(host, &key, &args.job);
    write_value(host, &job_key(args.job), &job);
    emit(host, &(b"published", args.job, args.content));
    Ok(())
}

fn hex32(bytes: &[u8; 32]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Cancels an open job of the caller's: accepted work is paid, the rest of the escrow returns.
pub fn cancel(host: &mut impl Host, id: u64) -> Result<(), Refusal> {
    let mut job = load_job(host, id)?;
    if host.caller() != job.creator {
        return refuse(format!("job {id} is not {}'s to cancel", hex(&host.caller())));
    }
    if job.state != JobState::Open {
        return refuse(format!("job {id} is {:?} already", job.state));
    }
    if job.recording.is_some() {
        return refuse(format!("every segment of job {id} is accepted: it is being recorded"));
    }
    end(host, id, &mut job, JobState::Cancelled)
}

/// A worker's result for the segment assigned to it.
pub fn result(host: &mut impl Host, args: &ResultArgs) -> Result<(), Refusal> {
    let who = host.caller();
    let now = host.height();
    let job = open_job(host, args.job)?;
    let mut slot = existing_slot(host, &job, args.job, args.segment)?;
    match slot.stage {
        Stage::Assigned { worker, due } if worker == who => {
            if now > due {
                return refuse(format!("the deadline (height {due}) has passed"));
            }
        }
        _ => {
            return refuse(format!(
                "segment {} of job {} is not assigned to {}",
                args.segment,
                args.job,
                hex(&who)
            ));
        }
    }
    let rungs = job.args.ladder.rungs.len();
    if args.outputs.len() != rungs {
        return refuse(format!("{} outputs for a ladder of {rungs} rungs", args.outputs.len()));
    }
    if let Some(bad) = args.outputs.iter().find(|o| !(1..=MAX_OUTPUT_BYTES).contains(&o.size)) {
        return refuse(format!(
            "an output of {} bytes: outputs are 1 to {MAX_OUTPUT_BYTES}",
            bad.size
        ));
    }
    let mut pool = pool(host)?;
    take_task(host, &mut pool, &who, args.job, args.segment)?;
    write_value(host, POOL_KEY, &pool);
    slot.stage = Stage::Submitted(Work { worker: who, outputs: args.outputs.clone(), at: now });
    slot.stamp += 1;
    let timer =
        Timer { job: args.job, segment: args.segment, stamp: slot.stamp, kind: TimerKind::Sample };
    schedule(host, now + 1, timer)?;
    write_value(host, &slot_key(args.job, args.segment), &slot);
    emit(host, &(b"result", args.job, args.segment, who));
    Ok(())
}

/// A drawn verifier's verdict on a result.
pub fn verdict(host: &mut impl Host, args: &VerdictArgs) -> Result<(), Refusal> {
    let who = host.caller();
    let now = host.height();
    if args.reasons.len() > MAX_REASONS {
        return refuse(format!("the reasons are {} bytes, over {MAX_REASONS}", args.reasons.len()));
    }
    let mut job = open_job(host, args.job)?;
    let mut slot = existing_slot(host, &job, args.job, args.segment)?;
    let Stage::Checking { check, .. } = &mut slot.stage else {
        return refuse(format!(
            "segment {} of job {} is not being checked",
            args.segment, args.job
        ));
    };
    if !check.verifiers.contains(&who) {
        return refuse(format!(
            "{} is not drawn to check segment {} of job {}",
            hex(&who),
            args.segment,
            args.job
        ));
    }
    if check.votes.iter().any(|(v, _)| *v == who) {
        return refuse(format!("{} has given its verdict already", hex(&who)));
    }
    if now > check.due {
        return refuse(format!("the verdict was due by height {}", check.due));
    }
    check.votes.push((who, args.pass));
    let complete = check.votes.len() == check.verifiers.len();
    slot.verdicts.push(Verdict {
        verifier: who,
        pass: args.pass,
        reasons: args.reasons.clone(),
        height: now,
    });
    emit(host, &(b"verdict", args.job, args.segment, who, args.pass));
    let mut pool = pool(host)?;
    take_task(host, &mut pool, &who, args.job, args.segment)?;
    if complete {
        settle(host, &mut pool, args.job, &mut job, args.segment, &mut slot)?;
    }
    write_value(host, POOL_KEY, &pool);
    write_value(host, &slot_key(args.job, args.segment), &slot);
    write_value(host, &job_key(args.job), &job);
    Ok(())
}

/// Challenges a result in its window: three verifiers are drawn, the losing side slashed.
pub fn challenge(host: &mut impl Host, args: &ChallengeArgs) -> Result<(), Refusal> {
    let who = host.caller();
    let now = host.height();
    let job = open_job(host, args.job)?;
    let mut slot = existing_slot(host, &job, args.job, args.segment)?;
    let mut pool = pool(host)?;
    match member(&mut pool, &who) {
        Some(m) if m.bond >= MIN_BOND => {}
        _ => return refuse(format!("{} has no bond of {MIN_BOND} to challenge with", hex(&who))),
    }
    let Stage::Window { work, review, .. } = &slot.stage else {
        return refuse(format!(
            "segment {} of job {} has no result in its challenge window",
            args.segment, args.job
        ));
    };
    if who == work.worker {
        return refuse("a worker cannot challenge its own result");
    }
    let mut exclude = review.drawn.clone();
    exclude.extend([work.worker, who]);
    let latest = latest_seed(host)?;
    let mut verifiers = Vec::new();
    for n in 0..CHALLENGE_VERIFIERS as u64 {
        let key = (args.job, args.segment, 100 + n);
        match draw(host, &pool, Role::Verifier, &exclude, &latest, key) {
            Some(v) => {
                verifiers.push(v);
                exclude.push(v);
            }
            None => {
                return refuse(format!(
                    "{CHALLENGE_VERIFIERS} verifiers are needed and only {} are eligible",
                    verifiers.len()
                ));
            }
        }
    }
    let (work, mut review) = (work.clone(), review.clone());
    review.drawn.extend(&verifiers);
    for v in &verifiers {
        let task = Task { job: args.job, segment: args.segment, kind: TaskKind::Check };
        give_task(host, &mut pool, v, task)?;
    }
    write_value(host, POOL_KEY, &pool);
    let check =
        Check { verifiers, votes: Vec::new(), due: now + VERDICT_BLOCKS, challenger: Some(who) };
    emit(host, &(b"challenge", args.job, args.segment, who, &check.verifiers));
    slot.stage = Stage::Checking { work, review, check };
    slot.stamp += 1;
    let timer = Timer {
        job: args.job,
        segment: args.segment,
        stamp: slot.stamp,
        kind: TimerKind::VerdictDue,
    };
    schedule(host, now + VERDICT_BLOCKS + 1, timer)?;
    write_value(host, &slot_key(args.job, args.segment), &slot);
    Ok(())
}

/// The end of a block: handles timers up to [`WORK_PER_BLOCK`], those left from earlier
/// blocks first, then those due now (what does not fit waits for the next block). Only the
/// chain calls it.
pub fn tick(host: &mut impl Host) -> Result<(), Refusal> {
    if host.caller() != SYSTEM {
        return refuse("only the chain itself ends a block");
    }
    let now = host.height();
    // Heights whose timers did not all fit their block, oldest first, then this one.
    let mut heights: Vec<u64> = read_value(host, BACKLOG_KEY)?.unwrap_or_default();
    heights.push(now);
    let mut backlog = Vec::new();
    let mut budget = WORK_PER_BLOCK;
    // Read when a timer first needs it: a block with nothing due costs two reads.
    let mut members = None;
    for height in heights {
        let key = due_key(height);
        let Some(mut due) = read_value::<Due>(host, &key)? else { continue };
        while due.done < due.count {
            let entry = timer_key(height, due.done);
            if let Some(timer) = read_value::<Timer>(host, &entry)? {
                if timer.kind.work() > budget {
                    break;
                }
                budget -= timer.kind.work();
                let pool = match &mut members {
                    Some(pool) => pool,
                    None => members.insert(pool(host)?),
                };
                fire(host, pool, timer)?;
            }
            host.remove(&entry);
            due.done += 1;
        }
        if due.done < due.count {
            write_value(host, &key, &due);
            backlog.push(height);
        } else {
            host.remove(&key);
        }
    }
    if backlog.is_empty() {
        if read_value::<Vec<u64>>(host, BACKLOG_KEY)?.is_some() {
            host.remove(BACKLOG_KEY);
        }
    } else {
        write_value(host, BACKLOG_KEY, &backlog);
    }
    if let Some(pool) = members {
        write_value(host, POOL_KEY, &pool);
    }
    Ok(())
}

/// The verifiers of a check that have not answered.
fn silent(check: &Check) -> Vec<Address> {
    let answered = |v: &Address| check.votes.iter().any(|(w, _)| w == v);
    check.verifiers.iter().filter(|v| !answered(v)).copied().collect()
}

fn fire(host: &mut impl Host, pool: &mut [Member], timer: Timer) -> Result<(), Refusal> {
    let Some(mut job) = job(host, timer.job)? else { return Ok(()) };
    if job.state != JobState::Open {
        return release(host, pool, timer);
    }
    let now = host.height();
    if timer.kind == TimerKind::Assign {
        let end = timer.segment.saturating_add(ASSIGN_BATCH).min(job.args.segments);
        for segment in timer.segment..end {
            if job.state != JobState::Open {
                break;
            }
            let mut slot = slot(host, timer.job, segment)?;
            if slot.stage == Stage::Queued {
                assign(host, pool, timer.job, &mut job, segment, &mut slot)?;
                write_value(host, &slot_key(timer.job, segment), &slot);
            }
        }
        if end < job.args.segments {
            let next = Timer { segment: end, ..timer };
            schedule(host, now + 1, next)?;
        }
        write_value(host, &job_key(timer.job), &job);
        return Ok(());
    }
    if timer.kind == TimerKind::Record {
        return record(host, timer.job, &mut job);
    }
    let mut slot = slot(host, timer.job, timer.segment)?;
    if slot.stamp != timer.stamp {
        return Ok(());
    }
    let (id, segment) = (timer.job, timer.segment);
    match (timer.kind, slot.stage.clone()) {
        (TimerKind::Redraw, Stage::Queued) => {
            assign(host, pool, id, &mut job, segment, &mut slot)?;
        }
        (TimerKind::Expire, Stage::Assigned { worker, .. }) => {
            take_task(host, pool, &worker, id, segment)?;
            suspend(pool, &worker, now);
            emit(host, &(b"expired", id, segment, worker));
            assign(host, pool, id, &mut job, segment, &mut slot)?;
        }
        (TimerKind::Sample, Stage::Submitted(work)) => {
            let seed = seed_of(host, work.at)?;
            let results = member(pool, &work.worker).map_or(0, |m| {
                m.results = m.results.saturating_add(1);
                m.results
            });
            let checked = results <= FIRST_CHECKED
                || random(host, &seed, b"sample", id, segment, u64::from(slot.stamp)) % 10_000
                    < u64::from(job.args.verify_bps);
            let review = Review { seed, passed_by: None, drawn: Vec::new() };
            if checked {
                let check =
                    Check { verifiers: Vec::new(), votes: Vec::new(), due: 0, challenger: None };
                slot.stage = Stage::Checking { work, review, check };
                draw_verifier(host, pool, id, &mut job, segment, &mut slot)?;
            } else {
                open_window(host, id, segment, &mut slot, work, review)?;
            }
        }
        (TimerKind::VerdictDue, Stage::Checking { check, .. }) => {
            for v in silent(&check) {
                take_task(host, pool, &v, id, segment)?;
                suspend(pool, &v, now);
                emit(host, &(b"no verdict", id, segment, v));
            }
            if check.challenger.is_some() {
                settle(host, pool, id, &mut job, segment, &mut slot)?;
            } else {
                draw_verifier(host, pool, id, &mut job, segment, &mut slot)?;
            }
        }
        (TimerKind::Close, Stage::Window { work, .. }) => {
            accept(host, id, &mut job, segment, &mut slot, work)?;
        }
        _ => return Ok(()),
    }
    write_value(host, &slot_key(id, segment), &slot);
    write_value(host, &job_key(id), &job);
    Ok(())
}

/// A deadline of a job that ended: whoever still held the task is freed of it.
fn release(host: &mut impl Host, pool: &mut [Member], timer: Timer) -> Result<(), Refusal> {
    if !matches!(timer.kind, TimerKind::Expire | TimerKind::VerdictDue) {
        return Ok(());
    }
    let slot = slot(host, timer.job, timer.segment)?;
    if slot.stamp != timer.stamp {
        return Ok(());
    }
    let holders = match &slot.stage {
        Stage::Assigned { worker, .. } => vec![*worker],
        Stage::Checking { check, .. } => silent(check),
        _ => Vec::new(),
    };
    for who in holders {
        take_task(host, pool, &who, timer.job, timer.segment)?;
    }
    Ok(())
}

/// Takes a caught cheat's other assignments away and draws them again (job `id` is the one in
/// hand, `job`; any other is read and written here).
fn revoke(
    host: &mut impl Host,
    pool: &mut [Member],
    id: u64,
    job: &mut Job,
    cheat: &Address,
) -> Result<(), Refusal> {
    for task in tasks(host, cheat)? {
        let mut slot = slot(host, task.job, task.segment)?;
        if !matches!(slot.stage, Stage::Assigned { worker, .. } if worker == *cheat) {
            continue;
        }
        take_task(host, pool, cheat, task.job, task.segment)?;
        emit(host, &(b"revoked", task.job, task.segment, *cheat));
        if task.job == id {
            if job.state == JobState::Open {
                assign(host, pool, id, job, task.segment, &mut slot)?;
            }
        } else {
            let Some(mut other) = self::job(host, task.job)? else { continue };
            if other.state != JobState::Open {
                continue;
            }
            assign(host, pool, task.job, &mut other, task.segment, &mut slot)?;
            write_value(host, &job_key(task.job), &other);
        }
        write_value(host, &slot_key(task.job, task.segment), &slot);
    }
    Ok(())
}

/// Draws a worker for a queued segment (or fails the job when its attempts are used up).
fn assign(
    host: &mut impl Host,
    pool: &mut [Member],
    id: u64,
    job: &mut Job,
    segment: u32,
    slot: &mut Slot,
) -> Result<(), Refusal> {
    let now = host.height();
    if slot.attempts >= MAX_ATTEMPTS {
        let why = format!("segment {segment} was tried {MAX_ATTEMPTS} times");
        job.failure = Some(why);
        return end(host, id, job, JobState::Failed);
    }
    slot.stamp += 1;
    let seed = latest_seed(host)?;
    let key = (id, segment, u64::from(slot.attempts));
    let Some(worker) = draw(host, pool, Role::Worker, &slot.tried, &seed, key) else {
        // Nobody eligible now: queued, tried again in a while.
        slot.stage = Stage::Queued;
        let timer = Timer { job: id, segment, stamp: slot.stamp, kind: TimerKind::Redraw };
        return schedule(host, now + RETRY_BLOCKS, timer);
    };
    slot.attempts += 1;
    slot.tried.push(worker);
    give_task(host, pool, &worker, Task { job: id, segment, kind: TaskKind::Transcode })?;
    let due = now + job.args.deadline;
    slot.stage = Stage::Assigned { worker, due };
    schedule(
        host,
        due + 1,
        Timer { job: id, segment, stamp: slot.stamp, kind: TimerKind::Expire },
    )?;
    emit(host, &(b"assigned", id, segment, worker, due));
    Ok(())
}

/// Draws the next verifier of a result that is to be checked. After [`MAX_VERIFIER_DRAWS`]
/// verifiers (or every one there is) gave no verdict the result is not accepted unchecked (no
/// evidence is no pass): it is dropped, no one slashed, and the segment drawn to another
/// worker. With no verifier eligible yet the draw is tried again [`RETRY_BLOCKS`] later.
fn draw_verifier(
    host: &mut impl Host,
    pool: &mut [Member],
    id: u64,
    job: &mut Job,
    segment: u32,
    slot: &mut Slot,
) -> Result<(), Refusal> {
    let now = host.height();
    let Stage::Checking { work, mut review, .. } = slot.stage.clone() else {
        return Ok(());
    };
    if review.drawn.len() >= MAX_VERIFIER_DRAWS {
        emit(host, &(b"unchecked", id, segment, work.worker));
        return assign(host, pool, id, job, segment, slot);
    }
    let mut exclude = review.drawn.clone();
    exclude.push(work.worker);
    let latest = latest_seed(host)?;
    let key = (id, segment, review.drawn.len() as u64);
    let (verifiers, due) = match draw(host, pool, Role::Verifier, &exclude, &latest, key) {
        // Every verifier there is was asked and none answered: no evidence either way.
        None if !review.drawn.is_empty() => {
            emit(host, &(b"unchecked", id, segment, work.worker));
            return assign(host, pool, id, job, segment, slot);
        }
        Some(verifier) => {
            review.drawn.push(verifier);
            give_task(host, pool, &verifier, Task { job: id, segment, kind: TaskKind::Check })?;
            emit(host, &(b"check", id, segment, verifier, review.seed));
            (vec![verifier], now + VERDICT_BLOCKS)
        }
        None => (Vec::new(), now + RETRY_BLOCKS),
    };
    let check = Check { verifiers, votes: Vec::new(), due, challenger: None };
    slot.stage = Stage::Checking { work, review, check };
    slot.stamp += 1;
    let timer = Timer { job: id, segment, stamp: slot.stamp, kind: TimerKind::VerdictDue };
    schedule(host, due + 1, timer)
}

fn open_window(
    host: &mut impl Host,
    id: u64,
    segment: u32,
    slot: &mut Slot,
    work: Work,
    review: Review,
) -> Result<(), Refusal> {
    let ends = host.height() + WINDOW;
    slot.stage = Stage::Window { work, review, ends };
    slot.stamp += 1;
    schedule(host, ends, Timer { job: id, segment, stamp: slot.stamp, kind: TimerKind::Close })
}

/// A check whose answers are in (or due): a drawn verifier's verdict, or a challenge's
/// majority.
fn settle(
    host: &mut impl Host,
    pool: &mut [Member],
    id: u64,
    job: &mut Job,
    segment: u32,
    slot: &mut Slot,
) -> Result<(), Refusal> {
    let Stage::Checking { work, mut review, check } = slot.stage.clone() else {
        return Ok(());
    };
    let now = host.height();
    let passes = check.votes.iter().filter(|(_, pass)| *pass).count();
    let fails = check.votes.len() - passes;
    let voted = |pass: bool| -> Vec<Address> {
        check.votes.iter().filter(|(_, p)| *p == pass).map(|(v, _)| *v).collect()
    };
    let worker = work.worker;
    match check.challenger {
        None => {
            let Some(&verifier) = check.verifiers.first() else { return Ok(()) };
            if fails > 0 {
                // The worker cheated: slashed, half of it to the verifier, drawn again.
                let slashed = slash(pool, &worker);
                suspend(pool, &worker, now);
                share_slash(host, slashed, &[verifier])?;
                emit(host, &(b"slashed", id, segment, worker, slashed));
                assign(host, pool, id, job, segment, slot)?;
                revoke(host, pool, id, job, &worker)?;
            } else {
                let fee = verify_fee(job);
                let reserved =
                    segment_pay(job).saturating_mul(u64::from(job.args.segments - job.accepted));
                if job.escrow.saturating_sub(reserved) >= fee {
                    job.escrow -= fee;
                    owe(job, verifier, fee);
                }
                review.passed_by = Some(verifier);
                open_window(host, id, segment, slot, work, review)?;
            }
        }
        // Nobody answered: the challenge proves nothing either way.
        Some(_) if check.votes.is_empty() => open_window(host, id, segment, slot, work, review)?,
        Some(challenger) if fails > passes => {
            let mut slashed = slash(pool, &worker);
            suspend(pool, &worker, now);
            if let Some(v) = review.passed_by {
                slashed += slash(pool, &v);
            }
            let mut winners = voted(false);
            winners.push(challenger);
            share_slash(host, slashed, &winners)?;
            emit(host, &(b"challenge upheld", id, segment, worker, slashed));
            assign(host, pool, id, job, segment, slot)?;
            revoke(host, pool, id, job, &worker)?;
        }
        Some(challenger) => {
            let slashed = slash(pool, &challenger);
            share_slash(host, slashed, &voted(true))?;
            emit(host, &(b"challenge rejected", id, segment, challenger, slashed));
            accept(host, id, job, segment, slot, work)?;
        }
    }
    Ok(())
}

fn accept(
    host: &mut impl Host,
    id: u64,
    job: &mut Job,
    segment: u32,
    slot: &mut Slot,
    work: Work,
) -> Result<(), Refusal> {
    let pay = segment_pay(job);
    job.escrow = job
        .escrow
        .checked_sub(pay)
        .ok_or_else(|| Refusal(format!("job {id}'s escrow cannot pay segment {segment}")))?;
    owe(job, work.worker, pay);
    job.accepted += 1;
    emit(host, &(b"accepted", id, segment, work.worker));
    slot.stage = Stage::Accepted(work);
    slot.stamp += 1;
    if job.accepted == job.args.segments {
        // Recorded from the next block on, RECORD_CHUNK segments a timer.
        job.recording = Some((0, ladder_start(|b| host.hash(b), id, &job.args)));
        schedule(
            host,
            host.height() + 1,
            Timer { job: id, segment: 0, stamp: 0, kind: TimerKind::Record },
        )?;
    }
    Ok(())
}

/// Hashes the next [`RECORD_CHUNK`] segments of a job whose segments are all accepted; after
/// the last, records the ladder and ends the job.
fn record(host: &mut impl Host, id: u64, job: &mut Job) -> Result<(), Refusal> {
    let Some((from, acc)) = job.recording else { return Ok(()) };
    let to = from.saturating_add(RECORD_CHUNK).min(job.args.segments);
    let mut chunk = Vec::with_capacity((to - from) as usize);
    for s in from..to {
        match slot(host, id, s)?.stage {
            Stage::Accepted(work) => chunk.push(work.outputs),
            _ => return refuse(format!("job {id} counts segment {s} accepted and it is not")),
        }
    }
    let acc = ladder_step(|b| host.hash(b), &acc, &chunk);
    if to < job.args.segments {
        job.recording = Some((to, acc));
        schedule(
            host,
            host.height() + 1,
            Timer { job: id, segment: to, stamp: 0, kind: TimerKind::Record },
        )?;
        write_value(host, &job_key(id), job);
        return Ok(());
    }
    job.recording = None;
    job.ladder = Some(acc);
    write_value(host, &ladder_key(&acc), &id);
    end(host, id, job, JobState::Done)
}

/// Ends a job: everyone owed is paid, the unspent escrow returns to the creator.
fn end(host: &mut impl Host, id: u64, job: &mut Job, state: JobState) -> Result<(), Refusal> {
    for (to, amount) in std::mem::take(&mut job.owed) {
        accounts::credit(host, &to, amount)?;
        match job.paid.iter_mut().find(|(a, _)| *a == to) {
            Some((_, paid)) => *paid = paid.saturating_add(amount),
            None => job.paid.push((to, amount)),
        }
    }
    let refund = std::mem::take(&mut job.escrow);
    accounts::credit(host, &job.creator, refund)?;
    job.refunded = refund;
    job.state = state;
    write_value(host, &job_key(id), job);
    emit(host, &(b"ended", id, state, refund));
    Ok(())
}

fn open_job(host: &impl Host, id: u64) -> Result<Job, Refusal> {
    let job = load_job(host, id)?;
    if job.state != JobState::Open {
        return refuse(format!("job {id} is {:?}", job.state));
    }
    Ok(job)
}

fn existing_slot(host: &impl Host, job: &Job, id: u64, segment: u32) -> Result<Slot, Refusal> {
    if segment >= job.args.segments {
        return refuse(format!("job {id} has {} segments, not {}", job.args.segments, segment + 1));
    }
    slot(host, id, segment)
}

fn hex(address: &Address) -> String {
    address.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryHost;
    use crate::accounts::Account;

    const CREATOR: Address = [0xc0; 20];
    const WORKERS: [Address; 3] = [[0xa1; 20], [0xa2; 20], [0xa3; 20]];
    const VERIFIERS: [Address; 4] = [[0xb1; 20], [0xb2; 20], [0xb3; 20], [0xb4; 20]];
    const BOND: u64 = 100_000;

    /// A chain in memory: blocks with hashes, the end of each block's tick.
    struct Chain {
        host: MemoryHost,
        total: u64,
    }

    impl Chain {
        fn new() -> Self {
            let mut host = MemoryHost { height: 1, ..Default::default() };
            let mut total = 0;
            for who in [CREATOR].iter().chain(&WORKERS).chain(&VERIFIERS) {
                let account = Account { balance: 10_000_000, ..Default::default() };
                write_value(&mut host, &accounts::key(who), &account);
                total += account.balance;
            }
            write_value(&mut host, &crate::block_hash_key(0), &[0u8; 32]);
            let mut chain = Self { host, total };
            for w in WORKERS {
                chain.call(w, |h| bond(h, &BondArgs { role: Role::Worker, amount: BOND })).unwrap();
            }
            for v in VERIFIERS {
                chain
                    .call(v, |h| bond(h, &BondArgs { role: Role::Verifier, amount: BOND }))
                    .unwrap();
            }
            chain
        }

        /// Runs `f` as `who` like a transaction: its writes stay only when it succeeds.
        fn call(
            &mut self,
            who: Address,
            f: impl FnOnce(&mut MemoryHost) -> Result<(), Refusal>,
        ) -> Result<(), Refusal> {
            let mut scratch = self.host.clone();
            scratch.caller = who;
            f(&mut scratch)?;
            self.host = scratch;
            Ok(())
        }

        /// Ends the block (the tick) and starts the next one with a fresh parent hash.
        fn next_block(&mut self) {
            self.call(SYSTEM, tick).unwrap();
            let h = self.host.height;
            let hash = self.host.hash(&h.to_le_bytes());
            write_value(&mut self.host, &crate::block_hash_key(h), &hash);
            self.host.height += 1;
        }

        fn blocks(&mut self, n: u64) {
            for _ in 0..n {
                self.next_block();
            }
        }

        /// Nobody holds a task, and every member's count says so.
        fn assert_no_tasks(&self) {
            for m in pool(&self.host).unwrap() {
                assert_eq!(m.tasks, 0, "{m:?}");
                assert_eq!(tasks(&self.host, &m.address).unwrap(), vec![]);
            }
        }

        fn balance(&self, who: &Address) -> u64 {
            read_value::<Account>(&self.host, &accounts::key(who))
                .unwrap()
                .unwrap_or_default()
                .balance
        }

        fn member(&self, who: &Address) -> Member {
            pool(&self.host).unwrap().into_iter().find(|m| &m.address == who).unwrap()
        }

        fn job(&self, id: u64) -> Job {
            job(&self.host, id).unwrap().unwrap()
        }

        fn outputs(&self, id: u64) -> Vec<Vec<Output>> {
            (0..self.job(id).args.segments)
                .map(|s| match self.slot(id, s).stage {
                    Stage::Accepted(work) => work.outputs,
                    stage => panic!("{stage:?}"),
                })
                .collect()
        }

        fn slot(&self, id: u64, segment: u32) -> Slot {
            slot(&self.host, id, segment).unwrap()
        }

        /// Every unit of value: balances, bonds, open jobs' escrow and what they owe, burnt.
        fn value(&self) -> u64 {
            let mut sum = burnt(&self.host).unwrap();
            for who in [CREATOR].iter().chain(&WORKERS).chain(&VERIFIERS) {
                sum += self.balance(who);
            }
            for m in pool(&self.host).unwrap() {
                sum += m.bond + m.unbonding;
            }
            let next: u64 = read_value(&self.host, NEXT_KEY).unwrap().unwrap_or_default();
            for id in 0..next {
                let job = self.job(id);
                sum += job.escrow + job.owed.iter().map(|(_, a)| a).sum::<u64>();
            }
            sum
        }

        fn post(&mut self, segments: u32, verify_bps: u16) -> u64 {
            let args = post_args(segments, verify_bps);
            self.call(CREATOR, |h| post(h, &args)).unwrap();
            read_value(&self.host, &latest_key(&CREATOR)).unwrap().unwrap()
        }

        /// Answers every assignment and every check (as `judge` says) until nothing moves.
        fn work(&mut self, id: u64, judge: impl Fn(&Address, u32) -> bool, blocks: u64) {
            for _ in 0..blocks {
                let segments = self.job(id).args.segments;
                for s in 0..segments {
                    match self.slot(id, s).stage {
                        Stage::Assigned { worker, .. } => {
                            let args =
                                ResultArgs { job: id, segment: s, outputs: outputs(s, &worker) };
                            self.call(worker, |h| result(h, &args)).unwrap();
                        }
                        Stage::Checking { work: Work { worker, .. }, check, .. } => {
                            for v in check
                                .verifiers
                                .iter()
                                .filter(|v| !check.votes.iter().any(|(w, _)| w == *v))
                            {
                                let pass = judge(&worker, s);
                                let args = VerdictArgs {
                                    job: id,
                                    segment: s,
                                    pass,
                                    reasons: "seen".into(),
                                };
                                self.call(*v, |h| verdict(h, &args)).unwrap();
                            }
                        }
                        _ => {}
                    }
                }
                self.next_block();
                if self.job(id).state != JobState::Open {
                    return;
                }
            }
        }
    }

    fn post_args(segments: u32, verify_bps: u16) -> PostArgs {
        let rung = |name: &str, width, height, max_kbps| Rung {
            name: name.into(),
            width,
            height,
            max_kbps,
        };
        PostArgs {
            source: [5; 32],
            segments,
            ladder: Ladder {
                codec: "h264".into(),
                preset: "veryfast".into(),
                crf: 23,
                rungs: vec![rung("360p", 640, 360, 1_000), rung("240p", 426, 240, 500)],
            },
            price: 100,
            deadline: 5,
            verify_bps,
        }
    }

    fn outputs(segment: u32, worker: &Address) -> Vec<Output> {
        (0..2u8).map(|r| Output { hash: [segment as u8 ^ worker[0] ^ r; 32], size: 1000 }).collect()
    }

    #[test]
    fn an_honest_job_is_done_paid_refunded_and_recorded_with_every_unit_accounted_for() {
        let mut chain = Chain::new();
        let before = chain.value();
        assert_eq!(before, chain.total);
        let id = chain.post(6, DEFAULT_VERIFY_BPS);
        let cost = cost(&post_args(6, DEFAULT_VERIFY_BPS)).unwrap();
        assert_eq!(cost, 6 * 200 + 6 * 40);
        assert_eq!(chain.balance(&CREATOR), 10_000_000 - cost);
        chain.blocks(2);
        // At the end of the block after the post, every segment has a worker, drawn from the
        // hash of the block that posted it.
        for s in 0..6 {
            assert!(matches!(chain.slot(id, s).stage, Stage::Assigned { .. }), "{s}");
        }
        chain.work(id, |_, _| true, 40);
        let job = chain.job(id);
        assert_eq!(job.state, JobState::Done, "{job:?}");
        assert_eq!((job.accepted, job.escrow, job.owed.len()), (6, 0, 0));
        // Every result was among its worker's first ten: every one was checked, every verdict paid.
        let verdicts: usize = (0..6).map(|s| chain.slot(id, s).verdicts.len()).sum();
        assert_eq!(verdicts, 6);
        let paid: u64 = job.paid.iter().map(|(_, a)| a).sum();
        assert_eq!(paid + job.refunded, cost);
        assert_eq!(job.refunded, 0, "each segment's verification reserve paid its verdict");
        let ladder = job.ladder.unwrap();
        assert_eq!(read_value::<u64>(&chain.host, &ladder_key(&ladder)).unwrap(), Some(id));
        assert_eq!(ladder, ladder_hash(id, &job.args, &chain.outputs(id)));
        // Its creator, and no one else, names the content once.
        let content = PublishArgs { job: id, content: [9; 32] };
        let stranger = chain.call(WORKERS[0], |h| publish(h, &content)).unwrap_err();
        assert!(stranger.0.contains("not"), "{stranger:?}");
        chain.call(CREATOR, |h| publish(h, &content)).unwrap();
        assert_eq!(read_value::<u64>(&chain.host, &content_key(&[9; 32])).unwrap(), Some(id));
        assert_eq!(chain.job(id).content, Some([9; 32]));
        assert!(chain.call(CREATOR, |h| publish(h, &content)).unwrap_err().0.contains("already"));
        assert_eq!(chain.value(), before);
        for w in WORKERS.iter().chain(&VERIFIERS) {
            assert_eq!(chain.member(w).bond, BOND, "nobody honest is slashed");
        }
        chain.assert_no_tasks();
    }

    #[test]
    fn a_failing_verdict_slashes_the_cheat_pays_its_verifier_and_draws_someone_else() {
        let mut chain = Chain::new();
        let before = chain.value();
        let id = chain.post(4, DEFAULT_VERIFY_BPS);
        chain.blocks(2);
        let Stage::Assigned { worker: cheat, .. } = chain.slot(id, 0).stage else { panic!() };
        let verifier_balances: Vec<u64> = VERIFIERS.iter().map(|v| chain.balance(v)).collect();
        chain.work(id, |w, _| *w != cheat, 60);
        let job = chain.job(id);
        assert_eq!(job.state, JobState::Done, "{job:?}");
        let slot = chain.slot(id, 0);
        let Stage::Accepted(Work { worker, .. }) = slot.stage else { panic!() };
        assert_ne!(worker, cheat);
        assert_eq!(
            slot.tried.iter().filter(|w| **w == cheat).count(),
            1,
            "never twice to one worker"
        );
        assert!(slot.verdicts.iter().any(|v| !v.pass));
        let m = chain.member(&cheat);
        assert!(m.bond < BOND, "the cheat is slashed");
        assert!(m.suspended_until > chain.host.height);
        assert!(!job.paid.iter().any(|(a, _)| *a == cheat), "a cheat earns nothing");
        for w in WORKERS.iter().filter(|w| **w != cheat) {
            assert_eq!(chain.member(w).bond, BOND);
        }
        let gained: u64 =
            VERIFIERS.iter().zip(&verifier_balances).map(|(v, b)| chain.balance(v) - b).sum();
        assert!(gained > 0);
        assert!(burnt(&chain.host).unwrap() > 0);
        assert_eq!(chain.value(), before);
        chain.assert_no_tasks();
    }

    #[test]
    fn a_caught_cheat_loses_the_other_segments_it_holds() {
        let mut chain = Chain::new();
        let before = chain.value();
        let id = chain.post(4, DEFAULT_VERIFY_BPS);
        chain.blocks(2);
        // Four segments among three workers: one holds two.
        let cheat = *WORKERS
            .iter()
            .find(|w| tasks(&chain.host, w).unwrap().len() >= 2)
            .expect("one worker holds two segments");
        let held = tasks(&chain.host, &cheat).unwrap();
        let (first, other) = (held[0].segment, held[1].segment);
        let args = ResultArgs { job: id, segment: first, outputs: outputs(first, &cheat) };
        chain.call(cheat, |h| result(h, &args)).unwrap();
        chain.blocks(2);
        let Stage::Checking { check, .. } = chain.slot(id, first).stage else { panic!() };
        let fail = VerdictArgs { job: id, segment: first, pass: false, reasons: "logo".into() };
        chain.call(check.verifiers[0], |h| verdict(h, &fail)).unwrap();
        assert!(chain.member(&cheat).bond < BOND);
        assert_eq!(tasks(&chain.host, &cheat).unwrap(), vec![], "nothing left to the cheat");
        for s in [first, other] {
            let slot = chain.slot(id, s);
            assert!(
                matches!(slot.stage, Stage::Assigned { worker, .. } if worker != cheat),
                "{slot:?}"
            );
        }
        let late = ResultArgs { job: id, segment: other, outputs: outputs(other, &cheat) };
        assert!(chain.call(cheat, |h| result(h, &late)).unwrap_err().0.contains("not assigned"));
        chain.work(id, |w, _| *w != cheat, 60);
        assert_eq!(chain.job(id).state, JobState::Done);
        assert_eq!(chain.value(), before);
        chain.assert_no_tasks();
    }

    #[test]
    fn a_result_no_verifier_answers_for_is_not_accepted_unchecked() {
        let mut chain = Chain::new();
        let before = chain.value();
        let id = chain.post(1, 10_000);
        chain.blocks(2);
        let Stage::Assigned { worker, .. } = chain.slot(id, 0).stage else { panic!() };
        let args = ResultArgs { job: id, segment: 0, outputs: outputs(0, &worker) };
        chain.call(worker, |h| result(h, &args)).unwrap();
        // Three verifiers in turn say nothing.
        let mut silent = Vec::new();
        for _ in 0..(MAX_VERIFIER_DRAWS as u64 * (VERDICT_BLOCKS + 2) + 4) {
            chain.next_block();
            if let Stage::Checking { check, .. } = chain.slot(id, 0).stage {
                for v in check.verifiers {
                    if !silent.contains(&v) {
                        silent.push(v);
                    }
                }
            }
        }
        assert_eq!(silent.len(), MAX_VERIFIER_DRAWS, "{silent:?}");
        let slot = chain.slot(id, 0);
        assert!(
            matches!(slot.stage, Stage::Assigned { worker: w, .. } if w != worker),
            "drawn again, not accepted: {slot:?}"
        );
        assert_eq!(chain.member(&worker).bond, BOND, "nobody proved it cheated");
        for v in silent {
            assert!(chain.member(&v).suspended_until > 0, "{v:?} was not suspended");
        }
        assert_eq!(chain.value(), before);
    }

    #[test]
    fn missed_deadlines_suspend_and_redraw_and_a_third_fails_the_job_with_a_refund() {
        let mut chain = Chain::new();
        let before = chain.value();
        let id = chain.post(1, DEFAULT_VERIFY_BPS);
        let mut seen = Vec::new();
        for _ in 0..40 {
            chain.next_block();
            if let Stage::Assigned { worker, .. } = chain.slot(id, 0).stage
                && !seen.contains(&worker)
            {
                seen.push(worker);
            }
            if chain.job(id).state != JobState::Open {
                break;
            }
        }
        let job = chain.job(id);
        assert_eq!(job.state, JobState::Failed);
        assert_eq!(seen.len(), 3, "three different workers tried");
        assert!(job.failure.unwrap().contains("tried 3 times"));
        assert_eq!(job.refunded, cost(&post_args(1, DEFAULT_VERIFY_BPS)).unwrap());
        for w in WORKERS {
            assert!(chain.member(&w).suspended_until > 1, "{w:?} missed its deadline");
        }
        assert_eq!(chain.value(), before);
        chain.assert_no_tasks();
    }

    #[test]
    fn what_nobody_may_do_is_refused_and_changes_nothing() {
        let mut chain = Chain::new();
        // A job its creator cannot pay for.
        let mut big = post_args(4096, 0);
        big.price = 10_000;
        let poor = chain.call(CREATOR, |h| post(h, &big)).unwrap_err();
        assert!(poor.0.contains("escrow needs"), "{poor:?}");
        let mut bad = post_args(1, 0);
        bad.ladder.rungs[1].name = "360p".into();
        assert!(chain.call(CREATOR, |h| post(h, &bad)).unwrap_err().0.contains("named twice"));
        bad = post_args(1, 0);
        bad.ladder.rungs[0].width = 641;
        assert!(chain.call(CREATOR, |h| post(h, &bad)).unwrap_err().0.contains("even"));
        bad = post_args(1, 0);
        bad.ladder.preset = "placebo".into();
        assert!(chain.call(CREATOR, |h| post(h, &bad)).is_err());
        bad = post_args(0, 0);
        assert!(chain.call(CREATOR, |h| post(h, &bad)).is_err());
        assert!(chain.call(CREATOR, tick).unwrap_err().0.contains("only the chain"));

        let id = chain.post(2, 10_000);
        chain.blocks(2);
        let Stage::Assigned { worker, .. } = chain.slot(id, 0).stage else { panic!() };
        // Each worker finds what it is to do in its task list.
        let task = Task { job: id, segment: 0, kind: TaskKind::Transcode };
        assert!(tasks(&chain.host, &worker).unwrap().contains(&task));
        let other = *WORKERS.iter().find(|w| **w != worker).unwrap();
        let args = ResultArgs { job: id, segment: 0, outputs: outputs(0, &other) };
        let stolen = chain.call(other, |h| result(h, &args)).unwrap_err();
        assert!(stolen.0.contains("not assigned to"), "{stolen:?}");
        let short = ResultArgs { job: id, segment: 0, outputs: outputs(0, &worker)[..1].to_vec() };
        assert!(chain.call(worker, |h| result(h, &short)).unwrap_err().0.contains("1 outputs"));
        let beyond = ResultArgs { job: id, segment: 9, outputs: outputs(0, &worker) };
        assert!(chain.call(worker, |h| result(h, &beyond)).unwrap_err().0.contains("2 segments"));
        let args = ResultArgs { job: id, segment: 0, outputs: outputs(0, &worker) };
        chain.call(worker, |h| result(h, &args)).unwrap();
        chain.blocks(2);
        let Stage::Checking { check, .. } = chain.slot(id, 0).stage else { panic!() };
        let check_task = Task { job: id, segment: 0, kind: TaskKind::Check };
        assert_eq!(tasks(&chain.host, &check.verifiers[0]).unwrap(), vec![check_task]);
        let outsider = *VERIFIERS.iter().find(|v| !check.verifiers.contains(v)).unwrap();
        let args = VerdictArgs { job: id, segment: 0, pass: false, reasons: "no".into() };
        let forged = chain.call(outsider, |h| verdict(h, &args)).unwrap_err();
        assert!(forged.0.contains("is not drawn"), "{forged:?}");
        assert!(chain.call(worker, |h| cancel(h, id)).unwrap_err().0.contains("not"));
        // The creator cancels: nothing was accepted, everything returns.
        let before = chain.value();
        chain.call(CREATOR, |h| cancel(h, id)).unwrap();
        assert_eq!(chain.job(id).state, JobState::Cancelled);
        assert_eq!(chain.balance(&CREATOR), 10_000_000);
        assert!(chain.call(CREATOR, |h| cancel(h, id)).is_err());
        assert!(chain.call(worker, |h| result(h, &args_for(id, &worker))).is_err());
        assert_eq!(chain.value(), before);
        // The tasks of a cancelled job are freed at their deadlines.
        chain.blocks(VERDICT_BLOCKS + 2);
        chain.assert_no_tasks();
    }

    fn args_for(id: u64, worker: &Address) -> ResultArgs {
        ResultArgs { job: id, segment: 1, outputs: outputs(1, worker) }
    }

    #[test]
    fn a_challenge_slashes_the_losing_side() {
        for uphold in [true, false] {
            let mut chain = Chain::new();
            let before = chain.value();
            let id = chain.post(1, 10_000);
            chain.blocks(2);
            // The worker's result is passed by its verifier (a lie, when the challenge is upheld).
            let Stage::Assigned { worker, .. } = chain.slot(id, 0).stage else { panic!() };
            chain
                .call(worker, |h| {
                    result(h, &ResultArgs { job: id, segment: 0, outputs: outputs(0, &worker) })
                })
                .unwrap();
            chain.blocks(2);
            let Stage::Checking { check, .. } = chain.slot(id, 0).stage else { panic!() };
            let liar = check.verifiers[0];
            let pass = VerdictArgs { job: id, segment: 0, pass: true, reasons: String::new() };
            chain.call(liar, |h| verdict(h, &pass)).unwrap();
            assert!(matches!(chain.slot(id, 0).stage, Stage::Window { .. }));
            let challenger = *WORKERS.iter().find(|w| **w != worker).unwrap();
            chain
                .call(challenger, |h| challenge(h, &ChallengeArgs { job: id, segment: 0 }))
                .unwrap();
            let Stage::Checking { check, .. } = chain.slot(id, 0).stage else { panic!() };
            assert_eq!(check.verifiers.len(), 3);
            assert!(!check.verifiers.contains(&liar));
            for v in &check.verifiers {
                let args = VerdictArgs { job: id, segment: 0, pass: !uphold, reasons: "x".into() };
                chain.call(*v, |h| verdict(h, &args)).unwrap();
            }
            if uphold {
                assert!(chain.member(&worker).bond < BOND);
                assert!(chain.member(&liar).bond < BOND);
                assert_eq!(chain.member(&challenger).bond, BOND);
                assert!(matches!(chain.slot(id, 0).stage, Stage::Assigned { .. }));
            } else {
                assert_eq!(chain.member(&worker).bond, BOND);
                assert!(chain.member(&challenger).bond < BOND);
                assert!(matches!(chain.slot(id, 0).stage, Stage::Accepted(_)));
                chain.blocks(2);
                assert_eq!(chain.job(id).state, JobState::Done);
            }
            assert_eq!(chain.value(), before);
        }
    }

    #[test]
    fn draws_follow_the_bond_with_a_uniform_share_and_skip_the_suspended() {
        let mut host = MemoryHost { height: 10, ..Default::default() };
        let mut pool: Vec<Member> = (1..=3u8)
            .map(|i| Member {
                address: [i; 20],
                role: Role::Worker,
                bond: MIN_BOND * u64::from(i) * u64::from(i),
                unbonding: 0,
                release_height: 0,
                suspended_until: 0,
                results: 0,
                tasks: 0,
            })
            .collect();
        let mut counts = [0u32; 3];
        let n = 20_000;
        for i in 0..n {
            let who = draw(&host, &pool, Role::Worker, &[], &[7; 32], (1, i, 0)).unwrap();
            counts[usize::from(who[0] - 1)] += 1;
        }
        // Bonds 1:4:9 of 14, with a fifth of the draws uniform.
        for (i, c) in counts.iter().enumerate() {
            let bond = ((i + 1) * (i + 1)) as f64 / 14.0;
            let expected = 0.8 * bond + 0.2 / 3.0;
            let share = f64::from(*c) / f64::from(n);
            assert!((share - expected).abs() < 0.015, "{i}: {share} vs {expected}");
        }
        pool[2].suspended_until = 11;
        pool[1].tasks = MAX_TASKS;
        for i in 0..100 {
            assert_ne!(draw(&host, &pool, Role::Worker, &[], &[7; 32], (1, i, 0)), Some([2; 20]));
        }
        pool[1].tasks = 0;
        pool[1].bond = MIN_BOND - 1;
        for i in 0..100 {
            assert_eq!(draw(&host, &pool, Role::Worker, &[], &[7; 32], (1, i, 0)), Some([1; 20]));
        }
        assert_eq!(draw(&host, &pool, Role::Worker, &[[1; 20]], &[7; 32], (1, 0, 0)), None);
        assert_eq!(draw(&host, &pool, Role::Verifier, &[], &[7; 32], (1, 0, 0)), None);
        host.height = 11;
        assert!(draw(&host, &pool, Role::Worker, &[[1; 20]], &[7; 32], (1, 0, 0)).is_some());
    }

    #[test]
    fn after_its_first_ten_a_workers_results_are_checked_at_the_jobs_rate() {
        let mut chain = Chain::new();
        let id = chain.post(300, 2_000);
        chain.next_block();
        chain.work(id, |_, _| true, 400);
        let job = chain.job(id);
        assert_eq!(job.state, JobState::Done);
        let checked = (0..300).filter(|s| !chain.slot(id, *s).verdicts.is_empty()).count();
        // 30 always-checked first results, 270 at 20 %: 54 expected.
        let rest = checked - 30;
        assert!((30..=80).contains(&rest), "{rest} of 270 checked");
        // Recorded over two blocks (300 segments, 256 a block), the same hash as in one go.
        assert_eq!(job.ladder, Some(ladder_hash(id, &job.args, &chain.outputs(id))));
        // The escrow kept one fee per segment; what unchecked segments did not spend returns.
        assert_eq!(job.refunded, (300 - checked as u64) * 40);
    }

    #[test]
    fn bonds_unbond_slowly_and_keep_one_role() {
        let mut chain = Chain::new();
        let w = WORKERS[0];
        let wrong = chain.call(w, |h| bond(h, &BondArgs { role: Role::Verifier, amount: 1 }));
        assert!(wrong.unwrap_err().0.contains("as a Worker"));
        chain.call(w, |h| unbond(h, BOND)).unwrap();
        assert!(chain.call(w, withdraw).unwrap_err().0.contains("released at height"));
        chain.host.height += UNBONDING_BLOCKS;
        let before = chain.balance(&w);
        chain.call(w, withdraw).unwrap();
        assert_eq!(chain.balance(&w), before + BOND);
        assert!(pool(&chain.host).unwrap().iter().all(|m| m.address != w));
        let overdraft =
            chain.call(w, |h| bond(h, &BondArgs { role: Role::Worker, amount: u64::MAX }));
        assert!(overdraft.unwrap_err().0.contains("to bond"));

        // A member holding a task cannot leave with its bond before it answers.
        let mut chain = Chain::new();
        chain.post(1, 0);
        chain.blocks(2);
        let busy = *WORKERS.iter().find(|w| chain.member(w).tasks > 0).unwrap();
        chain.call(busy, |h| unbond(h, BOND)).unwrap();
        chain.host.height += UNBONDING_BLOCKS;
        assert!(chain.call(busy, withdraw).unwrap_err().0.contains("holds 1 tasks"));
    }
}
