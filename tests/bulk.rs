//! GEN-6: admins revoke in bulk, each certificate through the same rules and events as a
//! single revocation, with a result per certificate streamed as it completes.

use std::collections::BTreeSet;
use std::time::Instant;

use certflow_proto::v1::{
    BulkRevokeIdsRequest, BulkRevokeRequest, BulkRevokeResponse, CertificateStatus,
    RequestRevocationRequest, RevocationReason, bulk_revoke_response::Outcome,
    revocation_service_client::RevocationServiceClient,
};
use certflow_testkit::{Authed, Certflow};
use tonic::Code;

use crate::support::{
    dns_auto_dv, history_types, issue, issue_many, reason, request_id, started,
    started_without_rate_limits, wait_for_status,
};

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

/// `ids` sent through `BulkRevokeIds`, `per_message` to a message, with the revocation
/// named in the first message; the results, or the call's refusal.
async fn bulk_ids(
    revocations: &mut RevocationServiceClient<Authed>,
    request_id: &str,
    ids: &[String],
    per_message: usize,
) -> Result<Vec<BulkRevokeResponse>, tonic::Status> {
    let mut messages: Vec<BulkRevokeIdsRequest> = ids
        .chunks(per_message)
        .map(|chunk| BulkRevokeIdsRequest {
            certificate_ids: chunk.to_vec(),
            ..Default::default()
        })
        .collect();
    messages[0].request_id = request_id.into();
    messages[0].reason = RevocationReason::Superseded as i32;
    let mut stream = revocations
        .bulk_revoke_ids(tokio_stream::iter(messages))
        .await?
        .into_inner();
    let mut results = Vec::new();
    while let Some(message) = stream.message().await? {
        results.push(message.result.expect("a result in every message"));
    }
    Ok(results)
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
    let certflow = started_without_rate_limits().await;
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
    let (certflow, mut certs, mut revocations) = started().await;
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

#[tokio::test]
async fn gen6_a_million_ids_go_in_one_call_and_one_more_is_refused_whole() {
    const MILLION: usize = 1_000_000;
    let (_certflow, mut certs, mut revocations) = started().await;
    let mut live = Vec::new();
    for n in 0..3 {
        let cert = issue(
            &mut certs,
            dns_auto_dv("acme", &format!("m{n}.example.com")),
        )
        .await;
        wait_for_status(&mut certs, &cert.id, CertificateStatus::Issued).await;
        live.push(cert.id);
    }
    // A million ids, some 40 MB: ten times what one gRPC message may carry. The list is
    // the three certificates over and over, so revoking it costs three revocations.
    let million: Vec<String> = live.iter().cycle().take(MILLION).cloned().collect();
    let bytes: usize = million.iter().map(String::len).sum();
    assert!(bytes > 4 * 1024 * 1024, "{bytes} bytes fit in one message");

    // One more than a million is refused whole: nothing is revoked.
    let mut too_many = million.clone();
    too_many.push("one-too-many".into());
    let err = bulk_ids(&mut revocations, &request_id(), &too_many, 50_000)
        .await
        .expect_err("over the limit");
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("1000000"), "{}", err.message());
    for id in &live {
        wait_for_status(&mut certs, id, CertificateStatus::Issued).await;
    }

    // A million are taken; each certificate is revoked once and reported once.
    let results = bulk_ids(&mut revocations, &request_id(), &million, 50_000)
        .await
        .expect("a million ids");
    let reported: BTreeSet<&str> = results.iter().map(|r| r.certificate_id.as_str()).collect();
    assert_eq!(reported, live.iter().map(String::as_str).collect());
    assert_eq!(results.len(), live.len());
    assert!(results.iter().all(revoked), "{results:?}");
}

#[tokio::test]
async fn gen6_a_later_message_naming_another_revocation_refuses_the_call() {
    let (certflow, mut certs, mut revocations) = started().await;
    let cert = issue(&mut certs, dns_auto_dv("acme", "later.example.com")).await;
    wait_for_status(&mut certs, &cert.id, CertificateStatus::Issued).await;
    let messages = vec![
        BulkRevokeIdsRequest {
            request_id: request_id(),
            reason: RevocationReason::Superseded as i32,
            certificate_ids: vec![cert.id.clone()],
            ..Default::default()
        },
        BulkRevokeIdsRequest {
            reason: RevocationReason::KeyCompromise as i32,
            certificate_ids: vec!["another".into()],
            ..Default::default()
        },
    ];
    let err = revocations
        .bulk_revoke_ids(tokio_stream::iter(messages))
        .await
        .expect_err("two revocations in one call");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(reason(&err), "INVALID_ARGUMENT");
    wait_for_status(&mut certs, &cert.id, CertificateStatus::Issued).await;

    // Customers may not use it either.
    let customer = certflow.token("alice", "acme", &["customer"]);
    let mut as_customer = certflow
        .revocations_as(Some(&customer))
        .await
        .expect("client");
    let err = bulk_ids(
        &mut as_customer,
        &request_id(),
        std::slice::from_ref(&cert.id),
        1,
    )
    .await
    .expect_err("admins only");
    assert_eq!(err.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn gen6_ids_that_name_nothing_leave_no_outcome_behind() {
    const UNKNOWN: usize = 2_000;
    let certflow = Certflow::start_with(|config| {
        config.gateway.commands_per_second = 1_000_000;
    })
    .await
    .expect("start");
    let mut certs = certflow.certificates().await.expect("client");
    let mut revocations = certflow.revocations().await.expect("client");
    let cert = issue(&mut certs, dns_auto_dv("acme", "kept.example.com")).await;
    wait_for_status(&mut certs, &cert.id, CertificateStatus::Issued).await;
    let nats = certflow.nats().connect_as(None).await.expect("nats");
    let js = async_nats::jetstream::new(nats);
    let outcomes = || async {
        js.get_stream("CERTFLOW_OUTCOMES")
            .await
            .expect("outcomes stream")
            .info()
            .await
            .expect("info")
            .state
            .messages
    };
    let before = outcomes().await;
    assert!(before >= 1, "the issue's outcome is kept");

    let mut ids: Vec<String> = (0..UNKNOWN).map(|n| format!("unknown-{n}")).collect();
    ids.push(cert.id.clone());
    let results = bulk_ids(&mut revocations, &request_id(), &ids, 500)
        .await
        .expect("bulk");
    assert_eq!(results.len(), UNKNOWN + 1);
    let not_found = results
        .iter()
        .filter(|r| refusal_reason(r) == Some(("NOT_FOUND", "NOT_FOUND")))
        .count();
    assert_eq!(not_found, UNKNOWN);
    // The one revocation is remembered for its retry; the unknown ids left nothing.
    assert_eq!(outcomes().await, before + 1);
}

/// The revocation service's side of a bulk revocation: a batch is refused whole to anyone but
/// an admin and above its bound, and each revocation in it is the `RequestRevocation` it
/// stands for: sent again by itself with its request id, it is answered as it was (GEN-1).
#[tokio::test]
async fn gen6_gen3_a_batch_is_admins_only_bounded_and_each_of_its_revocations_is_a_request() {
    use certflow_bus::headers;
    use certflow_proto::bus::v1::{RevocationBatch, RevocationBatchReply, reply};
    use prost::Message;

    let (certflow, mut certs, _) = started().await;
    let cert = issue(&mut certs, dns_auto_dv("acme", "batched.example.com")).await;
    wait_for_status(&mut certs, &cert.id, CertificateStatus::Issued).await;
    let nats = certflow.nats().connect_as(None).await.expect("nats");
    let events = async_nats::jetstream::new(nats.clone())
        .get_stream("CERTFLOW_EVENTS")
        .await
        .expect("events");
    let last_sequence = || {
        let events = events.clone();
        let subject = format!("certflow.events.certificate.{}", cert.id);
        async move {
            events
                .direct_get_last_for_subject(subject)
                .await
                .expect("the certificate's events")
                .sequence
        }
    };
    let issued_at = last_sequence().await;
    let send = |roles: &'static str, subject: &'static str, body: Vec<u8>| {
        let nats = nats.clone();
        async move {
            let mut sent = async_nats::HeaderMap::new();
            sent.insert(headers::ACTOR_SUBJECT, "ops");
            sent.insert(headers::ACTOR_ACCOUNT, "operators");
            sent.insert(headers::ACTOR_ROLES, roles);
            let answer = nats
                .request_with_headers(subject, sent, body.into())
                .await
                .expect("answered");
            certflow_proto::bus::v1::Reply::decode(answer.payload).expect("a reply")
        }
    };
    let single = |id: &str, request: &str| RequestRevocationRequest {
        request_id: request.into(),
        certificate_id: id.into(),
        reason: RevocationReason::Superseded as i32,
        ..Default::default()
    };
    let refusal = |reply: &certflow_proto::bus::v1::Reply| match &reply.outcome {
        Some(reply::Outcome::Refusal(refusal)) => refusal.reason.clone(),
        other => panic!("expected a refusal: {other:?}"),
    };
    let batch = |requests| RevocationBatch { requests }.encode_to_vec();

    let as_customer = send(
        "customer",
        "certflow.cmd.revocation.batch",
        batch(vec![single(&cert.id, "b-1")]),
    )
    .await;
    assert_eq!(refusal(&as_customer), "ROLE_REQUIRED");
    let too_many = send(
        "admin",
        "certflow.cmd.revocation.batch",
        batch(
            (0..501)
                .map(|n| single(&cert.id, &format!("b-{n}")))
                .collect(),
        ),
    )
    .await;
    assert_eq!(refusal(&too_many), "INVALID_ARGUMENT");
    assert_eq!(
        last_sequence().await,
        issued_at,
        "a refused batch appended nothing"
    );

    let answered = send(
        "admin",
        "certflow.cmd.revocation.batch",
        batch(vec![single(&cert.id, "b-1"), single("no-such-cert", "b-2")]),
    )
    .await;
    let Some(reply::Outcome::Response(body)) = answered.outcome else {
        panic!("the batch is answered: {answered:?}");
    };
    let replies = RevocationBatchReply::decode(body.as_slice())
        .expect("batch reply")
        .replies;
    assert_eq!(replies.len(), 2, "one reply per revocation, in order");
    assert!(
        matches!(replies[0].outcome, Some(reply::Outcome::Response(_))),
        "{:?}",
        replies[0]
    );
    assert_eq!(refusal(&replies[1]), "NOT_FOUND");
    assert!(
        last_sequence().await > issued_at,
        "the revocation was appended"
    );
    wait_for_status(&mut certs, &cert.id, CertificateStatus::Revoked).await;

    let again = send(
        "admin",
        "certflow.cmd.revocation.request",
        single(&cert.id, "b-1").encode_to_vec(),
    )
    .await;
    assert_eq!(
        again, replies[0],
        "the retry is answered from the first outcome"
    );
    let new_request = send(
        "admin",
        "certflow.cmd.revocation.request",
        single(&cert.id, "b-3").encode_to_vec(),
    )
    .await;
    assert_eq!(refusal(&new_request), "ALREADY_REVOKED");
}
