//! Kinema's metrics against ffmpeg's `psnr` and `ssim` filters on real frames.

use std::path::Path;
use std::process::Command;

use kinema_media::decode::decode;
use kinema_media::frame::Frame;
use kinema_media::{metrics, scale};

use crate::support::{corpus, ff};

/// Per-frame `key:value` statistics that an ffmpeg comparison filter writes to its stats file.
fn ffmpeg_stats(
    filter: &str,
    main: &Path,
    reference: &Path,
    scale_to: Option<(usize, usize)>,
) -> Vec<Vec<(String, f64)>> {
    let tmp = tempfile::tempdir().unwrap();
    let stats = tmp.path().join("stats.txt");
    let reference_chain = match scale_to {
        Some((w, h)) => format!("scale={w}:{h}:flags=area,"),
        None => String::new(),
    };
    let graph = format!(
        "[1:v]{reference_chain}format=yuv420p[r];[0:v]format=yuv420p[m];[m][r]{filter}=stats_file={}",
        stats.display()
    );
    // `-cpuflags 0`: ffmpeg's C reference code. Its x86 SIMD SSIM differs from it (and from
    // itself, depending on the bytes past a plane's width) on planes like carphone's 88-wide
    // chroma; on luma the two agree.
    let status = Command::new("ffmpeg")
        .args(["-cpuflags", "0", "-v", "error", "-i"])
        .arg(main)
        .arg("-i")
        .arg(reference)
        .args(["-lavfi", &graph, "-f", "null", "-"])
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::read_to_string(&stats)
        .unwrap()
        .lines()
        .map(|line| {
            line.split_whitespace()
                .filter_map(|kv| kv.split_once(':'))
                .filter_map(|(k, v)| Some((k.to_owned(), v.parse::<f64>().ok()?)))
                .collect()
        })
        .collect()
}

fn value(frame: &[(String, f64)], key: &str) -> f64 {
    frame.iter().find(|(k, _)| k == key).map(|(_, v)| *v).unwrap()
}

fn frames(clip: &str, width: usize, height: usize) -> Vec<Frame> {
    decode(ff(), &corpus(clip), width, height).unwrap()
}

#[test]
fn psnr_and_ssim_match_ffmpeg_on_the_carphone_pair() {
    let (distorted, pristine) = (corpus("carphone_distorted.mp4"), corpus("carphone_pristine.mp4"));
    let a = frames("carphone_distorted.mp4", 176, 144);
    let b = frames("carphone_pristine.mp4", 176, 144);
    assert_eq!((a.len(), b.len()), (120, 120));
    let psnr_stats = ffmpeg_stats("psnr", &distorted, &pristine, None);
    let ssim_stats = ffmpeg_stats("ssim", &distorted, &pristine, None);
    assert_eq!((psnr_stats.len(), ssim_stats.len()), (120, 120));
    let mut mse_sum = 0.0;
    for (i, (fa, fb)) in a.iter().zip(&b).enumerate() {
        let mut mse_frame = 0.0;
        for (p, name) in ["y", "u", "v"].iter().enumerate() {
            let (pa, pb) = (fa.planes[p].as_ref(), fb.planes[p].as_ref());
            let mse = metrics::mse(pa, pb);
            mse_frame += mse * (pa.width * pa.height) as f64 / (176.0 * 144.0 * 1.5);
            // ffmpeg prints two decimals: agree to its rounding.
            let theirs = value(&psnr_stats[i], &format!("psnr_{name}"));
            assert!(
                (metrics::psnr(mse) - theirs).abs() <= 0.005 + 1e-9,
                "frame {i} {name}: {} vs {theirs}",
                metrics::psnr(mse)
            );
            let ssim = metrics::ssim(pa, pb);
            let theirs = value(&ssim_stats[i], &name.to_uppercase());
            assert!((ssim - theirs).abs() < 1e-4, "frame {i} {name}: ssim {ssim} vs {theirs}");
        }
        mse_sum += mse_frame;
    }
    // ffmpeg's summary for this pair: average 26.403764 dB (the PSNR of the mean MSE).
    assert!((metrics::psnr(mse_sum / 120.0) - 26.403764).abs() < 0.01);
}

#[test]
fn ms_ssim_ranks_the_distorted_clip_below_the_pristine_one() {
    let a = frames("carphone_distorted.mp4", 176, 144);
    let b = frames("carphone_pristine.mp4", 176, 144);
    let same = metrics::ms_ssim(b[10].planes[0].as_ref(), b[10].planes[0].as_ref());
    let distorted = metrics::ms_ssim(a[10].planes[0].as_ref(), b[10].planes[0].as_ref());
    let ssim = metrics::ssim(a[10].planes[0].as_ref(), b[10].planes[0].as_ref());
    assert!((same - 1.0).abs() < 1e-12);
    assert!(distorted < 0.97 && distorted > 0.5, "{distorted}");
    // Multi-scale SSIM forgives the fine-scale loss more than single-scale SSIM.
    assert!(distorted > ssim, "{distorted} vs {ssim}");
}

#[test]
fn the_reference_scaler_lands_close_to_ffmpegs_area_scaler() {
    let source = frames("bigbuckbunny.mp4", 1280, 720);
    let tmp = tempfile::tempdir().unwrap();
    let scaled = tmp.path().join("scaled.y4m");
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(corpus("bigbuckbunny.mp4"))
        .args(["-vf", "scale=640:360:flags=area", "-frames:v", "5", "-pix_fmt", "yuv420p"])
        .arg(&scaled)
        .status()
        .unwrap();
    assert!(status.success());
    let theirs = decode(ff(), &scaled, 640, 360).unwrap();
    assert_eq!(theirs.len(), 5);
    for (ours, theirs) in source.iter().zip(&theirs) {
        let ours = scale::resize_frame(ours, 640, 360);
        for p in 0..3 {
            let db =
                metrics::psnr(metrics::mse(ours.planes[p].as_ref(), theirs.planes[p].as_ref()));
            assert!(db > 38.0, "plane {p}: {db} dB");
        }
    }
}

#[test]
fn block_errors_locate_a_burnt_in_logo() {
    // A white box drawn by ffmpeg over the top-right corner of a real frame.
    let tmp = tempfile::tempdir().unwrap();
    let marked = tmp.path().join("marked.y4m");
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(corpus("bigbuckbunny.mp4"))
        .args([
            "-vf",
            "drawbox=x=1100:y=20:w=128:h=64:color=white:t=fill",
            "-frames:v",
            "1",
            "-pix_fmt",
            "yuv420p",
        ])
        .arg(&marked)
        .status()
        .unwrap();
    assert!(status.success());
    let clean = &frames("bigbuckbunny.mp4", 1280, 720)[0];
    let marked = &decode(ff(), &marked, 1280, 720).unwrap()[0];
    let map = metrics::block_errors(clean.planes[0].as_ref(), marked.planes[0].as_ref(), 16);
    let frame_mse = metrics::mse(clean.planes[0].as_ref(), marked.planes[0].as_ref());
    // The frame average barely moves; the worst block is the logo.
    assert!(metrics::psnr(frame_mse) > 30.0);
    let worst = map.mse.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0;
    let (col, row) = (worst % map.cols, worst / map.cols);
    assert!((68..=76).contains(&col) && (1..=5).contains(&row), "worst block at {col},{row}");
    // Measured: the frame at 41.7 dB, its worst block at 20.7 dB.
    assert!(metrics::psnr(map.worst()) < metrics::psnr(frame_mse) - 20.0);
}
