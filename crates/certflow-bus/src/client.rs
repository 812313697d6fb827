//! The asking side: send a request in its [`Envelope`], get a [`Reply`].

use std::time::Duration;

use async_nats::{HeaderMap, RequestErrorKind};
use bytes::Bytes;
use certflow_domain::Actor;
use certflow_proto::bus::v1::Reply;
use certflow_telemetry::propagation;
use prost::Message;

use crate::meta::{CommandMeta, actor_from_headers, header, headers, service_actor, write_actor};

/// Who a request is sent for and what ties it to the rest of its flow. Every request on the
/// bus carries one, written into its headers by [`BusClient::request`] and nowhere else.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// On whose behalf: the authenticated caller, or a service acting on its own.
    pub actor: Actor,
    /// Ties together everything one client call causes.
    pub correlation_id: String,
    /// The trace context to continue when no span of this process is traced.
    pub traceparent: Option<String>,
    /// A reissue's key password, sealed to the issuance service's transport key.
    pub sealed_key_password: Option<String>,
}

impl Envelope {
    /// A request for `actor`, in the flow `correlation_id` names.
    pub fn new(actor: Actor, correlation_id: impl Into<String>) -> Self {
        Envelope {
            actor,
            correlation_id: correlation_id.into(),
            traceparent: None,
            sealed_key_password: None,
        }
    }

    /// A service asking on its own behalf (health, public data, keys), in a flow of its own.
    pub fn service(name: &str) -> Self {
        Envelope::new(service_actor(name), uuid::Uuid::new_v4().to_string())
    }

    /// A request made while handling the request whose headers are `incoming`: for the same
    /// caller, in the same flow.
    pub fn continuing(incoming: Option<&HeaderMap>) -> Self {
        let mut envelope = Envelope::new(
            actor_from_headers(incoming),
            header(incoming, headers::CORRELATION_ID).unwrap_or_default(),
        );
        envelope.traceparent = header(incoming, headers::TRACEPARENT);
        envelope
    }

    /// A request made for a command or event: for its actor, in its flow.
    pub fn of(meta: &CommandMeta) -> Self {
        let mut envelope = Envelope::new(meta.actor.clone(), meta.correlation_id.clone());
        envelope.traceparent = meta.traceparent.clone();
        envelope
    }

    /// The same request, continuing the trace `traceparent` names.
    pub fn with_traceparent(mut self, traceparent: Option<String>) -> Self {
        self.traceparent = traceparent;
        self
    }

    /// The same request, carrying a sealed key password.
    pub fn with_sealed_key_password(mut self, sealed: String) -> Self {
        self.sealed_key_password = Some(sealed);
        self
    }

    /// The headers: actor, correlation, the current span's trace context (or the one
    /// given), and what else the envelope holds.
    fn headers(&self) -> HeaderMap {
        let mut map = HeaderMap::new();
        write_actor(&mut map, &self.actor);
        map.insert(headers::CORRELATION_ID, self.correlation_id.as_str());
        if let Some(traceparent) = propagation::forward(self.traceparent.as_deref()) {
            map.insert(headers::TRACEPARENT, traceparent.as_str());
        }
        if let Some(sealed) = &self.sealed_key_password {
            map.insert(headers::SEALED_KEY_PASSWORD, sealed.as_str());
        }
        map
    }
}

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

    /// Sends `payload` in `envelope` to `subject` and waits for the reply.
    pub async fn request(
        &self,
        subject: &str,
        envelope: &Envelope,
        payload: Bytes,
    ) -> Result<Reply, BusError> {
        let request = async_nats::Request::new()
            .headers(envelope.headers())
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
