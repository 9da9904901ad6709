//! The messages of libp2p's `/webrtc-signaling/0.0.1` (browser-to-browser WebRTC): over a
//! relayed connection, the dialer sends its SDP offer, the listener its answer, and both trickle
//! their ICE candidates, each message a protobuf `{type, data}` after its length as an unsigned
//! varint. Also wasm32 (the light node speaks it); pure, so tested natively.
//!
//! ```protobuf
//! message Message {
//!     enum Type { SDP_OFFER = 0; SDP_ANSWER = 1; ICE_CANDIDATE = 2; }
//!     optional Type type = 1;
//!     optional string data = 2;
//! }
//! ```
//!
//! `type` is proto3 `optional`, so it is written even when it is 0 (an offer): a reader that
//! takes a missing type for an offer is lenient, one that does not must still see it.

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The protocol's name.
pub const PROTOCOL: &str = "/webrtc-signaling/0.0.1";
/// The longest message taken: an SDP with many candidates is a few KiB.
pub const MAX_MESSAGE: usize = 64 * 1024;

/// What a message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `RTCSessionDescription.sdp` of the dialer's offer.
    Offer,
    /// `RTCSessionDescription.sdp` of the listener's answer.
    Answer,
    /// `JSON.stringify(RTCIceCandidate.toJSON())`; an empty string ends the candidates.
    Candidate,
}

impl Kind {
    fn number(self) -> u64 {
        match self {
            Kind::Offer => 0,
            Kind::Answer => 1,
            Kind::Candidate => 2,
        }
    }
}

/// One signaling message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// What it carries.
    pub kind: Kind,
    /// The SDP or the candidate's JSON.
    pub data: String,
}

/// Why a message could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SignalError {
    /// The stream failed or ended.
    #[error("the signaling stream: {0}")]
    Io(#[from] std::io::Error),
    /// Longer than [`MAX_MESSAGE`].
    #[error("a signaling message of {0} bytes (at most {MAX_MESSAGE})")]
    TooLong(u64),
    /// Not the protobuf above.
    #[error("a signaling message that does not decode: {0}")]
    Malformed(&'static str),
}

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn take_varint(bytes: &mut &[u8]) -> Result<u64, SignalError> {
    let mut n = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = bytes.split_first().ok_or(SignalError::Malformed("cut short"))?;
        *bytes = rest;
        n |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(n);
        }
    }
    Err(SignalError::Malformed("a varint longer than 64 bits"))
}

impl Message {
    /// The protobuf encoding (without the length before it).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.data.len() + 8);
        out.push(0x08); // field 1, varint: written even for 0
        put_varint(&mut out, self.kind.number());
        out.push(0x12); // field 2, length-delimited
        put_varint(&mut out, self.data.len() as u64);
        out.extend_from_slice(self.data.as_bytes());
        out
    }

    /// Reads the protobuf encoding; unknown fields are skipped, a missing type or data is an
    /// error.
    pub fn decode(mut bytes: &[u8]) -> Result<Self, SignalError> {
        let (mut kind, mut data) = (None, None);
        while !bytes.is_empty() {
            let key = take_varint(&mut bytes)?;
            match (key >> 3, key & 7) {
                (1, 0) => {
                    kind = Some(match take_varint(&mut bytes)? {
                        0 => Kind::Offer,
                        1 => Kind::Answer,
                        2 => Kind::Candidate,
                        _ => return Err(SignalError::Malformed("an unknown type")),
                    });
                }
                (2, 2) => {
                    let len = take_varint(&mut bytes)?;
                    let len = usize::try_from(len)
                        .ok()
                        .filter(|&l| l <= bytes.len())
                        .ok_or(SignalError::Malformed("data past the end"))?;
                    let (text, rest) = bytes.split_at(len);
                    data = Some(
                        String::from_utf8(text.to_vec())
                            .map_err(|_| SignalError::Malformed("data that is not UTF-8"))?,
                    );
                    bytes = rest;
                }
                (_, 0) => {
                    take_varint(&mut bytes)?;
                }
                (_, 2) => {
                    let len = take_varint(&mut bytes)?;
                    let len = usize::try_from(len)
                        .ok()
                        .filter(|&l| l <= bytes.len())
                        .ok_or(SignalError::Malformed("a field past the end"))?;
                    bytes = &bytes[len..];
                }
                _ => return Err(SignalError::Malformed("a wire type it does not use")),
            }
        }
        match (kind, data) {
            (Some(kind), Some(data)) => Ok(Message { kind, data }),
            (None, _) => Err(SignalError::Malformed("no type")),
            (_, None) => Err(SignalError::Malformed("no data")),
        }
    }

    /// Writes the message with its length before it, and flushes.
    pub async fn write<W: AsyncWrite + Unpin>(&self, to: &mut W) -> std::io::Result<()> {
        let body = self.encode();
        let mut framed = Vec::with_capacity(body.len() + 4);
        put_varint(&mut framed, body.len() as u64);
        framed.extend_from_slice(&body);
        to.write_all(&framed).await?;
        to.flush().await
    }

    /// Reads one message (its length first, at most [`MAX_MESSAGE`]).
    pub async fn read<R: AsyncRead + Unpin>(from: &mut R) -> Result<Self, SignalError> {
        let mut len = 0u64;
        for shift in (0..64).step_by(7) {
            let mut byte = [0u8];
            from.read_exact(&mut byte).await?;
            len |= u64::from(byte[0] & 0x7f) << shift;
            if byte[0] & 0x80 == 0 {
                break;
            }
        }
        if len > MAX_MESSAGE as u64 {
            return Err(SignalError::TooLong(len));
        }
        let mut body = vec![0; len as usize];
        from.read_exact(&mut body).await?;
        Message::decode(&body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_offer_writes_its_type_and_every_message_reads_back() {
        let offer = Message { kind: Kind::Offer, data: "v=0\r\n".into() };
        // Field 1 = 0 is written: 08 00, then field 2: 12 05 "v=0\r\n".
        assert_eq!(offer.encode(), b"\x08\x00\x12\x05v=0\r\n");
        for kind in [Kind::Offer, Kind::Answer, Kind::Candidate] {
            let m = Message { kind, data: "x".repeat(300) };
            assert_eq!(Message::decode(&m.encode()).unwrap(), m);
        }
        let empty = Message { kind: Kind::Candidate, data: String::new() };
        assert_eq!(Message::decode(&empty.encode()).unwrap(), empty);
        // Unknown fields are skipped; the order of fields does not matter.
        let reordered = b"\x12\x01a\x18\x07\x22\x02zz\x08\x01";
        assert_eq!(
            Message::decode(reordered).unwrap(),
            Message { kind: Kind::Answer, data: "a".into() }
        );
    }

    #[test]
    fn hostile_messages_are_refused_with_a_reason() {
        let cases: [(&[u8], &str); 7] = [
            (b"\x12\x01a", "no type"),
            (b"\x08\x01", "no data"),
            (b"\x08\x09\x12\x00", "unknown type"),
            (b"\x08\x01\x12\x05ab", "past the end"),
            (b"\x08\x01\x12\x02\xff\xfe", "not UTF-8"),
            (b"\x08\x01\x12\x00\x0d", "wire type"),
            (b"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", "varint longer"),
        ];
        for (bytes, why) in cases {
            let error = Message::decode(bytes).unwrap_err().to_string();
            assert!(error.contains(why), "{bytes:?}: {error}");
        }
    }

    #[test]
    fn messages_cross_a_stream_and_an_oversized_one_is_refused_before_it_is_read() {
        futures::executor::block_on(async {
            let messages = [
                Message { kind: Kind::Offer, data: "offer".into() },
                Message { kind: Kind::Candidate, data: "{\"candidate\":\"c\"}".into() },
                Message { kind: Kind::Candidate, data: String::new() },
            ];
            let mut wire = Vec::new();
            for m in &messages {
                m.write(&mut wire).await.unwrap();
            }
            let mut reader = futures::io::Cursor::new(wire);
            for m in &messages {
                assert_eq!(&Message::read(&mut reader).await.unwrap(), m);
            }
            assert!(matches!(Message::read(&mut reader).await, Err(SignalError::Io(_))));

            // A length of 1 GiB is refused before anything is allocated.
            let mut huge = Vec::new();
            put_varint(&mut huge, 1 << 30);
            let error = Message::read(&mut futures::io::Cursor::new(huge)).await.unwrap_err();
            assert!(matches!(error, SignalError::TooLong(n) if n == 1 << 30), "{error}");
        });
    }
}
