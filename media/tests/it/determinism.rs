//! The deterministic profile: segment bytes do not depend on how the work was scheduled.

use kinema_media::ladder::{self, Config};
use kinema_media::transcode::EncodeSettings;

use crate::support::{corpus, ff};

fn hashes(workers: usize, heights: &[u32]) -> Vec<Vec<String>> {
    let tmp = tempfile::tempdir().unwrap();
    let config = Config {
        heights: heights.to_vec(),
        workers,
        encode: EncodeSettings {
            preset: "veryfast".into(),
            deterministic: true,
            ..Default::default()
        },
        ..Default::default()
    };
    let out = tmp.path().join("out");
    let manifest =
        ladder::run(ff(), &corpus("bigbuckbunny.mp4"), &out, &config, &mut |_| {}).unwrap();
    manifest
        .renditions
        .iter()
        .map(|r| r.segments.iter().map(|s| s.blake3.to_string()).collect())
        .collect()
}

#[test]
fn different_worker_counts_give_identical_segments() {
    let heights = [480, 240];
    let one = hashes(1, &heights);
    let three = hashes(3, &heights);
    assert_eq!(one.len(), 2);
    assert!(one.iter().all(|r| r.len() == 3));
    assert_eq!(one, three);
}
