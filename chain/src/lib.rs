//! Kinema's chain: types, JMT state over blake3, the wasm contract host (wasmtime + fuel)
//! and the consensus adapter.
//!
//! Nothing is built here yet: this crate is the place the chain grows in (see
//! `ARCHITECTURE.md`). It deliberately exports nothing until it holds working code.
