//! Server-sent events that tell an open page its content changed: a revocation's progress,
//! the review queue. The page then loads itself again (`static/console.js`), so what it
//! shows always comes from the same handlers as a first visit.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use certflow_proto::v1::{
    Certificate, GetCertificateRequest, PendingReissueInfo, Revocation, WatchReviewQueueRequest,
};
use futures::{Stream, StreamExt as _};

use crate::Console;
use crate::gateway::as_caller;
use crate::session::Caller;

/// How often a certificate's page is checked for a change.
const CERTIFICATE_POLL: Duration = Duration::from_secs(2);
/// How long a live certificate stream runs before the browser reconnects.
const STREAM_LIFETIME: Duration = Duration::from_secs(300);

/// What of a certificate a page shows changing while it is open.
type Progress = (i32, Option<Revocation>, Option<PendingReissueInfo>);

fn progress_of(certificate: Certificate) -> Progress {
    (
        certificate.status,
        certificate.revocation,
        certificate.pending_reissue,
    )
}

/// `changed` once the certificate's status, revocation or reissue moves on.
pub(crate) async fn certificate(
    State(console): State<Console>,
    caller: Caller,
    Path(id): Path<String>,
) -> Response {
    let stream = changes(console, caller, id);
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

fn changes(
    console: Console,
    caller: Caller,
    id: String,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let started = tokio::time::Instant::now();
    futures::stream::unfold(
        (console, caller, id, None::<Progress>, false),
        move |(console, caller, id, seen, done)| async move {
            if done {
                return None;
            }
            loop {
                if started.elapsed() > STREAM_LIFETIME {
                    return None;
                }
                let now = console
                    .gateway
                    .certificates()
                    .get_certificate(as_caller(&caller, GetCertificateRequest { id: id.clone() }))
                    .await
                    .ok()
                    .and_then(|r| r.into_inner().certificate)
                    .map(progress_of);
                match (&seen, now) {
                    (Some(before), Some(now)) if *before != now => {
                        let event = Event::default().event("changed").data(id.clone());
                        return Some((Ok(event), (console, caller, id, Some(now), true)));
                    }
                    (None, Some(now)) => {
                        tokio::time::sleep(CERTIFICATE_POLL).await;
                        return Some((
                            Ok(Event::default().comment("watching")),
                            (console, caller, id, Some(now), false),
                        ));
                    }
                    _ => tokio::time::sleep(CERTIFICATE_POLL).await,
                }
            }
        },
    )
}

/// How long after the watch's last backlog task new ones count as news.
const BACKLOG_QUIET: Duration = Duration::from_millis(500);

/// `changed` whenever a task joins the review queue.
pub(crate) async fn review_queue(State(console): State<Console>, caller: Caller) -> Response {
    let watch = console
        .gateway
        .reviews()
        .watch_review_queue(as_caller(&caller, WatchReviewQueueRequest {}))
        .await;
    let Ok(watch) = watch else {
        return axum::http::StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    let mut watch = watch.into_inner();
    // The backlog is what the page already lists.
    while let Ok(Some(Ok(_))) = tokio::time::timeout(BACKLOG_QUIET, watch.next()).await {}
    let news = watch.filter_map(|item| async move {
        match item {
            Ok(item) => item.task.map(|task| {
                Ok::<_, Infallible>(Event::default().event("changed").data(task.task_id))
            }),
            Err(_) => None,
        }
    });
    Sse::new(news)
        .keep_alive(KeepAlive::default())
        .into_response()
}
