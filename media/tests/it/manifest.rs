//! `manifest.json` and the playlists written from it, pinned: relays, players and other
//! versions read them, and a content id is the blake3 of the manifest's bytes.
//!
//! The fixture is a real ladder's manifest (`kinema media ladder carphone_pristine.mp4
//! --renditions 144p,120p`: a mezzanine, two renditions, no audio).

use kinema_media::hls::{self, Manifest};

const FIXTURE: &str = include_str!("fixtures/manifest.json");

#[test]
fn a_manifest_reads_and_writes_back_to_the_same_bytes() {
    let manifest: Manifest = serde_json::from_str(FIXTURE).unwrap();
    // As `hls::write` writes it: pretty, no newline at the end.
    let written = String::from_utf8(serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();
    assert_eq!(written, FIXTURE, "manifest.json's layout changed");
    insta::assert_snapshot!("manifest_json", written);
}

#[test]
fn the_playlists_of_a_manifest_keep_their_lines() {
    let manifest: Manifest = serde_json::from_str(FIXTURE).unwrap();
    insta::assert_snapshot!("master_m3u8", hls::master_playlist(&manifest.renditions));
    insta::assert_snapshot!("index_m3u8", hls::media_playlist(&manifest.renditions[0].segments));
}
