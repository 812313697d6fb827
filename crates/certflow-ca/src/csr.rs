//! Reading keys and PKCS#10 requests: the key's algorithm and size, its fingerprint, and the
//! names a request asks for (REI-7).

use certflow_domain::{DomainError, DomainName, KeyAlgorithm, Reason};
use sha2::{Digest, Sha256};
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;

const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_P384: &str = "1.3.132.0.34";
const OID_SM2: &str = "1.2.156.10197.1.301";

/// The algorithm and size of a public key; `Other` for anything the product does not issue.
pub fn key_algorithm(spki: &SubjectPublicKeyInfo<'_>) -> KeyAlgorithm {
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok())
        .map(|oid| oid.to_id_string());
    match (spki.parsed(), curve.as_deref()) {
        (Ok(PublicKey::RSA(rsa)), _) => match rsa.key_size() {
            2048 => KeyAlgorithm::Rsa2048,
            3072 => KeyAlgorithm::Rsa3072,
            4096 => KeyAlgorithm::Rsa4096,
            _ => KeyAlgorithm::Other,
        },
        (_, Some(OID_P256)) => KeyAlgorithm::EccP256,
        (_, Some(OID_P384)) => KeyAlgorithm::EccP384,
        (_, Some(OID_SM2)) => KeyAlgorithm::Sm2,
        _ => KeyAlgorithm::Other,
    }
}

/// The algorithm of a DER SubjectPublicKeyInfo (`Other` if it does not parse).
pub fn spki_algorithm(spki_der: &[u8]) -> KeyAlgorithm {
    SubjectPublicKeyInfo::from_der(spki_der)
        .map(|(_, spki)| key_algorithm(&spki))
        .unwrap_or(KeyAlgorithm::Other)
}

/// Verifies an SM2-with-SM3 signature over `message` by the key in `spki_der`. Signers use
/// either the GM/T 0009 default distinguishing ID or none (OpenSSL's choice for
/// certificates); both are accepted.
fn verify_sm2(spki_der: &[u8], message: &[u8], signature_der: &[u8]) -> bool {
    use der::Decode;
    use sm2::dsa::signature::Verifier;
    let Ok(spki) = spki::SubjectPublicKeyInfoRef::from_der(spki_der) else {
        return false;
    };
    let Ok(public_key) = sm2::PublicKey::try_from(spki) else {
        return false;
    };
    let Some(signature) = crate::sm2ca::Sm2DerSignature::parse(signature_der) else {
        return false;
    };
    ["1234567812345678", ""].into_iter().any(|distid| {
        sm2::dsa::VerifyingKey::new(distid, public_key)
            .is_ok_and(|key| key.verify(message, &signature).is_ok())
    })
}

/// What a checked PKCS#10 request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsrInfo {
    pub algorithm: KeyAlgorithm,
    /// The subject's CN and the DNS names of its SAN extension, each once.
    pub names: Vec<DomainName>,
    /// Hex SHA-256 of the SubjectPublicKeyInfo.
    pub public_key_sha256: String,
    /// The SubjectPublicKeyInfo, DER.
    pub public_key_der: Vec<u8>,
}

/// REI-7: a CSR must parse, carry a valid self-signature and hold a key the product issues
/// for (RSA 2048/3072/4096, ECC P-256/P-384).
pub fn inspect(csr_pem: &str) -> Result<CsrInfo, DomainError> {
    let invalid = |why: String| DomainError::invalid(Reason::CsrInvalid, why);
    let (_, pem) = x509_parser::pem::parse_x509_pem(csr_pem.as_bytes())
        .map_err(|_| invalid("the CSR is not PEM".into()))?;
    let (_, csr) =
        x509_parser::certification_request::X509CertificationRequest::from_der(&pem.contents)
            .map_err(|e| invalid(format!("the CSR does not parse: {e}")))?;
    let info = &csr.certification_request_info;
    let spki = &info.subject_pki;
    // The key policy first: a key too weak to certify is refused as such, even where the
    // signature library would not verify its signature either.
    let algorithm = match key_algorithm(spki) {
        KeyAlgorithm::Other => {
            return Err(DomainError::invalid(
                Reason::KeyPolicyViolation,
                "the CSR's key is not one the product issues for: use RSA 2048, 3072 or 4096, \
                 ECC P-256 or P-384, or SM2 for SM2 certificates",
            ));
        }
        algorithm => algorithm,
    };
    let verified = if algorithm == KeyAlgorithm::Sm2 {
        verify_sm2(spki.raw, info.raw, &csr.signature_value.data)
    } else {
        csr.verify_signature().is_ok()
    };
    if !verified {
        return Err(invalid("the CSR's self-signature does not verify".into()));
    }
    let mut names: Vec<DomainName> = Vec::new();
    let mut add = |name: &str| {
        if let Ok(name) = DomainName::parse(name)
            && !names.contains(&name)
        {
            names.push(name);
        }
    };
    for cn in info.subject.iter_common_name() {
        if let Ok(cn) = cn.as_str() {
            add(cn);
        }
    }
    for extension in csr.requested_extensions().into_iter().flatten() {
        if let ParsedExtension::SubjectAlternativeName(san) = extension {
            for name in &san.general_names {
                if let GeneralName::DNSName(dns) = name {
                    add(dns);
                }
            }
        }
    }
    Ok(CsrInfo {
        algorithm,
        names,
        public_key_sha256: hex::encode(Sha256::digest(spki.raw)),
        public_key_der: spki.raw.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csr(key: &rcgen::KeyPair, names: &[&str]) -> String {
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .expect("params")
            .serialize_request(key)
            .expect("csr")
            .pem()
            .expect("pem")
    }

    #[test]
    fn rei7_a_csr_gives_its_key_and_names() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).expect("key");
        let info = inspect(&csr(&key, &["www.example.com", "api.example.com"])).expect("valid");
        assert_eq!(info.algorithm, KeyAlgorithm::EccP384);
        let names: Vec<&str> = info.names.iter().map(DomainName::as_str).collect();
        assert_eq!(names, ["www.example.com", "api.example.com"]);
        assert_eq!(info.public_key_sha256.len(), 64);
        assert_eq!(spki_algorithm(&info.public_key_der), KeyAlgorithm::EccP384);
    }

    #[test]
    fn rei7_a_tampered_csr_is_refused() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        let pem = csr(&key, &["www.example.com"]);
        let (_, parsed) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).expect("pem");
        let mut der = parsed.contents.clone();
        // Flip a byte inside the requested name: the signature no longer matches.
        let at = der
            .windows(3)
            .position(|w| w == b"www")
            .expect("name in the request");
        der[at] = b'v';
        let tampered =
            der::pem::encode_string("CERTIFICATE REQUEST", der::pem::LineEnding::LF, &der)
                .expect("pem");
        assert_eq!(
            inspect(&tampered).expect_err("tampered").reason(),
            Reason::CsrInvalid
        );
        assert_eq!(
            inspect("not a csr").expect_err("garbage").reason(),
            Reason::CsrInvalid
        );
    }
}
