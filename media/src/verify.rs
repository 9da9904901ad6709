//! Transcode verification: does a rendition segment honestly come from its source segment?
//!
//! Two layers of Kinema's layered verification:
//! - (b) coarse checks ([`coarse`]), each failing with its own named [`Reason`];
//! - (c) a threshold classifier on up to 10 sampled frame pairs ([`crate::features`]), with
//!   thresholds calibrated on honest renditions ([`Thresholds`], `media/data/thresholds.json`,
//!   made by `kinema media eval`).
//!
//! [`verify`] runs both and explains its verdict: every reason with what was measured, and all
//! scores.

use std::fmt;
use std::path::Path;

use serde::Serialize;

use crate::decode::{FrameInfo, Keep, Request, decode_segments};
use crate::features::{self, PairScores};
use crate::ffmpeg::Ffmpeg;
use crate::probe::{MediaInfo, media_file, probe_segment};
use crate::ts::{self, AudioBytes};
use crate::{Error, Result};

/// What the job asked the transcoder for.
#[derive(Debug, Clone, PartialEq)]
pub struct Expect {
    /// Rendition width.
    pub width: u32,
    /// Rendition height.
    pub height: u32,
    /// Frame rate, when the job fixes one; `None` keeps the source's.
    pub fps: Option<f64>,
    /// The audio must be the source's packets, copied bit-exact.
    pub audio_copy: bool,
}

impl Expect {
    /// Checks the expectation itself is sensible.
    pub fn validate(&self) -> Result<()> {
        let even = |v: u32| (2..=8192).contains(&v) && v.is_multiple_of(2);
        if !even(self.width) || !even(self.height) {
            return Err(Error::BadSetting {
                setting: "expect",
                value: format!("{}x{}", self.width, self.height),
                expected: "an even width and height between 2 and 8192",
            });
        }
        if self.fps.is_some_and(|f| !(f > 0.0 && f <= 1000.0)) {
            return Err(Error::BadSetting {
                setting: "expect fps",
                value: format!("{:?}", self.fps),
                expected: "a frame rate above 0 and at most 1000",
            });
        }
        Ok(())
    }
}

/// Why a rendition fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Reason {
    /// Not an MPEG-TS segment.
    Container,
    /// Video is not H.264.
    Codec,
    /// The frame size is not the one asked for.
    Resolution,
    /// The frame size changes inside the segment.
    ResolutionChange,
    /// The frame rate is not the one asked for.
    FrameRate,
    /// Frames are missing or added.
    FrameCount,
    /// Frame times do not line up with the source's, or repeat.
    Timestamps,
    /// The source has audio, the rendition none.
    AudioMissing,
    /// The audio is not the source's packets copied bit-exact.
    AudioNotCopied,
    /// Luma differs from the source more than any honest encode did (PSNR, SSIM or MS-SSIM).
    Quality,
    /// Chroma differs from the source more than any honest encode did (grayscale, hue).
    Colour,
    /// One region differs far more than the rest (overlay, logo, caption).
    Overlay,
    /// Frames match other source frames better than their own (drops, duplicates, stills).
    Temporal,
    /// A flipped or rotated source matches better than the upright one.
    Orientation,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = serde_json::to_value(self).ok().and_then(|v| v.as_str().map(str::to_owned));
        f.write_str(name.as_deref().unwrap_or("unknown"))
    }
}

/// One failed check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// Which check.
    pub reason: Reason,
    /// What was seen, for a person.
    pub detail: String,
}

/// The outcome of the coarse checks.
#[derive(Debug, Clone)]
pub struct Coarse {
    /// Failed checks; empty when the rendition passes.
    pub findings: Vec<Finding>,
    /// The probed source segment.
    pub source: MediaInfo,
    /// The probed rendition segment.
    pub rendition: MediaInfo,
    /// Time and size of every decoded rendition frame.
    pub frames: Vec<FrameInfo>,
}

/// Pass or fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// A good-faith transcode.
    Pass,
    /// Not one, for the reasons given.
    Fail,
}

/// Decision thresholds: a segment fails when its worst sampled pair crosses one.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Thresholds {
    /// Minimum luma PSNR, dB.
    pub psnr_y: f64,
    /// Minimum chroma PSNR (the lower of U and V), dB.
    pub psnr_chroma: f64,
    /// Maximum amount by which chroma PSNR falls below luma PSNR in a pair, dB. Honest encodes
    /// keep chroma at least as close as luma (it is smoother, and x264 favours it); grayscale
    /// and hue attacks do not, whatever the content.
    pub chroma_deficit: f64,
    /// Minimum luma SSIM.
    pub ssim: f64,
    /// Minimum luma MS-SSIM.
    pub ms_ssim: f64,
    /// Maximum share of the source's edge sharpness lost beyond what the structure lost
    /// ([`Scores::blur`]).
    pub blur: f64,
    /// Minimum PSNR of the worst 16x16 luma block, dB.
    pub worst_block_psnr: f64,
    /// Maximum change of a 16x16 luma block's mean, levels.
    pub block_shift: f64,
    /// Maximum gain of a neighbouring source frame over the aligned one, dB (thumbnails).
    pub offset_gain: f64,
}

impl Thresholds {
    /// The thresholds calibrated by `kinema media eval` and kept in the repository.
    pub fn calibrated() -> Self {
        // The file is part of the crate and checked by a test; it always parses.
        serde_json::from_str(include_str!("../data/thresholds.json"))
            .unwrap_or_else(|e| unreachable!("media/data/thresholds.json: {e}"))
    }
}

/// How many points of edge sharpness an honest encode may lose per point of MS-SSIM
/// ([`Scores::blur`]); chosen on the corpus (`media/data/README.md`).
pub const BLUR_PER_STRUCTURE: f64 = 5.0;

/// The worst value of each score over the sampled pairs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scores {
    /// Frame pairs compared.
    pub pairs: usize,
    /// Lowest luma PSNR, dB.
    pub psnr_y: f64,
    /// Lowest chroma PSNR, dB.
    pub psnr_chroma: f64,
    /// Largest amount by which chroma PSNR falls below luma PSNR, dB.
    pub chroma_deficit: f64,
    /// Lowest luma SSIM.
    pub ssim: f64,
    /// Lowest luma MS-SSIM.
    pub ms_ssim: f64,
    /// Sharpness of the source's edges kept ([`PairScores::edges_kept`]), averaged over the
    /// pairs (one frame's edges vary with its type and quantizer far more than a blur varies
    /// over a segment).
    pub edges_kept: f64,
    /// Edge sharpness lost beyond what the structure lost, averaged over the pairs: the share of
    /// the source's edge sharpness lost ([`PairScores::edges_kept`]) less [`BLUR_PER_STRUCTURE`]
    /// times the MS-SSIM lost. An encoder that loses edges loses structure with them (quantized
    /// animation at CRF 30 drops both); a blur takes the edges and leaves the structure, even at
    /// 144p where it moves edges by half a sample.
    pub blur: f64,
    /// Lowest worst-block PSNR, dB.
    pub worst_block_psnr: f64,
    /// Largest gap between a frame's PSNR and its worst block's, dB.
    pub block_gap: f64,
    /// Largest change of a 16x16 luma block's mean, levels.
    pub block_shift: f64,
    /// Largest gain of a misaligned source frame, dB.
    pub offset_gain: f64,
    /// Every pair.
    pub per_pair: Vec<PairScores>,
}

impl Scores {
    /// Folds the pairs into their worst values.
    pub fn from_pairs(per_pair: Vec<PairScores>) -> Self {
        let min =
            |f: &dyn Fn(&PairScores) -> f64| per_pair.iter().map(f).fold(f64::INFINITY, f64::min);
        let max = |f: &dyn Fn(&PairScores) -> f64| {
            per_pair.iter().map(f).fold(f64::NEG_INFINITY, f64::max)
        };
        Self {
            pairs: per_pair.len(),
            psnr_y: min(&|p| p.psnr[0]),
            psnr_chroma: min(&|p| p.psnr[1].min(p.psnr[2])),
            chroma_deficit: max(&|p| p.psnr[0] - p.psnr[1].min(p.psnr[2])),
            ssim: min(&|p| p.ssim),
            ms_ssim: min(&|p| p.ms_ssim),
            edges_kept: if per_pair.is_empty() {
                1.0
            } else {
                per_pair.iter().map(|p| p.edges_kept).sum::<f64>() / per_pair.len() as f64
            },
            blur: if per_pair.is_empty() {
                f64::NEG_INFINITY
            } else {
                per_pair
                    .iter()
                    .map(|p| (1.0 - p.edges_kept) - BLUR_PER_STRUCTURE * (1.0 - p.ms_ssim))
                    .sum::<f64>()
                    / per_pair.len() as f64
            },
            worst_block_psnr: min(&|p| p.worst_block_psnr),
            block_gap: max(&|p| p.psnr[0] - p.worst_block_psnr),
            block_shift: max(&|p| p.block_shift),
            offset_gain: max(&|p| if p.best_offset != 0 { p.offset_gain } else { 0.0 }),
            per_pair,
        }
    }

    /// The quality findings against `t`.
    pub fn findings(&self, t: &Thresholds) -> Vec<Finding> {
        let mut out = Vec::new();
        let mut check = |bad: bool, reason, detail: String| {
            if bad {
                out.push(Finding { reason, detail });
            }
        };
        check(
            self.psnr_y < t.psnr_y || self.ssim < t.ssim || self.ms_ssim < t.ms_ssim,
            Reason::Quality,
            format!(
                "luma PSNR {:.2} dB (min {:.2}), SSIM {:.4} (min {:.4}), MS-SSIM {:.4} (min {:.4})",
                self.psnr_y, t.psnr_y, self.ssim, t.ssim, self.ms_ssim, t.ms_ssim
            ),
        );
        check(
            self.blur > t.blur,
            Reason::Quality,
            format!(
                "keeps {:.0} % of the sharpness of the source's edges, {:.1} % less than its \
                 structure explains (max {:.1} %): blurred",
                self.edges_kept * 100.0,
                self.blur * 100.0,
                t.blur * 100.0
            ),
        );
        check(
            self.psnr_chroma < t.psnr_chroma || self.chroma_deficit > t.chroma_deficit,
            Reason::Colour,
            format!(
                "chroma PSNR {:.2} dB (min {:.2}), {:.2} dB below luma (max {:.2})",
                self.psnr_chroma, t.psnr_chroma, self.chroma_deficit, t.chroma_deficit
            ),
        );
        check(
            self.worst_block_psnr < t.worst_block_psnr || self.block_shift > t.block_shift,
            Reason::Overlay,
            format!(
                "a 16x16 block's mean moved by {:.1} levels (max {:.1}); worst block {:.2} dB \
                 (min {:.2}), {:.2} dB below its frame",
                self.block_shift,
                t.block_shift,
                self.worst_block_psnr,
                t.worst_block_psnr,
                self.block_gap
            ),
        );
        check(
            self.offset_gain > t.offset_gain,
            Reason::Temporal,
            format!(
                "a neighbouring source frame matches {:.2} dB better (max {:.2})",
                self.offset_gain, t.offset_gain
            ),
        );
        if let Some((o, gain)) =
            self.per_pair.iter().filter_map(|p| p.orientation).max_by(|a, b| a.1.total_cmp(&b.1))
        {
            let name = serde_json::to_value(o)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            check(
                true,
                Reason::Orientation,
                format!("the source turned by {name} matches {gain:.2} dB better"),
            );
        }
        out
    }
}

/// A verdict that explains itself.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Pass or fail.
    pub verdict: Verdict,
    /// Why it failed (empty on a pass).
    pub reasons: Vec<Finding>,
    /// What was measured.
    pub scores: Scores,
}

/// Frame pairs sampled per segment.
pub const SAMPLES: usize = 10;

/// Everything the verdict is made from: the coarse checks and the scores of the sampled pairs.
pub fn analyse(
    ff: &Ffmpeg,
    source: &Path,
    rendition: &Path,
    expect: &Expect,
) -> Result<(Coarse, Scores)> {
    inspect(ff, source, rendition, expect, SAMPLES)
}

/// Verifies `rendition` against `source`: coarse checks, then the classifier on sampled pairs.
pub fn verify(
    ff: &Ffmpeg,
    source: &Path,
    rendition: &Path,
    expect: &Expect,
    thresholds: &Thresholds,
) -> Result<Report> {
    let (coarse, scores) = analyse(ff, source, rendition, expect)?;
    let mut reasons = coarse.findings;
    reasons.extend(scores.findings(thresholds));
    let verdict = if reasons.is_empty() { Verdict::Pass } else { Verdict::Fail };
    Ok(Report { verdict, reasons, scores })
}

/// Runs the coarse checks of `rendition` against `source` alone.
pub fn coarse(ff: &Ffmpeg, source: &Path, rendition: &Path, expect: &Expect) -> Result<Coarse> {
    Ok(inspect(ff, source, rendition, expect, 0)?.0)
}

/// The audio a stream copy must reproduce.
#[derive(Debug, Clone, PartialEq)]
enum Audio {
    /// The elementary stream of an MPEG-TS segment ([`ts`]).
    Stream(Option<AudioBytes>),
    /// `pts,md5` of every audio packet, from ffprobe.
    Packets(Vec<String>),
}

/// Reads both segments: through Kinema's own MPEG-TS reader when both are MPEG-TS with H.264
/// video (every segment an honest transcoder returns), otherwise through ffprobe, which names
/// whatever else they are.
fn read_pair(ff: &Ffmpeg, source: &Path, rendition: &Path) -> Result<[(MediaInfo, Audio); 2]> {
    let read = |path: &Path| -> Result<Option<ts::Segment>> {
        media_file(path)?;
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, "cannot read", e))?;
        ts::read(path, &bytes)
    };
    if let (Some(src), Some(out)) = (read(source)?, read(rendition)?) {
        return Ok([(src.info, Audio::Stream(src.audio)), (out.info, Audio::Stream(out.audio))]);
    }
    let probed = |path| probe_segment(ff, path).map(|(info, audio)| (info, Audio::Packets(audio)));
    Ok([probed(source)?, probed(rendition)?])
}

/// Two reads and one process: both segments' streams and frame times ([`read_pair`]), then one
/// ffmpeg that decodes both, keeping whole only the `samples` pictures the features compare.
fn inspect(
    ff: &Ffmpeg,
    source: &Path,
    rendition: &Path,
    expect: &Expect,
    samples: usize,
) -> Result<(Coarse, Scores)> {
    expect.validate()?;
    let [(src, src_audio), (out, out_audio)] = read_pair(ff, source, rendition)?;
    // Dropped, added or foreign frames get a verdict, and any two segments of a plan are within
    // a factor of 3 of each other ([S/2, 3S/2]); four times longer or shorter is not a segment
    // of this job at all (a whole video, a wrong file).
    let (a, b) = (src.video.span(), out.video.span());
    if a / b > 4.0 || b / a > 4.0 {
        return Err(Error::NotComparable {
            original: source.into(),
            rendition: rendition.into(),
            detail: format!("it lasts {b:.2} s, the source {a:.2} s: not a rendition of it"),
        });
    }
    let picks = features::sample(out.video.frame_count as usize, samples);
    let last = (src.video.frame_count as usize).saturating_sub(1);
    let src_picks: Vec<usize> = picks.iter().map(|&j| j.min(last)).collect();
    let request = |path, info: &MediaInfo, picks| Request {
        path,
        width: info.video.width as usize,
        height: info.video.height as usize,
        keep: Keep::Only(picks),
    };
    let mut decoded = decode_segments(
        ff,
        &[request(source, &src, &src_picks), request(rendition, &out, &picks)],
    )?;
    let (Some(out_decoded), Some(src_decoded)) = (decoded.pop(), decoded.pop()) else {
        unreachable!("decode_segments answers every request")
    };
    let findings =
        coarse_findings(&src, &out, &out_decoded.frames, [&src_audio, &out_audio], expect);
    let scores = Scores::from_pairs(features::measure(&src_decoded, &out_decoded, &picks));
    Ok((Coarse { findings, source: src, rendition: out, frames: out_decoded.frames }, scores))
}

/// The coarse checks on what the reads and the decoder reported; `audio` is the source's and
/// the rendition's.
fn coarse_findings(
    src: &MediaInfo,
    out: &MediaInfo,
    frames: &[FrameInfo],
    [src_audio, out_audio]: [&Audio; 2],
    expect: &Expect,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut fail = |reason, detail: String| findings.push(Finding { reason, detail });

    if out.container != "mpegts" {
        fail(Reason::Container, format!("container {}, expected mpegts", out.container));
    }
    if out.video.codec != "h264" {
        fail(Reason::Codec, format!("video codec {}, expected h264", out.video.codec));
    }
    let (w, h) = (out.video.width, out.video.height);
    if (w, h) != (expect.width, expect.height) {
        fail(Reason::Resolution, format!("{w}x{h}, expected {}x{}", expect.width, expect.height));
    }
    if let Some(other) = frames.iter().find(|f| f.size != (w as usize, h as usize)) {
        let (ow, oh) = other.size;
        fail(
            Reason::ResolutionChange,
            format!("{w}x{h} at the start, {ow}x{oh} at {:.3} s", other.pts),
        );
    }

    let src_times = absolute_times(src);
    let out_times = absolute_times(out);
    let interval = src.video.frame_interval();
    if let Some(fps) = expect.fps {
        let declared = out.video.frame_rate.as_f64();
        if (declared - fps).abs() > fps * 0.01 {
            fail(Reason::FrameRate, format!("{declared:.3} fps, expected {fps:.3}"));
        }
    }
    if expect.fps.is_none() && out_times.len() != src_times.len() {
        fail(
            Reason::FrameCount,
            format!("{} frames for the source's {}", out_times.len(), src_times.len()),
        );
    }
    if let Some(detail) = misaligned(&src_times, &out_times, interval, expect.fps.is_none()) {
        fail(Reason::Timestamps, detail);
    }

    if expect.audio_copy && src.audio.is_some() {
        if out.audio.is_none() {
            fail(Reason::AudioMissing, "the source segment has audio, the rendition none".into());
        } else if let Some(detail) = audio_difference(src_audio, out_audio) {
            fail(Reason::AudioNotCopied, detail);
        }
    }
    findings
}

/// How the rendition's audio differs from the source's, if it does.
fn audio_difference(src: &Audio, out: &Audio) -> Option<String> {
    if src == out {
        return None;
    }
    Some(match (src, out) {
        (Audio::Stream(Some(s)), Audio::Stream(Some(o))) if s.bytes != o.bytes => {
            let same = s.bytes.iter().zip(&o.bytes).take_while(|(x, y)| x == y).count();
            format!(
                "{} bytes of audio, {} in the source, the first {same} identical",
                o.bytes.len(),
                s.bytes.len()
            )
        }
        (Audio::Stream(Some(s)), Audio::Stream(Some(o))) => {
            let time = |t: Option<i64>| {
                t.map_or("no time".into(), |t| format!("{:.3} s", t as f64 / 90_000.0))
            };
            format!(
                "the source's audio bytes, starting at {} instead of {}",
                time(o.first_pts),
                time(s.first_pts)
            )
        }
        (Audio::Packets(s), Audio::Packets(o)) => {
            let same = s.iter().zip(o).take_while(|(x, y)| x == y).count();
            format!(
                "{} audio packets, {} in the source, the first {same} identical",
                o.len(),
                s.len()
            )
        }
        _ => "the audio is not the source's".into(),
    })
}

/// Presentation times of all frames on the container's own clock (MPEG-TS timestamps survive a
/// transcode with copied timestamps), sorted.
fn absolute_times(info: &MediaInfo) -> Vec<f64> {
    info.video.frame_times().into_iter().map(|t| t + info.start_time).collect()
}

/// Frames repeating a time, or (when frames should match one to one) a rendition frame more than
/// half a frame from every source frame.
fn misaligned(src: &[f64], out: &[f64], interval: f64, one_to_one: bool) -> Option<String> {
    if let Some(w) = out.windows(2).find(|w| w[1] - w[0] < interval * 0.01) {
        return Some(format!("two frames at {:.3} s", w[0]));
    }
    if !one_to_one || src.is_empty() {
        return None;
    }
    let tolerance = interval / 2.0;
    out.iter()
        .find(|&&t| {
            let i = src.partition_point(|&s| s < t);
            let near = [i.checked_sub(1), Some(i)]
                .into_iter()
                .flatten()
                .filter_map(|j| src.get(j))
                .map(|s| (s - t).abs())
                .fold(f64::INFINITY, f64::min);
            near > tolerance
        })
        .map(|t| format!("a frame at {t:.3} s matches no source frame time"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expectations_are_validated() {
        let e = |w, h, fps| Expect { width: w, height: h, fps, audio_copy: false };
        assert!(e(640, 360, None).validate().is_ok());
        assert!(e(641, 360, None).validate().is_err());
        assert!(e(0, 0, None).validate().is_err());
        assert!(e(640, 360, Some(0.0)).validate().is_err());
        assert!(e(640, 360, Some(29.97)).validate().is_ok());
    }

    #[test]
    fn frame_times_must_line_up() {
        let src: Vec<f64> = (0..50).map(|i| 1.4 + i as f64 * 0.04).collect();
        assert_eq!(misaligned(&src, &src, 0.04, true), None);
        let shifted: Vec<f64> = src.iter().map(|t| t + 0.03).collect();
        assert!(misaligned(&src, &shifted, 0.04, true).unwrap().contains("matches no source"));
        let mut repeated = src.clone();
        repeated[10] = repeated[9];
        assert!(misaligned(&src, &repeated, 0.04, true).unwrap().contains("two frames"));
        assert_eq!(Reason::AudioNotCopied.to_string(), "audio_not_copied");
    }
}
