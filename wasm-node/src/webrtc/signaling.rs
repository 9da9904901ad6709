//! Opening an `RTCPeerConnection` to another browser over `/webrtc-signaling/0.0.1` on a
//! relayed connection (kinema-net's `signal`): the dialer offers, the listener answers, both
//! trickle ICE candidates until the connection is up. The relayed connection is authenticated
//! (noise), so the offer's and the answer's DTLS fingerprints are the peers' own and no further
//! handshake is needed.

use std::pin::Pin;
use std::time::Duration;

use futures::channel::mpsc;
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, FutureExt, Stream, StreamExt};
use kinema_net::signal::{Kind, Message, SignalError};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    RtcConfiguration, RtcIceCandidateInit, RtcPeerConnection, RtcPeerConnectionIceEvent,
    RtcPeerConnectionState, RtcSdpType, RtcSessionDescriptionInit,
};

use super::connection::INIT_LABEL;

/// How long the two sides have to connect.
pub(crate) const CONNECT_WITHIN: Duration = Duration::from_secs(30);
/// Candidates the other side may send at most.
const MAX_CANDIDATES: usize = 64;

/// Why a WebRTC connection did not open.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SignalingError {
    /// The signaling stream failed or carried something else.
    #[error("signaling: {0}")]
    Signal(#[from] SignalError),
    /// Writing to the signaling stream failed.
    #[error("signaling: {0}")]
    Io(#[from] std::io::Error),
    /// The browser refused a step.
    #[error("the browser's WebRTC: {0}")]
    Browser(String),
    /// The other side broke the protocol.
    #[error("the other side {0}")]
    Protocol(String),
    /// No connection within [`CONNECT_WITHIN`], or it failed.
    #[error("no WebRTC connection: {0}")]
    Failed(String),
}

fn browser(e: JsValue) -> SignalingError {
    SignalingError::Browser(format!("{e:?}"))
}

fn new_peer() -> Result<RtcPeerConnection, SignalingError> {
    // No STUN or TURN server: peers reach each other on the addresses they have.
    RtcPeerConnection::new_with_configuration(&RtcConfiguration::new()).map_err(browser)
}

fn sdp_of(description: &JsValue) -> Result<String, SignalingError> {
    js_sys::Reflect::get(description, &"sdp".into())
        .ok()
        .and_then(|s| s.as_string())
        .ok_or_else(|| SignalingError::Browser("a session description without SDP".into()))
}

fn description(kind: RtcSdpType, sdp: &str) -> RtcSessionDescriptionInit {
    let init = RtcSessionDescriptionInit::new(kind);
    init.set_sdp(sdp);
    init
}

/// The browser's local ICE candidates as they are found, as JSON (`RTCIceCandidate.toJSON()`).
struct Candidates {
    peer: RtcPeerConnection,
    /// Whether the handshake got the connection up (else the connection is closed with it).
    connected: bool,
    found: mpsc::Receiver<String>,
    _on_candidate: Closure<dyn FnMut(RtcPeerConnectionIceEvent)>,
    states: mpsc::Receiver<()>,
    _on_state: Closure<dyn FnMut(JsValue)>,
}

impl Candidates {
    fn watch(peer: &RtcPeerConnection) -> Self {
        let (mut found_tx, found) = mpsc::channel(MAX_CANDIDATES);
        let on_candidate = Closure::<dyn FnMut(RtcPeerConnectionIceEvent)>::new(
            move |event: RtcPeerConnectionIceEvent| {
                let json = match event.candidate() {
                    Some(candidate) => js_sys::JSON::stringify(&candidate.to_json())
                        .ok()
                        .and_then(|s| s.as_string())
                        .unwrap_or_default(),
                    // The end of the candidates, as js-libp2p writes it (JSON null).
                    None => "null".to_owned(),
                };
                let _ = found_tx.try_send(json);
            },
        );
        peer.set_onicecandidate(Some(on_candidate.as_ref().unchecked_ref()));
        let (mut states_tx, states) = mpsc::channel(16);
        let on_state = Closure::<dyn FnMut(JsValue)>::new(move |_| {
            let _ = states_tx.try_send(());
        });
        peer.set_onconnectionstatechange(Some(on_state.as_ref().unchecked_ref()));
        Self {
            peer: peer.clone(),
            connected: false,
            found,
            _on_candidate: on_candidate,
            states,
            _on_state: on_state,
        }
    }
}

impl Drop for Candidates {
    /// The browser may still fire these after a handshake gave up: its handlers go before the
    /// closures they call, and a connection that never came up is closed.
    fn drop(&mut self) {
        self.peer.set_onicecandidate(None);
        self.peer.set_onconnectionstatechange(None);
        if !self.connected {
            self.peer.close();
        }
    }
}

/// Sends local candidates and takes remote ones until `peer` is connected (or fails, or
/// [`CONNECT_WITHIN`] passes).
async fn trickle<R, W>(
    peer: &RtcPeerConnection,
    mut candidates: Candidates,
    reader: R,
    writer: &mut W,
) -> Result<(), SignalingError>
where
    R: AsyncRead + Unpin + 'static,
    W: AsyncWrite + Unpin,
{
    let mut deadline = futures_timer::Delay::new(CONNECT_WITHIN).fuse();
    type Incoming = Pin<Box<dyn Stream<Item = Result<Message, SignalError>>>>;
    let messages: Incoming = Box::pin(futures::stream::unfold(reader, |mut reader| async move {
        let message = Message::read(&mut reader).await;
        Some((message, reader))
    }));
    let mut incoming = messages.fuse();
    let mut reading = true;
    let mut taken = 0;
    loop {
        match peer.connection_state() {
            RtcPeerConnectionState::Connected => {
                candidates.connected = true;
                break;
            }
            RtcPeerConnectionState::Failed | RtcPeerConnectionState::Closed => {
                let state = peer.connection_state();
                return Err(SignalingError::Failed(format!("the connection is {state:?}")));
            }
            _ => {}
        }
        futures::select! {
            _ = candidates.states.next() => {}
            found = candidates.found.next() => {
                if let Some(json) = found {
                    Message { kind: Kind::Candidate, data: json }.write(writer).await?;
                }
            }
            message = incoming.next() => match message {
                Some(Ok(Message { kind: Kind::Candidate, data })) if reading => {
                    taken += 1;
                    if taken > MAX_CANDIDATES {
                        return Err(SignalingError::Protocol(format!(
                            "sent more than {MAX_CANDIDATES} candidates"
                        )));
                    }
                    // An empty candidate (or JSON null) ends the other side's candidates.
                    if data.is_empty() || data == "null" {
                        continue;
                    }
                    let init: RtcIceCandidateInit = js_sys::JSON::parse(&data)
                        .map_err(|_| SignalingError::Protocol("sent a candidate that is not JSON".into()))?
                        .unchecked_into();
                    JsFuture::from(peer.add_ice_candidate_with_opt_rtc_ice_candidate_init(Some(&init)))
                        .await
                        .map_err(browser)?;
                }
                Some(Ok(other)) if reading => {
                    return Err(SignalingError::Protocol(format!("sent {:?} among candidates", other.kind)));
                }
                // The other side may close the stream once it is connected: wait for ours.
                _ => reading = false,
            },
            _ = deadline => {
                return Err(SignalingError::Failed(format!("not connected within {CONNECT_WITHIN:?}")));
            }
        }
        if !reading {
            // Nothing more to read: only the state and the deadline matter now.
            let nothing: Incoming = Box::pin(futures::stream::pending());
            incoming = nothing.fuse();
        }
    }
    Ok(())
}

/// The dialer's side on `stream`: offers, takes the answer, trickles until connected.
pub(crate) async fn dial<S>(stream: S) -> Result<RtcPeerConnection, SignalingError>
where
    S: AsyncRead + AsyncWrite + Unpin + 'static,
{
    let peer = new_peer()?;
    let init = peer.create_data_channel(INIT_LABEL);
    let candidates = Candidates::watch(&peer);
    let offer = JsFuture::from(peer.create_offer()).await.map_err(browser)?;
    let sdp = sdp_of(&offer)?;
    JsFuture::from(peer.set_local_description(&description(RtcSdpType::Offer, &sdp)))
        .await
        .map_err(browser)?;
    let (mut reader, mut writer) = stream.split();
    Message { kind: Kind::Offer, data: sdp }.write(&mut writer).await?;
    let answer = Message::read(&mut reader).await?;
    if answer.kind != Kind::Answer {
        return Err(SignalingError::Protocol(format!("answered an offer with {:?}", answer.kind)));
    }
    JsFuture::from(peer.set_remote_description(&description(RtcSdpType::Answer, &answer.data)))
        .await
        .map_err(browser)?;
    trickle(&peer, candidates, reader, &mut writer).await?;
    init.close();
    let _ = futures::AsyncWriteExt::close(&mut writer).await;
    Ok(peer)
}

/// The listener's side on `stream`: takes the offer, answers, trickles until connected.
pub(crate) async fn listen<S>(stream: S) -> Result<RtcPeerConnection, SignalingError>
where
    S: AsyncRead + AsyncWrite + Unpin + 'static,
{
    let (mut reader, mut writer) = stream.split();
    let offer = Message::read(&mut reader).await?;
    if offer.kind != Kind::Offer {
        return Err(SignalingError::Protocol(format!("began with {:?}, not an offer", offer.kind)));
    }
    let peer = new_peer()?;
    let candidates = Candidates::watch(&peer);
    JsFuture::from(peer.set_remote_description(&description(RtcSdpType::Offer, &offer.data)))
        .await
        .map_err(browser)?;
    let answer = JsFuture::from(peer.create_answer()).await.map_err(browser)?;
    let sdp = sdp_of(&answer)?;
    JsFuture::from(peer.set_local_description(&description(RtcSdpType::Answer, &sdp)))
        .await
        .map_err(browser)?;
    Message { kind: Kind::Answer, data: sdp }.write(&mut writer).await?;
    trickle(&peer, candidates, reader, &mut writer).await?;
    let _ = futures::AsyncWriteExt::close(&mut writer).await;
    Ok(peer)
}
