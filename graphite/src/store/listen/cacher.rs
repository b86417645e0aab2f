//! The cacher thread: busy connections hand their parsed reads to it and parse on.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use super::bad_lines::BadLines;
use super::receiver::{cache, Receiver};
use crate::store::{Point, Store};

/// A busy connection's parsed read on its way to the [`Cacher`] and back: the bytes read
/// (the points' paths point into them), the points, and when they were received.
pub(super) struct Job {
    pub(super) text: Vec<u8>,
    pub(super) end: usize,
    pub(super) batch: Vec<Point>,
    /// Indexes of the points whose series the connection had not sent before.
    pub(super) unknown: Vec<u32>,
    /// Some points are deferred ([`finish_lines`] reads them before caching).
    pub(super) deferred: bool,
    /// The sender, named in the log of its bad lines.
    pub(super) peer: SocketAddr,
    pub(super) now: i64,
}

impl Job {
    /// Read the deferred points and cache the batch.
    pub(super) fn cache(&mut self, store: &Store, bad: &BadLines) {
        let deferred = std::mem::take(&mut self.deferred);
        let text = &self.text[..self.end];
        cache(
            store,
            bad,
            self.peer,
            text,
            &mut self.batch,
            self.now,
            deferred,
        );
    }
}

/// The thread that caches the parsed reads of busy connections (reads of at least
/// [`CACHER_MIN_POINTS`] points) while there are fewer of them than cores: a connection
/// then parses its next read while its last ones are cached, so one connection uses two
/// cores. With as many busy connections as cores, every core is parsing and caching
/// already, and a hand-off would only add work: connections cache their reads themselves.
/// One thread for all connections: the shards' tables stay in one core's cache. A
/// connection has at most [`IN_CACHER`] reads here and takes them back in order, and the
/// thread caches in the order it is given, so a connection's points are cached in the
/// order they came.
#[derive(Clone)]
pub(super) struct Cacher {
    pub(super) jobs: std::sync::mpsc::Sender<(Job, tokio::sync::oneshot::Sender<Job>)>,
    /// Connections whose last read was busy.
    busy: Arc<AtomicUsize>,
    cores: usize,
}

impl Cacher {
    /// Start the thread; `None` if it cannot be started (connections then cache their
    /// reads themselves). It ends when the last clone is dropped.
    pub(super) fn start(store: Arc<Store>, bad: Arc<BadLines>) -> Option<Cacher> {
        let (jobs, rx) = std::sync::mpsc::channel::<(Job, tokio::sync::oneshot::Sender<Job>)>();
        let spawned = std::thread::Builder::new()
            .name("carbon-cacher".into())
            .spawn(move || {
                while let Ok((mut job, done)) = rx.recv() {
                    job.cache(&store, &bad);
                    let _ = done.send(job);
                }
            });
        match spawned {
            Ok(_) => Some(Cacher {
                jobs,
                busy: Arc::default(),
                cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            }),
            Err(e) => {
                tracing::warn!(
                    "cannot start the carbon cacher thread, connections cache their own reads: {e}"
                );
                None
            }
        }
    }
}

/// Whether a connection is busy (counted in [`Cacher::busy`] while it is).
pub(super) struct Busy<'a> {
    pub(super) cacher: Option<&'a Cacher>,
    pub(super) now: bool,
}

impl Busy<'_> {
    /// Note whether the last read was busy; returns the cacher if this read should go there.
    pub(super) fn read(&mut self, points: usize) -> Option<&Cacher> {
        let cacher = self.cacher?;
        let busy = points >= CACHER_MIN_POINTS;
        if busy != self.now {
            if busy {
                cacher.busy.fetch_add(1, Relaxed);
            } else {
                cacher.busy.fetch_sub(1, Relaxed);
            }
            self.now = busy;
        }
        (busy && cacher.busy.load(Relaxed) < cacher.cores).then_some(cacher)
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        if let (Some(c), true) = (self.cacher, self.now) {
            c.busy.fetch_sub(1, Relaxed);
        }
    }
}

/// Reads of fewer points are cached by their connection (not worth a hand-off to the
/// [`Cacher`]).
const CACHER_MIN_POINTS: usize = 1024;

/// Most reads of one connection with the [`Cacher`] at once: the cacher has the next one
/// queued when it finishes one, and the connection parses on.
pub(super) const IN_CACHER: usize = 2;

/// A connection's reads with the [`Cacher`], oldest first, and the buffers of those it got
/// back.
#[derive(Default)]
pub(super) struct InCacher {
    pub(super) jobs: std::collections::VecDeque<tokio::sync::oneshot::Receiver<Job>>,
    pub(super) spare_bufs: Vec<Vec<u8>>,
}

impl InCacher {
    /// Wait until the oldest read is cached and take its results in.
    pub(super) async fn finish_one(&mut self, receiver: &mut Receiver<'_>) {
        let Some(wait) = self.jobs.pop_front() else {
            return;
        };
        // An error means the cacher thread died (a bug): that read's points are lost.
        if let Ok(job) = wait.await {
            receiver.parsed_cached(&job.text[..job.end], job.batch, job.unknown);
            self.spare_bufs.push(job.text);
        }
    }

    /// Wait until every read is cached.
    pub(super) async fn finish_all(&mut self, receiver: &mut Receiver<'_>) {
        while !self.jobs.is_empty() {
            self.finish_one(receiver).await;
        }
    }
}
