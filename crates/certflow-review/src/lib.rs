//! The review service: puts revocations that need a human on the review queue and records
//! reviewers' decisions and customers' stamped documents (REV-10's review rows, REV-12,
//! REV-13, REV-R1..R4).
//!
//! - **Reactions** (durable consumer `review` on the event log): a revocation on a review
//!   path gets its `ReviewQueued` once nothing is missing (REV-R4: not before its document),
//!   and every queued review, and every approval short of the quorum (REV-R3), is offered on
//!   `REVIEW_QUEUE` as a `certflow.v1.ReviewTask`.
//! - **Commands** (`certflow.cmd.review.>`): a staged document is judged by content and
//!   recorded; a reviewer leases the next task; a reviewer approves or rejects, and the
//!   leased task is acknowledged once the decision is recorded.
//!
//! The revocation service concludes: `ReviewPassed` revokes, `ReviewRejected` fails the
//! revocation.

#![forbid(unsafe_code)]

mod template;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use certflow_bus::{
    CancellationToken, Request, Responder, actor_from_headers, bound_command_meta, command_meta,
    decode_request, not_available, refused, response, subjects, unavailable,
};
use certflow_domain::review::{
    MAX_DOCUMENT_BYTES, queue_reissue_review, queue_review, task_certificate,
};
use certflow_domain::{
    Actor, Certificate, CertificateId, Command, DecideReview, DocumentFormat, DomainError, Event,
    Reason, Role, UploadRevocationDocument, decide,
};
use certflow_proto::bus::v1::{DocumentLocation, Reply, StagedDocumentUpload, reply::Outcome};
use certflow_proto::convert::{
    brand_to_proto, certificate_to_proto, document_to_api, level_to_proto, reason_to_proto,
    timestamp_to_proto,
};
use certflow_proto::v1::{
    ApproveReviewRequest, ApproveReviewResponse, CertificateSummary, NextReviewTaskResponse,
    RejectReviewRequest, RejectReviewResponse, ReviewRequestKind, ReviewTask, ReviewVote,
    UploadRevocationDocumentResponse,
};
use certflow_runtime::{CommandRuntime, ReactionError, reaction_meta, run_reactions};
use certflow_store::{
    DocumentStore, LeaseOutcome, RecordedBatch, ReviewLeases, ReviewQueue, StoreError,
};
use prost::Message;
use tracing::{info, warn};

/// The service's name in logs, actors and consumer names.
const SERVICE: &str = "review";

/// How the review queue behaves.
#[derive(Debug, Clone)]
pub struct ReviewConfig {
    /// How long a reviewer holds a task before it is offered to another (REV-R5).
    pub ack_wait: Duration,
    /// How many tasks one reviewer holds at most (REV-R5).
    pub max_held: usize,
    /// The target time for a decision, shown on each task as `due_by`.
    pub due_in: Duration,
}

impl Default for ReviewConfig {
    fn default() -> Self {
        ReviewConfig {
            ack_wait: Duration::from_secs(15 * 60),
            max_held: 5,
            due_in: Duration::from_secs(24 * 3600),
        }
    }
}

/// Errors starting the service.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error(transparent)]
    Bus(#[from] certflow_bus::BusError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Clone)]
struct Shared {
    runtime: CommandRuntime,
    queue: ReviewQueue,
    leases: ReviewLeases,
    documents: DocumentStore,
    uploads: DocumentStore,
    config: Arc<ReviewConfig>,
}

/// The review service, subscribed and ready to run.
#[derive(Debug)]
pub struct ReviewService {
    shared: Shared,
    responder: Responder,
}

impl ReviewService {
    /// Attaches to the review queue and document store and subscribes to the service's
    /// commands.
    pub async fn bind(
        client: async_nats::Client,
        runtime: CommandRuntime,
        config: ReviewConfig,
    ) -> Result<Self, ReviewError> {
        let queue = ReviewQueue::attach(client.clone()).await?;
        let leases = ReviewLeases::attach(client.clone(), config.max_held).await?;
        let documents = DocumentStore::attach(client.clone(), DocumentStore::DOCUMENTS).await?;
        let uploads = DocumentStore::attach(client.clone(), DocumentStore::UPLOADS).await?;
        let responder = Responder::bind(client, subjects::REVIEW, SERVICE).await?;
        Ok(ReviewService {
            shared: Shared {
                runtime,
                queue,
                leases,
                documents,
                uploads,
                config: Arc::new(config),
            },
            responder,
        })
    }

    /// Reacts to events and answers commands until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let shared = self.shared;
        let reactions = {
            let shared = shared.clone();
            run_reactions(
                shared.runtime.store.clone(),
                SERVICE,
                32,
                shutdown.clone(),
                move |batch| react(shared.clone(), batch),
            )
        };
        let requests = {
            let shared = shared.clone();
            self.responder.run(shutdown, move |request| {
                let shared = shared.clone();
                async move { answer(shared, request).await }
            })
        };
        tokio::join!(reactions, requests);
        info!("review service stopped");
    }
}

async fn answer(shared: Shared, request: Request) -> Reply {
    match request.subject.as_str() {
        subjects::UPLOAD_DOCUMENT => upload_document(&shared, request).await,
        subjects::LOCATE_DOCUMENT => locate_document(&shared, request).await,
        subjects::DOCUMENT_TEMPLATE => document_template(&shared, request).await,
        subjects::NEXT_REVIEW_TASK => next_task(&shared, request).await,
        subjects::APPROVE_REVIEW => match decode_request::<ApproveReviewRequest>(&request) {
            Ok(req) => {
                let canonical = ApproveReviewRequest {
                    lease: String::new(),
                    ..req.clone()
                }
                .encode_to_vec();
                let decision = Decision {
                    request_id: req.request_id,
                    task_id: req.task_id,
                    comment: req.comment,
                    lease: req.lease,
                    approve: true,
                    canonical,
                };
                decide_task(&shared, &request, decision, |certificate| {
                    ApproveReviewResponse { certificate }
                })
                .await
            }
            Err(err) => refused(&err),
        },
        subjects::REJECT_REVIEW => match decode_request::<RejectReviewRequest>(&request) {
            Ok(req) => {
                let canonical = RejectReviewRequest {
                    lease: String::new(),
                    ..req.clone()
                }
                .encode_to_vec();
                let decision = Decision {
                    request_id: req.request_id,
                    task_id: req.task_id,
                    comment: req.comment,
                    lease: req.lease,
                    approve: false,
                    canonical,
                };
                decide_task(&shared, &request, decision, |certificate| {
                    RejectReviewResponse { certificate }
                })
                .await
            }
            Err(err) => refused(&err),
        },
        other => not_available(SERVICE, other),
    }
}

/// Queues reviews once nothing is missing, and offers queued reviews to reviewers.
async fn react(shared: Shared, batch: RecordedBatch) -> Result<(), ReactionError> {
    let id = &batch.certificate_id;
    let mut offer = false;
    for event in &batch.events {
        match event {
            // Only a revocation a reviewer decides is queued; other paths are not read.
            Event::RevocationRequested(requested) if !requested.path.needs_review() => {}
            Event::RevocationRequested(_) | Event::RevocationDocumentUploaded(_) => {
                let meta = reaction_meta(SERVICE, "queue", &batch, id);
                let policy = shared.runtime.policy.clone();
                shared
                    .runtime
                    .store
                    .execute_reaction(id, &meta, |state| {
                        queue_review(state, certflow_runtime::now(), &policy)
                    })
                    .await?;
            }
            Event::ReissueRequested(requested) if requested.needs_review => {
                let meta = reaction_meta(SERVICE, "queue-reissue", &batch, id);
                let policy = shared.runtime.policy.clone();
                shared
                    .runtime
                    .store
                    .execute_reaction(id, &meta, |state| {
                        queue_reissue_review(state, certflow_runtime::now(), &policy)
                    })
                    .await?;
            }
            Event::ReviewQueued(_) => offer = true,
            Event::ReviewApproved(_) => {
                offer = !batch
                    .events
                    .iter()
                    .any(|e| matches!(e, Event::ReviewPassed(_)));
            }
            _ => {}
        }
    }
    if offer {
        offer_task(&shared, id).await?;
    }
    Ok(())
}

/// Puts the certificate's open review on the queue, with the approvals so far; offering the
/// same state twice stores one message.
async fn offer_task(shared: &Shared, id: &CertificateId) -> Result<(), ReactionError> {
    let history = shared.runtime.store.history(id).await?;
    let state = history.iter().fold(None, |state, b| {
        certflow_domain::replay(state, &b.meta.command_id, &b.events)
    });
    let Some(cert) = &state else { return Ok(()) };
    for task in review_tasks(cert, &history, &shared.config) {
        let message_id = format!("task-{}-{}", task.task_id, task.approvals.len());
        let kind = if task.kind == ReviewRequestKind::Reissue as i32 {
            "reissue"
        } else {
            "revocation"
        };
        let subject = format!("{kind}.{}", cert.brand.slug());
        shared
            .queue
            .offer(&subject, &message_id, Bytes::from(task.encode_to_vec()))
            .await?;
    }
    Ok(())
}

/// Every task a reviewer may see for `cert`: its revocation's open review and its pending
/// reissue's (REI-10).
fn review_tasks(
    cert: &Certificate,
    history: &[RecordedBatch],
    config: &ReviewConfig,
) -> Vec<ReviewTask> {
    review_task(cert, history, config)
        .into_iter()
        .chain(reissue_review_task(cert, history, config))
        .collect()
}

/// The task for a pending reissue's open review: its reason and the organisation details
/// it asks for, beside the recorded ones.
fn reissue_review_task(
    cert: &Certificate,
    history: &[RecordedBatch],
    config: &ReviewConfig,
) -> Option<ReviewTask> {
    let pending = cert.pending_reissue.as_ref()?;
    let review = pending.review.as_ref().filter(|r| r.outcome.is_none())?;
    let requested = history.iter().rev().find_map(|b| {
        b.events.iter().find_map(|e| match e {
            Event::ReissueRequested(r) if r.reissue_id == pending.reissue_id => {
                Some((b.meta.request_id.clone(), r.reason.clone()))
            }
            _ => None,
        })
    });
    let (request_id, reason) = requested.unwrap_or_default();
    let details = |info: &std::collections::BTreeMap<String, String>| {
        info.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let description = format!(
        "reissue: {reason}; organisation details become {} (recorded: {})",
        details(&pending.enterprise_info),
        details(&cert.enterprise_info)
    );
    Some(task_of(
        cert,
        review,
        config,
        TaskFacts {
            request_id,
            kind: ReviewRequestKind::Reissue,
            requester_account: pending.requested_by.clone(),
            reason: 0,
            description,
            documents: Vec::new(),
        },
    ))
}

/// What a task says beyond the certificate and the review.
struct TaskFacts {
    request_id: String,
    kind: ReviewRequestKind,
    requester_account: String,
    reason: i32,
    description: String,
    documents: Vec<certflow_proto::v1::DocumentInfo>,
}

fn task_of(
    cert: &Certificate,
    review: &certflow_domain::Review,
    config: &ReviewConfig,
    facts: TaskFacts,
) -> ReviewTask {
    let due_in = i64::try_from(config.due_in.as_millis()).unwrap_or(i64::MAX);
    ReviewTask {
        task_id: review.task_id.clone(),
        request_id: facts.request_id,
        kind: facts.kind as i32,
        certificate: Some(CertificateSummary {
            id: cert.id.to_string(),
            account: cert.account.clone(),
            brand: brand_to_proto(cert.brand) as i32,
            level: level_to_proto(cert.level) as i32,
            domains: cert.domains.iter().map(ToString::to_string).collect(),
            serial_number: cert.serial_number.clone().unwrap_or_default(),
            not_before: Some(timestamp_to_proto(cert.not_before)),
            not_after: Some(timestamp_to_proto(cert.not_after)),
        }),
        requester_account: facts.requester_account,
        reason: facts.reason,
        description: facts.description,
        documents: facts.documents,
        approvals: review
            .approvals
            .iter()
            .map(|v| ReviewVote {
                reviewer: v.reviewer.clone(),
                account: v.account.clone(),
                comment: v.comment.clone(),
                at: Some(timestamp_to_proto(v.at)),
            })
            .collect(),
        approvals_needed: review.approvals_needed,
        queued_at: Some(timestamp_to_proto(review.queued_at)),
        due_by: Some(timestamp_to_proto(
            review
                .queued_at
                .plus(certflow_domain::Duration::millis(due_in)),
        )),
    }
}

/// The task a reviewer sees for `cert`'s open revocation review, if it has one.
fn review_task(
    cert: &Certificate,
    history: &[RecordedBatch],
    config: &ReviewConfig,
) -> Option<ReviewTask> {
    let revocation = cert.pending_revocation()?;
    let review = revocation.review.as_ref().filter(|r| r.outcome.is_none())?;
    let request_id = history
        .iter()
        .rev()
        .find(|b| {
            b.events.iter().any(|e| {
                matches!(e, Event::RevocationRequested(r) if r.requested_at == revocation.requested_at)
            })
        })
        .map(|b| b.meta.request_id.clone())
        .unwrap_or_default();
    Some(task_of(
        cert,
        review,
        config,
        TaskFacts {
            request_id,
            kind: ReviewRequestKind::Revocation,
            requester_account: revocation.requested_by.clone(),
            reason: reason_to_proto(revocation.reason) as i32,
            description: revocation.description.clone(),
            documents: revocation.document.iter().map(document_to_api).collect(),
        },
    ))
}

/// REV-12: judges a staged upload by its content and records it. A recorded document is
/// copied into the documents bucket before its event is appended, so a recorded document is
/// always there to read. The upload expires with its bucket's age limit; a copy that was not
/// recorded after all (the rules refused between the preview and the append) is left
/// unreferenced, as deleting takes a purge right no service has.
async fn upload_document(shared: &Shared, request: Request) -> Reply {
    let parsed = decode_request::<StagedDocumentUpload>(&request).and_then(|req| {
        // The staging name is new on every upload: a retry is the same request without it.
        let canonical = StagedDocumentUpload {
            object: String::new(),
            ..req.clone()
        };
        let meta = bound_command_meta(&request, &req.request_id, &canonical)?;
        let id = CertificateId::parse(&req.certificate_id)?;
        tracing::debug!(file = %req.file_name, size = req.size, "document uploaded");
        Ok((meta, id, req.object, req.size))
    });
    let (meta, id, object, declared_size) = match parsed {
        Ok(parsed) => parsed,
        Err(err) => return refused(&err),
    };
    if let Some(first) = shared.runtime.first_outcome(&meta).await {
        return first;
    }
    let stored = match shared.uploads.get(&object, MAX_DOCUMENT_BYTES).await {
        Ok(Some(stored)) => stored,
        Ok(None) => {
            return refused(&DomainError::invalid(
                Reason::InvalidArgument,
                "the uploaded document was not found; upload it again",
            ));
        }
        Err(err) => return unavailable(err.to_string()),
    };
    let size = declared_size.max(stored.content.len() as u64);
    let fits = size <= MAX_DOCUMENT_BYTES;
    let command = Command::UploadRevocationDocument(UploadRevocationDocument {
        id: id.clone(),
        format: sniff(&stored.content),
        size,
        sha256: stored.sha256.clone(),
        object: object.clone(),
    });
    // A document the rules refuse as things stand is never copied.
    if let Err(refusal) = shared.runtime.preview(&meta, &id, &command).await {
        return refusal;
    }
    // Only a document that can be recorded is copied.
    if fits && let Err(err) = shared.documents.put(&object, &stored.content).await {
        return unavailable(err.to_string());
    }
    shared
        .runtime
        .run(
            &meta,
            &id,
            |state, ctx| Ok(decide(state, &command, ctx)?),
            |cert, now| UploadRevocationDocumentResponse {
                certificate: Some(certificate_to_proto(cert, now)),
            },
        )
        .await
}

/// The format of `content`, judged by its bytes, if it is one a document may have. A file
/// that is two formats at once is none: a PDF or an image that is also a ZIP archive (a
/// reader of one sees a document, an unzipper something else), or an image that a PDF
/// reader opens as a PDF.
pub fn sniff(content: &[u8]) -> Option<DocumentFormat> {
    let format = match infer::get(content)?.mime_type() {
        "image/jpeg" => DocumentFormat::Jpeg,
        "image/gif" => DocumentFormat::Gif,
        "image/png" => DocumentFormat::Png,
        "application/pdf" => DocumentFormat::Pdf,
        _ => return None,
    };
    if ends_as_zip(content) || (format != DocumentFormat::Pdf && opens_as_pdf(content)) {
        return None;
    }
    Some(format)
}

/// Whether `content` ends with a ZIP archive's end-of-central-directory record, as ZIP
/// readers look for it: its signature within the last 64 KiB and 22 bytes, followed by
/// exactly the comment it announces.
fn ends_as_zip(content: &[u8]) -> bool {
    const SIGNATURE: &[u8] = b"PK\x05\x06";
    const RECORD: usize = 22;
    let start = content.len().saturating_sub(RECORD + usize::from(u16::MAX));
    content[start..]
        .windows(SIGNATURE.len())
        .enumerate()
        .filter(|(_, window)| *window == SIGNATURE)
        .any(|(offset, _)| {
            let at = start + offset;
            let comment = content
                .get(at + 20..at + 22)
                .map(|len| usize::from(u16::from_le_bytes([len[0], len[1]])));
            comment.is_some_and(|comment| at + RECORD + comment == content.len())
        })
}

/// Whether a PDF reader opens `content` as a PDF: they look for `%PDF-` anywhere in the
/// first kilobyte.
fn opens_as_pdf(content: &[u8]) -> bool {
    content[..content.len().min(1024)]
        .windows(5)
        .any(|window| window == b"%PDF-")
}

/// Where the document of a certificate's revocation is: for its owner and for reviewers.
async fn locate_document(shared: &Shared, request: Request) -> Reply {
    let id = match decode_request::<certflow_proto::v1::GetRevocationDocumentRequest>(&request)
        .and_then(|req| CertificateId::parse(&req.certificate_id))
    {
        Ok(id) => id,
        Err(err) => return refused(&err),
    };
    let actor = actor_from_headers(request.headers.as_ref());
    let loaded = match shared.runtime.store.load(&id).await {
        Ok(loaded) => loaded,
        Err(err) => return unavailable(err.to_string()),
    };
    // Reviewers see a document while its review is open; the owner always.
    let under_review = |cert: &Certificate| {
        cert.pending_revocation()
            .and_then(|r| r.review.as_ref())
            .is_some_and(|r| r.outcome.is_none())
    };
    let may_see = |cert: &Certificate| {
        !cert.deleted
            && (actor.may_access(&cert.account) || (is_reviewer(&actor) && under_review(cert)))
    };
    let Some(cert) = loaded.state.as_ref().filter(|cert| may_see(cert)) else {
        return refused(&DomainError::not_found(&id));
    };
    match cert.revocation.as_ref().and_then(|r| r.document.as_ref()) {
        Some(document) => response(&DocumentLocation {
            document: Some(document_to_api(document)),
            object: document.object.clone(),
        }),
        None => refused(&DomainError::not_found_named(format!(
            "certificate {id} has no revocation document"
        ))),
    }
}

/// The printable template of the document `cert`'s revocation needs, for its owner.
async fn document_template(shared: &Shared, request: Request) -> Reply {
    let id = match decode_request::<certflow_proto::v1::GetDocumentTemplateRequest>(&request)
        .and_then(|req| CertificateId::parse(&req.certificate_id))
    {
        Ok(id) => id,
        Err(err) => return refused(&err),
    };
    let actor = actor_from_headers(request.headers.as_ref());
    let loaded = match shared.runtime.store.load(&id).await {
        Ok(loaded) => loaded,
        Err(err) => return unavailable(err.to_string()),
    };
    let Some(cert) = loaded
        .state
        .as_ref()
        .filter(|cert| !cert.deleted && actor.may_access(&cert.account))
    else {
        return refused(&DomainError::not_found(&id));
    };
    let kind = certflow_domain::review::document_kind(cert);
    let file_name = match kind {
        certflow_domain::DocumentKind::Application => format!("revocation-application-{id}.pdf"),
        certflow_domain::DocumentKind::ConfirmationLetter => {
            format!("revocation-confirmation-letter-{id}.pdf")
        }
    };
    response(&certflow_proto::v1::GetDocumentTemplateResponse {
        kind: certflow_proto::convert::document_kind_to_proto(kind) as i32,
        file_name,
        pdf: template::document_template(cert, kind),
    })
}

fn is_reviewer(actor: &Actor) -> bool {
    actor
        .roles
        .iter()
        .any(|role| matches!(role, Role::Reviewer | Role::Admin))
}

/// Most tasks looked at for one reviewer before answering that none is waiting.
const MAX_SKIPPED: usize = 20;

/// Leases the next task the caller may decide. Tasks are taken in one batch, so the ones
/// the caller may not decide (their own account's, or already approved by them) are handed
/// back only after the choice, for others; tasks of decided reviews are removed.
///
/// REV-R5: a reviewer holds at most `max_held` tasks at once, each at most the ack wait
/// (nobody extends a lease), so no reviewer can sit on the queue.
async fn next_task(shared: &Shared, request: Request) -> Reply {
    let actor = actor_from_headers(request.headers.as_ref());
    let reviewer = ReviewLeases::reviewer_token(&actor.account, &actor.subject);
    match shared.leases.held(&reviewer).await {
        Ok(held) if held >= shared.leases.limit() => return refused(&tasks_held(shared)),
        Ok(_) => {}
        Err(err) => return unavailable(err.to_string()),
    }
    let leased = match shared
        .queue
        .take(MAX_SKIPPED, Duration::from_millis(500))
        .await
    {
        Ok(leased) => leased,
        Err(err) => return unavailable(err.to_string()),
    };
    let mut chosen = None;
    for task in leased {
        if chosen.is_some() {
            settle(shared, &task.lease, LeaseOutcome::Release).await;
            continue;
        }
        let Ok(offered) = ReviewTask::decode(task.payload.clone()) else {
            warn!("removing an unreadable review task");
            settle(shared, &task.lease, LeaseOutcome::Done).await;
            continue;
        };
        match fresh_task(shared, &offered).await {
            Err(err) => {
                warn!(error = %err, "could not read a task's certificate; leaving it for later");
                settle(shared, &task.lease, LeaseOutcome::Release).await;
            }
            Ok(None) => settle(shared, &task.lease, LeaseOutcome::Done).await,
            Ok(Some(current)) if !may_decide(&actor, &current) => {
                settle(shared, &task.lease, LeaseOutcome::Release).await;
            }
            Ok(Some(current)) => chosen = Some((current, task.lease)),
        }
    }
    if let Some((_, lease)) = &chosen {
        match shared.leases.hold(&reviewer, lease).await {
            Ok(true) => {}
            Ok(false) => {
                // A concurrent call took the last slot.
                settle(shared, lease, LeaseOutcome::Release).await;
                return refused(&tasks_held(shared));
            }
            Err(err) => {
                settle(shared, lease, LeaseOutcome::Release).await;
                return unavailable(err.to_string());
            }
        }
    }
    let (task, lease) = chosen.unzip();
    response(&NextReviewTaskResponse {
        task,
        lease: lease.unwrap_or_default(),
    })
}

/// REV-R5: the refusal of a reviewer who holds as many tasks as one may.
fn tasks_held(shared: &Shared) -> DomainError {
    DomainError::refused(
        certflow_domain::Rule::RevR5,
        Reason::ReviewTasksHeld,
        format!(
            "you hold {} review tasks, as many as a reviewer may: decide one first, or wait \
             until a lease runs out (after {} seconds)",
            shared.leases.limit(),
            shared.config.ack_wait.as_secs()
        ),
    )
}

/// The task as it stands now: `None` when its review has been decided or replaced.
async fn fresh_task(shared: &Shared, task: &ReviewTask) -> Result<Option<ReviewTask>, StoreError> {
    let Some(id) = task_certificate(&task.task_id).and_then(|id| CertificateId::parse(id).ok())
    else {
        return Ok(None);
    };
    let history = shared.runtime.store.history(&id).await?;
    let state = history.iter().fold(None, |state, b| {
        certflow_domain::replay(state, &b.meta.command_id, &b.events)
    });
    Ok(state.as_ref().and_then(|cert| {
        review_tasks(cert, &history, &shared.config)
            .into_iter()
            .find(|current| current.task_id == task.task_id)
    }))
}

/// REV-R2, REV-R3 as a filter: whether `actor` could decide `task`.
fn may_decide(actor: &Actor, task: &ReviewTask) -> bool {
    let owner = task
        .certificate
        .as_ref()
        .map(|c| c.account.as_str())
        .unwrap_or_default();
    !certflow_domain::same_account(&actor.account, &task.requester_account)
        && !certflow_domain::same_account(&actor.account, owner)
        && !task.approvals.iter().any(|v| v.reviewer == actor.subject)
}

/// Whether `lease` holds the task `task_id`: a lease settles its own task only.
async fn lease_is_for(shared: &Shared, lease: &str, task_id: &str) -> bool {
    match shared.queue.leased_task(lease).await {
        Ok(Some(payload)) => ReviewTask::decode(payload).is_ok_and(|task| task.task_id == task_id),
        Ok(None) => false,
        Err(err) => {
            warn!(error = %err, "could not check a lease; it returns after the ack wait");
            false
        }
    }
}

async fn settle(shared: &Shared, lease: &str, outcome: LeaseOutcome) {
    if let Err(err) = shared.queue.settle(lease, outcome).await {
        warn!(error = %err, "could not settle a review task; it returns after the ack wait");
    }
}

/// A reviewer's decision as it arrived.
struct Decision {
    request_id: String,
    task_id: String,
    comment: String,
    lease: String,
    approve: bool,
    /// The request without its lease (a retry may come with a new one), for GEN-1.
    canonical: Vec<u8>,
}

/// REV-13: records a reviewer's decision, then settles the leased task: done once decided
/// (or found decided), handed to another reviewer when this one may not decide it.
async fn decide_task<M: Message>(
    shared: &Shared,
    request: &Request,
    decision: Decision,
    respond: fn(Option<certflow_proto::v1::Certificate>) -> M,
) -> Reply {
    let Decision {
        request_id,
        task_id,
        comment,
        lease,
        approve,
        canonical,
    } = decision;
    let binding = certflow_bus::RequestBinding::of(&request.subject, &canonical);
    let parsed = command_meta(&request_id, request.headers.as_ref()).and_then(|meta| {
        let meta = meta.bound_to(binding);
        let id = task_certificate(&task_id)
            .and_then(|id| CertificateId::parse(id).ok())
            .ok_or_else(|| {
                DomainError::not_found_named(format!(
                    "review task {task_id:?} does not exist; take tasks from the review queue"
                ))
            })?;
        Ok((meta, id))
    });
    let (meta, id) = match parsed {
        Ok(parsed) => parsed,
        Err(err) => return refused(&err),
    };
    let decided_task = task_id.clone();
    let command = Command::DecideReview(DecideReview {
        id: id.clone(),
        task_id,
        approve,
        comment,
    });
    let reply = shared
        .runtime
        .run(
            &meta,
            &id,
            |state, ctx| Ok(decide(state, &command, ctx)?),
            |cert, now| respond(Some(certificate_to_proto(cert, now))),
        )
        .await;
    if !lease.is_empty() && lease_is_for(shared, &lease, &decided_task).await {
        let outcome = match &reply.outcome {
            Some(Outcome::Response(_)) => Some(LeaseOutcome::Done),
            Some(Outcome::Refusal(refusal)) => match refusal.reason.as_str() {
                "REVIEW_ALREADY_DECIDED" | "NOT_FOUND" => Some(LeaseOutcome::Done),
                "SELF_REVIEW_FORBIDDEN" | "ALREADY_VOTED" => Some(LeaseOutcome::Release),
                _ => None,
            },
            None => None,
        };
        if let Some(outcome) = outcome {
            settle(shared, &lease, outcome).await;
            let actor = actor_from_headers(request.headers.as_ref());
            let reviewer = ReviewLeases::reviewer_token(&actor.account, &actor.subject);
            if let Err(err) = shared.leases.release(&reviewer, &lease).await {
                warn!(error = %err, "could not free a reviewer's slot; it frees itself with the lease");
            }
        }
    }
    reply
}

#[cfg(test)]
mod tests {
    use super::*;

    const PDF: &[u8] =
        b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";
    /// A JPEG: start of image, a comment segment, end of image.
    fn jpeg(comment: &[u8]) -> Vec<u8> {
        let mut jpeg = vec![0xff, 0xd8, 0xff, 0xfe];
        let length = u16::try_from(comment.len() + 2).expect("short comment");
        jpeg.extend_from_slice(&length.to_be_bytes());
        jpeg.extend_from_slice(comment);
        jpeg.extend_from_slice(&[0xff, 0xd9]);
        jpeg
    }
    /// The smallest ZIP archive: an end-of-central-directory record and no entries, with a
    /// comment of `comment` bytes.
    fn zip_trailer(comment: &[u8]) -> Vec<u8> {
        let mut record = b"PK\x05\x06".to_vec();
        record.extend_from_slice(&[0; 16]);
        record.extend_from_slice(&u16::try_from(comment.len()).expect("short").to_le_bytes());
        record.extend_from_slice(comment);
        record
    }

    #[test]
    fn rev12_a_file_that_is_two_formats_at_once_is_no_document() {
        assert_eq!(sniff(PDF), Some(DocumentFormat::Pdf));
        assert_eq!(sniff(&jpeg(b"scan")), Some(DocumentFormat::Jpeg));
        for trailer in [zip_trailer(b""), zip_trailer(b"a comment")] {
            let pdf_zip = [PDF, &trailer].concat();
            assert_eq!(sniff(&pdf_zip), None, "a PDF that is a ZIP archive too");
            let jpeg_zip = [jpeg(b"scan").as_slice(), &trailer].concat();
            assert_eq!(sniff(&jpeg_zip), None, "a JPEG that is a ZIP archive too");
        }
        assert_eq!(
            sniff(&jpeg(b"%PDF-1.7 1 0 obj")),
            None,
            "a JPEG a PDF reader opens"
        );
        // The signature alone, not where a ZIP reader would find a record, is just bytes.
        let stray = [PDF, b"PK\x05\x06 in a stream\n"].concat();
        assert_eq!(sniff(&stray), Some(DocumentFormat::Pdf));
    }
}
