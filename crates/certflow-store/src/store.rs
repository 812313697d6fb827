//! The events stream: append with optimistic concurrency, load, execute, follow.

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, message::PublishMessage, stream};
use async_nats::{HeaderMap, header};
use bytes::Bytes;
use certflow_domain::{CertificateId, Event, State, Timestamp, replay};
use certflow_proto::convert::{ConvertError, decode_recorded, encode_recorded};
use certflow_telemetry::instruments;

use opentelemetry::KeyValue;
use tracing::{Instrument, debug, info_span, warn};

use crate::cache::StateCache;
use certflow_bus::CommandMeta;

/// JetStream's "wrong last sequence" error code.
const WRONG_LAST_SEQUENCE: u64 = 10071;
/// The code clustered servers from 2.11 may answer for the same race.
const WRONG_LAST_SEQUENCE_CLUSTERED: u64 = 10164;

/// Where the events live and how they are kept.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Stream name.
    pub stream: String,
    /// Every subject of the stream starts with this.
    pub subject_prefix: String,
    /// Stream replicas (1 on a single server, 3 in a cluster).
    pub replicas: usize,
    /// JetStream's `Nats-Msg-Id` de-duplication window.
    pub duplicate_window: Duration,
    /// How often an append whose acknowledgement timed out is sent again (same id, same
    /// expected sequence: a landed first try is answered as a duplicate).
    pub publish_attempts: u32,
    /// How often a command is decided again after losing an optimistic-concurrency race.
    pub decide_attempts: u32,
    /// How long to wait for JetStream to acknowledge a publish or answer an API call.
    pub request_timeout: Duration,
    /// Certificates whose state is kept between loads (0: none); a load then reads only
    /// what was appended since.
    pub cache_capacity: usize,
    /// How long an event a reacting instance received but never finished waits before it is
    /// offered again, e.g. after that instance was killed. `None`: each service's own (30 s;
    /// 60 s for reissue, whose reaction signs a certificate). Applies when a consumer is
    /// created.
    pub redelivery_after: Option<Duration>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            stream: "CERTFLOW_EVENTS".into(),
            subject_prefix: "certflow.events".into(),
            replicas: 1,
            duplicate_window: Duration::from_secs(120),
            publish_attempts: 3,
            decide_attempts: 16,
            request_timeout: Duration::from_secs(5),
            cache_capacity: 10_000,
            redelivery_after: None,
        }
    }
}

impl StoreConfig {
    /// The events stream: one subject per certificate, kept for ever, never purged.
    pub(crate) fn events_stream(&self) -> stream::Config {
        stream::Config {
            name: self.stream.clone(),
            description: Some("certflow domain events, one subject per aggregate".into()),
            subjects: vec![format!("{}.>", self.subject_prefix)],
            storage: stream::StorageType::File,
            num_replicas: self.replicas,
            duplicate_window: self.duplicate_window,
            allow_direct: true,
            deny_delete: true,
            deny_purge: true,
            ..Default::default()
        }
    }

    /// Every certificate's events, as one subject filter.
    pub(crate) fn certificate_subjects(&self) -> String {
        format!("{}.certificate.>", self.subject_prefix)
    }
}

/// What went wrong talking to the event log.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another command appended to the certificate after we read it (GEN-2).
    #[error("certificate {id} changed since sequence {expected}")]
    Conflict { id: CertificateId, expected: u64 },
    /// JetStream did not answer, or answered with an error we cannot act on.
    #[error("event log unavailable: {0}")]
    Unavailable(#[source] async_nats::Error),
    /// The request id was used already, for a command on another certificate.
    #[error("this request id was used for another command; send a new one")]
    RequestIdReused,
    /// A stream or consumer is missing: `certd provision` has not been run.
    #[error(
        "JetStream resource {0} does not exist: run `certd provision` as the NATS operator first"
    )]
    NotProvisioned(String),
    /// Provisioning could not create or update a resource.
    #[error("cannot provision {resource}: {source}")]
    Provision {
        resource: String,
        #[source]
        source: async_nats::Error,
    },
    /// A recorded outcome names an applied command but not where its certificate is.
    #[error("the outcome recorded at {sequence} is unreadable")]
    CorruptOutcome { sequence: u64 },
    /// A stored message could not be read back as events.
    #[error("message {sequence} holds unreadable events: {source}")]
    Corrupt {
        sequence: u64,
        #[source]
        source: ConvertError,
    },
}

impl StoreError {
    pub(crate) fn unavailable(err: impl Into<async_nats::Error>) -> Self {
        StoreError::Unavailable(err.into())
    }
}

/// One command's events as stored, with their metadata.
#[derive(Debug, Clone)]
pub struct RecordedBatch {
    pub certificate_id: CertificateId,
    /// Stream sequence of the message.
    pub sequence: u64,
    /// When JetStream stored it.
    pub recorded_at: Timestamp,
    pub meta: CommandMeta,
    pub events: Vec<Event>,
}

/// A certificate's state and the stream sequence it was read at (0: no events yet).
#[derive(Debug, Clone)]
pub struct Loaded {
    pub state: State,
    pub version: u64,
}

/// The acknowledgement of an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub sequence: u64,
    /// The command id had been appended already; nothing new was stored.
    pub duplicate: bool,
}

/// The outcome of [`EventStore::execute`].
#[derive(Debug, Clone)]
pub struct Executed {
    /// The certificate after the command.
    pub state: State,
    /// Whether this call appended events (false: a retry of an applied command).
    pub appended: bool,
}

/// Why [`EventStore::execute`] did not complete.
#[derive(Debug, thiserror::Error)]
pub enum ExecuteError<E: StdError + 'static> {
    /// The decision refused the command.
    #[error(transparent)]
    Refused(E),
    /// The log failed, or the command lost the race more often than allowed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The event log.
#[derive(Clone)]
pub struct EventStore {
    js: jetstream::Context,
    stream: stream::Stream,
    config: Arc<StoreConfig>,
    cache: Arc<StateCache>,
}

impl std::fmt::Debug for EventStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStore")
            .field("stream", &self.config.stream)
            .finish()
    }
}

impl EventStore {
    /// Attaches to the events stream, which `certd provision` made.
    pub async fn attach(
        client: async_nats::Client,
        config: StoreConfig,
    ) -> Result<Self, StoreError> {
        let mut js = jetstream::new(client);
        js.set_timeout(config.request_timeout);
        let stream = crate::layout::attach_stream(&js, &config.stream).await?;
        Ok(EventStore {
            js,
            stream,
            cache: Arc::new(StateCache::new(config.cache_capacity)),
            config: Arc::new(config),
        })
    }

    /// The subject of one certificate's events.
    pub fn subject(&self, id: &CertificateId) -> String {
        format!("{}.certificate.{}", self.config.subject_prefix, id)
    }

    pub(crate) fn certificate_subjects(&self) -> String {
        self.config.certificate_subjects()
    }

    pub(crate) fn stream(&self) -> &stream::Stream {
        &self.stream
    }

    pub(crate) fn client(&self) -> async_nats::Client {
        self.js.client()
    }

    /// The events stream's name.
    pub(crate) fn stream_name(&self) -> &str {
        &self.config.stream
    }

    /// How long a request to JetStream may take.
    pub(crate) fn request_timeout(&self) -> Duration {
        self.config.request_timeout
    }

    pub(crate) fn subject_prefix(&self) -> &str {
        &self.config.subject_prefix
    }

    /// The configured redelivery delay of unfinished work, if any overrides a service's own.
    pub fn redelivery_after(&self) -> Option<Duration> {
        self.config.redelivery_after
    }

    /// How often a command is decided again after losing an optimistic-concurrency race.
    pub fn decide_attempts(&self) -> u32 {
        self.config.decide_attempts
    }

    /// How many replicas the store's streams keep.
    pub fn replicas(&self) -> usize {
        self.config.replicas
    }

    /// Every batch of a certificate, in order.
    ///
    /// On a single server it reads with direct gets. With replicas, direct gets may be
    /// answered by a replica that lags behind, and a reaction decided on such a state could
    /// find "nothing to do" and be lost; so replicated logs are read from the leader.
    pub async fn history(&self, id: &CertificateId) -> Result<Vec<RecordedBatch>, StoreError> {
        let subject = self.subject(id);
        let mut batches = Vec::new();
        let mut from = 0;
        while let Some(message) = self.next_for_subject(&subject, from).await? {
            from = message.sequence + 1;
            batches.push(self.parse(&message)?);
        }
        Ok(batches)
    }

    /// Certificate `id` as it was right after its message `sequence` (its batches up to that
    /// one, folded), or `None` if `sequence` is not one of its messages: what a command
    /// recorded as applied at `sequence` answered (GEN-1).
    pub async fn state_through(
        &self,
        id: &CertificateId,
        sequence: u64,
    ) -> Result<Option<State>, StoreError> {
        let subject = self.subject(id);
        let mut state = None;
        let mut from = 0;
        while let Some(message) = self.next_for_subject(&subject, from).await? {
            if message.sequence > sequence {
                break;
            }
            from = message.sequence + 1;
            let batch = self.parse(&message)?;
            state = replay(state, &batch.meta.command_id, &batch.events);
            if batch.sequence == sequence {
                return Ok(Some(state));
            }
        }
        Ok(None)
    }

    pub(crate) fn parse(
        &self,
        message: &jetstream::message::StreamMessage,
    ) -> Result<RecordedBatch, StoreError> {
        RecordedBatch::parse(
            &message.subject,
            message.sequence,
            offset_to_timestamp(message.time),
            &message.headers,
            &message.payload,
            &self.config.subject_prefix,
        )
    }

    /// The first message on `subject` at or after sequence `from`.
    async fn next_for_subject(
        &self,
        subject: &str,
        from: u64,
    ) -> Result<Option<jetstream::message::StreamMessage>, StoreError> {
        if self.config.replicas > 1 {
            return match self
                .stream
                .get_first_raw_message_by_subject(subject, from)
                .await
            {
                Ok(message) => Ok(Some(message)),
                Err(err) if err.kind() == stream::LastRawMessageErrorKind::NoMessageFound => {
                    Ok(None)
                }
                Err(err) => Err(StoreError::unavailable(err)),
            };
        }
        match self
            .stream
            .direct_get_next_for_subject(subject, Some(from))
            .await
        {
            Ok(message) => Ok(Some(message)),
            Err(err) if err.kind() == stream::DirectGetErrorKind::NotFound => Ok(None),
            Err(err) => Err(StoreError::unavailable(err)),
        }
    }

    /// The last message on `subject`, read as [`next_for_subject`](Self::next_for_subject)
    /// reads (from the leader of a replicated log).
    async fn last_for_subject(
        &self,
        subject: &str,
    ) -> Result<Option<jetstream::message::StreamMessage>, StoreError> {
        if self.config.replicas > 1 {
            return match self.stream.get_last_raw_message_by_subject(subject).await {
                Ok(message) => Ok(Some(message)),
                Err(err) if err.kind() == stream::LastRawMessageErrorKind::NoMessageFound => {
                    Ok(None)
                }
                Err(err) => Err(StoreError::unavailable(err)),
            };
        }
        match self.stream.direct_get_last_for_subject(subject).await {
            Ok(message) => Ok(Some(message)),
            Err(err) if err.kind() == stream::DirectGetErrorKind::NotFound => Ok(None),
            Err(err) => Err(StoreError::unavailable(err)),
        }
    }

    /// A certificate's current state and version: the cached state, if any, brought up to
    /// date with every message the log holds after it.
    pub async fn load(&self, id: &CertificateId) -> Result<Loaded, StoreError> {
        let Loaded {
            mut state,
            mut version,
        } = self.cache.get(id).unwrap_or(Loaded {
            state: None,
            version: 0,
        });
        let subject = self.subject(id);
        let mut changed = false;
        while let Some(message) = self.next_for_subject(&subject, version + 1).await? {
            let batch = self.parse(&message)?;
            state = replay(state, &batch.meta.command_id, &batch.events);
            version = batch.sequence;
            changed = true;
        }
        let loaded = Loaded { state, version };
        if changed {
            self.cache.put(id, loaded.clone());
        }
        Ok(loaded)
    }

    /// The state this instance last saw of a certificate, without asking the log, if it
    /// has one: what a command is decided on first, since the expected sequence of its
    /// append refuses it if the certificate has moved on since.
    pub fn cached(&self, id: &CertificateId) -> Option<Loaded> {
        self.cache.get(id)
    }

    /// Appends one command's events to a certificate, if its last sequence is still
    /// `expected` (0: the certificate has no events yet).
    pub async fn append(
        &self,
        id: &CertificateId,
        expected: u64,
        events: &[Event],
        meta: &CommandMeta,
    ) -> Result<Appended, StoreError> {
        let span = info_span!(
            "append",
            certificate = %id,
            command = %meta.command_id,
            correlation = %meta.correlation_id,
            expected,
            sequence = tracing::field::Empty,
        );
        let appended = self
            .append_once(id, expected, events, meta)
            .instrument(span.clone())
            .await;
        match &appended {
            Ok(appended) => {
                span.record("sequence", appended.sequence);
                if !appended.duplicate {
                    for event in events {
                        instruments()
                            .events_appended
                            .add(1, &[KeyValue::new("type", event.type_name())]);
                    }
                }
            }
            Err(StoreError::Conflict { .. }) => instruments().append_conflicts.add(1, &[]),
            Err(_) => {}
        }
        appended
    }

    async fn append_once(
        &self,
        id: &CertificateId,
        expected: u64,
        events: &[Event],
        meta: &CommandMeta,
    ) -> Result<Appended, StoreError> {
        // The command travels in the body (one decode for every follower); the headers are
        // the two JetStream acts on.
        let mut headers = HeaderMap::new();
        headers.insert(header::NATS_MESSAGE_ID, meta.command_id.0.as_str());
        headers.insert(
            header::NATS_EXPECTED_LAST_SUBJECT_SEQUENCE,
            expected.to_string().as_str(),
        );
        let payload = Bytes::from(encode_recorded(events, Some(meta.to_record())));
        let subject = self.subject(id);

        let mut attempt = 0;
        loop {
            attempt += 1;
            let publish = PublishMessage::build()
                .headers(headers.clone())
                .payload(payload.clone());
            let result = match self.js.send_publish(subject.clone(), publish).await {
                Ok(ack) => ack.await,
                Err(err) => Err(err),
            };
            match result {
                Ok(ack) => {
                    return Ok(Appended {
                        sequence: ack.sequence,
                        duplicate: ack.duplicate,
                    });
                }
                Err(err) if is_wrong_last_sequence(&err) => {
                    // An earlier try of this very command may be what the subject ends with
                    // (nats-server 2.10 and later check the expected sequence before the
                    // duplicate window): then it is a duplicate, not a conflict.
                    return match self.last_for_subject(&subject).await? {
                        Some(last) if carries_message_id(&last, &meta.command_id.0) => {
                            Ok(Appended {
                                sequence: last.sequence,
                                duplicate: true,
                            })
                        }
                        _ => Err(StoreError::Conflict {
                            id: id.clone(),
                            expected,
                        }),
                    };
                }
                Err(err)
                    if matches!(
                        err.kind(),
                        jetstream::context::PublishErrorKind::TimedOut
                            | jetstream::context::PublishErrorKind::BrokenPipe
                    ) && attempt < self.config.publish_attempts =>
                {
                    // Ambiguous: it may have landed. The same message id makes the retry
                    // safe: JetStream answers a landed one as a duplicate.
                    warn!(%id, attempt, error = %err, "append not acknowledged, sending again");
                    instruments().append_retries.add(1, &[]);
                }
                Err(err) => return Err(StoreError::unavailable(err)),
            }
        }
    }

    /// Appends a command's events decided on a state that may be stale (GEN-2: the append
    /// is refused with [`StoreError::Conflict`] unless the certificate's last sequence is
    /// still `expected`), and keeps `after`, the certificate once they are applied, in this
    /// instance's cache.
    pub async fn append_command(
        &self,
        id: &CertificateId,
        expected: u64,
        events: &[Event],
        meta: &CommandMeta,
        after: &State,
    ) -> Result<Appended, StoreError> {
        let appended = self.append(id, expected, events, meta).await?;
        if !appended.duplicate {
            self.cache.put(
                id,
                Loaded {
                    state: after.clone(),
                    version: appended.sequence,
                },
            );
        }
        Ok(appended)
    }

    /// Runs one command against a certificate: load, decide, append; when another command
    /// got there first, decide again on the new state (GEN-2). A decision with no events
    /// (a retry of an applied command, GEN-1) appends nothing.
    pub async fn execute<E, F>(
        &self,
        id: &CertificateId,
        meta: &CommandMeta,
        mut decide: F,
    ) -> Result<Executed, ExecuteError<E>>
    where
        E: StdError + 'static,
        F: FnMut(&State) -> Result<Vec<Event>, E>,
    {
        let mut conflicts = 0;
        loop {
            let loaded = self.load(id).await?;
            let events = decide(&loaded.state).map_err(ExecuteError::Refused)?;
            if events.is_empty() {
                return Ok(Executed {
                    state: loaded.state,
                    appended: false,
                });
            }
            let after = replay(loaded.state, &meta.command_id, &events);
            match self
                .append_command(id, loaded.version, &events, meta, &after)
                .await
            {
                Ok(Appended {
                    duplicate: false, ..
                }) => {
                    return Ok(Executed {
                        state: after,
                        appended: true,
                    });
                }
                Ok(Appended {
                    duplicate: true, ..
                }) => {
                    return Ok(Executed {
                        state: self.load_applied(id, meta).await?,
                        appended: false,
                    });
                }
                Err(StoreError::Conflict { .. }) if conflicts + 1 < self.config.decide_attempts => {
                    conflicts += 1;
                    debug!(%id, conflicts, "lost an append race, deciding again");
                }
                Err(err) => return Err(err.into()),
            }
        }
    }

    /// The certificate as the log holds it now, after an append of `meta`'s command was
    /// answered as a duplicate: the same command landed before (a concurrent retry).
    /// Message ids are unique across the stream, so the duplicate may instead be this
    /// request id used on another certificate: [`StoreError::RequestIdReused`].
    pub async fn load_applied(
        &self,
        id: &CertificateId,
        meta: &CommandMeta,
    ) -> Result<State, StoreError> {
        let loaded = self.load(id).await?;
        let applied = loaded
            .state
            .as_ref()
            .is_some_and(|cert| cert.applied_commands.contains(&meta.command_id));
        if applied {
            Ok(loaded.state)
        } else {
            Err(StoreError::RequestIdReused)
        }
    }

    /// [`EventStore::execute`] for a reaction, whose decision never refuses: it finds the
    /// work to do on the current state, or none.
    pub async fn execute_reaction<F>(
        &self,
        id: &CertificateId,
        meta: &CommandMeta,
        mut decide: F,
    ) -> Result<Executed, StoreError>
    where
        F: FnMut(&State) -> Vec<Event>,
    {
        match self
            .execute(id, meta, |state| {
                Ok::<_, std::convert::Infallible>(decide(state))
            })
            .await
        {
            Ok(executed) => Ok(executed),
            Err(ExecuteError::Store(err)) => Err(err),
            Err(ExecuteError::Refused(never)) => match never {},
        }
    }

    /// The stream sequence of certificate `id`'s last message (0: none).
    pub async fn last_sequence_of(&self, id: &CertificateId) -> Result<u64, StoreError> {
        Ok(self
            .last_for_subject(&self.subject(id))
            .await?
            .map_or(0, |message| message.sequence))
    }

    /// The stream sequence of the last event of any certificate (0: none).
    pub async fn last_sequence(&self) -> Result<u64, StoreError> {
        let info = self
            .stream
            .get_info()
            .await
            .map_err(StoreError::unavailable)?;
        Ok(info.state.last_sequence)
    }
}

/// A stream that keeps the latest message of each subject: the shape of the outcomes, key
/// and CRL stores. `max_age` zero keeps messages for ever.
pub(crate) fn latest_per_subject(
    name: &str,
    description: &str,
    prefix: &str,
    max_age: Duration,
) -> stream::Config {
    stream::Config {
        name: name.into(),
        description: Some(description.into()),
        subjects: vec![format!("{prefix}.>")],
        storage: stream::StorageType::File,
        max_age,
        max_messages_per_subject: 1,
        allow_direct: true,
        ..Default::default()
    }
}

/// A work queue: each task kept until a worker acknowledges it, a repeated offer within two
/// minutes stored once. The shape of the validation checks and the review queue.
pub(crate) fn work_queue(name: &str, description: &str, prefix: &str) -> stream::Config {
    stream::Config {
        name: name.into(),
        description: Some(description.into()),
        subjects: vec![format!("{prefix}.>")],
        retention: stream::RetentionPolicy::WorkQueue,
        storage: stream::StorageType::File,
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    }
}

/// The workers' shared consumer of a [`work_queue`]: a task not acknowledged within
/// `ack_wait` is offered again, and any number may be pending, since each open piece of
/// work holds one until it ends.
pub(crate) fn work_queue_consumer(
    name: &str,
    description: &str,
    ack_wait: Duration,
) -> consumer::pull::Config {
    consumer::pull::Config {
        durable_name: Some(name.into()),
        description: Some(description.into()),
        ack_policy: consumer::AckPolicy::Explicit,
        ack_wait,
        max_ack_pending: -1,
        ..Default::default()
    }
}

/// Binds to one of the streams [`latest_per_subject`] describes.
/// A stream `certd provision` made, attached to: what a resource of the store holds.
#[derive(Clone)]
pub(crate) struct Attached {
    pub(crate) js: jetstream::Context,
    pub(crate) stream: stream::Stream,
}

impl std::fmt::Debug for Attached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attached")
            .field("stream", &self.stream.cached_info().config.name)
            .finish()
    }
}

impl Attached {
    /// Attaches to the stream `name`, which `certd provision` made.
    pub(crate) async fn to(client: async_nats::Client, name: &str) -> Result<Self, StoreError> {
        let js = jetstream::new(client);
        let stream = crate::layout::attach_stream(&js, name).await?;
        Ok(Attached { js, stream })
    }

    /// The latest message on `subject`, or `None` when it has none.
    pub(crate) async fn last(
        &self,
        subject: String,
    ) -> Result<Option<jetstream::message::StreamMessage>, StoreError> {
        match self.stream.direct_get_last_for_subject(subject).await {
            Ok(message) => Ok(Some(message)),
            Err(err) if err.kind() == stream::DirectGetErrorKind::NotFound => Ok(None),
            Err(err) => Err(StoreError::Unavailable(err.into())),
        }
    }

    /// Publishes `payload` with `headers` to `subject` and waits until the stream has stored
    /// it (or, with a `Nats-Msg-Id` seen within the duplicate window, stored it before).
    pub(crate) async fn publish_acked(
        &self,
        subject: String,
        headers: HeaderMap,
        payload: Bytes,
    ) -> Result<(), StoreError> {
        self.js
            .publish_with_headers(subject, headers, payload)
            .await
            .map_err(|err| StoreError::Unavailable(err.into()))?
            .await
            .map_err(|err| StoreError::Unavailable(err.into()))?;
        Ok(())
    }

    /// Publishes `message` to `subject` and waits for the stream's acknowledgement: the
    /// message's sequence, or `None` when the stream refused it because the subject's last
    /// sequence was not the one the message expected.
    pub(crate) async fn publish_expecting(
        &self,
        subject: String,
        message: async_nats::jetstream::message::PublishMessage,
    ) -> Result<Option<u64>, StoreError> {
        let acked = match self.js.send_publish(subject, message).await {
            Ok(ack) => ack.await,
            Err(err) => Err(err),
        };
        match acked {
            Ok(ack) => Ok(Some(ack.sequence)),
            // Also the clustered form of the refusal, as the event log's appends read it.
            Err(err) if is_wrong_last_sequence(&err) => Ok(None),
            Err(err) => Err(StoreError::Unavailable(err.into())),
        }
    }
}

/// Whether `message` was published with `Nats-Msg-Id` `id`.
fn carries_message_id(message: &jetstream::message::StreamMessage, id: &str) -> bool {
    message
        .headers
        .get(header::NATS_MESSAGE_ID)
        .is_some_and(|value| value.as_str() == id)
}

pub(crate) fn is_wrong_last_sequence(err: &jetstream::context::PublishError) -> bool {
    if err.kind() == jetstream::context::PublishErrorKind::WrongLastSequence {
        return true;
    }
    err.source()
        .and_then(|source| source.downcast_ref::<jetstream::Error>())
        .is_some_and(|js| {
            matches!(
                js.error_code().0,
                WRONG_LAST_SEQUENCE | WRONG_LAST_SEQUENCE_CLUSTERED
            )
        })
}

fn offset_to_timestamp(time: async_nats::datetime::DateTime) -> Timestamp {
    Timestamp::from_unix_millis((time.unix_timestamp_nanos() / 1_000_000) as i64)
}

impl RecordedBatch {
    fn parse(
        subject: &str,
        sequence: u64,
        recorded_at: Timestamp,
        headers: &HeaderMap,
        payload: &[u8],
        subject_prefix: &str,
    ) -> Result<Self, StoreError> {
        let corrupt = |source| StoreError::Corrupt { sequence, source };
        let id = subject
            .strip_prefix(subject_prefix)
            .and_then(|rest| rest.strip_prefix(".certificate."))
            .ok_or(ConvertError::Missing("certificate subject"))
            .map_err(corrupt)?;
        let certificate_id = CertificateId::parse(id)
            .map_err(ConvertError::Invalid)
            .map_err(corrupt)?;
        let (events, record) = decode_recorded(payload).map_err(corrupt)?;
        // Batches stored before the body recorded the command carry it in headers.
        let meta = match record {
            Some(record) => CommandMeta::from_record(record),
            None => CommandMeta::from_headers(headers),
        }
        .ok_or(ConvertError::Missing("the command that appended the batch"))
        .map_err(corrupt)?;
        Ok(RecordedBatch {
            certificate_id,
            sequence,
            recorded_at,
            meta,
            events,
        })
    }
}

/// A consumer's message as its stream sequence and batch (or why the batch is unreadable).
pub(crate) fn read_delivered(
    message: &jetstream::Message,
    subject_prefix: &str,
) -> Result<(u64, Result<RecordedBatch, StoreError>), StoreError> {
    let info = message.info().map_err(StoreError::Unavailable)?;
    let sequence = info.stream_sequence;
    let empty = HeaderMap::new();
    let batch = RecordedBatch::parse(
        &message.subject,
        sequence,
        offset_to_timestamp(info.published),
        message.headers.as_ref().unwrap_or(&empty),
        &message.payload,
        subject_prefix,
    );
    Ok((sequence, batch))
}
