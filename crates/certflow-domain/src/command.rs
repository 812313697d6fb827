//! Commands: what a caller asks of a certificate.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::names::DomainName;
use crate::time::Timestamp;
use crate::values::{
    Brand, CertificateId, DocumentFormat, KeyAlgorithm, Level, ReissueKey, ValidationMethod,
    ValidationSetup,
};

/// The id of one command, derived from the caller's request id: the same request id always
/// yields the same command id, which is how a retry is recognised (GEN-1).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CommandId(pub String);

impl fmt::Display for CommandId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Records a certificate that the platform issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueCertificate {
    pub id: CertificateId,
    pub account: String,
    pub brand: Brand,
    pub level: Level,
    pub paid: bool,
    pub algorithm: KeyAlgorithm,
    pub domains: Vec<String>,
    pub term_years: u32,
    /// Defaults to the command's time.
    pub not_before: Option<Timestamp>,
    /// Defaults to `not_before` plus the policy's default validity.
    pub not_after: Option<Timestamp>,
    pub validation_setup: BTreeMap<String, ValidationSetup>,
    pub renewal_ordered: bool,
    /// Organisation details for OV/EV.
    pub enterprise_info: BTreeMap<String, String>,
}

/// Stores a third-party certificate, already parsed from its PEM by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadCertificate {
    pub id: CertificateId,
    pub account: String,
    pub level: Level,
    pub algorithm: KeyAlgorithm,
    pub domains: Vec<DomainName>,
    pub not_before: Timestamp,
    pub not_after: Timestamp,
    pub public_key_sha256: String,
    pub serial_number: String,
    pub issuer: String,
    pub pem: String,
    /// The key store record of a private key uploaded with it.
    pub private_key_id: Option<String>,
}

/// CA-3: an administrator records a certificate the platform issued before certflow (a
/// legacy certificate, REV-6): its names, dates, key and serial as the certificate itself
/// says, and the purchase it belongs to. Nothing is signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordLegacyCertificate {
    pub brand: Brand,
    pub paid: bool,
    pub term_years: u32,
    pub validation_setup: BTreeMap<String, ValidationSetup>,
    pub renewal_ordered: bool,
    pub enterprise_info: BTreeMap<String, String>,
    /// What the certificate says (id, account, level, names, dates, key, serial, PEM).
    pub certificate: UploadCertificate,
}

/// Asks for a certificate to be revoked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRevocation {
    pub id: CertificateId,
    /// The RFC 5280 reason code as the caller sent it; REV-9 decides whether it is allowed.
    pub reason_code: i32,
    pub description: String,
    /// How the customer will prove domains that have no automatic validation: `Dns` or
    /// `File` (REV-10).
    pub validation_method: ValidationMethod,
}

/// Revokes a certificate for key compromise on proof that the caller holds its private key:
/// a request signed with that key (an ACME `revokeCert`, RFC 8555 §7.6), checked before the
/// command is made. The proof stands in for the account: whoever holds the key may revoke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokeByKeyProof {
    pub id: CertificateId,
    /// Hex SHA-256 of the SubjectPublicKeyInfo the request was signed with.
    pub public_key_sha256: String,
}

/// Removes a certificate from the caller's lists (DEL-1, DEL-2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteCertificate {
    pub id: CertificateId,
}

/// Records that a renewal was ordered (REN-1); REV-3 reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRenewal {
    pub id: CertificateId,
}

/// Attaches the stamped document a revocation's review waits for (REV-12). The service has
/// stored the bytes and judged their format by content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRevocationDocument {
    pub id: CertificateId,
    /// `None`: the content is none of the formats a document may have.
    pub format: Option<DocumentFormat>,
    pub size: u64,
    pub sha256: String,
    pub object: String,
}

/// A reviewer's decision on a review task (REV-13).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecideReview {
    pub id: CertificateId,
    pub task_id: String,
    pub approve: bool,
    pub comment: String,
}

/// Asks for a certificate to be reissued (REI-1..REI-12). The service has parsed a pasted
/// CSR (REI-7) into the key source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestReissue {
    /// The original.
    pub id: CertificateId,
    pub reissue_id: String,
    /// The id the reissued certificate will have.
    pub new_certificate_id: CertificateId,
    /// The domains to bind; empty: the original's.
    pub domains: Vec<String>,
    pub reason: String,
    pub key: ReissueKey,
    /// The organisation details of the request; empty: unchanged.
    pub enterprise_info: BTreeMap<String, String>,
    /// How domains without automatic validation will be proven, where needed (REI-9).
    pub validation_method: ValidationMethod,
}

/// Everything a caller can ask of a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Issue(IssueCertificate),
    RecordLegacy(RecordLegacyCertificate),
    Upload(UploadCertificate),
    RequestRevocation(RequestRevocation),
    RevokeByKeyProof(RevokeByKeyProof),
    Delete(DeleteCertificate),
    OrderRenewal(OrderRenewal),
    UploadRevocationDocument(UploadRevocationDocument),
    DecideReview(DecideReview),
    RequestReissue(RequestReissue),
}

impl Command {
    /// The certificate the command is about.
    pub fn certificate_id(&self) -> &CertificateId {
        match self {
            Command::Issue(c) => &c.id,
            Command::RecordLegacy(c) => &c.certificate.id,
            Command::Upload(c) => &c.id,
            Command::RequestRevocation(c) => &c.id,
            Command::RevokeByKeyProof(c) => &c.id,
            Command::Delete(c) => &c.id,
            Command::OrderRenewal(c) => &c.id,
            Command::UploadRevocationDocument(c) => &c.id,
            Command::DecideReview(c) => &c.id,
            Command::RequestReissue(c) => &c.id,
        }
    }
}
