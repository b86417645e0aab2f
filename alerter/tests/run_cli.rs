//! The real `alerter` binary: run (SIGKILL mid-delivery and restart, HTTP API), dry-run,
//! replay, silence commands. (`alerter check` is in check_cli.rs.)

mod common;
use common::alerter;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::render::RenderServer;

fn write_config(dir: &Path, render: &str, hook: &str, api: &str) -> PathBuf {
    write_config_with(dir, render, hook, api, "")
}

fn write_config_with(dir: &Path, render: &str, hook: &str, api: &str, extra: &str) -> PathBuf {
    let path = dir.join("alerts.yml");
    std::fs::write(
        &path,
        format!(
            "docs_url: https://wiki.example.com/alerts
{extra}graphite_url: {render}
state_file: {state}
interval: 1s
api_listen: {api}
notifiers:
  hook:
    type: webhook
    url: {hook}
routes:
  critical: [hook]
  warning: [console]
alerts:
  - name: Load
    target: aliasByNode(servers.*.loadavg.01,1)
    warning: 10
    critical: 20
",
            state = dir.join("state.db").display()
        ),
    )
    .unwrap();
    path
}

/// A webhook receiver whose first request never gets an answer (the alerter is killed while
/// it waits); later requests get 200.
#[derive(Clone, Default)]
struct HangFirst {
    got: Arc<Mutex<Vec<(String, serde_json::Value)>>>,
    n: Arc<AtomicUsize>,
}

impl HangFirst {
    async fn start(self) -> std::net::SocketAddr {
        let me = self.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
                let me = me.clone();
                async move {
                    let key = headers
                        .get("idempotency-key")
                        .map(|v| v.to_str().unwrap().to_string())
                        .unwrap_or_default();
                    me.got
                        .lock()
                        .unwrap()
                        .push((key, serde_json::from_str(&body).unwrap()));
                    if me.n.fetch_add(1, Ordering::SeqCst) == 0 {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                    }
                    "ok"
                }
            }),
        );
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(l, app).await;
        });
        addr
    }

    fn got(&self) -> Vec<(String, serde_json::Value)> {
        self.got.lock().unwrap().clone()
    }
}

async fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..300 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_delivery_then_restart_delivers_once_and_resolves() {
    let dir = tempfile::tempdir().unwrap();
    let render = RenderServer::start().await;
    render.set("servers.web-1.loadavg.01", Some(25.0));
    let hook = HangFirst::default();
    let hook_addr = hook.clone().start().await;
    let api = common::free_addr();
    let file = write_config(
        dir.path(),
        &render.url(),
        &format!("http://{hook_addr}/hook"),
        &api.to_string(),
    );

    let mut first = Proc(
        alerter()
            .arg("run")
            .arg(&file)
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for("the page to reach the receiver", || hook.got().len() == 1).await;
    first.0.kill().unwrap(); // SIGKILL while the receiver holds the request
    first.0.wait().unwrap();

    let _second = Proc(
        alerter()
            .arg("run")
            .arg(&file)
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for("the re-send after restart", || hook.got().len() == 2).await;
    // A few more cycles: nothing new while the level stays CRITICAL.
    let before = render.requests();
    wait_for("three more cycles", || render.requests() >= before + 3).await;
    let got = hook.got();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(
        got[0].0, got[1].0,
        "the re-send carries the same Idempotency-Key"
    );
    assert_eq!(got[1].1["level"], "CRITICAL");
    assert_eq!(
        got[1].1["runbook_url"],
        "https://wiki.example.com/alerts/Load#web-1"
    );

    // The HTTP API shows the state.
    let http = reqwest::Client::new();
    let alerts: serde_json::Value = http
        .get(format!("http://{api}/api/alerts"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(alerts[0]["series"], "web-1");
    assert_eq!(alerts[0]["level"], "CRITICAL");
    assert_eq!(alerts[0]["notified_level"], "CRITICAL");
    let resp = http.post(format!("http://{api}/api/silences")).json(&serde_json::json!({"alert": "Load", "series": "db-*", "duration": "1h", "comment": "maintenance"})).send().await.unwrap();
    assert_eq!(resp.status(), 201);
    let silences: serde_json::Value = http
        .get(format!("http://{api}/api/silences"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(silences[0]["series_glob"], "db-*");
    let bad = http
        .post(format!("http://{api}/api/silences"))
        .json(&serde_json::json!({"duration": "soon"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    // The alert's definition comes with its state (the console's page shows it).
    assert_eq!(alerts[0]["target"], "aliasByNode(servers.*.loadavg.01,1)");
    assert_eq!(
        alerts[0]["runbook"],
        "https://wiki.example.com/alerts/Load#web-1"
    );
    assert_eq!(alerts[0]["threshold"], alerts[0]["critical"]);
    // The outbox: the page that was delivered.
    let outbox: serde_json::Value = http
        .get(format!("http://{api}/api/outbox"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        outbox["counts"]["delivered"].as_i64() >= Some(1),
        "{outbox}"
    );
    assert_eq!(outbox["notifications"][0]["alert"], "Load", "{outbox}");
    assert_eq!(outbox["notifications"][0]["level"], "CRITICAL", "{outbox}");
    // The web console's alert pages on the same port.
    let page = http.get(format!("http://{api}/")).send().await.unwrap();
    assert!(page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("script-src 'self'"));
    let page = page.text().await.unwrap();
    assert!(
        page.contains(r#"<meta name="carbide-features" content="alerts">"#),
        "{page}"
    );

    // Resolve after the restart.
    render.set("servers.web-1.loadavg.01", Some(1.0));
    wait_for("the resolve", || hook.got().len() == 3).await;
    let got = hook.got();
    assert_eq!(got[2].1["action"], "resolve");
    let history: serde_json::Value = http
        .get(format!("http://{api}/api/history"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(history[0]["level"], "OK");
    assert_eq!(history[1]["level"], "CRITICAL");
    assert_eq!(
        history.as_array().unwrap().len(),
        2,
        "no second CRITICAL change after restart"
    );
}

async fn output(mut cmd: Command) -> (i32, String, String) {
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_prints_what_would_be_sent_and_saves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let render = RenderServer::start().await;
    render.set("servers.web-1.loadavg.01", Some(25.0));
    render.set("servers.web-2.loadavg.01", Some(12.0));
    render.set("servers.web-3.loadavg.01", Some(1.0));
    let file = write_config(dir.path(), &render.url(), "http://127.0.0.1:9/hook", "off");
    let mut cmd = alerter();
    cmd.arg("dry-run").arg(&file);
    let (code, out, err) = output(cmd).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("change "), "{out}");
    assert!(out.contains("\"Load\" \"web-1\": OK -> CRITICAL"), "{out}");
    assert!(out.contains("would send to hook: Trigger"), "{out}");
    assert!(
        out.contains(
            "CRITICAL alert for Load web-1 value=25 runbook=https://wiki.example.com/alerts/Load#web-1 graph="
        ),
        "{out}"
    );
    assert!(out.contains("would send to console: Trigger"), "{out}");
    assert!(
        out.contains(
            "3 alert series evaluated (OK=1 WARNING=1 CRITICAL=1); 2 notifications would be sent"
        ),
        "{out}"
    );
    assert!(
        !dir.path().join("state.db").exists(),
        "dry-run created the state file"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_prints_the_timeline_of_level_changes() {
    let dir = tempfile::tempdir().unwrap();
    let render = RenderServer::start().await;
    render.set_points(
        "servers.web-1.loadavg.01",
        vec![
            (1020, Some(5.0)),
            (1080, Some(15.0)),
            (1140, Some(25.0)),
            (1200, Some(25.0)),
            (1260, Some(1.0)),
        ],
    );
    let file = write_config(dir.path(), &render.url(), "http://127.0.0.1:9/hook", "off");
    let mut cmd = alerter();
    cmd.args([
        "replay", "--from", "1020", "--until", "1260", "--step", "1m",
    ])
    .arg(&file);
    let (code, out, err) = output(cmd).await;
    assert_eq!(code, 0, "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(
        lines[0].ends_with("1080 \"Load\" \"web-1\": OK -> WARNING value=15"),
        "{out}"
    );
    assert!(
        lines[1].ends_with("1140 \"Load\" \"web-1\": WARNING -> CRITICAL value=25"),
        "{out}"
    );
    assert!(
        lines[2].ends_with("1260 \"Load\" \"web-1\": CRITICAL -> OK value=1"),
        "{out}"
    );
    assert_eq!(
        lines[3],
        "5 steps from 1970-01-01T00:17:00Z to 1970-01-01T00:21:00Z, 3 level changes"
    );
    // Each step fetched with explicit epochs: from = step - 1min, until = step.
    let reqs = render.data.lock().unwrap().requests.clone();
    assert_eq!(reqs.len(), 5);
    assert_eq!(
        (reqs[1].1.as_str(), reqs[1].2.as_deref()),
        ("1020", Some("1080"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silence_commands_add_list_expire() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_config(
        dir.path(),
        "http://127.0.0.1:9",
        "http://127.0.0.1:9/hook",
        "off",
    );
    let run = |args: &[&str]| {
        let mut c = alerter();
        c.args(args).arg("-f").arg(&file).current_dir(dir.path());
        output(c)
    };
    let add = [
        "silence",
        "add",
        "--alert",
        "Load",
        "--series",
        "web-*",
        "--for",
        "2h",
        "--comment",
        "deploy",
    ];
    // No API and no state file: nothing would see the silence.
    let (code, out, err) = run(&add).await;
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("the silence would reach nothing"), "{err}");
    assert!(!dir.path().join("state.db").exists() && !dir.path().join("alerter.db").exists());
    // An alert glob that matches no alert of the file reaches nothing either.
    let (code, _, err) = run(&["silence", "add", "--alert", "Lod", "--for", "1h"]).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("matches no alert"), "{err}");

    // The state file an alerter uses (created by it): the silence goes there, and says so.
    alerter::outbox::Outbox::open(&dir.path().join("state.db"))
        .await
        .unwrap()
        .close()
        .await;
    let (code, out, err) = run(&add).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with("silence 1: alert \"Load\" series \"web-*\" until "),
        "{out}"
    );
    assert!(out.contains("added to the state file"), "{out}");
    let (_, out, _) = run(&["silence", "list"]).await;
    let rows: Vec<&str> = out.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(rows.len(), 1, "{out}");
    assert!(
        rows[0].starts_with("1\talert \"Load\"\tseries \"web-*\"\tuntil "),
        "{out}"
    );
    assert!(rows[0].ends_with("deploy"), "{out}");
    let (code, out, _) = run(&["silence", "expire", "1"]).await;
    assert_eq!(code, 0);
    assert!(out.starts_with("silence 1 expired"), "{out}");
    let (_, out, _) = run(&["silence", "list"]).await;
    assert_eq!(
        out.lines().filter(|l| !l.starts_with('#')).count(),
        0,
        "{out}"
    );
    let (code, _, err) = run(&["silence", "expire", "1"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("no active silence with id 1"), "{err}");
    // A brace bomb is refused with graphite's glob error.
    let bomb = "{a,b,c,d,e,f,g,h,i,j}".repeat(5);
    let (code, _, err) = run(&["silence", "add", "--series", &bomb, "--for", "1h"]).await;
    assert_ne!(code, 0);
    assert!(err.contains("variants"), "{err}");
    let (code, _, err) = run(&["silence", "add", "--for", "soon"]).await;
    assert_eq!(code, 2, "{err}");
}

/// `alerter silence add` reaches the running alerter through its API (and says so), from
/// any directory: no stray `alerter.db` in the working directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silence_add_acts_on_the_running_alerter() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let render = RenderServer::start().await;
    render.set("servers.web-1.loadavg.01", Some(1.0));
    let api = common::free_addr();
    let file = write_config(
        dir.path(),
        &render.url(),
        "http://127.0.0.1:9/hook",
        &api.to_string(),
    );
    let _running = Proc(
        alerter()
            .arg("run")
            .arg(&file)
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let http = reqwest::Client::new();
    for _ in 0..300 {
        if http
            .get(format!("http://{api}/api/silences"))
            .send()
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut c = alerter();
    c.args(["silence", "add", "--alert", "Load", "--for", "1h", "-f"])
        .arg(&file)
        .current_dir(elsewhere.path());
    let (code, out, err) = output(c).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!("added to the running alerter at http://{api}")),
        "{out}"
    );
    let silences: serde_json::Value = http
        .get(format!("http://{api}/api/silences"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(silences.as_array().unwrap().len(), 1, "{silences}");
    assert_eq!(silences[0]["alert_glob"], "Load");
    assert_eq!(std::fs::read_dir(elsewhere.path()).unwrap().count(), 0);
}

/// With `api_auth`, everything on the API's port — the JSON API, silences, the console —
/// needs the credentials (basic or bearer, as carbide's HTTP API); `alerter silence` sends
/// the file's, and says what is missing when it has none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_auth_guards_the_api_silences_and_the_console() {
    let dir = tempfile::tempdir().unwrap();
    let render = RenderServer::start().await;
    render.set("servers.web-1.loadavg.01", Some(1.0));
    let api = common::free_addr();
    let file = write_config_with(
        dir.path(),
        &render.url(),
        "http://127.0.0.1:9/hook",
        &api.to_string(),
        "api_auth:\n  user: ops\n  password: ${ALERTER_TEST_PASSWORD}\n  token: t0ken-of-the-test\n",
    );
    let _running = Proc(
        alerter()
            .env("ALERTER_TEST_PASSWORD", "pa55-of-the-test")
            .arg("run")
            .arg(&file)
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let http = reqwest::Client::new();
    let base = format!("http://{api}");
    let mut up = false;
    for _ in 0..300 {
        if http.get(format!("{base}/")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "the alerter's API never answered at {base}");
    let silence = serde_json::json!({"alert": "Load", "duration": "1h", "comment": "no"});
    // Nothing without credentials, nor with wrong ones.
    for (method, path) in [
        ("GET", "/"),
        ("GET", "/assets/app.js"),
        ("GET", "/api/alerts"),
        ("GET", "/api/silences"),
        ("POST", "/api/silences"),
        ("DELETE", "/api/silences/1"),
        ("GET", "/api/outbox"),
        ("GET", "/api/history"),
    ] {
        for auth in [
            None,
            Some("Bearer wrong"),
            Some("Basic b3BzOndyb25n"), // ops:wrong
            Some("Bearer t0ken-of-the-tes"),
        ] {
            let mut req = http.request(method.parse().unwrap(), format!("{base}{path}"));
            if method == "POST" {
                req = req.json(&silence);
            }
            if let Some(a) = auth {
                req = req.header("authorization", a);
            }
            let resp = req.send().await.unwrap();
            assert_eq!(resp.status(), 401, "{method} {path} with {auth:?}");
            assert_eq!(
                resp.headers()["www-authenticate"],
                "Basic realm=\"carbide alerter\"",
                "a browser asks for the credentials"
            );
            let body = resp.text().await.unwrap();
            assert!(body.contains("authentication required"), "{body}");
            assert!(!body.contains("pa55") && !body.contains("t0ken"), "{body}");
        }
    }
    // No silence was added by those requests.
    let basic = "Basic b3BzOnBhNTUtb2YtdGhlLXRlc3Q="; // ops:pa55-of-the-test
    let listed: serde_json::Value = http
        .get(format!("{base}/api/silences"))
        .header("authorization", basic)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed, serde_json::json!([]));
    // Basic (the password from the environment) or bearer: either is accepted.
    let resp = http
        .post(format!("{base}/api/silences"))
        .header("authorization", basic)
        .json(&silence)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let id = resp.json::<serde_json::Value>().await.unwrap()["id"].clone();
    let page = http
        .get(format!("{base}/"))
        .header("authorization", "Bearer t0ken-of-the-test")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("carbide-features"));
    let resp = http
        .delete(format!("{base}/api/silences/{id}"))
        .header("authorization", "Bearer t0ken-of-the-test")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);

    // The CLI sends the file's credentials to the running alerter.
    let mut c = alerter();
    c.env("ALERTER_TEST_PASSWORD", "pa55-of-the-test")
        .args(["silence", "add", "--alert", "Load", "--for", "1h", "-f"])
        .arg(&file);
    let (code, out, err) = output(c).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!("added to the running alerter at {base}")),
        "{out}"
    );
    // Without them (another file naming the same port) it is refused, and says why; the
    // state file is not written behind the running alerter's back.
    let other = tempfile::tempdir().unwrap();
    let bare = write_config(
        other.path(),
        &render.url(),
        "http://127.0.0.1:9/hook",
        &api.to_string(),
    );
    let mut c = alerter();
    c.args(["silence", "add", "--alert", "Load", "--for", "1h", "-f"])
        .arg(&bare);
    let (code, out, err) = output(c).await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("requires credentials: set api_auth"), "{err}");
    assert!(!err.contains("pa55") && !err.contains("t0ken"), "{err}");
    let listed: serde_json::Value = http
        .get(format!("{base}/api/silences"))
        .header("authorization", basic)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_and_a_bad_file_keeps_the_running_config() {
    let dir = tempfile::tempdir().unwrap();
    let render = RenderServer::start().await;
    render.set("servers.web-1.loadavg.01", Some(25.0));
    render.set("servers.db-1.disk.free", Some(3.0));
    let hook = HangFirst::default();
    hook.n.store(1, Ordering::SeqCst); // no hanging here: every request answered
    let hook_addr = hook.clone().start().await;
    let hook_url = format!("http://{hook_addr}/hook");
    let file = write_config(dir.path(), &render.url(), &hook_url, "off");
    let log = dir.path().join("stderr.log");
    let mut cmd = alerter();
    cmd.env("RUST_LOG", "info")
        .arg("run")
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    let child = Proc(cmd.spawn().unwrap());
    let pid = child.0.id() as i32;
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    wait_for("the Load page", || hook.got().len() == 1).await;

    // A bad file: the error with its position is logged, the old config keeps running.
    let good = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        good.replace("    critical: 20\n", "    critcal: 20\n"),
    )
    .unwrap();
    unsafe { libc::kill(pid, libc::SIGHUP) };
    wait_for("the reload error", || {
        read_log().contains("reload failed; still running the previous configuration")
    })
    .await;
    let text = read_log();
    assert!(
        text.contains(
            "alerts.yml:17:5: alerts[0]: unknown key \"critcal\": did you mean \"critical\"?"
        ),
        "{text}"
    );
    let before = render.requests();
    wait_for("two more cycles on the old config", || {
        render.requests() >= before + 2
    })
    .await;
    assert_eq!(hook.got().len(), 1, "no re-page");

    // A good file with a second alert: it pages; Load keeps its state (no second page).
    std::fs::write(
        &file,
        format!(
            "{good}  - name: Disk free\n    target: servers.db-1.disk.free\n    warning: 20\n    critical: 10\n"
        ),
    )
    .unwrap();
    unsafe { libc::kill(pid, libc::SIGHUP) };
    wait_for("the new alert's page", || hook.got().len() == 2).await;
    assert!(
        read_log().contains("configuration reloaded"),
        "{}",
        read_log()
    );
    let got = hook.got();
    assert_eq!(got[1].1["alert"], "Disk free");
    assert_eq!(got[1].1["level"], "CRITICAL");
    let before = render.requests();
    wait_for("two more cycles on the new config", || {
        render.requests() >= before + 4
    })
    .await;
    assert_eq!(
        hook.got().len(),
        2,
        "Load was not paged again: {:?}",
        hook.got()
    );

    // The firing "Disk free" alert removed from the file: its resolve is sent, once.
    std::fs::write(&file, &good).unwrap();
    unsafe { libc::kill(pid, libc::SIGHUP) };
    wait_for("the removed alert's resolve", || hook.got().len() == 3).await;
    let got = hook.got();
    assert_eq!(got[2].1["alert"], "Disk free");
    assert_eq!(got[2].1["level"], "OK");
    assert_eq!(got[2].1["previous_level"], "CRITICAL");
    let before = render.requests();
    wait_for("two more cycles", || render.requests() >= before + 2).await;
    assert_eq!(hook.got().len(), 3, "{:?}", hook.got());
    drop(child);
}

/// One command-line manner: `--version`, `--log-level`, no colours in a log file, exit 2 on
/// a configuration or usage error, values that look like flags (`--from -10min`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_manner_version_log_level_colours_exit_codes() {
    let mut cmd = alerter();
    cmd.arg("--version");
    let (code, out, err) = output(cmd).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.trim(),
        format!("alerter {}", env!("CARGO_PKG_VERSION")),
        "{out}"
    );

    let dir = tempfile::tempdir().unwrap();
    let render = RenderServer::start().await;
    render.set("servers.web-1.loadavg.01", Some(25.0));
    let file = write_config(dir.path(), &render.url(), "http://127.0.0.1:9/hook", "off");

    // A value starting with '-' is the option's value, not a flag.
    let mut cmd = alerter();
    cmd.args([
        "replay", "--from", "-10min", "--until", "-5min", "--step", "1m",
    ])
    .arg(&file);
    let (code, out, err) = output(cmd).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("6 steps from "), "{out}");

    // A bad time is a usage error: exit 2, naming the option.
    let mut cmd = alerter();
    cmd.args(["replay", "--from", "-10 parsecs"]).arg(&file);
    let (code, _, err) = output(cmd).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--from \"-10 parsecs\""), "{err}");

    // --log-level wins over RUST_LOG (warn here); stderr to a file gets no ANSI colours.
    let log = dir.path().join("stderr.log");
    let mut cmd = alerter();
    cmd.args(["--log-level", "info", "run"])
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    let child = Proc(cmd.spawn().unwrap());
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    wait_for("the first info line", || {
        read_log().contains("evaluating 1 alerts every 1s")
    })
    .await;
    drop(child);
    let text = read_log();
    assert!(!text.contains('\u{1b}'), "colours in a log file: {text:?}");
    assert!(text.contains(" INFO "), "{text}");
}
