//! The wallet: create, import, unlock, export; the account as the chain tells it, live.

use kinema_chain::crypto::SecretKey;
use kinema_chain::rpc::AccountReply;
use leptos::prelude::*;

use crate::app::{Ctx, origin};
use crate::{keep, trust};

/// The shortest passphrase taken.
const MIN_PASSPHRASE: usize = 8;

#[component]
pub(crate) fn Wallet() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    // The kept wallet's address (None: none kept; read once at start).
    let kept = RwSignal::new(None::<Option<String>>);
    let passphrase = RwSignal::new(String::new());
    let confirm = RwSignal::new(String::new());
    let imported = RwSignal::new(String::new());
    let message = RwSignal::new(String::new());
    let exported = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    leptos::task::spawn_local(async move {
        match keep::wallet_address().await {
            Ok(address) => kept.set(Some(address)),
            Err(e) => message.set(format!("this browser keeps nothing: {e}")),
        }
    });

    // Keeps `key` under the passphrase typed, and unlocks it.
    let keep_key = move |key: SecretKey| {
        let (pass, again) = (passphrase.get_untracked(), confirm.get_untracked());
        if pass.chars().count() < MIN_PASSPHRASE {
            return message
                .set(format!("the passphrase needs {MIN_PASSPHRASE} characters or more"));
        }
        if pass != again {
            return message.set("the passphrases differ".into());
        }
        busy.set(true);
        leptos::task::spawn_local(async move {
            let address = key.address().to_string();
            match keep::save_wallet(&address, &key.seed(), &pass).await {
                Ok(()) => {
                    kept.set(Some(Some(address)));
                    unlocked(ctx, key);
                    message.set(String::new());
                }
                Err(e) => message.set(format!("the wallet was not kept: {e}")),
            }
            busy.set(false);
        });
    };
    let create = move |_| keep_key(SecretKey::from_seed(keep::random_seed()));
    let import = move |_| match SecretKey::from_key_file(imported.get_untracked().trim()) {
        Ok(key) => keep_key(key),
        Err(e) => message.set(format!("the key file: {e}")),
    };
    let unlock = move |_| {
        let pass = passphrase.get_untracked();
        busy.set(true);
        leptos::task::spawn_local(async move {
            match keep::open_wallet(&pass).await {
                Ok(seed) => {
                    unlocked(ctx, SecretKey::from_seed(seed));
                    message.set(String::new());
                }
                Err(e) => message.set(e),
            }
            busy.set(false);
        });
    };
    let forget = move |_| {
        leptos::task::spawn_local(async move {
            match keep::forget_wallet().await {
                Ok(()) => {
                    kept.set(Some(None));
                    ctx.key.set(None);
                    ctx.account.set(None);
                }
                Err(e) => message.set(e),
            }
        });
    };
    let faucet = move |_| {
        let relay = ctx.relay();
        leptos::task::spawn_local(async move {
            match relay.faucet().await {
                Ok(gift) => message
                    .set(format!("the faucet sent {} (transaction {})", gift.amount, gift.tx)),
                Err(e) => message.set(e.to_string()),
            }
        });
    };
    let export = move |_| {
        exported.set(ctx.key.with_untracked(|k| k.as_ref().map(SecretKey::to_key_file)));
    };
    let passphrase_fields = move || {
        view! {
            <input type="password" placeholder="passphrase" data-testid="wallet-passphrase"
                prop:value=move || passphrase.get()
                on:input=move |ev| passphrase.set(event_target_value(&ev)) />
        }
    };

    view! {
        <section class="wallet">
            <h2>"Wallet"</h2>
            <p class="message" data-testid="wallet-message">{move || message.get()}</p>
            {move || match (kept.get(), ctx.key.with(Option::is_some)) {
                (None, _) => view! { <p>"Reading this browser's wallet…"</p> }.into_any(),
                (Some(None), _) => view! {
                    <div>
                        <p>"No wallet in this browser. Make one, or import a key file; either is kept here, encrypted with your passphrase."</p>
                        {passphrase_fields()}
                        <input type="password" placeholder="passphrase again" data-testid="wallet-confirm"
                            prop:value=move || confirm.get()
                            on:input=move |ev| confirm.set(event_target_value(&ev)) />
                        <button data-testid="wallet-create" disabled=move || busy.get() on:click=create>"Create a wallet"</button>
                        <details>
                            <summary>"Import a key file"</summary>
                            <textarea data-testid="wallet-import-key" placeholder="the key file's text"
                                prop:value=move || imported.get()
                                on:input=move |ev| imported.set(event_target_value(&ev))></textarea>
                            <button data-testid="wallet-import" disabled=move || busy.get() on:click=import>"Import"</button>
                        </details>
                    </div>
                }.into_any(),
                (Some(Some(address)), false) => view! {
                    <div>
                        <p>"Wallet " <code>{address}</code> " is locked."</p>
                        {passphrase_fields()}
                        <button data-testid="wallet-unlock" disabled=move || busy.get() on:click=unlock>"Unlock"</button>
                        <button on:click=forget>"Forget it"</button>
                    </div>
                }.into_any(),
                (Some(Some(_)), true) => view! {
                    <div>
                        <p>"Address " <code data-testid="wallet-address">{move || ctx.key.with(|k| k.as_ref().map(|k| k.address().to_string()).unwrap_or_default())}</code></p>
                        <p>
                            "Balance " <span data-testid="wallet-balance"
                                data-balance=move || ctx.account.with(|a| a.as_ref().map_or(0, |a| a.balance)).to_string()
                                data-checked=move || ctx.checked.with(|c| matches!(c, Some(Ok(_))).to_string())>
                                {move || ctx.account.with(|a| a.as_ref().map_or("…".into(), |a| a.balance.to_string()))}
                            </span>
                            ", staked " {move || ctx.account.with(|a| a.as_ref().map_or("…".into(), |a| a.stake.to_string()))}
                            " " <small data-testid="wallet-checked">{move || ctx.checked.with(|c| match c {
                                Some(Ok(height)) => format!("(proved at block {height} from genesis)"),
                                Some(Err(why)) => format!("(not checked: {why})"),
                                None => String::new(),
                            })}</small>
                        </p>
                        <button data-testid="wallet-faucet" on:click=faucet>"Ask the faucet"</button>
                        <button data-testid="wallet-export" on:click=export>"Export the key file"</button>
                        {move || exported.get().map(|text| view! { <pre data-testid="wallet-key-file">{text}</pre> })}
                    </div>
                }.into_any(),
            }}
        </section>
    }
}

/// `key` is the app's now: its account is followed as the relay pushes it, each reply checked
/// by the light client before it is shown as checked.
fn unlocked(ctx: Ctx, key: SecretKey) {
    let address = key.address();
    ctx.key.set(Some(key));
    ctx.library.update(|n| *n += 1);
    let url = format!("{}/api/v1/chain/events?account={address}", origin());
    let source = keep::follow(&url, &["account"], move |_, data| {
        let Ok(reply) = serde_json::from_str::<AccountReply>(&data) else { return };
        if reply.address != address {
            return;
        }
        leptos::task::spawn_local(async move {
            let checked = trust::check_account(ctx, &reply).await;
            // Checks end in any order: the latest height stands.
            let older =
                ctx.account.with_untracked(|a| a.as_ref().is_some_and(|a| a.height > reply.height));
            if !older {
                ctx.checked.set(Some(checked.map(|()| reply.height)));
                ctx.account.set(Some(reply));
            }
        });
    });
    // The stream is the page's for as long as it is open.
    std::mem::forget(source);
}
