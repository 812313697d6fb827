//! The first reply to every command, so a retried request gets the same answer (GEN-1).

use std::time::Duration;

use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use certflow_domain::CommandId;

use crate::store::StoreError;

/// Replies by command id, in a JetStream key-value bucket that forgets them after `ttl`.
///
/// Successes could be recognised from the history alone (the command id is on the events),
/// but refusals append nothing, so without this a retried refused request would be decided
/// again on a state that may have moved on.
#[derive(Clone)]
pub struct Outcomes {
    bucket: kv::Store,
}

impl std::fmt::Debug for Outcomes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outcomes").finish_non_exhaustive()
    }
}

impl Outcomes {
    /// The default bucket name.
    pub const BUCKET: &'static str = "CERTFLOW_OUTCOMES";

    /// Opens the bucket, creating it on first use.
    pub async fn open(
        client: async_nats::Client,
        ttl: Duration,
        replicas: usize,
    ) -> Result<Self, StoreError> {
        let js = jetstream::new(client);
        let bucket = match js.get_key_value(Self::BUCKET).await {
            Ok(bucket) => bucket,
            Err(_) => js
                .create_key_value(kv::Config {
                    bucket: Self::BUCKET.into(),
                    description: "first reply of each certflow command".into(),
                    history: 1,
                    max_age: ttl,
                    storage: jetstream::stream::StorageType::File,
                    num_replicas: replicas,
                    ..Default::default()
                })
                .await
                .map_err(|e| StoreError::Unavailable(e.into()))?,
        };
        Ok(Outcomes { bucket })
    }

    /// The reply first given to `command`, if any.
    pub async fn get(&self, command: &CommandId) -> Result<Option<Bytes>, StoreError> {
        self.bucket
            .get(command.0.as_str())
            .await
            .map_err(|e| StoreError::Unavailable(e.into()))
    }

    /// Records the reply to `command` unless one is recorded already; returns the reply that
    /// stands (ours, or the one a concurrent retry recorded first).
    pub async fn record(&self, command: &CommandId, reply: Bytes) -> Result<Bytes, StoreError> {
        match self.bucket.create(command.0.as_str(), reply.clone()).await {
            Ok(_) => Ok(reply),
            Err(err) if err.kind() == kv::CreateErrorKind::AlreadyExists => Ok(self
                .get(command)
                .await?
                .unwrap_or(reply)),
            Err(err) => Err(StoreError::Unavailable(err.into())),
        }
    }
}
