//! The validation service: issues domain-ownership challenges and proves them against real
//! DNS and HTTP (REV-10, REV-11, REI-9).
//!
//! It works by events, on three feeds:
//! - **Reactions** (durable consumer `validation` on the event log): a `RevocationRequested`
//!   on the domain-validation path, or a `ReissueRequested` that needs validation, gets its
//!   challenges (`ValidationChallengesIssued`), and each set of challenges gets a check task.
//! - **Checks** (work queue `CERTFLOW_VALIDATION_CHECKS`, one task per set of challenges):
//!   a task probes every open challenge, appends `DomainValidated` for each proven domain
//!   and `ValidationPassed` once all are, or `ValidationExpired` once the deadline is past;
//!   until then it is handed back to JetStream with a delay that backs off, never beyond the
//!   deadline. The schedule lives in JetStream and the state in the log, so restarts lose
//!   nothing, and any number of instances share the work.
//! - **Requests** (`certflow.cmd.validation.check`): `CheckValidation` probes at once.
//!
//! Every append is decided on the certificate's current state with optimistic concurrency,
//! so two instances racing on one certificate append its outcome once.
//!
//! ## Layout
//!
//! - [`address`] (from `certflow-runtime`): which addresses the file probe may connect to.
//! - [`probe`]: the DNS (`TXT _dnsauth.<domain>`) and HTTP file probes, and what each saw.
//! - `checks` (private): working the check queue, and the check `CheckValidation` asks for now.

#![forbid(unsafe_code)]

/// The address policy, shared with every service that connects on a customer's behalf.
pub use certflow_runtime::address;
pub mod probe;

mod checks;

use certflow_telemetry::propagation;
use std::sync::Arc;
use std::time::Duration;

use certflow_bus::{CancellationToken, Request, not_available, subjects};
use certflow_domain::{Event, Policy, RevocationPath, reactions};
use certflow_proto::bus::v1::Reply;
use certflow_runtime::{ReactionError, Reacts, Service, ServiceSpec, reaction_meta};
use certflow_store::{EventStore, RecordedBatch, StoreError, ValidationChecks};

pub use probe::{ProbeConfig, Prober};

/// The service's name in logs, actors and consumer names.
const SERVICE: &str = "validation";

/// How the validation service probes and how often it looks again.
#[derive(Debug, Clone)]
pub struct ValidationConfig {
    pub probe: ProbeConfig,
    /// The first wait before a pending challenge is checked again; doubled each time.
    pub recheck_initial: Duration,
    /// The longest wait between two checks.
    pub recheck_max: Duration,
    /// Most probes one instance runs at once.
    pub max_concurrent_probes: usize,
}

impl ValidationConfig {
    /// How long an instance may hold a check task: a task is held only while its probes run
    /// (at most a few probe timeouts), and one delivered to an instance that has just
    /// stopped (its pull request outlives it) comes back after this, so it stays close to
    /// the real work. `certd provision` sets it on the check queue's consumer.
    pub fn check_ack_wait(&self) -> Duration {
        self.probe
            .timeout
            .saturating_mul(4)
            .saturating_add(Duration::from_secs(5))
    }
}

impl Default for ValidationConfig {
    fn default() -> Self {
        ValidationConfig {
            probe: ProbeConfig::default(),
            recheck_initial: Duration::from_secs(30),
            recheck_max: Duration::from_secs(600),
            max_concurrent_probes: 64,
        }
    }
}

/// Errors starting the service.
#[derive(Debug, thiserror::Error)]
pub enum ValidationError {
    #[error(transparent)]
    Bus(#[from] certflow_bus::BusError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Probe(#[from] probe::ProbeError),
}

/// The validation service: the log, the check queue, the prober and its limits.
#[derive(Debug, Clone)]
pub struct ValidationService {
    store: EventStore,
    checks: ValidationChecks,
    prober: Prober,
    probe_slots: Arc<tokio::sync::Semaphore>,
    policy: Arc<Policy>,
    config: Arc<ValidationConfig>,
}

impl ValidationService {
    /// The service on `store`, attached to the check queue, with a prober as `config` says.
    pub async fn new(
        client: async_nats::Client,
        store: EventStore,
        policy: Arc<Policy>,
        config: ValidationConfig,
    ) -> Result<Self, ValidationError> {
        Ok(ValidationService {
            prober: Prober::new(config.probe.clone())?,
            checks: ValidationChecks::attach(client).await?,
            probe_slots: Arc::new(tokio::sync::Semaphore::new(
                config.max_concurrent_probes.max(1),
            )),
            store,
            policy,
            config: Arc::new(config),
        })
    }
}

impl Service for ValidationService {
    const SPEC: ServiceSpec =
        ServiceSpec::answering(SERVICE, &[subjects::VALIDATION]).reacting(Reacts::STANDARD);

    async fn answer(&self, request: Request) -> Reply {
        match request.subject.as_str() {
            subjects::CHECK_VALIDATION => checks::check_on_request(self, request).await,
            other => not_available(SERVICE, other),
        }
    }

    async fn react(&self, batch: RecordedBatch) -> Result<(), ReactionError> {
        react(self, batch).await
    }

    /// Works the check queue.
    async fn background(&self, shutdown: CancellationToken) {
        checks::work(self.clone(), shutdown).await;
    }
}

/// Issues challenges for a revocation that waits for domain validation, and queues a check
/// for every set of challenges issued.
async fn react(service: &ValidationService, batch: RecordedBatch) -> Result<(), ReactionError> {
    let id = &batch.certificate_id;
    for event in &batch.events {
        match event {
            Event::RevocationRequested(requested)
                if requested.path == RevocationPath::DomainValidation =>
            {
                let meta = reaction_meta(SERVICE, "challenge", &batch, id);
                let now = certflow_runtime::now();
                let policy = service.policy.clone();
                service
                    .store
                    .execute_reaction(id, &meta, |state| {
                        reactions::issue_challenges(state, now, &policy, challenge_value)
                    })
                    .await?;
            }
            Event::ReissueRequested(requested) if requested.needs_validation => {
                let meta = reaction_meta(SERVICE, "reissue-challenge", &batch, id);
                let now = certflow_runtime::now();
                let policy = service.policy.clone();
                service
                    .store
                    .execute_reaction(id, &meta, |state| {
                        reactions::issue_reissue_challenges(state, now, &policy, challenge_value)
                    })
                    .await?;
            }
            Event::ValidationChallengesIssued(_) => {
                service
                    .checks
                    .enqueue(
                        id,
                        batch.sequence,
                        &batch.meta.correlation_id,
                        propagation::forward(batch.meta.traceparent.as_deref()).as_deref(),
                    )
                    .await?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// A fresh challenge value: 128 random bits, as 32 hex digits.
fn challenge_value() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}
