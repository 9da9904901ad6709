//! One blob's fetch from its providers, as a state machine with no IO.
//!
//! The swarm feeds a [`Fetch`] what happens — providers found, an answer, a failed request, the
//! time — and does the [`Action`]s it returns: ask kademlia for providers, send a segment
//! request, ban a peer, hand over the result. Tests drive it the same way, without sockets.
//!
//! The fetch asks one provider at a time for up to [`IN_FLIGHT`] batches of groups at once; each
//! answer is checked group by group against the blob's name ([`Download`]). A provider that sends
//! a bad group is banned and the next provider goes on from the first group still missing; one
//! that answers without the blob, or whose request fails, is skipped. When no provider is left it
//! asks for providers again after [`REQUERY`], [`QUERIES`] times in all, then fails.
//!
//! ```
//! use kinema_net::fetch::{Action, Fetch};
//!
//! let name = kinema_chain::Hash::digest(b"a blob");
//! let (_fetch, actions) = Fetch::search(name);
//! assert!(matches!(actions[..], [Action::FindProviders]));
//! ```

use kinema_chain::Hash;
use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

use libp2p::PeerId;

use crate::wire::{Answer, Download};

/// Batches asked of the provider at once. Each answer is a yamux stream of its own, whose
/// window starts at 256 KiB, so a 1 MiB answer takes several round trips: over a 20 ms round
/// trip one batch at a time would cap a fetch at 50 MiB/s (`cargo bench -p kinema-net --bench
/// segments`). A provider holds up to this many answers (16 MiB) per fetch.
pub const IN_FLIGHT: usize = 16;
/// Provider searches a fetch makes before it gives up (a node that just joined may not know the
/// network yet).
pub const QUERIES: u32 = 4;
/// The wait before searching again.
pub const REQUERY: Duration = Duration::from_millis(500);

/// Why a fetch failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// No provider of the blob was found, or none answered with good data.
    #[error("no provider of blob {0} answered with it")]
    NotFound(Hash),
    /// The node has stopped.
    #[error("the node has stopped")]
    Stopped,
    /// The node fetches as many blobs as it will at once, or has as many callers waiting for
    /// this one as it will.
    #[error("too many fetches under way to fetch blob {0} now; try again later")]
    Busy(Hash),
}

/// What the swarm must do for a fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Search for the blob's providers; hand what is found to [`Fetch::on_providers`].
    FindProviders,
    /// Send `request` to `peer` on the segment protocol; hand its answer to
    /// [`Fetch::on_answer`] with `first`, or its failure to [`Fetch::on_failure`].
    Request {
        /// The provider.
        peer: PeerId,
        /// The first group asked for.
        first: u32,
        /// The encoded request.
        request: Vec<u8>,
    },
    /// `peer` sent data that does not match the blob's name: ban it.
    Ban {
        /// The liar.
        peer: PeerId,
        /// What was wrong.
        why: String,
    },
    /// The fetch is over.
    Finished(Result<Vec<u8>, FetchError>),
}

/// A blob being fetched.
#[derive(Debug)]
pub struct Fetch {
    name: Hash,
    download: Download,
    /// Providers not tried yet (the first is asked now).
    providers: VecDeque<PeerId>,
    /// Providers given up on.
    tried: HashSet<PeerId>,
    /// The provider asked now, and how many of its answers are awaited.
    provider: Option<PeerId>,
    in_flight: usize,
    /// Whether the current provider search has ended.
    searched: bool,
    /// Provider searches made.
    queries: u32,
    /// When to search again.
    retry_at: Option<Instant>,
    finished: bool,
}

impl Fetch {
    fn new(name: Hash) -> Self {
        Self {
            name,
            download: Download::new(name),
            providers: VecDeque::new(),
            tried: HashSet::new(),
            provider: None,
            in_flight: 0,
            searched: false,
            queries: 0,
            retry_at: None,
            finished: false,
        }
    }

    /// A fetch of `name` from whoever provides it: it starts with a provider search.
    pub fn search(name: Hash) -> (Self, Vec<Action>) {
        let mut fetch = Self::new(name);
        fetch.queries = 1;
        (fetch, vec![Action::FindProviders])
    }

    /// A fetch of `name` from `peer` alone (a relay that fetches for its clients): no search.
    pub fn from_peer(name: Hash, peer: PeerId, now: Instant) -> (Self, Vec<Action>) {
        let mut fetch = Self::new(name);
        fetch.providers.push_back(peer);
        fetch.searched = true;
        fetch.queries = QUERIES;
        let actions = fetch.advance(now);
        (fetch, actions)
    }

    /// The blob.
    pub fn name(&self) -> Hash {
        self.name
    }

    /// Whether it is over (its last action was [`Action::Finished`]).
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Providers a search found (without this node and banned peers); `last` when the search
    /// has ended.
    pub fn on_providers(
        &mut self,
        found: impl IntoIterator<Item = PeerId>,
        last: bool,
        now: Instant,
    ) -> Vec<Action> {
        for peer in found {
            if !self.tried.contains(&peer) && !self.providers.contains(&peer) {
                self.providers.push_back(peer);
            }
        }
        self.searched |= last;
        self.advance(now)
    }

    /// `peer`'s answer to the request for the batch from group `first`.
    pub fn on_answer(
        &mut self,
        peer: PeerId,
        first: u32,
        bytes: &[u8],
        now: Instant,
    ) -> Vec<Action> {
        if self.finished || self.provider != Some(peer) {
            // An answer from a provider given up on.
            return Vec::new();
        }
        self.in_flight = self.in_flight.saturating_sub(1);
        match self.download.accept_batch(first, bytes) {
            Answer::NotFound | Answer::Added(0) => {
                // Not held, or nothing new: this provider does not have it after all.
                self.skip(peer);
                self.advance(now)
            }
            Answer::Bad(why) => {
                self.skip(peer);
                let mut actions = vec![Action::Ban { peer, why }];
                actions.extend(self.advance(now));
                actions
            }
            Answer::Added(_) | Answer::Complete => self.advance(now),
        }
    }

    /// A request to `peer` failed (no connection, a timeout): it is skipped.
    pub fn on_failure(&mut self, peer: PeerId, now: Instant) -> Vec<Action> {
        if self.finished {
            return Vec::new();
        }
        self.skip(peer);
        self.advance(now)
    }

    /// The time is `now`: searches again when it is due.
    pub fn on_tick(&mut self, now: Instant) -> Vec<Action> {
        match self.retry_at {
            Some(at) if at <= now && !self.finished => {
                self.queries += 1;
                self.searched = false;
                self.retry_at = None;
                vec![Action::FindProviders]
            }
            _ => Vec::new(),
        }
    }

    fn skip(&mut self, peer: PeerId) {
        self.providers.retain(|p| *p != peer);
        self.tried.insert(peer);
        if self.provider == Some(peer) {
            self.provider = None;
            self.in_flight = 0;
        }
    }

    /// Keeps [`IN_FLIGHT`] batches asked of the current provider, or ends the fetch.
    fn advance(&mut self, now: Instant) -> Vec<Action> {
        if self.finished {
            return Vec::new();
        }
        if self.download.is_complete() {
            let data = std::mem::replace(&mut self.download, Download::new(self.name));
            return self.finish(Ok(data.into_bytes()));
        }
        let mut actions = Vec::new();
        match self.providers.front().copied() {
            Some(peer) => {
                if self.provider != Some(peer) {
                    // A new provider: what the last one left unanswered is asked again.
                    self.provider = Some(peer);
                    self.in_flight = 0;
                    self.download.ask_again();
                }
                while self.in_flight < IN_FLIGHT {
                    let Some((first, request)) = self.download.next_batch() else { break };
                    actions.push(Action::Request { peer, first, request });
                    self.in_flight += 1;
                }
            }
            None if self.searched && self.queries < QUERIES => {
                self.searched = false;
                self.retry_at = Some(now + REQUERY);
            }
            None if self.searched => return self.finish(Err(FetchError::NotFound(self.name))),
            None => {}
        }
        actions
    }

    fn finish(&mut self, result: Result<Vec<u8>, FetchError>) -> Vec<Action> {
        self.finished = true;
        vec![Action::Finished(result)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verified::{GROUP, Outboard};
    use crate::wire::{BATCH, SegmentRequest, SegmentResponse};

    /// A blob of `groups` groups and a provider's honest answer to any request for it.
    struct Blob {
        data: Vec<u8>,
        outboard: Outboard,
        name: Hash,
    }

    impl Blob {
        fn new(groups: usize) -> Self {
            let data: Vec<u8> = (0..groups * GROUP - 100).map(|i| (i * 31 % 251) as u8).collect();
            let (name, outboard) = Outboard::compute(&data);
            Self { data, outboard, name }
        }

        fn answer(&self, request: &[u8], data: &[u8]) -> Vec<u8> {
            let request: SegmentRequest = borsh::from_slice(request).unwrap();
            let first = request.first as usize;
            let groups = data
                .chunks(GROUP)
                .skip(first)
                .take(request.count.min(BATCH) as usize)
                .map(<[u8]>::to_vec)
                .collect();
            let outboard = request.outboard.then(|| self.outboard.to_bytes());
            borsh::to_vec(&SegmentResponse::Found { outboard, groups }).unwrap()
        }
    }

    fn requests(actions: &[Action]) -> Vec<(PeerId, u32, Vec<u8>)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Request { peer, first, request } => Some((*peer, *first, request.clone())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_liar_is_banned_and_the_next_provider_goes_on_from_the_missing_group() {
        let blob = Blob::new(3 * BATCH as usize);
        let mut lie = blob.data.clone();
        lie[(BATCH as usize + 2) * GROUP] ^= 1; // in the second batch
        let (liar, honest) = (PeerId::random(), PeerId::random());
        let now = Instant::now();
        let (mut fetch, _) = Fetch::search(blob.name);
        let asked = requests(&fetch.on_providers([liar, honest], true, now));
        // The first provider alone is asked, for the first batch only (the outboard comes with
        // it, and says how many there are).
        assert_eq!(asked.len(), 1);
        assert_eq!((asked[0].0, asked[0].1), (liar, 0));
        let asked = requests(&fetch.on_answer(liar, 0, &blob.answer(&asked[0].2, &lie), now));
        assert_eq!(asked.iter().map(|a| a.1).collect::<Vec<_>>(), [BATCH, 2 * BATCH]);
        let actions = fetch.on_answer(liar, BATCH, &blob.answer(&asked[0].2, &lie), now);
        assert!(matches!(&actions[0], Action::Ban { peer, .. } if *peer == liar), "{actions:?}");
        // The honest provider is asked for what is still missing: from the bad group on (the
        // two good groups before it in the liar's answer are kept).
        let again = requests(&actions);
        assert!(again.iter().all(|a| a.0 == honest));
        assert_eq!(again.iter().map(|a| a.1).collect::<Vec<_>>(), [BATCH + 2, 2 * BATCH + 2]);
        // The liar's answer to its other request, arriving late, is ignored.
        assert_eq!(fetch.on_answer(liar, 2 * BATCH, &blob.answer(&asked[1].2, &lie), now), []);
        let mut last = Vec::new();
        for (peer, first, request) in again {
            last = fetch.on_answer(peer, first, &blob.answer(&request, &blob.data), now);
        }
        assert_eq!(last, [Action::Finished(Ok(blob.data.clone()))]);
        assert!(fetch.is_finished());
    }

    #[test]
    fn no_provider_after_every_search_is_not_found() {
        let blob = Blob::new(1);
        let start = Instant::now();
        let (mut fetch, _) = Fetch::search(blob.name);
        let mut now = start;
        for search in 1..=QUERIES {
            let actions = fetch.on_providers([], true, now);
            if search == QUERIES {
                assert_eq!(actions, [Action::Finished(Err(FetchError::NotFound(blob.name)))]);
                break;
            }
            assert_eq!(actions, []);
            assert_eq!(fetch.on_tick(now), [], "searched again before its time");
            now += REQUERY;
            assert_eq!(fetch.on_tick(now), [Action::FindProviders]);
        }
        assert_eq!(now - start, REQUERY * (QUERIES - 1));
    }

    #[test]
    fn a_provider_without_the_blob_or_unreachable_is_skipped() {
        let blob = Blob::new(2);
        let (empty, gone, honest) = (PeerId::random(), PeerId::random(), PeerId::random());
        let now = Instant::now();
        let (mut fetch, _) = Fetch::search(blob.name);
        let asked = requests(&fetch.on_providers([empty, gone, honest], true, now));
        assert_eq!(asked[0].0, empty);
        let not_found = borsh::to_vec(&SegmentResponse::NotFound).unwrap();
        let asked = requests(&fetch.on_answer(empty, 0, &not_found, now));
        assert_eq!(asked[0].0, gone);
        let asked = requests(&fetch.on_failure(gone, now));
        assert_eq!(asked[0].0, honest);
        let done = fetch.on_answer(honest, 0, &blob.answer(&asked[0].2, &blob.data), now);
        assert_eq!(done, [Action::Finished(Ok(blob.data.clone()))]);
        // A provider found again after it was skipped is not asked again.
        assert_eq!(fetch.on_providers([empty], true, now), []);
    }

    #[test]
    fn a_fetch_from_one_peer_asks_it_alone_and_never_searches() {
        let blob = Blob::new(1);
        let peer = PeerId::random();
        let now = Instant::now();
        let (mut fetch, actions) = Fetch::from_peer(blob.name, peer, now);
        assert!(requests(&actions).iter().all(|a| a.0 == peer));
        let actions = fetch.on_failure(peer, now);
        assert_eq!(actions, [Action::Finished(Err(FetchError::NotFound(blob.name)))]);
        assert_eq!(fetch.on_tick(now + REQUERY), []);
    }

    #[test]
    fn at_most_in_flight_batches_are_asked_at_once() {
        let blob = Blob::new((IN_FLIGHT + 4) * BATCH as usize);
        let peer = PeerId::random();
        let now = Instant::now();
        let (mut fetch, _) = Fetch::search(blob.name);
        let first = requests(&fetch.on_providers([peer], true, now));
        let asked = requests(&fetch.on_answer(peer, 0, &blob.answer(&first[0].2, &blob.data), now));
        assert_eq!(asked.len(), IN_FLIGHT);
        // Each answer frees one place.
        let (p, f, r) = &asked[0];
        let next = requests(&fetch.on_answer(*p, *f, &blob.answer(r, &blob.data), now));
        assert_eq!(next.len(), 1);
    }
}
