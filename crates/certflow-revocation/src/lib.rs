//! The revocation service: decides revocation requests and appends their events.
//!
//! It answers `certflow.cmd.revocation.>` on the queue group `revocation`. Each request is
//! decided by the domain on the certificate's current state and appended with optimistic
//! concurrency, so of many concurrent revocations of one certificate exactly one wins and
//! the rest are decided again on the state it left (GEN-2).
//!
//! Revocations whose path needs domain validation or a reviewer (REV-10) are refused with
//! `UNIMPLEMENTED` for now, before anything is appended, so no certificate is left waiting
//! on a step that nothing would take.

#![forbid(unsafe_code)]

use certflow_bus::{
    CancellationToken, CommandError, CommandRuntime, Request, Responder, command_meta,
    decode_request, not_available, refused, subjects,
};
use certflow_domain::{
    CertificateId, Command, DeleteCertificate, Event, OrderRenewal, RequestRevocation,
    RevocationPath, decide,
};
use certflow_proto::bus::v1::Reply;
use certflow_proto::convert::certificate_to_proto;
use certflow_proto::v1::{
    DeleteCertificateRequest, DeleteCertificateResponse, OrderRenewalRequest, OrderRenewalResponse,
    RequestRevocationRequest, RequestRevocationResponse,
};

/// Errors starting the service.
#[derive(Debug, thiserror::Error)]
pub enum RevocationError {
    #[error(transparent)]
    Bus(#[from] certflow_bus::BusError),
}

/// The revocation service, subscribed and ready to run.
#[derive(Debug)]
pub struct RevocationService {
    runtime: CommandRuntime,
    responder: Responder,
}

impl RevocationService {
    /// Subscribes to the service's commands.
    pub async fn bind(
        client: async_nats::Client,
        runtime: CommandRuntime,
    ) -> Result<Self, RevocationError> {
        let responder = Responder::bind(client, subjects::REVOCATION, "revocation").await?;
        Ok(RevocationService { runtime, responder })
    }

    /// Answers commands until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        self.runtime.serve(self.responder, shutdown, handle).await;
    }
}

async fn handle(runtime: CommandRuntime, request: Request) -> Reply {
    match request.subject.as_str() {
        subjects::REQUEST_REVOCATION => request_revocation(&runtime, request).await,
        subjects::DELETE_CERTIFICATE => delete_certificate(&runtime, request).await,
        subjects::ORDER_RENEWAL => order_renewal(&runtime, request).await,
        other => not_available("revocation", other),
    }
}

async fn request_revocation(runtime: &CommandRuntime, request: Request) -> Reply {
    let parsed = decode_request::<RequestRevocationRequest>(&request).and_then(|req| {
        let meta = command_meta(&req.request_id, request.headers.as_ref())?;
        let command = RequestRevocation {
            id: CertificateId::parse(&req.certificate_id)?,
            reason_code: req.reason,
            description: req.description,
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
            |state, ctx| {
                let events = decide(state, &command, ctx)?;
                refuse_unavailable_paths(&events)?;
                Ok(events)
            },
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
        let meta = command_meta(&req.request_id, request.headers.as_ref())?;
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
        let meta = command_meta(&req.request_id, request.headers.as_ref())?;
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

/// Domain validation by the customer and manual review come with the validation and review
/// services; until then such a request is refused rather than left pending forever.
fn refuse_unavailable_paths(events: &[Event]) -> Result<(), CommandError> {
    for event in events {
        if let Event::RevocationRequested(requested) = event {
            match requested.path {
                RevocationPath::Immediate | RevocationPath::AutomaticValidation => {}
                RevocationPath::DomainValidation => {
                    return Err(CommandError::Unimplemented(
                        "this certificate needs domain validation by DNS or file to be \
                         revoked, which is not available yet; set up DNS_AUTO validation for \
                         its domains or contact support"
                            .into(),
                    ));
                }
                RevocationPath::ManualReview { .. } => {
                    return Err(CommandError::Unimplemented(
                        "this certificate's brand and level need a manual review to be \
                         revoked, which is not available yet; contact support"
                            .into(),
                    ));
                }
            }
        }
    }
    Ok(())
}
