//! The stored event schema: domain [`Event`]s as `certflow.events.v1` messages, one
//! [`EventBatch`](pe::EventBatch) per command, as the event log keeps them.
//!
//! The log is never rewritten, so every batch it holds must read back as the same events
//! for as long as certflow runs: fields and variants are added, never renumbered, reused or
//! given a new meaning. The enums borrowed from `certflow/v1/types.proto` are written and
//! read through [`api`](super::api), so their numbers are bound by both contracts. An empty
//! text field is an absent optional one. Reading refuses what an event cannot do without (a
//! time, a cause, a validation method) with a [`ConvertError`], and accepts what records
//! older than a field lack: a revocation or reissue request without a validation method was
//! DNS.

use certflow_domain::{
    CertificateDeleted, CertificateId, CertificateIssued, CertificateRevoked, CertificateUploaded,
    Challenge, Document, DocumentFormat, DocumentKind, DomainError, DomainName, DomainValidated,
    Event, ReissueCompleted, ReissueFailed, ReissueFailure, ReissueKey, ReissueRequested,
    RenewalOrdered, ReviewApproved, ReviewPassed, ReviewQueued, ReviewRejected, RevocationCause,
    RevocationDocumentUploaded, RevocationFailed, RevocationFailure, RevocationPath,
    RevocationReason, RevocationRequested, Timestamp, ValidationChallengesIssued,
    ValidationExpired, ValidationMethod, ValidationPassed, Vote, X509Facts,
};
use prost::Message;

use super::api::{
    algorithm_from_proto, algorithm_to_proto, brand_from_proto, brand_to_proto,
    document_format_to_proto, document_kind_to_proto, failure_to_proto, level_from_proto,
    level_to_proto, method_from_proto, method_to_proto, path_to_proto, reason_to_proto,
    setups_from_proto, setups_to_proto, timestamp_from_proto, timestamp_to_proto, unknown,
};
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

/// A command's events as one message body.
pub fn encode_batch(events: &[Event]) -> Vec<u8> {
    encode_recorded(events, None)
}

/// A command's events and the command that appended them (GEN-4), as one message body: what
/// the event log stores.
pub fn encode_recorded(events: &[Event], command: Option<pe::CommandRecord>) -> Vec<u8> {
    pe::EventBatch {
        events: events.iter().map(event_to_proto).collect(),
        command,
    }
    .encode_to_vec()
}

/// A message body back as the command's events.
pub fn decode_batch(bytes: &[u8]) -> Result<Vec<Event>, ConvertError> {
    decode_recorded(bytes).map(|(events, _)| events)
}

/// A message body back as the command's events and the command, if the body records it
/// (batches stored before [`pe::CommandRecord`] existed carry it in message headers).
pub fn decode_recorded(
    bytes: &[u8],
) -> Result<(Vec<Event>, Option<pe::CommandRecord>), ConvertError> {
    let batch = pe::EventBatch::decode(bytes)?;
    let events = batch
        .events
        .into_iter()
        .map(event_from_proto)
        .collect::<Result<_, _>>()?;
    Ok((events, batch.command))
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
                crl_shard: x.crl_shard,
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
                RevocationCause::KeyProven => (pe::RevocationCause::KeyProven, String::new()),
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
                crl_shard: x.crl_shard,
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
                Ok(pe::RevocationCause::KeyProven) => RevocationCause::KeyProven,
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

fn required_time(
    t: &Option<prost_types::Timestamp>,
    field: &'static str,
) -> Result<Timestamp, ConvertError> {
    t.as_ref()
        .map(timestamp_from_proto)
        .ok_or(ConvertError::Missing(field))
}

fn stored_method(value: i32) -> Result<ValidationMethod, ConvertError> {
    match pb::ValidationMethod::try_from(value) {
        Ok(pb::ValidationMethod::Unspecified) | Err(_) => {
            Err(ConvertError::Missing("validation method"))
        }
        Ok(_) => Ok(method_from_proto(value)?),
    }
}

fn document_kind_from_proto(value: i32) -> Result<DocumentKind, ConvertError> {
    match pb::DocumentKind::try_from(value) {
        Ok(pb::DocumentKind::Application) => Ok(DocumentKind::Application),
        Ok(pb::DocumentKind::ConfirmationLetter) => Ok(DocumentKind::ConfirmationLetter),
        _ => Err(ConvertError::Missing("document kind")),
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

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use certflow_domain::{Brand, KeyAlgorithm, Level, ValidationSetup};

    use super::*;

    /// One event of every kind, and every value of the enums an event holds.
    fn one_of_each() -> Vec<Event> {
        let id = |text: &str| CertificateId::parse(text).expect("valid");
        let domain = |text: &str| DomainName::parse(text).expect("valid");
        let at = Timestamp::from_unix_seconds;
        let reissue_requested = |key: ReissueKey, validation_method| {
            Event::ReissueRequested(ReissueRequested {
                reissue_id: "r-1".into(),
                new_certificate_id: id("c2"),
                domains: vec![domain("a.example.com")],
                key,
                reason: "rotation".into(),
                needs_validation: true,
                needs_review: false,
                requested_at: at(11),
                validation_method,
                enterprise_info: BTreeMap::from([("organization".into(), "New".into())]),
                requested_by: "acme".into(),
            })
        };
        let revocation_requested = |reason, path, validation_method| {
            Event::RevocationRequested(RevocationRequested {
                reason,
                description: "closing".into(),
                path,
                requested_at: at(15),
                validation_method,
                requested_by: "acme".into(),
            })
        };
        let document_uploaded = |kind, format| {
            Event::RevocationDocumentUploaded(RevocationDocumentUploaded {
                document: Document {
                    kind,
                    format,
                    size: 10,
                    sha256: "ab".into(),
                    object: "doc".into(),
                    uploaded_at: at(15),
                },
            })
        };
        let revoked = |reason, cause| {
            Event::Revoked(CertificateRevoked {
                reason,
                revoked_at: at(16),
                cause,
            })
        };
        let reissue_failed = |cause| {
            Event::ReissueFailed(ReissueFailed {
                reissue_id: "r-1".into(),
                cause,
                failed_at: at(16),
            })
        };
        let revocation_failed = |failure| {
            Event::RevocationFailed(RevocationFailed {
                failure,
                failed_at: at(16),
            })
        };
        vec![
            Event::Issued(CertificateIssued {
                id: id("c1"),
                account: "acme".into(),
                brand: Brand::TrustAsia,
                level: Level::Dv,
                paid: false,
                algorithm: KeyAlgorithm::EccP384,
                domains: vec![domain("a.example.com")],
                term_years: 2,
                issued_at: at(10),
                not_before: at(10),
                not_after: at(20),
                validation_setup: BTreeMap::from([(
                    domain("a.example.com"),
                    ValidationSetup::FileAuto,
                )]),
                renewal_ordered: true,
                x509: Some(X509Facts {
                    serial_number: "4a".into(),
                    public_key_sha256: "ab".into(),
                    pem: "pem".into(),
                    chain_pem: "chain".into(),
                    private_key_id: Some("key-1".into()),
                    crl_shard: None,
                }),
                original: Some(id("c0")),
                enterprise_info: BTreeMap::from([("organization".into(), "Acme".into())]),
                legacy: false,
            }),
            // CA-3: issued before certflow and recorded by an administrator.
            Event::Issued(CertificateIssued {
                id: id("c3"),
                account: "acme".into(),
                brand: Brand::Other,
                level: Level::Ev,
                paid: true,
                algorithm: KeyAlgorithm::Rsa4096,
                domains: vec![domain("a.example.com"), domain("*.b.example.com")],
                term_years: 1,
                issued_at: at(-10),
                not_before: Timestamp::from_unix_millis(-9_999),
                not_after: Timestamp::from_unix_millis(20_001),
                validation_setup: BTreeMap::from([
                    (domain("a.example.com"), ValidationSetup::None),
                    (domain("*.b.example.com"), ValidationSetup::DnsAuto),
                ]),
                renewal_ordered: false,
                x509: Some(X509Facts {
                    serial_number: "4b".into(),
                    public_key_sha256: "cd".into(),
                    pem: "pem".into(),
                    chain_pem: String::new(),
                    private_key_id: None,
                    crl_shard: None,
                }),
                original: None,
                enterprise_info: BTreeMap::new(),
                legacy: true,
            }),
            // Recorded before the product had a CA: no X.509 facts.
            Event::Issued(CertificateIssued {
                id: id("c4"),
                account: "acme".into(),
                brand: Brand::Sectigo,
                level: Level::Ov,
                paid: true,
                algorithm: KeyAlgorithm::Sm2,
                domains: vec![domain("a.example.com")],
                term_years: 1,
                issued_at: at(10),
                not_before: at(10),
                not_after: at(20),
                validation_setup: BTreeMap::new(),
                renewal_ordered: false,
                x509: None,
                original: None,
                enterprise_info: BTreeMap::from([
                    ("organization".into(), "Acme".into()),
                    ("country".into(), "CN".into()),
                ]),
                legacy: false,
            }),
            Event::Uploaded(CertificateUploaded {
                id: id("c5"),
                account: "acme".into(),
                level: Level::Ov,
                algorithm: KeyAlgorithm::EccP256,
                domains: vec![domain("a.example.com")],
                uploaded_at: at(12),
                not_before: at(1),
                not_after: at(30),
                public_key_sha256: "ef".into(),
                serial_number: "0c".into(),
                issuer: "Elsewhere CA".into(),
                pem: "pem".into(),
                private_key_id: Some("key-5".into()),
            }),
            Event::Uploaded(CertificateUploaded {
                id: id("c6"),
                account: "acme".into(),
                level: Level::Dv,
                algorithm: KeyAlgorithm::Other,
                domains: vec![domain("a.example.com")],
                uploaded_at: at(12),
                not_before: at(1),
                not_after: at(30),
                public_key_sha256: "ef".into(),
                serial_number: "0d".into(),
                issuer: "Elsewhere CA".into(),
                pem: "pem".into(),
                private_key_id: None,
            }),
            reissue_requested(
                ReissueKey::Csr {
                    algorithm: KeyAlgorithm::Rsa2048,
                    names: vec![domain("a.example.com")],
                    public_key_sha256: "ab".into(),
                    public_key_der: vec![48, 0],
                },
                ValidationMethod::File,
            ),
            reissue_requested(ReissueKey::Original, ValidationMethod::Dns),
            reissue_requested(
                ReissueKey::Generated {
                    algorithm: KeyAlgorithm::Rsa3072,
                    key_record: "key-7".into(),
                    public_key_der: vec![48, 1, 0],
                },
                ValidationMethod::DnsAuto,
            ),
            Event::ReissueCompleted(ReissueCompleted {
                reissue_id: "r-1".into(),
                certificate_id: id("c2"),
                completed_at: at(12),
            }),
            revocation_requested(
                RevocationReason::CessationOfOperation,
                RevocationPath::ManualReview {
                    document_required: true,
                },
                ValidationMethod::File,
            ),
            revocation_requested(
                RevocationReason::Unspecified,
                RevocationPath::ManualReview {
                    document_required: false,
                },
                ValidationMethod::Dns,
            ),
            revocation_requested(
                RevocationReason::Superseded,
                RevocationPath::Immediate,
                ValidationMethod::Dns,
            ),
            revocation_requested(
                RevocationReason::AffiliationChanged,
                RevocationPath::AutomaticValidation,
                ValidationMethod::DnsAuto,
            ),
            revocation_requested(
                RevocationReason::KeyCompromise,
                RevocationPath::DomainValidation,
                ValidationMethod::File,
            ),
            document_uploaded(DocumentKind::Application, DocumentFormat::Gif),
            document_uploaded(DocumentKind::Application, DocumentFormat::Jpeg),
            document_uploaded(DocumentKind::ConfirmationLetter, DocumentFormat::Png),
            document_uploaded(DocumentKind::ConfirmationLetter, DocumentFormat::Pdf),
            Event::ReviewQueued(ReviewQueued {
                task_id: "c1/15000".into(),
                approvals_needed: 2,
                queued_at: at(15),
                reissue_id: None,
            }),
            Event::ReviewApproved(ReviewApproved {
                reissue_id: Some("r-2".into()),
                vote: Vote {
                    reviewer: "rita".into(),
                    account: "review".into(),
                    comment: "ok".into(),
                    at: at(16),
                },
            }),
            Event::ReviewPassed(ReviewPassed {
                passed_at: at(16),
                reissue_id: None,
            }),
            Event::ReviewRejected(ReviewRejected {
                reissue_id: None,
                vote: Vote {
                    reviewer: "remy".into(),
                    account: "review".into(),
                    comment: "no".into(),
                    at: at(16),
                },
            }),
            Event::ValidationChallengesIssued(ValidationChallengesIssued {
                challenges: vec![
                    Challenge {
                        domain: domain("a.example.com"),
                        method: ValidationMethod::File,
                        value: "v".into(),
                        validated_at: None,
                    },
                    Challenge {
                        domain: domain("*.b.example.com"),
                        method: ValidationMethod::Dns,
                        value: "w".into(),
                        validated_at: Some(at(17)),
                    },
                    Challenge {
                        domain: domain("c.example.com"),
                        method: ValidationMethod::DnsAuto,
                        value: "x".into(),
                        validated_at: None,
                    },
                ],
                issued_at: at(15),
                deadline: at(18),
                reissue_id: None,
            }),
            Event::DomainValidated(DomainValidated {
                domain: domain("a.example.com"),
                method: ValidationMethod::File,
                validated_at: at(16),
                reissue_id: Some("r-9".into()),
            }),
            Event::ValidationPassed(ValidationPassed {
                passed_at: at(16),
                reissue_id: None,
            }),
            Event::ValidationExpired(ValidationExpired {
                expired_at: at(16),
                reissue_id: Some("r-9".into()),
            }),
            revocation_failed(RevocationFailure::ValidationExpired),
            revocation_failed(RevocationFailure::ReviewRejected),
            reissue_failed(ReissueFailure::OriginalRevoked),
            reissue_failed(ReissueFailure::NotIssued),
            reissue_failed(ReissueFailure::ValidationExpired),
            reissue_failed(ReissueFailure::ReviewRejected),
            revoked(
                RevocationReason::KeyCompromise,
                RevocationCause::KeyCompromised {
                    certificate: id("c0"),
                },
            ),
            revoked(RevocationReason::Unspecified, RevocationCause::Requested),
            revoked(
                RevocationReason::Superseded,
                RevocationCause::OriginalRevoked { original: id("c0") },
            ),
            Event::Deleted(CertificateDeleted { deleted_at: at(40) }),
            Event::RenewalOrdered(RenewalOrdered { ordered_at: at(19) }),
            // CA-4: signed into shard 9 of its issuer's CRL.
            Event::Issued(CertificateIssued {
                id: id("c9"),
                account: "acme".into(),
                brand: Brand::GeoTrust,
                level: Level::Dv,
                paid: false,
                algorithm: KeyAlgorithm::EccP256,
                domains: vec![domain("a.example.com")],
                term_years: 1,
                issued_at: at(10),
                not_before: at(10),
                not_after: at(20),
                validation_setup: BTreeMap::new(),
                renewal_ordered: false,
                x509: Some(X509Facts {
                    serial_number: "4c".into(),
                    public_key_sha256: "ef".into(),
                    pem: "pem".into(),
                    chain_pem: "chain".into(),
                    private_key_id: None,
                    crl_shard: Some(9),
                }),
                original: None,
                enterprise_info: BTreeMap::new(),
                legacy: false,
            }),
            // REV-16: revoked by the holder of its key.
            revoked(RevocationReason::KeyCompromise, RevocationCause::KeyProven),
        ]
    }

    /// Which kind an event is. With no wildcard arm, a new kind of event does not compile
    /// here until it has a number, which `KINDS` then counts.
    fn kind(event: &Event) -> usize {
        match event {
            Event::Issued(_) => 0,
            Event::Uploaded(_) => 1,
            Event::RevocationRequested(_) => 2,
            Event::Revoked(_) => 3,
            Event::Deleted(_) => 4,
            Event::RenewalOrdered(_) => 5,
            Event::ValidationChallengesIssued(_) => 6,
            Event::DomainValidated(_) => 7,
            Event::ValidationPassed(_) => 8,
            Event::ValidationExpired(_) => 9,
            Event::RevocationFailed(_) => 10,
            Event::ReissueFailed(_) => 11,
            Event::RevocationDocumentUploaded(_) => 12,
            Event::ReviewQueued(_) => 13,
            Event::ReviewApproved(_) => 14,
            Event::ReviewPassed(_) => 15,
            Event::ReviewRejected(_) => 16,
            Event::ReissueRequested(_) => 17,
            Event::ReissueCompleted(_) => 18,
        }
    }

    /// How many kinds of event there are.
    const KINDS: usize = 19;

    /// Every kind of event, with every value of the enums it holds, is read back exactly
    /// as it was written. The one value that does not come back, by design, is a present but
    /// empty optional text: see `an_empty_optional_text_is_stored_as_absent`.
    #[test]
    fn events_round_trip() {
        let events = one_of_each();
        let kinds: BTreeSet<usize> = events.iter().map(kind).collect();
        assert_eq!(kinds, (0..KINDS).collect(), "one event of every kind");
        let decoded = decode_batch(&encode_batch(&events)).expect("decodes");
        assert_eq!(decoded, events);
    }

    /// A batch as an earlier build wrote it still reads as the same events, and is written
    /// to the same bytes. The fixture is never regenerated: a kind of event added later
    /// goes at the end of `one_of_each`, after the ones the fixture holds.
    #[test]
    fn stored_batches_read_as_they_were_written() {
        let fixture: Vec<u8> = include_str!("../../testdata/events_v1_batch.hex")
            .split_whitespace()
            .flat_map(|line| line.as_bytes().chunks(2))
            .map(|pair| {
                let pair = std::str::from_utf8(pair).expect("ascii");
                u8::from_str_radix(pair, 16).expect("hex")
            })
            .collect();
        let decoded = decode_batch(&fixture).expect("decodes");
        let sample = one_of_each();
        assert_eq!(decoded, sample[..decoded.len()]);
        assert_eq!(encode_batch(&decoded), fixture);
    }

    /// An absent optional text is stored as an empty string, as proto3 stores an unset
    /// one, so a present but empty one reads back as absent: no reissue id, no key record.
    #[test]
    fn an_empty_optional_text_is_stored_as_absent() {
        let written = vec![
            Event::ValidationPassed(ValidationPassed {
                passed_at: Timestamp::from_unix_seconds(16),
                reissue_id: Some(String::new()),
            }),
            Event::Uploaded(CertificateUploaded {
                id: CertificateId::parse("c5").expect("valid"),
                account: "acme".into(),
                level: Level::Dv,
                algorithm: KeyAlgorithm::EccP256,
                domains: vec![DomainName::parse("a.example.com").expect("valid")],
                uploaded_at: Timestamp::from_unix_seconds(12),
                not_before: Timestamp::from_unix_seconds(1),
                not_after: Timestamp::from_unix_seconds(30),
                public_key_sha256: "ef".into(),
                serial_number: "0c".into(),
                issuer: "Elsewhere CA".into(),
                pem: "pem".into(),
                private_key_id: Some(String::new()),
            }),
        ];
        let read = decode_batch(&encode_batch(&written)).expect("decodes");
        let Event::ValidationPassed(passed) = &read[0] else {
            panic!("{:?}", read[0]);
        };
        assert_eq!(passed.reissue_id, None);
        let Event::Uploaded(uploaded) = &read[1] else {
            panic!("{:?}", read[1]);
        };
        assert_eq!(uploaded.private_key_id, None);
    }

    #[test]
    fn garbage_is_a_decode_error_not_a_panic() {
        assert!(decode_batch(&[0xff, 0xff, 0xff]).is_err());
    }
}
