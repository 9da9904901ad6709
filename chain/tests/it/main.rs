//! kinema-chain: canonical encodings pinned by snapshots, round trips, and the checks a light
//! client makes on certificates and evidence.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)] // tests fail loudly

mod fuzz;

use kinema_chain::block::{
    Block, Certificate, CommitSignature, Header, Validator, ValidatorSet, Vote, VoteKind, tx_root,
};
use kinema_chain::crypto::{Domain, SecretKey};
use kinema_chain::tx::{Account, Call, Evidence, SignedTx, Tx, Unbonding};
use kinema_chain::{Address, Error, Hash, decode, encode};
use proptest::prelude::*;

const CHAIN: &str = "kinema-test";

fn key(seed: u8) -> SecretKey {
    SecretKey::from_seed([seed; 32])
}

fn transfer(nonce: u64) -> SignedTx {
    Tx {
        chain_id: CHAIN.into(),
        signer: key(1).public(),
        nonce,
        fee: 1_000,
        call: Call::Transfer { to: key(2).address(), amount: 250 },
    }
    .sign(&key(1))
}

/// Four validators of powers 10, 20, 30, 40.
fn validators() -> (Vec<SecretKey>, ValidatorSet) {
    let keys: Vec<SecretKey> = (11..15).map(key).collect();
    let set = ValidatorSet::new(
        keys.iter()
            .zip([10, 20, 30, 40])
            .map(|(k, power)| Validator { public_key: k.public(), power })
            .collect(),
    )
    .unwrap();
    (keys, set)
}

fn header(set: &ValidatorSet, txs: &[SignedTx]) -> Header {
    Header {
        chain_id: CHAIN.into(),
        height: 7,
        parent: Hash::of("test parent", b"6"),
        time_ms: 1_795_000_000_000,
        proposer: key(11).address(),
        state_root: Hash::of("test state", b"7"),
        tx_root: tx_root(txs),
        validator_set_hash: set.hash(),
    }
}

fn certificate(header: &Header, signers: &[&SecretKey]) -> Certificate {
    let vote = Vote {
        chain_id: CHAIN.into(),
        height: header.height,
        round: 0,
        kind: VoteKind::Precommit,
        block: Some(header.hash()),
    };
    Certificate {
        height: header.height,
        round: 0,
        block: header.hash(),
        signatures: signers
            .iter()
            .map(|k| CommitSignature {
                validator: k.address(),
                signature: k.sign(Domain::Vote, &encode(&vote)),
            })
            .collect(),
    }
}

#[test]
fn encodings_are_pinned() {
    let tx = transfer(3);
    insta::assert_snapshot!("signed_transfer", hex::encode(encode(&tx)));
    insta::assert_snapshot!("signed_transfer_hash", tx.hash().to_string());
    let (keys, set) = validators();
    let header = header(&set, std::slice::from_ref(&tx));
    insta::assert_snapshot!("header", hex::encode(encode(&header)));
    insta::assert_snapshot!("header_hash", header.hash().to_string());
    let cert = certificate(&header, &[&keys[0], &keys[3]]);
    insta::assert_snapshot!("certificate", hex::encode(encode(&cert)));
    let account = Account {
        nonce: 4,
        balance: 1_000_000,
        stake: 5_000,
        unbonding: vec![Unbonding { amount: 100, release_height: 90 }],
    };
    insta::assert_snapshot!("account", hex::encode(encode(&account)));
    insta::assert_snapshot!("signed_transfer_json", serde_json::to_string_pretty(&tx).unwrap());
}

#[test]
fn decoding_refuses_trailing_and_missing_bytes() {
    let bytes = encode(&transfer(0));
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(matches!(decode::<SignedTx>(&longer), Err(Error::BadEncoding { .. })));
    assert!(decode::<SignedTx>(&bytes[..bytes.len() - 1]).is_err());
    let mut bad_variant = bytes.clone();
    // The call's variant tag follows chain id, signer, nonce and fee.
    let tag = 4 + CHAIN.len() + 32 + 8 + 8;
    bad_variant[tag] = 9;
    assert!(decode::<SignedTx>(&bad_variant).is_err());
}

fn arb_address() -> impl Strategy<Value = Address> {
    any::<[u8; 20]>().prop_map(Address)
}

fn arb_call() -> impl Strategy<Value = Call> {
    prop_oneof![
        (arb_address(), any::<u64>()).prop_map(|(to, amount)| Call::Transfer { to, amount }),
        any::<u64>().prop_map(|amount| Call::Stake { amount }),
        any::<u64>().prop_map(|amount| Call::Unstake { amount }),
        (arb_address(), "[a-z_]{0,12}", proptest::collection::vec(any::<u8>(), 0..64))
            .prop_map(|(contract, method, args)| Call::Contract { contract, method, args }),
    ]
}

proptest! {
    #[test]
    fn transactions_round_trip_and_keep_their_signature(
        seed in any::<[u8; 32]>(), nonce in any::<u64>(), fee in any::<u64>(), call in arb_call(),
        chain in "[a-z-]{1,16}",
    ) {
        let key = SecretKey::from_seed(seed);
        let signed = Tx { chain_id: chain, signer: key.public(), nonce, fee, call }.sign(&key);
        let bytes = encode(&signed);
        let back: SignedTx = decode(&bytes).unwrap();
        prop_assert_eq!(&back, &signed);
        prop_assert_eq!(encode(&back), bytes);
        prop_assert!(back.check_signature().is_ok());
        let json = serde_json::to_string(&signed).unwrap();
        prop_assert_eq!(serde_json::from_str::<SignedTx>(&json).unwrap(), signed);
    }
}

#[test]
fn tx_roots_depend_on_every_transaction_and_its_place() {
    let txs: Vec<SignedTx> = (0..5).map(transfer).collect();
    let root = tx_root(&txs);
    assert_ne!(root, tx_root(&txs[..4]));
    let mut swapped = txs.clone();
    swapped.swap(1, 2);
    assert_ne!(root, tx_root(&swapped));
    assert_ne!(tx_root(&txs[..1]), txs[0].hash(), "a leaf is hashed apart from a tx hash");
    let block = Block { header: header(&validators().1, &txs), txs: txs.clone() };
    assert_eq!(block.header.tx_root, root);
    assert_eq!(decode::<Block>(&encode(&block)).unwrap(), block);
}

#[test]
fn a_certificate_needs_more_than_two_thirds_of_the_power() {
    let (keys, set) = validators();
    let header = header(&set, &[]);
    // 40 + 20 of 100 is not more than 2/3, 40 + 20 + 10 is (and so is 40 + 30).
    let check = |signers: &[&SecretKey]| certificate(&header, signers).verify(&header, &set);
    let short = check(&[&keys[3], &keys[1]]).unwrap_err().to_string();
    assert!(short.contains("60 of 100"), "{short}");
    assert_eq!(check(&[&keys[3], &keys[1], &keys[0]]).unwrap(), 70);
    assert_eq!(check(&[&keys[3], &keys[2]]).unwrap(), 70);

    // A signer counted twice, a stranger, a signature on another block, another height.
    let twice = check(&[&keys[3], &keys[3], &keys[1]]).unwrap_err().to_string();
    assert!(twice.contains("signs twice"), "{twice}");
    let stranger = key(99);
    let err = check(&[&keys[3], &keys[2], &stranger]).unwrap_err().to_string();
    assert!(err.contains("is not a validator"), "{err}");
    let mut forged = certificate(&header, &[&keys[3], &keys[2], &keys[1]]);
    forged.signatures[2].signature = keys[1].sign(Domain::Vote, b"something else");
    assert!(matches!(forged.verify(&header, &set), Err(Error::BadSignature { .. })));
    let mut later = header.clone();
    later.height += 1;
    assert!(certificate(&header, &[&keys[3], &keys[2], &keys[1]]).verify(&later, &set).is_err());
    let other_set =
        ValidatorSet::new(vec![Validator { public_key: key(50).public(), power: 1 }]).unwrap();
    let err = check(&[&keys[3], &keys[2], &keys[1]])
        .and(certificate(&header, &[&keys[3], &keys[2], &keys[1]]).verify(&header, &other_set));
    assert!(err.unwrap_err().to_string().contains("another validator set"));
}

#[test]
fn double_signing_is_proved_by_two_votes_and_nothing_else() {
    let k = key(12);
    let vote = |block: &[u8]| Vote {
        chain_id: CHAIN.into(),
        height: 9,
        round: 1,
        kind: VoteKind::Precommit,
        block: Some(Hash::of("test block", block)),
    };
    let (a, b) = (vote(b"a").sign(&k), vote(b"b").sign(&k));
    let evidence = Evidence::DoubleSign { first: a.clone(), second: b.clone() };
    assert_eq!(evidence.offender().unwrap(), k.address());

    let same = Evidence::DoubleSign { first: a.clone(), second: a.clone() };
    assert!(same.offender().unwrap_err().to_string().contains("agree"));
    let other_validator = vote(b"b").sign(&key(13));
    let two = Evidence::DoubleSign { first: a.clone(), second: other_validator };
    assert!(two.offender().unwrap_err().to_string().contains("different validators"));
    let mut later = vote(b"b");
    later.round = 2;
    let steps = Evidence::DoubleSign { first: a.clone(), second: later.sign(&k) };
    assert!(steps.offender().unwrap_err().to_string().contains("different steps"));
    let mut forged = b;
    forged.signature = a.signature;
    let forged = Evidence::DoubleSign { first: a, second: forged };
    assert!(matches!(forged.offender(), Err(Error::BadSignature { .. })));
}

#[test]
fn double_proposing_is_proved_by_two_proposals_for_one_round() {
    use kinema_chain::block::Proposal;

    let k = key(14);
    let proposal = |block: &[u8]| Proposal {
        chain_id: CHAIN.into(),
        height: 9,
        round: 1,
        block: Hash::of("test block", block),
        pol_round: None,
    };
    let (a, b) = (proposal(b"a").sign(&k), proposal(b"b").sign(&k));
    let evidence = Evidence::DoubleProposal { first: a.clone(), second: b.clone() };
    assert_eq!(evidence.offender().unwrap(), k.address());

    let same = Evidence::DoubleProposal { first: a.clone(), second: a.clone() };
    assert!(same.offender().unwrap_err().to_string().contains("agree"));
    let other = proposal(b"b").sign(&key(15));
    let two = Evidence::DoubleProposal { first: a.clone(), second: other };
    assert!(two.offender().unwrap_err().to_string().contains("different validators"));
    let mut later = proposal(b"b");
    later.round = 2;
    let rounds = Evidence::DoubleProposal { first: a.clone(), second: later.sign(&k) };
    assert!(rounds.offender().unwrap_err().to_string().contains("different rounds"));
    // A signature over the other proposal does not verify.
    let mut forged = b;
    forged.signature = a.signature;
    let forged = Evidence::DoubleProposal { first: a, second: forged };
    assert!(matches!(forged.offender(), Err(Error::BadSignature { .. })));
}
