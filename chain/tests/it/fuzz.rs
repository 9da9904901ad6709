//! Every decoder of bytes a peer, a relay or a file hands the chain: arbitrary bytes and
//! mutations of valid encodings give a value or an error that says something, never a panic.

use kinema_chain::block::{Block, Certificate, SignedProposal, SignedVote, ValidatorSet};
use kinema_chain::gossip::Finalized;
use kinema_chain::rpc::{BlockReply, ValidatorSetReply};
use kinema_chain::state::Proof;
use kinema_chain::tx::{Account, SignedTx};
use kinema_chain::{decode, encode};
use kinema_test_support::fuzz::{explains, mutate, mutations};
use proptest::prelude::*;

use crate::{certificate, header, transfer, validators};

/// The valid encodings the mutations start from.
fn samples() -> Vec<(&'static str, Vec<u8>)> {
    let (keys, set) = validators();
    let txs = [transfer(0), transfer(1)];
    let header = header(&set, &txs);
    let certificate = certificate(&header, &[&keys[0], &keys[1], &keys[2]]);
    let block = Block { header: header.clone(), txs: txs.to_vec() };
    let vote = kinema_chain::block::Vote {
        chain_id: crate::CHAIN.into(),
        height: 7,
        round: 0,
        kind: kinema_chain::block::VoteKind::Precommit,
        block: Some(header.hash()),
    };
    let reply = BlockReply { block: block.clone(), certificate: Some(certificate.clone()) };
    let set_reply = ValidatorSetReply {
        epoch: 0,
        epoch_length: 100,
        height: 0,
        validators: set.clone(),
        proof: String::new(),
    };
    vec![
        ("tx", encode(&txs[0])),
        ("block", encode(&block)),
        ("vote", encode(&vote.sign(&keys[0]))),
        ("certificate", encode(&certificate)),
        ("validator set", encode(&set)),
        ("finalized", {
            let mut bytes = vec![kinema_chain::gossip::FINALIZED_TAG];
            bytes.extend(encode(&Finalized { header, certificate }));
            bytes
        }),
        ("block reply", serde_json::to_vec(&reply).unwrap()),
        ("set reply", serde_json::to_vec(&set_reply).unwrap()),
    ]
}

/// Every decoder on `bytes`.
fn decode_all(bytes: &[u8]) -> Result<(), TestCaseError> {
    explains("tx", decode::<SignedTx>(bytes))?;
    explains("block", decode::<Block>(bytes))?;
    explains("vote", decode::<SignedVote>(bytes))?;
    explains("proposal", decode::<SignedProposal>(bytes))?;
    explains("certificate", decode::<Certificate>(bytes))?;
    explains("validator set", decode::<ValidatorSet>(bytes))?;
    explains("account", decode::<Account>(bytes))?;
    explains("proof", decode::<Proof>(bytes))?;
    let _ = Finalized::from_gossip(bytes);
    explains("block reply", serde_json::from_slice::<BlockReply>(bytes))?;
    explains("set reply", serde_json::from_slice::<ValidatorSetReply>(bytes))?;
    // What a decoded transaction is then asked.
    if let Ok(tx) = decode::<SignedTx>(bytes) {
        explains("signature", tx.check_signature())?;
    }
    Ok(())
}

proptest! {
    #[test]
    fn fuzz_chain_decoders_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        decode_all(&bytes)?;
    }

    #[test]
    fn fuzz_chain_decoders_on_mutated_encodings(which in 0usize..8, changes in mutations()) {
        let samples = samples();
        let (_, valid) = &samples[which % samples.len()];
        decode_all(&mutate(valid, &changes))?;
    }
}
