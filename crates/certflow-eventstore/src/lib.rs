//! The event log of certflow, on NATS JetStream. Every JetStream detail lives here.
//!
//! One stream (`CERTFLOW_EVENTS`) holds every certificate's events, one subject per
//! certificate (`certflow.events.certificate.<id>`). A command's events travel as one message
//! (an [`certflow_proto::events::v1::EventBatch`]) so they land or fail together, published
//! with `Nats-Expected-Last-Subject-Sequence` (optimistic concurrency, GEN-2) and `Nats-Msg-Id`
//! set to the command id (idempotency, GEN-1). Who, when and why (GEN-4) travel in headers
//! ([`CommandMeta`]).
//!
//! [`EventStore::execute`] is the write path every service uses: load, decide, append, and on
//! a conflict decide again on the new state. [`EventStore::follow`] is the read path of the
//! projection and the CRL publisher: the log by sequence, from a position they keep
//! themselves. [`Outcomes`] remembers the reply to each command so a retried request gets
//! the first answer, refusals included.
//!
//! [`layout`] lists every stream and consumer certflow uses and [`provision`]s them; the
//! services only bind to what is there, so none of them needs JetStream administration
//! rights.

#![forbid(unsafe_code)]

mod backlog;
mod cache;
mod checks;
mod crls;
mod feed;
mod keyindex;
mod keystore;
pub mod layout;
mod locks;
mod meta;
mod outcomes;
mod reactions;
mod review;
mod store;

pub use backlog::Backlog;
pub use checks::{CheckTask, CheckTasks, ValidationChecks};
pub use crls::{CrlStore, PublishedCrl};
pub use feed::{Delivered, EventFeed};
pub use keyindex::KeyIndex;
pub use keystore::{KeyStore, StoredKey, StoredWrappedKey};
pub use layout::{Layout, Provisioned, provision};
pub use locks::{LockHolder, ReissueLocks, Reservation};
pub use meta::{CommandMeta, RequestBinding, actor_from_headers, headers, write_actor};
pub use outcomes::Outcomes;
pub use reactions::{Reaction, Reactions};
pub use review::{
    DocumentStore, LeaseOutcome, LeasedTask, QueueWatch, ReviewLeases, ReviewQueue, StoredDocument,
};
pub use store::{
    Appended, EventStore, ExecuteError, Executed, Loaded, RecordedBatch, StoreConfig, StoreError,
};
