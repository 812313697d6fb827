//! Which certificates carry which public key, and which keys are blocked (REV-16).
//!
//! One stream, two subjects per key (its hex SHA-256): `…<key>.bound` gets one message per
//! certificate certified for the key, `…<key>.blocked` one per key-compromise revocation.
//! Both sides of the race between certifying a key and blocking it write first and read
//! second on the same totally ordered stream, so at least one of them sees the other: a
//! certificate bound after the block finds the block, and a block written after the
//! binding finds the certificate. That needs reads that see every acknowledged write, so
//! the index is read from the stream's leader (`STREAM.MSG.GET`), never from a replica.

use async_nats::jetstream::stream;
use async_nats::{HeaderMap, header};
use bytes::Bytes;
use certflow_domain::CertificateId;

use crate::store::{Attached, StoreError};

/// The public-key index.
#[derive(Clone, Debug)]
pub struct KeyIndex {
    on: Attached,
}

impl KeyIndex {
    /// The stream's name.
    pub const STREAM: &'static str = "CERTFLOW_KEY_INDEX";
    const PREFIX: &'static str = "certflow.keyindex";

    /// The stream: two subjects per key, every message kept.
    pub(crate) fn stream_config() -> stream::Config {
        stream::Config {
            name: Self::STREAM.into(),
            description: Some("certificates per public key, and blocked keys".into()),
            subjects: vec![format!("{}.>", Self::PREFIX)],
            storage: stream::StorageType::File,
            duplicate_window: std::time::Duration::from_secs(120),
            ..Default::default()
        }
    }

    /// Attaches to the stream, which `certd provision` made.
    pub async fn attach(client: async_nats::Client) -> Result<Self, StoreError> {
        Ok(KeyIndex {
            on: Attached::to(client, Self::STREAM).await?,
        })
    }

    /// A key as a subject token: hex digits only, so a malformed value cannot reach into
    /// another subject.
    fn subject(key_sha256: &str, part: &str) -> Option<String> {
        let valid = !key_sha256.is_empty()
            && key_sha256.len() <= 128
            && key_sha256.bytes().all(|b| b.is_ascii_hexdigit());
        valid.then(|| {
            format!(
                "{}.{}.{part}",
                Self::PREFIX,
                key_sha256.to_ascii_lowercase()
            )
        })
    }

    async fn publish(&self, subject: String, id: String, payload: Bytes) -> Result<(), StoreError> {
        let mut headers = HeaderMap::new();
        headers.insert(header::NATS_MESSAGE_ID, id.as_str());
        self.on.publish_acked(subject, headers, payload).await
    }

    /// Records that `certificate` carries the key.
    pub async fn bind(
        &self,
        key_sha256: &str,
        certificate: &CertificateId,
    ) -> Result<(), StoreError> {
        let Some(subject) = Self::subject(key_sha256, "bound") else {
            return Ok(());
        };
        self.publish(
            subject,
            format!("bound-{certificate}"),
            Bytes::from(certificate.to_string()),
        )
        .await
    }

    /// Blocks the key: `compromised` was revoked for key compromise.
    pub async fn block(
        &self,
        key_sha256: &str,
        compromised: &CertificateId,
    ) -> Result<(), StoreError> {
        let Some(subject) = Self::subject(key_sha256, "blocked") else {
            return Ok(());
        };
        self.publish(
            subject,
            format!("blocked-{compromised}"),
            Bytes::from(compromised.to_string()),
        )
        .await
    }

    /// The certificate whose key-compromise revocation blocked the key, if it is blocked.
    pub async fn blocked_by(&self, key_sha256: &str) -> Result<Option<CertificateId>, StoreError> {
        let Some(subject) = Self::subject(key_sha256, "blocked") else {
            return Ok(None);
        };
        match self
            .on
            .stream
            .get_next_raw_message_by_subject(subject)
            .await
        {
            Ok(message) => Ok(certificate_of(&message.payload)),
            Err(err) if err.kind() == stream::LastRawMessageErrorKind::NoMessageFound => Ok(None),
            Err(err) => Err(StoreError::Unavailable(err.into())),
        }
    }

    /// Every certificate bound to the key.
    pub async fn certificates(&self, key_sha256: &str) -> Result<Vec<CertificateId>, StoreError> {
        let Some(subject) = Self::subject(key_sha256, "bound") else {
            return Ok(Vec::new());
        };
        let mut ids = Vec::new();
        let mut from = 0;
        loop {
            match self
                .on
                .stream
                .get_first_raw_message_by_subject(subject.as_str(), from)
                .await
            {
                Ok(message) => {
                    from = message.sequence + 1;
                    if let Some(id) = certificate_of(&message.payload)
                        && !ids.contains(&id)
                    {
                        ids.push(id);
                    }
                }
                Err(err) if err.kind() == stream::LastRawMessageErrorKind::NoMessageFound => {
                    return Ok(ids);
                }
                Err(err) => return Err(StoreError::Unavailable(err.into())),
            }
        }
    }
}

fn certificate_of(payload: &[u8]) -> Option<CertificateId> {
    std::str::from_utf8(payload)
        .ok()
        .and_then(|id| CertificateId::parse(id).ok())
}
