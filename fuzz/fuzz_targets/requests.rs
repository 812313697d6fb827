//! Every command a service decodes from the bus, and the checks it runs on the fields
//! before the domain sees them: nothing a caller sends may panic a service.
#![no_main]

use certflow_domain::{CertificateId, DomainName, RevocationReason};
use certflow_proto::bus::v1::{Reply, StagedDocumentUpload};
use certflow_proto::convert;
use certflow_proto::v1::{
    ApproveReviewRequest, BulkRevokeRequest, CancelRevocationRequest, CheckValidationRequest,
    DeleteCertificateRequest, DownloadCertificateRequest, GetCertificateHistoryRequest,
    GetCertificateRequest, GetCrlRequest, GetDocumentTemplateRequest, GetRevocationDocumentRequest,
    IssueCertificateRequest, ListCertificatesRequest, OrderRenewalRequest, RejectReviewRequest,
    RequestReissueRequest, RequestRevocationRequest, UploadCertificateRequest,
    UploadRevocationDocumentRequest, request_reissue_request::Key,
};
use libfuzzer_sys::fuzz_target;
use prost::Message;

fn id(text: &str) {
    let _ = CertificateId::parse(text);
}

fn domains(names: &[String]) {
    for name in names {
        let _ = DomainName::parse(name);
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = IssueCertificateRequest::decode(data) {
        let _ = convert::brand_from_proto(r.brand);
        let _ = convert::level_from_proto(r.level);
        let _ = convert::algorithm_from_proto(r.key_algorithm);
        let _ = convert::setups_from_proto(&r.validation_setup);
        let _ = convert::enterprise_info_from_request(&r.enterprise_info);
        for t in r.not_before.iter().chain(&r.not_after) {
            let _ = convert::timestamp_from_request("not_before", t);
        }
        domains(&r.domains);
        if !r.csr_pem.is_empty() {
            let _ = certflow_ca::csr::inspect(&r.csr_pem);
        }
    }
    if let Ok(r) = RequestRevocationRequest::decode(data) {
        id(&r.certificate_id);
        let _ = RevocationReason::from_rfc5280_code(r.reason);
        let _ = convert::method_from_proto(r.validation_method);
    }
    if let Ok(r) = RequestReissueRequest::decode(data) {
        id(&r.certificate_id);
        domains(&r.domains);
        let _ = convert::enterprise_info_from_request(&r.enterprise_info);
        let _ = convert::method_from_proto(r.validation_method);
        match &r.key {
            Some(Key::GeneratedKey(g)) => {
                let _ = convert::algorithm_from_proto(g.key_algorithm);
            }
            Some(Key::CsrPem(pem)) => {
                let _ = certflow_ca::csr::inspect(pem);
            }
            _ => {}
        }
    }
    if let Ok(r) = BulkRevokeRequest::decode(data) {
        r.certificate_ids.iter().for_each(|i| id(i));
        let _ = RevocationReason::from_rfc5280_code(r.reason);
    }
    if let Ok(r) = ListCertificatesRequest::decode(data) {
        let _ = convert::status_from_proto(r.status);
        id(&r.page_token);
    }
    if let Ok(r) = DownloadCertificateRequest::decode(data) {
        id(&r.id);
    }
    if let Ok(r) = GetCrlRequest::decode(data) {
        let _ = convert::brand_from_proto(r.brand);
    }
    if let Ok(r) = UploadCertificateRequest::decode(data) {
        let _ = certflow_issuance::upload::check_upload(
            &r.pem,
            Some(r.private_key_pem.as_str()).filter(|k| !k.is_empty()),
            certflow_domain::Timestamp::from_unix_millis(1_800_000_000_000),
        );
    }
    if let Ok(r) = ApproveReviewRequest::decode(data)
        && let Some(certificate) = certflow_domain::review::task_certificate(&r.task_id)
    {
        id(certificate);
    }
    if let Ok(r) = RejectReviewRequest::decode(data)
        && let Some(certificate) = certflow_domain::review::task_certificate(&r.task_id)
    {
        id(certificate);
    }
    if let Ok(r) = StagedDocumentUpload::decode(data) {
        id(&r.certificate_id);
    }
    if let Ok(r) = UploadRevocationDocumentRequest::decode(data) {
        id(&r.certificate_id);
        let _ = certflow_review::sniff(&r.content);
    }
    // The commands and queries that name one certificate.
    let named = [
        DeleteCertificateRequest::decode(data).map(|r| r.id),
        OrderRenewalRequest::decode(data).map(|r| r.id),
        GetCertificateRequest::decode(data).map(|r| r.id),
        GetCertificateHistoryRequest::decode(data).map(|r| r.id),
        CancelRevocationRequest::decode(data).map(|r| r.certificate_id),
        CheckValidationRequest::decode(data).map(|r| r.certificate_id),
        GetDocumentTemplateRequest::decode(data).map(|r| r.certificate_id),
        GetRevocationDocumentRequest::decode(data).map(|r| r.certificate_id),
    ];
    for certificate in named.into_iter().flatten() {
        id(&certificate);
    }
    let _ = Reply::decode(data);
});
