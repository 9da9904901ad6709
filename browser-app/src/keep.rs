//! `js/vault.js`: the wallet and the upload under way, kept in IndexedDB.

use wasm_bindgen::prelude::*;

#[wasm_bindgen(module = "/js/vault.js")]
extern "C" {
    #[wasm_bindgen(js_name = randomSeed)]
    fn random_seed_js() -> js_sys::Uint8Array;
    #[wasm_bindgen(js_name = saveWallet, catch)]
    async fn save_wallet_js(
        address: &str,
        seed: &[u8],
        passphrase: &str,
    ) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(js_name = walletAddress, catch)]
    async fn wallet_address_js() -> Result<JsValue, JsValue>;
    #[wasm_bindgen(js_name = openWallet, catch)]
    async fn open_wallet_js(passphrase: &str) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(js_name = forgetWallet, catch)]
    async fn forget_wallet_js() -> Result<JsValue, JsValue>;
    #[wasm_bindgen(js_name = keepUpload, catch)]
    async fn keep_upload_js(file: &web_sys::File, form: &str) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(js_name = keptUpload, catch)]
    async fn kept_upload_js() -> Result<JsValue, JsValue>;
    #[wasm_bindgen(js_name = forgetUpload, catch)]
    async fn forget_upload_js() -> Result<JsValue, JsValue>;
    #[wasm_bindgen(js_name = slice, catch)]
    async fn slice_js(file: &web_sys::File, start: f64, end: f64) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(js_name = sleep)]
    async fn sleep_js(ms: u32);
}

/// A JavaScript error's message.
fn message(e: JsValue) -> String {
    e.dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.as_string())
        .unwrap_or_else(|| format!("{e:?}"))
}

/// 32 bytes from the browser's CSPRNG.
pub(crate) fn random_seed() -> [u8; 32] {
    let mut seed = [0; 32];
    random_seed_js().copy_to(&mut seed);
    seed
}

/// Keeps `seed` encrypted under `passphrase`.
pub(crate) async fn save_wallet(
    address: &str,
    seed: &[u8; 32],
    passphrase: &str,
) -> Result<(), String> {
    save_wallet_js(address, seed, passphrase).await.map(drop).map_err(message)
}

/// The kept wallet's address.
pub(crate) async fn wallet_address() -> Result<Option<String>, String> {
    wallet_address_js().await.map(|v| v.as_string()).map_err(message)
}

/// The kept wallet's seed.
pub(crate) async fn open_wallet(passphrase: &str) -> Result<[u8; 32], String> {
    let bytes = open_wallet_js(passphrase).await.map_err(message)?;
    let bytes = js_sys::Uint8Array::new(&bytes).to_vec();
    bytes.try_into().map_err(|_| "the kept wallet is not a 32-byte seed".to_owned())
}

/// Forgets the kept wallet.
pub(crate) async fn forget_wallet() -> Result<(), String> {
    forget_wallet_js().await.map(drop).map_err(message)
}

/// Keeps the file of the upload under way and the form's JSON.
pub(crate) async fn keep_upload(file: &web_sys::File, form: &str) -> Result<(), String> {
    keep_upload_js(file, form).await.map(drop).map_err(message)
}

/// The upload under way: its file and the form's JSON.
pub(crate) async fn kept_upload() -> Option<(web_sys::File, String)> {
    let kept = kept_upload_js().await.ok().filter(|v| !v.is_null() && !v.is_undefined())?;
    let file = js_sys::Reflect::get(&kept, &"file".into()).ok()?.dyn_into().ok()?;
    let form = js_sys::Reflect::get(&kept, &"form".into()).ok()?.as_string()?;
    Some((file, form))
}

/// Forgets the upload under way.
pub(crate) async fn forget_upload() {
    let _ = forget_upload_js().await;
}

/// Bytes `start..end` of `file`.
pub(crate) async fn slice(file: &web_sys::File, start: u64, end: u64) -> Result<Vec<u8>, String> {
    let bytes = slice_js(file, start as f64, end as f64).await.map_err(message)?;
    Ok(js_sys::Uint8Array::new(&bytes).to_vec())
}

/// Waits `ms` milliseconds.
pub(crate) async fn sleep(ms: u32) {
    sleep_js(ms).await;
}

/// Follows `url`'s server-sent events: `on(event name, data)` for each of `names`. The
/// stream lives as long as the page (or until `close` on what is returned).
pub(crate) fn follow(
    url: &str,
    names: &[&str],
    on: impl Fn(&str, String) + 'static,
) -> Option<web_sys::EventSource> {
    let source = web_sys::EventSource::new(url).ok()?;
    let on = std::rc::Rc::new(on);
    for name in names {
        let (on, event) = (on.clone(), (*name).to_owned());
        let listener =
            Closure::<dyn Fn(web_sys::MessageEvent)>::new(move |e: web_sys::MessageEvent| {
                if let Some(data) = e.data().as_string() {
                    on(&event, data);
                }
            });
        let _ = source.add_event_listener_with_callback(name, listener.as_ref().unchecked_ref());
        listener.forget();
    }
    Some(source)
}
