//! What the review service does when events arrive: queue a review once nothing is
//! missing (REV-R4), and offer every queued review, and every approval short of the quorum
//! (REV-R3), on the review queue.

use certflow_domain::Event;
use certflow_domain::review::{queue_reissue_review, queue_review};
use certflow_runtime::{ReactionError, reaction_meta};
use certflow_store::RecordedBatch;

use crate::ReviewService;

/// Queues reviews once nothing is missing, and offers queued reviews to reviewers.
pub(crate) async fn react(
    service: &ReviewService,
    batch: RecordedBatch,
) -> Result<(), ReactionError> {
    let id = &batch.certificate_id;
    let mut offer = false;
    for event in &batch.events {
        match event {
            // Only a revocation a reviewer decides is queued; other paths are not read.
            Event::RevocationRequested(requested) if !requested.path.needs_review() => {}
            Event::RevocationRequested(_) | Event::RevocationDocumentUploaded(_) => {
                let meta = reaction_meta(crate::SERVICE, "queue", &batch, id);
                let policy = service.runtime.policy.clone();
                service
                    .runtime
                    .store
                    .execute_reaction(id, &meta, |state| {
                        queue_review(state, certflow_runtime::now(), &policy)
                    })
                    .await?;
            }
            Event::ReissueRequested(requested) if requested.needs_review => {
                let meta = reaction_meta(crate::SERVICE, "queue-reissue", &batch, id);
                let policy = service.runtime.policy.clone();
                service
                    .runtime
                    .store
                    .execute_reaction(id, &meta, |state| {
                        queue_reissue_review(state, certflow_runtime::now(), &policy)
                    })
                    .await?;
            }
            Event::ReviewQueued(_) => offer = true,
            Event::ReviewApproved(_) => {
                offer = !batch
                    .events
                    .iter()
                    .any(|e| matches!(e, Event::ReviewPassed(_)));
            }
            _ => {}
        }
    }
    if offer {
        crate::tasks::offer(service, id).await?;
    }
    Ok(())
}
