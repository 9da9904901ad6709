//! Paid bandwidth in the tab: the [`Ledger`] of tickets it pays the browsers that deliver to it
//! and takes for what it serves, and the reader that tells it the chain's height and each
//! sender's funds — read from the chain RPC and checked against a state proof under a block
//! the light client verified from the genesis the page trusts, never the RPC's word alone.

use std::time::Duration;

use futures::channel::mpsc;
use futures::{FutureExt, SinkExt, StreamExt};
use kinema_chain::light::LightClient;
use kinema_chain::tickets::protocol::Ledger;
use kinema_chain::tickets::{Sender, sender_key};
use kinema_chain::{Address, Hash};
use kinema_relay::chain::ChainClient;
use libp2p::PeerId;
use libp2p::request_response::ResponseChannel;

use crate::Command;

/// The tab's ledger: peers by id, requests answered on their channels.
pub(crate) type TabLedger = Ledger<PeerId, ResponseChannel<Vec<u8>>>;

/// How often the chain's height is asked for.
const HEIGHT_EVERY: Duration = Duration::from_secs(5);

/// What the reader tells the swarm's task (as [`Command::Chain`]).
pub(crate) enum News {
    /// The chain's height.
    Height(u64),
    /// A sender's funds, proved, at a height (or why they could not be read).
    Funds(Address, Result<(Option<Sender>, u64), String>),
}

/// Reads what `asks` names from the chain at `chain`, trusting the genesis `genesis`, and the
/// height every few seconds; tells `news` until either side goes away.
pub(crate) async fn follow(
    chain: ChainClient,
    genesis: Hash,
    mut asks: mpsc::Receiver<Address>,
    mut news: mpsc::Sender<Command>,
) {
    let mut light: Option<LightClient> = None;
    loop {
        let tick = futures_timer::Delay::new(HEIGHT_EVERY).fuse();
        futures::pin_mut!(tick);
        let told = futures::select! {
            ask = asks.next() => {
                let Some(sender) = ask else { return };
                let read = funds(&chain, &mut light, genesis, sender).await;
                news.send(Command::Chain(News::Funds(sender, read))).await
            }
            _ = tick => match chain.status().await {
                Ok(status) => news.send(Command::Chain(News::Height(status.height))).await,
                Err(_) => Ok(()),
            },
        };
        if told.is_err() {
            return;
        }
    }
}

/// `sender`'s ticket funds, proved.
async fn funds(
    chain: &ChainClient,
    light: &mut Option<LightClient>,
    genesis: Hash,
    sender: Address,
) -> Result<(Option<Sender>, u64), String> {
    let client = match light {
        Some(client) => client,
        None => light.insert(chain.light_client(genesis).await?),
    };
    let (value, height) = chain.read_proved(client, &sender_key(&sender.0)).await?;
    let funds = value
        .map(|bytes| kinema_chain::decode::<Sender>(&bytes))
        .transpose()
        .map_err(|e| format!("the sender's funds do not decode: {e}"))?;
    Ok((funds, height))
}
