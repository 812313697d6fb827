//! Real X.509 issuance through the gateway: certificates openssl accepts, customer CSRs,
//! and generated private keys that stay sealed in the key store.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_nats::jetstream;
use certflow_proto::v1::{Certificate, IssueCertificateRequest, KeyAlgorithm};
use certflow_testkit::Certflow;
use tonic::Code;

use crate::support::{self, dns_auto_dv, openssl, reason};

/// `openssl verify` of the certificate against the chain it came with.
fn verify(dir: &Path, cert: &Certificate) -> (bool, String) {
    let blocks: Vec<String> = cert
        .chain_pem
        .split_inclusive("-----END CERTIFICATE-----\n")
        .map(str::to_string)
        .collect();
    assert_eq!(blocks.len(), 2, "intermediate and root: {}", cert.chain_pem);
    let write = |name: &str, body: &str| {
        let path = dir.join(name);
        std::fs::write(&path, body).expect("write");
        path.display().to_string()
    };
    let intermediate = write("intermediate.pem", &blocks[0]);
    let root = write("root.pem", &blocks[1]);
    let leaf = write("leaf.pem", &cert.pem);
    openssl(&[
        "verify",
        "-CAfile",
        &root,
        "-untrusted",
        &intermediate,
        &leaf,
    ])
}

#[tokio::test]
async fn generated_key_certificates_verify_with_openssl() {
    let certflow = Certflow::start().await.expect("start");
    let mut certs = certflow.certificates().await.expect("client");
    let dir = tempfile::tempdir().expect("dir");
    for algorithm in [KeyAlgorithm::EccP256, KeyAlgorithm::Rsa2048] {
        let cert = support::issue(
            &mut certs,
            IssueCertificateRequest {
                key_algorithm: algorithm as i32,
                domains: vec!["www.example.com".into(), "example.com".into()],
                validation_setup: vec![],
                ..dns_auto_dv("acme", "www.example.com")
            },
        )
        .await;
        assert!(cert.private_key_held);
        assert!(!cert.serial_number.is_empty());
        let (ok, text) = verify(dir.path(), &cert);
        assert!(ok, "{algorithm:?}: {text}");
        let leaf = dir.path().join("leaf.pem").display().to_string();
        let (_, text) = openssl(&["x509", "-noout", "-text", "-in", &leaf]);
        assert!(
            text.contains("DNS:www.example.com, DNS:example.com"),
            "{text}"
        );
        // CA-4: the distribution point is one shard of GeoTrust's CRL.
        let (url, partition) = support::distribution_point(&cert);
        assert!(url.contains("/crl/geotrust/"), "{url}");
        assert!(text.contains(&url), "{text}");
        assert!(matches!(partition.shard, certflow_ca::Shard::Numbered(n) if n < 16));
    }
}

#[tokio::test]
async fn rei7_a_csr_key_is_certified_and_a_bad_csr_refused() {
    let certflow = Certflow::start().await.expect("start");
    let mut certs = certflow.certificates().await.expect("client");
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).expect("key");
    let csr = rcgen::CertificateParams::new(vec!["csr.example.com".to_string()])
        .expect("params")
        .serialize_request(&key)
        .expect("csr")
        .pem()
        .expect("pem");
    let cert = support::issue(
        &mut certs,
        IssueCertificateRequest {
            csr_pem: csr.clone(),
            key_algorithm: 0,
            ..dns_auto_dv("acme", "csr.example.com")
        },
    )
    .await;
    assert!(!cert.private_key_held, "the customer holds the key");
    assert_eq!(cert.key_algorithm, KeyAlgorithm::EccP384 as i32);
    let dir = tempfile::tempdir().expect("dir");
    assert!(verify(dir.path(), &cert).0);
    // The certificate certifies the CSR's key.
    let key_pem = dir.path().join("key.pem");
    std::fs::write(&key_pem, key.serialize_pem()).expect("write");
    let (_, from_key) = openssl(&["pkey", "-in", &key_pem.display().to_string(), "-pubout"]);
    let (_, from_cert) = openssl(&[
        "x509",
        "-noout",
        "-pubkey",
        "-in",
        &dir.path().join("leaf.pem").display().to_string(),
    ]);
    assert_eq!(from_key, from_cert);

    let mut tampered = csr.clone().into_bytes();
    let middle = tampered.len() / 2;
    tampered[middle] = if tampered[middle] == b'A' { b'B' } else { b'A' };
    for bad in [
        String::from_utf8(tampered).expect("ascii"),
        "garbage".into(),
    ] {
        let err = certs
            .issue_certificate(IssueCertificateRequest {
                csr_pem: bad,
                key_algorithm: 0,
                ..dns_auto_dv("acme", "csr.example.com")
            })
            .await
            .expect_err("refused");
        assert_eq!(err.code(), Code::InvalidArgument);
        assert_eq!(reason(&err), "CSR_INVALID");
    }
}

/// Every message of `stream`, payload and headers, as text.
async fn stream_text(js: &jetstream::Context, stream: &str) -> String {
    let stream = js.get_stream(stream).await.expect("stream");
    let last = stream.get_info().await.expect("info").state.last_sequence;
    let mut text = String::new();
    for sequence in 1..=last {
        if let Ok(message) = stream.get_raw_message(sequence).await {
            text.push_str(&String::from_utf8_lossy(&message.payload));
            text.push_str(&format!("{:?}", message.headers));
        }
    }
    text
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut lines) = self.0.lock() {
            lines.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Whether the log subscriber of the test below records anything. It has to be the global
/// one (the services log from every thread), and it outlives the test in a process that runs
/// every area's tests (`cargo test`): off again when the test ends, or the tests after it
/// would all log at TRACE into its buffer.
static CAPTURING: AtomicBool = AtomicBool::new(false);

/// Turns capturing off when dropped, however the test ends.
struct Capturing;

impl Drop for Capturing {
    fn drop(&mut self) {
        CAPTURING.store(false, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn generated_keys_and_passwords_never_appear_in_events_or_logs() {
    use tracing_subscriber::filter::{FilterExt, filter_fn};
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{Layer, fmt, registry};

    let logs = Captured::default();
    let writer = logs.clone();
    CAPTURING.store(true, Ordering::SeqCst);
    let _capturing = Capturing;
    // Everything at TRACE, with the filter certd itself runs with, while the test runs.
    let _ = registry()
        .with(
            fmt::layer()
                .with_writer(move || writer.clone())
                .with_filter(
                    filter_fn(|_| CAPTURING.load(Ordering::Relaxed))
                        .and(certd::log_filter("trace")),
                ),
        )
        .try_init();

    let certflow = Certflow::start().await.expect("start");
    let mut certs = certflow.certificates().await.expect("client");
    let password = "correct-horse-battery-staple-17";
    let cert = support::issue(
        &mut certs,
        IssueCertificateRequest {
            key_password: password.into(),
            key_algorithm: KeyAlgorithm::EccP256 as i32,
            ..dns_auto_dv("acme", "secret.example.com")
        },
    )
    .await;
    assert!(cert.private_key_held);
    support::wait_for_status(
        &mut certs,
        &cert.id,
        certflow_proto::v1::CertificateStatus::Issued,
    )
    .await;

    // The key as the key store holds it: encrypted with the password, sealed with the KEK.
    let operator = certflow
        .nats
        .connect_as(Some("operator"))
        .await
        .expect("operator");
    let keys = certflow_store::KeyStore::attach(operator.clone())
        .await
        .expect("key store");
    let kek = certflow.kek().expect("kek");
    let js = jetstream::new(operator);
    let events = stream_text(&js, "CERTFLOW_EVENTS").await;
    let private_key_id = events
        .split("key-")
        .nth(1)
        .map(|rest| format!("key-{}", &rest[..36]))
        .expect("the event names the key record");
    let stored = certflow_issuance::open_record(&keys, &kek, &private_key_id)
        .await
        .expect("opens")
        .expect("stored");
    let stored = String::from_utf8(stored).expect("PEM");
    assert!(stored.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
    let dir = tempfile::tempdir().expect("dir");
    let encrypted = dir.path().join("key.pem");
    std::fs::write(&encrypted, &stored).expect("write");
    let (ok, plain) = openssl(&[
        "pkey",
        "-in",
        &encrypted.display().to_string(),
        "-passin",
        &format!("pass:{password}"),
    ]);
    assert!(ok, "the password opens the stored key: {plain}");
    let body_line = |pem: &str| {
        pem.lines()
            .find(|l| !l.starts_with("-----") && l.len() > 40)
            .map(str::to_string)
            .expect("a base64 line")
    };
    let secrets = [password.to_string(), body_line(&plain), body_line(&stored)];

    let outcomes = stream_text(&js, "CERTFLOW_OUTCOMES").await;
    let logged = String::from_utf8_lossy(&logs.0.lock().expect("logs")).to_string();
    assert!(!logged.is_empty(), "logs were captured");
    for secret in &secrets {
        assert!(
            !events.contains(secret.as_str()),
            "a secret is in the events"
        );
        assert!(
            !outcomes.contains(secret.as_str()),
            "a secret is in the outcomes"
        );
        let line = logged
            .lines()
            .find(|line| line.contains(secret.as_str()))
            .map(|line| line.chars().take(300).collect::<String>());
        assert_eq!(line, None, "a secret is in the logs");
    }
}

#[tokio::test]
async fn a_refused_issue_leaves_no_key_behind() {
    let certflow = Certflow::start().await.expect("start");
    let mut certs = certflow.certificates().await.expect("client");
    let operator = certflow
        .nats
        .connect_as(Some("operator"))
        .await
        .expect("operator");
    let js = jetstream::new(operator);
    let stored = || async {
        js.get_stream("CERTFLOW_KEYS")
            .await
            .expect("stream")
            .get_info()
            .await
            .expect("info")
            .state
            .messages
    };
    let before = stored().await;
    let err = certs
        .issue_certificate(IssueCertificateRequest {
            term_years: 4,
            ..dns_auto_dv("acme", "refused.example.com")
        })
        .await
        .expect_err("refused by the rules after the key was made");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(stored().await, before, "the unused key was shredded");
}

#[tokio::test]
async fn a_ca_from_configuration_signs_its_brand() {
    let dir = tempfile::tempdir().expect("dir");
    let (_, mut materials) = certflow_ca::BuiltinCa::generate(
        &[certflow_domain::Brand::GeoTrust],
        certflow_ca::CaAlgorithm::Ecc,
        "http://crl.example.net",
        certflow_runtime::now(),
    )
    .expect("operator's CA");
    let material = materials.remove(0);
    let brand_dir = dir.path().join("geotrust");
    std::fs::create_dir_all(&brand_dir).expect("dir");
    std::fs::write(brand_dir.join("root.crt"), &material.root_cert_pem).expect("write");
    std::fs::write(
        brand_dir.join("intermediate.crt"),
        &material.intermediate_cert_pem,
    )
    .expect("write");
    std::fs::write(
        brand_dir.join("intermediate.key"),
        &material.intermediate_key_pem,
    )
    .expect("write");
    let ca_dir = dir.path().to_path_buf();

    let certflow = Certflow::start_with(|config| config.ca_dir = Some(ca_dir))
        .await
        .expect("start");
    let mut certs = certflow.certificates().await.expect("client");
    let cert = support::issue(&mut certs, dns_auto_dv("acme", "op.example.com")).await;
    assert!(cert.chain_pem.starts_with(&material.intermediate_cert_pem));
    let work = tempfile::tempdir().expect("dir");
    let (ok, text) = verify(work.path(), &cert);
    assert!(ok, "{text}");
    let root = std::fs::read_to_string(work.path().join("root.pem")).expect("root");
    assert_eq!(
        root, material.root_cert_pem,
        "chains to the operator's root"
    );
}

#[tokio::test]
async fn dnspod_gm_certificates_are_sm2_under_an_sm2_intermediate() {
    let certflow = Certflow::start().await.expect("start");
    let mut certs = certflow.certificates().await.expect("client");
    let cert = support::issue(
        &mut certs,
        IssueCertificateRequest {
            brand: certflow_proto::v1::Brand::Dnspod as i32,
            key_algorithm: KeyAlgorithm::Sm2 as i32,
            ..dns_auto_dv("acme", "gm.example.cn")
        },
    )
    .await;
    assert_eq!(cert.key_algorithm, KeyAlgorithm::Sm2 as i32);
    let dir = tempfile::tempdir().expect("dir");
    let (ok, text) = verify(dir.path(), &cert);
    assert!(ok, "{text}");
    let leaf = dir.path().join("leaf.pem").display().to_string();
    let (_, text) = openssl(&["x509", "-noout", "-text", "-in", &leaf]);
    assert!(text.contains("SM2"), "{text}");
    let (url, partition) = support::distribution_point(&cert);
    assert!(
        url.contains("/crl/dnspod-sm2/") && text.contains(&url),
        "{text}"
    );
    let certflow_ca::Shard::Numbered(shard) = partition.shard else {
        panic!("{url} names no shard");
    };

    // Its CA publishes its own CRL, signed with SM2.
    let channel = certflow.channel().await.expect("channel");
    let crl = certflow_testkit::eventually(support::CATCH_UP, || {
        let mut crls =
            certflow_proto::v1::crl_service_client::CrlServiceClient::new(channel.clone());
        async move {
            Some(
                crls.get_crl(certflow_proto::v1::GetCrlRequest {
                    brand: certflow_proto::v1::Brand::Dnspod as i32,
                    sm2: true,
                    shard: Some(shard),
                })
                .await
                .ok()?
                .into_inner(),
            )
        }
    })
    .await
    .expect("the SM2 CA's CRL");
    let der = dir.path().join("sm2.crl");
    std::fs::write(&der, &crl.der).expect("write");
    let (ok, text) = openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        &der.display().to_string(),
        "-noout",
        "-CAfile",
        &dir.path().join("intermediate.pem").display().to_string(),
    ]);
    assert!(ok && text.contains("verify OK"), "{text}");
}

#[tokio::test]
async fn ca3_a_certificate_signed_now_is_valid_as_long_as_the_term_and_the_brs_allow() {
    let certflow = Certflow::start().await.expect("start");
    let mut certs = certflow.certificates().await.expect("client");
    let before = support::unix_now();
    let cert = support::issue(&mut certs, dns_auto_dv("acme", "term.example.com")).await;
    let not_before = cert.not_before.as_ref().expect("not_before").seconds;
    let not_after = cert.not_after.as_ref().expect("not_after").seconds;
    assert!(
        (before - 1..=before + 5).contains(&not_before),
        "starts now"
    );
    let days = 86_400;
    let maximum = certflow_domain::validity::br_maximum(
        certflow_domain::Timestamp::from_unix_seconds(before),
    )
    .as_millis()
        / 1_000;
    // BR 1.6.1: the period counts both ends, so notAfter is a second short of the maximum.
    assert_eq!(
        not_after - not_before + 1,
        maximum,
        "{} days",
        maximum / days
    );
    // The signed certificate says the same.
    let parsed = x509_parser::pem::parse_x509_pem(cert.pem.as_bytes())
        .expect("PEM")
        .1
        .parse_x509()
        .expect("X.509")
        .validity()
        .clone();
    assert_eq!(parsed.not_after.timestamp(), not_after);

    let err = certs
        .issue_certificate(IssueCertificateRequest {
            not_after: Some(prost_types::Timestamp {
                seconds: before + 100 * 365 * days,
                nanos: 0,
            }),
            ..dns_auto_dv("acme", "century.example.com")
        })
        .await
        .expect_err("a century is refused");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(reason(&err), "VALIDITY_NOT_ALLOWED");
}

#[tokio::test]
async fn ca3_only_an_admin_records_a_certificate_from_before_certflow_and_its_history_says_so() {
    let certflow = Certflow::start().await.expect("start");
    let mut admin = certflow.certificates().await.expect("client");
    let customer = certflow.token("alice", "acme", &["customer"]);
    let mut alice = certflow
        .certificates_as(Some(&customer))
        .await
        .expect("client");
    // 2019 to 2021: issued and ended long before certflow.
    let dates = (1_560_000_000, 1_620_000_000);
    let err = alice
        .record_legacy_certificate(certflow_proto::v1::RecordLegacyCertificateRequest {
            request_id: support::request_id(),
            account: "acme".into(),
            brand: certflow_proto::v1::Brand::Geotrust as i32,
            term_years: 1,
            pem: support::self_signed_pem("legacy.example.com"),
            ..Default::default()
        })
        .await
        .expect_err("customers may not");
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(reason(&err), "ROLE_REQUIRED");

    let recorded = support::legacy_record(&mut admin, &["legacy.example.com"], dates, |_| {}).await;
    assert_eq!(
        recorded.not_before.as_ref().map(|t| t.seconds),
        Some(dates.0)
    );
    assert_eq!(
        recorded.status,
        certflow_proto::v1::CertificateStatus::Expired as i32
    );
    let history = admin
        .get_certificate_history(certflow_proto::v1::GetCertificateHistoryRequest {
            id: recorded.id.clone(),
        })
        .await
        .expect("history")
        .into_inner()
        .events;
    let summary = &history.first().expect("an event").summary;
    assert!(
        summary.contains("recorded by an administrator: issued before certflow"),
        "{summary}"
    );
    // REV-6: issued before the cut-off, revoked by support only.
    let mut revocations = certflow
        .revocations_as(Some(&customer))
        .await
        .expect("client");
    let old = support::legacy_record(
        &mut admin,
        &["cutoff.example.com"],
        (1_560_000_000, support::unix_now() + 30 * 86_400),
        |_| {},
    )
    .await;
    let err = revocations
        .request_revocation(certflow_proto::v1::RequestRevocationRequest {
            request_id: support::request_id(),
            certificate_id: old.id.clone(),
            reason: certflow_proto::v1::RevocationReason::Superseded as i32,
            ..Default::default()
        })
        .await
        .expect_err("support only");
    assert_eq!(reason(&err), "LEGACY_CERT_CONTACT_SUPPORT");
}
