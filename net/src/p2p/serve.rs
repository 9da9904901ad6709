//! Serving blobs: segment requests answered from the store on blocking threads (at most
//! `READERS` at once), or once the blob is fetched when this node fetches what it lacks (a
//! relay); and announcing what the store holds.

use kinema_chain::Hash;
use std::sync::atomic::Ordering;

use libp2p::{kad, request_response};
use tracing::warn;

use super::{Done, Stats, SwarmTask};
use crate::blobs::BlobStore;
use crate::wire::{self, SegmentRequest, SegmentResponse};

impl SwarmTask {
    /// Announces everything the store holds (once the node knows a peer to announce it to,
    /// and again after a restart).
    pub(super) fn provide_held(&mut self) {
        let held = self.blobs.as_ref().map(|b| b.list()).transpose();
        match held {
            Ok(names) => names.into_iter().flatten().for_each(|name| self.provide(name)),
            Err(e) => warn!("listing the blob store: {e}"),
        }
    }

    pub(super) fn provide(&mut self, name: Hash) {
        let key = kad::RecordKey::new(name.as_bytes());
        if let Err(e) = self.swarm.behaviour_mut().kad.start_providing(key) {
            warn!(%name, "providing: {e}");
        }
    }

    /// Answers a segment request: at once, or once the blob is fetched when this node fetches
    /// what it is asked for and does not hold.
    pub(super) fn on_request(
        &mut self,
        channel: request_response::ResponseChannel<Vec<u8>>,
        request: Vec<u8>,
    ) {
        if self.fetch_missing
            && let Ok(asked) = borsh::from_slice::<SegmentRequest>(&request)
            && let Some(store) = &self.blobs
        {
            let name = asked.name;
            // Without room, the request is answered now from what the store holds.
            if !store.has(&name) && self.fetch_has_room(&name) {
                self.fetching(name).waiting.push((channel, request));
                return;
            }
        }
        self.serve(channel, request);
    }

    /// Answers a segment request from the store on a blocking thread (reading a blob must not
    /// hold up the swarm); the answer comes back as a [`Done`]. At most `READERS` read at
    /// once.
    pub(super) fn serve(
        &self,
        channel: request_response::ResponseChannel<Vec<u8>>,
        request: Vec<u8>,
    ) {
        let (blobs, stats, done) = (self.blobs.clone(), self.stats.clone(), self.done.clone());
        let readers = self.readers.clone();
        tokio::spawn(async move {
            let Ok(_permit) = readers.acquire_owned().await else { return };
            let read = move || answer(blobs.as_deref(), &stats, &request);
            let Ok(answer) = tokio::task::spawn_blocking(read).await else { return };
            let _ = done.send(Done::Answer(channel, answer)).await;
        });
    }

    pub(super) fn on_done(&mut self, done: Done) {
        match done {
            Done::Answer(channel, answer) => {
                let _ = self.swarm.behaviour_mut().segments.send_response(channel, answer);
            }
            Done::Kept(name) => self.provide(name),
        }
    }
}

/// What a node holding `blobs` answers to a segment request.
pub(super) fn answer(blobs: Option<&BlobStore>, stats: &Stats, request: &[u8]) -> Vec<u8> {
    let answer = match (borsh::from_slice::<SegmentRequest>(request), blobs) {
        (Ok(request), Some(store)) => match store.outboard(&request.name) {
            Ok(outboard) => {
                let name = request.name;
                let read = |range| store.groups(&name, &outboard, range).ok();
                let answer = wire::answer(&request, &outboard, read);
                if let SegmentResponse::Found { groups, .. } = &answer {
                    let sent: usize = groups.iter().map(Vec::len).sum();
                    stats.segment_requests.fetch_add(1, Ordering::Relaxed);
                    stats.segment_bytes.fetch_add(sent as u64, Ordering::Relaxed);
                }
                answer
            }
            Err(_) => SegmentResponse::NotFound,
        },
        _ => SegmentResponse::NotFound,
    };
    borsh::to_vec(&answer).unwrap_or_default()
}
