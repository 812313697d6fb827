//! The sled database: certificate states, histories and the applied position.
//!
//! Everything lives in one tree under key prefixes (`c/<id>` a certificate's record,
//! `a/<account>\0<id>` the account index, `h/<id>\0<sequence>` its history, one value per
//! message with that message's events,
//! `x/<sha256>` a certificate chain (intermediate and root), which every certificate of a CA
//! shares and is kept once, `m/applied` the position, `m/layout` the layout's version), so a
//! chunk of events is
//! written as one `sled::Batch`: atomic, and far cheaper than a transaction across trees.
//! Records are postcard (compact, and several times cheaper to write and read than JSON);
//! postcard has no field names, so a change of `Certificate` is a new layout version, and
//! `record_bytes_are_the_layouts` fails until it is one.
//! The account index makes a customer's list cost what the customer's own certificates
//! cost, however many other accounts there are.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

use certflow_domain::{Certificate, CertificateId, Timestamp, reactions, replay};
use certflow_proto::convert::{event_summary, timestamp_to_proto};
use certflow_proto::v1::{GetCertificateHistoryResponse, HistoryEvent};
use certflow_store::Delivered;
use prost::Message;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tracing::{debug, error, info};

/// Errors of the projection's database.
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    #[error("stored record of {key} is unreadable: {source}")]
    Corrupt {
        key: String,
        #[source]
        source: postcard::Error,
    },
    #[error("the chain the record of {key} names is not stored")]
    MissingChain { key: String },
}

/// Counts of open domain validations by how soon their deadline falls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpenValidations {
    pub overdue: u64,
    pub soon: u64,
    pub later: u64,
}

/// One certificate as the projection answers it: its state and the stream sequence it
/// reflects ([`StoredRecord`] is how sled holds it).
#[derive(Debug, Clone)]
pub struct Record {
    pub last_sequence: u64,
    pub certificate: Certificate,
}

/// A record as sled holds it: the certificate without its chain, which is kept once under
/// `x/<chain>` (`chain` its SHA-256). A chain is some two thirds of a certificate's PEM, and
/// every message rewrites its certificate's record.
#[derive(Debug, Serialize, Deserialize)]
struct StoredRecord {
    last_sequence: u64,
    certificate: Certificate,
    chain: Option<[u8; 32]>,
}

const APPLIED: &[u8] = b"m/applied";
const LAYOUT: &[u8] = b"m/layout";
/// The layout's version: 2 added the account index, 3 made records postcard, 4 keeps a
/// message's history entries under one key, 5 keeps each chain once, 6 indexes open
/// validations by deadline.
const LAYOUT_VERSION: u64 = 6;
const CERTIFICATE: &[u8] = b"c/";
const ACCOUNT: &[u8] = b"a/";
const HISTORY: &[u8] = b"h/";
const CHAIN: &[u8] = b"x/";
const DEADLINE: &[u8] = b"d/";
/// Trees of the earlier layout (one per kind, written in a transaction).
const EARLIER_TREES: [&str; 3] = ["certificates", "history", "meta"];

/// Bytes of pages sled keeps in memory: sled's own default is a gibibyte, which a
/// projection of a million certificates would fill. With this, the bench's rebuild rate at
/// 55,000 certificates stayed within its run-to-run spread.
pub const CACHE_BYTES: u64 = 128 * 1024 * 1024;

/// How the projection opens sled: at `path`, with a cache of [`CACHE_BYTES`].
pub fn sled_config(path: &Path) -> sled::Config {
    sled::Config::new().path(path).cache_capacity(CACHE_BYTES)
}

/// The projection's database. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ProjectionDb {
    db: sled::Db,
    tree: sled::Tree,
    /// The chains read or written so far, by SHA-256: a handful, one per CA.
    chains: Arc<RwLock<HashMap<[u8; 32], Arc<str>>>>,
}

impl ProjectionDb {
    /// Opens or creates the database at `path`. A database of the earlier layout is
    /// dropped: its position is gone with it, so the log is replayed into the new one.
    pub fn open(path: &Path) -> Result<Self, ViewError> {
        let db = sled_config(path).open()?;
        for name in EARLIER_TREES {
            if db
                .tree_names()
                .iter()
                .any(|tree| tree.as_ref() == name.as_bytes())
            {
                info!(
                    tree = name,
                    "dropping a tree of the earlier layout; replaying the log"
                );
                db.drop_tree(name)?;
            }
        }
        let tree = db.open_tree("projection")?;
        let layout = tree.get(LAYOUT)?.map_or(0, |v| be_u64(&v));
        if layout != LAYOUT_VERSION {
            if !tree.is_empty() {
                info!(
                    layout,
                    "the database has an earlier layout; replaying the log"
                );
                tree.clear()?;
            }
            tree.insert(LAYOUT, &LAYOUT_VERSION.to_be_bytes())?;
        }
        Ok(ProjectionDb {
            tree,
            db,
            chains: Arc::default(),
        })
    }

    /// The last stream sequence applied (0: none).
    pub fn applied_sequence(&self) -> Result<u64, ViewError> {
        Ok(self.tree.get(APPLIED)?.map_or(0, |v| be_u64(&v)))
    }

    /// Makes everything applied so far durable.
    pub async fn flush(&self) -> Result<(), ViewError> {
        self.db.flush_async().await?;
        Ok(())
    }

    /// Applies a chunk of delivered messages as one atomic batch, skipping what was
    /// applied before (redelivery) and messages that cannot be read (logged). Each
    /// certificate is read and written once per chunk. Only the projection's applier
    /// writes, one chunk at a time, so reading outside the batch is safe.
    pub fn apply(&self, chunk: &[Delivered]) -> Result<(), ViewError> {
        let mut applied = self.applied_sequence()?;
        let mut records: HashMap<&CertificateId, Option<Record>> = HashMap::new();
        // Each certificate's open-validation deadline before the chunk, as indexed.
        let mut indexed: HashMap<&CertificateId, Option<Timestamp>> = HashMap::new();
        let mut writes = sled::Batch::default();
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
            let id = &batch.certificate_id;
            let record = match records.remove(id) {
                Some(record) => record,
                None => {
                    let record = self.get(id)?;
                    let deadline = record
                        .as_ref()
                        .and_then(|r| reactions::open_deadline(&r.certificate));
                    indexed.insert(id, deadline);
                    record
                }
            };
            if record
                .as_ref()
                .is_some_and(|r| r.last_sequence >= batch.sequence)
            {
                debug!(sequence = batch.sequence, "already applied");
                records.insert(id, record);
                continue;
            }
            let previous = record.clone();
            let state = replay(
                record.map(|r| r.certificate),
                &batch.meta.command_id,
                &batch.events,
            );
            let record = match state {
                Some(certificate) => Some(Record {
                    last_sequence: batch.sequence,
                    certificate,
                }),
                None => previous.clone(),
            };
            if previous.is_none()
                && let Some(record) = &record
            {
                writes.insert(account_key(&record.certificate.account, id), &[]);
            }
            records.insert(id, record);
            let mut entries = Vec::with_capacity(batch.events.len());
            for event in &batch.events {
                entries.push(HistoryEvent {
                    sequence: batch.sequence,
                    event_type: event.type_name().to_string(),
                    recorded_at: Some(timestamp_to_proto(batch.recorded_at)),
                    actor_subject: batch.meta.actor.subject.clone(),
                    actor_account: batch.meta.actor.account.clone(),
                    command_id: batch.meta.command_id.to_string(),
                    correlation_id: batch.meta.correlation_id.clone(),
                    request_id: batch.meta.request_id.clone(),
                    summary: event_summary(event),
                });
            }
            // One key per message: a revocation's two events cost one write, not two.
            writes.insert(
                history_key(id, batch.sequence),
                GetCertificateHistoryResponse { events: entries }.encode_to_vec(),
            );
        }
        let mut new_chains = HashMap::new();
        for (id, record) in records {
            let Some(record) = record else { continue };
            let before = indexed.get(id).copied().flatten();
            let after = reactions::open_deadline(&record.certificate);
            if before != after {
                if let Some(deadline) = before {
                    writes.remove(deadline_key(deadline, id));
                }
                if let Some(deadline) = after {
                    writes.insert(deadline_key(deadline, id), &[]);
                }
            }
            let stored = self.to_stored(record, &mut writes, &mut new_chains)?;
            let bytes = postcard::to_allocvec(&stored).map_err(|source| ViewError::Corrupt {
                key: id.to_string(),
                source,
            })?;
            writes.insert(certificate_key(id), bytes);
        }
        writes.insert(APPLIED, &applied.to_be_bytes());
        self.tree.apply_batch(writes)?;
        if let Ok(mut chains) = self.chains.write() {
            chains.extend(new_chains);
        }
        Ok(())
    }

    /// `record` as sled keeps it, its chain written to `writes` if it is not stored yet.
    fn to_stored(
        &self,
        record: Record,
        writes: &mut sled::Batch,
        new_chains: &mut HashMap<[u8; 32], Arc<str>>,
    ) -> Result<StoredRecord, ViewError> {
        let Record {
            last_sequence,
            mut certificate,
        } = record;
        let chain = match certificate.chain_pem.take() {
            Some(pem) => {
                let digest: [u8; 32] = Sha256::digest(pem.as_bytes()).into();
                if !new_chains.contains_key(&digest) && self.chain(&digest)?.is_none() {
                    writes.insert(chain_key(&digest), pem.as_bytes());
                    new_chains.insert(digest, pem.into());
                }
                Some(digest)
            }
            None => None,
        };
        Ok(StoredRecord {
            last_sequence,
            certificate,
            chain,
        })
    }

    /// The chain stored under `digest`, if any.
    fn chain(&self, digest: &[u8; 32]) -> Result<Option<Arc<str>>, ViewError> {
        if let Some(pem) = self.chains.read().ok().and_then(|c| c.get(digest).cloned()) {
            return Ok(Some(pem));
        }
        let Some(bytes) = self.tree.get(chain_key(digest))? else {
            return Ok(None);
        };
        let pem: Arc<str> = String::from_utf8_lossy(&bytes).into();
        if let Ok(mut chains) = self.chains.write() {
            chains.insert(*digest, pem.clone());
        }
        Ok(Some(pem))
    }

    /// A record read back from sled, its chain in place again.
    fn decode_record(&self, key: &str, bytes: &[u8]) -> Result<Record, ViewError> {
        let stored = decode_stored(key, bytes)?;
        let mut certificate = stored.certificate;
        if let Some(digest) = stored.chain {
            let pem = self
                .chain(&digest)?
                .ok_or_else(|| ViewError::MissingChain {
                    key: key.to_string(),
                })?;
            certificate.chain_pem = Some(pem.to_string());
        }
        Ok(Record {
            last_sequence: stored.last_sequence,
            certificate,
        })
    }

    /// Certificates with an open domain validation, by when their earliest deadline falls,
    /// as of `now`: past it (not concluded yet), within `soon`, later.
    pub fn open_validations(
        &self,
        now: Timestamp,
        soon: certflow_domain::Duration,
    ) -> Result<OpenValidations, ViewError> {
        let mut open = OpenValidations::default();
        let soon = now.plus(soon);
        for entry in self.tree.scan_prefix(DEADLINE) {
            let (key, _) = entry?;
            let Some(millis) = key
                .get(DEADLINE.len()..DEADLINE.len() + 8)
                .and_then(|bytes| <[u8; 8]>::try_from(bytes).ok())
            else {
                continue;
            };
            let deadline = Timestamp::from_unix_millis(i64::from_be_bytes(millis));
            if deadline <= now {
                open.overdue += 1;
            } else if deadline <= soon {
                open.soon += 1;
            } else {
                open.later += 1;
            }
        }
        Ok(open)
    }

    /// One certificate's record.
    pub fn get(&self, id: &CertificateId) -> Result<Option<Record>, ViewError> {
        self.tree
            .get(certificate_key(id))?
            .map(|bytes| self.decode_record(id.as_str(), &bytes))
            .transpose()
    }

    /// Records in id order, starting after `after` (exclusive).
    pub fn scan_after(
        &self,
        after: Option<&CertificateId>,
    ) -> impl Iterator<Item = Result<Record, ViewError>> + '_ {
        let start = match after {
            Some(id) => {
                let mut key = certificate_key(id);
                key.push(0);
                key
            }
            None => CERTIFICATE.to_vec(),
        };
        let mut end = CERTIFICATE.to_vec();
        if let Some(last) = end.last_mut() {
            *last += 1;
        }
        self.tree.range(start..end).map(|item| {
            let (key, bytes) = item?;
            self.decode_record(&String::from_utf8_lossy(&key), &bytes)
        })
    }

    /// The records of `account`, in id order, starting after `after` (exclusive): read
    /// through the account index, so only that account's certificates are touched.
    pub fn scan_account_after<'a>(
        &'a self,
        account: &str,
        after: Option<&CertificateId>,
    ) -> impl Iterator<Item = Result<Record, ViewError>> + 'a {
        let prefix = account_prefix(account);
        let start = match after {
            Some(id) => {
                let mut key = prefix.clone();
                key.extend_from_slice(id.as_str().as_bytes());
                key.push(0);
                key
            }
            None => prefix.clone(),
        };
        let mut end = prefix.clone();
        if let Some(last) = end.last_mut() {
            // The separator 0 becomes 1: every key of the account sorts before it.
            *last += 1;
        }
        let skip = prefix.len();
        let account = certflow_domain::account_key(account);
        self.tree.range(start..end).filter_map(move |item| {
            let key = match item {
                Ok((key, _)) => key,
                Err(err) => return Some(Err(err.into())),
            };
            let id = CertificateId::parse(&String::from_utf8_lossy(&key[skip..])).ok()?;
            match self.get(&id) {
                // A certificate never changes account; the check keeps a list to its
                // account even if an index entry were ever wrong.
                Ok(Some(record))
                    if certflow_domain::account_key(&record.certificate.account) == account =>
                {
                    Some(Ok(record))
                }
                Ok(_) => None,
                Err(err) => Some(Err(err)),
            }
        })
    }

    /// A certificate's history, in order.
    pub fn history(&self, id: &CertificateId) -> Result<Vec<HistoryEvent>, ViewError> {
        let mut prefix = HISTORY.to_vec();
        prefix.extend_from_slice(id.as_str().as_bytes());
        prefix.push(0);
        let mut events = Vec::new();
        for item in self.tree.scan_prefix(prefix) {
            let (_, bytes) = item?;
            // Written by `apply` from a valid message; an unreadable entry is a bug.
            events.extend(
                GetCertificateHistoryResponse::decode(bytes.as_ref())
                    .unwrap_or_default()
                    .events,
            );
        }
        Ok(events)
    }
}

fn decode_stored(key: &str, bytes: &[u8]) -> Result<StoredRecord, ViewError> {
    postcard::from_bytes(bytes).map_err(|source| ViewError::Corrupt {
        key: key.to_string(),
        source,
    })
}

fn chain_key(digest: &[u8; 32]) -> Vec<u8> {
    let mut key = CHAIN.to_vec();
    key.extend_from_slice(digest);
    key
}

/// `d/<deadline, big-endian milliseconds><id>`: one key per certificate with an open
/// validation. Deadlines are after 1970, so the signed value sorts as its bytes do.
fn deadline_key(deadline: Timestamp, id: &CertificateId) -> Vec<u8> {
    let mut key = DEADLINE.to_vec();
    key.extend_from_slice(&deadline.unix_millis().to_be_bytes());
    key.extend_from_slice(id.as_str().as_bytes());
    key
}

fn certificate_key(id: &CertificateId) -> Vec<u8> {
    let mut key = CERTIFICATE.to_vec();
    key.extend_from_slice(id.as_str().as_bytes());
    key
}

/// `a/<account>\0`: the account in the one form certflow compares accounts in.
fn account_prefix(account: &str) -> Vec<u8> {
    let mut key = ACCOUNT.to_vec();
    key.extend_from_slice(certflow_domain::account_key(account).as_bytes());
    key.push(0);
    key
}

fn account_key(account: &str, id: &CertificateId) -> Vec<u8> {
    let mut key = account_prefix(account);
    key.extend_from_slice(id.as_str().as_bytes());
    key
}

fn history_key(id: &CertificateId, sequence: u64) -> Vec<u8> {
    let mut key = HISTORY.to_vec();
    key.extend_from_slice(id.as_str().as_bytes());
    key.push(0);
    key.extend_from_slice(&sequence.to_be_bytes());
    key
}

fn be_u64(bytes: &[u8]) -> u64 {
    let mut buf = [0u8; 8];
    let n = bytes.len().min(8);
    buf[8 - n..].copy_from_slice(&bytes[bytes.len() - n..]);
    u64::from_be_bytes(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_of_the_earlier_layout_is_dropped_and_replayed() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let db = sled::open(dir.path()).expect("sled");
            let meta = db.open_tree("meta").expect("tree");
            meta.insert(b"applied_sequence", &42u64.to_be_bytes())
                .expect("insert");
            db.open_tree("certificates")
                .expect("tree")
                .insert(b"x", b"{}")
                .expect("insert");
            db.flush().expect("flush");
        }
        let db = ProjectionDb::open(dir.path()).expect("open");
        assert_eq!(
            db.applied_sequence().expect("read"),
            0,
            "replays from the start"
        );
        assert!(
            !db.db
                .tree_names()
                .iter()
                .any(|name| name.as_ref() == b"certificates" || name.as_ref() == b"meta")
        );
        assert_eq!(db.scan_after(None).count(), 0);
    }

    fn issued(id: &CertificateId, account: &str) -> certflow_domain::Event {
        use certflow_domain::*;
        Event::Issued(CertificateIssued {
            id: id.clone(),
            account: account.into(),
            brand: Brand::GeoTrust,
            level: Level::Dv,
            paid: true,
            algorithm: KeyAlgorithm::Rsa2048,
            domains: vec![DomainName::parse("a.example.com").expect("valid")],
            term_years: 1,
            issued_at: Timestamp::from_unix_seconds(1_800_000_000),
            not_before: Timestamp::from_unix_seconds(1_800_000_000),
            not_after: Timestamp::from_unix_seconds(1_830_000_000),
            validation_setup: Default::default(),
            renewal_ordered: false,
            x509: None,
            original: None,
            enterprise_info: Default::default(),
            legacy: false,
        })
    }

    fn delivered(sequence: u64, id: &CertificateId, account: &str) -> Delivered {
        use certflow_bus::CommandMeta;
        use certflow_domain::{Actor, Role, Timestamp};
        let actor = Actor {
            subject: "admin".into(),
            account: account.into(),
            roles: vec![Role::Admin],
        };
        Delivered {
            sequence,
            batch: Ok(certflow_store::RecordedBatch {
                certificate_id: id.clone(),
                sequence,
                recorded_at: Timestamp::from_unix_seconds(1_800_000_000),
                meta: CommandMeta::for_request(&format!("r{sequence}"), "c", actor),
                events: vec![issued(id, account)],
            }),
        }
    }

    /// Records written by this layout version must read the same in every later build of
    /// it: postcard names no fields, so a changed `Certificate` changes these bytes. Then
    /// raise `LAYOUT_VERSION` (the projection replays the log into the new layout) and
    /// write the file again (`CERTFLOW_WRITE_TESTDATA=1`).
    #[test]
    fn record_bytes_are_the_layouts() {
        let id = CertificateId::parse("00000000-0000-4000-8000-000000000001").expect("id");
        let meta = certflow_bus::CommandMeta::for_request(
            "r1",
            "c",
            certflow_domain::Actor {
                subject: "admin".into(),
                account: "acme".into(),
                roles: vec![certflow_domain::Role::Admin],
            },
        );
        let certificate =
            replay(None, &meta.command_id, &[issued(&id, "acme")]).expect("an issued certificate");
        let record = StoredRecord {
            last_sequence: 7,
            certificate,
            chain: Some([7; 32]),
        };
        let bytes = postcard::to_allocvec(&record).expect("encode");
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("testdata/record-v{LAYOUT_VERSION}.bin"));
        if std::env::var_os("CERTFLOW_WRITE_TESTDATA").is_some() {
            std::fs::write(&path, &bytes).expect("write testdata");
        }
        let stored = std::fs::read(&path).unwrap_or_else(|err| {
            panic!(
                "{}: {err}; a new layout version needs its record bytes",
                path.display()
            )
        });
        assert_eq!(
            bytes, stored,
            "a record's bytes changed: raise LAYOUT_VERSION and write testdata again"
        );
        let read = decode_stored("c", &stored).expect("the stored bytes read");
        assert_eq!(read.last_sequence, 7);
        assert_eq!(read.certificate.id, id);
        assert_eq!(read.chain, Some([7; 32]));
    }

    /// Certificates of one CA share a chain: sled keeps it once, and every record reads
    /// back with it, also after the database is opened again.
    #[test]
    fn a_chain_is_kept_once_and_read_back_into_every_record() {
        let dir = tempfile::tempdir().expect("tempdir");
        let with_chain = |sequence: u64, id: &str, chain: &str| {
            let id = CertificateId::parse(id).expect("id");
            let mut message = delivered(sequence, &id, "acme");
            if let Ok(batch) = &mut message.batch
                && let certflow_domain::Event::Issued(issued) = &mut batch.events[0]
            {
                issued.x509 = Some(certflow_domain::X509Facts {
                    serial_number: format!("{sequence:x}"),
                    public_key_sha256: "00".repeat(32),
                    pem: format!("leaf {sequence}"),
                    chain_pem: chain.into(),
                    private_key_id: None,
                    crl_shard: None,
                });
            }
            message
        };
        let ca = "-----BEGIN CERTIFICATE-----\nintermediate\n-----END CERTIFICATE-----\n";
        let other = "-----BEGIN CERTIFICATE-----\nanother CA\n-----END CERTIFICATE-----\n";
        {
            let db = ProjectionDb::open(dir.path()).expect("open");
            db.apply(&[with_chain(1, "c1", ca), with_chain(2, "c2", ca)])
                .expect("apply");
            db.apply(&[with_chain(3, "c3", ca), with_chain(4, "c4", other)])
                .expect("apply");
            let chains = db.tree.scan_prefix(CHAIN).count();
            assert_eq!(chains, 2, "one chain per CA, however many certificates");
        }
        // sled's flusher thread lets go of the directory's lock a moment after the drop.
        let reopened = (0..100).find_map(|_| {
            ProjectionDb::open(dir.path())
                .inspect_err(|_| std::thread::sleep(std::time::Duration::from_millis(20)))
                .ok()
        });
        let db = reopened.expect("open again");
        let chain_of = |id: &str| {
            db.get(&CertificateId::parse(id).expect("id"))
                .expect("read")
                .expect("a record")
                .certificate
                .chain_pem
        };
        assert_eq!(chain_of("c1").as_deref(), Some(ca));
        assert_eq!(chain_of("c3").as_deref(), Some(ca));
        assert_eq!(chain_of("c4").as_deref(), Some(other));
        let listed: Vec<_> = db
            .scan_after(None)
            .map(|record| record.expect("read").certificate.chain_pem)
            .collect();
        assert_eq!(listed.len(), 4);
        assert!(listed.iter().all(Option::is_some));
    }

    #[test]
    fn a_list_of_one_account_reads_only_that_accounts_records() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = ProjectionDb::open(dir.path()).expect("open");
        // Ids out of sequence order, so the index (not arrival) gives the order.
        let ids: Vec<CertificateId> = ["c5", "c1", "c4", "c2", "c3", "c0"]
            .into_iter()
            .map(|id| CertificateId::parse(id).expect("id"))
            .collect();
        // Accounts interleaved in sequence order; "Acme " is `acme` in another form.
        let accounts = ["acme", "globex", "Acme ", "globex", "initech", "acme"];
        let chunk: Vec<Delivered> = ids
            .iter()
            .zip(accounts)
            .enumerate()
            .map(|(n, (id, account))| delivered(n as u64 + 1, id, account))
            .collect();
        db.apply(&chunk).expect("apply");

        let listed = |account: &str, after: Option<&CertificateId>| -> Vec<CertificateId> {
            db.scan_account_after(account, after)
                .map(|record| record.expect("read").certificate.id)
                .collect()
        };
        let mut acme = vec![ids[0].clone(), ids[2].clone(), ids[5].clone()];
        acme.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        assert_eq!(listed("acme", None), acme);
        assert_eq!(listed("ACME", None), acme, "one form of an account");
        assert_eq!(listed("acme", Some(&acme[0])), acme[1..].to_vec());
        assert_eq!(listed("acme", Some(&acme[2])), Vec::<CertificateId>::new());
        assert_eq!(listed("initech", None), vec![ids[4].clone()]);
        assert_eq!(
            listed("acm", None),
            Vec::<CertificateId>::new(),
            "no prefix match"
        );
        assert_eq!(listed("umbrella", None), Vec::<CertificateId>::new());

        // Redelivery indexes nothing twice.
        db.apply(&chunk).expect("apply again");
        assert_eq!(listed("acme", None), acme);
    }
}
