//! When a failed delivery is tried again, and when the notifier gives up.

use std::time::Duration;

/// The retry schedule: the wait after each failed attempt (the last wait repeats), until
/// `give_up_after` has passed since the delivery was queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule {
    /// The wait after the first failure, the second, …; the last one repeats.
    pub delays: Vec<Duration>,
    /// How long after it was queued a delivery is given up on.
    pub give_up_after: Duration,
}

impl Default for RetrySchedule {
    /// The Standard Webhooks schedule: 5 seconds, 5 minutes, 30 minutes, 2 hours, 5 hours,
    /// then every 10 hours, for 3 days.
    fn default() -> Self {
        RetrySchedule {
            delays: [5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
            give_up_after: Duration::from_secs(3 * 24 * 3600),
        }
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// Try again after this wait.
    RetryAfter(Duration),
    /// The next attempt would fall after the give-up time: this was the last.
    GiveUp,
}

impl RetrySchedule {
    /// After failed attempt number `attempt` (1 for the first), `elapsed` after the
    /// delivery was queued.
    pub fn after_failure(&self, attempt: u64, elapsed: Duration) -> AfterFailure {
        let index = usize::try_from(attempt.saturating_sub(1)).unwrap_or(usize::MAX);
        let Some(delay) = self
            .delays
            .get(index)
            .or_else(|| self.delays.last())
            .copied()
        else {
            return AfterFailure::GiveUp;
        };
        if elapsed.saturating_add(delay) > self.give_up_after {
            AfterFailure::GiveUp
        } else {
            AfterFailure::RetryAfter(delay)
        }
    }

    /// The times after queueing at which the attempts fall when every attempt fails at once.
    #[cfg(test)]
    fn attempt_times(&self) -> Vec<Duration> {
        let mut times = vec![Duration::ZERO];
        let mut elapsed = Duration::ZERO;
        loop {
            match self.after_failure(times.len() as u64, elapsed) {
                AfterFailure::RetryAfter(delay) => {
                    elapsed += delay;
                    times.push(elapsed);
                }
                AfterFailure::GiveUp => return times,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hours(h: u64) -> Duration {
        Duration::from_secs(h * 3600)
    }

    #[test]
    fn the_default_schedule_backs_off_and_gives_up_within_three_days() {
        let schedule = RetrySchedule::default();
        let times = schedule.attempt_times();
        assert_eq!(times[0], Duration::ZERO);
        assert_eq!(times[1], Duration::from_secs(5));
        assert_eq!(times[2], Duration::from_secs(5 + 300));
        assert_eq!(times[3], Duration::from_secs(5 + 300 + 1800));
        // After 5 hours the wait stays at 10 hours.
        for pair in times[6..].windows(2) {
            assert_eq!(pair[1] - pair[0], hours(10));
        }
        let last = *times.last().expect("attempts");
        assert!(last <= hours(72), "{last:?}");
        assert!(
            last + hours(10) > hours(72),
            "no attempt left out: {last:?}"
        );
        assert_eq!(times.len(), 12, "{times:?}");
    }

    #[test]
    fn a_failure_whose_retry_would_fall_after_the_give_up_time_is_the_last() {
        let schedule = RetrySchedule {
            delays: vec![Duration::from_secs(1), Duration::from_secs(2)],
            give_up_after: Duration::from_secs(5),
        };
        assert_eq!(
            schedule.after_failure(1, Duration::ZERO),
            AfterFailure::RetryAfter(Duration::from_secs(1))
        );
        assert_eq!(
            schedule.after_failure(2, Duration::from_secs(1)),
            AfterFailure::RetryAfter(Duration::from_secs(2))
        );
        // The last delay repeats.
        assert_eq!(
            schedule.after_failure(9, Duration::from_secs(3)),
            AfterFailure::RetryAfter(Duration::from_secs(2))
        );
        assert_eq!(
            schedule.after_failure(3, Duration::from_secs(4)),
            AfterFailure::GiveUp
        );
        assert_eq!(
            RetrySchedule {
                delays: Vec::new(),
                give_up_after: hours(1)
            }
            .after_failure(1, Duration::ZERO),
            AfterFailure::GiveUp
        );
    }
}
