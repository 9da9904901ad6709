//! Kinema's native full node, as a library.
//!
//! - [`store`]: blocks, certificates and the state tree (JMT over blake3) in one redb
//!   database, each block committed atomically and durably with its state, old states pruned on
//!   request;
//! - [`wasm`]: the chain's [`ContractHost`](kinema_chain::contract::ContractHost) — wasmtime
//!   with fuel metering and a deterministic configuration, running the system contracts of
//!   `contracts-wasm/`, which this crate's build script compiles for wasm32 and embeds;
//! - [`mempool`]: bounded admission with the executor's checks counted past each sender's
//!   queued transactions, every refusal with its reason;
//! - [`app`]: what consensus drives — propose a block from the mempool, validate another
//!   node's block by re-executing it, commit a decided block;
//! - [`consensus`]: Malachite's Tendermint core behind the small [`consensus::Engine`] trait,
//!   the tokio runner and the transport it talks over ([`consensus::node::Hub`] in process);
//! - [`link`]: the chain's gossip topics for kinema-net's swarm and the consensus transport over
//!   it;
//! - [`rpc`]: the JSON-over-HTTP RPC server (its requests and replies are
//!   [`kinema_chain::rpc`]'s) and its OpenAPI document;
//! - [`builder`]: a whole node — store, engine, libp2p, RPC — from a genesis and a key;
//! - the RPC's client is kinema-relay's `chain` (the browser app uses it too);
//! - [`market`]: the market's roles — the worker, the verifier and the upload — on the chain's
//!   jobs contract, a relay and kinema-media.
//!
//! Roles are modules here: the validator, the market's worker and verifier; storage as it
//! lands.
//!
//! ```
//! use kinema_chain::execute::Executor;
//! use kinema_node::wasm::Host;
//! use std::sync::Arc;
//!
//! // The chain's executor with the system contracts running in wasmtime.
//! let executor = Executor::new("kinema-devnet", Arc::new(Host::new().unwrap()));
//! # let _ = executor;
//! ```

pub mod app;
pub mod builder;
pub mod consensus;
pub mod link;
pub mod market;
pub mod mempool;
pub mod rpc;
pub mod store;
pub mod wasm;
