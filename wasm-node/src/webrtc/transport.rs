//! The `/webrtc` transport: dials and listens through libp2p-stream's `Control` (the signaling
//! stream on the relayed connection), then hands the swarm the direct connection.

use std::cell::Cell;
use std::collections::VecDeque;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use futures::channel::mpsc;
use futures::future::{BoxFuture, Ready};
use futures::{FutureExt, StreamExt};
use kinema_net::signal::PROTOCOL;
use libp2p::core::transport::{DialOpts, ListenerId, TransportError, TransportEvent};
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId, StreamProtocol};
use send_wrapper::SendWrapper;

use super::connection::Connection;
use super::signaling::{self, SignalingError};

/// WebRTC connections being opened from inbound signaling streams at once, at most; more
/// streams are dropped.
const OPENING: usize = 8;

/// Why a `/webrtc` connection failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WebrtcError {
    /// The signaling stream could not be opened on the relayed connection.
    #[error("opening the signaling stream: {0}")]
    Open(String),
    /// Signaling failed.
    #[error(transparent)]
    Signaling(#[from] SignalingError),
}

/// The relayed address a `/webrtc` address goes through (`…/p2p-circuit/webrtc/p2p/<peer>`
/// without `/webrtc`), and the peer, when `address` is one.
pub(crate) fn relayed_part(address: &Multiaddr) -> Option<(Multiaddr, PeerId)> {
    let parts: Vec<Protocol<'_>> = address.iter().collect();
    let [.., Protocol::P2pCircuit, Protocol::WebRTC, Protocol::P2p(peer)] = parts.as_slice() else {
        return None;
    };
    let relayed = address.iter().filter(|p| *p != Protocol::WebRTC).collect();
    Some((relayed, *peer))
}

type Output = (PeerId, Connection);

/// The browser-to-browser transport.
pub(crate) struct Transport {
    control: libp2p_stream::Control,
    listener: Option<(ListenerId, Multiaddr)>,
    events: VecDeque<TransportEvent<Ready<Result<Output, WebrtcError>>, WebrtcError>>,
    opened: Option<mpsc::Receiver<Output>>,
}

impl Transport {
    /// A transport whose signaling streams go through `control` (libp2p-stream's, of the
    /// same swarm).
    pub(crate) fn new(control: libp2p_stream::Control) -> Self {
        Self { control, listener: None, events: VecDeque::new(), opened: None }
    }

    /// Answers every inbound signaling stream: each connection opened goes to `opened`.
    fn answer(&mut self) -> Result<mpsc::Receiver<Output>, String> {
        let mut streams = self
            .control
            .accept(StreamProtocol::new(PROTOCOL))
            .map_err(|e| format!("answering {PROTOCOL}: {e}"))?;
        let (opened_tx, opened) = mpsc::channel(OPENING);
        let opening = Rc::new(Cell::new(0));
        wasm_bindgen_futures::spawn_local(async move {
            while let Some((peer, stream)) = streams.next().await {
                if opening.get() >= OPENING {
                    continue; // dropped: the peer's stream is reset
                }
                opening.set(opening.get() + 1);
                let (opening, mut opened_tx) = (opening.clone(), opened_tx.clone());
                wasm_bindgen_futures::spawn_local(async move {
                    if let Ok(connection) = signaling::listen(stream).await {
                        let _ = opened_tx.try_send((peer, Connection::new(connection)));
                    }
                    opening.set(opening.get() - 1);
                });
            }
        });
        Ok(opened)
    }
}

impl libp2p::core::Transport for Transport {
    type Output = Output;
    type Error = WebrtcError;
    type ListenerUpgrade = Ready<Result<Output, WebrtcError>>;
    type Dial = BoxFuture<'static, Result<Output, WebrtcError>>;

    fn listen_on(
        &mut self,
        id: ListenerId,
        address: Multiaddr,
    ) -> Result<(), TransportError<Self::Error>> {
        let parts: Vec<Protocol<'_>> = address.iter().collect();
        if !parts.contains(&Protocol::WebRTC) || !parts.contains(&Protocol::P2pCircuit) {
            return Err(TransportError::MultiaddrNotSupported(address));
        }
        // Any other `/p2p-circuit/…/webrtc` address is refused here, not left to the relay
        // client's transport (which would take it for a relayed one).
        if !matches!(parts.as_slice(), [.., Protocol::P2pCircuit, Protocol::WebRTC]) {
            let why = format!("listen on <relay>/p2p-circuit/webrtc, not {address}");
            return Err(TransportError::Other(WebrtcError::Open(why)));
        }
        if self.listener.is_some() {
            let why = "already listening on /webrtc".to_owned();
            return Err(TransportError::Other(WebrtcError::Open(why)));
        }
        let opened = self.answer().map_err(|why| TransportError::Other(WebrtcError::Open(why)))?;
        self.opened = Some(opened);
        self.listener = Some((id, address.clone()));
        self.events.push_back(TransportEvent::NewAddress { listener_id: id, listen_addr: address });
        Ok(())
    }

    fn remove_listener(&mut self, id: ListenerId) -> bool {
        if self.listener.as_ref().is_some_and(|(l, _)| *l == id) {
            self.listener = None;
            self.opened = None;
            self.events
                .push_back(TransportEvent::ListenerClosed { listener_id: id, reason: Ok(()) });
            return true;
        }
        false
    }

    fn dial(
        &mut self,
        address: Multiaddr,
        _: DialOpts,
    ) -> Result<Self::Dial, TransportError<Self::Error>> {
        let Some((_, peer)) = relayed_part(&address) else {
            let webrtc = address.iter().any(|p| p == Protocol::WebRTC);
            if webrtc && address.iter().any(|p| p == Protocol::P2pCircuit) {
                let why = format!("dial <relay>/p2p-circuit/webrtc/p2p/<peer>, not {address}");
                return Err(TransportError::Other(WebrtcError::Open(why)));
            }
            return Err(TransportError::MultiaddrNotSupported(address));
        };
        let mut control = self.control.clone();
        let dial = async move {
            let stream = control
                .open_stream(peer, StreamProtocol::new(PROTOCOL))
                .await
                .map_err(|e| WebrtcError::Open(e.to_string()))?;
            let connection = signaling::dial(stream).await?;
            Ok((peer, Connection::new(connection)))
        };
        Ok(SendWrapper::new(dial).boxed())
    }

    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<TransportEvent<Self::ListenerUpgrade, Self::Error>> {
        if let Some(event) = self.events.pop_front() {
            return Poll::Ready(event);
        }
        let Some((listener_id, local_addr)) = self.listener.clone() else {
            return Poll::Pending;
        };
        let Some(opened) = self.opened.as_mut() else { return Poll::Pending };
        match opened.poll_next_unpin(cx) {
            Poll::Ready(Some((peer, connection))) => Poll::Ready(TransportEvent::Incoming {
                listener_id,
                upgrade: futures::future::ready(Ok((peer, connection))),
                local_addr,
                send_back_addr: Multiaddr::empty().with(Protocol::P2p(peer)),
            }),
            _ => Poll::Pending,
        }
    }
}
