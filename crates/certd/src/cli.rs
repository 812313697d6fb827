//! certd's command line: its flags and subcommands, and the [`Config`] they make.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use certd::{Config, Service};
use certflow_gateway::auth::KeySource;
use certflow_gateway::{GatewayConfig, TlsConfig};
use certflow_telemetry::Telemetry;
use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "certd",
    version,
    about = "certflow server: certificate revocation and reissue",
    // A flag given twice takes its last value, so a wrapper's defaults can be overridden.
    args_override_self = true
)]
pub(crate) struct Cli {
    /// NATS server with JetStream; a cluster as several URLs, comma-separated.
    #[arg(
        long,
        env = "NATS_URL",
        default_value = "nats://127.0.0.1:4222",
        global = true
    )]
    nats_url: String,
    /// Require TLS towards NATS (implied by --nats-ca and by `tls://` URLs).
    #[arg(long, env = "CERTD_NATS_TLS", global = true)]
    nats_tls: bool,
    /// CA (PEM) that signs the NATS servers' certificates; default: the system's roots.
    #[arg(long, env = "CERTD_NATS_CA", global = true)]
    nats_ca: Option<PathBuf>,
    /// Client certificate (PEM) shown to NATS servers that verify clients.
    #[arg(long, env = "CERTD_NATS_CERT", global = true, requires = "nats_key")]
    nats_cert: Option<PathBuf>,
    /// Private key (PEM) of --nats-cert.
    #[arg(long, env = "CERTD_NATS_KEY", global = true, requires = "nats_cert")]
    nats_key: Option<PathBuf>,
    /// Address of the gRPC gateway.
    #[arg(
        long,
        env = "CERTD_LISTEN",
        default_value = "127.0.0.1:50051",
        global = true
    )]
    listen: SocketAddr,
    /// Directory for the projection's database.
    #[arg(
        long,
        env = "CERTD_DATA_DIR",
        default_value = ".run/data",
        global = true
    )]
    data_dir: PathBuf,
    /// Seconds the gateway lets calls and idle connections finish on shutdown.
    #[arg(
        long,
        env = "CERTD_SHUTDOWN_GRACE",
        default_value_t = 5.0,
        global = true
    )]
    shutdown_grace: f64,
    /// Replicas of every stream certflow uses: 1 on a single server, 3 on a 3-node cluster.
    /// Set by `certd provision`.
    #[arg(long, env = "CERTD_REPLICAS", default_value_t = 1, global = true)]
    replicas: usize,
    /// Seconds before work a killed instance left unfinished (an event it was reacting to,
    /// a validation check) is offered to another. Unset: each service's own (30 s; 60 s
    /// for reissue). Set on the consumers by `certd provision`.
    #[arg(long, env = "CERTD_REDELIVERY_AFTER", global = true)]
    redelivery_after: Option<f64>,
    /// Log format: human-readable text, or one JSON object per line. `RUST_LOG` filters.
    #[arg(long, env = "CERTD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub(crate) log_format: LogFormat,
    /// Where `/metrics` (Prometheus text), `/healthz` and `/readyz` are served; `off` for
    /// nowhere, port 0 for any free port.
    #[arg(
        long,
        env = "CERTD_METRICS_LISTEN",
        default_value = "127.0.0.1:9464",
        value_parser = parse_operator_listen,
        global = true
    )]
    metrics_listen: OperatorListen,
    /// Where `grpc.health.v1` answers in plaintext what `/readyz` says (for Kubernetes'
    /// `grpc` probes); unset: nowhere.
    #[arg(long, env = "CERTD_HEALTH_LISTEN", global = true)]
    health_listen: Option<SocketAddr>,
    /// The key store's key-encryption key: 64 hex digits (issuance).
    #[arg(long, env = "CERTD_KEK", global = true, hide_env_values = true)]
    kek: Option<String>,
    /// The key-encryption key being rotated out: records sealed under it still open until
    /// `certd rewrap-keys` has wrapped them under --kek.
    #[arg(
        long,
        env = "CERTD_KEK_PREVIOUS",
        global = true,
        hide_env_values = true,
        requires = "kek"
    )]
    kek_previous: Option<String>,
    /// Key type of the CAs certd creates itself: ecc (P-384 root, P-256 intermediate) or rsa
    /// (RSA 4096 root, RSA 2048 intermediate).
    #[arg(long, env = "CERTD_CA_ALGORITHM", value_enum, default_value_t = CaKind::Ecc, global = true)]
    ca_algorithm: CaKind,
    /// Operator-provided CAs: `<dir>/<brand>/{root.crt,intermediate.crt,intermediate.key}`;
    /// brands without files get a generated CA.
    #[arg(long, env = "CERTD_CA_DIR", global = true)]
    ca_dir: Option<PathBuf>,
    /// Where the gateway serves CRLs over HTTP.
    #[arg(
        long,
        env = "CERTD_CRL_LISTEN",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    crl_listen: SocketAddr,
    /// Base URL of the CRL server, written into every certificate.
    #[arg(
        long,
        env = "CERTD_CRL_BASE_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    crl_base_url: String,
    /// Where the gateway serves ACME (RFC 8555) for certbot, lego and other clients to
    /// revoke through; `off` serves none.
    #[arg(
        long,
        env = "CERTD_ACME_LISTEN",
        default_value = "127.0.0.1:4001",
        global = true
    )]
    acme_listen: String,
    /// The ACME endpoint's URL as clients reach it (e.g. `https://acme.example` behind the
    /// TLS proxy in front of it); by default `http://` and the address it listens on.
    #[arg(long, env = "CERTD_ACME_BASE_URL", global = true)]
    acme_base_url: Option<String>,
    /// How many shards each issuing CA's CRL is split into. New certificates are spread over
    /// them; raising it later leaves issued certificates on the shard they name.
    #[arg(
        long,
        env = "CERTD_CRL_SHARDS",
        default_value_t = certd::DEFAULT_CRL_SHARDS,
        value_parser = clap::value_parser!(u32).range(1..=i64::from(certflow_ca::partition::MAX_SHARDS)),
        global = true
    )]
    crl_shards: u32,
    /// Where the web console listens (`certd all` and `certd console`); `off` for nowhere,
    /// port 0 for any free port.
    #[arg(
        long,
        env = "CERTD_CONSOLE_LISTEN",
        default_value = "127.0.0.1:8081",
        global = true
    )]
    console_listen: String,
    /// The gateway the console calls (e.g. `https://gateway.certflow:50051`); by default
    /// `certd all`'s own gateway, and `http://` plus --listen for `certd console`.
    #[arg(long, env = "CERTD_CONSOLE_GATEWAY", global = true)]
    console_gateway: Option<String>,
    /// CA (PEM) that signs an `https://` --console-gateway's certificate; required with one.
    #[arg(long, env = "CERTD_CONSOLE_GATEWAY_CA", global = true)]
    console_gateway_ca: Option<PathBuf>,
    /// Development sign-in: a directory of token files (`make run` writes `.run/tokens`)
    /// the console's sign-in page offers. Unset: callers arrive signed in, with the
    /// `Authorization` header an identity-aware proxy sets.
    #[arg(long, env = "CERTD_CONSOLE_DEV_IDENTITIES", global = true)]
    console_dev_identities: Option<PathBuf>,
    #[command(flatten)]
    gateway: GatewayArgs,
    #[command(flatten)]
    validation: ValidationArgs,
    #[command(flatten)]
    review: ReviewArgs,
    #[command(flatten)]
    notify: NotifyArgs,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// How the gateway checks callers and secures connections.
#[derive(clap::Args, Debug)]
struct GatewayArgs {
    /// Ed25519 public key (PEM) that signs callers' tokens (EdDSA); repeatable.
    #[arg(long, env = "CERTD_JWT_ED25519_KEY", global = true)]
    jwt_ed25519_key: Vec<PathBuf>,
    /// RSA public key (PEM) that signs callers' tokens (RS256); repeatable.
    #[arg(long, env = "CERTD_JWT_RSA_KEY", global = true)]
    jwt_rsa_key: Vec<PathBuf>,
    /// JWKS file of token-signing public keys.
    #[arg(long, env = "CERTD_JWKS", global = true)]
    jwks: Option<PathBuf>,
    /// Shared HS256 secret for tokens: local development only.
    #[arg(
        long,
        env = "CERTD_JWT_DEV_SECRET",
        global = true,
        hide_env_values = true
    )]
    jwt_dev_secret: Option<String>,
    /// Commands per second allowed per account and RPC.
    #[arg(
        long,
        env = "CERTD_COMMANDS_PER_SECOND",
        default_value_t = 10,
        global = true
    )]
    commands_per_second: u32,
    /// Queries per second allowed per account and RPC.
    #[arg(
        long,
        env = "CERTD_QUERIES_PER_SECOND",
        default_value_t = 100,
        global = true
    )]
    queries_per_second: u32,
    /// The gateway's TLS certificate chain (PEM).
    #[arg(long, env = "CERTD_TLS_CERT", global = true, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The gateway's TLS private key (PEM).
    #[arg(long, env = "CERTD_TLS_KEY", global = true, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// CA (PEM) that client certificates must chain to; every client then needs one.
    #[arg(
        long,
        env = "CERTD_TLS_CLIENT_CA",
        global = true,
        requires = "tls_cert"
    )]
    tls_client_ca: Option<PathBuf>,
    /// Serve the gateway without TLS (local development only).
    #[arg(
        long,
        env = "CERTD_PLAINTEXT",
        global = true,
        conflicts_with = "tls_cert"
    )]
    plaintext: bool,
}

impl GatewayArgs {
    /// The keys that sign callers' tokens.
    fn token_keys(&self) -> Vec<KeySource> {
        let mut token_keys: Vec<KeySource> = Vec::new();
        token_keys.extend(
            self.jwt_ed25519_key
                .iter()
                .cloned()
                .map(KeySource::Ed25519Pem),
        );
        token_keys.extend(self.jwt_rsa_key.iter().cloned().map(KeySource::RsaPem));
        token_keys.extend(self.jwks.iter().cloned().map(KeySource::Jwks));
        token_keys.extend(
            self.jwt_dev_secret
                .iter()
                .cloned()
                .map(KeySource::DevSecret),
        );
        token_keys
    }

    fn config(&self) -> anyhow::Result<GatewayConfig> {
        let token_keys = self.token_keys();
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(certificate_pem), Some(key_pem)) => Some(TlsConfig {
                certificate_pem: certificate_pem.clone(),
                key_pem: key_pem.clone(),
                client_ca_pem: self.tls_client_ca.clone(),
            }),
            _ if self.plaintext => None,
            _ => anyhow::bail!(
                "the gateway needs --tls-cert and --tls-key, or --plaintext for local development"
            ),
        };
        Ok(GatewayConfig {
            token_keys,
            commands_per_second: self.commands_per_second,
            queries_per_second: self.queries_per_second,
            tls,
        })
    }
}

/// Where the validation service looks for proof of domain ownership.
#[derive(clap::Args, Debug)]
struct ValidationArgs {
    /// DNS server to ask for `_dnsauth` TXT records (ip:port); repeatable, comma-separated
    /// in the variable. Default: the system's resolv.conf.
    #[arg(
        long,
        env = "CERTD_VALIDATION_DNS",
        value_delimiter = ',',
        global = true
    )]
    validation_dns: Vec<SocketAddr>,
    /// Fetch a domain's validation file from this address instead of resolving it:
    /// `domain=ip:port`; repeatable, comma-separated in the variable.
    #[arg(
        long,
        env = "CERTD_VALIDATION_HTTP_OVERRIDE",
        value_delimiter = ',',
        value_parser = parse_override,
        global = true
    )]
    validation_http_override: Vec<(String, SocketAddr)>,
    /// A network (CIDR) the file probe may fetch from although it is not public, e.g. an
    /// operator's own 10.0.0.0/8 for internal domains; repeatable, comma-separated in the
    /// variable. Default: public addresses only.
    #[arg(
        long,
        env = "CERTD_VALIDATION_ALLOW_NETWORK",
        value_delimiter = ',',
        global = true
    )]
    validation_allow_network: Vec<ipnet::IpNet>,
    /// Seconds each DNS lookup or HTTP fetch may take.
    #[arg(
        long,
        env = "CERTD_VALIDATION_TIMEOUT",
        default_value_t = 5.0,
        global = true
    )]
    validation_timeout: f64,
    /// Seconds before a pending challenge is first checked again (then doubling).
    #[arg(
        long,
        env = "CERTD_VALIDATION_RECHECK",
        default_value_t = 30.0,
        global = true
    )]
    validation_recheck: f64,
    /// Most seconds between two checks of a pending challenge.
    #[arg(
        long,
        env = "CERTD_VALIDATION_RECHECK_MAX",
        default_value_t = 600.0,
        global = true
    )]
    validation_recheck_max: f64,
    /// Seconds a domain validation stays open before the revocation fails (REV-11).
    #[arg(
        long,
        env = "CERTD_VALIDATION_WINDOW",
        default_value_t = 3.0 * 86_400.0,
        global = true
    )]
    validation_window: f64,
}

/// Where and how accounts are notified.
#[derive(clap::Args, Debug)]
struct NotifyArgs {
    /// The SMTP relay notification email goes through, as a URL:
    /// `smtp://host:587?tls=required` (STARTTLS) or `smtps://host:465`, with
    /// `user:password@` when the relay asks; plain `smtp://` only to a relay on this
    /// machine. Unset: no email is sent.
    #[arg(long, env = "CERTD_SMTP_URL", global = true, hide_env_values = true)]
    smtp_url: Option<String>,
    /// The sender of notification email, e.g. `certflow <noreply@ca.example>`.
    #[arg(long, env = "CERTD_EMAIL_FROM", global = true)]
    email_from: Option<String>,
    /// A network (CIDR) webhooks may be delivered to although it is not public: an
    /// operator's own, or 127.0.0.0/8 in tests; repeatable, comma-separated in the variable.
    /// Default: public addresses only.
    #[arg(
        long,
        env = "CERTD_NOTIFY_ALLOW_NETWORK",
        value_delimiter = ',',
        global = true
    )]
    notify_allow_network: Vec<ipnet::IpNet>,
    /// DNS server that resolves webhook hosts (ip:port); repeatable. Default: resolv.conf.
    #[arg(long, env = "CERTD_NOTIFY_DNS", value_delimiter = ',', global = true)]
    notify_dns: Vec<SocketAddr>,
    /// PEM file of root certificates trusted for webhook receivers beside the public ones.
    #[arg(long, env = "CERTD_NOTIFY_EXTRA_ROOTS", global = true)]
    notify_extra_roots: Option<PathBuf>,
    /// Seconds to wait after each failed delivery, in order; the last repeats.
    #[arg(
        long,
        env = "CERTD_NOTIFY_RETRY_DELAYS",
        value_delimiter = ',',
        default_values_t = [5.0, 300.0, 1800.0, 7200.0, 18_000.0, 36_000.0],
        global = true
    )]
    notify_retry_delays: Vec<f64>,
    /// Seconds after which a delivery still failing becomes a dead letter.
    #[arg(
        long,
        env = "CERTD_NOTIFY_GIVE_UP_AFTER",
        default_value_t = 3.0 * 86_400.0,
        global = true
    )]
    notify_give_up_after: f64,
    /// Seconds before a validation's deadline that the reminder goes out.
    #[arg(
        long,
        env = "CERTD_NOTIFY_REMIND_BEFORE",
        default_value_t = 86_400.0,
        global = true
    )]
    notify_remind_before: f64,
    /// Seconds one delivery attempt may take (DNS, connect, exchange).
    #[arg(
        long,
        env = "CERTD_NOTIFY_TIMEOUT",
        default_value_t = 10.0,
        global = true
    )]
    notify_timeout: f64,
}

impl NotifyArgs {
    fn apply(&self, config: &mut Config) -> anyhow::Result<()> {
        let notify = &mut config.notify;
        notify.smtp_url = self.smtp_url.clone();
        notify.email_from = self.email_from.clone();
        anyhow::ensure!(
            notify.smtp_url.is_some() == notify.email_from.is_some(),
            "--smtp-url and --email-from go together"
        );
        notify.allowed_networks = self.notify_allow_network.clone();
        notify.dns_servers = self.notify_dns.clone();
        if let Some(path) = &self.notify_extra_roots {
            let pem = std::fs::read(path)
                .with_context(|| format!("--notify-extra-roots {}", path.display()))?;
            notify.extra_roots_pem = vec![pem];
        }
        notify.retry.delays = self
            .notify_retry_delays
            .iter()
            .map(|&delay| seconds(delay, "--notify-retry-delays"))
            .collect::<anyhow::Result<_>>()?;
        notify.retry.give_up_after = seconds(self.notify_give_up_after, "--notify-give-up-after")?;
        notify.remind_before = seconds(self.notify_remind_before, "--notify-remind-before")?;
        notify.timeout = seconds(self.notify_timeout, "--notify-timeout")?;
        Ok(())
    }
}

/// How reviews are handed out and how many approvals they need.
#[derive(clap::Args, Debug)]
struct ReviewArgs {
    /// Seconds a reviewer holds a task before it is offered to another.
    #[arg(
        long,
        env = "CERTD_REVIEW_ACK_WAIT",
        default_value_t = 900.0,
        global = true
    )]
    review_ack_wait: f64,
    /// How many review tasks one reviewer holds at most (REV-R5).
    #[arg(
        long,
        env = "CERTD_REVIEW_MAX_HELD",
        default_value_t = 5,
        global = true
    )]
    review_max_held: usize,
    /// Distinct approvals a review needs (REV-R3), as `brand:level=n`, e.g. `wotrus:ev=2`;
    /// repeatable, comma-separated in the variable. Unlisted: 1.
    #[arg(
        long,
        env = "CERTD_REVIEW_APPROVALS",
        value_delimiter = ',',
        value_parser = parse_approvals,
        global = true
    )]
    review_approvals: Vec<((certflow_domain::Brand, certflow_domain::Level), u32)>,
}

fn parse_approvals(
    value: &str,
) -> Result<((certflow_domain::Brand, certflow_domain::Level), u32), String> {
    let shape = || format!("{value:?} is not brand:level=n, e.g. wotrus:ev=2");
    let (key, count) = value.split_once('=').ok_or_else(shape)?;
    let (brand, level) = key.split_once(':').ok_or_else(shape)?;
    let brand = certflow_domain::Brand::from_slug(&brand.trim().to_ascii_lowercase())
        .ok_or_else(|| format!("{brand:?} is not a brand (e.g. wotrus, dnspod, geotrust)"))?;
    let level = match level.trim().to_ascii_lowercase().as_str() {
        "dv" => certflow_domain::Level::Dv,
        "ov" => certflow_domain::Level::Ov,
        "ev" => certflow_domain::Level::Ev,
        other => return Err(format!("{other:?} is not a level: dv, ov or ev")),
    };
    let count: u32 = count
        .trim()
        .parse()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| format!("{count:?} is not a number of approvals (1 or more)"))?;
    Ok(((brand, level), count))
}

impl ReviewArgs {
    fn apply(&self, config: &mut Config) -> anyhow::Result<()> {
        config.review.ack_wait = seconds(self.review_ack_wait, "--review-ack-wait")?;
        anyhow::ensure!(
            self.review_max_held >= 1,
            "--review-max-held must be 1 or more"
        );
        config.review.max_held = self.review_max_held;
        config
            .policy
            .review_approvals
            .extend(self.review_approvals.iter().copied());
        Ok(())
    }
}

fn parse_override(value: &str) -> Result<(String, SocketAddr), String> {
    let (domain, address) = value
        .split_once('=')
        .ok_or_else(|| format!("{value:?} is not domain=ip:port"))?;
    let address = address
        .parse()
        .map_err(|err| format!("{address:?} is not ip:port: {err}"))?;
    Ok((domain.trim().to_ascii_lowercase(), address))
}

/// An address, or none for `off`.
#[derive(Debug, Clone, Copy)]
struct OperatorListen(Option<SocketAddr>);

fn parse_operator_listen(value: &str) -> Result<OperatorListen, String> {
    if value.eq_ignore_ascii_case("off") {
        return Ok(OperatorListen(None));
    }
    value
        .parse()
        .map(|address| OperatorListen(Some(address)))
        .map_err(|err| format!("{err}: give host:port or off"))
}

fn seconds(value: f64, flag: &str) -> anyhow::Result<std::time::Duration> {
    std::time::Duration::try_from_secs_f64(value)
        .with_context(|| format!("{flag} must be a non-negative number of seconds"))
}

impl ValidationArgs {
    fn apply(&self, config: &mut Config) -> anyhow::Result<()> {
        let validation = &mut config.validation;
        validation.probe.dns_servers = self.validation_dns.clone();
        validation.probe.http_overrides = self.validation_http_override.iter().cloned().collect();
        validation.probe.allowed_networks = self.validation_allow_network.clone();
        validation.probe.timeout = seconds(self.validation_timeout, "--validation-timeout")?;
        validation.recheck_initial = seconds(self.validation_recheck, "--validation-recheck")?;
        validation.recheck_max = seconds(self.validation_recheck_max, "--validation-recheck-max")?;
        let window = seconds(self.validation_window, "--validation-window")?;
        config.policy.validation_window = certflow_domain::Duration::millis(
            i64::try_from(window.as_millis()).unwrap_or(i64::MAX),
        );
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum CaKind {
    Ecc,
    Rsa,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum LogFormat {
    Text,
    Json,
}

impl Command {
    /// `service.name` of what this process exports: `certd` for the whole set,
    /// `certd-<service>` for one.
    pub(crate) fn process_name(&self) -> String {
        match self {
            Command::All { .. }
            | Command::Provision
            | Command::DevKeys { .. }
            | Command::DevToken { .. }
            | Command::RewrapKeys => "certd".into(),
            Command::Gateway => "certd-gateway".into(),
            Command::Console => "certd-console".into(),
            Command::Issuance => "certd-issuance".into(),
            Command::Revocation => "certd-revocation".into(),
            Command::Reissue => "certd-reissue".into(),
            Command::Validation => "certd-validation".into(),
            Command::Review => "certd-review".into(),
            Command::Notifier => "certd-notifier".into(),
            Command::Projection { .. } => "certd-projection".into(),
        }
    }
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Every service in one process (still talking only over NATS).
    All {
        /// Wipe the projection and rebuild it from the event log.
        #[arg(long)]
        rebuild: bool,
    },
    /// The gRPC gateway.
    Gateway,
    /// The web console: a client of the gateway (--console-gateway), with no NATS
    /// connection of its own.
    Console,
    /// Records issued and uploaded certificates.
    Issuance,
    /// Decides revocations.
    Revocation,
    /// Reissues certificates.
    Reissue,
    /// Domain-ownership validation.
    Validation,
    /// The review queue.
    Review,
    /// Tells accounts what happens to their certificates: signed webhooks and email.
    Notifier,
    /// Folds the event log into sled and answers queries.
    Projection {
        /// Wipe the projection and rebuild it from the event log.
        #[arg(long)]
        rebuild: bool,
    },
    /// Creates every stream and consumer certflow uses, or brings their settings (replicas,
    /// redelivery and ack waits, outcome lifetime) up to date, as the NATS user `operator`
    /// (CERTFLOW_NATS_OPERATOR_PASSWORD). Run it before the services start, and after an
    /// upgrade; running it again changes nothing.
    Provision,
    /// Rotates the key store's key-encryption key: wraps every stored key's data key under
    /// --kek, opening those still under --kek-previous. Run it once every issuance instance
    /// has both keys; afterwards drop --kek-previous everywhere.
    RewrapKeys,
    /// Creates a development token-signing key (Ed25519) and key-store KEK in a directory,
    /// unless they exist.
    DevKeys {
        /// Where the key pair goes.
        #[arg(long, default_value = ".run")]
        dir: PathBuf,
    },
    /// Prints a development token signed with the key `dev-keys` made.
    DevToken {
        /// The private key from `dev-keys`.
        #[arg(long, default_value = ".run/token-signing.key.pem")]
        key: PathBuf,
        /// The account the token acts for.
        #[arg(long)]
        account: String,
        /// Role: customer, reviewer or admin; repeatable.
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        /// The subject (user) named in the token; defaults to `<account>-<first role>`.
        #[arg(long)]
        subject: Option<String>,
        /// Hours until the token expires.
        #[arg(long, default_value_t = 24)]
        hours: u64,
    },
}

impl Cli {
    /// The console's settings; `None` when --console-listen is `off`.
    pub(crate) fn console_settings(&self) -> anyhow::Result<Option<certd::ConsoleSettings>> {
        if self.console_listen == "off" {
            return Ok(None);
        }
        let listen: SocketAddr = self
            .console_listen
            .parse()
            .map_err(|e| anyhow::anyhow!("--console-listen {:?}: {e}", self.console_listen))?;
        // Development sign-in hands out every identity it holds, admins included: only to
        // this machine.
        anyhow::ensure!(
            self.console_dev_identities.is_none() || listen.ip().is_loopback(),
            "--console-dev-identities signs anyone in as any identity: the console must then \
             listen on a loopback address (--console-listen 127.0.0.1:8081), not {listen}"
        );
        Ok(Some(certd::ConsoleSettings {
            listen,
            gateway: self.console_gateway.clone(),
            gateway_ca: self.console_gateway_ca.clone(),
            dev_identities: self.console_dev_identities.clone(),
        }))
    }

    /// `certd console`'s configuration: it calls --console-gateway, else the gateway at
    /// --listen, and checks tokens with the gateway's keys.
    pub(crate) fn standalone_console(
        &self,
    ) -> anyhow::Result<Option<(SocketAddr, certflow_console::ConsoleConfig)>> {
        let Some(settings) = self.console_settings()? else {
            return Ok(None);
        };
        let gateway = settings
            .gateway
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen));
        Ok(Some((
            settings.listen,
            settings.console_config(gateway, self.gateway.token_keys()),
        )))
    }

    /// The configuration the flags make, and the services the subcommand runs.
    pub(crate) fn config(&self, telemetry: &Telemetry) -> anyhow::Result<(Config, Vec<Service>)> {
        let mut config = Config::new(self.nats_url.clone(), self.data_dir.clone());
        config.listen = self.listen;
        config.nats_tls = certd::NatsTls {
            required: self.nats_tls,
            ca: self.nats_ca.clone(),
            client_certificate: self.nats_cert.clone().zip(self.nats_key.clone()),
        };
        config.crl_base_url = self.crl_base_url.clone();
        config.crl_listen = self.crl_listen;
        config.crl_shards = self.crl_shards;
        config.acme_listen = match self.acme_listen.as_str() {
            "off" => None,
            address => Some(
                address
                    .parse()
                    .map_err(|e| anyhow::anyhow!("--acme-listen {address:?}: {e}"))?,
            ),
        };
        config.acme_base_url = self.acme_base_url.clone();
        config.ca_dir = self.ca_dir.clone();
        config.ca_algorithm = match self.ca_algorithm {
            CaKind::Ecc => certflow_ca::CaAlgorithm::Ecc,
            CaKind::Rsa => certflow_ca::CaAlgorithm::Rsa,
        };
        if let Some(kek) = &self.kek {
            let mut kek = certflow_ca::sealing::Kek::from_hex(kek)
                .context("--kek / CERTD_KEK must be 64 hex digits")?;
            if let Some(previous) = &self.kek_previous {
                let previous = certflow_ca::sealing::Kek::from_hex(previous)
                    .context("--kek-previous / CERTD_KEK_PREVIOUS must be 64 hex digits")?;
                kek = kek.with_previous(&previous);
            }
            config.kek = Some(kek);
        }
        config.shutdown_grace = seconds(self.shutdown_grace, "--shutdown-grace")?;
        config.store.replicas = self.replicas.max(1);
        config.store.redelivery_after = self
            .redelivery_after
            .map(|s| seconds(s, "--redelivery-after"))
            .transpose()?;
        config.operator_listen = self.metrics_listen.0;
        config.health_listen = self.health_listen;
        config.metrics_registry = telemetry.registry();
        self.validation.apply(&mut config)?;
        self.review.apply(&mut config)?;
        self.notify.apply(&mut config)?;
        let services: Vec<Service> = match &self.command {
            Command::All { rebuild } => {
                config.rebuild_projection = *rebuild;
                Service::ALL.to_vec()
            }
            Command::Gateway => vec![Service::Gateway],
            Command::Console => Vec::new(),
            Command::DevKeys { .. } | Command::DevToken { .. } | Command::Provision => Vec::new(),
            // Rewrapping works on the issuance service's key store, as its NATS user.
            Command::Issuance | Command::RewrapKeys => vec![Service::Issuance],
            Command::Revocation => vec![Service::Revocation],
            Command::Reissue => vec![Service::Reissue],
            Command::Validation => vec![Service::Validation],
            Command::Review => vec![Service::Review],
            Command::Notifier => vec![Service::Notifier],
            Command::Projection { rebuild } => {
                config.rebuild_projection = *rebuild;
                vec![Service::Projection]
            }
        };
        if let Command::RewrapKeys = self.command {
            anyhow::ensure!(
                self.kek_previous.is_some(),
                "rewrap-keys needs the new key in --kek and the old one in --kek-previous"
            );
        }
        if services.contains(&Service::Gateway) {
            config.gateway = self.gateway.config()?;
        }
        if let Command::All { .. } = self.command {
            config.console = self.console_settings()?;
        }
        // Each service's NATS password, and the operator's for provisioning, from the
        // environment only: never a flag, which `ps` would show.
        for service in &services {
            let variable = format!("CERTFLOW_NATS_{}_PASSWORD", service.name().to_uppercase());
            if let Ok(password) = std::env::var(&variable) {
                config
                    .nats_passwords
                    .insert(*service, certd::Password(password));
            }
        }
        if let Command::Provision = self.command {
            config.operator_password = std::env::var("CERTFLOW_NATS_OPERATOR_PASSWORD")
                .ok()
                .map(certd::Password);
        }
        Ok((config, services))
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::Cli;

    #[test]
    fn development_sign_in_is_served_on_loopback_only() {
        let settings = |listen: &str| {
            Cli::try_parse_from([
                "certd",
                "--console-listen",
                listen,
                "--console-dev-identities",
                "/tmp/tokens",
                "all",
            ])
            .expect("flags")
            .console_settings()
        };
        assert!(settings("127.0.0.1:8081").is_ok());
        assert!(settings("[::1]:8081").is_ok());
        let refused = settings("0.0.0.0:8081").expect_err("any address");
        assert!(refused.to_string().contains("loopback"), "{refused}");
        assert!(settings("192.0.2.10:8081").is_err());
    }
}
