//! The job being followed: every segment × rendition as the relay pushes it; once done, the
//! ladder checked here against the chain's record, its content id signed onto the chain, and
//! the watch link.

use kinema_chain::rpc::{JobReply, JobStateReply, ResultState};
use kinema_chain::tx::Call;
use kinema_chain::{Address, Hash};
use kinema_contracts::jobs::{self, Job as JobRecord, PublishArgs};
use kinema_contracts::system::JOBS;
use kinema_relay::chain::Signer;
use leptos::prelude::*;

use crate::app::{Ctx, FEE, origin};
use crate::keep;
use crate::upload::wait_committed;

#[component]
pub(crate) fn Job() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let reply = RwSignal::new(None::<JobReply>);
    let watch = RwSignal::new(None::<Hash>);
    let message = RwSignal::new(String::new());
    let publishing = RwSignal::new(false);
    let source = StoredValue::new_local(None::<web_sys::EventSource>);

    // Follow the job as the relay pushes it (a new job: a new stream).
    Effect::new(move |_| {
        let Some(id) = ctx.job.get() else { return };
        reply.set(None);
        watch.set(None);
        if let Some(old) = source.get_value() {
            old.close();
        }
        let url = format!("{}/api/v1/chain/events?job={id}", origin());
        let stream = keep::follow(&url, &["job", "error"], move |event, data| match event {
            "job" => match serde_json::from_str::<JobReply>(&data) {
                Ok(job) if job.id == id => reply.set(Some(job)),
                Ok(_) => {}
                Err(e) => message.set(format!("the relay sent a job that does not read: {e}")),
            },
            _ => message.set(data),
        });
        source.set_value(stream);
    });
    // Done: publish the ladder (once).
    Effect::new(move |_| {
        let Some(job) = reply.get() else { return };
        if job.state != JobStateReply::Done || publishing.get_untracked() {
            return;
        }
        if let Some(content) = job.content {
            return watch.set(Some(content));
        }
        publishing.set(true);
        leptos::task::spawn_local(async move {
            match publish(ctx, job.id).await {
                Ok(content) => watch.set(Some(content)),
                Err(e) => message.set(e),
            }
            publishing.set(false);
        });
    });

    let state = move || {
        reply.with(|r| match r.as_ref().map(|r| r.state) {
            Some(JobStateReply::Open) | None => "open",
            Some(JobStateReply::Done) => "done",
            Some(JobStateReply::Failed) => "failed",
            Some(JobStateReply::Cancelled) => "cancelled",
        })
    };
    view! {
        <section class="job">
            <h2>"Job " {move || ctx.job.get().map(|j| j.to_string()).unwrap_or_default()}
                " " <span class="state" data-testid="job-state" data-state=state>{state}</span>
            </h2>
            <p class="message" data-testid="job-message">{move || message.get()}
                {move || reply.with(|r| r.as_ref().and_then(|r| r.failure.clone()))}</p>
            {move || reply.with(|r| r.as_ref().map(grid))}
            {move || watch.get().map(|content| {
                let href = format!("/watch/{content}");
                view! { <p>"Published as " <code>{content.to_string()}</code> ": "
                    <a data-testid="watch-link" href=href.clone()>"watch"</a>
                    " · share " <code>{format!("{}{href}", origin())}</code></p> }
            })}
        </section>
    }
}

/// Every segment × rendition, a row per segment.
fn grid(job: &JobReply) -> impl IntoView + use<> {
    let names = job.renditions.clone();
    let rows: Vec<_> = (0..job.segments)
        .map(|segment| {
            let cells: Vec<_> = names
                .iter()
                .map(|name| {
                    let result =
                        job.results.iter().find(|r| r.segment == segment && &r.rendition == name);
                    let state = result.map_or("queued", |r| match r.state {
                        ResultState::Queued => "queued",
                        ResultState::Transcoding => "transcoding",
                        ResultState::Verifying => "verifying",
                        ResultState::Accepted => "accepted",
                        ResultState::Retried => "retried",
                    });
                    let title = result.and_then(|r| r.reasons.clone()).unwrap_or_default();
                    view! { <td class=state data-state=state title=title>{state}</td> }
                })
                .collect();
            view! { <tr><th>{segment}</th>{cells}</tr> }
        })
        .collect();
    let heads: Vec<_> = names.iter().map(|n| view! { <th>{n.clone()}</th> }).collect();
    let accepted = job.results.iter().filter(|r| r.state == ResultState::Accepted).count();
    view! {
        <p>{format!("{accepted} of {} accepted", job.results.len().max(1))}</p>
        <table class="results" data-testid="job-results">
            <thead><tr><th>"segment"</th>{heads}</tr></thead>
            <tbody>{rows}</tbody>
        </table>
    }
}

/// Has the relay assemble job `id`'s ladder, checks it here against the hash the chain
/// recorded, and records its content id on the chain.
async fn publish(ctx: Ctx, id: u64) -> Result<Hash, String> {
    let relay = ctx.relay();
    let chain = ctx.chain()?;
    let key = ctx.key.get_untracked().ok_or("the wallet is locked")?;
    let record: JobRecord = chain
        .read(&jobs::job_key(id))
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("job {id} is not on the chain"))?;
    let content =
        relay.publish_ladder(id).await.map_err(|e| format!("publishing the ladder: {e}"))?;
    let manifest = relay.blob(&content.id).await.map_err(|e| e.to_string())?;
    if Hash::digest(&manifest) != content.id {
        return Err(format!("the relay's manifest does not hash to {}", content.id));
    }
    jobs::check_ladder(id, &record, &outputs(&manifest)?)
        .map_err(|why| format!("the relay's ladder is not job {id}'s: {why}"))?;
    if record.content.is_none() && record.creator == key.address().0 {
        let mut signer = Signer::new(chain.clone(), key).await.map_err(|e| e.to_string())?;
        let args = PublishArgs { job: id, content: content.id.0 };
        let call = Call::Contract {
            contract: Address(JOBS),
            method: "publish".into(),
            args: kinema_chain::encode(&args),
        };
        let reply = signer.send(call, FEE).await.map_err(|e| e.to_string())?;
        wait_committed(&chain, &reply).await?;
    }
    ctx.library.update(|n| *n += 1);
    Ok(content.id)
}

/// A ladder manifest's renditions by name, each segment's blake3 and size: what the jobs
/// contract's `check_ladder` takes (read from the JSON as the media engine writes it).
fn outputs(manifest: &[u8]) -> Result<Vec<jobs::RenditionOutputs<String>>, String> {
    #[derive(serde::Deserialize)]
    struct Manifest {
        renditions: Vec<Rendition>,
    }
    #[derive(serde::Deserialize)]
    struct Rendition {
        name: String,
        segments: Vec<Segment>,
    }
    #[derive(serde::Deserialize)]
    struct Segment {
        blake3: Hash,
        bytes: u64,
    }
    let manifest: Manifest =
        serde_json::from_slice(manifest).map_err(|e| format!("the ladder's manifest: {e}"))?;
    Ok(manifest
        .renditions
        .into_iter()
        .map(|r| (r.name, r.segments.into_iter().map(|s| (s.blake3.0, s.bytes)).collect()))
        .collect())
}
