//! graphite-web 1.1.10's tag API (`webapp/graphite/tags/views.py`) over the store's tag
//! index ([`crate::tags::TagIndex`]), what Grafana's Graphite datasource calls for tag
//! queries. Answers are graphite-web's JSON (`json.dumps`: `", "` / `": "` separators,
//! `ensure_ascii`); errors are `{"error": "..."}` with 400 (graphite-web's `HttpError` and
//! `ValueError`s), wrong methods 405.
//!
//! | endpoint | methods | parameters | answer |
//! |---|---|---|---|
//! | `/tags` | GET | `filter` (regex, anchored at the start), `limit` | `[{"id", "tag"}]` sorted by tag |
//! | `/tags/<tag>` | GET | `filter`, `limit` | `{"id", "tag", "values": [{"id", "value", "count"}]}` or `null` |
//! | `/tags/findSeries` | GET, POST | `expr` (repeated, or `expr[]`) | sorted series paths |
//! | `/tags/autoComplete/tags` | GET, POST | `expr`, `tagPrefix`, `limit` (default 100) | sorted tag names |
//! | `/tags/autoComplete/values` | GET, POST | `expr`, `tag` (required), `valuePrefix`, `limit` | sorted values |
//! | `/tags/tagSeries`, `/tags/tagMultiSeries`, `/tags/delSeries` | POST | | 400: the index follows the stored series |

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;

use super::http::{json_response, refused, Limits, Params};
use super::output::Py;
use super::work::Pool;
use crate::store::Store;
use crate::tags::{TagError, TagIndex};

/// What the tag handlers share: the store, the pool their work runs in, the limits.
pub struct TagState {
    store: Arc<Store>,
    pool: Pool,
    limits: Limits,
}

/// The `/tags` routes (merged into [`super::router`], under its authentication); their
/// work runs in `pool`, and no answer lists more than `max_find_results` items.
pub fn routes<S: Clone + Send + Sync + 'static>(
    store: Arc<Store>,
    pool: Pool,
    limits: Limits,
) -> Router<S> {
    Router::new()
        .route("/tags", any(tag_list))
        .route("/tags/", any(tag_list))
        .route("/tags/findSeries", any(find_series))
        .route("/tags/autoComplete/tags", any(auto_complete_tags))
        .route("/tags/autoComplete/values", any(auto_complete_values))
        // As graphite-web's cluster front end asks a `CLUSTER_SERVERS` URL ending in `/`.
        .route("//tags/autoComplete/tags", any(auto_complete_tags))
        .route("//tags/autoComplete/values", any(auto_complete_values))
        .route("/tags/tagSeries", any(not_supported))
        .route("/tags/tagMultiSeries", any(not_supported))
        .route("/tags/delSeries", any(not_supported))
        .route("/tags/{*tag}", any(tag_details))
        .with_state(Arc::new(TagState {
            store,
            pool,
            limits,
        }))
}

/// Why a request was refused: status and graphite-web's `{"error": ...}` message.
struct TagApiError(StatusCode, String);

impl From<TagError> for TagApiError {
    fn from(e: TagError) -> Self {
        TagApiError(StatusCode::BAD_REQUEST, e.to_string())
    }
}

type Answer = Result<Py, TagApiError>;

/// The items an answer lists (a list, or a tag's values).
fn items(v: &Py) -> usize {
    match v {
        Py::List(l) => l.len(),
        Py::Dict(d) => d
            .iter()
            .find(|(k, _)| k == "values")
            .map_or(0, |(_, v)| items(v)),
        _ => 0,
    }
}

/// Parses the request, runs `f` in the pool, and writes its answer (or error) as
/// graphite-web does.
async fn respond(
    st: &TagState,
    method: &Method,
    allowed: &[Method],
    query: Option<&str>,
    headers: &HeaderMap,
    body: Bytes,
    f: impl FnOnce(&Params, &Store) -> Answer + Send + 'static,
) -> Response {
    if !allowed.contains(method) {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    // graphite-web reads the form body only for POST: urlencoded, or multipart/form-data as
    // its cluster front end sends autocomplete requests under `REMOTE_STORE_USE_POST`.
    let body = if *method == Method::POST {
        body
    } else {
        Bytes::new()
    };
    let p = match Params::collect_multipart(query, headers, body).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let callback = p
        .get("jsonp")
        .filter(|cb| valid_callback(cb))
        .map(str::to_string);
    let store = st.store.clone();
    let max = st.limits.max_find_results;
    let answer = st
        .pool
        .run(move |_| {
            let v = f(&p, &store)?;
            let n = items(&v);
            if n > max {
                return Err(TagApiError(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "the answer lists {n} items, more than the limit of {max} \
                         (the limit is max_find_results); pass a narrower filter or a limit"
                    ),
                ));
            }
            Ok(v.dumps())
        })
        .await
        .unwrap_or_else(|r| {
            let (status, message) = refused(r, &st.limits);
            Err(TagApiError(status, message))
        });
    match answer {
        Ok(v) => json_response(v, callback.as_deref()),
        Err(TagApiError(status, message)) => {
            let body = Py::Dict(vec![("error".into(), Py::Str(message))]).dumps();
            let mut r = json_response(body, callback.as_deref());
            *r.status_mut() = status;
            r
        }
    }
}

/// A JavaScript identifier path (anything else is ignored rather than echoed).
fn valid_callback(cb: &str) -> bool {
    !cb.is_empty()
        && cb.len() <= 128
        && cb
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'$')
}

fn bad(message: &str) -> TagApiError {
    TagApiError(StatusCode::BAD_REQUEST, message.to_string())
}

/// `limit` as graphite-web reads it (`int(limit)`; absent or empty: no limit).
fn limit(p: &Params) -> Result<Option<usize>, TagApiError> {
    match p.get("limit").filter(|l| !l.is_empty()) {
        None => Ok(None),
        Some(l) => l
            .trim()
            .parse::<i64>()
            .map(|n| Some(n.max(0) as usize))
            .map_err(|_| {
                bad(&format!(
                    "invalid literal for int() with base 10: '{l}' (limit must be an integer)"
                ))
            }),
    }
}

/// `expr` (repeated), or the `expr[]` form when there is no `expr`.
fn exprs(p: &Params) -> Vec<String> {
    let plain: Vec<String> = p.all("expr").map(str::to_string).collect();
    if !plain.is_empty() {
        return plain;
    }
    p.all("expr[]").map(str::to_string).collect()
}

fn strings(v: Vec<String>) -> Py {
    Py::List(v.into_iter().map(Py::Str).collect())
}

fn tag_info(ix: &TagIndex, filter: Option<&str>, limit: Option<usize>) -> Answer {
    Ok(Py::List(
        ix.list_tags(filter, limit)?
            .into_iter()
            .map(|t| {
                Py::Dict(vec![
                    ("id".into(), Py::Int(t.id.into())),
                    ("tag".into(), Py::Str(t.tag)),
                ])
            })
            .collect(),
    ))
}

async fn tag_list(
    State(st): State<Arc<TagState>>,
    method: Method,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let get = [Method::GET];
    respond(
        &st,
        &method,
        &get,
        q.as_deref(),
        &headers,
        body,
        |p, store| {
            let limit = limit(p)?;
            tag_info(&store.tag_index(), p.get("filter"), limit)
        },
    )
    .await
}

async fn tag_details(
    State(st): State<Arc<TagState>>,
    Path(tag): Path<String>,
    method: Method,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let get = [Method::GET];
    respond(
        &st,
        &method,
        &get,
        q.as_deref(),
        &headers,
        body,
        move |p, store| {
            let limit = limit(p)?;
            let ix = store.tag_index();
            let Some(id) = ix.tag_id(&tag) else {
                // graphite-web's `get_tag` returns None.
                return Ok(Py::Null);
            };
            let values = ix
                .list_values(&tag, p.get("filter"), limit)?
                .into_iter()
                .map(|v| {
                    Py::Dict(vec![
                        ("id".into(), Py::Int(v.id.into())),
                        ("value".into(), Py::Str(v.value)),
                        ("count".into(), Py::Int(v.count as i64)),
                    ])
                })
                .collect();
            Ok(Py::Dict(vec![
                ("id".into(), Py::Int(id.into())),
                ("tag".into(), Py::Str(tag.clone())),
                ("values".into(), Py::List(values)),
            ]))
        },
    )
    .await
}

async fn find_series(
    State(st): State<Arc<TagState>>,
    method: Method,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let allowed = [Method::GET, Method::POST];
    respond(
        &st,
        &method,
        &allowed,
        q.as_deref(),
        &headers,
        body,
        |p, store| {
            let exprs = exprs(p);
            if exprs.is_empty() {
                return Err(bad("no tag expressions specified"));
            }
            Ok(strings(store.find_tagged(&exprs)?))
        },
    )
    .await
}

async fn auto_complete_tags(
    State(st): State<Arc<TagState>>,
    method: Method,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let allowed = [Method::GET, Method::POST];
    respond(
        &st,
        &method,
        &allowed,
        q.as_deref(),
        &headers,
        body,
        |p, store| {
            let limit = limit(p)?;
            let exprs = exprs(p);
            let prefix = p.get("tagPrefix");
            Ok(strings(
                store
                    .tag_index()
                    .auto_complete_tags(&exprs, prefix, limit)?,
            ))
        },
    )
    .await
}

async fn auto_complete_values(
    State(st): State<Arc<TagState>>,
    method: Method,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let allowed = [Method::GET, Method::POST];
    respond(
        &st,
        &method,
        &allowed,
        q.as_deref(),
        &headers,
        body,
        |p, store| {
            let limit = limit(p)?;
            let exprs = exprs(p);
            let Some(tag) = p.get("tag").filter(|t| !t.is_empty()) else {
                return Err(bad("no tag specified"));
            };
            let prefix = p.get("valuePrefix");
            Ok(strings(
                store
                    .tag_index()
                    .auto_complete_values(&exprs, tag, prefix, limit)?,
            ))
        },
    )
    .await
}

async fn not_supported(method: Method) -> Response {
    if method != Method::POST {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    let body = Py::Dict(vec![(
        "error".into(),
        Py::Str(
            "carbide's tag index follows the stored series: send points for the tagged name \
             to the carbon port instead of tagging or deleting series through the API"
                .into(),
        ),
    )])
    .dumps();
    let mut r = json_response(body, None);
    *r.status_mut() = StatusCode::BAD_REQUEST;
    r
}
