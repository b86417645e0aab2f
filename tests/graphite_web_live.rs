//! carbide against the real graphite-web 1.1.10 over HTTP (the venv of
//! `tests/graphite-web/setup.sh`, served by `tests/graphite-web/live_server.py`): the same
//! series and the same events given to both must give the same answers — the events API
//! (`POST /events/`, `GET /events/get_data`, an event's JSON) and `/metrics/find`'s tree,
//! where tagged series do not appear.
//!
//! No graphite-web venv is a failure with the fix in the message, never a skip: `tests/run`
//! builds it (cached, idempotent) before `cargo test`.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{enc, http, now, send_lines, wait_until, Carbide};

struct GraphiteWeb {
    child: Child,
    addr: SocketAddr,
}

impl Drop for GraphiteWeb {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

fn venv_python() -> PathBuf {
    let venv = std::env::var_os("GRAPHITE_WEB_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME"))
                .join(".cache/carbide-graphite-web-venv")
        });
    let py = venv.join("bin/python");
    assert!(
        py.exists() && venv.join(".carbide-setup-ok").exists(),
        "no graphite-web 1.1.10 venv at {}: this test needs the real graphite-web; build it \
         with tests/graphite-web/setup.sh (tests/run does, before cargo test)",
        venv.display()
    );
    py
}

fn graphite_web(storage: &std::path::Path, paths: &[&str]) -> GraphiteWeb {
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/graphite-web/live_server.py");
    let mut child = Command::new(venv_python())
        .arg(script)
        .arg(storage)
        .args(paths)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line
        .trim()
        .strip_prefix("READY ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("graphite-web did not start: {line:?}"));
    GraphiteWeb {
        child,
        addr: ([127, 0, 0, 1], port).into(),
    }
}

const PATHS: &[&str] = &[
    "servers.a.cpu",
    "servers.b.mem",
    "servers.c;role=web",
    "cpu;host=h1",
    "disk.used;dc=x;host=h1",
];

fn get(addr: SocketAddr, q: &str) -> (u16, String) {
    http(addr, "GET", q, &[], None)
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[test]
fn events_and_the_metric_tree_answer_as_graphite_web() {
    let dir = tempfile::tempdir().unwrap();
    let gw = graphite_web(&dir.path().join("gw"), PATHS);
    let c = Carbide::start(
        dir.path(),
        &[
            "serve",
            "--data-dir",
            "data",
            "--carbon-tcp",
            "127.0.0.1:0",
            "--carbon-udp",
            "off",
            "--http-listen",
            "127.0.0.1:0",
        ],
    );
    let t = now();
    let lines: String = PATHS.iter().map(|p| format!("{p} 1 {t}\n")).collect();
    send_lines(c.carbon, &lines);
    assert!(wait_until(Duration::from_secs(30), || {
        get(c.http, "/metrics/find?query=servers.*")
            .1
            .contains("servers.b")
            && get(
                c.http,
                &format!("/metrics/find?query={}", enc("cpu;host=h1")),
            )
            .1
            .contains("leaf")
    }));

    // The tree: graphite-web's root holds `_tagged`, the directory carbon writes tagged
    // series under (by hash); carbide has no such directory. Everything else is the same:
    // no tagged series, and no branch made only by them (`disk`).
    for q in [
        "*",
        "servers.*",
        "disk.*",
        "cpu;host=h1",
        "servers.c;role=web",
        "servers.*.*",
    ] {
        let path = format!("/metrics/find?query={}", enc(q));
        let (gs, gb) = get(gw.addr, &path);
        let (cs, cb) = get(c.http, &path);
        assert_eq!((gs, cs), (200, 200), "{q}: {gb} | {cb}");
        let mut g = json(&gb);
        if let Some(a) = g.as_array_mut() {
            a.retain(|n| {
                n["id"] != "_tagged" && !n["id"].as_str().unwrap_or("").starts_with("_tagged.")
            });
        }
        assert_eq!(g, json(&cb), "/metrics/find?query={q}");
    }

    // The same events to both.
    let events = [
        r#"{"what": "deploy", "tags": ["b", "a", "a", "B"], "data": "v1", "when": 1700000000}"#,
        r#"{"what": "deploy2", "tags": "web  prod", "when": 1700000100.7}"#,
        r#"{"what": "restart", "tags": "web", "data": "after deploy", "when": 1700000050}"#,
        r#"{"what": "untagged", "when": 1700000200}"#,
        r#"{"what": "é ünïcode \"quoted\"", "tags": ["ü"], "when": 1700000300}"#,
    ];
    for e in events {
        for addr in [gw.addr, c.http] {
            let (st, body) = http(
                addr,
                "POST",
                "/events/",
                &[],
                Some(("application/json", e.as_bytes())),
            );
            assert_eq!(st, 200, "{addr} {e}: {body}");
        }
    }
    let bad = r#"{"what": "x", "tags": 5}"#;
    for addr in [gw.addr, c.http] {
        let (st, body) = http(
            addr,
            "POST",
            "/events/",
            &[],
            Some(("application/json", bad.as_bytes())),
        );
        assert_eq!(st, 400, "{body}");
        assert!(
            body.contains("must be an array or space-separated string"),
            "{body}"
        );
    }
    for q in [
        "",
        "tags=a",
        "tags=a%20b",
        "tags=A",
        "tags=web",
        "tags=web%20prod",
        "tags=web%20a&set=union",
        "tags=%C3%BC",
        "from=1699999990&until=1700000050",
        "from=1700000051&until=1700000100",
        "from=20231114&until=20231115",
        "from=22:13_20231114&until=22:16_20231114&tags=web",
        "jsonp=cb&tags=prod",
    ] {
        let path = format!("/events/get_data?{q}");
        let (gs, gb) = get(gw.addr, &path);
        let (cs, cb) = get(c.http, &path);
        assert_eq!((gs, cs), (200, 200), "{q}: {gb} | {cb}");
        assert_eq!(gb, cb, "/events/get_data?{q}");
    }
    let accept = [("Accept", "application/json")];
    let (gs, gb) = http(gw.addr, "GET", "/events/1/", &accept, None);
    let (cs, cb) = http(c.http, "GET", "/events/1/", &accept, None);
    assert_eq!((gs, cs), (200, 200));
    assert_eq!(json(&gb), json(&cb));

    // carbide deletes by id (graphite-web does it in its admin pages).
    let (st, _) = http(c.http, "DELETE", "/events/1/", &[], None);
    assert_eq!(st, 204);
    let (st, body) = http(c.http, "GET", "/events/1/", &accept, None);
    assert_eq!(st, 404, "{body}");
    let (_, body) = get(c.http, "/events/get_data?tags=a");
    assert_eq!(body, "[]");
    let (_, page) = get(c.http, "/events/");
    assert!(
        page.contains("deploy2") && page.contains("&quot;quoted&quot;"),
        "{page}"
    );
    assert!(c.stop());
}
