//! The gRPC gateway: the only door into certflow.
//!
//! It serves the `certflow.v1` services `CertificateService`, `RevocationService`,
//! `ReissueService`, `ReviewService`, `NotificationService` and `CrlService`, plus `grpc.health.v1.Health` and
//! server reflection (v1 and v1alpha, so grpcurl, ghz and generated clients can discover the
//! API). It decides nothing: each call is forwarded over NATS request-reply to the service
//! that owns it (commands) or to the projection (queries), with the caller and a correlation
//! id in headers, and the service's reply is turned back into a gRPC response or a status
//! carrying a `google.rpc.ErrorInfo` (domain `certs`, see [`status`]).
//!
//! Every RPC but health, reflection, `GetCrl` and `ListCrls` needs a bearer JWT ([`auth`]);
//! the roles it carries decide which RPCs may be called, and the account it names is the
//! only account the caller acts for (GEN-3). Commands and queries are rate limited per account and RPC, each
//! at its own rate. TLS (rustls), with optional client certificates, is on unless plaintext
//! is configured. CRLs are also served over plain HTTP, where certificates point to them,
//! and standard ACME clients revoke through an ACME endpoint on a listener of its own.
//!
//! ## Layout
//!
//! - [`acme`]: the ACME endpoint (RFC 8555): directory, nonces, accounts with External
//!   Account Binding, `revokeCert`.
//! - [`auth`]: bearer JWTs checked against configured keys, roles per RPC, development tokens.
//! - `bulk` (private): bulk revocation (GEN-6): one admin call fanned out, results streamed.
//! - [`crl_http`]: CRLs over plain HTTP at their distribution points, `GET /crl/…`.
//! - `health` (private): gRPC health, `NOT_SERVING` while NATS is gone or the projection replays.
//! - [`observe`]: the tower layer giving every call a span, a count and a latency.
//! - `review` (private): `ReviewService`: stamped documents via the document store, review tasks.
//! - `sealed` (private): a reissue's key password, sealed to the issuance service's transport key.
//! - [`status`]: every status the gateway answers with, each with its `ErrorInfo`.

#![forbid(unsafe_code)]

pub mod acme;
pub mod auth;
mod bulk;
pub mod crl_http;
mod health;
pub mod observe;
mod review;
mod sealed;
pub mod status;

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use certflow_bus::{BusClient, Envelope, Outcome, ServiceReason, subjects};
use certflow_domain::Role;
use certflow_proto::bus::v1::Reply;
use certflow_proto::v1::acme_service_server::{AcmeService, AcmeServiceServer};
use certflow_proto::v1::certificate_service_server::{
    CertificateService, CertificateServiceServer,
};
use certflow_proto::v1::crl_service_server::{CrlService, CrlServiceServer};
use certflow_proto::v1::notification_service_server::{
    NotificationService, NotificationServiceServer,
};
use certflow_proto::v1::reissue_service_server::{ReissueService, ReissueServiceServer};
use certflow_proto::v1::review_service_server::ReviewServiceServer;
use certflow_proto::v1::revocation_service_server::{RevocationService, RevocationServiceServer};
use certflow_proto::v1::*;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use prost::Message;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};
use tonic::{Request, Response, Status};
use tracing::{info, warn};

use crate::auth::{AuthError, Authenticator, KeySource, require_role};

pub use certflow_bus::CancellationToken;

pub use status::ERROR_DOMAIN;
/// Metadata key a client may set to tie its calls together; echoed into every event.
pub const CORRELATION_HEADER: &str = "x-correlation-id";

/// TLS for the gateway: its certificate and key, and optionally the CA that client
/// certificates must chain to (then every client must present one).
#[derive(Debug, Clone)]
pub struct TlsConfig {
    pub certificate_pem: PathBuf,
    pub key_pem: PathBuf,
    pub client_ca_pem: Option<PathBuf>,
}

/// How the gateway authenticates, limits and secures calls.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Keys that sign callers' tokens.
    pub token_keys: Vec<KeySource>,
    /// Commands per second per account and RPC.
    pub commands_per_second: u32,
    /// Queries per second per account and RPC: reads cost the services too, and one
    /// account's polling must not slow every other account's.
    pub queries_per_second: u32,
    /// TLS; `None` serves plaintext (local development only).
    pub tls: Option<TlsConfig>,
}

/// Errors of the gateway's server.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the {0} rate limit must be at least 1 per second")]
    RateLimit(&'static str),
    #[error("cannot serve gRPC: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("cannot build reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("cannot read the listener's address: {0}")]
    Io(#[from] std::io::Error),
}

/// One RPC: where it goes, who may call it, and whether it is a rate-limited command.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rpc {
    name: &'static str,
    subject: &'static str,
    roles: &'static [Role],
    command: bool,
}

pub(crate) const CUSTOMER_OR_ADMIN: &[Role] = &[Role::Customer, Role::Admin];

const ISSUE: Rpc = Rpc {
    name: "IssueCertificate",
    subject: subjects::ISSUE_CERTIFICATE,
    roles: CUSTOMER_OR_ADMIN,
    command: true,
};
const UPLOAD: Rpc = Rpc {
    name: "UploadCertificate",
    subject: subjects::UPLOAD_CERTIFICATE,
    roles: CUSTOMER_OR_ADMIN,
    command: true,
};
const RECORD_LEGACY: Rpc = Rpc {
    name: "RecordLegacyCertificate",
    subject: subjects::RECORD_LEGACY_CERTIFICATE,
    roles: &[Role::Admin],
    command: true,
};
const GET: Rpc = Rpc {
    name: "GetCertificate",
    subject: subjects::GET_CERTIFICATE,
    roles: CUSTOMER_OR_ADMIN,
    command: false,
};
const LIST: Rpc = Rpc {
    name: "ListCertificates",
    subject: subjects::LIST_CERTIFICATES,
    roles: CUSTOMER_OR_ADMIN,
    command: false,
};
const HISTORY: Rpc = Rpc {
    name: "GetCertificateHistory",
    subject: subjects::CERTIFICATE_HISTORY,
    roles: CUSTOMER_OR_ADMIN,
    command: false,
};
const DOWNLOAD: Rpc = Rpc {
    name: "DownloadCertificate",
    subject: subjects::DOWNLOAD_CERTIFICATE,
    roles: CUSTOMER_OR_ADMIN,
    command: false,
};
const DELETE: Rpc = Rpc {
    name: "DeleteCertificate",
    subject: subjects::DELETE_CERTIFICATE,
    roles: CUSTOMER_OR_ADMIN,
    command: true,
};
const RENEW: Rpc = Rpc {
    name: "OrderRenewal",
    subject: subjects::ORDER_RENEWAL,
    roles: CUSTOMER_OR_ADMIN,
    command: true,
};
const REVOKE: Rpc = Rpc {
    name: "RequestRevocation",
    subject: subjects::REQUEST_REVOCATION,
    roles: CUSTOMER_OR_ADMIN,
    command: true,
};
/// Answered by the gateway itself, which keeps the ACME endpoint's keys: no subject.
const CREATE_EAB: Rpc = Rpc {
    name: "CreateExternalAccountKey",
    subject: "",
    roles: &[Role::Customer],
    command: true,
};
const REISSUE: Rpc = Rpc {
    name: "RequestReissue",
    subject: subjects::REQUEST_REISSUE,
    roles: CUSTOMER_OR_ADMIN,
    command: true,
};
const CHECK_VALIDATION: Rpc = Rpc {
    name: "CheckValidation",
    subject: subjects::CHECK_VALIDATION,
    roles: CUSTOMER_OR_ADMIN,
    // It probes DNS and HTTP servers on the caller's behalf: limited like a command.
    command: true,
};
const CREATE_ENDPOINT: Rpc = Rpc {
    name: "CreateEndpoint",
    subject: subjects::CREATE_ENDPOINT,
    roles: CUSTOMER_OR_ADMIN,
    command: true,
};
const LIST_ENDPOINTS: Rpc = Rpc {
    name: "ListEndpoints",
    subject: subjects::LIST_ENDPOINTS,
    roles: CUSTOMER_OR_ADMIN,
    command: false,
};
const ROTATE_ENDPOINT_SECRET: Rpc = Rpc {
    name: "RotateEndpointSecret",
    subject: subjects::ROTATE_ENDPOINT_SECRET,
    roles: CUSTOMER_OR_ADMIN,
    command: true,
};
const DELETE_ENDPOINT: Rpc = Rpc {
    name: "DeleteEndpoint",
    subject: subjects::DELETE_ENDPOINT,
    roles: CUSTOMER_OR_ADMIN,
    command: true,
};
const LIST_DEAD_LETTERS: Rpc = Rpc {
    name: "ListDeadLetters",
    subject: subjects::LIST_DEAD_LETTERS,
    roles: CUSTOMER_OR_ADMIN,
    command: false,
};
const REPLAY_DEAD_LETTER: Rpc = Rpc {
    name: "ReplayDeadLetter",
    subject: subjects::REPLAY_DEAD_LETTER,
    roles: CUSTOMER_OR_ADMIN,
    command: true,
};
const CANCEL_REVOCATION: Rpc = Rpc {
    name: "CancelRevocation",
    subject: subjects::CANCEL_REVOCATION,
    roles: CUSTOMER_OR_ADMIN,
    command: false,
};
const BULK_REVOKE: Rpc = Rpc {
    name: "BulkRevoke",
    subject: subjects::REQUEST_REVOCATION,
    roles: &[Role::Admin],
    command: true,
};

/// The gateway's handlers: a NATS client, the token keys and the rate limiter.
#[derive(Clone)]
pub struct Gateway {
    bus: BusClient,
    documents: review::ReviewStores,
    auth: Arc<Authenticator>,
    commands: Arc<DefaultKeyedRateLimiter<(String, &'static str)>>,
    queries: Arc<DefaultKeyedRateLimiter<(String, &'static str)>>,
    /// Rate checks since the limiters last forgot idle accounts.
    checks: Arc<std::sync::atomic::AtomicU64>,
    tls: Option<TlsConfig>,
    readiness: certflow_telemetry::Readiness,
    transport: sealed::TransportKeys,
    /// The ACME endpoint's store and directory URL, where one is served.
    acme: Option<(certflow_store::AcmeStore, String)>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("auth", &self.auth)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

fn read(path: &PathBuf) -> Result<Vec<u8>, GatewayError> {
    std::fs::read(path).map_err(|source| GatewayError::Read {
        path: path.clone(),
        source,
    })
}

impl Gateway {
    /// A gateway that forwards through `bus`, configured by `config`.
    pub fn new(bus: BusClient, config: &GatewayConfig) -> Result<Self, GatewayError> {
        let limiter = |per_second: u32, kind: &'static str| {
            let per_second = NonZeroU32::new(per_second).ok_or(GatewayError::RateLimit(kind))?;
            Ok::<_, GatewayError>(Arc::new(RateLimiter::keyed(Quota::per_second(per_second))))
        };
        Ok(Gateway {
            documents: review::ReviewStores::new(bus.nats().clone()),
            bus,
            auth: Arc::new(Authenticator::load(&config.token_keys)?),
            commands: limiter(config.commands_per_second, "command")?,
            queries: limiter(config.queries_per_second, "query")?,
            checks: Arc::new(std::sync::atomic::AtomicU64::new(0)),
            tls: config.tls.clone(),
            readiness: certflow_telemetry::Readiness::default(),
            transport: sealed::TransportKeys::default(),
            acme: None,
        })
    }

    /// Makes EAB keys (`AcmeService`) in `store` for the ACME endpoint whose directory is
    /// `directory_url`.
    pub fn with_acme(mut self, store: certflow_store::AcmeStore, directory_url: String) -> Self {
        self.acme = Some((store, directory_url));
        self
    }

    /// Reports whether the gateway can serve (NATS up, projection caught up) to
    /// `readiness` as well as through gRPC health.
    pub fn with_readiness(mut self, readiness: certflow_telemetry::Readiness) -> Self {
        self.readiness = readiness;
        self
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
        health.set_serving::<ReviewServiceServer<Gateway>>().await;
        health.set_serving::<ReissueServiceServer<Gateway>>().await;
        health
            .set_serving::<NotificationServiceServer<Gateway>>()
            .await;
        tokio::spawn(health::watch(
            self.bus.clone(),
            health,
            self.readiness.clone(),
            shutdown.clone(),
        ));
        let reflection_v1 = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(certflow_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()?;
        let reflection_v1alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(certflow_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1alpha()?;
        let mut server = tonic::transport::Server::builder();
        if let Some(tls) = &self.tls {
            let identity = Identity::from_pem(read(&tls.certificate_pem)?, read(&tls.key_pem)?);
            let mut config = ServerTlsConfig::new().identity(identity);
            if let Some(ca) = &tls.client_ca_pem {
                config = config.client_ca_root(Certificate::from_pem(read(ca)?));
            }
            server = server.tls_config(config)?;
        }
        info!(%address, tls = self.tls.is_some(), "gateway listening");
        server
            .layer(observe::ObserveLayer::new(&[
                certflow_proto::FILE_DESCRIPTOR_SET,
                tonic_health::pb::FILE_DESCRIPTOR_SET,
            ]))
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(CertificateServiceServer::new(self.clone()))
            .add_service(CrlServiceServer::new(self.clone()))
            .add_service(AcmeServiceServer::new(self.clone()))
            .add_service(RevocationServiceServer::new(self.clone()))
            .add_service(ReviewServiceServer::new(self.clone()))
            .add_service(NotificationServiceServer::new(self.clone()))
            .add_service(ReissueServiceServer::new(self))
            // No Nagle: a small response must not wait for the client's delayed ACK.
            .serve_with_incoming_shutdown(
                TcpIncoming::from(listener).with_nodelay(Some(true)),
                shutdown.cancelled(),
            )
            .await?;
        Ok(())
    }

    /// Authenticates the caller, checks its role and rate, sends `request` to the RPC's
    /// subject and decodes the reply as `Resp`.
    pub(crate) async fn forward<Req: Message, Resp: Message + Default>(
        &self,
        rpc: Rpc,
        request: Request<Req>,
    ) -> Result<Response<Resp>, Status> {
        let (envelope, request) = self.admit(rpc, request)?;
        self.send(rpc, &envelope, &request).await
    }

    /// Authenticates the caller and checks its role and rate: the envelope its call travels
    /// in on the bus, and the request.
    pub(crate) fn admit<Req>(
        &self,
        rpc: Rpc,
        request: Request<Req>,
    ) -> Result<(Envelope, Req), Status> {
        let actor = self.auth.authenticate(request.metadata())?;
        require_role(&actor, rpc.roles, rpc.name)?;
        if rpc.command {
            self.check_rate(&actor.account, rpc.name)?;
        } else {
            self.check_query_rate(&actor.account, rpc.name)?;
        }
        let envelope = envelope(actor, request.metadata());
        Ok((envelope, request.into_inner()))
    }

    /// Sends an admitted `request` to the RPC's subject in `envelope` and decodes the reply
    /// as `Resp`.
    pub(crate) async fn send<Req: Message, Resp: Message + Default>(
        &self,
        rpc: Rpc,
        envelope: &Envelope,
        request: &Req,
    ) -> Result<Response<Resp>, Status> {
        if request.encoded_len() > MAX_FORWARDED_REQUEST {
            return Err(status::invalid_argument(format!(
                "the request is {} bytes; {} takes at most {MAX_FORWARDED_REQUEST}: \
                     shorten its fields",
                request.encoded_len(),
                rpc.name
            )));
        }
        let payload = Bytes::from(request.encode_to_vec());
        self.call(rpc.subject, envelope, payload)
            .await
            .map(Response::new)
    }

    /// Sends one request to `subject` in `envelope` and decodes the reply as `Resp`, or
    /// turns the refusal into a status.
    pub(crate) async fn call<Resp: Message + Default>(
        &self,
        subject: &'static str,
        envelope: &Envelope,
        payload: Bytes,
    ) -> Result<Resp, Status> {
        let reply = self
            .bus
            .request(subject, envelope, payload)
            .await
            .map_err(status::bus)?;
        read_reply(subject, reply)
    }
}

/// A service's reply to a request sent to `subject`: the response decoded as `Resp`, or the
/// refusal as a status.
pub(crate) fn read_reply<Resp: Message + Default>(
    subject: &str,
    reply: Reply,
) -> Result<Resp, Status> {
    match reply.outcome {
        Some(Outcome::Response(bytes)) => Resp::decode(bytes.as_slice()).map_err(|err| {
            warn!(%subject, error = %err, "undecodable response from a service");
            status::service(
                ServiceReason::Internal,
                "a service answered with an undecodable response; retry with the same request id",
            )
        }),
        Some(Outcome::Refusal(refusal)) => Err(status::refusal(refusal)),
        None => Err(status::service(
            ServiceReason::Internal,
            "a service answered with an empty reply; retry with the same request id",
        )),
    }
}

/// The envelope of a call from `actor`: its correlation id and trace context from the
/// call's metadata, so the services continue the client's flow and trace.
pub(crate) fn envelope(
    actor: certflow_domain::Actor,
    metadata: &tonic::metadata::MetadataMap,
) -> Envelope {
    Envelope::new(actor, correlation_id(metadata)).with_traceparent(
        metadata
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    )
}

/// The caller's correlation id, or a fresh one.
pub(crate) fn correlation_id(metadata: &tonic::metadata::MetadataMap) -> String {
    metadata
        .get(CORRELATION_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_string)
}

impl Gateway {
    /// `RESOURCE_EXHAUSTED` with `RetryInfo` once `account` exceeds its command rate on
    /// `rpc`.
    pub(crate) fn check_rate(&self, account: &str, rpc: &'static str) -> Result<(), Status> {
        self.check(&self.commands, account, rpc)
    }

    /// As [`Gateway::check_rate`], for a query's rate.
    pub(crate) fn check_query_rate(&self, account: &str, rpc: &'static str) -> Result<(), Status> {
        self.check(&self.queries, account, rpc)
    }

    fn check(
        &self,
        limiter: &DefaultKeyedRateLimiter<(String, &'static str)>,
        account: &str,
        rpc: &'static str,
    ) -> Result<(), Status> {
        // Forget accounts whose allowance is full again, so the limiters do not grow with
        // every account ever seen.
        let checks = self
            .checks
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if checks % 10_000 == 9_999 {
            self.commands.retain_recent();
            self.queries.retain_recent();
        }
        // One form of the account: `Acme` and `acme` share one allowance.
        let key = (certflow_domain::account_key(account), rpc);
        match limiter.check_key(&key) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let wait = not_until
                    .wait_time_from(DefaultClock::default().now())
                    .max(Duration::from_millis(1));
                Err(status::rate_limited(
                    rpc,
                    certflow_proto::retry::jittered(wait, certflow_proto::retry::random_unit()),
                ))
            }
        }
    }
}

/// Largest request the gateway puts on the bus. NATS carries at most 1 MiB a message
/// (headers included); no well-formed request comes near this, so a larger one is bad
/// input, not a bus failure. Documents travel apart, through the upload store.
const MAX_FORWARDED_REQUEST: usize = 512 * 1024;

#[tonic::async_trait]
impl CertificateService for Gateway {
    async fn issue_certificate(
        &self,
        request: Request<IssueCertificateRequest>,
    ) -> Result<Response<IssueCertificateResponse>, Status> {
        self.forward(ISSUE, request).await
    }

    async fn upload_certificate(
        &self,
        request: Request<UploadCertificateRequest>,
    ) -> Result<Response<UploadCertificateResponse>, Status> {
        self.forward(UPLOAD, request).await
    }

    async fn record_legacy_certificate(
        &self,
        request: Request<RecordLegacyCertificateRequest>,
    ) -> Result<Response<RecordLegacyCertificateResponse>, Status> {
        self.forward(RECORD_LEGACY, request).await
    }

    async fn get_certificate(
        &self,
        request: Request<GetCertificateRequest>,
    ) -> Result<Response<GetCertificateResponse>, Status> {
        self.forward(GET, request).await
    }

    async fn list_certificates(
        &self,
        request: Request<ListCertificatesRequest>,
    ) -> Result<Response<ListCertificatesResponse>, Status> {
        self.forward(LIST, request).await
    }

    async fn get_certificate_history(
        &self,
        request: Request<GetCertificateHistoryRequest>,
    ) -> Result<Response<GetCertificateHistoryResponse>, Status> {
        self.forward(HISTORY, request).await
    }

    async fn download_certificate(
        &self,
        request: Request<DownloadCertificateRequest>,
    ) -> Result<Response<DownloadCertificateResponse>, Status> {
        self.forward(DOWNLOAD, request).await
    }

    async fn delete_certificate(
        &self,
        request: Request<DeleteCertificateRequest>,
    ) -> Result<Response<DeleteCertificateResponse>, Status> {
        self.forward(DELETE, request).await
    }

    async fn order_renewal(
        &self,
        request: Request<OrderRenewalRequest>,
    ) -> Result<Response<OrderRenewalResponse>, Status> {
        self.forward(RENEW, request).await
    }
}

#[tonic::async_trait]
impl CrlService for Gateway {
    /// Public, like the HTTP distribution point: no token needed.
    async fn get_crl(
        &self,
        request: Request<GetCrlRequest>,
    ) -> Result<Response<GetCrlResponse>, Status> {
        let request = request.into_inner();
        let partition = certflow_ca::CrlPartition {
            issuer: crl_issuer(request.brand, request.sm2)?,
            shard: request
                .shard
                .map_or(certflow_ca::Shard::Original, certflow_ca::Shard::Numbered),
        };
        crl_http::fetch(&self.bus, partition)
            .await
            .map(Response::new)
            .map_err(status::refusal)
    }

    /// Public, like the CCADB list it mirrors.
    async fn list_crls(
        &self,
        request: Request<ListCrlsRequest>,
    ) -> Result<Response<ListCrlsResponse>, Status> {
        let request = request.into_inner();
        let issuer = crl_issuer(request.brand, request.sm2)?;
        crl_http::list(&self.bus, issuer)
            .await
            .map(Response::new)
            .map_err(status::refusal)
    }
}

#[tonic::async_trait]
impl AcmeService for Gateway {
    /// A customer's EAB key: one ACME account binds with it and acts for their account.
    async fn create_external_account_key(
        &self,
        request: Request<CreateExternalAccountKeyRequest>,
    ) -> Result<Response<CreateExternalAccountKeyResponse>, Status> {
        let (envelope, _) = self.admit(CREATE_EAB, request)?;
        let Some((store, directory_url)) = &self.acme else {
            return Err(status::service(
                ServiceReason::NotAvailable,
                "this deployment serves no ACME endpoint",
            ));
        };
        let (key_id, key) = store
            .create_eab(&envelope.actor.account, acme::now_millis())
            .await
            .map_err(|e| {
                warn!(error = %e, "could not store an EAB key");
                status::service(ServiceReason::Unavailable, "could not store the key; retry")
            })?;
        info!(account = %envelope.actor.account, %key_id, "EAB key made");
        Ok(Response::new(CreateExternalAccountKeyResponse {
            key_id,
            hmac_key: key.mac_key,
            directory_url: directory_url.clone(),
        }))
    }
}

/// The issuing CA a CRL request names.
fn crl_issuer(brand: i32, sm2: bool) -> Result<certflow_ca::IssuerId, Status> {
    let brand =
        certflow_proto::convert::brand_from_proto(brand).map_err(|e| status::refused(&e))?;
    Ok(certflow_ca::IssuerId { brand, sm2 })
}

#[tonic::async_trait]
impl RevocationService for Gateway {
    async fn request_revocation(
        &self,
        request: Request<RequestRevocationRequest>,
    ) -> Result<Response<RequestRevocationResponse>, Status> {
        self.forward(REVOKE, request).await
    }

    async fn check_validation(
        &self,
        request: Request<CheckValidationRequest>,
    ) -> Result<Response<CheckValidationResponse>, Status> {
        self.forward(CHECK_VALIDATION, request).await
    }

    async fn cancel_revocation(
        &self,
        request: Request<CancelRevocationRequest>,
    ) -> Result<Response<CancelRevocationResponse>, Status> {
        self.forward(CANCEL_REVOCATION, request).await
    }

    type BulkRevokeStream = bulk::ResultStream;

    async fn bulk_revoke(
        &self,
        request: Request<BulkRevokeRequest>,
    ) -> Result<Response<Self::BulkRevokeStream>, Status> {
        let actor = self.auth.authenticate(request.metadata())?;
        require_role(&actor, BULK_REVOKE.roles, BULK_REVOKE.name)?;
        self.check_rate(&actor.account, BULK_REVOKE.name)?;
        let envelope = envelope(actor, request.metadata());
        bulk::start(self.clone(), envelope, request.into_inner())
            .await
            .map(Response::new)
    }

    type BulkRevokeIdsStream = bulk::IdsResultStream;

    /// The ids arrive in as many messages as they need; once the client half-closes, the
    /// list is revoked exactly as `BulkRevoke` would.
    async fn bulk_revoke_ids(
        &self,
        request: Request<tonic::Streaming<BulkRevokeIdsRequest>>,
    ) -> Result<Response<Self::BulkRevokeIdsStream>, Status> {
        let actor = self.auth.authenticate(request.metadata())?;
        require_role(&actor, BULK_REVOKE.roles, "BulkRevokeIds")?;
        self.check_rate(&actor.account, "BulkRevokeIds")?;
        let envelope = envelope(actor, request.metadata());
        let request = bulk::collect(request.into_inner()).await?;
        let results = bulk::start(self.clone(), envelope, request).await?;
        Ok(Response::new(Box::pin(futures::StreamExt::map(
            results,
            |result| {
                result.map(|result| BulkRevokeIdsResponse {
                    result: Some(result),
                })
            },
        ))))
    }
}

#[tonic::async_trait]
impl ReissueService for Gateway {
    /// A password for a generated key is sealed to the issuance service before the request
    /// goes to the reissue service, which carries it without being able to read it.
    async fn request_reissue(
        &self,
        request: Request<RequestReissueRequest>,
    ) -> Result<Response<RequestReissueResponse>, Status> {
        let (mut envelope, mut request) = self.admit(REISSUE, request)?;
        if let Some(request_reissue_request::Key::GeneratedKey(generated)) = &mut request.key
            && !generated.key_password.is_empty()
        {
            let password = std::mem::take(&mut generated.key_password);
            let sealed = self.transport.seal(&self.bus, password.as_bytes()).await?;
            envelope = envelope.with_sealed_key_password(sealed);
        }
        self.send(REISSUE, &envelope, &request).await
    }
}

/// An account's notification endpoints and dead letters: the notifier's, for the caller's
/// own account.
#[tonic::async_trait]
impl NotificationService for Gateway {
    async fn create_endpoint(
        &self,
        request: Request<CreateEndpointRequest>,
    ) -> Result<Response<CreateEndpointResponse>, Status> {
        self.forward(CREATE_ENDPOINT, request).await
    }

    async fn list_endpoints(
        &self,
        request: Request<ListEndpointsRequest>,
    ) -> Result<Response<ListEndpointsResponse>, Status> {
        self.forward(LIST_ENDPOINTS, request).await
    }

    async fn rotate_endpoint_secret(
        &self,
        request: Request<RotateEndpointSecretRequest>,
    ) -> Result<Response<RotateEndpointSecretResponse>, Status> {
        self.forward(ROTATE_ENDPOINT_SECRET, request).await
    }

    async fn delete_endpoint(
        &self,
        request: Request<DeleteEndpointRequest>,
    ) -> Result<Response<DeleteEndpointResponse>, Status> {
        self.forward(DELETE_ENDPOINT, request).await
    }

    async fn list_dead_letters(
        &self,
        request: Request<ListDeadLettersRequest>,
    ) -> Result<Response<ListDeadLettersResponse>, Status> {
        self.forward(LIST_DEAD_LETTERS, request).await
    }

    async fn replay_dead_letter(
        &self,
        request: Request<ReplayDeadLetterRequest>,
    ) -> Result<Response<ReplayDeadLetterResponse>, Status> {
        self.forward(REPLAY_DEAD_LETTER, request).await
    }
}
