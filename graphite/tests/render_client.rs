//! The render client against a real HTTP server on 127.0.0.1 serving recorded graphite-web
//! bodies (`tests/conformance/golden/*.json`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, Request};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use graphite::render::client::ClientOptions;
use graphite::render::{from_json, RenderClient, RenderError};

/// target → (status, body) from the golden files.
fn goldens() -> HashMap<String, (u16, String)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/conformance/golden");
    let mut out = HashMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let cases: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
        for c in cases {
            let status = c["status"].as_u64().unwrap() as u16;
            let body = match &c["body"] {
                serde_json::Value::String(s) => s.clone(),
                b => serde_json::to_string(b).unwrap(),
            };
            out.insert(c["target"].as_str().unwrap().to_string(), (status, body));
        }
    }
    out
}

#[derive(Default)]
struct Seen {
    auth: Vec<Option<String>>,
    queries: Vec<HashMap<String, String>>,
}

async fn serve(
    goldens: HashMap<String, (u16, String)>,
) -> (std::net::SocketAddr, Arc<Mutex<Seen>>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let s = seen.clone();
    let app = axum::Router::new()
        .route(
            "/prefix/render",
            axum::routing::get(
                move |Query(q): Query<HashMap<String, String>>, req: Request| {
                    let s = s.clone();
                    let goldens = goldens.clone();
                    async move {
                        let auth = req
                            .headers()
                            .get(header::AUTHORIZATION)
                            .map(|v| v.to_str().unwrap().to_string());
                        {
                            let mut s = s.lock().unwrap();
                            s.auth.push(auth);
                            s.queries.push(q.clone());
                        }
                        let target = q.get("target").cloned().unwrap_or_default();
                        if target == "slow" {
                            tokio::time::sleep(Duration::from_secs(5)).await;
                        }
                        if target == "redirect" {
                            return Response::builder()
                                .status(302)
                                .header(header::LOCATION, "/prefix/render?target=alias(servers.web1.cpu.total.user,'cpu')&format=json&from=1")
                                .body(axum::body::Body::empty())
                                .unwrap();
                        }
                        if target == "html" {
                            return (StatusCode::OK, "<html>login</html>").into_response();
                        }
                        match goldens.get(&target) {
                            Some((st, body)) => (
                                StatusCode::from_u16(*st).unwrap(),
                                [(header::CONTENT_TYPE, "application/json")],
                                body.clone(),
                            )
                                .into_response(),
                            None => (StatusCode::OK, "[]").into_response(),
                        }
                    }
                },
            ),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (addr, seen)
}

#[tokio::test]
async fn fetches_golden_bodies_with_auth_and_query() {
    let goldens = goldens();
    let (addr, seen) = serve(goldens.clone()).await;
    let client = RenderClient::new(
        &format!("http://alice:pw-SECRET@{addr}/prefix/"),
        ClientOptions::default(),
    )
    .unwrap();
    let mut fetched = 0;
    for (target, (status, body)) in &goldens {
        if *status != 200 {
            continue;
        }
        let got = client
            .render(target, "1699998840", Some("1700000040"))
            .await
            .unwrap();
        assert_eq!(got, from_json(body.as_bytes()).unwrap(), "{target}");
        fetched += 1;
    }
    assert!(fetched > 50, "{fetched}");
    let s = seen.lock().unwrap();
    // "alice:pw-SECRET" in base64
    assert!(s
        .auth
        .iter()
        .all(|a| a.as_deref() == Some("Basic YWxpY2U6cHctU0VDUkVU")));
    let q = &s.queries[0];
    assert_eq!(q["format"], "json");
    assert_eq!(q["from"], "1699998840");
    assert_eq!(q["until"], "1700000040");
    assert!(goldens.contains_key(&q["target"]));
}

#[tokio::test]
async fn graphite_web_400_text_is_surfaced_without_credentials() {
    let goldens = goldens();
    let (addr, _) = serve(goldens.clone()).await;
    let client = RenderClient::new(
        &format!("http://{addr}/prefix"),
        ClientOptions {
            user: Some("bob".into()),
            password: Some("hunter2".into()),
            timeout: None,
        },
    )
    .unwrap();
    let e = client
        .render("foo(servers.web1.loadavg.01)", "-1min", None)
        .await
        .unwrap_err();
    let RenderError::BadRequest { message, .. } = &e else {
        panic!("{e:?}")
    };
    assert!(
        message.starts_with("Invalid parameters (Received request for unknown function: foo)"),
        "{message}"
    );
    let text = e.to_string();
    assert!(text.contains("foo(servers.web1.loadavg.01)"), "{text}");
    assert!(!text.contains("hunter2") && !text.contains("bob"), "{text}");

    let e = client.render("html", "-1min", None).await.unwrap_err();
    assert!(matches!(e, RenderError::Decode { .. }), "{e:?}");
    // Redirects on the same scheme are followed.
    let got = client.render("redirect", "-1min", None).await.unwrap();
    assert_eq!(got[0].target, "cpu");
}

#[tokio::test]
async fn timeout_and_refused_connection_name_the_target() {
    let (addr, _) = serve(HashMap::new()).await;
    let client = RenderClient::new(
        &format!("http://u:topsecret@{addr}/prefix"),
        ClientOptions {
            timeout: Some(Duration::from_millis(200)),
            ..Default::default()
        },
    )
    .unwrap();
    let e = client.render("slow", "-1min", None).await.unwrap_err();
    assert!(matches!(e, RenderError::Timeout { .. }), "{e:?}");
    assert!(e.to_string().contains("\"slow\""));
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let client = RenderClient::new(
        &format!("http://u:topsecret@{dead}"),
        ClientOptions::default(),
    )
    .unwrap();
    let e = client.render("a.b", "-1min", None).await.unwrap_err();
    assert!(matches!(e, RenderError::Transport { .. }), "{e:?}");
    assert!(!e.to_string().contains("topsecret"), "{e}");
}

#[tokio::test]
async fn https_is_never_downgraded() {
    // An https base refuses to talk plain HTTP, even to a server that would answer.
    let (addr, _) = serve(HashMap::new()).await;
    let client = RenderClient::new(
        &format!("https://{addr}/prefix"),
        ClientOptions {
            timeout: Some(Duration::from_secs(2)),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(client.endpoint().starts_with("https://"));
    let e = client.render("a.b", "-1min", None).await.unwrap_err();
    assert!(matches!(e, RenderError::Transport { .. }), "{e:?}");
}
