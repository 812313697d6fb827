//! The validation probes against real servers: hickory's authoritative DNS over UDP/TCP and an
//! HTTP/1 file server, both on 127.0.0.1.

use std::collections::HashMap;
use std::time::Duration;

use certflow_testkit::dns::AuthoritativeDns;
use certflow_testkit::web::FileServer;
use certflow_validation::probe::{ProbeConfig, ProbeMethod, ProbeOutcome, Prober};

const TOKEN: &str = "certflow-4f1c2a9e7b";

fn dns_prober(dns: &AuthoritativeDns) -> Prober {
    Prober::new(ProbeConfig {
        dns_servers: vec![dns.addr()],
        timeout: Duration::from_secs(2),
        ..ProbeConfig::default()
    })
    .expect("prober")
}

fn file_prober(web: &FileServer, domains: &[&str]) -> Prober {
    let http_overrides: HashMap<_, _> = domains
        .iter()
        .map(|domain| (domain.to_string(), web.addr()))
        .collect();
    Prober::new(ProbeConfig {
        http_overrides,
        timeout: Duration::from_secs(2),
        ..ProbeConfig::default()
    })
    .expect("prober")
}

async fn probe(prober: &Prober, method: ProbeMethod, domain: &str) -> ProbeOutcome {
    prober
        .probe(method, domain, TOKEN)
        .await
        .unwrap_or_else(|e| panic!("{method:?} probe of {domain} failed: {e}"))
}

fn assert_missing(outcome: &ProbeOutcome, needle: &str) {
    match outcome {
        ProbeOutcome::Missing { detail } => {
            assert!(
                detail.contains(needle),
                "detail {detail:?} lacks {needle:?}"
            )
        }
        other => panic!("expected Missing ({needle}), got {other:?}"),
    }
}

#[tokio::test]
async fn dns_record_with_the_value_is_found() {
    let dns = AuthoritativeDns::start(&["example.com"])
        .await
        .expect("dns");
    dns.set_txt("_dnsauth.www.example.com", &["unrelated", TOKEN])
        .await;
    let prober = dns_prober(&dns);

    assert_eq!(
        probe(&prober, ProbeMethod::Dns, "www.example.com").await,
        ProbeOutcome::Found
    );
}

#[tokio::test]
async fn dns_record_with_other_values_is_a_wrong_value() {
    let dns = AuthoritativeDns::start(&["example.com"])
        .await
        .expect("dns");
    dns.set_txt("_dnsauth.www.example.com", &["v=spf1 -all", "stale-token"])
        .await;
    let prober = dns_prober(&dns);

    match probe(&prober, ProbeMethod::Dns, "www.example.com").await {
        ProbeOutcome::WrongValue { mut seen } => {
            seen.sort();
            assert_eq!(seen, ["stale-token", "v=spf1 -all"]);
        }
        other => panic!("expected WrongValue, got {other:?}"),
    }
}

#[tokio::test]
async fn dns_value_published_late_is_found_on_the_next_probe() {
    let dns = AuthoritativeDns::start(&["example.com"])
        .await
        .expect("dns");
    let prober = dns_prober(&dns);
    let name = "_dnsauth.www.example.com";

    // Nothing there at all: NXDOMAIN (negative answers must not be cached).
    assert_missing(
        &probe(&prober, ProbeMethod::Dns, "www.example.com").await,
        "NXDOMAIN",
    );
    // A wrong value first, then the right one (positive answers must not be cached either).
    dns.set_txt(name, &["typo"]).await;
    assert!(matches!(
        probe(&prober, ProbeMethod::Dns, "www.example.com").await,
        ProbeOutcome::WrongValue { .. }
    ));
    dns.set_txt(name, &[TOKEN]).await;
    assert_eq!(
        probe(&prober, ProbeMethod::Dns, "www.example.com").await,
        ProbeOutcome::Found
    );
    // And gone again.
    dns.remove(name).await;
    assert_missing(
        &probe(&prober, ProbeMethod::Dns, "www.example.com").await,
        "NXDOMAIN",
    );
}

#[tokio::test]
async fn dns_long_values_and_large_answers_work_over_tcp() {
    let dns = AuthoritativeDns::start(&["example.com"])
        .await
        .expect("dns");
    // 300 bytes: two character-strings in one record, concatenated back into one value.
    let long = format!("{}{TOKEN}", "x".repeat(300 - TOKEN.len()));
    // Twenty 200-byte values make the answer far larger than 512 bytes: truncated over UDP,
    // so this only passes if the TCP retry on the same port works.
    let filler: Vec<String> = (0..20)
        .map(|i| format!("{i:02}{}", "f".repeat(198)))
        .collect();
    let mut values: Vec<&str> = filler.iter().map(String::as_str).collect();
    values.push(&long);
    dns.set_txt("_dnsauth.example.com", &values).await;
    let prober = dns_prober(&dns);

    let found = prober
        .probe(ProbeMethod::Dns, "example.com", &long)
        .await
        .expect("probe");
    assert_eq!(found, ProbeOutcome::Found);

    match probe(&prober, ProbeMethod::Dns, "example.com").await {
        ProbeOutcome::WrongValue { seen } => {
            assert_eq!(seen.len(), 10, "seen is capped");
            assert!(
                seen.iter().all(|v| v.chars().count() <= 129),
                "values are cut"
            );
        }
        other => panic!("expected WrongValue, got {other:?}"),
    }
}

#[tokio::test]
async fn dns_name_outside_the_servers_zones_is_a_transient_error() {
    let dns = AuthoritativeDns::start(&["example.com"])
        .await
        .expect("dns");
    let prober = dns_prober(&dns);

    // The server is not authoritative for example.net and refuses: not an answer about the
    // record, so the caller retries later rather than concluding it is missing.
    let error = prober
        .probe(ProbeMethod::Dns, "example.net", TOKEN)
        .await
        .expect_err("REFUSED is no answer");
    assert!(error.is_transient(), "{error}");
}

#[tokio::test]
async fn file_with_the_value_is_found() {
    let web = FileServer::start().await.expect("web");
    let prober = file_prober(&web, &["example.com", "www.example.com"]);
    web.set("example.com", &format!("{TOKEN}\r\n"));
    web.set(
        "www.example.com",
        &format!("# comment\n  {TOKEN}  \nother\n"),
    );

    assert_eq!(
        probe(&prober, ProbeMethod::File, "example.com").await,
        ProbeOutcome::Found
    );
    assert_eq!(
        probe(&prober, ProbeMethod::File, "www.example.com").await,
        ProbeOutcome::Found
    );
}

#[tokio::test]
async fn file_with_other_content_is_a_wrong_value() {
    let web = FileServer::start().await.expect("web");
    let prober = file_prober(&web, &["example.com"]);
    web.set("example.com", "old-token\n\nsomething else\n");

    assert_eq!(
        probe(&prober, ProbeMethod::File, "example.com").await,
        ProbeOutcome::WrongValue {
            seen: vec!["old-token".into(), "something else".into()]
        }
    );
}

#[tokio::test]
async fn file_not_there_is_missing_until_published() {
    let web = FileServer::start().await.expect("web");
    let prober = file_prober(&web, &["example.com"]);

    assert_missing(
        &probe(&prober, ProbeMethod::File, "example.com").await,
        "404",
    );
    web.set("example.com", TOKEN);
    assert_eq!(
        probe(&prober, ProbeMethod::File, "example.com").await,
        ProbeOutcome::Found
    );
    web.remove("example.com");
    assert_missing(
        &probe(&prober, ProbeMethod::File, "example.com").await,
        "404",
    );
}

#[tokio::test]
async fn file_server_not_listening_is_missing() {
    let web = FileServer::start().await.expect("web");
    let prober = file_prober(&web, &["example.com"]);
    drop(web);
    // Give the aborted server task a moment to close its listener.
    tokio::time::sleep(Duration::from_millis(50)).await;

    assert_missing(
        &probe(&prober, ProbeMethod::File, "example.com").await,
        "cannot connect",
    );
}

#[tokio::test]
async fn file_redirect_off_the_domain_is_not_followed() {
    let web = FileServer::start().await.expect("web");
    // evil.test is overridden to the same server and serves the token: following the redirect
    // would wrongly succeed.
    let prober = file_prober(&web, &["example.com", "evil.test"]);
    web.set("evil.test", TOKEN);
    web.redirect(
        "example.com",
        "http://evil.test/.well-known/pki-validation/fileauth.txt",
    );

    assert_missing(
        &probe(&prober, ProbeMethod::File, "example.com").await,
        "off-domain",
    );

    // Nor to https on the same domain.
    web.redirect(
        "example.com",
        "https://example.com/.well-known/pki-validation/fileauth.txt",
    );
    assert_missing(
        &probe(&prober, ProbeMethod::File, "example.com").await,
        "off-domain",
    );
}

#[tokio::test]
async fn file_redirect_loop_on_the_domain_stops() {
    let web = FileServer::start().await.expect("web");
    let prober = file_prober(&web, &["example.com"]);
    // On-domain, so it is followed, to itself, until the limit.
    web.redirect(
        "example.com",
        "/.well-known/pki-validation/fileauth.txt?again",
    );

    assert_missing(
        &probe(&prober, ProbeMethod::File, "example.com").await,
        "more than 5 redirects",
    );
}

#[tokio::test]
async fn file_larger_than_the_limit_is_refused() {
    let web = FileServer::start().await.expect("web");
    let prober = file_prober(&web, &["example.com"]);
    // The token is there, but only after 4 KiB of padding.
    web.set("example.com", &format!("{}\n{TOKEN}\n", "#".repeat(5000)));

    match probe(&prober, ProbeMethod::File, "example.com").await {
        ProbeOutcome::WrongValue { seen } => {
            assert!(seen[0].contains("larger than 4096 bytes"), "{seen:?}")
        }
        other => panic!("expected refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn wildcard_domains_probe_the_base_name() {
    let dns = AuthoritativeDns::start(&["example.com"])
        .await
        .expect("dns");
    let web = FileServer::start().await.expect("web");
    let mut config = ProbeConfig {
        dns_servers: vec![dns.addr()],
        timeout: Duration::from_secs(2),
        ..ProbeConfig::default()
    };
    config
        .http_overrides
        .insert("example.com".into(), web.addr());
    let prober = Prober::new(config).expect("prober");
    dns.set_txt("_dnsauth.example.com", &[TOKEN]).await;
    web.set("example.com", TOKEN);

    assert_eq!(
        probe(&prober, ProbeMethod::Dns, "*.example.com").await,
        ProbeOutcome::Found
    );
    assert_eq!(
        probe(&prober, ProbeMethod::File, "*.example.com").await,
        ProbeOutcome::Found
    );
}

/// A prober that asks `dns` and fetches files from `port` instead of 80, so a file server of
/// the test's own on a loopback address stands where a customer's web server would, and
/// connects to the networks in `allowed` although the address policy refuses them.
fn file_prober_via_dns(dns: &AuthoritativeDns, port: u16, allowed: &[&str]) -> Prober {
    Prober::new(ProbeConfig {
        dns_servers: vec![dns.addr()],
        http_port: port,
        allowed_networks: allowed
            .iter()
            .map(|net| net.parse().expect("network"))
            .collect(),
        timeout: Duration::from_secs(2),
        ..ProbeConfig::default()
    })
    .expect("prober")
}

/// A file server on `ip` (loopback) answering `TOKEN` for `domain`.
async fn serving(ip: &str, domain: &str) -> FileServer {
    let addr = std::net::SocketAddr::new(ip.parse().expect("loopback address"), 0);
    let web = FileServer::start_on(addr).await.expect("web");
    web.set(domain, TOKEN);
    web
}

#[tokio::test]
async fn ssrf_a_domain_resolving_to_loopback_is_refused_before_any_connection() {
    let dns = AuthoritativeDns::start(&["example.com"])
        .await
        .expect("dns");
    let web = serving("127.0.0.1", "inside.example.com").await;
    dns.set_a("inside.example.com", std::net::Ipv4Addr::LOCALHOST)
        .await;

    // The file server answers there: a prober the operator lets onto 127.0.0.1 finds the
    // value, through the same resolver and client. So the server counts what reaches it.
    let allowed = file_prober_via_dns(&dns, web.addr().port(), &["127.0.0.1/32"]);
    assert_eq!(
        probe(&allowed, ProbeMethod::File, "inside.example.com").await,
        ProbeOutcome::Found
    );
    let reached = web.connections();
    assert!(reached >= 1, "the allowed probe connected");

    // Without that, the address is refused before anything connects.
    let prober = file_prober_via_dns(&dns, web.addr().port(), &[]);
    let outcome = probe(&prober, ProbeMethod::File, "inside.example.com").await;
    assert_missing(&outcome, "127.0.0.1 (127.0.0.0/8 is loopback");
    assert_eq!(web.connections(), reached, "the refused probe connected");
}

#[tokio::test]
async fn ssrf_loopback_in_ipv6_forms_is_refused_before_any_connection() {
    let dns = AuthoritativeDns::start(&["example.com"])
        .await
        .expect("dns");
    // Both forms lead to this machine: ::1 itself, and 127.0.0.1 as IPv4-mapped ::ffff:.
    let v4 = serving("127.0.0.1", "six.example.com").await;
    let port = v4.addr().port();
    let v6 = FileServer::start_on(std::net::SocketAddr::new(
        std::net::Ipv6Addr::LOCALHOST.into(),
        port,
    ))
    .await
    .expect("the same port on ::1");
    v6.set("six.example.com", TOKEN);
    for address in ["::1", "::ffff:127.0.0.1"] {
        dns.set_aaaa("six.example.com", address.parse().expect("address"))
            .await;
        let prober = file_prober_via_dns(&dns, port, &[]);
        let outcome = probe(&prober, ProbeMethod::File, "six.example.com").await;
        assert_missing(&outcome, "does not connect to");
        assert_eq!(
            v4.connections() + v6.connections(),
            0,
            "{address}: a refused probe connected"
        );
    }
}

#[tokio::test]
async fn ssrf_a_redirect_to_an_ip_address_is_refused_before_any_connection() {
    let dns = AuthoritativeDns::start(&["example.com"])
        .await
        .expect("dns");
    // The domain's own server (on 127.0.0.2, which the operator allows) redirects to an IP
    // address where another server would answer with the value.
    let first = serving("127.0.0.2", "hop.example.com").await;
    let port = first.addr().port();
    let target = FileServer::start_on(std::net::SocketAddr::new(
        std::net::Ipv4Addr::LOCALHOST.into(),
        port,
    ))
    .await
    .expect("the same port on 127.0.0.1");
    target.set("127.0.0.1", TOKEN);
    dns.set_a("hop.example.com", "127.0.0.2".parse().expect("address"))
        .await;
    let prober = file_prober_via_dns(&dns, port, &["127.0.0.2/32"]);
    for location in [
        format!("http://127.0.0.1:{port}/.well-known/pki-validation/fileauth.txt"),
        format!("http://127.0x1:{port}/.well-known/pki-validation/fileauth.txt"),
        format!("http://2130706433:{port}/.well-known/pki-validation/fileauth.txt"),
    ] {
        first.redirect("hop.example.com", &location);
        let outcome = probe(&prober, ProbeMethod::File, "hop.example.com").await;
        assert_missing(&outcome, "not followed");
        assert!(
            first.connections() >= 1,
            "the domain's own server was asked"
        );
        assert_eq!(target.connections(), 0, "{location} was followed");
    }
}

#[tokio::test]
async fn ca1_a_domain_a_url_parser_reads_as_an_address_is_never_probed() {
    let web = FileServer::start().await.expect("web");
    let prober = Prober::new(ProbeConfig {
        http_port: web.addr().port(),
        timeout: Duration::from_secs(2),
        ..ProbeConfig::default()
    })
    .expect("prober");
    for domain in ["127.0x1", "0x7f.0x0.0x0.0x1", "2130706433", "127.1"] {
        let err = prober
            .probe(ProbeMethod::File, domain, TOKEN)
            .await
            .expect_err("refused");
        assert!(err.to_string().contains("IP address"), "{domain}: {err}");
    }
    assert_eq!(web.connections(), 0);
}
