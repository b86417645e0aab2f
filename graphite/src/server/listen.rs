//! The HTTP listener: HTTP/1.1 connections served by hyper under the limits of
//! [`HttpConfig`]:
//!
//! - at most `max_connections` open at once; one more is answered `503` and closed at once
//!   (counted in [`ListenerStats::refused`]), so no client can exhaust the process's file
//!   descriptors or stall the accept loop;
//! - a request's headers must arrive within `read_timeout` (slowloris), and an idle
//!   keep-alive connection is closed after it (the body has its own `read_timeout`, in the
//!   router);
//! - on shutdown every connection is asked to finish its request and close; those still open
//!   after [`SHUTDOWN_GRACE`] are dropped (the pool's work is cancelled first, so requests end
//!   quickly).

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use super::HttpConfig;

/// How long a stopping server waits for its connections' last requests.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// What the listener counted.
#[derive(Debug, Default)]
pub struct ListenerStats {
    /// Connections accepted and served.
    pub accepted: AtomicU64,
    /// Connections refused at `max_connections`.
    pub refused: AtomicU64,
}

/// The answer a connection over the cap gets before it is closed.
fn full() -> Vec<u8> {
    let body = "too many open connections (the limit is max_connections); retry later\n";
    format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Connection: close\r\nRetry-After: 1\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Serve `router` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    config: &HttpConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_counted(
        listener,
        router,
        config,
        shutdown,
        Arc::new(ListenerStats::default()),
    )
    .await
}

/// [`serve`], counting into `stats`.
pub async fn serve_counted(
    listener: TcpListener,
    router: Router,
    config: &HttpConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
    stats: Arc<ListenerStats>,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let read_timeout = config.read_timeout;
    let (closing, close_rx) = watch::channel(false);
    let mut conns = JoinSet::new();
    let mut last_refusal_log = None::<std::time::Instant>;
    tokio::pin!(shutdown);
    loop {
        let (sock, peer) = tokio::select! {
            () = &mut shutdown => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors, most likely: wait for connections to close.
                    tracing::warn!("http accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            stats.refused.fetch_add(1, Relaxed);
            if last_refusal_log.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                last_refusal_log = Some(std::time::Instant::now());
                tracing::warn!(
                    %peer,
                    limit = config.max_connections,
                    "http: too many open connections, refusing new ones (max_connections)"
                );
            }
            // Best effort, never waiting: the socket buffer takes these few bytes.
            let _ = sock.try_write(&full());
            continue;
        };
        stats.accepted.fetch_add(1, Relaxed);
        let _ = sock.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let mut close_rx = close_rx.clone();
        conns.spawn(async move {
            let _permit = permit;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(read_timeout);
            let conn = builder.serve_connection(TokioIo::new(sock), service);
            tokio::pin!(conn);
            let r = tokio::select! {
                r = conn.as_mut() => r,
                _ = async { let _ = close_rx.wait_for(|closing| *closing).await; } => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = r {
                tracing::debug!(%peer, "http connection: {e}");
            }
        });
    }
    drop(listener);
    let _ = closing.send(true);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = conns.len(),
            "http: connections still open {SHUTDOWN_GRACE:?} after shutdown began; closing them"
        );
        conns.shutdown().await;
    }
    Ok(())
}

/// Write `carbide.http.*` every `every` until `stop` changes: connections accepted and
/// refused (`max_connections`), and requests refused for want of a slot (`work.busy`),
/// stopped at `render_timeout` (`work.deadline`) and cancelled because their client left
/// (`work.client_gone`). Running totals, as `carbide.store.*`.
pub async fn self_metrics(
    store: Arc<crate::store::Store>,
    stats: Arc<ListenerStats>,
    pool: super::work::Pool,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    if every.is_zero() {
        return;
    }
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = tick.tick() => {}
        }
        let now = crate::store::unix_now();
        let (busy, deadline, gone) = pool.counts();
        let points = [
            ("connections.accepted", stats.accepted.load(Relaxed)),
            ("connections.refused", stats.refused.load(Relaxed)),
            ("work.busy", busy),
            ("work.deadline", deadline),
            ("work.client_gone", gone),
        ];
        for (name, v) in points {
            store.store_point(&format!("carbide.http.{name}"), v as f64, now, now);
        }
    }
}
