//! Reissue end to end (REI-1 … REI-12): new certificates for an original's domains, with
//! the original's key, a generated one or a pasted CSR, one reissue at a time per
//! registrable domain, completed by the services on their own.

use std::time::Duration;

use certd::Service;
use certflow_domain::CertificateId;
use certflow_proto::v1::{
    Certificate, CertificateStatus, DownloadCertificateRequest, DownloadFormat, GeneratedKey,
    GetCertificateRequest, IssueCertificateRequest, KeyAlgorithm, OriginalKey,
    RequestReissueRequest, RequestRevocationRequest, RevocationCause, RevocationReason,
    certificate_service_client::CertificateServiceClient,
    reissue_service_client::ReissueServiceClient, request_reissue_request::Key,
};
use certflow_store::{LockHolder, ReissueLocks, Reservation};
use certflow_testkit::{Authed, Certflow, eventually};
use tonic::Code;

use crate::support::{
    self, dns_auto_dv, issue, openssl, reason, request_id, wait_for_status, wait_until,
};

const WAIT: Duration = Duration::from_secs(20);

fn reissue(id: &str, key: Key) -> RequestReissueRequest {
    RequestReissueRequest {
        request_id: request_id(),
        certificate_id: id.into(),
        domains: Vec::new(),
        reason: "server moved".into(),
        key: Some(key),
        enterprise_info: Default::default(),
        validation_method: 0,
    }
}

fn original_key() -> Key {
    Key::OriginalKey(OriginalKey {})
}

async fn clients(
    certflow: &Certflow,
) -> (
    CertificateServiceClient<Authed>,
    ReissueServiceClient<Authed>,
) {
    let certs = certflow.certificates().await.expect("client");
    let reissues = certflow
        .reissues_as(&certflow.admin_token())
        .await
        .expect("client");
    (certs, reissues)
}

/// Requests a reissue and waits until it has completed; returns the new certificate.
async fn reissued(
    certs: &mut CertificateServiceClient<Authed>,
    reissues: &mut ReissueServiceClient<Authed>,
    request: RequestReissueRequest,
) -> Certificate {
    let id = request.certificate_id.clone();
    let accepted = reissues
        .request_reissue(request)
        .await
        .expect("reissue accepted")
        .into_inner();
    let new_id = accepted.new_certificate_id;
    wait_until(certs, &id, WAIT, "complete its reissue", |c| {
        c.reissue_ids.contains(&new_id)
    })
    .await;
    wait_for_status(certs, &new_id, CertificateStatus::Issued).await
}

fn write(dir: &std::path::Path, name: &str, content: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, content).expect("write");
    path.display().to_string()
}

#[tokio::test]
async fn rei5_rev4_rev5_a_reissue_keeps_the_expiry_is_linked_and_goes_with_its_original() {
    // With every service as its own NATS user, as make run runs them.
    let certflow = Certflow::start_secured_with(|_| {}).await.expect("start");
    let (mut certs, mut reissues) = clients(&certflow).await;
    let mut revocations = certflow.revocations().await.expect("client");
    let original = issue(&mut certs, dns_auto_dv("acme", "r.example.com")).await;

    let accepted = reissues
        .request_reissue(reissue(&original.id, original_key()))
        .await
        .expect("accepted")
        .into_inner();
    let pending = accepted.certificate.expect("original");
    assert_eq!(pending.status, CertificateStatus::ReissuePending as i32);
    assert_eq!(
        pending.pending_reissue.map(|p| p.new_certificate_id),
        Some(accepted.new_certificate_id.clone())
    );
    let done = wait_until(&certs, &original.id, WAIT, "complete its reissue", |c| {
        !c.reissue_ids.is_empty()
    })
    .await;
    assert_eq!(done.status, CertificateStatus::Issued as i32);
    assert_eq!(done.reissue_ids, vec![accepted.new_certificate_id.clone()]);

    let new = wait_for_status(
        &mut certs,
        &accepted.new_certificate_id,
        CertificateStatus::Issued,
    )
    .await;
    assert_eq!(new.original_id, original.id);
    assert_eq!(new.not_after, original.not_after, "REI-5: same expiry");
    assert_eq!(
        new.public_key_sha256, original.public_key_sha256,
        "the original key"
    );
    assert_ne!(new.serial_number, original.serial_number);
    assert!(new.private_key_held);
    certs
        .download_certificate(DownloadCertificateRequest {
            id: new.id.clone(),
            format: DownloadFormat::Pem as i32,
            password: String::new(),
        })
        .await
        .expect("downloadable");

    // REV-4: revoked through its original only.
    let err = revocations
        .request_revocation(RequestRevocationRequest {
            request_id: request_id(),
            certificate_id: new.id.clone(),
            ..Default::default()
        })
        .await
        .expect_err("not directly");
    assert_eq!(reason(&err), "REISSUED_CERT_NOT_REVOCABLE");
    // REV-5: revoking the original revokes the reissue, its event naming the cause.
    revocations
        .request_revocation(RequestRevocationRequest {
            request_id: request_id(),
            certificate_id: original.id.clone(),
            reason: RevocationReason::Superseded as i32,
            ..Default::default()
        })
        .await
        .expect("original revoked");
    let cascaded = wait_for_status(&mut certs, &new.id, CertificateStatus::Revoked).await;
    let revocation = cascaded.revocation.expect("revocation");
    assert_eq!(revocation.cause, RevocationCause::OriginalRevoked as i32);
    assert_eq!(revocation.cause_certificate_id, original.id);
    assert_eq!(revocation.reason, RevocationReason::Superseded as i32);
}

#[tokio::test]
async fn rei7_generated_keys_and_csrs_made_by_openssl() {
    let certflow = Certflow::start().await.expect("start");
    let (mut certs, mut reissues) = clients(&certflow).await;
    let dir = tempfile::tempdir().expect("dir");
    let path = |name: &str| dir.path().join(name).display().to_string();

    // A generated RSA 3072 key, encrypted with the customer's password.
    let first = issue(&mut certs, dns_auto_dv("acme", "gen.example.com")).await;
    let new = reissued(
        &mut certs,
        &mut reissues,
        reissue(
            &first.id,
            Key::GeneratedKey(GeneratedKey {
                key_algorithm: KeyAlgorithm::Rsa3072 as i32,
                key_password: "correct horse".into(),
            }),
        ),
    )
    .await;
    assert_eq!(new.key_algorithm, KeyAlgorithm::Rsa3072 as i32);
    assert_ne!(new.public_key_sha256, first.public_key_sha256);
    let files = certs
        .download_certificate(DownloadCertificateRequest {
            id: new.id.clone(),
            format: DownloadFormat::Pem as i32,
            password: "correct horse".into(),
        })
        .await
        .expect("download")
        .into_inner()
        .files;
    let text = |suffix: &str| {
        files
            .iter()
            .find(|f| f.name.ends_with(suffix))
            .map(|f| String::from_utf8_lossy(&f.content).into_owned())
            .unwrap_or_else(|| panic!("no {suffix} in the download"))
    };
    let key = write(dir.path(), "key.pem", &text(".key"));
    let leaf = write(dir.path(), "leaf.pem", &new.pem);
    let (ok, opened) = openssl(&[
        "pkcs8",
        "-in",
        &key,
        "-passin",
        "pass:correct horse",
        "-nocrypt",
        "-topk8",
    ]);
    let (_, key_public) = if ok {
        let plain = write(dir.path(), "plain.pem", &opened);
        openssl(&["pkey", "-in", &plain, "-pubout"])
    } else {
        let (ok, decrypted) = openssl(&["pkey", "-in", &key, "-passin", "pass:correct horse"]);
        assert!(ok, "the password opens the key: {decrypted}");
        let plain = write(dir.path(), "plain.pem", &decrypted);
        openssl(&["pkey", "-in", &plain, "-pubout"])
    };
    let (ok, cert_public) = openssl(&["x509", "-in", &leaf, "-noout", "-pubkey"]);
    assert!(ok);
    assert_eq!(
        key_public.trim(),
        cert_public.trim(),
        "the key is the certificate's"
    );
    let (ok, _) = openssl(&["pkey", "-in", &key, "-passin", "pass:wrong", "-noout"]);
    assert!(!ok, "a wrong password does not open it");

    // CSRs made by openssl: RSA 2048 and ECC P-256.
    for (name, keygen) in [
        (
            "rsa",
            vec![
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
            ],
        ),
        (
            "ecc",
            vec![
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ],
        ),
    ] {
        let domain = format!("{name}.example.com");
        let original = issue(&mut certs, dns_auto_dv("acme", &domain)).await;
        let key_path = path(&format!("{name}.key"));
        let mut args = keygen.clone();
        args.extend(["-out", &key_path]);
        assert!(openssl(&args).0);
        let subject = format!("/CN={domain}");
        let (ok, csr) = openssl(&["req", "-new", "-key", &key_path, "-subj", &subject]);
        assert!(ok, "{csr}");
        let new = reissued(
            &mut certs,
            &mut reissues,
            reissue(&original.id, Key::CsrPem(csr)),
        )
        .await;
        let leaf = write(dir.path(), &format!("{name}.pem"), &new.pem);
        let (_, cert_public) = openssl(&["x509", "-in", &leaf, "-noout", "-pubkey"]);
        let (_, key_public) = openssl(&["pkey", "-in", &key_path, "-pubout"]);
        assert_eq!(
            cert_public.trim(),
            key_public.trim(),
            "{name}: the CSR's key"
        );
        assert!(!new.private_key_held, "the customer keeps a CSR's key");
    }

    // Bad CSRs change nothing.
    let original = issue(&mut certs, dns_auto_dv("acme", "bad.example.com")).await;
    let weak = path("weak.key");
    assert!(
        openssl(&["genrsa", "-out", &weak, "1024"]).0
            || openssl(&[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:1024",
                "-out",
                &weak
            ])
            .0
    );
    let (_, weak_csr) = openssl(&["req", "-new", "-key", &weak, "-subj", "/CN=bad.example.com"]);
    let ecc = path("ecc.key");
    let (_, wrong_csr) = openssl(&[
        "req",
        "-new",
        "-key",
        &ecc,
        "-subj",
        "/CN=other.example.com",
    ]);
    let mut tampered = wrong_csr.replace("other", "bad!!").into_bytes();
    let middle = tampered.len() / 2;
    tampered[middle] = if tampered[middle] == b'A' { b'B' } else { b'A' };
    for (csr, expected) in [
        (weak_csr, "KEY_POLICY_VIOLATION"),
        (wrong_csr, "CSR_DOMAIN_MISMATCH"),
        (
            String::from_utf8_lossy(&tampered).into_owned(),
            "CSR_INVALID",
        ),
    ] {
        let err = reissues
            .request_reissue(reissue(&original.id, Key::CsrPem(csr)))
            .await
            .expect_err("refused");
        assert_eq!(reason(&err), expected);
    }
    let unchanged = certs
        .get_certificate(GetCertificateRequest {
            id: original.id.clone(),
        })
        .await
        .expect("get")
        .into_inner()
        .certificate
        .expect("certificate");
    assert_eq!(unchanged.status, CertificateStatus::Issued as i32);
    assert!(unchanged.pending_reissue.is_none());

    // An SM2 certificate is reissued with an SM2 key.
    let sm2 = issue(
        &mut certs,
        IssueCertificateRequest {
            brand: certflow_proto::v1::Brand::Dnspod as i32,
            key_algorithm: KeyAlgorithm::Sm2 as i32,
            ..dns_auto_dv("acme", "gm.example.com")
        },
    )
    .await;
    let new = reissued(
        &mut certs,
        &mut reissues,
        reissue(
            &sm2.id,
            Key::GeneratedKey(GeneratedKey {
                key_algorithm: KeyAlgorithm::Sm2 as i32,
                key_password: String::new(),
            }),
        ),
    )
    .await;
    assert_eq!(new.key_algorithm, KeyAlgorithm::Sm2 as i32);
    assert_eq!(new.not_after, sm2.not_after);
    // And with an SM2 CSR made by openssl (SM2 with SM3).
    let gm = issue(
        &mut certs,
        IssueCertificateRequest {
            brand: certflow_proto::v1::Brand::Dnspod as i32,
            key_algorithm: KeyAlgorithm::Sm2 as i32,
            ..dns_auto_dv("acme", "gm2.example.com")
        },
    )
    .await;
    let sm2_key = path("sm2.key");
    assert!(openssl(&["genpkey", "-algorithm", "SM2", "-out", &sm2_key]).0);
    let (ok, sm2_csr) = openssl(&[
        "req",
        "-new",
        "-key",
        &sm2_key,
        "-sm3",
        "-subj",
        "/CN=gm2.example.com",
    ]);
    assert!(ok, "{sm2_csr}");
    let new = reissued(
        &mut certs,
        &mut reissues,
        reissue(&gm.id, Key::CsrPem(sm2_csr)),
    )
    .await;
    assert_eq!(new.key_algorithm, KeyAlgorithm::Sm2 as i32);
    let leaf = write(dir.path(), "gm2.pem", &new.pem);
    let (_, cert_public) = openssl(&["x509", "-in", &leaf, "-noout", "-pubkey"]);
    let (_, key_public) = openssl(&["pkey", "-in", &sm2_key, "-pubout"]);
    assert_eq!(cert_public.trim(), key_public.trim(), "the SM2 CSR's key");
}

#[tokio::test]
async fn rei4_a_hundred_concurrent_reissues_under_one_registrable_domain_one_proceeds() {
    let certflow = Certflow::start_with(|config| config.gateway.commands_per_second = 1_000)
        .await
        .expect("start");
    // A second reissue service instance shares the work.
    let second = certflow
        .start_more(&[Service::Reissue], |_| {})
        .await
        .expect("second reissue instance");
    let (mut certs, reissues) = clients(&certflow).await;
    let mut originals = Vec::new();
    for n in 0..100 {
        originals.push(
            issue(
                &mut certs,
                dns_auto_dv("acme", &format!("a{n}.example.co.uk")),
            )
            .await,
        );
    }
    let attempts: Vec<_> = originals
        .iter()
        .map(|original| {
            let mut reissues = reissues.clone();
            let request = reissue(&original.id, original_key());
            tokio::spawn(async move { reissues.request_reissue(request).await })
        })
        .collect();
    let mut accepted = Vec::new();
    for (original, attempt) in originals.iter().zip(attempts) {
        match attempt.await.expect("task") {
            Ok(response) => accepted.push((original.id.clone(), response.into_inner())),
            Err(err) => {
                assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
                assert_eq!(reason(&err), "PRIMARY_DOMAIN_REISSUE_BUSY");
            }
        }
    }
    assert_eq!(accepted.len(), 1, "exactly one proceeds");
    let (winner, response) = &accepted[0];
    wait_until(&certs, winner, WAIT, "complete its reissue", |c| {
        c.reissue_ids.contains(&response.new_certificate_id)
    })
    .await;
    // Once it completed, the next can start.
    let next = originals.iter().find(|o| &o.id != winner).expect("another");
    let started = eventually(WAIT, || {
        let mut reissues = reissues.clone();
        let request = reissue(&next.id, original_key());
        async move { reissues.request_reissue(request).await.ok() }
    })
    .await;
    assert!(started.is_some(), "the reservation was released");
    second.stop().await;
}

#[tokio::test]
async fn rei3_a_hundred_concurrent_reissues_of_one_certificate_one_wins() {
    let certflow = Certflow::start_with(|config| config.gateway.commands_per_second = 1_000)
        .await
        .expect("start");
    let (mut certs, reissues) = clients(&certflow).await;
    let original = issue(&mut certs, dns_auto_dv("acme", "one.example.net")).await;
    let attempts: Vec<_> = (0..100)
        .map(|_| {
            let mut reissues = reissues.clone();
            let request = reissue(&original.id, original_key());
            tokio::spawn(async move { reissues.request_reissue(request).await })
        })
        .collect();
    let mut accepted = Vec::new();
    for attempt in attempts {
        match attempt.await.expect("task") {
            Ok(response) => accepted.push(response.into_inner().new_certificate_id),
            Err(err) => {
                assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
                let why = reason(&err);
                assert!(
                    why == "REISSUE_IN_PROGRESS" || why == "PRIMARY_DOMAIN_REISSUE_BUSY",
                    "unexpected refusal {why}"
                );
            }
        }
    }
    assert_eq!(accepted.len(), 1, "exactly one wins: {accepted:?}");
    let done = wait_until(&certs, &original.id, WAIT, "complete its reissue", |c| {
        c.reissue_ids.contains(&accepted[0])
    })
    .await;
    assert_eq!(done.reissue_ids, accepted, "one reissue recorded");
    let history = support::history_types(&certs, &original.id).await;
    let requested = history
        .iter()
        .filter(|t| t.as_str() == "ReissueRequested")
        .count();
    assert_eq!(requested, 1, "{history:?}");
}

#[tokio::test]
async fn gen1_a_retried_reissue_whose_answer_was_lost_is_answered_from_the_log() {
    let certflow = Certflow::start().await.expect("start");
    let (mut certs, mut reissues) = clients(&certflow).await;
    let original = issue(&mut certs, dns_auto_dv("acme", "lost.example.org")).await;
    let request = reissue(&original.id, original_key());
    let first = reissues
        .request_reissue(request.clone())
        .await
        .expect("accepted")
        .into_inner();
    // The recorded answer is gone, as when the service stopped between appending and
    // recording it (or the record expired).
    let nats = certflow.nats.connect_as(None).await.expect("nats");
    async_nats::jetstream::new(nats)
        .get_stream("CERTFLOW_OUTCOMES")
        .await
        .expect("outcomes stream")
        .purge()
        .await
        .expect("purged");
    let again = reissues
        .request_reissue(request)
        .await
        .expect("the retry is answered from the log")
        .into_inner();
    assert_eq!(again.new_certificate_id, first.new_certificate_id);
    let requested = support::history_types(&certs, &original.id)
        .await
        .into_iter()
        .filter(|t| t == "ReissueRequested")
        .count();
    assert_eq!(requested, 1);
}

#[tokio::test]
async fn rei4_a_reservation_left_by_a_crashed_reissue_is_taken_over() {
    let certflow = Certflow::start_with(|config| {
        config.reissue.stale_after = Duration::from_millis(500);
    })
    .await
    .expect("start");
    let (mut certs, mut reissues) = clients(&certflow).await;
    let original = issue(&mut certs, dns_auto_dv("acme", "b.example.org")).await;
    let bystander = issue(&mut certs, dns_auto_dv("acme", "c.example.org")).await;
    // A reissue that reserved example.org and died before recording its request.
    let client = certflow.nats().connect_as(None).await.expect("nats");
    let locks = ReissueLocks::attach(client).await.expect("locks");
    let crashed = LockHolder {
        reissue_id: "crashed-before-recording".into(),
        certificate_id: CertificateId::parse(&bystander.id).expect("id"),
    };
    assert_eq!(
        locks.take("example.org", &crashed).await.expect("take"),
        Reservation::Taken
    );
    // A fresh hold is respected, whatever the log says: it may be a request in flight.
    let err = reissues
        .request_reissue(reissue(&original.id, original_key()))
        .await
        .expect_err("busy while young");
    assert_eq!(reason(&err), "PRIMARY_DOMAIN_REISSUE_BUSY");
    tokio::time::sleep(Duration::from_millis(700)).await;
    // Older than any request takes, and the log shows no such reissue: taken over.
    let new = reissued(
        &mut certs,
        &mut reissues,
        reissue(&original.id, original_key()),
    )
    .await;
    assert_eq!(new.original_id, original.id);
    // And releases it when done.
    eventually(WAIT, || {
        let locks = locks.clone();
        async move {
            locks
                .holder("example.org")
                .await
                .ok()
                .filter(Option::is_none)
        }
    })
    .await
    .expect("released after completion");
}

/// A GeoTrust DV certificate for `domains` with no automatic validation, issued 10 days
/// ago (before certflow: recorded by an admin): a reissue with a new key needs domain
/// validation (REI-9).
async fn issued_days_ago(
    certs: &mut CertificateServiceClient<Authed>,
    domains: &[&str],
    change: impl FnOnce(&mut certflow_proto::v1::RecordLegacyCertificateRequest),
) -> Certificate {
    let now = support::unix_now();
    support::legacy_record(
        certs,
        domains,
        (now - 10 * 86_400, now + 180 * 86_400),
        change,
    )
    .await
}

fn generated(algorithm: KeyAlgorithm) -> Key {
    Key::GeneratedKey(GeneratedKey {
        key_algorithm: algorithm as i32,
        key_password: String::new(),
    })
}

#[tokio::test]
async fn rei9_a_new_key_after_three_days_waits_for_domain_validation_then_completes() {
    use certflow_testkit::dns::AuthoritativeDns;
    let dns = AuthoritativeDns::start(&["example.net"])
        .await
        .expect("dns");
    let dns_addr = dns.addr();
    let certflow = Certflow::start_with(move |config| {
        config.validation.probe.dns_servers = vec![dns_addr];
        config.validation.recheck_initial = Duration::from_millis(200);
        config.validation.recheck_max = Duration::from_millis(500);
    })
    .await
    .expect("start");
    let (mut certs, mut reissues) = clients(&certflow).await;
    let original = issued_days_ago(&mut certs, &["v.example.net"], |_| {}).await;
    let accepted = reissues
        .request_reissue(reissue(&original.id, generated(KeyAlgorithm::EccP256)))
        .await
        .expect("accepted")
        .into_inner();
    let pending = wait_until(&certs, &original.id, WAIT, "get reissue challenges", |c| {
        c.pending_reissue
            .as_ref()
            .is_some_and(|p| p.needs_validation && p.validation.is_some())
    })
    .await;
    let challenge = pending
        .pending_reissue
        .and_then(|p| p.validation)
        .and_then(|v| v.challenges.into_iter().next())
        .expect("a challenge");
    assert_eq!(challenge.dns_record_name, "_dnsauth.v.example.net");
    assert_eq!(pending.status, CertificateStatus::ReissuePending as i32);
    // Proven: the reissue completes.
    dns.set_txt("_dnsauth.v.example.net", &[&challenge.value])
        .await;
    wait_until(&certs, &original.id, WAIT, "complete its reissue", |c| {
        c.reissue_ids.contains(&accepted.new_certificate_id)
    })
    .await;
    let new = wait_for_status(
        &mut certs,
        &accepted.new_certificate_id,
        CertificateStatus::Issued,
    )
    .await;
    assert_eq!(new.not_after, original.not_after);
}

#[tokio::test]
async fn rei11_a_reissue_whose_validation_expires_fails_and_frees_its_reservation() {
    let certflow = Certflow::start_with(|config| {
        config.policy.validation_window = certflow_domain::Duration::seconds(2);
        config.validation.recheck_initial = Duration::from_millis(200);
        config.validation.recheck_max = Duration::from_millis(500);
    })
    .await
    .expect("start");
    let (mut certs, mut reissues) = clients(&certflow).await;
    let original = issued_days_ago(&mut certs, &["late.example.org"], |_| {}).await;
    let sibling = issue(&mut certs, dns_auto_dv("acme", "other.example.org")).await;
    reissues
        .request_reissue(reissue(&original.id, generated(KeyAlgorithm::EccP256)))
        .await
        .expect("accepted");
    // While it waits, the registrable domain is reserved.
    let err = reissues
        .request_reissue(reissue(&sibling.id, original_key()))
        .await
        .expect_err("busy");
    assert_eq!(reason(&err), "PRIMARY_DOMAIN_REISSUE_BUSY");
    let ended = wait_until(&certs, &original.id, WAIT, "end its reissue", |c| {
        c.pending_reissue.is_none()
    })
    .await;
    assert_eq!(ended.status, CertificateStatus::Issued as i32);
    assert!(ended.reissue_ids.is_empty());
    // Released: the sibling can be reissued now.
    let started = eventually(WAIT, || {
        let mut reissues = reissues.clone();
        let request = reissue(&sibling.id, original_key());
        async move { reissues.request_reissue(request).await.ok() }
    })
    .await;
    assert!(started.is_some(), "the reservation was released");
}

#[tokio::test]
async fn rev14_revoking_an_original_ends_its_pending_reissue_and_frees_the_reservation() {
    let certflow = Certflow::start().await.expect("start");
    let (mut certs, mut reissues) = clients(&certflow).await;
    let mut revocations = certflow.revocations().await.expect("client");
    // A TrustAsia 2-year wildcard with automatic validation: revoked at once (REV-10); its
    // file-validated name makes a new-key reissue wait for proof (REI-9).
    let original = issued_days_ago(&mut certs, &["*.wild.example.net", "x.example.net"], |r| {
        r.brand = certflow_proto::v1::Brand::Trustasia as i32;
        r.term_years = 2;
        r.validation_setup = vec![
            certflow_proto::v1::DomainValidationSetup {
                domain: "*.wild.example.net".into(),
                setup: certflow_proto::v1::ValidationSetup::DnsAuto as i32,
            },
            certflow_proto::v1::DomainValidationSetup {
                domain: "x.example.net".into(),
                setup: certflow_proto::v1::ValidationSetup::FileAuto as i32,
            },
        ];
    })
    .await;
    let sibling = issue(&mut certs, dns_auto_dv("acme", "y.example.net")).await;
    reissues
        .request_reissue(reissue(&original.id, generated(KeyAlgorithm::EccP256)))
        .await
        .expect("accepted");
    wait_until(&certs, &original.id, WAIT, "wait for validation", |c| {
        c.pending_reissue
            .as_ref()
            .is_some_and(|p| p.validation.is_some())
    })
    .await;
    revocations
        .request_revocation(RequestRevocationRequest {
            request_id: request_id(),
            certificate_id: original.id.clone(),
            reason: RevocationReason::Superseded as i32,
            ..Default::default()
        })
        .await
        .expect("revoked");
    let revoked = wait_for_status(&mut certs, &original.id, CertificateStatus::Revoked).await;
    assert!(revoked.pending_reissue.is_none(), "the reissue ended");
    assert!(revoked.reissue_ids.is_empty());
    let history = support::history_types(&certs, &original.id).await;
    assert!(history.iter().any(|t| t == "ReissueFailed"), "{history:?}");
    // Its reservation of example.net is free again.
    let started = eventually(WAIT, || {
        let mut reissues = reissues.clone();
        let request = reissue(&sibling.id, original_key());
        async move { reissues.request_reissue(request).await.ok() }
    })
    .await;
    assert!(started.is_some(), "the reservation was released");
}

#[tokio::test]
async fn rei10_changed_organisation_details_wait_for_a_reviewer() {
    use certflow_proto::v1::{
        ApproveReviewRequest, Level, NextReviewTaskRequest, RejectReviewRequest, ReviewRequestKind,
    };
    let certflow = Certflow::start().await.expect("start");
    let (mut certs, mut reissues) = clients(&certflow).await;
    let rita = certflow
        .reviews_as(&certflow.token("rita", "certflow-review", &["reviewer"]))
        .await
        .expect("client");
    let ov = |domain: &str| IssueCertificateRequest {
        level: Level::Ov as i32,
        enterprise_info: [("organization".to_string(), "Acme".to_string())].into(),
        ..dns_auto_dv("acme", domain)
    };
    let renamed = |id: &str| RequestReissueRequest {
        enterprise_info: [("organization".to_string(), "Acme Holdings".to_string())].into(),
        ..reissue(id, original_key())
    };
    let next_task = || {
        let rita = rita.clone();
        async move {
            eventually(WAIT, || {
                let mut rita = rita.clone();
                async move {
                    let next = rita
                        .next_review_task(NextReviewTaskRequest {})
                        .await
                        .ok()?
                        .into_inner();
                    Some((next.task?, next.lease))
                }
            })
            .await
            .expect("a review task")
        }
    };

    // Approved: the reissue completes with the new details.
    let approved = issue(&mut certs, ov("ov1.example.com")).await;
    let accepted = reissues
        .request_reissue(renamed(&approved.id))
        .await
        .expect("accepted")
        .into_inner();
    let (task, lease) = next_task().await;
    assert_eq!(task.kind, ReviewRequestKind::Reissue as i32);
    assert!(
        task.description.contains("Acme Holdings"),
        "{}",
        task.description
    );
    rita.clone()
        .approve_review(ApproveReviewRequest {
            request_id: request_id(),
            task_id: task.task_id.clone(),
            comment: "the company was renamed".into(),
            lease,
        })
        .await
        .expect("approved");
    wait_until(&certs, &approved.id, WAIT, "complete its reissue", |c| {
        c.reissue_ids.contains(&accepted.new_certificate_id)
    })
    .await;
    let new = wait_for_status(
        &mut certs,
        &accepted.new_certificate_id,
        CertificateStatus::Issued,
    )
    .await;
    assert_eq!(
        new.enterprise_info.get("organization").map(String::as_str),
        Some("Acme Holdings")
    );

    // Rejected: the reissue fails and the original is issued as it was.
    let rejected = issue(&mut certs, ov("ov2.example.net")).await;
    reissues
        .request_reissue(renamed(&rejected.id))
        .await
        .expect("accepted");
    let (task, lease) = next_task().await;
    rita.clone()
        .reject_review(RejectReviewRequest {
            request_id: request_id(),
            task_id: task.task_id,
            comment: "no proof of the new name".into(),
            lease,
        })
        .await
        .expect("rejected");
    let ended = wait_until(&certs, &rejected.id, WAIT, "end its reissue", |c| {
        c.pending_reissue.is_none()
    })
    .await;
    assert!(ended.reissue_ids.is_empty());
    assert_eq!(
        ended
            .enterprise_info
            .get("organization")
            .map(String::as_str),
        Some("Acme")
    );
    let history = support::history_types(&certs, &rejected.id).await;
    assert!(history.iter().any(|t| t == "ReissueFailed"), "{history:?}");
}
