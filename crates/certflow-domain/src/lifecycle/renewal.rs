//! Renewal (REN-1): this product only records that a renewal was ordered for a certificate
//! close to expiry. REV-3 reads it: such a certificate is left to expire, not revoked.

use crate::context::Context;
use crate::error::{DomainError, Reason, Rule};
use crate::event::{Event, RenewalOrdered};
use crate::state::{Certificate, Status};

/// REN-1: a renewal can be ordered for an issued certificate within the renewal window of
/// its expiry; ordering again changes nothing.
pub(crate) fn decide_renewal(
    cert: &Certificate,
    ctx: &Context<'_>,
) -> Result<Vec<Event>, DomainError> {
    if cert.status(ctx.now) != Status::Issued
        || cert.not_after.since(ctx.now) > ctx.policy.renewal_window
    {
        return Err(DomainError::refused(
            Rule::Ren1,
            Reason::RenewalNotDue,
            "a renewal can be ordered for an issued certificate within 30 days of its expiry",
        ));
    }
    if cert.renewal_ordered {
        return Ok(Vec::new());
    }
    Ok(vec![Event::RenewalOrdered(RenewalOrdered {
        ordered_at: ctx.now,
    })])
}

/// The state after a renewal was ordered.
pub(crate) fn evolve_renewal(cert: &mut Certificate, event: &Event) {
    if let Event::RenewalOrdered(_) = event {
        cert.renewal_ordered = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{Command, IssueCertificate, OrderRenewal};
    use crate::testing::{DAY, check, id, issue, now, refused_with, revoke, types};

    #[test]
    fn ren1_renewals_are_ordered_within_thirty_days_of_expiry_only() {
        let renew = || Command::OrderRenewal(OrderRenewal { id: id() });
        refused_with(
            check(&[Command::Issue(issue())], renew()),
            Rule::Ren1,
            Reason::RenewalNotDue,
        );
        let expiring = IssueCertificate {
            not_after: Some(now().plus(DAY.times(20))),
            ..issue()
        };
        let events = check(&[Command::Issue(expiring.clone())], renew()).expect("due");
        assert_eq!(types(&events), ["RenewalOrdered"]);
        // REV-3 then reads it.
        refused_with(
            check(&[Command::Issue(expiring.clone()), renew()], revoke(0)),
            Rule::Rev3,
            Reason::ExpiringRenewalNotRevocable,
        );
        // Ordering again changes nothing.
        assert!(
            check(&[Command::Issue(expiring), renew()], renew())
                .expect("accepted")
                .is_empty()
        );
    }
}
