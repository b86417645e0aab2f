//! The carbon plaintext listeners (TCP and UDP), the periodic flusher and the self-metrics.
//!
//! Lines are parsed by [`crate::protocol::parse_line`] — the one copy of the line rules. A bad
//! line is counted per [`LineError::kind`](crate::protocol::LineError::kind), logged at most once
//! per 10 s (with how many were suppressed) and skipped; the connection stays open. Blank lines
//! are skipped silently. A line longer than [`MAX_LINE_LEN`](crate::protocol::MAX_LINE_LEN) is
//! discarded up to its newline without being buffered, so no client can make a connection hold
//! more than one read buffer.
//!
//! - `config`: [`ServerConfig`], what the store and its listeners are configured with.
//! - `bad_lines`: [`BadLines`], the counters and rate-limited log of rejected lines.
//! - `receiver`: [`Receiver`], bytes read → a batch of points → the store's cache.
//! - `cacher`: the thread busy connections hand their parsed reads to.
//! - `sockets`: the TCP accept and connection loops and the UDP loop (caps, idle timeout,
//!   back-pressure).
//! - `tasks`: the flusher, the schema files' reload, the `carbide.store.*` self-metrics.

mod bad_lines;
mod cacher;
mod config;
mod receiver;
mod sockets;
mod tasks;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::watch;
use tokio::task::JoinSet;

pub use bad_lines::{BadLines, BAD_LINE_KINDS};
pub use config::ServerConfig;
pub use receiver::Receiver;
pub use sockets::Connections;
pub use tasks::SCHEMA_RELOAD_INTERVAL;

use super::schema::{SchemaError, Schemas};
use super::{FlushReport, Store, StoreError};
use sockets::{tcp_accept, udp_loop, Limits};
use tasks::{flusher, reload_schemas, self_metrics};

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
