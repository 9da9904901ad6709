//! kinema-node: the store, the wasmtime contract host, execution, the mempool, the app,
//! consensus in process and the RPC server.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)] // tests fail loudly

mod app;
mod consensus;
mod execute;
mod fuzz;
mod host;
mod market;
mod mempool;
mod rpc;
mod store;
mod support;
