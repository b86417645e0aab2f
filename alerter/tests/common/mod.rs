//! Shared test parts: a real HTTP receiver on 127.0.0.1 and sample notifications.
#![allow(dead_code)]

// carbon-cache (Debian graphite-carbon) as the collector's tests start it: one helper, shared.
#[path = "../../../collector/tests/common/carbon.rs"]
pub mod carbon;
pub mod render;

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::{Arc, Mutex};

use alerter::notification::{graph_url, runbook_url, Action, Level, Notification};
use alerter::notifiers::Message;
use axum::http::{HeaderMap, StatusCode, Uri};

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Got {
    pub path: String,
    pub headers: HeaderMap,
    pub body: String,
}

impl Got {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

/// An HTTP server recording every request; answers with `statuses` in turn (the last one
/// repeats), echoing the URI and body in error answers (to prove notifiers redact them).
#[derive(Clone)]
pub struct Receiver {
    pub addr: std::net::SocketAddr,
    pub got: Arc<Mutex<Vec<Got>>>,
}

impl Receiver {
    pub async fn start(statuses: Vec<u16>) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(listener, statuses)
    }

    pub async fn start_on(addr: std::net::SocketAddr, statuses: Vec<u16>) -> Receiver {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        Self::serve(listener, statuses)
    }

    fn serve(listener: tokio::net::TcpListener, statuses: Vec<u16>) -> Receiver {
        let addr = listener.local_addr().unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let g = got.clone();
        let app =
            axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: String| {
                let g = g.clone();
                let statuses = statuses.clone();
                async move {
                    let mut v = g.lock().unwrap();
                    let i = v.len().min(statuses.len() - 1);
                    v.push(Got {
                        path: uri.to_string(),
                        headers,
                        body: body.clone(),
                    });
                    let status = StatusCode::from_u16(statuses[i]).unwrap();
                    let text = if status.is_success() {
                        "ok".to_string()
                    } else {
                        format!("bad request {uri} {body}")
                    };
                    (status, text)
                }
            });
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { addr, got }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn requests(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }
}

/// A free port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    free_addr().port()
}

/// A port nothing listens on (bound, then released).
pub fn free_addr() -> std::net::SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

pub fn notification(level: Level, previous: Level) -> Notification {
    Notification {
        reason: None,
        graph_png: None,
        alert: "HAProxy check duration".into(),
        series: "lb-1".into(),
        level,
        previous,
        value: Some(1234.0),
        threshold: Some(1000.0),
        runbook_url: Some(runbook_url(
            "https://wiki.example.com/alerts",
            "HAProxy check duration",
            Some("lb-1"),
        )),
        graph_url: Some(graph_url(
            "https://graphite.example.com",
            "servers.*.haproxy",
            500.0,
            1000.0,
        )),
        graph_image_url: None,
        labels: BTreeMap::from([("team".into(), "edge".into())]),
        annotations: BTreeMap::from([("note".into(), "check backends".into())]),
        timestamp: 1_700_000_000,
        summary: format!("{level} alert for HAProxy check duration lb-1"),
        body: "The current value is 1234 which passes the critical value of 1000.".into(),
    }
}

pub fn message(action: Action, level: Level, previous: Level, notifier: &str) -> Message {
    let n = notification(level, previous);
    Message {
        action,
        idempotency_key: n.idempotency_key(notifier),
        notification: n,
    }
}

/// The `alerter` binary with none of its settings' environment variables inherited and
/// warnings-only logging.
pub fn alerter() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_alerter"));
    for v in alerter::config::env_vars() {
        c.env_remove(v);
    }
    c.env("RUST_LOG", "warn");
    c
}
