//! The durations, dates and counts the rules depend on. `docs/rules.md` gives the defaults;
//! deployments and tests choose their own.

use std::collections::HashMap;

use crate::time::{Duration, Timestamp};
use crate::values::{Brand, Level};

/// The durations and dates the rules depend on. Defaults follow `docs/rules.md`; tests shrink them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// REV-3: a renewal ordered this close to expiry blocks revocation.
    pub renewal_window: Duration,
    /// REV-11: how long a domain validation challenge stays open.
    pub validation_window: Duration,
    /// REV-6: certificates issued before this are revoked by support only.
    pub legacy_cutoff: Timestamp,
    /// CA-3: how long before it is signed a certificate may start (clock skew), and how
    /// long after.
    pub backdate: Duration,
    /// REV-R3: distinct approvals a review needs, by brand and level; 1 where not listed.
    pub review_approvals: HashMap<(Brand, Level), u32>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            renewal_window: Duration::days(30),
            validation_window: Duration::days(3),
            // 2020-03-25T00:00:00Z
            legacy_cutoff: Timestamp::from_unix_seconds(1_585_094_400),
            backdate: Duration::seconds(3600),
            review_approvals: HashMap::new(),
        }
    }
}

impl Policy {
    /// REV-R3: distinct approvals a review of this brand and level needs (at least 1).
    pub fn approvals_needed(&self, brand: Brand, level: Level) -> u32 {
        self.review_approvals
            .get(&(brand, level))
            .copied()
            .unwrap_or(1)
            .max(1)
    }
}
