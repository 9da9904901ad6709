//! Helpers shared by the chain's tests.

use kinema_chain::crypto::SecretKey;
use kinema_chain::encode;
use kinema_chain::execute::Overlay;
use kinema_chain::state::account_key;
use kinema_chain::tx::Account;

/// The chain id the tests sign for.
pub(crate) const CHAIN: &str = "kinema-test";

/// A fee that covers any call the tests make.
pub(crate) const FEE: u64 = 1_000_000;

/// The key made from 32 copies of `seed`.
pub(crate) fn key(seed: u8) -> SecretKey {
    SecretKey::from_seed([seed; 32])
}

/// A state in memory where each key's account holds its balance.
pub(crate) fn funded(accounts: &[(&SecretKey, u64)]) -> Overlay {
    let mut state = Overlay::new(None, None);
    for (k, balance) in accounts {
        let account = Account { balance: *balance, ..Default::default() };
        state.set(account_key(&k.address()), Some(encode(&account)));
    }
    state
}

/// A header of block 7 of the test chain, proposed by `key(11)` (what tests of gossip need;
/// not a block that executes).
pub(crate) fn header() -> kinema_chain::block::Header {
    use kinema_chain::Hash;
    kinema_chain::block::Header {
        chain_id: CHAIN.into(),
        height: 7,
        parent: Hash::of("test parent", b"6"),
        time_ms: 1_795_000_000_000,
        proposer: key(11).address(),
        state_root: Hash::of("test state", b"7"),
        tx_root: Hash::ZERO,
        validator_set_hash: Hash::of("test set", b"7"),
    }
}
