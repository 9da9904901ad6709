//! Transcoding one source segment into its renditions.
//!
//! One ffmpeg process per source segment decodes it once, scales it to every rendition asked
//! for and encodes each with libx264 at a fixed thread count; audio (already AAC in the source
//! segment) is stream-copied. Timestamps are kept (`-copyts`, `mpegts_copyts`), so segments made
//! by different processes — or different peers — line up on one timeline.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::ffmpeg::{Ffmpeg, run};
use crate::hw::HwAccel;
use crate::rendition::Rendition;
use crate::{Error, Result};

/// x264 presets, fastest first.
pub const PRESETS: &[&str] = &[
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
];

/// How renditions are encoded. Recorded in `manifest.json` so anyone can re-encode a segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncodeSettings {
    /// x264 preset.
    pub preset: String,
    /// x264 constant rate factor (quality target), capped by each rendition's bit rate.
    pub crf: u8,
    /// Encoder threads per ffmpeg process; fixed, so output does not depend on the machine.
    pub threads: u32,
    /// The deterministic profile: x264 `cpu-independent` and a bit-exact scaler, so the same
    /// segment re-encoded on any x86-64 machine with the same ffmpeg and x264 gives the same bytes.
    pub deterministic: bool,
}

impl Default for EncodeSettings {
    fn default() -> Self {
        Self { preset: "medium".into(), crf: 23, threads: 1, deterministic: false }
    }
}

impl EncodeSettings {
    /// Checks the values are ones x264 accepts.
    pub fn validate(&self) -> Result<()> {
        if !PRESETS.contains(&self.preset.as_str()) {
            return Err(Error::BadSetting {
                setting: "preset",
                value: self.preset.clone(),
                expected: "an x264 preset: ultrafast, superfast, veryfast, faster, fast, medium, slow, slower or veryslow",
            });
        }
        if self.crf > 51 {
            return Err(Error::BadSetting {
                setting: "crf",
                value: self.crf.to_string(),
                expected: "0 to 51",
            });
        }
        if !(1..=64).contains(&self.threads) {
            return Err(Error::BadSetting {
                setting: "threads",
                value: self.threads.to_string(),
                expected: "1 to 64",
            });
        }
        Ok(())
    }

    /// swscale flags for this profile.
    pub(crate) fn scale_flags(&self) -> &'static str {
        if self.deterministic { "bicubic+accurate_rnd+full_chroma_int+bitexact" } else { "bicubic" }
    }

    /// The libx264 options for one rendition (everything after `-c:v libx264`).
    pub fn x264_args(&self, rendition: &Rendition) -> Vec<String> {
        let extra = if self.deterministic { ":cpu-independent=1:sliced-threads=0" } else { "" };
        let maxrate = rendition.max_bitrate;
        let mut args: Vec<String> = [
            "-preset",
            &self.preset,
            "-crf",
            &self.crf.to_string(),
            "-maxrate",
            &maxrate.to_string(),
            "-bufsize",
            &(2 * maxrate).to_string(),
            "-profile:v",
            "high",
            "-threads",
            &self.threads.to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(keyframes_where_forced(extra));
        if self.deterministic {
            args.extend(["-flags:v", "+bitexact"].map(String::from));
        }
        args
    }
}

/// libx264 options that make keyframes appear only where ffmpeg forces them (the first frame,
/// `-force_key_frames`), each an IDR that closes its GOP, in 8-bit 4:2:0. `x264_params` is
/// appended to x264's own option string (`:name=value...`).
pub(crate) fn keyframes_where_forced(x264_params: &str) -> Vec<String> {
    [
        "-pix_fmt",
        "yuv420p",
        "-g",
        "100000",
        "-forced-idr",
        "1",
        "-x264-params",
        &format!("scenecut=0:open-gop=0{x264_params}"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// One transcode task: a source segment and the renditions to make from it.
#[derive(Debug, Clone)]
pub struct Task<'a> {
    /// The source segment (MPEG-TS, video + optional AAC audio).
    pub source: &'a Path,
    /// Renditions and the file each is written to.
    pub outputs: Vec<(&'a Rendition, PathBuf)>,
}

/// Runs one task to completion.
pub fn transcode(
    ff: &Ffmpeg,
    task: &Task<'_>,
    settings: &EncodeSettings,
    hwaccel: Option<HwAccel>,
) -> Result<()> {
    let args = transcode_args(task, settings, hwaccel);
    run(ff.ffmpeg().args(args), || format!("transcoding {}", task.source.display()))?;
    Ok(())
}

fn transcode_args(
    task: &Task<'_>,
    settings: &EncodeSettings,
    hwaccel: Option<HwAccel>,
) -> Vec<OsString> {
    let mut args: Vec<OsString> = Vec::new();
    let mut push = |items: &[&str]| args.extend(items.iter().map(OsString::from));
    if let Some(accel) = hwaccel {
        push(&accel.decode_args());
    }
    push(&["-threads", "1", "-copyts", "-i"]);
    args.push(task.source.into());

    let flags = settings.scale_flags();
    let n = task.outputs.len();
    let mut graph = format!("sws_flags={flags};[0:v]");
    if n > 1 {
        graph.push_str(&format!("split={n}"));
        for i in 0..n {
            graph.push_str(&format!("[s{i}]"));
        }
        graph.push(';');
    }
    for (i, (rendition, _)) in task.outputs.iter().enumerate() {
        if n > 1 {
            graph.push_str(&format!("[s{i}]"));
        }
        graph.push_str(&format!(
            "scale={}:{}:flags={flags},setsar=1[o{i}]",
            rendition.width, rendition.height
        ));
        if i + 1 < n {
            graph.push(';');
        }
    }
    let mut push = |items: &[&str]| args.extend(items.iter().map(OsString::from));
    push(&["-filter_threads", "1", "-filter_complex_threads", "1", "-filter_complex", &graph]);
    for (i, (rendition, path)) in task.outputs.iter().enumerate() {
        args.extend(["-map".into(), format!("[o{i}]").into(), "-map".into(), "0:a?".into()]);
        args.extend(["-c:v", "libx264"].map(OsString::from));
        args.extend(settings.x264_args(rendition).into_iter().map(OsString::from));
        args.extend(
            [
                "-fps_mode",
                "passthrough",
                "-enc_time_base",
                "-1",
                "-c:a",
                "copy",
                "-map_metadata",
                "-1",
                "-fflags",
                "+bitexact",
                "-f",
                "mpegts",
                "-mpegts_copyts",
                "1",
            ]
            .map(OsString::from),
        );
        args.push(path.into());
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_validated() {
        assert!(EncodeSettings::default().validate().is_ok());
        let bad = |s: EncodeSettings| matches!(s.validate(), Err(Error::BadSetting { .. }));
        assert!(bad(EncodeSettings { preset: "fastest".into(), ..Default::default() }));
        assert!(bad(EncodeSettings { crf: 52, ..Default::default() }));
        assert!(bad(EncodeSettings { threads: 0, ..Default::default() }));
    }

    #[test]
    fn one_process_scales_to_every_rendition() {
        let r = |h: u32| Rendition {
            name: format!("{h}p"),
            width: h * 16 / 9,
            height: h,
            max_bitrate: 1_000_000,
        };
        let (a, b) = (r(720), r(360));
        let task = Task {
            source: Path::new("src.ts"),
            outputs: vec![(&a, "a.ts".into()), (&b, "b.ts".into())],
        };
        let args: Vec<String> = transcode_args(&task, &EncodeSettings::default(), None)
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        let graph = &args[args.iter().position(|a| a == "-filter_complex").unwrap() + 1];
        assert_eq!(
            graph,
            "sws_flags=bicubic;[0:v]split=2[s0][s1];[s0]scale=1280:720:flags=bicubic,setsar=1[o0];[s1]scale=640:360:flags=bicubic,setsar=1[o1]"
        );
        assert_eq!(args.iter().filter(|a| *a == "libx264").count(), 2);
        assert_eq!(args.last().unwrap(), "b.ts");
    }
}
