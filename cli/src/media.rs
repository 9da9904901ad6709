//! `kinema media ...`

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use kinema_media::hw::HwChoice;
use kinema_media::ladder::{self, Progress};
use kinema_media::segment::MezzanineSettings;
use kinema_media::transcode::EncodeSettings;
use kinema_media::{Ffmpeg, MediaInfo, rendition, verify, watermark};

#[derive(Debug, Subcommand)]
pub(crate) enum MediaCommand {
    /// Show what a media file holds.
    Probe {
        /// The file to probe.
        file: PathBuf,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Cut a video into 2 s segments, transcode every rendition and write HLS.
    Ladder(LadderArgs),
    /// Check that rendition segments are good-faith transcodes of their source segment (several
    /// renditions in one pass: the source decoded once, the job's own encodes made together).
    Verify {
        /// The source segment.
        #[arg(long)]
        source: PathBuf,
        /// A rendition segment; repeat for every rendition of the source to check together.
        #[arg(long, required = true)]
        rendition: Vec<PathBuf>,
        /// The size (and optionally frame rate) the job asked for: <W>x<H>[@<fps>], one per
        /// --rendition, in the same order.
        #[arg(long, required = true)]
        expect: Vec<String>,
        /// The job asked for the audio to be copied bit-exact.
        #[arg(long)]
        audio_copy: bool,
        /// The job's x264 preset (the verifier encodes the source with it to know what the
        /// job's settings give on this content).
        #[arg(long, default_value = "medium")]
        preset: String,
        /// The job's x264 constant rate factor.
        #[arg(long, default_value_t = 23)]
        crf: u8,
        /// The job's video bit-rate cap in bits per second, one per --rendition when given
        /// [default: the cap Kinema's ladder gives the expected size].
        #[arg(long)]
        max_bitrate: Vec<u32>,
        /// Where the sampled frames are drawn from: 1 to 64 bytes in hex (the job market passes
        /// a block hash finalized after the result) [default: fresh randomness on every run].
        #[arg(long)]
        seed: Option<String>,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Make honest and tampered renditions from the corpus and generated clips, calibrate the
    /// verifier on one split, report on the held-out one.
    Eval {
        /// The corpus directory (the clips of ../shared/corpus).
        #[arg(long, required_unless_present = "samples")]
        corpus: Option<PathBuf>,
        /// Calibrate and report again on the samples of an earlier report (its JSON) instead
        /// of making and measuring renditions.
        #[arg(long, conflicts_with = "corpus")]
        samples: Option<PathBuf>,
        /// Where to write the report (JSON).
        #[arg(long)]
        out: PathBuf,
        /// Where to write the thresholds calibrated on every clip.
        #[arg(long)]
        thresholds_out: Option<PathBuf>,
        /// Parallel jobs [default: number of cores].
        #[arg(long)]
        workers: Option<usize>,
        /// Source segments per clip, spread over the clip (each gets every honest variant and
        /// every attack).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=20))]
        segments: u32,
        /// Only these clips (names as the report gives them, comma-separated) [default: all].
        #[arg(long, value_delimiter = ',')]
        clips: Vec<String>,
    },
    /// Mark a video with a content ID, or read the ID from any excerpt of a copy.
    #[command(subcommand)]
    Watermark(WatermarkCommand),
    /// Show which hardware decoders and encoders work on this machine.
    Hw {
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum WatermarkCommand {
    /// Re-encode a video with an invisible 64-bit ID in every frame (size, frame rate and frame
    /// count kept, audio copied where the container allows).
    Embed {
        /// The video to mark.
        input: PathBuf,
        /// The ID: exactly 16 hex digits.
        #[arg(long)]
        id: String,
        /// The marked video (a new file; .mp4, .mkv, .mov or .ts).
        #[arg(long)]
        out: PathBuf,
        /// x264 constant rate factor of the marked video.
        #[arg(long, default_value_t = 23)]
        crf: u8,
        /// x264 preset of the marked video.
        #[arg(long, default_value = "medium")]
        preset: String,
        /// The mark's amplitude in luma levels on a block of typical activity: higher survives
        /// harsher copies, lower is harder to see.
        #[arg(long, default_value_t = watermark::STRENGTH)]
        strength: f32,
    },
    /// Read the ID from an excerpt: prints whether one was found, the ID, the bits the error
    /// correction fixed and the frames read; exits 0 either way.
    Detect {
        /// The video (any size or excerpt of a marked one).
        file: PathBuf,
        /// Where the excerpt starts, in seconds.
        #[arg(long, default_value_t = 0.0)]
        from: f64,
        /// The excerpt's length in seconds.
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub(crate) struct LadderArgs {
    /// The source video.
    input: PathBuf,
    /// Output directory: must not exist or be empty. Gets master.m3u8, one directory per
    /// rendition and manifest.json.
    #[arg(long)]
    out: PathBuf,
    /// Rendition heights; those above the source are skipped.
    #[arg(long, default_value = "720p,480p,360p,240p")]
    renditions: String,
    /// Target segment length in seconds.
    #[arg(long, default_value_t = 2.0)]
    segment_seconds: f64,
    /// Transcode processes at once [default: number of cores].
    #[arg(long)]
    workers: Option<usize>,
    /// x264 preset of the renditions.
    #[arg(long, default_value = "medium")]
    preset: String,
    /// x264 constant rate factor of the renditions (capped by each rung's bit rate).
    #[arg(long, default_value_t = 23)]
    crf: u8,
    /// Encoder threads per transcode process.
    #[arg(long, default_value_t = 1)]
    threads: u32,
    /// Deterministic profile: the same bytes for every segment on any machine with this ffmpeg.
    #[arg(long)]
    deterministic: bool,
    /// x264 preset of the mezzanine, re-encoded first when the source's keyframes are not ~2 s
    /// apart.
    #[arg(long, default_value = "ultrafast")]
    mezzanine_preset: String,
    /// x264 constant rate factor of the mezzanine.
    #[arg(long, default_value_t = 16)]
    mezzanine_crf: u8,
    /// Hardware decoding: none, auto, cuda, vaapi or qsv.
    #[arg(long, default_value = "none")]
    hwaccel: String,
    /// Mark the source with this content ID (16 hex digits) once, before the ladder, so every
    /// rendition carries it.
    #[arg(long)]
    watermark: Option<String>,
}

pub(crate) fn run(cmd: MediaCommand) -> Result<()> {
    let ff = Ffmpeg::locate()?;
    match cmd {
        MediaCommand::Probe { file, json } => {
            let info = kinema_media::probe(&ff, &file)?;
            if json {
                say!("{}", serde_json::to_string(&info)?);
            } else {
                print_info(&info);
            }
            Ok(())
        }
        MediaCommand::Ladder(args) => ladder(&ff, args),
        MediaCommand::Verify {
            source,
            rendition,
            expect,
            audio_copy,
            preset,
            crf,
            max_bitrate,
            seed,
            json,
        } => {
            if expect.len() != rendition.len()
                || !(max_bitrate.is_empty() || max_bitrate.len() == rendition.len())
            {
                anyhow::bail!(
                    "{} --rendition, {} --expect and {} --max-bitrate: give one --expect (and, if \
                     any, one --max-bitrate) per --rendition, in the same order",
                    rendition.len(),
                    expect.len(),
                    max_bitrate.len()
                );
            }
            let mut expects = Vec::new();
            for (k, text) in expect.iter().enumerate() {
                let mut expect = parse_expect(text, audio_copy)?;
                expect.preset = preset.clone();
                expect.crf = crf;
                expect.max_bitrate = max_bitrate.get(k).copied().unwrap_or(expect.max_bitrate);
                expect.validate()?;
                expects.push(expect);
            }
            let seed = match seed {
                Some(hex) => verify::Seed::from_hex(&hex)?,
                None => verify::Seed::random(),
            };
            let checks: Vec<(&std::path::Path, &verify::Expect)> =
                rendition.iter().map(|r| r.as_path()).zip(&expects).collect();
            let thresholds = verify::Thresholds::calibrated();
            let mut reports = Vec::new();
            for (report, path) in verify::verify_all(&ff, &source, &checks, &thresholds, &seed)?
                .into_iter()
                .zip(&rendition)
            {
                reports.push(
                    report.map_err(|e| anyhow::anyhow!("--rendition {}: {e}", path.display()))?,
                );
            }
            if json {
                match reports.as_slice() {
                    [one] => say!("{}", serde_json::to_string(one)?),
                    all => say!("{}", serde_json::to_string(all)?),
                }
                return Ok(());
            }
            for (report, path) in reports.iter().zip(&rendition) {
                let verdict = match report.verdict {
                    verify::Verdict::Pass => "pass",
                    verify::Verdict::Fail => "fail",
                };
                if reports.len() == 1 {
                    say!("{verdict}");
                } else {
                    say!("{}: {verdict}", path.display());
                }
                for r in &report.reasons {
                    say!("  {}: {}", r.reason, r.detail);
                }
                let s = &report.scores;
                say!(
                    "  {} pairs (seed {}): luma PSNR >= {:.2} dB, {:.2} dB below the job's own encode on average, {:.2} dB at worst; SSIM >= {:.4}; edges kept {:.0} %, {:.1} % less than the job's; colour moved {:.0} %; local damage {:.2} dB, detail lost {:.2} dB; block shift {:.1} levels; temporal gain {:.2} dB, frames {:.2} dB more alike than the job's, over {} frames",
                    s.pairs,
                    report.seed,
                    s.psnr_y,
                    s.quality_deficit,
                    s.worst_deficit,
                    s.ssim,
                    s.edges_kept * 100.0,
                    s.blur * 100.0,
                    s.chroma_change * 100.0,
                    s.local_damage,
                    s.detail_loss,
                    s.block_shift,
                    s.offset_gain,
                    s.repeat,
                    s.frames_compared
                );
            }
            Ok(())
        }
        MediaCommand::Eval { corpus, samples, out, thresholds_out, workers, segments, clips } => {
            let report = match (corpus, samples) {
                (_, Some(earlier)) => {
                    let text = std::fs::read(&earlier).map_err(|e| {
                        anyhow::anyhow!("--samples {}: cannot read: {e}", earlier.display())
                    })?;
                    #[derive(serde::Deserialize)]
                    struct Earlier {
                        samples: Vec<kinema_media::eval::Sample>,
                    }
                    let earlier: Earlier = serde_json::from_slice(&text).map_err(|e| {
                        anyhow::anyhow!(
                            "--samples {}: not a report of kinema media eval: {e}",
                            earlier.display()
                        )
                    })?;
                    kinema_media::eval::report_on(earlier.samples)
                }
                (Some(corpus), None) => {
                    let work =
                        std::env::temp_dir().join(format!("kinema-eval-{}", std::process::id()));
                    std::fs::create_dir_all(&work)?;
                    let workers = workers.unwrap_or_else(|| ladder::Config::default().workers);
                    let options =
                        kinema_media::eval::Options { workers, segments: segments as usize, clips };
                    let report = kinema_media::eval::run(&ff, &corpus, &work, &options, &|line| {
                        eprintln!("kinema: {line}")
                    });
                    let _ = std::fs::remove_dir_all(&work);
                    report?
                }
                (None, None) => unreachable!("clap requires --corpus without --samples"),
            };
            std::fs::write(&out, serde_json::to_vec_pretty(&report)?)?;
            if let Some(path) = thresholds_out {
                std::fs::write(&path, serde_json::to_vec_pretty(&report.thresholds)?)?;
            }
            print_eval(&report);
            Ok(())
        }
        MediaCommand::Watermark(command) => watermark(&ff, command),
        MediaCommand::Hw { json } => {
            let caps = kinema_media::hw::detect(&ff)?;
            if json {
                say!("{}", serde_json::to_string(&caps)?);
            } else {
                for a in &caps.accels {
                    let device = match (&a.device_error, a.device) {
                        (_, true) => "device ok".to_owned(),
                        (Some(e), false) => format!("no device ({e})"),
                        (None, false) => "not built in".to_owned(),
                    };
                    let encoder = match (a.encoder_compiled, a.encoder_works) {
                        (true, true) => "works",
                        (true, false) => "built in, not usable here",
                        (false, _) => "not built in",
                    };
                    say!("{:<6} decode: {device}; encoder {}: {encoder}", a.accel, a.encoder);
                }
            }
            Ok(())
        }
    }
}

fn parse_id(text: &str) -> Result<watermark::Id> {
    text.parse::<watermark::Id>().map_err(|e| anyhow::anyhow!("--id: {e}"))
}

fn watermark(ff: &Ffmpeg, command: WatermarkCommand) -> Result<()> {
    match command {
        WatermarkCommand::Embed { input, id, out, crf, preset, strength } => {
            let id = parse_id(&id)?;
            let settings =
                watermark::EmbedSettings { crf, preset, strength, keyframe_interval: None };
            let done = embed_with_progress(ff, &input, id, &out, &settings)?;
            say!(
                "{}: {}x{}, {} frames marked with {id}",
                out.display(),
                done.width,
                done.height,
                done.frames
            );
            Ok(())
        }
        WatermarkCommand::Detect { file, from, seconds, json } => {
            let found = watermark::detect(ff, &file, watermark::Excerpt { from, seconds })?;
            if json {
                say!(
                    "{}",
                    serde_json::json!({
                        "found": found.id.is_some(),
                        "id": found.id.map(|id| id.to_string()),
                        "bit_errors": found.id.and(found.bit_errors),
                        "frames": found.frames,
                    })
                );
            } else {
                match found.id {
                    Some(id) => say!(
                        "found {id} ({} bits corrected, {} frames, sync {:.1} sd, tile {:.3}x the shorter side)",
                        found.bit_errors.unwrap_or(0),
                        found.frames,
                        found.sync,
                        found.scale
                    ),
                    None => say!(
                        "no watermark found ({} frames, sync {:.1} sd)",
                        found.frames,
                        found.sync
                    ),
                }
            }
            Ok(())
        }
    }
}

/// Marks `input` into `out` with a progress bar on a terminal.
fn embed_with_progress(
    ff: &Ffmpeg,
    input: &std::path::Path,
    id: watermark::Id,
    out: &std::path::Path,
    settings: &watermark::EmbedSettings,
) -> Result<watermark::Embedded> {
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = ProgressBar::new(0);
        let style = ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} frames marked (eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar
    });
    let mut last_logged = 0;
    let done = watermark::embed(ff, input, id, out, settings, &mut |done, total| match &bar {
        Some(bar) => {
            bar.set_length(total);
            bar.set_position(done);
        }
        None if done >= last_logged + 250 => {
            last_logged = done;
            eprintln!("kinema: marked {done}/{total} frames");
        }
        None => {}
    })?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(done)
}

/// `854x480` or `854x480@29.97`.
fn parse_expect(text: &str, audio_copy: bool) -> Result<verify::Expect> {
    let bad =
        || anyhow::anyhow!("--expect {text:?} is not <W>x<H>[@<fps>], e.g. 854x480 or 854x480@25");
    let (size, fps) = match text.split_once('@') {
        Some((size, fps)) => (size, Some(fps.parse::<f64>().map_err(|_| bad())?)),
        None => (text, None),
    };
    let (w, h) = size.split_once('x').ok_or_else(bad)?;
    let expect = verify::Expect {
        fps,
        audio_copy,
        ..verify::Expect::rung(w.parse().map_err(|_| bad())?, h.parse().map_err(|_| bad())?)
    };
    expect.validate()?;
    Ok(expect)
}

fn print_eval(report: &kinema_media::eval::Report) {
    let pct = |(n, k): (usize, usize)| if n == 0 { 0.0 } else { 100.0 * k as f64 / n as f64 };
    let t = &report.thresholds;
    let limits: Vec<String> = verify::Limits::NAMES
        .iter()
        .zip(t.clean.values().iter().zip(t.per_db.values()))
        .map(|(name, (clean, per_db))| format!("{name} {clean:.3} (+{per_db:.4}/dB)"))
        .collect();
    say!("thresholds (widening per dB below {} dB): {}", verify::KNEE, limits.join(", "));
    for (name, split) in [
        ("calibration split (in-sample)", &report.calibration),
        ("held-out split (never tuned on)", &report.held_out),
    ] {
        say!("{name}: {}", split.clips.join(", "));
        say!(
            "  honest flagged: {}/{} ({:.2} %)   tampered caught: {}/{} ({:.2} %)   ROC AUC {:.4}",
            split.honest.1,
            split.honest.0,
            pct(split.honest),
            split.tampered.1,
            split.tampered.0,
            pct(split.tampered),
            split.auc
        );
        for (family, n, k) in &split.families {
            say!("  {family:<30} {k:>4}/{n:<4} {:>6.1} %", pct((*n, *k)));
        }
        for (height, n, k) in &split.heights {
            say!("  tampered at {height:>4}p            {k:>4}/{n:<4} {:>6.1} %", pct((*n, *k)));
        }
        if !split.no_ops.is_empty() {
            say!(
                "  {} tamperings changed nothing visible (>= {} dB from the same encode untampered) and are left out: {}",
                split.no_ops.len(),
                kinema_media::eval::NO_OP_PSNR,
                split
                    .no_ops
                    .iter()
                    .map(|(clip, family, height)| format!("{clip} {family} {height}p"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        for (kind, honest, tampered) in &split.kinds {
            say!(
                "  {kind:<16} honest flagged {:>3}/{:<4} tampered caught {:>4}/{:<4} {:>6.1} %",
                honest.1,
                honest.0,
                tampered.1,
                tampered.0,
                pct(*tampered)
            );
        }
    }
}

fn print_info(info: &MediaInfo) {
    let v = &info.video;
    say!("file:      {}", info.path.display());
    say!("container: {}", info.container);
    say!("size:      {} bytes", info.size);
    say!("duration:  {:.3} s", info.duration);
    say!(
        "video:     {}{} {}x{} (SAR {}), {} fps, {} frames, {} keyframes{}",
        v.codec,
        v.profile.as_deref().map(|p| format!(" ({p})")).unwrap_or_default(),
        v.width,
        v.height,
        v.sample_aspect_ratio,
        v.frame_rate,
        v.frame_count,
        v.keyframe_times.len(),
        v.pixel_format.as_deref().map(|p| format!(", {p}")).unwrap_or_default(),
    );
    match &info.audio {
        Some(a) => say!(
            "audio:     {} {} Hz, {} channels{}",
            a.codec,
            a.sample_rate,
            a.channels,
            a.channel_layout.as_deref().map(|l| format!(" ({l})")).unwrap_or_default()
        ),
        None => say!("audio:     none"),
    }
}

fn ladder(ff: &Ffmpeg, args: LadderArgs) -> Result<()> {
    let defaults = ladder::Config::default();
    let config = ladder::Config {
        heights: rendition::parse_heights(&args.renditions)?,
        segment_seconds: args.segment_seconds,
        workers: args.workers.unwrap_or(defaults.workers),
        encode: EncodeSettings {
            preset: args.preset,
            crf: args.crf,
            threads: args.threads,
            deterministic: args.deterministic,
        },
        mezzanine: MezzanineSettings { preset: args.mezzanine_preset, crf: args.mezzanine_crf },
        hwaccel: args.hwaccel.parse::<HwChoice>()?,
    };
    // The mark goes in once, before the ladder, into a mezzanine with a keyframe every segment
    // (so the ladder cuts it without another encode) at the mezzanine's quality.
    let mut marked = None;
    let input = match &args.watermark {
        Some(id) => {
            let id = parse_id(id).map_err(|e| anyhow::anyhow!("--watermark: {e}"))?;
            config.validate()?;
            let dir = tempfile::Builder::new().prefix("kinema-marked").tempdir()?;
            let path = dir.path().join("marked.mkv");
            let settings = watermark::EmbedSettings {
                crf: config.mezzanine.crf.min(args.crf),
                preset: "medium".into(),
                strength: watermark::STRENGTH,
                keyframe_interval: Some(config.segment_seconds),
            };
            embed_with_progress(ff, &args.input, id, &path, &settings)?;
            eprintln!("kinema: marked the source with {id}");
            marked = Some(dir);
            path
        }
        None => args.input.clone(),
    };
    let mut reporter = Reporter::new(std::io::stderr().is_terminal());
    let manifest = ladder::run(ff, &input, &args.out, &config, &mut |p| reporter.report(p))?;
    drop(marked);
    reporter.finish();
    say!(
        "{}: {} renditions x {} segments ({}), {:.2} s",
        args.out.join("master.m3u8").display(),
        manifest.renditions.len(),
        manifest.segment_durations.len(),
        match manifest.segmenting {
            kinema_media::plan::Mode::Copy => "source keyframes kept",
            kinema_media::plan::Mode::Mezzanine => "mezzanine re-encoded",
        },
        manifest.source.duration,
    );
    for r in &manifest.renditions {
        say!(
            "  {:>6} {:>4}x{:<4} {:>6} kb/s peak {:>6} kb/s avg  {}",
            r.rendition.name,
            r.rendition.width,
            r.rendition.height,
            r.bandwidth / 1000,
            r.average_bandwidth / 1000,
            r.codecs
        );
    }
    Ok(())
}

/// A progress bar on a terminal, plain log lines otherwise.
struct Reporter {
    bar: Option<ProgressBar>,
    terminal: bool,
    segments: usize,
    cut: usize,
    done: usize,
}

impl Reporter {
    fn new(terminal: bool) -> Self {
        Self { bar: None, terminal, segments: 0, cut: 0, done: 0 }
    }

    fn report(&mut self, progress: Progress) {
        match progress {
            Progress::Planned { mode, segments, renditions } => {
                self.segments = segments;
                let line = format!(
                    "{segments} segments x {} ({}), {}",
                    renditions.join(", "),
                    renditions.len(),
                    match mode {
                        kinema_media::plan::Mode::Copy => "cutting at source keyframes",
                        kinema_media::plan::Mode::Mezzanine => "re-encoding a mezzanine to cut",
                    }
                );
                if self.terminal {
                    let bar = ProgressBar::new(segments as u64);
                    let style = ProgressStyle::with_template(
                        "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} transcoded, {msg} (eta {eta})",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar());
                    bar.set_style(style);
                    bar.enable_steady_tick(Duration::from_millis(200));
                    bar.println(format!("kinema: {line}"));
                    self.bar = Some(bar);
                } else {
                    eprintln!("kinema: {line}");
                }
            }
            Progress::Cut { index } => {
                self.cut += 1;
                match &self.bar {
                    Some(bar) => bar.set_message(format!("{}/{} cut", self.cut, self.segments)),
                    None => eprintln!("kinema: cut segment {}/{}", index + 1, self.segments),
                }
            }
            Progress::Transcoded { index } => {
                self.done += 1;
                match &self.bar {
                    Some(bar) => bar.inc(1),
                    None => eprintln!(
                        "kinema: transcoded segment {} ({}/{} done)",
                        index + 1,
                        self.done,
                        self.segments
                    ),
                }
            }
            Progress::Packaging => match &self.bar {
                Some(bar) => bar.set_message("writing playlists"),
                None => eprintln!("kinema: writing playlists"),
            },
            _ => {}
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
