//! What the machine and the NATS server can do without certflow, measured in the same run:
//! raw JetStream publish+ack, reading a stream, and batched sled writes.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer, stream};
use bytes::Bytes;
use futures::StreamExt;

use crate::load::{self, CallError, Recorded, Schedule};

/// The stream raw publishes go to: file storage like the event log, on the same server.
const STREAM: &str = "BENCH_BASELINE";

/// Raw JetStream publishes against the server certflow runs on.
#[derive(Clone)]
pub struct RawPublish {
    js: jetstream::Context,
}

impl std::fmt::Debug for RawPublish {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawPublish").finish_non_exhaustive()
    }
}

impl RawPublish {
    /// Creates (or empties) the baseline stream.
    pub async fn open(client: async_nats::Client) -> anyhow::Result<Self> {
        let js = jetstream::new(client);
        let stream = js
            .get_or_create_stream(stream::Config {
                name: STREAM.into(),
                subjects: vec!["bench.baseline.>".into()],
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await?;
        stream.purge().await?;
        Ok(RawPublish { js })
    }

    /// `total` publishes of `size` bytes, each awaiting its ack, paced by `schedule`: one
    /// subject per message, as the event log has one per certificate.
    pub async fn run(
        &self,
        label: &str,
        total: u64,
        size: usize,
        schedule: Schedule,
        progress: bool,
    ) -> Recorded {
        let payload = Bytes::from(vec![b'x'; size]);
        let js = Arc::new(self.js.clone());
        let prefix = uuid::Uuid::new_v4().simple().to_string();
        load::run(label, total, schedule, progress, move |index| {
            let js = js.clone();
            let payload = payload.clone();
            let subject = format!("bench.baseline.{prefix}.{index}");
            async move {
                let ack = js
                    .publish(subject, payload)
                    .await
                    .map_err(|err| CallError::new("Unavailable", err.to_string()))?;
                ack.await
                    .map_err(|err| CallError::new("Unavailable", err.to_string()))?;
                Ok(())
            }
        })
        .await
    }
}

/// Reads every message of stream `name` through an ordered consumer (no acks), as fast as
/// NATS delivers them; returns how many and how long it took.
pub async fn read_stream(
    client: async_nats::Client,
    name: &str,
) -> anyhow::Result<(u64, Duration)> {
    let js = jetstream::new(client);
    let mut stream = js.get_stream(name).await?;
    let last = stream.info().await?.state.last_sequence;
    let consumer = stream
        .create_consumer(consumer::pull::OrderedConfig {
            deliver_policy: consumer::DeliverPolicy::All,
            ..Default::default()
        })
        .await?;
    let name = consumer.cached_info().name.clone();
    let started = Instant::now();
    let mut messages = consumer.messages().await?;
    let mut read = 0;
    while let Some(message) = messages.next().await {
        let message = message?;
        read += 1;
        if message.info().map(|info| info.stream_sequence).unwrap_or(0) >= last {
            break;
        }
    }
    let elapsed = started.elapsed();
    // Gone at once rather than when the server notices it is idle: later figures wait
    // until every consumer of the log has caught up.
    drop(messages);
    let _ = stream.delete_consumer(&name).await;
    Ok((read, elapsed))
}

/// Writes `records` values of `size` bytes into a fresh sled database opened as the
/// projection opens its own, `batch` per transaction with a flush after each, as the
/// projection applies its chunks.
pub fn sled_writes(dir: &Path, records: u64, size: usize, batch: u64) -> anyhow::Result<Duration> {
    let db = certflow_projection::sled_config(dir).open()?;
    let tree = db.open_tree("bench")?;
    let value = vec![b'x'; size];
    let started = Instant::now();
    let mut written = 0;
    while written < records {
        let mut writes = sled::Batch::default();
        let end = (written + batch).min(records);
        for key in written..end {
            writes.insert(&key.to_be_bytes(), value.as_slice());
        }
        tree.apply_batch(writes)?;
        db.flush()?;
        written = end;
    }
    Ok(started.elapsed())
}
