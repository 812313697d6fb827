//! Manual review (REV-10's review rows, REI-10): stamped documents (REV-12), the review
//! queue (REV-R1, REV-R4) and reviewers' decisions (REV-13, REV-R2, REV-R3), for a
//! revocation or for a reissue whose enterprise details changed.

use crate::command::{DecideReview, UploadRevocationDocument};
use crate::context::{Context, Role};
use crate::error::{DomainError, Reason, Rule};
use crate::event::{
    Event, ReviewApproved, ReviewPassed, ReviewQueued, ReviewRejected, RevocationDocumentUploaded,
};
use crate::policy::Policy;
use crate::state::{Certificate, Review, ReviewOutcome, State};
use crate::time::Timestamp;
use crate::values::{Brand, Document, DocumentKind, RevocationPath, Vote};

/// REV-12: the largest document accepted, 1.4 MiB.
pub const MAX_DOCUMENT_BYTES: u64 = 1_468_006;

/// Longest reviewer comment accepted.
const MAX_COMMENT: usize = 2_000;

/// The document a revocation of `cert` needs, by brand (REV-10).
pub fn document_kind(cert: &Certificate) -> DocumentKind {
    document_kind_of(cert.brand)
}

/// The document a revocation of a `brand` certificate needs (REV-10): what forms ask for.
pub fn document_kind_of(brand: Brand) -> DocumentKind {
    match brand {
        Brand::DnsPod => DocumentKind::Application,
        _ => DocumentKind::ConfirmationLetter,
    }
}

/// The review task id of a revocation requested at `requested_at`: one per request, and it
/// names the certificate, so a decision finds its aggregate.
pub fn task_id(cert: &Certificate, requested_at: Timestamp) -> String {
    format!("{}/{}", cert.id, requested_at.unix_millis())
}

/// The certificate a task id names, if it is well formed.
pub fn task_certificate(task_id: &str) -> Option<&str> {
    task_id.split_once('/').map(|(certificate, _)| certificate)
}

/// REV-12: attaches a stamped document to a revocation that waits for one.
pub(crate) fn decide_upload_document(
    cert: &Certificate,
    cmd: &UploadRevocationDocument,
    ctx: &Context<'_>,
) -> Result<Vec<Event>, DomainError> {
    let revocation = cert.pending_revocation().ok_or_else(|| {
        DomainError::refused(
            Rule::Rev12,
            Reason::DocumentNotExpected,
            "no revocation of this certificate is waiting for a document; request the \
             revocation first",
        )
    })?;
    if revocation.path
        != (RevocationPath::ManualReview {
            document_required: true,
        })
    {
        return Err(DomainError::refused(
            Rule::Rev12,
            Reason::DocumentNotExpected,
            "this revocation needs no stamped document",
        ));
    }
    if revocation.document.is_some() {
        return Err(DomainError::refused(
            Rule::Rev12,
            Reason::DocumentAlreadyUploaded,
            "the document for this revocation is already uploaded; it can be uploaded once",
        ));
    }
    if cmd.size > MAX_DOCUMENT_BYTES {
        return Err(DomainError::invalid_by(
            Rule::Rev12,
            Reason::DocumentTooLarge,
            format!(
                "the document is {} bytes; at most {MAX_DOCUMENT_BYTES} (1.4 MiB) are accepted",
                cmd.size
            ),
        ));
    }
    let kind = document_kind(cert);
    let allowed = kind.allowed();
    let format = cmd
        .format
        .filter(|format| allowed.contains(format))
        .ok_or_else(|| {
            let names: Vec<&str> = allowed.iter().map(|f| f.media_type()).collect();
            DomainError::invalid_by(
                Rule::Rev12,
                Reason::DocumentFormatNotAllowed,
                format!(
                    "the document's content is not one of {}; its format is judged by its \
                     content, not its name",
                    names.join(", ")
                ),
            )
        })?;
    Ok(vec![Event::RevocationDocumentUploaded(
        RevocationDocumentUploaded {
            document: Document {
                kind,
                format,
                size: cmd.size,
                sha256: cmd.sha256.clone(),
                object: cmd.object.clone(),
                uploaded_at: ctx.now,
            },
        },
    )])
}

/// REV-R1, REV-R4: the review task for a revocation waiting for a reviewer, once: when the
/// revocation is requested, or, where a document is required, once it is in.
pub fn queue_review(state: &State, now: Timestamp, policy: &Policy) -> Vec<Event> {
    let Some(cert) = state else {
        return Vec::new();
    };
    let Some(revocation) = cert.pending_revocation() else {
        return Vec::new();
    };
    let RevocationPath::ManualReview { document_required } = revocation.path else {
        return Vec::new();
    };
    if revocation.review.is_some() || (document_required && revocation.document.is_none()) {
        return Vec::new();
    }
    vec![Event::ReviewQueued(ReviewQueued {
        reissue_id: None,
        task_id: task_id(cert, revocation.requested_at),
        approvals_needed: policy.approvals_needed(cert.brand, cert.level),
        queued_at: now,
    })]
}

/// REV-13 with REV-R1..R3: a reviewer approves or rejects, with a comment.
pub(crate) fn decide_review(
    state: &State,
    cmd: &DecideReview,
    ctx: &Context<'_>,
) -> Result<Vec<Event>, DomainError> {
    let actor = ctx.actor;
    if !actor
        .roles
        .iter()
        .any(|role| matches!(role, Role::Reviewer | Role::Admin))
    {
        return Err(DomainError::permission_denied(
            Rule::Gen3,
            Reason::RoleRequired,
            "only reviewers decide reviews",
        ));
    }
    let Some(cert) = state.as_ref().filter(|cert| !cert.deleted) else {
        return Err(unknown_task(&cmd.task_id));
    };
    crate::text::free_text("comment", &cmd.comment)?;
    let comment = cmd.comment.trim();
    if comment.is_empty() || comment.chars().count() > MAX_COMMENT {
        return Err(DomainError::invalid_by(
            Rule::Rev13,
            Reason::CommentRequired,
            format!("a decision needs a comment of 1 to {MAX_COMMENT} characters"),
        ));
    }
    let (reissue_id, requested_by, review) = task_review(cert, &cmd.task_id)?;
    if crate::same_account(&actor.account, requested_by)
        || crate::same_account(&actor.account, &cert.account)
    {
        return Err(DomainError::permission_denied(
            Rule::RevR2,
            Reason::SelfReviewForbidden,
            "a reviewer may not decide a request made by their own account; leave the task \
             to another reviewer",
        ));
    }
    if review.outcome.is_some() {
        return Err(already_decided());
    }
    if review.approvals.iter().any(|v| v.reviewer == actor.subject) {
        return Err(DomainError::refused(
            Rule::RevR3,
            Reason::AlreadyVoted,
            "you have approved this request already; another reviewer must decide",
        ));
    }
    let vote = Vote {
        reviewer: actor.subject.clone(),
        account: actor.account.clone(),
        comment: comment.to_string(),
        at: ctx.now,
    };
    if !cmd.approve {
        return Ok(vec![Event::ReviewRejected(ReviewRejected {
            reissue_id,
            vote,
        })]);
    }
    let mut events = vec![Event::ReviewApproved(ReviewApproved {
        reissue_id: reissue_id.clone(),
        vote,
    })];
    let approvals = u32::try_from(review.approvals.len()).unwrap_or(u32::MAX) + 1;
    if approvals >= review.approvals_needed {
        events.push(Event::ReviewPassed(ReviewPassed {
            reissue_id,
            passed_at: ctx.now,
        }));
    }
    Ok(events)
}

/// The request task `task` of `cert` is about: a pending reissue (REI-10), or the
/// revocation (current or ended). Gives the reissue id the events name (none for the
/// revocation), the account that asked, and the review.
fn task_review<'c>(
    cert: &'c Certificate,
    task: &str,
) -> Result<(Option<String>, &'c str, &'c Review), DomainError> {
    let pending_reissue = cert
        .pending_reissue
        .as_ref()
        .filter(|p| reissue_task_id(cert, &p.reissue_id) == task);
    if let Some(pending) = pending_reissue {
        let review = match &pending.review {
            Some(review) => review,
            None => return Err(not_queued()),
        };
        return Ok((
            Some(pending.reissue_id.clone()),
            pending.requested_by.as_str(),
            review,
        ));
    }
    if task.contains("/reissue/") {
        // A reissue that is no longer pending: it ended, one way or another.
        return Err(already_decided());
    }
    let current = cert
        .revocation
        .as_ref()
        .filter(|r| task_id(cert, r.requested_at) == task);
    let ended_earlier = cert
        .failed_revocation
        .as_ref()
        .is_some_and(|f| task_id(cert, f.requested_at) == task);
    let revocation = match current {
        Some(revocation) if revocation.revoked_at.is_none() => revocation,
        Some(_) => return Err(already_decided()),
        None if ended_earlier => return Err(already_decided()),
        None => return Err(unknown_task(task)),
    };
    let review = match &revocation.review {
        Some(review) => review,
        None if revocation.document.is_none()
            && revocation.path
                == (RevocationPath::ManualReview {
                    document_required: true,
                }) =>
        {
            return Err(DomainError::refused(
                Rule::RevR4,
                Reason::ReviewWaitingForDocument,
                "this review waits for the customer's stamped document and is not open yet",
            ));
        }
        None => return Err(not_queued()),
    };
    Ok((None, revocation.requested_by.as_str(), review))
}

fn unknown_task(task: &str) -> DomainError {
    DomainError::not_found_named(format!(
        "review task {task} does not exist; take tasks from the review queue"
    ))
}

fn not_queued() -> DomainError {
    DomainError::refused(
        Rule::RevR1,
        Reason::ReviewNotQueued,
        "this review is being put on the queue; try again in a moment",
    )
}

/// The review task id of reissue `reissue_id` of `cert`.
pub fn reissue_task_id(cert: &Certificate, reissue_id: &str) -> String {
    format!("{}/reissue/{reissue_id}", cert.id)
}

/// REI-10: the review task of a pending reissue that needs a reviewer, once.
pub fn queue_reissue_review(state: &State, now: Timestamp, policy: &Policy) -> Vec<Event> {
    let Some(cert) = state else {
        return Vec::new();
    };
    let Some(pending) = cert
        .pending_reissue
        .as_ref()
        .filter(|p| p.needs_review && p.review.is_none())
    else {
        return Vec::new();
    };
    vec![Event::ReviewQueued(ReviewQueued {
        reissue_id: Some(pending.reissue_id.clone()),
        task_id: reissue_task_id(cert, &pending.reissue_id),
        approvals_needed: policy.approvals_needed(cert.brand, cert.level),
        queued_at: now,
    })]
}

fn already_decided() -> DomainError {
    DomainError::refused(
        Rule::RevR1,
        Reason::ReviewAlreadyDecided,
        "this request has been decided already; take the next task",
    )
}

/// The state after a review event.
pub(crate) fn evolve_review(cert: &mut Certificate, event: &Event) {
    if let Event::RevocationDocumentUploaded(e) = event {
        if let Some(revocation) = cert.revocation.as_mut().filter(|r| r.revoked_at.is_none()) {
            revocation.document = Some(e.document.clone());
        }
        return;
    }
    let reissue_id = match event {
        Event::ReviewQueued(e) => &e.reissue_id,
        Event::ReviewApproved(e) => &e.reissue_id,
        Event::ReviewPassed(e) => &e.reissue_id,
        Event::ReviewRejected(e) => &e.reissue_id,
        _ => return,
    };
    let slot = match reissue_id {
        None => cert
            .revocation
            .as_mut()
            .filter(|r| r.revoked_at.is_none())
            .map(|r| &mut r.review),
        Some(id) => cert
            .pending_reissue
            .as_mut()
            .filter(|p| &p.reissue_id == id)
            .map(|p| &mut p.review),
    };
    let Some(slot) = slot else {
        return;
    };
    match event {
        Event::ReviewQueued(e) => {
            *slot = Some(Review {
                task_id: e.task_id.clone(),
                approvals_needed: e.approvals_needed,
                queued_at: e.queued_at,
                approvals: Vec::new(),
                rejection: None,
                outcome: None,
            });
        }
        Event::ReviewApproved(e) => {
            if let Some(review) = slot.as_mut() {
                review.approvals.push(e.vote.clone());
            }
        }
        Event::ReviewPassed(_) => {
            if let Some(review) = slot.as_mut() {
                review.outcome = Some(ReviewOutcome::Approved);
            }
        }
        Event::ReviewRejected(e) => {
            if let Some(review) = slot.as_mut() {
                review.rejection = Some(e.vote.clone());
                review.outcome = Some(ReviewOutcome::Rejected);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::command::{Command, CommandId, IssueCertificate, RequestRevocation};
    use crate::context::Actor;
    use crate::lifecycle::revocation::downloadable;
    use crate::lifecycle::{decide, replay};
    use crate::reactions::conclude_revocation;
    use crate::state::Status;
    use crate::testing::{admin, customer, now};
    use crate::time::Duration;
    use crate::values::{
        DocumentFormat, KeyAlgorithm, Level, RevocationFailure, ValidationMethod, ValidationSetup,
    };
    use crate::{CertificateId, ErrorKind};

    fn id() -> CertificateId {
        CertificateId::parse("c1").expect("valid id")
    }

    fn reviewer(name: &str) -> Actor {
        Actor {
            subject: name.into(),
            account: "certflow-review".into(),
            roles: vec![Role::Reviewer],
        }
    }

    fn issue(brand: Brand, level: Level, auto: bool) -> Command {
        Command::Issue(IssueCertificate {
            id: id(),
            account: "acme".into(),
            brand,
            level,
            paid: true,
            algorithm: KeyAlgorithm::EccP256,
            domains: vec!["www.example.com".into()],
            term_years: 1,
            not_before: None,
            not_after: Some(now().plus(Duration::days(180))),
            validation_setup: if auto {
                BTreeMap::from([("www.example.com".to_string(), ValidationSetup::DnsAuto)])
            } else {
                BTreeMap::new()
            },
            renewal_ordered: false,
            enterprise_info: BTreeMap::new(),
        })
    }

    fn revoke() -> Command {
        Command::RequestRevocation(RequestRevocation {
            id: id(),
            reason_code: 5,
            description: "the site is closed".into(),
            validation_method: ValidationMethod::Dns,
        })
    }

    fn document(format: Option<DocumentFormat>, size: u64) -> Command {
        Command::UploadRevocationDocument(UploadRevocationDocument {
            id: id(),
            format,
            size,
            sha256: "ab".into(),
            object: "doc-1".into(),
        })
    }

    fn decision(task: &str, approve: bool) -> Command {
        Command::DecideReview(DecideReview {
            id: id(),
            task_id: task.into(),
            approve,
            comment: "checked the request".into(),
        })
    }

    /// Runs `command` as `actor` on `state` under `policy`; returns the new state or refusal.
    fn run(
        state: State,
        actor: &Actor,
        command: &Command,
        policy: &Policy,
    ) -> Result<State, DomainError> {
        let command_id = CommandId(format!("c-{}", uuid_like(&state)));
        let ctx = Context {
            now: now(),
            command_id: &command_id,
            actor,
            policy,
        };
        let events = decide(&state, command, &ctx)?;
        Ok(replay(state, &command_id, &events))
    }

    fn uuid_like(state: &State) -> usize {
        state.as_ref().map_or(0, |c| c.applied_commands.len())
    }

    fn queued(state: State, policy: &Policy) -> State {
        let events = queue_review(&state, now(), policy);
        replay(state, &CommandId("queue".into()), &events)
    }

    fn task(state: &State) -> String {
        state
            .as_ref()
            .and_then(|c| c.pending_revocation())
            .and_then(|r| r.review.as_ref())
            .map(|r| r.task_id.clone())
            .expect("queued")
    }

    fn pending_review(brand: Brand, level: Level, policy: &Policy) -> State {
        let state = run(None, &admin(), &issue(brand, level, false), policy).expect("issued");
        let state = run(state, &customer("acme"), &revoke(), policy).expect("requested");
        queued(state, policy)
    }

    fn refused(result: Result<State, DomainError>, reason: Reason) -> DomainError {
        let err = result.expect_err("refused");
        assert_eq!(err.reason(), reason, "{err}");
        err
    }

    #[test]
    fn rev10_revr4_review_rows_queue_a_task_and_wait_for_the_document() {
        let policy = Policy::default();
        // Wotrus (any level) and DNSPod DV: reviewed at once.
        for (brand, level) in [
            (Brand::Wotrus, Level::Dv),
            (Brand::Wotrus, Level::Ev),
            (Brand::DnsPod, Level::Dv),
        ] {
            let state = pending_review(brand, level, &policy);
            assert_eq!(task(&state), format!("c1/{}", now().unix_millis()));
        }
        // Other OV/EV with automatic validation: no document, reviewed at once.
        let state = run(
            None,
            &admin(),
            &issue(Brand::GeoTrust, Level::Ov, true),
            &policy,
        )
        .expect("issued");
        let state = run(state, &customer("acme"), &revoke(), &policy).expect("requested");
        assert_eq!(queue_review(&state, now(), &policy).len(), 1);
        // DNSPod OV/EV and other OV/EV without it: no task until the document is in (REV-R4).
        for brand in [Brand::DnsPod, Brand::GeoTrust] {
            let state = pending_review(brand, Level::Ov, &policy);
            let cert = state.as_ref().expect("cert");
            assert!(
                cert.pending_revocation()
                    .and_then(|r| r.review.as_ref())
                    .is_none()
            );
            refused(
                run(
                    state.clone(),
                    &reviewer("rita"),
                    &decision(&format!("c1/{}", now().unix_millis()), true),
                    &policy,
                ),
                Reason::ReviewWaitingForDocument,
            );
            let with_document = run(
                state,
                &customer("acme"),
                &document(Some(DocumentFormat::Pdf), 10_000),
                &policy,
            )
            .expect("document accepted");
            let queued_now = queued(with_document, &policy);
            assert!(!task(&queued_now).is_empty());
        }
    }

    #[test]
    fn rev12_documents_are_checked_for_size_format_and_once_per_request() {
        let policy = Policy::default();
        let dnspod = pending_review(Brand::DnsPod, Level::Ev, &policy);
        let too_big = refused(
            run(
                dnspod.clone(),
                &customer("acme"),
                &document(Some(DocumentFormat::Pdf), MAX_DOCUMENT_BYTES + 1),
                &policy,
            ),
            Reason::DocumentTooLarge,
        );
        assert_eq!(too_big.kind(), ErrorKind::InvalidArgument);
        run(
            dnspod.clone(),
            &customer("acme"),
            &document(Some(DocumentFormat::Pdf), MAX_DOCUMENT_BYTES),
            &policy,
        )
        .expect("exactly 1.4 MiB is accepted");
        // DNSPod's application: JPG, GIF or PDF, judged by content; a PNG is not one.
        refused(
            run(
                dnspod.clone(),
                &customer("acme"),
                &document(Some(DocumentFormat::Png), 100),
                &policy,
            ),
            Reason::DocumentFormatNotAllowed,
        );
        refused(
            run(
                dnspod.clone(),
                &customer("acme"),
                &document(None, 100),
                &policy,
            ),
            Reason::DocumentFormatNotAllowed,
        );
        run(
            dnspod.clone(),
            &customer("acme"),
            &document(Some(DocumentFormat::Gif), 100),
            &policy,
        )
        .expect("a GIF application");
        // Other brands' confirmation letter: JPG, PNG or PDF, not GIF.
        let geotrust = pending_review(Brand::GeoTrust, Level::Ov, &policy);
        refused(
            run(
                geotrust.clone(),
                &customer("acme"),
                &document(Some(DocumentFormat::Gif), 100),
                &policy,
            ),
            Reason::DocumentFormatNotAllowed,
        );
        let uploaded = run(
            geotrust,
            &customer("acme"),
            &document(Some(DocumentFormat::Png), 100),
            &policy,
        )
        .expect("a PNG letter");
        refused(
            run(
                uploaded,
                &customer("acme"),
                &document(Some(DocumentFormat::Png), 100),
                &policy,
            ),
            Reason::DocumentAlreadyUploaded,
        );
        // A path without a document takes none.
        let wotrus = pending_review(Brand::Wotrus, Level::Dv, &policy);
        refused(
            run(
                wotrus,
                &customer("acme"),
                &document(Some(DocumentFormat::Pdf), 100),
                &policy,
            ),
            Reason::DocumentNotExpected,
        );
    }

    #[test]
    fn rev13_approval_revokes_and_rejection_makes_the_certificate_issued_again() {
        let policy = Policy::default();
        let state = pending_review(Brand::Wotrus, Level::Dv, &policy);
        let task_id = task(&state);
        let approved = run(
            state.clone(),
            &reviewer("rita"),
            &decision(&task_id, true),
            &policy,
        )
        .expect("approved");
        let revoked = replay(
            approved.clone(),
            &CommandId("conclude".into()),
            &conclude_revocation(&approved, now()),
        );
        assert_eq!(
            revoked.as_ref().map(|c| c.status(now())),
            Some(Status::Revoked)
        );

        let rejected = run(
            state,
            &reviewer("rita"),
            &decision(&task_id, false),
            &policy,
        )
        .expect("rejected");
        let failed = replay(
            rejected.clone(),
            &CommandId("conclude".into()),
            &conclude_revocation(&rejected, now()),
        );
        let cert = failed.as_ref().expect("cert");
        assert_eq!(cert.status(now()), Status::Issued);
        assert_eq!(
            cert.failed_revocation.as_ref().map(|f| f.failure),
            Some(RevocationFailure::ReviewRejected)
        );
        assert!(downloadable(&failed, &id(), &customer("acme"), now()).is_ok());
        // The task of the ended request is decided, not unknown (REV-R1).
        refused(
            run(
                failed,
                &reviewer("remy"),
                &decision(&task_id, true),
                &policy,
            ),
            Reason::ReviewAlreadyDecided,
        );
    }

    #[test]
    fn rev13_a_decision_needs_a_comment_and_a_reviewer() {
        let policy = Policy::default();
        let state = pending_review(Brand::Wotrus, Level::Dv, &policy);
        let no_comment = Command::DecideReview(DecideReview {
            id: id(),
            task_id: task(&state),
            approve: true,
            comment: "  ".into(),
        });
        refused(
            run(state.clone(), &reviewer("rita"), &no_comment, &policy),
            Reason::CommentRequired,
        );
        let err = refused(
            run(
                state.clone(),
                &customer("globex"),
                &decision(&task(&state), true),
                &policy,
            ),
            Reason::RoleRequired,
        );
        assert_eq!(err.kind(), ErrorKind::PermissionDenied);
        refused(
            run(state, &reviewer("rita"), &decision("c1/42", true), &policy),
            Reason::NotFound,
        );
    }

    #[test]
    fn revr1_a_decided_task_is_never_decided_twice() {
        let policy = Policy::default();
        let state = pending_review(Brand::Wotrus, Level::Dv, &policy);
        let task_id = task(&state);
        let approved =
            run(state, &reviewer("rita"), &decision(&task_id, true), &policy).expect("approved");
        refused(
            run(
                approved.clone(),
                &reviewer("remy"),
                &decision(&task_id, false),
                &policy,
            ),
            Reason::ReviewAlreadyDecided,
        );
        let revoked = replay(
            approved.clone(),
            &CommandId("conclude".into()),
            &conclude_revocation(&approved, now()),
        );
        refused(
            run(
                revoked,
                &reviewer("remy"),
                &decision(&task_id, true),
                &policy,
            ),
            Reason::ReviewAlreadyDecided,
        );
    }

    #[test]
    fn revr2_no_reviewer_decides_a_request_of_their_own_account() {
        let policy = Policy::default();
        let state = pending_review(Brand::Wotrus, Level::Dv, &policy);
        let colleague = Actor {
            subject: "acme-reviewer".into(),
            account: "acme".into(),
            roles: vec![Role::Reviewer],
        };
        let err = refused(
            run(
                state.clone(),
                &colleague,
                &decision(&task(&state), true),
                &policy,
            ),
            Reason::SelfReviewForbidden,
        );
        assert_eq!(err.kind(), ErrorKind::PermissionDenied);
        assert_eq!(err.rule(), Some(Rule::RevR2));
        // Nor one of the account that asked, when that is not the owner (an admin's).
        let state = run(
            None,
            &admin(),
            &issue(Brand::Wotrus, Level::Dv, false),
            &policy,
        )
        .expect("issued");
        let state = queued(
            run(state, &admin(), &revoke(), &policy).expect("requested"),
            &policy,
        );
        let platform_reviewer = Actor {
            subject: "ops-reviewer".into(),
            account: admin().account,
            roles: vec![Role::Reviewer],
        };
        refused(
            run(
                state.clone(),
                &platform_reviewer,
                &decision(&task(&state), true),
                &policy,
            ),
            Reason::SelfReviewForbidden,
        );
    }

    #[test]
    fn revr3_two_of_three_distinct_approvals_and_one_rejection_rejects() {
        let policy = Policy {
            review_approvals: [((Brand::Wotrus, Level::Ev), 2)].into_iter().collect(),
            ..Policy::default()
        };
        assert_eq!(policy.approvals_needed(Brand::Wotrus, Level::Ev), 2);
        assert_eq!(policy.approvals_needed(Brand::Wotrus, Level::Dv), 1);
        let state = pending_review(Brand::Wotrus, Level::Ev, &policy);
        let task_id = task(&state);
        let once = run(state, &reviewer("rita"), &decision(&task_id, true), &policy)
            .expect("first approval");
        assert!(
            conclude_revocation(&once, now()).is_empty(),
            "one of two is not enough"
        );
        refused(
            run(
                once.clone(),
                &reviewer("rita"),
                &decision(&task_id, true),
                &policy,
            ),
            Reason::AlreadyVoted,
        );
        let twice = run(
            once.clone(),
            &reviewer("remy"),
            &decision(&task_id, true),
            &policy,
        )
        .expect("second approval");
        let events = conclude_revocation(&twice, now());
        assert_eq!(
            events.iter().map(Event::type_name).collect::<Vec<_>>(),
            ["CertificateRevoked"]
        );
        // One rejection, even after an approval, rejects.
        let rejected =
            run(once, &reviewer("remy"), &decision(&task_id, false), &policy).expect("rejection");
        let failed = conclude_revocation(&rejected, now());
        assert_eq!(
            failed.iter().map(Event::type_name).collect::<Vec<_>>(),
            ["RevocationFailed"]
        );
    }
}
