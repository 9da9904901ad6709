//! The `kinema` binary as a user runs it.

#![allow(clippy::unwrap_used)] // test helpers fail loudly

use std::path::Path;
use std::process::{Command, Output};

mod browser;
mod chain;
mod market;
mod relay;

/// Held by the tests that fill the 2 cores CI has (the market's transcodes, a browser playing a
/// video, browsers opening WebRTC connections to each other): two of them at once starve each other into stalls and missed deadlines that say
/// nothing about the code.
static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn kinema(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kinema")).args(args).output().unwrap()
}

use kinema_test_support::corpus;

fn ladder(input: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "media".as_ref(),
        "ladder".as_ref(),
        input.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
    ];
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    kinema(&args)
}

/// A failed run: non-zero exit, one line on stderr naming `name`, nothing left in `dir`
/// but what was there before.
fn check_failure(output: &Output, name: &str, dir: &Path, before: usize) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].starts_with("kinema: error: "), "{stderr}");
    assert!(lines[0].contains(name), "{stderr} does not name {name}");
    assert!(output.stdout.is_empty());
    assert_eq!(std::fs::read_dir(dir).unwrap().count(), before, "the failed run left files behind");
}

#[test]
fn bad_inputs_fail_with_one_line_and_no_output() {
    let tmp = tempfile::tempdir().unwrap();
    let inputs = tmp.path().join("inputs");
    std::fs::create_dir(&inputs).unwrap();
    std::fs::write(inputs.join("empty.mp4"), b"").unwrap();
    std::fs::write(inputs.join("readme.txt"), "not a video\n".repeat(50)).unwrap();
    let bunny = std::fs::read(corpus("bigbuckbunny.mp4")).unwrap();
    std::fs::write(inputs.join("cut.mp4"), &bunny[..bunny.len() / 2]).unwrap();
    let tone = inputs.join("tone.m4a");
    let made = Command::new("ffmpeg")
        .args(["-v", "error", "-f", "lavfi", "-i", "sine=d=1", "-c:a", "aac"])
        .arg(&tone)
        .status()
        .unwrap();
    assert!(made.success());
    let subdir = inputs.join("a-directory");
    std::fs::create_dir(&subdir).unwrap();

    let outputs = tmp.path().join("outputs");
    std::fs::create_dir(&outputs).unwrap();
    let cases = [
        ("empty.mp4", "empty"),
        ("readme.txt", "not a media file"),
        ("cut.mp4", "truncated"),
        ("tone.m4a", "no video stream"),
        ("a-directory", "directory"),
        ("missing.mp4", "no such file"),
    ];
    for (name, reason) in cases {
        let out = outputs.join(format!("{name}.ladder"));
        let output = ladder(&inputs.join(name), &out, &[]);
        check_failure(&output, name, &outputs, 0);
        assert!(String::from_utf8_lossy(&output.stderr).contains(reason), "{name}: {output:?}");
    }
}

#[test]
fn bad_settings_and_an_occupied_output_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let clip = corpus("carphone_pristine.mp4");
    let out = tmp.path().join("out");
    check_failure(&ladder(&clip, &out, &["--renditions", "720x"]), "720x", tmp.path(), 0);
    check_failure(&ladder(&clip, &out, &["--preset", "warp"]), "warp", tmp.path(), 0);
    check_failure(
        &ladder(&clip, &out, &["--segment-seconds", "0"]),
        "segment-seconds",
        tmp.path(),
        0,
    );

    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("keep.txt"), "mine").unwrap();
    check_failure(&ladder(&clip, &out, &[]), "out", tmp.path(), 1);
    assert_eq!(std::fs::read_to_string(out.join("keep.txt")).unwrap(), "mine");
}

#[test]
fn probe_prints_text_or_one_json_object() {
    let clip = corpus("bigbuckbunny.mp4");
    let text = kinema(&["media".as_ref(), "probe".as_ref(), clip.as_os_str()]);
    assert!(text.status.success());
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("1280x720") && text.contains("aac 48000 Hz, 6 channels"), "{text}");

    let json = kinema(&["media".as_ref(), "probe".as_ref(), clip.as_os_str(), "--json".as_ref()]);
    assert!(json.status.success());
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(value["video"]["width"], 1280);
    assert_eq!(value["video"]["frame_rate"], "25/1");
    assert_eq!(value["video"]["frame_count"], 132);
    assert_eq!(value["audio"]["channels"], 6);
}

#[test]
fn ladder_writes_hls_and_logs_plain_lines_off_a_terminal() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("nested/ladder");
    let output = ladder(
        &corpus("bikes.mp4"),
        &out,
        &["--renditions", "240p", "--preset", "veryfast", "--workers", "2"],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("kinema: 5 segments x 240p"), "{stderr}");
    assert_eq!(stderr.matches("kinema: transcoded segment").count(), 5, "{stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("master.m3u8: 1 renditions x 5 segments"), "{stdout}");
    let manifest: kinema_media::Manifest =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest.renditions[0].segments.len(), 5);
    let master = std::fs::read(out.join("master.m3u8")).unwrap();
    assert!(matches!(
        m3u8_rs::parse_playlist_res(&master),
        Ok(m3u8_rs::Playlist::MasterPlaylist(_))
    ));
}

#[test]
fn hw_reports_every_api() {
    let output = kinema(&["media".as_ref(), "hw".as_ref(), "--json".as_ref()]);
    assert!(output.status.success());
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let names: Vec<&str> =
        value["accels"].as_array().unwrap().iter().map(|a| a["accel"].as_str().unwrap()).collect();
    assert_eq!(names, ["cuda", "vaapi", "qsv"]);
}

#[test]
fn verify_prints_one_json_verdict_or_a_one_line_error() {
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("source.ts");
    let rendition = tmp.path().join("rendition.ts");
    let run = |args: &[&str], out: &Path| {
        let status = Command::new("ffmpeg")
            .args(["-v", "error", "-y"])
            .args(args)
            .arg(out)
            .status()
            .unwrap();
        assert!(status.success());
    };
    let clip = corpus("bigbuckbunny.mp4");
    let clip = clip.to_str().unwrap();
    run(
        &[
            "-i",
            clip,
            "-t",
            "2",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-crf",
            "16",
            "-c:a",
            "aac",
            "-ac",
            "2",
            "-f",
            "mpegts",
        ],
        &source,
    );
    let src = source.to_str().unwrap();
    let honest = [
        "-copyts",
        "-i",
        src,
        "-map",
        "0",
        "-vf",
        "scale=640:360",
        "-c:v",
        "libx264",
        "-preset",
        "medium",
        "-c:a",
        "copy",
        "-f",
        "mpegts",
        "-mpegts_copyts",
        "1",
    ];
    run(&honest, &rendition);
    let verify_with = |expect: &str, extra: &[&str]| {
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "media".as_ref(),
            "verify".as_ref(),
            "--source".as_ref(),
            source.as_os_str(),
            "--rendition".as_ref(),
            rendition.as_os_str(),
            "--expect".as_ref(),
            expect.as_ref(),
            "--json".as_ref(),
        ];
        args.extend(extra.iter().map(|a| std::ffi::OsStr::new(*a)));
        kinema(&args)
    };
    let verify = |expect: &str| verify_with(expect, &["--audio-copy"]);
    let pass = verify("640x360");
    assert!(pass.status.success(), "{pass:?}");
    let report: serde_json::Value = serde_json::from_slice(&pass.stdout).unwrap();
    assert_eq!(report["verdict"], "pass", "{report}");
    assert!(report["scores"]["psnr_y"].as_f64().unwrap() > 30.0);
    assert_eq!(report["seed"].as_str().unwrap().len(), 64, "{report}");

    // A seed (a block hash) fixes the sampled frames; one that is not hex is refused.
    let seeded = |seed: &str| verify_with("640x360", &["--seed", seed]);
    let frames = |out: &std::process::Output| -> Vec<u64> {
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        report["scores"]["per_pair"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["frame"].as_u64().unwrap())
            .collect()
    };
    let hash = "5e".repeat(32);
    assert_eq!(frames(&seeded(&hash)), frames(&seeded(&hash)));
    assert_eq!(frames(&seeded(&hash)).len(), 10);
    check_failure(&seeded("not-hex"), "seed", tmp.path(), 2);

    // A verdict either way exits 0; this one fails on size.
    let fail = verify("854x480");
    assert!(fail.status.success());
    let report: serde_json::Value = serde_json::from_slice(&fail.stdout).unwrap();
    assert_eq!(report["verdict"], "fail");
    assert_eq!(report["reasons"][0]["reason"], "resolution");

    // Several renditions of one source in one pass: a verdict each, in their order.
    let r = rendition.as_os_str();
    let both = kinema(&[
        "media".as_ref(),
        "verify".as_ref(),
        "--source".as_ref(),
        source.as_os_str(),
        "--rendition".as_ref(),
        r,
        "--expect".as_ref(),
        "640x360".as_ref(),
        "--rendition".as_ref(),
        r,
        "--expect".as_ref(),
        "854x480".as_ref(),
        "--audio-copy".as_ref(),
        "--json".as_ref(),
    ]);
    assert!(both.status.success(), "{both:?}");
    let reports: serde_json::Value = serde_json::from_slice(&both.stdout).unwrap();
    let verdicts: Vec<&str> =
        reports.as_array().unwrap().iter().map(|r| r["verdict"].as_str().unwrap()).collect();
    assert_eq!(verdicts, ["pass", "fail"], "{reports}");
    // One --expect per --rendition.
    let unpaired = kinema(&[
        "media".as_ref(),
        "verify".as_ref(),
        "--source".as_ref(),
        source.as_os_str(),
        "--rendition".as_ref(),
        r,
        "--rendition".as_ref(),
        r,
        "--expect".as_ref(),
        "640x360".as_ref(),
    ]);
    check_failure(&unpaired, "--expect", tmp.path(), 2);

    // No verdict can be reached: non-zero exit, one line.
    let bad = verify("640x");
    check_failure(&bad, "640x", tmp.path(), 2);
    std::fs::write(&rendition, b"garbage").unwrap();
    let unreadable = verify("640x360");
    check_failure(&unreadable, "rendition.ts", tmp.path(), 2);
}

#[test]
fn wallet_new_writes_a_private_key_file_once_and_prints_its_address() {
    use std::os::unix::fs::PermissionsExt;

    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("me.key");
    let out = kinema(&["wallet".as_ref(), "new".as_ref(), "--out".as_ref(), key.as_os_str()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let address = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert_eq!(address.len(), 40);
    assert!(address.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    let shown = kinema(&["wallet".as_ref(), "address".as_ref(), key.as_os_str()]);
    assert_eq!(String::from_utf8(shown.stdout).unwrap().trim(), address);

    // Never overwritten; a file that is not a key is refused by name.
    let before = std::fs::read(&key).unwrap();
    let again = kinema(&["wallet".as_ref(), "new".as_ref(), "--out".as_ref(), key.as_os_str()]);
    assert_eq!(again.status.code(), Some(1));
    let err = String::from_utf8(again.stderr).unwrap();
    assert!(err.starts_with("kinema: error: ") && err.contains("me.key"), "{err}");
    assert_eq!(std::fs::read(&key).unwrap(), before);
    let junk = tmp.path().join("junk.key");
    std::fs::write(&junk, "hello").unwrap();
    let bad = kinema(&["wallet".as_ref(), "address".as_ref(), junk.as_os_str()]);
    let err = String::from_utf8(bad.stderr).unwrap();
    assert!(err.contains("junk.key") && err.contains("not a Kinema key file"), "{err}");
}

#[test]
fn watermark_commands_answer_in_json_and_refuse_bad_input_in_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let bunny = corpus("bigbuckbunny.mp4");
    let out = dir.join("marked.mp4");
    let os = |s: &'static str| std::ffi::OsStr::new(s);
    let embed = |id: &'static str| {
        kinema(&[
            os("media"),
            os("watermark"),
            os("embed"),
            bunny.as_os_str(),
            os("--id"),
            os(id),
            os("--out"),
            out.as_os_str(),
        ])
    };
    check_failure(&embed("12345"), "--id", dir, 0);
    check_failure(&embed("xyz0123456789abc"), "16 hex digits", dir, 0);

    let detect = |file: &Path, extra: &[&'static str]| {
        let mut args = vec![os("media"), os("watermark"), os("detect"), file.as_os_str()];
        args.extend(extra.iter().map(|s| os(s)));
        kinema(&args)
    };
    let unmarked = detect(&bunny, &["--json"]);
    assert!(unmarked.status.success(), "{}", String::from_utf8_lossy(&unmarked.stderr));
    let answer: serde_json::Value = serde_json::from_slice(&unmarked.stdout).unwrap();
    assert_eq!(
        answer,
        serde_json::json!({"found": false, "id": null, "bit_errors": null, "frames": 132})
    );
    check_failure(&detect(&bunny, &["--from", "5.2"]), "too short", dir, 0);
    let text = dir.join("notes.txt");
    std::fs::write(&text, "not a video\n".repeat(50)).unwrap();
    check_failure(&detect(&text, &[]), "notes.txt", dir, 1);
}
