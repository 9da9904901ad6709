//! The light client's checks — a header's certificate against a validator set, an account
//! against a header's state root — run natively and, in CI, in wasm32 under Node
//! (`wasm-bindgen-test`), as the browser light node will run them.
//!
//! The account proofs come from `tests/fixtures/account-proofs.bin`, made by a real store;
//! kinema-node's `the_light_client_fixture_is_what_the_store_makes` checks it is current and
//! rewrites it when `KINEMA_UPDATE_FIXTURES=1`.

#![allow(clippy::unwrap_used)]

use kinema_chain::block::{
    Certificate, CommitSignature, Header, Validator, ValidatorSet, Vote, VoteKind,
};
use kinema_chain::crypto::{Domain, SecretKey};
use kinema_chain::state::Proof;
use kinema_chain::tx::Account;
use kinema_chain::{Address, Hash, decode, encode};
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

/// Under one state root: an account that exists and one that does not, with their proofs.
type Fixture = (Hash, Vec<(Address, Option<Account>, Proof)>);

const FIXTURE: &[u8] = include_bytes!("fixtures/account-proofs.bin");

fn key(seed: u8) -> SecretKey {
    SecretKey::from_seed([seed; 32])
}

#[test]
fn a_certificate_is_checked_against_its_validator_set() {
    let keys: Vec<SecretKey> = (21..25).map(key).collect();
    let set = ValidatorSet::new(
        keys.iter().map(|k| Validator { public_key: k.public(), power: 25 }).collect(),
    )
    .unwrap();
    let header = Header {
        chain_id: "kinema-light".into(),
        height: 12,
        parent: Hash([3; 32]),
        time_ms: 1_795_000_000_000,
        proposer: keys[0].address(),
        state_root: Hash([4; 32]),
        tx_root: Hash::ZERO,
        validator_set_hash: set.hash(),
    };
    let precommit = encode(&Vote {
        chain_id: header.chain_id.clone(),
        height: 12,
        round: 2,
        kind: VoteKind::Precommit,
        block: Some(header.hash()),
    });
    let certificate = |signers: &[SecretKey]| Certificate {
        height: 12,
        round: 2,
        block: header.hash(),
        signatures: signers
            .iter()
            .map(|k| CommitSignature {
                validator: k.address(),
                signature: k.sign(Domain::Vote, &precommit),
            })
            .collect(),
    };
    // It arrives as bytes, as a light client receives it.
    let three: Certificate = decode(&encode(&certificate(&keys[..3]))).unwrap();
    assert_eq!(three.verify(&header, &set).unwrap(), 75);
    assert!(certificate(&keys[..2]).verify(&header, &set).is_err());
}

#[test]
fn account_proofs_from_a_store_verify_against_its_root() {
    let (root, entries): Fixture = decode(FIXTURE).unwrap();
    assert_eq!(entries.len(), 2);
    for (address, account, proof) in &entries {
        proof.verify_account(root, address, account.as_ref()).unwrap();
        let lie = Some(Account { balance: 1, ..Default::default() });
        assert!(proof.verify_account(root, address, lie.as_ref()).is_err());
        assert!(proof.verify_account(Hash([9; 32]), address, account.as_ref()).is_err());
    }
    assert!(entries[0].1.is_some() && entries[1].1.is_none());
}
