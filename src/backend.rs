//! The alerter's [`Backend`] over the embedded store, in process: the same parse → evaluate →
//! `format=json` path as the HTTP API's `/render`, without HTTP.

use std::sync::Arc;

use alerter::pipeline::evaluate::{Backend, FetchError};
use async_trait::async_trait;
use graphite::attime::{parse_time, TimeZone};
use graphite::budget::Budget;
use graphite::render::RenderedSeries;
use graphite::server::output::json_series;
use graphite::server::{Limits, StoreSource};
use graphite::store::{unix_now, Store};

/// Renders alert targets straight from the store, under the HTTP API's per-request limits
/// (points, names, regexes, `render_timeout`) but not in its pool: whatever render requests
/// do, the alerter's evaluations never wait for a render slot.
pub struct StoreBackend {
    store: Arc<Store>,
    limits: Limits,
}

impl StoreBackend {
    pub fn new(store: Arc<Store>, limits: Limits) -> Self {
        Self { store, limits }
    }
}

#[async_trait]
impl Backend for StoreBackend {
    async fn fetch(
        &self,
        target: &str,
        from: &str,
        until: Option<&str>,
    ) -> Result<Vec<RenderedSeries>, FetchError> {
        let err = |m: String| FetchError(format!("target {target}: {m}"));
        let expr = graphite::expr::parse(target).map_err(|e| err(e.to_string()))?;
        let now = unix_now();
        let tz = TimeZone::utc();
        let f = parse_time(from, now, &tz).map_err(|e| err(e.to_string()))?;
        let u = parse_time(until.unwrap_or("now"), now, &tz).map_err(|e| err(e.to_string()))?;
        let (f, u) = graphite::eval::request_window(f, u).map_err(|e| err(e.to_string()))?;
        let store = self.store.clone();
        let l = self.limits.clone();
        let handle = tokio::runtime::Handle::current();
        let series = tokio::task::spawn_blocking(move || {
            let src = StoreSource::new(store, handle, now, l.max_points_per_request);
            let budget = Budget::new()
                .with_max_points(l.max_points_per_request)
                .with_max_name_bytes(l.max_name_bytes_per_request)
                .with_max_regexes(l.max_regexes_per_request)
                .with_timeout(l.render_timeout);
            graphite::eval::render_with(&[expr], f, u, now, &src, &budget)
        })
        .await
        .map_err(|e| err(e.to_string()))?
        .map_err(|e| err(e.to_string()))?;
        Ok(json_series(&series, None, false))
    }

    /// Drawn in process, as `/render?format=png` draws it, under the same limits.
    async fn picture(
        &self,
        targets: &[String],
        from: i64,
        until: i64,
        (width, height): (u32, u32),
    ) -> Result<Vec<u8>, FetchError> {
        let err = |m: String| FetchError(format!("picture of {targets:?}: {m}"));
        let exprs = targets
            .iter()
            .map(|t| graphite::expr::parse(t).map_err(|e| err(e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        let (f, u) = graphite::eval::request_window(from, until).map_err(|e| err(e.to_string()))?;
        let (w, h) = (width.to_string(), height.to_string());
        let graph = graphite::picture::GraphParams::parse(
            |k| match k {
                "width" => Some(w.as_str()),
                "height" => Some(h.as_str()),
                _ => None,
            },
            self.limits.picture,
        )
        .map_err(|e| err(e.to_string()))?;
        let store = self.store.clone();
        let l = self.limits.clone();
        let handle = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            let now = unix_now();
            let deadline = std::time::Instant::now() + l.render_timeout;
            let src = StoreSource::new(store, handle, now, l.max_points_per_request);
            let budget = Budget::new()
                .with_max_points(l.max_points_per_request)
                .with_max_name_bytes(l.max_name_bytes_per_request)
                .with_max_regexes(l.max_regexes_per_request)
                .with_timeout(l.render_timeout);
            let series = graphite::eval::render_with(&exprs, f, u, now, &src, &budget)
                .map_err(|e| e.to_string())?;
            let stop = || std::time::Instant::now() > deadline;
            graphite::picture::render(
                series,
                &graph,
                &TimeZone::utc(),
                graphite::picture::Format::Png,
                &stop,
            )
            .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| err(e.to_string()))?
        .map_err(err)
    }
}
