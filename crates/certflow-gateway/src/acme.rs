//! The ACME endpoint (RFC 8555), on a listener of its own (TLS with the gateway's
//! certificate when the gateway has one): standard clients (certbot, lego) revoke
//! certificates through it. It offers the directory, `newNonce`, `newAccount` with
//! External Account Binding (required), the account resource and `revokeCert`; orders and
//! authorizations are not offered here and say so.
//!
//! Like the gRPC side it decides nothing about certificates: it checks the request (JWS,
//! nonce, account, and for a revocation signed with the certificate's key that the key is
//! the certificate's) and sends the revocation to the revocation service, which decides it
//! with every rule. A refusal is a problem document (RFC 7807) with the ACME error type
//! and certflow's reason code. A revocation whose path needs a domain validation or a
//! reviewer is recorded, and answered `revocationPending` with what to do next; it completes
//! as it would through gRPC.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use certflow_acme::{ExternalBinding, Problem, ProblemType, PublicJwk, Request, Signer};
use certflow_bus::{BusClient, CancellationToken, Envelope, Outcome, Refusal};
use certflow_ca::certificate::{KeyParameters, certificate_key};
use certflow_domain::{Actor, Reason, Role};
use certflow_proto::bus::v1::AcmeRevocation;
use certflow_proto::refusal::ClientReason;
use certflow_proto::v1::{CertificateStatus, RequestRevocationResponse};
use certflow_store::{AcmeAccount, AcmeStore};
use prost::Message;
use serde::Deserialize;
use serde_json::json;
use tokio::net::TcpListener;
use tonic::Code;
use tracing::{info, warn};

/// Where the ACME resources live under the endpoint's base URL.
pub const DIRECTORY: &str = "/acme/directory";
const NEW_NONCE: &str = "/acme/new-nonce";
const NEW_ACCOUNT: &str = "/acme/new-account";
const REVOKE_CERT: &str = "/acme/revoke-cert";
const ACCOUNT: &str = "/acme/acct/";

/// The problem type of a revocation recorded but waiting for a validation or a reviewer: not
/// one of RFC 8555's, which has no answer for "accepted, not done yet" (§6.7 allows others).
pub const REVOCATION_PENDING: &str = "urn:certflow:acme:error:revocationPending";

/// The ACME endpoint's state: the bus, its store, and the URL clients reach it at.
#[derive(Clone)]
pub struct AcmeEndpoint {
    bus: BusClient,
    store: AcmeStore,
    base_url: String,
}

impl std::fmt::Debug for AcmeEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcmeEndpoint")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl AcmeEndpoint {
    /// The endpoint at `base_url` (e.g. `https://acme.example`), on the bus and store given.
    pub fn new(bus: BusClient, store: AcmeStore, base_url: &str) -> Self {
        AcmeEndpoint {
            bus,
            store,
            base_url: base_url.trim_end_matches('/').to_string(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }
}

/// How long a client has to finish its TLS handshake.
const HANDSHAKE: std::time::Duration = std::time::Duration::from_secs(10);

/// A TLS acceptor for the ACME listener with the gateway's certificate and key. ACME
/// clients authenticate with JWS, so no client certificate is asked for.
pub fn tls_acceptor(
    tls: &crate::TlsConfig,
) -> Result<tokio_rustls::TlsAcceptor, crate::GatewayError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    use tokio_rustls::rustls;
    let invalid = |what: &str, e: &dyn std::fmt::Display| {
        crate::GatewayError::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("ACME TLS {what}: {e}"),
        ))
    };
    let chain = CertificateDer::pem_file_iter(&tls.certificate_pem)
        .map_err(|e| invalid("certificate", &e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid("certificate", &e))?;
    let key = PrivateKeyDer::from_pem_file(&tls.key_pem).map_err(|e| invalid("key", &e))?;
    let mut config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| invalid("versions", &e))?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .map_err(|e| invalid("certificate and key", &e))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config)))
}

/// The ACME listener over TLS: connections are accepted and their handshakes run
/// concurrently, each within [`HANDSHAKE`], so a slow client holds up no other.
pub struct TlsListener {
    handshaken: tokio::sync::mpsc::Receiver<(
        tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
        SocketAddr,
    )>,
    local: SocketAddr,
}

impl std::fmt::Debug for TlsListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsListener")
            .field("local", &self.local)
            .finish_non_exhaustive()
    }
}

impl TlsListener {
    /// Accepts on `tcp` until `shutdown`, with `acceptor`.
    pub fn new(
        tcp: TcpListener,
        acceptor: tokio_rustls::TlsAcceptor,
        shutdown: CancellationToken,
    ) -> std::io::Result<Self> {
        let local = tcp.local_addr()?;
        let (done, handshaken) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    accepted = tcp.accept() => accepted,
                };
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        warn!(error = %err, "ACME listener could not accept");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let acceptor = acceptor.clone();
                let done = done.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = done.send((tls, peer)).await;
                        }
                        Ok(Err(err)) => {
                            tracing::debug!(%peer, error = %err, "TLS handshake failed")
                        }
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener { handshaken, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.handshaken.recv().await {
            Some(connection) => connection,
            // The accepting task ended: shutting down, and no connection will come.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}

/// Serves ACME on `listener` (plain TCP, or [`TlsListener`]) until `shutdown`.
pub async fn serve<L>(
    listener: L,
    endpoint: AcmeEndpoint,
    shutdown: CancellationToken,
) -> std::io::Result<()>
where
    L: axum::serve::Listener<Addr = SocketAddr>,
{
    let address: Option<SocketAddr> = listener.local_addr().ok();
    info!(?address, base_url = %endpoint.base_url, "ACME endpoint listening");
    let app = axum::Router::new()
        .route(DIRECTORY, get(directory))
        .route(NEW_NONCE, get(new_nonce).head(new_nonce))
        .route(NEW_ACCOUNT, post(new_account))
        .route(REVOKE_CERT, post(revoke_cert))
        .route("/acme/acct/{thumbprint}", post(account))
        .fallback(not_offered)
        .with_state(Arc::new(endpoint));
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

type Shared = State<Arc<AcmeEndpoint>>;

async fn directory(State(acme): Shared) -> Response {
    let body = json!({
        "newNonce": acme.url(NEW_NONCE),
        "newAccount": acme.url(NEW_ACCOUNT),
        "newOrder": acme.url("/acme/new-order"),
        "revokeCert": acme.url(REVOKE_CERT),
        "keyChange": acme.url("/acme/key-change"),
        "meta": { "externalAccountRequired": true },
    });
    json_response(StatusCode::OK, &body, None)
}

/// `newNonce`: `200` to `HEAD`, `204` to `GET` (RFC 8555 §7.2).
async fn new_nonce(State(acme): Shared, method: Method) -> Response {
    let status = if method == Method::HEAD {
        StatusCode::OK
    } else {
        StatusCode::NO_CONTENT
    };
    let mut response = status.into_response();
    acme.stamp(&mut response).await;
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Anything else under the endpoint: not offered here.
async fn not_offered(State(acme): Shared, uri: Uri) -> Response {
    acme.problem(Problem::new(
        ProblemType::UnsupportedOperation,
        format!(
            "{} is not offered here: certflow's ACME endpoint revokes certificates \
             (newAccount, revokeCert); it does not issue them",
            uri.path()
        ),
    ))
    .await
}

fn json_response(status: StatusCode, body: &serde_json::Value, location: Option<&str>) -> Response {
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response();
    if let Some(location) = location.and_then(|l| HeaderValue::from_str(l).ok()) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

/// What a `newAccount` payload may hold.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewAccount {
    #[serde(default)]
    contact: Vec<String>,
    #[serde(default)]
    only_return_existing: bool,
    external_account_binding: Option<serde_json::Value>,
}

/// What a `revokeCert` payload holds.
#[derive(Deserialize)]
struct RevokeCert {
    certificate: String,
    reason: Option<i32>,
}

impl AcmeEndpoint {
    /// Adds a fresh `Replay-Nonce` and the directory link to `response`.
    async fn stamp(&self, response: &mut Response) {
        match self.store.new_nonce().await {
            Ok(nonce) => {
                if let Ok(value) = HeaderValue::from_str(&nonce) {
                    response.headers_mut().insert("replay-nonce", value);
                }
            }
            Err(err) => warn!(error = %err, "no nonce for an ACME response"),
        }
        if let Ok(link) = HeaderValue::from_str(&format!("<{}>;rel=\"index\"", self.url(DIRECTORY)))
        {
            response.headers_mut().insert(header::LINK, link);
        }
    }

    async fn problem(&self, problem: Problem) -> Response {
        let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::BAD_REQUEST);
        let mut response = (
            status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            problem.to_json(),
        )
            .into_response();
        self.stamp(&mut response).await;
        response
    }

    async fn answer(&self, result: Result<Response, Problem>) -> Response {
        match result {
            Ok(mut response) => {
                self.stamp(&mut response).await;
                response
            }
            Err(problem) => self.problem(problem).await,
        }
    }

    /// Reads a POST to `path`: `application/jose+json`, and a JWS that passes §6's checks
    /// for this URL. Its nonce is redeemed once its signature has verified
    /// ([`redeem`](Self::redeem)), so nobody burns a nonce they could not sign for.
    fn read(&self, path: &str, headers: &HeaderMap, body: &[u8]) -> Result<Request, Problem> {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !content_type.starts_with("application/jose+json") {
            return Err(Problem::new(
                ProblemType::Malformed,
                "ACME requests are sent as application/jose+json",
            ));
        }
        Request::parse(body, &self.url(path))
    }

    /// Uses up `request`'s nonce: the first time it is seen, within its lifetime.
    async fn redeem(&self, request: &Request) -> Result<(), Problem> {
        match self.store.redeem_nonce(&request.nonce).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(Problem::new(
                ProblemType::BadNonce,
                "the nonce is unknown, used or expired; use the one in this response",
            )),
            Err(err) => Err(server_error(err)),
        }
    }

    /// The account a `kid` names, with its thumbprint: the kid must be this endpoint's
    /// account URL.
    async fn account_of(&self, kid: &str) -> Result<(String, AcmeAccount), Problem> {
        let thumbprint = kid
            .strip_prefix(&self.url(ACCOUNT))
            .filter(|t| !t.is_empty() && !t.contains('/'))
            .ok_or_else(|| {
                Problem::new(
                    ProblemType::AccountDoesNotExist,
                    "kid is no account URL of this server",
                )
            })?;
        let account = self
            .store
            .account(thumbprint)
            .await
            .map_err(server_error)?
            .ok_or_else(|| Problem::new(ProblemType::AccountDoesNotExist, "no such account"))?;
        Ok((thumbprint.to_string(), account))
    }
}

fn server_error(err: impl std::fmt::Display) -> Problem {
    warn!(error = %err, "ACME request failed on certflow's side");
    Problem::new(
        ProblemType::ServerInternal,
        "certflow could not complete the request; try again",
    )
}

/// The account key `request` was signed with, checked: an RSA key may sign RS256 or PS256.
fn verify_with_account(request: &Request, account: &AcmeAccount) -> Result<(), Problem> {
    let key = PublicJwk::parse(&account.jwk, request.alg).map_err(|_| {
        Problem::new(
            ProblemType::Unauthorized,
            "the request is not signed with the account's key",
        )
    })?;
    request.verify(&key)
}

fn account_body(acme: &AcmeEndpoint, thumbprint: &str, account: &AcmeAccount) -> serde_json::Value {
    json!({
        "status": "valid",
        "contact": account.contact,
        "orders": acme.url(&format!("{ACCOUNT}{thumbprint}/orders")),
    })
}

/// `newAccount` (RFC 8555 §7.3): an existing key gets its account back; a new one needs an
/// External Account Binding made with a key its certflow account created, used once.
async fn new_account(State(acme): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let result = async {
        let request = acme.read(NEW_ACCOUNT, &headers, &body)?;
        let Signer::Jwk(jwk) = &request.signer else {
            return Err(Problem::new(
                ProblemType::Malformed,
                "newAccount is signed with the new account's jwk, not a kid",
            ));
        };
        request.verify(jwk)?;
        acme.redeem(&request).await?;
        let payload: NewAccount = request.payload_json()?;
        let thumbprint = jwk.thumbprint();
        let location = acme.url(&format!("{ACCOUNT}{thumbprint}"));
        if let Some(existing) = acme
            .store
            .account(&thumbprint)
            .await
            .map_err(server_error)?
        {
            let body = account_body(&acme, &thumbprint, &existing);
            return Ok(json_response(StatusCode::OK, &body, Some(&location)));
        }
        if payload.only_return_existing {
            return Err(Problem::new(
                ProblemType::AccountDoesNotExist,
                "no account has this key",
            ));
        }
        let binding = payload.external_account_binding.ok_or_else(|| {
            Problem::new(
                ProblemType::ExternalAccountRequired,
                "an account needs External Account Binding: make an EAB key for your \
                 certflow account (certctl acme-eab) and register with it",
            )
        })?;
        let binding = ExternalBinding::parse(&binding, &request)?;
        let unauthorized = |detail: &str| Problem::new(ProblemType::Unauthorized, detail);
        let (eab, sequence) = acme
            .store
            .eab(&binding.kid)
            .await
            .map_err(server_error)?
            .ok_or_else(|| unauthorized("no such EAB key id"))?;
        let mac_key = URL_SAFE_NO_PAD.decode(&eab.mac_key).map_err(server_error)?;
        binding.verify(&mac_key)?;
        // A key bound to this very account key before is a retry whose account record may
        // not have been written: it is written now.
        if eab
            .bound_to
            .as_deref()
            .is_some_and(|bound| bound != thumbprint)
        {
            return Err(unauthorized(
                "this EAB key has bound an account already; make another",
            ));
        }
        let account = AcmeAccount {
            account: eab.account.clone(),
            jwk: jwk.json().clone(),
            contact: payload.contact,
            eab_kid: binding.kid.clone(),
            created_at: now_millis(),
        };
        if !acme
            .store
            .bind_account(&thumbprint, &account, &eab, sequence)
            .await
            .map_err(server_error)?
        {
            return Err(unauthorized(
                "this EAB key has bound an account already; make another",
            ));
        }
        info!(account = %account.account, %thumbprint, "ACME account bound");
        let body = account_body(&acme, &thumbprint, &account);
        Ok(json_response(StatusCode::CREATED, &body, Some(&location)))
    }
    .await;
    acme.answer(result).await
}

/// Unix milliseconds now, as the ACME records keep time.
pub(crate) fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The account resource: POST-as-GET (or any update, which changes nothing) answers it.
async fn account(State(acme): Shared, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let result = async {
        let request = acme.read(uri.path(), &headers, &body)?;
        let Signer::Kid(kid) = &request.signer else {
            return Err(Problem::new(
                ProblemType::Malformed,
                "an account is asked for with its kid",
            ));
        };
        let (thumbprint, account) = acme.account_of(kid).await?;
        if kid != &acme.url(uri.path()) {
            return Err(Problem::new(
                ProblemType::Unauthorized,
                "an account may only read itself",
            ));
        }
        verify_with_account(&request, &account)?;
        acme.redeem(&request).await?;
        // POST-as-GET, or an empty update, reads the account; nothing else is offered.
        let reads = request.payload.is_empty()
            || request
                .payload_json::<serde_json::Value>()
                .is_ok_and(|v| v.as_object().is_some_and(|o| o.is_empty()));
        if !reads {
            return Err(Problem::new(
                ProblemType::UnsupportedOperation,
                "account updates and deactivation are not offered here: the account stays as \
                 it was registered; an EAB key of your certflow account binds a new one",
            ));
        }
        let body = account_body(&acme, &thumbprint, &account);
        Ok(json_response(StatusCode::OK, &body, None))
    }
    .await;
    acme.answer(result).await
}

/// Whether `jwk` is the public key `parameters` describe.
fn same_key(jwk: &serde_json::Value, parameters: &KeyParameters) -> bool {
    let member = |name: &str| {
        jwk.get(name)
            .and_then(|v| v.as_str())
            .and_then(|v| URL_SAFE_NO_PAD.decode(v).ok())
    };
    let trimmed = |bytes: Vec<u8>| {
        let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
        bytes[start..].to_vec()
    };
    match parameters {
        KeyParameters::Rsa { modulus, exponent } => {
            jwk.get("kty").and_then(|v| v.as_str()) == Some("RSA")
                && member("n").map(trimmed).as_ref() == Some(modulus)
                && member("e").map(trimmed).as_ref() == Some(exponent)
        }
        KeyParameters::Ec { curve, x, y } => {
            jwk.get("kty").and_then(|v| v.as_str()) == Some("EC")
                && jwk.get("crv").and_then(|v| v.as_str()) == Some(*curve)
                && member("x").as_ref() == Some(x)
                && member("y").as_ref() == Some(y)
        }
        KeyParameters::Other => false,
    }
}

/// `revokeCert` (RFC 8555 §7.6): signed with the certificate's key, or by an account.
async fn revoke_cert(State(acme): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let result = async {
        let request = acme.read(REVOKE_CERT, &headers, &body)?;
        let payload: RevokeCert = request.payload_json()?;
        let der = URL_SAFE_NO_PAD.decode(&payload.certificate).map_err(|_| {
            Problem::new(ProblemType::Malformed, "certificate is not base64url DER")
        })?;
        let certificate = certificate_key(&der)
            .map_err(|e| Problem::new(ProblemType::Malformed, e.to_string()))?;
        let (actor, by_key) = match &request.signer {
            Signer::Jwk(jwk) => {
                request.verify(jwk)?;
                if !same_key(jwk.json(), &certificate.parameters) {
                    return Err(Problem::new(
                        ProblemType::Unauthorized,
                        "the request is signed with a key that is not the certificate's",
                    ));
                }
                let actor = Actor {
                    subject: format!("acme-key:{}", jwk.thumbprint()),
                    account: String::new(),
                    roles: vec![],
                };
                (actor, true)
            }
            Signer::Kid(kid) => {
                let (thumbprint, account) = acme.account_of(kid).await?;
                verify_with_account(&request, &account)?;
                let actor = Actor {
                    subject: format!("acme-account:{thumbprint}"),
                    account: account.account,
                    roles: vec![Role::Customer],
                };
                (actor, false)
            }
        };
        acme.redeem(&request).await?;
        let revocation = AcmeRevocation {
            serial_number: certificate.serial_hex,
            public_key_sha256: certificate.public_key_sha256,
            reason: payload.reason,
            signed_with_certificate_key: by_key,
            request_id: request.nonce.clone(),
        };
        let envelope = Envelope::new(actor, uuid::Uuid::new_v4().to_string());
        let reply = acme
            .bus
            .request(
                certflow_bus::subjects::ACME_REVOCATION,
                &envelope,
                revocation.encode_to_vec().into(),
            )
            .await
            .map_err(server_error)?;
        match reply.outcome {
            Some(Outcome::Response(bytes)) => {
                let answer =
                    RequestRevocationResponse::decode(bytes.as_slice()).map_err(server_error)?;
                let status = answer
                    .certificate
                    .as_ref()
                    .map_or(CertificateStatus::Unspecified as i32, |c| c.status);
                if status == CertificateStatus::Revoked as i32 {
                    Ok(StatusCode::OK.into_response())
                } else {
                    let mut problem = Problem::new(
                        ProblemType::Unauthorized,
                        "the revocation is recorded, and waits for what this certificate's \
                         path needs (a domain validation or a reviewer); follow it with \
                         certctl get or in the console, where its next step is shown",
                    );
                    problem.kind = REVOCATION_PENDING;
                    problem.status = 403;
                    Err(problem)
                }
            }
            Some(Outcome::Refusal(refusal)) => Err(refusal_problem(refusal)),
            None => Err(server_error("an empty reply")),
        }
    }
    .await;
    acme.answer(result).await
}

/// A refusal of the revocation service, as an ACME problem.
fn refusal_problem(refusal: Refusal) -> Problem {
    let kind = match (refusal.client_reason(), refusal.status_code()) {
        (Some(ClientReason::Rule(Reason::AlreadyRevoked)), _) => ProblemType::AlreadyRevoked,
        (Some(ClientReason::Rule(Reason::InvalidRevocationReason)), _) => {
            ProblemType::BadRevocationReason
        }
        (_, Code::InvalidArgument) => ProblemType::Malformed,
        (
            _,
            Code::NotFound
            | Code::PermissionDenied
            | Code::FailedPrecondition
            | Code::AlreadyExists,
        ) => ProblemType::Unauthorized,
        _ => ProblemType::ServerInternal,
    };
    let detail = if refusal.status_code() == Code::NotFound {
        "no certificate this signer may revoke: it was not issued here, or not to this \
         account; sign with the certificate's own key, or with an ACME account bound to the \
         certflow account that holds it"
            .to_string()
    } else {
        refusal.message
    };
    Problem::new(kind, detail).with_reason(refusal.reason)
}
