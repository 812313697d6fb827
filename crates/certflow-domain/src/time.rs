//! Time as plain values: the domain never reads a clock, callers pass `now` in.

use serde::{Deserialize, Serialize};

/// A point in time, milliseconds since the Unix epoch (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The Unix epoch.
    pub const EPOCH: Timestamp = Timestamp(0);

    /// A timestamp from milliseconds since the Unix epoch.
    pub const fn from_unix_millis(millis: i64) -> Self {
        Timestamp(millis)
    }

    /// A timestamp from whole seconds since the Unix epoch.
    pub const fn from_unix_seconds(seconds: i64) -> Self {
        Timestamp(seconds.saturating_mul(1000))
    }

    /// Milliseconds since the Unix epoch.
    pub const fn unix_millis(self) -> i64 {
        self.0
    }

    /// This time moved forward by `duration` (saturating).
    pub const fn plus(self, duration: Duration) -> Self {
        Timestamp(self.0.saturating_add(duration.0))
    }

    /// This time moved back by `duration` (saturating).
    pub const fn minus(self, duration: Duration) -> Self {
        Timestamp(self.0.saturating_sub(duration.0))
    }

    /// How long from `earlier` to `self`; negative when `earlier` is later.
    pub const fn since(self, earlier: Timestamp) -> Duration {
        Duration(self.0.saturating_sub(earlier.0))
    }
}

/// A signed span of time in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Duration(i64);

impl Duration {
    /// A span of whole days.
    pub const fn days(days: i64) -> Self {
        Duration(days.saturating_mul(86_400_000))
    }

    /// A span of whole seconds.
    pub const fn seconds(seconds: i64) -> Self {
        Duration(seconds.saturating_mul(1000))
    }

    /// A span of milliseconds.
    pub const fn millis(millis: i64) -> Self {
        Duration(millis)
    }

    /// The span in milliseconds.
    pub const fn as_millis(self) -> i64 {
        self.0
    }
}
