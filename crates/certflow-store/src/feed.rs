//! Reading the whole log in order, without a consumer: for followers that keep their own
//! position (the projection keeps it in sled; the CRL publisher starts from the beginning).
//!
//! The feed reads the events stream by sequence with batched direct gets (a thousand
//! messages per request, nats-server 2.11 and later; one by one, many in flight, where a
//! batch comes back short), and learns of new messages from the certificates' event
//! subjects themselves. A consumer
//! would have needed the right to create consumers on the events stream, and that right
//! lets its holder change every other consumer there (JetStream updates an existing
//! consumer named in a create request): no service has it.

use std::time::Duration;

use async_nats::jetstream::{message::StreamMessage, stream};
use futures::StreamExt;
use tracing::warn;

use crate::store::{EventStore, RecordedBatch, StoreError};

/// Reads in flight at once while catching up.
const IN_FLIGHT: usize = 128;
/// How often the feed looks at the stream when no new message was noticed, in case a
/// notice was missed (a reconnect) or came long before its message was stored.
const IDLE_POLL: Duration = Duration::from_millis(250);
/// After a notice, for how long the tail is looked at again and again, with doubling
/// waits from a millisecond: a subscriber may hear of a message before the stream has
/// stored it (longer so under load), and one look may find an earlier message but not yet
/// the one noticed.
const NOTICE_WINDOW: Duration = Duration::from_millis(500);

/// One message of the log, by its stream sequence.
#[derive(Debug)]
pub struct Delivered {
    /// Stream sequence of the message.
    pub sequence: u64,
    /// The batch, or why it could not be read.
    pub batch: Result<RecordedBatch, StoreError>,
}

/// Every certificate's events after a position, in stream order.
pub struct EventFeed {
    store: EventStore,
    /// The next sequence to read.
    next: u64,
    /// The last sequence the stream is known to hold.
    known_last: u64,
    /// A message on any certificate's subject: something new may be in the stream.
    notices: async_nats::Subscriber,
    /// When the last notice arrived.
    noticed_at: Option<tokio::time::Instant>,
    /// How long to wait before looking at the tail again after a notice.
    settle: Duration,
}

impl std::fmt::Debug for EventFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventFeed")
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

impl EventStore {
    /// Follows every certificate's events after `after_sequence` (0: from the start).
    pub async fn follow(&self, after_sequence: u64) -> Result<EventFeed, StoreError> {
        // Listen first, so nothing appended from here on goes unnoticed.
        let notices = self
            .client()
            .subscribe(self.certificate_subjects())
            .await
            .map_err(|err| StoreError::Unavailable(err.into()))?;
        Ok(EventFeed {
            store: self.clone(),
            next: after_sequence + 1,
            known_last: 0,
            notices,
            noticed_at: None,
            settle: Duration::from_millis(1),
        })
    }

    /// The message at `sequence`; `None` if the stream does not hold it (removed by an
    /// operator). A replica may not have it yet, so what a direct get does not find is
    /// asked of the stream's leader.
    async fn message_at(&self, sequence: u64) -> Result<Option<StreamMessage>, StoreError> {
        match self.stream().direct_get(sequence).await {
            Ok(message) => return Ok(Some(message)),
            Err(err) if err.kind() == stream::DirectGetErrorKind::NotFound => {}
            Err(err) => return Err(StoreError::Unavailable(err.into())),
        }
        match self.stream().get_raw_message(sequence).await {
            Ok(message) => Ok(Some(message)),
            Err(err) if err.kind() == stream::LastRawMessageErrorKind::NoMessageFound => Ok(None),
            Err(err) => Err(StoreError::Unavailable(err.into())),
        }
    }
}

impl EventStore {
    /// The messages from sequence `from` to `last` in one request: a batched direct get
    /// (nats-server 2.11 and later), which the server answers message by message on an
    /// inbox of ours and ends with an end-of-batch status. A replica may answer with fewer
    /// than asked; never with a message past `last`.
    async fn direct_batch(&self, from: u64, last: u64) -> Result<Vec<StreamMessage>, StoreError> {
        let unavailable = |err: &dyn std::fmt::Display| StoreError::unavailable(err.to_string());
        let wanted = last.saturating_sub(from) + 1;
        let client = self.client();
        let inbox = client.new_inbox();
        let mut replies = client
            .subscribe(inbox.clone())
            .await
            .map_err(|err| unavailable(&err))?;
        let request = serde_json::json!({ "seq": from, "batch": wanted });
        client
            .publish_with_reply(
                format!("$JS.API.DIRECT.GET.{}", self.stream_name()),
                inbox,
                request.to_string().into(),
            )
            .await
            .map_err(|err| unavailable(&err))?;
        let mut messages = Vec::new();
        while (messages.len() as u64) < wanted {
            let reply = tokio::time::timeout(self.request_timeout(), replies.next())
                .await
                .map_err(|_| unavailable(&"no reply to a batched read in time"))?
                .ok_or_else(|| unavailable(&"the connection closed during a batched read"))?;
            match reply.status.map(|status| status.as_u16()) {
                // 204: the end of the batch; 404: nothing from `from` on.
                Some(204 | 404) => break,
                Some(other) => {
                    return Err(unavailable(&format!(
                        "a batched read was answered with status {other}"
                    )));
                }
                None => {}
            }
            let headers = reply.headers.unwrap_or_default();
            let header = |name: &str| headers.get(name).map(|value| value.as_str().to_string());
            let sequence = header("Nats-Sequence").and_then(|value| value.parse::<u64>().ok());
            let subject = header("Nats-Subject");
            let time = header("Nats-Time-Stamp").and_then(|value| {
                time::OffsetDateTime::parse(&value, &time::format_description::well_known::Rfc3339)
                    .ok()
            });
            let (Some(sequence), Some(subject), Some(time)) = (sequence, subject, time) else {
                return Err(unavailable(
                    &"a batched read returned a message without its place",
                ));
            };
            if sequence > last {
                break;
            }
            messages.push(StreamMessage {
                subject: subject.into(),
                sequence,
                headers,
                payload: reply.payload,
                time,
            });
        }
        Ok(messages)
    }
}

impl EventFeed {
    /// Waits until the log has a message after the last one delivered, then returns up to
    /// `max` messages in order. `None` once the NATS connection is closed for good.
    ///
    /// Cancel-safe: dropped before it returns, it has delivered nothing, and the next call
    /// starts where this one did.
    pub async fn next_chunk(&mut self, max: usize) -> Option<Result<Vec<Delivered>, StoreError>> {
        loop {
            if self.next <= self.known_last {
                return Some(self.read_known(max).await);
            }
            // At the tail: read what follows directly, no stream info on the way.
            match self.read_tail(max).await {
                Ok(chunk) if !chunk.is_empty() => {
                    self.settle = Duration::from_millis(1);
                    return Some(Ok(chunk));
                }
                Ok(_) => {}
                Err(err) => return Some(Err(err)),
            }
            let recently_noticed = self
                .noticed_at
                .is_some_and(|at| at.elapsed() < NOTICE_WINDOW);
            let wait = if recently_noticed {
                self.settle
            } else {
                IDLE_POLL
            };
            tokio::select! {
                notice = self.notices.next() => {
                    notice?;
                    // Many notices may have queued up; the tail is read until it ends.
                    while let Some(Some(_)) =
                        futures::FutureExt::now_or_never(self.notices.next())
                    {}
                    self.noticed_at = Some(tokio::time::Instant::now());
                    self.settle = Duration::from_millis(1);
                }
                _ = tokio::time::sleep(wait) => {
                    if recently_noticed {
                        self.settle = (self.settle * 2).min(IDLE_POLL);
                    } else {
                        // Nothing noticed for a while: the stream says where its end is
                        // (it may also hold messages past a gap the tail reads stop at).
                        match self.store.last_sequence().await {
                            Ok(last) => self.known_last = last,
                            Err(err) => return Some(Err(err)),
                        }
                    }
                }
            }
        }
    }

    /// Reads the messages following the last one delivered, one by one, until the stream
    /// has no more or `TAIL` were read; after a full run, the stream's end is looked up so
    /// the next call reads the rest many at a time.
    async fn read_tail(&mut self, max: usize) -> Result<Vec<Delivered>, StoreError> {
        const TAIL: usize = 16;
        let mut chunk = Vec::new();
        let mut next = self.next;
        while chunk.len() < TAIL.min(max.max(1)) {
            match self.store.stream().direct_get(next).await {
                Ok(message) => chunk.push(Delivered {
                    sequence: next,
                    batch: self.store.parse(&message),
                }),
                Err(err) if err.kind() == stream::DirectGetErrorKind::NotFound => break,
                Err(err) if chunk.is_empty() => return Err(StoreError::Unavailable(err.into())),
                Err(_) => break,
            }
            next += 1;
        }
        if chunk.len() == TAIL {
            self.known_last = self.store.last_sequence().await?;
        }
        self.next = next;
        Ok(chunk)
    }

    /// Reads the next messages up to the last known one, at most `max`: in one batched
    /// direct get, and one by one (asking the leader for what a replica lacks) when the
    /// batch brings nothing.
    async fn read_known(&mut self, max: usize) -> Result<Vec<Delivered>, StoreError> {
        let max = u64::try_from(max.max(1)).unwrap_or(1);
        let last = self.known_last.min(self.next.saturating_add(max - 1));
        match self.store.direct_batch(self.next, last).await {
            Ok(messages) if !messages.is_empty() => {
                let chunk: Vec<Delivered> = messages
                    .iter()
                    .map(|message| Delivered {
                        sequence: message.sequence,
                        batch: self.store.parse(message),
                    })
                    .collect();
                if let Some(read) = chunk.last() {
                    self.next = read.sequence + 1;
                }
                return Ok(chunk);
            }
            Ok(_) => {}
            Err(err) => warn!(error = %err, "a batched read failed; reading one by one"),
        }
        let store = &self.store;
        let mut reads = futures::stream::iter(self.next..=last)
            .map(|sequence| async move { (sequence, store.message_at(sequence).await) })
            .buffered(IN_FLIGHT);
        let mut chunk = Vec::new();
        let mut failure = None;
        let mut next = self.next;
        while let Some((sequence, read)) = reads.next().await {
            match read {
                Ok(Some(message)) => chunk.push(Delivered {
                    sequence,
                    batch: store.parse(&message),
                }),
                Ok(None) => warn!(sequence, "the event log no longer holds this message"),
                Err(err) => {
                    failure = Some(err);
                    break;
                }
            }
            next = sequence + 1;
        }
        // Only now: a call dropped while reading moves nothing on.
        self.next = next;
        match failure {
            Some(err) if chunk.is_empty() => Err(err),
            _ => Ok(chunk),
        }
    }
}
