//! One-line accounts of events for people: the `summary` of each entry of a certificate's
//! history (GEN-4), which `certctl` prints.
//!
//! The text is for reading, not parsing, and no client may depend on its wording, so it may
//! be improved at any time. The projection stores it with each history entry as it applies
//! the event, so new wording reaches older entries when the view is rebuilt from the log.
//! Revocation reasons are named in RFC 5280's terms.

use certflow_domain::{DomainName, Event, ReissueFailure, RevocationCause, RevocationFailure};

use super::api::timestamp_to_proto;

/// A one-line account of an event, for histories.
pub fn event_summary(event: &Event) -> String {
    let names = |domains: &[DomainName]| {
        domains
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    match event {
        Event::Issued(e) if e.legacy => format!(
            "{} {} certificate for {} recorded by an administrator: issued before certflow, \
             not signed by it",
            e.brand,
            e.level,
            names(&e.domains)
        ),
        Event::Issued(e) => format!(
            "{} {} certificate issued for {}",
            e.brand,
            e.level,
            names(&e.domains)
        ),
        Event::Uploaded(e) => format!(
            "certificate for {} uploaded, issued by {}",
            names(&e.domains),
            e.issuer
        ),
        Event::RevocationRequested(e) => {
            format!("revocation requested ({}), path: {}", e.reason, e.path)
        }
        Event::Revoked(e) => match &e.cause {
            RevocationCause::Requested => format!("revoked ({}) as requested", e.reason),
            RevocationCause::OriginalRevoked { original } => {
                format!("revoked ({}) with its original {original}", e.reason)
            }
            RevocationCause::KeyCompromised { certificate } => format!(
                "revoked ({}): its key was compromised, as the revocation of {certificate} \
                 reported",
                e.reason
            ),
            RevocationCause::KeyProven => format!(
                "revoked ({}) by the holder of its private key, who signed the request with it",
                e.reason
            ),
        },
        Event::Deleted(_) => "deleted; its private key was erased".to_string(),
        Event::RenewalOrdered(_) => "renewal ordered".to_string(),
        Event::ValidationChallengesIssued(e) => format!(
            "domain validation challenges issued for {}, due by {}",
            e.challenges
                .iter()
                .map(|c| format!("{} ({})", c.domain, c.method))
                .collect::<Vec<_>>()
                .join(", "),
            timestamp_to_proto(e.deadline)
        ),
        Event::DomainValidated(e) => format!("{} proven by {}", e.domain, e.method),
        Event::ValidationPassed(_) => "every domain proven".to_string(),
        Event::ValidationExpired(_) => {
            "domain validation expired before every domain was proven".to_string()
        }
        Event::RevocationFailed(e) => match e.failure {
            RevocationFailure::ValidationExpired => {
                "revocation failed: validation expired (VALIDATION_EXPIRED); the certificate \
                 is issued again"
                    .to_string()
            }
            RevocationFailure::ReviewRejected => {
                "revocation rejected by review; the certificate is issued again".to_string()
            }
        },
        Event::RevocationDocumentUploaded(e) => format!(
            "stamped document uploaded ({}, {} bytes)",
            e.document.format.media_type(),
            e.document.size
        ),
        Event::ReviewQueued(e) => format!(
            "review task {} queued, {} approval(s) needed",
            e.task_id, e.approvals_needed
        ),
        Event::ReviewApproved(e) => {
            format!("approved by {}: {}", e.vote.reviewer, e.vote.comment)
        }
        Event::ReviewPassed(_) => "review approved".to_string(),
        Event::ReviewRejected(e) => {
            format!("rejected by {}: {}", e.vote.reviewer, e.vote.comment)
        }
        Event::ReissueFailed(e) => match e.cause {
            ReissueFailure::OriginalRevoked => {
                format!(
                    "reissue {} failed: the certificate was revoked",
                    e.reissue_id
                )
            }
            ReissueFailure::ValidationExpired => {
                format!("reissue {} failed: domain validation expired", e.reissue_id)
            }
            ReissueFailure::ReviewRejected => {
                format!("reissue {} failed: a reviewer rejected it", e.reissue_id)
            }
            ReissueFailure::NotIssued => format!(
                "reissue {} failed: the CA would not certify the key",
                e.reissue_id
            ),
        },
        Event::ReissueRequested(e) => format!(
            "reissue {} requested for {} ({})",
            e.reissue_id,
            names(&e.domains),
            e.reason
        ),
        Event::ReissueCompleted(e) => format!(
            "reissue {} completed: certificate {}",
            e.reissue_id, e.certificate_id
        ),
    }
}

#[cfg(test)]
mod tests {
    use certflow_domain::{
        CertificateRevoked, RevocationPath, RevocationReason, RevocationRequested, Timestamp,
        ValidationMethod,
    };

    use super::*;

    #[test]
    fn summaries_say_what_happened_in_rfc_terms() {
        let revoked = Event::Revoked(CertificateRevoked {
            reason: RevocationReason::KeyCompromise,
            revoked_at: Timestamp::from_unix_seconds(1),
            cause: RevocationCause::Requested,
        });
        assert_eq!(
            event_summary(&revoked),
            "revoked (keyCompromise) as requested"
        );
        let requested = Event::RevocationRequested(RevocationRequested {
            reason: RevocationReason::Superseded,
            description: String::new(),
            path: RevocationPath::AutomaticValidation,
            requested_at: Timestamp::from_unix_seconds(1),
            validation_method: ValidationMethod::Dns,
            requested_by: "acme".into(),
        });
        assert_eq!(
            event_summary(&requested),
            "revocation requested (superseded), path: automatic validation"
        );
    }
}
