//! The verifier's features on sampled frame pairs.
//!
//! Rendition frames are paired with the source frames presented at the same time; the source is
//! brought to the rendition's size by [`crate::scale`]. Per pair: PSNR of each plane, SSIM and
//! MS-SSIM of luma, the share of the source's edges kept (blur), the worst 16x16 luma block and
//! the largest shift of a block's mean (overlays, logos, captions), and two probes on the
//! frames' luma thumbnails ([`crate::decode::THUMB`]) that name the tampering when the numbers are
//! bad: which nearby source frame the rendition frame really matches (drops, duplicates, stills,
//! swaps), and whether a flipped or rotated source matches better than the upright one.

use serde::Serialize;

use crate::decode::Decoded;
use crate::frame::Plane;
use crate::metrics;
use crate::scale::{resize, resize_frame};

/// How far (in frames) temporal alignment looks either way.
const SEARCH: isize = 3;
/// How much better (dB, on thumbnails) a flip or rotation must match to be reported.
const ORIENTATION_GAIN: f64 = 3.0;

/// A flip or rotation of the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairScores {
    /// Index of the rendition frame.
    pub frame: usize,
    /// PSNR of Y, U and V in dB (capped at 100 for identical planes).
    pub psnr: [f64; 3],
    /// SSIM of luma.
    pub ssim: f64,
    /// MS-SSIM of luma.
    pub ms_ssim: f64,
    /// How sharp the source's steepest edges stay ([`metrics::edges_kept`]).
    pub edges_kept: f64,
    /// PSNR of the worst 16x16 luma block in dB.
    pub worst_block_psnr: f64,
    /// The largest change of a 16x16 luma block's mean, in levels.
    pub block_shift: f64,
    /// Offset (in source frames) of the best-matching source frame; 0 when aligned.
    pub best_offset: isize,
    /// How much better (dB, on thumbnails) the best offset matches than offset 0.
    pub offset_gain: f64,
    /// A flip or rotation that matches clearly better than the upright source, with its gain
    /// in dB.
    pub orientation: Option<(Orientation, f64)>,
}

/// Indices of up to `n` rendition frames spread evenly over the segment.
pub fn sample(frames: usize, n: usize) -> Vec<usize> {
    if frames == 0 || n == 0 {
        return Vec::new();
    }
    let n = n.min(frames);
    (0..n).map(|i| (i * frames + frames / 2) / n).map(|i| i.min(frames - 1)).collect()
}

/// Measures the sampled pairs. `source` and `rendition` hold every frame's thumbnail and the
/// pictures at the sampled indices; frames are paired by index (the coarse checks have made sure
/// the counts and times agree, or reported why not). A pair whose pictures were not kept is
/// skipped.
pub fn measure(source: &Decoded, rendition: &Decoded, samples: &[usize]) -> Vec<PairScores> {
    if source.thumbs.is_empty() {
        return Vec::new();
    }
    samples
        .iter()
        .filter_map(|&j| {
            let i = j.min(source.thumbs.len() - 1);
            let (out, src) = (rendition.picture(j)?, source.picture(i)?);
            let out_thumb = rendition.thumbs.get(j)?;
            let reference = resize_frame(src, out.width(), out.height());
            let psnr: [f64; 3] = std::array::from_fn(|p| {
                cap(metrics::psnr(metrics::mse(
                    reference.planes[p].as_ref(),
                    out.planes[p].as_ref(),
                )))
            });
            let (ry, oy) = (reference.planes[0].as_ref(), out.planes[0].as_ref());
            let blocks = metrics::block_errors(ry, oy, 16);
            let (best_offset, offset_gain) = temporal(&source.thumbs, i, out_thumb);
            Some(PairScores {
                frame: j,
                psnr,
                ssim: metrics::ssim(ry, oy),
                ms_ssim: metrics::ms_ssim(ry, oy),
                edges_kept: metrics::edges_kept(ry, oy),
                worst_block_psnr: cap(metrics::psnr(blocks.worst())),
                block_shift: blocks.worst_shift(),
                best_offset,
                offset_gain,
                orientation: orientation(&source.thumbs[i], out_thumb),
            })
        })
        .collect()
}

fn cap(db: f64) -> f64 {
    db.min(100.0)
}

fn thumb_psnr(a: &Plane, b: &Plane) -> f64 {
    cap(metrics::psnr(metrics::mse(a.as_ref(), b.as_ref())))
}

/// The source frame near `i` whose thumbnail best matches `out`, and its gain over frame `i`.
fn temporal(thumbs: &[Plane], i: usize, out: &Plane) -> (isize, f64) {
    let here = thumb_psnr(&thumbs[i], out);
    let mut best = (0, here);
    for d in -SEARCH..=SEARCH {
        let k = i as isize + d;
        if d == 0 || k < 0 || k as usize >= thumbs.len() {
            continue;
        }
        let v = thumb_psnr(&thumbs[k as usize], out);
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
    fn samples_spread_over_the_segment() {
        assert_eq!(sample(50, 10), vec![2, 7, 12, 17, 22, 27, 32, 37, 42, 47]);
        assert_eq!(sample(3, 10), vec![0, 1, 2]);
        assert!(sample(0, 10).is_empty());
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
