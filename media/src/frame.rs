//! Decoded pictures as plain planes: width, height, stride and bytes, nothing ffmpeg-specific,
//! so the metric code runs the same natively and in a browser fed by its own decoder.

/// A borrowed 8-bit plane.
#[derive(Debug, Clone, Copy)]
pub struct PlaneRef<'a> {
    /// Width in samples.
    pub width: usize,
    /// Height in rows.
    pub height: usize,
    /// Distance between the starts of two rows, in bytes (≥ width).
    pub stride: usize,
    /// The samples: `height` rows of `stride` bytes (the last row may be just `width`).
    pub data: &'a [u8],
}

impl<'a> PlaneRef<'a> {
    /// A plane over `data`, checking that it is large enough.
    pub fn new(width: usize, height: usize, stride: usize, data: &'a [u8]) -> Option<Self> {
        let needed = if height == 0 { 0 } else { (height - 1) * stride + width };
        (stride >= width && data.len() >= needed).then_some(Self { width, height, stride, data })
    }

    /// Row `y` (exactly `width` samples).
    #[inline]
    pub fn row(&self, y: usize) -> &'a [u8] {
        &self.data[y * self.stride..y * self.stride + self.width]
    }
}

/// An owned, tightly packed 8-bit plane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plane {
    /// Width in samples.
    pub width: usize,
    /// Height in rows.
    pub height: usize,
    /// `width * height` samples, row by row.
    pub data: Vec<u8>,
}

impl Plane {
    /// A plane filled with `value`.
    pub fn filled(width: usize, height: usize, value: u8) -> Self {
        Self { width, height, data: vec![value; width * height] }
    }

    /// Borrows the plane.
    pub fn as_ref(&self) -> PlaneRef<'_> {
        PlaneRef { width: self.width, height: self.height, stride: self.width, data: &self.data }
    }
}

/// A 4:2:0 picture: Y, then U and V at half width and height (rounded up).
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// Presentation time in seconds, as the decoder reported it.
    pub pts: f64,
    /// The size the decoder produced before any rescaling to the planes' size: differs from the
    /// planes when a stream changes resolution part-way.
    pub decoded_size: (usize, usize),
    /// Y, U, V.
    pub planes: [Plane; 3],
}

impl Frame {
    /// Luma width.
    pub fn width(&self) -> usize {
        self.planes[0].width
    }

    /// Luma height.
    pub fn height(&self) -> usize {
        self.planes[0].height
    }

    /// Splits a packed yuv420p picture into planes; `None` when `bytes` has the wrong size.
    pub fn from_yuv420p(width: usize, height: usize, pts: f64, bytes: &[u8]) -> Option<Self> {
        let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
        let (luma, chroma) = (width * height, cw * ch);
        if bytes.len() != luma + 2 * chroma {
            return None;
        }
        let plane = |w, h, range: std::ops::Range<usize>| Plane {
            width: w,
            height: h,
            data: bytes[range].to_vec(),
        };
        Some(Self {
            pts,
            decoded_size: (width, height),
            planes: [
                plane(width, height, 0..luma),
                plane(cw, ch, luma..luma + chroma),
                plane(cw, ch, luma + chroma..luma + 2 * chroma),
            ],
        })
    }

    /// Size in bytes of one packed yuv420p picture.
    pub fn yuv420p_len(width: usize, height: usize) -> usize {
        width * height + 2 * width.div_ceil(2) * height.div_ceil(2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planes_check_their_bounds() {
        let data = [0u8; 10];
        assert!(PlaneRef::new(4, 2, 6, &data).is_some());
        assert!(PlaneRef::new(4, 2, 7, &data).is_none());
        assert!(PlaneRef::new(5, 1, 4, &data).is_none());
        let p = PlaneRef::new(4, 2, 6, &data).unwrap();
        assert_eq!(p.row(1).len(), 4);
    }

    #[test]
    fn yuv420p_splits_into_three_planes() {
        let bytes: Vec<u8> = (0..Frame::yuv420p_len(5, 3) as u32).map(|i| i as u8).collect();
        let frame = Frame::from_yuv420p(5, 3, 0.5, &bytes).unwrap();
        assert_eq!((frame.planes[1].width, frame.planes[1].height), (3, 2));
        assert_eq!(frame.planes[2].data[0], 21);
        assert!(Frame::from_yuv420p(5, 3, 0.0, &bytes[1..]).is_none());
    }
}
