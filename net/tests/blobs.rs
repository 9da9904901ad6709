//! The blob store on a real clip: names are blake3, groups verify against the outboard, a
//! restart keeps everything, wrong data is refused and a corrupted file is caught at its group.

#![allow(clippy::unwrap_used)] // tests fail loudly

use kinema_net::blobs::{BlobError, BlobStore};
use kinema_net::verified::{GROUP, Mismatch, groups};

#[test]
fn blobs_are_named_by_blake3_verified_per_group_and_survive_a_restart() {
    let clip = std::fs::read(kinema_test_support::corpus("bigbuckbunny.mp4")).unwrap();
    assert!(clip.len() > 10 * GROUP);
    let dir = tempfile::tempdir().unwrap();
    let name = {
        let store = BlobStore::open(dir.path()).unwrap();
        let name = store.put(&clip).unwrap();
        assert_eq!(name, kinema_chain::Hash::digest(&clip));
        // Storing it again changes nothing; other data under its name is refused.
        assert_eq!(store.put(&clip).unwrap(), name);
        let err = store.put_as(name, &clip[1..]).unwrap_err();
        assert!(matches!(err, BlobError::WrongHash { .. }), "{err}");
        name
    };
    // A write interrupted before its rename leaves a partial file: the next open removes it.
    std::fs::write(dir.path().join("deadbeef.partial"), b"half").unwrap();

    let store = BlobStore::open(dir.path()).unwrap();
    assert!(!dir.path().join("deadbeef.partial").exists());
    assert_eq!(store.list().unwrap(), vec![name]);
    assert_eq!(store.get(&name).unwrap(), clip);
    let outboard = store.outboard(&name).unwrap();
    assert_eq!(outboard.len(), clip.len() as u64);
    let count = groups(outboard.len());
    for index in 0..count {
        let group = store.group(&name, index).unwrap();
        outboard.check(name, index, &group).unwrap();
    }
    assert!(matches!(store.group(&name, count), Err(BlobError::NoSuchGroup { .. })));
    let unknown = kinema_chain::Hash::digest(b"never stored");
    assert!(matches!(store.get(&unknown), Err(BlobError::Missing(_))));

    // The disk flips a byte in group 5: serving still works, checking catches group 5 only.
    let path = dir.path().join(name.to_string());
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[5 * GROUP + 1000] ^= 0x40;
    std::fs::write(&path, bytes).unwrap();
    for index in 0..count {
        let checked = outboard.check(name, index, &store.group(&name, index).unwrap());
        if index == 5 {
            assert_eq!(checked, Err(Mismatch::Group { index: 5, start: 5 * GROUP as u64 }));
        } else {
            checked.unwrap();
        }
    }
}
