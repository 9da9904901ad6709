//! Where the system contracts live: each has a fixed address, so a transaction calls one by
//! address and method and a new contract needs no change to the chain's transaction type.
//!
//! The addresses are 19 zero bytes and the contract's number: no key hashes to them in practice,
//! and all zeros ([`crate::accounts::SYSTEM`]) is the chain itself.

use crate::Address;

const fn numbered(n: u8) -> Address {
    let mut address = [0; 20];
    address[19] = n;
    address
}

/// The accounts contract: transfers, stake, unstake.
pub const ACCOUNTS: Address = numbered(1);
/// The jobs contract: the transcode market.
pub const JOBS: Address = numbered(2);

/// The tickets contract: bandwidth paid in probabilistic micropayments.
pub const TICKETS: Address = numbered(3);

/// Every system contract: its address and the name its methods are exported under.
pub const CONTRACTS: [(Address, &str); 3] =
    [(ACCOUNTS, "accounts"), (JOBS, "jobs"), (TICKETS, "tickets")];

/// The name of the contract at `address`, if one lives there.
pub fn name(address: &Address) -> Option<&'static str> {
    CONTRACTS.iter().find(|(a, _)| a == address).map(|(_, name)| *name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_contract_has_its_own_address_and_none_is_the_chain() {
        assert_eq!(name(&ACCOUNTS), Some("accounts"));
        assert_eq!(name(&JOBS), Some("jobs"));
        assert_eq!(name(&TICKETS), Some("tickets"));
        assert_eq!(name(&crate::accounts::SYSTEM), None);
        assert_eq!(name(&[7; 20]), None);
    }
}
