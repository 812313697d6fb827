//! The review service: puts revocations that need a human on the review queue and records
//! reviewers' decisions and customers' stamped documents (REV-10's review rows, REV-12,
//! REV-13, REV-R1..R4).
//!
//! - **Reactions** (durable consumer `review` on the event log): a revocation on a review
//!   path gets its `ReviewQueued` once nothing is missing (REV-R4: not before its document),
//!   and every queued review, and every approval short of the quorum (REV-R3), is offered on
//!   `REVIEW_QUEUE` as a `certflow.v1.ReviewTask`.
//! - **Commands** (`certflow.cmd.review.>`): a staged document is judged by content and
//!   recorded; a reviewer leases the next task; a reviewer approves or rejects, and the
//!   leased task is acknowledged once the decision is recorded.
//!
//! The revocation service concludes: `ReviewPassed` revokes, `ReviewRejected` fails the
//! revocation.
//!
//! ## Layout
//!
//! - `documents` (private): stamped documents judged by content ([`sniff`]), recorded, located.
//! - `reactions` (private): a review queued once nothing is missing, and offered on the queue.
//! - `tasks` (private): review tasks: offered, leased to a reviewer, and decided (REV-R1, REV-R5).
//! - `template` (private): the printable one-page PDF a customer fills in, signs and stamps.

#![forbid(unsafe_code)]

mod documents;
mod reactions;
mod tasks;
mod template;

use std::sync::Arc;
use std::time::Duration;

use certflow_bus::{Request, decode_request, not_available, refused, subjects};
use certflow_proto::bus::v1::Reply;
use certflow_proto::v1::{
    ApproveReviewRequest, ApproveReviewResponse, RejectReviewRequest, RejectReviewResponse,
};
use certflow_runtime::{CommandRuntime, ReactionError, Reacts, Service, ServiceSpec, StartError};
use certflow_store::{DocumentStore, RecordedBatch, ReviewLeases, ReviewQueue};
use prost::Message;

pub use documents::sniff;

/// The service's name in logs, actors and consumer names.
const SERVICE: &str = "review";

/// How the review queue behaves.
#[derive(Debug, Clone)]
pub struct ReviewConfig {
    /// How long a reviewer holds a task before it is offered to another (REV-R5).
    pub ack_wait: Duration,
    /// How many tasks one reviewer holds at most (REV-R5).
    pub max_held: usize,
    /// The target time for a decision, shown on each task as `due_by`.
    pub due_in: Duration,
}

impl Default for ReviewConfig {
    fn default() -> Self {
        ReviewConfig {
            ack_wait: Duration::from_secs(15 * 60),
            max_held: 5,
            due_in: Duration::from_secs(24 * 3600),
        }
    }
}

/// The review service: the queue, the leases, the documents and the commands' runtime.
#[derive(Debug, Clone)]
pub struct ReviewService {
    runtime: CommandRuntime,
    queue: ReviewQueue,
    leases: ReviewLeases,
    documents: DocumentStore,
    uploads: DocumentStore,
    config: Arc<ReviewConfig>,
}

impl ReviewService {
    /// The service on `runtime`, attached to the review queue, the leases and the document
    /// stores.
    pub async fn new(
        client: async_nats::Client,
        runtime: CommandRuntime,
        config: ReviewConfig,
    ) -> Result<Self, StartError> {
        Ok(ReviewService {
            runtime,
            queue: ReviewQueue::attach(client.clone()).await?,
            leases: ReviewLeases::attach(client.clone(), config.max_held).await?,
            documents: DocumentStore::attach(client.clone(), DocumentStore::DOCUMENTS).await?,
            uploads: DocumentStore::attach(client, DocumentStore::UPLOADS).await?,
            config: Arc::new(config),
        })
    }
}

impl Service for ReviewService {
    const SPEC: ServiceSpec =
        ServiceSpec::answering(SERVICE, &[subjects::REVIEW]).reacting(Reacts::STANDARD);

    async fn answer(&self, request: Request) -> Reply {
        match request.subject.as_str() {
            subjects::UPLOAD_DOCUMENT => documents::upload_document(self, request).await,
            subjects::LOCATE_DOCUMENT => documents::locate_document(self, request).await,
            subjects::DOCUMENT_TEMPLATE => documents::document_template(self, request).await,
            subjects::NEXT_REVIEW_TASK => tasks::next_task(self, request).await,
            subjects::APPROVE_REVIEW => decision::<ApproveReviewRequest>(self, &request).await,
            subjects::REJECT_REVIEW => decision::<RejectReviewRequest>(self, &request).await,
            other => not_available(SERVICE, other),
        }
    }

    async fn react(&self, batch: RecordedBatch) -> Result<(), ReactionError> {
        reactions::react(self, batch).await
    }
}

/// A reviewer's decision request: approving and rejecting carry the same fields.
trait DecisionRequest: Message + Default {
    /// What is answered: the certificate as the decision left it.
    type Response: Message;
    /// The decision it asks for.
    fn into_decision(self) -> tasks::Decision;
    /// The answer carrying `certificate`.
    fn respond(certificate: Option<certflow_proto::v1::Certificate>) -> Self::Response;
}

macro_rules! decision_request {
    ($request:ident, $response:ident, approve: $approve:expr) => {
        impl DecisionRequest for $request {
            type Response = $response;

            fn into_decision(self) -> tasks::Decision {
                // The lease is not part of the request a request id names: a retry may come
                // with a new one.
                let canonical = $request {
                    lease: String::new(),
                    ..self.clone()
                }
                .encode_to_vec();
                tasks::Decision {
                    request_id: self.request_id,
                    task_id: self.task_id,
                    comment: self.comment,
                    lease: self.lease,
                    approve: $approve,
                    canonical,
                }
            }

            fn respond(certificate: Option<certflow_proto::v1::Certificate>) -> $response {
                $response { certificate }
            }
        }
    };
}

decision_request!(ApproveReviewRequest, ApproveReviewResponse, approve: true);
decision_request!(RejectReviewRequest, RejectReviewResponse, approve: false);

/// REV-13: a reviewer's decision, recorded; its leased task settled.
async fn decision<R: DecisionRequest>(service: &ReviewService, request: &Request) -> Reply {
    match decode_request::<R>(request) {
        Ok(req) => tasks::decide_task(service, request, req.into_decision(), R::respond).await,
        Err(err) => refused(&err),
    }
}
