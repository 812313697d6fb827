//! The feed services react to: a durable pull consumer over every certificate's events,
//! shared by all instances of one service, acknowledged message by message.
//!
//! Unlike the projection's feed, which reads the log from its own position, this consumer
//! is made once by `certd provision` and kept: JetStream tracks what each service has handled, hands
//! each message to one instance, and offers it again if that instance goes away before
//! acknowledging. Reactions decide on the certificate's current state, so a message handled
//! twice appends nothing the second time.

use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer};
use futures::StreamExt;

use crate::store::{EventStore, RecordedBatch, StoreConfig, StoreError, read_delivered};

/// One event message for a reacting service.
#[derive(Debug)]
pub struct Reaction {
    /// Stream sequence of the message: reactions derive their message ids from it.
    pub sequence: u64,
    /// The batch, or why it could not be read.
    pub batch: Result<RecordedBatch, StoreError>,
    message: jetstream::Message,
}

impl Reaction {
    /// Marks the message handled. Call it once the reaction's effects are appended.
    pub async fn ack(&self) -> Result<(), StoreError> {
        self.message.ack().await.map_err(StoreError::Unavailable)
    }

    /// Asks for the message again after `delay`, e.g. when the log was unavailable.
    pub async fn retry_after(&self, delay: Duration) -> Result<(), StoreError> {
        self.message
            .ack_with(AckKind::Nak(Some(delay)))
            .await
            .map_err(StoreError::Unavailable)
    }
}

/// The messages of a reacting service's consumer.
pub struct Reactions {
    messages: consumer::pull::Stream,
    subject_prefix: String,
}

impl std::fmt::Debug for Reactions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reactions").finish_non_exhaustive()
    }
}

impl Reactions {
    /// The next message; `None` when the subscription ended.
    pub async fn next(&mut self) -> Option<Result<Reaction, StoreError>> {
        let message = match self.messages.next().await? {
            Ok(message) => message,
            Err(err) => return Some(Err(StoreError::Unavailable(err.into()))),
        };
        Some(self.reaction(message))
    }

    fn reaction(&self, message: jetstream::Message) -> Result<Reaction, StoreError> {
        let (sequence, batch) = read_delivered(&message, &self.subject_prefix)?;
        Ok(Reaction {
            sequence,
            batch,
            message,
        })
    }
}

impl StoreConfig {
    /// The durable consumer `durable` shares among a service's instances: every
    /// certificate's events from the start of the log, each acknowledged once handled, and
    /// offered again after `ack_wait` if it is not.
    pub(crate) fn reactions_consumer(
        &self,
        durable: &str,
        ack_wait: Duration,
    ) -> consumer::pull::Config {
        consumer::pull::Config {
            durable_name: Some(durable.to_string()),
            description: Some(format!("certflow reactions of {durable}")),
            filter_subject: self.certificate_subjects(),
            deliver_policy: consumer::DeliverPolicy::All,
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait,
            max_ack_pending: 1_000,
            ..Default::default()
        }
    }
}

impl EventStore {
    /// The messages of the shared durable consumer `durable` (a service's name), which
    /// `certd provision` made.
    pub async fn reactions(&self, durable: &str) -> Result<Reactions, StoreError> {
        let consumer = crate::layout::attach_consumer(self.stream(), durable).await?;
        let messages = consumer
            .stream()
            .max_messages_per_batch(200)
            .messages()
            .await
            .map_err(|err| StoreError::Unavailable(err.into()))?;
        Ok(Reactions {
            messages,
            subject_prefix: self.subject_prefix().to_string(),
        })
    }
}
