//! The agent's internal events. Each is a small struct whose `emit()` both logs and counts,
//! so nothing can be logged without being counted (or counted without a log line). The
//! counters feed the self-metrics (`<prefix>.<host>.carbide.collector.*`, see
//! [`crate::selfmetrics`]).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use graphite::protocol::EncodeError;

/// Counters of one collector instance. Counts are taken (reset) by each self-metrics report.
#[derive(Debug, Default)]
pub struct InstanceStats {
    pub runs: AtomicU64,
    pub errors: AtomicU64,
    pub timeouts: AtomicU64,
    /// Metrics not published because they could not be encoded (NaN, ±Inf, bad name).
    pub dropped: AtomicU64,
    /// Lines handed to the sender.
    pub lines: AtomicU64,
    /// Duration of the last completed run, in microseconds.
    pub last_duration_us: AtomicU64,
    /// The last run failed or timed out: further failures are logged at debug level only
    /// (one warning per state change, not one per run; every failure is still counted).
    pub failing: AtomicBool,
    /// The circuit breaker is open: the service is not called until its cool-down passes.
    pub circuit_open: AtomicBool,
    /// Failed or timed-out runs in a row (a gauge; 0 after a success).
    pub consecutive_failures: AtomicU64,
}

/// Counters of the agent as a whole.
#[derive(Debug, Default)]
pub struct AgentStats {
    /// Lines the runtime dropped before the sender (unencodable), all instances.
    pub dropped: AtomicU64,
    /// Lines handed to the sender since start (never reset; logged at exit).
    pub submitted: AtomicU64,
    pub reloads: AtomicU64,
    pub reload_errors: AtomicU64,
}

/// A run finished within its deadline (successfully or not).
pub struct CollectorRan<'a> {
    pub collector: &'a str,
    pub duration: Duration,
    pub lines: u64,
}

impl CollectorRan<'_> {
    pub fn emit(&self, stats: &InstanceStats) {
        tracing::debug!(
            collector = self.collector,
            duration_ms = self.duration.as_secs_f64() * 1e3,
            lines = self.lines,
            "collector run done"
        );
        stats.runs.fetch_add(1, Relaxed);
        stats.last_duration_us.store(
            self.duration.as_micros().min(u128::from(u64::MAX)) as u64,
            Relaxed,
        );
    }
}

/// A run returned an error (whatever it produced before the error is still published).
pub struct CollectorFailed<'a> {
    pub collector: &'a str,
    pub error: &'a anyhow::Error,
}

impl CollectorFailed<'_> {
    pub fn emit(&self, stats: &InstanceStats) {
        if stats.failing.swap(true, Relaxed) {
            tracing::debug!(
                collector = self.collector,
                "collector run failed again: {:#}",
                self.error
            );
        } else {
            tracing::warn!(
                collector = self.collector,
                "collector run failed: {:#}",
                self.error
            );
        }
        stats.errors.fetch_add(1, Relaxed);
    }
}

/// A run overran its deadline and was cancelled; nothing from it is published.
pub struct CollectorTimedOut<'a> {
    pub collector: &'a str,
    pub timeout: Duration,
}

impl CollectorTimedOut<'_> {
    pub fn emit(&self, stats: &InstanceStats) {
        if stats.failing.swap(true, Relaxed) {
            tracing::debug!(
                collector = self.collector,
                "collector run cancelled again at its deadline"
            );
        } else {
            tracing::warn!(
                collector = self.collector,
                "collector run cancelled: still running after its {} deadline (raise `timeout:` or check what it waits for)",
                humantime::format_duration(self.timeout)
            );
        }
        stats.timeouts.fetch_add(1, Relaxed);
    }
}

/// A run succeeded after failed or cancelled ones (logged once, at the change).
pub struct CollectorRecovered<'a> {
    pub collector: &'a str,
}

impl CollectorRecovered<'_> {
    pub fn emit(&self, stats: &InstanceStats) {
        if stats.failing.swap(false, Relaxed) {
            tracing::info!(collector = self.collector, "collector runs succeed again");
        }
    }
}

/// Metrics of one run that could not be encoded (NaN, ±Inf, empty name component, too long).
pub struct MetricsDropped<'a> {
    pub collector: &'a str,
    pub count: u64,
    /// The first dropped name and why, as an example.
    pub example: &'a str,
    pub reason: EncodeError,
}

impl MetricsDropped<'_> {
    pub fn emit(&self, stats: &InstanceStats, agent: &AgentStats) {
        tracing::warn!(
            collector = self.collector,
            count = self.count,
            "dropped {} metric(s) that cannot be sent, e.g. {:?}: {}",
            self.count,
            self.example,
            self.reason
        );
        stats.dropped.fetch_add(self.count, Relaxed);
        agent.dropped.fetch_add(self.count, Relaxed);
    }
}

/// The circuit breaker opened after failed runs in a row, or stayed open after a failed
/// retry (logged once per open period, at the first).
pub struct CircuitOpened<'a> {
    pub collector: &'a str,
    pub failures: u32,
    pub cooldown: Duration,
}

impl CircuitOpened<'_> {
    pub fn emit(&self, stats: &InstanceStats) {
        if stats.circuit_open.swap(true, Relaxed) {
            tracing::debug!(
                collector = self.collector,
                failures = self.failures,
                "retry failed; circuit stays open, next try in {}",
                humantime::format_duration(round_ms(self.cooldown))
            );
        } else {
            tracing::warn!(
                collector = self.collector,
                failures = self.failures,
                "circuit open after {} failed runs in a row: not calling the service for {}, then retrying with growing pauses (up to {} intervals) until a run succeeds",
                self.failures,
                humantime::format_duration(round_ms(self.cooldown)),
                crate::breaker::MAX_COOLDOWN_INTERVALS
            );
        }
        stats
            .consecutive_failures
            .store(u64::from(self.failures), Relaxed);
    }
}

/// A run succeeded while the circuit was open: it closes (logged once).
pub struct CircuitClosed<'a> {
    pub collector: &'a str,
    pub failures: u32,
}

impl CircuitClosed<'_> {
    pub fn emit(&self, stats: &InstanceStats) {
        if stats.circuit_open.swap(false, Relaxed) {
            tracing::info!(
                collector = self.collector,
                "circuit closed: a run succeeded after {} failed ones",
                self.failures
            );
        }
        stats.consecutive_failures.store(0, Relaxed);
    }
}

fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis().min(u128::from(u64::MAX)) as u64)
}

/// Input a collector could not read as metrics (an exec command's malformed lines).
pub struct InputRejected<'a> {
    pub collector: &'a str,
    pub count: u64,
    /// The first rejected piece and why.
    pub example: &'a str,
}

impl InputRejected<'_> {
    pub fn emit(&self, stats: &InstanceStats) {
        tracing::warn!(
            collector = self.collector,
            count = self.count,
            "ignored {} line(s) that are not metrics, e.g. {}",
            self.count,
            self.example
        );
        stats.dropped.fetch_add(self.count, Relaxed);
    }
}

/// Lines handed to the sender.
pub struct ChunkSubmitted<'a> {
    pub collector: &'a str,
    pub lines: u64,
}

impl ChunkSubmitted<'_> {
    pub fn emit(&self, stats: Option<&InstanceStats>, agent: &AgentStats) {
        tracing::debug!(
            collector = self.collector,
            lines = self.lines,
            "submitted lines"
        );
        if let Some(s) = stats {
            s.lines.fetch_add(self.lines, Relaxed);
        }
        agent.submitted.fetch_add(self.lines, Relaxed);
    }
}

/// SIGHUP applied a new configuration.
pub struct ConfigReloaded {
    pub kept: usize,
    pub started: usize,
    pub stopped: usize,
}

impl ConfigReloaded {
    pub fn emit(&self, agent: &AgentStats) {
        tracing::info!(
            kept = self.kept,
            started = self.started,
            stopped = self.stopped,
            "configuration reloaded"
        );
        agent.reloads.fetch_add(1, Relaxed);
    }
}

/// SIGHUP found an invalid configuration; the running one stays.
pub struct ConfigReloadFailed<'a> {
    pub errors: &'a [conf::ConfigError],
}

impl ConfigReloadFailed<'_> {
    pub fn emit(&self, agent: &AgentStats) {
        for e in self.errors {
            tracing::error!("{e}");
        }
        tracing::error!(
            errors = self.errors.len(),
            "configuration reload failed; still running the previous configuration"
        );
        agent.reload_errors.fetch_add(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failing_state_changes_once_and_every_failure_counts() {
        let stats = InstanceStats::default();
        let error = anyhow::anyhow!("refused");
        for _ in 0..3 {
            CollectorFailed {
                collector: "c",
                error: &error,
            }
            .emit(&stats);
        }
        CollectorTimedOut {
            collector: "c",
            timeout: Duration::from_secs(1),
        }
        .emit(&stats);
        assert!(stats.failing.load(Relaxed));
        assert_eq!(stats.errors.load(Relaxed), 3);
        assert_eq!(stats.timeouts.load(Relaxed), 1);
        CollectorRecovered { collector: "c" }.emit(&stats);
        assert!(!stats.failing.load(Relaxed));
    }
}
