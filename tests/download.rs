//! DL-1: downloads a server can use, checked with openssl (and keytool where present).

use std::path::Path;
use std::process::Command;

use certflow_proto::v1::certificate_service_client::CertificateServiceClient;
use certflow_proto::v1::{
    DownloadCertificateRequest, DownloadFormat, DownloadedFile, IssueCertificateRequest,
    RequestRevocationRequest, RevocationReason,
};
use certflow_testkit::{Authed, Certflow};
use tonic::Code;

use crate::support::{self, authority, dns_auto_dv, issue, openssl, reason, request_id, started};

fn save(dir: &Path, file: &DownloadedFile) -> String {
    let path = dir.join(&file.name);
    std::fs::write(&path, &file.content).expect("write");
    path.display().to_string()
}

async fn download(
    certs: &mut CertificateServiceClient<Authed>,
    id: &str,
    format: DownloadFormat,
    password: &str,
) -> Result<Vec<DownloadedFile>, tonic::Status> {
    certs
        .download_certificate(DownloadCertificateRequest {
            id: id.into(),
            format: format as i32,
            password: password.into(),
        })
        .await
        .map(|r| r.into_inner().files)
}

#[tokio::test]
async fn dl1_pem_files_make_a_working_server_bundle() {
    let certflow = Certflow::start().await.expect("start");
    let mut certs = certflow.certificates().await.expect("client");
    let cert = issue(&mut certs, dns_auto_dv("acme", "www.example.com")).await;
    let files = download(&mut certs, &cert.id, DownloadFormat::Pem, "")
        .await
        .expect("downloaded");
    let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "www.example.com.crt",
            "www.example.com.chain.crt",
            "www.example.com.fullchain.crt",
            "www.example.com.key"
        ]
    );
    let dir = tempfile::tempdir().expect("dir");
    let paths: Vec<String> = files.iter().map(|f| save(dir.path(), f)).collect();
    let (ok, text) = openssl(&["verify", "-partial_chain", "-CAfile", &paths[1], &paths[0]]);
    assert!(ok, "{text}");
    // The key is the certificate's.
    let (_, from_key) = openssl(&["pkey", "-in", &paths[3], "-pubout"]);
    let (_, from_cert) = openssl(&["x509", "-in", &paths[0], "-noout", "-pubkey"]);
    assert!(from_key.contains("BEGIN PUBLIC KEY"));
    assert_eq!(from_key, from_cert);
}

#[tokio::test]
async fn dl1_pkcs12_opens_with_its_password() {
    let certflow = Certflow::start().await.expect("start");
    let mut certs = certflow.certificates().await.expect("client");
    let cert = issue(&mut certs, dns_auto_dv("acme", "iis.example.com")).await;
    let err = download(&mut certs, &cert.id, DownloadFormat::Pkcs12, "")
        .await
        .expect_err("a password is required");
    assert_eq!(err.code(), Code::InvalidArgument);
    let files = download(&mut certs, &cert.id, DownloadFormat::Pkcs12, "pfx-password")
        .await
        .expect("downloaded");
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].content_type, "application/x-pkcs12");
    let dir = tempfile::tempdir().expect("dir");
    let p12 = save(dir.path(), &files[0]);
    let (ok, text) = openssl(&[
        "pkcs12",
        "-in",
        &p12,
        "-passin",
        "pass:pfx-password",
        "-nokeys",
    ]);
    assert!(ok, "{text}");
    assert_eq!(
        text.matches("BEGIN CERTIFICATE").count(),
        3,
        "leaf, intermediate, root"
    );
    let (ok, text) = openssl(&[
        "pkcs12",
        "-in",
        &p12,
        "-passin",
        "pass:pfx-password",
        "-nocerts",
        "-nodes",
    ]);
    assert!(ok && text.contains("PRIVATE KEY"), "{text}");
    let (ok, _) = openssl(&["pkcs12", "-in", &p12, "-passin", "pass:wrong", "-nokeys"]);
    assert!(!ok, "a wrong password does not open it");
    // Tomcat reads the same archive as a PKCS12 keystore.
    if let Ok(output) = Command::new("keytool")
        .args([
            "-list",
            "-storetype",
            "PKCS12",
            "-keystore",
            &p12,
            "-storepass",
            "pfx-password",
        ])
        .output()
    {
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && text.contains("PrivateKeyEntry"),
            "{text}"
        );
    }
}

#[tokio::test]
async fn dl1_a_password_protected_key_needs_its_password() {
    let certflow = Certflow::start().await.expect("start");
    let mut certs = certflow.certificates().await.expect("client");
    let cert = issue(
        &mut certs,
        IssueCertificateRequest {
            key_password: "issued-with-this".into(),
            ..dns_auto_dv("acme", "locked.example.com")
        },
    )
    .await;
    let files = download(&mut certs, &cert.id, DownloadFormat::Pem, "")
        .await
        .expect("PEM");
    let key = files
        .iter()
        .find(|f| f.name.ends_with(".key"))
        .expect("key");
    assert!(String::from_utf8_lossy(&key.content).contains("ENCRYPTED PRIVATE KEY"));
    let err = download(&mut certs, &cert.id, DownloadFormat::Pkcs12, "not-it")
        .await
        .expect_err("wrong password");
    assert_eq!(reason(&err), "WRONG_KEY_PASSWORD");
    download(
        &mut certs,
        &cert.id,
        DownloadFormat::Pkcs12,
        "issued-with-this",
    )
    .await
    .expect("the issuing password opens it");
}

#[tokio::test]
async fn rev8_no_download_after_a_revocation_request_and_gen3_not_for_others() {
    let (certflow, mut certs, mut revocations) = started().await;
    let cert = issue(&mut certs, dns_auto_dv("acme", "gone.example.com")).await;
    let other = certflow.token("bob", "globex", &["customer"]);
    let mut bob = certflow
        .certificates_as(Some(&other))
        .await
        .expect("client");
    let err = download(&mut bob, &cert.id, DownloadFormat::Pem, "")
        .await
        .expect_err("another account");
    assert_eq!(err.code(), Code::NotFound);

    revocations
        .request_revocation(RequestRevocationRequest {
            request_id: request_id(),
            certificate_id: cert.id.clone(),
            reason: RevocationReason::KeyCompromise as i32,
            description: String::new(),
            validation_method: 0,
        })
        .await
        .expect("revoked");
    let err = download(&mut certs, &cert.id, DownloadFormat::Pem, "")
        .await
        .expect_err("refused under REV-8");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(reason(&err), "REVOCATION_REQUESTED");
}

/// A real TLS handshake: `openssl s_server` serves the downloaded bundle, `openssl s_client`
/// checks it against the root and the CA's CRL.
#[tokio::test]
async fn rev15_a_tls_client_checking_the_crl_accepts_then_rejects() {
    use std::io::Write as _;
    use std::net::TcpListener;
    use std::process::Stdio;

    let (certflow, mut certs, mut revocations) = started().await;
    let cert = issue(&mut certs, dns_auto_dv("acme", "tls.example.com")).await;
    let files = download(&mut certs, &cert.id, DownloadFormat::Pem, "")
        .await
        .expect("downloaded");
    let dir = tempfile::tempdir().expect("dir");
    let paths: Vec<String> = files.iter().map(|f| save(dir.path(), f)).collect();
    let (leaf, chain_file, key) = (&paths[0], &paths[1], &paths[3]);
    let root = dir.path().join("root.pem");
    let chain = String::from_utf8_lossy(&files[1].content).to_string();
    let root_pem = chain
        .split_inclusive("-----END CERTIFICATE-----\n")
        .nth(1)
        .expect("root in chain");
    std::fs::write(&root, root_pem).expect("write");
    let root = root.display().to_string();

    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    let mut server = Command::new("openssl")
        .args(["s_server", "-quiet", "-naccept", "2", "-accept"])
        .arg(port.to_string())
        .args(["-cert", leaf, "-cert_chain", chain_file, "-key", key])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("s_server");
    let crl_pem = |der: &[u8]| {
        let der_path = dir.path().join("crl.der");
        std::fs::write(&der_path, der).expect("write");
        let (ok, pem) = openssl(&[
            "crl",
            "-inform",
            "DER",
            "-in",
            &der_path.display().to_string(),
            "-outform",
            "PEM",
        ]);
        assert!(ok, "{pem}");
        let path = dir.path().join("crl.pem");
        std::fs::write(&path, pem).expect("write");
        path.display().to_string()
    };
    let handshake = |crl: &str| {
        let mut client = Command::new("openssl")
            .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
            .args([
                "-servername",
                "tls.example.com",
                "-verify_hostname",
                "tls.example.com",
            ])
            .args([
                "-CAfile",
                &root,
                "-crl_check",
                "-CRL",
                crl,
                "-verify_return_error",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("s_client");
        if let Some(stdin) = client.stdin.as_mut() {
            let _ = stdin.write_all(b"Q\n");
        }
        let output = client.wait_with_output().expect("s_client ran");
        (
            output.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        )
    };
    // The server needs a moment to listen: retry the first handshake briefly.
    let crl = support::crl_of(&certflow, &cert, 0).await;
    let before = crl_pem(&crl.der);
    let mut accepted = (false, String::new());
    for _ in 0..50 {
        accepted = handshake(&before);
        if accepted.0 || !accepted.1.contains("connect") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(accepted.0, "before revocation: {}", accepted.1);
    assert!(
        accepted.1.contains("Verify return code: 0 (ok)"),
        "{}",
        accepted.1
    );

    revocations
        .request_revocation(RequestRevocationRequest {
            request_id: request_id(),
            certificate_id: cert.id.clone(),
            reason: RevocationReason::KeyCompromise as i32,
            description: String::new(),
            validation_method: 0,
        })
        .await
        .expect("revoked");
    let revoked_crl = support::crl_of(&certflow, &cert, 1).await;
    let after = crl_pem(&revoked_crl.der);
    let (ok, text) = handshake(&after);
    assert!(!ok, "after revocation the handshake must fail: {text}");
    assert!(text.contains("certificate revoked"), "{text}");
    let _ = server.kill();
    let _ = server.wait();
}

#[tokio::test]
async fn uploads_are_checked_for_validity_chain_and_key() {
    use certflow_proto::v1::UploadCertificateRequest;
    let certflow = Certflow::start().await.expect("start");
    let mut certs = certflow.certificates().await.expect("client");
    let ca = authority("Other CA");
    let stranger = authority("Another CA");
    let key = rcgen::KeyPair::generate().expect("key");
    let leaf = rcgen::CertificateParams::new(vec!["up.example.net".to_string()])
        .expect("params")
        .signed_by(&key, &ca)
        .expect("leaf")
        .pem();
    let mut old =
        rcgen::CertificateParams::new(vec!["old.example.net".to_string()]).expect("params");
    old.not_before = rcgen::date_time_ymd(2020, 1, 1);
    old.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let expired = old.signed_by(&key, &ca).expect("expired").pem();
    let other_key = rcgen::KeyPair::generate().expect("key").serialize_pem();
    let upload = |pem: String, key: String| UploadCertificateRequest {
        request_id: request_id(),
        account: "acme".into(),
        pem,
        private_key_pem: key,
    };

    for (request, expected) in [
        (upload(expired, String::new()), "INVALID_CERTIFICATE"),
        (
            upload(format!("{leaf}{}", stranger.pem()), String::new()),
            "INVALID_CERTIFICATE",
        ),
        (upload(leaf.clone(), other_key), "KEY_MISMATCH"),
    ] {
        let err = certs
            .upload_certificate(request)
            .await
            .expect_err("refused");
        assert_eq!(err.code(), Code::InvalidArgument);
        assert_eq!(reason(&err), expected, "{}", err.message());
    }

    let stored = certs
        .upload_certificate(upload(format!("{leaf}{}", ca.pem()), key.serialize_pem()))
        .await
        .expect("a good chain and its key are accepted")
        .into_inner()
        .certificate
        .expect("certificate");
    assert!(stored.private_key_held);
    let files = download(&mut certs, &stored.id, DownloadFormat::Pem, "")
        .await
        .expect("downloaded");
    let key_file = files
        .iter()
        .find(|f| f.name.ends_with(".key"))
        .expect("key");
    assert_eq!(
        String::from_utf8_lossy(&key_file.content),
        key.serialize_pem()
    );
}

/// A rotation of the key store's key-encryption key, as docs/operations.md describes it:
/// the issuance service given the new key and the old one, `rewrap-keys`, then the new key
/// alone. Every held key downloads the same throughout, and the old key opens nothing after.
#[tokio::test]
async fn kek_rotation_keeps_every_held_key_and_retires_the_old_one() {
    use certflow_ca::sealing::Kek;
    let mut certflow = Certflow::start().await.expect("start");
    let mut certs = certflow.certificates().await.expect("client");
    let first = issue(&mut certs, dns_auto_dv("acme", "before.example.com")).await;
    let key_of = |files: Vec<DownloadedFile>| {
        files
            .into_iter()
            .find(|f| f.name.ends_with(".key"))
            .map(|f| f.content)
            .expect("the private key is among the files")
    };
    let first_key = key_of(
        download(&mut certs, &first.id, DownloadFormat::Pem, "")
            .await
            .expect("downloaded"),
    );

    let old = certflow.kek().expect("kek");
    let new = Kek::from_hex(&Kek::generate_hex()).expect("new kek");
    let rotating = new.clone().with_previous(&old);
    certflow
        .restart_services(|config| config.kek = Some(rotating.clone()))
        .await
        .expect("issuance with both keys");
    let mut certs = certflow.certificates().await.expect("client");
    let second = issue(&mut certs, dns_auto_dv("acme", "during.example.com")).await;
    let second_key = key_of(
        download(&mut certs, &second.id, DownloadFormat::Pem, "")
            .await
            .expect("downloaded"),
    );
    let first_during = key_of(
        download(&mut certs, &first.id, DownloadFormat::Pem, "")
            .await
            .expect("downloaded"),
    );
    assert_eq!(first_during, first_key);

    let mut config = certflow.config().expect("config");
    config.kek = Some(rotating.clone());
    let done = certd::rewrap_keys(&config).await.expect("rewrapped");
    assert_eq!(
        done.current, 1,
        "the key sealed during the rotation: {done:?}"
    );
    assert!(
        done.rewrapped >= 2,
        "the first key and the CAs' keys: {done:?}"
    );
    assert_eq!(done.changed_meanwhile, 0);
    let again = certd::rewrap_keys(&config).await.expect("rewrapped again");
    assert_eq!(
        (again.rewrapped, again.current),
        (0, done.rewrapped + done.current),
        "a second run has nothing to do"
    );

    certflow
        .restart_services(|config| config.kek = Some(new.clone()))
        .await
        .expect("issuance with the new key alone");
    let mut certs = certflow.certificates().await.expect("client");
    for (id, key) in [(&first.id, &first_key), (&second.id, &second_key)] {
        let now = key_of(
            download(&mut certs, id, DownloadFormat::Pem, "")
                .await
                .expect("downloaded"),
        );
        assert_eq!(&now, key, "certificate {id}'s key after the rotation");
    }
    assert!(
        certflow
            .restart_services(|config| config.kek = Some(old.clone()))
            .await
            .is_err(),
        "the old key no longer opens the CAs' keys"
    );
}
