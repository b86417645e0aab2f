//! The loop of one destination: connect (with backoff), take batches from the backlog, write
//! them (with a timeout), commit them once the peer has read them (or restore them when the
//! connection is lost), fsync the spool on schedule, and on shutdown flush until the deadline
//! then persist the rest.

use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::{sleep_until, Instant};

use super::config::{FsyncPolicy, SenderConfig, Target};
use super::conn::{Backoff, Closed, Conn, Pacer, ReadEstimate};
use super::queue::Payload;
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

/// How often the peer's progress is checked while written lines wait for it.
const POLL: Duration = Duration::from_millis(10);

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

/// Batches written on the current connection and not yet known to be read by the peer, with
/// the connection offset where each ends. They stay in the backlog (memory in flight, or the
/// spool) until committed, so a lost connection loses none of them.
struct InFlight {
    batches: VecDeque<(Payload, u64)>,
    written: u64,
    bytes: u64,
    estimate: ReadEstimate,
    /// Last time the peer was seen reading or acknowledging (or nothing was waiting).
    progress_at: Instant,
    /// The last (read, acknowledged) offsets seen.
    seen: (u64, u64),
}

impl InFlight {
    fn new() -> InFlight {
        InFlight {
            batches: VecDeque::new(),
            written: 0,
            bytes: 0,
            estimate: ReadEstimate::default(),
            progress_at: Instant::now(),
            seen: (0, 0),
        }
    }

    /// A fresh connection: learn the peer's empty receive window before writing.
    fn start(c: &Conn) -> InFlight {
        let mut f = InFlight::new();
        if let Some(p) = c.progress(0) {
            f.estimate.read_upto(0, p, Instant::now());
        }
        f
    }

    fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    fn push(&mut self, batch: Payload) {
        if self.batches.is_empty() {
            self.progress_at = Instant::now();
        }
        let n = batch.data.len() as u64;
        self.written += n;
        self.bytes += n;
        self.batches.push_back((batch, self.written));
    }

    /// Commit the batches the peer has read.
    fn release(&mut self, d: &DestShared, c: &Conn) {
        if self.batches.is_empty() {
            return;
        }
        let now = Instant::now();
        let (upto, acked) = match c.progress(self.written) {
            Some(p) => (self.estimate.read_upto(self.written, p, now), p.acked),
            // UDP: "sent" is all there is.
            None if matches!(c, Conn::Udp { .. }) => (self.written, self.written),
            None => (0, 0),
        };
        if (upto, acked) != self.seen {
            self.seen = (upto, acked);
            self.progress_at = now;
        }
        let mut b = None;
        while self.batches.front().is_some_and(|(_, end)| *end <= upto) {
            let Some((batch, _)) = self.batches.pop_front() else {
                break;
            };
            self.bytes -= batch.data.len() as u64;
            b.get_or_insert_with(|| d.lock()).commit(batch);
        }
    }

    /// Only the peer can tell whether it read the last bytes (see [`ReadEstimate::ambiguous`]).
    fn ambiguous(&self) -> bool {
        !self.batches.is_empty() && self.estimate.ambiguous(Instant::now())
    }

    /// Nothing written was acknowledged or read for `limit` while lines wait for the peer.
    /// If the peer's TCP acknowledged everything, the question is only whether its
    /// application read it, which the peer answers (see [`InFlight::unconfirmed`]).
    fn stalled(&self, limit: Duration) -> bool {
        !self.batches.is_empty() && self.progress_at.elapsed() >= limit && !self.all_acked()
    }

    /// Everything written is acknowledged, with no evidence for `limit` that the peer read it:
    /// its receive window did not show it. That happens without window scaling (a small
    /// receive buffer), where a window reopened by less than a segment is never advertised
    /// again. The worker asks the peer as in the ambiguous case: close, wait for its FIN.
    fn unconfirmed(&self, limit: Duration) -> bool {
        !self.batches.is_empty() && self.progress_at.elapsed() >= limit && self.all_acked()
    }

    fn all_acked(&self) -> bool {
        self.seen.1 >= self.written
    }

    /// Every batch is delivered (the peer closed after reading all of it).
    fn commit_all(&mut self, d: &DestShared) {
        let mut b = d.lock();
        for (batch, _) in self.batches.drain(..) {
            b.commit(batch);
        }
        self.bytes = 0;
    }

    /// Put every batch back (and `last`, taken after them), for the next connection.
    fn restore_all(&mut self, d: &DestShared, last: Option<Payload>) {
        let all: Vec<Payload> = self.batches.drain(..).map(|(b, _)| b).chain(last).collect();
        if !all.is_empty() {
            d.lock().restore_all(all);
        }
        self.bytes = 0;
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
    let send_buffer = u32::try_from(cfg.send_buffer_bytes).unwrap_or(256 << 10);
    let mut conn: Option<Conn> = None;
    let mut flight = InFlight::new();
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
    // The last connection was closed to ask the peer whether it read everything.
    let mut probed = false;

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
            let attempt = tokio::time::timeout(
                cfg.connect_timeout,
                Conn::connect(&target, udp_max, send_buffer),
            );
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
                    if ever_connected && !std::mem::take(&mut probed) {
                        counters.reconnects.fetch_add(1, Relaxed);
                    }
                    if outage_logged || !ever_connected {
                        tracing::info!(destination = dest, "connected");
                    }
                    ever_connected = true;
                    outage_logged = false;
                    d.lock().connected = true;
                    d.gauges.failed.store(false, Relaxed);
                    flight = InFlight::start(&c);
                    conn = Some(c);
                }
                Err(e) => {
                    d.gauges.failed.store(true, Relaxed);
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

        flight.release(&d, c);
        if flight.ambiguous() || flight.unconfirmed(cfg.write_timeout) {
            // Ask the peer: close, and wait for its FIN, which it sends only after reading
            // everything. Then reconnect at once (not an outage).
            // A peer that does not answer is a lost connection (counted as such).
            if let Some(c) = conn.take() {
                probed = c.close(Duration::from_secs(1)).await;
                if probed {
                    flight.commit_all(&d);
                } else {
                    flight.restore_all(&d, None);
                }
            }
            continue;
        }
        if flight.stalled(cfg.write_timeout) {
            let why = format!(
                "the destination read nothing for {:?} (carbon not reading)",
                cfg.write_timeout
            );
            fail_conn(&d, &mut conn, &mut flight, None, &mut outage_logged, &why);
            continue;
        }

        let mut peer_gone = None;
        let room = flight.bytes < cfg.inflight_max_bytes;
        let next = if room {
            d.lock().take(batch_bytes)
        } else {
            None
        };
        let Some(batch) = next else {
            if deadline.is_some() && flight.is_empty() {
                break; // everything delivered
            }
            let poll = if flight.is_empty() {
                far()
            } else {
                Instant::now() + POLL
            };
            tokio::select! {
                _ = d.notify.notified(), if room => {}
                k = c.closed() => peer_gone = Some(k),
                _ = sleep_until(poll) => {}
                _ = sleep_until(syncer.due()) => {}
                _ = sleep_until(deadline.unwrap_or_else(far)), if deadline.is_some() => {}
                t = stop_requested(&mut shutdown), if deadline.is_none() => deadline = Some(t),
            }
            if let Some(k) = peer_gone {
                drop_conn(&d, &mut conn, &mut flight, None, k, &mut outage_logged);
            }
            continue;
        };

        if batch.is_spooled() {
            if deadline.is_some() {
                // Spooled lines stay spooled; memory (newer) follows them at close.
                d.lock().restore(batch);
                if flight.is_empty() {
                    break;
                }
                // Wait for the peer to read what is in flight (or the deadline).
                tokio::select! {
                    _ = sleep_until(Instant::now() + POLL) => {}
                    k = c.closed() => peer_gone = Some(k),
                }
                if let Some(k) = peer_gone {
                    drop_conn(&d, &mut conn, &mut flight, None, k, &mut outage_logged);
                }
                continue;
            }
            if let Some(t) = pacer.ready_at().filter(|t| *t > Instant::now()) {
                d.lock().restore(batch);
                tokio::select! {
                    _ = sleep_until(t) => {}
                    k = c.closed() => peer_gone = Some(k),
                    t = stop_requested(&mut shutdown), if deadline.is_none() => deadline = Some(t),
                }
                if let Some(k) = peer_gone {
                    drop_conn(&d, &mut conn, &mut flight, None, k, &mut outage_logged);
                }
                continue;
            }
        }

        if let Some(k) = c.peer_closed() {
            drop_conn(
                &d,
                &mut conn,
                &mut flight,
                Some(batch),
                k,
                &mut outage_logged,
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
                flight.push(batch);
                flight.release(&d, c);
            }
            Err(why) => {
                // Part of the batch may have arrived: it is sent again (see docs/sender.md).
                fail_conn(
                    &d,
                    &mut conn,
                    &mut flight,
                    Some(batch),
                    &mut outage_logged,
                    &why,
                );
            }
        }
    }

    if let Some(c) = conn.take() {
        // The peer closes its side once it has read everything up to our FIN: then every
        // line written was delivered. Otherwise they go back to the spool for the next run.
        if c.close(Duration::from_secs(1)).await {
            flight.commit_all(&d);
        } else {
            flight.restore_all(&d, None);
        }
    }
    let dropped = d.lock().close();
    counters.dropped_at_shutdown.fetch_add(dropped, Relaxed);
    tracing::debug!(destination = dest, "sender stopped");
}

/// The peer closed the connection. Even a FIN does not prove it read everything: a peer may
/// shut its socket down (Twisted, hence carbon, does) and only then reset it over unread data.
/// So everything in flight is sent again.
fn drop_conn(
    d: &DestShared,
    conn: &mut Option<Conn>,
    flight: &mut InFlight,
    last: Option<Payload>,
    how: Closed,
    outage_logged: &mut bool,
) {
    let why = match how {
        Closed::Eof => "closed by the destination",
        Closed::Reset => "reset by the destination",
    };
    fail_conn(d, conn, flight, last, outage_logged, why);
}

/// Give up a connection: everything not known to be read goes back to the backlog.
fn fail_conn(
    d: &DestShared,
    conn: &mut Option<Conn>,
    flight: &mut InFlight,
    last: Option<Payload>,
    outage_logged: &mut bool,
    why: &str,
) {
    *conn = None;
    flight.restore_all(d, last);
    let mut b = d.lock();
    b.connected = false;
    if !*outage_logged {
        tracing::warn!(destination = %d.name, reason = why, "connection lost; reconnecting");
        *outage_logged = true;
    }
    b.spill();
}
