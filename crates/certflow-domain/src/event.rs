//! Events: the facts the log keeps. Add variants and fields; never change a meaning.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::certificate::{
    Brand, CertificateId, KeyAlgorithm, Level, RevocationPath, RevocationReason, ValidationSetup,
};
use crate::names::DomainName;
use crate::time::Timestamp;

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
}

/// Why a certificate was revoked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RevocationCause {
    /// Its own revocation request completed.
    Requested,
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
        }
    }
}
