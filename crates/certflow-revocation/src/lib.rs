//! The revocation service: decides revocation requests and appends their events.
//!
//! It answers `certflow.cmd.revocation.>` on the queue group `revocation`. Each request is
//! decided by the domain on the certificate's current state and appended with optimistic
//! concurrency, so of many concurrent revocations of one certificate exactly one wins and
//! the rest are decided again on the state it left (GEN-2).
//!
//! It also reacts to events (durable consumer `revocation` on the event log): a passed
//! domain validation revokes, an expired one fails the revocation (REV-11); a revoked
//! certificate's reissues are revoked with it (REV-5); a key-compromise revocation blocks
//! the public key and revokes every other live certificate carrying it, including ones
//! certified while the block was being written (REV-16, through [`KeyIndex`]). Revocations
//! waiting for a reviewer stay `REVOCATION_PENDING` with their path saying so.

#![forbid(unsafe_code)]

use certflow_bus::{
    CancellationToken, Request, Responder, actor_from_headers, bound_command_meta, decode_request,
    not_available, refused, subjects, unavailable,
};
use certflow_domain::{
    CertificateId, Command, DeleteCertificate, Event, OrderRenewal, RequestRevocation,
    cancel_revocation, decide, process,
};
use certflow_domain::{RevocationCause, RevocationReason};
use certflow_proto::bus::v1::Reply;
use certflow_proto::convert::{certificate_to_proto, method_from_proto};
use certflow_proto::v1::{
    CancelRevocationRequest, DeleteCertificateRequest, DeleteCertificateResponse,
    OrderRenewalRequest, OrderRenewalResponse, RequestRevocationRequest, RequestRevocationResponse,
};
use certflow_runtime::{CommandRuntime, ReactionError, reaction_meta, run_reactions};
use certflow_store::{KeyIndex, RecordedBatch, StoreError};
use tracing::info;

/// The service's name in logs, actors and consumer names.
const SERVICE: &str = "revocation";

/// Errors starting the service.
#[derive(Debug, thiserror::Error)]
pub enum RevocationError {
    #[error(transparent)]
    Bus(#[from] certflow_bus::BusError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The revocation service, subscribed and ready to run.
#[derive(Debug)]
pub struct RevocationService {
    runtime: CommandRuntime,
    keys: KeyIndex,
    responder: Responder,
}

impl RevocationService {
    /// Subscribes to the service's commands.
    pub async fn bind(
        client: async_nats::Client,
        runtime: CommandRuntime,
    ) -> Result<Self, RevocationError> {
        let keys = KeyIndex::attach(client.clone()).await?;
        let responder = Responder::bind(client, subjects::REVOCATION, "revocation").await?;
        Ok(RevocationService {
            runtime,
            keys,
            responder,
        })
    }

    /// Answers commands and reacts to events until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let runtime = self.runtime.clone();
        let keys = self.keys;
        let reactions = run_reactions(
            self.runtime.store.clone(),
            SERVICE,
            32,
            shutdown.clone(),
            move |batch| react(runtime.clone(), keys.clone(), batch),
        );
        let commands = self.runtime.serve(self.responder, shutdown, handle);
        tokio::join!(reactions, commands);
        info!("revocation service stopped");
    }
}

async fn handle(runtime: CommandRuntime, request: Request) -> Reply {
    match request.subject.as_str() {
        subjects::REQUEST_REVOCATION => request_revocation(&runtime, request).await,
        subjects::DELETE_CERTIFICATE => delete_certificate(&runtime, request).await,
        subjects::ORDER_RENEWAL => order_renewal(&runtime, request).await,
        subjects::CANCEL_REVOCATION => cancel(&runtime, request).await,
        other => not_available("revocation", other),
    }
}

async fn request_revocation(runtime: &CommandRuntime, request: Request) -> Reply {
    let parsed = decode_request::<RequestRevocationRequest>(&request).and_then(|req| {
        let meta = bound_command_meta(&request, &req.request_id, &req)?;
        let command = RequestRevocation {
            id: CertificateId::parse(&req.certificate_id)?,
            reason_code: req.reason,
            description: req.description,
            validation_method: method_from_proto(req.validation_method)?,
        };
        Ok((meta, command))
    });
    let (meta, command) = match parsed {
        Ok(parsed) => parsed,
        Err(err) => return refused(&err),
    };
    let id = command.id.clone();
    let command = Command::RequestRevocation(command);
    runtime
        .run(
            &meta,
            &id,
            |state, ctx| Ok(decide(state, &command, ctx)?),
            |cert, now| RequestRevocationResponse {
                certificate: Some(certificate_to_proto(cert, now)),
            },
        )
        .await
}

/// DEL-1, DEL-2: deletes a certificate; the issuance service erases its key when it sees
/// the event.
async fn delete_certificate(runtime: &CommandRuntime, request: Request) -> Reply {
    let parsed = decode_request::<DeleteCertificateRequest>(&request).and_then(|req| {
        let meta = bound_command_meta(&request, &req.request_id, &req)?;
        Ok((meta, CertificateId::parse(&req.id)?))
    });
    let (meta, id) = match parsed {
        Ok(parsed) => parsed,
        Err(err) => return refused(&err),
    };
    let command = Command::Delete(DeleteCertificate { id: id.clone() });
    runtime
        .run(
            &meta,
            &id,
            |state, ctx| Ok(decide(state, &command, ctx)?),
            |cert, now| DeleteCertificateResponse {
                certificate: Some(certificate_to_proto(cert, now)),
            },
        )
        .await
}

/// REN-1: records a renewal order, which REV-3 then reads.
async fn order_renewal(runtime: &CommandRuntime, request: Request) -> Reply {
    let parsed = decode_request::<OrderRenewalRequest>(&request).and_then(|req| {
        let meta = bound_command_meta(&request, &req.request_id, &req)?;
        Ok((meta, CertificateId::parse(&req.id)?))
    });
    let (meta, id) = match parsed {
        Ok(parsed) => parsed,
        Err(err) => return refused(&err),
    };
    let command = Command::OrderRenewal(OrderRenewal { id: id.clone() });
    runtime
        .run(
            &meta,
            &id,
            |state, ctx| Ok(decide(state, &command, ctx)?),
            |cert, now| OrderRenewalResponse {
                certificate: Some(certificate_to_proto(cert, now)),
            },
        )
        .await
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
    runtime: CommandRuntime,
    keys: KeyIndex,
    batch: RecordedBatch,
) -> Result<(), ReactionError> {
    let id = &batch.certificate_id;
    for event in &batch.events {
        match event {
            Event::Issued(certificate_issued) => {
                if let Some(x509) = &certificate_issued.x509 {
                    bind_key(&runtime, &keys, &batch, &x509.public_key_sha256).await?;
                }
            }
            Event::Uploaded(uploaded) => {
                bind_key(&runtime, &keys, &batch, &uploaded.public_key_sha256).await?;
            }
            Event::ValidationPassed(_)
            | Event::ValidationExpired(_)
            | Event::ReviewPassed(_)
            | Event::ReviewRejected(_) => {
                let meta = reaction_meta(SERVICE, "conclude", &batch, id);
                execute(&runtime, id, &meta, |state| {
                    process::conclude_revocation(state, certflow_runtime::now())
                })
                .await?;
            }
            Event::Revoked(revoked) => {
                let original = runtime.store.load(id).await?;
                let Some(cert) = original.state else { continue };
                // Its own key was compromised; a reissue revoked with its original, or a
                // certificate revoked for a key already blocked, blocks nothing new.
                if revoked.reason == RevocationReason::KeyCompromise
                    && revoked.cause == RevocationCause::Requested
                    && let Some(key) = &cert.public_key_sha256
                {
                    block_key(&runtime, &keys, &batch, key).await?;
                }
                for reissue in process::reissued_from(&cert) {
                    let meta = reaction_meta(SERVICE, "cascade", &batch, reissue);
                    execute(&runtime, reissue, &meta, |state| {
                        process::revoke_with_original(
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
            process::revoke_for_key_compromise(state, &compromised, certflow_runtime::now())
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
            process::revoke_for_key_compromise(state, compromised, certflow_runtime::now())
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
