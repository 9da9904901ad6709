//! Probing real clips and bad inputs.

use std::path::Path;
use std::process::Command;

use kinema_media::{Error, probe};

use crate::support::{corpus, ff};

/// clip, codec, width, height, frames, keyframes, audio codec
type Expected = (&'static str, &'static str, u32, u32, u64, usize, Option<&'static str>);

#[test]
fn corpus_clips_probe_to_their_published_properties() {
    let expect: &[Expected] = &[
        ("bigbuckbunny.mp4", "h264", 1280, 720, 132, 1, Some("aac")),
        ("bikes.mp4", "h264", 640, 272, 250, 6, None),
        ("carphone_pristine.mp4", "h264", 176, 144, 120, 1, None),
        ("cityCC0.mpg", "mpeg2video", 720, 405, 190, 17, None),
        ("vtest.avi", "msmpeg4v3", 768, 576, 795, 4, None),
        ("tree.avi", "cinepak", 320, 240, 68, 3, None),
        ("trailer_bbb.mp4", "h264", 1280, 720, 1323, 11, Some("mp3")),
    ];
    for &(clip, codec, w, h, frames, keys, audio) in expect {
        let info = probe(ff(), &corpus(clip)).unwrap();
        let v = &info.video;
        assert_eq!((v.codec.as_str(), v.width, v.height), (codec, w, h), "{clip}");
        assert_eq!((v.frame_count, v.keyframe_times.len()), (frames, keys), "{clip}");
        assert_eq!(info.audio.as_ref().map(|a| a.codec.as_str()), audio, "{clip}");
    }
    let bunny = probe(ff(), &corpus("bigbuckbunny.mp4")).unwrap();
    let audio = bunny.audio.unwrap();
    assert_eq!((audio.channels, audio.sample_rate), (6, 48000));
    let carphone = probe(ff(), &corpus("carphone_pristine.mp4")).unwrap();
    assert_eq!(carphone.video.frame_rate.to_string(), "30000/1001");
    assert_eq!(carphone.video.sample_aspect_ratio.to_string(), "128/117");
    // cityCC0's timestamps start at 0.54 s; Kinema's times are relative to the container start.
    let city = probe(ff(), &corpus("cityCC0.mpg")).unwrap();
    assert!((city.start_time - 0.54).abs() < 1e-6);
    assert_eq!(city.video.keyframe_times[0], 0.0);
}

fn check_error(path: &Path, matches: impl Fn(&Error) -> bool) {
    let err = probe(ff(), path).unwrap_err();
    assert!(matches(&err), "{}: unexpected {err:?}", path.display());
    let line = err.to_string();
    assert!(!line.contains('\n'), "{line}");
    assert!(line.contains(&path.display().to_string()), "{line} does not name the input");
}

#[test]
fn bad_inputs_get_their_own_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let empty = dir.join("empty.mp4");
    std::fs::write(&empty, b"").unwrap();
    let text = dir.join("notes.txt");
    std::fs::write(&text, "this is not a video\n".repeat(100)).unwrap();
    let truncated = dir.join("truncated.mp4");
    let bunny = std::fs::read(corpus("bigbuckbunny.mp4")).unwrap();
    std::fs::write(&truncated, &bunny[..bunny.len() / 3]).unwrap();
    let audio = dir.join("tone.m4a");
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-f", "lavfi", "-i", "sine=d=1", "-c:a", "aac"])
        .arg(&audio)
        .status()
        .unwrap();
    assert!(status.success());

    check_error(&dir.join("missing.mp4"), |e| matches!(e, Error::NotFound { .. }));
    check_error(dir, |e| matches!(e, Error::NotAFile { .. }));
    check_error(&empty, |e| matches!(e, Error::Empty { .. }));
    check_error(&text, |e| matches!(e, Error::NotMedia { .. }));
    check_error(&truncated, |e| matches!(e, Error::Truncated { .. }));
    check_error(&audio, |e| matches!(e, Error::NoVideo { .. }));
}

#[test]
fn a_video_stream_without_a_decoder_is_unsupported() {
    // A real MPEG-4 AVI whose FourCC is rewritten to one no ffmpeg decoder knows.
    let tmp = tempfile::tempdir().unwrap();
    let avi = tmp.path().join("unknown.avi");
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-f", "lavfi", "-i", "testsrc2=s=64x64:d=0.2", "-c:v", "mpeg4"])
        .arg(&avi)
        .status()
        .unwrap();
    assert!(status.success());
    let mut bytes = std::fs::read(&avi).unwrap();
    let mut patched = 0;
    for i in 0..bytes.len() - 4 {
        if &bytes[i..i + 4] == b"FMP4" {
            bytes[i..i + 4].copy_from_slice(b"KNMA");
            patched += 1;
        }
    }
    assert!(patched > 0);
    std::fs::write(&avi, bytes).unwrap();
    let err = probe(ff(), &avi).unwrap_err();
    assert!(matches!(err, Error::UnsupportedCodec { .. }), "{err:?}");
    assert!(err.to_string().contains("KNMA"), "{err}");
}
