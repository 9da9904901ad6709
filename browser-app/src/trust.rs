//! What the app believes of the chain: a light client from the genesis the relay names (the
//! relay that served the app's own code), which checks each reply's state proof against a
//! block certificate it verified, never the chain RPC's word alone.

use kinema_chain::Hash;
use kinema_chain::light::LightClient;
use kinema_chain::rpc::{AccountReply, StateReply};
use kinema_relay::chain::ChainClient;
use leptos::prelude::*;

use crate::app::{Ctx, origin};

/// A light client of the chain whose genesis block hashes to `genesis`.
async fn open(chain: &ChainClient, genesis: Hash) -> Result<LightClient, String> {
    let block = chain.block(0).await.map_err(|e| e.to_string())?;
    let set = chain.validator_set(0).await.map_err(|e| e.to_string())?;
    LightClient::new(&block, set, genesis).map_err(|e| format!("the genesis: {e}"))
}

/// The state root of the block at `height`, as the light client verified it: `client` is
/// moved to the epoch of that height first (each next set on the certificate of the epoch's
/// last block and a state proof).
async fn verified_root(
    client: &mut LightClient,
    chain: &ChainClient,
    height: u64,
) -> Result<Hash, String> {
    let length = client.epoch_length();
    while height > (client.epoch() + 1) * length {
        let last = chain.block((client.epoch() + 1) * length).await.map_err(|e| e.to_string())?;
        let next = chain.validator_set(client.epoch() + 1).await.map_err(|e| e.to_string())?;
        client.follow_epoch(&last, next).map_err(|e| format!("following the validators: {e}"))?;
    }
    let block = chain.block(height).await.map_err(|e| e.to_string())?;
    let verified = client.verify_block(&block).map_err(|e| format!("block {height}: {e}"))?;
    Ok(verified.state_root)
}

/// The app's light client (made on first use from the genesis the relay names) and the
/// chain RPC's client.
async fn client(ctx: Ctx) -> Result<(LightClient, ChainClient), String> {
    let genesis = match ctx.genesis.get_untracked() {
        Some(genesis) => genesis,
        None => kinema_relay::api::Client::new(&origin())
            .status()
            .await
            .map_err(|e| e.to_string())?
            .genesis
            .ok_or("this relay names no genesis, so nothing of the chain can be checked")?,
    };
    let chain = ctx.chain()?;
    let client = match ctx.light.get_value() {
        Some(client) => client,
        None => open(&chain, genesis).await?,
    };
    Ok((client, chain))
}

/// Keeps `client` as the app's when it got further than the one kept.
fn keep(ctx: Ctx, client: LightClient) {
    if ctx.light.with_value(|kept| kept.as_ref().is_none_or(|k| k.epoch() <= client.epoch())) {
        ctx.light.set_value(Some(client));
    }
}

/// Checks an account reply: its proof must show the account under the verified root of the
/// block at its height.
pub(crate) async fn check_account(ctx: Ctx, reply: &AccountReply) -> Result<(), String> {
    let (mut client, chain) = client(ctx).await?;
    let root = verified_root(&mut client, &chain, reply.height).await;
    keep(ctx, client);
    reply.check(&root?).map_err(|e| format!("account {}: {e}", reply.address))
}

/// Reads state key `key` at the head and checks it the same way; returns the value's bytes
/// (a contract's borsh) and the height it was proved at.
pub(crate) async fn read_proved(ctx: Ctx, key: &[u8]) -> Result<(Option<Vec<u8>>, u64), String> {
    let (mut client, chain) = client(ctx).await?;
    let reply: StateReply = chain.state(key).await.map_err(|e| e.to_string())?;
    let root = verified_root(&mut client, &chain, reply.height).await;
    keep(ctx, client);
    let value = reply.check(key, &root?).map_err(|e| format!("state {}: {e}", reply.key))?;
    Ok((value, reply.height))
}
