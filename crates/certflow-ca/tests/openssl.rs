//! The built-in CA's certificates and CRLs, checked by `openssl` as a relying party would.

use std::path::{Path, PathBuf};
use std::process::Command;

use certflow_ca::{
    BuiltinCa, CaAlgorithm, CaError, CaMaterial, CertificateAuthority, CrlPartition, IssueRequest,
    RevokedEntry, Shard, SubjectKey, keys,
};
use certflow_domain::{Brand, DomainName, KeyAlgorithm, RevocationReason, Timestamp};

const DAY_MS: i64 = 86_400_000;

fn now() -> Timestamp {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    Timestamp::from_unix_millis(millis)
}

fn names(list: &[&str]) -> Vec<DomainName> {
    list.iter()
        .map(|n| DomainName::parse(n).expect("valid name"))
        .collect()
}

fn write(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write");
    path
}

fn openssl(args: &[&str]) -> (bool, String) {
    let output = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl is installed");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

struct Fixture {
    ca: BuiltinCa,
    material: CaMaterial,
    dir: tempfile::TempDir,
}

fn fixture(algorithm: CaAlgorithm) -> Fixture {
    let (ca, mut materials) = BuiltinCa::generate(
        &[Brand::GeoTrust],
        algorithm,
        "http://127.0.0.1:8080",
        now(),
    )
    .expect("CA generated");
    Fixture {
        ca,
        material: materials.remove(0),
        dir: tempfile::tempdir().expect("dir"),
    }
}

impl Fixture {
    fn verify(&self, leaf_pem: &str, crl_pem: Option<&str>) -> (bool, String) {
        let root = write(self.dir.path(), "root.pem", &self.material.root_cert_pem);
        let intermediate = write(
            self.dir.path(),
            "intermediate.pem",
            &self.material.intermediate_cert_pem,
        );
        let leaf = write(self.dir.path(), "leaf.pem", leaf_pem);
        let mut args = vec![
            "verify".to_string(),
            "-CAfile".into(),
            root.display().to_string(),
            "-untrusted".into(),
            intermediate.display().to_string(),
        ];
        if let Some(crl) = crl_pem {
            let crl = write(self.dir.path(), "crl.pem", crl);
            args.extend([
                "-crl_check".into(),
                "-CRLfile".into(),
                crl.display().to_string(),
            ]);
        }
        args.push(leaf.display().to_string());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        openssl(&args)
    }
}

#[test]
fn issued_certificates_verify_against_root_and_intermediate() {
    for algorithm in [CaAlgorithm::Ecc, CaAlgorithm::Rsa] {
        let fx = fixture(algorithm);
        for key_algorithm in [
            KeyAlgorithm::EccP256,
            KeyAlgorithm::EccP384,
            KeyAlgorithm::Rsa2048,
        ] {
            let key = keys::generate(key_algorithm).expect("key");
            let domains = names(&["www.example.com", "example.com"]);
            let issued = fx
                .ca
                .issue(&IssueRequest {
                    brand: Brand::GeoTrust,
                    domains: &domains,
                    key: SubjectKey::Generated(&key),
                    not_before: now(),
                    not_after: now().plus(certflow_domain::Duration::days(90)),
                    crl_shard: 5,
                })
                .expect("issued");
            let (ok, text) = fx.verify(&issued.pem, None);
            assert!(ok, "{algorithm:?}/{key_algorithm:?}: {text}");
            assert_eq!(issued.public_key_sha256.len(), 64);

            let leaf = write(fx.dir.path(), "leaf.pem", &issued.pem);
            let (_, text) = openssl(&[
                "x509",
                "-noout",
                "-text",
                "-in",
                &leaf.display().to_string(),
            ]);
            assert!(
                text.contains("DNS:www.example.com, DNS:example.com"),
                "{text}"
            );
            assert!(
                text.contains("http://127.0.0.1:8080/crl/geotrust/5.crl"),
                "{text}"
            );
            assert!(text.contains("TLS Web Server Authentication"), "{text}");
        }
    }
}

#[test]
fn a_csr_key_is_certified_and_a_forged_csr_refused() {
    let fx = fixture(CaAlgorithm::Ecc);
    let key = rcgen::KeyPair::generate().expect("customer key");
    let csr = rcgen::CertificateParams::new(vec!["shop.example.com".to_string()])
        .expect("params")
        .serialize_request(&key)
        .expect("csr")
        .pem()
        .expect("pem");
    let domains = names(&["shop.example.com"]);
    let request = |csr: &str| {
        fx.ca.issue(&IssueRequest {
            brand: Brand::GeoTrust,
            domains: &domains,
            key: SubjectKey::Csr(csr),
            not_before: now(),
            not_after: now().plus(certflow_domain::Duration::days(30)),
            crl_shard: 0,
        })
    };
    let issued = request(&csr).expect("issued from CSR");
    assert!(fx.verify(&issued.pem, None).0);

    // Flip a bit inside the signed part of the request: the self-signature fails.
    let der = pem_body(&csr);
    let mut tampered = der.clone();
    tampered[40] ^= 0x01;
    let forged = to_pem("CERTIFICATE REQUEST", &tampered);
    assert!(matches!(request(&forged), Err(CaError::InvalidCsr(_))));
    assert!(matches!(request("not a csr"), Err(CaError::InvalidCsr(_))));
}

#[test]
fn rev15_ca4_a_shard_lists_its_revocations_with_reasons_and_names_its_own_url() {
    let fx = fixture(CaAlgorithm::Ecc);
    let issue = |domain: &str, crl_shard: u32| {
        let key = keys::generate(KeyAlgorithm::EccP256).expect("key");
        let domains = names(&[domain]);
        fx.ca
            .issue(&IssueRequest {
                brand: Brand::GeoTrust,
                domains: &domains,
                key: SubjectKey::Generated(&key),
                not_before: now(),
                not_after: now().plus(certflow_domain::Duration::days(90)),
                crl_shard,
            })
            .expect("issued")
    };
    let compromised = issue("a.example.com", 3);
    let unspecified = issue("b.example.com", 3);
    let untouched = issue("c.example.com", 3);
    let elsewhere = issue("d.example.com", 4);
    let revoked_at = now();
    let shard = |n: u32| CrlPartition {
        issuer: certflow_ca::IssuerId {
            brand: Brand::GeoTrust,
            sm2: false,
        },
        shard: Shard::Numbered(n),
    };
    let crl = fx
        .ca
        .crl(
            shard(3),
            7,
            &[
                RevokedEntry {
                    serial_hex: compromised.serial_hex.clone(),
                    revoked_at,
                    reason: RevocationReason::KeyCompromise,
                },
                RevokedEntry {
                    serial_hex: unspecified.serial_hex.clone(),
                    revoked_at,
                    reason: RevocationReason::Unspecified,
                },
            ],
            revoked_at,
            revoked_at.plus(certflow_domain::Duration::millis(7 * DAY_MS)),
        )
        .expect("CRL signed");

    let (ok, text) = fx.verify(&compromised.pem, Some(&crl.pem));
    assert!(!ok, "a revoked certificate must not verify");
    assert!(text.contains("certificate revoked"), "{text}");
    let (ok, text) = fx.verify(&untouched.pem, Some(&crl.pem));
    assert!(ok, "{text}");
    // Another shard's certificate is out of this CRL's scope: no answer, not "good".
    let (ok, text) = fx.verify(&elsewhere.pem, Some(&crl.pem));
    assert!(!ok, "a CRL must not vouch for another shard's certificate");
    assert!(text.contains("different CRL scope"), "{text}");

    let crl_file = write(fx.dir.path(), "list.crl", &crl.pem);
    let (ok, text) = openssl(&[
        "crl",
        "-noout",
        "-text",
        "-in",
        &crl_file.display().to_string(),
    ]);
    assert!(ok, "{text}");
    let number = text
        .split("X509v3 CRL Number:")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next());
    assert_eq!(number, Some("7"), "{text}");
    assert!(text.contains("Key Compromise"), "{text}");
    assert_eq!(
        text.matches("CRL Reason Code").count(),
        1,
        "unspecified omits the reason: {text}"
    );
    assert!(text.contains("Next Update"), "{text}");
    let serial = compromised.serial_hex.to_uppercase();
    assert!(text.contains(&serial), "{serial} in {text}");
    let idp = text
        .split("X509v3 Issuing Distribution Point: critical")
        .nth(1)
        .unwrap_or_else(|| panic!("a critical issuingDistributionPoint: {text}"));
    assert!(
        idp.contains("URI:http://127.0.0.1:8080/crl/geotrust/3.crl")
            && idp.contains("Only User Certificates"),
        "{text}"
    );
}

fn pem_body(pem: &str) -> Vec<u8> {
    let (_, parsed) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).expect("pem");
    parsed.contents
}

fn to_pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    format!("-----BEGIN {label}-----\n{body}\n-----END {label}-----\n")
}

#[test]
fn password_protected_keys_open_with_openssl_and_only_with_the_password() {
    let dir = tempfile::tempdir().expect("dir");
    for algorithm in [KeyAlgorithm::EccP256, KeyAlgorithm::Rsa2048] {
        let key = keys::generate(algorithm).expect("key");
        let encrypted =
            keys::encrypt_with_password(&key, "correct horse battery").expect("encrypted");
        assert!(encrypted.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
        let body: String = key
            .private_key_pem()
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        assert!(
            !encrypted.contains(&body[..40]),
            "no plaintext key material"
        );
        let path = write(dir.path(), "key.pem", &encrypted);
        let path = path.display().to_string();
        let (ok, text) = openssl(&[
            "pkey",
            "-in",
            &path,
            "-passin",
            "pass:correct horse battery",
            "-noout",
        ]);
        assert!(ok, "{algorithm:?}: {text}");
        let (ok, _) = openssl(&["pkey", "-in", &path, "-passin", "pass:wrong", "-noout"]);
        assert!(!ok, "a wrong password does not open the key");
    }
}
