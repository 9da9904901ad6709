//! Helpers: the corpus, the located ffmpeg, facts about a segment read back with ffprobe.

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use kinema_media::Ffmpeg;

pub(crate) use kinema_test_support::corpus;

pub(crate) fn ff() -> &'static Ffmpeg {
    static FF: OnceLock<Ffmpeg> = OnceLock::new();
    FF.get_or_init(|| Ffmpeg::locate().expect("ffmpeg is installed"))
}

/// What a segment holds, read back independently of the code under test.
#[derive(Debug)]
pub(crate) struct SegmentFacts {
    /// The first packet in decode order is a keyframe presented first.
    pub starts_with_keyframe: bool,
    pub start: f64,
    /// Presentation time of the last frame.
    pub last_frame: f64,
    /// Where the last frame ends (its time plus its duration, when the container has one).
    pub end: f64,
    pub width: u32,
    pub height: u32,
}

pub(crate) fn segment_facts(path: &Path) -> SegmentFacts {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-of", "csv=p=0"])
        .args(["-show_entries", "packet=pts_time,duration_time,flags"])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "ffprobe {}", path.display());
    let packets: Vec<(f64, f64, bool)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let pts = f.first()?.parse::<f64>().ok()?;
            let dur = f.get(1).and_then(|d| d.parse::<f64>().ok()).unwrap_or(0.0);
            Some((pts, dur, f.get(2).is_some_and(|k| k.starts_with('K'))))
        })
        .collect();
    assert!(!packets.is_empty(), "{} has no video packets", path.display());
    let start = packets.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
    let last = packets.iter().max_by(|a, b| a.0.total_cmp(&b.0)).unwrap();
    let size = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-of", "csv=p=0"])
        .args(["-show_entries", "stream=width,height"])
        .arg(path)
        .output()
        .unwrap();
    let size = String::from_utf8_lossy(&size.stdout);
    let mut wh =
        size.lines().next().unwrap_or_default().split(',').map(|v| v.parse::<u32>().unwrap());
    SegmentFacts {
        starts_with_keyframe: packets[0].2 && packets[0].0 == start,
        start,
        last_frame: last.0,
        end: last.0 + last.1,
        width: wh.next().unwrap(),
        height: wh.next().unwrap(),
    }
}

/// Decodes every stream of `input` (a file or playlist) and returns ffmpeg's error output.
pub(crate) fn decode_errors(input: &Path) -> String {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(input)
        .args(["-map", "0", "-f", "null", "-"])
        .output()
        .unwrap();
    let mut text = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        text.push_str(&format!("\nexit status {}", out.status));
    }
    text
}

/// Number of video packets ffmpeg demuxes from `input` (a file or playlist).
pub(crate) fn video_packets(input: &Path) -> u64 {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-count_packets", "-of", "csv=p=0"])
        .args(["-show_entries", "stream=nb_read_packets"])
        .arg(input)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().find_map(|l| l.trim().parse().ok()).unwrap()
}
