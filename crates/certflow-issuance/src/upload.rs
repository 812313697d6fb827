//! Reading an uploaded PEM certificate with x509-parser: public so that the fuzz targets
//! (`fuzz/`) can drive it with arbitrary input.

use certflow_domain::{
    CertificateId, DomainError, DomainName, Level, Reason, Timestamp, UploadCertificate,
};
use sha2::{Digest, Sha256};
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::pem::Pem;

/// Largest PEM accepted: a leaf and a long chain fit many times over.
pub const MAX_PEM_BYTES: usize = 64 * 1024;

const OID_EV: &str = "2.23.140.1.1";
const OID_OV: &str = "2.23.140.1.2.2";
const OID_IV: &str = "2.23.140.1.2.3";

pub(crate) use certflow_ca::csr::key_algorithm;

fn invalid(message: impl Into<String>) -> DomainError {
    DomainError::invalid(Reason::InvalidCertificate, message)
}

/// Checks an upload as a relying party would: the leaf has not expired, each certificate of
/// the chain is signed by the next, and a private key given with it is the leaf's.
pub fn check_upload(
    pem: &str,
    private_key_pem: Option<&str>,
    now: Timestamp,
) -> Result<(), DomainError> {
    check_certificate(pem, private_key_pem, Some(now))
}

/// Checks a certificate issued before certflow that an administrator records: as an
/// upload, but it may have expired (its history is worth keeping).
pub fn check_legacy_record(pem: &str, private_key_pem: Option<&str>) -> Result<(), DomainError> {
    check_certificate(pem, private_key_pem, None)
}

fn check_certificate(
    pem: &str,
    private_key_pem: Option<&str>,
    unexpired_at: Option<Timestamp>,
) -> Result<(), DomainError> {
    let blocks: Vec<Pem> = Pem::iter_from_buffer(pem.as_bytes())
        .filter_map(Result::ok)
        .filter(|block| block.label == "CERTIFICATE")
        .collect();
    let mut certificates = Vec::with_capacity(blocks.len());
    for block in &blocks {
        certificates.push(block.parse_x509().map_err(|err| {
            invalid(format!(
                "a CERTIFICATE block is not a valid X.509 certificate: {err}"
            ))
        })?);
    }
    let Some(leaf) = certificates.first() else {
        return Err(invalid(
            "no PEM block labelled CERTIFICATE found; paste the certificate as PEM",
        ));
    };
    let not_after = Timestamp::from_unix_seconds(leaf.validity().not_after.timestamp());
    if unexpired_at.is_some_and(|now| not_after <= now) {
        return Err(invalid(
            "the certificate has expired; upload one that is still valid",
        ));
    }
    for pair in certificates.windows(2) {
        if pair[0]
            .verify_signature(Some(pair[1].public_key()))
            .is_err()
        {
            return Err(invalid(format!(
                "the chain is broken: {} is not signed by {}; give the chain in order, leaf first",
                pair[0].subject(),
                pair[1].subject()
            )));
        }
    }
    if let Some(key_pem) = private_key_pem {
        let key = rcgen::KeyPair::from_pem(key_pem).map_err(|_| {
            DomainError::invalid(
                Reason::InvalidArgument,
                "the private key is not a readable PKCS#8 PEM key",
            )
        })?;
        use rcgen::PublicKeyData;
        if key.subject_public_key_info() != leaf.public_key().raw {
            return Err(DomainError::invalid(
                Reason::KeyMismatch,
                "the private key does not belong to this certificate",
            ));
        }
    }
    Ok(())
}

/// Parses the leaf certificate of `pem` into an upload command for certificate `id`.
pub fn parse_upload(
    id: CertificateId,
    account: &str,
    pem: &str,
) -> Result<UploadCertificate, DomainError> {
    if pem.len() > MAX_PEM_BYTES {
        return Err(invalid(format!(
            "the PEM is {} bytes; at most {MAX_PEM_BYTES} are accepted",
            pem.len()
        )));
    }
    let leaf = Pem::iter_from_buffer(pem.as_bytes())
        .filter_map(Result::ok)
        .find(|block| block.label == "CERTIFICATE")
        .ok_or_else(|| {
            invalid("no PEM block labelled CERTIFICATE found; paste the certificate as PEM")
        })?;
    let cert = leaf.parse_x509().map_err(|err| {
        invalid(format!(
            "the CERTIFICATE block is not a valid X.509 certificate: {err}"
        ))
    })?;

    // The names it carries: the common name if it is a domain, and every DNS name. One a
    // URL parser reads as an IP address (CA-1) refuses the whole certificate.
    let mut names: Vec<&str> = Vec::new();
    if let Some(cn) = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
    {
        names.push(cn);
    }
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if let GeneralName::DNSName(dns) = name {
                names.push(dns);
            }
        }
    }
    let mut domains: Vec<DomainName> = Vec::new();
    for name in names {
        if DomainName::reads_as_ip_address(name) {
            // Refused with CA-1's reason and message.
            DomainName::parse(name)?;
        }
        if let Ok(name) = DomainName::parse(name)
            && !domains.contains(&name)
        {
            domains.push(name);
        }
    }
    if domains.is_empty() {
        return Err(invalid(
            "the certificate names no DNS domain; upload a server certificate issued for a domain",
        ));
    }

    let spki = cert.public_key();
    let algorithm = key_algorithm(spki);

    let mut level = Level::Dv;
    for ext in cert.extensions() {
        if let ParsedExtension::CertificatePolicies(policies) = ext.parsed_extension() {
            for policy in policies.iter() {
                match policy.policy_id.to_id_string().as_str() {
                    OID_EV => level = Level::Ev,
                    OID_OV | OID_IV if level != Level::Ev => level = Level::Ov,
                    _ => {}
                }
            }
        }
    }

    let validity = cert.validity();
    Ok(UploadCertificate {
        id,
        account: account.to_string(),
        level,
        algorithm,
        domains,
        not_before: Timestamp::from_unix_seconds(validity.not_before.timestamp()),
        not_after: Timestamp::from_unix_seconds(validity.not_after.timestamp()),
        public_key_sha256: hex::encode(Sha256::digest(spki.raw)),
        serial_number: cert.raw_serial_as_string(),
        issuer: cert.issuer().to_string(),
        pem: pem.to_string(),
        private_key_id: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> CertificateId {
        CertificateId::parse("u1").expect("valid")
    }

    #[test]
    fn gen5_garbage_is_invalid_certificate() {
        for pem in [
            "",
            "hello",
            "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        ] {
            let err = parse_upload(id(), "acme", pem).expect_err("refused");
            assert_eq!(err.reason(), Reason::InvalidCertificate, "{pem:?}");
        }
    }

    #[test]
    fn gen5_oversized_pem_is_refused() {
        let pem = "A".repeat(MAX_PEM_BYTES + 1);
        let err = parse_upload(id(), "acme", &pem).expect_err("refused");
        assert_eq!(err.reason(), Reason::InvalidCertificate);
    }

    #[test]
    fn a_real_certificate_is_read() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).expect("key");
        let mut params = rcgen::CertificateParams::new(vec![
            "www.example.org".to_string(),
            "api.example.org".to_string(),
        ])
        .expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "www.example.org");
        let cert = params.self_signed(&key).expect("self-signed");
        let upload = parse_upload(id(), "acme", &cert.pem()).expect("parsed");
        assert_eq!(upload.algorithm, certflow_domain::KeyAlgorithm::EccP384);
        assert_eq!(upload.level, Level::Dv);
        let names: Vec<&str> = upload.domains.iter().map(DomainName::as_str).collect();
        assert_eq!(names, ["www.example.org", "api.example.org"]);
        assert_eq!(upload.public_key_sha256.len(), 64);
        assert!(upload.not_after > upload.not_before);
    }
}
