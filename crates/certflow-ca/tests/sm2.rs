//! SM2 (DNSPod GM) certificates and CRLs, checked by openssl.

use std::path::Path;
use std::process::Command;

use certflow_ca::sm2ca::{Sm2Authority, generate_key_pem};
use certflow_ca::{RevokedEntry, SignedCrl};
use certflow_domain::{DomainName, RevocationReason, Timestamp};

fn now() -> Timestamp {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    Timestamp::from_unix_millis(millis)
}

fn openssl(args: &[&str]) -> (bool, String) {
    let output = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl is installed");
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

fn write(dir: &Path, name: &str, contents: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write");
    path.display().to_string()
}

#[test]
fn rev15_ca4_sm2_chain_and_shard_crl_verify_with_openssl() {
    let (ca, material) = Sm2Authority::generate("DNSPod", now()).expect("SM2 CA");
    let crl_url = "http://127.0.0.1:8080/crl/dnspod-sm2/2.crl";
    let dir = tempfile::tempdir().expect("dir");
    let root = write(dir.path(), "root.pem", &material.root_cert_pem);
    let intermediate = write(
        dir.path(),
        "intermediate.pem",
        &material.intermediate_cert_pem,
    );

    let domains = vec![DomainName::parse("gm.example.cn").expect("name")];
    let issue = || {
        let key = generate_key_pem().expect("SM2 key");
        ca.issue(
            &domains,
            &key,
            now(),
            now().plus(certflow_domain::Duration::days(90)),
            crl_url,
        )
        .expect("issued")
    };
    let revoked = issue();
    let kept = issue();
    let leaf = write(dir.path(), "leaf.pem", &revoked.pem);
    let (ok, text) = openssl(&[
        "verify",
        "-CAfile",
        &root,
        "-untrusted",
        &intermediate,
        &leaf,
    ]);
    assert!(ok, "{text}");
    let (_, text) = openssl(&["x509", "-noout", "-text", "-in", &leaf]);
    assert!(
        text.contains("SM2-with-SM3") || text.contains("SM2-SM3"),
        "{text}"
    );
    assert!(text.contains("DNS:gm.example.cn"), "{text}");
    assert!(text.contains(crl_url), "{text}");
    assert_eq!(revoked.public_key_sha256.len(), 64);

    let crl: SignedCrl = ca
        .crl(
            3,
            &[RevokedEntry {
                serial_hex: revoked.serial_hex.clone(),
                revoked_at: now(),
                reason: RevocationReason::KeyCompromise,
            }],
            now(),
            now().plus(certflow_domain::Duration::days(7)),
            crl_url,
        )
        .expect("CRL");
    let crl_file = write(dir.path(), "crl.pem", &crl.pem);
    // Checked against the CRL: the revoked certificate fails, the other passes.
    let verify = |certificate: &str| {
        openssl(&[
            "verify",
            "-crl_check",
            "-CAfile",
            &root,
            "-untrusted",
            &intermediate,
            "-CRLfile",
            &crl_file,
            certificate,
        ])
    };
    let (ok, text) = verify(&leaf);
    assert!(!ok && text.contains("certificate revoked"), "{text}");
    let other = write(dir.path(), "other.pem", &kept.pem);
    let (ok, text) = verify(&other);
    assert!(ok, "{text}");
    let (ok, text) = openssl(&["crl", "-noout", "-text", "-in", &crl_file]);
    assert!(ok && text.contains("Key Compromise"), "{text}");
    let number = text
        .split("X509v3 CRL Number:")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next());
    assert_eq!(number, Some("3"), "{text}");
    assert!(
        text.contains("Issuing Distribution Point: critical")
            && text.contains(&format!("URI:{crl_url}")),
        "CA-4: the shard names its own URL: {text}"
    );

    // Reloaded from its material, the CA keeps issuing under the same chain.
    let again = Sm2Authority::load(&material).expect("reloaded");
    assert_eq!(again.chain_pem(), ca.chain_pem());
}
