//! Sending encoded lines to carbon: bounded memory queue, disk spool, connections.
//!
//! The runtime hands whole lines to a [`SenderHandle`]; the sender owns everything after that.
//! Each destination has its own worker task, backlog and spool directory, so a dead
//! destination never delays a live one. Module map:
//! - [`config`]: `SenderConfig` (the `sender:` section), destination syntax, fsync policy;
//! - [`placement`]: which destinations get a line (every one, or the relays' consistent
//!   hashes, `any_of`, `failover`);
//! - `queue`: one destination's backlog (memory in front of spool, order kept);
//! - [`spool`]: segment files on disk, crash-tolerant;
//! - `conn`: TCP/UDP connections, backoff, replay pacing;
//! - `worker` (private): the per-destination loop tying them together.
//!
//! Guarantees and limits are documented in `docs/sender.md`.

pub mod config;
pub(crate) mod conn;
pub mod placement;
pub(crate) mod queue;
pub mod spool;
mod worker;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::Context;

pub use config::{FsyncPolicy, SenderConfig, Target};

/// A batch of complete encoded lines (each ending in `\n`).
#[derive(Debug, Clone, Default)]
pub struct Chunk {
    pub data: Vec<u8>,
    pub lines: u32,
}

/// Counters and gauges the sender exposes for self-metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SenderStats {
    /// Lines waiting in memory to be written (all destinations).
    pub queued_lines: u64,
    /// Bytes in the on-disk spool (all destinations).
    pub spool_bytes: u64,
    /// Lines written to destinations (per destination, summed).
    pub lines_sent: u64,
    /// Lines dropped because the spool cap was reached (or lost to a torn spool record, or
    /// submitted after shutdown), counted and logged.
    pub lines_dropped: u64,
    /// Reconnections made to destinations.
    pub reconnects: u64,
    /// Lines waiting in the on-disk spool to be written (all destinations).
    pub spool_lines: u64,
    /// Lines written and not yet known to be read by the destination (memory or spool).
    pub inflight_lines: u64,
    /// Torn or corrupt spool records found (after a crash); their lines are in `lines_dropped`.
    pub spool_torn_records: u64,
}

/// Counters shared by all destinations.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub lines_sent: AtomicU64,
    pub lines_dropped: AtomicU64,
    pub reconnects: AtomicU64,
    pub spool_torn_records: AtomicU64,
    /// Lines neither delivered nor spooled at shutdown (in `lines_dropped` too).
    pub dropped_at_shutdown: AtomicU64,
}

/// One destination's gauges.
#[derive(Debug, Default)]
pub(crate) struct DestGauges {
    pub queued_lines: AtomicU64,
    pub spool_bytes: AtomicU64,
    pub spool_lines: AtomicU64,
    pub inflight_lines: AtomicU64,
    /// The last connection attempt failed (cleared by the next that succeeds): `any_of` and
    /// `failover` pass over the destination meanwhile.
    pub failed: AtomicBool,
}

/// What a destination's worker and the handle share.
pub(crate) struct DestShared {
    pub name: String,
    pub backlog: Mutex<queue::Backlog>,
    pub notify: tokio::sync::Notify,
    pub gauges: Arc<DestGauges>,
}

impl DestShared {
    /// The backlog; a panic elsewhere while holding the lock does not stop delivery.
    pub fn lock(&self) -> MutexGuard<'_, queue::Backlog> {
        self.backlog.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct Inner {
    dests: Vec<Arc<DestShared>>,
    placement: placement::Placement,
    counters: Arc<Counters>,
    /// Shutdown deadline; dropping it (last handle gone) also stops the workers.
    shutdown: tokio::sync::watch::Sender<Option<tokio::time::Instant>>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// The runtime's way into the sender. Cheap to clone.
#[derive(Clone)]
pub struct SenderHandle {
    inner: Arc<Inner>,
}

/// Start the sender's tasks on the current tokio runtime: one worker per destination. Opens
/// (and locks) each destination's spool directory, so a spool left by a previous run is
/// replayed.
pub fn spawn(cfg: SenderConfig) -> anyhow::Result<SenderHandle> {
    cfg.validate().map_err(anyhow::Error::msg)?;
    let placement = cfg.placement().map_err(anyhow::Error::msg)?;
    if !placement.collisions().is_empty() {
        tracing::warn!(
            placement = placement.mode().name(),
            collisions = placement.collisions().len(),
            first = %placement.collisions()[0],
            "ring positions collide: carbon-c-relay and carbon-relay place some names differently on this ring; renaming an instance avoids it"
        );
    }
    let counters = Arc::new(Counters::default());
    let (shutdown, _) = tokio::sync::watch::channel(None);
    let n = cfg.destinations.len() as u64;
    let mut dests = Vec::new();
    let mut tasks = Vec::new();
    let cfg = Arc::new(cfg);
    for d in &cfg.destinations {
        let target = Target::parse(d).map_err(anyhow::Error::msg)?;
        let spool = match &cfg.spool_dir {
            Some(dir) => {
                let dir = dir.join(config::spool_subdir(d));
                let per_dest = cfg.spool_max_bytes / n;
                let opts = spool::SpoolOptions {
                    max_bytes: per_dest,
                    // At least four segments fit under the cap, so dropping one loses a quarter
                    // at most.
                    segment_bytes: cfg.spool_segment_bytes.min(per_dest / 4).max(64),
                    fsync: cfg.fsync,
                };
                Some(spool::Spool::open(&dir, opts).with_context(|| {
                    format!(
                        "opening the spool of destination {d:?} in {} (check sender.spool_dir)",
                        dir.display()
                    )
                })?)
            }
            None => None,
        };
        let gauges = Arc::new(DestGauges::default());
        let backlog = queue::Backlog::new(
            d.clone(),
            cfg.queue_max_bytes,
            spool,
            counters.clone(),
            gauges.clone(),
        );
        let shared = Arc::new(DestShared {
            name: d.clone(),
            backlog: Mutex::new(backlog),
            notify: tokio::sync::Notify::new(),
            gauges,
        });
        tasks.push(tokio::spawn(worker::run(
            shared.clone(),
            target,
            cfg.clone(),
            counters.clone(),
            shutdown.subscribe(),
        )));
        dests.push(shared);
    }
    Ok(SenderHandle {
        inner: Arc::new(Inner {
            dests,
            placement,
            counters,
            shutdown,
            tasks: Mutex::new(tasks),
        }),
    })
}

impl SenderHandle {
    /// Hand over complete lines. Never blocks on the network and never loses a line silently:
    /// memory queue, then disk spool; only at the spool cap are the oldest lines dropped (and
    /// counted).
    pub fn submit(&self, chunk: Chunk) {
        if chunk.data.is_empty() {
            return;
        }
        if self.inner.placement.mode() != placement::Mode::All {
            for (d, part) in self.inner.dests.iter().zip(self.split(&chunk)) {
                if part.lines > 0 {
                    d.lock().push(part);
                    d.notify.notify_one();
                }
            }
            return;
        }
        let (last, rest) = match self.inner.dests.split_last() {
            Some(x) => x,
            None => return,
        };
        for d in rest {
            d.lock().push(chunk.clone());
            d.notify.notify_one();
        }
        last.lock().push(chunk);
        last.notify.notify_one();
    }

    /// Hand over the agent's own metrics: sent before anything else (the spool included),
    /// never spooled while the agent runs and never dropped at the spool cap, so the drop
    /// counts they carry arrive even when the spool is discarding lines. Kept in memory (at
    /// most [`queue::PRIORITY_MAX_BYTES`] per destination, the oldest dropped beyond) while a
    /// destination is down; spooled at shutdown.
    pub fn submit_priority(&self, chunk: Chunk) {
        if chunk.data.is_empty() {
            return;
        }
        if self.inner.placement.mode() != placement::Mode::All {
            for (d, part) in self.inner.dests.iter().zip(self.split(&chunk)) {
                if part.lines > 0 {
                    d.lock().push_priority(part);
                    d.notify.notify_one();
                }
            }
            return;
        }
        for d in &self.inner.dests {
            d.lock().push_priority(chunk.clone());
            d.notify.notify_one();
        }
    }

    /// The lines of `chunk` each destination gets under the placement, in order.
    fn split(&self, chunk: &Chunk) -> Vec<Chunk> {
        let dests = &self.inner.dests;
        let mut parts = vec![Chunk::default(); dests.len()];
        let (mut buf, mut out) = (Vec::new(), Vec::new());
        let up = |i: usize| !dests[i].gauges.failed.load(Relaxed);
        for line in chunk.data.split_inclusive(|&b| b == b'\n') {
            self.inner.placement.place(line, up, &mut buf, &mut out);
            for &i in &out {
                parts[i].data.extend_from_slice(line);
                parts[i].lines += 1;
            }
        }
        parts
    }

    /// Current counters, for self-metrics.
    pub fn stats(&self) -> SenderStats {
        let c = &self.inner.counters;
        let mut s = SenderStats {
            lines_sent: c.lines_sent.load(Relaxed),
            lines_dropped: c.lines_dropped.load(Relaxed),
            reconnects: c.reconnects.load(Relaxed),
            spool_torn_records: c.spool_torn_records.load(Relaxed),
            ..SenderStats::default()
        };
        for d in &self.inner.dests {
            s.queued_lines += d.gauges.queued_lines.load(Relaxed);
            s.spool_bytes += d.gauges.spool_bytes.load(Relaxed);
            s.spool_lines += d.gauges.spool_lines.load(Relaxed);
            s.inflight_lines += d.gauges.inflight_lines.load(Relaxed);
        }
        s
    }

    /// Flush what is queued to the destinations within `timeout`, then persist what remains
    /// to the spool (fsync'ed) and stop. Called on SIGTERM. Lines submitted afterwards are
    /// counted as dropped.
    pub async fn shutdown(self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        self.inner.shutdown.send_replace(Some(deadline));
        let tasks =
            std::mem::take(&mut *self.inner.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        // Workers stop writing at the deadline; persisting to disk may take a little longer.
        let grace = deadline + Duration::from_secs(10);
        for t in tasks {
            match tokio::time::timeout_at(grace, t).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => anyhow::bail!("sender worker failed: {e}"),
                Err(_) => anyhow::bail!("sender workers did not stop within {timeout:?} + 10s"),
            }
        }
        let left: u64 = self
            .inner
            .dests
            .iter()
            .map(|d| d.gauges.queued_lines.load(Relaxed) + d.gauges.inflight_lines.load(Relaxed))
            .sum();
        let dropped = self.inner.counters.dropped_at_shutdown.load(Relaxed);
        if left > 0 || dropped > 0 {
            anyhow::bail!(
                "{} lines could not be delivered or spooled at shutdown and were dropped (see the log)",
                left + dropped
            );
        }
        Ok(())
    }

    /// Per-destination view: (destination, queued lines, spool bytes).
    pub fn destinations(&self) -> Vec<(String, u64, u64)> {
        self.inner
            .dests
            .iter()
            .map(|d| {
                (
                    d.name.clone(),
                    d.gauges.queued_lines.load(Relaxed),
                    d.gauges.spool_bytes.load(Relaxed),
                )
            })
            .collect()
    }
}
