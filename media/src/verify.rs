//! Transcode verification: does a rendition segment honestly come from its source segment?
//!
//! Built so far: the coarse checks (layer (b) of Kinema's layered verification), each failing
//! with its own named [`Reason`]. The quality classifier on sampled frame pairs (layer (c)) is
//! not built yet; [`crate::metrics`] and [`crate::scale`] are its base.

use std::fmt;
use std::path::Path;

use serde::Serialize;

use crate::decode::decode;
use crate::ffmpeg::{Ffmpeg, run};
use crate::probe::{MediaInfo, probe};
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
}

impl Expect {
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

/// Why a rendition fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
    /// The audio is not the source's packets copied bit-exact.
    AudioNotCopied,
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
}

/// Runs the coarse checks of `rendition` against `source`.
pub fn coarse(ff: &Ffmpeg, source: &Path, rendition: &Path, expect: &Expect) -> Result<Coarse> {
    expect.validate()?;
    let src = probe(ff, source)?;
    let out = probe(ff, rendition)?;
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
    let frames = decode(ff, rendition, w as usize, h as usize)?;
    if let Some(other) = frames.iter().find(|f| f.decoded_size != (w as usize, h as usize)) {
        let (ow, oh) = other.decoded_size;
        fail(
            Reason::ResolutionChange,
            format!("{w}x{h} at the start, {ow}x{oh} at {:.3} s", other.pts),
        );
    }

    let src_times = absolute_times(&src);
    let out_times = absolute_times(&out);
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

    if expect.audio_copy && src.audio.is_some() {
        if out.audio.is_none() {
            fail(Reason::AudioMissing, "the source segment has audio, the rendition none".into());
        } else {
            let (a, b) = (audio_packets(ff, source)?, audio_packets(ff, rendition)?);
            if a != b {
                let same = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
                fail(
                    Reason::AudioNotCopied,
                    format!(
                        "{} audio packets, {} in the source, the first {same} identical",
                        b.len(),
                        a.len()
                    ),
                );
            }
        }
    }
    Ok(Coarse { findings, source: src, rendition: out })
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

/// `pts,md5` of every packet of the first audio stream.
fn audio_packets(ff: &Ffmpeg, path: &Path) -> Result<Vec<String>> {
    let out = run(
        ff.ffprobe()
            .args(["-select_streams", "a:0", "-show_data_hash", "MD5", "-of", "csv=p=0"])
            .args(["-show_entries", "packet=pts,data_hash"])
            .arg(path),
        || format!("reading the audio packets of {}", path.display()),
    )?;
    Ok(String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expectations_are_validated() {
        let e = |w, h, fps| Expect { width: w, height: h, fps, audio_copy: false };
        assert!(e(640, 360, None).validate().is_ok());
        assert!(e(641, 360, None).validate().is_err());
        assert!(e(0, 0, None).validate().is_err());
        assert!(e(640, 360, Some(0.0)).validate().is_err());
        assert!(e(640, 360, Some(29.97)).validate().is_ok());
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
