//! The upload: a file to the relay in signed chunks, resumed after a reload or a dropped
//! connection; the relay's cut; the job signed here and posted, with its cost beside the
//! button; the video's details told to the relay.

use kinema_chain::tx::Call;
use kinema_chain::{Address, Hash};
use kinema_contracts::jobs::{self, Job, PostArgs};
use kinema_contracts::system::JOBS;
use kinema_relay::api::{self, NewUpload, NewVideo, Upload as Uploaded, UploadState, Visibility};
use kinema_relay::chain::{ChainClient, Signer};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::app::{Ctx, FEE};
use crate::keep;

/// Bytes per chunk sent.
const CHUNK: u64 = 4 << 20;
/// Tries at a chunk before the upload stops (the connection is down).
const TRIES: u32 = 8;
/// The rungs offered, tallest first.
const HEIGHTS: [u32; 4] = [720, 480, 360, 240];

/// What the form says of the video: kept with the file so a reload resumes the upload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Form {
    title: String,
    description: String,
    tags: String,
    public: bool,
    heights: Vec<u32>,
    price: u64,
}

impl Default for Form {
    fn default() -> Self {
        Self {
            title: String::new(),
            description: String::new(),
            tags: String::new(),
            public: true,
            heights: HEIGHTS.to_vec(),
            price: 1_000,
        }
    }
}

/// Where the upload is.
#[derive(Debug, Clone, PartialEq)]
enum Stage {
    Idle,
    Hashing(f64),
    Sending(f64),
    Cutting(f64),
    Ready(Box<Uploaded>),
    Posting,
    Failed(String),
}

impl Stage {
    /// The share of the upload's way done, in percent.
    fn percent(&self) -> u32 {
        let share = match self {
            Stage::Idle | Stage::Failed(_) => 0.0,
            Stage::Hashing(s) => 0.05 * s,
            Stage::Sending(s) => 0.05 + 0.75 * s,
            Stage::Cutting(s) => 0.8 + 0.2 * s,
            Stage::Ready(_) | Stage::Posting => 1.0,
        };
        (share * 100.0).round() as u32
    }

    fn name(&self) -> &'static str {
        match self {
            Stage::Idle => "idle",
            Stage::Hashing(_) => "hashing",
            Stage::Sending(_) => "sending",
            Stage::Cutting(_) => "cutting",
            Stage::Ready(_) => "ready",
            Stage::Posting => "posting",
            Stage::Failed(_) => "failed",
        }
    }
}

#[component]
pub(crate) fn Upload() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let form = RwSignal::new(Form::default());
    let stage = RwSignal::new(Stage::Idle);
    let file_name = RwSignal::new(String::new());
    let captions = RwSignal::new_local(None::<web_sys::File>);
    let message = RwSignal::new(String::new());

    // An upload this browser had under way resumes once the wallet is open.
    leptos::task::spawn_local(async move {
        if let Some((file, kept)) = keep::kept_upload().await
            && let Ok(kept) = serde_json::from_str::<Form>(&kept)
        {
            form.set(kept);
            file_name.set(file.name());
            message.set(format!("resuming the upload of {}", file.name()));
            send(ctx, file, form, stage).await;
        }
    });

    let picked = move |file: web_sys::File| {
        if matches!(
            stage.get_untracked(),
            Stage::Hashing(_) | Stage::Sending(_) | Stage::Cutting(_) | Stage::Posting
        ) {
            return message.set("an upload is under way".into());
        }
        if form.with_untracked(|f| f.title.trim().is_empty()) {
            let title = file.name();
            let title = title.rsplit_once('.').map_or(title.as_str(), |(stem, _)| stem).to_owned();
            form.update(|f| f.title = title);
        }
        file_name.set(file.name());
        message.set(String::new());
        leptos::task::spawn_local(async move {
            let kept = serde_json::to_string(&form.get_untracked()).unwrap_or_default();
            if let Err(e) = keep::keep_upload(&file, &kept).await {
                message.set(format!("this upload will not survive a reload: {e}"));
            }
            send(ctx, file, form, stage).await;
        });
    };
    let on_file = move |ev: leptos::ev::Event| {
        let input: web_sys::HtmlInputElement = event_target(&ev);
        if let Some(file) = input.files().and_then(|f| f.get(0)) {
            picked(file);
        }
    };
    let on_drop = move |ev: leptos::ev::DragEvent| {
        ev.prevent_default();
        if let Some(file) = ev.data_transfer().and_then(|d| d.files()).and_then(|f| f.get(0)) {
            picked(file);
        }
    };
    let on_captions = move |ev: leptos::ev::Event| {
        let input: web_sys::HtmlInputElement = event_target(&ev);
        captions.set(input.files().and_then(|f| f.get(0)));
    };
    let cost = move || match stage.get() {
        Stage::Ready(upload) => args_of(&upload, &form.get())
            .and_then(|args| jobs::cost(&args))
            .map(|cost| format!("costs {} + fees", cost)),
        _ => None,
    };
    let submit = move |_| {
        let Stage::Ready(upload) = stage.get_untracked() else { return };
        let form_now = form.get_untracked();
        stage.set(Stage::Posting);
        leptos::task::spawn_local(async move {
            match post(ctx, &upload, &form_now, captions.get_untracked()).await {
                Ok(job) => {
                    keep::forget_upload().await;
                    ctx.job.set(Some(job));
                    ctx.library.update(|n| *n += 1);
                    stage.set(Stage::Idle);
                    file_name.set(String::new());
                    form.set(Form::default());
                    message.set(format!("job {job} posted"));
                }
                Err(e) => {
                    message.set(e);
                    stage.set(Stage::Ready(upload));
                }
            }
        });
    };

    view! {
        <section class="upload">
            <h2>"Upload"</h2>
            <div class="drop" on:dragover=|ev: leptos::ev::DragEvent| ev.prevent_default() on:drop=on_drop>
                <label>"Video file (or drop it here) "
                    <input type="file" accept="video/*" data-testid="upload-file" on:change=on_file />
                </label>
                <span>{move || file_name.get()}</span>
            </div>
            <label>"Title "
                <input data-testid="upload-title" maxlength="200" prop:value=move || form.with(|f| f.title.clone())
                    on:input=move |ev| form.update(|f| f.title = event_target_value(&ev)) />
            </label>
            <label>"Description "
                <textarea data-testid="upload-description" prop:value=move || form.with(|f| f.description.clone())
                    on:input=move |ev| form.update(|f| f.description = event_target_value(&ev))></textarea>
            </label>
            <label>"Tags (comma separated) "
                <input data-testid="upload-tags" prop:value=move || form.with(|f| f.tags.clone())
                    on:input=move |ev| form.update(|f| f.tags = event_target_value(&ev)) />
            </label>
            <label>"Visibility "
                <select data-testid="upload-visibility"
                    on:change=move |ev| form.update(|f| f.public = event_target_value(&ev) == "public")>
                    <option value="public" selected=move || form.with(|f| f.public)>"public"</option>
                    <option value="unlisted" selected=move || form.with(|f| !f.public)>"unlisted"</option>
                </select>
            </label>
            <fieldset>
                <legend>"Ladder (rungs above the source are left out)"</legend>
                {HEIGHTS.iter().map(|&h| view! {
                    <label>
                        <input type="checkbox" data-testid=format!("upload-rung-{h}")
                            prop:checked=move || form.with(|f| f.heights.contains(&h))
                            on:change=move |ev| {
                                let on = event_target::<web_sys::HtmlInputElement>(&ev).checked();
                                form.update(|f| {
                                    f.heights.retain(|x| *x != h);
                                    if on { f.heights.push(h); f.heights.sort_unstable_by(|a, b| b.cmp(a)); }
                                });
                            } />
                        {format!("{h}p")}
                    </label>
                }).collect_view()}
            </fieldset>
            <label>"Price per segment and rendition "
                <input type="number" min="1" data-testid="upload-price" prop:value=move || form.with(|f| f.price.to_string())
                    on:input=move |ev| form.update(|f| f.price = event_target_value(&ev).parse().unwrap_or(0)) />
            </label>
            <label>"Captions (WebVTT) "
                <input type="file" accept=".vtt,text/vtt" data-testid="upload-captions" on:change=on_captions />
            </label>
            <p>
                <progress max="100" data-testid="upload-progress"
                    data-percent=move || stage.with(Stage::percent).to_string()
                    data-stage=move || stage.with(Stage::name)
                    prop:value=move || stage.with(Stage::percent)></progress>
                " " {move || stage.with(|s| match s {
                    Stage::Idle => String::new(),
                    Stage::Hashing(_) => "hashing the file".into(),
                    Stage::Sending(_) => format!("sending: {} %", s.percent()),
                    Stage::Cutting(_) => "the relay is cutting it into segments".into(),
                    Stage::Ready(u) => format!("{} segments of {:.1} s, ready", u.segments, u.duration_ms as f64 / 1000.0),
                    Stage::Posting => "posting the job".into(),
                    Stage::Failed(why) => why.clone(),
                })}
            </p>
            <p>
                <button data-testid="upload-submit"
                    disabled=move || !matches!(stage.get(), Stage::Ready(_)) || form.with(|f| f.title.trim().is_empty() || f.price == 0)
                    on:click=submit>"Transcode and publish"</button>
                " " <span data-testid="upload-cost">{cost}</span>
            </p>
            <p class="message" data-testid="upload-message">{move || message.get()}</p>
        </section>
    }
}

/// Hashes `file`, sends it in chunks from where the relay is, and follows its cut.
async fn send(ctx: Ctx, file: web_sys::File, form: RwSignal<Form>, stage: RwSignal<Stage>) {
    if let Err(why) = try_send(ctx, &file, form, stage).await {
        stage.set(Stage::Failed(why));
    }
}

async fn try_send(
    ctx: Ctx,
    file: &web_sys::File,
    form: RwSignal<Form>,
    stage: RwSignal<Stage>,
) -> Result<(), String> {
    let size = file.size() as u64;
    if size == 0 {
        return Err(format!("{} is empty", file.name()));
    }
    stage.set(Stage::Hashing(0.0));
    let mut hasher = blake3::Hasher::new();
    let mut at = 0;
    while at < size {
        let end = (at + CHUNK).min(size);
        hasher.update(&keep::slice(file, at, end).await?);
        at = end;
        stage.set(Stage::Hashing(at as f64 / size as f64));
    }
    let relay = ctx.relay();
    let new = NewUpload {
        name: file.name(),
        size,
        blake3: Hash(*hasher.finalize().as_bytes()),
        heights: form.with_untracked(|f| f.heights.clone()),
    };
    let mut upload = relay.new_upload(&new).await.map_err(|e| e.to_string())?;
    let mut failures = 0;
    while upload.state == UploadState::Receiving && upload.received < size {
        stage.set(Stage::Sending(upload.received as f64 / size as f64));
        let end = (upload.received + CHUNK).min(size);
        let bytes = keep::slice(file, upload.received, end).await?;
        match relay.put_chunk(&upload.id, upload.received, bytes).await {
            Ok(now) => {
                upload = now;
                failures = 0;
            }
            // Where the relay is, read again (a chunk that arrived but whose answer did not).
            Err(api::Error::Refused { status: 409, .. }) => {
                upload = relay.upload(&upload.id).await.map_err(|e| e.to_string())?;
            }
            Err(e @ api::Error::Refused { .. }) => return Err(e.to_string()),
            Err(e) => {
                failures += 1;
                if failures >= TRIES {
                    return Err(format!(
                        "the relay is unreachable ({e}); pick the file again to resume"
                    ));
                }
                keep::sleep(500 * failures).await;
                if let Ok(now) = relay.upload(&upload.id).await {
                    upload = now;
                }
            }
        }
    }
    loop {
        match upload.state {
            UploadState::Ready => {
                stage.set(Stage::Ready(Box::new(upload)));
                return Ok(());
            }
            UploadState::Failed => {
                keep::forget_upload().await;
                return Err(upload.error.unwrap_or_else(|| "the cut failed".into()));
            }
            _ => stage.set(Stage::Cutting(upload.progress)),
        }
        keep::sleep(300).await;
        upload = relay.upload(&upload.id).await.map_err(|e| e.to_string())?;
    }
}

/// The job `form` asks of a cut `upload`.
fn args_of(upload: &Uploaded, form: &Form) -> Option<PostArgs> {
    Some(PostArgs {
        source: upload.source?.0,
        segments: upload.segments,
        ladder: upload.ladder.clone()?,
        price: form.price,
        deadline: 30,
        verify_bps: jobs::DEFAULT_VERIFY_BPS,
    })
}

/// Stores the captions, posts the job (signed here) and tells the relay of the video; the
/// job's number.
async fn post(
    ctx: Ctx,
    upload: &Uploaded,
    form: &Form,
    captions: Option<web_sys::File>,
) -> Result<u64, String> {
    let args = args_of(upload, form).ok_or("the upload is not cut")?;
    let key = ctx.key.get_untracked().ok_or("the wallet is locked")?;
    let relay = ctx.relay();
    let captions = match captions {
        Some(file) => {
            let bytes = keep::slice(&file, 0, file.size() as u64).await?;
            let name = Hash::digest(&bytes);
            relay.put_blob(&name, bytes).await.map_err(|e| format!("the captions: {e}"))?;
            Some(name)
        }
        None => None,
    };
    let chain = ctx.chain()?;
    let me = key.address();
    let mut signer = Signer::new(chain.clone(), key).await.map_err(|e| e.to_string())?;
    let call = Call::Contract {
        contract: Address(JOBS),
        method: "post".into(),
        args: kinema_chain::encode(&args),
    };
    let reply = signer.send(call, FEE).await.map_err(|e| e.to_string())?;
    wait_committed(&chain, &reply).await?;
    let refused = || format!("transaction {} was refused: the job was not posted", reply.hash);
    let job: u64 = chain
        .read(&jobs::latest_key(&me.0))
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(refused)?;
    let posted: Job =
        chain.read(&jobs::job_key(job)).await.map_err(|e| e.to_string())?.ok_or_else(refused)?;
    if posted.args != args {
        return Err(refused());
    }
    let video = NewVideo {
        upload: upload.id,
        job,
        title: form.title.trim().to_owned(),
        description: form.description.clone(),
        tags: form
            .tags
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect(),
        visibility: if form.public { Visibility::Public } else { Visibility::Unlisted },
        captions,
    };
    relay
        .add_video(&video)
        .await
        .map_err(|e| format!("job {job} is posted, but the relay: {e}"))?;
    Ok(job)
}

/// Waits (at most two minutes) until the transaction `reply` names is committed.
pub(crate) async fn wait_committed(
    chain: &ChainClient,
    reply: &kinema_chain::rpc::SubmitReply,
) -> Result<(), String> {
    for _ in 0..600 {
        if chain.committed(reply).await.map_err(|e| e.to_string())? {
            return Ok(());
        }
        keep::sleep(200).await;
    }
    Err(format!("transaction {} was not committed within two minutes", reply.hash))
}
