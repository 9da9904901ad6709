//! Renditions: the rungs of a ladder turned into sizes and bit-rate caps for one source.

use serde::{Deserialize, Serialize};

use crate::probe::VideoStream;
use crate::{Error, Result};

/// The default ladder: heights in pixels.
pub const DEFAULT_LADDER: &[u32] = &[720, 480, 360, 240];

/// One output of a ladder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rendition {
    /// Name and directory of the rendition, e.g. `720p`.
    pub name: String,
    /// Width in pixels (even, square pixels).
    pub width: u32,
    /// Height in pixels (even).
    pub height: u32,
    /// Video bit-rate cap (VBV maximum rate) in bits per second.
    pub max_bitrate: u32,
}

/// Parses a rendition list such as `720p,480p,360p` into heights.
pub fn parse_heights(list: &str) -> Result<Vec<u32>> {
    let mut heights = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let digits = name.strip_suffix(['p', 'P']).unwrap_or(name);
        let height = digits
            .parse::<u32>()
            .ok()
            .filter(|h| (16..=4320).contains(h))
            .ok_or_else(|| Error::BadRendition { name: name.to_owned() })?;
        if !heights.contains(&height) {
            heights.push(height);
        }
    }
    if heights.is_empty() {
        return Err(Error::BadRendition { name: list.to_owned() });
    }
    Ok(heights)
}

/// The renditions of `heights` that fit `video`, tallest first. Rungs taller than the source are
/// skipped (never upscale); when every rung is, one rendition at the source size is made.
/// Sizes keep the display aspect ratio, in square pixels, upright (a display rotation honoured),
/// rounded to even numbers.
pub fn plan_renditions(video: &VideoStream, heights: &[u32]) -> Vec<Rendition> {
    let (display_width, display_height) = video.display_size();
    let aspect = display_width / display_height;
    let source_height = display_height.round() as u32;
    let mut fitting: Vec<u32> = heights.iter().copied().filter(|&h| h <= source_height).collect();
    fitting.sort_unstable_by(|a, b| b.cmp(a));
    if fitting.is_empty() {
        fitting.push((source_height & !1).max(2));
    }
    fitting
        .into_iter()
        .map(|height| {
            let height = height & !1;
            let width = even(f64::from(height) * aspect);
            Rendition {
                name: format!("{height}p"),
                width,
                height,
                max_bitrate: max_bitrate(width, height),
            }
        })
        .collect()
}

/// The nearest even number, at least 2.
fn even(x: f64) -> u32 {
    ((x / 2.0).round() as u32 * 2).max(2)
}

/// A bit-rate cap that grows with the pixel count: 3 Mb/s at 1280x720, scaled by
/// (pixels / 720p pixels)^0.75 (bits per pixel fall as resolution rises), at least 150 kb/s.
pub fn max_bitrate(width: u32, height: u32) -> u32 {
    let ratio = f64::from(width) * f64::from(height) / (1280.0 * 720.0);
    let kbps = (3000.0 * ratio.powf(0.75) / 10.0).round() * 10.0;
    (kbps.max(150.0) * 1000.0) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::Rational;

    fn video(width: u32, height: u32, sar: (u64, u64)) -> VideoStream {
        VideoStream {
            index: 0,
            codec: "h264".into(),
            profile: None,
            width,
            height,
            sample_aspect_ratio: Rational { num: sar.0, den: sar.1 },
            rotation: 0,
            pixel_format: None,
            frame_rate: Rational { num: 25, den: 1 },
            avg_frame_rate: None,
            frame_count: 1,
            hidden_frames: 0,
            keyframe_times: vec![0.0],
            packets: Vec::new(),
        }
    }

    fn sizes(v: &VideoStream, heights: &[u32]) -> Vec<(String, u32, u32)> {
        plan_renditions(v, heights).into_iter().map(|r| (r.name, r.width, r.height)).collect()
    }

    #[test]
    fn ladders_skip_rungs_above_the_source() {
        let s = |n: &str, w, h| (n.to_owned(), w, h);
        assert_eq!(
            sizes(&video(1280, 720, (1, 1)), DEFAULT_LADDER),
            vec![
                s("720p", 1280, 720),
                s("480p", 854, 480),
                s("360p", 640, 360),
                s("240p", 426, 240)
            ]
        );
        // cityCC0.mpg: 720x405, an odd height.
        assert_eq!(
            sizes(&video(720, 405, (1, 1)), DEFAULT_LADDER),
            vec![s("360p", 640, 360), s("240p", 426, 240)]
        );
        // bikes.mp4: 640x272.
        assert_eq!(sizes(&video(640, 272, (1, 1)), DEFAULT_LADDER), vec![s("240p", 564, 240)]);
    }

    #[test]
    fn a_source_below_every_rung_keeps_its_size_in_square_pixels() {
        // carphone: 176x144 with a 128:117 sample aspect ratio.
        assert_eq!(
            sizes(&video(176, 144, (128, 117)), DEFAULT_LADDER),
            vec![("144p".into(), 192, 144)]
        );
        assert_eq!(sizes(&video(320, 181, (1, 1)), &[240]), vec![("180p".into(), 318, 180)]);
    }

    #[test]
    fn a_quarter_turn_makes_renditions_upright() {
        let mut v = video(1280, 720, (1, 1));
        v.rotation = 90;
        assert_eq!(
            sizes(&v, DEFAULT_LADDER),
            vec![
                ("720p".into(), 406, 720),
                ("480p".into(), 270, 480),
                ("360p".into(), 202, 360),
                ("240p".into(), 136, 240)
            ]
        );
        v.rotation = 180;
        assert_eq!(sizes(&v, &[360])[0], ("360p".into(), 640, 360));
    }

    #[test]
    fn rendition_lists_parse() {
        assert_eq!(parse_heights("720p,480p, 360").unwrap(), vec![720, 480, 360]);
        assert_eq!(parse_heights("480p,480p").unwrap(), vec![480]);
        for bad in ["", "720x", "hd", "0p", "99999p", ","] {
            assert!(matches!(parse_heights(bad), Err(Error::BadRendition { .. })), "{bad}");
        }
    }

    #[test]
    fn bitrate_caps_grow_with_size() {
        let caps: Vec<u32> =
            plan_renditions(&video(1920, 1080, (1, 1)), &[1080, 720, 480, 360, 240, 144])
                .iter()
                .map(|r| r.max_bitrate)
                .collect();
        assert!(caps.windows(2).all(|w| w[0] > w[1]), "{caps:?}");
        assert_eq!(caps[1], 3_000_000);
    }
}
