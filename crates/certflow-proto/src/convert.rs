//! The mapping between proto messages and domain types.
//!
//! Enum values arrive from clients as raw `i32`s; every `*_from_proto` refuses unknown and
//! `UNSPECIFIED` values with a sentence that names the field, so a wrong enum never reaches
//! a decision (GEN-5).

use std::collections::BTreeMap;

use certflow_domain::process::validation_target;
use certflow_domain::{
    Brand, Certificate, CertificateDeleted, CertificateId, CertificateIssued, CertificateRevoked,
    CertificateUploaded, Challenge, Document, DocumentFormat, DocumentKind, DomainError,
    DomainName, DomainValidated, DomainValidation, Event, KeyAlgorithm, Level, Reason,
    ReissueCompleted, ReissueFailed, ReissueFailure, ReissueKey, ReissueRequested, RenewalOrdered,
    Review, ReviewApproved, ReviewOutcome, ReviewPassed, ReviewQueued, ReviewRejected,
    RevocationCause, RevocationDocumentUploaded, RevocationFailed, RevocationFailure,
    RevocationPath, RevocationReason, RevocationRequested, Source, Status, Timestamp,
    ValidationChallengesIssued, ValidationExpired, ValidationMethod, ValidationOutcome,
    ValidationPassed, ValidationSetup, Vote, X509Facts,
};
use prost::Message;

use crate::events::v1 as pe;
use crate::v1 as pb;

/// Why stored bytes could not be read back as events.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// The bytes are not a valid protobuf message.
    #[error("undecodable event batch: {0}")]
    Decode(#[from] prost::DecodeError),
    /// A field the event cannot do without is absent.
    #[error("event is missing {0}")]
    Missing(&'static str),
    /// A field holds a value the domain does not accept.
    #[error("event holds an invalid value: {0}")]
    Invalid(#[from] DomainError),
}

fn unknown(field: &str, value: i32) -> DomainError {
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

fn required_time(
    t: &Option<prost_types::Timestamp>,
    field: &'static str,
) -> Result<Timestamp, ConvertError> {
    t.as_ref()
        .map(timestamp_from_proto)
        .ok_or(ConvertError::Missing(field))
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

fn stored_method(value: i32) -> Result<ValidationMethod, ConvertError> {
    match pb::ValidationMethod::try_from(value) {
        Ok(pb::ValidationMethod::Unspecified) | Err(_) => {
            Err(ConvertError::Missing("validation method"))
        }
        Ok(_) => Ok(method_from_proto(value)?),
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
    }
}

fn failure_to_proto(failure: RevocationFailure) -> pb::RevocationFailure {
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

fn document_kind_from_proto(value: i32) -> Result<DocumentKind, ConvertError> {
    match pb::DocumentKind::try_from(value) {
        Ok(pb::DocumentKind::Application) => Ok(DocumentKind::Application),
        Ok(pb::DocumentKind::ConfirmationLetter) => Ok(DocumentKind::ConfirmationLetter),
        _ => Err(ConvertError::Missing("document kind")),
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

fn document_format_from_proto(value: i32) -> Result<DocumentFormat, ConvertError> {
    match pb::DocumentFormat::try_from(value) {
        Ok(pb::DocumentFormat::Jpeg) => Ok(DocumentFormat::Jpeg),
        Ok(pb::DocumentFormat::Gif) => Ok(DocumentFormat::Gif),
        Ok(pb::DocumentFormat::Png) => Ok(DocumentFormat::Png),
        Ok(pb::DocumentFormat::Pdf) => Ok(DocumentFormat::Pdf),
        _ => Err(ConvertError::Missing("document format")),
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

fn vote_to_event(vote: &Vote) -> pe::Vote {
    pe::Vote {
        reviewer: vote.reviewer.clone(),
        account: vote.account.clone(),
        comment: vote.comment.clone(),
        at: Some(timestamp_to_proto(vote.at)),
    }
}

fn vote_from_event(vote: Option<pe::Vote>) -> Result<Vote, ConvertError> {
    let vote = vote.ok_or(ConvertError::Missing("vote"))?;
    Ok(Vote {
        at: required_time(&vote.at, "vote time")?,
        reviewer: vote.reviewer,
        account: vote.account,
        comment: vote.comment,
    })
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

fn path_from_proto(value: i32) -> Result<RevocationPath, DomainError> {
    match pb::RevocationPath::try_from(value) {
        Ok(pb::RevocationPath::Immediate) => Ok(RevocationPath::Immediate),
        Ok(pb::RevocationPath::AutomaticValidation) => Ok(RevocationPath::AutomaticValidation),
        Ok(pb::RevocationPath::DomainValidation) => Ok(RevocationPath::DomainValidation),
        Ok(pb::RevocationPath::ManualReview) => Ok(RevocationPath::ManualReview {
            document_required: false,
        }),
        Ok(pb::RevocationPath::ManualReviewAfterDocument) => Ok(RevocationPath::ManualReview {
            document_required: true,
        }),
        Ok(pb::RevocationPath::Unspecified) | Err(_) => Err(unknown("path", value)),
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

fn setups_to_proto(
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

/// One domain event on the wire.
pub fn event_to_proto(event: &Event) -> pe::CertificateEvent {
    use pe::certificate_event::Event as E;
    let event = match event {
        Event::Issued(e) => E::Issued(pe::CertificateIssued {
            id: e.id.to_string(),
            account: e.account.clone(),
            brand: brand_to_proto(e.brand) as i32,
            level: level_to_proto(e.level) as i32,
            paid: e.paid,
            key_algorithm: algorithm_to_proto(e.algorithm) as i32,
            domains: e.domains.iter().map(ToString::to_string).collect(),
            term_years: e.term_years,
            issued_at: Some(timestamp_to_proto(e.issued_at)),
            not_before: Some(timestamp_to_proto(e.not_before)),
            not_after: Some(timestamp_to_proto(e.not_after)),
            validation_setup: setups_to_proto(&e.validation_setup),
            renewal_ordered: e.renewal_ordered,
            x509: e.x509.as_ref().map(|x| pe::X509Facts {
                serial_number: x.serial_number.clone(),
                public_key_sha256: x.public_key_sha256.clone(),
                pem: x.pem.clone(),
                chain_pem: x.chain_pem.clone(),
                private_key_id: x.private_key_id.clone().unwrap_or_default(),
            }),
            original_id: e
                .original
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            enterprise_info: e.enterprise_info.clone().into_iter().collect(),
            legacy: e.legacy,
        }),
        Event::Uploaded(e) => E::Uploaded(pe::CertificateUploaded {
            id: e.id.to_string(),
            account: e.account.clone(),
            level: level_to_proto(e.level) as i32,
            key_algorithm: algorithm_to_proto(e.algorithm) as i32,
            domains: e.domains.iter().map(ToString::to_string).collect(),
            uploaded_at: Some(timestamp_to_proto(e.uploaded_at)),
            not_before: Some(timestamp_to_proto(e.not_before)),
            not_after: Some(timestamp_to_proto(e.not_after)),
            public_key_sha256: e.public_key_sha256.clone(),
            serial_number: e.serial_number.clone(),
            issuer: e.issuer.clone(),
            pem: e.pem.clone(),
            private_key_id: e.private_key_id.clone().unwrap_or_default(),
        }),
        Event::RevocationRequested(e) => E::RevocationRequested(pe::RevocationRequested {
            reason: reason_to_proto(e.reason) as i32,
            description: e.description.clone(),
            path: path_to_proto(e.path) as i32,
            requested_at: Some(timestamp_to_proto(e.requested_at)),
            validation_method: method_to_proto(e.validation_method) as i32,
            requested_by: e.requested_by.clone(),
        }),
        Event::RevocationDocumentUploaded(e) => {
            E::RevocationDocumentUploaded(pe::RevocationDocumentUploaded {
                document: Some(pe::Document {
                    kind: document_kind_to_proto(e.document.kind) as i32,
                    format: document_format_to_proto(e.document.format) as i32,
                    size: e.document.size,
                    sha256: e.document.sha256.clone(),
                    object: e.document.object.clone(),
                    uploaded_at: Some(timestamp_to_proto(e.document.uploaded_at)),
                }),
            })
        }
        Event::ReviewQueued(e) => E::ReviewQueued(pe::ReviewQueued {
            task_id: e.task_id.clone(),
            approvals_needed: e.approvals_needed,
            queued_at: Some(timestamp_to_proto(e.queued_at)),
            reissue_id: e.reissue_id.clone().unwrap_or_default(),
        }),
        Event::ReviewApproved(e) => E::ReviewApproved(pe::ReviewApproved {
            vote: Some(vote_to_event(&e.vote)),
            reissue_id: e.reissue_id.clone().unwrap_or_default(),
        }),
        Event::ReviewPassed(e) => E::ReviewPassed(pe::ReviewPassed {
            passed_at: Some(timestamp_to_proto(e.passed_at)),
            reissue_id: e.reissue_id.clone().unwrap_or_default(),
        }),
        Event::ReviewRejected(e) => E::ReviewRejected(pe::ReviewRejected {
            vote: Some(vote_to_event(&e.vote)),
            reissue_id: e.reissue_id.clone().unwrap_or_default(),
        }),
        Event::ReissueRequested(e) => E::ReissueRequested(pe::ReissueRequested {
            reissue_id: e.reissue_id.clone(),
            new_certificate_id: e.new_certificate_id.to_string(),
            domains: e.domains.iter().map(ToString::to_string).collect(),
            key: Some(reissue_key_to_event(&e.key)),
            reason: e.reason.clone(),
            needs_validation: e.needs_validation,
            needs_review: e.needs_review,
            requested_at: Some(timestamp_to_proto(e.requested_at)),
            validation_method: method_to_proto(e.validation_method) as i32,
            enterprise_info: e.enterprise_info.clone().into_iter().collect(),
            requested_by: e.requested_by.clone(),
        }),
        Event::ReissueCompleted(e) => E::ReissueCompleted(pe::ReissueCompleted {
            reissue_id: e.reissue_id.clone(),
            certificate_id: e.certificate_id.to_string(),
            completed_at: Some(timestamp_to_proto(e.completed_at)),
        }),
        Event::Revoked(e) => {
            let (cause, cause_certificate_id) = match &e.cause {
                RevocationCause::Requested => (pe::RevocationCause::Requested, String::new()),
                RevocationCause::OriginalRevoked { original } => {
                    (pe::RevocationCause::OriginalRevoked, original.to_string())
                }
                RevocationCause::KeyCompromised { certificate } => {
                    (pe::RevocationCause::KeyCompromised, certificate.to_string())
                }
            };
            E::Revoked(pe::CertificateRevoked {
                reason: reason_to_proto(e.reason) as i32,
                revoked_at: Some(timestamp_to_proto(e.revoked_at)),
                cause: cause as i32,
                cause_certificate_id,
            })
        }
        Event::ValidationChallengesIssued(e) => {
            E::ValidationChallengesIssued(pe::ValidationChallengesIssued {
                challenges: e
                    .challenges
                    .iter()
                    .map(|c| pe::Challenge {
                        domain: c.domain.to_string(),
                        method: method_to_proto(c.method) as i32,
                        value: c.value.clone(),
                        validated_at: c.validated_at.map(timestamp_to_proto),
                    })
                    .collect(),
                issued_at: Some(timestamp_to_proto(e.issued_at)),
                deadline: Some(timestamp_to_proto(e.deadline)),
                reissue_id: e.reissue_id.clone().unwrap_or_default(),
            })
        }
        Event::DomainValidated(e) => E::DomainValidated(pe::DomainValidated {
            domain: e.domain.to_string(),
            method: method_to_proto(e.method) as i32,
            validated_at: Some(timestamp_to_proto(e.validated_at)),
            reissue_id: e.reissue_id.clone().unwrap_or_default(),
        }),
        Event::ValidationPassed(e) => E::ValidationPassed(pe::ValidationPassed {
            passed_at: Some(timestamp_to_proto(e.passed_at)),
            reissue_id: e.reissue_id.clone().unwrap_or_default(),
        }),
        Event::ValidationExpired(e) => E::ValidationExpired(pe::ValidationExpired {
            expired_at: Some(timestamp_to_proto(e.expired_at)),
            reissue_id: e.reissue_id.clone().unwrap_or_default(),
        }),
        Event::RevocationFailed(e) => E::RevocationFailed(pe::RevocationFailed {
            failure: failure_to_proto(e.failure) as i32,
            failed_at: Some(timestamp_to_proto(e.failed_at)),
        }),
        Event::ReissueFailed(e) => E::ReissueFailed(pe::ReissueFailed {
            reissue_id: e.reissue_id.clone(),
            cause: match e.cause {
                ReissueFailure::OriginalRevoked => pe::ReissueFailure::OriginalRevoked,
                ReissueFailure::ValidationExpired => pe::ReissueFailure::ValidationExpired,
                ReissueFailure::NotIssued => pe::ReissueFailure::NotIssued,
                ReissueFailure::ReviewRejected => pe::ReissueFailure::ReviewRejected,
            } as i32,
            failed_at: Some(timestamp_to_proto(e.failed_at)),
        }),
        Event::Deleted(e) => E::Deleted(pe::CertificateDeleted {
            deleted_at: Some(timestamp_to_proto(e.deleted_at)),
        }),
        Event::RenewalOrdered(e) => E::RenewalOrdered(pe::RenewalOrdered {
            ordered_at: Some(timestamp_to_proto(e.ordered_at)),
        }),
    };
    pe::CertificateEvent { event: Some(event) }
}

/// One domain event from the wire.
pub fn event_from_proto(event: pe::CertificateEvent) -> Result<Event, ConvertError> {
    use pe::certificate_event::Event as E;
    let domains = |names: &[String]| -> Result<Vec<DomainName>, DomainError> {
        names.iter().map(|n| DomainName::parse(n)).collect()
    };
    Ok(match event.event.ok_or(ConvertError::Missing("event"))? {
        E::Issued(e) => Event::Issued(CertificateIssued {
            id: CertificateId::parse(&e.id)?,
            account: e.account,
            brand: brand_from_proto(e.brand)?,
            level: level_from_proto(e.level)?,
            paid: e.paid,
            algorithm: algorithm_from_proto(e.key_algorithm)?,
            domains: domains(&e.domains)?,
            term_years: e.term_years,
            issued_at: required_time(&e.issued_at, "issued_at")?,
            not_before: required_time(&e.not_before, "not_before")?,
            not_after: required_time(&e.not_after, "not_after")?,
            validation_setup: setups_from_proto(&e.validation_setup)?
                .into_iter()
                .map(|(d, s)| Ok((DomainName::parse(&d)?, s)))
                .collect::<Result<_, DomainError>>()?,
            renewal_ordered: e.renewal_ordered,
            x509: e.x509.map(|x| X509Facts {
                serial_number: x.serial_number,
                public_key_sha256: x.public_key_sha256,
                pem: x.pem,
                chain_pem: x.chain_pem,
                private_key_id: (!x.private_key_id.is_empty()).then_some(x.private_key_id),
            }),
            original: if e.original_id.is_empty() {
                None
            } else {
                Some(CertificateId::parse(&e.original_id)?)
            },
            enterprise_info: e.enterprise_info.into_iter().collect(),
            legacy: e.legacy,
        }),
        E::Uploaded(e) => Event::Uploaded(CertificateUploaded {
            id: CertificateId::parse(&e.id)?,
            account: e.account,
            level: level_from_proto(e.level)?,
            algorithm: algorithm_from_proto(e.key_algorithm)?,
            domains: domains(&e.domains)?,
            uploaded_at: required_time(&e.uploaded_at, "uploaded_at")?,
            not_before: required_time(&e.not_before, "not_before")?,
            not_after: required_time(&e.not_after, "not_after")?,
            public_key_sha256: e.public_key_sha256,
            serial_number: e.serial_number,
            issuer: e.issuer,
            pem: e.pem,
            private_key_id: (!e.private_key_id.is_empty()).then_some(e.private_key_id),
        }),
        E::RevocationRequested(e) => Event::RevocationRequested(RevocationRequested {
            reason: RevocationReason::from_rfc5280_code(e.reason)?,
            description: e.description,
            path: path_from_proto(e.path)?,
            requested_at: required_time(&e.requested_at, "requested_at")?,
            // Requests recorded before methods existed were DNS.
            validation_method: method_from_proto(e.validation_method)?,
            requested_by: e.requested_by,
        }),
        E::RevocationDocumentUploaded(e) => {
            let document = e.document.ok_or(ConvertError::Missing("document"))?;
            Event::RevocationDocumentUploaded(RevocationDocumentUploaded {
                document: Document {
                    kind: document_kind_from_proto(document.kind)?,
                    format: document_format_from_proto(document.format)?,
                    size: document.size,
                    sha256: document.sha256,
                    object: document.object,
                    uploaded_at: required_time(&document.uploaded_at, "uploaded_at")?,
                },
            })
        }
        E::ReviewQueued(e) => Event::ReviewQueued(ReviewQueued {
            queued_at: required_time(&e.queued_at, "queued_at")?,
            task_id: e.task_id,
            approvals_needed: e.approvals_needed,
            reissue_id: non_empty(e.reissue_id),
        }),
        E::ReviewApproved(e) => Event::ReviewApproved(ReviewApproved {
            vote: vote_from_event(e.vote)?,
            reissue_id: non_empty(e.reissue_id),
        }),
        E::ReviewPassed(e) => Event::ReviewPassed(ReviewPassed {
            passed_at: required_time(&e.passed_at, "passed_at")?,
            reissue_id: non_empty(e.reissue_id),
        }),
        E::ReviewRejected(e) => Event::ReviewRejected(ReviewRejected {
            vote: vote_from_event(e.vote)?,
            reissue_id: non_empty(e.reissue_id),
        }),
        E::ReissueRequested(e) => Event::ReissueRequested(ReissueRequested {
            new_certificate_id: CertificateId::parse(&e.new_certificate_id)?,
            domains: domains(&e.domains)?,
            key: reissue_key_from_event(e.key)?,
            needs_validation: e.needs_validation,
            needs_review: e.needs_review,
            requested_at: required_time(&e.requested_at, "requested_at")?,
            validation_method: method_from_proto(e.validation_method)?,
            enterprise_info: e.enterprise_info.into_iter().collect(),
            requested_by: e.requested_by,
            reissue_id: e.reissue_id,
            reason: e.reason,
        }),
        E::ReissueCompleted(e) => Event::ReissueCompleted(ReissueCompleted {
            certificate_id: CertificateId::parse(&e.certificate_id)?,
            completed_at: required_time(&e.completed_at, "completed_at")?,
            reissue_id: e.reissue_id,
        }),
        E::Revoked(e) => Event::Revoked(CertificateRevoked {
            reason: RevocationReason::from_rfc5280_code(e.reason)?,
            revoked_at: required_time(&e.revoked_at, "revoked_at")?,
            cause: match pe::RevocationCause::try_from(e.cause) {
                Ok(pe::RevocationCause::Requested) => RevocationCause::Requested,
                Ok(pe::RevocationCause::OriginalRevoked) => RevocationCause::OriginalRevoked {
                    original: CertificateId::parse(&e.cause_certificate_id)?,
                },
                Ok(pe::RevocationCause::KeyCompromised) => RevocationCause::KeyCompromised {
                    certificate: CertificateId::parse(&e.cause_certificate_id)?,
                },
                Ok(pe::RevocationCause::Unspecified) | Err(_) => {
                    return Err(ConvertError::Missing("cause"));
                }
            },
        }),
        E::ValidationChallengesIssued(e) => {
            Event::ValidationChallengesIssued(ValidationChallengesIssued {
                challenges: e
                    .challenges
                    .into_iter()
                    .map(|c| {
                        Ok(Challenge {
                            domain: DomainName::parse(&c.domain)?,
                            method: stored_method(c.method)?,
                            value: c.value,
                            validated_at: c.validated_at.as_ref().map(timestamp_from_proto),
                        })
                    })
                    .collect::<Result<_, ConvertError>>()?,
                issued_at: required_time(&e.issued_at, "issued_at")?,
                deadline: required_time(&e.deadline, "deadline")?,
                reissue_id: non_empty(e.reissue_id),
            })
        }
        E::DomainValidated(e) => Event::DomainValidated(DomainValidated {
            domain: DomainName::parse(&e.domain)?,
            method: stored_method(e.method)?,
            validated_at: required_time(&e.validated_at, "validated_at")?,
            reissue_id: non_empty(e.reissue_id),
        }),
        E::ValidationPassed(e) => Event::ValidationPassed(ValidationPassed {
            passed_at: required_time(&e.passed_at, "passed_at")?,
            reissue_id: non_empty(e.reissue_id),
        }),
        E::ValidationExpired(e) => Event::ValidationExpired(ValidationExpired {
            expired_at: required_time(&e.expired_at, "expired_at")?,
            reissue_id: non_empty(e.reissue_id),
        }),
        E::RevocationFailed(e) => Event::RevocationFailed(RevocationFailed {
            failure: match pb::RevocationFailure::try_from(e.failure) {
                Ok(pb::RevocationFailure::ValidationExpired) => {
                    RevocationFailure::ValidationExpired
                }
                Ok(pb::RevocationFailure::ReviewRejected) => RevocationFailure::ReviewRejected,
                Ok(pb::RevocationFailure::Unspecified) | Err(_) => {
                    return Err(ConvertError::Missing("failure"));
                }
            },
            failed_at: required_time(&e.failed_at, "failed_at")?,
        }),
        E::ReissueFailed(e) => Event::ReissueFailed(ReissueFailed {
            reissue_id: e.reissue_id,
            cause: match pe::ReissueFailure::try_from(e.cause) {
                Ok(pe::ReissueFailure::OriginalRevoked) => ReissueFailure::OriginalRevoked,
                Ok(pe::ReissueFailure::ValidationExpired) => ReissueFailure::ValidationExpired,
                Ok(pe::ReissueFailure::NotIssued) => ReissueFailure::NotIssued,
                Ok(pe::ReissueFailure::ReviewRejected) => ReissueFailure::ReviewRejected,
                Ok(pe::ReissueFailure::Unspecified) | Err(_) => {
                    return Err(ConvertError::Missing("cause"));
                }
            },
            failed_at: required_time(&e.failed_at, "failed_at")?,
        }),
        E::Deleted(e) => Event::Deleted(CertificateDeleted {
            deleted_at: required_time(&e.deleted_at, "deleted_at")?,
        }),
        E::RenewalOrdered(e) => Event::RenewalOrdered(RenewalOrdered {
            ordered_at: required_time(&e.ordered_at, "ordered_at")?,
        }),
    })
}

fn reissue_key_to_event(key: &ReissueKey) -> pe::ReissueKey {
    use pe::reissue_key::Source;
    let source = match key {
        ReissueKey::Original => Source::Original(pe::ReissueKeyOriginal {}),
        ReissueKey::Generated {
            algorithm,
            key_record,
            public_key_der,
        } => Source::Generated(pe::ReissueKeyGenerated {
            key_algorithm: algorithm_to_proto(*algorithm) as i32,
            key_record: key_record.clone(),
            public_key_der: public_key_der.clone(),
        }),
        ReissueKey::Csr {
            algorithm,
            names,
            public_key_sha256,
            public_key_der,
        } => Source::Csr(pe::ReissueKeyCsr {
            key_algorithm: algorithm_to_proto(*algorithm) as i32,
            names: names.iter().map(ToString::to_string).collect(),
            public_key_sha256: public_key_sha256.clone(),
            public_key_der: public_key_der.clone(),
        }),
    };
    pe::ReissueKey {
        source: Some(source),
    }
}

fn reissue_key_from_event(key: Option<pe::ReissueKey>) -> Result<ReissueKey, ConvertError> {
    use pe::reissue_key::Source;
    Ok(
        match key
            .and_then(|k| k.source)
            .ok_or(ConvertError::Missing("reissue key"))?
        {
            Source::Original(_) => ReissueKey::Original,
            Source::Generated(generated) => ReissueKey::Generated {
                algorithm: algorithm_from_proto(generated.key_algorithm)?,
                key_record: generated.key_record,
                public_key_der: generated.public_key_der,
            },
            Source::Csr(csr) => ReissueKey::Csr {
                algorithm: algorithm_from_proto(csr.key_algorithm)?,
                names: csr
                    .names
                    .iter()
                    .map(|n| DomainName::parse(n))
                    .collect::<Result<_, _>>()?,
                public_key_sha256: csr.public_key_sha256,
                public_key_der: csr.public_key_der,
            },
        },
    )
}

fn non_empty(text: String) -> Option<String> {
    (!text.is_empty()).then_some(text)
}

/// A command's events as one message body.
pub fn encode_batch(events: &[Event]) -> Vec<u8> {
    pe::EventBatch {
        events: events.iter().map(event_to_proto).collect(),
    }
    .encode_to_vec()
}

/// A message body back as the command's events.
pub fn decode_batch(bytes: &[u8]) -> Result<Vec<Event>, ConvertError> {
    pe::EventBatch::decode(bytes)?
        .events
        .into_iter()
        .map(event_from_proto)
        .collect()
}

/// A one-line account of an event, for histories.
pub fn event_summary(event: &Event) -> String {
    let names = |domains: &[DomainName]| {
        domains
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    match event {
        Event::Issued(e) if e.legacy => format!(
            "{} {} certificate for {} recorded by an administrator: issued before certflow, \
             not signed by it",
            e.brand,
            e.level,
            names(&e.domains)
        ),
        Event::Issued(e) => format!(
            "{} {} certificate issued for {}",
            e.brand,
            e.level,
            names(&e.domains)
        ),
        Event::Uploaded(e) => format!(
            "certificate for {} uploaded, issued by {}",
            names(&e.domains),
            e.issuer
        ),
        Event::RevocationRequested(e) => {
            format!("revocation requested ({}), path: {}", e.reason, e.path)
        }
        Event::Revoked(e) => match &e.cause {
            RevocationCause::Requested => format!("revoked ({}) as requested", e.reason),
            RevocationCause::OriginalRevoked { original } => {
                format!("revoked ({}) with its original {original}", e.reason)
            }
            RevocationCause::KeyCompromised { certificate } => format!(
                "revoked ({}): its key was compromised, as the revocation of {certificate} \
                 reported",
                e.reason
            ),
        },
        Event::Deleted(_) => "deleted; its private key was erased".to_string(),
        Event::RenewalOrdered(_) => "renewal ordered".to_string(),
        Event::ValidationChallengesIssued(e) => format!(
            "domain validation challenges issued for {}, due by {}",
            e.challenges
                .iter()
                .map(|c| format!("{} ({})", c.domain, c.method))
                .collect::<Vec<_>>()
                .join(", "),
            timestamp_to_proto(e.deadline)
        ),
        Event::DomainValidated(e) => format!("{} proven by {}", e.domain, e.method),
        Event::ValidationPassed(_) => "every domain proven".to_string(),
        Event::ValidationExpired(_) => {
            "domain validation expired before every domain was proven".to_string()
        }
        Event::RevocationFailed(e) => match e.failure {
            RevocationFailure::ValidationExpired => {
                "revocation failed: validation expired (VALIDATION_EXPIRED); the certificate \
                 is issued again"
                    .to_string()
            }
            RevocationFailure::ReviewRejected => {
                "revocation rejected by review; the certificate is issued again".to_string()
            }
        },
        Event::RevocationDocumentUploaded(e) => format!(
            "stamped document uploaded ({}, {} bytes)",
            e.document.format.media_type(),
            e.document.size
        ),
        Event::ReviewQueued(e) => format!(
            "review task {} queued, {} approval(s) needed",
            e.task_id, e.approvals_needed
        ),
        Event::ReviewApproved(e) => {
            format!("approved by {}: {}", e.vote.reviewer, e.vote.comment)
        }
        Event::ReviewPassed(_) => "review approved".to_string(),
        Event::ReviewRejected(e) => {
            format!("rejected by {}: {}", e.vote.reviewer, e.vote.comment)
        }
        Event::ReissueFailed(e) => match e.cause {
            ReissueFailure::OriginalRevoked => {
                format!(
                    "reissue {} failed: the certificate was revoked",
                    e.reissue_id
                )
            }
            ReissueFailure::ValidationExpired => {
                format!("reissue {} failed: domain validation expired", e.reissue_id)
            }
            ReissueFailure::ReviewRejected => {
                format!("reissue {} failed: a reviewer rejected it", e.reissue_id)
            }
            ReissueFailure::NotIssued => format!(
                "reissue {} failed: the CA would not certify the key",
                e.reissue_id
            ),
        },
        Event::ReissueRequested(e) => format!(
            "reissue {} requested for {} ({})",
            e.reissue_id,
            names(&e.domains),
            e.reason
        ),
        Event::ReissueCompleted(e) => format!(
            "reissue {} completed: certificate {}",
            e.reissue_id, e.certificate_id
        ),
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

    #[test]
    fn events_round_trip() {
        let id = CertificateId::parse("c1").expect("valid");
        let domain = DomainName::parse("a.example.com").expect("valid");
        let events = vec![
            Event::Issued(CertificateIssued {
                id,
                account: "acme".into(),
                brand: Brand::TrustAsia,
                level: Level::Dv,
                paid: false,
                algorithm: KeyAlgorithm::EccP384,
                domains: vec![domain.clone()],
                term_years: 2,
                issued_at: Timestamp::from_unix_seconds(10),
                not_before: Timestamp::from_unix_seconds(10),
                not_after: Timestamp::from_unix_seconds(20),
                validation_setup: BTreeMap::from([(domain, ValidationSetup::FileAuto)]),
                renewal_ordered: true,
                x509: Some(X509Facts {
                    serial_number: "4a".into(),
                    public_key_sha256: "ab".into(),
                    pem: "pem".into(),
                    chain_pem: "chain".into(),
                    private_key_id: Some("key-1".into()),
                }),
                original: Some(CertificateId::parse("c0").expect("valid")),
                enterprise_info: BTreeMap::from([("organization".into(), "Acme".into())]),
                legacy: false,
            }),
            Event::ReissueRequested(ReissueRequested {
                reissue_id: "r-1".into(),
                new_certificate_id: CertificateId::parse("c2").expect("valid"),
                domains: vec![DomainName::parse("a.example.com").expect("valid")],
                key: ReissueKey::Csr {
                    algorithm: KeyAlgorithm::Rsa2048,
                    names: vec![DomainName::parse("a.example.com").expect("valid")],
                    public_key_sha256: "ab".into(),
                    public_key_der: vec![48, 0],
                },
                reason: "rotation".into(),
                needs_validation: true,
                needs_review: false,
                requested_at: Timestamp::from_unix_seconds(11),
                validation_method: ValidationMethod::File,
                enterprise_info: BTreeMap::from([("organization".into(), "New".into())]),
                requested_by: "acme".into(),
            }),
            Event::ReissueCompleted(ReissueCompleted {
                reissue_id: "r-1".into(),
                certificate_id: CertificateId::parse("c2").expect("valid"),
                completed_at: Timestamp::from_unix_seconds(12),
            }),
            Event::RevocationRequested(RevocationRequested {
                reason: RevocationReason::CessationOfOperation,
                description: "closing".into(),
                path: RevocationPath::ManualReview {
                    document_required: true,
                },
                requested_at: Timestamp::from_unix_seconds(15),
                validation_method: ValidationMethod::File,
                requested_by: "acme".into(),
            }),
            Event::RevocationDocumentUploaded(RevocationDocumentUploaded {
                document: Document {
                    kind: DocumentKind::Application,
                    format: DocumentFormat::Gif,
                    size: 10,
                    sha256: "ab".into(),
                    object: "doc".into(),
                    uploaded_at: Timestamp::from_unix_seconds(15),
                },
            }),
            Event::ReviewQueued(ReviewQueued {
                task_id: "c1/15000".into(),
                approvals_needed: 2,
                queued_at: Timestamp::from_unix_seconds(15),
                reissue_id: None,
            }),
            Event::ReviewApproved(ReviewApproved {
                reissue_id: Some("r-2".into()),
                vote: Vote {
                    reviewer: "rita".into(),
                    account: "review".into(),
                    comment: "ok".into(),
                    at: Timestamp::from_unix_seconds(16),
                },
            }),
            Event::ReviewPassed(ReviewPassed {
                passed_at: Timestamp::from_unix_seconds(16),
                reissue_id: None,
            }),
            Event::ReviewRejected(ReviewRejected {
                reissue_id: None,
                vote: Vote {
                    reviewer: "remy".into(),
                    account: "review".into(),
                    comment: "no".into(),
                    at: Timestamp::from_unix_seconds(16),
                },
            }),
            Event::ValidationChallengesIssued(ValidationChallengesIssued {
                challenges: vec![Challenge {
                    domain: DomainName::parse("a.example.com").expect("valid"),
                    method: ValidationMethod::File,
                    value: "v".into(),
                    validated_at: None,
                }],
                issued_at: Timestamp::from_unix_seconds(15),
                deadline: Timestamp::from_unix_seconds(18),
                reissue_id: None,
            }),
            Event::DomainValidated(DomainValidated {
                domain: DomainName::parse("a.example.com").expect("valid"),
                method: ValidationMethod::File,
                validated_at: Timestamp::from_unix_seconds(16),
                reissue_id: Some("r-9".into()),
            }),
            Event::ValidationPassed(ValidationPassed {
                passed_at: Timestamp::from_unix_seconds(16),
                reissue_id: None,
            }),
            Event::ValidationExpired(ValidationExpired {
                expired_at: Timestamp::from_unix_seconds(16),
                reissue_id: Some("r-9".into()),
            }),
            Event::RevocationFailed(RevocationFailed {
                failure: RevocationFailure::ValidationExpired,
                failed_at: Timestamp::from_unix_seconds(16),
            }),
            Event::ReissueFailed(ReissueFailed {
                reissue_id: "r-1".into(),
                cause: ReissueFailure::OriginalRevoked,
                failed_at: Timestamp::from_unix_seconds(16),
            }),
            Event::Revoked(CertificateRevoked {
                reason: RevocationReason::KeyCompromise,
                revoked_at: Timestamp::from_unix_seconds(16),
                cause: RevocationCause::KeyCompromised {
                    certificate: CertificateId::parse("c0").expect("valid"),
                },
            }),
            Event::Revoked(CertificateRevoked {
                reason: RevocationReason::Unspecified,
                revoked_at: Timestamp::from_unix_seconds(16),
                cause: RevocationCause::Requested,
            }),
        ];
        let decoded = decode_batch(&encode_batch(&events)).expect("decodes");
        assert_eq!(decoded, events);
    }

    #[test]
    fn summaries_say_what_happened_in_rfc_terms() {
        let revoked = Event::Revoked(CertificateRevoked {
            reason: RevocationReason::KeyCompromise,
            revoked_at: Timestamp::from_unix_seconds(1),
            cause: RevocationCause::Requested,
        });
        assert_eq!(
            event_summary(&revoked),
            "revoked (keyCompromise) as requested"
        );
        let requested = Event::RevocationRequested(RevocationRequested {
            reason: RevocationReason::Superseded,
            description: String::new(),
            path: RevocationPath::AutomaticValidation,
            requested_at: Timestamp::from_unix_seconds(1),
            validation_method: ValidationMethod::Dns,
            requested_by: "acme".into(),
        });
        assert_eq!(
            event_summary(&requested),
            "revocation requested (superseded), path: automatic validation"
        );
    }

    #[test]
    fn garbage_is_a_decode_error_not_a_panic() {
        assert!(decode_batch(&[0xff, 0xff, 0xff]).is_err());
    }
}
