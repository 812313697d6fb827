//! The review queue: what waits, taking the next task, the stamped document shown inline,
//! approving or rejecting with a comment (REV-13, REV-R1..R3).

use std::time::Duration;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use certflow_proto::v1::{
    ApproveReviewRequest, DocumentFormat, GetRevocationDocumentRequest, NextReviewTaskRequest,
    RejectReviewRequest, ReviewRequestKind, ReviewTask, WatchReviewQueueRequest,
};
use futures::StreamExt as _;
use serde::Deserialize;

use crate::Console;
use crate::gateway::{Refusal, as_caller};
use crate::pages::{refused_page, request_id};
use crate::session::{Caller, Nothing, Posted};
use crate::view;
use crate::web::{self, Chrome};

/// A task as the queue and the task page show it.
#[derive(Debug)]
pub(crate) struct TaskView {
    pub task_id: String,
    pub certificate_id: String,
    pub kind: &'static str,
    pub domains: String,
    pub brand: &'static str,
    pub level: &'static str,
    pub serial: String,
    pub not_after: String,
    pub requester: String,
    pub reason: &'static str,
    pub description: String,
    pub queued_at: String,
    pub due_by: String,
    pub approvals: Vec<(String, String)>,
    pub approvals_needed: u32,
    /// How the document is shown: `image`, `pdf` or empty (none).
    pub document: &'static str,
}

impl TaskView {
    fn of(caller: &Caller, task: &ReviewTask) -> Self {
        let t = caller.texts();
        let summary = task.certificate.clone().unwrap_or_default();
        let document = task.documents.first().map_or("", |d| {
            match DocumentFormat::try_from(d.format).unwrap_or_default() {
                DocumentFormat::Pdf => "pdf",
                DocumentFormat::Unspecified => "",
                _ => "image",
            }
        });
        TaskView {
            task_id: task.task_id.clone(),
            certificate_id: summary.id.clone(),
            kind: if task.kind == ReviewRequestKind::Reissue as i32 {
                t.kind_reissue
            } else {
                t.kind_revocation
            },
            domains: summary.domains.join(", "),
            brand: view::brand(summary.brand),
            level: view::level(summary.level),
            serial: summary.serial_number.clone(),
            not_after: view::when(summary.not_after.as_ref()),
            requester: task.requester_account.clone(),
            reason: view::reason(t, task.reason),
            description: task.description.clone(),
            queued_at: view::when(task.queued_at.as_ref()),
            due_by: view::when(task.due_by.as_ref()),
            approvals: task
                .approvals
                .iter()
                .map(|v| (v.reviewer.clone(), v.comment.clone()))
                .collect(),
            approvals_needed: task.approvals_needed,
            document,
        }
    }
}

#[derive(Template)]
#[template(path = "review_queue.html")]
struct QueuePage {
    chrome: Chrome,
    tasks: Vec<TaskView>,
    empty_after_take: bool,
    refusal: Option<Refusal>,
}

/// How long the queue page waits for the watch's backlog to stop arriving.
const BACKLOG_QUIET: Duration = Duration::from_millis(300);
/// Tasks the queue page lists at most.
const LISTED_TASKS: usize = 200;

/// The tasks waiting, as the queue's watch starts with them.
pub(crate) async fn queue(State(console): State<Console>, caller: Caller) -> Response {
    render_queue(&console, &caller, false, None).await
}

async fn render_queue(
    console: &Console,
    caller: &Caller,
    empty_after_take: bool,
    refusal: Option<Refusal>,
) -> Response {
    let t = caller.texts();
    let (tasks, refusal) = match waiting_tasks(console, caller).await {
        Ok(tasks) => (tasks, refusal),
        Err(status) => (
            Vec::new(),
            refusal.or(Some(Refusal::from_status(&status, t))),
        ),
    };
    web::render(&QueuePage {
        chrome: caller.chrome(t.review_queue),
        tasks: tasks
            .iter()
            .map(|task| TaskView::of(caller, task))
            .collect(),
        empty_after_take,
        refusal,
    })
}

async fn waiting_tasks(
    console: &Console,
    caller: &Caller,
) -> Result<Vec<ReviewTask>, tonic::Status> {
    let mut watch = console
        .gateway
        .reviews()
        .watch_review_queue(as_caller(caller, WatchReviewQueueRequest {}))
        .await?
        .into_inner();
    let mut tasks: Vec<ReviewTask> = Vec::new();
    while tasks.len() < LISTED_TASKS {
        match tokio::time::timeout(BACKLOG_QUIET, watch.next()).await {
            Ok(Some(Ok(item))) => {
                if let Some(task) = item.task {
                    tasks.retain(|known| known.task_id != task.task_id);
                    tasks.push(task);
                }
            }
            Ok(Some(Err(status))) => return Err(status),
            Ok(None) | Err(_) => break,
        }
    }
    Ok(tasks)
}

#[derive(Template)]
#[template(path = "review_task.html")]
struct TaskPage {
    chrome: Chrome,
    task: TaskView,
    lease: String,
    request_id: String,
    comment: String,
    refusal: Option<Refusal>,
}

/// Takes the next task the queue offers this reviewer.
pub(crate) async fn take(
    State(console): State<Console>,
    Posted { caller, .. }: Posted<Nothing>,
) -> Response {
    let t = caller.texts();
    match console
        .gateway
        .reviews()
        .next_review_task(as_caller(&caller, NextReviewTaskRequest {}))
        .await
    {
        Ok(response) => {
            let response = response.into_inner();
            match response.task {
                Some(task) => web::render(&TaskPage {
                    chrome: caller.chrome(t.review_task),
                    task: TaskView::of(&caller, &task),
                    lease: response.lease,
                    request_id: request_id(),
                    comment: String::new(),
                    refusal: None,
                }),
                None => render_queue(&console, &caller, true, None).await,
            }
        }
        Err(status) => {
            let refusal = Refusal::from_status(&status, t);
            render_queue(&console, &caller, false, Some(refusal)).await
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct DecideForm {
    /// Task ids hold `/`: a form field, not a path segment.
    task_id: String,
    lease: String,
    request_id: String,
    decision: String,
    #[serde(default)]
    comment: String,
}

/// Approves or rejects the task with a comment.
pub(crate) async fn decide(
    State(console): State<Console>,
    Posted { caller, form }: Posted<DecideForm>,
) -> Response {
    let task_id = form.task_id.clone();
    let t = caller.texts();
    let mut reviews = console.gateway.reviews();
    let decided = match form.decision.as_str() {
        "approve" => reviews
            .approve_review(as_caller(
                &caller,
                ApproveReviewRequest {
                    request_id: form.request_id.clone(),
                    task_id: task_id.clone(),
                    comment: form.comment.clone(),
                    lease: form.lease.clone(),
                },
            ))
            .await
            .map(|r| r.into_inner().certificate),
        "reject" => reviews
            .reject_review(as_caller(
                &caller,
                RejectReviewRequest {
                    request_id: form.request_id.clone(),
                    task_id: task_id.clone(),
                    comment: form.comment.clone(),
                    lease: form.lease.clone(),
                },
            ))
            .await
            .map(|r| r.into_inner().certificate),
        _ => {
            return refused_page(
                &caller,
                Refusal::local(t.choose_decision, "INVALID_ARGUMENT"),
            );
        }
    };
    match decided {
        Ok(_) => render_queue(&console, &caller, false, None).await,
        Err(status) => {
            let refusal = Refusal::from_status(&status, t);
            // The task again, from the queue, with the refusal over the form.
            let task = waiting_tasks(&console, &caller)
                .await
                .unwrap_or_default()
                .into_iter()
                .find(|task| task.task_id == task_id);
            match task {
                Some(task) => web::render(&TaskPage {
                    chrome: caller.chrome(t.review_task),
                    task: TaskView::of(&caller, &task),
                    lease: form.lease,
                    request_id: form.request_id,
                    comment: form.comment,
                    refusal: Some(refusal),
                }),
                None => render_queue(&console, &caller, false, Some(refusal)).await,
            }
        }
    }
}

/// The stamped document of a certificate's revocation, shown inline on the task page. Its
/// type is the one the review service judged from its content, and the browser may not
/// guess another (`nosniff`).
pub(crate) async fn document(
    State(console): State<Console>,
    caller: Caller,
    Path(certificate): Path<String>,
) -> Response {
    let request = GetRevocationDocumentRequest {
        certificate_id: certificate,
    };
    match console
        .gateway
        .reviews()
        .get_revocation_document(as_caller(&caller, request))
        .await
    {
        Ok(response) => {
            let response = response.into_inner();
            let media_type = response
                .document
                .map(|d| d.media_type)
                // Only a type a document may have is served as such (REV-12).
                .filter(|m| {
                    [
                        certflow_domain::DocumentFormat::Jpeg,
                        certflow_domain::DocumentFormat::Png,
                        certflow_domain::DocumentFormat::Gif,
                        certflow_domain::DocumentFormat::Pdf,
                    ]
                    .iter()
                    .any(|format| format.media_type() == m)
                })
                .unwrap_or_else(|| "application/octet-stream".into());
            let mut response = web::no_store(response.content.into_response());
            let headers = response.headers_mut();
            if let Ok(value) = HeaderValue::from_str(&media_type) {
                headers.insert(header::CONTENT_TYPE, value);
            }
            headers.insert(
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("inline"),
            );
            // Nothing in it may load or run anything; the security layer keeps this policy.
            headers.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'none'; img-src 'self'; object-src 'self'; \
                     frame-ancestors 'self'",
                ),
            );
            response
        }
        Err(status) => refused_page(&caller, Refusal::from_status(&status, caller.texts())),
    }
}
