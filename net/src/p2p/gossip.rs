//! Messages: gossip on the registry's topics, checked before it is delivered or forwarded, and
//! one-way messages to one peer (`/kinema/direct/1`); both reach [`super::Messages`].

use std::sync::atomic::Ordering;

use libp2p::{PeerId, gossipsub, request_response};
use tracing::debug;

use super::SwarmTask;
use crate::gossip::Verdict;

impl SwarmTask {
    pub(super) fn on_gossip(&mut self, event: gossipsub::Event) {
        let gossipsub::Event::Message { propagation_source, message_id, message } = event else {
            return;
        };
        let verdict = match self.topics.get(&message.topic) {
            Some((_, check)) => check(&message.data),
            None => Verdict::Reject,
        };
        let fits = verdict == Verdict::Accept;
        let verdict = match verdict {
            Verdict::Accept => gossipsub::MessageAcceptance::Accept,
            Verdict::Ignore => gossipsub::MessageAcceptance::Ignore,
            Verdict::Reject => {
                debug!(%propagation_source, topic = %message.topic, "gossip rejected");
                self.refused(propagation_source);
                gossipsub::MessageAcceptance::Reject
            }
        };
        let gossip = &mut self.swarm.behaviour_mut().gossipsub;
        gossip.report_message_validation_result(&message_id, &propagation_source, verdict);
        if fits {
            // Its author when this node can answer it directly (a block asked for after a
            // header is heard goes there), otherwise the peer it came through.
            let from = message
                .source
                .filter(|author| self.swarm.is_connected(author))
                .unwrap_or(propagation_source);
            self.deliver(from, message.data);
        }
    }

    pub(super) fn on_direct(&mut self, event: request_response::Event<Vec<u8>, Vec<u8>>) {
        match event {
            request_response::Event::Message {
                peer,
                message: request_response::Message::Request { request, channel, .. },
                ..
            } => {
                self.deliver(peer, request);
                let _ = self.swarm.behaviour_mut().direct.send_response(channel, Vec::new());
            }
            request_response::Event::OutboundFailure { peer, error, .. } => {
                debug!(%peer, "direct message failed: {error}");
            }
            _ => {}
        }
    }

    /// Counts a message of `peer`'s refused; past [`super::MAX_REFUSED`] since the last
    /// [`super::FORGIVE`], it is banned.
    fn refused(&mut self, peer: PeerId) {
        if self.rejected.len() >= super::REFUSED_PEERS && !self.rejected.contains_key(&peer) {
            self.rejected.clear();
        }
        let count = self.rejected.entry(peer).or_default();
        *count += 1;
        if *count > super::MAX_REFUSED {
            self.rejected.remove(&peer);
            self.ban(peer, "it forwarded gossip that does not pass its topic's check");
        }
    }

    fn deliver(&mut self, from: PeerId, bytes: Vec<u8>) {
        if self.inbox.try_send((from, bytes.into())).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}
