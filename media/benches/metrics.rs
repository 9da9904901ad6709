//! Cost of each metric on one 720p frame pair from the corpus (bigbuckbunny.mp4 against a
//! CRF 30 re-encode of it): `cargo bench -p kinema-media --bench metrics`.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use divan::{Bencher, black_box};
use kinema_media::frame::Frame;
use kinema_media::{Ffmpeg, decode, metrics, scale};

fn main() {
    divan::main();
}

/// The first frame of the clip and of its re-encode, decoded once.
fn pair() -> &'static (Frame, Frame) {
    static PAIR: OnceLock<(Frame, Frame)> = OnceLock::new();
    PAIR.get_or_init(|| {
        let ff = Ffmpeg::locate().unwrap();
        let clip = std::env::var_os("KINEMA_CORPUS")
            .map_or_else(
                || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus"),
                PathBuf::from,
            )
            .join("bigbuckbunny.mp4");
        let dir = std::env::temp_dir().join(format!("kinema-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let encoded = dir.join("crf30.mp4");
        let status = Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-i"])
            .arg(&clip)
            .args(["-frames:v", "1", "-c:v", "libx264", "-crf", "30"])
            .arg(&encoded)
            .status()
            .unwrap();
        assert!(status.success());
        let a = decode::decode(&ff, &clip, 1280, 720).unwrap().swap_remove(0);
        let b = decode::decode(&ff, &encoded, 1280, 720).unwrap().swap_remove(0);
        let _ = std::fs::remove_dir_all(&dir);
        (a, b)
    })
}

#[divan::bench]
fn psnr_yuv(bencher: Bencher<'_, '_>) {
    let (a, b) = pair();
    bencher.bench(|| {
        (0..3)
            .map(|p| metrics::mse(black_box(a.planes[p].as_ref()), black_box(b.planes[p].as_ref())))
            .sum::<f64>()
    });
}

#[divan::bench]
fn ssim_yuv(bencher: Bencher<'_, '_>) {
    let (a, b) = pair();
    bencher.bench(|| {
        (0..3)
            .map(|p| {
                metrics::ssim(black_box(a.planes[p].as_ref()), black_box(b.planes[p].as_ref()))
            })
            .sum::<f64>()
    });
}

#[divan::bench]
fn ms_ssim_luma(bencher: Bencher<'_, '_>) {
    let (a, b) = pair();
    bencher.bench(|| {
        metrics::ms_ssim(black_box(a.planes[0].as_ref()), black_box(b.planes[0].as_ref()))
    });
}

#[divan::bench]
fn block_errors_luma_16(bencher: Bencher<'_, '_>) {
    let (a, b) = pair();
    bencher.bench(|| {
        metrics::block_errors(black_box(a.planes[0].as_ref()), black_box(b.planes[0].as_ref()), 16)
    });
}

#[divan::bench]
fn reference_scaler_720p_to_480p(bencher: Bencher<'_, '_>) {
    let (a, _) = pair();
    bencher.bench(|| scale::resize_frame(black_box(a), 854, 480));
}

#[divan::bench]
fn edges_kept_luma(bencher: Bencher<'_, '_>) {
    let (a, b) = pair();
    bencher.bench(|| {
        metrics::edges_kept(black_box(a.planes[0].as_ref()), black_box(b.planes[0].as_ref()))
    });
}
