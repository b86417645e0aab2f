//! The HTTP JSON API (axum, default 127.0.0.1:9095):
//! - `GET /api/alerts`: every alert × series with level, since, value, pending level,
//!   level last notified and the silence holding it;
//! - `GET /api/history?limit=N`: the newest level changes (default 100);
//! - `GET /api/silences`: active silences; `POST /api/silences`
//!   `{"alert": GLOB, "series": GLOB, "duration": "2h", "comment": "...", "created_by": "..."}`
//!   → `{"id": N}`; `DELETE /api/silences/{id}` expires one;
//! - `GET /api/outbox?limit=N`: notification counts by status and the newest notifications
//!   (default 100) with their status, attempts and last error.
//!
//! `alerter run` serves the web console's alert pages (`console::router`) on the same port,
//! everything behind `api_auth` when it is set ([`protect`]: carbide's HTTP API's model, basic
//! and/or bearer); `carbide up` also serves these routes on its HTTP API's port, behind that
//! API's auth ([`Mount`]).

use std::sync::{Arc, OnceLock};

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, delete, get};
use axum::{Json, Router};
use serde::Deserialize;

use base64::Engine as _;
use conf::Secret;

use crate::clock::unix_now;
use crate::pipeline::engine::Snapshot;
use crate::pipeline::state::Store;

#[derive(Clone)]
struct Ctx {
    snapshot: Snapshot,
    store: Store,
}

/// The router.
pub fn router(snapshot: Snapshot, store: Store) -> Router {
    Router::new()
        .route("/api/alerts", get(alerts))
        .route("/api/history", get(history))
        .route("/api/silences", get(silences).post(add_silence))
        .route("/api/silences/{id}", delete(expire_silence))
        .route("/api/outbox", get(outbox))
        .with_state(Ctx { snapshot, store })
}

/// The credentials the API's port requires (`api_auth:`), as carbide's HTTP API's `auth:`:
/// with neither set every request is served; with both, either is accepted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ApiAuth {
    /// HTTP basic credentials `(user, password)`.
    pub basic: Option<(String, Secret)>,
    /// A bearer token (`Authorization: Bearer <token>`).
    pub bearer: Option<Secret>,
}

impl ApiAuth {
    pub fn enabled(&self) -> bool {
        self.basic.is_some() || self.bearer.is_some()
    }

    /// The `Authorization` header a client sends: basic when configured, else bearer.
    pub fn header(&self) -> Option<String> {
        match (&self.basic, &self.bearer) {
            (Some((u, p)), _) => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{}", p.expose()))
            )),
            (None, Some(t)) => Some(format!("Bearer {}", t.expose())),
            (None, None) => None,
        }
    }

    /// Accepted `Authorization` header values.
    fn accepted(&self) -> Vec<Vec<u8>> {
        let mut v = Vec::new();
        if let Some((u, p)) = &self.basic {
            let enc =
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{}", p.expose()));
            v.push(format!("Basic {enc}").into_bytes());
        }
        if let Some(t) = &self.bearer {
            v.push(format!("Bearer {}", t.expose()).into_bytes());
        }
        v
    }
}

/// `router` behind `auth` (unchanged when none is configured): a request without an accepted
/// `Authorization` header gets 401 with `WWW-Authenticate: Basic`, so a browser asks once.
pub fn protect(router: Router, auth: &ApiAuth) -> Router {
    if !auth.enabled() {
        return router;
    }
    let accepted = Arc::new(auth.accepted());
    router.layer(middleware::from_fn(move |req: Request, next: Next| {
        let accepted = accepted.clone();
        async move {
            let ok = req
                .headers()
                .get(header::AUTHORIZATION)
                .is_some_and(|h| accepted.iter().any(|a| ct_eq(a, h.as_bytes())));
            if ok {
                return next.run(req).await;
            }
            let mut resp = fail(
                StatusCode::UNAUTHORIZED,
                "authentication required: send the api_auth basic credentials or bearer token",
            );
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"carbide alerter\""),
            );
            resp
        }
    }))
}

/// Equal in time independent of where they differ.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The API's routes for another server to answer (`carbide up`'s HTTP API) once the alerter
/// has started: [`Mount::routes`] forwards `/api/*` to the router [`run_with`] sets, and
/// answers 503 until then.
///
/// [`run_with`]: crate::daemon::run_with
#[derive(Clone, Default)]
pub struct Mount(Arc<OnceLock<Router>>);

impl Mount {
    /// `/api/*` on the mounting server.
    pub fn routes(&self) -> Router {
        let slot = self.0.clone();
        Router::new().route(
            "/api/{*rest}",
            any(move |req: Request| {
                let slot = slot.clone();
                async move {
                    match slot.get() {
                        Some(r) => {
                            use tower::ServiceExt as _;
                            match r.clone().oneshot(req).await {
                                Ok(resp) => resp,
                                Err(never) => match never {},
                            }
                        }
                        None => fail(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "the alerter is starting (it waits for the agent's first cycle); retry in a moment",
                        ),
                    }
                }
            }),
        )
    }

    /// Set once by the alerter when it starts; later calls (a restart) are ignored.
    pub(crate) fn set(&self, router: Router) {
        let _ = self.0.set(router);
    }
}

fn fail(status: StatusCode, e: impl std::fmt::Display) -> Response {
    (status, Json(serde_json::json!({ "error": e.to_string() }))).into_response()
}

async fn alerts(State(c): State<Ctx>) -> Response {
    match c.snapshot.read() {
        Ok(s) => Json(s.clone()).into_response(),
        Err(_) => fail(StatusCode::INTERNAL_SERVER_ERROR, "state lock poisoned"),
    }
}

#[derive(Deserialize)]
struct HistoryQuery {
    limit: Option<i64>,
}

async fn history(State(c): State<Ctx>, Query(q): Query<HistoryQuery>) -> Response {
    match c
        .store
        .history(q.limit.unwrap_or(100).clamp(1, 10_000))
        .await
    {
        Ok(h) => Json(h).into_response(),
        Err(e) => fail(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

/// One outbox row as `GET /api/outbox` shows it (the payload's alert, series and level; never
/// the payload itself).
#[derive(serde::Serialize)]
struct OutboxRow {
    id: i64,
    notifier: String,
    alert: Option<String>,
    series: Option<String>,
    level: Option<String>,
    status: String,
    attempts: i64,
    /// unix ms.
    created_at: i64,
    next_attempt_at: i64,
    done_at: Option<i64>,
    last_error: Option<String>,
}

async fn outbox(State(c): State<Ctx>, Query(q): Query<HistoryQuery>) -> Response {
    use sqlx::Row as _;
    let limit = q.limit.unwrap_or(100).clamp(1, 10_000);
    let pool = c.store.pool();
    let counts = sqlx::query(
        "SELECT status, attempts > 0, COUNT(*) FROM outbox GROUP BY status, attempts > 0",
    )
    .fetch_all(pool)
    .await;
    let rows = sqlx::query(
        "SELECT id, notifier, json_extract(payload, '$.notification.alert'), \
         json_extract(payload, '$.notification.series'), \
         json_extract(payload, '$.notification.level'), status, attempts, created_at, \
         next_attempt_at, done_at, last_error FROM outbox ORDER BY id DESC LIMIT ?",
    )
    .bind(limit)
    .fetch_all(pool)
    .await;
    let (counts, rows) = match (counts, rows) {
        (Ok(c), Ok(r)) => (c, r),
        (Err(e), _) | (_, Err(e)) => return fail(StatusCode::INTERNAL_SERVER_ERROR, e),
    };
    let mut by = serde_json::json!({"pending": 0, "retrying": 0, "delivered": 0, "failed": 0});
    for r in counts {
        let status: String = r.get(0);
        let retried: bool = r.get(1);
        let n: i64 = r.get(2);
        let key = match status.as_str() {
            "pending" if retried => "retrying",
            s => s,
        };
        if let Some(v) = by.get_mut(key) {
            *v = serde_json::json!(v.as_i64().unwrap_or(0) + n);
        }
    }
    let list: Vec<OutboxRow> = rows
        .iter()
        .map(|r| OutboxRow {
            id: r.get(0),
            notifier: r.get(1),
            alert: r.try_get(2).ok(),
            series: r.try_get(3).ok(),
            level: r.try_get(4).ok(),
            status: r.get(5),
            attempts: r.get(6),
            created_at: r.get(7),
            next_attempt_at: r.get(8),
            done_at: r.get(9),
            last_error: r.get(10),
        })
        .collect();
    Json(serde_json::json!({ "counts": by, "notifications": list })).into_response()
}

async fn silences(State(c): State<Ctx>) -> Response {
    match c.store.active_silences(unix_now()).await {
        Ok(s) => Json(s).into_response(),
        Err(e) => fail(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

/// `POST /api/silences` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewSilence {
    /// Alert-name glob (default `*`).
    #[serde(default = "star")]
    alert: String,
    /// Series glob (default `*`).
    #[serde(default = "star")]
    series: String,
    /// How long, e.g. `2h`.
    duration: String,
    /// Why.
    #[serde(default)]
    comment: String,
    /// Who.
    #[serde(default)]
    created_by: String,
}

fn star() -> String {
    "*".into()
}

async fn add_silence(
    State(c): State<Ctx>,
    body: Result<Json<NewSilence>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(s) = match body {
        Ok(b) => b,
        Err(e) => return fail(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let d = match humantime::parse_duration(&s.duration) {
        Ok(d) => d,
        Err(e) => {
            return fail(
                StatusCode::BAD_REQUEST,
                format!("duration {:?}: {e} (e.g. 2h, 30m)", s.duration),
            )
        }
    };
    let now = unix_now();
    let until = now.saturating_add(i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    match c
        .store
        .add_silence(&s.alert, &s.series, &s.comment, &s.created_by, now, until)
        .await
    {
        Ok(id) => (
            StatusCode::CREATED,
            Json(serde_json::json!({ "id": id, "expires_at": until })),
        )
            .into_response(),
        Err(e) => fail(StatusCode::BAD_REQUEST, e),
    }
}

async fn expire_silence(State(c): State<Ctx>, Path(id): Path<i64>) -> Response {
    match c.store.expire_silence(id, unix_now()).await {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => fail(StatusCode::NOT_FOUND, format!("no active silence {id}")),
        Err(e) => fail(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

/// Serve until `shutdown` turns true.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            let _ = shutdown.wait_for(|s| *s).await;
        })
        .await
}
