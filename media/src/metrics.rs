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

/// Block means of a chroma pair (`u`, `v`) as deviations from neutral (128), over
/// `block` x `block` tiles: the colour a viewer sees, without the grain an encoder smooths.
fn chroma_means(u: PlaneRef<'_>, v: PlaneRef<'_>, block: usize) -> Vec<(f64, f64)> {
    let neutral = Plane::filled(u.width, u.height, 128);
    let [du, dv] = [u, v].map(|p| block_errors(neutral.as_ref(), p, block).mean_diff);
    du.into_iter().zip(dv).collect()
}

/// Neutral-relative chroma energy (RMS, levels) below which a source is taken as colourless:
/// [`chroma_change`] then measures against this floor, so a grey source turned pink is still a
/// change.
pub const CHROMA_FLOOR: f64 = 2.0;

/// How much the colour of `out` differs from `reference`'s, relative to the reference's own
/// colour, on the chroma block means (4x4 chroma samples) as complex numbers `u + iv` around
/// neutral. The larger of:
/// - the gain's distance from 1, `|Σ o·conj(r) − Σ |r|²| / max(Σ |r|², n·floor²)`: grayscale
///   gives 1, half the saturation 0.5, a 60° hue turn 1, on any colourful content; noise and
///   the detail an encoder smooths away do not correlate with the source and barely move it;
/// - the mean's move over the reference's RMS colour (at least [`CHROMA_FLOOR`]): a tint, even
///   of a grey source.
pub fn chroma_change(reference: [PlaneRef<'_>; 2], out: [PlaneRef<'_>; 2]) -> f64 {
    let r = chroma_means(reference[0], reference[1], 4);
    let o = chroma_means(out[0], out[1], 4);
    let n = r.len().max(1) as f64;
    let energy: f64 = r.iter().map(|(u, v)| u * u + v * v).sum();
    // Σ o·conj(r) = Σ (ou·ru + ov·rv) + i Σ (ov·ru − ou·rv)
    let (re, im) = r.iter().zip(&o).fold((0.0, 0.0), |(re, im), ((ru, rv), (ou, ov))| {
        (re + ou * ru + ov * rv, im + ov * ru - ou * rv)
    });
    let gain = ((re - energy).powi(2) + im * im).sqrt() / energy.max(n * CHROMA_FLOOR.powi(2));
    let mean = |p: &[(f64, f64)]| {
        let (u, v) = p.iter().fold((0.0, 0.0), |(a, b), (u, v)| (a + u, b + v));
        (u / n, v / n)
    };
    let ((ru, rv), (ou, ov)) = (mean(&r), mean(&o));
    let tint =
        ((ou - ru).powi(2) + (ov - rv).powi(2)).sqrt() / (energy / n).sqrt().max(CHROMA_FLOOR);
    gain.max(tint)
}

/// Error added to every block MSE before ratios are taken (levels²): flat blocks that two
/// encoders both reproduce almost exactly differ by large ratios of tiny errors.
const BLOCK_ERROR_FLOOR: f64 = 10.0;

/// Side of the windows [`local_damage`] compares: two 16x16 macroblocks, so one block an
/// encoder happened to code differently weighs a quarter, and a damaged patch of a few percent
/// of even a 144p frame still fills most of one. They overlap by half, so a patch that
/// straddles the macroblock grid is seen whole by one of them.
const DAMAGE_TILE: usize = 32;

/// Local damage: how many dB more error `out` has than `job` (the job's own encode of the same
/// source) in its worst 32x32 window, beyond the frame as a whole. An honest encoder errs where
/// the job's encode errs; an overlay, a caption or a damaged patch errs in one place.
pub fn local_damage(source: PlaneRef<'_>, job: PlaneRef<'_>, out: PlaneRef<'_>) -> f64 {
    let ratio = |a: f64, b: f64| 10.0 * ((a + BLOCK_ERROR_FLOOR) / (b + BLOCK_ERROR_FLOOR)).log10();
    let half = DAMAGE_TILE / 2;
    let (bo, bj) = (block_errors(source, out, half), block_errors(source, job, half));
    let whole = ratio(mse(source, out), mse(source, job));
    let worst = windows_of(bo.cols, bo.rows, &bo.mse)
        .zip(windows_of(bj.cols, bj.rows, &bj.mse))
        .map(|(o, j)| ratio(o, j))
        .fold(0.0, f64::max);
    (worst - whole).max(0.0)
}

/// The mean of every 2x2 group of neighbouring values of a `cols` x `rows` grid, moved one value
/// at a time.
fn windows_of(cols: usize, rows: usize, values: &[f64]) -> impl Iterator<Item = f64> + '_ {
    let (wc, wr) = (cols.saturating_sub(1).max(1), rows.saturating_sub(1).max(1));
    (0..wr).flat_map(move |r| {
        (0..wc).map(move |c| {
            let cells: Vec<f64> = [(0, 0), (0, 1), (1, 0), (1, 1)]
                .iter()
                .filter(|&&(dr, dc)| r + dr < rows && c + dc < cols)
                .map(|&(dr, dc)| values[(r + dr) * cols + c + dc])
                .collect();
            cells.iter().sum::<f64>() / cells.len() as f64
        })
    })
}

/// Detail energy per sample (levels²) added before ratios are taken: flat areas have none to
/// lose.
const DETAIL_FLOOR: f64 = 4.0;

/// The mean detail energy (squared differences to the right and below neighbours) of each
/// `block` x `block` block, row by row, with the number of blocks per row and of rows.
fn detail_energy(p: PlaneRef<'_>, block: usize) -> (usize, usize, Vec<f64>) {
    let (cols, rows) = (p.width.div_ceil(block), p.height.div_ceil(block));
    let mut sums = vec![(0u64, 0u64); cols * rows];
    for y in 0..p.height.saturating_sub(1) {
        let (row, next) = (p.row(y), p.row(y + 1));
        let line = &mut sums[(y / block) * cols..(y / block + 1) * cols];
        for x in 0..p.width.saturating_sub(1) {
            let dx = u64::from(row[x].abs_diff(row[x + 1]));
            let dy = u64::from(row[x].abs_diff(next[x]));
            let cell = &mut line[x / block];
            cell.0 += dx * dx + dy * dy;
            cell.1 += 1;
        }
    }
    let energy = sums.iter().map(|&(e, n)| if n == 0 { 0.0 } else { e as f64 / n as f64 });
    (cols, rows, energy.collect())
}

/// Local detail loss: how many dB less detail `out` keeps than `job` (the job's own encode of
/// the same source) in its worst 32x32 window, beyond the frame as a whole. An honest encoder
/// smooths where the job's encode smooths; a blurred or painted-over patch loses its detail in
/// one place, even where the content is noise no encode keeps close to the source.
pub fn detail_loss(job: PlaneRef<'_>, out: PlaneRef<'_>) -> f64 {
    assert_same_size(job, out);
    let ratio = |j: f64, o: f64| 10.0 * ((j + DETAIL_FLOOR) / (o + DETAIL_FLOOR)).log10();
    let half = DAMAGE_TILE / 2;
    let ((cols, rows, ej), (_, _, eo)) = (detail_energy(job, half), detail_energy(out, half));
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let whole = ratio(mean(&ej), mean(&eo));
    let worst = windows_of(cols, rows, &ej)
        .zip(windows_of(cols, rows, &eo))
        .map(|(j, o)| ratio(j, o))
        .fold(0.0, f64::max);
    (worst - whole).max(0.0)
}

/// The largest amount by which a 16x16 block's mean moved in `out` beyond what it moved in `job`
/// (the job's own encode), in levels. Encoders keep a block's mean (its DC) almost exactly, and
/// where they cannot (hard-edged detail at a small size) the job's encode cannot either; an
/// overlay moves it where the job's encode does not.
pub fn block_shift(source: PlaneRef<'_>, job: PlaneRef<'_>, out: PlaneRef<'_>) -> f64 {
    let (bo, bj) = (block_errors(source, out, 16), block_errors(source, job, 16));
    bo.mean_diff.iter().zip(&bj.mean_diff).map(|(o, j)| o.abs() - j.abs()).fold(0.0, f64::max)
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
    fn colour_change_is_relative_to_the_sources_own_colour() {
        // A colourful source: hue varies over the frame, ±40 levels around neutral.
        let hue = |x: usize, y: usize| ((x * 7 + y * 3) as f64 / 20.0).sin_cos();
        let chroma = |gain: f64, turn: f64, grain: u8| {
            let (s, c) = turn.to_radians().sin_cos();
            let at = move |x: usize, y: usize, v: bool| {
                let (a, b) = hue(x, y);
                let (u0, v0) = (40.0 * a, 40.0 * b);
                let (u, w) = (u0 * c - v0 * s, u0 * s + v0 * c);
                let noise =
                    f64::from((x * 31 + y * 17) as u8 % (grain + 1)) - f64::from(grain) / 2.0;
                (128.0 + gain * if v { w } else { u } + noise).round() as u8
            };
            [plane(64, 48, move |x, y| at(x, y, false)), plane(64, 48, move |x, y| at(x, y, true))]
        };
        let change = |r: &[Plane; 2], o: &[Plane; 2]| {
            chroma_change([r[0].as_ref(), r[1].as_ref()], [o[0].as_ref(), o[1].as_ref()])
        };
        let source = chroma(1.0, 0.0, 0);
        assert!(change(&source, &source) < 1e-9);
        assert!(change(&source, &chroma(1.0, 0.0, 6)) < 0.05, "grain is not a colour change");
        assert!((change(&source, &chroma(0.0, 0.0, 0)) - 1.0).abs() < 0.02, "grayscale");
        assert!((change(&source, &chroma(0.5, 0.0, 0)) - 0.5).abs() < 0.02, "half saturation");
        assert!((change(&source, &chroma(1.0, 60.0, 0)) - 1.0).abs() < 0.02, "hue turned 60°");
        // A grey source: unchanged is no change; tinted is, against the floor.
        let grey = [Plane::filled(64, 48, 128), Plane::filled(64, 48, 128)];
        assert_eq!(change(&grey, &grey), 0.0);
        let pink = [Plane::filled(64, 48, 132), Plane::filled(64, 48, 136)];
        assert!(change(&grey, &pink) > 2.0, "{}", change(&grey, &pink));
    }

    #[test]
    fn damage_and_shifts_are_judged_against_the_jobs_own_encode() {
        let source = plane(128, 96, |x, y| ((x * 5 + y * 3) % 200) as u8);
        // The job's encode and an honest one err alike everywhere; a patch errs in one place.
        let noisy = |seed: usize| {
            plane(128, 96, move |x, y| {
                let v =
                    ((x * 5 + y * 3) % 200) as isize + ((x * 13 + y * 7 + seed) % 5) as isize - 2;
                v.clamp(0, 255) as u8
            })
        };
        let (job, honest) = (noisy(0), noisy(3));
        let mut patched = honest.clone();
        for y in 40..60 {
            for x in 50..80 {
                patched.data[y * 128 + x] = 255;
            }
        }
        let damage = |o: &Plane| local_damage(source.as_ref(), job.as_ref(), o.as_ref());
        let shift = |o: &Plane| block_shift(source.as_ref(), job.as_ref(), o.as_ref());
        assert!(damage(&honest) < 1.0, "{}", damage(&honest));
        assert!(damage(&patched) > 5.0, "{}", damage(&patched));
        assert!(shift(&honest) < 1.0, "{}", shift(&honest));
        assert!(shift(&patched) > 50.0, "{}", shift(&patched));
    }

    #[test]
    fn a_patch_across_the_macroblock_grid_is_seen_whole() {
        let source = plane(128, 96, |x, y| ((x * 5 + y * 3) % 200) as u8);
        let damaged = |x0: usize, y0: usize| {
            let mut p = source.clone();
            for y in y0..y0 + 32 {
                for x in x0..x0 + 32 {
                    p.data[y * 128 + x] = p.data[y * 128 + x].saturating_add(12);
                }
            }
            local_damage(source.as_ref(), source.as_ref(), p.as_ref())
        };
        // The same 32x32 patch on the grid and straddling four tiles of it.
        let (aligned, straddling) = (damaged(32, 32), damaged(48, 48));
        assert!(aligned > 6.0, "{aligned}");
        assert!((aligned - straddling).abs() < 0.5, "{aligned} {straddling}");
    }

    #[test]
    fn a_blurred_patch_loses_its_detail_where_the_rest_keeps_it() {
        // Noise, as no encode keeps close to its source: what matters is that it stays noise.
        let noise = |seed: usize| {
            plane(128, 96, move |x, y| {
                (((x * 7919 + y * 104_729 + seed) * 2_654_435_761) >> 24) as u8
            })
        };
        // An honest encode errs a little everywhere, as the job's does.
        let job = noise(0);
        let grain = noise(17);
        let mut honest = job.clone();
        for (v, g) in honest.data.iter_mut().zip(&grain.data) {
            *v = v.saturating_add(g % 5).saturating_sub(2);
        }
        let mut blurred = honest.clone();
        for y in 32..64 {
            for x in 48..80 {
                let around: u32 = (0..3)
                    .flat_map(|dy| (0..3).map(move |dx| (dx, dy)))
                    .map(|(dx, dy)| u32::from(honest.data[(y + dy - 1) * 128 + x + dx - 1]))
                    .sum();
                blurred.data[y * 128 + x] = (around / 9) as u8;
            }
        }
        let loss = |o: &Plane| detail_loss(job.as_ref(), o.as_ref());
        assert!(loss(&honest) < 1.0, "{}", loss(&honest));
        assert!(loss(&blurred) > 4.0, "{}", loss(&blurred));
        // Flat content has no detail to lose.
        let flat = Plane::filled(128, 96, 90);
        assert_eq!(detail_loss(flat.as_ref(), flat.as_ref()), 0.0);
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
