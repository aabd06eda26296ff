//! The Server-Sent Event streams that keep pages live.
//!
//! A page opens one stream. The stream subscribes to the process's changes (`crate::live`)
//! first, then renders the page's live part and sends it as a `fragment` event, so nothing
//! committed between the page's own render and the subscription is missed. After that it renders
//! again only when a change concerns the page, at most once per interval: a page costs no
//! database work while what it shows stands still, and a burst of changes costs one read.
//!
//! A build's stream also sends its log as `log` events (`{"text": …}`) whose id is the byte
//! offset reached, so a browser that reconnects sends `Last-Event-ID` and gets exactly the bytes
//! after it: none twice, none missing. Text is cut only between whole UTF-8 characters. Once the
//! build has ended and its log is all sent, an `end` event says the stream is done.

use crate::app::AppState;
use crate::blocking::with_conn;
use crate::live::Change;
use crate::web::build::{BuildFragment, build_live};
use crate::web::environments::environments_fragment;
use crate::web::home::{parse_query, project_fragment};
use crate::web::pipeline::pipeline_fragment;
use crate::web::runners::runners_fragment;
use crate::web::{PageError, PageId, PageResult, Viewer, fragment};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use lockstep_domain::{BuildId, PipelineId, ProjectId};
use lockstep_storage_pg::read_log;
use serde::Deserialize;
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::mpsc;

/// How often a pipeline or build page may read again: fast enough to look instant.
const QUICK: Duration = Duration::from_millis(250);
/// How often a list may read again: lists change often under load and are read whole.
const SLOW: Duration = Duration::from_secs(1);
/// The most log one `log` event carries.
const LOG_EVENT: usize = 128 * 1024;

/// Starts `produce` on its own task and streams what it sends as the response. The task ends
/// when the browser goes away, when the server shuts down, or when it has nothing more to say.
fn stream<F>(produce: impl FnOnce(mpsc::Sender<Event>) -> F) -> Response
where
    F: Future<Output = ()> + Send + 'static,
{
    let (sender, mut receiver) = mpsc::channel::<Event>(8);
    tokio::spawn(produce(sender));
    let events =
        futures_util::stream::poll_fn(move |cx| receiver.poll_recv(cx)).map(Ok::<_, Infallible>);
    let mut response = Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response();
    // A proxy such as nginx must pass each event on at once rather than buffer the stream.
    response
        .headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// Waits `interval`, then for a change that concerns the page. `None` when the stream should
/// end instead: the browser went away or the server is stopping.
async fn wait_for_change(
    state: &AppState,
    sender: &mpsc::Sender<Event>,
    changes: &mut crate::live::Subscription,
    interval: Duration,
    concerns: impl Fn(&Change) -> bool,
) -> Option<Change> {
    tokio::select! {
        () = tokio::time::sleep(interval) => {}
        () = sender.closed() => return None,
        () = state.stopped() => return None,
    }
    tokio::select! {
        next = changes.next_that(concerns) => next,
        () = sender.closed() => None,
        () = state.stopped() => None,
    }
}

/// Renders with `render` and sends the result whenever `concerns` says a change matters.
async fn refresh<R, F>(
    state: AppState,
    sender: mpsc::Sender<Event>,
    interval: Duration,
    concerns: impl Fn(&Change) -> bool,
    mut render: R,
) where
    R: FnMut(AppState) -> F,
    F: Future<Output = Result<String, PageError>>,
{
    let mut changes = state.live.subscribe();
    loop {
        // A page that cannot be read any more (a bad filter, say) has nothing left to show.
        let Ok(html) = render(state.clone()).await else {
            return;
        };
        if sender
            .send(Event::default().event("fragment").data(html))
            .await
            .is_err()
        {
            return;
        }
        if wait_for_change(&state, &sender, &mut changes, interval, &concerns)
            .await
            .is_none()
        {
            return;
        }
    }
}

/// `GET /pipelines/{id}/live`.
#[utoipa::path(get, path = "/pipelines/{id}/live", tag = "dashboard", params(("id" = i64, Path, description = "pipeline id")), 
    responses(
        (status = 200, description = "`fragment` events: the page's live part as HTML, at once and after each change", content_type = "text/event-stream"),
        (status = 303, description = "no session: to `/login?next=` this page"),
        (status = 400, description = "the id is not a number", content_type = "text/html")
    ),
    security(("session" = [])))]
pub(crate) async fn pipeline(
    State(state): State<AppState>,
    viewer: Viewer,
    PageId(id): PageId,
) -> Response {
    let id = PipelineId(id);
    stream(move |sender| {
        refresh(
            state,
            sender,
            QUICK,
            move |change| change.concerns_pipeline(id),
            move |state| {
                let csrf = viewer.csrf.clone();
                async move { pipeline_fragment(&state, id, csrf).await }
            },
        )
    })
}

/// `GET /projects/{id}/live?status=&ref=&before=`.
#[utoipa::path(get, path = "/projects/{id}/live", tag = "dashboard", params(("id" = i64, Path, description = "project id")), 
    responses(
        (status = 200, description = "`fragment` events; the query of `/projects/{id}`", content_type = "text/event-stream"),
        (status = 303, description = "no session: to `/login?next=` this page"),
        (status = 400, description = "the id or the query is not valid", content_type = "text/html")
    ),
    security(("session" = [])))]
pub(crate) async fn project(
    State(state): State<AppState>,
    _: Viewer,
    PageId(id): PageId,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let query: crate::handlers::pipelines::ListQuery = parse_query(raw.as_deref())?;
    Ok(stream(move |sender| {
        refresh(
            state,
            sender,
            SLOW,
            Change::concerns_pipelines,
            move |state| {
                let query = query.clone();
                async move { project_fragment(&state, id, query).await }
            },
        )
    }))
}

/// `GET /projects/{id}/environments/live`.
#[utoipa::path(get, path = "/projects/{id}/environments/live", tag = "dashboard", params(("id" = i64, Path, description = "project id")), 
    responses(
        (status = 200, description = "`fragment` events", content_type = "text/event-stream"),
        (status = 303, description = "no session: to `/login?next=` this page"),
        (status = 400, description = "the id is not a number", content_type = "text/html")
    ),
    security(("session" = [])))]
pub(crate) async fn environments(
    State(state): State<AppState>,
    _: Viewer,
    PageId(id): PageId,
) -> Response {
    stream(move |sender| {
        refresh(
            state,
            sender,
            SLOW,
            Change::concerns_pipelines,
            move |state| async move { environments_fragment(&state, ProjectId(id)).await },
        )
    })
}

/// `GET /runners/live`.
#[utoipa::path(get, path = "/runners/live", tag = "dashboard", 
    responses(
        (status = 200, description = "`fragment` events", content_type = "text/event-stream"),
        (status = 303, description = "no session: to `/login?next=` this page")
    ),
    security(("session" = [])))]
pub(crate) async fn runners(State(state): State<AppState>, _: Viewer) -> Response {
    stream(move |sender| {
        refresh(
            state,
            sender,
            SLOW,
            Change::concerns_pipelines,
            |state| async move { runners_fragment(&state).await },
        )
    })
}

#[derive(Debug, Deserialize)]
pub(crate) struct LogQuery {
    offset: Option<u64>,
}

/// `GET /builds/{id}/live?offset=`: the build's facts, and its log from `offset` (or from
/// `Last-Event-ID`, when the browser reconnects).
#[utoipa::path(get, path = "/builds/{id}/live", tag = "dashboard", params(("id" = i64, Path, description = "build id")), 
    responses(
        (status = 200, description = "`fragment` events (the facts), `log` events (`{\"text\": …}`, id: the byte offset reached; `Last-Event-ID` resumes there), then `end` once the build has ended and its log is all sent; query `offset`", content_type = "text/event-stream"),
        (status = 303, description = "no session: to `/login?next=` this page"),
        (status = 400, description = "the id or `offset` is not a number", content_type = "text/html")
    ),
    security(("session" = [])))]
pub(crate) async fn build(
    State(state): State<AppState>,
    viewer: Viewer,
    PageId(id): PageId,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let query: LogQuery = parse_query(raw.as_deref())?;
    let resumed = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let offset = resumed.or(query.offset).unwrap_or(0);
    Ok(stream(move |sender| {
        follow_build(state, sender, BuildId(id), viewer.csrf, offset)
    }))
}

/// Sends build `id`'s facts when its pipeline changes and its log as it grows.
async fn follow_build(
    state: AppState,
    sender: mpsc::Sender<Event>,
    id: BuildId,
    csrf: String,
    mut offset: u64,
) {
    let mut changes = state.live.subscribe();
    let mut facts_due = true;
    let mut pipeline = None;
    loop {
        if facts_due {
            let Some(id) = send_facts(&state, &sender, id, &csrf).await else {
                return;
            };
            pipeline = Some(id);
        }
        match send_log(&state, &sender, id, &mut offset).await {
            LogState::Growing => {}
            LogState::Ended => {
                // The log can end before the notice of the build's end arrives: show the
                // final facts with it, whatever this round read.
                if send_facts(&state, &sender, id, &csrf).await.is_some() {
                    // An event without data is never dispatched to the page: say something.
                    let _ = sender
                        .send(Event::default().event("end").data("done"))
                        .await;
                }
                return;
            }
            LogState::Gone => return,
        }
        let concerns = |change: &Change| {
            change.concerns_log(id) || pipeline.is_some_and(|p| change.concerns_pipeline(p))
        };
        let Some(change) = wait_for_change(&state, &sender, &mut changes, QUICK, concerns).await
        else {
            return;
        };
        // A log that grew leaves the facts as they were; a change of status does not.
        facts_due = pipeline.is_none_or(|p| change.concerns_pipeline(p));
    }
}

/// Sends build `id`'s facts; returns its pipeline, or `None` when the stream should end.
async fn send_facts(
    state: &AppState,
    sender: &mpsc::Sender<Event>,
    id: BuildId,
    csrf: &str,
) -> Option<PipelineId> {
    let facts = build_live(state, id, csrf.to_owned()).await.ok()?;
    let html = fragment(&BuildFragment { live: &facts }).ok()?;
    sender
        .send(Event::default().event("fragment").data(html))
        .await
        .ok()?;
    Some(PipelineId(facts.pipeline_id))
}

enum LogState {
    /// Everything there is was sent; more may come.
    Growing,
    /// The build has ended and its whole log was sent.
    Ended,
    /// The browser went away, or the log cannot be read.
    Gone,
}

/// Sends the log from `offset` as far as it goes now, moving `offset` on.
async fn send_log(
    state: &AppState,
    sender: &mpsc::Sender<Event>,
    id: BuildId,
    offset: &mut u64,
) -> LogState {
    loop {
        let from = *offset;
        let Ok(slice) = with_conn(state, move |conn, _| read_log(conn, id, from, LOG_EVENT)).await
        else {
            return LogState::Gone;
        };
        let cut = if slice.complete {
            slice.data.len()
        } else {
            complete_prefix(&slice.data)
        };
        if cut > 0 {
            *offset += u64::try_from(cut).unwrap_or(0);
            let text = String::from_utf8_lossy(&slice.data[..cut]);
            let Ok(event) = Event::default()
                .event("log")
                .id(offset.to_string())
                .json_data(serde_json::json!({ "text": text }))
            else {
                return LogState::Gone;
            };
            if sender.send(event).await.is_err() {
                return LogState::Gone;
            }
        }
        if slice.complete {
            return LogState::Ended;
        }
        if *offset >= slice.end || cut == 0 {
            return LogState::Growing;
        }
    }
}

/// How much of `data` ends on a whole UTF-8 character: a character cut at the end of a read
/// waits for the next one, so that it is not shown as two replacement marks.
fn complete_prefix(data: &[u8]) -> usize {
    let len = data.len();
    for back in 1..=len.min(4) {
        let byte = data[len - back];
        if byte & 0b1100_0000 == 0b1000_0000 {
            // A continuation byte: its lead is further back.
            continue;
        }
        let needed = match byte {
            0b1100_0000..=0b1101_1111 => 2,
            0b1110_0000..=0b1110_1111 => 3,
            0b1111_0000..=0b1111_0111 => 4,
            // ASCII, or a byte that starts nothing: it stands alone.
            _ => 1,
        };
        return if needed > back { len - back } else { len };
    }
    len
}

#[cfg(test)]
mod tests {
    use super::complete_prefix;

    #[test]
    fn a_read_is_cut_only_between_whole_characters() {
        let text = "ab€😀".as_bytes();
        // a b, then € (3 bytes), then 😀 (4 bytes).
        for (len, expected) in [
            (0, 0),
            (1, 1),
            (2, 2),
            (3, 2),
            (4, 2),
            (5, 5),
            (6, 5),
            (7, 5),
            (8, 5),
            (9, 9),
        ] {
            assert_eq!(complete_prefix(&text[..len]), expected, "{len} bytes");
        }
        assert_eq!(
            complete_prefix(b"\xff"),
            1,
            "a stray byte is shown, not held back"
        );
    }
}
