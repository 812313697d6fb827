//! The sled database: certificate states, histories and the applied position.

use std::path::Path;

use certflow_domain::{Certificate, CertificateId, replay};
use certflow_eventstore::Delivered;
use certflow_proto::convert::{event_summary, timestamp_to_proto};
use certflow_proto::v1::HistoryEvent;
use prost::Message;
use serde::{Deserialize, Serialize};
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};
use tracing::{debug, error};

/// Errors of the projection's database.
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    #[error("stored record of {key} is unreadable: {source}")]
    Corrupt {
        key: String,
        #[source]
        source: serde_json::Error,
    },
}

impl From<TransactionError<ViewError>> for ViewError {
    fn from(err: TransactionError<ViewError>) -> Self {
        match err {
            TransactionError::Abort(err) => err,
            TransactionError::Storage(err) => ViewError::Sled(err),
        }
    }
}

/// One certificate as stored: its state and the stream sequence it reflects.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub last_sequence: u64,
    pub certificate: Certificate,
}

const APPLIED: &[u8] = b"applied_sequence";

/// The projection's database. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ProjectionDb {
    db: sled::Db,
    certificates: sled::Tree,
    history: sled::Tree,
    meta: sled::Tree,
}

impl ProjectionDb {
    /// Opens or creates the database at `path`.
    pub fn open(path: &Path) -> Result<Self, ViewError> {
        let db = sled::open(path)?;
        Ok(ProjectionDb {
            certificates: db.open_tree("certificates")?,
            history: db.open_tree("history")?,
            meta: db.open_tree("meta")?,
            db,
        })
    }

    /// The last stream sequence applied (0: none).
    pub fn applied_sequence(&self) -> Result<u64, ViewError> {
        Ok(self.meta.get(APPLIED)?.map_or(0, |v| be_u64(&v)))
    }

    /// Makes everything applied so far durable.
    pub async fn flush(&self) -> Result<(), ViewError> {
        self.db.flush_async().await?;
        Ok(())
    }

    /// Applies a chunk of delivered messages in one transaction, skipping what was applied
    /// before (redelivery) and messages that cannot be read (logged).
    pub fn apply(&self, chunk: &[Delivered]) -> Result<(), ViewError> {
        (&self.certificates, &self.history, &self.meta).transaction(|(certs, history, meta)| {
            let mut applied = meta.get(APPLIED)?.map_or(0, |v| be_u64(&v));
            for delivered in chunk {
                if delivered.sequence <= applied {
                    continue;
                }
                applied = delivered.sequence;
                let batch = match &delivered.batch {
                    Ok(batch) => batch,
                    Err(err) => {
                        error!(sequence = delivered.sequence, error = %err, "skipping unreadable message");
                        continue;
                    }
                };
                let key = batch.certificate_id.as_str().as_bytes();
                let record: Option<Record> = match certs.get(key)? {
                    Some(bytes) => Some(decode_record(batch.certificate_id.as_str(), &bytes)
                        .map_err(ConflictableTransactionError::Abort)?),
                    None => None,
                };
                if record.as_ref().is_some_and(|r| r.last_sequence >= batch.sequence) {
                    debug!(sequence = batch.sequence, "already applied");
                    continue;
                }
                let state = replay(
                    record.map(|r| r.certificate),
                    &batch.meta.command_id,
                    &batch.events,
                );
                if let Some(certificate) = state {
                    let record = Record {
                        last_sequence: batch.sequence,
                        certificate,
                    };
                    let bytes = serde_json::to_vec(&record).map_err(|source| {
                        ConflictableTransactionError::Abort(ViewError::Corrupt {
                            key: batch.certificate_id.to_string(),
                            source,
                        })
                    })?;
                    certs.insert(key, bytes)?;
                }
                for (index, event) in batch.events.iter().enumerate() {
                    let entry = HistoryEvent {
                        sequence: batch.sequence,
                        event_type: event.type_name().to_string(),
                        recorded_at: Some(timestamp_to_proto(batch.recorded_at)),
                        actor_subject: batch.meta.actor.subject.clone(),
                        actor_account: batch.meta.actor.account.clone(),
                        command_id: batch.meta.command_id.to_string(),
                        correlation_id: batch.meta.correlation_id.clone(),
                        request_id: batch.meta.request_id.clone(),
                        summary: event_summary(event),
                    };
                    history.insert(
                        history_key(&batch.certificate_id, batch.sequence, index as u32),
                        entry.encode_to_vec(),
                    )?;
                }
            }
            meta.insert(APPLIED, &applied.to_be_bytes())?;
            Ok(())
        })?;
        Ok(())
    }

    /// One certificate's record.
    pub fn get(&self, id: &CertificateId) -> Result<Option<Record>, ViewError> {
        self.certificates
            .get(id.as_str().as_bytes())?
            .map(|bytes| decode_record(id.as_str(), &bytes))
            .transpose()
    }

    /// Records in id order, starting after `after` (exclusive).
    pub fn scan_after(
        &self,
        after: Option<&CertificateId>,
    ) -> impl Iterator<Item = Result<Record, ViewError>> + '_ {
        let start = after.map(|id| {
            let mut key = id.as_str().as_bytes().to_vec();
            key.push(0);
            key
        });
        let range = match start {
            Some(start) => self.certificates.range(start..),
            None => self.certificates.iter(),
        };
        range.map(|item| {
            let (key, bytes) = item?;
            decode_record(&String::from_utf8_lossy(&key), &bytes)
        })
    }

    /// A certificate's history, in order.
    pub fn history(&self, id: &CertificateId) -> Result<Vec<HistoryEvent>, ViewError> {
        let mut prefix = id.as_str().as_bytes().to_vec();
        prefix.push(0);
        self.history
            .scan_prefix(prefix)
            .map(|item| {
                let (_, bytes) = item?;
                // Written by `apply` from a valid message; an unreadable entry is a bug.
                Ok(HistoryEvent::decode(bytes.as_ref()).unwrap_or_default())
            })
            .collect()
    }
}

fn decode_record(key: &str, bytes: &[u8]) -> Result<Record, ViewError> {
    serde_json::from_slice(bytes).map_err(|source| ViewError::Corrupt {
        key: key.to_string(),
        source,
    })
}

fn history_key(id: &CertificateId, sequence: u64, index: u32) -> Vec<u8> {
    let mut key = id.as_str().as_bytes().to_vec();
    key.push(0);
    key.extend_from_slice(&sequence.to_be_bytes());
    key.extend_from_slice(&index.to_be_bytes());
    key
}

fn be_u64(bytes: &[u8]) -> u64 {
    let mut buf = [0u8; 8];
    let n = bytes.len().min(8);
    buf[8 - n..].copy_from_slice(&bytes[bytes.len() - n..]);
    u64::from_be_bytes(buf)
}
