//! The tickets protocol: how a viewer pays a peer that served it verified bytes (the parent
//! module holds both sides' rules). The viewer asks for the peer's terms, then
//! sends tickets on them as bytes arrive; the peer answers how many it took, what they were
//! worth and its terms now, so that tickets refused as stale are paid again on the new ones.
//! Builds for wasm32.
//!
//! Messages are borsh, at most [`MAX_TICKET_MESSAGE`] bytes (the codec refuses longer ones
//! before reading them), at most [`MAX_TICKETS`] tickets a request.

use std::collections::{HashMap, HashSet};

use super::{
    BYTES_PER_TICKET, Payee, Payer, RedeemArgs, Sender, SignedTicket, Terms, TicketError,
    expected_value,
};
use crate::Address;
use crate::crypto::SecretKey;
use borsh::{BorshDeserialize, BorshSerialize};

/// The tickets protocol.
pub const TICKETS_PROTOCOL: &str = "/kinema/tickets/1";
/// Tickets one request carries at most.
pub const MAX_TICKETS: usize = 16;
/// The largest message of the protocol: 16 tickets of ~200 bytes, or a reply with a reason.
pub const MAX_TICKET_MESSAGE: usize = 4096;
/// The longest reason a reply gives.
pub const MAX_REASON: usize = 512;

/// What a viewer asks of a peer that served it.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum TicketRequest {
    /// The terms its tickets must follow now.
    Terms,
    /// Tickets for bytes it delivered, oldest nonce first.
    Pay(Vec<SignedTicket>),
}

/// Why a peer stopped taking a request's tickets.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum Refusal {
    /// The terms changed (renewed, or winners went to be redeemed): the refused tickets'
    /// bytes are to be paid again on the terms in the reply.
    Stale,
    /// Anything else (unfunded, replayed, forged, the peer's winners wait to be redeemed): the
    /// viewer stops paying this peer.
    Other(String),
}

/// A peer's answer.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum TicketReply {
    /// Its terms.
    Terms(Terms),
    /// What became of a [`TicketRequest::Pay`].
    Paid {
        /// The request's first tickets it took.
        accepted: u32,
        /// What they were worth to it (their expected values, added).
        credited: u64,
        /// Why it took none of the rest (None: it took them all).
        refused: Option<Refusal>,
        /// Its terms now.
        terms: Terms,
    },
    /// It takes no tickets (it earns nothing, or serves for free).
    Closed,
}

/// Why a message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Longer than [`MAX_TICKET_MESSAGE`].
    #[error("a tickets message of {0} bytes is over the {MAX_TICKET_MESSAGE}-byte limit")]
    TooLong(usize),
    /// Not the message's borsh, or bytes after it.
    #[error("a tickets message that does not decode: {0}")]
    Malformed(String),
    /// More tickets, or a longer reason, than allowed.
    #[error("a tickets message over its bounds: {0}")]
    OverBounds(&'static str),
}

fn decode<T: BorshDeserialize>(bytes: &[u8]) -> Result<T, DecodeError> {
    if bytes.len() > MAX_TICKET_MESSAGE {
        return Err(DecodeError::TooLong(bytes.len()));
    }
    borsh::from_slice(bytes).map_err(|e| DecodeError::Malformed(e.to_string()))
}

impl TicketRequest {
    /// The request's bytes.
    pub fn encode(&self) -> Vec<u8> {
        borsh::to_vec(self).unwrap_or_default()
    }

    /// A request from the network, within its bounds.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let request: Self = decode(bytes)?;
        if let TicketRequest::Pay(tickets) = &request
            && tickets.len() > MAX_TICKETS
        {
            return Err(DecodeError::OverBounds("more than 16 tickets"));
        }
        Ok(request)
    }
}

impl TicketReply {
    /// The reply's bytes (a reason cut to [`MAX_REASON`] bytes).
    pub fn encode(mut self) -> Vec<u8> {
        if let TicketReply::Paid { refused: Some(Refusal::Other(why)), .. } = &mut self
            && why.len() > MAX_REASON
        {
            let mut end = MAX_REASON;
            while !why.is_char_boundary(end) {
                end -= 1;
            }
            why.truncate(end);
        }
        borsh::to_vec(&self).unwrap_or_default()
    }

    /// A reply from the network, within its bounds.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let reply: Self = decode(bytes)?;
        if let TicketReply::Paid { refused: Some(Refusal::Other(why)), .. } = &reply
            && why.len() > MAX_REASON
        {
            return Err(DecodeError::OverBounds("a reason over 512 bytes"));
        }
        Ok(reply)
    }
}

/// Peers a payee waits on the chain for at once (their requests held until their funds are
/// read); past that a request is refused as busy.
pub const MAX_WAITING: usize = 32;
/// Senders whose funds a payee remembers; past that it forgets them all and reads again.
pub const MAX_FUNDS: usize = 1024;
/// Blocks a read of a sender's funds is trusted for. A sender's funds can only leave
/// `UNLOCK_BLOCKS` after it asks to, longer than any ticket lives; what they can shrink by
/// meanwhile is what other payees redeem, which the reserve is for.
pub const FUNDS_FRESH: u64 = 60;

/// What a [`Ledger`] asks its caller to do.
#[derive(Debug)]
pub enum Step<P, C> {
    /// Send this request to the peer, and hand its reply to [`Ledger::replied`] with the
    /// number of tickets the request carried.
    Ask(P, TicketRequest),
    /// Answer a request that was waiting (or just came) with this reply.
    Answer(C, TicketReply),
    /// Read this sender's funds from the chain, checked against a state proof, and hand them
    /// to [`Ledger::funds`].
    ReadFunds(Address),
}

/// Both sides of bandwidth tickets for one node, with no IO: as a viewer, the tickets it owes
/// the peers that delivered to it ([`Ledger::delivered`]); as a peer that serves, the tickets
/// it takes for what it served ([`Ledger::request`]). `P` names a peer, `C` is how a request
/// is answered.
#[derive(Debug)]
pub struct Ledger<P, C> {
    payer: Payer,
    payee: Payee,
    now: u64,
    /// Terms each peer that delivered asked for, as it said them last.
    terms: HashMap<P, Terms>,
    /// Bytes delivered by peers whose terms were asked and not yet heard.
    owed: HashMap<P, u64>,
    /// Peers that take no tickets from this node, and why.
    unpaid: HashMap<P, String>,
    /// Pay requests waiting for their senders' funds.
    waiting: Vec<(C, Vec<SignedTicket>)>,
    /// Senders whose funds are being read.
    reading: HashSet<Address>,
    /// Senders' funds as read, and the height they were read at.
    funds: HashMap<Address, (Option<Sender>, u64)>,
    paid: u64,
    tickets_paid: u64,
    resigned: u64,
    tickets_taken: u64,
}

/// What a [`Ledger`] did so far.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Account {
    /// Whom tickets to this node pay.
    pub address: String,
    /// Chain height as last heard.
    pub height: u64,
    /// Tickets this node took for what it served.
    pub tickets_taken: u64,
    /// What they were worth (their expected values, added).
    pub credited: u64,
    /// Winning tickets held to be redeemed, and what they pay.
    pub winners: u64,
    /// Their face values, added.
    pub winnings: u64,
    /// Tickets this node paid that the peers took.
    pub tickets_paid: u64,
    /// What they were worth.
    pub paid: u64,
    /// Tickets signed again because the peer's terms changed while they were on the way.
    pub resigned: u64,
    /// Peers that refused this node's tickets.
    pub refused_by: u64,
}

impl<P: Clone + Eq + std::hash::Hash, C> Ledger<P, C> {
    /// A ledger that pays and is paid with `key` at `price_per_mib`, at chain height `now`;
    /// `seed` (32 bytes from a CSPRNG) draws its secret values, `nonce` counts above any it
    /// signed before. None when the price is zero.
    pub fn new(
        key: SecretKey,
        seed: [u8; 32],
        price_per_mib: u64,
        now: u64,
        nonce: u64,
    ) -> Option<Self> {
        Some(Self {
            payer: Payer::new(key.clone(), price_per_mib, nonce),
            payee: Payee::new(key, seed, price_per_mib, now)?,
            now,
            terms: HashMap::new(),
            owed: HashMap::new(),
            unpaid: HashMap::new(),
            waiting: Vec::new(),
            reading: HashSet::new(),
            funds: HashMap::new(),
            paid: 0,
            tickets_paid: 0,
            resigned: 0,
            tickets_taken: 0,
        })
    }

    /// The chain's height, as heard (it never goes back).
    pub fn height(&mut self, now: u64) {
        self.now = self.now.max(now);
    }

    /// `bytes` from `peer` checked out: the tickets now due to it (its terms asked first).
    pub fn delivered(&mut self, peer: P, bytes: u64) -> Vec<Step<P, C>> {
        if self.unpaid.contains_key(&peer) || bytes == 0 {
            return Vec::new();
        }
        let Some(terms) = self.terms.get(&peer) else {
            let owed = self.owed.entry(peer.clone()).or_default();
            let first = *owed == 0;
            *owed = owed.saturating_add(bytes);
            return if first { vec![Step::Ask(peer, TicketRequest::Terms)] } else { Vec::new() };
        };
        match self.payer.delivered(terms, bytes, self.now) {
            Ok(tickets) => tickets
                .chunks(MAX_TICKETS)
                .map(|chunk| Step::Ask(peer.clone(), TicketRequest::Pay(chunk.to_vec())))
                .collect(),
            Err(why) => {
                self.stop_paying(peer, why.to_string());
                Vec::new()
            }
        }
    }

    fn stop_paying(&mut self, peer: P, why: String) {
        if let Some(terms) = self.terms.remove(&peer) {
            self.payer.forget(&terms.recipient);
        }
        self.owed.remove(&peer);
        self.unpaid.insert(peer, why);
    }

    /// `peer`'s reply to a request of ours that carried `sent` tickets (0 for terms).
    pub fn replied(&mut self, peer: P, sent: usize, reply: TicketReply) -> Vec<Step<P, C>> {
        match reply {
            TicketReply::Terms(terms) => {
                self.terms.insert(peer.clone(), terms);
                let owed = self.owed.remove(&peer).unwrap_or(0);
                self.delivered(peer, owed)
            }
            TicketReply::Paid { accepted, refused, terms, .. } => {
                // What the peer says it credited is its word; what it took is counted here.
                let accepted = (accepted as usize).min(sent);
                if let Some(old) = self.terms.get(&peer) {
                    let each = expected_value(old.face_value, old.win_prob);
                    self.paid = self.paid.saturating_add(each.saturating_mul(accepted as u64));
                }
                self.tickets_paid += accepted as u64;
                match refused {
                    None => {
                        self.terms.insert(peer, terms);
                        Vec::new()
                    }
                    Some(Refusal::Stale) => {
                        self.terms.insert(peer.clone(), terms);
                        self.resigned += (sent - accepted) as u64;
                        let again = (sent - accepted) as u64 * BYTES_PER_TICKET;
                        self.delivered(peer, again)
                    }
                    Some(Refusal::Other(why)) => {
                        self.stop_paying(peer, why);
                        Vec::new()
                    }
                }
            }
            TicketReply::Closed => {
                self.stop_paying(peer, "it takes no tickets".into());
                Vec::new()
            }
        }
    }

    /// A request to `peer` failed, or the peer went away: what it was owed under a whole
    /// ticket is not paid, and its terms are asked again if it delivers again.
    pub fn forget(&mut self, peer: &P) {
        if let Some(terms) = self.terms.remove(peer) {
            self.payer.forget(&terms.recipient);
        }
        self.owed.remove(peer);
        self.unpaid.remove(peer);
    }

    /// A request from a peer this node served, as it came off the wire, answered through
    /// `channel` now or once the senders' funds are read.
    pub fn request(&mut self, bytes: &[u8], channel: C) -> Vec<Step<P, C>> {
        let tickets = match TicketRequest::decode(bytes) {
            Ok(TicketRequest::Terms) => {
                return vec![Step::Answer(
                    channel,
                    TicketReply::Terms(self.payee.terms(self.now).clone()),
                )];
            }
            Ok(TicketRequest::Pay(tickets)) => tickets,
            Err(e) => return vec![Step::Answer(channel, self.refuse(e.to_string()))],
        };
        let unknown: Vec<Address> = tickets
            .iter()
            .map(|t| Address(t.ticket.sender))
            .filter(|a| {
                self.funds.get(a).is_none_or(|(_, at)| at.saturating_add(FUNDS_FRESH) < self.now)
            })
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        if unknown.is_empty() {
            let reply = self.take(&tickets);
            return vec![Step::Answer(channel, reply)];
        }
        if self.waiting.len() >= MAX_WAITING {
            return vec![Step::Answer(
                channel,
                self.refuse("busy: too many wait for the chain".into()),
            )];
        }
        self.waiting.push((channel, tickets));
        unknown.into_iter().filter(|a| self.reading.insert(*a)).map(Step::ReadFunds).collect()
    }

    fn refuse(&mut self, why: String) -> TicketReply {
        TicketReply::Paid {
            accepted: 0,
            credited: 0,
            refused: Some(Refusal::Other(why)),
            terms: self.payee.terms(self.now).clone(),
        }
    }

    /// Takes `tickets` in order until one is refused.
    fn take(&mut self, tickets: &[SignedTicket]) -> TicketReply {
        let (mut accepted, mut credited, mut refused) = (0, 0u64, None);
        for ticket in tickets {
            let funds =
                self.funds.get(&Address(ticket.ticket.sender)).and_then(|(f, _)| f.as_ref());
            match self.payee.accept(ticket, funds, self.now) {
                Ok(value) => {
                    accepted += 1;
                    credited = credited.saturating_add(value);
                }
                Err(TicketError::Terms(_)) => {
                    refused = Some(Refusal::Stale);
                    break;
                }
                Err(e) => {
                    refused = Some(Refusal::Other(e.to_string()));
                    break;
                }
            }
        }
        self.tickets_taken += accepted as u64;
        TicketReply::Paid { accepted, credited, refused, terms: self.payee.terms(self.now).clone() }
    }

    /// A sender's funds as the chain proved them at `height` (or why they could not be read):
    /// the requests that waited on them, answered.
    pub fn funds(
        &mut self,
        sender: Address,
        read: Result<(Option<Sender>, u64), String>,
    ) -> Vec<Step<P, C>> {
        self.reading.remove(&sender);
        let names = |tickets: &[SignedTicket]| tickets.iter().any(|t| t.ticket.sender == sender.0);
        match read {
            Ok((funds, height)) => {
                self.height(height);
                if self.funds.len() >= MAX_FUNDS {
                    self.funds.clear();
                }
                self.funds.insert(sender, (funds, height));
            }
            Err(why) => {
                let why = format!("the sender's funds could not be read: {why}");
                let (failed, kept): (Vec<_>, Vec<_>) =
                    std::mem::take(&mut self.waiting).into_iter().partition(|(_, t)| names(t));
                self.waiting = kept;
                return failed
                    .into_iter()
                    .map(|(channel, _)| Step::Answer(channel, self.refuse(why.clone())))
                    .collect();
            }
        }
        let ready = |funds: &HashMap<Address, _>, tickets: &[SignedTicket]| {
            tickets.iter().all(|t| funds.contains_key(&Address(t.ticket.sender)))
        };
        let (now, later): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.waiting).into_iter().partition(|(_, t)| ready(&self.funds, t));
        self.waiting = later;
        now.into_iter()
            .map(|(channel, tickets)| Step::Answer(channel, self.take(&tickets)))
            .collect()
    }

    /// The winning tickets held, handed over to be redeemed (which voids the terms given so
    /// far: see `Payee::take_winners`); with `claim_for`, each carries this node's claim for
    /// that address to redeem it and be paid.
    pub fn take_winners(&mut self, claim_for: Option<Address>) -> Vec<RedeemArgs> {
        let mut winners = self.payee.take_winners(self.now);
        if let Some(payee) = claim_for {
            for w in &mut winners {
                self.payee.claim_for(w, payee);
            }
        }
        winners
    }

    /// What it did so far.
    pub fn account(&mut self) -> Account {
        let (winners, winnings) = self.payee.winnings();
        Account {
            address: self.payee.terms(self.now).recipient.to_string(),
            height: self.now,
            tickets_taken: self.tickets_taken,
            credited: self.payee.credited(),
            winners: winners as u64,
            winnings,
            tickets_paid: self.tickets_paid,
            paid: self.paid,
            resigned: self.resigned,
            refused_by: self.unpaid.len() as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::SecretKey;
    use crate::tickets::MIN_FACE_VALUE;

    const PRICE: u64 = 1_000_000;

    fn tickets(n: u64) -> (Terms, Vec<SignedTicket>) {
        let mut payee = Payee::new(SecretKey::from_seed([2; 32]), [3; 32], PRICE, 10).unwrap();
        let terms = payee.terms(10).clone();
        let mut payer = Payer::new(SecretKey::from_seed([1; 32]), PRICE, 0);
        let signed = payer.delivered(&terms, n * BYTES_PER_TICKET, 10).unwrap();
        (terms, signed)
    }

    use kinema_contracts::accounts::{self, Account as Balance};
    use kinema_contracts::tickets::{self as contract, FundArgs};
    use kinema_contracts::{MemoryHost, write_value};
    use std::collections::VecDeque;

    type L = Ledger<&'static str, usize>;

    /// A chain where `viewer` has `deposit` in ticket funds.
    fn chain(viewer: &SecretKey, deposit: u64) -> MemoryHost {
        let mut host = MemoryHost { caller: viewer.address().0, height: 10, ..Default::default() };
        write_value(
            &mut host,
            &accounts::key(&viewer.address().0),
            &Balance { balance: deposit, ..Default::default() },
        );
        if deposit > 0 {
            contract::fund(&mut host, &FundArgs { deposit, reserve: 0 }).unwrap();
        }
        host
    }

    /// Carries `steps` between viewer and server until nothing is left to do; returns what
    /// the server answered that the viewer did not expect (none) and the funds reads made.
    fn pump(
        viewer: &mut L,
        server: &mut L,
        host: &MemoryHost,
        steps: Vec<Step<&'static str, usize>>,
    ) -> usize {
        let mut queue: VecDeque<_> = steps.into();
        let mut sent = HashMap::new();
        let (mut next, mut reads) = (0, 0);
        while let Some(step) = queue.pop_front() {
            match step {
                Step::Ask(peer, request) => {
                    assert_eq!(peer, "server");
                    let count = match &request {
                        TicketRequest::Pay(t) => t.len(),
                        _ => 0,
                    };
                    next += 1;
                    sent.insert(next, count);
                    queue.extend(server.request(&request.encode(), next));
                }
                Step::Answer(channel, reply) => {
                    let reply = TicketReply::decode(&reply.encode()).unwrap();
                    queue.extend(viewer.replied("server", sent[&channel], reply));
                }
                Step::ReadFunds(who) => {
                    reads += 1;
                    let funds = contract::sender(host, &who.0).unwrap();
                    queue.extend(server.funds(who, Ok((funds, host.height))));
                }
            }
        }
        reads
    }

    fn pair(price: u64) -> (SecretKey, L, L) {
        let viewer = SecretKey::from_seed([1; 32]);
        let v = Ledger::new(viewer.clone(), [7; 32], price, 10, 0).unwrap();
        let s = Ledger::new(SecretKey::from_seed([2; 32]), [8; 32], price, 10, 0).unwrap();
        (viewer, v, s)
    }

    #[test]
    fn bytes_delivered_are_paid_at_the_price_over_the_protocol_and_stale_tickets_again() {
        // Priced so that every ticket wins: handing winners over always renews the terms.
        let price = (MIN_FACE_VALUE - 1) * 4;
        let (key, mut viewer, mut server) = pair(price);
        let host = chain(&key, 1_000 * MIN_FACE_VALUE);
        // 3 MiB in pieces, then the server hands its winners over mid-way (new terms), then
        // 5 MiB more: every whole ticket's worth is paid, once.
        let steps = viewer.delivered("server", 3 << 20);
        assert!(matches!(&steps[..], [Step::Ask("server", TicketRequest::Terms)]));
        // More bytes before the terms came: owed, not asked twice.
        assert!(viewer.delivered("server", 1 << 20).is_empty());
        let reads = pump(&mut viewer, &mut server, &host, steps);
        assert_eq!(reads, 1, "the viewer's funds read once");
        assert_eq!(server.account().winners, 16);
        // Tickets signed on the terms the winners voided, on their way when they were taken.
        let on_the_way = viewer.delivered("server", 2 << 20);
        assert_eq!(server.take_winners(None).len(), 16);
        pump(&mut viewer, &mut server, &host, on_the_way);
        for _ in 0..3 {
            let steps = viewer.delivered("server", 1 << 20);
            pump(&mut viewer, &mut server, &host, steps);
        }
        let (v, s) = (viewer.account(), server.account());
        assert_eq!(s.tickets_taken, 36, "9 MiB in 256 KiB tickets");
        assert_eq!(s.credited, 9 * price);
        assert_eq!((v.tickets_paid, v.paid, v.resigned), (36, 9 * price, 8));
    }

    #[test]
    fn a_viewer_with_no_funds_is_refused_once_and_stops_signing() {
        let (key, mut viewer, mut server) = pair(PRICE);
        let host = chain(&key, 0);
        let steps = viewer.delivered("server", 2 << 20);
        pump(&mut viewer, &mut server, &host, steps);
        assert_eq!(server.account().tickets_taken, 0);
        assert_eq!(viewer.account().refused_by, 1);
        assert!(viewer.delivered("server", 10 << 20).is_empty(), "no more tickets signed");
        // Once the peer is gone and back, it is asked again.
        viewer.forget(&"server");
        assert_eq!(viewer.delivered("server", 1 << 20).len(), 1);
    }

    #[test]
    fn a_server_bounds_what_waits_on_the_chain_and_answers_when_it_cannot_read() {
        let (_, _, mut server) = pair(PRICE);
        let terms = server.payee.terms(10).clone();
        let mut reads = Vec::new();
        for i in 0..=MAX_WAITING as u8 {
            let mut payer = Payer::new(SecretKey::from_seed([i + 10; 32]), PRICE, 0);
            let tickets = payer.delivered(&terms, BYTES_PER_TICKET, 10).unwrap();
            let steps = server.request(&TicketRequest::Pay(tickets).encode(), i as usize);
            if (i as usize) < MAX_WAITING {
                assert!(matches!(&steps[..], [Step::ReadFunds(_)]), "{steps:?}");
                reads.extend(steps);
            } else {
                let [
                    Step::Answer(32, TicketReply::Paid { refused: Some(Refusal::Other(why)), .. }),
                ] = &steps[..]
                else {
                    panic!("{steps:?}");
                };
                assert!(why.contains("busy"), "{why}");
            }
        }
        let Step::ReadFunds(first) = reads[0] else { unreachable!() };
        let answered = server.funds(first, Err("the RPC is down".into()));
        let [
            Step::Answer(
                0,
                TicketReply::Paid { accepted: 0, refused: Some(Refusal::Other(why)), .. },
            ),
        ] = &answered[..]
        else {
            panic!("{answered:?}");
        };
        assert!(why.contains("RPC is down"), "{why}");
        assert_eq!(server.waiting.len(), MAX_WAITING - 1);
        // Garbage is answered with a refusal, not a panic or a wait.
        let steps = server.request(&[0xff; 40], 99);
        assert!(matches!(&steps[..], [Step::Answer(99, TicketReply::Paid { accepted: 0, .. })]));
    }

    #[test]
    fn a_peer_that_claims_more_than_it_was_sent_is_counted_for_what_it_was_sent() {
        let (_, mut viewer, mut server) = pair(PRICE);
        let terms = server.payee.terms(10).clone();
        viewer.delivered("server", 1);
        viewer.replied("server", 0, TicketReply::Terms(terms.clone()));
        let lie = TicketReply::Paid { accepted: 1_000, credited: u64::MAX, refused: None, terms };
        viewer.replied("server", 2, lie);
        assert_eq!(viewer.account().tickets_paid, 2);
        assert_eq!(viewer.account().paid, PRICE / 2);
    }

    #[test]
    fn a_full_request_and_every_reply_fit_the_limit_and_round_trip() {
        let (terms, signed) = tickets(MAX_TICKETS as u64);
        let pay = TicketRequest::Pay(signed);
        let bytes = pay.encode();
        assert!(bytes.len() <= MAX_TICKET_MESSAGE, "{} bytes", bytes.len());
        assert_eq!(TicketRequest::decode(&bytes).unwrap(), pay);
        assert_eq!(TicketRequest::decode(&TicketRequest::Terms.encode()), Ok(TicketRequest::Terms));
        let long = TicketReply::Paid {
            accepted: 3,
            credited: 750_000,
            refused: Some(Refusal::Other("é".repeat(MAX_REASON))),
            terms,
        };
        let bytes = long.encode();
        assert!(bytes.len() <= MAX_TICKET_MESSAGE);
        let TicketReply::Paid { refused: Some(Refusal::Other(why)), .. } =
            TicketReply::decode(&bytes).unwrap()
        else {
            panic!("not a refusal");
        };
        assert_eq!(why.len(), MAX_REASON, "cut on a character boundary");
        assert_eq!(TicketReply::decode(&TicketReply::Closed.encode()), Ok(TicketReply::Closed));
    }

    #[test]
    fn hostile_messages_are_refused_before_they_grow_anything() {
        let (terms, signed) = tickets(MAX_TICKETS as u64 + 1);
        // 17 tickets, encoded by hand: over the count (and the byte limit).
        let bytes = borsh::to_vec(&TicketRequest::Pay(signed.clone())).unwrap();
        assert!(TicketRequest::decode(&bytes).is_err());
        // A count that claims four billion tickets in a short message.
        let mut lying = vec![1u8];
        lying.extend(u32::MAX.to_le_bytes());
        lying.extend(borsh::to_vec(&signed[0]).unwrap());
        assert!(matches!(TicketRequest::decode(&lying), Err(DecodeError::Malformed(_))));
        // Trailing bytes, an unknown variant, nothing at all.
        let mut trailing = TicketRequest::Terms.encode();
        trailing.push(0);
        assert!(TicketRequest::decode(&trailing).is_err());
        assert!(TicketRequest::decode(&[9]).is_err());
        assert!(TicketReply::decode(&[]).is_err());
        assert_eq!(
            TicketRequest::decode(&vec![0; MAX_TICKET_MESSAGE + 1]),
            Err(DecodeError::TooLong(MAX_TICKET_MESSAGE + 1))
        );
        // A reply whose reason is over the bound, written by hand.
        let paid = TicketReply::Paid {
            accepted: 0,
            credited: 0,
            refused: Some(Refusal::Other("x".repeat(MAX_REASON + 1))),
            terms,
        };
        let bytes = borsh::to_vec(&paid).unwrap();
        assert_eq!(
            TicketReply::decode(&bytes),
            Err(DecodeError::OverBounds("a reason over 512 bytes"))
        );
    }
}
