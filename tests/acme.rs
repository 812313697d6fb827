//! ACME revocation (RFC 8555 §7.6) with real clients nobody here wrote: certbot and lego,
//! from Debian's packages, against certflow's ACME endpoint on loopback. Each checks what
//! the client printed, the certificate's history and its CRL shard.

use std::path::Path;
use std::time::Duration;

use certflow_proto::v1::acme_service_client::AcmeServiceClient;
use certflow_proto::v1::{
    Certificate, CertificateStatus, CreateExternalAccountKeyRequest,
    CreateExternalAccountKeyResponse, DownloadCertificateRequest, DownloadFormat, RevocationCause,
    RevocationReason,
};
use certflow_testkit::{Bearer, Certflow};

use crate::support::{crl_of, dns_auto_dv, issue, openssl, wait_for_status, wait_until};

/// Runs `program` with `args` (without blocking the services in this process): whether it
/// succeeded, and what it printed.
async fn run(program: &str, args: &[&str]) -> (bool, String) {
    let output = tokio::process::Command::new(program)
        .args(args)
        .env("HOME", std::env::temp_dir())
        .output()
        .await
        .unwrap_or_else(|e| panic!("{program} is installed (Debian's package): {e}"));
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

/// A customer's certificate of `domain` (validated by automatic DNS), with its key written
/// to `dir` as PEM: `<domain>.crt` and `<domain>.key`.
async fn certificate_with_key(certflow: &Certflow, dir: &Path, domain: &str) -> Certificate {
    issued_with_key(certflow, dir, dns_auto_dv("acme", domain)).await
}

/// The certificate `request` issues, with its key written to `dir` as PEM.
async fn issued_with_key(
    certflow: &Certflow,
    dir: &Path,
    request: certflow_proto::v1::IssueCertificateRequest,
) -> Certificate {
    let mut certs = certflow
        .certificates_as(Some(&certflow.token("alice", "acme", &["customer"])))
        .await
        .expect("client");
    let cert = issue(&mut certs, request).await;
    let files = certs
        .download_certificate(DownloadCertificateRequest {
            id: cert.id.clone(),
            format: DownloadFormat::Pem as i32,
            password: String::new(),
        })
        .await
        .expect("downloaded")
        .into_inner()
        .files;
    for file in files {
        std::fs::write(dir.join(&file.name), &file.content).expect("write");
    }
    cert
}

/// The certificate as its owner reads it, once its status is `status`.
async fn certificate_once(certflow: &Certflow, id: &str, status: CertificateStatus) -> Certificate {
    let mut certs = certflow
        .certificates_as(Some(&certflow.token("alice", "acme", &["customer"])))
        .await
        .expect("client");
    wait_for_status(&mut certs, id, status).await
}

/// The sentences of a certificate's history.
async fn history(certflow: &Certflow, id: &str) -> Vec<String> {
    let certs = certflow.certificates().await.expect("client");
    crate::support::history(&certs, id)
        .await
        .into_iter()
        .map(|event| event.summary)
        .collect()
}

/// An EAB key for account `acme`, made through the gateway as its customer would.
async fn eab_key(certflow: &Certflow) -> CreateExternalAccountKeyResponse {
    let token = certflow.token("alice", "acme", &["customer"]);
    let mut acme = AcmeServiceClient::with_interceptor(
        certflow.channel().await.expect("channel"),
        Bearer::new(Some(&token)).expect("token"),
    );
    acme.create_external_account_key(CreateExternalAccountKeyRequest {})
        .await
        .expect("an EAB key")
        .into_inner()
}

/// certbot `args` against the ACME `directory`, never asking anything, with its
/// directories under `dir` so nothing touches the machine's; `ca` is a CA bundle to trust
/// for an https directory. Whether it succeeded, what it printed, and its debug log (where
/// certbot 2.1 keeps the problem document of a failed `revoke`).
async fn certbot(
    dir: &Path,
    directory: &str,
    args: &[&str],
    ca: Option<&Path>,
) -> (bool, String, String) {
    let mut command = tokio::process::Command::new("certbot");
    command
        .args(args)
        .args(["--non-interactive", "--server", directory])
        .env("HOME", dir);
    for name in ["config", "work", "logs"] {
        command
            .arg(format!("--{name}-dir"))
            .arg(dir.join(format!("certbot-{name}")));
    }
    if let Some(ca) = ca {
        command.env("REQUESTS_CA_BUNDLE", ca);
    }
    let output = command
        .output()
        .await
        .unwrap_or_else(|e| panic!("certbot is installed (Debian's package): {e}"));
    let log = std::fs::read_to_string(dir.join("certbot-logs").join("letsencrypt.log"))
        .unwrap_or_default();
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
        log,
    )
}

/// Waits until certificate `id` is revoked, then checks it was for `reason` with `cause`,
/// that its history has a line containing each of `says`, and that its CRL lists it with
/// `crl_reason` (openssl's words).
async fn revoked_as(
    certflow: &Certflow,
    id: &str,
    (reason, cause): (RevocationReason, RevocationCause),
    says: &[&str],
    crl_reason: &str,
    dir: &Path,
) {
    let revoked = certificate_once(certflow, id, CertificateStatus::Revoked).await;
    let revocation = revoked.revocation.clone().expect("its revocation");
    assert_eq!(revocation.reason, reason as i32);
    assert_eq!(revocation.cause, cause as i32);
    let lines = history(certflow, id).await;
    for said in says {
        assert!(
            lines.iter().any(|line| line.contains(said)),
            "{said}: {lines:?}"
        );
    }
    listed_on_its_crl(certflow, &revoked, crl_reason, dir).await;
}

/// The CRL shard `cert` names lists it, revoked with `reason`.
async fn listed_on_its_crl(certflow: &Certflow, cert: &Certificate, reason: &str, dir: &Path) {
    let crl = crl_of(certflow, cert, 1).await;
    let der = dir.join("shard.crl");
    std::fs::write(&der, &crl.der).expect("write");
    let (ok, text) = openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        &der.display().to_string(),
        "-noout",
        "-text",
    ]);
    assert!(ok, "{text}");
    assert!(
        text.contains(&cert.serial_number.to_uppercase()) && text.contains(reason),
        "{text}"
    );
}

/// certbot revokes a certificate by its own key, with no account: key compromise, the key
/// blocked (REV-16); revoking it again is `alreadyRevoked`.
#[tokio::test]
async fn rev16_certbot_revokes_a_certificate_by_its_own_key() {
    let certflow = Certflow::start().await.expect("start");
    let directory = format!(
        "http://{}/acme/directory",
        certflow.acme_address().expect("ACME endpoint")
    );
    let dir = tempfile::tempdir().expect("dir");
    let cert = certificate_with_key(&certflow, dir.path(), "bykey.example.com").await;
    let cert_path = dir
        .path()
        .join("bykey.example.com.crt")
        .display()
        .to_string();
    let key_path = dir
        .path()
        .join("bykey.example.com.key")
        .display()
        .to_string();
    let args = [
        "revoke",
        "--cert-path",
        &cert_path,
        "--key-path",
        &key_path,
        "--reason",
        "keycompromise",
        "--no-delete-after-revoke",
    ];
    let (ok, text, _) = certbot(dir.path(), &directory, &args, None).await;
    assert!(ok, "certbot revoke: {text}");

    revoked_as(
        &certflow,
        &cert.id,
        (RevocationReason::KeyCompromise, RevocationCause::KeyProven),
        &["by the holder of its private key"],
        "Key Compromise",
        dir.path(),
    )
    .await;

    // certbot 2.1 fails on any ACME error in `revoke` with an AttributeError of its own;
    // its debug log holds the problem document the server sent.
    let (ok, text, log) = certbot(dir.path(), &directory, &args, None).await;
    assert!(
        !ok && log.contains("urn:ietf:params:acme:error:alreadyRevoked"),
        "a second revocation: {text}\n{log}"
    );
}

/// certbot registers an account with External Account Binding and revokes through it: the
/// certificate's owner asks, with the reason given; without a binding there is no account.
#[tokio::test]
async fn rev10_certbot_revokes_through_an_eab_bound_account_and_a_waiting_path_is_pending() {
    let certflow = Certflow::start().await.expect("start");
    let directory = format!(
        "http://{}/acme/directory",
        certflow.acme_address().expect("ACME endpoint")
    );
    let dir = tempfile::tempdir().expect("dir");
    let cert = certificate_with_key(&certflow, dir.path(), "byaccount.example.com").await;
    let unbound = ["register", "--agree-tos", "-m", "alice@example.com"];
    // The directory says a binding is required, and certbot asks for one before sending.
    let (ok, text, _) = certbot(dir.path(), &directory, &unbound, None).await;
    assert!(
        !ok && text.contains("requires external account binding"),
        "no account without a binding: {text}"
    );

    let key = eab_key(&certflow).await;
    assert_eq!(key.directory_url, directory);
    let mut register = unbound.to_vec();
    register.extend(["--eab-kid", &key.key_id, "--eab-hmac-key", &key.hmac_key]);
    let (ok, text, _) = certbot(dir.path(), &directory, &register, None).await;
    assert!(ok, "certbot register: {text}");

    let cert_path = dir
        .path()
        .join("byaccount.example.com.crt")
        .display()
        .to_string();
    let revoke = [
        "revoke",
        "--cert-path",
        &cert_path,
        "--reason",
        "superseded",
        "--no-delete-after-revoke",
    ];
    let (ok, text, _) = certbot(dir.path(), &directory, &revoke, None).await;
    assert!(ok, "certbot revoke: {text}");
    revoked_as(
        &certflow,
        &cert.id,
        (RevocationReason::Superseded, RevocationCause::Requested),
        &[
            "revocation requested (superseded)",
            "revoked (superseded) as requested",
        ],
        "Superseded",
        dir.path(),
    )
    .await;

    // A certificate whose revocation waits for a domain validation (REV-10): recorded,
    // and answered revocationPending; it goes on as one asked through gRPC.
    let pending = issued_with_key(
        &certflow,
        dir.path(),
        certflow_proto::v1::IssueCertificateRequest {
            validation_setup: vec![],
            ..dns_auto_dv("acme", "pending.example.com")
        },
    )
    .await;
    let cert_path = dir
        .path()
        .join("pending.example.com.crt")
        .display()
        .to_string();
    let revoke = [
        "revoke",
        "--cert-path",
        &cert_path,
        "--no-delete-after-revoke",
    ];
    let (ok, text, log) = certbot(dir.path(), &directory, &revoke, None).await;
    assert!(
        !ok && log.contains("urn:certflow:acme:error:revocationPending"),
        "{text}\n{log}"
    );
    let certs = certflow.certificates().await.expect("client");
    wait_until(
        &certs,
        &pending.id,
        Duration::from_secs(10),
        "wait for its DNS challenge",
        |cert| {
            cert.status == CertificateStatus::RevocationPending as i32
                && cert
                    .revocation
                    .as_ref()
                    .and_then(|r| r.validation.as_ref())
                    .is_some_and(|v| v.challenges.len() == 1)
        },
    )
    .await;
}

/// lego registers with External Account Binding (`run` registers, then finds that orders are
/// not offered here) and revokes through its account; a reason the rules refuse is
/// `badRevocationReason` and changes nothing.
#[tokio::test]
async fn rev9_lego_revokes_through_its_account_and_a_refused_reason_is_bad_revocation_reason() {
    let certflow = Certflow::start().await.expect("start");
    let directory = format!(
        "http://{}/acme/directory",
        certflow.acme_address().expect("ACME endpoint")
    );
    let dir = tempfile::tempdir().expect("dir");
    let domain = "lego.example.com";
    let cert = certificate_with_key(&certflow, dir.path(), domain).await;
    let key = eab_key(&certflow).await;
    let path = dir.path().join("lego").display().to_string();
    let common = [
        "--server",
        directory.as_str(),
        "--email",
        "alice@example.com",
        "--accept-tos",
        "--eab",
        "--kid",
        key.key_id.as_str(),
        "--hmac",
        key.hmac_key.as_str(),
        "--path",
        path.as_str(),
        "--domains",
        domain,
        "--http",
    ];
    let mut register = common.to_vec();
    register.push("run");
    let (ok, text) = run("lego", &register).await;
    assert!(
        !ok && text.contains("is not offered here"),
        "lego run registers, then is told orders are not offered: {text}"
    );

    // lego revokes the certificate it keeps under its path.
    let certificates = dir.path().join("lego").join("certificates");
    std::fs::create_dir_all(&certificates).expect("dir");
    std::fs::copy(
        dir.path().join(format!("{domain}.crt")),
        certificates.join(format!("{domain}.crt")),
    )
    .expect("copy");
    let mut refused = common.to_vec();
    refused.extend(["revoke", "--keep", "--reason", "6"]);
    let (ok, text) = run("lego", &refused).await;
    assert!(
        !ok && text.contains("badRevocationReason"),
        "certificateHold is refused (REV-9): {text}"
    );
    let unchanged = certificate_once(&certflow, &cert.id, CertificateStatus::Issued).await;
    assert!(unchanged.revocation.is_none());

    let mut revoke = common.to_vec();
    revoke.extend(["revoke", "--keep", "--reason", "5"]);
    let (ok, text) = run("lego", &revoke).await;
    assert!(ok, "lego revoke: {text}");
    revoked_as(
        &certflow,
        &cert.id,
        (
            RevocationReason::CessationOfOperation,
            RevocationCause::Requested,
        ),
        &["revoked (cessationOfOperation) as requested"],
        "Cessation Of Operation",
        dir.path(),
    )
    .await;
}

/// A hand-made ACME client: JWS requests signed as RFC 8555 §6.2 has them, so the requests
/// no real client sends can be sent too.
mod by_hand {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use jsonwebtoken::{Algorithm, EncodingKey};
    use serde_json::{Value, json};

    pub fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// A P-256 key: its PKCS#8 PEM and public JWK.
    pub struct Key {
        pub pem: String,
        pub jwk: Value,
    }

    impl Key {
        pub fn generated() -> Key {
            let pair = rcgen::KeyPair::generate().expect("key");
            let point = pair.public_key_raw().to_vec();
            Key {
                pem: pair.serialize_pem(),
                jwk: json!({
                    "kty": "EC", "crv": "P-256",
                    "x": b64(&point[1..33]), "y": b64(&point[33..]),
                }),
            }
        }

        /// The key of a certificate's downloaded `.key` file, with `cert_der`'s public key.
        pub fn of_certificate(pem: &str, cert_der: &[u8]) -> Key {
            let read = certflow_ca::certificate::certificate_key(cert_der).expect("certificate");
            let certflow_ca::certificate::KeyParameters::Ec { x, y, .. } = read.parameters else {
                panic!("an EC certificate");
            };
            Key {
                pem: pem.to_string(),
                jwk: json!({ "kty": "EC", "crv": "P-256", "x": b64(&x), "y": b64(&y) }),
            }
        }

        /// A flattened JWS of `header` and `payload`, signed by this key with ES256 (or
        /// with an HMAC of the PEM for `alg` HS256, as no honest client would).
        pub fn sign(&self, header: &Value, payload: &Value) -> Value {
            let protected = b64(header.to_string().as_bytes());
            let payload = b64(payload.to_string().as_bytes());
            let input = format!("{protected}.{payload}");
            let signature = if header["alg"] == "HS256" {
                jsonwebtoken::crypto::sign(
                    input.as_bytes(),
                    &EncodingKey::from_secret(self.pem.as_bytes()),
                    Algorithm::HS256,
                )
            } else {
                jsonwebtoken::crypto::sign(
                    input.as_bytes(),
                    &EncodingKey::from_ec_pem(self.pem.as_bytes()).expect("EC key"),
                    Algorithm::ES256,
                )
            }
            .expect("signed");
            json!({ "protected": protected, "payload": payload, "signature": signature })
        }
    }
}

/// The bad requests, each refused with its problem type before anything is appended: a
/// nonce never issued, a nonce used once already, the wrong url, HS256, neither jwk nor kid,
/// a key that is not the certificate's, the wrong content type; and resources not offered.
/// The same request done right revokes, so the refusals are the server's, not the harness's.
#[tokio::test]
async fn bad_acme_requests_are_refused_with_their_problem_type_and_change_nothing() {
    use by_hand::{Key, b64};
    use serde_json::{Value, json};

    let certflow = Certflow::start().await.expect("start");
    let base = format!("http://{}", certflow.acme_address().expect("ACME endpoint"));
    let revoke_url = format!("{base}/acme/revoke-cert");
    let dir = tempfile::tempdir().expect("dir");
    let cert = certificate_with_key(&certflow, dir.path(), "hand.example.com").await;
    let (_, der) = x509_parser::pem::parse_x509_pem(cert.pem.as_bytes()).expect("PEM");
    let cert_key = Key::of_certificate(
        &std::fs::read_to_string(dir.path().join("hand.example.com.key")).expect("key"),
        &der.contents,
    );
    let stranger = Key::generated();
    let payload = json!({ "certificate": b64(&der.contents), "reason": 1 });
    let history_before = history(&certflow, &cert.id).await;

    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let nonce = || async {
        let response = client
            .head(format!("{base}/acme/new-nonce"))
            .send()
            .await
            .expect("newNonce");
        assert_eq!(response.status(), 200);
        response.headers()["replay-nonce"]
            .to_str()
            .expect("nonce")
            .to_string()
    };
    let post = |url: String, body: Value, content_type: &'static str| {
        let client = client.clone();
        async move {
            let response = client
                .post(url)
                .header("content-type", content_type)
                .body(body.to_string())
                .send()
                .await
                .expect("POST");
            let status = response.status().as_u16();
            let bytes = response.bytes().await.unwrap_or_default();
            let problem: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            (
                status,
                problem["type"].as_str().unwrap_or_default().to_string(),
            )
        }
    };
    let header = |key: &Key, nonce: &str, url: &str| json!({ "alg": "ES256", "nonce": nonce, "url": url, "jwk": key.jwk });
    let acme = |name: &str| format!("urn:ietf:params:acme:error:{name}");
    const JOSE: &str = "application/jose+json";

    // A nonce this server never issued.
    let body = cert_key.sign(&header(&cert_key, &b64(b"made-up"), &revoke_url), &payload);
    assert_eq!(
        post(revoke_url.clone(), body, JOSE).await,
        (400, acme("badNonce")),
        "a nonce never issued"
    );

    // A stranger's key, signing validly for itself: not the certificate's.
    let body = stranger.sign(&header(&stranger, &nonce().await, &revoke_url), &payload);
    assert_eq!(
        post(revoke_url.clone(), body, JOSE).await,
        (403, acme("unauthorized")),
        "a key that is not the certificate's"
    );
    // A signed request uses its nonce up, even one the rules then refuse (REV-9).
    let used = nonce().await;
    let hold = json!({ "certificate": b64(&der.contents), "reason": 6 });
    let body = cert_key.sign(&header(&cert_key, &used, &revoke_url), &hold);
    assert_eq!(
        post(revoke_url.clone(), body, JOSE).await,
        (400, acme("badRevocationReason")),
        "certificateHold"
    );
    let body = cert_key.sign(&header(&cert_key, &used, &revoke_url), &payload);
    assert_eq!(
        post(revoke_url.clone(), body, JOSE).await,
        (400, acme("badNonce")),
        "a nonce used once already"
    );

    let cases: Vec<(&str, Value, (u16, String))> = vec![
        (
            "the wrong url",
            header(
                &cert_key,
                &nonce().await,
                &format!("{base}/acme/new-account"),
            ),
            (403, acme("unauthorized")),
        ),
        (
            "HS256",
            json!({ "alg": "HS256", "nonce": nonce().await, "url": revoke_url, "jwk": cert_key.jwk }),
            (400, acme("badSignatureAlgorithm")),
        ),
        (
            "neither jwk nor kid",
            json!({ "alg": "ES256", "nonce": nonce().await, "url": revoke_url }),
            (400, acme("malformed")),
        ),
    ];
    for (what, header, expected) in cases {
        let body = cert_key.sign(&header, &payload);
        assert_eq!(
            post(revoke_url.clone(), body, JOSE).await,
            expected,
            "{what}"
        );
    }
    let body = cert_key.sign(&header(&cert_key, &nonce().await, &revoke_url), &payload);
    assert_eq!(
        post(revoke_url.clone(), body, "application/json").await,
        (400, acme("malformed")),
        "not application/jose+json"
    );
    let order_url = format!("{base}/acme/new-order");
    let body = cert_key.sign(&header(&cert_key, &nonce().await, &order_url), &json!({}));
    assert_eq!(
        post(order_url, body, JOSE).await,
        (405, acme("unsupportedOperation")),
        "orders are not offered here"
    );

    // Nothing was appended: the certificate is as it was.
    assert_eq!(history(&certflow, &cert.id).await, history_before);
    certificate_once(&certflow, &cert.id, CertificateStatus::Issued).await;

    // Done right, the same request revokes.
    let body = cert_key.sign(&header(&cert_key, &nonce().await, &revoke_url), &payload);
    assert_eq!(post(revoke_url, body, JOSE).await, (200, String::new()));
    certificate_once(&certflow, &cert.id, CertificateStatus::Revoked).await;
}

/// With TLS configured, the ACME listener serves TLS with the gateway's certificate, and
/// certbot, trusting that certificate's CA, revokes over it; plain HTTP is not answered.
#[tokio::test]
async fn acme_is_served_over_tls_with_the_gateways_certificate() {
    use certflow_proto::v1::certificate_service_client::CertificateServiceClient;
    use tonic::transport::{Channel, ClientTlsConfig};

    let dir = tempfile::tempdir().expect("dir");
    let ca = crate::support::authority("certflow test CA");
    let key = rcgen::KeyPair::generate().expect("key");
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let leaf = rcgen::CertificateParams::new(names)
        .expect("params")
        .signed_by(&key, &ca)
        .expect("signed");
    let write = |name: &str, contents: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, contents).expect("write");
        path
    };
    let tls = certflow_gateway::TlsConfig {
        certificate_pem: write("gateway.pem", &leaf.pem()),
        key_pem: write("gateway.key", &key.serialize_pem()),
        client_ca_pem: None,
    };
    let ca_path = write("ca.pem", &ca.pem());
    let certflow = Certflow::start_with(|config| config.gateway.tls = Some(tls))
        .await
        .expect("start");
    let acme = certflow.acme_address().expect("ACME endpoint");
    let directory = format!("https://{acme}/acme/directory");

    // A certificate and its key, through the gateway over TLS.
    let channel = Channel::from_shared(format!(
        "https://127.0.0.1:{}",
        certflow.gateway_address().port()
    ))
    .expect("endpoint")
    .tls_config(
        ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(ca.pem()))
            .domain_name("localhost"),
    )
    .expect("TLS")
    .connect()
    .await
    .expect("connected");
    let token = certflow.token("alice", "acme", &["customer"]);
    let mut certs = CertificateServiceClient::with_interceptor(
        channel,
        Bearer::new(Some(&token)).expect("token"),
    );
    let cert = issue(&mut certs, dns_auto_dv("acme", "tls.example.com")).await;
    let files = certs
        .download_certificate(DownloadCertificateRequest {
            id: cert.id.clone(),
            format: DownloadFormat::Pem as i32,
            password: String::new(),
        })
        .await
        .expect("downloaded")
        .into_inner()
        .files;
    for file in files {
        std::fs::write(dir.path().join(&file.name), &file.content).expect("write");
    }

    // Plain HTTP to the TLS listener gets no ACME answer.
    let answer = {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(acme).await.expect("connect");
        stream
            .write_all(b"GET /acme/directory HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .await
            .expect("request");
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer).await;
        answer
    };
    assert!(
        !String::from_utf8_lossy(&answer).contains("newNonce"),
        "plain HTTP is not ACME here"
    );

    let cert_path = dir.path().join("tls.example.com.crt").display().to_string();
    let key_path = dir.path().join("tls.example.com.key").display().to_string();
    let args = [
        "revoke",
        "--cert-path",
        &cert_path,
        "--key-path",
        &key_path,
        "--no-delete-after-revoke",
    ];
    let (ok, text, _) = certbot(dir.path(), &directory, &args, Some(&ca_path)).await;
    assert!(ok, "certbot revoke over TLS: {text}");
    wait_for_status(&mut certs, &cert.id, CertificateStatus::Revoked).await;
}

/// GEN-3: only a customer makes an EAB key, for its own account; a reviewer, an admin and
/// a caller without a token are refused.
#[tokio::test]
async fn gen3_only_a_customer_makes_an_eab_key() {
    let certflow = Certflow::start().await.expect("start");
    let channel = certflow.channel().await.expect("channel");
    for (token, code) in [
        (
            Some(certflow.token("rita", "reviewers", &["reviewer"])),
            tonic::Code::PermissionDenied,
        ),
        (Some(certflow.admin_token()), tonic::Code::PermissionDenied),
        (None, tonic::Code::Unauthenticated),
    ] {
        let mut acme = AcmeServiceClient::with_interceptor(
            channel.clone(),
            Bearer::new(token.as_deref()).expect("token"),
        );
        let refused = acme
            .create_external_account_key(CreateExternalAccountKeyRequest {})
            .await
            .expect_err("refused");
        assert_eq!(refused.code(), code, "{refused:?}");
    }
    let key = eab_key(&certflow).await;
    assert!(
        !key.key_id.is_empty() && key.hmac_key.len() >= 43,
        "{key:?}"
    );
}
