//! Still pictures of a video for the people choosing and scrubbing it: a poster, and a sprite
//! of frames at a fixed interval for a player's seek preview. JPEG, made by ffmpeg from the
//! source (a display rotation honoured, as ffmpeg's decoder turns it).

use std::path::Path;

use crate::ffmpeg::{self, Ffmpeg};
use crate::{Error, Result};

/// The most tiles a sprite holds: a long video's interval grows to keep to it.
pub const MAX_TILES: u32 = 240;

/// A sprite's layout: tile `i` shows the frame at `i × every_ms`, at column `i % columns` and
/// row `i / columns`, each tile `width × height` pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sprite {
    /// Milliseconds between tiles.
    pub every_ms: u32,
    /// Tiles per row.
    pub columns: u32,
    /// Rows.
    pub rows: u32,
    /// Tiles with a picture.
    pub count: u32,
    /// A tile's width.
    pub width: u32,
    /// A tile's height.
    pub height: u32,
}

/// Writes to `out` (a `.jpg`) a poster of `input` (`duration` seconds long): the frame a tenth
/// of the way in, `height` pixels tall (or the source's height, if less).
pub fn poster(ff: &Ffmpeg, input: &Path, duration: f64, height: u32, out: &Path) -> Result<()> {
    let at = (duration * 0.1).clamp(0.0, (duration - 0.05).max(0.0));
    let mut command = ff.ffmpeg();
    command
        .args(["-ss", &format!("{at:.3}"), "-i"])
        .arg(input)
        // Never taller than the source.
        .args(["-frames:v", "1", "-vf", &format!("scale=-2:min({height}\\,ih)"), "-q:v", "4", "-y"])
        .arg(out);
    ffmpeg::run(&mut command, || format!("{}: making a poster", input.display()))?;
    Ok(())
}

/// Writes to `out` (a `.jpg`) a sprite of `input` (`duration` seconds long): a frame every
/// `every` seconds (more, when that would make more than [`MAX_TILES`]), each `height` pixels
/// tall, `columns` to a row.
pub fn sprite(
    ff: &Ffmpeg,
    input: &Path,
    duration: f64,
    every: f64,
    height: u32,
    columns: u32,
    out: &Path,
) -> Result<Sprite> {
    let bad =
        |detail: String| Error::Ffmpeg { what: format!("{}: a sprite", input.display()), detail };
    if !(duration > 0.0 && every > 0.0 && columns > 0 && height > 0) {
        return Err(bad(format!("duration {duration} s, every {every} s, {columns} columns")));
    }
    let wanted = (duration / every).ceil().max(1.0) as u32;
    let count = wanted.min(MAX_TILES);
    let every = if wanted > MAX_TILES { duration / f64::from(count) } else { every };
    let columns = columns.min(count);
    let rows = count.div_ceil(columns);
    let filter = format!("fps=1/{every:.6}:start_time=0,scale=-2:{height},tile={columns}x{rows}");
    let mut command = ff.ffmpeg();
    command
        .arg("-i")
        .arg(input)
        .args(["-an", "-vf", &filter, "-frames:v", "1", "-q:v", "5", "-y"])
        .arg(out);
    ffmpeg::run(&mut command, || format!("{}: making a sprite", input.display()))?;
    let bytes = std::fs::read(out).map_err(|e| bad(format!("{}: {e}", out.display())))?;
    let (width, total_height) =
        jpeg_size(&bytes).ok_or_else(|| bad(format!("{} is not a JPEG", out.display())))?;
    if !width.is_multiple_of(columns) || total_height != height * rows {
        return Err(bad(format!(
            "a {width}x{total_height} sprite is not {columns}x{rows} tiles {height} pixels tall"
        )));
    }
    Ok(Sprite {
        every_ms: (every * 1000.0).round() as u32,
        columns,
        rows,
        count,
        width: width / columns,
        height,
    })
}

/// A JPEG's width and height, from its first start-of-frame marker (`None`: not a JPEG).
pub fn jpeg_size(bytes: &[u8]) -> Option<(u32, u32)> {
    if bytes.get(..2) != Some(&[0xff, 0xd8]) {
        return None;
    }
    let mut at = 2;
    while at + 4 <= bytes.len() && bytes[at] == 0xff {
        let marker = bytes[at + 1];
        let length = usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]));
        // Start of frame (baseline, extended, progressive): precision, height, width.
        if matches!(marker, 0xc0..=0xc2) && at + 9 <= bytes.len() {
            let height = u16::from_be_bytes([bytes[at + 5], bytes[at + 6]]);
            let width = u16::from_be_bytes([bytes[at + 7], bytes[at + 8]]);
            return Some((u32::from(width), u32::from(height)));
        }
        at += 2 + length;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::jpeg_size;

    #[test]
    fn a_jpeg_size_is_read_from_its_frame_header_and_nothing_else_panics() {
        // SOI, an APP0 of 4 bytes, then a baseline SOF0: 8-bit, 90 tall, 1060 wide.
        let jpeg = [
            0xff, 0xd8, 0xff, 0xe0, 0x00, 0x04, 0x00, 0x00, 0xff, 0xc0, 0x00, 0x11, 0x08, 0x00,
            0x5a, 0x04, 0x24, 0x03,
        ];
        assert_eq!(jpeg_size(&jpeg), Some((1060, 90)));
        for end in 0..jpeg.len() - 1 {
            assert_eq!(jpeg_size(&jpeg[..end]), None, "cut at {end}");
        }
        assert_eq!(jpeg_size(b"\x89PNG\r\n\x1a\n"), None);
        assert_eq!(jpeg_size(&[0xff, 0xd8, 0x00, 0xff, 0xc0]), None);
        assert_eq!(jpeg_size(&[0xff, 0xd8, 0xff, 0xe0, 0xff, 0xff]), None);
    }
}
