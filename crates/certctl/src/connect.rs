//! Where the gateway is and how to reach it: the endpoint address and TLS.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

/// The gateway's address when none is given.
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:50051";

/// The older environment variable for the address, still read when `--endpoint` and
/// `CERTFLOW_ADDR` are both absent.
pub const LEGACY_ENDPOINT_ENV: &str = "CERTFLOW_ENDPOINT";

/// How long to wait for the connection to the gateway.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The address to dial: `given` (from `--endpoint` or `CERTFLOW_ADDR`), else `legacy`
/// (from `CERTFLOW_ENDPOINT`), else [`DEFAULT_ENDPOINT`]; blank values count as absent.
/// The result is normalised by [`normalize_endpoint`].
pub fn resolve_endpoint(given: Option<&str>, legacy: Option<&str>) -> String {
    let chosen = [given, legacy]
        .into_iter()
        .flatten()
        .map(str::trim)
        .find(|value| !value.is_empty())
        .unwrap_or(DEFAULT_ENDPOINT);
    normalize_endpoint(chosen)
}

/// The address with a scheme: one without (`127.0.0.1:50051`, `gw.example.com:443`) is
/// taken as plaintext `http://`.
pub fn normalize_endpoint(address: &str) -> String {
    let address = address.trim();
    if address.contains("://") {
        address.to_owned()
    } else {
        format!("http://{address}")
    }
}

/// The TLS options from the command line.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// PEM file of a CA to trust.
    pub ca_cert: Option<PathBuf>,
    /// PEM file of the client certificate to present.
    pub client_cert: Option<PathBuf>,
    /// PEM file of the client certificate's private key.
    pub client_key: Option<PathBuf>,
    /// Name to verify the gateway's certificate against, instead of the endpoint's host.
    pub domain: Option<String>,
}

impl TlsOptions {
    fn any_given(&self) -> bool {
        self.ca_cert.is_some()
            || self.client_cert.is_some()
            || self.client_key.is_some()
            || self.domain.is_some()
    }
}

/// The endpoint to connect to, with TLS set up when `address` is `https://`.
pub fn endpoint(address: &str, tls: &TlsOptions) -> Result<Endpoint> {
    let endpoint = Endpoint::from_shared(address.to_owned())
        .with_context(|| format!("invalid endpoint `{address}`"))?
        .connect_timeout(CONNECT_TIMEOUT);
    let uri = endpoint.uri().clone();
    match uri.scheme_str() {
        Some("https") => {
            let config = tls_config(tls, uri.host().unwrap_or_default())?;
            endpoint
                .tls_config(config)
                .context("invalid TLS configuration")
        }
        Some("http") => {
            if tls.any_given() {
                bail!(
                    "TLS options (--ca-cert, --client-cert, --client-key, --tls-domain) were \
                     given but the endpoint `{address}` is not https://; use an https:// \
                     endpoint for TLS"
                );
            }
            Ok(endpoint)
        }
        _ => bail!("invalid endpoint `{address}`: the scheme must be http:// or https://"),
    }
}

/// Connects to the gateway at `address`.
pub async fn connect(address: &str, tls: &TlsOptions) -> Result<Channel> {
    endpoint(address, tls)?
        .connect()
        .await
        .with_context(|| format!("could not reach the certflow gateway at {address}"))
}

/// The TLS settings for a gateway whose endpoint has host `host`.
///
/// The tonic build used here has neither the `tls-native-roots` nor the `tls-webpki-roots`
/// feature, so there are no built-in roots: the CA must be given with `--ca-cert`.
fn tls_config(tls: &TlsOptions, host: &str) -> Result<ClientTlsConfig> {
    let Some(ca_cert) = &tls.ca_cert else {
        bail!(
            "an https:// endpoint needs --ca-cert (or CERTFLOW_CA_CERT) naming the PEM of the \
             CA that signed the gateway's certificate: this certctl build has no built-in \
             root certificates"
        );
    };
    let mut config = ClientTlsConfig::new()
        .domain_name(tls_domain(tls.domain.as_deref(), host))
        .ca_certificate(Certificate::from_pem(read_pem(ca_cert, "CA certificate")?));
    match (&tls.client_cert, &tls.client_key) {
        (Some(cert), Some(key)) => {
            config = config.identity(Identity::from_pem(
                read_pem(cert, "client certificate")?,
                read_pem(key, "client key")?,
            ));
        }
        (None, None) => {}
        _ => bail!("--client-cert and --client-key must be given together"),
    }
    Ok(config)
}

/// The name the gateway's certificate must match: `given`, else the endpoint's host
/// without the brackets of an IPv6 address.
pub fn tls_domain(given: Option<&str>, host: &str) -> String {
    if let Some(given) = given.map(str::trim).filter(|given| !given.is_empty()) {
        return given.to_owned();
    }
    host.strip_prefix('[')
        .and_then(|host| host.strip_suffix(']'))
        .unwrap_or(host)
        .to_owned()
}

fn read_pem(path: &Path, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("could not read the {what} {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_without_a_scheme_is_http() {
        assert_eq!(
            normalize_endpoint("127.0.0.1:50051"),
            "http://127.0.0.1:50051"
        );
        assert_eq!(
            normalize_endpoint(" gw.example.com:443 "),
            "http://gw.example.com:443"
        );
        assert_eq!(normalize_endpoint("[::1]:50051"), "http://[::1]:50051");
        assert_eq!(
            normalize_endpoint("https://gw.example.com"),
            "https://gw.example.com"
        );
        assert_eq!(normalize_endpoint("http://gw:1"), "http://gw:1");
    }

    #[test]
    fn the_endpoint_comes_from_the_flag_then_the_legacy_variable() {
        assert_eq!(
            resolve_endpoint(Some("gw:1"), Some("http://old:2")),
            "http://gw:1"
        );
        assert_eq!(resolve_endpoint(None, Some("old:2")), "http://old:2");
        assert_eq!(resolve_endpoint(Some(" "), Some("old:2")), "http://old:2");
        assert_eq!(resolve_endpoint(None, None), DEFAULT_ENDPOINT);
        assert_eq!(resolve_endpoint(Some(""), Some("")), DEFAULT_ENDPOINT);
    }

    #[test]
    fn the_tls_domain_defaults_to_the_host() {
        assert_eq!(tls_domain(None, "gw.example.com"), "gw.example.com");
        assert_eq!(tls_domain(None, "[::1]"), "::1");
        assert_eq!(
            tls_domain(Some("cert.example.com"), "10.0.0.1"),
            "cert.example.com"
        );
        assert_eq!(tls_domain(Some(" "), "10.0.0.1"), "10.0.0.1");
    }

    #[test]
    fn https_without_a_ca_is_refused() {
        let err = endpoint("https://gw.example.com:443", &TlsOptions::default())
            .expect_err("https needs --ca-cert");
        assert!(format!("{err:#}").contains("--ca-cert"), "{err:#}");
    }

    #[test]
    fn tls_options_on_a_plaintext_endpoint_are_refused() {
        let tls = TlsOptions {
            ca_cert: Some(PathBuf::from("/ca.pem")),
            ..TlsOptions::default()
        };
        let err = endpoint("http://gw:1", &tls).expect_err("TLS options on http://");
        assert!(format!("{err:#}").contains("not https://"), "{err:#}");
        assert!(endpoint("http://gw:1", &TlsOptions::default()).is_ok());
        assert!(endpoint("ftp://gw:1", &TlsOptions::default()).is_err());
    }

    #[test]
    fn an_unreadable_ca_is_reported_by_path() {
        let tls = TlsOptions {
            ca_cert: Some(PathBuf::from("/nonexistent/certctl-ca.pem")),
            ..TlsOptions::default()
        };
        let err = endpoint("https://gw:1", &tls).expect_err("missing CA file");
        assert!(
            format!("{err:#}")
                .contains("could not read the CA certificate /nonexistent/certctl-ca.pem"),
            "{err:#}"
        );
    }
}
