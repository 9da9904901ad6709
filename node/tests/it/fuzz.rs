//! What a node decodes from peers: consensus messages and the gossip guard's checks on them.
//! Arbitrary bytes and mutations of valid messages give a value or an error that says
//! something, and the guard a verdict, never a panic.

use kinema_chain::block::{Block, Certificate, Validator, ValidatorSet};
use kinema_chain::gossip::{Finalized, Topic};
use kinema_chain::tx::{Call, Tx};
use kinema_chain::{Hash, decode, encode};
use kinema_node::consensus::guard::{Guard, View};
use kinema_node::consensus::{Message, ProposedBlock};
use kinema_test_support::fuzz::{explains, mutate, mutations};
use malachitebft_core_types::Round;
use proptest::prelude::*;

use crate::support::{CHAIN, FEE, key};

fn guard() -> Guard {
    let set =
        ValidatorSet::new(vec![Validator { public_key: key(11).public(), power: 1 }]).unwrap();
    let guard = Guard::new();
    guard.set(View::new(CHAIN, 7, set, Hash::ZERO, 100));
    guard
}

fn samples() -> Vec<Vec<u8>> {
    let header = crate::support::header();
    let certificate =
        Certificate { height: 7, round: 0, block: header.hash(), signatures: Vec::new() };
    let call = Call::Transfer { to: key(2).address(), amount: 1 };
    let tx = Tx { chain_id: CHAIN.into(), signer: key(1).public(), nonce: 0, fee: FEE, call };
    let block = Block { header: header.clone(), txs: vec![tx.clone().sign(&key(1))] };
    let part = ProposedBlock::signed(CHAIN, Round::new(0), Round::Nil, block, &key(11));
    [
        Message::Finalized(Finalized { header, certificate }),
        Message::Tx(encode(&tx.sign(&key(1)))),
        Message::Block(part),
        Message::SyncRequest { height: 3 },
    ]
    .iter()
    .map(encode)
    .collect()
}

fn check(bytes: &[u8], guard: &Guard) -> Result<(), TestCaseError> {
    explains("message", decode::<Message>(bytes))?;
    for topic in Topic::ALL {
        let _ = guard.admits(topic, bytes);
    }
    Ok(())
}

proptest! {
    #[test]
    fn fuzz_consensus_messages_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        check(&bytes, &guard())?;
    }

    #[test]
    fn fuzz_consensus_messages_on_mutated_encodings(which in 0usize..4, changes in mutations()) {
        let samples = samples();
        check(&mutate(&samples[which % samples.len()], &changes), &guard())?;
    }
}
