//! Decoding a segment to [`Frame`]s: ffmpeg writes packed yuv420p to a pipe and logs each
//! frame's presentation time through the `showinfo` filter.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::Stdio;

use crate::ffmpeg::{Ffmpeg, failure_detail};
use crate::frame::Frame;
use crate::{Error, Result};

/// Decodes every frame of the first video stream of `path` (coded size `width` x `height`),
/// in presentation order. A 2 s segment is held in memory whole: 69 MB at 720p.
pub fn decode(ff: &Ffmpeg, path: &Path, width: usize, height: usize) -> Result<Vec<Frame>> {
    let what = || format!("decoding {}", path.display());
    let mut child = ff
        .ffmpeg()
        .args(["-loglevel", "info", "-threads", "1", "-i"])
        .arg(path)
        .args(["-map", "0:v:0", "-vf", "showinfo", "-fps_mode", "passthrough"])
        .args(["-pix_fmt", "yuv420p", "-f", "rawvideo", "-"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Ffmpeg { what: what(), detail: e.to_string() })?;
    let (Some(mut stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(Error::Ffmpeg { what: what(), detail: "no output pipes".into() });
    };
    // showinfo's lines arrive on stderr ahead of (or with) the frame bytes on stdout; a thread
    // collects them so neither pipe can fill up and stall ffmpeg.
    let decoded = std::thread::scope(|scope| -> Result<(Vec<Frame>, Vec<u8>)> {
        let reader = scope.spawn(move || {
            let mut times = Vec::new();
            let mut other = Vec::new();
            for line in BufReader::new(stderr).split(b'\n').map_while(std::io::Result::ok) {
                let text = String::from_utf8_lossy(&line);
                match showinfo_frame(&text) {
                    Some(t) => times.push(t),
                    None if text.contains("Parsed_showinfo") => {}
                    None => {
                        other.extend_from_slice(&line);
                        other.push(b'\n');
                    }
                }
            }
            (times, other)
        });
        // Each picture goes straight into its planes; the times are filled in once the log is
        // complete.
        let mut buffer = vec![0u8; Frame::yuv420p_len(width, height)];
        let mut frames = Vec::new();
        loop {
            match stdout.read_exact(&mut buffer) {
                Ok(()) => frames.extend(Frame::from_yuv420p(width, height, 0.0, &buffer)),
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
                Err(e) => return Err(Error::io(path, "reading decoded frames", e)),
            }
        }
        let (times, other) = reader.join().unwrap_or_default();
        if times.len() != frames.len() {
            return Err(Error::Ffmpeg {
                what: what(),
                detail: format!(
                    "{} frames decoded but {} frame times logged",
                    frames.len(),
                    times.len()
                ),
            });
        }
        for (frame, &(pts, size)) in frames.iter_mut().zip(&times) {
            frame.pts = pts;
            frame.decoded_size = size.unwrap_or((width, height));
        }
        Ok((frames, other))
    });
    let status = child.wait().map_err(|e| Error::Ffmpeg { what: what(), detail: e.to_string() })?;
    let (frames, other) = decoded?;
    if !status.success() {
        return Err(Error::Ffmpeg { what: what(), detail: failure_detail(&other, status) });
    }
    Ok(frames)
}

/// `pts_time:1.4` and `s:176x144` from a showinfo line.
fn showinfo_frame(line: &str) -> Option<(f64, Option<(usize, usize)>)> {
    if !line.contains("Parsed_showinfo") {
        return None;
    }
    let field = |name: &str| {
        let at = line.find(name)? + name.len();
        line[at..].split_whitespace().next()
    };
    let pts = field("pts_time:")?.parse().ok()?;
    let size = field(" s:").and_then(|s| {
        let (w, h) = s.split_once('x')?;
        Some((w.parse().ok()?, h.parse().ok()?))
    });
    Some((pts, size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn showinfo_lines_give_frame_times() {
        let line = "[Parsed_showinfo_0 @ 0x555d] n:   3 pts:  48000 pts_time:1.4       pos: 48 fmt:yuv420p sar:1/1 s:176x144 i:P";
        assert_eq!(showinfo_frame(line), Some((1.4, Some((176, 144)))));
        assert_eq!(showinfo_frame("[Parsed_showinfo_0 @ 0x1] config in time_base: 1/90000"), None);
        assert_eq!(showinfo_frame("frame=  10 pts_time:3"), None);
    }
}
