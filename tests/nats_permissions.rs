//! `deploy/nats/certflow.conf`: each service's NATS user may touch only its own subjects.

use std::time::Duration;

use async_nats::{Client, ConnectOptions, Event, jetstream};
use certflow_testkit::NatsServer;
use futures::StreamExt;
use tokio::sync::mpsc;

/// A client of `user` and the permission violations the server reports to it.
async fn connect(nats: &NatsServer, user: &str) -> (Client, mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let client = ConnectOptions::with_user_and_password(
        user.into(),
        nats.password(user).expect("known user").into(),
    )
    .event_callback(move |event| {
        let tx = tx.clone();
        async move {
            if let Event::ServerError(err) = event {
                let _ = tx.send(err.to_string());
            }
        }
    })
    .connect(nats.url())
    .await
    .expect("connect");
    (client, rx)
}

async fn expect_violation(errors: &mut mpsc::UnboundedReceiver<String>, what: &str) {
    let error = tokio::time::timeout(Duration::from_secs(5), errors.recv())
        .await
        .unwrap_or_else(|_| panic!("no permissions violation for {what}"))
        .expect("error channel open");
    assert!(error.contains("Permissions Violation"), "{what}: {error}");
}

#[tokio::test]
async fn services_cannot_publish_or_subscribe_outside_their_subjects() {
    let nats = NatsServer::start_secured().expect("nats");
    let (operator, _) = connect(&nats, "operator").await;
    let mut watch = operator.subscribe("certflow.>").await.expect("subscribe");
    operator.flush().await.expect("flush");

    let forbidden = [
        ("projection", "certflow.events.certificate.forged"),
        ("gateway", "certflow.events.certificate.forged"),
        ("gateway", "certflow.cmd.issuance.reissue"),
        ("gateway", "certflow.cmd.issuance.generate-key"),
        ("validation", "certflow.cmd.revocation.request"),
        ("issuance", "certflow.cmd.revocation.request"),
        ("review", "certflow.keys.sealed.forged"),
        ("reviewer", "certflow.events.certificate.forged"),
        ("reviewer", "review.queue.revocation.forged"),
        ("reissue", "certflow.query.certificate.get"),
        ("reissue", "certflow.keys.sealed.forged"),
        ("reissue", "certflow.cmd.issuance.issue"),
    ];
    for (user, subject) in forbidden {
        let (client, mut errors) = connect(&nats, user).await;
        client
            .publish(subject, "forged".into())
            .await
            .expect("sent");
        client.flush().await.expect("flush");
        expect_violation(&mut errors, &format!("{user} publishing to {subject}")).await;
    }

    // A permitted publish arrives, and it is the first message the operator sees: none of
    // the forbidden ones got through.
    let (gateway, _) = connect(&nats, "gateway").await;
    gateway
        .publish("certflow.cmd.review.probe", "allowed".into())
        .await
        .expect("sent");
    gateway.flush().await.expect("flush");
    let first = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .expect("a message arrives")
        .expect("subscription open");
    assert_eq!(first.subject.as_str(), "certflow.cmd.review.probe");

    // Reviewers' clients may not read the services' replies.
    let (reviewer, mut errors) = connect(&nats, "reviewer").await;
    let _sneak = reviewer
        .subscribe("_INBOX.>")
        .await
        .expect("subscribe sent");
    reviewer.flush().await.expect("flush");
    expect_violation(&mut errors, "reviewer subscribing to the services' inboxes").await;

    // Nor may a service listen to another service's commands.
    let (validation, mut errors) = connect(&nats, "validation").await;
    let _sneak = validation
        .subscribe("certflow.cmd.revocation.>")
        .await
        .expect("subscribe sent");
    validation.flush().await.expect("flush");
    expect_violation(&mut errors, "validation subscribing to revocation commands").await;
}

#[tokio::test]
async fn only_the_operator_may_delete_or_purge_streams() {
    let nats = NatsServer::start_secured().expect("nats");
    let (operator, _) = connect(&nats, "operator").await;
    jetstream::new(operator.clone())
        .get_or_create_stream(jetstream::stream::Config {
            name: "CERTFLOW_EVENTS".into(),
            subjects: vec!["certflow.events.>".into()],
            ..Default::default()
        })
        .await
        .expect("stream");

    for user in ["revocation", "issuance", "projection"] {
        let (client, mut errors) = connect(&nats, user).await;
        let mut js = jetstream::new(client);
        js.set_timeout(Duration::from_millis(500));
        assert!(
            js.delete_stream("CERTFLOW_EVENTS").await.is_err(),
            "{user} deleted"
        );
        expect_violation(&mut errors, &format!("{user} deleting the stream")).await;
        let stream = js.get_stream("CERTFLOW_EVENTS").await.expect("still there");
        assert!(stream.purge().await.is_err(), "{user} purged");
    }
    let mut stream = jetstream::new(operator)
        .get_stream("CERTFLOW_EVENTS")
        .await
        .expect("stream survived");
    assert_eq!(
        stream.info().await.expect("info").config.name,
        "CERTFLOW_EVENTS"
    );
}
