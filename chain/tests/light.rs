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

/// A chain of four validators: its genesis block, the header of block `height` and a
/// certificate for it signed by the first three.
struct Chain {
    keys: Vec<SecretKey>,
    set: ValidatorSet,
    genesis: kinema_chain::block::Block,
}

impl Chain {
    fn new(chain_id: &str) -> Self {
        let keys: Vec<SecretKey> = (31..35).map(key).collect();
        let set = ValidatorSet::new(
            keys.iter().map(|k| Validator { public_key: k.public(), power: 25 }).collect(),
        )
        .unwrap();
        let header = Header {
            chain_id: chain_id.into(),
            height: 0,
            parent: Hash::ZERO,
            time_ms: 1_795_000_000_000,
            proposer: Address([0; 20]),
            state_root: Hash([5; 32]),
            tx_root: Hash::ZERO,
            validator_set_hash: set.hash(),
        };
        Self { keys, set, genesis: kinema_chain::block::Block { header, txs: Vec::new() } }
    }

    fn genesis_reply(&self) -> kinema_chain::rpc::BlockReply {
        kinema_chain::rpc::BlockReply { block: self.genesis.clone(), certificate: None }
    }

    fn set_reply(&self, set: &ValidatorSet) -> kinema_chain::rpc::ValidatorSetReply {
        kinema_chain::rpc::ValidatorSetReply {
            epoch: 0,
            epoch_length: 100,
            height: 0,
            validators: set.clone(),
            proof: String::new(),
        }
    }

    fn certified(&self, chain_id: &str, height: u64) -> (Header, Certificate) {
        let header = Header {
            chain_id: chain_id.into(),
            height,
            parent: Hash([6; 32]),
            time_ms: 1_795_000_001_000,
            proposer: self.keys[0].address(),
            state_root: Hash([7; 32]),
            tx_root: Hash::ZERO,
            validator_set_hash: self.set.hash(),
        };
        let precommit = encode(&Vote {
            chain_id: chain_id.into(),
            height,
            round: 0,
            kind: VoteKind::Precommit,
            block: Some(header.hash()),
        });
        let signatures = self.keys[..3]
            .iter()
            .map(|k| CommitSignature {
                validator: k.address(),
                signature: k.sign(Domain::Vote, &precommit),
            })
            .collect();
        (header.clone(), Certificate { height, round: 0, block: header.hash(), signatures })
    }
}

#[test]
fn the_light_client_trusts_only_the_genesis_it_was_given() {
    use kinema_chain::light::LightClient;
    let chain = Chain::new("kinema-light");
    let trusted = chain.genesis.header.hash();
    let client =
        LightClient::new(&chain.genesis_reply(), chain.set_reply(&chain.set), trusted).unwrap();
    assert_eq!((client.chain_id(), client.genesis()), ("kinema-light", trusted));
    let (header, certificate) = chain.certified("kinema-light", 7);
    assert_eq!(client.verify(&header, &certificate).unwrap().height, 7);

    // Another genesis than the one the link named.
    let other = Chain::new("kinema-other");
    let why = LightClient::new(&other.genesis_reply(), other.set_reply(&other.set), trusted)
        .unwrap_err()
        .to_string();
    assert!(why.starts_with("not verified: the genesis block is"), "{why}");
    // The right genesis block with a forged validator set.
    let forged =
        ValidatorSet::new(vec![Validator { public_key: key(66).public(), power: 1 }]).unwrap();
    let why = LightClient::new(&chain.genesis_reply(), chain.set_reply(&forged), trusted)
        .unwrap_err()
        .to_string();
    assert!(why.contains("is not the one genesis"), "{why}");
    // A header of another chain, certified by the same validators there.
    let (header, certificate) = chain.certified("kinema-other", 7);
    let why = client.verify(&header, &certificate).unwrap_err().to_string();
    assert!(why.contains("of chain \"kinema-other\""), "{why}");
    // A forged certificate.
    let (header, mut certificate) = chain.certified("kinema-light", 8);
    certificate.signatures[1].signature = certificate.signatures[0].signature;
    let why = client.verify(&header, &certificate).unwrap_err().to_string();
    assert!(why.contains("does not verify"), "{why}");
}
