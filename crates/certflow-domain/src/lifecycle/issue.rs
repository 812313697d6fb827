//! How a certificate starts: issued by the CA through this product, recorded by an
//! administrator from before certflow (CA-3), or uploaded by its owner from another CA.
//! Names are checked against CA-1 and CA-2 and the validity against CA-3 before anything
//! is recorded.

use std::collections::{BTreeMap, BTreeSet};

use crate::command::{IssueCertificate, RecordLegacyCertificate, UploadCertificate};
use crate::context::{Context, Role, owner_account};
use crate::error::{DomainError, Reason, Rule};
use crate::event::{CertificateIssued, CertificateUploaded, Event, X509Facts};
use crate::names::{DomainName, signable_names};
use crate::state::{Certificate, State};
use crate::values::{Brand, KeyAlgorithm, Source, ValidationSetup};

/// Most names one certificate may carry.
const MAX_DOMAINS: usize = 250;

/// A certificate the CA signs now: one of the brands this product issues, a key it
/// certifies, a term of 1 to 3 years, names it may sign (CA-1, CA-2) and a validity it
/// allows (CA-3), for the caller's account (GEN-3).
pub(crate) fn decide_issue(
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
pub(crate) fn decide_record_legacy(
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
            crl_shard: None,
        }),
        original: None,
        enterprise_info: cmd.enterprise_info.clone(),
        legacy: true,
    })])
}

/// A third-party certificate the customer stores here. Its source is `UPLOADED`: it is
/// not revoked or reissued here (REV-1, REI-1), and can be deleted at any time (DEL-1).
pub(crate) fn decide_upload(
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

/// The names a certificate carries: each a valid domain name (CA-1), none twice, at least
/// one and at most [`MAX_DOMAINS`].
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

/// The state after an issue or an upload: the certificate's first event creates it. A
/// certificate starts once; a second such event changes nothing.
pub(crate) fn evolve_issue(state: State, event: &Event) -> State {
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
        (state, _) => state,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{Command, CommandId};
    use crate::lifecycle::replay;
    use crate::state::Status;
    use crate::testing::{
        DAY, check, check_as, customer, issue, legacy_record, now, refused_with, types,
    };
    use crate::time::{Duration, Timestamp};

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
}
