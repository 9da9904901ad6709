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

#[test]
fn a_cache_budget_evicts_the_least_recently_used_and_never_a_pinned_blob() {
    let dir = tempfile::tempdir().unwrap();
    let blob = |i: u8| vec![i; 3 * GROUP];
    // Each blob takes 3 groups and a 104-byte outboard: four fit in the budget, five do not.
    let each = (3 * GROUP + 8 + 3 * 32) as u64;
    let store = BlobStore::with_cache_budget(dir.path(), 4 * each).unwrap();
    let pinned = store.put(&blob(0)).unwrap();
    store.pin(&pinned).unwrap();
    let names: Vec<_> = (1..=4).map(|i| store.put(&blob(i)).unwrap()).collect();
    assert_eq!(store.cache_use(), Some((4 * each, 4 * each)));
    // Blob 1 is used again; blob 5 arrives: blob 2, the least recently used, goes.
    store.get(&names[0]).unwrap();
    let fifth = store.put(&blob(5)).unwrap();
    assert!(!store.has(&names[1]));
    for name in [pinned, names[0], names[2], names[3], fifth] {
        assert!(store.has(&name), "{name} was evicted");
    }
    // Many more come and go; the pinned blob stays, the cache stays within its budget.
    for i in 6..40 {
        store.put(&blob(i)).unwrap();
        assert!(store.cache_use().unwrap().0 <= 4 * each);
    }
    assert!(store.has(&pinned));
    assert_eq!(store.list().unwrap().len(), 5);

    // After a restart with a smaller budget, the oldest cached files go first; the pin holds.
    drop(store);
    let store = BlobStore::with_cache_budget(dir.path(), each).unwrap();
    assert_eq!(store.list().unwrap().len(), 2);
    assert!(store.has(&pinned) && store.is_pinned(&pinned));
    assert!(store.has(&store.put(&blob(39)).unwrap()));
    // Unpinned, it is a cached blob like the others, over the budget now: evicted.
    store.unpin(&pinned).unwrap();
    assert!(!store.has(&pinned));
    assert_eq!(store.cache_use(), Some((each, each)));
}

#[test]
fn a_blob_written_in_pieces_is_the_blob_put_whole_and_nothing_is_left_of_an_abandoned_one() {
    let clip = std::fs::read(kinema_test_support::corpus("bigbuckbunny.mp4")).unwrap();
    let whole = tempfile::tempdir().unwrap();
    let expected = BlobStore::open(whole.path()).unwrap().put(&clip).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::with_cache_budget(dir.path(), 1 << 30).unwrap();
    let mut writer = store.writer().unwrap();
    for piece in clip.chunks(7777) {
        writer.write(piece).unwrap();
    }
    let written = writer.finish().unwrap();
    assert_eq!((written.name(), written.len()), (expected, clip.len() as u64));
    // Named as something else, it is refused and its file removed.
    let other = kinema_chain::Hash::digest(b"other");
    let err = store.commit(written, Some(other), true).unwrap_err();
    assert!(matches!(err, BlobError::WrongHash { .. }), "{err}");
    let files = || std::fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(files(), 0);

    let mut writer = store.writer().unwrap();
    writer.write(&clip).unwrap();
    let name = store.commit(writer.finish().unwrap(), Some(expected), true).unwrap();
    assert_eq!(store.get(&name).unwrap(), clip);
    assert_eq!(
        store.outboard(&name).unwrap(),
        BlobStore::open(whole.path()).unwrap().outboard(&name).unwrap()
    );
    assert!(store.is_pinned(&name));
    assert_eq!(store.cache_use(), Some((0, 1 << 30)));
    // A writer dropped half way, or a written blob never committed, leaves no file.
    let mut writer = store.writer().unwrap();
    writer.write(&clip[..1000]).unwrap();
    drop(writer);
    let mut writer = store.writer().unwrap();
    writer.write(&clip[..1000]).unwrap();
    drop(writer.finish().unwrap());
    assert_eq!(files(), 3, "the blob, its outboard and its pin");
}
