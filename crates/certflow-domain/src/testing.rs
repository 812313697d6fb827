//! The givens the rule tests share: a fixed clock, an admin and customers, a typical
//! certificate and a revocation of it, and the state a list of commands leaves.

use std::collections::BTreeMap;

use crate::command::{
    Command, CommandId, IssueCertificate, RecordLegacyCertificate, RequestRevocation,
    UploadCertificate,
};
use crate::context::{Actor, Context, Role};
use crate::error::{DomainError, Reason, Rule};
use crate::event::Event;
use crate::lifecycle::{decide, replay};
use crate::names::DomainName;
use crate::policy::Policy;
use crate::state::State;
use crate::time::{Duration, Timestamp};
use crate::values::{Brand, CertificateId, KeyAlgorithm, Level, ValidationMethod, ValidationSetup};

/// One day.
pub(crate) const DAY: Duration = Duration::days(1);

/// The tests' now.
pub(crate) fn now() -> Timestamp {
    // 2026-06-01T00:00:00Z
    Timestamp::from_unix_seconds(1_780_272_000)
}

/// An administrator of the platform.
pub(crate) fn admin() -> Actor {
    Actor {
        subject: "ops".into(),
        account: "platform".into(),
        roles: vec![Role::Admin],
    }
}

/// A customer acting for `account`.
pub(crate) fn customer(account: &str) -> Actor {
    Actor {
        subject: format!("{account}-user"),
        account: account.into(),
        roles: vec![Role::Customer],
    }
}

/// The id of the certificate [`issue`] issues.
pub(crate) fn id() -> CertificateId {
    CertificateId::parse("cert-1").expect("valid id")
}

/// The certificate id `name`.
pub(crate) fn certificate_id(name: &str) -> CertificateId {
    CertificateId::parse(name).expect("valid id")
}

/// The domain name `domain`.
pub(crate) fn domain_name(domain: &str) -> DomainName {
    DomainName::parse(domain).expect("valid name")
}

/// A DV certificate of a brand with no special path, `DNS_AUTO` on its one domain.
pub(crate) fn issue() -> IssueCertificate {
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

/// A revocation of that certificate with RFC 5280 reason `reason_code`, by DNS, without a
/// description.
pub(crate) fn revoke(reason_code: i32) -> Command {
    Command::RequestRevocation(RequestRevocation {
        id: id(),
        reason_code,
        description: String::new(),
        validation_method: ValidationMethod::Dns,
    })
}

/// When a test's command is decided: an issue when it happened (its `not_before`), any
/// other now.
pub(crate) fn decided_at(command: &Command) -> Timestamp {
    match command {
        Command::Issue(IssueCertificate {
            not_before: Some(not_before),
            ..
        }) => *not_before,
        _ => now(),
    }
}

/// The events `given` commands produce, each applied in turn. A given issue is history:
/// it is decided when it happened, at its `not_before`.
pub(crate) fn state_after(given: &[Command]) -> State {
    given.iter().enumerate().fold(None, |state, (n, cmd)| {
        let command_id = CommandId(format!("given-{n}"));
        let ctx = Context {
            now: decided_at(cmd),
            command_id: &command_id,
            actor: &admin(),
            policy: &Policy::default(),
        };
        let events = decide(&state, cmd, &ctx).expect("given command is accepted");
        replay(state, &command_id, &events)
    })
}

/// Given these commands, when this one (by `actor`), then this outcome.
pub(crate) fn check_as(
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

/// Given these commands, when this one (by an admin), then this outcome.
pub(crate) fn check(given: &[Command], when: Command) -> Result<Vec<Event>, DomainError> {
    check_as(&admin(), given, when)
}

/// Asserts that `result` is a refusal by `rule` with `reason`.
pub(crate) fn refused_with(result: Result<Vec<Event>, DomainError>, rule: Rule, reason: Reason) {
    let err = result.expect_err("command must be refused");
    assert_eq!(err.reason(), reason, "{err}");
    assert_eq!(err.rule(), Some(rule), "{err}");
}

/// The events' type names, in order.
pub(crate) fn types(events: &[Event]) -> Vec<&'static str> {
    events.iter().map(Event::type_name).collect()
}

impl Duration {
    /// This duration `n` times over.
    pub(crate) fn times(self, n: i64) -> Duration {
        Duration::millis(self.as_millis() * n)
    }
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
