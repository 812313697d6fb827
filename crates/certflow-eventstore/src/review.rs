//! The review queue (`REVIEW_QUEUE`) and the document store: the JetStream side of manual
//! review.
//!
//! The queue is a public interface: a work-queue stream with one `ReviewTask` message per
//! task offered to reviewers, under `review.queue.<kind>.<brand>`, consumed through the
//! shared durable consumer `reviewers`. A reviewer acknowledges a task once its decision is
//! recorded; a task not acknowledged within the consumer's ack wait is offered again. A task
//! can also be leased through the gateway: the lease is the message's acknowledgement
//! subject, which the review service acknowledges (or hands back) after the decision.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, object_store, stream};
use async_nats::{HeaderMap, header};
use bytes::Bytes;
use futures::StreamExt;
use tokio::io::AsyncReadExt;

use crate::store::StoreError;

fn unavailable(err: impl Into<async_nats::Error>) -> StoreError {
    StoreError::Unavailable(err.into())
}

/// The review queue.
#[derive(Clone)]
pub struct ReviewQueue {
    client: async_nats::Client,
    js: jetstream::Context,
    stream: stream::Stream,
}

impl std::fmt::Debug for ReviewQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReviewQueue").finish_non_exhaustive()
    }
}

/// A task taken from the queue: its encoded `ReviewTask` and the lease that acknowledges it.
#[derive(Debug, Clone)]
pub struct LeasedTask {
    pub payload: Bytes,
    /// The message's acknowledgement subject.
    pub lease: String,
}

/// What to do with a leased task once its decision is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseOutcome {
    /// Decided (or decided before): done.
    Done,
    /// Not for this reviewer: offer it to another now.
    Release,
}

impl ReviewQueue {
    /// The stream's name.
    pub const STREAM: &'static str = "REVIEW_QUEUE";
    /// Every task's subject starts with this.
    pub const PREFIX: &'static str = "review.queue";
    /// The reviewers' shared durable consumer.
    pub const CONSUMER: &'static str = "reviewers";
    /// What a task message holds.
    pub const CONTENT_TYPE: &'static str = "application/protobuf; proto=certflow.v1.ReviewTask";

    /// The work-queue stream of tasks.
    pub(crate) fn stream_config() -> stream::Config {
        stream::Config {
            name: Self::STREAM.into(),
            description: Some("review tasks for reviewers (certflow.review.v1.ReviewTask)".into()),
            subjects: vec![format!("{}.>", Self::PREFIX)],
            retention: stream::RetentionPolicy::WorkQueue,
            storage: stream::StorageType::File,
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        }
    }

    /// The reviewers' shared consumer: a task not acknowledged within `ack_wait` is offered
    /// to another reviewer.
    pub(crate) fn consumer_config(ack_wait: Duration) -> consumer::pull::Config {
        consumer::pull::Config {
            durable_name: Some(Self::CONSUMER.into()),
            description: Some("reviewers take tasks here".into()),
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait,
            max_ack_pending: -1,
            ..Default::default()
        }
    }

    /// Attaches to the queue, which `certd provision` made.
    pub async fn attach(client: async_nats::Client) -> Result<Self, StoreError> {
        let js = jetstream::new(client.clone());
        let stream = crate::layout::attach_stream(&js, Self::STREAM).await?;
        Ok(ReviewQueue { client, js, stream })
    }

    /// Offers a task: `subject_suffix` is `<kind>.<brand>`, `message_id` makes a repeated
    /// offer of the same task state a no-op.
    pub async fn offer(
        &self,
        subject_suffix: &str,
        message_id: &str,
        task: Bytes,
    ) -> Result<(), StoreError> {
        let mut headers = HeaderMap::new();
        headers.insert(header::NATS_MESSAGE_ID, message_id);
        headers.insert(crate::headers::CONTENT_TYPE, Self::CONTENT_TYPE);
        // Offered from inside the reaction that queued it: a reviewer's tool can continue
        // the trace of the request.
        if let Some(traceparent) = certflow_telemetry::propagation::forward(None) {
            headers.insert(crate::headers::TRACEPARENT, traceparent.as_str());
        }
        self.js
            .publish_with_headers(format!("{}.{subject_suffix}", Self::PREFIX), headers, task)
            .await
            .map_err(unavailable)?
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// Takes up to `max` waiting tasks at once, waiting at most `wait` for the first; each is
    /// leased until settled or until the ack wait passes.
    pub async fn take(&self, max: usize, wait: Duration) -> Result<Vec<LeasedTask>, StoreError> {
        let consumer = crate::layout::attach_consumer(&self.stream, Self::CONSUMER).await?;
        let batch = consumer
            .fetch()
            .max_messages(max)
            .expires(wait)
            .messages()
            .await
            .map_err(unavailable)?;
        let messages: Vec<_> = batch.collect().await;
        let mut leased = Vec::with_capacity(messages.len());
        for message in messages {
            let message = message.map_err(unavailable)?;
            if let Some(reply) = &message.reply {
                leased.push(LeasedTask {
                    payload: message.payload.clone(),
                    lease: reply.to_string(),
                });
            }
        }
        Ok(leased)
    }

    /// The stream sequence of the message `lease` acknowledges, if it is a lease of this
    /// queue's consumer (`$JS.ACK.<stream>.<consumer>.<delivered>.<sequence>.…`).
    fn leased_sequence(lease: &str) -> Option<u64> {
        let rest = lease.strip_prefix(&format!("$JS.ACK.{}.{}.", Self::STREAM, Self::CONSUMER))?;
        if rest.contains(['*', '>', ' ']) {
            return None;
        }
        rest.split('.').nth(1)?.parse().ok()
    }

    /// The task message `lease` stands for, while it is still on the queue: a caller checks
    /// it is the task it decided before settling, so a lease cannot settle another task.
    pub async fn leased_task(&self, lease: &str) -> Result<Option<Bytes>, StoreError> {
        let Some(sequence) = Self::leased_sequence(lease) else {
            return Ok(None);
        };
        match self.stream.get_raw_message(sequence).await {
            Ok(message) => Ok(Some(message.payload)),
            Err(err) if err.kind() == stream::LastRawMessageErrorKind::NoMessageFound => Ok(None),
            Err(err) => Err(unavailable(err)),
        }
    }

    /// Settles a leased task. A lease that is not this queue's is ignored.
    pub async fn settle(&self, lease: &str, outcome: LeaseOutcome) -> Result<(), StoreError> {
        if Self::leased_sequence(lease).is_none() {
            return Ok(());
        }
        let ack: &'static [u8] = match outcome {
            LeaseOutcome::Done => b"+ACK",
            LeaseOutcome::Release => b"-NAK",
        };
        self.client
            .publish(lease.to_string(), Bytes::from_static(ack))
            .await
            .map_err(unavailable)?;
        self.client.flush().await.map_err(unavailable)
    }
}

/// A view of the queue that takes nothing: the tasks waiting now, then each task as it is
/// offered.
pub struct QueueWatch {
    waiting: std::vec::IntoIter<Bytes>,
    offered: async_nats::Subscriber,
}

impl std::fmt::Debug for QueueWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueWatch").finish_non_exhaustive()
    }
}

impl QueueWatch {
    /// The next encoded task; `None` when the subscription ended.
    pub async fn next(&mut self) -> Option<Bytes> {
        if let Some(task) = self.waiting.next() {
            return Some(task);
        }
        self.offered.next().await.map(|message| message.payload)
    }
}

impl ReviewQueue {
    /// Follows the queue without taking tasks: first the tasks waiting now (oldest first,
    /// at most `limit`), then every task as it is offered.
    pub async fn watch(&self, limit: usize) -> Result<QueueWatch, StoreError> {
        // Subscribe first, so nothing offered while the waiting tasks are read is missed
        // (a task may then show twice).
        let offered = self
            .client
            .subscribe(format!("{}.>", Self::PREFIX))
            .await
            .map_err(unavailable)?;
        let subjects = format!("{}.>", Self::PREFIX);
        let mut waiting = Vec::new();
        let mut from = 0;
        while waiting.len() < limit {
            match self
                .stream
                .get_first_raw_message_by_subject(&subjects, from)
                .await
            {
                Ok(message) => {
                    from = message.sequence + 1;
                    waiting.push(message.payload);
                }
                Err(err) if err.kind() == stream::LastRawMessageErrorKind::NoMessageFound => break,
                Err(err) => return Err(unavailable(err)),
            }
        }
        Ok(QueueWatch {
            waiting: waiting.into_iter(),
            offered,
        })
    }
}

/// Where documents' bytes are kept: JetStream object store buckets. Uploads are staged in
/// `certflow-uploads` by the gateway and expire after an hour; the review service copies the
/// ones it records into `certflow-documents`, which the gateway only reads. Nothing is
/// deleted by a service: deleting takes a purge, a right only the operator has.
#[derive(Clone)]
pub struct DocumentStore {
    bucket: object_store::ObjectStore,
}

impl std::fmt::Debug for DocumentStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DocumentStore").finish_non_exhaustive()
    }
}

/// A stored document's bytes and digest.
#[derive(Debug, Clone)]
pub struct StoredDocument {
    pub content: Bytes,
    /// Hex SHA-256 of the content.
    pub sha256: String,
}

impl DocumentStore {
    /// Recorded documents.
    pub const DOCUMENTS: &'static str = "certflow-documents";
    /// Uploads not yet judged.
    pub const UPLOADS: &'static str = "certflow-uploads";
    /// How long an upload is kept if nothing records or deletes it.
    pub const UPLOAD_MAX_AGE: Duration = Duration::from_secs(3600);

    /// The stream behind bucket `bucket`, as JetStream's object store lays it out.
    pub(crate) fn stream_config(
        bucket: &str,
        description: &str,
        max_age: Duration,
    ) -> stream::Config {
        stream::Config {
            name: format!("OBJ_{bucket}"),
            description: Some(description.into()),
            subjects: vec![format!("$O.{bucket}.C.>"), format!("$O.{bucket}.M.>")],
            max_age,
            storage: stream::StorageType::File,
            discard: stream::DiscardPolicy::New,
            allow_rollup: true,
            allow_direct: true,
            ..Default::default()
        }
    }

    /// Attaches to bucket `bucket`, which `certd provision` made.
    pub async fn attach(client: async_nats::Client, bucket: &str) -> Result<Self, StoreError> {
        let js = jetstream::new(client);
        crate::layout::attach_stream(&js, &format!("OBJ_{bucket}")).await?;
        let bucket = js.get_object_store(bucket).await.map_err(unavailable)?;
        Ok(DocumentStore { bucket })
    }

    /// Stores `content` under `name`, unless something is stored there already. Names are
    /// never reused (uploads get fresh ones), so what is there is this content: overwriting
    /// it would need a purge of the old chunks, which no service may do.
    pub async fn put(&self, name: &str, content: &[u8]) -> Result<(), StoreError> {
        match self.bucket.info(name).await {
            Ok(_) => return Ok(()),
            Err(err) if err.kind() == object_store::InfoErrorKind::NotFound => {}
            Err(err) => return Err(unavailable(err)),
        }
        let mut reader = content;
        self.bucket
            .put(name, &mut reader)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// The document stored under `name`, if any. At most `limit` bytes and one more are
    /// read, so a caller can tell a document over the limit without holding all of it.
    pub async fn get(&self, name: &str, limit: u64) -> Result<Option<StoredDocument>, StoreError> {
        use sha2::{Digest, Sha256};
        let object = match self.bucket.get(name).await {
            Ok(object) => object,
            Err(err) if err.kind() == object_store::GetErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(unavailable(err)),
        };
        let mut content = Vec::new();
        object
            .take(limit.saturating_add(1))
            .read_to_end(&mut content)
            .await
            .map_err(unavailable)?;
        let sha256 = hex::encode(Sha256::digest(&content));
        Ok(Some(StoredDocument {
            content: Bytes::from(content),
            sha256,
        }))
    }
}
