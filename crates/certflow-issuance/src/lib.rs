//! The issuance service: records certificates the platform issued, and stores third-party
//! certificates customers upload after parsing their PEM for real.
//!
//! It answers `certflow.cmd.issuance.>` on the queue group `issuance`. A new certificate's
//! id is derived from the command id, so a retried request lands on the same certificate
//! and is answered from its first outcome (GEN-1).

#![forbid(unsafe_code)]

mod upload;

use certflow_bus::{
    CancellationToken, CommandError, CommandRuntime, Request, Responder, command_meta,
    decode_request, not_available, refused, subjects,
};
use certflow_domain::{CertificateId, Command, DomainError, IssueCertificate, decide};
use certflow_proto::bus::v1::Reply;
use certflow_proto::convert::{
    algorithm_from_proto, brand_from_proto, certificate_to_proto, level_from_proto,
    setups_from_proto, timestamp_from_proto,
};
use certflow_proto::v1::{
    IssueCertificateRequest, IssueCertificateResponse, UploadCertificateRequest,
    UploadCertificateResponse,
};

pub use upload::parse_upload;

/// Errors starting the service.
#[derive(Debug, thiserror::Error)]
pub enum IssuanceError {
    #[error(transparent)]
    Bus(#[from] certflow_bus::BusError),
}

/// The issuance service, subscribed and ready to run.
#[derive(Debug)]
pub struct IssuanceService {
    runtime: CommandRuntime,
    responder: Responder,
}

impl IssuanceService {
    /// Subscribes to the service's commands.
    pub async fn bind(
        client: async_nats::Client,
        runtime: CommandRuntime,
    ) -> Result<Self, IssuanceError> {
        let responder = Responder::bind(client, subjects::ISSUANCE, "issuance").await?;
        Ok(IssuanceService { runtime, responder })
    }

    /// Answers commands until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        self.runtime.serve(self.responder, shutdown, handle).await;
    }
}

async fn handle(runtime: CommandRuntime, request: Request) -> Reply {
    match request.subject.as_str() {
        subjects::ISSUE_CERTIFICATE => issue(&runtime, request).await,
        subjects::UPLOAD_CERTIFICATE => upload(&runtime, request).await,
        other => not_available("issuance", other),
    }
}

/// The id of a certificate created by a command: the command id (a UUID), so a retry finds
/// the certificate its first attempt created.
fn new_certificate_id(
    meta: &certflow_eventstore::CommandMeta,
) -> Result<CertificateId, DomainError> {
    CertificateId::parse(&meta.command_id.0)
}

async fn issue(runtime: &CommandRuntime, request: Request) -> Reply {
    let parsed = decode_request::<IssueCertificateRequest>(&request).and_then(|req| {
        let meta = command_meta(&req.request_id, request.headers.as_ref())?;
        let command = IssueCertificate {
            id: new_certificate_id(&meta)?,
            account: req.account.clone(),
            brand: brand_from_proto(req.brand)?,
            level: level_from_proto(req.level)?,
            paid: req.paid,
            algorithm: algorithm_from_proto(req.key_algorithm)?,
            domains: req.domains.clone(),
            term_years: req.term_years,
            not_before: req.not_before.as_ref().map(timestamp_from_proto),
            not_after: req.not_after.as_ref().map(timestamp_from_proto),
            validation_setup: setups_from_proto(&req.validation_setup)?,
            renewal_ordered: req.renewal_ordered,
        };
        Ok((meta, command))
    });
    let (meta, command) = match parsed {
        Ok(parsed) => parsed,
        Err(err) => return refused(&err),
    };
    let id = command.id.clone();
    let command = Command::Issue(command);
    runtime
        .run(
            &meta,
            &id,
            |state, ctx| decide(state, &command, ctx).map_err(CommandError::from),
            |cert, now| IssueCertificateResponse {
                certificate: Some(certificate_to_proto(cert, now)),
            },
        )
        .await
}

async fn upload(runtime: &CommandRuntime, request: Request) -> Reply {
    let parsed = decode_request::<UploadCertificateRequest>(&request).and_then(|req| {
        let meta = command_meta(&req.request_id, request.headers.as_ref())?;
        let command = parse_upload(new_certificate_id(&meta)?, &req.account, &req.pem)?;
        Ok((meta, command))
    });
    let (meta, command) = match parsed {
        Ok(parsed) => parsed,
        Err(err) => return refused(&err),
    };
    let id = command.id.clone();
    let command = Command::Upload(command);
    runtime
        .run(
            &meta,
            &id,
            |state, ctx| decide(state, &command, ctx).map_err(CommandError::from),
            |cert, now| UploadCertificateResponse {
                certificate: Some(certificate_to_proto(cert, now)),
            },
        )
        .await
}
