//! The certificate aggregate of certflow, as pure functions.
//!
//! Every service that changes a certificate loads its history from the event log, folds it
//! with [`evolve`] into a [`State`], asks [`decide`] what a [`Command`] means on that state,
//! and appends the resulting [`Event`]s. The projection folds the same events with the same
//! [`evolve`], so the read side can never disagree with the write side about what an event
//! means.
//!
//! This crate does no IO and never reads a clock: time, the actor and the policy come in a
//! [`Context`]. Every rule of `docs/rules.md` that it enforces names its [`Rule`] id, and every
//! refusal carries the [`Reason`] code that clients see.
//!
//! # Layout
//!
//! The rules live by feature, as `docs/rules.md` groups them:
//!
//! - `lifecycle`: [`decide`] and [`evolve`], routing each command and event to its feature:
//!   - `lifecycle::issue`: issuing, recording (CA-3) and uploading a certificate (CA-1 … CA-3);
//!   - `lifecycle::revocation`: revocation requests, paths and revoking (REV-1 … REV-17);
//!   - `lifecycle::validation`: the domain validation a revocation or a reissue waits for;
//!   - [`review`]: stamped documents and reviewers' decisions (REV-12, REV-13, REV-R1 … R4);
//!   - [`reissue`]: reissue requests and how they end (REI-1 … REI-12);
//!   - `lifecycle::deletion`: deleting a certificate (DEL-1, DEL-2);
//!   - `lifecycle::renewal`: recording a renewal order (REN-1).
//! - [`reactions`]: what the services decide when an event, a timer or a probe (not a client)
//!   moves a certificate on: challenges, proofs, expiry, cascades, key compromise.
//!
//! What the rules read and write:
//!
//! - `state`: the aggregate, [`Certificate`] and its [`Status`], as its events made it.
//! - `values`: ids, brands, levels, keys, reasons, paths and the other values of the rules.
//! - `command` and `event`: what callers ask ([`Command`]) and what the log keeps ([`Event`]).
//! - `context`: who asks and when ([`Context`], [`Actor`]), and what they may see (GEN-3).
//! - `policy`: the durations, dates and counts the rules depend on ([`Policy`]).
//! - `error`: rule ids, reason codes and refusals ([`Rule`], [`Reason`], [`DomainError`]).
//! - `names`, [`text`], `time`, [`validity`]: domain names (CA-1, CA-2), caller text,
//!   timestamps, and how long a certificate may be valid (CA-3).
//! - `testing` (tests only): the clock, actors and certificates the tests share.

#![forbid(unsafe_code)]

mod command;
mod context;
mod error;
mod event;
mod lifecycle;
mod names;
mod policy;
pub mod reactions;
mod state;
#[cfg(test)]
mod testing;
pub mod text;
mod time;
pub mod validity;
mod values;

pub use command::{
    Command, CommandId, DecideReview, DeleteCertificate, IssueCertificate, OrderRenewal,
    RecordLegacyCertificate, RequestReissue, RequestRevocation, RevokeByKeyProof,
    UploadCertificate, UploadRevocationDocument,
};
pub use context::{Actor, Context, Role, owner_account};
pub use error::{DomainError, ErrorKind, Reason, Rule};
pub use event::{
    CertificateDeleted, CertificateIssued, CertificateRevoked, CertificateUploaded,
    DomainValidated, Event, ReissueCompleted, ReissueFailed, ReissueFailure, ReissueRequested,
    RenewalOrdered, ReviewApproved, ReviewPassed, ReviewQueued, ReviewRejected,
    RevocationDocumentUploaded, RevocationFailed, RevocationRequested, ValidationChallengesIssued,
    ValidationExpired, ValidationPassed, X509Facts,
};
pub use lifecycle::revocation::{cancel_revocation, downloadable, revocation_path};
pub use lifecycle::{decide, evolve, reissue, replay, review};
pub use names::DomainName;
pub use policy::Policy;
pub use state::{
    Certificate, DomainValidation, FailedRevocation, PendingReissue, Review, ReviewOutcome,
    Revocation, State, Status, ValidationOutcome,
};
pub use text::{account_key, same_account};
pub use time::{Duration, Timestamp};
pub use values::{
    Brand, CertificateId, Challenge, Document, DocumentFormat, DocumentKind, KeyAlgorithm, Level,
    ReissueKey, RevocationCause, RevocationFailure, RevocationPath, RevocationReason, Source,
    ValidationMethod, ValidationSetup, Vote,
};
