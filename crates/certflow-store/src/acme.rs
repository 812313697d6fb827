//! What the ACME endpoint keeps: single-use nonces, External Account Binding keys and ACME
//! accounts. Only the gateway, which serves ACME, reads or writes them.
//!
//! - `CERTFLOW_ACME_NONCES`: one subject per nonce. Issuing writes it; redeeming overwrites
//!   it with a used mark, expecting the issued message's sequence, so of two requests with
//!   one nonce exactly one redeems it, whichever instance serves them. Nonces expire with
//!   the stream's age limit ([`NONCE_LIFETIME`]).
//! - `CERTFLOW_ACME_ACCOUNTS`: `…eab.<kid>`, an EAB key (its MAC key and the certflow account
//!   it binds to, used once), and `…key.<thumbprint>`, an ACME account by its key's
//!   thumbprint (RFC 7638) and the certflow account it acts for.

use std::time::Duration;

use async_nats::jetstream::{message::PublishMessage, stream};
use async_nats::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand_core::TryRngCore;
use serde::{Deserialize, Serialize};

use crate::store::{Attached, StoreError};

/// How long a nonce may be used after it was issued.
pub const NONCE_LIFETIME: Duration = Duration::from_secs(300);

const FRESH: &[u8] = b"fresh";
const USED: &[u8] = b"used";

/// An External Account Binding key a customer made for their certflow account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EabKey {
    /// The certflow account an ACME account bound with it acts for.
    pub account: String,
    /// The MAC key, base64url.
    pub mac_key: String,
    /// Unix milliseconds.
    pub created_at: i64,
    /// The thumbprint of the ACME account key it bound, once it has.
    pub bound_to: Option<String>,
}

/// An ACME account: a key, and the certflow account it acts for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcmeAccount {
    /// The certflow account.
    pub account: String,
    /// The account key, as the JWK it registered with.
    pub jwk: serde_json::Value,
    /// `mailto:` contacts it gave.
    pub contact: Vec<String>,
    /// The EAB key id it was bound with.
    pub eab_kid: String,
    /// Unix milliseconds.
    pub created_at: i64,
}

/// The ACME endpoint's nonces, EAB keys and accounts.
#[derive(Clone, Debug)]
pub struct AcmeStore {
    nonces: Attached,
    accounts: Attached,
}

fn unavailable(err: impl Into<async_nats::Error>) -> StoreError {
    StoreError::Unavailable(err.into())
}

/// `bytes` random bytes, base64url.
fn random_text(bytes: usize) -> Result<String, StoreError> {
    let mut buffer = vec![0u8; bytes];
    rand_core::OsRng
        .try_fill_bytes(&mut buffer)
        .map_err(|e| unavailable(format!("no randomness: {e}")))?;
    Ok(URL_SAFE_NO_PAD.encode(buffer))
}

fn expecting(sequence: u64) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::NATS_EXPECTED_LAST_SUBJECT_SEQUENCE,
        sequence.to_string().as_str(),
    );
    headers
}

impl AcmeStore {
    /// The nonces stream.
    pub const NONCES: &'static str = "CERTFLOW_ACME_NONCES";
    /// The accounts stream.
    pub const ACCOUNTS: &'static str = "CERTFLOW_ACME_ACCOUNTS";
    const NONCE_PREFIX: &'static str = "certflow.acme.nonces";
    const ACCOUNT_PREFIX: &'static str = "certflow.acme.accounts";

    pub(crate) fn nonces_config() -> stream::Config {
        crate::store::latest_per_subject(
            Self::NONCES,
            "ACME nonces, each usable once until it expires",
            Self::NONCE_PREFIX,
            NONCE_LIFETIME,
        )
    }

    pub(crate) fn accounts_config() -> stream::Config {
        crate::store::latest_per_subject(
            Self::ACCOUNTS,
            "ACME External Account Binding keys and accounts",
            Self::ACCOUNT_PREFIX,
            Duration::ZERO,
        )
    }

    /// Attaches to the streams, which `certd provision` made.
    pub async fn attach(client: async_nats::Client) -> Result<Self, StoreError> {
        Ok(AcmeStore {
            nonces: Attached::to(client.clone(), Self::NONCES).await?,
            accounts: Attached::to(client, Self::ACCOUNTS).await?,
        })
    }

    fn nonce_subject(nonce: &str) -> String {
        format!("{}.{nonce}", Self::NONCE_PREFIX)
    }

    fn eab_subject(kid: &str) -> String {
        format!("{}.eab.{kid}", Self::ACCOUNT_PREFIX)
    }

    fn key_subject(thumbprint: &str) -> String {
        format!("{}.key.{thumbprint}", Self::ACCOUNT_PREFIX)
    }

    /// A new nonce, stored until it is used or expires.
    pub async fn new_nonce(&self) -> Result<String, StoreError> {
        let nonce = random_text(16)?;
        let message = PublishMessage::build()
            .headers(expecting(0))
            .payload(FRESH.into());
        self.nonces
            .publish_expecting(Self::nonce_subject(&nonce), message)
            .await?
            .ok_or_else(|| unavailable("a fresh nonce collided with a stored one"))?;
        Ok(nonce)
    }

    /// Uses `nonce` up: `true` once for a nonce this store issued less than
    /// [`NONCE_LIFETIME`] ago, `false` for any other (unknown, used, expired, malformed).
    pub async fn redeem_nonce(&self, nonce: &str) -> Result<bool, StoreError> {
        let well_formed = !nonce.is_empty()
            && nonce.len() <= 64
            && nonce
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !well_formed {
            return Ok(false);
        }
        let Some(issued) = self.nonces.last(Self::nonce_subject(nonce)).await? else {
            return Ok(false);
        };
        let age = time::OffsetDateTime::now_utc() - issued.time;
        if issued.payload.as_ref() != FRESH || age > NONCE_LIFETIME || age.is_negative() {
            return Ok(false);
        }
        let message = PublishMessage::build()
            .headers(expecting(issued.sequence))
            .payload(USED.into());
        Ok(self
            .nonces
            .publish_expecting(Self::nonce_subject(nonce), message)
            .await?
            .is_some())
    }

    /// A new EAB key for `account`: its id and the record (with the MAC key, which the
    /// customer is shown once).
    pub async fn create_eab(
        &self,
        account: &str,
        now_millis: i64,
    ) -> Result<(String, EabKey), StoreError> {
        let kid = random_text(12)?;
        let key = EabKey {
            account: account.to_string(),
            mac_key: random_text(32)?,
            created_at: now_millis,
            bound_to: None,
        };
        let payload = serde_json::to_vec(&key).map_err(unavailable)?;
        let message = PublishMessage::build()
            .headers(expecting(0))
            .payload(payload.into());
        self.accounts
            .publish_expecting(Self::eab_subject(&kid), message)
            .await?
            .ok_or_else(|| unavailable("a new EAB key id collided with a stored one"))?;
        Ok((kid, key))
    }

    /// The EAB key `kid` and its stream sequence.
    pub async fn eab(&self, kid: &str) -> Result<Option<(EabKey, u64)>, StoreError> {
        if kid.is_empty()
            || !kid
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Ok(None);
        }
        let Some(message) = self.accounts.last(Self::eab_subject(kid)).await? else {
            return Ok(None);
        };
        let key = serde_json::from_slice(&message.payload).map_err(unavailable)?;
        Ok(Some((key, message.sequence)))
    }

    /// Records `account` under `thumbprint`, bound with EAB key `kid` as stored at
    /// `eab_sequence`: the key is marked used first, so it binds one ACME account only.
    /// `Ok(false)` when the key was used meanwhile.
    pub async fn bind_account(
        &self,
        thumbprint: &str,
        account: &AcmeAccount,
        eab: &EabKey,
        eab_sequence: u64,
    ) -> Result<bool, StoreError> {
        let used = EabKey {
            bound_to: Some(thumbprint.to_string()),
            ..eab.clone()
        };
        let message = PublishMessage::build()
            .headers(expecting(eab_sequence))
            .payload(serde_json::to_vec(&used).map_err(unavailable)?.into());
        if self
            .accounts
            .publish_expecting(Self::eab_subject(&account.eab_kid), message)
            .await?
            .is_none()
        {
            return Ok(false);
        }
        let message = PublishMessage::build()
            .payload(serde_json::to_vec(account).map_err(unavailable)?.into());
        self.accounts
            .js
            .send_publish(Self::key_subject(thumbprint), message)
            .await
            .map_err(unavailable)?
            .await
            .map_err(unavailable)?;
        Ok(true)
    }

    /// The ACME account whose key has `thumbprint`.
    pub async fn account(&self, thumbprint: &str) -> Result<Option<AcmeAccount>, StoreError> {
        if thumbprint.is_empty()
            || !thumbprint
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Ok(None);
        }
        match self.accounts.last(Self::key_subject(thumbprint)).await? {
            Some(message) => Ok(Some(
                serde_json::from_slice(&message.payload).map_err(unavailable)?,
            )),
            None => Ok(None),
        }
    }
}
