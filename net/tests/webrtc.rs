//! What strangers can cost a node through its webrtc-direct listener (the one browsers dial).
//!
//! - A stranger floods it with STUN binding requests, each from a new UDP port and each naming
//!   a new ICE username, and never finishes a handshake: every one of them would have cost the
//!   node a WebRTC peer connection kept for good (an ICE agent with its own socket). The node
//!   takes only what `webrtc::Guard` allows, and its file descriptors show it.
//! - A peer connects and vanishes without a word (a killed tab): libp2p-webrtc never notices,
//!   the node's unanswered pings do, and the connection is closed.
//!
//! Its own binary, its tests one at a time: the descriptors counted are the test's alone.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use std::net::UdpSocket;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::StreamExt;
use kinema_net::p2p::webrtc::{AT_ONCE_PER_IP, FAILURES_PER_IP};
use kinema_net::p2p::{self, P2pConfig, Stats};
use kinema_test_support::{eventually, stun_binding_request, wait_until_async};
use libp2p::core::Transport as _;
use libp2p::core::muxing::StreamMuxerBox;
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, Swarm, ping};

/// One test at a time: each counts the process's descriptors.
static ALONE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// libp2p-webrtc gives a handshake 10 s; what it gives up on is counted failed then.
const PATIENCE: Duration = Duration::from_secs(40);
/// Binding requests sent in each wave of the flood.
const WAVE: u64 = 200;

/// Sends `count` binding requests to `port`, each from a new socket on `from`, in bursts, each
/// once the node has decided on the one before. The sockets stay open (kept in `sockets`), so
/// that no port is used twice: the node hears a port once.
async fn flood(stats: &Stats, sockets: &mut Vec<UdpSocket>, from: &str, port: u16, count: u64) {
    const BURST: u64 = 25;
    let start = decisions(stats);
    for sent in (0..count).step_by(BURST as usize) {
        for _ in sent..(sent + BURST).min(count) {
            let socket = UdpSocket::bind((from, 0)).unwrap();
            let ufrag = format!("libp2p+webrtc+v1/{}", hex::encode(rand::random::<[u8; 16]>()));
            socket
                .send_to(&stun_binding_request(&ufrag, rand::random()), ("127.0.0.1", port))
                .unwrap();
            sockets.push(socket);
        }
        let sent = start + (sent + BURST).min(count);
        wait_until_async(&format!("{sent} handshakes admitted or refused"), PATIENCE, || {
            let decided = decisions(stats);
            async move { decided >= sent }
        })
        .await;
    }
}

fn descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn load(stats: &Stats) -> (u64, u64, u64) {
    let get = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    (get(&stats.webrtc_admitted), get(&stats.webrtc_refused), get(&stats.webrtc_failed))
}

/// The handshakes the node admitted or refused.
fn decisions(stats: &Stats) -> u64 {
    let (admitted, refused, _) = load(stats);
    admitted + refused
}

/// Waits until `count` handshakes have failed.
async fn failed(stats: &Stats, count: u64) {
    wait_until_async(&format!("{count} handshakes to fail"), PATIENCE, || {
        let failed = load(stats).2;
        async move { failed == count }
    })
    .await;
}

/// A node listening on webrtc-direct only, and its address.
async fn webrtc_node(seed: u8) -> (p2p::P2p, p2p::Messages, Multiaddr) {
    let config = P2pConfig {
        listen: vec!["/ip4/127.0.0.1/udp/0/webrtc-direct".parse().unwrap()],
        ..P2pConfig::new(p2p::keypair_from_seed([seed; 32]).unwrap())
    };
    let (node, link) = p2p::start(config).unwrap();
    let address = eventually("the webrtc-direct listener", PATIENCE, || async {
        node.listening().await.into_iter().next()
    })
    .await;
    (node, link, address)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_webrtc_handshakes_costs_a_bounded_amount() {
    let _alone = ALONE.lock().await;
    let (node, _link, address) = webrtc_node(40).await;
    let port = address
        .iter()
        .find_map(|p| match p {
            Protocol::Udp(port) => Some(port),
            _ => None,
        })
        .unwrap();
    let stats = node.stats();
    let before = descriptors();
    let mut sockets = Vec::new();

    // From one address: a few at once; once they have failed, a few more, up to its bound.
    flood(stats, &mut sockets, "127.0.0.1", port, WAVE).await;
    assert_eq!(load(stats).0, AT_ONCE_PER_IP as u64);
    failed(stats, AT_ONCE_PER_IP as u64).await;
    flood(stats, &mut sockets, "127.0.0.1", port, WAVE).await;
    assert_eq!(load(stats).0, FAILURES_PER_IP as u64);
    failed(stats, FAILURES_PER_IP as u64).await;
    // The address has failed its share: nothing more is taken from it.
    flood(stats, &mut sockets, "127.0.0.1", port, WAVE).await;
    assert_eq!(load(stats).0, FAILURES_PER_IP as u64);

    // Another address is still served.
    flood(stats, &mut sockets, "127.0.0.2", port, WAVE).await;
    let (admitted, refused, _) = load(stats);
    assert_eq!(admitted, (FAILURES_PER_IP as usize + AT_ONCE_PER_IP) as u64);
    assert_eq!(refused, 4 * WAVE - admitted);

    // What the node holds grew with what it admitted, not with what it was sent: unguarded,
    // each of the 800 requests kept a descriptor (an ICE agent's mDNS socket) for good.
    drop(sockets);
    let grown = descriptors().saturating_sub(before);
    assert!(grown <= admitted as usize + 4, "{grown} more descriptors for {admitted} admitted");
}

/// A bare libp2p swarm dialling over webrtc-direct as libp2p-webrtc does (what a Kinema node no
/// longer does: see `p2p::webrtc`), answering pings while it lives.
async fn webrtc_dialler(to: &Multiaddr) -> Option<Swarm<ping::Behaviour>> {
    let certificate = libp2p_webrtc::tokio::Certificate::generate(&mut rand::rng()).unwrap();
    let mut swarm = libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_other_transport(|key| {
            libp2p_webrtc::tokio::Transport::new(key.clone(), certificate)
                .map(|(peer, connection), _| (peer, StreamMuxerBox::new(connection)))
        })
        .unwrap()
        .with_behaviour(|_| ping::Behaviour::default())
        .unwrap()
        .build();
    swarm.listen_on("/ip4/127.0.0.1/udp/0/webrtc-direct".parse().unwrap()).unwrap();
    swarm.dial(to.clone()).unwrap();
    // Its listener comes up, then the connection, or the dial fails (webrtc-rs's race, 1 dial
    // in ~40; libp2p-webrtc gives up after 10 s).
    loop {
        match swarm.select_next_some().await {
            libp2p::swarm::SwarmEvent::ConnectionEstablished { .. } => return Some(swarm),
            libp2p::swarm::SwarmEvent::OutgoingConnectionError { .. } => return None,
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webrtc_peer_that_vanishes_is_closed() {
    let _alone = ALONE.lock().await;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (node, _link, address) = webrtc_node(41).await;
    let before = descriptors();
    let mut dialler = None;
    for _ in 0..3 {
        dialler = webrtc_dialler(&address).await;
        if dialler.is_some() {
            break;
        }
    }
    let mut dialler = dialler.expect("no webrtc-direct connection in 3 dials");
    // While the peer answers its pings, the connection stays.
    let answering = tokio::spawn(async move {
        loop {
            dialler.select_next_some().await;
        }
    });
    wait_until_async("the node to see the peer", PATIENCE, || async { node.peers().len() == 1 })
        .await;
    // It vanishes: its swarm is gone without a word (libp2p-webrtc does not close what it
    // drops, so its side stays up on the wire but answers nothing).
    answering.abort();
    let _ = answering.await;
    wait_until_async(
        "the node to close the silent connection",
        Duration::from_secs(90),
        || async { node.peers().is_empty() },
    )
    .await;
    // Closed, the node's side gave back what its peer connection held.
    wait_until_async("the node's descriptors to come back", PATIENCE, || async {
        descriptors() <= before + 1
    })
    .await;
}
