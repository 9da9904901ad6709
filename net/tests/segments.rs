//! Blobs over libp2p between native nodes on loopback: found through kademlia, fetched in
//! verified 16 KiB groups; a provider serving a corrupted group is caught at it and banned; a
//! restarted node still serves what it stored. Websocket and QUIC carry the same protocols
//! (webrtc-direct is listened on for browsers, not dialled by native nodes); a relay fetches for a peer what it lacks, and a node that listens only through a
//! relay's circuit serves its blobs through it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use kinema_chain::Hash;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use kinema_net::blobs::BlobStore;
use kinema_net::p2p::{self, FetchError, Messages, P2p, P2pConfig};
use kinema_net::verified::GROUP;
use kinema_net::wire::BATCH;
use kinema_test_support::{eventually, wait_until_async};
use libp2p::Multiaddr;

/// How long a test waits for the network to do something before it fails.
const PATIENCE: Duration = Duration::from_secs(60);

fn config(seed: u8, listen: &[&str], peers: &[Multiaddr], blobs: Option<&Path>) -> P2pConfig {
    P2pConfig {
        listen: listen.iter().map(|a| a.parse().unwrap()).collect(),
        peers: peers.to_vec(),
        blobs: blobs.map(|d| Arc::new(BlobStore::open(d).unwrap())),
        ..P2pConfig::new(p2p::keypair_from_seed([seed; 32]).unwrap())
    }
}

/// A node with identity `seed`, listening on `listen`, dialling `peers`, serving `blobs`.
async fn node(
    seed: u8,
    listen: &str,
    peers: &[Multiaddr],
    blobs: Option<&Path>,
) -> (P2p, Messages, Multiaddr) {
    let (p2p, link) = p2p::start(config(seed, &[listen], peers, blobs)).unwrap();
    let address = p2p.listening().await.remove(0);
    (p2p, link, address)
}

/// The first of `p2p`'s listen addresses whose outermost protocol (before `/certhash` and
/// `/p2p`) is `protocol` (e.g. `"tcp"`, `"ws"`, `"quic-v1"`, `"webrtc-direct"`, `"p2p-circuit"`).
async fn listening_on(p2p: &P2p, protocol: &str) -> Multiaddr {
    eventually(&format!("a {protocol} listener"), Duration::from_secs(20), || async {
        p2p.listening().await.into_iter().find(|a| {
            let tags = a.iter().map(|p| p.tag()).filter(|t| !["p2p", "certhash"].contains(t));
            tags.last() == Some(protocol)
        })
    })
    .await
}

async fn fetch(p2p: &P2p, name: Hash) -> Result<Vec<u8>, FetchError> {
    tokio::time::timeout(PATIENCE, p2p.fetch(name)).await.expect("fetch hangs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_are_found_fetched_verified_and_liars_are_banned() {
    // 7.8 MB: eight batches, several asked at once.
    let clip = std::fs::read(kinema_test_support::corpus("trailer_bbb.mp4")).unwrap();
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let (honest, liar) = (dirs[0].path(), dirs[1].path());
    let name = BlobStore::open(honest).unwrap().put(&clip).unwrap();
    // The liar holds the same blob with one byte flipped on its disk, in the sixth batch: its
    // answer arrives while others are in flight.
    BlobStore::open(liar).unwrap().put(&clip).unwrap();
    let path = liar.join(name.to_string());
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[(5 * BATCH as usize + 3) * GROUP + 5] ^= 1;
    std::fs::write(&path, bytes).unwrap();

    // A hub node everyone dials, the liar, and a fetcher that knows only the hub.
    let (hub, _hub_link, hub_at) = node(1, "/ip4/127.0.0.1/tcp/0", &[], None).await;
    let (liar_node, _liar_link, _) =
        node(2, "/ip4/127.0.0.1/tcp/0", std::slice::from_ref(&hub_at), Some(liar)).await;
    liar_node.connected_to(1).await;
    let (fetcher, _fetcher_link, _) =
        node(3, "/ip4/127.0.0.1/tcp/0", std::slice::from_ref(&hub_at), None).await;
    fetcher.connected_to(1).await;

    // Only the liar provides it: the fetch fails, and the liar is banned for its bad group (once
    // the hub has heard the liar's provider record: until then no one is asked).
    eventually("the liar to be asked and banned", PATIENCE, || async {
        assert_eq!(fetch(&fetcher, name).await, Err(FetchError::NotFound(name)));
        (!fetcher.banned().is_empty()).then_some(())
    })
    .await;
    assert_eq!(fetcher.banned(), vec![liar_node.peer_id()]);

    // An honest provider appears: the fetch succeeds from it, the liar is not asked again.
    let (honest_node, honest_link, honest_at) =
        node(4, "/ip4/127.0.0.1/tcp/0", std::slice::from_ref(&hub_at), Some(honest)).await;
    honest_node.connected_to(1).await;
    let fetched = eventually("a fetch from the honest provider", PATIENCE, || async {
        fetch(&fetcher, name).await.ok()
    })
    .await;
    assert_eq!(fetched, clip);
    assert_eq!(fetcher.banned(), vec![liar_node.peer_id()]);

    // The honest node restarts on the same port with the same store; a new node fetches from
    // it (the liar is caught again if asked first).
    let honest_id = honest_node.peer_id();
    drop((honest_node, honest_link));
    wait_until_async("the hub to see the honest node go", PATIENCE, || async {
        hub.peers().iter().all(|p| p.peer_id != honest_id)
    })
    .await;
    let listen: Multiaddr =
        honest_at.iter().filter(|p| !matches!(p, libp2p::multiaddr::Protocol::P2p(_))).collect();
    let (again, _again_link, _) =
        node(4, &listen.to_string(), std::slice::from_ref(&hub_at), Some(honest)).await;
    again.connected_to(1).await;
    let (newcomer, _newcomer_link, _) = node(5, "/ip4/127.0.0.1/tcp/0", &[hub_at], None).await;
    newcomer.connected_to(1).await;
    let fetched = eventually("a fetch from the restarted provider", PATIENCE, || async {
        fetch(&newcomer, name).await.ok()
    })
    .await;
    assert_eq!(fetched, clip);
    assert!(newcomer.banned().iter().all(|p| *p == liar_node.peer_id()));
    drop(hub);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_quic_relay_fetches_and_circuits() {
    let clip = std::fs::read(kinema_test_support::corpus("bigbuckbunny.mp4")).unwrap();
    let other = clip[..clip.len() / 2].iter().map(|b| b ^ 0x5a).collect::<Vec<u8>>();
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let (relay_store, behind_store) = (dirs[0].path(), dirs[1].path());
    let store = BlobStore::open(behind_store).unwrap();
    let (name, other_name) = (store.put(&clip).unwrap(), store.put(&other).unwrap());

    // A relay listening on TCP, websocket, QUIC and webrtc-direct, fetching what it is asked for
    // and lacks.
    let listen = [
        "/ip4/127.0.0.1/tcp/0",
        "/ip4/127.0.0.1/tcp/0/ws",
        "/ip4/127.0.0.1/udp/0/quic-v1",
        "/ip4/127.0.0.1/udp/0/webrtc-direct",
    ];
    let (relay, _relay_link) = p2p::start(P2pConfig {
        relay: true,
        fetch_missing: true,
        ..config(10, &listen, &[], Some(relay_store))
    })
    .unwrap();
    let relay_tcp = listening_on(&relay, "tcp").await;
    let relay_ws = listening_on(&relay, "ws").await;
    let relay_quic = listening_on(&relay, "quic-v1").await;
    let relay_webrtc = listening_on(&relay, "webrtc-direct").await;

    // Peers that reach it over websocket and QUIC only.
    for (seed, address, protocol) in [(11, &relay_ws, "ws"), (12, &relay_quic, "quic-v1")] {
        let (peer, _link) =
            p2p::start(config(seed, &[], std::slice::from_ref(address), None)).unwrap();
        tokio::time::timeout(Duration::from_secs(20), peer.connected_to(1))
            .await
            .unwrap_or_else(|_| panic!("no {protocol} connection to the relay within 20 s"));
        let via = &peer.peers()[0];
        assert_eq!(via.peer_id, relay.peer_id());
        assert!(via.addresses.iter().any(|a| a.iter().any(|p| p.tag() == protocol)), "{via:?}");
    }
    // Its webrtc-direct listener is for browsers (`cli/tests/it/browser.rs`): a native node
    // does not dial it (`p2p::webrtc`), and reaches the relay over the QUIC address it is also
    // given, on the same attempt.
    let (peer, _link) =
        p2p::start(config(16, &[], &[relay_webrtc, relay_quic.clone()], None)).unwrap();
    tokio::time::timeout(Duration::from_secs(20), peer.connected_to(1))
        .await
        .expect("no connection to the relay over the QUIC address given beside webrtc-direct");
    let via = &peer.peers()[0];
    assert!(via.addresses.iter().all(|a| a.iter().all(|p| p.tag() != "webrtc-direct")), "{via:?}");
    assert_eq!(relay.stats().webrtc_admitted.load(std::sync::atomic::Ordering::Relaxed), 0);

    // A node that cannot be dialled: it listens only through the relay's circuit.
    let circuit = format!("{relay_tcp}/p2p-circuit");
    let (behind, _behind_link) =
        p2p::start(config(13, &[&circuit], std::slice::from_ref(&relay_tcp), Some(behind_store)))
            .unwrap();
    listening_on(&behind, "p2p-circuit").await;
    wait_until_async("a reservation counted", PATIENCE, || async {
        relay.stats().reservations.load(std::sync::atomic::Ordering::Relaxed) > 0
    })
    .await;

    // A peer asks the relay for a blob only the node behind it holds: the relay fetches it,
    // keeps it and answers.
    let (asker, _asker_link) =
        p2p::start(config(14, &[], std::slice::from_ref(&relay_tcp), None)).unwrap();
    asker.connected_to(1).await;
    let fetched =
        eventually("the relay to fetch what only the node behind it holds", PATIENCE, || {
            asker.fetch_from(relay.peer_id(), name).map(Result::ok)
        })
        .await;
    assert_eq!(fetched, clip);
    assert!(BlobStore::open(relay_store).unwrap().has(&name));

    // Another dials the node behind the relay through its circuit and fetches from it there
    // (more than libp2p's default 128 KiB circuit limit).
    let through: Multiaddr = format!("{circuit}/p2p/{}", behind.peer_id()).parse().unwrap();
    let (dialer, _dialer_link) = p2p::start(config(15, &[], &[through], None)).unwrap();
    tokio::time::timeout(Duration::from_secs(20), dialer.connected_to(2))
        .await
        .expect("no connection through the relay's circuit within 20 s");
    let peers = dialer.peers();
    let via = peers.iter().find(|p| p.peer_id == behind.peer_id()).unwrap();
    assert!(via.addresses.iter().any(|a| a.iter().any(|p| p.tag() == "p2p-circuit")), "{via:?}");
    assert_eq!(fetch(&dialer, other_name).await.unwrap(), other);
    assert!(relay.stats().circuits.load(std::sync::atomic::Ordering::Relaxed) >= 1);
}

#[tokio::test]
async fn fetches_for_unknown_hashes_are_bounded_in_number_and_in_waiters() {
    // A lone node looks for providers of hashes nobody has for over a second before it gives
    // up: the fetches asked for at once all overlap.
    let (p2p, _link) = p2p::start(config(71, &[], &[], None)).unwrap();
    let extra = 20;
    let names: Vec<Hash> =
        (0..p2p::MAX_FETCHES + extra).map(|i| Hash::digest(&i.to_le_bytes())).collect();
    let results = futures::future::join_all(names.iter().map(|name| fetch(&p2p, *name))).await;
    let busy = results.iter().filter(|r| matches!(r, Err(FetchError::Busy(_)))).count();
    assert_eq!(busy, extra, "fetches beyond {} at once", p2p::MAX_FETCHES);
    assert!(
        results.iter().all(|r| matches!(r, Err(FetchError::NotFound(_) | FetchError::Busy(_))))
    );
    // So are the callers waiting for one fetch.
    let name = Hash::digest(b"wanted by many");
    let results =
        futures::future::join_all((0..p2p::MAX_WAITERS + extra).map(|_| fetch(&p2p, name))).await;
    let busy = results.iter().filter(|r| **r == Err(FetchError::Busy(name))).count();
    assert_eq!(busy, extra, "callers beyond {} waiting for one fetch", p2p::MAX_WAITERS);
    // Once they are done, there is room again.
    assert_eq!(fetch(&p2p, name).await, Err(FetchError::NotFound(name)));
}
