//! Secrets the gateway seals for the issuance service alone, when another service carries
//! them there: the password of a key generated on a reissue travels through the reissue
//! service, sealed to the issuance service's transport key (`certflow_ca::transport`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use certflow_bus::Envelope;
use certflow_bus::{BusClient, Outcome, ServiceReason, subjects};
use certflow_proto::bus::v1::TransportKeyResponse;
use prost::Message;
use tokio::sync::Mutex;
use tonic::Status;
use tracing::warn;

use crate::status;

/// How long a fetched transport key is used before it is asked for again (it changes
/// only when the KEK is rotated, and the old one still opens during a rotation).
const KEEP: Duration = Duration::from_secs(300);

/// A transport public key and when it was fetched.
type Fetched = Option<(Vec<u8>, Instant)>;

/// The issuance service's transport public key, fetched on first use and kept a while.
#[derive(Debug, Clone, Default)]
pub(crate) struct TransportKeys {
    current: Arc<Mutex<Fetched>>,
}

impl TransportKeys {
    /// `secret` sealed to the issuance service, base64-encoded for a header.
    pub(crate) async fn seal(&self, bus: &BusClient, secret: &[u8]) -> Result<String, Status> {
        let key = self.key(bus).await?;
        let sealed = certflow_ca::transport::seal_for(&key, secret).map_err(|err| {
            warn!(error = %err, "could not seal a secret for the issuance service");
            status::service(
                ServiceReason::Unavailable,
                "the secret could not be sealed; retry with the same request id",
            )
        })?;
        Ok(base64::engine::general_purpose::STANDARD.encode(sealed))
    }

    async fn key(&self, bus: &BusClient) -> Result<Vec<u8>, Status> {
        let mut current = self.current.lock().await;
        if let Some((key, fetched)) = current.as_ref()
            && fetched.elapsed() < KEEP
        {
            return Ok(key.clone());
        }
        let unavailable = || {
            status::service(
                ServiceReason::Unavailable,
                "the issuance service did not give its transport key; retry with the same \
                 request id",
            )
        };
        let reply = bus
            .request(
                subjects::TRANSPORT_KEY,
                &Envelope::service("gateway"),
                Bytes::new(),
            )
            .await
            .map_err(|err| {
                warn!(error = %err, "no transport key from the issuance service");
                unavailable()
            })?;
        let Some(Outcome::Response(body)) = reply.outcome else {
            return Err(unavailable());
        };
        let key = TransportKeyResponse::decode(body.as_slice())
            .map_err(|_| unavailable())?
            .public_key;
        *current = Some((key.clone(), Instant::now()));
        Ok(key)
    }
}
