//! Envelope encryption for private keys at rest: every record has its own data key
//! (AES-256-GCM), and the data key is wrapped by the key-encryption key from configuration.
//! The wrapped data key and the ciphertext are stored apart, so destroying the wrapped data
//! key erases the record for good (crypto-shredding) even where the ciphertext lingers in
//! backups.

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use serde::{Deserialize, Serialize};

/// Why sealing or opening failed.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The key-encryption key is not 32 bytes of hex.
    #[error("the key-encryption key must be 64 hex digits (32 bytes)")]
    BadKek,
    /// Wrong key, wrong record id, or tampered bytes.
    #[error("the record does not open with this key")]
    Open,
    /// Encryption itself failed (inputs beyond AES-GCM's limits).
    #[error("the record could not be encrypted")]
    Seal,
}

/// The key-encryption key, and while it is being rotated in, the one it replaces: records
/// are sealed under the current key and open under either. Never printed.
#[derive(Clone)]
pub struct Kek {
    current: Key<Aes256Gcm>,
    previous: Option<Key<Aes256Gcm>>,
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kek(<redacted>)")
    }
}

impl Kek {
    /// A KEK from 64 hex digits.
    pub fn from_hex(hex_digits: &str) -> Result<Self, SealError> {
        let bytes = hex::decode(hex_digits.trim()).map_err(|_| SealError::BadKek)?;
        if bytes.len() != 32 {
            return Err(SealError::BadKek);
        }
        Ok(Kek {
            current: *Key::<Aes256Gcm>::from_slice(&bytes),
            previous: None,
        })
    }

    /// This key, still opening what `previous` sealed: for a rotation, until every record
    /// is wrapped again under this key ([`rewrap`]).
    pub fn with_previous(self, previous: &Kek) -> Self {
        Kek {
            current: self.current,
            previous: Some(previous.current),
        }
    }

    /// Unwraps a record's data key: under the current key, else under the previous one.
    fn unwrap_data_key(&self, record_id: &str, wrapped: &WrappedKey) -> Result<Vec<u8>, SealError> {
        let aad = record_id.as_bytes();
        decrypt(&self.current, aad, &wrapped.nonce, &wrapped.ciphertext).or_else(|err| match &self
            .previous
        {
            Some(previous) => decrypt(previous, aad, &wrapped.nonce, &wrapped.ciphertext),
            None => Err(err),
        })
    }

    /// The current key's bytes, for keys derived from it ([`crate::transport`]).
    pub(crate) fn current_bytes(&self) -> &[u8] {
        self.current.as_slice()
    }

    /// The previous key's bytes, during a rotation.
    pub(crate) fn previous_bytes(&self) -> Option<&[u8]> {
        self.previous.as_ref().map(|key| key.as_slice())
    }

    /// A fresh random KEK, as hex (for development set-ups).
    pub fn generate_hex() -> String {
        hex::encode(Aes256Gcm::generate_key(OsRng))
    }
}

/// A data key wrapped by the KEK: destroy it to erase the record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrappedKey {
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

/// A record encrypted under its data key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedRecord {
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

fn encrypt(
    key: &Key<Aes256Gcm>,
    aad: &[u8],
    plaintext: &[u8],
) -> Result<(Vec<u8>, Vec<u8>), SealError> {
    let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
    let ciphertext = Aes256Gcm::new(key)
        .encrypt(
            &nonce,
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| SealError::Seal)?;
    Ok((nonce.to_vec(), ciphertext))
}

fn decrypt(
    key: &Key<Aes256Gcm>,
    aad: &[u8],
    nonce: &[u8],
    ciphertext: &[u8],
) -> Result<Vec<u8>, SealError> {
    if nonce.len() != 12 {
        return Err(SealError::Open);
    }
    Aes256Gcm::new(key)
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .map_err(|_| SealError::Open)
}

/// Encrypts `plaintext` for record `record_id` under a new data key wrapped by `kek`. The
/// record id is authenticated, so a record cannot be moved to another id.
pub fn seal(
    kek: &Kek,
    record_id: &str,
    plaintext: &[u8],
) -> Result<(WrappedKey, SealedRecord), SealError> {
    let data_key = Aes256Gcm::generate_key(OsRng);
    let (nonce, ciphertext) = encrypt(&data_key, record_id.as_bytes(), plaintext)?;
    let (key_nonce, wrapped) = encrypt(&kek.current, record_id.as_bytes(), data_key.as_slice())?;
    Ok((
        WrappedKey {
            nonce: key_nonce,
            ciphertext: wrapped,
        },
        SealedRecord { nonce, ciphertext },
    ))
}

/// Decrypts record `record_id`.
pub fn open(
    kek: &Kek,
    record_id: &str,
    wrapped: &WrappedKey,
    record: &SealedRecord,
) -> Result<Vec<u8>, SealError> {
    let data_key = kek.unwrap_data_key(record_id, wrapped)?;
    if data_key.len() != 32 {
        return Err(SealError::Open);
    }
    decrypt(
        Key::<Aes256Gcm>::from_slice(&data_key),
        record_id.as_bytes(),
        &record.nonce,
        &record.ciphertext,
    )
}

/// Wraps record `record_id`'s data key under the current key: `None` when it is wrapped
/// under it already, the new wrapping when it was under the previous key. The ciphertext
/// stays as it is.
pub fn rewrap(
    kek: &Kek,
    record_id: &str,
    wrapped: &WrappedKey,
) -> Result<Option<WrappedKey>, SealError> {
    let aad = record_id.as_bytes();
    if decrypt(&kek.current, aad, &wrapped.nonce, &wrapped.ciphertext).is_ok() {
        return Ok(None);
    }
    let previous = kek.previous.as_ref().ok_or(SealError::Open)?;
    let data_key = decrypt(previous, aad, &wrapped.nonce, &wrapped.ciphertext)?;
    let (nonce, ciphertext) = encrypt(&kek.current, aad, &data_key)?;
    Ok(Some(WrappedKey { nonce, ciphertext }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kek() -> Kek {
        Kek::from_hex(&Kek::generate_hex()).expect("valid")
    }

    #[test]
    fn a_rotated_kek_opens_old_records_until_they_are_rewrapped() {
        let old = kek();
        let (wrapped, record) = seal(&old, "cert-1", b"secret").expect("sealed");
        let new = kek();
        assert!(open(&new, "cert-1", &wrapped, &record).is_err());
        let rotating = new.clone().with_previous(&old);
        assert_eq!(
            open(&rotating, "cert-1", &wrapped, &record).expect("opens"),
            b"secret"
        );

        let rewrapped = rewrap(&rotating, "cert-1", &wrapped)
            .expect("rewraps")
            .expect("was under the old key");
        assert_eq!(
            rewrap(&rotating, "cert-1", &rewrapped).expect("checks"),
            None
        );
        assert_eq!(
            open(&new, "cert-1", &rewrapped, &record).expect("opens"),
            b"secret"
        );
        assert!(
            open(&old, "cert-1", &rewrapped, &record).is_err(),
            "the old key is done"
        );
        assert!(
            rewrap(&new, "cert-1", &wrapped).is_err(),
            "without the previous key an old record cannot be rewrapped"
        );
        assert!(
            rewrap(&rotating, "cert-2", &wrapped).is_err(),
            "bound to its id"
        );
    }

    #[test]
    fn sealed_records_open_with_the_same_kek_and_id_only() {
        let kek = kek();
        let (wrapped, record) =
            seal(&kek, "cert-1", b"-----BEGIN PRIVATE KEY-----").expect("sealed");
        assert!(
            !record.ciphertext.windows(5).any(|w| w == b"BEGIN"),
            "ciphertext does not show the plaintext"
        );
        assert_eq!(
            open(&kek, "cert-1", &wrapped, &record).expect("opens"),
            b"-----BEGIN PRIVATE KEY-----"
        );
        assert!(
            open(&kek, "cert-2", &wrapped, &record).is_err(),
            "bound to its id"
        );
        assert!(
            open(&self::kek(), "cert-1", &wrapped, &record).is_err(),
            "another KEK"
        );
        let mut tampered = record.clone();
        tampered.ciphertext[0] ^= 1;
        assert!(open(&kek, "cert-1", &wrapped, &tampered).is_err());
    }

    #[test]
    fn each_record_has_its_own_data_key() {
        let kek = kek();
        let (a, _) = seal(&kek, "same", b"x").expect("sealed");
        let (b, _) = seal(&kek, "same", b"x").expect("sealed");
        assert_ne!(a, b);
    }

    #[test]
    fn kek_must_be_32_bytes_of_hex() {
        assert!(Kek::from_hex("abcd").is_err());
        assert!(Kek::from_hex(&"zz".repeat(32)).is_err());
        assert!(!format!("{:?}", kek()).contains(|c: char| c.is_ascii_digit()));
    }
}
