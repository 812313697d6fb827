//! The reissue service: decides reissue requests (REI-1 … REI-12), holds one reservation per
//! registrable domain while a reissue runs (REI-4), and completes reissues by having the
//! issuance service certify the new certificate.
//!
//! - **Requests** (`certflow.cmd.reissue.request`): a pasted CSR is checked (REI-7) and its
//!   key looked up in the key index (REV-16); a generated key is made and sealed by the
//!   issuance service; the reservations of the bound domains' registrable domains are taken
//!   (a hold whose reissue the log shows is over is taken over); then `ReissueRequested` is
//!   appended to the original. If anything refuses, the reservations are released.
//! - **Reactions** (durable consumer `reissue` on the event log): a `ReissueRequested` is
//!   certified through the issuance service and completed with `ReissueCompleted`, or ended
//!   with `ReissueFailed` when the CA refuses; every ended reissue (completed, failed, or
//!   failed because its original was revoked, REV-14) releases its reservations. A crash at
//!   any step is picked up from the log when the event is offered again.
//!
//! A reissue that needs domain validation (REI-9) gets its challenges from the validation
//! service, and one that needs a reviewer (REI-10) a task on the review queue from the review
//! service; it is certified once both have passed, and fails when the validation expires or
//! a reviewer rejects it.

#![forbid(unsafe_code)]

use std::time::Duration;

use bytes::Bytes;
use certflow_bus::{
    BusClient, CancellationToken, CommandMeta, Envelope, Request, Responder, bound_command_meta,
    code, decode_request, not_available, refused, subjects, unavailable,
};
use certflow_domain::reissue::{
    complete_reissue, conclude_reissue_review, conclude_reissue_validation, fail_reissue,
    ready_to_issue, reservations,
};
use certflow_domain::{
    CertificateId, Command, DomainError, Event, Reason, ReissueFailure, ReissueKey, RequestReissue,
    Rule, decide, process::key_blocked,
};
use certflow_proto::bus::v1::{
    GenerateKeyRequest, GenerateKeyResponse, IssueReissuedRequest, Reply, reply::Outcome,
};
use certflow_proto::convert::{algorithm_from_proto, certificate_to_proto};
use certflow_proto::v1::{RequestReissueRequest, RequestReissueResponse, request_reissue_request};
use certflow_runtime::{CommandRuntime, ReactionError, reaction_meta, run_reactions};
use certflow_store::{KeyIndex, LockHolder, RecordedBatch, ReissueLocks, Reservation, StoreError};
use prost::Message;
use tracing::{info, warn};
use uuid::Uuid;

/// The service's name in logs, actors and consumer names.
const SERVICE: &str = "reissue";

/// Namespace of the ids of reissued certificates, derived from their reissue's id.
const NEW_CERTIFICATE_NAMESPACE: Uuid = Uuid::from_u128(0x0b7d_53a4_98c1_4f62_a1de_6c2f_08e5_9d37);

/// Errors starting the service.
#[derive(Debug, thiserror::Error)]
pub enum ReissueError {
    #[error(transparent)]
    Bus(#[from] certflow_bus::BusError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How reissues are run.
#[derive(Debug, Clone)]
pub struct ReissueConfig {
    /// How long a reservation is held before its holder may be found gone: longer than any
    /// request takes from reserving to recording, so an unrecorded hold is a crashed one.
    pub stale_after: Duration,
    /// How long a call to the issuance service may take.
    pub request_timeout: Duration,
}

impl Default for ReissueConfig {
    fn default() -> Self {
        ReissueConfig {
            stale_after: Duration::from_secs(60),
            request_timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Clone)]
struct Shared {
    config: ReissueConfig,
    runtime: CommandRuntime,
    locks: ReissueLocks,
    keys: KeyIndex,
    issuance: BusClient,
}

/// The reissue service, subscribed and ready to run.
#[derive(Debug)]
pub struct ReissueService {
    shared: Shared,
    responder: Responder,
}

impl ReissueService {
    /// Opens the reservations and subscribes to the service's commands.
    pub async fn bind(
        client: async_nats::Client,
        runtime: CommandRuntime,
        config: ReissueConfig,
    ) -> Result<Self, ReissueError> {
        let locks = ReissueLocks::attach(client.clone()).await?;
        let keys = KeyIndex::attach(client.clone()).await?;
        let issuance = BusClient::new(client.clone(), config.request_timeout);
        let responder = Responder::bind(client, subjects::REISSUE, SERVICE).await?;
        Ok(ReissueService {
            shared: Shared {
                config,
                runtime,
                locks,
                keys,
                issuance,
            },
            responder,
        })
    }

    /// Answers requests and completes reissues until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let shared = self.shared;
        let reactions = {
            let shared = shared.clone();
            run_reactions(
                shared.runtime.store.clone(),
                SERVICE,
                16,
                shutdown.clone(),
                move |batch| react(shared.clone(), batch),
            )
        };
        let requests = {
            let shared = shared.clone();
            self.responder.run(shutdown, move |request| {
                let shared = shared.clone();
                async move {
                    match request.subject.as_str() {
                        subjects::REQUEST_REISSUE => request_reissue(&shared, request).await,
                        other => not_available(SERVICE, other),
                    }
                }
            })
        };
        tokio::join!(reactions, requests);
        info!("reissue service stopped");
    }
}

/// The id of the certificate a reissue creates.
fn new_certificate_id(reissue_id: &str) -> Result<CertificateId, DomainError> {
    CertificateId::parse(
        &Uuid::new_v5(&NEW_CERTIFICATE_NAMESPACE, reissue_id.as_bytes()).to_string(),
    )
}

async fn request_reissue(shared: &Shared, request: Request) -> Reply {
    let parsed = decode_request::<RequestReissueRequest>(&request).and_then(|req| {
        // The password travels sealed in a header, never in the body fingerprinted here.
        let meta = bound_command_meta(&request, &req.request_id, &req)?;
        let id = CertificateId::parse(&req.certificate_id)?;
        Ok((meta, id, req))
    });
    let (meta, id, req) = match parsed {
        Ok(parsed) => parsed,
        Err(err) => return refused(&err),
    };
    if let Some(first) = shared.runtime.first_outcome(&meta).await {
        return first;
    }
    let reissue_id = meta.command_id.0.clone();
    let new_id = match new_certificate_id(&reissue_id) {
        Ok(id) => id,
        Err(err) => return refused(&err),
    };
    // The key source, as far as it can be known before anything is made (REI-7, REV-16).
    let (key, password) = match key_source(shared, &req, &request).await {
        Ok(key) => key,
        Err(reply) => return reply,
    };
    let mut command = RequestReissue {
        id: id.clone(),
        reissue_id: reissue_id.clone(),
        new_certificate_id: new_id.clone(),
        domains: req.domains.clone(),
        reason: req.reason.clone(),
        key,
        enterprise_info: match certflow_proto::convert::enterprise_info_from_request(
            &req.enterprise_info,
        ) {
            Ok(info) => info,
            Err(err) => return refused(&err),
        },
        validation_method: match certflow_proto::convert::method_from_proto(req.validation_method) {
            Ok(method) => method,
            Err(err) => return refused(&err),
        },
    };
    let respond = |cert: &certflow_domain::Certificate, now| RequestReissueResponse {
        certificate: Some(certificate_to_proto(cert, now)),
        new_certificate_id: new_id.to_string(),
    };
    // Decide once on the current state before reserving or generating anything.
    let requested = match preview(shared, &meta, &command).await {
        Ok(Some(requested)) => requested,
        // Recorded already, its answer lost (the service stopped before replying): the
        // retry is answered from the log, as its first try would have been.
        Ok(None) => {
            let recorded = Command::RequestReissue(command);
            return shared
                .runtime
                .run(
                    &meta,
                    &id,
                    |state, ctx| Ok(decide(state, &recorded, ctx)?),
                    respond,
                )
                .await;
        }
        Err(reply) => return reply,
    };
    let Event::ReissueRequested(requested) = requested else {
        return unavailable("the reissue could not be decided");
    };
    let holder = LockHolder {
        reissue_id: reissue_id.clone(),
        certificate_id: id.clone(),
    };
    let domains: Vec<String> = reservations(&requested.domains).into_iter().collect();
    let reserved_at = std::time::Instant::now();
    if let Err(reply) = reserve(shared, &domains, &holder).await {
        return reply;
    }
    // Only a reissue that holds its reservations has a key made for it.
    if let Some(password) = password {
        match generate_key(shared, &request, &command, password).await {
            Ok(key) => command.key = key,
            Err(reply) => {
                release(shared, &domains, &holder).await;
                return reply;
            }
        }
    }
    // A hold may be taken over once it is older than `stale_after`: a request that got this
    // slow gives up before recording rather than race a taker.
    if reserved_at.elapsed() > shared.config.stale_after / 2 {
        release(shared, &domains, &holder).await;
        return unavailable("the reissue took too long to start; retry with the same request id");
    }
    let command_for_run = Command::RequestReissue(command);
    let reply = shared
        .runtime
        .run(
            &meta,
            &id,
            |state, ctx| Ok(decide(state, &command_for_run, ctx)?),
            respond,
        )
        .await;
    let recorded = match &reply.outcome {
        Some(Outcome::Response(_)) => true,
        // A refusal by the rules or the input: nothing was recorded.
        Some(Outcome::Refusal(refusal)) if is_definite_refusal(refusal.code) => false,
        // Unknown (the append may have landed): the log says.
        _ => !is_gone(shared, &holder).await.unwrap_or(false),
    };
    if !recorded {
        release(shared, &domains, &holder).await;
    }
    reply
}

/// A refusal that says nothing was done (as opposed to "could not tell").
fn is_definite_refusal(code: i32) -> bool {
    matches!(
        code,
        code::INVALID_ARGUMENT
            | code::NOT_FOUND
            | code::ALREADY_EXISTS
            | code::PERMISSION_DENIED
            | code::FAILED_PRECONDITION
            | code::UNIMPLEMENTED
    )
}

/// The key a request names: the original's, a CSR's (checked, and not blocked), or a key
/// to generate, with the password to encrypt it under as the gateway sealed it to the
/// issuance service (empty for none): this service carries it and cannot read it.
async fn key_source(
    shared: &Shared,
    req: &RequestReissueRequest,
    request: &Request,
) -> Result<(ReissueKey, Option<Vec<u8>>), Reply> {
    use request_reissue_request::Key;
    match &req.key {
        None | Some(Key::OriginalKey(_)) => Ok((ReissueKey::Original, None)),
        Some(Key::GeneratedKey(generated)) => {
            let algorithm =
                algorithm_from_proto(generated.key_algorithm).map_err(|e| refused(&e))?;
            if !generated.key_password.is_empty() {
                return Err(refused(&DomainError::invalid(
                    Reason::InvalidArgument,
                    "a key password must come sealed to the issuance service; send the \
                     request through the gateway",
                )));
            }
            let sealed = sealed_key_password(request).map_err(|e| refused(&e))?;
            // Record and public key are filled in once the key is made.
            Ok((
                ReissueKey::Generated {
                    algorithm,
                    key_record: String::new(),
                    public_key_der: Vec::new(),
                },
                Some(sealed),
            ))
        }
        Some(Key::CsrPem(pem)) => {
            let info = certflow_ca::csr::inspect(pem).map_err(|e| refused(&e))?;
            match shared.keys.blocked_by(&info.public_key_sha256).await {
                Ok(None) => {}
                Ok(Some(_)) => return Err(refused(&key_blocked())),
                Err(err) => return Err(unavailable(err.to_string())),
            }
            Ok((
                ReissueKey::Csr {
                    algorithm: info.algorithm,
                    names: info.names,
                    public_key_sha256: info.public_key_sha256,
                    public_key_der: info.public_key_der,
                },
                None,
            ))
        }
    }
}

/// The request decided on the current state: the `ReissueRequested` it would append, or
/// `None` when this very request is recorded already (a retry).
async fn preview(
    shared: &Shared,
    meta: &CommandMeta,
    command: &RequestReissue,
) -> Result<Option<Event>, Reply> {
    let events = shared
        .runtime
        .preview(meta, &command.id, &Command::RequestReissue(command.clone()))
        .await?;
    Ok(events.into_iter().next())
}

/// The key password the gateway sealed to the issuance service, from its header (empty:
/// none).
fn sealed_key_password(request: &Request) -> Result<Vec<u8>, DomainError> {
    use base64::Engine;
    let Some(value) = request
        .headers
        .as_ref()
        .and_then(|headers| headers.get(certflow_bus::headers::SEALED_KEY_PASSWORD))
    else {
        return Ok(Vec::new());
    };
    base64::engine::general_purpose::STANDARD
        .decode(value.as_str())
        .map_err(|_| {
            DomainError::invalid(
                Reason::InvalidArgument,
                "the sealed key password is not base64",
            )
        })
}

/// Has the issuance service generate and seal the key pair of a reissue, encrypted with
/// the password sealed to it (empty: none).
async fn generate_key(
    shared: &Shared,
    request: &Request,
    command: &RequestReissue,
    sealed_password: Vec<u8>,
) -> Result<ReissueKey, Reply> {
    let ReissueKey::Generated { algorithm, .. } = &command.key else {
        return Ok(command.key.clone());
    };
    let body = GenerateKeyRequest {
        key_algorithm: certflow_proto::convert::algorithm_to_proto(*algorithm) as i32,
        key_password: String::new(),
        sealed_key_password: sealed_password,
    };
    let reply = call(
        shared,
        request,
        subjects::GENERATE_KEY,
        body.encode_to_vec(),
    )
    .await?;
    let generated = GenerateKeyResponse::decode(reply.as_slice())
        .map_err(|_| unavailable("the issuance service answered an unreadable key"))?;
    Ok(ReissueKey::Generated {
        algorithm: *algorithm,
        key_record: generated.key_record,
        public_key_der: generated.public_key_der,
    })
}

/// Sends one request to the issuance service as the caller; the response body, or the
/// reply to send back.
async fn call(
    shared: &Shared,
    request: &Request,
    subject: &str,
    body: Vec<u8>,
) -> Result<Vec<u8>, Reply> {
    let envelope = Envelope::continuing(request.headers.as_ref());
    match shared
        .issuance
        .request(subject, &envelope, Bytes::from(body))
        .await
    {
        Ok(Reply {
            outcome: Some(Outcome::Response(bytes)),
        }) => Ok(bytes),
        Ok(other) => Err(other),
        Err(err) => Err(unavailable(err.to_string())),
    }
}

/// REI-4: takes the reservation of every registrable domain, in order; a hold whose reissue
/// the log shows is over is taken over. If one is busy, the ones taken are released.
async fn reserve(shared: &Shared, domains: &[String], holder: &LockHolder) -> Result<(), Reply> {
    for (taken, domain) in domains.iter().enumerate() {
        let outcome = take_one(shared, domain, holder).await;
        if let Err(reply) = outcome {
            release(shared, &domains[..taken], holder).await;
            return Err(reply);
        }
    }
    Ok(())
}

async fn take_one(shared: &Shared, domain: &str, holder: &LockHolder) -> Result<(), Reply> {
    loop {
        match shared.locks.take(domain, holder).await {
            Ok(Reservation::Taken) => return Ok(()),
            Ok(Reservation::Busy {
                holder: current,
                sequence,
                held_at,
            }) => {
                let young = held_at
                    .elapsed()
                    .map_or(true, |age| age < shared.config.stale_after);
                if young || !is_gone(shared, &current).await? {
                    return Err(refused(&DomainError::refused(
                        Rule::Rei4,
                        Reason::PrimaryDomainReissueBusy,
                        format!(
                            "another certificate under {domain} is being reissued; try again \
                             once it completes"
                        ),
                    )));
                }
                match shared.locks.take_over(domain, sequence, holder).await {
                    Ok(true) => return Ok(()),
                    Ok(false) => continue,
                    Err(err) => return Err(unavailable(err.to_string())),
                }
            }
            Err(err) => return Err(unavailable(err.to_string())),
        }
    }
}

/// Whether the reissue holding a reservation (for longer than any request takes) is over or
/// never began: the log of its certificate shows no such pending reissue.
async fn is_gone(shared: &Shared, holder: &LockHolder) -> Result<bool, Reply> {
    let loaded = shared
        .runtime
        .store
        .load(&holder.certificate_id)
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    Ok(loaded
        .state
        .as_ref()
        .and_then(|c| c.pending_reissue.as_ref())
        .is_none_or(|p| p.reissue_id != holder.reissue_id))
}

async fn release(shared: &Shared, domains: &[String], holder: &LockHolder) {
    for domain in domains {
        if let Err(err) = shared.locks.release(domain, holder).await {
            warn!(error = %err, domain, "could not release a reservation; the next taker will take it over");
        }
    }
}

/// Completes requested reissues once nothing is missing (REI-9: a passed validation), fails
/// those whose validation expired, and releases the reservations of ended ones.
async fn react(shared: Shared, batch: RecordedBatch) -> Result<(), ReactionError> {
    let id = &batch.certificate_id;
    for event in &batch.events {
        match event {
            Event::ReissueRequested(requested) => {
                complete_if_ready(&shared, &batch, &requested.reissue_id).await?;
            }
            Event::ReviewPassed(passed) => {
                if let Some(reissue_id) = &passed.reissue_id {
                    complete_if_ready(&shared, &batch, reissue_id).await?;
                }
            }
            Event::ReviewRejected(rejected) => {
                if let Some(reissue_id) = &rejected.reissue_id {
                    let meta = reaction_meta(SERVICE, "rejected", &batch, id);
                    execute(&shared, id, &meta, |state| {
                        conclude_reissue_review(state, reissue_id, certflow_runtime::now())
                    })
                    .await?;
                }
            }
            Event::ValidationPassed(passed) => {
                if let Some(reissue_id) = &passed.reissue_id {
                    complete_if_ready(&shared, &batch, reissue_id).await?;
                }
            }
            Event::ValidationExpired(expired) => {
                if let Some(reissue_id) = &expired.reissue_id {
                    let meta = reaction_meta(SERVICE, "expired", &batch, id);
                    execute(&shared, id, &meta, |state| {
                        conclude_reissue_validation(state, reissue_id, certflow_runtime::now())
                    })
                    .await?;
                }
            }
            Event::ReissueCompleted(e) => release_for(&shared, id, &e.reissue_id).await?,
            Event::ReissueFailed(e) => release_for(&shared, id, &e.reissue_id).await?,
            _ => {}
        }
    }
    Ok(())
}

async fn complete_if_ready(
    shared: &Shared,
    batch: &RecordedBatch,
    reissue_id: &str,
) -> Result<(), ReactionError> {
    let loaded = shared.runtime.store.load(&batch.certificate_id).await?;
    if ready_to_issue(&loaded.state, reissue_id) {
        complete(shared, batch, reissue_id).await?;
    }
    Ok(())
}

async fn execute(
    shared: &Shared,
    id: &CertificateId,
    meta: &CommandMeta,
    decide: impl Fn(&certflow_domain::State) -> Vec<Event>,
) -> Result<(), ReactionError> {
    shared
        .runtime
        .store
        .execute_reaction(id, meta, decide)
        .await?;
    Ok(())
}

/// Has the issuance service certify the reissue, then records the outcome on the original.
async fn complete(
    shared: &Shared,
    batch: &RecordedBatch,
    reissue_id: &str,
) -> Result<(), ReactionError> {
    let id = &batch.certificate_id;
    let body = IssueReissuedRequest {
        reissue_id: reissue_id.to_string(),
        original_id: id.to_string(),
    };
    let reply = shared
        .issuance
        .request(
            subjects::ISSUE_REISSUED,
            &Envelope::of(&batch.meta),
            Bytes::from(body.encode_to_vec()),
        )
        .await
        .map_err(|source| ReactionError::Peer {
            what: "issuing a reissue",
            source,
        })?;
    let issued = match reply.outcome {
        Some(Outcome::Response(body)) => Some(
            certflow_proto::bus::v1::IssueReissuedResponse::decode(body.as_slice())
                .ok()
                .and_then(|r| CertificateId::parse(&r.certificate_id).ok()),
        ),
        // Could not tell (the issuance service or the log was unavailable): the event comes
        // back later.
        Some(Outcome::Refusal(refusal))
            if !matches!(
                refusal.code,
                certflow_bus::code::UNAVAILABLE
                    | certflow_bus::code::ABORTED
                    | certflow_bus::code::DEADLINE_EXCEEDED
            ) =>
        {
            warn!(reissue = reissue_id, reason = %refusal.reason, "the reissue was not issued");
            None
        }
        other => {
            return Err(ReactionError::PeerNotNow {
                what: "issuing a reissue",
                message: format!("{other:?}"),
            });
        }
    };
    let completed = issued.is_some();
    let decide_end = |state: &certflow_domain::State| {
        let now = certflow_runtime::now();
        if completed {
            complete_reissue(state, reissue_id, now)
        } else {
            fail_reissue(state, reissue_id, ReissueFailure::NotIssued, now)
        }
    };
    let meta = reaction_meta(SERVICE, "end", batch, id);
    execute(shared, id, &meta, decide_end).await?;
    // REV-5: a certificate certified while its original was being revoked goes with it.
    if let Some(Some(new_id)) = issued {
        let original = shared.runtime.store.load(id).await?;
        if let Some(reason) = original
            .state
            .as_ref()
            .filter(|c| !c.reissues.contains(&new_id))
            .and_then(|c| c.revocation.as_ref())
            .filter(|r| r.revoked_at.is_some())
            .map(|r| r.reason)
        {
            let meta = reaction_meta(SERVICE, "orphan", batch, &new_id);
            execute(shared, &new_id, &meta, |state| {
                certflow_domain::process::revoke_with_original(
                    state,
                    id,
                    reason,
                    certflow_runtime::now(),
                )
            })
            .await?;
        }
    }
    Ok(())
}

/// Releases the reservations a reissue of certificate `id` held.
async fn release_for(
    shared: &Shared,
    id: &CertificateId,
    reissue_id: &str,
) -> Result<(), ReactionError> {
    let history = shared.runtime.store.history(id).await?;
    let domains = history
        .iter()
        .flat_map(|batch| batch.events.iter())
        .find_map(|event| match event {
            Event::ReissueRequested(r) if r.reissue_id == reissue_id => Some(r.domains.clone()),
            _ => None,
        })
        .unwrap_or_default();
    let holder = LockHolder {
        reissue_id: reissue_id.to_string(),
        certificate_id: id.clone(),
    };
    for domain in reservations(&domains) {
        shared.locks.release(&domain, &holder).await?;
    }
    Ok(())
}
