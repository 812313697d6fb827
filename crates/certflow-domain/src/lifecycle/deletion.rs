//! Deletion (DEL-1, DEL-2): when a certificate may leave its owner's lists. Its history
//! stays in the log; it is just no longer found.

use crate::context::Context;
use crate::error::{DomainError, Reason, Rule};
use crate::event::{CertificateDeleted, Event};
use crate::state::{Certificate, Status};
use crate::values::Source;

/// DEL-1: unexpired platform certificates go only once revoked; expired or revoked ones, and
/// uploaded ones, at any time. DEL-2: a deleted certificate is gone from lookups.
pub(crate) fn decide_delete(
    cert: &Certificate,
    ctx: &Context<'_>,
) -> Result<Vec<Event>, DomainError> {
    let deletable = cert.source == Source::Uploaded
        || matches!(cert.status(ctx.now), Status::Revoked | Status::Expired);
    if !deletable {
        return Err(DomainError::refused(
            Rule::Del1,
            Reason::CertNotDeletable,
            "a valid certificate issued here can be deleted only once revoked; revoke it first, \
             or wait until it expires",
        ));
    }
    Ok(vec![Event::Deleted(CertificateDeleted {
        deleted_at: ctx.now,
    })])
}

/// The state after a deletion: gone from lookups (DEL-2).
pub(crate) fn evolve_deletion(cert: &mut Certificate, event: &Event) {
    if let Event::Deleted(_) = event {
        cert.deleted = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::DeleteCertificate;
    use crate::command::{Command, IssueCertificate};
    use crate::lifecycle::revocation::downloadable;
    use crate::testing::{
        DAY, admin, check, id, issue, now, refused_with, revoke, state_after, types,
    };

    fn delete() -> Command {
        Command::Delete(DeleteCertificate { id: id() })
    }

    #[test]
    fn del1_only_revoked_or_expired_platform_certificates_are_deleted() {
        refused_with(
            check(&[Command::Issue(issue())], delete()),
            Rule::Del1,
            Reason::CertNotDeletable,
        );
        let revoked = [Command::Issue(issue()), revoke(4)];
        assert_eq!(
            types(&check(&revoked, delete()).expect("deletable")),
            ["CertificateDeleted"]
        );
        let expired = IssueCertificate {
            not_before: Some(now().minus(DAY.times(300))),
            not_after: Some(now().minus(DAY)),
            ..issue()
        };
        assert!(check(&[Command::Issue(expired)], delete()).is_ok());
    }

    #[test]
    fn del2_a_deleted_certificate_is_not_found_but_keeps_its_history() {
        let given = [Command::Issue(issue()), revoke(4), delete()];
        let state = state_after(&given);
        let cert = state.as_ref().expect("still in the log");
        assert_eq!(cert.status(now()), Status::Deleted);
        assert_eq!(
            check(&given, delete()).expect_err("gone").reason(),
            Reason::NotFound
        );
        assert_eq!(
            check(&given, revoke(1)).expect_err("gone").reason(),
            Reason::NotFound
        );
        assert!(downloadable(&state, &id(), &admin(), now()).is_err());
    }
}
