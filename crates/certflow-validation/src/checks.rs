//! Checking challenges: the work queue that schedules checks, and the check itself.

use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer, stream};
use async_nats::{HeaderMap, header};
use certflow_bus::{Request, decode_request, now, refused, response, unavailable};
use certflow_domain::{CertificateId, DomainError, DomainName, State, ValidationMethod, process};
use certflow_eventstore::{CommandMeta, StoreError, actor_from_headers};
use certflow_proto::convert::certificate_to_proto;
use certflow_proto::v1::{CheckValidationRequest, CheckValidationResponse, ProbeResult};
use futures::StreamExt;
use futures::future::join_all;
use tracing::{debug, warn};

use crate::probe::{ProbeMethod, ProbeOutcome};
use crate::{SERVICE, Shared, execute_error};

/// The queue of pending validations: one task per set of challenges, handed back to
/// JetStream with a delay until the validation ends.
#[derive(Clone)]
pub struct CheckQueue {
    js: jetstream::Context,
    stream: stream::Stream,
}

impl std::fmt::Debug for CheckQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckQueue").finish_non_exhaustive()
    }
}

impl CheckQueue {
    /// The stream's name.
    pub const STREAM: &'static str = "CERTFLOW_VALIDATION_CHECKS";
    const PREFIX: &'static str = "certflow.validation.check";
    const CONSUMER: &'static str = "validation-checks";

    /// Opens the work-queue stream, creating it on first use.
    pub async fn open(client: async_nats::Client, replicas: usize) -> Result<Self, StoreError> {
        let js = jetstream::new(client);
        let stream = js
            .get_or_create_stream(stream::Config {
                name: Self::STREAM.into(),
                description: Some("pending domain validations, one task per challenge set".into()),
                subjects: vec![format!("{}.>", Self::PREFIX)],
                retention: stream::RetentionPolicy::WorkQueue,
                storage: stream::StorageType::File,
                num_replicas: replicas,
                duplicate_window: Duration::from_secs(120),
                ..Default::default()
            })
            .await
            .map_err(|err| StoreError::Unavailable(err.into()))?;
        Ok(CheckQueue { js, stream })
    }

    /// Queues a check of certificate `id`'s challenges, issued in event message `sequence`;
    /// queuing the same one twice stores one task.
    pub async fn enqueue(&self, id: &CertificateId, sequence: u64) -> Result<(), StoreError> {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::NATS_MESSAGE_ID,
            format!("check-{sequence}").as_str(),
        );
        let ack = self
            .js
            .publish_with_headers(
                format!("{}.{id}", Self::PREFIX),
                headers,
                Default::default(),
            )
            .await
            .map_err(|err| StoreError::Unavailable(err.into()))?;
        ack.await
            .map_err(|err| StoreError::Unavailable(err.into()))?;
        Ok(())
    }

    async fn tasks(&self, ack_wait: Duration) -> Result<consumer::pull::Stream, StoreError> {
        let consumer = self
            .stream
            .get_or_create_consumer(
                Self::CONSUMER,
                consumer::pull::Config {
                    durable_name: Some(Self::CONSUMER.into()),
                    description: Some("validation service check workers".into()),
                    ack_policy: consumer::AckPolicy::Explicit,
                    ack_wait,
                    max_ack_pending: 10_000,
                    ..Default::default()
                },
            )
            .await
            .map_err(|err| StoreError::Unavailable(err.into()))?;
        consumer
            .stream()
            .max_messages_per_batch(100)
            .messages()
            .await
            .map_err(|err| StoreError::Unavailable(err.into()))
    }
}

/// What one round of checks found, per challenge.
struct Checked {
    state: State,
    probes: Vec<ProbeResult>,
}

/// Works the check queue until `shutdown`, re-attaching when the subscription ends.
pub(crate) async fn work(shared: Shared, shutdown: certflow_bus::CancellationToken) {
    let ack_wait = shared.config.probe.timeout * 4 + Duration::from_secs(30);
    while !shutdown.is_cancelled() {
        let tasks = match shared.queue.tasks(ack_wait).await {
            Ok(tasks) => tasks,
            Err(err) => {
                warn!(error = %err, "cannot attach to the check queue; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(2)) => continue,
                }
            }
        };
        tasks
            .take_until(shutdown.cancelled())
            .for_each_concurrent(32, |task| async {
                match task {
                    Ok(task) => run_task(&shared, task).await,
                    Err(err) => warn!(error = %err, "check queue hiccup"),
                }
            })
            .await;
    }
}

/// Checks one certificate's challenges; the task is done once the validation has ended, and
/// otherwise comes back after a delay that doubles with each delivery, capped, and never
/// later than the deadline.
async fn run_task(shared: &Shared, task: jetstream::Message) {
    let Some(id) = task
        .subject
        .as_str()
        .rsplit('.')
        .next()
        .and_then(|id| CertificateId::parse(id).ok())
    else {
        warn!(subject = %task.subject, "dropping a check task for no certificate");
        let _ = task.ack_with(AckKind::Term).await;
        return;
    };
    let deliveries = task.info().map(|info| info.delivered).unwrap_or(1);
    let next = match check(shared, &id).await {
        Ok(checked) => process::validation_deadline(&checked.state).map(|deadline| {
            let until_deadline =
                Duration::from_millis(deadline.since(now()).as_millis().max(0) as u64);
            backoff(shared, deliveries).min(until_deadline) + Duration::from_millis(50)
        }),
        Err(err) => {
            warn!(error = %err, %id, "check failed; trying again later");
            Some(backoff(shared, deliveries))
        }
    };
    let acked = match next {
        None => task.ack().await,
        Some(delay) => {
            debug!(%id, ?delay, "validation still open; checking again later");
            task.ack_with(AckKind::Nak(Some(delay))).await
        }
    };
    if let Err(err) = acked {
        warn!(error = %err, %id, "could not hand a check task back; it returns after the ack wait");
    }
}

fn backoff(shared: &Shared, deliveries: i64) -> Duration {
    let doublings = deliveries.saturating_sub(1).clamp(0, 20) as u32;
    shared
        .config
        .recheck_initial
        .saturating_mul(2u32.saturating_pow(doublings))
        .min(shared.config.recheck_max)
}

/// Probes every open challenge of certificate `id` and appends what they proved, or the
/// expiry once the deadline is past (REV-11).
async fn check(shared: &Shared, id: &CertificateId) -> Result<Checked, StoreError> {
    let loaded = shared.store.load(id).await?;
    let open = process::open_challenges(&loaded.state);
    if open.is_empty() {
        return Ok(Checked {
            state: loaded.state,
            probes: Vec::new(),
        });
    }
    let probes =
        join_all(open.iter().map(|(domain, method, value)| {
            probe_one(shared, domain.clone(), *method, value.clone())
        }))
        .await;
    let proven: Vec<(DomainName, String)> = open
        .iter()
        .zip(&probes)
        .filter(|(_, probe)| probe.found)
        .map(|((domain, _, value), _)| (domain.clone(), value.clone()))
        .collect();
    let meta = check_meta(id, &loaded.state);
    let executed = shared
        .store
        .execute(id, &meta, |state| {
            let now = now();
            let proofs = process::record_proofs(state, &proven, now);
            Ok::<_, std::convert::Infallible>(if proofs.is_empty() {
                process::expire_validation(state, now)
            } else {
                proofs
            })
        })
        .await
        .map_err(execute_error)?;
    Ok(Checked {
        state: executed.state,
        probes,
    })
}

/// A check's append is not caused by one event; its id is fresh, and the decision on the
/// current state is what keeps it from counting twice.
fn check_meta(id: &CertificateId, state: &State) -> CommandMeta {
    let correlation = state
        .as_ref()
        .and_then(|cert| cert.pending_revocation())
        .map(|revocation| format!("validation-{id}-{}", revocation.requested_at.unix_millis()))
        .unwrap_or_else(|| format!("validation-{id}"));
    let mut meta = CommandMeta::for_request(
        &uuid::Uuid::new_v4().to_string(),
        &correlation,
        certflow_bus::service_actor(SERVICE),
    );
    meta.causation_id = Some(correlation);
    meta
}

async fn probe_one(
    shared: &Shared,
    domain: DomainName,
    method: ValidationMethod,
    value: String,
) -> ProbeResult {
    let target = process::validation_target(&domain).to_string();
    let probe_method = match method {
        ValidationMethod::File => ProbeMethod::File,
        ValidationMethod::Dns | ValidationMethod::DnsAuto => ProbeMethod::Dns,
    };
    let (found, detail) = match shared.prober.probe(probe_method, &target, &value).await {
        Ok(ProbeOutcome::Found) => (true, String::new()),
        Ok(ProbeOutcome::WrongValue { seen }) => (
            false,
            format!("found other values instead: {}", seen.join(", ")),
        ),
        Ok(ProbeOutcome::Missing { detail }) => (false, detail),
        Err(err) => (false, err.to_string()),
    };
    debug!(%domain, ?method, found, %detail, "probed");
    ProbeResult {
        domain: domain.to_string(),
        method: certflow_proto::convert::method_to_proto(method) as i32,
        found,
        detail,
    }
}

/// `CheckValidation`: probes at once and answers with the certificate and what each probe
/// saw. Another account's certificate is not found (GEN-3).
pub(crate) async fn check_on_request(
    shared: &Shared,
    request: Request,
) -> certflow_proto::bus::v1::Reply {
    let req = match decode_request::<CheckValidationRequest>(&request) {
        Ok(req) => req,
        Err(err) => return refused(&err),
    };
    let id = match CertificateId::parse(&req.certificate_id) {
        Ok(id) => id,
        Err(err) => return refused(&err),
    };
    let actor = actor_from_headers(request.headers.as_ref());
    let visible = match shared.store.load(&id).await {
        Ok(loaded) => loaded
            .state
            .as_ref()
            .is_some_and(|cert| !cert.deleted && actor.may_access(&cert.account)),
        Err(err) => return unavailable(err.to_string()),
    };
    if !visible {
        return refused(&DomainError::not_found(&id));
    }
    match check(shared, &id).await {
        Ok(Checked {
            state: Some(cert),
            probes,
        }) => response(&CheckValidationResponse {
            certificate: Some(certificate_to_proto(&cert, now())),
            probes,
        }),
        Ok(Checked { state: None, .. }) => refused(&DomainError::not_found(&id)),
        Err(err) => unavailable(err.to_string()),
    }
}
