//! libp2p's `/webrtc` (browser to browser, the spec's private-to-private WebRTC) for the light
//! node: a tab listens on `<relay>/p2p-circuit/webrtc`; another dials
//! `<relay>/p2p-circuit/webrtc/p2p/<tab>` over a relayed connection it already has, the two run
//! `/webrtc-signaling/0.0.1` on it (`signaling`) and then talk directly, each libp2p stream a
//! data channel of its own (`connection`, `channel`). The relay only carries the signaling.

mod channel;
mod connection;
mod signaling;
mod transport;

pub(crate) use transport::{Transport, relayed_part};
