//! SM2 certificates (DNSPod GM): an SM2 root and intermediate issuing SM2 leaves, signed with
//! SM2-with-SM3, and their CRLs. Built with the RustCrypto `sm2` and `x509-cert` crates (rcgen
//! has no SM2).
//!
//! The SM2 distinguishing identifier is empty: OpenSSL 3.0 verifies X.509 SM2 signatures with
//! an empty ID, and refuses a chain signed with GM/T 0009's default `1234567812345678` (each
//! signature is valid, but `openssl verify` checks intermediates with the empty ID).

use std::str::FromStr;
use std::time::{Duration, UNIX_EPOCH};

use const_oid::ObjectIdentifier;
use der::asn1::{Ia5String, OctetString, Uint};
use der::pem::LineEnding;
use der::referenced::OwnedToRef;
use der::{DecodePem, Encode, EncodePem, Sequence};
use rsa::rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};
use sm2::dsa::signature::{self, Keypair, Signer};
use sm2::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use sm2::{PublicKey, SecretKey};
use spki::{
    AlgorithmIdentifierOwned, DynSignatureAlgorithmIdentifier, SignatureBitStringEncoding,
    SubjectPublicKeyInfoOwned,
};
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, CrlDistributionPoints, CrlNumber, CrlReason, ExtendedKeyUsage,
    IssuingDistributionPoint, SubjectAltName,
};
use x509_cert::ext::{AsExtension, Extension};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};
use x509_cert::{Certificate, Version};

use certflow_domain::{DomainName, RevocationReason, Timestamp};

use crate::{CaError, IssuedCertificate, RevokedEntry, SignedCrl};

/// SM2-with-SM3 (GM/T 0006).
const SM2_WITH_SM3: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.156.10197.1.501");
/// The distinguishing identifier the signatures use (see the module docs).
const DISTINGUISHING_ID: &str = "";

/// An SM2 signature as X.509 carries it: `SEQUENCE { r INTEGER, s INTEGER }`.
#[derive(Sequence)]
pub(crate) struct Sm2DerSignature {
    r: Uint,
    s: Uint,
}

impl Sm2DerSignature {
    /// The signature in `der`, as the `sm2` crate verifies it.
    pub(crate) fn parse(der: &[u8]) -> Option<sm2::dsa::Signature> {
        use der::Decode;
        let parsed = Sm2DerSignature::from_der(der).ok()?;
        let scalar = |value: &Uint| {
            let bytes = value.as_bytes();
            let mut padded = [0u8; 32];
            let start = 32usize.checked_sub(bytes.len())?;
            padded[start..].copy_from_slice(bytes);
            Some(padded)
        };
        sm2::dsa::Signature::from_scalars(scalar(&parsed.r)?, scalar(&parsed.s)?).ok()
    }
}

impl SignatureBitStringEncoding for Sm2DerSignature {
    fn to_bitstring(&self) -> der::Result<der::asn1::BitString> {
        der::asn1::BitString::from_bytes(&self.to_der()?)
    }
}

/// An SM2 key that can sign certificates and CRLs.
struct Sm2Signer {
    key: sm2::dsa::SigningKey,
    public: PublicKey,
}

impl Sm2Signer {
    fn new(secret: &SecretKey) -> Result<Self, CaError> {
        Ok(Sm2Signer {
            key: sm2::dsa::SigningKey::new(DISTINGUISHING_ID, secret)
                .map_err(|e| failed("SM2 signing key", e))?,
            public: secret.public_key(),
        })
    }

    fn spki(&self) -> Result<SubjectPublicKeyInfoOwned, CaError> {
        SubjectPublicKeyInfoOwned::from_key(self.public).map_err(|e| failed("SM2 public key", e))
    }
}

impl Keypair for Sm2Signer {
    type VerifyingKey = PublicKey;

    fn verifying_key(&self) -> PublicKey {
        self.public
    }
}

impl DynSignatureAlgorithmIdentifier for Sm2Signer {
    fn signature_algorithm_identifier(&self) -> spki::Result<AlgorithmIdentifierOwned> {
        Ok(AlgorithmIdentifierOwned {
            oid: SM2_WITH_SM3,
            parameters: None,
        })
    }
}

impl Signer<Sm2DerSignature> for Sm2Signer {
    fn try_sign(&self, message: &[u8]) -> Result<Sm2DerSignature, signature::Error> {
        let signature: sm2::dsa::Signature = self.key.try_sign(message)?;
        Ok(Sm2DerSignature {
            r: Uint::new(&signature.r_bytes()).map_err(|_| signature::Error::new())?,
            s: Uint::new(&signature.s_bytes()).map_err(|_| signature::Error::new())?,
        })
    }
}

fn failed(what: &str, err: impl std::fmt::Display) -> CaError {
    CaError::Unsupported(format!("{what}: {err}"))
}

fn time(t: Timestamp) -> Result<Time, CaError> {
    let at = UNIX_EPOCH + Duration::from_millis(t.unix_millis().max(0) as u64);
    Time::try_from(at).map_err(|e| failed("time", e))
}

fn random_serial() -> Result<SerialNumber, CaError> {
    let mut bytes = [0u8; 16];
    OsRng.fill_bytes(&mut bytes);
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    SerialNumber::new(&bytes).map_err(|e| failed("serial", e))
}

/// An SM2 CA's certificates and keys, as stored between runs.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Sm2Material {
    pub root_cert_pem: String,
    pub root_key_pem: Option<String>,
    pub intermediate_cert_pem: String,
    pub intermediate_key_pem: String,
}

impl std::fmt::Debug for Sm2Material {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sm2Material").finish_non_exhaustive()
    }
}

/// An SM2 issuing CA.
pub struct Sm2Authority {
    intermediate: Sm2Signer,
    intermediate_name: Name,
    chain_pem: String,
}

impl std::fmt::Debug for Sm2Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sm2Authority").finish_non_exhaustive()
    }
}

/// A new SM2 key pair, as PKCS#8 PEM.
pub fn generate_key_pem() -> Result<String, CaError> {
    Ok(SecretKey::random(&mut OsRng)
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| failed("SM2 key encoding", e))?
        .to_string())
}

fn pem(certificate: &Certificate) -> Result<String, CaError> {
    certificate
        .to_pem(LineEnding::LF)
        .map_err(|e| failed("certificate encoding", e))
}

impl Sm2Authority {
    /// A new root and intermediate named after `organisation`, valid from `now`.
    pub fn generate(organisation: &str, now: Timestamp) -> Result<(Self, Sm2Material), CaError> {
        let root_key = SecretKey::random(&mut OsRng);
        let intermediate_key = SecretKey::random(&mut OsRng);
        let root = Sm2Signer::new(&root_key)?;
        let intermediate = Sm2Signer::new(&intermediate_key)?;
        let root_name = Name::from_str(&format!(
            "CN={organisation} certflow SM2 Root CA,O={organisation}"
        ))
        .map_err(|e| failed("root name", e))?;
        let intermediate_name = Name::from_str(&format!(
            "CN={organisation} certflow SM2 Issuing CA,O={organisation}"
        ))
        .map_err(|e| failed("intermediate name", e))?;
        let validity = |years: i64| -> Result<Validity, CaError> {
            Ok(Validity {
                not_before: time(now)?,
                not_after: time(now.plus(certflow_domain::Duration::days(years * 365)))?,
            })
        };
        let root_cert: Certificate = CertificateBuilder::new(
            Profile::Root,
            random_serial()?,
            validity(20)?,
            root_name.clone(),
            root.spki()?,
            &root,
        )
        .map_err(|e| failed("root", e))?
        .build::<Sm2DerSignature>()
        .map_err(|e| failed("root", e))?;
        let intermediate_cert: Certificate = CertificateBuilder::new(
            Profile::SubCA {
                issuer: root_name,
                path_len_constraint: Some(0),
            },
            random_serial()?,
            validity(10)?,
            intermediate_name,
            intermediate.spki()?,
            &root,
        )
        .map_err(|e| failed("intermediate", e))?
        .build::<Sm2DerSignature>()
        .map_err(|e| failed("intermediate", e))?;
        let material = Sm2Material {
            root_cert_pem: pem(&root_cert)?,
            root_key_pem: Some(
                root_key
                    .to_pkcs8_pem(LineEnding::LF)
                    .map_err(|e| failed("key encoding", e))?
                    .to_string(),
            ),
            intermediate_cert_pem: pem(&intermediate_cert)?,
            intermediate_key_pem: intermediate_key
                .to_pkcs8_pem(LineEnding::LF)
                .map_err(|e| failed("key encoding", e))?
                .to_string(),
        };
        Ok((Self::load(&material)?, material))
    }

    /// Loads stored material.
    pub fn load(material: &Sm2Material) -> Result<Self, CaError> {
        let key = SecretKey::from_pkcs8_pem(&material.intermediate_key_pem)
            .map_err(|e| failed("SM2 intermediate key", e))?;
        let certificate = Certificate::from_pem(material.intermediate_cert_pem.as_bytes())
            .map_err(|e| failed("SM2 intermediate certificate", e))?;
        Ok(Sm2Authority {
            intermediate: Sm2Signer::new(&key)?,
            intermediate_name: certificate.tbs_certificate.subject,
            chain_pem: format!(
                "{}{}",
                material.intermediate_cert_pem, material.root_cert_pem
            ),
        })
    }

    /// The chain above this CA's leaves.
    pub fn chain_pem(&self) -> &str {
        &self.chain_pem
    }

    /// Certifies the SM2 key in `private_key_pem` (PKCS#8) for `domains`, naming `crl_url`
    /// as its CRL distribution point.
    pub fn issue(
        &self,
        domains: &[DomainName],
        private_key_pem: &str,
        not_before: Timestamp,
        not_after: Timestamp,
        crl_url: &str,
    ) -> Result<IssuedCertificate, CaError> {
        let leaf_key =
            SecretKey::from_pkcs8_pem(private_key_pem).map_err(|e| failed("SM2 key", e))?;
        let spki = SubjectPublicKeyInfoOwned::from_key(leaf_key.public_key())
            .map_err(|e| failed("SM2 public key", e))?;
        self.issue_for_key(domains, spki, not_before, not_after, crl_url)
    }

    /// Certifies the SM2 public key `spki_der` (a DER SubjectPublicKeyInfo) for `domains`,
    /// naming `crl_url` as its CRL distribution point.
    pub fn issue_for_public_key(
        &self,
        domains: &[DomainName],
        spki_der: &[u8],
        not_before: Timestamp,
        not_after: Timestamp,
        crl_url: &str,
    ) -> Result<IssuedCertificate, CaError> {
        use der::Decode;
        let spki = SubjectPublicKeyInfoOwned::from_der(spki_der)
            .map_err(|e| failed("SM2 public key", e))?;
        PublicKey::try_from(spki.owned_to_ref())
            .map_err(|e| CaError::Unsupported(format!("not an SM2 public key: {e}")))?;
        self.issue_for_key(domains, spki, not_before, not_after, crl_url)
    }

    fn issue_for_key(
        &self,
        domains: &[DomainName],
        spki: SubjectPublicKeyInfoOwned,
        not_before: Timestamp,
        not_after: Timestamp,
        crl_url: &str,
    ) -> Result<IssuedCertificate, CaError> {
        let Some(primary) = domains.first() else {
            return Err(CaError::Unsupported("a certificate needs a name".into()));
        };
        let subject = Name::from_str(&format!("CN={primary}")).map_err(|e| failed("subject", e))?;
        let mut builder = CertificateBuilder::new(
            Profile::Leaf {
                issuer: self.intermediate_name.clone(),
                enable_key_agreement: false,
                enable_key_encipherment: false,
            },
            random_serial()?,
            Validity {
                not_before: time(not_before)?,
                not_after: time(not_after)?,
            },
            subject,
            spki.clone(),
            &self.intermediate,
        )
        .map_err(|e| failed("leaf", e))?;
        let names = domains
            .iter()
            .map(|d| Ia5String::new(d.as_str()).map(GeneralName::DnsName))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| failed("names", e))?;
        let crl_uri = Ia5String::new(crl_url).map_err(|e| failed("CRL URL", e))?;
        builder
            .add_extension(&SubjectAltName(names))
            .and_then(|_| {
                builder.add_extension(&ExtendedKeyUsage(vec![
                    const_oid::db::rfc5280::ID_KP_SERVER_AUTH,
                    const_oid::db::rfc5280::ID_KP_CLIENT_AUTH,
                ]))
            })
            .and_then(|_| {
                builder.add_extension(&CrlDistributionPoints(vec![DistributionPoint {
                    distribution_point: Some(DistributionPointName::FullName(vec![
                        GeneralName::UniformResourceIdentifier(crl_uri),
                    ])),
                    reasons: None,
                    crl_issuer: None,
                }]))
            })
            .map_err(|e| failed("leaf extensions", e))?;
        let certificate: Certificate = builder
            .build::<Sm2DerSignature>()
            .map_err(|e| failed("leaf", e))?;
        let spki_der = spki.to_der().map_err(|e| failed("SM2 public key", e))?;
        Ok(IssuedCertificate {
            pem: pem(&certificate)?,
            chain_pem: self.chain_pem.clone(),
            serial_hex: hex::encode(certificate.tbs_certificate.serial_number.as_bytes()),
            public_key_sha256: hex::encode(Sha256::digest(&spki_der)),
        })
    }

    /// Signs CRL number `number` listing `entries`; `unspecified` carries no reason. The
    /// CRL's `issuingDistributionPoint` names `distribution_point`, the URL in the
    /// certificates it covers (BR 7.2: a partitioned CRL).
    pub fn crl(
        &self,
        number: u64,
        entries: &[RevokedEntry],
        this_update: Timestamp,
        next_update: Timestamp,
        distribution_point: &str,
    ) -> Result<SignedCrl, CaError> {
        let name = &self.intermediate_name;
        let mut revoked = Vec::with_capacity(entries.len());
        for entry in entries {
            let serial =
                hex::decode(entry.serial_hex.replace(':', "")).map_err(|e| failed("serial", e))?;
            let reason = match entry.reason {
                RevocationReason::Unspecified => None,
                RevocationReason::KeyCompromise => Some(CrlReason::KeyCompromise),
                RevocationReason::AffiliationChanged => Some(CrlReason::AffiliationChanged),
                RevocationReason::Superseded => Some(CrlReason::Superseded),
                RevocationReason::CessationOfOperation => Some(CrlReason::CessationOfOperation),
            };
            let extensions = reason
                .map(|reason| reason.to_extension(name, &[]).map(|e| vec![e]))
                .transpose()
                .map_err(|e| failed("CRL reason", e))?;
            revoked.push(RevokedCert {
                serial_number: SerialNumber::new(&serial).map_err(|e| failed("serial", e))?,
                revocation_date: time(entry.revoked_at)?,
                crl_entry_extensions: extensions,
            });
        }
        let spki = self.intermediate.spki()?;
        let authority_key = AuthorityKeyIdentifier::try_from(spki.owned_to_ref())
            .map_err(|e| failed("CRL authority key", e))?;
        let number_bytes = number.to_be_bytes();
        let extensions = vec![
            authority_key
                .to_extension(name, &[])
                .map_err(|e| failed("CRL extensions", e))?,
            CrlNumber(Uint::new(&number_bytes).map_err(|e| failed("CRL number", e))?)
                .to_extension(name, &[])
                .map_err(|e| failed("CRL extensions", e))?,
            issuing_distribution_point(distribution_point)?,
        ];
        let algorithm = self
            .intermediate
            .signature_algorithm_identifier()
            .map_err(|e| failed("CRL algorithm", e))?;
        let tbs = TbsCertList {
            version: Version::V2,
            signature: algorithm.clone(),
            issuer: name.clone(),
            this_update: time(this_update)?,
            next_update: Some(time(next_update)?),
            revoked_certificates: (!revoked.is_empty()).then_some(revoked),
            crl_extensions: Some(extensions),
        };
        let signature: Sm2DerSignature = self
            .intermediate
            .try_sign(&tbs.to_der().map_err(|e| failed("CRL", e))?)
            .map_err(|e| failed("CRL signature", e))?;
        let crl = CertificateList {
            tbs_cert_list: tbs,
            signature_algorithm: algorithm,
            signature: signature
                .to_bitstring()
                .map_err(|e| failed("CRL signature", e))?,
        };
        let der = crl.to_der().map_err(|e| failed("CRL", e))?;
        let pem = der::pem::encode_string("X509 CRL", LineEnding::LF, &der)
            .map_err(|e| failed("CRL", e))?;
        Ok(SignedCrl { der, pem })
    }
}

/// The critical `issuingDistributionPoint` of a partitioned CRL (BR 7.2): the URL of the
/// certificates it covers, end-entity certificates only. x509-cert 0.2 gives the type the
/// OID of `subjectInfoAccess` (its `AsExtension` would write the wrong extension), so the
/// extension is assembled here with the RFC 5280 OID around the crate's encoding.
fn issuing_distribution_point(url: &str) -> Result<Extension, CaError> {
    let point = IssuingDistributionPoint {
        distribution_point: Some(DistributionPointName::FullName(vec![
            GeneralName::UniformResourceIdentifier(
                Ia5String::new(url).map_err(|e| failed("CRL distribution point", e))?,
            ),
        ])),
        only_contains_user_certs: true,
        only_contains_ca_certs: false,
        only_some_reasons: None,
        indirect_crl: false,
        only_contains_attribute_certs: false,
    };
    Ok(Extension {
        extn_id: const_oid::db::rfc5280::ID_CE_ISSUING_DISTRIBUTION_POINT,
        critical: true,
        extn_value: OctetString::new(point.to_der().map_err(|e| failed("CRL extensions", e))?)
            .map_err(|e| failed("CRL extensions", e))?,
    })
}
