//! The built-in CA: a root and an issuing intermediate per brand.

use std::collections::HashMap;

use certflow_domain::{Brand, RevocationReason, Timestamp};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CrlDistributionPoint,
    CrlIssuingDistributionPoint, CrlScope, DistinguishedName, DnType, ExtendedKeyUsagePurpose,
    IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, RevokedCertParams, SerialNumber,
};
use rsa::rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::keys::{self, GeneratedKey};
use crate::sm2ca::Sm2Authority;
use crate::{
    CaError, CertificateAuthority, CrlPartition, IssueRequest, IssuedCertificate, IssuerId,
    RevokedEntry, Shard, SignedCrl, SubjectKey,
};

/// The key type of a brand's root and intermediate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CaAlgorithm {
    /// ECDSA P-384 root, ECDSA P-256 intermediate.
    Ecc,
    /// RSA 4096 root, RSA 2048 intermediate.
    Rsa,
}

/// A brand's CA certificates and keys, as stored between runs. Keep it in the key store:
/// it holds private keys.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaMaterial {
    pub brand: Brand,
    pub root_cert_pem: String,
    /// Absent when the root is kept offline, as a CA operator should.
    pub root_key_pem: Option<String>,
    pub intermediate_cert_pem: String,
    pub intermediate_key_pem: String,
}

impl std::fmt::Debug for CaMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaMaterial")
            .field("brand", &self.brand)
            .finish_non_exhaustive()
    }
}

struct Authority {
    intermediate: Issuer<'static, KeyPair>,
    chain_pem: String,
}

/// Root and intermediate per brand, and SM2 ones where a brand issues SM2, in memory.
pub struct BuiltinCa {
    authorities: HashMap<Brand, Authority>,
    sm2: HashMap<Brand, Sm2Authority>,
    crl_base_url: String,
}

impl std::fmt::Debug for BuiltinCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuiltinCa")
            .field("brands", &self.authorities.keys().collect::<Vec<_>>())
            .field("crl_base_url", &self.crl_base_url)
            .finish()
    }
}

fn to_offset(t: Timestamp) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(t.unix_millis()) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn random_serial() -> SerialNumber {
    let mut bytes = [0u8; 16];
    OsRng.fill_bytes(&mut bytes);
    // Positive, and never a leading zero byte that DER would strip.
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    SerialNumber::from_slice(&bytes)
}

fn brand_name(brand: Brand) -> String {
    brand.to_string()
}

impl CaMaterial {
    /// A brand's CA from files an operator provides in `dir`: `root.crt`,
    /// `intermediate.crt` and `intermediate.key` (PKCS#8 PEM). The root's key is not needed
    /// and is best kept offline. `None` when `dir` holds no `intermediate.key`.
    pub fn from_dir(brand: Brand, dir: &std::path::Path) -> Result<Option<Self>, CaError> {
        let key_path = dir.join("intermediate.key");
        if !key_path.exists() {
            return Ok(None);
        }
        let read = |name: &str| {
            std::fs::read_to_string(dir.join(name)).map_err(|e| CaError::Material {
                brand,
                message: format!("{}: {e}", dir.join(name).display()),
            })
        };
        Ok(Some(CaMaterial {
            brand,
            root_cert_pem: read("root.crt")?,
            root_key_pem: None,
            intermediate_cert_pem: read("intermediate.crt")?,
            intermediate_key_pem: read("intermediate.key")?,
        }))
    }
}

impl BuiltinCa {
    /// Generates a root and intermediate for each of `brands`, valid from `now` (root 20
    /// years, intermediate 10). Returns the CA and the material to store.
    pub fn generate(
        brands: &[Brand],
        algorithm: CaAlgorithm,
        crl_base_url: &str,
        now: Timestamp,
    ) -> Result<(Self, Vec<CaMaterial>), CaError> {
        let mut materials = Vec::new();
        for &brand in brands {
            materials.push(generate_material(brand, algorithm, now)?);
        }
        let ca = Self::load(&materials, crl_base_url)?;
        Ok((ca, materials))
    }

    /// Loads stored material.
    pub fn load(materials: &[CaMaterial], crl_base_url: &str) -> Result<Self, CaError> {
        let mut authorities = HashMap::new();
        for material in materials {
            let broken = |e: rcgen::Error| CaError::Material {
                brand: material.brand,
                message: e.to_string(),
            };
            let key = KeyPair::from_pem(&material.intermediate_key_pem).map_err(broken)?;
            let intermediate =
                Issuer::from_ca_cert_pem(&material.intermediate_cert_pem, key).map_err(broken)?;
            authorities.insert(
                material.brand,
                Authority {
                    intermediate,
                    chain_pem: format!(
                        "{}{}",
                        material.intermediate_cert_pem, material.root_cert_pem
                    ),
                },
            );
        }
        Ok(BuiltinCa {
            authorities,
            sm2: HashMap::new(),
            crl_base_url: crl_base_url.trim_end_matches('/').to_string(),
        })
    }

    /// Adds `brand`'s SM2 authority.
    pub fn with_sm2(mut self, brand: Brand, authority: Sm2Authority) -> Self {
        self.sm2.insert(brand, authority);
        self
    }

    fn authority(&self, brand: Brand) -> Result<&Authority, CaError> {
        self.authorities
            .get(&brand)
            .ok_or_else(|| CaError::Unsupported(format!("this CA does not issue for {brand}")))
    }

    fn sm2_authority(&self, brand: Brand) -> Result<&Sm2Authority, CaError> {
        self.sm2
            .get(&brand)
            .ok_or_else(|| CaError::Unsupported(format!("{brand} issues no SM2 certificates here")))
    }

    /// The distribution point of a leaf `request` asks for: its shard of the issuer's CRL.
    fn leaf_crl_url(&self, request: &IssueRequest<'_>, sm2: bool) -> String {
        self.crl_url(CrlPartition {
            issuer: IssuerId {
                brand: request.brand,
                sm2,
            },
            shard: Shard::Numbered(request.crl_shard),
        })
    }
}

fn ca_keys(algorithm: CaAlgorithm) -> Result<(GeneratedKey, GeneratedKey), CaError> {
    use certflow_domain::KeyAlgorithm;
    Ok(match algorithm {
        CaAlgorithm::Ecc => (
            keys::generate(KeyAlgorithm::EccP384)?,
            keys::generate(KeyAlgorithm::EccP256)?,
        ),
        CaAlgorithm::Rsa => (
            keys::generate(KeyAlgorithm::Rsa4096)?,
            keys::generate(KeyAlgorithm::Rsa2048)?,
        ),
    })
}

fn generate_material(
    brand: Brand,
    algorithm: CaAlgorithm,
    now: Timestamp,
) -> Result<CaMaterial, CaError> {
    let (root_key, intermediate_key) = ca_keys(algorithm)?;
    let root_pair = root_key.key_pair()?;
    let intermediate_pair = intermediate_key.key_pair()?;
    let start = to_offset(now);

    let mut root = CertificateParams::default();
    root.distinguished_name = DistinguishedName::new();
    root.distinguished_name
        .push(DnType::OrganizationName, brand_name(brand));
    root.distinguished_name.push(
        DnType::CommonName,
        format!("{} certflow Root CA", brand_name(brand)),
    );
    root.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    root.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    root.not_before = start;
    root.not_after = start + time::Duration::days(20 * 365);
    root.serial_number = Some(random_serial());
    let root_cert = root.self_signed(&root_pair)?;
    let root_issuer = Issuer::new(root, root_pair);

    let mut intermediate = CertificateParams::default();
    intermediate.distinguished_name = DistinguishedName::new();
    intermediate
        .distinguished_name
        .push(DnType::OrganizationName, brand_name(brand));
    intermediate.distinguished_name.push(
        DnType::CommonName,
        format!("{} certflow Issuing CA", brand_name(brand)),
    );
    intermediate.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    intermediate.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    intermediate.use_authority_key_identifier_extension = true;
    intermediate.not_before = start;
    intermediate.not_after = start + time::Duration::days(10 * 365);
    intermediate.serial_number = Some(random_serial());
    let intermediate_cert = intermediate.signed_by(&intermediate_pair, &root_issuer)?;

    Ok(CaMaterial {
        brand,
        root_cert_pem: root_cert.pem(),
        root_key_pem: Some(root_key.private_key_pem().to_string()),
        intermediate_cert_pem: intermediate_cert.pem(),
        intermediate_key_pem: intermediate_key.private_key_pem().to_string(),
    })
}

fn serial_from_hex(serial_hex: &str) -> Result<SerialNumber, CaError> {
    let digits: String = serial_hex.chars().filter(|c| *c != ':').collect();
    match hex::decode(&digits) {
        Ok(bytes) if !bytes.is_empty() => Ok(SerialNumber::from_slice(&bytes)),
        _ => Err(CaError::Unsupported(format!(
            "{serial_hex:?} is not a serial number in hex"
        ))),
    }
}

impl CertificateAuthority for BuiltinCa {
    fn issue(&self, request: &IssueRequest<'_>) -> Result<IssuedCertificate, CaError> {
        if let SubjectKey::Generated(key) = &request.key
            && key.algorithm() == certflow_domain::KeyAlgorithm::Sm2
        {
            return self.sm2_authority(request.brand)?.issue(
                request.domains,
                key.private_key_pem(),
                request.not_before,
                request.not_after,
                &self.leaf_crl_url(request, true),
            );
        }
        if let SubjectKey::PublicKey(spki_der) = &request.key
            && crate::csr::spki_algorithm(spki_der) == certflow_domain::KeyAlgorithm::Sm2
        {
            return self.sm2_authority(request.brand)?.issue_for_public_key(
                request.domains,
                spki_der,
                request.not_before,
                request.not_after,
                &self.leaf_crl_url(request, true),
            );
        }
        let authority = self.authority(request.brand)?;
        let names: Vec<String> = request.domains.iter().map(|d| d.to_string()).collect();
        let Some(primary) = names.first().cloned() else {
            return Err(CaError::Unsupported("a certificate needs a name".into()));
        };
        let mut params = CertificateParams::new(names)?;
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, primary);
        params.not_before = to_offset(request.not_before);
        params.not_after = to_offset(request.not_after);
        params.serial_number = Some(random_serial());
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        params.crl_distribution_points = vec![CrlDistributionPoint {
            uris: vec![self.leaf_crl_url(request, false)],
        }];
        let certificate = match &request.key {
            SubjectKey::Csr(pem) => {
                let csr = rcgen::CertificateSigningRequestParams::from_pem(pem)
                    .map_err(|e| CaError::InvalidCsr(e.to_string()))?;
                params.signed_by(&csr.public_key, &authority.intermediate)?
            }
            SubjectKey::Generated(key) => {
                params.signed_by(&key.key_pair()?, &authority.intermediate)?
            }
            SubjectKey::PublicKey(spki_der) => {
                let public_key = rcgen::SubjectPublicKeyInfo::from_der(spki_der)
                    .map_err(|e| CaError::Unsupported(format!("unusable public key: {e}")))?;
                params.signed_by(&public_key, &authority.intermediate)?
            }
        };
        let (_, parsed) = x509_parser::parse_x509_certificate(certificate.der())
            .map_err(|e| CaError::Unsupported(format!("issued certificate does not parse: {e}")))?;
        Ok(IssuedCertificate {
            pem: certificate.pem(),
            chain_pem: authority.chain_pem.clone(),
            serial_hex: hex::encode(parsed.raw_serial()),
            public_key_sha256: hex::encode(Sha256::digest(parsed.public_key().raw)),
        })
    }

    fn chain_pem(&self, issuer: IssuerId) -> Result<String, CaError> {
        if issuer.sm2 {
            return Ok(self.sm2_authority(issuer.brand)?.chain_pem().to_string());
        }
        Ok(self.authority(issuer.brand)?.chain_pem.clone())
    }

    fn crl_url(&self, partition: CrlPartition) -> String {
        partition.url_under(&self.crl_base_url)
    }

    fn crl(
        &self,
        partition: CrlPartition,
        number: u64,
        entries: &[RevokedEntry],
        this_update: Timestamp,
        next_update: Timestamp,
    ) -> Result<SignedCrl, CaError> {
        let distribution_point = self.crl_url(partition);
        let issuer = partition.issuer;
        if issuer.sm2 {
            return self.sm2_authority(issuer.brand)?.crl(
                number,
                entries,
                this_update,
                next_update,
                &distribution_point,
            );
        }
        let authority = self.authority(issuer.brand)?;
        let revoked_certs = entries
            .iter()
            .map(|entry| {
                Ok(RevokedCertParams {
                    serial_number: serial_from_hex(&entry.serial_hex)?,
                    revocation_time: to_offset(entry.revoked_at),
                    reason_code: match entry.reason {
                        RevocationReason::Unspecified => None,
                        RevocationReason::KeyCompromise => {
                            Some(rcgen::RevocationReason::KeyCompromise)
                        }
                        RevocationReason::AffiliationChanged => {
                            Some(rcgen::RevocationReason::AffiliationChanged)
                        }
                        RevocationReason::Superseded => Some(rcgen::RevocationReason::Superseded),
                        RevocationReason::CessationOfOperation => {
                            Some(rcgen::RevocationReason::CessationOfOperation)
                        }
                    },
                    invalidity_date: None,
                })
            })
            .collect::<Result<Vec<_>, CaError>>()?;
        let crl = CertificateRevocationListParams {
            this_update: to_offset(this_update),
            next_update: to_offset(next_update),
            crl_number: SerialNumber::from(number),
            issuing_distribution_point: Some(CrlIssuingDistributionPoint {
                distribution_point: CrlDistributionPoint {
                    uris: vec![distribution_point],
                },
                scope: Some(CrlScope::UserCertsOnly),
            }),
            revoked_certs,
            key_identifier_method: KeyIdMethod::Sha256,
        }
        .signed_by(&authority.intermediate)?;
        Ok(SignedCrl {
            der: crl.der().to_vec(),
            pem: crl.pem()?,
        })
    }
}
