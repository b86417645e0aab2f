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

/// `v` with every number as a float: graphite-web writes the counts of `events()` as Python
/// ints (`1`), carbide its values as floats (`1.0`); the values are what is compared.
fn numbers_as_floats(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Number(n) => n
            .as_f64()
            .and_then(serde_json::Number::from_f64)
            .map_or(Value::Number(n), Value::Number),
        Value::Array(a) => Value::Array(a.into_iter().map(numbers_as_floats).collect()),
        Value::Object(o) => Value::Object(
            o.into_iter()
                .map(|(k, v)| (k, numbers_as_floats(v)))
                .collect(),
        ),
        other => other,
    }
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
    // The events() render function reads the same events: one point per second, the
    // count of events in it, null elsewhere.
    for (target, window) in [
        ("events('a')", "from=1699999990&until=1700000400"),
        ("events(\"web\")", "from=1699999990&until=1700000400"),
        ("events('web','prod')", "from=1700000000&until=1700000299"),
        ("events('*')", "from=1700000000&until=1700000299"),
        ("events('ü')", "from=1700000000&until=1700000301"),
        ("events('nosuch')", "from=1700000000&until=1700000010"),
        (
            "drawAsInfinite(events('web'))",
            "from=1700000049&until=1700000102",
        ),
        (
            "timeShift(events('*'),'-1min')",
            "from=1700000100&until=1700000199",
        ),
        (
            "sumSeries(events('web'),events('a'))",
            "from=1699999990&until=1700000400",
        ),
    ] {
        let path = format!("/render?format=json&target={}&{window}", enc(target));
        let (gs, gb) = get(gw.addr, &path);
        let (cs, cb) = get(c.http, &path);
        assert_eq!((gs, cs), (200, 200), "{target}: {gb} | {cb}");
        assert_eq!(
            numbers_as_floats(json(&gb)),
            numbers_as_floats(json(&cb)),
            "{target} {window}"
        );
        let drawn = json(&cb)[0]["datapoints"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| !p[0].is_null())
            .count();
        assert_eq!(drawn == 0, target.contains("nosuch"), "{target}: {cb}");
    }
    // An event at `until` itself: graphite-web fails (IndexError, a 500); carbide leaves it
    // out.
    let path = format!(
        "/render?format=json&target={}&from=1700000000&until=1700000300",
        enc("events('ü')")
    );
    assert_eq!(get(gw.addr, &path).0, 500);
    let (cs, cb) = get(c.http, &path);
    assert_eq!(cs, 200, "{cb}");
    assert!(!json(&cb)[0]["datapoints"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| !p[0].is_null()));

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

/// The alerter with `events: true`, in process, over `graphite_url`, until `done` says so
/// (or a minute passes); the events go to `graphite_url` (events_url's default).
fn alerter_posting_events(
    dir: &std::path::Path,
    graphite_url: &str,
    smtp_port: u16,
    done: impl Fn() -> bool + Sync,
) {
    let file = dir.join("alerts.yml");
    let text = format!(
        "graphite_url: {graphite_url}\nstate_file: {}\ninterval: 1s\napi_listen: off\n\
         events: true\nnotifiers:\n  mail: {{type: email, host: 127.0.0.1, port: {smtp_port}, \
         tls: none, from: alerts@example.com, to: [oncall@example.com]}}\n\
         routes:\n  critical: [mail]\n\
         alerts:\n  - {{name: cpu, target: servers.a.cpu, warning: 0.5, \
         critical: 0.8, from: -10min}}\n  - {{name: quiet, target: servers.a.cpu, warning: 5, \
         critical: 8, from: -10min, events: false}}\n",
        dir.join("state.db").display()
    );
    let cfg = alerter::config::Config::from_str_with_env(&file, &text, &|_| None).unwrap();
    let cfg = std::sync::Arc::new(cfg);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            for _ in 0..600 {
                if done() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = stop.send(true);
        });
        rt.block_on(async {
            let backend = std::sync::Arc::new(
                alerter::pipeline::evaluate::RenderBackend::from_settings(
                    &cfg.graphite,
                    Duration::from_secs(10),
                )
                .unwrap(),
            );
            alerter::daemon::run_with(
                cfg.clone(),
                backend,
                alerter::outbox::RetryPolicy::default(),
                shutdown,
                alerter::daemon::Ticks::Interval,
                None,
                None,
            )
            .await
            .unwrap();
        });
    });
}

/// `events: true`: every level change of an alert is a Graphite event (tags `alert <name>
/// <level>`), posted to graphite-web 1.1.10 and to carbide serve alike, and read back from
/// their `/events/get_data` (and as a series through `events()`). The page's email carries
/// the graph each render API draws (graphite-web's cairo, carbide's own) inline.
#[test]
fn alerter_level_changes_are_events_in_graphite_web_and_carbide() {
    let dir = tempfile::tempdir().unwrap();
    let gw = graphite_web(&dir.path().join("gw"), &["servers.a.cpu"]);
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
    send_lines(c.carbon, &format!("servers.a.cpu 1 {}\n", now()));
    assert!(wait_until(Duration::from_secs(30), || get(
        c.http,
        "/render?format=json&target=servers.a.cpu&from=-10min"
    )
    .1
    .contains("[1.0,")));

    let started = now();
    let smtp = common::Smtp::start();
    for (run, (name, addr)) in [("carbide", c.http), ("graphite-web", gw.addr)]
        .into_iter()
        .enumerate()
    {
        let run_dir = dir.path().join(name);
        std::fs::create_dir_all(&run_dir).unwrap();
        let events = || {
            let (st, body) = get(addr, "/events/get_data?tags=alert");
            assert_eq!(st, 200, "{name}: {body}");
            json(&body)
        };
        alerter_posting_events(&run_dir, &format!("http://{addr}"), smtp.port, || {
            events().as_array().is_some_and(|a| !a.is_empty()) && smtp.messages().len() > run
        });
        let mails = smtp.messages();
        assert_eq!(mails.len(), run + 1, "{name}: one page, one email");
        let (w, h, px) = common::graph_of_email(&mails[run]);
        assert_eq!((w, h), (586, 308), "{name}");
        for rgb in [[100, 100, 255], [255, 165, 0], [200, 0, 50]] {
            assert!(
                common::has_colour(&px, rgb),
                "{name}: no {rgb:?} in the graph"
            );
        }
        let got = events();
        let got = got.as_array().unwrap();
        assert_eq!(got.len(), 1, "{name}: one level change, one event: {got:?}");
        let e = &got[0];
        assert_eq!(e["what"], "cpu CRITICAL", "{name}: {e}");
        assert_eq!(
            e["tags"],
            serde_json::json!(["alert", "cpu", "critical"]),
            "{name}"
        );
        let when = e["when"].as_i64().unwrap();
        assert!(when >= started - 1 && when <= now(), "{name}: {e}");
        assert!(
            e["data"]
                .as_str()
                .unwrap()
                .contains("servers.a.cpu was OK, value 1"),
            "{name}: {e}"
        );
        let (_, body) = get(addr, "/events/get_data?tags=alert%20critical%20cpu");
        assert_eq!(json(&body).as_array().map(Vec::len), Some(1), "{name}");
        // The same event through events() as a series.
        let (st, body) = get(
            addr,
            &format!(
                "/render?format=json&target={}&from={}&until={}",
                enc("events('alert')"),
                when - 5,
                when + 5
            ),
        );
        assert_eq!(st, 200, "{name}: {body}");
        let points = numbers_as_floats(json(&body)[0]["datapoints"].clone());
        assert_eq!(
            points[5],
            numbers_as_floats(serde_json::json!([1, when])),
            "{name}: {body}"
        );
    }
    assert!(c.stop());
}
