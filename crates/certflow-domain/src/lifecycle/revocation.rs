//! Revocation (REV-1 … REV-17): whether a certificate may be revoked, the path its
//! revocation takes by brand and level (REV-10), the events that revoke it, and what a
//! pending revocation means for downloads (REV-8) and for cancelling (REV-7). Validation
//! and review, which some paths wait for, are their own modules.
//!
//! Revoking reads the reissue pending on a certificate: REV-14 ends that reissue with the
//! revocation.

use crate::command::{RequestRevocation, RevokeByKeyProof};
use crate::context::{Actor, Context, visible};
use crate::error::{DomainError, Reason, Rule};
use crate::event::{CertificateRevoked, Event, ReissueFailed, ReissueFailure, RevocationRequested};
use crate::names::DomainName;
use crate::state::{Certificate, FailedRevocation, Revocation, State, Status};
use crate::time::Timestamp;
use crate::values::{
    Brand, CertificateId, Level, RevocationCause, RevocationPath, RevocationReason, Source,
    ValidationMethod, ValidationSetup,
};

/// Longest description accepted.
const MAX_TEXT: usize = 2_000;

/// REV-10: the path a revocation of `cert` takes.
pub fn revocation_path(cert: &Certificate) -> RevocationPath {
    let every_domain = |ok: &dyn Fn(ValidationSetup) -> bool| {
        cert.domains.iter().all(|d| ok(cert.validation_for(d)))
    };
    let automatic = |v: ValidationSetup| v != ValidationSetup::None;
    match (cert.brand, cert.level) {
        (Brand::Wotrus, _) | (Brand::DnsPod, Level::Dv) => RevocationPath::ManualReview {
            document_required: false,
        },
        (Brand::DnsPod, Level::Ov | Level::Ev) => RevocationPath::ManualReview {
            document_required: true,
        },
        (brand, Level::Dv) => {
            let trustasia_multi_year_wildcard = brand == Brand::TrustAsia
                && (2..=3).contains(&cert.term_years)
                && cert.domains.iter().any(DomainName::is_wildcard);
            if trustasia_multi_year_wildcard && every_domain(&automatic) {
                RevocationPath::Immediate
            } else if every_domain(&|v| v == ValidationSetup::DnsAuto) {
                RevocationPath::AutomaticValidation
            } else {
                RevocationPath::DomainValidation
            }
        }
        (_, Level::Ov | Level::Ev) => RevocationPath::ManualReview {
            document_required: !every_domain(&automatic),
        },
    }
}

/// REV-1 … REV-10, REV-17: what a revocation request means on the certificate. A path that needs
/// nothing more revokes at once; the others wait for a validation or a review.
pub(crate) fn decide_revocation(
    cert: &Certificate,
    cmd: &RequestRevocation,
    ctx: &Context<'_>,
) -> Result<Vec<Event>, DomainError> {
    let reason = RevocationReason::from_rfc5280_code(cmd.reason_code)?;
    if cmd.description.chars().count() > MAX_TEXT {
        return Err(DomainError::invalid(
            Reason::InvalidArgument,
            format!("the description is longer than {MAX_TEXT} characters"),
        ));
    }
    revocable(cert, ctx)?;
    if cmd.validation_method == ValidationMethod::DnsAuto {
        return Err(DomainError::invalid(
            Reason::InvalidArgument,
            "DNS_AUTO is set up per domain, not chosen per request; choose DNS or FILE for \
             the domains without it",
        ));
    }
    let path = revocation_path(cert);
    crate::text::free_text("description", &cmd.description)?;
    if path.needs_review() && cmd.description.trim().is_empty() {
        return Err(DomainError::invalid_by(
            Rule::Rev9,
            Reason::RevocationDescriptionRequired,
            "a reviewer decides this revocation: describe why the certificate must be revoked",
        ));
    }
    let requested = Event::RevocationRequested(RevocationRequested {
        reason,
        description: cmd.description.trim().to_string(),
        path,
        requested_at: ctx.now,
        validation_method: cmd.validation_method,
        requested_by: ctx.actor.account.clone(),
    });
    match path {
        RevocationPath::Immediate | RevocationPath::AutomaticValidation => {
            let mut events = vec![requested];
            events.extend(revoked(cert, reason, RevocationCause::Requested, ctx.now));
            Ok(events)
        }
        RevocationPath::DomainValidation | RevocationPath::ManualReview { .. } => {
            Ok(vec![requested])
        }
    }
}

/// REV-16 with REV-1 … REV-6 and REV-17: a revocation proven by the certificate's private
/// key. Holding the key is proof that it is compromised, so the reason is `keyCompromise`
/// whatever was asked, and the revocation is immediate whatever the path (REV-10's
/// validations and reviews prove control of the names or the organisation; the key proves
/// more). The proof is checked against the certificate's own key; a certificate whose key
/// does not match is not found, as one of another account would be.
pub(crate) fn decide_key_proof(
    state: &State,
    cmd: &RevokeByKeyProof,
    ctx: &Context<'_>,
) -> Result<Vec<Event>, DomainError> {
    let cert = match state {
        Some(cert)
            if !cert.deleted
                && cert.public_key_sha256.as_deref() == Some(cmd.public_key_sha256.as_str()) =>
        {
            cert
        }
        _ => return Err(DomainError::not_found(&cmd.id)),
    };
    revocable(cert, ctx)?;
    Ok(revoked(
        cert,
        RevocationReason::KeyCompromise,
        RevocationCause::KeyProven,
        ctx.now,
    ))
}

/// Whether `cert` may be revoked self-service now: issued here (REV-1), neither revoked
/// (REV-17), being revoked nor expired (REV-2), an original (REV-4), not issued before the
/// cut-off (REV-6), and not expiring with a renewal ordered (REV-3).
fn revocable(cert: &Certificate, ctx: &Context<'_>) -> Result<(), DomainError> {
    if cert.source == Source::Uploaded {
        return Err(DomainError::refused(
            Rule::Rev1,
            Reason::UploadedCertNotRevocable,
            "an uploaded certificate was not issued here and cannot be revoked here; \
             ask its issuing CA, or delete it from your account",
        ));
    }
    match cert.status(ctx.now) {
        Status::Revoked => {
            return Err(DomainError::refused(
                Rule::Rev17,
                Reason::AlreadyRevoked,
                "the certificate is already revoked; nothing more to do",
            ));
        }
        Status::RevocationPending => {
            return Err(DomainError::refused(
                Rule::Rev2,
                Reason::RevocationInProgress,
                "a revocation of this certificate is already in progress; follow it with \
                 GetCertificate",
            ));
        }
        Status::Expired => {
            return Err(DomainError::refused(
                Rule::Rev2,
                Reason::CertExpired,
                "the certificate has expired and no longer needs revoking",
            ));
        }
        Status::Issued | Status::ReissuePending | Status::Deleted => {}
    }
    if let Some(original) = &cert.original {
        return Err(DomainError::refused(
            Rule::Rev4,
            Reason::ReissuedCertNotRevocable,
            format!("this certificate was reissued from {original}; revoke {original} instead"),
        ));
    }
    if cert.issued_at < ctx.policy.legacy_cutoff {
        return Err(DomainError::refused(
            Rule::Rev6,
            Reason::LegacyCertContactSupport,
            "certificates issued before 2020-03-25 cannot be revoked self-service; \
             contact support to revoke it",
        ));
    }
    let own_renewal_rules = matches!(cert.brand, Brand::Wotrus | Brand::DnsPod);
    let remaining = cert.not_after.since(ctx.now);
    if !own_renewal_rules && cert.renewal_ordered && remaining <= ctx.policy.renewal_window {
        return Err(DomainError::refused(
            Rule::Rev3,
            Reason::ExpiringRenewalNotRevocable,
            "the certificate expires within 30 days and a renewal is ordered; deploy the \
             renewed certificate and let this one expire",
        ));
    }
    Ok(())
}

/// The events that revoke `cert`: the revocation, and (REV-14) the end of a reissue of it
/// that is still pending, which frees that reissue's locks.
pub(crate) fn revoked(
    cert: &Certificate,
    reason: RevocationReason,
    cause: RevocationCause,
    now: Timestamp,
) -> Vec<Event> {
    let mut events = vec![Event::Revoked(CertificateRevoked {
        reason,
        revoked_at: now,
        cause,
    })];
    if let Some(pending) = &cert.pending_reissue {
        events.push(Event::ReissueFailed(ReissueFailed {
            reissue_id: pending.reissue_id.clone(),
            cause: ReissueFailure::OriginalRevoked,
            failed_at: now,
        }));
    }
    events
}

/// REV-7: a submitted revocation cannot be cancelled. There is no command that would; this
/// is the answer to a caller who asks.
pub fn cancel_revocation(state: &State, id: &CertificateId, actor: &Actor) -> DomainError {
    match visible(state, id, actor) {
        Err(not_found) => not_found,
        Ok(cert) if cert.pending_revocation().is_some() => DomainError::refused(
            Rule::Rev7,
            Reason::RevocationNotCancellable,
            "a submitted revocation cannot be cancelled; it ends by revoking, or when its \
             validation fails or a reviewer rejects it",
        ),
        Ok(_) => DomainError::refused(
            Rule::Rev7,
            Reason::RevocationNotCancellable,
            "there is no revocation in progress to cancel, and a revocation cannot be \
             cancelled once submitted",
        ),
    }
}

/// DL-1 and REV-8: the certificate `actor` may download. From the moment a revocation is
/// requested it may not be downloaded (nor once revoked); a failed or rejected revocation
/// makes it downloadable again.
pub fn downloadable<'s>(
    state: &'s State,
    id: &CertificateId,
    actor: &Actor,
    now: Timestamp,
) -> Result<&'s Certificate, DomainError> {
    let cert = visible(state, id, actor)?;
    match cert.status(now) {
        Status::RevocationPending | Status::Revoked => Err(DomainError::refused(
            Rule::Rev8,
            Reason::RevocationRequested,
            "a revocation of this certificate was requested, so it can no longer be \
             downloaded or deployed; issue or reissue another certificate",
        )),
        _ => Ok(cert),
    }
}

/// The state after a revocation event: requested, revoked (REV-17: the first revocation
/// time stays), or ended without revoking (REV-8: the certificate is `ISSUED` again).
pub(crate) fn evolve_revocation(cert: &mut Certificate, event: &Event) {
    match event {
        Event::RevocationRequested(e) => {
            cert.revocation = Some(Revocation {
                reason: e.reason,
                description: e.description.clone(),
                path: e.path,
                requested_at: e.requested_at,
                validation_method: e.validation_method,
                validation: None,
                revoked_at: None,
                cause: None,
                requested_by: e.requested_by.clone(),
                document: None,
                review: None,
            });
        }
        Event::Revoked(e) => {
            match &mut cert.revocation {
                // REV-17: the first revocation time is the one that stays.
                Some(Revocation {
                    revoked_at: Some(_),
                    ..
                }) => {}
                Some(revocation) => {
                    revocation.reason = e.reason;
                    revocation.revoked_at = Some(e.revoked_at);
                    revocation.cause = Some(e.cause.clone());
                }
                None => {
                    cert.revocation = Some(Revocation {
                        reason: e.reason,
                        description: String::new(),
                        path: RevocationPath::Immediate,
                        requested_at: e.revoked_at,
                        validation_method: ValidationMethod::Dns,
                        validation: None,
                        revoked_at: Some(e.revoked_at),
                        cause: Some(e.cause.clone()),
                        requested_by: String::new(),
                        document: None,
                        review: None,
                    });
                }
            }
        }
        Event::RevocationFailed(e) => {
            if let Some(revocation) = cert.revocation.take_if(|r| r.revoked_at.is_none()) {
                cert.failed_revocation = Some(FailedRevocation {
                    reason: revocation.reason,
                    requested_at: revocation.requested_at,
                    failed_at: e.failed_at,
                    failure: e.failure,
                });
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::command::{Command, CommandId, IssueCertificate, UploadCertificate};
    use crate::context::Context;
    use crate::lifecycle::{decide, evolve, replay};
    use crate::policy::Policy;
    use crate::testing::{
        DAY, admin, check, check_as, customer, id, issue, legacy_record, now, refused_with, revoke,
        state_after, types,
    };
    use crate::time::Duration;
    use crate::values::KeyAlgorithm;

    #[test]
    fn rev1_uploaded_certificates_are_not_revocable() {
        let upload = Command::Upload(UploadCertificate {
            id: id(),
            account: "acme".into(),
            level: Level::Dv,
            algorithm: KeyAlgorithm::EccP256,
            domains: vec![DomainName::parse("example.org").expect("valid")],
            not_before: now().minus(DAY),
            not_after: now().plus(DAY.times(90)),
            public_key_sha256: "ab".into(),
            serial_number: "01".into(),
            issuer: "CN=Other CA".into(),
            pem: String::new(),
            private_key_id: None,
        });
        refused_with(
            check(&[upload], revoke(0)),
            Rule::Rev1,
            Reason::UploadedCertNotRevocable,
        );
    }

    #[test]
    fn rev2_pending_revocation_refuses_another() {
        let wotrus = IssueCertificate {
            brand: Brand::Wotrus,
            ..issue()
        };
        let pending = Command::RequestRevocation(RequestRevocation {
            id: id(),
            reason_code: 4,
            description: "moved to another CA".into(),
            validation_method: ValidationMethod::Dns,
        });
        refused_with(
            check(&[Command::Issue(wotrus), pending], revoke(4)),
            Rule::Rev2,
            Reason::RevocationInProgress,
        );
    }

    #[test]
    fn rev2_expired_certificate_is_not_revocable() {
        let expired = IssueCertificate {
            not_before: Some(now().minus(DAY.times(300))),
            not_after: Some(now().minus(DAY)),
            ..issue()
        };
        refused_with(
            check(&[Command::Issue(expired)], revoke(0)),
            Rule::Rev2,
            Reason::CertExpired,
        );
    }

    #[test]
    fn rev3_expiring_with_renewal_ordered_is_not_revocable() {
        let expiring = IssueCertificate {
            not_after: Some(now().plus(DAY.times(30))),
            renewal_ordered: true,
            ..issue()
        };
        refused_with(
            check(&[Command::Issue(expiring.clone())], revoke(0)),
            Rule::Rev3,
            Reason::ExpiringRenewalNotRevocable,
        );
        // Without a renewal, or with 31 days left, it may be revoked.
        let no_renewal = IssueCertificate {
            renewal_ordered: false,
            ..expiring.clone()
        };
        assert!(check(&[Command::Issue(no_renewal)], revoke(0)).is_ok());
        let further = IssueCertificate {
            not_after: Some(now().plus(DAY.times(31))),
            ..expiring.clone()
        };
        assert!(check(&[Command::Issue(further)], revoke(0)).is_ok());
        // Wotrus and DNSPod are exempt: they go to review instead.
        let wotrus = IssueCertificate {
            brand: Brand::Wotrus,
            ..expiring
        };
        let with_description = Command::RequestRevocation(RequestRevocation {
            id: id(),
            reason_code: 0,
            description: "no longer used".into(),
            validation_method: ValidationMethod::Dns,
        });
        assert!(check(&[Command::Issue(wotrus)], with_description).is_ok());
    }

    #[test]
    fn rev4_reissued_certificate_is_revoked_through_its_original() {
        let mut state = state_after(&[Command::Issue(issue())]);
        if let Some(cert) = &mut state {
            cert.original = Some(CertificateId::parse("orig-1").expect("valid"));
        }
        let command_id = CommandId("when".into());
        let ctx = Context {
            now: now(),
            command_id: &command_id,
            actor: &admin(),
            policy: &Policy::default(),
        };
        refused_with(
            decide(&state, &revoke(0), &ctx),
            Rule::Rev4,
            Reason::ReissuedCertNotRevocable,
        );
    }

    #[test]
    fn rev6_legacy_certificates_need_support() {
        // 2020-03-24T23:59:59Z, one second before the cut-off.
        let before = Timestamp::from_unix_seconds(1_585_094_399);
        let legacy = legacy_record(before, now().plus(DAY.times(100)));
        refused_with(
            check(&[legacy], revoke(0)),
            Rule::Rev6,
            Reason::LegacyCertContactSupport,
        );
        let at_cutoff = legacy_record(before.plus(Duration::seconds(1)), now().plus(DAY));
        assert!(check(&[at_cutoff], revoke(0)).is_ok());
    }

    #[test]
    fn rev8_no_download_once_a_revocation_is_requested() {
        let now = now();
        let issued = state_after(&[Command::Issue(issue())]);
        assert!(downloadable(&issued, &id(), &customer("acme"), now).is_ok());
        let err = downloadable(&issued, &id(), &customer("globex"), now).expect_err("hidden");
        assert_eq!(err.reason(), Reason::NotFound);

        let wotrus = IssueCertificate {
            brand: Brand::Wotrus,
            ..issue()
        };
        let pending = Command::RequestRevocation(RequestRevocation {
            id: id(),
            reason_code: 0,
            description: "decommissioned".into(),
            validation_method: ValidationMethod::Dns,
        });
        let state = state_after(&[Command::Issue(wotrus), pending]);
        refused_with(
            downloadable(&state, &id(), &admin(), now).map(|_| Vec::new()),
            Rule::Rev8,
            Reason::RevocationRequested,
        );
        let revoked = state_after(&[Command::Issue(issue()), revoke(1)]);
        refused_with(
            downloadable(&revoked, &id(), &admin(), now).map(|_| Vec::new()),
            Rule::Rev8,
            Reason::RevocationRequested,
        );
    }

    #[test]
    fn rev9_only_the_five_allowed_reason_codes() {
        for code in [0, 1, 3, 4, 5] {
            let events = check(&[Command::Issue(issue())], revoke(code)).expect("allowed");
            let Some(Event::Revoked(revoked)) = events.last() else {
                panic!("expected a revocation, got {events:?}");
            };
            assert_eq!(revoked.reason.rfc5280_code(), code);
        }
        for code in [-1, 2, 6, 7, 8, 9, 10, 99] {
            let err = check(&[Command::Issue(issue())], revoke(code)).expect_err("refused");
            assert_eq!(err.reason(), Reason::InvalidRevocationReason, "code {code}");
            assert_eq!(err.rule(), Some(Rule::Rev9));
            assert_eq!(err.kind(), crate::ErrorKind::InvalidArgument);
        }
    }

    #[test]
    fn rev9_description_required_where_review_follows() {
        let wotrus = IssueCertificate {
            brand: Brand::Wotrus,
            ..issue()
        };
        refused_with(
            check(&[Command::Issue(wotrus)], revoke(0)),
            Rule::Rev9,
            Reason::RevocationDescriptionRequired,
        );
    }

    #[test]
    fn rev10_paths_by_brand_and_level() {
        let with = |brand, level, term_years, domains: &[&str], setup| {
            let cmd = IssueCertificate {
                brand,
                level,
                term_years,
                domains: domains.iter().map(|d| d.to_string()).collect(),
                validation_setup: domains.iter().map(|d| (d.to_string(), setup)).collect(),
                ..issue()
            };
            let state = state_after(&[Command::Issue(cmd)]);
            revocation_path(state.as_ref().expect("issued"))
        };
        use RevocationPath::*;
        use ValidationSetup::{DnsAuto, FileAuto, None as NoSetup};
        let review = ManualReview {
            document_required: false,
        };
        let review_doc = ManualReview {
            document_required: true,
        };
        let one = &["a.example.com"][..];
        let wild = &["*.example.com"][..];
        assert_eq!(with(Brand::Wotrus, Level::Dv, 1, one, DnsAuto), review);
        assert_eq!(with(Brand::Wotrus, Level::Ev, 1, one, NoSetup), review);
        assert_eq!(with(Brand::DnsPod, Level::Dv, 1, one, NoSetup), review);
        assert_eq!(with(Brand::DnsPod, Level::Ov, 1, one, DnsAuto), review_doc);
        assert_eq!(
            with(Brand::GeoTrust, Level::Dv, 1, one, NoSetup),
            DomainValidation
        );
        assert_eq!(
            with(Brand::GeoTrust, Level::Dv, 1, one, FileAuto),
            DomainValidation
        );
        assert_eq!(
            with(Brand::GeoTrust, Level::Dv, 1, one, DnsAuto),
            AutomaticValidation
        );
        assert_eq!(
            with(Brand::TrustAsia, Level::Dv, 2, wild, FileAuto),
            Immediate
        );
        assert_eq!(
            with(Brand::TrustAsia, Level::Dv, 3, wild, DnsAuto),
            Immediate
        );
        assert_eq!(
            with(Brand::TrustAsia, Level::Dv, 1, wild, FileAuto),
            DomainValidation
        );
        assert_eq!(
            with(Brand::TrustAsia, Level::Dv, 2, one, FileAuto),
            DomainValidation
        );
        assert_eq!(
            with(Brand::TrustAsia, Level::Dv, 2, wild, NoSetup),
            DomainValidation
        );
        assert_eq!(
            with(Brand::DigiCert, Level::Ov, 1, one, NoSetup),
            review_doc
        );
        assert_eq!(with(Brand::DigiCert, Level::Ev, 1, one, FileAuto), review);
    }

    #[test]
    fn rev10_dns_auto_dv_is_revoked_at_once() {
        let events = check(&[Command::Issue(issue())], revoke(1)).expect("accepted");
        assert_eq!(
            types(&events),
            ["RevocationRequested", "CertificateRevoked"]
        );
        let state = replay(
            state_after(&[Command::Issue(issue())]),
            &CommandId("r".into()),
            &events,
        );
        assert_eq!(state.expect("exists").status(now()), Status::Revoked);
    }

    #[test]
    fn rev10_validation_and_review_paths_leave_the_revocation_pending() {
        let manual_dns = IssueCertificate {
            validation_setup: BTreeMap::new(),
            ..issue()
        };
        let events = check(&[Command::Issue(manual_dns.clone())], revoke(0)).expect("accepted");
        assert_eq!(types(&events), ["RevocationRequested"]);
        let state = replay(
            state_after(&[Command::Issue(manual_dns)]),
            &CommandId("r".into()),
            &events,
        );
        assert_eq!(
            state.expect("exists").status(now()),
            Status::RevocationPending
        );
    }

    #[test]
    fn rev17_revoking_again_is_already_revoked_and_keeps_the_time() {
        let given = [Command::Issue(issue()), revoke(1)];
        refused_with(
            check(&given, revoke(1)),
            Rule::Rev17,
            Reason::AlreadyRevoked,
        );
        let state = state_after(&given).expect("exists");
        let first_time = state.revocation.as_ref().and_then(|r| r.revoked_at);
        // A second revoked event (e.g. a cascade racing a direct revocation) keeps the first time.
        let later = Event::Revoked(CertificateRevoked {
            reason: RevocationReason::Superseded,
            revoked_at: now().plus(DAY),
            cause: RevocationCause::Requested,
        });
        let after = evolve(Some(state), &later).expect("exists");
        assert_eq!(after.revocation.and_then(|r| r.revoked_at), first_time);
    }

    #[test]
    fn gen3_another_accounts_certificate_is_not_found() {
        let err = check_as(&customer("globex"), &[Command::Issue(issue())], revoke(0))
            .expect_err("refused");
        assert_eq!(err.reason(), Reason::NotFound);
        assert!(check_as(&customer("acme"), &[Command::Issue(issue())], revoke(0)).is_ok());
    }

    #[test]
    fn unknown_certificate_is_not_found() {
        let err = check(&[], revoke(0)).expect_err("refused");
        assert_eq!(err.reason(), Reason::NotFound);
        assert_eq!(err.kind(), crate::ErrorKind::NotFound);
    }

    /// The state after `given`, the certificate carrying public key `key` (as the issuance
    /// service's X.509 facts would give it).
    fn with_key(given: &[Command], key: &str) -> State {
        let mut state = state_after(given);
        if let Some(cert) = state.as_mut() {
            cert.public_key_sha256 = Some(key.into());
        }
        state
    }

    /// `command` decided for someone who proved they hold a key, and nothing else.
    fn as_key_holder(state: &State, command: &Command) -> Result<Vec<Event>, DomainError> {
        let holder = Actor {
            subject: "acme-key:thumbprint".into(),
            account: String::new(),
            roles: vec![],
        };
        let command_id = CommandId("key-proof".into());
        let ctx = Context {
            now: now(),
            command_id: &command_id,
            actor: &holder,
            policy: &Policy::default(),
        };
        decide(state, command, &ctx)
    }

    fn key_proof(key: &str) -> Command {
        Command::RevokeByKeyProof(RevokeByKeyProof {
            id: id(),
            public_key_sha256: key.into(),
        })
    }

    #[test]
    fn rev16_the_holder_of_the_key_revokes_at_once_for_key_compromise_whatever_the_path() {
        // Wotrus goes to a reviewer (REV-10) and a DV by DNS waits for validation; the key
        // proves more than either.
        for brand in [Brand::Wotrus, Brand::GeoTrust] {
            let given = [Command::Issue(IssueCertificate { brand, ..issue() })];
            let events = as_key_holder(&with_key(&given, "ab"), &key_proof("ab")).expect("revoked");
            assert_eq!(types(&events), ["CertificateRevoked"], "{brand:?}");
            let Event::Revoked(revoked) = &events[0] else {
                panic!("{events:?}");
            };
            assert_eq!(revoked.reason, RevocationReason::KeyCompromise);
            assert_eq!(revoked.cause, RevocationCause::KeyProven);
        }
    }

    #[test]
    fn rev16_a_proof_with_another_key_finds_no_certificate() {
        let given = [Command::Issue(issue())];
        for state in [with_key(&given, "ab"), state_after(&given), None] {
            let err = as_key_holder(&state, &key_proof("cd")).expect_err("refused");
            assert_eq!(err.reason(), Reason::NotFound, "{err}");
        }
    }

    #[test]
    fn rev17_rev2_the_key_proves_nothing_the_rules_refuse() {
        let revoked = with_key(&[Command::Issue(issue()), revoke(1)], "ab");
        refused_with(
            as_key_holder(&revoked, &key_proof("ab")),
            Rule::Rev17,
            Reason::AlreadyRevoked,
        );
        let expired = with_key(
            &[Command::Issue(IssueCertificate {
                not_before: Some(now().minus(DAY.times(100))),
                not_after: Some(now().minus(DAY)),
                ..issue()
            })],
            "ab",
        );
        refused_with(
            as_key_holder(&expired, &key_proof("ab")),
            Rule::Rev2,
            Reason::CertExpired,
        );
    }
}
