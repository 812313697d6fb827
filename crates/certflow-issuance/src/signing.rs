//! The CA behind issuance, and the sealed storage of the keys it generates.

use std::sync::Arc;

use certflow_ca::sealing::{self, Kek, SealedRecord, WrappedKey};
use certflow_ca::transport::TransportKey;
use certflow_ca::{
    BuiltinCa, CaAlgorithm, CaMaterial, CertificateAuthority, GeneratedKey, IssuerId, Sm2Authority,
    Sm2Material, keys,
};
use certflow_domain::{Brand, DomainError, KeyAlgorithm, Reason, Timestamp};
use certflow_store::{KeyStore, StoredKey};
use tracing::info;

use crate::IssuanceError;

/// Brands the built-in CA issues for.
pub const BRANDS: [Brand; 7] = Brand::ISSUED;

/// The CA, the key store and the key-encryption key: everything issuance signs and keeps
/// keys with; and the transport key derived from the KEK, which opens secrets other
/// services carry to issuance sealed.
#[derive(Clone)]
pub struct Signing {
    pub ca: Arc<dyn CertificateAuthority>,
    pub keys: KeyStore,
    pub kek: Kek,
    pub transport: TransportKey,
    /// How many shards of its issuer's CRL new certificates are spread over (CA-4); a
    /// certificate keeps the shard it was signed with whatever this later becomes.
    pub crl_shards: u32,
}

impl Signing {
    /// The CRL shard certificate `id` names in its distribution point.
    pub fn crl_shard(&self, id: &certflow_domain::CertificateId) -> u32 {
        certflow_ca::shard_for(id.as_str(), self.crl_shards)
    }
}

impl std::fmt::Debug for Signing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signing").finish_non_exhaustive()
    }
}

fn ca_record(brand: Brand) -> String {
    format!("ca-{}", brand.slug())
}

/// Loads each brand's CA: from `<ca_dir>/<brand>/` when the operator provides one there,
/// else from the key store, generating and storing what is missing. Concurrent instances
/// agree: the first stored material stands.
pub async fn builtin_ca(
    keys: &KeyStore,
    kek: &Kek,
    algorithm: CaAlgorithm,
    crl_base_url: &str,
    ca_dir: Option<&std::path::Path>,
    now: Timestamp,
) -> Result<BuiltinCa, IssuanceError> {
    let mut materials = Vec::new();
    for brand in BRANDS {
        if let Some(dir) = ca_dir
            && let Some(material) = CaMaterial::from_dir(brand, &dir.join(brand.slug()))
                .map_err(|e| IssuanceError::Ca(e.to_string()))?
        {
            info!(%brand, "CA loaded from configuration");
            materials.push(material);
            continue;
        }
        let id = ca_record(brand);
        let material = match open_record(keys, kek, &id).await? {
            Some(bytes) => serde_json::from_slice::<CaMaterial>(&bytes)
                .map_err(|e| IssuanceError::Ca(format!("stored CA of {brand}: {e}")))?,
            None => {
                let (_, mut generated) =
                    BuiltinCa::generate(&[brand], algorithm, crl_base_url, now)
                        .map_err(|e| IssuanceError::Ca(e.to_string()))?;
                let material = generated.remove(0);
                let bytes =
                    serde_json::to_vec(&material).map_err(|e| IssuanceError::Ca(e.to_string()))?;
                if seal_record(keys, kek, &id, &bytes).await? {
                    info!(%brand, "generated a root and intermediate");
                    material
                } else {
                    let bytes = open_record_written_elsewhere(keys, kek, &id)
                        .await?
                        .ok_or_else(|| IssuanceError::Ca(format!("CA of {brand} vanished")))?;
                    serde_json::from_slice(&bytes)
                        .map_err(|e| IssuanceError::Ca(format!("stored CA of {brand}: {e}")))?
                }
            }
        };
        materials.push(material);
    }
    let mut ca =
        BuiltinCa::load(&materials, crl_base_url).map_err(|e| IssuanceError::Ca(e.to_string()))?;
    // DNSPod GM certificates: SM2 keys under an SM2 intermediate.
    let brand = Brand::DnsPod;
    let issuer = IssuerId { brand, sm2: true };
    let id = format!("ca-{}", issuer.slug());
    let bytes = match open_record(keys, kek, &id).await? {
        Some(bytes) => bytes,
        None => {
            let (_, material) = Sm2Authority::generate(&brand.to_string(), now)
                .map_err(|e| IssuanceError::Ca(e.to_string()))?;
            let bytes =
                serde_json::to_vec(&material).map_err(|e| IssuanceError::Ca(e.to_string()))?;
            if seal_record(keys, kek, &id, &bytes).await? {
                info!(%issuer, "generated an SM2 root and intermediate");
                bytes
            } else {
                open_record_written_elsewhere(keys, kek, &id)
                    .await?
                    .ok_or_else(|| IssuanceError::Ca(format!("CA of {issuer} vanished")))?
            }
        }
    };
    let material: Sm2Material = serde_json::from_slice(&bytes)
        .map_err(|e| IssuanceError::Ca(format!("stored CA of {issuer}: {e}")))?;
    let authority = Sm2Authority::load(&material).map_err(|e| IssuanceError::Ca(e.to_string()))?;
    ca = ca.with_sm2(brand, authority);
    Ok(ca)
}

/// Opens record `id` that another instance is storing: it writes the ciphertext, then the
/// wrapped data key, so the record may be half there for a moment. Waits up to 5 s for it.
async fn open_record_written_elsewhere(
    keys: &KeyStore,
    kek: &Kek,
    id: &str,
) -> Result<Option<Vec<u8>>, IssuanceError> {
    for _ in 0..50 {
        if let Some(bytes) = open_record(keys, kek, id).await? {
            return Ok(Some(bytes));
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Ok(None)
}

/// Seals `plaintext` as record `id`; false when a record `id` exists already.
pub async fn seal_record(
    keys: &KeyStore,
    kek: &Kek,
    id: &str,
    plaintext: &[u8],
) -> Result<bool, IssuanceError> {
    let (wrapped, sealed) =
        sealing::seal(kek, id, plaintext).map_err(|e| IssuanceError::Ca(e.to_string()))?;
    let record = StoredKey {
        wrapped_key: serde_json::to_vec(&wrapped)
            .map_err(|e| IssuanceError::Ca(e.to_string()))?
            .into(),
        sealed: serde_json::to_vec(&sealed)
            .map_err(|e| IssuanceError::Ca(e.to_string()))?
            .into(),
    };
    Ok(keys.put_new(id, &record).await?)
}

/// Opens record `id`, if it exists.
pub async fn open_record(
    keys: &KeyStore,
    kek: &Kek,
    id: &str,
) -> Result<Option<Vec<u8>>, IssuanceError> {
    let Some(record) = keys.get(id).await? else {
        return Ok(None);
    };
    let wrapped: WrappedKey = serde_json::from_slice(&record.wrapped_key)
        .map_err(|e| IssuanceError::Ca(format!("key record {id}: {e}")))?;
    let sealed: SealedRecord = serde_json::from_slice(&record.sealed)
        .map_err(|e| IssuanceError::Ca(format!("key record {id}: {e}")))?;
    let plaintext = sealing::open(kek, id, &wrapped, &sealed)
        .map_err(|e| IssuanceError::Ca(format!("key record {id}: {e}")))?;
    Ok(Some(plaintext))
}

/// What a rotation of the key-encryption key did to the key store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rewrapped {
    /// Records whose data key is now wrapped under the current key.
    pub rewrapped: u64,
    /// Records that were wrapped under it already.
    pub current: u64,
    /// Records erased or wrapped again by someone else while this ran.
    pub changed_meanwhile: u64,
}

/// Wraps every record's data key in the key store under `kek`'s current key, opening those
/// under its previous key (`Kek::with_previous`). Ciphertexts are not touched, so the
/// store stays readable throughout by issuance instances given both keys; once this
/// returns, the previous key opens nothing and can be destroyed. Running it twice is
/// harmless.
pub async fn rewrap_keys(keys: &KeyStore, kek: &Kek) -> Result<Rewrapped, IssuanceError> {
    let mut done = Rewrapped::default();
    for stored in keys.wrapped_keys().await? {
        let id = &stored.id;
        let wrapped: WrappedKey = serde_json::from_slice(&stored.wrapped_key)
            .map_err(|e| IssuanceError::Ca(format!("key record {id}: {e}")))?;
        let Some(rewrapped) = sealing::rewrap(kek, id, &wrapped)
            .map_err(|e| IssuanceError::Ca(format!("key record {id}: {e}")))?
        else {
            done.current += 1;
            continue;
        };
        let bytes = serde_json::to_vec(&rewrapped).map_err(|e| IssuanceError::Ca(e.to_string()))?;
        if keys
            .replace_wrapped_key(id, stored.sequence, bytes.into())
            .await?
        {
            done.rewrapped += 1;
        } else {
            done.changed_meanwhile += 1;
        }
    }
    Ok(done)
}

/// Generates a key pair off the async threads (RSA generation takes a while).
pub async fn generate_key(algorithm: KeyAlgorithm) -> Result<GeneratedKey, DomainError> {
    let refused = |e: &dyn std::fmt::Display| {
        DomainError::invalid(
            Reason::KeyPolicyViolation,
            format!("no key can be generated for this request: {e}"),
        )
    };
    tokio::task::spawn_blocking(move || keys::generate(algorithm))
        .await
        .map_err(|e| refused(&e))?
        .map_err(|e| refused(&e))
}
