//! HLS packaging: `master.m3u8`, one `index.m3u8` per rendition, and `manifest.json`.
//!
//! Segments are MPEG-TS files named by their blake3 hash. MPEG-TS rather than fMP4/CMAF because
//! a Kinema segment is a unit of work, storage, payment and peer-to-peer delivery on its own: a TS
//! segment decodes with nothing but its own bytes, while a CMAF fragment needs its rendition's
//! init segment, which independent transcoders would each have to reproduce byte for byte.
//! Browsers play TS through hls.js, which transmuxes it to fMP4 for Media Source Extensions.

use std::fmt::Write as _;
use std::path::Path;

use kinema_chain::Hash;
use serde::{Deserialize, Serialize};

use crate::ffmpeg::{Ffmpeg, run};
use crate::plan::Mode;
use crate::probe::Rational;
use crate::rendition::Rendition;
use crate::segment::MezzanineSettings;
use crate::transcode::EncodeSettings;
use crate::{Error, Result};

/// Version of the `manifest.json` layout.
pub const MANIFEST_VERSION: u32 = 1;

/// The blake3 hash of the file at `path` (a segment's content address), and its size.
pub fn hash_file(path: &Path) -> Result<(Hash, u64)> {
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, "cannot open", e))?;
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader(&mut file).map_err(|e| Error::io(path, "cannot read", e))?;
    let len = file.metadata().map_err(|e| Error::io(path, "cannot stat", e))?.len();
    Ok((hasher.finalize().into(), len))
}

/// Everything a ladder run produced, as written to `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Layout version ([`MANIFEST_VERSION`]).
    pub version: u32,
    /// What the source was.
    pub source: SourceSummary,
    /// The target segment length in seconds.
    pub segment_seconds: f64,
    /// How the source was cut.
    pub segmenting: Mode,
    /// The mezzanine encode, when the source was re-encoded before cutting.
    pub mezzanine: Option<MezzanineSettings>,
    /// Duration of each segment in seconds; the same for every rendition.
    pub segment_durations: Vec<f64>,
    /// The encoder and its settings, enough to re-encode any segment.
    pub encoder: EncoderSummary,
    /// The renditions, tallest first.
    pub renditions: Vec<RenditionManifest>,
}

/// The source of a ladder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceSummary {
    /// File name of the source.
    pub name: String,
    /// Duration of its video in seconds.
    pub duration: f64,
    /// Coded width.
    pub width: u32,
    /// Coded height.
    pub height: u32,
    /// Nominal frame rate.
    pub frame_rate: Rational,
    /// Video codec.
    pub video_codec: String,
    /// Audio codec, if the source has audio.
    pub audio_codec: Option<String>,
}

/// The encoder of a ladder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncoderSummary {
    /// `ffmpeg -version`'s first line.
    pub ffmpeg: String,
    /// The video encoder.
    pub video: String,
    /// Its settings.
    pub settings: EncodeSettings,
    /// The audio codec of every segment (encoded once from the source, then copied).
    pub audio: Option<String>,
    /// Audio bit rate in bits per second.
    pub audio_bitrate: Option<u32>,
}

/// One rendition of a ladder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RenditionManifest {
    /// Size and bit-rate cap.
    #[serde(flatten)]
    pub rendition: Rendition,
    /// Path of its media playlist relative to the output directory.
    pub playlist: String,
    /// RFC 6381 codecs string, e.g. `avc1.64001f,mp4a.40.2`.
    pub codecs: String,
    /// Peak segment bit rate in bits per second (HLS `BANDWIDTH`).
    pub bandwidth: u64,
    /// Average bit rate in bits per second (HLS `AVERAGE-BANDWIDTH`).
    pub average_bandwidth: u64,
    /// Frame rate (HLS `FRAME-RATE`).
    pub frame_rate: f64,
    /// The segments in playback order.
    pub segments: Vec<SegmentEntry>,
}

/// One segment of a rendition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentEntry {
    /// File name relative to the rendition directory: `<blake3>.ts`.
    pub file: String,
    /// blake3 of the file.
    pub blake3: Hash,
    /// Size in bytes.
    pub bytes: u64,
    /// Duration in seconds.
    pub duration: f64,
}

/// Renditions a manifest lists at most.
pub const MAX_RENDITIONS: usize = 16;
/// Segments a rendition has at most (over two days of 2 s segments).
pub const MAX_SEGMENTS: usize = 100_000;
/// The longest segment, in seconds.
pub const MAX_SEGMENT_SECONDS: f64 = 60.0;
/// The largest segment, in bytes.
pub const MAX_SEGMENT_BYTES: u64 = 512 << 20;

/// Whether `name` is a rendition name: a short `[a-z0-9_-]` word (it is a directory, a path in
/// a URL and a line of the master playlist).
pub fn is_rendition_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Whether `codecs` has RFC 6381's syntax: up to 4 comma-separated entries, each a four-letter
/// sample entry (`avc1`, `mp4a`, `hvc1`) followed by `.`-separated alphanumeric parameters.
pub fn is_codecs_string(codecs: &str) -> bool {
    let entry_ok = |entry: &str| {
        let mut parts = entry.split('.');
        let fourcc = parts.next().unwrap_or_default();
        fourcc.len() == 4
            && fourcc.bytes().all(|b| b.is_ascii_alphanumeric())
            && parts.all(|p| {
                !p.is_empty() && p.len() <= 16 && p.bytes().all(|b| b.is_ascii_alphanumeric())
            })
    };
    codecs.len() <= 128 && codecs.split(',').count() <= 4 && codecs.split(',').all(entry_ok)
}

/// A segment as a transcode job's result names it: its blake3 and size.
pub type SegmentOutput = ([u8; 32], u64);

impl Manifest {
    /// Each rendition's name with its segments' blake3 and size, in segment order: what a
    /// job's results announce, for the jobs contract's `check_ladder`.
    pub fn outputs(&self) -> Vec<(&str, Vec<SegmentOutput>)> {
        self.renditions
            .iter()
            .map(|r| {
                let outputs = r.segments.iter().map(|s| (s.blake3.0, s.bytes)).collect();
                (r.rendition.name.as_str(), outputs)
            })
            .collect()
    }

    /// Checks what a manifest from elsewhere (a relay's upload, a peer) must be before the
    /// playlists are written from it: rendition names [`is_rendition_name`] and distinct,
    /// codecs [`is_codecs_string`], sizes, rates, counts and durations finite and in range,
    /// every rendition with one segment per entry of `segment_durations`. Nothing that passes
    /// can add a line of its own to a playlist. The reason when it does not pass.
    pub fn check(&self) -> std::result::Result<(), String> {
        let in_range = |x: f64, max: f64| x.is_finite() && x > 0.0 && x <= max;
        let name = &self.source.name;
        if name.chars().count() > 255 || name.contains(char::is_control) {
            return Err(
                "the source's name is over 255 characters or holds control characters".into()
            );
        }
        if !(self.source.duration.is_finite() && (0.0..=1e7).contains(&self.source.duration)) {
            return Err(format!(
                "the source's duration {} s is out of range",
                self.source.duration
            ));
        }
        if !(1..=MAX_RENDITIONS).contains(&self.renditions.len()) {
            return Err(format!(
                "{} renditions: 1 to {MAX_RENDITIONS} expected",
                self.renditions.len()
            ));
        }
        let count = self.segment_durations.len();
        if !(1..=MAX_SEGMENTS).contains(&count) {
            return Err(format!("{count} segments: 1 to {MAX_SEGMENTS} expected"));
        }
        if let Some(d) = self.segment_durations.iter().find(|d| !in_range(**d, MAX_SEGMENT_SECONDS))
        {
            return Err(format!(
                "a segment duration of {d} s is not within (0, {MAX_SEGMENT_SECONDS}]"
            ));
        }
        for (i, r) in self.renditions.iter().enumerate() {
            let name = &r.rendition.name;
            if !is_rendition_name(name) {
                return Err(format!("rendition name {name:?} is not a short [a-z0-9_-] word"));
            }
            if self.renditions[..i].iter().any(|o| o.rendition.name == *name) {
                return Err(format!("rendition {name} is listed twice"));
            }
            if !is_codecs_string(&r.codecs) {
                return Err(format!(
                    "rendition {name}'s codecs {:?} are not RFC 6381's syntax",
                    r.codecs
                ));
            }
            let (w, h) = (r.rendition.width, r.rendition.height);
            if !(16..=8192).contains(&w) || !(16..=8192).contains(&h) {
                return Err(format!(
                    "rendition {name} is {w}x{h}: 16 to 8192 pixels each way expected"
                ));
            }
            if !(1..=1_000_000_000).contains(&r.bandwidth)
                || !(1..=1_000_000_000).contains(&r.average_bandwidth)
            {
                return Err(format!("rendition {name}'s bandwidth is not within 1 b/s to 1 Gb/s"));
            }
            if !in_range(r.frame_rate, 1000.0) {
                return Err(format!(
                    "rendition {name}'s frame rate {} is not within (0, 1000]",
                    r.frame_rate
                ));
            }
            if r.segments.len() != count {
                return Err(format!(
                    "rendition {name} has {} segments, the ladder {count}",
                    r.segments.len()
                ));
            }
            for s in &r.segments {
                if !in_range(s.duration, MAX_SEGMENT_SECONDS)
                    || !(1..=MAX_SEGMENT_BYTES).contains(&s.bytes)
                {
                    return Err(format!(
                        "rendition {name}'s segment {} ({} bytes, {} s) is out of range",
                        s.blake3, s.bytes, s.duration
                    ));
                }
            }
        }
        Ok(())
    }
}

impl RenditionManifest {
    /// Builds a rendition's entry from its segments, computing its bit rates.
    pub fn new(
        rendition: Rendition,
        codecs: String,
        frame_rate: f64,
        segments: Vec<SegmentEntry>,
    ) -> Self {
        let rate = |bytes: u64, seconds: f64| {
            if seconds > 0.0 { (bytes as f64 * 8.0 / seconds).ceil() as u64 } else { 0 }
        };
        let bandwidth = segments.iter().map(|s| rate(s.bytes, s.duration)).max().unwrap_or(0);
        let total_bytes = segments.iter().map(|s| s.bytes).sum();
        let total_seconds = segments.iter().map(|s| s.duration).sum();
        Self {
            playlist: format!("{}/index.m3u8", rendition.name),
            rendition,
            codecs,
            bandwidth,
            average_bandwidth: rate(total_bytes, total_seconds),
            frame_rate,
            segments,
        }
    }
}

/// The media playlist of one rendition.
pub fn media_playlist(segments: &[SegmentEntry]) -> String {
    // RFC 8216 4.3.3.1: every EXTINF rounded to the nearest integer must not exceed it.
    let target = segments.iter().map(|s| s.duration.round() as u64).max().unwrap_or(1).max(1);
    let mut text = format!(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-INDEPENDENT-SEGMENTS\n"
    );
    for segment in segments {
        let _ = write!(text, "#EXTINF:{:.6},\n{}\n", segment.duration, segment.file);
    }
    text.push_str("#EXT-X-ENDLIST\n");
    text
}

/// The master playlist listing every rendition.
pub fn master_playlist(renditions: &[RenditionManifest]) -> String {
    let mut text = String::from("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    for r in renditions {
        let _ = write!(
            text,
            "#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={},RESOLUTION={}x{},FRAME-RATE={:.3},CODECS=\"{}\"\n{}\n",
            r.bandwidth,
            r.average_bandwidth,
            r.rendition.width,
            r.rendition.height,
            r.frame_rate,
            r.codecs,
            r.playlist
        );
    }
    text
}

/// Writes the playlists and `manifest.json` into `dir`.
pub fn write(dir: &Path, manifest: &Manifest) -> Result<()> {
    let put = |path: &Path, text: &[u8]| {
        std::fs::write(path, text).map_err(|e| Error::io(path, "cannot write", e))
    };
    for r in &manifest.renditions {
        put(&dir.join(&r.playlist), media_playlist(&r.segments).as_bytes())?;
    }
    put(&dir.join("master.m3u8"), master_playlist(&manifest.renditions).as_bytes())?;
    let json = serde_json::to_vec_pretty(manifest)
        .map_err(|e| Error::io(dir, "cannot encode manifest.json", std::io::Error::other(e)))?;
    put(&dir.join("manifest.json"), &json)
}

/// The RFC 6381 codecs string of an H.264 segment (and AAC-LC when it has audio), read from the
/// segment itself.
pub fn codecs_of(ff: &Ffmpeg, segment: &Path) -> Result<String> {
    let out = run(
        ff.ffprobe()
            .args(["-of", "csv=p=0", "-show_entries", "stream=codec_type,profile,level"])
            .arg(segment),
        || format!("reading the codec of {}", segment.display()),
    )?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut video = None;
    let mut audio = false;
    for line in text.lines() {
        let fields: Vec<&str> = line.split(',').collect();
        match fields.as_slice() {
            [profile, "video", level, ..] | ["video", profile, level, ..] => {
                video = Some(avc1(profile, level.trim().parse().unwrap_or(0)));
            }
            [_, "audio", ..] | ["audio", ..] => audio = true,
            _ => {}
        }
    }
    let video = video.ok_or_else(|| Error::Ffmpeg {
        what: format!("reading the codec of {}", segment.display()),
        detail: "no video stream".into(),
    })?;
    Ok(if audio { format!("{video},mp4a.40.2") } else { video })
}

/// `avc1.PPCCLL` for an H.264 profile name and level_idc.
fn avc1(profile: &str, level: u32) -> String {
    let (profile_idc, constraints) = match profile {
        "Constrained Baseline" => (0x42, 0xc0),
        "Baseline" => (0x42, 0x00),
        "Main" => (0x4d, 0x40),
        "High 10" => (0x6e, 0x00),
        "High 4:2:2" => (0x7a, 0x00),
        "High 4:4:4 Predictive" => (0xf4, 0x00),
        _ => (0x64, 0x00),
    };
    format!("avc1.{profile_idc:02x}{constraints:02x}{level:02x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(i: u32, bytes: u64, duration: f64) -> SegmentEntry {
        let hash = Hash::digest(&i.to_le_bytes());
        SegmentEntry { file: format!("{hash}.ts"), blake3: hash, bytes, duration }
    }

    #[test]
    fn media_playlists_list_exact_durations() {
        let segments = [entry(0, 1000, 2.0), entry(1, 1000, 2.52), entry(2, 10, 0.4)];
        let text = media_playlist(&segments);
        assert!(text.contains("#EXT-X-TARGETDURATION:3\n"), "{text}");
        assert!(text.contains("#EXTINF:2.520000,\n"));
        assert!(text.ends_with("#EXT-X-ENDLIST\n"));
        assert_eq!(text.matches(".ts\n").count(), 3);
    }

    #[test]
    fn bandwidth_is_the_peak_segment_rate() {
        let r = Rendition { name: "360p".into(), width: 640, height: 360, max_bitrate: 1 };
        let m = RenditionManifest::new(
            r,
            "avc1.64001e".into(),
            25.0,
            vec![entry(0, 1000, 2.0), entry(1, 500, 2.0)],
        );
        assert_eq!(m.bandwidth, 4000);
        assert_eq!(m.average_bandwidth, 3000);
        let master = master_playlist(&[m]);
        assert!(master.contains("BANDWIDTH=4000,AVERAGE-BANDWIDTH=3000,RESOLUTION=640x360,FRAME-RATE=25.000,CODECS=\"avc1.64001e\"\n360p/index.m3u8\n"), "{master}");
    }

    #[test]
    fn codec_strings_follow_rfc6381() {
        assert_eq!(avc1("High", 31), "avc1.64001f");
        assert_eq!(avc1("Main", 30), "avc1.4d401e");
        assert_eq!(avc1("Constrained Baseline", 13), "avc1.42c00d");
    }

    #[test]
    fn manifests_that_would_write_their_own_playlist_lines_are_refused() {
        let r = Rendition { name: "360p".into(), width: 640, height: 360, max_bitrate: 1 };
        let segments = vec![entry(0, 1000, 2.0), entry(1, 500, 1.5)];
        let rendition = RenditionManifest::new(r, "avc1.64001e,mp4a.40.2".into(), 25.0, segments);
        let good = Manifest {
            version: MANIFEST_VERSION,
            source: SourceSummary {
                name: "clip.mp4".into(),
                duration: 3.5,
                width: 1280,
                height: 720,
                frame_rate: Rational { num: 25, den: 1 },
                video_codec: "h264".into(),
                audio_codec: None,
            },
            segment_seconds: 2.0,
            segmenting: Mode::Copy,
            mezzanine: None,
            segment_durations: vec![2.0, 1.5],
            encoder: EncoderSummary {
                ffmpeg: "ffmpeg".into(),
                video: "libx264".into(),
                settings: EncodeSettings::default(),
                audio: None,
                audio_bitrate: None,
            },
            renditions: vec![rendition],
        };
        good.check().unwrap();
        let refused = |change: &dyn Fn(&mut Manifest), why: &str| {
            let mut bad = good.clone();
            change(&mut bad);
            let err = bad.check().unwrap_err();
            assert!(err.contains(why), "{err}");
        };
        // A line break, a tag or a path in a rendition's name or its codecs.
        for name in ["360p\n#EXT-X-ENDLIST", "../x", "360P", "", &"a".repeat(33)] {
            refused(&|m| m.renditions[0].rendition.name = name.into(), "not a short");
        }
        for codecs in
            ["avc1.64001e\"\nevil.m3u8", "avc1,", "avc1..4", "av1", "avc1.6400 1e", "a,b,c,d,e"]
        {
            refused(&|m| m.renditions[0].codecs = codecs.into(), "RFC 6381");
        }
        refused(&|m| m.renditions[0].rendition.width = 100_000, "pixels");
        refused(&|m| m.renditions[0].frame_rate = f64::NAN, "frame rate");
        refused(&|m| m.renditions[0].bandwidth = 0, "bandwidth");
        refused(&|m| m.renditions[0].segments[1].duration = f64::INFINITY, "out of range");
        refused(&|m| m.renditions[0].segments[1].duration = 3600.0, "out of range");
        refused(&|m| m.renditions[0].segments[0].bytes = 0, "out of range");
        refused(&|m| m.renditions[0].segments.pop().map(drop).unwrap_or(()), "has 1 segments");
        refused(&|m| m.segment_durations[0] = -1.0, "segment duration");
        refused(&|m| m.renditions.push(m.renditions[0].clone()), "listed twice");
        refused(&|m| m.renditions.clear(), "renditions");
        refused(&|m| m.source.name = "a\rb".into(), "control");
    }

    #[test]
    fn segment_ids_round_trip_as_hex() {
        let id = Hash::digest(b"segment");
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json.len(), 66);
        assert_eq!(serde_json::from_str::<Hash>(&json).unwrap(), id);
        assert!("xyz".parse::<Hash>().is_err());
    }
}
