//! `ReviewService`: stamped documents and reviewers' decisions.
//!
//! Documents can be larger than one NATS message, so the gateway keeps their bytes in the
//! document store (a JetStream object store) and the services exchange names: an upload is
//! stored under a fresh staging name and handed to the review service, which judges it and
//! records or deletes it; a download asks the review service where the document is, for
//! this caller, and reads it from the store.

use bytes::Bytes;
use certflow_bus::{ServiceReason, subjects};
use certflow_domain::review::MAX_DOCUMENT_BYTES;
use certflow_domain::{DomainError, Role};
use certflow_proto::bus::v1::{DocumentLocation, StagedDocumentUpload};
use certflow_proto::v1::review_service_server::ReviewService;
use certflow_proto::v1::*;
use certflow_store::{DocumentStore, ReviewQueue};
use prost::Message;
use tokio::sync::OnceCell;
use tonic::{Request, Response, Status};
use tracing::warn;

use crate::auth::require_role;
use crate::{CUSTOMER_OR_ADMIN, Gateway, Rpc, envelope, status};

const REVIEWER_OR_ADMIN: &[Role] = &[Role::Reviewer, Role::Admin];

const UPLOAD_DOCUMENT: Rpc = Rpc {
    name: "UploadRevocationDocument",
    subject: subjects::UPLOAD_DOCUMENT,
    roles: CUSTOMER_OR_ADMIN,
    command: true,
};
const GET_DOCUMENT: Rpc = Rpc {
    name: "GetRevocationDocument",
    subject: subjects::LOCATE_DOCUMENT,
    roles: &[Role::Customer, Role::Reviewer, Role::Admin],
    command: false,
};
const TEMPLATE: Rpc = Rpc {
    name: "GetDocumentTemplate",
    subject: subjects::DOCUMENT_TEMPLATE,
    roles: CUSTOMER_OR_ADMIN,
    command: false,
};
const NEXT_TASK: Rpc = Rpc {
    name: "NextReviewTask",
    subject: subjects::NEXT_REVIEW_TASK,
    roles: REVIEWER_OR_ADMIN,
    // Each call takes tasks off the queue for a while: limited like a command.
    command: true,
};
const APPROVE: Rpc = Rpc {
    name: "ApproveReview",
    subject: subjects::APPROVE_REVIEW,
    roles: REVIEWER_OR_ADMIN,
    command: true,
};
const REJECT: Rpc = Rpc {
    name: "RejectReview",
    subject: subjects::REJECT_REVIEW,
    roles: REVIEWER_OR_ADMIN,
    command: true,
};

fn unavailable(message: &str) -> Status {
    status::service(ServiceReason::Unavailable, message)
}

#[tonic::async_trait]
impl ReviewService for Gateway {
    async fn upload_revocation_document(
        &self,
        request: Request<UploadRevocationDocumentRequest>,
    ) -> Result<Response<UploadRevocationDocumentResponse>, Status> {
        let actor = self.auth.authenticate(request.metadata())?;
        require_role(&actor, UPLOAD_DOCUMENT.roles, UPLOAD_DOCUMENT.name)?;
        self.check_rate(&actor.account, UPLOAD_DOCUMENT.name)?;
        let envelope = envelope(actor, request.metadata());
        let upload = request.into_inner();
        // What can be judged without the certificate is judged before anything is stored.
        certflow_bus::command_meta(&upload.request_id, None).map_err(|e| status::refused(&e))?;
        certflow_domain::CertificateId::parse(&upload.certificate_id)
            .map_err(|e| status::refused(&e))?;
        if upload.content.is_empty() {
            return Err(status::invalid_argument(
                "the document is empty; upload the stamped letter as PDF, JPG, PNG or GIF",
            ));
        }
        if upload.file_name.len() > 255 {
            return Err(status::invalid_argument(
                "file_name is longer than 255 bytes",
            ));
        }
        certflow_domain::text::key_text("file_name", &upload.file_name)
            .map_err(|e| status::refused(&e))?;
        // Anything beyond the limit is refused by the rules; only the limit and one byte
        // more need storing for them to see it.
        let size = upload.content.len();
        let stored_len = size.min(MAX_DOCUMENT_BYTES as usize + 1);
        let object = format!("document-{}", uuid::Uuid::new_v4());
        let uploads = self.documents.uploads().await?;
        if let Err(err) = uploads.put(&object, &upload.content[..stored_len]).await {
            warn!(error = %err, "could not store an uploaded document");
            return Err(unavailable(
                "the document store is unavailable; retry with the same request id",
            ));
        }
        let staged = StagedDocumentUpload {
            request_id: upload.request_id,
            certificate_id: upload.certificate_id,
            file_name: upload.file_name,
            object,
            size: size as u64,
        };
        self.call(
            UPLOAD_DOCUMENT.subject,
            &envelope,
            Bytes::from(staged.encode_to_vec()),
        )
        .await
        .map(Response::new)
    }

    async fn get_revocation_document(
        &self,
        request: Request<GetRevocationDocumentRequest>,
    ) -> Result<Response<GetRevocationDocumentResponse>, Status> {
        let location: Response<DocumentLocation> = self.forward(GET_DOCUMENT, request).await?;
        let location = location.into_inner();
        let documents = self.documents.documents().await?;
        let recorded = location.document.as_ref().map(|d| d.sha256.clone());
        let stored = match documents.get(&location.object, MAX_DOCUMENT_BYTES).await {
            Ok(Some(stored)) if Some(&stored.sha256) == recorded.as_ref() => stored,
            Ok(Some(_)) => {
                warn!(object = %location.object, "a stored document does not match its record");
                return Err(status::service(
                    ServiceReason::DocumentMismatch,
                    "the stored document does not match the one recorded",
                ));
            }
            Ok(None) => {
                return Err(status::refused(&DomainError::not_found_named(
                    "the document is no longer stored; contact support with the certificate id",
                )));
            }
            Err(err) => {
                warn!(error = %err, "could not read a document");
                return Err(unavailable("the document store is unavailable; try again"));
            }
        };
        Ok(Response::new(GetRevocationDocumentResponse {
            document: location.document,
            content: stored.content.to_vec(),
        }))
    }

    async fn get_document_template(
        &self,
        request: Request<GetDocumentTemplateRequest>,
    ) -> Result<Response<GetDocumentTemplateResponse>, Status> {
        self.forward(TEMPLATE, request).await
    }

    async fn next_review_task(
        &self,
        request: Request<NextReviewTaskRequest>,
    ) -> Result<Response<NextReviewTaskResponse>, Status> {
        self.forward(NEXT_TASK, request).await
    }

    async fn approve_review(
        &self,
        request: Request<ApproveReviewRequest>,
    ) -> Result<Response<ApproveReviewResponse>, Status> {
        self.forward(APPROVE, request).await
    }

    async fn reject_review(
        &self,
        request: Request<RejectReviewRequest>,
    ) -> Result<Response<RejectReviewResponse>, Status> {
        self.forward(REJECT, request).await
    }

    type WatchReviewQueueStream = WatchStream;

    async fn watch_review_queue(
        &self,
        request: Request<WatchReviewQueueRequest>,
    ) -> Result<Response<Self::WatchReviewQueueStream>, Status> {
        let actor = self.auth.authenticate(request.metadata())?;
        require_role(&actor, REVIEWER_OR_ADMIN, "WatchReviewQueue")?;
        self.check_query_rate(&actor.account, "WatchReviewQueue")?;
        let queue = self.documents.queue().await?;
        let mut watch = queue
            .watch(WATCH_BACKLOG)
            .await
            .map_err(|_| unavailable("the review queue is unavailable; try again"))?;
        let (sender, receiver) = tokio::sync::mpsc::channel(16);
        tokio::spawn(async move {
            loop {
                let payload = tokio::select! {
                    // The caller went away: stop following.
                    _ = sender.closed() => break,
                    payload = watch.next() => payload,
                };
                let Some(payload) = payload else { break };
                let Ok(task) = ReviewTask::decode(payload) else {
                    continue;
                };
                let item = WatchReviewQueueResponse { task: Some(task) };
                if sender.send(Ok(item)).await.is_err() {
                    break;
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(receiver),
        )))
    }
}

/// Most waiting tasks a watch starts with.
const WATCH_BACKLOG: usize = 1_000;

/// The stream of a queue watch.
pub(crate) type WatchStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<WatchReviewQueueResponse, Status>> + Send>>;

/// The gateway's handles on the document buckets and the review queue, bound on first use:
/// the review service creates them, and the gateway may start first.
#[derive(Debug, Clone)]
pub struct ReviewStores {
    nats: async_nats::Client,
    uploads: std::sync::Arc<OnceCell<DocumentStore>>,
    documents: std::sync::Arc<OnceCell<DocumentStore>>,
    queue: std::sync::Arc<OnceCell<ReviewQueue>>,
}

impl ReviewStores {
    /// Handles that bind through `nats` when first used.
    pub fn new(nats: async_nats::Client) -> Self {
        ReviewStores {
            nats,
            uploads: Default::default(),
            documents: Default::default(),
            queue: Default::default(),
        }
    }

    async fn uploads(&self) -> Result<&DocumentStore, Status> {
        self.uploads
            .get_or_try_init(|| DocumentStore::attach(self.nats.clone(), DocumentStore::UPLOADS))
            .await
            .map_err(|_| unavailable("the document store is not there yet; try again"))
    }

    async fn documents(&self) -> Result<&DocumentStore, Status> {
        self.documents
            .get_or_try_init(|| DocumentStore::attach(self.nats.clone(), DocumentStore::DOCUMENTS))
            .await
            .map_err(|_| unavailable("the document store is not there yet; try again"))
    }

    async fn queue(&self) -> Result<&ReviewQueue, Status> {
        self.queue
            .get_or_try_init(|| ReviewQueue::attach(self.nats.clone()))
            .await
            .map_err(|_| unavailable("the review queue is not there yet; try again"))
    }
}
