//! Faults that must lose nothing: nats-server killed with SIGKILL under load, and the
//! projection's database deleted or damaged while the services were down.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use certflow_proto::v1::{
    CertificateStatus, IssueCertificateRequest, RequestRevocationRequest, RevocationReason,
    certificate_service_client::CertificateServiceClient,
};
use certflow_testkit::{Authed, Certflow, eventually};
use tonic::Code;
use tonic_types::StatusExt;

use crate::support::{self, dns_auto_dv, issue, request_id, snapshot, wait_for_status};

/// How long the projection may take to replay what a test wrote.
const REPLAY: Duration = Duration::from_secs(60);

/// Issues `count` certificates and revokes every third; returns what the read side shows.
async fn some_history(
    certflow: &Certflow,
    count: usize,
) -> Vec<(
    certflow_proto::v1::Certificate,
    Vec<certflow_proto::v1::HistoryEvent>,
)> {
    let mut certs = certflow.certificates().await.expect("client");
    let mut revocations = certflow.revocations().await.expect("client");
    for n in 0..count {
        let cert = issue(
            &mut certs,
            dns_auto_dv("acme", &format!("h{n}.example.com")),
        )
        .await;
        if n % 3 == 0 {
            revocations
                .request_revocation(RequestRevocationRequest {
                    request_id: request_id(),
                    certificate_id: cert.id.clone(),
                    reason: RevocationReason::Superseded as i32,
                    description: String::new(),
                    validation_method: 0,
                })
                .await
                .expect("revocation accepted");
            wait_for_status(&mut certs, &cert.id, CertificateStatus::Revoked).await;
        }
    }
    let shown = snapshot(&mut certs).await;
    assert_eq!(shown.len(), count);
    shown
}

/// Restarts the services and waits until the read side shows `expected` again.
async fn restart_and_expect(
    certflow: &mut Certflow,
    expected: &[(
        certflow_proto::v1::Certificate,
        Vec<certflow_proto::v1::HistoryEvent>,
    )],
) {
    certflow
        .restart_services(|_| {})
        .await
        .expect("the services start over a missing or damaged projection");
    let certs = certflow.certificates().await.expect("client");
    let shown = eventually(REPLAY, || {
        let mut certs = certs.clone();
        async move {
            let shown = snapshot(&mut certs).await;
            (shown == expected).then_some(shown)
        }
    })
    .await;
    assert!(
        shown.is_some(),
        "the replayed projection differs: {:?}",
        snapshot(&mut certs.clone()).await
    );
}

/// Every file under `dir`.
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

#[tokio::test]
async fn projection_replays_the_log_into_a_deleted_database() {
    let mut certflow = Certflow::start().await.expect("start");
    let before = some_history(&certflow, 9).await;
    certflow.stop_services().await;
    let projection = certflow.data.path().join("projection");
    std::fs::remove_dir_all(&projection).expect("delete the projection");
    restart_and_expect(&mut certflow, &before).await;
}

#[tokio::test]
async fn projection_sets_a_damaged_database_aside_and_replays_the_log() {
    let mut certflow = Certflow::start().await.expect("start");
    let before = some_history(&certflow, 9).await;
    certflow.stop_services().await;
    let projection = certflow.data.path().join("projection");
    // Every file of the database overwritten with noise of the same length.
    let mut noise = 0x2545_f491_u32;
    for file in files_under(&projection) {
        let len = std::fs::metadata(&file).map_or(0, |m| m.len()).max(64) as usize;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                noise ^= noise << 13;
                noise ^= noise >> 17;
                noise ^= noise << 5;
                noise as u8
            })
            .collect();
        std::fs::write(&file, bytes).expect("damage a file");
    }
    restart_and_expect(&mut certflow, &before).await;
    let set_aside: Vec<_> = std::fs::read_dir(certflow.data.path())
        .expect("data dir")
        .flatten()
        .filter(|entry| {
            entry
                .file_name()
                .to_string_lossy()
                .starts_with("projection.damaged-")
        })
        .collect();
    assert_eq!(set_aside.len(), 1, "the damaged database is kept aside");
}

/// What one issue command came to: the certificate, or the refusal's code and reason.
type Outcome = Result<String, (Code, String)>;

async fn issue_once(
    certs: &mut CertificateServiceClient<Authed>,
    request: IssueCertificateRequest,
) -> Outcome {
    match certs.issue_certificate(request).await {
        Ok(reply) => reply
            .into_inner()
            .certificate
            .map(|c| c.id)
            .ok_or((Code::Internal, "no certificate".into())),
        Err(status) => Err((
            status.code(),
            status
                .get_details_error_info()
                .map(|info| info.reason)
                .unwrap_or_default(),
        )),
    }
}

#[tokio::test]
async fn nats_killed_under_ten_thousand_commands_loses_none_and_doubles_none() {
    const TOTAL: usize = 10_000;
    const WORKERS: usize = 32;
    let mut certflow = Certflow::start_with(|config| {
        config.gateway.commands_per_second = 1_000_000;
        config.gateway.queries_per_second = 1_000_000;
        config.request_timeout = Duration::from_secs(3);
    })
    .await
    .expect("start");
    let certs = certflow.certificates().await.expect("client");
    let requests: Arc<Vec<IssueCertificateRequest>> = Arc::new(
        (0..TOTAL)
            .map(|n| dns_auto_dv("acme", &format!("outage-{n}.example.com")))
            .collect(),
    );
    let answered = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..WORKERS)
        .map(|worker| {
            let (mut certs, requests, answered) =
                (certs.clone(), requests.clone(), answered.clone());
            tokio::spawn(async move {
                let mut outcomes = Vec::new();
                for n in (worker..TOTAL).step_by(WORKERS) {
                    outcomes.push((n, issue_once(&mut certs, requests[n].clone()).await));
                    answered.fetch_add(1, Ordering::Relaxed);
                }
                outcomes
            })
        })
        .collect();

    // SIGKILL nats-server a third of the way in; start it again on the same store once the
    // gateway has given up on the calls in flight (its request timeout is 3 s).
    while answered.load(Ordering::Relaxed) < TOTAL / 3 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    certflow.nats_mut().kill();
    let killed_at = answered.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(4)).await;
    certflow
        .nats_mut()
        .restart()
        .expect("nats-server back on its store");

    let mut outcomes: BTreeMap<usize, Outcome> = BTreeMap::new();
    for worker in workers {
        outcomes.extend(worker.await.expect("worker"));
    }
    let load_took = started.elapsed();
    let failed: Vec<usize> = outcomes
        .iter()
        .filter(|(_, outcome)| outcome.is_err())
        .map(|(n, _)| *n)
        .collect();
    for n in &failed {
        let Err((code, reason)) = &outcomes[n] else {
            continue;
        };
        assert_eq!(
            *code,
            Code::Unavailable,
            "a failure during the outage is UNAVAILABLE ({reason})"
        );
    }
    assert!(
        !failed.is_empty(),
        "the outage was seen by some commands (killed after {killed_at} answers)"
    );

    // Every failed command, retried with its own request id, completes once.
    for n in &failed {
        let request = requests[*n].clone();
        let retried = eventually(Duration::from_secs(30), || {
            let (mut certs, request) = (certs.clone(), request.clone());
            async move { issue_once(&mut certs, request).await.ok() }
        })
        .await;
        let id = retried.unwrap_or_else(|| panic!("command {n} never completed on retry"));
        outcomes.insert(*n, Ok(id));
    }
    // A retry of an acknowledged command gets the same certificate.
    for n in (0..TOTAL).step_by(97) {
        let again = issue_once(&mut certs.clone(), requests[n].clone()).await;
        assert_eq!(again, outcomes[&n], "command {n} retried");
    }

    // The log holds each acknowledged certificate exactly once, and nothing else.
    let acknowledged: BTreeSet<String> = outcomes
        .values()
        .map(|outcome| outcome.clone().expect("every command done"))
        .collect();
    assert_eq!(acknowledged.len(), TOTAL, "one certificate per command");
    let nats = certflow.nats.connect_as(None).await.expect("nats");
    let per_certificate = support::messages_per_certificate(&jetstream::new(nats))
        .await
        .expect("the event log");
    let logged: BTreeSet<String> = per_certificate.keys().cloned().collect();
    assert_eq!(
        logged, acknowledged,
        "the log holds exactly the acknowledged"
    );
    let doubled: Vec<_> = per_certificate.iter().filter(|(_, c)| **c != 1).collect();
    assert!(doubled.is_empty(), "appended more than once: {doubled:?}");

    // The projection converges to the log.
    let listed = eventually(REPLAY, || async {
        let listed: BTreeSet<String> = support::list_all(&certs)
            .await?
            .into_iter()
            .map(|c| c.id)
            .collect();
        (listed.len() == TOTAL).then_some(listed)
    })
    .await
    .expect("the projection lists every certificate");
    assert_eq!(listed, acknowledged);
    println!(
        "{TOTAL} commands in {load_took:?}, nats-server killed after {killed_at} answers, \
         {} reported UNAVAILABLE and completed on retry",
        failed.len()
    );
}
