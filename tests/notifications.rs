//! Notifications end to end: events in the log reach a real HTTPS receiver (signatures
//! checked as a Standard Webhooks receiver checks them) and a real SMTP server (aiosmtpd);
//! failures retry on the schedule with one id, give up into dead letters that replay; the
//! address policy refuses what it must before any connection; a notifier killed mid-delivery
//! loses nothing and sends nothing under a new id. Every receiver is on 127.0.0.1, reached
//! through the operator's override (`--notify-allow-network 127.0.0.0/8`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use certflow_domain::Duration as PolicyDuration;
use certflow_proto::v1::notification_service_client::NotificationServiceClient;
use certflow_proto::v1::reissue_service_client::ReissueServiceClient;
use certflow_proto::v1::request_reissue_request::Key;
use certflow_proto::v1::{
    Brand, CreateEndpointRequest, DeadLetter, DeleteEndpointRequest, Level, ListDeadLettersRequest,
    ListEndpointsRequest, NotificationType, OriginalKey, RejectReviewRequest,
    ReplayDeadLetterRequest, RequestReissueRequest, RequestRevocationRequest, RevocationReason,
    RotateEndpointSecretRequest, ValidationMethod, create_endpoint_request::Target,
};
use certflow_testkit::dns::AuthoritativeDns;
use certflow_testkit::{Authed, Bearer, Certflow, NatsServer, eventually};
use tonic::Code;

use crate::support::flows::{self, Ground, ServiceSet};
use crate::support::receivers::{Answer, Received, SmtpServer, WebhookReceiver};
use crate::support::{self, certificate_of, dns_auto_dv, issue, request_id};

const LOOPBACK: &str = "127.0.0.0/8";

/// certflow whose notifier may reach loopback receivers and trusts `receiver`'s CA, sends
/// email through `smtp`, resolves webhook hosts and proves domains with `dns`; `tune`
/// changes the rest.
async fn certflow_notifying(
    receiver: &WebhookReceiver,
    smtp: Option<&SmtpServer>,
    dns: &AuthoritativeDns,
    tune: impl FnOnce(&mut certd::Config),
) -> Certflow {
    let ca = receiver.ca_pem().as_bytes().to_vec();
    let smtp_url = smtp.map(SmtpServer::url);
    let dns = dns.addr();
    Certflow::start_with(move |config| {
        config.gateway.commands_per_second = 1_000_000;
        config.gateway.queries_per_second = 1_000_000;
        config.notify.allowed_networks = vec![LOOPBACK.parse().expect("network")];
        config.notify.extra_roots_pem = vec![ca];
        config.notify.dns_servers = vec![dns];
        config.notify.timeout = Duration::from_secs(3);
        if let Some(url) = smtp_url {
            config.notify.smtp_url = Some(url);
            config.notify.email_from = Some("certflow <noreply@certflow.test>".into());
        }
        config.validation.probe.dns_servers = vec![dns];
        config.validation.recheck_initial = Duration::from_millis(200);
        config.validation.recheck_max = Duration::from_millis(500);
        tune(config);
    })
    .await
    .expect("start")
}

async fn notifications(certflow: &Certflow, account: &str) -> NotificationServiceClient<Authed> {
    let token = certflow.token("alice", account, &["customer"]);
    NotificationServiceClient::with_interceptor(
        certflow.channel().await.expect("channel"),
        Bearer::new(Some(&token)).expect("bearer"),
    )
}

/// Registers a webhook; returns its id and signing secret.
async fn webhook(
    client: &mut NotificationServiceClient<Authed>,
    url: String,
    types: &[NotificationType],
) -> (String, String) {
    let created = client
        .create_endpoint(CreateEndpointRequest {
            request_id: request_id(),
            target: Some(Target::WebhookUrl(url)),
            types: types.iter().map(|&t| t as i32).collect(),
        })
        .await
        .expect("webhook registered")
        .into_inner();
    let endpoint = created.endpoint.expect("endpoint");
    assert!(created.signing_secret.starts_with("whsec_"));
    (endpoint.endpoint_id, created.signing_secret)
}

fn revoke(id: &str, reason: RevocationReason) -> RequestRevocationRequest {
    RequestRevocationRequest {
        request_id: request_id(),
        certificate_id: id.into(),
        reason: reason as i32,
        description: String::new(),
        validation_method: ValidationMethod::Dns as i32,
    }
}

/// Issues an acme certificate for `domain` (DNS_AUTO: revoked at once) and revokes it.
async fn issued_and_revoked(certflow: &Certflow, domain: &str) -> certflow_proto::v1::Certificate {
    let mut certs = certflow.certificates().await.expect("client");
    let cert = issue(&mut certs, dns_auto_dv("acme", domain)).await;
    certflow
        .revocations()
        .await
        .expect("client")
        .request_revocation(revoke(&cert.id, RevocationReason::Superseded))
        .await
        .expect("revoked");
    cert
}

fn of_kind<'a>(received: &'a [Received], kind: &str) -> Vec<&'a Received> {
    received.iter().filter(|r| r.kind() == kind).collect()
}

async fn dead_letters(client: &mut NotificationServiceClient<Authed>) -> Vec<DeadLetter> {
    client
        .list_dead_letters(ListDeadLettersRequest {})
        .await
        .expect("listed")
        .into_inner()
        .dead_letters
}

#[tokio::test]
async fn every_kind_of_notification_reaches_a_signed_webhook_and_an_email() {
    let receiver = WebhookReceiver::start().await;
    let smtp = SmtpServer::start().await;
    let dns = AuthoritativeDns::start(&["example.org"])
        .await
        .expect("dns");
    // A 6-second validation window, the reminder 4 seconds before its end.
    let certflow = certflow_notifying(&receiver, Some(&smtp), &dns, |config| {
        config.policy.validation_window = PolicyDuration::millis(6_000);
        config.notify.remind_before = Duration::from_secs(4);
    })
    .await;
    let mut notify = notifications(&certflow, "acme").await;
    let (_, secret) = webhook(&mut notify, receiver.url("/hooks/certflow"), &[]).await;
    notify
        .create_endpoint(CreateEndpointRequest {
            request_id: request_id(),
            target: Some(Target::Email("pki@acme.example".into())),
            types: Vec::new(),
        })
        .await
        .expect("email registered");
    let mut certs = certflow.certificates().await.expect("client");
    let mut revocations = certflow.revocations().await.expect("client");

    // A DV revocation whose domain is never proven: challenges, a reminder, a failure.
    let lost = issue(
        &mut certs,
        certificate_of(Brand::Geotrust, Level::Dv, "lost.example.org"),
    )
    .await;
    revocations
        .request_revocation(revoke(&lost.id, RevocationReason::Superseded))
        .await
        .expect("pending");
    // An OV revocation a reviewer rejects.
    let kept = issue(
        &mut certs,
        certificate_of(Brand::Wotrus, Level::Ov, "kept.example.org"),
    )
    .await;
    revocations
        .request_revocation(RequestRevocationRequest {
            description: "the company was renamed".into(),
            ..revoke(&kept.id, RevocationReason::Superseded)
        })
        .await
        .expect("pending");
    let mut rita = certflow
        .reviews_as(&certflow.token("rita", "certflow-review", &["reviewer"]))
        .await
        .expect("reviewer");
    let task = support::next_review_task(&rita).await;
    rita.reject_review(RejectReviewRequest {
        request_id: request_id(),
        task_id: task.0.task_id.clone(),
        comment: "the letter is not stamped".into(),
        lease: task.1,
    })
    .await
    .expect("rejected");
    // A key compromise, revoked at once.
    let gone = issue(&mut certs, dns_auto_dv("acme", "gone.example.org")).await;
    revocations
        .request_revocation(revoke(&gone.id, RevocationReason::KeyCompromise))
        .await
        .expect("revoked");
    // A reissue with the original key.
    let moved = issue(&mut certs, dns_auto_dv("acme", "moved.example.org")).await;
    let mut reissues: ReissueServiceClient<Authed> = certflow
        .reissues_as(&certflow.token("alice", "acme", &["customer"]))
        .await
        .expect("client");
    reissues
        .request_reissue(RequestReissueRequest {
            request_id: request_id(),
            certificate_id: moved.id.clone(),
            domains: Vec::new(),
            reason: "server moved".into(),
            key: Some(Key::OriginalKey(OriginalKey {})),
            enterprise_info: Default::default(),
            validation_method: 0,
        })
        .await
        .expect("reissue accepted");

    let kinds = [
        "validation.challenges_issued",
        "validation.deadline_approaching",
        "revocation.failed",
        "review.rejected",
        "revocation.completed",
        "key.blocked",
        "reissue.completed",
    ];
    let received = receiver
        .wait_for(Duration::from_secs(60), "every kind", |received| {
            kinds.iter().all(|kind| !of_kind(received, kind).is_empty())
                && of_kind(received, "revocation.failed").len() >= 2
        })
        .await;
    for request in &received {
        assert!(request.signed_by(&secret), "unsigned: {}", request.kind());
        assert_eq!(request.path, "/hooks/certflow");
        let timestamp: i64 = request.timestamp.parse().expect("unix seconds");
        assert!((timestamp - support::unix_now()).abs() < 120, "{timestamp}");
        assert!(request.id.starts_with("msg_"), "{}", request.id);
    }
    let data = |kind: &str, certificate: &str| {
        of_kind(&received, kind)
            .into_iter()
            .map(|r| r.json()["data"].clone())
            .find(|d| d["certificate_id"] == certificate)
            .unwrap_or_else(|| panic!("no {kind} for {certificate}"))
    };
    let challenges = data("validation.challenges_issued", &lost.id);
    let challenge = &challenges["challenges"][0];
    assert_eq!(challenge["record_name"], "_dnsauth.lost.example.org");
    assert_eq!(challenge["record_type"], "TXT");
    let value = challenge["value"].as_str().expect("value").to_string();
    assert_eq!(value.len(), 32, "{challenge}");
    let reminder = data("validation.deadline_approaching", &lost.id);
    assert_eq!(reminder["challenges"][0]["value"], value.as_str());
    assert_eq!(reminder["deadline"], challenges["deadline"]);
    assert_eq!(
        data("revocation.failed", &lost.id)["why"],
        "validation_expired"
    );
    let rejected = data("review.rejected", &kept.id);
    assert_eq!(rejected["comment"], "the letter is not stamped");
    let failed = data("revocation.failed", &kept.id);
    assert_eq!(failed["why"], "review_rejected");
    assert_eq!(failed["review_comment"], "the letter is not stamped");
    assert_eq!(
        data("revocation.completed", &gone.id)["reason"],
        "keyCompromise"
    );
    assert!(data("key.blocked", &gone.id)["public_key_sha256"].is_string());
    let reissued = data("reissue.completed", &moved.id);
    assert!(
        reissued["new_certificate_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );

    // Every notification also went out by email, under the same id; the challenge's email
    // says what to publish.
    for request in &received {
        smtp.wait_for(
            Duration::from_secs(30),
            &[&format!("Notification {}", request.id)],
        )
        .await;
    }
    smtp.wait_for(
        Duration::from_secs(5),
        &["_dnsauth.lost.example.org", &value, "To: pki@acme.example"],
    )
    .await;
    // One notification per event: no id twice with another body.
    let mut bodies: BTreeMap<&str, &Vec<u8>> = BTreeMap::new();
    for request in &received {
        if let Some(body) = bodies.insert(&request.id, &request.body) {
            assert_eq!(body, &request.body, "{} sent with two bodies", request.id);
        }
    }
    // Nothing for another account's endpoint.
    let mut other = notifications(&certflow, "other").await;
    assert!(dead_letters(&mut other).await.is_empty());
}

#[tokio::test]
async fn failed_deliveries_retry_on_schedule_with_one_id_then_dead_letters_replay() {
    let receiver = WebhookReceiver::start().await;
    let dns = AuthoritativeDns::start(&["example.org"])
        .await
        .expect("dns");
    let certflow = certflow_notifying(&receiver, None, &dns, |config| {
        config.notify.retry.delays = vec![Duration::from_secs(1), Duration::from_secs(2)];
        // Attempts at 0, 1, 3 and 5 seconds; a fifth would fall after 7, past the give-up
        // time (the margin absorbs a slow machine's latency).
        config.notify.retry.give_up_after = Duration::from_millis(6_500);
    })
    .await;
    let mut notify = notifications(&certflow, "acme").await;
    let (endpoint, secret) = webhook(
        &mut notify,
        receiver.url("/down"),
        &[NotificationType::RevocationCompleted],
    )
    .await;
    receiver.answer_always(Answer::Status(503));
    let cert = issued_and_revoked(&certflow, "retry.example.org").await;

    // The four attempts fail; then it is a dead letter.
    let dead = eventually(Duration::from_secs(30), || {
        let mut notify = notify.clone();
        async move { dead_letters(&mut notify).await.into_iter().next() }
    })
    .await
    .expect("a dead letter");
    let attempts = receiver.received();
    assert_eq!(attempts.len(), 4, "{attempts:?}");
    assert!(
        attempts
            .iter()
            .all(|a| a.id == attempts[0].id && a.body == attempts[0].body)
    );
    assert!(attempts.iter().all(|a| a.signed_by(&secret)));
    let gaps: Vec<Duration> = attempts.windows(2).map(|w| w[1].at - w[0].at).collect();
    for (gap, least) in gaps.iter().zip([1.0, 2.0, 2.0]) {
        assert!(gap.as_secs_f64() >= least - 0.1, "{gaps:?}");
    }
    assert_eq!(dead.notification_id, attempts[0].id);
    assert_eq!(dead.endpoint_id, endpoint);
    assert_eq!(dead.attempts, 4);
    assert_eq!(dead.certificate_id, cert.id);
    assert_eq!(dead.r#type, NotificationType::RevocationCompleted as i32);
    assert!(dead.last_error.contains("503"), "{}", dead.last_error);
    assert!(dead.replayed_at.is_none());

    // The receiver is fixed; the dead letter is sent again with its id.
    receiver.answer_always(Answer::Ok);
    let replayed = notify
        .replay_dead_letter(ReplayDeadLetterRequest {
            dead_letter_id: dead.dead_letter_id.clone(),
        })
        .await
        .expect("replayed")
        .into_inner()
        .dead_letter
        .expect("dead letter");
    assert!(replayed.replayed_at.is_some());
    let received = receiver
        .wait_for(Duration::from_secs(15), "the replay", |r| r.len() == 5)
        .await;
    assert_eq!(received[4].id, dead.notification_id);
    assert!(received[4].signed_by(&secret));
    // Replaying again sends nothing more; another account cannot see or replay it.
    notify
        .replay_dead_letter(ReplayDeadLetterRequest {
            dead_letter_id: dead.dead_letter_id.clone(),
        })
        .await
        .expect("answered as it is");
    let mut other = notifications(&certflow, "other").await;
    assert!(dead_letters(&mut other).await.is_empty());
    let refused = other
        .replay_dead_letter(ReplayDeadLetterRequest {
            dead_letter_id: dead.dead_letter_id.clone(),
        })
        .await
        .expect_err("not theirs");
    assert_eq!(refused.code(), Code::NotFound);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(receiver.received().len(), 5);
    let listed = dead_letters(&mut notify).await;
    assert_eq!(listed.len(), 1);
    assert!(listed[0].replayed_at.is_some());
}

#[tokio::test]
async fn webhook_urls_are_held_to_the_address_policy_and_redirects_are_refused() {
    let receiver = WebhookReceiver::start().await;
    let dns = AuthoritativeDns::start(&["example.org"])
        .await
        .expect("dns");
    // A customer's host name that points into a private network.
    dns.set_a("internal.example.org", "10.1.2.3".parse().expect("ip"))
        .await;
    let certflow = certflow_notifying(&receiver, None, &dns, |config| {
        config.notify.retry.delays = vec![Duration::from_millis(500)];
        config.notify.retry.give_up_after = Duration::from_secs(1);
    })
    .await;
    let mut notify = notifications(&certflow, "acme").await;

    // Refused at registration, before anything is sent anywhere.
    for url in [
        format!("http://{}", &receiver.url("/plain")["https://".len()..]),
        "https://10.0.0.1/hook".into(),
        "https://169.254.169.254/latest/meta-data".into(),
        "https://[fe80::1]/hook".into(),
        "https://[::ffff:10.0.0.1]/hook".into(),
        "https://user:secret@hooks.example.org/".into(),
    ] {
        let refused = notify
            .create_endpoint(CreateEndpointRequest {
                request_id: request_id(),
                target: Some(Target::WebhookUrl(url.clone())),
                types: Vec::new(),
            })
            .await
            .expect_err(&url);
        assert_eq!(refused.code(), Code::InvalidArgument, "{url}");
        assert_eq!(support::reason(&refused), "INVALID_ARGUMENT", "{url}");
    }

    // This deployment has no SMTP relay: an email endpoint would only collect dead letters.
    let refused = notify
        .create_endpoint(CreateEndpointRequest {
            request_id: request_id(),
            target: Some(Target::Email("pki@acme.example".into())),
            types: Vec::new(),
        })
        .await
        .expect_err("no relay");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused.message().contains("sends no email"),
        "{}",
        refused.message()
    );

    // A host name is judged on the addresses it resolves to, before connecting; a
    // redirect is never followed.
    let port = receiver.url("")["https://127.0.0.1:".len()..].to_string();
    let (internal, _) = webhook(
        &mut notify,
        format!("https://internal.example.org:{port}/hook"),
        &[NotificationType::RevocationCompleted],
    )
    .await;
    let (unknown, _) = webhook(
        &mut notify,
        format!("https://missing.example.org:{port}/hook"),
        &[NotificationType::RevocationCompleted],
    )
    .await;
    let (redirecting, _) = webhook(
        &mut notify,
        receiver.url("/moved"),
        &[NotificationType::RevocationCompleted],
    )
    .await;
    receiver.answer_always(Answer::Redirect(receiver.url("/elsewhere")));
    issued_and_revoked(&certflow, "policy.example.org").await;
    let dead = eventually(Duration::from_secs(30), || {
        let mut notify = notify.clone();
        async move {
            let dead = dead_letters(&mut notify).await;
            (dead.len() == 3).then_some(dead)
        }
    })
    .await
    .expect("three dead letters");
    let by_endpoint: BTreeMap<&str, &DeadLetter> =
        dead.iter().map(|d| (d.endpoint_id.as_str(), d)).collect();
    // Refused before connecting; the customer is not told which private address it was.
    let refused = &by_endpoint[internal.as_str()].last_error;
    assert!(
        refused.contains("internal.example.org resolves to no address certflow connects to"),
        "{refused}"
    );
    assert!(!refused.contains("10.1.2.3"), "{refused}");
    // A name the resolver does not know reads the same: nothing is learnt of the zone.
    let unresolved = &by_endpoint[unknown.as_str()].last_error;
    assert_eq!(
        unresolved.replace("missing.example.org", "internal.example.org"),
        *refused
    );
    let malformed = notify
        .replay_dead_letter(ReplayDeadLetterRequest {
            dead_letter_id: "not an id".into(),
        })
        .await
        .expect_err("malformed");
    assert_eq!(malformed.code(), Code::InvalidArgument);
    assert!(
        malformed
            .message()
            .contains("<notification id>/<endpoint id>")
    );
    let redirected = &by_endpoint[redirecting.as_str()].last_error;
    assert!(
        redirected.contains("redirects are not followed"),
        "{redirected}"
    );
    let paths: BTreeSet<String> = receiver.received().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        BTreeSet::from(["/moved".to_string()]),
        "the redirect was followed"
    );
}

#[tokio::test]
async fn a_notifier_killed_mid_delivery_delivers_after_restart_under_the_same_id() {
    let receiver = WebhookReceiver::start().await;
    let nats = NatsServer::start().expect("nats");
    let ground = Ground::new().await;
    let gateway_port = support::free_port();
    let roots = ground.dir.path().join("receiver-ca.pem");
    std::fs::write(&roots, receiver.ca_pem()).expect("write CA");
    let mut args = ground.certd_args(&nats.url());
    args.extend(
        [
            "--data-dir",
            &ground.dir.path().join("data").display().to_string(),
            "--listen",
            &format!("127.0.0.1:{gateway_port}"),
            "--notify-allow-network",
            LOOPBACK,
            "--notify-extra-roots",
            &roots.display().to_string(),
            "--notify-timeout",
            "6",
            "--notify-retry-delays",
            "1",
        ]
        .map(String::from),
    );
    let mut set = ServiceSet::start(args, ground.dir.path());
    let channel = flows::connect(&format!("http://127.0.0.1:{gateway_port}")).await;
    let clients = flows::clients(channel.clone(), &ground.signing_key);
    let token = certd::dev::token(
        &ground.signing_key,
        "alice",
        "acme",
        &["customer"],
        Duration::from_secs(3600),
    )
    .expect("token");
    let mut notify = NotificationServiceClient::with_interceptor(
        channel,
        Bearer::new(Some(&token)).expect("bearer"),
    );
    let (_, secret) = flows::answered(|| {
        let mut notify = notify.clone();
        let url = receiver.url("/slow");
        async move {
            notify
                .create_endpoint(CreateEndpointRequest {
                    request_id: "one-endpoint".into(),
                    target: Some(Target::WebhookUrl(url)),
                    types: vec![NotificationType::RevocationCompleted as i32],
                })
                .await
                .map(|r| r.into_inner())
        }
    })
    .await
    .map(|created| (created.endpoint, created.signing_secret))
    .expect("registered");

    let issue_and_revoke = |domain: &'static str| {
        let clients = clients.clone();
        async move {
            let request = dns_auto_dv("acme", domain);
            let cert = flows::answered(|| {
                let (mut certs, request) = (clients.certs.clone(), request.clone());
                async move { certs.issue_certificate(request).await }
            })
            .await
            .expect("issued")
            .into_inner()
            .certificate
            .expect("certificate");
            let revocation = revoke(&cert.id, RevocationReason::Superseded);
            flows::answered(|| {
                let (mut revocations, request) = (clients.revocations.clone(), revocation.clone());
                async move { revocations.request_revocation(request).await }
            })
            .await
            .expect("revoked");
            cert
        }
    };
    let of_certificate = |id: &str| -> Vec<Received> {
        receiver
            .received()
            .into_iter()
            .filter(|r| r.json()["data"]["certificate_id"] == id)
            .collect()
    };

    // A delivery slower than the ack wait (2 s, --redelivery-after) is kept held while it
    // is under way: it is not handed to a worker again.
    receiver.answer_next([Answer::Hold(Duration::from_secs(4))]);
    let slow = issue_and_revoke("slow.example.org").await;
    receiver
        .wait_for(Duration::from_secs(30), "the slow attempt", |r| {
            !r.is_empty()
        })
        .await;
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert_eq!(
        of_certificate(&slow.id).len(),
        1,
        "one attempt, held throughout"
    );

    // The next attempt is held by the receiver while the notifier is killed.
    receiver.answer_next([Answer::Hold(Duration::from_secs(4))]);
    let cert = issue_and_revoke("crash.example.org").await;
    receiver
        .wait_for(Duration::from_secs(30), "the first attempt", |_| {
            !of_certificate(&cert.id).is_empty()
        })
        .await;
    set.kill("notifier");
    set.respawn("notifier");

    // Nobody keeps it held any more: after the ack wait it comes to the new process.
    receiver
        .wait_for(Duration::from_secs(60), "the delivery again", |_| {
            of_certificate(&cert.id).len() >= 2
        })
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let received_now = of_certificate(&cert.id);
    assert_eq!(received_now.len(), 2, "delivered once it succeeded");
    let ids: BTreeSet<&str> = received_now.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids.len(), 1, "one notification, one id: {ids:?}");
    assert!(received_now.iter().all(|r| r.body == received_now[0].body));
    assert!(received_now.iter().all(|r| r.signed_by(&secret)));
    assert!(dead_letters(&mut notify).await.is_empty());
}

#[tokio::test]
async fn a_rotated_secret_signs_beside_the_new_one_and_a_removed_endpoint_hears_nothing() {
    let receiver = WebhookReceiver::start().await;
    let dns = AuthoritativeDns::start(&["example.org"])
        .await
        .expect("dns");
    let certflow = certflow_notifying(&receiver, None, &dns, |_| {}).await;
    // The token's account is written `Acme`: one account with `acme`, whose certificates
    // these are.
    let mut notify = notifications(&certflow, "Acme").await;
    let (endpoint, old_secret) = webhook(
        &mut notify,
        receiver.url("/rotating"),
        &[NotificationType::RevocationCompleted],
    )
    .await;
    let rotate = RotateEndpointSecretRequest {
        endpoint_id: endpoint.clone(),
        request_id: request_id(),
    };
    let rotated = notify
        .rotate_endpoint_secret(rotate.clone())
        .await
        .expect("rotated")
        .into_inner();
    let new_secret = rotated.signing_secret;
    assert!(new_secret.starts_with("whsec_") && new_secret != old_secret);
    // A retry of the same rotation answers with the same secret and rotates nothing.
    let retried = notify
        .rotate_endpoint_secret(rotate)
        .await
        .expect("retried")
        .into_inner();
    assert_eq!(retried.signing_secret, new_secret);
    let listed = notify
        .list_endpoints(ListEndpointsRequest {})
        .await
        .expect("listed")
        .into_inner()
        .endpoints;
    assert_eq!(listed.len(), 1);
    assert!(listed[0].previous_secret_until.is_some());

    issued_and_revoked(&certflow, "rotate.example.org").await;
    let received = receiver
        .wait_for(Duration::from_secs(30), "the revocation", |r| r.len() == 1)
        .await;
    assert_eq!(
        received[0].signature.split(' ').count(),
        2,
        "both secrets sign"
    );
    assert!(received[0].signed_by(&new_secret));
    assert!(received[0].signed_by(&old_secret));
    assert!(!received[0].signed_by("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));

    // Another account cannot remove it; its owner can, and then it hears nothing.
    let mut other = notifications(&certflow, "other").await;
    other
        .delete_endpoint(DeleteEndpointRequest {
            endpoint_id: endpoint.clone(),
        })
        .await
        .expect("nothing of theirs to delete");
    issued_and_revoked(&certflow, "still.example.org").await;
    receiver
        .wait_for(Duration::from_secs(30), "the second revocation", |r| {
            r.len() == 2
        })
        .await;
    notify
        .delete_endpoint(DeleteEndpointRequest {
            endpoint_id: endpoint,
        })
        .await
        .expect("removed");
    issued_and_revoked(&certflow, "silent.example.org").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        receiver.received().len(),
        2,
        "a removed endpoint hears nothing"
    );
}
