//! REV-16: a key-compromise revocation blocks the public key. Every other live certificate
//! with that key is revoked with reason keyCompromise, and the key is never certified again.

use std::collections::BTreeMap;

use certflow_bus::CommandMeta;
use certflow_domain::{
    Brand, CertificateId, CertificateIssued, Event, KeyAlgorithm, Level, Role, Timestamp, X509Facts,
};
use certflow_proto::v1::{
    CertificateStatus, IssueCertificateRequest, RequestRevocationRequest, RevocationCause,
    RevocationReason, UploadCertificateRequest,
};
use certflow_store::{EventStore, StoreConfig};
use tonic::Code;

use crate::support::{dns_auto_dv, issue, reason, request_id, started, wait_for_status};

fn csr(key: &rcgen::KeyPair, domain: &str) -> String {
    rcgen::CertificateParams::new(vec![domain.to_string()])
        .expect("params")
        .serialize_request(key)
        .expect("csr")
        .pem()
        .expect("pem")
}

fn with_csr(account: &str, domain: &str, key: &rcgen::KeyPair) -> IssueCertificateRequest {
    IssueCertificateRequest {
        csr_pem: csr(key, domain),
        ..dns_auto_dv(account, domain)
    }
}

#[tokio::test]
async fn rev16_key_compromise_revokes_every_certificate_with_the_key_and_blocks_it() {
    let (certflow, mut certs, mut revocations) = started().await;
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let compromised = issue(&mut certs, with_csr("acme", "a.example.com", &key)).await;
    let sibling = issue(&mut certs, with_csr("acme", "b.example.com", &key)).await;
    let elsewhere = issue(&mut certs, with_csr("globex", "c.example.org", &key)).await;
    let unrelated = issue(&mut certs, dns_auto_dv("acme", "d.example.com")).await;
    assert_eq!(compromised.public_key_sha256, elsewhere.public_key_sha256);

    revocations
        .request_revocation(RequestRevocationRequest {
            request_id: request_id(),
            certificate_id: compromised.id.clone(),
            reason: RevocationReason::KeyCompromise as i32,
            ..Default::default()
        })
        .await
        .expect("revoked");

    for other in [&sibling, &elsewhere] {
        let revoked = wait_for_status(&mut certs, &other.id, CertificateStatus::Revoked).await;
        let revocation = revoked.revocation.expect("revocation");
        assert_eq!(revocation.reason, RevocationReason::KeyCompromise as i32);
        assert_eq!(revocation.cause, RevocationCause::KeyCompromised as i32);
        assert_eq!(revocation.cause_certificate_id, compromised.id);
    }
    wait_for_status(&mut certs, &unrelated.id, CertificateStatus::Issued).await;

    // Later CSRs and uploads with the key are refused.
    let err = certs
        .issue_certificate(with_csr("acme", "e.example.com", &key))
        .await
        .expect_err("blocked");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(reason(&err), "KEY_BLOCKED");
    let pem = rcgen::CertificateParams::new(vec!["f.example.com".to_string()])
        .expect("params")
        .self_signed(&key)
        .expect("certificate")
        .pem();
    let err = certs
        .upload_certificate(UploadCertificateRequest {
            request_id: request_id(),
            account: "acme".into(),
            pem,
            private_key_pem: String::new(),
        })
        .await
        .expect_err("blocked");
    assert_eq!(reason(&err), "KEY_BLOCKED");
    // A new key is fine.
    let fresh = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    issue(&mut certs, with_csr("acme", "e.example.com", &fresh)).await;

    // A certificate recorded with the key after the check but before the block landed (the
    // race the index closes) is found and revoked too.
    let client = certflow.nats().connect_as(None).await.expect("nats");
    let store = EventStore::attach(client, StoreConfig::default())
        .await
        .expect("store");
    let raced = CertificateId::parse("raced-1").expect("id");
    let now = Timestamp::from_unix_millis(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis() as i64,
    );
    let issued = Event::Issued(CertificateIssued {
        id: raced.clone(),
        account: "acme".into(),
        brand: Brand::GeoTrust,
        level: Level::Dv,
        paid: true,
        algorithm: KeyAlgorithm::EccP256,
        domains: vec![certflow_domain::DomainName::parse("g.example.com").expect("name")],
        term_years: 1,
        issued_at: now,
        not_before: now,
        not_after: now.plus(certflow_domain::Duration::days(90)),
        validation_setup: BTreeMap::new(),
        renewal_ordered: false,
        x509: Some(X509Facts {
            serial_number: "01".into(),
            public_key_sha256: compromised.public_key_sha256.clone(),
            pem: String::new(),
            chain_pem: String::new(),
            private_key_id: None,
            crl_shard: Some(0),
        }),
        original: None,
        enterprise_info: BTreeMap::new(),
        legacy: false,
    });
    let meta = CommandMeta::for_request(
        &request_id(),
        "raced",
        certflow_domain::Actor {
            subject: "ops".into(),
            account: "platform".into(),
            roles: vec![Role::Admin],
        },
    );
    store
        .append(&raced, 0, &[issued], &meta)
        .await
        .expect("append");
    let revoked = wait_for_status(&mut certs, raced.as_str(), CertificateStatus::Revoked).await;
    assert_eq!(
        revoked.revocation.map(|r| r.cause_certificate_id),
        Some(compromised.id.clone())
    );
}
