//! The ladder: probe → plan → segment → transcode on a worker pool → package.
//!
//! The market splits the same work between machines: [`cut`] probes, plans and segments on the
//! uploader's, a worker transcodes each segment ([`transcode::transcode`]), and [`assemble`]
//! packages the accepted outputs into a ladder's manifest.
//!
//! The segmenter and the transcode workers form a pipeline: a segment is transcoded as soon as
//! it is cut. Every worker runs one ffmpeg process at a time with a fixed thread count, so the
//! pool's size bounds the machine's load. Output goes to a hidden sibling directory that is
//! renamed into place only when everything succeeded: a failed run leaves nothing that looks
//! complete.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, mpsc};

use crate::ffmpeg::Ffmpeg;
use crate::hls::{self, EncoderSummary, Manifest, RenditionManifest, SegmentEntry, SourceSummary};
use crate::hw::{self, HwChoice};
use crate::plan::{self, Mode, SegmentPlan};
use crate::probe::{self, MediaInfo};
use crate::rendition::{self, DEFAULT_LADDER, Rendition};
use crate::segment::{AUDIO_BITRATE, MezzanineSettings, Segmenter, SourceSegment};
use crate::transcode::{self, EncodeSettings, Task};
use crate::{Error, Result};

/// What a ladder run makes and how.
#[derive(Debug, Clone)]
pub struct Config {
    /// Rendition heights; rungs above the source are skipped.
    pub heights: Vec<u32>,
    /// Target segment length in seconds.
    pub segment_seconds: f64,
    /// Number of ffmpeg transcode processes at once.
    pub workers: usize,
    /// Rendition encoding.
    pub encode: EncodeSettings,
    /// Mezzanine encoding, for sources whose keyframes do not allow a copy.
    pub mezzanine: MezzanineSettings,
    /// Hardware decoding.
    pub hwaccel: HwChoice,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            heights: DEFAULT_LADDER.to_vec(),
            segment_seconds: 2.0,
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            encode: EncodeSettings::default(),
            mezzanine: MezzanineSettings::default(),
            hwaccel: HwChoice::None,
        }
    }
}

impl Config {
    /// Checks every setting.
    pub fn validate(&self) -> Result<()> {
        if !(0.5..=20.0).contains(&self.segment_seconds) {
            return Err(Error::BadSetting {
                setting: "segment-seconds",
                value: self.segment_seconds.to_string(),
                expected: "between 0.5 and 20",
            });
        }
        if !(1..=256).contains(&self.workers) {
            return Err(Error::BadSetting {
                setting: "workers",
                value: self.workers.to_string(),
                expected: "1 to 256",
            });
        }
        if self.heights.is_empty() {
            return Err(Error::BadRendition { name: String::new() });
        }
        self.encode.validate()?;
        EncodeSettings {
            preset: self.mezzanine.preset.clone(),
            crf: self.mezzanine.crf,
            ..Default::default()
        }
        .validate()
    }
}

/// What a running ladder reports.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Progress {
    /// The source was probed and the work planned.
    Planned {
        /// How the source is cut.
        mode: Mode,
        /// Number of segments.
        segments: usize,
        /// Rendition names.
        renditions: Vec<String>,
    },
    /// Source segment `index` was cut.
    Cut {
        /// Segment index.
        index: usize,
    },
    /// Every rendition of segment `index` was encoded.
    Transcoded {
        /// Segment index.
        index: usize,
    },
    /// Playlists and the manifest are being written.
    Packaging,
}

/// Produces the ladder of `input` in `out` (which must not exist, or be an empty directory).
pub fn run(
    ff: &Ffmpeg,
    input: &Path,
    out: &Path,
    config: &Config,
    progress: &mut dyn FnMut(Progress),
) -> Result<Manifest> {
    let Planned { info, hwaccel, plan, renditions } = prepare(ff, input, out, config, progress)?;

    let partial = Partial::create(out)?;
    let source_dir = partial.path.join(".source");
    create_dir(&source_dir)?;
    for r in &renditions {
        create_dir(&partial.path.join(&r.name))?;
    }
    let segmenter = Segmenter::spawn(ff, &info, &plan, &source_dir, &config.mezzanine, hwaccel)?;
    let pipeline =
        Pipeline { ff, input, config, renditions: &renditions, dir: &partial.path, hwaccel };
    let outputs = pipeline.run(segmenter, &plan, progress)?;

    progress(Progress::Packaging);
    let manifest = manifest(ff, &info, &plan, config, renditions, outputs, &partial.path)?;
    hls::write(&partial.path, &manifest)?;
    std::fs::remove_dir_all(&source_dir).map_err(|e| Error::io(&source_dir, "cannot remove", e))?;
    partial.commit(out)?;
    Ok(manifest)
}

/// What [`run`] and [`cut`] start from.
struct Planned {
    info: MediaInfo,
    hwaccel: Option<hw::HwAccel>,
    plan: SegmentPlan,
    renditions: Vec<Rendition>,
}

/// Checks the settings and the output, probes `input`, resolves the decoder, plans the cut and
/// the renditions, and reports the plan.
fn prepare(
    ff: &Ffmpeg,
    input: &Path,
    out: &Path,
    config: &Config,
    progress: &mut dyn FnMut(Progress),
) -> Result<Planned> {
    config.validate()?;
    let info = probe::probe(ff, input)?;
    check_output(out)?;
    let hwaccel = match config.hwaccel {
        HwChoice::None => None,
        choice => hw::detect(ff)?.resolve(choice)?,
    };
    let plan = plan::plan(&info.video, config.segment_seconds);
    let renditions = rendition::plan_renditions(&info.video, &config.heights);
    progress(Progress::Planned {
        mode: plan.mode,
        segments: plan.len(),
        renditions: renditions.iter().map(|r| r.name.clone()).collect(),
    });
    Ok(Planned { info, hwaccel, plan, renditions })
}

/// The output must not exist yet, or be an empty directory.
fn check_output(out: &Path) -> Result<()> {
    match std::fs::read_dir(out) {
        Ok(entries) => match entries.into_iter().next() {
            None => Ok(()),
            Some(_) => Err(Error::OutputExists { path: out.into() }),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(_) => Err(Error::OutputExists { path: out.into() }),
    }
}

fn create_dir(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path).map_err(|e| Error::io(path, "cannot create directory", e))
}

/// A hidden sibling of the output directory, removed unless committed.
struct Partial {
    path: PathBuf,
    committed: bool,
}

impl Partial {
    fn create(out: &Path) -> Result<Self> {
        let parent = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        create_dir(&parent)?;
        let name = out.file_name().ok_or_else(|| Error::OutputExists { path: out.into() })?;
        let path =
            parent.join(format!(".{}.partial.{}", name.to_string_lossy(), std::process::id()));
        if path.exists() {
            std::fs::remove_dir_all(&path).map_err(|e| Error::io(&path, "cannot remove", e))?;
        }
        create_dir(&path)?;
        Ok(Self { path, committed: false })
    }

    fn commit(mut self, out: &Path) -> Result<()> {
        std::fs::rename(&self.path, out)
            .map_err(|e| Error::io(out, "cannot move the finished ladder into place", e))?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        if !self.committed {
            // Best effort: a leftover hidden `.partial` directory never looks like a result.
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// One output segment of one rendition.
struct Produced {
    id: kinema_chain::Hash,
    bytes: u64,
}

enum Event {
    Cut(usize),
    Done(usize, Result<Vec<Produced>>),
    SegmenterEnded(Result<()>),
}

struct Pipeline<'a> {
    ff: &'a Ffmpeg,
    input: &'a Path,
    config: &'a Config,
    renditions: &'a [Rendition],
    dir: &'a Path,
    hwaccel: Option<hw::HwAccel>,
}

impl Pipeline<'_> {
    /// Runs the segmenter and the workers; returns, per segment, its output in every rendition.
    fn run(
        &self,
        mut segmenter: Segmenter,
        plan: &SegmentPlan,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Vec<Vec<Produced>>> {
        let workers = self.config.workers;
        let cancel = AtomicBool::new(false);
        let (job_tx, job_rx) = mpsc::sync_channel::<SourceSegment>(workers);
        let job_rx = Mutex::new(job_rx);
        let (event_tx, event_rx) = mpsc::sync_channel::<Event>(workers * 2 + 2);
        let mut outputs: Vec<Option<Vec<Produced>>> = (0..plan.len()).map(|_| None).collect();
        let mut first_error: Option<Error> = None;

        std::thread::scope(|scope| {
            let events = event_tx.clone();
            let cancel_ref = &cancel;
            scope.spawn(move || {
                let mut previous_start = None;
                let result = loop {
                    let Some(next) = segmenter.next_segment() else { break segmenter.finish() };
                    let checked = next.and_then(|seg| {
                        if let Some(previous) = previous_start.replace(seg.start) {
                            check_cut(plan, &seg, previous, self.input)?;
                        }
                        Ok(seg)
                    });
                    let segment = match checked {
                        Ok(segment) => segment,
                        Err(e) => {
                            segmenter.kill();
                            break Err(e);
                        }
                    };
                    // Report the cut before queueing the work, so "cut" always precedes
                    // "transcoded"; a closed channel or a cancel means the run is over.
                    if cancel_ref.load(Ordering::Relaxed)
                        || events.send(Event::Cut(segment.index)).is_err()
                        || job_tx.send(segment).is_err()
                    {
                        segmenter.kill();
                        break Ok(());
                    }
                };
                drop(job_tx);
                let _ = events.send(Event::SegmenterEnded(result));
            });
            for _ in 0..workers {
                let events = event_tx.clone();
                let (jobs, cancel) = (&job_rx, &cancel);
                scope.spawn(move || {
                    loop {
                        let job = match jobs.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => break,
                        };
                        let Ok(segment) = job else { break };
                        if cancel.load(Ordering::Relaxed) {
                            break;
                        }
                        let result = self.transcode(&segment);
                        if events.send(Event::Done(segment.index, result)).is_err() {
                            break;
                        }
                    }
                });
            }
            drop(event_tx);

            for event in event_rx {
                let error = match event {
                    Event::Cut(index) => {
                        progress(Progress::Cut { index });
                        None
                    }
                    Event::Done(index, Ok(produced)) => {
                        outputs[index] = Some(produced);
                        progress(Progress::Transcoded { index });
                        None
                    }
                    Event::Done(_, Err(e)) | Event::SegmenterEnded(Err(e)) => Some(e),
                    Event::SegmenterEnded(Ok(())) => None,
                };
                if let Some(e) = error {
                    cancel.store(true, Ordering::Relaxed);
                    first_error.get_or_insert(e);
                }
            }
        });
        if let Some(e) = first_error {
            return Err(e);
        }
        outputs
            .into_iter()
            .enumerate()
            .map(|(i, o)| {
                o.ok_or_else(|| Error::Ffmpeg {
                    what: "transcoding".into(),
                    detail: format!("segment {i} was never transcoded"),
                })
            })
            .collect()
    }

    /// Transcodes one source segment into every rendition and names the outputs by hash.
    fn transcode(&self, segment: &SourceSegment) -> Result<Vec<Produced>> {
        let outputs: Vec<(&Rendition, PathBuf)> = self
            .renditions
            .iter()
            .map(|r| (r, self.dir.join(&r.name).join(format!(".part_{:05}.ts", segment.index))))
            .collect();
        let task = Task { source: &segment.path, outputs };
        transcode::transcode(self.ff, &task, &self.config.encode, self.hwaccel).map_err(
            |e| match e {
                Error::Ffmpeg { detail, .. } => Error::Ffmpeg {
                    what: format!(
                        "transcoding segment {} of {}",
                        segment.index,
                        self.input.display()
                    ),
                    detail,
                },
                other => other,
            },
        )?;
        let produced = task
            .outputs
            .iter()
            .map(|(rendition, path)| {
                let (id, bytes) = hls::hash_file(path)?;
                let named = self.dir.join(&rendition.name).join(format!("{id}.ts"));
                std::fs::rename(path, &named).map_err(|e| Error::io(path, "cannot rename", e))?;
                Ok(Produced { id, bytes })
            })
            .collect::<Result<Vec<_>>>()?;
        // The source segment is no longer needed; leaving it would only cost disk until the end.
        let _ = std::fs::remove_file(&segment.path);
        Ok(produced)
    }
}

/// Checks that the segmenter cut where the plan said: the distance from the previous segment's
/// start must be the planned duration. (Absolute times carry a constant offset that ffmpeg adds
/// to keep timestamps non-negative, and the segment muxer reports segment 0 as starting at 0, so
/// only differences from segment 1 on are meaningful.)
fn check_cut(
    plan: &SegmentPlan,
    segment: &SourceSegment,
    previous_start: f64,
    input: &Path,
) -> Result<()> {
    let i = segment.index;
    if i < 2 {
        return Ok(());
    }
    let planned = plan.starts[i] - plan.starts[i - 1];
    let actual = segment.start - previous_start;
    let tolerance = (plan.starts[i] - plan.thresholds[i - 1]).max(0.001);
    if (planned - actual).abs() > tolerance {
        return Err(Error::Ffmpeg {
            what: format!("segmenting {}", input.display()),
            detail: format!(
                "segment {} starts {actual:.3} s after segment {}, planned {planned:.3} s",
                i,
                i - 1
            ),
        });
    }
    Ok(())
}

/// The name of the one rendition a cut source's manifest lists.
pub const SOURCE_RENDITION: &str = "source";

/// What [`cut`] made.
#[derive(Debug, Clone, PartialEq)]
pub struct Cut {
    /// The source's manifest: one rendition, [`SOURCE_RENDITION`], whose segments are the cut
    /// source segments; its encoder is the encode a ladder of it is to use.
    pub manifest: Manifest,
    /// The renditions a ladder of it has (`config.heights` that the source reaches).
    pub renditions: Vec<Rendition>,
}

/// Cuts `input` into source segments as [`run`] would, without transcoding them: each goes to
/// `out/source/<blake3>.ts` with the source's `manifest.json` and playlists beside it (so the
/// cut is content a relay can take as it is). `out` must not exist or be empty; it appears
/// whole or not at all.
pub fn cut(
    ff: &Ffmpeg,
    input: &Path,
    out: &Path,
    config: &Config,
    progress: &mut dyn FnMut(Progress),
) -> Result<Cut> {
    let Planned { info, hwaccel, plan, renditions } = prepare(ff, input, out, config, progress)?;
    let partial = Partial::create(out)?;
    let dir = partial.path.join(SOURCE_RENDITION);
    create_dir(&dir)?;
    let mut segmenter = Segmenter::spawn(ff, &info, &plan, &dir, &config.mezzanine, hwaccel)?;
    let mut produced = Vec::with_capacity(plan.len());
    let mut previous_start = None;
    while let Some(next) = segmenter.next_segment() {
        let named = next.and_then(|segment| {
            if let Some(previous) = previous_start.replace(segment.start) {
                check_cut(&plan, &segment, previous, input)?;
            }
            let (id, bytes) = hls::hash_file(&segment.path)?;
            let named = dir.join(format!("{id}.ts"));
            std::fs::rename(&segment.path, &named)
                .map_err(|e| Error::io(&segment.path, "cannot rename", e))?;
            progress(Progress::Cut { index: segment.index });
            Ok(vec![Produced { id, bytes }])
        });
        match named {
            Ok(p) => produced.push(p),
            Err(e) => {
                segmenter.kill();
                return Err(e);
            }
        }
    }
    segmenter.finish()?;
    if produced.len() != plan.len() {
        return Err(Error::Ffmpeg {
            what: format!("segmenting {}", input.display()),
            detail: format!("{} segments cut, {} planned", produced.len(), plan.len()),
        });
    }
    progress(Progress::Packaging);
    let first = dir.join(format!("{}.ts", produced[0][0].id));
    let cut = probe::probe(ff, &first)?;
    let source = Rendition {
        name: SOURCE_RENDITION.into(),
        width: cut.video.width,
        height: cut.video.height,
        max_bitrate: 0,
    };
    let mut manifest = manifest(ff, &info, &plan, config, vec![source], produced, &partial.path)?;
    let peak = u32::try_from(manifest.renditions[0].bandwidth).unwrap_or(u32::MAX);
    manifest.renditions[0].rendition.max_bitrate = peak;
    hls::write(&partial.path, &manifest)?;
    let log = dir.join("segmenter.log");
    std::fs::remove_file(&log).map_err(|e| Error::io(&log, "cannot remove", e))?;
    partial.commit(out)?;
    Ok(Cut { manifest, renditions })
}

/// The manifest of a ladder whose segments were transcoded elsewhere from a [`cut`] source:
/// `outputs[r][s]` is rendition `r`'s segment `s` (blake3, bytes), `firsts[r]` a copy of
/// rendition `r`'s first segment (its codecs string is read from it). Durations, the source
/// and the encoder come from `source`.
pub fn assemble(
    ff: &Ffmpeg,
    source: &Manifest,
    renditions: Vec<Rendition>,
    outputs: &[Vec<(kinema_chain::Hash, u64)>],
    firsts: &[PathBuf],
) -> Result<Manifest> {
    let segments = source.segment_durations.len();
    if outputs.len() != renditions.len()
        || firsts.len() != renditions.len()
        || outputs.iter().any(|o| o.len() != segments)
    {
        return Err(Error::Ffmpeg {
            what: "assembling a ladder".into(),
            detail: format!(
                "{} renditions with {} outputs and {} first segments, for {segments} segments",
                renditions.len(),
                outputs.len(),
                firsts.len()
            ),
        });
    }
    let frame_rate = source.renditions.first().map_or(0.0, |r| r.frame_rate);
    let renditions = renditions
        .into_iter()
        .zip(outputs)
        .zip(firsts)
        .map(|((rendition, outputs), first)| {
            let entries = outputs
                .iter()
                .zip(&source.segment_durations)
                .map(|(&(blake3, bytes), &duration)| SegmentEntry {
                    file: format!("{blake3}.ts"),
                    blake3,
                    bytes,
                    duration,
                })
                .collect();
            Ok(RenditionManifest::new(rendition, hls::codecs_of(ff, first)?, frame_rate, entries))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Manifest {
        renditions,
        encoder: EncoderSummary { video: "libx264".into(), ..source.encoder.clone() },
        ..source.clone()
    })
}

fn manifest(
    ff: &Ffmpeg,
    info: &MediaInfo,
    plan: &SegmentPlan,
    config: &Config,
    renditions: Vec<Rendition>,
    outputs: Vec<Vec<Produced>>,
    dir: &Path,
) -> Result<Manifest> {
    // Microsecond precision: what EXTINF prints and far below a frame.
    let micros = |x: f64| (x * 1e6).round() / 1e6;
    let durations: Vec<f64> = plan.durations().into_iter().map(micros).collect();
    let frame_rate = (info.video.frame_rate.as_f64() * 1e3).round() / 1e3;
    let renditions = renditions
        .into_iter()
        .enumerate()
        .map(|(r, rendition)| {
            let segments: Vec<SegmentEntry> = outputs
                .iter()
                .zip(&durations)
                .map(|(per_rendition, &duration)| {
                    let p = &per_rendition[r];
                    SegmentEntry {
                        file: format!("{}.ts", p.id),
                        blake3: p.id,
                        bytes: p.bytes,
                        duration,
                    }
                })
                .collect();
            let first = dir.join(&rendition.name).join(&segments[0].file);
            let codecs = hls::codecs_of(ff, &first)?;
            Ok(RenditionManifest::new(rendition, codecs, frame_rate, segments))
        })
        .collect::<Result<Vec<_>>>()?;
    let name = info.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    Ok(Manifest {
        version: hls::MANIFEST_VERSION,
        source: SourceSummary {
            name,
            duration: micros(plan.end - plan.starts[0]),
            width: info.video.width,
            height: info.video.height,
            frame_rate: info.video.frame_rate,
            video_codec: info.video.codec.clone(),
            audio_codec: info.audio.as_ref().map(|a| a.codec.clone()),
        },
        segment_seconds: config.segment_seconds,
        segmenting: plan.mode,
        mezzanine: (plan.mode == Mode::Mezzanine).then(|| config.mezzanine.clone()),
        segment_durations: durations,
        encoder: EncoderSummary {
            ffmpeg: ff.version()?.to_owned(),
            video: "libx264".into(),
            settings: config.encode.clone(),
            audio: info.audio.as_ref().map(|_| "aac".to_owned()),
            audio_bitrate: info.audio.as_ref().map(|_| AUDIO_BITRATE),
        },
        renditions,
    })
}
