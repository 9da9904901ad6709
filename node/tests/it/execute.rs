//! Executing transactions through the system contracts: checks with their reasons, fees in
//! fuel, failures that charge and go on, and blocks committed with their state.

use std::sync::Arc;

use kinema_chain::block::{Block, Header, tx_root};
use kinema_chain::contract::Failure;
use kinema_chain::crypto::SecretKey;
use kinema_chain::execute::{Executor, Overlay, Receipt, Rejection};
use kinema_chain::state::account_key;
use kinema_chain::tx::{Account, Call, SignedTx, Tx};
use kinema_chain::{Address, Hash, encode};
use kinema_node::store::Store;

use crate::support::{CHAIN, FEE, funded, key};

fn tx(from: &SecretKey, nonce: u64, fee: u64, call: Call) -> SignedTx {
    Tx { chain_id: CHAIN.into(), signer: from.public(), nonce, fee, call }.sign(from)
}

fn pay(from: &SecretKey, nonce: u64, to: Address, amount: u64) -> SignedTx {
    tx(from, nonce, FEE, Call::Transfer { to, amount })
}

/// Executes `tx` and expects it to be executable.
fn run(ex: &Executor, state: Overlay, tx: &SignedTx) -> (Receipt, Overlay) {
    let (receipt, state) = ex.execute(state, tx, 1).unwrap();
    (receipt.unwrap(), state)
}

fn account(state: &Overlay, k: &SecretKey) -> Account {
    state.account(&k.address()).unwrap()
}

#[test]
fn a_transfer_moves_the_amount_and_charges_the_fuel_it_burnt() {
    let ex = Executor::new(CHAIN, std::sync::Arc::new(kinema_node::wasm::Host::new().unwrap()));
    let (alice, bob) = (key(1), key(2));
    let (receipt, state) =
        run(&ex, funded(&[(&alice, 10_000_000)]), &pay(&alice, 0, bob.address(), 400));
    assert_eq!(receipt.result, Ok(()));
    assert!(receipt.fee > 0 && receipt.fee < FEE, "fee {}", receipt.fee);
    let a = account(&state, &alice);
    assert_eq!((a.balance, a.nonce), (10_000_000 - 400 - receipt.fee, 1));
    assert_eq!(account(&state, &bob).balance, 400);
    assert_eq!(receipt.events.len(), 1);
}

#[test]
fn inexecutable_transactions_are_rejected_with_their_reason() {
    let ex = Executor::new(CHAIN, std::sync::Arc::new(kinema_node::wasm::Host::new().unwrap()));
    let (alice, poor, bob) = (key(1), key(3), key(2));
    let state = funded(&[(&alice, 10_000_000), (&poor, 10)]);
    let reject = |t: &SignedTx| ex.check(&state, t).unwrap().unwrap_err();

    let mut forged = pay(&alice, 0, bob.address(), 1);
    forged.tx.call = Call::Transfer { to: bob.address(), amount: 1_000 };
    assert_eq!(reject(&forged), Rejection::BadSignature);
    let elsewhere = Tx {
        chain_id: "kinema-other".into(),
        signer: alice.public(),
        nonce: 0,
        fee: FEE,
        call: Call::Stake { amount: 1 },
    }
    .sign(&alice);
    assert!(matches!(reject(&elsewhere), Rejection::WrongChain { .. }));
    assert_eq!(
        reject(&pay(&alice, 3, bob.address(), 1)),
        Rejection::WrongNonce { expected: 0, found: 3 }
    );
    assert_eq!(
        reject(&pay(&poor, 0, bob.address(), 1)),
        Rejection::CannotPayFee { fee: FEE, balance: 10 }
    );
    let cheap = tx(&alice, 0, 10, Call::Stake { amount: 1 });
    assert!(matches!(reject(&cheap), Rejection::FeeTooLow { .. }));
    let deployed = tx(
        &alice,
        0,
        FEE,
        Call::Contract { contract: bob.address(), method: "x".into(), args: vec![] },
    );
    assert!(matches!(reject_exec(&ex, &state, &deployed), Rejection::Unsupported(_)));
    // A rejected transaction leaves the state as it was.
    let (rejected, after) = ex.execute(state.clone(), &forged, 1).unwrap();
    assert!(rejected.is_err());
    assert_eq!(account(&after, &alice), account(&state, &alice));
    assert_eq!(
        Rejection::WrongNonce { expected: 0, found: 3 }.to_string(),
        "nonce 3, the account's next is 0"
    );
}

fn reject_exec(ex: &Executor, state: &Overlay, t: &SignedTx) -> Rejection {
    ex.execute(state.clone(), t, 1).unwrap().0.unwrap_err()
}

#[test]
fn failed_calls_charge_their_fuel_and_the_next_transaction_goes_on() {
    let ex = Executor::new(CHAIN, std::sync::Arc::new(kinema_node::wasm::Host::new().unwrap()));
    let (alice, bob) = (key(1), key(2));
    let state = funded(&[(&alice, 5_000_000)]);
    // An overdraft is not executable at all: the balance must cover fee and amount.
    let overdraft = reject_exec(&ex, &state, &pay(&alice, 0, bob.address(), 50_000_000));
    assert_eq!(overdraft, Rejection::Underfunded { needed: 50_000_000 + FEE, balance: 5_000_000 });
    // Unstaking what is not staked: the contract refuses, the fee is charged, the nonce used.
    let (refused, state) = run(&ex, state, &tx(&alice, 0, FEE, Call::Unstake { amount: 9 }));
    assert!(matches!(refused.result, Err(Failure::Refused(ref why)) if why.contains("less than")));
    let a = account(&state, &alice);
    assert_eq!((a.balance, a.nonce), (5_000_000 - refused.fee, 1));
    // Too little fuel for the call: all of it is charged.
    let (starved, state) =
        run(&ex, state, &tx(&alice, 1, 1_000, Call::Transfer { to: bob.address(), amount: 1 }));
    assert_eq!((starved.result, starved.fee), (Err(Failure::OutOfFuel), 1_000));
    assert_eq!(account(&state, &bob).balance, 0);
    // And the next one works.
    let (ok, state) = run(&ex, state, &pay(&alice, 2, bob.address(), 7));
    assert_eq!(ok.result, Ok(()));
    assert_eq!(account(&state, &bob).balance, 7);
    assert_eq!(account(&state, &alice).nonce, 3);
}

#[test]
fn a_double_spend_resolves_to_exactly_one_transfer() {
    let ex = Executor::new(CHAIN, std::sync::Arc::new(kinema_node::wasm::Host::new().unwrap()));
    let (alice, bob, carol) = (key(1), key(2), key(4));
    // Enough for one payment of FEE and two fees, not for two payments.
    let start = funded(&[(&alice, 3 * FEE)]);
    // The same nonce twice: the second is not executable.
    let (to_bob, to_carol) =
        (pay(&alice, 0, bob.address(), FEE), pay(&alice, 0, carol.address(), FEE));
    let (first, state) = run(&ex, start.clone(), &to_bob);
    assert_eq!(first.result, Ok(()));
    assert!(matches!(reject_exec(&ex, &state, &to_carol), Rejection::WrongNonce { .. }));
    // Two nonces, money for one: the second is not executable.
    let (_, state) = run(&ex, start, &to_carol);
    let second = reject_exec(&ex, &state, &pay(&alice, 1, bob.address(), FEE));
    assert!(matches!(second, Rejection::Underfunded { .. }), "{second:?}");
    assert_eq!((account(&state, &bob).balance, account(&state, &carol).balance), (0, FEE));
}

#[test]
fn staking_and_unstaking_run_through_the_contract_and_blocks_commit_their_state() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&tmp.path().join("chain.redb")).unwrap());
    let ex = Executor::new(CHAIN, std::sync::Arc::new(kinema_node::wasm::Host::new().unwrap()));
    let (alice, bob) = (key(1), key(2));
    let mut height = 0;
    let mut block = |txs: Vec<SignedTx>, genesis: Vec<(&SecretKey, u64)>| -> Vec<Receipt> {
        let head = store.head().unwrap();
        let mut state = Overlay::new(Some(store.clone()), head.as_ref().map(|h| h.height));
        for (k, balance) in genesis {
            let account = Account { balance, ..Default::default() };
            state.set(account_key(&k.address()), Some(encode(&account)));
        }
        let mut receipts = Vec::new();
        for t in &txs {
            let (r, s) = ex.execute(state, t, height).unwrap();
            state = s;
            receipts.push(r.unwrap());
        }
        let pending = store.prepare(state.into_changes()).unwrap();
        let header = Header {
            chain_id: CHAIN.into(),
            height: pending.height(),
            parent: head.map_or(Hash::ZERO, |h| h.block),
            time_ms: 0,
            proposer: alice.address(),
            state_root: pending.root(),
            tx_root: tx_root(&txs),
            validator_set_hash: Hash::ZERO,
        };
        store.commit(pending, &Block { header, txs }, None).unwrap();
        height += 1;
        receipts
    };
    block(vec![], vec![(&alice, 100 * FEE)]);
    let receipts = block(
        vec![
            tx(&alice, 0, FEE, Call::Stake { amount: 5_000 }),
            tx(&alice, 1, FEE, Call::Unstake { amount: 2_000 }),
            pay(&alice, 2, bob.address(), 10),
        ],
        vec![],
    );
    assert!(receipts.iter().all(|r| r.result.is_ok()), "{receipts:?}");
    let head = store.head().unwrap().unwrap();
    let (found, proof) = store.account(&alice.address(), head.height).unwrap();
    let a = found.unwrap();
    assert_eq!((a.stake, a.nonce, a.unbonding.len()), (3_000, 3, 1));
    assert_eq!(a.unbonding[0].release_height, 1 + kinema_contracts::accounts::UNBONDING_PERIOD);
    proof.verify_account(head.state_root, &alice.address(), Some(&a)).unwrap();
    let (bob_account, proof) = store.account(&bob.address(), head.height).unwrap();
    assert_eq!(bob_account.as_ref().map(|b| b.balance), Some(10));
    proof.verify_account(head.state_root, &bob.address(), bob_account.as_ref()).unwrap();
}

#[test]
fn a_double_signing_validator_is_slashed_once() {
    use kinema_chain::block::{Vote, VoteKind};
    use kinema_chain::tx::Evidence;

    let ex = Executor::new(CHAIN, std::sync::Arc::new(kinema_node::wasm::Host::new().unwrap()));
    let (reporter, validator) = (key(1), key(8));
    let mut state = funded(&[(&reporter, 10 * FEE)]);
    let bonded = Account { stake: 10_000, ..Default::default() };
    state.set(account_key(&validator.address()), Some(encode(&bonded)));
    let vote = |chain: &str, block: &[u8]| Vote {
        chain_id: chain.into(),
        height: 40,
        round: 0,
        kind: VoteKind::Precommit,
        block: Some(Hash::of("test block", block)),
    };
    let report = |nonce, first: Vote, second: Vote| {
        let evidence =
            Evidence::DoubleSign { first: first.sign(&validator), second: second.sign(&validator) };
        tx(&reporter, nonce, FEE, Call::Evidence(Box::new(evidence)))
    };

    let proof = report(0, vote(CHAIN, b"a"), vote(CHAIN, b"b"));
    let (slashed, state) = run(&ex, state, &proof);
    assert_eq!(slashed.result, Ok(()));
    assert_eq!(account(&state, &validator).stake, 9_500);
    assert_eq!(slashed.events.len(), 1);

    // The same offence again, votes that agree, votes from another chain.
    let again = report(1, vote(CHAIN, b"b"), vote(CHAIN, b"a"));
    assert_eq!(reject_exec(&ex, &state, &again), Rejection::DuplicateEvidence(validator.address()));
    let agree = report(1, vote(CHAIN, b"a"), vote(CHAIN, b"a"));
    assert!(
        matches!(reject_exec(&ex, &state, &agree), Rejection::BadEvidence(ref w) if w.contains("agree"))
    );
    let other = report(1, vote("kinema-other", b"a"), vote("kinema-other", b"b"));
    assert!(
        matches!(reject_exec(&ex, &state, &other), Rejection::BadEvidence(ref w) if w.contains("kinema-other"))
    );
    assert_eq!(account(&state, &validator).stake, 9_500);

    // Two proposals for one round are another offence, punished once too.
    let proposal = |block: &[u8]| kinema_chain::block::Proposal {
        chain_id: CHAIN.into(),
        height: 40,
        round: 0,
        block: Hash::of("test block", block),
        pol_round: None,
    };
    let proposals = |nonce| {
        let evidence = Evidence::DoubleProposal {
            first: proposal(b"a").sign(&validator),
            second: proposal(b"b").sign(&validator),
        };
        tx(&reporter, nonce, FEE, Call::Evidence(Box::new(evidence)))
    };
    let (slashed, state) = run(&ex, state, &proposals(1));
    assert_eq!(slashed.result, Ok(()));
    assert_eq!(account(&state, &validator).stake, 9_025);
    assert_eq!(
        reject_exec(&ex, &state, &proposals(2)),
        Rejection::DuplicateEvidence(validator.address())
    );
}

#[test]
fn an_offender_that_unbonds_is_still_slashed_and_evidence_expires_with_the_unbonding_period() {
    use kinema_chain::block::{Vote, VoteKind};
    use kinema_chain::tx::Evidence;
    use kinema_contracts::accounts::UNBONDING_PERIOD;

    let ex = Executor::new(CHAIN, std::sync::Arc::new(kinema_node::wasm::Host::new().unwrap()));
    let (reporter, validator) = (key(1), key(8));
    let mut state = funded(&[(&reporter, 10 * FEE)]);
    let bonded = Account { stake: 10_000, balance: 10 * FEE, ..Default::default() };
    state.set(account_key(&validator.address()), Some(encode(&bonded)));
    let vote = |block: &[u8]| Vote {
        chain_id: CHAIN.into(),
        height: 40,
        round: 0,
        kind: VoteKind::Precommit,
        block: Some(Hash::of("test block", block)),
    };
    let evidence = Evidence::DoubleSign {
        first: vote(b"a").sign(&validator),
        second: vote(b"b").sign(&validator),
    };
    let report = tx(&reporter, 0, FEE, Call::Evidence(Box::new(evidence)));

    // Right after its offence, the validator unstakes everything to escape the slash.
    let unstake = tx(&validator, 0, FEE, Call::Unstake { amount: 10_000 });
    let (receipt, state) = ex.execute(state, &unstake, 41).unwrap();
    assert_eq!(receipt.unwrap().result, Ok(()));
    assert_eq!(account(&state, &validator).stake, 0);

    // Evidence past the unbonding period is refused: what was unbonding may have been paid out.
    let late = ex.execute(state.clone(), &report, 40 + UNBONDING_PERIOD).unwrap().0.unwrap_err();
    assert!(
        matches!(late, Rejection::BadEvidence(ref w) if w.contains("unbonding period")),
        "{late}"
    );

    // Within it, the unbonding stake is cut as if it were still bonded.
    let (slashed, state) = ex.execute(state, &report, 40 + UNBONDING_PERIOD - 1).unwrap();
    assert_eq!(slashed.unwrap().result, Ok(()));
    let left: u64 = account(&state, &validator).unbonding.iter().map(|u| u.amount).sum();
    assert_eq!(left, 9_500);
}
