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
use kinema_media::{Ffmpeg, MediaInfo, rendition};

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
    /// Show which hardware decoders and encoders work on this machine.
    Hw {
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
}

pub(crate) fn run(cmd: MediaCommand) -> Result<()> {
    let ff = Ffmpeg::locate()?;
    match cmd {
        MediaCommand::Probe { file, json } => {
            let info = kinema_media::probe(&ff, &file)?;
            if json {
                println!("{}", serde_json::to_string(&info)?);
            } else {
                print_info(&info);
            }
            Ok(())
        }
        MediaCommand::Ladder(args) => ladder(&ff, args),
        MediaCommand::Hw { json } => {
            let caps = kinema_media::hw::detect(&ff)?;
            if json {
                println!("{}", serde_json::to_string(&caps)?);
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
                    println!("{:<6} decode: {device}; encoder {}: {encoder}", a.accel, a.encoder);
                }
            }
            Ok(())
        }
    }
}

fn print_info(info: &MediaInfo) {
    let v = &info.video;
    println!("file:      {}", info.path.display());
    println!("container: {}", info.container);
    println!("size:      {} bytes", info.size);
    println!("duration:  {:.3} s", info.duration);
    println!(
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
        Some(a) => println!(
            "audio:     {} {} Hz, {} channels{}",
            a.codec,
            a.sample_rate,
            a.channels,
            a.channel_layout.as_deref().map(|l| format!(" ({l})")).unwrap_or_default()
        ),
        None => println!("audio:     none"),
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
    let mut reporter = Reporter::new(std::io::stderr().is_terminal());
    let manifest = ladder::run(ff, &args.input, &args.out, &config, &mut |p| reporter.report(p))?;
    reporter.finish();
    println!(
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
        println!(
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
