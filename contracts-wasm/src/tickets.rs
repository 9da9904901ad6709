//! Bandwidth paid in probabilistic micropayment tickets: a viewer pays the peers that deliver
//! segments to it with signed tickets that each win a large face value with a small
//! probability, so only winners reach the chain and the fees stay a sliver of what is paid.
//!
//! **A sender** ([`fund`]) puts a deposit and a reserve here. Winning tickets are paid from the
//! deposit; when it runs short the reserve makes up the rest, and when both together cannot
//! cover a ticket's face value the redemption is refused whole — nobody is ever paid part of a
//! ticket. Leaving takes [`UNLOCK_BLOCKS`] ([`unlock`], then [`withdraw`]), longer than any
//! ticket lives ([`MAX_TICKET_LIFE`]), so a recipient that took a ticket from a sender who was
//! not unlocking can always redeem it while it lasts.
//!
//! **A ticket** ([`Ticket`]) names its sender, recipient, face value, win probability, a nonce,
//! the blake3 of a random value the recipient committed to (and keeps secret until it redeems)
//! and the last height it can be redeemed at. The sender signs it (domain [`TICKET_DOMAIN`]);
//! it wins when blake3 of the signature and the recipient's value falls under the win
//! probability ([`wins`]). Neither side alone can steer that: the sender does not know the
//! value, the recipient cannot change the signature (ed25519 signing is deterministic, and the
//! contract checks it strictly).
//!
//! **Redeeming** ([`redeem`]) reveals the value; a ticket is paid once ([`used_key`]). The
//! recipient redeems, or anyone it signed a claim for (domain [`CLAIM_DOMAIN`]): a browser tab
//! with no wallet earns under an ephemeral key and later claims what it won into a wallet that
//! pays the fee. What each payee was paid adds up under [`earned_key`].
//!
//! Fees: a redemption burns at most [`REDEEM_FUEL`] fuel (measured in wasm by the node's
//! tests), so a face value of at least [`MIN_FACE_VALUE`] keeps the fees under 1 % of what is
//! paid: per unit paid, a winner costs `fee / face`, whatever the win probability.

use borsh::{BorshDeserialize, BorshSerialize};

use crate::{Address, Host, Refusal, accounts, read_value, write_value};

/// The signature domain of a ticket (its sender's key signs `TICKET_DOMAIN || 0 || borsh(ticket)`).
pub const TICKET_DOMAIN: &[u8] = b"kinema/ticket/v1";
/// The signature domain of a claim (the recipient's key signs
/// `CLAIM_DOMAIN || 0 || borsh((ticket hash, payee))`).
pub const CLAIM_DOMAIN: &[u8] = b"kinema/ticket-claim/v1";
/// Blocks a ticket may live past the height its recipient accepts it at; recipients refuse
/// longer-lived ones.
pub const MAX_TICKET_LIFE: u64 = 1_000;
/// Blocks between [`unlock`] and [`withdraw`]: longer than any ticket lives.
pub const UNLOCK_BLOCKS: u64 = MAX_TICKET_LIFE + 100;
/// The most fuel one redemption burns (its fee), claim included; the node's tests measure it.
pub const REDEEM_FUEL: u64 = 250_000;
/// The least face value that keeps the redemption fee at most 1 % of what a ticket pays.
pub const MIN_FACE_VALUE: u64 = 100 * REDEEM_FUEL;

/// A sender's funds, stored under [`sender_key`].
#[derive(Debug, Clone, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Sender {
    /// What winning tickets are paid from first.
    pub deposit: u64,
    /// What makes up a winning ticket the deposit cannot cover.
    pub reserve: u64,
    /// The height from which [`withdraw`] returns both, once the sender asked to leave.
    pub unlocks_at: Option<u64>,
}

/// A probabilistic payment.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Ticket {
    /// Who pays: the address of the key that signs it.
    pub sender: Address,
    /// Who is paid.
    pub recipient: Address,
    /// What a winning ticket pays.
    pub face_value: u64,
    /// The chance it wins, as a fraction of 2^64 ([`wins`]).
    pub win_prob: u64,
    /// Makes each of a sender's tickets to one committed value a different one.
    pub nonce: u64,
    /// blake3 of the recipient's secret random value.
    pub rand_hash: [u8; 32],
    /// The last height at which it can be redeemed.
    pub expires: u64,
}

impl Ticket {
    /// What the ticket is worth on average: its face value times its win probability.
    pub fn expected_value(&self) -> u64 {
        expected_value(self.face_value, self.win_prob)
    }
}

/// A ticket with its sender's public key and signature.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SignedTicket {
    /// The ticket.
    pub ticket: Ticket,
    /// The sender's ed25519 public key.
    pub key: [u8; 32],
    /// Its signature of the ticket.
    pub signature: [u8; 64],
}

/// The recipient's leave for someone else to redeem a ticket and be paid.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Claim {
    /// The recipient's ed25519 public key.
    pub key: [u8; 32],
    /// Its signature of `(ticket hash, payee)`.
    pub signature: [u8; 64],
}

/// Arguments of [`fund`]: what the caller adds to its deposit and its reserve.
#[derive(Debug, Clone, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct FundArgs {
    /// Added to the deposit.
    pub deposit: u64,
    /// Added to the reserve.
    pub reserve: u64,
}

/// Arguments of [`redeem`].
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct RedeemArgs {
    /// The winning ticket.
    pub ticket: SignedTicket,
    /// The recipient's random value (its blake3 is the ticket's `rand_hash`).
    pub rand: [u8; 32],
    /// When the caller is not the recipient: the recipient's claim for the caller.
    pub claim: Option<Claim>,
}

/// What a payee was paid by tickets, stored under [`earned_key`].
#[derive(Debug, Clone, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Earned {
    /// Tickets redeemed.
    pub tickets: u64,
    /// Their face values, added.
    pub amount: u64,
}

/// Where a sender's funds live.
pub fn sender_key(sender: &Address) -> Vec<u8> {
    [b"tickets/sender/".as_slice(), sender].concat()
}

/// Where a redeemed ticket is marked, under its hash.
pub fn used_key(ticket_hash: &[u8; 32]) -> Vec<u8> {
    [b"tickets/used/".as_slice(), ticket_hash].concat()
}

/// Where what a payee earned adds up.
pub fn earned_key(payee: &Address) -> Vec<u8> {
    [b"tickets/earned/".as_slice(), payee].concat()
}

/// `domain || 0 || bytes`: what a key signs (kinema-chain's signature format).
pub fn signed_message(domain: &[u8], bytes: &[u8]) -> Vec<u8> {
    [domain, &[0], bytes].concat()
}

/// The ticket's hash: blake3 of its borsh encoding.
pub fn ticket_hash(hash: impl Fn(&[u8]) -> [u8; 32], ticket: &Ticket) -> [u8; 32] {
    hash(&borsh::to_vec(ticket).unwrap_or_default())
}

/// What a recipient's claim signs: the ticket's hash and who is to be paid.
pub fn claim_bytes(ticket_hash: &[u8; 32], payee: &Address) -> Vec<u8> {
    borsh::to_vec(&(ticket_hash, payee)).unwrap_or_default()
}

/// The address a public key signs for: the first 20 bytes of its blake3.
pub fn address_of(hash: impl Fn(&[u8]) -> [u8; 32], key: &[u8; 32]) -> Address {
    let digest = hash(key);
    let mut address = [0; 20];
    address.copy_from_slice(&digest[..20]);
    address
}

/// Whether a ticket with this signature wins, given the recipient's value: the first 8 bytes
/// of blake3(signature || rand), little-endian, fall under `win_prob`.
pub fn wins(
    hash: impl Fn(&[u8]) -> [u8; 32],
    signature: &[u8; 64],
    rand: &[u8; 32],
    win_prob: u64,
) -> bool {
    let digest = hash(&[signature.as_slice(), rand].concat());
    let draw = u64::from_le_bytes(digest[..8].try_into().unwrap_or_default());
    draw < win_prob
}

/// What a ticket of `face_value` that wins with `win_prob` (of 2^64) is worth on average,
/// rounded down.
pub fn expected_value(face_value: u64, win_prob: u64) -> u64 {
    ((u128::from(face_value) * u128::from(win_prob)) >> 64) as u64
}

/// The win probability that makes a ticket of `face_value` worth `expected` on average
/// (rounded up, so a sender never pays less than it owes): `expected / face_value` of 2^64.
/// None when `expected` is not less than `face_value` (send the face value itself instead).
pub fn win_prob_for(expected: u64, face_value: u64) -> Option<u64> {
    if expected >= face_value {
        return None;
    }
    let p = (u128::from(expected) << 64).div_ceil(u128::from(face_value));
    u64::try_from(p).ok()
}

/// A sender's funds.
pub fn sender(host: &impl Host, address: &Address) -> Result<Option<Sender>, Refusal> {
    read_value(host, &sender_key(address))
}

/// What a payee was paid by tickets.
pub fn earned(host: &impl Host, payee: &Address) -> Result<Earned, Refusal> {
    Ok(read_value(host, &earned_key(payee))?.unwrap_or_default())
}

fn refuse<T>(why: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal(why.into()))
}

/// Adds to the caller's deposit and reserve from its balance; a sender that was unlocking
/// stays (its unlock is cancelled).
pub fn fund(host: &mut impl Host, args: &FundArgs) -> Result<(), Refusal> {
    let who = host.caller();
    let total = args
        .deposit
        .checked_add(args.reserve)
        .ok_or_else(|| Refusal("deposit and reserve overflow".into()))?;
    if total == 0 {
        return refuse("nothing to fund: deposit and reserve are both 0");
    }
    let mut funds = sender(host, &who)?.unwrap_or_default();
    funds.deposit = funds
        .deposit
        .checked_add(args.deposit)
        .ok_or_else(|| Refusal("the deposit would overflow".into()))?;
    funds.reserve = funds
        .reserve
        .checked_add(args.reserve)
        .ok_or_else(|| Refusal("the reserve would overflow".into()))?;
    funds.unlocks_at = None;
    accounts::debit(host, &who, total, "to fund tickets with")?;
    write_value(host, &sender_key(&who), &funds);
    Ok(())
}

/// Starts the caller's way out: its deposit and reserve can be withdrawn [`UNLOCK_BLOCKS`]
/// from now; its tickets are paid until then.
pub fn unlock(host: &mut impl Host) -> Result<(), Refusal> {
    let who = host.caller();
    let Some(mut funds) = sender(host, &who)? else {
        return refuse("no ticket funds to unlock");
    };
    if let Some(at) = funds.unlocks_at {
        return refuse(format!("already unlocking: withdrawable at height {at}"));
    }
    let at = host.height().saturating_add(UNLOCK_BLOCKS);
    funds.unlocks_at = Some(at);
    write_value(host, &sender_key(&who), &funds);
    Ok(())
}

/// Returns an unlocked sender's deposit and reserve to its balance.
pub fn withdraw(host: &mut impl Host) -> Result<(), Refusal> {
    let who = host.caller();
    let Some(funds) = sender(host, &who)? else {
        return refuse("no ticket funds to withdraw");
    };
    match funds.unlocks_at {
        None => return refuse("not unlocking: unlock first, then wait UNLOCK_BLOCKS"),
        Some(at) if at > host.height() => {
            return refuse(format!("still locked until height {at}"));
        }
        Some(_) => {}
    }
    host.remove(&sender_key(&who));
    accounts::credit(host, &who, funds.deposit.saturating_add(funds.reserve))
}

/// Pays a winning ticket's face value to its recipient (or to the caller, by the recipient's
/// claim), once, from the sender's deposit and then its reserve.
pub fn redeem(host: &mut impl Host, args: &RedeemArgs) -> Result<(), Refusal> {
    let SignedTicket { ticket, key, signature } = &args.ticket;
    let hash = |bytes: &[u8]| host.hash(bytes);
    if ticket.expires < host.height() {
        return refuse(format!("the ticket expired at height {}", ticket.expires));
    }
    if address_of(hash, key) != ticket.sender {
        return refuse("the ticket's key is not its sender's");
    }
    let encoded = borsh::to_vec(ticket).unwrap_or_default();
    if !host.verify(key, &signed_message(TICKET_DOMAIN, &encoded), signature) {
        return refuse("the sender's signature does not verify");
    }
    if host.hash(&args.rand) != ticket.rand_hash {
        return refuse("the revealed value is not the one the ticket commits to");
    }
    if !wins(hash, signature, &args.rand, ticket.win_prob) {
        return refuse("the ticket did not win");
    }
    let id = host.hash(&encoded);
    if host.read(&used_key(&id)).is_some() {
        return refuse("the ticket was already redeemed");
    }
    let caller = host.caller();
    let payee = if caller == ticket.recipient {
        caller
    } else {
        let Some(claim) = &args.claim else {
            return refuse("only the recipient, or whom it signed a claim for, may redeem");
        };
        if address_of(hash, &claim.key) != ticket.recipient {
            return refuse("the claim's key is not the recipient's");
        }
        let message = signed_message(CLAIM_DOMAIN, &claim_bytes(&id, &caller));
        if !host.verify(&claim.key, &message, &claim.signature) {
            return refuse("the recipient's claim does not verify for this caller");
        }
        caller
    };
    let Some(mut funds) = sender(host, &ticket.sender)? else {
        return refuse("the sender has no ticket funds");
    };
    let face = ticket.face_value;
    let from_deposit = face.min(funds.deposit);
    let from_reserve = face - from_deposit;
    if from_reserve > funds.reserve {
        return refuse(format!(
            "the sender's deposit {} and reserve {} cannot cover the face value {face}: nothing paid",
            funds.deposit, funds.reserve
        ));
    }
    funds.deposit -= from_deposit;
    funds.reserve -= from_reserve;
    write_value(host, &sender_key(&ticket.sender), &funds);
    host.write(&used_key(&id), &[1]);
    let mut total = earned(host, &payee)?;
    total.tickets = total.tickets.saturating_add(1);
    total.amount = total.amount.saturating_add(face);
    write_value(host, &earned_key(&payee), &total);
    accounts::credit(host, &payee, face)?;
    let event = (b"ticket", ticket.sender, ticket.recipient, payee, face, from_reserve);
    host.emit(&borsh::to_vec(&event).unwrap_or_default());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryHost;
    use crate::accounts::Account;
    use ed25519_dalek::{Signer, SigningKey};

    const FACE: u64 = MIN_FACE_VALUE;

    struct Party {
        key: SigningKey,
    }

    impl Party {
        fn new(seed: u8) -> Self {
            Self { key: SigningKey::from_bytes(&[seed; 32]) }
        }

        fn public(&self) -> [u8; 32] {
            self.key.verifying_key().to_bytes()
        }

        fn address(&self) -> Address {
            address_of(|b| *blake3::hash(b).as_bytes(), &self.public())
        }

        fn sign(&self, domain: &[u8], bytes: &[u8]) -> [u8; 64] {
            self.key.sign(&signed_message(domain, bytes)).to_bytes()
        }

        fn ticket(&self, ticket: Ticket) -> SignedTicket {
            let signature = self.sign(TICKET_DOMAIN, &borsh::to_vec(&ticket).unwrap());
            SignedTicket { ticket, key: self.public(), signature }
        }

        fn claim(&self, ticket: &Ticket, payee: &Address) -> Claim {
            let id = ticket_hash(|b| *blake3::hash(b).as_bytes(), ticket);
            Claim {
                key: self.public(),
                signature: self.sign(CLAIM_DOMAIN, &claim_bytes(&id, payee)),
            }
        }
    }

    fn balance(host: &MemoryHost, who: &Address) -> u64 {
        read_value::<Account>(host, &accounts::key(who)).unwrap().unwrap_or_default().balance
    }

    fn setup(deposit: u64, reserve: u64) -> (MemoryHost, Party, Party, [u8; 32]) {
        let (viewer, peer) = (Party::new(1), Party::new(2));
        let mut host = MemoryHost { caller: viewer.address(), height: 10, ..Default::default() };
        let account = Account { balance: 10 * FACE, ..Default::default() };
        write_value(&mut host, &accounts::key(&viewer.address()), &account);
        fund(&mut host, &FundArgs { deposit, reserve }).unwrap();
        (host, viewer, peer, [7; 32])
    }

    fn ticket(viewer: &Party, peer: &Party, rand: &[u8; 32], nonce: u64, win_prob: u64) -> Ticket {
        Ticket {
            sender: viewer.address(),
            recipient: peer.address(),
            face_value: FACE,
            win_prob,
            nonce,
            rand_hash: *blake3::hash(rand).as_bytes(),
            expires: 100,
        }
    }

    /// Runs `f` as `who` like a transaction: its writes stay only when it succeeds.
    fn call(
        host: &mut MemoryHost,
        who: Address,
        f: impl FnOnce(&mut MemoryHost) -> Result<(), Refusal>,
    ) -> Result<(), Refusal> {
        let mut scratch = host.clone();
        scratch.caller = who;
        f(&mut scratch)?;
        *host = scratch;
        Ok(())
    }

    #[test]
    fn a_winning_ticket_pays_its_recipient_once_and_nothing_else_pays() {
        let (mut host, viewer, peer, rand) = setup(2 * FACE, FACE);
        let good = viewer.ticket(ticket(&viewer, &peer, &rand, 1, u64::MAX));
        let redeem_as = |host: &mut MemoryHost, who: Address, args: RedeemArgs| {
            call(host, who, |h| redeem(h, &args))
        };
        let args = |ticket: &SignedTicket, rand: [u8; 32]| RedeemArgs {
            ticket: ticket.clone(),
            rand,
            claim: None,
        };

        // Forgeries and wrong reveals first: none of them changes anything.
        let before = host.state.clone();
        let mut forged = good.clone();
        forged.ticket.face_value *= 2;
        let why = redeem_as(&mut host, peer.address(), args(&forged, rand)).unwrap_err();
        assert!(why.0.contains("signature does not verify"), "{why:?}");
        let mut stolen = good.clone();
        stolen.key = peer.public();
        let why = redeem_as(&mut host, peer.address(), args(&stolen, rand)).unwrap_err();
        assert!(why.0.contains("not its sender's"), "{why:?}");
        let why = redeem_as(&mut host, peer.address(), args(&good, [8; 32])).unwrap_err();
        assert!(why.0.contains("not the one the ticket commits to"), "{why:?}");
        let loser = viewer.ticket(ticket(&viewer, &peer, &rand, 2, 0));
        let why = redeem_as(&mut host, peer.address(), args(&loser, rand)).unwrap_err();
        assert!(why.0.contains("did not win"), "{why:?}");
        let why = redeem_as(&mut host, viewer.address(), args(&good, rand)).unwrap_err();
        assert!(why.0.contains("only the recipient"), "{why:?}");
        host.height = 101;
        let why = redeem_as(&mut host, peer.address(), args(&good, rand)).unwrap_err();
        assert!(why.0.contains("expired at height 100"), "{why:?}");
        host.height = 100;
        assert_eq!(host.state, before);

        redeem_as(&mut host, peer.address(), args(&good, rand)).unwrap();
        assert_eq!(balance(&host, &peer.address()), FACE);
        assert_eq!(earned(&host, &peer.address()).unwrap(), Earned { tickets: 1, amount: FACE });
        let funds = sender(&host, &viewer.address()).unwrap().unwrap();
        assert_eq!((funds.deposit, funds.reserve), (FACE, FACE));
        let why = redeem_as(&mut host, peer.address(), args(&good, rand)).unwrap_err();
        assert!(why.0.contains("already redeemed"), "{why:?}");
        assert_eq!(balance(&host, &peer.address()), FACE);
    }

    #[test]
    fn the_reserve_makes_up_a_short_deposit_and_a_short_reserve_pays_nothing() {
        let (mut host, viewer, peer, rand) = setup(FACE / 2, FACE);
        let redeem_nonce = |host: &mut MemoryHost, nonce| {
            let t = viewer.ticket(ticket(&viewer, &peer, &rand, nonce, u64::MAX));
            call(host, peer.address(), |h| redeem(h, &RedeemArgs { ticket: t, rand, claim: None }))
        };
        redeem_nonce(&mut host, 1).unwrap();
        let funds = sender(&host, &viewer.address()).unwrap().unwrap();
        assert_eq!((funds.deposit, funds.reserve), (0, FACE / 2));
        assert_eq!(balance(&host, &peer.address()), FACE);

        let before = host.state.clone();
        let why = redeem_nonce(&mut host, 2).unwrap_err();
        assert!(why.0.contains("cannot cover the face value") && why.0.contains("nothing paid"));
        assert_eq!(host.state, before, "a short reserve pays no part of a ticket");
    }

    #[test]
    fn a_claim_pays_whom_the_recipient_named_and_nobody_else() {
        let (mut host, viewer, tab, rand) = setup(2 * FACE, 0);
        let wallet = Party::new(3);
        let t = ticket(&viewer, &tab, &rand, 1, u64::MAX);
        let signed = viewer.ticket(t.clone());
        let claim_for = |payee: &Party| RedeemArgs {
            ticket: signed.clone(),
            rand,
            claim: Some(tab.claim(&t, &payee.address())),
        };
        // A claim signed for the wallet does not let the viewer (or anyone else) be paid.
        let why =
            call(&mut host, viewer.address(), |h| redeem(h, &claim_for(&wallet))).unwrap_err();
        assert!(why.0.contains("claim does not verify"), "{why:?}");
        // Nor does a claim signed by a key that is not the recipient's.
        let mut wrong = claim_for(&wallet);
        wrong.claim = Some(wallet.claim(&t, &wallet.address()));
        let why = call(&mut host, wallet.address(), |h| redeem(h, &wrong)).unwrap_err();
        assert!(why.0.contains("not the recipient's"), "{why:?}");

        call(&mut host, wallet.address(), |h| redeem(h, &claim_for(&wallet))).unwrap();
        assert_eq!(balance(&host, &wallet.address()), FACE);
        assert_eq!(balance(&host, &tab.address()), 0);
        assert_eq!(earned(&host, &wallet.address()).unwrap().amount, FACE);
    }

    #[test]
    fn funds_leave_only_after_the_unlock_period() {
        let (mut host, viewer, _, _) = setup(FACE, FACE);
        let me = viewer.address();
        assert_eq!(balance(&host, &me), 8 * FACE);
        assert!(fund(&mut host, &FundArgs::default()).is_err());
        assert!(fund(&mut host, &FundArgs { deposit: 11 * FACE, reserve: 0 }).is_err());
        assert!(withdraw(&mut host).unwrap_err().0.contains("not unlocking"));
        unlock(&mut host).unwrap();
        assert!(unlock(&mut host).unwrap_err().0.contains("already unlocking"));
        host.height += UNLOCK_BLOCKS - 1;
        assert!(withdraw(&mut host).unwrap_err().0.contains("still locked"));
        host.height += 1;
        withdraw(&mut host).unwrap();
        assert_eq!(balance(&host, &me), 10 * FACE);
        assert_eq!(sender(&host, &me).unwrap(), None);
        assert!(withdraw(&mut host).is_err());

        // Funding again cancels an unlock.
        fund(&mut host, &FundArgs { deposit: FACE, reserve: 0 }).unwrap();
        unlock(&mut host).unwrap();
        fund(&mut host, &FundArgs { deposit: 1, reserve: 0 }).unwrap();
        assert_eq!(sender(&host, &me).unwrap().unwrap().unlocks_at, None);
    }

    #[test]
    fn tickets_win_at_their_probability_and_are_worth_what_was_asked() {
        let hash = |b: &[u8]| *blake3::hash(b).as_bytes();
        let p = win_prob_for(FACE / 10, FACE).unwrap();
        let (viewer, peer, rand) = (Party::new(1), Party::new(2), [9; 32]);
        let won = (0..4_000)
            .filter(|&n| {
                let t = viewer.ticket(ticket(&viewer, &peer, &rand, n, p));
                wins(hash, &t.signature, &rand, p)
            })
            .count();
        // Binomial(4000, 0.1): mean 400, sd 19; ±5 sd.
        assert!((305..=495).contains(&won), "{won} of 4000 won at p = 0.1");

        for (expected, face) in [(1, FACE), (12_345, FACE), (FACE - 1, FACE), (3, 7)] {
            let p = win_prob_for(expected, face).unwrap();
            let t = Ticket { face_value: face, win_prob: p, ..ticket(&viewer, &peer, &rand, 0, p) };
            let ev = t.expected_value();
            assert!(ev + 1 >= expected && ev <= expected, "{expected} of {face}: {ev}");
        }
        assert_eq!(win_prob_for(FACE, FACE), None);
    }
}
