//! The public API's mapping: domain types to and from the `certflow.v1` messages clients
//! exchange with the gateway (certificate views, enums, timestamps), and the checks on what
//! clients send.
//!
//! This is a public contract: clients are built against `certflow.v1`, so what a field or
//! an enum value means here changes only with a new API version. Enum values arrive from
//! clients as raw `i32`s; every `*_from_proto` refuses unknown values, and `UNSPECIFIED`
//! unless unset has a documented meaning, with a sentence that names the field, so a wrong
//! enum never reaches a decision (GEN-5). The event log stores the enums of
//! `certflow/v1/types.proto` too and [`stored`](super::stored) maps them through the
//! functions here, so a value mapped here is a value in the log as well.

use std::collections::BTreeMap;

use certflow_domain::reactions::validation_target;
use certflow_domain::{
    Brand, Certificate, Challenge, Document, DocumentFormat, DocumentKind, DomainError, DomainName,
    DomainValidation, KeyAlgorithm, Level, Reason, Review, ReviewOutcome, RevocationCause,
    RevocationFailure, RevocationPath, RevocationReason, Source, Status, Timestamp,
    ValidationMethod, ValidationOutcome, ValidationSetup, Vote,
};

use crate::v1 as pb;

/// The refusal of a raw enum value that is unknown, or unset where a value is required.
pub(super) fn unknown(field: &str, value: i32) -> DomainError {
    DomainError::invalid(
        Reason::InvalidArgument,
        format!("{field} is required; {value} is not one of its values"),
    )
}

/// A domain timestamp as a protobuf one.
pub fn timestamp_to_proto(t: Timestamp) -> prost_types::Timestamp {
    let millis = t.unix_millis();
    prost_types::Timestamp {
        seconds: millis.div_euclid(1000),
        nanos: (millis.rem_euclid(1000) * 1_000_000) as i32,
    }
}

/// Organisation details a caller sent (OV/EV), trimmed: at most 20 named fields of at most
/// 200 characters, so that they fit in an event and on a certificate.
pub fn enterprise_info_from_request(
    info: &std::collections::BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, DomainError> {
    let too_long = |s: &str| s.trim().is_empty() || s.chars().count() > 200;
    if info.len() > 20
        || info
            .iter()
            .any(|(k, v)| too_long(k) || v.chars().count() > 200)
    {
        return Err(DomainError::invalid(
            Reason::InvalidArgument,
            "enterprise_info holds at most 20 named fields of at most 200 characters",
        ));
    }
    for (name, value) in info {
        certflow_domain::text::key_text("an enterprise_info name", name)?;
        certflow_domain::text::free_text("an enterprise_info value", value)?;
    }
    Ok(info
        .iter()
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect())
}

/// A timestamp a caller sent, checked: `nanos` within 0..1e9 and a year between 1 and
/// 9999, as `google.protobuf.Timestamp` requires.
pub fn timestamp_from_request(
    field: &'static str,
    t: &prost_types::Timestamp,
) -> Result<Timestamp, DomainError> {
    // 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z.
    const EARLIEST: i64 = -62_135_596_800;
    const LATEST: i64 = 253_402_300_799;
    if !(0..1_000_000_000).contains(&t.nanos) || !(EARLIEST..=LATEST).contains(&t.seconds) {
        return Err(DomainError::invalid(
            Reason::InvalidValidity,
            format!(
                "{field} is not a valid timestamp (seconds {}, nanos {}): give nanos from 0 to \
                 999,999,999 and a time between years 1 and 9999",
                t.seconds, t.nanos
            ),
        ));
    }
    Ok(timestamp_from_proto(t))
}

/// A protobuf timestamp as a domain one (millisecond precision).
pub fn timestamp_from_proto(t: &prost_types::Timestamp) -> Timestamp {
    Timestamp::from_unix_millis(
        t.seconds
            .saturating_mul(1000)
            .saturating_add(i64::from(t.nanos / 1_000_000)),
    )
}

/// Brand to proto.
pub fn brand_to_proto(brand: Brand) -> pb::Brand {
    match brand {
        Brand::TrustAsia => pb::Brand::Trustasia,
        Brand::Wotrus => pb::Brand::Wotrus,
        Brand::DnsPod => pb::Brand::Dnspod,
        Brand::GeoTrust => pb::Brand::Geotrust,
        Brand::DigiCert => pb::Brand::Digicert,
        Brand::GlobalSign => pb::Brand::Globalsign,
        Brand::Sectigo => pb::Brand::Sectigo,
        Brand::Other => pb::Brand::Other,
    }
}

/// Brand from a client's raw value.
pub fn brand_from_proto(value: i32) -> Result<Brand, DomainError> {
    Ok(match pb::Brand::try_from(value) {
        Ok(pb::Brand::Trustasia) => Brand::TrustAsia,
        Ok(pb::Brand::Wotrus) => Brand::Wotrus,
        Ok(pb::Brand::Dnspod) => Brand::DnsPod,
        Ok(pb::Brand::Geotrust) => Brand::GeoTrust,
        Ok(pb::Brand::Digicert) => Brand::DigiCert,
        Ok(pb::Brand::Globalsign) => Brand::GlobalSign,
        Ok(pb::Brand::Sectigo) => Brand::Sectigo,
        Ok(pb::Brand::Other) => Brand::Other,
        Ok(pb::Brand::Unspecified) | Err(_) => return Err(unknown("brand", value)),
    })
}

/// Level to proto.
pub fn level_to_proto(level: Level) -> pb::Level {
    match level {
        Level::Dv => pb::Level::Dv,
        Level::Ov => pb::Level::Ov,
        Level::Ev => pb::Level::Ev,
    }
}

/// Level from a client's raw value.
pub fn level_from_proto(value: i32) -> Result<Level, DomainError> {
    match pb::Level::try_from(value) {
        Ok(pb::Level::Dv) => Ok(Level::Dv),
        Ok(pb::Level::Ov) => Ok(Level::Ov),
        Ok(pb::Level::Ev) => Ok(Level::Ev),
        Ok(pb::Level::Unspecified) | Err(_) => Err(unknown("level", value)),
    }
}

/// Key algorithm to proto.
pub fn algorithm_to_proto(algorithm: KeyAlgorithm) -> pb::KeyAlgorithm {
    match algorithm {
        KeyAlgorithm::Rsa2048 => pb::KeyAlgorithm::Rsa2048,
        KeyAlgorithm::Rsa3072 => pb::KeyAlgorithm::Rsa3072,
        KeyAlgorithm::Rsa4096 => pb::KeyAlgorithm::Rsa4096,
        KeyAlgorithm::EccP256 => pb::KeyAlgorithm::EccP256,
        KeyAlgorithm::EccP384 => pb::KeyAlgorithm::EccP384,
        KeyAlgorithm::Sm2 => pb::KeyAlgorithm::Sm2,
        KeyAlgorithm::Other => pb::KeyAlgorithm::Other,
    }
}

/// Key algorithm from a client's raw value.
pub fn algorithm_from_proto(value: i32) -> Result<KeyAlgorithm, DomainError> {
    Ok(match pb::KeyAlgorithm::try_from(value) {
        Ok(pb::KeyAlgorithm::Rsa2048) => KeyAlgorithm::Rsa2048,
        Ok(pb::KeyAlgorithm::Rsa3072) => KeyAlgorithm::Rsa3072,
        Ok(pb::KeyAlgorithm::Rsa4096) => KeyAlgorithm::Rsa4096,
        Ok(pb::KeyAlgorithm::EccP256) => KeyAlgorithm::EccP256,
        Ok(pb::KeyAlgorithm::EccP384) => KeyAlgorithm::EccP384,
        Ok(pb::KeyAlgorithm::Sm2) => KeyAlgorithm::Sm2,
        Ok(pb::KeyAlgorithm::Other) => KeyAlgorithm::Other,
        Ok(pb::KeyAlgorithm::Unspecified) | Err(_) => {
            return Err(unknown("key_algorithm", value));
        }
    })
}

/// Validation setup to proto.
pub fn validation_to_proto(setup: ValidationSetup) -> pb::ValidationSetup {
    match setup {
        ValidationSetup::None => pb::ValidationSetup::None,
        ValidationSetup::DnsAuto => pb::ValidationSetup::DnsAuto,
        ValidationSetup::FileAuto => pb::ValidationSetup::FileAuto,
    }
}

/// Validation setup from a client's raw value.
pub fn validation_from_proto(value: i32) -> Result<ValidationSetup, DomainError> {
    match pb::ValidationSetup::try_from(value) {
        Ok(pb::ValidationSetup::None) => Ok(ValidationSetup::None),
        Ok(pb::ValidationSetup::DnsAuto) => Ok(ValidationSetup::DnsAuto),
        Ok(pb::ValidationSetup::FileAuto) => Ok(ValidationSetup::FileAuto),
        Ok(pb::ValidationSetup::Unspecified) | Err(_) => {
            Err(unknown("validation_setup.setup", value))
        }
    }
}

/// Validation method to proto.
pub fn method_to_proto(method: ValidationMethod) -> pb::ValidationMethod {
    match method {
        ValidationMethod::DnsAuto => pb::ValidationMethod::DnsAuto,
        ValidationMethod::Dns => pb::ValidationMethod::Dns,
        ValidationMethod::File => pb::ValidationMethod::File,
    }
}

/// Validation method from a client's raw value: unset is DNS.
pub fn method_from_proto(value: i32) -> Result<ValidationMethod, DomainError> {
    match pb::ValidationMethod::try_from(value) {
        Ok(pb::ValidationMethod::Unspecified | pb::ValidationMethod::Dns) => {
            Ok(ValidationMethod::Dns)
        }
        Ok(pb::ValidationMethod::File) => Ok(ValidationMethod::File),
        Ok(pb::ValidationMethod::DnsAuto) => Ok(ValidationMethod::DnsAuto),
        Err(_) => Err(unknown("validation_method", value)),
    }
}

/// Where a DNS challenge value is published.
pub fn dns_record_name(domain: &DomainName) -> String {
    format!("_dnsauth.{}", validation_target(domain))
}

/// Where a FILE challenge value is served.
pub fn file_url(domain: &DomainName) -> String {
    format!(
        "http://{}/.well-known/pki-validation/fileauth.txt",
        validation_target(domain)
    )
}

fn challenge_to_api(challenge: &Challenge) -> pb::Challenge {
    let (dns_record_name, file_url) = match challenge.method {
        ValidationMethod::DnsAuto => (String::new(), String::new()),
        ValidationMethod::Dns => (dns_record_name(&challenge.domain), String::new()),
        ValidationMethod::File => (String::new(), file_url(&challenge.domain)),
    };
    pb::Challenge {
        domain: challenge.domain.to_string(),
        method: method_to_proto(challenge.method) as i32,
        value: challenge.value.clone(),
        validated_at: challenge.validated_at.map(timestamp_to_proto),
        dns_record_name,
        file_url,
    }
}

fn validation_to_api(validation: &DomainValidation) -> pb::DomainValidation {
    pb::DomainValidation {
        challenges: validation.challenges.iter().map(challenge_to_api).collect(),
        issued_at: Some(timestamp_to_proto(validation.issued_at)),
        deadline: Some(timestamp_to_proto(validation.deadline)),
        outcome: match validation.outcome {
            None => pb::ValidationOutcome::Unspecified,
            Some(ValidationOutcome::Passed) => pb::ValidationOutcome::Passed,
            Some(ValidationOutcome::Expired) => pb::ValidationOutcome::Expired,
        } as i32,
        ended_at: validation.ended_at.map(timestamp_to_proto),
    }
}

fn cause_to_api(cause: Option<&RevocationCause>) -> (pb::RevocationCause, String) {
    match cause {
        None => (pb::RevocationCause::Unspecified, String::new()),
        Some(RevocationCause::Requested) => (pb::RevocationCause::Requested, String::new()),
        Some(RevocationCause::OriginalRevoked { original }) => {
            (pb::RevocationCause::OriginalRevoked, original.to_string())
        }
        Some(RevocationCause::KeyCompromised { certificate }) => {
            (pb::RevocationCause::KeyCompromised, certificate.to_string())
        }
        Some(RevocationCause::KeyProven) => (pb::RevocationCause::KeyProven, String::new()),
    }
}

/// Why a revocation failed, to proto.
pub(super) fn failure_to_proto(failure: RevocationFailure) -> pb::RevocationFailure {
    match failure {
        RevocationFailure::ValidationExpired => pb::RevocationFailure::ValidationExpired,
        RevocationFailure::ReviewRejected => pb::RevocationFailure::ReviewRejected,
    }
}

/// Document kind to proto.
pub fn document_kind_to_proto(kind: DocumentKind) -> pb::DocumentKind {
    match kind {
        DocumentKind::Application => pb::DocumentKind::Application,
        DocumentKind::ConfirmationLetter => pb::DocumentKind::ConfirmationLetter,
    }
}

/// Document format to proto.
pub fn document_format_to_proto(format: DocumentFormat) -> pb::DocumentFormat {
    match format {
        DocumentFormat::Jpeg => pb::DocumentFormat::Jpeg,
        DocumentFormat::Gif => pb::DocumentFormat::Gif,
        DocumentFormat::Png => pb::DocumentFormat::Png,
        DocumentFormat::Pdf => pb::DocumentFormat::Pdf,
    }
}

/// The API view of a stored document.
pub fn document_to_api(document: &Document) -> pb::DocumentInfo {
    pb::DocumentInfo {
        kind: document_kind_to_proto(document.kind) as i32,
        format: document_format_to_proto(document.format) as i32,
        media_type: document.format.media_type().into(),
        size: document.size,
        sha256: document.sha256.clone(),
        uploaded_at: Some(timestamp_to_proto(document.uploaded_at)),
    }
}

fn vote_to_api(vote: &Vote) -> pb::ReviewVote {
    pb::ReviewVote {
        reviewer: vote.reviewer.clone(),
        account: vote.account.clone(),
        comment: vote.comment.clone(),
        at: Some(timestamp_to_proto(vote.at)),
    }
}

/// The API view of a review.
pub fn review_to_api(review: &Review) -> pb::ReviewState {
    pb::ReviewState {
        task_id: review.task_id.clone(),
        approvals_needed: review.approvals_needed,
        queued_at: Some(timestamp_to_proto(review.queued_at)),
        approvals: review.approvals.iter().map(vote_to_api).collect(),
        rejection: review.rejection.as_ref().map(vote_to_api),
        outcome: match review.outcome {
            None => pb::ReviewOutcome::Unspecified,
            Some(ReviewOutcome::Approved) => pb::ReviewOutcome::Approved,
            Some(ReviewOutcome::Rejected) => pb::ReviewOutcome::Rejected,
        } as i32,
    }
}

/// Revocation reason to proto; the enum numbers are the RFC 5280 codes.
pub fn reason_to_proto(reason: RevocationReason) -> pb::RevocationReason {
    pb::RevocationReason::try_from(reason.rfc5280_code())
        .unwrap_or(pb::RevocationReason::Unspecified)
}

/// Revocation path to proto.
pub fn path_to_proto(path: RevocationPath) -> pb::RevocationPath {
    match path {
        RevocationPath::Immediate => pb::RevocationPath::Immediate,
        RevocationPath::AutomaticValidation => pb::RevocationPath::AutomaticValidation,
        RevocationPath::DomainValidation => pb::RevocationPath::DomainValidation,
        RevocationPath::ManualReview {
            document_required: false,
        } => pb::RevocationPath::ManualReview,
        RevocationPath::ManualReview {
            document_required: true,
        } => pb::RevocationPath::ManualReviewAfterDocument,
    }
}

/// Status to proto.
pub fn status_to_proto(status: Status) -> pb::CertificateStatus {
    match status {
        Status::Issued => pb::CertificateStatus::Issued,
        Status::RevocationPending => pb::CertificateStatus::RevocationPending,
        Status::Revoked => pb::CertificateStatus::Revoked,
        Status::ReissuePending => pb::CertificateStatus::ReissuePending,
        Status::Expired => pb::CertificateStatus::Expired,
        Status::Deleted => pb::CertificateStatus::Deleted,
    }
}

/// Status filter from a client's raw value; `None` for unset.
pub fn status_from_proto(value: i32) -> Result<Option<Status>, DomainError> {
    Ok(Some(match pb::CertificateStatus::try_from(value) {
        Ok(pb::CertificateStatus::Unspecified) => return Ok(None),
        Ok(pb::CertificateStatus::Issued) => Status::Issued,
        Ok(pb::CertificateStatus::RevocationPending) => Status::RevocationPending,
        Ok(pb::CertificateStatus::Revoked) => Status::Revoked,
        Ok(pb::CertificateStatus::ReissuePending) => Status::ReissuePending,
        Ok(pb::CertificateStatus::Expired) => Status::Expired,
        Ok(pb::CertificateStatus::Deleted) => Status::Deleted,
        Err(_) => return Err(unknown("status", value)),
    }))
}

/// Per-domain validation setup to proto, in domain order.
pub(super) fn setups_to_proto(
    setup: &BTreeMap<DomainName, ValidationSetup>,
) -> Vec<pb::DomainValidationSetup> {
    setup
        .iter()
        .map(|(domain, setup)| pb::DomainValidationSetup {
            domain: domain.to_string(),
            setup: validation_to_proto(*setup) as i32,
        })
        .collect()
}

/// Per-domain validation setup from a client's list; a domain listed twice is refused.
pub fn setups_from_proto(
    setups: &[pb::DomainValidationSetup],
) -> Result<BTreeMap<String, ValidationSetup>, DomainError> {
    let mut map = BTreeMap::new();
    for entry in setups {
        let setup = validation_from_proto(entry.setup)?;
        if map.insert(entry.domain.clone(), setup).is_some() {
            return Err(DomainError::invalid(
                Reason::InvalidArgument,
                format!("validation_setup lists {} twice", entry.domain),
            ));
        }
    }
    Ok(map)
}

/// The API view of a certificate, with its status at `now`.
pub fn certificate_to_proto(cert: &Certificate, now: Timestamp) -> pb::Certificate {
    pb::Certificate {
        id: cert.id.to_string(),
        account: cert.account.clone(),
        brand: brand_to_proto(cert.brand) as i32,
        level: level_to_proto(cert.level) as i32,
        paid: cert.paid,
        key_algorithm: algorithm_to_proto(cert.algorithm) as i32,
        domains: cert.domains.iter().map(ToString::to_string).collect(),
        term_years: cert.term_years,
        source: match cert.source {
            Source::Platform => pb::CertificateSource::Platform,
            Source::Uploaded => pb::CertificateSource::Uploaded,
        } as i32,
        issued_at: Some(timestamp_to_proto(cert.issued_at)),
        not_before: Some(timestamp_to_proto(cert.not_before)),
        not_after: Some(timestamp_to_proto(cert.not_after)),
        original_id: cert
            .original
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        validation_setup: setups_to_proto(&cert.validation_setup),
        status: status_to_proto(cert.status(now)) as i32,
        revocation: cert.revocation.as_ref().map(|r| {
            let (cause, cause_certificate_id) = cause_to_api(r.cause.as_ref());
            pb::Revocation {
                reason: reason_to_proto(r.reason) as i32,
                description: r.description.clone(),
                path: path_to_proto(r.path) as i32,
                requested_at: Some(timestamp_to_proto(r.requested_at)),
                revoked_at: r.revoked_at.map(timestamp_to_proto),
                validation_method: method_to_proto(r.validation_method) as i32,
                validation: r.validation.as_ref().map(validation_to_api),
                cause: cause as i32,
                cause_certificate_id,
                requested_by: r.requested_by.clone(),
                document: r.document.as_ref().map(document_to_api),
                review: r.review.as_ref().map(review_to_api),
            }
        }),
        failed_revocation: cert
            .failed_revocation
            .as_ref()
            .map(|f| pb::FailedRevocation {
                reason: reason_to_proto(f.reason) as i32,
                requested_at: Some(timestamp_to_proto(f.requested_at)),
                failed_at: Some(timestamp_to_proto(f.failed_at)),
                failure: failure_to_proto(f.failure) as i32,
            }),
        reissue_ids: cert.reissues.iter().map(ToString::to_string).collect(),
        enterprise_info: cert.enterprise_info.clone().into_iter().collect(),
        pending_reissue: cert
            .pending_reissue
            .as_ref()
            .map(|p| pb::PendingReissueInfo {
                reissue_id: p.reissue_id.clone(),
                new_certificate_id: p.new_certificate_id.to_string(),
                domains: p.domains.iter().map(ToString::to_string).collect(),
                requested_at: Some(timestamp_to_proto(p.requested_at)),
                needs_validation: p.needs_validation,
                needs_review: p.needs_review,
                validation: p.validation.as_ref().map(validation_to_api),
                review: p.review.as_ref().map(review_to_api),
            }),
        renewal_ordered: cert.renewal_ordered,
        public_key_sha256: cert.public_key_sha256.clone().unwrap_or_default(),
        serial_number: cert.serial_number.clone().unwrap_or_default(),
        pem: cert.pem.clone().unwrap_or_default(),
        chain_pem: cert.chain_pem.clone().unwrap_or_default(),
        private_key_held: cert.private_key_id.is_some(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gen5_a_timestamp_out_of_range_is_refused() {
        let at = |seconds, nanos| prost_types::Timestamp { seconds, nanos };
        for bad in [
            at(0, -1),
            at(0, 1_000_000_000),
            at(-62_135_596_801, 0),
            at(253_402_300_800, 0),
            at(i64::MAX, 0),
        ] {
            let err = timestamp_from_request("not_before", &bad).expect_err("refused");
            assert_eq!(err.reason(), Reason::InvalidValidity, "{bad:?}");
        }
        let ok = timestamp_from_request("not_before", &at(1_800_000_000, 999_999_999));
        assert_eq!(ok, Ok(Timestamp::from_unix_millis(1_800_000_000_999)));
    }

    #[test]
    fn gen5_organisation_details_are_bounded_and_trimmed() {
        let fields = |n: usize, value: &str| -> std::collections::BTreeMap<String, String> {
            (0..n)
                .map(|i| (format!(" field{i} "), value.to_string()))
                .collect()
        };
        let trimmed = enterprise_info_from_request(&fields(20, " Acme Ltd ")).expect("accepted");
        assert_eq!(trimmed.get("field0").map(String::as_str), Some("Acme Ltd"));
        for bad in [fields(21, "x"), fields(1, &"x".repeat(201))] {
            let err = enterprise_info_from_request(&bad).expect_err("refused");
            assert_eq!(err.reason(), Reason::InvalidArgument);
        }
        let unnamed = std::collections::BTreeMap::from([(" ".to_string(), "x".to_string())]);
        assert!(enterprise_info_from_request(&unnamed).is_err());
    }

    #[test]
    fn timestamps_round_trip_including_before_the_epoch() {
        for millis in [0, 1, 999, 1_585_094_400_123, -1, -1_500] {
            let t = Timestamp::from_unix_millis(millis);
            let p = timestamp_to_proto(t);
            assert!((0..1_000_000_000).contains(&p.nanos));
            assert_eq!(timestamp_from_proto(&p), t);
        }
    }

    #[test]
    fn gen5_unknown_enum_values_are_refused() {
        assert!(brand_from_proto(0).is_err());
        assert!(brand_from_proto(42).is_err());
        assert!(level_from_proto(9).is_err());
        assert!(algorithm_from_proto(-3).is_err());
        assert!(status_from_proto(77).is_err());
        assert_eq!(status_from_proto(0).ok(), Some(None));
    }
}
