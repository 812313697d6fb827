//! The gRPC gateway: the only door into certflow.
//!
//! It serves `certflow.v1.CertificateService` and `certflow.v1.RevocationService`, plus
//! `grpc.health.v1.Health` and server reflection (v1 and v1alpha, so grpcurl, ghz and
//! generated clients can discover the API). It decides nothing: each call is forwarded over
//! NATS request-reply to the service that owns it (commands) or to the projection (queries),
//! with the caller and a correlation id in headers, and the service's reply is turned back
//! into a gRPC response or a status carrying a `google.rpc.ErrorInfo` (domain `certs`).
//!
//! Callers are not authenticated yet: every caller acts as the local operator with the
//! admin role, so bind the gateway to loopback.

#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::net::SocketAddr;

use async_nats::HeaderMap;
use bytes::Bytes;
use certflow_bus::{BusClient, BusError, Outcome, Refusal, code, subjects};
use certflow_domain::{Actor, Role};
use certflow_eventstore::{headers, write_actor};
use certflow_proto::v1::certificate_service_server::{
    CertificateService, CertificateServiceServer,
};
use certflow_proto::v1::revocation_service_server::{RevocationService, RevocationServiceServer};
use certflow_proto::v1::*;
use prost::Message;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::metadata::MetadataMap;
use tonic::{Code, Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt};
use tracing::{info, warn};

pub use certflow_bus::CancellationToken;

/// The `ErrorInfo.domain` of every refusal.
pub const ERROR_DOMAIN: &str = "certs";
/// Metadata key a client may set to tie its calls together; echoed into every event.
pub const CORRELATION_HEADER: &str = "x-correlation-id";

/// Errors of the gateway's server.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("cannot serve gRPC: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("cannot build reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("cannot read the listener's address: {0}")]
    Io(#[from] std::io::Error),
}

/// The gateway's handlers: a NATS client and nothing else.
#[derive(Debug, Clone)]
pub struct Gateway {
    bus: BusClient,
}

impl Gateway {
    /// A gateway that forwards through `bus`.
    pub fn new(bus: BusClient) -> Self {
        Gateway { bus }
    }

    /// Serves gRPC on `listener` until `shutdown`.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> Result<(), GatewayError> {
        let address: SocketAddr = listener.local_addr()?;
        let (health, health_service) = tonic_health::server::health_reporter();
        health
            .set_serving::<CertificateServiceServer<Gateway>>()
            .await;
        health
            .set_serving::<RevocationServiceServer<Gateway>>()
            .await;
        let reflection_v1 = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(certflow_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()?;
        let reflection_v1alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(certflow_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1alpha()?;
        info!(%address, "gateway listening");
        tonic::transport::Server::builder()
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(CertificateServiceServer::new(self.clone()))
            .add_service(RevocationServiceServer::new(self))
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown.cancelled())
            .await?;
        Ok(())
    }

    /// Sends `request` to `subject` and decodes the reply as `Resp`.
    async fn forward<Req: Message, Resp: Message + Default>(
        &self,
        subject: &str,
        request: Request<Req>,
    ) -> Result<Response<Resp>, Status> {
        let mut headers = HeaderMap::new();
        write_actor(&mut headers, &caller(request.metadata()));
        let correlation = request
            .metadata()
            .get(CORRELATION_HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= 128)
            .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_string);
        headers.insert(headers::CORRELATION_ID, correlation.as_str());
        if let Some(traceparent) = request
            .metadata()
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
        {
            headers.insert(headers::TRACEPARENT, traceparent);
        }
        let payload = Bytes::from(request.into_inner().encode_to_vec());
        let reply = self
            .bus
            .request(subject, headers, payload)
            .await
            .map_err(bus_status)?;
        match reply.outcome {
            Some(Outcome::Response(bytes)) => Resp::decode(bytes.as_slice())
                .map(Response::new)
                .map_err(|err| {
                    warn!(%subject, error = %err, "undecodable response from a service");
                    Status::internal("a service answered with an undecodable response")
                }),
            Some(Outcome::Refusal(refusal)) => Err(refusal_status(refusal)),
            None => Err(Status::internal("a service answered with an empty reply")),
        }
    }
}

/// Who is calling. Until authentication is in place every caller is the local operator.
fn caller(_metadata: &MetadataMap) -> Actor {
    Actor {
        subject: "local-operator".into(),
        account: "local".into(),
        roles: vec![Role::Admin],
    }
}

/// A refusal as a gRPC status with `ErrorInfo { reason, domain: "certs" }`.
fn refusal_status(refusal: Refusal) -> Status {
    let code = Code::from_i32(refusal.code);
    let mut metadata = HashMap::new();
    if !refusal.rule.is_empty() {
        metadata.insert("rule".to_string(), refusal.rule);
    }
    Status::with_error_details(
        code,
        refusal.message,
        ErrorDetails::with_error_info(refusal.reason, ERROR_DOMAIN, metadata),
    )
}

fn bus_status(err: BusError) -> Status {
    let (reason, message) = match &err {
        BusError::NoResponders(_) => (
            "SERVICE_UNAVAILABLE",
            "the service that handles this call is not running; try again shortly".to_string(),
        ),
        BusError::TimedOut(_) => (
            "SERVICE_TIMEOUT",
            "the service did not answer in time; retry with the same request id".to_string(),
        ),
        BusError::BadReply { .. } | BusError::Nats(_) => {
            warn!(error = %err, "bus failure");
            (
                "BUS_UNAVAILABLE",
                "the message bus is unavailable; retry with the same request id".to_string(),
            )
        }
    };
    refusal_status(Refusal {
        code: code::UNAVAILABLE,
        reason: reason.into(),
        message,
        rule: String::new(),
    })
}

#[tonic::async_trait]
impl CertificateService for Gateway {
    async fn issue_certificate(
        &self,
        request: Request<IssueCertificateRequest>,
    ) -> Result<Response<IssueCertificateResponse>, Status> {
        self.forward(subjects::ISSUE_CERTIFICATE, request).await
    }

    async fn upload_certificate(
        &self,
        request: Request<UploadCertificateRequest>,
    ) -> Result<Response<UploadCertificateResponse>, Status> {
        self.forward(subjects::UPLOAD_CERTIFICATE, request).await
    }

    async fn get_certificate(
        &self,
        request: Request<GetCertificateRequest>,
    ) -> Result<Response<GetCertificateResponse>, Status> {
        self.forward(subjects::GET_CERTIFICATE, request).await
    }

    async fn list_certificates(
        &self,
        request: Request<ListCertificatesRequest>,
    ) -> Result<Response<ListCertificatesResponse>, Status> {
        self.forward(subjects::LIST_CERTIFICATES, request).await
    }

    async fn get_certificate_history(
        &self,
        request: Request<GetCertificateHistoryRequest>,
    ) -> Result<Response<GetCertificateHistoryResponse>, Status> {
        self.forward(subjects::CERTIFICATE_HISTORY, request).await
    }
}

#[tonic::async_trait]
impl RevocationService for Gateway {
    async fn request_revocation(
        &self,
        request: Request<RequestRevocationRequest>,
    ) -> Result<Response<RequestRevocationResponse>, Status> {
        self.forward(subjects::REQUEST_REVOCATION, request).await
    }
}
