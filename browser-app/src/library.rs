//! The key's videos (unlisted ones too), and the relay's public ones.

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
    view! {
        <li data-testid=testid data-state=state data-job=job.to_string()>
            <strong>{video.title.clone()}</strong>
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
