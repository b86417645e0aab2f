//! The store's clock: the system clock, or an instant frozen for replaying recorded data. The
//! one place the graphite crate reads the system's wall clock.
//!
//! Retention (which archive a point goes to, what is dropped), expiry at flush and the render
//! API's default `now` all read [`unix_now`]. `carbide serve --frozen-clock EPOCH`
//! freezes it process-wide so data recorded at another time (graphite-web's conformance
//! fixtures, frozen at `NOW = 1700000040`) can be loaded through the carbon port and queried
//! exactly as the recording saw it. Never freeze it in production: expiry stops.

use std::sync::atomic::{AtomicI64, Ordering::Relaxed};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// 0 = not frozen.
static FROZEN: AtomicI64 = AtomicI64::new(0);

/// Freeze the store's clock at `epoch` (seconds; must be positive) for the whole process.
pub fn freeze(epoch: i64) {
    FROZEN.store(epoch.max(1), Relaxed);
}

/// The frozen instant, if the clock is frozen.
pub fn frozen() -> Option<i64> {
    match FROZEN.load(Relaxed) {
        0 => None,
        t => Some(t),
    }
}

/// Seconds since the epoch: the frozen instant, else the system's clock.
pub fn unix_now() -> i64 {
    frozen().unwrap_or_else(|| system_now().as_secs() as i64)
}

/// Time since the epoch by the system's clock, never frozen (0 before 1970).
pub fn system_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}
