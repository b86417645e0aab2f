//! Counter → per-second rate over the measured time between two samples.
//!
//! The first sample of a counter emits nothing (no fake 0); a counter that goes backwards
//! (reset, wrap, restart) emits nothing for that sample (no spike) and starts over from the
//! new value. Counters not seen for a few runs are forgotten so vanished devices do not
//! accumulate.

use std::collections::HashMap;

use tokio::time::Instant;

/// Runs a counter may be absent before its last value is forgotten.
const FORGET_AFTER_RUNS: u64 = 3;

#[derive(Debug, Default)]
pub struct Rates {
    last: HashMap<String, Prev>,
    run: u64,
}

#[derive(Debug, Clone, Copy)]
struct Prev {
    value: f64,
    at: Instant,
    run: u64,
}

impl Rates {
    /// Start a run (call once per run, before [`Rates::rate`]).
    pub fn begin_run(&mut self) {
        self.run += 1;
    }

    /// The rate of counter `name`, now at `value` measured `at`; `None` when there is no
    /// usable previous sample.
    pub fn rate(&mut self, name: &str, value: f64, at: Instant) -> Option<f64> {
        let cur = Prev {
            value,
            at,
            run: self.run,
        };
        let prev = match self.last.get_mut(name) {
            Some(p) => std::mem::replace(p, cur),
            None => {
                self.last.insert(name.to_string(), cur);
                return None;
            }
        };
        let dt = at.checked_duration_since(prev.at)?.as_secs_f64();
        if dt <= 0.0 || value < prev.value || !value.is_finite() {
            return None;
        }
        Some((value - prev.value) / dt)
    }

    /// Forget counters not seen in the last few runs.
    pub fn end_run(&mut self) {
        let run = self.run;
        self.last.retain(|_, p| run - p.run < FORGET_AFTER_RUNS);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.last.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn first_sample_emits_nothing_then_rate_over_measured_time() {
        let mut r = Rates::default();
        let t0 = Instant::now();
        r.begin_run();
        assert_eq!(r.rate("rx", 1000.0, t0), None);
        r.begin_run();
        // 12.5 s measured (not the nominal 10 s interval): 500 / 12.5 = 40/s
        assert_eq!(
            r.rate("rx", 1500.0, t0 + Duration::from_millis(12_500)),
            Some(40.0)
        );
        r.begin_run();
        assert_eq!(
            r.rate("rx", 1500.0, t0 + Duration::from_millis(22_500)),
            Some(0.0)
        );
    }

    #[test]
    fn counter_going_back_emits_nothing_then_resumes() {
        let mut r = Rates::default();
        let t0 = Instant::now();
        let s = Duration::from_secs(10);
        r.begin_run();
        assert_eq!(r.rate("c", 100.0, t0), None);
        r.begin_run();
        assert_eq!(r.rate("c", 5.0, t0 + s), None);
        r.begin_run();
        assert_eq!(r.rate("c", 25.0, t0 + 2 * s), Some(2.0));
    }

    #[test]
    fn zero_elapsed_emits_nothing() {
        let mut r = Rates::default();
        let t0 = Instant::now();
        r.begin_run();
        r.rate("c", 1.0, t0);
        assert_eq!(r.rate("c", 2.0, t0), None);
    }

    #[test]
    fn vanished_counters_are_forgotten() {
        let mut r = Rates::default();
        let t0 = Instant::now();
        r.begin_run();
        r.rate("gone", 1.0, t0);
        r.end_run();
        for _ in 0..FORGET_AFTER_RUNS {
            r.begin_run();
            r.rate("kept", 1.0, t0);
            r.end_run();
        }
        assert_eq!(r.len(), 1);
    }
}
