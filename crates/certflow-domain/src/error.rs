//! Refusals: what the caller did that the rules do not allow, with the rule and reason code.

use std::fmt;

/// The rule ids of `docs/rules.md`: the rules the domain enforces, and those the services enforce
/// around it (GEN-2, GEN-4, GEN-6, REV-15).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    Rev1,
    Rev2,
    Rev3,
    Rev4,
    Rev5,
    Rev6,
    Rev7,
    Rev8,
    Rev9,
    Rev10,
    Rev11,
    Rev12,
    Rev13,
    Rev14,
    Rev15,
    Rev16,
    Rev17,
    Rei1,
    Rei2,
    Rei3,
    Rei4,
    Rei5,
    Rei6,
    Rei7,
    Rei8,
    Rei9,
    Rei10,
    Rei11,
    Rei12,
    RevR1,
    RevR2,
    RevR3,
    RevR4,
    RevR5,
    Ca1,
    Ca2,
    Ca3,
    Ca4,
    Gen1,
    Gen2,
    Gen3,
    Gen4,
    Gen5,
    Gen6,
    Del1,
    Del2,
    Dl1,
    Ren1,
}

impl Rule {
    /// Every rule, in the order the enum lists them.
    pub const ALL: [Rule; 48] = [
        Rule::Rev1,
        Rule::Rev2,
        Rule::Rev3,
        Rule::Rev4,
        Rule::Rev5,
        Rule::Rev6,
        Rule::Rev7,
        Rule::Rev8,
        Rule::Rev9,
        Rule::Rev10,
        Rule::Rev11,
        Rule::Rev12,
        Rule::Rev13,
        Rule::Rev14,
        Rule::Rev15,
        Rule::Rev16,
        Rule::Rev17,
        Rule::Rei1,
        Rule::Rei2,
        Rule::Rei3,
        Rule::Rei4,
        Rule::Rei5,
        Rule::Rei6,
        Rule::Rei7,
        Rule::Rei8,
        Rule::Rei9,
        Rule::Rei10,
        Rule::Rei11,
        Rule::Rei12,
        Rule::RevR1,
        Rule::RevR2,
        Rule::RevR3,
        Rule::RevR4,
        Rule::RevR5,
        Rule::Ca1,
        Rule::Ca2,
        Rule::Ca3,
        Rule::Ca4,
        Rule::Gen1,
        Rule::Gen2,
        Rule::Gen3,
        Rule::Gen4,
        Rule::Gen5,
        Rule::Gen6,
        Rule::Del1,
        Rule::Del2,
        Rule::Dl1,
        Rule::Ren1,
    ];

    /// The id as `docs/rules.md` writes it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Rule::Rev1 => "REV-1",
            Rule::Rev2 => "REV-2",
            Rule::Rev3 => "REV-3",
            Rule::Rev4 => "REV-4",
            Rule::Rev5 => "REV-5",
            Rule::Rev6 => "REV-6",
            Rule::Rev7 => "REV-7",
            Rule::Rev8 => "REV-8",
            Rule::Rev9 => "REV-9",
            Rule::Rev10 => "REV-10",
            Rule::Rev11 => "REV-11",
            Rule::Rev12 => "REV-12",
            Rule::Rev13 => "REV-13",
            Rule::Rev14 => "REV-14",
            Rule::Rev15 => "REV-15",
            Rule::Rev16 => "REV-16",
            Rule::Rev17 => "REV-17",
            Rule::Rei1 => "REI-1",
            Rule::Rei2 => "REI-2",
            Rule::Rei3 => "REI-3",
            Rule::Rei4 => "REI-4",
            Rule::Rei5 => "REI-5",
            Rule::Rei6 => "REI-6",
            Rule::Rei7 => "REI-7",
            Rule::Rei8 => "REI-8",
            Rule::Rei9 => "REI-9",
            Rule::Rei10 => "REI-10",
            Rule::Rei11 => "REI-11",
            Rule::Rei12 => "REI-12",
            Rule::RevR1 => "REV-R1",
            Rule::RevR2 => "REV-R2",
            Rule::RevR3 => "REV-R3",
            Rule::RevR4 => "REV-R4",
            Rule::RevR5 => "REV-R5",
            Rule::Ca1 => "CA-1",
            Rule::Ca2 => "CA-2",
            Rule::Ca3 => "CA-3",
            Rule::Ca4 => "CA-4",
            Rule::Gen1 => "GEN-1",
            Rule::Gen2 => "GEN-2",
            Rule::Gen3 => "GEN-3",
            Rule::Gen4 => "GEN-4",
            Rule::Gen5 => "GEN-5",
            Rule::Gen6 => "GEN-6",
            Rule::Del1 => "DEL-1",
            Rule::Del2 => "DEL-2",
            Rule::Dl1 => "DL-1",
            Rule::Ren1 => "REN-1",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The machine-readable reason a command was refused: `google.rpc.ErrorInfo.reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    NotFound,
    AlreadyExists,
    InvalidArgument,
    InvalidDomainName,
    InvalidValidity,
    ValidityNotAllowed,
    InvalidCertificate,
    UploadedCertNotRevocable,
    AlreadyRevoked,
    RevocationInProgress,
    CertExpired,
    ExpiringRenewalNotRevocable,
    ReissuedCertNotRevocable,
    LegacyCertContactSupport,
    InvalidRevocationReason,
    RevocationDescriptionRequired,
    AccountMismatch,
    CsrInvalid,
    KeyPolicyViolation,
    RevocationRequested,
    WrongKeyPassword,
    KeyMismatch,
    CertNotDeletable,
    RenewalNotDue,
    RequestIdReused,
    RevocationNotCancellable,
    KeyBlocked,
    DocumentTooLarge,
    DocumentFormatNotAllowed,
    DocumentAlreadyUploaded,
    DocumentNotExpected,
    ReviewAlreadyDecided,
    SelfReviewForbidden,
    AlreadyVoted,
    ReviewWaitingForDocument,
    CommentRequired,
    RoleRequired,
    ReviewNotQueued,
    ReviewTasksHeld,
    ReissuedCertNotReissuable,
    ReissueInProgress,
    CertNotIssued,
    ReissueTooCloseToExpiry,
    SingleDomainRequired,
    FreeDvReissueLimit,
    CsrDomainMismatch,
    PrimaryDomainReissueBusy,
}

impl Reason {
    /// Every reason, in the order the enum lists them.
    pub const ALL: [Reason; 47] = [
        Reason::NotFound,
        Reason::AlreadyExists,
        Reason::InvalidArgument,
        Reason::InvalidDomainName,
        Reason::InvalidValidity,
        Reason::ValidityNotAllowed,
        Reason::InvalidCertificate,
        Reason::UploadedCertNotRevocable,
        Reason::AlreadyRevoked,
        Reason::RevocationInProgress,
        Reason::CertExpired,
        Reason::ExpiringRenewalNotRevocable,
        Reason::ReissuedCertNotRevocable,
        Reason::LegacyCertContactSupport,
        Reason::InvalidRevocationReason,
        Reason::RevocationDescriptionRequired,
        Reason::AccountMismatch,
        Reason::CsrInvalid,
        Reason::KeyPolicyViolation,
        Reason::RevocationRequested,
        Reason::WrongKeyPassword,
        Reason::KeyMismatch,
        Reason::CertNotDeletable,
        Reason::RenewalNotDue,
        Reason::RequestIdReused,
        Reason::RevocationNotCancellable,
        Reason::KeyBlocked,
        Reason::DocumentTooLarge,
        Reason::DocumentFormatNotAllowed,
        Reason::DocumentAlreadyUploaded,
        Reason::DocumentNotExpected,
        Reason::ReviewAlreadyDecided,
        Reason::SelfReviewForbidden,
        Reason::AlreadyVoted,
        Reason::ReviewWaitingForDocument,
        Reason::CommentRequired,
        Reason::RoleRequired,
        Reason::ReviewNotQueued,
        Reason::ReviewTasksHeld,
        Reason::ReissuedCertNotReissuable,
        Reason::ReissueInProgress,
        Reason::CertNotIssued,
        Reason::ReissueTooCloseToExpiry,
        Reason::SingleDomainRequired,
        Reason::FreeDvReissueLimit,
        Reason::CsrDomainMismatch,
        Reason::PrimaryDomainReissueBusy,
    ];

    /// The code as `docs/rules.md` writes it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Reason::NotFound => "NOT_FOUND",
            Reason::AlreadyExists => "ALREADY_EXISTS",
            Reason::InvalidArgument => "INVALID_ARGUMENT",
            Reason::InvalidDomainName => "INVALID_DOMAIN_NAME",
            Reason::InvalidValidity => "INVALID_VALIDITY",
            Reason::ValidityNotAllowed => "VALIDITY_NOT_ALLOWED",
            Reason::InvalidCertificate => "INVALID_CERTIFICATE",
            Reason::UploadedCertNotRevocable => "UPLOADED_CERT_NOT_REVOCABLE",
            Reason::AlreadyRevoked => "ALREADY_REVOKED",
            Reason::RevocationInProgress => "REVOCATION_IN_PROGRESS",
            Reason::CertExpired => "CERT_EXPIRED",
            Reason::ExpiringRenewalNotRevocable => "EXPIRING_RENEWAL_NOT_REVOCABLE",
            Reason::ReissuedCertNotRevocable => "REISSUED_CERT_NOT_REVOCABLE",
            Reason::LegacyCertContactSupport => "LEGACY_CERT_CONTACT_SUPPORT",
            Reason::InvalidRevocationReason => "INVALID_REVOCATION_REASON",
            Reason::RevocationDescriptionRequired => "REVOCATION_DESCRIPTION_REQUIRED",
            Reason::AccountMismatch => "ACCOUNT_MISMATCH",
            Reason::CsrInvalid => "CSR_INVALID",
            Reason::KeyPolicyViolation => "KEY_POLICY_VIOLATION",
            Reason::RevocationRequested => "REVOCATION_REQUESTED",
            Reason::WrongKeyPassword => "WRONG_KEY_PASSWORD",
            Reason::KeyMismatch => "KEY_MISMATCH",
            Reason::CertNotDeletable => "CERT_NOT_DELETABLE",
            Reason::RenewalNotDue => "RENEWAL_NOT_DUE",
            Reason::RequestIdReused => "REQUEST_ID_REUSED",
            Reason::RevocationNotCancellable => "REVOCATION_NOT_CANCELLABLE",
            Reason::KeyBlocked => "KEY_BLOCKED",
            Reason::DocumentTooLarge => "DOCUMENT_TOO_LARGE",
            Reason::DocumentFormatNotAllowed => "DOCUMENT_FORMAT_NOT_ALLOWED",
            Reason::DocumentAlreadyUploaded => "DOCUMENT_ALREADY_UPLOADED",
            Reason::DocumentNotExpected => "DOCUMENT_NOT_EXPECTED",
            Reason::ReviewAlreadyDecided => "REVIEW_ALREADY_DECIDED",
            Reason::SelfReviewForbidden => "SELF_REVIEW_FORBIDDEN",
            Reason::AlreadyVoted => "ALREADY_VOTED",
            Reason::ReviewWaitingForDocument => "REVIEW_WAITING_FOR_DOCUMENT",
            Reason::CommentRequired => "COMMENT_REQUIRED",
            Reason::RoleRequired => "ROLE_REQUIRED",
            Reason::ReviewNotQueued => "REVIEW_NOT_QUEUED",
            Reason::ReviewTasksHeld => "REVIEW_TASKS_HELD",
            Reason::ReissuedCertNotReissuable => "REISSUED_CERT_NOT_REISSUABLE",
            Reason::ReissueInProgress => "REISSUE_IN_PROGRESS",
            Reason::CertNotIssued => "CERT_NOT_ISSUED",
            Reason::ReissueTooCloseToExpiry => "REISSUE_TOO_CLOSE_TO_EXPIRY",
            Reason::SingleDomainRequired => "SINGLE_DOMAIN_REQUIRED",
            Reason::FreeDvReissueLimit => "FREE_DV_REISSUE_LIMIT",
            Reason::CsrDomainMismatch => "CSR_DOMAIN_MISMATCH",
            Reason::PrimaryDomainReissueBusy => "PRIMARY_DOMAIN_REISSUE_BUSY",
        }
    }

    /// The reason whose code is `code`, as a refusal on the wire names it.
    pub fn parse(code: &str) -> Option<Reason> {
        Reason::ALL
            .into_iter()
            .find(|reason| reason.as_str() == code)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a refusal maps onto the gRPC status codes a client sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The input itself is wrong (`INVALID_ARGUMENT`).
    InvalidArgument,
    /// No such certificate for this caller (`NOT_FOUND`).
    NotFound,
    /// It exists already (`ALREADY_EXISTS`).
    AlreadyExists,
    /// A rule forbids it in the certificate's current state (`FAILED_PRECONDITION`).
    FailedPrecondition,
    /// The caller may not do this (`PERMISSION_DENIED`).
    PermissionDenied,
}

/// A command the rules refuse. Nothing is appended for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DomainError {
    kind: ErrorKind,
    reason: Reason,
    rule: Option<Rule>,
    message: String,
}

impl DomainError {
    /// Refused by `rule` in the current state.
    pub fn refused(rule: Rule, reason: Reason, message: impl Into<String>) -> Self {
        DomainError {
            kind: ErrorKind::FailedPrecondition,
            reason,
            rule: Some(rule),
            message: message.into(),
        }
    }

    /// The input is malformed.
    pub fn invalid(reason: Reason, message: impl Into<String>) -> Self {
        DomainError {
            kind: ErrorKind::InvalidArgument,
            reason,
            rule: Some(Rule::Gen5),
            message: message.into(),
        }
    }

    /// Bad input that a specific rule names (e.g. REV-9's reason codes).
    pub fn invalid_by(rule: Rule, reason: Reason, message: impl Into<String>) -> Self {
        DomainError {
            kind: ErrorKind::InvalidArgument,
            reason,
            rule: Some(rule),
            message: message.into(),
        }
    }

    /// The caller may not act this way (GEN-3).
    pub fn permission_denied(rule: Rule, reason: Reason, message: impl Into<String>) -> Self {
        DomainError {
            kind: ErrorKind::PermissionDenied,
            reason,
            rule: Some(rule),
            message: message.into(),
        }
    }

    /// The certificate does not exist for this caller (GEN-3, DEL-2).
    pub fn not_found(id: &crate::CertificateId) -> Self {
        DomainError {
            kind: ErrorKind::NotFound,
            reason: Reason::NotFound,
            rule: None,
            message: format!("certificate {id} not found; list your certificates to find its id"),
        }
    }

    /// Something other than a certificate is not there; `message` says what and where to
    /// look instead.
    pub fn not_found_named(message: impl Into<String>) -> Self {
        DomainError {
            kind: ErrorKind::NotFound,
            reason: Reason::NotFound,
            rule: None,
            message: message.into(),
        }
    }

    /// The certificate exists already.
    pub fn already_exists(id: &crate::CertificateId) -> Self {
        DomainError {
            kind: ErrorKind::AlreadyExists,
            reason: Reason::AlreadyExists,
            rule: None,
            message: format!(
                "certificate {id} exists already; send a new request id to record another"
            ),
        }
    }

    /// The gRPC-facing category.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The reason code.
    pub fn reason(&self) -> Reason {
        self.reason
    }

    /// The rule that refused, if one did.
    pub fn rule(&self) -> Option<Rule> {
        self.rule
    }

    /// The sentence for humans, saying what to do instead.
    pub fn message(&self) -> &str {
        &self.message
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    /// An id as `docs/rules.md` writes one: a prefix of capitals, `-`, then a number (`REV-1`,
    /// `CA-3`), or `REV-R` and a number for the review rules (`REV-R1`).
    fn is_rule_id(id: &str) -> bool {
        let Some((prefix, number)) = id.split_once('-') else {
            return false;
        };
        let number = match prefix {
            "REV" => number.strip_prefix('R').unwrap_or(number),
            _ => number,
        };
        !prefix.is_empty()
            && prefix.bytes().all(|b| b.is_ascii_uppercase())
            && !number.is_empty()
            && !number.starts_with('0')
            && number.bytes().all(|b| b.is_ascii_digit())
    }

    #[test]
    fn every_rule_has_its_own_id_as_rules_md_writes_it() {
        let mut seen = HashSet::new();
        for rule in Rule::ALL {
            let id = rule.as_str();
            assert!(is_rule_id(id), "{rule:?}: {id:?}");
            assert!(seen.insert(id), "{id} is the id of two rules");
            assert_eq!(rule.to_string(), id);
        }
        // In the enum's order, so a rule added between two others is not left out.
        for (position, rule) in Rule::ALL.into_iter().enumerate() {
            assert_eq!(rule as usize, position, "{rule:?}");
        }
        for id in ["GEN-2", "GEN-4", "GEN-6", "REV-15", "REV-R5", "DL-1"] {
            assert!(seen.contains(id), "{id} is missing");
        }
        for not_an_id in ["REV1", "rev-1", "REV-", "REV-01", "REV-R", "-1", "CA-R1"] {
            assert!(!is_rule_id(not_an_id), "{not_an_id}");
        }
    }
}
