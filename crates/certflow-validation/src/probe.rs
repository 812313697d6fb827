//! Domain-ownership probes: look for a challenge value in DNS (`TXT _dnsauth.<domain>`) or in a
//! file served over plain HTTP (`http://<domain>/.well-known/pki-validation/fileauth.txt`).
//!
//! A probe says what it saw ([`ProbeOutcome`]); it fails ([`ProbeError`]) only when it could not
//! tell, e.g. a timeout or SERVFAIL, which the caller should retry later. Nothing is cached: a
//! value published after a probe is seen by the next one.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use certflow_runtime::outbound::{PolicyResolver, Refusal, error_chain};
use hickory_resolver::proto::ProtoErrorKind;
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::{Name, ResolveError, TokioResolver};
use reqwest::{StatusCode, Url, redirect};

/// The label a DNS challenge is published under.
const DNS_LABEL: &str = "_dnsauth";
/// The path of the validation file on the domain's web server.
const FILE_PATH: &str = "/.well-known/pki-validation/fileauth.txt";
/// Redirects followed at most when fetching the validation file.
const MAX_REDIRECTS: usize = 5;
/// At most this many values are reported in [`ProbeOutcome::WrongValue`]...
const MAX_SEEN: usize = 10;
/// ...each cut to this many characters, so a hostile record cannot bloat events or logs.
const MAX_SEEN_CHARS: usize = 128;

/// Where and how the probes look.
#[derive(Debug, Clone)]
pub struct ProbeConfig {
    /// DNS servers to ask (UDP, TCP fallback); empty means the system's resolv.conf.
    pub dns_servers: Vec<SocketAddr>,
    /// Per-domain address to fetch the validation file from instead of resolving the domain
    /// (host -> ip:port). The HTTP Host header stays the domain.
    pub http_overrides: HashMap<String, SocketAddr>,
    /// Networks the file probe may connect to although the address policy refuses them
    /// ([`crate::address`]): for operators who validate domains on their own networks.
    pub allowed_networks: Vec<ipnet::IpNet>,
    /// The port the validation file is fetched from: 80, as the Baseline Requirements say
    /// (3.2.2.4.18); another only in tests and labs.
    pub http_port: u16,
    /// Per-lookup / per-request timeout (default 5 s).
    pub timeout: Duration,
    /// Largest validation-file body read (default 4096 bytes); more is a failure.
    pub max_body_bytes: usize,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        ProbeConfig {
            dns_servers: Vec::new(),
            http_overrides: HashMap::new(),
            allowed_networks: Vec::new(),
            http_port: 80,
            timeout: Duration::from_secs(5),
            max_body_bytes: 4096,
        }
    }
}

/// How ownership of a domain is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeMethod {
    /// A TXT record at `_dnsauth.<domain>`.
    Dns,
    /// A file at `http://<domain>/.well-known/pki-validation/fileauth.txt`.
    File,
}

/// What one probe saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// The expected value is there.
    Found,
    /// The record/file is there but holds other values (list what was seen, truncated).
    WrongValue { seen: Vec<String> },
    /// No record / 404 / NXDOMAIN / connection refused etc.: nothing published yet.
    Missing { detail: String },
}

/// Why a probe could not be built or could not tell.
///
/// Construction errors come from [`Prober::new`]; the rest are transient (see
/// [`ProbeError::is_transient`]) and worth retrying later.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The system resolver configuration (resolv.conf) could not be read.
    #[error("cannot read the system DNS configuration: {0}")]
    SystemDnsConfig(#[source] ResolveError),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(#[source] reqwest::Error),
    /// The domain is not a DNS name we can probe.
    #[error("not a domain name that can be probed: {domain:?} ({reason})")]
    InvalidDomain { domain: String, reason: String },
    /// The DNS lookup did not finish in time.
    #[error("DNS lookup of {name} timed out")]
    DnsTimeout { name: String },
    /// The DNS servers failed (SERVFAIL, REFUSED, unreachable, ...).
    #[error("DNS lookup of {name} failed: {source}")]
    Dns {
        name: String,
        #[source]
        source: ResolveError,
    },
    /// The HTTP request did not finish in time.
    #[error("fetching {url} timed out")]
    HttpTimeout { url: String },
    /// The HTTP exchange broke off after the connection was made.
    #[error("fetching {url} failed: {source}")]
    Http {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// The web server answered with a server error (5xx).
    #[error("fetching {url} answered HTTP {status}")]
    HttpStatus { url: String, status: u16 },
}

impl ProbeError {
    /// Whether the same probe may well succeed later (as opposed to a setup mistake).
    pub fn is_transient(&self) -> bool {
        !matches!(
            self,
            ProbeError::SystemDnsConfig(_)
                | ProbeError::HttpClient(_)
                | ProbeError::InvalidDomain { .. }
        )
    }
}

/// Runs probes; cheap to clone, so one can be shared by every task of the service.
#[derive(Clone)]
pub struct Prober {
    inner: Arc<Inner>,
}

struct Inner {
    resolver: TokioResolver,
    http: reqwest::Client,
    config: ProbeConfig,
}

impl fmt::Debug for Prober {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prober")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Prober {
    /// Builds the resolver and HTTP client once, from `config`.
    pub fn new(config: ProbeConfig) -> Result<Self, ProbeError> {
        let resolver = build_resolver(&config)?;
        let http = build_http_client(&config, &resolver)?;
        Ok(Prober {
            inner: Arc::new(Inner {
                resolver,
                http,
                config,
            }),
        })
    }

    /// The DNS name a challenge for `domain` is published at: `_dnsauth.<domain>`, wildcard `*.`
    /// stripped.
    pub fn dns_name(domain: &str) -> String {
        format!("{DNS_LABEL}.{}", base_domain(domain))
    }

    /// The URL of the validation file for `domain` (wildcard stripped):
    /// `http://<domain>/.well-known/pki-validation/fileauth.txt`.
    pub fn file_url(domain: &str) -> String {
        format!("http://{}{FILE_PATH}", base_domain(domain))
    }

    /// Looks for `expected` by `method` for `domain` (a DNS name like `example.com` or
    /// `*.example.com`).
    pub async fn probe(
        &self,
        method: ProbeMethod,
        domain: &str,
        expected: &str,
    ) -> Result<ProbeOutcome, ProbeError> {
        check_domain(domain)?;
        let expected = expected.trim();
        let outcome = match method {
            ProbeMethod::Dns => self.probe_dns(domain, expected).await,
            ProbeMethod::File => self.probe_file(domain, expected).await,
        };
        let label = match &outcome {
            Ok(ProbeOutcome::Found) => "found",
            Ok(ProbeOutcome::WrongValue { .. }) => "wrong_value",
            Ok(ProbeOutcome::Missing { .. }) => "missing",
            Err(_) => "error",
        };
        let method_label = match method {
            ProbeMethod::Dns => "dns",
            ProbeMethod::File => "file",
        };
        certflow_telemetry::instruments().validation_checks.add(
            1,
            &[
                opentelemetry::KeyValue::new("method", method_label),
                opentelemetry::KeyValue::new("outcome", label),
            ],
        );
        outcome
    }

    async fn probe_dns(&self, domain: &str, expected: &str) -> Result<ProbeOutcome, ProbeError> {
        let name = Self::dns_name(domain);
        // Fully qualified, so no search domain from resolv.conf is ever tried.
        let fqdn = Name::from_ascii(format!("{name}.")).map_err(|e| ProbeError::InvalidDomain {
            domain: domain.to_owned(),
            reason: e.to_string(),
        })?;
        let lookup = tokio::time::timeout(
            self.inner.config.timeout,
            self.inner.resolver.txt_lookup(fqdn),
        )
        .await
        .map_err(|_| ProbeError::DnsTimeout { name: name.clone() })?;
        let lookup = match lookup {
            Ok(lookup) => lookup,
            Err(e) => return dns_failure(name, e),
        };
        let values: Vec<String> = lookup
            .iter()
            .map(|txt| {
                // One record's character-strings form one value (long values are split at 255).
                let bytes: Vec<u8> = txt
                    .txt_data()
                    .iter()
                    .flat_map(|s| s.iter().copied())
                    .collect();
                String::from_utf8_lossy(&bytes).trim().to_owned()
            })
            .collect();
        if values.iter().any(|v| v == expected) {
            Ok(ProbeOutcome::Found)
        } else if values.is_empty() {
            Ok(ProbeOutcome::Missing {
                detail: format!("no TXT record at {name}"),
            })
        } else {
            Ok(ProbeOutcome::WrongValue {
                seen: summarize(values),
            })
        }
    }

    async fn probe_file(&self, domain: &str, expected: &str) -> Result<ProbeOutcome, ProbeError> {
        let url = match self.inner.config.http_port {
            80 => Self::file_url(domain),
            port => format!("http://{}:{port}{FILE_PATH}", base_domain(domain)),
        };
        let mut response = match self.inner.http.get(&url).send().await {
            Ok(response) => response,
            Err(e) if e.is_timeout() => return Err(ProbeError::HttpTimeout { url }),
            // Refused, unreachable, unknown host: no web server publishing anything yet.
            Err(e) if e.is_connect() => {
                return Ok(ProbeOutcome::Missing {
                    detail: format!("cannot connect to {url}: {}", error_chain(&e)),
                });
            }
            Err(e) => return Err(ProbeError::Http { url, source: e }),
        };
        let status = response.status();
        if status.is_redirection() {
            // The redirect policy stopped here: say why.
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let target = response.url().join(location).ok();
            let port = self.inner.config.http_port;
            let why = match target {
                Some(target) if redirect_allowed(&target, &base_domain(domain), port) => {
                    format!("more than {MAX_REDIRECTS} redirects")
                }
                Some(_) => {
                    "redirected off-domain (only http on the same domain is followed)".into()
                }
                None => "redirect without a usable Location".into(),
            };
            return Ok(ProbeOutcome::Missing {
                detail: format!(
                    "{url}: HTTP {status} to {}: {why}; not followed",
                    truncate(location)
                ),
            });
        }
        if status.is_server_error() {
            return Err(ProbeError::HttpStatus {
                url,
                status: status.as_u16(),
            });
        }
        if status != StatusCode::OK {
            return Ok(ProbeOutcome::Missing {
                detail: format!("{}: HTTP {status}", response.url()),
            });
        }

        let max = self.inner.config.max_body_bytes;
        let mut body = Vec::new();
        loop {
            let chunk = match response.chunk().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(e) if e.is_timeout() => return Err(ProbeError::HttpTimeout { url }),
                Err(e) => return Err(ProbeError::Http { url, source: e }),
            };
            if body.len() + chunk.len() > max {
                // Refuse rather than search an arbitrarily large document for the value.
                return Ok(ProbeOutcome::WrongValue {
                    seen: vec![format!(
                        "(validation file larger than {max} bytes; not read)"
                    )],
                });
            }
            body.extend_from_slice(&chunk);
        }
        let text = String::from_utf8_lossy(&body);
        if text.trim() == expected || text.lines().any(|line| line.trim() == expected) {
            return Ok(ProbeOutcome::Found);
        }
        let seen: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .map(str::to_owned)
            .collect();
        if seen.is_empty() {
            Ok(ProbeOutcome::Missing {
                detail: format!("{}: validation file is empty", response.url()),
            })
        } else {
            Ok(ProbeOutcome::WrongValue {
                seen: summarize(seen),
            })
        }
    }
}

/// The probes' resolver: exactly the configured servers, nothing kept
/// ([`certflow_runtime::outbound::fresh_resolver`]).
fn build_resolver(config: &ProbeConfig) -> Result<TokioResolver, ProbeError> {
    certflow_runtime::outbound::fresh_resolver(&config.dns_servers, config.timeout)
        .map_err(ProbeError::SystemDnsConfig)
}

/// Plain HTTP/1 only, no proxy from the environment, redirects only within the domain,
/// public addresses only.
fn build_http_client(
    config: &ProbeConfig,
    resolver: &TokioResolver,
) -> Result<reqwest::Client, ProbeError> {
    let port = config.http_port;
    let policy = redirect::Policy::custom(move |attempt| {
        let previous = attempt.previous();
        // `previous` starts with the original URL, which names the domain being probed.
        let allowed = previous.len() <= MAX_REDIRECTS
            && previous
                .first()
                .and_then(Url::host_str)
                .is_some_and(|host| redirect_allowed(attempt.url(), host, port));
        if allowed {
            attempt.follow()
        } else {
            attempt.stop()
        }
    });
    let mut builder = reqwest::Client::builder()
        .no_proxy()
        .redirect(policy)
        .timeout(config.timeout)
        .connect_timeout(config.timeout)
        .pool_max_idle_per_host(0)
        // Public addresses only, judged before connecting; operator overrides (below) and
        // networks the operator allows pass.
        .dns_resolver(Arc::new(PolicyResolver::new(
            resolver.clone(),
            config.allowed_networks.clone(),
            Refusal::Detailed,
        )))
        .user_agent(concat!("certflow-validation/", env!("CARGO_PKG_VERSION")));
    for (host, addr) in &config.http_overrides {
        // reqwest keeps a non-zero override port when the URL has none, which ours never do,
        // so the URL and its Host header stay `http://<domain>/...`.
        builder = builder.resolve(&base_domain(host), *addr);
    }
    builder.build().map_err(ProbeError::HttpClient)
}

/// A redirect is followed only to plain HTTP on the probed domain's port (80), named by that
/// domain: never to an IP address, which would bypass the address policy.
fn redirect_allowed(target: &Url, domain: &str, port: u16) -> bool {
    target.scheme() == "http"
        && target.port_or_known_default() == Some(port)
        && matches!(target.host(), Some(url::Host::Domain(host)) if host.eq_ignore_ascii_case(domain))
}

/// Maps a resolver error: "nothing there" is an answer, anything else is a failure to ask.
fn dns_failure(name: String, error: ResolveError) -> Result<ProbeOutcome, ProbeError> {
    // hickory reports SERVFAIL, REFUSED, ... as NoRecordsFound too; only NXDOMAIN and an empty
    // NOERROR answer mean the record is not there.
    if let Some(ProtoErrorKind::NoRecordsFound { response_code, .. }) =
        error.proto().map(|p| p.kind())
    {
        match *response_code {
            ResponseCode::NXDomain => {
                return Ok(ProbeOutcome::Missing {
                    detail: format!("{name}: NXDOMAIN"),
                });
            }
            ResponseCode::NoError => {
                return Ok(ProbeOutcome::Missing {
                    detail: format!("no TXT record at {name}"),
                });
            }
            _ => {}
        }
    }
    if matches!(
        error.proto().map(|p| p.kind()),
        Some(ProtoErrorKind::Timeout)
    ) {
        return Err(ProbeError::DnsTimeout { name });
    }
    Err(ProbeError::Dns {
        name,
        source: error,
    })
}

/// The name a challenge for `domain` is about: lower case, without `*.` or a trailing dot.
fn base_domain(domain: &str) -> String {
    let domain = domain.trim();
    let domain = domain.strip_prefix("*.").unwrap_or(domain);
    domain
        .strip_suffix('.')
        .unwrap_or(domain)
        .to_ascii_lowercase()
}

/// Refuses, before any IO, what is not a domain name a certificate may carry: above all a
/// name a URL parser would read as an IP address (CA-1), which would send the file probe
/// to that address without asking DNS.
fn check_domain(domain: &str) -> Result<(), ProbeError> {
    certflow_domain::DomainName::parse(domain)
        .map(|_| ())
        .map_err(|err| ProbeError::InvalidDomain {
            domain: domain.to_owned(),
            reason: err.to_string(),
        })
}

/// What a `WrongValue` reports: the first few values, each cut short.
fn summarize(values: Vec<String>) -> Vec<String> {
    values
        .into_iter()
        .take(MAX_SEEN)
        .map(|v| truncate(&v))
        .collect()
}

fn truncate(value: &str) -> String {
    match value.char_indices().nth(MAX_SEEN_CHARS) {
        Some((end, _)) => format!("{}…", &value[..end]),
        None => value.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_name_prefixes_the_label_and_strips_the_wildcard() {
        assert_eq!(Prober::dns_name("example.com"), "_dnsauth.example.com");
        assert_eq!(
            Prober::dns_name("www.example.com"),
            "_dnsauth.www.example.com"
        );
        assert_eq!(Prober::dns_name("*.example.com"), "_dnsauth.example.com");
        assert_eq!(Prober::dns_name("Example.COM."), "_dnsauth.example.com");
    }

    #[test]
    fn file_url_is_plain_http_on_the_well_known_path() {
        assert_eq!(
            Prober::file_url("example.com"),
            "http://example.com/.well-known/pki-validation/fileauth.txt"
        );
        assert_eq!(
            Prober::file_url("*.shop.example.com"),
            "http://shop.example.com/.well-known/pki-validation/fileauth.txt"
        );
    }

    #[test]
    fn odd_domains_are_refused_before_any_io() {
        for bad in [
            "",
            "*.",
            "a..b",
            "exa mple.com",
            "example.com/x",
            "a@b.com",
            "*.*.a.com",
            "127.0x1",
            "0x7f.0x0.0x0.0x1",
            "169.254.169.0xfe",
            "2130706433",
            "0177.0.0.1",
        ] {
            assert!(
                matches!(check_domain(bad), Err(ProbeError::InvalidDomain { .. })),
                "{bad:?} accepted"
            );
        }
        check_domain("*.example.com").expect("wildcard is fine");
        check_domain("xn--bcher-kva.example").expect("punycode is fine");
    }

    #[test]
    fn long_values_are_cut_on_a_char_boundary() {
        let long = "é".repeat(MAX_SEEN_CHARS + 5);
        let cut = truncate(&long);
        assert_eq!(cut.chars().count(), MAX_SEEN_CHARS + 1);
        assert!(cut.ends_with('…'));
        assert_eq!(summarize(vec!["x".into(); 20]).len(), MAX_SEEN);
    }

    #[test]
    fn redirects_stay_on_the_domain_over_http() {
        let url = |s: &str| Url::parse(s).expect("test URL");
        assert!(redirect_allowed(
            &url("http://example.com/x"),
            "example.com",
            80
        ));
        assert!(redirect_allowed(
            &url("http://EXAMPLE.com:80/x"),
            "example.com",
            80
        ));
        assert!(!redirect_allowed(
            &url("https://example.com/x"),
            "example.com",
            80
        ));
        assert!(!redirect_allowed(
            &url("http://example.com:8080/x"),
            "example.com",
            80
        ));
        assert!(!redirect_allowed(
            &url("http://evil.test/x"),
            "example.com",
            80
        ));
        assert!(!redirect_allowed(
            &url("http://www.example.com/x"),
            "example.com",
            80
        ));
    }

    #[test]
    fn ca1_a_redirect_to_an_ip_address_is_never_followed() {
        let url = |s: &str| Url::parse(s).expect("test URL");
        for target in [
            "http://127.0.0.1/x",
            "http://127.0x1/x",
            "http://0x7f.0x0.0x0.0x1/x",
            "http://2130706433/x",
            "http://[::1]/x",
            "http://169.254.169.0xfe/x",
        ] {
            assert!(!redirect_allowed(&url(target), "127.0.0.1", 80), "{target}");
        }
    }
}
