//! The certificate aggregate of certflow, as pure functions.
//!
//! Every service that changes a certificate loads its history from the event log, folds it
//! with [`evolve`] into a [`State`], asks [`decide`] what a [`Command`] means on that state,
//! and appends the resulting [`Event`]s. The projection folds the same events with the same
//! [`evolve`], so the read side can never disagree with the write side about what an event
//! means.
//!
//! This crate does no IO and never reads a clock: time, the actor and the policy come in a
//! [`Context`]. Every rule of `RULES.md` that it enforces names its [`Rule`] id, and every
//! refusal carries the [`Reason`] code that clients see.

#![forbid(unsafe_code)]

mod certificate;
mod command;
mod decide;
mod error;
mod event;
mod names;
pub mod process;
pub mod reissue;
pub mod review;
pub mod text;
mod time;
pub mod validity;

pub use certificate::{
    Actor, Brand, Certificate, CertificateId, Challenge, Document, DocumentFormat, DocumentKind,
    DomainValidation, FailedRevocation, KeyAlgorithm, Level, PendingReissue, ReissueKey, Review,
    ReviewOutcome, Revocation, RevocationCause, RevocationFailure, RevocationPath,
    RevocationReason, Role, Source, Status, ValidationMethod, ValidationOutcome, ValidationSetup,
    Vote,
};
pub use command::{
    Command, CommandId, DecideReview, DeleteCertificate, IssueCertificate, OrderRenewal,
    RecordLegacyCertificate, RequestReissue, RequestRevocation, UploadCertificate,
    UploadRevocationDocument,
};
pub use decide::{
    Context, Policy, State, cancel_revocation, decide, downloadable, evolve, owner_account, replay,
    revocation_path,
};
pub use error::{DomainError, ErrorKind, Reason, Rule};
pub use event::{
    CertificateDeleted, CertificateIssued, CertificateRevoked, CertificateUploaded,
    DomainValidated, Event, ReissueCompleted, ReissueFailed, ReissueFailure, ReissueRequested,
    RenewalOrdered, ReviewApproved, ReviewPassed, ReviewQueued, ReviewRejected,
    RevocationDocumentUploaded, RevocationFailed, RevocationRequested, ValidationChallengesIssued,
    ValidationExpired, ValidationPassed, X509Facts,
};
pub use names::DomainName;
pub use text::{account_key, same_account};
pub use time::{Duration, Timestamp};
