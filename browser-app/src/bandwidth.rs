//! Bandwidth tickets from the wallet: the deposit and reserve the tickets contract holds for
//! the key as a viewer (funded, unlocked, withdrawn here), and what tickets paid it as a peer.
//! Every figure shown is read with its state proof and checked by the light client.

use kinema_chain::Address;
use kinema_chain::tx::Call;
use kinema_contracts::system::TICKETS;
use kinema_contracts::tickets::{self, Earned, FundArgs, Sender, UNLOCK_BLOCKS};
use kinema_relay::chain::Signer;
use leptos::prelude::*;

use crate::app::{Ctx, FEE, origin};
use crate::trust;
use crate::upload::wait_committed;

/// The key's ticket funds and earnings, checked, with the height they were proved at.
async fn read(ctx: Ctx) -> Result<(Option<Sender>, Earned, u64), String> {
    let me = ctx.key.get_untracked().ok_or("the wallet is locked")?.address();
    let (funds, at) = trust::read_proved(ctx, &tickets::sender_key(&me.0)).await?;
    let (earned, _) = trust::read_proved(ctx, &tickets::earned_key(&me.0)).await?;
    let funds: Option<Sender> = funds
        .map(|b| kinema_chain::decode(&b))
        .transpose()
        .map_err(|e| format!("the funds: {e}"))?;
    let earned: Option<Earned> = earned
        .map(|b| kinema_chain::decode(&b))
        .transpose()
        .map_err(|e| format!("the earnings: {e}"))?;
    Ok((funds, earned.unwrap_or_default(), at))
}

/// Signs and sends a call to the tickets contract, and waits until it is committed.
async fn send(ctx: Ctx, method: &str, args: Vec<u8>) -> Result<(), String> {
    let key = ctx.key.get_untracked().ok_or("the wallet is locked")?;
    let chain = ctx.chain()?;
    let mut signer = Signer::new(chain.clone(), key).await.map_err(|e| e.to_string())?;
    let call = Call::Contract { contract: Address(TICKETS), method: method.into(), args };
    let reply = signer.send(call, FEE).await.map_err(|e| e.to_string())?;
    wait_committed(&chain, &reply).await
}

/// A whole number typed into `field`, or why not.
fn amount(text: &str, field: &str) -> Result<u64, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(0);
    }
    text.parse().map_err(|_| format!("{field}: {text:?} is not a whole number"))
}

#[component]
pub(crate) fn Bandwidth() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let deposit = RwSignal::new(String::new());
    let reserve = RwSignal::new(String::new());
    let message = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let price = LocalResource::new(|| async {
        kinema_relay::api::Client::new(&origin())
            .status()
            .await
            .ok()
            .and_then(|s| s.bandwidth_price_per_mib)
    });
    let funds = LocalResource::new(move || {
        // Read again when the balance moves: funding, withdrawing and redeemed tickets do.
        ctx.account.with(|a| a.as_ref().map(|a| (a.balance, a.nonce)));
        read(ctx)
    });
    let act = move |method: &'static str, args: Result<Vec<u8>, String>| {
        let args = match args {
            Ok(args) => args,
            Err(why) => return message.set(why),
        };
        busy.set(true);
        message.set(format!("sending {method}…"));
        leptos::task::spawn_local(async move {
            match send(ctx, method, args).await {
                Ok(()) => message.set(format!("{method}: committed")),
                Err(why) => message.set(format!("{method}: {why}")),
            }
            busy.set(false);
            funds.refetch();
        });
    };
    let fund = move |_| {
        let args = amount(&deposit.get_untracked(), "deposit").and_then(|d| {
            let r = amount(&reserve.get_untracked(), "reserve")?;
            if d == 0 && r == 0 {
                return Err("type a deposit, a reserve, or both".into());
            }
            Ok(kinema_chain::encode(&FundArgs { deposit: d, reserve: r }))
        });
        act("fund", args);
    };
    let unlock = move |_| act("unlock", Ok(kinema_chain::encode(&())));
    let withdraw = move |_| act("withdraw", Ok(kinema_chain::encode(&())));

    view! {
        <section class="bandwidth">
            <h2>"Bandwidth tickets"</h2>
            <p>
                "As a viewer you pay the peers that deliver segments to you in probabilistic tickets: each is worth "
                "its share of the price on average, and only winners reach the chain. They are paid from a deposit, "
                "and a reserve for when it runs short, that the chain's tickets contract holds for you. "
                {move || match price.get().flatten() {
                    Some(p) => format!("This relay's price: {p} per MiB."),
                    None => "This relay names no price.".into(),
                }}
            </p>
            <Suspense fallback=|| view! { <p>"Reading the chain…"</p> }>
                {move || funds.get().map(|read| match read {
                    Ok((f, earned, at)) => {
                        let f = f.unwrap_or_default();
                        let unlocking = f.unlocks_at.map(|h| format!(", withdrawable from block {h}")).unwrap_or_default();
                        view! {
                            <p data-testid="tickets-funds" data-deposit=f.deposit.to_string()
                                data-reserve=f.reserve.to_string()
                                data-unlocks=f.unlocks_at.map(|h| h.to_string()).unwrap_or_default()>
                                {format!("deposit {}, reserve {}{unlocking}", f.deposit, f.reserve)}
                            </p>
                            <p data-testid="tickets-earned" data-tickets=earned.tickets.to_string()
                                data-amount=earned.amount.to_string()>
                                {format!("as a peer: paid {} by {} winning tickets", earned.amount, earned.tickets)}
                            </p>
                            <small data-testid="tickets-checked">{format!("(proved at block {at} from genesis)")}</small>
                        }.into_any()
                    }
                    Err(why) => view! { <p class="message" data-testid="tickets-error">{format!("not checked: {why}")}</p> }.into_any(),
                })}
            </Suspense>
            <div>
                <input data-testid="tickets-deposit" placeholder="deposit" inputmode="numeric"
                    prop:value=move || deposit.get() on:input=move |ev| deposit.set(event_target_value(&ev)) />
                <input data-testid="tickets-reserve" placeholder="reserve" inputmode="numeric"
                    prop:value=move || reserve.get() on:input=move |ev| reserve.set(event_target_value(&ev)) />
                <button data-testid="tickets-fund" disabled=move || busy.get() on:click=fund>"Fund"</button>
                <button data-testid="tickets-unlock" disabled=move || busy.get() on:click=unlock
                    title=format!("the funds can be withdrawn {UNLOCK_BLOCKS} blocks later")>"Unlock"</button>
                <button data-testid="tickets-withdraw" disabled=move || busy.get() on:click=withdraw>"Withdraw"</button>
            </div>
            <p class="message" data-testid="tickets-message">{move || message.get()}</p>
        </section>
    }
}
