//! Reissue (REI-1 … REI-12): a new certificate for an original's domains, with a new key or
//! the original's, and the original's expiry. A reissue may wait for a domain validation
//! (REI-9) or a review (REI-10) before the CA signs it, and ends completed or failed (REI-11).

use std::collections::{BTreeMap, BTreeSet};

use crate::command::RequestReissue;
use crate::context::Context;
use crate::error::{DomainError, Reason, Rule};
use crate::event::{
    CertificateIssued, Event, ReissueCompleted, ReissueFailed, ReissueFailure, ReissueRequested,
};
use crate::names::{DomainName, signable_names, validation_target};
use crate::state::{Certificate, PendingReissue, State, Status};
use crate::time::{Duration, Timestamp};
use crate::values::{Brand, KeyAlgorithm, Level, ReissueKey, Source};

/// REI-12: the longest reason accepted.
const MAX_REASON: usize = 500;

/// REI-9: within this time of issue, a reissue needs no new domain validation.
pub const FRESH_ISSUE: Duration = Duration::days(3);

/// REI-4: the registrable domain of `name` by the Public Suffix List (`a.example.co.uk` →
/// `example.co.uk`); a wildcard counts as its base. A name that is itself a public suffix
/// is its own.
pub fn registrable_domain(name: &DomainName) -> String {
    let base = validation_target(name);
    psl::domain_str(base).unwrap_or(base).to_string()
}

/// REI-4: the registrable domains a reissue binding `domains` reserves, each once.
pub fn reservations(domains: &[DomainName]) -> BTreeSet<String> {
    domains.iter().map(registrable_domain).collect()
}

/// REI-1 … REI-12: what a reissue request means on the original.
pub(crate) fn decide_reissue(
    cert: &Certificate,
    cmd: &RequestReissue,
    ctx: &Context<'_>,
) -> Result<Vec<Event>, DomainError> {
    if let Some(original) = &cert.original {
        return Err(DomainError::refused(
            Rule::Rei6,
            Reason::ReissuedCertNotReissuable,
            format!("this certificate was reissued from {original}; reissue {original} instead"),
        ));
    }
    crate::text::free_text("reason", &cmd.reason)?;
    let reason = cmd.reason.trim();
    if reason.is_empty() || reason.chars().count() > MAX_REASON {
        return Err(DomainError::invalid_by(
            Rule::Rei12,
            Reason::InvalidArgument,
            format!("a reissue needs a short reason, 1 to {MAX_REASON} characters"),
        ));
    }
    reissuable(cert, ctx)?;
    let domains = bound_domains(cert, &cmd.domains)?;
    signable_names(&domains)?;
    single_domain(cert, &domains)?;
    let algorithm = cmd.key.algorithm(cert.algorithm);
    check_key(cert, &cmd.key, algorithm, &domains)?;
    free_dv_limits(cert, algorithm)?;
    if cmd.validation_method == crate::ValidationMethod::DnsAuto {
        return Err(DomainError::invalid(
            Reason::InvalidArgument,
            "DNS_AUTO is set up per domain, not chosen per request; choose DNS or FILE",
        ));
    }
    // Fresh: issued (not merely dated) less than 3 days ago.
    let fresh = cert.issued_at <= ctx.now && ctx.now.since(cert.issued_at) < FRESH_ISSUE;
    let needs_validation = !matches!(cmd.key, ReissueKey::Original) && !fresh;
    let enterprise_changed =
        !cmd.enterprise_info.is_empty() && cmd.enterprise_info != cert.enterprise_info;
    let needs_review = matches!(cert.level, Level::Ov | Level::Ev) && enterprise_changed;
    Ok(vec![Event::ReissueRequested(ReissueRequested {
        reissue_id: cmd.reissue_id.clone(),
        new_certificate_id: cmd.new_certificate_id.clone(),
        domains,
        key: cmd.key.clone(),
        reason: reason.to_string(),
        needs_validation,
        validation_method: cmd.validation_method,
        needs_review,
        enterprise_info: if enterprise_changed {
            cmd.enterprise_info.clone()
        } else {
            BTreeMap::new()
        },
        requested_by: ctx.actor.account.clone(),
        requested_at: ctx.now,
    })])
}

/// Whether `cert` may be reissued now: no other reissue of it pending (REI-3), and issued
/// here, not revoked, being revoked or expired, with more than 30 days left (REI-1).
fn reissuable(cert: &Certificate, ctx: &Context<'_>) -> Result<(), DomainError> {
    if cert.pending_reissue.is_some() {
        return Err(DomainError::refused(
            Rule::Rei3,
            Reason::ReissueInProgress,
            "a reissue of this certificate is already in progress; wait for it to complete",
        ));
    }
    if cert.status(ctx.now) != Status::Issued || cert.source == Source::Uploaded {
        return Err(DomainError::refused(
            Rule::Rei1,
            Reason::CertNotIssued,
            "only a certificate issued here that is not revoked, being revoked or expired can \
             be reissued",
        ));
    }
    if cert.not_after.since(ctx.now) <= ctx.policy.renewal_window {
        return Err(DomainError::refused(
            Rule::Rei1,
            Reason::ReissueTooCloseToExpiry,
            "the certificate expires within 30 days; renew it instead of reissuing",
        ));
    }
    Ok(())
}

/// REI-8: whether a reissue of a `brand` `level` certificate binds a single domain (Wotrus
/// and DNSPod OV/EV); forms ask for one domain where this says so.
pub fn binds_single_domain(brand: Brand, level: Level) -> bool {
    matches!(brand, Brand::Wotrus | Brand::DnsPod) && matches!(level, Level::Ov | Level::Ev)
}

/// REI-8: a reissued Wotrus or DNSPod OV/EV certificate binds a single domain.
fn single_domain(cert: &Certificate, domains: &[DomainName]) -> Result<(), DomainError> {
    if binds_single_domain(cert.brand, cert.level) && domains.len() != 1 {
        return Err(DomainError::refused(
            Rule::Rei8,
            Reason::SingleDomainRequired,
            format!(
                "a reissued {} {} certificate binds a single domain; name one of {}",
                cert.brand,
                cert.level,
                names(&cert.domains)
            ),
        ));
    }
    Ok(())
}

/// REI-2: a free DV certificate is reissued once in its life, with an RSA 2048 key.
fn free_dv_limits(cert: &Certificate, algorithm: KeyAlgorithm) -> Result<(), DomainError> {
    let free_dv = !cert.paid && cert.level == Level::Dv;
    if free_dv && !cert.reissues.is_empty() {
        return Err(DomainError::refused(
            Rule::Rei2,
            Reason::FreeDvReissueLimit,
            "a free DV certificate can be reissued once, and this one has been",
        ));
    }
    if free_dv && algorithm != KeyAlgorithm::Rsa2048 {
        return Err(DomainError::refused(
            Rule::Rei2,
            Reason::KeyPolicyViolation,
            "a free DV certificate is reissued with an RSA 2048 key only",
        ));
    }
    Ok(())
}

/// The domains a reissue binds: the ones named (each on the original), or the original's.
fn bound_domains(cert: &Certificate, named: &[String]) -> Result<Vec<DomainName>, DomainError> {
    if named.is_empty() {
        return Ok(cert.domains.clone());
    }
    let mut domains = Vec::new();
    for name in named {
        let name = DomainName::parse(name)?;
        if !cert.domains.contains(&name) {
            return Err(DomainError::invalid(
                Reason::InvalidDomainName,
                format!(
                    "{name} is not on the certificate; a reissue binds domains of {}",
                    names(&cert.domains)
                ),
            ));
        }
        if !domains.contains(&name) {
            domains.push(name);
        }
    }
    Ok(domains)
}

/// REI-7: the key must suit the certificate, and a pasted CSR must name the bound domains.
fn check_key(
    cert: &Certificate,
    key: &ReissueKey,
    algorithm: KeyAlgorithm,
    domains: &[DomainName],
) -> Result<(), DomainError> {
    let sm2_certificate = cert.algorithm == KeyAlgorithm::Sm2;
    let suits = match algorithm {
        KeyAlgorithm::Sm2 => sm2_certificate,
        KeyAlgorithm::Other => false,
        _ => !sm2_certificate,
    };
    if !suits {
        return Err(DomainError::invalid_by(
            Rule::Rei7,
            Reason::KeyPolicyViolation,
            if sm2_certificate {
                "an SM2 certificate is reissued with an SM2 key"
            } else {
                "the key must be RSA 2048/3072/4096 or ECC P-256/P-384"
            },
        ));
    }
    if let ReissueKey::Csr { names: asked, .. } = key
        && let Some(missing) = domains.iter().find(|d| !asked.contains(d))
    {
        return Err(DomainError::invalid_by(
            Rule::Rei7,
            Reason::CsrDomainMismatch,
            format!("the CSR does not name {missing}; it must name every bound domain"),
        ));
    }
    Ok(())
}

fn names(domains: &[DomainName]) -> String {
    domains
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// REI-5: the issue event of the reissued certificate: the original's brand, level, term
/// and expiry, the bound domains, linked to its original. The CA's facts are added when it
/// is signed.
pub fn reissued_certificate(
    original: &Certificate,
    pending: &PendingReissue,
    now: Timestamp,
) -> CertificateIssued {
    let validation_setup: BTreeMap<_, _> = original
        .validation_setup
        .iter()
        .filter(|(domain, _)| pending.domains.contains(domain))
        .map(|(domain, setup)| (domain.clone(), *setup))
        .collect();
    CertificateIssued {
        id: pending.new_certificate_id.clone(),
        account: original.account.clone(),
        brand: original.brand,
        level: original.level,
        paid: original.paid,
        algorithm: pending.key.algorithm(original.algorithm),
        domains: pending.domains.clone(),
        term_years: original.term_years,
        issued_at: now,
        not_before: now,
        // REI-5 keeps the original's expiry, unless that is further out than the CA may
        // sign for now (CA-3): then the longest allowed.
        not_after: original.not_after.min(crate::validity::latest_not_after(
            now,
            crate::validity::br_maximum(now),
        )),
        validation_setup,
        renewal_ordered: false,
        x509: None,
        original: Some(original.id.clone()),
        // REI-10: approved new details, or the recorded ones.
        enterprise_info: if pending.enterprise_info.is_empty() {
            original.enterprise_info.clone()
        } else {
            pending.enterprise_info.clone()
        },
        legacy: false,
    }
}

/// REI-11: the original's pending reissue completed with `certificate`.
pub fn complete_reissue(state: &State, reissue_id: &str, now: Timestamp) -> Vec<Event> {
    match state.as_ref().and_then(|c| c.pending_reissue.as_ref()) {
        Some(pending) if pending.reissue_id == reissue_id => {
            vec![Event::ReissueCompleted(ReissueCompleted {
                reissue_id: reissue_id.to_string(),
                certificate_id: pending.new_certificate_id.clone(),
                completed_at: now,
            })]
        }
        _ => Vec::new(),
    }
}

/// REI-11: the original's pending reissue failed.
pub fn fail_reissue(
    state: &State,
    reissue_id: &str,
    cause: ReissueFailure,
    now: Timestamp,
) -> Vec<Event> {
    match state.as_ref().and_then(|c| c.pending_reissue.as_ref()) {
        Some(pending) if pending.reissue_id == reissue_id => {
            vec![Event::ReissueFailed(ReissueFailed {
                reissue_id: reissue_id.to_string(),
                cause,
                failed_at: now,
            })]
        }
        _ => Vec::new(),
    }
}

/// Whether the pending reissue `reissue_id` may be certified now: it needs no validation,
/// or its validation has passed (REI-9).
pub fn ready_to_issue(state: &State, reissue_id: &str) -> bool {
    state
        .as_ref()
        .and_then(|c| c.pending_reissue.as_ref())
        .filter(|p| p.reissue_id == reissue_id)
        .is_some_and(|p| {
            let validated = !p.needs_validation
                || p.validation
                    .as_ref()
                    .is_some_and(|v| v.outcome == Some(crate::ValidationOutcome::Passed));
            let approved = !p.needs_review
                || p.review
                    .as_ref()
                    .is_some_and(|r| r.outcome == Some(crate::ReviewOutcome::Approved));
            validated && approved
        })
}

/// REI-10: a pending reissue a reviewer rejected fails (REI-11).
pub fn conclude_reissue_review(state: &State, reissue_id: &str, now: Timestamp) -> Vec<Event> {
    let rejected = state
        .as_ref()
        .and_then(|c| c.pending_reissue.as_ref())
        .filter(|p| p.reissue_id == reissue_id)
        .and_then(|p| p.review.as_ref())
        .is_some_and(|r| r.outcome == Some(crate::ReviewOutcome::Rejected));
    if rejected {
        fail_reissue(state, reissue_id, ReissueFailure::ReviewRejected, now)
    } else {
        Vec::new()
    }
}

/// REI-9 with REV-11: a pending reissue whose validation expired fails (REI-11).
pub fn conclude_reissue_validation(state: &State, reissue_id: &str, now: Timestamp) -> Vec<Event> {
    let expired = state
        .as_ref()
        .and_then(|c| c.pending_reissue.as_ref())
        .filter(|p| p.reissue_id == reissue_id)
        .and_then(|p| p.validation.as_ref())
        .is_some_and(|v| v.outcome == Some(crate::ValidationOutcome::Expired));
    if expired {
        fail_reissue(state, reissue_id, ReissueFailure::ValidationExpired, now)
    } else {
        Vec::new()
    }
}

/// The state after a reissue event: requested, completed (linked to its original) or
/// failed; either way an ended reissue no longer holds the certificate (REI-11).
pub(crate) fn evolve_reissue(cert: &mut Certificate, event: &Event) {
    match event {
        Event::ReissueRequested(e) => {
            cert.pending_reissue = Some(PendingReissue {
                reissue_id: e.reissue_id.clone(),
                requested_at: e.requested_at,
                new_certificate_id: e.new_certificate_id.clone(),
                domains: e.domains.clone(),
                key: e.key.clone(),
                needs_validation: e.needs_validation,
                validation_method: e.validation_method,
                validation: None,
                needs_review: e.needs_review,
                enterprise_info: e.enterprise_info.clone(),
                requested_by: e.requested_by.clone(),
                review: None,
            });
        }
        Event::ReissueCompleted(e) => {
            let completed = cert
                .pending_reissue
                .take_if(|p| p.reissue_id == e.reissue_id);
            if completed.is_some() {
                cert.reissues.insert(e.certificate_id.clone());
            }
        }
        Event::ReissueFailed(e) => {
            cert.pending_reissue
                .take_if(|pending| pending.reissue_id == e.reissue_id);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::command::{Command, CommandId, IssueCertificate, RequestRevocation};
    use crate::lifecycle::{decide, replay};
    use crate::policy::Policy;
    use crate::testing::{customer, decided_at, now};
    use crate::values::ValidationSetup;

    use crate::testing::{certificate_id as id, domain_name as name};

    struct Original {
        brand: Brand,
        level: Level,
        paid: bool,
        algorithm: KeyAlgorithm,
        domains: Vec<&'static str>,
        issued_days_ago: i64,
        expires_in_days: i64,
    }

    impl Default for Original {
        fn default() -> Self {
            Original {
                brand: Brand::GeoTrust,
                level: Level::Dv,
                paid: true,
                algorithm: KeyAlgorithm::EccP256,
                domains: vec!["www.example.com", "api.example.com"],
                issued_days_ago: 10,
                expires_in_days: 180,
            }
        }
    }

    fn issued(original: Original) -> State {
        let command = Command::Issue(IssueCertificate {
            id: id("orig"),
            account: "acme".into(),
            brand: original.brand,
            level: original.level,
            paid: original.paid,
            algorithm: original.algorithm,
            domains: original.domains.iter().map(|d| d.to_string()).collect(),
            term_years: 1,
            not_before: Some(now().minus(Duration::days(original.issued_days_ago))),
            not_after: Some(now().plus(Duration::days(original.expires_in_days))),
            validation_setup: BTreeMap::from([(
                "www.example.com".to_string(),
                ValidationSetup::DnsAuto,
            )]),
            renewal_ordered: false,
            enterprise_info: BTreeMap::from([("organization".to_string(), "Acme".to_string())]),
        });
        apply(None, &command).expect("issued")
    }

    fn reissue(key: ReissueKey) -> RequestReissue {
        RequestReissue {
            id: id("orig"),
            reissue_id: "r-1".into(),
            new_certificate_id: id("orig-r1"),
            domains: Vec::new(),
            reason: "key rotation".into(),
            key,
            enterprise_info: BTreeMap::new(),
            validation_method: crate::ValidationMethod::Dns,
        }
    }

    fn generated(algorithm: KeyAlgorithm) -> ReissueKey {
        ReissueKey::Generated {
            algorithm,
            key_record: "key-1".into(),
            public_key_der: vec![1, 2, 3],
        }
    }

    fn apply(state: State, command: &Command) -> Result<State, DomainError> {
        let command_id = CommandId(format!(
            "c-{}",
            state.as_ref().map_or(0, |c| c.applied_commands.len())
        ));
        let ctx = Context {
            now: decided_at(command),
            command_id: &command_id,
            actor: &customer("acme"),
            policy: &Policy::default(),
        };
        let events = decide(&state, command, &ctx)?;
        Ok(replay(state, &command_id, &events))
    }

    fn refused(result: Result<State, DomainError>, rule: Rule, reason: Reason) {
        let err = result.expect_err("refused");
        assert_eq!((err.rule(), err.reason()), (Some(rule), reason), "{err}");
    }

    fn requested(state: &State) -> &PendingReissue {
        state
            .as_ref()
            .and_then(|c| c.pending_reissue.as_ref())
            .expect("pending")
    }

    #[test]
    fn rei1_only_issued_certificates_with_more_than_thirty_days_left() {
        let close = issued(Original {
            expires_in_days: 30,
            ..Original::default()
        });
        refused(
            apply(
                close,
                &Command::RequestReissue(reissue(ReissueKey::Original)),
            ),
            Rule::Rei1,
            Reason::ReissueTooCloseToExpiry,
        );
        let fine = issued(Original {
            expires_in_days: 31,
            ..Original::default()
        });
        assert!(
            apply(
                fine.clone(),
                &Command::RequestReissue(reissue(ReissueKey::Original))
            )
            .is_ok()
        );
        let revoked = apply(
            fine,
            &Command::RequestRevocation(RequestRevocation {
                id: id("orig"),
                reason_code: 4,
                description: String::new(),
                validation_method: crate::ValidationMethod::Dns,
            }),
        )
        .expect("revocation requested: api.example.com waits for validation");
        refused(
            apply(
                revoked,
                &Command::RequestReissue(reissue(ReissueKey::Original)),
            ),
            Rule::Rei1,
            Reason::CertNotIssued,
        );
    }

    #[test]
    fn rei2_a_free_dv_certificate_is_reissued_once_with_rsa_2048_only() {
        let free = issued(Original {
            paid: false,
            algorithm: KeyAlgorithm::Rsa2048,
            ..Original::default()
        });
        refused(
            apply(
                free.clone(),
                &Command::RequestReissue(reissue(generated(KeyAlgorithm::EccP256))),
            ),
            Rule::Rei2,
            Reason::KeyPolicyViolation,
        );
        let once = apply(
            free,
            &Command::RequestReissue(reissue(generated(KeyAlgorithm::Rsa2048))),
        )
        .expect("first reissue");
        let done = replay(
            once.clone(),
            &CommandId("complete".into()),
            &complete_reissue(&once, "r-1", now()),
        );
        assert_eq!(done.as_ref().map(|c| c.reissues.len()), Some(1));
        refused(
            apply(
                done,
                &Command::RequestReissue(reissue(generated(KeyAlgorithm::Rsa2048))),
            ),
            Rule::Rei2,
            Reason::FreeDvReissueLimit,
        );
    }

    #[test]
    fn rei3_one_pending_reissue_per_certificate() {
        let pending = apply(
            issued(Original::default()),
            &Command::RequestReissue(reissue(ReissueKey::Original)),
        )
        .expect("first");
        assert_eq!(
            pending.as_ref().map(|c| c.status(now())),
            Some(Status::ReissuePending)
        );
        refused(
            apply(
                pending,
                &Command::RequestReissue(reissue(ReissueKey::Original)),
            ),
            Rule::Rei3,
            Reason::ReissueInProgress,
        );
    }

    #[test]
    fn rei4_names_under_one_registrable_domain_share_one_reservation() {
        assert_eq!(
            registrable_domain(&name("a.example.co.uk")),
            "example.co.uk"
        );
        assert_eq!(
            registrable_domain(&name("b.example.co.uk")),
            "example.co.uk"
        );
        assert_eq!(
            registrable_domain(&name("*.shop.example.com")),
            "example.com"
        );
        assert_eq!(
            reservations(&[
                name("a.example.co.uk"),
                name("b.example.co.uk"),
                name("x.example.org")
            ]),
            BTreeSet::from(["example.co.uk".to_string(), "example.org".to_string()])
        );
    }

    #[test]
    fn rei5_the_reissued_certificate_keeps_the_originals_expiry_and_links_to_it() {
        let original = issued(Original::default());
        let pending = apply(
            original,
            &Command::RequestReissue(RequestReissue {
                domains: vec!["www.example.com".into()],
                ..reissue(generated(KeyAlgorithm::EccP384))
            }),
        )
        .expect("requested");
        let cert = pending.as_ref().expect("cert");
        let issued = reissued_certificate(cert, requested(&pending), now());
        assert_eq!(issued.not_after, cert.not_after);
        assert_eq!(issued.original, Some(id("orig")));
        assert_eq!(issued.domains, vec![name("www.example.com")]);
        assert_eq!(issued.algorithm, KeyAlgorithm::EccP384);
        assert_eq!(issued.id, id("orig-r1"));
        // REV-4: the reissue cannot be revoked directly.
        let reissued = replay(None, &CommandId("i".into()), &[Event::Issued(issued)]);
        assert_eq!(
            reissued.as_ref().and_then(|c| c.original.clone()),
            Some(id("orig"))
        );
    }

    #[test]
    fn rei1_uploaded_certificates_are_not_reissued_here() {
        let mut state = issued(Original::default());
        if let Some(cert) = &mut state {
            cert.source = Source::Uploaded;
        }
        refused(
            apply(
                state,
                &Command::RequestReissue(reissue(ReissueKey::Original)),
            ),
            Rule::Rei1,
            Reason::CertNotIssued,
        );
    }

    #[test]
    fn rei9_a_certificate_dated_in_the_future_is_not_fresh() {
        let future = issued(Original {
            issued_days_ago: -5,
            ..Original::default()
        });
        let state = apply(
            future,
            &Command::RequestReissue(reissue(generated(KeyAlgorithm::EccP256))),
        )
        .expect("requested");
        assert!(requested(&state).needs_validation);
    }

    #[test]
    fn rei6_a_reissued_certificate_is_not_reissued_itself() {
        let mut state = issued(Original::default());
        if let Some(cert) = &mut state {
            cert.original = Some(id("first"));
        }
        refused(
            apply(
                state,
                &Command::RequestReissue(reissue(ReissueKey::Original)),
            ),
            Rule::Rei6,
            Reason::ReissuedCertNotReissuable,
        );
    }

    #[test]
    fn rei7_a_pasted_csr_names_the_bound_domains_and_the_key_suits_the_certificate() {
        let csr = |names: &[&str]| ReissueKey::Csr {
            algorithm: KeyAlgorithm::Rsa3072,
            names: names.iter().map(|n| name(n)).collect(),
            public_key_sha256: "ab".into(),
            public_key_der: vec![1, 2, 3],
        };
        let state = issued(Original::default());
        refused(
            apply(
                state.clone(),
                &Command::RequestReissue(reissue(csr(&["www.example.com"]))),
            ),
            Rule::Rei7,
            Reason::CsrDomainMismatch,
        );
        assert!(
            apply(
                state.clone(),
                &Command::RequestReissue(reissue(csr(&["www.example.com", "api.example.com"])))
            )
            .is_ok()
        );
        refused(
            apply(
                state.clone(),
                &Command::RequestReissue(reissue(generated(KeyAlgorithm::Sm2))),
            ),
            Rule::Rei7,
            Reason::KeyPolicyViolation,
        );
        // An SM2 certificate takes SM2 keys only.
        let sm2 = issued(Original {
            brand: Brand::DnsPod,
            algorithm: KeyAlgorithm::Sm2,
            ..Original::default()
        });
        refused(
            apply(
                sm2.clone(),
                &Command::RequestReissue(reissue(generated(KeyAlgorithm::EccP256))),
            ),
            Rule::Rei7,
            Reason::KeyPolicyViolation,
        );
        assert!(
            apply(
                sm2,
                &Command::RequestReissue(reissue(generated(KeyAlgorithm::Sm2)))
            )
            .is_ok()
        );
        // Domains not on the original are bad input.
        let err = apply(
            state,
            &Command::RequestReissue(RequestReissue {
                domains: vec!["other.example.net".into()],
                ..reissue(ReissueKey::Original)
            }),
        )
        .expect_err("not on the certificate");
        assert_eq!(err.reason(), Reason::InvalidDomainName);
    }

    #[test]
    fn rei8_wotrus_and_dnspod_ov_ev_reissues_bind_one_domain() {
        for brand in [Brand::Wotrus, Brand::DnsPod] {
            let state = issued(Original {
                brand,
                level: Level::Ov,
                ..Original::default()
            });
            refused(
                apply(
                    state.clone(),
                    &Command::RequestReissue(reissue(ReissueKey::Original)),
                ),
                Rule::Rei8,
                Reason::SingleDomainRequired,
            );
            let one = RequestReissue {
                domains: vec!["api.example.com".into()],
                ..reissue(ReissueKey::Original)
            };
            assert!(apply(state, &Command::RequestReissue(one)).is_ok());
        }
        // Other brands keep all their domains.
        let geotrust_ov = issued(Original {
            level: Level::Ov,
            ..Original::default()
        });
        assert!(
            apply(
                geotrust_ov,
                &Command::RequestReissue(reissue(ReissueKey::Original))
            )
            .is_ok()
        );
    }

    #[test]
    fn rei9_validation_unless_the_original_key_or_a_fresh_issue() {
        let state = issued(Original::default());
        let original_key = apply(
            state.clone(),
            &Command::RequestReissue(reissue(ReissueKey::Original)),
        )
        .expect("requested");
        assert!(!requested(&original_key).needs_validation);
        let new_key = apply(
            state,
            &Command::RequestReissue(reissue(generated(KeyAlgorithm::EccP256))),
        )
        .expect("requested");
        assert!(requested(&new_key).needs_validation);
        let fresh = issued(Original {
            issued_days_ago: 2,
            ..Original::default()
        });
        let fresh = apply(
            fresh,
            &Command::RequestReissue(reissue(generated(KeyAlgorithm::EccP256))),
        )
        .expect("requested");
        assert!(
            !requested(&fresh).needs_validation,
            "less than 3 days after issue"
        );
    }

    #[test]
    fn rei9_a_reissue_that_needs_validation_gets_challenges_and_waits_for_them() {
        use crate::reactions::{
            ValidationFor, expire_validation, issue_reissue_challenges, open_challenges,
            record_proofs,
        };
        let policy = Policy::default();
        let pending = apply(
            issued(Original::default()),
            &Command::RequestReissue(reissue(generated(KeyAlgorithm::EccP256))),
        )
        .expect("requested");
        assert!(!ready_to_issue(&pending, "r-1"), "not before validation");
        let events = issue_reissue_challenges(&pending, now(), &policy, || "v-1".into());
        let state = replay(pending, &CommandId("challenges".into()), &events);
        let subject = ValidationFor::Reissue("r-1".into());
        // www.example.com has DNS_AUTO; api.example.com waits for the customer.
        let open = open_challenges(&state, &subject);
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].0, name("api.example.com"));
        assert!(
            issue_reissue_challenges(&state, now(), &policy, || "v-2".into()).is_empty(),
            "once"
        );
        // Proven: ready to issue.
        let proofs = record_proofs(
            &state,
            &subject,
            &[(name("api.example.com"), "v-1".into())],
            now(),
        );
        let proven = replay(state.clone(), &CommandId("proofs".into()), &proofs);
        assert!(ready_to_issue(&proven, "r-1"));
        // Or the deadline passes: the reissue fails and frees the certificate (REI-11).
        let deadline = now().plus(policy.validation_window);
        let expired = expire_validation(&state, &subject, deadline);
        let expired = replay(state, &CommandId("expired".into()), &expired);
        let events = conclude_reissue_validation(&expired, "r-1", deadline);
        assert!(matches!(
            events.as_slice(),
            [Event::ReissueFailed(ReissueFailed {
                cause: ReissueFailure::ValidationExpired,
                ..
            })]
        ));
        let ended = replay(expired, &CommandId("failed".into()), &events);
        assert!(ended.as_ref().is_some_and(|c| c.pending_reissue.is_none()));
    }

    #[test]
    fn rei10_ov_ev_needs_approval_only_when_enterprise_info_changes() {
        let ov = issued(Original {
            level: Level::Ov,
            ..Original::default()
        });
        let same = apply(
            ov.clone(),
            &Command::RequestReissue(RequestReissue {
                enterprise_info: BTreeMap::from([("organization".into(), "Acme".into())]),
                ..reissue(ReissueKey::Original)
            }),
        )
        .expect("requested");
        assert!(!requested(&same).needs_review);
        let changed = apply(
            ov,
            &Command::RequestReissue(RequestReissue {
                enterprise_info: BTreeMap::from([("organization".into(), "Acme Holdings".into())]),
                ..reissue(ReissueKey::Original)
            }),
        )
        .expect("requested");
        assert!(requested(&changed).needs_review);
        // DV needs none, whatever the request says.
        let dv = apply(
            issued(Original::default()),
            &Command::RequestReissue(RequestReissue {
                enterprise_info: BTreeMap::from([("organization".into(), "Other".into())]),
                ..reissue(ReissueKey::Original)
            }),
        )
        .expect("requested");
        assert!(!requested(&dv).needs_review);
    }

    #[test]
    fn rei10_a_reviewer_approves_or_rejects_a_reissue_with_new_enterprise_info() {
        use crate::command::DecideReview;
        use crate::context::{Actor, Role};
        use crate::lifecycle::review::queue_reissue_review;
        let policy = Policy::default();
        let ov = issued(Original {
            level: Level::Ov,
            ..Original::default()
        });
        let pending = apply(
            ov,
            &Command::RequestReissue(RequestReissue {
                enterprise_info: BTreeMap::from([("organization".into(), "Acme Holdings".into())]),
                ..reissue(ReissueKey::Original)
            }),
        )
        .expect("requested");
        assert!(!ready_to_issue(&pending, "r-1"), "not before approval");
        let queued = queue_reissue_review(&pending, now(), &policy);
        let state = replay(pending, &CommandId("queued".into()), &queued);
        assert!(
            queue_reissue_review(&state, now(), &policy).is_empty(),
            "once"
        );
        let task = state
            .as_ref()
            .and_then(|c| c.pending_reissue.as_ref())
            .and_then(|p| p.review.as_ref())
            .map(|r| r.task_id.clone())
            .expect("task");
        assert_eq!(task, "orig/reissue/r-1");
        let decide_as = |state: &State, actor: &Actor, approve: bool| {
            let command_id = CommandId(format!("d-{approve}-{}", actor.subject));
            let ctx = Context {
                now: now(),
                command_id: &command_id,
                actor,
                policy: &policy,
            };
            let command = Command::DecideReview(DecideReview {
                id: id("orig"),
                task_id: task.clone(),
                approve,
                comment: "checked".into(),
            });
            decide(state, &command, &ctx).map(|events| replay(state.clone(), &command_id, &events))
        };
        let reviewer = Actor {
            subject: "rita".into(),
            account: "reviewers".into(),
            roles: vec![Role::Reviewer],
        };
        // REV-R2: the requesting account's reviewers may not decide.
        let own = Actor {
            subject: "acme-reviewer".into(),
            account: "acme".into(),
            roles: vec![Role::Reviewer],
        };
        assert_eq!(
            decide_as(&state, &own, true)
                .expect_err("self review")
                .reason(),
            Reason::SelfReviewForbidden
        );
        let approved = decide_as(&state, &reviewer, true).expect("approved");
        assert!(ready_to_issue(&approved, "r-1"));
        let cert = approved.as_ref().expect("cert");
        let issued =
            reissued_certificate(cert, cert.pending_reissue.as_ref().expect("pending"), now());
        assert_eq!(
            issued
                .enterprise_info
                .get("organization")
                .map(String::as_str),
            Some("Acme Holdings"),
            "the approved details"
        );
        let rejected = decide_as(&state, &reviewer, false).expect("rejected");
        let events = conclude_reissue_review(&rejected, "r-1", now());
        assert!(matches!(
            events.as_slice(),
            [Event::ReissueFailed(ReissueFailed {
                cause: ReissueFailure::ReviewRejected,
                ..
            })]
        ));
        // The revocation's review is untouched by all this.
        assert!(rejected.as_ref().is_some_and(|c| c.revocation.is_none()));
    }

    #[test]
    fn rei11_a_reissue_ends_completed_or_failed_and_frees_the_certificate() {
        let pending = apply(
            issued(Original::default()),
            &Command::RequestReissue(reissue(ReissueKey::Original)),
        )
        .expect("requested");
        let completed = replay(
            pending.clone(),
            &CommandId("done".into()),
            &complete_reissue(&pending, "r-1", now()),
        );
        let cert = completed.as_ref().expect("cert");
        assert!(cert.pending_reissue.is_none());
        assert!(cert.reissues.contains(&id("orig-r1")));
        assert_eq!(cert.status(now()), Status::Issued);
        assert!(
            complete_reissue(&completed, "r-1", now()).is_empty(),
            "once"
        );
        let failed = replay(
            pending.clone(),
            &CommandId("failed".into()),
            &fail_reissue(&pending, "r-1", ReissueFailure::ValidationExpired, now()),
        );
        assert!(
            failed
                .as_ref()
                .is_some_and(|c| c.pending_reissue.is_none() && c.reissues.is_empty())
        );
        assert!(
            fail_reissue(&pending, "another", ReissueFailure::ReviewRejected, now()).is_empty()
        );
    }

    #[test]
    fn rei12_a_reissue_carries_a_short_reason() {
        let state = issued(Original::default());
        for reason in ["", "   ", &"x".repeat(501)] {
            let err = apply(
                state.clone(),
                &Command::RequestReissue(RequestReissue {
                    reason: reason.to_string(),
                    ..reissue(ReissueKey::Original)
                }),
            )
            .expect_err("refused");
            assert_eq!(err.kind(), crate::ErrorKind::InvalidArgument);
            assert_eq!(err.rule(), Some(Rule::Rei12));
        }
    }
}
