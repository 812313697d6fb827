//! Test harness: real parts only.
//!
//! [`NatsServer`] starts a real `nats-server` with JetStream on an ephemeral port and a
//! temporary store directory (the binary from `NATS_SERVER_BIN`, else `PATH`, else
//! `/usr/sbin/nats-server`); [`Certflow`] starts the whole service set against it with the
//! gateway on `127.0.0.1:0`. Everything stops when dropped.
//!
//! ## Layout
//!
//! - [`cluster`]: a three-node JetStream cluster on loopback; any node killed and restarted.
//! - [`dns`]: an authoritative DNS server (hickory) for tests of the DNS validation probe.
//! - [`web`]: an HTTP/1 file server, one body per `Host`, for tests of the file validation probe.

#![forbid(unsafe_code)]

pub mod cluster;
pub mod dns;
pub mod web;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use certd::{Config, Running, Service};
use certflow_gateway::auth::KeySource;
use certflow_proto::v1::certificate_service_client::CertificateServiceClient;
use certflow_proto::v1::reissue_service_client::ReissueServiceClient;
use certflow_proto::v1::review_service_client::ReviewServiceClient;
use certflow_proto::v1::revocation_service_client::RevocationServiceClient;
use tempfile::TempDir;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// Why the harness could not start something. Its `Debug` is its message, so a test's
/// `expect` says what to do.
#[derive(thiserror::Error)]
pub enum TestkitError {
    #[error("cannot start nats-server ({binary}): {source}")]
    Spawn {
        binary: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "certflow needs nats-server 2.12 or newer, and {found}: run deploy/nats/server.sh \
         (it installs {PINNED_NATS_SERVER} under the build directory and prints its path) or \
         `make test`, or set NATS_SERVER_BIN to a nats-server 2.12 or newer"
    )]
    OldNatsServer { found: String },
    #[error("nats-server did not become ready: {0}")]
    NotReady(String),
    #[error("temporary directory: {0}")]
    TempDir(#[from] std::io::Error),
    #[error(transparent)]
    Certd(#[from] certd::CertdError),
    #[error("gRPC channel: {0}")]
    Channel(#[from] tonic::transport::Error),
    #[error("the gateway did not start")]
    NoGateway,
    #[error("development identity: {0}")]
    Dev(#[from] certd::dev::DevError),
    #[error("a token is not valid metadata")]
    BadToken,
}

impl std::fmt::Debug for TestkitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Debug, Clone)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl Bearer {
    /// A bearer of `token`; `None` sends no authorization at all.
    pub fn new(token: Option<&str>) -> Result<Self, TestkitError> {
        token
            .map(|t| {
                format!("Bearer {t}")
                    .parse()
                    .map_err(|_| TestkitError::BadToken)
            })
            .transpose()
            .map(Bearer)
    }
}

impl Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// A channel that carries a bearer token.
pub type Authed = InterceptedService<Channel, Bearer>;

/// Passwords of the NATS users of `deploy/nats/accounts.conf`, handed to nats-server and
/// to certd the way both read them.
#[derive(Debug, Clone, Default)]
pub struct NatsUsers(Vec<(String, String)>);

impl NatsUsers {
    /// A fresh random password for every user in [`NATS_USERS`].
    pub fn random() -> Self {
        NatsUsers(
            NATS_USERS
                .iter()
                .map(|user| (user.to_string(), random_password()))
                .collect(),
        )
    }

    /// The password of `user`.
    pub fn password(&self, user: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(name, _)| name == user)
            .map(|(_, password)| password.as_str())
    }

    /// `CERTFLOW_NATS_<USER>_PASSWORD` for each user: the variables the configuration and
    /// `certd` read.
    pub fn variables(&self) -> Vec<(String, String)> {
        self.0
            .iter()
            .map(|(user, password)| {
                (
                    format!("CERTFLOW_NATS_{}_PASSWORD", user.to_uppercase()),
                    password.clone(),
                )
            })
            .collect()
    }

    /// The operator's password, for provisioning.
    pub fn operator(&self) -> Option<certd::Password> {
        self.password("operator")
            .map(|password| certd::Password(password.to_string()))
    }

    /// Each service's password, for a [`Config`].
    pub fn of_services(&self) -> std::collections::HashMap<Service, certd::Password> {
        Service::ALL
            .iter()
            .filter_map(|service| {
                let password = self.password(service.name())?.to_string();
                Some((*service, certd::Password(password)))
            })
            .collect()
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Makes `config`'s gateway (plaintext) trust a development signing key kept in `dir`, and
/// gives it the key store's KEK from there; returns the signing key, for tokens.
pub fn trust_dev_key(config: &mut Config, dir: &Path) -> Result<PathBuf, TestkitError> {
    let (private, public) = certd::dev::ensure_signing_key(dir)?;
    let kek = certd::dev::ensure_kek(dir)?;
    config.kek = certflow_ca::sealing::Kek::from_hex(&kek).ok();
    config.gateway.token_keys = vec![KeySource::Ed25519Pem(public)];
    config.gateway.tls = None;
    Ok(private)
}

/// A loopback port nothing listens on right now, for a server that must come back on the
/// same port after a restart.
pub fn free_port() -> Result<u16, TestkitError> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The oldest nats-server certflow supports (docs/operations.md says why).
pub const MINIMUM_NATS_SERVER: [u32; 3] = [2, 12, 0];

/// The version `deploy/nats/server.sh` installs when no new enough server is at hand.
pub const PINNED_NATS_SERVER: &str = "2.12.8";

/// The `nats-server` binary the tests use: `NATS_SERVER_BIN`, else the pinned release that
/// `deploy/nats/server.sh` installed under the build directory, else `nats-server` on `PATH`.
/// [`checked_nats_server`] refuses it when it is too old.
pub fn nats_server_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("NATS_SERVER_BIN") {
        return PathBuf::from(path);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"),
        PathBuf::from,
    );
    let pinned = target
        .join("nats-server")
        .join(PINNED_NATS_SERVER)
        .join("nats-server");
    if pinned.is_file() {
        return pinned;
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let candidate = dir.join("nats-server");
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    PathBuf::from("nats-server")
}

/// [`nats_server_binary`], once it has said it is [`MINIMUM_NATS_SERVER`] or newer.
pub fn checked_nats_server() -> Result<PathBuf, TestkitError> {
    static CHECKED: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    CHECKED
        .get_or_init(|| {
            let binary = nats_server_binary();
            let output = Command::new(&binary)
                .arg("--version")
                .output()
                .map_err(|err| format!("{}: {err}", binary.display()))?;
            let reported = String::from_utf8_lossy(&output.stdout).trim().to_string();
            match parse_server_version(&reported) {
                Some(version) if version >= MINIMUM_NATS_SERVER => Ok(binary),
                _ => Err(format!("{} reports \"{reported}\"", binary.display())),
            }
        })
        .clone()
        .map_err(|found| TestkitError::OldNatsServer { found })
}

/// `[2, 12, 8]` from `nats-server: v2.12.8`.
fn parse_server_version(reported: &str) -> Option<[u32; 3]> {
    let version = reported.rsplit(' ').next()?.trim_start_matches('v');
    let mut parts = version
        .split(['.', '-'])
        .map(|part| part.parse::<u32>().ok());
    Some([parts.next()??, parts.next()??, parts.next()??])
}

/// The users of `deploy/nats/certflow.conf`.
pub const NATS_USERS: [&str; 10] = [
    "gateway",
    "notifier",
    "issuance",
    "revocation",
    "reissue",
    "reviewer",
    "validation",
    "review",
    "projection",
    "operator",
];

/// `deploy/nats/certflow.conf`: one user per service with its permissions.
pub fn secured_config_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/nats/certflow.conf")
}

/// The configuration of a server without users: JetStream (from the command line) and the
/// payload limit of `deploy/nats/certflow.conf`.
const PLAIN_CONFIG: &str = "max_payload: 8MB\n";

/// A real nats-server with JetStream, stopped (SIGKILL) on drop.
#[derive(Debug)]
pub struct NatsServer {
    child: Option<Child>,
    port: u16,
    store: TempDir,
    /// Password of each user when started with `deploy/nats/certflow.conf`.
    users: NatsUsers,
    /// More command-line arguments, kept for restarts.
    extra_args: Vec<String>,
}

impl NatsServer {
    /// Starts an open server (no users) on an ephemeral port with a new store directory.
    pub fn start() -> Result<Self, TestkitError> {
        Self::start_with(NatsUsers::default(), Vec::new())
    }

    /// Starts an open server, as [`start`](Self::start) does, with its monitoring endpoint
    /// (`/varz`, counts of messages in and out) on `127.0.0.1:<monitor_port>`.
    pub fn start_monitored(monitor_port: u16) -> Result<Self, TestkitError> {
        Self::start_with(
            NatsUsers::default(),
            vec!["-m".into(), monitor_port.to_string()],
        )
    }

    /// As [`start_monitored`](Self::start_monitored), with Go's profiling endpoints
    /// (`/debug/pprof/heap`: where the server's memory goes) on `127.0.0.1:<profile_port>`.
    pub fn start_profiled(monitor_port: u16, profile_port: u16) -> Result<Self, TestkitError> {
        Self::start_with(
            NatsUsers::default(),
            vec![
                "-m".into(),
                monitor_port.to_string(),
                "--profile".into(),
                profile_port.to_string(),
            ],
        )
    }

    /// Starts a server with `deploy/nats/certflow.conf` (a user per service, each with its
    /// permissions), fresh random passwords, an ephemeral port and a new store directory.
    pub fn start_secured() -> Result<Self, TestkitError> {
        Self::start_with(NatsUsers::random(), Vec::new())
    }

    fn start_with(users: NatsUsers, extra_args: Vec<String>) -> Result<Self, TestkitError> {
        let store = tempfile::Builder::new()
            .prefix("certflow-nats-")
            .tempdir()?;
        let (child, port) = spawn(store.path(), None, &users, &extra_args)?;
        Ok(NatsServer {
            child: Some(child),
            port,
            store,
            users,
            extra_args,
        })
    }

    /// The password of `user`, on a secured server.
    pub fn password(&self, user: &str) -> Option<&str> {
        self.users.password(user)
    }

    /// The users' passwords, on a secured server (none on an open one).
    pub fn users(&self) -> &NatsUsers {
        &self.users
    }

    /// A client connected as `user` (on a secured server), with the user's own inbox
    /// prefix, or anonymously with `None`.
    pub async fn connect_as(&self, user: Option<&str>) -> Result<async_nats::Client, TestkitError> {
        let options = match user.and_then(|u| Some((u, self.password(u)?))) {
            Some((user, password)) => {
                async_nats::ConnectOptions::with_user_and_password(user.into(), password.into())
                    .custom_inbox_prefix(certd::inbox_prefix(user))
            }
            None => async_nats::ConnectOptions::new(),
        };
        options
            .connect(self.url())
            .await
            .map_err(|e| TestkitError::NotReady(e.to_string()))
    }

    /// A client of `user` (on a secured server) with the user's own inbox prefix, and the
    /// errors the server reports to it (a refused publish or subscription is one): how a
    /// test tries something as that user and sees whether the server let it.
    pub async fn connect_reporting_errors(
        &self,
        user: &str,
    ) -> Result<
        (
            async_nats::Client,
            tokio::sync::mpsc::UnboundedReceiver<String>,
        ),
        TestkitError,
    > {
        let password = self
            .password(user)
            .ok_or_else(|| TestkitError::NotReady(format!("no NATS user {user}")))?;
        let (reported, errors) = tokio::sync::mpsc::unbounded_channel();
        let client =
            async_nats::ConnectOptions::with_user_and_password(user.into(), password.into())
                .custom_inbox_prefix(certd::inbox_prefix(user))
                .event_callback(move |event| {
                    let reported = reported.clone();
                    async move {
                        if let async_nats::Event::ServerError(err) = event {
                            let _ = reported.send(err.to_string());
                        }
                    }
                })
                .connect(self.url())
                .await
                .map_err(|e| TestkitError::NotReady(e.to_string()))?;
        Ok((client, errors))
    }

    /// The client URL.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the server at once (SIGKILL), keeping its store.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes the server (SIGSTOP): it keeps its connections but answers nothing.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Thaws a paused server (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        if let Some(child) = &self.child {
            let _ = Command::new("kill")
                .arg(signal)
                .arg(child.id().to_string())
                .status();
        }
    }

    /// Starts the server again on the same port and store.
    pub fn restart(&mut self) -> Result<(), TestkitError> {
        self.kill();
        let (child, _) = spawn(
            self.store.path(),
            Some(self.port),
            &self.users,
            &self.extra_args,
        )?;
        self.child = Some(child);
        Ok(())
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn random_password() -> String {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    // Two independently keyed SipHashes: unpredictable enough for a throw-away test server.
    // nats-server parses a variable's value as config, so it starts with a letter.
    let hex: String = (0..2)
        .map(|_| format!("{:016x}", RandomState::new().build_hasher().finish()))
        .collect();
    format!("pw{hex}")
}

/// Spawns nats-server and waits until it reports that clients can connect. With
/// `users`, it runs `deploy/nats/certflow.conf` with those users' passwords.
fn spawn(
    store: &Path,
    port: Option<u16>,
    users: &NatsUsers,
    extra_args: &[String],
) -> Result<(Child, u16), TestkitError> {
    let binary = checked_nats_server()?;
    let port_arg = port.map_or_else(|| "-1".to_string(), |p| p.to_string());
    let mut command = Command::new(&binary);
    if users.is_empty() {
        // The limits certflow's own configuration sets (a CA's CRL is one message).
        let config = store.join("nats.conf");
        std::fs::write(&config, PLAIN_CONFIG)?;
        command.arg("-c").arg(config);
    } else {
        command.arg("-c").arg(secured_config_path());
        command.envs(users.variables());
    }
    let mut child = command
        .args(["-js", "-a", "127.0.0.1", "-p", &port_arg, "-sd"])
        .arg(store)
        .args(extra_args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| TestkitError::Spawn {
            binary: binary.clone(),
            source,
        })?;
    let Some(stderr) = child.stderr.take() else {
        let _ = child.kill();
        return Err(TestkitError::NotReady("no stderr".into()));
    };
    let (tx, rx) = mpsc::channel();
    // The log must be drained for the server's whole life, or it blocks on a full pipe.
    std::thread::spawn(move || {
        let mut port = None;
        let mut sent = false;
        let mut last = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if !sent {
                last.push(line.clone());
            }
            if let Some(rest) = line.split("Listening for client connections on ").nth(1) {
                port = rest
                    .rsplit(':')
                    .next()
                    .and_then(|p| p.trim().parse::<u16>().ok());
            }
            if !sent && line.contains("Server is ready") {
                let _ = tx.send(port.ok_or_else(|| line.clone()));
                sent = true;
            }
        }
        if !sent {
            let tail = last[last.len().saturating_sub(5)..].join(" | ");
            let _ = tx.send(Err(format!(
                "nats-server exited before it was ready: {tail}"
            )));
        }
    });
    match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(Ok(port)) => Ok((child, port)),
        Ok(Err(why)) => {
            let _ = child.kill();
            Err(TestkitError::NotReady(why))
        }
        Err(_) => {
            let _ = child.kill();
            Err(TestkitError::NotReady("timed out after 20s".into()))
        }
    }
}

/// The whole service set on a fresh nats-server, gateway on `127.0.0.1:0` in plaintext,
/// trusting tokens signed with a key of its own ([`Certflow::token`]).
#[derive(Debug)]
pub struct Certflow {
    pub nats: NatsServer,
    pub data: TempDir,
    running: Option<Running>,
    gateway: SocketAddr,
    signing_key: PathBuf,
}

impl Certflow {
    /// Starts NATS and every service with default configuration.
    pub async fn start() -> Result<Self, TestkitError> {
        Self::start_with(|_| {}).await
    }

    /// Starts NATS and every service, letting `configure` adjust the configuration.
    pub async fn start_with(configure: impl FnOnce(&mut Config)) -> Result<Self, TestkitError> {
        Self::start_on(NatsServer::start()?, configure).await
    }

    /// Starts NATS with `deploy/nats/certflow.conf` (one user per service, as `make run`
    /// does) and every service as its own user, configured by `configure`.
    pub async fn start_secured_with(
        configure: impl FnOnce(&mut Config),
    ) -> Result<Self, TestkitError> {
        let nats = NatsServer::start_secured()?;
        let passwords = nats.users().of_services();
        Self::start_on(nats, move |config| {
            config.nats_passwords = passwords;
            configure(config);
        })
        .await
    }

    async fn start_on(
        nats: NatsServer,
        configure: impl FnOnce(&mut Config),
    ) -> Result<Self, TestkitError> {
        let data = tempfile::Builder::new()
            .prefix("certflow-data-")
            .tempdir()?;
        let mut config = Config::new(nats.url(), data.path());
        config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        config.crl_listen = SocketAddr::from(([127, 0, 0, 1], 0));
        config.acme_listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
        config.operator_password = nats.users().operator();
        let signing_key = trust_dev_key(&mut config, &data.path().join("keys"))?;
        configure(&mut config);
        certd::provision(&config).await?;
        let running = certd::start(config, &Service::ALL).await?;
        let gateway = running.gateway_address.ok_or(TestkitError::NoGateway)?;
        Ok(Certflow {
            nats,
            data,
            running: Some(running),
            gateway,
            signing_key,
        })
    }

    /// A configuration for more services on the same NATS and data directory, with a
    /// gateway on `127.0.0.1:0` that trusts the same tokens.
    pub fn config(&self) -> Result<Config, TestkitError> {
        let mut config = Config::new(self.nats.url(), self.data.path());
        config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        config.crl_listen = SocketAddr::from(([127, 0, 0, 1], 0));
        config.acme_listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
        config.nats_passwords = self.nats.users().of_services();
        config.operator_password = self.nats.users().operator();
        trust_dev_key(&mut config, &self.data.path().join("keys"))?;
        Ok(config)
    }

    /// The key store's key-encryption key, to inspect stored keys.
    pub fn kek(&self) -> Result<certflow_ca::sealing::Kek, TestkitError> {
        let hex = certd::dev::ensure_kek(&self.data.path().join("keys"))?;
        certflow_ca::sealing::Kek::from_hex(&hex).map_err(|_| TestkitError::BadToken)
    }

    /// The private key the gateway trusts, for tokens made elsewhere (e.g. by `certd dev-token`).
    pub fn signing_key(&self) -> &Path {
        &self.signing_key
    }

    /// A valid token of `subject` acting for `account` with `roles`.
    pub fn token(&self, subject: &str, account: &str, roles: &[&str]) -> String {
        certd::dev::token(
            &self.signing_key,
            subject,
            account,
            roles,
            Duration::from_secs(3600),
        )
        .unwrap_or_default()
    }

    /// A token of an admin of the platform.
    pub fn admin_token(&self) -> String {
        self.token("ops", "platform", &["admin"])
    }

    /// The gateway's address.
    pub fn gateway_address(&self) -> SocketAddr {
        self.gateway
    }

    /// Where CRLs are served over HTTP.
    pub fn crl_address(&self) -> Option<SocketAddr> {
        self.running.as_ref().and_then(|r| r.crl_address)
    }

    /// Where the web console listens, when the configuration asked for one.
    pub fn console_address(&self) -> Option<SocketAddr> {
        self.running.as_ref().and_then(|r| r.console_address)
    }

    /// Where the gateway serves ACME.
    pub fn acme_address(&self) -> Option<SocketAddr> {
        self.running.as_ref().and_then(|r| r.acme_address)
    }

    /// The gateway's URL.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.gateway)
    }

    /// A gRPC channel to the gateway.
    pub async fn channel(&self) -> Result<Channel, TestkitError> {
        Ok(Channel::from_shared(self.endpoint())
            .map_err(|_| TestkitError::NoGateway)?
            .connect()
            .await?)
    }

    /// A client of `CertificateService` acting as an admin.
    pub async fn certificates(&self) -> Result<CertificateServiceClient<Authed>, TestkitError> {
        self.certificates_as(Some(&self.admin_token())).await
    }

    /// A client of `RevocationService` acting as an admin.
    pub async fn revocations(&self) -> Result<RevocationServiceClient<Authed>, TestkitError> {
        self.revocations_as(Some(&self.admin_token())).await
    }

    /// A client of `CertificateService` sending `token` (or none).
    pub async fn certificates_as(
        &self,
        token: Option<&str>,
    ) -> Result<CertificateServiceClient<Authed>, TestkitError> {
        Ok(CertificateServiceClient::with_interceptor(
            self.channel().await?,
            Bearer::new(token)?,
        ))
    }

    /// A client of `RevocationService` sending `token` (or none).
    pub async fn revocations_as(
        &self,
        token: Option<&str>,
    ) -> Result<RevocationServiceClient<Authed>, TestkitError> {
        Ok(RevocationServiceClient::with_interceptor(
            self.channel().await?,
            Bearer::new(token)?,
        ))
    }

    /// A client of `ReissueService` sending `token`.
    pub async fn reissues_as(
        &self,
        token: &str,
    ) -> Result<ReissueServiceClient<Authed>, TestkitError> {
        Ok(ReissueServiceClient::with_interceptor(
            self.channel().await?,
            Bearer::new(Some(token))?,
        ))
    }

    /// A client of `ReviewService` sending `token`.
    pub async fn reviews_as(
        &self,
        token: &str,
    ) -> Result<ReviewServiceClient<Authed>, TestkitError> {
        Ok(ReviewServiceClient::with_interceptor(
            self.channel().await?,
            Bearer::new(Some(token))?,
        ))
    }

    /// Stops the services (NATS keeps running).
    pub async fn stop_services(&mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await;
        }
    }

    /// The NATS server the services run on.
    pub fn nats(&self) -> &NatsServer {
        &self.nats
    }

    /// The running services, while they run.
    pub fn running(&self) -> Option<&certd::Running> {
        self.running.as_ref()
    }

    /// The NATS server, to kill and restart it.
    pub fn nats_mut(&mut self) -> &mut NatsServer {
        &mut self.nats
    }

    /// Starts more instances of `services` against the same NATS server, e.g. a second
    /// validation service; they stop when the returned handle is shut down or dropped.
    pub async fn start_more(
        &self,
        services: &[Service],
        configure: impl FnOnce(&mut Config),
    ) -> Result<certd::Running, TestkitError> {
        let mut config = Config::new(self.nats.url(), self.data.path());
        config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        config.crl_listen = SocketAddr::from(([127, 0, 0, 1], 0));
        config.acme_listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
        config.nats_passwords = self.nats.users().of_services();
        config.operator_password = self.nats.users().operator();
        configure(&mut config);
        Ok(certd::start(config, services).await?)
    }

    /// Starts the services again on the same NATS and data directory, gateway on a new port.
    pub async fn restart_services(
        &mut self,
        configure: impl FnOnce(&mut Config),
    ) -> Result<(), TestkitError> {
        self.stop_services().await;
        let mut config = Config::new(self.nats.url(), self.data.path());
        config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        config.crl_listen = SocketAddr::from(([127, 0, 0, 1], 0));
        config.acme_listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
        config.nats_passwords = self.nats.users().of_services();
        config.operator_password = self.nats.users().operator();
        self.signing_key = trust_dev_key(&mut config, &self.data.path().join("keys"))?;
        configure(&mut config);
        certd::provision(&config).await?;
        let running = certd::start(config, &Service::ALL).await?;
        self.gateway = running.gateway_address.ok_or(TestkitError::NoGateway)?;
        self.running = Some(running);
        Ok(())
    }
}

impl Drop for Certflow {
    fn drop(&mut self) {
        if let Some(running) = &self.running {
            running.shutdown_token().cancel();
        }
    }
}

/// Polls `check` every 20 ms until it returns `Some`, or gives up after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_versions_are_read_as_nats_server_prints_them() {
        assert_eq!(
            parse_server_version("nats-server: v2.12.8"),
            Some([2, 12, 8])
        );
        assert_eq!(
            parse_server_version("nats-server: v2.9.10"),
            Some([2, 9, 10])
        );
        assert_eq!(
            parse_server_version("nats-server: v2.14.0-RC.1"),
            Some([2, 14, 0])
        );
        assert_eq!(parse_server_version("no version here"), None);
        assert!([2, 9, 10] < MINIMUM_NATS_SERVER && [2, 12, 0] >= MINIMUM_NATS_SERVER);
    }
}
