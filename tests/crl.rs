//! REV-15: revocations reach the issuing CA's CRL, served over gRPC and plain HTTP.

use std::path::Path;
use std::time::Instant;

use certflow_proto::v1::{Certificate, RequestRevocationRequest, RevocationReason};
use certflow_testkit::Certflow;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{
    dns_auto_dv, geotrust_crl_with, issue, issue_many, openssl, request_id, started,
    started_without_rate_limits,
};

/// GET over HTTP/1.0 with nothing but a socket: the response body.
async fn http_get(address: std::net::SocketAddr, path: &str) -> (String, Vec<u8>) {
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
        .await
        .expect("request");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.expect("response");
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("headers end");
    (
        String::from_utf8_lossy(&response[..split]).to_string(),
        response[split + 4..].to_vec(),
    )
}

fn write(dir: &Path, name: &str, contents: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write");
    path.display().to_string()
}

#[tokio::test]
async fn rev15_revoked_certificates_are_on_the_signed_crl() {
    let (certflow, mut certs, mut revocations) = started().await;
    let mut issued: Vec<Certificate> = Vec::new();
    for n in 0..3 {
        issued.push(
            issue(
                &mut certs,
                dns_auto_dv("acme", &format!("crl{n}.example.com")),
            )
            .await,
        );
    }
    for (cert, reason) in [
        (&issued[0], RevocationReason::KeyCompromise),
        (&issued[1], RevocationReason::Unspecified),
    ] {
        revocations
            .request_revocation(RequestRevocationRequest {
                request_id: request_id(),
                certificate_id: cert.id.clone(),
                reason: reason as i32,
                description: String::new(),
                validation_method: 0,
            })
            .await
            .expect("revoked");
    }
    let crl = geotrust_crl_with(&certflow, 2).await;
    assert!(crl.number >= 1);
    let seconds = |t: &Option<prost_types::Timestamp>| t.as_ref().map(|t| t.seconds);
    assert!(seconds(&crl.next_update) > seconds(&crl.this_update));

    let dir = tempfile::tempdir().expect("dir");
    let der = write(dir.path(), "crl.der", &crl.der);
    let (ok, text) = openssl(&["crl", "-inform", "DER", "-in", &der, "-noout", "-text"]);
    assert!(ok, "{text}");
    assert!(
        text.contains(&issued[0].serial_number.to_uppercase()),
        "{text}"
    );
    assert!(
        text.contains(&issued[1].serial_number.to_uppercase()),
        "{text}"
    );
    assert_eq!(
        text.matches("Key Compromise").count(),
        1,
        "unspecified omits the reason: {text}"
    );
    let (_, pem) = openssl(&["crl", "-inform", "DER", "-in", &der, "-outform", "PEM"]);
    let crl_pem = write(dir.path(), "crl.pem", pem.as_bytes());

    let chain: Vec<&str> = issued[0]
        .chain_pem
        .split_inclusive("-----END CERTIFICATE-----\n")
        .collect();
    let intermediate = write(dir.path(), "intermediate.pem", chain[0].as_bytes());
    let root = write(dir.path(), "root.pem", chain[1].as_bytes());
    for (cert, revoked) in [(&issued[0], true), (&issued[1], true), (&issued[2], false)] {
        let leaf = write(dir.path(), "leaf.pem", cert.pem.as_bytes());
        let (ok, text) = openssl(&[
            "verify",
            "-crl_check",
            "-CAfile",
            &root,
            "-untrusted",
            &intermediate,
            "-CRLfile",
            &crl_pem,
            &leaf,
        ]);
        assert_eq!(ok, !revoked, "{text}");
        if revoked {
            assert!(text.contains("certificate revoked"), "{text}");
        }
    }

    // The same CRL at the distribution point, over plain HTTP.
    let address = certflow.crl_address().expect("CRL server");
    let (head, body) = http_get(address, "/crl/geotrust.crl").await;
    assert!(
        head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
        "{head}"
    );
    assert!(
        head.to_ascii_lowercase().contains("application/pkix-crl"),
        "{head}"
    );
    let served = write(dir.path(), "served.der", &body);
    let (ok, text) = openssl(&["crl", "-inform", "DER", "-in", &served, "-noout", "-text"]);
    assert!(
        ok && text.contains(&issued[0].serial_number.to_uppercase()),
        "{text}"
    );
    let (head, _) = http_get(address, "/crl/nobody.crl").await;
    assert!(head.contains(" 404"), "{head}");
}

#[tokio::test]
async fn rev15_ten_thousand_revocations_make_few_crls() {
    const COUNT: usize = 10_000;
    const WORKERS: usize = 32;
    let certflow = started_without_rate_limits().await;
    let certs = certflow.certificates().await.expect("client");
    let revocations = certflow.revocations().await.expect("client");

    let started = Instant::now();
    let ids = issue_many(&certs, "acme", "b", COUNT, WORKERS).await;
    let issuing = started.elapsed();
    let before = geotrust_crl_with(&certflow, 0).await.number;

    let started = Instant::now();
    let workers: Vec<_> = ids
        .chunks(COUNT.div_ceil(WORKERS))
        .map(<[String]>::to_vec)
        .map(|ids| {
            let mut revocations = revocations.clone();
            tokio::spawn(async move {
                for id in ids {
                    revocations
                        .request_revocation(RequestRevocationRequest {
                            request_id: request_id(),
                            certificate_id: id,
                            reason: RevocationReason::Superseded as i32,
                            description: String::new(),
                            validation_method: 0,
                        })
                        .await
                        .expect("revoked");
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.expect("worker");
    }
    let revoking = started.elapsed();
    let crl = geotrust_crl_with(&certflow, COUNT as u64).await;
    let settled = started.elapsed();
    let regenerations = crl.number - before;
    println!(
        "{COUNT} certificates issued in {issuing:.1?}, revoked in {revoking:.1?}; the CRL was \
         regenerated {regenerations} times and lists {} entries in {} bytes",
        crl.entries,
        crl.der.len()
    );
    // Debounced: at most one CRL per second from the first revocation until the CRL lists
    // them all, never one per revocation, however slow the machine.
    let bound = settled.as_secs() + 3;
    assert!(
        regenerations <= bound && (regenerations as usize) < COUNT / 10,
        "{regenerations} regenerations for {COUNT} revocations in {settled:.1?}"
    );
    let dir = tempfile::tempdir().expect("dir");
    let der = write(dir.path(), "crl.der", &crl.der);
    let (ok, text) = openssl(&["crl", "-inform", "DER", "-in", &der, "-noout", "-text"]);
    assert!(ok);
    assert_eq!(text.matches("Serial Number:").count(), COUNT);
}

/// CA-4: a CRL is signed again when it is as old as the refresh interval, though nothing
/// changed, so none goes stale; its `nextUpdate` stays within 10 days of `thisUpdate`.
#[tokio::test]
async fn ca4_a_crl_is_signed_again_when_nothing_changes() {
    let certflow = Certflow::start_with(|config| {
        config.crl.refresh = std::time::Duration::from_secs(1);
    })
    .await
    .expect("start");
    let first = geotrust_crl_with(&certflow, 0).await;
    let seconds = |t: &Option<prost_types::Timestamp>| t.as_ref().map_or(0, |t| t.seconds);
    assert!(
        seconds(&first.next_update) - seconds(&first.this_update) <= 10 * 24 * 3600,
        "nextUpdate within 10 days of thisUpdate"
    );
    let channel = certflow.channel().await.expect("channel");
    let again = certflow_testkit::eventually(std::time::Duration::from_secs(20), || {
        let channel = channel.clone();
        async move {
            let crl = crate::support::geotrust_crl_listing(channel, 0).await?;
            (crl.number > first.number).then_some(crl)
        }
    })
    .await
    .expect("a newer CRL with nothing changed");
    assert_eq!(again.entries, 0);
    assert!(seconds(&again.this_update) >= seconds(&first.this_update));
    assert!(seconds(&again.next_update) >= seconds(&first.next_update));
}
