//! The error catalogue: every reason a client can be refused for, and the refusal that
//! carries one from a service to the gateway.
//!
//! A client reads the reason in `google.rpc.ErrorInfo.reason`. It is one of two kinds:
//! the rules' ([`Reason`], each decided by a rule of `docs/rules.md`), or the service's own
//! ([`ServiceReason`]: authentication, rate limits, and failures that are not the caller's,
//! each with its one gRPC status). [`ClientReason`] is either; README's error table is
//! checked against [`ClientReason::all`]. Refusals are built only through the constructors
//! here, so a reason is never a bare string.

use std::fmt;

use certflow_domain::{DomainError, ErrorKind, Reason, Rule};
use tonic::Code;

use crate::bus::v1::{Refusal, Reply, reply::Outcome};

/// A reason of the service's own, not of the rules: who the caller is, how often it calls,
/// and failures on certflow's side. Each has one gRPC status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServiceReason {
    /// No bearer token came with the call.
    TokenMissing,
    /// The token is malformed, forged, or lacks a claim certflow needs.
    TokenInvalid,
    /// The token's `exp` has passed.
    TokenExpired,
    /// The token's `nbf` is still ahead.
    TokenNotYetValid,
    /// The account called this RPC more often than its budget allows.
    RateLimited,
    /// No instance of the service that handles the call is running.
    ServiceUnavailable,
    /// The service did not answer within the gateway's request timeout.
    ServiceTimeout,
    /// NATS is unreachable or answered with something that is not a reply.
    BusUnavailable,
    /// A store or peer the service needed was unavailable.
    Unavailable,
    /// No CRL could be fetched for the CA asked for.
    CrlUnavailable,
    /// The certificate kept changing while the command was decided (GEN-2).
    ConcurrentModification,
    /// A stored document differs from the one recorded.
    DocumentMismatch,
    /// certflow does not offer this yet.
    NotAvailable,
    /// Something failed on certflow's side.
    Internal,
}

impl ServiceReason {
    /// Every service reason.
    pub const ALL: [ServiceReason; 14] = [
        ServiceReason::TokenMissing,
        ServiceReason::TokenInvalid,
        ServiceReason::TokenExpired,
        ServiceReason::TokenNotYetValid,
        ServiceReason::RateLimited,
        ServiceReason::ServiceUnavailable,
        ServiceReason::ServiceTimeout,
        ServiceReason::BusUnavailable,
        ServiceReason::Unavailable,
        ServiceReason::CrlUnavailable,
        ServiceReason::ConcurrentModification,
        ServiceReason::DocumentMismatch,
        ServiceReason::NotAvailable,
        ServiceReason::Internal,
    ];

    /// The code as a client reads it in `ErrorInfo.reason`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ServiceReason::TokenMissing => "TOKEN_MISSING",
            ServiceReason::TokenInvalid => "TOKEN_INVALID",
            ServiceReason::TokenExpired => "TOKEN_EXPIRED",
            ServiceReason::TokenNotYetValid => "TOKEN_NOT_YET_VALID",
            ServiceReason::RateLimited => "RATE_LIMITED",
            ServiceReason::ServiceUnavailable => "SERVICE_UNAVAILABLE",
            ServiceReason::ServiceTimeout => "SERVICE_TIMEOUT",
            ServiceReason::BusUnavailable => "BUS_UNAVAILABLE",
            ServiceReason::Unavailable => "UNAVAILABLE",
            ServiceReason::CrlUnavailable => "CRL_UNAVAILABLE",
            ServiceReason::ConcurrentModification => "CONCURRENT_MODIFICATION",
            ServiceReason::DocumentMismatch => "DOCUMENT_MISMATCH",
            ServiceReason::NotAvailable => "NOT_AVAILABLE",
            ServiceReason::Internal => "INTERNAL",
        }
    }

    /// The gRPC status a refusal for this reason has.
    pub const fn code(self) -> Code {
        match self {
            ServiceReason::TokenMissing
            | ServiceReason::TokenInvalid
            | ServiceReason::TokenExpired
            | ServiceReason::TokenNotYetValid => Code::Unauthenticated,
            ServiceReason::RateLimited => Code::ResourceExhausted,
            ServiceReason::ServiceUnavailable
            | ServiceReason::ServiceTimeout
            | ServiceReason::BusUnavailable
            | ServiceReason::Unavailable
            | ServiceReason::CrlUnavailable => Code::Unavailable,
            ServiceReason::ConcurrentModification => Code::Aborted,
            ServiceReason::DocumentMismatch => Code::DataLoss,
            ServiceReason::NotAvailable => Code::Unimplemented,
            ServiceReason::Internal => Code::Internal,
        }
    }

    /// The rule behind the reason, where one is.
    pub const fn rule(self) -> Option<Rule> {
        match self {
            ServiceReason::ConcurrentModification => Some(Rule::Gen2),
            _ => None,
        }
    }
}

/// Any reason a client can see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientReason {
    /// Decided by a rule.
    Rule(Reason),
    /// The service's own.
    Service(ServiceReason),
}

impl ClientReason {
    /// Every reason a client can see: the rules' first, then the service's.
    pub fn all() -> impl Iterator<Item = ClientReason> {
        Reason::ALL
            .into_iter()
            .map(ClientReason::Rule)
            .chain(ServiceReason::ALL.into_iter().map(ClientReason::Service))
    }

    /// The reason named `code`, if the catalogue has it.
    pub fn parse(code: &str) -> Option<ClientReason> {
        ClientReason::all().find(|reason| reason.as_str() == code)
    }

    /// The code as a client reads it.
    pub const fn as_str(self) -> &'static str {
        match self {
            ClientReason::Rule(reason) => reason.as_str(),
            ClientReason::Service(reason) => reason.as_str(),
        }
    }
}

impl fmt::Display for ClientReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<Reason> for ClientReason {
    fn from(reason: Reason) -> Self {
        ClientReason::Rule(reason)
    }
}

impl From<ServiceReason> for ClientReason {
    fn from(reason: ServiceReason) -> Self {
        ClientReason::Service(reason)
    }
}

/// The gRPC status of a refusal of `kind`.
pub const fn kind_code(kind: ErrorKind) -> Code {
    match kind {
        ErrorKind::InvalidArgument => Code::InvalidArgument,
        ErrorKind::NotFound => Code::NotFound,
        ErrorKind::AlreadyExists => Code::AlreadyExists,
        ErrorKind::FailedPrecondition => Code::FailedPrecondition,
        ErrorKind::PermissionDenied => Code::PermissionDenied,
    }
}

/// A status code's canonical name, as grpcurl and the gRPC docs write it.
pub const fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

impl Refusal {
    /// A refusal by the rules, as decided.
    pub fn of(err: &DomainError) -> Refusal {
        Refusal {
            code: kind_code(err.kind()) as i32,
            reason: err.reason().as_str().to_string(),
            message: err.message().to_string(),
            rule: err
                .rule()
                .map(|r| r.as_str().to_string())
                .unwrap_or_default(),
        }
    }

    /// A refusal of the service's own, with the status its reason has.
    pub fn service(reason: ServiceReason, message: impl Into<String>) -> Refusal {
        Refusal {
            code: reason.code() as i32,
            reason: reason.as_str().to_string(),
            message: message.into(),
            rule: reason
                .rule()
                .map(|r| r.as_str().to_string())
                .unwrap_or_default(),
        }
    }

    /// Its gRPC status code.
    pub fn status_code(&self) -> Code {
        Code::from_i32(self.code)
    }

    /// Its reason, if the catalogue has it (a refusal from a newer peer may not).
    pub fn client_reason(&self) -> Option<ClientReason> {
        ClientReason::parse(&self.reason)
    }

    /// Whether the refusal says for certain that nothing was recorded and a retry of the
    /// same request would be refused again: the caller's input or the rules refused it, or
    /// it is not offered. Anything else (unavailable, timed out, concurrent changes, a
    /// failure on certflow's side) cannot tell whether the command took effect.
    pub fn is_definite(&self) -> bool {
        matches!(
            self.status_code(),
            Code::InvalidArgument
                | Code::NotFound
                | Code::AlreadyExists
                | Code::PermissionDenied
                | Code::FailedPrecondition
                | Code::Unimplemented
        )
    }
}

impl Reply {
    /// A reply that carries `refusal`.
    pub fn refused(refusal: Refusal) -> Reply {
        Reply {
            outcome: Some(Outcome::Refusal(refusal)),
        }
    }

    /// Whether the reply says for certain how the command ended: answered, or refused
    /// definitely ([`Refusal::is_definite`]). Otherwise the log has to be asked.
    pub fn is_definite(&self) -> bool {
        match &self.outcome {
            Some(Outcome::Response(_)) => true,
            Some(Outcome::Refusal(refusal)) => refusal.is_definite(),
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_reason_has_one_code_and_parses_back() {
        let mut seen = HashSet::new();
        for reason in ClientReason::all() {
            assert!(seen.insert(reason.as_str()), "{reason} twice");
            assert_eq!(ClientReason::parse(reason.as_str()), Some(reason));
            assert!(
                reason
                    .as_str()
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c == '_'),
                "{reason}"
            );
        }
        assert_eq!(seen.len(), Reason::ALL.len() + ServiceReason::ALL.len());
        assert_eq!(ClientReason::parse("NO_SUCH_REASON"), None);
    }

    #[test]
    fn a_refusal_says_whether_anything_could_have_been_recorded() {
        let rule = Refusal::of(&DomainError::refused(
            Rule::Rev17,
            Reason::AlreadyRevoked,
            "revoked already",
        ));
        assert_eq!(rule.status_code(), Code::FailedPrecondition);
        assert_eq!(rule.rule, "REV-17");
        assert!(rule.is_definite());
        assert_eq!(
            rule.client_reason(),
            Some(ClientReason::Rule(Reason::AlreadyRevoked))
        );
        for reason in ServiceReason::ALL {
            let refusal = Refusal::service(reason, "");
            assert_eq!(refusal.status_code(), reason.code());
            assert_eq!(refusal.client_reason(), Some(ClientReason::Service(reason)));
            assert_eq!(
                refusal.is_definite(),
                reason == ServiceReason::NotAvailable,
                "{reason:?}"
            );
        }
        assert_eq!(
            Refusal::service(ServiceReason::ConcurrentModification, "").rule,
            "GEN-2"
        );
        assert!(!Reply::default().is_definite());
    }
}
