//! The carbon TCP and UDP loops: accept (under the connection cap), read (under the idle
//! timeout and the cache's back-pressure), hand the bytes to a [`Receiver`].

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::bad_lines::BadLines;
use super::cacher::{Busy, Cacher, InCacher, Job, IN_CACHER};
use super::receiver::Receiver;
use crate::protocol::MAX_LINE_LEN;
use crate::store::{unix_now, Store};

/// What the carbon TCP listener counted: connections open now, refused at
/// [`ServerConfig::max_connections`], closed after [`ServerConfig::idle_timeout`].
#[derive(Debug, Default)]
pub struct Connections {
    pub open: AtomicU64,
    pub refused: AtomicU64,
    pub idle_closed: AtomicU64,
    last_refusal_log: AtomicI64,
}

/// The TCP listener's limits.
#[derive(Clone)]
pub(super) struct Limits {
    pub(super) max_connections: usize,
    pub(super) idle_timeout: Duration,
    pub(super) counts: Arc<Connections>,
}

pub(super) async fn tcp_accept(
    l: TcpListener,
    store: Arc<Store>,
    bad: Arc<BadLines>,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) {
    let cacher = Cacher::start(store.clone(), bad.clone());
    let mut conns = JoinSet::new();
    let counts = &limits.counts;
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            r = l.accept() => match r {
                Ok((sock, peer)) if conns.len() >= limits.max_connections => {
                    // Closed at once: no client can take every file descriptor.
                    drop(sock);
                    counts.refused.fetch_add(1, Relaxed);
                    let now = unix_now();
                    let last = counts.last_refusal_log.load(Relaxed);
                    if now - last >= 10 && counts.last_refusal_log.compare_exchange(last, now, Relaxed, Relaxed).is_ok() {
                        tracing::warn!(%peer, limit = limits.max_connections, "carbon: too many open connections, closing new ones (max_connections)");
                    }
                }
                Ok((sock, peer)) => {
                    counts.open.fetch_add(1, Relaxed);
                    conns.spawn(tcp_conn(sock, peer, store.clone(), bad.clone(), cacher.clone(), limits.clone(), stop.clone()));
                }
                Err(e) => {
                    tracing::warn!("carbon listener accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {
                counts.open.fetch_sub(1, Relaxed);
            }
        }
    }
    // Connections see the stop signal too; wait so their last lines are in the cache.
    while conns.join_next().await.is_some() {
        counts.open.fetch_sub(1, Relaxed);
    }
}

/// Back-pressure: while the cache is full, ask for a flush and wait for room instead of
/// reading (TCP flow control then slows the sender; UDP datagrams wait in, or overflow,
/// the kernel's buffer). Returns false if the server is stopping.
async fn wait_for_room(store: &Store, peer: SocketAddr, stop: &mut watch::Receiver<bool>) -> bool {
    if !store.cache_full() {
        return true;
    }
    store.stats.backpressure_pauses.fetch_add(1, Relaxed);
    let now = unix_now();
    let last = LAST_PAUSE_LOG.load(Relaxed);
    if now - last >= 10
        && LAST_PAUSE_LOG
            .compare_exchange(last, now, Relaxed, Relaxed)
            .is_ok()
    {
        tracing::warn!(
            %peer,
            cache_points = store.stats.cache_points.load(Relaxed),
            "store cache full: pausing carbon listeners until a flush makes room"
        );
    }
    while store.cache_full() {
        store.flush_wanted.notify_one();
        tokio::select! {
            _ = stop.changed() => return false,
            _ = store.room.notified() => {}
            // A flush may end between the check and the wait: look again now and then.
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
    }
    true
}

static LAST_PAUSE_LOG: AtomicI64 = AtomicI64::new(0);

/// Bytes a connection reads at once (and parses as one batch) while it sends little: what an
/// idle connection holds.
const READ_BUF: usize = 64 * 1024;

/// The read buffer of a connection whose reads fill [`READ_BUF`] (a bulk sender): fewer
/// wake-ups and longer runs per shard. At most ~43k points, so three reads of a connection
/// (two with the cacher, the next) fit in [`HARD_CACHE_SLACK`](crate::store::HARD_CACHE_SLACK). Back to [`READ_BUF`]
/// once its reads are small again.
const BULK_READ_BUF: usize = 256 * 1024;

async fn tcp_conn(
    mut sock: TcpStream,
    peer: SocketAddr,
    store: Arc<Store>,
    bad: Arc<BadLines>,
    cacher: Option<Cacher>,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) {
    // An idle connection holds no read buffer until it sends something.
    let first = tokio::select! {
        _ = stop.changed() => return,
        r = tokio::time::timeout(limits.idle_timeout, sock.readable()) => r,
    };
    match first {
        Err(_) => {
            limits.counts.idle_closed.fetch_add(1, Relaxed);
            return;
        }
        Ok(Err(_)) => return,
        Ok(Ok(())) => {}
    }
    let mut buf = vec![0u8; READ_BUF];
    let mut receiver = Receiver::new(&store, &bad, peer);
    // The reads with the cacher (bulk mode), oldest first, and buffers to read into next.
    let mut in_cacher = InCacher::default();
    let mut busy = Busy {
        cacher: cacher.as_ref(),
        now: false,
    };
    let mut filled = 0;
    let mut bulk = false;
    // The last read went to the cacher.
    let mut to_cacher = false;
    // Inside an over-long line: drop bytes until the next newline.
    let mut discarding = false;
    loop {
        if store.cache_full() {
            // Its reads are counted before pausing.
            in_cacher.finish_all(&mut receiver).await;
        }
        if !wait_for_room(&store, peer, &mut stop).await {
            break;
        }
        let n = tokio::select! {
            _ = stop.changed() => break,
            r = tokio::time::timeout(limits.idle_timeout, sock.read(&mut buf[filled..])) => match r {
                Err(_) => {
                    limits.counts.idle_closed.fetch_add(1, Relaxed);
                    tracing::debug!(%peer, "carbon connection idle for {:?}: closed", limits.idle_timeout);
                    break;
                }
                Ok(Ok(0) | Err(_)) => break,
                Ok(Ok(n)) => n,
            },
        };
        let now = unix_now();
        let full = filled + n == buf.len();
        filled += n;
        if discarding {
            // `filled` was 0 before this read while discarding.
            match buf[..filled].iter().position(|&b| b == b'\n') {
                Some(p) => {
                    buf.copy_within(p + 1..filled, 0);
                    filled -= p + 1;
                    discarding = false;
                }
                None => {
                    filled = 0;
                    continue;
                }
            }
        }
        // Values are left to the cacher while the connection's reads go there.
        let used = receiver.parse(&buf[..filled], to_cacher);
        to_cacher = false;
        if let Some(cacher) = busy.read(receiver.batch.len()) {
            // Hand this read to the cacher and read on into another buffer (once fewer than
            // IN_CACHER reads are there).
            if in_cacher.jobs.len() >= IN_CACHER {
                in_cacher.finish_one(&mut receiver).await;
            }
            // A buffer back from the cacher is read into as it is (no need to zero 256 KiB).
            let mut next = in_cacher.spare_bufs.pop().unwrap_or_default();
            next.resize(buf.len(), 0);
            next[..filled - used].copy_from_slice(&buf[used..filled]);
            let (batch, unknown, deferred) = receiver.take_parsed();
            let job = Job {
                text: std::mem::replace(&mut buf, next),
                end: used,
                batch,
                unknown,
                deferred,
                peer,
                now,
            };
            to_cacher = true;
            let (done, wait) = tokio::sync::oneshot::channel();
            match cacher.jobs.send((job, done)) {
                Ok(()) => in_cacher.jobs.push_back(wait),
                // The cacher is gone (it never ends before its senders): cache here.
                Err(std::sync::mpsc::SendError((mut job, _))) => {
                    in_cacher.finish_all(&mut receiver).await;
                    job.cache(&store, &bad);
                    receiver.parsed_cached(&job.text[..job.end], job.batch, job.unknown);
                    to_cacher = false;
                }
            }
        } else {
            receiver.cache_parsed(&buf[..used], now);
            buf.copy_within(used..filled, 0);
        }
        filled -= used;
        if filled > MAX_LINE_LEN + 2 || filled == buf.len() {
            bad.emit("too_long", peer, &"line longer than the limit, discarded");
            filled = 0;
            discarding = true;
        }
        // Grow for a bulk sender, shrink back (and drop the spare batch) when it slows down.
        if full && !bulk {
            buf.resize(BULK_READ_BUF, 0);
            bulk = true;
        } else if bulk && n < READ_BUF / 4 {
            in_cacher.finish_all(&mut receiver).await;
            in_cacher.spare_bufs = Vec::new();
            buf.truncate(READ_BUF);
            buf.shrink_to_fit();
            receiver.shrink();
            bulk = false;
        }
    }
    in_cacher.finish_all(&mut receiver).await;
    // The last line may lack its newline (carbon accepts it on close).
    if !discarding && filled > 0 {
        receiver.last_line(&buf[..filled], unix_now());
    }
}

pub(super) async fn udp_loop(
    sock: UdpSocket,
    store: Arc<Store>,
    bad: Arc<BadLines>,
    mut stop: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; READ_BUF];
    // Datagrams of every sender share one memory of the series sent (a sender's lines
    // follow one another within a datagram).
    let mut receiver = Receiver::new(&store, &bad, SocketAddr::from(([127, 0, 0, 1], 0)));
    let local = sock
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
    loop {
        if !wait_for_room(&store, local, &mut stop).await {
            break;
        }
        let (n, peer) = tokio::select! {
            _ = stop.changed() => break,
            r = sock.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::debug!("carbon udp receive failed: {e}");
                    continue;
                }
            },
        };
        let now = unix_now();
        let d = &buf[..n];
        receiver.peer = peer;
        let used = receiver.lines(d, now);
        if used < n {
            receiver.last_line(&d[used..], now);
        }
    }
}
