//! A secret is readable on NATS only by the one service that needs it.
//!
//! With every service running as its own NATS user, each other user tries every way to
//! read the secrets of a customer's calls: subscribing to the issuance service's commands,
//! to everything, to every inbox and to the gateway's; a stream of its own that would
//! capture them; a consumer on every stream that exists; and what its own permissions
//! let it subscribe to. Meanwhile a customer issues a key under a password, uploads a
//! private key, downloads a PKCS#12 archive under a password and the PEM private key, and
//! reissues with a generated key under a password. None of these secrets reaches any
//! other user, and no stream holds one in clear.

use std::collections::BTreeMap;
use std::time::Duration;

use async_nats::{Client, jetstream};
use certflow_proto::v1::{
    DownloadCertificateRequest, DownloadFormat, KeyAlgorithm, RequestReissueRequest,
    UploadCertificateRequest, request_reissue_request,
};
use certflow_store::layout::{Layout, Resource};
use certflow_testkit::{Certflow, NatsServer};
use futures::StreamExt;
use tokio::sync::mpsc;

use crate::support::{self, dns_auto_dv, request_id};

/// Every user but the issuance service, which needs the request secrets, and the gateway,
/// which takes them from the client and returns the downloaded key to it.
const ATTACKERS: [&str; 7] = [
    "notifier",
    "revocation",
    "reissue",
    "validation",
    "review",
    "reviewer",
    "projection",
];

/// Subscriptions that would see the secrets if allowed.
const EAVESDROP: [&str; 8] = [
    ">",
    "certflow.>",
    "certflow.cmd.>",
    "certflow.cmd.issuance.>",
    "_INBOX.>",
    "_INBOX_gateway.>",
    "_INBOX_issuance.>",
    "*.>",
];

/// What one attacker saw, and the server's refusals.
struct Attacker {
    user: &'static str,
    client: Client,
    refusals: mpsc::UnboundedReceiver<String>,
    seen: mpsc::UnboundedReceiver<Vec<u8>>,
}

async fn attacker(nats: &NatsServer, user: &'static str) -> Attacker {
    let (client, refusals) = nats.connect_reporting_errors(user).await.expect("connect");
    let (saw, seen) = mpsc::unbounded_channel();
    Attacker {
        user,
        client,
        refusals,
        seen,
    }
    .listen(saw)
    .await
}

impl Attacker {
    /// Subscribes to everything it may try, and keeps whatever arrives.
    async fn listen(self, saw: mpsc::UnboundedSender<Vec<u8>>) -> Self {
        let mut subjects: Vec<String> = EAVESDROP.iter().map(|s| s.to_string()).collect();
        // What its own permissions let it hear: its own commands (a second subscriber
        // outside the queue group hears every request), the log, the review queue.
        subjects.extend([
            format!("certflow.cmd.{}.>", self.user),
            "certflow.events.certificate.>".to_string(),
            "review.queue.>".to_string(),
            format!("{}.>", certd::inbox_prefix(self.user)),
        ]);
        for subject in subjects {
            let mut subscription = self.client.subscribe(subject).await.expect("sent");
            let saw = saw.clone();
            tokio::spawn(async move {
                while let Some(message) = subscription.next().await {
                    let mut seen = message.payload.to_vec();
                    if let Some(headers) = &message.headers {
                        for (name, values) in headers.iter() {
                            seen.extend_from_slice(name.to_string().as_bytes());
                            for value in values {
                                seen.extend_from_slice(value.as_str().as_bytes());
                            }
                        }
                    }
                    let _ = saw.send(seen);
                }
            });
        }
        self.client.flush().await.expect("flush");
        self
    }

    /// A stream of its own over the commands and the gateway's replies, and a consumer
    /// delivering to its inbox on every stream certflow has.
    async fn tap(&self) -> Vec<String> {
        let mut js = jetstream::new(self.client.clone());
        js.set_timeout(Duration::from_millis(500));
        let mut got_through = Vec::new();
        let tap = js
            .create_stream(jetstream::stream::Config {
                name: format!("TAP_{}", self.user),
                subjects: vec!["certflow.cmd.>".into(), "_INBOX_gateway.>".into()],
                ..Default::default()
            })
            .await;
        if tap.is_ok() {
            got_through.push("a tap stream".to_string());
        }
        for resource in Layout::default().resources() {
            let Resource::Stream(stream) = resource else {
                continue;
            };
            let created: Result<jetstream::consumer::Info, _> = js
                .request(
                    format!("CONSUMER.CREATE.{}", stream.name),
                    &serde_json::json!({
                        "stream_name": stream.name,
                        "config": {"deliver_subject": format!("{}.tap", certd::inbox_prefix(self.user)),
                                   "ack_policy": "none"}
                    }),
                )
                .await;
            if created.is_ok() {
                got_through.push(format!("a consumer on {}", stream.name));
            }
        }
        got_through
    }
}

/// A self-signed certificate for `name` and its private key, both PEM.
fn certificate_with_key(name: &str) -> (String, String) {
    let key = rcgen::KeyPair::generate().expect("key");
    let certificate = rcgen::CertificateParams::new(vec![name.to_string()])
        .expect("params")
        .self_signed(&key)
        .expect("certificate");
    (certificate.pem(), key.serialize_pem())
}

/// The base64 body of a PEM block: what would show if it leaked.
fn pem_body(pem: &str) -> String {
    pem.lines()
        .filter(|line| !line.starts_with("-----"))
        .take(2)
        .collect()
}

#[tokio::test]
async fn no_other_user_reads_a_password_an_uploaded_key_or_a_downloaded_key() {
    let certflow = Certflow::start_secured_with(|config| {
        config.gateway.commands_per_second = 1_000;
    })
    .await
    .expect("start");
    let nats = certflow.nats();
    let mut attackers = Vec::new();
    for user in ATTACKERS {
        attackers.push(attacker(nats, user).await);
    }
    let taps = futures::future::join_all(attackers.iter().map(Attacker::tap)).await;
    for (attacker, got_through) in attackers.iter().zip(taps) {
        // The review service reads staged uploads through consumers of its own; whatever
        // such a consumer delivers is checked below with everything else it heard.
        let expected: &[&str] = match attacker.user {
            "review" => &["a consumer on OBJ_certflow-uploads"],
            _ => &[],
        };
        assert_eq!(got_through, expected, "{}", attacker.user);
    }

    // A customer's calls, each with a secret.
    let customer = certflow.token("alice", "acme", &["customer"]);
    let mut certs = certflow
        .certificates_as(Some(&customer))
        .await
        .expect("client");
    let mut reissues = certflow.reissues_as(&customer).await.expect("client");
    let mut secrets: BTreeMap<&str, String> = BTreeMap::new();

    let issue_password = format!("issue-{}", uuid::Uuid::new_v4().simple());
    let mut request = dns_auto_dv("acme", "secret.example.com");
    request.key_password = issue_password.clone();
    support::issue(&mut certs, request).await;
    secrets.insert("issue key password", issue_password.clone());

    let (pem, key) = certificate_with_key("uploaded.example.net");
    certs
        .upload_certificate(UploadCertificateRequest {
            request_id: request_id(),
            account: "acme".into(),
            pem,
            private_key_pem: key.clone(),
        })
        .await
        .expect("uploaded");
    secrets.insert("uploaded private key", pem_body(&key));

    // A certificate whose key the product holds without a password: its PEM download
    // carries the private key in clear, its PKCS#12 archive a password of the caller's.
    let held = support::issue(&mut certs, dns_auto_dv("acme", "held.example.com")).await;
    let pem_files = certs
        .download_certificate(DownloadCertificateRequest {
            id: held.id.clone(),
            format: DownloadFormat::Pem as i32,
            password: String::new(),
        })
        .await
        .expect("downloaded")
        .into_inner();
    let downloaded_key = pem_files
        .files
        .iter()
        .map(|file| String::from_utf8_lossy(&file.content).into_owned())
        .find(|content| content.contains("PRIVATE KEY"))
        .expect("the download holds the private key");
    secrets.insert("downloaded private key", pem_body(&downloaded_key));
    let p12_password = format!("p12-{}", uuid::Uuid::new_v4().simple());
    certs
        .download_certificate(DownloadCertificateRequest {
            id: held.id.clone(),
            format: DownloadFormat::Pkcs12 as i32,
            password: p12_password.clone(),
        })
        .await
        .expect("PKCS#12 downloaded");
    secrets.insert("PKCS#12 password", p12_password);

    let reissue_password = format!("reissue-{}", uuid::Uuid::new_v4().simple());
    let original = support::issue(&mut certs, dns_auto_dv("acme", "again.example.com")).await;
    reissues
        .request_reissue(RequestReissueRequest {
            request_id: request_id(),
            certificate_id: original.id.clone(),
            reason: "new key".into(),
            key: Some(request_reissue_request::Key::GeneratedKey(
                certflow_proto::v1::GeneratedKey {
                    key_algorithm: KeyAlgorithm::EccP256 as i32,
                    key_password: reissue_password.clone(),
                },
            )),
            ..Default::default()
        })
        .await
        .expect("reissue accepted");
    secrets.insert("reissue key password", reissue_password);

    // Let whatever was going to arrive arrive.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut messages = 0;
    for attacker in &mut attackers {
        let mut refused = Vec::new();
        while let Ok(refusal) = attacker.refusals.try_recv() {
            refused.push(refusal);
        }
        for subject in EAVESDROP {
            let quoted = format!("Subscription to \"{subject}\"");
            assert!(
                refused.iter().any(|r| r.contains(&quoted)),
                "{} was not refused {subject}: {refused:?}",
                attacker.user
            );
        }
        while let Ok(seen) = attacker.seen.try_recv() {
            messages += 1;
            for (what, secret) in &secrets {
                assert!(
                    !seen.windows(secret.len()).any(|w| w == secret.as_bytes()),
                    "{} read the {what}",
                    attacker.user
                );
            }
        }
    }
    // The attackers did hear what their own permissions allow (the log, their commands):
    // the check above looked at real traffic.
    assert!(
        messages > 10,
        "the attackers heard only {messages} messages"
    );

    // No stream holds a secret in clear.
    let operator = nats.connect_as(Some("operator")).await.expect("operator");
    let js = jetstream::new(operator);
    for resource in Layout::default().resources() {
        let Resource::Stream(stream) = resource else {
            continue;
        };
        let stream = js.get_stream(&stream.name).await.expect("stream");
        let mut sequence = 1;
        while let Ok(message) = stream.get_raw_message(sequence).await {
            sequence += 1;
            for (what, secret) in &secrets {
                assert!(
                    !message
                        .payload
                        .windows(secret.len())
                        .any(|w| w == secret.as_bytes()),
                    "{} holds the {what}",
                    stream.cached_info().config.name
                );
            }
        }
    }
}
