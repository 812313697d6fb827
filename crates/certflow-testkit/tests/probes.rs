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

#[tokio::test]
async fn file_is_never_fetched_from_a_private_address_the_domain_resolves_to() {
    let dns = AuthoritativeDns::start(&["example.com"])
        .await
        .expect("dns");
    let web = FileServer::start().await.expect("web");
    web.set("inside.example.com", TOKEN);
    // The domain points at loopback, where a file server does answer; without an operator
    // override, the probe must not go there.
    dns.set_a("inside.example.com", std::net::Ipv4Addr::LOCALHOST)
        .await;
    let prober = dns_prober(&dns);
    let outcome = prober
        .probe(ProbeMethod::File, "inside.example.com", TOKEN)
        .await;
    match outcome {
        Ok(ProbeOutcome::Found) => panic!("fetched from a loopback address"),
        Ok(ProbeOutcome::Missing { detail }) => {
            assert!(detail.contains("public address"), "{detail}")
        }
        Ok(other) => panic!("unexpected {other:?}"),
        Err(err) => assert!(err.to_string().contains("public address"), "{err}"),
    }
}
