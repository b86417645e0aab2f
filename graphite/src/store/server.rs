//! The carbon plaintext listeners (TCP and UDP), the periodic flusher and the self-metrics.
//!
//! Lines are parsed by [`crate::protocol::parse_line`] — the one copy of the line rules. A bad
//! line is counted per [`LineError::kind`](crate::protocol::LineError::kind), logged at most once
//! per 10 s (with how many were suppressed) and skipped; the connection stays open. Blank lines
//! are skipped silently. A line longer than [`MAX_LINE_LEN`] is discarded up to its newline
//! without being buffered, so no client can make a connection hold more than one read buffer.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::schema::{SchemaError, Schemas};
use super::{unix_now, FlushReport, Store, StoreError};
use crate::protocol::{parse_line, MAX_LINE_LEN};

/// Kinds of [`crate::protocol::LineError`], in the order of [`BadLines`]'s counters.
pub const BAD_LINE_KINDS: [&str; 7] = [
    "field_count",
    "bad_value",
    "bad_timestamp",
    "bad_path",
    "bad_tag",
    "too_long",
    "not_utf8",
];

/// Bad-line counters, one per kind, plus the rate limit of their log line.
#[derive(Debug, Default)]
pub struct BadLines {
    pub counts: [AtomicU64; 7],
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

/// Configuration of `carbide serve`'s store and listeners.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Carbon plaintext TCP listener; `None` disables it.
    pub tcp_listen: Option<SocketAddr>,
    /// Carbon plaintext UDP listener; `None` disables it.
    pub udp_listen: Option<SocketAddr>,
    /// Directory holding `carbide.db` (created if missing).
    pub data_dir: PathBuf,
    /// carbon `storage-schemas.conf`; `None` for carbide's defaults (10s:1d,1m:30d,10m:1y).
    pub schemas: Option<PathBuf>,
    /// carbon `storage-aggregation.conf`; `None` for average with xFilesFactor 0.5.
    pub aggregation: Option<PathBuf>,
    /// How often cached points are written to SQLite: the crash-loss bound.
    pub flush_interval: Duration,
    /// How often `carbide.store.*` self-metrics are written; zero disables them.
    pub self_metrics_interval: Duration,
    /// Cached (unflushed) points beyond which new points are dropped and counted.
    pub max_cache_points: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        let carbon: SocketAddr = ([127, 0, 0, 1], 2003).into();
        ServerConfig {
            tcp_listen: Some(carbon),
            udp_listen: Some(carbon),
            data_dir: PathBuf::from("data"),
            schemas: None,
            aggregation: None,
            flush_interval: Duration::from_secs(5),
            self_metrics_interval: Duration::from_secs(10),
            max_cache_points: 20_000_000,
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
        if !config.self_metrics_interval.is_zero() {
            tasks.spawn(self_metrics(
                store.clone(),
                bad_lines.clone(),
                config.self_metrics_interval,
                stop_rx,
            ));
        }
        Ok(Server {
            store,
            bad_lines,
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

async fn tcp_accept(
    l: TcpListener,
    store: Arc<Store>,
    bad: Arc<BadLines>,
    mut stop: watch::Receiver<bool>,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            r = l.accept() => match r {
                Ok((sock, peer)) => {
                    conns.spawn(tcp_conn(sock, peer, store.clone(), bad.clone(), stop.clone()));
                }
                Err(e) => {
                    tracing::warn!("carbon listener accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    // Connections see the stop signal too; wait so their last lines are in the cache.
    while conns.join_next().await.is_some() {}
}

/// Handle the complete lines in `buf`, returning how many bytes were consumed.
fn handle_lines(buf: &[u8], store: &Store, bad: &BadLines, peer: SocketAddr, now: i64) -> usize {
    let mut consumed = 0;
    let (mut received, mut kept) = (0, 0);
    while let Some(nl) = buf[consumed..].iter().position(|&b| b == b'\n') {
        if let Some(k) = parse_one(&buf[consumed..consumed + nl], store, bad, peer, now) {
            received += 1;
            kept += k as u64;
        }
        consumed += nl + 1;
    }
    store.stats.points_received.fetch_add(received, Relaxed);
    store.stats.cache_points.fetch_add(kept, Relaxed);
    consumed
}

/// `Some(kept)` for a good line, `None` for a blank or bad one.
fn parse_one(
    line: &[u8],
    store: &Store,
    bad: &BadLines,
    peer: SocketAddr,
    now: i64,
) -> Option<bool> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    match parse_line(line) {
        Ok(l) => Some(store.cache_point(l.path, l.value, l.timestamp, now)),
        Err(e) => {
            bad.emit(e.kind(), peer, &e);
            None
        }
    }
}

fn handle_line(line: &[u8], store: &Store, bad: &BadLines, peer: SocketAddr, now: i64) {
    if let Some(kept) = parse_one(line, store, bad, peer, now) {
        store.stats.points_received.fetch_add(1, Relaxed);
        store.stats.cache_points.fetch_add(kept as u64, Relaxed);
    }
}

const READ_BUF: usize = 64 * 1024;

async fn tcp_conn(
    mut sock: TcpStream,
    peer: SocketAddr,
    store: Arc<Store>,
    bad: Arc<BadLines>,
    mut stop: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; READ_BUF];
    let mut filled = 0;
    // Inside an over-long line: drop bytes until the next newline.
    let mut discarding = false;
    loop {
        let n = tokio::select! {
            _ = stop.changed() => break,
            r = sock.read(&mut buf[filled..]) => match r {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            },
        };
        let now = unix_now();
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
        let used = handle_lines(&buf[..filled], &store, &bad, peer, now);
        buf.copy_within(used..filled, 0);
        filled -= used;
        if filled > MAX_LINE_LEN + 2 || filled == buf.len() {
            bad.emit("too_long", peer, &"line longer than the limit, discarded");
            filled = 0;
            discarding = true;
        }
    }
    // The last line may lack its newline (carbon accepts it on close).
    if !discarding && filled > 0 {
        handle_line(&buf[..filled], &store, &bad, peer, unix_now());
    }
}

async fn udp_loop(
    sock: UdpSocket,
    store: Arc<Store>,
    bad: Arc<BadLines>,
    mut stop: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; READ_BUF];
    loop {
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
        let used = handle_lines(d, &store, &bad, peer, now);
        if used < n {
            handle_line(&d[used..], &store, &bad, peer, now);
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
            _ = tick.tick() => match store.flush().await {
                Ok(r) => { let _ = report.send(r); }
                Err(e) => tracing::error!("store flush failed, points stay cached and are retried: {e}"),
            },
        }
    }
}

/// Write `carbide.store.*` every `every`. Counters are running totals since start (graph
/// them with `nonNegativeDerivative`), so two reports landing in one slot cannot lose counts.
async fn self_metrics(
    store: Arc<Store>,
    bad: Arc<BadLines>,
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
            ("cache_points".into(), s.cache_points.load(Relaxed) as f64),
            ("series".into(), store.series_count() as f64),
            (
                "flush_seconds".into(),
                s.last_flush_micros.load(Relaxed) as f64 / 1e6,
            ),
            ("bad_lines.total".into(), bad.total() as f64),
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
