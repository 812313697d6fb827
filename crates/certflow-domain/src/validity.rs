//! CA-3: how long a certificate the CA signs may be valid, and from when.
//!
//! The CA/Browser Forum's Baseline Requirements (ballot SC-081) cap a subscriber
//! certificate's validity period by the date it is signed: 398 days, 200 days from
//! 2026-03-15, 100 from 2027-03-15, 47 from 2029-03-15. The validity period counts both
//! ends (BR 1.6.1: `notAfter - notBefore + 1 second`). The purchase term caps it too. A
//! certificate starts at most [`Policy::backdate`] before it is signed (clock skew between
//! the CA and relying parties) and no later than that after, and never ends before now.

use crate::error::{DomainError, Reason, Rule};
use crate::policy::Policy;
use crate::time::{Duration, Timestamp};

/// Ballot SC-081's schedule: from each date (Unix seconds, midnight UTC), the longest
/// validity period, in days, newest first.
const SCHEDULE: [(i64, i64); 3] = [
    // 2029-03-15
    (1_868_227_200, 47),
    // 2027-03-15
    (1_805_068_800, 100),
    // 2026-03-15
    (1_773_532_800, 200),
];
/// The longest validity before the first date of the schedule.
const BEFORE_SCHEDULE_DAYS: i64 = 398;

/// One second: the validity period counts both `notBefore` and `notAfter`.
const SECOND: Duration = Duration::millis(1_000);

/// The longest validity period the BRs allow for a certificate signed at `signed_at`.
pub fn br_maximum(signed_at: Timestamp) -> Duration {
    let days = SCHEDULE
        .iter()
        .find(|(from, _)| signed_at >= Timestamp::from_unix_seconds(*from))
        .map_or(BEFORE_SCHEDULE_DAYS, |(_, days)| *days);
    Duration::days(days)
}

/// The longest validity period of a certificate of a `term_years` purchase signed at
/// `signed_at`: the term (365 days a year) or the BR maximum, whichever is shorter.
pub fn maximum(term_years: u32, signed_at: Timestamp) -> Duration {
    let term = Duration::days(365 * i64::from(term_years));
    term.min(br_maximum(signed_at))
}

/// The latest `notAfter` of a certificate valid from `not_before` for at most `maximum`.
pub fn latest_not_after(not_before: Timestamp, maximum: Duration) -> Timestamp {
    not_before.plus(maximum).minus(SECOND)
}

/// CA-3: the validity of a certificate signed now, from what the command asked (`None`:
/// the longest allowed, from now).
pub fn decide(
    asked_not_before: Option<Timestamp>,
    asked_not_after: Option<Timestamp>,
    term_years: u32,
    now: Timestamp,
    policy: &Policy,
) -> Result<(Timestamp, Timestamp), DomainError> {
    let refused =
        |message: String| DomainError::invalid_by(Rule::Ca3, Reason::ValidityNotAllowed, message);
    let not_before = asked_not_before.unwrap_or(now);
    let maximum = maximum(term_years, now);
    let latest = latest_not_after(not_before, maximum);
    let not_after = asked_not_after.unwrap_or(latest);
    if not_after <= not_before {
        return Err(DomainError::invalid(
            Reason::InvalidValidity,
            "not_after must be later than not_before",
        ));
    }
    let backdate = policy.backdate;
    if not_before < now.minus(backdate) || not_before > now.plus(backdate) {
        return Err(refused(format!(
            "a certificate starts when it is signed (within {} minutes of it); leave \
             not_before empty to start now",
            backdate.as_millis() / 60_000
        )));
    }
    if not_after <= now {
        return Err(refused(
            "not_after is in the past; a certificate signed now must end after now".into(),
        ));
    }
    if not_after > latest {
        return Err(refused(format!(
            "a certificate signed now is valid for at most {} days (the {}-year term and the \
             CA/Browser Forum's maximum in force); leave not_after empty for the longest \
             allowed",
            maximum.as_millis() / Duration::days(1).as_millis(),
            term_years
        )));
    }
    Ok((not_before, not_after))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::days(1);

    fn days(n: i64) -> Duration {
        Duration::days(n)
    }

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_unix_seconds(seconds)
    }

    #[test]
    fn ca3_the_maximum_follows_ballot_sc081() {
        let day = 86_400;
        for (signed_at, n) in [
            (1_773_532_800 - 1, 398),
            (1_773_532_800, 200),
            (1_804_636_800 - 1, 200),
            (1_805_068_800, 100),
            (1_867_795_200 - 1, 100),
            (1_868_227_200, 47),
            (1_867_795_200 + 3_650 * day, 47),
            (0, 398),
        ] {
            assert_eq!(br_maximum(at(signed_at)), days(n), "{signed_at}");
        }
        // A one-year term under the 398-day rule is the shorter of the two.
        assert_eq!(maximum(1, at(1_700_000_000)), days(365));
        assert_eq!(maximum(3, at(1_800_000_000)), days(200));
    }

    #[test]
    fn ca3_the_longest_validity_counts_both_ends() {
        let now = at(1_800_000_000);
        let (not_before, not_after) =
            decide(None, None, 1, now, &Policy::default()).expect("the longest allowed");
        assert_eq!(not_before, now);
        // notAfter - notBefore + 1 s is exactly 200 days.
        assert_eq!(not_after.plus(SECOND).since(not_before), days(200));
        assert!(decide(None, Some(not_after), 1, now, &Policy::default()).is_ok());
        let one_more = decide(
            None,
            Some(not_after.plus(SECOND)),
            1,
            now,
            &Policy::default(),
        );
        assert_eq!(
            one_more.expect_err("a second too long").reason(),
            Reason::ValidityNotAllowed
        );
    }

    #[test]
    fn ca3_dates_a_customer_may_not_choose_are_refused() {
        let now = at(1_800_000_000);
        let policy = Policy::default();
        for (not_before, not_after) in [
            // 100 years out.
            (None, Some(now.plus(days(36_500)))),
            // The epoch, for a year.
            (Some(at(0)), Some(at(31_536_000))),
            // Ended already.
            (
                Some(now.minus(Duration::seconds(1_800))),
                Some(now.minus(Duration::seconds(60))),
            ),
            // Starting long ago, or next month.
            (Some(now.minus(DAY)), None),
            (Some(now.plus(days(30))), None),
        ] {
            let err = decide(not_before, not_after, 1, now, &policy).expect_err("refused");
            assert_eq!(
                err.rule(),
                Some(Rule::Ca3),
                "{not_before:?} {not_after:?}: {err}"
            );
        }
        // Within the backdating window, and shorter than the maximum.
        let (not_before, not_after) = decide(
            Some(now.minus(Duration::millis(30 * 60_000))),
            Some(now.plus(days(90))),
            1,
            now,
            &policy,
        )
        .expect("allowed");
        assert!(not_before < now && not_after > now);
    }
}
