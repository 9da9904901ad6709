//! What the app believes of the chain: a light client from the genesis the relay names (the
//! relay that served the app's own code), which checks each reply's state proof against a
//! block certificate it verified, never the chain RPC's word alone.

use kinema_chain::light::LightClient;
use kinema_chain::rpc::AccountReply;
use kinema_relay::chain::ChainClient;
use leptos::prelude::*;

use crate::app::{Ctx, origin};

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
        None => chain.light_client(genesis).await?,
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
    let root = chain.verified_root(&mut client, reply.height).await;
    keep(ctx, client);
    reply.check(&root?).map_err(|e| format!("account {}: {e}", reply.address))
}

/// Reads state key `key` at the head and checks it the same way; returns the value's bytes
/// (a contract's borsh) and the height it was proved at.
pub(crate) async fn read_proved(ctx: Ctx, key: &[u8]) -> Result<(Option<Vec<u8>>, u64), String> {
    let (mut client, chain) = client(ctx).await?;
    let read = chain.read_proved(&mut client, key).await;
    keep(ctx, client);
    read
}
