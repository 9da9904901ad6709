//! What the relay pushes to browsers of the chain it follows, and a devnet's faucet.
//!
//! - `GET /api/v1/chain/events?job=&account=`: a server-sent event stream. One task of the
//!   relay's follows the chain RPC's head; on every new height each stream reads what it
//!   follows and sends `head` (`{"height": n}`), then `job` (the RPC's `JobReply`) and
//!   `account` (its `AccountReply`, with the proof) when they changed; `error` when the RPC
//!   failed. At most [`MAX_STREAMS`] streams at once (503 beyond).
//! - `POST /api/v1/faucet` (signed; a relay given the devnet's faucet key only): sends the
//!   signer [`GIFT`], once per [`GIFT_EVERY`] per account, remembering at most
//!   [`MAX_RECIPIENTS`] accounts.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Extension, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use futures::StreamExt;
use kinema_chain::Address;
use kinema_chain::crypto::SecretKey;
use kinema_chain::rpc::ErrorReply;
use kinema_chain::tx::Call;
use kinema_http::{Error, Result};
use tokio::sync::watch;

use crate::api::Gift;
use crate::auth::Signer;
use crate::chain::ChainClient;
use crate::routes::AppState;
use crate::videos::{chain, chain_failed};

/// Event streams open at once, at most.
pub(crate) const MAX_STREAMS: usize = 256;
/// How often the head is read from the chain RPC.
const HEAD_EVERY: Duration = Duration::from_millis(250);
/// What the faucet gives.
pub const GIFT: u64 = 100_000_000_000;
/// How often one account may ask the faucet.
pub(crate) const GIFT_EVERY: Duration = Duration::from_secs(600);
/// Accounts the faucet remembers, at most.
pub(crate) const MAX_RECIPIENTS: usize = 4096;
/// The fee of the faucet's transfers.
const FEE: u64 = 5_000_000;

/// The chain's head as the relay last read it, for its event streams.
pub(crate) struct Heads {
    height: watch::Sender<u64>,
    streams: Arc<tokio::sync::Semaphore>,
    /// Told when a stream opens (the follower sleeps while there is none).
    opened: tokio::sync::Notify,
}

impl Heads {
    pub(crate) fn new() -> Self {
        Self {
            height: watch::channel(0).0,
            streams: Arc::new(tokio::sync::Semaphore::new(MAX_STREAMS)),
            opened: tokio::sync::Notify::new(),
        }
    }

    /// Reads the head from `chain` every [`HEAD_EVERY`] while a stream is open, for ever.
    pub(crate) async fn follow(self: Arc<Self>, chain: ChainClient) {
        let mut every = tokio::time::interval(HEAD_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            if self.height.receiver_count() == 0 {
                // Nobody listens: ask the chain nothing, and wait for the first stream.
                self.opened.notified().await;
                continue;
            }
            if let Ok(status) = chain.status().await {
                self.height.send_if_modified(|h| {
                    let newer = status.height > *h;
                    if newer {
                        *h = status.height;
                    }
                    newer
                });
            }
        }
    }
}

/// What an event stream follows.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub(crate) struct Follow {
    /// A job's number: its state is sent whenever it changes.
    job: Option<u64>,
    /// An account's address: its balance, nonce and stake (with the state proof) whenever they
    /// change.
    account: Option<String>,
}

/// One stream's state between heads.
struct Following {
    chain: ChainClient,
    heads: watch::Receiver<u64>,
    job: Option<u64>,
    account: Option<Address>,
    last_job: Option<String>,
    last_account: Option<String>,
    first: bool,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Following {
    /// The events of the next head (the current one, first).
    async fn next(mut self) -> Option<(Vec<Event>, Self)> {
        if !self.first && self.heads.changed().await.is_err() {
            return None;
        }
        self.first = false;
        let height = *self.heads.borrow_and_update();
        let mut events = vec![json_event("head", &serde_json::json!({ "height": height }))];
        if let Some(job) = self.job {
            match self.chain.job(job).await {
                Ok(reply) => changed(&mut events, &mut self.last_job, "job", &reply),
                Err(e) => events.push(Event::default().event("error").data(e.to_string())),
            }
        }
        if let Some(account) = self.account {
            match self.chain.account(&account).await {
                Ok(reply) => {
                    // The height read changes every block; what is followed is the account.
                    let key = account_key(&reply);
                    if self.last_account.as_ref() != Some(&key) {
                        events.push(json_event("account", &reply));
                        self.last_account = Some(key);
                    }
                }
                Err(e) => events.push(Event::default().event("error").data(e.to_string())),
            }
        }
        Some((events, self))
    }
}

/// What of an account reply an event is sent for: the account, not where it was read.
fn account_key(reply: &kinema_chain::rpc::AccountReply) -> String {
    let mut bare = reply.clone();
    bare.height = 0;
    bare.state_root = kinema_chain::Hash::ZERO;
    bare.proof = String::new();
    serde_json::to_string(&bare).unwrap_or_default()
}

fn json_event<T: serde::Serialize>(name: &str, value: &T) -> Event {
    Event::default().event(name).data(serde_json::to_string(value).unwrap_or_default())
}

/// Adds a `name` event for `value` when it differs from `last`.
fn changed<T: serde::Serialize>(
    events: &mut Vec<Event>,
    last: &mut Option<String>,
    name: &str,
    value: &T,
) {
    let text = serde_json::to_string(value).unwrap_or_default();
    if last.as_deref() != Some(&text) {
        events.push(Event::default().event(name).data(&text));
        *last = Some(text);
    }
}

/// `GET /api/v1/chain/events`.
#[utoipa::path(
    get,
    path = "/api/v1/chain/events",
    operation_id = "chainEvents",
    summary = "Server-sent events: each new head, and a job's and an account's state as they change",
    params(Follow),
    responses(
        (status = 200, description = "the stream: events head, job, account and error", content_type = "text/event-stream", body = String),
        (status = 400, description = "not an address", body = ErrorReply),
        (status = 503, description = "the relay follows no chain, or has too many streams open", body = ErrorReply),
    ),
)]
pub(crate) async fn events(
    State(state): State<AppState>,
    Query(follow): Query<Follow>,
) -> Result<Sse<impl Stream<Item = std::result::Result<Event, Infallible>>>> {
    let chain = chain(&state)?.clone();
    let account = follow
        .account
        .map(|a| a.parse::<Address>())
        .transpose()
        .map_err(|e| Error::bad_request(format!("account: {e}")))?;
    let heads = &state.relay.heads;
    let permit = heads.streams.clone().try_acquire_owned().map_err(|_| {
        Error::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("this relay has {MAX_STREAMS} event streams open; try again later"),
        )
    })?;
    let following = Following {
        chain,
        heads: {
            let receiver = heads.height.subscribe();
            heads.opened.notify_one();
            receiver
        },
        job: follow.job,
        account,
        last_job: None,
        last_account: None,
        first: true,
        _permit: permit,
    };
    let stream = futures::stream::unfold(following, Following::next)
        .flat_map(|events| futures::stream::iter(events.into_iter().map(Ok)));
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// A devnet's faucet: its key, and whom it gave to when.
pub struct Faucet {
    key: SecretKey,
    sender: tokio::sync::Mutex<Option<crate::chain::Signer>>,
    given: Mutex<HashMap<Address, Instant>>,
}

impl Faucet {
    /// A faucet sending from `key`'s account.
    pub fn new(key: SecretKey) -> Self {
        Self { key, sender: tokio::sync::Mutex::new(None), given: Mutex::default() }
    }

    /// Records a gift to `to` now, unless it had one within [`GIFT_EVERY`] or the table is full.
    fn may_give(&self, to: Address) -> Result<()> {
        let mut given = self.given.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if let Some(at) = given.get(&to)
            && now.duration_since(*at) < GIFT_EVERY
        {
            let wait = GIFT_EVERY - now.duration_since(*at);
            return Err(Error::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "{to} had a gift {} s ago; ask again in {} s",
                    now.duration_since(*at).as_secs(),
                    wait.as_secs()
                ),
            ));
        }
        if given.len() >= MAX_RECIPIENTS {
            given.retain(|_, at| now.duration_since(*at) < GIFT_EVERY);
        }
        if given.len() >= MAX_RECIPIENTS {
            return Err(Error::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "the faucet gave to {MAX_RECIPIENTS} accounts within {} s; try later",
                    GIFT_EVERY.as_secs()
                ),
            ));
        }
        given.insert(to, now);
        Ok(())
    }

    fn forget(&self, to: &Address) {
        self.given.lock().unwrap_or_else(|e| e.into_inner()).remove(to);
    }
}

/// `POST /api/v1/faucet`.
#[utoipa::path(
    post,
    path = "/api/v1/faucet",
    operation_id = "faucet",
    summary = "Funds for the signer's account (a devnet's relay only)",
    responses(
        (status = 201, description = "sent", body = Gift),
        (status = 401, description = "unsigned, or signed wrongly", body = ErrorReply),
        (status = 404, description = "this relay has no faucet", body = ErrorReply),
        (status = 429, description = "the account had a gift recently", body = ErrorReply),
        (status = 502, description = "the chain refused the transfer", body = ErrorReply),
        (status = 503, description = "the relay follows no chain, or gave to too many accounts", body = ErrorReply),
    ),
)]
pub(crate) async fn faucet(
    State(state): State<AppState>,
    Extension(signer): Extension<Signer>,
) -> Result<(StatusCode, axum::Json<Gift>)> {
    let Some(faucet) = state.relay.faucet.as_ref() else {
        return Err(Error::not_found("this relay has no faucet (a devnet's relay has one)"));
    };
    let chain = chain(&state)?.clone();
    let to = signer.account;
    faucet.may_give(to)?;
    let sent = async {
        let mut kept = faucet.sender.lock().await;
        let mut sender = match kept.take() {
            Some(sender) => sender,
            None => crate::chain::Signer::new(chain, faucet.key.clone()).await?,
        };
        let sent = sender.send(Call::Transfer { to, amount: GIFT }, FEE).await;
        *kept = Some(sender);
        sent
    }
    .await;
    match sent {
        Ok(reply) => {
            Ok((StatusCode::CREATED, axum::Json(Gift { to, amount: GIFT, tx: reply.hash })))
        }
        Err(e) => {
            faucet.forget(&to);
            Err(chain_failed(e))
        }
    }
}
