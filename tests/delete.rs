//! DEL-1, DEL-2: deleting certificates, and erasing their keys.

use certflow_proto::v1::{
    CertificateStatus, DeleteCertificateRequest, GetCertificateRequest, ListCertificatesRequest,
    RequestRevocationRequest, RevocationReason,
};
use certflow_testkit::{Certflow, eventually};
use tonic::Code;

use crate::support::{self, CATCH_UP, dns_auto_dv, issue, reason, request_id, started};

fn delete(id: &str) -> DeleteCertificateRequest {
    DeleteCertificateRequest {
        request_id: request_id(),
        id: id.into(),
    }
}

#[tokio::test]
async fn del1_del2_revoked_certificates_are_deleted_and_their_keys_erased() {
    let (certflow, mut certs, mut revocations) = started().await;
    let cert = issue(&mut certs, dns_auto_dv("acme", "del.example.com")).await;
    assert!(cert.private_key_held);

    let err = certs
        .delete_certificate(delete(&cert.id))
        .await
        .expect_err("valid");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(reason(&err), "CERT_NOT_DELETABLE");

    revocations
        .request_revocation(RequestRevocationRequest {
            request_id: request_id(),
            certificate_id: cert.id.clone(),
            reason: RevocationReason::CessationOfOperation as i32,
            description: String::new(),
            validation_method: 0,
        })
        .await
        .expect("revoked");
    let deleted = certs
        .delete_certificate(delete(&cert.id))
        .await
        .expect("a revoked certificate can be deleted")
        .into_inner()
        .certificate
        .expect("certificate");
    assert_eq!(deleted.status, CertificateStatus::Deleted as i32);

    // Gone from lookups and lists.
    let gone = eventually(CATCH_UP, || {
        let mut certs = certs.clone();
        let id = cert.id.clone();
        async move {
            let err = certs
                .get_certificate(GetCertificateRequest { id })
                .await
                .err()?;
            (err.code() == Code::NotFound).then_some(())
        }
    })
    .await;
    assert!(gone.is_some(), "a deleted certificate is NOT_FOUND");
    let listed = certs
        .list_certificates(ListCertificatesRequest::default())
        .await
        .expect("list")
        .into_inner()
        .certificates;
    assert!(listed.iter().all(|c| c.id != cert.id));

    // The history stays in the event log.
    let operator = certflow
        .nats
        .connect_as(Some("operator"))
        .await
        .expect("operator");
    let store = certflow_store::EventStore::attach(operator.clone(), Default::default())
        .await
        .expect("store");
    let id = certflow_domain::CertificateId::parse(&cert.id).expect("id");
    let history = store.history(&id).await.expect("history");
    let last = history.last().expect("events");
    assert_eq!(
        last.events.last().map(|e| e.type_name()),
        Some("CertificateDeleted")
    );

    // And the key is erased.
    let key_id = history
        .iter()
        .find_map(|batch| match batch.events.first() {
            Some(certflow_domain::Event::Issued(issued)) => {
                issued.x509.as_ref().and_then(|x| x.private_key_id.clone())
            }
            _ => None,
        })
        .expect("the issue event names the key");
    let keys = certflow_store::KeyStore::attach(operator)
        .await
        .expect("key store");
    let kek = certflow.kek().expect("kek");
    let erased = eventually(CATCH_UP, || {
        let keys = keys.clone();
        let kek = kek.clone();
        let key_id = key_id.clone();
        async move {
            certflow_issuance::open_record(&keys, &kek, &key_id)
                .await
                .ok()?
                .is_none()
                .then_some(())
        }
    })
    .await;
    assert!(erased.is_some(), "the deleted certificate's key is erased");

    let err = certs
        .delete_certificate(delete(&cert.id))
        .await
        .expect_err("gone");
    assert_eq!(err.code(), Code::NotFound);
}

#[tokio::test]
async fn del1_uploaded_certificates_can_be_deleted_at_any_time() {
    let certflow = Certflow::start().await.expect("start");
    let mut certs = certflow.certificates().await.expect("client");
    let uploaded = support::upload(&mut certs, support::self_signed_pem("mine.example.org")).await;
    certs
        .delete_certificate(delete(&uploaded.id))
        .await
        .expect("an uploaded certificate can always be deleted");
}
