//! Kinema's node library: native full node, transcoder, storage and distributor roles over
//! libp2p, and the browser light node when built for `wasm32-unknown-unknown`.
//!
//! Built so far: [`p2p`] (native), the libp2p swarm validators talk over, with kademlia
//! provider records and the segment protocol that fetches blobs in verified groups;
//! [`verified`], the 16 KiB-group verification of blobs against their blake3 names (also for
//! wasm32); [`blobs`] (native), the content-addressed store with the outboards that
//! verification needs. The browser light node is not built yet.

#[cfg(not(target_arch = "wasm32"))]
pub mod blobs;
#[cfg(not(target_arch = "wasm32"))]
pub mod p2p;
pub mod verified;
pub mod wire;
