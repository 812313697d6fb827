//! Domain-ownership validation (REV-10, REV-11, REI-9): the challenges a pending revocation
//! or reissue waits for, each domain proven, and how the validation ends. No command starts
//! one; the validation service issues and checks them (see [`crate::reactions`]), and this
//! module records what its events say.

use crate::event::Event;
use crate::state::{Certificate, DomainValidation, ValidationOutcome};

/// The state after a domain validation event, on the pending revocation or on the pending
/// reissue the event names.
pub(crate) fn evolve_validation(cert: &mut Certificate, event: &Event) {
    match event {
        Event::ValidationChallengesIssued(e) => {
            let validation = DomainValidation {
                challenges: e.challenges.clone(),
                issued_at: e.issued_at,
                deadline: e.deadline,
                outcome: None,
                ended_at: None,
            };
            match &e.reissue_id {
                None => {
                    if let Some(revocation) = &mut cert.revocation {
                        revocation.validation = Some(validation);
                    }
                }
                Some(reissue_id) => {
                    if let Some(pending) = cert
                        .pending_reissue
                        .as_mut()
                        .filter(|p| &p.reissue_id == reissue_id)
                    {
                        pending.validation = Some(validation);
                    }
                }
            }
        }
        Event::DomainValidated(e) => {
            if let Some(validation) = open_validation(cert, e.reissue_id.as_deref()) {
                for challenge in &mut validation.challenges {
                    if challenge.domain == e.domain && challenge.validated_at.is_none() {
                        challenge.validated_at = Some(e.validated_at);
                    }
                }
            }
        }
        Event::ValidationPassed(e) => {
            if let Some(validation) = open_validation(cert, e.reissue_id.as_deref()) {
                validation.outcome = Some(ValidationOutcome::Passed);
                validation.ended_at = Some(e.passed_at);
            }
        }
        Event::ValidationExpired(e) => {
            if let Some(validation) = open_validation(cert, e.reissue_id.as_deref()) {
                validation.outcome = Some(ValidationOutcome::Expired);
                validation.ended_at = Some(e.expired_at);
            }
        }
        _ => {}
    }
}

/// The open validation of the pending revocation, or of pending reissue `reissue_id`.
fn open_validation<'c>(
    cert: &'c mut Certificate,
    reissue_id: Option<&str>,
) -> Option<&'c mut DomainValidation> {
    let validation = match reissue_id {
        None => cert
            .revocation
            .as_mut()
            .filter(|r| r.revoked_at.is_none())
            .and_then(|r| r.validation.as_mut()),
        Some(reissue_id) => cert
            .pending_reissue
            .as_mut()
            .filter(|p| p.reissue_id == reissue_id)
            .and_then(|p| p.validation.as_mut()),
    };
    validation.filter(|v| v.is_open())
}
