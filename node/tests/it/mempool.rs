//! The mempool: what it admits, what it refuses and why, and what it hands to a block.

use kinema_chain::crypto::SecretKey;
use kinema_chain::execute::{Executor, Rejection};
use kinema_chain::tx::{Call, SignedTx, Tx};
use kinema_chain::{Address, encode};
use kinema_node::mempool::{Mempool, Refusal};

use crate::support::{CHAIN, FEE, funded, key};

fn pay(from: &SecretKey, nonce: u64, to: Address) -> SignedTx {
    let call = Call::Transfer { to, amount: 1 };
    Tx { chain_id: CHAIN.into(), signer: from.public(), nonce, fee: FEE, call }.sign(from)
}

#[test]
fn every_refusal_names_its_reason() {
    let ex = Executor::new(CHAIN, std::sync::Arc::new(kinema_node::wasm::Host::new().unwrap()));
    let (alice, poor, bob) = (key(1), key(2), key(3));
    let state = funded(&[(&alice, 2 * FEE + 10), (&poor, FEE - 1)]);
    let mut pool = Mempool::new(100);
    let mut add = |tx: SignedTx| pool.add(&ex, &state, tx).unwrap();

    let garbage = Mempool::new(1).add_bytes(&ex, &state, b"not a transaction").unwrap();
    assert!(matches!(garbage, Err(Refusal::Malformed(_))), "{garbage:?}");
    let mut trailing = encode(&pay(&alice, 0, bob.address()));
    trailing.push(0);
    let err = Mempool::new(1).add_bytes(&ex, &state, &trailing).unwrap().unwrap_err();
    assert!(err.to_string().starts_with("malformed transaction"), "{err}");

    let mut forged = pay(&alice, 0, bob.address());
    forged.tx.fee += 1;
    assert_eq!(add(forged), Err(Refusal::Rejected(Rejection::BadSignature)));
    assert_eq!(
        add(pay(&alice, 1, bob.address())),
        Err(Refusal::Rejected(Rejection::WrongNonce { expected: 0, found: 1 }))
    );
    assert_eq!(
        add(pay(&poor, 0, bob.address())),
        Err(Refusal::Rejected(Rejection::CannotPayFee { fee: FEE, balance: FEE - 1 }))
    );

    // Queued transactions count: the next nonce follows them, their fees and amounts are
    // spoken for.
    let first = pay(&alice, 0, bob.address());
    assert!(add(first.clone()).is_ok());
    assert_eq!(add(first.clone()), Err(Refusal::Duplicate(first.hash())));
    assert!(add(pay(&alice, 1, bob.address())).is_ok());
    assert_eq!(
        add(pay(&alice, 3, bob.address())),
        Err(Refusal::Rejected(Rejection::WrongNonce { expected: 2, found: 3 }))
    );
    // Two queued payments of 1 leave 8: not enough for a third fee.
    let third = add(pay(&alice, 2, bob.address())).unwrap_err();
    assert_eq!(third, Refusal::Rejected(Rejection::CannotPayFee { fee: FEE, balance: 8 }));
    assert_eq!(third.to_string(), "fee 1000000 exceeds the balance 8");
    // Enough for the fee, not for the fee and the amount.
    let big = Tx {
        chain_id: CHAIN.into(),
        signer: bob.public(),
        nonce: 0,
        fee: FEE,
        call: Call::Transfer { to: alice.address(), amount: 11 },
    };
    let rich = funded(&[(&bob, FEE + 10)]);
    let underfunded = Mempool::new(1).add(&ex, &rich, big.sign(&bob)).unwrap().unwrap_err();
    assert_eq!(
        underfunded.to_string(),
        "it needs 1000011 (fee and amount), the balance is 1000010"
    );
    assert_eq!(pool.len(), 2);
}

#[test]
fn it_is_bounded_takes_senders_in_turn_and_forgets_what_was_committed() {
    let ex = Executor::new(CHAIN, std::sync::Arc::new(kinema_node::wasm::Host::new().unwrap()));
    let (alice, carol, bob) = (key(1), key(4), key(3));
    let mut state = funded(&[(&alice, 100 * FEE), (&carol, 100 * FEE)]);
    let mut pool = Mempool::new(5);
    for n in 0..3 {
        assert!(pool.add(&ex, &state, pay(&alice, n, bob.address())).unwrap().is_ok());
    }
    for n in 0..2 {
        assert!(pool.add(&ex, &state, pay(&carol, n, bob.address())).unwrap().is_ok());
    }
    assert_eq!(
        pool.add(&ex, &state, pay(&carol, 2, bob.address())).unwrap(),
        Err(Refusal::Full(5))
    );

    let order: Vec<(Address, u64)> =
        pool.take(4).iter().map(|t| (t.sender(), t.tx.nonce)).collect();
    let (a, c) = (alice.address(), carol.address());
    let mut expected = vec![(a, 0), (c, 0), (a, 1), (c, 1)];
    if c < a {
        expected = vec![(c, 0), (a, 0), (c, 1), (a, 1)];
    }
    assert_eq!(order, expected);

    // Execute what a block took; the pool drops it and keeps the rest.
    for tx in pool.take(4) {
        let (receipt, next) = ex.execute(state, &tx, 1).unwrap();
        assert!(receipt.unwrap().result.is_ok());
        state = next;
    }
    pool.prune(&state).unwrap();
    let left: Vec<(Address, u64)> =
        pool.take(10).iter().map(|t| (t.sender(), t.tx.nonce)).collect();
    assert_eq!(left, vec![(a, 2)]);
    assert!(pool.add(&ex, &state, pay(&carol, 2, bob.address())).unwrap().is_ok());
}
