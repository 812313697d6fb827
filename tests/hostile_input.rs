//! GEN-5 as a table: well over a hundred bad gRPC inputs (wrong enums, empty and huge fields,
//! malformed and unknown ids, malformed PEM and CSRs, oversized messages), each answered
//! with its documented status and reason, and none of them changing anything.

use std::collections::BTreeMap;

use async_nats::jetstream;
use certflow_proto::v1::{
    ApproveReviewRequest, Brand, BulkRevokeRequest, CancelRevocationRequest,
    CheckValidationRequest, DeleteCertificateRequest, DomainValidationSetup,
    DownloadCertificateRequest, GeneratedKey, GetCertificateHistoryRequest, GetCertificateRequest,
    GetCrlRequest, GetDocumentTemplateRequest, GetRevocationDocumentRequest,
    IssueCertificateRequest, KeyAlgorithm, Level, ListCertificatesRequest, OrderRenewalRequest,
    OriginalKey, RejectReviewRequest, RequestReissueRequest, RequestRevocationRequest,
    RevocationReason, UploadCertificateRequest, UploadRevocationDocumentRequest, ValidationSetup,
    certificate_service_client::CertificateServiceClient, crl_service_client::CrlServiceClient,
    reissue_service_client::ReissueServiceClient, request_reissue_request::Key,
    review_service_client::ReviewServiceClient, revocation_service_client::RevocationServiceClient,
};
use certflow_testkit::Authed;
use tonic::Code;
use tonic_types::StatusExt;

use crate::support::{
    self, dns_auto_dv, issue, request_id, self_signed_pem, started_without_rate_limits,
};

/// One call of the table, as a client would send it.
#[derive(Debug, Clone)]
enum Call {
    Issue(IssueCertificateRequest),
    Upload(UploadCertificateRequest),
    Get(GetCertificateRequest),
    List(ListCertificatesRequest),
    History(GetCertificateHistoryRequest),
    Download(DownloadCertificateRequest),
    Delete(DeleteCertificateRequest),
    Renew(OrderRenewalRequest),
    Crl(GetCrlRequest),
    Revoke(RequestRevocationRequest),
    Check(CheckValidationRequest),
    Cancel(CancelRevocationRequest),
    /// Sent with an admin's token.
    Bulk(BulkRevokeRequest),
    Reissue(RequestReissueRequest),
    UploadDocument(UploadRevocationDocumentRequest),
    Template(GetDocumentTemplateRequest),
    Document(GetRevocationDocumentRequest),
    /// Sent with a reviewer's token.
    Approve(ApproveReviewRequest),
    /// Sent with a reviewer's token.
    Reject(RejectReviewRequest),
}

/// A bad input and what the gateway documents for it.
struct Case {
    name: String,
    call: Call,
    code: Code,
    /// The `ErrorInfo` reason; `None` where gRPC itself refuses before certflow sees the
    /// call (a message over the 4 MiB limit carries no `ErrorInfo`).
    reason: Option<&'static str>,
}

fn case(name: impl Into<String>, call: Call, code: Code, reason: &'static str) -> Case {
    Case {
        name: name.into(),
        call,
        code,
        reason: Some(reason),
    }
}

/// The clients of the three callers the table speaks as.
struct Clients {
    certs: CertificateServiceClient<Authed>,
    revocations: RevocationServiceClient<Authed>,
    reissues: ReissueServiceClient<Authed>,
    documents: ReviewServiceClient<Authed>,
    crls: CrlServiceClient<tonic::transport::Channel>,
    admin: RevocationServiceClient<Authed>,
    reviewer: ReviewServiceClient<Authed>,
}

impl Clients {
    async fn send(&mut self, call: Call) -> Result<(), tonic::Status> {
        match call {
            Call::Issue(r) => self.certs.issue_certificate(r).await.map(drop),
            Call::Upload(r) => self.certs.upload_certificate(r).await.map(drop),
            Call::Get(r) => self.certs.get_certificate(r).await.map(drop),
            Call::List(r) => self.certs.list_certificates(r).await.map(drop),
            Call::History(r) => self.certs.get_certificate_history(r).await.map(drop),
            Call::Download(r) => self.certs.download_certificate(r).await.map(drop),
            Call::Delete(r) => self.certs.delete_certificate(r).await.map(drop),
            Call::Renew(r) => self.certs.order_renewal(r).await.map(drop),
            Call::Crl(r) => self.crls.get_crl(r).await.map(drop),
            Call::Revoke(r) => self.revocations.request_revocation(r).await.map(drop),
            Call::Check(r) => self.revocations.check_validation(r).await.map(drop),
            Call::Cancel(r) => self.revocations.cancel_revocation(r).await.map(drop),
            Call::Bulk(r) => {
                let mut results = self.admin.bulk_revoke(r).await?.into_inner();
                while results.message().await?.is_some() {}
                Ok(())
            }
            Call::Reissue(r) => self.reissues.request_reissue(r).await.map(drop),
            Call::UploadDocument(r) => self.documents.upload_revocation_document(r).await.map(drop),
            Call::Template(r) => self.documents.get_document_template(r).await.map(drop),
            Call::Document(r) => self.documents.get_revocation_document(r).await.map(drop),
            Call::Approve(r) => self.reviewer.approve_review(r).await.map(drop),
            Call::Reject(r) => self.reviewer.reject_review(r).await.map(drop),
        }
    }
}

/// Ids that are not certificate ids, and ids that are but name nothing the caller may see.
fn bad_ids(theirs: &str) -> Vec<(String, String, Code, &'static str)> {
    let malformed = [
        ("empty", String::new()),
        ("a space", "has space".to_string()),
        ("65 characters", "x".repeat(65)),
        ("a megabyte", "x".repeat(1 << 20)),
        ("a path", "../../etc/passwd".to_string()),
        ("a NATS wildcard", "abc.>".to_string()),
        ("a NUL byte", "abc\u{0}def".to_string()),
        ("non-ASCII letters", "zertifikät".to_string()),
    ];
    let mut ids: Vec<_> = malformed
        .into_iter()
        .map(|(what, id)| {
            (
                format!("id with {what}"),
                id,
                Code::InvalidArgument,
                "INVALID_ARGUMENT",
            )
        })
        .collect();
    ids.push((
        "unknown id".into(),
        "0b0e5c1e-unknown".into(),
        Code::NotFound,
        "NOT_FOUND",
    ));
    ids.push((
        "another account's certificate".into(),
        theirs.into(),
        Code::NotFound,
        "NOT_FOUND",
    ));
    ids
}

fn revoke(id: &str) -> RequestRevocationRequest {
    RequestRevocationRequest {
        request_id: request_id(),
        certificate_id: id.into(),
        reason: RevocationReason::Superseded as i32,
        description: "moved to a new host".into(),
        validation_method: 0,
    }
}

fn reissue(id: &str) -> RequestReissueRequest {
    RequestReissueRequest {
        request_id: request_id(),
        certificate_id: id.into(),
        domains: Vec::new(),
        reason: "the key was lost".into(),
        key: Some(Key::OriginalKey(OriginalKey {})),
        enterprise_info: Default::default(),
        validation_method: 0,
    }
}

/// Every call that names a certificate, for `id`.
fn calls_naming(id: &str) -> Vec<(&'static str, Call)> {
    vec![
        (
            "GetCertificate",
            Call::Get(GetCertificateRequest { id: id.into() }),
        ),
        (
            "GetCertificateHistory",
            Call::History(GetCertificateHistoryRequest { id: id.into() }),
        ),
        (
            "DownloadCertificate",
            Call::Download(DownloadCertificateRequest {
                id: id.into(),
                format: 1,
                password: String::new(),
            }),
        ),
        (
            "DeleteCertificate",
            Call::Delete(DeleteCertificateRequest {
                request_id: request_id(),
                id: id.into(),
            }),
        ),
        (
            "OrderRenewal",
            Call::Renew(OrderRenewalRequest {
                request_id: request_id(),
                id: id.into(),
            }),
        ),
        ("RequestRevocation", Call::Revoke(revoke(id))),
        (
            "CheckValidation",
            Call::Check(CheckValidationRequest {
                certificate_id: id.into(),
            }),
        ),
        ("RequestReissue", Call::Reissue(reissue(id))),
        (
            "UploadRevocationDocument",
            Call::UploadDocument(UploadRevocationDocumentRequest {
                request_id: request_id(),
                certificate_id: id.into(),
                file_name: "letter.pdf".into(),
                content: b"%PDF-1.4\n%%EOF\n".to_vec(),
            }),
        ),
        (
            "GetDocumentTemplate",
            Call::Template(GetDocumentTemplateRequest {
                certificate_id: id.into(),
            }),
        ),
        (
            "GetRevocationDocument",
            Call::Document(GetRevocationDocumentRequest {
                certificate_id: id.into(),
            }),
        ),
    ]
}

fn issue_request(change: impl FnOnce(&mut IssueCertificateRequest)) -> Call {
    let mut request = dns_auto_dv("acme", "table.example.com");
    change(&mut request);
    Call::Issue(request)
}

fn upload(pem: impl Into<String>, key: impl Into<String>) -> Call {
    Call::Upload(UploadCertificateRequest {
        request_id: request_id(),
        account: "acme".into(),
        pem: pem.into(),
        private_key_pem: key.into(),
    })
}

fn revoke_with(id: &str, change: impl FnOnce(&mut RequestRevocationRequest)) -> Call {
    let mut request = revoke(id);
    change(&mut request);
    Call::Revoke(request)
}

fn reissue_with(id: &str, change: impl FnOnce(&mut RequestReissueRequest)) -> Call {
    let mut request = reissue(id);
    change(&mut request);
    Call::Reissue(request)
}

fn bulk(change: impl FnOnce(&mut BulkRevokeRequest)) -> Call {
    let mut request = BulkRevokeRequest {
        request_id: request_id(),
        certificate_ids: Vec::new(),
        account: "acme".into(),
        reason: RevocationReason::Superseded as i32,
        description: "the account is closed".into(),
        validation_method: 0,
    };
    change(&mut request);
    Call::Bulk(request)
}

/// A PEM block of `label` around `body`.
fn pem_block(label: &str, body: &str) -> String {
    format!("-----BEGIN {label}-----\n{body}\n-----END {label}-----\n")
}

/// A review task leased by the table's reviewer.
struct LeasedTask {
    task_id: String,
    lease: String,
}

/// The table: every case names what is wrong with it.
fn table(mine: &str, theirs: &str, task: &LeasedTask) -> Vec<Case> {
    let mut cases = Vec::new();

    // Ids, on every call that names a certificate.
    for (what, id, code, reason) in bad_ids(theirs) {
        for (rpc, call) in calls_naming(&id) {
            cases.push(case(format!("{rpc}: {what}"), call, code, reason));
        }
    }
    // CancelRevocation (REV-7) refuses every cancellation, after checking the id.
    for (what, id, code, reason) in bad_ids(theirs) {
        cases.push(case(
            format!("CancelRevocation: {what}"),
            Call::Cancel(CancelRevocationRequest { certificate_id: id }),
            code,
            reason,
        ));
    }

    // IssueCertificate: enums, names, sizes, dates, keys.
    let invalid =
        |name: &str, call: Call| case(name, call, Code::InvalidArgument, "INVALID_ARGUMENT");
    for brand in [-1, 8, 99, 0] {
        cases.push(invalid(
            &format!("IssueCertificate: brand {brand}"),
            issue_request(|r| r.brand = brand),
        ));
    }
    for level in [-3, 0, 4, 7] {
        cases.push(invalid(
            &format!("IssueCertificate: level {level}"),
            issue_request(|r| r.level = level),
        ));
    }
    for algorithm in [0, 7, 42, -1] {
        cases.push(invalid(
            &format!("IssueCertificate: key algorithm {algorithm}"),
            issue_request(|r| r.key_algorithm = algorithm),
        ));
    }
    for setup in [0, 9, -2] {
        cases.push(invalid(
            &format!("IssueCertificate: validation setup {setup}"),
            issue_request(|r| r.validation_setup[0].setup = setup),
        ));
    }
    cases.push(invalid(
        "IssueCertificate: empty request id",
        issue_request(|r| r.request_id.clear()),
    ));
    cases.push(invalid(
        "IssueCertificate: a request id of 1 MiB",
        issue_request(|r| r.request_id = "r".repeat(1 << 20)),
    ));
    cases.push(case(
        "IssueCertificate: another account",
        issue_request(|r| r.account = "globex".into()),
        Code::PermissionDenied,
        "ACCOUNT_MISMATCH",
    ));
    cases.push(case(
        "IssueCertificate: no domains",
        issue_request(|r| {
            r.domains.clear();
            r.validation_setup.clear();
        }),
        Code::InvalidArgument,
        "INVALID_DOMAIN_NAME",
    ));
    cases.push(case(
        "IssueCertificate: 300 domains",
        issue_request(|r| {
            r.domains = (0..300).map(|n| format!("d{n}.example.com")).collect();
            r.validation_setup.clear();
        }),
        Code::InvalidArgument,
        "INVALID_DOMAIN_NAME",
    ));
    for domain in [
        "bad domain",
        "",
        "-leading.example.com",
        "trailing-.example.com",
        "double..dot.com",
        "*.*.example.com",
        "under_score.example.com",
        "127.0.0.1",
        "[::1]",
        "example",
        "xn--.example.com",
        &format!("{}.example.com", "a".repeat(64)),
        &format!("{}.com", ["abcdefghij"; 25].join(".")),
        "exa mple.com\u{0}",
        // CA-1: what a URL parser reads as an IP address.
        "127.0x1",
        "0x7f.0x0.0x0.0x1",
        "169.254.169.0xfe",
        "2130706433",
        "0177.0.0.1",
        // CA-2: a public suffix, or a wildcard directly over one.
        "*.com",
        "co.uk",
        "*.co.uk",
        "github.io",
    ] {
        cases.push(case(
            format!("IssueCertificate: domain {domain:?}"),
            issue_request(|r| {
                r.domains = vec![domain.to_string()];
                r.validation_setup.clear();
            }),
            Code::InvalidArgument,
            "INVALID_DOMAIN_NAME",
        ));
    }
    cases.push(invalid(
        "IssueCertificate: validation set up for a domain it does not name",
        issue_request(|r| {
            r.validation_setup.push(DomainValidationSetup {
                domain: "elsewhere.example.org".into(),
                setup: ValidationSetup::DnsAuto as i32,
            })
        }),
    ));
    for years in [0, 11, u32::MAX] {
        cases.push(case(
            format!("IssueCertificate: a term of {years} years"),
            issue_request(|r| r.term_years = years),
            Code::InvalidArgument,
            "INVALID_ARGUMENT",
        ));
    }
    cases.push(case(
        "IssueCertificate: not_after before not_before",
        issue_request(|r| {
            r.not_before = Some(prost_types::Timestamp {
                seconds: 1_900_000_000,
                nanos: 0,
            });
            r.not_after = Some(prost_types::Timestamp {
                seconds: 1_800_000_000,
                nanos: 0,
            });
        }),
        Code::InvalidArgument,
        "INVALID_VALIDITY",
    ));
    // CA-3: dates a customer may not choose.
    for (what, not_before, not_after) in [
        ("not_after 100 years out", None, Some(4_900_000_000)),
        ("valid 1970 to 1971", Some(0), Some(31_536_000)),
        ("starting in a month", Some(2_000_000_000), None),
    ] {
        let stamp = |seconds: i64| prost_types::Timestamp { seconds, nanos: 0 };
        cases.push(case(
            format!("IssueCertificate: {what} (CA-3)"),
            issue_request(|r| {
                r.not_before = not_before.map(stamp);
                r.not_after = not_after.map(stamp);
            }),
            Code::InvalidArgument,
            "VALIDITY_NOT_ALLOWED",
        ));
    }
    cases.push(case(
        "IssueCertificate: a timestamp with nanos out of range",
        issue_request(|r| {
            r.not_before = Some(prost_types::Timestamp {
                seconds: 1_800_000_000,
                nanos: 2_000_000_000,
            })
        }),
        Code::InvalidArgument,
        "INVALID_VALIDITY",
    ));
    for (what, csr) in [
        ("garbage", "not a CSR".to_string()),
        ("an empty PEM block", pem_block("CERTIFICATE REQUEST", "")),
        (
            "broken base64",
            pem_block("CERTIFICATE REQUEST", "MIIB@@@@"),
        ),
        (
            "truncated DER",
            pem_block("CERTIFICATE REQUEST", "MIIBCgKCAQEA"),
        ),
        (
            "a certificate instead",
            self_signed_pem("table.example.com"),
        ),
    ] {
        cases.push(case(
            format!("IssueCertificate: CSR is {what}"),
            issue_request(|r| r.csr_pem = csr),
            Code::InvalidArgument,
            "CSR_INVALID",
        ));
    }
    cases.push(Case {
        name: "IssueCertificate: a 5 MiB message".into(),
        call: issue_request(|r| r.csr_pem = "A".repeat(5 << 20)),
        code: Code::OutOfRange,
        reason: None,
    });

    // UploadCertificate: PEM and keys.
    let stranger = self_signed_pem("upload.example.com");
    for (what, pem) in [
        ("empty", String::new()),
        ("garbage", "not a certificate".to_string()),
        ("an empty PEM block", pem_block("CERTIFICATE", "")),
        ("truncated DER", pem_block("CERTIFICATE", "MIIB")),
        ("broken base64", pem_block("CERTIFICATE", "MIIB!!!!****")),
        (
            "a private key",
            pem_block("PRIVATE KEY", "MC4CAQAwBQYDK2VwBCIEIA=="),
        ),
        (
            "a missing END line",
            stranger.replace("-----END CERTIFICATE-----", ""),
        ),
        ("cut off in the middle", cut_in_half(&stranger)),
    ] {
        cases.push(case(
            format!("UploadCertificate: PEM is {what}"),
            upload(pem, ""),
            Code::InvalidArgument,
            "INVALID_CERTIFICATE",
        ));
    }
    cases.push(case(
        "UploadCertificate: a private key that is not PEM",
        upload(stranger.clone(), "not a key"),
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    ));
    cases.push(invalid(
        "UploadCertificate: 2 MiB of PEM",
        upload("A".repeat(2 << 20), ""),
    ));
    cases.push(case(
        "UploadCertificate: a private key of another certificate",
        upload(
            stranger.clone(),
            rcgen::KeyPair::generate()
                .map(|k| k.serialize_pem())
                .unwrap_or_default(),
        ),
        Code::InvalidArgument,
        "KEY_MISMATCH",
    ));
    for name in ["127.0x1", "0x7f.0x0.0x0.0x1", "169.254.169.0xfe"] {
        cases.push(case(
            format!("UploadCertificate: a certificate for {name:?} (CA-1)"),
            upload(self_signed_pem(name), ""),
            Code::InvalidArgument,
            "INVALID_DOMAIN_NAME",
        ));
    }
    cases.push(invalid(
        "UploadCertificate: empty request id",
        Call::Upload(UploadCertificateRequest {
            request_id: String::new(),
            account: "acme".into(),
            pem: stranger.clone(),
            private_key_pem: String::new(),
        }),
    ));
    cases.push(case(
        "UploadCertificate: another account",
        Call::Upload(UploadCertificateRequest {
            request_id: request_id(),
            account: "globex".into(),
            pem: stranger,
            private_key_pem: String::new(),
        }),
        Code::PermissionDenied,
        "ACCOUNT_MISMATCH",
    ));

    // Queries with wrong enums or tokens.
    for status in [-1, 7, 1234] {
        cases.push(invalid(
            &format!("ListCertificates: status {status}"),
            Call::List(ListCertificatesRequest {
                status,
                ..Default::default()
            }),
        ));
    }
    for token in ["%%%", "a b", &"t".repeat(4096)] {
        cases.push(invalid(
            &format!("ListCertificates: page token {:.20}", token),
            Call::List(ListCertificatesRequest {
                page_token: token.to_string(),
                ..Default::default()
            }),
        ));
    }
    cases.push(case(
        "ListCertificates: another account",
        Call::List(ListCertificatesRequest {
            account: "globex".into(),
            ..Default::default()
        }),
        Code::PermissionDenied,
        "ACCOUNT_MISMATCH",
    ));
    for format in [-1, 3, 77] {
        cases.push(invalid(
            &format!("DownloadCertificate: format {format}"),
            Call::Download(DownloadCertificateRequest {
                id: mine.into(),
                format,
                password: String::new(),
            }),
        ));
    }
    for brand in [-1, 0, 8, 99] {
        cases.push(invalid(
            &format!("GetCrl: brand {brand}"),
            Call::Crl(GetCrlRequest {
                brand,
                sm2: false,
                shard: None,
            }),
        ));
    }

    // RequestRevocation: reasons outside RFC 5280's allowed set (REV-9), methods, sizes.
    for code in [
        RevocationReason::CaCompromise as i32,
        RevocationReason::CertificateHold as i32,
        7,
        RevocationReason::RemoveFromCrl as i32,
        RevocationReason::PrivilegeWithdrawn as i32,
        RevocationReason::AaCompromise as i32,
        -1,
        11,
        i32::MAX,
    ] {
        cases.push(case(
            format!("RequestRevocation: reason {code}"),
            revoke_with(mine, |r| r.reason = code),
            Code::InvalidArgument,
            "INVALID_REVOCATION_REASON",
        ));
    }
    for method in [-1, 4, 99] {
        cases.push(invalid(
            &format!("RequestRevocation: validation method {method}"),
            revoke_with(mine, |r| r.validation_method = method),
        ));
    }
    cases.push(invalid(
        "RequestRevocation: empty request id",
        revoke_with(mine, |r| r.request_id.clear()),
    ));
    cases.push(invalid(
        "RequestRevocation: a description of 1 MiB",
        revoke_with(mine, |r| r.description = "d".repeat(1 << 20)),
    ));
    // NUL and control characters, in every free-text and key field.
    for text in ["with\0NUL", "bell\u{7}", "escape\u{1b}[2J"] {
        cases.push(invalid(
            &format!("RequestRevocation: description {text:?}"),
            revoke_with(mine, |r| r.description = text.into()),
        ));
        cases.push(invalid(
            &format!("RequestReissue: reason {text:?}"),
            reissue_with(mine, |r| r.reason = text.into()),
        ));
        cases.push(invalid(
            &format!("IssueCertificate: an enterprise_info name {text:?}"),
            issue_request(|r| {
                r.enterprise_info = BTreeMap::from([(text.to_string(), "x".to_string())]);
            }),
        ));
        cases.push(invalid(
            &format!("IssueCertificate: an enterprise_info value {text:?}"),
            issue_request(|r| {
                r.enterprise_info =
                    BTreeMap::from([("organization".to_string(), text.to_string())]);
            }),
        ));
        cases.push(invalid(
            &format!("IssueCertificate: account {text:?}"),
            issue_request(|r| r.account = text.into()),
        ));
        cases.push(invalid(
            &format!("UploadRevocationDocument: file name {text:?}"),
            Call::UploadDocument(UploadRevocationDocumentRequest {
                request_id: request_id(),
                certificate_id: mine.into(),
                file_name: text.into(),
                content: b"%PDF-1.4\n%%EOF\n".to_vec(),
            }),
        ));
    }

    // BulkRevoke (admin).
    cases.push(invalid(
        "BulkRevoke: neither ids nor an account",
        bulk(|r| r.account.clear()),
    ));
    cases.push(invalid(
        "BulkRevoke: both ids and an account",
        bulk(|r| r.certificate_ids = vec![mine.into()]),
    ));
    cases.push(invalid(
        "BulkRevoke: empty request id",
        bulk(|r| r.request_id.clear()),
    ));
    cases.push(case(
        "BulkRevoke: reason 2",
        bulk(|r| r.reason = RevocationReason::CaCompromise as i32),
        Code::InvalidArgument,
        "INVALID_REVOCATION_REASON",
    ));
    cases.push(invalid(
        "BulkRevoke: a malformed id among the ids",
        bulk(|r| {
            r.account.clear();
            r.certificate_ids = vec![mine.into(), "has space".into()];
        }),
    ));
    cases.push(invalid(
        "BulkRevoke: validation method 99",
        bulk(|r| r.validation_method = 99),
    ));

    // RequestReissue: keys, reasons (REI-12), CSRs, names.
    cases.push(invalid(
        "RequestReissue: no reason (REI-12)",
        reissue_with(mine, |r| r.reason.clear()),
    ));
    cases.push(invalid(
        "RequestReissue: a reason of 1 MiB",
        reissue_with(mine, |r| r.reason = "r".repeat(1 << 20)),
    ));
    cases.push(invalid(
        "RequestReissue: empty request id",
        reissue_with(mine, |r| r.request_id.clear()),
    ));
    for algorithm in [0, 42, -1] {
        cases.push(invalid(
            &format!("RequestReissue: generated key algorithm {algorithm}"),
            reissue_with(mine, |r| {
                r.key = Some(Key::GeneratedKey(GeneratedKey {
                    key_algorithm: algorithm,
                    key_password: String::new(),
                }))
            }),
        ));
    }
    for (what, csr) in [
        ("empty", String::new()),
        ("garbage", "garbage".to_string()),
        ("broken base64", pem_block("CERTIFICATE REQUEST", "MII=@@")),
        (
            "truncated DER",
            pem_block("CERTIFICATE REQUEST", "MIIBCgKCAQEA"),
        ),
    ] {
        cases.push(case(
            format!("RequestReissue: CSR is {what}"),
            reissue_with(mine, |r| r.key = Some(Key::CsrPem(csr))),
            Code::InvalidArgument,
            "CSR_INVALID",
        ));
    }
    for domain in ["bad domain", "*.*.example.com", ""] {
        cases.push(case(
            format!("RequestReissue: domain {domain:?}"),
            reissue_with(mine, |r| r.domains = vec![domain.into()]),
            Code::InvalidArgument,
            "INVALID_DOMAIN_NAME",
        ));
    }
    cases.push(invalid(
        "RequestReissue: validation method 99",
        reissue_with(mine, |r| r.validation_method = 99),
    ));
    cases.push(invalid(
        "RequestReissue: 10,000 organisation details",
        reissue_with(mine, |r| {
            r.enterprise_info = (0..10_000)
                .map(|n| (format!("field{n}"), "x".repeat(32)))
                .collect::<std::collections::BTreeMap<_, _>>()
        }),
    ));

    // Documents.
    cases.push(invalid(
        "UploadRevocationDocument: empty content",
        Call::UploadDocument(UploadRevocationDocumentRequest {
            request_id: request_id(),
            certificate_id: mine.into(),
            file_name: "letter.pdf".into(),
            content: Vec::new(),
        }),
    ));
    cases.push(invalid(
        "UploadRevocationDocument: empty request id",
        Call::UploadDocument(UploadRevocationDocumentRequest {
            request_id: String::new(),
            certificate_id: mine.into(),
            file_name: "letter.pdf".into(),
            content: b"%PDF-1.4\n%%EOF\n".to_vec(),
        }),
    ));
    cases.push(Case {
        name: "UploadRevocationDocument: a 5 MiB message".into(),
        call: Call::UploadDocument(UploadRevocationDocumentRequest {
            request_id: request_id(),
            certificate_id: mine.into(),
            file_name: "letter.pdf".into(),
            content: vec![b'%'; 5 << 20],
        }),
        code: Code::OutOfRange,
        reason: None,
    });

    // Reviewers' decisions.
    let approve = |task_id: &str, comment: &str, lease: &str| {
        Call::Approve(ApproveReviewRequest {
            request_id: request_id(),
            task_id: task_id.into(),
            comment: comment.into(),
            lease: lease.into(),
        })
    };
    let reject = |task_id: &str, comment: &str, lease: &str| {
        Call::Reject(RejectReviewRequest {
            request_id: request_id(),
            task_id: task_id.into(),
            comment: comment.into(),
            lease: lease.into(),
        })
    };
    // Task ids that are not a task's are unknown; a decision on a real task still needs a
    // comment (REV-13).
    for (what, task) in [
        ("empty", ""),
        ("a space", "has space"),
        ("a wildcard", "a.*"),
        ("no certificate", "/revocation"),
        ("an unknown certificate", "0b0e5c1e-unknown/revocation"),
    ] {
        cases.push(case(
            format!("ApproveReview: task id with {what}"),
            approve(task, "looks right", ""),
            Code::NotFound,
            "NOT_FOUND",
        ));
        cases.push(case(
            format!("RejectReview: task id with {what}"),
            reject(task, "looks wrong", ""),
            Code::NotFound,
            "NOT_FOUND",
        ));
    }
    for (what, comment) in [
        ("no comment", String::new()),
        ("a blank comment", "   ".to_string()),
        ("a comment of 2,001 characters", "c".repeat(2_001)),
    ] {
        cases.push(case(
            format!("ApproveReview: {what} (REV-13)"),
            approve(&task.task_id, &comment, &task.lease),
            Code::InvalidArgument,
            "COMMENT_REQUIRED",
        ));
        cases.push(case(
            format!("RejectReview: {what} (REV-13)"),
            reject(&task.task_id, &comment, &task.lease),
            Code::InvalidArgument,
            "COMMENT_REQUIRED",
        ));
    }
    cases
}

/// `pem` with the second half of its body gone: the DER inside ends too soon.
fn cut_in_half(pem: &str) -> String {
    let lines: Vec<&str> = pem.lines().collect();
    let body = &lines[1..lines.len() - 1];
    let kept = body[..body.len() / 2].join("\n");
    pem_block("CERTIFICATE", &kept)
}

/// What a refusal must leave alone: the last sequence of every stream that records
/// something (outcomes record refusals for retries, and staged uploads come and go).
async fn recorded(nats: &async_nats::Client) -> BTreeMap<String, u64> {
    let js = jetstream::new(nats.clone());
    let mut state = BTreeMap::new();
    for name in [
        "CERTFLOW_EVENTS",
        "CERTFLOW_KEYS",
        "CERTFLOW_KEY_INDEX",
        "CERTFLOW_REISSUE_LOCKS",
        "CERTFLOW_VALIDATION_CHECKS",
        "REVIEW_QUEUE",
        "OBJ_certflow-documents",
    ] {
        let last = match js.get_stream(name).await {
            Ok(mut stream) => stream
                .info()
                .await
                .map(|info| info.state.last_sequence)
                .unwrap_or_default(),
            Err(_) => 0,
        };
        state.insert(name.to_string(), last);
    }
    state
}

#[tokio::test]
async fn gen5_a_table_of_bad_inputs_gets_the_documented_status_and_changes_nothing() {
    let certflow = started_without_rate_limits().await;
    let customer = certflow.token("alice", "acme", &["customer"]);
    let mut certs = certflow
        .certificates_as(Some(&customer))
        .await
        .expect("client");
    let mine = issue(&mut certs, dns_auto_dv("acme", "mine.example.com")).await;
    let mut theirs_client = certflow
        .certificates_as(Some(&certflow.token("bob", "globex", &["customer"])))
        .await
        .expect("client");
    let theirs = issue(
        &mut theirs_client,
        IssueCertificateRequest {
            brand: Brand::Geotrust as i32,
            level: Level::Dv as i32,
            key_algorithm: KeyAlgorithm::EccP256 as i32,
            ..dns_auto_dv("globex", "theirs.example.com")
        },
    )
    .await;
    let mut clients = Clients {
        certs,
        revocations: certflow
            .revocations_as(Some(&customer))
            .await
            .expect("client"),
        reissues: certflow.reissues_as(&customer).await.expect("client"),
        documents: certflow.reviews_as(&customer).await.expect("client"),
        crls: CrlServiceClient::new(certflow.channel().await.expect("channel")),
        admin: certflow
            .revocations_as(Some(&certflow.admin_token()))
            .await
            .expect("client"),
        reviewer: certflow
            .reviews_as(&certflow.token("rita", "review-desk", &["reviewer"]))
            .await
            .expect("client"),
    };
    // A revocation waiting for a reviewer, whose task the reviewer holds.
    let waiting = issue(
        &mut clients.certs,
        IssueCertificateRequest {
            brand: Brand::Wotrus as i32,
            validation_setup: Vec::new(),
            ..dns_auto_dv("acme", "waiting.example.com")
        },
    )
    .await;
    clients
        .revocations
        .request_revocation(revoke(&waiting.id))
        .await
        .expect("revocation waits for review");
    let task = certflow_testkit::eventually(std::time::Duration::from_secs(15), || {
        let mut reviewer = clients.reviewer.clone();
        async move {
            let next = reviewer
                .next_review_task(certflow_proto::v1::NextReviewTaskRequest {})
                .await
                .ok()?
                .into_inner();
            Some(LeasedTask {
                task_id: next.task?.task_id,
                lease: next.lease,
            })
        }
    })
    .await
    .expect("the reviewer holds the task");
    let nats = certflow.nats.connect_as(None).await.expect("nats");
    let before = recorded(&nats).await;

    let cases = table(&mine.id, &theirs.id, &task);
    assert!(cases.len() >= 100, "only {} cases", cases.len());
    let mut wrong = Vec::new();
    for case in &cases {
        match clients.send(case.call.clone()).await {
            Ok(()) => wrong.push(format!("{}: accepted", case.name)),
            Err(status) => {
                let reason = status.get_details_error_info().map(|info| {
                    assert_eq!(info.domain, "certs", "{}", case.name);
                    info.reason
                });
                if status.code() != case.code || reason.as_deref() != case.reason {
                    wrong.push(format!(
                        "{}: {:?} {:?} ({}), expected {:?} {:?}",
                        case.name,
                        status.code(),
                        reason,
                        status.message().chars().take(160).collect::<String>(),
                        case.code,
                        case.reason
                    ));
                }
                if status.message().is_empty() {
                    wrong.push(format!("{}: no message", case.name));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} cases answered otherwise:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
    eprintln!(
        "{} bad inputs, each with its documented status",
        cases.len()
    );
    assert_eq!(
        recorded(&nats).await,
        before,
        "a refused call recorded something"
    );
    // The certificates themselves are as they were.
    let after = clients
        .certs
        .get_certificate(GetCertificateRequest {
            id: mine.id.clone(),
        })
        .await
        .expect("mine")
        .into_inner()
        .certificate
        .expect("certificate");
    assert_eq!(after.status, mine.status);
    assert_eq!(
        support::history_types(&clients.certs, &mine.id).await.len(),
        1
    );
}
