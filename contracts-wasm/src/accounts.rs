//! Accounts: balances, transfers, stake and unbonding.

use borsh::{BorshDeserialize, BorshSerialize};

use crate::{Address, Host, Refusal, read_value, write_value};

/// Blocks between unstaking and getting the stake back as balance.
pub const UNBONDING_PERIOD: u64 = 100;

/// An account's state, stored under [`key`].
#[derive(Debug, Clone, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Account {
    /// Transactions sent so far; the next one must carry this nonce.
    pub nonce: u64,
    /// Spendable balance.
    pub balance: u64,
    /// Bonded stake (validator weight, slashable).
    pub stake: u64,
    /// Stake on its way back to the balance.
    pub unbonding: Vec<Unbonding>,
}

/// Stake that becomes balance again at a height.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Unbonding {
    /// How much.
    pub amount: u64,
    /// The first height at which it is released.
    pub release_height: u64,
}

/// Where `address`'s account lives: `account/` followed by the 20 address bytes.
pub fn key(address: &Address) -> Vec<u8> {
    const PREFIX: &[u8] = b"account/";
    let mut key = Vec::with_capacity(PREFIX.len() + address.len());
    key.extend_from_slice(PREFIX);
    key.extend_from_slice(address);
    key
}

/// The caller the chain itself uses for what no account may do (slashing): an address no key
/// hashes to in practice, all zeros.
pub const SYSTEM: Address = [0; 20];

/// Share of a double-signer's (two votes or two proposals for one step) bonded and unbonding
/// stake that is burnt, in basis points.
pub const DOUBLE_SIGN_SLASH_BPS: u64 = 500;

/// Arguments of [`slash`].
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SlashArgs {
    /// Who misbehaved.
    pub offender: Address,
    /// Share of its stake to burn, in basis points (1/10,000).
    pub bps: u64,
}

/// Arguments of [`transfer`].
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct TransferArgs {
    /// Receiver.
    pub to: Address,
    /// Amount.
    pub amount: u64,
}

/// The caller's account with matured unbonding entries paid back into its balance.
fn load(host: &impl Host, address: &Address) -> Result<Account, Refusal> {
    let mut account: Account = read_value(host, &key(address))?.unwrap_or_default();
    let now = host.height();
    let (due, pending): (Vec<Unbonding>, Vec<Unbonding>) =
        account.unbonding.into_iter().partition(|u| u.release_height <= now);
    account.unbonding = pending;
    for u in due {
        account.balance = account.balance.saturating_add(u.amount);
    }
    Ok(account)
}

fn store(host: &mut impl Host, address: &Address, account: &Account) {
    write_value(host, &key(address), account);
}

/// Takes `amount` from `address`'s balance for another contract (an escrow, a bond); `what`
/// names it in the refusal.
pub fn debit(
    host: &mut impl Host,
    address: &Address,
    amount: u64,
    what: &str,
) -> Result<(), Refusal> {
    let mut account = load(host, address)?;
    if account.balance < amount {
        return Err(Refusal(format!(
            "balance {} is less than the {amount} {what}",
            account.balance
        )));
    }
    account.balance -= amount;
    store(host, address, &account);
    Ok(())
}

/// Adds `amount` to `address`'s balance (what another contract pays out); a balance that
/// would overflow is refused.
pub fn credit(host: &mut impl Host, address: &Address, amount: u64) -> Result<(), Refusal> {
    let mut account = load(host, address)?;
    account.balance = account
        .balance
        .checked_add(amount)
        .ok_or_else(|| Refusal("a balance would overflow".into()))?;
    store(host, address, &account);
    Ok(())
}

/// Moves `amount` from the caller's balance to `to`.
pub fn transfer(host: &mut impl Host, args: &TransferArgs) -> Result<(), Refusal> {
    let from = host.caller();
    let mut sender = load(host, &from)?;
    if sender.balance < args.amount {
        return Err(Refusal(format!(
            "balance {} is less than the {} to transfer",
            sender.balance, args.amount
        )));
    }
    if from == args.to {
        store(host, &from, &sender);
        return Ok(());
    }
    let mut receiver = load(host, &args.to)?;
    let Some(credited) = receiver.balance.checked_add(args.amount) else {
        return Err(Refusal("the receiver's balance would overflow".into()));
    };
    sender.balance -= args.amount;
    receiver.balance = credited;
    store(host, &from, &sender);
    store(host, &args.to, &receiver);
    host.emit(&borsh::to_vec(&(b"transfer", from, args.to, args.amount)).unwrap_or_default());
    Ok(())
}

/// Bonds `amount` of the caller's balance as stake.
pub fn stake(host: &mut impl Host, amount: u64) -> Result<(), Refusal> {
    let who = host.caller();
    let mut account = load(host, &who)?;
    if account.balance < amount {
        return Err(Refusal(format!(
            "balance {} is less than the {amount} to stake",
            account.balance
        )));
    }
    account.balance -= amount;
    account.stake = account.stake.saturating_add(amount);
    store(host, &who, &account);
    Ok(())
}

/// Starts unbonding `amount` of the caller's stake; it returns to the balance
/// [`UNBONDING_PERIOD`] blocks later.
pub fn unstake(host: &mut impl Host, amount: u64) -> Result<(), Refusal> {
    let who = host.caller();
    let mut account = load(host, &who)?;
    if account.stake < amount {
        return Err(Refusal(format!(
            "stake {} is less than the {amount} to unstake",
            account.stake
        )));
    }
    account.stake -= amount;
    let release_height = host.height().saturating_add(UNBONDING_PERIOD);
    account.unbonding.push(Unbonding { amount, release_height });
    store(host, &who, &account);
    Ok(())
}

/// Burns `args.bps` of the offender's stake, unbonding stake included (it was bonded when the
/// offence happened). Only the chain ([`SYSTEM`]) may call it.
pub fn slash(host: &mut impl Host, args: &SlashArgs) -> Result<(), Refusal> {
    if host.caller() != SYSTEM {
        return Err(Refusal("only the chain itself may slash".into()));
    }
    if args.bps > 10_000 {
        return Err(Refusal(format!("cannot slash {} basis points of a stake", args.bps)));
    }
    let mut account = load(host, &args.offender)?;
    let cut = |amount: u64| (u128::from(amount) * u128::from(args.bps) / 10_000) as u64;
    let mut burnt = cut(account.stake);
    account.stake -= burnt;
    for u in &mut account.unbonding {
        let c = cut(u.amount);
        u.amount -= c;
        burnt += c;
    }
    store(host, &args.offender, &account);
    host.emit(&borsh::to_vec(&(b"slash", args.offender, burnt)).unwrap_or_default());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryHost;

    fn balance(host: &MemoryHost, who: Address) -> Account {
        read_value(host, &key(&who)).unwrap().unwrap_or_default()
    }

    #[test]
    fn transfers_stake_and_unbonding_move_value_and_refuse_overdrafts() {
        let (alice, bob) = ([1; 20], [2; 20]);
        let mut host = MemoryHost { caller: alice, height: 10, ..Default::default() };
        store(&mut host, &alice, &Account { balance: 100, ..Default::default() });
        transfer(&mut host, &TransferArgs { to: bob, amount: 30 }).unwrap();
        assert_eq!((balance(&host, alice).balance, balance(&host, bob).balance), (70, 30));
        assert_eq!(host.events.len(), 1);
        let over = transfer(&mut host, &TransferArgs { to: bob, amount: 71 }).unwrap_err();
        assert!(over.0.contains("balance 70 is less than the 71"), "{over:?}");

        stake(&mut host, 50).unwrap();
        assert!(stake(&mut host, 21).is_err());
        unstake(&mut host, 20).unwrap();
        let a = balance(&host, alice);
        assert_eq!((a.balance, a.stake, a.unbonding.len()), (20, 30, 1));
        host.height = 10 + UNBONDING_PERIOD;
        stake(&mut host, 0).unwrap(); // any call pays matured unbonding back
        let a = balance(&host, alice);
        assert_eq!((a.balance, a.stake, a.unbonding.len()), (40, 30, 0));
    }

    #[test]
    fn only_the_chain_slashes_and_unbonding_stake_is_not_spared() {
        let offender = [7; 20];
        let mut host = MemoryHost { caller: offender, height: 1, ..Default::default() };
        let unbonding = vec![Unbonding { amount: 1_000, release_height: 50 }];
        store(&mut host, &offender, &Account { stake: 10_000, unbonding, ..Default::default() });
        let args = SlashArgs { offender, bps: DOUBLE_SIGN_SLASH_BPS };
        assert!(slash(&mut host, &args).unwrap_err().0.contains("only the chain"));
        host.caller = SYSTEM;
        slash(&mut host, &args).unwrap();
        let a = balance(&host, offender);
        assert_eq!((a.stake, a.unbonding[0].amount), (9_500, 950));
        assert!(slash(&mut host, &SlashArgs { offender, bps: 10_001 }).is_err());
    }
}
