//! Decoding segments to [`Frame`]s with ffmpeg.
//!
//! One ffmpeg process decodes any number of segments. For each it logs every frame's
//! presentation time and decoded size (the `showinfo` filter, without its checksums), writes a
//! small luma thumbnail of every frame, and keeps whole only the pictures asked for: a verifier
//! compares about ten pictures of a segment, and moving every picture of a 720p segment through a
//! pipe costs more CPU than decoding it. The outputs are raw files in a temporary directory.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Stdio;

use crate::ffmpeg::{Ffmpeg, failure_detail};
use crate::frame::{Frame, Plane};
use crate::{Error, Result};

/// Width and height of the luma thumbnail made of every frame (ffmpeg's area scaler in
/// bit-exact mode).
pub const THUMB: (usize, usize) = (64, 36);

/// Which pictures of a segment to keep whole.
#[derive(Debug, Clone, Copy)]
pub enum Keep<'a> {
    /// Every picture.
    All,
    /// The pictures at these indices (presentation order); indices past the end are ignored.
    Only(&'a [usize]),
}

/// A segment to decode.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The segment.
    pub path: &'a Path,
    /// Size of the kept pictures: the stream's coded size (a picture decoded at another size,
    /// after a mid-stream change, is scaled to it).
    pub width: usize,
    /// Height of the kept pictures.
    pub height: usize,
    /// Which pictures to keep.
    pub keep: Keep<'a>,
}

/// Time and size of one decoded frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrameInfo {
    /// Presentation time in seconds.
    pub pts: f64,
    /// The size the decoder produced.
    pub size: (usize, usize),
}

/// One decoded segment.
#[derive(Debug, Clone)]
pub struct Decoded {
    /// Every frame, in presentation order.
    pub frames: Vec<FrameInfo>,
    /// A [`THUMB`] luma thumbnail of every frame.
    pub thumbs: Vec<Plane>,
    /// The kept pictures with their indices, in order.
    pub pictures: Vec<(usize, Frame)>,
}

impl Decoded {
    /// The kept picture of frame `index`.
    pub fn picture(&self, index: usize) -> Option<&Frame> {
        self.pictures.iter().find(|(i, _)| *i == index).map(|(_, f)| f)
    }
}

/// Decodes every frame of `path` (coded size `width` x `height`), in presentation order. A 2 s
/// 720p segment is 69 MB of pictures.
pub fn decode(ff: &Ffmpeg, path: &Path, width: usize, height: usize) -> Result<Vec<Frame>> {
    let request = Request { path, width, height, keep: Keep::All };
    let decoded = decode_segments(ff, &[request])?.pop();
    Ok(decoded.map(|d| d.pictures.into_iter().map(|(_, f)| f).collect()).unwrap_or_default())
}

/// Decodes the first video stream of each requested segment in one ffmpeg process.
pub fn decode_segments(ff: &Ffmpeg, requests: &[Request<'_>]) -> Result<Vec<Decoded>> {
    let what = || {
        let names: Vec<String> = requests.iter().map(|r| r.path.display().to_string()).collect();
        format!("decoding {}", names.join(" and "))
    };
    let io_error = |e: std::io::Error| Error::Ffmpeg { what: what(), detail: e.to_string() };
    let dir = tempfile::Builder::new().prefix("kinema-decode").tempdir().map_err(io_error)?;

    let mut command = ff.ffmpeg();
    command.args(["-loglevel", "info", "-filter_complex_threads", "1"]);
    for request in requests {
        command.args(["-threads", "1", "-i"]).arg(request.path);
    }
    let mut graph = String::new();
    let mut outputs = Vec::new();
    for (n, request) in requests.iter().enumerate() {
        let (tw, th) = THUMB;
        let thumbs =
            format!("scale={tw}:{th}:flags=area+accurate_rnd+bitexact,format=gray,setsar=1[t{n}]");
        let pictures = match request.keep {
            Keep::All => Some(String::new()),
            Keep::Only([]) => None,
            Keep::Only(picks) => {
                let terms: Vec<String> = picks.iter().map(|i| format!("eq(n\\,{i})")).collect();
                Some(format!("select='{}',", terms.join("+")))
            }
        };
        let (w, h) = (request.width, request.height);
        let _ = match &pictures {
            Some(select) => write!(
                graph,
                "[{n}:v:0]showinfo@i{n}=checksum=0,split=2[a{n}][b{n}];\
                 [a{n}]{select}scale={w}:{h},format=yuv420p[f{n}];[b{n}]{thumbs};"
            ),
            None => write!(graph, "[{n}:v:0]showinfo@i{n}=checksum=0,{thumbs};"),
        };
        outputs.push((format!("[t{n}]"), dir.path().join(format!("t{n}"))));
        if pictures.is_some() {
            outputs.push((format!("[f{n}]"), dir.path().join(format!("f{n}"))));
        }
    }
    graph.pop();
    command.arg("-filter_complex").arg(&graph);
    for (label, file) in &outputs {
        command.args(["-map", label, "-fps_mode", "passthrough", "-f", "rawvideo", "-y"]);
        command.arg(file);
    }
    // The log goes to a file: showinfo writes a few lines per frame, and a pipe would wake this
    // process for each of them.
    let log_path = dir.path().join("log");
    let log = std::fs::File::create(&log_path).map_err(io_error)?;
    let mut child = command.stdout(Stdio::null()).stderr(log).spawn().map_err(io_error)?;
    let status = child.wait().map_err(io_error)?;
    let log = std::fs::read(&log_path).map_err(io_error)?;
    let mut infos: Vec<Vec<FrameInfo>> = vec![Vec::new(); requests.len()];
    let mut other = Vec::new();
    for line in log.split(|&b| b == b'\n') {
        let text = String::from_utf8_lossy(line);
        match showinfo_frame(&text) {
            Some((n, info)) if n < infos.len() => infos[n].push(info),
            _ if text.contains("[showinfo@") => {}
            _ => {
                other.extend_from_slice(line);
                other.push(b'\n');
            }
        }
    }
    if !status.success() {
        return Err(Error::Ffmpeg { what: what(), detail: failure_detail(&other, status) });
    }

    requests
        .iter()
        .zip(infos)
        .enumerate()
        .map(|(n, (request, frames))| {
            let read = |name: String| {
                let path = dir.path().join(name);
                std::fs::read(&path).map_err(|e| Error::io(&path, "reading decoded frames", e))
            };
            let (tw, th) = THUMB;
            let thumbs: Vec<Plane> = read(format!("t{n}"))?
                .chunks_exact(tw * th)
                .map(|c| Plane { width: tw, height: th, data: c.to_vec() })
                .collect();
            if thumbs.len() != frames.len() {
                return Err(Error::Ffmpeg {
                    what: what(),
                    detail: format!(
                        "{}: {} frames decoded but {} frame times logged",
                        request.path.display(),
                        thumbs.len(),
                        frames.len()
                    ),
                });
            }
            let picks: Vec<usize> = match request.keep {
                Keep::All => (0..frames.len()).collect(),
                Keep::Only([]) => Vec::new(),
                Keep::Only(picks) => {
                    let mut picks: Vec<usize> =
                        picks.iter().copied().filter(|&i| i < frames.len()).collect();
                    picks.sort_unstable();
                    picks.dedup();
                    picks
                }
            };
            let (w, h) = (request.width, request.height);
            let bytes = if picks.is_empty() { Vec::new() } else { read(format!("f{n}"))? };
            let pictures = picks
                .into_iter()
                .zip(bytes.chunks_exact(Frame::yuv420p_len(w, h)))
                .filter_map(|(i, b)| {
                    let mut frame = Frame::from_yuv420p(w, h, frames[i].pts, b)?;
                    frame.decoded_size = frames[i].size;
                    Some((i, frame))
                })
                .collect();
            Ok(Decoded { frames, thumbs, pictures })
        })
        .collect()
}

/// Input number, `pts_time:1.4` and `s:176x144` from a line of `showinfo@i<n>`.
fn showinfo_frame(line: &str) -> Option<(usize, FrameInfo)> {
    let rest = line.split_once("[showinfo@i")?.1;
    let n = rest.split(' ').next()?.parse().ok()?;
    let field = |name: &str| {
        let at = line.find(name)? + name.len();
        line[at..].split_whitespace().next()
    };
    let pts = field("pts_time:")?.parse().ok()?;
    let (w, h) = field(" s:")?.split_once('x')?;
    Some((n, FrameInfo { pts, size: (w.parse().ok()?, h.parse().ok()?) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn showinfo_lines_give_frame_times() {
        let line = "[showinfo@i1 @ 0x555d] n:   3 pts:  48000 pts_time:1.4       pos: 48 fmt:yuv420p sar:1/1 s:176x144 i:P";
        assert_eq!(showinfo_frame(line), Some((1, FrameInfo { pts: 1.4, size: (176, 144) })));
        assert_eq!(showinfo_frame("[showinfo@i0 @ 0x1] config in time_base: 1/90000"), None);
        assert_eq!(showinfo_frame("frame=  10 pts_time:3 s:1x1"), None);
    }
}
