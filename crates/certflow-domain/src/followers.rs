//! Which services react to which events, so each receives only those.
//!
//! The event log names, in each message's subject, the reacting services its events concern
//! ([`Followers::token`]); each service's durable consumer takes only the subjects that name it
//! ([`Follower::tokens`]). A plain revocation or an issue then reaches the revocation service
//! alone instead of all four. Each service's reactions act on the events
//! [`Follower::reacts_to`] admits and no others, so what it is sent and what it does cannot
//! drift apart.

use crate::{Event, RevocationPath};

/// A service that reacts to the log through a durable consumer of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Follower {
    Revocation,
    Validation,
    Review,
    Reissue,
}

impl Follower {
    /// Every reacting service, in the order their letters take in a token.
    pub const ALL: [Follower; 4] = [
        Follower::Revocation,
        Follower::Validation,
        Follower::Review,
        Follower::Reissue,
    ];

    /// The service's name: its consumer's name and its `ServiceSpec`'s.
    pub fn name(self) -> &'static str {
        match self {
            Follower::Revocation => "revocation",
            Follower::Validation => "validation",
            Follower::Review => "review",
            Follower::Reissue => "reissue",
        }
    }

    /// The follower named `name`, if a service of that name reacts to the log.
    pub fn named(name: &str) -> Option<Follower> {
        Follower::ALL.into_iter().find(|f| f.name() == name)
    }

    fn bit(self) -> u8 {
        match self {
            Follower::Revocation => 1,
            Follower::Validation => 2,
            Follower::Review => 4,
            Follower::Reissue => 8,
        }
    }

    fn letter(self) -> char {
        match self {
            Follower::Revocation => 'r',
            Follower::Validation => 'v',
            Follower::Review => 'w',
            Follower::Reissue => 'i',
        }
    }

    /// Whether the service acts on `event`.
    pub fn reacts_to(self, event: &Event) -> bool {
        match self {
            // Binds keys (REV-16), concludes revocations (REV-11), cascades (REV-5, REV-16).
            Follower::Revocation => matches!(
                event,
                Event::Issued(_)
                    | Event::Uploaded(_)
                    | Event::ValidationPassed(_)
                    | Event::ValidationExpired(_)
                    | Event::ReviewPassed(_)
                    | Event::ReviewRejected(_)
                    | Event::Revoked(_)
            ),
            // Issues challenges and schedules their checks.
            Follower::Validation => match event {
                Event::RevocationRequested(requested) => {
                    requested.path == RevocationPath::DomainValidation
                }
                Event::ReissueRequested(requested) => requested.needs_validation,
                Event::ValidationChallengesIssued(_) => true,
                _ => false,
            },
            // Queues reviews and offers them to reviewers.
            Follower::Review => match event {
                Event::RevocationRequested(requested) => requested.path.needs_review(),
                Event::ReissueRequested(requested) => requested.needs_review,
                Event::RevocationDocumentUploaded(_)
                | Event::ReviewQueued(_)
                | Event::ReviewApproved(_) => true,
                _ => false,
            },
            // Completes or fails reissues and releases their reservations.
            Follower::Reissue => matches!(
                event,
                Event::ReissueRequested(_)
                    | Event::ReviewPassed(_)
                    | Event::ReviewRejected(_)
                    | Event::ValidationPassed(_)
                    | Event::ValidationExpired(_)
                    | Event::ReissueCompleted(_)
                    | Event::ReissueFailed(_)
            ),
        }
    }

    /// Every token that names this service: the subjects its consumer takes.
    pub fn tokens(self) -> Vec<String> {
        (0..16u8)
            .map(Followers)
            .filter(|followers| followers.contains(self))
            .map(Followers::token)
            .collect()
    }
}

/// The reacting services a command's events concern.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Followers(u8);

impl Followers {
    /// The services that react to at least one of `events`.
    pub fn of(events: &[Event]) -> Self {
        Followers(
            Follower::ALL
                .into_iter()
                .filter(|follower| events.iter().any(|event| follower.reacts_to(event)))
                .fold(0, |bits, follower| bits | follower.bit()),
        )
    }

    /// Whether `follower` is one of them.
    pub fn contains(self, follower: Follower) -> bool {
        self.0 & follower.bit() != 0
    }

    /// The subject token that names them: their letters in a fixed order (`r` revocation,
    /// `v` validation, `w` review, `i` reissue), or `-` for none.
    pub fn token(self) -> String {
        let token: String = Follower::ALL
            .into_iter()
            .filter(|follower| self.contains(*follower))
            .map(Follower::letter)
            .collect();
        if token.is_empty() { "-".into() } else { token }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{check, issue, now, revoke};
    use crate::{
        CertificateDeleted, CertificateRevoked, Command, ReissueCompleted, ReissueFailed,
        ReissueFailure, ReissueKey, ReissueRequested, RenewalOrdered, ReviewPassed, ReviewRejected,
        RevocationCause, RevocationFailed, RevocationFailure, RevocationReason,
        RevocationRequested, ValidationExpired, ValidationMethod, ValidationPassed, Vote,
    };
    use std::collections::BTreeSet;

    fn token(events: &[Event]) -> String {
        Followers::of(events).token()
    }

    fn requested(path: RevocationPath) -> Event {
        Event::RevocationRequested(RevocationRequested {
            reason: RevocationReason::Superseded,
            description: String::new(),
            path,
            requested_at: now(),
            validation_method: ValidationMethod::Dns,
            requested_by: "acme".into(),
        })
    }

    fn reissue(needs_validation: bool, needs_review: bool) -> Event {
        Event::ReissueRequested(ReissueRequested {
            reissue_id: "r1".into(),
            new_certificate_id: crate::testing::certificate_id("new"),
            domains: Vec::new(),
            key: ReissueKey::Original,
            reason: String::new(),
            needs_validation,
            validation_method: ValidationMethod::Dns,
            needs_review,
            enterprise_info: Default::default(),
            requested_by: "acme".into(),
            requested_at: now(),
        })
    }

    fn vote() -> Vote {
        Vote {
            reviewer: "rita".into(),
            account: "reviewers".into(),
            comment: String::new(),
            at: now(),
        }
    }

    /// The events each service acts on, as its `react` matches them.
    #[test]
    fn each_event_reaches_the_services_that_act_on_it() {
        let issued = check(&[], Command::Issue(issue())).expect("issued");
        assert_eq!(token(&issued), "r", "an issue binds its key");
        let cases = [
            (
                Event::Revoked(CertificateRevoked {
                    reason: RevocationReason::Superseded,
                    revoked_at: now(),
                    cause: RevocationCause::Requested,
                }),
                "r",
            ),
            (
                Event::ValidationPassed(ValidationPassed {
                    reissue_id: None,
                    passed_at: now(),
                }),
                "ri",
            ),
            (
                Event::ValidationExpired(ValidationExpired {
                    reissue_id: None,
                    expired_at: now(),
                }),
                "ri",
            ),
            (
                Event::ReviewPassed(ReviewPassed {
                    reissue_id: None,
                    passed_at: now(),
                }),
                "ri",
            ),
            (
                Event::ReviewRejected(ReviewRejected {
                    reissue_id: None,
                    vote: vote(),
                }),
                "ri",
            ),
            (
                Event::ReissueCompleted(ReissueCompleted {
                    reissue_id: "r1".into(),
                    certificate_id: crate::testing::certificate_id("new"),
                    completed_at: now(),
                }),
                "i",
            ),
            (
                Event::ReissueFailed(ReissueFailed {
                    reissue_id: "r1".into(),
                    cause: ReissueFailure::NotIssued,
                    failed_at: now(),
                }),
                "i",
            ),
            (
                Event::Deleted(CertificateDeleted { deleted_at: now() }),
                "-",
            ),
            (
                Event::RenewalOrdered(RenewalOrdered { ordered_at: now() }),
                "-",
            ),
            (
                Event::RevocationFailed(RevocationFailed {
                    failure: RevocationFailure::ReviewRejected,
                    failed_at: now(),
                }),
                "-",
            ),
        ];
        for (event, want) in cases {
            assert_eq!(
                token(std::slice::from_ref(&event)),
                want,
                "{}",
                event.type_name()
            );
        }
    }

    /// A revocation request reaches validation only when the customer must prove their
    /// domains, review only when a reviewer decides; a reissue request as it needs either.
    #[test]
    fn requests_reach_validation_and_review_only_on_their_paths() {
        assert_eq!(token(&[requested(RevocationPath::Immediate)]), "-");
        assert_eq!(
            token(&[requested(RevocationPath::AutomaticValidation)]),
            "-"
        );
        assert_eq!(token(&[requested(RevocationPath::DomainValidation)]), "v");
        let review = RevocationPath::ManualReview {
            document_required: true,
        };
        assert_eq!(token(&[requested(review)]), "w");
        assert_eq!(token(&[reissue(false, false)]), "i");
        assert_eq!(token(&[reissue(true, true)]), "vwi");
    }

    /// A revocation as one command appends it concerns only the services that must act.
    #[test]
    fn a_revocation_reaches_only_the_services_that_act() {
        let issued = Command::Issue(issue());
        let superseded = RevocationReason::Superseded.rfc5280_code();
        let revocation = check(&[issued], revoke(superseded)).expect("revoked");
        assert!(
            revocation
                .iter()
                .any(|e| matches!(e, Event::RevocationRequested(_))),
            "{revocation:?}"
        );
        let followers = Followers::of(&revocation);
        assert!(!followers.contains(Follower::Review));
        assert!(!followers.contains(Follower::Reissue));
    }

    /// Every one of the sixteen tokens is distinct, and each service's consumer takes the
    /// eight that name it.
    #[test]
    fn tokens_are_distinct_and_each_service_takes_the_eight_naming_it() {
        let all: BTreeSet<String> = (0..16u8).map(|bits| Followers(bits).token()).collect();
        assert_eq!(all.len(), 16);
        for follower in Follower::ALL {
            let tokens = follower.tokens();
            assert_eq!(tokens.len(), 8, "{follower:?}");
            assert!(tokens.iter().all(|t| t.contains(follower.letter())));
            assert_eq!(Follower::named(follower.name()), Some(follower));
        }
        assert_eq!(Follower::named("issuance"), None);
    }
}
