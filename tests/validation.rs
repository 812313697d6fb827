//! Domain validation end to end (REV-10, REV-11): revocations that wait for ownership proof,
//! proven against a real authoritative DNS server and a real HTTP server on 127.0.0.1.

use std::collections::HashMap;
use std::time::Duration;

use certd::Service;
use certflow_domain::Duration as PolicyDuration;
use certflow_proto::v1::{
    CancelRevocationRequest, Certificate, CertificateStatus, Challenge, CheckValidationRequest,
    DomainValidation, DownloadCertificateRequest, DownloadFormat, IssueCertificateRequest,
    RequestRevocationRequest, RevocationFailure, RevocationPath, RevocationReason,
    ValidationMethod, ValidationOutcome, certificate_service_client::CertificateServiceClient,
};
use certflow_testkit::dns::AuthoritativeDns;
use certflow_testkit::web::FileServer;
use certflow_testkit::{Authed, Certflow};
use tonic::Code;

use crate::support::{
    CATCH_UP, dns_auto_dv, history_types, issue, reason, request_id, wait_for_status, wait_until,
};

/// A GeoTrust DV certificate with no automatic validation: its revocation waits for proof.
fn manual_dv(domains: &[&str]) -> IssueCertificateRequest {
    IssueCertificateRequest {
        domains: domains.iter().map(|d| d.to_string()).collect(),
        validation_setup: Vec::new(),
        ..dns_auto_dv("acme", domains[0])
    }
}

fn revoke(id: &str, method: ValidationMethod) -> RequestRevocationRequest {
    RequestRevocationRequest {
        request_id: request_id(),
        certificate_id: id.into(),
        reason: RevocationReason::Superseded as i32,
        description: String::new(),
        validation_method: method as i32,
    }
}

/// certflow with validation pointed at `dns` (and `web` for the domains given), checking
/// again quickly, with a validation window of `window`.
async fn certflow_with(
    dns: &AuthoritativeDns,
    web: Option<(&FileServer, &[&str])>,
    window: Duration,
) -> Certflow {
    let dns_addr = dns.addr();
    let overrides: HashMap<String, std::net::SocketAddr> = web
        .map(|(server, domains)| {
            domains
                .iter()
                .map(|d| (d.to_string(), server.addr()))
                .collect()
        })
        .unwrap_or_default();
    Certflow::start_with(move |config| configure(config, dns_addr, overrides, window))
        .await
        .expect("start")
}

fn configure(
    config: &mut certd::Config,
    dns: std::net::SocketAddr,
    overrides: HashMap<String, std::net::SocketAddr>,
    window: Duration,
) {
    config.validation.probe.dns_servers = vec![dns];
    config.validation.probe.http_overrides = overrides;
    config.validation.probe.timeout = Duration::from_secs(2);
    config.validation.recheck_initial = Duration::from_millis(200);
    config.validation.recheck_max = Duration::from_millis(500);
    config.policy.validation_window = PolicyDuration::millis(window.as_millis() as i64);
}

/// Waits until the certificate's challenges are issued and returns them.
async fn challenges(certs: &mut CertificateServiceClient<Authed>, id: &str) -> Vec<Challenge> {
    let cert = wait_until(certs, id, CATCH_UP, "get challenges", |cert| {
        validation(cert).is_some()
    })
    .await;
    validation(&cert)
        .map(|v| v.challenges.clone())
        .unwrap_or_default()
}

fn validation(cert: &Certificate) -> Option<&DomainValidation> {
    cert.revocation.as_ref()?.validation.as_ref()
}

fn failed(cert: &Certificate) -> bool {
    cert.failed_revocation.is_some()
}

/// Issues a certificate for `domains` with no automatic validation, requests its
/// revocation by `method`, and returns it with its challenges once they are issued.
async fn revocation_waiting_for(
    certflow: &Certflow,
    domains: &[&str],
    method: ValidationMethod,
) -> (Certificate, Vec<Challenge>) {
    let mut certs = certflow.certificates().await.expect("client");
    let mut revocations = certflow.revocations().await.expect("client");
    let cert = issue(&mut certs, manual_dv(domains)).await;
    revocations
        .request_revocation(revoke(&cert.id, method))
        .await
        .expect("accepted");
    let issued = challenges(&mut certs, &cert.id).await;
    (cert, issued)
}

fn value_for<'c>(challenges: &'c [Challenge], domain: &str) -> &'c Challenge {
    challenges
        .iter()
        .find(|c| c.domain == domain)
        .unwrap_or_else(|| panic!("no challenge for {domain}"))
}

const LONG: Duration = Duration::from_secs(3600);
const WAIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn rev10_dns_validation_passes_and_revokes_without_review() {
    let dns = AuthoritativeDns::start(&["example.com"])
        .await
        .expect("dns");
    let certflow = certflow_with(&dns, None, LONG).await;
    let mut certs = certflow.certificates().await.expect("client");
    let mut revocations = certflow.revocations().await.expect("client");
    let cert = issue(&mut certs, manual_dv(&["www.example.com", "*.example.com"])).await;

    let pending = revocations
        .request_revocation(revoke(&cert.id, ValidationMethod::Dns))
        .await
        .expect("accepted")
        .into_inner()
        .certificate
        .expect("certificate");
    assert_eq!(pending.status, CertificateStatus::RevocationPending as i32);
    let revocation = pending.revocation.expect("revocation");
    assert_eq!(revocation.path, RevocationPath::DomainValidation as i32);

    let issued = challenges(&mut certs, &cert.id).await;
    assert_eq!(issued.len(), 2);
    let www = value_for(&issued, "www.example.com");
    let wildcard = value_for(&issued, "*.example.com");
    assert_eq!(www.method, ValidationMethod::Dns as i32);
    assert_eq!(www.dns_record_name, "_dnsauth.www.example.com");
    assert_eq!(wildcard.dns_record_name, "_dnsauth.example.com");
    assert_eq!(www.value.len(), 32, "128 random bits in hex");

    // REV-8: no download while the revocation is pending.
    let err = certs
        .download_certificate(DownloadCertificateRequest {
            id: cert.id.clone(),
            format: DownloadFormat::Pem as i32,
            password: String::new(),
        })
        .await
        .expect_err("refused");
    assert_eq!(reason(&err), "REVOCATION_REQUESTED");

    // One domain proven is not enough.
    dns.set_txt("_dnsauth.www.example.com", &[&www.value]).await;
    let one = wait_until(&certs, &cert.id, WAIT, "prove www", |cert| {
        validation(cert).is_some_and(|v| {
            v.challenges
                .iter()
                .filter(|c| c.validated_at.is_some())
                .count()
                == 1
        })
    })
    .await;
    assert_eq!(one.status, CertificateStatus::RevocationPending as i32);

    dns.set_txt("_dnsauth.example.com", &[&wildcard.value])
        .await;
    let revoked = wait_for_status(&mut certs, &cert.id, CertificateStatus::Revoked).await;
    let validation = revoked
        .revocation
        .as_ref()
        .and_then(|r| r.validation.as_ref())
        .expect("validation kept");
    assert_eq!(validation.outcome, ValidationOutcome::Passed as i32);
    let types = history_types(&certs, &cert.id).await;
    assert_eq!(
        types,
        [
            "CertificateIssued",
            "RevocationRequested",
            "ValidationChallengesIssued",
            "DomainValidated",
            "DomainValidated",
            "ValidationPassed",
            "CertificateRevoked",
        ]
    );
}

#[tokio::test]
async fn rev10_file_validation_passes() {
    let dns = AuthoritativeDns::start(&["example.org"])
        .await
        .expect("dns");
    let web = FileServer::start().await.expect("web");
    let certflow = certflow_with(&dns, Some((&web, &["shop.example.org"])), LONG).await;
    let (cert, issued) =
        revocation_waiting_for(&certflow, &["shop.example.org"], ValidationMethod::File).await;
    let mut certs = certflow.certificates().await.expect("client");
    let shop = value_for(&issued, "shop.example.org");
    assert_eq!(shop.method, ValidationMethod::File as i32);
    assert_eq!(
        shop.file_url,
        "http://shop.example.org/.well-known/pki-validation/fileauth.txt"
    );
    web.set("shop.example.org", &format!("{}\n", shop.value));
    wait_for_status(&mut certs, &cert.id, CertificateStatus::Revoked).await;
}

#[tokio::test]
async fn rev11_a_wrong_value_proves_nothing_and_the_right_one_added_late_but_in_time_does() {
    let dns = AuthoritativeDns::start(&["example.net"])
        .await
        .expect("dns");
    let certflow = certflow_with(&dns, None, Duration::from_secs(30)).await;
    let (cert, issued) =
        revocation_waiting_for(&certflow, &["api.example.net"], ValidationMethod::Dns).await;
    let mut certs = certflow.certificates().await.expect("client");
    let mut revocations = certflow.revocations().await.expect("client");
    let value = value_for(&issued, "api.example.net").value.clone();

    dns.set_txt("_dnsauth.api.example.net", &["not-the-value"])
        .await;
    let checked = revocations
        .check_validation(CheckValidationRequest {
            certificate_id: cert.id.clone(),
        })
        .await
        .expect("checked")
        .into_inner();
    let probe = &checked.probes[0];
    assert!(!probe.found);
    assert!(probe.detail.contains("not-the-value"), "{}", probe.detail);
    let seen = checked.certificate.expect("certificate");
    assert_eq!(seen.status, CertificateStatus::RevocationPending as i32);

    // REV-7: nothing cancels it meanwhile.
    let err = revocations
        .cancel_revocation(CancelRevocationRequest {
            certificate_id: cert.id.clone(),
        })
        .await
        .expect_err("not cancellable");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(reason(&err), "REVOCATION_NOT_CANCELLABLE");

    // Later, the customer fixes the record; the scheduled re-checks find it.
    tokio::time::sleep(Duration::from_secs(1)).await;
    dns.set_txt("_dnsauth.api.example.net", &[&value]).await;
    wait_for_status(&mut certs, &cert.id, CertificateStatus::Revoked).await;
}

#[tokio::test]
async fn rev11_not_proven_by_the_deadline_the_revocation_fails_and_the_certificate_is_issued_again()
{
    let dns = AuthoritativeDns::start(&["example.com"])
        .await
        .expect("dns");
    let certflow = certflow_with(&dns, None, Duration::from_secs(3)).await;
    let (cert, _) =
        revocation_waiting_for(&certflow, &["late.example.com"], ValidationMethod::Dns).await;
    let mut certs = certflow.certificates().await.expect("client");
    let issued_again = wait_until(&certs, &cert.id, WAIT, "fail its revocation", failed).await;
    assert_eq!(issued_again.status, CertificateStatus::Issued as i32);
    assert!(issued_again.revocation.is_none());
    assert_eq!(
        issued_again.failed_revocation.map(|f| f.failure),
        Some(RevocationFailure::ValidationExpired as i32)
    );
    // REV-8: downloadable again.
    certs
        .download_certificate(DownloadCertificateRequest {
            id: cert.id.clone(),
            format: DownloadFormat::Pem as i32,
            password: String::new(),
        })
        .await
        .expect("downloadable again");
    let types = history_types(&certs, &cert.id).await;
    assert_eq!(
        types,
        [
            "CertificateIssued",
            "RevocationRequested",
            "ValidationChallengesIssued",
            "ValidationExpired",
            "RevocationFailed",
        ],
        "expired and failed exactly once"
    );
}

#[tokio::test]
async fn rev11_challenges_survive_a_restart_of_the_services() {
    let dns = AuthoritativeDns::start(&["example.com"])
        .await
        .expect("dns");
    let dns_addr = dns.addr();
    let mut certflow = certflow_with(&dns, None, LONG).await;
    let (cert, issued) =
        revocation_waiting_for(&certflow, &["restart.example.com"], ValidationMethod::Dns).await;
    let value = value_for(&issued, "restart.example.com").value.clone();

    // Down mid-challenge; the customer publishes the value meanwhile.
    certflow.stop_services().await;
    dns.set_txt("_dnsauth.restart.example.com", &[&value]).await;
    certflow
        .restart_services(|config| configure(config, dns_addr, HashMap::new(), LONG))
        .await
        .expect("restart");
    let mut certs = certflow.certificates().await.expect("client");
    wait_for_status(&mut certs, &cert.id, CertificateStatus::Revoked).await;
}

#[tokio::test]
async fn rev11_the_deadline_survives_a_restart_and_two_instances_expire_it_once() {
    let dns = AuthoritativeDns::start(&["example.com"])
        .await
        .expect("dns");
    let dns_addr = dns.addr();
    let window = Duration::from_secs(4);
    let mut certflow = certflow_with(&dns, None, window).await;
    let mut certs = certflow.certificates().await.expect("client");
    let mut revocations = certflow.revocations().await.expect("client");
    let mut ids = Vec::new();
    for n in 0..5 {
        let cert = issue(&mut certs, manual_dv(&[&format!("d{n}.example.com")])).await;
        revocations
            .request_revocation(revoke(&cert.id, ValidationMethod::Dns))
            .await
            .expect("accepted");
        ids.push(cert.id);
    }
    for id in &ids {
        challenges(&mut certs, id).await;
    }
    // Restart, and run a second validation service beside the first.
    certflow.stop_services().await;
    certflow
        .restart_services(|config| configure(config, dns_addr, HashMap::new(), window))
        .await
        .expect("restart");
    let second = certflow
        .start_more(&[Service::Validation], |config| {
            configure(config, dns_addr, HashMap::new(), window)
        })
        .await
        .expect("second validation instance");
    let certs = certflow.certificates().await.expect("client");
    for id in &ids {
        wait_until(&certs, id, WAIT, "expire after the restart", failed).await;
    }
    // Let both instances run on past the deadline, then count.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for id in &ids {
        let types = history_types(&certs, id).await;
        let expired = types.iter().filter(|t| *t == "ValidationExpired").count();
        let failed = types.iter().filter(|t| *t == "RevocationFailed").count();
        assert_eq!((expired, failed), (1, 1), "{id}: {types:?}");
    }
    second.stop().await;
}

/// `make run` runs each service as its own NATS user under `deploy/nats/certflow.conf`: the
/// reactions, the check queue and the key index must work within those permissions.
#[tokio::test]
async fn validation_and_key_blocking_work_with_each_service_as_its_own_nats_user() {
    let dns = AuthoritativeDns::start(&["example.com"])
        .await
        .expect("dns");
    let dns_addr = dns.addr();
    let certflow = Certflow::start_secured_with(move |config| {
        configure(config, dns_addr, HashMap::new(), LONG)
    })
    .await
    .expect("start");
    let mut certs = certflow.certificates().await.expect("client");
    let mut revocations = certflow.revocations().await.expect("client");

    let cert = issue(&mut certs, manual_dv(&["secure.example.com"])).await;
    revocations
        .request_revocation(revoke(&cert.id, ValidationMethod::Dns))
        .await
        .expect("accepted");
    let issued = challenges(&mut certs, &cert.id).await;
    let value = value_for(&issued, "secure.example.com").value.clone();
    dns.set_txt("_dnsauth.secure.example.com", &[&value]).await;
    wait_for_status(&mut certs, &cert.id, CertificateStatus::Revoked).await;

    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let csr = |domain: &str| {
        rcgen::CertificateParams::new(vec![domain.to_string()])
            .expect("params")
            .serialize_request(&key)
            .expect("csr")
            .pem()
            .expect("pem")
    };
    let first = issue(
        &mut certs,
        IssueCertificateRequest {
            csr_pem: csr("k1.example.com"),
            ..dns_auto_dv("acme", "k1.example.com")
        },
    )
    .await;
    let second = issue(
        &mut certs,
        IssueCertificateRequest {
            csr_pem: csr("k2.example.com"),
            ..dns_auto_dv("acme", "k2.example.com")
        },
    )
    .await;
    revocations
        .request_revocation(RequestRevocationRequest {
            reason: RevocationReason::KeyCompromise as i32,
            ..revoke(&first.id, ValidationMethod::Dns)
        })
        .await
        .expect("revoked");
    wait_for_status(&mut certs, &second.id, CertificateStatus::Revoked).await;
    let err = certs
        .issue_certificate(IssueCertificateRequest {
            csr_pem: csr("k3.example.com"),
            ..dns_auto_dv("acme", "k3.example.com")
        })
        .await
        .expect_err("blocked");
    assert_eq!(reason(&err), "KEY_BLOCKED");
}
