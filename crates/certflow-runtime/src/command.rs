//! Running one command: answer a retry from its first outcome, otherwise decide and append
//! through the event store, and remember the outcome.

use std::sync::Arc;

use async_nats::HeaderMap;
use certflow_bus::{
    CommandMeta, Request, ServiceReason, bound_command_meta_on, decode_request, internal, refused,
    subjects, unavailable,
};
use certflow_domain::{
    Certificate, CertificateId, Context, DomainError, Event, Policy, State, Timestamp, replay,
};
use certflow_proto::bus::v1::{CertificateReply, Refusal, Reply};
use certflow_proto::convert::certificate_to_proto;
use certflow_store::{Appended, EventStore, Outcome, Outcomes, Recorded, StoreError};
use prost::Message;
use tracing::{debug, warn};

use crate::clock::now;

/// Why a service refuses a command.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The rules refuse it.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// Something that is not the caller's fault failed (e.g. signing).
    #[error("{0}")]
    Failed(String),
}

/// What every command-handling service shares: the log, the outcomes and the policy.
#[derive(Debug, Clone)]
pub struct CommandRuntime {
    pub store: EventStore,
    pub outcomes: Outcomes,
    pub policy: Arc<Policy>,
}

impl CommandRuntime {
    /// The reply to send instead of running the command: its first outcome when this is a
    /// retry (GEN-1), `REQUEST_ID_REUSED` when the request id was first sent with another
    /// request, or `UNAVAILABLE` when that cannot be known. Checks that read other state
    /// before the command runs call this first, so a retry is answered as it was.
    pub async fn first_outcome(&self, meta: &CommandMeta) -> Option<Reply> {
        match self.outcomes.get(&meta.command_id).await {
            Ok(Some(first)) => Some(self.answer_with(meta, first).await),
            Ok(None) => None,
            Err(err) => Some(unavailable(format!(
                "{err}; retry with the same request id"
            ))),
        }
    }

    /// The common command: `Req` decoded from `request`, its request id bound to it
    /// (GEN-1), made into a domain command (`command` may refuse), decided on the
    /// certificate's current state and appended; the reply is the certificate as it now is,
    /// in `respond`'s response.
    pub async fn decide_request<Req, Resp>(
        &self,
        request: &Request,
        request_id: fn(&Req) -> &str,
        command: impl FnOnce(Req) -> Result<certflow_domain::Command, DomainError>,
        respond: fn(Option<certflow_proto::v1::Certificate>) -> Resp,
    ) -> Reply
    where
        Req: Message + Default,
        Resp: Message,
    {
        match decode_request::<Req>(request) {
            Ok(req) => {
                self.decide_decoded(
                    &request.subject,
                    request.headers.as_ref(),
                    req,
                    request_id,
                    command,
                    respond,
                )
                .await
            }
            Err(err) => refused(&err),
        }
    }

    /// [`decide_request`](Self::decide_request) for a request already decoded, sent to
    /// `rpc` with `headers`: what a batch of requests decides each of.
    pub async fn decide_decoded<Req, Resp>(
        &self,
        rpc: &str,
        headers: Option<&HeaderMap>,
        req: Req,
        request_id: fn(&Req) -> &str,
        command: impl FnOnce(Req) -> Result<certflow_domain::Command, DomainError>,
        respond: fn(Option<certflow_proto::v1::Certificate>) -> Resp,
    ) -> Reply
    where
        Req: Message,
        Resp: Message,
    {
        let parsed = bound_command_meta_on(rpc, headers, request_id(&req), &req)
            .and_then(|meta| Ok((meta, command(req)?)));
        let (meta, command) = match parsed {
            Ok(parsed) => parsed,
            Err(err) => return refused(&err),
        };
        let id = command.certificate_id().clone();
        self.run(
            &meta,
            &id,
            |state, ctx| Ok(certflow_domain::decide(state, &command, ctx)?),
            |cert, now| respond(Some(certificate_to_proto(cert, now))),
        )
        .await
    }

    /// Decides `command` once on the current state without appending anything: what a
    /// handler checks before it stores something the command would only need if accepted
    /// (a copied document, a generated key), so that a refusal leaves nothing behind.
    /// `Ok` holds the events the command would append now; a later `run` decides again.
    pub async fn preview(
        &self,
        meta: &CommandMeta,
        id: &CertificateId,
        command: &certflow_domain::Command,
    ) -> Result<Vec<Event>, Reply> {
        let loaded = self
            .store
            .load(id)
            .await
            .map_err(|err| unavailable(format!("{err}; retry with the same request id")))?;
        let ctx = Context {
            now: now(),
            command_id: &meta.command_id,
            actor: &meta.actor,
            policy: &self.policy,
        };
        certflow_domain::decide(&loaded.state, command, &ctx).map_err(|err| refused(&err))
    }

    /// As [`preview`](Self::preview), for a command that creates its certificate (issue,
    /// upload): decided on an empty state, without reading the log. A retry of a recorded
    /// command is answered from its first outcome before this is asked.
    pub fn preview_new(
        &self,
        meta: &CommandMeta,
        command: &certflow_domain::Command,
    ) -> Result<Vec<Event>, Reply> {
        let ctx = Context {
            now: now(),
            command_id: &meta.command_id,
            actor: &meta.actor,
            policy: &self.policy,
        };
        certflow_domain::decide(&None, command, &ctx).map_err(|err| refused(&err))
    }

    /// Runs a command on certificate `id`. `decide` is called with the state and context
    /// (again after every lost race); `respond` builds the response from the certificate
    /// afterwards. The reply is recorded so a retry with the same request id gets it again
    /// (GEN-1); failures of the infrastructure and `NOT_FOUND` are not recorded, so a retry
    /// runs anew.
    ///
    /// After the look-up of the command's first outcome, the command is decided on the state
    /// this instance holds, without reading the log: an append is guarded by the expected
    /// sequence (a certificate that moved on is loaded and decided again), anything else is
    /// decided again on the state read now. A success is answered once its events are
    /// stored; its reply is recorded after, off the caller's path (until it is, a retry
    /// finds the command applied and is answered from the certificate).
    pub async fn run<D, R, M>(
        &self,
        meta: &CommandMeta,
        id: &CertificateId,
        mut decide: D,
        respond: R,
    ) -> Reply
    where
        D: FnMut(&State, &Context<'_>) -> Result<Vec<Event>, CommandError>,
        R: FnOnce(&Certificate, Timestamp) -> M,
        M: Message,
    {
        let unavailable_log = |err: StoreError| {
            warn!(error = %err, %id, "command failed on the event log");
            unavailable("the event log is unavailable; retry with the same request id")
        };
        // The state this instance holds, or (at the same time as the look-up of the first
        // outcome) the one the log holds.
        let cached = self.store.cached(id);
        let mut fresh = cached.is_none();
        let state = async {
            match cached {
                Some(cached) => Ok(cached),
                None => self.store.load(id).await,
            }
        };
        let (first, state) = tokio::join!(self.first_outcome(meta), state);
        if let Some(first) = first {
            return first;
        }
        let mut loaded = match state {
            Ok(loaded) => loaded,
            Err(err) => return unavailable_log(err),
        };
        let now = now();
        let mut reload = false;
        let mut conflicts = 0;
        loop {
            if std::mem::take(&mut reload) {
                match self.store.load(id).await {
                    Ok(now_loaded) => loaded = now_loaded,
                    Err(err) => return unavailable_log(err),
                }
                fresh = true;
            }
            let ctx = Context {
                now,
                command_id: &meta.command_id,
                actor: &meta.actor,
                policy: &self.policy,
            };
            let decided = decide(&loaded.state, &ctx);
            if !fresh && !matches!(&decided, Ok(events) if !events.is_empty()) {
                // Only an append is guarded by the expected sequence: anything else is
                // decided on what the log holds now.
                reload = true;
                continue;
            }
            let events = match decided {
                // A retry of an applied command whose reply was not kept (or is
                // forgotten): the certificate as it is.
                Ok(events) if events.is_empty() => {
                    return match &loaded.state {
                        Some(cert) => certflow_bus::response(&respond(cert, now)),
                        None => internal("the command left no certificate behind"),
                    };
                }
                Ok(events) => events,
                // Nothing to remember of a certificate that is not there (or not the
                // caller's): a retry finds it missing again, and ids that name nothing
                // cannot fill the outcome store.
                Err(CommandError::Domain(err))
                    if err.reason() == certflow_domain::Reason::NotFound =>
                {
                    return refused(&err);
                }
                Err(CommandError::Domain(err)) => return self.record(meta, refused(&err)).await,
                Err(CommandError::Failed(message)) => {
                    warn!(%id, %message, "command failed");
                    return internal(
                        "the command failed on our side; retry with the same request id",
                    );
                }
            };
            let after = replay(loaded.state.clone(), &meta.command_id, &events);
            match self
                .store
                .append_command(id, loaded.version, &events, meta, &after)
                .await
            {
                Ok(Appended {
                    duplicate: false,
                    sequence,
                }) => {
                    let Some(cert) = &after else {
                        return internal("the command left no certificate behind");
                    };
                    let reply = certflow_bus::response(&respond(cert, now));
                    // A reply that is only the certificate is kept as where the log holds
                    // it; anything else, whole.
                    let recorded = if is_certificate_reply(&reply, cert, now) {
                        Recorded::Applied {
                            certificate: id.clone(),
                            sequence,
                            decided_at: now,
                        }
                    } else {
                        Recorded::Reply(reply.encode_to_vec().into())
                    };
                    self.record_later(meta, recorded);
                    return reply;
                }
                // The same command landed before (a concurrent retry): answered by its
                // first outcome, or from the log as it is now.
                Ok(Appended {
                    duplicate: true, ..
                }) => {
                    if let Some(first) = self.first_outcome(meta).await {
                        return first;
                    }
                    return match self.store.load_applied(id, meta).await {
                        Ok(Some(cert)) => certflow_bus::response(&respond(&cert, now)),
                        Ok(None) => internal("the command left no certificate behind"),
                        Err(StoreError::RequestIdReused) => refused(&DomainError::invalid_by(
                            certflow_domain::Rule::Gen1,
                            certflow_domain::Reason::RequestIdReused,
                            "this request id was used for a command on another certificate; \
                             send this one with a new request id",
                        )),
                        Err(err) => unavailable_log(err),
                    };
                }
                Err(StoreError::Conflict { .. })
                    if conflicts + 1 < self.store.decide_attempts() =>
                {
                    conflicts += 1;
                    debug!(%id, conflicts, "lost an append race, deciding again");
                    reload = true;
                }
                Err(StoreError::Conflict { .. }) => {
                    return Reply::refused(Refusal::service(
                        ServiceReason::ConcurrentModification,
                        "the certificate kept changing while this command was decided; retry \
                         with the same request id",
                    ));
                }
                Err(err) => return unavailable_log(err),
            }
        }
    }

    /// Records a success's reply as its first outcome after the caller has it: the events
    /// are stored, and a retry before the record lands is answered from them.
    fn record_later(&self, meta: &CommandMeta, recorded: Recorded) {
        let outcomes = self.outcomes.clone();
        let command = meta.command_id.clone();
        let outcome = Outcome {
            recorded,
            binding: meta.binding.clone(),
        };
        tokio::spawn(async move {
            if let Err(err) = outcomes.record(&command, outcome).await {
                warn!(error = %err, %command, "could not record the outcome");
            }
        });
    }

    /// Records `reply` as the command's first outcome and answers with the one that stands
    /// (ours, or one recorded before).
    async fn record(&self, meta: &CommandMeta, reply: Reply) -> Reply {
        let outcome = Outcome {
            recorded: Recorded::Reply(reply.encode_to_vec().into()),
            binding: meta.binding.clone(),
        };
        match self.outcomes.record(&meta.command_id, outcome).await {
            Ok(standing) => self.answer_with(meta, standing).await,
            Err(err) => {
                warn!(error = %err, "could not record the outcome");
                reply
            }
        }
    }

    /// The reply for a command whose first outcome is `first`: that outcome's reply (rebuilt
    /// from the log when it was only the certificate), or `REQUEST_ID_REUSED` when the
    /// request id was first sent with another request (GEN-1).
    async fn answer_with(&self, meta: &CommandMeta, first: Outcome) -> Reply {
        if let (Some(ours), Some(theirs)) = (&meta.binding, &first.binding)
            && ours != theirs
        {
            return refused(&DomainError::invalid_by(
                certflow_domain::Rule::Gen1,
                certflow_domain::Reason::RequestIdReused,
                format!(
                    "request id {:?} was first sent with another request ({}); a request id \
                     names one request: send this one with a new request id",
                    meta.request_id,
                    rpc_name(&theirs.rpc)
                ),
            ));
        }
        debug!(command = %meta.command_id, "answering a retry from its first outcome");
        match first.recorded {
            Recorded::Reply(reply) => Reply::decode(reply).unwrap_or_else(|err| {
                warn!(error = %err, "unreadable recorded outcome");
                internal("the first reply to this request cannot be read; send a new request id")
            }),
            Recorded::Applied {
                certificate,
                sequence,
                decided_at,
            } => match self.store.state_through(&certificate, sequence).await {
                Ok(Some(Some(cert))) => certflow_bus::response(&CertificateReply {
                    certificate: Some(certificate_to_proto(&cert, decided_at)),
                }),
                Ok(_) => {
                    warn!(%certificate, sequence, "a recorded outcome names no certificate state");
                    internal(
                        "the first reply to this request cannot be rebuilt; send a new request id",
                    )
                }
                Err(err) => unavailable(format!("{err}; retry with the same request id")),
            },
        }
    }
}

/// Whether `reply` is only `cert` as at `now`, the shape every certificate-only response
/// shares (`CertificateReply`).
fn is_certificate_reply(reply: &Reply, cert: &Certificate, now: Timestamp) -> bool {
    matches!(&reply.outcome, Some(certflow_bus::Outcome::Response(bytes))
        if *bytes == CertificateReply {
            certificate: Some(certificate_to_proto(cert, now)),
        }
        .encode_to_vec())
}

/// How a client knows the RPC of a command subject, for a message.
fn rpc_name(subject: &str) -> &str {
    match subject {
        subjects::ISSUE_CERTIFICATE => "IssueCertificate",
        subjects::UPLOAD_CERTIFICATE => "UploadCertificate",
        subjects::RECORD_LEGACY_CERTIFICATE => "RecordLegacyCertificate",
        subjects::REQUEST_REVOCATION => "RequestRevocation",
        subjects::DELETE_CERTIFICATE => "DeleteCertificate",
        subjects::ORDER_RENEWAL => "OrderRenewal",
        subjects::REQUEST_REISSUE => "RequestReissue",
        subjects::UPLOAD_DOCUMENT => "UploadRevocationDocument",
        subjects::APPROVE_REVIEW => "ApproveReview",
        subjects::REJECT_REVIEW => "RejectReview",
        other => other,
    }
}
