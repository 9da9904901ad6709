//! What the media engine reads from files a peer or an uploader made: the MPEG-TS reader and
//! `manifest.json`. Arbitrary bytes and mutations of real ones give a value or an error that
//! says something, never a panic.

use std::path::Path;
use std::sync::OnceLock;

use kinema_media::Manifest;
use kinema_media::ts;
use kinema_test_support::fuzz::{explains, mutate, mutations};
use proptest::prelude::*;

use crate::support::ff;

/// A real segment: one second of H.264 and AAC in MPEG-TS, made once.
fn segment() -> &'static [u8] {
    static SEGMENT: OnceLock<Vec<u8>> = OnceLock::new();
    SEGMENT.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("s.ts");
        let made = ff()
            .ffmpeg()
            .args(["-v", "error", "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25"])
            .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "1"])
            .args(["-c:v", "libx264", "-g", "25", "-c:a", "aac", "-f", "mpegts"])
            .arg(&out)
            .status()
            .unwrap();
        assert!(made.success());
        std::fs::read(out).unwrap()
    })
}

fn check(bytes: &[u8]) -> Result<(), TestCaseError> {
    let _ = ts::looks_like_ts(bytes);
    explains("segment", ts::read(Path::new("fuzzed.ts"), bytes))?;
    explains("manifest", serde_json::from_slice::<Manifest>(bytes))?;
    Ok(())
}

proptest! {
    // Each case runs the MPEG-TS reader over up to 8 KiB: fewer cases in CI unless
    // PROPTEST_CASES (`cargo xtask fuzz`) asks for more.
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(64)
    ))]

    #[test]
    fn fuzz_media_readers_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..8192)) {
        check(&bytes)?;
    }

    #[test]
    fn fuzz_media_readers_on_mutated_files(manifest in any::<bool>(), changes in mutations()) {
        let valid: &[u8] = if manifest {
            include_bytes!("fixtures/manifest.json")
        } else {
            segment()
        };
        check(&mutate(valid, &changes))?;
    }
}
