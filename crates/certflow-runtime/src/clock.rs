//! The clock: services read the time here, the domain never does (it is given `now`).

use std::time::{SystemTime, UNIX_EPOCH};

use certflow_domain::Timestamp;

/// The current time.
pub fn now() -> Timestamp {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default();
    Timestamp::from_unix_millis(millis)
}
