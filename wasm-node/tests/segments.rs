//! Blobs over libp2p between native nodes on loopback: found through kademlia, fetched in
//! verified 16 KiB groups; a provider serving a corrupted group is caught at it and banned; a
//! restarted node still serves what it stored.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use kinema_node::blobs::BlobStore;
use kinema_node::p2p::{self, FetchError, P2p, P2pConfig, P2pLink};
use kinema_node::verified::GROUP;
use libp2p::Multiaddr;

fn corpus(name: &str) -> PathBuf {
    std::env::var_os("KINEMA_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus"))
        .join(name)
}

/// A node with identity `seed`, listening on `listen`, dialling `peers`, serving `blobs`.
async fn node(
    seed: u8,
    listen: &str,
    peers: &[Multiaddr],
    blobs: Option<&Path>,
) -> (P2p, P2pLink, Multiaddr) {
    let (p2p, link) = p2p::start(P2pConfig {
        keypair: p2p::keypair_from_seed([seed; 32]).unwrap(),
        listen: vec![listen.parse().unwrap()],
        peers: peers.to_vec(),
        chain_id: "kinema-segments-test".into(),
        blobs: blobs.map(|d| Arc::new(BlobStore::open(d).unwrap())),
    })
    .unwrap();
    let address = p2p.listening().await.remove(0);
    (p2p, link, address)
}

async fn fetch(p2p: &P2p, name: blake3::Hash) -> Result<Vec<u8>, FetchError> {
    tokio::time::timeout(Duration::from_secs(60), p2p.fetch(name)).await.expect("fetch hangs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_are_found_fetched_verified_and_liars_are_banned() {
    let clip = std::fs::read(corpus("bigbuckbunny.mp4")).unwrap();
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let (honest, liar) = (dirs[0].path(), dirs[1].path());
    let name = BlobStore::open(honest).unwrap().put(&clip).unwrap();
    // The liar holds the same blob with one byte of group 3 flipped on its disk.
    BlobStore::open(liar).unwrap().put(&clip).unwrap();
    let path = liar.join(name.to_hex().as_str());
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[3 * GROUP + 5] ^= 1;
    std::fs::write(&path, bytes).unwrap();

    // A hub node everyone dials, the liar, and a fetcher that knows only the hub.
    let (hub, _hub_link, hub_at) = node(1, "/ip4/127.0.0.1/tcp/0", &[], None).await;
    let (liar_node, _liar_link, _) =
        node(2, "/ip4/127.0.0.1/tcp/0", std::slice::from_ref(&hub_at), Some(liar)).await;
    liar_node.connected_to(1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (fetcher, _fetcher_link, _) =
        node(3, "/ip4/127.0.0.1/tcp/0", std::slice::from_ref(&hub_at), None).await;
    fetcher.connected_to(1).await;

    // Only the liar provides it: the fetch fails, and the liar is banned for its group 3.
    assert_eq!(fetch(&fetcher, name).await, Err(FetchError::NotFound(name)));
    assert_eq!(fetcher.banned(), vec![liar_node.peer_id()]);

    // An honest provider appears: the fetch succeeds from it, the liar is not asked again.
    let (honest_node, honest_link, honest_at) =
        node(4, "/ip4/127.0.0.1/tcp/0", std::slice::from_ref(&hub_at), Some(honest)).await;
    honest_node.connected_to(1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(fetch(&fetcher, name).await.unwrap(), clip);

    // The honest node restarts on the same port with the same store; a new node fetches from
    // it (the liar is caught again if asked first).
    drop((honest_node, honest_link));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let listen: Multiaddr =
        honest_at.iter().filter(|p| !matches!(p, libp2p::multiaddr::Protocol::P2p(_))).collect();
    let (again, _again_link, _) =
        node(4, &listen.to_string(), std::slice::from_ref(&hub_at), Some(honest)).await;
    again.connected_to(1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (newcomer, _newcomer_link, _) = node(5, "/ip4/127.0.0.1/tcp/0", &[hub_at], None).await;
    newcomer.connected_to(1).await;
    assert_eq!(fetch(&newcomer, name).await.unwrap(), clip);
    assert!(newcomer.banned().iter().all(|p| *p == liar_node.peer_id()));
    drop(hub);
}
