//! Connections a service makes on a customer's behalf (the file prober's fetches, webhook
//! deliveries): a DNS resolver that asks exactly the configured servers and keeps nothing,
//! and the HTTP client's view of it, which hands out only the addresses the
//! [`address`](crate::address) policy allows, so the client never connects anywhere else.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::xfer::Protocol;
use hickory_resolver::{ResolveError, TokioResolver};

/// A resolver that asks `servers` (or, when none are given, those of the system's
/// resolv.conf, never the hosts file) and keeps nothing: every lookup is a fresh question,
/// so a record published after a miss is found the next time. One attempt per lookup,
/// within `timeout`: callers retry later.
pub fn fresh_resolver(
    servers: &[SocketAddr],
    timeout: Duration,
) -> Result<TokioResolver, ResolveError> {
    let resolver_config = if servers.is_empty() {
        hickory_resolver::system_conf::read_system_conf()?.0
    } else {
        let mut resolver_config = ResolverConfig::new();
        for addr in servers {
            resolver_config.add_name_server(NameServerConfig::new(*addr, Protocol::Udp));
            resolver_config.add_name_server(NameServerConfig::new(*addr, Protocol::Tcp));
        }
        resolver_config
    };
    let mut opts = ResolverOpts::default();
    opts.timeout = timeout;
    opts.attempts = 1;
    opts.cache_size = 0;
    opts.positive_max_ttl = Some(Duration::ZERO);
    opts.negative_max_ttl = Some(Duration::ZERO);
    opts.use_hosts_file = ResolveHosts::Never;
    opts.try_tcp_on_error = true;
    // Advertise a real UDP payload size. Without EDNS, hickory's client reads only 512 bytes
    // of a datagram, and some servers (hickory-server 0.25 among them) send up to 4096 to
    // non-EDNS clients: the cut answer is dropped as malformed and the lookup times out
    // instead of retrying over TCP.
    opts.edns0 = true;
    let mut builder =
        TokioResolver::builder_with_config(resolver_config, TokioConnectionProvider::default());
    *builder.options_mut() = opts;
    Ok(builder.build())
}

/// What a refused host's error tells whoever reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Each address and the range that rules it out: the prober's results, about the
    /// customer's own domain as public DNS answers it.
    Detailed,
    /// Only that no address was allowed; the detail goes to the log. For a URL the customer
    /// chose, whose name the system resolver may answer from an operator's private zone.
    Redacted,
}

/// The HTTP client's resolver: resolves with a [`fresh_resolver`] and hands out only the
/// addresses [`crate::address::connectable`] allows. A host that points at loopback, a
/// private network or a link-local metadata service is refused before any connection;
/// networks the operator allows pass.
#[derive(Clone)]
pub struct PolicyResolver {
    resolver: TokioResolver,
    allowed_networks: Arc<Vec<ipnet::IpNet>>,
    refusal: Refusal,
}

impl std::fmt::Debug for PolicyResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyResolver")
            .field("allowed_networks", &self.allowed_networks)
            .field("refusal", &self.refusal)
            .finish_non_exhaustive()
    }
}

impl PolicyResolver {
    pub fn new(
        resolver: TokioResolver,
        allowed_networks: Vec<ipnet::IpNet>,
        refusal: Refusal,
    ) -> Self {
        PolicyResolver {
            resolver,
            allowed_networks: Arc::new(allowed_networks),
            refusal,
        }
    }
}

impl reqwest::dns::Resolve for PolicyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let resolver = self.resolver.clone();
        let allowed_networks = self.allowed_networks.clone();
        let refusal = self.refusal;
        Box::pin(async move {
            let host = name.as_str().to_string();
            // Redacted, a name the resolver does not know and one that points into a
            // private network read the same: the customer learns nothing of the zone.
            let redacted = |detail: String| {
                tracing::warn!(%detail, "host not resolved, or refused by the address policy");
                format!(
                    "{host} resolves to no address certflow connects to: it must resolve to \
                     public addresses only"
                )
            };
            let lookup = match resolver.lookup_ip(format!("{host}.")).await {
                Ok(lookup) => lookup,
                Err(err) if refusal == Refusal::Detailed => return Err(err.into()),
                Err(err) => return Err(redacted(error_chain(&err)).into()),
            };
            let allowed = crate::address::connectable(&host, lookup.iter(), &allowed_networks)
                .map_err(|detail| match refusal {
                    Refusal::Detailed => detail,
                    Refusal::Redacted => redacted(detail),
                })?;
            let addrs: reqwest::dns::Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// An error and its causes on one line, `outer: inner: …`: what a probe or delivery tells
/// about a failed exchange (reqwest's and lettre's top-level messages alone say little).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
