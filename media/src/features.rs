//! The verifier's features on sampled frame pairs.
//!
//! Rendition frames are paired with the source frames presented at the same time; the source is
//! brought to the rendition's size by [`crate::scale`], and the job's own encode of the source
//! (the verifier makes it with the job's rate control) is the measure of what an honest encode
//! keeps. Per pair: PSNR of each plane, SSIM and MS-SSIM of luma, and the same for the job's
//! encode; the share of the source's edges kept (blur); the colour against the job's encode's
//! ([`metrics::chroma_change`]); local damage and block mean shifts beyond the job's encode's
//! (overlays, logos, captions, damaged patches); and two probes on the frames' luma thumbnails
//! ([`crate::decode::THUMB`]) against the job's encode's: which nearby frame the rendition frame
//! really matches (drops, duplicates, stills, swaps), and whether a flipped or rotated frame
//! matches better than the upright one. Over every frame: whether the rendition repeats itself
//! more than the job's encode does (duplicates, stills).

use serde::{Deserialize, Serialize};

use crate::decode::Decoded;
use crate::frame::{Frame, Plane, PlaneRef};
use crate::metrics;
use crate::scale::{resize, resize_frame};
use crate::verify::Seed;

/// How far (in frames) temporal alignment looks either way.
const SEARCH: isize = 3;
/// How much better (dB, on thumbnails) a flip or rotation must match to be reported.
const ORIENTATION_GAIN: f64 = 3.0;
/// Thumbnails closer than this (dB) are the same picture to the temporal probes: a static scene
/// under grain differs from frame to frame only in what a 64x36 thumbnail averages away, and a
/// gain between two matches that good is noise, not a swapped frame.
pub const TEMPORAL_CAP: f64 = 50.0;

/// A flip or rotation of the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Orientation {
    /// Mirrored left to right.
    FlipHorizontal,
    /// Mirrored top to bottom.
    FlipVertical,
    /// Turned half a turn.
    Rotate180,
    /// Turned a quarter turn clockwise (then squeezed back to the frame's size).
    Rotate90,
    /// Turned a quarter turn counter-clockwise.
    Rotate270,
}

/// What one sampled pair measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairScores {
    /// Index of the rendition frame.
    pub frame: usize,
    /// Index of the source frame presented at the same time.
    pub source_frame: usize,
    /// PSNR of Y, U and V in dB (capped at 100 for identical planes).
    pub psnr: [f64; 3],
    /// SSIM of luma.
    pub ssim: f64,
    /// MS-SSIM of luma.
    pub ms_ssim: f64,
    /// How sharp the source's steepest edges stay ([`metrics::edges_kept`]).
    pub edges_kept: f64,
    /// Luma PSNR of the job's own encode of the source frame (what the job's settings give on
    /// this content), dB.
    pub job_psnr: f64,
    /// Luma SSIM of the job's own encode.
    pub job_ssim: f64,
    /// How sharp the source's edges stay in the job's own encode.
    pub job_edges_kept: f64,
    /// The colour changed, relative to the colour of the job's own encode of the source
    /// ([`metrics::chroma_change`]).
    pub chroma_change: f64,
    /// The worst tile's error beyond the job's own encode's, less the frame's, dB
    /// ([`metrics::local_damage`]).
    pub local_damage: f64,
    /// How much less detail the worst 32x32 window keeps than in the job's own encode, beyond
    /// the frame, dB ([`metrics::detail_loss`]).
    #[serde(default)]
    pub detail_loss: f64,
    /// PSNR of the worst 16x16 luma block in dB.
    pub worst_block_psnr: f64,
    /// The largest change of a 16x16 luma block's mean beyond the job's own encode's, in levels
    /// ([`metrics::block_shift`]).
    pub block_shift: f64,
    /// Offset (in source frames) of the best-matching source frame; 0 when aligned.
    pub best_offset: isize,
    /// How much better (dB, on thumbnails) the best offset matches than offset 0.
    pub offset_gain: f64,
    /// A flip or rotation that matches clearly better than the upright source, with its gain
    /// in dB.
    pub orientation: Option<(Orientation, f64)>,
}

/// Indices of up to `n` of `frames` rendition frames: the segment cut into `n` equal strata,
/// one frame drawn from each by `seed`. Every frame can be drawn, none can be predicted without
/// the seed, and the samples still cover the whole segment.
pub fn sample(frames: usize, n: usize, seed: &Seed) -> Vec<usize> {
    let key = seed.key();
    if frames == 0 || n == 0 {
        return Vec::new();
    }
    let n = n.min(frames);
    let mut hasher = blake3::Hasher::new_keyed(key);
    hasher.update(&(frames as u64).to_le_bytes());
    let mut stream = hasher.finalize_xof();
    (0..n)
        .map(|k| {
            let (lo, hi) = (k * frames / n, (k + 1) * frames / n);
            let mut word = [0u8; 8];
            stream.fill(&mut word);
            lo + (u64::from_le_bytes(word) % (hi - lo) as u64) as usize
        })
        .collect()
}

/// For every rendition frame, the source frame presented nearest to it, both timelines counted
/// from their first frame (the segments' own clocks may differ by a constant).
pub fn pair_by_time(source: &[f64], rendition: &[f64]) -> Vec<usize> {
    let (Some(&s0), Some(&r0)) = (source.first(), rendition.first()) else {
        return Vec::new();
    };
    rendition
        .iter()
        .map(|&t| {
            let t = t - r0 + s0;
            let i = source.partition_point(|&s| s < t);
            [i.checked_sub(1), Some(i)]
                .into_iter()
                .flatten()
                .filter(|&k| k < source.len())
                .min_by(|&a, &b| (source[a] - t).abs().total_cmp(&(source[b] - t).abs()))
                .unwrap_or(0)
        })
        .collect()
}

/// The three decodes a pair is measured from.
#[derive(Debug, Clone, Copy)]
pub struct Decodes<'a> {
    /// The source segment: every thumbnail, the paired pictures.
    pub source: &'a Decoded,
    /// The job's own encode of the source: the paired pictures, at the rendition's size.
    pub job: &'a Decoded,
    /// The rendition: every thumbnail, the sampled pictures.
    pub rendition: &'a Decoded,
}

/// Measures the sampled pairs: `samples` are rendition frame indices, `pairs[j]` the source
/// frame of rendition frame `j`. Returns the scores and the sampled frames that could not be
/// compared (a picture the decoder did not give).
pub fn measure(
    d: Decodes<'_>,
    pairs: &[usize],
    samples: &[usize],
) -> (Vec<PairScores>, Vec<usize>) {
    let mut missing = Vec::new();
    let scores = samples
        .iter()
        .filter_map(|&j| {
            let measured = pairs.get(j).and_then(|&i| measure_pair(d, j, i));
            if measured.is_none() {
                missing.push(j);
            }
            measured
        })
        .collect();
    (scores, missing)
}

fn measure_pair(d: Decodes<'_>, j: usize, i: usize) -> Option<PairScores> {
    let (out, src, job) = (d.rendition.picture(j)?, d.source.picture(i)?, d.job.picture(i)?);
    let out_thumb = d.rendition.thumbs.get(j)?;
    let job_thumb = d.job.thumbs.get(i)?;
    let (w, h) = (out.width(), out.height());
    if (job.width(), job.height()) != (w, h) {
        return None;
    }
    let reference = resize_frame(src, w, h);
    let psnr: [f64; 3] = std::array::from_fn(|p| {
        cap(metrics::psnr(metrics::mse(reference.planes[p].as_ref(), out.planes[p].as_ref())))
    });
    let (ry, oy, jy) =
        (reference.planes[0].as_ref(), out.planes[0].as_ref(), job.planes[0].as_ref());
    let blocks = metrics::block_errors(ry, oy, 16);
    let (best_offset, offset_gain) = temporal(&d.job.thumbs, i, out_thumb);
    Some(PairScores {
        frame: j,
        source_frame: i,
        psnr,
        ssim: metrics::ssim(ry, oy),
        ms_ssim: metrics::ms_ssim(ry, oy),
        edges_kept: metrics::edges_kept(ry, oy),
        job_psnr: cap(metrics::psnr(metrics::mse(ry, jy))),
        job_ssim: metrics::ssim(ry, jy),
        job_edges_kept: metrics::edges_kept(ry, jy),
        chroma_change: metrics::chroma_change(chroma(job), chroma(out)),
        local_damage: metrics::local_damage(ry, jy, oy),
        detail_loss: metrics::detail_loss(jy, oy),
        worst_block_psnr: cap(metrics::psnr(blocks.worst())),
        block_shift: metrics::block_shift(ry, jy, oy),
        best_offset,
        offset_gain,
        orientation: orientation(job_thumb, out_thumb),
    })
}

/// What the temporal probes found over every rendition frame ([`temporal_all`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Temporal {
    /// The largest gain of a neighbouring reference frame over the paired one, dB.
    pub offset_gain: f64,
    /// The rendition frame where that gain was seen.
    pub offset_frame: usize,
    /// How much more alike (dB) consecutive rendition frames are than the reference's frames
    /// they stand for, on average over the segment: a rendition that repeats frames the job's
    /// encode changes (duplicates, a still) is more alike than the job's own encode, whatever
    /// the source's motion.
    pub repeat: f64,
    /// Rendition frames compared.
    pub frames: usize,
}

/// The temporal probes on every rendition frame's thumbnail, against `reference` (the job's own
/// encode of the source, frame for frame): the largest gain of a neighbouring frame over the
/// paired one, with the rendition frame it was seen at, and how much more the rendition repeats
/// itself than the reference does. Against the job's encode, not the source: an encoder that
/// cannot keep a frame's detail under the job's rate control loses it in the job's encode too,
/// so a neighbour matching a smoothed frame as well as its own is no sign of a swap.
pub fn temporal_all(reference: &Decoded, rendition: &Decoded, pairs: &[usize]) -> Temporal {
    let mut found = Temporal { offset_gain: 0.0, offset_frame: 0, repeat: 0.0, frames: 0 };
    let (mut repeats, mut steps) = (0.0, 0usize);
    let thumbs = &rendition.thumbs;
    for (j, (thumb, &i)) in thumbs.iter().zip(pairs).enumerate() {
        if i >= reference.thumbs.len() {
            continue;
        }
        found.frames += 1;
        let (offset, gain) = temporal(&reference.thumbs, i, thumb);
        if offset != 0 && gain > found.offset_gain {
            (found.offset_gain, found.offset_frame) = (gain, j);
        }
        // This frame against the one before, in the rendition and in the reference.
        if let Some(&before) = j.checked_sub(1).and_then(|b| pairs.get(b))
            && before < i
        {
            let alike = temporal_psnr(&thumbs[j - 1], thumb);
            let reference_alike = temporal_psnr(&reference.thumbs[before], &reference.thumbs[i]);
            repeats += alike - reference_alike;
            steps += 1;
        }
    }
    if steps > 0 {
        found.repeat = repeats / steps as f64;
    }
    found
}

fn chroma(f: &Frame) -> [PlaneRef<'_>; 2] {
    [f.planes[1].as_ref(), f.planes[2].as_ref()]
}

fn cap(db: f64) -> f64 {
    db.min(100.0)
}

fn thumb_psnr(a: &Plane, b: &Plane) -> f64 {
    cap(metrics::psnr(metrics::mse(a.as_ref(), b.as_ref())))
}

/// Thumbnail PSNR as the temporal probes see it: at most [`TEMPORAL_CAP`].
fn temporal_psnr(a: &Plane, b: &Plane) -> f64 {
    thumb_psnr(a, b).min(TEMPORAL_CAP)
}

/// The source frame near `i` whose thumbnail best matches `out`, and its gain over frame `i`.
fn temporal(thumbs: &[Plane], i: usize, out: &Plane) -> (isize, f64) {
    let here = temporal_psnr(&thumbs[i], out);
    let mut best = (0, here);
    for d in -SEARCH..=SEARCH {
        let k = i as isize + d;
        if d == 0 || k < 0 || k as usize >= thumbs.len() {
            continue;
        }
        let v = temporal_psnr(&thumbs[k as usize], out);
        if v > best.1 {
            best = (d, v);
        }
    }
    (best.0, best.1 - here)
}

/// A flip or rotation of the source thumbnail that matches `out` at least [`ORIENTATION_GAIN`]
/// better than the upright one. Quarter turns are squeezed back to the frame's shape, as a
/// rendition of the asked size would have to be.
fn orientation(source: &Plane, out: &Plane) -> Option<(Orientation, f64)> {
    let upright = thumb_psnr(source, out);
    let candidates = [
        (Orientation::FlipHorizontal, transform(source, |x, y, w, _| (w - 1 - x, y), false)),
        (Orientation::FlipVertical, transform(source, |x, y, _, h| (x, h - 1 - y), false)),
        (Orientation::Rotate180, transform(source, |x, y, w, h| (w - 1 - x, h - 1 - y), false)),
        // Output (x, y) of a clockwise quarter turn reads source (y, H - 1 - x).
        (Orientation::Rotate90, transform(source, |x, y, _, h| (y, h - 1 - x), true)),
        (Orientation::Rotate270, transform(source, |x, y, w, _| (w - 1 - y, x), true)),
    ];
    candidates
        .into_iter()
        .map(|(o, plane)| {
            let shaped = resize(plane.as_ref(), out.width, out.height);
            (o, thumb_psnr(&shaped, out) - upright)
        })
        .filter(|(_, gain)| *gain >= ORIENTATION_GAIN)
        .max_by(|a, b| a.1.total_cmp(&b.1))
}

/// A plane whose (x, y) sample is `src[map(x, y, W, H)]`; `swap` exchanges width and height.
fn transform(
    src: &Plane,
    map: impl Fn(usize, usize, usize, usize) -> (usize, usize),
    swap: bool,
) -> Plane {
    let (w, h) = if swap { (src.height, src.width) } else { (src.width, src.height) };
    let mut data = Vec::with_capacity(w * h);
    for y in 0..h {
        for x in 0..w {
            let (sx, sy) = map(x, y, src.width, src.height);
            data.push(src.data[sy * src.width + sx]);
        }
    }
    Plane { width: w, height: h, data }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_cover_the_segment_and_follow_the_seed() {
        let seed = Seed::from_bytes(b"block");
        let picks = sample(50, 10, &seed);
        assert_eq!(picks.len(), 10);
        for (k, &j) in picks.iter().enumerate() {
            assert!((k * 5..(k + 1) * 5).contains(&j), "{picks:?}");
        }
        assert_eq!(picks, sample(50, 10, &seed));
        assert_ne!(picks, sample(50, 10, &Seed::from_bytes(b"other")));
        assert_ne!(sample(50, 10, &Seed::random()), sample(50, 10, &Seed::random()));
        assert_eq!(sample(3, 10, &seed), vec![0, 1, 2]);
        assert!(sample(0, 10, &seed).is_empty());
        // Over many seeds every frame of a stratum is drawn.
        let mut seen = [false; 50];
        for n in 0u32..200 {
            for j in sample(50, 10, &Seed::from_bytes(&n.to_le_bytes())) {
                seen[j] = true;
            }
        }
        assert!(seen.iter().all(|&s| s));
    }

    #[test]
    fn seeds_parse_from_hex() {
        let hash = "ab".repeat(32);
        assert_eq!(Seed::from_hex(&hash).unwrap(), Seed::from_bytes(&[0xab; 32]));
        for bad in ["", "abc", "zz", &"00".repeat(65)] {
            assert!(Seed::from_hex(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn frames_pair_by_time_from_their_first() {
        let src: Vec<f64> = (0..5).map(|i| 10.0 + i as f64 * 0.04).collect();
        let out: Vec<f64> = src.iter().map(|t| t - 10.0 + 1.4).collect();
        assert_eq!(pair_by_time(&src, &out), vec![0, 1, 2, 3, 4]);
        // Half the frame rate: every other source frame.
        let half: Vec<f64> = (0..3).map(|i| 1.4 + i as f64 * 0.08).collect();
        assert_eq!(pair_by_time(&src, &half), vec![0, 2, 4]);
        assert!(pair_by_time(&[], &out).is_empty());
    }

    #[test]
    fn transforms_map_corners() {
        let p = Plane { width: 3, height: 2, data: vec![1, 2, 3, 4, 5, 6] };
        assert_eq!(transform(&p, |x, y, w, _| (w - 1 - x, y), false).data, vec![3, 2, 1, 6, 5, 4]);
        let r = transform(&p, |x, y, _, h| (y, h - 1 - x), true);
        assert_eq!((r.width, r.height), (2, 3));
        assert_eq!(r.data, vec![4, 1, 5, 2, 6, 3]);
    }
}
