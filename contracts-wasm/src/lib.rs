//! Kinema's system contracts (accounts and staking, transcode jobs, storage deals, tickets,
//! registry, search bounties), compiled to `wasm32-unknown-unknown`.
//!
//! Nothing is built here yet: see `ARCHITECTURE.md`.
