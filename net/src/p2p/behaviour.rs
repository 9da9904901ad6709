//! The swarm's behaviours and transports: what a native node speaks.

use std::time::Duration;

use futures::FutureExt;
use libp2p::core::Transport as _;
use libp2p::core::muxing::StreamMuxerBox;
use libp2p::swarm::NetworkBehaviour;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::{
    StreamProtocol, connection_limits, gossipsub, identify, kad, noise, ping, relay,
    request_response, tcp, yamux,
};

use super::{
    AGENT, MAX_CONNECTIONS, MAX_PER_PEER, P2pConfig, P2pError, Stats, webrtc, webrtc_certificate,
};
use crate::wire::{Bytes, MAX_MESSAGE};
use std::sync::Arc;

#[derive(NetworkBehaviour)]
pub(super) struct Behaviour {
    pub(super) webrtc: webrtc::Guard,
    pub(super) limits: connection_limits::Behaviour,
    pub(super) relay: Toggle<relay::Behaviour>,
    pub(super) relay_client: relay::client::Behaviour,
    pub(super) identify: identify::Behaviour,
    pub(super) ping: ping::Behaviour,
    pub(super) gossipsub: gossipsub::Behaviour,
    pub(super) direct: request_response::Behaviour<Bytes>,
    pub(super) kad: kad::Behaviour<kad::store::MemoryStore>,
    pub(super) segments: request_response::Behaviour<Bytes>,
}

/// Builds the swarm `config` asks for: TCP, QUIC, webrtc-direct (to listen on), DNS, websocket
/// and the relay client as transports; the behaviours above, counting in `stats`.
pub(super) fn build(
    config: &P2pConfig,
    stats: Arc<Stats>,
) -> Result<libp2p::Swarm<Behaviour>, P2pError> {
    let build = |e: &dyn std::fmt::Display| P2pError::Build(e.to_string());
    // Both rustls providers are linked (QUIC's and the websocket's); webrtc's DTLS asks for the
    // process default, which must then be chosen. Already chosen (another node): fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let pem = match &config.webrtc_certificate {
        Some(pem) => pem.clone(),
        None => webrtc_certificate()?,
    };
    let certificate = libp2p_webrtc::tokio::Certificate::from_pem(&pem)
        .map_err(|e| P2pError::Build(format!("the webrtc certificate: {e}")))?;
    let swarm = libp2p::SwarmBuilder::with_existing_identity(config.keypair.clone())
        .with_tokio()
        .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)
        .map_err(|e| build(&e))?
        .with_quic()
        .with_other_transport(|key| {
            webrtc::ListenOnly(libp2p_webrtc::tokio::Transport::new(key.clone(), certificate))
                .map(|(peer, connection), _| (peer, StreamMuxerBox::new(connection)))
        })
        .map_err(|e| build(&e))?
        .with_dns()
        .map_err(|e| build(&e))?
        .with_websocket(noise::Config::new, yamux::Config::default)
        .now_or_never()
        .ok_or_else(|| P2pError::Build("the websocket transport did not build at once".into()))?
        .map_err(|e| build(&e))?
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .map_err(|e| build(&e))?
        .with_behaviour(|key, relay_client| {
            let gossip_config = gossipsub::ConfigBuilder::default()
                .max_transmit_size(MAX_MESSAGE)
                .heartbeat_interval(Duration::from_millis(500))
                .validation_mode(gossipsub::ValidationMode::Strict)
                // Each message is checked against its topic before it is forwarded.
                .validate_messages()
                .build()
                .map_err(|e| e.to_string())?;
            let gossipsub = gossipsub::Behaviour::new(
                gossipsub::MessageAuthenticity::Signed(key.clone()),
                gossip_config,
            )?;
            let limits = connection_limits::ConnectionLimits::default()
                .with_max_established(Some(MAX_CONNECTIONS))
                .with_max_established_per_peer(Some(MAX_PER_PEER));
            let protocol =
                |name| [(StreamProtocol::new(name), request_response::ProtocolSupport::Full)];
            let timeout =
                request_response::Config::default().with_request_timeout(Duration::from_secs(30));
            let direct =
                request_response::Behaviour::new(protocol("/kinema/direct/1"), timeout.clone());
            let segments = request_response::Behaviour::new(protocol("/kinema/segment/1"), timeout);
            let id = key.public().to_peer_id();
            let mut kad = kad::Behaviour::with_config(
                id,
                kad::store::MemoryStore::new(id),
                kad::Config::new(StreamProtocol::new("/kinema/kad/1")),
            );
            // Answer queries without waiting to learn an external address (loopback devnets).
            kad.set_mode(Some(kad::Mode::Server));
            let relay = config.relay.then(|| relay::Behaviour::new(id, relay_config()));
            Ok(Behaviour {
                webrtc: webrtc::Guard::new(stats),
                limits: connection_limits::Behaviour::new(limits),
                relay: relay.into(),
                relay_client,
                identify: identify::Behaviour::new(
                    identify::Config::new("/kinema/1.0.0".into(), key.public())
                        .with_agent_version(AGENT.into()),
                ),
                // A ping every 5 s, answered within 10 s (libp2p: 15 s and 20 s): a connection
                // whose peer vanished is closed after three in a row go unanswered.
                ping: ping::Behaviour::new(
                    ping::Config::new()
                        .with_interval(Duration::from_secs(5))
                        .with_timeout(Duration::from_secs(10)),
                ),
                gossipsub,
                direct,
                kad,
                segments,
            })
        })
        .map_err(|e| build(&e))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();
    Ok(swarm)
}

/// A relay's limits: more circuits than libp2p's defaults, and long enough and large enough
/// that a provider behind NAT can serve whole segments through them (libp2p's defaults, 2
/// minutes and 128 KiB, are meant for hole punching only). New circuits and reservations are
/// limited per peer as libp2p does, and per IP address ten times more loosely: every
/// browser-to-browser dial signals through a circuit, and the viewers of one video behind one
/// address (a household's NAT, a campus, 8 tabs on one machine) dial each other in a burst —
/// libp2p's 60 a minute per address left the last of 8 tabs with no browser to fetch from.
fn relay_config() -> relay::Config {
    let per = |n: u32| std::num::NonZeroU32::new(n).unwrap_or(std::num::NonZeroU32::MIN);
    relay::Config {
        max_circuits: 256,
        max_circuits_per_peer: 16,
        max_circuit_duration: Duration::from_secs(3600),
        max_circuit_bytes: 1 << 30,
        reservation_rate_limiters: Vec::new(),
        circuit_src_rate_limiters: Vec::new(),
        ..relay::Config::default()
    }
    .reservation_rate_per_peer(per(30), Duration::from_secs(120))
    .reservation_rate_per_ip(per(600), Duration::from_secs(60))
    .circuit_src_per_peer(per(30), Duration::from_secs(120))
    .circuit_src_per_ip(per(600), Duration::from_secs(60))
}
