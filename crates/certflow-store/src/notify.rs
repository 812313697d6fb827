//! What the notifier keeps: each account's endpoints, the queue of deliveries, and the
//! dead letters.
//!
//! - `CERTFLOW_NOTIFY_ENDPOINTS` holds one document per account (the latest message of
//!   `certflow.notify.endpoints.<account>`), written with the sequence it was read at, so two
//!   changes never overwrite each other. It holds webhook signing secrets: only the
//!   notifier's NATS user may read it.
//! - `CERTFLOW_NOTIFICATIONS` is a work queue of deliveries (one per notification and
//!   endpoint) and reminders. A delivery not acknowledged within the ack wait (its worker
//!   died) is offered again; a failed one is handed back with the delay of the retry
//!   schedule, so the schedule survives restarts and instances share the work. Each task
//!   is published with a message id, so offering it twice stores it once.
//! - `CERTFLOW_NOTIFY_DEAD` keeps the latest record of each dead letter
//!   (`certflow.notify.dead.<account>.<notification>.<endpoint>`) for 30 days.
//!
//! The documents are opaque bytes here: the notifier owns their format. Accounts appear in
//! subjects hex-encoded, so any account name makes one subject token.

use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer, stream};
use async_nats::{HeaderMap, header};
use bytes::Bytes;
use futures::StreamExt;

use crate::store::{Attached, StoreError};

/// The notifier's streams.
#[derive(Clone, Debug)]
pub struct NotifyStore {
    endpoints: Attached,
    queue: Attached,
    dead: Attached,
}

/// One account's endpoint document as read, and the sequence a write must expect.
#[derive(Debug, Clone)]
pub struct EndpointsRead {
    /// The document; `None` when the account has registered nothing yet.
    pub document: Option<Bytes>,
    /// The sequence of the message read (0: none), which the next write expects.
    pub sequence: u64,
}

/// One task of the queue, held by this worker until it is done or handed back.
#[derive(Debug)]
pub struct NotifyTask {
    /// The account the task is for (decoded from its subject).
    pub account: String,
    pub payload: Bytes,
    /// How many times the task has been handed out, this time included.
    pub deliveries: u64,
    pub(crate) message: jetstream::Message,
}

impl NotifyTask {
    /// The task is finished (delivered, dropped or moved to the dead letters).
    pub async fn done(&self) -> Result<(), StoreError> {
        self.message
            .double_ack()
            .await
            .map_err(StoreError::Unavailable)
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
pub struct NotifyTasks {
    messages: consumer::pull::Stream,
    /// The consumer's ack wait: how long a task is held without a word.
    pub(crate) ack_wait: Duration,
}

impl std::fmt::Debug for NotifyTasks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotifyTasks").finish_non_exhaustive()
    }
}

impl NotifyTasks {
    /// The next task; `None` when the subscription ended. A message on a subject that names
    /// no account is dropped from the queue.
    pub async fn next(&mut self) -> Option<Result<NotifyTask, StoreError>> {
        loop {
            let message = match self.messages.next().await? {
                Ok(message) => message,
                Err(err) => return Some(Err(StoreError::Unavailable(err.into()))),
            };
            let account = message
                .subject
                .as_str()
                .strip_prefix(NotifyStore::QUEUE_PREFIX)
                .and_then(|rest| rest.strip_prefix('.'))
                .and_then(account_from_token);
            let Some(account) = account else {
                tracing::warn!(subject = %message.subject, "dropping a notification task for no account");
                let _ = message.ack_with(AckKind::Term).await;
                continue;
            };
            let deliveries = match message.info() {
                Ok(info) => u64::try_from(info.delivered).unwrap_or(1),
                Err(err) => return Some(Err(StoreError::Unavailable(err))),
            };
            return Some(Ok(NotifyTask {
                account,
                payload: message.payload.clone(),
                deliveries,
                message,
            }));
        }
    }
}

impl NotifyStore {
    pub const ENDPOINTS: &'static str = "CERTFLOW_NOTIFY_ENDPOINTS";
    pub const QUEUE: &'static str = "CERTFLOW_NOTIFICATIONS";
    pub const DEAD: &'static str = "CERTFLOW_NOTIFY_DEAD";
    /// The delivery workers' shared consumer of [`Self::QUEUE`].
    pub const CONSUMER: &'static str = "notifier-deliveries";
    const ENDPOINTS_PREFIX: &'static str = "certflow.notify.endpoints";
    const QUEUE_PREFIX: &'static str = "certflow.notify.queue";
    const DEAD_PREFIX: &'static str = "certflow.notify.dead";
    /// How long a dead letter stays listable.
    const DEAD_MAX_AGE: Duration = Duration::from_secs(30 * 24 * 3600);

    pub(crate) fn endpoints_config() -> stream::Config {
        crate::store::latest_per_subject(
            Self::ENDPOINTS,
            "each account's notification endpoints and their signing secrets",
            Self::ENDPOINTS_PREFIX,
            Duration::ZERO,
        )
    }

    pub(crate) fn queue_config() -> stream::Config {
        crate::store::work_queue(
            Self::QUEUE,
            "notification deliveries and reminders, each until done",
            Self::QUEUE_PREFIX,
        )
    }

    pub(crate) fn dead_config() -> stream::Config {
        crate::store::latest_per_subject(
            Self::DEAD,
            "notifications the retries gave up on",
            Self::DEAD_PREFIX,
            Self::DEAD_MAX_AGE,
        )
    }

    /// The workers' consumer: a task is redelivered `ack_wait` after its worker went quiet,
    /// and handed back as often as the retry schedule says (no delivery limit: the
    /// notifier moves a task to the dead letters itself).
    pub(crate) fn consumer_config(ack_wait: Duration) -> consumer::pull::Config {
        crate::store::work_queue_consumer(Self::CONSUMER, "notifier delivery workers", ack_wait)
    }

    /// Attaches to the three streams, which `certd provision` made.
    pub async fn attach(client: async_nats::Client) -> Result<Self, StoreError> {
        Ok(NotifyStore {
            endpoints: Attached::to(client.clone(), Self::ENDPOINTS).await?,
            queue: Attached::to(client.clone(), Self::QUEUE).await?,
            dead: Attached::to(client, Self::DEAD).await?,
        })
    }

    /// `account`'s endpoint document.
    pub async fn endpoints(&self, account: &str) -> Result<EndpointsRead, StoreError> {
        let subject = format!("{}.{}", Self::ENDPOINTS_PREFIX, account_token(account));
        Ok(match self.endpoints.last(subject).await? {
            Some(message) => EndpointsRead {
                document: Some(message.payload),
                sequence: message.sequence,
            },
            None => EndpointsRead {
                document: None,
                sequence: 0,
            },
        })
    }

    /// Writes `account`'s endpoint document if it is still the one read at `expected`
    /// (0: none yet); `false` when another change came first: read again and redo it.
    pub async fn write_endpoints(
        &self,
        account: &str,
        document: Bytes,
        expected: u64,
    ) -> Result<bool, StoreError> {
        let subject = format!("{}.{}", Self::ENDPOINTS_PREFIX, account_token(account));
        let message = jetstream::message::PublishMessage::build()
            .payload(document)
            .expected_last_subject_sequence(expected);
        Ok(self
            .endpoints
            .publish_expecting(subject, message)
            .await?
            .is_some())
    }

    /// Queues a task for `account`; a task with the same `message_id` queued within two
    /// minutes is stored once.
    pub async fn enqueue(
        &self,
        account: &str,
        message_id: &str,
        payload: Bytes,
    ) -> Result<(), StoreError> {
        let mut headers = HeaderMap::new();
        headers.insert(header::NATS_MESSAGE_ID, message_id);
        let subject = format!("{}.{}", Self::QUEUE_PREFIX, account_token(account));
        self.queue.publish_acked(subject, headers, payload).await
    }

    /// The tasks of the shared consumer, fetched `batch` at a time: no more than the worker
    /// runs at once, so none waits out its ack wait in the client before it starts.
    pub async fn tasks(&self, batch: usize) -> Result<NotifyTasks, StoreError> {
        let consumer = crate::layout::attach_consumer(&self.queue.stream, Self::CONSUMER).await?;
        let ack_wait = consumer.cached_info().config.ack_wait;
        let messages = consumer
            .stream()
            .max_messages_per_batch(batch.max(1))
            .messages()
            .await
            .map_err(|err| StoreError::Unavailable(err.into()))?;
        Ok(NotifyTasks { messages, ack_wait })
    }

    /// Records (or replaces) the dead letter `key` of `account`. `key` is made of subject
    /// tokens joined by dots.
    pub async fn write_dead(
        &self,
        account: &str,
        key: &str,
        record: Bytes,
    ) -> Result<(), StoreError> {
        let subject = self.dead_subject(account, key);
        self.dead
            .publish_acked(subject, HeaderMap::new(), record)
            .await
    }

    /// The dead letter `key` of `account`, if it is kept.
    pub async fn dead(&self, account: &str, key: &str) -> Result<Option<Bytes>, StoreError> {
        Ok(self
            .dead
            .last(self.dead_subject(account, key))
            .await?
            .map(|message| message.payload))
    }

    /// The dead letters of `account` still kept, newest first, at most `limit`.
    pub async fn dead_letters(
        &self,
        account: &str,
        limit: usize,
    ) -> Result<Vec<Bytes>, StoreError> {
        let filter = format!("{}.{}.>", Self::DEAD_PREFIX, account_token(account));
        let stream = self.dead.stream.clone();
        let mut subjects = stream
            .info_with_subjects(filter)
            .await
            .map_err(|err| StoreError::Unavailable(err.into()))?;
        let mut names = Vec::new();
        while let Some(next) = subjects.next().await {
            let (subject, _) = next.map_err(|err| StoreError::Unavailable(err.into()))?;
            names.push(subject);
        }
        // Every one is read (30 days of one account's), so the newest come first.
        let mut records = Vec::new();
        for subject in names {
            if let Some(message) = self.dead.last(subject).await? {
                records.push((message.sequence, message.payload));
            }
        }
        records.sort_by_key(|(sequence, _)| std::cmp::Reverse(*sequence));
        Ok(records
            .into_iter()
            .take(limit)
            .map(|(_, payload)| payload)
            .collect())
    }

    fn dead_subject(&self, account: &str, key: &str) -> String {
        format!("{}.{}.{key}", Self::DEAD_PREFIX, account_token(account))
    }
}

/// `account` as one subject token: its UTF-8 bytes in lower-case hex.
fn account_token(account: &str) -> String {
    hex::encode(account.as_bytes())
}

fn account_from_token(token: &str) -> Option<String> {
    String::from_utf8(hex::decode(token).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_account_name_is_one_subject_token_and_reads_back() {
        for account in ["acme", "a.b c>*", "客户"] {
            let token = account_token(account);
            assert!(!token.contains(['.', '*', '>', ' ']), "{token}");
            assert_eq!(account_from_token(&token).as_deref(), Some(account));
        }
        assert_eq!(account_from_token("zz"), None);
    }
}
