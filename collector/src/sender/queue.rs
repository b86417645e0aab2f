//! One destination's backlog: a bounded in-memory queue in front of the disk spool.
//!
//! Delivery order is `spool (oldest) → memory (newest)`: lines are appended to memory; when
//! memory is over its cap, the destination is down, or the spool still holds anything (a
//! replay), they go to the end of the spool instead. Batches are taken from the spool while
//! it has anything, else from memory. Several batches may be in flight (written, not yet
//! acknowledged by the peer); batches not delivered are put back at the very front (in front
//! of the spool, if lines were spooled meanwhile), so order is kept in every case.

use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::spool::{ReadBatch, Spool};
use super::{Chunk, Counters, DestGauges};

/// Most bytes of self-metrics queued per destination (about 10,000 lines).
pub const PRIORITY_MAX_BYTES: u64 = 1 << 20;

/// What a batch was taken from.
#[derive(Debug)]
pub enum Source {
    /// Removed from memory; must be restored on failure.
    Memory,
    /// Removed from the priority queue (self-metrics); restored there on failure.
    Priority,
    /// Still in the spool; committed on success.
    Spool(ReadBatch),
}

/// Bytes to write to the destination.
#[derive(Debug)]
pub struct Payload {
    pub data: Vec<u8>,
    pub lines: u64,
    pub source: Source,
}

impl Payload {
    pub fn is_spooled(&self) -> bool {
        matches!(self.source, Source::Spool(_))
    }
}

/// Logs losses at most once per interval, with the count since the last report, so a long
/// outage at the spool cap cannot flood the log.
#[derive(Debug, Default)]
pub struct LossLog {
    last: Option<Instant>,
    pending: u64,
    why: &'static str,
}

impl LossLog {
    const EVERY: Duration = Duration::from_secs(10);

    pub fn record(&mut self, dest: &str, lines: u64, why: &'static str) {
        if lines == 0 {
            return;
        }
        self.pending += lines;
        self.why = why;
        self.flush(dest, false);
    }

    /// Log what is pending if the interval has passed (or `force`).
    pub fn flush(&mut self, dest: &str, force: bool) {
        if self.pending == 0 {
            return;
        }
        let now = Instant::now();
        if force
            || self
                .last
                .is_none_or(|l| now.duration_since(l) >= Self::EVERY)
        {
            tracing::warn!(
                destination = dest,
                lines = self.pending,
                "dropped lines ({}); see sender.spool_max_bytes / queue_max_bytes",
                self.why
            );
            self.last = Some(now);
            self.pending = 0;
        }
    }
}

/// Logs a failing disk at most once per interval, with the number of failures since the last
/// report, and once when it works again: a full disk cannot flood the log.
#[derive(Debug, Default)]
pub struct ErrorLog {
    last: Option<Instant>,
    failures: u64,
    failing: bool,
}

impl ErrorLog {
    const EVERY: Duration = Duration::from_secs(10);

    pub fn failed(&mut self, dest: &str, what: &str, e: &std::io::Error) {
        self.failures += 1;
        self.failing = true;
        let now = Instant::now();
        if self
            .last
            .is_none_or(|l| now.duration_since(l) >= Self::EVERY)
        {
            tracing::error!(
                destination = dest,
                error = %e,
                failures = self.failures,
                "{what} failed; lines stay in memory (up to sender.queue_max_bytes) and the disk is tried again every second"
            );
            self.last = Some(now);
            self.failures = 0;
        }
    }

    pub fn worked(&mut self, dest: &str, what: &str) {
        if std::mem::take(&mut self.failing) {
            tracing::info!(destination = dest, "{what} works again");
            self.last = None;
            self.failures = 0;
        }
    }
}

pub struct Backlog {
    dest: String,
    /// Self-metrics: sent before anything else, never spooled while running, never subject to
    /// the spool cap (they carry the drop counts), at most [`PRIORITY_MAX_BYTES`].
    prio: VecDeque<Chunk>,
    prio_bytes: u64,
    prio_lines: u64,
    mem: VecDeque<Chunk>,
    mem_bytes: u64,
    mem_lines: u64,
    max_mem_bytes: u64,
    /// Lines of memory batches taken and not yet committed or restored.
    inflight_lines: u64,
    spool: Option<Spool>,
    /// While false (destination down), everything submitted is spooled at once.
    pub connected: bool,
    /// Set by shutdown: nothing more is accepted (late lines are counted as dropped).
    pub closed: bool,
    counters: Arc<Counters>,
    gauges: Arc<DestGauges>,
    loss_log: LossLog,
    io_log: LossLog,
    disk_log: ErrorLog,
    /// After a failed spool write, the disk is not tried again before this.
    disk_retry_at: Option<Instant>,
    /// The last spool write error, for the shutdown message.
    disk_error: Option<String>,
}

impl Backlog {
    pub fn new(
        dest: String,
        max_mem_bytes: u64,
        spool: Option<Spool>,
        counters: Arc<Counters>,
        gauges: Arc<DestGauges>,
    ) -> Backlog {
        let mut b = Backlog {
            dest,
            prio: VecDeque::new(),
            prio_bytes: 0,
            prio_lines: 0,
            mem: VecDeque::new(),
            mem_bytes: 0,
            mem_lines: 0,
            max_mem_bytes,
            inflight_lines: 0,
            spool,
            connected: false,
            closed: false,
            counters,
            gauges,
            loss_log: LossLog::default(),
            io_log: LossLog::default(),
            disk_log: ErrorLog::default(),
            disk_retry_at: None,
            disk_error: None,
        };
        b.account();
        b
    }

    /// Queue a chunk (called from `submit`: never waits for the network; at most one
    /// page-cache write when memory is over its cap).
    pub fn push(&mut self, chunk: Chunk) {
        if chunk.data.is_empty() {
            return;
        }
        if self.closed {
            self.counters
                .lines_dropped
                .fetch_add(u64::from(chunk.lines), Relaxed);
            self.loss_log.record(
                &self.dest,
                u64::from(chunk.lines),
                "submitted after shutdown",
            );
            return;
        }
        self.mem_bytes += chunk.data.len() as u64;
        self.mem_lines += u64::from(chunk.lines);
        self.mem.push_back(chunk);
        // While the spool holds anything (a replay), fresh lines queue behind it on disk, so
        // a kill -9 during a long replay loses only what memory held in the last moments.
        let spooling = self
            .spool
            .as_ref()
            .is_some_and(|s| !self.connected || s.has_unsent());
        if self.mem_bytes > self.max_mem_bytes || spooling {
            self.spill();
        }
        self.account();
    }

    /// Move the whole memory queue to the end of the spool. Without a spool (or if the disk
    /// fails) memory is trimmed to its cap by dropping the oldest chunks, counted.
    pub fn spill(&mut self) {
        self.spill_to_disk(false);
    }

    /// [`Backlog::spill`]; `force` tries the disk even within a second of a failure (shutdown).
    fn spill_to_disk(&mut self, force: bool) {
        let now = Instant::now();
        let try_disk = force || self.disk_retry_at.is_none_or(|t| now >= t);
        if let (Some(spool), true) = (self.spool.as_mut(), try_disk) {
            let mut failed = None;
            while let Some(chunk) = self.mem.front() {
                if let Err(e) = spool.append(&chunk.data, chunk.lines) {
                    failed = Some(e);
                    break;
                }
                self.mem_bytes -= chunk.data.len() as u64;
                self.mem_lines -= u64::from(chunk.lines);
                self.mem.pop_front();
            }
            match failed {
                Some(e) => {
                    self.disk_log.failed(&self.dest, "spool write", &e);
                    self.disk_error = Some(e.to_string());
                    self.disk_retry_at = Some(now + Duration::from_secs(1));
                }
                None if self.mem.is_empty() => {
                    self.disk_log.worked(&self.dest, "spool write");
                    self.disk_retry_at = None;
                }
                None => {}
            }
        }
        let mut dropped = 0u64;
        while self.mem_bytes > self.max_mem_bytes {
            let Some(chunk) = self.mem.pop_front() else {
                break;
            };
            self.mem_bytes -= chunk.data.len() as u64;
            self.mem_lines -= u64::from(chunk.lines);
            dropped += u64::from(chunk.lines);
        }
        if dropped > 0 {
            self.counters.lines_dropped.fetch_add(dropped, Relaxed);
            let why = if self.spool.is_some() {
                "memory queue full and spool not writable"
            } else {
                "memory queue full and no spool_dir configured"
            };
            self.io_log.record(&self.dest, dropped, why);
        }
        self.account();
    }

    /// Queue a priority chunk (self-metrics). Beyond [`PRIORITY_MAX_BYTES`] the oldest are
    /// dropped (counted and logged).
    pub fn push_priority(&mut self, chunk: Chunk) {
        if chunk.data.is_empty() {
            return;
        }
        if self.closed {
            self.push(chunk);
            return;
        }
        self.prio_bytes += chunk.data.len() as u64;
        self.prio_lines += u64::from(chunk.lines);
        self.prio.push_back(chunk);
        let mut dropped = 0;
        while self.prio_bytes > PRIORITY_MAX_BYTES && self.prio.len() > 1 {
            let Some(old) = self.prio.pop_front() else {
                break;
            };
            self.prio_bytes -= old.data.len() as u64;
            self.prio_lines -= u64::from(old.lines);
            dropped += u64::from(old.lines);
        }
        if dropped > 0 {
            self.counters.lines_dropped.fetch_add(dropped, Relaxed);
            self.loss_log
                .record(&self.dest, dropped, "self-metrics queue full");
        }
        self.account();
    }

    /// The next batch of at most `max_bytes` (at least one chunk/record), oldest first. While
    /// the spool holds anything (even if all of it is in flight), memory waits: serving it
    /// would break the order.
    pub fn take(&mut self, max_bytes: usize) -> Option<Payload> {
        if let Some(first) = self.prio.pop_front() {
            let mut data = first.data;
            let mut lines = u64::from(first.lines);
            while let Some(next) = self.prio.front() {
                if data.len() + next.data.len() > max_bytes {
                    break;
                }
                data.extend_from_slice(&next.data);
                lines += u64::from(next.lines);
                self.prio.pop_front();
            }
            self.prio_bytes -= data.len() as u64;
            self.prio_lines -= lines;
            self.inflight_lines += lines;
            self.account();
            return Some(Payload {
                data,
                lines,
                source: Source::Priority,
            });
        }
        if let Some(spool) = self.spool.as_mut() {
            if !spool.is_empty() {
                let got = spool.read_batch(max_bytes);
                self.account();
                match got {
                    Ok(Some(mut rb)) => {
                        return Some(Payload {
                            data: std::mem::take(&mut rb.data),
                            lines: rb.lines,
                            source: Source::Spool(rb),
                        })
                    }
                    Ok(None) => {}
                    Err(e) => {
                        // The worker retries on its next wake-up (new lines, fsync tick).
                        tracing::error!(destination = %self.dest, error = %e, "spool read failed");
                        return None;
                    }
                }
                if !self.spool.as_ref().is_some_and(Spool::is_empty) {
                    return None;
                }
            }
        }
        let first = self.mem.pop_front()?;
        let mut data = first.data;
        let mut lines = u64::from(first.lines);
        while let Some(next) = self.mem.front() {
            if data.len() + next.data.len() > max_bytes {
                break;
            }
            data.extend_from_slice(&next.data);
            lines += u64::from(next.lines);
            self.mem.pop_front();
        }
        self.mem_bytes -= data.len() as u64;
        self.mem_lines -= lines;
        self.inflight_lines += lines;
        self.account();
        Some(Payload {
            data,
            lines,
            source: Source::Memory,
        })
    }

    /// The batch was delivered (batches are committed in the order they were taken).
    pub fn commit(&mut self, batch: Payload) {
        match batch.source {
            Source::Memory | Source::Priority => {
                self.inflight_lines -= batch.lines.min(self.inflight_lines)
            }
            Source::Spool(rb) => {
                if let Some(spool) = self.spool.as_mut() {
                    if let Err(e) = spool.commit(&rb) {
                        tracing::error!(destination = %self.dest, error = %e, "spool cursor update failed (lines may be sent twice after a restart)");
                    }
                }
            }
        }
        self.counters.lines_sent.fetch_add(batch.lines, Relaxed);
        self.account();
    }

    /// Batches taken (in this order) and not delivered: put them all back at the front, in
    /// order.
    pub fn restore_all(&mut self, batches: impl IntoIterator<Item = Payload>) {
        let mut mem = Vec::new();
        let mut prio = Vec::new();
        let mut first_spooled = true;
        for b in batches {
            match &b.source {
                Source::Memory => mem.push(b),
                Source::Priority => prio.push(b),
                Source::Spool(rb) => {
                    // Spooled batches are read in order: reading starts again at the first.
                    if std::mem::take(&mut first_spooled) {
                        if let Some(spool) = self.spool.as_mut() {
                            spool.unread(rb);
                        }
                    }
                }
            }
        }
        // Memory batches are older than anything spooled after them: newest first, each in
        // front of the rest.
        for b in mem.into_iter().rev() {
            self.restore(b);
        }
        for b in prio.into_iter().rev() {
            self.restore(b);
        }
    }

    /// The batch was not (or not surely) delivered: put it back at the front.
    pub fn restore(&mut self, batch: Payload) {
        if let Source::Spool(rb) = &batch.source {
            if let Some(spool) = self.spool.as_mut() {
                spool.unread(rb);
            }
            return;
        }
        self.inflight_lines -= batch.lines.min(self.inflight_lines);
        if let Source::Priority = batch.source {
            self.prio_bytes += batch.data.len() as u64;
            self.prio_lines += batch.lines;
            self.prio.push_front(Chunk {
                data: batch.data,
                lines: u32::try_from(batch.lines).unwrap_or(u32::MAX),
            });
            self.account();
            return;
        }
        let lines = u32::try_from(batch.lines).unwrap_or(u32::MAX);
        let spooled = self.spool.as_ref().is_some_and(|s| !s.is_empty());
        if spooled {
            if let Some(spool) = self.spool.as_mut() {
                match spool.prepend(&batch.data, lines) {
                    Ok(()) => {
                        self.account();
                        return;
                    }
                    Err(e) => {
                        tracing::error!(destination = %self.dest, error = %e, "spool write failed; batch kept in memory (order may change)");
                    }
                }
            }
        }
        self.mem_bytes += batch.data.len() as u64;
        self.mem_lines += batch.lines;
        self.mem.push_front(Chunk {
            data: batch.data,
            lines,
        });
        self.account();
    }

    /// fsync the spool if it has unsynced changes.
    pub fn sync(&mut self) {
        if let Some(spool) = self.spool.as_mut() {
            if spool.needs_sync() {
                if let Err(e) = spool.sync() {
                    tracing::error!(destination = %self.dest, error = %e, "spool fsync failed");
                }
            }
        }
    }

    /// Log drops still pending in the rate-limited loss logs, if their interval has passed.
    pub fn flush_logs(&mut self, force: bool) {
        self.loss_log.flush(&self.dest, force);
        self.io_log.flush(&self.dest, force);
    }

    pub fn needs_sync(&self) -> bool {
        self.spool.as_ref().is_some_and(Spool::needs_sync)
    }

    /// Final step of shutdown: persist memory to the spool, fsync, release the directory.
    /// Without a spool, what is left in memory is lost: counted and logged.
    /// Returns the lines dropped here (then the agent exits non-zero).
    pub fn close(&mut self) -> u64 {
        self.closed = true;
        // Self-metrics not yet sent go to the spool with the rest (the next run sends them).
        while let Some(c) = self.prio.pop_back() {
            self.mem_bytes += c.data.len() as u64;
            self.mem_lines += u64::from(c.lines);
            self.mem.push_front(c);
        }
        self.prio_bytes = 0;
        self.prio_lines = 0;
        self.spill_to_disk(true);
        self.sync();
        // Publish the final spool gauges (what the next run will replay), then let go of the
        // directory.
        self.account();
        let had_spool = self.spool.take().is_some();
        let left = self.mem_lines;
        self.flush_logs(true);
        if left > 0 {
            self.counters.lines_dropped.fetch_add(left, Relaxed);
            if had_spool {
                let why = self.disk_error.as_deref().unwrap_or("unknown error");
                tracing::error!(destination = %self.dest, lines = left, error = why, "dropped lines: not delivered before shutdown and the spool could not be written");
            } else {
                tracing::error!(destination = %self.dest, lines = left, "dropped lines: not delivered before shutdown and no spool_dir configured");
            }
            self.mem.clear();
            self.mem_bytes = 0;
            self.mem_lines = 0;
        }
        self.gauges.queued_lines.store(0, Relaxed);
        self.gauges.inflight_lines.store(0, Relaxed);
        left
    }

    /// Publish gauges and fold the spool's losses into the counters.
    fn account(&mut self) {
        let (spool_bytes, spool_lines, spool_inflight) = self
            .spool
            .as_mut()
            .map_or((0, 0, 0), |s| (s.bytes(), s.lines(), s.inflight_lines()));
        self.gauges
            .queued_lines
            .store(self.mem_lines + self.prio_lines, Relaxed);
        self.gauges.spool_bytes.store(spool_bytes, Relaxed);
        self.gauges
            .spool_lines
            .store(spool_lines - spool_inflight.min(spool_lines), Relaxed);
        self.gauges
            .inflight_lines
            .store(self.inflight_lines + spool_inflight, Relaxed);
        if let Some(spool) = self.spool.as_mut() {
            let l = spool.take_losses();
            if l.cap_lines > 0 {
                self.counters.lines_dropped.fetch_add(l.cap_lines, Relaxed);
                self.loss_log
                    .record(&self.dest, l.cap_lines, "spool cap reached, oldest dropped");
            }
            if l.torn_records > 0 {
                self.counters
                    .spool_torn_records
                    .fetch_add(l.torn_records, Relaxed);
                self.counters.lines_dropped.fetch_add(l.torn_lines, Relaxed);
            }
        }
    }
}
