//! Uploads in chunks: resumed by asking again, every chunk checked (its signature covers its
//! blake3; it must start at exactly what the relay has), the whole file checked against its
//! declared blake3, then cut by the media engine into a source that is content on the relay.

use std::time::Duration;

use kinema_chain::Hash;
use kinema_chain::crypto::SecretKey;
use kinema_relay::Limits;
use kinema_relay::api::{Client, Error, NewUpload, UploadState};
use kinema_test_support::{corpus, eventually};

use crate::relay::{relay, writer};

/// The refusal's status, and its reason.
fn refused(e: Error) -> (u16, String) {
    match e {
        Error::Refused { status, error, .. } => (status, error),
        e => panic!("not a refusal: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clip_uploaded_in_checked_chunks_is_resumed_and_cut_into_a_source() {
    let dir = tempfile::tempdir().unwrap();
    let relay = relay(dir.path(), None, Limits::default()).await;
    let client = Client::new(&relay.url()).with_key(writer());
    let bytes = std::fs::read(corpus("vtest.avi")).unwrap();
    let new = NewUpload {
        name: "vtest.avi".into(),
        size: bytes.len() as u64,
        blake3: Hash::digest(&bytes),
        heights: vec![240],
    };
    let upload = client.new_upload(&new).await.unwrap();
    assert_eq!((upload.state, upload.received), (UploadState::Receiving, 0));
    let chunk = bytes.len() / 3 + 1;

    // The first chunk; then a chunk that does not start where the relay is.
    let at = client.put_chunk(&upload.id, 0, bytes[..chunk].to_vec()).await.unwrap();
    assert_eq!(at.received, chunk as u64);
    let (status, why) =
        refused(client.put_chunk(&upload.id, 0, bytes[..chunk].to_vec()).await.unwrap_err());
    assert_eq!(status, 409, "{why}");
    assert!(why.contains(&format!("send from offset {chunk}")), "{why}");

    // Another account may not add to it; an unsigned chunk is refused before it is read.
    let other = Client::new(&relay.url()).with_key(SecretKey::from_seed([9; 32]));
    let (status, why) = refused(
        other
            .put_chunk(&upload.id, chunk as u64, bytes[chunk..2 * chunk].to_vec())
            .await
            .unwrap_err(),
    );
    assert_eq!(status, 403, "{why}");
    // (A small one: the relay answers 401 without reading a body, and a client still sending a
    // large one sees its connection closed instead of the answer.)
    let unsigned = Client::new(&relay.url());
    let (status, _) = refused(
        unsigned
            .put_chunk(&upload.id, chunk as u64, bytes[chunk..chunk + 1024].to_vec())
            .await
            .unwrap_err(),
    );
    assert_eq!(status, 401);
    // Past the file's end.
    let mut long = bytes[chunk..].to_vec();
    long.push(0);
    let (status, why) =
        refused(client.put_chunk(&upload.id, chunk as u64, long).await.unwrap_err());
    assert_eq!(status, 413, "{why}");

    // Asking again for the same file resumes it where it stopped.
    let resumed = client.new_upload(&new).await.unwrap();
    assert_eq!((resumed.id, resumed.received), (upload.id, chunk as u64));

    // Damaged bytes, each chunk well signed: the whole file does not hash to what was declared,
    // and the upload starts again.
    let mut damaged = bytes[chunk..].to_vec();
    damaged[10] ^= 1;
    let (status, why) =
        refused(client.put_chunk(&upload.id, chunk as u64, damaged).await.unwrap_err());
    assert_eq!(status, 422, "{why}");
    assert_eq!(client.upload(&upload.id).await.unwrap().received, 0);

    for (i, piece) in bytes.chunks(chunk).enumerate() {
        client.put_chunk(&upload.id, (i * chunk) as u64, piece.to_vec()).await.unwrap();
    }
    let ready = eventually("the upload to be cut", Duration::from_secs(120), || async {
        let upload = client.upload(&upload.id).await.unwrap();
        assert_ne!(upload.state, UploadState::Failed, "{:?}", upload.error);
        (upload.state == UploadState::Ready).then_some(upload)
    })
    .await;
    let source = ready.source.unwrap();
    let ladder = ready.ladder.unwrap();
    assert_eq!(ladder.rungs.len(), 1);
    assert_eq!(ladder.rungs[0].height, 240);
    assert!(ready.segments >= 2, "{} segments", ready.segments);
    let content = client.content(&source).await.unwrap();
    assert_eq!(content.segments, i64::from(ready.segments));
    // The source is the uploader's: its bytes count against its quota.
    let account = client.account(&writer().address()).await.unwrap();
    assert!(account.used >= content.bytes as u64, "{account:?}");
    // Every segment is served, and is what the manifest names.
    let manifest: kinema_media::hls::Manifest =
        serde_json::from_slice(&client.blob(&source).await.unwrap()).unwrap();
    for segment in &manifest.renditions[0].segments {
        assert_eq!(Hash::digest(&client.blob(&segment.blake3).await.unwrap()), segment.blake3);
    }
    // Stills for choosing and scrubbing: a poster and a sprite, stored and charged too.
    let poster = client.blob(&ready.poster.unwrap()).await.unwrap();
    assert_eq!(&poster[..2], &[0xff, 0xd8]);
    let preview = ready.preview.unwrap();
    let sprite = client.blob(&preview.sprite).await.unwrap();
    assert_eq!(&sprite[..2], &[0xff, 0xd8]);
    assert_eq!(preview.count, (content.duration_ms as u32).div_ceil(2000), "{preview:?}");
    assert!(account.used >= (content.bytes as u64) + (poster.len() + sprite.len()) as u64);
    // Done: no more chunks.
    let (status, _) = refused(client.put_chunk(&upload.id, 0, vec![1]).await.unwrap_err());
    assert_eq!(status, 409);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_is_not_video_fails_its_cut_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let relay = relay(dir.path(), None, Limits::default()).await;
    let client = Client::new(&relay.url()).with_key(writer());
    let bytes = b"this is not a video".repeat(100);
    let new = NewUpload {
        name: "notes.mp4".into(),
        size: bytes.len() as u64,
        blake3: Hash::digest(&bytes),
        heights: Vec::new(),
    };
    let upload = client.new_upload(&new).await.unwrap();
    client.put_chunk(&upload.id, 0, bytes).await.unwrap();
    let failed = eventually("the cut to fail", Duration::from_secs(60), || async {
        let upload = client.upload(&upload.id).await.unwrap();
        (upload.state == UploadState::Failed).then_some(upload)
    })
    .await;
    let why = failed.error.unwrap();
    assert!(why.starts_with("notes.mp4: "), "{why}");
    // Named as the uploader named it: nothing of where the relay keeps it.
    assert!(!why.contains(&dir.path().display().to_string()), "{why}");
    // Bad requests name what is wrong.
    let (status, why) =
        refused(client.new_upload(&NewUpload { size: 0, ..new.clone() }).await.unwrap_err());
    assert_eq!(status, 400, "{why}");
    let (status, why) =
        refused(client.new_upload(&NewUpload { heights: vec![20_000], ..new }).await.unwrap_err());
    assert_eq!(status, 400, "{why}");
}
