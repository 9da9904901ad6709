//! What native nodes and the browser light node say to each other: length-prefixed messages,
//! the segment protocol's request and answer, and [`Download`], which checks a blob group by
//! group as the answers arrive. Builds for wasm32.

use kinema_chain::Hash;
use std::collections::BTreeMap;
use std::future::Future;
use std::io;

use futures::{AsyncReadExt, AsyncWriteExt};
use libp2p::{StreamProtocol, request_response};

use crate::verified::{GROUP, Outboard, groups};

/// The largest message a protocol carries: a block of 10,000 transactions is ~2 MB.
pub const MAX_MESSAGE: usize = 16 << 20;
/// Groups a segment request asks for at most (1 MiB).
pub const BATCH: u32 = 64;
/// The segment protocol.
pub const SEGMENT_PROTOCOL: &str = "/kinema/segment/1";

/// A segment request: which blob, from which group, how many, and whether to send the outboard.
///
/// With `max_bytes` set, the answer is one piece of at most that many bytes (outboard
/// included) starting `offset` bytes into group `first`, in `groups[0]`: for transports whose
/// streams cannot take a whole group in one answer (libp2p's webrtc in browsers takes 16 KiB
/// of unread data at most, and a group alone is 16 KiB).
#[derive(Debug, Clone, borsh::BorshSerialize, borsh::BorshDeserialize)]
pub struct SegmentRequest {
    /// The blob's blake3.
    pub name: Hash,
    /// The first group wanted.
    pub first: u32,
    /// How many groups (at most [`BATCH`] are sent).
    pub count: u32,
    /// Whether to send the blob's outboard.
    pub outboard: bool,
    /// Where in group `first` the piece starts (piece answers only).
    pub offset: u32,
    /// The most bytes a piece answer may carry; 0 for whole groups.
    pub max_bytes: u32,
}

/// The bytes of a piece answer that fit in `max_bytes` beside an outboard of `outboard` bytes.
pub fn piece_len(max_bytes: u32, outboard: usize) -> usize {
    (max_bytes as usize).saturating_sub(outboard).max(1)
}

/// Its answer.
#[derive(Debug, Clone, borsh::BorshSerialize, borsh::BorshDeserialize)]
pub enum SegmentResponse {
    /// The peer does not hold the blob.
    NotFound,
    /// The outboard if asked for, and the groups (none past the blob's end).
    Found {
        /// The blob's outboard.
        outboard: Option<Vec<u8>>,
        /// The groups, in order from the first asked for.
        groups: Vec<Vec<u8>>,
    },
}

/// The answer to `request` for a blob with `outboard`, its groups read by `read` (a range of
/// group indexes; None when unreadable): whole groups (at most [`BATCH`]), or one piece of at
/// most `request.max_bytes` bytes. Native peers read from their store, browsers from memory.
pub fn answer(
    request: &SegmentRequest,
    outboard: &crate::verified::Outboard,
    read: impl Fn(std::ops::Range<usize>) -> Option<Vec<Vec<u8>>>,
) -> SegmentResponse {
    use crate::verified::{GROUP, groups};
    let sent_outboard = request.outboard.then(|| outboard.to_bytes());
    let count = groups(outboard.len());
    let groups = if request.max_bytes == 0 {
        let first = request.first as usize;
        let end = (first + request.count.min(BATCH) as usize).min(count);
        // Past the end, or unreadable: nothing more to send.
        if first < end { read(first..end).unwrap_or_default() } else { Vec::new() }
    } else {
        let outboard_len = sent_outboard.as_ref().map_or(0, Vec::len);
        let len = piece_len(request.max_bytes, outboard_len);
        let start = request.first as usize * GROUP + request.offset as usize;
        let end = (start + len).min(outboard.len() as usize);
        let piece = if start >= end {
            Vec::new()
        } else {
            let (first, last) = (start / GROUP, end.div_ceil(GROUP));
            read(first..last)
                .map(|read| read.concat()[start - first * GROUP..end - first * GROUP].to_vec())
                .unwrap_or_default()
        };
        vec![piece]
    };
    SegmentResponse::Found { outboard: sent_outboard, groups }
}

async fn read_message<T: futures::AsyncRead + Unpin + Send>(
    io: &mut T,
    max: usize,
) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        let why = format!("a message of {len} bytes is over the {max}-byte limit");
        return Err(io::Error::new(io::ErrorKind::InvalidData, why));
    }
    let mut bytes = vec![0; len];
    io.read_exact(&mut bytes).await?;
    Ok(bytes)
}

async fn write_message<T: futures::AsyncWrite + Unpin + Send>(
    io: &mut T,
    bytes: Vec<u8>,
) -> io::Result<()> {
    let len = u32::try_from(bytes.len())
        .ok()
        .filter(|l| *l as usize <= MAX_MESSAGE)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "message too large"))?;
    io.write_all(&len.to_be_bytes()).await?;
    io.write_all(&bytes).await?;
    io.flush().await
}

/// The codec of Kinema's request-response protocols: length-prefixed bytes both ways, of at
/// most [`MAX_MESSAGE`] bytes ([`Bytes::default`]) or a smaller limit ([`Bytes::limited`]).
#[derive(Debug, Clone)]
pub struct Bytes {
    max: usize,
}

impl Default for Bytes {
    fn default() -> Self {
        Self { max: MAX_MESSAGE }
    }
}

impl Bytes {
    /// Messages of at most `max` bytes (and [`MAX_MESSAGE`]) both ways; a longer one fails its
    /// stream before it is read.
    pub fn limited(max: usize) -> Self {
        Self { max: max.min(MAX_MESSAGE) }
    }
}

impl request_response::Codec for Bytes {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    fn read_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> impl Future<Output = io::Result<Vec<u8>>> + Send
    where
        T: futures::AsyncRead + Unpin + Send,
    {
        read_message(io, self.max)
    }

    fn read_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> impl Future<Output = io::Result<Vec<u8>>> + Send
    where
        T: futures::AsyncRead + Unpin + Send,
    {
        read_message(io, self.max)
    }

    fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        bytes: Vec<u8>,
    ) -> impl Future<Output = io::Result<()>> + Send
    where
        T: futures::AsyncWrite + Unpin + Send,
    {
        write_message(io, bytes)
    }

    fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        bytes: Vec<u8>,
    ) -> impl Future<Output = io::Result<()>> + Send
    where
        T: futures::AsyncWrite + Unpin + Send,
    {
        write_message(io, bytes)
    }
}

/// A blob being downloaded: what to ask for next, and the check of every answer.
///
/// Asked one request at a time ([`Download::request`], [`Download::accept`]), or, for whole
/// groups, several batches at once ([`Download::next_batch`], [`Download::accept_batch`]):
/// each batch is checked as it arrives, whatever its order (a group checks against the
/// outboard by its index alone), and kept until the groups before it are in.
#[derive(Debug, Clone)]
pub struct Download {
    name: Hash,
    outboard: Option<Outboard>,
    /// The checked groups, in order from the first.
    data: Vec<u8>,
    /// Bytes of the next group(s), not checked yet (piece answers).
    pending: Vec<u8>,
    /// Piece answers of at most this many bytes; 0 for whole groups.
    max_bytes: u32,
    /// Checked groups that arrived before the groups ahead of them, by index.
    early: BTreeMap<usize, Vec<u8>>,
    /// The first group no batch has been asked for ([`Download::next_batch`]).
    asked: usize,
}

/// What an answer did to a download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The peer does not hold the blob.
    NotFound,
    /// The peer sent data that does not match the blob's name (or nothing decodable): it lies.
    Bad(String),
    /// Bytes were added (none: the peer had nothing more).
    Added(usize),
    /// The blob is whole.
    Complete,
}

impl Download {
    /// Starts downloading blob `name` in batches of whole groups.
    pub fn new(name: Hash) -> Self {
        Self::in_pieces(name, 0)
    }

    /// Starts downloading blob `name` in answers of at most `max_bytes` (0: whole groups).
    pub fn in_pieces(name: Hash, max_bytes: u32) -> Self {
        Self {
            name,
            outboard: None,
            data: Vec::new(),
            pending: Vec::new(),
            max_bytes,
            early: BTreeMap::new(),
            asked: 0,
        }
    }

    /// The blob's name.
    pub fn name(&self) -> Hash {
        self.name
    }

    /// Bytes received and checked so far.
    pub fn received(&self) -> u64 {
        self.data.len() as u64
    }

    /// Whether every byte is here and checked.
    pub fn is_complete(&self) -> bool {
        self.outboard.as_ref().is_some_and(|o| o.len() == self.data.len() as u64)
    }

    /// The next request to send, encoded.
    pub fn request(&self) -> Vec<u8> {
        let request = SegmentRequest {
            name: self.name,
            first: (self.data.len() / GROUP) as u32,
            count: if self.max_bytes == 0 { BATCH } else { 1 },
            outboard: self.outboard.is_none(),
            offset: self.pending.len() as u32,
            max_bytes: self.max_bytes,
        };
        borsh::to_vec(&request).unwrap_or_default()
    }

    /// The next batch of whole groups to ask for while others may be in flight: its first
    /// group and the encoded request. `None` when every group has been asked for, or while
    /// the first answer (which brings the outboard, and so the blob's length) is awaited.
    pub fn next_batch(&mut self) -> Option<(u32, Vec<u8>)> {
        let mut first = self.asked.max(self.data.len() / GROUP);
        while self.early.contains_key(&first) {
            first += 1;
        }
        let groups = match &self.outboard {
            Some(outboard) => groups(outboard.len()),
            None if first == 0 && self.asked == 0 => usize::MAX,
            None => return None,
        };
        if first >= groups {
            return None;
        }
        self.asked = first + BATCH as usize;
        let request = SegmentRequest {
            name: self.name,
            first: first as u32,
            count: BATCH,
            outboard: self.outboard.is_none(),
            offset: 0,
            max_bytes: 0,
        };
        Some((first as u32, borsh::to_vec(&request).unwrap_or_default()))
    }

    /// Asks again, from the first missing group, for whatever was asked and not received (the
    /// provider changed): the next [`Download::next_batch`] starts there.
    pub fn ask_again(&mut self) {
        // Nothing is kept before the outboard is here, so that asks for the first batch again.
        self.asked = self.data.len() / GROUP;
    }

    /// Checks the answer to the batch asked from group `first` ([`Download::next_batch`]),
    /// keeping its groups that match, up to the first that does not. `Added` counts the groups'
    /// bytes checked now, whether or not the groups before them are in yet.
    pub fn accept_batch(&mut self, first: u32, answer: &[u8]) -> Answer {
        let answered = match self.open(answer) {
            Ok(groups) => groups,
            Err(answer) => return answer,
        };
        let Some(outboard) = &self.outboard else { return Answer::Bad("no outboard".into()) };
        let total = groups(outboard.len());
        let expected = total.saturating_sub(first as usize).min(BATCH as usize);
        let received = answered.len().min(expected);
        if received < expected {
            // A short answer: what it lacks is asked for again.
            self.asked = self.asked.min(first as usize + received);
        }
        let mut added = 0;
        for (index, group) in (first as usize..total).zip(answered) {
            if index < self.data.len() / GROUP || self.early.contains_key(&index) {
                continue;
            }
            if let Err(e) = outboard.check(self.name, index, &group) {
                return Answer::Bad(e.to_string());
            }
            added += group.len();
            self.early.insert(index, group);
        }
        while let Some(group) = self.early.remove(&(self.data.len() / GROUP)) {
            self.data.extend_from_slice(&group);
            if self.is_complete() {
                break;
            }
        }
        if self.is_complete() { Answer::Complete } else { Answer::Added(added) }
    }

    /// Decodes an answer and takes its outboard when none is known yet.
    fn open(&mut self, answer: &[u8]) -> Result<Vec<Vec<u8>>, Answer> {
        let (outboard, groups) = match borsh::from_slice::<SegmentResponse>(answer) {
            Ok(SegmentResponse::Found { outboard, groups }) => (outboard, groups),
            Ok(SegmentResponse::NotFound) => return Err(Answer::NotFound),
            Err(e) => return Err(Answer::Bad(format!("undecodable answer: {e}"))),
        };
        if self.outboard.is_none() {
            match outboard.map(|b| Outboard::from_bytes(self.name, &b)) {
                Some(Ok(outboard)) => self.outboard = Some(outboard),
                Some(Err(e)) => return Err(Answer::Bad(e.to_string())),
                None => return Err(Answer::Bad("no outboard".into())),
            }
        }
        Ok(groups)
    }

    /// Checks an answer, keeping the groups that match, up to the first that does not.
    pub fn accept(&mut self, answer: &[u8]) -> Answer {
        let groups = match self.open(answer) {
            Ok(groups) => groups,
            Err(answer) => return answer,
        };
        let Some(outboard) = &self.outboard else { return Answer::Bad("no outboard".into()) };
        let mut added = 0;
        if self.max_bytes == 0 {
            for group in groups {
                if self.data.len() as u64 == outboard.len() {
                    break;
                }
                let index = self.data.len() / GROUP;
                if let Err(e) = outboard.check(self.name, index, &group) {
                    return Answer::Bad(e.to_string());
                }
                added += group.len();
                self.data.extend_from_slice(&group);
            }
        } else {
            let piece = groups.into_iter().next().unwrap_or_default();
            let asked = piece_len(self.max_bytes, 0);
            if piece.len() > asked {
                return Answer::Bad(format!("a piece of {} bytes, {asked} asked", piece.len()));
            }
            added = piece.len();
            self.pending.extend_from_slice(&piece);
            // Check every group the pieces have completed.
            loop {
                let left = (outboard.len() - self.data.len() as u64) as usize;
                let want = left.min(GROUP);
                if left == 0 || self.pending.len() < want {
                    break;
                }
                let index = self.data.len() / GROUP;
                if let Err(e) = outboard.check(self.name, index, &self.pending[..want]) {
                    return Answer::Bad(e.to_string());
                }
                self.data.extend(self.pending.drain(..want));
            }
            if self.data.len() as u64 == outboard.len() && !self.pending.is_empty() {
                return Answer::Bad("bytes past the blob's end".into());
            }
        }
        if self.is_complete() { Answer::Complete } else { Answer::Added(added) }
    }

    /// The blob, once complete.
    pub fn into_bytes(self) -> Vec<u8> {
        self.data
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(outboard: Option<&Outboard>, data: &[u8], first: usize, count: usize) -> Vec<u8> {
        let groups = data.chunks(GROUP).skip(first).take(count).map(<[u8]>::to_vec).collect();
        let outboard = outboard.map(Outboard::to_bytes);
        borsh::to_vec(&SegmentResponse::Found { outboard, groups }).unwrap()
    }

    #[test]
    fn a_download_takes_good_groups_and_stops_at_a_bad_one() {
        let data: Vec<u8> = (0..5 * GROUP + 100).map(|i| (i * 7 % 251) as u8).collect();
        let (name, outboard) = Outboard::compute(&data);
        let mut download = Download::new(name);
        assert_eq!(
            download.accept(&answer(Some(&outboard), &data, 0, 2)),
            Answer::Added(2 * GROUP)
        );
        assert_eq!(download.received(), 2 * GROUP as u64);
        let mut lie = data.clone();
        lie[3 * GROUP + 1] ^= 1;
        let bad = download.accept(&answer(None, &lie, 2, 3));
        assert!(matches!(bad, Answer::Bad(ref why) if why.contains("group 3")), "{bad:?}");
        assert_eq!(download.received(), 3 * GROUP as u64, "group 2 was good");
        assert_eq!(download.accept(&answer(None, &data, 3, 64)), Answer::Complete);
        assert_eq!(download.into_bytes(), data);
    }

    #[test]
    fn a_download_in_pieces_checks_each_group_once_it_is_whole() {
        let data: Vec<u8> = (0..2 * GROUP + 500).map(|i| (i * 13 % 251) as u8).collect();
        let (name, outboard) = Outboard::compute(&data);
        let piece = |data: &[u8], download: &Download, outboard: Option<&Outboard>| {
            let request: SegmentRequest = borsh::from_slice(&download.request()).unwrap();
            let start = request.first as usize * GROUP + request.offset as usize;
            let len = piece_len(request.max_bytes, outboard.map_or(0, |o| o.to_bytes().len()));
            let bytes = data[start..(start + len).min(data.len())].to_vec();
            let outboard = outboard.map(Outboard::to_bytes);
            borsh::to_vec(&SegmentResponse::Found { outboard, groups: vec![bytes] }).unwrap()
        };
        let mut download = Download::in_pieces(name, 6000);
        let first = download.accept(&piece(&data, &download, Some(&outboard)));
        assert_eq!(first, Answer::Added(6000 - outboard.to_bytes().len()));
        let mut answers = 1;
        while !download.is_complete() {
            let answer = download.accept(&piece(&data, &download, None));
            assert!(matches!(answer, Answer::Added(_) | Answer::Complete), "{answer:?}");
            answers += 1;
        }
        assert_eq!(answers, 6, "33,268 bytes: 5,896 beside the outboard, then 5 of at most 6,000");
        assert_eq!(download.into_bytes(), data);

        // A lie in group 1 is caught when group 1 is whole, not before.
        let mut lie = data.clone();
        lie[GROUP + 10] ^= 1;
        let mut download = Download::in_pieces(name, 6000);
        let mut outcome = download.accept(&piece(&lie, &download, Some(&outboard)));
        while let Answer::Added(_) = outcome {
            outcome = download.accept(&piece(&lie, &download, None));
        }
        assert!(matches!(outcome, Answer::Bad(ref why) if why.contains("group 1")), "{outcome:?}");
        assert_eq!(download.received(), GROUP as u64);
    }

    #[test]
    fn batches_in_flight_are_checked_in_any_order_and_a_lie_is_caught_in_any() {
        let data: Vec<u8> =
            (0..(3 * BATCH as usize + 5) * GROUP + 77).map(|i| (i % 253) as u8).collect();
        let (name, outboard) = Outboard::compute(&data);
        let answer_to = |request: &[u8], data: &[u8]| {
            let request: SegmentRequest = borsh::from_slice(request).unwrap();
            let (first, count) = (request.first as usize, request.count as usize);
            answer(request.outboard.then_some(&outboard), data, first, count)
        };
        let mut download = Download::new(name);
        // One request until the outboard is known, then as many as there are batches.
        let (first, request) = download.next_batch().unwrap();
        assert_eq!(first, 0);
        assert!(download.next_batch().is_none(), "the first answer brings the blob's length");
        assert_eq!(
            download.accept_batch(first, &answer_to(&request, &data)),
            Answer::Added(BATCH as usize * GROUP)
        );
        let asked: Vec<(u32, Vec<u8>)> = std::iter::from_fn(|| download.next_batch()).collect();
        let firsts: Vec<u32> = asked.iter().map(|(f, _)| *f).collect();
        assert_eq!(firsts, [BATCH, 2 * BATCH, 3 * BATCH]);
        // The last batch first: checked at once, kept until the ones before it arrive.
        let (last, request) = &asked[2];
        assert_eq!(
            download.accept_batch(*last, &answer_to(request, &data)),
            Answer::Added(5 * GROUP + 77)
        );
        assert_eq!(download.received(), BATCH as u64 * GROUP as u64);
        // A lie in the middle batch is caught when it arrives, at its group.
        let mut lie = data.clone();
        lie[(2 * BATCH as usize + 3) * GROUP] ^= 1;
        let (middle, request) = &asked[1];
        let bad = download.accept_batch(*middle, &answer_to(request, &lie));
        assert!(
            matches!(bad, Answer::Bad(ref why) if why.contains(&format!("group {}", 2 * BATCH + 3))),
            "{bad:?}"
        );
        // Another provider: asked again from the first missing group; what is held is not asked.
        download.ask_again();
        let again: Vec<u32> =
            std::iter::from_fn(|| download.next_batch()).map(|(f, _)| f).collect();
        assert_eq!(again, [BATCH, 2 * BATCH + 3]);
        let (_, request) = &asked[0];
        assert!(matches!(
            download.accept_batch(BATCH, &answer_to(request, &data)),
            Answer::Added(_)
        ));
        let rest = SegmentRequest {
            name,
            first: 2 * BATCH + 3,
            count: BATCH,
            outboard: false,
            offset: 0,
            max_bytes: 0,
        };
        let answer = answer_to(&borsh::to_vec(&rest).unwrap(), &data);
        assert_eq!(download.accept_batch(2 * BATCH + 3, &answer), Answer::Complete);
        assert_eq!(download.into_bytes(), data);
    }

    #[test]
    fn a_short_answer_is_asked_for_again() {
        let data: Vec<u8> = (0..2 * BATCH as usize * GROUP).map(|i| (i % 241) as u8).collect();
        let (name, outboard) = Outboard::compute(&data);
        let mut download = Download::new(name);
        let (first, _) = download.next_batch().unwrap();
        let short = answer(Some(&outboard), &data, 0, 10);
        assert_eq!(download.accept_batch(first, &short), Answer::Added(10 * GROUP));
        let (next, _) = download.next_batch().unwrap();
        assert_eq!(next, 10, "the groups the answer lacked come first");
    }

    #[test]
    fn a_made_up_outboard_or_garbage_is_a_lie() {
        let data = vec![1u8; 3 * GROUP];
        let (name, _) = Outboard::compute(&data);
        let (_, other) = Outboard::compute(&[2u8; 3 * GROUP]);
        let mut download = Download::new(name);
        assert!(matches!(download.accept(&answer(Some(&other), &data, 0, 1)), Answer::Bad(_)));
        assert!(matches!(download.accept(b"garbage"), Answer::Bad(_)));
        let not_found = borsh::to_vec(&SegmentResponse::NotFound).unwrap();
        assert_eq!(download.accept(&not_found), Answer::NotFound);
    }
}

/// The segment protocol's encodings, pinned: a peer of another version must read them.
#[cfg(test)]
mod encodings {
    use super::*;

    fn framed(bytes: Vec<u8>) -> String {
        let mut out = Vec::new();
        futures::executor::block_on(write_message(&mut out, bytes)).unwrap();
        hex::encode(out)
    }

    #[test]
    fn segment_requests_and_answers_keep_their_bytes() {
        let whole = SegmentRequest {
            name: Hash::digest(b"a segment"),
            first: 64,
            count: BATCH,
            outboard: true,
            offset: 0,
            max_bytes: 0,
        };
        let piece = SegmentRequest {
            first: 3,
            count: 1,
            offset: 15_360,
            max_bytes: 15_360,
            ..whole.clone()
        };
        let found = SegmentResponse::Found {
            outboard: Some(vec![0xaa; 4]),
            groups: vec![b"group 0".to_vec(), b"group 1".to_vec()],
        };
        insta::assert_snapshot!(
            "segment_request_whole_groups",
            framed(borsh::to_vec(&whole).unwrap())
        );
        insta::assert_snapshot!("segment_request_piece", framed(borsh::to_vec(&piece).unwrap()));
        insta::assert_snapshot!(
            "segment_answer_not_found",
            framed(borsh::to_vec(&SegmentResponse::NotFound).unwrap())
        );
        insta::assert_snapshot!("segment_answer_found", framed(borsh::to_vec(&found).unwrap()));
    }
}

/// Every decoder of what a peer sends on the segment protocol: arbitrary bytes and mutations of
/// valid answers give a value, an error that says something or a refused answer, never a panic.
#[cfg(test)]
mod fuzz {
    use kinema_test_support::fuzz::{explains, mutate, mutations};
    use proptest::prelude::*;

    use super::*;

    fn blob() -> (Hash, Outboard, Vec<u8>) {
        let data: Vec<u8> = (0..3 * GROUP + 77).map(|i| (i * 13 % 251) as u8).collect();
        let (name, outboard) = Outboard::compute(&data);
        (name, outboard, data)
    }

    fn check(bytes: &[u8]) -> Result<(), TestCaseError> {
        let mut framed = futures::io::Cursor::new(bytes.to_vec());
        explains("frame", futures::executor::block_on(read_message(&mut framed, MAX_MESSAGE)))?;
        explains("request", borsh::from_slice::<SegmentRequest>(bytes))?;
        explains("answer", borsh::from_slice::<SegmentResponse>(bytes))?;
        let (name, _, _) = blob();
        explains("outboard", Outboard::from_bytes(name, bytes))?;
        let _ = Download::new(name).accept(bytes);
        let _ = Download::new(name).accept_batch(0, bytes);
        let _ = Download::in_pieces(name, 15 * 1024).accept(bytes);
        Ok(())
    }

    proptest! {
        #[test]
        fn fuzz_segment_protocol_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
            check(&bytes)?;
        }

        #[test]
        fn fuzz_segment_protocol_on_mutated_answers(changes in mutations()) {
            let (name, outboard, data) = blob();
            let groups = data.chunks(GROUP).map(<[u8]>::to_vec).collect();
            let answer = SegmentResponse::Found { outboard: Some(outboard.to_bytes()), groups };
            let valid = borsh::to_vec(&answer).unwrap();
            let changed = mutate(&valid, &changes);
            check(&changed)?;
            // A download fed the changed answer either completes with the blob or refuses it.
            let mut download = Download::new(name);
            if download.accept(&changed) == Answer::Complete {
                prop_assert_eq!(download.into_bytes(), data);
            }
        }
    }
}
