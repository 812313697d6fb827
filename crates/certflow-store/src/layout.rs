//! Every JetStream resource certflow uses, in one list ([`Layout::resources`]), and
//! [`provision`], which creates them or brings their settings up to date.
//!
//! Services never create, change or delete streams or consumers: they bind to what is here
//! and fail with [`StoreError::NotProvisioned`] until it exists, so their NATS users need no
//! JetStream administration rights at all. The operator runs `certd provision` (this
//! function, as the NATS user `operator`) before the services start, and again after an
//! upgrade or a change of these settings; running it twice changes nothing.

use std::time::Duration;

use async_nats::jetstream::consumer::IntoConsumerConfig;
use async_nats::jetstream::{self, consumer, stream};
use serde::Serialize;

use crate::store::{StoreConfig, StoreError};
use crate::{
    AcmeStore, CrlStore, DocumentStore, KeyIndex, KeyStore, NotifyStore, Outcomes, ReissueLocks,
    ReviewLeases, ReviewQueue, ValidationChecks,
};

/// The settings JetStream resources are made with.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The event stream's name, subjects, replicas, duplicate window and redelivery delay;
    /// `replicas` applies to every stream.
    pub store: StoreConfig,
    /// How long a command's first outcome is kept for retries (GEN-1).
    pub outcome_ttl: Duration,
    /// How long a reviewer may hold a review task before it is offered to another.
    pub review_ack_wait: Duration,
    /// How long a validation check task is held by the instance probing it.
    pub check_ack_wait: Duration,
    /// How long a notification delivery is held by the notifier sending it.
    pub notify_ack_wait: Duration,
    /// The services that react to the log, each through a durable consumer named like it,
    /// with its redelivery delay: how long an event a killed instance was handling waits
    /// before another instance gets it. The services declare these (their `ServiceSpec`).
    pub reacting: Vec<(String, Duration)>,
}

impl Default for Layout {
    fn default() -> Self {
        Layout {
            store: StoreConfig::default(),
            outcome_ttl: Duration::from_secs(24 * 3600),
            review_ack_wait: Duration::from_secs(15 * 60),
            check_ack_wait: Duration::from_secs(25),
            notify_ack_wait: Duration::from_secs(35),
            reacting: Vec::new(),
        }
    }
}

/// One JetStream resource.
#[derive(Debug, Clone)]
pub enum Resource {
    /// A stream (object-store buckets are streams `OBJ_<bucket>` too).
    Stream(Box<stream::Config>),
    /// A durable pull consumer of a stream.
    Consumer {
        stream: String,
        config: Box<consumer::pull::Config>,
    },
}

impl Resource {
    /// How the resource is named in reports: `STREAM` or `STREAM/consumer`.
    pub fn name(&self) -> String {
        match self {
            Resource::Stream(config) => config.name.clone(),
            Resource::Consumer { stream, config } => {
                format!("{stream}/{}", config.durable_name.as_deref().unwrap_or(""))
            }
        }
    }
}

impl Layout {
    /// Every stream and consumer, streams first.
    pub fn resources(&self) -> Vec<Resource> {
        let replicas = self.store.replicas.max(1);
        let streams = [
            self.store.events_stream(),
            Outcomes::stream_config(self.outcome_ttl),
            KeyStore::stream_config(),
            CrlStore::stream_config(),
            KeyIndex::stream_config(),
            ValidationChecks::stream_config(),
            ReissueLocks::stream_config(),
            AcmeStore::nonces_config(),
            AcmeStore::accounts_config(),
            ReviewQueue::stream_config(),
            ReviewLeases::stream_config(self.review_ack_wait),
            DocumentStore::stream_config(
                DocumentStore::DOCUMENTS,
                "stamped documents of revocations",
                Duration::ZERO,
            ),
            DocumentStore::stream_config(
                DocumentStore::UPLOADS,
                "uploaded documents waiting to be judged",
                DocumentStore::UPLOAD_MAX_AGE,
            ),
            NotifyStore::endpoints_config(),
            NotifyStore::queue_config(),
            NotifyStore::dead_config(),
        ];
        let mut resources: Vec<Resource> = streams
            .into_iter()
            .map(|config| Resource::Stream(Box::new(as_recorded(config, replicas))))
            .collect();
        for (service, ack_wait) in &self.reacting {
            resources.push(Resource::Consumer {
                stream: self.store.stream.clone(),
                config: Box::new(
                    self.store.reactions_consumer(
                        service,
                        self.store.redelivery_after.unwrap_or(*ack_wait),
                    ),
                ),
            });
        }
        resources.push(Resource::Consumer {
            stream: ValidationChecks::STREAM.into(),
            config: Box::new(ValidationChecks::consumer_config(
                self.store.redelivery_after.unwrap_or(self.check_ack_wait),
            )),
        });
        resources.push(Resource::Consumer {
            stream: NotifyStore::QUEUE.into(),
            config: Box::new(NotifyStore::consumer_config(
                self.store.redelivery_after.unwrap_or(self.notify_ack_wait),
            )),
        });
        resources.push(Resource::Consumer {
            stream: ReviewQueue::STREAM.into(),
            config: Box::new(ReviewQueue::consumer_config(self.review_ack_wait)),
        });
        resources
    }
}

/// `config` with `replicas`, and its limits as the server records them: unlimited is -1,
/// not 0, so a provisioned stream compares equal to what it asked for.
fn as_recorded(config: stream::Config, replicas: usize) -> stream::Config {
    let unlimited = |limit: i64| if limit == 0 { -1 } else { limit };
    stream::Config {
        num_replicas: replicas,
        max_bytes: unlimited(config.max_bytes),
        max_messages: unlimited(config.max_messages),
        max_messages_per_subject: unlimited(config.max_messages_per_subject),
        max_consumers: if config.max_consumers == 0 {
            -1
        } else {
            config.max_consumers
        },
        ..config
    }
}

/// What [`provision`] did to each resource.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Provisioned {
    /// Made now.
    pub created: Vec<String>,
    /// Existed with other settings, now brought up to date.
    pub updated: Vec<String>,
    /// Existed as they should.
    pub unchanged: Vec<String>,
}

/// Creates every resource of `layout` that does not exist and updates the settings of those
/// that differ. Run it as a NATS user that may administer JetStream (`operator`).
pub async fn provision(
    client: async_nats::Client,
    layout: &Layout,
) -> Result<Provisioned, StoreError> {
    let mut js = jetstream::new(client);
    js.set_timeout(layout.store.request_timeout);
    let mut done = Provisioned::default();
    for resource in layout.resources() {
        let name = resource.name();
        let outcome = match &resource {
            Resource::Stream(config) => provision_stream(&js, config).await,
            Resource::Consumer { stream, config } => provision_consumer(&js, stream, config).await,
        }
        .map_err(|err| StoreError::Provision {
            resource: name.clone(),
            source: err,
        })?;
        match outcome {
            Outcome::Created => done.created.push(name),
            Outcome::Updated => done.updated.push(name),
            Outcome::Unchanged => done.unchanged.push(name),
        }
    }
    Ok(done)
}

enum Outcome {
    Created,
    Updated,
    Unchanged,
}

async fn provision_stream(
    js: &jetstream::Context,
    desired: &stream::Config,
) -> Result<Outcome, async_nats::Error> {
    let mut stream = match js.get_stream(&desired.name).await {
        Ok(stream) => stream,
        Err(err) if is_stream_not_found(&err) => {
            js.create_stream(desired.clone()).await?;
            return Ok(Outcome::Created);
        }
        Err(err) => return Err(err.into()),
    };
    let current = stream.info().await?.config.clone();
    if settled(&current, desired)? {
        return Ok(Outcome::Unchanged);
    }
    js.update_stream(desired).await?;
    Ok(Outcome::Updated)
}

async fn provision_consumer(
    js: &jetstream::Context,
    stream: &str,
    desired: &consumer::pull::Config,
) -> Result<Outcome, async_nats::Error> {
    let stream = js.get_stream(stream).await?;
    let name = desired.durable_name.clone().unwrap_or_default();
    match stream.consumer_info(&name).await {
        Ok(info) => {
            let wanted = desired.clone().into_consumer_config();
            if settled(&info.config, &wanted)? {
                return Ok(Outcome::Unchanged);
            }
            stream.update_consumer(desired.clone()).await?;
            Ok(Outcome::Updated)
        }
        Err(err) if is_consumer_not_found(&err) => {
            stream.create_consumer(desired.clone()).await?;
            Ok(Outcome::Created)
        }
        Err(err) => Err(err.into()),
    }
}

/// Whether every setting `desired` names (as it serialises) is already what `current` has.
fn settled<T: Serialize>(current: &T, desired: &T) -> Result<bool, serde_json::Error> {
    let current = serde_json::to_value(current)?;
    let desired = serde_json::to_value(desired)?;
    let (Some(current), Some(desired)) = (current.as_object(), desired.as_object()) else {
        return Ok(false);
    };
    Ok(desired
        .iter()
        .all(|(key, value)| current.get(key) == Some(value)))
}

fn is_stream_not_found(err: &jetstream::context::GetStreamError) -> bool {
    matches!(
        err.kind(),
        jetstream::context::GetStreamErrorKind::JetStream(ref js)
            if js.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND
    )
}

fn is_consumer_not_found(err: &jetstream::context::ConsumerInfoError) -> bool {
    err.kind() == jetstream::context::ConsumerInfoErrorKind::NotFound
}

/// Binds to stream `name`, which [`provision`] made.
pub(crate) async fn attach_stream(
    js: &jetstream::Context,
    name: &str,
) -> Result<stream::Stream, StoreError> {
    js.get_stream(name).await.map_err(|err| {
        if is_stream_not_found(&err) {
            StoreError::NotProvisioned(name.to_string())
        } else {
            StoreError::Unavailable(err.into())
        }
    })
}

/// Binds to durable consumer `name` of `stream`, which [`provision`] made.
pub(crate) async fn attach_consumer(
    stream: &stream::Stream,
    name: &str,
) -> Result<consumer::PullConsumer, StoreError> {
    match stream.consumer_info(name).await {
        Ok(_) => {}
        Err(err) if is_consumer_not_found(&err) => {
            let stream = &stream.cached_info().config.name;
            return Err(StoreError::NotProvisioned(format!("{stream}/{name}")));
        }
        Err(err) => return Err(StoreError::Unavailable(err.into())),
    }
    stream
        .get_consumer(name)
        .await
        .map_err(StoreError::Unavailable)
}
