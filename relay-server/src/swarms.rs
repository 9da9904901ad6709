//! Viewers of the same content finding each other: `GET /api/v1/swarms/{content}?join=<address>`
//! names a tab's `/webrtc` address through this relay (`<relay>/p2p-circuit/webrtc/p2p/<tab>`)
//! and answers with the others heard for that content, newest first; `?leave=<address>` takes
//! it out (a tab closing). Like a tracker's announce,
//! it is a read anyone may make (a tab with no wallet shares too), so every table is bounded:
//! at most [`MAX_CONTENTS`] contents, [`MAX_PER_CONTENT`] addresses each, each forgotten
//! [`EXPIRE`] after it was last heard, and only addresses through this relay are taken.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Path, Query, State};
use kinema_chain::Hash;
use kinema_chain::rpc::ErrorReply;
use kinema_http::{Error, Result};
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};

use crate::api::Swarm;
use crate::routes::AppState;

/// Contents with a swarm remembered at most; the one heard of least recently goes first.
pub(crate) const MAX_CONTENTS: usize = 1024;
/// Addresses remembered per content at most; the oldest goes first.
pub(crate) const MAX_PER_CONTENT: usize = 64;
/// Addresses given back at most.
pub(crate) const MAX_ANSWERED: usize = 16;
/// How long an address is remembered after it was last heard (tabs say so every few seconds,
/// and `?leave=` when they close).
pub(crate) const EXPIRE: Duration = Duration::from_secs(30);
/// The longest address taken.
const MAX_ADDRESS: usize = 512;

/// A content's swarm: when a tab last joined, and each tab's address and when it was heard.
type Members = (Instant, VecDeque<(PeerId, String, Instant)>);

#[derive(Default)]
pub(crate) struct Swarms {
    by_content: Mutex<HashMap<Hash, Members>>,
}

impl Swarms {
    /// Records `joining` (a tab's peer and address) for `content`, and returns the others.
    fn join(
        &self,
        content: Hash,
        joining: Option<(PeerId, String)>,
        leaving: Option<(PeerId, String)>,
        now: Instant,
    ) -> Vec<String> {
        let mut all = self.by_content.lock().unwrap_or_else(|e| e.into_inner());
        if !all.contains_key(&content) && joining.is_some() && all.len() >= MAX_CONTENTS {
            let oldest = all.iter().min_by_key(|(_, (at, _))| *at).map(|(c, _)| *c);
            if let Some(oldest) = oldest {
                all.remove(&oldest);
            }
        }
        let swarm = match (all.get_mut(&content), &joining) {
            (Some(swarm), _) => swarm,
            (None, Some(_)) => all.entry(content).or_insert_with(|| (now, VecDeque::new())),
            (None, None) => return Vec::new(),
        };
        swarm.1.retain(|(_, _, at)| now.duration_since(*at) < EXPIRE);
        let me = joining.as_ref().map(|(peer, _)| *peer);
        if let Some((peer, _)) = &leaving {
            swarm.1.retain(|(p, _, _)| p != peer);
        }
        let others: Vec<String> = swarm
            .1
            .iter()
            .rev()
            .filter(|(peer, _, _)| Some(*peer) != me)
            .take(MAX_ANSWERED)
            .map(|(_, address, _)| address.clone())
            .collect();
        if let Some((peer, address)) = joining {
            swarm.0 = now;
            swarm.1.retain(|(p, _, _)| *p != peer);
            swarm.1.push_back((peer, address, now));
            while swarm.1.len() > MAX_PER_CONTENT {
                swarm.1.pop_front();
            }
        }
        others
    }
}

/// The tab a `/webrtc` address names, when the address goes through `relay`.
fn tab_of(address: &str, relay: PeerId) -> std::result::Result<PeerId, String> {
    if address.len() > MAX_ADDRESS {
        return Err(format!("an address of more than {MAX_ADDRESS} characters"));
    }
    let parsed: Multiaddr = address.parse().map_err(|e| format!("{address:?}: {e}"))?;
    let parts: Vec<Protocol<'_>> = parsed.iter().collect();
    match parts.as_slice() {
        [.., Protocol::P2p(r), Protocol::P2pCircuit, Protocol::WebRTC, Protocol::P2p(tab)]
            if *r == relay =>
        {
            Ok(*tab)
        }
        _ => Err(format!("{address} is not <this relay>/p2p-circuit/webrtc/p2p/<tab>")),
    }
}

/// `?join=`.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub(crate) struct Join {
    /// The tab's address through this relay, `<relay>/p2p-circuit/webrtc/p2p/<tab>`.
    join: Option<String>,
    /// An address to take out (the tab is closing).
    leave: Option<String>,
}

/// `GET /api/v1/swarms/{content}`.
#[utoipa::path(
    get,
    path = "/api/v1/swarms/{content}",
    operation_id = "swarm",
    summary = "The browsers watching a content id, newest first, the caller's address added",
    params(("content" = String, Path, description = "the content id"), Join),
    responses(
        (status = 200, body = Swarm),
        (status = 400, description = "not a content id, or not an address through this relay", body = ErrorReply),
    ),
)]
pub(crate) async fn swarm(
    State(state): State<AppState>,
    Path(content): Path<String>,
    Query(join): Query<Join>,
) -> Result<Json<Swarm>> {
    let content: Hash =
        content.parse().map_err(|e| Error::bad_request(format!("content id: {e}")))?;
    let relay = state.relay.p2p.peer_id();
    let tab = |field: &str, address: Option<String>| {
        address
            .map(|address| tab_of(&address, relay).map(|tab| (tab, address)))
            .transpose()
            .map_err(|why| Error::bad_request(format!("{field}: {why}")))
    };
    let (joining, leaving) = (tab("join", join.join)?, tab("leave", join.leave)?);
    let peers = state.relay.swarms.join(content, joining, leaving, Instant::now());
    Ok(Json(Swarm { peers }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tab(n: u8) -> (PeerId, String) {
        let key = libp2p::identity::Keypair::ed25519_from_bytes([n; 32]).unwrap();
        let peer = key.public().to_peer_id();
        (peer, format!("/ip4/127.0.0.1/tcp/1/ws/p2p/RELAY/p2p-circuit/webrtc/p2p/{peer}"))
    }

    #[test]
    fn a_swarm_answers_the_others_newest_first_and_forgets_and_bounds() {
        let swarms = Swarms::default();
        let (content, now) = (Hash([1; 32]), Instant::now());
        assert!(swarms.join(content, None, None, now).is_empty());
        assert!(swarms.join(content, Some(tab(1)), None, now).is_empty());
        assert_eq!(swarms.join(content, Some(tab(2)), None, now), vec![tab(1).1]);
        assert_eq!(swarms.join(content, Some(tab(3)), None, now), vec![tab(2).1, tab(1).1]);
        // Joining again moves a tab to the front, once.
        assert_eq!(swarms.join(content, Some(tab(1)), None, now), vec![tab(3).1, tab(2).1]);
        assert_eq!(swarms.join(content, None, None, now), vec![tab(1).1, tab(3).1, tab(2).1]);
        // A tab that leaves is not answered any more.
        assert_eq!(swarms.join(content, None, Some(tab(3)), now), vec![tab(1).1, tab(2).1]);
        // Forgotten once not heard for EXPIRE.
        assert!(swarms.join(content, None, None, now + EXPIRE).is_empty());
        // A flood of tabs keeps the newest MAX_PER_CONTENT, answering MAX_ANSWERED.
        for n in 10..200 {
            swarms.join(content, Some(tab(n)), None, now);
        }
        let all = swarms.by_content.lock().unwrap();
        assert_eq!(all[&content].1.len(), MAX_PER_CONTENT);
        drop(all);
        assert_eq!(swarms.join(content, None, None, now).len(), MAX_ANSWERED);
        // A flood of contents keeps MAX_CONTENTS.
        for n in 0..(MAX_CONTENTS as u32 + 10) {
            let mut id = [0; 32];
            id[..4].copy_from_slice(&n.to_le_bytes());
            swarms.join(Hash(id), Some(tab(1)), None, now);
        }
        assert_eq!(swarms.by_content.lock().unwrap().len(), MAX_CONTENTS);
    }

    #[test]
    fn only_webrtc_addresses_through_this_relay_are_taken() {
        let relay = tab(9).0;
        let tab1 = tab(1).0;
        let good = format!("/ip4/127.0.0.1/tcp/1/ws/p2p/{relay}/p2p-circuit/webrtc/p2p/{tab1}");
        assert_eq!(tab_of(&good, relay), Ok(tab1));
        let other_relay = good.replace(&relay.to_string(), &tab(8).0.to_string());
        let bad = [
            other_relay.as_str(),
            "/ip4/127.0.0.1/tcp/1/ws",
            "not an address",
            &format!("/ip4/127.0.0.1/tcp/1/ws/p2p/{relay}/p2p-circuit/p2p/{tab1}"),
        ];
        for address in bad {
            assert!(tab_of(address, relay).is_err(), "{address}");
        }
        assert!(tab_of(&"/ip4/1.1.1.1".repeat(100), relay).is_err());
    }
}
