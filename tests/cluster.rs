//! The service set on a three-node JetStream cluster with every stream replicated three
//! times. The event stream's leader is killed with SIGKILL under load: no acknowledged event
//! is lost, the services keep working, and the node catches up when it returns.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use certd::{Config, Service};
use certflow_gateway::auth::KeySource;
use certflow_proto::v1::{
    CertificateStatus, RequestRevocationRequest, RevocationReason,
    certificate_service_client::CertificateServiceClient,
    revocation_service_client::RevocationServiceClient,
};
use certflow_testkit::cluster::NatsCluster;
use certflow_testkit::{Authed, Bearer, eventually};
use tonic::transport::Channel;

use crate::support::{self, dns_auto_dv, request_id};

/// How long the cluster may take to elect a new leader, and the node to catch up.
const RECOVER: Duration = Duration::from_secs(60);

/// The leader of the event stream, as the cluster names it.
async fn events_leader(js: &jetstream::Context) -> Option<String> {
    js.get_stream("CERTFLOW_EVENTS")
        .await
        .ok()?
        .info()
        .await
        .ok()?
        .cluster
        .clone()?
        .leader
}

#[tokio::test]
async fn the_event_stream_leader_killed_under_load_loses_no_acknowledged_event() {
    const CERTIFICATES: usize = 600;
    const WORKERS: usize = 16;
    let mut cluster = NatsCluster::start(3).await.expect("cluster");
    let data = tempfile::tempdir().expect("data dir");
    let keys = data.path().join("keys");
    let (signing_key, public_key) = certd::dev::ensure_signing_key(&keys).expect("keys");
    let mut config = Config::new(cluster.url(), data.path());
    config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.crl_listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.store.replicas = 3;
    config.gateway.commands_per_second = 1_000_000;
    config.gateway.queries_per_second = 1_000_000;
    config.gateway.token_keys = vec![KeySource::Ed25519Pem(public_key)];
    config.kek =
        certflow_ca::sealing::Kek::from_hex(&certd::dev::ensure_kek(&keys).expect("kek")).ok();
    certd::provision(&config)
        .await
        .expect("streams and consumers made on the cluster");
    let running = certd::start(config, &Service::ALL)
        .await
        .expect("the services start on the cluster");
    let gateway = running.gateway_address.expect("gateway");
    let channel = Channel::from_shared(format!("http://{gateway}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("channel");
    let token = certd::dev::token(
        &signing_key,
        "ops",
        "platform",
        &["admin"],
        Duration::from_secs(3600),
    )
    .expect("token");
    let bearer = Bearer::new(Some(&token)).expect("bearer");
    let certs: CertificateServiceClient<Authed> =
        CertificateServiceClient::with_interceptor(channel.clone(), bearer.clone());
    let revocations: RevocationServiceClient<Authed> =
        RevocationServiceClient::with_interceptor(channel, bearer);
    let js = jetstream::new(async_nats::connect(cluster.url_of(0)).await.expect("nats"));

    // Each worker issues certificates and revokes every other one, retrying a call that
    // was not answered with the same request id.
    let done = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..WORKERS)
        .map(|worker| {
            let (certs, revocations, done) = (certs.clone(), revocations.clone(), done.clone());
            tokio::spawn(async move {
                let mut expected = Vec::new();
                let mut retried = 0;
                for n in (worker..CERTIFICATES).step_by(WORKERS) {
                    let request = dns_auto_dv("acme", &format!("c{n}.example.com"));
                    let (issued, unavailable) = support::until_answered(RECOVER, || {
                        let (mut certs, request) = (certs.clone(), request.clone());
                        async move { certs.issue_certificate(request).await }
                    })
                    .await;
                    retried += unavailable;
                    let id = issued
                        .expect("issued")
                        .into_inner()
                        .certificate
                        .expect("certificate")
                        .id;
                    let revoke = n % 2 == 0;
                    if revoke {
                        let request = RequestRevocationRequest {
                            request_id: request_id(),
                            certificate_id: id.clone(),
                            reason: RevocationReason::Superseded as i32,
                            description: String::new(),
                            validation_method: 0,
                        };
                        let (revoked, unavailable) = support::until_answered(RECOVER, || {
                            let (mut revocations, request) = (revocations.clone(), request.clone());
                            async move { revocations.request_revocation(request).await }
                        })
                        .await;
                        retried += unavailable;
                        revoked.expect("revocation accepted");
                    }
                    expected.push((id, revoke));
                    done.fetch_add(1, Ordering::Relaxed);
                }
                (expected, retried)
            })
        })
        .collect();

    // A third of the way in, the event stream's leader dies; it returns at two thirds.
    while done.load(Ordering::Relaxed) < CERTIFICATES / 3 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let leader = events_leader(&js)
        .await
        .expect("the event stream has a leader");
    let killed = cluster.node_named(&leader).expect("leader is one of ours");
    cluster.kill(killed);
    let killed_at = done.load(Ordering::Relaxed);
    while done.load(Ordering::Relaxed) < 2 * CERTIFICATES / 3 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let carried_on = done.load(Ordering::Relaxed) - killed_at;
    cluster
        .restart(killed)
        .await
        .expect("the node comes back on its store");

    let mut expected = BTreeMap::new();
    let mut retried = 0;
    for worker in workers {
        let (done, unavailable) = worker.await.expect("worker");
        expected.extend(done);
        retried += unavailable;
    }
    let load_took = started.elapsed();
    assert_eq!(expected.len(), CERTIFICATES);

    // The log holds every acknowledged command's events once: the issue, and for a
    // revoked certificate the revocation (requested and revoked at once, one message).
    let js = jetstream::new(
        async_nats::connect(cluster.url().split(',').collect::<Vec<_>>())
            .await
            .expect("nats"),
    );
    let seen = std::sync::Mutex::new(BTreeMap::new());
    let counts = eventually(RECOVER, || {
        let js = js.clone();
        let expected = &expected;
        let seen = &seen;
        async move {
            let counts = support::messages_per_certificate(&js).await?;
            let complete = expected
                .iter()
                .all(|(id, revoked)| counts.get(id) == Some(&if *revoked { 2 } else { 1 }));
            if let Ok(mut seen) = seen.lock() {
                *seen = counts.clone();
            }
            complete.then_some(counts)
        }
    })
    .await;
    let counts = counts.unwrap_or_else(|| {
        let seen = seen.lock().map(|s| s.clone()).unwrap_or_default();
        let wrong: Vec<_> = expected
            .iter()
            .map(|(id, revoked)| (id, *revoked, seen.get(id).copied()))
            .filter(|(_, revoked, count)| *count != Some(if *revoked { 2 } else { 1 }))
            .collect();
        panic!(
            "the log lost or doubled events of {} certificates (id, revoked, messages): {wrong:?}",
            wrong.len()
        )
    });
    assert_eq!(counts.len(), CERTIFICATES, "nothing else in the log");

    // The node that died is a current replica again.
    let caught_up = eventually(RECOVER, || {
        let js = js.clone();
        async move {
            let mut stream = js.get_stream("CERTFLOW_EVENTS").await.ok()?;
            let cluster = stream.info().await.ok()?.cluster.clone()?;
            let all_current = cluster.replicas.len() == 2
                && cluster
                    .replicas
                    .iter()
                    .all(|peer| peer.current && !peer.offline && peer.lag.unwrap_or(0) == 0);
            all_current.then_some(cluster)
        }
    })
    .await;
    assert!(caught_up.is_some(), "the returned node caught up");

    // The read side shows every certificate in its final state.
    let listed = eventually(RECOVER, || async {
        let statuses: BTreeMap<String, i32> = support::list_all(&certs)
            .await?
            .into_iter()
            .map(|c| (c.id, c.status))
            .collect();
        (statuses.len() == CERTIFICATES).then_some(statuses)
    })
    .await
    .expect("the projection lists every certificate");
    for (id, revoked) in &expected {
        let status = if *revoked {
            CertificateStatus::Revoked
        } else {
            CertificateStatus::Issued
        };
        assert_eq!(listed.get(id), Some(&(status as i32)), "{id}");
    }
    assert!(carried_on > 0, "commands completed while the node was down");
    println!(
        "three-node cluster: {CERTIFICATES} certificates ({} revoked) in {load_took:?}; \
         leader {leader} killed after {killed_at}, {carried_on} completed while it was down, \
         {retried} calls answered UNAVAILABLE and retried",
        CERTIFICATES / 2
    );
    running.stop().await;
}
