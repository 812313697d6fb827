//! Key pairs the product generates for customers.

use certflow_domain::KeyAlgorithm;
use rsa::pkcs8::EncodePrivateKey;
use rsa::rand_core::OsRng;

use crate::CaError;

/// A generated key pair. The private key is PKCS#8 PEM; `Debug` never shows it.
#[derive(Clone)]
pub struct GeneratedKey {
    algorithm: KeyAlgorithm,
    pkcs8_pem: String,
}

impl std::fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("algorithm", &self.algorithm)
            .field("pkcs8_pem", &"<redacted>")
            .finish()
    }
}

impl GeneratedKey {
    /// The key's algorithm and size.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// The private key as PKCS#8 PEM, for the key store and for downloads.
    pub fn private_key_pem(&self) -> &str {
        &self.pkcs8_pem
    }

    /// A key pair rcgen can sign with or certify.
    pub(crate) fn key_pair(&self) -> Result<rcgen::KeyPair, CaError> {
        let algorithm = signature_algorithm(self.algorithm)?;
        Ok(rcgen::KeyPair::from_pkcs8_pem_and_sign_algo(
            &self.pkcs8_pem,
            algorithm,
        )?)
    }

    /// The public key as a DER SubjectPublicKeyInfo: what a CA certifies.
    pub fn public_key_der(&self) -> Result<Vec<u8>, CaError> {
        if self.algorithm == KeyAlgorithm::Sm2 {
            use der::Encode;
            use sm2::pkcs8::DecodePrivateKey;
            let secret = sm2::SecretKey::from_pkcs8_pem(&self.pkcs8_pem)
                .map_err(|e| CaError::Unsupported(format!("SM2 key: {e}")))?;
            let spki = spki::SubjectPublicKeyInfoOwned::from_key(secret.public_key())
                .map_err(|e| CaError::Unsupported(format!("SM2 public key: {e}")))?;
            return spki
                .to_der()
                .map_err(|e| CaError::Unsupported(format!("SM2 public key: {e}")));
        }
        use rcgen::PublicKeyData;
        Ok(self.key_pair()?.subject_public_key_info())
    }

    /// Reloads a key from its PKCS#8 PEM (e.g. from the key store).
    pub fn from_pem(algorithm: KeyAlgorithm, pkcs8_pem: String) -> Result<Self, CaError> {
        let key = GeneratedKey {
            algorithm,
            pkcs8_pem,
        };
        if algorithm != KeyAlgorithm::Sm2 {
            key.key_pair()?;
        }
        Ok(key)
    }
}

/// PBKDF2 rounds for password-protected keys (OWASP's figure for PBKDF2-HMAC-SHA256).
const PBKDF2_ROUNDS: u32 = 600_000;

/// The private key of `key` as encrypted PKCS#8 (PBES2: PBKDF2-HMAC-SHA256 and
/// AES-256-CBC, which openssl, Java and Windows all read) under the customer's `password`,
/// which is not kept anywhere.
pub fn encrypt_with_password(key: &GeneratedKey, password: &str) -> Result<String, CaError> {
    use rsa::pkcs8::der::pem::LineEnding;
    use rsa::pkcs8::{PrivateKeyInfo, SecretDocument, pkcs5};
    use rsa::rand_core::RngCore;
    let failed =
        |e: &dyn std::fmt::Display| CaError::Unsupported(format!("key encryption failed: {e}"));
    let (_, document) = SecretDocument::from_pem(key.private_key_pem()).map_err(|e| failed(&e))?;
    let info: PrivateKeyInfo<'_> = document.decode_msg().map_err(|e| failed(&e))?;
    let mut salt = [0u8; 16];
    let mut iv = [0u8; 16];
    OsRng.fill_bytes(&mut salt);
    OsRng.fill_bytes(&mut iv);
    let params = pkcs5::pbes2::Parameters::pbkdf2_sha256_aes256cbc(PBKDF2_ROUNDS, &salt, &iv)
        .map_err(|e| failed(&e))?;
    let encrypted = info
        .encrypt_with_params(params, password)
        .map_err(|e| failed(&e))?;
    Ok(encrypted
        .to_pem("ENCRYPTED PRIVATE KEY", LineEnding::LF)
        .map_err(|e| failed(&e))?
        .to_string())
}

fn signature_algorithm(
    algorithm: KeyAlgorithm,
) -> Result<&'static rcgen::SignatureAlgorithm, CaError> {
    match algorithm {
        KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => {
            Ok(&rcgen::PKCS_RSA_SHA256)
        }
        KeyAlgorithm::EccP256 => Ok(&rcgen::PKCS_ECDSA_P256_SHA256),
        KeyAlgorithm::EccP384 => Ok(&rcgen::PKCS_ECDSA_P384_SHA384),
        KeyAlgorithm::Sm2 => Err(CaError::Unsupported(
            "SM2 keys are signed by the SM2 authority, not rcgen".into(),
        )),
        KeyAlgorithm::Other => Err(CaError::Unsupported(
            "keys are RSA 2048/3072/4096 or ECC P-256/P-384".into(),
        )),
    }
}

/// Generates a key pair of `algorithm`.
pub fn generate(algorithm: KeyAlgorithm) -> Result<GeneratedKey, CaError> {
    let pkcs8_pem = match algorithm {
        KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => {
            let bits = match algorithm {
                KeyAlgorithm::Rsa2048 => 2048,
                KeyAlgorithm::Rsa3072 => 3072,
                _ => 4096,
            };
            let key = rsa::RsaPrivateKey::new(&mut OsRng, bits)
                .map_err(|e| CaError::Unsupported(format!("RSA key generation failed: {e}")))?;
            key.to_pkcs8_pem(rsa::pkcs8::LineEnding::LF)
                .map_err(|e| CaError::Unsupported(format!("RSA key encoding failed: {e}")))?
                .to_string()
        }
        KeyAlgorithm::Sm2 => crate::sm2ca::generate_key_pem()?,
        other => rcgen::KeyPair::generate_for(signature_algorithm(other)?)?.serialize_pem(),
    };
    Ok(GeneratedKey {
        algorithm,
        pkcs8_pem,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_load_back_and_never_print() {
        for algorithm in [
            KeyAlgorithm::EccP256,
            KeyAlgorithm::EccP384,
            KeyAlgorithm::Rsa2048,
        ] {
            let key = generate(algorithm).expect("generated");
            assert!(key.private_key_pem().contains("BEGIN PRIVATE KEY"));
            assert!(!format!("{key:?}").contains("PRIVATE"));
            let again = GeneratedKey::from_pem(algorithm, key.private_key_pem().to_string())
                .expect("loads");
            assert_eq!(again.algorithm(), algorithm);
        }
    }

    #[test]
    fn sm2_keys_are_generated_and_other_keys_refused() {
        let sm2 = generate(KeyAlgorithm::Sm2).expect("SM2 key");
        assert!(sm2.private_key_pem().contains("BEGIN PRIVATE KEY"));
        assert!(matches!(
            generate(KeyAlgorithm::Other),
            Err(CaError::Unsupported(_))
        ));
    }
}
