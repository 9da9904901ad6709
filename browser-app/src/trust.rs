//! What the app believes of the chain: a light client from the genesis the relay names (the
//! relay that served the app's own code), which checks each account reply's state proof
//! against a block certificate it verified, never the chain RPC's word alone.

use kinema_chain::Hash;
use kinema_chain::light::LightClient;
use kinema_chain::rpc::AccountReply;
use kinema_relay::chain::ChainClient;

/// A light client of the chain whose genesis block hashes to `genesis`.
pub(crate) async fn open(chain: &ChainClient, genesis: Hash) -> Result<LightClient, String> {
    let block = chain.block(0).await.map_err(|e| e.to_string())?;
    let set = chain.validator_set(0).await.map_err(|e| e.to_string())?;
    LightClient::new(&block, set, genesis).map_err(|e| format!("the genesis: {e}"))
}

/// Checks `reply` from there: `client` is moved to the epoch of its height (each next set on
/// the certificate of the epoch's last block and a state proof), the block at that height is
/// verified, and the reply's proof must show the account under that block's state root.
pub(crate) async fn check_account(
    client: &mut LightClient,
    chain: &ChainClient,
    reply: &AccountReply,
) -> Result<(), String> {
    let length = client.epoch_length();
    while reply.height > (client.epoch() + 1) * length {
        let last = chain.block((client.epoch() + 1) * length).await.map_err(|e| e.to_string())?;
        let next = chain.validator_set(client.epoch() + 1).await.map_err(|e| e.to_string())?;
        client.follow_epoch(&last, next).map_err(|e| format!("following the validators: {e}"))?;
    }
    let block = chain.block(reply.height).await.map_err(|e| e.to_string())?;
    let verified =
        client.verify_block(&block).map_err(|e| format!("block {}: {e}", reply.height))?;
    reply.check(&verified.state_root).map_err(|e| format!("account {}: {e}", reply.address))
}
