//! REV-15 and CA-4: revocations reach the shard of the issuing CA's CRL that each
//! certificate names, served over gRPC and plain HTTP.

use std::path::Path;
use std::time::Instant;

use certflow_ca::{CrlPartition, Shard};
use certflow_proto::v1::certificate_service_client::CertificateServiceClient;
use certflow_proto::v1::crl_service_client::CrlServiceClient;
use certflow_proto::v1::{
    Brand, Certificate, GetCrlRequest, ListCrlsRequest, RequestRevocationRequest, RevocationReason,
};
use certflow_testkit::Certflow;

use crate::support::{
    crl_listing, crl_request, distribution_point, dns_auto_dv, geotrust_crl_listing,
    geotrust_crls_listing, issue, issue_many, openssl, request_id, started_without_rate_limits,
};

fn write(dir: &Path, name: &str, contents: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write");
    path.display().to_string()
}

/// A plain HTTP client of the CRL server, as relying parties fetch CRLs.
fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("HTTP client")
}

/// Every CRL number of GeoTrust's partitions, by URL, as ListCrls and GetCrl tell them.
async fn geotrust_numbers(
    channel: &tonic::transport::Channel,
) -> std::collections::BTreeMap<String, u64> {
    let mut crls = CrlServiceClient::new(channel.clone());
    let urls = crls
        .list_crls(ListCrlsRequest {
            brand: Brand::Geotrust as i32,
            sm2: false,
        })
        .await
        .expect("ListCrls")
        .into_inner()
        .urls;
    let mut numbers = std::collections::BTreeMap::new();
    for url in urls {
        let path = url.split_once("/crl/").expect("a CRL URL").1;
        let partition = CrlPartition::from_path(&format!("crl/{path}")).expect("a partition");
        let crl = crls
            .get_crl(crl_request(partition))
            .await
            .expect("GetCrl")
            .into_inner();
        assert_eq!(crl.url, url, "GetCrl names the URL ListCrls gave");
        numbers.insert(url, crl.number);
    }
    numbers
}

/// Issues GeoTrust certificates until three share a shard and one is on another.
async fn issue_across_shards(
    certs: &mut CertificateServiceClient<certflow_testkit::Authed>,
) -> (Vec<Certificate>, Certificate) {
    let mut by_shard: std::collections::BTreeMap<u32, Vec<Certificate>> = Default::default();
    for n in 0..64 {
        let cert = issue(certs, dns_auto_dv("acme", &format!("crl{n}.example.com"))).await;
        let (_, partition) = distribution_point(&cert);
        let Shard::Numbered(shard) = partition.shard else {
            panic!("a new certificate names a shard");
        };
        by_shard.entry(shard).or_default().push(cert);
        let full = by_shard.values().find(|certs| certs.len() >= 3).cloned();
        let other = full.as_ref().and_then(|full| {
            by_shard
                .values()
                .find(|certs| certs[0].id != full[0].id)
                .map(|certs| certs[0].clone())
        });
        if let (Some(full), Some(other)) = (full, other) {
            return (full, other);
        }
    }
    panic!("64 certificates over 2 shards never filled one with 3 and the other with 1");
}

/// REV-15, CA-4: a revocation reaches the shard of the CRL the certificate names, and only
/// that shard is signed again; the shard is a complete CRL whose issuingDistributionPoint
/// is that URL, good for its own certificates and silent about another shard's; the
/// distribution point answers as CDNs expect.
#[tokio::test]
async fn rev15_ca4_a_revocation_reaches_the_shard_its_certificate_names() {
    let certflow = Certflow::start_with(|config| config.crl_shards = 2)
        .await
        .expect("start");
    let mut certs = certflow.certificates().await.expect("client");
    let mut revocations = certflow.revocations().await.expect("client");
    let channel = certflow.channel().await.expect("channel");
    let address = certflow.crl_address().expect("CRL server");
    let base = format!("http://{address}");
    let dir = tempfile::tempdir().expect("dir");

    let (shard_mates, elsewhere) = issue_across_shards(&mut certs).await;
    let (url, partition) = distribution_point(&shard_mates[0]);
    let (other_url, other_partition) = distribution_point(&elsewhere);
    let path = url.split_once("/crl/").expect("a CRL URL").1;
    let shard_url = format!("{base}/crl/{path}");
    let chain: Vec<&str> = shard_mates[0]
        .chain_pem
        .split_inclusive("-----END CERTIFICATE-----\n")
        .collect();
    let intermediate = write(dir.path(), "intermediate.pem", chain[0].as_bytes());
    let root = write(dir.path(), "root.pem", chain[1].as_bytes());
    let verify = |cert: &Certificate, crl_der: &[u8]| {
        let leaf = write(dir.path(), "leaf.pem", cert.pem.as_bytes());
        let der = write(dir.path(), "crl.der", crl_der);
        let (_, pem) = openssl(&["crl", "-inform", "DER", "-in", &der, "-outform", "PEM"]);
        let crl = write(dir.path(), "crl.pem", pem.as_bytes());
        openssl(&[
            "verify",
            "-crl_check",
            "-CAfile",
            &root,
            "-untrusted",
            &intermediate,
            "-CRLfile",
            &crl,
            &leaf,
        ])
    };

    // Before: the shard answers at once, and vouches for its certificate.
    let before = crl_listing(channel.clone(), crl_request(partition), 0)
        .await
        .expect("the shard's CRL");
    let (ok, text) = verify(&shard_mates[0], &before.der);
    assert!(ok, "good before revocation: {text}");
    // Every partition gets a CRL at start, in no particular order: wait for all three.
    let expected = vec![
        "http://127.0.0.1:8080/crl/geotrust.crl".to_string(),
        "http://127.0.0.1:8080/crl/geotrust/0.crl".to_string(),
        "http://127.0.0.1:8080/crl/geotrust/1.crl".to_string(),
    ];
    let numbers_before = certflow_testkit::eventually(std::time::Duration::from_secs(10), || {
        let channel = channel.clone();
        let expected = expected.clone();
        async move {
            let numbers = geotrust_numbers(&channel).await;
            (numbers.keys().cloned().collect::<Vec<_>>() == expected).then_some(numbers)
        }
    })
    .await
    .expect("the original CRL and both shards, as certificates name them");

    for (cert, reason) in [
        (&shard_mates[0], RevocationReason::KeyCompromise),
        (&shard_mates[1], RevocationReason::Unspecified),
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
    let crl = crl_listing(channel.clone(), crl_request(partition), 2)
        .await
        .expect("the shard lists both revocations");
    assert_eq!(crl.url, url);
    let seconds = |t: &Option<prost_types::Timestamp>| t.as_ref().map_or(0, |t| t.seconds);
    assert!(seconds(&crl.next_update) > seconds(&crl.this_update));
    assert!(seconds(&crl.next_update) - seconds(&crl.this_update) <= 10 * 24 * 3600);

    // Only the shard the revocations touched was signed again.
    let numbers_after = geotrust_numbers(&channel).await;
    for (crl_url, number) in &numbers_after {
        if *crl_url == url {
            assert!(*number > numbers_before[crl_url], "{crl_url} signed again");
        } else {
            assert_eq!(*number, numbers_before[crl_url], "{crl_url} untouched");
        }
    }

    // Over HTTP at the distribution point, with the validators a CDN needs.
    let client = http();
    let response = client.get(&shard_url).send().await.expect("GET");
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "application/pkix-crl");
    let etag = headers["etag"].to_str().expect("ETag").to_string();
    assert!(headers.contains_key("last-modified"), "{headers:?}");
    let cache = headers["cache-control"].to_str().expect("Cache-Control");
    let max_age: u64 = cache
        .split(',')
        .find_map(|d| d.trim().strip_prefix("max-age="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("a max-age in {cache}"));
    assert!(
        max_age <= (seconds(&crl.next_update) - seconds(&crl.this_update)) as u64,
        "{cache}"
    );
    let body = response.bytes().await.expect("body");
    assert_eq!(body.as_ref(), crl.der.as_slice());

    let der = write(dir.path(), "served.der", &body);
    let (ok, text) = openssl(&["crl", "-inform", "DER", "-in", &der, "-noout", "-text"]);
    assert!(ok, "{text}");
    let idp = text
        .split("X509v3 Issuing Distribution Point: critical")
        .nth(1)
        .unwrap_or_else(|| panic!("a critical issuingDistributionPoint: {text}"));
    assert!(idp.contains(&format!("URI:{url}")), "{text}");
    for cert in &shard_mates[..2] {
        assert!(text.contains(&cert.serial_number.to_uppercase()), "{text}");
    }
    assert_eq!(
        text.matches("Key Compromise").count(),
        1,
        "unspecified omits the reason: {text}"
    );

    // openssl as a relying party: revoked, revoked, good; and the other shard's
    // certificate is outside this CRL's scope, good only against its own shard.
    for (cert, revoked) in [
        (&shard_mates[0], true),
        (&shard_mates[1], true),
        (&shard_mates[2], false),
    ] {
        let (ok, text) = verify(cert, &body);
        assert_eq!(ok, !revoked, "{text}");
        if revoked {
            assert!(text.contains("certificate revoked"), "{text}");
        }
    }
    let (ok, text) = verify(&elsewhere, &body);
    assert!(
        !ok && text.contains("different CRL scope"),
        "another shard's CRL says nothing of it: {text}"
    );
    let own = crl_listing(channel.clone(), crl_request(other_partition), 0)
        .await
        .expect("the other shard");
    let (ok, text) = verify(&elsewhere, &own.der);
    assert!(ok, "{text}");

    // The same CRL again: 304 for the copy the client holds; HEAD without the body.
    let again = client
        .get(&shard_url)
        .header("if-none-match", &etag)
        .send()
        .await
        .expect("GET");
    assert_eq!(again.status(), 304);
    assert_eq!(again.headers()["etag"], etag.as_str());
    assert!(again.bytes().await.expect("body").is_empty());
    let head = client.head(&shard_url).send().await.expect("HEAD");
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-type"], "application/pkix-crl");
    assert!(head.bytes().await.expect("body").is_empty());

    // CCADB's list of the issuer's CRLs; names that are no CRL are 404.
    let list: Vec<String> = serde_json::from_slice(
        &client
            .get(format!("{base}/crl/geotrust.json"))
            .send()
            .await
            .expect("GET")
            .bytes()
            .await
            .expect("body"),
    )
    .expect("a JSON array");
    assert!(list.contains(&url) && list.contains(&other_url), "{list:?}");
    assert_eq!(list.len(), 3, "{list:?}");
    for missing in [
        "/crl/nobody.crl",
        "/crl/geotrust/2.crl",
        "/crl/geotrust/01.crl",
        "/crl/geotrust/x.crl",
        "/crl/nobody.json",
    ] {
        let response = client
            .get(format!("{base}{missing}"))
            .send()
            .await
            .expect("GET");
        assert_eq!(response.status(), 404, "{missing}");
    }
    let refused = CrlServiceClient::new(channel.clone())
        .get_crl(GetCrlRequest {
            brand: Brand::Geotrust as i32,
            sm2: false,
            shard: Some(2),
        })
        .await
        .expect_err("no certificate names shard 2");
    assert_eq!(refused.code(), tonic::Code::NotFound);
}

/// Certificates signed before partitioning name the issuer's original URL: it still
/// answers, as a partition of its own whose issuingDistributionPoint is that URL.
#[tokio::test]
async fn ca4_the_original_distribution_point_still_answers() {
    let certflow = Certflow::start().await.expect("start");
    let address = certflow.crl_address().expect("CRL server");
    let channel = certflow.channel().await.expect("channel");
    geotrust_crl_listing(channel, 0)
        .await
        .expect("the original CRL");
    let response = http()
        .get(format!("http://{address}/crl/geotrust.crl"))
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), 200);
    let dir = tempfile::tempdir().expect("dir");
    let der = write(
        dir.path(),
        "original.der",
        &response.bytes().await.expect("body"),
    );
    let (ok, text) = openssl(&["crl", "-inform", "DER", "-in", &der, "-noout", "-text"]);
    assert!(
        ok && text.contains("URI:http://127.0.0.1:8080/crl/geotrust.crl"),
        "{text}"
    );
}

#[tokio::test]
async fn rev15_ten_thousand_revocations_make_few_crls() {
    const COUNT: usize = 10_000;
    const WORKERS: usize = 32;
    let certflow = started_without_rate_limits().await;
    let certs = certflow.certificates().await.expect("client");
    let revocations = certflow.revocations().await.expect("client");
    let channel = certflow.channel().await.expect("channel");

    let started = Instant::now();
    let ids = issue_many(&certs, "acme", "b", COUNT, WORKERS).await;
    let issuing = started.elapsed();
    let before: std::collections::BTreeMap<String, u64> = geotrust_crls_listing(channel.clone(), 0)
        .await
        .expect("GeoTrust's CRLs")
        .into_iter()
        .map(|crl| (crl.url, crl.number))
        .collect();

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
    let crls = geotrust_crls_listing(channel, COUNT as u64)
        .await
        .unwrap_or_else(|| panic!("GeoTrust's CRLs never listed {COUNT} certificates"));
    let settled = started.elapsed();
    // New certificates go to the shards; the original CRL holds none of them.
    let (original, shards): (Vec<_>, Vec<_>) = crls
        .into_iter()
        .partition(|crl| crl.url.ends_with("/geotrust.crl"));
    assert_eq!(original.len(), 1);
    assert_eq!(original[0].entries, 0);
    assert_eq!(shards.len(), certd::DEFAULT_CRL_SHARDS as usize);
    let regenerations: Vec<u64> = shards
        .iter()
        .map(|crl| crl.number - before.get(&crl.url).copied().unwrap_or(0))
        .collect();
    let sizes: Vec<usize> = shards.iter().map(|crl| crl.der.len()).collect();
    println!(
        "{COUNT} certificates issued in {issuing:.1?}, revoked in {revoking:.1?}; {} \
         shards were signed {regenerations:?} times and hold {:?} entries in {sizes:?} bytes",
        shards.len(),
        shards.iter().map(|crl| crl.entries).collect::<Vec<_>>(),
    );
    // Debounced: at most one CRL per shard per second from the first revocation until the
    // shards list them all, never one per revocation, however slow the machine.
    let bound = settled.as_secs() + 3;
    let total: u64 = regenerations.iter().sum();
    assert!(
        regenerations.iter().all(|&n| n <= bound) && (total as usize) < COUNT / 10,
        "{regenerations:?} regenerations for {COUNT} revocations in {settled:.1?}"
    );
    // Every shard holds some of them, and each is a CRL openssl reads whole.
    let dir = tempfile::tempdir().expect("dir");
    let mut serials = 0;
    for (shard, crl) in shards.iter().enumerate() {
        assert!(crl.entries > 0, "shard {shard} holds none of {COUNT}");
        let der = write(dir.path(), "crl.der", &crl.der);
        let (ok, text) = openssl(&["crl", "-inform", "DER", "-in", &der, "-noout", "-text"]);
        assert!(ok);
        serials += text.matches("Serial Number:").count();
    }
    assert_eq!(serials, COUNT);
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
    let first = crate::support::geotrust_crl_with(&certflow, 0).await;
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
