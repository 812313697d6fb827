//! The gateway over TLS (rustls), with and without client certificates.

use std::path::PathBuf;

use certflow_gateway::TlsConfig;
use certflow_proto::v1::ListCertificatesRequest;
use certflow_proto::v1::certificate_service_client::CertificateServiceClient;
use certflow_testkit::{Bearer, Certflow};
use rcgen::{CertificateParams, CertifiedIssuer, KeyPair};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use crate::support::authority;

/// A certificate for `names` signed by `ca`: (certificate PEM, key PEM).
fn leaf(ca: &CertifiedIssuer<'static, KeyPair>, names: &[&str]) -> (String, String) {
    let key = KeyPair::generate().expect("key");
    let params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
        .expect("params");
    let cert = params.signed_by(&key, ca).expect("signed");
    (cert.pem(), key.serialize_pem())
}

fn write(dir: &tempfile::TempDir, name: &str, contents: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, contents).expect("write");
    path
}

async fn list(
    certflow: &Certflow,
    endpoint: String,
    tls: Option<ClientTlsConfig>,
) -> Result<usize, String> {
    let mut endpoint = Channel::from_shared(endpoint).map_err(|e| e.to_string())?;
    if let Some(tls) = tls {
        endpoint = endpoint.tls_config(tls).map_err(|e| e.to_string())?;
    }
    let channel = endpoint.connect().await.map_err(|e| e.to_string())?;
    let bearer = Bearer::new(Some(&certflow.admin_token())).map_err(|e| e.to_string())?;
    CertificateServiceClient::with_interceptor(channel, bearer)
        .list_certificates(ListCertificatesRequest::default())
        .await
        .map(|r| r.into_inner().certificates.len())
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn gateway_serves_tls_and_only_tls() {
    let dir = tempfile::tempdir().expect("dir");
    let ca = authority("certflow test CA");
    let (cert, key) = leaf(&ca, &["localhost"]);
    let tls = TlsConfig {
        certificate_pem: write(&dir, "gateway.pem", &cert),
        key_pem: write(&dir, "gateway.key", &key),
        client_ca_pem: None,
    };
    let certflow = Certflow::start_with(|config| config.gateway.tls = Some(tls))
        .await
        .expect("start");
    let port = certflow.gateway_address().port();

    let trusted = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca.pem()))
        .domain_name("localhost");
    assert_eq!(
        list(
            &certflow,
            format!("https://127.0.0.1:{port}"),
            Some(trusted)
        )
        .await,
        Ok(0)
    );
    assert!(
        list(&certflow, format!("http://127.0.0.1:{port}"), None)
            .await
            .is_err(),
        "plaintext is refused"
    );
    let stranger = authority("someone else");
    let untrusted = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(stranger.pem()))
        .domain_name("localhost");
    assert!(
        list(
            &certflow,
            format!("https://127.0.0.1:{port}"),
            Some(untrusted)
        )
        .await
        .is_err(),
        "a client that does not trust the gateway's CA cannot connect"
    );
}

#[tokio::test]
async fn client_certificates_are_required_when_a_client_ca_is_configured() {
    let dir = tempfile::tempdir().expect("dir");
    let server_ca = authority("certflow gateway CA");
    let client_ca = authority("certflow clients CA");
    let (cert, key) = leaf(&server_ca, &["localhost"]);
    let tls = TlsConfig {
        certificate_pem: write(&dir, "gateway.pem", &cert),
        key_pem: write(&dir, "gateway.key", &key),
        client_ca_pem: Some(write(&dir, "clients-ca.pem", &client_ca.pem())),
    };
    let certflow = Certflow::start_with(|config| config.gateway.tls = Some(tls))
        .await
        .expect("start");
    let endpoint = format!("https://127.0.0.1:{}", certflow.gateway_address().port());
    let base = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(server_ca.pem()))
        .domain_name("localhost");

    assert!(
        list(&certflow, endpoint.clone(), Some(base.clone()))
            .await
            .is_err(),
        "no client certificate"
    );
    let (client_cert, client_key) = leaf(&client_ca, &["ops.example.com"]);
    assert_eq!(
        list(
            &certflow,
            endpoint.clone(),
            Some(
                base.clone()
                    .identity(Identity::from_pem(client_cert, client_key))
            )
        )
        .await,
        Ok(0)
    );
    let (foreign_cert, foreign_key) = leaf(&authority("other clients"), &["x.example.com"]);
    assert!(
        list(
            &certflow,
            endpoint,
            Some(base.identity(Identity::from_pem(foreign_cert, foreign_key)))
        )
        .await
        .is_err(),
        "a client certificate from another CA"
    );
}
