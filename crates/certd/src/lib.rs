//! The certflow server as a library: start any set of services against one NATS.
//!
//! `certd all` runs every service in one process, but they still talk only over NATS, so
//! the same services can run as separate processes (`certd revocation`, `certd gateway`, …)
//! or as many instances of each without any change. [`start`] returns once every selected
//! service has subscribed and the gateway is listening, so a caller (a test, or `make run`)
//! can use it right away. [`provision`] makes the streams and consumers the services attach
//! to, and [`rewrap_keys`] ends a rotation of the key store's key-encryption key.
//!
//! ## Layout
//!
//! - [`dev`]: a local token-signing key, key-store KEK and signed tokens, for local runs and tests.

#![forbid(unsafe_code)]

pub mod dev;

pub use certflow_telemetry::MetricsRegistry;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use certflow_bus::{BusClient, CancellationToken};
use certflow_ca::CaAlgorithm;
use certflow_ca::sealing::Kek;
use certflow_domain::Policy;
use certflow_gateway::{Gateway, GatewayConfig};
use certflow_issuance::{CrlConfig, IssuanceService, Signing, builtin_ca};
use certflow_notify::{NotifierService, NotifyConfig};
use certflow_projection::{ProjectionConfig, ProjectionService};
use certflow_reissue::{ReissueConfig, ReissueService};
use certflow_review::{ReviewConfig, ReviewService};
use certflow_revocation::RevocationService;
use certflow_runtime::{CommandRuntime, Service as _, ServiceSpec};
use certflow_store::{
    EventStore, KeyStore, Layout, Outcomes, Provisioned, StoreConfig, StoreError,
};
use certflow_telemetry::Readiness;
use certflow_validation::{ValidationConfig, ValidationService};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tracing::{error, info};

/// The log filter certd runs with: `directives` (RUST_LOG syntax), with async-nats capped
/// at `info` whatever they say, because its trace level logs whole messages, request
/// bodies and secrets in them included.
pub fn log_filter(directives: &str) -> tracing_subscriber::EnvFilter {
    let filter = tracing_subscriber::EnvFilter::try_new(directives)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    match "async_nats=info".parse() {
        Ok(cap) => filter.add_directive(cap),
        Err(_) => filter,
    }
}

/// The services certd can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    Gateway,
    Issuance,
    Revocation,
    Reissue,
    Validation,
    Review,
    Notifier,
    Projection,
}

impl Service {
    /// Every service, as `certd all` runs them.
    pub const ALL: [Service; 8] = [
        Service::Projection,
        Service::Issuance,
        Service::Revocation,
        Service::Reissue,
        Service::Validation,
        Service::Review,
        Service::Notifier,
        Service::Gateway,
    ];

    /// The service's name: its subcommand, queue group and NATS user.
    pub fn name(self) -> &'static str {
        match self {
            Service::Gateway => "gateway",
            Service::Issuance => "issuance",
            Service::Revocation => "revocation",
            Service::Reissue => "reissue",
            Service::Validation => "validation",
            Service::Review => "review",
            Service::Notifier => "notifier",
            Service::Projection => "projection",
        }
    }
}

/// How many shards each issuer's CRL is split into unless the operator says otherwise: a
/// shard of a million revocations spread over 16 holds some 62,500 entries, about 3 MB.
pub const DEFAULT_CRL_SHARDS: u32 = 16;

/// What the services that run on the runtime's skeleton declare about themselves: the
/// subjects they answer and the consumers they react through.
pub const SPECS: [ServiceSpec; 6] = [
    IssuanceService::SPEC,
    RevocationService::SPEC,
    ReissueService::SPEC,
    ValidationService::SPEC,
    ReviewService::SPEC,
    NotifierService::SPEC,
];

/// Everything the services need to know.
#[derive(Debug, Clone)]
pub struct Config {
    /// The NATS server, e.g. `nats://127.0.0.1:4222`; a cluster as several, comma-separated.
    pub nats_url: String,
    /// Where the gateway listens; port 0 picks a free one.
    pub listen: SocketAddr,
    /// Where the projection keeps its sled database.
    pub data_dir: PathBuf,
    /// Wipe the projection and replay the whole log on start.
    pub rebuild_projection: bool,
    /// How long the gateway waits for a service.
    pub request_timeout: Duration,
    /// How long a command's first outcome is remembered for retries.
    pub outcome_ttl: Duration,
    /// How long the gateway lets calls in flight finish on shutdown.
    pub shutdown_grace: Duration,
    /// The event stream.
    pub store: StoreConfig,
    /// The rules' durations and dates.
    pub policy: Policy,
    /// Token keys, rate limit and TLS of the gateway.
    pub gateway: GatewayConfig,
    /// The key-encryption key of the key store (issuance needs it).
    pub kek: Option<Kek>,
    /// Where CRLs are served; written into every certificate.
    pub crl_base_url: String,
    /// Where the gateway serves CRLs over HTTP; port 0 picks a free one.
    pub crl_listen: SocketAddr,
    /// Where the gateway serves ACME (RFC 8555); `None` serves none.
    pub acme_listen: Option<SocketAddr>,
    /// The ACME endpoint's URL as clients reach it (e.g. `https://acme.example`); `None` is
    /// the address bound, `https://` when the gateway has TLS (the ACME listener then serves
    /// TLS with the gateway's certificate), `http://` otherwise.
    pub acme_base_url: Option<String>,
    /// Key type of the built-in CA's roots and intermediates, when it creates them.
    pub ca_algorithm: CaAlgorithm,
    /// How CRLs are regenerated.
    pub crl: CrlConfig,
    /// How many shards each issuer's CRL is split into (CA-4); new certificates are spread
    /// over them, and each keeps the shard it was signed with.
    pub crl_shards: u32,
    /// Where the validation service looks for proof, and how often.
    pub validation: ValidationConfig,
    /// How the review queue hands out tasks.
    pub review: ReviewConfig,
    /// How reissues hold their reservations.
    pub reissue: ReissueConfig,
    /// Where and how accounts are notified.
    pub notify: NotifyConfig,
    /// Operator-provided CAs: `<dir>/<brand>/{root.crt,intermediate.crt,intermediate.key}`.
    pub ca_dir: Option<PathBuf>,
    /// How connections to NATS are secured.
    pub nats_tls: NatsTls,
    /// NATS password of each service, which connects as the user named like the service.
    /// Empty: every service shares one anonymous connection.
    pub nats_passwords: HashMap<Service, Password>,
    /// NATS password of the user `operator`, which provisions streams and consumers
    /// ([`provision`]); `None`: provision anonymously.
    pub operator_password: Option<Password>,
    /// Where `/metrics`, `/healthz` and `/readyz` are served; `None`: nowhere.
    pub operator_listen: Option<SocketAddr>,
    /// Where `grpc.health.v1` answers, in plaintext, what `/readyz` says: for probes that
    /// speak gRPC (Kubernetes' `grpc` probe, grpc_health_probe); `None`: nowhere.
    pub health_listen: Option<SocketAddr>,
    /// The metrics `/metrics` shows (from `certflow_telemetry::Telemetry::registry`).
    pub metrics_registry: MetricsRegistry,
    /// How often consumer backlogs are read for the lag metrics.
    pub backlog_interval: Duration,
    /// The web console, when this process serves one.
    pub console: Option<ConsoleSettings>,
}

/// Where the web console listens and which gateway it calls. It holds no NATS connection:
/// it is a gRPC client of the gateway, with the callers' own tokens.
#[derive(Debug, Clone)]
pub struct ConsoleSettings {
    /// Where it listens; port 0 picks a free one.
    pub listen: SocketAddr,
    /// The gateway's URL; `None`: this process's own gateway (plaintext only).
    pub gateway: Option<String>,
    /// CA (PEM) of an `https://` gateway's certificate.
    pub gateway_ca: Option<PathBuf>,
    /// Development sign-in: a directory of token files (`make run`'s `.run/tokens`). With
    /// it, session cookies are not marked `Secure`, so `http://127.0.0.1` works.
    pub dev_identities: Option<PathBuf>,
}

impl ConsoleSettings {
    /// The console's configuration, given its gateway and the keys that sign tokens.
    pub fn console_config(
        &self,
        gateway: String,
        token_keys: Vec<certflow_gateway::auth::KeySource>,
    ) -> certflow_console::ConsoleConfig {
        certflow_console::ConsoleConfig {
            gateway,
            gateway_ca: self.gateway_ca.clone(),
            token_keys,
            dev_identities: self.dev_identities.clone(),
            secure_cookies: self.dev_identities.is_none(),
        }
    }
}

/// TLS towards NATS: the servers' certificates are checked against `ca` (else the system's
/// roots), and a client certificate is shown when the servers ask for one (`verify`).
#[derive(Debug, Clone, Default)]
pub struct NatsTls {
    /// Require TLS even when the URLs say `nats://`.
    pub required: bool,
    /// PEM file of the CA that signs the servers' certificates.
    pub ca: Option<PathBuf>,
    /// PEM files of this process's client certificate and its key.
    pub client_certificate: Option<(PathBuf, PathBuf)>,
}

/// A secret that never shows in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(pub String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl Config {
    /// Defaults for a local run against `nats_url`, keeping data under `data_dir`.
    pub fn new(nats_url: impl Into<String>, data_dir: impl Into<PathBuf>) -> Self {
        Config {
            nats_url: nats_url.into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            data_dir: data_dir.into(),
            rebuild_projection: false,
            request_timeout: Duration::from_secs(10),
            outcome_ttl: Duration::from_secs(24 * 3600),
            shutdown_grace: Duration::from_secs(5),
            store: StoreConfig::default(),
            policy: Policy::default(),
            gateway: GatewayConfig {
                token_keys: Vec::new(),
                commands_per_second: 10,
                queries_per_second: 100,
                tls: None,
            },
            nats_tls: NatsTls::default(),
            nats_passwords: HashMap::new(),
            operator_password: None,
            kek: None,
            crl_base_url: "http://127.0.0.1:8080".into(),
            crl_listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            acme_listen: None,
            acme_base_url: None,
            ca_algorithm: CaAlgorithm::Ecc,
            validation: ValidationConfig::default(),
            review: ReviewConfig::default(),
            reissue: ReissueConfig::default(),
            notify: NotifyConfig::default(),
            crl: CrlConfig::default(),
            crl_shards: DEFAULT_CRL_SHARDS,
            ca_dir: None,
            operator_listen: None,
            health_listen: None,
            metrics_registry: MetricsRegistry::new(),
            backlog_interval: Duration::from_secs(5),
            console: None,
        }
    }
}

impl Config {
    /// The streams and consumers these settings ask for.
    pub fn layout(&self) -> Layout {
        Layout {
            store: self.store.clone(),
            outcome_ttl: self.outcome_ttl,
            review_ack_wait: self.review.ack_wait,
            check_ack_wait: self.validation.check_ack_wait(),
            notify_ack_wait: self.notify.ack_wait(),
            reacting: SPECS
                .iter()
                .filter_map(|spec| Some((spec.name.to_string(), spec.reacts?.redelivery)))
                .collect(),
        }
    }
}

/// Why the services could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum CertdError {
    #[error("cannot connect to NATS at {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: async_nats::ConnectError,
    },
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "no NATS password for the {0} service; set CERTFLOW_NATS_{0}_PASSWORD (upper case) \
         or run without NATS users"
    )]
    NoCredentials(&'static str),
    #[error(
        "the issuance service needs the key store's key-encryption key: 64 hex digits in \
         CERTD_KEK (certd dev-keys writes one)"
    )]
    NoKek,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{service}: {message}")]
    Service {
        service: &'static str,
        message: String,
    },
    #[error(
        "the console needs --console-gateway when this process runs no plaintext gateway of its own"
    )]
    ConsoleGateway,
    #[error("the console: {0}")]
    Console(#[from] certflow_console::ConsoleError),
}

fn service_error(service: Service, err: impl std::fmt::Display) -> CertdError {
    CertdError::Service {
        service: service.name(),
        message: err.to_string(),
    }
}

/// A running set of services.
#[derive(Debug)]
pub struct Running {
    /// Where the gateway listens, when it runs.
    pub gateway_address: Option<SocketAddr>,
    /// Where the gateway serves CRLs over HTTP, when it runs.
    pub crl_address: Option<SocketAddr>,
    /// Where the gateway serves ACME, when it runs and ACME is configured.
    pub acme_address: Option<SocketAddr>,
    /// Where `/metrics`, `/healthz` and `/readyz` are served, when they are.
    pub operator_address: Option<SocketAddr>,
    /// Where the plaintext gRPC health service answers, when it does.
    pub health_address: Option<SocketAddr>,
    /// Where the web console listens, when it runs.
    pub console_address: Option<SocketAddr>,
    /// What every service of this process says about being able to work.
    pub readiness: Readiness,
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
    clients: Vec<async_nats::Client>,
}

impl Running {
    /// A token that stops everything when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Waits until every service has stopped (after the shutdown token is cancelled).
    pub async fn wait(mut self) {
        while let Some(result) = self.tasks.join_next().await {
            if let Err(err) = result {
                error!(error = %err, "a service task failed");
            }
        }
        for client in &self.clients {
            if let Err(err) = client.flush().await {
                error!(error = %err, "final NATS flush failed");
            }
        }
    }

    /// Stops every service and waits for them.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.wait().await;
    }
}

/// Creates every stream and consumer certflow uses, or brings their settings up to date
/// ([`Config::layout`]), as the NATS user `operator` when its password is configured. Run
/// it before the services start: they only attach to what it made.
pub async fn provision(config: &Config) -> Result<Provisioned, CertdError> {
    let user = config
        .operator_password
        .as_ref()
        .map(|password| ("operator", password));
    let client = connect(config, user).await?;
    let done = certflow_store::provision(client.clone(), &config.layout()).await?;
    if let Err(err) = client.flush().await {
        error!(error = %err, "final NATS flush failed");
    }
    Ok(done)
}

/// Wraps every key in the key store under the current key-encryption key (`config.kek`,
/// which must carry the previous one: `Kek::with_previous`), as the issuance service's NATS
/// user when its password is configured. The last step of a KEK rotation.
pub async fn rewrap_keys(config: &Config) -> Result<certflow_issuance::Rewrapped, CertdError> {
    let kek = config.kek.clone().ok_or(CertdError::NoKek)?;
    let user = config
        .nats_passwords
        .get(&Service::Issuance)
        .map(|password| (Service::Issuance.name(), password));
    let client = connect(config, user).await?;
    let keys = KeyStore::attach(client.clone()).await?;
    let done = certflow_issuance::rewrap_keys(&keys, &kek)
        .await
        .map_err(|e| service_error(Service::Issuance, e))?;
    if let Err(err) = client.flush().await {
        error!(error = %err, "final NATS flush failed");
    }
    Ok(done)
}

/// Connects to NATS and starts `services`. Returns once all are subscribed and listening.
///
/// With NATS passwords configured every service connects as its own user (the service's
/// name), so the server's permissions bound what each may publish and subscribe; without,
/// the services share one anonymous connection.
pub async fn start(config: Config, services: &[Service]) -> Result<Running, CertdError> {
    let shared = if config.nats_passwords.is_empty() {
        Some(connect(&config, None).await?)
    } else {
        None
    };
    let shutdown = CancellationToken::new();
    let mut tasks = JoinSet::new();
    let mut clients = Vec::new();
    let mut gateway_address = None;
    let mut crl_address = None;
    let mut acme_address = None;
    let policy = Arc::new(config.policy.clone());
    let readiness = Readiness::default();
    let mut backlogs = Vec::new();
    let health_listener = match config.health_listen {
        Some(address) => Some(
            TcpListener::bind(address)
                .await
                .map_err(|source| CertdError::Listen { address, source })?,
        ),
        None => None,
    };
    let operator_listener = match config.operator_listen {
        Some(address) => Some(
            TcpListener::bind(address)
                .await
                .map_err(|source| CertdError::Listen { address, source })?,
        ),
        None => None,
    };
    if let Some(client) = &shared {
        let names = services
            .iter()
            .map(|service| service.name())
            .collect::<Vec<_>>();
        tasks.spawn(watch_connection(
            client.clone(),
            "nats".into(),
            names.join(","),
            readiness.clone(),
            shutdown.clone(),
        ));
    }

    for &service in services {
        let client = match &shared {
            Some(client) => client.clone(),
            None => {
                let password = config
                    .nats_passwords
                    .get(&service)
                    .ok_or(CertdError::NoCredentials(service.name()))?;
                let client = connect(&config, Some((service.name(), password))).await?;
                tasks.spawn(watch_connection(
                    client.clone(),
                    format!("nats ({})", service.name()),
                    service.name().to_string(),
                    readiness.clone(),
                    shutdown.clone(),
                ));
                client
            }
        };
        clients.push(client.clone());
        let backlog = certflow_store::Backlog::new(client.clone());
        let backlog = match service {
            Service::Revocation | Service::Reissue => {
                backlog.event_consumer(&config.store, service.name())
            }
            Service::Validation => backlog
                .event_consumer(&config.store, service.name())
                .validation_checks(),
            Service::Review => backlog
                .event_consumer(&config.store, service.name())
                .review_queue(),
            Service::Notifier => backlog
                .event_consumer(&config.store, service.name())
                .notify_queue(),
            Service::Gateway | Service::Issuance | Service::Projection => backlog,
        };
        if !backlog.is_empty() {
            backlogs.push(backlog);
        }
        let context = StartContext {
            config: &config,
            policy: &policy,
            readiness: &readiness,
            shutdown: &shutdown,
        };
        // Boxed: each service's start is a large future, and only one runs at a time.
        if let Some(addresses) =
            Box::pin(start_service(service, client, context, &mut tasks)).await?
        {
            gateway_address = Some(addresses.grpc);
            crl_address = Some(addresses.crl);
            acme_address = addresses.acme;
        }
        info!(service = service.name(), "started");
    }
    for backlog in backlogs {
        tasks.spawn(backlog.run(config.backlog_interval, shutdown.clone()));
    }
    let console_address = match &config.console {
        Some(settings) => Some(
            start_console(
                settings,
                &config,
                gateway_address,
                shutdown.clone(),
                &mut tasks,
            )
            .await?,
        ),
        None => None,
    };
    let mut operator_address = None;
    if let Some(listener) = operator_listener {
        operator_address = listener.local_addr().ok();
        let registry = config.metrics_registry.clone();
        let ready = readiness.clone();
        let token = shutdown.clone();
        tasks.spawn(async move {
            if let Err(err) = certflow_telemetry::serve_http(listener, registry, ready, token).await
            {
                error!(error = %err, "operator HTTP server stopped");
            }
        });
        info!(address = ?operator_address, "metrics on /metrics, readiness on /readyz");
    }
    let mut health_address = None;
    if let Some(listener) = health_listener {
        health_address = listener.local_addr().ok();
        tasks.spawn(serve_health(listener, readiness.clone(), shutdown.clone()));
        info!(address = ?health_address, "gRPC health in plaintext");
    }
    Ok(Running {
        gateway_address,
        crl_address,
        acme_address,
        operator_address,
        health_address,
        console_address,
        readiness,
        shutdown,
        tasks,
        clients,
    })
}

/// Starts the web console against `settings.gateway`, else this process's gateway.
async fn start_console(
    settings: &ConsoleSettings,
    config: &Config,
    gateway_address: Option<SocketAddr>,
    shutdown: CancellationToken,
    tasks: &mut JoinSet<()>,
) -> Result<SocketAddr, CertdError> {
    let gateway = match (&settings.gateway, gateway_address) {
        (Some(url), _) => url.clone(),
        (None, Some(address)) if config.gateway.tls.is_none() => format!("http://{address}"),
        _ => return Err(CertdError::ConsoleGateway),
    };
    let server = certflow_console::ConsoleServer::new(
        &settings.console_config(gateway, config.gateway.token_keys.clone()),
    )?;
    let listener =
        TcpListener::bind(settings.listen)
            .await
            .map_err(|source| CertdError::Listen {
                address: settings.listen,
                source,
            })?;
    let address = listener.local_addr().map_err(|source| CertdError::Listen {
        address: settings.listen,
        source,
    })?;
    tasks.spawn(async move {
        if let Err(err) = server.serve(listener, shutdown).await {
            error!(error = %err, "the console stopped");
        }
    });
    info!(%address, "console");
    Ok(address)
}

/// Serves `grpc.health.v1` on `listener` until `shutdown`: the server `""` is `SERVING`
/// while every service of the process is ready (what `/readyz` says), checked every second.
async fn serve_health(listener: TcpListener, readiness: Readiness, shutdown: CancellationToken) {
    let (reporter, service) = tonic_health::server::health_reporter();
    let follow = {
        let shutdown = shutdown.clone();
        async move {
            loop {
                let status = if readiness.report().0 {
                    tonic_health::ServingStatus::Serving
                } else {
                    tonic_health::ServingStatus::NotServing
                };
                reporter.set_service_status("", status).await;
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    };
    let serve = tonic::transport::Server::builder()
        .add_service(service)
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            shutdown.cancelled(),
        );
    let (_, served) = tokio::join!(follow, serve);
    if let Err(err) = served {
        error!(error = %err, "gRPC health server stopped");
    }
}

/// Keeps `part` of `readiness`, and the `certflow_nats_connected` gauge of `services` (the
/// services the connection carries), in step with a NATS connection's state.
async fn watch_connection(
    client: async_nats::Client,
    part: String,
    services: String,
    readiness: Readiness,
    shutdown: CancellationToken,
) {
    let mut connected = None;
    let label = [opentelemetry::KeyValue::new("service", services)];
    loop {
        let now = client.connection_state() == async_nats::connection::State::Connected;
        certflow_telemetry::instruments()
            .nats_connected
            .record(u64::from(now), &label);
        if connected != Some(now) {
            if now {
                readiness.ready(&part);
            } else {
                readiness.not_ready(&part, "NATS is unreachable");
            }
            connected = Some(now);
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}

/// The inbox prefix of NATS user `user`: `_INBOX_<user>`.
pub fn inbox_prefix(user: &str) -> String {
    format!("_INBOX_{user}")
}

async fn connect(
    config: &Config,
    user: Option<(&str, &Password)>,
) -> Result<async_nats::Client, CertdError> {
    let options = match user {
        Some((name, password)) => {
            async_nats::ConnectOptions::with_user_and_password(name.into(), password.0.clone())
                .name(format!("certd-{name}"))
                // Replies come back under the user's own prefix, the only inbox its
                // permissions let it read (deploy/nats/accounts.conf).
                .custom_inbox_prefix(inbox_prefix(name))
        }
        None => async_nats::ConnectOptions::new().name("certd"),
    };
    let tls = &config.nats_tls;
    let mut options = options.require_tls(tls.required || tls.ca.is_some());
    if let Some(ca) = &tls.ca {
        options = options.add_root_certificates(ca.clone());
    }
    if let Some((certificate, key)) = &tls.client_certificate {
        options = options.add_client_certificate(certificate.clone(), key.clone());
    }
    // A cluster is named by several URLs, comma-separated; any one reachable will do.
    let servers: Vec<&str> = config
        .nats_url
        .split(',')
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .collect();
    options
        .connect(servers)
        .await
        .map_err(|source| CertdError::Connect {
            url: config.nats_url.clone(),
            source,
        })
}

/// What every service's start shares.
#[derive(Clone, Copy)]
struct StartContext<'a> {
    config: &'a Config,
    policy: &'a Arc<Policy>,
    readiness: &'a Readiness,
    shutdown: &'a CancellationToken,
}

/// Builds `service` and spawns it into `tasks`; for the gateway, where it and its CRL
/// distribution point listen.
async fn start_service(
    service: Service,
    client: async_nats::Client,
    context: StartContext<'_>,
    tasks: &mut JoinSet<()>,
) -> Result<Option<GatewayAddresses>, CertdError> {
    let StartContext {
        config,
        policy,
        readiness,
        shutdown,
    } = context;
    let token = shutdown.clone();
    let failed = |err: String| service_error(service, err);
    let store = || EventStore::attach(client.clone(), config.store.clone());
    match service {
        Service::Projection => {
            let projection = ProjectionService::bind(
                client.clone(),
                &store().await?,
                &ProjectionConfig {
                    db_path: config.data_dir.join("projection"),
                    rebuild: config.rebuild_projection,
                    readiness: readiness.clone(),
                },
            )
            .await
            .map_err(|e| failed(e.to_string()))?;
            tasks.spawn(projection.run(token));
        }
        Service::Gateway => {
            let addresses = start_gateway(config, client, readiness, token, tasks).await?;
            return Ok(Some(addresses));
        }
        Service::Issuance => {
            let store = store().await?;
            let runtime = command_runtime(&client, &store, policy).await?;
            let signing = signing(config, &client).await?;
            let issuance =
                IssuanceService::new(client.clone(), runtime, signing, config.crl.clone())
                    .await
                    .map_err(|e| failed(e.to_string()))?;
            launch(tasks, client, store, issuance, token).await?;
        }
        Service::Revocation => {
            let store = store().await?;
            let runtime = command_runtime(&client, &store, policy).await?;
            let revocation = RevocationService::new(client.clone(), runtime)
                .await
                .map_err(|e| failed(e.to_string()))?;
            launch(tasks, client, store, revocation, token).await?;
        }
        Service::Reissue => {
            let store = store().await?;
            let runtime = command_runtime(&client, &store, policy).await?;
            let reissue_config = ReissueConfig {
                request_timeout: config.request_timeout,
                ..config.reissue.clone()
            };
            let reissue = ReissueService::new(client.clone(), runtime, reissue_config)
                .await
                .map_err(|e| failed(e.to_string()))?;
            launch(tasks, client, store, reissue, token).await?;
        }
        Service::Validation => {
            let store = store().await?;
            let validation = ValidationService::new(
                client.clone(),
                store.clone(),
                policy.clone(),
                config.validation.clone(),
            )
            .await
            .map_err(|e| failed(e.to_string()))?;
            launch(tasks, client, store, validation, token).await?;
        }
        Service::Review => {
            let store = store().await?;
            let runtime = command_runtime(&client, &store, policy).await?;
            let review = ReviewService::new(client.clone(), runtime, config.review.clone())
                .await
                .map_err(|e| failed(e.to_string()))?;
            launch(tasks, client, store, review, token).await?;
        }
        Service::Notifier => {
            let store = store().await?;
            let notifier =
                NotifierService::new(client.clone(), store.clone(), config.notify.clone())
                    .await
                    .map_err(|e| failed(e.to_string()))?;
            launch(tasks, client, store, notifier, token).await?;
        }
    }
    Ok(None)
}

async fn command_runtime(
    client: &async_nats::Client,
    store: &EventStore,
    policy: &Arc<Policy>,
) -> Result<CommandRuntime, CertdError> {
    Ok(CommandRuntime {
        store: store.clone(),
        outcomes: Outcomes::attach(client.clone()).await?,
        policy: policy.clone(),
    })
}

/// Subscribes `service` to its subjects and runs it on the skeleton until `shutdown`.
async fn launch<S: certflow_runtime::Service>(
    tasks: &mut JoinSet<()>,
    client: async_nats::Client,
    store: EventStore,
    service: S,
    shutdown: CancellationToken,
) -> Result<(), CertdError> {
    let bound = certflow_runtime::bind(client, store, service)
        .await
        .map_err(|err| CertdError::Service {
            service: S::SPEC.name,
            message: err.to_string(),
        })?;
    tasks.spawn(bound.run(shutdown));
    Ok(())
}

/// The issuance service's CA and key store: the built-in CA (created on first start, or
/// the operator's from `ca_dir`), the key store it seals keys into, and the transport key
/// derived from the KEK.
async fn signing(config: &Config, client: &async_nats::Client) -> Result<Signing, CertdError> {
    let kek = config.kek.clone().ok_or(CertdError::NoKek)?;
    let keys = KeyStore::attach(client.clone()).await?;
    let ca = builtin_ca(
        &keys,
        &kek,
        config.ca_algorithm,
        &config.crl_base_url,
        config.ca_dir.as_deref(),
        certflow_runtime::now(),
    )
    .await
    .map_err(|e| service_error(Service::Issuance, e))?;
    Ok(Signing {
        ca: Arc::new(ca),
        keys,
        transport: certflow_ca::transport::TransportKey::derive(&kek),
        kek,
        crl_shards: config.crl_shards,
    })
}

/// Where the gateway's listeners are bound.
#[derive(Debug, Clone, Copy)]
pub struct GatewayAddresses {
    /// gRPC.
    pub grpc: SocketAddr,
    /// The CRL distribution points.
    pub crl: SocketAddr,
    /// The ACME endpoint, when one is configured.
    pub acme: Option<SocketAddr>,
}

/// Starts the gateway, its CRL distribution points and its ACME endpoint; where each
/// listens.
async fn start_gateway(
    config: &Config,
    client: async_nats::Client,
    readiness: &Readiness,
    token: CancellationToken,
    tasks: &mut JoinSet<()>,
) -> Result<GatewayAddresses, CertdError> {
    let listen = |address: SocketAddr| async move {
        TcpListener::bind(address)
            .await
            .map_err(|source| CertdError::Listen { address, source })
    };
    let listener = listen(config.listen).await?;
    let crl_listener = listen(config.crl_listen).await?;
    let bound = |listener: &TcpListener, address: SocketAddr| {
        listener
            .local_addr()
            .map_err(|source| CertdError::Listen { address, source })
    };
    let mut addresses = GatewayAddresses {
        grpc: bound(&listener, config.listen)?,
        crl: bound(&crl_listener, config.crl_listen)?,
        acme: None,
    };
    let bus = BusClient::new(client.clone(), config.request_timeout);
    readiness.not_ready("gateway", "starting");
    let mut gateway = Gateway::new(bus.clone(), &config.gateway)
        .map_err(|e| service_error(Service::Gateway, e))?
        .with_readiness(readiness.clone());
    if let Some(acme_listen) = config.acme_listen {
        let acme_listener = listen(acme_listen).await?;
        let address = bound(&acme_listener, acme_listen)?;
        let scheme = if config.gateway.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let base_url = config
            .acme_base_url
            .clone()
            .unwrap_or_else(|| format!("{scheme}://{address}"));
        let acme_tls = match &config.gateway.tls {
            Some(tls) => Some(
                certflow_gateway::acme::tls_acceptor(tls)
                    .map_err(|e| service_error(Service::Gateway, e))?,
            ),
            None => None,
        };
        let store = certflow_store::AcmeStore::attach(client)
            .await
            .map_err(|e| service_error(Service::Gateway, e))?;
        let endpoint =
            certflow_gateway::acme::AcmeEndpoint::new(bus.clone(), store.clone(), &base_url);
        gateway = gateway.with_acme(
            store,
            format!(
                "{}{}",
                base_url.trim_end_matches('/'),
                certflow_gateway::acme::DIRECTORY
            ),
        );
        let acme_token = token.clone();
        tasks.spawn(async move {
            let served = match acme_tls {
                Some(acceptor) => {
                    let listener = certflow_gateway::acme::TlsListener::new(
                        acme_listener,
                        acceptor,
                        acme_token.clone(),
                    );
                    match listener {
                        Ok(listener) => {
                            certflow_gateway::acme::serve(listener, endpoint, acme_token).await
                        }
                        Err(err) => Err(err),
                    }
                }
                None => certflow_gateway::acme::serve(acme_listener, endpoint, acme_token).await,
            };
            if let Err(err) = served {
                error!(error = %err, "ACME endpoint stopped");
            }
        });
        addresses.acme = Some(address);
    }
    let crl_token = token.clone();
    tasks.spawn(async move {
        if let Err(err) = certflow_gateway::crl_http::serve(crl_listener, bus, crl_token).await {
            error!(error = %err, "CRL server stopped");
        }
    });
    let grace = config.shutdown_grace;
    tasks.spawn(async move {
        // Graceful shutdown waits for every client connection to go away; idle clients may
        // hold theirs open, so after the grace period they are cut.
        let deadline = async {
            token.cancelled().await;
            tokio::time::sleep(grace).await;
        };
        tokio::select! {
            result = gateway.serve(listener, token.clone()) => {
                if let Err(err) = result {
                    error!(error = %err, "gateway stopped");
                    token.cancel();
                }
            }
            _ = deadline => info!("gateway closed connections still open after the grace period"),
        }
    });
    Ok(addresses)
}
