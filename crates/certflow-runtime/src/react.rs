//! Running a service's reactions to events: pull from its shared durable consumer, handle
//! several messages at once, acknowledge each once its effects are appended, and ask for it
//! again later when they could not be.

use std::future::Future;
use std::time::Duration;

use certflow_bus::{CommandMeta, service_actor};
use certflow_domain::{CertificateId, CommandId};
use certflow_store::{EventStore, Reaction, RecordedBatch, StoreError};
use certflow_telemetry::{instruments, propagation};
use futures::{FutureExt, StreamExt};
use opentelemetry::KeyValue;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info_span, warn};

/// Why a reaction could not be carried out now; the event is offered again later.
#[derive(Debug, thiserror::Error)]
pub enum ReactionError {
    /// The log or another stream failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Another service did not answer (`what` it was asked).
    #[error("{what}: {source}")]
    Peer {
        what: &'static str,
        #[source]
        source: certflow_bus::BusError,
    },
    /// Another service answered that it cannot do it now (unavailable, busy, timed out).
    #[error("{what}: {message}")]
    PeerNotNow { what: &'static str, message: String },
    /// What the log shows is behind what the event said had happened.
    #[error("{0}")]
    Behind(String),
}

/// How long to wait before offering a message whose reaction failed again.
const RETRY_DELAY: Duration = Duration::from_secs(2);

/// The metadata of an append a service makes in reaction to `cause`. Its command id, and so
/// its `Nats-Msg-Id`, derives from the causing message and the certificate it changes, so a
/// redelivered event appends nothing twice; correlation carries over from the cause (GEN-4).
pub fn reaction_meta(
    service: &str,
    step: &str,
    cause: &RecordedBatch,
    target: &CertificateId,
) -> CommandMeta {
    let id = format!("{step}-{}-{target}", cause.sequence);
    CommandMeta {
        command_id: CommandId(id.clone()),
        request_id: id,
        correlation_id: cause.meta.correlation_id.clone(),
        causation_id: Some(cause.meta.command_id.0.clone()),
        actor: service_actor(service),
        // Called inside the reaction's span: the append names it as the parent.
        traceparent: propagation::forward(cause.meta.traceparent.as_deref()),
        binding: None,
    }
}

/// Handles the events of durable consumer `durable` (made by `certd provision`, with the
/// service's redelivery delay) with `handle`, `concurrency` at a time, until `shutdown`. A message is acknowledged when `handle` succeeds, offered again shortly
/// when it fails, and skipped (with a warning) when it cannot be read. The consumer is
/// re-attached whenever its subscription ends.
pub async fn run_reactions<H, F>(
    store: EventStore,
    durable: &str,
    concurrency: usize,
    shutdown: CancellationToken,
    handle: H,
) where
    H: Fn(RecordedBatch) -> F + Send + Sync,
    F: Future<Output = Result<(), ReactionError>> + Send,
{
    while !shutdown.is_cancelled() {
        let reactions = match store.reactions(durable).await {
            Ok(reactions) => reactions,
            Err(err) => {
                warn!(error = %err, durable, "cannot attach to the event log; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(RETRY_DELAY) => continue,
                }
            }
        };
        let mut fetched = Box::pin(futures::stream::unfold(
            reactions,
            |mut reactions| async move { reactions.next().await.map(|item| (item, reactions)) },
        ));
        fetched
            .by_ref()
            .take_until(shutdown.cancelled())
            .for_each_concurrent(concurrency, |item| async {
                match item {
                    Ok(reaction) => react_once(durable, reaction, &handle).await,
                    Err(err) => warn!(error = %err, durable, "event feed hiccup"),
                }
            })
            .await;
        if shutdown.is_cancelled() {
            // Events fetched but not started go back now, not after the ack wait.
            while let Some(Some(Ok(reaction))) = fetched.next().now_or_never() {
                if let Err(err) = reaction.retry_after(Duration::ZERO).await {
                    warn!(error = %err, durable, "could not hand an event back on shutdown");
                }
            }
        }
        if !shutdown.is_cancelled() {
            debug!(durable, "event feed ended; attaching again");
        }
    }
}

async fn react_once<H, F>(durable: &str, reaction: Reaction, handle: &H)
where
    H: Fn(RecordedBatch) -> F,
    F: Future<Output = Result<(), ReactionError>>,
{
    let sequence = reaction.sequence;
    let (outcome, label) = match &reaction.batch {
        Ok(batch) => {
            // The reaction continues the trace of the command that appended the event.
            let span = info_span!(
                "react",
                service = durable,
                sequence,
                certificate = %batch.certificate_id,
                events = batch.events.len(),
            );
            propagation::set_parent(&span, batch.meta.traceparent.as_deref());
            let outcome = handle(batch.clone()).instrument(span).await;
            let label = if outcome.is_ok() { "done" } else { "retry" };
            (outcome, label)
        }
        Err(err) => {
            warn!(error = %err, sequence, "skipping an unreadable event message");
            (Ok(()), "skipped")
        }
    };
    instruments().reactions.add(
        1,
        &[
            KeyValue::new("consumer", durable.to_string()),
            KeyValue::new("outcome", label),
        ],
    );
    let acked = match outcome {
        Ok(()) => reaction.ack().await,
        Err(err) => {
            warn!(error = %err, sequence, "reaction failed; it will be tried again");
            reaction.retry_after(RETRY_DELAY).await
        }
    };
    if let Err(err) = acked {
        // Unacknowledged, the message comes back after the ack wait; reactions are idempotent.
        warn!(error = %err, sequence, "could not acknowledge a reaction");
    }
}
