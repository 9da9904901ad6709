//! The contract host: the system contracts through wasmtime, and every way a call can fail
//! cleanly.

use std::collections::BTreeMap;

use kinema_chain::Address;
use kinema_chain::contract::{Call, Failure, Outcome};
use kinema_contracts::accounts::{self, Account, TransferArgs};
use kinema_node::wasm::Host;

type View = BTreeMap<Vec<u8>, Vec<u8>>;

const FUEL: u64 = 10_000_000;

fn state(accounts: &[([u8; 20], u64)]) -> View {
    accounts
        .iter()
        .map(|(a, balance)| {
            let account = Account { balance: *balance, ..Default::default() };
            (accounts::key(a), borsh::to_vec(&account).unwrap())
        })
        .collect()
}

fn call<'a>(contract: &'a str, method: &'a str, args: &'a [u8], fuel: u64) -> Call<'a> {
    Call { contract, method, args, caller: Address([1; 20]), height: 5, fuel }
}

fn run(host: &Host<View>, view: View, c: &Call<'_>) -> (Outcome, View) {
    host.call(view, c).unwrap()
}

fn apply(mut view: View, outcome: &Outcome) -> View {
    for (k, v) in &outcome.writes {
        match v {
            Some(v) => view.insert(k.clone(), v.clone()),
            None => view.remove(k),
        };
    }
    view
}

fn balance(view: &View, who: [u8; 20]) -> u64 {
    view.get(&accounts::key(&who))
        .map(|b| borsh::from_slice::<Account>(b).unwrap().balance)
        .unwrap_or(0)
}

#[test]
fn the_accounts_contract_transfers_in_wasm_with_deterministic_fuel() {
    let host = Host::<View>::new().unwrap();
    let args = borsh::to_vec(&TransferArgs { to: [2; 20], amount: 40 }).unwrap();
    let c = call("accounts", "transfer", &args, FUEL);
    let (first, view) = run(&host, state(&[([1; 20], 100)]), &c);
    assert_eq!(first.result, Ok(()));
    assert!(first.fuel_used > 0 && first.fuel_used < FUEL);
    assert_eq!(first.writes.len(), 2);
    assert_eq!(first.events.len(), 1);
    let after = apply(view.clone(), &first);
    assert_eq!((balance(&after, [1; 20]), balance(&after, [2; 20])), (60, 40));
    // The same call on the same state burns the same fuel.
    let (again, _) = run(&host, view, &c);
    assert_eq!(again.fuel_used, first.fuel_used);

    // An overdraft is refused with the contract's reason, changes nothing, and is charged.
    let args = borsh::to_vec(&TransferArgs { to: [2; 20], amount: 61 }).unwrap();
    let (refused, _) = run(&host, after, &call("accounts", "transfer", &args, FUEL));
    assert_eq!(
        refused.result,
        Err(Failure::Refused("balance 60 is less than the 61 to transfer".into()))
    );
    assert!(refused.writes.is_empty() && refused.events.is_empty() && refused.fuel_used > 0);

    let (garbled, _) = run(&host, View::new(), &call("accounts", "stake", b"\x01", FUEL));
    assert!(
        matches!(garbled.result, Err(Failure::Refused(ref why)) if why.contains("bad arguments"))
    );
    let (missing, _) = run(&host, View::new(), &call("accounts", "mint", &[], FUEL));
    assert_eq!(missing.result, Err(Failure::NoSuchMethod("accounts.mint".into())));
    let (nowhere, _) = run(&host, View::new(), &call("bank", "transfer", &[], FUEL));
    assert!(matches!(nowhere.result, Err(Failure::NoSuchMethod(_))));
}

#[test]
fn a_state_value_longer_than_the_first_read_is_read_whole() {
    use kinema_contracts::accounts::Unbonding;
    // 40 unbonding entries: an account of 664 bytes, more than the 256 a read offers first.
    let unbonding: Vec<Unbonding> =
        (0..40).map(|i| Unbonding { amount: i, release_height: 1_000 + i }).collect();
    let sender = Account { balance: 100, unbonding: unbonding.clone(), ..Default::default() };
    let encoded = borsh::to_vec(&sender).unwrap();
    assert!(encoded.len() > 256);
    let view: View = [(accounts::key(&[1; 20]), encoded)].into_iter().collect();
    let host = Host::<View>::new().unwrap();
    let args = borsh::to_vec(&TransferArgs { to: [2; 20], amount: 40 }).unwrap();
    let (outcome, view) = run(&host, view, &call("accounts", "transfer", &args, FUEL));
    assert_eq!(outcome.result, Ok(()));
    let after = apply(view, &outcome);
    let sender: Account = borsh::from_slice(&after[&accounts::key(&[1; 20])]).unwrap();
    assert_eq!((sender.balance, sender.unbonding), (60, unbonding));
}

#[test]
fn loops_memory_bombs_panics_and_too_little_fuel_fail_cleanly() {
    let mut host = Host::<View>::new().unwrap();
    host.load(
        "bad",
        br#"(module
            (import "kinema" "storage_write" (func $write (param i32 i32 i32 i32)))
            (memory (export "memory") 1)
            (func (export "spin") (result i32) (loop $l (br $l)) (i32.const 0))
            (func (export "bomb") (result i32)
                (loop $l (drop (memory.grow (i32.const 16))) (br $l)) (i32.const 0))
            (func (export "panic") (result i32)
                (call $write (i32.const 0) (i32.const 4) (i32.const 0) (i32.const 4))
                unreachable)
            (func (export "oob") (result i32) (i32.load (i32.const 70000)))
            (func (export "oob_write") (result i32)
                (call $write (i32.const 65530) (i32.const 8) (i32.const 0) (i32.const 4))
                (i32.const 0))
            (func (export "takes_an_argument") (param i32) (result i32) (local.get 0)))"#,
    )
    .unwrap();
    let fuel = 1_000_000;
    let (spin, _) = run(&host, View::new(), &call("bad", "spin", &[], fuel));
    assert_eq!((spin.result, spin.fuel_used), (Err(Failure::OutOfFuel), fuel));
    let (bomb, _) = run(&host, View::new(), &call("bad", "bomb", &[], fuel));
    assert!(matches!(bomb.result, Err(Failure::Trap(_))), "{:?}", bomb.result);
    let (panic, _) = run(&host, View::new(), &call("bad", "panic", &[], fuel));
    assert!(matches!(panic.result, Err(Failure::Trap(ref t)) if t.contains("unreachable")));
    assert!(panic.writes.is_empty(), "a trapped call's writes are dropped");
    let (oob, _) = run(&host, View::new(), &call("bad", "oob", &[], fuel));
    assert!(matches!(oob.result, Err(Failure::Trap(ref t)) if t.contains("out of bounds")));
    // A host call handed a buffer running past the memory's end traps the same way.
    let (oob, _) = run(&host, View::new(), &call("bad", "oob_write", &[], fuel));
    assert!(
        matches!(oob.result, Err(Failure::Trap(ref t)) if t.contains("out of bounds")),
        "{:?}",
        oob.result
    );
    assert!(oob.writes.is_empty());
    // Only functions taking nothing and returning an i32 are methods.
    let (wrong, _) = run(&host, View::new(), &call("bad", "takes_an_argument", &[], fuel));
    assert!(matches!(wrong.result, Err(Failure::NoSuchMethod(_))), "{:?}", wrong.result);

    // The real contract with too little fuel stops part-way and keeps nothing.
    let args = borsh::to_vec(&TransferArgs { to: [2; 20], amount: 1 }).unwrap();
    let (short, _) =
        run(&host, state(&[([1; 20], 100)]), &call("accounts", "transfer", &args, 500));
    assert_eq!(
        (short.result, short.fuel_used, short.writes.len()),
        (Err(Failure::OutOfFuel), 500, 0)
    );

    // Only the host's own imports link.
    let err = host
        .load("clock", br#"(module (import "env" "now" (func (result i64))))"#)
        .unwrap_err()
        .to_string();
    assert!(err.contains("linking") && err.contains("now"), "{err}");
}

#[test]
fn a_ticket_is_redeemed_in_wasm_within_its_fee_budget_claim_or_not() {
    use kinema_chain::crypto::SecretKey;
    use kinema_chain::tickets::{Payee, Payer};
    use kinema_contracts::tickets::{FundArgs, MIN_FACE_VALUE, REDEEM_FUEL, RedeemArgs, Sender};

    let (viewer, tab, wallet) = (
        SecretKey::from_seed([1; 32]),
        SecretKey::from_seed([2; 32]),
        SecretKey::from_seed([3; 32]),
    );
    let host = Host::<View>::new().unwrap();
    let as_caller = |who: &SecretKey, method, args: &[u8], view: View| {
        let c = Call {
            contract: "tickets",
            method,
            args,
            caller: who.address(),
            height: 5,
            fuel: FUEL,
        };
        let (outcome, view) = run(&host, view, &c);
        assert_eq!(outcome.result, Ok(()), "{method}");
        (outcome.fuel_used, apply(view, &outcome))
    };
    let fund = borsh::to_vec(&FundArgs { deposit: 4 * MIN_FACE_VALUE, reserve: 0 }).unwrap();
    let (_, view) =
        as_caller(&viewer, "fund", &fund, state(&[(viewer.address().0, 4 * MIN_FACE_VALUE)]));
    let funds: Sender =
        borsh::from_slice(&view[&kinema_contracts::tickets::sender_key(&viewer.address().0)])
            .unwrap();

    // Priced so that every ticket wins; two winners, one redeemed by the tab itself, one
    // claimed into a wallet.
    let price = (MIN_FACE_VALUE - 1) * 4;
    let mut payee = Payee::new(tab.clone(), [9; 32], price, 5).unwrap();
    let mut payer = Payer::new(viewer, price, 0);
    let terms = payee.terms(5).clone();
    for t in payer.delivered(&terms, 2 * kinema_chain::tickets::BYTES_PER_TICKET, 5).unwrap() {
        payee.accept(&t, Some(&funds), 5).unwrap();
    }
    let winners: Vec<RedeemArgs> = payee.take_winners(5);
    assert_eq!(winners.len(), 2);
    let (plain, view) = as_caller(&tab, "redeem", &borsh::to_vec(&winners[0]).unwrap(), view);
    let mut claimed = winners[1].clone();
    payee.claim_for(&mut claimed, wallet.address());
    let (claim, view) = as_caller(&wallet, "redeem", &borsh::to_vec(&claimed).unwrap(), view);
    assert_eq!(
        (balance(&view, tab.address().0), balance(&view, wallet.address().0)),
        (MIN_FACE_VALUE, MIN_FACE_VALUE)
    );
    // A redemption's fee is its fuel: within REDEEM_FUEL, so a face value of MIN_FACE_VALUE
    // keeps the fees ≤ 1 % of what the tickets pay.
    eprintln!("redeem: {plain} fuel; with a claim: {claim} fuel; budget {REDEEM_FUEL}");
    assert!(plain <= REDEEM_FUEL && claim <= REDEEM_FUEL, "{plain} {claim}");
    assert!(claim as f64 / MIN_FACE_VALUE as f64 <= 0.01);
}
