//! GEN-6: admins revoke in bulk, each certificate through the same rules and events as a
//! single revocation, with a result per certificate streamed as it completes.

mod support;

use std::collections::BTreeSet;
use std::time::Instant;

use certflow_proto::v1::{
    BulkRevokeRequest, BulkRevokeResponse, CertificateStatus, RequestRevocationRequest,
    RevocationReason, bulk_revoke_response::Outcome,
    revocation_service_client::RevocationServiceClient,
};
use certflow_testkit::{Authed, Certflow};
use support::{dns_auto_dv, history_types, issue, issue_many, reason, request_id, wait_for_status};
use tonic::Code;

async fn bulk(
    revocations: &mut RevocationServiceClient<Authed>,
    request: BulkRevokeRequest,
) -> Vec<BulkRevokeResponse> {
    let mut stream = revocations
        .bulk_revoke(request)
        .await
        .expect("bulk accepted")
        .into_inner();
    let mut results = Vec::new();
    while let Some(result) = stream.message().await.expect("stream") {
        results.push(result);
    }
    results
}

/// The refusal's status code name and reason.
fn refusal_reason(result: &BulkRevokeResponse) -> Option<(&str, &str)> {
    match &result.outcome {
        Some(Outcome::Refusal(refusal)) => Some((refusal.code.as_str(), refusal.reason.as_str())),
        _ => None,
    }
}

fn revoked(result: &BulkRevokeResponse) -> bool {
    matches!(&result.outcome, Some(Outcome::Certificate(c))
        if c.status == CertificateStatus::Revoked as i32)
}

#[tokio::test]
async fn gen6_a_thousand_certificates_revoked_in_bulk_each_with_its_outcome() {
    const COUNT: usize = 1_000;
    const WORKERS: usize = 16;
    let certflow = Certflow::start_with(|config| {
        config.gateway.commands_per_second = 1_000_000;
        config.gateway.queries_per_second = 1_000_000;
    })
    .await
    .expect("start");
    let certs = certflow.certificates().await.expect("client");
    let mut revocations = certflow.revocations().await.expect("client");
    let ids = issue_many(&certs, "acme", "bulk", COUNT, WORKERS).await;
    // One of them is revoked already; one id names no certificate.
    revocations
        .request_revocation(RequestRevocationRequest {
            request_id: request_id(),
            certificate_id: ids[0].clone(),
            reason: RevocationReason::KeyCompromise as i32,
            ..Default::default()
        })
        .await
        .expect("revoked");
    let mut named = ids.clone();
    named.push("no-such-certificate".into());

    let bulk_request = BulkRevokeRequest {
        request_id: request_id(),
        certificate_ids: named.clone(),
        reason: RevocationReason::CessationOfOperation as i32,
        description: "customer closed".into(),
        ..Default::default()
    };
    let started = Instant::now();
    let results = bulk(&mut revocations, bulk_request.clone()).await;
    println!(
        "bulk revocation of {} certificates took {:.1?}",
        named.len(),
        started.elapsed()
    );
    assert_eq!(results.len(), named.len());
    let completed: BTreeSet<u32> = results.iter().map(|r| r.completed).collect();
    assert_eq!(completed, (1..=named.len() as u32).collect());
    assert!(results.iter().all(|r| r.total == named.len() as u32));
    let seen: BTreeSet<&str> = results.iter().map(|r| r.certificate_id.as_str()).collect();
    assert_eq!(seen, named.iter().map(String::as_str).collect());
    for result in &results {
        match result.certificate_id.as_str() {
            "no-such-certificate" => {
                assert_eq!(refusal_reason(result), Some(("NOT_FOUND", "NOT_FOUND")))
            }
            id if id == ids[0] => assert_eq!(
                refusal_reason(result),
                Some(("FAILED_PRECONDITION", "ALREADY_REVOKED"))
            ),
            _ => assert!(revoked(result), "{result:?}"),
        }
    }

    // Retried with the same request id: the same outcomes, nothing appended twice (GEN-1).
    let retried = bulk(&mut revocations, bulk_request).await;
    assert_eq!(retried.iter().filter(|r| revoked(r)).count(), COUNT - 1);
    let mut certs = certflow.certificates().await.expect("client");
    let revocations_seen = history_types(&certs, &ids[1])
        .await
        .iter()
        .filter(|t| *t == "CertificateRevoked")
        .count();
    assert_eq!(revocations_seen, 1);
    wait_for_status(&mut certs, &ids[COUNT - 1], CertificateStatus::Revoked).await;
}

#[tokio::test]
async fn gen6_every_certificate_of_an_account_and_admins_only() {
    let certflow = Certflow::start().await.expect("start");
    let mut certs = certflow.certificates().await.expect("client");
    let mut revocations = certflow.revocations().await.expect("client");
    let mut globex = Vec::new();
    for n in 0..3 {
        globex.push(
            issue(
                &mut certs,
                dns_auto_dv("globex", &format!("g{n}.example.com")),
            )
            .await,
        );
    }
    let acme = issue(&mut certs, dns_auto_dv("acme", "a.example.com")).await;
    for cert in globex.iter().chain([&acme]) {
        wait_for_status(&mut certs, &cert.id, CertificateStatus::Issued).await;
    }

    // Customers may not.
    let customer = certflow.token("alice", "globex", &["customer"]);
    let mut as_customer = certflow
        .revocations_as(Some(&customer))
        .await
        .expect("client");
    let err = as_customer
        .bulk_revoke(BulkRevokeRequest {
            request_id: request_id(),
            account: "globex".into(),
            ..Default::default()
        })
        .await
        .expect_err("admins only");
    assert_eq!(err.code(), Code::PermissionDenied);

    // Ids and an account together, or neither, are bad input.
    for bad in [
        BulkRevokeRequest {
            request_id: request_id(),
            ..Default::default()
        },
        BulkRevokeRequest {
            request_id: request_id(),
            account: "globex".into(),
            certificate_ids: vec![acme.id.clone()],
            ..Default::default()
        },
    ] {
        let err = revocations.bulk_revoke(bad).await.expect_err("invalid");
        assert_eq!(err.code(), Code::InvalidArgument);
        assert_eq!(reason(&err), "INVALID_ARGUMENT");
    }

    let results = bulk(
        &mut revocations,
        BulkRevokeRequest {
            request_id: request_id(),
            account: "globex".into(),
            reason: RevocationReason::AffiliationChanged as i32,
            ..Default::default()
        },
    )
    .await;
    let revoked_ids: BTreeSet<String> = results
        .iter()
        .filter(|r| revoked(r))
        .map(|r| r.certificate_id.clone())
        .collect();
    assert_eq!(revoked_ids, globex.iter().map(|c| c.id.clone()).collect());
    // Another account's certificate is untouched.
    wait_for_status(&mut certs, &acme.id, CertificateStatus::Issued).await;
}
