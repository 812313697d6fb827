//! The validation service's schedule: a work queue with one task per set of challenges,
//! handed back to JetStream with a delay until the validation ends.
//!
//! The task carries no state of its own beyond the certificate, the stream sequence of the
//! challenges it is about, and the correlation id of the request that caused them; the
//! validation's state is in the log. A task whose worker goes away comes back after the ack
//! wait, so a restart loses nothing, and instances share the queue.

use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer, stream};
use async_nats::{HeaderMap, header};
use bytes::Bytes;
use certflow_domain::CertificateId;
use futures::StreamExt;

use crate::store::{Attached, StoreError};
use certflow_bus::headers;

/// The queue of pending validations.
#[derive(Clone, Debug)]
pub struct ValidationChecks {
    on: Attached,
}

/// One pending validation to check.
#[derive(Debug)]
pub struct CheckTask {
    pub certificate_id: CertificateId,
    /// Stream sequence of the `ValidationChallengesIssued` message.
    pub challenges_sequence: u64,
    /// Correlation id of the request that caused the challenges (GEN-4).
    pub correlation_id: String,
    /// The span that queued the check, so every check continues the request's trace.
    pub traceparent: Option<String>,
    /// How many times the task has been handed out, this time included.
    pub deliveries: u64,
    pub(crate) message: jetstream::Message,
}

impl CheckTask {
    /// The validation has ended: the task is done.
    pub async fn done(&self) -> Result<(), StoreError> {
        self.message.ack().await.map_err(StoreError::Unavailable)
    }

    /// Hands the task back, to be offered again after `delay`.
    pub async fn again_after(&self, delay: Duration) -> Result<(), StoreError> {
        self.message
            .ack_with(AckKind::Nak(Some(delay)))
            .await
            .map_err(StoreError::Unavailable)
    }
}

/// The tasks handed to this worker, as they come.
pub struct CheckTasks {
    messages: consumer::pull::Stream,
    /// The consumer's ack wait: how long a task is held without a word.
    pub(crate) ack_wait: Duration,
}

impl std::fmt::Debug for CheckTasks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckTasks").finish_non_exhaustive()
    }
}

impl CheckTasks {
    /// The next task; `None` when the subscription ended. A message that is not a task is
    /// dropped from the queue.
    pub async fn next(&mut self) -> Option<Result<CheckTask, StoreError>> {
        loop {
            let message = match self.messages.next().await? {
                Ok(message) => message,
                Err(err) => return Some(Err(StoreError::Unavailable(err.into()))),
            };
            match ValidationChecks::task(message) {
                Ok(Ok(task)) => return Some(Ok(task)),
                Ok(Err(stray)) => {
                    tracing::warn!(subject = %stray.subject, "dropping a check task for no certificate");
                    let _ = stray.ack_with(AckKind::Term).await;
                }
                Err(err) => return Some(Err(err)),
            }
        }
    }
}

impl ValidationChecks {
    /// The stream's name.
    pub const STREAM: &'static str = "CERTFLOW_VALIDATION_CHECKS";
    const PREFIX: &'static str = "certflow.validation.check";
    pub const CONSUMER: &'static str = "validation-checks";

    /// The work-queue stream.
    pub(crate) fn stream_config() -> stream::Config {
        crate::store::work_queue(
            Self::STREAM,
            "pending domain validations, one task per challenge set",
            Self::PREFIX,
        )
    }

    /// The workers' shared consumer; each open validation holds a task until it ends.
    pub(crate) fn consumer_config(ack_wait: Duration) -> consumer::pull::Config {
        crate::store::work_queue_consumer(
            Self::CONSUMER,
            "validation service check workers",
            ack_wait,
        )
    }

    /// Attaches to the queue, which `certd provision` made.
    pub async fn attach(client: async_nats::Client) -> Result<Self, StoreError> {
        Ok(ValidationChecks {
            on: Attached::to(client, Self::STREAM).await?,
        })
    }

    /// Queues a check of certificate `id`'s challenges, issued in event message
    /// `challenges_sequence`; queuing the same one twice stores one task.
    pub async fn enqueue(
        &self,
        id: &CertificateId,
        challenges_sequence: u64,
        correlation_id: &str,
        traceparent: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut message_headers = HeaderMap::new();
        message_headers.insert(
            header::NATS_MESSAGE_ID,
            format!("check-{challenges_sequence}").as_str(),
        );
        message_headers.insert(headers::CORRELATION_ID, correlation_id);
        if let Some(traceparent) = traceparent {
            message_headers.insert(headers::TRACEPARENT, traceparent);
        }
        self.on
            .publish_acked(
                format!("{}.{id}", Self::PREFIX),
                message_headers,
                Bytes::from(challenges_sequence.to_string()),
            )
            .await
    }

    /// The tasks of the shared consumer.
    pub async fn tasks(&self) -> Result<CheckTasks, StoreError> {
        let consumer = crate::layout::attach_consumer(&self.on.stream, Self::CONSUMER).await?;
        let ack_wait = consumer.cached_info().config.ack_wait;
        let messages = consumer
            .stream()
            .max_messages_per_batch(100)
            .messages()
            .await
            .map_err(|err| StoreError::Unavailable(err.into()))?;
        Ok(CheckTasks { messages, ack_wait })
    }

    /// The task in `message`, or the message back when it names no certificate.
    fn task(
        message: jetstream::Message,
    ) -> Result<Result<CheckTask, jetstream::Message>, StoreError> {
        let certificate_id = message
            .subject
            .as_str()
            .strip_prefix(Self::PREFIX)
            .and_then(|rest| rest.strip_prefix('.'))
            .and_then(|id| CertificateId::parse(id).ok());
        let Some(certificate_id) = certificate_id else {
            return Ok(Err(message));
        };
        let info = message.info().map_err(StoreError::Unavailable)?;
        let deliveries = u64::try_from(info.delivered).unwrap_or(1);
        let challenges_sequence = std::str::from_utf8(&message.payload)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let correlation_id = message
            .headers
            .as_ref()
            .and_then(|h| h.get(headers::CORRELATION_ID))
            .map(|v| v.as_str().to_string())
            .unwrap_or_default();
        let traceparent = message
            .headers
            .as_ref()
            .and_then(|h| h.get(headers::TRACEPARENT))
            .map(|v| v.as_str().to_string());
        Ok(Ok(CheckTask {
            certificate_id,
            challenges_sequence,
            correlation_id,
            traceparent,
            deliveries,
            message,
        }))
    }
}
