//! How far behind the durable consumers of a process are, recorded as gauges: messages not
//! delivered yet (`certflow.consumer.pending`) and delivered but not acknowledged
//! (`certflow.consumer.ack_pending`), and the review queue's depth and oldest task's age.

use std::time::Duration;

use async_nats::jetstream;
use certflow_telemetry::instruments;
use opentelemetry::KeyValue;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::{ReviewQueue, StoreConfig, ValidationChecks};

/// The consumers one process reads, looked at on a schedule.
#[derive(Debug, Clone)]
pub struct Backlog {
    js: jetstream::Context,
    consumers: Vec<(String, String)>,
    review_queue: bool,
}

impl Backlog {
    /// Watches nothing yet.
    pub fn new(client: async_nats::Client) -> Self {
        Backlog {
            js: jetstream::new(client),
            consumers: Vec::new(),
            review_queue: false,
        }
    }

    /// Watches durable consumer `durable` of the event log.
    pub fn event_consumer(mut self, store: &StoreConfig, durable: &str) -> Self {
        self.consumers
            .push((store.stream.clone(), durable.to_string()));
        self
    }

    /// Watches the validation service's check queue.
    pub fn validation_checks(mut self) -> Self {
        self.consumers.push((
            ValidationChecks::STREAM.to_string(),
            ValidationChecks::CONSUMER.to_string(),
        ));
        self
    }

    /// Watches the notifier's delivery queue.
    pub fn notify_queue(mut self) -> Self {
        self.consumers.push((
            crate::NotifyStore::QUEUE.to_string(),
            crate::NotifyStore::CONSUMER.to_string(),
        ));
        self
    }

    /// Watches the review queue: its reviewers' consumer, its depth and its oldest task.
    pub fn review_queue(mut self) -> Self {
        self.consumers.push((
            ReviewQueue::STREAM.to_string(),
            ReviewQueue::CONSUMER.to_string(),
        ));
        self.review_queue = true;
        self
    }

    /// Whether there is anything to watch.
    pub fn is_empty(&self) -> bool {
        self.consumers.is_empty() && !self.review_queue
    }

    /// Records the gauges every `interval` until `shutdown`. A consumer that cannot be read
    /// (not created yet, NATS away) keeps its last value.
    pub async fn run(self, interval: Duration, shutdown: CancellationToken) {
        loop {
            self.record().await;
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(interval) => {}
            }
        }
    }

    async fn record(&self) {
        let metrics = instruments();
        for (stream, consumer) in &self.consumers {
            let info = match self
                .js
                .get_consumer_from_stream::<jetstream::consumer::pull::Config, _, _>(
                    consumer, stream,
                )
                .await
            {
                Ok(mut found) => found
                    .info()
                    .await
                    .map(|info| (info.num_pending, info.num_ack_pending as u64)),
                Err(err) => {
                    debug!(%stream, %consumer, error = %err, "consumer backlog unknown");
                    continue;
                }
            };
            match info {
                Ok((pending, ack_pending)) => {
                    let labels = [
                        KeyValue::new("stream", stream.clone()),
                        KeyValue::new("consumer", consumer.clone()),
                    ];
                    metrics.consumer_pending.record(pending, &labels);
                    metrics.consumer_ack_pending.record(ack_pending, &labels);
                }
                Err(err) => debug!(%stream, %consumer, error = %err, "consumer backlog unknown"),
            }
        }
        if self.review_queue {
            match self.js.get_stream(ReviewQueue::STREAM).await {
                Ok(mut stream) => match stream.info().await {
                    Ok(info) => {
                        metrics.review_queue_depth.record(info.state.messages, &[]);
                        // A work queue: its first message is the task that waited longest.
                        let age = if info.state.messages == 0 {
                            0
                        } else {
                            let waited =
                                time::OffsetDateTime::now_utc() - info.state.first_timestamp;
                            u64::try_from(waited.whole_seconds()).unwrap_or(0)
                        };
                        metrics.review_oldest_task_age.record(age, &[]);
                    }
                    Err(err) => debug!(error = %err, "review queue depth unknown"),
                },
                Err(err) => debug!(error = %err, "review queue depth unknown"),
            }
        }
    }
}
