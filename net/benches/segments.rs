//! Blob transfer between two native nodes over loopback: `cargo bench -p kinema-node --bench
//! segments`.
//!
//! - **throughput**: a 32 MiB blob fetched over libp2p (TCP, noise, yamux; kademlia to find the
//!   provider, the segment protocol in batches of 16 × 16 KiB groups, every group checked)
//!   against a plain TCP copy of the same bytes over loopback; printed as a ratio.
//! - **latency**: the same fetch from the provider alone through a proxy that delivers every
//!   byte 10 ms late each way (20 ms round trips): the fetch keeps several batches in flight,
//!   against what one batch per round trip would take at least.
//! - **verification**: checking every group against the outboard, against hashing the blob
//!   once with blake3 (what checking it whole would cost), and the outboard's size.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use kinema_net::blobs::BlobStore;
use kinema_net::p2p::{self, P2pConfig};
use kinema_net::verified::{GROUP, Outboard};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SIZE: usize = 32 << 20;

fn blob() -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    (0..SIZE)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// A TCP proxy on loopback to `to` that delivers every byte `delay` after it arrived, both
/// ways (at any rate: a long link, not a slow one).
async fn delayed_proxy(to: std::net::SocketAddr, delay: Duration) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let at = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((inbound, _)) = listener.accept().await {
            let outbound = tokio::net::TcpStream::connect(to).await.unwrap();
            let (ri, wi) = inbound.into_split();
            let (ro, wo) = outbound.into_split();
            tokio::spawn(pump(ri, wo, delay));
            tokio::spawn(pump(ro, wi, delay));
        }
    });
    at
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
) {
    // Up to 1,024 reads on their way (256 MiB): more than the link holds in 10 ms.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(Instant, Vec<u8>)>(1024);
    tokio::spawn(async move {
        while let Some((at, bytes)) = rx.recv().await {
            tokio::time::sleep_until((at + delay).into()).await;
            if to.write_all(&bytes).await.is_err() {
                return;
            }
        }
    });
    let mut buf = vec![0u8; 256 << 10];
    while let Ok(n) = from.read(&mut buf).await {
        if n == 0 || tx.send((Instant::now(), buf[..n].to_vec())).await.is_err() {
            return;
        }
    }
}

async fn tcp_copy(bytes: Arc<Vec<u8>>) -> Duration {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let at = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        socket.write_all(&bytes).await.unwrap();
    });
    let started = Instant::now();
    let mut socket = tokio::net::TcpStream::connect(at).await.unwrap();
    let mut received = Vec::with_capacity(SIZE);
    socket.read_to_end(&mut received).await.unwrap();
    let elapsed = started.elapsed();
    server.await.unwrap();
    assert_eq!(received.len(), SIZE);
    elapsed
}

fn main() {
    let data = blob();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(BlobStore::open(dir.path()).unwrap());
        let name = store.put(&data).unwrap();
        let start = |seed: u8, peers, blobs| {
            p2p::start(P2pConfig {
                listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
                peers,
                blobs,
                ..P2pConfig::new(p2p::keypair_from_seed([seed; 32]).unwrap())
            })
            .unwrap()
        };
        let (provider, _provider_link) = start(1, Vec::new(), Some(store));
        let at = provider.listening().await.remove(0);
        let mut p2p_best = Duration::MAX;
        let mut tcp_best = Duration::MAX;
        for run in 0..3u8 {
            // A fresh fetcher each run (it keeps nothing), connected before the clock starts.
            let (fetcher, _link) = start(10 + run, vec![at.clone()], None);
            fetcher.connected_to(1).await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            let started = Instant::now();
            let fetched = fetcher.fetch(name).await.unwrap();
            p2p_best = p2p_best.min(started.elapsed());
            assert_eq!(fetched.len(), SIZE);
            tcp_best = tcp_best.min(tcp_copy(Arc::new(data.clone())).await);
        }
        let mib = SIZE as f64 / (1 << 20) as f64;
        let rate = |d: Duration| mib / d.as_secs_f64();
        println!(
            "32 MiB over loopback, best of 3: libp2p segment fetch {:.0} ms ({:.0} MiB/s), plain TCP copy {:.0} ms ({:.0} MiB/s)",
            p2p_best.as_secs_f64() * 1000.0,
            rate(p2p_best),
            tcp_best.as_secs_f64() * 1000.0,
            rate(tcp_best)
        );
        println!("  segment fetch / TCP copy throughput = {:.3}", rate(p2p_best) / rate(tcp_best));

        // The same fetch over a 20 ms round trip, from the provider alone.
        let delay = Duration::from_millis(10);
        let direct = at.iter().find_map(|p| match p {
            libp2p::multiaddr::Protocol::Tcp(port) => Some(port),
            _ => None,
        });
        let proxy = delayed_proxy(([127, 0, 0, 1], direct.unwrap()).into(), delay).await;
        let via: libp2p::Multiaddr = format!("/ip4/127.0.0.1/tcp/{}/p2p/{}", proxy.port(), provider.peer_id())
            .parse()
            .unwrap();
        let mut far_best = Duration::MAX;
        for run in 0..3u8 {
            let (fetcher, _link) = start(20 + run, vec![via.clone()], None);
            fetcher.connected_to(1).await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            let started = Instant::now();
            let fetched = fetcher.fetch_from(provider.peer_id(), name).await.unwrap();
            far_best = far_best.min(started.elapsed());
            assert_eq!(fetched.len(), SIZE);
        }
        let batches = SIZE.div_ceil(GROUP * kinema_net::wire::BATCH as usize);
        let sequential = 2 * delay * batches as u32;
        println!(
            "with {} ms each way: segment fetch {:.0} ms ({:.0} MiB/s); one batch per round trip would take at least {:.0} ms ({} batches of 1 MiB)",
            delay.as_millis(),
            far_best.as_secs_f64() * 1000.0,
            rate(far_best),
            sequential.as_secs_f64() * 1000.0,
            batches
        );
    });

    let (name, outboard) = Outboard::compute(&data);
    let mut check_best = Duration::MAX;
    let mut hash_best = Duration::MAX;
    for _ in 0..5 {
        let started = Instant::now();
        for (index, group) in data.chunks(GROUP).enumerate() {
            outboard.check(name, index, group).unwrap();
        }
        check_best = check_best.min(started.elapsed());
        let started = Instant::now();
        assert_eq!(kinema_chain::Hash::digest(&data), name);
        hash_best = hash_best.min(started.elapsed());
    }
    println!(
        "verification of 32 MiB: per 16 KiB group {:.1} ms, whole-blob blake3 {:.1} ms (ratio {:.2}); outboard {} bytes ({:.2} % of the blob)",
        check_best.as_secs_f64() * 1000.0,
        hash_best.as_secs_f64() * 1000.0,
        check_best.as_secs_f64() / hash_best.as_secs_f64(),
        outboard.to_bytes().len(),
        outboard.to_bytes().len() as f64 * 100.0 / SIZE as f64
    );
}
