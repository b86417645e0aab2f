//! Fetching: the [`Backend`] trait, the render-API backend, and one round of fetches for
//! every alert — concurrent, at most `concurrency` in flight, each with its own timeout, the
//! starts spread over part of the interval so a thousand alerts do not hit the render server
//! in the same millisecond. Then each alert's answer becomes per-series [`Observation`]s
//! (`exclude`, `reduce`, first definition wins, vanished series, fetch errors).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use graphite::render::client::ClientOptions;
use graphite::render::{RenderClient, RenderedSeries};
use tokio::sync::Semaphore;

use super::state::{Observation, SeriesState};
use crate::config::{Alert, GraphiteSettings};

/// Why a fetch failed (already names the target; never holds credentials).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FetchError(pub String);

/// Where series come from: a render API now, the in-process store later.
#[async_trait]
pub trait Backend: Send + Sync {
    /// The series of `target` between `from` and `until` (Graphite time syntax, as given).
    async fn fetch(
        &self,
        target: &str,
        from: &str,
        until: Option<&str>,
    ) -> Result<Vec<RenderedSeries>, FetchError>;

    /// A PNG of `targets` over `[from, until)` (epoch seconds) at `size` (width, height),
    /// as `/render` draws it: what an email shows inline. A backend that draws none says so.
    async fn picture(
        &self,
        _targets: &[String],
        _from: i64,
        _until: i64,
        _size: (u32, u32),
    ) -> Result<Vec<u8>, FetchError> {
        Err(FetchError("this backend draws no pictures".into()))
    }
}

/// The largest picture a render API may answer for an email (a graph is tens of KiB).
pub const MAX_PICTURE_BYTES: usize = 4 << 20;

/// Any Graphite render API (graphite-web, carbonapi, carbide's server).
#[derive(Debug, Clone)]
pub struct RenderBackend(pub RenderClient);

impl RenderBackend {
    /// From `graphite_url` / `graphite_user` / `graphite_pass`.
    pub fn from_settings(g: &GraphiteSettings, timeout: Duration) -> anyhow::Result<RenderBackend> {
        let Some(url) = &g.url else {
            anyhow::bail!("no graphite_url: set it in alerts.yml or GRAPHITE_URL");
        };
        let client = RenderClient::new(
            url,
            ClientOptions {
                user: g.user.clone(),
                password: g.password.as_ref().map(|p| p.expose().to_string()),
                timeout: Some(timeout),
            },
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(RenderBackend(client))
    }
}

#[async_trait]
impl Backend for RenderBackend {
    async fn fetch(
        &self,
        target: &str,
        from: &str,
        until: Option<&str>,
    ) -> Result<Vec<RenderedSeries>, FetchError> {
        self.0
            .render(target, from, until)
            .await
            .map_err(|e| FetchError(e.to_string()))
    }

    async fn picture(
        &self,
        targets: &[String],
        from: i64,
        until: i64,
        size: (u32, u32),
    ) -> Result<Vec<u8>, FetchError> {
        self.0
            .picture(
                targets,
                &from.to_string(),
                &until.to_string(),
                size,
                MAX_PICTURE_BYTES,
            )
            .await
            .map_err(|e| FetchError(e.to_string()))
    }
}

/// How a round fetches.
#[derive(Debug, Clone, Copy)]
pub struct FetchPlan {
    /// Requests in flight at most.
    pub concurrency: usize,
    /// Per request.
    pub timeout: Duration,
    /// Starts are spread evenly over this span (zero: all at once).
    pub spread: Duration,
}

/// The `from` / `until` of one alert's fetch.
pub type Window = (String, Option<String>);

/// Fetch every alert once. Identical (target, from, until) requests are made once.
pub async fn fetch_round(
    backend: Arc<dyn Backend>,
    alerts: &[Alert],
    windows: Vec<Window>,
    plan: FetchPlan,
) -> Vec<Result<Arc<Vec<RenderedSeries>>, FetchError>> {
    let mut unique: HashMap<(String, String, Option<String>), usize> = HashMap::new();
    let mut requests: Vec<(String, String, Option<String>)> = Vec::new();
    let slot: Vec<usize> = alerts
        .iter()
        .zip(windows)
        .map(|(a, (from, until))| {
            let key = (a.target.clone(), from, until);
            *unique.entry(key.clone()).or_insert_with(|| {
                requests.push(key);
                requests.len() - 1
            })
        })
        .collect();
    let n = requests.len();
    let sem = Arc::new(Semaphore::new(plan.concurrency.max(1)));
    let start = tokio::time::Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for (i, (target, from, until)) in requests.into_iter().enumerate() {
        let backend = backend.clone();
        let sem = sem.clone();
        let offset = if n > 1 {
            plan.spread.mul_f64(i as f64 / n as f64)
        } else {
            Duration::ZERO
        };
        set.spawn(async move {
            tokio::time::sleep_until(start + offset).await;
            let _permit = sem.acquire_owned().await;
            let res = match tokio::time::timeout(
                plan.timeout,
                backend.fetch(&target, &from, until.as_deref()),
            )
            .await
            {
                Ok(r) => r.map(Arc::new),
                Err(_) => Err(FetchError(format!(
                    "render {target:?}: no answer within {}",
                    humantime::format_duration(plan.timeout)
                ))),
            };
            (i, res)
        });
    }
    let mut results: Vec<Option<Result<Arc<Vec<RenderedSeries>>, FetchError>>> = vec![None; n];
    while let Some(done) = set.join_next().await {
        match done {
            Ok((i, r)) => results[i] = Some(r),
            Err(e) => tracing::error!("fetch task failed: {e}"),
        }
    }
    slot.into_iter()
        .map(|i| {
            results[i]
                .clone()
                .unwrap_or_else(|| Err(FetchError("fetch task failed".into())))
        })
        .collect()
}

/// One observation for the state machine: alert index, series, what was seen.
pub type Observed = (usize, String, Observation);

/// Turn a round's answers into observations, in file order. `known` is the saved state
/// (alert name, series); rows of an alert name not returned this round are vanished (or
/// fetch errors when one of that name's fetches failed). An alert that returns nothing and
/// has no known series is observed under its target as the series name.
pub fn observe(
    alerts: &[Alert],
    results: &[Result<Arc<Vec<RenderedSeries>>, FetchError>],
    known: &BTreeMap<(String, String), SeriesState>,
) -> Vec<Observed> {
    let mut out = Vec::new();
    let mut claimed: BTreeSet<(&str, &str)> = BTreeSet::new();
    // Per alert name: the first alert index, whether any fetch failed (and why), whether any
    // real series was claimed.
    let mut names: BTreeMap<&str, (usize, Option<&FetchError>, bool)> = BTreeMap::new();
    for (i, (alert, res)) in alerts.iter().zip(results).enumerate() {
        let entry = names.entry(alert.name.as_str()).or_insert((i, None, false));
        match res {
            Err(e) => {
                entry.1.get_or_insert(e);
            }
            Ok(series) => {
                for s in series.iter() {
                    if alert.exclude.contains(&s.target) {
                        continue;
                    }
                    if !claimed.insert((alert.name.as_str(), s.target.as_str())) {
                        continue; // an earlier definition of this name owns it
                    }
                    entry.2 = true;
                    let obs = match alert
                        .reduce
                        .apply(&s.datapoints.iter().map(|(v, _)| *v).collect::<Vec<_>>())
                    {
                        Some(v) => Observation::Value(v),
                        None => Observation::AllNull,
                    };
                    out.push((i, s.target.clone(), obs));
                }
            }
        }
    }
    let targets: BTreeSet<(&str, &str)> = alerts
        .iter()
        .map(|a| (a.name.as_str(), a.target.as_str()))
        .collect();
    for (name, (first, err, any_real)) in &names {
        let placeholder = alerts[*first].target.as_str();
        let mut known_real = false;
        for ((_, series), _) in known
            .range((name.to_string(), String::new())..)
            .take_while(|((n, _), _)| n == name)
        {
            if claimed.contains(&(*name, series.as_str())) {
                continue;
            }
            let is_placeholder = targets.contains(&(*name, series.as_str()));
            let obs = match (err, is_placeholder, any_real) {
                (_, true, true) => Observation::Present,
                (Some(e), _, _) => Observation::FetchError(e.0.clone()),
                (None, true, false) => Observation::AllNull,
                (None, false, _) => Observation::Vanished,
            };
            known_real |= !is_placeholder;
            out.push((*first, series.clone(), obs));
        }
        let placeholder_known = known.contains_key(&(name.to_string(), placeholder.to_string()));
        if !any_real && !known_real && !placeholder_known {
            let obs = match err {
                Some(e) => Observation::FetchError(e.0.clone()),
                None => Observation::AllNull,
            };
            out.push((*first, placeholder.to_string(), obs));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::path::Path;

    fn alerts(text: &str) -> Vec<Alert> {
        Config::from_str_with_env(Path::new("a.yml"), text, &|_| None)
            .unwrap()
            .alerts
    }

    fn series(name: &str, vals: &[Option<f64>]) -> RenderedSeries {
        RenderedSeries {
            target: name.into(),
            tags: vec![],
            datapoints: vals
                .iter()
                .enumerate()
                .map(|(i, v)| (*v, i as i64))
                .collect(),
        }
    }

    #[test]
    fn exclude_reduce_first_wins_vanished_and_errors() {
        let a = alerts("alerts:\n  - {name: L, target: 'a.*', warning: 1, critical: 2, exclude: [x]}\n  - {name: L, target: 'b.*', warning: 5, critical: 9}\n  - {name: M, target: m, warning: 1, critical: 2}\n");
        let res = vec![
            Ok(Arc::new(vec![
                series("w1", &[Some(1.0), Some(3.0), None]),
                series("x", &[Some(9.0)]),
                series("w2", &[None]),
            ])),
            Ok(Arc::new(vec![
                series("w1", &[Some(7.0)]),
                series("w3", &[Some(7.0)]),
            ])),
            Err(FetchError("down".into())),
        ];
        let mut known = BTreeMap::new();
        known.insert(("L".to_string(), "gone".to_string()), SeriesState::new(0));
        let got = observe(&a, &res, &known);
        assert_eq!(
            got,
            vec![
                (0, "w1".into(), Observation::Value(3.0)),
                (0, "w2".into(), Observation::AllNull),
                (1, "w3".into(), Observation::Value(7.0)),
                (0, "gone".into(), Observation::Vanished),
                (2, "m".into(), Observation::FetchError("down".into())),
            ]
        );
    }

    #[test]
    fn placeholder_series_comes_and_goes() {
        let a = alerts("alerts:\n  - {name: L, target: 'a.*', warning: 1, critical: 2}\n");
        let none: Vec<Result<Arc<Vec<RenderedSeries>>, FetchError>> = vec![Ok(Arc::new(vec![]))];
        assert_eq!(
            observe(&a, &none, &BTreeMap::new()),
            vec![(0, "a.*".into(), Observation::AllNull)]
        );
        let mut known = BTreeMap::new();
        known.insert(("L".to_string(), "a.*".to_string()), SeriesState::new(0));
        assert_eq!(
            observe(&a, &none, &known),
            vec![(0, "a.*".into(), Observation::AllNull)]
        );
        let back = vec![Ok(Arc::new(vec![series("w", &[Some(0.0)])]))];
        assert_eq!(
            observe(&a, &back, &known),
            vec![
                (0, "w".into(), Observation::Value(0.0)),
                (0, "a.*".into(), Observation::Present),
            ]
        );
    }

    #[derive(Default)]
    struct Counting {
        calls: std::sync::Mutex<Vec<String>>,
        in_flight: std::sync::atomic::AtomicUsize,
        max_in_flight: std::sync::atomic::AtomicUsize,
    }

    #[async_trait]
    impl Backend for Counting {
        async fn fetch(
            &self,
            target: &str,
            _: &str,
            _: Option<&str>,
        ) -> Result<Vec<RenderedSeries>, FetchError> {
            use std::sync::atomic::Ordering::SeqCst;
            let now = self.in_flight.fetch_add(1, SeqCst) + 1;
            self.max_in_flight.fetch_max(now, SeqCst);
            self.calls.lock().unwrap().push(target.to_string());
            if target == "hang" {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
            tokio::time::sleep(Duration::from_secs(10)).await;
            self.in_flight.fetch_sub(1, SeqCst);
            Ok(vec![series(target, &[Some(1.0)])])
        }
    }

    #[tokio::test(start_paused = true)]
    async fn round_is_bounded_deduplicated_spread_and_timed_out() {
        let mut text = String::from("alerts:\n");
        for i in 0..20 {
            text.push_str(&format!(
                "  - {{name: A{i}, target: t{}, warning: 1, critical: 2}}\n",
                i % 10
            ));
        }
        text.push_str("  - {name: H, target: hang, warning: 1, critical: 2}\n");
        let a = alerts(&text);
        let backend = Arc::new(Counting::default());
        let windows = a.iter().map(|a| (a.from.clone(), None)).collect();
        let t0 = tokio::time::Instant::now();
        let res = fetch_round(
            backend.clone(),
            &a,
            windows,
            FetchPlan {
                concurrency: 3,
                timeout: Duration::from_secs(10),
                spread: Duration::from_secs(30),
            },
        )
        .await;
        assert_eq!(
            backend.calls.lock().unwrap().len(),
            11,
            "identical requests made once"
        );
        assert_eq!(
            backend
                .max_in_flight
                .load(std::sync::atomic::Ordering::SeqCst),
            3
        );
        assert_eq!(res[3].as_ref().unwrap()[0].target, "t3");
        assert_eq!(res[13].as_ref().unwrap()[0].target, "t3");
        assert!(res[20]
            .as_ref()
            .unwrap_err()
            .0
            .contains("no answer within 10s"));
        // Paused clock: the last start is 10/11 of the spread in (later when the three
        // permits are busy), then it hangs for the timeout; nothing waits an hour.
        let took = t0.elapsed();
        assert!(
            took >= Duration::from_secs(37) && took < Duration::from_secs(60),
            "{took:?}"
        );
    }
}
