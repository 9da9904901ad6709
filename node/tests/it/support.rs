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
