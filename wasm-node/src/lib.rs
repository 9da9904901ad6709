//! Kinema's node library: native full node, transcoder, storage and distributor roles over
//! libp2p, and the browser light node when built for `wasm32-unknown-unknown`.
//!
//! Nothing is built here yet: see `ARCHITECTURE.md`.
