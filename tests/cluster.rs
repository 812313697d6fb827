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
use certflow_proto::v1::request_reissue_request::Key;
use certflow_proto::v1::{
    CertificateStatus, OriginalKey, RequestReissueRequest, RequestRevocationRequest,
    RevocationReason, certificate_service_client::CertificateServiceClient,
    reissue_service_client::ReissueServiceClient,
    revocation_service_client::RevocationServiceClient,
};
use certflow_testkit::cluster::NatsCluster;
use certflow_testkit::{Authed, Bearer, eventually};
use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt;

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

/// The whole set on a three-node cluster, every stream with three replicas, and an admin's
/// clients of its gateway.
struct OnCluster {
    cluster: NatsCluster,
    running: certd::Running,
    config: Config,
    certs: CertificateServiceClient<Authed>,
    revocations: RevocationServiceClient<Authed>,
    reissues: ReissueServiceClient<Authed>,
    js: jetstream::Context,
    _data: tempfile::TempDir,
}

impl OnCluster {
    async fn start() -> OnCluster {
        let cluster = NatsCluster::start(3).await.expect("cluster");
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
        let running = certd::start(config.clone(), &Service::ALL)
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
        let js = jetstream::new(async_nats::connect(cluster.url_of(0)).await.expect("nats"));
        OnCluster {
            certs: CertificateServiceClient::with_interceptor(channel.clone(), bearer.clone()),
            revocations: RevocationServiceClient::with_interceptor(channel.clone(), bearer.clone()),
            reissues: ReissueServiceClient::with_interceptor(channel, bearer),
            cluster,
            running,
            config,
            js,
            _data: data,
        }
    }
}

#[tokio::test]
async fn the_event_stream_leader_killed_under_load_loses_no_acknowledged_event() {
    const CERTIFICATES: usize = 600;
    const WORKERS: usize = 16;
    let OnCluster {
        mut cluster,
        running,
        certs,
        revocations,
        js,
        ..
    } = OnCluster::start().await;

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

/// Each reissue of `original` in the log: the stream sequence of its request and, once it
/// ended (completed or failed), of its end.
async fn reissue_spans(js: &jetstream::Context, original: &str) -> Vec<(u64, Option<u64>)> {
    let stream = js.get_stream("CERTFLOW_EVENTS").await.expect("events");
    let subject = format!("certflow.events.certificate.{original}");
    let mut spans: Vec<(u64, Option<u64>)> = Vec::new();
    let mut from = 1;
    while let Ok(message) = stream
        .get_first_raw_message_by_subject(&subject, from)
        .await
    {
        from = message.sequence + 1;
        let events = certflow_proto::convert::decode_batch(&message.payload).expect("a batch");
        let has = |kind: &str| events.iter().any(|event| event.type_name() == kind);
        if has("ReissueRequested") {
            spans.push((message.sequence, None));
        }
        if (has("ReissueCompleted") || has("ReissueFailed"))
            && let Some(open) = spans.iter_mut().rev().find(|span| span.1.is_none())
        {
            open.1 = Some(message.sequence);
        }
    }
    spans
}

/// Sends every request at once, each retried with the same request until answered.
fn race<R, T, F, Fut>(
    requests: impl Iterator<Item = R>,
    call: F,
) -> Vec<tokio::task::JoinHandle<(Result<T, tonic::Status>, u32)>>
where
    R: Clone + Send + Sync + 'static,
    T: Send + 'static,
    F: Fn(R) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>> + Send,
{
    requests
        .map(|request| {
            let call = call.clone();
            tokio::spawn(async move {
                let (answer, retried) =
                    support::until_answered(RECOVER, || call(request.clone())).await;
                (answer.map(tonic::Response::into_inner), retried)
            })
        })
        .collect()
}

/// The answers of a race, in order (`Some` for each accepted call), and how many calls were
/// retried; every refusal must be `FAILED_PRECONDITION` with one of `refusals`.
async fn settle<T>(
    racers: Vec<tokio::task::JoinHandle<(Result<T, tonic::Status>, u32)>>,
    refusals: &[&str],
) -> (Vec<Option<T>>, u32) {
    let (mut answers, mut retried) = (Vec::new(), 0);
    for racer in racers {
        let (answer, unanswered) = racer.await.expect("task");
        retried += unanswered;
        answers.push(match answer {
            Ok(response) => Some(response),
            Err(status) => {
                assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
                let why = refusal_reason(&status);
                assert!(refusals.contains(&why.as_str()), "unexpected refusal {why}");
                None
            }
        });
    }
    (answers, retried)
}

/// The `ErrorInfo` reason of a refusal.
fn refusal_reason(status: &tonic::Status) -> String {
    status
        .get_details_error_info()
        .map(|info| info.reason)
        .unwrap_or_default()
}

/// GEN-2 and REI-4 on replicated streams, which a single server cannot show: 100 revocations
/// of one certificate and 100 reissues under one registrable domain (across two reissue
/// instances) race while the event stream's leader is killed. Each race has exactly one
/// winner, and the log holds exactly one winner's events.
#[tokio::test]
async fn gen2_rei4_a_hundred_conflicting_commands_have_one_winner_while_a_node_dies() {
    const RACERS: usize = 100;
    let OnCluster {
        mut cluster,
        running,
        config,
        certs,
        revocations,
        reissues,
        js,
        ..
    } = OnCluster::start().await;
    let second_reissue = certd::start(config, &[Service::Reissue])
        .await
        .expect("a second reissue instance");
    let issue = |domain: String| {
        let certs = certs.clone();
        async move {
            support::until_answered(RECOVER, || {
                let (mut certs, request) = (certs.clone(), dns_auto_dv("acme", &domain));
                async move { certs.issue_certificate(request).await }
            })
            .await
            .0
            .expect("issued")
            .into_inner()
            .certificate
            .expect("certificate")
            .id
        }
    };
    let contested = issue("race.example.com".into()).await;
    let mut originals = Vec::new();
    for n in 0..RACERS {
        originals.push(issue(format!("r{n}.example.org")).await);
    }

    let revoking = race(
        (0..RACERS).map(|_| RequestRevocationRequest {
            request_id: request_id(),
            certificate_id: contested.clone(),
            reason: RevocationReason::CessationOfOperation as i32,
            description: String::new(),
            validation_method: 0,
        }),
        move |request| {
            let mut revocations = revocations.clone();
            async move { revocations.request_revocation(request).await }
        },
    );
    let reissuing = race(
        originals.iter().map(|original| RequestReissueRequest {
            request_id: request_id(),
            certificate_id: original.clone(),
            domains: Vec::new(),
            reason: "server moved".into(),
            key: Some(Key::OriginalKey(OriginalKey {})),
            enterprise_info: Default::default(),
            validation_method: 0,
        }),
        move |request| {
            let mut reissues = reissues.clone();
            async move { reissues.request_reissue(request).await }
        },
    );
    // The races are on: the event stream's leader dies under them.
    let leader = events_leader(&js)
        .await
        .expect("the event stream has a leader");
    cluster.kill(cluster.node_named(&leader).expect("leader is one of ours"));

    let (revocations_won, revocations_retried) =
        settle(revoking, &["ALREADY_REVOKED", "REVOCATION_IN_PROGRESS"]).await;
    let (reissues_won, reissues_retried) =
        settle(reissuing, &["PRIMARY_DOMAIN_REISSUE_BUSY"]).await;
    let retried = revocations_retried + reissues_retried;
    let revoked = revocations_won.iter().flatten().count();
    let proceeding: Vec<String> = originals
        .iter()
        .zip(&reissues_won)
        .filter(|(_, won)| won.is_some())
        .map(|(original, _)| original.clone())
        .collect();
    assert_eq!(revoked, 1, "exactly one revocation wins");
    assert!(!proceeding.is_empty(), "a reissue proceeds");

    // The log agrees: the contested certificate was revoked by one message after its
    // issue, and only the winning original holds more than its issue.
    let js = jetstream::new(
        async_nats::connect(cluster.url().split(',').collect::<Vec<_>>())
            .await
            .expect("nats"),
    );
    let counts = eventually(RECOVER, || {
        let js = js.clone();
        async move { support::messages_per_certificate(&js).await }
    })
    .await
    .expect("the log is readable");
    assert_eq!(
        counts.get(&contested),
        Some(&2),
        "one revocation in the log"
    );
    let mut changed: Vec<_> = originals
        .iter()
        .filter(|original| counts.get(*original).is_some_and(|n| *n > 1))
        .cloned()
        .collect();
    let mut accepted = proceeding.clone();
    changed.sort();
    accepted.sort();
    assert_eq!(
        changed, accepted,
        "the log holds the accepted reissues, no others"
    );
    // A call retried past the winner's completion may start the next reissue once the
    // reservation is free again; REI-4 is that no two are ever pending at once.
    let mut spans = Vec::new();
    for original in &proceeding {
        spans.extend(reissue_spans(&js, original).await);
    }
    spans.sort();
    for pair in spans.windows(2) {
        let ended = pair[0]
            .1
            .expect("an earlier reissue ended before the next began");
        assert!(ended < pair[1].0, "reissues overlap: {spans:?}");
    }
    println!(
        "three-node cluster, leader {leader} killed mid-race: 1 of {RACERS} revocations won; \
         {} reissues under one registrable domain, one after another; {retried} calls \
         retried with the same request",
        proceeding.len()
    );
    second_reissue.stop().await;
    running.stop().await;
}
