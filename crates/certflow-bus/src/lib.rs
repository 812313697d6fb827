//! The NATS contract between the gateway and the services. It depends on no store.
//!
//! The gateway sends every command and query as a NATS request to a subject in [`subjects`],
//! on a queue group, so any number of instances of the owning service can answer. The request
//! body is the gRPC request message itself; who sent it, the flow it belongs to and its trace
//! travel in [`headers`], written from an [`Envelope`] by [`BusClient::request`], the one
//! call every request goes through. The answer is a [`Reply`]: the encoded gRPC response, or
//! a [`Refusal`] the gateway turns into a gRPC status with an `ErrorInfo`.
//!
//! [`Responder`] is the serving loop every service runs; [`CommandMeta`] is what a command's
//! headers say, read by the service and written again on the events it appends.
//!
//! ## Layout
//!
//! - `client` (private): [`Envelope`], [`BusClient`] and [`BusError`]: the one request call.
//! - `meta` (private): [`CommandMeta`], [`RequestBinding`] and the [`headers`] that carry them.
//! - `reply` (private): building a [`Reply`] or a refusal, and reading a command's metadata.
//! - `serve` (private): [`Request`] and [`Responder`], the queue-group serving loop.
//! - [`subjects`]: every command and query subject; each service listens on its own prefix.

#![forbid(unsafe_code)]

mod client;
mod meta;
mod reply;
mod serve;

pub use certflow_proto::bus::v1::{Refusal, Reply, reply::Outcome};
pub use certflow_proto::refusal::{ClientReason, ServiceReason};
pub use client::{BusClient, BusError, Envelope};
pub use meta::{CommandMeta, RequestBinding, actor_from_headers, headers, service_actor};
pub use reply::{
    bound_command_meta, bound_command_meta_on, command_meta, decode_request, internal,
    not_available, refused, response, unavailable, unimplemented_reply,
};
pub use serve::{Request, Responder};
pub use tokio_util::sync::CancellationToken;

/// Subjects of commands and queries. Each service listens on its own prefix.
pub mod subjects {
    /// Records a platform-issued certificate.
    pub const ISSUE_CERTIFICATE: &str = "certflow.cmd.issuance.issue";
    /// Stores an uploaded certificate.
    pub const UPLOAD_CERTIFICATE: &str = "certflow.cmd.issuance.upload";
    /// Records a certificate issued before certflow (admins).
    pub const RECORD_LEGACY_CERTIFICATE: &str = "certflow.cmd.issuance.legacy";
    /// Builds the files a customer downloads.
    pub const DOWNLOAD_CERTIFICATE: &str = "certflow.cmd.issuance.download";
    /// Generates and seals a key pair (for the reissue service).
    pub const GENERATE_KEY: &str = "certflow.cmd.issuance.generate-key";
    /// Certifies a pending reissue (for the reissue service).
    pub const ISSUE_REISSUED: &str = "certflow.cmd.issuance.reissue";
    /// The issuance service's transport public key, to seal secrets to it (for the gateway).
    pub const TRANSPORT_KEY: &str = "certflow.cmd.issuance.transport-key";
    /// Everything the issuance service answers.
    pub const ISSUANCE: &str = "certflow.cmd.issuance.>";
    /// Requests a revocation.
    pub const REQUEST_REVOCATION: &str = "certflow.cmd.revocation.request";
    /// Deletes a certificate.
    pub const DELETE_CERTIFICATE: &str = "certflow.cmd.revocation.delete";
    /// Records a renewal order.
    pub const ORDER_RENEWAL: &str = "certflow.cmd.revocation.renewal";
    /// Many revocations of one bulk revocation at once (admins, through the gateway).
    pub const REVOCATION_BATCH: &str = "certflow.cmd.revocation.batch";
    /// A submitted revocation cannot be cancelled (REV-7): the service says so.
    pub const CANCEL_REVOCATION: &str = "certflow.cmd.revocation.cancel";
    /// Everything the revocation service answers.
    pub const REVOCATION: &str = "certflow.cmd.revocation.>";
    /// Requests a reissue.
    pub const REQUEST_REISSUE: &str = "certflow.cmd.reissue.request";
    /// Everything the reissue service answers.
    pub const REISSUE: &str = "certflow.cmd.reissue.>";
    /// Checks a certificate's open validation challenges now.
    pub const CHECK_VALIDATION: &str = "certflow.cmd.validation.check";
    /// Everything the validation service answers.
    pub const VALIDATION: &str = "certflow.cmd.validation.>";
    /// Records a stamped document the gateway has staged.
    pub const UPLOAD_DOCUMENT: &str = "certflow.cmd.review.document.upload";
    /// The printable template of a stamped document.
    pub const DOCUMENT_TEMPLATE: &str = "certflow.cmd.review.document.template";
    /// Where a revocation's document is.
    pub const LOCATE_DOCUMENT: &str = "certflow.cmd.review.document.locate";
    /// Leases the next review task to a reviewer.
    pub const NEXT_REVIEW_TASK: &str = "certflow.cmd.review.next";
    /// A reviewer approves.
    pub const APPROVE_REVIEW: &str = "certflow.cmd.review.approve";
    /// A reviewer rejects.
    pub const REJECT_REVIEW: &str = "certflow.cmd.review.reject";
    /// A revocation asked over ACME, its signature checked by the ACME endpoint.
    pub const ACME_REVOCATION: &str = "certflow.cmd.revocation.acme";
    /// Everything the review service answers.
    pub const REVIEW: &str = "certflow.cmd.review.>";
    /// `NotificationService/CreateEndpoint`.
    pub const CREATE_ENDPOINT: &str = "certflow.cmd.notify.endpoint.create";
    /// `NotificationService/ListEndpoints`.
    pub const LIST_ENDPOINTS: &str = "certflow.cmd.notify.endpoint.list";
    /// `NotificationService/RotateEndpointSecret`.
    pub const ROTATE_ENDPOINT_SECRET: &str = "certflow.cmd.notify.endpoint.rotate";
    /// `NotificationService/DeleteEndpoint`.
    pub const DELETE_ENDPOINT: &str = "certflow.cmd.notify.endpoint.delete";
    /// `NotificationService/ListDeadLetters`.
    pub const LIST_DEAD_LETTERS: &str = "certflow.cmd.notify.dead.list";
    /// `NotificationService/ReplayDeadLetter`.
    pub const REPLAY_DEAD_LETTER: &str = "certflow.cmd.notify.dead.replay";
    /// Everything the notifier answers.
    pub const NOTIFY: &str = "certflow.cmd.notify.>";
    /// One certificate.
    pub const GET_CERTIFICATE: &str = "certflow.query.certificate.get";
    /// A page of certificates.
    pub const LIST_CERTIFICATES: &str = "certflow.query.certificate.list";
    /// A certificate's history.
    pub const CERTIFICATE_HISTORY: &str = "certflow.query.certificate.history";
    /// The latest CRL of one of a CA's partitions.
    pub const GET_CRL: &str = "certflow.crl.get";
    /// The distribution points of a CA's CRLs.
    pub const LIST_CRLS: &str = "certflow.crl.list";
    /// Everything the projection answers.
    pub const QUERIES: &str = "certflow.query.>";
    /// Whether the projection has caught up with the log.
    pub const PROJECTION_STATUS: &str = "certflow.query.status";
}
