//! Kinema's relay server: the HTTP app and REST API, the HLS gateway, the libp2p relay for
//! browsers and the sqlx index.
//!
//! Nothing is built here yet: see `ARCHITECTURE.md`.
