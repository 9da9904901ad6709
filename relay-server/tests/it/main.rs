//! kinema-relay: the relay end to end on SQLite and Postgres (the HLS gateway, the REST API
//! through its client, its OpenAPI document, `/metrics`, refusals), signed writes, quotas, the cache budget and the deny list, and interop with
//! js-libp2p.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

mod fuzz;
mod interop;
mod relay;
mod uploads;
mod writes;
