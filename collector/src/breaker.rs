//! The circuit breaker of a service collector instance: after [`FAILURES_TO_OPEN`] failed or
//! timed-out runs in a row the instance stops calling its service, and tries again after a
//! cool-down that grows with each failed retry (1, 2, 4, 8, then 10 intervals at most),
//! jittered so that many agents watching one struggling service (a RabbitMQ management API,
//! a database) do not retry in step. The first successful run closes it.
//!
//! The breaker only decides; the runtime asks it before each due run ([`Breaker::allows`])
//! and tells it how the run went ([`Breaker::record`]), and the events log and count.

use std::time::Duration;

use tokio::time::Instant;

/// Failed or timed-out runs in a row that open the circuit.
pub const FAILURES_TO_OPEN: u32 = 3;
/// The longest cool-down, in intervals.
pub const MAX_COOLDOWN_INTERVALS: u32 = 10;

/// What a run's result did to the circuit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Change {
    None,
    /// It opened (or stayed open after a failed retry): no run before `cooldown` has passed.
    Opened {
        failures: u32,
        cooldown: Duration,
    },
    /// A run succeeded while it was open.
    Closed {
        failures: u32,
    },
}

#[derive(Debug, Clone)]
pub struct Breaker {
    interval: Duration,
    /// Failed runs in a row.
    failures: u32,
    /// Cool-downs so far in this open period (0: closed).
    opens: u32,
    /// While open: no run before this.
    retry_at: Option<Instant>,
}

impl Breaker {
    pub fn new(interval: Duration) -> Breaker {
        Breaker {
            interval,
            failures: 0,
            opens: 0,
            retry_at: None,
        }
    }

    pub fn is_open(&self) -> bool {
        self.opens > 0
    }

    /// Failed runs in a row so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// May a run due `now` call the service? Closed: yes. Open: only once the cool-down has
    /// passed (that run is the retry).
    pub fn allows(&self, now: Instant) -> bool {
        self.retry_at.is_none_or(|t| now >= t)
    }

    /// Record a run's result at `now`; `jitter` is a draw from `[0, 1)`.
    pub fn record(&mut self, failed: bool, now: Instant, jitter: f64) -> Change {
        if !failed {
            let was = (self.is_open(), self.failures);
            self.failures = 0;
            self.opens = 0;
            self.retry_at = None;
            return match was {
                (true, failures) => Change::Closed { failures },
                _ => Change::None,
            };
        }
        self.failures = self.failures.saturating_add(1);
        if self.failures < FAILURES_TO_OPEN {
            return Change::None;
        }
        self.opens = self.opens.saturating_add(1);
        let cooldown = self.cooldown(jitter);
        self.retry_at = Some(now + cooldown);
        Change::Opened {
            failures: self.failures,
            cooldown,
        }
    }

    /// `min(2^(opens-1), 10)` intervals, scaled by a jitter factor in `[0.75, 1.25)` and kept
    /// within one to ten intervals.
    fn cooldown(&self, jitter: f64) -> Duration {
        let base = 2u32
            .saturating_pow(self.opens.saturating_sub(1))
            .min(MAX_COOLDOWN_INTERVALS);
        let factor = 0.75 + 0.5 * jitter.clamp(0.0, 1.0);
        let intervals = (f64::from(base) * factor).clamp(1.0, f64::from(MAX_COOLDOWN_INTERVALS));
        self.interval.mul_f64(intervals)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_three_failures_grows_and_closes_on_success() {
        let iv = Duration::from_secs(10);
        let t0 = Instant::now();
        let mut b = Breaker::new(iv);
        assert_eq!(b.record(true, t0, 0.5), Change::None);
        assert_eq!(b.record(true, t0, 0.5), Change::None);
        assert!(b.allows(t0) && !b.is_open());
        // third failure: open for one interval (jitter 0.5 = factor 1)
        assert_eq!(
            b.record(true, t0, 0.5),
            Change::Opened {
                failures: 3,
                cooldown: iv
            }
        );
        assert!(b.is_open());
        assert!(!b.allows(t0 + Duration::from_secs(9)));
        assert!(b.allows(t0 + iv));
        // each failed retry doubles the cool-down, up to 10 intervals
        let mut cooldowns = Vec::new();
        for _ in 0..6 {
            match b.record(true, t0, 0.5) {
                Change::Opened { cooldown, .. } => cooldowns.push(cooldown.as_secs()),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(cooldowns, [20, 40, 80, 100, 100, 100]);
        assert_eq!(b.failures(), 9);
        assert_eq!(b.record(false, t0, 0.5), Change::Closed { failures: 9 });
        assert!(!b.is_open() && b.allows(t0) && b.failures() == 0);
        // a success while closed changes nothing; failures must be in a row
        assert_eq!(b.record(false, t0, 0.5), Change::None);
        b.record(true, t0, 0.5);
        b.record(true, t0, 0.5);
        b.record(false, t0, 0.5);
        assert_eq!(b.record(true, t0, 0.5), Change::None);
    }

    #[test]
    fn jitter_spreads_within_bounds() {
        let iv = Duration::from_secs(10);
        let mut b = Breaker::new(iv);
        b.opens = 2; // base: 2 intervals
        assert_eq!(b.cooldown(0.0), Duration::from_secs(15));
        assert_eq!(b.cooldown(0.999_999), iv.mul_f64(2.0 * 1.249_999_5));
        b.opens = 1;
        assert_eq!(b.cooldown(0.0), iv); // never under one interval
        b.opens = 20;
        assert_eq!(b.cooldown(0.99), iv * MAX_COOLDOWN_INTERVALS); // never over ten
    }
}
