//! Every flow of the product driven through the gateway, for tests that run the service set
//! as processes (`certd <service>`): revocation at once (DNS_AUTO), by a DNS proof the test
//! publishes, by a reviewer's approval, and reissue with the original key; then deletion of
//! the revoked. Shared by the crash tests (each service killed in turn, and the soak test)
//! and the scale-out test.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use certflow_proto::v1::{
    ApproveReviewRequest, Brand, CertificateStatus, IssueCertificateRequest, NextReviewTaskRequest,
    OriginalKey, RequestReissueRequest, RequestRevocationRequest, RevocationReason,
    ValidationMethod, certificate_service_client::CertificateServiceClient,
    reissue_service_client::ReissueServiceClient, request_reissue_request::Key,
    review_service_client::ReviewServiceClient, revocation_service_client::RevocationServiceClient,
};
use certflow_testkit::dns::AuthoritativeDns;
use certflow_testkit::{Authed, Bearer, eventually};
use tonic::Code;
use tonic::transport::Channel;

use super::{dns_auto_dv, history_types, request_id};

/// The services in the order they are started, each one process.
pub const SERVICES: [&str; 8] = [
    "projection",
    "issuance",
    "revocation",
    "reissue",
    "validation",
    "review",
    "notifier",
    "gateway",
];

/// How long a flow may take to complete after its service came back.
pub const COMPLETE: Duration = Duration::from_secs(60);

/// Service processes (`certd <service>`) on one NATS, each of which can be killed and
/// started again with the same arguments.
pub struct ServiceSet {
    /// Arguments every process gets.
    args: Vec<String>,
    /// Environment variables every process gets, besides the test's own.
    env: Vec<(String, String)>,
    logs: PathBuf,
    /// Each instance's service and arguments of its own, by instance name.
    instances: BTreeMap<String, (String, Vec<String>)>,
    children: BTreeMap<String, Child>,
}

impl ServiceSet {
    /// No process yet; each writes its log to `<logs>/<instance>.log`.
    pub fn new(args: Vec<String>, logs: &Path) -> Self {
        ServiceSet {
            args,
            env: Vec::new(),
            logs: logs.to_path_buf(),
            instances: BTreeMap::new(),
            children: BTreeMap::new(),
        }
    }

    /// Gives every process started from now on these environment variables.
    pub fn with_env(mut self, env: Vec<(String, String)>) -> Self {
        self.env = env;
        self
    }

    /// Runs `certd provision` with the common arguments and environment (as the operator
    /// on a secured server), as an operator does before starting the services.
    pub fn provision(&self) {
        super::provision(&self.args, &self.env);
    }

    /// Provisions, then starts one instance of every service, each named after its service.
    pub fn start(args: Vec<String>, logs: &Path) -> Self {
        let mut set = ServiceSet::new(args, logs);
        set.provision();
        for service in SERVICES {
            set.spawn(service, service, Vec::new());
        }
        set
    }

    /// Starts instance `name` of `service` with `extra` arguments besides the common ones.
    pub fn spawn(&mut self, name: &str, service: &str, extra: Vec<String>) {
        self.instances
            .insert(name.to_string(), (service.to_string(), extra));
        self.respawn(name);
    }

    /// Starts instance `name` again, as it was first started.
    pub fn respawn(&mut self, name: &str) {
        let (service, extra) = self.instances.get(name).expect("a known instance");
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.logs.join(format!("{name}.log")))
            .expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_certd"))
            .args(&self.args)
            .args(extra)
            .arg(service)
            .envs(self.env.iter().map(|(name, value)| (name, value)))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::from(log.try_clone().expect("log file")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn certd");
        self.children.insert(name.to_string(), child);
    }

    /// SIGKILL: no shutdown, no flush, no goodbye.
    pub fn kill(&mut self, name: &str) {
        if let Some(mut child) = self.children.remove(name) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ServiceSet {
    fn drop(&mut self) {
        for child in self.children.values_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// What the process tests start from: an authoritative DNS server for proofs (zone
/// `example.org`), a directory for data and logs, and in it a token-signing key pair and
/// the key store's KEK.
pub struct Ground {
    pub dns: AuthoritativeDns,
    pub dir: tempfile::TempDir,
    pub signing_key: PathBuf,
    pub public_key: PathBuf,
    pub kek: String,
}

impl Ground {
    pub async fn new() -> Self {
        let dns = AuthoritativeDns::start(&["example.org"])
            .await
            .expect("dns");
        let dir = tempfile::tempdir().expect("tempdir");
        let keys = dir.path().join("keys");
        let (signing_key, public_key) = certd::dev::ensure_signing_key(&keys).expect("keys");
        let kek = certd::dev::ensure_kek(&keys).expect("kek");
        Ground {
            dns,
            dir,
            signing_key,
            public_key,
            kek,
        }
    }

    /// What every `certd` process of these tests is given: NATS at `nats_url`, the key
    /// store's KEK, tokens signed by this ground's key, DNS proofs from its server, and
    /// rechecks, leases and redeliveries short enough for a test.
    pub fn certd_args(&self, nats_url: &str) -> Vec<String> {
        [
            "--nats-url",
            nats_url,
            "--kek",
            &self.kek,
            "--metrics-listen",
            "off",
            "--crl-listen",
            "127.0.0.1:0",
            "--acme-listen",
            "127.0.0.1:0",
            "--console-listen",
            "off",
            "--plaintext",
            "--jwt-ed25519-key",
            &self.public_key.display().to_string(),
            "--commands-per-second",
            "100000",
            "--queries-per-second",
            "100000",
            "--validation-dns",
            &self.dns.addr().to_string(),
            "--validation-recheck",
            "0.2",
            "--validation-recheck-max",
            "0.5",
            "--review-ack-wait",
            "2",
            "--redelivery-after",
            "2",
            "--shutdown-grace",
            "0.2",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }
}

/// A channel to the gateway at `endpoint`, once it accepts connections.
pub async fn connect(endpoint: &str) -> Channel {
    eventually(COMPLETE, || async {
        Channel::from_shared(endpoint.to_string())
            .ok()?
            .connect()
            .await
            .ok()
    })
    .await
    .expect("the gateway accepts connections")
}

/// The clients of customer `alice` of account `acme` and reviewer `rita` on `channel`,
/// with tokens signed by `signing_key`.
pub fn clients(channel: Channel, signing_key: &Path) -> Clients {
    let token = |subject: &str, account: &str, role: &str| {
        certd::dev::token(
            signing_key,
            subject,
            account,
            &[role],
            Duration::from_secs(3600),
        )
        .expect("token")
    };
    let customer = Bearer::new(Some(&token("alice", "acme", "customer"))).expect("bearer");
    let reviewer = Bearer::new(Some(&token("rita", "review-desk", "reviewer"))).expect("bearer");
    Clients {
        certs: CertificateServiceClient::with_interceptor(channel.clone(), customer.clone()),
        revocations: RevocationServiceClient::with_interceptor(channel.clone(), customer.clone()),
        reissues: ReissueServiceClient::with_interceptor(channel.clone(), customer),
        reviewer: ReviewServiceClient::with_interceptor(channel, reviewer),
    }
}

/// `support::until_answered` within the time a flow may take.
pub async fn answered<T, F, Fut>(call: F) -> Result<T, tonic::Status>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, tonic::Status>>,
{
    super::until_answered(COMPLETE, call).await.0
}

/// The gRPC clients of one customer and one reviewer.
#[derive(Clone)]
pub struct Clients {
    pub certs: CertificateServiceClient<Authed>,
    pub revocations: RevocationServiceClient<Authed>,
    pub reissues: ReissueServiceClient<Authed>,
    pub reviewer: ReviewServiceClient<Authed>,
}

/// The certificates of one round, by the flow each goes through.
#[derive(Debug, Clone, Default)]
pub struct Round {
    /// DNS_AUTO: revoked at once.
    pub automatic: Vec<String>,
    /// Proven by a DNS record the test publishes.
    pub proven: Vec<(String, String)>,
    /// Revoked once a reviewer approves.
    pub reviewed: Vec<String>,
    /// Reissued with their original key.
    pub reissued: Vec<String>,
}

pub const PER_FLOW: usize = 3;

pub async fn issue(clients: &Clients, request: IssueCertificateRequest) -> String {
    let reply = answered(|| {
        let (mut certs, request) = (clients.certs.clone(), request.clone());
        async move { certs.issue_certificate(request).await }
    })
    .await
    .expect("issued");
    reply
        .into_inner()
        .certificate
        .map(|c| c.id)
        .expect("certificate")
}

/// Issues the certificates of round `round`.
pub async fn prepare(clients: &Clients, round: usize) -> Round {
    let mut prepared = Round::default();
    for n in 0..PER_FLOW {
        let automatic = dns_auto_dv("acme", &format!("a{round}x{n}.example.com"));
        prepared.automatic.push(issue(clients, automatic).await);
        let domain = format!("p{round}x{n}.example.org");
        let manual = IssueCertificateRequest {
            validation_setup: Vec::new(),
            ..dns_auto_dv("acme", &domain)
        };
        prepared.proven.push((issue(clients, manual).await, domain));
        let wotrus = IssueCertificateRequest {
            brand: Brand::Wotrus as i32,
            validation_setup: Vec::new(),
            ..dns_auto_dv("acme", &format!("w{round}x{n}.example.com"))
        };
        prepared.reviewed.push(issue(clients, wotrus).await);
        let reissuable = dns_auto_dv("acme", &format!("www.k{round}x{n}.net"));
        prepared.reissued.push(issue(clients, reissuable).await);
    }
    prepared
}

pub fn revocation(id: &str, method: ValidationMethod) -> RequestRevocationRequest {
    RequestRevocationRequest {
        request_id: request_id(),
        certificate_id: id.into(),
        reason: RevocationReason::CessationOfOperation as i32,
        description: "the site is closed".into(),
        validation_method: method as i32,
    }
}

/// Starts every flow of the round; each command is retried with its own request id until
/// it is answered, and must be accepted.
pub async fn start_flows(clients: &Clients, round: &Round) {
    let mut started = Vec::new();
    let revocations = round
        .automatic
        .iter()
        .map(|id| (id, ValidationMethod::Unspecified))
        .chain(
            round
                .proven
                .iter()
                .map(|(id, _)| (id, ValidationMethod::Dns)),
        )
        .chain(
            round
                .reviewed
                .iter()
                .map(|id| (id, ValidationMethod::Unspecified)),
        );
    for (id, method) in revocations {
        let request = revocation(id, method);
        let client = clients.revocations.clone();
        started.push(tokio::spawn(async move {
            answered(|| {
                let (mut client, request) = (client.clone(), request.clone());
                async move { client.request_revocation(request).await.map(drop) }
            })
            .await
            .map_err(|status| format!("revocation of {}: {status:?}", request.certificate_id))
        }));
    }
    for id in &round.reissued {
        let request = RequestReissueRequest {
            request_id: request_id(),
            certificate_id: id.clone(),
            domains: Vec::new(),
            reason: "moved to a new server".into(),
            key: Some(Key::OriginalKey(OriginalKey {})),
            enterprise_info: Default::default(),
            validation_method: 0,
        };
        let client = clients.reissues.clone();
        started.push(tokio::spawn(async move {
            answered(|| {
                let (mut client, request) = (client.clone(), request.clone());
                async move { client.request_reissue(request).await.map(drop) }
            })
            .await
            .map_err(|status| format!("reissue of {}: {status:?}", request.certificate_id))
        }));
    }
    for flow in started {
        if let Err(refused) = flow.await.expect("flow task") {
            panic!("a retried command was not accepted: {refused}");
        }
    }
}

pub async fn status_of(
    certs: &CertificateServiceClient<Authed>,
    id: &str,
) -> Option<(i32, Vec<String>)> {
    let cert = certs
        .clone()
        .get_certificate(certflow_proto::v1::GetCertificateRequest { id: id.into() })
        .await
        .ok()?
        .into_inner()
        .certificate?;
    Some((cert.status, cert.reissue_ids))
}

/// Publishes the DNS proof of every proven certificate once its challenge is out, and
/// approves every review task offered, until every flow of the round has completed.
pub async fn drive_to_completion(clients: &Clients, dns: &AuthoritativeDns, round: &Round) -> bool {
    let deadline = tokio::time::Instant::now() + COMPLETE;
    let mut published = std::collections::BTreeSet::new();
    while tokio::time::Instant::now() < deadline {
        for (id, domain) in &round.proven {
            if published.contains(id) {
                continue;
            }
            let Ok(reply) = clients
                .certs
                .clone()
                .get_certificate(certflow_proto::v1::GetCertificateRequest { id: id.clone() })
                .await
            else {
                continue;
            };
            let challenge = reply
                .into_inner()
                .certificate
                .and_then(|c| c.revocation)
                .and_then(|r| r.validation)
                .and_then(|v| v.challenges.into_iter().find(|c| &c.domain == domain));
            if let Some(challenge) = challenge {
                dns.set_txt(&format!("_dnsauth.{domain}"), &[&challenge.value])
                    .await;
                published.insert(id.clone());
            }
        }
        if let Ok(next) = clients
            .reviewer
            .clone()
            .next_review_task(NextReviewTaskRequest {})
            .await
            && let Some(task) = next.get_ref().task.clone()
        {
            let _ = clients
                .reviewer
                .clone()
                .approve_review(ApproveReviewRequest {
                    request_id: request_id(),
                    task_id: task.task_id,
                    comment: "checked with the customer".into(),
                    lease: next.into_inner().lease,
                })
                .await;
        }
        if completed(clients, round).await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

pub async fn completed(clients: &Clients, round: &Round) -> bool {
    let revoked = CertificateStatus::Revoked as i32;
    for id in round
        .automatic
        .iter()
        .chain(round.proven.iter().map(|(id, _)| id))
        .chain(&round.reviewed)
    {
        if status_of(&clients.certs, id).await.map(|s| s.0) != Some(revoked) {
            return false;
        }
    }
    for id in &round.reissued {
        let Some((status, reissues)) = status_of(&clients.certs, id).await else {
            return false;
        };
        let [new_id] = reissues.as_slice() else {
            return false;
        };
        if status != CertificateStatus::Issued as i32
            || status_of(&clients.certs, new_id).await.map(|s| s.0)
                != Some(CertificateStatus::Issued as i32)
        {
            return false;
        }
    }
    true
}

/// Event types that appear more than once in a certificate's history.
pub async fn repeated_events(clients: &Clients, round: &Round) -> Vec<(String, Vec<String>)> {
    let mut repeated = Vec::new();
    let ids = round
        .automatic
        .iter()
        .chain(round.proven.iter().map(|(id, _)| id))
        .chain(&round.reviewed)
        .chain(&round.reissued);
    for id in ids {
        let types = history_types(&clients.certs, id).await;
        let mut seen = std::collections::BTreeSet::new();
        if types.iter().any(|t| !seen.insert(t.clone())) {
            repeated.push((id.clone(), types));
        }
    }
    repeated
}

/// DEL-1: revoked certificates can be deleted; DEL-2: then they are gone from lookups.
pub async fn delete_revoked(clients: &Clients, round: &Round) {
    for id in &round.automatic {
        let request = certflow_proto::v1::DeleteCertificateRequest {
            request_id: request_id(),
            id: id.clone(),
        };
        answered(|| {
            let (mut certs, request) = (clients.certs.clone(), request.clone());
            async move { certs.delete_certificate(request).await }
        })
        .await
        .expect("a revoked certificate is deleted");
        let gone = eventually(COMPLETE, || async {
            let looked_up = clients
                .certs
                .clone()
                .get_certificate(certflow_proto::v1::GetCertificateRequest { id: id.clone() })
                .await;
            matches!(looked_up, Err(status) if status.code() == Code::NotFound).then_some(())
        })
        .await;
        assert!(gone.is_some(), "deleted certificate {id} is still shown");
    }
}
