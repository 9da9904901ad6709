//! The consensus engine's transport over the libp2p swarm.
//!
//! kinema-net's swarm knows nothing of the chain: it joins the topics of a gossip registry and
//! moves bytes. [`gossip`] registers the chain's topics with the engine's checks (a
//! [`Guard`]: what does not pass is neither delivered nor forwarded), and [`P2pLink`] is
//! the consensus [`Transport`] over the swarm's [`Messages`]: the engine's [`Peer`] names for
//! libp2p peers are given here.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use kinema_chain::gossip::Topic;
use kinema_net::gossip::Registry;
use kinema_net::p2p::Messages;
use libp2p::PeerId;

use crate::consensus::Peer;
use crate::consensus::guard::Guard;
use crate::consensus::node::Transport;

/// The gossip registry of a node of chain `chain_id`: its topics, each passing only what
/// `guard` admits (the engine's checks: signatures of validators, certificates of heads; see
/// [`Guard`]).
pub fn gossip(chain_id: &str, guard: Arc<Guard>) -> Registry {
    let mut registry = Registry::new();
    for topic in Topic::ALL {
        let guard = guard.clone();
        registry.register(topic.name(chain_id), move |bytes| guard.admits(topic, bytes));
    }
    registry
}

/// Peers the transport names at most; past it the name given longest ago is forgotten (a peer
/// that speaks again gets a new one). Every peer that ever sends a message gets a name, so
/// without a bound the table would grow with every identity a sybil makes up.
pub const MAX_PEER_NAMES: usize = 4096;

/// The engine's names for libp2p peers, and back; bounded.
#[derive(Debug, Default)]
pub struct PeerNames {
    names: HashMap<PeerId, Peer>,
    ids: HashMap<Peer, PeerId>,
    /// Names in the order they were given.
    order: VecDeque<Peer>,
    next: u64,
}

impl PeerNames {
    /// The name of `peer`, given now if it has none.
    pub fn name(&mut self, peer: PeerId) -> Peer {
        if let Some(name) = self.names.get(&peer) {
            return *name;
        }
        let name = Peer(self.next);
        self.next += 1;
        self.names.insert(peer, name);
        self.ids.insert(name, peer);
        self.order.push_back(name);
        while self.order.len() > MAX_PEER_NAMES {
            if let Some(old) = self.order.pop_front()
                && let Some(id) = self.ids.remove(&old)
            {
                self.names.remove(&id);
            }
        }
        name
    }

    /// The peer named `name`, unless it was forgotten.
    pub fn peer(&self, name: Peer) -> Option<PeerId> {
        self.ids.get(&name).copied()
    }

    /// Names held.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether no name is held.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// A consensus [`Transport`] over a libp2p node's [`Messages`].
#[derive(Debug)]
pub struct P2pLink {
    messages: Messages,
    chain_id: String,
    names: PeerNames,
}

impl P2pLink {
    /// The transport of chain `chain_id` over `messages` (a node started with
    /// [`gossip`]`(chain_id)`).
    pub fn new(messages: Messages, chain_id: &str) -> Self {
        Self { messages, chain_id: chain_id.to_owned(), names: PeerNames::default() }
    }
}

impl Transport for P2pLink {
    fn broadcast(&mut self, topic: Topic, bytes: Vec<u8>) {
        self.messages.publish(&topic.name(&self.chain_id), bytes);
    }

    fn send(&mut self, to: Peer, bytes: Vec<u8>) {
        if let Some(peer) = self.names.peer(to) {
            self.messages.send(peer, bytes);
        }
    }

    fn penalize(&mut self, peer: Peer) {
        if let Some(peer) = self.names.peer(peer) {
            self.messages.ban(peer);
        }
    }

    async fn recv(&mut self) -> Option<(Peer, Arc<[u8]>)> {
        let (from, bytes) = self.messages.recv().await?;
        Some((self.names.name(from), bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_names_are_stable_and_bounded() {
        let mut names = PeerNames::default();
        let first = PeerId::random();
        let name = names.name(first);
        assert_eq!(names.name(first), name);
        assert_eq!(names.peer(name), Some(first));
        // A flood of made-up identities: the table stays at its bound, the oldest name goes.
        for _ in 0..MAX_PEER_NAMES {
            names.name(PeerId::random());
        }
        assert_eq!(names.len(), MAX_PEER_NAMES);
        assert_eq!(names.peer(name), None);
        let again = names.name(first);
        assert_ne!(again, name, "a forgotten peer gets a new name");
        assert_eq!(names.peer(again), Some(first));
    }
}
