//! webrtc-direct, as browsers use it: a native node listens on it and never dials it, and what
//! the handshakes of strangers may cost it is bounded.
//!
//! Two defects of libp2p-webrtc 0.10.0-alpha (on webrtc-rs 0.17) shape this module:
//!
//! - **Native dials race.** webrtc-rs starts the SCTP association's accept loop before it opens
//!   the channels negotiated in advance, so when the listener's first noise message (the
//!   listener speaks first) arrives in between, it is taken for a new channel, consumed, and the
//!   dialler's own noise channel never opens ("there already exists a stream with identifier"):
//!   the dial hangs for libp2p-webrtc's 10 s and fails (3 of 123 native dials of a relay on
//!   loopback). The failed attempt's ICE agent then keeps the dialler's UDP address mapped on
//!   both sides, and the redials from that socket are lost too. Browsers have their own SCTP
//!   stack and a new socket for every attempt; native nodes have QUIC, which every Kinema
//!   listener that speaks webrtc-direct also speaks. So [`ListenOnly`] refuses native dials
//!   (the swarm tries the peer's other addresses) and keeps the listener for browsers.
//! - **A failed handshake is kept for good.** The listener starts a WebRTC peer connection (an
//!   ICE agent with an mDNS socket of its own, DTLS and SCTP state: about 94 KiB and a file
//!   descriptor) for the first STUN binding request from a new UDP address, before anything is
//!   authenticated, and drops it without closing it when the handshake fails: its tasks and
//!   socket live as long as the process. One datagram from a new port cost a relay that much
//!   (2,000 cost 188 MB and 1,930 descriptors, none given back). [`Guard`] admits a handshake
//!   only within bounds: [`AT_ONCE`] at once ([`AT_ONCE_PER_IP`] from one IP address), at most
//!   [`FAILURES_PER_IP`] failed ones from an address, and [`FAILURES`] failed ones in all, after
//!   which the node takes no more webrtc-direct handshakes until it restarts (browsers reach it
//!   over its websocket) and says so. A refused handshake costs no peer connection: its
//!   upgrade never runs (libp2p-webrtc still remembers its address, a few tens of bytes). The fix belongs upstream (close the peer connection when an upgrade fails; open the
//!   negotiated channels before accepting streams); these bounds stay right after it.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use libp2p::PeerId;
use libp2p::core::transport::{DialOpts, ListenerId, TransportError, TransportEvent};
use libp2p::core::{Endpoint, Multiaddr, Transport, transport::PortUse};
use libp2p::multiaddr::Protocol;
use libp2p::swarm::{
    ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent,
    THandlerOutEvent, ToSwarm, dummy,
};
use tracing::error;

use super::Stats;

/// webrtc-direct handshakes under way at once.
pub const AT_ONCE: usize = 32;
/// ... from one IP address.
pub const AT_ONCE_PER_IP: usize = 4;
/// Failed handshakes an IP address may cause before it is refused webrtc-direct.
pub const FAILURES_PER_IP: u32 = 8;
/// Failed handshakes in all before the node takes no more (each keeps ~94 KiB and a descriptor).
pub const FAILURES: u64 = 1024;
/// A handshake not done after this long is counted as failed (libp2p-webrtc gives the data
/// channel 10 s; the noise handshake after it has no deadline of its own).
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A transport that listens as `T` does and dials nothing.
pub struct ListenOnly<T>(pub T);

impl<T: Transport + Unpin> Transport for ListenOnly<T> {
    type Output = T::Output;
    type Error = T::Error;
    type ListenerUpgrade = T::ListenerUpgrade;
    type Dial = T::Dial;

    fn listen_on(
        &mut self,
        id: ListenerId,
        addr: Multiaddr,
    ) -> Result<(), TransportError<Self::Error>> {
        self.0.listen_on(id, addr)
    }

    fn remove_listener(&mut self, id: ListenerId) -> bool {
        self.0.remove_listener(id)
    }

    fn dial(
        &mut self,
        addr: Multiaddr,
        _: DialOpts,
    ) -> Result<Self::Dial, TransportError<Self::Error>> {
        Err(TransportError::MultiaddrNotSupported(addr))
    }

    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<TransportEvent<Self::ListenerUpgrade, Self::Error>> {
        Pin::new(&mut self.0).poll(cx)
    }
}

/// Why a webrtc-direct handshake was not admitted.
#[derive(Debug, thiserror::Error)]
#[error("webrtc-direct handshake refused: {0}")]
pub struct Refused(&'static str);

/// Admits inbound webrtc-direct handshakes within the bounds above.
pub struct Guard {
    /// Handshakes under way: from where, since when.
    under_way: HashMap<ConnectionId, (IpAddr, Instant)>,
    /// Failed handshakes per address (at most [`FAILURES`] addresses: each has failed once).
    failures: HashMap<IpAddr, u32>,
    /// Failed handshakes in all.
    failed: u64,
    stats: Arc<Stats>,
}

impl Guard {
    pub(super) fn new(stats: Arc<Stats>) -> Self {
        Self { under_way: HashMap::new(), failures: HashMap::new(), failed: 0, stats }
    }

    fn fail(&mut self, ip: IpAddr) {
        *self.failures.entry(ip).or_default() += 1;
        self.failed += 1;
        self.stats.webrtc_failed.fetch_add(1, Ordering::Relaxed);
        if self.failed == FAILURES {
            error!(
                "webrtc-direct: {FAILURES} handshakes failed since start; libp2p-webrtc keeps \
                 what each one held, so this node takes no more until it restarts (browsers \
                 still reach it over websocket)"
            );
        }
    }

    /// Counts the handshakes older than [`PATIENCE`] as failed, and frees their places.
    fn expire(&mut self, now: Instant) {
        let old: Vec<_> = self
            .under_way
            .iter()
            .filter(|(_, (_, since))| now.duration_since(*since) > PATIENCE)
            .map(|(id, (ip, _))| (*id, *ip))
            .collect();
        for (id, ip) in old {
            self.under_way.remove(&id);
            self.fail(ip);
        }
    }

    fn admit(&mut self, id: ConnectionId, ip: IpAddr, now: Instant) -> Result<(), Refused> {
        self.expire(now);
        let from_ip = self.under_way.values().filter(|(from, _)| *from == ip).count();
        let refused = if self.failed >= FAILURES {
            Some("too many failed since this node started")
        } else if self.failures.get(&ip).is_some_and(|n| *n >= FAILURES_PER_IP) {
            Some("too many failed from this address")
        } else if self.under_way.len() >= AT_ONCE {
            Some("too many under way")
        } else if from_ip >= AT_ONCE_PER_IP {
            Some("too many under way from this address")
        } else {
            None
        };
        if let Some(why) = refused {
            self.stats.webrtc_refused.fetch_add(1, Ordering::Relaxed);
            return Err(Refused(why));
        }
        self.under_way.insert(id, (ip, now));
        self.stats.webrtc_admitted.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// The IP address of a webrtc-direct connection's remote end, if `local` is a webrtc-direct
/// listener's address.
fn webrtc_direct(local: &Multiaddr, remote: &Multiaddr) -> Option<IpAddr> {
    if !local.iter().any(|p| matches!(p, Protocol::WebRTCDirect)) {
        return None;
    }
    remote.iter().find_map(|p| match p {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
        _ => None,
    })
}

impl NetworkBehaviour for Guard {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_pending_inbound_connection(
        &mut self,
        id: ConnectionId,
        local: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        match webrtc_direct(local, remote) {
            Some(ip) => self.admit(id, ip, Instant::now()).map_err(ConnectionDenied::new),
            None => Ok(()),
        }
    }

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, event: FromSwarm<'_>) {
        match event {
            // Established once every behaviour accepted it: done.
            FromSwarm::ConnectionEstablished(e) => {
                self.under_way.remove(&e.connection_id);
            }
            // Failed, timed out, or refused after its upgrade: what it held is kept.
            FromSwarm::ListenFailure(e) => {
                if let Some((ip, _)) = self.under_way.remove(&e.connection_id) {
                    self.fail(ip);
                }
            }
            _ => {}
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _: PeerId,
        _: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    #[test]
    fn admits_within_the_bounds_and_counts_what_failed() {
        let mut guard = Guard::new(Arc::default());
        let now = Instant::now();
        let mut ids = Vec::new();
        for _ in 0..AT_ONCE_PER_IP {
            let id = ConnectionId::new_unchecked(ids.len());
            guard.admit(id, ip(1), now).unwrap();
            ids.push(id);
        }
        // A fifth at once from one address is refused; another address is admitted.
        let next = ConnectionId::new_unchecked(100);
        assert!(guard.admit(next, ip(1), now).is_err());
        guard.admit(next, ip(2), now).unwrap();
        // Handshakes that never finish count as failed once they are too old, and free their
        // places: the address may try again until it has failed FAILURES_PER_IP times.
        let later = now + PATIENCE + Duration::from_secs(1);
        guard.admit(ConnectionId::new_unchecked(200), ip(1), later).unwrap();
        assert_eq!(guard.failures[&ip(1)], AT_ONCE_PER_IP as u32);
        assert_eq!(guard.failures[&ip(2)], 1);
        let mut i = 300;
        while guard.failures[&ip(1)] < FAILURES_PER_IP {
            let id = ConnectionId::new_unchecked(i);
            i += 1;
            if guard.admit(id, ip(1), later).is_ok() {
                guard.under_way.remove(&id);
                guard.fail(ip(1));
            }
        }
        let err = guard.admit(ConnectionId::new_unchecked(i), ip(1), later).unwrap_err();
        assert!(err.to_string().contains("too many failed from this address"), "{err}");
        assert_eq!(guard.stats.webrtc_failed.load(Ordering::Relaxed), guard.failed);
    }

    #[test]
    fn takes_no_more_once_the_failures_in_all_are_spent() {
        let mut guard = Guard::new(Arc::default());
        let now = Instant::now();
        // Every address fails once: no per-address bound is reached, the total is.
        for n in 0..FAILURES {
            let octets = (n as u32).to_be_bytes();
            let from = IpAddr::from([10, octets[1], octets[2], octets[3]]);
            let id = ConnectionId::new_unchecked(n as usize);
            guard.admit(id, from, now).unwrap();
            guard.under_way.remove(&id);
            guard.fail(from);
        }
        assert_eq!(guard.failures.len() as u64, FAILURES);
        let err = guard.admit(ConnectionId::new_unchecked(usize::MAX), ip(9), now).unwrap_err();
        assert!(err.to_string().contains("too many failed since this node started"), "{err}");
    }

    #[test]
    fn only_webrtc_direct_listeners_are_guarded() {
        let remote: Multiaddr = "/ip4/10.1.2.3/udp/5000/webrtc-direct".parse().unwrap();
        let webrtc: Multiaddr = "/ip4/0.0.0.0/udp/26901/webrtc-direct".parse().unwrap();
        let quic: Multiaddr = "/ip4/0.0.0.0/udp/26900/quic-v1".parse().unwrap();
        assert_eq!(webrtc_direct(&webrtc, &remote), Some(IpAddr::from([10, 1, 2, 3])));
        assert_eq!(webrtc_direct(&quic, &remote), None);
    }

    #[test]
    fn a_native_node_does_not_dial_webrtc_direct() {
        let key = libp2p::identity::Keypair::generate_ed25519();
        let certificate = libp2p_webrtc::tokio::Certificate::generate(&mut rand::rng()).unwrap();
        let mut transport = ListenOnly(libp2p_webrtc::tokio::Transport::new(key, certificate));
        let address: Multiaddr = "/ip4/127.0.0.1/udp/26901/webrtc-direct/certhash/\
            uEiDDq4_xNyDorZBH3TlGazyJdOWSwvo4PUo5YHFMrvDE8g"
            .parse()
            .unwrap();
        let dial = transport
            .dial(address.clone(), DialOpts { role: Endpoint::Dialer, port_use: PortUse::Reuse });
        assert!(matches!(dial, Err(TransportError::MultiaddrNotSupported(a)) if a == address));
    }
}
