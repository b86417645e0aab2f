//! The alerter's one clock: wall time as Unix milliseconds (outbox rows, backoff) and seconds
//! (evaluations, states, silences, history). Tests drive evaluations with explicit times
//! (`daemon::Ticks::Manual`), never through this.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    now_ms() / 1000
}
