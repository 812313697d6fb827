//! What an atomic batch costs against plain publishes, on a fresh nats-server of the
//! version certflow runs on: why a command appends one message and records its reply apart
//! rather than both in one atomic batch (docs/performance.md).

use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use bytes::Bytes;
use certflow_testkit::NatsServer;
use hdrhistogram::Histogram;

/// Messages per figure, one at a time.
const ROUNDS: u64 = 2_000;
/// About an event message with its headers.
const SIZE: usize = 600;

/// Measures and prints p50 and mean of: one publish, two publishes one after the other, and
/// an atomic batch of two messages; each publish awaits its acknowledgement.
pub async fn run() -> anyhow::Result<()> {
    let nats = NatsServer::start()?;
    let client = async_nats::connect(nats.url()).await?;
    let config = serde_json::json!({
        "name": "BENCH_ATOMIC",
        "subjects": ["bench.atomic.>"],
        "storage": "file",
        "allow_atomic": true,
    });
    let created = client
        .request(
            "$JS.API.STREAM.CREATE.BENCH_ATOMIC",
            config.to_string().into(),
        )
        .await?;
    let answer: serde_json::Value = serde_json::from_slice(&created.payload)?;
    anyhow::ensure!(
        answer.get("error").is_none(),
        "the server made no stream for atomic batches: {answer}"
    );
    let payload = Bytes::from(vec![b'x'; SIZE]);
    let publish = |subject: String, headers: HeaderMap| {
        let client = client.clone();
        let payload = payload.clone();
        async move {
            let reply = client
                .request_with_headers(subject, headers, payload)
                .await?;
            let ack: serde_json::Value = serde_json::from_slice(&reply.payload)?;
            anyhow::ensure!(ack.get("error").is_none(), "refused: {ack}");
            Ok::<_, anyhow::Error>(())
        }
    };
    let mut figures = Vec::new();
    for kind in ["one publish", "two publishes", "atomic batch of two"] {
        let mut histogram = Histogram::<u64>::new(3)?;
        for round in 0..ROUNDS {
            let started = Instant::now();
            match kind {
                "one publish" => {
                    publish(format!("bench.atomic.one.{round}"), HeaderMap::new()).await?;
                }
                "two publishes" => {
                    publish(format!("bench.atomic.a.{round}"), HeaderMap::new()).await?;
                    publish(format!("bench.atomic.b.{round}"), HeaderMap::new()).await?;
                }
                _ => {
                    let id = format!("batch-{round}");
                    let mut first = HeaderMap::new();
                    first.insert("Nats-Batch-Id", id.as_str());
                    first.insert("Nats-Batch-Sequence", "1");
                    client
                        .publish_with_headers(
                            format!("bench.atomic.c.{round}"),
                            first,
                            payload.clone(),
                        )
                        .await?;
                    let mut commit = HeaderMap::new();
                    commit.insert("Nats-Batch-Id", id.as_str());
                    commit.insert("Nats-Batch-Sequence", "2");
                    commit.insert("Nats-Batch-Commit", "1");
                    publish(format!("bench.atomic.d.{round}"), commit).await?;
                }
            }
            histogram.record(started.elapsed().as_micros() as u64)?;
        }
        figures.push((kind, histogram));
    }
    let millis = |micros: f64| Duration::from_micros(micros as u64).as_secs_f64() * 1000.0;
    println!("{ROUNDS} rounds each, one at a time, {SIZE}-byte messages");
    for (kind, histogram) in &figures {
        println!(
            "  {kind:<22} p50 {:>6.3} ms   mean {:>6.3} ms",
            millis(histogram.value_at_quantile(0.5) as f64),
            millis(histogram.mean()),
        );
    }
    Ok(())
}
