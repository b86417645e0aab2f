//! The loop of one destination: connect (with backoff), take batches from the backlog, write
//! them (with a timeout), commit or restore, fsync the spool on schedule, and on shutdown
//! flush until the deadline then persist the rest.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::{sleep_until, Instant};

use super::config::{FsyncPolicy, SenderConfig, Target};
use super::conn::{Backoff, Conn, Pacer};
use super::{Counters, DestShared};

/// Resolves with the shutdown deadline once one is set (now, if every handle was dropped).
async fn stop_requested(rx: &mut watch::Receiver<Option<Instant>>) -> Instant {
    loop {
        if let Some(t) = *rx.borrow_and_update() {
            return t;
        }
        if rx.changed().await.is_err() {
            return Instant::now();
        }
    }
}

/// An instant far enough away to stand for "never" in a `select!`.
fn far() -> Instant {
    Instant::now() + Duration::from_secs(86_400)
}

struct Syncer {
    every: Option<Duration>,
    next: Option<Instant>,
}

impl Syncer {
    /// fsync if due; schedule the next one if the spool has unsynced changes.
    fn tick(&mut self, d: &DestShared) {
        d.lock().flush_logs(false);
        let Some(every) = self.every else { return };
        let now = Instant::now();
        if self.next.is_some_and(|t| now >= t) {
            d.lock().sync();
            self.next = None;
        }
        if self.next.is_none() && d.lock().needs_sync() {
            self.next = Some(now + every);
        }
    }

    fn due(&self) -> Instant {
        self.next.unwrap_or_else(far)
    }
}

pub(crate) async fn run(
    d: Arc<DestShared>,
    target: Target,
    cfg: Arc<SenderConfig>,
    counters: Arc<Counters>,
    mut shutdown: watch::Receiver<Option<Instant>>,
) {
    let dest = d.name.as_str();
    let udp_max = usize::try_from(cfg.udp_max_datagram).unwrap_or(1400);
    let batch_bytes = usize::try_from(cfg.batch_bytes).unwrap_or(64 << 10);
    let mut conn: Option<Conn> = None;
    let mut backoff = Backoff::new(cfg.reconnect_min, cfg.reconnect_max);
    let mut pacer = Pacer::new(cfg.replay_lines_per_second);
    let mut syncer = Syncer {
        every: match cfg.fsync {
            FsyncPolicy::Interval(i) => Some(i),
            _ => None,
        },
        next: None,
    };
    let mut deadline: Option<Instant> = None;
    let mut ever_connected = false;
    let mut outage_logged = false;

    loop {
        syncer.tick(&d);
        if deadline.is_some_and(|t| Instant::now() >= t) {
            break;
        }

        // Not connected: try once, else wait out the backoff (spooling what arrives).
        let Some(c) = conn.as_mut() else {
            if deadline.is_some() {
                break;
            }
            let attempt =
                tokio::time::timeout(cfg.connect_timeout, Conn::connect(&target, udp_max));
            let res = tokio::select! {
                r = attempt => r.unwrap_or_else(|_| Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("connection attempt took longer than {:?}", cfg.connect_timeout),
                ))),
                t = stop_requested(&mut shutdown), if deadline.is_none() => {
                    deadline = Some(t);
                    continue;
                }
            };
            match res {
                Ok(c) => {
                    if ever_connected {
                        counters.reconnects.fetch_add(1, Relaxed);
                    }
                    if outage_logged || !ever_connected {
                        tracing::info!(destination = dest, "connected");
                    }
                    ever_connected = true;
                    outage_logged = false;
                    d.lock().connected = true;
                    conn = Some(c);
                }
                Err(e) => {
                    {
                        let mut b = d.lock();
                        b.connected = false;
                        b.spill();
                    }
                    if !outage_logged {
                        tracing::warn!(destination = dest, error = %e, "cannot connect; queueing/spooling until it is back");
                        outage_logged = true;
                    } else {
                        tracing::debug!(destination = dest, error = %e, "reconnect failed");
                    }
                    let until = Instant::now() + backoff.next_delay();
                    loop {
                        syncer.tick(&d);
                        tokio::select! {
                            _ = sleep_until(until) => break,
                            _ = d.notify.notified() => d.lock().spill(),
                            _ = sleep_until(syncer.due()) => {}
                            t = stop_requested(&mut shutdown), if deadline.is_none() => {
                                deadline = Some(t);
                                break;
                            }
                        }
                    }
                }
            }
            continue;
        };

        let mut peer_gone = false;
        let Some(batch) = d.lock().take(batch_bytes) else {
            if deadline.is_some() {
                break; // everything delivered
            }
            tokio::select! {
                _ = d.notify.notified() => {}
                _ = c.closed() => peer_gone = true,
                _ = sleep_until(syncer.due()) => {}
                t = stop_requested(&mut shutdown), if deadline.is_none() => deadline = Some(t),
            }
            if peer_gone {
                drop_conn(
                    &d,
                    &mut conn,
                    &mut outage_logged,
                    "closed by the destination",
                );
            }
            continue;
        };

        if batch.is_spooled() {
            if deadline.is_some() {
                // Spooled lines stay spooled; memory (newer) follows them at close.
                d.lock().restore(batch);
                break;
            }
            if let Some(t) = pacer.ready_at().filter(|t| *t > Instant::now()) {
                d.lock().restore(batch);
                tokio::select! {
                    _ = sleep_until(t) => {}
                    _ = c.closed() => peer_gone = true,
                    t = stop_requested(&mut shutdown), if deadline.is_none() => deadline = Some(t),
                }
                if peer_gone {
                    drop_conn(
                        &d,
                        &mut conn,
                        &mut outage_logged,
                        "closed by the destination",
                    );
                }
                continue;
            }
        }

        if c.peer_closed() {
            d.lock().restore(batch);
            drop_conn(
                &d,
                &mut conn,
                &mut outage_logged,
                "closed by the destination",
            );
            continue;
        }

        let res: Result<(), String> = {
            let write = tokio::time::timeout(cfg.write_timeout, c.write_all(&batch.data));
            tokio::pin!(write);
            loop {
                tokio::select! {
                    r = &mut write => break match r {
                        Ok(Ok(())) => Ok(()),
                        Ok(Err(e)) => Err(format!("write failed: {e}")),
                        Err(_) => Err(format!(
                            "write made no progress for {:?} (carbon not reading)",
                            cfg.write_timeout
                        )),
                    },
                    _ = sleep_until(deadline.unwrap_or_else(far)), if deadline.is_some() => {
                        break Err("shutdown deadline reached during a write".into());
                    }
                    t = stop_requested(&mut shutdown), if deadline.is_none() => deadline = Some(t),
                }
            }
        };
        match res {
            Ok(()) => {
                if batch.is_spooled() {
                    pacer.sent(batch.lines);
                }
                backoff.reset();
                d.lock().commit(batch);
            }
            Err(why) => {
                // Part of the batch may have arrived: it is sent again (see docs/sender.md).
                d.lock().restore(batch);
                drop_conn(&d, &mut conn, &mut outage_logged, &why);
            }
        }
    }

    if let Some(c) = conn.take() {
        c.close(Duration::from_secs(1)).await;
    }
    d.lock().close();
    tracing::debug!(destination = dest, "sender stopped");
}

fn drop_conn(d: &DestShared, conn: &mut Option<Conn>, outage_logged: &mut bool, why: &str) {
    *conn = None;
    let mut b = d.lock();
    b.connected = false;
    if !*outage_logged {
        tracing::warn!(destination = %d.name, reason = why, "connection lost; reconnecting");
        *outage_logged = true;
    }
    b.spill();
}
