//! The off-chain half of bandwidth tickets (the tickets contract is the on-chain half): the
//! terms a serving peer asks for and the checks it makes of each ticket ([`Payee`]), and the
//! tickets a viewer signs as verified bytes arrive ([`Payer`]).
//!
//! A viewer owes `price × bytes` for what a peer delivered and that checked out. It pays in
//! tickets, one per [`BYTES_PER_TICKET`] bytes, each worth that much on average: a face value
//! of at least [`MIN_FACE_VALUE`] (so the redemption fee stays ≤ 1 % of what is paid) won with
//! the probability that makes up the difference. The payee credits each good ticket's
//! expected value, keeps the winners to redeem, and commits to a new value whenever it hands
//! winners over to be redeemed (redeeming makes the value public). A ticket refused as stale
//! is paid again on the new terms: `Payer::delivered` with its bytes.
//!
//! No IO, no randomness: the payee's secret values derive from a seed its caller draws, and the
//! sender's funds come from the chain through the caller (checked against a state proof).
//!
//! [`protocol`] is how the two sides talk (`/kinema/tickets/1`), and its [`Ledger`] both sides
//! of one node, as a state machine its caller drives.

pub mod protocol;

pub use protocol::{Account, Ledger, Refusal, Step, TicketReply, TicketRequest};

use std::collections::HashMap;

pub use kinema_contracts::tickets::{
    Claim, MAX_TICKET_LIFE, MIN_FACE_VALUE, RedeemArgs, Sender, SignedTicket, Ticket,
    expected_value, sender_key,
};
use kinema_contracts::tickets::{claim_bytes, ticket_hash, win_prob_for, wins};

use crate::crypto::{Domain, SecretKey};
use crate::{Address, PublicKey, Signature};

/// Verified bytes a viewer pays one ticket for.
pub const BYTES_PER_TICKET: u64 = 256 << 10;
/// Blocks a payee's terms last; it renews them before they run out.
pub const TERMS_LIFE: u64 = MAX_TICKET_LIFE / 2;
/// Senders a payee remembers the last nonce of under one committed value; past that it
/// commits to a new value (which voids every older ticket) and starts again.
pub const MAX_SENDERS: usize = 1024;
/// Winning tickets a payee holds unredeemed; past that it takes no ticket until it redeems.
pub const MAX_WINNERS: usize = 64;
/// Peers a payer owes bytes to at once.
pub const MAX_PAYEES: usize = 256;

/// Why a ticket or terms were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    /// The ticket does not follow the payee's current terms (stale, or another's).
    #[error("the ticket does not follow the current terms: {0}")]
    Terms(&'static str),
    /// The signature is not the sender's.
    #[error("the ticket's signature is not its sender's")]
    Signature,
    /// A nonce at or below one already taken from this sender.
    #[error("nonce {nonce} is not above {last}, the last taken from this sender")]
    Replayed {
        /// The ticket's.
        nonce: u64,
        /// The last one taken.
        last: u64,
    },
    /// The sender could not pay the ticket if it won.
    #[error("the sender cannot cover the face value {face}: {why}")]
    Unfunded {
        /// The face value.
        face: u64,
        /// What the chain shows.
        why: String,
    },
    /// The payee holds [`MAX_WINNERS`] winners to redeem first.
    #[error("{MAX_WINNERS} winning tickets wait to be redeemed")]
    RedeemFirst,
    /// Terms a payer will not sign tickets for.
    #[error("the terms {0}")]
    BadTerms(String),
    /// A payer owes [`MAX_PAYEES`] peers already.
    #[error("already paying {MAX_PAYEES} peers")]
    TooManyPayees,
}

/// What a payee asks of the tickets it takes.
#[derive(
    Debug,
    Clone,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    borsh::BorshSerialize,
    borsh::BorshDeserialize,
)]
pub struct Terms {
    /// Whom tickets pay.
    pub recipient: Address,
    /// Each ticket's face value.
    pub face_value: u64,
    /// Each ticket's win probability, of 2^64.
    pub win_prob: u64,
    /// blake3 of the payee's current secret value.
    pub rand_hash: crate::Hash,
    /// The last height a ticket on these terms can be redeemed at.
    pub expires: u64,
}

/// The face value and win probability that make a ticket for [`BYTES_PER_TICKET`] bytes worth
/// `price_per_mib` per MiB on average. None when the price is zero.
pub fn face_and_odds(price_per_mib: u64) -> Option<(u64, u64)> {
    let expected = price_per_mib.checked_mul(BYTES_PER_TICKET >> 10)? >> 10;
    if expected == 0 {
        return None;
    }
    let face = MIN_FACE_VALUE.max(expected.saturating_add(1));
    Some((face, win_prob_for(expected, face)?))
}

fn blake3(bytes: &[u8]) -> [u8; 32] {
    *blake3::hash(bytes).as_bytes()
}

/// A serving peer's side: its terms, the tickets it took, its winners.
#[derive(Debug)]
pub struct Payee {
    key: SecretKey,
    seed: [u8; 32],
    round: u64,
    rand: [u8; 32],
    terms: Terms,
    last_nonce: HashMap<Address, u64>,
    winners: Vec<RedeemArgs>,
    credited: u64,
}

impl Payee {
    /// A payee paid to `key`'s address at `price_per_mib`, its secret values derived from
    /// `seed` (32 bytes from a CSPRNG), at chain height `now`. None when the price is zero.
    pub fn new(key: SecretKey, seed: [u8; 32], price_per_mib: u64, now: u64) -> Option<Self> {
        let (face_value, win_prob) = face_and_odds(price_per_mib)?;
        let terms = Terms {
            recipient: key.address(),
            face_value,
            win_prob,
            rand_hash: crate::Hash::ZERO,
            expires: 0,
        };
        let mut payee = Self {
            key,
            seed,
            round: 0,
            rand: [0; 32],
            terms,
            last_nonce: HashMap::new(),
            winners: Vec::new(),
            credited: 0,
        };
        payee.commit(now);
        Some(payee)
    }

    /// Commits to the next secret value: every ticket on older terms is void from now on.
    fn commit(&mut self, now: u64) {
        self.round += 1;
        self.rand = blake3(&[self.seed.as_slice(), &self.round.to_le_bytes()].concat());
        self.terms.rand_hash = crate::Hash(blake3(&self.rand));
        self.terms.expires = now.saturating_add(TERMS_LIFE);
        self.last_nonce.clear();
    }

    /// The terms tickets must follow now (renewed when less than half their life is left).
    pub fn terms(&mut self, now: u64) -> &Terms {
        if self.terms.expires.saturating_sub(now) < TERMS_LIFE / 2 {
            self.commit(now);
        }
        &self.terms
    }

    /// Takes a ticket at height `now` from a sender whose funds on chain are `funds`, and
    /// returns what it is worth (its expected value).
    pub fn accept(
        &mut self,
        signed: &SignedTicket,
        funds: Option<&Sender>,
        now: u64,
    ) -> Result<u64, TicketError> {
        let t = &signed.ticket;
        let terms = &self.terms;
        if t.recipient != terms.recipient.0 {
            return Err(TicketError::Terms("another recipient"));
        }
        if t.rand_hash != terms.rand_hash.0 || t.expires != terms.expires {
            return Err(TicketError::Terms("stale: ask for the terms again"));
        }
        if (t.face_value, t.win_prob) != (terms.face_value, terms.win_prob) {
            return Err(TicketError::Terms("another face value or win probability"));
        }
        if t.expires < now {
            return Err(TicketError::Terms("expired"));
        }
        let key = PublicKey(signed.key);
        if Address::of(&key).0 != t.sender {
            return Err(TicketError::Signature);
        }
        let bytes = borsh::to_vec(t).map_err(|_| TicketError::Signature)?;
        key.verify(Domain::Ticket, &bytes, &Signature(signed.signature))
            .map_err(|_| TicketError::Signature)?;
        let sender = Address(t.sender);
        if let Some(&last) = self.last_nonce.get(&sender)
            && t.nonce <= last
        {
            return Err(TicketError::Replayed { nonce: t.nonce, last });
        }
        let unfunded = |why: String| Err(TicketError::Unfunded { face: t.face_value, why });
        match funds {
            None => return unfunded("it has no ticket funds".into()),
            Some(Sender { unlocks_at: Some(at), .. }) => {
                return unfunded(format!("it is unlocking (at height {at})"));
            }
            Some(f) if f.deposit.saturating_add(f.reserve) < t.face_value => {
                return unfunded(format!("deposit {} and reserve {}", f.deposit, f.reserve));
            }
            Some(_) => {}
        }
        let won = wins(blake3, &signed.signature, &self.rand, t.win_prob);
        if won && self.winners.len() >= MAX_WINNERS {
            return Err(TicketError::RedeemFirst);
        }
        if self.last_nonce.len() >= MAX_SENDERS && !self.last_nonce.contains_key(&sender) {
            // Too many senders to remember: void every ticket so far and start again. This
            // one was made for the old value, so it is refused too.
            self.commit(now);
            return Err(TicketError::Terms("stale: ask for the terms again"));
        }
        self.last_nonce.insert(sender, t.nonce);
        let value = t.expected_value();
        self.credited = self.credited.saturating_add(value);
        if won {
            self.winners.push(RedeemArgs { ticket: signed.clone(), rand: self.rand, claim: None });
        }
        Ok(value)
    }

    /// What the tickets taken so far are worth, added.
    pub fn credited(&self) -> u64 {
        self.credited
    }

    /// The winning tickets held, handed over to be redeemed at height `now`. Redeeming
    /// reveals the secret value, with which a sender could sign only losing tickets, so the
    /// payee commits to a new one first: tickets on the old terms are refused from now on
    /// (their payer pays those bytes again on the new terms).
    pub fn take_winners(&mut self, now: u64) -> Vec<RedeemArgs> {
        if !self.winners.is_empty() {
            self.commit(now);
        }
        std::mem::take(&mut self.winners)
    }

    /// What the winners held now would pay, added.
    pub fn winnings(&self) -> (usize, u64) {
        let face = self.winners.iter().map(|w| w.ticket.ticket.face_value);
        (self.winners.len(), face.fold(0, u64::saturating_add))
    }

    /// Signs the recipient's leave for `payee` to redeem `args`'s ticket and be paid (a tab's
    /// ephemeral key handing its winnings to a wallet).
    pub fn claim_for(&self, args: &mut RedeemArgs, payee: Address) {
        claim(&self.key, args, payee);
    }
}

/// Signs, with the ticket's recipient's `key`, the leave for `payee` to redeem `args`'s ticket
/// and be paid.
pub fn claim(key: &SecretKey, args: &mut RedeemArgs, payee: Address) {
    let id = ticket_hash(blake3, &args.ticket.ticket);
    let signature = key.sign(Domain::TicketClaim, &claim_bytes(&id, &payee.0));
    args.claim = Some(Claim { key: key.public().0, signature: signature.0 });
}

/// A viewer's side: what it owes each peer that delivered, and the tickets that pay it.
#[derive(Debug)]
pub struct Payer {
    key: SecretKey,
    price_per_mib: u64,
    nonce: u64,
    owed: HashMap<Address, u64>,
}

impl Payer {
    /// A payer signing with `key` at the advertised `price_per_mib`; `nonce` starts above any
    /// it used before (a tab counts from the time in milliseconds, say).
    pub fn new(key: SecretKey, price_per_mib: u64, nonce: u64) -> Self {
        Self { key, price_per_mib, nonce, owed: HashMap::new() }
    }

    /// Records `bytes` that arrived from the peer and checked out, and returns the tickets
    /// now due to it on its `terms` (one per [`BYTES_PER_TICKET`]); terms that ask for more
    /// than the price, or that would not last, are refused and nothing is signed.
    pub fn delivered(
        &mut self,
        terms: &Terms,
        bytes: u64,
        now: u64,
    ) -> Result<Vec<SignedTicket>, TicketError> {
        let fair = face_and_odds(self.price_per_mib)
            .ok_or_else(|| TicketError::BadTerms("cannot be met at a price of 0".into()))?;
        let fair = expected_value(fair.0, fair.1);
        if expected_value(terms.face_value, terms.win_prob) > fair {
            return Err(TicketError::BadTerms(format!("ask more than {fair} a ticket")));
        }
        if terms.expires < now || terms.expires > now.saturating_add(MAX_TICKET_LIFE) {
            return Err(TicketError::BadTerms(format!(
                "expire at {}, now is {now}",
                terms.expires
            )));
        }
        if self.owed.len() >= MAX_PAYEES && !self.owed.contains_key(&terms.recipient) {
            return Err(TicketError::TooManyPayees);
        }
        let owed = self.owed.entry(terms.recipient).or_default();
        *owed = owed.saturating_add(bytes);
        let mut tickets = Vec::new();
        while *owed >= BYTES_PER_TICKET {
            *owed -= BYTES_PER_TICKET;
            self.nonce += 1;
            let ticket = Ticket {
                sender: self.key.address().0,
                recipient: terms.recipient.0,
                face_value: terms.face_value,
                win_prob: terms.win_prob,
                nonce: self.nonce,
                rand_hash: terms.rand_hash.0,
                expires: terms.expires,
            };
            let bytes = borsh::to_vec(&ticket).unwrap_or_default();
            let signature = self.key.sign(Domain::Ticket, &bytes).0;
            tickets.push(SignedTicket { ticket, key: self.key.public().0, signature });
        }
        Ok(tickets)
    }

    /// Forgets a peer (one that went away or was dropped for a bad group): what it was owed
    /// under a whole ticket is not paid.
    pub fn forget(&mut self, peer: &Address) {
        self.owed.remove(peer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kinema_contracts::accounts::{self, Account};
    use kinema_contracts::tickets::{self as contract, FundArgs};
    use kinema_contracts::{Host, MemoryHost, read_value, write_value};

    /// A price at which a ticket wins one time in 8.
    const PRICE: u64 = MIN_FACE_VALUE / 8 * 4;

    fn chain(viewer: &SecretKey, deposit: u64) -> MemoryHost {
        let mut host = MemoryHost { caller: viewer.address().0, height: 10, ..Default::default() };
        let account = Account { balance: deposit, ..Default::default() };
        write_value(&mut host, &accounts::key(&viewer.address().0), &account);
        contract::fund(&mut host, &FundArgs { deposit, reserve: 0 }).unwrap();
        host
    }

    fn funds(host: &MemoryHost, who: &SecretKey) -> Option<Sender> {
        contract::sender(host, &who.address().0).unwrap()
    }

    fn balance(host: &MemoryHost, who: Address) -> u64 {
        read_value::<Account>(host, &accounts::key(&who.0)).unwrap().unwrap_or_default().balance
    }

    fn redeem(host: &mut MemoryHost, caller: Address, args: &RedeemArgs) {
        host.caller = caller.0;
        contract::redeem(host, args).unwrap();
    }

    #[test]
    fn bytes_delivered_are_paid_in_tickets_worth_the_price_and_winners_redeem_on_chain() {
        let (viewer, peer) = (SecretKey::from_seed([1; 32]), SecretKey::from_seed([2; 32]));
        let mut host = chain(&viewer, 1_000 * MIN_FACE_VALUE);
        let mut payee = Payee::new(peer.clone(), [3; 32], PRICE, host.height).unwrap();
        let mut payer = Payer::new(viewer.clone(), PRICE, 0);
        assert_eq!(payee.terms(10).win_prob, 1 << 61, "one in 8");

        // 100 MiB in 1 MiB pieces, paid as they arrive; winners redeemed every 8 MiB, and
        // what was in flight then is paid again on the new terms: 400 tickets taken.
        let (mut tickets, mut winners, mut stale) = (0, 0, 0);
        let mut terms = payee.terms(host.height).clone();
        for piece in 0..100 {
            let mut due: std::collections::VecDeque<_> =
                payer.delivered(&terms, 1 << 20, host.height).unwrap().into();
            if piece % 8 == 7 {
                for w in payee.take_winners(host.height) {
                    redeem(&mut host, peer.address(), &w);
                    winners += 1;
                }
            }
            while let Some(t) = due.pop_front() {
                match payee.accept(&t, funds(&host, &viewer).as_ref(), host.height) {
                    Ok(_) => tickets += 1,
                    Err(TicketError::Terms(_)) => {
                        stale += 1;
                        terms = payee.terms(host.height).clone();
                        due.extend(payer.delivered(&terms, BYTES_PER_TICKET, host.height).unwrap());
                    }
                    Err(e) => panic!("{e}"),
                }
            }
            host.height += 1;
        }
        for w in payee.take_winners(host.height) {
            redeem(&mut host, peer.address(), &w);
            winners += 1;
        }
        assert_eq!(tickets, 400);
        assert!(stale > 0, "winners were redeemed while tickets were in flight");
        assert_eq!(payee.credited(), 100 * PRICE, "credited at the price, to the unit");
        let paid = balance(&host, peer.address());
        assert_eq!(paid, winners * MIN_FACE_VALUE);
        // Binomial(400, 1/8): 50 winners expected, sd 6.6; ±4 sd.
        assert!((24..=77).contains(&winners), "{winners} winners of 400");
    }

    #[test]
    fn a_payee_refuses_replays_forgeries_stale_terms_and_unfunded_senders() {
        let (viewer, peer) = (SecretKey::from_seed([1; 32]), SecretKey::from_seed([2; 32]));
        let host = chain(&viewer, 10 * MIN_FACE_VALUE);
        let f = funds(&host, &viewer);
        let mut payee = Payee::new(peer.clone(), [3; 32], PRICE, 10).unwrap();
        let mut payer = Payer::new(viewer.clone(), PRICE, 0);
        let terms = payee.terms(10).clone();
        let mut tickets = payer.delivered(&terms, 3 * BYTES_PER_TICKET, 10).unwrap().into_iter();
        let first = tickets.next().unwrap();

        let mut forged = first.clone();
        forged.ticket.nonce += 100;
        assert_eq!(payee.accept(&forged, f.as_ref(), 10), Err(TicketError::Signature));
        let mut greedy = first.clone();
        greedy.ticket.win_prob = u64::MAX;
        assert!(matches!(payee.accept(&greedy, f.as_ref(), 10), Err(TicketError::Terms(_))));
        let unlocking = Sender { unlocks_at: Some(2_000), ..f.clone().unwrap() };
        assert!(matches!(
            payee.accept(&first, Some(&unlocking), 10),
            Err(TicketError::Unfunded { .. })
        ));
        assert!(matches!(payee.accept(&first, None, 10), Err(TicketError::Unfunded { .. })));
        let short = Sender { deposit: MIN_FACE_VALUE - 1, ..f.clone().unwrap() };
        assert!(matches!(
            payee.accept(&first, Some(&short), 10),
            Err(TicketError::Unfunded { .. })
        ));

        let second = tickets.next().unwrap();
        payee.accept(&second, f.as_ref(), 10).unwrap();
        // The first, older nonce comes too late; the second cannot come twice.
        assert!(matches!(payee.accept(&first, f.as_ref(), 10), Err(TicketError::Replayed { .. })));
        assert!(matches!(payee.accept(&second, f.as_ref(), 10), Err(TicketError::Replayed { .. })));

        // Terms renew before they run out; tickets on the old ones are void.
        let later = 10 + TERMS_LIFE / 2 + 1;
        assert_ne!(payee.terms(later).rand_hash, terms.rand_hash);
        let third = tickets.next().unwrap();
        assert!(matches!(payee.accept(&third, f.as_ref(), later), Err(TicketError::Terms(_))));

        // A payer signs nothing on terms that ask more than the price or outlive the limit.
        let dear = Terms { win_prob: terms.win_prob * 2, ..terms.clone() };
        assert!(matches!(payer.delivered(&dear, 1 << 20, 10), Err(TicketError::BadTerms(_))));
        let long = Terms { expires: 10 + MAX_TICKET_LIFE + 1, ..terms.clone() };
        assert!(matches!(payer.delivered(&long, 1 << 20, 10), Err(TicketError::BadTerms(_))));
    }

    #[test]
    fn a_flood_of_senders_voids_the_old_terms_instead_of_growing() {
        let peer = SecretKey::from_seed([2; 32]);
        let price = PRICE / 1_000;
        let mut payee = Payee::new(peer, [3; 32], price, 10).unwrap();
        let rich = Sender { deposit: u64::MAX / 2, reserve: 0, unlocks_at: None };
        let terms = payee.terms(10).clone();
        let mut refused = 0;
        for i in 0..=MAX_SENDERS as u32 + 1 {
            let mut seed = [0; 32];
            seed[..4].copy_from_slice(&i.to_le_bytes());
            let mut payer = Payer::new(SecretKey::from_seed(seed), price, 0);
            let t = &payer.delivered(&terms, BYTES_PER_TICKET, 10).unwrap()[0];
            match payee.accept(t, Some(&rich), 10) {
                Ok(_) => {}
                Err(TicketError::Terms(_)) => refused += 1,
                Err(e) => panic!("{e}"),
            }
            assert!(payee.last_nonce.len() <= MAX_SENDERS);
        }
        // The sender past the table voided the terms; the next one, on the old terms, is stale.
        assert_eq!(refused, 2);
        assert_ne!(payee.terms(10).rand_hash, terms.rand_hash);
    }

    #[test]
    fn an_ephemeral_tab_claims_its_winnings_into_a_wallet() {
        let viewer = SecretKey::from_seed([1; 32]);
        let (tab, wallet) = (SecretKey::from_seed([4; 32]), SecretKey::from_seed([5; 32]));
        let mut host = chain(&viewer, 20 * MIN_FACE_VALUE);
        // Priced so that every ticket wins: expected value just under the face value.
        let price = (MIN_FACE_VALUE - 1) * 4;
        let mut payee = Payee::new(tab.clone(), [6; 32], price, 10).unwrap();
        let mut payer = Payer::new(viewer.clone(), price, 0);
        let terms = payee.terms(10).clone();
        let mut won = Vec::new();
        for _ in 0..20 {
            let terms = payee.terms(10).clone();
            let t = &payer.delivered(&terms, BYTES_PER_TICKET, 10).unwrap()[0];
            payee.accept(t, funds(&host, &viewer).as_ref(), 10).unwrap();
            won.extend(payee.take_winners(10));
        }
        assert!(!won.is_empty(), "{terms:?}");
        for mut w in won.clone() {
            payee.claim_for(&mut w, wallet.address());
            redeem(&mut host, wallet.address(), &w);
        }
        assert_eq!(balance(&host, wallet.address()), won.len() as u64 * terms.face_value);
        assert_eq!(balance(&host, tab.address()), 0);
        assert_eq!(host.hash(b""), *blake3::hash(b"").as_bytes());
    }
}
