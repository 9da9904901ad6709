//! Kinema's peer-to-peer layer, shared by native peers and the browser light node.
//!
//! - [`verified`]: verified streaming of a blob named by its blake3 hash — the outboard of
//!   16 KiB-group chaining values, and the check of each group as it arrives (also wasm32);
//! - [`wire`]: the length-prefixed codec of Kinema's request-response protocols, the segment
//!   request and answer, and [`wire::Download`], the group-by-group check of a blob's answers
//!   that both the native fetch and the light node use (also wasm32);
//! - [`gossip`]: the gossip topics a node joins and the check each topic's messages pass before
//!   they are delivered or forwarded (also wasm32);
//! - [`addr`]: the one way to read which peer a multiaddr names (also wasm32);
//! - [`signal`]: the messages of libp2p's `/webrtc-signaling/0.0.1`, with which two browsers
//!   open a WebRTC connection over a relayed one (also wasm32);
//! - [`blobs`] (native): the content-addressed store on disk, with the outboards verification
//!   needs;
//! - [`fetch`] (native): one blob's fetch from its providers as a state machine with no IO,
//!   which the swarm drives (and tests drive without sockets);
//! - [`p2p`] (native): the libp2p swarm of native peers — TCP, websocket, QUIC, webrtc-direct,
//!   circuit relay v2, gossipsub, kademlia provider records and the segment protocol, which
//!   fetches blobs from their providers in verified groups.
//!
//! ```
//! use kinema_net::verified::Outboard;
//!
//! let blob = vec![7u8; 40_000]; // three 16 KiB groups
//! let (name, outboard) = Outboard::compute(&blob);
//! assert_eq!(name, kinema_chain::Hash::digest(&blob));
//! // A peer that sends the first group right passes; one that lies is caught at that group.
//! assert!(outboard.check(name, 0, &blob[..16 * 1024]).is_ok());
//! assert!(outboard.check(name, 1, &[0; 16 * 1024]).is_err());
//! ```

pub mod addr;
#[cfg(not(target_arch = "wasm32"))]
pub mod blobs;
#[cfg(not(target_arch = "wasm32"))]
pub mod fetch;
pub mod gossip;
#[cfg(not(target_arch = "wasm32"))]
pub mod p2p;
pub mod signal;
pub mod verified;
pub mod wire;
