//! The serving loop: a queue subscription, a bounded number of requests in flight, one reply
//! per request.

use std::future::Future;
use std::sync::Arc;

use async_nats::{HeaderMap, Subject};
use bytes::Bytes;
use certflow_proto::bus::v1::Reply;
use certflow_telemetry::propagation;
use futures::StreamExt;
use prost::Message;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info_span, warn};

use crate::client::BusError;

/// Requests handled at once by one responder; more wait in the subscription.
const IN_FLIGHT: usize = 256;

/// One request as a service sees it.
#[derive(Debug, Clone)]
pub struct Request {
    pub subject: Subject,
    pub headers: Option<HeaderMap>,
    pub payload: Bytes,
}

/// A queue subscription ready to serve. Subscribing happens in [`Responder::bind`], so once
/// a service has bound, requests are not lost while it starts up.
#[derive(Debug)]
pub struct Responder {
    client: async_nats::Client,
    subscriber: async_nats::Subscriber,
    subject: String,
    queue: String,
}

impl Responder {
    /// Subscribes to `subject` in queue group `queue`.
    pub async fn bind(
        client: async_nats::Client,
        subject: &str,
        queue: &str,
    ) -> Result<Self, BusError> {
        let subscriber = client
            .queue_subscribe(subject.to_string(), queue.to_string())
            .await
            .map_err(|e| BusError::Nats(e.into()))?;
        client.flush().await.map_err(|e| BusError::Nats(e.into()))?;
        Ok(Responder {
            client,
            subscriber,
            subject: subject.to_string(),
            queue: queue.to_string(),
        })
    }

    /// Answers requests with `handler` until `shutdown`, then stops taking new ones and
    /// finishes those in flight.
    pub async fn run<H, F>(mut self, shutdown: CancellationToken, handler: H)
    where
        H: Fn(Request) -> F + Send + Sync + 'static,
        F: Future<Output = Reply> + Send + 'static,
    {
        let handler = Arc::new(handler);
        let permits = Arc::new(Semaphore::new(IN_FLIGHT));
        let mut in_flight = JoinSet::new();
        loop {
            let message = tokio::select! {
                _ = shutdown.cancelled() => break,
                message = self.subscriber.next() => match message {
                    Some(message) => message,
                    None => break,
                },
            };
            // Reap finished tasks so the set does not grow without bound.
            while in_flight.try_join_next().is_some() {}
            let Some(reply_to) = message.reply.clone() else {
                warn!(subject = %message.subject, "request without a reply subject, dropped");
                continue;
            };
            let Ok(permit) = permits.clone().acquire_owned().await else {
                break;
            };
            let handler = handler.clone();
            let client = self.client.clone();
            let span = info_span!("request", service = %self.queue, subject = %message.subject);
            let mut headers = message.headers;
            propagation::set_parent(&span, traceparent(headers.as_ref()).as_deref());
            // What the handler appends or asks for carries this span as its parent.
            if let Some(own) = propagation::traceparent(&span) {
                headers
                    .get_or_insert_with(HeaderMap::new)
                    .insert(propagation::TRACEPARENT, own.as_str());
            }
            in_flight.spawn(
                async move {
                    let request = Request {
                        subject: message.subject,
                        headers,
                        payload: message.payload,
                    };
                    let reply = handler(request).await;
                    let mut payload = Bytes::from(reply.encode_to_vec());
                    let limit = client.server_info().max_payload;
                    if limit > 0 && payload.len() > limit {
                        // Say so rather than leave the caller waiting for a timeout.
                        warn!(size = payload.len(), limit, "reply too large for NATS");
                        payload = Bytes::from(
                            crate::reply::unavailable(format!(
                                "the answer ({} bytes) is larger than the message bus carries \
                                 ({limit} bytes); ask for less, e.g. a smaller page",
                                payload.len()
                            ))
                            .encode_to_vec(),
                        );
                    }
                    if let Err(err) = client.publish(reply_to, payload).await {
                        warn!(error = %err, "could not send reply");
                    }
                    drop(permit);
                }
                .instrument(span),
            );
        }
        if let Err(err) = self.subscriber.unsubscribe().await {
            warn!(subject = %self.subject, error = %err, "unsubscribe failed");
        }
        while in_flight.join_next().await.is_some() {}
        if let Err(err) = self.client.flush().await {
            warn!(error = %err, "flush of last replies failed");
        }
    }
}

fn traceparent(headers: Option<&HeaderMap>) -> Option<String> {
    headers?
        .get(propagation::TRACEPARENT)
        .map(|value| value.as_str().to_string())
}
