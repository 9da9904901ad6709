//! Kinema's node library: native full node, transcoder, storage and distributor roles over
//! libp2p, and the browser light node when built for `wasm32-unknown-unknown`.
//!
//! Built so far: [`p2p`] (native), the libp2p swarm validators talk over. The segment
//! protocol, the blob store, kademlia and the browser light node are not built yet.

#[cfg(not(target_arch = "wasm32"))]
pub mod p2p;
