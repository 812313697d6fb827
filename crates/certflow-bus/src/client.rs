//! The gateway's side: send a request, get a [`Reply`].

use std::time::Duration;

use async_nats::{HeaderMap, RequestErrorKind};
use bytes::Bytes;
use certflow_proto::bus::v1::Reply;
use prost::Message;

/// Why a request got no reply.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// No instance of the service is running.
    #[error("no service answers {0}")]
    NoResponders(String),
    /// The service did not answer in time. The command may still complete: retry it with
    /// the same request id.
    #[error("{0} did not answer in time")]
    TimedOut(String),
    /// The reply was not a `Reply` message.
    #[error("undecodable reply from {subject}: {source}")]
    BadReply {
        subject: String,
        #[source]
        source: prost::DecodeError,
    },
    /// NATS itself failed.
    #[error("NATS: {0}")]
    Nats(#[source] async_nats::Error),
}

/// Sends commands and queries over NATS request-reply.
#[derive(Debug, Clone)]
pub struct BusClient {
    client: async_nats::Client,
    timeout: Duration,
}

impl BusClient {
    /// A client whose requests give up after `timeout`.
    pub fn new(client: async_nats::Client, timeout: Duration) -> Self {
        BusClient { client, timeout }
    }

    /// Sends `payload` with `headers` to `subject` and waits for the reply.
    pub async fn request(
        &self,
        subject: &str,
        headers: HeaderMap,
        payload: Bytes,
    ) -> Result<Reply, BusError> {
        let request = async_nats::Request::new()
            .headers(headers)
            .payload(payload)
            .timeout(Some(self.timeout));
        let message = self
            .client
            .send_request(subject.to_string(), request)
            .await
            .map_err(|err| match err.kind() {
                RequestErrorKind::NoResponders => BusError::NoResponders(subject.to_string()),
                RequestErrorKind::TimedOut => BusError::TimedOut(subject.to_string()),
                _ => BusError::Nats(err.into()),
            })?;
        Reply::decode(message.payload).map_err(|source| BusError::BadReply {
            subject: subject.to_string(),
            source,
        })
    }

    /// The NATS connection, for the gateway's reads of the review queue and document store.
    pub fn nats(&self) -> &async_nats::Client {
        &self.client
    }

    /// Whether the NATS connection is up.
    pub fn is_connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }
}
