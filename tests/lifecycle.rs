//! The service set over time: projection rebuilds, and `certd all` restarted as a process.

use std::process::{Child, Command};

use certflow_proto::v1::certificate_service_client::CertificateServiceClient;
use certflow_proto::v1::revocation_service_client::RevocationServiceClient;
use certflow_proto::v1::{CertificateStatus, RequestRevocationRequest, RevocationReason};
use certflow_testkit::{Bearer, Certflow, NatsServer, eventually};
use tonic::transport::Channel;

use crate::support::{self, CATCH_UP, dns_auto_dv, issue, request_id, snapshot};

fn revoke(id: &str) -> RequestRevocationRequest {
    RequestRevocationRequest {
        request_id: request_id(),
        certificate_id: id.into(),
        reason: RevocationReason::KeyCompromise as i32,
        description: String::new(),
        validation_method: 0,
    }
}

#[tokio::test]
async fn projection_rebuild_reaches_the_same_state() {
    let mut certflow = Certflow::start().await.expect("start");
    let mut certs = certflow.certificates().await.expect("client");
    let mut revocations = certflow.revocations().await.expect("client");
    for n in 0..10 {
        let cert = issue(
            &mut certs,
            dns_auto_dv("acme", &format!("r{n}.example.org")),
        )
        .await;
        if n % 3 == 0 {
            revocations
                .request_revocation(revoke(&cert.id))
                .await
                .expect("revoked");
        }
    }
    support::upload(&mut certs, support::self_signed_pem("up.example.org")).await;

    // 11 certificates, 4 of them revoked, with 1 + 2 events each for the revoked ones.
    let before = eventually(CATCH_UP, || {
        let mut certs = certs.clone();
        async move {
            let all = snapshot(&mut certs).await;
            let events: usize = all.iter().map(|(_, h)| h.len()).sum();
            (all.len() == 11 && events == 11 + 4 * 2).then_some(all)
        }
    })
    .await
    .expect("projection caught up");
    let revoked = before
        .iter()
        .filter(|(c, _)| c.status == CertificateStatus::Revoked as i32)
        .count();
    assert_eq!(revoked, 4);

    certflow
        .restart_services(|config| config.rebuild_projection = true)
        .await
        .expect("restart with rebuild");
    let mut certs = certflow.certificates().await.expect("client");
    let after = eventually(CATCH_UP, || {
        let mut certs = certs.clone();
        let before = before.clone();
        async move {
            let after = snapshot(&mut certs).await;
            (after == before).then_some(after)
        }
    })
    .await;
    assert!(
        after.is_some(),
        "the rebuilt projection differs: {:?}",
        snapshot(&mut certs).await
    );
}

/// `certd all` as a process, stopped with SIGTERM on drop.
struct CertdProcess {
    child: Child,
    endpoint: String,
}

impl CertdProcess {
    fn start(nats: &NatsServer, data_dir: &std::path::Path, port: u16) -> Self {
        support::provision(&[], &[("NATS_URL".into(), nats.url())]);
        let child = Command::new(env!("CARGO_BIN_EXE_certd"))
            .arg("all")
            .arg("--plaintext")
            .arg("--jwt-ed25519-key")
            .arg(certd::dev::key_paths(data_dir).1)
            .env("NATS_URL", nats.url())
            .env("CERTD_LISTEN", format!("127.0.0.1:{port}"))
            .env("CERTD_DATA_DIR", data_dir)
            .env("RUST_LOG", "warn")
            .env("CERTD_SHUTDOWN_GRACE", "0.5")
            .env("CERTD_CRL_LISTEN", "127.0.0.1:0")
            .env("CERTD_ACME_LISTEN", "127.0.0.1:0")
            .env("CERTD_CONSOLE_LISTEN", "127.0.0.1:0")
            .env(
                "CERTD_KEK",
                certd::dev::ensure_kek(data_dir).expect("key-encryption key"),
            )
            .spawn()
            .expect("spawn certd");
        CertdProcess {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        }
    }

    async fn connect(&self) -> Channel {
        eventually(CATCH_UP, || {
            let endpoint = self.endpoint.clone();
            async move { Channel::from_shared(endpoint).ok()?.connect().await.ok() }
        })
        .await
        .expect("certd gateway accepts connections")
    }

    /// SIGTERM, then wait: a clean stop exits 0.
    fn terminate(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let status = self.child.wait().expect("wait for certd");
        std::mem::forget(self);
        status
    }
}

impl Drop for CertdProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn certd_all_survives_a_restart_with_nothing_lost() {
    let nats = NatsServer::start().expect("nats");
    let data = tempfile::tempdir().expect("data dir");
    let port = support::free_port();
    let (signing_key, _) = certd::dev::ensure_signing_key(data.path()).expect("signing key");
    let token = certd::dev::token(
        &signing_key,
        "alice",
        "acme",
        &["customer"],
        std::time::Duration::from_secs(600),
    )
    .expect("token");
    let bearer = Bearer::new(Some(&token)).expect("bearer");

    let certd = CertdProcess::start(&nats, data.path(), port);
    let channel = certd.connect().await;
    let mut certs = CertificateServiceClient::with_interceptor(channel.clone(), bearer.clone());
    let mut revocations = RevocationServiceClient::with_interceptor(channel, bearer.clone());
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(
            issue(
                &mut certs,
                dns_auto_dv("acme", &format!("p{n}.example.com")),
            )
            .await
            .id,
        );
    }
    let first_revocation = revoke(&ids[0]);
    let first_reply = revocations
        .request_revocation(first_revocation.clone())
        .await
        .expect("revoked")
        .into_inner();
    let status = certd.terminate();
    assert!(
        status.success(),
        "certd stopped cleanly on SIGTERM: {status:?}"
    );

    let certd = CertdProcess::start(&nats, data.path(), port);
    let channel = certd.connect().await;
    let mut certs = CertificateServiceClient::with_interceptor(channel.clone(), bearer.clone());
    let mut revocations = RevocationServiceClient::with_interceptor(channel, bearer);

    // Everything from before the restart is there.
    let all = eventually(CATCH_UP, || {
        let mut certs = certs.clone();
        async move {
            let all = snapshot(&mut certs).await;
            (all.len() == 5).then_some(all)
        }
    })
    .await
    .expect("all certificates after restart");
    for (cert, history) in &all {
        let expected = if cert.id == ids[0] {
            CertificateStatus::Revoked
        } else {
            CertificateStatus::Issued
        };
        assert_eq!(cert.status, expected as i32, "{}", cert.id);
        assert_eq!(history.len(), if cert.id == ids[0] { 3 } else { 1 });
    }
    // A retry from before the restart still gets its first outcome.
    let retried = revocations
        .request_revocation(first_revocation)
        .await
        .expect("retry answered")
        .into_inner();
    assert_eq!(retried, first_reply);
    // And new work goes through.
    revocations
        .request_revocation(revoke(&ids[1]))
        .await
        .expect("a new revocation after restart");
    support::wait_for_status(&mut certs, &ids[1], CertificateStatus::Revoked).await;
    drop(certd);
}

#[tokio::test]
async fn services_resume_after_nats_restarts() {
    let mut certflow = Certflow::start().await.expect("start");
    let mut certs = certflow.certificates().await.expect("client");
    let before = issue(&mut certs, dns_auto_dv("acme", "before.example.com")).await;
    support::wait_for_status(&mut certs, &before.id, CertificateStatus::Issued).await;

    certflow.nats.kill();
    certflow
        .nats
        .restart()
        .expect("nats back on the same port and store");

    // The same request, retried until the services have reconnected, lands exactly once.
    let request = dns_auto_dv("acme", "after.example.com");
    let after = eventually(CATCH_UP, || {
        let mut certs = certs.clone();
        let request = request.clone();
        async move {
            certs
                .issue_certificate(request)
                .await
                .ok()?
                .into_inner()
                .certificate
        }
    })
    .await
    .expect("commands work again after NATS restarted");
    support::wait_for_status(&mut certs, &after.id, CertificateStatus::Issued).await;
    let all = eventually(CATCH_UP, || {
        let mut certs = certs.clone();
        async move {
            let all = snapshot(&mut certs).await;
            (all.len() == 2).then_some(all)
        }
    })
    .await
    .expect("both certificates listed");
    assert!(all.iter().all(|(_, history)| history.len() == 1), "{all:?}");
}
