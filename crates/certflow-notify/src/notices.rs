//! What an account is told, decided from the events of the log without IO: which events
//! make which notifications, their ids, their bodies, and their email text.
//!
//! A notification's id is derived from the event it tells of (the log's sequence and the
//! event's place in its batch), so a redelivered event makes the same notification, and
//! every attempt to deliver it carries the same `webhook-id`.

use std::time::Duration;

use certflow_domain::reactions::{self, ValidationFor};
use certflow_domain::{
    Certificate, Event, RevocationCause, RevocationFailure, RevocationReason, State, Timestamp,
    ValidationMethod,
};
use certflow_proto::convert::api::{dns_record_name, file_url};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// What a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Kind {
    ChallengesIssued,
    DeadlineApproaching,
    RevocationCompleted,
    RevocationFailed,
    ReviewRejected,
    ReissueCompleted,
    KeyBlocked,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 7] = [
        Kind::ChallengesIssued,
        Kind::DeadlineApproaching,
        Kind::RevocationCompleted,
        Kind::RevocationFailed,
        Kind::ReviewRejected,
        Kind::ReissueCompleted,
        Kind::KeyBlocked,
    ];

    /// The webhook body's `type`.
    pub const fn type_name(self) -> &'static str {
        match self {
            Kind::ChallengesIssued => "validation.challenges_issued",
            Kind::DeadlineApproaching => "validation.deadline_approaching",
            Kind::RevocationCompleted => "revocation.completed",
            Kind::RevocationFailed => "revocation.failed",
            Kind::ReviewRejected => "review.rejected",
            Kind::ReissueCompleted => "reissue.completed",
            Kind::KeyBlocked => "key.blocked",
        }
    }
}

/// One notification, as every attempt to deliver it sends it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    /// `msg_` and 32 hex digits: the `webhook-id`.
    pub id: String,
    pub kind: Kind,
    pub certificate_id: String,
    /// When what it tells of happened, Unix milliseconds.
    pub occurred_at: i64,
    /// The body's `data`.
    pub data: Value,
}

/// A reminder to send before a validation's deadline, if it is still open then.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reminder {
    pub certificate_id: String,
    /// The reissue whose validation it is; none for a revocation's.
    pub reissue_id: Option<String>,
    /// The validation's deadline, Unix milliseconds.
    pub deadline: i64,
    /// When to send it, Unix milliseconds.
    pub due_at: i64,
}

impl Reminder {
    /// The reminder's message id in the queue: one per validation.
    pub fn queue_id(&self) -> String {
        format!(
            "remind-{}-{}-{}",
            self.certificate_id,
            self.reissue_id.as_deref().unwrap_or("revocation"),
            self.deadline
        )
    }
}

/// What one batch of events asks of the notifier.
#[derive(Debug, Default, PartialEq)]
pub struct Planned {
    pub notices: Vec<Notice>,
    pub reminders: Vec<Reminder>,
}

/// The notifications the events of one batch (stream sequence `sequence`) make, told from
/// the certificate's state after them; and a reminder `remind_before` each new validation's
/// deadline (none when that is already past at issue). `rejection` is the comment of the
/// review rejection that came before the batch, for a revocation failed by it.
pub fn plan(
    state: &State,
    sequence: u64,
    events: &[Event],
    rejection: Option<&str>,
    remind_before: Duration,
) -> Planned {
    let mut planned = Planned::default();
    let Some(certificate) = state else {
        return planned;
    };
    for (index, event) in events.iter().enumerate() {
        let notice = |kind: Kind, occurred_at: Timestamp, data: Value| Notice {
            id: notice_id(&format!("{sequence}/{index}/{}", kind.type_name())),
            kind,
            certificate_id: certificate.id.to_string(),
            occurred_at: occurred_at.unix_millis(),
            data,
        };
        match event {
            Event::ValidationChallengesIssued(issued) => {
                let subject = match &issued.reissue_id {
                    Some(id) => ValidationFor::Reissue(id.clone()),
                    None => ValidationFor::Revocation,
                };
                planned.notices.push(notice(
                    Kind::ChallengesIssued,
                    issued.issued_at,
                    challenges_data(certificate, &subject, issued.deadline, &issued.challenges),
                ));
                let due_at = issued.deadline.minus(millis(remind_before));
                if due_at > issued.issued_at {
                    planned.reminders.push(Reminder {
                        certificate_id: certificate.id.to_string(),
                        reissue_id: issued.reissue_id.clone(),
                        deadline: issued.deadline.unix_millis(),
                        due_at: due_at.unix_millis(),
                    });
                }
            }
            Event::Revoked(revoked) => {
                planned.notices.push(notice(
                    Kind::RevocationCompleted,
                    revoked.revoked_at,
                    json!({
                        "certificate_id": certificate.id.to_string(),
                        "serial_number": certificate.serial_number,
                        "domains": domains(certificate),
                        "reason": revoked.reason.to_string(),
                        "cause": cause(&revoked.cause),
                        "revoked_at": rfc3339(revoked.revoked_at),
                    }),
                ));
                let first_hand = matches!(
                    revoked.cause,
                    RevocationCause::Requested | RevocationCause::KeyProven
                );
                if revoked.reason == RevocationReason::KeyCompromise && first_hand {
                    planned.notices.push(notice(
                        Kind::KeyBlocked,
                        revoked.revoked_at,
                        json!({
                            "certificate_id": certificate.id.to_string(),
                            "public_key_sha256": certificate.public_key_sha256,
                            "domains": domains(certificate),
                            "blocked_at": rfc3339(revoked.revoked_at),
                            "what_follows": "every certificate bound to this key is revoked, \
                                and no certificate, reissue or CSR may use it again",
                        }),
                    ));
                }
            }
            Event::RevocationFailed(failed) => {
                let (why, detail) = match failed.failure {
                    RevocationFailure::ValidationExpired => (
                        "validation_expired",
                        "ownership of every domain was not proven before the deadline; \
                         request the revocation again to get new challenges",
                    ),
                    RevocationFailure::ReviewRejected => (
                        "review_rejected",
                        "a reviewer rejected the request; see the comment",
                    ),
                };
                planned.notices.push(notice(
                    Kind::RevocationFailed,
                    failed.failed_at,
                    json!({
                        "certificate_id": certificate.id.to_string(),
                        "domains": domains(certificate),
                        "why": why,
                        "detail": detail,
                        "review_comment": match failed.failure {
                            RevocationFailure::ReviewRejected => last_rejection_comment(events)
                                .or_else(|| rejection.map(str::to_string)),
                            RevocationFailure::ValidationExpired => None,
                        },
                        "failed_at": rfc3339(failed.failed_at),
                    }),
                ));
            }
            Event::ReviewRejected(rejected) => {
                planned.notices.push(notice(
                    Kind::ReviewRejected,
                    rejected.vote.at,
                    json!({
                        "certificate_id": certificate.id.to_string(),
                        "domains": domains(certificate),
                        "of": if rejected.reissue_id.is_some() { "reissue" } else { "revocation" },
                        "reissue_id": rejected.reissue_id,
                        "comment": rejected.vote.comment,
                        "rejected_at": rfc3339(rejected.vote.at),
                    }),
                ));
            }
            Event::ReissueCompleted(completed) => {
                planned.notices.push(notice(
                    Kind::ReissueCompleted,
                    completed.completed_at,
                    json!({
                        "certificate_id": certificate.id.to_string(),
                        "reissue_id": completed.reissue_id,
                        "new_certificate_id": completed.certificate_id.to_string(),
                        "domains": domains(certificate),
                        "completed_at": rfc3339(completed.completed_at),
                    }),
                ));
            }
            _ => {}
        }
    }
    planned
}

/// The reminder's notification at `now`, when the validation it is for is still open with
/// the same deadline, not yet past; `None` when it has ended (passed, expired, cancelled),
/// changed or is past its deadline.
pub fn remind(state: &State, reminder: &Reminder, now: Timestamp) -> Option<Notice> {
    let certificate = state.as_ref()?;
    let subject = match &reminder.reissue_id {
        Some(id) => ValidationFor::Reissue(id.clone()),
        None => ValidationFor::Revocation,
    };
    let deadline = reactions::validation_deadline(state, &subject)?;
    if deadline.unix_millis() != reminder.deadline || deadline <= now {
        return None;
    }
    let open: Vec<certflow_domain::Challenge> = reactions::open_challenges(state, &subject)
        .into_iter()
        .map(|(domain, method, value)| certflow_domain::Challenge {
            domain,
            method,
            value,
            validated_at: None,
        })
        .collect();
    let mut data = challenges_data(certificate, &subject, deadline, &open);
    if let Some(object) = data.as_object_mut() {
        let left = Duration::from_millis(
            u64::try_from(reminder.deadline.saturating_sub(now.unix_millis())).unwrap_or(0),
        );
        object.insert("hours_left".into(), json!(left.as_secs() / 3600));
    }
    Some(Notice {
        id: notice_id(&reminder.queue_id()),
        kind: Kind::DeadlineApproaching,
        certificate_id: certificate.id.to_string(),
        occurred_at: reminder.due_at,
        data,
    })
}

/// The Standard Webhooks body: `type`, `timestamp` and `data`.
pub fn webhook_body(notice: &Notice) -> Vec<u8> {
    let body = json!({
        "type": notice.kind.type_name(),
        "timestamp": rfc3339(Timestamp::from_unix_millis(notice.occurred_at)),
        "data": notice.data,
    });
    serde_json::to_vec(&body).unwrap_or_default()
}

/// An email's subject and plain-text body.
pub fn email_text(notice: &Notice) -> (String, String) {
    let data = &notice.data;
    let text = |key: &str| {
        data.get(key)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let domains = data
        .get("domains")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    let certificate = &notice.certificate_id;
    let (subject, mut body) = match notice.kind {
        Kind::ChallengesIssued | Kind::DeadlineApproaching => {
            let subject = if notice.kind == Kind::ChallengesIssued {
                format!("Prove ownership of {domains} by {}", text("deadline"))
            } else {
                format!(
                    "{} hours left to prove ownership of {domains}",
                    data.get("hours_left").and_then(Value::as_u64).unwrap_or(0)
                )
            };
            let mut body = format!(
                "To complete the {} of certificate {certificate}, publish the following \
                 before {}:\n\n",
                text("of"),
                text("deadline")
            );
            for challenge in data
                .get("challenges")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let field = |key: &str| challenge.get(key).and_then(Value::as_str).unwrap_or("");
                match field("method") {
                    "dns" => body.push_str(&format!(
                        "- {}: a TXT record at {} with the value {}\n",
                        field("domain"),
                        field("record_name"),
                        field("value")
                    )),
                    "file" => body.push_str(&format!(
                        "- {}: the file {} containing {}\n",
                        field("domain"),
                        field("file_url"),
                        field("value")
                    )),
                    _ => {}
                }
            }
            body.push_str("\nIf ownership is not proven by the deadline, the request fails.\n");
            (subject, body)
        }
        Kind::RevocationCompleted => (
            format!("Certificate for {domains} revoked"),
            format!(
                "Certificate {certificate} ({domains}) was revoked at {} (reason: {}).\n",
                text("revoked_at"),
                text("reason")
            ),
        ),
        Kind::RevocationFailed => (
            format!("Revocation of the certificate for {domains} failed"),
            format!(
                "The revocation of certificate {certificate} ({domains}) ended without \
                 revoking: {}.\n{}",
                text("detail"),
                match data.get("review_comment").and_then(Value::as_str) {
                    Some(comment) => format!("The reviewer wrote: {comment}\n"),
                    None => String::new(),
                }
            ),
        ),
        Kind::ReviewRejected => (
            format!("Review of the {} for {domains} rejected", text("of")),
            format!(
                "A reviewer rejected the {} of certificate {certificate} ({domains}).\n\
                 The reviewer wrote: {}\n",
                text("of"),
                text("comment")
            ),
        ),
        Kind::ReissueCompleted => (
            format!("Reissued certificate for {domains} ready"),
            format!(
                "The reissue of certificate {certificate} is complete: the new certificate is \
                 {}. Download it and install it in place of the original.\n",
                text("new_certificate_id")
            ),
        ),
        Kind::KeyBlocked => (
            format!("Key of the certificate for {domains} blocked"),
            format!(
                "The key of certificate {certificate} was revoked for compromise. {}.\n",
                text("what_follows")
            ),
        ),
    };
    body.push_str(&format!("\nNotification {}\n", notice.id));
    (subject, body)
}

/// `msg_` and the first 128 bits of a name-based UUID of `name`, as hex.
fn notice_id(name: &str) -> String {
    const NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6365_7274_666c_6f77_6e6f_7469_6365_0001);
    format!(
        "msg_{}",
        uuid::Uuid::new_v5(&NAMESPACE, name.as_bytes()).simple()
    )
}

fn challenges_data(
    certificate: &Certificate,
    subject: &ValidationFor,
    deadline: Timestamp,
    challenges: &[certflow_domain::Challenge],
) -> Value {
    let challenges: Vec<Value> = challenges
        .iter()
        .filter(|challenge| challenge.validated_at.is_none())
        .filter_map(|challenge| {
            let domain = challenge.domain.as_str();
            match challenge.method {
                // The names the API shows too: a wildcard's challenge is on its base domain.
                ValidationMethod::Dns => Some(json!({
                    "domain": domain,
                    "method": "dns",
                    "record_name": dns_record_name(&challenge.domain),
                    "record_type": "TXT",
                    "value": challenge.value,
                })),
                ValidationMethod::File => Some(json!({
                    "domain": domain,
                    "method": "file",
                    "file_url": file_url(&challenge.domain),
                    "value": challenge.value,
                })),
                ValidationMethod::DnsAuto => None,
            }
        })
        .collect();
    json!({
        "certificate_id": certificate.id.to_string(),
        "domains": domains(certificate),
        "of": match subject {
            ValidationFor::Revocation => "revocation",
            ValidationFor::Reissue(_) => "reissue",
        },
        "reissue_id": subject.reissue_id(),
        "deadline": rfc3339(deadline),
        "challenges": challenges,
    })
}

fn domains(certificate: &Certificate) -> Vec<&str> {
    certificate.domains.iter().map(|d| d.as_str()).collect()
}

fn cause(cause: &RevocationCause) -> Value {
    match cause {
        RevocationCause::Requested => json!({"kind": "requested"}),
        RevocationCause::KeyProven => json!({"kind": "key_proven"}),
        RevocationCause::OriginalRevoked { original } => {
            json!({"kind": "original_revoked", "original": original.to_string()})
        }
        RevocationCause::KeyCompromised { certificate } => {
            json!({"kind": "key_compromised", "certificate": certificate.to_string()})
        }
    }
}

/// The comment of the last rejection of a revocation (not a reissue's) among `events`.
pub fn last_rejection_comment(events: &[Event]) -> Option<String> {
    events.iter().rev().find_map(|event| match event {
        Event::ReviewRejected(rejected) if rejected.reissue_id.is_none() => {
            Some(rejected.vote.comment.clone())
        }
        _ => None,
    })
}

/// `2026-12-07T15:04:05.123Z`.
pub fn rfc3339(timestamp: Timestamp) -> String {
    let nanos = i128::from(timestamp.unix_millis()) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

fn millis(duration: Duration) -> certflow_domain::Duration {
    certflow_domain::Duration::millis(i64::try_from(duration.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use certflow_domain::{
        Brand, CertificateId, CertificateIssued, CertificateRevoked, Challenge, DomainName, Event,
        KeyAlgorithm, Level, ReissueCompleted, ReviewRejected, RevocationFailed, RevocationPath,
        RevocationRequested, ValidationChallengesIssued, Vote, evolve,
    };

    use super::*;

    const HOUR: i64 = 3600 * 1000;

    fn at(millis: i64) -> Timestamp {
        Timestamp::from_unix_millis(millis)
    }

    fn id() -> CertificateId {
        CertificateId::parse("7af2f456-efbd-5533-8a06-22be971f97ca").expect("id")
    }

    fn issued() -> Event {
        Event::Issued(CertificateIssued {
            id: id(),
            account: "acme".into(),
            brand: Brand::GeoTrust,
            level: Level::Dv,
            paid: true,
            algorithm: KeyAlgorithm::EccP256,
            domains: vec![DomainName::parse("shop.example.com").expect("domain")],
            term_years: 1,
            issued_at: at(0),
            not_before: at(0),
            not_after: at(365 * 24 * HOUR),
            validation_setup: BTreeMap::new(),
            renewal_ordered: false,
            x509: None,
            original: None,
            enterprise_info: BTreeMap::new(),
            legacy: false,
        })
    }

    fn requested() -> Event {
        Event::RevocationRequested(RevocationRequested {
            reason: RevocationReason::Superseded,
            description: String::new(),
            path: RevocationPath::DomainValidation,
            requested_at: at(HOUR),
            validation_method: ValidationMethod::Dns,
            requested_by: "acme".into(),
        })
    }

    fn challenges(deadline: i64) -> Event {
        Event::ValidationChallengesIssued(ValidationChallengesIssued {
            reissue_id: None,
            challenges: vec![Challenge {
                domain: DomainName::parse("shop.example.com").expect("domain"),
                method: ValidationMethod::Dns,
                value: "0123456789abcdef0123456789abcdef".into(),
                validated_at: None,
            }],
            issued_at: at(HOUR),
            deadline: at(deadline),
        })
    }

    fn state(events: &[Event]) -> State {
        events.iter().fold(None, evolve)
    }

    #[test]
    fn challenges_tell_what_to_publish_and_plan_a_reminder_a_day_before_the_deadline() {
        let deadline = HOUR + 72 * HOUR;
        let events = [issued(), requested(), challenges(deadline)];
        let state = state(&events);
        let planned = plan(
            &state,
            7,
            &events[2..],
            None,
            Duration::from_secs(24 * 3600),
        );
        assert_eq!(planned.notices.len(), 1);
        let notice = &planned.notices[0];
        assert_eq!(notice.kind, Kind::ChallengesIssued);
        assert_eq!(notice.data["of"], "revocation");
        assert_eq!(
            notice.data["challenges"][0]["record_name"],
            "_dnsauth.shop.example.com"
        );
        assert_eq!(notice.data["deadline"], rfc3339(at(deadline)));
        // A wildcard's challenge is published on its base domain, as the API says.
        let wildcard = Event::ValidationChallengesIssued(ValidationChallengesIssued {
            reissue_id: None,
            challenges: vec![
                Challenge {
                    domain: DomainName::parse("*.shop.example.com").expect("domain"),
                    method: ValidationMethod::Dns,
                    value: "v".into(),
                    validated_at: None,
                },
                Challenge {
                    domain: DomainName::parse("*.files.example.com").expect("domain"),
                    method: ValidationMethod::File,
                    value: "w".into(),
                    validated_at: None,
                },
            ],
            issued_at: at(HOUR),
            deadline: at(deadline),
        });
        let told = plan(&state, 8, &[wildcard], None, Duration::ZERO);
        let data = &told.notices[0].data;
        assert_eq!(
            data["challenges"][0]["record_name"],
            "_dnsauth.shop.example.com"
        );
        assert_eq!(
            data["challenges"][1]["file_url"],
            "http://files.example.com/.well-known/pki-validation/fileauth.txt"
        );
        assert_eq!(
            planned.reminders,
            vec![Reminder {
                certificate_id: id().to_string(),
                reissue_id: None,
                deadline,
                due_at: deadline - 24 * HOUR,
            }]
        );
        // The same event planned again (a redelivery) makes the same notification.
        let again = plan(
            &state,
            7,
            &events[2..],
            None,
            Duration::from_secs(24 * 3600),
        );
        assert_eq!(again, planned);
        assert_ne!(
            plan(
                &state,
                8,
                &events[2..],
                None,
                Duration::from_secs(24 * 3600)
            )
            .notices[0]
                .id,
            notice.id
        );
        // A window shorter than the reminder's lead plans none.
        let short = plan(
            &state,
            7,
            &events[2..],
            None,
            Duration::from_secs(73 * 3600),
        );
        assert!(short.reminders.is_empty());
        let (subject, body) = email_text(notice);
        assert!(subject.contains("shop.example.com"), "{subject}");
        assert!(body.contains("_dnsauth.shop.example.com"), "{body}");
        assert!(body.contains("0123456789abcdef0123456789abcdef"), "{body}");
        assert!(body.contains(&notice.id), "{body}");
    }

    #[test]
    fn a_reminder_goes_out_only_while_its_validation_is_open_with_the_same_deadline() {
        let deadline = HOUR + 72 * HOUR;
        let open = [issued(), requested(), challenges(deadline)];
        let state_open = state(&open);
        let reminder = plan(
            &state_open,
            7,
            &open[2..],
            None,
            Duration::from_secs(24 * 3600),
        )
        .reminders
        .remove(0);
        let due = at(reminder.due_at);
        let notice = remind(&state_open, &reminder, due).expect("still open");
        assert_eq!(notice.kind, Kind::DeadlineApproaching);
        assert_eq!(notice.data["hours_left"], 24);
        // Sent late, it says what is left then; past the deadline, it is not sent.
        let late = remind(&state_open, &reminder, at(deadline - 5 * HOUR)).expect("open");
        assert_eq!(late.data["hours_left"], 5);
        assert_eq!(late.id, notice.id);
        assert_eq!(remind(&state_open, &reminder, at(deadline)), None);
        assert_eq!(
            notice.data["challenges"][0]["value"],
            "0123456789abcdef0123456789abcdef"
        );
        assert_eq!(remind(&state_open, &reminder, due), Some(notice));
        let mut failed = open.to_vec();
        failed.push(Event::ValidationExpired(
            certflow_domain::ValidationExpired {
                reissue_id: None,
                expired_at: at(deadline),
            },
        ));
        failed.push(Event::RevocationFailed(RevocationFailed {
            failure: RevocationFailure::ValidationExpired,
            failed_at: at(deadline),
        }));
        assert_eq!(remind(&state(&failed), &reminder, due), None);
        let other_deadline = Reminder {
            deadline: deadline + 1,
            ..reminder.clone()
        };
        assert_eq!(remind(&state_open, &other_deadline, due), None);
        assert_eq!(remind(&None, &reminder, due), None);
    }

    #[test]
    fn each_outcome_is_told_once_and_a_key_compromise_also_says_the_key_is_blocked() {
        let base = [issued()];
        let revoked = |reason, cause| {
            Event::Revoked(CertificateRevoked {
                reason,
                revoked_at: at(2 * HOUR),
                cause,
            })
        };
        let kinds = |events: &[Event]| -> Vec<Kind> {
            let mut all = base.to_vec();
            all.extend_from_slice(events);
            plan(&state(&all), 9, events, None, Duration::ZERO)
                .notices
                .iter()
                .map(|n| n.kind)
                .collect()
        };
        assert_eq!(
            kinds(&[revoked(
                RevocationReason::Superseded,
                RevocationCause::Requested
            )]),
            vec![Kind::RevocationCompleted]
        );
        assert_eq!(
            kinds(&[revoked(
                RevocationReason::KeyCompromise,
                RevocationCause::Requested
            )]),
            vec![Kind::RevocationCompleted, Kind::KeyBlocked]
        );
        assert_eq!(
            kinds(&[revoked(
                RevocationReason::KeyCompromise,
                RevocationCause::KeyProven
            )]),
            vec![Kind::RevocationCompleted, Kind::KeyBlocked]
        );
        // A certificate revoked because another with its key was: the key was already
        // blocked, and that certificate's account was told.
        assert_eq!(
            kinds(&[revoked(
                RevocationReason::KeyCompromise,
                RevocationCause::KeyCompromised { certificate: id() }
            )]),
            vec![Kind::RevocationCompleted]
        );
        let vote = Vote {
            reviewer: "rita".into(),
            account: "desk".into(),
            comment: "not stamped".into(),
            at: at(3 * HOUR),
        };
        assert_eq!(
            kinds(&[Event::ReviewRejected(ReviewRejected {
                reissue_id: None,
                vote: vote.clone(),
            })]),
            vec![Kind::ReviewRejected]
        );
        assert_eq!(
            kinds(&[Event::ReissueCompleted(ReissueCompleted {
                reissue_id: "r1".into(),
                certificate_id: id(),
                completed_at: at(3 * HOUR),
            })]),
            vec![Kind::ReissueCompleted]
        );
        assert!(kinds(&[requested()]).is_empty());
        // A failure by review carries the comment, whether in its batch or before it.
        let failure = Event::RevocationFailed(RevocationFailed {
            failure: RevocationFailure::ReviewRejected,
            failed_at: at(3 * HOUR),
        });
        let mut all = base.to_vec();
        all.push(failure.clone());
        let told = plan(
            &state(&all),
            9,
            &[failure],
            Some("not stamped"),
            Duration::ZERO,
        );
        assert_eq!(told.notices[0].kind, Kind::RevocationFailed);
        assert_eq!(told.notices[0].data["why"], "review_rejected");
        assert_eq!(told.notices[0].data["review_comment"], "not stamped");
        // Nothing is told about a certificate the log does not know.
        assert_eq!(
            plan(&None, 9, &base, None, Duration::ZERO),
            Planned::default()
        );
    }

    #[test]
    fn the_webhook_body_is_type_timestamp_and_data_and_every_kind_has_a_name_and_email() {
        let mut names = std::collections::BTreeSet::new();
        for kind in Kind::ALL {
            assert!(names.insert(kind.type_name()));
            let notice = Notice {
                id: "msg_1".into(),
                kind,
                certificate_id: id().to_string(),
                occurred_at: 0,
                data: json!({"domains": ["shop.example.com"]}),
            };
            let body: Value = serde_json::from_slice(&webhook_body(&notice)).expect("JSON");
            assert_eq!(body["type"], kind.type_name());
            assert_eq!(body["timestamp"], "1970-01-01T00:00:00Z");
            assert_eq!(body["data"]["domains"][0], "shop.example.com");
            let (subject, text) = email_text(&notice);
            assert!(subject.contains("shop.example.com"), "{kind:?}: {subject}");
            assert!(text.contains("msg_1"));
        }
    }
}
