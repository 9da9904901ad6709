//! The ladder over every clip of the corpus.

use std::path::Path;

use kinema_media::Manifest;
use kinema_media::ladder::{self, Config};
use kinema_media::plan::Mode;
use kinema_media::transcode::EncodeSettings;
use m3u8_rs::Playlist;

use crate::support::{corpus, decode_errors, ff, segment_facts, video_packets};

/// Runs the default ladder on `clip` (a fast preset: the pipeline is under test, not x264) and
/// checks everything a player and a peer rely on.
fn check(clip: &str, mode: Mode, expect_renditions: &[(&str, u32, u32)]) {
    let source = corpus(clip);
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("ladder");
    let config = Config {
        workers: 2,
        encode: EncodeSettings { preset: "superfast".into(), ..Default::default() },
        ..Default::default()
    };
    let mut events = Vec::new();
    let manifest = ladder::run(ff(), &source, &out, &config, &mut |p| events.push(p)).unwrap();
    assert_eq!(manifest.segmenting, mode, "{clip}");
    let sizes: Vec<(&str, u32, u32)> = manifest
        .renditions
        .iter()
        .map(|r| (r.rendition.name.as_str(), r.rendition.width, r.rendition.height))
        .collect();
    assert_eq!(sizes, expect_renditions, "{clip}");
    assert!(
        std::fs::read_dir(tmp.path()).unwrap().count() == 1,
        "only the finished ladder is left beside it"
    );
    assert!(!out.join(".source").exists());

    let on_disk: Manifest =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(on_disk, manifest);
    check_playlists(&out, &manifest);

    let info = kinema_media::probe(ff(), &source).unwrap();
    let interval = info.video.frame_interval();
    let durations = &manifest.segment_durations;
    let mut measured_per_rendition = Vec::new();
    for r in &manifest.renditions {
        assert_eq!(r.segments.len(), durations.len(), "{clip} {}", r.rendition.name);
        let dir = out.join(&r.rendition.name);
        let mut facts = Vec::new();
        for (i, segment) in r.segments.iter().enumerate() {
            let path = dir.join(&segment.file);
            let (id, bytes) = kinema_media::hls::hash_file(&path).unwrap();
            assert_eq!((id, bytes), (segment.blake3, segment.bytes), "{}", path.display());
            assert_eq!(segment.file, format!("{id}.ts"));
            let errors = decode_errors(&path);
            assert!(
                errors.is_empty(),
                "{clip} {} segment {i} does not decode: {errors}",
                r.rendition.name
            );
            let f = segment_facts(&path);
            assert!(f.starts_with_keyframe, "{clip} {} segment {i}: {f:?}", r.rendition.name);
            assert_eq!((f.width, f.height), (r.rendition.width, r.rendition.height));
            facts.push(f);
        }
        // A segment lasts until the next one starts; the last one until its last frame ends.
        let mut measured = Vec::new();
        for (i, f) in facts.iter().enumerate() {
            let duration = match facts.get(i + 1) {
                Some(next) => {
                    assert!(next.start > f.last_frame, "{clip}: segment {i} overlaps the next one");
                    next.start - f.start
                }
                None => f.end - f.start,
            };
            let extinf = r.segments[i].duration;
            assert!(
                (duration - extinf).abs() <= interval + 1e-3,
                "{clip} {} segment {i}: {duration} s measured, EXTINF {extinf}",
                r.rendition.name
            );
            measured.push(duration);
        }
        measured_per_rendition.push(measured);
        // Every source frame is in every rendition, once.
        assert_eq!(
            video_packets(&out.join(&r.playlist)),
            info.video.frame_count,
            "{clip} {}",
            r.rendition.name
        );
    }
    for other in &measured_per_rendition[1..] {
        for (a, b) in measured_per_rendition[0].iter().zip(other) {
            assert!(
                (a - b).abs() <= interval + 1e-3,
                "{clip}: renditions disagree on a segment duration"
            );
        }
    }
    let total: f64 = durations.iter().sum();
    assert!((total - manifest.source.duration).abs() < 1e-4);
    let errors = decode_errors(&out.join("master.m3u8"));
    assert!(errors.is_empty(), "{clip}: ffmpeg -i master.m3u8: {errors}");
}

fn check_playlists(out: &Path, manifest: &Manifest) {
    let master = std::fs::read(out.join("master.m3u8")).unwrap();
    let Ok(Playlist::MasterPlaylist(master)) = m3u8_rs::parse_playlist_res(&master) else {
        panic!("master.m3u8 is not a master playlist");
    };
    assert_eq!(master.variants.len(), manifest.renditions.len());
    for (variant, r) in master.variants.iter().zip(&manifest.renditions) {
        assert_eq!(variant.uri, r.playlist);
        assert_eq!(variant.bandwidth, r.bandwidth);
        let resolution = variant.resolution.unwrap();
        assert_eq!(
            (resolution.width, resolution.height),
            (r.rendition.width.into(), r.rendition.height.into())
        );
        assert!(variant.codecs.as_deref().unwrap().starts_with("avc1.64"));
        let media = std::fs::read(out.join(&r.playlist)).unwrap();
        let Ok(Playlist::MediaPlaylist(media)) = m3u8_rs::parse_playlist_res(&media) else {
            panic!("{} is not a media playlist", r.playlist);
        };
        assert!(media.end_list);
        assert_eq!(media.segments.len(), r.segments.len());
        for (s, entry) in media.segments.iter().zip(&r.segments) {
            assert_eq!(s.uri, entry.file);
            assert!((f64::from(s.duration) - entry.duration).abs() < 1e-3);
            assert!(f64::from(s.duration).round() as u64 <= media.target_duration);
        }
    }
}

const LADDER_720: &[(&str, u32, u32)] =
    &[("720p", 1280, 720), ("480p", 854, 480), ("360p", 640, 360), ("240p", 426, 240)];

#[test]
fn bigbuckbunny_single_keyframe_and_5_1_audio() {
    check("bigbuckbunny.mp4", Mode::Mezzanine, LADDER_720);
}

#[test]
fn bikes_scene_cut_keyframes_are_kept() {
    check("bikes.mp4", Mode::Copy, &[("240p", 564, 240)]);
}

#[test]
fn carphone_below_every_rung_keeps_its_size() {
    check("carphone_pristine.mp4", Mode::Mezzanine, &[("144p", 192, 144)]);
    check("carphone_distorted.mp4", Mode::Mezzanine, &[("144p", 192, 144)]);
}

#[test]
fn city_mpeg2_program_stream() {
    check("cityCC0.mpg", Mode::Copy, &[("360p", 640, 360), ("240p", 426, 240)]);
}

#[test]
fn tree_sparse_frame_timing() {
    check("tree.avi", Mode::Mezzanine, &[("240p", 320, 240)]);
}

#[test]
fn vtest_msmpeg4_avi_with_long_gops() {
    check(
        "vtest.avi",
        Mode::Mezzanine,
        &[("480p", 640, 480), ("360p", 480, 360), ("240p", 320, 240)],
    );
}

#[test]
fn trailer_captions_fades_and_mp3_audio() {
    check("trailer_bbb.mp4", Mode::Mezzanine, LADDER_720);
}
