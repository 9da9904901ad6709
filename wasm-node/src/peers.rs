//! What a tab shares with other viewers' tabs: the segments it played, kept in memory and
//! answered on `/kinema/segment/1` to whoever asks ([`Kept`]); and the browsers it holds a
//! direct connection to, less those caught sending bad data ([`Browsers`]).

use std::collections::{HashMap, HashSet, VecDeque};
use std::rc::Rc;

use kinema_chain::Hash;
use kinema_net::verified::Outboard;
use kinema_net::wire::{self, SegmentRequest, SegmentResponse};
use libp2p::PeerId;
use libp2p::swarm::ConnectionId;

/// Bytes of segments a tab keeps to serve, at most; the oldest kept go first.
pub(crate) const KEPT_BYTES: usize = 64 << 20;
/// Browsers a tab holds direct connections to at most (others are not dialled).
pub(crate) const MAX_BROWSERS: usize = 16;
/// Peers remembered as caught lying, at most (the oldest forgotten first).
const MAX_BANNED: usize = 256;

/// Segments kept to serve, each with its outboard (so every 16 KiB group can be checked by
/// whoever fetches it).
#[derive(Default)]
pub(crate) struct Kept {
    blobs: HashMap<Hash, (Rc<Vec<u8>>, Outboard)>,
    order: VecDeque<Hash>,
    bytes: usize,
    /// Bytes of segments sent to others.
    pub(crate) served: u64,
    /// Whether it answers at all (the player's "mine bandwidth" switch).
    pub(crate) paused: bool,
    /// Bytes it sends to others at most (the user's upload cap), if any.
    pub(crate) cap: Option<u64>,
}

impl Kept {
    /// Keeps `bytes` as segment `name`, if they are it.
    pub(crate) fn keep(&mut self, name: Hash, bytes: Vec<u8>) -> Result<(), String> {
        if self.blobs.contains_key(&name) {
            return Ok(());
        }
        if bytes.len() > KEPT_BYTES {
            return Err(format!("{} bytes is more than a tab keeps", bytes.len()));
        }
        let (computed, outboard) = Outboard::compute(&bytes);
        if computed != name {
            return Err(format!("the bytes are {computed}, not {name}"));
        }
        self.bytes += bytes.len();
        self.blobs.insert(name, (Rc::new(bytes), outboard));
        self.order.push_back(name);
        while self.bytes > KEPT_BYTES {
            let Some(old) = self.order.pop_front() else { break };
            if let Some((bytes, _)) = self.blobs.remove(&old) {
                self.bytes -= bytes.len();
            }
        }
        Ok(())
    }

    /// The segment a request asks for, when it would be served but is not kept in memory (the
    /// page may hold it elsewhere: `LightNode::serveFrom`).
    pub(crate) fn missing(&self, request: &[u8]) -> Option<Hash> {
        let closed = self.paused || self.cap.is_some_and(|cap| self.served >= cap);
        let request = borsh::from_slice::<SegmentRequest>(request).ok()?;
        (!closed && !self.blobs.contains_key(&request.name)).then_some(request.name)
    }

    /// The answer to a segment request (borsh), from what is kept: not found while paused or
    /// once the upload cap is reached.
    pub(crate) fn answer(&mut self, request: &[u8]) -> Vec<u8> {
        let closed = self.paused || self.cap.is_some_and(|cap| self.served >= cap);
        let answer = match borsh::from_slice::<SegmentRequest>(request) {
            Ok(_) if closed => SegmentResponse::NotFound,
            Ok(request) => match self.blobs.get(&request.name) {
                Some((bytes, outboard)) => {
                    let read = |range: std::ops::Range<usize>| {
                        let group = kinema_net::verified::GROUP;
                        let end = (range.end * group).min(bytes.len());
                        let start = (range.start * group).min(end);
                        let groups: Vec<Vec<u8>> =
                            bytes[start..end].chunks(group).map(<[u8]>::to_vec).collect();
                        Some(if groups.is_empty() { vec![Vec::new()] } else { groups })
                    };
                    let answer = wire::answer(&request, outboard, read);
                    if let SegmentResponse::Found { groups, .. } = &answer {
                        self.served += groups.iter().map(|g| g.len() as u64).sum::<u64>();
                    }
                    answer
                }
                None => SegmentResponse::NotFound,
            },
            Err(_) => SegmentResponse::NotFound,
        };
        borsh::to_vec(&answer).unwrap_or_default()
    }
}

/// The browsers a tab reaches directly, and those it will not ask again.
#[derive(Default)]
pub(crate) struct Browsers {
    direct: HashMap<PeerId, ConnectionId>,
    banned: HashSet<PeerId>,
    banned_order: VecDeque<PeerId>,
}

impl Browsers {
    pub(crate) fn connected(&mut self, peer: PeerId, connection: ConnectionId) {
        if !self.banned.contains(&peer) && self.direct.len() < MAX_BROWSERS {
            self.direct.insert(peer, connection);
        }
    }

    pub(crate) fn closed(&mut self, peer: &PeerId, connection: ConnectionId) {
        if self.direct.get(peer) == Some(&connection) {
            self.direct.remove(peer);
        }
    }

    /// Whether a direct connection to `peer` is up.
    pub(crate) fn has(&self, peer: &PeerId) -> bool {
        self.direct.contains_key(peer)
    }

    /// How many direct connections are up.
    pub(crate) fn len(&self) -> usize {
        self.direct.len()
    }

    /// Whether `peer` was caught sending bad data.
    pub(crate) fn is_banned(&self, peer: &PeerId) -> bool {
        self.banned.contains(peer)
    }

    /// The browsers to ask for a segment, in no particular order.
    pub(crate) fn to_ask(&self) -> Vec<PeerId> {
        self.direct.keys().copied().collect()
    }

    /// `peer` sent bad data: it is not asked again (nor connected to).
    pub(crate) fn ban(&mut self, peer: PeerId) {
        self.direct.remove(&peer);
        if self.banned.insert(peer) {
            self.banned_order.push_back(peer);
            if self.banned_order.len() > MAX_BANNED
                && let Some(old) = self.banned_order.pop_front()
            {
                self.banned.remove(&old);
            }
        }
    }
}
