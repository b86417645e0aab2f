//! Bad-line accounting: a counter per kind of rejected line, and one log line per 10 s.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

use crate::protocol::LineError;
use crate::store::unix_now;

/// Kinds of [`crate::protocol::LineError`], in the order of [`BadLines`]'s counters.
pub const BAD_LINE_KINDS: [&str; 8] = [
    "field_count",
    "bad_value",
    "bad_timestamp",
    "bad_path",
    "bad_tag",
    "too_long",
    "not_utf8",
    "control_byte",
];

/// Bad-line counters, one per kind, plus the rate limit of their log line.
#[derive(Debug, Default)]
pub struct BadLines {
    pub counts: [AtomicU64; 8],
    last_log: AtomicI64,
    suppressed: AtomicU64,
}

impl BadLines {
    /// Count (and maybe log) one rejected line.
    pub(super) fn emit(&self, kind: &str, peer: SocketAddr, detail: &dyn std::fmt::Display) {
        if let Some(i) = BAD_LINE_KINDS.iter().position(|k| *k == kind) {
            self.counts[i].fetch_add(1, Relaxed);
        }
        let now = unix_now();
        let last = self.last_log.load(Relaxed);
        if now - last >= 10
            && self
                .last_log
                .compare_exchange(last, now, Relaxed, Relaxed)
                .is_ok()
        {
            let suppressed = self.suppressed.swap(0, Relaxed);
            tracing::warn!(%peer, kind, suppressed, "rejected carbon line: {detail}");
        } else {
            self.suppressed.fetch_add(1, Relaxed);
        }
    }

    /// Total rejected lines.
    pub fn total(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Relaxed)).sum()
    }

    /// Count for one kind.
    pub fn get(&self, kind: &str) -> u64 {
        BAD_LINE_KINDS
            .iter()
            .position(|k| *k == kind)
            .map(|i| self.counts[i].load(Relaxed))
            .unwrap_or(0)
    }
}

/// Count and log a bad line (a blank one is skipped silently).
pub(super) fn reject(bad: &BadLines, peer: SocketAddr, line: &[u8], e: LineError) {
    if !line.iter().all(u8::is_ascii_whitespace) {
        bad.emit(e.kind(), peer, &e);
    }
}
