//! Kinema's creator app (Leptos, client-side rendered): wallet, upload, jobs, library,
//! earnings.
//!
//! Nothing is built here yet: see `ARCHITECTURE.md`.
