//! What the store and its carbon listeners are configured with.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

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
