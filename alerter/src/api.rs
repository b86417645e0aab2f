//! The HTTP JSON API (axum, default 127.0.0.1:9095):
//! - `GET /api/alerts`: every alert × series with level, since, value, pending level,
//!   level last notified and the silence holding it;
//! - `GET /api/history?limit=N`: the newest level changes (default 100);
//! - `GET /api/silences`: active silences; `POST /api/silences`
//!   `{"alert": GLOB, "series": GLOB, "duration": "2h", "comment": "...", "created_by": "..."}`
//!   → `{"id": N}`; `DELETE /api/silences/{id}` expires one.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::Deserialize;

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
        .with_state(Ctx { snapshot, store })
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
