//! Running a parsed command against the gateway, and reporting its failure.

use std::io::Read as _;
use std::path::Path;

use anyhow::{Context as _, Result, anyhow, bail};
use certflow_proto::refusal::code_name;
use certflow_proto::v1::certificate_service_client::CertificateServiceClient;
use certflow_proto::v1::revocation_service_client::RevocationServiceClient;
use certflow_proto::v1::{
    Certificate, DomainValidationSetup, GetCertificateHistoryRequest, GetCertificateRequest,
    IssueCertificateRequest, ListCertificatesRequest, RequestRevocationRequest,
    UploadCertificateRequest, ValidationSetup,
};
use serde_json::Value;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic_types::StatusExt as _;

use crate::auth::{self, BearerAuth};
use crate::cli::{
    BulkRevokeArgs, Cli, Command, DownloadArgs, IssueArgs, ListArgs, ReissueArgs, RevokeArgs,
    UploadArgs,
};
use crate::connect::{self, TlsOptions};
use crate::output;
use crate::retry::patiently;

/// Runs the command; a gRPC failure comes back as a [`tonic::Status`] inside the error.
pub async fn run(cli: Cli) -> Result<()> {
    let gateway = Gateway::from_cli(&cli)?;
    let json = cli.json;
    match cli.command {
        Command::Issue(args) => {
            let request = issue_request(&args, request_id(args.request_id.as_deref()))?;
            let response = patiently(
                gateway.certificates().await?,
                request,
                |mut client, request| async move { client.issue_certificate(request).await },
            )
            .await?;
            print_certificate(response.into_inner().certificate, json)
        }
        Command::Upload(args) => {
            let request = upload_request(&args)?;
            let response = patiently(
                gateway.certificates().await?,
                request,
                |mut client, request| async move { client.upload_certificate(request).await },
            )
            .await?;
            print_certificate(response.into_inner().certificate, json)
        }
        Command::Get { id } => {
            let response = patiently(
                gateway.certificates().await?,
                GetCertificateRequest { id },
                |mut client, request| async move { client.get_certificate(request).await },
            )
            .await?;
            print_certificate(response.into_inner().certificate, json)
        }
        Command::List(args) => {
            let client = gateway.certificates().await?;
            list(client, &args, json).await
        }
        Command::History { id } => {
            let response = patiently(
                gateway.certificates().await?,
                GetCertificateHistoryRequest { id },
                |mut client, request| async move { client.get_certificate_history(request).await },
            )
            .await?;
            let events = response.into_inner().events;
            if json {
                print_json(&output::history_json(&events))?;
            } else {
                print!("{}", output::history_text(&events));
            }
            Ok(())
        }
        Command::Revoke(args) => {
            let request = revoke_request(&args, request_id(args.request_id.as_deref()));
            let response = patiently(
                gateway.revocations().await?,
                request,
                |mut client, request| async move { client.request_revocation(request).await },
            )
            .await?;
            print_certificate(response.into_inner().certificate, json)
        }
        Command::Check { id } => {
            let response = patiently(
                gateway.revocations().await?,
                certflow_proto::v1::CheckValidationRequest { certificate_id: id },
                |mut client, request| async move { client.check_validation(request).await },
            )
            .await?
            .into_inner();
            if json {
                print_json(&output::check_json(&response))?;
            } else {
                print!("{}", output::check_text(&response));
            }
            Ok(())
        }
        Command::BulkRevoke(args) => bulk_revoke(gateway, &args, json).await,
        Command::Reissue(args) => {
            let request = reissue_request(&args)?;
            let response = patiently(
                gateway.reissues().await?,
                request,
                |mut client, request| async move { client.request_reissue(request).await },
            )
            .await?;
            let response = response.into_inner();
            eprintln!("new certificate: {}", response.new_certificate_id);
            print_certificate(response.certificate, json)
        }
        Command::Document(command) => {
            crate::review::document(gateway.reviews().await?, command, json).await
        }
        Command::Review(command) => {
            crate::review::review(gateway.reviews().await?, command, json).await
        }
        Command::Notify(command) => {
            crate::notify::notify(gateway.notifications().await?, command, json).await
        }
        Command::Download(args) => {
            let response = patiently(
                gateway.certificates().await?,
                download_request(&args),
                |mut client, request| async move { client.download_certificate(request).await },
            )
            .await?;
            write_files(&args.out, &response.into_inner().files, args.force)
        }
        Command::Renew {
            id,
            request_id: id_of_request,
        } => {
            let request = certflow_proto::v1::OrderRenewalRequest {
                request_id: request_id(id_of_request.as_deref()),
                id,
            };
            let response = patiently(
                gateway.certificates().await?,
                request,
                |mut client, request| async move { client.order_renewal(request).await },
            )
            .await?;
            print_certificate(response.into_inner().certificate, json)
        }
        Command::AcmeEab => {
            let channel = connect::connect(&gateway.address, &gateway.tls).await?;
            let mut acme =
                certflow_proto::v1::acme_service_client::AcmeServiceClient::with_interceptor(
                    channel,
                    gateway.auth.clone(),
                );
            let key = acme
                .create_external_account_key(certflow_proto::v1::CreateExternalAccountKeyRequest {})
                .await?
                .into_inner();
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "key_id": key.key_id,
                        "hmac_key": key.hmac_key,
                        "directory_url": key.directory_url,
                    })
                );
            } else {
                println!("directory:  {}", key.directory_url);
                println!("EAB key id: {}", key.key_id);
                println!("HMAC key:   {}", key.hmac_key);
                println!(
                    "certbot register --server {} --eab-kid {} --eab-hmac-key {} …",
                    key.directory_url, key.key_id, key.hmac_key
                );
            }
            Ok(())
        }
        Command::Delete {
            id,
            request_id: id_of_request,
        } => {
            let request = certflow_proto::v1::DeleteCertificateRequest {
                request_id: request_id(id_of_request.as_deref()),
                id,
            };
            let response = patiently(
                gateway.certificates().await?,
                request,
                |mut client, request| async move { client.delete_certificate(request).await },
            )
            .await?;
            print_certificate(response.into_inner().certificate, json)
        }
    }
}

/// Ids per `BulkRevokeIds` message: some 400 KB, well under gRPC's 4 MiB a message.
const IDS_PER_MESSAGE: usize = 10_000;

/// The ids named on the command line and in `--ids-file`, in order.
fn bulk_ids(args: &BulkRevokeArgs) -> Result<Vec<String>> {
    let mut ids = args.ids.clone();
    if let Some(path) = &args.ids_file {
        let text = if path.as_os_str() == "-" {
            std::io::read_to_string(std::io::stdin())?
        } else {
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?
        };
        ids.extend(
            text.lines()
                .map(str::trim)
                .filter(|line| !line.is_empty())
                .map(str::to_string),
        );
    }
    Ok(ids)
}

/// Streams a bulk revocation's results: progress on standard error, one line (or JSON
/// object) per certificate on standard output, and a failure exit when any was refused.
/// Ids go by `BulkRevokeIds`, as many messages as they need; an account by `BulkRevoke`.
async fn bulk_revoke(gateway: Gateway, args: &BulkRevokeArgs, json: bool) -> Result<()> {
    use certflow_proto::v1::bulk_revoke_response::Outcome;
    use certflow_proto::v1::{BulkRevokeIdsRequest, BulkRevokeRequest};
    let request_id = request_id(args.request_id.as_deref());
    let reason = args.revocation.reason;
    let description = args.revocation.description.clone().unwrap_or_default();
    let validation_method = args.revocation.method.to_proto();
    let ids = bulk_ids(args)?;
    let mut revocations = gateway.revocations().await?;
    eprintln!("bulk revocation {request_id}");
    let mut results: std::pin::Pin<
        Box<
            dyn tokio_stream::Stream<
                    Item = Result<certflow_proto::v1::BulkRevokeResponse, tonic::Status>,
                > + Send,
        >,
    > = match &args.account {
        Some(account) => Box::pin(
            revocations
                .bulk_revoke(BulkRevokeRequest {
                    request_id,
                    certificate_ids: Vec::new(),
                    account: account.clone(),
                    reason,
                    description,
                    validation_method,
                })
                .await?
                .into_inner(),
        ),
        None if ids.is_empty() => bail!("name certificate ids, --ids-file or --account"),
        None => {
            let mut messages: Vec<BulkRevokeIdsRequest> = ids
                .chunks(IDS_PER_MESSAGE)
                .map(|chunk| BulkRevokeIdsRequest {
                    certificate_ids: chunk.to_vec(),
                    ..Default::default()
                })
                .collect();
            if let Some(first) = messages.first_mut() {
                first.request_id = request_id;
                first.reason = reason;
                first.description = description;
                first.validation_method = validation_method;
            }
            Box::pin(tokio_stream::StreamExt::filter_map(
                revocations
                    .bulk_revoke_ids(tokio_stream::iter(messages))
                    .await?
                    .into_inner(),
                |message| match message {
                    Ok(message) => message.result.map(Ok),
                    Err(status) => Some(Err(status)),
                },
            ))
        }
    };
    let mut refused = 0u32;
    let mut total = 0u32;
    while let Some(result) = tokio_stream::StreamExt::next(&mut results).await {
        let result = result?;
        total = result.total;
        if matches!(result.outcome, Some(Outcome::Refusal(_))) {
            refused += 1;
        }
        if json {
            println!("{}", output::bulk_result_json(&result));
        } else {
            println!("{}", output::bulk_result_text(&result));
        }
        eprint!(
            "\r{}/{} done, {} refused",
            result.completed, result.total, refused
        );
    }
    eprintln!();
    if refused > 0 {
        bail!("{refused} of {total} certificates were not revoked; see above");
    }
    Ok(())
}

fn download_request(args: &DownloadArgs) -> certflow_proto::v1::DownloadCertificateRequest {
    use certflow_proto::v1::DownloadFormat;
    let format = match args.format.as_str() {
        "pkcs12" => DownloadFormat::Pkcs12,
        _ => DownloadFormat::Pem,
    };
    certflow_proto::v1::DownloadCertificateRequest {
        id: args.id.clone(),
        format: format as i32,
        password: args.password.clone().unwrap_or_default(),
    }
}

/// Whether a downloaded file holds a private key (a `.key`, or a PKCS#12 archive).
fn is_private(file: &certflow_proto::v1::DownloadedFile) -> bool {
    let name = file.name.to_ascii_lowercase();
    name.ends_with(".key")
        || name.ends_with(".p12")
        || name.ends_with(".pfx")
        || file.content_type.contains("pkcs12")
}

/// Writes downloaded files into `dir`, keeping only their base names. A private key or
/// PKCS#12 archive is readable by its owner only (0600), the rest 0644. No file is
/// replaced unless `force`: when one exists, nothing is written.
fn write_files(
    dir: &Path,
    files: &[certflow_proto::v1::DownloadedFile],
    force: bool,
) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};

    std::fs::create_dir_all(dir).with_context(|| format!("could not create {}", dir.display()))?;
    let mut targets = Vec::with_capacity(files.len());
    for file in files {
        let name = Path::new(&file.name)
            .file_name()
            .with_context(|| format!("the server sent an unusable file name {:?}", file.name))?;
        targets.push((dir.join(name), file));
    }
    if !force {
        let existing: Vec<String> = targets
            .iter()
            .filter(|(path, _)| path.symlink_metadata().is_ok())
            .map(|(path, _)| path.display().to_string())
            .collect();
        anyhow::ensure!(
            existing.is_empty(),
            "{} already exist; nothing was written (--force replaces them)",
            existing.join(", ")
        );
    }
    for (path, file) in targets {
        let mode = if is_private(file) { 0o600 } else { 0o644 };
        // Written beside the target and renamed over it, so a replaced key is never
        // readable by others for a moment, and a failed write leaves the old file.
        let mut partial_name = path.file_name().unwrap_or_default().to_os_string();
        partial_name.push(".certctl-partial");
        let partial = path.with_file_name(partial_name);
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&partial)
            .with_context(|| format!("could not write {}", partial.display()))?;
        out.set_permissions(std::fs::Permissions::from_mode(mode))
            .and_then(|()| out.write_all(&file.content))
            .and_then(|()| out.sync_all())
            .and_then(|()| std::fs::rename(&partial, &path))
            .inspect_err(|_| {
                let _ = std::fs::remove_file(&partial);
            })
            .with_context(|| format!("could not write {}", path.display()))?;
        println!("{}", path.display());
    }
    Ok(())
}

/// A client of the certificate service that sends the bearer token.
type CertificateClient = CertificateServiceClient<InterceptedService<Channel, BearerAuth>>;

/// A client of the revocation service that sends the bearer token.
type RevocationClient = RevocationServiceClient<InterceptedService<Channel, BearerAuth>>;

/// A client of the reissue service that sends the bearer token.
type ReissueClient = certflow_proto::v1::reissue_service_client::ReissueServiceClient<
    InterceptedService<Channel, BearerAuth>,
>;

/// A client of the review service that sends the bearer token.
pub(crate) type ReviewClient = certflow_proto::v1::review_service_client::ReviewServiceClient<
    InterceptedService<Channel, BearerAuth>,
>;

/// A client of the notification service that sends the bearer token.
pub(crate) type NotificationClient =
    certflow_proto::v1::notification_service_client::NotificationServiceClient<
        InterceptedService<Channel, BearerAuth>,
    >;

/// How to reach the gateway: its address, TLS settings and the token to present.
#[derive(Debug)]
struct Gateway {
    address: String,
    tls: TlsOptions,
    auth: BearerAuth,
}

impl Gateway {
    /// Resolves the address, the TLS options and the token from the command line and the
    /// environment.
    fn from_cli(cli: &Cli) -> Result<Self> {
        let legacy = std::env::var(connect::LEGACY_ENDPOINT_ENV).ok();
        let address = connect::resolve_endpoint(cli.endpoint.as_deref(), legacy.as_deref());
        let default_token_file = auth::default_token_file(
            std::env::var_os("XDG_CONFIG_HOME"),
            std::env::var_os("HOME"),
        );
        let token = auth::resolve_token(
            cli.token.as_ref(),
            cli.token_file.as_deref(),
            default_token_file.as_deref(),
        )?;
        Ok(Self {
            address,
            tls: TlsOptions {
                ca_cert: cli.ca_cert.clone(),
                client_cert: cli.client_cert.clone(),
                client_key: cli.client_key.clone(),
                domain: cli.tls_domain.clone(),
            },
            auth: BearerAuth::new(token.as_ref())?,
        })
    }

    async fn certificates(&self) -> Result<CertificateClient> {
        let channel = connect::connect(&self.address, &self.tls).await?;
        Ok(CertificateServiceClient::with_interceptor(
            channel,
            self.auth.clone(),
        ))
    }

    async fn revocations(&self) -> Result<RevocationClient> {
        let channel = connect::connect(&self.address, &self.tls).await?;
        Ok(RevocationServiceClient::with_interceptor(
            channel,
            self.auth.clone(),
        ))
    }

    async fn reissues(&self) -> Result<ReissueClient> {
        let channel = connect::connect(&self.address, &self.tls).await?;
        Ok(
            certflow_proto::v1::reissue_service_client::ReissueServiceClient::with_interceptor(
                channel,
                self.auth.clone(),
            ),
        )
    }

    async fn notifications(&self) -> Result<NotificationClient> {
        let channel = connect::connect(&self.address, &self.tls).await?;
        Ok(
            certflow_proto::v1::notification_service_client::NotificationServiceClient::with_interceptor(
                channel,
                self.auth.clone(),
            ),
        )
    }

    async fn reviews(&self) -> Result<ReviewClient> {
        let channel = connect::connect(&self.address, &self.tls).await?;
        Ok(
            certflow_proto::v1::review_service_client::ReviewServiceClient::with_interceptor(
                channel,
                self.auth.clone(),
            ),
        )
    }
}

/// The request id to send: the one given, or a fresh UUID. Either way it is printed on
/// standard error so that the request can be retried with the same id.
pub(crate) fn request_id(given: Option<&str>) -> String {
    let id = given.map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
    eprintln!("request id: {id}");
    id
}

/// The `IssueCertificate` request for `certctl issue`.
pub fn issue_request(args: &IssueArgs, request_id: String) -> Result<IssueCertificateRequest> {
    let setup = |domains: &[String], setup: ValidationSetup| {
        domains
            .iter()
            .map(move |domain| DomainValidationSetup {
                domain: domain.clone(),
                setup: setup as i32,
            })
            .collect::<Vec<_>>()
    };
    let mut validation_setup = setup(&args.dns_auto, ValidationSetup::DnsAuto);
    validation_setup.extend(setup(&args.file_auto, ValidationSetup::FileAuto));
    let csr_pem = match &args.csr {
        Some(path) => read_pem(path)?,
        None => String::new(),
    };
    Ok(IssueCertificateRequest {
        request_id,
        account: args.account.clone(),
        brand: args.brand as i32,
        level: args.level as i32,
        paid: args.is_paid(),
        key_algorithm: args.algorithm as i32,
        domains: args.domains.clone(),
        term_years: args.term,
        not_before: args.not_before,
        not_after: args.not_after,
        validation_setup,
        renewal_ordered: args.renewal_ordered,
        csr_pem,
        key_password: args.key_password.clone().unwrap_or_default(),
        enterprise_info: args.enterprise_info.iter().cloned().collect(),
    })
}

/// The `RequestReissue` request for `certctl reissue`.
fn reissue_request(args: &ReissueArgs) -> Result<certflow_proto::v1::RequestReissueRequest> {
    use certflow_proto::v1::request_reissue_request::Key;
    let key = match (&args.generate, &args.csr) {
        (Some(algorithm), _) => Key::GeneratedKey(certflow_proto::v1::GeneratedKey {
            key_algorithm: *algorithm as i32,
            key_password: args.key_password.clone().unwrap_or_default(),
        }),
        (None, Some(path)) => Key::CsrPem(read_pem(path)?),
        (None, None) => Key::OriginalKey(certflow_proto::v1::OriginalKey {}),
    };
    Ok(certflow_proto::v1::RequestReissueRequest {
        request_id: request_id(args.request_id.as_deref()),
        certificate_id: args.id.clone(),
        domains: args.domains.clone(),
        reason: args.reason.clone(),
        key: Some(key),
        enterprise_info: args.enterprise_info.iter().cloned().collect(),
        validation_method: args.method.to_proto(),
    })
}

fn upload_request(args: &UploadArgs) -> Result<UploadCertificateRequest> {
    let pem = read_pem(&args.file)?;
    let private_key_pem = match &args.key {
        Some(path) => read_pem(path)?,
        None => String::new(),
    };
    Ok(UploadCertificateRequest {
        request_id: request_id(args.request_id.as_deref()),
        account: args.account.clone(),
        pem,
        private_key_pem,
    })
}

/// Reads the PEM from `path`, or from standard input when `path` is `-`.
fn read_pem(path: &Path) -> Result<String> {
    if path == Path::new("-") {
        let mut pem = String::new();
        std::io::stdin()
            .read_to_string(&mut pem)
            .context("could not read the PEM from standard input")?;
        Ok(pem)
    } else {
        std::fs::read_to_string(path).with_context(|| format!("could not read {}", path.display()))
    }
}

/// The `RequestRevocation` request for `certctl revoke`; the reason goes out as given.
pub fn revoke_request(args: &RevokeArgs, request_id: String) -> RequestRevocationRequest {
    RequestRevocationRequest {
        request_id,
        certificate_id: args.id.clone(),
        reason: args.revocation.reason,
        description: args.revocation.description.clone().unwrap_or_default(),
        validation_method: args.revocation.method.to_proto(),
    }
}

async fn list(client: CertificateClient, args: &ListArgs, json: bool) -> Result<()> {
    let mut request = ListCertificatesRequest {
        status: args.status.map_or(0, |status| status as i32),
        page_size: args.page_size.unwrap_or(0),
        page_token: args.page_token.clone().unwrap_or_default(),
        account: args.account.clone().unwrap_or_default(),
    };
    let mut certificates = Vec::new();
    let next_page_token = loop {
        let page = patiently(
            client.clone(),
            request.clone(),
            |mut client, request| async move { client.list_certificates(request).await },
        )
        .await?
        .into_inner();
        certificates.extend(page.certificates);
        if !args.all || page.next_page_token.is_empty() {
            break page.next_page_token;
        }
        if page.next_page_token == request.page_token {
            bail!(
                "the gateway returned the same page token `{}` twice; stopping",
                page.next_page_token
            );
        }
        request.page_token = page.next_page_token;
    };
    if json {
        print_json(&output::list_json(&certificates, &next_page_token))?;
    } else {
        print!("{}", output::list_text(&certificates, &next_page_token));
    }
    Ok(())
}

pub(crate) fn print_certificate(certificate: Option<Certificate>, json: bool) -> Result<()> {
    let certificate =
        certificate.ok_or_else(|| anyhow!("the gateway's response carries no certificate"))?;
    if json {
        print_json(&output::certificate_json(&certificate))?;
    } else {
        print!("{}", output::certificate_text(&certificate));
    }
    Ok(())
}

pub(crate) fn print_json(value: &Value) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// The error and its causes, joined by `: `, skipping a cause that repeats the one before
/// it (transport errors often do).
fn error_chain(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
    }
    parts.join(": ")
}

/// The lines to print on standard error for a failed command.
pub fn error_report(err: &anyhow::Error) -> String {
    let Some(status) = err.downcast_ref::<tonic::Status>() else {
        return format!("error: {}\n", error_chain(err));
    };
    let mut out = format!(
        "error: {}: {}\n",
        code_name(status.code()),
        status.message()
    );
    if let Some(info) = status.get_details_error_info() {
        out.push_str(&format!(
            "reason: {} (domain {})\n",
            info.reason, info.domain
        ));
        let mut metadata: Vec<_> = info.metadata.iter().collect();
        metadata.sort();
        for (key, value) in metadata {
            out.push_str(&format!("  {key}: {value}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use certflow_proto::v1::{Brand, KeyAlgorithm, Level};
    use tonic_types::{ErrorDetails, StatusExt as _};

    use super::*;

    #[test]
    fn bulk_ids_come_from_the_line_and_the_file_one_a_line() {
        use clap::Parser as _;
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("ids.txt");
        std::fs::write(&file, "c-2\n\n  c-3  \r\nc-4").expect("write");
        let cli = crate::cli::Cli::try_parse_from([
            "certctl",
            "bulk-revoke",
            "c-1",
            "--ids-file",
            file.to_str().expect("utf-8 path"),
        ])
        .expect("valid command line");
        let Command::BulkRevoke(args) = cli.command else {
            panic!("bulk-revoke");
        };
        assert_eq!(bulk_ids(&args).expect("read"), ["c-1", "c-2", "c-3", "c-4"]);
        let missing = BulkRevokeArgs {
            ids_file: Some(dir.path().join("missing")),
            ..args
        };
        let err = bulk_ids(&missing).expect_err("no such file");
        assert!(err.to_string().contains("missing"), "{err}");
        assert!(
            crate::cli::Cli::try_parse_from([
                "certctl",
                "bulk-revoke",
                "--ids-file",
                "x",
                "--account",
                "acme"
            ])
            .is_err(),
            "ids and an account together"
        );
    }

    #[test]
    fn downloaded_files_keep_only_their_base_names() {
        let dir = tempfile::tempdir().expect("dir");
        let files = vec![certflow_proto::v1::DownloadedFile {
            name: "../../etc/evil.crt".into(),
            content_type: "application/x-pem-file".into(),
            content: b"pem".to_vec(),
        }];
        write_files(dir.path(), &files, false).expect("written");
        assert_eq!(
            std::fs::read(dir.path().join("evil.crt")).expect("inside the directory"),
            b"pem"
        );
    }

    fn file(name: &str, content: &[u8]) -> certflow_proto::v1::DownloadedFile {
        certflow_proto::v1::DownloadedFile {
            name: name.into(),
            content_type: "application/x-pem-file".into(),
            content: content.to_vec(),
        }
    }

    fn mode_of(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::metadata(path)
            .expect("written")
            .permissions()
            .mode()
            & 0o777
    }

    #[test]
    fn private_keys_and_archives_are_readable_by_their_owner_only() {
        let dir = tempfile::tempdir().expect("dir");
        let files = vec![
            file("www.crt", b"cert"),
            file("www.key", b"key"),
            file("www.p12", b"archive"),
        ];
        write_files(dir.path(), &files, false).expect("written");
        assert_eq!(mode_of(&dir.path().join("www.crt")), 0o644);
        assert_eq!(mode_of(&dir.path().join("www.key")), 0o600);
        assert_eq!(mode_of(&dir.path().join("www.p12")), 0o600);
    }

    #[test]
    fn nothing_is_overwritten_without_force_and_force_keeps_the_key_private() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join("www.key"), b"old key").expect("existing");
        let files = vec![file("www.crt", b"cert"), file("www.key", b"new key")];
        let err = write_files(dir.path(), &files, false).expect_err("exists");
        assert!(err.to_string().contains("--force"), "{err}");
        assert!(!dir.path().join("www.crt").exists(), "nothing written");
        assert_eq!(
            std::fs::read(dir.path().join("www.key")).expect("kept"),
            b"old key"
        );

        write_files(dir.path(), &files, true).expect("replaced");
        assert_eq!(
            std::fs::read(dir.path().join("www.key")).expect("new"),
            b"new key"
        );
        assert_eq!(mode_of(&dir.path().join("www.key")), 0o600);
        let leftovers = std::fs::read_dir(dir.path())
            .expect("dir")
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains("partial"))
            .count();
        assert_eq!(leftovers, 0);
    }

    #[test]
    fn issue_request_maps_every_flag() {
        let args = IssueArgs {
            account: "ACME".to_owned(),
            brand: Brand::Digicert,
            level: Level::Ev,
            domains: vec!["a.example.com".to_owned(), "b.example.com".to_owned()],
            algorithm: KeyAlgorithm::Sm2,
            term: 3,
            paid: false,
            free: true,
            dns_auto: vec!["a.example.com".to_owned()],
            file_auto: vec!["b.example.com".to_owned()],
            not_before: None,
            not_after: Some(prost_types::Timestamp {
                seconds: 10,
                nanos: 0,
            }),
            renewal_ordered: true,
            csr: None,
            key_password: Some("pw".to_owned()),
            enterprise_info: vec![("organization".to_owned(), "Acme Ltd".to_owned())],
            request_id: None,
        };
        let request = issue_request(&args, "r-9".to_owned()).expect("request");
        assert_eq!(request.key_password, "pw");
        assert_eq!(
            request
                .enterprise_info
                .get("organization")
                .map(String::as_str),
            Some("Acme Ltd")
        );
        assert!(request.csr_pem.is_empty());
        assert_eq!(request.request_id, "r-9");
        assert_eq!(request.account, "ACME");
        assert_eq!(request.brand, Brand::Digicert as i32);
        assert_eq!(request.level, Level::Ev as i32);
        assert_eq!(request.key_algorithm, KeyAlgorithm::Sm2 as i32);
        assert!(!request.paid);
        assert_eq!(request.term_years, 3);
        assert!(request.renewal_ordered);
        assert_eq!(request.not_after.map(|ts| ts.seconds), Some(10));
        assert_eq!(
            request.validation_setup,
            [
                DomainValidationSetup {
                    domain: "a.example.com".to_owned(),
                    setup: ValidationSetup::DnsAuto as i32,
                },
                DomainValidationSetup {
                    domain: "b.example.com".to_owned(),
                    setup: ValidationSetup::FileAuto as i32,
                },
            ]
        );
    }

    #[test]
    fn reissue_request_picks_the_key_source() {
        use certflow_proto::v1::request_reissue_request::Key;
        let args = ReissueArgs {
            id: "c-1".into(),
            reason: "rotation".into(),
            domains: vec!["www.example.com".into()],
            generate: Some(KeyAlgorithm::EccP384),
            key_password: Some("pw".into()),
            csr: None,
            enterprise_info: Vec::new(),
            method: crate::cli::MethodArg::File,
            request_id: Some("r-1".into()),
        };
        let request = reissue_request(&args).expect("request");
        assert_eq!(request.request_id, "r-1");
        match request.key {
            Some(Key::GeneratedKey(generated)) => {
                assert_eq!(generated.key_algorithm, KeyAlgorithm::EccP384 as i32);
                assert_eq!(generated.key_password, "pw");
            }
            other => panic!("not a generated key: {other:?}"),
        }
        let original = reissue_request(&ReissueArgs {
            generate: None,
            key_password: None,
            ..args
        })
        .expect("request");
        assert!(matches!(original.key, Some(Key::OriginalKey(_))));
    }

    #[test]
    fn revoke_request_sends_the_raw_reason() {
        let args = RevokeArgs {
            id: "c-1".to_owned(),
            revocation: crate::cli::RevocationArgs {
                reason: 6,
                description: None,
                method: crate::cli::MethodArg::File,
            },
            request_id: None,
        };
        let request = revoke_request(&args, "r-1".to_owned());
        assert_eq!(request.reason, 6);
        assert_eq!(
            request.validation_method,
            certflow_proto::v1::ValidationMethod::File as i32
        );
        assert_eq!(request.certificate_id, "c-1");
        assert_eq!(request.description, "");
    }

    #[test]
    fn error_report_shows_code_message_and_error_info() {
        let status = tonic::Status::with_error_details(
            tonic::Code::InvalidArgument,
            "reason 6 is not accepted",
            ErrorDetails::with_error_info(
                "INVALID_REVOCATION_REASON",
                "certs",
                HashMap::from([
                    ("reason".to_owned(), "6".to_owned()),
                    ("certificate_id".to_owned(), "c-1".to_owned()),
                ]),
            ),
        );
        assert_eq!(
            error_report(&anyhow::Error::new(status)),
            "error: INVALID_ARGUMENT: reason 6 is not accepted\n\
             reason: INVALID_REVOCATION_REASON (domain certs)\n  \
             certificate_id: c-1\n  reason: 6\n"
        );
    }

    #[test]
    fn error_report_without_details_or_status() {
        let status = tonic::Status::not_found("no certificate c-1");
        assert_eq!(
            error_report(&anyhow::Error::new(status)),
            "error: NOT_FOUND: no certificate c-1\n"
        );
        let err = anyhow!("connection refused")
            .context("tcp connect error")
            .context("tcp connect error")
            .context("could not reach the gateway at x");
        assert_eq!(
            error_report(&err),
            "error: could not reach the gateway at x: tcp connect error: connection refused\n"
        );
    }
}
