//! The watermark on a real clip: marked, re-encoded smaller, read back; bad input refused.

use std::path::Path;
use std::process::Command;

use kinema_media::watermark::{self, EmbedSettings, Excerpt, Id};
use kinema_media::{Error, probe};

use crate::support::{corpus, ff};

fn ffmpeg(args: &[&str], out: &Path) {
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y"])
        .args(args)
        .arg(out)
        .status()
        .unwrap();
    assert!(status.success(), "ffmpeg {args:?}");
}

#[test]
fn a_marked_clip_keeps_its_id_through_a_smaller_re_encode_and_an_unmarked_one_claims_none() {
    let dir = tempfile::tempdir().unwrap();
    let trailer = corpus("trailer_bbb.mp4");
    let source = dir.path().join("source.mp4");
    // 8 s of the 720p trailer with its audio.
    ffmpeg(&["-ss", "20", "-t", "8", "-i", trailer.to_str().unwrap(), "-c:v", "libx264"], &source);
    let id: Id = "00c0ffee5eed1d00".parse().unwrap();
    let marked = dir.path().join("marked.mp4");
    let mut seen = 0;
    let done =
        watermark::embed(ff(), &source, id, &marked, &EmbedSettings::default(), &mut |n, _| {
            seen = n
        })
        .unwrap();
    let (before, after) = (probe(ff(), &source).unwrap(), probe(ff(), &marked).unwrap());
    assert_eq!(done.frames, before.video.frame_count);
    assert_eq!(seen, done.frames);
    assert_eq!(after.video.frame_count, before.video.frame_count, "frame count kept");
    assert_eq!((after.video.width, after.video.height), (1280, 720), "size kept");
    assert_eq!(after.video.frame_rate, before.video.frame_rate, "frame rate kept");
    assert!(after.audio.is_some(), "audio carried over");

    let read = |path: &Path| watermark::detect(ff(), path, Excerpt::default()).unwrap();
    let found = read(&marked);
    assert_eq!(found.id, Some(id), "{:?} {}", found.bit_errors, found.sync);

    // A copier's copy: half the size, x264 CRF 28; the same copy of the unmarked source claims
    // nothing.
    let half_size_copy = |from: &Path, name: &str| {
        let copy = dir.path().join(name);
        let from = from.to_str().unwrap();
        let x264 = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "28"];
        ffmpeg(&[&["-i", from, "-vf", "scale=640:-2"][..], &x264].concat(), &copy);
        read(&copy)
    };
    let found = half_size_copy(&marked, "copy.mp4");
    assert_eq!(found.id, Some(id), "{:?} {}", found.bit_errors, found.sync);
    let found = half_size_copy(&source, "plain.mp4");
    assert_eq!(found.id, None, "sync {} errors {:?}", found.sync, found.bit_errors);
}

#[test]
fn bad_input_is_a_clear_error_never_a_claim() {
    assert!("00c0ffee".parse::<Id>().unwrap_err().contains("16 hex digits"));
    assert!("00c0ffee5eed1d0g".parse::<Id>().is_err());
    assert_eq!("00C0FFEE5EED1D00".parse::<Id>().unwrap().to_string(), "00c0ffee5eed1d00");

    let dir = tempfile::tempdir().unwrap();
    let audio = dir.path().join("audio.m4a");
    ffmpeg(&["-f", "lavfi", "-i", "sine=duration=2", "-c:a", "aac"], &audio);
    let id = Id(1);
    let out = dir.path().join("out.mp4");
    let err = watermark::embed(ff(), &audio, id, &out, &EmbedSettings::default(), &mut |_, _| {})
        .unwrap_err();
    assert!(matches!(err, Error::NoVideo { .. }), "{err}");
    let err = watermark::detect(ff(), &audio, Excerpt::default()).unwrap_err();
    assert!(matches!(err, Error::NoVideo { .. }), "{err}");

    // An existing output is refused and left as it was.
    let existing = dir.path().join("existing.mp4");
    std::fs::write(&existing, b"someone's file").unwrap();
    let clip = corpus("carphone_pristine.mp4");
    let err =
        watermark::embed(ff(), &clip, id, &existing, &EmbedSettings::default(), &mut |_, _| {})
            .unwrap_err();
    assert!(matches!(err, Error::FileExists { .. }), "{err}");
    assert_eq!(std::fs::read(&existing).unwrap(), b"someone's file");

    // From 5.1 s the 5.3 s clip has 5 frames left: too few to read an ID from.
    let clip = corpus("bigbuckbunny.mp4");
    let short = Excerpt { from: 5.1, seconds: 10.0 };
    let err = watermark::detect(ff(), &clip, short).unwrap_err();
    assert!(matches!(err, Error::TooShort { .. }), "{err}");
    assert!(err.to_string().contains("at least 10"), "{err}");
    let err = watermark::detect(ff(), &clip, Excerpt { from: -1.0, seconds: 10.0 }).unwrap_err();
    assert!(err.to_string().contains("from"), "{err}");
}
