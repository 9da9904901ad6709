//! Full-reference quality metrics on plain 8-bit planes.
//!
//! - [`mse`] / [`psnr`]: as ffmpeg's `psnr` filter (per plane; a frame's average weights planes by
//!   their sample count).
//! - [`ssim`]: as ffmpeg's `ssim` filter (the x264 algorithm): sums over 4x4 blocks, SSIM over
//!   every 8x8 window at a 4-sample step, integer statistics, averaged.
//! - [`ms_ssim`]: multi-scale SSIM (Wang, Simoncelli, Bovik 2003) with the same windows, 5 scales
//!   halved by 2x2 averaging, the published exponents.
//! - [`block_errors`]: the mean squared error and mean shift of every block, for error maps that
//!   find what a frame average hides (a logo in one corner, a burnt-in caption).
//! - [`edges_kept`]: how sharp the source's steepest edges stay in a rendition (blur), tolerant
//!   of an edge moved by a sample.
//!
//! The loops run over rows as slices with integer accumulators: no allocation per pixel, and the
//! compiler vectorises the inner loops.

use crate::frame::{Plane, PlaneRef};

/// Mean squared error between two planes of equal size.
pub fn mse(a: PlaneRef<'_>, b: PlaneRef<'_>) -> f64 {
    assert_same_size(a, b);
    let mut sum: u64 = 0;
    for y in 0..a.height {
        sum += row_sse(a.row(y), b.row(y));
    }
    sum as f64 / (a.width * a.height) as f64
}

#[inline]
fn row_sse(a: &[u8], b: &[u8]) -> u64 {
    // Chunks of 64 keep the 32-bit partial sums far from overflow (64 * 255² < 2³²).
    let mut total = 0u64;
    for (ca, cb) in a.chunks(64).zip(b.chunks(64)) {
        let part: u32 = ca
            .iter()
            .zip(cb)
            .map(|(&x, &y)| {
                let d = i32::from(x) - i32::from(y);
                (d * d) as u32
            })
            .sum();
        total += u64::from(part);
    }
    total
}

/// PSNR in dB for a mean squared error on 8-bit samples; infinite for identical planes.
pub fn psnr(mse: f64) -> f64 {
    if mse <= 0.0 { f64::INFINITY } else { 10.0 * (255.0 * 255.0 / mse).log10() }
}

/// SSIM of two planes of equal size, as ffmpeg's `ssim` filter computes it; 1 when identical.
/// Planes smaller than 8x8 have no window and give 1.
pub fn ssim(a: PlaneRef<'_>, b: PlaneRef<'_>) -> f64 {
    let (sum, windows) = ssim_windows(a, b, Term::Full);
    if windows == 0 { 1.0 } else { sum / windows as f64 }
}

/// Which SSIM term to average over the windows.
#[derive(Clone, Copy, PartialEq)]
enum Term {
    /// Luminance x contrast-structure.
    Full,
    /// Contrast-structure only (MS-SSIM's term at the finer scales).
    ContrastStructure,
}

/// Sum of the SSIM term over all 8x8 windows at a 4-sample step, and the number of windows.
fn ssim_windows(a: PlaneRef<'_>, b: PlaneRef<'_>, term: Term) -> (f64, usize) {
    assert_same_size(a, b);
    let (bw, bh) = (a.width / 4, a.height / 4);
    if bw < 2 || bh < 2 {
        return (0.0, 0);
    }
    // Two rows of 4x4 block sums: [s1, s2, ss, s12].
    let mut above = vec![[0i64; 4]; bw];
    let mut below = vec![[0i64; 4]; bw];
    block_sums(a, b, 0, &mut above);
    let mut total = 0.0;
    for by in 1..bh {
        block_sums(a, b, by, &mut below);
        for bx in 0..bw - 1 {
            let mut s = [0i64; 4];
            for k in 0..4 {
                s[k] = above[bx][k] + above[bx + 1][k] + below[bx][k] + below[bx + 1][k];
            }
            total += window_ssim(s, term);
        }
        std::mem::swap(&mut above, &mut below);
    }
    (total, (bw - 1) * (bh - 1))
}

/// Sums over each 4x4 block of block-row `by`.
fn block_sums(a: PlaneRef<'_>, b: PlaneRef<'_>, by: usize, out: &mut [[i64; 4]]) {
    for s in out.iter_mut() {
        *s = [0; 4];
    }
    for y in by * 4..by * 4 + 4 {
        let (ra, rb) = (a.row(y), b.row(y));
        for (bx, s) in out.iter_mut().enumerate() {
            let (mut s1, mut s2, mut ss, mut s12) = (0u32, 0u32, 0u32, 0u32);
            for x in bx * 4..bx * 4 + 4 {
                let (p, q) = (u32::from(ra[x]), u32::from(rb[x]));
                s1 += p;
                s2 += q;
                ss += p * p + q * q;
                s12 += p * q;
            }
            s[0] += i64::from(s1);
            s[1] += i64::from(s2);
            s[2] += i64::from(ss);
            s[3] += i64::from(s12);
        }
    }
}

/// SSIM of one 8x8 window from its sums (x264's ssim_end1, 64 samples).
#[inline]
fn window_ssim(s: [i64; 4], term: Term) -> f64 {
    const C1: i64 = 416; // (0.01 * 255)² * 64, rounded
    const C2: i64 = 235_963; // (0.03 * 255)² * 64 * 63, rounded
    let [s1, s2, ss, s12] = s;
    let vars = ss * 64 - s1 * s1 - s2 * s2;
    let covar = s12 * 64 - s1 * s2;
    let cs = (2 * covar + C2) as f64 / (vars + C2) as f64;
    match term {
        Term::Full => (2 * s1 * s2 + C1) as f64 / (s1 * s1 + s2 * s2 + C1) as f64 * cs,
        Term::ContrastStructure => cs,
    }
}

/// Multi-scale SSIM over 5 scales (fewer when the plane is too small to halve further).
pub fn ms_ssim(a: PlaneRef<'_>, b: PlaneRef<'_>) -> f64 {
    const WEIGHTS: [f64; 5] = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333];
    assert_same_size(a, b);
    let mut current: Option<(Plane, Plane)> = None;
    let mut result = 1.0;
    let mut used = 0.0;
    for (scale, &weight) in WEIGHTS.iter().enumerate() {
        let (pa, pb) = match &current {
            Some((x, y)) => (x.as_ref(), y.as_ref()),
            None => (a, b),
        };
        let last = scale + 1 == WEIGHTS.len() || pa.width / 2 < 8 || pa.height / 2 < 8;
        let term = if last { Term::Full } else { Term::ContrastStructure };
        let (sum, windows) = ssim_windows(pa, pb, term);
        if windows == 0 {
            break;
        }
        result *= (sum / windows as f64).max(0.0).powf(weight);
        used += weight;
        if last {
            break;
        }
        current = Some((halve(pa), halve(pb)));
    }
    // Renormalise the exponents when fewer than 5 scales fit.
    if used > 0.0 { result.powf(1.0 / used) } else { 1.0 }
}

/// |dx| + |dy| at (x, y), for x below the last column and y below the last row.
#[inline]
fn gradient(p: PlaneRef<'_>, x: usize, y: usize) -> u16 {
    let (row, next) = (p.row(y), p.row(y + 1));
    u16::from(row[x].abs_diff(row[x + 1])) + u16::from(row[x].abs_diff(next[x]))
}

/// How sharp `reference`'s steepest edges stay in `out`: at the reference's steepest 5 % of
/// gradients (|dx| + |dy|, a step of at least 8 levels), the sum of `out`'s steepest gradient
/// within one sample (capped at the reference's) over the sum of the reference's. An edge an
/// encoder moved by a sample still counts; a blurred one does not, wherever it lies. 1 when the
/// reference has no such edges.
pub fn edges_kept(reference: PlaneRef<'_>, out: PlaneRef<'_>) -> f64 {
    assert_same_size(reference, out);
    let (w, h) = (reference.width, reference.height);
    if w < 3 || h < 3 {
        return 1.0;
    }
    // Gradients are taken over (w - 1) x (h - 1) samples.
    let (gw, gh) = (w - 1, h - 1);
    let mut histogram = [0u32; 511];
    for y in 0..gh {
        let (row, next) = (reference.row(y), reference.row(y + 1));
        for x in 0..gw {
            histogram[usize::from(row[x].abs_diff(row[x + 1]))
                + usize::from(row[x].abs_diff(next[x]))] += 1;
        }
    }
    let wanted = (gw * gh) as f64 * 0.05;
    let (mut count, mut edge) = (0.0, histogram.len());
    while edge > 8 && count < wanted {
        edge -= 1;
        count += f64::from(histogram[edge]);
    }
    let edge = edge as u16;
    let (mut sum, mut kept) = (0u64, 0u64);
    for y in 0..gh {
        let (row, next) = (reference.row(y), reference.row(y + 1));
        let rows = [y.saturating_sub(1), y, (y + 1).min(gh - 1)];
        for x in 0..gw {
            let g = u16::from(row[x].abs_diff(row[x + 1])) + u16::from(row[x].abs_diff(next[x]));
            if g < edge {
                continue;
            }
            let columns = [x.saturating_sub(1), x, (x + 1).min(gw - 1)];
            let mut near = 0;
            for r in rows {
                for c in columns {
                    near = near.max(gradient(out, c, r));
                }
            }
            sum += u64::from(g);
            kept += u64::from(near.min(g));
        }
    }
    if sum < 64 { 1.0 } else { kept as f64 / sum as f64 }
}

/// 2x2 average, dropping an odd last row or column.
fn halve(p: PlaneRef<'_>) -> Plane {
    let (w, h) = (p.width / 2, p.height / 2);
    let mut data = Vec::with_capacity(w * h);
    for y in 0..h {
        let (r0, r1) = (p.row(2 * y), p.row(2 * y + 1));
        for x in 0..w {
            let sum = u16::from(r0[2 * x])
                + u16::from(r0[2 * x + 1])
                + u16::from(r1[2 * x])
                + u16::from(r1[2 * x + 1]);
            data.push(((sum + 2) / 4) as u8);
        }
    }
    Plane { width: w, height: h, data }
}

/// The MSE and the mean difference (`b` − `a`) of every `block` x `block` tile (partial tiles at
/// the edges included), row by row.
pub fn block_errors(a: PlaneRef<'_>, b: PlaneRef<'_>, block: usize) -> BlockErrors {
    assert_same_size(a, b);
    let (cols, rows) = (a.width.div_ceil(block), a.height.div_ceil(block));
    // Per block: squared error, then the sums of b and of a.
    let mut sums = vec![[0u64; 3]; cols * rows];
    for y in 0..a.height {
        let (ra, rb) = (a.row(y), b.row(y));
        let line = &mut sums[(y / block) * cols..(y / block + 1) * cols];
        for (c, cell) in line.iter_mut().enumerate() {
            let x0 = c * block;
            let x1 = (x0 + block).min(a.width);
            cell[0] += row_sse(&ra[x0..x1], &rb[x0..x1]);
            cell[1] += rb[x0..x1].iter().map(|&v| u64::from(v)).sum::<u64>();
            cell[2] += ra[x0..x1].iter().map(|&v| u64::from(v)).sum::<u64>();
        }
    }
    let area = |i: usize| {
        let (c, r) = (i % cols, i / cols);
        ((a.width - c * block).min(block) * (a.height - r * block).min(block)) as f64
    };
    let mse = sums.iter().enumerate().map(|(i, s)| s[0] as f64 / area(i)).collect();
    let mean_diff =
        sums.iter().enumerate().map(|(i, s)| (s[1] as f64 - s[2] as f64) / area(i)).collect();
    BlockErrors { cols, rows, mse, mean_diff }
}

/// Per-block errors.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockErrors {
    /// Blocks per row.
    pub cols: usize,
    /// Block rows.
    pub rows: usize,
    /// MSE of each block, row by row.
    pub mse: Vec<f64>,
    /// Mean of the second plane minus mean of the first, per block. An encoder keeps a block's
    /// mean (its DC) almost exactly even when it loses the detail; an overlay moves it.
    pub mean_diff: Vec<f64>,
}

impl BlockErrors {
    /// The largest block MSE.
    pub fn worst(&self) -> f64 {
        self.mse.iter().copied().fold(0.0, f64::max)
    }

    /// The largest block mean difference, either way.
    pub fn worst_shift(&self) -> f64 {
        self.mean_diff.iter().map(|d| d.abs()).fold(0.0, f64::max)
    }

    /// The MSE at quantile `q` (0..=1) of the blocks.
    pub fn quantile(&self, q: f64) -> f64 {
        let mut sorted = self.mse.clone();
        sorted.sort_by(f64::total_cmp);
        let i = ((sorted.len() - 1) as f64 * q.clamp(0.0, 1.0)).round() as usize;
        sorted.get(i).copied().unwrap_or(0.0)
    }
}

fn assert_same_size(a: PlaneRef<'_>, b: PlaneRef<'_>) {
    assert!(
        a.width == b.width && a.height == b.height,
        "planes differ in size: {}x{} and {}x{}",
        a.width,
        a.height,
        b.width,
        b.height
    );
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn plane(width: usize, height: usize, f: impl Fn(usize, usize) -> u8) -> Plane {
        let data = (0..height)
            .flat_map(|y| (0..width).map(move |x| (x, y)))
            .map(|(x, y)| f(x, y))
            .collect();
        Plane { width, height, data }
    }

    #[test]
    fn identical_planes_are_perfect() {
        let p = plane(64, 48, |x, y| ((x * 7 + y * 13) % 256) as u8);
        assert_eq!(mse(p.as_ref(), p.as_ref()), 0.0);
        assert_eq!(psnr(0.0), f64::INFINITY);
        assert!((ssim(p.as_ref(), p.as_ref()) - 1.0).abs() < 1e-12);
        assert!((ms_ssim(p.as_ref(), p.as_ref()) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn edges_kept_forgives_a_moved_edge_but_not_a_soft_one() {
        let step = |at: usize| plane(32, 32, move |x, _| if x < at { 20 } else { 220 });
        let sharp = step(16);
        assert_eq!(edges_kept(sharp.as_ref(), sharp.as_ref()), 1.0);
        // Moved by one sample: as sharp as ever. By three: gone from where it was.
        assert_eq!(edges_kept(sharp.as_ref(), step(17).as_ref()), 1.0);
        assert_eq!(edges_kept(sharp.as_ref(), step(19).as_ref()), 0.0);
        // The step of 200 spread over four samples of 50.
        let soft = plane(32, 32, |x, _| match x {
            0..=13 => 20,
            14 => 70,
            15 => 120,
            16 => 170,
            _ => 220,
        });
        let kept = edges_kept(sharp.as_ref(), soft.as_ref());
        assert!((kept - 0.25).abs() < 1e-9, "{kept}");
        assert_eq!(edges_kept(Plane::filled(32, 32, 9).as_ref(), soft.as_ref()), 1.0);
    }

    #[test]
    fn a_constant_offset_has_a_known_psnr() {
        let a = plane(32, 32, |x, y| ((x + y) * 3) as u8);
        let b = plane(32, 32, |x, y| ((x + y) * 3 + 4) as u8);
        assert_eq!(mse(a.as_ref(), b.as_ref()), 16.0);
        assert!((psnr(16.0) - 36.0895).abs() < 1e-3); // 10 log10(255² / 16)
    }

    #[test]
    fn strides_are_respected() {
        let data = [1u8, 2, 99, 3, 4, 99];
        let a = PlaneRef::new(2, 2, 3, &data).unwrap();
        let b = plane(2, 2, |x, y| (1 + x + 2 * y) as u8);
        assert_eq!(mse(a, b.as_ref()), 0.0);
    }

    #[test]
    fn block_errors_find_a_local_patch() {
        let a = plane(64, 64, |x, y| ((x * 5 + y * 3) % 200) as u8);
        let b = plane(64, 64, |x, y| {
            if (16..32).contains(&x) && y < 16 { 255 } else { ((x * 5 + y * 3) % 200) as u8 }
        });
        let map = block_errors(a.as_ref(), b.as_ref(), 16);
        assert_eq!((map.cols, map.rows), (4, 4));
        let hot: Vec<usize> = (0..16).filter(|&i| map.mse[i] > 0.0).collect();
        assert_eq!(hot, vec![1]);
        assert_eq!(map.quantile(0.5), 0.0);
        assert!(map.worst() > 1000.0);
        let shifted: Vec<usize> = (0..16).filter(|&i| map.mean_diff[i] != 0.0).collect();
        assert_eq!(shifted, vec![1]);
        let block_mean = (0..16)
            .flat_map(|y| (16..32).map(move |x| ((x * 5 + y * 3) % 200) as f64))
            .sum::<f64>()
            / 256.0;
        assert!((map.worst_shift() - (255.0 - block_mean)).abs() < 1e-9, "{}", map.worst_shift());
    }

    proptest! {
        #[test]
        fn metrics_stay_in_range_and_are_symmetric(
            seed in any::<u64>(), w in 8usize..40, h in 8usize..40, noise in 0u8..60,
        ) {
            let a = plane(w, h, |x, y| (seed.wrapping_mul(x as u64 * 31 + y as u64 * 17 + 1) >> 56) as u8);
            let b = plane(w, h, |x, y| a.data[y * w + x].saturating_add(((x * y) as u8) % (noise + 1)));
            let s = ssim(a.as_ref(), b.as_ref());
            prop_assert!(s <= 1.0 + 1e-12 && s > -1.0);
            prop_assert!((s - ssim(b.as_ref(), a.as_ref())).abs() < 1e-12);
            prop_assert_eq!(mse(a.as_ref(), b.as_ref()), mse(b.as_ref(), a.as_ref()));
            let m = ms_ssim(a.as_ref(), b.as_ref());
            prop_assert!((0.0..=1.0 + 1e-12).contains(&m));
        }
    }
}
