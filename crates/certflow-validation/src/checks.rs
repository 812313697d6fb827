//! Checking challenges: working the check queue, and the check itself.

use std::time::Duration;

use certflow_bus::{
    CommandMeta, Request, actor_from_headers, decode_request, headers, refused, response,
    unavailable,
};
use certflow_domain::reactions::ValidationFor;
use certflow_domain::{CertificateId, DomainError, DomainName, State, ValidationMethod, reactions};
use certflow_proto::convert::certificate_to_proto;
use certflow_proto::v1::{CheckValidationRequest, CheckValidationResponse, ProbeResult};
use certflow_runtime::now;
use certflow_store::{CheckTask, StoreError};
use certflow_telemetry::propagation;
use futures::future::join_all;
use tracing::{Instrument, debug, info_span, warn};

use crate::probe::{ProbeMethod, ProbeOutcome};
use crate::{SERVICE, ValidationService};

/// The shortest wait before a pending validation is checked again.
const MIN_RECHECK: Duration = Duration::from_millis(100);

/// What one round of checks found, per challenge.
struct Checked {
    state: State,
    probes: Vec<ProbeResult>,
}

/// Works the check queue until `shutdown`.
pub(crate) async fn work(service: ValidationService, shutdown: certflow_bus::CancellationToken) {
    certflow_runtime::work_queue(
        certflow_store::ValidationChecks::STREAM,
        || service.checks.tasks(),
        32,
        shutdown,
        |task| run_task(&service, task),
    )
    .await;
}

/// Checks one certificate's challenges; the task is done once the validation has ended, and
/// otherwise comes back after a delay that doubles with each delivery, capped, and never
/// later than the deadline.
async fn run_task(service: &ValidationService, task: CheckTask) {
    let id = &task.certificate_id;
    let span = info_span!(
        "validation.check",
        service = SERVICE,
        certificate = %id,
        deliveries = task.deliveries,
    );
    propagation::set_parent(&span, task.traceparent.as_deref());
    let checked = check(
        service,
        id,
        task.challenges_sequence,
        &task.correlation_id,
        task.traceparent.as_deref(),
    )
    .instrument(span)
    .await;
    let next = match checked {
        Ok(checked) => reactions::next_deadline(&checked.state).map(|deadline| {
            let until_deadline = Duration::from_millis(
                u64::try_from(deadline.since(now()).as_millis()).unwrap_or(0),
            );
            backoff(service, task.deliveries).min(until_deadline) + Duration::from_millis(50)
        }),
        Err(err) => {
            warn!(error = %err, %id, "check failed; trying again later");
            Some(backoff(service, task.deliveries))
        }
    };
    let handed_back = match next {
        None => task.done().await,
        Some(delay) => {
            debug!(%id, ?delay, "validation still open; checking again later");
            task.again_after(delay).await
        }
    };
    if let Err(err) = handed_back {
        warn!(error = %err, %id, "could not hand a check task back; it returns after the ack wait");
    }
}

fn backoff(service: &ValidationService, deliveries: u64) -> Duration {
    let doublings = deliveries.saturating_sub(1).min(20) as u32;
    service
        .config
        .recheck_initial
        .saturating_mul(2u32.saturating_pow(doublings))
        .min(service.config.recheck_max)
        .max(MIN_RECHECK)
}

/// Probes every open challenge of certificate `id` and appends what they proved, or the
/// expiry once the deadline is past (REV-11). `seen` is the sequence of the challenges the
/// caller knows of: a read that does not include them yet is retried later.
async fn check(
    service: &ValidationService,
    id: &CertificateId,
    seen: u64,
    correlation_id: &str,
    traceparent: Option<&str>,
) -> Result<Checked, StoreError> {
    let loaded = service.store.load(id).await?;
    if loaded.version < seen {
        return Err(StoreError::Unavailable(
            format!(
                "{id} read at {} before its challenges at {seen}",
                loaded.version
            )
            .into(),
        ));
    }
    // Every open validation: the pending revocation's and a pending reissue's (REI-9).
    let subjects = reactions::open_validations(&loaded.state);
    if subjects.is_empty() {
        return Ok(Checked {
            state: loaded.state,
            probes: Vec::new(),
        });
    }
    let open: Vec<(ValidationFor, DomainName, ValidationMethod, String)> = subjects
        .iter()
        .flat_map(|subject| {
            reactions::open_challenges(&loaded.state, subject)
                .into_iter()
                .map(move |(domain, method, value)| (subject.clone(), domain, method, value))
        })
        .collect();
    let probes = join_all(open.iter().map(|(_, domain, method, value)| {
        probe_one(service, domain.clone(), *method, value.clone())
    }))
    .await;
    let mut meta = check_meta(correlation_id);
    meta.traceparent = propagation::forward(traceparent);
    let executed = service
        .store
        .execute_reaction(id, &meta, |state| {
            let now = now();
            subjects
                .iter()
                .flat_map(|subject| {
                    let proven: Vec<(DomainName, String)> = open
                        .iter()
                        .zip(&probes)
                        .filter(|((for_, ..), probe)| for_ == subject && probe.found)
                        .map(|((_, domain, _, value), _)| (domain.clone(), value.clone()))
                        .collect();
                    let proofs = reactions::record_proofs(state, subject, &proven, now);
                    if proofs.is_empty() {
                        reactions::expire_validation(state, subject, now)
                    } else {
                        proofs
                    }
                })
                .collect()
        })
        .await?;
    Ok(Checked {
        state: executed.state,
        probes,
    })
}

/// A check's append is not caused by one event: its id is fresh, and the decision on the
/// current state is what keeps a proof from counting twice. It carries the correlation id
/// of the request that caused the challenges (GEN-4).
fn check_meta(correlation_id: &str) -> CommandMeta {
    let id = uuid::Uuid::new_v4().to_string();
    let correlation = if correlation_id.is_empty() {
        id.as_str()
    } else {
        correlation_id
    };
    CommandMeta::for_request(&id, correlation, certflow_bus::service_actor(SERVICE))
}

async fn probe_one(
    service: &ValidationService,
    domain: DomainName,
    method: ValidationMethod,
    value: String,
) -> ProbeResult {
    let target = reactions::validation_target(&domain).to_string();
    let probe_method = match method {
        ValidationMethod::File => ProbeMethod::File,
        ValidationMethod::Dns | ValidationMethod::DnsAuto => ProbeMethod::Dns,
    };
    // Bounded across the instance's checks, so no burst of requests turns it into a
    // flood of outbound traffic.
    let outcome = match service.probe_slots.acquire().await {
        Ok(_slot) => service.prober.probe(probe_method, &target, &value).await,
        Err(_) => return ProbeResult::default(),
    };
    let (found, detail) = match outcome {
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
    service: &ValidationService,
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
    let visible = match service.store.load(&id).await {
        Ok(loaded) => loaded
            .state
            .as_ref()
            .is_some_and(|cert| !cert.deleted && actor.may_access(&cert.account)),
        Err(err) => return unavailable(err.to_string()),
    };
    if !visible {
        return refused(&DomainError::not_found(&id));
    }
    let correlation_id = request
        .headers
        .as_ref()
        .and_then(|h| h.get(headers::CORRELATION_ID))
        .map(|v| v.as_str().to_string())
        .unwrap_or_default();
    // The request's span carries the caller's trace: the check's append joins it.
    let traceparent = request
        .headers
        .as_ref()
        .and_then(|h| h.get(headers::TRACEPARENT))
        .map(|v| v.as_str().to_string());
    match check(service, &id, 0, &correlation_id, traceparent.as_deref()).await {
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
