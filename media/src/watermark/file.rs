//! Marking a file and reading the mark from an excerpt, with ffmpeg decoding and encoding around
//! the pure-Rust [`Marker`] and [`Detector`].
//!
//! Embedding pipes raw 4:2:0 pictures from one ffmpeg (the source, turned upright as its display
//! matrix says) through the marker into another (x264), which takes the audio from the source:
//! copied where the output container holds the codec, AAC otherwise. Every decoded frame is
//! encoded once, in order, at the source's average frame rate, so the size, frame rate and
//! frame count stay; a variable-rate source comes out at its average rate.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

use super::{Detection, Detector, Id, MIN_FRAMES, Marker, STRENGTH, WORK};
use crate::ffmpeg::{Ffmpeg, failure_detail};
use crate::frame::{Frame, PlaneRef};
use crate::probe::{MediaInfo, Rational, probe};
use crate::{Error, Result};

/// How the marked video is encoded.
#[derive(Debug, Clone)]
pub struct EmbedSettings {
    /// x264 constant rate factor.
    pub crf: u8,
    /// x264 preset.
    pub preset: String,
    /// The mark's amplitude in luma levels on a block of typical activity.
    pub strength: f32,
    /// Force a keyframe every this many seconds (a mezzanine for the ladder), or leave them to
    /// x264.
    pub keyframe_interval: Option<f64>,
}

impl Default for EmbedSettings {
    fn default() -> Self {
        Self { crf: 23, preset: "medium".into(), strength: STRENGTH, keyframe_interval: None }
    }
}

/// What an embed wrote (an odd picture size loses its last row or column: 4:2:0 H.264 needs
/// even sizes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Embedded {
    /// Frames marked and encoded.
    pub frames: u64,
    /// Picture size.
    pub width: usize,
    /// Picture height.
    pub height: usize,
}

/// The upright picture size of `info`'s video and its sample aspect ratio.
fn upright(info: &MediaInfo) -> (usize, usize) {
    let (w, h) = (info.video.width as usize, info.video.height as usize);
    if info.video.rotation % 180 == 90 { (h, w) } else { (w, h) }
}

/// Marks `input` with `id` into `out` (a new file; its extension picks the container),
/// reporting `(frames done, frames expected)` as it goes.
pub fn embed(
    ff: &Ffmpeg,
    input: &Path,
    id: Id,
    out: &Path,
    settings: &EmbedSettings,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Embedded> {
    if !(settings.strength > 0.0 && settings.strength <= 16.0) {
        return Err(Error::BadSetting {
            setting: "strength",
            value: settings.strength.to_string(),
            expected: "more than 0 and at most 16 luma levels",
        });
    }
    if !(0..=51).contains(&settings.crf) {
        return Err(Error::BadSetting {
            setting: "crf",
            value: settings.crf.to_string(),
            expected: "0..=51",
        });
    }
    // Refused before anything runs, so the clean-up of a failed run below only ever removes
    // what this run wrote.
    if out.exists() {
        return Err(Error::FileExists { path: out.into() });
    }
    let info = probe(ff, input)?;
    let (width, height) = upright(&info);
    let rate = info
        .video
        .avg_frame_rate
        .filter(|r| r.num > 0 && r.den > 0)
        .unwrap_or(info.video.frame_rate);
    let rate = if rate.num > 0 && rate.den > 0 { rate } else { Rational { num: 25, den: 1 } };
    let dir = temporary()?;
    let (decode_log, decode_err) = log_file(&dir, "decode.log")?;
    let mut decoder = ff
        .ffmpeg()
        .args(["-threads", "0", "-i"])
        .arg(input)
        .args(["-map", "0:v:0", "-fps_mode", "passthrough", "-pix_fmt", "yuv420p"])
        .args(["-f", "rawvideo", "pipe:1"])
        .stdout(Stdio::piped())
        .stderr(decode_err)
        .spawn()
        .map_err(|e| Error::Ffmpeg {
            what: format!("decoding {}", input.display()),
            detail: e.to_string(),
        })?;

    let (encode_log, encode_err) = log_file(&dir, "encode.log")?;
    let mut encoder = ff.ffmpeg();
    encoder
        .args(["-f", "rawvideo", "-pix_fmt", "yuv420p", "-s"])
        .arg(format!("{width}x{height}"))
        .arg("-framerate")
        .arg(rate.to_string())
        .args(["-i", "pipe:0"]);
    if info.audio.is_some() {
        encoder.arg("-i").arg(input).args(["-map", "0:v", "-map", "1:a:0"]);
        match audio_copies(out, &info) {
            true => encoder.args(["-c:a", "copy"]),
            false => encoder.args(["-c:a", "aac", "-b:a", "160k"]),
        };
    }
    // 4:2:0 H.264 needs even sizes: an odd last row or column is cut off.
    let (even_width, even_height) = (width & !1, height & !1);
    let mut filters = Vec::new();
    if (even_width, even_height) != (width, height) {
        filters.push(format!("crop={even_width}:{even_height}:0:0"));
    }
    let sar = info.video.sample_aspect_ratio;
    if sar.num > 0 && sar.den > 0 && sar.num != sar.den {
        filters.push(format!("setsar={}/{}", sar.num, sar.den));
    }
    if !filters.is_empty() {
        encoder.arg("-vf").arg(filters.join(","));
    }
    encoder
        .args(["-c:v", "libx264", "-preset", &settings.preset, "-crf"])
        .arg(settings.crf.to_string())
        .args(["-pix_fmt", "yuv420p", "-fps_mode", "passthrough"]);
    if let Some(every) = settings.keyframe_interval {
        encoder.arg("-force_key_frames").arg(format!("expr:gte(t,n_forced*{every})"));
    }
    if matches!(extension(out).as_str(), "mp4" | "mov" | "m4v") {
        encoder.args(["-movflags", "+faststart"]);
    }
    let mut encoder = encoder
        .arg("-n")
        .arg(out)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(encode_err)
        .spawn()
        .map_err(|e| Error::Ffmpeg {
            what: format!("encoding {}", out.display()),
            detail: e.to_string(),
        })?;

    let marker = Marker::new(id, width, height, settings.strength);
    let frame_len = Frame::yuv420p_len(width, height);
    let mut buffer = vec![0u8; frame_len];
    let expected = info.video.frame_count;
    let mut frames = 0u64;
    let mut source = decoder.stdout.take().expect("piped stdout");
    let mut sink = encoder.stdin.take().expect("piped stdin");
    let mut broken_pipe = false;
    let read = loop {
        match read_frame(&mut source, &mut buffer) {
            Ok(true) => {}
            Ok(false) => break Ok(()),
            Err(e) => break Err(Error::io(input, "reading decoded frames", e)),
        }
        marker.mark(&mut buffer[..width * height], width);
        if sink.write_all(&buffer).is_err() {
            broken_pipe = true;
            break Ok(());
        }
        frames += 1;
        progress(frames, expected.max(frames));
    };
    drop(sink);
    drop(source);
    let stop = broken_pipe || read.is_err();
    let decoded =
        finish(&mut decoder, &decode_log, || format!("decoding {}", input.display()), stop);
    let encoded =
        finish(&mut encoder, &encode_log, || format!("encoding {}", out.display()), false);
    // A failed run leaves no partial output behind.
    let outcome = read.and(decoded).and(encoded).and_then(|()| match frames {
        0 => Err(Error::BadVideo { path: input.into(), detail: "no frame decodes".into() }),
        _ => Ok(()),
    });
    if let Err(e) = outcome {
        let _ = std::fs::remove_file(out);
        return Err(e);
    }
    Ok(Embedded { frames, width: even_width, height: even_height })
}

/// A temporary directory for ffmpeg's logs: a log in a pipe nobody reads while frames flow could
/// fill and stall ffmpeg.
fn temporary() -> Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix("kinema-watermark")
        .tempdir()
        .map_err(|e| Error::io(std::env::temp_dir(), "creating a temporary directory", e))
}

fn log_file(dir: &tempfile::TempDir, name: &str) -> Result<(PathBuf, std::fs::File)> {
    let path = dir.path().join(name);
    let file = std::fs::File::create(&path).map_err(|e| Error::io(&path, "creating a log", e))?;
    Ok((path, file))
}

/// Whether the source's audio can be copied into `out`'s container.
fn audio_copies(out: &Path, info: &MediaInfo) -> bool {
    let codec = info.audio.as_ref().map_or("", |a| a.codec.as_str());
    match extension(out).as_str() {
        "mkv" => true,
        "ts" => matches!(codec, "aac" | "mp3" | "mp2" | "ac3" | "eac3" | "opus"),
        _ => matches!(codec, "aac" | "mp3" | "ac3" | "eac3" | "alac" | "flac" | "opus"),
    }
}

fn extension(path: &Path) -> String {
    path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase()
}

/// Fills `buffer` with the next frame; `false` at the end of the stream (a partial frame at the
/// end is dropped).
fn read_frame(source: &mut impl Read, buffer: &mut [u8]) -> std::io::Result<bool> {
    let mut filled = 0;
    while filled < buffer.len() {
        match source.read(&mut buffer[filled..]) {
            Ok(0) => return Ok(false),
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// Waits for an ffmpeg child and turns a failure into an error with its last logged line.
fn finish(child: &mut Child, log: &Path, what: impl Fn() -> String, stopped: bool) -> Result<()> {
    if stopped {
        let _ = child.kill();
    }
    let status = child.wait().map_err(|e| Error::Ffmpeg { what: what(), detail: e.to_string() })?;
    if status.success() || stopped {
        return Ok(());
    }
    let text = std::fs::read(log).unwrap_or_default();
    Err(Error::Ffmpeg { what: what(), detail: failure_detail(&text, status) })
}

/// Which part of a file to read the mark from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Excerpt {
    /// Start, in seconds from the beginning.
    pub from: f64,
    /// Length in seconds.
    pub seconds: f64,
}

impl Default for Excerpt {
    fn default() -> Self {
        Self { from: 0.0, seconds: 10.0 }
    }
}

/// Reads the mark from an excerpt of `input`. An excerpt with fewer than [`MIN_FRAMES`] frames
/// is an error, never a verdict.
pub fn detect(ff: &Ffmpeg, input: &Path, excerpt: Excerpt) -> Result<Detection> {
    if !(excerpt.from >= 0.0 && excerpt.from.is_finite()) {
        return Err(Error::BadSetting {
            setting: "from",
            value: excerpt.from.to_string(),
            expected: "a time in seconds, 0 or more",
        });
    }
    if !(excerpt.seconds > 0.0 && excerpt.seconds.is_finite()) {
        return Err(Error::BadSetting {
            setting: "seconds",
            value: excerpt.seconds.to_string(),
            expected: "a length in seconds, more than 0",
        });
    }
    let info = probe(ff, input)?;
    let (width, height) = upright(&info);
    // Down to a shorter side of WORK pixels; a smaller picture is read as it is.
    let short = width.min(height).max(1);
    let work = short.min(WORK);
    let (ww, wh) = (
        ((width * work) as f64 / short as f64).round().max(1.0) as usize,
        ((height * work) as f64 / short as f64).round().max(1.0) as usize,
    );
    let what = || format!("decoding {}", input.display());
    let dir = temporary()?;
    let (log, errors) = log_file(&dir, "detect.log")?;
    let mut decoder = ff
        .ffmpeg()
        .args(["-threads", "1", "-ss"])
        .arg(format!("{:.6}", excerpt.from))
        .arg("-t")
        .arg(format!("{:.6}", excerpt.seconds))
        .arg("-i")
        .arg(input)
        .args(["-map", "0:v:0", "-fps_mode", "passthrough", "-vf"])
        .arg(format!("scale={ww}:{wh}:flags=area,format=gray"))
        .args(["-f", "rawvideo", "pipe:1"])
        .stdout(Stdio::piped())
        .stderr(errors)
        .spawn()
        .map_err(|e| Error::Ffmpeg { what: what(), detail: e.to_string() })?;
    let mut detector = Detector::new(ww, wh);
    let mut source = decoder.stdout.take().expect("piped stdout");
    let mut buffer = vec![0u8; ww * wh];
    let read = loop {
        match read_frame(&mut source, &mut buffer) {
            Ok(true) => {
                detector.push(PlaneRef { width: ww, height: wh, stride: ww, data: &buffer })
            }
            Ok(false) => break Ok(()),
            Err(e) => break Err(Error::io(input, "reading decoded frames", e)),
        }
    };
    drop(source);
    let decoded = finish(&mut decoder, &log, what, read.is_err());
    read.and(decoded)?;
    if detector.frames() < MIN_FRAMES {
        return Err(Error::TooShort {
            path: input.into(),
            detail: format!(
                "{} frames from {} s (for {} s); reading a watermark takes at least {MIN_FRAMES}",
                detector.frames(),
                excerpt.from,
                excerpt.seconds
            ),
        });
    }
    Ok(detector.finish())
}
