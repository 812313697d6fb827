//! The certificate aggregate as its events have made it: the [`Certificate`], its derived
//! [`Status`], and the revocation, validation, review and reissue it may be in the middle
//! of. Only `evolve` changes it; the rules read it.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::command::CommandId;
use crate::names::DomainName;
use crate::time::Timestamp;
use crate::values::{
    Brand, CertificateId, Challenge, Document, KeyAlgorithm, Level, ReissueKey, RevocationCause,
    RevocationFailure, RevocationPath, RevocationReason, Source, ValidationMethod, ValidationSetup,
    Vote,
};

/// A certificate's state: `None` until its first event.
pub type State = Option<Certificate>;

/// A certificate as its events have made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certificate {
    pub id: CertificateId,
    pub account: String,
    pub brand: Brand,
    pub level: Level,
    pub paid: bool,
    pub algorithm: KeyAlgorithm,
    /// The primary common name first, then the SANs.
    pub domains: Vec<DomainName>,
    pub term_years: u32,
    pub source: Source,
    pub issued_at: Timestamp,
    pub not_before: Timestamp,
    pub not_after: Timestamp,
    /// Set on a reissued certificate: the certificate it was reissued from.
    pub original: Option<CertificateId>,
    pub validation_setup: BTreeMap<DomainName, ValidationSetup>,
    pub renewal_ordered: bool,
    /// Hex SHA-256 of the SubjectPublicKeyInfo, when the key is known.
    pub public_key_sha256: Option<String>,
    /// Hex serial number, when the X.509 certificate is known.
    pub serial_number: Option<String>,
    /// The certificate in PEM, when known.
    pub pem: Option<String>,
    /// Its chain (intermediate, root) in PEM, when the product issued it.
    pub chain_pem: Option<String>,
    /// The key store record of the private key, when the product generated it.
    pub private_key_id: Option<String>,
    pub revocation: Option<Revocation>,
    /// The last revocation that ended without revoking, if any.
    #[serde(default)]
    pub failed_revocation: Option<FailedRevocation>,
    /// Certificates reissued from this one (REV-5 revokes them with it).
    #[serde(default)]
    pub reissues: BTreeSet<CertificateId>,
    /// A reissue in progress (REV-14 ends it when this certificate is revoked).
    #[serde(default)]
    pub pending_reissue: Option<PendingReissue>,
    /// Organisation details recorded for OV/EV (REI-10 compares a reissue's with them).
    #[serde(default)]
    pub enterprise_info: BTreeMap<String, String>,
    pub deleted: bool,
    /// Commands already applied, so a retried command appends nothing (GEN-1).
    pub applied_commands: BTreeSet<CommandId>,
}

impl Certificate {
    /// The status at `now`.
    pub fn status(&self, now: Timestamp) -> Status {
        if self.deleted {
            return Status::Deleted;
        }
        match &self.revocation {
            Some(Revocation {
                revoked_at: Some(_),
                ..
            }) => Status::Revoked,
            Some(Revocation {
                revoked_at: None, ..
            }) => Status::RevocationPending,
            None if now >= self.not_after => Status::Expired,
            None if self.pending_reissue.is_some() => Status::ReissuePending,
            None => Status::Issued,
        }
    }

    /// Whether the certificate can still be used: not revoked, deleted or expired.
    pub fn is_live(&self, now: Timestamp) -> bool {
        matches!(
            self.status(now),
            Status::Issued | Status::RevocationPending | Status::ReissuePending
        )
    }

    /// The revocation waiting for something (validation or review), if any.
    pub fn pending_revocation(&self) -> Option<&Revocation> {
        self.revocation.as_ref().filter(|r| r.revoked_at.is_none())
    }

    /// The automatic validation set up for `domain`.
    pub fn validation_for(&self, domain: &DomainName) -> ValidationSetup {
        self.validation_setup
            .get(domain)
            .copied()
            .unwrap_or(ValidationSetup::None)
    }
}

/// Derived status, computed from the state and `now`; never stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Status {
    Issued,
    RevocationPending,
    Revoked,
    ReissuePending,
    Expired,
    Deleted,
}

/// A revocation that has been requested, and perhaps completed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    pub reason: RevocationReason,
    pub description: String,
    pub path: RevocationPath,
    pub requested_at: Timestamp,
    /// The method the customer chose for domains without automatic validation.
    #[serde(default = "default_method")]
    pub validation_method: ValidationMethod,
    /// The ownership challenges, once the validation service has issued them.
    #[serde(default)]
    pub validation: Option<DomainValidation>,
    /// Set once the certificate is revoked; never changes afterwards (REV-17).
    pub revoked_at: Option<Timestamp>,
    /// Why it was revoked, once it is.
    #[serde(default)]
    pub cause: Option<RevocationCause>,
    /// The account that asked for it (REV-R2: its reviewers may not belong to it).
    #[serde(default)]
    pub requested_by: String,
    /// The stamped document a review waits for (REV-10, REV-12).
    #[serde(default)]
    pub document: Option<Document>,
    /// The manual review, once queued.
    #[serde(default)]
    pub review: Option<Review>,
}

fn default_method() -> ValidationMethod {
    ValidationMethod::Dns
}

/// A revocation that ended without revoking; the certificate is `ISSUED` again (REV-8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedRevocation {
    pub reason: RevocationReason,
    pub requested_at: Timestamp,
    pub failed_at: Timestamp,
    pub failure: RevocationFailure,
}

/// The ownership proof a revocation waits for (REV-10, REV-11).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainValidation {
    pub challenges: Vec<Challenge>,
    pub issued_at: Timestamp,
    /// REV-11: not passed by then, the revocation fails.
    pub deadline: Timestamp,
    pub outcome: Option<ValidationOutcome>,
    pub ended_at: Option<Timestamp>,
}

impl DomainValidation {
    /// Whether the challenges are still open.
    pub fn is_open(&self) -> bool {
        self.outcome.is_none()
    }
}

/// How a domain validation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ValidationOutcome {
    /// Every domain is proven.
    Passed,
    /// The deadline passed first (REV-11).
    Expired,
}

/// A revocation's manual review (REV-13, REV-R1..R4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    /// The task on the review queue: `<certificate id>/<request time in ms>`.
    pub task_id: String,
    /// Distinct approvals needed (REV-R3), fixed when queued.
    pub approvals_needed: u32,
    pub queued_at: Timestamp,
    pub approvals: Vec<Vote>,
    pub rejection: Option<Vote>,
    pub outcome: Option<ReviewOutcome>,
}

/// How a review ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ReviewOutcome {
    /// Enough distinct reviewers approved (REV-R3).
    Approved,
    /// A reviewer rejected.
    Rejected,
}

/// A reissue of this certificate that has not ended yet (REI-3, REV-14).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingReissue {
    /// The reissue's id.
    pub reissue_id: String,
    pub requested_at: Timestamp,
    /// The certificate the reissue will create.
    pub new_certificate_id: CertificateId,
    /// The domains it binds.
    pub domains: Vec<DomainName>,
    /// Where its key comes from.
    pub key: ReissueKey,
    /// REI-9: domain ownership must be proven first.
    pub needs_validation: bool,
    /// How the customer proves domains without automatic validation.
    pub validation_method: ValidationMethod,
    /// The ownership challenges, once issued.
    pub validation: Option<DomainValidation>,
    /// REI-10: a reviewer must approve first.
    pub needs_review: bool,
    /// The organisation details asked for; empty: the recorded ones.
    pub enterprise_info: BTreeMap<String, String>,
    /// The account that asked.
    pub requested_by: String,
    /// The review, once queued.
    pub review: Option<Review>,
}
