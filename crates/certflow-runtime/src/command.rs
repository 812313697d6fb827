//! Running one command: answer a retry from its first outcome, otherwise decide and append
//! through the event store, and remember the outcome.

use std::sync::Arc;

use certflow_bus::{
    CommandMeta, Request, ServiceReason, bound_command_meta, decode_request, internal, refused,
    subjects, unavailable,
};
use certflow_domain::{
    Certificate, CertificateId, Context, DomainError, Event, Policy, State, Timestamp,
};
use certflow_proto::bus::v1::{Refusal, Reply};
use certflow_proto::convert::certificate_to_proto;
use certflow_store::{EventStore, ExecuteError, Outcomes, StoreError};
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
            Ok(Some((_, Some(first)))) if meta.binding.as_ref().is_some_and(|b| *b != first) => {
                Some(refused(&DomainError::invalid_by(
                    certflow_domain::Rule::Gen1,
                    certflow_domain::Reason::RequestIdReused,
                    format!(
                        "request id {:?} was first sent with another request ({}); a \
                         request id names one request: send this one with a new request id",
                        meta.request_id,
                        rpc_name(&first.rpc)
                    ),
                )))
            }
            Ok(Some((first, _))) => match Reply::decode(first) {
                Ok(reply) => {
                    debug!(command = %meta.command_id, "answering a retry from its first outcome");
                    Some(reply)
                }
                Err(err) => {
                    warn!(error = %err, "unreadable recorded outcome, deciding again");
                    None
                }
            },
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
        let parsed = decode_request::<Req>(request).and_then(|req| {
            let meta = bound_command_meta(request, request_id(&req), &req)?;
            Ok((meta, command(req)?))
        });
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
        if let Some(first) = self.first_outcome(meta).await {
            return first;
        }
        let now = now();
        let result = self
            .store
            .execute(id, meta, |state| {
                let ctx = Context {
                    now,
                    command_id: &meta.command_id,
                    actor: &meta.actor,
                    policy: &self.policy,
                };
                decide(state, &ctx)
            })
            .await;
        let reply = match result {
            Ok(executed) => match &executed.state {
                Some(cert) => certflow_bus::response(&respond(cert, now)),
                None => internal("the command left no certificate behind"),
            },
            // Nothing to remember of a certificate that is not there (or not the caller's):
            // a retry finds it missing again, and ids that name nothing cannot fill the
            // outcome store.
            Err(ExecuteError::Refused(CommandError::Domain(err)))
                if err.reason() == certflow_domain::Reason::NotFound =>
            {
                return refused(&err);
            }
            Err(ExecuteError::Refused(CommandError::Domain(err))) => refused(&err),
            Err(ExecuteError::Refused(CommandError::Failed(message))) => {
                warn!(%id, %message, "command failed");
                return internal("the command failed on our side; retry with the same request id");
            }
            Err(ExecuteError::Store(StoreError::RequestIdReused)) => {
                refused(&DomainError::invalid(
                    certflow_domain::Reason::RequestIdReused,
                    "this request id was used for another command; send a new request id",
                ))
            }
            Err(ExecuteError::Store(StoreError::Conflict { .. })) => {
                return Reply::refused(Refusal::service(
                    ServiceReason::ConcurrentModification,
                    "the certificate kept changing while this command was decided; retry with \
                     the same request id",
                ));
            }
            Err(ExecuteError::Store(err)) => {
                warn!(error = %err, %id, "command failed on the event log");
                return unavailable("the event log is unavailable; retry with the same request id");
            }
        };
        match self
            .outcomes
            .record(
                &meta.command_id,
                meta.binding.as_ref(),
                reply.encode_to_vec().into(),
            )
            .await
        {
            Ok(standing) => Reply::decode(standing).unwrap_or(reply),
            Err(err) => {
                // The events (if any) are in the log, which answers a retry by itself.
                warn!(error = %err, "could not record the outcome");
                reply
            }
        }
    }
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
