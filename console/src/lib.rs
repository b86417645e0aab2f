//! The web console (`docs/console.md`): the front end built from `console/web/` by
//! `npm run build` into `console/dist/` (committed, so `cargo build` needs no npm), embedded
//! here and served at `/` by whichever HTTP server merges [`router`] into its own — on its
//! port, behind its authentication:
//! - `carbide serve`: the metrics pages over the graphite-web API (`/metrics/find`,
//!   `/render`, `/functions`);
//! - `carbide up`: the same plus the alert pages over the alerter's JSON API (`/api/*`);
//! - `alerter run`: the alert pages on the alerter's API port.
//!
//! Every answer carries a strict Content-Security-Policy (scripts, styles and connections to
//! this origin only; no inline script or style is allowed, none is needed). `index.html` is
//! revalidated on every load; the assets it names carry their content hash in the URL
//! (`?v=…`, written by the build) and are cached for a year.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// What the server that mounts the console answers, so the console shows only those pages.
#[derive(Debug, Clone, Copy, Default)]
pub struct Features {
    /// The graphite-web API (`/metrics/find`, `/render`, `/functions`): metrics, graph,
    /// status pages.
    pub metrics: bool,
    /// The alerter's JSON API (`/api/alerts`, `/api/silences`, …): alert pages.
    pub alerts: bool,
}

impl Features {
    fn names(self) -> &'static str {
        match (self.metrics, self.alerts) {
            (true, true) => "metrics alerts",
            (true, false) => "metrics",
            (false, true) => "alerts",
            (false, false) => "",
        }
    }
}

/// The policy of every console answer: nothing but this origin's own scripts, styles,
/// images and API; no inline script or style, no framing, no plugins.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; font-src 'self'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// The built `index.html`; its features placeholder is filled per server.
const INDEX: &str = include_str!("../dist/index.html");
/// The placeholder the build writes into `index.html`'s head.
const FEATURES_PLACEHOLDER: &str = r#"<meta name="carbide-features" content="">"#;

/// The built assets: name under `/assets/`, content type, bytes.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../dist/app.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("../dist/app.css"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_bytes!("../dist/favicon.svg"),
    ),
];

/// The console's routes: `/` (and `/index.html`) and `/assets/{name}`. Merge them into a
/// router that answers the APIs `features` names.
pub fn router(features: Features) -> Router {
    let index = INDEX.replacen(
        FEATURES_PLACEHOLDER,
        &format!(
            r#"<meta name="carbide-features" content="{}">"#,
            features.names()
        ),
        1,
    );
    let page = move || {
        let body = index.clone();
        async move { html(body) }
    };
    Router::new()
        .route("/", get(page.clone()))
        .route("/index.html", get(page))
        .route("/favicon.ico", get(|| async { asset("favicon.svg") }))
        .route(
            "/assets/{name}",
            get(|Path(name): Path<String>| async move { asset(&name) }),
        )
}

fn secure(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    resp
}

fn html(body: String) -> Response {
    secure(
        (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                // Always revalidated: a new binary's page names its new assets.
                (header::CACHE_CONTROL, "no-cache"),
            ],
            body,
        )
            .into_response(),
    )
}

fn asset(name: &str) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, content_type, bytes)) => secure(
            (
                [
                    (header::CONTENT_TYPE, *content_type),
                    // The page names each asset with its content hash (`?v=…`).
                    (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
                ],
                *bytes,
            )
                .into_response(),
        ),
        None => secure(
            (
                StatusCode::NOT_FOUND,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "no such console asset",
            )
                .into_response(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt as _;

    async fn get(r: &Router, uri: &str) -> (StatusCode, axum::http::HeaderMap, String) {
        let resp = r
            .clone()
            .oneshot(Request::get(uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, headers, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn index_names_its_features_and_hashed_assets_under_a_strict_policy() {
        assert!(
            INDEX.contains(FEATURES_PLACEHOLDER),
            "the build's placeholder"
        );
        let r = router(Features {
            metrics: true,
            alerts: false,
        });
        let (status, h, body) = get(&r, "/").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(h[header::CONTENT_SECURITY_POLICY], CONTENT_SECURITY_POLICY);
        assert_eq!(h[header::CACHE_CONTROL], "no-cache");
        assert!(body.contains(r#"<meta name="carbide-features" content="metrics">"#));
        // No inline script or style: every script and stylesheet is a file of this origin.
        assert!(
            !body.contains("<script>") && !body.contains("<style"),
            "{body}"
        );
        assert!(!body.contains(" style="), "{body}");
        for name in ["app.js", "app.css"] {
            let at = body
                .find(&format!("/assets/{name}?v="))
                .unwrap_or_else(|| panic!("{name} is not named with its hash: {body}"));
            let (status, h, asset) = get(&r, body[at..].split('"').next().unwrap()).await;
            assert_eq!(status, StatusCode::OK, "{name}");
            assert!(h[header::CACHE_CONTROL]
                .to_str()
                .unwrap()
                .contains("immutable"));
            assert_eq!(h[header::CONTENT_SECURITY_POLICY], CONTENT_SECURITY_POLICY);
            assert!(asset.len() > 100, "{name}");
        }
        let (status, _, _) = get(&r, "/assets/../Cargo.toml").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _, _) = get(&r, "/assets/nope.js").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn each_server_says_which_pages_it_answers() {
        for (f, names) in [((true, true), "metrics alerts"), ((false, true), "alerts")] {
            let r = router(Features {
                metrics: f.0,
                alerts: f.1,
            });
            let (_, _, body) = get(&r, "/index.html").await;
            assert!(
                body.contains(&format!(
                    r#"<meta name="carbide-features" content="{names}">"#
                )),
                "{body}"
            );
        }
    }
}
