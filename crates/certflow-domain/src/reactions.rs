//! Reactions: what the services decide when an event, a timer or a probe result (not a
//! client) moves a certificate on.
//!
//! Each function reads the certificate as it is now and returns the events to append, or
//! none when there is nothing (left) to do. That makes every reaction safe to run twice:
//! a redelivered event, a second service instance or a retried append finds the work done
//! and appends nothing.

use std::collections::BTreeMap;

use crate::error::{DomainError, Reason, Rule};
use crate::event::{
    DomainValidated, Event, RevocationFailed, ValidationChallengesIssued, ValidationExpired,
    ValidationPassed,
};
use crate::lifecycle::revocation::revoked;
use crate::names::DomainName;
use crate::policy::Policy;
use crate::state::{Certificate, DomainValidation, ReviewOutcome, State, ValidationOutcome};
use crate::time::Timestamp;
use crate::values::{
    CertificateId, Challenge, RevocationCause, RevocationFailure, RevocationPath, RevocationReason,
    Source, ValidationMethod, ValidationSetup,
};

pub use crate::names::validation_target;

/// What a domain validation is for: the pending revocation, or a pending reissue (REI-9).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ValidationFor {
    Revocation,
    Reissue(String),
}

impl ValidationFor {
    /// The reissue id events carry; none for the revocation.
    pub fn reissue_id(&self) -> Option<String> {
        match self {
            ValidationFor::Revocation => None,
            ValidationFor::Reissue(id) => Some(id.clone()),
        }
    }
}

/// The challenges for `domains` of `cert`: `DNS_AUTO` domains proven at once, by the
/// product; every other domain by `method` with a value from `new_value`, one per
/// validation target (a wildcard and its base domain share one).
fn challenges_for(
    cert: &Certificate,
    domains: &[DomainName],
    method: ValidationMethod,
    now: Timestamp,
    mut new_value: impl FnMut() -> String,
) -> Vec<Challenge> {
    let mut values: BTreeMap<String, String> = BTreeMap::new();
    domains
        .iter()
        .map(|domain| {
            if cert.validation_for(domain) == ValidationSetup::DnsAuto {
                Challenge {
                    domain: domain.clone(),
                    method: ValidationMethod::DnsAuto,
                    value: String::new(),
                    validated_at: Some(now),
                }
            } else {
                let value = values
                    .entry(validation_target(domain).to_string())
                    .or_insert_with(&mut new_value)
                    .clone();
                Challenge {
                    domain: domain.clone(),
                    method,
                    value,
                    validated_at: None,
                }
            }
        })
        .collect()
}

fn issued(
    subject: &ValidationFor,
    challenges: Vec<Challenge>,
    now: Timestamp,
    policy: &Policy,
) -> Vec<Event> {
    let all_proven = challenges.iter().all(|c| c.validated_at.is_some());
    let mut events = vec![Event::ValidationChallengesIssued(
        ValidationChallengesIssued {
            reissue_id: subject.reissue_id(),
            challenges,
            issued_at: now,
            deadline: now.plus(policy.validation_window),
        },
    )];
    if all_proven {
        events.push(Event::ValidationPassed(ValidationPassed {
            reissue_id: subject.reissue_id(),
            passed_at: now,
        }));
    }
    events
}

/// REV-10, REV-11: the challenges a revocation waiting for domain validation needs, once,
/// due within the policy's validation window.
pub fn issue_challenges(
    state: &State,
    now: Timestamp,
    policy: &Policy,
    new_value: impl FnMut() -> String,
) -> Vec<Event> {
    let Some(cert) = state else {
        return Vec::new();
    };
    let Some(revocation) = cert.pending_revocation() else {
        return Vec::new();
    };
    if revocation.path != RevocationPath::DomainValidation || revocation.validation.is_some() {
        return Vec::new();
    }
    let challenges = challenges_for(
        cert,
        &cert.domains,
        revocation.validation_method,
        now,
        new_value,
    );
    issued(&ValidationFor::Revocation, challenges, now, policy)
}

/// REI-9: the challenges a pending reissue that needs domain validation gets, once, for the
/// domains it binds.
pub fn issue_reissue_challenges(
    state: &State,
    now: Timestamp,
    policy: &Policy,
    new_value: impl FnMut() -> String,
) -> Vec<Event> {
    let Some(cert) = state else {
        return Vec::new();
    };
    let Some(pending) = cert
        .pending_reissue
        .as_ref()
        .filter(|p| p.needs_validation && p.validation.is_none())
    else {
        return Vec::new();
    };
    let challenges = challenges_for(
        cert,
        &pending.domains,
        pending.validation_method,
        now,
        new_value,
    );
    let subject = ValidationFor::Reissue(pending.reissue_id.clone());
    issued(&subject, challenges, now, policy)
}

/// The validation `subject` names on `cert`, whether open or ended.
fn validation_of<'c>(
    cert: &'c Certificate,
    subject: &ValidationFor,
) -> Option<&'c DomainValidation> {
    match subject {
        ValidationFor::Revocation => cert.pending_revocation()?.validation.as_ref(),
        ValidationFor::Reissue(id) => cert
            .pending_reissue
            .as_ref()
            .filter(|p| &p.reissue_id == id)?
            .validation
            .as_ref(),
    }
}

/// Every validation of the certificate still waiting for proof.
pub fn open_validations(state: &State) -> Vec<ValidationFor> {
    let Some(cert) = state else {
        return Vec::new();
    };
    let mut open = Vec::new();
    if validation_of(cert, &ValidationFor::Revocation).is_some_and(|v| v.is_open()) {
        open.push(ValidationFor::Revocation);
    }
    if let Some(pending) = &cert.pending_reissue {
        let subject = ValidationFor::Reissue(pending.reissue_id.clone());
        if validation_of(cert, &subject).is_some_and(|v| v.is_open()) {
            open.push(subject);
        }
    }
    open
}

/// The challenges of `subject`'s open validation still waiting for proof:
/// `(domain, method, value)`.
pub fn open_challenges(
    state: &State,
    subject: &ValidationFor,
) -> Vec<(DomainName, ValidationMethod, String)> {
    state
        .as_ref()
        .and_then(|cert| validation_of(cert, subject))
        .filter(|v| v.is_open())
        .map(|v| {
            v.challenges
                .iter()
                .filter(|c| c.validated_at.is_none())
                .map(|c| (c.domain.clone(), c.method, c.value.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// The deadline of `subject`'s open validation, if there is one.
pub fn validation_deadline(state: &State, subject: &ValidationFor) -> Option<Timestamp> {
    state
        .as_ref()
        .and_then(|cert| validation_of(cert, subject))
        .filter(|v| v.is_open())
        .map(|v| v.deadline)
}

/// The earliest deadline of the certificate's open validations.
pub fn next_deadline(state: &State) -> Option<Timestamp> {
    state.as_ref().and_then(open_deadline)
}

/// [`next_deadline`] of a certificate at hand.
pub fn open_deadline(cert: &Certificate) -> Option<Timestamp> {
    let reissue = cert
        .pending_reissue
        .as_ref()
        .map(|pending| ValidationFor::Reissue(pending.reissue_id.clone()));
    [Some(ValidationFor::Revocation), reissue]
        .iter()
        .flatten()
        .filter_map(|subject| validation_of(cert, subject))
        .filter(|validation| validation.is_open())
        .map(|validation| validation.deadline)
        .min()
}

/// Records the domains a probe found proven with the challenge value it was given. A value
/// that no longer matches the open challenge (an older challenge's) proves nothing. Once no
/// domain is left unproven, the validation has passed.
///
/// REV-11: nothing is proven after the deadline.
pub fn record_proofs(
    state: &State,
    subject: &ValidationFor,
    proven: &[(DomainName, String)],
    now: Timestamp,
) -> Vec<Event> {
    let Some(deadline) = validation_deadline(state, subject) else {
        return Vec::new();
    };
    if now >= deadline {
        return Vec::new();
    }
    let open = open_challenges(state, subject);
    let mut events: Vec<Event> = open
        .iter()
        .filter(|(domain, _, value)| proven.iter().any(|(d, v)| d == domain && v == value))
        .map(|(domain, method, _)| {
            Event::DomainValidated(DomainValidated {
                reissue_id: subject.reissue_id(),
                domain: domain.clone(),
                method: *method,
                validated_at: now,
            })
        })
        .collect();
    // Every domain proven, now or before (a validation whose domains were all proven when
    // issued has nothing open): it has passed.
    if events.len() == open.len() {
        events.push(Event::ValidationPassed(ValidationPassed {
            reissue_id: subject.reissue_id(),
            passed_at: now,
        }));
    }
    events
}

/// REV-11: `subject`'s validation expires once its deadline has passed with domains
/// unproven.
pub fn expire_validation(state: &State, subject: &ValidationFor, now: Timestamp) -> Vec<Event> {
    match validation_deadline(state, subject) {
        Some(deadline) if now >= deadline => {
            vec![Event::ValidationExpired(ValidationExpired {
                reissue_id: subject.reissue_id(),
                expired_at: now,
            })]
        }
        _ => Vec::new(),
    }
}

/// The revocation service's answer to a validation or review outcome: revoke on a passed
/// validation or an approved review (with REV-14 for a pending reissue); fail the revocation
/// on an expired validation (REV-11) or a rejected review (REV-13), so the certificate is
/// `ISSUED` again and downloadable (REV-8).
pub fn conclude_revocation(state: &State, now: Timestamp) -> Vec<Event> {
    let Some(cert) = state else {
        return Vec::new();
    };
    let Some(revocation) = cert.pending_revocation() else {
        return Vec::new();
    };
    let validation = revocation.validation.as_ref().and_then(|v| v.outcome);
    let review = revocation.review.as_ref().and_then(|r| r.outcome);
    let failed = |failure| {
        vec![Event::RevocationFailed(RevocationFailed {
            failure,
            failed_at: now,
        })]
    };
    match (validation, review) {
        (Some(ValidationOutcome::Passed), _) | (_, Some(ReviewOutcome::Approved)) => {
            revoked(cert, revocation.reason, RevocationCause::Requested, now)
        }
        (Some(ValidationOutcome::Expired), _) => failed(RevocationFailure::ValidationExpired),
        (_, Some(ReviewOutcome::Rejected)) => failed(RevocationFailure::ReviewRejected),
        (None, None) => Vec::new(),
    }
}

/// REV-5: the certificates to revoke with `cert` now that it is revoked.
pub fn reissued_from(cert: &Certificate) -> impl Iterator<Item = &CertificateId> {
    cert.reissues.iter()
}

/// REV-5: revokes a certificate reissued from `original`, which was revoked for `reason`.
/// Its own event names the original as the cause.
pub fn revoke_with_original(
    state: &State,
    original: &CertificateId,
    reason: RevocationReason,
    now: Timestamp,
) -> Vec<Event> {
    match state {
        Some(cert) if cert.is_live(now) && cert.original.as_ref() == Some(original) => revoked(
            cert,
            reason,
            RevocationCause::OriginalRevoked {
                original: original.clone(),
            },
            now,
        ),
        _ => Vec::new(),
    }
}

/// REV-16: revokes a live certificate whose public key was compromised, as shown by the
/// key-compromise revocation of `compromised`. Uploaded certificates were not issued here,
/// so they are not revoked here (REV-1).
pub fn revoke_for_key_compromise(
    state: &State,
    compromised: &CertificateId,
    now: Timestamp,
) -> Vec<Event> {
    match state {
        Some(cert)
            if cert.is_live(now) && cert.source == Source::Platform && &cert.id != compromised =>
        {
            revoked(
                cert,
                RevocationReason::KeyCompromise,
                RevocationCause::KeyCompromised {
                    certificate: compromised.clone(),
                },
                now,
            )
        }
        _ => Vec::new(),
    }
}

/// REV-16: the refusal for a CSR or upload whose public key is blocked.
pub fn key_blocked() -> DomainError {
    DomainError::refused(
        Rule::Rev16,
        Reason::KeyBlocked,
        "this public key was revoked for key compromise and cannot be certified again; \
         generate a new key pair",
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::command::{Command, CommandId, IssueCertificate, RequestRevocation};
    use crate::context::Context;
    use crate::event::ReissueFailure;
    use crate::lifecycle::revocation::{cancel_revocation, downloadable};
    use crate::lifecycle::{decide, replay};
    use crate::state::{PendingReissue, Status};
    use crate::time::Duration;
    use crate::values::{Brand, KeyAlgorithm, Level};

    use crate::testing::{admin, customer, now as t0, state_after as given};

    use crate::testing::{certificate_id as id, domain_name as name};

    /// A GeoTrust DV certificate for `domains`, `DNS_AUTO` on those listed in `auto`.
    fn issue(cert: &str, domains: &[&str], auto: &[&str]) -> Command {
        Command::Issue(IssueCertificate {
            id: id(cert),
            account: "acme".into(),
            brand: Brand::GeoTrust,
            level: Level::Dv,
            paid: true,
            algorithm: KeyAlgorithm::EccP256,
            domains: domains.iter().map(|d| d.to_string()).collect(),
            term_years: 1,
            not_before: Some(t0().minus(Duration::days(10))),
            not_after: Some(t0().plus(Duration::days(180))),
            validation_setup: auto
                .iter()
                .map(|d| (d.to_string(), ValidationSetup::DnsAuto))
                .collect::<BTreeMap<_, _>>(),
            renewal_ordered: false,
            enterprise_info: BTreeMap::new(),
        })
    }

    fn revoke(cert: &str, reason_code: i32, method: ValidationMethod) -> Command {
        Command::RequestRevocation(RequestRevocation {
            id: id(cert),
            reason_code,
            description: String::new(),
            validation_method: method,
        })
    }

    fn apply(state: State, events: &[Event]) -> State {
        replay(state, &CommandId(format!("r-{}", events.len())), events)
    }

    fn types(events: &[Event]) -> Vec<&'static str> {
        events.iter().map(Event::type_name).collect()
    }

    /// A certificate waiting for domain validation of `www.example.com` (customer, DNS),
    /// `*.example.com` (customer, DNS) and `auto.example.com` (`DNS_AUTO`).
    fn waiting_for_validation() -> State {
        let domains = ["www.example.com", "*.example.com", "auto.example.com"];
        given(&[
            issue("c1", &domains, &["auto.example.com"]),
            revoke("c1", 4, ValidationMethod::Dns),
        ])
    }

    fn with_challenges() -> State {
        let state = waiting_for_validation();
        let mut n = 0;
        let events = issue_challenges(&state, t0(), &Policy::default(), || {
            n += 1;
            format!("value-{n}")
        });
        apply(state, &events)
    }

    #[test]
    fn rev10_domain_validation_issues_a_challenge_per_domain() {
        let state = waiting_for_validation();
        let mut n = 0;
        let events = issue_challenges(&state, t0(), &Policy::default(), || {
            n += 1;
            format!("value-{n}")
        });
        assert_eq!(types(&events), ["ValidationChallengesIssued"]);
        let Event::ValidationChallengesIssued(issued) = &events[0] else {
            panic!("not a challenge event");
        };
        assert_eq!(
            issued.deadline,
            t0().plus(Duration::days(3)),
            "REV-11 default"
        );
        let by_domain: BTreeMap<&str, &Challenge> = issued
            .challenges
            .iter()
            .map(|c| (c.domain.as_str(), c))
            .collect();
        // DNS_AUTO is proven by the product, at once.
        let auto = by_domain["auto.example.com"];
        assert_eq!(auto.method, ValidationMethod::DnsAuto);
        assert_eq!(auto.validated_at, Some(t0()));
        // The others wait for the customer, by the method chosen; a wildcard is proven on
        // its base domain, so it gets that domain's value.
        let www = by_domain["www.example.com"];
        let wildcard = by_domain["*.example.com"];
        assert_eq!(www.method, ValidationMethod::Dns);
        assert!(www.validated_at.is_none() && wildcard.validated_at.is_none());
        assert_ne!(www.value, wildcard.value, "different validation targets");
        assert_eq!(validation_target(&wildcard.domain), "example.com");
        assert_eq!(
            types(&issue_challenges(
                &apply(state, &events),
                t0(),
                &Policy::default(),
                String::new
            )),
            Vec::<&str>::new(),
            "challenges are issued once"
        );
    }

    #[test]
    fn rev10_only_domain_validation_paths_get_challenges() {
        // Immediate (all DNS_AUTO) revocations are revoked already.
        let auto = given(&[
            issue("c1", &["www.example.com"], &["www.example.com"]),
            revoke("c1", 0, ValidationMethod::Dns),
        ]);
        assert!(issue_challenges(&auto, t0(), &Policy::default(), String::new).is_empty());
        // Nothing requested, nothing to validate.
        let issued = given(&[issue("c1", &["www.example.com"], &[])]);
        assert!(issue_challenges(&issued, t0(), &Policy::default(), String::new).is_empty());
    }

    #[test]
    fn rev9_dns_auto_is_not_a_method_a_customer_chooses() {
        let issued = given(&[issue("c1", &["www.example.com"], &[])]);
        let command_id = CommandId("when".into());
        let ctx = Context {
            now: t0(),
            command_id: &command_id,
            actor: &admin(),
            policy: &Policy::default(),
        };
        let err = decide(&issued, &revoke("c1", 0, ValidationMethod::DnsAuto), &ctx)
            .expect_err("refused");
        assert_eq!(err.reason(), Reason::InvalidArgument);
    }

    #[test]
    fn rev10_validation_passes_when_every_domain_is_proven_then_revokes() {
        let state = with_challenges();
        let open = open_challenges(&state, &ValidationFor::Revocation);
        assert_eq!(open.len(), 2, "www and the wildcard; auto is proven");
        // A wrong value proves nothing.
        let wrong = vec![(name("www.example.com"), "guess".to_string())];
        assert!(record_proofs(&state, &ValidationFor::Revocation, &wrong, t0()).is_empty());
        // One domain proven: not passed yet, and the revocation waits.
        let www = open
            .iter()
            .find(|(d, _, _)| d.as_str() == "www.example.com")
            .map(|(d, _, v)| (d.clone(), v.clone()))
            .expect("www challenge");
        let later = t0().plus(Duration::seconds(5 * 3600));
        let events = record_proofs(
            &state,
            &ValidationFor::Revocation,
            std::slice::from_ref(&www),
            later,
        );
        assert_eq!(types(&events), ["DomainValidated"]);
        let state = apply(state, &events);
        assert!(conclude_revocation(&state, later).is_empty());
        // Proving it again appends nothing.
        assert!(record_proofs(&state, &ValidationFor::Revocation, &[www], later).is_empty());
        // The rest proven: passed, and the revocation service revokes.
        let rest: Vec<_> = open_challenges(&state, &ValidationFor::Revocation)
            .into_iter()
            .map(|(d, _, v)| (d, v))
            .collect();
        let events = record_proofs(&state, &ValidationFor::Revocation, &rest, later);
        assert_eq!(types(&events), ["DomainValidated", "ValidationPassed"]);
        let state = apply(state, &events);
        let events = conclude_revocation(&state, later);
        assert_eq!(types(&events), ["CertificateRevoked"]);
        let state = apply(state, &events);
        let cert = state.as_ref().expect("cert");
        assert_eq!(cert.status(later), Status::Revoked);
        assert!(
            conclude_revocation(&state, later).is_empty(),
            "revoked once"
        );
    }

    #[test]
    fn rev10_a_validation_with_nothing_left_to_prove_passes() {
        let mut state = with_challenges();
        if let Some(validation) = state
            .as_mut()
            .and_then(|c| c.revocation.as_mut())
            .and_then(|r| r.validation.as_mut())
        {
            for challenge in &mut validation.challenges {
                challenge.validated_at = Some(t0());
            }
        }
        assert_eq!(
            types(&record_proofs(
                &state,
                &ValidationFor::Revocation,
                &[],
                t0()
            )),
            ["ValidationPassed"]
        );
    }

    #[test]
    fn rev11_a_value_added_late_but_in_time_passes() {
        let state = with_challenges();
        let proofs: Vec<_> = open_challenges(&state, &ValidationFor::Revocation)
            .into_iter()
            .map(|(d, _, v)| (d, v))
            .collect();
        let just_in_time = t0().plus(Duration::days(3)).minus(Duration::millis(1));
        assert!(expire_validation(&state, &ValidationFor::Revocation, just_in_time).is_empty());
        let events = record_proofs(&state, &ValidationFor::Revocation, &proofs, just_in_time);
        assert_eq!(
            types(&events),
            ["DomainValidated", "DomainValidated", "ValidationPassed"]
        );
    }

    #[test]
    fn rev11_validation_not_passed_by_the_deadline_fails_the_revocation() {
        let state = with_challenges();
        let deadline = t0().plus(Duration::days(3));
        let proofs: Vec<_> = open_challenges(&state, &ValidationFor::Revocation)
            .into_iter()
            .map(|(d, _, v)| (d, v))
            .collect();
        // At the deadline, proof comes too late.
        assert!(record_proofs(&state, &ValidationFor::Revocation, &proofs, deadline).is_empty());
        let events = expire_validation(&state, &ValidationFor::Revocation, deadline);
        assert_eq!(types(&events), ["ValidationExpired"]);
        let state = apply(state, &events);
        assert!(
            expire_validation(&state, &ValidationFor::Revocation, deadline).is_empty(),
            "expires once"
        );
        let events = conclude_revocation(&state, deadline);
        assert_eq!(types(&events), ["RevocationFailed"]);
        let state = apply(state, &events);
        let cert = state.as_ref().expect("cert");
        // The certificate is ISSUED again, and says why the revocation failed.
        assert_eq!(cert.status(deadline), Status::Issued);
        assert_eq!(
            cert.failed_revocation.as_ref().map(|f| f.failure),
            Some(RevocationFailure::ValidationExpired)
        );
        assert!(
            conclude_revocation(&state, deadline).is_empty(),
            "fails once"
        );
    }

    #[test]
    fn rev8_a_failed_revocation_makes_the_certificate_downloadable_again() {
        let state = with_challenges();
        assert_eq!(
            downloadable(&state, &id("c1"), &admin(), t0())
                .expect_err("pending")
                .reason(),
            Reason::RevocationRequested
        );
        let deadline = t0().plus(Duration::days(3));
        let expired = expire_validation(&state, &ValidationFor::Revocation, deadline);
        let state = apply(state, &expired);
        let failed = conclude_revocation(&state, deadline);
        let state = apply(state, &failed);
        assert!(downloadable(&state, &id("c1"), &admin(), deadline).is_ok());
        // And it can be revoked again, with new challenges.
        let command_id = CommandId("again".into());
        let ctx = Context {
            now: deadline,
            command_id: &command_id,
            actor: &admin(),
            policy: &Policy::default(),
        };
        let events = decide(&state, &revoke("c1", 0, ValidationMethod::File), &ctx)
            .expect("revocable again");
        let state = replay(state, &command_id, &events);
        let events = issue_challenges(&state, deadline, &Policy::default(), || "v2".into());
        assert_eq!(types(&events), ["ValidationChallengesIssued"]);
    }

    #[test]
    fn rev7_a_submitted_revocation_cannot_be_cancelled() {
        let state = with_challenges();
        let err = cancel_revocation(&state, &id("c1"), &admin());
        assert_eq!(err.reason(), Reason::RevocationNotCancellable);
        assert_eq!(err.rule(), Some(Rule::Rev7));
        // Another account learns nothing (GEN-3).
        assert_eq!(
            cancel_revocation(&state, &id("c1"), &customer("globex")).reason(),
            Reason::NotFound
        );
        // The only ends are revocation or a failed validation: the state still waits.
        let cert = state.as_ref().expect("cert");
        assert_eq!(cert.status(t0()), Status::RevocationPending);
    }

    #[test]
    fn rev5_revoking_an_original_revokes_each_reissue_with_its_own_event() {
        let mut original = given(&[issue("orig", &["www.example.com"], &[])]);
        let mut reissue = given(&[issue("re-1", &["www.example.com"], &[])]);
        if let (Some(o), Some(r)) = (&mut original, &mut reissue) {
            o.reissues.insert(id("re-1"));
            r.original = Some(id("orig"));
        }
        let original = original.expect("original");
        assert_eq!(reissued_from(&original).collect::<Vec<_>>(), [&id("re-1")]);
        let events =
            revoke_with_original(&reissue, &id("orig"), RevocationReason::Superseded, t0());
        assert_eq!(types(&events), ["CertificateRevoked"]);
        let Event::Revoked(revoked) = &events[0] else {
            panic!("not a revocation");
        };
        assert_eq!(
            revoked.cause,
            RevocationCause::OriginalRevoked {
                original: id("orig")
            }
        );
        assert_eq!(revoked.reason, RevocationReason::Superseded);
        let reissue = apply(reissue, &events);
        assert!(
            revoke_with_original(&reissue, &id("orig"), RevocationReason::Superseded, t0())
                .is_empty(),
            "revoked once"
        );
        // A certificate not reissued from it is left alone.
        let other = given(&[issue("other", &["www.example.com"], &[])]);
        assert!(
            revoke_with_original(&other, &id("orig"), RevocationReason::Superseded, t0())
                .is_empty()
        );
    }

    #[test]
    fn rev14_revoking_an_original_fails_its_pending_reissue() {
        let mut state = given(&[issue("c1", &["www.example.com"], &["www.example.com"])]);
        if let Some(cert) = &mut state {
            cert.pending_reissue = Some(PendingReissue {
                reissue_id: "reissue-7".into(),
                requested_at: t0(),
                new_certificate_id: id("c1-reissue"),
                domains: cert.domains.clone(),
                key: crate::values::ReissueKey::Original,
                needs_validation: false,
                validation_method: ValidationMethod::Dns,
                validation: None,
                needs_review: false,
                enterprise_info: BTreeMap::new(),
                requested_by: "acme".into(),
                review: None,
            });
        }
        assert_eq!(
            state.as_ref().map(|c| c.status(t0())),
            Some(Status::ReissuePending)
        );
        let command_id = CommandId("when".into());
        let ctx = Context {
            now: t0(),
            command_id: &command_id,
            actor: &admin(),
            policy: &Policy::default(),
        };
        let events = decide(&state, &revoke("c1", 0, ValidationMethod::Dns), &ctx)
            .expect("a certificate being reissued can be revoked");
        assert_eq!(
            types(&events),
            ["RevocationRequested", "CertificateRevoked", "ReissueFailed"]
        );
        let Some(Event::ReissueFailed(failed)) = events.last() else {
            panic!("no reissue failure");
        };
        assert_eq!(failed.cause, ReissueFailure::OriginalRevoked);
        assert_eq!(failed.reissue_id, "reissue-7");
        let state = replay(state, &command_id, &events);
        let cert = state.as_ref().expect("cert");
        assert!(cert.pending_reissue.is_none(), "its locks are free");
        assert_eq!(cert.status(t0()), Status::Revoked);
    }

    #[test]
    fn rev16_key_compromise_revokes_every_other_live_certificate_with_the_key() {
        let compromised = id("c1");
        let live = given(&[issue("c2", &["www.example.com"], &[])]);
        let events = revoke_for_key_compromise(&live, &compromised, t0());
        assert_eq!(types(&events), ["CertificateRevoked"]);
        let Event::Revoked(revoked) = &events[0] else {
            panic!("not a revocation");
        };
        assert_eq!(revoked.reason, RevocationReason::KeyCompromise);
        assert_eq!(
            revoked.cause,
            RevocationCause::KeyCompromised {
                certificate: compromised.clone()
            }
        );
        // Revoked, expired, deleted or uploaded ones, and the compromised one itself, are not.
        let revoked_state = apply(live, &events);
        assert!(revoke_for_key_compromise(&revoked_state, &compromised, t0()).is_empty());
        let itself = given(&[issue("c1", &["www.example.com"], &[])]);
        assert!(revoke_for_key_compromise(&itself, &compromised, t0()).is_empty());
        let mut uploaded = given(&[issue("c3", &["www.example.com"], &[])]);
        if let Some(cert) = &mut uploaded {
            cert.source = Source::Uploaded;
        }
        assert!(revoke_for_key_compromise(&uploaded, &compromised, t0()).is_empty());
        let expired = given(&[issue("c4", &["www.example.com"], &[])]);
        let after_expiry = t0().plus(Duration::days(301));
        assert!(revoke_for_key_compromise(&expired, &compromised, after_expiry).is_empty());
        // A pending revocation of it completes as a key compromise.
        let pending = with_challenges();
        let events = revoke_for_key_compromise(&pending, &id("c9"), t0());
        let pending = apply(pending, &events);
        let cert = pending.as_ref().expect("cert");
        assert_eq!(cert.status(t0()), Status::Revoked);
        assert_eq!(
            cert.revocation.as_ref().map(|r| r.reason),
            Some(RevocationReason::KeyCompromise)
        );
    }

    #[test]
    fn rev16_a_blocked_key_is_refused_with_key_blocked() {
        let err = key_blocked();
        assert_eq!(err.reason(), Reason::KeyBlocked);
        assert_eq!(err.rule(), Some(Rule::Rev16));
        assert_eq!(err.kind(), crate::ErrorKind::FailedPrecondition);
    }
}
