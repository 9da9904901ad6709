//! Reading multiaddrs.

use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};

/// The peer a multiaddr names: its last `/p2p` component. A circuit address
/// (`<relay>/p2p/<relay id>/p2p-circuit/p2p/<peer>`) names its relay first and the peer it
/// reaches last; an address without `/p2p` names no one.
pub fn peer_of(address: &Multiaddr) -> Option<PeerId> {
    address
        .iter()
        .filter_map(|p| match p {
            Protocol::P2p(id) => Some(id),
            _ => None,
        })
        .last()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peer_is_the_last_p2p_component() {
        let relay = PeerId::random();
        let peer = PeerId::random();
        let direct: Multiaddr = format!("/ip4/127.0.0.1/tcp/1/p2p/{peer}").parse().unwrap();
        let circuit: Multiaddr =
            format!("/ip4/127.0.0.1/tcp/1/p2p/{relay}/p2p-circuit/p2p/{peer}").parse().unwrap();
        let none: Multiaddr = "/ip4/127.0.0.1/tcp/1".parse().unwrap();
        assert_eq!(peer_of(&direct), Some(peer));
        assert_eq!(peer_of(&circuit), Some(peer));
        assert_eq!(peer_of(&none), None);
    }
}
