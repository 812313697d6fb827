//! R2: every service of the set runs as its own `certd <service>` process, and each in turn is
//! killed with SIGKILL in the middle of flows and started again. Every flow completes, none
//! is stuck, and no certificate's history holds an event twice. The soak test (`make soak`)
//! repeats such rounds for a set time, killing a random service or nats-server each round.

mod support;

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
use certflow_testkit::{Authed, Bearer, NatsServer, eventually};
use support::{dns_auto_dv, history_types, request_id};
use tonic::Code;
use tonic::transport::Channel;

/// The services in the order they are started, each one process.
const SERVICES: [&str; 7] = [
    "projection",
    "issuance",
    "revocation",
    "reissue",
    "validation",
    "review",
    "gateway",
];

/// How long a flow may take to complete after its service came back.
const COMPLETE: Duration = Duration::from_secs(60);

/// The service set as separate processes on one NATS, each of which can be killed.
struct ServiceSet {
    args: Vec<String>,
    logs: PathBuf,
    children: BTreeMap<&'static str, Child>,
    endpoint: String,
}

impl ServiceSet {
    fn start(args: Vec<String>, logs: &Path, gateway_port: u16) -> Self {
        let mut set = ServiceSet {
            args,
            logs: logs.to_path_buf(),
            children: BTreeMap::new(),
            endpoint: format!("http://127.0.0.1:{gateway_port}"),
        };
        for service in SERVICES {
            set.spawn(service);
        }
        set
    }

    fn spawn(&mut self, service: &'static str) {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.logs.join(format!("{service}.log")))
            .expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_certd"))
            .args(&self.args)
            .arg(service)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::from(log.try_clone().expect("log file")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn certd");
        self.children.insert(service, child);
    }

    /// SIGKILL: no shutdown, no flush, no goodbye.
    fn kill(&mut self, service: &'static str) {
        if let Some(mut child) = self.children.remove(service) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    async fn channel(&self) -> Channel {
        eventually(COMPLETE, || async {
            Channel::from_shared(self.endpoint.clone())
                .ok()?
                .connect()
                .await
                .ok()
        })
        .await
        .expect("the gateway accepts connections")
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

/// `support::until_answered` within the time a flow may take.
async fn answered<T, F, Fut>(call: F) -> Result<T, tonic::Status>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, tonic::Status>>,
{
    support::until_answered(COMPLETE, call).await.0
}

/// The gRPC clients of one customer and one reviewer.
#[derive(Clone)]
struct Clients {
    certs: CertificateServiceClient<Authed>,
    revocations: RevocationServiceClient<Authed>,
    reissues: ReissueServiceClient<Authed>,
    reviewer: ReviewServiceClient<Authed>,
}

/// The certificates of one round, by the flow each goes through.
#[derive(Debug, Clone, Default)]
struct Round {
    /// DNS_AUTO: revoked at once.
    automatic: Vec<String>,
    /// Proven by a DNS record the test publishes.
    proven: Vec<(String, String)>,
    /// Revoked once a reviewer approves.
    reviewed: Vec<String>,
    /// Reissued with their original key.
    reissued: Vec<String>,
}

const PER_FLOW: usize = 3;

async fn issue(clients: &Clients, request: IssueCertificateRequest) -> String {
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
async fn prepare(clients: &Clients, round: usize) -> Round {
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

fn revocation(id: &str, method: ValidationMethod) -> RequestRevocationRequest {
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
async fn start_flows(clients: &Clients, round: &Round) {
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

async fn status_of(
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
async fn drive_to_completion(clients: &Clients, dns: &AuthoritativeDns, round: &Round) -> bool {
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

async fn completed(clients: &Clients, round: &Round) -> bool {
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
async fn repeated_events(clients: &Clients, round: &Round) -> Vec<(String, Vec<String>)> {
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

/// NATS, a DNS server for proofs, and the service set as processes, with the clients of a
/// customer and a reviewer.
struct Harness {
    nats: NatsServer,
    dns: AuthoritativeDns,
    dir: tempfile::TempDir,
    set: ServiceSet,
    clients: Clients,
}

impl Harness {
    async fn start() -> Self {
        let nats = NatsServer::start().expect("nats");
        let dns = AuthoritativeDns::start(&["example.org"])
            .await
            .expect("dns");
        let dir = tempfile::tempdir().expect("tempdir");
        let keys = dir.path().join("keys");
        let (signing_key, public_key) = certd::dev::ensure_signing_key(&keys).expect("keys");
        let kek = certd::dev::ensure_kek(&keys).expect("kek");
        let token = |subject: &str, account: &str, role: &str| {
            certd::dev::token(
                &signing_key,
                subject,
                account,
                &[role],
                Duration::from_secs(3600),
            )
            .expect("token")
        };
        let gateway_port = support::free_port();
        let args: Vec<String> = [
            "--nats-url",
            &nats.url(),
            "--data-dir",
            &dir.path().join("data").display().to_string(),
            "--kek",
            &kek,
            "--metrics-listen",
            "off",
            "--crl-listen",
            "127.0.0.1:0",
            "--listen",
            &format!("127.0.0.1:{gateway_port}"),
            "--plaintext",
            "--jwt-ed25519-key",
            &public_key.display().to_string(),
            "--commands-per-second",
            "100000",
            "--validation-dns",
            &dns.addr().to_string(),
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
        .collect();
        let set = ServiceSet::start(args, dir.path(), gateway_port);
        let channel = set.channel().await;
        let customer = Bearer::new(Some(&token("alice", "acme", "customer"))).expect("bearer");
        let reviewer =
            Bearer::new(Some(&token("rita", "review-desk", "reviewer"))).expect("bearer");
        let clients = Clients {
            certs: CertificateServiceClient::with_interceptor(channel.clone(), customer.clone()),
            revocations: RevocationServiceClient::with_interceptor(
                channel.clone(),
                customer.clone(),
            ),
            reissues: ReissueServiceClient::with_interceptor(channel.clone(), customer),
            reviewer: ReviewServiceClient::with_interceptor(channel, reviewer),
        };
        Harness {
            nats,
            dns,
            dir,
            set,
            clients,
        }
    }

    /// SIGKILLs `victim` (a service, or `nats`) and starts it again.
    async fn kill_and_restart(&mut self, victim: &'static str) {
        if victim == "nats" {
            self.nats.kill();
            tokio::time::sleep(Duration::from_millis(300)).await;
            self.nats.restart().expect("nats-server back on its store");
        } else {
            self.set.kill(victim);
            tokio::time::sleep(Duration::from_millis(300)).await;
            self.set.spawn(victim);
        }
    }

    /// One round of every flow, `victim` killed in the middle of it; panics unless every
    /// flow completes with no event recorded twice. Returns how long it took.
    async fn round(&mut self, number: usize, victim: &'static str) -> Duration {
        let started = std::time::Instant::now();
        let round = prepare(&self.clients, number).await;
        let flows = tokio::spawn({
            let (clients, round) = (self.clients.clone(), round.clone());
            async move { start_flows(&clients, &round).await }
        });
        // Mid-flow: some commands answered, reactions under way.
        tokio::time::sleep(Duration::from_millis(40)).await;
        self.kill_and_restart(victim).await;
        flows.await.expect("every flow was accepted");
        let done = drive_to_completion(&self.clients, &self.dns, &round).await;
        assert!(
            done,
            "round {number}: flows stuck after {victim} was killed (logs in {:?})",
            self.dir.path()
        );
        let repeated = repeated_events(&self.clients, &round).await;
        assert!(
            repeated.is_empty(),
            "round {number}: events appended twice after {victim} was killed: {repeated:?}"
        );
        delete_revoked(&self.clients, &round).await;
        started.elapsed()
    }
}

/// DEL-1: revoked certificates can be deleted; DEL-2: then they are gone from lookups.
async fn delete_revoked(clients: &Clients, round: &Round) {
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

#[tokio::test]
async fn r2_each_service_killed_mid_flow_every_flow_completes_once() {
    let mut harness = Harness::start().await;
    for (number, victim) in SERVICES.into_iter().enumerate() {
        let took = harness.round(number, victim).await;
        println!("R2: {victim} killed mid-flow: every flow complete after {took:?}");
    }
}

/// `make soak`: rounds of every flow for `SOAK_SECONDS` (default 120), each with a fault:
/// a service, or nats-server itself, SIGKILLed mid-flow and restarted, every one in turn
/// from a place `SOAK_SEED` picks.
#[tokio::test]
#[ignore = "long; run by make soak"]
async fn soak_every_flow_with_each_process_killed_in_turn() {
    let seconds: u64 = std::env::var("SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(120);
    let seed = std::env::var("SOAK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64 | 1)
        });
    println!("soak: {seconds} s, SOAK_SEED={seed}");
    let victims: Vec<&'static str> = SERVICES.iter().copied().chain(["nats"]).collect();
    let mut harness = Harness::start().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(seconds);
    let mut kills: BTreeMap<&str, u32> = BTreeMap::new();
    let mut number = 0;
    while std::time::Instant::now() < deadline {
        // Every victim in turn, from a place the seed picks.
        let victim = victims[(seed as usize).wrapping_add(number) % victims.len()];
        let took = harness.round(number, victim).await;
        *kills.entry(victim).or_default() += 1;
        println!("soak round {number}: {victim} killed, every flow complete after {took:?}");
        number += 1;
    }
    println!(
        "soak: {number} rounds, {} certificates, nothing stuck or doubled; kills: {kills:?}",
        number * 4 * PER_FLOW
    );
}
