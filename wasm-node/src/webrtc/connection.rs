//! A WebRTC connection between two browsers as a libp2p `StreamMuxer`: every libp2p stream is
//! a data channel of its own, framed as libp2p's WebRTC spec says (`libp2p_webrtc_utils`).

use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use futures::channel::mpsc;
use futures::stream::FuturesUnordered;
use futures::{AsyncRead, AsyncWrite, StreamExt};
use libp2p::core::muxing::{StreamMuxer, StreamMuxerEvent};
use libp2p_webrtc_utils::DropListener;
use send_wrapper::SendWrapper;
use wasm_bindgen::prelude::*;
use web_sys::{RtcDataChannel, RtcDataChannelEvent, RtcPeerConnection};

use super::channel::Channel;

/// Streams the peer opened and this side has not taken yet, at most; past that the peer's
/// new channels are closed.
const INBOUND: usize = 32;
/// The label of the channel the dialer opens only so that its offer carries ICE (never a
/// libp2p stream).
pub(crate) const INIT_LABEL: &str = "init";

/// A libp2p stream over one data channel.
pub(crate) struct Stream(SendWrapper<libp2p_webrtc_utils::Stream<Channel>>);

impl AsyncRead for Stream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.0).poll_close(cx)
    }
}

struct Inner {
    peer: RtcPeerConnection,
    inbound: mpsc::Receiver<RtcDataChannel>,
    /// What each dropped stream still owes the peer (a reset), driven by `poll`.
    drops: FuturesUnordered<DropListener<Channel>>,
    idle: Option<Waker>,
    _on_channel: Closure<dyn FnMut(RtcDataChannelEvent)>,
    closed: bool,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.peer.set_ondatachannel(None);
        self.peer.close();
    }
}

/// A WebRTC connection to another browser.
pub(crate) struct Connection(SendWrapper<Inner>);

impl Connection {
    /// Takes over `peer`, connected: the channels the other side opens become inbound
    /// streams.
    pub(crate) fn new(peer: RtcPeerConnection) -> Self {
        let (mut to_take, inbound) = mpsc::channel(INBOUND);
        let on_channel =
            Closure::<dyn FnMut(RtcDataChannelEvent)>::new(move |event: RtcDataChannelEvent| {
                let channel = event.channel();
                if channel.label() == INIT_LABEL {
                    return;
                }
                if let Err(refused) = to_take.try_send(channel) {
                    refused.into_inner().close();
                }
            });
        peer.set_ondatachannel(Some(on_channel.as_ref().unchecked_ref()));
        Connection(SendWrapper::new(Inner {
            peer,
            inbound,
            drops: FuturesUnordered::new(),
            idle: None,
            _on_channel: on_channel,
            closed: false,
        }))
    }

    fn stream(inner: &mut Inner, channel: RtcDataChannel) -> Stream {
        let (stream, dropped) = libp2p_webrtc_utils::Stream::new(Channel::new(channel));
        inner.drops.push(dropped);
        if let Some(waker) = inner.idle.take() {
            waker.wake();
        }
        Stream(SendWrapper::new(stream))
    }
}

/// Why a connection failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectionError {
    /// It was closed.
    #[error("the WebRTC connection is closed")]
    Closed,
}

impl StreamMuxer for Connection {
    type Substream = Stream;
    type Error = ConnectionError;

    fn poll_inbound(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Self::Substream, Self::Error>> {
        let inner = &mut *self.0;
        match inner.inbound.poll_next_unpin(cx) {
            Poll::Ready(Some(channel)) => Poll::Ready(Ok(Self::stream(inner, channel))),
            Poll::Ready(None) => Poll::Ready(Err(ConnectionError::Closed)),
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_outbound(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Result<Self::Substream, Self::Error>> {
        let inner = &mut *self.0;
        if inner.closed {
            return Poll::Ready(Err(ConnectionError::Closed));
        }
        let channel = inner.peer.create_data_channel("");
        Poll::Ready(Ok(Self::stream(inner, channel)))
    }

    fn poll_close(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let inner = &mut *self.0;
        inner.closed = true;
        inner.peer.close();
        Poll::Ready(Ok(()))
    }

    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<StreamMuxerEvent, Self::Error>> {
        let inner = &mut *self.0;
        loop {
            match inner.drops.poll_next_unpin(cx) {
                // A reset that could not be sent: the channel is gone anyway.
                Poll::Ready(Some(_)) => {}
                Poll::Ready(None) => {
                    inner.idle = Some(cx.waker().clone());
                    return Poll::Pending;
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
