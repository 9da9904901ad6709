//! A reader for the MPEG-TS segments Kinema cuts and checks, in pure Rust.
//!
//! It reads what the verifier's coarse checks need from an MPEG-TS file with H.264 video: the
//! stream table, the presentation time and key flag of every picture, the frame size and aspect
//! ratio from the sequence parameter set, and the audio elementary stream's bytes (a stream copy
//! reproduces them exactly, however a muxer packs them into PES packets). Reading a segment this
//! way costs a few milliseconds where an `ffprobe` run costs ~70 ms of CPU in the dynamic loader
//! alone, and the same code runs in a browser tab.
//!
//! Only the first program's first video and first audio stream are read. A PES packet is taken
//! to carry one picture, as every H.264 muxer writes it; pictures are counted by their first
//! slice, so a packet carrying two is seen as two frames with one time and fails the timestamp
//! check rather than passing unnoticed.

use std::path::Path;

use crate::probe::{AudioStream, MediaInfo, Packet, Rational, VideoStream};
use crate::{Error, Result};

/// Size of a transport stream packet.
const PACKET: usize = 188;
/// Ticks per second of PES timestamps.
const CLOCK: f64 = 90_000.0;
/// The highest VUI frame rate taken as the stream's own.
const MAX_DECLARED_FPS: f64 = 240.0;
/// PES timestamps wrap at 2^33 ticks (26.5 hours).
const WRAP: i64 = 1 << 33;

/// A segment read by [`read`].
#[derive(Debug, Clone)]
pub struct Segment {
    /// What ffprobe would have said about it, as far as the verifier uses it.
    pub info: MediaInfo,
    /// The audio elementary stream, when there is one.
    pub audio: Option<AudioBytes>,
}

/// An audio elementary stream: its first timestamp and every byte of its payload. Two are equal
/// when those are, however a muxer cut the bytes into PES packets.
#[derive(Debug, Clone)]
pub struct AudioBytes {
    /// Presentation time of the first audio PES packet in 90 kHz ticks, on the file's clock.
    pub first_pts: Option<i64>,
    /// The concatenated PES payloads.
    pub bytes: Vec<u8>,
    /// The PES packets' span in seconds plus one average gap, when two or more carry a time.
    pub pes_span: Option<f64>,
}

impl PartialEq for AudioBytes {
    fn eq(&self, other: &Self) -> bool {
        self.first_pts == other.first_pts && self.bytes == other.bytes
    }
}

impl Eq for AudioBytes {}

impl AudioBytes {
    /// How long the audio lasts in seconds: exact for AAC in ADTS frames (every frame read,
    /// 1024 samples per raw block), otherwise from the PES packets' times. `None` when neither
    /// can be read: ADTS framing that does not hold together and fewer than two timed packets.
    pub fn duration(&self) -> Option<f64> {
        adts_duration(&self.bytes).or(self.pes_span)
    }
}

/// The length of a run of ADTS frames that covers `bytes` exactly, at one sample rate.
fn adts_duration(bytes: &[u8]) -> Option<f64> {
    let (rate, _) = adts_header(bytes)?;
    let (mut at, mut samples) = (0usize, 0u64);
    while at < bytes.len() {
        let frame = &bytes[at..];
        if adts_header(frame)?.0 != rate {
            return None;
        }
        let length = (usize::from(frame[3] & 0x03) << 11)
            | (usize::from(frame[4]) << 3)
            | usize::from(frame[5] >> 5);
        if length < 7 || length > frame.len() {
            return None;
        }
        samples += 1024 * (u64::from(frame[6] & 0x03) + 1);
        at += length;
    }
    Some(samples as f64 / f64::from(rate))
}

/// Whether `bytes` start like an MPEG-TS stream (two sync bytes one packet apart).
pub fn looks_like_ts(bytes: &[u8]) -> bool {
    bytes.len() >= PACKET && bytes[0] == 0x47 && bytes.get(PACKET).is_none_or(|&b| b == 0x47)
}

/// Reads an MPEG-TS segment with H.264 video. `Ok(None)` when `bytes` are not MPEG-TS or the
/// video is not H.264: those are ffprobe's to describe.
pub fn read(path: &Path, bytes: &[u8]) -> Result<Option<Segment>> {
    if !looks_like_ts(bytes) {
        return Ok(None);
    }
    let demuxed = demux(bytes);
    let Some(video) = demuxed.video.as_ref() else {
        let found = if demuxed.streams.is_empty() {
            "none".to_owned()
        } else {
            demuxed
                .streams
                .iter()
                .map(|t| format!("stream type 0x{t:02x}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Err(Error::NoVideo { path: path.into(), found });
    };
    if video.stream_type != 0x1b {
        return Ok(None);
    }
    if !bytes.len().is_multiple_of(PACKET) {
        return Err(Error::Truncated {
            path: path.into(),
            detail: format!("{} bytes is not a whole number of 188-byte packets", bytes.len()),
        });
    }
    let pictures = pictures(&video.pes);
    let Some(sps) = pictures.sps else {
        return Err(Error::BadVideo {
            path: path.into(),
            detail: "no H.264 sequence parameter set".into(),
        });
    };
    if pictures.frames.is_empty() {
        return Err(Error::BadVideo {
            path: path.into(),
            detail: "the video stream has no frames".into(),
        });
    }

    // One clock for the file: every time unwrapped around the first one seen.
    let origin = pictures.frames.iter().filter_map(|f| f.0).chain(audio_first(&demuxed)).next();
    let on_clock =
        |t: i64| origin.map_or(t, |o| o + (t - o + WRAP / 2).rem_euclid(WRAP) - WRAP / 2);
    let mut times: Vec<Option<i64>> = Vec::with_capacity(pictures.frames.len());
    let mut last = None;
    for &(pts, _) in &pictures.frames {
        // A picture without a time of its own (a second one in a packet) repeats the last.
        let t = pts.map(on_clock).or(last);
        times.push(t);
        last = t;
    }
    let audio = demuxed.audio.as_ref().map(|a| {
        let times: Vec<f64> =
            a.pes.iter().filter_map(|p| p.pts).map(|t| on_clock(t) as f64 / CLOCK).collect();
        AudioBytes {
            first_pts: a.pes.iter().find_map(|p| p.pts).map(on_clock),
            bytes: a.pes.iter().flat_map(|p| p.payload.iter().copied()).collect(),
            pes_span: crate::verify::span_with_last(&times),
        }
    });
    let start =
        times.iter().flatten().chain(audio.iter().filter_map(|a| a.first_pts.as_ref())).min();
    let start = start.copied().unwrap_or(0);

    let packets: Vec<Packet> = times
        .iter()
        .zip(&pictures.frames)
        .map(|(t, &(own, key))| Packet {
            pts: t.map_or(0.0, |t| (t - start) as f64 / CLOCK),
            duration: None,
            key,
            pts_inferred: own.is_none(),
        })
        .collect();
    let mut sorted: Vec<i64> = times.iter().flatten().copied().collect();
    sorted.sort_unstable();
    // The rate the stream declares when that is a frame rate (sparse frames, as from a
    // security camera, keep their nominal rate, as ffprobe reports it); encoders that copy a
    // container's time base into the VUI declare thousands of frames a second, and then the
    // times tell.
    let (measured, average) = rates(&sorted);
    let (frame_rate, avg_frame_rate) = match sps.frame_rate {
        Some(declared)
            if declared.as_f64() <= MAX_DECLARED_FPS
                && declared.as_f64() >= measured.as_f64() * 0.99 =>
        {
            (declared, None)
        }
        _ => (measured, average),
    };
    let mut keyframe_times: Vec<f64> = packets.iter().filter(|p| p.key).map(|p| p.pts).collect();
    keyframe_times.sort_by(f64::total_cmp);
    let video_stream = VideoStream {
        index: video.index,
        codec: "h264".into(),
        profile: sps.profile().map(str::to_owned),
        width: sps.width,
        height: sps.height,
        sample_aspect_ratio: sps.sar,
        rotation: 0,
        pixel_format: sps.pixel_format().map(str::to_owned),
        frame_rate,
        avg_frame_rate,
        frame_count: packets.len() as u64,
        hidden_frames: 0,
        keyframe_times,
        packets,
    };
    let duration = video_stream.end_time();
    let audio_stream = demuxed.audio.as_ref().map(|a| {
        let adts = audio.as_ref().and_then(|b| adts_header(&b.bytes));
        AudioStream {
            index: a.index,
            codec: audio_codec(a.stream_type).into(),
            sample_rate: adts.map_or(0, |h| h.0),
            channels: adts.map_or(0, |h| h.1),
            channel_layout: None,
        }
    });
    let size = bytes.len() as u64;
    let info = MediaInfo {
        path: path.into(),
        container: "mpegts".into(),
        size,
        duration,
        start_time: start as f64 / CLOCK,
        bit_rate: (duration > 0.0).then(|| (size as f64 * 8.0 / duration) as u64),
        stream_count: demuxed.streams.len(),
        video: video_stream,
        audio: audio_stream,
    };
    Ok(Some(Segment { info, audio }))
}

fn audio_first(demuxed: &Demuxed) -> Option<i64> {
    demuxed.audio.as_ref().and_then(|a| a.pes.iter().find_map(|p| p.pts))
}

/// The usual frame rate (from the most common gap between presentation times) and the average.
fn rates(sorted: &[i64]) -> (Rational, Option<Rational>) {
    let mut gaps: Vec<i64> = sorted.windows(2).map(|w| w[1] - w[0]).filter(|&g| g > 0).collect();
    gaps.sort_unstable();
    let reduced = |num: u64, den: u64| {
        let g = gcd(num, den).max(1);
        Rational { num: num / g, den: den / g }
    };
    let Some(&typical) = gaps.get(gaps.len() / 2) else {
        return (Rational { num: 0, den: 1 }, None);
    };
    let span = (sorted[sorted.len() - 1] - sorted[0]) as u64;
    let avg = (span > 0).then(|| reduced((sorted.len() as u64 - 1) * CLOCK as u64, span));
    (reduced(CLOCK as u64, typical as u64), avg)
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

fn audio_codec(stream_type: u8) -> &'static str {
    match stream_type {
        0x03 | 0x04 => "mpeg audio",
        0x0f => "aac",
        0x11 => "aac_latm",
        0x81 => "ac3",
        0x87 => "eac3",
        _ => "unknown",
    }
}

/// Sample rate and channel count from an ADTS header at the start of `bytes`.
fn adts_header(bytes: &[u8]) -> Option<(u32, u32)> {
    const RATES: [u32; 13] =
        [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350];
    if bytes.len() < 7 || bytes[0] != 0xff || bytes[1] & 0xf0 != 0xf0 {
        return None;
    }
    let rate = *RATES.get(usize::from((bytes[2] >> 2) & 0x0f))?;
    let channels = u32::from(((bytes[2] & 1) << 2) | (bytes[3] >> 6));
    Some((rate, channels))
}

/// One PES packet of a stream.
#[derive(Debug, Default)]
struct Pes {
    pts: Option<i64>,
    payload: Vec<u8>,
}

#[derive(Debug)]
struct Elementary {
    /// Position in the program map.
    index: usize,
    stream_type: u8,
    pid: u16,
    pes: Vec<Pes>,
}

#[derive(Debug, Default)]
struct Demuxed {
    /// Stream types in the program map, in order.
    streams: Vec<u8>,
    video: Option<Elementary>,
    audio: Option<Elementary>,
}

fn is_video(stream_type: u8) -> bool {
    matches!(stream_type, 0x01 | 0x02 | 0x10 | 0x1b | 0x24 | 0x42 | 0xea)
}

fn is_audio(stream_type: u8) -> bool {
    matches!(stream_type, 0x03 | 0x04 | 0x0f | 0x11 | 0x81 | 0x87)
}

/// Splits the packets of the first program's first video and audio streams into PES packets.
/// Bytes between packets that do not start with a sync byte are skipped to the next packet that
/// does, as a demuxer resynchronises.
fn demux(bytes: &[u8]) -> Demuxed {
    let mut out = Demuxed::default();
    let mut pmt_pid = None;
    let mut section: Option<(u16, Vec<u8>)> = None;
    let mut at = 0;
    while at + PACKET <= bytes.len() {
        let packet = &bytes[at..at + PACKET];
        if packet[0] != 0x47 {
            at += bytes[at + 1..].iter().position(|&b| b == 0x47).map_or(bytes.len(), |p| p + 1);
            continue;
        }
        at += PACKET;
        let start = packet[1] & 0x40 != 0;
        let pid = u16::from(packet[1] & 0x1f) << 8 | u16::from(packet[2]);
        let control = (packet[3] >> 4) & 3;
        let mut offset = 4;
        if control & 2 != 0 {
            offset += 1 + usize::from(packet[4]);
        }
        if control & 1 == 0 || offset >= PACKET {
            continue;
        }
        let payload = &packet[offset..];
        if pid == 0 || Some(pid) == pmt_pid {
            // Program tables: a section may continue over packets.
            let data = if start {
                let pointer = usize::from(payload[0]);
                section = Some((pid, Vec::new()));
                payload.get(1 + pointer..).unwrap_or(&[])
            } else {
                payload
            };
            let Some((spid, buffer)) = section.as_mut().filter(|(p, _)| *p == pid) else {
                continue;
            };
            buffer.extend_from_slice(data);
            if buffer.len() < 3 {
                continue;
            }
            let length = 3 + (usize::from(buffer[1] & 0x0f) << 8 | usize::from(buffer[2]));
            if buffer.len() < length {
                continue;
            }
            let table = buffer[..length].to_vec();
            let table_pid = *spid;
            section = None;
            if table_pid == 0 {
                pmt_pid = pmt_pid.or_else(|| program_map_pid(&table));
            } else if out.streams.is_empty() {
                read_pmt(&table, &mut out);
            }
            continue;
        }
        for stream in [&mut out.video, &mut out.audio].into_iter().flatten() {
            if stream.pid != pid {
                continue;
            }
            if start {
                stream.pes.push(pes_start(payload));
            } else if let Some(last) = stream.pes.last_mut() {
                last.payload.extend_from_slice(payload);
            }
        }
    }
    out
}

/// The PID of the first program's map in a program association section.
fn program_map_pid(section: &[u8]) -> Option<u16> {
    let entries = section.get(8..section.len().checked_sub(4)?)?;
    entries.chunks_exact(4).find_map(|e| {
        let program = u16::from(e[0]) << 8 | u16::from(e[1]);
        (program != 0).then_some(u16::from(e[2] & 0x1f) << 8 | u16::from(e[3]))
    })
}

/// Records the streams of a program map section.
fn read_pmt(section: &[u8], out: &mut Demuxed) {
    let Some(end) = section.len().checked_sub(4) else { return };
    if section.len() < 12 {
        return;
    }
    let info_length = usize::from(section[10] & 0x0f) << 8 | usize::from(section[11]);
    let mut at = 12 + info_length;
    while at + 5 <= end {
        let stream_type = section[at];
        let pid = u16::from(section[at + 1] & 0x1f) << 8 | u16::from(section[at + 2]);
        let es_length = usize::from(section[at + 3] & 0x0f) << 8 | usize::from(section[at + 4]);
        let descriptors = section.get(at + 5..(at + 5 + es_length).min(end)).unwrap_or(&[]);
        // Private data streams name their codec in a descriptor (AC-3, E-AC-3).
        let stream_type = match stream_type {
            0x06 if has_descriptor(descriptors, 0x6a) => 0x81,
            0x06 if has_descriptor(descriptors, 0x7a) => 0x87,
            t => t,
        };
        let index = out.streams.len();
        out.streams.push(stream_type);
        let stream = || Elementary { index, stream_type, pid, pes: Vec::new() };
        if is_video(stream_type) && out.video.is_none() {
            out.video = Some(stream());
        } else if is_audio(stream_type) && out.audio.is_none() {
            out.audio = Some(stream());
        }
        at += 5 + es_length;
    }
}

fn has_descriptor(mut descriptors: &[u8], tag: u8) -> bool {
    while descriptors.len() >= 2 {
        if descriptors[0] == tag {
            return true;
        }
        descriptors = descriptors.get(2 + usize::from(descriptors[1])..).unwrap_or(&[]);
    }
    false
}

/// A PES packet from the payload that starts it: its presentation time (or decode time, when
/// it has no other) and the payload after its header.
fn pes_start(payload: &[u8]) -> Pes {
    if payload.len() < 9 || payload[..3] != [0, 0, 1] {
        return Pes::default();
    }
    let flags = payload[7] >> 6;
    let header_end = 9 + usize::from(payload[8]);
    let pts = (flags & 2 != 0).then(|| timestamp(payload.get(9..14)?)).flatten();
    Pes { pts, payload: payload.get(header_end..).unwrap_or(&[]).to_vec() }
}

fn timestamp(b: &[u8]) -> Option<i64> {
    let [a, b1, b2, b3, b4] = <[u8; 5]>::try_from(b).ok()?;
    Some(
        i64::from((a >> 1) & 7) << 30
            | i64::from(b1) << 22
            | i64::from(b2 >> 1) << 15
            | i64::from(b3) << 7
            | i64::from(b4 >> 1),
    )
}

/// The pictures of an H.264 stream: each with its packet's time (the first picture of a packet)
/// and whether it is an IDR picture; and the first sequence parameter set.
struct Pictures {
    frames: Vec<(Option<i64>, bool)>,
    sps: Option<Sps>,
}

fn pictures(pes: &[Pes]) -> Pictures {
    let mut frames = Vec::with_capacity(pes.len());
    let mut sps = None;
    for packet in pes {
        let mut pts = packet.pts;
        for nal in nal_units(&packet.payload) {
            let Some(&header) = nal.first() else { continue };
            match header & 0x1f {
                7 if sps.is_none() => sps = Sps::parse(&unescape(&nal[1..])),
                // A picture's first slice has first_mb_in_slice = 0: ue(v) "1".
                kind @ (1 | 5) if nal.get(1).is_some_and(|b| b & 0x80 != 0) => {
                    frames.push((pts.take(), kind == 5));
                }
                _ => {}
            }
        }
    }
    Pictures { frames, sps }
}

/// The NAL units of an Annex B byte stream (between `00 00 01` start codes).
fn nal_units(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i + 2] > 1 {
            i += 3;
        } else if data[i..i + 3] == [0, 0, 1] {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let ends: Vec<usize> = starts.iter().skip(1).map(|&s| s - 3).chain([data.len()]).collect();
    starts.into_iter().zip(ends).map(move |(s, e)| {
        // A four-byte start code leaves a zero at the end of the unit before it.
        let mut e = e;
        while e > s && data[e - 1] == 0 {
            e -= 1;
        }
        &data[s..e]
    })
}

/// A NAL unit's payload without its emulation prevention bytes (`00 00 03` → `00 00`).
fn unescape(nal: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nal.len());
    let mut zeros = 0;
    for &b in nal {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

/// Reads bits most significant first.
struct Bits<'a> {
    data: &'a [u8],
    at: usize,
}

impl Bits<'_> {
    fn bit(&mut self) -> Option<u32> {
        let byte = self.data.get(self.at / 8)?;
        let bit = (byte >> (7 - self.at % 8)) & 1;
        self.at += 1;
        Some(u32::from(bit))
    }

    fn bits(&mut self, n: u32) -> Option<u32> {
        (0..n).try_fold(0, |v, _| Some(v << 1 | self.bit()?))
    }

    /// Exp-Golomb, unsigned.
    fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        Some((1u32 << zeros) - 1 + self.bits(zeros)?)
    }

    /// Exp-Golomb, signed.
    fn se(&mut self) -> Option<i32> {
        let k = self.ue()?;
        let magnitude = k.div_ceil(2) as i32;
        Some(if k % 2 == 1 { magnitude } else { -magnitude })
    }
}

/// What Kinema reads of an H.264 sequence parameter set.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Sps {
    profile_idc: u32,
    chroma_format: u32,
    bit_depth: u32,
    /// Displayed width (after cropping).
    width: u32,
    /// Displayed height (after cropping).
    height: u32,
    sar: Rational,
    /// The frame rate the VUI timing declares.
    frame_rate: Option<Rational>,
}

/// The sample aspect ratio and frame rate of the VUI parameters, as far as they are present.
fn vui(r: &mut Bits<'_>) -> (Option<Rational>, Option<Rational>) {
    const TABLE: [(u32, u32); 17] = [
        (0, 0),
        (1, 1),
        (12, 11),
        (10, 11),
        (16, 11),
        (40, 33),
        (24, 11),
        (20, 11),
        (32, 11),
        (80, 33),
        (18, 11),
        (15, 11),
        (64, 33),
        (160, 99),
        (4, 3),
        (3, 2),
        (2, 1),
    ];
    let mut sar = None;
    let mut rest = || -> Option<Option<Rational>> {
        if r.bit()? == 1 {
            let (num, den) = match r.bits(8)? {
                255 => (r.bits(16)?, r.bits(16)?),
                idc => TABLE.get(idc as usize).copied().unwrap_or((0, 0)),
            };
            if num > 0 && den > 0 {
                sar = Some(Rational { num: u64::from(num), den: u64::from(den) });
            }
        }
        if r.bit()? == 1 {
            r.bit()?; // overscan_appropriate_flag
        }
        if r.bit()? == 1 {
            r.bits(4)?; // video_format, video_full_range_flag
            if r.bit()? == 1 {
                r.bits(24)?; // colour primaries, transfer, matrix
            }
        }
        if r.bit()? == 1 {
            r.ue()?;
            r.ue()?; // chroma sample locations
        }
        if r.bit()? == 0 {
            return Some(None);
        }
        let (tick, scale) = (r.bits(32)?, r.bits(32)?);
        Some((tick > 0 && scale > 0).then(|| {
            let (num, den) = (u64::from(scale), 2 * u64::from(tick));
            let g = gcd(num, den).max(1);
            Rational { num: num / g, den: den / g }
        }))
    };
    let frame_rate = rest().flatten();
    (sar, frame_rate)
}

impl Sps {
    /// Parses an SPS payload (after the NAL header byte, emulation prevention removed).
    fn parse(data: &[u8]) -> Option<Sps> {
        let mut r = Bits { data, at: 0 };
        let profile_idc = r.bits(8)?;
        r.bits(16)?; // constraint flags, level
        r.ue()?; // seq_parameter_set_id
        let (mut chroma_format, mut bit_depth) = (1, 8);
        if matches!(profile_idc, 100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134)
        {
            chroma_format = r.ue()?;
            if chroma_format == 3 {
                r.bit()?; // separate_colour_plane_flag
            }
            bit_depth = 8 + r.ue()?;
            r.ue()?; // bit_depth_chroma_minus8
            r.bit()?; // qpprime_y_zero_transform_bypass_flag
            if r.bit()? == 1 {
                let lists = if chroma_format == 3 { 12 } else { 8 };
                for i in 0..lists {
                    if r.bit()? == 1 {
                        skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                    }
                }
            }
        }
        r.ue()?; // log2_max_frame_num_minus4
        match r.ue()? {
            0 => {
                r.ue()?;
            }
            1 => {
                r.bit()?;
                r.se()?;
                r.se()?;
                for _ in 0..r.ue()? {
                    r.se()?;
                }
            }
            _ => {}
        }
        r.ue()?; // max_num_ref_frames
        r.bit()?; // gaps_in_frame_num_value_allowed_flag
        let width_mbs = r.ue()? + 1;
        let height_units = r.ue()? + 1;
        let frame_mbs_only = r.bit()?;
        if frame_mbs_only == 0 {
            r.bit()?; // mb_adaptive_frame_field_flag
        }
        r.bit()?; // direct_8x8_inference_flag
        let mut crop = [0; 4];
        if r.bit()? == 1 {
            for c in &mut crop {
                *c = r.ue()?;
            }
        }
        let (unit_x, unit_y) = match chroma_format {
            1 => (2, 2 * (2 - frame_mbs_only)),
            2 => (2, 2 - frame_mbs_only),
            _ => (1, 2 - frame_mbs_only),
        };
        let width = (width_mbs * 16).checked_sub(unit_x * (crop[0] + crop[1]))?;
        let height =
            (height_units * 16 * (2 - frame_mbs_only)).checked_sub(unit_y * (crop[2] + crop[3]))?;
        let (mut sar, mut frame_rate) = (Rational { num: 1, den: 1 }, None);
        if r.bit() == Some(1) {
            // vui_parameters: what it lacks stays unknown.
            let vui = vui(&mut r);
            sar = vui.0.unwrap_or(sar);
            frame_rate = vui.1;
        }
        (width > 0 && height > 0).then_some(Sps {
            profile_idc,
            chroma_format,
            bit_depth,
            width,
            height,
            sar,
            frame_rate,
        })
    }

    fn profile(&self) -> Option<&'static str> {
        Some(match self.profile_idc {
            66 => "Baseline",
            77 => "Main",
            88 => "Extended",
            100 => "High",
            110 => "High 10",
            122 => "High 4:2:2",
            244 => "High 4:4:4 Predictive",
            _ => return None,
        })
    }

    fn pixel_format(&self) -> Option<&'static str> {
        Some(match (self.chroma_format, self.bit_depth) {
            (0, 8) => "gray",
            (1, 8) => "yuv420p",
            (2, 8) => "yuv422p",
            (3, 8) => "yuv444p",
            (1, 10) => "yuv420p10le",
            _ => return None,
        })
    }
}

fn skip_scaling_list(r: &mut Bits<'_>, size: usize) -> Option<()> {
    let (mut last, mut next) = (8i32, 8i32);
    for _ in 0..size {
        if next != 0 {
            next = (last + r.se()? + 256) % 256;
        }
        if next != 0 {
            last = next;
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_golomb_codes_decode() {
        // 1 | 010 | 011 | 00100 | 00101 → 0, 1, 2, 3, 4; then se: 010 → +1, 011 → -1.
        let data = [0b1010_0110, 0b0100_0010, 0b1010_0110];
        let mut r = Bits { data: &data, at: 0 };
        assert_eq!(
            (r.ue(), r.ue(), r.ue(), r.ue(), r.ue()),
            (Some(0), Some(1), Some(2), Some(3), Some(4))
        );
        assert_eq!((r.se(), r.se()), (Some(1), Some(-1)));
        assert_eq!(r.ue(), None);
    }

    #[test]
    fn start_codes_split_nal_units_and_escapes_go() {
        let stream = [0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 1, 0x65, 0x88];
        let units: Vec<&[u8]> = nal_units(&stream).collect();
        assert_eq!(units, [&[0x67, 1, 2][..], &[0x68, 3][..], &[0x65, 0x88][..]]);
        assert_eq!(unescape(&[1, 0, 0, 3, 0, 0, 0, 3, 1]), [1, 0, 0, 0, 0, 0, 1]);
    }

    #[test]
    fn timestamps_unwrap_and_rates_reduce() {
        assert_eq!(timestamp(&[0x21, 0x00, 0x01, 0x00, 0x01]), Some(0));
        assert_eq!(timestamp(&[0x2f, 0xff, 0xff, 0xff, 0xff]), Some(WRAP - 1));
        let ntsc: Vec<i64> = (0..60).map(|i| 1000 + i * 3003).collect();
        let (rate, avg) = rates(&ntsc);
        assert_eq!((rate, avg), (Rational { num: 30000, den: 1001 }, Some(rate)));
        assert_eq!(rates(&[5]).0, Rational { num: 0, den: 1 });
    }

    #[test]
    fn garbage_is_not_a_transport_stream() {
        assert!(!looks_like_ts(b"not a segment"));
        assert!(read(Path::new("x"), &[0u8; 400]).unwrap().is_none());
        let mut empty_table = vec![0xffu8; 2 * PACKET];
        empty_table[0] = 0x47;
        empty_table[PACKET] = 0x47;
        assert!(matches!(read(Path::new("x"), &empty_table), Err(Error::NoVideo { .. })));
    }
}
