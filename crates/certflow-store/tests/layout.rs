//! Provisioning against a real nats-server: every resource is made once, a second run changes
//! nothing, a changed setting is applied, and nothing attaches to what was never made.

use std::time::Duration;

use certflow_store::{EventStore, Layout, StoreConfig, StoreError, provision};
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

    // Redelivery sooner: every consumer of the event log and the check queue changes;
    // nothing else does.
    let changed = Layout {
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
            "CERTFLOW_EVENTS/revocation",
            "CERTFLOW_EVENTS/validation",
            "CERTFLOW_EVENTS/review",
            "CERTFLOW_EVENTS/reissue",
            "CERTFLOW_VALIDATION_CHECKS/validation-checks",
        ]
    );
    let js = async_nats::jetstream::new(client.clone());
    let stream = js.get_stream("CERTFLOW_EVENTS").await.expect("events");
    let consumer = stream.consumer_info("reissue").await.expect("consumer");
    assert_eq!(consumer.config.ack_wait, Duration::from_secs(3));
}

/// An events stream made before commands stored their outcomes beside their events (no
/// atomic batches, no per-message time to live) is brought up to date in place.
#[tokio::test]
async fn an_events_stream_of_an_earlier_release_gains_atomic_batches_and_ttls() {
    let nats = NatsServer::start().expect("nats");
    let client = nats.connect_as(None).await.expect("client");
    let layout = Layout::default();
    let js = async_nats::jetstream::new(client.clone());
    let current = layout
        .resources()
        .into_iter()
        .find_map(|resource| match resource {
            certflow_store::layout::Resource::Stream(config)
                if config.name == "CERTFLOW_EVENTS" =>
            {
                Some(*config)
            }
            _ => None,
        })
        .expect("the events stream is in the layout");
    assert!(current.allow_atomic_publish && current.allow_message_ttl);
    js.create_stream(async_nats::jetstream::stream::Config {
        allow_atomic_publish: false,
        allow_message_ttl: false,
        ..current
    })
    .await
    .expect("the earlier release's stream");

    let provisioned = provision(client.clone(), &layout).await.expect("provision");
    assert!(
        provisioned
            .updated
            .iter()
            .any(|name| name == "CERTFLOW_EVENTS"),
        "{provisioned:?}"
    );
    let mut stream = js.get_stream("CERTFLOW_EVENTS").await.expect("events");
    let config = stream.info().await.expect("info").config.clone();
    assert!(config.allow_atomic_publish && config.allow_message_ttl);
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
