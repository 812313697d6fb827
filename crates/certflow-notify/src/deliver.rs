//! Working the delivery queue: each task is a delivery of one notification to one endpoint,
//! or a reminder waiting for its time. A delivery that fails is handed back to JetStream
//! with the retry schedule's delay; one the schedule gives up on becomes a dead letter. A
//! worker that dies mid-delivery leaves the task unacknowledged, and JetStream offers it
//! again after the ack wait, with the same notification id.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use certflow_bus::CancellationToken;
use certflow_domain::{CertificateId, Timestamp};
use certflow_runtime::outbound::{PolicyResolver, Refusal, error_chain, fresh_resolver};
use certflow_store::{NotifyStore, NotifyTask, StoreError};

use lettre::message::{Mailbox, header::ContentType};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use opentelemetry::KeyValue;
use serde::{Deserialize, Serialize};
use tracing::{debug, info, warn};

use crate::endpoints::{self, Endpoints, StoredEndpoint, Target};
use crate::notices::{self, Notice, Reminder};
use crate::schedule::AfterFailure;
use crate::{NotifierService, NotifyConfig, NotifyError};

/// A task of the queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Task {
    Deliver(Delivery),
    Remind(Reminder),
}

/// One notification to one endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub notice: Notice,
    pub endpoint_id: String,
    /// When it was queued (or replayed), Unix milliseconds: the retries give up a schedule's
    /// `give_up_after` later.
    pub queued_at: i64,
    /// How many times it was replayed from the dead letters.
    pub replays: u32,
}

impl Delivery {
    /// The dead letter's key: `<notification>.<endpoint>`, subject tokens.
    pub fn dead_key(&self) -> String {
        format!("{}.{}", self.notice.id, self.endpoint_id)
    }

    /// The queue's message id: a delivery queued twice (a redelivered event, a replay
    /// retried) is stored once.
    fn queue_id(&self) -> String {
        format!("{}.{}.{}", self.notice.id, self.endpoint_id, self.replays)
    }
}

/// A delivery the retries gave up on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadRecord {
    pub delivery: Delivery,
    pub attempts: u64,
    pub last_attempt_at: i64,
    pub last_error: String,
    pub replayed_at: Option<i64>,
}

/// How notifications leave: an HTTPS client held to the address policy, and the operator's
/// SMTP relay.
#[derive(Clone)]
pub struct Senders {
    http: reqwest::Client,
    /// The relay and the sender, when this deployment sends email.
    email: Option<(AsyncSmtpTransport<Tokio1Executor>, Mailbox)>,
}

impl std::fmt::Debug for Senders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Senders")
            .field("from", &self.email.as_ref().map(|(_, from)| from))
            .finish_non_exhaustive()
    }
}

impl Senders {
    /// The HTTPS client and the SMTP transport `config` describes.
    pub fn new(config: &NotifyConfig) -> Result<Self, NotifyError> {
        let resolver = fresh_resolver(&config.dns_servers, config.timeout)
            .map_err(|err| NotifyError::Config(format!("resolv.conf: {err}")))?;
        // Public addresses only, judged before connecting; what a customer's host name
        // resolved to is not told back to the customer.
        let resolve = Arc::new(PolicyResolver::new(
            resolver,
            config.allowed_networks.clone(),
            Refusal::Redacted,
        ));
        let mut http = reqwest::Client::builder()
            .use_rustls_tls()
            .https_only(true)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .user_agent("certflow-notifier")
            .dns_resolver(resolve);
        for pem in &config.extra_roots_pem {
            let certificates = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|err| NotifyError::Config(format!("extra root certificates: {err}")))?;
            for certificate in certificates {
                http = http.add_root_certificate(certificate);
            }
        }
        let http = http
            .build()
            .map_err(|err| NotifyError::Config(format!("HTTPS client: {err}")))?;
        let email = match (&config.smtp_url, &config.email_from) {
            (Some(url), Some(from)) => {
                check_relay_url(url)?;
                let relay = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|err| NotifyError::Config(format!("--smtp-url: {err}")))?
                    .timeout(Some(config.timeout))
                    .build();
                let from = from
                    .parse::<Mailbox>()
                    .map_err(|err| NotifyError::Config(format!("--email-from: {err}")))?;
                Some((relay, from))
            }
            (None, None) => None,
            _ => {
                return Err(NotifyError::Config(
                    "--smtp-url and --email-from go together".into(),
                ));
            }
        };
        Ok(Senders { http, email })
    }
}

/// Refuses a relay URL that would send email (and the relay's password) in the clear over
/// a network: `smtp://` without `tls=required` is plain text in lettre, so it is allowed
/// only to a relay on this machine.
fn check_relay_url(text: &str) -> Result<(), NotifyError> {
    let url = url::Url::parse(text)
        .map_err(|err| NotifyError::Config(format!("--smtp-url is not a URL: {err}")))?;
    let encrypted = url.scheme() == "smtps"
        || url
            .query_pairs()
            .any(|(key, value)| key == "tls" && value == "required");
    let local = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        // `smtp` is no special scheme: an IPv4 address arrives as an opaque host name.
        Some(url::Host::Domain(name)) => {
            name == "localhost"
                || name
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        None => false,
    };
    if encrypted || local {
        Ok(())
    } else {
        Err(NotifyError::Config(format!(
            "--smtp-url {}://{}: plain SMTP to another machine; use smtp://…?tls=required \
             (STARTTLS) or smtps://",
            url.scheme(),
            url.host_str().unwrap_or("")
        )))
    }
}

/// Queues a delivery of `notice` to each of `account`'s `endpoints` that wants it.
pub(crate) async fn fan_out(
    service: &NotifierService,
    account: &str,
    endpoints: &Endpoints,
    notice: &Notice,
) -> Result<(), StoreError> {
    for endpoint in endpoints.endpoints.iter().filter(|e| e.wants(notice.kind)) {
        let delivery = Delivery {
            notice: notice.clone(),
            endpoint_id: endpoint.id.clone(),
            queued_at: certflow_runtime::now().unix_millis(),
            replays: 0,
        };
        enqueue(service, account, &Task::Deliver(delivery)).await?;
    }
    Ok(())
}

/// Queues `task` for `account`.
pub(crate) async fn enqueue(
    service: &NotifierService,
    account: &str,
    task: &Task,
) -> Result<(), StoreError> {
    let id = match task {
        Task::Deliver(delivery) => delivery.queue_id(),
        Task::Remind(reminder) => reminder.queue_id(),
    };
    let payload =
        serde_json::to_vec(task).map_err(|err| StoreError::Unavailable(err.to_string().into()))?;
    service
        .notify
        .enqueue(account, &id, Bytes::from(payload))
        .await
}

/// Works the delivery queue until `shutdown`, fetching no more than it runs at once, so no
/// task waits out its ack wait before it starts.
pub(crate) async fn work(service: NotifierService, shutdown: CancellationToken) {
    let concurrency = service.config.max_concurrent_deliveries;
    certflow_runtime::work_queue(
        NotifyStore::QUEUE,
        || service.notify.tasks(concurrency),
        concurrency,
        shutdown,
        |task| run_task(&service, task),
    )
    .await;
}

async fn run_task(service: &NotifierService, task: NotifyTask) {
    let parsed: Result<Task, _> = serde_json::from_slice(&task.payload);
    let settled = match parsed {
        Ok(Task::Deliver(delivery)) => deliver(service, &task, delivery).await,
        Ok(Task::Remind(reminder)) => remind(service, &task, reminder).await,
        Err(err) => {
            warn!(error = %err, "dropping an unreadable notification task");
            task.done().await
        }
    };
    if let Err(err) = settled {
        warn!(error = %err, "a notification task is offered again after the ack wait");
    }
}

/// A reminder before its time goes back until then; at its time, it is sent if the
/// validation is still open.
async fn remind(
    service: &NotifierService,
    task: &NotifyTask,
    reminder: Reminder,
) -> Result<(), StoreError> {
    let now = certflow_runtime::now().unix_millis();
    if now < reminder.due_at {
        let wait = u64::try_from(reminder.due_at - now).unwrap_or(0);
        return task.again_after(Duration::from_millis(wait)).await;
    }
    let Ok(id) = CertificateId::parse(&reminder.certificate_id) else {
        return task.done().await;
    };
    let loaded = service.store.load(&id).await?;
    if let Some(notice) = notices::remind(&loaded.state, &reminder, certflow_runtime::now()) {
        let (endpoints, _) = endpoints::read(&service.notify, &task.account).await?;
        fan_out(service, &task.account, &endpoints, &notice).await?;
    } else {
        debug!(certificate = %id, "the validation ended before its reminder");
    }
    task.done().await
}

/// One attempt to deliver; then done, handed back with the schedule's delay, or moved to
/// the dead letters.
async fn deliver(
    service: &NotifierService,
    task: &NotifyTask,
    delivery: Delivery,
) -> Result<(), StoreError> {
    let (endpoints, _) = endpoints::read(&service.notify, &task.account).await?;
    let Some(endpoint) = endpoints.find(&delivery.endpoint_id) else {
        debug!(endpoint = %delivery.endpoint_id, "endpoint deleted; dropping its delivery");
        return task.done().await;
    };
    let channel = match endpoint.target {
        Target::Webhook(_) => "webhook",
        Target::Email(_) => "email",
    };
    let metrics = certflow_telemetry::instruments();
    let attempt = tokio::time::timeout(
        service.config.timeout,
        send(service, endpoint, &delivery.notice),
    )
    .await
    .unwrap_or_else(|_| {
        Err(format!(
            "no answer within {} s",
            service.config.timeout.as_secs_f64()
        ))
    });
    let now = certflow_runtime::now().unix_millis();
    let error = match attempt {
        Ok(()) => {
            info!(
                notification = %delivery.notice.id,
                endpoint = %endpoint.id,
                attempt = task.deliveries,
                "notification delivered"
            );
            metrics.notify_deliveries.add(
                1,
                &[
                    KeyValue::new("channel", channel),
                    KeyValue::new("outcome", "delivered"),
                ],
            );
            return task.done().await;
        }
        Err(error) => error,
    };
    let elapsed = Duration::from_millis(u64::try_from(now - delivery.queued_at).unwrap_or(0));
    match service.config.retry.after_failure(task.deliveries, elapsed) {
        AfterFailure::RetryAfter(delay) => {
            warn!(
                notification = %delivery.notice.id,
                endpoint = %endpoint.id,
                attempt = task.deliveries,
                ?delay,
                %error,
                "notification not delivered; trying again"
            );
            metrics.notify_deliveries.add(
                1,
                &[
                    KeyValue::new("channel", channel),
                    KeyValue::new("outcome", "retry"),
                ],
            );
            task.again_after(delay).await
        }
        AfterFailure::GiveUp => {
            warn!(
                notification = %delivery.notice.id,
                endpoint = %endpoint.id,
                attempt = task.deliveries,
                %error,
                "notification not delivered; giving up: it is a dead letter"
            );
            let record = DeadRecord {
                attempts: task.deliveries,
                last_attempt_at: now,
                last_error: error,
                replayed_at: None,
                delivery,
            };
            let bytes = serde_json::to_vec(&record)
                .map_err(|err| StoreError::Unavailable(err.to_string().into()))?;
            service
                .notify
                .write_dead(
                    &task.account,
                    &record.delivery.dead_key(),
                    Bytes::from(bytes),
                )
                .await?;
            metrics
                .notify_dead_letters
                .add(1, &[KeyValue::new("channel", channel)]);
            metrics.notify_deliveries.add(
                1,
                &[
                    KeyValue::new("channel", channel),
                    KeyValue::new("outcome", "dead"),
                ],
            );
            task.done().await
        }
    }
}

/// Sends `notice` to `endpoint` once: `Err` says what went wrong, for the dead letter.
async fn send(
    service: &NotifierService,
    endpoint: &StoredEndpoint,
    notice: &Notice,
) -> Result<(), String> {
    match &endpoint.target {
        Target::Webhook(url) => post_webhook(service, endpoint, url, notice).await,
        Target::Email(address) => send_email(service, address, notice).await,
    }
}

async fn post_webhook(
    service: &NotifierService,
    endpoint: &StoredEndpoint,
    url: &str,
    notice: &Notice,
) -> Result<(), String> {
    // Judged again: an IP literal is not resolved, and the operator's networks may change.
    let url = endpoints::check_webhook_url(url, &service.config.allowed_networks)
        .map_err(|err| err.to_string())?;
    let body = notices::webhook_body(notice);
    let now = certflow_runtime::now();
    let timestamp = now.unix_millis() / 1000;
    let secrets = endpoint.signing_secrets(now.unix_millis());
    let secrets: Vec<_> = secrets.iter().collect();
    let signature = crate::signature::signature_header(&secrets, &notice.id, timestamp, &body);
    let response = service
        .senders
        .http
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", &notice.id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await
        .map_err(|err| error_chain(&err))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    if status.is_redirection() {
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        return Err(format!(
            "HTTP {status}: redirects are not followed (to {location:?}); register the final URL"
        ));
    }
    Err(format!("HTTP {status}"))
}

async fn send_email(
    service: &NotifierService,
    address: &str,
    notice: &Notice,
) -> Result<(), String> {
    let Some((smtp, from)) = &service.senders.email else {
        return Err("this deployment sends no email (no --smtp-url and --email-from)".into());
    };
    let to = endpoints::check_email(address).map_err(|err| err.to_string())?;
    let (subject, text) = notices::email_text(notice);
    let domain = from.email.domain().to_string();
    let message = Message::builder()
        .from(from.clone())
        .to(Mailbox::new(None, to))
        .subject(subject)
        .message_id(Some(format!("<{}@{domain}>", notice.id)))
        .header(ContentType::TEXT_PLAIN)
        .body(text)
        .map_err(|err| format!("cannot build the message: {err}"))?;
    smtp.send(message)
        .await
        .map(|_| ())
        .map_err(|err| format!("SMTP relay: {}", error_chain(&err)))
}

/// `millis` as a timestamp, for the API.
pub(crate) fn at(millis: i64) -> Timestamp {
    Timestamp::from_unix_millis(millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_leaves_the_machine_only_encrypted() {
        for url in [
            "smtp://relay.example:587?tls=required",
            "smtps://relay.example:465",
            "smtp://user:pw@relay.example:587?tls=required",
            "smtp://127.0.0.1:2525",
            "smtp://localhost:25",
            "smtp://[::1]:25",
        ] {
            assert!(check_relay_url(url).is_ok(), "{url}");
        }
        for url in [
            "smtp://relay.example:587",
            "smtp://relay.example:587?tls=opportunistic",
            "smtp://10.0.0.5:25",
            "not a url",
        ] {
            assert!(check_relay_url(url).is_err(), "{url}");
        }
    }
}
