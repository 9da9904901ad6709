//! One `RTCDataChannel` as a byte stream (`AsyncRead` + `AsyncWrite`), under libp2p's
//! WebRTC framing (`libp2p_webrtc_utils::Stream`): messages in are queued (a bounded amount),
//! writes go out as messages of at most [`MAX_MESSAGE`] bytes and wait while the channel's
//! send buffer is full.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use futures::{AsyncRead, AsyncWrite};
use wasm_bindgen::prelude::*;
use web_sys::{MessageEvent, RtcDataChannel, RtcDataChannelState, RtcDataChannelType};

/// The largest message sent (the spec's, and what browsers take whole).
pub(crate) const MAX_MESSAGE: usize = 16 * 1024;
/// Bytes received and not read yet at most: past it the peer is flooding, and the stream fails.
const MAX_UNREAD: usize = 4 << 20;
/// Bytes the browser may hold unsent before a write waits.
const MAX_UNSENT: u32 = 1 << 20;

#[derive(Default)]
struct State {
    unread: VecDeque<u8>,
    overflowed: bool,
    closed: bool,
    reader: Option<Waker>,
    writer: Option<Waker>,
}

impl State {
    fn wake_all(&mut self) {
        for waker in [self.reader.take(), self.writer.take()].into_iter().flatten() {
            waker.wake();
        }
    }
}

struct Inner {
    channel: RtcDataChannel,
    state: Rc<RefCell<State>>,
    _handlers: [Closure<dyn FnMut(JsValue)>; 4],
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The browser calls no handler after this, so none outlives its closure.
        let c = &self.channel;
        c.set_onopen(None);
        c.set_onmessage(None);
        c.set_onclose(None);
        c.set_onbufferedamountlow(None);
        c.close();
    }
}

/// A data channel as a byte stream; clones share it.
#[derive(Clone)]
pub(crate) struct Channel(Rc<Inner>);

impl Channel {
    pub(crate) fn new(channel: RtcDataChannel) -> Self {
        channel.set_binary_type(RtcDataChannelType::Arraybuffer);
        channel.set_buffered_amount_low_threshold(MAX_UNSENT / 2);
        let state = Rc::new(RefCell::new(State::default()));
        let on = |f: Box<dyn FnMut(JsValue)>| Closure::wrap(f);
        let s = state.clone();
        let open = on(Box::new(move |_| s.borrow_mut().wake_all()));
        let s = state.clone();
        let message = on(Box::new(move |event: JsValue| {
            let Ok(event) = event.dyn_into::<MessageEvent>() else { return };
            let mut state = s.borrow_mut();
            let bytes = js_sys::Uint8Array::new(&event.data());
            if state.unread.len() + bytes.length() as usize > MAX_UNREAD {
                state.overflowed = true;
            } else {
                state.unread.extend(bytes.to_vec());
            }
            if let Some(waker) = state.reader.take() {
                waker.wake();
            }
        }));
        let s = state.clone();
        let close = on(Box::new(move |_| {
            let mut state = s.borrow_mut();
            state.closed = true;
            state.wake_all();
        }));
        let s = state.clone();
        let low = on(Box::new(move |_| {
            if let Some(waker) = s.borrow_mut().writer.take() {
                waker.wake();
            }
        }));
        channel.set_onopen(Some(open.as_ref().unchecked_ref()));
        channel.set_onmessage(Some(message.as_ref().unchecked_ref()));
        channel.set_onclose(Some(close.as_ref().unchecked_ref()));
        channel.set_onbufferedamountlow(Some(low.as_ref().unchecked_ref()));
        Channel(Rc::new(Inner { channel, state, _handlers: [open, message, close, low] }))
    }
}

impl AsyncRead for Channel {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let mut state = self.0.state.borrow_mut();
        if state.overflowed {
            return Poll::Ready(Err(io::Error::other(format!(
                "the peer sent more than {MAX_UNREAD} bytes nobody read"
            ))));
        }
        if !state.unread.is_empty() {
            let n = buf.len().min(state.unread.len());
            for (slot, byte) in buf.iter_mut().zip(state.unread.drain(..n)) {
                *slot = byte;
            }
            return Poll::Ready(Ok(n));
        }
        if state.closed {
            return Poll::Ready(Ok(0));
        }
        state.reader = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl AsyncWrite for Channel {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let channel = &self.0.channel;
        let mut state = self.0.state.borrow_mut();
        match channel.ready_state() {
            RtcDataChannelState::Connecting => {
                state.writer = Some(cx.waker().clone());
                return Poll::Pending;
            }
            RtcDataChannelState::Open => {}
            _ => return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
        }
        if channel.buffered_amount() > MAX_UNSENT {
            state.writer = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = buf.len().min(MAX_MESSAGE);
        channel
            .send_with_u8_array(&buf[..n])
            .map_err(|e| io::Error::other(format!("sending on a data channel: {e:?}")))?;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.channel.close();
        Poll::Ready(Ok(()))
    }
}
