//! Kinema's media engine: probe, segment, transcode ladders and package HLS, driving Debian's
//! `ffmpeg` and `ffprobe` as subprocesses.
//!
//! ```no_run
//! use kinema_media::{Ffmpeg, ladder};
//!
//! # fn main() -> kinema_media::Result<()> {
//! let ff = Ffmpeg::locate()?;
//! let info = kinema_media::probe(&ff, "clip.mp4".as_ref())?;
//! println!("{}x{} at {} fps", info.video.width, info.video.height, info.video.frame_rate);
//!
//! let manifest = ladder::run(&ff, "clip.mp4".as_ref(), "out".as_ref(), &ladder::Config::default(), &mut |p| {
//!     eprintln!("{p:?}");
//! })?;
//! for r in &manifest.renditions {
//!     println!("{}: {} segments", r.rendition.name, r.segments.len());
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Concepts
//!
//! - **Segments** are ~2 s, start on a keyframe and decode on their own; they are the unit of
//!   transcoding work, storage, payment and delivery. [`plan`] decides where to cut: at the
//!   source's own keyframes when they allow it (stream copy), otherwise on a 2 s grid in a
//!   mezzanine re-encode with forced keyframes ([`segment`]).
//! - **Renditions** ([`rendition`]) are the ladder's rungs (720p, 480p, 360p, 240p by default),
//!   never above the source, even-sized, in square pixels.
//! - **Transcoding** ([`transcode`]) encodes one source segment into every rendition in one
//!   ffmpeg process with a fixed thread count; segments line up across renditions because every
//!   rendition segment starts with the one keyframe of its segment. The deterministic profile
//!   makes the bytes reproducible on any machine with the same ffmpeg.
//! - **Packaging** ([`hls`]) writes HLS playlists over blake3-named MPEG-TS segments and a
//!   `manifest.json` with every segment's hash.
//! - **Hardware** ([`hw`]) is detected at run time by opening devices, never assumed.
//! - **Verification** ([`verify`]) decides whether a rendition is a good-faith transcode of its
//!   source: coarse checks, then thresholds on features of up to 10 sampled frame pairs
//!   ([`features`]) — PSNR and SSIM that match ffmpeg's filters, MS-SSIM, detail kept,
//!   block-wise error maps, temporal alignment, orientation — over decoded planes ([`decode`], [`frame`]) and one fixed
//!   reference scaler ([`scale`]), all pure Rust on plain planes. [`eval`] calibrates and
//!   measures it on a corpus.
//! - **Watermarking** ([`watermark`]) carries a 64-bit content ID invisibly in the luma of every
//!   frame, blind to read from any excerpt, any size, after re-encoding; its math is pure Rust on
//!   planes and builds for wasm32.

// Everything that runs ffmpeg or touches files is native only; the pure-Rust picture code
// (planes, metrics, the scaler, the watermark's math) also builds for wasm32, for a browser fed
// by its own decoder.
#[cfg(not(target_arch = "wasm32"))]
pub mod decode;
mod error;
#[cfg(not(target_arch = "wasm32"))]
pub mod eval;
#[cfg(not(target_arch = "wasm32"))]
pub mod features;
#[cfg(not(target_arch = "wasm32"))]
pub mod ffmpeg;
pub mod frame;
#[cfg(not(target_arch = "wasm32"))]
pub mod hls;
#[cfg(not(target_arch = "wasm32"))]
pub mod hw;
#[cfg(not(target_arch = "wasm32"))]
pub mod ladder;
pub mod metrics;
#[cfg(not(target_arch = "wasm32"))]
pub mod plan;
#[cfg(not(target_arch = "wasm32"))]
pub mod probe;
#[cfg(not(target_arch = "wasm32"))]
pub mod rendition;
pub mod scale;
#[cfg(not(target_arch = "wasm32"))]
pub mod segment;
#[cfg(not(target_arch = "wasm32"))]
pub mod thumbs;
#[cfg(not(target_arch = "wasm32"))]
pub mod transcode;
#[cfg(not(target_arch = "wasm32"))]
pub mod ts;
#[cfg(not(target_arch = "wasm32"))]
pub mod verify;
pub mod watermark;

pub use error::{Error, Result};
#[cfg(not(target_arch = "wasm32"))]
pub use ffmpeg::Ffmpeg;
#[cfg(not(target_arch = "wasm32"))]
pub use hls::Manifest;
#[cfg(not(target_arch = "wasm32"))]
pub use probe::{MediaInfo, probe};
