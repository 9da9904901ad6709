//! Awkward inputs, made with ffmpeg's own sources at test time: each one ladders and plays whole,
//! or is refused with a reason a person understands — never a failure from deep inside.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use kinema_media::ladder::{self, Config};
use kinema_media::plan::Mode;
use kinema_media::transcode::EncodeSettings;
use kinema_media::{Error, Manifest};

use crate::support::{decode_errors, ff, segment_facts, video_packets};

/// How one input is made and what must come of it.
struct Case {
    name: &'static str,
    /// The file name; its extension picks the container unless `make` names one.
    file: &'static str,
    /// ffmpeg's arguments before the output file, split at spaces.
    make: String,
    /// When set, the made file is stream-copied once more, with these input and output
    /// arguments: what ffmpeg 5.1 does only on a copy (a display matrix, an edit list).
    then: Option<(&'static str, &'static str)>,
    expect: Expect,
}

enum Expect {
    /// Ladders and plays whole.
    Plays(Playing),
    /// Refused with an error naming the file whose message contains this.
    Refused(&'static str),
}

/// What a ladder that plays whole shows.
#[derive(Clone, Copy)]
struct Playing {
    /// How long the input's video lasts, as ffmpeg shows it.
    seconds: f64,
    /// Its lowest frame rate: durations may differ by two of its frames.
    min_fps: f64,
    audio: bool,
    /// Renditions stand upright taller than wide.
    portrait: bool,
}

const fn plays(seconds: f64, min_fps: f64, audio: bool) -> Expect {
    Expect::Plays(Playing { seconds, min_fps, audio, portrait: false })
}

/// A 160x120 test picture at 30 fps and a 48 kHz tone, for four seconds.
const AV: &str = "-f lavfi -i testsrc2=s=160x120:r=30 -f lavfi -i sine=f=440:r=48000 -t 4";
/// The same encoded with x264 and AAC.
const X264: &str = "-f lavfi -i testsrc2=s=160x120:r=30 -f lavfi -i sine=f=440:r=48000 -t 4 \
                    -c:v libx264 -preset ultrafast -c:a aac";

fn case(name: &'static str, file: &'static str, make: String, expect: Expect) -> Case {
    Case { name, file, make, then: None, expect }
}

fn cases() -> Vec<Case> {
    let rate = |name, file, rate: &str, fps| {
        let make = format!(
            "-f lavfi -i testsrc2=s=160x120:r={rate} -f lavfi -i sine=f=440:r=48000 -t 4 \
             -c:v libx264 -preset ultrafast -g 50 -c:a aac"
        );
        case(name, file, make, plays(4.0, fps, true))
    };
    let rotated = |name, file, then, portrait| Case {
        name,
        file,
        make: format!("{X264} -g 30"),
        then: Some(("", then)),
        expect: Expect::Plays(Playing { seconds: 4.0, min_fps: 30.0, audio: true, portrait }),
    };
    vec![
        // MPEG-1 and MPEG-2 with B-frames (open GOPs) in program and transport streams.
        case(
            "mpeg1_ps",
            "mpeg1.mpg",
            format!("{AV} -c:v mpeg1video -bf 2 -g 15 -c:a mp2 -ac 1 -f mpeg"),
            plays(4.0, 30.0, true),
        ),
        case(
            "mpeg2_vob",
            "mpeg2.vob",
            format!("{AV} -c:v mpeg2video -bf 2 -g 15 -c:a mp2 -f vob"),
            plays(4.0, 30.0, true),
        ),
        case(
            "mpeg1_ts",
            "mpeg1.ts",
            format!("{AV} -c:v mpeg1video -bf 2 -g 15 -c:a mp2"),
            plays(4.0, 30.0, true),
        ),
        case(
            "mpeg2_ts",
            "mpeg2.ts",
            format!("{AV} -c:v mpeg2video -bf 2 -g 12 -c:a mp2"),
            plays(4.0, 30.0, true),
        ),
        // Frame rates, in several containers.
        rate("fps_23.976", "ntsc_film.mkv", "24000/1001", 23.976),
        rate("fps_29.97", "ntsc.mp4", "30000/1001", 29.97),
        rate("fps_25", "pal.mov", "25", 25.0),
        rate("fps_30", "thirty.mp4", "30", 30.0),
        rate("fps_60", "sixty.ts", "60", 60.0),
        // Variable frame rate: 1.5 s at 30 fps, then 12 fps.
        case(
            "vfr",
            "vfr.mkv",
            format!("{X264} -vf setpts='if(lt(N,45),N/30,1.5+(N-45)/12)/TB' -fps_mode vfr"),
            plays(4.0, 12.0, true),
        ),
        // GOP structures.
        case(
            "open_gop",
            "open_gop.mp4",
            format!("{AV} -c:v libx264 -preset fast -bf 3 -x264-params keyint=40:open-gop=1"),
            plays(4.0, 30.0, true),
        ),
        case(
            "b_pyramid",
            "b_pyramid.mp4",
            format!("{AV} -c:v libx264 -preset fast -bf 3 -x264-params b-pyramid=normal:keyint=60"),
            plays(4.0, 30.0, true),
        ),
        // Interlaced, top field first (two frames woven into one: 15 a second).
        case(
            "interlaced_mpeg2",
            "interlaced.ts",
            format!(
                "{AV} -vf tinterlace=interleave_top,setfield=tff -c:v mpeg2video \
                 -flags +ilme+ildct -top 1 -g 12 -c:a mp2"
            ),
            plays(4.0, 15.0, true),
        ),
        case(
            "interlaced_h264",
            "interlaced.mkv",
            format!(
                "{X264} -vf tinterlace=interleave_top,setfield=tff -flags +ilme+ildct \
                 -x264-params tff=1"
            ),
            plays(4.0, 15.0, true),
        ),
        // A display rotation is honoured: renditions are upright.
        rotated("rotate_90", "rotate_90.mp4", "-metadata:s:v:0 rotate=90", true),
        rotated("rotate_180", "rotate_180.mp4", "-metadata:s:v:0 rotate=180", false),
        rotated("rotate_270", "rotate_270.mp4", "-metadata:s:v:0 rotate=270", true),
        Case {
            expect: Expect::Refused("unsupported: the video is to be shown turned by 45°"),
            ..rotated("rotate_45", "rotate_45.mp4", "-metadata:s:v:0 rotate=45", false)
        },
        // Odd sizes (testsrc2 itself rounds them to even): 4:4:4 FFV1 (re-encoded) and 4:4:4 H.264
        // (copied).
        case(
            "odd_size_ffv1",
            "odd_ffv1.mkv",
            "-f lavfi -i testsrc2=s=160x120:r=25 -f lavfi -i sine=f=440:r=48000 -t 4 \
             -vf scale=161:97,setsar=1 -pix_fmt yuv444p -c:v ffv1 -c:a pcm_s16le"
                .into(),
            plays(4.0, 25.0, true),
        ),
        case(
            "odd_size_h264_444",
            "odd_444.mp4",
            "-f lavfi -i testsrc2=s=160x120:r=25 -f lavfi -i sine=f=440:r=48000 -t 4 \
             -vf scale=161:97,setsar=1 -c:v libx264 -preset ultrafast -pix_fmt yuv444p -g 50 \
             -c:a aac"
                .into(),
            plays(4.0, 25.0, true),
        ),
        // Audio: none, starting late, outlasting the video.
        case(
            "no_audio",
            "no_audio.mp4",
            "-f lavfi -i testsrc2=s=160x120:r=30 -t 4 -c:v libx264 -preset ultrafast -g 60".into(),
            plays(4.0, 30.0, false),
        ),
        case(
            "audio_late_adelay",
            "audio_late.mp4",
            format!("{X264} -g 60 -af adelay=1500:all=1"),
            plays(4.0, 30.0, true),
        ),
        case(
            "audio_late_itsoffset",
            "audio_itsoffset.mkv",
            "-f lavfi -i testsrc2=s=160x120:r=30 -itsoffset 1.2 -f lavfi -i sine=f=440:r=48000 \
             -t 4 -c:v libx264 -preset ultrafast -g 60 -c:a aac -shortest"
                .into(),
            plays(4.0, 30.0, true),
        ),
        case(
            "audio_outlasts_video",
            "audio_longer.mp4",
            "-f lavfi -i testsrc2=s=160x120:r=30:d=4 -f lavfi -i sine=f=440:r=48000:d=6 \
             -c:v libx264 -preset ultrafast -g 60 -c:a aac"
                .into(),
            plays(4.0, 30.0, true),
        ),
        // Negative start times: timestamps shifted below zero, and an edit list that hides the
        // first half second of a GOP.
        case(
            "negative_start_mkv",
            "negative.mkv",
            format!("{X264} -g 60 -output_ts_offset -1"),
            plays(4.0, 30.0, true),
        ),
        case(
            "negative_start_mp4",
            "negative.mp4",
            format!("{X264} -g 60 -output_ts_offset -1"),
            // MP4 keeps times from 0 on: its edit list hides the first second.
            plays(3.0, 30.0, true),
        ),
        Case {
            name: "edit_list",
            file: "edit_list.mp4",
            make: format!("{X264} -g 45 -bf 2"),
            then: Some(("-ss 0.5", "")),
            expect: plays(3.5, 30.0, true),
        },
        // 4:2:2 and 10-bit.
        case(
            "h264_422",
            "h264_422.mp4",
            format!("{X264} -pix_fmt yuv422p -g 60"),
            plays(4.0, 30.0, true),
        ),
        case(
            "h264_10bit",
            "h264_10bit.mp4",
            format!("{X264} -pix_fmt yuv420p10le -g 60"),
            plays(4.0, 30.0, true),
        ),
        case(
            "hevc_10bit",
            "hevc_10bit.mp4",
            format!(
                "{AV} -c:v libx265 -preset ultrafast -pix_fmt yuv420p10le \
                 -x265-params log-level=error:keyint=60 -c:a aac"
            ),
            plays(4.0, 30.0, true),
        ),
        case(
            "mpeg2_422",
            "mpeg2_422.ts",
            format!("{AV} -c:v mpeg2video -pix_fmt yuv422p -g 15 -c:a mp2"),
            plays(4.0, 30.0, true),
        ),
    ]
}

/// Runs ffmpeg quietly with `args`; the error is what it said.
fn ffmpeg(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y"])
        .args(args)
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("ffmpeg {args:?}: {}", String::from_utf8_lossy(&out.stderr)))
    }
}

/// Makes the case's input in `dir`.
fn make(case: &Case, dir: &Path) -> Result<PathBuf, String> {
    let path = dir.join(case.file);
    let first = match case.then {
        Some(_) => dir.join(format!("first_{}", case.file)),
        None => path.clone(),
    };
    let mut args: Vec<&str> = case.make.split_whitespace().collect();
    args.push(first.to_str().unwrap());
    ffmpeg(&args)?;
    if let Some((input_args, output_args)) = case.then {
        let mut args: Vec<&str> = input_args.split_whitespace().collect();
        args.extend(["-i", first.to_str().unwrap(), "-map", "0", "-c", "copy"]);
        args.extend(output_args.split_whitespace());
        args.push(path.to_str().unwrap());
        ffmpeg(&args)?;
    }
    Ok(path)
}

/// Only the smallest rung, quickly: the inputs are under test, not x264.
fn config() -> Config {
    Config {
        heights: vec![96],
        workers: 1,
        encode: EncodeSettings { preset: "ultrafast".into(), ..Default::default() },
        ..Default::default()
    }
}

/// Makes and ladders one case; what came of it, or what is wrong.
fn run(case: &Case, dir: &Path) -> Result<String, String> {
    let source = make(case, dir).map_err(|e| format!("cannot make the input: {e}"))?;
    let out = dir.join(format!("{}.ladder", case.name));
    let result = ladder::run(ff(), &source, &out, &config(), &mut |_| {});
    match (&case.expect, result) {
        (Expect::Refused(reason), Err(e)) => {
            let text = e.to_string();
            if matches!(e, Error::Ffmpeg { .. })
                || !text.contains(case.file)
                || !text.contains(reason)
                || text.contains('\n')
            {
                return Err(format!("refused, but not as expected: {text}"));
            }
            if out.exists() {
                return Err(format!("refused, yet {} exists", out.display()));
            }
            Ok(format!("refused: {text}"))
        }
        (Expect::Refused(_), Ok(_)) => Err("laddered; it should have been refused".into()),
        (Expect::Plays(_), Err(e)) => Err(format!("failed: {e}")),
        (Expect::Plays(expect), Ok(manifest)) => check_plays(&source, &out, &manifest, expect),
    }
}

/// Checks that every rendition of the ladder in `out` plays `source` whole; a summary, or what
/// is wrong.
fn check_plays(
    source: &Path,
    out: &Path,
    manifest: &Manifest,
    expect: &Playing,
) -> Result<String, String> {
    let (frames, span) = shown(source);
    let slack = 2.0 / expect.min_fps + 0.01;
    if (span - expect.seconds).abs() > slack {
        return Err(format!("the input shows {span:.3} s, not {} s: a bad case", expect.seconds));
    }
    let mut summary = String::new();
    if manifest.renditions.is_empty() {
        return Err("no rendition".into());
    }
    for r in &manifest.renditions {
        let (name, width, height) = (&r.rendition.name, r.rendition.width, r.rendition.height);
        if (height > width) != expect.portrait {
            return Err(format!("{name} is {width}x{height}: not upright"));
        }
        let dir = out.join(name);
        let mut facts = Vec::new();
        for (i, segment) in r.segments.iter().enumerate() {
            let path = dir.join(&segment.file);
            let errors = decode_errors(&path);
            if !errors.is_empty() {
                return Err(format!("{name} segment {i} does not decode: {errors}"));
            }
            let f = segment_facts(&path);
            if !f.starts_with_keyframe || (f.width, f.height) != (width, height) {
                return Err(format!("{name} segment {i}: {f:?}"));
            }
            if has_audio(&path) != expect.audio {
                return Err(format!("{name} segment {i}: audio {}", !expect.audio));
            }
            facts.push(f);
        }
        let (first, last) = (&facts[0], &facts[facts.len() - 1]);
        let played = last.end - first.start;
        let listed: f64 = r.segments.iter().map(|s| s.duration).sum();
        if (played - span).abs() > slack || (listed - span).abs() > slack {
            return Err(format!(
                "{name}: {played:.3} s played, {listed:.3} s listed, the source shows {span:.3} s"
            ));
        }
        let playlist = out.join(&r.playlist);
        let packets = video_packets(&playlist);
        if packets != frames {
            return Err(format!("{name}: {packets} frames, the source decodes to {frames}"));
        }
        if expect.audio {
            let (start, end) = audio_span(&playlist);
            if start > first.start + 0.05 || end < last.end - 0.05 {
                return Err(format!(
                    "{name}: audio from {start:.3} to {end:.3} s, video from {:.3} to {:.3} s",
                    first.start, last.end
                ));
            }
        }
        let psnr = first_frame_psnr(&dir.join(&r.segments[0].file), source, width, height);
        if psnr < 25.0 {
            return Err(format!("{name}: its first frame is not the source's ({psnr:.1} dB)"));
        }
        summary = format!(
            "ladders: {}, {} segment(s), {width}x{height}, {played:.2} s, {packets} frames{}, \
             first frame {psnr:.0} dB",
            match manifest.segmenting {
                Mode::Copy => "copied",
                Mode::Mezzanine => "mezzanine",
            },
            r.segments.len(),
            if expect.audio { ", audio" } else { "" },
        );
    }
    if out.join(".source").exists() {
        return Err("the source segments were left behind".into());
    }
    Ok(summary)
}

fn ffprobe(args: &[&str], path: &Path) -> String {
    let out = Command::new("ffprobe").args(["-v", "error"]).args(args).arg(path).output().unwrap();
    assert!(out.status.success(), "ffprobe {args:?} {}", path.display());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What ffmpeg shows of `path`'s first video stream: how many frames (an edit list's hidden
/// ones not), and the time from the first one's start to the last one's end.
fn shown(path: &Path) -> (u64, f64) {
    let args = ["-select_streams", "v:0", "-of", "csv=p=0", "-show_entries"];
    let entries = "frame=best_effort_timestamp_time,pkt_duration_time";
    let text = ffprobe(&[&args[..], &[entries]].concat(), path);
    let (mut count, mut start, mut end) = (0, f64::INFINITY, f64::NEG_INFINITY);
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        count += 1;
        let mut fields = line.split(',').map(|f| f.parse::<f64>().ok());
        if let (Some(Some(t)), duration) = (fields.next(), fields.next().flatten()) {
            start = start.min(t);
            end = end.max(t + duration.unwrap_or(0.0));
        }
    }
    (count, end - start)
}

fn has_audio(path: &Path) -> bool {
    let text = ffprobe(&["-select_streams", "a", "-show_entries", "stream=codec_name"], path);
    text.contains("codec_name")
}

/// From the first audio packet's time to the last one's end.
fn audio_span(path: &Path) -> (f64, f64) {
    let args = ["-select_streams", "a:0", "-of", "csv=p=0", "-show_entries"];
    let text = ffprobe(&[&args[..], &["packet=pts_time,duration_time"]].concat(), path);
    let packets: Vec<(f64, f64)> = text
        .lines()
        .filter_map(|l| {
            let (pts, duration) = l.split_once(',')?;
            Some((pts.parse().ok()?, duration.trim_end_matches(',').parse().unwrap_or(0.0)))
        })
        .collect();
    let start = packets.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
    let end = packets.iter().map(|p| p.0 + p.1).fold(f64::NEG_INFINITY, f64::max);
    (start, end)
}

/// The PSNR of a rendition's first frame against the source's, which ffmpeg shows turned as its
/// display matrix says and scaled to the rendition's size.
fn first_frame_psnr(rendition: &Path, source: &Path, width: u32, height: u32) -> f64 {
    let graph = format!(
        "[0:v]setpts=PTS-STARTPTS,format=yuv420p[a];\
         [1:v]setpts=PTS-STARTPTS,scale={width}:{height},setsar=1,format=yuv420p[b];[a][b]psnr"
    );
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "info", "-i"])
        .arg(rendition)
        .arg("-i")
        .arg(source)
        .args(["-filter_complex", &graph, "-frames:v", "1", "-f", "null", "-"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    let average = text.lines().rev().find_map(|l| l.split_once(" average:")).map(|(_, rest)| rest);
    let value = average.and_then(|a| a.split_whitespace().next()).unwrap_or("0");
    value.parse().unwrap_or(0.0)
}

#[test]
fn awkward_inputs_ladder_whole_or_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cases = cases();
    let next = AtomicUsize::new(0);
    let results = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(case) = cases.get(i) else { break };
                    let result = run(case, dir.path());
                    results.lock().unwrap().push((i, result));
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|r| r.0);
    let mut failures = Vec::new();
    for (i, result) in &results {
        let name = cases[*i].name;
        match result {
            Ok(summary) => println!("{name:22} {summary}"),
            Err(problem) => {
                println!("{name:22} FAILED: {problem}");
                failures.push(format!("{name}: {problem}"));
            }
        }
    }
    assert_eq!(results.len(), cases.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The clip a new user tried first: MPEG-1 in an MPEG program stream, 160x120 at 30 fps, mono
/// MP2, B-frames, 19 keyframes in 9.2 s. The program stream times only the first frame that
/// starts in each PES packet, and the P-frames left untimed were put at their decode times, a
/// frame interval early: the mezzanine was planned on frame times the decoder never shows and
/// its cut check failed (`segment 3 starts 2.000 s after segment 2, planned 2.033 s`).
#[test]
fn mpeg1_program_stream_with_untimed_frames_ladders_whole() {
    let dir = tempfile::tempdir().unwrap();
    let playing = Playing { seconds: 9.2, min_fps: 30.0, audio: true, portrait: false };
    let case = Case {
        name: "mpeg1_ps_9s",
        file: "mpeg1_ps_9s.mpg",
        make: "-f lavfi -i testsrc2=s=160x120:r=30 -f lavfi -i sine=f=440:r=44100 -t 9.2 \
               -c:v mpeg1video -g 15 -bf 2 -b:v 400k -c:a mp2 -ac 1 -f mpeg"
            .into(),
        then: None,
        expect: Expect::Plays(playing),
    };
    let source = make(&case, dir.path()).unwrap();
    let info = kinema_media::probe(ff(), &source).unwrap();
    assert_eq!(info.video.keyframe_times.len(), 19);
    assert!(
        info.video.packets.iter().any(|p| p.pts_inferred),
        "the clip must have frames its container leaves untimed"
    );
    // The probe's frame times are the ones ffmpeg's decoder shows, each once.
    let args = ["-select_streams", "v:0", "-of", "csv=p=0", "-show_entries"];
    let text = ffprobe(&[&args[..], &["frame=best_effort_timestamp_time"]].concat(), &source);
    let shown: Vec<f64> = text
        .lines()
        .filter_map(|l| l.split(',').next()?.trim().parse::<f64>().ok())
        .map(|t| t - info.start_time)
        .collect();
    let probed = info.video.frame_times();
    assert!(shown.len() + 1 >= probed.len(), "{} shown, {} probed", shown.len(), probed.len());
    for t in &shown {
        assert!(probed.iter().any(|p| (p - t).abs() < 1e-3), "no frame probed at {t}: {probed:?}");
    }
    assert!(probed.windows(2).all(|w| w[1] - w[0] > 0.03), "{probed:?}");

    let out = dir.path().join("ladder");
    let manifest = ladder::run(ff(), &source, &out, &config(), &mut |_| {}).unwrap();
    assert_eq!(manifest.segmenting, Mode::Mezzanine);
    assert_eq!(manifest.segment_durations.len(), 5);
    let summary = check_plays(&source, &out, &manifest, &playing).unwrap();
    println!("{summary}");
}
