//! GEN-6: bulk revocation. The gateway sends the certificates to the revocation service in
//! batches, each revocation of a batch an ordinary revocation request with a request id of
//! its own, so each goes through the same rules and events as a single `RequestRevocation`,
//! and streams each certificate's result as its batch completes.
use std::collections::HashSet;
use std::pin::Pin;

use bytes::Bytes;
use certflow_bus::{Envelope, ServiceReason, subjects};
use certflow_domain::CertificateId;
use certflow_proto::bus::v1::{RevocationBatch, RevocationBatchReply};
use certflow_proto::v1::{
    BulkRevokeIdsRequest, BulkRevokeIdsResponse, BulkRevokeRefusal, BulkRevokeRequest,
    BulkRevokeResponse, CertificateStatus, ListCertificatesRequest, ListCertificatesResponse,
    RequestRevocationRequest, RequestRevocationResponse, bulk_revoke_response::Outcome,
};
use futures::{Stream, StreamExt};
use prost::Message;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;
use tonic_types::StatusExt;
use uuid::Uuid;

use certflow_proto::refusal::code_name;

use crate::{Gateway, read_reply, status};

/// The stream of per-certificate results.
pub type ResultStream = Pin<Box<dyn Stream<Item = Result<BulkRevokeResponse, Status>> + Send>>;
/// The same results, as `BulkRevokeIds` answers them.
pub type IdsResultStream =
    Pin<Box<dyn Stream<Item = Result<BulkRevokeIdsResponse, Status>> + Send>>;

/// Most certificates one call may name or select: an operator revoking a whole CA's worth
/// (a million) does it in one call (`BulkRevokeIds`, as one message cannot carry them); the
/// ids take at most some 130 MB while it runs.
const MAX_CERTIFICATES: usize = 1_000_000;
/// Revocations per batch: one request to the revocation service instead of a hundred.
const BATCH: usize = 100;
/// Batches in flight at once, so the revocation service always has the next one.
const BATCHES_IN_FLIGHT: usize = 3;
/// Namespace of the per-certificate request ids.
const BULK_NAMESPACE: Uuid = Uuid::from_u128(0x3f1c_9b0e_52d4_4e77_8a6b_0d2e_41c9_7a15);

fn invalid(message: impl Into<String>) -> Status {
    status::invalid_argument(message)
}

/// Checks the request, resolves the certificates, and starts revoking them.
pub(crate) async fn start(
    gateway: Gateway,
    envelope: Envelope,
    request: BulkRevokeRequest,
) -> Result<ResultStream, Status> {
    let request_id = request.request_id.trim().to_string();
    if request_id.is_empty()
        || request_id.len() > 128
        || !request_id.chars().all(|c| c.is_ascii_graphic())
    {
        return Err(invalid(
            "request_id is required: 1 to 128 printable characters; reuse it only to retry \
             the same bulk revocation",
        ));
    }
    // One reason and one method for every certificate: checked once, before anything.
    certflow_domain::RevocationReason::from_rfc5280_code(request.reason)
        .map_err(|err| status::refused(&err))?;
    certflow_proto::convert::method_from_proto(request.validation_method)
        .map_err(|err| status::refused(&err))?;
    let account = request.account.trim().to_string();
    let ids = match (request.certificate_ids.is_empty(), account.is_empty()) {
        (false, true) => named(&request.certificate_ids)?,
        (true, false) => of_account(&gateway, &envelope, &account).await?,
        _ => {
            return Err(invalid(
                "name the certificates to revoke, or an account whose certificates to revoke, \
                 not both",
            ));
        }
    };
    let total = u32::try_from(ids.len()).unwrap_or(u32::MAX);
    let (sender, receiver) = mpsc::channel(BATCH * 2);
    tokio::spawn(async move {
        let mut completed = 0;
        let batches = futures::stream::iter(ids)
            .chunks(BATCH)
            .map(|batch| revoke_batch(&gateway, &envelope, &request_id, &request, batch))
            .buffer_unordered(BATCHES_IN_FLIGHT);
        futures::pin_mut!(batches);
        while let Some(results) = batches.next().await {
            for mut result in results {
                completed += 1;
                result.completed = completed;
                result.total = total;
                if sender.send(Ok(result)).await.is_err() {
                    // The caller went away; retrying with the same request id resumes safely.
                    return;
                }
            }
        }
    });
    Ok(Box::pin(ReceiverStream::new(receiver)))
}

/// Reads a `BulkRevokeIds` call whole, up to the client's half-close: the revocation its
/// first message names, with every id of every message. Refused as soon as the list grows
/// past [`MAX_CERTIFICATES`] or a later message names another revocation, so nothing is
/// revoked from a list that is not whole and good.
pub(crate) async fn collect(
    mut messages: tonic::Streaming<BulkRevokeIdsRequest>,
) -> Result<BulkRevokeRequest, Status> {
    let Some(first) = messages.message().await? else {
        return Err(invalid(
            "the call sent no message: the first names the request id and reason",
        ));
    };
    let mut request = BulkRevokeRequest {
        request_id: first.request_id,
        certificate_ids: first.certificate_ids,
        account: String::new(),
        reason: first.reason,
        description: first.description,
        validation_method: first.validation_method,
    };
    while let Some(more) = messages.message().await? {
        let repeats_first = |field: &str, first: &str| field.is_empty() || field == first;
        if !repeats_first(&more.request_id, &request.request_id)
            || !repeats_first(&more.description, &request.description)
            || (more.reason != 0 && more.reason != request.reason)
            || (more.validation_method != 0 && more.validation_method != request.validation_method)
        {
            return Err(invalid(
                "a later message names another revocation: set request_id, reason, \
                 description and validation_method in the first message only",
            ));
        }
        if request.certificate_ids.len() + more.certificate_ids.len() > MAX_CERTIFICATES {
            return Err(too_many());
        }
        request.certificate_ids.extend(more.certificate_ids);
    }
    if request.certificate_ids.is_empty() {
        return Err(invalid("name at least one certificate to revoke"));
    }
    Ok(request)
}

fn too_many() -> Status {
    invalid(format!(
        "at most {MAX_CERTIFICATES} certificates per bulk revocation; split the list into \
         calls with a request id each"
    ))
}

fn named(ids: &[String]) -> Result<Vec<String>, Status> {
    if ids.len() > MAX_CERTIFICATES {
        return Err(too_many());
    }
    let mut seen = HashSet::with_capacity(ids.len());
    let mut unique = Vec::with_capacity(ids.len());
    for id in ids {
        let id = CertificateId::parse(id.trim())
            .map_err(|err| invalid(err.message().to_string()))?
            .to_string();
        if seen.insert(id.clone()) {
            unique.push(id);
        }
    }
    Ok(unique)
}

/// Every certificate of `account` that can still be revoked, page by page from the
/// projection.
async fn of_account(
    gateway: &Gateway,
    envelope: &Envelope,
    account: &str,
) -> Result<Vec<String>, Status> {
    let mut ids = Vec::new();
    let mut page_token = String::new();
    loop {
        let page: ListCertificatesResponse = gateway
            .call(
                subjects::LIST_CERTIFICATES,
                envelope,
                Bytes::from(
                    ListCertificatesRequest {
                        status: CertificateStatus::Unspecified as i32,
                        page_size: 500,
                        page_token: page_token.clone(),
                        account: account.to_string(),
                    }
                    .encode_to_vec(),
                ),
            )
            .await?;
        ids.extend(
            page.certificates
                .into_iter()
                .filter(|c| {
                    matches!(
                        CertificateStatus::try_from(c.status),
                        Ok(CertificateStatus::Issued
                            | CertificateStatus::RevocationPending
                            | CertificateStatus::ReissuePending)
                    )
                })
                .map(|c| c.id),
        );
        if ids.len() > MAX_CERTIFICATES {
            return Err(invalid(format!(
                "the account has more than {MAX_CERTIFICATES} certificates; revoke them in \
                 lists of ids"
            )));
        }
        if page.next_page_token.is_empty() {
            return Ok(ids);
        }
        page_token = page.next_page_token;
    }
}

/// Revokes `certificate_ids` as one batch: one result per certificate, in their order.
async fn revoke_batch(
    gateway: &Gateway,
    envelope: &Envelope,
    request_id: &str,
    request: &BulkRevokeRequest,
    certificate_ids: Vec<String>,
) -> Vec<BulkRevokeResponse> {
    let batch = RevocationBatch {
        requests: certificate_ids
            .iter()
            .map(|id| single(request_id, request, id))
            .collect(),
    };
    let replies = gateway
        .call::<RevocationBatchReply>(
            subjects::REVOCATION_BATCH,
            envelope,
            Bytes::from(batch.encode_to_vec()),
        )
        .await
        .map(|answered| answered.replies);
    let mut replies = match replies {
        Ok(replies) => replies.into_iter(),
        // The whole batch failed alike (e.g. the service was unavailable).
        Err(status) => {
            return certificate_ids
                .into_iter()
                .map(|id| result(id, Err(status.clone())))
                .collect();
        }
    };
    certificate_ids
        .into_iter()
        .map(|id| {
            let answered = match replies.next() {
                Some(reply) => {
                    read_reply::<RequestRevocationResponse>(subjects::REQUEST_REVOCATION, reply)
                }
                None => Err(status::service(
                    ServiceReason::Internal,
                    "the revocation service answered fewer revocations than it was sent; \
                     retry with the same request id",
                )),
            };
            result(id, answered)
        })
        .collect()
}

/// The revocation of one certificate of the bulk one. Its request id is derived from the
/// bulk one: a retried bulk call repeats nothing (GEN-1).
fn single(
    request_id: &str,
    request: &BulkRevokeRequest,
    certificate_id: &str,
) -> RequestRevocationRequest {
    let per_certificate = Uuid::new_v5(
        &BULK_NAMESPACE,
        format!("{request_id}\n{certificate_id}").as_bytes(),
    );
    RequestRevocationRequest {
        request_id: format!("bulk-{per_certificate}"),
        certificate_id: certificate_id.to_string(),
        reason: request.reason,
        description: request.description.clone(),
        validation_method: request.validation_method,
    }
}

/// One certificate's result as the caller streams it.
fn result(
    certificate_id: String,
    answered: Result<RequestRevocationResponse, Status>,
) -> BulkRevokeResponse {
    let outcome = match answered {
        Ok(response) => match response.certificate {
            Some(certificate) => Outcome::Certificate(certificate),
            None => Outcome::Refusal(BulkRevokeRefusal {
                code: code_name(ServiceReason::Internal.code()).into(),
                reason: ServiceReason::Internal.as_str().into(),
                message: "the revocation service answered without the certificate".into(),
            }),
        },
        Err(status) => Outcome::Refusal(BulkRevokeRefusal {
            code: code_name(status.code()).into(),
            reason: status
                .get_details_error_info()
                .map(|info| info.reason)
                .unwrap_or_default(),
            message: status.message().to_string(),
        }),
    };
    BulkRevokeResponse {
        certificate_id,
        outcome: Some(outcome),
        completed: 0,
        total: 0,
    }
}
