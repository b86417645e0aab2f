//! A real Graphite render API on 127.0.0.1 for a few series whose points the test changes
//! between cycles: `GET /render?target=…&from=…&until=…&format=json` answers graphite-web's
//! JSON (encoded by `graphite::render::to_json`). Targets: a path glob, or
//! `aliasByNode(glob, n, …)`. `from`/`until` given as epochs filter the points to
//! `(from, until]`; relative times return every point. A target listed in `fail` gets a 500.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use graphite::expr::ast::Expr;
use graphite::glob::GlobPattern;
use graphite::render::{to_json, RenderedSeries};

#[derive(Default)]
pub struct Data {
    /// path → points `(timestamp, value)`.
    pub series: BTreeMap<String, Vec<(i64, Option<f64>)>>,
    /// Targets answered with HTTP 500.
    pub fail: Vec<String>,
    /// Every request: (target, from, until).
    pub requests: Vec<(String, String, Option<String>)>,
}

#[derive(Clone)]
pub struct RenderServer {
    pub addr: std::net::SocketAddr,
    pub data: Arc<Mutex<Data>>,
}

impl RenderServer {
    pub async fn start() -> RenderServer {
        let data = Arc::new(Mutex::new(Data::default()));
        let d = data.clone();
        let app = axum::Router::new().route(
            "/render",
            axum::routing::get(move |Query(q): Query<BTreeMap<String, String>>| {
                let d = d.clone();
                async move {
                    let target = q.get("target").cloned().unwrap_or_default();
                    let mut data = d.lock().unwrap();
                    data.requests.push((
                        target.clone(),
                        q.get("from").cloned().unwrap_or_default(),
                        q.get("until").cloned(),
                    ));
                    if data.fail.contains(&target) {
                        return (StatusCode::INTERNAL_SERVER_ERROR, "boom".to_string())
                            .into_response();
                    }
                    let range = (
                        q.get("from").and_then(|f| f.parse::<i64>().ok()),
                        q.get("until").and_then(|u| u.parse::<i64>().ok()),
                    );
                    match render(&data.series, &target, range) {
                        Ok(s) => (StatusCode::OK, to_json(&s)).into_response(),
                        Err(e) => (StatusCode::BAD_REQUEST, format!("Invalid parameters ({e})"))
                            .into_response(),
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        RenderServer { addr, data }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Replace `path`'s points with one point.
    pub fn set(&self, path: &str, value: Option<f64>) {
        self.data
            .lock()
            .unwrap()
            .series
            .insert(path.to_string(), vec![(1_700_000_000, value)]);
    }

    pub fn set_points(&self, path: &str, points: Vec<(i64, Option<f64>)>) {
        self.data
            .lock()
            .unwrap()
            .series
            .insert(path.to_string(), points);
    }

    pub fn remove(&self, path: &str) {
        self.data.lock().unwrap().series.remove(path);
    }

    pub fn requests(&self) -> usize {
        self.data.lock().unwrap().requests.len()
    }
}

fn render(
    data: &BTreeMap<String, Vec<(i64, Option<f64>)>>,
    target: &str,
    (from, until): (Option<i64>, Option<i64>),
) -> Result<Vec<RenderedSeries>, String> {
    let expr = graphite::expr::parse::parse(target).map_err(|e| e.message().to_string())?;
    let (glob, node) = match &expr {
        Expr::Path(p) => (p.clone(), None),
        Expr::Call(c) if c.name == "aliasByNode" => match (c.args.first(), c.args.get(1)) {
            (Some(Expr::Path(p)), Some(Expr::Int(n))) => (p.clone(), Some(*n as usize)),
            _ => return Err("aliasByNode(path, n) only".into()),
        },
        _ => return Err(format!("unknown function in {target}")),
    };
    let g = GlobPattern::new(&glob).map_err(|e| e.to_string())?;
    Ok(data
        .iter()
        .filter(|(path, _)| g.matches(path))
        .map(|(path, pts)| RenderedSeries {
            target: match node {
                Some(n) => path.split('.').nth(n).unwrap_or("").to_string(),
                None => path.clone(),
            },
            tags: vec![("name".into(), path.clone())],
            datapoints: pts
                .iter()
                .filter(|(t, _)| from.is_none_or(|f| *t > f) && until.is_none_or(|u| *t <= u))
                .map(|(t, v)| (*v, *t))
                .collect(),
        })
        .collect())
}
