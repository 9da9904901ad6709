//! The reference scaler: how Kinema brings a source frame to a rendition's size before
//! comparing them.
//!
//! A separable triangle (linear) filter; when shrinking, its support widens by the scale factor so
//! every source sample contributes (an antialiased, area-like average). Edges repeat the border
//! sample. It is deliberately one fixed definition, independent of any encoder's scaler: honest
//! renditions made with bicubic, lanczos or hardware scalers all land close to it.

use crate::frame::{Frame, Plane, PlaneRef};

/// Resizes `src` to `width` x `height`.
pub fn resize(src: PlaneRef<'_>, width: usize, height: usize) -> Plane {
    if src.width == width && src.height == height {
        let mut data = Vec::with_capacity(width * height);
        for y in 0..height {
            data.extend_from_slice(src.row(y));
        }
        return Plane { width, height, data };
    }
    let horizontal = taps(src.width, width);
    let vertical = taps(src.height, height);
    // Horizontal pass into f32 rows, then the vertical pass.
    let mut rows = vec![0f32; width * src.height];
    for y in 0..src.height {
        let row = src.row(y);
        let out = &mut rows[y * width..(y + 1) * width];
        for (o, t) in out.iter_mut().zip(&horizontal) {
            *o = t.weights.iter().enumerate().map(|(k, w)| w * f32::from(row[t.start + k])).sum();
        }
    }
    let mut data = vec![0u8; width * height];
    let mut acc = vec![0f32; width];
    for (y, t) in vertical.iter().enumerate() {
        acc.iter_mut().for_each(|a| *a = 0.0);
        for (k, w) in t.weights.iter().enumerate() {
            let row = &rows[(t.start + k) * width..(t.start + k + 1) * width];
            for (a, &v) in acc.iter_mut().zip(row) {
                *a += w * v;
            }
        }
        for (d, &a) in data[y * width..(y + 1) * width].iter_mut().zip(&acc) {
            *d = a.round().clamp(0.0, 255.0) as u8;
        }
    }
    Plane { width, height, data }
}

/// Resizes a 4:2:0 frame: luma to `width` x `height`, chroma to half of that, rounded up.
pub fn resize_frame(frame: &Frame, width: usize, height: usize) -> Frame {
    let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
    let [y, u, v] = &frame.planes;
    Frame {
        pts: frame.pts,
        decoded_size: frame.decoded_size,
        planes: [
            resize(y.as_ref(), width, height),
            resize(u.as_ref(), cw, ch),
            resize(v.as_ref(), cw, ch),
        ],
    }
}

/// The contiguous source samples and normalised weights of one output sample.
struct Taps {
    start: usize,
    weights: Vec<f32>,
}

fn taps(src: usize, dst: usize) -> Vec<Taps> {
    let scale = src as f64 / dst as f64;
    let radius = scale.max(1.0);
    (0..dst)
        .map(|i| {
            let center = (i as f64 + 0.5) * scale - 0.5;
            let first = (center - radius).floor() as isize + 1;
            let last = (center + radius).ceil() as isize - 1;
            let clamp = |j: isize| j.clamp(0, src as isize - 1) as usize;
            let (start, end) = (clamp(first), clamp(last));
            let mut weights = vec![0f64; end - start + 1];
            for j in first..=last {
                let w = 1.0 - (j as f64 - center).abs() / radius;
                if w > 0.0 {
                    weights[clamp(j) - start] += w;
                }
            }
            let total: f64 = weights.iter().sum();
            Taps { start, weights: weights.into_iter().map(|w| (w / total) as f32).collect() }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(width: usize, height: usize) -> Plane {
        let data = (0..height)
            .flat_map(|y| (0..width).map(move |x| ((x * 255) / width.max(1) + y % 3) as u8))
            .collect();
        Plane { width, height, data }
    }

    #[test]
    fn same_size_is_a_copy() {
        let p = gradient(33, 17);
        assert_eq!(resize(p.as_ref(), 33, 17), p);
    }

    #[test]
    fn flat_planes_stay_flat_at_any_size() {
        let p = Plane::filled(1280, 720, 77);
        for (w, h) in [(854, 480), (426, 240), (192, 144), (1920, 1080), (3, 1)] {
            let out = resize(p.as_ref(), w, h);
            assert_eq!((out.width, out.height), (w, h));
            assert!(out.data.iter().all(|&v| v == 77), "{w}x{h}");
        }
    }

    #[test]
    fn halving_averages_pairs() {
        let p = Plane { width: 4, height: 1, data: vec![0, 100, 200, 200] };
        let out = resize(p.as_ref(), 2, 1);
        // Weights 1/8, 3/8, 3/8, 1/8 around each output sample, the border repeated:
        // (0 + 0 + 300 + 200) / 8 = 62.5 and (100 + 600 + 600 + 200) / 8 = 187.5.
        assert_eq!(out.data, vec![63, 188]);
    }

    #[test]
    fn a_ramp_stays_monotonic() {
        let p = gradient(640, 4);
        let out = resize(p.as_ref(), 213, 4);
        assert!(out.data[..213].windows(2).all(|w| w[0] <= w[1]));
    }
}
