//! REI-4: one running reissue per registrable domain. A request takes the reservations of
//! its domains before anything is made, and [`holding`] gives them back unless the request
//! was recorded; the reissue's end releases them then (`completion`).

use std::future::Future;
use std::time::Instant;

use certflow_bus::{refused, unavailable};
use certflow_domain::{DomainError, Reason, Rule};
use certflow_proto::bus::v1::{Reply, reply::Outcome};
use certflow_store::{LockHolder, Reservation};
use tracing::warn;

use crate::ReissueService;

/// How a request made while holding reservations ended.
pub(crate) enum Held {
    /// `ReissueRequested` is in the log: the reservations stay until the reissue ends.
    Recorded(Reply),
    /// Nothing was recorded: the reservations go back now.
    NotRecorded(Reply),
}

impl Held {
    /// How a request whose append answered `reply` ended: a refusal by the rules or the
    /// input recorded nothing, an answer recorded it, and otherwise (the append may have
    /// landed) the log says.
    pub(crate) async fn from_reply(
        service: &ReissueService,
        holder: &LockHolder,
        reply: Reply,
    ) -> Held {
        let recorded = match &reply.outcome {
            Some(Outcome::Response(_)) => true,
            _ if reply.is_definite() => false,
            _ => !is_gone(service, holder).await.unwrap_or(false),
        };
        if recorded {
            Held::Recorded(reply)
        } else {
            Held::NotRecorded(reply)
        }
    }
}

/// Takes the reservations of `domains` for `holder` and runs `body` (given when they were
/// taken); the one place that gives them back, unless the body recorded the request.
pub(crate) async fn holding<F, Fut>(
    service: &ReissueService,
    domains: &[String],
    holder: &LockHolder,
    body: F,
) -> Reply
where
    F: FnOnce(Instant) -> Fut,
    Fut: Future<Output = Held>,
{
    if let Err(reply) = reserve(service, domains, holder).await {
        return reply;
    }
    match body(Instant::now()).await {
        Held::Recorded(reply) => reply,
        Held::NotRecorded(reply) => {
            release(service, domains, holder).await;
            reply
        }
    }
}

/// REI-4: takes the reservation of every registrable domain, in order; a hold whose reissue
/// the log shows is over is taken over. If one is busy, the ones taken are released.
async fn reserve(
    service: &ReissueService,
    domains: &[String],
    holder: &LockHolder,
) -> Result<(), Reply> {
    for (taken, domain) in domains.iter().enumerate() {
        let outcome = take_one(service, domain, holder).await;
        if let Err(reply) = outcome {
            release(service, &domains[..taken], holder).await;
            return Err(reply);
        }
    }
    Ok(())
}

async fn take_one(
    service: &ReissueService,
    domain: &str,
    holder: &LockHolder,
) -> Result<(), Reply> {
    loop {
        match service.locks.take(domain, holder).await {
            Ok(Reservation::Taken) => return Ok(()),
            Ok(Reservation::Busy {
                holder: current,
                sequence,
                held_at,
            }) => {
                let young = held_at
                    .elapsed()
                    .map_or(true, |age| age < service.config.stale_after);
                if young || !is_gone(service, &current).await? {
                    return Err(refused(&DomainError::refused(
                        Rule::Rei4,
                        Reason::PrimaryDomainReissueBusy,
                        format!(
                            "another certificate under {domain} is being reissued; try again \
                             once it completes"
                        ),
                    )));
                }
                match service.locks.take_over(domain, sequence, holder).await {
                    Ok(true) => return Ok(()),
                    Ok(false) => continue,
                    Err(err) => return Err(unavailable(err.to_string())),
                }
            }
            Err(err) => return Err(unavailable(err.to_string())),
        }
    }
}

/// Whether the reissue holding a reservation (for longer than any request takes) is over or
/// never began: the log of its certificate shows no such pending reissue.
pub(crate) async fn is_gone(service: &ReissueService, holder: &LockHolder) -> Result<bool, Reply> {
    let loaded = service
        .runtime
        .store
        .load(&holder.certificate_id)
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    Ok(loaded
        .state
        .as_ref()
        .and_then(|c| c.pending_reissue.as_ref())
        .is_none_or(|p| p.reissue_id != holder.reissue_id))
}

async fn release(service: &ReissueService, domains: &[String], holder: &LockHolder) {
    for domain in domains {
        if let Err(err) = service.locks.release(domain, holder).await {
            warn!(error = %err, domain, "could not release a reservation; the next taker will take it over");
        }
    }
}
