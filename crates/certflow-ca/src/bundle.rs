//! What customers download for their servers (DL-1): PEM files for Nginx and Apache, and a
//! PKCS#12 archive for IIS and Tomcat.

use rsa::pkcs8::der::pem::LineEnding;
use rsa::pkcs8::{EncryptedPrivateKeyInfo, SecretDocument};

use crate::CaError;

/// One file of a download.
#[derive(Clone, PartialEq, Eq)]
pub struct BundleFile {
    pub name: String,
    pub content_type: &'static str,
    pub content: Vec<u8>,
}

impl std::fmt::Debug for BundleFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BundleFile")
            .field("name", &self.name)
            .field("bytes", &self.content.len())
            .finish()
    }
}

const PEM_TYPE: &str = "application/x-pem-file";

/// PEM files: the certificate, its chain, both together (what Nginx wants), and the
/// private key when there is one.
pub fn pem_files(
    name: &str,
    certificate_pem: &str,
    chain_pem: &str,
    private_key_pem: Option<&str>,
) -> Vec<BundleFile> {
    let file = |suffix: &str, content: String| BundleFile {
        name: format!("{name}{suffix}"),
        content_type: PEM_TYPE,
        content: content.into_bytes(),
    };
    let mut files = vec![file(".crt", certificate_pem.to_string())];
    if !chain_pem.is_empty() {
        files.push(file(".chain.crt", chain_pem.to_string()));
        files.push(file(
            ".fullchain.crt",
            format!("{certificate_pem}{chain_pem}"),
        ));
    }
    if let Some(key) = private_key_pem {
        files.push(file(".key", key.to_string()));
    }
    files
}

/// A private key as plain PKCS#8 PEM: an encrypted one is opened with `password`.
pub fn plain_private_key(pem: &str, password: &str) -> Result<String, CaError> {
    let (label, document) = SecretDocument::from_pem(pem)
        .map_err(|e| CaError::Unsupported(format!("the stored key does not read: {e}")))?;
    if label != "ENCRYPTED PRIVATE KEY" {
        return Ok(pem.to_string());
    }
    let encrypted: EncryptedPrivateKeyInfo<'_> = document
        .decode_msg()
        .map_err(|e| CaError::Unsupported(format!("the stored key does not read: {e}")))?;
    let plain = encrypted
        .decrypt(password)
        .map_err(|_| CaError::WrongPassword)?;
    Ok(plain
        .to_pem("PRIVATE KEY", LineEnding::LF)
        .map_err(|e| CaError::Unsupported(format!("key encoding failed: {e}")))?
        .to_string())
}

fn der_blocks(pem: &str) -> Result<Vec<Vec<u8>>, CaError> {
    x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes())
        .map(|block| {
            block
                .map(|b| b.contents)
                .map_err(|e| CaError::Unsupported(format!("certificate PEM does not read: {e}")))
        })
        .collect()
}

/// A PKCS#12 archive with the key and the chain (leaf first), protected by `password`.
pub fn pkcs12(
    alias: &str,
    certificate_pem: &str,
    chain_pem: &str,
    private_key_pem: &str,
    password: &str,
) -> Result<BundleFile, CaError> {
    let (_, key) = SecretDocument::from_pem(private_key_pem)
        .map_err(|e| CaError::Unsupported(format!("the key does not read: {e}")))?;
    let mut chain = Vec::new();
    for der in der_blocks(certificate_pem)?
        .into_iter()
        .chain(der_blocks(chain_pem)?)
    {
        chain.push(
            p12_keystore::Certificate::from_der(&der)
                .map_err(|e| CaError::Unsupported(format!("certificate does not read: {e}")))?,
        );
    }
    let local_key_id = chain
        .first()
        .map(|c| local_key_id_of(c.as_der()))
        .unwrap_or_default();
    let mut store = p12_keystore::KeyStore::new();
    store.add_entry(
        alias,
        p12_keystore::KeyStoreEntry::PrivateKeyChain(p12_keystore::PrivateKeyChain::new(
            key.as_bytes(),
            local_key_id,
            chain,
        )),
    );
    let content = store
        .writer(password)
        .write()
        .map_err(|e| CaError::Unsupported(format!("PKCS#12 encoding failed: {e}")))?;
    Ok(BundleFile {
        name: format!("{alias}.p12"),
        content_type: "application/x-pkcs12",
        content,
    })
}

/// A local key id tying key and certificate together: the first bytes of the certificate's
/// SHA-256.
fn local_key_id_of(der: &[u8]) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    Sha256::digest(der)[..20].to_vec()
}
