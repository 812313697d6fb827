//! Where sealed private keys live: a stream with two subjects per record, the wrapped data
//! key and the ciphertext, so the data key can be destroyed on its own (crypto-shredding).
//! The store holds bytes only: sealing and opening happen in the service that owns the
//! key-encryption key.

use async_nats::jetstream::{self, message::PublishMessage, stream};
use async_nats::{HeaderMap, header};
use bytes::Bytes;

use crate::store::StoreError;

/// The key store.
#[derive(Clone)]
pub struct KeyStore {
    js: jetstream::Context,
    stream: stream::Stream,
}

impl std::fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyStore").finish_non_exhaustive()
    }
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

    /// Opens the stream, creating it on first use.
    pub async fn open(client: async_nats::Client, replicas: usize) -> Result<Self, StoreError> {
        let (js, stream) = crate::store::latest_per_subject_stream(
            client,
            Self::STREAM,
            "sealed private keys: wrapped data keys and ciphertexts",
            Self::PREFIX,
            replicas,
            std::time::Duration::ZERO,
        )
        .await?;
        Ok(KeyStore { js, stream })
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
        let acked = match self.js.send_publish(subject, publish).await {
            Ok(ack) => ack.await,
            Err(err) => Err(err),
        };
        match acked {
            Ok(_) => Ok(true),
            Err(err) if err.kind() == jetstream::context::PublishErrorKind::WrongLastSequence => {
                Ok(false)
            }
            Err(err) => Err(StoreError::Unavailable(err.into())),
        }
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

    async fn last(&self, subject: String) -> Result<Option<Bytes>, StoreError> {
        match self.stream.direct_get_last_for_subject(subject).await {
            Ok(message) => Ok(Some(message.payload)),
            Err(err) if err.kind() == stream::DirectGetErrorKind::NotFound => Ok(None),
            Err(err) => Err(StoreError::Unavailable(err.into())),
        }
    }

    /// Every record's wrapped data key, with the stream sequence it is stored at: what a
    /// rotation of the key-encryption key wraps again ([`KeyStore::replace_wrapped_key`]).
    pub async fn wrapped_keys(&self) -> Result<Vec<StoredWrappedKey>, StoreError> {
        use futures::StreamExt;
        let filter = format!("{}.dek.>", Self::PREFIX);
        let consumer = self
            .stream
            .create_consumer(jetstream::consumer::pull::OrderedConfig {
                filter_subject: filter,
                deliver_policy: jetstream::consumer::DeliverPolicy::LastPerSubject,
                ..Default::default()
            })
            .await
            .map_err(|e| StoreError::Unavailable(e.into()))?;
        let mut remaining = consumer.cached_info().num_pending;
        let mut keys = Vec::with_capacity(usize::try_from(remaining).unwrap_or(0));
        if remaining == 0 {
            return Ok(keys);
        }
        let mut messages = consumer
            .messages()
            .await
            .map_err(|e| StoreError::Unavailable(e.into()))?;
        let dek_prefix = format!("{}.dek.", Self::PREFIX);
        while let Some(message) = messages.next().await {
            let message = message.map_err(|e| StoreError::Unavailable(e.into()))?;
            let info = message.info().map_err(StoreError::Unavailable)?;
            let (sequence, pending) = (info.stream_sequence, info.pending);
            if let Some(id) = message.subject.as_str().strip_prefix(&dek_prefix) {
                keys.push(StoredWrappedKey {
                    id: id.to_string(),
                    sequence,
                    wrapped_key: message.payload.clone(),
                });
            }
            remaining = pending;
            if remaining == 0 {
                break;
            }
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
    /// ciphertext.
    pub async fn shred(&self, id: &str) -> Result<(), StoreError> {
        for part in ["dek", "sealed"] {
            self.stream
                .purge()
                .filter(Self::subject(part, id))
                .await
                .map_err(|e| StoreError::Unavailable(e.into()))?;
        }
        Ok(())
    }
}
