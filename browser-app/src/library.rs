//! The key's videos (unlisted ones too), the relay's public ones, and what the key earned as a
//! worker or verifier.

use kinema_chain::rpc::{JobReply, ResultState};
use kinema_contracts::jobs;
use kinema_relay::api::{Video, Visibility};
use leptos::prelude::*;

use crate::app::{Ctx, origin};

/// One video's row: title, state, links.
fn row(video: &Video, ctx: Option<Ctx>) -> impl IntoView + use<> {
    let testid = if ctx.is_some() { "library-video" } else { "public-video" };
    let job = video.job;
    let (state, links) = match video.content {
        Some(content) => {
            let href = format!("/watch/{content}");
            let share = format!("{}{href}", origin());
            (
                "published",
                Some(view! {
                    <a href=href>"watch"</a>
                    " · " <code>{share}</code>
                }),
            )
        }
        None => ("transcoding", None),
    };
    let visibility = match video.visibility {
        Visibility::Public => "public",
        Visibility::Unlisted => "unlisted",
    };
    let remove = ctx.map(|ctx| {
        let message = RwSignal::new(String::new());
        let click = move |_| {
            let relay = ctx.relay();
            leptos::task::spawn_local(async move {
                match relay.remove_video(job).await {
                    Ok(()) => ctx.library.update(|n| *n += 1),
                    Err(e) => message.set(e.to_string()),
                }
            });
        };
        view! { <button data-testid="library-unpublish" on:click=click>"Unpublish"</button> {move || message.get()} }
    });
    let follow = ctx.map(
        |ctx| view! { <button on:click=move |_| ctx.job.set(Some(job))>"Follow its job"</button> },
    );
    let thumbnail = video.poster.map(|poster| {
        view! { <img class="thumbnail" data-testid="library-thumbnail" alt="" src=format!("/api/v1/blobs/{poster}") /> }
    });
    view! {
        <li data-testid=testid data-state=state data-job=job.to_string()>
            {thumbnail} <strong>{video.title.clone()}</strong>
            " (" {visibility} ", " {state} ", job " {job} ") "
            {video.tags.join(", ")} " " {links} " " {follow} " " {remove}
        </li>
    }
}

#[component]
pub(crate) fn Mine() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let videos = LocalResource::new(move || {
        ctx.library.get();
        let relay = ctx.relay();
        async move { relay.my_videos().await.map(|l| l.videos).map_err(|e| e.to_string()) }
    });
    view! {
        <section class="library">
            <h2>"My videos"</h2>
            <Suspense fallback=|| view! { <p>"Reading…"</p> }>
                {move || videos.get().map(|listed| match listed {
                    Ok(list) if list.is_empty() => view! { <p>"None yet."</p> }.into_any(),
                    Ok(list) => view! { <ul data-testid="library">{list.iter().map(|v| row(v, Some(ctx))).collect_view()}</ul> }.into_any(),
                    Err(e) => view! { <p class="message">{e}</p> }.into_any(),
                })}
            </Suspense>
        </section>
    }
}

#[component]
pub(crate) fn Public() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let videos = LocalResource::new(move || {
        ctx.library.get();
        let relay = kinema_relay::api::Client::new(&origin());
        async move { relay.videos().await.map(|l| l.videos).map_err(|e| e.to_string()) }
    });
    view! {
        <section class="public">
            <h2>"On this relay"</h2>
            <Suspense fallback=|| view! { <p>"Reading…"</p> }>
                {move || videos.get().map(|listed| match listed {
                    Ok(list) if list.is_empty() => view! { <p>"Nothing public yet."</p> }.into_any(),
                    Ok(list) => view! { <ul data-testid="public-videos">{list.iter().map(|v| row(v, None)).collect_view()}</ul> }.into_any(),
                    Err(e) => view! { <p class="message">{e}</p> }.into_any(),
                })}
            </Suspense>
        </section>
    }
}

/// The most recent jobs the earnings are read from.
const EARNINGS_JOBS: u64 = 200;

/// What one job paid (or owes) the key, and for what.
#[derive(Debug, Clone)]
struct Earned {
    job: u64,
    paid: u64,
    owed: u64,
    /// Segment-renditions of the job the key transcoded and had accepted.
    transcoded: usize,
}

/// What the key earned in the last [`EARNINGS_JOBS`] jobs, newest first.
async fn earnings(ctx: Ctx) -> Result<Vec<Earned>, String> {
    let me = ctx.key.get_untracked().ok_or("the wallet is locked")?.address();
    let chain = ctx.chain()?;
    let posted: u64 = chain.read(jobs::NEXT_KEY).await.map_err(|e| e.to_string())?.unwrap_or(0);
    let mut earned = Vec::new();
    for id in (posted.saturating_sub(EARNINGS_JOBS)..posted).rev() {
        let job: JobReply = chain.job(id).await.map_err(|e| e.to_string())?;
        let paid = job.paid.get(&me).copied().unwrap_or(0);
        let owed = job.owed.get(&me).copied().unwrap_or(0);
        let transcoded = job
            .results
            .iter()
            .filter(|r| r.worker == Some(me) && r.state == ResultState::Accepted)
            .count();
        if paid > 0 || owed > 0 || transcoded > 0 {
            earned.push(Earned { job: id, paid, owed, transcoded });
        }
    }
    Ok(earned)
}

#[component]
pub(crate) fn Earnings() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let read = LocalResource::new(move || {
        ctx.library.get();
        // Read again when the balance moves (a job that ends pays its members).
        ctx.account.with(|a| a.as_ref().map(|a| a.balance));
        earnings(ctx)
    });
    view! {
        <section class="earnings">
            <h2>"Earnings (as a worker or verifier)"</h2>
            <Suspense fallback=|| view! { <p>"Reading the chain…"</p> }>
                {move || read.get().map(|listed| match listed {
                    Ok(list) => {
                        let paid: u64 = list.iter().map(|e| e.paid).sum();
                        let owed: u64 = list.iter().map(|e| e.owed).sum();
                        let rows = list.iter().map(|e| {
                            let what = if e.transcoded > 0 {
                                format!("transcoded {} segment-renditions", e.transcoded)
                            } else {
                                "verification fees".to_owned()
                            };
                            view! {
                                <tr data-testid="earnings-job" data-job=e.job.to_string()>
                                    <td>{e.job}</td><td>{e.paid}</td><td>{e.owed}</td><td>{what}</td>
                                </tr>
                            }
                        }).collect_view();
                        view! {
                            <p data-testid="earnings" data-paid=paid.to_string() data-owed=owed.to_string()>
                                {format!("paid {paid}, owed {owed} (paid when each job ends), over the last {EARNINGS_JOBS} jobs")}
                            </p>
                            <table class="results">
                                <thead><tr><th>"job"</th><th>"paid"</th><th>"owed"</th><th>"for"</th></tr></thead>
                                <tbody>{rows}</tbody>
                            </table>
                        }.into_any()
                    }
                    Err(e) => view! { <p class="message">{e}</p> }.into_any(),
                })}
            </Suspense>
        </section>
    }
}
