//! The listeners' background tasks: the periodic flusher, the schema files' reload and the
//! `carbide.store.*` self-metrics.

use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::bad_lines::{BadLines, BAD_LINE_KINDS};
use super::sockets::Connections;
use crate::store::schema::Schemas;
use crate::store::{unix_now, FlushReport, Store};

pub(super) async fn flusher(
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
pub(super) async fn reload_schemas(
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
pub(super) async fn self_metrics(
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
