//! Spreading retries: the gateway stretches the waits it tells refused callers, and
//! `certctl` stretches the waits it takes, so callers refused together do not all come back
//! in the same instant.

use std::time::Duration;

/// `wait` stretched by up to as much again (`unit` in [0, 1)).
pub fn jittered(wait: Duration, unit: f64) -> Duration {
    wait + wait.mul_f64(unit.clamp(0.0, 1.0))
}

/// A number in [0, 1) from the operating system's randomness (0 when it has none).
pub fn random_unit() -> f64 {
    use rand_core::TryRngCore as _;
    let bits = rand_core::OsRng.try_next_u64().unwrap_or(0);
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_are_spread_between_the_wait_and_twice_it() {
        let wait = Duration::from_millis(100);
        assert_eq!(jittered(wait, 0.0), wait);
        assert_eq!(jittered(wait, 0.5), Duration::from_millis(150));
        assert_eq!(jittered(wait, 7.0), wait * 2);
        let spread: std::collections::BTreeSet<Duration> =
            (0..100).map(|_| jittered(wait, random_unit())).collect();
        assert!(spread.iter().all(|w| *w >= wait && *w < wait * 2));
        assert!(
            spread.len() > 50,
            "callers refused together are told different times"
        );
        let draws: Vec<f64> = (0..200).map(|_| random_unit()).collect();
        assert!(draws.iter().all(|u| (0.0..1.0).contains(u)));
        assert!(draws.iter().any(|u| *u < 0.25) && draws.iter().any(|u| *u > 0.75));
    }
}
