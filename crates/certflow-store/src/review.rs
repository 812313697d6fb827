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
        crate::store::work_queue(
            Self::STREAM,
            "review tasks for reviewers (certflow.review.v1.ReviewTask)",
            Self::PREFIX,
        )
    }

    /// The reviewers' shared consumer: a task not acknowledged within `ack_wait` is offered
    /// to another reviewer.
    pub(crate) fn consumer_config(ack_wait: Duration) -> consumer::pull::Config {
        crate::store::work_queue_consumer(Self::CONSUMER, "reviewers take tasks here", ack_wait)
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
        headers.insert(certflow_bus::headers::CONTENT_TYPE, Self::CONTENT_TYPE);
        // Offered from inside the reaction that queued it: a reviewer's tool can continue
        // the trace of the request.
        if let Some(traceparent) = certflow_telemetry::propagation::forward(None) {
            headers.insert(certflow_bus::headers::TRACEPARENT, traceparent.as_str());
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

/// How many review tasks each reviewer holds, and for how long (REV-R5): a few slots per
/// reviewer, each a subject whose last message is the lease it holds, or empty once
/// settled. A slot is taken with an expected sequence, so no reviewer ever holds more
/// tasks than there are slots, however many calls race; and a lease message lives only as
/// long as the queue's ack wait (the stream's age limit), so a slot frees itself when the
/// lease it holds runs out.
#[derive(Clone)]
pub struct ReviewLeases {
    js: jetstream::Context,
    stream: stream::Stream,
    slots: usize,
}

impl std::fmt::Debug for ReviewLeases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReviewLeases")
            .field("slots", &self.slots)
            .finish_non_exhaustive()
    }
}

/// One of a reviewer's slots, as it stands.
enum Slot {
    /// Free: to be taken at this expected sequence (0: never used, or its lease expired).
    Free { index: usize, expected: u64 },
    /// Holding `lease`, written at `sequence`.
    Held {
        index: usize,
        sequence: u64,
        lease: String,
    },
}

impl ReviewLeases {
    /// The stream's name.
    pub const STREAM: &'static str = "CERTFLOW_REVIEW_LEASES";
    const PREFIX: &'static str = "certflow.review.leases";

    /// The stream: one subject per slot, its last message only, each kept as long as a
    /// lease lasts (`ack_wait`).
    pub(crate) fn stream_config(ack_wait: Duration) -> stream::Config {
        stream::Config {
            name: Self::STREAM.into(),
            description: Some("review tasks each reviewer holds (REV-R5)".into()),
            subjects: vec![format!("{}.>", Self::PREFIX)],
            storage: stream::StorageType::File,
            max_age: ack_wait,
            max_messages_per_subject: 1,
            allow_direct: true,
            ..Default::default()
        }
    }

    /// Attaches to the stream, which `certd provision` made; each reviewer holds at most
    /// `slots` tasks.
    pub async fn attach(client: async_nats::Client, slots: usize) -> Result<Self, StoreError> {
        let js = jetstream::new(client);
        let stream = crate::layout::attach_stream(&js, Self::STREAM).await?;
        Ok(ReviewLeases {
            js,
            stream,
            slots: slots.max(1),
        })
    }

    /// A reviewer (account and subject of its token) as one subject token.
    pub fn reviewer_token(account: &str, subject: &str) -> String {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(format!("{account}\n{subject}").as_bytes());
        hex::encode(&digest[..12])
    }

    fn subject(reviewer: &str, index: usize) -> String {
        format!("{}.{reviewer}.{index}", Self::PREFIX)
    }

    /// Each of `reviewer`'s slots, read from the stream's leader.
    async fn slots(&self, reviewer: &str) -> Result<Vec<Slot>, StoreError> {
        let mut slots = Vec::with_capacity(self.slots);
        for index in 0..self.slots {
            let slot = match self
                .stream
                .get_last_raw_message_by_subject(&Self::subject(reviewer, index))
                .await
            {
                Ok(message) if message.payload.is_empty() => Slot::Free {
                    index,
                    expected: message.sequence,
                },
                Ok(message) => Slot::Held {
                    index,
                    sequence: message.sequence,
                    lease: String::from_utf8_lossy(&message.payload).into_owned(),
                },
                Err(err) if err.kind() == stream::LastRawMessageErrorKind::NoMessageFound => {
                    Slot::Free { index, expected: 0 }
                }
                Err(err) => return Err(unavailable(err)),
            };
            slots.push(slot);
        }
        Ok(slots)
    }

    /// How many tasks `reviewer` holds now.
    pub async fn held(&self, reviewer: &str) -> Result<usize, StoreError> {
        Ok(self
            .slots(reviewer)
            .await?
            .iter()
            .filter(|slot| matches!(slot, Slot::Held { .. }))
            .count())
    }

    /// How many tasks a reviewer may hold.
    pub fn limit(&self) -> usize {
        self.slots
    }

    /// Records that `reviewer` holds `lease`, in a free slot; `false` when every slot is
    /// taken (by this reviewer's other tasks, or a concurrent call).
    pub async fn hold(&self, reviewer: &str, lease: &str) -> Result<bool, StoreError> {
        for slot in self.slots(reviewer).await? {
            if let Slot::Free { index, expected } = slot
                && self
                    .write(reviewer, index, expected, Bytes::from(lease.to_string()))
                    .await?
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Frees the slot of `reviewer` that holds `lease`, if one does.
    pub async fn release(&self, reviewer: &str, lease: &str) -> Result<(), StoreError> {
        for slot in self.slots(reviewer).await? {
            if let Slot::Held {
                index,
                sequence,
                lease: held,
            } = slot
                && held == lease
            {
                // Lost to a concurrent write: that one freed or reused the slot already.
                self.write(reviewer, index, sequence, Bytes::new()).await?;
            }
        }
        Ok(())
    }

    /// Writes `payload` to a slot whose last message is still at `expected`.
    async fn write(
        &self,
        reviewer: &str,
        index: usize,
        expected: u64,
        payload: Bytes,
    ) -> Result<bool, StoreError> {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::NATS_EXPECTED_LAST_SUBJECT_SEQUENCE,
            expected.to_string().as_str(),
        );
        let acked = match self
            .js
            .publish_with_headers(Self::subject(reviewer, index), headers, payload)
            .await
        {
            Ok(ack) => ack.await,
            Err(err) => Err(err),
        };
        match acked {
            Ok(_) => Ok(true),
            Err(err) if crate::store::is_wrong_last_sequence(&err) => Ok(false),
            Err(err) => Err(unavailable(err)),
        }
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
