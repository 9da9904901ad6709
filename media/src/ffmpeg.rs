//! Finding and running `ffmpeg` and `ffprobe`.
//!
//! Kinema drives Debian's ffmpeg as subprocesses. [`Ffmpeg::locate`] finds both tools on `PATH`
//! (or where `KINEMA_FFMPEG` / `KINEMA_FFPROBE` point); a tool that is there but does not run
//! fails the first command that starts it. Nothing runs just to check: with Debian's build
//! (215 shared libraries) each start costs ~70 ms of CPU, which a verification would pay twice
//! more for nothing.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use crate::{Error, Result};

/// The located `ffmpeg` and `ffprobe` binaries.
#[derive(Debug)]
pub struct Ffmpeg {
    ffmpeg: PathBuf,
    ffprobe: PathBuf,
    version: OnceLock<Result<String, String>>,
    decodable: OnceLock<Result<BTreeSet<String>, String>>,
}

impl Ffmpeg {
    /// Finds `ffmpeg` and `ffprobe`.
    pub fn locate() -> Result<Self> {
        let ffmpeg = find_tool("ffmpeg", "KINEMA_FFMPEG")?;
        let ffprobe = find_tool("ffprobe", "KINEMA_FFPROBE")?;
        Ok(Self { ffmpeg, ffprobe, version: OnceLock::new(), decodable: OnceLock::new() })
    }

    /// The first line of `ffmpeg -version`, e.g. `ffmpeg version 5.1.9-0+deb12u1 ...` (asked
    /// once).
    pub fn version(&self) -> Result<&str> {
        let line = self.version.get_or_init(|| {
            version_line(&self.ffmpeg, "ffmpeg", "KINEMA_FFMPEG").map_err(|e| e.to_string())
        });
        match line {
            Ok(line) => Ok(line),
            Err(detail) => {
                Err(Error::Ffmpeg { what: "asking its version".into(), detail: detail.clone() })
            }
        }
    }

    /// An `ffmpeg` command that reads no stdin and logs errors only.
    pub fn ffmpeg(&self) -> Command {
        let mut cmd = Command::new(&self.ffmpeg);
        cmd.args(["-nostdin", "-hide_banner", "-nostats", "-loglevel", "error"]);
        cmd.stdin(Stdio::null());
        cmd
    }

    /// An `ffprobe` command that logs errors only.
    pub fn ffprobe(&self) -> Command {
        let mut cmd = Command::new(&self.ffprobe);
        cmd.args(["-hide_banner", "-loglevel", "error"]);
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Whether the installed ffmpeg can decode `codec` (an ffprobe `codec_name`).
    pub fn can_decode(&self, codec: &str) -> Result<bool> {
        let set = self.decodable.get_or_init(|| {
            let out = run(self.ffmpeg().arg("-codecs"), || "listing codecs".into())
                .map_err(|e| e.to_string())?;
            Ok(parse_codec_list(&String::from_utf8_lossy(&out.stdout)))
        });
        match set {
            Ok(set) => Ok(set.contains(codec)),
            Err(detail) => {
                Err(Error::Ffmpeg { what: "listing codecs".into(), detail: detail.clone() })
            }
        }
    }
}

/// Names of the codecs `ffmpeg -codecs` marks as decodable (`D` in the first flag column).
fn parse_codec_list(text: &str) -> BTreeSet<String> {
    text.lines()
        .skip_while(|l| !l.trim_start().starts_with("---"))
        .skip(1)
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let flags = words.next()?;
            let name = words.next()?;
            flags.starts_with('D').then(|| name.to_owned())
        })
        .collect()
}

fn find_tool(name: &'static str, env: &'static str) -> Result<PathBuf> {
    if let Some(path) = std::env::var_os(env) {
        return Ok(PathBuf::from(path));
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths).map(|dir| dir.join(name)).find(|p| is_executable(p))
    });
    found.ok_or(Error::ToolMissing { tool: name, env, detail: "not found on PATH".into() })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn version_line(path: &Path, tool: &'static str, env: &'static str) -> Result<String> {
    let out = Command::new(path).arg("-version").stdin(Stdio::null()).output().map_err(|e| {
        Error::ToolMissing { tool, env, detail: format!("{}: {e}", path.display()) }
    })?;
    if !out.status.success() {
        return Err(Error::ToolMissing {
            tool,
            env,
            detail: format!("{} -version exited with {}", path.display(), out.status),
        });
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text.lines().next().unwrap_or_default().trim().to_owned())
}

/// Runs `cmd` to completion, capturing its output; a non-zero exit becomes [`Error::Ffmpeg`]
/// carrying the last line ffmpeg wrote to stderr.
pub(crate) fn run(cmd: &mut Command, what: impl FnOnce() -> String) -> Result<Output> {
    let out = match cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).output() {
        Ok(out) => out,
        Err(e) => {
            let what = what_with_program(cmd.get_program(), what());
            return Err(Error::Ffmpeg { what, detail: e.to_string() });
        }
    };
    if out.status.success() {
        Ok(out)
    } else {
        Err(Error::Ffmpeg { what: what(), detail: failure_detail(&out.stderr, out.status) })
    }
}

fn what_with_program(program: &OsStr, what: String) -> String {
    format!("{what} (starting {})", Path::new(program).display())
}

/// A one-line description of why an ffmpeg run failed: the last line it logged, or its status.
pub(crate) fn failure_detail(stderr: &[u8], status: std::process::ExitStatus) -> String {
    let text = String::from_utf8_lossy(stderr);
    match text.lines().rev().map(str::trim).find(|l| !l.is_empty()) {
        Some(line) => line.to_owned(),
        None => format!("exited with {status}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codec_list_keeps_decodable_codecs_only() {
        let text = "Codecs:\n D..... = Decoding supported\n -------\n DEV.LS h264 H.264\n .EV.L. fakeenc Encoder only\n D.V.L. msmpeg4v3 MPEG-4 part 2 MS v3\n";
        let set = parse_codec_list(text);
        assert!(set.contains("h264"));
        assert!(set.contains("msmpeg4v3"));
        assert!(!set.contains("fakeenc"));
        assert_eq!(set.len(), 2);
    }

    #[test]
    fn failure_detail_is_the_last_logged_line() {
        use std::os::unix::process::ExitStatusExt;
        let status = std::process::ExitStatus::from_raw(256);
        assert_eq!(failure_detail(b"first\nsecond problem\n\n", status), "second problem");
        assert_eq!(failure_detail(b"", status), "exited with exit status: 1");
    }
}
