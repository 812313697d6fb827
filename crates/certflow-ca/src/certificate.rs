//! Reading a certificate someone else holds: its serial and public key, as a relying party
//! (or an ACME `revokeCert`, RFC 8555 §7.6) needs them to find it and to check a signature
//! made with its key.

use sha2::{Digest, Sha256};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::public_key::PublicKey;

use crate::CaError;

/// A certificate's public key, in the terms a JWK (RFC 7518 §6) uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyParameters {
    /// Modulus and public exponent, big-endian without leading zeros.
    Rsa { modulus: Vec<u8>, exponent: Vec<u8> },
    /// A NIST curve point: `P-256` or `P-384`, with its coordinates.
    Ec {
        curve: &'static str,
        x: Vec<u8>,
        y: Vec<u8>,
    },
    /// Any other key (SM2, Ed25519, …).
    Other,
}

/// What identifies a certificate and its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateKey {
    /// The serial number, lower-case hex.
    pub serial_hex: String,
    /// Hex SHA-256 of the SubjectPublicKeyInfo.
    pub public_key_sha256: String,
    pub parameters: KeyParameters,
}

fn trimmed(bytes: &[u8]) -> Vec<u8> {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    bytes[start..].to_vec()
}

/// Reads the DER certificate `der`: serial, key fingerprint and key parameters.
pub fn certificate_key(der: &[u8]) -> Result<CertificateKey, CaError> {
    let (rest, certificate) = X509Certificate::from_der(der)
        .map_err(|e| CaError::Unsupported(format!("not a DER certificate: {e}")))?;
    if !rest.is_empty() {
        return Err(CaError::Unsupported(
            "bytes follow the certificate's DER".into(),
        ));
    }
    let spki = certificate.public_key();
    let parameters = match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => KeyParameters::Rsa {
            modulus: trimmed(rsa.modulus),
            exponent: trimmed(rsa.exponent),
        },
        Ok(PublicKey::EC(point)) => {
            use x509_parser::oid_registry::{OID_EC_P256, OID_NIST_EC_P384};
            let data = point.data();
            let named = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok());
            // The curve its parameters name, and a point of that curve's size.
            let curve = match (named, data.len()) {
                (Some(oid), 65) if oid == OID_EC_P256 => Some("P-256"),
                (Some(oid), 97) if oid == OID_NIST_EC_P384 => Some("P-384"),
                _ => None,
            };
            match (curve, data.first()) {
                (Some(curve), Some(0x04)) => {
                    let size = (data.len() - 1) / 2;
                    KeyParameters::Ec {
                        curve,
                        x: data[1..1 + size].to_vec(),
                        y: data[1 + size..].to_vec(),
                    }
                }
                _ => KeyParameters::Other,
            }
        }
        _ => KeyParameters::Other,
    };
    Ok(CertificateKey {
        serial_hex: hex::encode(certificate.raw_serial()),
        public_key_sha256: hex::encode(Sha256::digest(spki.raw)),
        parameters,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_gives_its_serial_and_key() {
        let key = rcgen::KeyPair::generate().expect("key");
        let params = rcgen::CertificateParams::new(vec!["a.example.com".into()]).expect("params");
        let cert = params.self_signed(&key).expect("certificate");
        let read = certificate_key(cert.der()).expect("read");
        let raw = key.public_key_raw();
        assert_eq!(
            read.parameters,
            KeyParameters::Ec {
                curve: "P-256",
                x: raw[1..33].to_vec(),
                y: raw[33..].to_vec(),
            }
        );
        assert_eq!(read.public_key_sha256.len(), 64);
        assert!(certificate_key(b"not a certificate").is_err());
        let mut trailing = cert.der().to_vec();
        trailing.push(0);
        assert!(certificate_key(&trailing).is_err());
    }
}
