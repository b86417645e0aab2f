//! graphite-web 1.1's events API (`webapp/graphite/events/views.py`) over the store's
//! `events` table ([`crate::store::events`]): what Grafana's Graphite annotations read and
//! deploy scripts post.
//!
//! | endpoint | method | answer |
//! |---|---|---|
//! | `/events/` | POST JSON `{what, tags, data, when}` (tags a list or a space-separated string; `when` epoch seconds, default now) | 200, empty |
//! | `/events/get_data` | GET: `from`/`until` (attime; default everything up to now), `tags` (space-separated, all must match; `set=union`: any), `jsonp` | `[{"when", "what", "data", "tags", "id"}]` ordered by time |
//! | `/events/` | GET | an HTML table of the events (as graphite-web) |
//! | `/events/<id>/` | GET with `Accept: application/json` | `{"id", "when" (ISO 8601), "what", "data", "tags"}`; otherwise HTML |
//! | `/events/<id>/` | DELETE (carbide's; graphite-web deletes in its admin pages) | 204, or 404 |
//!
//! Errors are `{"error": "..."}`: 400 for a bad event or parameter, 404 for an unknown id.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;

use super::http::{json_response, refused, Limits, Params};
use super::output::Py;
use super::work::Pool;
use crate::attime::{parse_time, TimeZone};
use crate::store::events::{Event, EventError, TagSet, MAX_EVENTS};
use crate::store::{unix_now, Store};

/// Longest `what` (graphite-web's column is 255 characters).
pub const MAX_WHAT_CHARS: usize = 255;

struct EventState {
    store: Arc<Store>,
    pool: Pool,
    limits: Limits,
}

/// The `/events` routes (merged into [`super::router`], under its authentication).
pub fn routes<S: Clone + Send + Sync + 'static>(
    store: Arc<Store>,
    pool: Pool,
    limits: Limits,
) -> Router<S> {
    Router::new()
        .route("/events", any(root))
        .route("/events/", any(root))
        .route("/events/get_data", any(get_data))
        .route("/events/get_data/", any(get_data))
        .route("/events/{id}", any(one))
        .route("/events/{id}/", any(one))
        .with_state(Arc::new(EventState {
            store,
            pool,
            limits,
        }))
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let body = Py::Dict(vec![("error".into(), Py::Str(message.into()))]).dumps();
    let mut r = json_response(body, None);
    *r.status_mut() = status;
    r
}

fn event_error(e: EventError, limits: &Limits) -> Response {
    match e {
        EventError::TooMany(n) => error(
            StatusCode::BAD_REQUEST,
            format!(
                "more than {n} events match (the limit is max_find_results); ask for a \
                 shorter from/until range or more tags"
            ),
        ),
        EventError::Full => error(
            StatusCode::BAD_REQUEST,
            format!("the store holds {MAX_EVENTS} events, its limit; delete old ones first"),
        ),
        EventError::Stopped => {
            let (s, m) = super::http::stopped(super::work::Stop::Deadline, limits);
            error(s, m)
        }
        EventError::Store(e) => {
            tracing::error!("events: {e}");
            error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
        }
    }
}

/// Runs `f` (store work) in the pool under the request's deadline.
async fn run(
    st: &EventState,
    f: impl FnOnce(&super::work::Cancel, &tokio::runtime::Handle, &Store) -> Response + Send + 'static,
) -> Response {
    let handle = tokio::runtime::Handle::current();
    let store = st.store.clone();
    match st.pool.run(move |cancel| f(cancel, &handle, &store)).await {
        Ok(r) => r,
        Err(r) => {
            let (s, m) = refused(r, &st.limits);
            error(s, m)
        }
    }
}

async fn root(State(st): State<Arc<EventState>>, method: Method, body: Bytes) -> Response {
    match method {
        Method::POST => post(&st, &body).await,
        Method::GET | Method::HEAD => {
            let limit = st.limits.max_find_results;
            let limits = st.limits.clone();
            run(&st, move |cancel, handle, store| {
                let stop = || cancel.stopped().is_some();
                let until = unix_now() as f64;
                match handle.block_on(store.events(0.0, until, None, TagSet::All, limit, &stop)) {
                    Ok(events) => html_list(&events),
                    Err(e) => event_error(e, &limits),
                }
            })
            .await
        }
        _ => StatusCode::METHOD_NOT_ALLOWED.into_response(),
    }
}

/// A posted event, checked.
struct NewEvent {
    when: f64,
    what: String,
    data: String,
    tags: String,
}

fn parse_event(body: &[u8], now: f64) -> Result<NewEvent, String> {
    let v: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| format!("the body must be a JSON object {{what, tags, data, when}}: {e}"))?;
    let obj = v
        .as_object()
        .ok_or("the body must be a JSON object {what, tags, data, when}")?;
    let what = match obj.get("what") {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Null) | None => return Err("\"what\" is required".into()),
        Some(other) => other.to_string(),
    };
    if what.chars().count() > MAX_WHAT_CHARS {
        return Err(format!(
            "\"what\" is longer than {MAX_WHAT_CHARS} characters"
        ));
    }
    let tags = match obj.get("tags") {
        None | Some(serde_json::Value::Null) => String::new(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Array(items)) => {
            let mut parts = Vec::with_capacity(items.len());
            for t in items {
                match t {
                    serde_json::Value::String(s) => parts.push(s.as_str()),
                    _ => return Err("\"tags\" must be an array or space-separated string".into()),
                }
            }
            parts.join(" ")
        }
        Some(_) => return Err("\"tags\" must be an array or space-separated string".into()),
    };
    let data = match obj.get("data") {
        None | Some(serde_json::Value::Null) => String::new(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    let when = match obj.get("when") {
        None => now,
        Some(w) => {
            let secs = match w {
                serde_json::Value::Number(n) => n.as_f64(),
                serde_json::Value::String(s) => s.trim().parse::<f64>().ok(),
                _ => None,
            };
            match secs {
                Some(s) if s.is_finite() && s.abs() < 1e11 => s,
                _ => return Err("\"when\" must be epoch seconds".into()),
            }
        }
    };
    Ok(NewEvent {
        when,
        what,
        data,
        tags,
    })
}

async fn post(st: &EventState, body: &[u8]) -> Response {
    let now = crate::store::clock::system_now().as_secs_f64();
    let e = match parse_event(body, now) {
        Ok(e) => e,
        Err(m) => return error(StatusCode::BAD_REQUEST, m),
    };
    let limits = st.limits.clone();
    run(st, move |_, handle, store| {
        match handle.block_on(store.add_event(e.when, &e.what, &e.data, &e.tags)) {
            Ok(_) => StatusCode::OK.into_response(),
            Err(err) => event_error(err, &limits),
        }
    })
    .await
}

fn event_json(e: &Event) -> Py {
    Py::Dict(vec![
        ("when".into(), Py::Int(e.when.floor() as i64)),
        ("what".into(), Py::Str(e.what.clone())),
        ("data".into(), Py::Str(e.data.clone())),
        (
            "tags".into(),
            Py::List(
                e.tag_list()
                    .into_iter()
                    .map(|t| Py::Str(t.into()))
                    .collect(),
            ),
        ),
        ("id".into(), Py::Int(e.id)),
    ])
}

/// graphite-web's `get_data` answer for `events`.
pub fn get_data_json(events: &[Event]) -> String {
    Py::List(events.iter().map(event_json).collect()).dumps()
}

async fn get_data(
    State(st): State<Arc<EventState>>,
    method: Method,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !matches!(method, Method::GET | Method::HEAD | Method::POST) {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    let body = if method == Method::POST {
        &body[..]
    } else {
        &[]
    };
    let p = Params::collect(q.as_deref(), &headers, body);
    let now = unix_now();
    let tz = TimeZone::utc();
    let time = |key: &str, default: i64| -> Result<f64, String> {
        match p.get(key) {
            None => Ok(default as f64),
            Some(v) => parse_time(v, now, &tz)
                .map(|t| t as f64)
                .map_err(|e| format!("{key}: {e}")),
        }
    };
    let (from, until) = match (time("from", 0), time("until", now)) {
        (Ok(f), Ok(u)) => (f, u),
        (Err(m), _) | (_, Err(m)) => return error(StatusCode::BAD_REQUEST, m),
    };
    let tags: Option<Vec<String>> = p.get("tags").map(|t| {
        t.split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    });
    let set = match p.get("set") {
        Some("union") => TagSet::Any,
        _ => TagSet::All,
    };
    let callback = match p.get("jsonp") {
        None => None,
        Some(cb) if super::http::valid_jsonp(cb) => Some(cb.to_string()),
        Some(_) => return error(
            StatusCode::BAD_REQUEST,
            "jsonp must be a JavaScript function name (letters, digits, _ . $; at most 128 bytes)",
        ),
    };
    let limit = st.limits.max_find_results;
    let limits = st.limits.clone();
    run(&st, move |cancel, handle, store| {
        let stop = || cancel.stopped().is_some();
        match handle.block_on(store.events(from, until, tags.as_deref(), set, limit, &stop)) {
            Ok(events) => json_response(get_data_json(&events), callback.as_deref()),
            Err(e) => event_error(e, &limits),
        }
    })
    .await
}

async fn one(
    State(st): State<Arc<EventState>>,
    method: Method,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Ok(id) = id.parse::<i64>() else {
        return error(StatusCode::NOT_FOUND, "Event matching query does not exist");
    };
    let json = headers
        .get(header::ACCEPT)
        .is_some_and(|a| a.as_bytes() == b"application/json");
    let limits = st.limits.clone();
    match method {
        Method::GET | Method::HEAD => {
            run(&st, move |_, handle, store| {
                match handle.block_on(store.event(id)) {
                    Ok(Some(e)) if json => {
                        let when = iso_when(e.when);
                        let body = Py::Dict(vec![
                            ("id".into(), Py::Int(e.id)),
                            ("when".into(), Py::Str(when)),
                            ("what".into(), Py::Str(e.what.clone())),
                            ("data".into(), Py::Str(e.data.clone())),
                            (
                                "tags".into(),
                                Py::List(
                                    e.tag_list()
                                        .into_iter()
                                        .map(|t| Py::Str(t.into()))
                                        .collect(),
                                ),
                            ),
                        ]);
                        json_response(body.dumps(), None)
                    }
                    Ok(Some(e)) => html_list(std::slice::from_ref(&e)),
                    Ok(None) => error(StatusCode::NOT_FOUND, "Event matching query does not exist"),
                    Err(e) => event_error(e, &limits),
                }
            })
            .await
        }
        Method::DELETE => {
            run(&st, move |_, handle, store| {
                match handle.block_on(store.delete_event(id)) {
                    Ok(true) => StatusCode::NO_CONTENT.into_response(),
                    Ok(false) => {
                        error(StatusCode::NOT_FOUND, "Event matching query does not exist")
                    }
                    Err(e) => event_error(e, &limits),
                }
            })
            .await
        }
        _ => StatusCode::METHOD_NOT_ALLOWED.into_response(),
    }
}

/// Django's JSON for a UTC datetime: ISO 8601, milliseconds when there are any, `Z`.
fn iso_when(when: f64) -> String {
    let secs = when.floor() as i64;
    let micros = ((when - when.floor()) * 1e6).round() as i64;
    let base = jiff::Timestamp::from_second(secs)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S").to_string())
        .unwrap_or_default();
    if micros > 0 {
        format!("{base}.{:03}Z", micros.min(999_999) / 1000)
    } else {
        format!("{base}Z")
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// graphite-web's events page: when, what (linked), tags.
fn html_list(events: &[Event]) -> Response {
    let mut h = String::from(
        "<html><head><title>Events</title></head><body><h1>graphite events</h1>\n\
         <table><tr><th>when</th><th>what</th><th>tags</th></tr>\n",
    );
    for e in events {
        let when = jiff::Timestamp::from_second(e.when.floor() as i64)
            .map(|t| t.strftime("%H:%M:%S %a %d %b %Y").to_string())
            .unwrap_or_default();
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td><a href=\"/events/{}\">{}</a></td><td>{}</td></tr>",
            when,
            e.id,
            html_escape(&e.what),
            html_escape(&e.tag_list().join(" "))
        );
    }
    h.push_str("</table></body></html>\n");
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], h).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn posted_events_are_read_as_graphite_web_reads_them() {
        let e = parse_event(
            br#"{"what":"deploy","tags":["b","a"],"data":"v1","when":1700000100.7}"#,
            5.0,
        )
        .unwrap();
        assert_eq!(
            (e.when, e.what.as_str(), e.tags.as_str(), e.data.as_str()),
            (1700000100.7, "deploy", "b a", "v1")
        );
        let e = parse_event(br#"{"what":"x","tags":"web  prod"}"#, 5.0).unwrap();
        assert_eq!((e.when, e.tags.as_str()), (5.0, "web  prod"));
        assert_eq!(iso_when(1700000100.7), "2023-11-14T22:15:00.700Z");
        assert_eq!(iso_when(1700000000.0), "2023-11-14T22:13:20Z");
        for bad in [
            &br#"{"what":"x","tags":5}"#[..],
            br#"{"tags":"a"}"#,
            br#"[1]"#,
            br#"{"what":"x","when":"soon"}"#,
            br#"{"what":"x","tags":[1]}"#,
            b"not json",
        ] {
            assert!(
                parse_event(bad, 0.0).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let ev = Event {
            id: 1,
            when: 1700000000.0,
            what: "deploy".into(),
            data: "v1".into(),
            tags: "b a  a".into(),
        };
        assert_eq!(
            get_data_json(&[ev]),
            r#"[{"when": 1700000000, "what": "deploy", "data": "v1", "tags": ["b", "a", "a"], "id": 1}]"#
        );
    }
}
