//! The axum router: `/render`, `/metrics/find`, `/metrics/expand`, `/metrics/index.json`,
//! `/functions`, `/functions/<name>`, `/version`.
//!
//! Parameters come from the query string and, for POST, from an
//! `application/x-www-form-urlencoded` body (both merged, as graphite-web's
//! `request.GET.copy().update(request.POST)`); `target` and `query` may repeat. Errors are
//! `text/plain` with graphite-web's status codes: 400 and a message for a bad request (bad
//! target, bad time, over a limit or budget), 401 without valid credentials, 408/413 for a
//! body too slow/too large, 503 when every render slot stayed busy or the server is stopping,
//! 504 when the request's work ran past `render_timeout`, 500 when the store fails. Every
//! request's work runs in [`super::work`]'s pool (docs/limits.md).
//! No credential is ever logged or echoed.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Path, RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::Engine as _;

use super::carbonapi::{self, Wire};
use super::output;
use super::remote;
use super::source::StoreSource;
use super::work::{Cancel, Pool, PoolConfig, Refused, Stop};
use crate::attime::{parse_time, TimeZone};
use crate::budget::Budget;
use crate::eval::{self, EvalError};
use crate::expr::ast::Expr;
use crate::expr::parse_with_vars;
use crate::functions;
use crate::glob::GlobPattern;
use crate::picture::{self, params::PictureLimits, GraphParams, PictureError};
use crate::series::Series;
use crate::store::{unix_now, Store};

/// The graphite-web version reported by `/version` (Grafana picks its dialect from it).
pub const GRAPHITE_WEB_VERSION: &str = "1.1.10";

/// Limits against hostile or mistaken requests; each refusal is a 400 naming the limit.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Targets in one `/render` request.
    pub max_targets: usize,
    /// Points one render may hold while it is evaluated: read from the store (all targets,
    /// all fetch rounds) and every point created or copied on the way
    /// ([`Budget`](crate::budget::Budget)).
    pub max_points_per_request: u64,
    /// Bytes of series names (with path expressions and tags) one render may hold.
    pub max_name_bytes_per_request: u64,
    /// Regular expressions one render may compile.
    pub max_regexes_per_request: u64,
    /// Request body size in bytes (POSTed forms).
    pub max_body_bytes: usize,
    /// Nodes one `/metrics/find` or `/metrics/expand` may return; also the most series
    /// `/metrics/index.json` and the `/tags` endpoints answer with.
    pub max_find_results: usize,
    /// Longest run of one request's work (render, encoding, find, tags); then it is stopped
    /// and answered 504.
    pub render_timeout: Duration,
    /// Longest wait for a free render slot; then 503 with `Retry-After`.
    pub render_queue_timeout: Duration,
    /// Requests whose work runs at once (renders, find, tags; default two per core).
    pub max_concurrent_renders: usize,
    /// Size of one `format=png`/`svg` picture (8192 px a side, 4 Mi pixels).
    pub picture: PictureLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_targets: 200,
            max_points_per_request: crate::budget::DEFAULT_MAX_POINTS,
            max_name_bytes_per_request: crate::budget::DEFAULT_MAX_NAME_BYTES,
            max_regexes_per_request: crate::budget::DEFAULT_MAX_REGEXES,
            max_body_bytes: 1 << 20,
            max_find_results: 200_000,
            render_timeout: crate::budget::DEFAULT_TIMEOUT,
            render_queue_timeout: Duration::from_secs(10),
            max_concurrent_renders: std::thread::available_parallelism().map_or(2, |n| 2 * n.get()),
            picture: PictureLimits::default(),
        }
    }
}

/// Optional authentication: with neither set, every request is served. With both, either
/// is accepted.
#[derive(Clone, Default)]
pub struct Auth {
    /// HTTP basic credentials `(user, password)`.
    pub basic: Option<(String, String)>,
    /// A bearer token (`Authorization: Bearer <token>`).
    pub bearer: Option<String>,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field(
                "basic",
                &self.basic.as_ref().map(|(u, _)| (u, "<redacted>")),
            )
            .field("bearer", &self.bearer.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Auth {
    fn enabled(&self) -> bool {
        self.basic.is_some() || self.bearer.is_some()
    }

    /// Accepted `Authorization` header values.
    fn accepted(&self) -> Vec<Vec<u8>> {
        let mut v = Vec::new();
        if let Some((u, p)) = &self.basic {
            let enc = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
            v.push(format!("Basic {enc}").into_bytes());
        }
        if let Some(t) = &self.bearer {
            v.push(format!("Bearer {t}").into_bytes());
        }
        v
    }
}

/// The HTTP server's configuration.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Where to listen (default 127.0.0.1:8080).
    pub listen: SocketAddr,
    pub auth: Auth,
    pub limits: Limits,
    /// Open connections at once (default 1024); one more is answered 503 and closed.
    pub max_connections: usize,
    /// A request's headers, then its body, must each arrive within this (default 10s), and
    /// an idle keep-alive connection is closed after it (slow clients cannot hold
    /// connections).
    pub read_timeout: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: ([127, 0, 0, 1], 8080).into(),
            auth: Auth::default(),
            limits: Limits::default(),
            max_connections: 1024,
            read_timeout: Duration::from_secs(10),
        }
    }
}

struct AppState {
    store: Arc<Store>,
    limits: Limits,
    accepted: Vec<Vec<u8>>,
    read_timeout: Duration,
    /// Where every request's work runs (renders, encoding, find, tags): at most
    /// `max_concurrent_renders` at once, so many concurrent requests cannot each hold
    /// `max_points_per_request` points in memory at the same time, under a deadline.
    pool: Pool,
}

/// The API's router over `store`.
pub fn router(store: Arc<Store>, config: &HttpConfig) -> Router {
    api(store, config).0
}

/// The API's router over `store` and the pool its requests' work runs in; [`Pool::stop`]
/// cancels the running work and refuses new work (call it when the server stops, so a
/// shutdown never waits behind a render).
pub fn api(store: Arc<Store>, config: &HttpConfig) -> (Router, Pool) {
    api_with(store, config, Router::new())
}

/// [`api`] with `extra` routes (the web console: `console::router`) on the same port, behind
/// the same authentication.
pub fn api_with(store: Arc<Store>, config: &HttpConfig, extra: Router) -> (Router, Pool) {
    let l = &config.limits;
    let pool = Pool::new(PoolConfig {
        slots: l.max_concurrent_renders,
        queue_timeout: l.render_queue_timeout,
        deadline: l.render_timeout,
    });
    let state = Arc::new(AppState {
        store,
        limits: config.limits.clone(),
        accepted: config.auth.accepted(),
        read_timeout: config.read_timeout,
        pool: pool.clone(),
    });
    let mut r = Router::new()
        .route("/render", get(render).post(render))
        .route("/render/", get(render).post(render))
        .route("/metrics/find", get(find).post(find))
        .route("/metrics/find/", get(find).post(find))
        // graphite-web's cluster front end joins a `CLUSTER_SERVERS` URL ending in `/` and
        // `/render/` into `//render/` (and so for find, index.json and tag autocomplete).
        .route("//render", get(render).post(render))
        .route("//render/", get(render).post(render))
        .route("//metrics/find", get(find).post(find))
        .route("//metrics/find/", get(find).post(find))
        .route("//metrics/index.json", get(index).post(index))
        // carbonapi's `protocol: "auto"` asks a backend what it speaks.
        .route(
            "/_internal/capabilities",
            get(capabilities).post(capabilities),
        )
        .route(
            "/_internal/capabilities/",
            get(capabilities).post(capabilities),
        )
        .route(
            "//_internal/capabilities/",
            get(capabilities).post(capabilities),
        )
        .route("/metrics/expand", get(expand).post(expand))
        .route("/metrics/expand/", get(expand).post(expand))
        .route("/metrics/index.json", get(index).post(index))
        .route("/functions", get(functions_list))
        .route("/functions/", get(functions_list))
        .route("/functions/{name}", get(function_details))
        .route("/version", get(version))
        .route("/version/", get(version))
        .merge(super::tags::routes(
            state.store.clone(),
            pool.clone(),
            config.limits.clone(),
        ))
        .merge(super::events::routes(
            state.store.clone(),
            pool.clone(),
            config.limits.clone(),
        ))
        .layer(middleware::from_fn_with_state(state.clone(), read_body))
        .with_state(state.clone())
        .merge(extra);
    if config.auth.enabled() {
        r = r.layer(middleware::from_fn_with_state(state, authenticate));
    }
    let r = r.layer(DefaultBodyLimit::max(config.limits.max_body_bytes));
    (r, pool)
}

/// Serve `router` on `listener` with [`HttpConfig::default`]'s connection limits until
/// `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    super::listen::serve(listener, router, &HttpConfig::default(), shutdown).await
}

/// The body of every request is read here, within `read_timeout` (408) and `max_body_bytes`
/// (413), so a client sending its body slowly cannot hold a connection or a handler.
async fn read_body(State(st): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let max = st.limits.max_body_bytes;
    match tokio::time::timeout(st.read_timeout, axum::body::to_bytes(body, max)).await {
        Err(_) => text(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the request body did not arrive within {:?} (the limit is read_timeout)",
                st.read_timeout
            ),
        ),
        Ok(Err(_)) => text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the request body is larger than {max} bytes or was cut off (the limit is max_body_bytes)"
            ),
        ),
        Ok(Ok(bytes)) => {
            next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
                .await
        }
    }
}

/// An answer for work that was stopped or never ran.
pub(super) fn refused(r: Refused, limits: &Limits) -> (StatusCode, String) {
    match r {
        Refused::Busy { slots, waited } => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "all {slots} render slots stayed busy for {waited:?}; retry later \
                 (the limits are max_concurrent_renders and render_queue_timeout)"
            ),
        ),
        Refused::Deadline(_) => stopped(Stop::Deadline, limits),
        Refused::ShuttingDown => stopped(Stop::Shutdown, limits),
        Refused::Failed => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "the request failed unexpectedly (a bug in carbide; it is logged)".into(),
        ),
    }
}

/// An answer for work told to stop.
pub(super) fn stopped(why: Stop, limits: &Limits) -> (StatusCode, String) {
    match why {
        Stop::Deadline => (
            StatusCode::GATEWAY_TIMEOUT,
            format!(
                "the request ran longer than {:?} and was stopped (the limit is render_timeout); \
                 ask for a shorter from/until range, fewer series or simpler functions",
                limits.render_timeout
            ),
        ),
        Stop::Shutdown => (
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is stopping; retry when it is back".into(),
        ),
        // Nobody reads this one: the client is gone.
        Stop::ClientGone => (
            StatusCode::SERVICE_UNAVAILABLE,
            "the client closed its connection".into(),
        ),
    }
}

/// Run `f` in the pool and answer with what it returns (or why it did not run).
async fn work(
    st: &AppState,
    f: impl FnOnce(&Cancel) -> Result<Response, ApiError> + Send + 'static,
) -> Response {
    match st.pool.run(f).await {
        Ok(r) => r.unwrap_or_else(IntoResponse::into_response),
        Err(r) => {
            let busy = matches!(r, Refused::Busy { .. });
            let (status, message) = refused(r, &st.limits);
            let mut resp = text(status, message);
            if busy {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            resp
        }
    }
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn authenticate(State(st): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let ok = req
        .headers()
        .get(header::AUTHORIZATION)
        .is_some_and(|h| st.accepted.iter().any(|a| ct_eq(a, h.as_bytes())));
    if ok {
        return next.run(req).await;
    }
    let mut resp = text(
        StatusCode::UNAUTHORIZED,
        "authentication required: send the configured basic credentials or bearer token",
    );
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"carbide\""),
    );
    resp
}

fn text(status: StatusCode, body: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body.into(),
    )
        .into_response()
}

/// An error answer: status and a plain-text message.
#[derive(Debug)]
pub(super) struct ApiError {
    status: StatusCode,
    message: String,
}

impl From<(StatusCode, String)> for ApiError {
    fn from((status, message): (StatusCode, String)) -> Self {
        ApiError { status, message }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        text(self.status, self.message)
    }
}

fn bad(body: impl Into<String>) -> ApiError {
    ApiError {
        status: StatusCode::BAD_REQUEST,
        message: body.into(),
    }
}

fn internal(body: impl Into<String>) -> ApiError {
    ApiError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        message: body.into(),
    }
}

/// Request parameters, query string then form body, in order.
pub(super) struct Params(Vec<(String, String)>);

impl Params {
    pub(super) fn collect(query: Option<&str>, headers: &HeaderMap, body: &[u8]) -> Params {
        let mut v = Vec::new();
        if let Some(q) = query {
            parse_form(q, &mut v);
        }
        let form = headers
            .get(header::CONTENT_TYPE)
            .and_then(|c| c.to_str().ok())
            .is_none_or(|c| c.starts_with("application/x-www-form-urlencoded"));
        if form && !body.is_empty() {
            parse_form(&String::from_utf8_lossy(body), &mut v);
        }
        Params(v)
    }

    /// [`Params::collect`], and a `multipart/form-data` body's fields too (graphite-web's
    /// cluster front end POSTs its requests so with `REMOTE_STORE_USE_POST`). The body was
    /// read under `max_body_bytes` already; a malformed one is a 400.
    pub(super) async fn collect_multipart(
        query: Option<&str>,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Result<Params, ApiError> {
        let mut p = Params::collect(query, headers, &body);
        let multipart = headers
            .get(header::CONTENT_TYPE)
            .and_then(|c| c.to_str().ok())
            .is_some_and(|c| c.starts_with("multipart/form-data"));
        if !multipart {
            return Ok(p);
        }
        let mut req = Request::new(axum::body::Body::from(body));
        *req.headers_mut() = headers.clone();
        let mut form = axum::extract::Multipart::from_request(req, &())
            .await
            .map_err(|e| bad(format!("bad multipart/form-data body: {}", e.body_text())))?;
        while let Some(field) = form
            .next_field()
            .await
            .map_err(|e| bad(format!("bad multipart/form-data body: {}", e.body_text())))?
        {
            let name = field.name().unwrap_or_default().to_string();
            let value = field.text().await.map_err(|e| {
                bad(format!(
                    "bad multipart/form-data field {name:?}: {}",
                    e.body_text()
                ))
            })?;
            p.0.push((name, value));
        }
        Ok(p)
    }

    /// The last value of `key` (Django's `QueryDict.get`).
    pub(super) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub(super) fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Python truthiness of a string parameter: present and non-empty.
    fn truthy(&self, key: &str) -> bool {
        self.get(key).is_some_and(|v| !v.is_empty())
    }

    /// `int(param)` truthiness (`/metrics/expand`'s flags).
    fn int_flag(&self, key: &str) -> Result<bool, ApiError> {
        match self.get(key) {
            None => Ok(false),
            Some(v) => v.trim().parse::<i64>().map(|i| i != 0).map_err(|_| {
                bad(format!(
                    "parameter {key}={v:?} is not an integer; use 0 or 1"
                ))
            }),
        }
    }
}

/// `application/x-www-form-urlencoded`: `+` is a space, `%XX` escapes, invalid UTF-8 replaced.
fn parse_form(s: &str, out: &mut Vec<(String, String)>) {
    let decode = |x: &str| {
        let plus = x.replace('+', " ");
        percent_encoding::percent_decode_str(&plus)
            .decode_utf8_lossy()
            .into_owned()
    };
    for pair in s.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.push((decode(k), decode(v)));
    }
}

pub(super) fn json_response(body: String, jsonp: Option<&str>) -> Response {
    match jsonp {
        Some(cb) => (
            [(header::CONTENT_TYPE, "text/javascript")],
            format!("{cb}({body})"),
        )
            .into_response(),
        None => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
    }
}

/// A JavaScript identifier path, at most 128 bytes (what a `jsonp` callback may be).
pub(super) fn valid_jsonp(cb: &str) -> bool {
    cb.len() <= 128
        && cb
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'$')
}

/// A `jsonp` callback, restricted to a JavaScript identifier path.
fn jsonp(p: &Params) -> Result<Option<&str>, ApiError> {
    match p.get("jsonp") {
        None | Some("") => Ok(None),
        Some(cb) if valid_jsonp(cb) => Ok(Some(cb)),
        Some(_) => Err(bad(
            "jsonp must be a JavaScript function name (letters, digits, _ . $; at most 128 bytes)",
        )),
    }
}

/// The `Accept` header's media types (parameters dropped).
fn accepts(headers: &HeaderMap) -> Vec<&str> {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.split(';').next().unwrap_or_default().trim())
        .collect()
}

/// carbonapi's protocol of a request: `carbonapi_v3_pb` is decided before the body is read
/// (the body is then the request, not a form), v2 from the parameters.
fn wire(query: Option<&str>, headers: &HeaderMap) -> Option<Wire> {
    let p = Params::collect(query, &HeaderMap::new(), b"");
    Wire::of(p.get("format"), &accepts(headers))
}

async fn render(
    State(st): State<Arc<AppState>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let handle = tokio::runtime::Handle::current();
    let state = st.clone();
    if wire(q.as_deref(), &headers) == Some(Wire::V3) {
        return work(&st, move |cancel| render_v3(&state, &body, cancel, handle)).await;
    }
    let p = match Params::collect_multipart(q.as_deref(), &headers, body).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    work(&st, move |cancel| render_inner(&state, &p, cancel, handle)).await
}

/// `Err` once the request was told to stop (deadline, client gone, shutdown).
fn check(cancel: &Cancel, limits: &Limits) -> Result<(), ApiError> {
    match cancel.stopped() {
        Some(why) => Err(ApiError::from(stopped(why, limits))),
        None => Ok(()),
    }
}

/// A request's source and budget, from the limits.
fn source_and_budget(
    st: &AppState,
    now: i64,
    cancel: &Cancel,
    handle: tokio::runtime::Handle,
) -> (StoreSource, Budget) {
    let l = &st.limits;
    let src = StoreSource::new(st.store.clone(), handle, now, l.max_points_per_request)
        .with_cancel(cancel.clone());
    let budget = Budget::new()
        .with_max_points(l.max_points_per_request)
        .with_max_name_bytes(l.max_name_bytes_per_request)
        .with_max_regexes(l.max_regexes_per_request)
        .with_deadline(cancel.deadline())
        .with_cancel(cancel.flag());
    (src, budget)
}

/// Each target evaluated on its own window, under one budget: a cluster front end files
/// each answer under the target it asked for.
fn render_each(
    targets: &[(Expr, i64, i64)],
    now: i64,
    src: &StoreSource,
    budget: &Budget,
) -> Result<Vec<Vec<Series>>, EvalError> {
    targets
        .iter()
        .map(|(e, from, until)| {
            eval::render_with(std::slice::from_ref(e), *from, *until, now, src, budget)
        })
        .collect()
}

/// The answer to an evaluation that failed (checked after [`check`]).
fn eval_failed(e: EvalError, src: &StoreSource, limits: &Limits) -> ApiError {
    match e {
        EvalError::Source { message, .. } if src.limit_hit() => bad(message),
        e @ EvalError::Source { .. } => {
            tracing::error!("render: {e}");
            internal(e.to_string())
        }
        EvalError::DeadlineExceeded { .. } => stopped(Stop::Deadline, limits).into(),
        EvalError::Cancelled => stopped(Stop::Shutdown, limits).into(),
        // Over a budget, or a bad target: the client's to fix.
        e => bad(e.to_string()),
    }
}

/// A `carbonapi_v3_pb` render: the `MultiFetchRequest` in the body, each fetch on its own
/// window, answered with its `pathExpression` and window.
fn render_v3(
    st: &AppState,
    body: &[u8],
    cancel: &Cancel,
    handle: tokio::runtime::Handle,
) -> Result<Response, ApiError> {
    let fetches = carbonapi::fetch_request(body, st.limits.max_targets).map_err(bad)?;
    let mut targets = Vec::with_capacity(fetches.len());
    for f in &fetches {
        let (from, until) =
            eval::request_window(f.start, f.stop).map_err(|e| bad(format!("{}: {e}", f.name)))?;
        let e = parse_with_vars(&f.name, &[]).map_err(|e| bad(e.to_string()))?;
        targets.push((e, from, until));
    }
    check(cancel, &st.limits)?;
    let now = unix_now();
    let (src, budget) = source_and_budget(st, now, cancel, handle);
    let result = render_each(&targets, now, &src, &budget);
    check(cancel, &st.limits)?;
    let per_fetch = result.map_err(|e| eval_failed(e, &src, &st.limits))?;
    drop(src);
    let mut answers = Vec::new();
    for (fetch, series) in fetches.iter().zip(per_fetch) {
        for s in series {
            let schema = st.store.schema_of(&s.name);
            answers.push(carbonapi::Answer {
                fetch,
                series: s,
                consolidation: schema.aggregation.name(),
                x_files_factor: schema.x_files_factor,
            });
        }
    }
    let body = carbonapi::render_v3(&answers);
    drop(answers);
    check(cancel, &st.limits)?;
    Ok(([(header::CONTENT_TYPE, Wire::V3.content_type())], body).into_response())
}

/// A render, on a blocking thread of the pool: parse, evaluate, encode, checking `cancel`
/// between steps (and inside them: the source between fetches).
fn render_inner(
    st: &AppState,
    p: &Params,
    cancel: &Cancel,
    handle: tokio::runtime::Handle,
) -> Result<Response, ApiError> {
    let check = || check(cancel, &st.limits);
    let tz = match p.get("tz") {
        Some(name) if !name.is_empty() => TimeZone::parse(name).map_err(|e| bad(e.to_string()))?,
        _ => TimeZone::utc(),
    };
    let real_now = unix_now();
    let now = match p.get("now") {
        Some(n) if !n.is_empty() => parse_time(n, real_now, &tz).map_err(|e| bad(e.to_string()))?,
        _ => real_now,
    };
    let time = |key: &str, default: &str| -> Result<i64, ApiError> {
        let v = p.get(key).filter(|v| !v.is_empty()).unwrap_or(default);
        parse_time(v, now, &tz).map_err(|e| bad(format!("{key}: {e}")))
    };
    let from = time("from", "-1d")?;
    let until = time("until", "now")?;
    let (from, until) = eval::request_window(from, until).map_err(|e| bad(e.to_string()))?;
    // graphite-web answers a PNG when no format is given.
    let format = p.get("format").filter(|f| !f.is_empty()).unwrap_or("png");
    let remote_format = remote::Format::parse(format);
    let v2 = Wire::of(Some(format), &[]) == Some(Wire::V2);
    let picture_format = match format {
        "json" | "csv" | "pickle" | "msgpack" | "protobuf" | "protobuf3" | "carbonapi_v2_pb" => {
            None
        }
        "png" => Some(picture::Format::Png),
        "svg" => Some(picture::Format::Svg),
        _ => {
            return Err(bad(format!(
                "format={format} is not supported by carbide's render API; use format=png, svg, json, csv, pickle, msgpack or carbonapi's protobuf, carbonapi_v2_pb, carbonapi_v3_pb"
            )))
        }
    };
    let graph = match picture_format {
        Some(_) => Some(
            GraphParams::parse(|k| p.get(k), st.limits.picture)
                .map_err(|e| bad(format!("bad graph parameter {e}")))?,
        ),
        None => None,
    };
    let max_data_points = match p.get("maxDataPoints").filter(|v| !v.is_empty()) {
        None => None,
        Some(v) => match v.trim().parse::<f64>() {
            Ok(n) if n >= 1.0 && n.is_finite() => Some(n as usize),
            _ => {
                return Err(bad(format!(
                    "maxDataPoints={v:?} must be a positive integer"
                )))
            }
        },
    };
    let no_null = p
        .get("noNullPoints")
        .is_some_and(|v| !matches!(v, "0" | "false" | "False"));
    let callback = jsonp(p)?;
    let vars: Vec<(&str, &str)> =
        p.0.iter()
            .filter_map(|(k, v)| {
                let name = k.strip_prefix("template[")?.strip_suffix(']')?;
                Some((name, v.as_str()))
            })
            .collect();
    // graphite-web drops blank targets before evaluating anything.
    let targets: Vec<&str> = p
        .all("target")
        .chain(p.all("target[]"))
        .filter(|t| !t.trim().is_empty())
        .collect();
    if targets.len() > st.limits.max_targets {
        return Err(bad(format!(
            "{} targets in one request, more than the limit of {}; split the request (the limit is max_targets)",
            targets.len(),
            st.limits.max_targets
        )));
    }
    let mut exprs = Vec::with_capacity(targets.len());
    for t in &targets {
        exprs.push(parse_with_vars(t, &vars).map_err(|e| bad(e.to_string()))?);
    }
    check()?;
    let (src, budget) = source_and_budget(st, now, cancel, handle);
    // A cluster front end files each series under the target it asked for: evaluate the
    // targets one by one to know which answered what.
    let mut answered: Vec<(&str, usize)> = Vec::new();
    let result = if remote_format.is_none() && !v2 {
        eval::render_with(&exprs, from, until, now, &src, &budget)
    } else {
        let each: Vec<_> = exprs.into_iter().map(|e| (e, from, until)).collect();
        render_each(&each, now, &src, &budget).map(|per| {
            let mut all = Vec::new();
            for (t, s) in targets.iter().zip(per) {
                answered.push((t, s.len()));
                all.extend(s);
            }
            all
        })
    };
    // Stopped (deadline, client gone, shutdown), whichever error that surfaced as.
    check()?;
    let series = result.map_err(|e| eval_failed(e, &src, &st.limits))?;
    drop(src);
    if v2 {
        let body = carbonapi::render_v2(&series);
        drop(series);
        check()?;
        return Ok(([(header::CONTENT_TYPE, Wire::V2.content_type())], body).into_response());
    }
    if let Some(rf) = remote_format {
        let mut it = series.into_iter();
        let mut tagged = Vec::new();
        for (t, n) in answered {
            tagged.extend(it.by_ref().take(n).map(|s| (t, s)));
        }
        let body = remote::render(&tagged, rf).map_err(internal)?;
        drop(tagged);
        check()?;
        return Ok(([(header::CONTENT_TYPE, rf.content_type())], body).into_response());
    }
    if let (Some(pf), Some(graph)) = (picture_format, graph) {
        let stop = || cancel.stopped().is_some();
        return match picture::render(series, &graph, &tz, pf, &stop) {
            Ok(body) => Ok(([(header::CONTENT_TYPE, pf.content_type())], body).into_response()),
            Err(PictureError::Stopped) => {
                check()?;
                Err(stopped(Stop::Deadline, &st.limits).into())
            }
            Err(e @ PictureError::Graph(_)) => Err(bad(e.to_string())),
            Err(e @ PictureError::Failed(_)) => {
                tracing::error!("render: {e}");
                Err(internal(e.to_string()))
            }
        };
    }
    Ok(match format {
        "csv" => {
            let body = output::csv(&series, &tz);
            check()?;
            ([(header::CONTENT_TYPE, "text/csv")], body).into_response()
        }
        _ => {
            let body = output::json_body(&series, max_data_points, no_null);
            drop(series);
            check()?;
            json_response(body, callback)
        }
    })
}

/// A find/expand query, refused before the index sees it if it is hostile.
fn check_query(q: &str) -> Result<(), ApiError> {
    GlobPattern::new(q)
        .map(|_| ())
        .map_err(|e| bad(e.to_string()))
}

fn too_many(n: usize, limit: usize) -> ApiError {
    bad(format!(
        "the query matches {n} nodes, more than the limit of {limit}; use a narrower pattern (the limit is max_find_results)"
    ))
}

async fn find(
    State(st): State<Arc<AppState>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let state = st.clone();
    if wire(q.as_deref(), &headers) == Some(Wire::V3) {
        return work(&st, move |_| find_v3(&state, &body)).await;
    }
    let p = match Params::collect_multipart(q.as_deref(), &headers, body).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let handle = tokio::runtime::Handle::current();
    work(&st, move |_| find_inner(&state, &p, handle)).await
}

/// A `carbonapi_v3_pb` find: the `MultiGlobRequest` in the body, one answer per glob.
fn find_v3(st: &AppState, body: &[u8]) -> Result<Response, ApiError> {
    let queries = carbonapi::glob_request(body, st.limits.max_targets).map_err(bad)?;
    let mut found = Vec::with_capacity(queries.len());
    let mut total = 0;
    for q in &queries {
        check_query(q)?;
        let nodes = st.store.find(q);
        total += nodes.len();
        if total > st.limits.max_find_results {
            return Err(too_many(total, st.limits.max_find_results));
        }
        found.push(nodes);
    }
    let per_query: Vec<_> = queries
        .iter()
        .zip(&found)
        .map(|(q, nodes)| {
            let m = nodes.iter().map(|n| (n.path.as_str(), n.is_leaf)).collect();
            (q.as_str(), m)
        })
        .collect();
    let body = carbonapi::find_v3(&per_query);
    Ok(([(header::CONTENT_TYPE, Wire::V3.content_type())], body).into_response())
}

/// `/_internal/capabilities/`: what carbonapi's `protocol: "auto"` asks a backend before
/// choosing a protocol (its body is an empty `CapabilityRequest`).
async fn capabilities(RawQuery(q): RawQuery, headers: HeaderMap, body: Bytes) -> Response {
    let p = Params::collect(q.as_deref(), &HeaderMap::new(), b"");
    match p.get("format") {
        None | Some("" | "carbonapi_v3_pb") => {}
        Some(_) if wire(q.as_deref(), &headers) == Some(Wire::V3) => {}
        Some(f) => {
            return bad(format!(
                "format={f}: carbide answers /_internal/capabilities/ only as carbonapi_v3_pb"
            ))
            .into_response()
        }
    }
    if let Err(e) = carbonapi::capability_request(&body) {
        return bad(e).into_response();
    }
    (
        [(header::CONTENT_TYPE, Wire::V3.content_type())],
        carbonapi::capabilities(),
    )
        .into_response()
}

fn find_inner(
    st: &AppState,
    p: &Params,
    handle: tokio::runtime::Handle,
) -> Result<Response, ApiError> {
    let Some(query) = p.get("query") else {
        return Err(bad("Missing required parameter 'query'"));
    };
    if query.is_empty() {
        return Err(bad("Required parameter 'query' is empty"));
    }
    let format = p.get("format").unwrap_or("treejson");
    let wildcards = p.truthy("wildcards");
    let leaves_only = p.truthy("leavesOnly");
    let callback = jsonp(p)?;
    let mut pattern = query.to_string();
    if format == "completer" {
        pattern = pattern.replace("..", "*.");
        if !pattern.ends_with('*') {
            pattern.push('*');
        }
    }
    check_query(&pattern)?;
    let mut nodes = st.store.found(&pattern);
    if leaves_only {
        nodes.retain_leaves();
    }
    if nodes.len() > st.limits.max_find_results {
        return Err(too_many(nodes.len(), st.limits.max_find_results));
    }
    if Wire::of(Some(format), &[]) == Some(Wire::V2) {
        let matches: Vec<_> = nodes.iter().map(|n| (n.path, n.is_leaf)).collect();
        let body = carbonapi::find_v2(query, &matches);
        return Ok(([(header::CONTENT_TYPE, Wire::V2.content_type())], body).into_response());
    }
    if let Some(rf) = remote::Format::parse(format) {
        // A leaf's intervals: what this node holds of it (graphite-web merges them across
        // nodes to choose which answer a window).
        let leaves = match GlobPattern::new(&pattern) {
            Ok(g) => st.store.resolve(&g),
            Err(_) => Vec::new(),
        };
        let held = handle
            .block_on(st.store.held(&leaves, unix_now()))
            .map_err(|e| {
                tracing::error!("find: {e}");
                internal(e.to_string())
            })?;
        let intervals: std::collections::HashMap<&str, Vec<(i64, i64)>> =
            leaves.iter().map(|m| m.path.as_str()).zip(held).collect();
        let infos: Vec<remote::NodeInfo<'_>> = nodes
            .iter()
            .map(|n| remote::NodeInfo {
                path: n.path,
                is_leaf: n.is_leaf,
                is_leaf_carbonapi: n.is_leaf,
                intervals: match n.is_leaf {
                    true => intervals.get(n.path).cloned().unwrap_or_default(),
                    false => Vec::new(),
                },
            })
            .collect();
        let body = remote::find(&infos, rf).map_err(internal)?;
        return Ok(([(header::CONTENT_TYPE, rf.content_type())], body).into_response());
    }
    let body = match format {
        "treejson" => output::find_treejson(query, &nodes, wildcards),
        "completer" => output::find_completer(&nodes, wildcards),
        _ => {
            return Err(bad(
                "Invalid value for 'format' parameter (carbide answers treejson, completer, pickle, msgpack and carbonapi's protobuf, carbonapi_v2_pb, carbonapi_v3_pb)",
            ))
        }
    };
    Ok(json_response(body, callback))
}

async fn expand(
    State(st): State<Arc<AppState>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = Params::collect(q.as_deref(), &headers, &body);
    let state = st.clone();
    work(&st, move |_| expand_inner(&state, &p)).await
}

fn expand_inner(st: &AppState, p: &Params) -> Result<Response, ApiError> {
    let group = p.int_flag("groupByExpr")?;
    let leaves_only = p.int_flag("leavesOnly")?;
    let callback = jsonp(p)?;
    let mut per_query = Vec::new();
    let mut total = 0;
    for q in p.all("query") {
        check_query(q)?;
        let mut paths: Vec<String> = st
            .store
            .find(q)
            .into_iter()
            .filter(|n| n.is_leaf || !leaves_only)
            .map(|n| n.path)
            .collect();
        paths.sort();
        paths.dedup();
        total += paths.len();
        if total > st.limits.max_find_results {
            return Err(too_many(total, st.limits.max_find_results));
        }
        per_query.push((q.to_string(), paths));
    }
    Ok(json_response(
        output::expand(&per_query, group).dumps(),
        callback,
    ))
}

/// `/metrics/index.json`: every series' name. graphite-web's cluster front end asks it with
/// `local=1` (ignored: a node knows only its own series), by multipart POST under
/// `REMOTE_STORE_USE_POST`.
async fn index(
    State(st): State<Arc<AppState>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = match Params::collect_multipart(q.as_deref(), &headers, body).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let state = st.clone();
    work(&st, move |_| {
        let callback = jsonp(&p)?;
        let paths = state.store.expand("**");
        let limit = state.limits.max_find_results;
        if paths.len() > limit {
            return Err(bad(format!(
                "the store holds {} series, more than the limit of {limit} for one answer \
                 (the limit is max_find_results); browse with /metrics/find instead",
                paths.len()
            )));
        }
        Ok(json_response(output::index(&paths).dumps(), callback))
    })
    .await
}

/// Python `json.dumps` spacing for serde_json values (`", "`, `": "`).
struct PyFormatter;

impl serde_json::ser::Formatter for PyFormatter {
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }
    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }
    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        w.write_all(b": ")
    }
}

fn py_json(v: &serde_json::Value) -> String {
    let mut buf = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, PyFormatter);
    if serde::Serialize::serialize(v, &mut ser).is_err() {
        return "{}".into();
    }
    String::from_utf8(buf).unwrap_or_default()
}

async fn functions_list(RawQuery(q): RawQuery) -> Response {
    let p = Params::collect(q.as_deref(), &HeaderMap::new(), &[]);
    let callback = match jsonp(&p) {
        Ok(c) => c,
        Err(r) => return r.into_response(),
    };
    let all = functions::describe::functions_json();
    let group = p.get("group");
    let grouped = p
        .get("grouped")
        .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true"));
    let mut out = serde_json::Map::new();
    if let Some(obj) = all.as_object() {
        for (name, info) in obj {
            let g = info["group"].as_str().unwrap_or("");
            if group.is_some_and(|want| want != g) {
                continue;
            }
            if grouped {
                let slot = out
                    .entry(g.to_string())
                    .or_insert_with(|| serde_json::Value::Object(Default::default()));
                if let Some(m) = slot.as_object_mut() {
                    m.insert(name.clone(), info.clone());
                }
            } else {
                out.insert(name.clone(), info.clone());
            }
        }
    }
    json_response(py_json(&serde_json::Value::Object(out)), callback)
}

async fn function_details(Path(name): Path<String>) -> Response {
    match functions::lookup(&name) {
        Some(f) => json_response(py_json(&functions::describe::function_json(f)), None),
        None => {
            let mut body = String::from("{\"error\": ");
            output::write_py_str(&mut body, &format!("Function not found: {name}"));
            body.push('}');
            (
                StatusCode::NOT_FOUND,
                [(header::CONTENT_TYPE, "application/json")],
                body,
            )
                .into_response()
        }
    }
}

async fn version() -> Response {
    text(StatusCode::OK, GRAPHITE_WEB_VERSION)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding_handles_plus_percent_and_repeats() {
        let mut v = Vec::new();
        parse_form("target=sum(a.*)&target=b%2Cc&from=-1h+30min&x", &mut v);
        let p = Params(v);
        assert_eq!(p.all("target").collect::<Vec<_>>(), ["sum(a.*)", "b,c"]);
        assert_eq!(p.get("from"), Some("-1h 30min"));
        assert_eq!(p.get("x"), Some(""));
        assert!(!p.truthy("x"));
    }

    #[test]
    fn auth_debug_never_shows_secrets() {
        let a = Auth {
            basic: Some(("u".into(), "hunter2".into())),
            bearer: Some("tok-123".into()),
        };
        let d = format!("{a:?}");
        assert!(!d.contains("hunter2") && !d.contains("tok-123"), "{d}");
        assert_eq!(a.accepted().len(), 2);
        assert!(ct_eq(b"abc", b"abc") && !ct_eq(b"abc", b"abd") && !ct_eq(b"ab", b"abc"));
    }
}
