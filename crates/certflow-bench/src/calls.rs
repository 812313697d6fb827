//! The RPCs the load tool calls, as a customer's client would: a bearer token, a fresh
//! request id per command.

use std::sync::Arc;
use std::time::Duration;

use certflow_proto::v1::certificate_service_client::CertificateServiceClient;
use certflow_proto::v1::reissue_service_client::ReissueServiceClient;
use certflow_proto::v1::revocation_service_client::RevocationServiceClient;
use certflow_proto::v1::{
    Brand, BulkRevokeRequest, DomainValidationSetup, GetCertificateRequest,
    IssueCertificateRequest, KeyAlgorithm, Level, ListCertificatesRequest, OriginalKey,
    RequestReissueRequest, RequestRevocationRequest, RevocationReason, ValidationMethod,
    ValidationSetup, bulk_revoke_response, request_reissue_request,
};
use certflow_testkit::{Authed, Bearer};
use clap::ValueEnum;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tonic_types::StatusExt;

use crate::load::CallError;

/// The RPCs the tool can load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Rpc {
    /// `CertificateService/IssueCertificate`: a GeoTrust DV certificate with DNS_AUTO.
    Issue,
    /// `RevocationService/RequestRevocation` of a DNS_AUTO certificate: revoked at once.
    Revoke,
    /// `CertificateService/GetCertificate`.
    Get,
    /// `CertificateService/ListCertificates`, 50 a page.
    List,
    /// `ReissueService/RequestReissue` with the original key.
    Reissue,
}

impl Rpc {
    /// The method's full name, as ghz's `--call` names it.
    pub fn full_name(self) -> &'static str {
        match self {
            Rpc::Issue => "certflow.v1.CertificateService.IssueCertificate",
            Rpc::Revoke => "certflow.v1.RevocationService.RequestRevocation",
            Rpc::Get => "certflow.v1.CertificateService.GetCertificate",
            Rpc::List => "certflow.v1.CertificateService.ListCertificates",
            Rpc::Reissue => "certflow.v1.ReissueService.RequestReissue",
        }
    }

    /// Whether each call needs a certificate of its own (or any certificate, for `get`).
    pub fn needs_certificates(self) -> bool {
        matches!(self, Rpc::Revoke | Rpc::Get | Rpc::Reissue)
    }
}

/// Clients of the gateway sharing one HTTP/2 connection, as ghz uses by default.
#[derive(Debug, Clone)]
pub struct Gateway {
    certificates: CertificateServiceClient<Authed>,
    revocations: RevocationServiceClient<Authed>,
    reissues: ReissueServiceClient<Authed>,
    account: Arc<str>,
    /// Makes issued domains unique to this run.
    run: Arc<str>,
}

impl Gateway {
    /// Connects to `endpoint` (`http://host:port`) as the holder of `token`, acting for
    /// `account`.
    pub async fn connect(endpoint: &str, token: &str, account: &str) -> anyhow::Result<Self> {
        let channel: Channel = Endpoint::from_shared(endpoint.to_string())?
            .tcp_nodelay(true)
            .connect()
            .await?;
        let bearer = Bearer::new(Some(token))?;
        let authed = InterceptedService::new(channel, bearer);
        Ok(Gateway {
            certificates: CertificateServiceClient::new(authed.clone()),
            revocations: RevocationServiceClient::new(authed.clone()),
            reissues: ReissueServiceClient::new(authed),
            account: account.into(),
            run: uuid::Uuid::new_v4().simple().to_string()[..8].into(),
        })
    }

    /// Issues certificate number `index` of this run and returns its id. A call refused for
    /// the account's rate is made again, with the same request id, when the gateway's
    /// `RetryInfo` says, as a well-behaved client would: setting up is not measured.
    pub async fn issue(&self, index: u64) -> Result<String, CallError> {
        // A registrable domain of its own, so reissues never wait on each other (REI-4).
        let domain = format!("www.c{index}-{}.example", self.run);
        let request = IssueCertificateRequest {
            request_id: request_id(),
            account: self.account.to_string(),
            brand: Brand::Geotrust as i32,
            level: Level::Dv as i32,
            paid: true,
            key_algorithm: KeyAlgorithm::EccP256 as i32,
            domains: vec![domain.clone()],
            term_years: 1,
            validation_setup: vec![DomainValidationSetup {
                domain,
                setup: ValidationSetup::DnsAuto as i32,
            }],
            ..Default::default()
        };
        let response = loop {
            match self
                .certificates
                .clone()
                .issue_certificate(request.clone())
                .await
            {
                Ok(response) => break response.into_inner(),
                Err(status) if status.code() == tonic::Code::ResourceExhausted => {
                    let wait = status
                        .get_details_retry_info()
                        .and_then(|info| info.retry_delay)
                        .unwrap_or(Duration::from_millis(100));
                    tokio::time::sleep(wait).await;
                }
                Err(status) => return Err(status.into()),
            }
        };
        response
            .certificate
            .map(|cert| cert.id)
            .ok_or_else(|| CallError::new("Internal", "no certificate in the response"))
    }

    /// Asks for `id` to be revoked (superseded).
    pub async fn revoke(&self, id: &str) -> Result<(), CallError> {
        self.revocations
            .clone()
            .request_revocation(RequestRevocationRequest {
                request_id: request_id(),
                certificate_id: id.to_string(),
                reason: RevocationReason::Superseded as i32,
                description: String::new(),
                validation_method: ValidationMethod::Unspecified as i32,
            })
            .await?;
        Ok(())
    }

    /// Reads `id`.
    pub async fn get(&self, id: &str) -> Result<(), CallError> {
        self.certificates
            .clone()
            .get_certificate(GetCertificateRequest { id: id.to_string() })
            .await?;
        Ok(())
    }

    /// Reads the first page of the account's certificates.
    pub async fn list(&self) -> Result<(), CallError> {
        self.certificates
            .clone()
            .list_certificates(ListCertificatesRequest {
                page_size: 50,
                ..Default::default()
            })
            .await?;
        Ok(())
    }

    /// Reissues `id` with its original key.
    pub async fn reissue(&self, id: &str) -> Result<(), CallError> {
        self.reissues
            .clone()
            .request_reissue(RequestReissueRequest {
                request_id: request_id(),
                certificate_id: id.to_string(),
                reason: "load test".into(),
                key: Some(request_reissue_request::Key::OriginalKey(OriginalKey {})),
                ..Default::default()
            })
            .await?;
        Ok(())
    }

    /// One call of `rpc`, on certificate `ids[index]` where it needs one.
    pub async fn call(&self, rpc: Rpc, index: u64, ids: &[String]) -> Result<(), CallError> {
        let id = || {
            if ids.is_empty() {
                return Err(CallError::new(
                    "InvalidArgument",
                    "no certificates to call on",
                ));
            }
            let at = usize::try_from(index).unwrap_or(usize::MAX) % ids.len();
            Ok(ids[at].as_str())
        };
        match rpc {
            Rpc::Issue => self.issue(index).await.map(|_| ()),
            Rpc::Revoke => self.revoke(id()?).await,
            Rpc::Get => self.get(id()?).await,
            Rpc::List => self.list().await,
            Rpc::Reissue => self.reissue(id()?).await,
        }
    }
}

/// Revokes every certificate of `account` with one `BulkRevoke` as an admin; returns how
/// many were refused once the last result has arrived.
pub async fn bulk_revoke(endpoint: &str, admin_token: &str, account: &str) -> anyhow::Result<u64> {
    let channel: Channel = Endpoint::from_shared(endpoint.to_string())?
        .tcp_nodelay(true)
        .connect()
        .await?;
    let mut revocations = RevocationServiceClient::new(InterceptedService::new(
        channel,
        Bearer::new(Some(admin_token))?,
    ));
    let mut results = revocations
        .bulk_revoke(BulkRevokeRequest {
            request_id: request_id(),
            account: account.to_string(),
            reason: RevocationReason::Superseded as i32,
            ..Default::default()
        })
        .await?
        .into_inner();
    let mut refused = 0;
    while let Some(result) = results.message().await? {
        if matches!(
            result.outcome,
            Some(bulk_revoke_response::Outcome::Refusal(_))
        ) {
            refused += 1;
        }
    }
    Ok(refused)
}

/// One CRL of a CA as the gateway serves it: its URL, number, entries and size.
#[derive(Debug, Clone)]
pub struct CrlShard {
    pub url: String,
    pub number: u64,
    pub entries: u64,
    pub bytes: usize,
}

/// Every CRL of GeoTrust's CA (the brand the bench issues), through `ListCrls` and `GetCrl`.
pub async fn geotrust_crls(endpoint: &str) -> anyhow::Result<Vec<CrlShard>> {
    use certflow_proto::v1::crl_service_client::CrlServiceClient;
    use certflow_proto::v1::{GetCrlRequest, ListCrlsRequest};
    let channel: Channel = Endpoint::from_shared(endpoint.to_string())?
        .connect()
        .await?;
    let mut crls = CrlServiceClient::new(channel).max_decoding_message_size(64 << 20);
    let urls = crls
        .list_crls(ListCrlsRequest {
            brand: Brand::Geotrust as i32,
            sm2: false,
        })
        .await?
        .into_inner()
        .urls;
    let mut shards = Vec::with_capacity(urls.len());
    for url in urls {
        // `.../crl/geotrust.crl` is the original CRL; `.../crl/geotrust/<n>.crl` shard n.
        let shard = url
            .rsplit_once("/geotrust/")
            .and_then(|(_, file)| file.strip_suffix(".crl"))
            .and_then(|n| n.parse().ok());
        let crl = crls
            .get_crl(GetCrlRequest {
                brand: Brand::Geotrust as i32,
                sm2: false,
                shard,
            })
            .await?
            .into_inner();
        shards.push(CrlShard {
            url,
            number: crl.number,
            entries: crl.entries,
            bytes: crl.der.len(),
        });
    }
    Ok(shards)
}

fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
