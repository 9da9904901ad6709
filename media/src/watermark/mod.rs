//! An invisible, blind watermark that carries a 64-bit content ID through re-encoding,
//! downscaling, cropping and excerpting.
//!
//! # The mark
//!
//! The ID is protected by a BCH(127, 64) code ([`bch`], any 10 bit errors corrected) and
//! scrambled with a fixed pseudo-random sequence, so every ID, 0 included, looks like noise. The
//! 127 code bits and a known sync pattern are spread over a square **tile** of 16 x 16 chips:
//! each is a row of a 256-point Walsh–Hadamard matrix, multiplied chip by chip by a fixed
//! pseudo-random sign, so at the right alignment every bit is read from all 256 chips at once
//! and the rows do not disturb one another. The sync row carries a quarter of the energy.
//!
//! The tile's side is a third of the picture's shorter side, at least 128 pixels (so a small
//! picture keeps chips of 8 pixels; [`tile_side`]), centred on the picture and repeated
//! cyclically: the geometry is a fixed share of the picture, so a 0.5x copy carries the same
//! tiles at half the size, and a crop only shifts and enlarges them relative to what is left. Between chip centres the field is interpolated
//! with smooth-step weights (no edges for a codec to spend bits on, nothing finer than a chip for
//! a scaler to lose). The field is added to luma, the same on every frame (so dropped frames,
//! excerpts and frame-rate changes keep it), scaled by the local activity of each 16x16 block:
//! weaker on flat areas, where it would show, stronger on texture, which hides it.
//!
//! # Reading it
//!
//! The reader needs nothing but the excerpt ([`Detector`]). Each frame, brought down to a
//! working size whose shorter side is at most [`WORK`] pixels, is high-passed twice (minus a box
//! blur of radius 7 and of 14 working pixels, for small and large chips), clipped at its mean
//! magnitude (edges would outweigh the mark) and summed over the excerpt: moving content averages
//! down, the static mark adds up. The sum is then folded onto one tile at every candidate tile
//! size from 0.22x to 2x the shorter side (a crop makes the tile look bigger; padding smaller) in
//! 1 % steps; at each size every cyclic offset of a quarter chip is ranked by its correlation with
//! the sync pattern. The 16 best are scored against the noise alone: the sync row's
//! Walsh–Hadamard coefficient over the rows the mark leaves empty (the plain correlation is
//! capped by the payload, which counts as noise there). The best is refined in quarter steps of
//! size; its chip values give the bits by weighted least squares (chips a crop removed carry no
//! weight), unscrambled and decoded.
//!
//! # When it claims an ID
//!
//! Only when the sync correlation reaches [`SYNC_THRESHOLD`] standard deviations and the word
//! decodes with at most [`MAX_ERRORS`] corrected bits. On unmarked video the 127 hard bits at the
//! chosen alignment are unrelated to any codeword; the chance that a uniformly random word lies
//! within 8 bits of one of the 2^64 codewords is 2^64 · Σ_{i≤8} C(127, i) / 2^127 = 1.6e-7, one
//! decode per excerpt, before the sync threshold (which unmarked video reaches rarely on its own)
//! cuts it further: a false claim is below 1 in a million per excerpt by the code alone. The
//! figures measured on unmarked video are in `media/data/README.md` (`cargo xtask bench
//! watermark`).

pub mod bch;
#[cfg(not(target_arch = "wasm32"))]
mod file;

#[cfg(not(target_arch = "wasm32"))]
pub use file::{EmbedSettings, Embedded, Excerpt, detect, embed};

use std::fmt;
use std::str::FromStr;

use crate::frame::PlaneRef;

/// Chips along each side of the tile.
pub const CHIPS: usize = 16;
/// Shorter side, in pixels, of the frames the detector works on.
pub const WORK: usize = 240;
/// The smallest sync correlation, in standard deviations of unmarked video, for a claim.
pub const SYNC_THRESHOLD: f64 = 6.0;
/// The most corrected bits a claim may have.
pub const MAX_ERRORS: u32 = 8;
/// The fewest frames the detector reads an ID from.
pub const MIN_FRAMES: usize = 10;
/// The mark's default amplitude, in 8-bit luma levels, on a block of typical activity (4 levels
/// between neighbours); flat blocks get 0.4x, busy ones up to 2x.
pub const STRENGTH: f32 = 3.0;

const CELLS: usize = CHIPS * CHIPS;
/// Share of the chip energy in the sync row.
const SYNC_SHARE: f64 = 0.25;
/// Chip values are clipped to this many standard deviations.
const CHIP_CLIP: f64 = 2.5;
/// Folding bins per chip, along each side.
const BINS_PER_CHIP: usize = 4;
const BINS: usize = CHIPS * BINS_PER_CHIP;
/// The Walsh–Hadamard row of the sync pattern, and the first of the 127 code-bit rows.
const SYNC_ROW: usize = 128;
const FIRST_BIT_ROW: usize = 1;
/// Side of the blocks the mark's strength follows.
const MASK_BLOCK: usize = 16;
/// Candidate tile sizes, as a share of the shorter side.
const SCALE_RANGE: (f64, f64) = (0.22, 2.0);
const SCALE_STEP: f64 = 1.01;

/// The tile's side for a `width` x `height` picture: a third of the shorter side, but at least
/// 128 pixels (or the whole shorter side, when that is smaller), so small pictures keep chips of
/// at least 8 pixels.
pub fn tile_side(width: usize, height: usize) -> f64 {
    let short = width.min(height) as f64;
    (short / 3.0).max(short.min(128.0))
}

/// Chips of at most this many working pixels are read from the residual after the small box
/// blur, bigger ones after the large.
const SMALL_CHIP: f64 = 8.0;
/// Radius, in working pixels, of the window whose mean magnitude normalises a residual.
const NORM_RADIUS: usize = 4;
/// What is added to that local magnitude, as a share of the frame's mean (so a flat area's
/// residual is not blown up from nothing), plus half a level.
const NORM_FLOOR: f32 = 0.2;
/// Normalised residuals are clipped here.
const NORM_CLIP: f32 = 4.0;
/// Box-blur radii, in working pixels, of the two residuals.
const RADII: [usize; 2] = [7, 14];

/// A 64-bit content ID, written as 16 lowercase hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Id(pub u64);

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl FromStr for Id {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s.len() != 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "watermark ID {s:?} is not valid: expected exactly 16 hex digits (64 bits), e.g. 00c0ffee00c0ffee"
            ));
        }
        u64::from_str_radix(s, 16).map(Id).map_err(|e| format!("watermark ID {s:?}: {e}"))
    }
}

/// A fixed pseudo-random stream (splitmix64), the same on every machine.
struct Stream(u64);

impl Stream {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// The fixed signs of the pattern: a ±1 per chip, and the scrambling of the 127 code bits.
struct Keys {
    chip_sign: [f64; CELLS],
    scramble: u128,
}

fn keys() -> Keys {
    let mut stream = Stream(0x6b69_6e65_6d61_776d); // "kinemawm"
    let mut chip_sign = [0.0; CELLS];
    for s in &mut chip_sign {
        *s = if stream.next() & 1 == 1 { 1.0 } else { -1.0 };
    }
    let scramble =
        ((u128::from(stream.next()) << 64) | u128::from(stream.next())) & ((1u128 << bch::N) - 1);
    Keys { chip_sign, scramble }
}

/// Row `row` of the 256-point Walsh–Hadamard matrix at chip `cell`, times the chip's sign.
fn basis(keys: &Keys, row: usize, cell: usize) -> f64 {
    let sign = if (row & cell).count_ones().is_multiple_of(2) { 1.0 } else { -1.0 };
    sign * keys.chip_sign[cell]
}

/// The chip values that carry `id`: zero mean, unit variance before clipping.
fn chips(id: Id) -> [f64; CELLS] {
    let keys = keys();
    let word = bch::encode(id.0) ^ keys.scramble;
    let sync = (SYNC_SHARE / (1.0 - SYNC_SHARE) * bch::N as f64).sqrt();
    let norm = (sync * sync + bch::N as f64).sqrt();
    let mut out = [0.0; CELLS];
    for (cell, value) in out.iter_mut().enumerate() {
        let mut v = sync * basis(&keys, SYNC_ROW, cell);
        for bit in 0..bch::N {
            let b = if (word >> bit) & 1 == 1 { 1.0 } else { -1.0 };
            v += b * basis(&keys, FIRST_BIT_ROW + bit, cell);
        }
        *value = (v / norm).clamp(-CHIP_CLIP, CHIP_CLIP);
    }
    out
}

/// Where a coordinate falls between chip centres: the two chips and the smooth-step weight of
/// the second.
fn chip_coordinate(pos: f64, centre: f64, tile: f64) -> (usize, usize, f64) {
    // Chip i's centre is at (i + 0.5) chips from the picture's centre.
    let u = (pos - centre) / tile * CHIPS as f64 - 0.5;
    let floor = u.floor();
    let t = u - floor;
    let first = (floor as i64).rem_euclid(CHIPS as i64) as usize;
    (first, (first + 1) % CHIPS, t * t * (3.0 - 2.0 * t))
}

/// Adds the mark of one ID to pictures of one size.
#[derive(Debug, Clone)]
pub struct Marker {
    width: usize,
    height: usize,
    strength: f32,
    /// The unit field at every luma sample.
    field: Vec<f32>,
}

impl Marker {
    /// The mark of `id` for `width` x `height` pictures, `strength` levels on a block of
    /// typical activity ([`STRENGTH`] by default).
    pub fn new(id: Id, width: usize, height: usize, strength: f32) -> Self {
        let chips = chips(id);
        let tile = tile_side(width, height);
        let columns: Vec<_> =
            (0..width).map(|x| chip_coordinate(x as f64 + 0.5, width as f64 / 2.0, tile)).collect();
        let mut field = Vec::with_capacity(width * height);
        for y in 0..height {
            let (r0, r1, ty) = chip_coordinate(y as f64 + 0.5, height as f64 / 2.0, tile);
            for &(c0, c1, tx) in &columns {
                let top = chips[r0 * CHIPS + c0] * (1.0 - tx) + chips[r0 * CHIPS + c1] * tx;
                let bottom = chips[r1 * CHIPS + c0] * (1.0 - tx) + chips[r1 * CHIPS + c1] * tx;
                field.push((top * (1.0 - ty) + bottom * ty) as f32);
            }
        }
        Self { width, height, strength, field }
    }

    /// Marks a luma plane of `width` x `height` samples, `stride` bytes apart, in place.
    pub fn mark(&self, luma: &mut [u8], stride: usize) {
        let gains =
            block_gains(PlaneRef { width: self.width, height: self.height, stride, data: luma });
        let blocks_wide = self.width.div_ceil(MASK_BLOCK);
        for y in 0..self.height {
            let row = &mut luma[y * stride..y * stride + self.width];
            let field = &self.field[y * self.width..(y + 1) * self.width];
            let gains = &gains[(y / MASK_BLOCK) * blocks_wide..];
            for (x, (sample, &f)) in row.iter_mut().zip(field).enumerate() {
                let delta = self.strength * gains[x / MASK_BLOCK] * f;
                *sample = (f32::from(*sample) + delta).round().clamp(0.0, 255.0) as u8;
            }
        }
    }
}

/// The mark's gain on each 16x16 block: the square root of the block's activity (mean absolute
/// difference to the left and upper neighbours) over a typical 4 levels, within 0.4..2, averaged
/// with the 8 neighbouring blocks so the strength never jumps.
fn block_gains(p: PlaneRef<'_>) -> Vec<f32> {
    let (bw, bh) = (p.width.div_ceil(MASK_BLOCK), p.height.div_ceil(MASK_BLOCK));
    let mut activity = vec![0.0f32; bw * bh];
    let mut counts = vec![0u32; bw * bh];
    for y in 1..p.height {
        let (row, above) = (p.row(y), p.row(y - 1));
        let base = (y / MASK_BLOCK) * bw;
        for x in 1..p.width {
            let d = u16::from(row[x].abs_diff(row[x - 1])) + u16::from(row[x].abs_diff(above[x]));
            activity[base + x / MASK_BLOCK] += f32::from(d);
            counts[base + x / MASK_BLOCK] += 1;
        }
    }
    let raw: Vec<f32> = activity
        .iter()
        .zip(&counts)
        .map(|(&a, &n)| {
            let mean = if n == 0 { 0.0 } else { a / n as f32 };
            (mean / 4.0).sqrt().clamp(0.4, 2.0)
        })
        .collect();
    let mut out = vec![0.0; bw * bh];
    for by in 0..bh {
        for bx in 0..bw {
            let (mut sum, mut n) = (0.0, 0.0);
            for ny in by.saturating_sub(1)..(by + 2).min(bh) {
                for nx in bx.saturating_sub(1)..(bx + 2).min(bw) {
                    sum += raw[ny * bw + nx];
                    n += 1.0;
                }
            }
            out[by * bw + bx] = sum / n;
        }
    }
    out
}

/// What the detector found in an excerpt.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    /// The ID, when the excerpt carries one by the claim rule.
    pub id: Option<Id>,
    /// Bits the code corrected, when the word decoded (whether or not it was claimed).
    pub bit_errors: Option<u32>,
    /// Frames read.
    pub frames: usize,
    /// The sync correlation at the chosen alignment, in standard deviations.
    pub sync: f64,
    /// The tile size found, as a share of the shorter side.
    pub scale: f64,
    /// The 127 code bits' soft values (positive: 1) at the chosen alignment, unscrambled and
    /// divided by their root mean square: what a codeword is scored against.
    pub soft: Vec<f64>,
}

impl Detection {
    /// The correlation of the soft bits with `id`'s codeword, in standard deviations of
    /// unrelated words (about N(0, 1) for an ID the excerpt does not carry).
    pub fn score(&self, id: Id) -> f64 {
        let word = bch::encode(id.0);
        let sum: f64 = self
            .soft
            .iter()
            .enumerate()
            .map(|(bit, &s)| if (word >> bit) & 1 == 1 { s } else { -s })
            .sum();
        sum / (self.soft.len() as f64).sqrt()
    }
}

/// Reads the mark from frames of an excerpt, all of one size.
#[derive(Debug, Clone)]
pub struct Detector {
    width: usize,
    height: usize,
    /// The clipped residuals after each of [`RADII`], summed over frames.
    sums: [Vec<f32>; 2],
    frames: usize,
    scratch: Vec<f32>,
    magnitudes: Vec<f32>,
    residual: Vec<f32>,
}

impl Detector {
    /// A detector for `width` x `height` frames (shorter side at most [`WORK`]: bring larger
    /// pictures down first).
    pub fn new(width: usize, height: usize) -> Self {
        Self {
            width,
            height,
            sums: [vec![0.0; width * height], vec![0.0; width * height]],
            frames: 0,
            scratch: vec![0.0; (width + 1) * (height + 1)],
            magnitudes: vec![0.0; (width + 1) * (height + 1)],
            residual: vec![0.0; width * height],
        }
    }

    /// Frames read so far.
    pub fn frames(&self) -> usize {
        self.frames
    }

    /// Adds one frame's luma (`width` x `height`).
    pub fn push(&mut self, luma: PlaneRef<'_>) {
        assert_eq!((luma.width, luma.height), (self.width, self.height), "frame size");
        let (w, h) = (self.width, self.height);
        // Integral image for the box blur.
        let integral = &mut self.scratch;
        for y in 0..h {
            let row = luma.row(y);
            let mut acc = 0.0f32;
            for x in 0..w {
                acc += f32::from(row[x]);
                integral[(y + 1) * (w + 1) + x + 1] = integral[y * (w + 1) + x + 1] + acc;
            }
        }
        let residual = &mut self.residual;
        for (radius, sum) in RADII.into_iter().zip(&mut self.sums) {
            let mut magnitude = 0.0f64;
            for y in 0..h {
                let (y0, y1) = (y.saturating_sub(radius), (y + radius + 1).min(h));
                let row = luma.row(y);
                for x in 0..w {
                    let (x0, x1) = (x.saturating_sub(radius), (x + radius + 1).min(w));
                    let area = ((y1 - y0) * (x1 - x0)) as f32;
                    let total = integral[y1 * (w + 1) + x1]
                        - integral[y0 * (w + 1) + x1]
                        - integral[y1 * (w + 1) + x0]
                        + integral[y0 * (w + 1) + x0];
                    let r = f32::from(row[x]) - total / area;
                    residual[y * w + x] = r;
                    magnitude += f64::from(r.abs());
                }
            }
            // Each residual over the mean magnitude around it (texture and edges would
            // outweigh the mark; flat areas, where a codec keeps it cleanest, would count for
            // little), clipped.
            let mean = (magnitude / (w * h) as f64) as f32;
            let floor = NORM_FLOOR * mean + 0.5;
            let magnitudes = &mut self.magnitudes;
            for y in 0..h {
                let mut acc = 0.0f32;
                for x in 0..w {
                    acc += residual[y * w + x].abs();
                    magnitudes[(y + 1) * (w + 1) + x + 1] = magnitudes[y * (w + 1) + x + 1] + acc;
                }
            }
            let r = NORM_RADIUS;
            for y in 0..h {
                let (y0, y1) = (y.saturating_sub(r), (y + r + 1).min(h));
                for x in 0..w {
                    let (x0, x1) = (x.saturating_sub(r), (x + r + 1).min(w));
                    let area = ((y1 - y0) * (x1 - x0)) as f32;
                    let local = (magnitudes[y1 * (w + 1) + x1]
                        - magnitudes[y0 * (w + 1) + x1]
                        - magnitudes[y1 * (w + 1) + x0]
                        + magnitudes[y0 * (w + 1) + x0])
                        / area;
                    let v = residual[y * w + x] / (local + floor);
                    sum[y * w + x] += v.clamp(-NORM_CLIP, NORM_CLIP);
                }
            }
        }
        self.frames += 1;
    }

    /// Looks for the mark in what was pushed.
    pub fn finish(&self) -> Detection {
        let keys = keys();
        let sync: Vec<f64> = (0..CELLS).map(|c| basis(&keys, SYNC_ROW, c)).collect();
        let short = self.width.min(self.height) as f64;
        // The search ranks alignments by the plain correlation, which the mark's own payload
        // caps; the few best are then scored against the noise alone (see `Alignment::z`).
        let mut candidates: Vec<Alignment> = Vec::new();
        let keep = |found: Vec<Alignment>, candidates: &mut Vec<Alignment>| {
            candidates.extend(found);
            candidates.sort_by(|a, b| b.rank.total_cmp(&a.rank));
            candidates.truncate(CANDIDATES);
        };
        let mut scale = SCALE_RANGE.0;
        while scale <= SCALE_RANGE.1 {
            // Chips under 2 working pixels are below what any copy keeps.
            if scale * short < 2.0 * CHIPS as f64 {
                scale *= SCALE_STEP;
                continue;
            }
            keep(self.align(scale * short, scale, &sync), &mut candidates);
            scale *= SCALE_STEP;
        }
        let score = |mut a: Alignment| {
            a.z = noise_z(&keys, &a.sums);
            a
        };
        let mut best = candidates.into_iter().map(score).fold(Alignment::default(), Alignment::max);
        let coarse = best.scale;
        for step in -4..=4 {
            let scale = coarse * SCALE_STEP.powf(f64::from(step) / 4.0);
            let found = self.align(scale * short, scale, &sync);
            best = found.into_iter().map(score).fold(best, Alignment::max);
        }
        let estimates = least_squares(&keys, &best.sums, &best.counts);
        let mut word = 0u128;
        let mut soft = Vec::with_capacity(bch::N);
        for (bit, &estimate) in estimates.iter().enumerate() {
            let flip = (keys.scramble >> bit) & 1 == 1;
            let value = if flip { -estimate } else { estimate };
            soft.push(value);
            if value > 0.0 {
                word |= 1u128 << bit;
            }
        }
        let rms = (soft.iter().map(|v| v * v).sum::<f64>() / bch::N as f64).sqrt();
        if rms > 0.0 {
            soft.iter_mut().for_each(|v| *v /= rms);
        }
        let decoded = if best.z.is_finite() { bch::decode(word) } else { None };
        let claim = decoded.filter(|&(_, errors)| errors <= MAX_ERRORS && best.z >= SYNC_THRESHOLD);
        Detection {
            id: claim.map(|(id, _)| Id(id)),
            bit_errors: decoded.map(|(_, e)| e),
            frames: self.frames,
            sync: if best.z.is_finite() { best.z } else { 0.0 },
            scale: best.scale,
            soft,
        }
    }

    /// The best offsets at one tile size (`period` working pixels).
    fn align(&self, period: f64, scale: f64, sync: &[f64]) -> Vec<Alignment> {
        let (w, h) = (self.width, self.height);
        let bin = |pos: usize, centre: f64| {
            let u = ((pos as f64 + 0.5 - centre) / period * BINS as f64).rem_euclid(BINS as f64);
            (u as usize).min(BINS - 1)
        };
        let columns: Vec<usize> = (0..w).map(|x| bin(x, w as f64 / 2.0)).collect();
        let sum = &self.sums[usize::from(period / CHIPS as f64 > SMALL_CHIP)];
        let mut sums = vec![0.0f64; BINS * BINS];
        let mut counts = vec![0.0f64; BINS * BINS];
        for y in 0..h {
            let row = bin(y, h as f64 / 2.0) * BINS;
            for (x, &c) in columns.iter().enumerate() {
                sums[row + c] += f64::from(sum[y * w + x]);
                counts[row + c] += 1.0;
            }
        }
        // Each chip is read from the 2x2 bins at its centre.
        let pair = |v: &[f64], by: usize, bx: usize| {
            let (y1, x1) = ((by + 1) % BINS, (bx + 1) % BINS);
            v[by * BINS + bx] + v[by * BINS + x1] + v[y1 * BINS + bx] + v[y1 * BINS + x1]
        };
        let mut central = vec![0.0f64; BINS * BINS];
        let mut central_counts = vec![0.0f64; BINS * BINS];
        for by in 0..BINS {
            for bx in 0..BINS {
                central[by * BINS + bx] = pair(&sums, by, bx);
                central_counts[by * BINS + bx] = pair(&counts, by, bx);
            }
        }
        let mut best: Vec<(f64, (usize, usize))> = Vec::new();
        for sy in 0..BINS {
            for sx in 0..BINS {
                let (mut dot, mut energy) = (0.0, 0.0);
                for cy in 0..CHIPS {
                    let by = (cy * BINS_PER_CHIP + 1 + sy) % BINS;
                    for cx in 0..CHIPS {
                        let bx = (cx * BINS_PER_CHIP + 1 + sx) % BINS;
                        let s = central[by * BINS + bx];
                        dot += sync[cy * CHIPS + cx] * s;
                        energy += s * s;
                    }
                }
                if energy > 0.0 {
                    best.push((dot / energy.sqrt(), (sx, sy)));
                }
            }
        }
        if best.len() > CANDIDATES {
            best.select_nth_unstable_by(CANDIDATES - 1, |a, b| b.0.total_cmp(&a.0));
            best.truncate(CANDIDATES);
        }
        best.into_iter()
            .map(|(rank, (sx, sy))| {
                let mut sums = vec![0.0; CELLS];
                let mut counts = vec![0.0; CELLS];
                for cy in 0..CHIPS {
                    let by = (cy * BINS_PER_CHIP + 1 + sy) % BINS;
                    for cx in 0..CHIPS {
                        let bx = (cx * BINS_PER_CHIP + 1 + sx) % BINS;
                        sums[cy * CHIPS + cx] = central[by * BINS + bx];
                        counts[cy * CHIPS + cx] = central_counts[by * BINS + bx];
                    }
                }
                Alignment { rank, z: f64::NEG_INFINITY, scale, sums, counts }
            })
            .collect()
    }
}

/// One candidate alignment: the chips' sums and sample counts there, the plain sync correlation
/// it was ranked by and its score against the noise.
#[derive(Debug, Clone)]
struct Alignment {
    /// The sync row's correlation with the chip sums over their norm: N(0, 1) on unmarked video,
    /// but at most the square root of the sync's share of 256 chips on marked video, since the
    /// payload counts as noise here.
    rank: f64,
    /// The sync row's coefficient over the root mean square of the 128 Walsh–Hadamard rows the
    /// mark does not use, which hold only noise at the right alignment.
    z: f64,
    scale: f64,
    sums: Vec<f64>,
    counts: Vec<f64>,
}

impl Default for Alignment {
    fn default() -> Self {
        Self {
            rank: f64::NEG_INFINITY,
            z: f64::NEG_INFINITY,
            scale: 1.0,
            sums: Vec::new(),
            counts: Vec::new(),
        }
    }
}

/// Alignments ranked by plain correlation that are scored against the noise.
const CANDIDATES: usize = 16;

/// The sync coefficient in standard deviations of the rows the mark leaves empty: the chip sums,
/// unsigned, through one fast Walsh–Hadamard transform.
fn noise_z(keys: &Keys, sums: &[f64]) -> f64 {
    let mut c: Vec<f64> = sums.iter().zip(&keys.chip_sign).map(|(s, k)| s * k).collect();
    let mut h = 1;
    while h < CELLS {
        for i in (0..CELLS).step_by(2 * h) {
            for j in i..i + h {
                let (a, b) = (c[j], c[j + h]);
                c[j] = a + b;
                c[j + h] = a - b;
            }
        }
        h *= 2;
    }
    let used =
        |row: usize| row == SYNC_ROW || (FIRST_BIT_ROW..FIRST_BIT_ROW + bch::N).contains(&row);
    let (mut noise, mut n) = (0.0, 0.0);
    for (row, v) in c.iter().enumerate() {
        if !used(row) {
            noise += v * v;
            n += 1.0;
        }
    }
    if noise > 0.0 { c[SYNC_ROW] / (noise / n).sqrt() } else { f64::NEG_INFINITY }
}

impl Alignment {
    fn max(self, other: Self) -> Self {
        if other.z > self.z { other } else { self }
    }
}

/// Estimates of the 127 code bits (before unscrambling) from the chip sums, by least squares
/// weighted by each chip's sample count: with every chip covered equally this is a plain
/// correlation with each Walsh–Hadamard row; chips a crop removed drop out without the rows
/// leaking into one another.
fn least_squares(keys: &Keys, sums: &[f64], counts: &[f64]) -> Vec<f64> {
    const UNKNOWNS: usize = bch::N + 1; // the code bits and the sync
    let rows: Vec<usize> = (0..bch::N).map(|b| FIRST_BIT_ROW + b).chain([SYNC_ROW]).collect();
    if sums.len() != CELLS {
        return vec![0.0; bch::N];
    }
    // Normal equations: (A^T W A) x = A^T W v, with W v = the chip sums.
    let mut gram = vec![0.0f64; UNKNOWNS * UNKNOWNS];
    let mut rhs = vec![0.0f64; UNKNOWNS];
    let basis_rows: Vec<Vec<f64>> =
        rows.iter().map(|&r| (0..CELLS).map(|c| basis(keys, r, c)).collect()).collect();
    for (i, a) in basis_rows.iter().enumerate() {
        rhs[i] = a.iter().zip(sums).map(|(x, s)| x * s).sum();
        for (j, b) in basis_rows.iter().enumerate().skip(i) {
            let g: f64 = a.iter().zip(b).zip(counts).map(|((x, y), w)| x * y * w).sum();
            gram[i * UNKNOWNS + j] = g;
            gram[j * UNKNOWNS + i] = g;
        }
    }
    let total: f64 = counts.iter().sum();
    // A small ridge keeps the system solvable when a crop leaves too few chips.
    let ridge = 1e-3 * total / CELLS as f64 + 1e-9;
    for i in 0..UNKNOWNS {
        gram[i * UNKNOWNS + i] += ridge;
    }
    match cholesky_solve(&mut gram, &mut rhs, UNKNOWNS) {
        true => rhs.truncate(bch::N),
        false => rhs = vec![0.0; bch::N],
    }
    rhs
}

/// Solves `a x = b` for a symmetric positive definite `a` (n x n) in place; `b` becomes `x`.
fn cholesky_solve(a: &mut [f64], b: &mut [f64], n: usize) -> bool {
    for j in 0..n {
        let mut d = a[j * n + j];
        for k in 0..j {
            d -= a[j * n + k] * a[j * n + k];
        }
        if d <= 0.0 {
            return false;
        }
        let d = d.sqrt();
        a[j * n + j] = d;
        for i in j + 1..n {
            let mut s = a[i * n + j];
            for k in 0..j {
                s -= a[i * n + k] * a[j * n + k];
            }
            a[i * n + j] = s / d;
        }
    }
    for i in 0..n {
        let mut s = b[i];
        for k in 0..i {
            s -= a[i * n + k] * b[k];
        }
        b[i] = s / a[i * n + i];
    }
    for i in (0..n).rev() {
        let mut s = b[i];
        for k in i + 1..n {
            s -= a[k * n + i] * b[k];
        }
        b[i] = s / a[i * n + i];
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::Plane;

    /// A textured picture: smooth gradients plus deterministic noise.
    fn picture(width: usize, height: usize, seed: u64) -> Plane {
        let mut stream = Stream(seed);
        let data = (0..width * height)
            .map(|i| {
                let (x, y) = ((i % width) as f64, (i / width) as f64);
                let base = 128.0 + 40.0 * (x / 37.0).sin() * (y / 23.0).cos();
                (base + (stream.next() % 24) as f64 - 12.0).clamp(0.0, 255.0) as u8
            })
            .collect();
        Plane { width, height, data }
    }

    fn read(frames: &[Plane]) -> Detection {
        let mut detector = Detector::new(frames[0].width, frames[0].height);
        for f in frames {
            detector.push(f.as_ref());
        }
        detector.finish()
    }

    #[test]
    fn a_marked_picture_at_working_size_gives_its_id() {
        let id = Id(0x00c0_ffee_1234_5678);
        let (w, h) = (565, 240);
        let marker = Marker::new(id, w, h, STRENGTH);
        let frames: Vec<Plane> = (0..12)
            .map(|k| {
                let mut p = picture(w, h, k);
                marker.mark(&mut p.data, w);
                p
            })
            .collect();
        let found = read(&frames);
        assert_eq!(found.id, Some(id), "{found:?}");
        let clean: Vec<Plane> = (0..12).map(|k| picture(w, h, k)).collect();
        assert_eq!(read(&clean).id, None);
    }

    #[test]
    fn a_cropped_half_size_copy_still_gives_the_id() {
        let id = Id(0x0123_4567_89ab_cdef);
        let (w, h) = (640, 360);
        let marker = Marker::new(id, w, h, STRENGTH);
        let frames: Vec<Plane> = (0..16)
            .map(|k| {
                let mut p = picture(w, h, 100 + k);
                marker.mark(&mut p.data, w);
                // 10 % off every side, then half the size.
                let (cw, ch) = (512, 288);
                let crop: Vec<u8> = (0..ch)
                    .flat_map(|y| p.data[(y + 36) * w + 64..(y + 36) * w + 64 + cw].to_vec())
                    .collect();
                let crop = Plane { width: cw, height: ch, data: crop };
                crate::scale::resize(crop.as_ref(), 256, 144)
            })
            .collect();
        let found = read(&frames);
        assert_eq!(found.id, Some(id), "{:?} sync {}", found.bit_errors, found.sync);
        // The tile was 128 pixels (a third of 360 lines is less); after the crop it is 128/288
        // of the shorter side.
        assert!((found.scale - 128.0 / 288.0).abs() < 0.01, "scale {}", found.scale);
    }

    #[test]
    fn the_soft_bits_score_the_right_id_far_above_the_others() {
        let id = Id(42);
        let (w, h) = (320, 240);
        let marker = Marker::new(id, w, h, STRENGTH);
        let frames: Vec<Plane> = (0..12)
            .map(|k| {
                let mut p = picture(w, h, 7 + k);
                marker.mark(&mut p.data, w);
                p
            })
            .collect();
        let found = read(&frames);
        // At most sqrt(127) = 11.3; about N(0, 1) for an unrelated ID (a close one, 43, shares
        // all but about 21 of the 127 code bits, and scores two thirds as high).
        assert!(found.score(id) > 8.0, "{}", found.score(id));
        let other = Id(0x9e37_79b9_7f4a_7c15);
        assert!(found.score(other).abs() < 4.0, "{}", found.score(other));
    }

    #[test]
    fn ids_are_sixteen_hex_digits() {
        assert_eq!("00c0ffee5eed1d00".parse::<Id>(), Ok(Id(0x00c0_ffee_5eed_1d00)));
        assert_eq!(Id(0xab).to_string(), "00000000000000ab");
        for bad in ["", "00c0ffee", "00c0ffee5eed1d000", "+0c0ffee5eed1d00", "00c0ffee5eed1d0z"] {
            assert!(bad.parse::<Id>().is_err(), "{bad}");
        }
    }
}
