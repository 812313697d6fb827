//! Review tasks: what a reviewer sees for a certificate, offering it on the queue, leasing
//! the next one a reviewer may decide (REV-R1, REV-R5), and recording a decision (REV-13).

use std::time::Duration;

use bytes::Bytes;
use certflow_bus::{
    ClientReason, Request, actor_from_headers, command_meta, refused, response, unavailable,
};
use certflow_domain::review::task_certificate;
use certflow_domain::{
    Actor, Certificate, CertificateId, Command, DecideReview, DomainError, Event, Reason, decide,
};
use certflow_proto::bus::v1::{Reply, reply::Outcome};
use certflow_proto::convert::{
    brand_to_proto, certificate_to_proto, document_to_api, level_to_proto, reason_to_proto,
    timestamp_to_proto,
};
use certflow_proto::v1::{
    CertificateSummary, NextReviewTaskResponse, ReviewRequestKind, ReviewTask, ReviewVote,
};
use certflow_runtime::ReactionError;
use certflow_store::{LeaseOutcome, RecordedBatch, ReviewLeases, StoreError};
use prost::Message;
use tracing::warn;

use crate::{ReviewConfig, ReviewService};

/// Puts the certificate's open review on the queue, with the approvals so far; offering the
/// same state twice stores one message.
pub(crate) async fn offer(
    service: &ReviewService,
    id: &CertificateId,
) -> Result<(), ReactionError> {
    let history = service.runtime.store.history(id).await?;
    let state = history.iter().fold(None, |state, b| {
        certflow_domain::replay(state, &b.meta.command_id, &b.events)
    });
    let Some(cert) = &state else { return Ok(()) };
    for task in review_tasks(cert, &history, &service.config) {
        let message_id = format!("task-{}-{}", task.task_id, task.approvals.len());
        let kind = if task.kind == ReviewRequestKind::Reissue as i32 {
            "reissue"
        } else {
            "revocation"
        };
        let subject = format!("{kind}.{}", cert.brand.slug());
        service
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

/// Most tasks looked at for one reviewer before answering that none is waiting.
const MAX_SKIPPED: usize = 20;

/// Leases the next task the caller may decide. Tasks are taken in one batch, so the ones
/// the caller may not decide (their own account's, or already approved by them) are handed
/// back only after the choice, for others; tasks of decided reviews are removed.
///
/// REV-R5: a reviewer holds at most `max_held` tasks at once, each at most the ack wait
/// (nobody extends a lease), so no reviewer can sit on the queue.
pub(crate) async fn next_task(service: &ReviewService, request: Request) -> Reply {
    let actor = actor_from_headers(request.headers.as_ref());
    let reviewer = ReviewLeases::reviewer_token(&actor.account, &actor.subject);
    match service.leases.held(&reviewer).await {
        Ok(held) if held >= service.leases.limit() => return refused(&tasks_held(service)),
        Ok(_) => {}
        Err(err) => return unavailable(err.to_string()),
    }
    let leased = match service
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
            settle(service, &task.lease, LeaseOutcome::Release).await;
            continue;
        }
        let Ok(offered) = ReviewTask::decode(task.payload.clone()) else {
            warn!("removing an unreadable review task");
            settle(service, &task.lease, LeaseOutcome::Done).await;
            continue;
        };
        match fresh_task(service, &offered).await {
            Err(err) => {
                warn!(error = %err, "could not read a task's certificate; leaving it for later");
                settle(service, &task.lease, LeaseOutcome::Release).await;
            }
            Ok(None) => settle(service, &task.lease, LeaseOutcome::Done).await,
            Ok(Some(current)) if !may_decide(&actor, &current) => {
                settle(service, &task.lease, LeaseOutcome::Release).await;
            }
            Ok(Some(current)) => chosen = Some((current, task.lease)),
        }
    }
    if let Some((_, lease)) = &chosen {
        match service.leases.hold(&reviewer, lease).await {
            Ok(true) => {}
            Ok(false) => {
                // A concurrent call took the last slot.
                settle(service, lease, LeaseOutcome::Release).await;
                return refused(&tasks_held(service));
            }
            Err(err) => {
                settle(service, lease, LeaseOutcome::Release).await;
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
fn tasks_held(service: &ReviewService) -> DomainError {
    DomainError::refused(
        certflow_domain::Rule::RevR5,
        Reason::ReviewTasksHeld,
        format!(
            "you hold {} review tasks, as many as a reviewer may: decide one first, or wait \
             until a lease runs out (after {} seconds)",
            service.leases.limit(),
            service.config.ack_wait.as_secs()
        ),
    )
}

/// The task as it stands now: `None` when its review has been decided or replaced.
async fn fresh_task(
    service: &ReviewService,
    task: &ReviewTask,
) -> Result<Option<ReviewTask>, StoreError> {
    let Some(id) = task_certificate(&task.task_id).and_then(|id| CertificateId::parse(id).ok())
    else {
        return Ok(None);
    };
    let history = service.runtime.store.history(&id).await?;
    let state = history.iter().fold(None, |state, b| {
        certflow_domain::replay(state, &b.meta.command_id, &b.events)
    });
    Ok(state.as_ref().and_then(|cert| {
        review_tasks(cert, &history, &service.config)
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
async fn lease_is_for(service: &ReviewService, lease: &str, task_id: &str) -> bool {
    match service.queue.leased_task(lease).await {
        Ok(Some(payload)) => ReviewTask::decode(payload).is_ok_and(|task| task.task_id == task_id),
        Ok(None) => false,
        Err(err) => {
            warn!(error = %err, "could not check a lease; it returns after the ack wait");
            false
        }
    }
}

async fn settle(service: &ReviewService, lease: &str, outcome: LeaseOutcome) {
    if let Err(err) = service.queue.settle(lease, outcome).await {
        warn!(error = %err, "could not settle a review task; it returns after the ack wait");
    }
}

/// A reviewer's decision as it arrived.
pub(crate) struct Decision {
    pub request_id: String,
    pub task_id: String,
    pub comment: String,
    pub lease: String,
    pub approve: bool,
    /// The request without its lease (a retry may come with a new one), for GEN-1.
    pub canonical: Vec<u8>,
}

/// REV-13: records a reviewer's decision, then settles the leased task: done once decided
/// (or found decided), handed to another reviewer when this one may not decide it.
pub(crate) async fn decide_task<M: Message>(
    service: &ReviewService,
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
    let reply = service
        .runtime
        .run(
            &meta,
            &id,
            |state, ctx| Ok(decide(state, &command, ctx)?),
            |cert, now| respond(Some(certificate_to_proto(cert, now))),
        )
        .await;
    if !lease.is_empty() && lease_is_for(service, &lease, &decided_task).await {
        let outcome = match &reply.outcome {
            Some(Outcome::Response(_)) => Some(LeaseOutcome::Done),
            Some(Outcome::Refusal(refusal)) => match refusal.client_reason() {
                Some(ClientReason::Rule(Reason::ReviewAlreadyDecided | Reason::NotFound)) => {
                    Some(LeaseOutcome::Done)
                }
                Some(ClientReason::Rule(Reason::SelfReviewForbidden | Reason::AlreadyVoted)) => {
                    Some(LeaseOutcome::Release)
                }
                _ => None,
            },
            None => None,
        };
        if let Some(outcome) = outcome {
            settle(service, &lease, outcome).await;
            let actor = actor_from_headers(request.headers.as_ref());
            let reviewer = ReviewLeases::reviewer_token(&actor.account, &actor.subject);
            if let Err(err) = service.leases.release(&reviewer, &lease).await {
                warn!(error = %err, "could not free a reviewer's slot; it frees itself with the lease");
            }
        }
    }
    reply
}
