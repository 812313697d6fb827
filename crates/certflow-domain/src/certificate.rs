//! The certificate aggregate's state and the value types it is made of.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::command::CommandId;
use crate::error::{DomainError, Reason, Rule};
use crate::names::DomainName;
use crate::time::Timestamp;

/// A certificate's id: opaque to clients, safe as a NATS subject token and a sled key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CertificateId(String);

impl CertificateId {
    /// The longest id accepted.
    pub const MAX_LEN: usize = 64;

    /// Accepts 1 to 64 ASCII letters, digits, `-` and `_`.
    pub fn parse(id: &str) -> Result<Self, DomainError> {
        let ok = !id.is_empty()
            && id.len() <= Self::MAX_LEN
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(CertificateId(id.to_string()))
        } else {
            // The message goes back in a header: echo a short id, describe a long one.
            let shown = if id.len() <= 2 * Self::MAX_LEN {
                format!("{id:?}")
            } else {
                format!("an id of {} bytes", id.len())
            };
            Err(DomainError::invalid(
                Reason::InvalidArgument,
                format!(
                    "{shown} is not a certificate id: ids are 1 to 64 letters, digits, '-' or '_'"
                ),
            ))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CertificateId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for CertificateId {
    type Error = DomainError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        CertificateId::parse(&value)
    }
}

impl From<CertificateId> for String {
    fn from(value: CertificateId) -> Self {
        value.0
    }
}

/// The issuing brand. Wotrus and DNSPod follow their own revocation paths (REV-10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Brand {
    TrustAsia,
    Wotrus,
    DnsPod,
    GeoTrust,
    DigiCert,
    GlobalSign,
    Sectigo,
    /// A brand this product does not sell, e.g. the issuer of an uploaded certificate.
    Other,
}

impl Brand {
    /// Every brand the product issues for.
    pub const ISSUED: [Brand; 7] = [
        Brand::TrustAsia,
        Brand::Wotrus,
        Brand::DnsPod,
        Brand::GeoTrust,
        Brand::DigiCert,
        Brand::GlobalSign,
        Brand::Sectigo,
    ];

    /// The brand in URLs, file names and subject tokens: lower case, no spaces.
    pub const fn slug(self) -> &'static str {
        match self {
            Brand::TrustAsia => "trustasia",
            Brand::Wotrus => "wotrus",
            Brand::DnsPod => "dnspod",
            Brand::GeoTrust => "geotrust",
            Brand::DigiCert => "digicert",
            Brand::GlobalSign => "globalsign",
            Brand::Sectigo => "sectigo",
            Brand::Other => "other",
        }
    }

    /// The issued brand with this slug.
    pub fn from_slug(slug: &str) -> Option<Brand> {
        Brand::ISSUED.into_iter().find(|brand| brand.slug() == slug)
    }
}

/// Validation level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Level {
    Dv,
    Ov,
    Ev,
}

/// Key algorithm and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KeyAlgorithm {
    Rsa2048,
    Rsa3072,
    Rsa4096,
    EccP256,
    EccP384,
    Sm2,
    /// Any other key, possible only on uploaded certificates.
    Other,
}

/// Where the certificate came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Source {
    /// Issued through this product.
    Platform,
    /// A third-party certificate the customer stored here.
    Uploaded,
}

/// Automatic ownership validation set up for one domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ValidationSetup {
    None,
    /// `DNS_AUTO`: the product manages the DNS record.
    DnsAuto,
    /// Automatic file validation.
    FileAuto,
}

/// RFC 5280 revocation reasons a customer may give (REV-9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RevocationReason {
    Unspecified,
    KeyCompromise,
    AffiliationChanged,
    Superseded,
    CessationOfOperation,
}

impl RevocationReason {
    /// REV-9: only codes 0, 1, 3, 4 and 5 are accepted.
    pub fn from_rfc5280_code(code: i32) -> Result<Self, DomainError> {
        match code {
            0 => Ok(RevocationReason::Unspecified),
            1 => Ok(RevocationReason::KeyCompromise),
            3 => Ok(RevocationReason::AffiliationChanged),
            4 => Ok(RevocationReason::Superseded),
            5 => Ok(RevocationReason::CessationOfOperation),
            other => Err(DomainError::invalid_by(
                Rule::Rev9,
                Reason::InvalidRevocationReason,
                format!(
                    "revocation reason code {other} is not accepted; use unspecified (0), \
                     keyCompromise (1), affiliationChanged (3), superseded (4) or \
                     cessationOfOperation (5)"
                ),
            )),
        }
    }

    /// The RFC 5280 `CRLReason` code.
    pub const fn rfc5280_code(self) -> i32 {
        match self {
            RevocationReason::Unspecified => 0,
            RevocationReason::KeyCompromise => 1,
            RevocationReason::AffiliationChanged => 3,
            RevocationReason::Superseded => 4,
            RevocationReason::CessationOfOperation => 5,
        }
    }
}

/// How a revocation proceeds, by brand and level (REV-10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RevocationPath {
    /// Nothing more is needed: revoked at once.
    Immediate,
    /// Every domain has `DNS_AUTO` set up: the product proves ownership itself.
    AutomaticValidation,
    /// The customer proves ownership of every domain by DNS or file within the deadline.
    DomainValidation,
    /// A reviewer decides; `document_required` when a stamped document must come first.
    ManualReview { document_required: bool },
}

impl RevocationPath {
    /// Whether a reviewer decides this revocation, so a description is required (REV-9).
    pub fn needs_review(self) -> bool {
        matches!(self, RevocationPath::ManualReview { .. })
    }
}

/// How the owner of a domain proves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ValidationMethod {
    /// The product manages the domain's DNS record and proves it without the customer.
    DnsAuto,
    /// The customer publishes the challenge value in a TXT record at `_dnsauth.<domain>`.
    Dns,
    /// The customer serves the challenge value at
    /// `http://<domain>/.well-known/pki-validation/fileauth.txt`.
    File,
}

/// One domain's ownership challenge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    pub domain: DomainName,
    pub method: ValidationMethod,
    /// The value the customer publishes; empty for `DnsAuto`.
    pub value: String,
    /// Set once ownership of the domain is proven.
    pub validated_at: Option<Timestamp>,
}

/// How a domain validation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ValidationOutcome {
    /// Every domain is proven.
    Passed,
    /// The deadline passed first (REV-11).
    Expired,
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

    /// Whether every domain is proven.
    pub fn all_validated(&self) -> bool {
        self.challenges.iter().all(|c| c.validated_at.is_some())
    }
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

/// Which stamped document a revocation needs (REV-10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DocumentKind {
    /// DNSPod OV/EV: the stamped application, JPG, GIF or PDF.
    Application,
    /// Other brands' OV/EV: the stamped confirmation letter, JPG, PNG or PDF.
    ConfirmationLetter,
}

impl DocumentKind {
    /// The formats this document may come in (REV-12).
    pub const fn allowed(self) -> &'static [DocumentFormat] {
        match self {
            DocumentKind::Application => &[
                DocumentFormat::Jpeg,
                DocumentFormat::Gif,
                DocumentFormat::Pdf,
            ],
            DocumentKind::ConfirmationLetter => &[
                DocumentFormat::Jpeg,
                DocumentFormat::Png,
                DocumentFormat::Pdf,
            ],
        }
    }
}

/// A document's format, as judged by its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DocumentFormat {
    Jpeg,
    Gif,
    Png,
    Pdf,
}

impl DocumentFormat {
    /// The media type.
    pub const fn media_type(self) -> &'static str {
        match self {
            DocumentFormat::Jpeg => "image/jpeg",
            DocumentFormat::Gif => "image/gif",
            DocumentFormat::Png => "image/png",
            DocumentFormat::Pdf => "application/pdf",
        }
    }
}

/// A stored document, referred to by the events; the bytes are in the document store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Document {
    pub kind: DocumentKind,
    pub format: DocumentFormat,
    pub size: u64,
    /// Hex SHA-256 of the content.
    pub sha256: String,
    /// The name it is stored under.
    pub object: String,
    pub uploaded_at: Timestamp,
}

/// One reviewer's decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    /// The reviewer (token subject).
    pub reviewer: String,
    pub account: String,
    pub comment: String,
    pub at: Timestamp,
}

/// How a review ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ReviewOutcome {
    /// Enough distinct reviewers approved (REV-R3).
    Approved,
    /// A reviewer rejected.
    Rejected,
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

fn default_method() -> ValidationMethod {
    ValidationMethod::Dns
}

/// Why a certificate was revoked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RevocationCause {
    /// Its own revocation request completed.
    Requested,
    /// REV-5: the certificate it was reissued from was revoked.
    OriginalRevoked { original: CertificateId },
    /// REV-16: another certificate with the same public key was revoked for key compromise.
    KeyCompromised { certificate: CertificateId },
}

/// Why a requested revocation ended without revoking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RevocationFailure {
    /// REV-11: domain ownership was not proven in time.
    ValidationExpired,
    /// REV-13: a reviewer rejected it.
    ReviewRejected,
}

/// A revocation that ended without revoking; the certificate is `ISSUED` again (REV-8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedRevocation {
    pub reason: RevocationReason,
    pub requested_at: Timestamp,
    pub failed_at: Timestamp,
    pub failure: RevocationFailure,
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

/// Where a reissued certificate's key comes from (REI-7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReissueKey {
    /// The original's key: its CSR, or the key the product holds for it.
    Original,
    /// A key pair the product generated and sealed for this reissue.
    Generated {
        algorithm: KeyAlgorithm,
        /// The key store record of its private key.
        key_record: String,
        /// Its SubjectPublicKeyInfo, DER: what the CA certifies.
        public_key_der: Vec<u8>,
    },
    /// A CSR the customer pasted, already parsed and its self-signature checked.
    Csr {
        algorithm: KeyAlgorithm,
        /// The names the CSR asks for (subject CN and SANs).
        names: Vec<DomainName>,
        /// Hex SHA-256 of its SubjectPublicKeyInfo.
        public_key_sha256: String,
        /// Its SubjectPublicKeyInfo, DER: what the CA certifies.
        public_key_der: Vec<u8>,
    },
}

impl ReissueKey {
    /// The key algorithm the reissued certificate will have, given the original's.
    pub fn algorithm(&self, original: KeyAlgorithm) -> KeyAlgorithm {
        match self {
            ReissueKey::Original => original,
            ReissueKey::Generated { algorithm, .. } | ReissueKey::Csr { algorithm, .. } => {
                *algorithm
            }
        }
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

/// The roles a caller can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    Customer,
    Reviewer,
    Admin,
}

/// Who issues a command: recorded on every event (GEN-4) and checked for access (GEN-3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub subject: String,
    pub account: String,
    pub roles: Vec<Role>,
}

impl Actor {
    /// GEN-3: admins see every account; everyone else sees their own account only.
    pub fn may_access(&self, account: &str) -> bool {
        self.roles.contains(&Role::Admin) || crate::same_account(&self.account, account)
    }
}

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

impl fmt::Display for Brand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Brand::TrustAsia => "TrustAsia",
            Brand::Wotrus => "Wotrus",
            Brand::DnsPod => "DNSPod",
            Brand::GeoTrust => "GeoTrust",
            Brand::DigiCert => "DigiCert",
            Brand::GlobalSign => "GlobalSign",
            Brand::Sectigo => "Sectigo",
            Brand::Other => "another brand",
        })
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Dv => "DV",
            Level::Ov => "OV",
            Level::Ev => "EV",
        })
    }
}

impl fmt::Display for RevocationReason {
    /// The RFC 5280 name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RevocationReason::Unspecified => "unspecified",
            RevocationReason::KeyCompromise => "keyCompromise",
            RevocationReason::AffiliationChanged => "affiliationChanged",
            RevocationReason::Superseded => "superseded",
            RevocationReason::CessationOfOperation => "cessationOfOperation",
        })
    }
}

impl fmt::Display for ValidationMethod {
    /// The name the product uses.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ValidationMethod::DnsAuto => "DNS_AUTO",
            ValidationMethod::Dns => "DNS",
            ValidationMethod::File => "FILE",
        })
    }
}

impl fmt::Display for RevocationPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RevocationPath::Immediate => "immediate",
            RevocationPath::AutomaticValidation => "automatic validation",
            RevocationPath::DomainValidation => "domain validation",
            RevocationPath::ManualReview {
                document_required: false,
            } => "manual review",
            RevocationPath::ManualReview {
                document_required: true,
            } => "manual review after a stamped document",
        })
    }
}
