//! `cargo xtask bench watermark [--clips NAME,...] [--trials N]`: the watermark on every corpus
//! clip, marked with a random ID, through the attacks a pirate's copy goes through.
//!
//! For each clip: a plain x264 encode at the marking settings (medium, CRF 23) and the marked
//! encode (`kinema media watermark embed`), their CPU time, the marked encode's PSNR and SSIM
//! against the plain one and both against the source. Then each attack is applied to the first
//! 30 s of the marked copy and of the plain one, and every 10 s excerpt of each (the whole clip
//! when it is shorter) is read: exact IDs from the marked copies, and claims of any ID from the
//! unmarked ones (there must be none). The unmarked excerpts' soft bits are scored against
//! random IDs (`--trials`, 100,000 by default) to show the detection score's spread. Attacks are
//! encoded with x264/x265 `veryfast` (a copier's speed), at CRF 23 unless the attack is a CRF.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use kinema_media::watermark::{self, Detection, Excerpt, Id};

use crate::{cargo, corpus, ensure_ffmpeg, ensure_wasm_target, target_dir};

const CLIPS: [&str; 8] = [
    "bigbuckbunny.mp4",
    "bikes.mp4",
    "carphone_pristine.mp4",
    "carphone_distorted.mp4",
    "cityCC0.mpg",
    "vtest.avi",
    "tree.avi",
    "trailer_bbb.mp4",
];

/// Attacks: a name and the ffmpeg output options that make the copy.
const ATTACKS: [(&str, &str); 12] = [
    ("none", ""),
    ("h264 crf 23", "-c:v libx264 -preset veryfast -crf 23"),
    ("h264 crf 28", "-c:v libx264 -preset veryfast -crf 28"),
    ("h264 crf 35", "-c:v libx264 -preset veryfast -crf 35"),
    ("h265 crf 28", "-c:v libx265 -preset veryfast -crf 28 -x265-params log-level=error"),
    ("downscale 0.71", "-vf scale=trunc(iw*0.71/2)*2:-2 -c:v libx264 -preset veryfast -crf 23"),
    ("downscale 0.5", "-vf scale=trunc(iw/4)*2:-2 -c:v libx264 -preset veryfast -crf 23"),
    ("crf 28 + 0.5", "-vf scale=trunc(iw/4)*2:-2 -c:v libx264 -preset veryfast -crf 28"),
    (
        "crop 10 % a side",
        "-vf crop=trunc(iw*0.4)*2:trunc(ih*0.4)*2 -c:v libx264 -preset veryfast -crf 23",
    ),
    ("frame rate halved", "-vf framestep=2 -c:v libx264 -preset veryfast -crf 23"),
    ("brightness +10 %", "-vf lutyuv=y=val*1.1 -c:v libx264 -preset veryfast -crf 23"),
    ("ladder 240p rung", "ladder"),
];

/// What the marking does to an odd size (4:2:0 H.264 needs even ones), and frames paired by
/// their order (a variable-rate source is marked at its average rate).
const EVEN: &str = "crop=trunc(iw/2)*2:trunc(ih/2)*2:0:0,setpts=N/(25*TB)";

/// Seconds of each copy that are read, in excerpts of [`EXCERPT`] seconds.
const SPAN: f64 = 30.0;
const EXCERPT: f64 = 10.0;

pub(crate) fn bench(args: &[String]) -> Result<()> {
    let mut clips: Vec<String> = CLIPS.iter().map(|c| c.to_string()).collect();
    let mut trials = 100_000usize;
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        let value = rest.next().with_context(|| format!("{flag} takes a value"))?;
        match flag.as_str() {
            "--clips" => clips = value.split(',').map(str::to_owned).collect(),
            "--trials" => trials = value.parse().context("--trials takes a number")?,
            _ => bail!("usage: cargo xtask bench watermark [--clips NAME,...] [--trials N]"),
        }
    }
    ensure_ffmpeg()?;
    ensure_wasm_target()?;
    cargo(&["build", "--release", "--locked", "-p", "kinema-cli"])?;
    let kinema = target_dir().join("release/kinema");
    let ff = kinema_media::Ffmpeg::locate()?;
    let work = target_dir().join(format!("bench-watermark-{}", std::process::id()));
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);

    let mut exact = vec![(0usize, 0usize); ATTACKS.len()];
    let mut false_claims = 0usize;
    let mut unmarked_reads = 0usize;
    let mut unmarked: Vec<Detection> = Vec::new();
    let mut wrong_ids = 0usize;
    println!(
        "{:<24} {:>16} {:>8} {:>8} {:>9} {:>9} {:>9}",
        "clip", "id", "PSNR", "SSIM", "vs src", "embed/enc", "frames"
    );
    for clip in &clips {
        let source = corpus(clip);
        let id = Id(splitmix(&mut seed));
        let dir = work.join(clip.replace('.', "_"));
        std::fs::create_dir_all(&dir)?;
        let plain = dir.join("plain.mp4");
        let marked = dir.join("marked.mp4");
        let mut encode = Command::new("ffmpeg");
        encode.args(["-nostdin", "-v", "error", "-y", "-i"]).arg(&source);
        encode.args(["-map", "0:v:0", "-vf", "crop=trunc(iw/2)*2:trunc(ih/2)*2:0:0"]);
        encode.args(["-c:v", "libx264", "-preset", "medium"]);
        encode.args(["-crf", "23"]);
        encode.args(["-pix_fmt", "yuv420p", "-fps_mode", "passthrough"]).arg(&plain);
        let plain_cpu = crate::bench::measure(&mut encode)?.1;
        let _ = std::fs::remove_file(&marked);
        let mut embed = Command::new(&kinema);
        embed.args(["media", "watermark", "embed"]).arg(&source);
        embed.args(["--id", &id.to_string(), "--out"]).arg(&marked);
        let embed_cpu = crate::bench::measure(&mut embed)?.1;
        let (psnr, ssim) = compare(&marked, &plain)?;
        let (psnr_marked_src, _) = compare(&marked, &source)?;
        let (psnr_plain_src, _) = compare(&plain, &source)?;
        let frames = kinema_media::probe(&ff, &marked)?.video.frame_count;
        println!(
            "{clip:<24} {id} {psnr:>8.2} {ssim:>8.4} {:>+9.2} {:>9.2} {frames:>9}",
            psnr_marked_src - psnr_plain_src,
            embed_cpu / plain_cpu
        );
        for (a, (name, options)) in ATTACKS.iter().enumerate() {
            for (copy, is_marked) in [(&marked, true), (&plain, false)] {
                let attacked = attack(&kinema, copy, &dir, a, options, is_marked)
                    .with_context(|| format!("{clip}: attack {name}"))?;
                let duration = kinema_media::probe(&ff, &attacked)?.duration.min(SPAN);
                let mut from = 0.0;
                loop {
                    let found =
                        watermark::detect(&ff, &attacked, Excerpt { from, seconds: EXCERPT })
                            .with_context(|| format!("{clip}: {name}: reading from {from} s"))?;
                    if is_marked {
                        exact[a].0 += 1;
                        match found.id {
                            Some(got) if got == id => exact[a].1 += 1,
                            Some(_) => wrong_ids += 1,
                            None => {}
                        }
                    } else {
                        unmarked_reads += 1;
                        false_claims += usize::from(found.id.is_some());
                        unmarked.push(found);
                    }
                    from += EXCERPT;
                    if from + EXCERPT > duration + 1e-6 {
                        break;
                    }
                }
            }
        }
    }
    println!("\nexactly recovered IDs from {EXCERPT} s excerpts (first {SPAN} s of each copy):");
    for ((name, _), (n, k)) in ATTACKS.iter().zip(&exact) {
        println!("  {name:<20} {k:>3}/{n:<3} {:>6.1} %", 100.0 * *k as f64 / (*n).max(1) as f64);
    }
    println!("wrong IDs claimed on marked copies: {wrong_ids}");
    println!("claims on unmarked excerpts: {false_claims} of {unmarked_reads}");
    trials_report(&unmarked, trials, &mut seed);

    // Detection CPU: 10 s of the 720p trailer, marked.
    let trailer = work.join("trailer_bbb_mp4/marked.mp4");
    if trailer.exists() {
        let mut detect = Command::new(&kinema);
        detect.args(["media", "watermark", "detect"]).arg(&trailer).args(["--from", "20"]);
        let (wall, cpu) = crate::bench::measure(&mut detect)?;
        println!("detect, 10 s of 720p (trailer_bbb from 20 s): {cpu:.2} s CPU, {wall:.2} s wall");
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

/// The copy after attack `index` (the ladder's 240p rung joined into one file).
fn attack(
    kinema: &Path,
    copy: &Path,
    dir: &Path,
    index: usize,
    options: &str,
    marked: bool,
) -> Result<PathBuf> {
    let tag = if marked { "m" } else { "u" };
    if options.is_empty() {
        return Ok(copy.to_owned());
    }
    let out = dir.join(format!("{tag}{index}.mp4"));
    if options == "ladder" {
        let ladder = dir.join(format!("{tag}-ladder"));
        let _ = std::fs::remove_dir_all(&ladder);
        let mut cmd = Command::new(kinema);
        cmd.args(["media", "ladder"]).arg(copy).arg("--out").arg(&ladder);
        cmd.args(["--renditions", "240p"]);
        crate::bench::measure(&mut cmd)?;
        // The 240p rung, or the one rung at the source's height when that is lower.
        let rung = std::fs::read_dir(&ladder)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.is_dir())
            .with_context(|| format!("{}: the ladder wrote no rendition", ladder.display()))?;
        let playlist = rung.join("index.m3u8");
        let text = std::fs::read_to_string(&playlist)
            .with_context(|| format!("reading {}", playlist.display()))?;
        let segments: Vec<String> = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| rung.join(l.trim()).display().to_string())
            .collect();
        let mut cmd = Command::new("ffmpeg");
        cmd.args(["-nostdin", "-v", "error", "-y", "-i"]);
        cmd.arg(format!("concat:{}", segments.join("|")));
        cmd.args(["-map", "0:v:0", "-c", "copy"]).arg(&out);
        crate::bench::measure(&mut cmd)?;
        return Ok(out);
    }
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-nostdin", "-v", "error", "-y", "-i"]).arg(copy);
    cmd.args(["-t", &SPAN.to_string(), "-map", "0:v:0"]);
    cmd.args(options.split(' ')).args(["-pix_fmt", "yuv420p"]).arg(&out);
    crate::bench::measure(&mut cmd)?;
    Ok(out)
}

/// Luma PSNR (dB) and SSIM of `a` against `b`, frame by frame, as ffmpeg's filters give them.
fn compare(a: &Path, b: &Path) -> Result<(f64, f64)> {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-i"])
        .arg(a)
        .arg("-i")
        .arg(b)
        .arg("-lavfi")
        .arg(format!(
            "[0:v]{EVEN},split[a0][a1];[1:v]{EVEN},split[b0][b1];[a0][b0]psnr;[a1][b1]ssim"
        ))
        .args(["-f", "null", "-"])
        .output()
        .context("running ffmpeg psnr/ssim")?;
    let log = String::from_utf8_lossy(&out.stderr);
    let field = |key: &str| -> Option<f64> {
        let line = log.lines().rev().find(|l| l.contains(key))?;
        let at = line.find(key)? + key.len();
        line[at..].split_whitespace().next()?.parse().ok()
    };
    match (field("PSNR y:"), field("SSIM Y:")) {
        (Some(p), Some(s)) => Ok((p, s)),
        _ => bail!("no PSNR/SSIM comparing {} with {}", a.display(), b.display()),
    }
}

/// The spread of the detection score over unmarked excerpts x random IDs.
fn trials_report(unmarked: &[Detection], trials: usize, seed: &mut u64) {
    if unmarked.is_empty() {
        return;
    }
    let per = trials.div_ceil(unmarked.len());
    let (mut n, mut sum, mut squares, mut max) = (0usize, 0.0, 0.0, f64::NEG_INFINITY);
    let mut fewest_disagreeing = u32::MAX;
    for d in unmarked {
        let hard: u128 =
            d.soft.iter().enumerate().fold(0, |w, (i, &s)| if s > 0.0 { w | (1 << i) } else { w });
        for _ in 0..per {
            let id = Id(splitmix(seed));
            let score = d.score(id);
            n += 1;
            sum += score;
            squares += score * score;
            max = max.max(score);
            let word = watermark::bch::encode(id.0);
            fewest_disagreeing = fewest_disagreeing.min((word ^ hard).count_ones());
        }
    }
    let mean = sum / n as f64;
    let sd = (squares / n as f64 - mean * mean).sqrt();
    let sync_max = unmarked.iter().map(|d| d.sync).fold(f64::NEG_INFINITY, f64::max);
    println!(
        "unmarked: {n} excerpt x random-ID trials ({} excerpts): score mean {mean:+.3}, sd {sd:.3}, max {max:.2} sd; fewest bits off a random ID's codeword {fewest_disagreeing} of 127 (a claim needs <= {}); sync at most {sync_max:.2} sd (a claim needs >= {})",
        unmarked.len(),
        watermark::MAX_ERRORS,
        watermark::SYNC_THRESHOLD
    );
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
