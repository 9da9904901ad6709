//! Kinema's node library: native full node, transcoder, storage and distributor roles over
//! libp2p, and the browser light node when built for `wasm32-unknown-unknown`.
//!
//! Built so far: [`p2p`] (native), the libp2p swarm (TCP, websocket, QUIC; circuit relay v2)
//! validators and relays talk over, with kademlia provider records and the segment protocol that
//! fetches blobs in verified groups; [`wire`], that protocol's messages and the group-by-group
//! check of a download (also for wasm32); [`verified`], the 16 KiB-group verification of blobs
//! against their blake3 names (also for wasm32); [`blobs`] (native), the content-addressed store
//! with the outboards that verification needs; `light` (wasm32 only), the browser light node:
//! a libp2p node over websocket to a relay, fetching verified segments, and the chain's light
//! client, with a small JS API (page in `www/`).

#[cfg(not(target_arch = "wasm32"))]
pub mod blobs;
#[cfg(target_arch = "wasm32")]
pub mod light;
#[cfg(not(target_arch = "wasm32"))]
pub mod p2p;
pub mod verified;
pub mod wire;
