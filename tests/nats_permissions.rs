//! Every NATS user of `deploy/nats/accounts.conf` may do exactly what ARCHITECTURE.md's "NATS
//! permissions" tables say, and nothing else.
//!
//! On a nats-server running the shipped configuration, with every stream and consumer
//! provisioned and no service running, each user tries every JetStream operation on every
//! stream and consumer (and the administrative ones nobody but `operator` may use), and
//! publishes and subscribes to every subject of the core table. The server's permission
//! violations say what was refused; that must be exactly what the tables do not grant.
//! Everything tried is harmless when allowed: appends carry an expectation no stream meets,
//! and there is nothing to fetch.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use async_nats::{Client, HeaderMap, header, jetstream};
use certflow_store::layout::Resource;
use certflow_testkit::NatsServer;
use tokio::sync::mpsc;

/// The users the tables have a column for; `operator` may do everything.
const USERS: [&str; 9] = [
    "gateway",
    "issuance",
    "revocation",
    "reissue",
    "validation",
    "review",
    "reviewer",
    "projection",
    "notifier",
];

/// One thing a user tries.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Attempt {
    Publish(String),
    Subscribe(String),
}

impl Attempt {
    /// How the server names it in a permissions violation.
    fn violation(&self) -> String {
        match self {
            Attempt::Publish(subject) => {
                format!("Permissions Violation for Publish to \"{subject}\"")
            }
            Attempt::Subscribe(subject) => {
                format!("Permissions Violation for Subscription to \"{subject}\"")
            }
        }
    }
}

/// ARCHITECTURE.md's two permission tables: per user, the operations granted on each
/// JetStream resource, and the core subjects it may publish and subscribe to.
#[derive(Debug, Default)]
struct Tables {
    /// resource → user → operations.
    jetstream: BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
    /// subject → (publishers, subscribers).
    core: BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)>,
}

fn cells(line: &str) -> Vec<String> {
    line.trim()
        .trim_matches('|')
        .split('|')
        .map(|cell| cell.trim().trim_matches('`').to_string())
        .collect()
}

fn read_tables() -> Tables {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../ARCHITECTURE.md"
    ))
    .expect("ARCHITECTURE.md");
    let section = text
        .split("### NATS permissions")
        .nth(1)
        .expect("ARCHITECTURE.md has a \"NATS permissions\" section");
    let mut tables = Tables::default();
    let mut header: Vec<String> = Vec::new();
    for line in section.lines().take_while(|line| !line.starts_with('#')) {
        if !line.starts_with('|') || line.starts_with("|---") {
            if !line.starts_with('|') {
                header.clear();
            }
            continue;
        }
        let row = cells(line);
        if header.is_empty() {
            header = row;
            continue;
        }
        match header[0].as_str() {
            "resource" => {
                let grants = header[1..]
                    .iter()
                    .zip(&row[1..])
                    .map(|(user, cell)| {
                        let operations = cell.split_whitespace().map(str::to_string).collect();
                        (user.clone(), operations)
                    })
                    .collect();
                tables.jetstream.insert(row[0].clone(), grants);
            }
            "subject" => {
                let users = |cell: &str| -> BTreeSet<String> {
                    cell.split([',', ' '])
                        .filter(|u| !u.is_empty())
                        .map(str::to_string)
                        .collect()
                };
                tables
                    .core
                    .insert(row[0].clone(), (users(&row[1]), users(&row[2])));
            }
            other => panic!("unknown table {other:?} in the NATS permissions section"),
        }
    }
    tables
}

/// A subject inside stream `stream`'s subjects that its writers use.
fn sample_subject(stream: &str) -> String {
    match stream {
        "CERTFLOW_EVENTS" => "certflow.events.certificate.probe".into(),
        "CERTFLOW_OUTCOMES" => "certflow.outcomes.probe".into(),
        "CERTFLOW_KEYS" => "certflow.keys.dek.probe".into(),
        "CERTFLOW_CRLS" => "certflow.crls.probe".into(),
        "CERTFLOW_KEY_INDEX" => "certflow.keyindex.00ff.bound".into(),
        "CERTFLOW_VALIDATION_CHECKS" => "certflow.validation.check.probe".into(),
        "CERTFLOW_REISSUE_LOCKS" => "certflow.locks.example_com".into(),
        "CERTFLOW_ACME_NONCES" => "certflow.acme.nonces.probe".into(),
        "CERTFLOW_ACME_ACCOUNTS" => "certflow.acme.accounts.key.probe".into(),
        "REVIEW_QUEUE" => "review.queue.revocation.probe".into(),
        "CERTFLOW_REVIEW_LEASES" => "certflow.review.leases.00ff.0".into(),
        "CERTFLOW_NOTIFY_ENDPOINTS" => "certflow.notify.endpoints.61636d65".into(),
        "CERTFLOW_NOTIFICATIONS" => "certflow.notify.queue.61636d65".into(),
        "CERTFLOW_NOTIFY_DEAD" => "certflow.notify.dead.61636d65.msg_1.ep_1".into(),
        object if object.starts_with("OBJ_") => {
            format!("$O.{}.C.probe", object.trim_start_matches("OBJ_"))
        }
        other => panic!("no sample subject for stream {other}: add one"),
    }
}

/// Every attempt an operation on a stream or consumer stands for.
fn operation(resource: &str, operation: &str) -> Vec<Attempt> {
    use Attempt::{Publish, Subscribe};
    let (stream, consumer) = match resource.split_once('/') {
        Some((stream, consumer)) => (stream, Some(consumer)),
        None => (resource, None),
    };
    let api = |path: String| Publish(format!("$JS.API.{path}"));
    match (operation, consumer) {
        ("info", None) => vec![api(format!("STREAM.INFO.{stream}"))],
        ("get", None) => vec![
            api(format!("DIRECT.GET.{stream}")),
            api(format!("DIRECT.GET.{stream}.{}", sample_subject(stream))),
            api(format!("STREAM.MSG.GET.{stream}")),
        ],
        ("append", None) => vec![Publish(sample_subject(stream))],
        ("watch", None) => vec![Subscribe(sample_subject(stream))],
        ("read-objects", None) => vec![
            api(format!("CONSUMER.CREATE.{stream}")),
            Publish(format!("$JS.FC.{stream}.probe")),
        ],
        ("take", Some(consumer)) => vec![
            api(format!("CONSUMER.INFO.{stream}.{consumer}")),
            api(format!("CONSUMER.MSG.NEXT.{stream}.{consumer}")),
            Publish(format!("$JS.ACK.{stream}.{consumer}.1.1.1.1.0")),
        ],
        (other, _) => panic!("{resource}: unknown operation {other:?}"),
    }
}

/// What only the operator may do with a stream or consumer.
fn administration(resource: &str) -> Vec<Attempt> {
    let api = |path: String| Attempt::Publish(format!("$JS.API.{path}"));
    match resource.split_once('/') {
        None => {
            let s = resource;
            vec![
                api(format!("STREAM.CREATE.{s}")),
                api(format!("STREAM.UPDATE.{s}")),
                api(format!("STREAM.DELETE.{s}")),
                api(format!("STREAM.PURGE.{s}")),
                api(format!("STREAM.MSG.DELETE.{s}")),
                api(format!("STREAM.SNAPSHOT.{s}")),
                api(format!("STREAM.RESTORE.{s}")),
                api(format!("STREAM.LEADER.STEPDOWN.{s}")),
                api(format!("CONSUMER.CREATE.{s}")),
                api(format!("CONSUMER.CREATE.{s}.tap")),
                api(format!("CONSUMER.CREATE.{s}.tap.{}", sample_subject(s))),
                api(format!("CONSUMER.DURABLE.CREATE.{s}.tap")),
                api(format!("CONSUMER.NAMES.{s}")),
                api(format!("CONSUMER.LIST.{s}")),
            ]
        }
        Some((s, c)) => vec![
            api(format!("CONSUMER.CREATE.{s}.{c}")),
            api(format!("CONSUMER.DURABLE.CREATE.{s}.{c}")),
            api(format!("CONSUMER.DELETE.{s}.{c}")),
            api(format!("CONSUMER.LEADER.STEPDOWN.{s}.{c}")),
        ],
    }
}

/// Refused to every service whatever the tables say: account-wide administration and a
/// stream of one's own (a tap on other users' subjects).
fn account_administration() -> Vec<Attempt> {
    [
        "INFO",
        "STREAM.NAMES",
        "STREAM.LIST",
        "STREAM.CREATE.TAP",
        "META.LEADER.STEPDOWN",
        "ACCOUNT.PURGE.CERTFLOW",
    ]
    .into_iter()
    .map(|path| Attempt::Publish(format!("$JS.API.{path}")))
    .collect()
}

/// For `user`: every attempt, and whether the tables allow it.
fn expectations(tables: &Tables, user: &str) -> BTreeMap<Attempt, bool> {
    let mut expected = BTreeMap::new();
    for (resource, grants) in &tables.jetstream {
        let granted = grants.get(user).cloned().unwrap_or_default();
        for attempt in administration(resource) {
            expected.insert(attempt, false);
        }
        let every = if resource.contains('/') {
            vec!["take"]
        } else {
            vec!["info", "get", "append", "watch", "read-objects"]
        };
        for op in every {
            for attempt in operation(resource, op) {
                let allowed = granted.contains(op);
                // An operation granted by any of its names counts (read-objects creates
                // the same unnamed consumer the administration list refuses).
                let entry = expected.entry(attempt).or_insert(false);
                *entry |= allowed;
            }
        }
    }
    for attempt in account_administration() {
        expected.insert(attempt, false);
    }
    for (subject, (publishers, subscribers)) in &tables.core {
        if !subject.contains(['*', '>']) {
            expected.insert(Attempt::Publish(subject.clone()), publishers.contains(user));
        }
        expected.insert(
            Attempt::Subscribe(subject.clone()),
            subscribers.contains(user),
        );
    }
    expected
}

/// A client of `user` and the server errors it reports.
async fn connect(nats: &NatsServer, user: &str) -> (Client, mpsc::UnboundedReceiver<String>) {
    nats.connect_reporting_errors(user).await.expect("connect")
}

/// Attempts made before the client waits for the server's answers: async-nats drops server
/// errors beyond 128 waiting to be read.
const BATCH: usize = 50;

/// Makes every attempt as `user`, then returns the violations the server reported. After
/// each batch, a publish nobody may make marks its end: the server answers a connection's
/// messages in order, so once that one is refused, every refusal before it has arrived.
async fn try_all(nats: &NatsServer, user: &str, attempts: &[Attempt]) -> BTreeSet<String> {
    let (client, mut errors) = connect(nats, user).await;
    let mut subscriptions = Vec::new();
    let mut violations = BTreeSet::new();
    for (batch, attempts) in attempts.chunks(BATCH).enumerate() {
        for attempt in attempts {
            match attempt {
                Attempt::Publish(subject) => {
                    // Were an append allowed, this expectation keeps it out of the stream.
                    let mut headers = HeaderMap::new();
                    headers.insert(header::NATS_EXPECTED_LAST_SUBJECT_SEQUENCE, "999999999");
                    client
                        .publish_with_headers(subject.clone(), headers, "probe".into())
                        .await
                        .expect("sent");
                }
                Attempt::Subscribe(subject) => {
                    subscriptions.push(client.subscribe(subject.clone()).await.expect("sent"));
                }
            }
        }
        let end = Attempt::Publish(format!("certflow.permissions.end.{batch}"));
        if let Attempt::Publish(subject) = &end {
            client
                .publish(subject.clone(), "end".into())
                .await
                .expect("sent");
        }
        client.flush().await.expect("flush");
        loop {
            let error = tokio::time::timeout(Duration::from_secs(10), errors.recv())
                .await
                .unwrap_or_else(|_| panic!("{user}: the server never refused the end marker"))
                .expect("errors channel open");
            if error.contains(&end.violation()) {
                break;
            }
            violations.insert(error);
        }
    }
    drop(subscriptions);
    violations
}

#[tokio::test]
async fn every_user_may_do_exactly_what_architecture_md_says() {
    let tables = read_tables();
    let nats = NatsServer::start_secured().expect("nats with certflow's users");
    let operator = nats.connect_as(Some("operator")).await.expect("operator");
    certflow_store::provision(operator.clone(), &certd::Config::new("", "").layout())
        .await
        .expect("the operator provisions");

    // The table names every stream and consumer certflow has, and nothing else.
    let resources: BTreeSet<String> = certd::Config::new("", "")
        .layout()
        .resources()
        .iter()
        .map(Resource::name)
        .collect();
    let tabled: BTreeSet<String> = tables.jetstream.keys().cloned().collect();
    assert_eq!(
        tabled, resources,
        "ARCHITECTURE.md's table and the layout differ"
    );

    let mut wrong = Vec::new();
    let mut checked = 0;
    for user in USERS {
        let expected = expectations(&tables, user);
        let attempts: Vec<Attempt> = expected.keys().cloned().collect();
        let violations = try_all(&nats, user, &attempts).await;
        for (attempt, allowed) in &expected {
            let refused = violations.iter().any(|v| v.contains(&attempt.violation()));
            checked += 1;
            if refused == *allowed {
                wrong.push(format!(
                    "{user}: {attempt:?} was {} but the table says {}",
                    if refused { "refused" } else { "allowed" },
                    if *allowed { "allowed" } else { "refused" }
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {checked}:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    eprintln!(
        "{checked} attempts as {} users, each as the table says",
        USERS.len()
    );

    // Nothing was stored by what was allowed, and every stream is as it was made.
    let js = jetstream::new(operator);
    for resource in certd::Config::new("", "").layout().resources() {
        if let Resource::Stream(config) = resource {
            let mut stream = js
                .get_stream(&config.name)
                .await
                .expect("stream still there");
            let info = stream.info().await.expect("info");
            assert_eq!(info.state.messages, 0, "{} gained a message", config.name);
            assert!(!info.config.sealed, "{} was sealed", config.name);
        }
    }
}

#[tokio::test]
async fn a_service_cannot_seal_the_log_or_change_a_consumer_by_creating_one_in_its_name() {
    let nats = NatsServer::start_secured().expect("nats with certflow's users");
    let operator = nats.connect_as(Some("operator")).await.expect("operator");
    certflow_store::provision(operator.clone(), &certd::Config::new("", "").layout())
        .await
        .expect("the operator provisions");
    let js = jetstream::new(operator);
    for user in USERS {
        let (client, mut errors) = connect(&nats, user).await;
        let mut attacker = jetstream::new(client);
        attacker.set_timeout(Duration::from_millis(500));
        // Seal the event log: every command would fail for good.
        let sealed = attacker
            .update_stream(jetstream::stream::Config {
                name: "CERTFLOW_EVENTS".into(),
                subjects: vec!["certflow.events.>".into()],
                sealed: true,
                ..Default::default()
            })
            .await;
        assert!(sealed.is_err(), "{user} sealed the log");
        // An unnamed create that names the revocation service's consumer in its body.
        let hijack: Result<jetstream::consumer::Info, _> = attacker
            .request(
                "CONSUMER.CREATE.CERTFLOW_EVENTS",
                &serde_json::json!({
                    "stream_name": "CERTFLOW_EVENTS",
                    "config": {"name": "revocation", "ack_policy": "explicit",
                               "max_ack_pending": 1, "filter_subject": "certflow.events.certificate.>"}
                }),
            )
            .await;
        assert!(hijack.is_err(), "{user} changed the revocation consumer");
        let error = tokio::time::timeout(Duration::from_secs(5), errors.recv())
            .await
            .expect("a violation")
            .expect("open");
        assert!(error.contains("Permissions Violation"), "{user}: {error}");
    }
    let stream = js.get_stream("CERTFLOW_EVENTS").await.expect("events");
    assert!(!stream.cached_info().config.sealed);
    let consumer = stream.consumer_info("revocation").await.expect("consumer");
    assert_eq!(consumer.config.max_ack_pending, 1_000);
}
