//! REI-4's reservations: one per registrable domain, so two reissues under the same
//! registrable domain never run at once, whichever service instances handle them.
//!
//! Each registrable domain has a subject on `CERTFLOW_REISSUE_LOCKS` whose last message says
//! who holds it (or that it is free). Taking and releasing are appends with
//! `Nats-Expected-Last-Subject-Sequence`, so of many concurrent takers exactly one wins, and
//! a release only frees what its holder still holds. A holder that crashed is recognised by
//! the caller from the event log and taken over with the same optimistic concurrency.

use crate::store::Attached;
use std::time::Duration;

use async_nats::jetstream::stream;
use async_nats::{HeaderMap, header};
use bytes::Bytes;
use certflow_domain::CertificateId;

use crate::store::{StoreError, is_wrong_last_sequence};

const HOLDER: &str = "Certflow-Lock-Holder";
const CERTIFICATE: &str = "Certflow-Lock-Certificate";
const HELD: &[u8] = b"held";
const FREE: &[u8] = b"free";

/// Who holds a reservation: a reissue of a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockHolder {
    pub reissue_id: String,
    pub certificate_id: CertificateId,
}

/// The outcome of trying to take a reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reservation {
    /// Taken (or already held by the same holder).
    Taken,
    /// Held by another reissue since `held_at`; `sequence` identifies that hold for a
    /// take-over.
    Busy {
        holder: LockHolder,
        sequence: u64,
        held_at: std::time::SystemTime,
    },
}

/// The reservations stream.
#[derive(Clone, Debug)]
pub struct ReissueLocks {
    on: Attached,
}

/// What the last message of a reservation's subject says.
enum Current {
    Never,
    Free {
        sequence: u64,
    },
    Held {
        holder: LockHolder,
        sequence: u64,
        held_at: std::time::SystemTime,
    },
}

fn unavailable(err: impl Into<async_nats::Error>) -> StoreError {
    StoreError::Unavailable(err.into())
}

impl ReissueLocks {
    /// The stream's name.
    pub const STREAM: &'static str = "CERTFLOW_REISSUE_LOCKS";
    const PREFIX: &'static str = "certflow.locks";

    /// The stream: only each subject's last message counts.
    pub(crate) fn stream_config() -> stream::Config {
        stream::Config {
            name: Self::STREAM.into(),
            description: Some("reissue reservations per registrable domain (REI-4)".into()),
            subjects: vec![format!("{}.>", Self::PREFIX)],
            storage: stream::StorageType::File,
            max_messages_per_subject: 1,
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        }
    }

    /// Attaches to the stream, which `certd provision` made.
    pub async fn attach(client: async_nats::Client) -> Result<Self, StoreError> {
        Ok(ReissueLocks {
            on: Attached::to(client, Self::STREAM).await?,
        })
    }

    /// A registrable domain as one subject token: `.` cannot appear in a token, and `_`
    /// cannot appear in a domain name, so the mapping is one to one.
    fn subject(domain: &str) -> String {
        format!("{}.{}", Self::PREFIX, domain.replace('.', "_"))
    }

    async fn current(&self, domain: &str) -> Result<Current, StoreError> {
        let message = match self
            .on
            .stream
            .get_last_raw_message_by_subject(&Self::subject(domain))
            .await
        {
            Ok(message) => message,
            Err(err) if err.kind() == stream::LastRawMessageErrorKind::NoMessageFound => {
                return Ok(Current::Never);
            }
            Err(err) => return Err(unavailable(err)),
        };
        let sequence = message.sequence;
        if message.payload.as_ref() != HELD {
            return Ok(Current::Free { sequence });
        }
        let get = |name: &str| message.headers.get(name).map(|v| v.as_str().to_string());
        let holder = get(HOLDER)
            .zip(get(CERTIFICATE).and_then(|id| CertificateId::parse(&id).ok()))
            .map(|(reissue_id, certificate_id)| LockHolder {
                reissue_id,
                certificate_id,
            });
        let held_at = std::time::UNIX_EPOCH
            + Duration::from_nanos(
                u64::try_from(message.time.unix_timestamp_nanos()).unwrap_or_default(),
            );
        Ok(match holder {
            Some(holder) => Current::Held {
                holder,
                sequence,
                held_at,
            },
            None => Current::Free { sequence },
        })
    }

    /// Appends `payload` for `holder` if the subject's last sequence is still `expected`;
    /// `false` when another append got there first.
    async fn write(
        &self,
        domain: &str,
        expected: u64,
        holder: &LockHolder,
        payload: &'static [u8],
    ) -> Result<bool, StoreError> {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::NATS_EXPECTED_LAST_SUBJECT_SEQUENCE,
            expected.to_string().as_str(),
        );
        headers.insert(HOLDER, holder.reissue_id.as_str());
        headers.insert(CERTIFICATE, holder.certificate_id.as_str());
        let acked = match self
            .on
            .js
            .publish_with_headers(Self::subject(domain), headers, Bytes::from_static(payload))
            .await
        {
            Ok(ack) => ack.await,
            Err(err) => Err(err),
        };
        match acked {
            Ok(_) => Ok(true),
            Err(err) if is_wrong_last_sequence(&err) => Ok(false),
            Err(err) => Err(unavailable(err)),
        }
    }

    /// Takes the reservation of `domain` for `holder`, unless another holds it.
    pub async fn take(&self, domain: &str, holder: &LockHolder) -> Result<Reservation, StoreError> {
        loop {
            let expected = match self.current(domain).await? {
                Current::Held {
                    holder: current,
                    sequence,
                    held_at,
                } => {
                    if &current == holder {
                        return Ok(Reservation::Taken);
                    }
                    return Ok(Reservation::Busy {
                        holder: current,
                        sequence,
                        held_at,
                    });
                }
                Current::Free { sequence } => sequence,
                Current::Never => 0,
            };
            if self.write(domain, expected, holder, HELD).await? {
                return Ok(Reservation::Taken);
            }
        }
    }

    /// Takes over the reservation of `domain` from a holder that is gone (its reissue ended
    /// or never began, as the event log shows), if the hold at `stale_sequence` is still
    /// the current one.
    pub async fn take_over(
        &self,
        domain: &str,
        stale_sequence: u64,
        holder: &LockHolder,
    ) -> Result<bool, StoreError> {
        self.write(domain, stale_sequence, holder, HELD).await
    }

    /// Frees the reservation of `domain` if `holder` still holds it; otherwise nothing.
    pub async fn release(&self, domain: &str, holder: &LockHolder) -> Result<(), StoreError> {
        loop {
            match self.current(domain).await? {
                Current::Held {
                    holder: current,
                    sequence,
                    ..
                } if &current == holder => {
                    if self.write(domain, sequence, holder, FREE).await? {
                        return Ok(());
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    /// Who holds the reservation of `domain`, if anyone.
    pub async fn holder(&self, domain: &str) -> Result<Option<LockHolder>, StoreError> {
        Ok(match self.current(domain).await? {
            Current::Held { holder, .. } => Some(holder),
            _ => None,
        })
    }
}
