//! The gateway's gRPC clients, each call made with the caller's token, and what a refused
//! call tells the page.

use std::path::Path;

use certflow_proto::v1::certificate_service_client::CertificateServiceClient;
use certflow_proto::v1::reissue_service_client::ReissueServiceClient;
use certflow_proto::v1::review_service_client::ReviewServiceClient;
use certflow_proto::v1::revocation_service_client::RevocationServiceClient;
use tonic::metadata::MetadataValue;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Request, Status};
use tonic_types::StatusExt as _;

use crate::ConsoleError;
use crate::i18n::Texts;
use crate::session::Caller;

/// One lazily connected channel to the gateway, shared by every page.
#[derive(Debug, Clone)]
pub(crate) struct Gateway {
    channel: Channel,
}

impl Gateway {
    pub fn new(address: &str, ca: Option<&Path>) -> Result<Self, ConsoleError> {
        let invalid = |message: String| ConsoleError::Gateway {
            address: address.to_string(),
            message,
        };
        let mut endpoint =
            Endpoint::from_shared(address.to_string()).map_err(|e| invalid(e.to_string()))?;
        if address.starts_with("https://") {
            // certd carries no system roots: the gateway's CA is named, or the console would
            // only find out at the first call.
            let Some(path) = ca else {
                return Err(invalid(
                    "an https:// gateway needs the CA of its certificate: give \
                     --console-gateway-ca"
                        .into(),
                ));
            };
            let pem = std::fs::read(path).map_err(|source| ConsoleError::Read {
                path: path.to_path_buf(),
                source,
            })?;
            let tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem));
            endpoint = endpoint
                .tls_config(tls)
                .map_err(|e| invalid(e.to_string()))?;
        }
        let channel = endpoint
            .connect_timeout(std::time::Duration::from_secs(5))
            .timeout(std::time::Duration::from_secs(30))
            .connect_lazy();
        Ok(Gateway { channel })
    }

    pub fn certificates(&self) -> CertificateServiceClient<Channel> {
        CertificateServiceClient::new(self.channel.clone())
    }

    pub fn revocations(&self) -> RevocationServiceClient<Channel> {
        RevocationServiceClient::new(self.channel.clone())
    }

    pub fn reissues(&self) -> ReissueServiceClient<Channel> {
        ReissueServiceClient::new(self.channel.clone()).max_decoding_message_size(16 * 1024 * 1024)
    }

    pub fn reviews(&self) -> ReviewServiceClient<Channel> {
        ReviewServiceClient::new(self.channel.clone()).max_decoding_message_size(16 * 1024 * 1024)
    }
}

/// `message` as a call of `caller`: their token in `authorization`.
pub(crate) fn as_caller<T>(caller: &Caller, message: T) -> Request<T> {
    let mut request = Request::new(message);
    if let Ok(value) = MetadataValue::try_from(format!("Bearer {}", caller.bearer())) {
        request.metadata_mut().insert("authorization", value);
    }
    request
}

/// A refused or failed call as a form shows it: the product's message and reason code.
#[derive(Debug, Clone)]
pub(crate) struct Refusal {
    pub message: String,
    /// The `google.rpc.ErrorInfo` reason (RULES.md), or the gRPC code's name.
    pub reason: String,
    /// The gateway could not be reached, or is busy: worth trying again shortly.
    pub unavailable: bool,
    /// The page sends its form again by itself, with the same request id
    /// ([`Refusal::resent_by_the_page`]); otherwise it asks the reader to try again.
    pub resend: bool,
}

impl Refusal {
    pub fn from_status(status: &Status, t: &Texts) -> Self {
        let info = status.get_details_error_info();
        // No answer from the gateway at all: the connection failed, broke off or timed out.
        let lost = info.is_none()
            && matches!(
                status.code(),
                Code::Unavailable | Code::Cancelled | Code::Unknown | Code::DeadlineExceeded
            );
        if lost {
            return Refusal {
                message: t.gateway_unreachable.to_string(),
                reason: "UNAVAILABLE".into(),
                unavailable: true,
                resend: false,
            };
        }
        let reason = info
            .map(|info| info.reason)
            .unwrap_or_else(|| certflow_proto::refusal::code_name(status.code()).to_string());
        Refusal {
            message: status.message().to_string(),
            reason,
            // The gateway is there but busy, or a service behind it is away: worth a retry.
            unavailable: matches!(status.code(), Code::Unavailable | Code::ResourceExhausted),
            resend: false,
        }
    }

    /// For a form that can be sent again as it is (its request id kept, nothing secret to
    /// ask for anew): when the refusal is worth a retry, the page resends it by itself.
    pub fn resent_by_the_page(self) -> Self {
        Refusal {
            resend: self.unavailable,
            ..self
        }
    }

    /// A refusal the console finds before calling (e.g. an empty upload).
    pub fn local(message: &str, reason: &str) -> Self {
        Refusal {
            message: message.to_string(),
            reason: reason.to_string(),
            unavailable: false,
            resend: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_https_gateway_without_its_ca_is_refused_at_start() {
        let refused = Gateway::new("https://gateway.example:50051", None).expect_err("no CA");
        assert!(
            refused.to_string().contains("--console-gateway-ca"),
            "{refused}"
        );
    }
}
