//! The agent's own metrics, under `<prefix>.<host>.carbide.collector.` and reported every
//! default interval:
//!
//! | path | meaning |
//! |---|---|
//! | `<instance>.duration_ms` | duration of the instance's last completed run |
//! | `<instance>.runs` / `.errors` / `.timeouts` | runs completed / failed / cancelled at the deadline, in the last interval |
//! | `<instance>.circuit_open` / `.consecutive_failures` | 1 while the circuit breaker keeps the instance from calling its service / failed or timed-out runs in a row (now) |
//! | `<instance>.lines` / `.dropped` | lines handed to the sender / metrics dropped as unencodable (NaN, ±Inf, bad name) or input lines that are not metrics (exec), in the last interval |
//! | `sender.queued_lines` | lines waiting in the sender's memory queue to be written (now) |
//! | `sender.spool_bytes` / `.spool_lines` | bytes of the disk spool / lines in it waiting to be written (now) |
//! | `sender.inflight_lines` | lines written and not yet known to be read by carbon (now) |
//! | `sender.spool_torn_records` | torn spool records skipped after a crash, in the last interval |
//! | `sender.lines_sent` / `.lines_dropped` / `.reconnects` | in the last interval; `lines_dropped` includes lines the runtime could not encode |
//! | `agent.reloads` / `agent.reload_errors` | SIGHUP reloads applied / rejected, in the last interval |

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};

use graphite::protocol::encode_line;

use crate::events::{AgentStats, InstanceStats};
use crate::paths::PathBuilder;
use crate::sender::{Chunk, SenderStats};

/// The instances currently running, as the reporter sees them (replaced on reload).
pub type Instances = Arc<Mutex<Vec<(String, Arc<InstanceStats>)>>>;

/// Builds the self-metrics chunk; remembers the previous sender totals to report deltas.
pub struct Reporter {
    paths: PathBuilder,
    prev: SenderStats,
    prev_agent_dropped: u64,
}

impl Reporter {
    /// `tags` is the global `tags:` rendered ([`crate::paths::render_tags`]).
    pub fn new(base: &str, suffix: Option<&str>, tags: &str) -> Self {
        Reporter {
            paths: PathBuilder::new(base, "carbide.collector", suffix).tagged(tags),
            prev: SenderStats::default(),
            prev_agent_dropped: 0,
        }
    }

    /// Use new paths (after a reload), keeping the previous totals so deltas stay right.
    pub fn set_paths(&mut self, base: &str, suffix: Option<&str>, tags: &str) {
        self.paths = PathBuilder::new(base, "carbide.collector", suffix).tagged(tags);
    }

    /// One report at `timestamp`. Per-interval counts are taken (reset) from the stats.
    pub fn report(
        &mut self,
        instances: &[(String, Arc<InstanceStats>)],
        agent: &AgentStats,
        sender: SenderStats,
        timestamp: i64,
    ) -> Chunk {
        let mut chunk = Chunk::default();
        let mut put = |name: &str, value: f64| {
            if let Ok(path) = self.paths.metric(name) {
                if encode_line(&mut chunk.data, &path, value, timestamp).is_ok() {
                    chunk.lines += 1;
                }
            }
        };
        for (name, s) in instances {
            put(
                &format!("{name}.duration_ms"),
                s.last_duration_us.load(Relaxed) as f64 / 1e3,
            );
            put(&format!("{name}.runs"), s.runs.swap(0, Relaxed) as f64);
            put(&format!("{name}.errors"), s.errors.swap(0, Relaxed) as f64);
            put(
                &format!("{name}.timeouts"),
                s.timeouts.swap(0, Relaxed) as f64,
            );
            put(&format!("{name}.lines"), s.lines.swap(0, Relaxed) as f64);
            put(
                &format!("{name}.dropped"),
                s.dropped.swap(0, Relaxed) as f64,
            );
            put(
                &format!("{name}.circuit_open"),
                f64::from(u8::from(s.circuit_open.load(Relaxed))),
            );
            put(
                &format!("{name}.consecutive_failures"),
                s.consecutive_failures.load(Relaxed) as f64,
            );
        }
        let agent_dropped = agent.dropped.load(Relaxed);
        let delta = |now: u64, before: u64| now.saturating_sub(before) as f64;
        put("sender.queued_lines", sender.queued_lines as f64);
        put("sender.spool_bytes", sender.spool_bytes as f64);
        put("sender.spool_lines", sender.spool_lines as f64);
        put("sender.inflight_lines", sender.inflight_lines as f64);
        put(
            "sender.spool_torn_records",
            delta(sender.spool_torn_records, self.prev.spool_torn_records),
        );
        put(
            "sender.lines_sent",
            delta(sender.lines_sent, self.prev.lines_sent),
        );
        put(
            "sender.lines_dropped",
            delta(sender.lines_dropped, self.prev.lines_dropped)
                + delta(agent_dropped, self.prev_agent_dropped),
        );
        put(
            "sender.reconnects",
            delta(sender.reconnects, self.prev.reconnects),
        );
        put("agent.reloads", agent.reloads.swap(0, Relaxed) as f64);
        put(
            "agent.reload_errors",
            agent.reload_errors.swap(0, Relaxed) as f64,
        );
        self.prev = sender;
        self.prev_agent_dropped = agent_dropped;
        chunk
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_gauges_and_per_interval_counts() {
        let mut r = Reporter::new("servers.h", None, "");
        let s = Arc::new(InstanceStats::default());
        s.runs.store(3, Relaxed);
        s.timeouts.store(1, Relaxed);
        s.last_duration_us.store(1500, Relaxed);
        let agent = AgentStats::default();
        agent.dropped.store(2, Relaxed);
        let inst = vec![("host".to_string(), s.clone())];
        let sender = SenderStats {
            queued_lines: 7,
            spool_bytes: 100,
            lines_sent: 50,
            lines_dropped: 1,
            reconnects: 2,
            spool_lines: 4,
            inflight_lines: 3,
            spool_torn_records: 0,
        };
        let c = r.report(&inst, &agent, sender, 60);
        let text = String::from_utf8(c.data).unwrap();
        for want in [
            "servers.h.carbide.collector.host.duration_ms 1.5 60",
            "servers.h.carbide.collector.host.runs 3 60",
            "servers.h.carbide.collector.host.timeouts 1 60",
            "servers.h.carbide.collector.sender.queued_lines 7 60",
            "servers.h.carbide.collector.sender.spool_lines 4 60",
            "servers.h.carbide.collector.sender.inflight_lines 3 60",
            "servers.h.carbide.collector.sender.lines_sent 50 60",
            "servers.h.carbide.collector.sender.lines_dropped 3 60",
        ] {
            assert!(text.lines().any(|l| l == want), "{want} not in\n{text}");
        }
        assert_eq!(c.lines as usize, text.lines().count());
        let sender2 = SenderStats {
            lines_sent: 80,
            ..sender
        };
        let text = String::from_utf8(r.report(&inst, &agent, sender2, 70).data).unwrap();
        assert!(text.contains("carbide.collector.host.runs 0 70"), "{text}");
        assert!(
            text.contains("carbide.collector.sender.lines_sent 30 70"),
            "{text}"
        );
        assert!(
            text.contains("carbide.collector.sender.lines_dropped 0 70"),
            "{text}"
        );
    }
}
