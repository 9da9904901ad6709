//! The consensus engine's transport over the libp2p swarm.
//!
//! kinema-net's swarm knows nothing of the chain: it joins the topics of a gossip registry and
//! moves bytes. [`gossip`] registers the chain's topics with their check (a message must
//! decode as its topic's kind of [`Message`] to be delivered or forwarded), and [`P2pLink`] is
//! the consensus [`Transport`] over the swarm's [`Messages`]: the engine's [`Peer`] names for
//! libp2p peers are given here.

use std::collections::HashMap;
use std::sync::Arc;

use kinema_chain::gossip::Topic;
use kinema_net::gossip::Registry;
use kinema_net::p2p::Messages;
use libp2p::PeerId;

use crate::consensus::node::Transport;
use crate::consensus::{Message, Peer};

/// The gossip registry of a node of chain `chain_id`: its topics, each accepting only what
/// decodes as that topic's kind of message.
pub fn gossip(chain_id: &str) -> Registry {
    let mut registry = Registry::new();
    for topic in Topic::ALL {
        registry.register(topic.name(chain_id), move |bytes| {
            kinema_chain::decode::<Message>(bytes).is_ok_and(|m| m.topic() == topic)
        });
    }
    registry
}

/// A consensus [`Transport`] over a libp2p node's [`Messages`].
#[derive(Debug)]
pub struct P2pLink {
    messages: Messages,
    chain_id: String,
    /// The engine's names for libp2p peers, and back.
    names: HashMap<PeerId, Peer>,
    ids: Vec<PeerId>,
}

impl P2pLink {
    /// The transport of chain `chain_id` over `messages` (a node started with
    /// [`gossip`]`(chain_id)`).
    pub fn new(messages: Messages, chain_id: &str) -> Self {
        Self { messages, chain_id: chain_id.to_owned(), names: HashMap::new(), ids: Vec::new() }
    }

    fn name(&mut self, peer: PeerId) -> Peer {
        if let Some(name) = self.names.get(&peer) {
            return *name;
        }
        let name = Peer(self.ids.len() as u64);
        self.ids.push(peer);
        self.names.insert(peer, name);
        name
    }
}

impl Transport for P2pLink {
    fn broadcast(&mut self, topic: Topic, bytes: Vec<u8>) {
        self.messages.publish(&topic.name(&self.chain_id), bytes);
    }

    fn send(&mut self, to: Peer, bytes: Vec<u8>) {
        if let Some(peer) = self.ids.get(to.0 as usize).copied() {
            self.messages.send(peer, bytes);
        }
    }

    async fn recv(&mut self) -> Option<(Peer, Arc<[u8]>)> {
        let (from, bytes) = self.messages.recv().await?;
        Some((self.name(from), bytes))
    }
}
