//! The bounded pool the HTTP API's work runs in: renders, JSON/CSV encoding, `/metrics/*` and
//! `/tags/*`. The async workers only parse requests and write answers, so they stay free for
//! `/version`, the carbon listeners and the alerter whatever a request asks for.
//!
//! - A request takes one of [`Pool`]'s slots (`max_concurrent_renders`) for its work, waiting
//!   at most `render_queue_timeout` for one (then 503, `Retry-After`).
//! - Its work runs on a blocking thread under a [`Cancel`]: a flag the work checks between
//!   steps (the evaluator inside its loops, the source between fetches, the encoders between
//!   series). The flag is set when the request has run `render_timeout` (504), when the
//!   client goes away (hyper drops the request's future; [`Pool::run`]'s guard sets it on
//!   drop) and when the server stops ([`Pool::stop`]: running work is cancelled, new work
//!   refused with 503), so SIGTERM never waits behind a render.
//! - If the work does not stop within [`GRACE`] of its deadline the client is answered
//!   anyway; the slot stays taken until the thread returns, so a runaway never multiplies.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

/// How long work may overrun its deadline (to stop cleanly) before the client is answered
/// without it.
pub const GRACE: Duration = Duration::from_secs(1);

/// Why work was told to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// It ran `render_timeout`.
    Deadline,
    /// The client closed its connection.
    ClientGone,
    /// The server is stopping.
    Shutdown,
}

impl Stop {
    fn code(self) -> u8 {
        match self {
            Stop::Deadline => 1,
            Stop::ClientGone => 2,
            Stop::Shutdown => 3,
        }
    }

    fn from_code(c: u8) -> Option<Stop> {
        match c {
            1 => Some(Stop::Deadline),
            2 => Some(Stop::ClientGone),
            3 => Some(Stop::Shutdown),
            _ => None,
        }
    }
}

#[derive(Debug, Default)]
struct Flags {
    /// Set once, with the first reason; read by the work (the evaluator's
    /// [`Budget`](crate::budget::Budget) checks it as its cancel flag).
    stop: Arc<AtomicBool>,
    reason: AtomicU8,
}

impl Flags {
    fn set(&self, why: Stop) {
        let _ = self
            .reason
            .compare_exchange(0, why.code(), Relaxed, Relaxed);
        self.stop.store(true, Relaxed);
    }
}

/// What running work checks: whether it should stop, and why. Cheap to clone and to check
/// (one relaxed load).
#[derive(Debug, Clone)]
pub struct Cancel {
    flags: Arc<Flags>,
    deadline: Instant,
}

impl Cancel {
    /// Whether the work should stop now (its deadline passed, its client went away, or the
    /// server is stopping).
    pub fn stopped(&self) -> Option<Stop> {
        if self.flags.stop.load(Relaxed) {
            return Stop::from_code(self.flags.reason.load(Relaxed)).or(Some(Stop::Shutdown));
        }
        if Instant::now() >= self.deadline {
            self.flags.set(Stop::Deadline);
            return Some(Stop::Deadline);
        }
        None
    }

    /// The flag itself, for code that checks an `AtomicBool` (the evaluator's budget): set
    /// together with the reason; a passed deadline sets it when the async side's timer
    /// fires.
    pub fn flag(&self) -> Arc<AtomicBool> {
        self.flags.stop.clone()
    }

    /// When the work's time is up.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }
}

/// Why [`Pool::run`] gave no result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Every slot stayed busy for the queue timeout.
    Busy { slots: usize, waited: Duration },
    /// The work ran past its deadline (and [`GRACE`]) without returning.
    Deadline(Duration),
    /// The server is stopping.
    ShuttingDown,
    /// The work panicked (a bug; logged).
    Failed,
}

/// The pool's settings.
#[derive(Debug, Clone, Copy)]
pub struct PoolConfig {
    /// Work running at once.
    pub slots: usize,
    /// Longest wait for a slot.
    pub queue_timeout: Duration,
    /// Longest run of one request's work.
    pub deadline: Duration,
}

/// The bounded pool; clones share it.
#[derive(Clone)]
pub struct Pool {
    inner: Arc<PoolInner>,
}

struct PoolInner {
    config: PoolConfig,
    slots: Arc<Semaphore>,
    stopping: AtomicBool,
    /// Wakes requests waiting for their work when the server stops.
    stop_signal: tokio::sync::watch::Sender<bool>,
    next_id: AtomicU64,
    running: Mutex<HashMap<u64, Arc<Flags>>>,
    /// Counters (for logs and tests): refused for want of a slot, stopped at the deadline,
    /// cancelled because the client left.
    busy: AtomicU64,
    deadlines: AtomicU64,
    client_gone: AtomicU64,
}

/// Sets the work's flag if the request's future is dropped before the work is done, and
/// forgets the work.
struct Running<'a> {
    pool: &'a PoolInner,
    id: u64,
    flags: Arc<Flags>,
    done: bool,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.flags.set(Stop::ClientGone);
            self.pool.client_gone.fetch_add(1, Relaxed);
        }
        self.pool
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}

impl Pool {
    pub fn new(config: PoolConfig) -> Pool {
        let slots = config.slots.max(1);
        Pool {
            inner: Arc::new(PoolInner {
                config: PoolConfig { slots, ..config },
                slots: Arc::new(Semaphore::new(slots)),
                stopping: AtomicBool::new(false),
                stop_signal: tokio::sync::watch::channel(false).0,
                next_id: AtomicU64::new(0),
                running: Mutex::default(),
                busy: AtomicU64::new(0),
                deadlines: AtomicU64::new(0),
                client_gone: AtomicU64::new(0),
            }),
        }
    }

    pub fn config(&self) -> PoolConfig {
        self.inner.config
    }

    /// Cancel all running work and refuse new work (the server is stopping).
    pub fn stop(&self) {
        self.inner.stopping.store(true, Relaxed);
        self.inner.slots.close();
        // Flags first: a request woken by the signal forgets its work.
        for f in self
            .inner
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
        {
            f.set(Stop::Shutdown);
        }
        self.inner.stop_signal.send_replace(true);
    }

    /// Requests refused for want of a slot, stopped at their deadline, and cancelled because
    /// their client left, so far.
    pub fn counts(&self) -> (u64, u64, u64) {
        (
            self.inner.busy.load(Relaxed),
            self.inner.deadlines.load(Relaxed),
            self.inner.client_gone.load(Relaxed),
        )
    }

    /// Run `work` on a blocking thread once a slot is free (see the module docs).
    pub async fn run<T, F>(&self, work: F) -> Result<T, Refused>
    where
        T: Send + 'static,
        F: FnOnce(&Cancel) -> T + Send + 'static,
    {
        let p = &self.inner;
        let waited = p.config.queue_timeout;
        let permit = match tokio::time::timeout(waited, p.slots.clone().acquire_owned()).await {
            Err(_) => {
                p.busy.fetch_add(1, Relaxed);
                return Err(Refused::Busy {
                    slots: p.config.slots,
                    waited,
                });
            }
            Ok(Err(_)) => return Err(Refused::ShuttingDown),
            Ok(Ok(permit)) => permit,
        };
        if p.stopping.load(Relaxed) {
            return Err(Refused::ShuttingDown);
        }
        let flags = Arc::new(Flags::default());
        let id = p.next_id.fetch_add(1, Relaxed);
        p.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, flags.clone());
        let mut guard = Running {
            pool: p,
            id,
            flags: flags.clone(),
            done: false,
        };
        let cancel = Cancel {
            flags: flags.clone(),
            deadline: Instant::now() + p.config.deadline,
        };
        let mut job = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work(&cancel)
        });
        let mut stopping = p.stop_signal.subscribe();
        let in_time = tokio::select! {
            r = tokio::time::timeout(p.config.deadline, &mut job) => r,
            // The server stops: answer now, whether or not the work has noticed yet.
            _ = stopping.wait_for(|s| *s) => {
                guard.done = true;
                return Err(Refused::ShuttingDown);
            }
        };
        let joined = match in_time {
            Ok(r) => r,
            Err(_) => {
                flags.set(Stop::Deadline);
                match tokio::time::timeout(GRACE, &mut job).await {
                    Ok(r) => r,
                    Err(_) => {
                        guard.done = true;
                        p.deadlines.fetch_add(1, Relaxed);
                        tracing::warn!(
                            "a request's work ran past render_timeout ({:?}) and did not stop; \
                             answered without it (its slot stays taken until it returns)",
                            p.config.deadline
                        );
                        return Err(Refused::Deadline(p.config.deadline));
                    }
                }
            }
        };
        guard.done = true;
        if flags.reason.load(Relaxed) == Stop::Deadline.code() {
            p.deadlines.fetch_add(1, Relaxed);
        }
        joined.map_err(|e| {
            tracing::error!("a request's work failed (a bug): {e}");
            Refused::Failed
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(slots: usize, queue_ms: u64, deadline_ms: u64) -> Pool {
        Pool::new(PoolConfig {
            slots,
            queue_timeout: Duration::from_millis(queue_ms),
            deadline: Duration::from_millis(deadline_ms),
        })
    }

    /// Work that spins until told to stop, returning why.
    fn spin(c: &Cancel) -> Option<Stop> {
        loop {
            if let Some(s) = c.stopped() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn work_past_its_deadline_is_told_to_stop() {
        let p = pool(2, 1000, 50);
        assert_eq!(p.run(spin).await, Ok(Some(Stop::Deadline)));
        assert_eq!(p.counts().1, 1);
        assert_eq!(p.run(|_| 7).await, Ok(7));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_pool_refuses_after_the_queue_timeout() {
        let p = pool(1, 20, 60_000);
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let hold = {
            let p = p.clone();
            tokio::spawn(async move { p.run(move |_| rx.recv().is_ok()).await })
        };
        // Wait until the first one holds the slot.
        while p.inner.slots.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        assert!(matches!(
            p.run(|_| ()).await,
            Err(Refused::Busy { slots: 1, .. })
        ));
        tx.send(()).unwrap();
        assert_eq!(hold.await.unwrap(), Ok(true));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dropped_request_cancels_its_work_and_stop_cancels_the_rest() {
        let p = pool(4, 1000, 60_000);
        let (tx, rx) = std::sync::mpsc::channel();
        let fut = {
            let tx = tx.clone();
            p.run(move |c| {
                let _ = tx.send(spin(c));
            })
        };
        // Dropped while its work runs, as hyper drops the future of a closed connection.
        let _ = tokio::time::timeout(Duration::from_millis(50), fut).await;
        assert_eq!(rx.recv().unwrap(), Some(Stop::ClientGone));
        assert_eq!(p.counts().2, 1);

        let running = {
            let p = p.clone();
            tokio::spawn(async move {
                p.run(move |c| {
                    let _ = tx.send(spin(c));
                })
                .await
            })
        };
        while p.inner.running.lock().unwrap().is_empty() {
            tokio::task::yield_now().await;
        }
        p.stop();
        // The request is answered at once (or with its work, if that noticed first); its
        // work is told why it should stop.
        let answer = running.await.unwrap();
        assert!(
            matches!(answer, Err(Refused::ShuttingDown) | Ok(())),
            "{answer:?}"
        );
        assert_eq!(rx.recv().unwrap(), Some(Stop::Shutdown));
        assert_eq!(p.run(|_| ()).await, Err(Refused::ShuttingDown));
    }
}
