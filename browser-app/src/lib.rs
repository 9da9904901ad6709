//! Kinema's creator app: Leptos, rendered in the browser, served by the relay at `/`.
//!
//! - **Wallet** (`wallet.rs`): a key made in the browser (its CSPRNG) or imported, kept in
//!   IndexedDB encrypted under a passphrase (`js/vault.js`: WebCrypto, PBKDF2 and AES-GCM),
//!   its key file exported on demand; the address in full, balance and stake from the chain
//!   RPC, updated as the relay pushes them (`/api/v1/chain/events`); a devnet's faucet.
//! - **Upload** (`upload.rs`): a file picked or dropped is hashed and sent to the relay in
//!   signed chunks (a reload, or a dropped connection, resumes where the relay is), cut by
//!   the relay into source segments; the job's cost is shown beside the submit button; the job
//!   is signed here and posted to the chain, and the video's title, description, tags,
//!   visibility and captions told to the relay.
//! - **Job** (`job.rs`): every segment × rendition of the job as the relay pushes it; once done,
//!   the ladder the relay assembles is checked here against the hash the chain recorded before
//!   its content id is signed onto the chain; then the watch link.
//! - **Library** (`library.rs`): the key's videos (unlisted ones too), the relay's public ones,
//!   and what the key was paid (and is owed) as a worker or verifier, job by job.
//! - **Bandwidth tickets** (`bandwidth.rs`): the deposit and reserve that pay the peers
//!   delivering to the key as a viewer (funded, unlocked, withdrawn), and what tickets paid it
//!   as a peer, each read with its proof.
//!
//! Everything is the browser's: natively the crate is empty.

// Leptos's `#[component]` makes each component's function public.
#![cfg_attr(target_arch = "wasm32", allow(unreachable_pub))]

#[cfg(target_arch = "wasm32")]
mod bandwidth;
#[cfg(target_arch = "wasm32")]
mod job;
#[cfg(target_arch = "wasm32")]
mod keep;
#[cfg(target_arch = "wasm32")]
mod library;
#[cfg(target_arch = "wasm32")]
mod trust;
#[cfg(target_arch = "wasm32")]
mod upload;
#[cfg(target_arch = "wasm32")]
mod wallet;

#[cfg(target_arch = "wasm32")]
mod app {
    use kinema_chain::Hash;
    use kinema_chain::crypto::SecretKey;
    use kinema_chain::light::LightClient;
    use kinema_chain::rpc::AccountReply;
    use kinema_relay::api;
    use kinema_relay::chain::ChainClient;
    use leptos::prelude::*;
    use wasm_bindgen::prelude::*;

    /// The fee the app's transactions offer.
    pub(crate) const FEE: u64 = 5_000_000;

    /// What every part of the app shares.
    #[derive(Clone, Copy)]
    pub(crate) struct Ctx {
        /// The unlocked key.
        pub(crate) key: RwSignal<Option<SecretKey>>,
        /// The account as the chain last told it.
        pub(crate) account: RwSignal<Option<AccountReply>>,
        /// Whether that reply checked out against the light client (at which height), or why
        /// not.
        pub(crate) checked: RwSignal<Option<Result<u64, String>>>,
        /// The chain RPC the relay follows.
        pub(crate) rpc: RwSignal<Option<String>>,
        /// The genesis the relay names (the light client's trust).
        pub(crate) genesis: RwSignal<Option<Hash>>,
        /// The light client, once made, at the furthest epoch followed.
        pub(crate) light: StoredValue<Option<LightClient>>,
        /// The job being followed.
        pub(crate) job: RwSignal<Option<u64>>,
        /// Bumped when the library should be read again.
        pub(crate) library: RwSignal<u32>,
    }

    impl Ctx {
        /// The relay that served the page, signing with the key when there is one.
        pub(crate) fn relay(&self) -> api::Client {
            let client = api::Client::new(&origin());
            match self.key.get_untracked() {
                Some(key) => client.with_key(key),
                None => client,
            }
        }

        /// The chain RPC's client.
        pub(crate) fn chain(&self) -> Result<ChainClient, String> {
            let rpc = self.rpc.get_untracked().ok_or("the relay follows no chain RPC")?;
            ChainClient::new(&rpc).map_err(|e| e.to_string())
        }
    }

    /// The page's origin: the relay.
    pub(crate) fn origin() -> String {
        web_sys::window().and_then(|w| w.location().origin().ok()).unwrap_or_default()
    }

    #[component]
    fn App() -> impl IntoView {
        let ctx = Ctx {
            key: RwSignal::new(None),
            account: RwSignal::new(None),
            checked: RwSignal::new(None),
            rpc: RwSignal::new(None),
            genesis: RwSignal::new(None),
            light: StoredValue::new(None),
            job: RwSignal::new(None),
            library: RwSignal::new(0),
        };
        provide_context(ctx);
        let problem = RwSignal::new(String::new());
        leptos::task::spawn_local(async move {
            match api::Client::new(&origin()).status().await {
                Ok(status) => {
                    ctx.rpc.set(status.chain_rpc);
                    ctx.genesis.set(status.genesis);
                }
                Err(e) => problem.set(format!("the relay does not answer: {e}")),
            }
        });
        view! {
            <header>
                <h1>"Kinema studio"</h1>
                <p class="problem" data-testid="app-problem">{move || problem.get()}</p>
            </header>
            <main>
                <crate::wallet::Wallet />
                <Show when=move || ctx.key.with(Option::is_some)>
                    <crate::upload::Upload />
                </Show>
                <Show when=move || ctx.job.get().is_some()>
                    <crate::job::Job />
                </Show>
                <Show when=move || ctx.key.with(Option::is_some)>
                    <crate::library::Mine />
                    <crate::library::Earnings />
                    <crate::bandwidth::Bandwidth />
                </Show>
                <crate::library::Public />
            </main>
        }
    }

    /// Mounts the app on the page's body.
    #[wasm_bindgen(start)]
    pub fn start() {
        leptos::mount::mount_to_body(App);
    }
}
