//! Transcode verification: does a rendition segment honestly come from its source segment?
//!
//! Two layers of Kinema's layered verification:
//! - (b) coarse checks ([`coarse`]), each failing with its own named [`Reason`];
//! - (c) a threshold classifier on 10 frame pairs drawn from a [`Seed`] the transcoder cannot
//!   know (one per tenth of the segment, [`features::sample`]), and a temporal check on every
//!   frame's thumbnail. Quality is judged against the job's own encode of the same source frames
//!   (the job fixes rate control: [`Expect::crf`], [`Expect::max_bitrate`]), colour against the
//!   source's own colour as that encode keeps it, local damage against the rest of the frame,
//!   the temporal and orientation probes against that encode's thumbnails; thresholds are calibrated
//!   on honest renditions ([`Thresholds`], `media/data/thresholds.json`, made by
//!   `kinema media eval`).
//!
//! [`verify`] runs both and explains its verdict: every reason with what was measured, and all
//! scores. A check that could not measure anything (no frame pair decoded, a sampled pair
//! missing, audio whose length cannot be read) is a failure with its reason, never a pass.

use std::fmt;
use std::path::Path;

use serde::Serialize;

use crate::decode::{Decoded, FrameInfo, Keep, Request, decode_segments};
use crate::features::{self, Decodes, PairScores};
use crate::ffmpeg::Ffmpeg;
use crate::probe::{MediaInfo, media_file, probe_segment};
use crate::rendition::Rendition;
use crate::transcode::{EncodeSettings, Task, transcode};
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
    /// The job's x264 preset: the job fixes it with the rate control, so the verifier's own
    /// encode of the source is what an honest transcoder following the job makes, up to
    /// threads, scaler and build.
    pub preset: String,
    /// The job's x264 constant rate factor.
    pub crf: u8,
    /// The job's video bit-rate cap, bits per second.
    pub max_bitrate: u32,
}

impl Expect {
    /// A rendition of `width` x `height` made with Kinema's default encode settings (x264
    /// `medium`, CRF 23, the rung's cap, [`crate::rendition::max_bitrate`]), the source's frame
    /// rate, audio copied.
    pub fn rung(width: u32, height: u32) -> Self {
        let defaults = EncodeSettings::default();
        Self {
            width,
            height,
            fps: None,
            audio_copy: true,
            preset: defaults.preset,
            crf: defaults.crf,
            max_bitrate: crate::rendition::max_bitrate(width, height),
        }
    }

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
        // The job's preset and CRF are x264's to accept, as for any encode.
        EncodeSettings { preset: self.preset.clone(), crf: self.crf, ..Default::default() }
            .validate()?;
        if !(10_000..=200_000_000).contains(&self.max_bitrate) {
            return Err(Error::BadSetting {
                setting: "expect max bit rate",
                value: self.max_bitrate.to_string(),
                expected: "a bit rate from 10 kb/s to 200 Mb/s",
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

/// Where sample positions come from: 32 bytes the transcoder cannot know when it delivers its
/// work (a block hash finalized after the result, or fresh randomness).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Seed([u8; 32]);

impl Seed {
    /// Fresh randomness from the operating system.
    pub fn random() -> Self {
        let mut bytes = [0u8; 32];
        // A machine without an entropy source cannot verify unpredictably; there is no
        // fallback that would still be a secret.
        getrandom::fill(&mut bytes)
            .unwrap_or_else(|e| panic!("no operating system randomness: {e}"));
        Self(bytes)
    }

    /// The seed named by `text`: 1 to 64 bytes in hex (a block hash is 32), hashed to 32.
    pub fn from_hex(text: &str) -> Result<Self> {
        let bad = || Error::BadSetting {
            setting: "seed",
            value: text.to_owned(),
            expected: "1 to 64 bytes in hex, such as a block hash",
        };
        let text = text.trim();
        if text.is_empty() || text.len() > 128 || !text.len().is_multiple_of(2) {
            return Err(bad());
        }
        let bytes = (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(text.get(i..i + 2).ok_or_else(bad)?, 16).map_err(|_| bad()))
            .collect::<Result<Vec<u8>>>()?;
        Ok(Self::from_bytes(&bytes))
    }

    /// The seed made from `bytes` (hashed, so any length serves).
    pub fn from_bytes(bytes: &[u8]) -> Self {
        Self(blake3::derive_key("kinema/verify-samples/v1", bytes))
    }

    /// The 32 bytes that key the draw.
    pub fn key(&self) -> &[u8; 32] {
        &self.0
    }

    /// The 32 bytes in hex.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl std::fmt::Debug for Seed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Seed({})", self.to_hex())
    }
}

/// Why a rendition fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
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
    /// The rendition's audio lasts longer or shorter than the source's, or its length cannot be
    /// read.
    AudioDuration,
    /// Frames that do not decode: a rendition that decodes to nothing, fewer pictures decoded
    /// than the stream holds, or sampled pairs that could not be compared.
    Undecodable,
    /// The audio is not the source's packets copied bit-exact.
    AudioNotCopied,
    /// Luma is further from the source than the job's own encode by more than any honest
    /// encode was (PSNR, SSIM, edge sharpness).
    Quality,
    /// The colour changed, relative to the source's own colour, more than any honest encode's
    /// did (grayscale, hue).
    Colour,
    /// One region differs far more than the rest of the frame (overlay, logo, caption, damage).
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

/// Limits on a rendition's scores: a segment fails when its scores cross one. Every one is
/// relative to the content: to the job's own encode of the same frames, to the source's colour,
/// to the rest of the frame, to the neighbouring frames.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Limits {
    /// Maximum luma PSNR below the job's own encode, averaged over the pairs, dB.
    pub quality_deficit: f64,
    /// Maximum luma PSNR below the job's own encode in any one pair, dB.
    pub worst_deficit: f64,
    /// Maximum luma SSIM below the job's own encode, averaged over the pairs.
    pub ssim_deficit: f64,
    /// Maximum share of the source's edge sharpness lost beyond what the job's own encode lost,
    /// averaged over the pairs ([`Scores::blur`]).
    pub blur: f64,
    /// Maximum colour change relative to the source's own colour
    /// ([`crate::metrics::chroma_change`]).
    pub chroma_change: f64,
    /// Maximum local damage, dB ([`crate::metrics::local_damage`]).
    pub local_damage: f64,
    /// Maximum local detail loss, dB ([`crate::metrics::detail_loss`]).
    pub detail_loss: f64,
    /// Maximum change of a 16x16 luma block's mean beyond the job's own encode's, levels.
    pub block_shift: f64,
    /// Maximum gain of a neighbouring source frame over the aligned one, dB (thumbnails of
    /// every frame).
    pub offset_gain: f64,
    /// Maximum of how much more alike consecutive rendition frames are than the job's own
    /// encode's, on average, dB ([`Scores::repeat`]).
    pub repeat: f64,
}

impl Limits {
    /// The names of the limits, in the order of [`Limits::values`].
    pub const NAMES: [&'static str; 10] = [
        "quality_deficit",
        "worst_deficit",
        "ssim_deficit",
        "blur",
        "chroma_change",
        "local_damage",
        "detail_loss",
        "block_shift",
        "offset_gain",
        "repeat",
    ];

    /// The limits in the order of [`Limits::NAMES`].
    pub fn values(&self) -> [f64; 10] {
        [
            self.quality_deficit,
            self.worst_deficit,
            self.ssim_deficit,
            self.blur,
            self.chroma_change,
            self.local_damage,
            self.detail_loss,
            self.block_shift,
            self.offset_gain,
            self.repeat,
        ]
    }

    /// Limits from values in the order of [`Limits::NAMES`].
    pub fn from_values(v: [f64; 10]) -> Self {
        Self {
            quality_deficit: v[0],
            worst_deficit: v[1],
            ssim_deficit: v[2],
            blur: v[3],
            chroma_change: v[4],
            local_damage: v[5],
            detail_loss: v[6],
            block_shift: v[7],
            offset_gain: v[8],
            repeat: v[9],
        }
    }
}

/// Below this luma PSNR (dB) of the job's own encode against its source, the content is more
/// than the job's rate control can keep (noise, random detail at a small size), and honest
/// encoders disagree with each other in proportion: [`Thresholds::at`] widens the limits for
/// every dB below it.
pub const KNEE: f64 = 30.0;

/// How far (dB) a job's own encode at `job_psnr` is below [`KNEE`]; 0 above it or when unknown.
pub fn below_knee(job_psnr: f64) -> f64 {
    if job_psnr.is_finite() { (KNEE - job_psnr).max(0.0) } else { 0.0 }
}

/// Decision thresholds: the [`Limits`] for content the job's rate control keeps well (its own
/// encode at least [`KNEE`] dB from the source), and how much each widens for every dB the
/// job's own encode is below that. What the job's settings give on the content decides, not
/// what the transcoder delivered: the verifier makes that encode itself, so no rendition can
/// widen its own limits.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Thresholds {
    /// The limits where the job's own encode is at least [`KNEE`] dB from its source.
    pub clean: Limits,
    /// How much each limit widens per dB the job's own encode is below [`KNEE`].
    pub per_db: Limits,
}

impl Thresholds {
    /// The thresholds calibrated by `kinema media eval` and kept in the repository.
    pub fn calibrated() -> Self {
        // The file is part of the crate and checked by a test; it always parses.
        serde_json::from_str(include_str!("../data/thresholds.json"))
            .unwrap_or_else(|e| unreachable!("media/data/thresholds.json: {e}"))
    }

    /// The limits for content whose job's own encode is `job_psnr` dB from its source (the
    /// clean limits when that is unknown).
    pub fn at(&self, job_psnr: f64) -> Limits {
        let below = below_knee(job_psnr);
        let (clean, per_db) = (self.clean.values(), self.per_db.values());
        Limits::from_values(std::array::from_fn(|k| clean[k] + per_db[k] * below))
    }
}

/// The scores of a rendition: its worst (or, where one frame's type and quantizer vary more than
/// an attack, average) values over the sampled pairs, and the temporal check over every frame.
/// With no pair measured, the pair scores are NaN (`null` in JSON) and the verdict fails on
/// [`Reason::Undecodable`].
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Scores {
    /// Frame pairs compared.
    pub pairs: usize,
    /// Lowest luma PSNR, dB.
    #[serde(deserialize_with = "nan_if_null")]
    pub psnr_y: f64,
    /// Lowest chroma PSNR, dB.
    #[serde(deserialize_with = "nan_if_null")]
    pub psnr_chroma: f64,
    /// Lowest luma SSIM.
    #[serde(deserialize_with = "nan_if_null")]
    pub ssim: f64,
    /// Lowest luma MS-SSIM.
    #[serde(deserialize_with = "nan_if_null")]
    pub ms_ssim: f64,
    /// Luma PSNR of the job's own encode against the source, averaged over the pairs, dB: how
    /// much of this content the job's settings keep ([`Thresholds::at`]).
    #[serde(default = "nan", deserialize_with = "nan_if_null")]
    pub job_psnr: f64,
    /// Luma PSNR below the job's own encode, averaged over the pairs, dB.
    #[serde(deserialize_with = "nan_if_null")]
    pub quality_deficit: f64,
    /// Luma PSNR below the job's own encode in the worst pair, dB.
    #[serde(deserialize_with = "nan_if_null")]
    pub worst_deficit: f64,
    /// Luma SSIM below the job's own encode, averaged over the pairs.
    #[serde(deserialize_with = "nan_if_null")]
    pub ssim_deficit: f64,
    /// Share of the source's edge sharpness kept ([`PairScores::edges_kept`]), averaged.
    #[serde(deserialize_with = "nan_if_null")]
    pub edges_kept: f64,
    /// Edge sharpness lost beyond what the job's own encode lost, averaged over the pairs
    /// (`job_edges_kept - edges_kept`): an encoder that loses edges at the job's rate control
    /// loses them in the job's own encode too; a blur takes them where the job keeps them.
    #[serde(deserialize_with = "nan_if_null")]
    pub blur: f64,
    /// Colour change relative to the source's own colour as the job's own encode keeps it, the
    /// median over the pairs (a colour
    /// attack changes every frame; one frame of a fade has too little colour to tell).
    #[serde(deserialize_with = "nan_if_null")]
    pub chroma_change: f64,
    /// Local damage, the median over the pairs (damage that stays; one frame two encoders
    /// coded differently does not), dB.
    #[serde(deserialize_with = "nan_if_null")]
    pub local_damage: f64,
    /// Local detail loss, the median over the pairs, dB ([`crate::metrics::detail_loss`]).
    #[serde(default, deserialize_with = "nan_if_null")]
    pub detail_loss: f64,
    /// Lowest worst-block PSNR, dB.
    #[serde(deserialize_with = "nan_if_null")]
    pub worst_block_psnr: f64,
    /// Largest change of a 16x16 luma block's mean beyond the job's own encode's, levels.
    #[serde(deserialize_with = "nan_if_null")]
    pub block_shift: f64,
    /// Largest gain of a misaligned source frame over the aligned one, dB, over every frame.
    #[serde(deserialize_with = "nan_if_null")]
    pub offset_gain: f64,
    /// The rendition frame where that gain was seen.
    pub offset_frame: usize,
    /// How much more alike consecutive rendition frames are than the job's own encode's, on
    /// average over every frame, dB ([`features::Temporal::repeat`]).
    #[serde(default, deserialize_with = "nan_if_null")]
    pub repeat: f64,
    /// Rendition frames the temporal check compared (all of them, when they decode).
    pub frames_compared: usize,
    /// Every sampled pair.
    pub per_pair: Vec<PairScores>,
}

fn nan() -> f64 {
    f64::NAN
}

/// A score JSON wrote as `null` (NaN or infinite) read back as NaN.
fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    Ok(<Option<f64> as serde::Deserialize>::deserialize(d)?.unwrap_or(f64::NAN))
}

impl Scores {
    /// Folds the pairs and the temporal check into the scores.
    pub fn from_pairs(per_pair: Vec<PairScores>, temporal: features::Temporal) -> Self {
        let fold = |f: &dyn Fn(&PairScores) -> f64, pick: fn(f64, f64) -> f64| {
            per_pair.iter().map(f).reduce(pick).unwrap_or(f64::NAN)
        };
        let mean = |f: &dyn Fn(&PairScores) -> f64| {
            per_pair.iter().map(f).sum::<f64>() / per_pair.len() as f64
        };
        let median = |f: &dyn Fn(&PairScores) -> f64| {
            let mut v: Vec<f64> = per_pair.iter().map(f).collect();
            v.sort_by(f64::total_cmp);
            v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
        };
        Self {
            pairs: per_pair.len(),
            psnr_y: fold(&|p| p.psnr[0], f64::min),
            psnr_chroma: fold(&|p| p.psnr[1].min(p.psnr[2]), f64::min),
            ssim: fold(&|p| p.ssim, f64::min),
            ms_ssim: fold(&|p| p.ms_ssim, f64::min),
            job_psnr: mean(&|p| p.job_psnr),
            quality_deficit: mean(&|p| p.job_psnr - p.psnr[0]),
            worst_deficit: fold(&|p| p.job_psnr - p.psnr[0], f64::max),
            ssim_deficit: mean(&|p| p.job_ssim - p.ssim),
            edges_kept: mean(&|p| p.edges_kept),
            blur: mean(&|p| p.job_edges_kept - p.edges_kept),
            chroma_change: median(&|p| p.chroma_change),
            local_damage: median(&|p| p.local_damage),
            detail_loss: median(&|p| p.detail_loss),
            worst_block_psnr: fold(&|p| p.worst_block_psnr, f64::min),
            block_shift: fold(&|p| p.block_shift, f64::max),
            offset_gain: temporal.offset_gain,
            offset_frame: temporal.offset_frame,
            repeat: temporal.repeat,
            frames_compared: temporal.frames,
            per_pair,
        }
    }

    /// The scores the [`Limits`] bound, one per limit.
    pub fn bounded(&self) -> Limits {
        Limits {
            quality_deficit: self.quality_deficit,
            worst_deficit: self.worst_deficit,
            ssim_deficit: self.ssim_deficit,
            blur: self.blur,
            chroma_change: self.chroma_change,
            local_damage: self.local_damage,
            detail_loss: self.detail_loss,
            block_shift: self.block_shift,
            offset_gain: self.offset_gain,
            repeat: self.repeat,
        }
    }

    /// The quality findings against `t` (the limits for this content, [`Thresholds::at`]).
    pub fn findings(&self, t: &Limits) -> Vec<Finding> {
        let mut out = Vec::new();
        let mut check = |bad: bool, reason, detail: String| {
            if bad {
                out.push(Finding { reason, detail });
            }
        };
        check(
            self.quality_deficit > t.quality_deficit
                || self.worst_deficit > t.worst_deficit
                || self.ssim_deficit > t.ssim_deficit,
            Reason::Quality,
            format!(
                "luma PSNR {:.2} dB below the job's own encode on average (max {:.2}), {:.2} dB \
                 in the worst pair (max {:.2}); SSIM {:.4} below (max {:.4})",
                self.quality_deficit,
                t.quality_deficit,
                self.worst_deficit,
                t.worst_deficit,
                self.ssim_deficit,
                t.ssim_deficit
            ),
        );
        check(
            self.blur > t.blur,
            Reason::Quality,
            format!(
                "keeps {:.0} % of the sharpness of the source's edges, {:.1} % less than the \
                 job's own encode (max {:.1} %): blurred",
                self.edges_kept * 100.0,
                self.blur * 100.0,
                t.blur * 100.0
            ),
        );
        check(
            self.chroma_change > t.chroma_change,
            Reason::Colour,
            format!(
                "the colour moved by {:.0} % of the source's own colour (max {:.0} %)",
                self.chroma_change * 100.0,
                t.chroma_change * 100.0
            ),
        );
        check(
            self.block_shift > t.block_shift
                || self.local_damage > t.local_damage
                || self.detail_loss > t.detail_loss,
            Reason::Overlay,
            format!(
                "a 16x16 block's mean moved {:.1} levels more than in the job's own encode (max \
                 {:.1}); the worst 32x32 window errs {:.2} dB more than the rest of its frame \
                 (max {:.2}) and keeps {:.2} dB less of its detail (max {:.2}), against the \
                 job's own encode",
                self.block_shift,
                t.block_shift,
                self.local_damage,
                t.local_damage,
                self.detail_loss,
                t.detail_loss
            ),
        );
        check(
            self.offset_gain > t.offset_gain,
            Reason::Temporal,
            format!(
                "at frame {}, a neighbouring source frame matches {:.2} dB better (max {:.2})",
                self.offset_frame, self.offset_gain, t.offset_gain
            ),
        );
        check(
            self.repeat > t.repeat,
            Reason::Temporal,
            format!(
                "consecutive frames are {:.2} dB more alike than in the job's own encode, on \
                 average (max {:.2}): frames repeated",
                self.repeat, t.repeat
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
    /// The seed the sample positions were drawn from, in hex (a rerun with it measures the same
    /// frames).
    pub seed: String,
}

/// Frame pairs sampled per segment.
pub const SAMPLES: usize = 10;

/// Everything the verdict is made from: the coarse checks and the scores of the pairs sampled by
/// `seed`.
pub fn analyse(
    ff: &Ffmpeg,
    source: &Path,
    rendition: &Path,
    expect: &Expect,
    seed: &Seed,
) -> Result<(Coarse, Scores)> {
    inspect(ff, source, rendition, expect, Some(seed))
}

/// Verifies `rendition` against `source`: coarse checks, then the classifier on the pairs
/// sampled by `seed`.
pub fn verify(
    ff: &Ffmpeg,
    source: &Path,
    rendition: &Path,
    expect: &Expect,
    thresholds: &Thresholds,
    seed: &Seed,
) -> Result<Report> {
    let (coarse, scores) = analyse(ff, source, rendition, expect, seed)?;
    Ok(judge(coarse, scores, thresholds, seed))
}

/// Runs the coarse checks of `rendition` against `source` alone.
pub fn coarse(ff: &Ffmpeg, source: &Path, rendition: &Path, expect: &Expect) -> Result<Coarse> {
    Ok(inspect(ff, source, rendition, expect, None)?.0)
}

/// The audio a stream copy must reproduce.
#[derive(Debug, Clone, PartialEq)]
enum Audio {
    /// The elementary stream of an MPEG-TS segment ([`ts`]).
    Stream(Option<AudioBytes>),
    /// `pts,md5` of every audio packet, from ffprobe.
    Packets(Vec<String>),
}

impl Audio {
    /// How long the audio lasts, in seconds, when that can be read.
    fn duration(&self) -> Option<f64> {
        match self {
            Audio::Stream(bytes) => bytes.as_ref()?.duration(),
            Audio::Packets(packets) => {
                let times: Vec<f64> = packets
                    .iter()
                    .filter_map(|p| p.split(',').next()?.parse::<f64>().ok())
                    .collect();
                span_with_last(&times)
            }
        }
    }
}

/// The span of sorted-or-not times plus one average gap (the last packet lasts as long as the
/// others); `None` below two times.
pub(crate) fn span_with_last(times: &[f64]) -> Option<f64> {
    let lo = times.iter().copied().reduce(f64::min)?;
    let hi = times.iter().copied().reduce(f64::max)?;
    (times.len() >= 2).then(|| (hi - lo) * times.len() as f64 / (times.len() - 1) as f64)
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

/// The job's own encodes of `source` for every expectation, in `dir`: one x264 run per preset
/// and CRF, each making every rung it is asked for from one decode of the source (as a
/// transcode worker does); returns the encode of each expectation, in their order.
fn job_encodes(
    ff: &Ffmpeg,
    source: &Path,
    expects: &[&Expect],
    dir: &Path,
) -> Result<Vec<std::path::PathBuf>> {
    let rung = |e: &Expect| Rendition {
        name: format!("{}x{}", e.width, e.height),
        width: e.width,
        height: e.height,
        max_bitrate: e.max_bitrate,
    };
    let path = |e: &Expect| {
        dir.join(format!(
            "job-{}-{}-{}x{}-{}.ts",
            e.preset, e.crf, e.width, e.height, e.max_bitrate
        ))
    };
    let mut settings: Vec<(&str, u8)> =
        expects.iter().map(|e| (e.preset.as_str(), e.crf)).collect();
    settings.sort_unstable();
    settings.dedup();
    for (preset, crf) in settings {
        let mut rungs: Vec<(Rendition, std::path::PathBuf)> = expects
            .iter()
            .filter(|e| (e.preset.as_str(), e.crf) == (preset, crf))
            .map(|e| (rung(e), path(e)))
            .collect();
        rungs.sort_by(|a, b| a.1.cmp(&b.1));
        rungs.dedup_by(|a, b| a.1 == b.1);
        let outputs = rungs.iter().map(|(r, p)| (r, p.clone())).collect();
        let settings = EncodeSettings { preset: preset.into(), crf, ..Default::default() };
        transcode(ff, &Task { source, outputs }, &settings, None)?;
    }
    Ok(expects.iter().map(|e| path(e)).collect())
}

/// What checking one rendition needs before anything is decoded.
struct Prepared<'a> {
    rendition: &'a Path,
    expect: &'a Expect,
    src: MediaInfo,
    src_audio: Audio,
    out: MediaInfo,
    out_audio: Audio,
    /// The source frame of every rendition frame.
    pairs: Vec<usize>,
    /// The sampled rendition frames, and their source frames.
    picks: Vec<usize>,
    src_picks: Vec<usize>,
}

/// Reads both segments and draws the samples (none without a seed).
fn prepare<'a>(
    ff: &Ffmpeg,
    source: &Path,
    rendition: &'a Path,
    expect: &'a Expect,
    seed: Option<&Seed>,
) -> Result<Prepared<'a>> {
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
    let (src_times, out_times) = (absolute_times(&src), absolute_times(&out));
    let pairs = features::pair_by_time(&src_times, &out_times);
    let picks = seed.map_or_else(Vec::new, |seed| features::sample(out_times.len(), SAMPLES, seed));
    let src_picks: Vec<usize> = picks.iter().filter_map(|&j| pairs.get(j).copied()).collect();
    Ok(Prepared { rendition, expect, src, src_audio, out, out_audio, pairs, picks, src_picks })
}

/// What one rendition's check decoded: the rendition, and the job's own encode when there is one.
type CheckDecodes = (Decoded, Option<Decoded>);

/// Decodes the source once (every sampled source frame of every check kept) and each check's
/// rendition and job encode (at the rendition's size, so a rendition of the wrong size is still
/// measured and fails on its size, not for want of pairs), all in one ffmpeg.
fn decode_checks(
    ff: &Ffmpeg,
    source: &Path,
    src: &MediaInfo,
    checks: &[&Prepared<'_>],
    jobs: Option<&[std::path::PathBuf]>,
    with_renditions: bool,
) -> Result<(Decoded, Vec<CheckDecodes>)> {
    let mut src_picks: Vec<usize> =
        checks.iter().flat_map(|p| p.src_picks.iter().copied()).collect();
    src_picks.sort_unstable();
    src_picks.dedup();
    let request = |path, info: &MediaInfo, picks| Request {
        path,
        width: info.video.width as usize,
        height: info.video.height as usize,
        keep: Keep::Only(picks),
    };
    let mut requests = vec![request(source, src, &src_picks)];
    for (k, p) in checks.iter().enumerate() {
        if with_renditions {
            requests.push(request(p.rendition, &p.out, &p.picks));
        }
        if let Some(jobs) = jobs {
            requests.push(request(&jobs[k], &p.out, &p.src_picks));
        }
    }
    let mut decoded = decode_segments(ff, &requests)?.into_iter();
    let nothing = || Decoded { frames: Vec::new(), thumbs: Vec::new(), pictures: Vec::new() };
    let source_decoded = decoded.next().unwrap_or_else(nothing);
    let per_check = checks
        .iter()
        .map(|_| {
            let out =
                if with_renditions { decoded.next().unwrap_or_else(nothing) } else { nothing() };
            let job = jobs.map(|_| decoded.next().unwrap_or_else(nothing));
            (out, job)
        })
        .collect();
    Ok((source_decoded, per_check))
}

/// Reads both segments, then (with a seed) makes the job's own encode of the source and decodes
/// all three in one ffmpeg, keeping whole only the sampled pictures and their partners.
fn inspect(
    ff: &Ffmpeg,
    source: &Path,
    rendition: &Path,
    expect: &Expect,
    seed: Option<&Seed>,
) -> Result<(Coarse, Scores)> {
    let prepared = prepare(ff, source, rendition, expect, seed)?;
    let tmp = temp_dir()?;
    let jobs = match seed {
        Some(_) => Some(job_encodes(ff, source, &[expect], tmp.path())?),
        None => None,
    };
    let checks = [&prepared];
    let mut findings = Vec::new();
    let (src_decoded, mut decoded) =
        match decode_checks(ff, source, &prepared.src, &checks, jobs.as_deref(), true) {
            Ok(decoded) => decoded,
            Err(error) => {
                // Whose fault? Without the rendition, the source and the job's encode must decode,
                // or the verifier itself cannot work here.
                let alone =
                    decode_checks(ff, source, &prepared.src, &checks, jobs.as_deref(), false)?;
                let detail = match error {
                    Error::Ffmpeg { detail, .. } => detail,
                    other => other.to_string(),
                };
                findings.push(Finding {
                    reason: Reason::Undecodable,
                    detail: format!("the rendition does not decode: {detail}"),
                });
                alone
            }
        };
    let (out_decoded, job_decoded) = decoded.remove(0);
    Ok(finish(&prepared, &src_decoded, out_decoded, job_decoded.as_ref(), findings, seed.is_some()))
}

fn temp_dir() -> Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix("kinema-verify")
        .tempdir()
        .map_err(|e| Error::io(std::env::temp_dir(), "cannot create a directory in", e))
}

/// The coarse checks and the scores of one rendition from what was decoded: `findings` are
/// those found before (a rendition that did not decode).
fn finish(
    p: &Prepared<'_>,
    src_decoded: &Decoded,
    out_decoded: Decoded,
    job_decoded: Option<&Decoded>,
    mut findings: Vec<Finding>,
    seeded: bool,
) -> (Coarse, Scores) {
    findings.extend(coarse_findings(
        &p.src,
        &p.out,
        &out_decoded.frames,
        [&p.src_audio, &p.out_audio],
        p.expect,
    ));
    // The decoded rendition against its own stream: every picture the stream holds must decode.
    let (held, got) = (p.out.video.frame_count as usize, out_decoded.frames.len());
    if got != held && !findings.iter().any(|f| f.reason == Reason::Undecodable) {
        findings.push(Finding {
            reason: Reason::Undecodable,
            detail: if got == 0 {
                format!("the stream holds {held} pictures and none decodes")
            } else {
                format!("the stream holds {held} pictures, {got} decode")
            },
        });
    }
    // Pairs from the streams' own times: the decoder's reported times for frames of irregular
    // spacing and B-frames are its guesses. (A decoded count that differs from the stream's is
    // a finding above.)
    let temporal =
        features::temporal_all(job_decoded.unwrap_or(src_decoded), &out_decoded, &p.pairs);
    let (per_pair, missing) = match job_decoded {
        Some(job) => features::measure(
            Decodes { source: src_decoded, job, rendition: &out_decoded },
            &p.pairs,
            &p.picks,
        ),
        None => (Vec::new(), Vec::new()),
    };
    if seeded {
        if per_pair.is_empty() {
            findings.push(Finding {
                reason: Reason::Undecodable,
                detail: format!(
                    "no frame pair could be compared ({got} of {held} rendition pictures decoded)"
                ),
            });
        } else if !missing.is_empty() {
            findings.push(Finding {
                reason: Reason::Undecodable,
                detail: format!(
                    "sampled frames {missing:?} did not decode; {} of {} pairs compared",
                    per_pair.len(),
                    p.picks.len()
                ),
            });
        }
    }
    let scores = Scores::from_pairs(per_pair, temporal);
    let coarse = Coarse {
        findings,
        source: p.src.clone(),
        rendition: p.out.clone(),
        frames: out_decoded.frames,
    };
    (coarse, scores)
}

/// The verdict on a rendition's coarse findings and scores.
fn judge(coarse: Coarse, scores: Scores, thresholds: &Thresholds, seed: &Seed) -> Report {
    let mut reasons = coarse.findings;
    reasons.extend(scores.findings(&thresholds.at(scores.job_psnr)));
    let verdict = if reasons.is_empty() { Verdict::Pass } else { Verdict::Fail };
    Report { verdict, reasons, scores, seed: seed.to_hex() }
}

/// Verifies every rendition of one source segment in one pass, as a verifier drawn for a whole
/// segment does: the source is decoded once, the job's own encodes of every rung come from one
/// x264 run per preset and CRF (one decode of the source, as a transcode worker makes them),
/// and every segment is decoded in one ffmpeg. Each answer is the one [`verify`] gives for
/// that rendition alone with the same seed. A rendition that cannot be compared at all is an
/// error of its own; when the joint decode fails (a rendition that does not decode), each
/// rendition is verified alone, so the failure lands on the one it belongs to.
pub fn verify_all(
    ff: &Ffmpeg,
    source: &Path,
    renditions: &[(&Path, &Expect)],
    thresholds: &Thresholds,
    seed: &Seed,
) -> Result<Vec<Result<Report>>> {
    let prepared: Vec<Result<Prepared<'_>>> =
        renditions.iter().map(|&(r, e)| prepare(ff, source, r, e, Some(seed))).collect();
    let ready: Vec<&Prepared<'_>> = prepared.iter().filter_map(|p| p.as_ref().ok()).collect();
    let mut joint = if ready.is_empty() {
        None
    } else {
        let tmp = temp_dir()?;
        let expects: Vec<&Expect> = ready.iter().map(|p| p.expect).collect();
        let jobs = job_encodes(ff, source, &expects, tmp.path())?;
        decode_checks(ff, source, &ready[0].src, &ready, Some(&jobs), true).ok().map(
            |(src, decoded)| {
                let reports: Vec<Report> = ready
                    .iter()
                    .zip(decoded)
                    .map(|(p, (out, job))| {
                        let (coarse, scores) = finish(p, &src, out, job.as_ref(), Vec::new(), true);
                        judge(coarse, scores, thresholds, seed)
                    })
                    .collect();
                reports.into_iter()
            },
        )
    };
    Ok(prepared
        .into_iter()
        .zip(renditions)
        .map(|(p, &(rendition, expect))| {
            p?;
            match joint.as_mut().and_then(|reports| reports.next()) {
                Some(report) => Ok(report),
                None => verify(ff, source, rendition, expect, thresholds, seed),
            }
        })
        .collect())
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

    if src.audio.is_some() {
        if out.audio.is_none() {
            fail(Reason::AudioMissing, "the source segment has audio, the rendition none".into());
        } else {
            if expect.audio_copy
                && let Some(detail) = audio_difference(src_audio, out_audio)
            {
                fail(Reason::AudioNotCopied, detail);
            }
            match (src_audio.duration(), out_audio.duration()) {
                (Some(a), Some(b)) if (a - b).abs() <= AUDIO_SLACK => {}
                (Some(a), Some(b)) => fail(
                    Reason::AudioDuration,
                    format!("the audio lasts {b:.3} s, the source's {a:.3} s"),
                ),
                (a, b) => fail(
                    Reason::AudioDuration,
                    format!(
                        "the length of the {} audio cannot be read",
                        match (a, b) {
                            (None, None) => "source's and the rendition's",
                            (None, _) => "source's",
                            _ => "rendition's",
                        }
                    ),
                ),
            }
        }
    }
    findings
}

/// How far the rendition's audio may last from the source's, seconds: a few AAC frames, what a
/// re-encode's priming and frame boundaries move it by.
pub const AUDIO_SLACK: f64 = 0.1;

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
        let e = |w, h, fps| Expect { fps, ..Expect::rung(w, h) };
        assert!(e(640, 360, None).validate().is_ok());
        assert!(e(641, 360, None).validate().is_err());
        assert!(e(0, 0, None).validate().is_err());
        assert!(e(640, 360, Some(0.0)).validate().is_err());
        assert!(e(640, 360, Some(29.97)).validate().is_ok());
        assert!(Expect { crf: 52, ..e(640, 360, None) }.validate().is_err());
        assert!(Expect { preset: "turbo".into(), ..e(640, 360, None) }.validate().is_err());
        assert!(Expect { max_bitrate: 0, ..e(640, 360, None) }.validate().is_err());
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
