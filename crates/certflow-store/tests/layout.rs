//! Provisioning against a real nats-server: every resource is made once, a second run changes
//! nothing, a changed setting is applied, and nothing attaches to what was never made.

use std::time::Duration;

use certflow_store::{EventStore, Layout, Outcomes, StoreConfig, StoreError, provision};
use certflow_testkit::NatsServer;

/// The layout with four services reacting to the log, as certd has them.
fn with_reacting_services() -> Layout {
    Layout {
        reacting: [
            ("revocation", 30),
            ("validation", 30),
            ("review", 30),
            ("reissue", 60),
        ]
        .into_iter()
        .map(|(name, seconds)| (name.to_string(), Duration::from_secs(seconds)))
        .collect(),
        ..Layout::default()
    }
}

#[tokio::test]
async fn provisioning_twice_changes_nothing_and_a_new_setting_is_applied() {
    let nats = NatsServer::start().expect("nats");
    let client = nats.connect_as(None).await.expect("client");
    let layout = with_reacting_services();
    let every: Vec<String> = layout.resources().iter().map(|r| r.name()).collect();

    let first = provision(client.clone(), &layout).await.expect("provision");
    assert_eq!(
        first.created, every,
        "everything is made on an empty server"
    );
    assert!(first.updated.is_empty() && first.unchanged.is_empty());

    let again = provision(client.clone(), &layout).await.expect("provision");
    assert_eq!(
        again.unchanged, every,
        "a second run finds everything as it should be"
    );
    assert!(again.created.is_empty() && again.updated.is_empty());

    // Outcomes kept longer, redelivery sooner: the outcome stream and every consumer of the
    // event log, the check queue and the delivery queue change; nothing else does.
    let changed = Layout {
        outcome_ttl: Duration::from_secs(48 * 3600),
        store: StoreConfig {
            redelivery_after: Some(Duration::from_secs(3)),
            ..StoreConfig::default()
        },
        ..with_reacting_services()
    };
    let migrated = provision(client.clone(), &changed)
        .await
        .expect("provision");
    assert_eq!(
        migrated.updated,
        [
            "CERTFLOW_OUTCOMES",
            "CERTFLOW_EVENTS/revocation",
            "CERTFLOW_EVENTS/validation",
            "CERTFLOW_EVENTS/review",
            "CERTFLOW_EVENTS/reissue",
            "CERTFLOW_VALIDATION_CHECKS/validation-checks",
            "CERTFLOW_NOTIFICATIONS/notifier-deliveries",
        ]
    );
    let js = async_nats::jetstream::new(client.clone());
    let mut outcomes = js.get_stream(Outcomes::STREAM).await.expect("outcomes");
    let info = outcomes.info().await.expect("info");
    assert_eq!(info.config.max_age, Duration::from_secs(48 * 3600));
    let stream = js.get_stream("CERTFLOW_EVENTS").await.expect("events");
    let consumer = stream.consumer_info("reissue").await.expect("consumer");
    assert_eq!(consumer.config.ack_wait, Duration::from_secs(3));
}

#[tokio::test]
async fn nothing_attaches_before_provisioning() {
    let nats = NatsServer::start().expect("nats");
    let client = nats.connect_as(None).await.expect("client");
    let err = EventStore::attach(client.clone(), StoreConfig::default())
        .await
        .expect_err("no stream yet");
    assert!(
        matches!(&err, StoreError::NotProvisioned(name) if name == "CERTFLOW_EVENTS"),
        "{err}"
    );
    assert!(err.to_string().contains("certd provision"), "{err}");

    provision(client.clone(), &Layout::default())
        .await
        .expect("provision");
    let store = EventStore::attach(client, StoreConfig::default())
        .await
        .expect("attached once provisioned");
    assert_eq!(store.last_sequence().await.expect("sequence"), 0);
}
