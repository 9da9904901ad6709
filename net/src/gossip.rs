//! Gossip topics and what may be forwarded on each.
//!
//! A node joins the topics of a [`Registry`]: each topic's name and the check its messages must
//! pass before this node delivers or forwards them (gossipsub's validation, strict mode). A
//! message that fails is rejected — dropped, not forwarded, its sender's score lowered — and one
//! on a topic the registry does not know is never delivered. New kinds of message register
//! their topic and check where they are defined (the chain's consensus topics in kinema-node,
//! the finalized headers a relay forwards to browsers in kinema-relay), so this crate knows
//! nothing of what they carry.

use std::sync::Arc;

/// What a node does with a message it heard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Deliver it and forward it.
    Accept,
    /// Neither, and hold nothing against its sender: it may be right for a node that is
    /// elsewhere in the chain (a vote for a height this node has not reached).
    Ignore,
    /// Neither, and count it against the peer it came from: only a liar sends it.
    Reject,
}

impl From<bool> for Verdict {
    fn from(ok: bool) -> Self {
        if ok { Verdict::Accept } else { Verdict::Reject }
    }
}

/// What a topic's message must pass.
pub type Check = Arc<dyn Fn(&[u8]) -> Verdict + Send + Sync>;

/// The topics a node joins, each with its check.
#[derive(Clone, Default)]
pub struct Registry {
    topics: Vec<(String, Check)>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.topics.iter().map(|(name, _)| name)).finish()
    }
}

impl Registry {
    /// No topics.
    pub fn new() -> Self {
        Self::default()
    }

    /// Joins topic `name`, whose messages pass only when `check` says so. A name registered
    /// twice keeps its last check.
    pub fn register(
        &mut self,
        name: impl Into<String>,
        check: impl Fn(&[u8]) -> Verdict + Send + Sync + 'static,
    ) -> &mut Self {
        let name = name.into();
        self.topics.retain(|(n, _)| *n != name);
        self.topics.push((name, Arc::new(check)));
        self
    }

    /// The topics and their checks.
    pub fn topics(&self) -> impl Iterator<Item = (&str, &Check)> {
        self.topics.iter().map(|(name, check)| (name.as_str(), check))
    }

    /// The check of topic `name`.
    pub fn check(&self, name: &str) -> Option<&Check> {
        self.topics.iter().find(|(n, _)| n == name).map(|(_, check)| check)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_topic_registered_again_keeps_its_last_check() {
        let mut registry = Registry::new();
        registry.register("a", |_| Verdict::Reject).register("b", |b| (b == b"ok").into());
        registry.register("a", |b| (!b.is_empty()).into());
        let names: Vec<&str> = registry.topics().map(|(n, _)| n).collect();
        assert_eq!(names, ["b", "a"]);
        assert!(registry.check("a").is_some_and(|c| c(b"x") == Verdict::Accept));
        assert!(registry.check("b").is_some_and(|c| c(b"no") == Verdict::Reject));
        assert!(registry.check("c").is_none());
    }
}
