//! Rendering of responses, as aligned text for people or as JSON for scripts.

use certflow_proto::v1::{
    Brand, Certificate, CertificateSource, CertificateStatus, Challenge, DomainValidationSetup,
    HistoryEvent, KeyAlgorithm, Level, Revocation, RevocationCause, RevocationFailure,
    RevocationPath, RevocationReason, ValidationMethod, ValidationOutcome, ValidationSetup,
};
use prost_types::Timestamp;
use serde_json::{Value, json};

use crate::names::display;

/// Placeholder for an empty field in text output.
const NONE: &str = "-";

fn timestamp_text(ts: Option<&Timestamp>) -> String {
    ts.map_or_else(|| NONE.to_owned(), ToString::to_string)
}

fn timestamp_json(ts: Option<&Timestamp>) -> Value {
    ts.map_or(Value::Null, |ts| Value::String(ts.to_string()))
}

fn or_none(s: &str) -> &str {
    if s.is_empty() { NONE } else { s }
}

/// `key: value` lines with the values aligned in one column.
fn aligned(rows: &[(&str, String)]) -> String {
    let width = rows.iter().map(|(key, _)| key.len()).max().unwrap_or(0) + 1;
    rows.iter()
        .map(|(key, value)| format!("{:<width$} {value}\n", format!("{key}:")))
        .collect()
}

/// Rows of text, each cell padded to its column's width; the last column is not padded.
fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|row| row.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                let pad = widths[c].saturating_sub(cell.chars().count());
                line.push_str(cell);
                line.push_str(&" ".repeat(pad + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn validation_text(setup: &[DomainValidationSetup]) -> String {
    setup
        .iter()
        .map(|s| format!("{}={}", s.domain, display::<ValidationSetup>(s.setup)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A certificate as aligned `key: value` lines.
pub fn certificate_text(cert: &Certificate) -> String {
    let mut rows: Vec<(&str, String)> = vec![
        ("id", cert.id.clone()),
        ("account", cert.account.clone()),
        ("status", display::<CertificateStatus>(cert.status)),
        ("brand", display::<Brand>(cert.brand)),
        ("level", display::<Level>(cert.level)),
        ("algorithm", display::<KeyAlgorithm>(cert.key_algorithm)),
        ("domains", or_none(&cert.domains.join(", ")).to_owned()),
        ("source", display::<CertificateSource>(cert.source)),
        ("paid", cert.paid.to_string()),
        ("term_years", cert.term_years.to_string()),
        ("issued_at", timestamp_text(cert.issued_at.as_ref())),
        ("not_before", timestamp_text(cert.not_before.as_ref())),
        ("not_after", timestamp_text(cert.not_after.as_ref())),
    ];
    if !cert.original_id.is_empty() {
        rows.push(("original_id", cert.original_id.clone()));
    }
    if !cert.validation_setup.is_empty() {
        rows.push(("validation", validation_text(&cert.validation_setup)));
    }
    if cert.renewal_ordered {
        rows.push(("renewal_ordered", "true".to_owned()));
    }
    if !cert.serial_number.is_empty() {
        rows.push(("serial_number", cert.serial_number.clone()));
    }
    if !cert.public_key_sha256.is_empty() {
        rows.push(("public_key_sha256", cert.public_key_sha256.clone()));
    }
    if let Some(rev) = &cert.revocation {
        rows.push(("revocation_reason", display::<RevocationReason>(rev.reason)));
        if !rev.description.is_empty() {
            rows.push(("revocation_description", rev.description.clone()));
        }
        rows.push(("revocation_path", display::<RevocationPath>(rev.path)));
        rows.push((
            "revocation_requested_at",
            timestamp_text(rev.requested_at.as_ref()),
        ));
        rows.push(("revoked_at", timestamp_text(rev.revoked_at.as_ref())));
        if rev.cause != RevocationCause::Unspecified as i32 {
            let mut cause = display::<RevocationCause>(rev.cause);
            if !rev.cause_certificate_id.is_empty() {
                cause = format!("{cause} ({})", rev.cause_certificate_id);
            }
            rows.push(("revocation_cause", cause));
        }
        if let Some(validation) = &rev.validation {
            rows.push((
                "validation_deadline",
                timestamp_text(validation.deadline.as_ref()),
            ));
            let outcome = if validation.outcome == ValidationOutcome::Unspecified as i32 {
                "open".to_owned()
            } else {
                display::<ValidationOutcome>(validation.outcome)
            };
            rows.push(("validation_outcome", outcome));
            for challenge in &validation.challenges {
                rows.push(("challenge", challenge_text(challenge)));
            }
        }
    }
    if let Some(failed) = &cert.failed_revocation {
        rows.push((
            "last_revocation_failed",
            format!(
                "{} at {}",
                display::<RevocationFailure>(failed.failure),
                timestamp_text(failed.failed_at.as_ref())
            ),
        ));
    }
    aligned(&rows)
}

/// One challenge on one line: domain, method, where the value goes, and whether proven.
fn challenge_text(challenge: &Challenge) -> String {
    let place = if challenge.dns_record_name.is_empty() {
        &challenge.file_url
    } else {
        &challenge.dns_record_name
    };
    let proven = match &challenge.validated_at {
        Some(at) => format!("proven {}", timestamp_text(Some(at))),
        None => "waiting".to_owned(),
    };
    let mut line = format!(
        "{} {}",
        challenge.domain,
        display::<ValidationMethod>(challenge.method)
    );
    if !place.is_empty() {
        line.push_str(&format!(" {place} = {}", challenge.value));
    }
    format!("{line} ({proven})")
}

/// A page (or all pages) of certificates, one line each, then the next page token if any.
pub fn list_text(certs: &[Certificate], next_page_token: &str) -> String {
    let rows: Vec<Vec<String>> = certs
        .iter()
        .map(|cert| {
            vec![
                cert.id.clone(),
                display::<CertificateStatus>(cert.status),
                format!(
                    "{}/{}",
                    display::<Brand>(cert.brand),
                    display::<Level>(cert.level)
                ),
                cert.domains.first().map_or(NONE, String::as_str).to_owned(),
                timestamp_text(cert.not_after.as_ref()),
            ]
        })
        .collect();
    let mut out = table(&rows);
    if !next_page_token.is_empty() {
        out.push_str(&format!("next_page_token: {next_page_token}\n"));
    }
    out
}

fn actor_text(event: &HistoryEvent) -> String {
    match (
        event.actor_subject.is_empty(),
        event.actor_account.is_empty(),
    ) {
        (true, true) => NONE.to_owned(),
        (false, true) => event.actor_subject.clone(),
        (true, false) => format!("({})", event.actor_account),
        (false, false) => format!("{} ({})", event.actor_subject, event.actor_account),
    }
}

/// A certificate's history, one line per event.
pub fn history_text(events: &[HistoryEvent]) -> String {
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|event| {
            vec![
                event.sequence.to_string(),
                timestamp_text(event.recorded_at.as_ref()),
                or_none(&event.event_type).to_owned(),
                actor_text(event),
                or_none(&event.request_id).to_owned(),
                event.summary.clone(),
            ]
        })
        .collect();
    table(&rows)
}

fn revocation_json(rev: &Revocation) -> Value {
    json!({
        "reason": display::<RevocationReason>(rev.reason),
        "reason_code": rev.reason,
        "description": rev.description,
        "path": display::<RevocationPath>(rev.path),
        "requested_at": timestamp_json(rev.requested_at.as_ref()),
        "revoked_at": timestamp_json(rev.revoked_at.as_ref()),
        "validation_method": (rev.validation_method != ValidationMethod::Unspecified as i32)
            .then(|| display::<ValidationMethod>(rev.validation_method)),
        "cause": (rev.cause != RevocationCause::Unspecified as i32)
            .then(|| display::<RevocationCause>(rev.cause)),
        "cause_certificate_id": (!rev.cause_certificate_id.is_empty())
            .then_some(&rev.cause_certificate_id),
        "validation": rev.validation.as_ref().map(|v| json!({
            "deadline": timestamp_json(v.deadline.as_ref()),
            "outcome": display::<ValidationOutcome>(v.outcome),
            "challenges": v.challenges.iter().map(|c| json!({
                "domain": c.domain,
                "method": display::<ValidationMethod>(c.method),
                "value": c.value,
                "dns_record_name": c.dns_record_name,
                "file_url": c.file_url,
                "validated_at": timestamp_json(c.validated_at.as_ref()),
            })).collect::<Vec<_>>(),
        })),
    })
}

/// A certificate as a JSON object; enums by short name, timestamps in RFC 3339.
pub fn certificate_json(cert: &Certificate) -> Value {
    let validation_setup: Vec<Value> = cert
        .validation_setup
        .iter()
        .map(|s| {
            json!({
                "domain": s.domain,
                "setup": display::<ValidationSetup>(s.setup),
            })
        })
        .collect();
    json!({
        "id": cert.id,
        "account": cert.account,
        "status": display::<CertificateStatus>(cert.status),
        "brand": display::<Brand>(cert.brand),
        "level": display::<Level>(cert.level),
        "paid": cert.paid,
        "key_algorithm": display::<KeyAlgorithm>(cert.key_algorithm),
        "domains": cert.domains,
        "term_years": cert.term_years,
        "source": display::<CertificateSource>(cert.source),
        "issued_at": timestamp_json(cert.issued_at.as_ref()),
        "not_before": timestamp_json(cert.not_before.as_ref()),
        "not_after": timestamp_json(cert.not_after.as_ref()),
        "original_id": cert.original_id,
        "validation_setup": validation_setup,
        "renewal_ordered": cert.renewal_ordered,
        "public_key_sha256": cert.public_key_sha256,
        "serial_number": cert.serial_number,
        "revocation": cert.revocation.as_ref().map_or(Value::Null, revocation_json),
        "pem": cert.pem,
        "chain_pem": cert.chain_pem,
        "private_key_held": cert.private_key_held,
        "reissue_ids": cert.reissue_ids,
    })
}

/// A listing as `{"certificates": [...], "next_page_token": "..."}`.
pub fn list_json(certs: &[Certificate], next_page_token: &str) -> Value {
    let certificates: Vec<Value> = certs.iter().map(certificate_json).collect();
    json!({
        "certificates": certificates,
        "next_page_token": next_page_token,
    })
}

/// A history as `{"events": [...]}`.
pub fn history_json(events: &[HistoryEvent]) -> Value {
    let events: Vec<Value> = events
        .iter()
        .map(|event| {
            json!({
                "sequence": event.sequence,
                "event_type": event.event_type,
                "recorded_at": timestamp_json(event.recorded_at.as_ref()),
                "actor_subject": event.actor_subject,
                "actor_account": event.actor_account,
                "command_id": event.command_id,
                "correlation_id": event.correlation_id,
                "request_id": event.request_id,
                "summary": event.summary,
            })
        })
        .collect();
    json!({ "events": events })
}

/// What `certctl check` prints: each challenge and what its probe saw.
pub fn check_text(response: &certflow_proto::v1::CheckValidationResponse) -> String {
    let mut out = String::new();
    let validation = response
        .certificate
        .as_ref()
        .and_then(|c| c.revocation.as_ref())
        .and_then(|r| r.validation.as_ref());
    let Some(validation) = validation else {
        return "no domain validation for this certificate\n".to_string();
    };
    out.push_str(&format!(
        "deadline  {}\noutcome   {}\n",
        timestamp_text(validation.deadline.as_ref()),
        if validation.outcome == ValidationOutcome::Unspecified as i32 {
            "open".to_owned()
        } else {
            display::<ValidationOutcome>(validation.outcome)
        }
    ));
    let mut rows = vec![vec![
        "DOMAIN".to_string(),
        "METHOD".to_string(),
        "WHERE".to_string(),
        "VALUE".to_string(),
        "PROVEN".to_string(),
        "SEEN".to_string(),
    ]];
    for challenge in &validation.challenges {
        let probe = response
            .probes
            .iter()
            .find(|p| p.domain == challenge.domain);
        rows.push(vec![
            challenge.domain.clone(),
            display::<ValidationMethod>(challenge.method),
            or_none(if challenge.dns_record_name.is_empty() {
                &challenge.file_url
            } else {
                &challenge.dns_record_name
            })
            .to_string(),
            or_none(&challenge.value).to_string(),
            timestamp_text(challenge.validated_at.as_ref()),
            probe.map_or("-".to_string(), |p| {
                if p.found {
                    "found".to_string()
                } else {
                    p.detail.clone()
                }
            }),
        ]);
    }
    out.push_str(&table(&rows));
    out
}

/// `certctl check --json`.
pub fn check_json(response: &certflow_proto::v1::CheckValidationResponse) -> Value {
    json!({
        "certificate": response.certificate.as_ref().map(certificate_json),
        "probes": response.probes.iter().map(|p| json!({
            "domain": p.domain,
            "found": p.found,
            "detail": p.detail,
        })).collect::<Vec<_>>(),
    })
}

/// One line per certificate of a bulk revocation.
pub fn bulk_result_text(result: &certflow_proto::v1::BulkRevokeResponse) -> String {
    use certflow_proto::v1::bulk_revoke_response::Outcome;
    let outcome = match &result.outcome {
        Some(Outcome::Certificate(cert)) => display::<CertificateStatus>(cert.status),
        Some(Outcome::Refusal(refusal)) => {
            format!(
                "refused {} {}: {}",
                refusal.code, refusal.reason, refusal.message
            )
        }
        None => "no outcome".to_string(),
    };
    format!(
        "[{}/{}] {} {}",
        result.completed, result.total, result.certificate_id, outcome
    )
}

/// One JSON object per certificate of a bulk revocation.
pub fn bulk_result_json(result: &certflow_proto::v1::BulkRevokeResponse) -> Value {
    use certflow_proto::v1::bulk_revoke_response::Outcome;
    let (status, refusal) = match &result.outcome {
        Some(Outcome::Certificate(cert)) => {
            (Some(display::<CertificateStatus>(cert.status)), Value::Null)
        }
        Some(Outcome::Refusal(r)) => (
            None,
            json!({"code": r.code, "reason": r.reason, "message": r.message}),
        ),
        None => (None, Value::Null),
    };
    json!({
        "certificate_id": result.certificate_id,
        "status": status,
        "refusal": refusal,
        "completed": result.completed,
        "total": result.total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(seconds: i64) -> Option<Timestamp> {
        Some(Timestamp { seconds, nanos: 0 })
    }

    fn sample() -> Certificate {
        Certificate {
            id: "c-1".to_owned(),
            account: "ACME".to_owned(),
            brand: Brand::Geotrust as i32,
            level: Level::Dv as i32,
            paid: true,
            key_algorithm: KeyAlgorithm::Rsa2048 as i32,
            domains: vec!["www.example.com".to_owned(), "example.com".to_owned()],
            term_years: 1,
            source: CertificateSource::Platform as i32,
            not_before: ts(1_700_000_000),
            not_after: ts(1_731_536_000),
            status: CertificateStatus::RevocationPending as i32,
            revocation: Some(Revocation {
                reason: RevocationReason::KeyCompromise as i32,
                description: String::new(),
                path: RevocationPath::ManualReview as i32,
                requested_at: ts(1_710_000_000),
                revoked_at: None,
                ..Revocation::default()
            }),
            ..Certificate::default()
        }
    }

    #[test]
    fn certificate_text_is_aligned_and_uses_short_names() {
        let text = certificate_text(&sample());
        assert!(text.contains("id:                      c-1\n"), "{text}");
        assert!(text.contains("status:                  revocation-pending\n"));
        assert!(text.contains("brand:                   geotrust\n"));
        assert!(text.contains("algorithm:               rsa-2048\n"));
        assert!(text.contains("domains:                 www.example.com, example.com\n"));
        assert!(text.contains("not_before:              2023-11-14T22:13:20Z\n"));
        assert!(text.contains("revocation_reason:       key-compromise\n"));
        assert!(text.contains("revocation_path:         manual-review\n"));
        assert!(text.contains("revoked_at:              -\n"));
        assert!(!text.contains("original_id"));
        assert!(!text.contains("revocation_description"));
    }

    #[test]
    fn list_text_has_one_line_per_certificate_and_the_token() {
        let mut other = sample();
        other.id = "c-22".to_owned();
        other.status = CertificateStatus::Issued as i32;
        other.domains.clear();
        let text = list_text(&[sample(), other], "tok");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "c-1   revocation-pending  geotrust/dv  www.example.com  2024-11-13T22:13:20Z",
                "c-22  issued              geotrust/dv  -                2024-11-13T22:13:20Z",
                "next_page_token: tok",
            ]
        );
        assert_eq!(list_text(&[], ""), "");
    }

    #[test]
    fn history_text_shows_every_event() {
        let event = HistoryEvent {
            sequence: 7,
            event_type: "CertificateIssued".to_owned(),
            recorded_at: ts(0),
            actor_subject: "alice".to_owned(),
            actor_account: "ACME".to_owned(),
            request_id: "r-1".to_owned(),
            summary: "issued for www.example.com".to_owned(),
            ..HistoryEvent::default()
        };
        assert_eq!(
            history_text(&[event]),
            "7  1970-01-01T00:00:00Z  CertificateIssued  alice (ACME)  r-1  issued for www.example.com\n"
        );
    }

    #[test]
    fn certificate_json_carries_the_pem_and_chain_readme_promises() {
        let mut cert = sample();
        cert.pem = "-----BEGIN CERTIFICATE-----\nleaf\n".into();
        cert.chain_pem = "-----BEGIN CERTIFICATE-----\nchain\n".into();
        cert.private_key_held = true;
        let value = certificate_json(&cert);
        assert_eq!(value["pem"], "-----BEGIN CERTIFICATE-----\nleaf\n");
        assert_eq!(value["chain_pem"], "-----BEGIN CERTIFICATE-----\nchain\n");
        assert_eq!(value["private_key_held"], true);
        assert_eq!(value["reissue_ids"], json!([]));
    }

    #[test]
    fn certificate_json_uses_short_names_and_null_for_absent_fields() {
        let value = certificate_json(&sample());
        assert_eq!(value["id"], "c-1");
        assert_eq!(value["account"], "ACME");
        assert_eq!(value["status"], "revocation-pending");
        assert_eq!(value["brand"], "geotrust");
        assert_eq!(value["level"], "dv");
        assert_eq!(value["paid"], true);
        assert_eq!(value["key_algorithm"], "rsa-2048");
        assert_eq!(value["domains"], json!(["www.example.com", "example.com"]));
        assert_eq!(value["term_years"], 1);
        assert_eq!(value["issued_at"], Value::Null);
        assert_eq!(value["not_before"], "2023-11-14T22:13:20Z");
        assert_eq!(value["not_after"], "2024-11-13T22:13:20Z");
        assert_eq!(value["original_id"], "");
        assert_eq!(value["validation_setup"], json!([]));
        assert_eq!(value["renewal_ordered"], false);
        assert_eq!(
            value["revocation"],
            json!({
                "reason": "key-compromise",
                "reason_code": 1,
                "description": "",
                "path": "manual-review",
                "requested_at": "2024-03-09T16:00:00Z",
                "revoked_at": null,
                "validation_method": null,
                "cause": null,
                "cause_certificate_id": null,
                "validation": null,
            })
        );
        let mut bare = sample();
        bare.revocation = None;
        assert_eq!(certificate_json(&bare)["revocation"], Value::Null);
    }

    #[test]
    fn pretty_json_parses_back_to_the_same_value() {
        let value = list_json(&[sample()], "tok");
        let text = serde_json::to_string_pretty(&value).expect("a Value always serializes");
        assert!(text.contains("\n  \"certificates\": ["), "{text}");
        assert!(
            text.contains("\"status\": \"revocation-pending\""),
            "{text}"
        );
        let parsed: Value = serde_json::from_str(&text).expect("pretty output is valid JSON");
        assert_eq!(parsed, value);
        assert_eq!(parsed["next_page_token"], "tok");
        assert_eq!(parsed["certificates"][0]["id"], "c-1");
        assert_eq!(parsed["certificates"].as_array().map(Vec::len), Some(1));
        assert_eq!(
            list_json(&[], ""),
            json!({ "certificates": [], "next_page_token": "" })
        );
    }

    #[test]
    fn history_json_has_every_event_field() {
        let event = HistoryEvent {
            sequence: 7,
            event_type: "CertificateIssued".to_owned(),
            recorded_at: ts(0),
            actor_subject: "alice".to_owned(),
            actor_account: "ACME".to_owned(),
            command_id: "cmd-1".to_owned(),
            correlation_id: "cor-1".to_owned(),
            request_id: "r-1".to_owned(),
            summary: "issued for www.example.com".to_owned(),
        };
        assert_eq!(
            history_json(&[event]),
            json!({
                "events": [{
                    "sequence": 7,
                    "event_type": "CertificateIssued",
                    "recorded_at": "1970-01-01T00:00:00Z",
                    "actor_subject": "alice",
                    "actor_account": "ACME",
                    "command_id": "cmd-1",
                    "correlation_id": "cor-1",
                    "request_id": "r-1",
                    "summary": "issued for www.example.com",
                }]
            })
        );
    }

    #[test]
    fn certificate_text_shows_each_challenge_and_where_its_value_goes() {
        let mut cert = sample();
        cert.revocation = Some(Revocation {
            path: RevocationPath::DomainValidation as i32,
            validation: Some(certflow_proto::v1::DomainValidation {
                challenges: vec![
                    Challenge {
                        domain: "www.example.com".into(),
                        method: ValidationMethod::Dns as i32,
                        value: "v1".into(),
                        dns_record_name: "_dnsauth.www.example.com".into(),
                        ..Challenge::default()
                    },
                    Challenge {
                        domain: "api.example.com".into(),
                        method: ValidationMethod::DnsAuto as i32,
                        validated_at: ts(1_710_000_000),
                        ..Challenge::default()
                    },
                ],
                deadline: ts(1_710_259_200),
                ..Default::default()
            }),
            ..Revocation::default()
        });
        let text = certificate_text(&cert);
        assert!(
            text.contains("www.example.com dns _dnsauth.www.example.com = v1 (waiting)"),
            "{text}"
        );
        assert!(
            text.contains("api.example.com dns-auto (proven 2024-03-09"),
            "{text}"
        );
        assert!(text.contains("validation_outcome"), "{text}");
    }

    #[test]
    fn bulk_results_say_revoked_or_why_not() {
        use certflow_proto::v1::{
            BulkRevokeRefusal, BulkRevokeResponse, bulk_revoke_response::Outcome,
        };
        let revoked = BulkRevokeResponse {
            certificate_id: "c-1".into(),
            outcome: Some(Outcome::Certificate(Certificate {
                status: CertificateStatus::Revoked as i32,
                ..Certificate::default()
            })),
            completed: 1,
            total: 2,
        };
        assert_eq!(bulk_result_text(&revoked), "[1/2] c-1 revoked");
        let refused = BulkRevokeResponse {
            certificate_id: "c-2".into(),
            outcome: Some(Outcome::Refusal(BulkRevokeRefusal {
                code: "FAILED_PRECONDITION".into(),
                reason: "ALREADY_REVOKED".into(),
                message: "already revoked".into(),
            })),
            completed: 2,
            total: 2,
        };
        assert_eq!(
            bulk_result_text(&refused),
            "[2/2] c-2 refused FAILED_PRECONDITION ALREADY_REVOKED: already revoked"
        );
        assert_eq!(
            bulk_result_json(&refused)["refusal"]["reason"],
            "ALREADY_REVOKED"
        );
    }
}
