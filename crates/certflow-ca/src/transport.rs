//! Sealing a secret for the issuance service alone while another service carries it: HPKE
//! (RFC 9180: X25519, HKDF-SHA256, ChaCha20-Poly1305) to a key pair derived from the
//! key-encryption key, which only the issuance service holds.
//!
//! A customer's password for a key generated on a reissue reaches the issuance service
//! through the reissue service; sealed by the gateway to this key, it is readable by the
//! issuance service and nobody else on the way.

use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use sha2::{Digest, Sha256};

use crate::sealing::{Kek, SealError};

type Kem = X25519HkdfSha256;
type PrivateKey = <Kem as hpke::Kem>::PrivateKey;
type PublicKey = <Kem as hpke::Kem>::PublicKey;
type EncappedKey = <Kem as hpke::Kem>::EncappedKey;

/// What every sealed secret is bound to, so a ciphertext made for another purpose (or
/// another protocol using the same key) does not open here.
const INFO: &[u8] = b"certflow transport v1";

/// The issuance service's transport key pair: the current one, and while the KEK is being
/// rotated the one derived from the previous KEK, which still opens.
#[derive(Clone)]
pub struct TransportKey {
    current: (PrivateKey, PublicKey),
    previous: Option<PrivateKey>,
}

impl std::fmt::Debug for TransportKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TransportKey(<redacted>)")
    }
}

impl TransportKey {
    /// The key pair of `kek` (and of its previous key, during a rotation): every issuance
    /// instance derives the same one, so none needs storing.
    pub fn derive(kek: &Kek) -> Self {
        let derive = |material: &[u8]| {
            let ikm = Sha256::new()
                .chain_update(INFO)
                .chain_update(material)
                .finalize();
            Kem::derive_keypair(&ikm)
        };
        TransportKey {
            current: derive(kek.current_bytes()),
            previous: kek.previous_bytes().map(|bytes| derive(bytes).0),
        }
    }

    /// The public key, for whoever seals secrets to this service ([`seal_for`]).
    pub fn public_key(&self) -> Vec<u8> {
        self.current.1.to_bytes().to_vec()
    }

    /// Opens what [`seal_for`] sealed to this key (or to the previous one).
    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        let size = <EncappedKey as Serializable>::size();
        if sealed.len() < size {
            return Err(SealError::Open);
        }
        let (encapped, ciphertext) = sealed.split_at(size);
        let encapped = EncappedKey::from_bytes(encapped).map_err(|_| SealError::Open)?;
        let open = |key: &PrivateKey| {
            hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, Kem>(
                &OpModeR::Base,
                key,
                &encapped,
                INFO,
                ciphertext,
                &[],
            )
        };
        open(&self.current.0)
            .or_else(|err| match &self.previous {
                Some(previous) => open(previous),
                None => Err(err),
            })
            .map_err(|_| SealError::Open)
    }
}

/// Seals `secret` to the transport key `public_key` ([`TransportKey::public_key`]): the
/// encapsulated key, then the ciphertext.
pub fn seal_for(public_key: &[u8], secret: &[u8]) -> Result<Vec<u8>, SealError> {
    let public_key = PublicKey::from_bytes(public_key).map_err(|_| SealError::Seal)?;
    let (encapped, ciphertext) = hpke::single_shot_seal::<ChaCha20Poly1305, HkdfSha256, Kem, _>(
        &OpModeS::Base,
        &public_key,
        INFO,
        secret,
        &[],
        &mut rand_core::UnwrapErr(rand_core::OsRng),
    )
    .map_err(|_| SealError::Seal)?;
    let mut sealed = encapped.to_bytes().to_vec();
    sealed.extend_from_slice(&ciphertext);
    Ok(sealed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kek(byte: u8) -> Kek {
        Kek::from_hex(&hex::encode([byte; 32])).expect("kek")
    }

    #[test]
    fn only_the_key_of_the_same_kek_opens_what_was_sealed_to_it() {
        let key = TransportKey::derive(&kek(1));
        let sealed = seal_for(&key.public_key(), b"correct horse").expect("sealed");
        assert!(!sealed.windows(13).any(|w| w == b"correct horse"));
        // Every instance derives the same key from the same KEK.
        assert_eq!(
            TransportKey::derive(&kek(1)).open(&sealed).expect("opens"),
            b"correct horse"
        );
        assert!(TransportKey::derive(&kek(2)).open(&sealed).is_err());
        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(key.open(&tampered).is_err());
        assert!(key.open(&sealed[..10]).is_err());
        assert!(seal_for(b"not a key", b"secret").is_err());
    }

    #[test]
    fn during_a_rotation_the_previous_kek_still_opens() {
        let old = TransportKey::derive(&kek(1));
        let sealed = seal_for(&old.public_key(), b"pw").expect("sealed");
        let rotating = TransportKey::derive(&kek(2).with_previous(&kek(1)));
        assert_eq!(rotating.open(&sealed).expect("opens"), b"pw");
        assert_ne!(rotating.public_key(), old.public_key());
    }
}
