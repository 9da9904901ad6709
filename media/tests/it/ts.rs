//! Kinema's MPEG-TS reader against ffprobe, on segments of every corpus clip.

use std::path::Path;
use std::process::Command;

use kinema_media::probe::probe_segment;
use kinema_media::ts;

use crate::support::{corpus, ff};

const CLIPS: &[&str] = &[
    "bigbuckbunny.mp4",
    "bikes.mp4",
    "carphone_distorted.mp4",
    "carphone_pristine.mp4",
    "cityCC0.mpg",
    "trailer_bbb.mp4",
    "tree.avi",
    "vtest.avi",
];

fn ffmpeg(args: &[&str], input: &Path, out: &Path) {
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-ss", "1", "-t", "2", "-i"])
        .arg(input)
        .args(args)
        .args(["-f", "mpegts"])
        .arg(out)
        .status()
        .unwrap();
    assert!(status.success(), "{args:?} on {}", input.display());
}

/// Frame times on the file's own clock, frame size, aspect ratio and the audio stream agree
/// with ffprobe's for x264 encodes of every clip, for a stream copy of an H.264 clip (another
/// encoder's stream, with its SEI and aspect ratio), and for a 4:2:2 High profile stream.
#[test]
fn the_reader_agrees_with_ffprobe_on_every_clip() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cases = Vec::new();
    for clip in CLIPS {
        let out = tmp.path().join(format!("{clip}.ts"));
        // Even sizes for x264 (cityCC0 is 720x405), its aspect ratio kept.
        let even = "crop=trunc(iw/2)*2:trunc(ih/2)*2";
        let args = ["-vf", even, "-c:v", "libx264", "-preset", "veryfast", "-c:a", "aac"];
        ffmpeg(&args, &corpus(clip), &out);
        cases.push(out);
    }
    let copy = tmp.path().join("copy.ts");
    ffmpeg(&["-c", "copy"], &corpus("bigbuckbunny.mp4"), &copy);
    cases.push(copy);
    let high422 = tmp.path().join("422.ts");
    let args = ["-an", "-c:v", "libx264", "-pix_fmt", "yuv422p", "-vf", "scale=720:406,setsar=4/3"];
    ffmpeg(&args, &corpus("bikes.mp4"), &high422);
    cases.push(high422);

    for path in &cases {
        let bytes = std::fs::read(path).unwrap();
        let ours = ts::read(path, &bytes).unwrap().expect("an MPEG-TS segment with H.264");
        let (theirs, _) = probe_segment(ff(), path).unwrap();
        let name = path.display();
        let (o, t) = (&ours.info.video, &theirs.video);
        assert_eq!((o.width, o.height), (t.width, t.height), "{name}");
        assert_eq!(o.sample_aspect_ratio, t.sample_aspect_ratio, "{name}");
        assert_eq!(o.frame_count, t.frame_count, "{name}");
        assert_eq!(o.profile, t.profile, "{name}");
        assert_eq!(o.pixel_format, t.pixel_format, "{name}");
        let times = |info: &kinema_media::MediaInfo| -> Vec<f64> {
            info.video.packets.iter().map(|p| p.pts + info.start_time).collect()
        };
        for (a, b) in times(&ours.info).iter().zip(times(&theirs)) {
            assert!((a - b).abs() < 1e-6, "{name}: frame at {a} against ffprobe's {b}");
        }
        let keys = |info: &kinema_media::MediaInfo| -> Vec<bool> {
            info.video.packets.iter().map(|p| p.key).collect()
        };
        assert_eq!(keys(&ours.info), keys(&theirs), "{name}");
        assert!((o.frame_interval() - t.frame_interval()).abs() < 1e-4, "{name}");
        assert_eq!(ours.info.audio.is_some(), theirs.audio.is_some(), "{name}");
        if let (Some(a), Some(b)) = (&ours.info.audio, &theirs.audio) {
            assert_eq!((a.sample_rate, a.channels), (b.sample_rate, b.channels), "{name}");
            assert!(!ours.audio.as_ref().unwrap().bytes.is_empty(), "{name}");
        }
    }
}

/// A copy of the audio keeps its bytes however it is remuxed; a re-encode does not.
#[test]
fn copied_audio_keeps_its_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("source.ts");
    ffmpeg(
        &["-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac"],
        &corpus("bigbuckbunny.mp4"),
        &source,
    );
    let remux = |name: &str, args: &[&str]| {
        let out = tmp.path().join(name);
        let status = Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-copyts", "-i"])
            .arg(&source)
            .args(args)
            .args(["-f", "mpegts", "-mpegts_copyts", "1"])
            .arg(&out)
            .status()
            .unwrap();
        assert!(status.success());
        let bytes = std::fs::read(&out).unwrap();
        ts::read(&out, &bytes).unwrap().unwrap().audio.unwrap()
    };
    let original = ts::read(&source, &std::fs::read(&source).unwrap()).unwrap().unwrap();
    let original = original.audio.unwrap();
    // Other PES packing, other PIDs: the same stream.
    let copied =
        remux("copy.ts", &["-c", "copy", "-pes_payload_size", "500", "-mpegts_start_pid", "0x300"]);
    assert_eq!(copied, original);
    let encoded = remux("aac.ts", &["-c:v", "copy", "-c:a", "aac", "-b:a", "96k"]);
    assert_ne!(encoded.bytes, original.bytes);
}
