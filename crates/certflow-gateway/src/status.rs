//! Every status the gateway answers with is made here, from the error catalogue
//! (`certflow_proto::refusal`): each carries a `google.rpc.ErrorInfo` with domain `certs`,
//! the reason code, and the rule that refused in the metadata `rule` where one did.

use std::collections::HashMap;
use std::time::Duration;

use certflow_bus::{BusError, Refusal, ServiceReason};
use certflow_domain::{DomainError, Reason};
use tonic::Status;
use tonic_types::{ErrorDetails, StatusExt};
use tracing::warn;

/// The `ErrorInfo.domain` of every refusal.
pub const ERROR_DOMAIN: &str = "certs";

/// A refusal that travelled from a service (or was made here), as a status.
pub(crate) fn refusal(refusal: Refusal) -> Status {
    let code = refusal.status_code();
    let mut metadata = HashMap::new();
    if !refusal.rule.is_empty() {
        metadata.insert("rule".to_string(), refusal.rule);
    }
    Status::with_error_details(
        code,
        refusal.message,
        ErrorDetails::with_error_info(refusal.reason, ERROR_DOMAIN, metadata),
    )
}

/// A refusal by the rules, decided in the gateway before anything is sent.
pub(crate) fn refused(err: &DomainError) -> Status {
    refusal(Refusal::of(err))
}

/// Input the gateway refuses before sending anything (GEN-5).
pub(crate) fn invalid_argument(message: impl Into<String>) -> Status {
    refused(&DomainError::invalid(Reason::InvalidArgument, message))
}

/// A refusal of the service's own, with the status its reason has.
pub(crate) fn service(reason: ServiceReason, message: impl Into<String>) -> Status {
    refusal(Refusal::service(reason, message))
}

/// `RESOURCE_EXHAUSTED` (`RATE_LIMITED`) with a `RetryInfo` saying when to call again.
pub(crate) fn rate_limited(rpc: &str, wait: Duration) -> Status {
    let reason = ServiceReason::RateLimited;
    let mut details = ErrorDetails::with_retry_info(Some(wait));
    details.set_error_info(reason.as_str(), ERROR_DOMAIN, HashMap::new());
    Status::with_error_details(
        reason.code(),
        format!(
            "too many {rpc} calls for this account; retry in {} ms",
            wait.as_millis()
        ),
        details,
    )
}

/// A request that did not reach a service, or got no reply from one.
pub(crate) fn bus(err: BusError) -> Status {
    let (reason, message) = match &err {
        BusError::NoResponders(_) => (
            ServiceReason::ServiceUnavailable,
            "the service that handles this call is not running; try again shortly",
        ),
        BusError::TimedOut(_) => (
            ServiceReason::ServiceTimeout,
            "the service did not answer in time; retry with the same request id",
        ),
        BusError::BadReply { .. } | BusError::Nats(_) => {
            warn!(error = %err, "bus failure");
            (
                ServiceReason::BusUnavailable,
                "the message bus is unavailable; retry with the same request id",
            )
        }
    };
    service(reason, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use certflow_domain::Rule;
    use tonic::Code;

    fn info(status: &Status) -> (Code, String, Option<String>) {
        let info = status.get_details_error_info().expect("ErrorInfo");
        assert_eq!(info.domain, ERROR_DOMAIN);
        (
            status.code(),
            info.reason,
            info.metadata.get("rule").cloned(),
        )
    }

    #[test]
    fn every_status_carries_its_reason_and_rule() {
        let revoked = refused(&DomainError::refused(
            Rule::Rev17,
            Reason::AlreadyRevoked,
            "revoked already",
        ));
        assert_eq!(
            info(&revoked),
            (
                Code::FailedPrecondition,
                "ALREADY_REVOKED".into(),
                Some("REV-17".into())
            )
        );
        for reason in ServiceReason::ALL {
            let status = service(reason, "m");
            assert_eq!(
                info(&status),
                (
                    reason.code(),
                    reason.as_str().to_string(),
                    reason.rule().map(|r| r.as_str().to_string())
                )
            );
        }
        let limited = rate_limited("RequestRevocation", Duration::from_millis(250));
        assert_eq!(info(&limited).1, "RATE_LIMITED");
        assert_eq!(
            limited.get_details_retry_info().and_then(|r| r.retry_delay),
            Some(Duration::from_millis(250))
        );
        assert_eq!(info(&invalid_argument("bad")).0, Code::InvalidArgument);
    }

    /// The reasons of README's error tables: `(reason, status)` per row, status empty where
    /// the table has no status column.
    fn readme_reasons() -> Vec<(String, String)> {
        let readme = include_str!("../../../README.md");
        let section = readme
            .split("\n## Errors\n")
            .nth(1)
            .and_then(|rest| rest.split("\n## ").next())
            .expect("README has an Errors section");
        section
            .lines()
            .filter(|line| line.starts_with("| `"))
            .map(|line| {
                let cells: Vec<&str> = line
                    .split('|')
                    .map(|c| c.trim().trim_matches('`'))
                    .collect();
                let status = if cells.len() == 5 { cells[2] } else { "" };
                (cells[1].to_string(), status.to_string())
            })
            .collect()
    }

    #[test]
    fn readme_error_tables_are_the_catalogue() {
        use certflow_bus::ClientReason;
        use certflow_proto::refusal::code_name;
        let rows = readme_reasons();
        let mut listed = std::collections::HashSet::new();
        for (reason, status) in &rows {
            assert!(listed.insert(reason.clone()), "{reason} is listed twice");
            match ClientReason::parse(reason) {
                Some(ClientReason::Service(service)) => {
                    assert_eq!(status, code_name(service.code()), "status of {reason}")
                }
                Some(ClientReason::Rule(_)) => {
                    assert!(status.is_empty(), "{reason} belongs in the rules' table")
                }
                None => panic!("README lists {reason}, which no code refuses with"),
            }
        }
        for reason in ClientReason::all() {
            assert!(
                listed.contains(reason.as_str()),
                "README's error tables lack {reason}"
            );
        }
    }
}
