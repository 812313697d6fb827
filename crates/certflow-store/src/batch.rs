//! Atomic batch publish (nats-server 2.12, ADR-50): several messages to one stream that are
//! stored together or not at all, each with its own expectations.
//!
//! The protocol is three headers: every message carries `Nats-Batch-Id` and its
//! `Nats-Batch-Sequence` (from 1), the last also `Nats-Batch-Commit: 1`. Messages before
//! the last go out without waiting; the last is a request, answered with the acknowledgement
//! of the whole batch or the first error any message met. `jetstream-extra` implements the
//! same protocol, but its releases are built on async-nats 0.48, and two async-nats in one
//! build is a cost this small module does not justify.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::{HeaderMap, header};
use bytes::Bytes;
use serde::Deserialize;

use crate::store::{WRONG_LAST_SEQUENCE, WRONG_LAST_SEQUENCE_CLUSTERED};

/// The most messages a server takes in one batch.
pub(crate) const MAX_BATCH: usize = 1000;

/// One message of a batch.
#[derive(Debug, Clone)]
pub(crate) struct BatchMessage {
    pub(crate) subject: String,
    pub(crate) headers: HeaderMap,
    pub(crate) payload: Bytes,
}

/// Why a batch was not stored.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BatchError {
    /// A message's expected last (subject) sequence was not met: nothing was stored.
    #[error("a message's expected sequence was not met: {0}")]
    WrongLastSequence(String),
    /// The acknowledgement did not come in time: the batch may or may not be stored.
    #[error("the batch was not acknowledged in time")]
    TimedOut,
    /// The server refused the batch, or could not be asked.
    #[error("the batch was refused: {0}")]
    Failed(String),
}

#[derive(Debug, Deserialize)]
struct ApiError {
    #[serde(default)]
    err_code: u64,
    #[serde(default)]
    description: String,
}

#[derive(Debug, Deserialize)]
struct BatchAck {
    #[serde(default)]
    error: Option<ApiError>,
    #[serde(default)]
    seq: u64,
    #[serde(default)]
    count: usize,
}

/// A batch id unique among this process's batches and, with the time it started, among
/// every other publisher's: what the server keys batches in progress by.
fn batch_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    static STARTED: std::sync::OnceLock<u128> = std::sync::OnceLock::new();
    let started = STARTED.get_or_init(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos())
    });
    format!(
        "{started:x}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Publishes `messages` (1 to [`MAX_BATCH`]) as one atomic batch and returns the stream
/// sequence of the last.
pub(crate) async fn publish_atomic(
    client: &async_nats::Client,
    messages: Vec<BatchMessage>,
    timeout: Duration,
) -> Result<u64, BatchError> {
    let count = messages.len();
    if count == 0 || count > MAX_BATCH {
        return Err(BatchError::Failed(format!(
            "a batch holds 1 to {MAX_BATCH} messages, not {count}"
        )));
    }
    let id = batch_id();
    let mut last = None;
    for (index, mut message) in messages.into_iter().enumerate() {
        message.headers.insert(header::NATS_BATCH_ID, id.as_str());
        message.headers.insert(
            header::NATS_BATCH_SEQUENCE,
            (index + 1).to_string().as_str(),
        );
        if index + 1 == count {
            message
                .headers
                .insert(header::NATS_BATCH_COMMIT, header::NATS_BATCH_COMMIT_FINAL);
            last = Some(message);
        } else {
            client
                .publish_with_headers(message.subject, message.headers, message.payload)
                .await
                .map_err(|err| BatchError::Failed(err.to_string()))?;
        }
    }
    let Some(commit) = last else {
        return Err(BatchError::Failed("an empty batch".into()));
    };
    let request = async_nats::Request::new()
        .headers(commit.headers)
        .payload(commit.payload)
        .timeout(Some(timeout));
    let reply = match client.send_request(commit.subject, request).await {
        Ok(reply) => reply,
        Err(err) if err.kind() == async_nats::RequestErrorKind::TimedOut => {
            return Err(BatchError::TimedOut);
        }
        Err(err) => return Err(BatchError::Failed(err.to_string())),
    };
    let ack: BatchAck = serde_json::from_slice(&reply.payload).map_err(|err| {
        BatchError::Failed(format!("an unreadable acknowledgement of a batch: {err}"))
    })?;
    match ack.error {
        Some(error)
            if matches!(
                error.err_code,
                WRONG_LAST_SEQUENCE | WRONG_LAST_SEQUENCE_CLUSTERED
            ) =>
        {
            Err(BatchError::WrongLastSequence(error.description))
        }
        Some(error) => Err(BatchError::Failed(format!(
            "{} (error {})",
            error.description, error.err_code
        ))),
        None if ack.count != count => Err(BatchError::Failed(format!(
            "the server acknowledged {} of {count} messages",
            ack.count
        ))),
        None => Ok(ack.seq),
    }
}

#[cfg(test)]
mod tests {
    use super::batch_id;

    #[test]
    fn batch_ids_are_unique_and_short_enough_for_the_server() {
        let first = batch_id();
        let second = batch_id();
        assert_ne!(first, second);
        assert!(
            first.len() <= 64,
            "the server takes ids of up to 64 characters"
        );
    }
}
