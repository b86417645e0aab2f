//! The carbon plaintext listeners (TCP and UDP), the periodic flusher and the self-metrics.
//!
//! Lines are parsed by [`crate::protocol::parse_line`] — the one copy of the line rules. A bad
//! line is counted per [`LineError::kind`](crate::protocol::LineError::kind), logged at most once
//! per 10 s (with how many were suppressed) and skipped; the connection stays open. Blank lines
//! are skipped silently. A line longer than [`MAX_LINE_LEN`] is discarded up to its newline
//! without being buffered, so no client can make a connection hold more than one read buffer.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::schema::{SchemaError, Schemas};
use super::{unix_now, FlushReport, Point, Recent, SeriesRef, Store, StoreError};
use crate::protocol::{parse_line, parse_value_ts, LineError, MAX_LINE_LEN};

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
    fn emit(&self, kind: &str, peer: SocketAddr, detail: &dyn std::fmt::Display) {
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

/// What the carbon TCP listener counted: connections open now, refused at
/// [`ServerConfig::max_connections`], closed after [`ServerConfig::idle_timeout`].
#[derive(Debug, Default)]
pub struct Connections {
    pub open: AtomicU64,
    pub refused: AtomicU64,
    pub idle_closed: AtomicU64,
    last_refusal_log: AtomicI64,
}

/// Configuration of the store and its carbon listeners. Not decoded here: `carbide serve`'s
/// settings file (the root crate's `config`, docs/store.md) is its one schema, and falls back
/// to [`ServerConfig::default`] for every key it does not set.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// Carbon plaintext TCP listener (default `127.0.0.1:2003`); `None` disables it.
    pub tcp_listen: Option<SocketAddr>,
    /// Carbon plaintext UDP listener (default `127.0.0.1:2003`); `None` disables it.
    pub udp_listen: Option<SocketAddr>,
    /// Directory holding `carbide.db` (created if missing; default `data`).
    pub data_dir: PathBuf,
    /// carbon's `storage-schemas.conf`, read as carbon reads it; absent: carbide's defaults
    /// (`10s:1d,1m:30d,10m:1y`).
    pub schemas: Option<PathBuf>,
    /// carbon's `storage-aggregation.conf`; absent: average with xFilesFactor 0.5.
    pub aggregation: Option<PathBuf>,
    /// How often cached points are written to SQLite (default `5s`): the crash-loss bound.
    pub flush_interval: Duration,
    /// How often `carbide.store.*` self-metrics are written (default `10s`); `0s` disables them.
    pub self_metrics_interval: Duration,
    /// Cached (unflushed) points at which the listeners stop reading from their sockets until
    /// a flush makes room (back-pressure; default 20 M, 16 bytes each). Points beyond
    /// `max_cache_points + max(max_cache_points / 4, 196608)` are dropped and counted: the hard
    /// memory bound.
    pub max_cache_points: u64,
    /// Open carbon TCP connections at once (default 4096); one more is closed as soon as it
    /// is accepted, and counted (`carbide.store.connections.refused`).
    pub max_connections: usize,
    /// A TCP connection that sends nothing for this long is closed (default `10m`), and
    /// counted (`carbide.store.connections.idle_closed`). Senders reconnect.
    pub idle_timeout: Duration,
}

fn default_max_connections() -> usize {
    4096
}

fn default_idle_timeout() -> Duration {
    Duration::from_secs(600)
}

fn default_carbon_listen() -> Option<SocketAddr> {
    Some(([127, 0, 0, 1], 2003).into())
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("data")
}

fn default_flush_interval() -> Duration {
    Duration::from_secs(5)
}

fn default_self_metrics_interval() -> Duration {
    Duration::from_secs(10)
}

fn default_max_cache_points() -> u64 {
    20_000_000
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            tcp_listen: default_carbon_listen(),
            udp_listen: default_carbon_listen(),
            data_dir: default_data_dir(),
            schemas: None,
            aggregation: None,
            flush_interval: default_flush_interval(),
            self_metrics_interval: default_self_metrics_interval(),
            max_cache_points: default_max_cache_points(),
            max_connections: default_max_connections(),
            idle_timeout: default_idle_timeout(),
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Schema(#[from] SchemaError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {proto} {addr}: {source} (is another carbon or carbide running? pick another address)")]
    Bind {
        proto: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A running store with its listeners. Call [`Server::shutdown`] to stop and flush.
pub struct Server {
    store: Arc<Store>,
    bad_lines: Arc<BadLines>,
    connections: Arc<Connections>,
    tcp_addr: Option<SocketAddr>,
    udp_addr: Option<SocketAddr>,
    stop: watch::Sender<bool>,
    flushes: watch::Receiver<FlushReport>,
    tasks: JoinSet<()>,
}

impl Server {
    /// Open the store and start listening.
    pub async fn start(config: ServerConfig) -> Result<Server, ServerError> {
        let schemas = Schemas::load(config.schemas.as_deref(), config.aggregation.as_deref())?;
        let store =
            Arc::new(Store::open(&config.data_dir, schemas, config.max_cache_points).await?);
        let bad_lines = Arc::new(BadLines::default());
        let connections = Arc::new(Connections::default());
        let (stop, stop_rx) = watch::channel(false);
        let (flush_tx, flushes) = watch::channel(FlushReport::default());
        let mut tasks = JoinSet::new();
        let mut tcp_addr = None;
        if let Some(addr) = config.tcp_listen {
            let l = TcpListener::bind(addr)
                .await
                .map_err(|source| ServerError::Bind {
                    proto: "tcp",
                    addr,
                    source,
                })?;
            tcp_addr = l.local_addr().ok();
            tasks.spawn(tcp_accept(
                l,
                store.clone(),
                bad_lines.clone(),
                Limits {
                    max_connections: config.max_connections.max(1),
                    idle_timeout: config.idle_timeout,
                    counts: connections.clone(),
                },
                stop_rx.clone(),
            ));
        }
        let mut udp_addr = None;
        if let Some(addr) = config.udp_listen {
            let s = UdpSocket::bind(addr)
                .await
                .map_err(|source| ServerError::Bind {
                    proto: "udp",
                    addr,
                    source,
                })?;
            udp_addr = s.local_addr().ok();
            tasks.spawn(udp_loop(
                s,
                store.clone(),
                bad_lines.clone(),
                stop_rx.clone(),
            ));
        }
        tasks.spawn(flusher(
            store.clone(),
            config.flush_interval,
            flush_tx,
            stop_rx.clone(),
        ));
        if config.schemas.is_some() || config.aggregation.is_some() {
            tasks.spawn(reload_schemas(
                store.clone(),
                config.schemas.clone(),
                config.aggregation.clone(),
                stop_rx.clone(),
            ));
        }
        if !config.self_metrics_interval.is_zero() {
            tasks.spawn(self_metrics(
                store.clone(),
                bad_lines.clone(),
                connections.clone(),
                config.self_metrics_interval,
                stop_rx,
            ));
        }
        Ok(Server {
            store,
            bad_lines,
            connections,
            tcp_addr,
            udp_addr,
            stop,
            flushes,
            tasks,
        })
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    pub fn bad_lines(&self) -> &BadLines {
        &self.bad_lines
    }

    /// The TCP listener's connection counts.
    pub fn connections(&self) -> &Connections {
        &self.connections
    }

    /// The bound TCP address (useful with port 0).
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp_addr
    }

    pub fn udp_addr(&self) -> Option<SocketAddr> {
        self.udp_addr
    }

    /// The last periodic flush's report; changes after every flush.
    pub fn flushes(&self) -> watch::Receiver<FlushReport> {
        self.flushes.clone()
    }

    /// Stop listening, flush everything cached, close the database.
    pub async fn shutdown(mut self) -> Result<FlushReport, StoreError> {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
        self.store.close().await
    }
}

/// The TCP listener's limits.
#[derive(Clone)]
struct Limits {
    max_connections: usize,
    idle_timeout: Duration,
    counts: Arc<Connections>,
}

async fn tcp_accept(
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

/// What a carbon listener does with the bytes it reads, for one connection (or one UDP
/// socket): parse the lines, cache their points, count and log the bad ones. It keeps what
/// the connection sent before ([`Recent`]) and its batch allocations from one read to the
/// next. Public for benchmarks and for embedders that receive lines their own way.
pub struct Receiver<'a> {
    store: &'a Store,
    bad: &'a BadLines,
    peer: SocketAddr,
    recent: Recent,
    /// The points of the lines parsed last (paths as offsets into the bytes read).
    batch: Vec<Point>,
    /// Indexes in `batch` of points whose series the connection had not sent before.
    unknown: Vec<u32>,
    /// Some points of `batch` are deferred (their values not read yet).
    deferred: bool,
    /// The allocations of a batch that was cached, for the next one.
    spare: Option<(Vec<Point>, Vec<u32>)>,
}

impl<'a> Receiver<'a> {
    /// Lines from `peer` (named in the log of bad lines), cached in `store`.
    pub fn new(store: &'a Store, bad: &'a BadLines, peer: SocketAddr) -> Receiver<'a> {
        Receiver {
            store,
            bad,
            peer,
            recent: Recent::new(store),
            batch: Vec::new(),
            unknown: Vec::new(),
            deferred: false,
            spare: None,
        }
    }

    /// Let go of the spare batch allocations (a bulk sender slowed down).
    fn shrink(&mut self) {
        self.spare = None;
    }

    /// The parsed batch, its list of unknown series and whether some of its points are
    /// deferred, taken out for caching.
    fn take_parsed(&mut self) -> (Vec<Point>, Vec<u32>, bool) {
        (
            std::mem::take(&mut self.batch),
            std::mem::take(&mut self.unknown),
            std::mem::take(&mut self.deferred),
        )
    }

    /// Handle the complete lines in `buf` (received at `now`), returning how many bytes were
    /// consumed: up to and including the last newline. The whole buffer is parsed first,
    /// then cached as one batch (each shard locked once).
    pub fn lines(&mut self, buf: &[u8], now: i64) -> usize {
        let used = self.parse(buf, false);
        self.cache_parsed(&buf[..used], now);
        used
    }

    /// Cache the batch just parsed from `text` here, on this thread.
    fn cache_parsed(&mut self, text: &[u8], now: i64) {
        let (mut batch, unknown, deferred) = self.take_parsed();
        cache(
            self.store, self.bad, self.peer, text, &mut batch, now, deferred,
        );
        self.parsed_cached(text, batch, unknown);
    }

    /// Parse the complete lines in `buf` into the batch (empty before), returning how many
    /// bytes that is: up to and including the last newline. Bad lines are counted and
    /// logged.
    ///
    /// A line of the series the connection is expected to send next ([`Recent`]) is
    /// matched by its bytes and only its value and timestamp are read, or with `defer`
    /// not even those: the point is marked deferred, for [`finish_lines`] on the thread
    /// that caches the batch (a connection handing its reads to the [`Cacher`] parses
    /// its next read meanwhile: this evens out the two threads' work). Any other line is
    /// parsed whole. Either way the point is the one [`parse_line`] gives.
    fn parse(&mut self, buf: &[u8], defer: bool) -> usize {
        let Some(last) = memchr::memrchr(b'\n', buf) else {
            return 0;
        };
        let end = last + 1;
        let buf = &buf[..end];
        if self.batch.capacity() == 0 {
            if let Some((batch, unknown)) = self.spare.take() {
                (self.batch, self.unknown) = (batch, unknown);
            }
        }
        let (batch, recent) = (&mut self.batch, &mut self.recent);
        batch.reserve(end / 32);
        let began = recent.begin_read();
        let mut remembering = began;
        let mut at = 0;
        while at < end {
            // Lines in no stable order: parse the rest of the read plainly.
            remembering &= !recent.unpredictable();
            if let Some((path, series)) = recent.expected().filter(|_| remembering) {
                let after = at + path.len();
                if buf.get(after) == Some(&b' ') && same_bytes(&buf[at..after], path) {
                    if defer {
                        // `buf` ends with a newline.
                        let n = memchr::memchr(b'\n', &buf[after + 1..]).unwrap_or(0);
                        let nl = after + 1 + n;
                        if nl - at <= MAX_LINE_LEN {
                            batch.push(Point {
                                hash: at as u64,
                                off: (after + 1) as u32,
                                len: n as u32,
                                value: 0.0,
                                ts: 0,
                                series,
                                created: false,
                                deferred: true,
                            });
                            self.deferred = true;
                            recent.advance();
                            at = nl + 1;
                            continue;
                        }
                    }
                    // The rest ends at a newline at the latest (`buf` ends with one).
                    if let Some((value, ts, n)) = parse_value_ts(&buf[after + 1..]) {
                        let nl = after + 1 + n;
                        if nl - at <= MAX_LINE_LEN {
                            batch.push(Point {
                                hash: 0,
                                off: 0,
                                len: 0,
                                value,
                                ts,
                                series,
                                created: false,
                                deferred: false,
                            });
                            recent.advance();
                            at = nl + 1;
                            continue;
                        }
                    }
                }
            }
            let nl = memchr::memchr(b'\n', &buf[at..]).map_or(end, |n| at + n);
            let line = &buf[at..nl];
            match parse_line(line) {
                Ok(l) => {
                    let hash = self.store.hash_path(l.path);
                    let mut series = SeriesRef::NONE;
                    if remembering {
                        series = recent.find(hash, l.path);
                        if series.is_none() {
                            self.unknown.push(batch.len() as u32);
                        }
                    }
                    // The path is a part of `line`: the parser borrows, never copies.
                    let off = (l.path.as_ptr() as usize).wrapping_sub(buf.as_ptr() as usize);
                    debug_assert!(off + l.path.len() <= end);
                    batch.push(Point {
                        hash,
                        off: off as u32,
                        len: l.path.len() as u32,
                        value: l.value,
                        ts: l.timestamp,
                        series,
                        created: false,
                        deferred: false,
                    });
                }
                Err(e) => reject(self.bad, self.peer, line, e),
            }
            at = nl + 1;
        }
        if began {
            recent.end_read();
        }
        end
    }

    /// A batch parsed from `text` (`unknown`: the indexes of its points whose series the
    /// connection had not sent before) is cached: remember those series, in the order they
    /// came, and keep the allocations.
    fn parsed_cached(&mut self, text: &[u8], mut batch: Vec<Point>, mut unknown: Vec<u32>) {
        for &i in unknown.iter() {
            if let Some(p) = batch.get(i as usize) {
                self.recent
                    .remember(p.hash, p.path(text), p.series, p.created);
            }
        }
        if batch.capacity() <= MAX_SPARE {
            batch.clear();
            unknown.clear();
            self.spare = Some((batch, unknown));
        }
    }

    /// Handle one line without its newline (the last one of a connection, or of a
    /// datagram).
    pub fn last_line(&mut self, line: &[u8], now: i64) {
        match parse_line(line) {
            Ok(l) => {
                self.store
                    .cache_by_path([(l.path, l.value, l.timestamp)], now);
                self.store.stats.points_received.fetch_add(1, Relaxed);
            }
            Err(e) => reject(self.bad, self.peer, line, e),
        }
    }
}

/// `a == b` for slices of equal length, eight bytes at a time, inline: a path is compared
/// with the one expected on nearly every line, and a call to `memcmp` for a few dozen bytes
/// costs more than the comparison.
#[inline(always)]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (mut a8, mut b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let mut diff = 0u64;
    for (x, y) in a8.by_ref().zip(b8.by_ref()) {
        let x = u64::from_ne_bytes(x.try_into().unwrap_or_default());
        let y = u64::from_ne_bytes(y.try_into().unwrap_or_default());
        diff |= x ^ y;
    }
    for (x, y) in a8.remainder().iter().zip(b8.remainder()) {
        diff |= u64::from(x ^ y);
    }
    diff == 0
}

/// Count and log a bad line (a blank one is skipped silently).
fn reject(bad: &BadLines, peer: SocketAddr, line: &[u8], e: LineError) {
    if !line.iter().all(u8::is_ascii_whitespace) {
        bad.emit(e.kind(), peer, &e);
    }
}

/// Read the values and timestamps of the deferred points of `batch` (parsed from `text` by
/// [`Receiver::parse`]). A line whose rest is not what [`parse_value_ts`] reads is parsed
/// whole by [`parse_line`], as [`Receiver::parse`] does; a bad one is counted and logged
/// and its point emptied (not cached). Returns how many lines were bad.
fn finish_lines(bad: &BadLines, peer: SocketAddr, text: &[u8], batch: &mut [Point]) -> u64 {
    let mut rejected = 0;
    for p in batch.iter_mut().filter(|p| p.deferred) {
        p.deferred = false;
        let (start, off, len) = (p.hash as usize, p.off as usize, p.len as usize);
        let rest = text.get(off..off + len).unwrap_or_default();
        if let Some((value, ts, n)) = parse_value_ts(rest).filter(|&(_, _, n)| n == len) {
            debug_assert_eq!(n, len);
            (p.value, p.ts) = (value, ts);
            continue;
        }
        let line = text.get(start..off + len).unwrap_or_default();
        match parse_line(line) {
            Ok(l) => (p.value, p.ts) = (l.value, l.timestamp),
            Err(e) => {
                reject(bad, peer, line, e);
                rejected += 1;
                (p.series, p.off, p.len) = (SeriesRef::NONE, 0, 0);
            }
        }
    }
    rejected
}

/// Cache `batch` (parsed from `text` by a [`Receiver`] of `peer`; with `deferred`, some
/// points are, and [`finish_lines`] reads them first) and count its points as received,
/// less the bad lines among the deferred ones (not cached).
fn cache(
    store: &Store,
    bad: &BadLines,
    peer: SocketAddr,
    text: &[u8],
    batch: &mut [Point],
    now: i64,
    deferred: bool,
) {
    if batch.is_empty() {
        return;
    }
    let rejected = match deferred {
        true => finish_lines(bad, peer, text, batch),
        false => 0,
    };
    // Counted once cached: whoever sees the count can query the points.
    store.cache_batch(text, batch, now);
    store
        .stats
        .points_received
        .fetch_add(batch.len() as u64 - rejected, Relaxed);
}

/// A busy connection's parsed read on its way to the [`Cacher`] and back: the bytes read
/// (the points' paths point into them), the points, and when they were received.
struct Job {
    text: Vec<u8>,
    end: usize,
    batch: Vec<Point>,
    /// Indexes of the points whose series the connection had not sent before.
    unknown: Vec<u32>,
    /// Some points are deferred ([`finish_lines`] reads them before caching).
    deferred: bool,
    /// The sender, named in the log of its bad lines.
    peer: SocketAddr,
    now: i64,
}

impl Job {
    /// Read the deferred points and cache the batch.
    fn cache(&mut self, store: &Store, bad: &BadLines) {
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
struct Cacher {
    jobs: std::sync::mpsc::Sender<(Job, tokio::sync::oneshot::Sender<Job>)>,
    /// Connections whose last read was busy.
    busy: Arc<AtomicUsize>,
    cores: usize,
}

impl Cacher {
    /// Start the thread; `None` if it cannot be started (connections then cache their
    /// reads themselves). It ends when the last clone is dropped.
    fn start(store: Arc<Store>, bad: Arc<BadLines>) -> Option<Cacher> {
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
struct Busy<'a> {
    cacher: Option<&'a Cacher>,
    now: bool,
}

impl Busy<'_> {
    /// Note whether the last read was busy; returns the cacher if this read should go there.
    fn read(&mut self, points: usize) -> Option<&Cacher> {
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
/// (two with the cacher, the next) fit in [`super::HARD_CACHE_SLACK`]. Back to [`READ_BUF`]
/// once its reads are small again.
const BULK_READ_BUF: usize = 256 * 1024;

/// Reads of fewer points are cached by their connection (not worth a hand-off to the
/// [`Cacher`]).
const CACHER_MIN_POINTS: usize = 1024;

/// A spare batch allocation larger than this (entries) is not kept between reads.
const MAX_SPARE: usize = 16 * 1024;

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

/// Most reads of one connection with the [`Cacher`] at once: the cacher has the next one
/// queued when it finishes one, and the connection parses on.
const IN_CACHER: usize = 2;

/// A connection's reads with the [`Cacher`], oldest first, and the buffers of those it got
/// back.
#[derive(Default)]
struct InCacher {
    jobs: std::collections::VecDeque<tokio::sync::oneshot::Receiver<Job>>,
    spare_bufs: Vec<Vec<u8>>,
}

impl InCacher {
    /// Wait until the oldest read is cached and take its results in.
    async fn finish_one(&mut self, receiver: &mut Receiver<'_>) {
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
    async fn finish_all(&mut self, receiver: &mut Receiver<'_>) {
        while !self.jobs.is_empty() {
            self.finish_one(receiver).await;
        }
    }
}

async fn udp_loop(
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

async fn flusher(
    store: Arc<Store>,
    every: Duration,
    report: watch::Sender<FlushReport>,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = tick.tick() => {}
            // A listener found the cache full: flush now rather than at the next tick.
            _ = store.flush_wanted.notified() => tick.reset(),
        }
        match store.flush().await {
            Ok(r) => {
                let _ = report.send(r);
            }
            Err(e) => {
                tracing::error!("store flush failed, points stay cached and are retried: {e}");
                // Wake paused listeners so they look again (and keep waiting if still full),
                // and let a second pass before retrying: paused listeners ask for a flush
                // every 50 ms, which must not become a retry loop on a full disk.
                store.room.notify_waiters();
                tokio::select! {
                    _ = stop.changed() => break,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
}

/// How often the schema files are reread, as carbon does.
pub const SCHEMA_RELOAD_INTERVAL: Duration = Duration::from_secs(60);

/// Reread the schema files every [`SCHEMA_RELOAD_INTERVAL`]; new series get the new rules. A
/// file that no longer parses is logged (naming the line) and the rules in use are kept.
async fn reload_schemas(
    store: Arc<Store>,
    schemas: Option<PathBuf>,
    aggregation: Option<PathBuf>,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(SCHEMA_RELOAD_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = tick.tick() => {}
        }
        match Schemas::load(schemas.as_deref(), aggregation.as_deref()) {
            Ok(s) => store.set_schemas(s),
            Err(e) => tracing::warn!("schema files not reloaded, keeping the rules in use: {e}"),
        }
    }
}

/// Write `carbide.store.*` every `every`. Counters are running totals since start (graph
/// them with `nonNegativeDerivative`), so two reports landing in one slot cannot lose counts.
async fn self_metrics(
    store: Arc<Store>,
    bad: Arc<BadLines>,
    conns: Arc<Connections>,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = tick.tick() => {}
        }
        let now = unix_now();
        let s = &store.stats;
        let mut pts: Vec<(String, f64)> = vec![
            (
                "points_received".into(),
                s.points_received.load(Relaxed) as f64,
            ),
            (
                "points_dropped_retention".into(),
                s.points_dropped_retention.load(Relaxed) as f64,
            ),
            (
                "points_dropped_cache_full".into(),
                s.points_dropped_cache_full.load(Relaxed) as f64,
            ),
            (
                "points_flushed".into(),
                s.points_flushed.load(Relaxed) as f64,
            ),
            ("flushes".into(), s.flushes.load(Relaxed) as f64),
            ("flush_errors".into(), s.flush_errors.load(Relaxed) as f64),
            (
                "backpressure_pauses".into(),
                s.backpressure_pauses.load(Relaxed) as f64,
            ),
            ("cache_points".into(), s.cache_points.load(Relaxed) as f64),
            ("series".into(), store.series_count() as f64),
            (
                "flush_seconds".into(),
                s.last_flush_micros.load(Relaxed) as f64 / 1e6,
            ),
            ("bad_lines.total".into(), bad.total() as f64),
            ("connections.open".into(), conns.open.load(Relaxed) as f64),
            (
                "connections.refused".into(),
                conns.refused.load(Relaxed) as f64,
            ),
            (
                "connections.idle_closed".into(),
                conns.idle_closed.load(Relaxed) as f64,
            ),
        ];
        for (i, kind) in BAD_LINE_KINDS.iter().enumerate() {
            pts.push((
                format!("bad_lines.{kind}"),
                bad.counts[i].load(Relaxed) as f64,
            ));
        }
        for (name, v) in &pts {
            store.store_point(&format!("carbide.store.{name}"), *v, now, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::schema::Schemas;
    use proptest::prelude::*;
    use std::collections::HashMap;

    /// Parse `text` in reads cut at `cuts` (bytes per read, cycled) through `rx`, caching
    /// each read; returns the points as `(path, value bits, timestamp)`, paths of points
    /// cached by reference named through `names` (filled from the points cached by path),
    /// and how many lines were matched by their bytes. With `defer`, values of matched
    /// lines are read by [`finish_lines`], as on the cacher thread.
    fn receive(
        rx: &mut Receiver<'_>,
        names: &mut HashMap<SeriesRef, String>,
        text: &[u8],
        cuts: &[usize],
        defer: bool,
    ) -> (Vec<(String, u64, i64)>, usize) {
        // As a listener: each read appends to what is left of the last one.
        let (mut got, mut rest, mut filled, mut k) = (Vec::new(), text.to_vec(), 0, 0);
        let mut matched = 0;
        loop {
            filled = rest.len().min(filled + cuts[k % cuts.len()]);
            k += 1;
            let used = rx.parse(&rest[..filled], defer);
            let (mut batch, unknown, deferred) = rx.take_parsed();
            assert!(defer || !deferred);
            let by_bytes: Vec<bool> = batch
                .iter()
                .map(|p| p.deferred || (p.len == 0 && !p.series.is_none()))
                .collect();
            let now = 1_700_000_000;
            cache(
                rx.store,
                rx.bad,
                rx.peer,
                &rest[..used],
                &mut batch,
                now,
                deferred,
            );
            for (p, by_bytes) in batch.iter().zip(by_bytes) {
                if p.series.is_none() && p.len == 0 {
                    continue; // a bad line (deferred, then rejected)
                }
                let path = match names.get(&p.series) {
                    Some(name) if by_bytes => {
                        matched += 1;
                        name.clone()
                    }
                    _ => p.path(&rest[..used]).to_string(),
                };
                if !p.series.is_none() {
                    names.entry(p.series).or_insert(path.clone());
                }
                got.push((path, p.value.to_bits(), p.ts));
            }
            rx.parsed_cached(&rest[..used], batch, unknown);
            rest.drain(..used);
            filled -= used;
            if filled == rest.len() && used == 0 {
                break;
            }
        }
        (got, matched)
    }

    /// What `parse_line` makes of each complete line of `text`.
    fn parsed(text: &[u8]) -> Vec<(String, u64, i64)> {
        let end = text.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
        text[..end]
            .split(|&b| b == b'\n')
            .filter_map(|l| parse_line(l).ok())
            .map(|l| (l.path.to_string(), l.value.to_bits(), l.timestamp))
            .collect()
    }

    fn test_store(rt: &tokio::runtime::Runtime, dir: &std::path::Path) -> Store {
        let schemas =
            Schemas::parse("[all]\npattern = .*\nretentions = 1s:100y\n", "s", "", "a").unwrap();
        rt.block_on(Store::open(dir, schemas, u64::MAX)).unwrap()
    }

    /// A connection that sends its series in the same order every interval is followed
    /// (lines matched by bytes); one that inserts, drops, reorders or respells lines is
    /// resynchronised; every point is what `parse_line` gives, in order.
    #[test]
    fn remembered_lines_parse_as_parse_line_does() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = test_store(&rt, dir.path());
        let bad = BadLines::default();
        let peer = SocketAddr::from(([127, 0, 0, 1], 9));
        let interval = |t: i64, names: &[&str]| -> String {
            names
                .iter()
                .enumerate()
                .map(|(i, n)| format!("{n} {}.5 {t}\n", i as i64 + t))
                .collect()
        };
        let abc = ["a.b", "a.c", "a.d", "x"];
        let names: Vec<String> = (0..200).map(|i| format!("m.s{i}")).collect();
        let many: Vec<&str> = names.iter().map(String::as_str).collect();
        let stride: Vec<&str> = (0..200).map(|i| many[(i * 7) % 200]).collect();
        let cases: &[(&str, String)] = &[
            ("same order", interval(100, &abc) + &interval(110, &abc)),
            (
                "new series inserted",
                interval(120, &["a.b", "a.new", "a.c", "a.d", "x"]),
            ),
            ("series dropped", interval(130, &["a.b", "a.d", "x"])),
            ("reordered", interval(140, &["x", "a.d", "a.c", "a.b"])),
            (
                "other spellings of the rest",
                "a.b 1e3 150\na.c  2 150\na.d 3 150\r\nx nan 150\nx 4 150 5\na.b 5.25 150\n"
                    .to_string(),
            ),
            (
                "prefix of a remembered path",
                "a 1 160\na.b.c 2 160\na.bb 3 160\n".to_string(),
            ),
            (
                "tagged",
                "t;k=v 1 170\nt;k=v 2 171\na.b 3 172\n".to_string(),
            ),
            (
                // Jumps on every line: the memory stops after 32 and pauses.
                "no stable order",
                interval(180, &many) + &interval(190, &stride) + &interval(200, &many),
            ),
        ];
        for defer in [false, true] {
            let mut rx = Receiver::new(&store, &bad, peer);
            let mut names = HashMap::new();
            let mut good = 0;
            for (what, text) in cases {
                for cuts in [&[1 << 20][..], &[7, 13, 64]] {
                    let (got, matched) = receive(&mut rx, &mut names, text.as_bytes(), cuts, defer);
                    let want = parsed(text.as_bytes());
                    good += want.len() as u64;
                    assert_eq!(got, want, "{what}, reads of {cuts:?}, defer {defer}");
                    if *what == "same order" {
                        // Series are remembered once their read is cached: none matched in
                        // the first read, all 8 lines when sent again.
                        assert_eq!(matched, if cuts.len() == 1 { 0 } else { 8 }, "{what}");
                    }
                }
            }
            // Untagged paths only: a.b a.c a.d x a.new a a.b.c a.bb, and the 200.
            assert_eq!(rx.recent.len(), 208);
            // Bad lines (`x nan 150`, `x 4 150 5`) are not counted as received.
            assert_eq!(store.stats.points_received.swap(0, Relaxed), good);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn same_bytes_is_slice_equality(a in prop::collection::vec(0u8..4, 0..40), flip in 0usize..48) {
            let mut b = a.clone();
            if let Some(x) = b.get_mut(flip) {
                *x ^= 1;
            }
            prop_assert_eq!(same_bytes(&a, &b), a == b);
            prop_assert!(same_bytes(&a, &a));
            prop_assert!(!same_bytes(&a, &a[..a.len().saturating_sub(1)]) || a.is_empty());
        }

        #[test]
        fn receiver_agrees_with_parse_line(
            lines in prop::collection::vec(
                (
                    prop::sample::select(vec!["a.b", "a.b.c", "a", "c.d", "t;k=v", "a..b"]),
                    "[ \t]{1,2}",
                    "-?[0-9]{0,22}[.]?[0-9]{0,20}|[-+0-9.eEnaif]{1,8}",
                    "[ \t]{1,2}",
                    "[0-9]{0,13}[.]?[0-9]{0,2}",
                    "[\r\n ]{0,2}\n",
                ),
                0..40,
            ),
            cuts in prop::collection::vec(1usize..300, 1..4),
        ) {
            let text: String = lines
                .iter()
                .map(|(p, s1, v, s2, t, end)| format!("{p}{s1}{v}{s2}{t}{end}"))
                .collect();
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let dir = tempfile::tempdir().unwrap();
            let store = test_store(&rt, dir.path());
            let bad = BadLines::default();
            for defer in [false, true] {
                let mut rx = Receiver::new(&store, &bad, SocketAddr::from(([127, 0, 0, 1], 9)));
                let mut names = HashMap::new();
                // Twice: the second time the series are remembered.
                for _ in 0..2 {
                    let (got, _) = receive(&mut rx, &mut names, text.as_bytes(), &cuts, defer);
                    let want = parsed(text.as_bytes());
                    prop_assert_eq!(store.stats.points_received.swap(0, Relaxed), want.len() as u64);
                    prop_assert_eq!(got, want);
                }
            }
        }
    }
}
