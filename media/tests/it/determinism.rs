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

/// The market's split of the work — the uploader cuts, workers transcode one segment each,
/// the accepted outputs are assembled — makes the very ladder one `ladder::run` makes.
#[test]
fn a_cut_transcoded_segment_by_segment_and_assembled_is_the_same_ladder() {
    use kinema_media::hls::{self, Manifest};
    use kinema_media::transcode::{self, Task};

    let config = Config {
        heights: vec![360, 240],
        workers: 1,
        encode: EncodeSettings {
            preset: "veryfast".into(),
            deterministic: true,
            ..Default::default()
        },
        ..Default::default()
    };
    let input = corpus("bigbuckbunny.mp4");
    let tmp = tempfile::tempdir().unwrap();
    let whole = ladder::run(ff(), &input, &tmp.path().join("whole"), &config, &mut |_| {}).unwrap();

    let cut_dir = tmp.path().join("cut");
    let cut = ladder::cut(ff(), &input, &cut_dir, &config, &mut |_| {}).unwrap();
    // The cut is content as it is: its manifest checks and its files are where it says.
    let written: Manifest =
        serde_json::from_slice(&std::fs::read(cut_dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(written, cut.manifest);
    written.check().unwrap();
    assert_eq!(written.renditions.len(), 1);
    assert_eq!(written.renditions[0].rendition.name, ladder::SOURCE_RENDITION);
    assert_eq!(cut.renditions.len(), 2);
    let source = &written.renditions[0];
    let mut outputs = vec![Vec::new(); cut.renditions.len()];
    let mut firsts = Vec::new();
    for (i, segment) in source.segments.iter().enumerate() {
        let path = cut_dir.join(ladder::SOURCE_RENDITION).join(&segment.file);
        assert_eq!(hls::hash_file(&path).unwrap(), (segment.blake3, segment.bytes));
        let out: Vec<_> = cut
            .renditions
            .iter()
            .map(|r| (r, tmp.path().join(format!("{}-{i}.ts", r.name))))
            .collect();
        let task = Task { source: &path, outputs: out.clone() };
        transcode::transcode(ff(), &task, &config.encode, None).unwrap();
        for (r, (_, file)) in out.iter().enumerate() {
            outputs[r].push(hls::hash_file(file).unwrap());
            if i == 0 {
                firsts.push(file.clone());
            }
        }
    }
    let assembled =
        ladder::assemble(ff(), &written, cut.renditions.clone(), &outputs, &firsts).unwrap();
    assembled.check().unwrap();
    assert_eq!(assembled, whole);
}
