//! What clients may send and how often: the relay's settings for kinema-http's layers
//! (tower-http's body limits and timeout, tower_governor's rate limit per client).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use kinema_chain::Address;
use kinema_http::limits::{Limiter, Rate};
use tokio::task::JoinHandle;

/// Limits on what clients may send and how often.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Largest blob upload, in bytes.
    pub max_upload: usize,
    /// Largest other request body (a manifest), in bytes.
    pub max_body: usize,
    /// Largest source file an upload in chunks may send, in bytes.
    pub max_source: u64,
    /// Requests per second a client (an IP address) may make, sustained.
    pub requests_per_second: f64,
    /// Requests a client may make at once above that rate.
    pub burst: u32,
    /// Answers not ready within this are given up (408). Longer than a fetch from peers (30 s)
    /// and than a largest upload over a slow link takes.
    pub request_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_upload: 64 << 20,
            max_body: 1 << 20,
            max_source: 4 << 30,
            requests_per_second: 200.0,
            burst: 1000,
            request_timeout: Duration::from_secs(120),
        }
    }
}

impl Limits {
    /// The request rate, clients told apart by socket address or, behind `trusted_proxy`, by
    /// the address it forwards for.
    pub fn rate(&self, trusted_proxy: Option<IpAddr>) -> Rate {
        Rate { per_second: self.requests_per_second, burst: self.burst, trusted_proxy }
    }
}

/// What each account's writes may hold on the relay: the bytes of the blobs it uploaded and
/// of the content it published (a blob pinned once is not counted again for whoever pins it
/// next).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quotas {
    /// Bytes any account may hold (0: only the accounts listed may write).
    pub default: u64,
    /// Accounts with their own quota (the devnet's faucet, a known creator).
    pub accounts: HashMap<Address, u64>,
}

impl Default for Quotas {
    fn default() -> Self {
        Self { default: 1 << 30, accounts: HashMap::new() }
    }
}

impl Quotas {
    /// `account`'s quota in bytes.
    pub fn of(&self, account: &Address) -> u64 {
        self.accounts.get(account).copied().unwrap_or(self.default)
    }
}

/// How often clients idle long enough to have a full allowance again are forgotten.
const FORGET_EVERY: Duration = Duration::from_secs(60);

/// Forgets idle clients every minute, so the limiter holds only recent ones.
pub fn forget_idle_clients(limiter: Limiter) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(FORGET_EVERY);
        loop {
            every.tick().await;
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    })
}
