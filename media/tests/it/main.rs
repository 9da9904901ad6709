//! Integration tests of the media engine over the real clips in `../shared/corpus/`.

#![allow(clippy::unwrap_used)] // test helpers fail loudly

mod awkward;
mod corpus;
mod determinism;
mod fuzz;
mod hardware;
mod manifest;
mod metrics;
mod probe;
mod support;
mod thumbs;
mod ts;
mod verify;
mod watermark;
