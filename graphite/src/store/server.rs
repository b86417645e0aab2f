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

/// Configuration of `carbide serve`'s store and carbon listeners. Decoded from YAML with
/// unknown fields rejected; every field has a default, durations are human strings (`5s`).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Carbon plaintext TCP listener (default `127.0.0.1:2003`); `null` disables it.
    #[serde(default = "default_carbon_listen")]
    pub tcp_listen: Option<SocketAddr>,
    /// Carbon plaintext UDP listener (default `127.0.0.1:2003`); `null` disables it.
    #[serde(default = "default_carbon_listen")]
    pub udp_listen: Option<SocketAddr>,
    /// Directory holding `carbide.db` (created if missing; default `data`).
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// carbon's `storage-schemas.conf`, read as carbon reads it; absent: carbide's defaults
    /// (`10s:1d,1m:30d,10m:1y`).
    #[serde(default)]
    pub schemas: Option<PathBuf>,
    /// carbon's `storage-aggregation.conf`; absent: average with xFilesFactor 0.5.
    #[serde(default)]
    pub aggregation: Option<PathBuf>,
    /// How often cached points are written to SQLite (default `5s`): the crash-loss bound.
    #[serde(default = "default_flush_interval", with = "humantime_serde")]
    pub flush_interval: Duration,
    /// How often `carbide.store.*` self-metrics are written (default `10s`); `0s` disables them.
    #[serde(default = "default_self_metrics_interval", with = "humantime_serde")]
    pub self_metrics_interval: Duration,
    /// Cached (unflushed) points at which the listeners stop reading from their sockets until
    /// a flush makes room (back-pressure; default 20 M, ~24 bytes each). Points beyond
    /// `max_cache_points + max(max_cache_points / 4, 65536)` are dropped and counted: the hard
    /// memory bound.
    #[serde(default = "default_max_cache_points")]
    pub max_cache_points: u64,
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

/// The allocation of a connection's batch, kept (empty) from one read to the next.
type Spare = Vec<(u64, &'static str, f64, i64)>;

/// Handle the complete lines in `buf`, returning how many bytes were consumed. The whole
/// buffer is parsed first, then cached as one batch (each shard locked once).
fn handle_lines(
    buf: &[u8],
    store: &Store,
    bad: &BadLines,
    peer: SocketAddr,
    now: i64,
    spare: &mut Spare,
) -> usize {
    // `&'static str` is a subtype of this buffer's `&str`: the spare allocation is reused.
    let mut batch: Vec<(u64, &str, f64, i64)> = std::mem::take(spare);
    batch.reserve(buf.len() / 32);
    let mut consumed = 0;
    for nl in memchr::memchr_iter(b'\n', buf) {
        parse_into(&buf[consumed..nl], store, bad, peer, &mut batch);
        consumed = nl + 1;
    }
    cache(store, &batch, now);
    if batch.capacity() > MAX_SPARE {
        return consumed;
    }
    batch.clear();
    // Back to `'static` (empty, so the map never runs; collected in place, same allocation).
    *spare = batch
        .into_iter()
        .map(|(h, _, v, t)| (h, "", v, t))
        .collect();
    consumed
}

/// Parse one line into `batch`; a bad line is counted and logged, a blank one skipped.
fn parse_into<'a>(
    line: &'a [u8],
    store: &Store,
    bad: &BadLines,
    peer: SocketAddr,
    batch: &mut Vec<(u64, &'a str, f64, i64)>,
) {
    match parse_line(line) {
        Ok(l) => batch.push((store.hash_path(l.path), l.path, l.value, l.timestamp)),
        Err(e) => {
            if !line.iter().all(u8::is_ascii_whitespace) {
                bad.emit(e.kind(), peer, &e);
            }
        }
    }
}

fn cache(store: &Store, batch: &[(u64, &str, f64, i64)], now: i64) {
    if batch.is_empty() {
        return;
    }
    // Counted once cached: whoever sees the count can query the points.
    store.cache_batch(batch, now);
    store
        .stats
        .points_received
        .fetch_add(batch.len() as u64, Relaxed);
}

fn handle_line(line: &[u8], store: &Store, bad: &BadLines, peer: SocketAddr, now: i64) {
    let mut batch = Vec::with_capacity(1);
    parse_into(line, store, bad, peer, &mut batch);
    cache(store, &batch, now);
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
/// wake-ups and longer runs per shard. At most ~43k points, so one connection's read fits in
/// [`super::HARD_CACHE_SLACK`]. Back to [`READ_BUF`] once its reads are small again.
const BULK_READ_BUF: usize = 256 * 1024;

/// A spare batch allocation larger than this (entries) is not kept between reads.
const MAX_SPARE: usize = 16 * 1024;

async fn tcp_conn(
    mut sock: TcpStream,
    peer: SocketAddr,
    store: Arc<Store>,
    bad: Arc<BadLines>,
    mut stop: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; READ_BUF];
    let mut spare = Spare::new();
    let mut filled = 0;
    let mut bulk = false;
    // Inside an over-long line: drop bytes until the next newline.
    let mut discarding = false;
    loop {
        if !wait_for_room(&store, peer, &mut stop).await {
            break;
        }
        let n = tokio::select! {
            _ = stop.changed() => break,
            r = sock.read(&mut buf[filled..]) => match r {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
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
        let used = handle_lines(&buf[..filled], &store, &bad, peer, now, &mut spare);
        buf.copy_within(used..filled, 0);
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
            buf.truncate(READ_BUF);
            buf.shrink_to_fit();
            spare = Spare::new();
            bulk = false;
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
    let mut spare = Spare::new();
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
        let used = handle_lines(d, &store, &bad, peer, now, &mut spare);
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

    #[test]
    fn config_decodes_with_defaults_and_human_durations() {
        let c: ServerConfig = serde_json::from_str(
            r#"{"tcp_listen": "127.0.0.1:12003", "udp_listen": null, "data_dir": "/var/lib/carbide",
                "flush_interval": "2s", "self_metrics_interval": "1m", "max_cache_points": 1000}"#,
        )
        .unwrap();
        assert_eq!(c.tcp_listen, Some("127.0.0.1:12003".parse().unwrap()));
        assert_eq!(c.udp_listen, None);
        assert_eq!(c.flush_interval, Duration::from_secs(2));
        assert_eq!(c.self_metrics_interval, Duration::from_secs(60));
        assert_eq!((c.max_cache_points, c.schemas.clone()), (1000, None));
        let d: ServerConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(d, ServerConfig::default());
        assert_eq!(d.tcp_listen, Some("127.0.0.1:2003".parse().unwrap()));
        let e = serde_json::from_str::<ServerConfig>(r#"{"flush_intervall": "5s"}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `flush_intervall`"), "{e}");
        let e = serde_json::from_str::<ServerConfig>(r#"{"flush_interval": "5 parsecs"}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"5 parsecs\", expected a duration"), "{e}");
    }
}
