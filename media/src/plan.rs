//! Planning where a source is cut into segments.
//!
//! Segments are ~`S` seconds long (2 s by default), start on a keyframe and decode on their own.
//! A source whose own keyframes allow that is cut by stream copy ([`Mode::Copy`]): no quality is
//! lost and nothing is encoded. Otherwise the segmenter re-encodes a high-quality mezzanine with
//! keyframes forced on an `S`-second grid ([`Mode::Mezzanine`]).
//!
//! This module is pure: it reads frame times and keyframe flags and returns the plan.

use serde::{Deserialize, Serialize};

use crate::probe::VideoStream;

/// Video codecs that may be stream-copied into MPEG-TS source segments.
const COPYABLE: &[&str] = &["h264", "hevc", "mpeg2video", "mpeg1video"];

/// How the source becomes segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Cut at the source's own keyframes, video stream-copied.
    Copy,
    /// Re-encode a mezzanine with keyframes forced at the cut points.
    Mezzanine,
}

/// Where to cut.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentPlan {
    /// Copy or mezzanine.
    pub mode: Mode,
    /// Presentation time of each segment's first frame, in seconds from the container start.
    pub starts: Vec<f64>,
    /// Where the last segment ends.
    pub end: f64,
    /// For each cut (segment 1 onward): a time between the last frame before the cut and the
    /// first frame after it, given to ffmpeg so rounding can never move a cut by a frame.
    pub thresholds: Vec<f64>,
    /// For copy mode, the decode-order index of each cut's keyframe (segment 1 onward).
    pub cut_frames: Vec<usize>,
}

impl SegmentPlan {
    /// Number of segments.
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    /// Whether the plan has no segment (never true for a plan from [`plan`]).
    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// Duration of each segment in seconds.
    pub fn durations(&self) -> Vec<f64> {
        let ends = self.starts.iter().skip(1).copied().chain(std::iter::once(self.end));
        self.starts.iter().zip(ends).map(|(s, e)| e - s).collect()
    }
}

/// Plans the segments of `video` for a target segment length of `seconds`.
pub fn plan(video: &VideoStream, seconds: f64) -> SegmentPlan {
    copy_plan(video, seconds).unwrap_or_else(|| mezzanine_plan(video, seconds))
}

/// Cuts at existing keyframes when every segment can stay within [S/2, 3S/2] and every cut is
/// clean (no frame crosses it in either direction between decode and presentation order).
///
/// Nothing is copied that a copy would show differently, since MPEG-TS segments carry neither
/// a display matrix nor an edit list nor missing times: a picture the container shows turned,
/// frames it hides (a copy would show them), or a stream whose container left some presentation
/// times out (a copy passes those packets on untimed, and MPEG-TS cannot start a segment on
/// one). The mezzanine's decoder turns the picture upright, drops the hidden frames and restores
/// the times.
fn copy_plan(video: &VideoStream, seconds: f64) -> Option<SegmentPlan> {
    if !COPYABLE.contains(&video.codec.as_str())
        || video.rotation != 0
        || video.hidden_frames > 0
        || video.packets.iter().any(|p| p.pts_inferred)
    {
        return None;
    }
    let packets = &video.packets;
    let first = packets.first()?;
    let frame_times = video.frame_times();
    if !first.key || frame_times.first() != Some(&first.pts) {
        return None;
    }
    let end = video.end_time();
    let clean = clean_cuts(video);
    // Candidate cuts in presentation order: (pts, decode index).
    let mut candidates: Vec<(f64, usize)> = packets
        .iter()
        .enumerate()
        .filter(|(i, p)| p.key && clean[*i])
        .map(|(i, p)| (p.pts, i))
        .collect();
    candidates.sort_by(|a, b| a.0.total_cmp(&b.0));

    let mut starts = vec![first.pts];
    let mut cut_frames = Vec::new();
    let mut start = first.pts;
    loop {
        if end - start <= seconds * 1.5 {
            break;
        }
        let window = (start + seconds * 0.5)..=(start + seconds * 1.5);
        let target = start + seconds;
        let best = candidates
            .iter()
            .filter(|(t, _)| window.contains(t))
            .min_by(|a, b| (a.0 - target).abs().total_cmp(&(b.0 - target).abs()))?;
        starts.push(best.0);
        cut_frames.push(best.1);
        start = best.0;
    }
    merge_short_tail(&mut starts, &mut cut_frames, end, seconds);
    let thresholds = thresholds(&frame_times, &starts);
    Some(SegmentPlan { mode: Mode::Copy, starts, end, thresholds, cut_frames })
}

/// For each packet in decode order: whether cutting right before it leaves every earlier packet
/// presented before it and every later one at or after it.
fn clean_cuts(video: &VideoStream) -> Vec<bool> {
    let packets = &video.packets;
    let mut max_before = f64::NEG_INFINITY;
    let mut prefix_max = Vec::with_capacity(packets.len());
    for p in packets {
        prefix_max.push(max_before);
        max_before = max_before.max(p.pts);
    }
    let mut min_after = f64::INFINITY;
    let mut clean = vec![false; packets.len()];
    for (i, p) in packets.iter().enumerate().rev() {
        min_after = min_after.min(p.pts);
        clean[i] = prefix_max[i] < p.pts && min_after >= p.pts;
    }
    clean
}

/// Cuts on an S-second grid, each at the first frame at or after its grid time, never leaving a
/// segment shorter than S/2 (sparse or irregular frame timing can otherwise make tiny ones).
fn mezzanine_plan(video: &VideoStream, seconds: f64) -> SegmentPlan {
    let frame_times = video.frame_times();
    let end = video.end_time();
    let first = frame_times.first().copied().unwrap_or(0.0);
    let mut starts = vec![first];
    let tolerance = video.frame_interval() * 1e-3;
    let mut k = 1u64;
    loop {
        let grid = first + k as f64 * seconds;
        if grid >= end {
            break;
        }
        k += 1;
        let Some(&cut) = frame_times.iter().find(|&&t| t >= grid - tolerance) else { break };
        let last = *starts.last().unwrap_or(&first);
        if cut - last >= seconds * 0.5 && cut > last {
            starts.push(cut);
        }
    }
    merge_short_tail(&mut starts, &mut Vec::new(), end, seconds);
    let thresholds = thresholds(&frame_times, &starts);
    SegmentPlan { mode: Mode::Mezzanine, starts, end, thresholds, cut_frames: Vec::new() }
}

/// Folds a last segment shorter than S/4 into the one before it.
fn merge_short_tail(starts: &mut Vec<f64>, cut_frames: &mut Vec<usize>, end: f64, seconds: f64) {
    if starts.len() > 1 && starts.last().is_some_and(|&s| end - s < seconds * 0.25) {
        starts.pop();
        cut_frames.pop();
    }
}

/// Midpoints between each cut frame and the frame presented just before it.
fn thresholds(frame_times: &[f64], starts: &[f64]) -> Vec<f64> {
    starts
        .iter()
        .skip(1)
        .map(|&cut| {
            let i = frame_times.partition_point(|&t| t < cut);
            let before = if i > 0 { frame_times[i - 1] } else { cut };
            (before + cut) / 2.0
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::probe::{Packet, Rational};

    fn stream(codec: &str, fps: u64, packets: Vec<Packet>) -> VideoStream {
        VideoStream {
            index: 0,
            codec: codec.into(),
            profile: None,
            width: 640,
            height: 360,
            sample_aspect_ratio: Rational { num: 1, den: 1 },
            rotation: 0,
            pixel_format: Some("yuv420p".into()),
            frame_rate: Rational { num: fps, den: 1 },
            avg_frame_rate: Some(Rational { num: fps, den: 1 }),
            frame_count: packets.len() as u64,
            hidden_frames: 0,
            keyframe_times: packets.iter().filter(|p| p.key).map(|p| p.pts).collect(),
            packets,
        }
    }

    /// `n` frames at `fps` without B-frames, keyframes at the given frame numbers.
    fn frames(n: usize, fps: u64, keys: &[usize]) -> Vec<Packet> {
        (0..n)
            .map(|i| Packet {
                pts: i as f64 / fps as f64,
                duration: Some(1.0 / fps as f64),
                key: keys.contains(&i),
                pts_inferred: false,
            })
            .collect()
    }

    fn check(video: &VideoStream, mode: Mode, expect_starts: &[f64]) {
        let plan = plan(video, 2.0);
        assert_eq!(plan.mode, mode);
        let starts: Vec<f64> = plan.starts.iter().map(|s| (s * 1000.0).round() / 1000.0).collect();
        assert_eq!(starts, expect_starts);
    }

    #[test]
    fn regular_two_second_gops_are_copied() {
        let video = stream("h264", 25, frames(250, 25, &[0, 50, 100, 150, 200]));
        check(&video, Mode::Copy, &[0.0, 2.0, 4.0, 6.0, 8.0]);
        assert_eq!(plan(&video, 2.0).cut_frames, vec![50, 100, 150, 200]);
    }

    #[test]
    fn irregular_but_close_gops_are_copied() {
        // bikes.mp4: x264 put keyframes at frames 0, 31, 77, 138, 188 and 243 of 250.
        let video = stream("h264", 25, frames(250, 25, &[0, 31, 77, 138, 188, 243]));
        check(&video, Mode::Copy, &[0.0, 1.24, 3.08, 5.52, 7.52]);
    }

    #[test]
    fn one_keyframe_needs_a_mezzanine() {
        let video = stream("h264", 25, frames(132, 25, &[0]));
        check(&video, Mode::Mezzanine, &[0.0, 2.0, 4.0]);
    }

    #[test]
    fn codecs_that_cannot_be_copied_need_a_mezzanine() {
        let video = stream("msmpeg4v3", 10, frames(100, 10, &[0, 20, 40, 60, 80]));
        check(&video, Mode::Mezzanine, &[0.0, 2.0, 4.0, 6.0, 8.0]);
    }

    #[test]
    fn an_open_gop_cut_is_not_clean() {
        // Decode index 50 is a keyframe presented at 2.04 s; index 51, decoded after it, is a
        // leading frame presented before it at 2.00 s. Cutting there would orphan that frame.
        let mut packets = frames(250, 25, &[0, 50, 100, 150, 200]);
        let (a, b) = (packets[50].pts, packets[51].pts);
        packets[50].pts = b;
        packets[51].pts = a;
        let video = stream("h264", 25, packets);
        let clean = clean_cuts(&video);
        assert!(!clean[50]);
        assert!(clean[100]);
        let plan = plan(&video, 2.0);
        assert!(!plan.cut_frames.contains(&50), "{plan:?}");
    }

    #[test]
    fn what_a_copy_would_show_differently_needs_a_mezzanine() {
        let copied = stream("h264", 25, frames(250, 25, &[0, 50, 100, 150, 200]));
        assert_eq!(plan(&copied, 2.0).mode, Mode::Copy);
        let mut untimed = copied.clone();
        untimed.packets[7].pts_inferred = true;
        let mut turned = copied.clone();
        turned.rotation = 90;
        let mut hiding = copied.clone();
        hiding.hidden_frames = 3;
        for video in [untimed, turned, hiding] {
            check(&video, Mode::Mezzanine, &[0.0, 2.0, 4.0, 6.0, 8.0]);
        }
    }

    #[test]
    fn sparse_frames_never_make_tiny_segments() {
        // tree.avi style: frames every 0.4 s with a 3 s hole.
        let times = [0.0, 0.4, 0.8, 1.2, 1.6, 2.0, 2.4, 5.4, 5.8, 6.2, 6.6, 7.0];
        let packets = times
            .iter()
            .map(|&t| Packet { pts: t, duration: Some(0.0667), key: t == 0.0, pts_inferred: false })
            .collect();
        let video = stream("cinepak", 15, packets);
        check(&video, Mode::Mezzanine, &[0.0, 2.0, 5.4]);
    }

    #[test]
    fn a_short_tail_is_merged() {
        let video = stream("h264", 25, frames(252, 25, &[0]));
        let plan = plan(&video, 2.0);
        assert_eq!(plan.len(), 5);
        assert!((plan.durations()[4] - 2.08).abs() < 1e-9);
    }

    proptest! {
        #[test]
        fn plans_cover_the_stream_without_overlap(
            n in 1usize..600,
            fps in prop::sample::select(vec![10u64, 24, 25, 30, 60]),
            gop in 1usize..200,
            seconds in prop::sample::select(vec![1.0f64, 2.0, 4.0]),
        ) {
            let keys: Vec<usize> = (0..n).step_by(gop).collect();
            let video = stream("h264", fps, frames(n, fps, &keys));
            let plan = plan(&video, seconds);
            let times = video.frame_times();
            prop_assert!(!plan.is_empty());
            prop_assert_eq!(plan.starts[0], times[0]);
            prop_assert_eq!(plan.thresholds.len(), plan.len() - 1);
            for w in plan.starts.windows(2) {
                prop_assert!(w[1] > w[0]);
            }
            for (cut, threshold) in plan.starts.iter().skip(1).zip(&plan.thresholds) {
                prop_assert!(times.contains(cut));
                prop_assert!(threshold < cut && *cut - threshold < 1.0 / fps as f64);
            }
            let durations = plan.durations();
            let total: f64 = durations.iter().sum();
            prop_assert!((total - (plan.end - plan.starts[0])).abs() < 1e-9);
            for d in &durations[..durations.len() - 1] {
                prop_assert!(*d >= seconds * 0.5 - 1e-9 && *d <= seconds * 1.5 + 1e-9, "{durations:?}");
            }
            if plan.mode == Mode::Copy {
                prop_assert_eq!(plan.cut_frames.len(), plan.len() - 1);
                for &i in &plan.cut_frames {
                    prop_assert!(video.packets[i].key);
                }
            }
        }
    }
}
