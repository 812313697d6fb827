//! Manual review end to end: the review-queue stream as reviewers' clients see it, decisions
//! through the gateway, stamped documents (REV-10 review rows, REV-12, REV-13, REV-R1..R4).

use std::time::Duration;

use async_nats::jetstream;
use certflow_domain::{Brand as DomainBrand, Level as DomainLevel};
use certflow_proto::v1::{
    ApproveReviewRequest, Brand, CertificateStatus, DomainValidationSetup,
    GetRevocationDocumentRequest, IssueCertificateRequest, Level, NextReviewTaskRequest,
    RejectReviewRequest, RequestRevocationRequest, ReviewTask, RevocationFailure, RevocationPath,
    RevocationReason, UploadRevocationDocumentRequest, ValidationSetup,
    review_service_client::ReviewServiceClient,
};
use certflow_testkit::{Authed, Certflow, eventually};
use prost::Message;
use tonic::Code;

use crate::support::{
    certificate_of, history_types, issue, next_review_task, reason, request_id, started,
    wait_for_status, wait_until,
};

/// A certificate of `brand` and `level` for acme with no automatic validation.
fn revoke(id: &str) -> RequestRevocationRequest {
    RequestRevocationRequest {
        request_id: request_id(),
        certificate_id: id.into(),
        reason: RevocationReason::CessationOfOperation as i32,
        description: "the shop has closed".into(),
        validation_method: 0,
    }
}

fn approve(task_id: &str, lease: &str) -> ApproveReviewRequest {
    ApproveReviewRequest {
        request_id: request_id(),
        task_id: task_id.into(),
        comment: "the request checks out".into(),
        lease: lease.into(),
    }
}

/// A reviewer's gRPC client: subject `name`, account `account`.
async fn reviewer(certflow: &Certflow, name: &str, account: &str) -> ReviewServiceClient<Authed> {
    certflow
        .reviews_as(&certflow.token(name, account, &["reviewer"]))
        .await
        .expect("client")
}

const PDF: &[u8] =
    b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";
const PNG: &[u8] = &[
    0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, b'I', b'H', b'D', b'R', 0, 0, 0,
    1, 0, 0, 0, 1, 8, 6, 0, 0, 0, 0x1f, 0x15, 0xc4, 0x89,
];

#[tokio::test]
async fn revr1_a_reviewer_follows_review_queue_with_plain_nats_and_takes_and_decides_over_grpc() {
    let certflow = Certflow::start_secured_with(|_| {}).await.expect("start");
    let mut certs = certflow.certificates().await.expect("client");
    let alice = certflow.token("alice", "acme", &["customer"]);
    let mut revocations = certflow.revocations_as(Some(&alice)).await.expect("client");
    let cert = issue(
        &mut certs,
        certificate_of(Brand::Wotrus, Level::Dv, "shop.example.com"),
    )
    .await;
    let request = revoke(&cert.id);
    let pending = revocations
        .request_revocation(request.clone())
        .await
        .expect("accepted")
        .into_inner()
        .certificate
        .expect("certificate");
    assert_eq!(pending.status, CertificateStatus::RevocationPending as i32);
    assert_eq!(
        pending.revocation.as_ref().map(|r| r.path),
        Some(RevocationPath::ManualReview as i32)
    );

    // The reviewer's client knows the stream and the ReviewTask proto only. As
    // deploy/nats/certflow.conf asks of reviewers: the NATS user "reviewer", replies under
    // its own inbox prefix; it reads the queue and hears new tasks, and takes none.
    let nats = async_nats::ConnectOptions::with_user_and_password(
        "reviewer".into(),
        certflow
            .nats()
            .password("reviewer")
            .expect("password")
            .into(),
    )
    .custom_inbox_prefix("_INBOX_reviewer")
    .connect(certflow.nats().url())
    .await
    .expect("nats");
    let js = jetstream::new(nats);
    let queue = js.get_stream("REVIEW_QUEUE").await.expect("stream");
    let message = eventually(Duration::from_secs(15), || {
        let queue = queue.clone();
        async move {
            queue
                .get_first_raw_message_by_subject("review.queue.>", 0)
                .await
                .ok()
        }
    })
    .await
    .expect("a task on REVIEW_QUEUE");
    assert_eq!(message.subject.as_str(), "review.queue.revocation.wotrus");
    let content_type = message
        .headers
        .get("Content-Type")
        .map(|v| v.as_str().to_string());
    assert_eq!(
        content_type.as_deref(),
        Some("application/protobuf; proto=certflow.v1.ReviewTask")
    );
    let task = ReviewTask::decode(message.payload.clone()).expect("a ReviewTask");
    assert_eq!(task.request_id, request.request_id);
    assert_eq!(task.requester_account, "acme");
    assert_eq!(task.description, "the shop has closed");
    assert_eq!(task.reason, RevocationReason::CessationOfOperation as i32);
    assert_eq!(task.approvals_needed, 1);
    assert_eq!(
        task.certificate.as_ref().map(|c| c.id.as_str()),
        Some(cert.id.as_str())
    );
    assert!(task.due_by.is_some() && task.queued_at.is_some());

    // Taking it is asking the gateway for a lease; the decision settles it.
    let mut rita = reviewer(&certflow, "rita", "certflow-review").await;
    let (taken, lease) = next_review_task(&rita).await;
    assert_eq!(taken.task_id, task.task_id);
    rita.approve_review(approve(&task.task_id, &lease))
        .await
        .expect("approved");

    let revoked = wait_for_status(&mut certs, &cert.id, CertificateStatus::Revoked).await;
    assert_eq!(
        revoked
            .revocation
            .and_then(|r| r.review)
            .map(|r| r.approvals.len()),
        Some(1)
    );
    let types = history_types(&certs, &cert.id).await;
    assert_eq!(
        &types[1..],
        [
            "RevocationRequested",
            "ReviewQueued",
            "ReviewApproved",
            "ReviewPassed",
            "CertificateRevoked"
        ]
    );
    // Decided is decided (REV-R1).
    let err = rita
        .approve_review(approve(&task.task_id, ""))
        .await
        .expect_err("already decided");
    assert_eq!(reason(&err), "REVIEW_ALREADY_DECIDED");
}

#[tokio::test]
async fn revr1_a_task_whose_reviewer_vanishes_is_offered_again_and_a_race_records_one_decision() {
    let certflow = Certflow::start_with(|config| config.review.ack_wait = Duration::from_secs(2))
        .await
        .expect("start");
    let mut certs = certflow.certificates().await.expect("client");
    let mut revocations = certflow.revocations().await.expect("client");
    let cert = issue(
        &mut certs,
        certificate_of(Brand::Dnspod, Level::Dv, "a.example.com"),
    )
    .await;
    revocations
        .request_revocation(revoke(&cert.id))
        .await
        .expect("accepted");

    // Rita takes the task and goes away without deciding.
    let rita = reviewer(&certflow, "rita", "certflow-review").await;
    let (taken, _lease) = next_review_task(&rita).await;
    // After the ack wait, Remy is offered the same task.
    let remy = reviewer(&certflow, "remy", "certflow-review").await;
    let (again, lease) = next_review_task(&remy).await;
    assert_eq!(again.task_id, taken.task_id);

    // Both decide at once: one decision is recorded.
    let (mut rita, mut remy) = (rita, remy);
    let task_id = taken.task_id.clone();
    let (first, second) = tokio::join!(
        rita.reject_review(RejectReviewRequest {
            request_id: request_id(),
            task_id: task_id.clone(),
            comment: "not convinced".into(),
            lease: String::new(),
        }),
        remy.approve_review(approve(&task_id, &lease)),
    );
    let outcomes = [first.is_ok(), second.is_ok()];
    assert_eq!(
        outcomes.iter().filter(|ok| **ok).count(),
        1,
        "{first:?} {second:?}"
    );
    let loser = first.err().or(second.err()).expect("one refusal");
    assert_eq!(reason(&loser), "REVIEW_ALREADY_DECIDED");
    let decided = wait_until(
        &certs,
        &cert.id,
        Duration::from_secs(10),
        "end its revocation",
        |c| c.status != CertificateStatus::RevocationPending as i32,
    )
    .await;
    let types = history_types(&certs, &cert.id).await;
    let decisions = types
        .iter()
        .filter(|t| *t == "ReviewApproved" || *t == "ReviewRejected")
        .count();
    assert_eq!(decisions, 1, "{types:?}");
    assert!(
        decided.status == CertificateStatus::Revoked as i32
            || decided.status == CertificateStatus::Issued as i32
    );
}

#[tokio::test]
async fn rev10_revr4_each_review_row_and_no_task_before_the_document() {
    // With each service as its own NATS user, as `make run` runs them.
    let certflow = Certflow::start_secured_with(|_| {}).await.expect("start");
    let mut certs = certflow.certificates().await.expect("client");
    let mut revocations = certflow.revocations().await.expect("client");
    let customer = certflow.token("alice", "acme", &["customer"]);
    let mut documents = certflow.reviews_as(&customer).await.expect("client");
    let rita = reviewer(&certflow, "rita", "certflow-review").await;

    let auto_ov = IssueCertificateRequest {
        validation_setup: vec![DomainValidationSetup {
            domain: "auto.example.com".into(),
            setup: ValidationSetup::DnsAuto as i32,
        }],
        ..certificate_of(Brand::Geotrust, Level::Ov, "auto.example.com")
    };
    // Rows without a document: a task at once.
    for request in [
        certificate_of(Brand::Wotrus, Level::Ev, "w.example.com"),
        certificate_of(Brand::Dnspod, Level::Dv, "d.example.com"),
        auto_ov,
    ] {
        let cert = issue(&mut certs, request).await;
        revocations
            .request_revocation(revoke(&cert.id))
            .await
            .expect("accepted");
        let (task, lease) = next_review_task(&rita).await;
        assert_eq!(task.certificate.map(|c| c.id), Some(cert.id.clone()));
        assert!(task.documents.is_empty());
        rita.clone()
            .approve_review(approve(&task.task_id, &lease))
            .await
            .expect("approved");
        wait_for_status(&mut certs, &cert.id, CertificateStatus::Revoked).await;
    }
    // Rows with a document: no task until it is in (REV-R4).
    for (request, document) in [
        (
            certificate_of(Brand::Dnspod, Level::Ov, "dov.example.com"),
            PDF,
        ),
        (
            certificate_of(Brand::Geotrust, Level::Ev, "gev.example.com"),
            PNG,
        ),
    ] {
        let cert = issue(&mut certs, request).await;
        let pending = revocations
            .request_revocation(revoke(&cert.id))
            .await
            .expect("accepted")
            .into_inner()
            .certificate
            .expect("certificate");
        assert_eq!(
            pending.revocation.map(|r| r.path),
            Some(RevocationPath::ManualReviewAfterDocument as i32)
        );
        let none = rita
            .clone()
            .next_review_task(NextReviewTaskRequest {})
            .await
            .expect("asked")
            .into_inner();
        assert!(none.task.is_none(), "no task before the document");
        documents
            .upload_revocation_document(UploadRevocationDocumentRequest {
                request_id: request_id(),
                certificate_id: cert.id.clone(),
                file_name: "stamped".into(),
                content: document.to_vec(),
            })
            .await
            .expect("document accepted");
        let (task, lease) = next_review_task(&rita).await;
        assert_eq!(task.documents.len(), 1);
        assert_eq!(task.documents[0].size, document.len() as u64);
        // The reviewer reads the document through the gateway.
        let fetched = rita
            .clone()
            .get_revocation_document(GetRevocationDocumentRequest {
                certificate_id: cert.id.clone(),
            })
            .await
            .expect("document")
            .into_inner();
        assert_eq!(fetched.content, document);
        rita.clone()
            .approve_review(approve(&task.task_id, &lease))
            .await
            .expect("approved");
        wait_for_status(&mut certs, &cert.id, CertificateStatus::Revoked).await;
    }
}

#[tokio::test]
async fn rev12_bad_documents_are_refused_and_change_nothing() {
    let (certflow, mut certs, mut revocations) = started().await;
    let customer = certflow.token("alice", "acme", &["customer"]);
    let mut documents = certflow.reviews_as(&customer).await.expect("client");
    let cert = issue(
        &mut certs,
        certificate_of(Brand::Dnspod, Level::Ov, "doc.example.com"),
    )
    .await;
    revocations
        .request_revocation(revoke(&cert.id))
        .await
        .expect("accepted");
    let upload = |content: Vec<u8>, name: &str| UploadRevocationDocumentRequest {
        request_id: request_id(),
        certificate_id: cert.id.clone(),
        file_name: name.into(),
        content,
    };

    let mut oversize = PDF.to_vec();
    oversize.resize(1_468_007, b' ');
    let err = documents
        .upload_revocation_document(upload(oversize, "big.pdf"))
        .await
        .expect_err("one byte too many");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(reason(&err), "DOCUMENT_TOO_LARGE");

    // A PNG named .pdf is a PNG, which DNSPod's application may not be.
    let err = documents
        .upload_revocation_document(upload(PNG.to_vec(), "application.pdf"))
        .await
        .expect_err("judged by content");
    assert_eq!(reason(&err), "DOCUMENT_FORMAT_NOT_ALLOWED");

    // A PDF that is a ZIP archive too (it ends with one's directory) is no document.
    let mut polyglot = PDF.to_vec();
    polyglot.extend_from_slice(b"PK\x05\x06");
    polyglot.extend_from_slice(&[0; 18]);
    let err = documents
        .upload_revocation_document(upload(polyglot, "application.pdf"))
        .await
        .expect_err("two formats at once");
    assert_eq!(reason(&err), "DOCUMENT_FORMAT_NOT_ALLOWED");

    // Another account's certificate is not found.
    let stranger = certflow.token("eve", "globex", &["customer"]);
    let err = certflow
        .reviews_as(&stranger)
        .await
        .expect("client")
        .upload_revocation_document(upload(PDF.to_vec(), "x.pdf"))
        .await
        .expect_err("not yours");
    assert_eq!(err.code(), Code::NotFound);

    let mut exact = PDF.to_vec();
    exact.resize(1_468_006, b' ');
    let accepted = documents
        .upload_revocation_document(upload(exact, "application.pdf"))
        .await
        .expect("exactly 1.4 MiB is accepted")
        .into_inner()
        .certificate
        .and_then(|c| c.revocation)
        .and_then(|r| r.document)
        .expect("document recorded");
    assert_eq!(accepted.size, 1_468_006);
    let err = documents
        .upload_revocation_document(upload(PDF.to_vec(), "again.pdf"))
        .await
        .expect_err("once per request");
    assert_eq!(reason(&err), "DOCUMENT_ALREADY_UPLOADED");
    let types = history_types(&certs, &cert.id).await;
    assert_eq!(
        types
            .iter()
            .filter(|t| *t == "RevocationDocumentUploaded")
            .count(),
        1
    );
}

#[tokio::test]
async fn revr3_two_of_three_approvals_a_repeated_vote_and_a_self_review_refused() {
    let certflow = Certflow::start_with(|config| {
        config
            .policy
            .review_approvals
            .insert((DomainBrand::Wotrus, DomainLevel::Ev), 2);
    })
    .await
    .expect("start");
    let mut certs = certflow.certificates().await.expect("client");
    let mut revocations = certflow.revocations().await.expect("client");
    let cert = issue(
        &mut certs,
        certificate_of(Brand::Wotrus, Level::Ev, "two.example.com"),
    )
    .await;
    revocations
        .request_revocation(revoke(&cert.id))
        .await
        .expect("accepted");

    let rita = reviewer(&certflow, "rita", "certflow-review").await;
    let (task, lease) = next_review_task(&rita).await;
    assert_eq!(task.approvals_needed, 2);
    rita.clone()
        .approve_review(approve(&task.task_id, &lease))
        .await
        .expect("first approval");
    let err = rita
        .clone()
        .approve_review(approve(&task.task_id, ""))
        .await
        .expect_err("no reviewer counts twice");
    assert_eq!(reason(&err), "ALREADY_VOTED");

    // A reviewer of the requesting account may not decide, and is not offered the task.
    let mut colleague = reviewer(&certflow, "acme-reviewer", "acme").await;
    let err = colleague
        .approve_review(approve(&task.task_id, ""))
        .await
        .expect_err("self review");
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(reason(&err), "SELF_REVIEW_FORBIDDEN");

    // The task comes back with the first approval on it, for a second reviewer.
    let remy = reviewer(&certflow, "remy", "certflow-review").await;
    let (again, lease) = next_review_task(&remy).await;
    assert_eq!(again.task_id, task.task_id);
    assert_eq!(again.approvals.len(), 1);
    let still = wait_for_status(&mut certs, &cert.id, CertificateStatus::RevocationPending).await;
    assert!(still.revocation.and_then(|r| r.revoked_at).is_none());
    remy.clone()
        .approve_review(approve(&task.task_id, &lease))
        .await
        .expect("second approval");
    wait_for_status(&mut certs, &cert.id, CertificateStatus::Revoked).await;
}

#[tokio::test]
async fn rev13_a_rejection_makes_the_certificate_issued_and_downloadable_again() {
    let (certflow, mut certs, mut revocations) = started().await;
    let cert = issue(
        &mut certs,
        certificate_of(Brand::Wotrus, Level::Ov, "keep.example.com"),
    )
    .await;
    revocations
        .request_revocation(revoke(&cert.id))
        .await
        .expect("accepted");
    let rita = reviewer(&certflow, "rita", "certflow-review").await;
    let (task, lease) = next_review_task(&rita).await;
    let err = rita
        .clone()
        .reject_review(RejectReviewRequest {
            request_id: request_id(),
            task_id: task.task_id.clone(),
            comment: String::new(),
            lease: lease.clone(),
        })
        .await
        .expect_err("a comment is required");
    assert_eq!(reason(&err), "COMMENT_REQUIRED");
    rita.clone()
        .reject_review(RejectReviewRequest {
            request_id: request_id(),
            task_id: task.task_id.clone(),
            comment: "the domain is still in use".into(),
            lease,
        })
        .await
        .expect("rejected");
    let issued = wait_until(
        &certs,
        &cert.id,
        Duration::from_secs(10),
        "be issued again",
        |c| c.failed_revocation.is_some(),
    )
    .await;
    assert_eq!(issued.status, CertificateStatus::Issued as i32);
    assert_eq!(
        issued.failed_revocation.map(|f| f.failure),
        Some(RevocationFailure::ReviewRejected as i32)
    );
    certs
        .download_certificate(certflow_proto::v1::DownloadCertificateRequest {
            id: cert.id.clone(),
            format: certflow_proto::v1::DownloadFormat::Pem as i32,
            password: String::new(),
        })
        .await
        .expect("downloadable again");
    // Customers do not decide reviews.
    let customer = certflow.token("alice", "globex", &["customer"]);
    let err = certflow
        .reviews_as(&customer)
        .await
        .expect("client")
        .approve_review(approve(&task.task_id, ""))
        .await
        .expect_err("reviewers only");
    assert_eq!(err.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn revr1_reviewers_follow_the_queue_through_the_gateway_without_taking_tasks() {
    let certflow = Certflow::start_secured_with(|_| {}).await.expect("start");
    let mut certs = certflow.certificates().await.expect("client");
    let mut revocations = certflow.revocations().await.expect("client");
    let waiting = issue(
        &mut certs,
        certificate_of(Brand::Wotrus, Level::Dv, "w1.example.com"),
    )
    .await;
    revocations
        .request_revocation(revoke(&waiting.id))
        .await
        .expect("accepted");
    let rita = reviewer(&certflow, "rita", "certflow-review").await;
    // The first task is on the queue before the watch starts.
    eventually(Duration::from_secs(10), || {
        let mut certs = certs.clone();
        let id = waiting.id.clone();
        async move {
            let cert = certs
                .get_certificate(certflow_proto::v1::GetCertificateRequest { id })
                .await
                .ok()?
                .into_inner()
                .certificate?;
            cert.revocation?.review.map(|_| ())
        }
    })
    .await
    .expect("queued");

    let mut watch = rita
        .clone()
        .watch_review_queue(certflow_proto::v1::WatchReviewQueueRequest {})
        .await
        .expect("watching")
        .into_inner();
    let next_id = |task: Option<certflow_proto::v1::WatchReviewQueueResponse>| {
        task.and_then(|t| t.task)
            .and_then(|t| t.certificate)
            .map(|c| c.id)
    };
    let first = tokio::time::timeout(Duration::from_secs(10), watch.message())
        .await
        .expect("in time")
        .expect("stream");
    assert_eq!(next_id(first), Some(waiting.id.clone()));

    let offered = issue(
        &mut certs,
        certificate_of(Brand::Wotrus, Level::Dv, "w2.example.com"),
    )
    .await;
    revocations
        .request_revocation(revoke(&offered.id))
        .await
        .expect("accepted");
    let second = tokio::time::timeout(Duration::from_secs(10), watch.message())
        .await
        .expect("in time")
        .expect("stream");
    assert_eq!(next_id(second), Some(offered.id.clone()));

    // Watching took nothing: both tasks are still there to lease.
    let mut leased = Vec::new();
    for _ in 0..2 {
        let (task, _) = next_review_task(&rita).await;
        leased.push(task.certificate.map(|c| c.id).unwrap_or_default());
    }
    leased.sort();
    let mut expected = vec![waiting.id, offered.id];
    expected.sort();
    assert_eq!(leased, expected);
}

#[tokio::test]
async fn rev10_the_document_template_is_a_pdf_naming_the_certificate_and_can_come_back_stamped() {
    let certflow = Certflow::start().await.expect("start");
    let mut certs = certflow.certificates().await.expect("client");
    let alice = certflow.token("alice", "acme", &["customer"]);
    let mut revocations = certflow.revocations_as(Some(&alice)).await.expect("client");
    let mut documents = certflow.reviews_as(&alice).await.expect("client");
    let cert = issue(
        &mut certs,
        certificate_of(Brand::Geotrust, Level::Ov, "t.example.com"),
    )
    .await;
    let template = documents
        .get_document_template(certflow_proto::v1::GetDocumentTemplateRequest {
            certificate_id: cert.id.clone(),
        })
        .await
        .expect("template")
        .into_inner();
    assert_eq!(
        template.kind,
        certflow_proto::v1::DocumentKind::ConfirmationLetter as i32
    );
    assert!(template.file_name.ends_with(".pdf"));
    assert!(template.pdf.starts_with(b"%PDF-"), "a PDF header");
    let text = String::from_utf8_lossy(&template.pdf);
    assert!(text.trim_end().ends_with("%%EOF"));
    assert!(text.contains(&cert.id), "names the certificate");
    assert!(text.contains("acme"), "names the account");
    assert!(text.contains("t.example.com"), "names the domains");

    // Another account gets nothing.
    let stranger = certflow.token("eve", "globex", &["customer"]);
    let err = certflow
        .reviews_as(&stranger)
        .await
        .expect("client")
        .get_document_template(certflow_proto::v1::GetDocumentTemplateRequest {
            certificate_id: cert.id.clone(),
        })
        .await
        .expect_err("not yours");
    assert_eq!(err.code(), Code::NotFound);

    // Filled in and stamped, it is a document the letter may be.
    revocations
        .request_revocation(revoke(&cert.id))
        .await
        .expect("accepted");
    documents
        .upload_revocation_document(UploadRevocationDocumentRequest {
            request_id: request_id(),
            certificate_id: cert.id.clone(),
            file_name: template.file_name,
            content: template.pdf,
        })
        .await
        .expect("a PDF letter is accepted");
}

#[tokio::test]
async fn revr1_a_lease_settles_only_its_own_task_and_tasks_behind_one_the_caller_may_not_decide_are_offered()
 {
    let certflow = Certflow::start_with(|config| config.review.ack_wait = Duration::from_secs(2))
        .await
        .expect("start");
    let mut certs = certflow.certificates().await.expect("client");
    let acme = certflow.token("alice", "acme", &["customer"]);
    let globex = certflow.token("bob", "globex", &["customer"]);
    let mut acme_revocations = certflow.revocations_as(Some(&acme)).await.expect("client");
    let mut globex_revocations = certflow
        .revocations_as(Some(&globex))
        .await
        .expect("client");
    let own = issue(
        &mut certs,
        certificate_of(Brand::Wotrus, Level::Dv, "own.example.com"),
    )
    .await;
    acme_revocations
        .request_revocation(revoke(&own.id))
        .await
        .expect("accepted");
    let other = issue(
        &mut certs,
        IssueCertificateRequest {
            account: "globex".into(),
            ..certificate_of(Brand::Wotrus, Level::Dv, "other.example.com")
        },
    )
    .await;
    globex_revocations
        .request_revocation(revoke(&other.id))
        .await
        .expect("accepted");
    let third = issue(
        &mut certs,
        IssueCertificateRequest {
            account: "globex".into(),
            ..certificate_of(Brand::Wotrus, Level::Dv, "third.example.com")
        },
    )
    .await;
    globex_revocations
        .request_revocation(revoke(&third.id))
        .await
        .expect("accepted");

    // A reviewer of acme is never offered acme's own request, and it does not hide the
    // others behind it.
    let acme_reviewer = reviewer(&certflow, "acme-reviewer", "acme").await;
    let (first, first_lease) = next_review_task(&acme_reviewer).await;
    let first_id = first.certificate.map(|c| c.id).unwrap_or_default();
    assert_ne!(first_id, own.id, "no self-review is offered");

    // Deciding another task with that lease does not settle the leased one.
    let (second, _) = next_review_task(&acme_reviewer).await;
    let second_id = second.certificate.map(|c| c.id).unwrap_or_default();
    assert_ne!(second_id, own.id);
    acme_reviewer
        .clone()
        .approve_review(approve(&second.task_id, &first_lease))
        .await
        .expect("second decided");
    wait_for_status(&mut certs, &second_id, CertificateStatus::Revoked).await;
    // Once the lease lapses, the first task is offered again: it was not acknowledged.
    let rita = reviewer(&certflow, "rita", "certflow-review").await;
    let again = eventually(Duration::from_secs(15), || {
        let mut rita = rita.clone();
        let wanted = first.task_id.clone();
        async move {
            let next = rita
                .next_review_task(NextReviewTaskRequest {})
                .await
                .ok()?
                .into_inner();
            let task = next.task?;
            let lease = next.lease;
            if task.task_id == wanted {
                Some((task, lease))
            } else {
                // Someone else's task: decide it so the wanted one comes up.
                rita.approve_review(approve(&task.task_id, &lease))
                    .await
                    .ok()?;
                None
            }
        }
    })
    .await
    .expect("the first task comes back");
    assert_eq!(again.0.certificate.map(|c| c.id), Some(first_id));
}

#[tokio::test]
async fn revr5_no_reviewer_can_take_every_task_hold_one_for_ever_or_drop_one() {
    let certflow = Certflow::start_secured_with(|config| {
        config.review.ack_wait = Duration::from_secs(2);
        config.review.max_held = 2;
    })
    .await
    .expect("start");
    let mut certs = certflow.certificates().await.expect("client");
    let mut revocations = certflow.revocations().await.expect("client");
    let mut ids = Vec::new();
    for n in 0..3 {
        let cert = issue(
            &mut certs,
            certificate_of(Brand::Wotrus, Level::Dv, &format!("held{n}.example.com")),
        )
        .await;
        revocations
            .request_revocation(revoke(&cert.id))
            .await
            .expect("accepted");
        ids.push(cert.id);
    }
    let operator = certflow
        .nats()
        .connect_as(Some("operator"))
        .await
        .expect("operator");
    let queue_depth = || {
        let js = jetstream::new(operator.clone());
        async move {
            let mut queue = js.get_stream("REVIEW_QUEUE").await.ok()?;
            Some(queue.info().await.ok()?.state.messages)
        }
    };
    let offered = eventually(Duration::from_secs(15), || async {
        queue_depth().await.filter(|depth| *depth == 3)
    })
    .await;
    assert_eq!(offered, Some(3), "three tasks offered");

    // A reviewer's own NATS client may not pull tasks (one pull of 100 took them all),
    // extend a lease (progress acks) or acknowledge one without a decision.
    let (raw, mut refused) = certflow
        .nats()
        .connect_reporting_errors("reviewer")
        .await
        .expect("nats");
    let pull = jetstream::new(raw.clone())
        .get_stream("REVIEW_QUEUE")
        .await
        .expect("the queue may be read")
        .get_consumer::<jetstream::consumer::pull::Config>("reviewers")
        .await;
    assert!(pull.is_err(), "the consumer is not the reviewer's to use");
    for (subject, body) in [
        (
            "$JS.API.CONSUMER.MSG.NEXT.REVIEW_QUEUE.reviewers",
            r#"{"batch":100,"expires":500000000}"#,
        ),
        ("$JS.ACK.REVIEW_QUEUE.reviewers.1.1.1.1.0", "+WPI"),
        ("$JS.ACK.REVIEW_QUEUE.reviewers.1.1.1.1.0", "+ACK"),
    ] {
        raw.publish(subject, body.into()).await.expect("sent");
        raw.flush().await.expect("flush");
        let error = tokio::time::timeout(Duration::from_secs(5), refused.recv())
            .await
            .expect("a refusal")
            .expect("open");
        assert!(
            error.contains("Permissions Violation"),
            "{subject}: {error}"
        );
    }
    assert_eq!(queue_depth().await, Some(3), "no task was taken or dropped");

    // Through the gateway, one reviewer holds at most two tasks at once.
    let mut rita = reviewer(&certflow, "rita", "certflow-review").await;
    let (first, first_lease) = next_review_task(&rita).await;
    let (second, _second_lease) = next_review_task(&rita).await;
    assert_ne!(first.task_id, second.task_id);
    let err = rita
        .next_review_task(NextReviewTaskRequest {})
        .await
        .expect_err("a third is refused");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(reason(&err), "REVIEW_TASKS_HELD");
    assert!(
        err.message().contains("decide one first"),
        "{}",
        err.message()
    );
    // Deciding one frees its place.
    rita.approve_review(approve(&first.task_id, &first_lease))
        .await
        .expect("decided");
    let (third, _) = next_review_task(&rita).await;
    assert!(![&first.task_id, &second.task_id].contains(&&third.task_id));

    // A task held past the ack wait goes back to the queue: another reviewer gets the
    // second and third, and rita's places free themselves.
    let remy = reviewer(&certflow, "remy", "certflow-review").await;
    let mut taken = Vec::new();
    for _ in 0..2 {
        let (task, lease) = next_review_task(&remy).await;
        remy.clone()
            .approve_review(approve(&task.task_id, &lease))
            .await
            .expect("decided by remy");
        taken.push(task.task_id);
    }
    taken.sort();
    let mut expected = vec![second.task_id.clone(), third.task_id.clone()];
    expected.sort();
    assert_eq!(taken, expected);
    let held = eventually(Duration::from_secs(10), || {
        let mut rita = rita.clone();
        async move {
            match rita.next_review_task(NextReviewTaskRequest {}).await {
                Ok(next) => Some(next.into_inner().task.is_none()),
                Err(_) => None,
            }
        }
    })
    .await;
    assert_eq!(
        held,
        Some(true),
        "rita holds nothing and the queue is empty"
    );
    for id in &ids {
        wait_for_status(&mut certs, id, CertificateStatus::Revoked).await;
    }
}

#[tokio::test]
async fn revr2_gen3_a_reviewer_of_acme_in_other_letters_is_still_of_acme() {
    let certflow = Certflow::start().await.expect("start");
    let mut certs = certflow.certificates().await.expect("client");
    let customer = certflow.token("alice", "acme", &["customer"]);
    let mut revocations = certflow
        .revocations_as(Some(&customer))
        .await
        .expect("client");
    let cert = issue(
        &mut certs,
        certificate_of(Brand::Wotrus, Level::Dv, "case.example.com"),
    )
    .await;
    revocations
        .request_revocation(revoke(&cert.id))
        .await
        .expect("accepted");
    // Rita reviews for account "Acme": the same account as acme, so not hers to decide.
    let rita = reviewer(&certflow, "rita", "Acme").await;
    let watched = certflow
        .reviews_as(&certflow.token("remy", "certflow-review", &["reviewer"]))
        .await
        .expect("client");
    let (task, _) = next_review_task(&watched).await;
    let err = rita
        .clone()
        .approve_review(approve(&task.task_id, ""))
        .await
        .expect_err("her own account's request");
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(reason(&err), "SELF_REVIEW_FORBIDDEN");
    // Nor is it offered to her.
    let offered = rita
        .clone()
        .next_review_task(NextReviewTaskRequest {})
        .await
        .expect("asked")
        .into_inner();
    assert!(offered.task.is_none(), "{offered:?}");
}
