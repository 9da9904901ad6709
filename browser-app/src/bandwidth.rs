//! Bandwidth tickets from the wallet: the deposit and reserve the tickets contract holds for
//! the key as a viewer (funded, unlocked, withdrawn here), and what tickets paid it as a peer.
//! Every figure shown is read with its state proof and checked by the light client.
//!
//! And this browser's bandwidth key, the one the player signs and takes tickets with (kept in
//! localStorage by the player's `mining.js`): its ticket deposit, funded from the wallet (the
//! wallet sends the key the deposit and the fee, the key funds itself), and the winning tickets
//! the player holds for it, claimed into the wallet (the key signs each claim, the wallet
//! redeems it and pays the fee).

use kinema_chain::Address;
use kinema_chain::crypto::SecretKey;
use kinema_chain::tx::Call;
use kinema_contracts::system::TICKETS;
use kinema_contracts::tickets::{self, Earned, FundArgs, RedeemArgs, Sender, UNLOCK_BLOCKS};
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

fn tickets_call(method: &str, args: Vec<u8>) -> Call {
    Call::Contract { contract: Address(TICKETS), method: method.into(), args }
}

/// Signs with `key` and sends `calls` in order, and waits until the last is committed.
async fn send_as(ctx: Ctx, key: SecretKey, calls: Vec<Call>) -> Result<(), String> {
    let chain = ctx.chain()?;
    let mut signer = Signer::new(chain.clone(), key).await.map_err(|e| e.to_string())?;
    let mut last = None;
    for call in calls {
        last = Some(signer.send(call, FEE).await.map_err(|e| e.to_string())?);
    }
    match last {
        Some(reply) => wait_committed(&chain, &reply).await,
        None => Ok(()),
    }
}

/// Signs and sends a call to the tickets contract, and waits until it is committed.
async fn send(ctx: Ctx, method: &str, args: Vec<u8>) -> Result<(), String> {
    let key = ctx.key.get_untracked().ok_or("the wallet is locked")?;
    send_as(ctx, key, vec![tickets_call(method, args)]).await
}

/// Where the player keeps this browser's bandwidth key (a seed, 64 hex digits).
const BROWSER_KEY: &str = "kinema-bandwidth-key";
/// Where the player keeps the winning tickets it holds for that key (a JSON array of hex
/// borsh `RedeemArgs`).
const BROWSER_WINNERS: &str = "kinema-bandwidth-winners";

/// Where the player keeps its "mine bandwidth" switch ("0": off) and upload cap (MiB).
const MINE: &str = "kinema-mine-bandwidth";
const UPLOAD_CAP: &str = "kinema-upload-cap-mib";

fn storage() -> Result<web_sys::Storage, String> {
    web_sys::window()
        .and_then(|w| w.local_storage().ok().flatten())
        .ok_or_else(|| "this browser keeps nothing (no localStorage)".into())
}

/// This browser's bandwidth key, if the player made one.
fn browser_key() -> Result<Option<SecretKey>, String> {
    let seed = storage()?.get_item(BROWSER_KEY).ok().flatten();
    Ok(seed.and_then(|s| hex::decode(s.trim()).ok()?.try_into().ok()).map(SecretKey::from_seed))
}

/// The winners the player holds: each as kept, and decoded (what does not decode is left out).
fn held_winners() -> Result<Vec<(String, RedeemArgs)>, String> {
    let text = storage()?.get_item(BROWSER_WINNERS).ok().flatten().unwrap_or_default();
    let kept: Vec<String> = serde_json::from_str(&text).unwrap_or_default();
    Ok(kept
        .into_iter()
        .filter_map(|w| {
            let args = hex::decode(&w).ok().and_then(|b| kinema_chain::decode(&b).ok())?;
            Some((w, args))
        })
        .collect())
}

/// Drops `gone` from the winners the player holds (what it added meanwhile stays).
fn forget_winners(gone: &[String]) -> Result<(), String> {
    let storage = storage()?;
    let text = storage.get_item(BROWSER_WINNERS).ok().flatten().unwrap_or_default();
    let mut kept: Vec<String> = serde_json::from_str(&text).unwrap_or_default();
    kept.retain(|w| !gone.contains(w));
    let json = serde_json::to_string(&kept).map_err(|e| e.to_string())?;
    storage.set_item(BROWSER_WINNERS, &json).map_err(|_| "localStorage refused the write".into())
}

/// The wallet sends this browser's key `deposit` and the fee, and the key adds the deposit to
/// its ticket funds.
async fn fund_browser(ctx: Ctx, deposit: u64) -> Result<(), String> {
    let wallet = ctx.key.get_untracked().ok_or("the wallet is locked")?;
    let key = browser_key()?.ok_or("this browser has no bandwidth key: play a video first")?;
    let to = key.address();
    let amount = deposit.checked_add(FEE).ok_or("the deposit is too large")?;
    send_as(ctx, wallet, vec![Call::Transfer { to, amount }]).await?;
    let fund = kinema_chain::encode(&FundArgs { deposit, reserve: 0 });
    send_as(ctx, key, vec![tickets_call("fund", fund)]).await
}

/// Every winner this browser holds, claimed into the wallet: the key signs a claim for the
/// wallet, the wallet redeems it. Those past their last height are dropped. Returns how many
/// were sent, and what they pay.
async fn claim_winnings(ctx: Ctx) -> Result<(usize, u64), String> {
    let wallet = ctx.key.get_untracked().ok_or("the wallet is locked")?;
    let key = browser_key()?.ok_or("this browser has no bandwidth key")?;
    let height = ctx.chain()?.status().await.map_err(|e| e.to_string())?.height;
    let held = held_winners()?;
    let (live, expired): (Vec<_>, Vec<_>) =
        held.into_iter().partition(|(_, w)| w.ticket.ticket.expires > height);
    forget_winners(&expired.into_iter().map(|(w, _)| w).collect::<Vec<_>>())?;
    let mut calls = Vec::new();
    let (mut sent, mut worth) = (Vec::new(), 0u64);
    for (kept, mut args) in live {
        if args.ticket.ticket.recipient != key.address().0 {
            continue; // another key's: not this browser's to claim
        }
        kinema_chain::tickets::claim(&key, &mut args, wallet.address());
        worth = worth.saturating_add(args.ticket.ticket.face_value);
        calls.push(tickets_call("redeem", kinema_chain::encode(&args)));
        sent.push(kept);
    }
    send_as(ctx, wallet, calls).await?;
    forget_winners(&sent)?;
    Ok((sent.len(), worth))
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
    // This browser's key: its address, funds (checked) and the winners held for it.
    let browser_deposit = RwSignal::new(String::new());
    let browser = LocalResource::new(move || {
        ctx.account.with(|a| a.as_ref().map(|a| (a.balance, a.nonce)));
        async move {
            let Some(key) = browser_key()? else { return Ok(None) };
            let (funds, _) =
                trust::read_proved(ctx, &tickets::sender_key(&key.address().0)).await?;
            let funds: Option<Sender> = funds
                .map(|b| kinema_chain::decode(&b))
                .transpose()
                .map_err(|e| format!("the funds: {e}"))?;
            let held = held_winners()?;
            let worth = held.iter().map(|(_, w)| w.ticket.ticket.face_value).sum::<u64>();
            Ok::<_, String>(Some((key.address(), funds.unwrap_or_default(), held.len(), worth)))
        }
    });
    let fund_this = move |_| {
        let deposit = match amount(&browser_deposit.get_untracked(), "deposit") {
            Ok(0) => return message.set("type the deposit for this browser".into()),
            Ok(d) => d,
            Err(why) => return message.set(why),
        };
        busy.set(true);
        message.set("funding this browser…".into());
        leptos::task::spawn_local(async move {
            match fund_browser(ctx, deposit).await {
                Ok(()) => message.set("this browser's deposit: committed".into()),
                Err(why) => message.set(format!("funding this browser: {why}")),
            }
            busy.set(false);
            browser.refetch();
        });
    };
    let claim = move |_| {
        busy.set(true);
        message.set("claiming this browser's winnings…".into());
        leptos::task::spawn_local(async move {
            match claim_winnings(ctx).await {
                Ok((n, worth)) => message.set(format!("claimed {n} winning tickets worth {worth}")),
                Err(why) => message.set(format!("claiming: {why}")),
            }
            busy.set(false);
            browser.refetch();
            funds.refetch();
        });
    };
    // The player's switch and cap, the same ones (it reads them when a video starts).
    let stored = |name: &str| storage().ok().and_then(|s| s.get_item(name).ok().flatten());
    let mine = RwSignal::new(stored(MINE).as_deref() != Some("0"));
    let cap = RwSignal::new(stored(UPLOAD_CAP).unwrap_or_default());
    let save = move || {
        let text = cap.get_untracked();
        let text = text.trim();
        if !text.is_empty() && text.parse::<u64>().is_err() {
            return message.set(format!("upload cap: {text:?} is not a whole number of MiB"));
        }
        let Ok(storage) = storage() else {
            return message.set("this browser keeps nothing (no localStorage)".into());
        };
        let on = if mine.get_untracked() { "1" } else { "0" };
        if storage.set_item(MINE, on).and_then(|()| storage.set_item(UPLOAD_CAP, text)).is_err() {
            return message.set("localStorage refused the write".into());
        }
        message.set("saved: the player uses it from the next video".into());
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
            <h3>"This browser"</h3>
            <p>
                "The player pays and is paid with this browser's own key. Fund its deposit from the wallet to pay the "
                "viewers that deliver to you; what it earns serving others waits here as winning tickets until you "
                "claim them into the wallet (before they expire)."
            </p>
            <Suspense fallback=|| view! { <p>"Reading the chain…"</p> }>
                {move || browser.get().map(|read| match read {
                    Ok(Some((address, f, held, worth))) => view! {
                        <p data-testid="browser-key" data-address=address.to_string()>{format!("key {address}")}</p>
                        <p data-testid="browser-funds" data-deposit=f.deposit.to_string()>
                            {format!("deposit {}, reserve {}", f.deposit, f.reserve)}
                        </p>
                        <p data-testid="browser-winners" data-count=held.to_string() data-worth=worth.to_string()>
                            {format!("{held} winning tickets held, worth {worth}")}
                        </p>
                    }.into_any(),
                    Ok(None) => view! { <p data-testid="browser-key">"No key yet: the player makes one when it first plays."</p> }.into_any(),
                    Err(why) => view! { <p class="message" data-testid="browser-error">{format!("not checked: {why}")}</p> }.into_any(),
                })}
            </Suspense>
            <div>
                <label>
                    <input type="checkbox" data-testid="app-mine-bandwidth" prop:checked=move || mine.get()
                        on:change=move |ev| { mine.set(event_target_checked(&ev)); save(); } />
                    " mine bandwidth while a video plays"
                </label>
                <label>
                    " upload cap "
                    <input data-testid="app-upload-cap" placeholder="no cap" inputmode="numeric"
                        prop:value=move || cap.get() on:input=move |ev| cap.set(event_target_value(&ev))
                        on:change=move |_| save() />
                    " MiB"
                </label>
            </div>
            <div>
                <input data-testid="browser-deposit" placeholder="deposit for this browser" inputmode="numeric"
                    prop:value=move || browser_deposit.get() on:input=move |ev| browser_deposit.set(event_target_value(&ev)) />
                <button data-testid="browser-fund" disabled=move || busy.get() on:click=fund_this>"Fund this browser"</button>
                <button data-testid="browser-claim" disabled=move || busy.get() on:click=claim>"Claim winnings into the wallet"</button>
            </div>
            <p class="message" data-testid="tickets-message">{move || message.get()}</p>
        </section>
    }
}
