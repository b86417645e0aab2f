//! End to end against the real thing: a real carbon-cache (Debian `graphite-carbon`) writes
//! whisper files, real graphite-web 1.1.10 (the venv of `tests/graphite-web/setup.sh`) serves
//! them over HTTP, and the real `alerter` binary evaluates Graphite Pager alerts against it —
//! `dry-run`, then `run` rounds delivering to a local webhook and a local Slack receiver.
//!
//! No graphite-web venv is a failure with the fix in the message, never a skip: `tests/run`
//! builds it (cached, idempotent) before `cargo test`.

mod common;
use common::alerter;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::carbon::Carbon;
use common::Receiver;

/// graphite-web over HTTP on 127.0.0.1, reading `storage/whisper`; stops on drop.
struct GraphiteWeb {
    child: Child,
    port: u16,
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

impl GraphiteWeb {
    fn start(python: &Path, storage: &Path) -> GraphiteWeb {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/graphite_web_server.py");
        let mut child = Command::new(python)
            .arg(script)
            .arg(storage)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("READY ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("graphite-web did not start: {line:?}"));
        GraphiteWeb { child, port }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for GraphiteWeb {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Send `value` for `path` at every second of `[t - 40, t]` to carbon's line receiver, and
/// wait until carbon has written the last one.
fn load(carbon: &Carbon, points: &[(&str, f64)], t: i64) {
    let mut s = std::net::TcpStream::connect(carbon.addr()).unwrap();
    let mut text = String::new();
    for (path, v) in points {
        for ts in t - 40..=t {
            text.push_str(&format!("{path} {v} {ts}\n"));
        }
    }
    s.write_all(text.as_bytes()).unwrap();
    drop(s);
    for (path, v) in points {
        carbon.fetch_until(path, |p| p.iter().any(|(ts, x)| *ts == t && *x == Some(*v)));
    }
}

fn config(dir: &Path, graphite: &str, hook: &str, slack: &str) -> PathBuf {
    let path = dir.join("alerts.yml");
    std::fs::write(
        &path,
        format!(
            r#"docs_url: https://wiki.example.com/alerts
graphite_url: {graphite}
slack_url: {slack}
state_file: {state}
interval: 1s
api_listen: off
notifiers:
  hook:
    type: webhook
    url: {hook}
routes:
  critical: [hook, slack]
  warning: [slack]
alerts:
  - name: Load
    target: aliasByNode(servers.*.loadavg.01,1)
    warning: 10
    critical: 20
    from: -10min
  - name: Disk free
    target: servers.db-1.disk.free
    warning: 20
    critical: 10
    from: -10min
    doc_url: https://runbooks.example.com
  - name: HAProxy check duration
    target: aliasByNode(movingMedian(groupByNode(servers.*.haproxy.*.*.check_duration,3,"averageSeries"),10),0)
    warning: 500
    critical: 1000
    from: -10min
"#,
            state = dir.join("state.db").display()
        ),
    )
    .unwrap();
    path
}

async fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..600 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_against_real_graphite_web_over_carbon_written_whisper() {
    let python = venv_python(); // first: a missing venv fails at once
    let carbon = Carbon::start_with_schema("1s:1h");
    let t0 = now();
    load(
        &carbon,
        &[
            ("servers.web-1.loadavg.01", 25.0),
            ("servers.web-2.loadavg.01", 12.5),
            ("servers.web-3.loadavg.01", 1.0),
            ("servers.db-1.disk.free", 5.0),
            ("servers.lb-1.haproxy.app.s1.check_duration", 1200.0),
            ("servers.lb-2.haproxy.app.s1.check_duration", 1000.0),
            ("servers.lb-1.haproxy.api.s1.check_duration", 100.0),
        ],
        t0,
    );
    let gw = GraphiteWeb::start(&python, &carbon.dir().join("storage"));
    let dir = tempfile::tempdir().unwrap();
    let hook = Receiver::start(vec![200]).await;
    let slack = Receiver::start(vec![200]).await;
    let file = config(
        dir.path(),
        &gw.url(),
        &hook.url("/hook"),
        &slack.url("/services/T000/B000/SLACKSEKRET"),
    );

    // dry-run: levels, series names (aliasByNode over a glob, groupByNode), values, links.
    let out = {
        let mut c = alerter();
        c.arg("dry-run").arg(&file);
        tokio::task::spawn_blocking(move || c.output().unwrap())
            .await
            .unwrap()
    };
    let (stdout, stderr) = (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    );
    assert!(out.status.success(), "{stdout}{stderr}");
    for want in [
        "\"Load\" \"web-1\": OK -> CRITICAL",
        "\"Load\" \"web-2\": OK -> WARNING",
        "\"Disk free\" \"servers.db-1.disk.free\": OK -> CRITICAL",
        "\"HAProxy check duration\" \"app\": OK -> CRITICAL",
        "CRITICAL alert for Load web-1 value=",
        "runbook=https://wiki.example.com/alerts/Load#web-1 graph=http://127.0.0.1:",
        "WARNING alert for Load web-2 value=",
        "runbook=https://wiki.example.com/alerts/Load#web-2 graph=",
        "runbook=https://runbooks.example.com/Disk%20free#servers.db-1.disk.free",
        "runbook=https://wiki.example.com/alerts/HAProxy%20check%20duration#app",
        "6 alert series evaluated (OK=2 WARNING=1 CRITICAL=3); 7 notifications would be sent, 0 held by silences, 0 fetch errors",
    ] {
        assert!(stdout.contains(want), "wanted {want:?} in:\n{stdout}{stderr}");
    }
    assert!(!stdout.contains("web-3\": OK"), "{stdout}");
    assert!(!stdout.contains("SLACKSEKRET") && !stderr.contains("SLACKSEKRET"));
    assert!(!dir.path().join("state.db").exists());

    // run: every page once, to the routed receivers, with graphite-web's values.
    let _run = Proc(
        alerter()
            .arg("run")
            .arg(&file)
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for("3 CRITICAL pages on the webhook, 4 Slack posts", || {
        hook.requests().len() >= 3 && slack.requests().len() >= 4
    })
    .await;
    let mut pages: Vec<(String, String, String, f64, String)> = hook
        .requests()
        .iter()
        .map(|g| {
            let j = g.json();
            assert_eq!(j["action"], "trigger", "{j}");
            (
                j["alert"].as_str().unwrap().to_string(),
                j["series"].as_str().unwrap().to_string(),
                j["level"].as_str().unwrap().to_string(),
                j["value"].as_f64().unwrap(),
                j["runbook_url"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    pages.sort_by(|a, b| a.0.cmp(&b.0));
    let s = |x: &str| x.to_string();
    assert_eq!(
        pages,
        vec![
            (
                s("Disk free"),
                s("servers.db-1.disk.free"),
                s("CRITICAL"),
                5.0,
                s("https://runbooks.example.com/Disk%20free#servers.db-1.disk.free")
            ),
            (
                s("HAProxy check duration"),
                s("app"),
                s("CRITICAL"),
                1100.0,
                s("https://wiki.example.com/alerts/HAProxy%20check%20duration#app")
            ),
            (
                s("Load"),
                s("web-1"),
                s("CRITICAL"),
                25.0,
                s("https://wiki.example.com/alerts/Load#web-1")
            ),
        ]
    );
    let warning = slack
        .requests()
        .iter()
        .map(|g| g.json())
        .find(|j| j["text"] == "WARNING alert for Load web-2")
        .expect("a Slack post for web-2's WARNING");
    let att = &warning["attachments"][0];
    assert_eq!(
        att["title_link"],
        "https://wiki.example.com/alerts/Load#web-2"
    );
    assert!(
        att["text"]
            .as_str()
            .unwrap()
            .contains("The current value is 12.5 which passes the warning value of 10"),
        "{att}"
    );
    assert!(
        slack
            .requests()
            .iter()
            .all(|g| g.path == "/services/T000/B000/SLACKSEKRET"),
        "posted to the configured webhook path"
    );

    // web-1 recovers (newer points through carbon): one resolve on each receiver.
    load(&carbon, &[("servers.web-1.loadavg.01", 2.0)], now());
    wait_for("the resolve on the webhook", || hook.requests().len() >= 4).await;
    let resolve = hook.requests()[3].json();
    assert_eq!(
        (
            &resolve["action"],
            &resolve["series"],
            &resolve["level"],
            &resolve["previous_level"]
        ),
        (
            &serde_json::json!("resolve"),
            &serde_json::json!("web-1"),
            &serde_json::json!("OK"),
            &serde_json::json!("CRITICAL")
        ),
        "{resolve}"
    );
    assert_eq!(resolve["value"], 2.0);
    wait_for("the resolve on Slack", || slack.requests().len() >= 5).await;
    assert_eq!(
        slack.requests()[4].json()["attachments"][0]["title"],
        "RESOLVED Load web-1 (now OK)"
    );
    assert_eq!(hook.requests().len(), 4, "every page once");
}
