//! The revocation service: decides revocation requests, deletions and renewal orders, and
//! appends their events.
//!
//! It answers `certflow.cmd.revocation.>` on the queue group `revocation`. Each request is
//! decided by the domain on the certificate's current state and appended with optimistic
//! concurrency, so of many concurrent revocations of one certificate exactly one wins and
//! the rest are decided again on the state it left (GEN-2). A submitted revocation cannot be
//! cancelled (REV-7); a cancel request is answered saying so.
//!
//! It also reacts to events (durable consumer `revocation` on the event log): a passed
//! domain validation or review revokes, an expired validation or a rejected review fails the
//! revocation (REV-11); a revoked certificate's reissues are revoked with it (REV-5); a
//! key-compromise revocation blocks the public key and revokes every other live certificate
//! carrying it, including ones certified while the block was being written (REV-16, through
//! [`KeyIndex`]). Revocations waiting for a reviewer stay `REVOCATION_PENDING` with their
//! path saying so.
//!
//! ## Layout
//!
//! - `acme` (private): revocations asked over ACME, signed with the certificate's key or by
//!   an account.
//!
//! The commands (`answer`), the reactions (`react`) and the two sides of the key-compromise
//! race (`bind_key`, `block_key`) are in this file.

#![forbid(unsafe_code)]

mod acme;

use async_nats::HeaderMap;
use certflow_bus::{
    Request, actor_from_headers, decode_request, not_available, refused, subjects, unavailable,
};
use certflow_domain::{
    CertificateId, Command, DeleteCertificate, Event, OrderRenewal, RequestRevocation,
    cancel_revocation, reactions,
};
use certflow_domain::{DomainError, Reason, RevocationCause, RevocationReason, Role, Rule};
use certflow_proto::bus::v1::{Reply, RevocationBatch, RevocationBatchReply};
use certflow_proto::convert::method_from_proto;
use certflow_proto::v1::{
    CancelRevocationRequest, DeleteCertificateRequest, DeleteCertificateResponse,
    OrderRenewalRequest, OrderRenewalResponse, RequestRevocationRequest, RequestRevocationResponse,
};
use certflow_runtime::{
    CommandRuntime, ReactionError, Reacts, Service, ServiceSpec, StartError, reaction_meta,
};
use certflow_store::{KeyIndex, RecordedBatch};

/// The service's name in logs, actors and consumer names.
const SERVICE: &str = "revocation";
/// Most revocations one batch may carry: its reply (each certificate as revoked, some
/// 3 KB) stays well under a NATS message.
pub const MAX_BATCH: usize = 500;

/// The revocation service: its commands, and the key index it keeps compromised keys out
/// with.
#[derive(Debug, Clone)]
pub struct RevocationService {
    runtime: CommandRuntime,
    keys: KeyIndex,
}

impl RevocationService {
    /// The service on `runtime`, with the key index it needs.
    pub async fn new(
        client: async_nats::Client,
        runtime: CommandRuntime,
    ) -> Result<Self, StartError> {
        let keys = KeyIndex::attach(client).await?;
        Ok(RevocationService { runtime, keys })
    }
}

impl Service for RevocationService {
    const SPEC: ServiceSpec =
        ServiceSpec::answering(SERVICE, &[subjects::REVOCATION]).reacting(Reacts::STANDARD);

    async fn answer(&self, request: Request) -> Reply {
        let runtime = &self.runtime;
        match request.subject.as_str() {
            subjects::REQUEST_REVOCATION => match decode_request(&request) {
                Ok(req) => {
                    request_revocation(runtime, &request.subject, request.headers.as_ref(), req)
                        .await
                }
                Err(err) => refused(&err),
            },
            subjects::REVOCATION_BATCH => revoke_batch(runtime, request).await,
            // DEL-1, DEL-2: the issuance service erases the key when it sees the event.
            subjects::DELETE_CERTIFICATE => {
                runtime
                    .decide_request(
                        &request,
                        |req: &DeleteCertificateRequest| &req.request_id,
                        |req| {
                            Ok(Command::Delete(DeleteCertificate {
                                id: CertificateId::parse(&req.id)?,
                            }))
                        },
                        |certificate| DeleteCertificateResponse { certificate },
                    )
                    .await
            }
            // REN-1: a renewal order, which REV-3 then reads.
            subjects::ORDER_RENEWAL => {
                runtime
                    .decide_request(
                        &request,
                        |req: &OrderRenewalRequest| &req.request_id,
                        |req| {
                            Ok(Command::OrderRenewal(OrderRenewal {
                                id: CertificateId::parse(&req.id)?,
                            }))
                        },
                        |certificate| OrderRenewalResponse { certificate },
                    )
                    .await
            }
            subjects::CANCEL_REVOCATION => cancel(runtime, request).await,
            subjects::ACME_REVOCATION => acme::revoke(runtime, &self.keys, request).await,
            other => not_available(SERVICE, other),
        }
    }

    async fn react(&self, batch: RecordedBatch) -> Result<(), ReactionError> {
        react(&self.runtime, &self.keys, batch).await
    }
}

/// One `RequestRevocation`, decoded, as sent to `rpc` with `headers`: decided on the
/// certificate's state, appended, recorded (GEN-1).
async fn request_revocation(
    runtime: &CommandRuntime,
    rpc: &str,
    headers: Option<&HeaderMap>,
    req: RequestRevocationRequest,
) -> Reply {
    runtime
        .decide_decoded(
            rpc,
            headers,
            req,
            |req: &RequestRevocationRequest| &req.request_id,
            |req| {
                Ok(Command::RequestRevocation(RequestRevocation {
                    id: CertificateId::parse(&req.certificate_id)?,
                    reason_code: req.reason,
                    description: req.description,
                    validation_method: method_from_proto(req.validation_method)?,
                }))
            },
            |certificate| RequestRevocationResponse { certificate },
        )
        .await
}

/// GEN-6: the revocations of one bulk revocation, all at once, each decided, appended and
/// recorded as the `RequestRevocation` it stands for, so retrying a request by itself or in
/// another batch is answered as it was. Only an admin sends batches (the gateway's
/// `BulkRevoke`).
async fn revoke_batch(runtime: &CommandRuntime, request: Request) -> Reply {
    let batch = match decode_request::<RevocationBatch>(&request) {
        Ok(batch) => batch,
        Err(err) => return refused(&err),
    };
    let headers = request.headers.as_ref();
    if !actor_from_headers(headers).roles.contains(&Role::Admin) {
        return refused(&DomainError::permission_denied(
            Rule::Gen3,
            Reason::RoleRequired,
            "a batch of revocations is a bulk revocation, which needs the admin role; revoke \
             your own certificates one by one with RequestRevocation",
        ));
    }
    if batch.requests.len() > MAX_BATCH {
        return refused(&DomainError::invalid(
            Reason::InvalidArgument,
            format!(
                "a batch holds at most {MAX_BATCH} revocations and this one holds {}; send \
                 them in batches of {MAX_BATCH} or fewer",
                batch.requests.len()
            ),
        ));
    }
    let singles = batch
        .requests
        .into_iter()
        .map(|single| request_revocation(runtime, subjects::REQUEST_REVOCATION, headers, single));
    let replies = futures::future::join_all(singles).await;
    certflow_bus::response(&RevocationBatchReply { replies })
}

/// REV-7: there is no cancelling a revocation; this says so, or that there is no such
/// certificate for the caller.
async fn cancel(runtime: &CommandRuntime, request: Request) -> Reply {
    let id = match decode_request::<CancelRevocationRequest>(&request)
        .and_then(|req| CertificateId::parse(&req.certificate_id))
    {
        Ok(id) => id,
        Err(err) => return refused(&err),
    };
    let actor = actor_from_headers(request.headers.as_ref());
    match runtime.store.load(&id).await {
        Ok(loaded) => refused(&cancel_revocation(&loaded.state, &id, &actor)),
        Err(err) => unavailable(err.to_string()),
    }
}

/// What the service does when events arrive: conclude validated revocations (REV-11),
/// revoke the reissues of a revoked certificate (REV-5), and keep compromised keys out
/// (REV-16).
async fn react(
    runtime: &CommandRuntime,
    keys: &KeyIndex,
    batch: RecordedBatch,
) -> Result<(), ReactionError> {
    let id = &batch.certificate_id;
    for event in &batch.events {
        match event {
            Event::Issued(certificate_issued) => {
                if let Some(x509) = &certificate_issued.x509 {
                    bind_key(runtime, keys, &batch, &x509.public_key_sha256).await?;
                }
            }
            Event::Uploaded(uploaded) => {
                bind_key(runtime, keys, &batch, &uploaded.public_key_sha256).await?;
            }
            Event::ValidationPassed(_)
            | Event::ValidationExpired(_)
            | Event::ReviewPassed(_)
            | Event::ReviewRejected(_) => {
                let meta = reaction_meta(SERVICE, "conclude", &batch, id);
                execute(runtime, id, &meta, |state| {
                    reactions::conclude_revocation(state, certflow_runtime::now())
                })
                .await?;
            }
            Event::Revoked(revoked) => {
                let original = runtime.store.load(id).await?;
                let Some(cert) = original.state else { continue };
                // Its own key was compromised; a reissue revoked with its original, or a
                // certificate revoked for a key already blocked, blocks nothing new.
                if revoked.reason == RevocationReason::KeyCompromise
                    && matches!(
                        revoked.cause,
                        RevocationCause::Requested | RevocationCause::KeyProven
                    )
                    && let Some(key) = &cert.public_key_sha256
                {
                    block_key(runtime, keys, &batch, key).await?;
                }
                for reissue in reactions::reissued_from(&cert) {
                    let meta = reaction_meta(SERVICE, "cascade", &batch, reissue);
                    execute(runtime, reissue, &meta, |state| {
                        reactions::revoke_with_original(
                            state,
                            id,
                            revoked.reason,
                            certflow_runtime::now(),
                        )
                    })
                    .await?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// REV-16, certifying side: record the certificate under its key, then look for a block.
/// A block written before the binding is found here and revokes the certificate.
async fn bind_key(
    runtime: &CommandRuntime,
    keys: &KeyIndex,
    batch: &RecordedBatch,
    key: &str,
) -> Result<(), ReactionError> {
    let id = &batch.certificate_id;
    keys.bind(key, id).await?;
    if let Some(compromised) = keys.blocked_by(key).await?
        && &compromised != id
    {
        let meta = reaction_meta(SERVICE, "key-blocked", batch, id);
        execute(runtime, id, &meta, |state| {
            reactions::revoke_for_key_compromise(state, &compromised, certflow_runtime::now())
        })
        .await?;
    }
    Ok(())
}

/// REV-16, blocking side: block the key, then revoke every other certificate bound to it.
/// A binding written before the block is found here.
async fn block_key(
    runtime: &CommandRuntime,
    keys: &KeyIndex,
    batch: &RecordedBatch,
    key: &str,
) -> Result<(), ReactionError> {
    let compromised = &batch.certificate_id;
    keys.block(key, compromised).await?;
    for other in keys.certificates(key).await? {
        if &other == compromised {
            continue;
        }
        let meta = reaction_meta(SERVICE, "key-compromise", batch, &other);
        execute(runtime, &other, &meta, |state| {
            reactions::revoke_for_key_compromise(state, compromised, certflow_runtime::now())
        })
        .await?;
    }
    Ok(())
}

async fn execute(
    runtime: &CommandRuntime,
    id: &CertificateId,
    meta: &certflow_bus::CommandMeta,
    decide: impl FnMut(&certflow_domain::State) -> Vec<Event>,
) -> Result<(), ReactionError> {
    runtime.store.execute_reaction(id, meta, decide).await?;
    Ok(())
}
