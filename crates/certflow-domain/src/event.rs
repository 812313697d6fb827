//! Events: the facts the log keeps. Add variants and fields; never change a meaning.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::names::DomainName;
use crate::time::Timestamp;
use crate::values::{
    Brand, CertificateId, Challenge, Document, KeyAlgorithm, Level, ReissueKey, RevocationCause,
    RevocationFailure, RevocationPath, RevocationReason, ValidationMethod, ValidationSetup, Vote,
};

/// What the CA certified: the X.509 certificate and where its private key is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct X509Facts {
    /// Serial number, lower-case hex.
    pub serial_number: String,
    /// Hex SHA-256 of the SubjectPublicKeyInfo.
    pub public_key_sha256: String,
    /// The leaf in PEM.
    pub pem: String,
    /// Intermediate and root in PEM.
    pub chain_pem: String,
    /// The key store record of the private key, when the product generated it.
    pub private_key_id: Option<String>,
    /// The shard of its issuer's CRL named in its distribution point; `None` for a
    /// certificate signed before CRLs were partitioned (it names the issuer's original CRL).
    pub crl_shard: Option<u32>,
}

/// A platform-issued certificate was recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateIssued {
    pub id: CertificateId,
    pub account: String,
    pub brand: Brand,
    pub level: Level,
    pub paid: bool,
    pub algorithm: KeyAlgorithm,
    pub domains: Vec<DomainName>,
    pub term_years: u32,
    pub issued_at: Timestamp,
    pub not_before: Timestamp,
    pub not_after: Timestamp,
    pub validation_setup: BTreeMap<DomainName, ValidationSetup>,
    pub renewal_ordered: bool,
    /// The signed certificate; absent on records made before the product had a CA.
    pub x509: Option<X509Facts>,
    /// Set on a reissued certificate: the certificate it was reissued from.
    pub original: Option<CertificateId>,
    /// Organisation details recorded for OV/EV.
    pub enterprise_info: BTreeMap<String, String>,
    /// CA-3: not signed by certflow but recorded by an administrator, as the platform
    /// issued it before certflow (REV-6's legacy certificates).
    pub legacy: bool,
}

impl Event {
    /// The event with the CA's certificate attached, if it is an issue event.
    pub fn certified(self, facts: X509Facts) -> Event {
        match self {
            Event::Issued(mut issued) => {
                issued.x509 = Some(facts);
                Event::Issued(issued)
            }
            other => other,
        }
    }
}

/// A third-party certificate was stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateUploaded {
    pub id: CertificateId,
    pub account: String,
    pub level: Level,
    pub algorithm: KeyAlgorithm,
    pub domains: Vec<DomainName>,
    pub uploaded_at: Timestamp,
    pub not_before: Timestamp,
    pub not_after: Timestamp,
    pub public_key_sha256: String,
    pub serial_number: String,
    pub issuer: String,
    pub pem: String,
    /// The key store record of a private key uploaded with it.
    pub private_key_id: Option<String>,
}

/// A revocation was requested; from now on the certificate is not downloadable (REV-8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationRequested {
    pub reason: RevocationReason,
    pub description: String,
    pub path: RevocationPath,
    pub requested_at: Timestamp,
    /// How the customer proves domains without automatic validation (REV-10).
    pub validation_method: ValidationMethod,
    /// The account that asked (REV-R2).
    pub requested_by: String,
}

/// The stamped document a review waits for was uploaded (REV-12).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationDocumentUploaded {
    pub document: Document,
}

/// The revocation's review went on the review queue (REV-R1); not before its document is in
/// (REV-R4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewQueued {
    /// The reissue under review (REI-10); none: the pending revocation.
    pub reissue_id: Option<String>,
    pub task_id: String,
    pub approvals_needed: u32,
    pub queued_at: Timestamp,
}

/// A reviewer approved (REV-13); more may be needed (REV-R3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewApproved {
    /// The reissue under review; none: the pending revocation.
    pub reissue_id: Option<String>,
    pub vote: Vote,
}

/// Enough reviewers approved; the revocation service revokes next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewPassed {
    /// The reissue under review; none: the pending revocation.
    pub reissue_id: Option<String>,
    pub passed_at: Timestamp,
}

/// A reviewer rejected (REV-13); the revocation service fails the revocation next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewRejected {
    /// The reissue under review; none: the pending revocation.
    pub reissue_id: Option<String>,
    pub vote: Vote,
}

/// The validation service issued the ownership challenges a revocation waits for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationChallengesIssued {
    /// The reissue they are for (REI-9); none: the pending revocation's.
    pub reissue_id: Option<String>,
    pub challenges: Vec<Challenge>,
    pub issued_at: Timestamp,
    /// REV-11: the revocation (or reissue) fails unless every domain is proven by then.
    pub deadline: Timestamp,
}

/// Ownership of one domain was proven.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainValidated {
    /// The reissue it is for; none: the pending revocation's.
    pub reissue_id: Option<String>,
    pub domain: DomainName,
    pub method: ValidationMethod,
    pub validated_at: Timestamp,
}

/// Every domain of the revocation is proven; the revocation service revokes next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationPassed {
    /// The reissue it is for; none: the pending revocation's.
    pub reissue_id: Option<String>,
    pub passed_at: Timestamp,
}

/// The deadline passed with domains unproven (REV-11); the revocation service fails the
/// revocation next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationExpired {
    /// The reissue it is for; none: the pending revocation's.
    pub reissue_id: Option<String>,
    pub expired_at: Timestamp,
}

/// A requested revocation ended without revoking: the certificate is `ISSUED` again and can
/// be downloaded (REV-8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationFailed {
    pub failure: RevocationFailure,
    pub failed_at: Timestamp,
}

/// A pending reissue ended as failed (REV-14: its original was revoked); its locks are free.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReissueFailed {
    pub reissue_id: String,
    pub cause: ReissueFailure,
    pub failed_at: Timestamp,
}

/// Why a reissue failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ReissueFailure {
    /// REV-14: the certificate being reissued was revoked.
    OriginalRevoked,
    /// The CA would not certify the key (e.g. a key blocked meanwhile, REV-16).
    NotIssued,
    /// REI-9 with REV-11: domain ownership was not proven in time.
    ValidationExpired,
    /// REI-10: a reviewer rejected it.
    ReviewRejected,
}

/// A reissue of this certificate was requested (REI-1..REI-12); it is pending until it
/// completes or fails (REI-11).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReissueRequested {
    pub reissue_id: String,
    pub new_certificate_id: CertificateId,
    pub domains: Vec<DomainName>,
    pub key: ReissueKey,
    pub reason: String,
    pub needs_validation: bool,
    /// How the customer proves domains without automatic validation (REI-9).
    pub validation_method: ValidationMethod,
    pub needs_review: bool,
    /// The organisation details the reissue asks for (REI-10); empty: the recorded ones.
    pub enterprise_info: BTreeMap<String, String>,
    /// The account that asked (REV-R2 for the review).
    pub requested_by: String,
    pub requested_at: Timestamp,
}

/// The reissued certificate was issued; the reissue is over and its locks are free.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReissueCompleted {
    pub reissue_id: String,
    pub certificate_id: CertificateId,
    pub completed_at: Timestamp,
}

/// The certificate is revoked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateRevoked {
    pub reason: RevocationReason,
    pub revoked_at: Timestamp,
    pub cause: RevocationCause,
}

/// The certificate was deleted: gone from lists and lookups, its history kept (DEL-2), its
/// private key erased.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateDeleted {
    pub deleted_at: Timestamp,
}

/// A renewal was ordered for the certificate (REN-1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenewalOrdered {
    pub ordered_at: Timestamp,
}

/// Everything that can happen to a certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    Issued(CertificateIssued),
    Uploaded(CertificateUploaded),
    RevocationRequested(RevocationRequested),
    Revoked(CertificateRevoked),
    Deleted(CertificateDeleted),
    RenewalOrdered(RenewalOrdered),
    ValidationChallengesIssued(ValidationChallengesIssued),
    DomainValidated(DomainValidated),
    ValidationPassed(ValidationPassed),
    ValidationExpired(ValidationExpired),
    RevocationFailed(RevocationFailed),
    ReissueFailed(ReissueFailed),
    RevocationDocumentUploaded(RevocationDocumentUploaded),
    ReviewQueued(ReviewQueued),
    ReviewApproved(ReviewApproved),
    ReviewPassed(ReviewPassed),
    ReviewRejected(ReviewRejected),
    ReissueRequested(ReissueRequested),
    ReissueCompleted(ReissueCompleted),
}

impl Event {
    /// A stable name for headers, logs and history.
    pub const fn type_name(&self) -> &'static str {
        match self {
            Event::Issued(_) => "CertificateIssued",
            Event::Uploaded(_) => "CertificateUploaded",
            Event::RevocationRequested(_) => "RevocationRequested",
            Event::Revoked(_) => "CertificateRevoked",
            Event::Deleted(_) => "CertificateDeleted",
            Event::RenewalOrdered(_) => "RenewalOrdered",
            Event::ValidationChallengesIssued(_) => "ValidationChallengesIssued",
            Event::DomainValidated(_) => "DomainValidated",
            Event::ValidationPassed(_) => "ValidationPassed",
            Event::ValidationExpired(_) => "ValidationExpired",
            Event::RevocationFailed(_) => "RevocationFailed",
            Event::ReissueFailed(_) => "ReissueFailed",
            Event::RevocationDocumentUploaded(_) => "RevocationDocumentUploaded",
            Event::ReviewQueued(_) => "ReviewQueued",
            Event::ReviewApproved(_) => "ReviewApproved",
            Event::ReviewPassed(_) => "ReviewPassed",
            Event::ReviewRejected(_) => "ReviewRejected",
            Event::ReissueRequested(_) => "ReissueRequested",
            Event::ReissueCompleted(_) => "ReissueCompleted",
        }
    }
}
