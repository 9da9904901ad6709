//! Hardware acceleration: what the installed ffmpeg was built with, and what works here.
//!
//! Debian's ffmpeg is built with CUDA (NVDEC), VAAPI and QSV support and with NVENC, VAAPI and
//! QSV encoders, but a build flag says nothing about the machine: [`detect`] opens each device
//! and runs a one-frame encode with each hardware encoder, so only what really works is reported
//! usable. Transcoding uses a usable hardware *decoder* when asked ([`HwAccel`]); frames come back
//! to system memory and are scaled and encoded by libx264, which keeps renditions identical in
//! structure to CPU ones (and lets the deterministic profile stay bit-exact).

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::ffmpeg::{Ffmpeg, failure_detail};
use crate::{Error, Result};

/// A hardware decoding API ffmpeg can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HwAccel {
    /// NVIDIA NVDEC through CUDA.
    Cuda,
    /// VA-API (Intel, AMD).
    Vaapi,
    /// Intel Quick Sync Video.
    Qsv,
}

impl HwAccel {
    const ALL: [HwAccel; 3] = [HwAccel::Cuda, HwAccel::Vaapi, HwAccel::Qsv];

    /// ffmpeg's name for it.
    pub fn name(self) -> &'static str {
        match self {
            HwAccel::Cuda => "cuda",
            HwAccel::Vaapi => "vaapi",
            HwAccel::Qsv => "qsv",
        }
    }

    /// The ffmpeg input options that decode with this API.
    pub(crate) fn decode_args(self) -> [&'static str; 2] {
        ["-hwaccel", self.name()]
    }

    fn device_args(self) -> Vec<String> {
        match self {
            HwAccel::Cuda => vec!["-init_hw_device".into(), "cuda=hw".into()],
            HwAccel::Vaapi => vec!["-init_hw_device".into(), "vaapi=hw".into()],
            HwAccel::Qsv => vec!["-init_hw_device".into(), "qsv=hw".into()],
        }
    }

    /// Hardware H.264 encoders that go with this API, and the filters that feed them.
    fn encoder(self) -> (&'static str, &'static str) {
        match self {
            HwAccel::Cuda => ("h264_nvenc", "format=yuv420p"),
            HwAccel::Vaapi => ("h264_vaapi", "format=nv12,hwupload"),
            HwAccel::Qsv => ("h264_qsv", "format=nv12,hwupload=extra_hw_frames=16"),
        }
    }
}

impl fmt::Display for HwAccel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for HwAccel {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        HwAccel::ALL.into_iter().find(|a| a.name() == s).ok_or_else(|| Error::BadSetting {
            setting: "hwaccel",
            value: s.to_owned(),
            expected: "one of none, auto, cuda, vaapi, qsv",
        })
    }
}

/// Which decoder to use: the CPU, a named API, or the first usable one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HwChoice {
    /// Decode on the CPU.
    #[default]
    None,
    /// The first usable hardware decoder, the CPU when there is none.
    Auto,
    /// This API; an error when it is not usable here.
    Require(HwAccel),
}

impl FromStr for HwChoice {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "none" | "cpu" => Ok(HwChoice::None),
            "auto" => Ok(HwChoice::Auto),
            other => other.parse().map(HwChoice::Require),
        }
    }
}

/// What one hardware API can do on this machine.
#[derive(Debug, Clone, Serialize)]
pub struct AccelStatus {
    /// The API.
    pub accel: HwAccel,
    /// The installed ffmpeg was built with it.
    pub compiled: bool,
    /// A device opened.
    pub device: bool,
    /// Why the device did not open, when it did not.
    pub device_error: Option<String>,
    /// The matching H.264 encoder, e.g. `h264_nvenc`.
    pub encoder: &'static str,
    /// The encoder is in the build.
    pub encoder_compiled: bool,
    /// A one-frame encode succeeded.
    pub encoder_works: bool,
}

/// Hardware capabilities of this machine as seen by the installed ffmpeg.
#[derive(Debug, Clone, Serialize)]
pub struct Capabilities {
    /// One entry per API.
    pub accels: Vec<AccelStatus>,
}

impl Capabilities {
    /// APIs whose device opened, in preference order.
    pub fn usable_decoders(&self) -> impl Iterator<Item = HwAccel> + '_ {
        self.accels.iter().filter(|a| a.device).map(|a| a.accel)
    }

    /// Resolves a [`HwChoice`] to the decoder to use (`None` = CPU).
    pub fn resolve(&self, choice: HwChoice) -> Result<Option<HwAccel>> {
        match choice {
            HwChoice::None => Ok(None),
            HwChoice::Auto => Ok(self.usable_decoders().next()),
            HwChoice::Require(accel) => {
                let status = self.accels.iter().find(|a| a.accel == accel);
                match status {
                    Some(s) if s.device => Ok(Some(accel)),
                    Some(s) if !s.compiled => Err(Error::HardwareUnavailable {
                        accel: accel.to_string(),
                        detail: "the installed ffmpeg was built without it".into(),
                    }),
                    s => Err(Error::HardwareUnavailable {
                        accel: accel.to_string(),
                        detail: s
                            .and_then(|s| s.device_error.clone())
                            .unwrap_or_else(|| "no device".into()),
                    }),
                }
            }
        }
    }
}

/// Detects hardware decoders and encoders by opening devices and encoding one frame.
pub fn detect(ff: &Ffmpeg) -> Result<Capabilities> {
    let hwaccels = list(ff, "-hwaccels")?;
    let encoders = list(ff, "-encoders")?;
    let accels = HwAccel::ALL
        .into_iter()
        .map(|accel| {
            let compiled = hwaccels.iter().any(|l| l.trim() == accel.name());
            let (device, device_error) = if compiled {
                match try_ffmpeg(ff, accel.device_args(), &[]) {
                    Ok(()) => (true, None),
                    Err(e) => (false, Some(e)),
                }
            } else {
                (false, None)
            };
            let (encoder, upload) = accel.encoder();
            let encoder_compiled =
                encoders.iter().any(|l| l.split_whitespace().nth(1) == Some(encoder));
            let encoder_works = encoder_compiled
                && device
                && try_ffmpeg(
                    ff,
                    accel.device_args(),
                    &["-filter_hw_device", "hw", "-vf", upload, "-c:v", encoder],
                )
                .is_ok();
            AccelStatus {
                accel,
                compiled,
                device,
                device_error,
                encoder,
                encoder_compiled,
                encoder_works,
            }
        })
        .collect();
    Ok(Capabilities { accels })
}

fn list(ff: &Ffmpeg, flag: &str) -> Result<Vec<String>> {
    let out = crate::ffmpeg::run(ff.ffmpeg().arg(flag), || format!("running ffmpeg {flag}"))?;
    Ok(String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect())
}

/// Runs ffmpeg on one generated frame with `pre` before the input and `post` before the null
/// output; the error is ffmpeg's last log line.
fn try_ffmpeg(ff: &Ffmpeg, pre: Vec<String>, post: &[&str]) -> Result<(), String> {
    let out = ff
        .ffmpeg()
        .args(pre)
        .args(["-f", "lavfi", "-i", "testsrc2=s=256x144:d=0.04"])
        .args(post)
        .args(["-f", "null", "-"])
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        return Ok(());
    }
    // The first line says what went wrong ("Cannot load libcuda.so.1"); the last only that
    // option parsing failed.
    let text = String::from_utf8_lossy(&out.stderr);
    let first = text.lines().map(str::trim).find(|l| !l.is_empty());
    Err(match first {
        Some(line) => line.split_once("] ").map_or(line, |(_, rest)| rest).to_owned(),
        None => failure_detail(&out.stderr, out.status),
    })
}
