//! The first reply to every command, so a retried request gets the same answer (GEN-1).

use std::time::Duration;

use async_nats::jetstream::message::PublishMessage;
use async_nats::{HeaderMap, header};
use bytes::Bytes;
use certflow_bus::RequestBinding;
use certflow_domain::CommandId;

use crate::store::{EventStore, StoreError, is_wrong_last_sequence};

/// The RPC (NATS subject) a recorded reply answered.
const RPC: &str = "Certflow-Rpc";
/// The fingerprint of the request a recorded reply answered.
const FINGERPRINT: &str = "Certflow-Request-Fingerprint";

/// A message to publish: subject, headers, payload.
#[derive(Debug, Clone)]
pub(crate) struct OutgoingMessage {
    pub(crate) subject: String,
    pub(crate) headers: HeaderMap,
    pub(crate) payload: Bytes,
}

/// A command's first reply and the request it answered (`binding`: the RPC and a fingerprint
/// of the request; `None` for a reply recorded without one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub reply: Bytes,
    pub binding: Option<RequestBinding>,
}

/// Replies by command id: one subject per command in the events stream,
/// `<prefix>.outcome.<command id>`, each message forgotten after its time to live. Each reply
/// is kept with the request it answered, so a request id used again for another request is
/// told apart from a retry (GEN-1).
///
/// A reply is recorded expecting the command's subject to be empty, so of two concurrent
/// tries the first stands. Successes could be recognised from the history alone (the
/// command id is on the events), but refusals append nothing, so without this a retried
/// refused request would be decided again on a state that may have moved on.
#[derive(Clone, Debug)]
pub struct Outcomes {
    store: EventStore,
}

impl Outcomes {
    pub(crate) fn new(store: EventStore) -> Self {
        Outcomes { store }
    }

    fn subject(&self, command: &CommandId) -> String {
        format!("{}.outcome.{}", self.store.subject_prefix(), command.0)
    }

    fn ttl(&self) -> Duration {
        self.store.outcome_ttl()
    }

    /// The reply first given to `command`, if any, and the request it answered.
    pub async fn get(&self, command: &CommandId) -> Result<Option<Outcome>, StoreError> {
        Ok(self
            .store
            .last_for_subject(&self.subject(command))
            .await?
            .map(|message| {
                let get = |name: &str| message.headers.get(name).map(|v| v.as_str().to_string());
                let binding = get(RPC)
                    .zip(get(FINGERPRINT))
                    .map(|(rpc, fingerprint)| RequestBinding { rpc, fingerprint });
                Outcome {
                    reply: message.payload,
                    binding,
                }
            }))
    }

    /// The message that records `outcome` as `command`'s first, unless one is recorded.
    fn first_outcome_message(&self, command: &CommandId, outcome: &Outcome) -> OutgoingMessage {
        let mut headers = HeaderMap::new();
        headers.insert(header::NATS_EXPECTED_LAST_SUBJECT_SEQUENCE, "0");
        // Whole seconds, at least one: the server's smallest time to live.
        headers.insert(
            header::NATS_MESSAGE_TTL,
            format!("{}s", self.ttl().as_secs().max(1)).as_str(),
        );
        if let Some(binding) = &outcome.binding {
            headers.insert(RPC, binding.rpc.as_str());
            headers.insert(FINGERPRINT, binding.fingerprint.as_str());
        }
        OutgoingMessage {
            subject: self.subject(command),
            headers,
            payload: outcome.reply.clone(),
        }
    }

    /// Records `outcome` as `command`'s first reply unless one is recorded already; returns
    /// the outcome that stands (ours, or the one recorded first).
    pub async fn record(
        &self,
        command: &CommandId,
        outcome: Outcome,
    ) -> Result<Outcome, StoreError> {
        let message = self.first_outcome_message(command, &outcome);
        let publish = PublishMessage::build()
            .headers(message.headers)
            .payload(message.payload);
        let acked = match self.store.js().send_publish(message.subject, publish).await {
            Ok(ack) => ack.await,
            Err(err) => Err(err),
        };
        match acked {
            Ok(_) => Ok(outcome),
            Err(err) if is_wrong_last_sequence(&err) => {
                Ok(self.get(command).await?.unwrap_or(outcome))
            }
            Err(err) => Err(StoreError::unavailable(err)),
        }
    }
}
