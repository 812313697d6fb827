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
//! projection: a durable pull consumer. [`Outcomes`] remembers the reply to each command so a
//! retried request gets the first answer, refusals included.

#![forbid(unsafe_code)]

mod backlog;
mod cache;
mod checks;
mod crls;
mod keyindex;
mod keystore;
mod locks;
mod meta;
mod outcomes;
mod reactions;
mod review;
mod store;

pub use backlog::Backlog;
pub use checks::{CheckTask, CheckTasks, ValidationChecks};
pub use crls::{CrlStore, PublishedCrl};
pub use keyindex::KeyIndex;
pub use keystore::{KeyStore, StoredKey, StoredWrappedKey};
pub use locks::{LockHolder, ReissueLocks, Reservation};
pub use meta::{CommandMeta, actor_from_headers, headers, write_actor};
pub use outcomes::Outcomes;
pub use reactions::{Reaction, Reactions};
pub use review::{
    DocumentStore, LeaseOutcome, LeasedTask, QueueWatch, ReviewQueue, StoredDocument,
};
pub use store::{
    Appended, Delivered, EventFeed, EventStore, ExecuteError, Executed, Loaded, RecordedBatch,
    StoreConfig, StoreError,
};
