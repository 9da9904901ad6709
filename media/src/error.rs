//! The one error type of the media engine.
//!
//! Every variant that concerns an input names it, so a caller can print the error on one line
//! and the user knows which file to look at and what is wrong with it.

use std::path::PathBuf;

/// A `Result` whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong in the media engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `ffmpeg` or `ffprobe` could not be found or run.
    #[error(
        "{tool} is not installed or not runnable ({detail}); install ffmpeg (Debian: apt-get install ffmpeg) or point {env} at it"
    )]
    ToolMissing { tool: &'static str, env: &'static str, detail: String },
    /// The input path does not exist.
    #[error("{}: no such file", path.display())]
    NotFound { path: PathBuf },
    /// The input path is a directory or another non-file.
    #[error("{}: is a directory, not a media file", path.display())]
    NotAFile { path: PathBuf },
    /// The input file has no bytes.
    #[error("{}: the file is empty", path.display())]
    Empty { path: PathBuf },
    /// ffprobe could not recognise the input as media.
    #[error("{}: not a media file ffmpeg can read ({detail})", path.display())]
    NotMedia { path: PathBuf, detail: String },
    /// The input ends before its container says it should.
    #[error("{}: the file is truncated ({detail})", path.display())]
    Truncated { path: PathBuf, detail: String },
    /// The input has streams but none of them is a video stream.
    #[error("{}: has no video stream (streams found: {found})", path.display())]
    NoVideo { path: PathBuf, found: String },
    /// The input's video codec cannot be decoded by the installed ffmpeg.
    #[error("{}: video codec {codec} cannot be decoded by the installed ffmpeg", path.display())]
    UnsupportedCodec { path: PathBuf, codec: String },
    /// The input's video stream is unusable for another reason (no frames, no size, ...).
    #[error("{}: unusable video stream: {detail}", path.display())]
    BadVideo { path: PathBuf, detail: String },
    /// The input is valid but asks for something the engine does not do.
    #[error("{}: unsupported: {what}", path.display())]
    Unsupported { path: PathBuf, what: String },
    /// An excerpt holds too little video to read a watermark from.
    #[error("{}: too short to read a watermark from: {detail}", path.display())]
    TooShort { path: PathBuf, detail: String },
    /// A rendition cannot be checked against the source it was given with.
    #[error("{} cannot be checked against {}: {detail}", rendition.display(), original.display())]
    NotComparable { original: PathBuf, rendition: PathBuf, detail: String },
    /// A rendition name could not be parsed.
    #[error("rendition {name:?} is not valid: expected a height such as 720p, 480p or 360p")]
    BadRendition { name: String },
    /// A setting is out of range.
    #[error("{setting} = {value} is not valid: {expected}")]
    BadSetting { setting: &'static str, value: String, expected: &'static str },
    /// The output path exists and is not an empty directory.
    #[error("{}: already exists and is not an empty directory; remove it or choose another --out", path.display())]
    OutputExists { path: PathBuf },
    /// The output file exists already; it is left as it is.
    #[error("{}: already exists; choose a new file (it is not overwritten)", path.display())]
    FileExists { path: PathBuf },
    /// A hardware path was asked for but is not available.
    #[error("hardware acceleration {accel} is not available here: {detail}")]
    HardwareUnavailable { accel: String, detail: String },
    /// An ffmpeg or ffprobe run failed.
    #[error("ffmpeg failed while {what}: {detail}")]
    Ffmpeg { what: String, detail: String },
    /// A filesystem operation failed.
    #[error("{}: {what}: {source}", path.display())]
    Io {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    pub(crate) fn io(path: impl Into<PathBuf>, what: &'static str, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), what, source }
    }
}
