//! Nodes that propose, validate and commit the same blocks: invalid blocks refused with their
//! reason, and the same state root on every node at every height.

use kinema_chain::block::{Validator, ValidatorSet};
use kinema_chain::crypto::SecretKey;
use kinema_chain::tx::{Call, SignedTx, Tx};
use kinema_chain::{Hash, encode};
use kinema_node::app::{App, Genesis, Invalid};
use proptest::prelude::*;

use crate::support::{CHAIN, FEE, key};

fn genesis(funded: &[&SecretKey]) -> Genesis {
    Genesis {
        chain_id: CHAIN.into(),
        time_ms: 1_795_000_000_000,
        balances: funded.iter().map(|k| (k.address(), 50 * FEE)).collect(),
        validators: ValidatorSet::new(vec![Validator { public_key: key(90).public(), power: 1 }])
            .unwrap(),
        // Short epochs: the random sequences' stakes change the validator set as they go.
        epoch_length: 3,
    }
}

fn transfer(from: &SecretKey, nonce: u64, to: &SecretKey, amount: u64) -> SignedTx {
    let call = Call::Transfer { to: to.address(), amount };
    Tx { chain_id: CHAIN.into(), signer: from.public(), nonce, fee: FEE, call }.sign(from)
}

#[test]
fn a_proposed_block_is_validated_and_committed_by_another_node() {
    let (alice, bob) = (key(1), key(2));
    let g = genesis(&[&alice]);
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut a = App::open(&dirs.0.path().join("chain.redb"), &g, 100).unwrap();
    let mut b = App::open(&dirs.1.path().join("chain.redb"), &g, 100).unwrap();
    assert_eq!(a.head().unwrap(), b.head().unwrap());

    for n in 0..3 {
        assert!(a.submit(&encode(&transfer(&alice, n, &bob, 10))).unwrap().is_ok());
    }
    let proposal = a.propose(alice.address(), 1_795_000_001_000, 10).unwrap();
    assert_eq!(proposal.block.txs.len(), 3);
    let block = proposal.block.clone();

    // Tampered copies are refused with their reason.
    let refuse = |block| b.validate(block, Some(alice.address())).unwrap().unwrap_err();
    let mut root = block.clone();
    root.header.state_root = Hash([1; 32]);
    assert!(matches!(refuse(root), Invalid::Mismatch { field: "state_root", .. }));
    let mut txs = block.clone();
    txs.txs.pop();
    assert!(matches!(refuse(txs), Invalid::Mismatch { field: "tx_root", .. }));
    let mut forged = block.clone();
    forged.txs[1].tx.fee += 1;
    forged.header.tx_root = kinema_chain::block::tx_root(&forged.txs);
    let err = refuse(forged);
    assert_eq!(err.to_string(), "transaction 1 is not executable: the signature does not verify");
    let mut orphan = block.clone();
    orphan.header.parent = Hash([2; 32]);
    assert!(matches!(refuse(orphan), Invalid::NotNext { .. }));
    // Block times only go forward: one at its parent's time is refused, and a proposer whose
    // clock is behind the head's time proposes 1 ms after it.
    let mut stale = block.clone();
    stale.header.time_ms = g.time_ms;
    let err = refuse(stale);
    assert_eq!(
        err.to_string(),
        format!("its time {0} ms is not after its parent's {0} ms", g.time_ms)
    );
    let behind = b.propose(bob.address(), g.time_ms - 5_000, 10).unwrap();
    assert_eq!(behind.block.header.time_ms, g.time_ms + 1);

    // A block whose header names another proposer than the round's is refused, and so is one
    // over the size limit.
    let err = b.validate(block.clone(), Some(bob.address())).unwrap().unwrap_err();
    assert!(matches!(err, Invalid::Proposer { .. }), "{err}");
    let mut fat = block.clone();
    fat.txs = vec![fat.txs[0].clone(); kinema_node::app::MAX_BLOCK_BYTES / 100];
    assert!(matches!(refuse(fat), Invalid::TooLarge { .. }));

    let validated = b.validate(block, Some(alice.address())).unwrap().unwrap();
    let (ha, hb) = (a.commit(proposal, None).unwrap(), b.commit(validated, None).unwrap());
    assert_eq!(ha, hb);
    assert_eq!(a.pending_transactions(), 0);
    assert_eq!(b.account(&bob.address()).unwrap().balance, 30);
    let (account, proof) = b.store().account(&bob.address(), hb.height).unwrap();
    proof.verify_account(hb.state_root, &bob.address(), account.as_ref()).unwrap();
}

#[test]
fn a_pruning_node_keeps_recent_states_and_epoch_boundaries_only() {
    // Two nodes run the same 40 blocks of transfers among 4 accounts (epochs of 20 blocks);
    // one keeps every state, the other the last 5 and the boundaries.
    let keys: Vec<SecretKey> = (1..=4).map(key).collect();
    let g = Genesis { epoch_length: 20, ..genesis(&keys.iter().collect::<Vec<_>>()) };
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let path = dirs[1].path().join("chain.redb");
    let mut archive = App::open(&dirs[0].path().join("chain.redb"), &g, 1_000).unwrap();
    let mut pruning = App::open(&path, &g, 1_000).unwrap();
    pruning.store().keep_states(Some(5));
    for i in 0..40u64 {
        let from = &keys[(i % 4) as usize];
        let to = &keys[((i + 1) % 4) as usize];
        let tx = transfer(from, i / 4, to, 1 + i);
        assert!(archive.submit(&encode(&tx)).unwrap().is_ok());
        let proposal = archive.propose(keys[0].address(), g.time_ms + 1 + i, 10).unwrap();
        let validated = pruning.validate(proposal.block.clone(), None).unwrap().unwrap();
        archive.commit(proposal, None).unwrap();
        pruning.commit(validated, None).unwrap();
    }
    let head = pruning.head().unwrap().height;
    assert_eq!(pruning.store().pruned_below(), head - 5);
    let (kept, all) =
        (pruning.store().state_nodes().unwrap(), archive.store().state_nodes().unwrap());
    assert!(kept * 2 < all, "{kept} tree nodes kept of {all}");

    // Every state kept reads as the archive's, with proofs against its block's root; the others
    // are refused with a reason.
    for height in 0..=head {
        let root = archive.store().header(height).unwrap().unwrap().state_root;
        for k in &keys {
            let read = pruning.store().account(&k.address(), height);
            if height >= head - 5 || height.is_multiple_of(20) {
                let (account, proof) = read.unwrap();
                proof.verify_account(root, &k.address(), account.as_ref()).unwrap();
                assert_eq!(account, archive.store().account(&k.address(), height).unwrap().0);
            } else {
                let why = read.unwrap_err().to_string();
                assert!(why.contains(&format!("block {height} was pruned")), "{why}");
            }
        }
    }
    // Reopened, it knows what it pruned.
    drop(pruning);
    let reopened = App::open(&path, &g, 1_000).unwrap();
    assert_eq!(reopened.store().pruned_below(), head - 5);
}

/// A transaction the property test throws at a node: what it does (0 transfer, 1 stake,
/// 2 unstake), sender, receiver, amount, and how far its nonce is off.
fn arb_tx() -> impl Strategy<Value = (u8, u8, u8, u64, i8)> {
    (
        prop_oneof![6 => Just(0u8), 2 => Just(1u8), 1 => Just(2u8)],
        0u8..4,
        0u8..5,
        0u64..30_000_000,
        prop_oneof![8 => Just(0i8), 1 => -1i8..=2],
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(6))]

    #[test]
    fn every_node_has_the_same_state_root_at_every_height(
        blocks in proptest::collection::vec(proptest::collection::vec(arb_tx(), 0..8), 1..8),
    ) {
        let keys: Vec<SecretKey> = (1..=5).map(key).collect();
        let g = genesis(&keys[..4].iter().collect::<Vec<_>>());
        let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
        let mut a = App::open(&dirs[0].path().join("chain.redb"), &g, 1_000).unwrap();
        let mut b = App::open(&dirs[1].path().join("chain.redb"), &g, 1_000).unwrap();
        let mut nonces = [0u64; 4];
        for (i, txs) in blocks.iter().enumerate() {
            for &(kind, from, to, amount, off) in txs {
                let nonce = (nonces[from as usize] as i64 + off as i64).max(0) as u64;
                let signer = &keys[from as usize];
                let call = match kind {
                    0 => Call::Transfer { to: keys[to as usize].address(), amount },
                    1 => Call::Stake { amount: amount / 4 },
                    _ => Call::Unstake { amount: amount / 8 },
                };
                let tx = Tx { chain_id: CHAIN.into(), signer: signer.public(), nonce, fee: FEE, call }
                    .sign(signer);
                if a.submit(&encode(&tx)).unwrap().is_ok() {
                    nonces[from as usize] += 1;
                }
            }
            let proposal = a.propose(keys[0].address(), 1_795_000_000_000 + i as u64, 100).unwrap();
            let validated = b.validate(proposal.block.clone(), None).unwrap().unwrap();
            let (ha, hb) = (a.commit(proposal, None).unwrap(), b.commit(validated, None).unwrap());
            // Epochs of 3 blocks: the stakes change the validator set, the same on both.
            let next = ha.height + 1;
            prop_assert_eq!(a.validators_at(next).unwrap(), b.validators_at(next).unwrap());
            prop_assert_eq!(ha, hb);
        }
    }
}
