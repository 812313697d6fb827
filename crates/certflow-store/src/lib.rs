//! Everything certflow keeps in NATS JetStream. Every JetStream detail lives here.
//!
//! The map, one line per resource ([`layout`] lists them with their settings and
//! [`provision`] makes them; services only attach):
//!
//! | resource | type | what it holds |
//! |---|---|---|
//! | `CERTFLOW_EVENTS` | [`EventStore`] | the log: one message per command, one subject per certificate |
//! | `revocation`, `validation`, `review`, `reissue` | [`Reactions`] | the reacting services' durable consumers of the log |
//! | `CERTFLOW_OUTCOMES` | [`Outcomes`] | each command's first reply, for retries (GEN-1) |
//! | `CERTFLOW_KEYS` | [`KeyStore`] | sealed private keys and CA keys |
//! | `CERTFLOW_KEY_INDEX` | [`KeyIndex`] | certificates by public key, and blocked keys (REV-16) |
//! | `CERTFLOW_CRLS` | [`CrlStore`] | the latest CRL of each CA |
//! | `CERTFLOW_VALIDATION_CHECKS` | [`ValidationChecks`] | open domain validations to probe, a work queue |
//! | `REVIEW_QUEUE` | [`ReviewQueue`] | review tasks for reviewers, a work queue |
//! | `CERTFLOW_REVIEW_LEASES` | [`ReviewLeases`] | the tasks each reviewer holds (REV-R5) |
//! | `certflow-uploads`, `certflow-documents` | [`DocumentStore`] | staged and recorded documents, object stores |
//! | `CERTFLOW_REISSUE_LOCKS` | [`ReissueLocks`] | one running reissue per registrable domain (REI-4) |
//! | `CERTFLOW_ACME_NONCES`, `CERTFLOW_ACME_ACCOUNTS` | [`AcmeStore`] | ACME nonces (single use), EAB keys and ACME accounts |
//! | `CERTFLOW_NOTIFY_ENDPOINTS`, `CERTFLOW_NOTIFICATIONS`, `CERTFLOW_NOTIFY_DEAD` | [`NotifyStore`] | accounts' notification endpoints (with signing secrets), the delivery queue, dead letters |
//!
//! A command's events travel as one message (an
//! [`certflow_proto::events::v1::EventBatch`]) published with
//! `Nats-Expected-Last-Subject-Sequence` (optimistic concurrency, GEN-2) and `Nats-Msg-Id`
//! set to the command id (idempotency, GEN-1). Who, when and why (GEN-4,
//! [`certflow_bus::CommandMeta`]) are recorded in the same body, as its `CommandRecord`;
//! batches stored before that carry them in headers and still read.
//!
//! [`EventStore::append_command`] is the write path of commands (the runtime decides on the
//! state its cache holds and lets the expected sequence catch staleness);
//! [`EventStore::execute`] is the reactions' one: load, decide, append, and on a conflict
//! decide again on the new state. [`EventStore::follow`] is the read path of the
//! projection and the CRL publisher: the log by sequence, from a position they keep
//! themselves.
//!
//! ## Layout
//!
//! - `acme` (private): [`AcmeStore`]: the ACME endpoint's nonces, EAB keys and accounts.
//! - `backlog` (private): [`Backlog`]: gauges of how far consumers and the review queue lag.
//! - `cache` (private): recently read certificates, so a load reads only newer messages.
//! - `checks` (private): [`ValidationChecks`]: the validation service's delayed check queue.
//! - `crls` (private): [`CrlStore`]: the latest signed CRL of each CA, one subject per CA.
//! - `feed` (private): [`EventFeed`]: the whole log in order by direct gets, for `follow`.
//! - `keyindex` (private): [`KeyIndex`]: certificates by public key, blocked keys (REV-16).
//! - `keystore` (private): [`KeyStore`]: sealed keys, data key and ciphertext apart (shredding).
//! - [`layout`]: every stream and consumer with its settings, and [`provision`] that makes them.
//! - `locks` (private): [`ReissueLocks`]: one reservation per registrable domain (REI-4).
//! - `notify` (private): [`NotifyStore`]: endpoints, the delivery queue and dead letters.
//! - `outcomes` (private): [`Outcomes`]: each command's first reply, for retries (GEN-1).
//! - `queue` (private): [`TaskFeed`] and [`QueuedTask`]: what every work queue's worker sees.
//! - `reactions` (private): [`Reactions`]: the durable pull consumer a reacting service shares.
//! - `review` (private): [`ReviewQueue`], [`ReviewLeases`] and [`DocumentStore`] for manual review.
//! - `store` (private): [`EventStore`]: the events stream: append, load, execute, history.

#![forbid(unsafe_code)]

mod acme;
mod backlog;
mod cache;
mod checks;
mod crls;
mod feed;
mod keyindex;
mod keystore;
pub mod layout;
mod locks;
mod notify;
mod outcomes;
mod queue;
mod reactions;
mod review;
mod store;

pub use acme::{AcmeAccount, AcmeStore, EabKey, NONCE_LIFETIME};
pub use backlog::Backlog;
pub use checks::{CheckTask, CheckTasks, ValidationChecks};
pub use crls::{CrlStore, PublishedCrl};
pub use feed::{Delivered, EventFeed};
pub use keyindex::KeyIndex;
pub use keystore::{KeyStore, StoredKey, StoredWrappedKey};
pub use layout::{Layout, Provisioned, provision};
pub use locks::{LockHolder, ReissueLocks, Reservation};
pub use notify::{EndpointsRead, NotifyStore, NotifyTask, NotifyTasks};
pub use outcomes::{Outcome, Outcomes, Recorded};
pub use queue::{KeepAlive, QueuedTask, TaskFeed};
pub use reactions::{Reaction, Reactions};
pub use review::{
    DocumentStore, LeaseOutcome, LeasedTask, QueueWatch, ReviewLeases, ReviewQueue, StoredDocument,
};
pub use store::{
    Appended, EventStore, ExecuteError, Executed, Loaded, RecordedBatch, StoreConfig, StoreError,
};
