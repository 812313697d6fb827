//! `decide` and `evolve`: the rules, as pure functions of state, command and context.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::certificate::{
    Actor, Brand, Certificate, DomainValidation, FailedRevocation, KeyAlgorithm, Level, Revocation,
    RevocationCause, RevocationPath, RevocationReason, Role, Source, Status, ValidationMethod,
    ValidationOutcome, ValidationSetup,
};
use crate::command::{
    Command, CommandId, DeleteCertificate, IssueCertificate, OrderRenewal, RecordLegacyCertificate,
    RequestRevocation, UploadCertificate,
};
use crate::error::{DomainError, Reason, Rule};
use crate::event::{
    CertificateDeleted, CertificateIssued, CertificateRevoked, CertificateUploaded, Event,
    ReissueFailed, ReissueFailure, RenewalOrdered, RevocationRequested, X509Facts,
};
use crate::names::DomainName;
use crate::time::{Duration, Timestamp};

/// A certificate's state: `None` until its first event.
pub type State = Option<Certificate>;

/// The durations and dates the rules depend on. Defaults follow `RULES.md`; tests shrink them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// REV-3: a renewal ordered this close to expiry blocks revocation.
    pub renewal_window: Duration,
    /// REV-11: how long a domain validation challenge stays open.
    pub validation_window: Duration,
    /// REV-6: certificates issued before this are revoked by support only.
    pub legacy_cutoff: Timestamp,
    /// CA-3: how long before it is signed a certificate may start (clock skew), and how
    /// long after.
    pub backdate: Duration,
    /// REV-R3: distinct approvals a review needs, by brand and level; 1 where not listed.
    pub review_approvals: HashMap<(Brand, Level), u32>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            renewal_window: Duration::days(30),
            validation_window: Duration::days(3),
            // 2020-03-25T00:00:00Z
            legacy_cutoff: Timestamp::from_unix_seconds(1_585_094_400),
            backdate: Duration::seconds(3600),
            review_approvals: HashMap::new(),
        }
    }
}

/// What a decision may depend on besides state and command.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    pub now: Timestamp,
    pub command_id: &'a CommandId,
    pub actor: &'a Actor,
    pub policy: &'a Policy,
}

/// Longest free-text field accepted (descriptions, accounts).
const MAX_TEXT: usize = 2_000;
/// Most names one certificate may carry.
const MAX_DOMAINS: usize = 250;

/// What `command` means on `state`: the events to append, or the refusal.
///
/// A command whose id the state has already applied yields no events (GEN-1): the caller
/// answers with the current state and appends nothing.
pub fn decide(
    state: &State,
    command: &Command,
    ctx: &Context<'_>,
) -> Result<Vec<Event>, DomainError> {
    if let Some(cert) = state
        && cert.applied_commands.contains(ctx.command_id)
    {
        return Ok(Vec::new());
    }
    match command {
        Command::Issue(cmd) => decide_issue(state, cmd, ctx),
        Command::RecordLegacy(cmd) => decide_record_legacy(state, cmd, ctx),
        Command::Upload(cmd) => decide_upload(state, cmd, ctx),
        Command::RequestRevocation(cmd) => decide_revocation(state, cmd, ctx),
        Command::Delete(cmd) => decide_delete(state, cmd, ctx),
        Command::OrderRenewal(cmd) => decide_renewal(state, cmd, ctx),
        Command::UploadRevocationDocument(cmd) => {
            crate::review::decide_upload_document(state, cmd, ctx)
        }
        Command::DecideReview(cmd) => crate::review::decide_review(state, cmd, ctx),
        Command::RequestReissue(cmd) => crate::reissue::decide_reissue(state, cmd, ctx),
    }
}

/// The state after `event`.
pub fn evolve(state: State, event: &Event) -> State {
    match (state, event) {
        (None, Event::Issued(e)) => Some(Certificate {
            public_key_sha256: e.x509.as_ref().map(|x| x.public_key_sha256.clone()),
            serial_number: e.x509.as_ref().map(|x| x.serial_number.clone()),
            pem: e.x509.as_ref().map(|x| x.pem.clone()),
            chain_pem: e.x509.as_ref().map(|x| x.chain_pem.clone()),
            private_key_id: e.x509.as_ref().and_then(|x| x.private_key_id.clone()),
            id: e.id.clone(),
            account: e.account.clone(),
            brand: e.brand,
            level: e.level,
            paid: e.paid,
            algorithm: e.algorithm,
            domains: e.domains.clone(),
            term_years: e.term_years,
            source: Source::Platform,
            issued_at: e.issued_at,
            not_before: e.not_before,
            not_after: e.not_after,
            original: e.original.clone(),
            validation_setup: e.validation_setup.clone(),
            renewal_ordered: e.renewal_ordered,
            revocation: None,
            failed_revocation: None,
            reissues: BTreeSet::new(),
            pending_reissue: None,
            enterprise_info: e.enterprise_info.clone(),
            deleted: false,
            applied_commands: BTreeSet::new(),
        }),
        (None, Event::Uploaded(e)) => Some(Certificate {
            id: e.id.clone(),
            account: e.account.clone(),
            brand: Brand::Other,
            level: e.level,
            paid: true,
            algorithm: e.algorithm,
            domains: e.domains.clone(),
            term_years: 1,
            source: Source::Uploaded,
            issued_at: e.uploaded_at,
            not_before: e.not_before,
            not_after: e.not_after,
            original: None,
            validation_setup: BTreeMap::new(),
            renewal_ordered: false,
            public_key_sha256: Some(e.public_key_sha256.clone()),
            serial_number: Some(e.serial_number.clone()),
            pem: Some(e.pem.clone()),
            chain_pem: None,
            private_key_id: e.private_key_id.clone(),
            revocation: None,
            failed_revocation: None,
            reissues: BTreeSet::new(),
            pending_reissue: None,
            enterprise_info: BTreeMap::new(),
            deleted: false,
            applied_commands: BTreeSet::new(),
        }),
        (Some(mut cert), Event::RevocationRequested(e)) => {
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
            Some(cert)
        }
        (
            Some(mut cert),
            event @ (Event::RevocationDocumentUploaded(_)
            | Event::ReviewQueued(_)
            | Event::ReviewApproved(_)
            | Event::ReviewPassed(_)
            | Event::ReviewRejected(_)),
        ) => {
            crate::review::evolve_review(&mut cert, event);
            Some(cert)
        }
        (Some(mut cert), event @ (Event::ReissueRequested(_) | Event::ReissueCompleted(_))) => {
            crate::reissue::evolve_reissue(&mut cert, event);
            Some(cert)
        }
        (Some(mut cert), Event::ValidationChallengesIssued(e)) => {
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
            Some(cert)
        }
        (Some(mut cert), Event::DomainValidated(e)) => {
            if let Some(validation) = open_validation(&mut cert, e.reissue_id.as_deref()) {
                for challenge in &mut validation.challenges {
                    if challenge.domain == e.domain && challenge.validated_at.is_none() {
                        challenge.validated_at = Some(e.validated_at);
                    }
                }
            }
            Some(cert)
        }
        (Some(mut cert), Event::ValidationPassed(e)) => {
            if let Some(validation) = open_validation(&mut cert, e.reissue_id.as_deref()) {
                validation.outcome = Some(ValidationOutcome::Passed);
                validation.ended_at = Some(e.passed_at);
            }
            Some(cert)
        }
        (Some(mut cert), Event::ValidationExpired(e)) => {
            if let Some(validation) = open_validation(&mut cert, e.reissue_id.as_deref()) {
                validation.outcome = Some(ValidationOutcome::Expired);
                validation.ended_at = Some(e.expired_at);
            }
            Some(cert)
        }
        (Some(mut cert), Event::RevocationFailed(e)) => {
            if let Some(revocation) = cert.revocation.take_if(|r| r.revoked_at.is_none()) {
                cert.failed_revocation = Some(FailedRevocation {
                    reason: revocation.reason,
                    requested_at: revocation.requested_at,
                    failed_at: e.failed_at,
                    failure: e.failure,
                });
            }
            Some(cert)
        }
        (Some(mut cert), Event::ReissueFailed(e)) => {
            cert.pending_reissue
                .take_if(|pending| pending.reissue_id == e.reissue_id);
            Some(cert)
        }
        (Some(mut cert), Event::Revoked(e)) => {
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
            Some(cert)
        }
        (Some(mut cert), Event::RenewalOrdered(_)) => {
            cert.renewal_ordered = true;
            Some(cert)
        }
        (Some(mut cert), Event::Deleted(_)) => {
            cert.deleted = true;
            Some(cert)
        }
        // An event that does not fit the state changes nothing; the log is the authority
        // and decide never emits such a pair.
        (state, _) => state,
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

/// The state after one appended batch: its events, and its command marked as applied.
pub fn replay(state: State, command_id: &CommandId, events: &[Event]) -> State {
    let mut state = events.iter().fold(state, evolve);
    if let Some(cert) = &mut state {
        cert.applied_commands.insert(command_id.clone());
    }
    state
}

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

fn decide_issue(
    state: &State,
    cmd: &IssueCertificate,
    ctx: &Context<'_>,
) -> Result<Vec<Event>, DomainError> {
    if state.is_some() {
        return Err(DomainError::already_exists(&cmd.id));
    }
    let account = owner_account(ctx.actor, &cmd.account)?;
    if cmd.brand == Brand::Other {
        return Err(DomainError::invalid(
            Reason::InvalidArgument,
            "a platform certificate needs one of the brands this product issues",
        ));
    }
    match cmd.algorithm {
        KeyAlgorithm::Other => {
            return Err(DomainError::invalid(
                Reason::InvalidArgument,
                "key algorithm must be RSA 2048/3072/4096, ECC P-256/P-384 or SM2",
            ));
        }
        KeyAlgorithm::Sm2 if cmd.brand != Brand::DnsPod => {
            return Err(DomainError::invalid(
                Reason::InvalidArgument,
                "SM2 keys are issued for DNSPod GM certificates only",
            ));
        }
        _ => {}
    }
    if !(1..=3).contains(&cmd.term_years) {
        return Err(DomainError::invalid(
            Reason::InvalidArgument,
            format!("term is 1, 2 or 3 years, not {}", cmd.term_years),
        ));
    }
    let domains = checked_domains(cmd.domains.iter().map(String::as_str))?;
    signable_names(&domains)?;
    let validation_setup = checked_setup(&cmd.validation_setup, &domains)?;
    let (not_before, not_after) = crate::validity::decide(
        cmd.not_before,
        cmd.not_after,
        cmd.term_years,
        ctx.now,
        ctx.policy,
    )?;
    Ok(vec![Event::Issued(CertificateIssued {
        id: cmd.id.clone(),
        account,
        brand: cmd.brand,
        level: cmd.level,
        paid: cmd.paid,
        algorithm: cmd.algorithm,
        domains,
        term_years: cmd.term_years,
        issued_at: not_before,
        not_before,
        not_after,
        validation_setup,
        renewal_ordered: cmd.renewal_ordered,
        x509: None,
        original: None,
        enterprise_info: cmd.enterprise_info.clone(),
        legacy: false,
    })])
}

/// CA-3: an administrator records a certificate issued before certflow; its history says
/// so. Its dates are the certificate's own, however far in the past.
fn decide_record_legacy(
    state: &State,
    cmd: &RecordLegacyCertificate,
    ctx: &Context<'_>,
) -> Result<Vec<Event>, DomainError> {
    let record = &cmd.certificate;
    if state.is_some() {
        return Err(DomainError::already_exists(&record.id));
    }
    if !ctx.actor.roles.contains(&Role::Admin) {
        return Err(DomainError::permission_denied(
            Rule::Ca3,
            Reason::RoleRequired,
            "only an administrator records a certificate issued before certflow",
        ));
    }
    let account = owner_account(ctx.actor, &record.account)?;
    if cmd.brand == Brand::Other {
        return Err(DomainError::invalid(
            Reason::InvalidArgument,
            "a platform certificate needs one of the brands this product issues",
        ));
    }
    if !(1..=3).contains(&cmd.term_years) {
        return Err(DomainError::invalid(
            Reason::InvalidArgument,
            format!("term is 1, 2 or 3 years, not {}", cmd.term_years),
        ));
    }
    let domains = checked_domains(record.domains.iter().map(DomainName::as_str))?;
    let validation_setup = checked_setup(&cmd.validation_setup, &domains)?;
    if record.not_after <= record.not_before {
        return Err(DomainError::invalid(
            Reason::InvalidValidity,
            "the certificate's notAfter is not later than its notBefore",
        ));
    }
    if record.not_before > ctx.now {
        return Err(DomainError::invalid_by(
            Rule::Ca3,
            Reason::ValidityNotAllowed,
            "a certificate issued before certflow started before now; issue new ones with \
             IssueCertificate",
        ));
    }
    Ok(vec![Event::Issued(CertificateIssued {
        id: record.id.clone(),
        account,
        brand: cmd.brand,
        level: record.level,
        paid: cmd.paid,
        algorithm: record.algorithm,
        domains,
        term_years: cmd.term_years,
        issued_at: record.not_before,
        not_before: record.not_before,
        not_after: record.not_after,
        validation_setup,
        renewal_ordered: cmd.renewal_ordered,
        x509: Some(X509Facts {
            serial_number: record.serial_number.clone(),
            public_key_sha256: record.public_key_sha256.clone(),
            pem: record.pem.clone(),
            chain_pem: String::new(),
            private_key_id: record.private_key_id.clone(),
        }),
        original: None,
        enterprise_info: cmd.enterprise_info.clone(),
        legacy: true,
    })])
}

fn decide_upload(
    state: &State,
    cmd: &UploadCertificate,
    ctx: &Context<'_>,
) -> Result<Vec<Event>, DomainError> {
    if state.is_some() {
        return Err(DomainError::already_exists(&cmd.id));
    }
    let account = owner_account(ctx.actor, &cmd.account)?;
    let domains = checked_domains(cmd.domains.iter().map(DomainName::as_str))?;
    if cmd.not_after <= cmd.not_before {
        return Err(DomainError::invalid(
            Reason::InvalidValidity,
            "the certificate's notAfter is not later than its notBefore",
        ));
    }
    Ok(vec![Event::Uploaded(CertificateUploaded {
        id: cmd.id.clone(),
        account,
        level: cmd.level,
        algorithm: cmd.algorithm,
        domains,
        uploaded_at: ctx.now,
        not_before: cmd.not_before,
        not_after: cmd.not_after,
        public_key_sha256: cmd.public_key_sha256.clone(),
        serial_number: cmd.serial_number.clone(),
        issuer: cmd.issuer.clone(),
        pem: cmd.pem.clone(),
        private_key_id: cmd.private_key_id.clone(),
    })])
}

fn decide_revocation(
    state: &State,
    cmd: &RequestRevocation,
    ctx: &Context<'_>,
) -> Result<Vec<Event>, DomainError> {
    let cert = visible(state, &cmd.id, ctx.actor)?;
    let reason = RevocationReason::from_rfc5280_code(cmd.reason_code)?;
    if cmd.description.chars().count() > MAX_TEXT {
        return Err(DomainError::invalid(
            Reason::InvalidArgument,
            format!("the description is longer than {MAX_TEXT} characters"),
        ));
    }
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
pub fn cancel_revocation(state: &State, id: &crate::CertificateId, actor: &Actor) -> DomainError {
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

/// DEL-1: unexpired platform certificates go only once revoked; expired or revoked ones, and
/// uploaded ones, at any time. DEL-2: a deleted certificate is gone from lookups.
fn decide_delete(
    state: &State,
    cmd: &DeleteCertificate,
    ctx: &Context<'_>,
) -> Result<Vec<Event>, DomainError> {
    let cert = visible(state, &cmd.id, ctx.actor)?;
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

/// REN-1: a renewal can be ordered for an issued certificate within the renewal window of
/// its expiry; ordering again changes nothing.
fn decide_renewal(
    state: &State,
    cmd: &OrderRenewal,
    ctx: &Context<'_>,
) -> Result<Vec<Event>, DomainError> {
    let cert = visible(state, &cmd.id, ctx.actor)?;
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

/// DL-1 and REV-8: the certificate `actor` may download. From the moment a revocation is
/// requested it may not be downloaded (nor once revoked); a failed or rejected revocation
/// makes it downloadable again.
pub fn downloadable<'s>(
    state: &'s State,
    id: &crate::CertificateId,
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

/// The certificate as `actor` may see it: absent, deleted and foreign ones are all
/// `NOT_FOUND`, so nobody learns that another account's certificate exists (GEN-3, DEL-2).
pub(crate) fn visible<'s>(
    state: &'s State,
    id: &crate::CertificateId,
    actor: &Actor,
) -> Result<&'s Certificate, DomainError> {
    match state {
        Some(cert) if !cert.deleted && actor.may_access(&cert.account) => Ok(cert),
        _ => Err(DomainError::not_found(id)),
    }
}

/// GEN-3: the account a new certificate belongs to. Customers act for the account their
/// token names (the request may repeat it, nothing else); admins name the account.
pub fn owner_account(actor: &Actor, requested: &str) -> Result<String, DomainError> {
    crate::text::key_text("account", requested)?;
    if actor.roles.contains(&Role::Admin) {
        return checked_account(requested);
    }
    let requested = requested.trim();
    if requested.is_empty() || crate::same_account(requested, &actor.account) {
        checked_account(&actor.account)
    } else {
        Err(DomainError::permission_denied(
            Rule::Gen3,
            Reason::AccountMismatch,
            format!(
                "you act for account {} only; leave account empty or set it to yours",
                actor.account
            ),
        ))
    }
}

/// An account a command names, as certflow records it ([`crate::account_key`]).
fn checked_account(account: &str) -> Result<String, DomainError> {
    let account = crate::account_key(account);
    if account.is_empty() || account.len() > 128 {
        return Err(DomainError::invalid(
            Reason::InvalidArgument,
            "account is required and at most 128 characters",
        ));
    }
    crate::text::key_text("account", &account)?;
    Ok(account)
}

/// The validation set-up of a certificate: each named domain must be one of its own.
fn checked_setup(
    setup: &BTreeMap<String, ValidationSetup>,
    domains: &[DomainName],
) -> Result<BTreeMap<DomainName, ValidationSetup>, DomainError> {
    let mut checked = BTreeMap::new();
    for (name, method) in setup {
        let name = DomainName::parse(name)?;
        if !domains.contains(&name) {
            return Err(DomainError::invalid(
                Reason::InvalidArgument,
                format!("validation is set up for {name}, which is not on the certificate"),
            ));
        }
        checked.insert(name, *method);
    }
    Ok(checked)
}

/// CA-2: no certificate the CA signs names a public suffix or a wildcard directly over one.
pub(crate) fn signable_names(domains: &[DomainName]) -> Result<(), DomainError> {
    match domains
        .iter()
        .find(|name| name.is_public_suffix_or_wildcard_over_one())
    {
        Some(name) => Err(DomainError::invalid_by(
            Rule::Ca2,
            Reason::InvalidDomainName,
            format!(
                "{name} is a public suffix or a wildcard directly over one (Public Suffix \
                 List); a certificate names a domain under it, e.g. example.{}",
                name.as_str().trim_start_matches("*.")
            ),
        )),
        None => Ok(()),
    }
}

fn checked_domains<'a>(
    names: impl Iterator<Item = &'a str>,
) -> Result<Vec<DomainName>, DomainError> {
    let mut domains: Vec<DomainName> = Vec::new();
    for name in names {
        let name = DomainName::parse(name)?;
        if domains.contains(&name) {
            return Err(DomainError::invalid(
                Reason::InvalidDomainName,
                format!("{name} is listed twice"),
            ));
        }
        domains.push(name);
    }
    if domains.is_empty() {
        return Err(DomainError::invalid(
            Reason::InvalidDomainName,
            "a certificate needs at least one domain",
        ));
    }
    if domains.len() > MAX_DOMAINS {
        return Err(DomainError::invalid(
            Reason::InvalidDomainName,
            format!("a certificate carries at most {MAX_DOMAINS} domains"),
        ));
    }
    Ok(domains)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::certificate::CertificateId;

    const DAY: Duration = Duration::days(1);

    pub(crate) fn now() -> Timestamp {
        // 2026-06-01T00:00:00Z
        Timestamp::from_unix_seconds(1_780_272_000)
    }

    pub(crate) fn admin() -> Actor {
        Actor {
            subject: "ops".into(),
            account: "platform".into(),
            roles: vec![Role::Admin],
        }
    }

    pub(crate) fn customer(account: &str) -> Actor {
        Actor {
            subject: format!("{account}-user"),
            account: account.into(),
            roles: vec![Role::Customer],
        }
    }

    fn id() -> CertificateId {
        CertificateId::parse("cert-1").expect("valid id")
    }

    /// A DV certificate of a brand with no special path, `DNS_AUTO` on its one domain.
    fn issue() -> IssueCertificate {
        IssueCertificate {
            id: id(),
            account: "acme".into(),
            brand: Brand::GeoTrust,
            level: Level::Dv,
            paid: true,
            algorithm: KeyAlgorithm::Rsa2048,
            domains: vec!["www.example.com".into()],
            term_years: 1,
            not_before: None,
            not_after: Some(now().plus(DAY.times(180))),
            validation_setup: BTreeMap::from([(
                "www.example.com".to_string(),
                ValidationSetup::DnsAuto,
            )]),
            renewal_ordered: false,
            enterprise_info: BTreeMap::new(),
        }
    }

    fn revoke(reason_code: i32) -> Command {
        Command::RequestRevocation(RequestRevocation {
            id: id(),
            reason_code,
            description: String::new(),
            validation_method: ValidationMethod::Dns,
        })
    }

    /// The events `given` commands produce, each applied in turn. A given issue is history:
    /// it is decided when it happened, at its `not_before`.
    pub(crate) fn state_after(given: &[Command]) -> State {
        given.iter().enumerate().fold(None, |state, (n, cmd)| {
            let command_id = CommandId(format!("given-{n}"));
            let at = match cmd {
                Command::Issue(IssueCertificate {
                    not_before: Some(not_before),
                    ..
                }) => *not_before,
                _ => now(),
            };
            let ctx = Context {
                now: at,
                command_id: &command_id,
                actor: &admin(),
                policy: &Policy::default(),
            };
            let events = decide(&state, cmd, &ctx).expect("given command is accepted");
            replay(state, &command_id, &events)
        })
    }

    /// Given these commands, when this one (by `actor`), then this outcome.
    fn check_as(
        actor: &Actor,
        given: &[Command],
        when: Command,
    ) -> Result<Vec<Event>, DomainError> {
        let state = state_after(given);
        let command_id = CommandId("when".into());
        let ctx = Context {
            now: now(),
            command_id: &command_id,
            actor,
            policy: &Policy::default(),
        };
        decide(&state, &when, &ctx)
    }

    fn check(given: &[Command], when: Command) -> Result<Vec<Event>, DomainError> {
        check_as(&admin(), given, when)
    }

    fn refused_with(result: Result<Vec<Event>, DomainError>, rule: Rule, reason: Reason) {
        let err = result.expect_err("command must be refused");
        assert_eq!(err.reason(), reason, "{err}");
        assert_eq!(err.rule(), Some(rule), "{err}");
    }

    fn types(events: &[Event]) -> Vec<&'static str> {
        events.iter().map(Event::type_name).collect()
    }

    impl Duration {
        fn times(self, n: i64) -> Duration {
            Duration::millis(self.as_millis() * n)
        }
    }

    #[test]
    fn issue_records_a_platform_certificate() {
        let events = check(&[], Command::Issue(issue())).expect("accepted");
        assert_eq!(types(&events), ["CertificateIssued"]);
        let cert = replay(None, &CommandId("c".into()), &events).expect("created");
        assert_eq!(cert.source, Source::Platform);
        assert_eq!(cert.status(now()), Status::Issued);
    }

    #[test]
    fn ca1_a_domain_a_url_parser_reads_as_an_ip_address_is_refused() {
        for name in [
            "127.0x1",
            "0x7f.0x0.0x0.0x1",
            "169.254.169.0xfe",
            "2130706433",
        ] {
            let cmd = IssueCertificate {
                domains: vec![name.into()],
                validation_setup: BTreeMap::new(),
                ..issue()
            };
            refused_with(
                check(&[], Command::Issue(cmd)),
                Rule::Ca1,
                Reason::InvalidDomainName,
            );
        }
    }

    #[test]
    fn ca2_a_public_suffix_or_a_wildcard_over_one_is_never_issued() {
        for name in ["*.com", "co.uk", "*.co.uk", "github.io"] {
            let cmd = IssueCertificate {
                domains: vec!["www.example.com".into(), name.into()],
                ..issue()
            };
            let err = check(&[], Command::Issue(cmd)).expect_err(name);
            assert_eq!(err.rule(), Some(Rule::Ca2), "{name}: {err}");
            assert_eq!(err.reason(), Reason::InvalidDomainName);
            assert_eq!(err.kind(), crate::error::ErrorKind::InvalidArgument);
            assert!(err.message().contains(name), "{err}");
        }
        let under = IssueCertificate {
            domains: vec!["*.example.co.uk".into(), "user.github.io".into()],
            validation_setup: BTreeMap::new(),
            ..issue()
        };
        assert!(check(&[], Command::Issue(under)).is_ok());
    }

    #[test]
    fn gen5_a_malformed_id_is_refused_and_a_long_one_is_not_echoed() {
        for bad in ["", "has space", "a.b", "a>", "zertifikät"] {
            let err = CertificateId::parse(bad).expect_err("refused");
            assert_eq!(err.reason(), Reason::InvalidArgument);
            assert!(err.message().contains(&format!("{bad:?}")));
        }
        let long = "x".repeat(1 << 20);
        let err = CertificateId::parse(&long).expect_err("refused");
        assert!(err.message().len() < 200, "{}", err.message().len());
        assert!(err.message().contains("an id of 1048576 bytes"));
    }

    #[test]
    fn gen5_issue_with_bad_input_is_invalid_argument() {
        let cases: Vec<(IssueCertificate, Reason)> = vec![
            (
                IssueCertificate {
                    domains: vec![],
                    ..issue()
                },
                Reason::InvalidDomainName,
            ),
            (
                IssueCertificate {
                    domains: vec!["not a name".into()],
                    ..issue()
                },
                Reason::InvalidDomainName,
            ),
            (
                IssueCertificate {
                    account: " ".into(),
                    ..issue()
                },
                Reason::InvalidArgument,
            ),
            (
                IssueCertificate {
                    term_years: 4,
                    ..issue()
                },
                Reason::InvalidArgument,
            ),
            (
                IssueCertificate {
                    algorithm: KeyAlgorithm::Sm2,
                    ..issue()
                },
                Reason::InvalidArgument,
            ),
            (
                IssueCertificate {
                    not_after: Some(now().minus(DAY.times(20))),
                    ..issue()
                },
                Reason::InvalidValidity,
            ),
        ];
        for (cmd, reason) in cases {
            let err = check(&[], Command::Issue(cmd.clone())).expect_err("refused");
            assert_eq!(err.reason(), reason, "{cmd:?}");
            assert_eq!(err.kind(), crate::ErrorKind::InvalidArgument);
        }
    }

    #[test]
    fn issuing_twice_is_already_exists() {
        let err = check(&[Command::Issue(issue())], Command::Issue(issue())).expect_err("refused");
        assert_eq!(err.reason(), Reason::AlreadyExists);
    }

    #[test]
    fn gen1_a_retried_command_appends_nothing() {
        let command_id = CommandId("rev-1".into());
        let ctx = Context {
            now: now(),
            command_id: &command_id,
            actor: &admin(),
            policy: &Policy::default(),
        };
        let state = state_after(&[Command::Issue(issue())]);
        let first = decide(&state, &revoke(1), &ctx).expect("accepted");
        let state = replay(state, &command_id, &first);
        let retry = decide(&state, &revoke(1), &ctx).expect("a retry is not refused");
        assert!(retry.is_empty(), "a retry appends nothing");
    }

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

    /// A certificate the platform issued before certflow, valid from `not_before` to
    /// `not_after`, as an administrator records it (CA-3).
    pub(crate) fn legacy_record(not_before: Timestamp, not_after: Timestamp) -> Command {
        Command::RecordLegacy(RecordLegacyCertificate {
            brand: Brand::GeoTrust,
            paid: true,
            term_years: 3,
            validation_setup: BTreeMap::from([(
                "www.example.com".to_string(),
                ValidationSetup::DnsAuto,
            )]),
            renewal_ordered: false,
            enterprise_info: BTreeMap::new(),
            certificate: UploadCertificate {
                id: id(),
                account: "acme".into(),
                level: Level::Dv,
                algorithm: KeyAlgorithm::Rsa2048,
                domains: vec![DomainName::parse("www.example.com").expect("valid")],
                not_before,
                not_after,
                public_key_sha256: "ab".repeat(32),
                serial_number: "0a".into(),
                issuer: "CN=GeoTrust RSA CA 2018".into(),
                pem: String::new(),
                private_key_id: None,
            },
        })
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
    fn ca3_only_an_admin_records_a_certificate_from_before_certflow_and_it_says_so() {
        let old = legacy_record(
            Timestamp::from_unix_seconds(1_500_000_000),
            now().plus(DAY.times(30)),
        );
        refused_with(
            check_as(&customer("acme"), &[], old.clone()),
            Rule::Ca3,
            Reason::RoleRequired,
        );
        let events = check(&[], old).expect("an admin records it");
        let Some(Event::Issued(issued)) = events.first() else {
            panic!("an issue event: {events:?}");
        };
        assert!(issued.legacy);
        assert_eq!(
            issued.not_before,
            Timestamp::from_unix_seconds(1_500_000_000)
        );
        assert_eq!(issued.issued_at, issued.not_before);
        // Through IssueCertificate, the same dates are refused: the CA never backdates.
        let backdated = IssueCertificate {
            not_before: Some(Timestamp::from_unix_seconds(1_500_000_000)),
            not_after: Some(now().plus(DAY.times(30))),
            ..issue()
        };
        refused_with(
            check(&[], Command::Issue(backdated)),
            Rule::Ca3,
            Reason::ValidityNotAllowed,
        );
        // Nor does a record start in the future.
        refused_with(
            check(
                &[],
                legacy_record(now().plus(DAY), now().plus(DAY.times(30))),
            ),
            Rule::Ca3,
            Reason::ValidityNotAllowed,
        );
    }

    #[test]
    fn ca3_an_issue_is_valid_at_most_as_long_as_the_term_and_the_brs_allow() {
        let events = check(
            &[],
            Command::Issue(IssueCertificate {
                not_after: None,
                ..issue()
            }),
        )
        .expect("the longest allowed");
        let Some(Event::Issued(issued)) = events.first() else {
            panic!("an issue event");
        };
        // Signed on 2026-06-01: at most 200 days, counting both ends.
        assert_eq!(issued.not_before, now());
        assert_eq!(
            issued
                .not_after
                .plus(Duration::seconds(1))
                .since(issued.not_before),
            DAY.times(200)
        );
        for (not_before, not_after) in [
            (None, Some(now().plus(DAY.times(36_500)))),
            (Some(Timestamp::from_unix_seconds(0)), Some(now())),
            (None, Some(now().plus(DAY.times(200)))),
        ] {
            let cmd = IssueCertificate {
                not_before,
                not_after,
                ..issue()
            };
            refused_with(
                check(&[], Command::Issue(cmd)),
                Rule::Ca3,
                Reason::ValidityNotAllowed,
            );
        }
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
    fn gen3_customers_issue_for_their_own_account_only() {
        let for_other = IssueCertificate {
            account: "globex".into(),
            ..issue()
        };
        let err = check_as(&customer("acme"), &[], Command::Issue(for_other)).expect_err("refused");
        assert_eq!(err.reason(), Reason::AccountMismatch);
        assert_eq!(err.kind(), crate::ErrorKind::PermissionDenied);
        assert_eq!(err.rule(), Some(Rule::Gen3));

        let unnamed = IssueCertificate {
            account: String::new(),
            ..issue()
        };
        let events =
            check_as(&customer("acme"), &[], Command::Issue(unnamed.clone())).expect("accepted");
        let Some(Event::Issued(issued)) = events.first() else {
            panic!("expected an issue event, got {events:?}");
        };
        assert_eq!(issued.account, "acme");
        // Admins must say which account.
        let err = check(&[], Command::Issue(unnamed)).expect_err("refused");
        assert_eq!(err.kind(), crate::ErrorKind::InvalidArgument);
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

    #[test]
    fn unknown_certificate_is_not_found() {
        let err = check(&[], revoke(0)).expect_err("refused");
        assert_eq!(err.reason(), Reason::NotFound);
        assert_eq!(err.kind(), crate::ErrorKind::NotFound);
    }
}
