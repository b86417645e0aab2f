//! `carbide up` end to end: the collector's host metrics become queryable through the
//! embedded `/render`, the alerter evaluates, and SIGTERM shuts everything down cleanly.

mod common;

use std::time::Duration;

use common::{enc, series, wait_until, Carbide};

#[test]
fn up_collects_stores_serves_and_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    common::up_host_agent(d);
    std::fs::write(
        d.join("alerts.yml"),
        "interval: 1s\nalerts:\n  - name: Load\n    target: servers.*.loadavg.01\n    warning: 100000\n    critical: 200000\n",
    )
    .unwrap();
    let c = Carbide::start(d, &common::up_args(&["--alerter-api", "off"]));
    let target = enc("servers.uphost.loadavg.01");
    let mut last = Vec::new();
    let ok = wait_until(Duration::from_secs(60), || {
        let (st, body) = c.get(&format!("/render?target={target}&from=-5min&format=json"));
        last = if st == 200 { series(&body) } else { Vec::new() };
        last.iter()
            .any(|(_, pts)| pts.iter().any(|(v, _)| v.is_some()))
    });
    assert!(ok, "host metrics never queryable: {last:?}");
    // The alerter evaluated against the store (no fetch errors) and reported into it.
    let alerter_seen = wait_until(Duration::from_secs(30), || {
        let (_, body) =
            c.get("/render?target=carbide.alerter.evaluation.fetch_errors&from=-5min&format=json");
        series(&body)
            .iter()
            .any(|(_, pts)| pts.iter().any(|(v, _)| *v == Some(0.0)))
    });
    assert!(
        alerter_seen,
        "no alerter cycle without fetch errors in carbide.alerter.*"
    );

    // SIGHUP reloads alerts.yml: a bad file keeps the running alerts (file:line:col logged),
    // a good one is applied, and the alerter keeps reporting into the store afterwards.
    let log = || std::fs::read_to_string(d.join("carbide.log")).unwrap_or_default();
    std::fs::write(
        d.join("alerts.yml"),
        "interval: 1s\nalerts:\n  - name: Load\n    target: servers.*.loadavg.01\n    warning: 100000\n    critcal: 200000\n",
    )
    .unwrap();
    c.signal(libc::SIGHUP);
    assert!(
        wait_until(Duration::from_secs(30), || log().contains(
            "reload failed; still running the previous configuration"
        )),
        "{}",
        log()
    );
    assert!(log().contains("alerts.yml:6:5"), "{}", log());
    std::fs::write(
        d.join("alerts.yml"),
        "interval: 1s\nalerts:\n  - name: Load 5\n    target: servers.*.loadavg.05\n    warning: 100000\n    critical: 200000\n",
    )
    .unwrap();
    c.signal(libc::SIGHUP);
    assert!(
        wait_until(Duration::from_secs(30), || log()
            .contains("configuration reloaded")),
        "{}",
        log()
    );
    let reloaded_at = common::now();
    let reporting = wait_until(Duration::from_secs(30), || {
        let (_, body) =
            c.get("/render?target=carbide.alerter.evaluation.fetch_errors&from=-5min&format=json");
        series(&body)
            .iter()
            .any(|(_, pts)| pts.iter().any(|(v, t)| v.is_some() && *t > reloaded_at + 1))
    });
    assert!(reporting, "no alerter self-metrics after the reload");
    assert!(c.stop(), "carbide up did not exit 0 on SIGTERM");
    let log = std::fs::read_to_string(d.join("carbide.log")).unwrap();
    assert!(log.contains("collector stopped"), "{log}");
    assert!(log.contains("store flushed and closed"), "{log}");
    assert!(d.join("data").read_dir().unwrap().next().is_some());
}

/// `carbide up` never collects unwatched: a missing alerts file or a busy alerter API port is
/// a startup error (exit 2) before anything listens; `--alerts off` is the explicit way to
/// run without an alerter.
#[test]
fn up_refuses_to_start_without_its_alerter() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("collectors.d")).unwrap();
    std::fs::write(d.join("collectors.d/host.yml"), "type: host\n").unwrap();
    let up = |extra: &[&str]| {
        let out = std::process::Command::new(common::CARBIDE)
            .args(common::UP)
            .args(extra)
            .current_dir(d)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = up(&[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("alerts.yml: not found"), "{err}");
    assert!(err.contains("--alerts off"), "{err}");

    std::fs::write(
        d.join("alerts.yml"),
        "interval: 1s\nalerts:\n  - name: Load\n    target: servers.*.loadavg.01\n    warning: 1\n    critical: 2\n",
    )
    .unwrap();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let (code, err) = up(&["--alerter-api", &addr]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains(&format!("alerter API {addr}")), "{err}");
    assert!(
        !d.join("data").exists(),
        "the store was opened before the startup error"
    );
}

/// With the HTTP API's auth set and no `api_auth` in alerts.yml, the alerter's own port asks
/// for the same credentials: neither port takes a silence without them.
#[test]
fn up_alerter_port_takes_the_http_apis_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("collectors.d")).unwrap();
    std::fs::write(
        d.join("collectors.d/host.yml"),
        "type: host\ninterval: 1s\n",
    )
    .unwrap();
    std::fs::write(
        d.join("alerts.yml"),
        "interval: 1s\nalerts:\n  - name: Load\n    target: servers.*.loadavg.01\n    warning: 100000\n    critical: 200000\n",
    )
    .unwrap();
    let api = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let api_arg = api.to_string();
    let c = Carbide::start_env(
        d,
        &common::up_args(&["--alerter-api", &api_arg]),
        &[("CARBIDE_HTTP_TOKEN", "up-t0ken")],
    );
    let silence = br#"{"alert": "Load", "duration": "1h", "comment": "c"}"#;
    let json = Some(("application/json", &silence[..]));
    let bearer = [("Authorization", "Bearer up-t0ken")];
    // The alerter's port answers once its first cycle ran (it waits for the agent).
    let answering = wait_until(Duration::from_secs(60), || {
        std::net::TcpStream::connect(api).is_ok()
            && common::http(api, "GET", "/api/alerts", &bearer, None).0 == 200
    });
    assert!(answering, "the alerter's API never answered at {api}");
    for addr in [api, c.http] {
        for (method, path, body) in [
            ("GET", "/", None),
            ("GET", "/api/silences", None),
            ("POST", "/api/silences", json),
            ("DELETE", "/api/silences/1", None),
        ] {
            let (st, text) = common::http(addr, method, path, &[], body);
            assert_eq!(st, 401, "{method} {addr}{path}: {text}");
            assert!(!text.contains("up-t0ken"), "{text}");
            let (st, _) = common::http(
                addr,
                method,
                path,
                &[("Authorization", "Bearer up-t0ke")],
                body,
            );
            assert_eq!(st, 401, "{method} {addr}{path} with a wrong token");
        }
    }
    let (st, text) = common::http(api, "POST", "/api/silences", &bearer, json);
    assert_eq!(st, 201, "{text}");
    let (st, text) = common::http(c.http, "GET", "/api/silences", &bearer, None);
    assert_eq!(st, 200, "{text}");
    assert!(text.contains("\"comment\":\"c\""), "{text}");
    assert!(c.stop());
    let log = std::fs::read_to_string(d.join("carbide.log")).unwrap();
    assert!(!log.contains("up-t0ken"), "{log}");
}

/// A webhook receiver on 127.0.0.1: every POST body, answered 200.
fn webhook() -> (
    String,
    std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
) {
    use std::io::{BufRead, BufReader, Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = got.clone();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let mut r = BufReader::new(s);
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0u8; len];
            if r.read_exact(&mut body).is_ok() {
                if let Ok(v) = serde_json::from_slice(&body) {
                    keep.lock().unwrap().push(v);
                }
            }
            let _ = r
                .get_mut()
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    (url, got)
}

/// `carbide up`'s first evaluation waits for the agent's first stored cycle (no NO_DATA page
/// for series about to arrive, no resolve a moment later), and a target that never returned
/// a series pages NO_DATA once, after its grace period.
#[test]
fn up_first_evaluation_waits_for_the_agent() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    common::up_host_agent(d);
    let (url, pages) = webhook();
    std::fs::write(
        d.join("alerts.yml"),
        format!(
            "interval: 1s
notifiers:
  hook: {{type: webhook, url: \"{url}\"}}
routes:
  critical: [hook]
  no_data: [hook]
alerts:
  - name: Load
    target: servers.uphost.loadavg.01
    warning: 100000
    critical: 200000
  - name: Missing
    target: servers.uphost.nothing_here
    warning: 1
    critical: 2
"
        ),
    )
    .unwrap();
    let c = Carbide::start(d, &common::up_args(&["--alerter-api", "off"]));
    let log = || std::fs::read_to_string(d.join("carbide.log")).unwrap_or_default();
    let missing = || {
        pages
            .lock()
            .unwrap()
            .iter()
            .filter(|p| p["alert"] == "Missing")
            .count()
    };
    assert!(
        wait_until(Duration::from_secs(60), || missing() >= 1),
        "no NO_DATA page for the missing target:\n{}",
        log()
    );
    // Its graph link opens a picture from this process's own render API (no graphite_url
    // in the file), and the message's "Graph:" line carries it.
    let page = pages
        .lock()
        .unwrap()
        .iter()
        .find(|p| p["alert"] == "Missing")
        .cloned()
        .unwrap();
    let graph = page["graph_url"].as_str().unwrap_or_default().to_string();
    let prefix = format!("http://{}/render/?", c.http);
    assert!(graph.starts_with(&prefix), "{page}");
    let (st, ct, png) = common::get_bytes(c.http, &graph[prefix.len() - "/render/?".len()..]);
    assert_eq!((st, ct.as_str()), (200, "image/png"), "{graph}");
    assert!(png.starts_with(b"\x89PNG"), "{graph}");
    let body = page["body"].as_str().unwrap_or_default();
    assert!(body.contains(&format!("Graph: {graph}")), "{body}");
    // A few more alerter cycles (its heartbeat in the store), then count.
    let heartbeats = || {
        let (_, body) = c.get("/render?target=carbide.alerter.heartbeat&from=-5min&format=json");
        series(&body)
            .iter()
            .flat_map(|(_, p)| p.iter())
            .filter(|(v, _)| v.is_some())
            .count()
    };
    let h0 = heartbeats();
    assert!(wait_until(Duration::from_secs(60), || heartbeats() >= h0 + 3));
    assert!(c.stop());
    let got = pages.lock().unwrap().clone();
    let summary: Vec<(String, String, String)> = got
        .iter()
        .map(|p| {
            (
                p["alert"].as_str().unwrap_or("").to_string(),
                p["level"].as_str().unwrap_or("").to_string(),
                p["action"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![("Missing".into(), "NO_DATA".into(), "trigger".into())],
        "{}",
        log()
    );
    assert!(
        log().contains("the agent's first cycle is stored"),
        "{}",
        log()
    );
}

/// Under `carbide up` an email carries the alert's graph inline, drawn in process from the
/// store the alert was evaluated on: the received message (parsed by Python's email
/// package) has its text as a plain part and an HTML part showing a PNG by `cid:` — a graph
/// of the link's size with the series in graphite-web's first colour and both threshold
/// lines.
#[test]
fn up_emails_carry_the_graph_inline() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    common::up_host_agent(d);
    let smtp = common::Smtp::start();
    std::fs::write(
        d.join("alerts.yml"),
        format!(
            "interval: 1s
notifiers:
  mail:
    type: email
    host: 127.0.0.1
    port: {}
    tls: none
    from: carbide <alerts@example.com>
    to: [oncall@example.com]
routes:
  critical: [mail]
alerts:
  - name: Load
    target: servers.uphost.loadavg.01
    warning: -2
    critical: -1
",
            smtp.port
        ),
    )
    .unwrap();
    let c = Carbide::start(d, &common::up_args(&["--alerter-api", "off"]));
    let log = || std::fs::read_to_string(d.join("carbide.log")).unwrap_or_default();
    assert!(
        wait_until(Duration::from_secs(90), || !smtp.messages().is_empty()),
        "no email:\n{}",
        log()
    );
    assert!(c.stop());
    let parts = &smtp.messages()[0];
    let text = parts
        .iter()
        .find(|p| p.content_type == "text/plain")
        .unwrap();
    let text = String::from_utf8_lossy(&text.body);
    assert!(text.contains("CRITICAL alert for Load"), "{text}");
    assert!(text.contains("Graph: http://"), "{text}");
    let (w, h, px) = common::graph_of_email(parts);
    assert_eq!((w, h), (586, 308));
    // graphite-web's first colour (blue) for the series, orange and red for the thresholds
    // (solid in the legend's boxes).
    for rgb in [[100, 100, 255], [255, 165, 0], [200, 0, 50]] {
        assert!(common::has_colour(&px, rgb), "no {rgb:?} in the graph");
    }
}
