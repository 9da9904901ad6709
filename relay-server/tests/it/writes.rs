//! The relay's write side under attack: unsigned, replayed, stale and forged writes refused
//! before their bodies matter; accounts held to their quotas; uploads streamed in pieces;
//! manifests that would write their own playlist lines refused; the operator's deny list
//! answered 451; what the relay fetches for others held to its cache budget while what is
//! published stays; a damaged stored copy never served.

use std::sync::Arc;
use std::time::Duration;

use kinema_chain::Hash;
use kinema_chain::crypto::SecretKey;
use kinema_net::blobs::BlobStore;
use kinema_net::p2p::{self, P2pConfig};
use kinema_relay::api::{self, REPLAY_WINDOW_MS, WriteAuth};
use kinema_relay::{Limits, Quotas};
use serde_json::Value;

use crate::relay::{
    Answer, call, call_with, config, ladder, operator, oversized, relay, sign, signed, writer,
};

fn refused(answer: Answer, status: u16, reason: &str) {
    assert_eq!(answer.status, status, "{}", String::from_utf8_lossy(&answer.body));
    let why = answer.json()["error"].as_str().unwrap().to_owned();
    assert!(why.contains(reason), "{why:?} does not say {reason:?}");
}

/// Sends `body` to `path` in HTTP/1.1 chunks of `piece` bytes, signed by `key`.
async fn chunked(
    at: std::net::SocketAddr,
    path: &str,
    body: &[u8],
    piece: usize,
    key: &SecretKey,
) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(at).await.unwrap();
    let auth = WriteAuth::sign(key, "PUT", path, body, api::now_ms()).header();
    let head = format!(
        "PUT {path} HTTP/1.1\r\nHost: kinema\r\nAuthorization: {auth}\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    for chunk in body.chunks(piece) {
        stream.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).await.unwrap();
        stream.write_all(chunk).await.unwrap();
        stream.write_all(b"\r\n").await.unwrap();
    }
    stream.write_all(b"0\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    String::from_utf8_lossy(&answer).split(' ').nth(1).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_replayed_and_over_quota_writes_are_refused_with_their_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let key = writer();
    let mut settings = config(dir.path(), None, Limits::default());
    // Strangers may not write; the writer may hold 4 MiB.
    settings.quotas = Quotas { default: 0, accounts: [(key.address(), 4 << 20)].into() };
    let relay = kinema_relay::start(settings).await.unwrap();
    let base = relay.url();
    let blob = vec![7u8; 3 << 20];
    let name = Hash::digest(&blob);
    let url = format!("{base}/api/v1/blobs/{name}");

    // Unsigned: 401 whatever the body, even one far over the upload limit, and the scheme
    // named; so are writes to any path and the operator's reads. (Small bodies: the relay
    // answers without reading them.)
    let small = b"a small blob".to_vec();
    let small_path = format!("/api/v1/blobs/{}", Hash::digest(&small));
    let small_url = format!("{base}{small_path}");
    let unsigned = call("PUT", small_url.clone(), Some(small.clone())).await;
    assert_eq!(unsigned.authenticate.as_deref(), Some("Kinema"));
    refused(unsigned, 401, "must be signed by a chain account");
    let path = format!("/api/v1/blobs/{name}");
    refused(oversized(relay.http, "PUT", &path, 1 << 30, None).await, 401, "must be signed");
    refused(
        call("POST", format!("{base}/api/v1/content"), Some(b"{}".to_vec())).await,
        401,
        "must be signed",
    );
    refused(call("PUT", format!("{base}/anything"), Some(Vec::new())).await, 401, "must be signed");
    refused(call("GET", format!("{base}/api/v1/admin/denied"), None).await, 401, "must be signed");

    // Forged, stale and replayed signatures.
    let stranger = SecretKey::from_seed([9; 32]);
    let put = |auth: String| call_with("PUT", small_url.clone(), Some(small.clone()), Some(auth));
    let forged = sign(&key, "PUT", &small_url, &small)
        .replace(&key.public().to_string(), &stranger.public().to_string());
    refused(put(forged).await, 401, "signature is not");
    let stale = WriteAuth::sign(
        &key,
        "PUT",
        &small_path,
        &small,
        api::now_ms() - REPLAY_WINDOW_MS - 60_000,
    );
    refused(put(stale.header()).await, 401, "good for");
    let once = sign(&key, "PUT", &small_url, &small);
    assert_eq!(put(once.clone()).await.status, 201);
    refused(put(once).await, 401, "used before");
    let garbled = sign(&key, "PUT", &small_url, &small).replace("sig=", "sig=zz");
    refused(put(garbled).await, 401, "sig");

    // A signed stranger may not store; the writer is held to its quota (a blob already held
    // costs nothing again), and the account's use is public.
    refused(
        signed(&stranger, "PUT", small_url.clone(), Some(small.clone())).await,
        403,
        "may not store",
    );
    assert_eq!(signed(&key, "PUT", url.clone(), Some(blob.clone())).await.status, 201);
    let second = vec![8u8; 2 << 20];
    let second_url = format!("{base}/api/v1/blobs/{}", Hash::digest(&second));
    refused(signed(&key, "PUT", second_url, Some(second)).await, 413, "of its 4194304 bytes");
    let client = api::Client::new(&base);
    let account = client.account(&key.address()).await.unwrap();
    assert_eq!((account.used, account.quota), ((3 << 20) + small.len() as u64, 4 << 20));
    assert_eq!(client.account(&stranger.address()).await.unwrap().quota, 0);

    // A blob sent in pieces (no length announced) is streamed to disk, hashed as it comes.
    let pieces: Vec<u8> = (0..900_000u32).map(|i| (i * 7 + i / 1000) as u8).collect();
    let pieces_name = Hash::digest(&pieces);
    let pieces_path = format!("/api/v1/blobs/{pieces_name}");
    assert_eq!(chunked(relay.http, &pieces_path, &pieces, 50_000, &key).await, 201);
    assert_eq!(client.blob(&pieces_name).await.unwrap(), pieces);
    // Past what is left of the quota, a streamed body is cut off with 413 too.
    let big: Vec<u8> = vec![3; 1 << 20];
    let big_path = format!("/api/v1/blobs/{}", Hash::digest(&big));
    assert_eq!(chunked(relay.http, &big_path, &big, 64 << 10, &key).await, 413);
    let leftovers = std::fs::read_dir(dir.path().join("blobs"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "partial"))
        .count();
    assert_eq!(leftovers, 0, "a refused upload left its partial file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_that_would_write_its_own_playlist_lines_is_refused() {
    let (ladder_dir, _) = ladder();
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(ladder_dir.path().join("ladder/manifest.json")).unwrap(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let relay = relay(dir.path(), None, Limits::default()).await;
    let url = format!("{}/api/v1/content", relay.url());
    let key = writer();
    let post = |change: &dyn Fn(&mut Value)| {
        let mut bad = manifest.clone();
        change(&mut bad);
        let body = serde_json::to_vec(&bad).unwrap();
        signed(&key, "POST", url.clone(), Some(body))
    };
    let injected = "240p\n#EXT-X-STREAM-INF:BANDWIDTH=1\nhttps://elsewhere.example/evil.m3u8";
    refused(post(&|m| m["renditions"][0]["name"] = injected.into()).await, 422, "not a short");
    let codecs = "avc1.64001e\"\n#EXT-X-STREAM-INF:BANDWIDTH=1";
    refused(post(&|m| m["renditions"][0]["codecs"] = codecs.into()).await, 422, "RFC 6381");
    refused(
        post(&|m| m["renditions"][0]["segments"][0]["duration"] = 1e9.into()).await,
        422,
        "out of range",
    );
    refused(post(&|m| m["renditions"][1]["width"] = 0.into()).await, 422, "pixels");

    // A manifest that declares a segment at 1 byte is charged 1 byte: the segment's real
    // bytes are then refused, not let in uncharged.
    assert_eq!(post(&|m| m["renditions"][0]["segments"][0]["bytes"] = 1.into()).await.status, 201);
    let rendition = manifest["renditions"][0]["name"].as_str().unwrap();
    let file = manifest["renditions"][0]["segments"][0]["file"].as_str().unwrap();
    let segment =
        std::fs::read(ladder_dir.path().join("ladder").join(rendition).join(file)).unwrap();
    let name = Hash::digest(&segment);
    let put = signed(&key, "PUT", format!("{}/api/v1/blobs/{name}", relay.url()), Some(segment));
    refused(put.await, 422, "declared 1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_denies_content_and_the_relay_answers_451() {
    let (ladder_dir, manifest) = ladder();
    let out = ladder_dir.path().join("ladder");
    let dir = tempfile::tempdir().unwrap();
    let relay = relay(dir.path(), None, Limits::default()).await;
    let base = relay.url();
    let client = api::Client::new(&base).with_key(writer());
    let publish = || async {
        for rendition in &manifest.renditions {
            for segment in &rendition.segments {
                let bytes =
                    std::fs::read(out.join(&rendition.rendition.name).join(&segment.file)).unwrap();
                client.put_blob(&segment.blake3, bytes).await?;
            }
        }
        client.add_content(std::fs::read(out.join("manifest.json")).unwrap()).await
    };
    let content = publish().await.unwrap();
    let id = content.id;
    let master = format!("{base}/hls/{id}/master.m3u8");
    assert_eq!(call("GET", master.clone(), None).await.status, 200);
    let segment = manifest.renditions[0].segments[0].blake3;

    // Only the operator may deny.
    let denied = client.deny(&id, "court order 17").await.unwrap_err().to_string();
    assert!(denied.contains("403") && denied.contains("only the relay's operator"), "{denied}");
    let admin = api::Client::new(&base).with_key(operator());
    admin.deny(&id, "court order 17").await.unwrap();

    // Denied: the content, its manifest and its segments answer 451 with the reason; they
    // are gone from the store and the index, and cannot come back.
    refused(call("GET", master.clone(), None).await, 451, "court order 17");
    refused(
        call("GET", format!("{base}/api/v1/blobs/{segment}"), None).await,
        451,
        "court order 17",
    );
    refused(
        call("GET", format!("{base}/api/v1/content/{id}"), None).await,
        451,
        "refused by this relay's operator",
    );
    assert!(client.content_list().await.unwrap().content.is_empty());
    let store = BlobStore::open(&dir.path().join("blobs")).unwrap();
    assert!(!store.has(&id) && !store.has(&segment));
    let again = publish().await.unwrap_err().to_string();
    assert!(again.contains("451"), "{again}");
    let listed = admin.denied().await.unwrap().denied;
    assert!(listed.iter().any(|d| d.id == id) && listed.iter().any(|d| d.id == segment));
    let stranger_list = client.denied().await.unwrap_err().to_string();
    assert!(stranger_list.contains("403"), "{stranger_list}");

    // Taken off the list, the content can be published again.
    admin.allow(&id).await.unwrap();
    assert!(admin.denied().await.unwrap().denied.is_empty());
    publish().await.unwrap();
    assert_eq!(call("GET", master, None).await.status, 200);
    drop(relay);

    // A deny list read at start refuses what it names.
    let list = dir.path().join("deny.txt");
    std::fs::write(&list, format!("# refused here\n{id} a notice\n")).unwrap();
    let mut settings = config(dir.path(), None, Limits::default());
    settings.http = "127.0.0.1:0".parse().unwrap();
    settings.deny_list = Some(list.clone());
    let relay = kinema_relay::start(settings).await.unwrap();
    refused(
        call("GET", format!("{}/hls/{id}/master.m3u8", relay.url()), None).await,
        451,
        "a notice",
    );
    std::fs::write(&list, "not-a-hash\n").unwrap();
    let mut settings = config(&dir.path().join("other"), None, Limits::default());
    settings.deny_list = Some(list);
    let err = kinema_relay::start(settings).await.unwrap_err().to_string();
    assert!(err.contains("line 1") && err.contains("not-a-hash"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetched_blobs_stay_within_the_cache_budget_and_a_damaged_copy_is_never_served() {
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    // A peer holds eight 100 kB blobs nobody published on the relay.
    let store = Arc::new(BlobStore::open(dirs[0].path()).unwrap());
    let blobs: Vec<Vec<u8>> = (0..8u8).map(|i| vec![i; 100_000]).collect();
    let names: Vec<Hash> = blobs.iter().map(|b| store.put(b).unwrap()).collect();
    let mut settings = config(dirs[1].path(), None, Limits::default());
    let budget = 250_000;
    settings.cache_budget = budget;
    let relay = kinema_relay::start(settings).await.unwrap();
    let base = relay.url();
    let tcp = relay.p2p.addresses().into_iter().find(|a| !a.to_string().contains("/ws")).unwrap();
    let (peer, _link) = p2p::start(P2pConfig {
        peers: vec![tcp],
        blobs: Some(store),
        ..P2pConfig::new(p2p::keypair_from_seed([79; 32]).unwrap())
    })
    .unwrap();
    tokio::time::timeout(Duration::from_secs(30), peer.connected_to(1)).await.unwrap();

    // A blob the writer uploads is pinned: it outlasts everything fetched after it.
    let client = api::Client::new(&base).with_key(writer());
    let pinned = vec![42u8; 200_000];
    let pinned_name = Hash::digest(&pinned);
    client.put_blob(&pinned_name, pinned.clone()).await.unwrap();
    for (name, bytes) in names.iter().zip(&blobs) {
        assert_eq!(&client.blob(name).await.unwrap(), bytes);
    }
    let held = || BlobStore::open(&dirs[1].path().join("blobs")).unwrap();
    let cached: Vec<Hash> = names.iter().copied().filter(|n| held().has(n)).collect();
    assert!(!cached.is_empty() && cached.len() <= 2, "{} fetched blobs kept", cached.len());
    assert!(held().has(&pinned_name));

    // The disk flips a byte of a kept copy: it is not served, it is removed, and the next
    // request fetches a good copy from the peer again.
    let damaged = cached[0];
    let file = dirs[1].path().join("blobs").join(damaged.to_string());
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[1234] ^= 1;
    std::fs::write(&file, bytes).unwrap();
    refused(
        call("GET", format!("{base}/api/v1/blobs/{damaged}"), None).await,
        500,
        "damaged and is removed",
    );
    let index = names.iter().position(|n| *n == damaged).unwrap();
    assert_eq!(client.blob(&damaged).await.unwrap(), blobs[index]);
}
