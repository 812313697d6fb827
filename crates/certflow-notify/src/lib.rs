//! The notifier: tells an account what happens to its certificates and what it must do, by
//! HTTPS webhooks signed as the Standard Webhooks specification says and by email through
//! the operator's SMTP relay.
//!
//! It works on three feeds:
//! - **Reactions** (durable consumer `notifier` on the event log): each event worth telling
//!   ([`notices::plan`]) becomes one delivery per endpoint of the certificate's account that
//!   wants it, queued on `CERTFLOW_NOTIFICATIONS` before the event is acknowledged; new
//!   challenges also queue a reminder for 24 hours before their deadline.
//! - **Deliveries** (the queue's consumer `notifier-deliveries`, worked in `background`):
//!   one attempt per delivery, then done, handed back with the retry schedule's delay, or
//!   moved to the dead letters once the schedule gives up (3 days). Every attempt of a
//!   notification carries the same id.
//! - **Requests** (`certflow.cmd.notify.>`): an account's endpoints and dead letters.
//!
//! ## Layout
//!
//! - [`notices`]: which events make which notifications, their ids, bodies and email text.
//! - [`schedule`]: the retry schedule.
//! - [`signature`]: Standard Webhooks signatures.
//! - [`endpoints`]: the endpoints an account registers, and which URLs and addresses pass.
//! - `deliver` (private): the delivery queue's worker and the HTTPS and SMTP senders.
//! - `api` (private): the requests the gateway forwards.

#![forbid(unsafe_code)]

pub mod endpoints;
pub mod notices;
pub mod schedule;
pub mod signature;

mod api;
mod deliver;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use certflow_bus::{CancellationToken, Request, not_available, subjects};
use certflow_proto::bus::v1::Reply;
use certflow_runtime::{ReactionError, Reacts, Service, ServiceSpec};
use certflow_store::{EventStore, NotifyStore, RecordedBatch, StoreError};
use opentelemetry::KeyValue;

/// The service's name in logs, actors and consumer names.
const SERVICE: &str = "notifier";

/// How the notifier delivers.
#[derive(Clone)]
pub struct NotifyConfig {
    /// When failed deliveries are tried again, and when they are given up.
    pub retry: schedule::RetrySchedule,
    /// How long before a validation's deadline the reminder goes out.
    pub remind_before: Duration,
    /// Networks webhooks may be delivered to although the address policy refuses them: an
    /// operator's own, or loopback for tests. Default: public addresses only.
    pub allowed_networks: Vec<ipnet::IpNet>,
    /// DNS servers that resolve webhook hosts; empty: the system's resolv.conf.
    pub dns_servers: Vec<SocketAddr>,
    /// Root certificates (PEM) trusted beside the public web PKI's, for receivers with a
    /// private CA.
    pub extra_roots_pem: Vec<Vec<u8>>,
    /// The SMTP relay, e.g. `smtp://relay.example:587?tls=required` (lettre's URL form);
    /// none: no email.
    pub smtp_url: Option<String>,
    /// The sender of notification email.
    pub email_from: Option<String>,
    /// Per-attempt timeout: DNS, connect and the whole exchange.
    pub timeout: Duration,
    /// Most deliveries one instance runs at once.
    pub max_concurrent_deliveries: usize,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            retry: schedule::RetrySchedule::default(),
            remind_before: Duration::from_secs(24 * 3600),
            allowed_networks: Vec::new(),
            dns_servers: Vec::new(),
            extra_roots_pem: Vec::new(),
            smtp_url: None,
            email_from: None,
            timeout: Duration::from_secs(10),
            max_concurrent_deliveries: 32,
        }
    }
}

/// The relay URL may carry its password: it stays out of logs.
impl std::fmt::Debug for NotifyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotifyConfig")
            .field("retry", &self.retry)
            .field("remind_before", &self.remind_before)
            .field("allowed_networks", &self.allowed_networks)
            .field("dns_servers", &self.dns_servers)
            .field("smtp_url", &self.smtp_url.as_ref().map(|_| "<redacted>"))
            .field("email_from", &self.email_from)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl NotifyConfig {
    /// How long an instance holds a delivery: a few attempt timeouts. `certd provision`
    /// sets it on the queue's consumer; a delivery held by an instance that died comes back
    /// after it, with the same id.
    pub fn ack_wait(&self) -> Duration {
        self.timeout
            .saturating_mul(3)
            .saturating_add(Duration::from_secs(5))
    }
}

/// Errors starting the notifier.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("notifier configuration: {0}")]
    Config(String),
}

/// The notifier: the log (to read a certificate's account and state), its own streams,
/// and its senders.
#[derive(Debug, Clone)]
pub struct NotifierService {
    store: EventStore,
    notify: NotifyStore,
    senders: deliver::Senders,
    config: Arc<NotifyConfig>,
}

impl NotifierService {
    /// The service on `store`, attached to its streams, sending as `config` says.
    pub async fn new(
        client: async_nats::Client,
        store: EventStore,
        config: NotifyConfig,
    ) -> Result<Self, NotifyError> {
        let senders = deliver::Senders::new(&config)?;
        // Every channel's dead-letter count starts at zero, so the first dead letter is an
        // increase an alert sees.
        for channel in ["webhook", "email"] {
            certflow_telemetry::instruments()
                .notify_dead_letters
                .add(0, &[KeyValue::new("channel", channel)]);
        }
        Ok(NotifierService {
            notify: NotifyStore::attach(client).await?,
            store,
            senders,
            config: Arc::new(config),
        })
    }
}

impl Service for NotifierService {
    const SPEC: ServiceSpec =
        ServiceSpec::answering(SERVICE, &[subjects::NOTIFY]).reacting(Reacts::STANDARD);

    async fn answer(&self, request: Request) -> Reply {
        match request.subject.as_str() {
            subjects::CREATE_ENDPOINT => api::create_endpoint(self, request).await,
            subjects::LIST_ENDPOINTS => api::list_endpoints(self, request).await,
            subjects::ROTATE_ENDPOINT_SECRET => api::rotate_secret(self, request).await,
            subjects::DELETE_ENDPOINT => api::delete_endpoint(self, request).await,
            subjects::LIST_DEAD_LETTERS => api::list_dead_letters(self, request).await,
            subjects::REPLAY_DEAD_LETTER => api::replay_dead_letter(self, request).await,
            other => not_available(SERVICE, other),
        }
    }

    async fn react(&self, batch: RecordedBatch) -> Result<(), ReactionError> {
        react(self, batch).await
    }

    /// Works the delivery queue.
    async fn background(&self, shutdown: CancellationToken) {
        deliver::work(self.clone(), shutdown).await;
    }
}

/// Queues what the batch's events tell the certificate's account; the event is acknowledged
/// (by the runtime) only after every delivery is stored.
async fn react(service: &NotifierService, batch: RecordedBatch) -> Result<(), ReactionError> {
    let worth_telling = batch.events.iter().any(|event| {
        matches!(
            event,
            certflow_domain::Event::ValidationChallengesIssued(_)
                | certflow_domain::Event::Revoked(_)
                | certflow_domain::Event::RevocationFailed(_)
                | certflow_domain::Event::ReviewRejected(_)
                | certflow_domain::Event::ReissueCompleted(_)
        )
    });
    if !worth_telling {
        return Ok(());
    }
    // What is told comes from the events; the state gives the account and the names,
    // which later events do not change.
    let state = service.store.load(&batch.certificate_id).await?.state;
    // A revocation a reviewer rejected fails in a later batch than the rejection: its
    // comment is read back from the history.
    let failed_by_review = batch.events.iter().any(|event| {
        matches!(
            event,
            certflow_domain::Event::RevocationFailed(failed)
                if failed.failure == certflow_domain::RevocationFailure::ReviewRejected
        )
    });
    let rejection = if failed_by_review {
        let history = service.store.history(&batch.certificate_id).await?;
        let earlier: Vec<certflow_domain::Event> = history
            .into_iter()
            .filter(|recorded| recorded.sequence < batch.sequence)
            .flat_map(|recorded| recorded.events)
            .collect();
        notices::last_rejection_comment(&earlier)
    } else {
        None
    };
    let planned = notices::plan(
        &state,
        batch.sequence,
        &batch.events,
        rejection.as_deref(),
        service.config.remind_before,
    );
    let Some(account) = state
        .as_ref()
        .map(|certificate| certflow_domain::account_key(&certificate.account))
    else {
        return Ok(());
    };
    if !planned.notices.is_empty() {
        // One read of the account's endpoints for the whole batch.
        let (endpoints, _) = endpoints::read(&service.notify, &account).await?;
        for notice in &planned.notices {
            deliver::fan_out(service, &account, &endpoints, notice).await?;
        }
    }
    for reminder in planned.reminders {
        deliver::enqueue(service, &account, &deliver::Task::Remind(reminder)).await?;
    }
    Ok(())
}
