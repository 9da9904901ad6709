//! Viewers of the same content finding each other: `GET /api/v1/swarms/{content}?join=<address>`
//! names a tab's `/webrtc` address through this relay (`<relay>/p2p-circuit/webrtc/p2p/<tab>`)
//! and answers with the others heard for that content, newest first; `?leave=<address>` takes
//! it out (a tab closing). Like a tracker's announce, anyone may ask (a tab with no wallet
//! shares too), so every table is bounded: at most [`MAX_CONTENTS`] contents,
//! [`MAX_PER_CONTENT`] addresses each, each forgotten [`EXPIRE`] after it was last heard. A join
//! or a leave is taken only from the tab its address names: signed with that tab's libp2p key
//! (`api::swarm_statement`, within `api::SWARM_SKEW_MS` of the relay's clock, no older than
//! what the tab said last), and a join only while the tab holds a connection to this relay
//! (which its reservation needs): nobody can join or take out a tab but the tab, and a swarm
//! fills only with tabs that are there.

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

/// A content's swarm: when a tab last joined, and each tab's address, when it was heard and
/// the time its statement was signed at.
type Members = (Instant, VecDeque<(PeerId, String, Instant, u64)>);

/// A tab's signed statement: its peer, address and the time it signed at.
type Said = (PeerId, String, u64);

#[derive(Default)]
pub(crate) struct Swarms {
    by_content: Mutex<HashMap<Hash, Members>>,
}

impl Swarms {
    /// Records `joining` (a tab's peer and address) for `content`, and returns the others.
    fn join(
        &self,
        content: Hash,
        joining: Option<Said>,
        leaving: Option<Said>,
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
        swarm.1.retain(|(_, _, at, _)| now.duration_since(*at) < EXPIRE);
        let me = joining.as_ref().map(|(peer, _, _)| *peer);
        if let Some((peer, _, said)) = &leaving {
            // A leave older than the tab's last join is a replay: not taken.
            swarm.1.retain(|(p, _, _, joined)| p != peer || joined > said);
        }
        let others: Vec<String> = swarm
            .1
            .iter()
            .rev()
            .filter(|(peer, _, _, _)| Some(*peer) != me)
            .take(MAX_ANSWERED)
            .map(|(_, address, _, _)| address.clone())
            .collect();
        if let Some((peer, address, said)) = joining {
            let last = swarm.1.iter().find(|(p, ..)| *p == peer).map(|(.., s)| *s);
            if last.is_some_and(|last| last > said) {
                return others; // an older join replayed: the newer one stands
            }
            swarm.0 = now;
            swarm.1.retain(|(p, _, _, _)| *p != peer);
            swarm.1.push_back((peer, address, now, said));
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

/// Checks that `tab` signed `statement` (`signature`, hex) at `at_ms`, near `now_ms`.
fn check_signed(
    tab: PeerId,
    statement: &[u8],
    signature: &str,
    at_ms: u64,
    now_ms: u64,
) -> std::result::Result<(), String> {
    if at_ms.abs_diff(now_ms) > crate::api::SWARM_SKEW_MS {
        return Err(format!("signed at {at_ms} ms, {now_ms} ms here: too far apart"));
    }
    let multihash: &libp2p::multihash::Multihash<64> = tab.as_ref();
    // Ed25519 peer ids carry their public key (an identity multihash of its protobuf).
    let key = (multihash.code() == 0)
        .then(|| libp2p::identity::PublicKey::try_decode_protobuf(multihash.digest()).ok())
        .flatten()
        .ok_or_else(|| format!("{tab} carries no public key"))?;
    let signature = hex::decode(signature).map_err(|_| "sig: not hex".to_owned())?;
    if !key.verify(statement, &signature) {
        return Err(format!("sig: not {tab}'s signature of this statement"));
    }
    Ok(())
}

/// `?join=` or `?leave=`, signed.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub(crate) struct Join {
    /// The tab's address through this relay, `<relay>/p2p-circuit/webrtc/p2p/<tab>`.
    join: Option<String>,
    /// An address to take out (the tab is closing).
    leave: Option<String>,
    /// When the tab signed (Unix time in ms).
    at: Option<u64>,
    /// The tab's signature (hex) of `api::swarm_statement(content, leave, address, at)`.
    sig: Option<String>,
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
        (status = 403, description = "not signed by the tab the address names, or the tab is not connected to this relay", body = ErrorReply),
    ),
)]
pub(crate) async fn swarm(
    State(state): State<AppState>,
    Path(content): Path<String>,
    Query(join): Query<Join>,
) -> Result<Json<Swarm>> {
    let content: Hash =
        content.parse().map_err(|e| Error::bad_request(format!("content id: {e}")))?;
    let p2p = &state.relay.p2p;
    let relay = p2p.peer_id();
    let (address, leave) = match (join.join, join.leave) {
        (None, None) => {
            let peers = state.relay.swarms.join(content, None, None, Instant::now());
            return Ok(Json(Swarm { peers }));
        }
        (Some(address), None) => (address, false),
        (None, Some(address)) => (address, true),
        (Some(_), Some(_)) => return Err(Error::bad_request("join or leave, not both")),
    };
    let field = if leave { "leave" } else { "join" };
    let tab =
        tab_of(&address, relay).map_err(|why| Error::bad_request(format!("{field}: {why}")))?;
    let (Some(at), Some(sig)) = (join.at, join.sig) else {
        return Err(Error::bad_request(format!(
            "{field}: at and sig (the tab's signature) are needed"
        )));
    };
    let statement = crate::api::swarm_statement(&content, leave, &address, at);
    check_signed(tab, &statement, &sig, at, crate::api::now_ms())
        .map_err(|why| Error::new(axum::http::StatusCode::FORBIDDEN, format!("{field}: {why}")))?;
    if !leave && !p2p.is_connected(&tab) {
        return Err(Error::new(
            axum::http::StatusCode::FORBIDDEN,
            format!("join: {tab} is not connected to this relay"),
        ));
    }
    let said = Some((tab, address, at));
    let (joining, leaving) = if leave { (None, said) } else { (said, None) };
    let peers = state.relay.swarms.join(content, joining, leaving, Instant::now());
    Ok(Json(Swarm { peers }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> libp2p::identity::Keypair {
        libp2p::identity::Keypair::ed25519_from_bytes([n; 32]).unwrap()
    }

    fn tab(n: u8) -> (PeerId, String, u64) {
        let peer = key(n).public().to_peer_id();
        (peer, format!("/ip4/127.0.0.1/tcp/1/ws/p2p/RELAY/p2p-circuit/webrtc/p2p/{peer}"), 1)
    }

    #[test]
    fn only_the_tab_itself_joins_or_leaves_and_replays_do_not_undo_it() {
        let (content, now_ms) = (Hash([1; 32]), 1_000_000_000);
        let (peer, address, _) = tab(1);
        let sign = |n: u8, leave: bool, at: u64| {
            let statement = crate::api::swarm_statement(&content, leave, &address, at);
            (statement.clone(), hex::encode(key(n).sign(&statement).unwrap()))
        };
        let (statement, sig) = sign(1, false, now_ms);
        assert_eq!(check_signed(peer, &statement, &sig, now_ms, now_ms), Ok(()));
        // Another key, another statement, a stale time, garbage: refused.
        let (_, forged) = sign(2, false, now_ms);
        assert!(check_signed(peer, &statement, &forged, now_ms, now_ms).is_err());
        let (leave, _) = sign(1, true, now_ms);
        assert!(check_signed(peer, &leave, &sig, now_ms, now_ms).is_err());
        let late = now_ms + crate::api::SWARM_SKEW_MS + 1;
        assert!(check_signed(peer, &statement, &sig, now_ms, late).unwrap_err().contains("far"));
        assert!(check_signed(peer, &statement, "zz", now_ms, now_ms).is_err());
        // A peer id that is a hash, not a key, cannot sign.
        assert!(check_signed(PeerId::random(), &statement, &sig, now_ms, now_ms).is_err());

        // A leave replayed from before the tab's last join does not take it out; a newer does.
        let swarms = Swarms::default();
        let now = Instant::now();
        swarms.join(content, Some((peer, address.clone(), 5)), None, now);
        let other = tab(2);
        swarms.join(content, Some(other.clone()), Some((peer, address.clone(), 4)), now);
        assert_eq!(swarms.join(content, None, None, now), vec![other.1.clone(), address.clone()]);
        // An older join replayed does not move it either.
        swarms.join(content, Some((peer, address.clone(), 3)), None, now);
        assert_eq!(swarms.join(content, None, None, now), vec![other.1.clone(), address.clone()]);
        swarms.join(content, None, Some((peer, address.clone(), 6)), now);
        assert_eq!(swarms.join(content, None, None, now), vec![other.1]);
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
