//! The verifier's features on sampled frame pairs.
//!
//! Rendition frames are paired with the source frames presented at the same time; the source is
//! brought to the rendition's size by [`crate::scale`]. Per pair: PSNR of each plane, SSIM and
//! MS-SSIM of luma, the worst 16x16 luma block (overlays, logos, captions), and two probes that
//! name the tampering when the numbers are bad: which nearby source frame the rendition frame
//! really matches (drops, duplicates, stills, swaps), and whether a flipped or rotated source
//! matches better than the upright one.

use serde::Serialize;

use crate::frame::{Frame, Plane};
use crate::metrics;
use crate::scale::{resize, resize_frame};

/// Side of the luma thumbnails used for temporal alignment.
const THUMB: (usize, usize) = (32, 18);
/// How far (in frames) temporal alignment looks either way.
const SEARCH: isize = 3;

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
    /// PSNR of the worst 16x16 luma block in dB.
    pub worst_block_psnr: f64,
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

/// Measures the sampled pairs. `source` and `rendition` are all decoded frames of each segment,
/// in presentation order; frames are paired by index (the coarse checks have made sure the
/// counts and times agree, or reported why not).
pub fn measure(source: &[Frame], rendition: &[Frame], samples: &[usize]) -> Vec<PairScores> {
    if source.is_empty() || rendition.is_empty() {
        return Vec::new();
    }
    let thumbs: Vec<Plane> = source.iter().map(thumbnail).collect();
    let (w, h) = (rendition[0].width(), rendition[0].height());
    samples
        .iter()
        .map(|&j| {
            let out = &rendition[j];
            let i = j.min(source.len() - 1);
            let reference = resize_frame(&source[i], w, h);
            let psnr: [f64; 3] = std::array::from_fn(|p| {
                cap(metrics::psnr(metrics::mse(
                    reference.planes[p].as_ref(),
                    out.planes[p].as_ref(),
                )))
            });
            let (ry, oy) = (reference.planes[0].as_ref(), out.planes[0].as_ref());
            let blocks = metrics::block_errors(ry, oy, 16);
            let (best_offset, offset_gain) = temporal(&thumbs, i, &thumbnail(out));
            PairScores {
                frame: j,
                psnr,
                ssim: metrics::ssim(ry, oy),
                ms_ssim: metrics::ms_ssim(ry, oy),
                worst_block_psnr: cap(metrics::psnr(blocks.worst())),
                best_offset,
                offset_gain,
                orientation: orientation(&source[i].planes[0], &out.planes[0], psnr[0]),
            }
        })
        .collect()
}

fn cap(db: f64) -> f64 {
    db.min(100.0)
}

fn thumbnail(frame: &Frame) -> Plane {
    resize(frame.planes[0].as_ref(), THUMB.0, THUMB.1)
}

/// The source frame near `i` whose thumbnail best matches `out`, and its gain over frame `i`.
fn temporal(thumbs: &[Plane], i: usize, out: &Plane) -> (isize, f64) {
    let db = |k: usize| cap(metrics::psnr(metrics::mse(thumbs[k].as_ref(), out.as_ref())));
    let here = db(i);
    let mut best = (0, here);
    for d in -SEARCH..=SEARCH {
        let k = i as isize + d;
        if d == 0 || k < 0 || k as usize >= thumbs.len() {
            continue;
        }
        let v = db(k as usize);
        if v > best.1 {
            best = (d, v);
        }
    }
    (best.0, best.1 - here)
}

/// A flip or rotation of the source luma that matches `out` at least 3 dB better than upright.
fn orientation(source: &Plane, out: &Plane, upright: f64) -> Option<(Orientation, f64)> {
    let (w, h) = (out.width, out.height);
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
            let scaled = resize(plane.as_ref(), w, h);
            (o, cap(metrics::psnr(metrics::mse(scaled.as_ref(), out.as_ref()))) - upright)
        })
        .filter(|(_, gain)| *gain >= 3.0)
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
