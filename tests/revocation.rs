//! Revocation through the gRPC gateway, on a real nats-server, as a client would do it.

use certflow_proto::v1::{
    Brand, CertificateStatus, GetCertificateHistoryRequest, IssueCertificateRequest,
    RequestRevocationRequest, RevocationReason,
};
use certflow_testkit::Certflow;
use tonic::Code;

use crate::support::{self, dns_auto_dv, issue, reason, request_id, started, wait_for_status};

fn revoke(id: &str, reason: RevocationReason) -> RequestRevocationRequest {
    RequestRevocationRequest {
        request_id: request_id(),
        certificate_id: id.into(),
        reason: reason as i32,
        description: String::new(),
        validation_method: 0,
    }
}

#[tokio::test]
async fn rev10_issue_revoke_get_shows_revoked() {
    let (_certflow, mut certs, mut revocations) = started().await;

    let cert = issue(&mut certs, dns_auto_dv("acme", "www.example.com")).await;
    assert_eq!(cert.status, CertificateStatus::Issued as i32);

    let revoked = revocations
        .request_revocation(revoke(&cert.id, RevocationReason::KeyCompromise))
        .await
        .expect("revocation accepted")
        .into_inner()
        .certificate
        .expect("certificate");
    assert_eq!(revoked.status, CertificateStatus::Revoked as i32);
    let revocation = revoked.revocation.expect("revocation details");
    assert_eq!(revocation.reason, RevocationReason::KeyCompromise as i32);
    assert!(revocation.revoked_at.is_some());

    let seen = wait_for_status(&mut certs, &cert.id, CertificateStatus::Revoked).await;
    assert_eq!(
        seen.revocation.and_then(|r| r.revoked_at),
        revocation.revoked_at
    );
}

#[tokio::test]
async fn gen1_retry_with_same_request_id_returns_first_outcome_and_appends_nothing() {
    let (certflow, mut certs, mut revocations) = started().await;

    // A retried issue creates no second certificate.
    let issue_request = dns_auto_dv("acme", "retry.example.com");
    let first = issue(&mut certs, issue_request.clone()).await;
    let again = issue(&mut certs, issue_request.clone()).await;
    assert_eq!(first, again);

    let request = revoke(&first.id, RevocationReason::Superseded);
    let first_reply = revocations
        .request_revocation(request.clone())
        .await
        .expect("accepted")
        .into_inner();
    let second_reply = revocations
        .request_revocation(request.clone())
        .await
        .expect("a retry is answered, not refused")
        .into_inner();
    assert_eq!(first_reply, second_reply);

    // A new request id is a new command, refused on the revoked state.
    let err = revocations
        .request_revocation(revoke(&first.id, RevocationReason::Superseded))
        .await
        .expect_err("refused");
    assert_eq!(reason(&err), "ALREADY_REVOKED");

    // The issue's first reply was only the certificate, so its record says where the log
    // holds it, not the reply; retried after the certificate moved on, the issue is still
    // answered with the certificate as it left it.
    // An issue's command id is its certificate's id.
    let command = first.id.clone();
    let outcomes =
        async_nats::jetstream::new(certflow.nats().connect_as(None).await.expect("nats"))
            .get_stream("CERTFLOW_OUTCOMES")
            .await
            .expect("outcomes");
    let record = certflow_testkit::eventually(std::time::Duration::from_secs(10), || {
        let outcomes = outcomes.clone();
        let subject = format!("certflow.outcomes.{command}");
        async move { outcomes.direct_get_last_for_subject(subject).await.ok() }
    })
    .await
    .expect("the issue's outcome is recorded");
    assert!(record.payload.is_empty(), "{} bytes", record.payload.len());
    assert!(record.headers.get("Certflow-Sequence").is_some());
    let after_revocation = issue(&mut certs, issue_request).await;
    assert_eq!(after_revocation, first);
    assert_eq!(after_revocation.status, CertificateStatus::Issued as i32);

    let history = wait_for_history(&certflow, &first.id, 3).await;
    let types: Vec<&str> = history.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "CertificateIssued",
            "RevocationRequested",
            "CertificateRevoked"
        ]
    );
}

#[tokio::test]
async fn gen1_a_retried_refusal_gets_the_same_refusal() {
    let certflow = Certflow::start().await.expect("start");
    let mut revocations = certflow.revocations().await.expect("client");
    let request = revoke("no-such-certificate", RevocationReason::Unspecified);
    let first = revocations
        .request_revocation(request.clone())
        .await
        .expect_err("refused");
    let again = revocations
        .request_revocation(request)
        .await
        .expect_err("refused again");
    assert_eq!(first.code(), Code::NotFound);
    assert_eq!(again.code(), first.code());
    assert_eq!(again.message(), first.message());
}

#[tokio::test]
async fn gen2_a_hundred_concurrent_revocations_exactly_one_wins() {
    // 100 commands at once from one account: above the default rate limit.
    let certflow = Certflow::start_with(|config| config.gateway.commands_per_second = 1_000)
        .await
        .expect("start");
    let mut certs = certflow.certificates().await.expect("client");
    let revocations = certflow.revocations().await.expect("client");
    let cert = issue(&mut certs, dns_auto_dv("acme", "race.example.com")).await;

    let attempts: Vec<_> = (0..100)
        .map(|_| {
            let mut client = revocations.clone();
            let request = revoke(&cert.id, RevocationReason::CessationOfOperation);
            tokio::spawn(async move { client.request_revocation(request).await })
        })
        .collect();
    let mut winners = 0;
    for attempt in attempts {
        match attempt.await.expect("task") {
            Ok(_) => winners += 1,
            Err(status) => {
                assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
                let why = reason(&status);
                assert!(
                    why == "ALREADY_REVOKED" || why == "REVOCATION_IN_PROGRESS",
                    "unexpected refusal {why}"
                );
            }
        }
    }
    assert_eq!(winners, 1);
    let history = wait_for_history(&certflow, &cert.id, 3).await;
    let revoked = history
        .iter()
        .filter(|e| e.event_type == "CertificateRevoked")
        .count();
    assert_eq!(revoked, 1, "{history:?}");
}

#[tokio::test]
async fn rev1_uploaded_certificate_is_not_revocable() {
    let (_certflow, mut certs, mut revocations) = started().await;
    let uploaded =
        support::upload(&mut certs, support::self_signed_pem("upload.example.net")).await;
    let err = revocations
        .request_revocation(revoke(&uploaded.id, RevocationReason::Unspecified))
        .await
        .expect_err("refused");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(reason(&err), "UPLOADED_CERT_NOT_REVOCABLE");
}

#[tokio::test]
async fn rev2_expired_certificate_is_not_revocable() {
    let (_certflow, mut certs, mut revocations) = started().await;
    // Only a certificate from before certflow can have ended: one signed now never has.
    let cert = support::legacy_record(
        &mut certs,
        &["old.example.com"],
        (1_700_000_000, 1_720_000_000),
        |_| {},
    )
    .await;
    assert_eq!(cert.status, CertificateStatus::Expired as i32);
    let err = revocations
        .request_revocation(revoke(&cert.id, RevocationReason::Unspecified))
        .await
        .expect_err("refused");
    assert_eq!(reason(&err), "CERT_EXPIRED");
}

#[tokio::test]
async fn rev9_reason_codes_outside_rfc5280_allowed_set_are_invalid_argument() {
    let (certflow, mut certs, mut revocations) = started().await;
    let cert = issue(&mut certs, dns_auto_dv("acme", "reasons.example.com")).await;
    for code in [2, 6, 8, 9, 10, 7, 42, -1] {
        let err = revocations
            .request_revocation(RequestRevocationRequest {
                reason: code,
                ..revoke(&cert.id, RevocationReason::Unspecified)
            })
            .await
            .expect_err("refused");
        assert_eq!(err.code(), Code::InvalidArgument, "code {code}");
        assert_eq!(reason(&err), "INVALID_REVOCATION_REASON", "code {code}");
    }
    // Nothing changed: the certificate is still issued and can be revoked.
    let history = wait_for_history(&certflow, &cert.id, 1).await;
    assert_eq!(history.len(), 1);
    revocations
        .request_revocation(revoke(&cert.id, RevocationReason::Unspecified))
        .await
        .expect("a valid reason is accepted");
}

#[tokio::test]
async fn rev17_revoking_again_keeps_the_original_time() {
    let (_certflow, mut certs, mut revocations) = started().await;
    let cert = issue(&mut certs, dns_auto_dv("acme", "twice.example.com")).await;
    let first = revocations
        .request_revocation(revoke(&cert.id, RevocationReason::KeyCompromise))
        .await
        .expect("accepted")
        .into_inner()
        .certificate
        .and_then(|c| c.revocation)
        .and_then(|r| r.revoked_at);
    let err = revocations
        .request_revocation(revoke(&cert.id, RevocationReason::Superseded))
        .await
        .expect_err("refused");
    assert_eq!(reason(&err), "ALREADY_REVOKED");
    let seen = wait_for_status(&mut certs, &cert.id, CertificateStatus::Revoked).await;
    let revocation = seen.revocation.expect("revocation");
    assert_eq!(revocation.revoked_at, first);
    assert_eq!(revocation.reason, RevocationReason::KeyCompromise as i32);
}

#[tokio::test]
async fn rev10_review_paths_wait_pending_and_say_a_reviewer_decides() {
    let (_certflow, mut certs, mut revocations) = started().await;
    let wotrus = IssueCertificateRequest {
        brand: Brand::Wotrus as i32,
        ..dns_auto_dv("acme", "review.example.com")
    };
    let cert = issue(&mut certs, wotrus).await;
    let pending = revocations
        .request_revocation(RequestRevocationRequest {
            description: "the server was decommissioned".into(),
            ..revoke(&cert.id, RevocationReason::CessationOfOperation)
        })
        .await
        .expect("accepted")
        .into_inner()
        .certificate
        .expect("certificate");
    assert_eq!(pending.status, CertificateStatus::RevocationPending as i32);
    let revocation = pending.revocation.expect("revocation");
    assert_eq!(
        revocation.path,
        certflow_proto::v1::RevocationPath::ManualReview as i32
    );
    assert!(revocation.revoked_at.is_none());
    assert!(
        revocation.validation.is_none(),
        "no domain validation on this path"
    );
    wait_for_status(&mut certs, &cert.id, CertificateStatus::RevocationPending).await;
}

#[tokio::test]
async fn gen5_bad_revocation_input_is_invalid_argument_or_not_found() {
    let certflow = Certflow::start().await.expect("start");
    let mut revocations = certflow.revocations().await.expect("client");
    let cases = [
        (
            RequestRevocationRequest {
                request_id: String::new(),
                ..revoke("abc", RevocationReason::Unspecified)
            },
            Code::InvalidArgument,
        ),
        (
            revoke("not a valid id!", RevocationReason::Unspecified),
            Code::InvalidArgument,
        ),
        (
            revoke(&"x".repeat(65), RevocationReason::Unspecified),
            Code::InvalidArgument,
        ),
        (
            revoke("unknown-certificate", RevocationReason::Unspecified),
            Code::NotFound,
        ),
    ];
    for (request, code) in cases {
        let err = revocations
            .request_revocation(request.clone())
            .await
            .expect_err("refused");
        assert_eq!(err.code(), code, "{request:?}");
        reason(&err);
    }
}

async fn wait_for_history(
    certflow: &Certflow,
    id: &str,
    events: usize,
) -> Vec<certflow_proto::v1::HistoryEvent> {
    let client = certflow.certificates().await.expect("client");
    certflow_testkit::eventually(support::CATCH_UP, || {
        let mut client = client.clone();
        let id = id.to_string();
        async move {
            let history = client
                .get_certificate_history(GetCertificateHistoryRequest { id })
                .await
                .ok()?
                .into_inner()
                .events;
            (history.len() >= events).then_some(history)
        }
    })
    .await
    .unwrap_or_else(|| panic!("history of {id} did not reach {events} events"))
}

#[tokio::test]
async fn ren1_rev3_a_renewal_order_protects_an_expiring_certificate() {
    use certflow_proto::v1::OrderRenewalRequest;
    let (_certflow, mut certs, mut revocations) = started().await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let expiring = issue(
        &mut certs,
        IssueCertificateRequest {
            not_after: Some(prost_types::Timestamp {
                seconds: now + 20 * 86_400,
                nanos: 0,
            }),
            ..dns_auto_dv("acme", "expiring.example.com")
        },
    )
    .await;
    let fresh = issue(&mut certs, dns_auto_dv("acme", "fresh.example.com")).await;

    let err = certs
        .order_renewal(OrderRenewalRequest {
            request_id: request_id(),
            id: fresh.id.clone(),
        })
        .await
        .expect_err("not due");
    assert_eq!(reason(&err), "RENEWAL_NOT_DUE");

    let renewed = certs
        .order_renewal(OrderRenewalRequest {
            request_id: request_id(),
            id: expiring.id.clone(),
        })
        .await
        .expect("due")
        .into_inner()
        .certificate
        .expect("certificate");
    assert!(renewed.renewal_ordered);
    let err = revocations
        .request_revocation(revoke(&expiring.id, RevocationReason::Superseded))
        .await
        .expect_err("REV-3");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(reason(&err), "EXPIRING_RENEWAL_NOT_REVOCABLE");
}

#[tokio::test]
async fn gen1_a_request_id_is_bound_to_the_request_it_was_first_used_for() {
    let (certflow, mut certs, mut revocations) = started().await;
    let c1 = issue(&mut certs, dns_auto_dv("acme", "one.example.com")).await;
    let c2 = issue(&mut certs, dns_auto_dv("acme", "two.example.com")).await;
    let nats = certflow.nats().connect_as(None).await.expect("nats");
    let events = || {
        let js = async_nats::jetstream::new(nats.clone());
        async move {
            let mut stream = js.get_stream("CERTFLOW_EVENTS").await.expect("events");
            stream.info().await.expect("info").state.messages
        }
    };

    let z = request_id();
    let first = RequestRevocationRequest {
        request_id: z.clone(),
        ..revoke(&c1.id, RevocationReason::Superseded)
    };
    revocations
        .request_revocation(first.clone())
        .await
        .expect("revoked");
    let before = events().await;

    // The same request again: its first outcome.
    let again = revocations
        .request_revocation(first.clone())
        .await
        .expect("a retry")
        .into_inner();
    assert_eq!(again.certificate.map(|c| c.id), Some(c1.id.clone()));

    // The same id for another certificate, another reason, another RPC: refused.
    let other_certificate = RequestRevocationRequest {
        certificate_id: c2.id.clone(),
        ..first.clone()
    };
    let other_reason = RequestRevocationRequest {
        reason: RevocationReason::KeyCompromise as i32,
        ..first.clone()
    };
    let mut refusals = vec![
        revocations
            .request_revocation(other_certificate)
            .await
            .expect_err("another certificate"),
        revocations
            .request_revocation(other_reason)
            .await
            .expect_err("another reason"),
    ];
    refusals.push(
        certs
            .delete_certificate(certflow_proto::v1::DeleteCertificateRequest {
                request_id: z.clone(),
                id: c2.id.clone(),
            })
            .await
            .expect_err("another RPC"),
    );
    let issued_with_z = IssueCertificateRequest {
        request_id: z.clone(),
        ..dns_auto_dv("acme", "three.example.com")
    };
    // An issue's id is its command id: a new issue with a used id is refused too.
    refusals.push(
        certs
            .issue_certificate(issued_with_z)
            .await
            .expect_err("another RPC"),
    );
    for err in &refusals {
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        assert_eq!(reason(err), "REQUEST_ID_REUSED");
        assert!(
            err.message().contains("new request id"),
            "{}",
            err.message()
        );
    }
    assert_eq!(events().await, before, "nothing was appended");
    let c2_now = certs
        .get_certificate(certflow_proto::v1::GetCertificateRequest { id: c2.id.clone() })
        .await
        .expect("get")
        .into_inner()
        .certificate
        .expect("c2");
    assert_eq!(c2_now.status, CertificateStatus::Issued as i32);
}
