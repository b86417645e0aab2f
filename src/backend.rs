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
}
