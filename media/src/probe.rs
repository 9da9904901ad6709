//! Probing: ffprobe's JSON turned into a typed [`MediaInfo`].
//!
//! Two ffprobe passes: one reads the container header (format and streams), the other lists every
//! packet of the chosen video stream in decode order, which gives the exact frame times and
//! keyframe positions the segmenter plans its cuts on. Segments, which are short, are probed in
//! one pass that lists every packet with its MD5 ([`probe_segment`], for the verifier).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ffmpeg::{Ffmpeg, failure_detail};
use crate::{Error, Result};

/// What a media file holds.
#[derive(Debug, Clone, Serialize)]
pub struct MediaInfo {
    /// The probed file.
    pub path: PathBuf,
    /// ffprobe's container name, e.g. `mov,mp4,m4a,3gp,3g2,mj2` or `mpegts`.
    pub container: String,
    /// File size in bytes.
    pub size: u64,
    /// Container duration in seconds.
    pub duration: f64,
    /// Container start time in seconds (what ffmpeg subtracts to start output at zero).
    pub start_time: f64,
    /// Overall bit rate in bits per second, when the container states one.
    pub bit_rate: Option<u64>,
    /// The video stream Kinema works on (the first one that is not cover art).
    pub video: VideoStream,
    /// The first audio stream, if any.
    pub audio: Option<AudioStream>,
    /// Number of streams of every kind in the file.
    pub stream_count: usize,
}

/// A video stream.
#[derive(Debug, Clone, Serialize)]
pub struct VideoStream {
    /// Stream index in the container.
    pub index: usize,
    /// ffprobe codec name, e.g. `h264`, `mpeg2video`.
    pub codec: String,
    /// Codec profile, e.g. `High`.
    pub profile: Option<String>,
    /// Coded width in pixels.
    pub width: u32,
    /// Coded height in pixels.
    pub height: u32,
    /// Sample (pixel) aspect ratio; 1:1 when unknown.
    pub sample_aspect_ratio: Rational,
    /// The container's display rotation, a quarter turn in degrees (0, 90, 180 or 270, as
    /// ffprobe reports the display matrix): how the coded picture is turned to be shown upright,
    /// as in an MP4 from a phone held upright.
    pub rotation: u16,
    /// Pixel format, e.g. `yuv420p`.
    pub pixel_format: Option<String>,
    /// The stream's nominal frame rate (ffprobe `r_frame_rate`).
    pub frame_rate: Rational,
    /// The stream's average frame rate (ffprobe `avg_frame_rate`), when known.
    pub avg_frame_rate: Option<Rational>,
    /// Number of frames (video packets) in the stream.
    pub frame_count: u64,
    /// Frames the container holds but hides (flagged discard: the lead-in an MP4 edit list cuts
    /// off, kept because later frames need it to decode); they are not in `packets`.
    pub hidden_frames: u64,
    /// Presentation times of keyframes, in seconds, relative to the container start.
    pub keyframe_times: Vec<f64>,
    /// Every video packet in decode order (times relative to the container start).
    #[serde(skip)]
    pub packets: Vec<Packet>,
}

/// One video packet, as far as segmenting cares.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Packet {
    /// Presentation time in seconds, relative to the container start.
    pub pts: f64,
    /// Duration in seconds, if the container knows it.
    pub duration: Option<f64>,
    /// Whether the packet starts a keyframe.
    pub key: bool,
    /// Whether the container gave the packet no presentation time, so `pts` was inferred (the
    /// decode time of the next reference frame). ffmpeg then has no time for it either: a stream
    /// copy passes it on untimed.
    pub pts_inferred: bool,
}

/// An audio stream.
#[derive(Debug, Clone, Serialize)]
pub struct AudioStream {
    /// Stream index in the container.
    pub index: usize,
    /// ffprobe codec name, e.g. `aac`, `mp3`.
    pub codec: String,
    /// Sample rate in Hz.
    pub sample_rate: u32,
    /// Number of channels.
    pub channels: u32,
    /// Channel layout, e.g. `stereo` or `5.1`.
    pub channel_layout: Option<String>,
}

impl VideoStream {
    /// The size shown, in square pixels: the coded width times the sample aspect ratio, and the
    /// height, swapped when the display matrix turns the picture a quarter.
    pub fn display_size(&self) -> (f64, f64) {
        let width = f64::from(self.width) * self.sample_aspect_ratio.as_f64();
        let height = f64::from(self.height);
        if self.rotation % 180 == 90 { (height, width) } else { (width, height) }
    }

    /// Presentation times of all frames, sorted.
    pub fn frame_times(&self) -> Vec<f64> {
        let mut times: Vec<f64> = self.packets.iter().map(|p| p.pts).collect();
        times.sort_by(f64::total_cmp);
        times
    }

    /// The typical time between two frames, in seconds.
    pub fn frame_interval(&self) -> f64 {
        let rate = self.avg_frame_rate.filter(|r| r.num > 0).unwrap_or(self.frame_rate);
        if rate.num > 0 && rate.den > 0 { rate.den as f64 / rate.num as f64 } else { 1.0 / 25.0 }
    }

    /// From the first frame's presentation time to the end of the last one.
    pub fn span(&self) -> f64 {
        let first = self.packets.iter().map(|p| p.pts).fold(f64::INFINITY, f64::min);
        if first.is_finite() { self.end_time() - first } else { 0.0 }
    }

    /// Where the last frame ends: its presentation time plus its duration.
    pub fn end_time(&self) -> f64 {
        let last = self.packets.iter().max_by(|a, b| a.pts.total_cmp(&b.pts));
        last.map_or(0.0, |p| {
            p.pts + p.duration.filter(|d| *d > 0.0).unwrap_or(self.frame_interval())
        })
    }
}

/// A rational number such as a frame rate (`30000/1001`); written as `num/den`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Rational {
    /// Numerator.
    pub num: u64,
    /// Denominator.
    pub den: u64,
}

impl Rational {
    /// `num/den` as a float (0 when the denominator is 0).
    pub fn as_f64(self) -> f64 {
        if self.den == 0 { 0.0 } else { self.num as f64 / self.den as f64 }
    }
}

impl fmt::Display for Rational {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.num, self.den)
    }
}

impl FromStr for Rational {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (num, den) = s.split_once(['/', ':']).ok_or_else(|| format!("{s:?} is not num/den"))?;
        let parse = |v: &str| v.trim().parse::<u64>().map_err(|e| format!("{s:?}: {e}"));
        Ok(Rational { num: parse(num)?, den: parse(den)? })
    }
}

impl From<Rational> for String {
    fn from(r: Rational) -> String {
        r.to_string()
    }
}

impl TryFrom<String> for Rational {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

/// Probes `path`: checks it is a readable media file with a decodable video stream and lists
/// its video packets.
pub fn probe(ff: &Ffmpeg, path: &Path) -> Result<MediaInfo> {
    probe_with(ff, path, Listing::Separate).map(|(info, _)| info)
}

/// Probes a segment in one ffprobe pass: what [`probe`] reports, plus `pts,md5` of every packet
/// of the first audio stream (what a stream copy must reproduce). Every packet of every stream is
/// listed, so this is for short files. The codec is not checked against ffmpeg's decoder list
/// (that costs another process); decoding the segment reports a codec it cannot decode.
pub fn probe_segment(ff: &Ffmpeg, path: &Path) -> Result<(MediaInfo, Vec<String>)> {
    probe_with(ff, path, Listing::Inline)
}

/// Where the packet list comes from.
#[derive(Clone, Copy, PartialEq)]
enum Listing {
    /// A second pass over the video stream alone.
    Separate,
    /// The header pass, with every packet and its MD5.
    Inline,
}

/// The metadata of `path` when it is a non-empty file; otherwise the error that says which of
/// those it is not.
pub(crate) fn media_file(path: &Path) -> Result<std::fs::Metadata> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::NotFound { path: path.into() });
        }
        Err(e) => return Err(Error::io(path, "cannot read", e)),
    };
    if !meta.is_file() {
        return Err(Error::NotAFile { path: path.into() });
    }
    if meta.len() == 0 {
        return Err(Error::Empty { path: path.into() });
    }
    Ok(meta)
}

fn probe_with(ff: &Ffmpeg, path: &Path, listing: Listing) -> Result<(MediaInfo, Vec<String>)> {
    let meta = media_file(path)?;

    let mut command = ff.ffprobe();
    command.args(["-of", "json", "-show_format", "-show_streams"]);
    if listing == Listing::Inline {
        command.args(["-show_packets", "-show_data_hash", "MD5"]);
    }
    let header = command.arg(path).output().map_err(|e| Error::ToolMissing {
        tool: "ffprobe",
        env: "KINEMA_FFPROBE",
        detail: e.to_string(),
    })?;
    if !header.status.success() {
        let detail = failure_detail(&header.stderr, header.status);
        let detail = detail.rsplit_once(": ").map_or(detail.clone(), |(_, d)| d.to_owned());
        let stderr = String::from_utf8_lossy(&header.stderr);
        return Err(if stderr.contains("moov atom not found") {
            Error::Truncated { path: path.into(), detail: "moov atom not found".into() }
        } else {
            Error::NotMedia { path: path.into(), detail }
        });
    }
    let raw: RawProbe = serde_json::from_slice(&header.stdout).map_err(|e| Error::NotMedia {
        path: path.into(),
        detail: format!("unreadable ffprobe output: {e}"),
    })?;
    let Some(format) = raw.format else {
        return Err(Error::NotMedia { path: path.into(), detail: "no container format".into() });
    };
    if raw.streams.is_empty() {
        return Err(Error::NotMedia { path: path.into(), detail: "no streams".into() });
    }
    // ffmpeg renders any text file as ANSI art through its `tty` demuxer; that is not a video.
    if format.format_name.as_deref() == Some("tty") {
        return Err(Error::NotMedia { path: path.into(), detail: "it is a text file".into() });
    }
    let start_time = format.start_time.as_deref().and_then(parse_f64).unwrap_or(0.0);

    let Some(raw_video) = raw
        .streams
        .iter()
        .find(|s| s.codec_type.as_deref() == Some("video") && s.disposition.attached_pic == 0)
    else {
        let found = raw
            .streams
            .iter()
            .map(|s| {
                format!(
                    "{} {}",
                    s.codec_type.as_deref().unwrap_or("unknown"),
                    s.codec_name.as_deref().unwrap_or("?")
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        return Err(Error::NoVideo { path: path.into(), found });
    };
    let codec = raw_video.codec_name.clone().unwrap_or_default();
    let unknown = matches!(codec.as_str(), "" | "none" | "unknown");
    if unknown || (listing == Listing::Separate && !ff.can_decode(&codec)?) {
        let tag = raw_video.codec_tag_string.as_deref().unwrap_or("?");
        let codec = if unknown { format!("unknown (FourCC {tag})") } else { codec };
        return Err(Error::UnsupportedCodec { path: path.into(), codec });
    }
    let (width, height) = match (raw_video.width, raw_video.height) {
        (Some(w), Some(h)) if w > 0 && h > 0 => (w, h),
        _ => {
            return Err(Error::BadVideo { path: path.into(), detail: "no frame size".into() });
        }
    };
    let sar = raw_video
        .sample_aspect_ratio
        .as_deref()
        .and_then(|s| s.parse::<Rational>().ok())
        .filter(|r| r.num > 0 && r.den > 0)
        .unwrap_or(Rational { num: 1, den: 1 });
    let rotation = quarter_turns(raw_video.side_data_list.iter().find_map(|d| d.rotation))
        .map_err(|what| Error::Unsupported { path: path.into(), what })?;
    let frame_rate = raw_video
        .r_frame_rate
        .as_deref()
        .and_then(|s| s.parse().ok())
        .unwrap_or(Rational { num: 0, den: 1 });
    let avg_frame_rate = raw_video
        .avg_frame_rate
        .as_deref()
        .and_then(|s| s.parse::<Rational>().ok())
        .filter(|r| r.num > 0 && r.den > 0);

    let (packets, hidden_frames) = match listing {
        Listing::Separate => video_packets(ff, path, raw_video.index, start_time)?,
        Listing::Inline => {
            if String::from_utf8_lossy(&header.stderr).contains("partial file") {
                return Err(truncated_tail(path));
            }
            let timed = raw.packets.iter().filter(|p| p.stream_index == raw_video.index).map(|p| {
                Timed::parse(
                    p.pts_time.as_deref(),
                    p.dts_time.as_deref(),
                    p.duration_time.as_deref(),
                    &p.flags,
                )
            });
            presentation_times(timed.collect(), start_time)
        }
    };
    if packets.is_empty() {
        return Err(Error::BadVideo {
            path: path.into(),
            detail: "the video stream has no frames".into(),
        });
    }
    // MP4/MOV sample tables list every frame, so fewer packets means a cut-off file. (An AVI
    // index also counts the empty chunks that stand for dropped frames: no such check there.)
    let container = format.format_name.clone().unwrap_or_default();
    let declared = raw_video.nb_frames.as_deref().and_then(|n| n.parse::<u64>().ok());
    if container.starts_with("mov,mp4")
        && let Some(declared) = declared
        && declared > packets.len() as u64 + hidden_frames + 1
    {
        return Err(Error::Truncated {
            path: path.into(),
            detail: format!(
                "the container lists {declared} video frames, only {} are present",
                packets.len()
            ),
        });
    }
    let mut keyframe_times: Vec<f64> = packets.iter().filter(|p| p.key).map(|p| p.pts).collect();
    keyframe_times.sort_by(f64::total_cmp);

    let video = VideoStream {
        index: raw_video.index,
        codec,
        profile: raw_video.profile.clone(),
        width,
        height,
        sample_aspect_ratio: sar,
        rotation,
        pixel_format: raw_video.pix_fmt.clone(),
        frame_rate,
        avg_frame_rate,
        frame_count: packets.len() as u64,
        hidden_frames,
        keyframe_times,
        packets,
    };
    let raw_audio = raw.streams.iter().find(|s| s.codec_type.as_deref() == Some("audio"));
    let audio_packets = raw_audio
        .map(|a| {
            raw.packets
                .iter()
                .filter(|p| p.stream_index == a.index)
                .map(|p| {
                    format!(
                        "{},{}",
                        p.pts_time.as_deref().unwrap_or("N/A"),
                        p.data_hash.as_deref().unwrap_or("")
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let audio = raw_audio.map(|s| AudioStream {
        index: s.index,
        codec: s.codec_name.clone().unwrap_or_default(),
        sample_rate: s.sample_rate.as_deref().and_then(|r| r.parse().ok()).unwrap_or(0),
        channels: s.channels.unwrap_or(0),
        channel_layout: s.channel_layout.clone(),
    });
    let duration = format
        .duration
        .as_deref()
        .and_then(parse_f64)
        .filter(|d| *d > 0.0)
        .unwrap_or_else(|| video.end_time());
    let info = MediaInfo {
        path: path.into(),
        container,
        size: meta.len(),
        duration,
        start_time,
        bit_rate: format.bit_rate.as_deref().and_then(|b| b.parse().ok()),
        stream_count: raw.streams.len(),
        video,
        audio,
    };
    Ok((info, audio_packets))
}

/// A display matrix's rotation as a quarter turn in degrees (0, 90, 180 or 270), or what is
/// wrong with it: renditions can be turned upright by quarter turns only.
fn quarter_turns(rotation: Option<f64>) -> Result<u16, String> {
    let Some(degrees) = rotation else { return Ok(0) };
    let turned = degrees.rem_euclid(360.0);
    let quarters = (turned / 90.0).round();
    if (turned - quarters * 90.0).abs() > 0.5 {
        return Err(format!(
            "the video is to be shown turned by {degrees}°; only quarter turns are supported"
        ));
    }
    Ok((quarters as u16 % 4) * 90)
}

/// Lists the packets of video stream `index` in decode order.
fn video_packets(
    ff: &Ffmpeg,
    path: &Path,
    index: usize,
    start_time: f64,
) -> Result<(Vec<Packet>, u64)> {
    let out = ff
        .ffprobe()
        .args(["-of", "csv=p=0", "-select_streams"])
        .arg(index.to_string())
        .args(["-show_entries", "packet=pts_time,dts_time,duration_time,flags"])
        .arg(path)
        .output()
        .map_err(|e| Error::ToolMissing {
            tool: "ffprobe",
            env: "KINEMA_FFPROBE",
            detail: e.to_string(),
        })?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(Error::NotMedia {
            path: path.into(),
            detail: failure_detail(&out.stderr, out.status),
        });
    }
    if stderr.contains("partial file") {
        return Err(truncated_tail(path));
    }
    Ok(parse_packets(&String::from_utf8_lossy(&out.stdout), start_time))
}

fn truncated_tail(path: &Path) -> Error {
    Error::Truncated { path: path.into(), detail: "the last packets are missing".into() }
}

/// Parses ffprobe's `pts_time,dts_time,duration_time,flags` CSV rows.
fn parse_packets(csv: &str, start_time: f64) -> (Vec<Packet>, u64) {
    let timed = csv.lines().map(|line| {
        let mut fields = line.split(',');
        let mut next = || fields.next();
        let (pts, dts, duration) = (next(), next(), next());
        Timed::parse(pts, dts, duration, next().unwrap_or_default())
    });
    presentation_times(timed.collect(), start_time)
}

/// One video packet as ffprobe lists it: times in seconds on the container's clock.
struct Timed {
    pts: Option<f64>,
    dts: Option<f64>,
    duration: Option<f64>,
    key: bool,
    /// Flagged discard: decoded, never shown.
    hidden: bool,
}

impl Timed {
    fn parse(pts: Option<&str>, dts: Option<&str>, duration: Option<&str>, flags: &str) -> Self {
        Self {
            pts: pts.and_then(parse_f64),
            dts: dts.and_then(parse_f64),
            duration: duration.and_then(parse_f64),
            key: flags.starts_with('K'),
            hidden: flags.contains('D'),
        }
    }

    /// A frame presented after frames decoded later: one with a presentation time later than
    /// its decode time, or with none at all (ffmpeg's parser leaves only those unset).
    fn held_back(&self) -> bool {
        match (self.pts, self.dts) {
            (None, _) => true,
            (Some(pts), Some(dts)) => pts > dts,
            (Some(_), None) => false,
        }
    }
}

/// The packets in decode order with a presentation time each, relative to `start_time`, and
/// the number of hidden ones left out; a packet with neither time is skipped.
///
/// A container may leave presentation times out: an MPEG program stream times only the first
/// frame that starts in each PES packet. ffmpeg's parser restores them for frames presented when
/// they are decoded (B-frames: PTS = DTS), but not for reference frames (I and P) of a stream
/// with B-frames: such a frame is held back until the next reference frame is decoded, which is
/// not known yet when its packet is read. So its presentation time is the decode time of the
/// next held-back frame (MPEG-1, MPEG-2 and MPEG-4 part 2 reorder by one reference frame), and
/// the last one's is the decode time a packet after the last would have. Taking its own decode
/// time instead puts it a reference interval early, onto a time another frame has, and leaves
/// its real time empty: a plan on those times cuts where there is no frame. A stream that
/// reorders nothing is presented in decode order, so there a missing presentation time is the
/// decode time.
fn presentation_times(timed: Vec<Timed>, start_time: f64) -> (Vec<Packet>, u64) {
    let reorders = timed.iter().any(|t| t.pts.is_some() && t.held_back());
    let mut decode_times = timed.iter().rev().filter_map(|t| Some((t.dts?, t.duration)));
    let (last, previous) = (decode_times.next(), decode_times.next());
    let mut next_held_back = last.map(|(dts, duration)| {
        let gap = previous.map_or(0.0, |(before, _)| dts - before);
        dts + duration.filter(|d| *d > 0.0).unwrap_or(gap)
    });
    let mut packets = Vec::with_capacity(timed.len());
    let mut hidden = 0;
    for t in timed.iter().rev() {
        let inferred = match (t.pts, t.dts) {
            (Some(_), _) => None,
            (None, None) => continue,
            (None, Some(dts)) if !reorders => Some(dts),
            (None, Some(dts)) => Some(next_held_back.unwrap_or(dts)),
        };
        if t.held_back() {
            next_held_back = t.dts.or(next_held_back);
        }
        let Some(pts) = t.pts.or(inferred) else { continue };
        if t.hidden {
            hidden += 1;
            continue;
        }
        packets.push(Packet {
            pts: pts - start_time,
            duration: t.duration,
            key: t.key,
            pts_inferred: t.pts.is_none(),
        });
    }
    packets.reverse();
    (packets, hidden)
}

fn parse_f64(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok().filter(|v| v.is_finite())
}

#[derive(Deserialize)]
struct RawProbe {
    #[serde(default)]
    streams: Vec<RawStream>,
    format: Option<RawFormat>,
    #[serde(default)]
    packets: Vec<RawPacket>,
}

#[derive(Deserialize)]
struct RawPacket {
    stream_index: usize,
    pts_time: Option<String>,
    dts_time: Option<String>,
    duration_time: Option<String>,
    #[serde(default)]
    flags: String,
    data_hash: Option<String>,
}

#[derive(Deserialize)]
struct RawStream {
    index: usize,
    codec_name: Option<String>,
    codec_type: Option<String>,
    codec_tag_string: Option<String>,
    profile: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
    sample_aspect_ratio: Option<String>,
    pix_fmt: Option<String>,
    r_frame_rate: Option<String>,
    avg_frame_rate: Option<String>,
    nb_frames: Option<String>,
    sample_rate: Option<String>,
    channels: Option<u32>,
    channel_layout: Option<String>,
    #[serde(default)]
    disposition: RawDisposition,
    #[serde(default)]
    side_data_list: Vec<RawSideData>,
}

#[derive(Deserialize)]
struct RawSideData {
    /// A display matrix's rotation in degrees.
    rotation: Option<f64>,
}

#[derive(Deserialize, Default)]
struct RawDisposition {
    #[serde(default)]
    attached_pic: u8,
}

#[derive(Deserialize)]
struct RawFormat {
    format_name: Option<String>,
    start_time: Option<String>,
    duration: Option<String>,
    bit_rate: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rationals_parse_and_print() {
        let r: Rational = "30000/1001".parse().unwrap();
        assert_eq!(r, Rational { num: 30000, den: 1001 });
        assert_eq!(r.to_string(), "30000/1001");
        assert!((r.as_f64() - 29.97).abs() < 0.001);
        assert_eq!("128:117".parse::<Rational>().unwrap(), Rational { num: 128, den: 117 });
        assert!("25".parse::<Rational>().is_err());
        assert_eq!(Rational { num: 1, den: 0 }.as_f64(), 0.0);
    }

    #[test]
    fn display_rotations_are_quarter_turns_or_refused() {
        assert_eq!(quarter_turns(None), Ok(0));
        assert_eq!(quarter_turns(Some(90.0)), Ok(90));
        assert_eq!(quarter_turns(Some(-90.0)), Ok(270));
        assert_eq!(quarter_turns(Some(-180.0)), Ok(180));
        assert_eq!(quarter_turns(Some(360.0)), Ok(0));
        assert!(quarter_turns(Some(45.0)).unwrap_err().contains("turned by 45°"));
    }

    #[test]
    fn packets_parse_with_fallbacks() {
        let csv = "0.540000,0.540000,0.040000,K_\n0.580000,0.580000,0.040000,__,side_data,\nN/A,0.62,N/A,__\nN/A,N/A,N/A,__\n0.70,0.70,0.04,_D\n";
        let (packets, hidden) = parse_packets(csv, 0.54);
        assert_eq!(packets.len(), 3);
        assert_eq!(hidden, 1);
        assert!(packets[0].key && packets[0].pts.abs() < 1e-9);
        assert!(!packets[1].key);
        // Nothing is reordered, so an untimed frame is shown when it is decoded.
        assert!((packets[2].pts - 0.08).abs() < 1e-9);
        assert!(packets[2].pts_inferred && !packets[1].pts_inferred);
        assert_eq!(packets[2].duration, None);
    }

    /// What ffprobe lists for an MPEG-1 program stream with two B-frames between reference
    /// frames: only the first frame starting in each PES packet is timed, and ffmpeg restores
    /// the B-frames' times (their decode times) but not the P-frames'.
    #[test]
    fn untimed_reference_frames_are_shown_when_the_next_is_decoded() {
        let csv = "\
            1.033333,0.933333,0.033333,K_\n\
            0.966667,0.966667,0.033333,__\n\
            1.000000,1.000000,0.033333,__\n\
            1.133333,1.033333,0.033333,__\n\
            1.066667,1.066667,0.033333,__\n\
            1.100000,1.100000,0.033333,__\n\
            N/A,1.133333,0.033333,__\n\
            1.166667,1.166667,0.033333,__\n\
            1.200000,1.200000,0.033333,__\n\
            N/A,1.233333,0.033333,__\n\
            1.266667,1.266667,0.033333,__\n\
            1.300000,1.300000,0.033333,__\n";
        let (packets, _) = parse_packets(csv, 0.933333);
        let inferred: Vec<usize> =
            (0..packets.len()).filter(|&i| packets[i].pts_inferred).collect();
        assert_eq!(inferred, vec![6, 9]);
        // Every frame has its own time, a thirtieth of a second apart. (Their decode times would
        // put two frames at 1.133 s and none at 1.333 s.)
        let mut times: Vec<f64> = packets.iter().map(|p| p.pts).collect();
        times.sort_by(f64::total_cmp);
        for (i, t) in times.iter().enumerate() {
            assert!((t - (1 + i) as f64 / 30.0).abs() < 1e-5, "{times:?}");
        }
    }
}
