//! Fetching blobs: the swarm's side of [`crate::fetch::Fetch`] — it feeds each fetch what the
//! network does and does what the fetch asks (search providers in kademlia, send segment
//! requests, ban liars), then keeps what was fetched and answers whoever waited for it.

use kinema_chain::Hash;
use std::sync::atomic::Ordering;
use std::time::Instant;

use libp2p::{PeerId, kad, request_response};
use tokio::sync::oneshot;
use tracing::warn;

use super::{Done, SwarmTask};

/// Blobs fetched at once at most: a fetch holds a provider search and requests, and anyone who
/// can name hashes can start one.
pub const MAX_FETCHES: usize = 256;
/// Callers (local ones, and peers' requests a relay answers once it has the blob) waiting for
/// one fetch at most.
pub const MAX_WAITERS: usize = 64;
use crate::fetch::{Action, Fetch, FetchError};
use crate::p2p::serve::answer;

/// A fetch and who waits for it.
pub(super) struct Pending {
    fetch: Fetch,
    /// Local callers.
    replies: Vec<oneshot::Sender<Result<Vec<u8>, FetchError>>>,
    /// Segment requests for the blob from peers, answered when it is here.
    pub(super) waiting: Vec<(request_response::ResponseChannel<Vec<u8>>, Vec<u8>)>,
}

impl Pending {
    fn new(fetch: Fetch) -> Self {
        Self { fetch, replies: Vec::new(), waiting: Vec::new() }
    }

    /// Whether one more caller may wait for it.
    pub(super) fn has_room(&self) -> bool {
        self.replies.len() + self.waiting.len() < MAX_WAITERS
    }
}

impl SwarmTask {
    pub(super) fn start_fetch(
        &mut self,
        name: Hash,
        from: Option<PeerId>,
        reply: oneshot::Sender<Result<Vec<u8>, FetchError>>,
    ) {
        if let Some(store) = &self.blobs
            && store.has(&name)
            && let Ok(bytes) = store.get(&name)
        {
            let _ = reply.send(Ok(bytes));
            return;
        }
        if !self.fetch_has_room(&name) {
            let _ = reply.send(Err(FetchError::Busy(name)));
            return;
        }
        if let Some(peer) = from
            && !self.fetches.contains_key(&name)
        {
            // One peer asked, no provider search.
            let (fetch, actions) = Fetch::from_peer(name, peer, Instant::now());
            let mut pending = Pending::new(fetch);
            pending.replies.push(reply);
            self.fetches.insert(name, pending);
            return self.act(name, actions);
        }
        self.fetching(name).replies.push(reply);
    }

    /// Whether one more caller may wait for blob `name`: its fetch has room for another
    /// waiter, or there is room for one more fetch.
    pub(super) fn fetch_has_room(&self, name: &Hash) -> bool {
        match self.fetches.get(name) {
            Some(pending) => pending.has_room(),
            None => self.fetches.len() < MAX_FETCHES,
        }
    }

    /// The fetch of `name`, started if it was not under way (the caller checked there is
    /// room: [`MAX_FETCHES`], [`MAX_WAITERS`]).
    pub(super) fn fetching(&mut self, name: Hash) -> &mut Pending {
        if let std::collections::hash_map::Entry::Vacant(entry) = self.fetches.entry(name) {
            let (fetch, actions) = Fetch::search(name);
            entry.insert(Pending::new(fetch));
            self.act(name, actions);
        }
        self.fetches.entry(name).or_insert_with(|| Pending::new(Fetch::search(name).0))
    }

    /// Does what the fetch of `name` asks.
    fn act(&mut self, name: Hash, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::FindProviders => {
                    let key = kad::RecordKey::new(name.as_bytes());
                    let id = self.swarm.behaviour_mut().kad.get_providers(key);
                    self.queries.insert(id, name);
                }
                Action::Request { peer, first, request } => {
                    let id = self.swarm.behaviour_mut().segments.send_request(&peer, request);
                    self.requests.insert(id, (name, first));
                }
                Action::Ban { peer, why } => self.ban(peer, &format!("bad data for {name}: {why}")),
                Action::Finished(result) => self.finish(name, result),
            }
        }
    }

    /// Searches again for the fetches whose time has come.
    pub(super) fn requery_due(&mut self) {
        let now = Instant::now();
        let due: Vec<(Hash, Vec<Action>)> = self
            .fetches
            .iter_mut()
            .map(|(name, pending)| (*name, pending.fetch.on_tick(now)))
            .filter(|(_, actions)| !actions.is_empty())
            .collect();
        for (name, actions) in due {
            self.act(name, actions);
        }
    }

    pub(super) fn on_providers(&mut self, name: Hash, found: Vec<PeerId>, last: bool) {
        let local = *self.swarm.local_peer_id();
        let found: Vec<PeerId> =
            found.into_iter().filter(|p| *p != local && !self.is_banned(p)).collect();
        let Some(pending) = self.fetches.get_mut(&name) else { return };
        let actions = pending.fetch.on_providers(found, last, Instant::now());
        self.act(name, actions);
    }

    pub(super) fn on_segment(&mut self, name: Hash, first: u32, peer: PeerId, bytes: &[u8]) {
        let Some(pending) = self.fetches.get_mut(&name) else { return };
        let actions = pending.fetch.on_answer(peer, first, bytes, Instant::now());
        self.act(name, actions);
    }

    pub(super) fn on_segment_failure(&mut self, name: Hash, peer: PeerId) {
        let Some(pending) = self.fetches.get_mut(&name) else { return };
        let actions = pending.fetch.on_failure(peer, Instant::now());
        self.act(name, actions);
    }

    fn finish(&mut self, name: Hash, result: Result<Vec<u8>, FetchError>) {
        let Some(pending) = self.fetches.remove(&name) else { return };
        if result.is_ok() {
            self.stats.fetched.fetch_add(1, Ordering::Relaxed);
        }
        let (Ok(bytes), Some(store)) = (&result, self.blobs.clone()) else {
            for reply in pending.replies {
                let _ = reply.send(result.clone());
            }
            for (channel, request) in pending.waiting {
                self.serve(channel, request);
            }
            return;
        };
        // Kept on a blocking thread; then the fetch returns, the requests that waited for it
        // are answered from the store, and it is provided.
        let (stats, done) = (self.stats.clone(), self.done.clone());
        let (bytes, replies, waiting) = (bytes.clone(), pending.replies, pending.waiting);
        tokio::spawn(async move {
            let kept = tokio::task::spawn_blocking(move || {
                let kept = store.put(&bytes);
                if let Err(e) = &kept {
                    warn!(%name, "keeping a fetched blob: {e}");
                }
                for reply in replies {
                    let _ = reply.send(Ok(bytes.clone()));
                }
                let answers: Vec<Done> = waiting
                    .into_iter()
                    .map(|(channel, request)| {
                        Done::Answer(channel, answer(Some(&store), &stats, &request))
                    })
                    .collect();
                (kept.is_ok(), answers)
            })
            .await;
            let Ok((kept, answers)) = kept else { return };
            for answer in answers {
                let _ = done.send(answer).await;
            }
            if kept {
                let _ = done.send(Done::Kept(name)).await;
            }
        });
    }
}
