//! The NATS configurations of `deploy/nats/` as operators run them: a single server
//! (`single.conf`) and a three-node cluster (`cluster.conf`), with TLS towards clients and
//! between the nodes and certflow's users (`accounts.conf`). certflow runs on each over TLS
//! and a revocation completes; a client without TLS is turned away.
//!
//! Only what cannot be the same on one test machine is changed in the files: the listen
//! addresses and ports (every node here is on loopback, on free ports), the route URLs (the
//! nodes' names resolve nowhere here) and the store directory. `accounts.conf` and the TLS
//! files are where the configurations expect them, beside the configuration and under
//! `tls/` in the server's working directory; the certificates come from a CA of the test's
//! own.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use certd::{Config, NatsTls, Service};
use certflow_proto::v1::certificate_service_client::CertificateServiceClient;
use certflow_proto::v1::revocation_service_client::RevocationServiceClient;
use certflow_proto::v1::{CertificateStatus, RequestRevocationRequest, RevocationReason};
use certflow_testkit::{Bearer, NatsUsers, checked_nats_server, eventually, trust_dev_key};
use rcgen::{CertificateParams, ExtendedKeyUsagePurpose, KeyPair};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::support;

fn deploy_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy/nats")
        .join(name)
}

/// A CA, and a certificate of it for the NATS servers under the names they are known by.
struct Tls {
    ca_pem: String,
    server_pem: String,
    server_key_pem: String,
}

impl Tls {
    fn new() -> Self {
        let ca = support::authority("certflow NATS test CA");
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(
            ["nats-1", "nats-2", "nats-3", "localhost", "127.0.0.1"]
                .iter()
                .map(|name| name.to_string())
                .collect::<Vec<_>>(),
        )
        .expect("params");
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let server = params.signed_by(&key, &ca).expect("server certificate");
        Tls {
            ca_pem: ca.pem(),
            server_pem: server.pem(),
            server_key_pem: key.serialize_pem(),
        }
    }

    /// Writes `tls/` into `dir`, as the configurations expect.
    fn write(&self, dir: &Path) {
        let tls = dir.join("tls");
        std::fs::create_dir_all(&tls).expect("tls dir");
        std::fs::write(tls.join("ca.crt"), &self.ca_pem).expect("ca");
        std::fs::write(tls.join("server.crt"), &self.server_pem).expect("certificate");
        std::fs::write(tls.join("server.key"), &self.server_key_pem).expect("key");
    }
}

/// One nats-server run from a configuration of `deploy/nats/`, killed on drop.
struct Node {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `conf` with `replace` applied to its text, from a working directory holding the
/// TLS files, with the passwords of `users`.
fn start_node(
    conf: &str,
    replace: &[(String, String)],
    tls: &Tls,
    users: &NatsUsers,
    server_name: &str,
    port: u16,
) -> Node {
    let dir = tempfile::tempdir().expect("tempdir");
    tls.write(dir.path());
    let mut text = std::fs::read_to_string(deploy_file(conf)).expect("configuration");
    let store = dir.path().join("store");
    let mut replace = replace.to_vec();
    replace.push((
        "\"/var/lib/nats\"".into(),
        format!("\"{}\"", store.display()),
    ));
    for (from, to) in &replace {
        assert!(text.contains(from.as_str()), "{conf} has {from:?}");
        text = text.replace(from.as_str(), to);
    }
    let path = dir.path().join(conf);
    std::fs::write(&path, text).expect("write configuration");
    // Included from beside the configuration, as in /etc/certflow/nats.
    std::fs::copy(
        deploy_file("accounts.conf"),
        dir.path().join("accounts.conf"),
    )
    .expect("accounts.conf");
    let log = std::fs::File::create(dir.path().join("nats.log")).expect("log");
    let child = Command::new(checked_nats_server().expect("nats-server"))
        .arg("-c")
        .arg(&path)
        .current_dir(dir.path())
        .env("NATS_SERVER_NAME", server_name)
        .envs(users.variables())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("spawn nats-server");
    Node {
        child,
        port,
        _dir: dir,
    }
}

/// The whole set in this process on `urls` over TLS, each service as its own user; the
/// gateway in plaintext on a free port, and gRPC health on another.
async fn certflow_on(
    urls: String,
    ca: &Path,
    users: &NatsUsers,
    replicas: usize,
    data: &Path,
) -> (certd::Running, String) {
    let mut config = Config::new(urls, data);
    config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.crl_listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.health_listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    config.store.replicas = replicas;
    config.nats_tls = NatsTls {
        required: true,
        ca: Some(ca.to_path_buf()),
        client_certificate: None,
    };
    config.nats_passwords = users.of_services();
    config.operator_password = users.operator();
    let signing_key = trust_dev_key(&mut config, &data.join("keys")).expect("keys");
    // NATS may still be electing its stream leaders: start when it lets us.
    let running = eventually(Duration::from_secs(30), || {
        let config = config.clone();
        async move {
            certd::provision(&config)
                .await
                .map_err(|err| eprintln!("streams not provisioned yet: {err}"))
                .ok()?;
            certd::start(config, &Service::ALL)
                .await
                .map_err(|err| eprintln!("certflow not started yet: {err}"))
                .ok()
        }
    })
    .await
    .expect("certflow starts on the deployed NATS");
    let token = certd::dev::token(
        &signing_key,
        "alice",
        "acme",
        &["customer"],
        Duration::from_secs(600),
    )
    .expect("token");
    (running, token)
}

/// Issues a certificate through the gateway, revokes it (DNS_AUTO: at once), and waits
/// until the projection shows it revoked; also asks the plaintext gRPC health.
async fn revoke_one(running: &certd::Running, token: &str) {
    let endpoint = format!("http://{}", running.gateway_address.expect("gateway"));
    let channel = eventually(Duration::from_secs(10), || async {
        tonic::transport::Channel::from_shared(endpoint.clone())
            .ok()?
            .connect()
            .await
            .ok()
    })
    .await
    .expect("gateway");
    let bearer = Bearer::new(Some(token)).expect("bearer");
    let mut certs = CertificateServiceClient::with_interceptor(channel.clone(), bearer.clone());
    let mut revocations = RevocationServiceClient::with_interceptor(channel, bearer);
    let cert = support::issue(
        &mut certs,
        support::dns_auto_dv("acme", "deploy.example.com"),
    )
    .await;
    revocations
        .request_revocation(RequestRevocationRequest {
            request_id: support::request_id(),
            certificate_id: cert.id.clone(),
            reason: RevocationReason::KeyCompromise as i32,
            description: String::new(),
            validation_method: 0,
        })
        .await
        .expect("revocation accepted");
    support::wait_for_status(&mut certs, &cert.id, CertificateStatus::Revoked).await;

    let health = running.health_address.expect("health address");
    let serving = eventually(Duration::from_secs(10), || async {
        let channel = tonic::transport::Channel::from_shared(format!("http://{health}"))
            .ok()?
            .connect()
            .await
            .ok()?;
        let status = HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .ok()?
            .into_inner()
            .status;
        (status == ServingStatus::Serving as i32).then_some(())
    })
    .await;
    assert!(serving.is_some(), "gRPC health says SERVING in plaintext");
}

/// A client that does not speak TLS is refused: the server announces that TLS is required
/// and answers a plaintext CONNECT with an error, whatever the user and password.
async fn plaintext_refused(port: u16, users: &NatsUsers) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let user = "gateway";
    let password = users.password(user).expect("the gateway's password");
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("the client port is open");
    let mut stream = BufReader::new(stream);
    let mut info = String::new();
    stream.read_line(&mut info).await.expect("INFO");
    assert!(
        info.starts_with("INFO ") && info.contains("\"tls_required\":true"),
        "the server requires TLS: {info}"
    );
    let connect = format!(
        "CONNECT {{\"user\":\"{user}\",\"pass\":\"{password}\",\"verbose\":false}}\r\nPING\r\n"
    );
    let _ = stream.get_mut().write_all(connect.as_bytes()).await;
    let mut answer = String::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_line(&mut answer)).await;
    assert!(
        !answer.starts_with("PONG") && !answer.starts_with("+OK"),
        "a plaintext client is answered: {answer:?} ({read:?})"
    );
}

#[tokio::test]
async fn single_conf_serves_certflow_over_tls_only() {
    let tls = Tls::new();
    let users = NatsUsers::random();
    let port = support::free_port();
    let node = start_node(
        "single.conf",
        &[
            ("0.0.0.0:4222".into(), format!("127.0.0.1:{port}")),
            (
                "127.0.0.1:8222".into(),
                format!("127.0.0.1:{}", support::free_port()),
            ),
        ],
        &tls,
        &users,
        "certflow-nats",
        port,
    );
    let data = tempfile::tempdir().expect("data");
    let ca = data.path().join("ca.crt");
    std::fs::write(&ca, &tls.ca_pem).expect("ca");
    let (running, token) = certflow_on(
        format!("tls://localhost:{}", node.port),
        &ca,
        &users,
        1,
        data.path(),
    )
    .await;
    revoke_one(&running, &token).await;
    plaintext_refused(node.port, &users).await;
    running.stop().await;
}

#[tokio::test]
async fn cluster_conf_three_nodes_with_tls_routes_and_r3_streams() {
    let tls = Tls::new();
    let users = NatsUsers::random();
    let client_ports: Vec<u16> = (0..3).map(|_| support::free_port()).collect();
    let route_ports: Vec<u16> = (0..3).map(|_| support::free_port()).collect();
    let mut nodes = Vec::new();
    for n in 0..3 {
        let mut replace = vec![
            (
                "0.0.0.0:4222".to_string(),
                format!("127.0.0.1:{}", client_ports[n]),
            ),
            (
                "0.0.0.0:6222".to_string(),
                format!("127.0.0.1:{}", route_ports[n]),
            ),
            (
                "0.0.0.0:8222".to_string(),
                format!("127.0.0.1:{}", support::free_port()),
            ),
        ];
        for (m, route_port) in route_ports.iter().enumerate() {
            replace.push((
                format!("nats://nats-{}:6222", m + 1),
                format!("nats://127.0.0.1:{route_port}"),
            ));
        }
        nodes.push(start_node(
            "cluster.conf",
            &replace,
            &tls,
            &users,
            &format!("nats-{}", n + 1),
            client_ports[n],
        ));
    }
    let data = tempfile::tempdir().expect("data");
    let ca = data.path().join("ca.crt");
    std::fs::write(&ca, &tls.ca_pem).expect("ca");
    let urls = nodes
        .iter()
        .map(|node| format!("tls://localhost:{}", node.port))
        .collect::<Vec<_>>()
        .join(",");
    let (running, token) = certflow_on(urls, &ca, &users, 3, data.path()).await;
    revoke_one(&running, &token).await;

    // The event log is replicated on all three nodes.
    let operator = users.password("operator").expect("operator").to_string();
    let client = async_nats::ConnectOptions::with_user_and_password("operator".into(), operator)
        .add_root_certificates(ca.clone())
        .require_tls(true)
        .connect(format!("tls://localhost:{}", nodes[2].port))
        .await
        .expect("operator over TLS");
    let mut events = async_nats::jetstream::new(client)
        .get_stream("CERTFLOW_EVENTS")
        .await
        .expect("event stream");
    let info = events.info().await.expect("stream info");
    assert_eq!(info.config.num_replicas, 3);
    let cluster = info.cluster.clone().expect("cluster info");
    assert_eq!(
        cluster.replicas.len(),
        2,
        "a leader and two replicas: {cluster:?}"
    );
    plaintext_refused(nodes[0].port, &users).await;
    running.stop().await;
}
