//! The coarse checks on a real source segment and renditions made from it, honest and not.

use std::path::{Path, PathBuf};
use std::process::Command;

use kinema_media::plan::plan;
use kinema_media::rendition::Rendition;
use kinema_media::segment::{MezzanineSettings, Segmenter};
use kinema_media::transcode::{EncodeSettings, Task, transcode};
use kinema_media::verify::{Expect, Reason, coarse};
use kinema_media::{Error, probe};

use crate::support::{corpus, ff};

/// Segment 1 (2 s to 4 s, with 5.1 AAC turned into stereo AAC) of bigbuckbunny.mp4.
fn source_segment(dir: &Path) -> PathBuf {
    source_segments(dir).swap_remove(1)
}

/// Every segment of bigbuckbunny.mp4, as the ladder cuts it.
fn source_segments(dir: &Path) -> Vec<PathBuf> {
    let info = probe(ff(), &corpus("bigbuckbunny.mp4")).unwrap();
    let plan = plan(&info.video, 2.0);
    let mut segmenter =
        Segmenter::spawn(ff(), &info, &plan, dir, &MezzanineSettings::default(), None).unwrap();
    let mut paths = Vec::new();
    while let Some(segment) = segmenter.next_segment() {
        paths.push(segment.unwrap().path);
    }
    segmenter.finish().unwrap();
    paths
}

/// A rendition made by ffmpeg from `source` with `args` between the input and the output.
fn ffmpeg<S: AsRef<std::ffi::OsStr> + std::fmt::Debug>(
    source: &Path,
    out: &Path,
    args: &[S],
) -> PathBuf {
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-copyts", "-i"])
        .arg(source)
        .args(args)
        .arg(out)
        .status()
        .unwrap();
    assert!(status.success(), "{args:?}");
    out.to_owned()
}

/// `source` through the filter chain `vf`, its video encoded with `video` (ffmpeg's arguments),
/// its audio copied, timestamps kept, as MPEG-TS.
fn transcoded(source: &Path, out: &Path, vf: &str, video: &[&str]) -> PathBuf {
    let mut args = vec!["-map", "0:v", "-map", "0:a", "-c:a", "copy"];
    args.extend(["-fps_mode", "passthrough", "-vf", vf]);
    args.extend(video);
    args.extend(["-f", "mpegts", "-mpegts_copyts", "1"]);
    ffmpeg(source, out, &args)
}

const TS_480P: &[&str] = &[
    "-map",
    "0:v",
    "-map",
    "0:a",
    "-s",
    "854x480",
    "-c:v",
    "libx264",
    "-preset",
    "ultrafast",
    "-c:a",
    "copy",
    "-f",
    "mpegts",
    "-mpegts_copyts",
    "1",
];

/// [`TS_480P`] without the audio.
fn silent_480p() -> Vec<&'static str> {
    let pairs: Vec<&[&str]> = TS_480P.chunks(2).collect();
    pairs
        .into_iter()
        .filter(|p| !matches!(p, ["-map", "0:a"] | ["-c:a", "copy"]))
        .flatten()
        .copied()
        .collect()
}

fn expect_480p() -> Expect {
    Expect::rung(854, 480)
}

fn reasons(source: &Path, rendition: &Path, expect: &Expect) -> Vec<Reason> {
    coarse(ff(), source, rendition, expect)
        .unwrap()
        .findings
        .into_iter()
        .map(|f| f.reason)
        .collect()
}

#[test]
fn honest_renditions_pass_and_each_tampering_has_its_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let source = source_segment(dir);

    let rung = Rendition { name: "480p".into(), width: 854, height: 480, max_bitrate: 1_600_000 };
    let honest = dir.join("honest.ts");
    let task = Task { source: &source, outputs: vec![(&rung, honest.clone())] };
    transcode(
        ff(),
        &task,
        &EncodeSettings { preset: "veryfast".into(), ..Default::default() },
        None,
    )
    .unwrap();
    assert_eq!(reasons(&source, &honest, &expect_480p()), []);
    // Another encoder configuration, same job: still honest.
    let other = ffmpeg(&source, &dir.join("other.ts"), TS_480P);
    assert_eq!(reasons(&source, &other, &expect_480p()), []);

    let check = |name: &str, args: &[String], expect: Expect, reason: Reason| {
        let path = ffmpeg(&source, &dir.join(name), args);
        let found = reasons(&source, &path, &expect);
        assert!(found.contains(&reason), "{name}: expected {reason}, found {found:?}");
    };
    let strings = |args: &[&str]| -> Vec<String> { args.iter().map(|a| a.to_string()).collect() };
    let with = |extra: &[&str]| -> Vec<String> { strings(&[extra, TS_480P].concat()) };
    check("wrong-size.ts", &strings(TS_480P), Expect::rung(640, 360), Reason::Resolution);
    // TS_480P without its four MPEG-TS muxer arguments: ffmpeg picks MP4 from the name.
    check("mp4.mp4", &strings(&TS_480P[..TS_480P.len() - 4]), expect_480p(), Reason::Container);
    check(
        "mpeg4.ts",
        &strings(&[
            "-map",
            "0:v",
            "-map",
            "0:a",
            "-s",
            "854x480",
            "-c:v",
            "mpeg4",
            "-c:a",
            "copy",
            "-f",
            "mpegts",
            "-mpegts_copyts",
            "1",
        ]),
        expect_480p(),
        Reason::Codec,
    );
    check(
        "dropped.ts",
        &with(&["-vf", "select='mod(n\\,10)'", "-fps_mode", "passthrough"]),
        expect_480p(),
        Reason::FrameCount,
    );
    check("shifted.ts", &with(&["-output_ts_offset", "0.02"]), expect_480p(), Reason::Timestamps);
    check(
        "reencoded-audio.ts",
        &strings(&[
            "-map",
            "0:v",
            "-map",
            "0:a",
            "-s",
            "854x480",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-c:a",
            "aac",
            "-b:a",
            "64k",
            "-f",
            "mpegts",
            "-mpegts_copyts",
            "1",
        ]),
        expect_480p(),
        Reason::AudioNotCopied,
    );
    check("no-audio.ts", &strings(&silent_480p()), expect_480p(), Reason::AudioMissing);
    check(
        "fps.ts",
        &strings(TS_480P),
        Expect { fps: Some(30.0), ..expect_480p() },
        Reason::FrameRate,
    );

    // The size changes half-way: two encodes of the two halves, one after the other.
    let first = ffmpeg(
        &source,
        &dir.join("a.ts"),
        &with(&["-vf", "select='lt(n\\,25)'", "-fps_mode", "passthrough"]),
    );
    let second = ffmpeg(
        &source,
        &dir.join("b.ts"),
        &[
            "-map",
            "0:v",
            "-map",
            "0:a",
            "-vf",
            "select='gte(n\\,25)',scale=640:360",
            "-fps_mode",
            "passthrough",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-c:a",
            "copy",
            "-f",
            "mpegts",
            "-mpegts_copyts",
            "1",
        ],
    );
    let joined = dir.join("joined.ts");
    let mut bytes = std::fs::read(first).unwrap();
    bytes.extend(std::fs::read(second).unwrap());
    std::fs::write(&joined, bytes).unwrap();
    let found = reasons(&source, &joined, &expect_480p());
    assert!(found.contains(&Reason::ResolutionChange), "{found:?}");
}

#[test]
fn bad_inputs_are_errors_not_verdicts() {
    let tmp = tempfile::tempdir().unwrap();
    let source = source_segment(tmp.path());
    let text = tmp.path().join("notes.txt");
    std::fs::write(&text, "not a segment").unwrap();
    let missing = tmp.path().join("missing.ts");
    let e = expect_480p();
    assert!(matches!(coarse(ff(), &source, &missing, &e), Err(Error::NotFound { .. })));
    assert!(matches!(coarse(ff(), &text, &source, &e), Err(Error::NotMedia { .. })));
    let odd = Expect { width: 855, ..e.clone() };
    assert!(matches!(coarse(ff(), &source, &source, &odd), Err(Error::BadSetting { .. })));

    // The stream tables of a segment and (about) one picture; a rendition five times the
    // source's length.
    let empty = tmp.path().join("no-frames.ts");
    std::fs::write(&empty, &std::fs::read(&source).unwrap()[..4 * 188]).unwrap();
    let err = coarse(ff(), &source, &empty, &e).unwrap_err();
    assert!(err.to_string().contains("no-frames.ts"), "{err}");
    let long = tmp.path().join("long.ts");
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-stream_loop", "4", "-i"])
        .arg(&source)
        .args(["-map", "0:v", "-s", "854x480", "-c:v", "libx264", "-preset", "ultrafast"])
        .args(["-f", "mpegts"])
        .arg(&long)
        .status()
        .unwrap();
    assert!(status.success());
    let err = coarse(ff(), &source, &long, &e).unwrap_err();
    assert!(matches!(err, Error::NotComparable { .. }), "{err}");
    assert!(err.to_string().contains("long.ts"), "{err}");
}

/// The classifier with the shipped thresholds: honest encodes pass, each attack fails with the
/// reason that names it.
#[test]
fn the_classifier_passes_honest_work_and_names_each_attack() {
    use kinema_media::verify::{Seed, Thresholds, Verdict, verify};

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let segments = source_segments(dir);
    let (source, elsewhere) = (&segments[1], &segments[2]);
    let thresholds = Thresholds::calibrated();
    let expect = Expect::rung(640, 360);
    let seed = Seed::random();
    let make = |name: &str, vf: &str, enc: &[&str]| {
        let mut args =
            vec!["-map", "0:v", "-map", "0:a", "-c:a", "copy", "-fps_mode", "passthrough"];
        let chain = format!("{vf}scale=640:360,setsar=1");
        args.extend(["-vf", &chain]);
        args.extend(enc);
        args.extend(["-f", "mpegts", "-mpegts_copyts", "1"]);
        ffmpeg(source, &dir.join(name), &args)
    };
    // The job's settings (Kinema's defaults), which honest work and the cheats below follow.
    let x264 = ["-c:v", "libx264", "-preset", "medium", "-crf", "23"];

    for (name, vf, enc, preset, crf) in [
        ("honest-medium.ts", "", &x264[..], "medium", 23),
        (
            "honest-slow-crf30.ts",
            "",
            &["-c:v", "libx264", "-preset", "slow", "-crf", "30"][..],
            "slow",
            30,
        ),
        ("honest-lanczos.ts", "", &x264[..], "medium", 23),
        (
            "honest-veryfast-4-threads.ts",
            "",
            &["-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-threads", "4"][..],
            "veryfast",
            23,
        ),
    ] {
        let vf = if name.contains("lanczos") { "scale=640:360:flags=lanczos," } else { vf };
        let expect = Expect { preset: preset.into(), crf, ..expect.clone() };
        let report =
            verify(ff(), source, &make(name, vf, enc), &expect, &thresholds, &seed).unwrap();
        assert_eq!(
            report.verdict,
            Verdict::Pass,
            "{name}: {:?} {:?}",
            report.reasons,
            report.scores
        );
    }

    let attacks: &[(&str, &str, Reason)] = &[
        (
            "logo",
            "drawbox=x=iw*0.74:y=ih*0.04:w=iw*0.22:h=ih*0.22:color=red:t=fill,",
            Reason::Overlay,
        ),
        (
            "text",
            "drawtext=text='KINEMA COPY':fontsize=h/10:fontcolor=white:x=w*0.05:y=h*0.8,",
            Reason::Overlay,
        ),
        (
            "semi",
            "drawbox=x=iw*0.3:y=ih*0.35:w=iw*0.4:h=ih*0.3:color=white@0.35:t=fill,",
            Reason::Overlay,
        ),
        (
            "blurred-patch",
            "split[x][y];[y]crop=iw/5:ih/5:iw*0.4:ih*0.4,gblur=sigma=6[p];\
             [x][p]overlay=W*0.4:H*0.4,",
            Reason::Overlay,
        ),
        ("hflip", "hflip,", Reason::Orientation),
        ("vflip", "vflip,", Reason::Orientation),
        ("rotate180", "hflip,vflip,", Reason::Orientation),
        ("rotate90", "transpose=1,", Reason::Orientation),
        ("grayscale", "hue=s=0,", Reason::Colour),
        ("hue", "hue=h=60,", Reason::Colour),
        ("still", "split[x][y];[x][y]freezeframes=first=1:last=1000:replace=0,", Reason::Temporal),
        (
            "duplicate",
            "split[x][y];[x][y]freezeframes=first=16:last=32:replace=15,",
            Reason::Temporal,
        ),
        ("blur", "gblur=sigma=3,", Reason::Quality),
        ("black", "drawbox=color=black:t=fill:enable='between(n,16,32)',", Reason::Quality),
    ];
    for (name, vf, reason) in attacks {
        let report = verify(
            ff(),
            source,
            &make(&format!("{name}.ts"), vf, &x264),
            &expect,
            &thresholds,
            &seed,
        )
        .unwrap();
        let found: Vec<Reason> = report.reasons.iter().map(|r| r.reason).collect();
        assert_eq!(report.verdict, Verdict::Fail, "{name}");
        assert!(found.contains(reason), "{name}: expected {reason}, found {found:?}");
    }

    // Heavy quantization: an eighth of the bits the honest encode spent on the segment.
    let honest = dir.join("honest-medium.ts");
    let bytes = std::fs::read(&honest).unwrap();
    let read = kinema_media::ts::read(&honest, &bytes).unwrap().unwrap();
    let video_bits = (bytes.len() - read.audio.map_or(0, |a| a.bytes.len())) as f64 * 8.0;
    let rate = (video_bits / read.info.video.span() / 8.0) as u64;
    let (rate, bufsize) = (rate.to_string(), (2 * rate).to_string());
    let enc = ["-c:v", "libx264", "-preset", "medium", "-b:v", &rate];
    let quantized =
        make("quantized.ts", "", &[&enc[..], &["-maxrate", &rate, "-bufsize", &bufsize]].concat());
    let report = verify(ff(), source, &quantized, &expect, &thresholds, &seed).unwrap();
    assert_eq!(report.verdict, Verdict::Fail, "bit rate ÷ 8: {:?}", report.scores);
    assert!(report.reasons.iter().any(|r| r.reason == Reason::Quality), "{:?}", report.reasons);

    // The next segment of the same video, retimed onto this one, with this one's audio.
    let start = |path: &Path| {
        let bytes = std::fs::read(path).unwrap();
        kinema_media::ts::read(path, &bytes).unwrap().unwrap().info.start_time
    };
    let swapped = dir.join("elsewhere.ts");
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-copyts", "-itsoffset"])
        .arg(format!("{:.6}", start(source) - start(elsewhere)))
        .arg("-i")
        .arg(elsewhere)
        .arg("-i")
        .arg(source)
        .args(["-map", "0:v:0", "-map", "1:a:0", "-c:a", "copy", "-vf", "scale=640:360,setsar=1"])
        .args(["-fps_mode", "passthrough"])
        .args(x264)
        .args(["-f", "mpegts", "-mpegts_copyts", "1"])
        .arg(&swapped)
        .status()
        .unwrap();
    assert!(status.success());
    let report = verify(ff(), source, &swapped, &expect, &thresholds, &seed).unwrap();
    assert_eq!(report.verdict, Verdict::Fail, "a segment from elsewhere: {:?}", report.scores);
    assert!(report.reasons.iter().any(|r| r.reason == Reason::Quality), "{:?}", report.reasons);
}

/// The positions the classifier sampled before it drew them from a seed: 10 evenly spaced.
fn old_fixed_positions(frames: usize) -> Vec<usize> {
    (0..10).map(|i| (i * frames + frames / 2) / 10).collect()
}

/// A cheat who knows where the samples fall tampers everything else: every frame but the old
/// fixed positions carries a logo and a colour change. Drawn positions catch it, whatever the
/// seed; so does the temporal check, which sees every frame.
#[test]
fn tampering_every_frame_but_the_old_fixed_positions_is_caught() {
    use kinema_media::verify::{Seed, Thresholds, Verdict, verify};

    let tmp = tempfile::tempdir().unwrap();
    let source = source_segment(tmp.path());
    let bytes = std::fs::read(&source).unwrap();
    let frames = kinema_media::ts::read(&source, &bytes).unwrap().unwrap().info.video.frame_count;
    let spared: Vec<String> =
        old_fixed_positions(frames as usize).iter().map(|i| format!("eq(n\\,{i})")).collect();
    let tampered = format!(
        "drawbox=x=iw*0.6:y=ih*0.1:w=iw*0.3:h=ih*0.3:color=red:t=fill:enable='not({})',\
         scale=640:360,setsar=1",
        spared.join("+")
    );
    let x264 = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "23"];
    let dodge = transcoded(&source, &tmp.path().join("dodge.ts"), &tampered, &x264);
    let expect = Expect::rung(640, 360);
    let thresholds = Thresholds::calibrated();
    for seed in [Seed::from_bytes(b"block 1"), Seed::from_bytes(b"block 2"), Seed::random()] {
        let report = verify(ff(), &source, &dodge, &expect, &thresholds, &seed).unwrap();
        assert_eq!(report.verdict, Verdict::Fail, "{seed:?}: {:?}", report.scores);
        let drawn: Vec<usize> = report.scores.per_pair.iter().map(|p| p.frame).collect();
        assert_ne!(drawn, old_fixed_positions(frames as usize), "{seed:?}");
        assert!(report.reasons.iter().any(|r| r.reason == Reason::Overlay), "{:?}", report.reasons);
    }
}

/// Rewrites an MPEG-TS file with its IDR slices (in the first picture of the video, PID 0x100,
/// ffmpeg's first stream) turned into filler NAL units: the parameter sets stay, but a segment
/// is one closed GOP, so without its keyframe nothing decodes.
fn without_keyframe(from: &Path, to: &Path) {
    let mut bytes = std::fs::read(from).unwrap();
    let mut starts = 0;
    let mut idr = 0;
    for packet in bytes.chunks_mut(188) {
        let pid = (u16::from(packet[1] & 0x1f) << 8) | u16::from(packet[2]);
        if pid != 0x100 {
            continue;
        }
        starts += usize::from(packet[1] & 0x40 != 0);
        if starts != 1 {
            continue;
        }
        for k in 4..packet.len() - 3 {
            if packet[k..k + 3] == [0, 0, 1] && packet[k + 3] & 0x1f == 5 {
                packet[k + 3] = (packet[k + 3] & 0xe0) | 12;
                idr += 1;
            }
        }
    }
    assert!(starts > 2 && idr > 0, "{starts} video PES packets, {idr} IDR slices");
    std::fs::write(to, bytes).unwrap();
}

/// No evidence is not a pass: a rendition that decodes to nothing, and audio missing or cut
/// short without `--audio-copy`, each fail with their reason.
#[test]
fn a_rendition_without_evidence_fails_with_its_reason() {
    use kinema_media::verify::{Seed, Thresholds, Verdict, verify};

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let source = source_segment(dir);
    let thresholds = Thresholds::calibrated();
    let expect = Expect { audio_copy: false, ..expect_480p() };
    let run = |rendition: &Path| {
        verify(ff(), &source, rendition, &expect, &thresholds, &Seed::random()).unwrap()
    };
    let reasons = |report: &kinema_media::verify::Report| -> Vec<Reason> {
        report.reasons.iter().map(|r| r.reason).collect()
    };

    let honest = ffmpeg(&source, &dir.join("honest.ts"), TS_480P);
    let report = run(&honest);
    assert_eq!(report.verdict, Verdict::Pass, "{:?} {:?}", report.reasons, report.scores);
    assert_eq!(report.scores.pairs, 10);
    assert_eq!(report.scores.frames_compared, 50);

    let nothing = dir.join("nothing.ts");
    without_keyframe(&honest, &nothing);
    let report = run(&nothing);
    assert_eq!(report.verdict, Verdict::Fail);
    assert_eq!(report.scores.pairs, 0);
    assert!(reasons(&report).contains(&Reason::Undecodable), "{:?}", report.reasons);

    let silent = ffmpeg(&source, &dir.join("silent.ts"), &silent_480p());
    let report = run(&silent);
    assert_eq!(reasons(&report), [Reason::AudioMissing], "{:?}", report.reasons);

    // The audio re-encoded and cut to its first second (a later -c:a wins).
    let cut = [TS_480P, &["-af", "atrim=duration=1", "-c:a", "aac"]].concat();
    let short = ffmpeg(&source, &dir.join("short.ts"), &cut);
    let report = run(&short);
    assert_eq!(reasons(&report), [Reason::AudioDuration], "{:?}", report.reasons);
    assert!(report.reasons[0].detail.contains("the source's 2."), "{}", report.reasons[0].detail);
}

#[test]
fn the_shipped_thresholds_parse_and_are_ordered() {
    let shipped = kinema_media::verify::Thresholds::calibrated();
    let t = &shipped.clean;
    assert!(t.quality_deficit > 0.0 && t.worst_deficit >= t.quality_deficit);
    assert!(t.ssim_deficit > 0.0 && t.ssim_deficit < 0.5);
    assert!(t.chroma_change > 0.0 && t.chroma_change < 1.0);
    assert!(t.block_shift > 0.0 && t.offset_gain > 0.0 && t.local_damage > 0.0);
    assert!(t.blur > 0.0 && t.blur < 0.5 && t.repeat > 0.0);
    // Limits only widen below the knee, never narrow.
    assert!(shipped.per_db.values().iter().all(|&w| (0.0..10.0).contains(&w)));
    let hard = shipped.at(kinema_media::verify::KNEE - 10.0);
    assert!(hard.values().iter().zip(t.values()).all(|(h, c)| *h >= c));
}

/// A verifier drawn for a whole segment checks every rendition in one pass (the source decoded
/// once, the job's own encodes from one x264 run): each answer is the one it gives for that
/// rendition alone. A rendition that does not decode still fails alone, and one that is no
/// rendition of the source at all is an error of its own, not of the others.
#[test]
fn every_rendition_of_a_segment_in_one_pass_answers_as_each_alone() {
    use kinema_media::verify::{Seed, Thresholds, Verdict, verify, verify_all};

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let segments = source_segments(dir);
    let source = &segments[1];
    let make = |name: &str, vf: &str, expect: &Expect| {
        let (w, h, cap) = (expect.width, expect.height, expect.max_bitrate);
        let chain = format!("{vf}scale={w}:{h},setsar=1");
        let (cap, buf) = (cap.to_string(), (2 * cap).to_string());
        let x264 = ["-c:v", "libx264", "-preset", "medium", "-crf", "23", "-maxrate", &cap];
        transcoded(source, &dir.join(name), &chain, &[&x264[..], &["-bufsize", &buf]].concat())
    };
    let (e360, e240) = (Expect::rung(640, 360), Expect::rung(426, 240));
    let honest360 = make("honest360.ts", "", &e360);
    let honest240 = make("honest240.ts", "", &e240);
    let logo =
        make("logo240.ts", "drawbox=x=iw*0.7:y=ih*0.1:w=iw*0.2:h=ih*0.2:color=red:t=fill,", &e240);
    let thresholds = Thresholds::calibrated();
    let seed = Seed::from_bytes(b"a finalized block");
    let alone = |r: &Path, e: &Expect| {
        serde_json::to_value(verify(ff(), source, r, e, &thresholds, &seed).unwrap()).unwrap()
    };

    let checks =
        [(honest360.as_path(), &e360), (honest240.as_path(), &e240), (logo.as_path(), &e240)];
    let all = verify_all(ff(), source, &checks, &thresholds, &seed).unwrap();
    let verdicts: Vec<Verdict> = all.iter().map(|r| r.as_ref().unwrap().verdict).collect();
    assert_eq!(verdicts, [Verdict::Pass, Verdict::Pass, Verdict::Fail]);
    for ((rendition, expect), report) in checks.iter().zip(&all) {
        let joint = serde_json::to_value(report.as_ref().unwrap()).unwrap();
        assert_eq!(joint, alone(rendition, expect), "{}", rendition.display());
    }

    // One rendition decodes to nothing and another segment is a whole other length: the first
    // fails on its own, the second is an error of its own, the honest one still passes.
    let broken = dir.join("broken.ts");
    without_keyframe(&honest240, &broken);
    let long = dir.join("long.ts");
    let list = dir.join("list.txt");
    // The whole clip, three times over: more than four times the segment.
    let lines: String = segments
        .iter()
        .cycle()
        .take(3 * segments.len())
        .map(|s| format!("file '{}'\n", s.display()))
        .collect();
    std::fs::write(&list, lines).unwrap();
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "concat", "-safe", "0", "-i"])
        .arg(&list)
        .args(["-c", "copy", "-f", "mpegts"])
        .arg(&long)
        .status()
        .unwrap();
    assert!(status.success());
    let checks = [(honest360.as_path(), &e360), (broken.as_path(), &e240), (long.as_path(), &e240)];
    let all = verify_all(ff(), source, &checks, &thresholds, &seed).unwrap();
    assert_eq!(all[0].as_ref().unwrap().verdict, Verdict::Pass);
    let broken = all[1].as_ref().unwrap();
    assert_eq!(broken.verdict, Verdict::Fail);
    assert!(broken.reasons.iter().any(|r| r.reason == Reason::Undecodable), "{:?}", broken.reasons);
    let err = all[2].as_ref().unwrap_err().to_string();
    assert!(err.contains("long.ts"), "{err}");
}
