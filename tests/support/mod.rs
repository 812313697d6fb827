//! Helpers shared by the black-box tests: requests a client would send, and reading the
//! `ErrorInfo` of a refusal.

pub mod browser;
pub mod flows;
pub mod receivers;

use std::time::Duration;

use certflow_proto::v1::{
    Brand, Certificate, CertificateStatus, DomainValidationSetup, GetCertificateHistoryRequest,
    GetCertificateRequest, HistoryEvent, IssueCertificateRequest, KeyAlgorithm, Level,
    ListCertificatesRequest, ValidationSetup, certificate_service_client::CertificateServiceClient,
};
use certflow_testkit::{Authed, eventually};
use tonic_types::StatusExt;

/// How long a test waits for the projection to catch up.
pub const CATCH_UP: Duration = Duration::from_secs(10);

/// Runs `certd <args> provision` with `env`, as an operator does before the services
/// start, and panics unless it succeeds.
pub fn provision(args: &[String], env: &[(String, String)]) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_certd"))
        .args(args)
        .arg("provision")
        .envs(env.iter().map(|(name, value)| (name, value)))
        .env("RUST_LOG", "warn")
        .output()
        .expect("run certd provision");
    assert!(
        output.status.success(),
        "certd provision failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A fresh request id.
pub fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A GeoTrust DV certificate (ECC P-256 key made by the product) whose one domain has
/// DNS_AUTO set up: revoked at once.
pub fn dns_auto_dv(account: &str, domain: &str) -> IssueCertificateRequest {
    IssueCertificateRequest {
        request_id: request_id(),
        account: account.into(),
        brand: Brand::Geotrust as i32,
        level: Level::Dv as i32,
        paid: true,
        key_algorithm: KeyAlgorithm::EccP256 as i32,
        domains: vec![domain.into()],
        term_years: 1,
        validation_setup: vec![DomainValidationSetup {
            domain: domain.into(),
            setup: ValidationSetup::DnsAuto as i32,
        }],
        ..Default::default()
    }
}

/// An acme certificate of `brand` and `level` for `domain`, with no automatic validation
/// set up: its revocation takes the path the brand and level give (REV-10).
pub fn certificate_of(brand: Brand, level: Level, domain: &str) -> IssueCertificateRequest {
    IssueCertificateRequest {
        brand: brand as i32,
        level: level as i32,
        validation_setup: Vec::new(),
        ..dns_auto_dv("acme", domain)
    }
}

/// A GeoTrust DV certificate for `domains` (the first one its subject) issued before
/// certflow, valid between the Unix times `not_before` and `not_after`, as an admin records
/// it (CA-3): the only way a certificate with dates in the past comes to be. `change`
/// adjusts the request (brand, term, validation set-up).
pub async fn legacy_record(
    admin: &mut CertificateServiceClient<Authed>,
    domains: &[&str],
    (not_before, not_after): (i64, i64),
    change: impl FnOnce(&mut certflow_proto::v1::RecordLegacyCertificateRequest),
) -> Certificate {
    let key = rcgen::KeyPair::generate().expect("key");
    let names: Vec<String> = domains.iter().map(|d| d.to_string()).collect();
    let mut params = rcgen::CertificateParams::new(names).expect("params");
    params.not_before = time::OffsetDateTime::from_unix_timestamp(not_before).expect("date");
    params.not_after = time::OffsetDateTime::from_unix_timestamp(not_after).expect("date");
    let mut request = certflow_proto::v1::RecordLegacyCertificateRequest {
        request_id: request_id(),
        account: "acme".into(),
        brand: Brand::Geotrust as i32,
        paid: true,
        term_years: 1,
        pem: params.self_signed(&key).expect("certificate").pem(),
        private_key_pem: key.serialize_pem(),
        ..Default::default()
    };
    change(&mut request);
    admin
        .record_legacy_certificate(request)
        .await
        .expect("recorded")
        .into_inner()
        .certificate
        .expect("certificate in response")
}

/// Now, in Unix seconds.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

/// A whole certflow whose gateway limits no account's rate: for tests that send thousands
/// of calls as one account.
pub async fn started_without_rate_limits() -> certflow_testkit::Certflow {
    certflow_testkit::Certflow::start_with(|config| {
        config.gateway.commands_per_second = 1_000_000;
        config.gateway.queries_per_second = 1_000_000;
    })
    .await
    .expect("start")
}

/// A whole certflow started for one test, with acme's clients of the certificate and the
/// revocation services.
pub async fn started() -> (
    certflow_testkit::Certflow,
    CertificateServiceClient<Authed>,
    certflow_proto::v1::revocation_service_client::RevocationServiceClient<Authed>,
) {
    let certflow = certflow_testkit::Certflow::start().await.expect("start");
    let certs = certflow.certificates().await.expect("client");
    let revocations = certflow.revocations().await.expect("client");
    (certflow, certs, revocations)
}

/// Issues `request` and returns the certificate.
pub async fn issue(
    client: &mut CertificateServiceClient<Authed>,
    request: IssueCertificateRequest,
) -> Certificate {
    client
        .issue_certificate(request)
        .await
        .expect("issue accepted")
        .into_inner()
        .certificate
        .expect("certificate in response")
}

/// The `ErrorInfo` reason of a refusal, checking its domain is `certs`.
pub fn reason(status: &tonic::Status) -> String {
    let info = status
        .get_details_error_info()
        .unwrap_or_else(|| panic!("no ErrorInfo on {status:?}"));
    assert_eq!(info.domain, "certs");
    info.reason
}

/// Waits until the projection shows certificate `id` in `status`.
pub async fn wait_for_status(
    client: &mut CertificateServiceClient<Authed>,
    id: &str,
    status: CertificateStatus,
) -> Certificate {
    wait_until(client, id, CATCH_UP, &format!("reach {status:?}"), |cert| {
        cert.status == status as i32
    })
    .await
}

/// Waits up to `timeout` until the projection shows certificate `id` as `done` says; panics
/// saying it did not `what`.
pub async fn wait_until(
    client: &CertificateServiceClient<Authed>,
    id: &str,
    timeout: Duration,
    what: &str,
    done: impl Fn(&Certificate) -> bool,
) -> Certificate {
    let done = &done;
    eventually(timeout, || {
        let mut client = client.clone();
        let id = id.to_string();
        async move {
            let cert = client
                .get_certificate(GetCertificateRequest { id })
                .await
                .ok()?
                .into_inner()
                .certificate?;
            done(&cert).then_some(cert)
        }
    })
    .await
    .unwrap_or_else(|| panic!("certificate {id} did not {what}"))
}

/// Certificate `id`'s history as the gateway answers it, in order.
pub async fn history(client: &CertificateServiceClient<Authed>, id: &str) -> Vec<HistoryEvent> {
    client
        .clone()
        .get_certificate_history(GetCertificateHistoryRequest { id: id.into() })
        .await
        .expect("history")
        .into_inner()
        .events
}

/// The event types of certificate `id`'s history, in order.
pub async fn history_types(client: &CertificateServiceClient<Authed>, id: &str) -> Vec<String> {
    history(client, id)
        .await
        .into_iter()
        .map(|e| e.event_type)
        .collect()
}

/// Issues `count` DNS_AUTO certificates of `account` named `<prefix><n>.example.com`,
/// `workers` at a time; returns their ids.
pub async fn issue_many(
    certs: &CertificateServiceClient<Authed>,
    account: &str,
    prefix: &str,
    count: usize,
    workers: usize,
) -> Vec<String> {
    let tasks: Vec<_> = (0..workers)
        .map(|worker| {
            let mut certs = certs.clone();
            let (account, prefix) = (account.to_string(), prefix.to_string());
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for n in (worker..count).step_by(workers) {
                    let domain = format!("{prefix}{n}.example.com");
                    ids.push(issue(&mut certs, dns_auto_dv(&account, &domain)).await.id);
                }
                ids
            })
        })
        .collect();
    let mut ids = Vec::new();
    for task in tasks {
        ids.extend(task.await.expect("issuing worker"));
    }
    ids
}

/// Runs openssl, the relying party of record: (success, stdout and stderr).
pub fn openssl(args: &[&str]) -> (bool, String) {
    let output = std::process::Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl is installed");
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

/// A CA of its own, as another issuer or an operator would have.
pub fn authority(name: &str) -> rcgen::CertifiedIssuer<'static, rcgen::KeyPair> {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().expect("key"))
        .expect("CA")
}

/// A self-signed certificate for `name`, as a third party would have issued it.
pub fn self_signed_pem(name: &str) -> String {
    let key = rcgen::KeyPair::generate().expect("key");
    rcgen::CertificateParams::new(vec![name.to_string()])
        .expect("params")
        .self_signed(&key)
        .expect("certificate")
        .pem()
}

/// Uploads `pem` for account acme and returns the stored certificate.
pub async fn upload(client: &mut CertificateServiceClient<Authed>, pem: String) -> Certificate {
    client
        .upload_certificate(certflow_proto::v1::UploadCertificateRequest {
            request_id: request_id(),
            account: "acme".into(),
            pem,
            private_key_pem: String::new(),
        })
        .await
        .expect("upload accepted")
        .into_inner()
        .certificate
        .expect("certificate in response")
}

/// Waits until GeoTrust's original CRL (the partition certificates signed before
/// partitioning name) lists `entries` certificates, and returns it.
pub async fn geotrust_crl_with(
    certflow: &certflow_testkit::Certflow,
    entries: u64,
) -> certflow_proto::v1::GetCrlResponse {
    let channel = certflow.channel().await.expect("channel");
    geotrust_crl_listing(channel, entries)
        .await
        .unwrap_or_else(|| panic!("the CRL never listed {entries} certificates"))
}

/// GeoTrust's original CRL as the gateway on `channel` serves it, once it lists `entries`
/// certificates (within 60 s).
pub async fn geotrust_crl_listing(
    channel: tonic::transport::Channel,
    entries: u64,
) -> Option<certflow_proto::v1::GetCrlResponse> {
    crl_listing(
        channel,
        certflow_proto::v1::GetCrlRequest {
            brand: Brand::Geotrust as i32,
            sm2: false,
            shard: None,
        },
        entries,
    )
    .await
}

/// The CRL `request` names as the gateway on `channel` serves it, once it lists `entries`
/// certificates (within 60 s).
pub async fn crl_listing(
    channel: tonic::transport::Channel,
    request: certflow_proto::v1::GetCrlRequest,
    entries: u64,
) -> Option<certflow_proto::v1::GetCrlResponse> {
    use certflow_proto::v1::crl_service_client::CrlServiceClient;
    eventually(Duration::from_secs(60), || {
        let mut crls = CrlServiceClient::new(channel.clone());
        async move {
            let crl = crls.get_crl(request).await.ok()?.into_inner();
            (crl.entries == entries).then_some(crl)
        }
    })
    .await
}

/// Everything the read side shows: every certificate and its history.
pub async fn snapshot(
    certs: &mut CertificateServiceClient<Authed>,
) -> Vec<(Certificate, Vec<HistoryEvent>)> {
    let list = certs
        .list_certificates(ListCertificatesRequest {
            page_size: 500,
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner().certificates)
        .unwrap_or_default();
    let mut all = Vec::new();
    for cert in list {
        let history = certs
            .get_certificate_history(GetCertificateHistoryRequest {
                id: cert.id.clone(),
            })
            .await
            .map(|r| r.into_inner().events)
            .unwrap_or_default();
        all.push((cert, history));
    }
    all
}

/// Every certificate the read side lists, page by page; `None` when a page fails.
pub async fn list_all(client: &CertificateServiceClient<Authed>) -> Option<Vec<Certificate>> {
    let mut client = client.clone();
    let (mut all, mut page_token) = (Vec::new(), String::new());
    loop {
        let page = client
            .list_certificates(ListCertificatesRequest {
                page_size: 500,
                page_token,
                ..Default::default()
            })
            .await
            .ok()?
            .into_inner();
        all.extend(page.certificates);
        if page.next_page_token.is_empty() {
            return Some(all);
        }
        page_token = page.next_page_token;
    }
}

/// How many messages the event log holds for each certificate, by id; `None` when the
/// stream cannot be read.
pub async fn messages_per_certificate(
    js: &async_nats::jetstream::Context,
) -> Option<std::collections::BTreeMap<String, usize>> {
    use futures::StreamExt;
    let stream = js.get_stream("CERTFLOW_EVENTS").await.ok()?;
    let mut subjects = stream
        .info_with_subjects("certflow.events.certificate.>")
        .await
        .ok()?;
    let mut counts = std::collections::BTreeMap::new();
    while let Some(entry) = subjects.next().await {
        let (subject, count) = entry.ok()?;
        let id = subject.trim_start_matches("certflow.events.certificate.");
        counts.insert(id.to_string(), count);
    }
    Some(counts)
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    certflow_testkit::free_port().expect("a free port")
}

/// Sends the same call until it is answered by something other than a failure to reach
/// the service: `UNAVAILABLE` (a service, NATS or a stream leader away), `ABORTED` (the
/// certificate kept changing), or a connection the gateway broke by dying (tonic's
/// `UNKNOWN` carrying the I/O error as its source).
/// A retry reuses the request id inside the call, as a client would. Returns the answer
/// and how many tries were not answered.
pub async fn until_answered<T, F, Fut>(
    within: Duration,
    mut call: F,
) -> (Result<T, tonic::Status>, u32)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, tonic::Status>>,
{
    let deadline = tokio::time::Instant::now() + within;
    let mut unanswered = 0;
    loop {
        match call().await {
            Err(status)
                if (matches!(
                    status.code(),
                    tonic::Code::Unavailable | tonic::Code::Aborted
                ) || (status.code() == tonic::Code::Unknown
                    && std::error::Error::source(&status).is_some()))
                    && tokio::time::Instant::now() < deadline =>
            {
                unanswered += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => return (other, unanswered),
        }
    }
}

/// The CRL distribution point a certificate names (CA-4): its URL, and the partition the
/// URL's path names.
pub fn distribution_point(cert: &Certificate) -> (String, certflow_ca::CrlPartition) {
    use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};
    let (_, pem) = x509_parser::pem::parse_x509_pem(cert.pem.as_bytes()).expect("PEM");
    let x509 = pem.parse_x509().expect("certificate");
    let url =
        x509.extensions()
            .iter()
            .find_map(|extension| match extension.parsed_extension() {
                ParsedExtension::CRLDistributionPoints(points) => {
                    points.points.iter().find_map(|point| {
                        match point.distribution_point.as_ref()? {
                            DistributionPointName::FullName(names) => {
                                names.iter().find_map(|name| match name {
                                    GeneralName::URI(uri) => Some(uri.to_string()),
                                    _ => None,
                                })
                            }
                            DistributionPointName::NameRelativeToCRLIssuer(_) => None,
                        }
                    })
                }
                _ => None,
            })
            .expect("a CRL distribution point URL");
    let path = url
        .split_once("://")
        .and_then(|(_, rest)| rest.split_once('/'))
        .map(|(_, path)| path.to_string())
        .expect("a URL with a path");
    let partition = certflow_ca::CrlPartition::from_path(&path).expect("a CRL partition's path");
    (url, partition)
}

/// The `GetCrl` request for `partition`.
pub fn crl_request(partition: certflow_ca::CrlPartition) -> certflow_proto::v1::GetCrlRequest {
    certflow_proto::v1::GetCrlRequest {
        brand: certflow_proto::convert::brand_to_proto(partition.issuer.brand) as i32,
        sm2: partition.issuer.sm2,
        shard: match partition.shard {
            certflow_ca::Shard::Original => None,
            certflow_ca::Shard::Numbered(n) => Some(n),
        },
    }
}

/// The CRL `cert` names in its distribution point, once it lists `entries` certificates.
pub async fn crl_of(
    certflow: &certflow_testkit::Certflow,
    cert: &Certificate,
    entries: u64,
) -> certflow_proto::v1::GetCrlResponse {
    let channel = certflow.channel().await.expect("channel");
    let (url, partition) = distribution_point(cert);
    crl_listing(channel, crl_request(partition), entries)
        .await
        .unwrap_or_else(|| panic!("{url} never listed {entries} certificates"))
}

/// Every CRL of GeoTrust's CA (its original CRL and each shard, as `ListCrls` names them)
/// as the gateway on `channel` serves them, once together they list `entries` certificates
/// (within 120 s).
pub async fn geotrust_crls_listing(
    channel: tonic::transport::Channel,
    entries: u64,
) -> Option<Vec<certflow_proto::v1::GetCrlResponse>> {
    use certflow_proto::v1::crl_service_client::CrlServiceClient;
    eventually(Duration::from_secs(120), || {
        let mut crls = CrlServiceClient::new(channel.clone());
        async move {
            let urls = crls
                .list_crls(certflow_proto::v1::ListCrlsRequest {
                    brand: Brand::Geotrust as i32,
                    sm2: false,
                })
                .await
                .ok()?
                .into_inner()
                .urls;
            let mut listed = Vec::with_capacity(urls.len());
            for url in urls {
                let path = url.split_once("/crl/")?.1;
                let partition = certflow_ca::CrlPartition::from_path(&format!("crl/{path}"))?;
                listed.push(
                    crls.get_crl(crl_request(partition))
                        .await
                        .ok()?
                        .into_inner(),
                );
            }
            (listed.iter().map(|crl| crl.entries).sum::<u64>() == entries).then_some(listed)
        }
    })
    .await
}

/// Leases the next task through the gateway, waiting for one to arrive.
pub async fn next_review_task(
    client: &certflow_proto::v1::review_service_client::ReviewServiceClient<Authed>,
) -> (certflow_proto::v1::ReviewTask, String) {
    eventually(Duration::from_secs(15), || {
        let mut client = client.clone();
        async move {
            let next = client
                .next_review_task(certflow_proto::v1::NextReviewTaskRequest {})
                .await
                .ok()?
                .into_inner();
            Some((next.task?, next.lease))
        }
    })
    .await
    .expect("a task is offered")
}
