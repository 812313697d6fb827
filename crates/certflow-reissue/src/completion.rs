//! Completing reissues: a requested reissue is certified through the issuance service once
//! nothing is missing (REI-9, REI-10) and ended with `ReissueCompleted` or `ReissueFailed`;
//! every ended reissue releases its reservations (REI-4, REV-14).

use bytes::Bytes;
use certflow_bus::{CommandMeta, Envelope, subjects};
use certflow_domain::reissue::{
    complete_reissue, conclude_reissue_review, conclude_reissue_validation, fail_reissue,
    ready_to_issue, reservations,
};
use certflow_domain::{CertificateId, Event, ReissueFailure};
use certflow_proto::bus::v1::{IssueReissuedRequest, reply::Outcome};
use certflow_runtime::{ReactionError, reaction_meta};
use certflow_store::{LockHolder, RecordedBatch};
use prost::Message;
use tracing::warn;

use crate::ReissueService;

/// Completes requested reissues once nothing is missing (REI-9: a passed validation), fails
/// those whose validation expired, and releases the reservations of ended ones.
pub(crate) async fn react(
    service: &ReissueService,
    batch: RecordedBatch,
) -> Result<(), ReactionError> {
    let id = &batch.certificate_id;
    for event in &batch.events {
        match event {
            Event::ReissueRequested(requested) => {
                complete_if_ready(service, &batch, &requested.reissue_id).await?;
            }
            Event::ReviewPassed(passed) => {
                if let Some(reissue_id) = &passed.reissue_id {
                    complete_if_ready(service, &batch, reissue_id).await?;
                }
            }
            Event::ReviewRejected(rejected) => {
                if let Some(reissue_id) = &rejected.reissue_id {
                    let meta = reaction_meta(crate::SERVICE, "rejected", &batch, id);
                    execute(service, id, &meta, |state| {
                        conclude_reissue_review(state, reissue_id, certflow_runtime::now())
                    })
                    .await?;
                }
            }
            Event::ValidationPassed(passed) => {
                if let Some(reissue_id) = &passed.reissue_id {
                    complete_if_ready(service, &batch, reissue_id).await?;
                }
            }
            Event::ValidationExpired(expired) => {
                if let Some(reissue_id) = &expired.reissue_id {
                    let meta = reaction_meta(crate::SERVICE, "expired", &batch, id);
                    execute(service, id, &meta, |state| {
                        conclude_reissue_validation(state, reissue_id, certflow_runtime::now())
                    })
                    .await?;
                }
            }
            Event::ReissueCompleted(e) => release_for(service, id, &e.reissue_id).await?,
            Event::ReissueFailed(e) => release_for(service, id, &e.reissue_id).await?,
            _ => {}
        }
    }
    Ok(())
}

async fn complete_if_ready(
    service: &ReissueService,
    batch: &RecordedBatch,
    reissue_id: &str,
) -> Result<(), ReactionError> {
    let loaded = service.runtime.store.load(&batch.certificate_id).await?;
    if ready_to_issue(&loaded.state, reissue_id) {
        complete(service, batch, reissue_id).await?;
    }
    Ok(())
}

async fn execute(
    service: &ReissueService,
    id: &CertificateId,
    meta: &CommandMeta,
    decide: impl Fn(&certflow_domain::State) -> Vec<Event>,
) -> Result<(), ReactionError> {
    service
        .runtime
        .store
        .execute_reaction(id, meta, decide)
        .await?;
    Ok(())
}

/// Has the issuance service certify the reissue, then records the outcome on the original.
async fn complete(
    service: &ReissueService,
    batch: &RecordedBatch,
    reissue_id: &str,
) -> Result<(), ReactionError> {
    let id = &batch.certificate_id;
    let body = IssueReissuedRequest {
        reissue_id: reissue_id.to_string(),
        original_id: id.to_string(),
    };
    let reply = service
        .issuance
        .request(
            subjects::ISSUE_REISSUED,
            &Envelope::of(&batch.meta),
            Bytes::from(body.encode_to_vec()),
        )
        .await
        .map_err(|source| ReactionError::Peer {
            what: "issuing a reissue",
            source,
        })?;
    let issued = match reply.outcome {
        Some(Outcome::Response(body)) => Some(
            certflow_proto::bus::v1::IssueReissuedResponse::decode(body.as_slice())
                .ok()
                .and_then(|r| CertificateId::parse(&r.certificate_id).ok()),
        ),
        // Refused for certain: the reissue fails. Could not tell (the issuance service or
        // the log was unavailable, or failed): the event comes back later.
        Some(Outcome::Refusal(refusal)) if refusal.is_definite() => {
            warn!(reissue = reissue_id, reason = %refusal.reason, "the reissue was not issued");
            None
        }
        other => {
            return Err(ReactionError::PeerNotNow {
                what: "issuing a reissue",
                message: format!("{other:?}"),
            });
        }
    };
    let completed = issued.is_some();
    let decide_end = |state: &certflow_domain::State| {
        let now = certflow_runtime::now();
        if completed {
            complete_reissue(state, reissue_id, now)
        } else {
            fail_reissue(state, reissue_id, ReissueFailure::NotIssued, now)
        }
    };
    let meta = reaction_meta(crate::SERVICE, "end", batch, id);
    execute(service, id, &meta, decide_end).await?;
    // REV-5: a certificate certified while its original was being revoked goes with it.
    if let Some(Some(new_id)) = issued {
        let original = service.runtime.store.load(id).await?;
        if let Some(reason) = original
            .state
            .as_ref()
            .filter(|c| !c.reissues.contains(&new_id))
            .and_then(|c| c.revocation.as_ref())
            .filter(|r| r.revoked_at.is_some())
            .map(|r| r.reason)
        {
            let meta = reaction_meta(crate::SERVICE, "orphan", batch, &new_id);
            execute(service, &new_id, &meta, |state| {
                certflow_domain::reactions::revoke_with_original(
                    state,
                    id,
                    reason,
                    certflow_runtime::now(),
                )
            })
            .await?;
        }
    }
    Ok(())
}

/// Releases the reservations a reissue of certificate `id` held.
async fn release_for(
    service: &ReissueService,
    id: &CertificateId,
    reissue_id: &str,
) -> Result<(), ReactionError> {
    let history = service.runtime.store.history(id).await?;
    let domains = history
        .iter()
        .flat_map(|batch| batch.events.iter())
        .find_map(|event| match event {
            Event::ReissueRequested(r) if r.reissue_id == reissue_id => Some(r.domains.clone()),
            _ => None,
        })
        .unwrap_or_default();
    let holder = LockHolder {
        reissue_id: reissue_id.to_string(),
        certificate_id: id.clone(),
    };
    for domain in reservations(&domains) {
        service.locks.release(&domain, &holder).await?;
    }
    Ok(())
}
