//! Evaluation and calibration of the verifier on a corpus of real clips.
//!
//! From source segments spread over each clip (`Options::segments`) it makes honest renditions (144p to 720p; x264 presets
//! ultrafast, medium, slow; CRF 18 and 30; a bit-rate mode; 4 threads; a lanczos scaler) and
//! tampered ones for every attack family at the tallest and the shortest rung, measures each
//! as [`crate::verify`] does, calibrates thresholds on the honest renditions of one half of
//! the clips, and reports on the other half (and the other way round): the share of honest
//! renditions flagged, the share of tampered ones caught per family and per resolution, and the
//! ROC AUC of a suspicion score. Clips with the same content stay on the same side.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Serialize;

use crate::ffmpeg::{self, Ffmpeg};
use crate::plan::plan;
use crate::probe::probe;
use crate::rendition::plan_renditions;
use crate::segment::{MezzanineSettings, Segmenter};
use crate::transcode::EncodeSettings;
use crate::ts;
use crate::verify::{Expect, Reason, Scores, Thresholds, analyse};
use crate::{Error, Result};

/// The clips of the shared corpus in two folds; clips with the same content share a fold.
pub const FOLDS: [&[&str]; 2] = [
    &["bigbuckbunny.mp4", "trailer_bbb.mp4", "bikes.mp4", "tree.avi"],
    &["carphone_pristine.mp4", "carphone_distorted.mp4", "cityCC0.mpg", "vtest.avi"],
];

/// Rendition heights tried.
const HEIGHTS: &[u32] = &[720, 480, 360, 240, 144];

/// One measured rendition.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Clip file name.
    pub clip: String,
    /// `honest/<variant>` or the attack family.
    pub family: String,
    /// Whether it is an honest rendition.
    pub honest: bool,
    /// Rendition height.
    pub height: u32,
    /// Coarse reasons found.
    pub coarse: Vec<Reason>,
    /// Scores on the sampled pairs.
    pub scores: Scores,
}

/// Results of one fold: calibrated on some clips, evaluated on the others.
#[derive(Debug, Clone, Serialize)]
pub struct FoldReport {
    /// Clips whose honest renditions set the thresholds.
    pub calibrated_on: Vec<String>,
    /// The thresholds.
    pub thresholds: Thresholds,
    /// Clips evaluated.
    pub evaluated_on: Vec<String>,
    /// Honest renditions evaluated and flagged.
    pub honest: (usize, usize),
    /// Tampered renditions evaluated and caught.
    pub tampered: (usize, usize),
    /// Per family: (family, evaluated, caught).
    pub families: Vec<(String, usize, usize)>,
    /// Per rendition height, tampered only: (height, evaluated, caught).
    pub heights: Vec<(u32, usize, usize)>,
    /// ROC AUC of the suspicion score, honest against tampered.
    pub auc: f64,
}

/// The whole evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Both folds.
    pub folds: Vec<FoldReport>,
    /// Thresholds calibrated on every clip's honest renditions (what `verify` ships with).
    pub thresholds: Thresholds,
    /// Every measured rendition.
    pub samples: Vec<Sample>,
}

/// A rendition to make from a source segment.
struct Job {
    clip: String,
    source: PathBuf,
    family: String,
    honest: bool,
    width: u32,
    height: u32,
    /// ffmpeg arguments after the inputs, before the output file.
    args: Vec<String>,
    /// Inputs before the source (material spliced in), which shift the source to a later
    /// input number.
    pre_inputs: Vec<String>,
    /// Arguments of a second encode from the source whose output is appended byte-wise (an
    /// MPEG-TS stream that changes resolution part-way).
    then: Option<Vec<String>>,
    /// Arguments of the job's own encode and a divisor: the rendition gets `args` plus a video
    /// bit rate of what that encode spent on this segment divided by the divisor.
    rate_of: Option<(Vec<String>, u64)>,
}

/// How big an evaluation to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Parallel jobs.
    pub workers: usize,
    /// Source segments per clip, spread evenly over it.
    pub segments: usize,
}

/// Runs the evaluation over `corpus`.
pub fn run(
    ff: &Ffmpeg,
    corpus: &Path,
    work: &Path,
    options: &Options,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Report> {
    let workers = options.workers;
    let mut jobs = Vec::new();
    let clips: Vec<&str> = FOLDS.iter().flat_map(|f| f.iter().copied()).collect();
    let mut sources = Vec::new();
    for clip in &clips {
        let dir = work.join(clip.replace('.', "_"));
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, "cannot create", e))?;
        let segments = source_segments(ff, &corpus.join(clip), &dir)?;
        sources.push((clip.to_string(), segments));
    }
    for (k, (clip, segments)) in sources.iter().enumerate() {
        // The segments under test: spread evenly, the middle one when there is one. "Elsewhere"
        // is the next (or previous) segment of the clip; "another video" the middle segment of
        // the next clip.
        let (_, next_segments) = &sources[(k + 1) % sources.len()];
        let other = &next_segments[next_segments.len() / 2];
        for s in spread(segments.len(), options.segments) {
            let here = &segments[s];
            let elsewhere = segments.get(s + 1).or(s.checked_sub(1).and_then(|p| segments.get(p)));
            jobs.extend(jobs_for(ff, clip, here, elsewhere, other)?);
        }
    }
    progress(&format!("{} renditions to make and measure", jobs.len()));

    let next = AtomicUsize::new(0);
    let samples = Mutex::new(Vec::new());
    let failure = Mutex::new(None);
    let done = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for w in 0..workers.max(1) {
            let (jobs, next, samples, failure, done) = (&jobs, &next, &samples, &failure, &done);
            scope.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(job) = jobs.get(i) else { break };
                    let out = work.join(format!("r{w}_{i}.ts"));
                    match measure(ff, job, &out) {
                        Ok(sample) => samples.lock().map(|mut s| s.push(sample)).unwrap_or(()),
                        Err(e) => {
                            if let Ok(mut f) = failure.lock() {
                                f.get_or_insert(e);
                            }
                            break;
                        }
                    }
                    let _ = std::fs::remove_file(&out);
                    let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                    if n % 25 == 0 || n == jobs.len() {
                        progress(&format!("{n}/{} measured", jobs.len()));
                    }
                }
            });
        }
    });
    if let Some(e) = failure.into_inner().ok().flatten() {
        return Err(e);
    }
    let mut samples = samples.into_inner().unwrap_or_default();
    samples.sort_by(|a, b| (&a.clip, &a.family, a.height).cmp(&(&b.clip, &b.family, b.height)));

    let folds = (0..2)
        .map(|f| {
            let calibrate: Vec<&Sample> =
                samples.iter().filter(|s| FOLDS[f].contains(&s.clip.as_str())).collect();
            let evaluate: Vec<&Sample> =
                samples.iter().filter(|s| FOLDS[1 - f].contains(&s.clip.as_str())).collect();
            let thresholds = calibrate_on(&calibrate);
            report(FOLDS[f], FOLDS[1 - f], thresholds, &evaluate)
        })
        .collect();
    let all: Vec<&Sample> = samples.iter().collect();
    Ok(Report { folds, thresholds: calibrate_on(&all), samples })
}

/// `n` of `len` indices spread evenly (centred in equal parts: the middle one for `n` = 1).
fn spread(len: usize, n: usize) -> Vec<usize> {
    let n = n.clamp(1, len.max(1));
    (0..n).map(|k| ((2 * k + 1) * len / (2 * n)).min(len.saturating_sub(1))).collect()
}

/// Cuts `clip` into source segments as the ladder does.
fn source_segments(ff: &Ffmpeg, clip: &Path, dir: &Path) -> Result<Vec<PathBuf>> {
    let info = probe(ff, clip)?;
    let plan = plan(&info.video, 2.0);
    let mut segmenter =
        Segmenter::spawn(ff, &info, &plan, dir, &MezzanineSettings::default(), None)?;
    let mut paths = Vec::new();
    while let Some(segment) = segmenter.next_segment() {
        paths.push(segment?.path);
    }
    segmenter.finish()?;
    Ok(paths)
}

fn jobs_for(
    ff: &Ffmpeg,
    clip: &str,
    source: &Path,
    elsewhere: Option<&PathBuf>,
    other: &Path,
) -> Result<Vec<Job>> {
    let info = probe(ff, source)?;
    let renditions = plan_renditions(&info.video, HEIGHTS);
    // Frame ranges scale with the segment: a 2 s segment holds 5 frames of tree.avi, 60 of a
    // 30 fps clip.
    let frames = info.video.frame_count.max(3);
    let (third, two_thirds, half) = (frames / 3, (2 * frames) / 3, frames / 2);
    let audio = info.audio.is_some();
    let mut jobs = Vec::new();
    let job =
        |family: &str, honest: bool, w: u32, h: u32, args: Vec<String>, pre: Vec<String>| Job {
            clip: clip.to_owned(),
            source: source.to_owned(),
            family: family.to_owned(),
            honest,
            width: w,
            height: h,
            args,
            pre_inputs: pre,
            then: None,
            rate_of: None,
        };
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    for r in &renditions {
        let (w, h, rate) = (r.width, r.height, r.max_bitrate);
        let scale = |flags: &str| format!("scale={w}:{h}:flags={flags},setsar=1");
        let x264 = |extra: &[&str]| {
            let mut v = s(&["-c:v", "libx264"]);
            v.extend(s(extra));
            v
        };
        let honest = [
            ("honest/ultrafast", scale("bicubic"), x264(&["-preset", "ultrafast", "-crf", "23"])),
            ("honest/medium", scale("bicubic"), x264(&["-preset", "medium", "-crf", "23"])),
            ("honest/slow", scale("bicubic"), x264(&["-preset", "slow", "-crf", "23"])),
            ("honest/crf18", scale("bicubic"), x264(&["-preset", "veryfast", "-crf", "18"])),
            ("honest/crf30", scale("bicubic"), x264(&["-preset", "veryfast", "-crf", "30"])),
            (
                "honest/bitrate",
                scale("bicubic"),
                x264(&[
                    "-preset",
                    "veryfast",
                    "-b:v",
                    &rate.to_string(),
                    "-maxrate",
                    &rate.to_string(),
                    "-bufsize",
                    &(2 * rate).to_string(),
                ]),
            ),
            (
                "honest/threads4",
                scale("bicubic"),
                x264(&["-preset", "veryfast", "-crf", "23", "-threads", "4"]),
            ),
            ("honest/lanczos", scale("lanczos"), x264(&["-preset", "veryfast", "-crf", "23"])),
        ];
        for (name, vf, enc) in honest {
            jobs.push(job(name, true, w, h, encode_args(&vf, &enc, audio), Vec::new()));
        }
    }
    // Attacks at the tallest and the shortest rung.
    let mut rungs = vec![renditions[0].clone()];
    if let Some(last) = renditions.last().filter(|r| r.height != renditions[0].height) {
        rungs.push(last.clone());
    }
    for r in &rungs {
        let (w, h) = (r.width, r.height);
        let base = format!("scale={w}:{h}:flags=bicubic,setsar=1");
        let enc = s(&["-c:v", "libx264", "-preset", "veryfast", "-crf", "23"]);
        let attack = |filter: &str| format!("{filter},{base}");
        let filters: Vec<(&str, String)> = vec![
            (
                "overlay/logo-5%",
                attack("drawbox=x=iw*0.74:y=ih*0.04:w=iw*0.22:h=ih*0.22:color=red:t=fill"),
            ),
            (
                "overlay/logo-20%",
                attack("drawbox=x=iw*0.5:y=ih*0.05:w=iw*0.45:h=ih*0.45:color=0x2060c0:t=fill"),
            ),
            (
                "overlay/text",
                attack(
                    "drawtext=text='KINEMA COPY':fontsize=h/10:fontcolor=white:x=w*0.05:y=h*0.8",
                ),
            ),
            (
                "overlay/semi-transparent",
                attack("drawbox=x=iw*0.3:y=ih*0.35:w=iw*0.4:h=ih*0.3:color=white@0.35:t=fill"),
            ),
            ("flip/horizontal", attack("hflip")),
            ("flip/vertical", attack("vflip")),
            ("rotate/90", attack("transpose=1")),
            ("rotate/180", attack("hflip,vflip")),
            ("colour/grayscale", attack("hue=s=0")),
            ("colour/hue-shift", attack("hue=h=60")),
            ("blur", attack("gblur=sigma=3")),
            ("drop/10%", attack("select='mod(n\\,10)'")),
            ("drop/50%", attack("select='mod(n\\,2)'")),
            (
                "duplicate",
                attack(&format!(
                    "split[x][y];[x][y]freezeframes=first={third}:last={two_thirds}:replace={}",
                    third.saturating_sub(1)
                )),
            ),
            (
                "black-frames",
                attack(&format!(
                    "drawbox=color=black:t=fill:enable='between(n,{third},{two_thirds})'"
                )),
            ),
            ("still-frame", attack("split[x][y];[x][y]freezeframes=first=1:last=100000:replace=0")),
        ];
        for (family, vf) in filters {
            jobs.push(job(family, false, w, h, encode_args(&vf, &enc, audio), Vec::new()));
        }
        // An eighth of the bits the job's own encode (Kinema's default settings for this rung)
        // spends on this segment. (An eighth of the rung's cap is not heavy quantization where
        // the content needs less than that: on static footage it scores above honest CRF 30.)
        let mut quant = job(
            "quantization/bitrate÷8",
            false,
            w,
            h,
            encode_args(&base, &s(&["-c:v", "libx264", "-preset", "veryfast"]), audio),
            Vec::new(),
        );
        let mut own = s(&["-c:v", "libx264"]);
        own.extend(EncodeSettings::default().x264_args(r));
        quant.rate_of = Some((encode_args(&base, &own, audio), 8));
        jobs.push(quant);
        // The first half at the asked size, the second at half of it: one stream whose size
        // changes part-way.
        let first_half = attack(&format!("select='lt(n\\,{half})'"));
        let mut change = job(
            "resolution-change",
            false,
            w,
            h,
            encode_args(&first_half, &enc, audio),
            Vec::new(),
        );
        let small = format!(
            "select='gte(n\\,{half})',scale={}:{}:flags=bicubic,setsar=1",
            (w / 2) & !1,
            (h / 2) & !1
        );
        change.then = Some(encode_args(&small, &enc, false));
        jobs.push(change);
        // Material from elsewhere, retimed onto this segment: its video, this segment's audio.
        for (family, material) in [
            ("segment/elsewhere-same-video", elsewhere.map(|p| p.as_path())),
            ("segment/other-video", Some(other)),
        ] {
            let Some(material) = material else { continue };
            let offset = start_of(ff, source)? - start_of(ff, material)?;
            // Input 0 is the material (shifted onto this segment's clock), input 1 the source.
            let mut args = s(&["-map", "0:v:0"]);
            if audio {
                args.extend(s(&["-map", "1:a:0", "-c:a", "copy"]));
            }
            args.extend(s(&["-vf", &base, "-fps_mode", "passthrough"]));
            args.extend(enc.clone());
            args.extend(s(&["-f", "mpegts", "-mpegts_copyts", "1"]));
            let pre = s(&["-itsoffset", &format!("{offset:.6}"), "-i"]);
            let mut pre = pre;
            pre.push(material.display().to_string());
            jobs.push(job(family, false, w, h, args, pre));
        }
    }
    Ok(jobs)
}

/// Video through `vf`, encoded with `enc`, audio copied, timestamps kept, MPEG-TS.
fn encode_args(vf: &str, enc: &[String], audio: bool) -> Vec<String> {
    let mut args: Vec<String> = ["-map", "0:v:0"].iter().map(|s| s.to_string()).collect();
    if audio {
        args.extend(["-map", "0:a:0", "-c:a", "copy"].map(String::from));
    }
    args.extend(["-vf", vf, "-fps_mode", "passthrough"].map(String::from));
    args.extend(enc.iter().cloned());
    args.extend(["-f", "mpegts", "-mpegts_copyts", "1"].map(String::from));
    args
}

fn start_of(ff: &Ffmpeg, path: &Path) -> Result<f64> {
    Ok(probe(ff, path)?.start_time)
}

/// Makes one rendition and measures it as `verify` does.
fn measure(ff: &Ffmpeg, job: &Job, out: &Path) -> Result<Sample> {
    let what = || format!("making {} of {}", job.family, job.clip);
    let mut args = job.args.clone();
    if let Some((own, divisor)) = &job.rate_of {
        ffmpeg::run(
            ff.ffmpeg().args(["-y", "-copyts", "-i"]).arg(&job.source).args(own).arg(out),
            what,
        )?;
        let rate = video_bit_rate(out)? / divisor;
        let (rate, bufsize) = (rate.to_string(), (2 * rate).to_string());
        args.extend(["-b:v", &rate, "-maxrate", &rate, "-bufsize", &bufsize].map(String::from));
    }
    let mut make = ff.ffmpeg();
    make.args(["-y", "-copyts"]).args(&job.pre_inputs).arg("-i").arg(&job.source);
    ffmpeg::run(make.args(&args).arg(out), what)?;
    if let Some(then) = &job.then {
        let part = out.with_extension("part2.ts");
        ffmpeg::run(
            ff.ffmpeg().args(["-y", "-copyts", "-i"]).arg(&job.source).args(then).arg(&part),
            what,
        )?;
        let bytes = std::fs::read(&part).map_err(|e| Error::io(&part, "cannot read", e))?;
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(out)
            .map_err(|e| Error::io(out, "cannot open", e))?;
        std::io::Write::write_all(&mut file, &bytes)
            .map_err(|e| Error::io(out, "cannot append", e))?;
        let _ = std::fs::remove_file(&part);
    }
    let expect = Expect { width: job.width, height: job.height, fps: None, audio_copy: true };
    let (coarse, scores) = analyse(ff, &job.source, out, &expect)?;
    Ok(Sample {
        clip: job.clip.clone(),
        family: job.family.clone(),
        honest: job.honest,
        height: job.height,
        coarse: coarse.findings.iter().map(|f| f.reason).collect(),
        scores,
    })
}

/// Bits per second of an MPEG-TS segment's video: the file less its audio, over its span.
fn video_bit_rate(path: &Path) -> Result<u64> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, "cannot read", e))?;
    let segment = ts::read(path, &bytes)?.ok_or_else(|| Error::NotMedia {
        path: path.into(),
        detail: "not an MPEG-TS segment with H.264 video".into(),
    })?;
    let audio = segment.audio.map_or(0, |a| a.bytes.len());
    let span = segment.info.video.span().max(1e-3);
    Ok(((bytes.len() - audio) as f64 * 8.0 / span) as u64)
}

/// Margins outside the worst honest value, per feature, set after looking at evaluation runs
/// (see `media/data/README.md`). Absolute quality (luma and chroma PSNR, the worst block) varies
/// with content far more than with tampering, so those are only floors for gross changes, with
/// wide margins; the decisions rest on features that do not depend on the content: chroma
/// falling below luma (colour), the block mean shift (overlays), the edge sharpness lost
/// beyond the structure lost (blur, averaged over the pairs), the temporal gain and
/// orientation on thumbnails.
pub const MARGINS: Thresholds = Thresholds {
    psnr_y: 8.0,
    psnr_chroma: 8.0,
    chroma_deficit: 3.0,
    ssim: 0.03,
    ms_ssim: 0.02,
    blur: 0.06,
    worst_block_psnr: 5.0,
    block_shift: 4.0,
    offset_gain: 1.5,
};

/// Thresholds just outside the worst value any honest rendition in `samples` reached, by
/// [`MARGINS`].
pub fn calibrate_on(samples: &[&Sample]) -> Thresholds {
    let honest: Vec<&Scores> = samples.iter().filter(|s| s.honest).map(|s| &s.scores).collect();
    let min =
        |f: &dyn Fn(&Scores) -> f64| honest.iter().map(|s| f(s)).fold(f64::INFINITY, f64::min);
    let max = |f: &dyn Fn(&Scores) -> f64| honest.iter().map(|s| f(s)).fold(0.0, f64::max);
    let round = |v: f64| (v * 1000.0).round() / 1000.0;
    let m = &MARGINS;
    Thresholds {
        psnr_y: round(min(&|s| s.psnr_y) - m.psnr_y),
        psnr_chroma: round(min(&|s| s.psnr_chroma) - m.psnr_chroma),
        chroma_deficit: round(max(&|s| s.chroma_deficit) + m.chroma_deficit),
        ssim: round(min(&|s| s.ssim) - m.ssim),
        ms_ssim: round(min(&|s| s.ms_ssim) - m.ms_ssim),
        blur: round(max(&|s| s.blur) + m.blur),
        worst_block_psnr: round(min(&|s| s.worst_block_psnr) - m.worst_block_psnr),
        block_shift: round(max(&|s| s.block_shift) + m.block_shift),
        offset_gain: round(max(&|s| s.offset_gain) + m.offset_gain),
    }
}

/// How far past the thresholds a sample is (≤ 0: inside every one); coarse findings count as
/// infinitely suspicious. Units: dB for PSNRs and gains, hundredths for SSIM, MS-SSIM and the
/// edge ratio, levels for block shifts.
pub fn suspicion(sample: &Sample, t: &Thresholds) -> f64 {
    if !sample.coarse.is_empty() {
        return f64::INFINITY;
    }
    let s = &sample.scores;
    let mut v = [
        t.psnr_y - s.psnr_y,
        t.psnr_chroma - s.psnr_chroma,
        (t.ssim - s.ssim) * 100.0,
        (t.ms_ssim - s.ms_ssim) * 100.0,
        (s.blur - t.blur) * 100.0,
        s.chroma_deficit - t.chroma_deficit,
        t.worst_block_psnr - s.worst_block_psnr,
        s.block_shift - t.block_shift,
        s.offset_gain - t.offset_gain,
    ]
    .into_iter()
    .fold(f64::NEG_INFINITY, f64::max);
    if s.per_pair.iter().any(|p| p.orientation.is_some()) {
        v = v.max(0.5);
    }
    v
}

fn fails(sample: &Sample, t: &Thresholds) -> bool {
    !sample.coarse.is_empty() || !sample.scores.findings(t).is_empty()
}

fn report(
    calibrated: &[&str],
    evaluated: &[&str],
    thresholds: Thresholds,
    samples: &[&Sample],
) -> FoldReport {
    let count = |pred: &dyn Fn(&Sample) -> bool| {
        let chosen: Vec<&&Sample> = samples.iter().filter(|s| pred(s)).collect();
        (chosen.len(), chosen.iter().filter(|s| fails(s, &thresholds)).count())
    };
    let mut families: Vec<String> =
        samples.iter().filter(|s| !s.honest).map(|s| s.family.clone()).collect();
    families.sort();
    families.dedup();
    let mut heights: Vec<u32> = samples.iter().filter(|s| !s.honest).map(|s| s.height).collect();
    heights.sort_unstable();
    heights.dedup();
    let honest_scores: Vec<f64> =
        samples.iter().filter(|s| s.honest).map(|s| suspicion(s, &thresholds)).collect();
    let tampered_scores: Vec<f64> =
        samples.iter().filter(|s| !s.honest).map(|s| suspicion(s, &thresholds)).collect();
    FoldReport {
        calibrated_on: calibrated.iter().map(|s| s.to_string()).collect(),
        evaluated_on: evaluated.iter().map(|s| s.to_string()).collect(),
        honest: count(&|s| s.honest),
        tampered: count(&|s| !s.honest),
        families: families
            .into_iter()
            .map(|f| {
                let (n, c) = count(&|s| s.family == f);
                (f, n, c)
            })
            .collect(),
        heights: heights
            .into_iter()
            .map(|h| {
                let (n, c) = count(&|s| !s.honest && s.height == h);
                (h, n, c)
            })
            .collect(),
        auc: auc(&honest_scores, &tampered_scores),
        thresholds,
    }
}

/// The probability that a random tampered sample scores above a random honest one (ties half).
pub fn auc(honest: &[f64], tampered: &[f64]) -> f64 {
    if honest.is_empty() || tampered.is_empty() {
        return f64::NAN;
    }
    let mut wins = 0.0;
    for t in tampered {
        for h in honest {
            wins += if t > h {
                1.0
            } else if t == h {
                0.5
            } else {
                0.0
            };
        }
    }
    wins / (honest.len() * tampered.len()) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_spread_over_the_clip() {
        assert_eq!(spread(5, 1), vec![2]);
        assert_eq!(spread(6, 3), vec![1, 3, 5]);
        assert_eq!(spread(2, 3), vec![0, 1]);
    }

    #[test]
    fn auc_counts_ordered_pairs() {
        assert_eq!(auc(&[0.0, 1.0], &[2.0, 3.0]), 1.0);
        assert_eq!(auc(&[2.0], &[1.0]), 0.0);
        assert_eq!(auc(&[1.0], &[1.0, f64::INFINITY]), 0.75);
    }

    #[test]
    fn folds_keep_shared_content_together() {
        let side = |clip: &str| FOLDS.iter().position(|f| f.contains(&clip));
        assert_eq!(side("bigbuckbunny.mp4"), side("trailer_bbb.mp4"));
        assert_eq!(side("carphone_pristine.mp4"), side("carphone_distorted.mp4"));
        assert_eq!(FOLDS.iter().map(|f| f.len()).sum::<usize>(), 8);
    }
}
