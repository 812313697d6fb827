//! The values the rules talk about: a certificate's id, brand, level and key, how its
//! domains are validated, why and how it is revoked, the documents and votes of a review,
//! and where a reissue's key comes from. Commands, events and the state are made of them.

use std::fmt;

use serde::{Deserialize, Serialize};

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

/// Why a certificate was revoked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RevocationCause {
    /// Its own revocation request completed.
    Requested,
    /// REV-5: the certificate it was reissued from was revoked.
    OriginalRevoked { original: CertificateId },
    /// REV-16: another certificate with the same public key was revoked for key compromise.
    KeyCompromised { certificate: CertificateId },
    /// REV-16: someone proved they hold its private key, by signing the request with it.
    KeyProven,
}

/// Why a requested revocation ended without revoking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RevocationFailure {
    /// REV-11: domain ownership was not proven in time.
    ValidationExpired,
    /// REV-13: a reviewer rejected it.
    ReviewRejected,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gen5_a_malformed_id_is_refused_and_a_long_one_is_not_echoed() {
        for bad in ["", "has space", "a.b", "a>", "zertifikät"] {
            let err = CertificateId::parse(bad).expect_err("refused");
            assert_eq!(err.reason(), Reason::InvalidArgument);
            assert!(err.message().contains(&format!("{bad:?}")));
        }
        let long = "x".repeat(1 << 20);
        let err = CertificateId::parse(&long).expect_err("refused");
        assert!(err.message().len() < 200, "{}", err.message().len());
        assert!(err.message().contains("an id of 1048576 bytes"));
    }
}
