//! Where sealed private keys live: a stream with two subjects per record, the wrapped data
//! key and the ciphertext, so the data key can be destroyed on its own (crypto-shredding).
//! The store holds bytes only: sealing and opening happen in the service that owns the
//! key-encryption key.

use async_nats::jetstream::{message::PublishMessage, stream};
use async_nats::{HeaderMap, header};
use bytes::Bytes;

use crate::store::{Attached, StoreError};

/// Marks the empty message that erased a record's part.
const ERASED: &str = "Certflow-Erased";

/// The key store.
#[derive(Clone, Debug)]
pub struct KeyStore {
    on: Attached,
}

/// A record's wrapped data key as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredWrappedKey {
    /// The record.
    pub id: String,
    /// Where the wrapped key is in the stream: the expected sequence to replace it.
    pub sequence: u64,
    pub wrapped_key: Bytes,
}

/// One stored record: the wrapped data key and the sealed payload, both opaque.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub wrapped_key: Bytes,
    pub sealed: Bytes,
}

impl KeyStore {
    /// The stream's name.
    pub const STREAM: &'static str = "CERTFLOW_KEYS";
    const PREFIX: &'static str = "certflow.keys";

    /// The stream: two subjects per record, each keeping only its latest message, so a
    /// record is erased by writing an empty message over each part.
    pub(crate) fn stream_config() -> stream::Config {
        crate::store::latest_per_subject(
            Self::STREAM,
            "sealed private keys: wrapped data keys and ciphertexts",
            Self::PREFIX,
            std::time::Duration::ZERO,
        )
    }

    /// Attaches to the stream, which `certd provision` made.
    pub async fn attach(client: async_nats::Client) -> Result<Self, StoreError> {
        Ok(KeyStore {
            on: Attached::to(client, Self::STREAM).await?,
        })
    }

    fn subject(part: &str, id: &str) -> String {
        format!("{}.{part}.{id}", Self::PREFIX)
    }

    /// Publishes unless the subject's last message is no longer at `expected_sequence` (0:
    /// the subject is empty); returns whether it was stored.
    async fn publish(
        &self,
        subject: String,
        payload: Bytes,
        expected_sequence: u64,
    ) -> Result<bool, StoreError> {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::NATS_EXPECTED_LAST_SUBJECT_SEQUENCE,
            expected_sequence.to_string().as_str(),
        );
        let publish = PublishMessage::build().headers(headers).payload(payload);
        Ok(self.on.publish_expecting(subject, publish).await?.is_some())
    }

    /// Stores record `id` unless one exists; returns whether this call stored it. The
    /// ciphertext goes first: a crash in between leaves ciphertext no key can open.
    /// Ids are NATS subject tokens: letters, digits, `-` and `_`.
    pub async fn put_new(&self, id: &str, record: &StoredKey) -> Result<bool, StoreError> {
        if !self
            .publish(Self::subject("sealed", id), record.sealed.clone(), 0)
            .await?
        {
            return Ok(false);
        }
        self.publish(Self::subject("dek", id), record.wrapped_key.clone(), 0)
            .await
    }

    /// Record `id`, if both of its parts are there.
    pub async fn get(&self, id: &str) -> Result<Option<StoredKey>, StoreError> {
        let wrapped_key = match self.last(Self::subject("dek", id)).await? {
            Some(bytes) => bytes,
            None => return Ok(None),
        };
        Ok(self
            .last(Self::subject("sealed", id))
            .await?
            .map(|sealed| StoredKey {
                wrapped_key,
                sealed,
            }))
    }

    /// The latest message of `subject`, unless there is none or it is an erasure.
    async fn last(&self, subject: String) -> Result<Option<Bytes>, StoreError> {
        Ok(self
            .on
            .last(subject)
            .await?
            .map(|message| message.payload)
            .filter(|payload| !payload.is_empty()))
    }

    /// Every record's wrapped data key, with the stream sequence it is stored at: what a
    /// rotation of the key-encryption key wraps again ([`KeyStore::replace_wrapped_key`]).
    /// Read message by message from the stream's leader, as a rotation is rare.
    pub async fn wrapped_keys(&self) -> Result<Vec<StoredWrappedKey>, StoreError> {
        let filter = format!("{}.dek.>", Self::PREFIX);
        let dek_prefix = format!("{}.dek.", Self::PREFIX);
        let mut keys = Vec::new();
        let mut from = 0;
        loop {
            let message = match self
                .on
                .stream
                .get_first_raw_message_by_subject(&filter, from)
                .await
            {
                Ok(message) => message,
                Err(err) if err.kind() == stream::LastRawMessageErrorKind::NoMessageFound => break,
                Err(err) => return Err(StoreError::Unavailable(err.into())),
            };
            from = message.sequence + 1;
            let Some(id) = message.subject.as_str().strip_prefix(&dek_prefix) else {
                continue;
            };
            if message.payload.is_empty() {
                continue;
            }
            keys.push(StoredWrappedKey {
                id: id.to_string(),
                sequence: message.sequence,
                wrapped_key: message.payload.clone(),
            });
        }
        Ok(keys)
    }

    /// Replaces record `id`'s wrapped data key, unless it changed since `expected_sequence`
    /// (erased meanwhile, or wrapped again by another run): returns whether it was replaced.
    pub async fn replace_wrapped_key(
        &self,
        id: &str,
        expected_sequence: u64,
        wrapped_key: Bytes,
    ) -> Result<bool, StoreError> {
        self.publish(Self::subject("dek", id), wrapped_key, expected_sequence)
            .await
    }

    /// Erases record `id`: its data key first (after which the ciphertext is noise), then the
    /// ciphertext. Each part is overwritten by an empty message: the stream keeps one
    /// message per subject, so JetStream removes the old one. No purge right is needed, and
    /// an erased record id is never stored again ([`KeyStore::put_new`] expects an empty
    /// subject).
    pub async fn shred(&self, id: &str) -> Result<(), StoreError> {
        let dek = Self::subject("dek", id);
        if self.last(dek).await?.is_none() {
            // Never stored, or erased already.
            return Ok(());
        }
        for part in ["dek", "sealed"] {
            let subject = Self::subject(part, id);
            let mut headers = HeaderMap::new();
            headers.insert(ERASED, "true");
            let publish = PublishMessage::build()
                .headers(headers)
                .payload(Bytes::new());
            self.on
                .js
                .send_publish(subject, publish)
                .await
                .map_err(|e| StoreError::Unavailable(e.into()))?
                .await
                .map_err(|e| StoreError::Unavailable(e.into()))?;
        }
        Ok(())
    }
}
