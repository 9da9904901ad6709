//! The segmenter: one ffmpeg process that cuts the source into MPEG-TS source segments.
//!
//! Video is stream-copied ([`Mode::Copy`]) or re-encoded as a mezzanine with keyframes forced
//! at the planned cuts ([`Mode::Mezzanine`]). Audio is encoded once for the whole source to
//! stereo AAC, with silence before it when it starts after the video and after it to the end of
//! the video, so every segment carries audio and renditions can copy it: per-segment audio
//! encoding would put encoder priming gaps at every segment boundary. ffmpeg's segment muxer
//! reports each finished segment on stdout, so transcoding starts while later segments are
//! still being cut.

use std::ffi::OsString;
use std::fs::File;
use std::io::{BufRead, BufReader, Lines};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Stdio};

use serde::{Deserialize, Serialize};

use crate::ffmpeg::{Ffmpeg, failure_detail};
use crate::hw::HwAccel;
use crate::plan::{Mode, SegmentPlan};
use crate::probe::MediaInfo;
use crate::transcode::keyframes_where_forced;
use crate::{Error, Result};

/// How the mezzanine is encoded when the source's keyframes do not allow a stream copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MezzanineSettings {
    /// x264 preset. `ultrafast` by default: the mezzanine is an extra encode on top of the
    /// ladder, and its cost is the pipeline's overhead against a single ffmpeg.
    pub preset: String,
    /// x264 constant rate factor: low, so renditions lose next to nothing to the extra generation.
    pub crf: u8,
}

impl Default for MezzanineSettings {
    fn default() -> Self {
        Self { preset: "ultrafast".into(), crf: 16 }
    }
}

/// Audio bit rate of the AAC track every segment carries.
pub const AUDIO_BITRATE: u32 = 128_000;

/// A finished source segment.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceSegment {
    /// Position in the source, from 0.
    pub index: usize,
    /// The MPEG-TS file.
    pub path: PathBuf,
    /// Start time as the segment muxer saw it (seconds; shifted by a constant offset).
    pub start: f64,
}

/// A running segmenter.
#[derive(Debug)]
pub struct Segmenter {
    child: Child,
    what: String,
    lines: Lines<BufReader<ChildStdout>>,
    dir: PathBuf,
    log: PathBuf,
    next: usize,
    planned: usize,
}

impl Segmenter {
    /// Starts cutting `info`'s file into `dir` according to `plan`.
    pub fn spawn(
        ff: &Ffmpeg,
        info: &MediaInfo,
        plan: &SegmentPlan,
        dir: &Path,
        mezzanine: &MezzanineSettings,
        hwaccel: Option<HwAccel>,
    ) -> Result<Self> {
        let log = dir.join("segmenter.log");
        let log_file = File::create(&log).map_err(|e| Error::io(&log, "cannot create", e))?;
        let mut child = ff
            .ffmpeg()
            .args(segmenter_args(info, plan, dir, mezzanine, hwaccel))
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .map_err(|e| Error::Ffmpeg {
                what: "starting the segmenter".into(),
                detail: e.to_string(),
            })?;
        let Some(stdout) = child.stdout.take() else {
            return Err(Error::Ffmpeg {
                what: "starting the segmenter".into(),
                detail: "no stdout".into(),
            });
        };
        Ok(Self {
            child,
            what: format!("segmenting {}", info.path.display()),
            lines: BufReader::new(stdout).lines(),
            dir: dir.to_owned(),
            log,
            next: 0,
            planned: plan.len(),
        })
    }

    /// Waits for the next finished segment; `None` once the segmenter has closed its output.
    pub fn next_segment(&mut self) -> Option<Result<SourceSegment>> {
        let line = match self.lines.next()? {
            Ok(line) => line,
            Err(e) => return Some(Err(Error::io(&self.dir, "reading the segment list", e))),
        };
        Some(self.parse_entry(&line))
    }

    fn parse_entry(&mut self, line: &str) -> Result<SourceSegment> {
        let bad = || Error::Ffmpeg {
            what: self.what.clone(),
            detail: format!("unexpected segment list entry {line:?}"),
        };
        let mut fields = line.split(',');
        let name = fields.next().filter(|n| !n.is_empty()).ok_or_else(bad)?;
        let start = fields.next().and_then(|s| s.parse::<f64>().ok()).ok_or_else(bad)?;
        let index = self.next;
        if index >= self.planned {
            return Err(Error::Ffmpeg {
                what: self.what.clone(),
                detail: format!("more segments than the {} planned", self.planned),
            });
        }
        self.next += 1;
        Ok(SourceSegment { index, path: self.dir.join(name), start })
    }

    /// Stops the segmenter early.
    pub fn kill(&mut self) {
        // It may have exited already; either way it is gone afterwards.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the segmenter to exit and checks that it produced every planned segment.
    pub fn finish(mut self) -> Result<()> {
        let status = self
            .child
            .wait()
            .map_err(|e| Error::Ffmpeg { what: self.what.clone(), detail: e.to_string() })?;
        if !status.success() {
            let stderr = std::fs::read(&self.log).unwrap_or_default();
            return Err(Error::Ffmpeg { what: self.what, detail: failure_detail(&stderr, status) });
        }
        if self.next != self.planned {
            return Err(Error::Ffmpeg {
                what: self.what,
                detail: format!("{} segments were cut, {} planned", self.next, self.planned),
            });
        }
        Ok(())
    }
}

/// The bitstream filters of a stream copy. Every segment must decode from its own bytes, so
/// each keyframe gets the stream's parameter sets (SPS and PPS, or a sequence header) in front
/// of it: an MP4 keeps H.264's outside the frames, and the conversion the MPEG-TS muxer adds on
/// its own puts them back before IDR pictures only, not before the I-picture of an open GOP,
/// which then starts a segment that cannot be decoded.
fn copy_filters(codec: &str) -> &'static str {
    match codec {
        "h264" => "h264_mp4toannexb,dump_extra=freq=keyframe",
        "hevc" => "hevc_mp4toannexb,dump_extra=freq=keyframe",
        _ => "dump_extra=freq=keyframe",
    }
}

fn segmenter_args(
    info: &MediaInfo,
    plan: &SegmentPlan,
    dir: &Path,
    mezzanine: &MezzanineSettings,
    hwaccel: Option<HwAccel>,
) -> Vec<OsString> {
    let mut args: Vec<String> = Vec::new();
    if let (Some(accel), Mode::Mezzanine) = (hwaccel, plan.mode) {
        args.extend(accel.decode_args().map(String::from));
    }
    args.push("-i".into());
    let mut args: Vec<OsString> = args.into_iter().map(OsString::from).collect();
    args.push(info.path.as_os_str().to_owned());

    let list = |v: &mut dyn Iterator<Item = String>| v.collect::<Vec<_>>().join(",");
    let times = list(&mut plan.thresholds.iter().map(|t| format!("{t:.6}")));
    let mut rest: Vec<String> = vec!["-map".into(), format!("0:{}", info.video.index)];
    match plan.mode {
        Mode::Copy => {
            let filters = copy_filters(&info.video.codec);
            rest.extend(["-c:v", "copy", "-bsf:v", filters].map(String::from));
        }
        Mode::Mezzanine => {
            let crf = mezzanine.crf.to_string();
            rest.extend(
                ["-c:v", "libx264", "-preset", &mezzanine.preset, "-crf", &crf].map(String::from),
            );
            rest.extend(keyframes_where_forced(""));
            if info.video.width % 2 == 1 || info.video.height % 2 == 1 {
                // x264 encodes 4:2:0 in even sizes only: the mezzanine is a pixel smaller (the
                // whole picture, as the renditions scaled from it are planned).
                rest.extend(["-vf", "scale=trunc(iw/2)*2:trunc(ih/2)*2"].map(String::from));
            }
            rest.extend(["-fps_mode", "passthrough", "-enc_time_base", "-1"].map(String::from));
            if !times.is_empty() {
                rest.extend(["-force_key_frames".into(), times.clone()]);
            }
        }
    }
    if let Some(audio) = &info.audio {
        rest.extend([
            "-map".into(),
            format!("0:{}", audio.index),
            "-af".into(),
            "aresample=async=1:first_pts=0,apad".into(),
            "-shortest".into(),
            "-c:a".into(),
            "aac".into(),
            "-b:a".into(),
            AUDIO_BITRATE.to_string(),
            "-ac".into(),
            "2".into(),
            "-ar".into(),
            "48000".into(),
        ]);
    }
    rest.extend(
        ["-map_metadata", "-1", "-f", "segment", "-segment_format", "mpegts"].map(String::from),
    );
    match (plan.mode, plan.len()) {
        (_, 1) => rest.extend(["-segment_time".into(), "1000000000".into()]),
        (Mode::Copy, _) => rest.extend([
            "-segment_frames".into(),
            list(&mut plan.cut_frames.iter().map(|f| f.to_string())),
        ]),
        (Mode::Mezzanine, _) => rest.extend(["-segment_times".into(), times]),
    }
    rest.extend(["-segment_list", "pipe:1", "-segment_list_type", "csv"].map(String::from));
    args.extend(rest.into_iter().map(OsString::from));
    args.push(dir.join("src_%05d.ts").into_os_string());
    args
}
