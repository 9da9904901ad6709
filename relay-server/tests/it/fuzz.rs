//! What the relay accepts from anyone who posts content: a `manifest.json`. Arbitrary bytes and
//! mutations of a real one are accepted only when they are a manifest the gateway can serve
//! safely, or refused with a reason, never a panic.

use kinema_relay::gateway::check_manifest;
use kinema_test_support::fuzz::{explains, mutate, mutations};
use proptest::prelude::*;

const MANIFEST: &[u8] = include_bytes!("../../../media/tests/it/fixtures/manifest.json");

proptest! {
    #[test]
    fn fuzz_posted_manifests(bytes in prop::collection::vec(any::<u8>(), 0..4096), changes in mutations()) {
        explains("manifest", check_manifest(&bytes))?;
        let changed = mutate(MANIFEST, &changes);
        if let Ok(manifest) = check_manifest(&changed) {
            // What is accepted names no path outside the gateway.
            for r in &manifest.renditions {
                prop_assert!(!r.rendition.name.contains('/') && !r.rendition.name.contains(".."));
                for s in &r.segments {
                    prop_assert_eq!(&s.file, &format!("{}.ts", s.blake3));
                }
            }
        } else {
            explains("manifest", check_manifest(&changed))?;
        }
    }
}
