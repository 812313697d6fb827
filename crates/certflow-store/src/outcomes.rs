//! The first reply to every command, so a retried request gets the same answer (GEN-1).

use std::time::Duration;

use async_nats::jetstream::{message::PublishMessage, stream};
use async_nats::{HeaderMap, header};
use bytes::Bytes;
use certflow_domain::{CertificateId, CommandId, Timestamp};

use crate::store::{Attached, StoreError};
use certflow_bus::RequestBinding;

/// The RPC (NATS subject) a recorded reply answered.
const RPC: &str = "Certflow-Rpc";
/// The fingerprint of the request a recorded reply answered.
const FINGERPRINT: &str = "Certflow-Request-Fingerprint";
/// An applied command's certificate, the stream sequence of its events and when it was
/// decided (Unix milliseconds): a success recorded without its reply.
const CERTIFICATE: &str = "Certflow-Certificate";
const SEQUENCE: &str = "Certflow-Sequence";
const DECIDED_AT: &str = "Certflow-Decided-At";

/// A command's first reply and the request it answered (`binding`: the RPC and a fingerprint
/// of the request; `None` for a reply recorded without one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub recorded: Recorded,
    pub binding: Option<RequestBinding>,
}

/// How a first reply is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// The reply itself: a refusal, or a response that holds more than the certificate.
    Reply(Bytes),
    /// A success whose reply was only the certificate right after the command: the
    /// certificate's state through `sequence`, shown as at `decided_at`. The log holds it, so
    /// the record holds where to find it (some 200 bytes instead of the certificate's
    /// kilobytes) and the reply is rebuilt, the same, when a retry asks.
    Applied {
        certificate: CertificateId,
        sequence: u64,
        decided_at: Timestamp,
    },
}

/// Replies by command id, one subject per command in a stream that forgets them after a
/// time to live. Each reply is kept with the request it answered, so a request id used
/// again for another request is told apart from a retry (GEN-1).
///
/// Successes could be recognised from the history alone (the command id is on the events),
/// but refusals append nothing, so without this a retried refused request would be decided
/// again on a state that may have moved on. A reply is recorded with
/// `Nats-Expected-Last-Subject-Sequence: 0`, so of two concurrent records the first stands.
#[derive(Clone, Debug)]
pub struct Outcomes {
    on: Attached,
}

impl Outcomes {
    /// The stream's name.
    pub const STREAM: &'static str = "CERTFLOW_OUTCOMES";
    const PREFIX: &'static str = "certflow.outcomes";

    /// The stream: the latest reply per command, forgotten after `ttl`.
    pub(crate) fn stream_config(ttl: Duration) -> stream::Config {
        crate::store::latest_per_subject(
            Self::STREAM,
            "first reply of each certflow command",
            Self::PREFIX,
            ttl,
        )
    }

    /// Attaches to the stream, which `certd provision` made.
    pub async fn attach(client: async_nats::Client) -> Result<Self, StoreError> {
        Ok(Outcomes {
            on: Attached::to(client, Self::STREAM).await?,
        })
    }

    fn subject(command: &CommandId) -> String {
        format!("{}.{}", Self::PREFIX, command.0)
    }

    /// The reply first given to `command`, if any, and the request it answered.
    pub async fn get(&self, command: &CommandId) -> Result<Option<Outcome>, StoreError> {
        let Some(message) = self.on.last(Self::subject(command)).await? else {
            return Ok(None);
        };
        let get = |name: &str| message.headers.get(name).map(|v| v.as_str().to_string());
        let binding = get(RPC)
            .zip(get(FINGERPRINT))
            .map(|(rpc, fingerprint)| RequestBinding { rpc, fingerprint });
        let recorded = match get(SEQUENCE) {
            None => Recorded::Reply(message.payload),
            Some(sequence) => {
                let applied = get(CERTIFICATE)
                    .and_then(|id| CertificateId::parse(&id).ok())
                    .zip(sequence.parse::<u64>().ok())
                    .zip(get(DECIDED_AT).and_then(|at| at.parse::<i64>().ok()));
                let Some(((certificate, sequence), decided_at)) = applied else {
                    return Err(StoreError::CorruptOutcome {
                        sequence: message.sequence,
                    });
                };
                Recorded::Applied {
                    certificate,
                    sequence,
                    decided_at: Timestamp::from_unix_millis(decided_at),
                }
            }
        };
        Ok(Some(Outcome { recorded, binding }))
    }

    /// Records `outcome` as `command`'s first reply unless one is recorded already; returns
    /// the outcome that stands (ours, or the one recorded first).
    pub async fn record(
        &self,
        command: &CommandId,
        outcome: Outcome,
    ) -> Result<Outcome, StoreError> {
        let mut headers = HeaderMap::new();
        headers.insert(header::NATS_EXPECTED_LAST_SUBJECT_SEQUENCE, "0");
        if let Some(binding) = &outcome.binding {
            headers.insert(RPC, binding.rpc.as_str());
            headers.insert(FINGERPRINT, binding.fingerprint.as_str());
        }
        let payload = match &outcome.recorded {
            Recorded::Reply(reply) => reply.clone(),
            Recorded::Applied {
                certificate,
                sequence,
                decided_at,
            } => {
                headers.insert(CERTIFICATE, certificate.as_str());
                headers.insert(SEQUENCE, sequence.to_string().as_str());
                headers.insert(DECIDED_AT, decided_at.unix_millis().to_string().as_str());
                Bytes::new()
            }
        };
        let publish = PublishMessage::build().headers(headers).payload(payload);
        match self
            .on
            .publish_expecting(Self::subject(command), publish)
            .await?
        {
            Some(_) => Ok(outcome),
            None => Ok(self.get(command).await?.unwrap_or(outcome)),
        }
    }
}
