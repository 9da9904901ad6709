//! `cargo xtask bench ladder`: the distributed ladder against one plain ffmpeg command.
//! `cargo xtask bench verify`: the verifier's CPU time against the transcode it checks.
//! `cargo xtask bench bundle`: what a browser downloads for the light node, raw and gzipped.
//! `cargo xtask bench watermark`: the watermark through a pirate's attacks (see `watermark.rs`).
//! `cargo xtask bench market`: upload to playable through a devnet (see `market.rs`).
//! `cargo xtask bench offload`: viewers' tabs delivering to each other (see `offload.rs`).
//! `cargo xtask bench webrtc-flood`: what a flood of webrtc-direct handshakes costs a relay
//! (see `flood.rs`).
//!
//! Both produce the same renditions (sizes, x264 preset, CRF, rate caps, 2 s keyframes, AAC
//! audio) on the same machine; the plain command is ffmpeg's own one-process ladder with its
//! default threading. Wall time and CPU time (user + system of every child process) are printed
//! with their ratios.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use kinema_media::Manifest;

use crate::{cargo, corpus, ensure_ffmpeg, ensure_wasm_target, target_dir};

struct Options {
    clips: Vec<PathBuf>,
    preset: String,
    runs: usize,
}

pub(crate) fn run(args: &[String]) -> Result<()> {
    let Some((what, rest)) = args.split_first() else {
        bail!(
            "usage: cargo xtask bench ladder|verify|bundle|watermark|market|offload|webrtc-flood ..."
        )
    };
    match what.as_str() {
        "ladder" => ladder(rest),
        "verify" => verify(rest),
        "bundle" => bundle(),
        "watermark" => crate::watermark::bench(rest),
        "market" => crate::market::bench(rest),
        "offload" => crate::offload::bench(rest),
        "webrtc-flood" => crate::flood::bench(rest),
        other => bail!(
            "unknown benchmark {other}; there are: ladder, verify, bundle, watermark, market, \
             offload, webrtc-flood"
        ),
    }
}

/// `cargo xtask bench bundle`: builds what browsers get and prints the size of each file a
/// browser downloads: raw, and as the relay sends it (the build's gzip and brotli copies); then
/// what a viewer's page (`watch.html`: the player, hls.js, the light node) and the creator
/// app's (`index.html`) download in all, in MiB.
fn bundle() -> Result<()> {
    let dir = crate::web()?;
    let size = |path: &Path, suffix: &str| -> Result<u64> {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        Ok(std::fs::metadata(&name)
            .with_context(|| format!("{}", Path::new(&name).display()))?
            .len())
    };
    // Which page downloads a file: the viewer's, the app's, or the light node's demo page.
    let page_of = |name: &str| {
        if ["watch.html", "player.js", "store.js", "mining.js", "relay.js", "hls.min.js"]
            .contains(&name)
            || name.starts_with("kinema_wasm_node")
        {
            "viewer"
        } else if ["index.html", "app.css"].contains(&name)
            || name.starts_with("kinema_browser_app")
            || name.starts_with("snippets/kinema-browser-app")
        {
            "app"
        } else {
            "other"
        }
    };
    let mut totals = std::collections::BTreeMap::<&str, (u64, u64, u64)>::new();
    println!("{:<48} {:>10} {:>10} {:>10}", "file", "bytes", "gzip", "brotli");
    for path in crate::served_files(&dir)? {
        let name = path.strip_prefix(&dir).unwrap_or(&path).to_string_lossy().replace('\\', "/");
        let (raw, gz, br) = (size(&path, "")?, size(&path, ".gz")?, size(&path, ".br")?);
        println!("{name:<48} {raw:>10} {gz:>10} {br:>10}");
        let total = totals.entry(page_of(&name)).or_default();
        *total = (total.0 + raw, total.1 + gz, total.2 + br);
    }
    let mib = |bytes: u64| bytes as f64 / (1 << 20) as f64;
    for (page, (raw, gz, br)) in totals {
        println!(
            "{page:<8} {:.2} MiB raw, {:.2} MiB gzip, {:.2} MiB brotli",
            mib(raw),
            mib(gz),
            mib(br)
        );
    }
    Ok(())
}

/// `cargo xtask bench verify [--runs N]`: CPU time of `kinema media verify` on a 2 s 720p
/// segment of trailer_bbb.mp4 against the CPU time of transcoding that segment.
fn verify(args: &[String]) -> Result<()> {
    let runs = match args {
        [] => 3,
        [flag, n] if flag == "--runs" => n.parse().context("--runs takes a number")?,
        _ => bail!("usage: cargo xtask bench verify [--runs N]"),
    };
    ensure_ffmpeg()?;
    ensure_wasm_target()?;
    cargo(&["build", "--release", "--locked", "-p", "kinema-cli"])?;
    let kinema = target_dir().join("release/kinema");
    let work = tempdir()?;
    // A ladder keeps no source segments: cut one 2 s segment from the middle of the trailer as
    // the segmenter does (an ultrafast CRF 16 mezzanine starting on a keyframe, AAC audio).
    let source = work.join("source.ts");
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-ss", "20", "-i"])
        .arg(corpus("trailer_bbb.mp4"))
        .args(["-t", "2", "-c:v", "libx264", "-preset", "ultrafast", "-crf", "16"])
        .args(["-c:a", "aac", "-ac", "2", "-f", "mpegts"])
        .arg(&source)
        .status()
        .context("running ffmpeg")?;
    if !status.success() {
        bail!("cutting the source segment failed ({status})");
    }
    let settings = kinema_media::transcode::EncodeSettings::default();
    let rungs: [(u32, u32, u32); 4] =
        [(1280, 720, 3_000_000), (854, 480, 1_630_000), (640, 360, 1_060_000), (426, 240, 580_000)];
    // Like a transcode worker: one process, one decode, every rung with the default settings.
    let transcode = |rungs: &[(u32, u32, u32)]| -> Result<f64> {
        let mut cmd = Command::new("ffmpeg");
        cmd.args(["-nostdin", "-v", "error", "-y", "-threads", "1", "-copyts", "-i"]).arg(&source);
        for (i, &(width, height, max_bitrate)) in rungs.iter().enumerate() {
            let rung = kinema_media::rendition::Rendition {
                name: format!("{height}p"),
                width,
                height,
                max_bitrate,
            };
            cmd.args(["-map", "0:v", "-map", "0:a", "-vf"]);
            cmd.arg(format!("scale={width}:{height},setsar=1"));
            cmd.args(["-c:v", "libx264"]).args(settings.x264_args(&rung));
            cmd.args(["-c:a", "copy", "-f", "mpegts", "-mpegts_copyts", "1"]);
            cmd.arg(work.join(format!("r{i}.ts")));
        }
        Ok(measure(&mut cmd)?.1)
    };
    let mut best = [f64::INFINITY; 6];
    for _ in 0..runs {
        let ladder = transcode(&rungs)?;
        let one = transcode(&rungs[..1])?;
        let mut cmd = Command::new(&kinema);
        cmd.args(["media", "verify", "--source"]).arg(&source);
        cmd.arg("--rendition").arg(work.join("r0.ts"));
        cmd.args(["--expect", "1280x720", "--audio-copy", "--json"]);
        cmd.stdout(std::process::Stdio::null());
        let verify = measure(&mut cmd)?.1;
        // Every rendition of the segment in one pass, as a verifier drawn for the segment does.
        let mut all = Command::new(&kinema);
        all.args(["media", "verify", "--source"]).arg(&source);
        for (i, (width, height, _)) in rungs.iter().enumerate() {
            all.arg("--rendition").arg(work.join(format!("r{i}.ts")));
            all.arg("--expect").arg(format!("{width}x{height}"));
        }
        all.args(["--audio-copy", "--json"]);
        all.stdout(std::process::Stdio::null());
        let verify_all = measure(&mut all)?.1;
        // What no verifier on this path can go below: ffmpeg decoding both segments, nothing else.
        let mut floor = Command::new("ffmpeg");
        floor.args(["-nostdin", "-v", "error", "-threads", "1", "-i"]).arg(&source);
        floor.args(["-threads", "1", "-i"]).arg(work.join("r0.ts"));
        floor.args(["-map", "0:v", "-f", "null", "-", "-map", "1:v", "-f", "null", "-"]);
        let decode = measure(&mut floor)?.1;
        // The job's own encode the verifier judges the rendition against (the job's preset and
        // rate control: Kinema's defaults here), on its own.
        let rung = kinema_media::rendition::Rendition {
            name: "720p".into(),
            width: 1280,
            height: 720,
            max_bitrate: 3_000_000,
        };
        let mut job = Command::new("ffmpeg");
        job.args(["-nostdin", "-v", "error", "-threads", "1", "-i"]).arg(&source);
        job.args(["-map", "0:v", "-vf", "scale=1280:720,setsar=1", "-c:v", "libx264"]);
        job.args(settings.x264_args(&rung)).args(["-f", "null", "-"]);
        let job = measure(&mut job)?.1;
        for (b, v) in best.iter_mut().zip([ladder, one, verify, decode, job, verify_all]) {
            *b = b.min(v);
        }
    }
    let [ladder, one, verify, decode, job, verify_all] = best;
    println!(
        "verify benchmark: a 2 s 720p segment of trailer_bbb.mp4, best of {runs}, CPU seconds"
    );
    println!("  transcode into the 4-rung ladder: {ladder:.3} s");
    println!("  transcode into 720p alone:        {one:.3} s");
    println!("  kinema media verify of the 720p:  {verify:.3} s");
    println!(
        "  of which at least decoding both:  {decode:.3} s ({:.3} of the 720p transcode)",
        decode / one
    );
    println!(
        "  of which the job's own encode:    {job:.3} s ({:.3} of the 720p transcode)",
        job / one
    );
    println!(
        "  verify / ladder transcode = {:.3}, verify / 720p transcode = {:.3}; without the \
         job's own encode {:.3} (target <= 0.05)",
        verify / ladder,
        verify / one,
        (verify - job) / one
    );
    println!(
        "  kinema media verify of all 4 renditions in one pass: {verify_all:.3} s ({:.3} of the \
         ladder transcode)",
        verify_all / ladder
    );
    std::fs::remove_dir_all(&work)?;
    Ok(())
}

fn ladder(rest: &[String]) -> Result<()> {
    let mut options = Options { clips: Vec::new(), preset: "medium".into(), runs: 1 };
    let mut it = rest.iter();
    while let Some(arg) = it.next() {
        let value = it.next().with_context(|| format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--clip" => options.clips.push(PathBuf::from(value)),
            "--preset" => options.preset = value.clone(),
            "--runs" => options.runs = value.parse().context("--runs takes a number")?,
            other => bail!("unknown option {other}"),
        }
    }
    if options.clips.is_empty() {
        options.clips = vec![corpus("trailer_bbb.mp4"), corpus("bikes.mp4")];
    }
    ensure_ffmpeg()?;
    ensure_wasm_target()?;
    cargo(&["build", "--release", "--locked", "-p", "kinema-cli"])?;
    let kinema = target_dir().join("release/kinema");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "ladder benchmark: preset {}, {cores} cores, best of {} run(s)",
        options.preset, options.runs
    );
    println!(
        "{:<18} {:<9} {:>11} {:>11} {:>7} {:>11} {:>11} {:>7}",
        "clip", "mode", "kinema wall", "ffmpeg wall", "ratio", "kinema cpu", "ffmpeg cpu", "ratio"
    );
    for clip in &options.clips {
        let work = tempdir()?;
        let mut best_kinema = (f64::INFINITY, 0.0);
        let mut best_plain = (f64::INFINITY, 0.0);
        let mut mode = String::new();
        for run in 0..options.runs {
            let out = work.join(format!("kinema{run}"));
            let mut cmd = Command::new(&kinema);
            cmd.args(["media", "ladder"]).arg(clip).arg("--out").arg(&out);
            cmd.args(["--preset", &options.preset]);
            let k = measure(&mut cmd)
                .with_context(|| format!("kinema ladder of {}", clip.display()))?;
            let manifest: Manifest =
                serde_json::from_slice(&std::fs::read(out.join("manifest.json"))?)?;
            mode = format!("{:?}", manifest.segmenting).to_lowercase();
            let plain_dir = work.join(format!("plain{run}"));
            std::fs::create_dir_all(&plain_dir)?;
            let p = measure(&mut plain_ladder(clip, &manifest, &plain_dir))
                .with_context(|| format!("plain ffmpeg ladder of {}", clip.display()))?;
            if k.0 < best_kinema.0 {
                best_kinema = k;
            }
            if p.0 < best_plain.0 {
                best_plain = p;
            }
            std::fs::remove_dir_all(&out)?;
            std::fs::remove_dir_all(&plain_dir)?;
        }
        let name = clip.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        println!(
            "{:<18} {:<9} {:>10.2}s {:>10.2}s {:>6.3}x {:>10.2}s {:>10.2}s {:>6.3}x",
            name,
            mode,
            best_kinema.0,
            best_plain.0,
            best_kinema.0 / best_plain.0,
            best_kinema.1,
            best_plain.1,
            best_kinema.1 / best_plain.1
        );
        std::fs::remove_dir_all(&work)?;
    }
    Ok(())
}

/// One ffmpeg process that decodes the source once and encodes every rendition of `manifest`
/// with the same x264 settings, keyframes every segment length, into HLS.
fn plain_ladder(clip: &Path, manifest: &Manifest, dir: &Path) -> Command {
    let n = manifest.renditions.len();
    let mut graph = String::from("[0:v]");
    graph.push_str(&format!("split={n}"));
    for i in 0..n {
        graph.push_str(&format!("[s{i}]"));
    }
    for (i, r) in manifest.renditions.iter().enumerate() {
        graph.push_str(&format!(
            ";[s{i}]scale={}:{}:flags=bicubic,setsar=1[o{i}]",
            r.rendition.width, r.rendition.height
        ));
    }
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-nostdin", "-hide_banner", "-loglevel", "error", "-i"]).arg(clip);
    cmd.args(["-filter_complex", &graph]);
    let settings = &manifest.encoder.settings;
    for (i, r) in manifest.renditions.iter().enumerate() {
        cmd.args(["-map", &format!("[o{i}]"), "-map", "0:a:0?", "-c:v", "libx264"]);
        // The same x264 options, with ffmpeg's own threading instead of one thread per process.
        let x264 = settings.x264_args(&r.rendition);
        let mut args = x264.iter();
        while let Some(arg) = args.next() {
            if arg == "-threads" {
                args.next();
            } else {
                cmd.arg(arg);
            }
        }
        let every = manifest.segment_seconds;
        cmd.args(["-force_key_frames", &format!("expr:gte(t,n_forced*{every})")]);
        cmd.args(["-c:a", "aac", "-b:a", "128k", "-ac", "2", "-ar", "48000"]);
        cmd.args(["-f", "hls", "-hls_time", &every.to_string(), "-hls_playlist_type", "vod"]);
        cmd.arg("-hls_segment_filename").arg(dir.join(format!("{i}_%05d.ts")));
        cmd.arg(dir.join(format!("{i}.m3u8")));
    }
    cmd
}

/// Runs `cmd` and returns its wall time and the CPU time (user + system) of it and every
/// process it waited for, in seconds.
pub(crate) fn measure(cmd: &mut Command) -> Result<(f64, f64)> {
    let before = children_cpu();
    let start = Instant::now();
    let output = cmd.output().context("starting the command")?;
    let wall = start.elapsed().as_secs_f64();
    if !output.status.success() {
        bail!("{} ({})", String::from_utf8_lossy(&output.stderr).trim(), output.status);
    }
    Ok((wall, children_cpu() - before))
}

/// User + system CPU seconds of all waited-for descendants so far.
#[allow(unsafe_code)]
fn children_cpu() -> f64 {
    // SAFETY: getrusage writes one rusage struct into the zeroed value we own.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

fn tempdir() -> Result<PathBuf> {
    let dir = target_dir().join(format!("bench-ladder-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}
