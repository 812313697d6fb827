//! Who may call what: every RPC against every kind of caller, through the gateway.

use std::time::Duration;

use certflow_proto::v1::{
    GetCertificateHistoryRequest, GetCertificateRequest, IssueCertificateRequest,
    ListCertificatesRequest, RequestRevocationRequest, RevocationReason, UploadCertificateRequest,
};
use certflow_testkit::{Certflow, eventually};
use tonic::Code;

use crate::support::{self, CATCH_UP, dns_auto_dv, issue, reason, request_id};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rpc {
    Issue,
    Upload,
    Get,
    List,
    History,
    Download,
    Revoke,
    Delete,
}

/// Download comes before revoke (a revoked certificate is not downloadable), delete after it
/// (a valid one cannot be deleted).
const RPCS: [Rpc; 8] = [
    Rpc::Issue,
    Rpc::Upload,
    Rpc::Get,
    Rpc::List,
    Rpc::History,
    Rpc::Download,
    Rpc::Revoke,
    Rpc::Delete,
];

/// Calls `rpc` on certificate `target` (owned by account acme) with `token`. Commands name
/// account acme where a request has an account field. Returns the ids a list showed.
async fn call(
    certflow: &Certflow,
    token: Option<&str>,
    rpc: Rpc,
    target: &str,
) -> Result<Vec<String>, tonic::Status> {
    let mut certs = certflow.certificates_as(token).await.expect("client");
    let mut revocations = certflow.revocations_as(token).await.expect("client");
    match rpc {
        Rpc::Issue => certs
            .issue_certificate(dns_auto_dv("acme", "new.example.com"))
            .await
            .map(|_| Vec::new()),
        Rpc::Upload => certs
            .upload_certificate(UploadCertificateRequest {
                request_id: request_id(),
                account: "acme".into(),
                pem: support::self_signed_pem("uploaded.example.com"),
                private_key_pem: String::new(),
            })
            .await
            .map(|_| Vec::new()),
        Rpc::Get => certs
            .get_certificate(GetCertificateRequest { id: target.into() })
            .await
            .map(|_| Vec::new()),
        Rpc::List => certs
            .list_certificates(ListCertificatesRequest::default())
            .await
            .map(|r| {
                r.into_inner()
                    .certificates
                    .into_iter()
                    .map(|c| c.id)
                    .collect()
            }),
        Rpc::History => certs
            .get_certificate_history(GetCertificateHistoryRequest { id: target.into() })
            .await
            .map(|_| Vec::new()),
        Rpc::Download => certs
            .download_certificate(certflow_proto::v1::DownloadCertificateRequest {
                id: target.into(),
                format: certflow_proto::v1::DownloadFormat::Pem as i32,
                password: String::new(),
            })
            .await
            .map(|_| Vec::new()),
        Rpc::Delete => certs
            .delete_certificate(certflow_proto::v1::DeleteCertificateRequest {
                request_id: request_id(),
                id: target.into(),
            })
            .await
            .map(|_| Vec::new()),
        Rpc::Revoke => revocations
            .request_revocation(RequestRevocationRequest {
                request_id: request_id(),
                certificate_id: target.into(),
                reason: RevocationReason::Superseded as i32,
                description: String::new(),
                validation_method: 0,
            })
            .await
            .map(|_| Vec::new()),
    }
}

async fn history_len(certflow: &Certflow, id: &str) -> usize {
    let certs = certflow.certificates().await.expect("client");
    crate::support::history(&certs, id).await.len()
}

#[tokio::test]
async fn gen3_every_rpc_against_every_caller() {
    let certflow = Certflow::start_with(|config| config.gateway.commands_per_second = 1_000)
        .await
        .expect("start");
    let mut admin = certflow.certificates().await.expect("client");
    let target = issue(&mut admin, dns_auto_dv("acme", "owned.example.com"))
        .await
        .id;
    support::wait_for_status(
        &mut admin,
        &target,
        certflow_proto::v1::CertificateStatus::Issued,
    )
    .await;

    let forger = tempfile::tempdir().expect("dir");
    let (forged_key, _) = certd::dev::ensure_signing_key(forger.path()).expect("other key");
    let forged = certd::dev::token(
        &forged_key,
        "mallory",
        "acme",
        &["admin"],
        Duration::from_secs(600),
    )
    .expect("forged token");
    let expired = certd::dev::expired_token(
        certflow.signing_key(),
        "alice",
        "acme",
        &["customer"],
        Duration::from_secs(3_600),
    )
    .expect("expired token");
    let reviewer = certflow.token("rita", "reviewers", &["reviewer"]);
    let other = certflow.token("bob", "globex", &["customer"]);

    // Refused callers first: none of them may change anything.
    let refused: [(&str, Option<&str>, [Code; 8]); 5] = [
        ("no token", None, [Code::Unauthenticated; 8]),
        ("expired", Some(&expired), [Code::Unauthenticated; 8]),
        ("forged", Some(&forged), [Code::Unauthenticated; 8]),
        ("reviewer", Some(&reviewer), [Code::PermissionDenied; 8]),
        (
            "customer of another account",
            Some(&other),
            [
                Code::PermissionDenied, // issue for acme
                Code::PermissionDenied, // upload for acme
                Code::NotFound,         // get
                Code::Ok,               // list: succeeds, without acme's certificate
                Code::NotFound,         // history
                Code::NotFound,         // download
                Code::NotFound,         // revoke
                Code::NotFound,         // delete
            ],
        ),
    ];
    for (who, token, codes) in refused {
        for (rpc, code) in RPCS.iter().zip(codes) {
            let result = call(&certflow, token, *rpc, &target).await;
            match (code, result) {
                (Code::Ok, Ok(listed)) => {
                    assert!(!listed.contains(&target), "{who} listed acme's certificate")
                }
                (code, Err(status)) => {
                    assert_eq!(status.code(), code, "{who} {rpc:?}: {status:?}");
                    reason(&status);
                }
                (code, Ok(_)) => panic!("{who} {rpc:?} succeeded, expected {code:?}"),
            }
        }
    }
    assert_eq!(
        history_len(&certflow, &target).await,
        1,
        "refusals changed nothing"
    );
    let listed = call(&certflow, Some(&certflow.admin_token()), Rpc::List, &target)
        .await
        .expect("admin lists");
    assert_eq!(
        listed.len(),
        1,
        "no certificate was added by a refused call"
    );

    // The owning customer may do everything to its certificate.
    let owner = certflow.token("alice", "acme", &["customer"]);
    for rpc in RPCS {
        let listed = call(&certflow, Some(&owner), rpc, &target)
            .await
            .unwrap_or_else(|status| panic!("owner {rpc:?}: {status:?}"));
        if rpc == Rpc::List {
            assert!(listed.contains(&target));
        }
    }
    // So may an admin, on another acme certificate.
    let second = issue(&mut admin, dns_auto_dv("acme", "second.example.com"))
        .await
        .id;
    for rpc in RPCS {
        call(&certflow, Some(&certflow.admin_token()), rpc, &second)
            .await
            .unwrap_or_else(|status| panic!("admin {rpc:?}: {status:?}"));
    }
    // The other customer still sees only its own certificates.
    let seen_by_other = eventually(CATCH_UP, || async {
        let listed = call(&certflow, Some(&other), Rpc::List, &target)
            .await
            .ok()?;
        Some(listed)
    })
    .await
    .expect("list");
    assert!(seen_by_other.is_empty(), "{seen_by_other:?}");
}

#[tokio::test]
async fn gen4_events_carry_the_authenticated_actor() {
    let certflow = Certflow::start().await.expect("start");
    let token = certflow.token("alice", "acme", &["customer"]);
    let mut alice = certflow
        .certificates_as(Some(&token))
        .await
        .expect("client");
    let cert = issue(
        &mut alice,
        IssueCertificateRequest {
            account: String::new(),
            ..dns_auto_dv("ignored", "alice.example.com")
        },
    )
    .await;
    assert_eq!(cert.account, "acme", "the account comes from the token");
    let history = eventually(CATCH_UP, || {
        let mut alice = alice.clone();
        let id = cert.id.clone();
        async move {
            let events = alice
                .get_certificate_history(GetCertificateHistoryRequest { id })
                .await
                .ok()?
                .into_inner()
                .events;
            (!events.is_empty()).then_some(events)
        }
    })
    .await
    .expect("history");
    assert_eq!(history[0].actor_subject, "alice");
    assert_eq!(history[0].actor_account, "acme");
}

#[tokio::test]
async fn commands_over_the_rate_are_resource_exhausted_with_retry_info() {
    use tonic_types::StatusExt;
    let certflow = Certflow::start_with(|config| config.gateway.commands_per_second = 5)
        .await
        .expect("start");
    let acme = certflow.token("alice", "acme", &["customer"]);
    let globex = certflow.token("bob", "globex", &["customer"]);
    let mut revocations = certflow.revocations_as(Some(&acme)).await.expect("client");
    let mut limited = None;
    for _ in 0..20 {
        let result = revocations
            .request_revocation(RequestRevocationRequest {
                request_id: request_id(),
                certificate_id: "unknown".into(),
                reason: 0,
                description: String::new(),
                validation_method: 0,
            })
            .await;
        if let Err(status) = result
            && status.code() == Code::ResourceExhausted
        {
            limited = Some(status);
            break;
        }
    }
    let status = limited.expect("20 calls in a burst exceed 5 per second");
    assert_eq!(reason(&status), "RATE_LIMITED");
    let retry = status
        .get_details_retry_info()
        .and_then(|r| r.retry_delay)
        .expect("retry info");
    assert!(
        retry > Duration::ZERO && retry <= Duration::from_secs(1),
        "{retry:?}"
    );
    // Another account has its own allowance; queries have a budget of their own.
    let mut other = certflow
        .revocations_as(Some(&globex))
        .await
        .expect("client");
    let err = other
        .request_revocation(RequestRevocationRequest {
            request_id: request_id(),
            certificate_id: "unknown".into(),
            reason: 0,
            description: String::new(),
            validation_method: 0,
        })
        .await
        .expect_err("unknown certificate");
    assert_eq!(err.code(), Code::NotFound);
    let mut certs = certflow.certificates_as(Some(&acme)).await.expect("client");
    for _ in 0..20 {
        certs
            .list_certificates(ListCertificatesRequest::default())
            .await
            .expect("queries do not spend the command budget");
    }
}

#[tokio::test]
async fn queries_have_a_budget_per_account_of_their_own() {
    use tonic_types::StatusExt;
    let certflow = Certflow::start_with(|config| config.gateway.queries_per_second = 5)
        .await
        .expect("start");
    let acme = certflow.token("alice", "acme", &["customer"]);
    let globex = certflow.token("bob", "globex", &["customer"]);
    let mut certs = certflow.certificates_as(Some(&acme)).await.expect("client");
    let mut limited = None;
    for _ in 0..20 {
        if let Err(status) = certs
            .list_certificates(ListCertificatesRequest::default())
            .await
        {
            limited = Some(status);
            break;
        }
    }
    let status = limited.expect("20 lists in a burst exceed 5 per second");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_eq!(reason(&status), "RATE_LIMITED");
    assert!(status.get_details_retry_info().is_some(), "retry info");
    // Another account polls as before, and so does the same account on another RPC.
    let mut other = certflow
        .certificates_as(Some(&globex))
        .await
        .expect("client");
    other
        .list_certificates(ListCertificatesRequest::default())
        .await
        .expect("another account's own allowance");
    let err = certs
        .get_certificate(GetCertificateRequest {
            id: "unknown".into(),
        })
        .await
        .expect_err("unknown certificate");
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    // Commands are not refused because queries were.
    let mut revocations = certflow.revocations_as(Some(&acme)).await.expect("client");
    let err = revocations
        .request_revocation(RequestRevocationRequest {
            request_id: request_id(),
            certificate_id: "unknown".into(),
            reason: 0,
            description: String::new(),
            validation_method: 0,
        })
        .await
        .expect_err("unknown certificate");
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
}
