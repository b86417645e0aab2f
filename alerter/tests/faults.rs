//! The real `alerter run` binary under real faults: its state file on a small tmpfs that
//! fills up (while a page is being delivered, while levels change), a reload renaming a
//! notifier, a receiver failing one alert's pages forever. Asserted by counting what a real
//! HTTP receiver got: pages triggered = pages delivered (+ counted expiries), no duplicates.

mod common;

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use common::alerter;
use common::render::RenderServer;

/// A tmpfs of `size`, mounted for one test (root, as in CI); unmounted on drop.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("mount(8)");
        assert!(
            st.success(),
            "mount -t tmpfs failed: these tests need root (a real full disk)"
        );
        Tmpfs(dir)
    }

    fn path(&self) -> &Path {
        self.0.path()
    }
}

/// Take every free byte of the file system at `dir` with a filler file.
fn fill(dir: &Path) {
    let mut f = std::fs::File::create(dir.join("filler")).unwrap();
    for chunk in [1 << 20, 4096, 1] {
        let buf = vec![0u8; chunk];
        while f.write_all(&buf).is_ok() {}
    }
}

fn free(dir: &Path) {
    std::fs::remove_file(dir.join("filler")).unwrap();
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0.path()).status();
    }
}

/// One request the hook got, and what it answered.
#[derive(Debug, Clone)]
struct Page {
    /// The request path (one per notifier when several point here).
    path: String,
    reason: Option<String>,
    body: String,
    alert: String,
    series: String,
    level: String,
    action: String,
    key: String,
    status: u16,
}

/// A webhook receiver: answers 500 to the alerts in `failing` (all of them while `down`),
/// 200 to the rest; `fill_on_page` fills that directory's disk before answering (the send
/// succeeds, recording it cannot).
#[derive(Clone, Default)]
struct Hook {
    pages: Arc<Mutex<Vec<Page>>>,
    failing: Arc<Mutex<BTreeSet<String>>>,
    down: Arc<Mutex<bool>>,
    fill_on_page: Arc<Mutex<Option<PathBuf>>>,
}

impl Hook {
    async fn start(&self) -> String {
        let me = self.clone();
        let app = axum::Router::new().fallback(move |uri: axum::http::Uri, body: String| {
            let me = me.clone();
            async move {
                let v: serde_json::Value = serde_json::from_str(&body).unwrap();
                let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
                let alert = s("alert");
                let status =
                    if *me.down.lock().unwrap() || me.failing.lock().unwrap().contains(&alert) {
                        500
                    } else {
                        200
                    };
                if status == 200 {
                    if let Some(dir) = me.fill_on_page.lock().unwrap().take() {
                        fill(&dir);
                    }
                }
                me.pages.lock().unwrap().push(Page {
                    path: uri.path().to_string(),
                    reason: v["reason"].as_str().map(str::to_string),
                    body: s("body"),
                    alert,
                    series: s("series"),
                    level: s("level"),
                    action: s("action"),
                    key: s("idempotency_key"),
                    status,
                });
                (StatusCode::from_u16(status).unwrap(), "")
            }
        });
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(l, app).await;
        });
        format!("http://{addr}/hook")
    }

    fn pages(&self) -> Vec<Page> {
        self.pages.lock().unwrap().clone()
    }

    /// The pages answered 200, as `(alert, series, level, action)`.
    fn delivered(&self) -> Vec<(String, String, String, String)> {
        self.pages()
            .into_iter()
            .filter(|p| p.status == 200)
            .map(|p| (p.alert, p.series, p.level, p.action))
            .collect()
    }
}

fn page(alert: &str, series: &str, level: &str, action: &str) -> (String, String, String, String) {
    (alert.into(), series.into(), level.into(), action.into())
}

/// A carbon plaintext listener keeping every line (the alerter's self-metrics).
async fn carbon() -> (String, Arc<Mutex<Vec<String>>>) {
    use tokio::io::AsyncBufReadExt;
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let keep = lines.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let keep = keep.clone();
            tokio::spawn(async move {
                let mut r = tokio::io::BufReader::new(s).lines();
                while let Ok(Some(line)) = r.next_line().await {
                    keep.lock().unwrap().push(line);
                }
            });
        }
    });
    (addr, lines)
}

/// `alerter run FILE` with its log in `log`; killed on drop.
struct Run(Child);

impl Run {
    fn start(file: &Path, log: &Path) -> Run {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        Run(alerter()
            .env("RUST_LOG", "info")
            .arg("run")
            .arg(file)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap())
    }

    fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child.
        assert_eq!(unsafe { libc::kill(self.0.id() as i32, sig) }, 0);
    }

    fn stop(mut self) {
        self.signal(libc::SIGTERM);
        let st = self.0.wait().unwrap();
        assert!(st.success(), "alerter run exited with {st}");
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..1200 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Wait until the render server has seen `n` more requests (one per alert per cycle).
async fn cycles(render: &RenderServer, n: usize) {
    let before = render.requests();
    wait_for(&format!("{n} more render requests"), || {
        render.requests() >= before + n
    })
    .await;
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

/// `alerts.yml` with notifier `notifier` (a webhook to `hook`) for CRITICAL, alerts Load
/// (`servers.*.loadavg.01`) and Disk (`servers.*.disk`), every second.
fn config(
    dir: &Path,
    state: &Path,
    render: &str,
    notifier: &str,
    hook: &str,
    extra: &str,
) -> PathBuf {
    let path = dir.join("alerts.yml");
    std::fs::write(
        &path,
        format!(
            "graphite_url: {render}
state_file: {state}
interval: 1s
api_listen: off
{extra}notifiers:
  {notifier}:
    type: webhook
    url: {hook}
routes:
  critical: [{notifier}]
  warning: []
alerts:
  - name: Load
    target: aliasByNode(servers.*.loadavg.01,1)
    warning: 10
    critical: 20
  - name: Disk
    target: aliasByNode(servers.*.disk,1)
    warning: 80
    critical: 90
",
            state = state.display()
        ),
    )
    .unwrap();
    path
}

/// One test's parts: a render server with `hosts` at load `load` (disk 1), a webhook
/// receiver, and the alerter's state file (in `state_dir`, e.g. a tmpfs, or the temp dir)
/// and log.
struct Rig {
    dir: tempfile::TempDir,
    state: PathBuf,
    log: PathBuf,
    render: RenderServer,
    hook: Hook,
    url: String,
}

impl Rig {
    /// `down`: the receiver answers every page with an error until told otherwise.
    async fn new(state_dir: Option<&Path>, hosts: &[&str], load: f64, down: bool) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let state = state_dir.unwrap_or(dir.path()).join("state.db");
        let log = dir.path().join("alerter.log");
        let render = RenderServer::start().await;
        for host in hosts {
            render.set(&format!("servers.{host}.loadavg.01"), Some(load));
            render.set(&format!("servers.{host}.disk"), Some(1.0));
        }
        let hook = Hook::default();
        *hook.down.lock().unwrap() = down;
        let url = hook.start().await;
        Rig {
            dir,
            state,
            log,
            render,
            hook,
            url,
        }
    }

    /// Write `alerts.yml` routing CRITICAL to notifier `notifier` (a webhook to `url`).
    fn config(&self, notifier: &str, url: &str) -> PathBuf {
        config(
            self.dir.path(),
            &self.state,
            &self.render.url(),
            notifier,
            url,
            "",
        )
    }

    /// Run the alerter with notifier `hook` sending to this rig's receiver.
    fn run(&self) -> Run {
        let file = self.config("hook", &self.url);
        Run::start(&file, &self.log)
    }

    fn log(&self) -> String {
        read(&self.log)
    }

    /// Let the receiver answer, wait for the delivery and a few more cycles, stop the
    /// alerter: web-1's Load page went out once.
    async fn delivered_once(&self, run: Run) {
        *self.hook.down.lock().unwrap() = false;
        wait_for("the delivery", || !self.hook.delivered().is_empty()).await;
        cycles(&self.render, 6).await;
        run.stop();
        assert_eq!(
            self.hook.delivered(),
            vec![page("Load", "web-1", "CRITICAL", "trigger")]
        );
    }
}

async fn counts(state: &Path) -> alerter::outbox::Counts {
    let ob = alerter::outbox::Outbox::open(state).await.unwrap();
    let c = ob.counts().await.unwrap();
    ob.close().await;
    c
}

/// Item 4 of issue 16: the receiver accepts a page, then the state file cannot record it
/// (disk full). The page is not sent again — neither in a loop nor on the retry schedule —
/// and is recorded as delivered once space is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unrecordable_delivery_is_not_sent_again() {
    let fs = Tmpfs::mount("4m");
    let rig = Rig::new(Some(fs.path()), &["web-1"], 1.0, false).await;
    let Rig {
        state,
        log,
        render,
        hook,
        ..
    } = &rig;
    let run = rig.run();
    cycles(render, 4).await;

    *hook.fill_on_page.lock().unwrap() = Some(fs.path().to_path_buf());
    render.set("servers.web-1.loadavg.01", Some(25.0));
    wait_for("the page", || !hook.pages().is_empty()).await;
    wait_for("the failed update", || {
        read(log).contains("recording the outcome of outbox row")
    })
    .await;
    // Ten seconds of cycles on a full disk: past the first two steps of the retry schedule
    // (5 s, 10 s), and thousands of passes of a loop that re-sends.
    cycles(render, 20).await;
    assert_eq!(hook.pages().len(), 1, "re-sent: {:?}", hook.pages());

    free(fs.path());
    render.set("servers.web-1.loadavg.01", Some(1.0));
    wait_for("the resolve", || hook.pages().len() >= 2).await;
    cycles(render, 6).await;
    run.stop();
    assert_eq!(
        hook.delivered(),
        vec![
            page("Load", "web-1", "CRITICAL", "trigger"),
            page("Load", "web-1", "OK", "resolve"),
        ]
    );
    let c = counts(state).await;
    assert_eq!((c.pending, c.delivered, c.failed), (0, 2, 0), "{c:?}");
}

/// Item 5 of issue 16: levels change while the state file's disk is full. Nothing is taken
/// for sent that was not queued: once space is back, a series still CRITICAL is paged, one
/// that went back to OK meanwhile gets nothing (no trigger, no resolve).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_disk_full_misses_no_page_and_sends_no_stray_resolve() {
    let fs = Tmpfs::mount("4m");
    let rig = Rig::new(Some(fs.path()), &["web-1", "web-2"], 1.0, false).await;
    let Rig {
        log, render, hook, ..
    } = &rig;
    let run = rig.run();
    cycles(render, 4).await;

    fill(fs.path());
    render.set("servers.web-1.loadavg.01", Some(25.0));
    render.set("servers.web-2.loadavg.01", Some(25.0));
    wait_for("two failed cycles", || {
        read(log).matches("evaluation cycle failed").count() >= 2
    })
    .await;
    render.set("servers.web-2.loadavg.01", Some(1.0));
    let failed = read(log).matches("evaluation cycle failed").count();
    wait_for("two more failed cycles", || {
        read(log).matches("evaluation cycle failed").count() >= failed + 2
    })
    .await;
    assert!(hook.pages().is_empty(), "{:?}", hook.pages());

    free(fs.path());
    wait_for("the page of web-1", || !hook.pages().is_empty()).await;
    cycles(render, 8).await;
    render.set("servers.web-1.loadavg.01", Some(1.0));
    wait_for("the resolve of web-1", || hook.pages().len() >= 2).await;
    cycles(render, 6).await;
    run.stop();
    assert_eq!(
        hook.delivered(),
        vec![
            page("Load", "web-1", "CRITICAL", "trigger"),
            page("Load", "web-1", "OK", "resolve"),
        ],
        "web-2 never paged: it must not be resolved either"
    );
    assert_eq!(hook.pages().len(), 2, "{:?}", hook.pages());
}

/// Item 6 of issue 16: a reload renames the notifier while its page waits for a retry. The
/// page follows the notifier's definition to its new name and is delivered once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_renaming_a_notifier_keeps_its_pending_page() {
    let rig = Rig::new(None, &["web-1"], 25.0, true).await;
    let run = rig.run();
    wait_for("the first attempt", || !rig.hook.pages().is_empty()).await;

    rig.config("pager", &rig.url);
    run.signal(libc::SIGHUP);
    wait_for("the reload", || {
        rig.log().contains("configuration reloaded")
    })
    .await;
    assert!(
        rig.log().contains("notifier \"hook\" is now \"pager\""),
        "{}",
        rig.log()
    );
    rig.delivered_once(run).await;
    let keys: BTreeSet<String> = rig.hook.pages().into_iter().map(|p| p.key).collect();
    assert_eq!(keys.len(), 1, "one page, retried under its own key");
    let c = counts(&rig.state).await;
    assert_eq!((c.pending, c.delivered, c.failed), (0, 1, 0), "{c:?}");
}

/// Item 12 of issue 16: the receiver answers 500 to every page of one alert, forever. Pages
/// of other alerts are delivered meanwhile; the failing page is given up after
/// `page_max_age`, logged and counted in `notifications.expired`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_alert_failing_forever_holds_back_no_other_and_expires() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.db");
    let log = dir.path().join("alerter.log");
    let render = RenderServer::start().await;
    render.set("servers.web-1.loadavg.01", Some(1.0));
    render.set("servers.web-1.disk", Some(95.0));
    let hook = Hook::default();
    hook.failing.lock().unwrap().insert("Disk".into());
    let url = hook.start().await;
    let (metrics, lines) = carbon().await;
    let extra = format!("page_max_age: 8s\nmetrics_carbon: {metrics}\n");
    let file = config(dir.path(), &state, &render.url(), "hook", &url, &extra);
    let run = Run::start(&file, &log);
    wait_for("the failing Disk page", || !hook.pages().is_empty()).await;

    render.set("servers.web-1.loadavg.01", Some(25.0));
    wait_for("the Load page", || !hook.delivered().is_empty()).await;
    assert!(
        !read(&log).contains("expired"),
        "delivered only after the Disk page expired:\n{}",
        read(&log)
    );
    wait_for("the Disk page to expire", || {
        read(&log).contains("notification dropped: expired")
    })
    .await;
    let expired_metric = || {
        lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.starts_with("carbide.alerter.notifications.expired 1 "))
    };
    wait_for("notifications.expired 1", expired_metric).await;
    cycles(&render, 6).await;
    run.stop();
    assert_eq!(
        hook.delivered(),
        vec![page("Load", "web-1", "CRITICAL", "trigger")]
    );
    assert!(hook
        .pages()
        .iter()
        .all(|p| p.status == 200 || (p.alert == "Disk" && p.level == "CRITICAL")));
    // Two pages triggered: one delivered, one expired (counted), none left.
    let c = counts(&state).await;
    assert_eq!(
        (c.pending, c.delivered, c.failed, c.expired),
        (0, 1, 1, 1),
        "{c:?}"
    );
}

/// The "alerting that never goes quiet by accident" rules of issue 16: a CRITICAL series that
/// stops reporting keeps its page open (the CRITICAL-only receiver gets no resolve until data
/// says OK), and a render error is ERROR with its reason in the notification.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_host_keeps_its_page_open_and_render_errors_are_error() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.db");
    let log = dir.path().join("alerter.log");
    let render = RenderServer::start().await;
    render.set("servers.web-1.loadavg.01", Some(25.0));
    render
        .data
        .lock()
        .unwrap()
        .fail
        .push("servers.*.disk".into());
    let hook = Hook::default();
    let url = hook.start().await;
    let file = dir.path().join("alerts.yml");
    std::fs::write(
        &file,
        format!(
            "graphite_url: {render}
state_file: {state}
interval: 1s
api_listen: off
notifiers:
  pd: {{type: webhook, url: {base}/pd}}
  chat: {{type: webhook, url: {base}/chat}}
routes:
  critical: [pd, chat]
  no_data: [chat]
  error: [chat]
alerts:
  - name: Load
    target: aliasByNode(servers.*.loadavg.01,1)
    warning: 10
    critical: 20
  - name: Disk
    target: servers.*.disk
    warning: 80
    critical: 90
",
            render = render.url(),
            state = state.display(),
            base = url.trim_end_matches("/hook"),
        ),
    )
    .unwrap();
    let run = Run::start(&file, &log);
    let to = |path: &str| {
        hook.pages()
            .into_iter()
            .filter(|p| p.path == path && p.alert == "Load")
            .map(|p| (p.level, p.action))
            .collect::<Vec<_>>()
    };
    let pair = |l: &str, a: &str| (l.to_string(), a.to_string());
    for _ in 0..600 {
        if to("/pd").len() == 1 && to("/chat").len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        to("/pd").len() == 1 && to("/chat").len() == 1,
        "no CRITICAL pages: {:?}\n{}",
        hook.pages(),
        read(&log)
    );

    // The host dies: its series vanishes. NO_DATA goes to chat; PagerDuty's incident stays.
    render.remove("servers.web-1.loadavg.01");
    wait_for("NO_DATA to chat", || to("/chat").len() == 2).await;
    cycles(&render, 8).await;
    assert_eq!(
        to("/pd"),
        vec![pair("CRITICAL", "trigger")],
        "the dead host resolved its own page"
    );
    assert_eq!(to("/chat")[1], pair("NO_DATA", "trigger"));

    // Data says OK: both receivers resolve.
    render.set("servers.web-1.loadavg.01", Some(1.0));
    wait_for("the resolves", || {
        to("/pd").len() == 2 && to("/chat").len() == 3
    })
    .await;
    cycles(&render, 6).await;
    run.stop();
    assert_eq!(
        to("/pd"),
        vec![pair("CRITICAL", "trigger"), pair("OK", "resolve")]
    );
    assert_eq!(
        to("/chat"),
        vec![
            pair("CRITICAL", "trigger"),
            pair("NO_DATA", "trigger"),
            pair("OK", "resolve")
        ]
    );

    // The failing render: ERROR (not NO_DATA), once, with the reason.
    let disk: Vec<Page> = hook
        .pages()
        .into_iter()
        .filter(|p| p.alert == "Disk")
        .collect();
    assert_eq!(disk.len(), 1, "{disk:?}");
    assert_eq!(
        (disk[0].path.as_str(), disk[0].level.as_str()),
        ("/chat", "ERROR")
    );
    let reason = disk[0].reason.clone().unwrap_or_default();
    assert!(reason.contains("500"), "{disk:?}");
    assert!(
        disk[0].body.contains(&format!("Reason: {reason}")),
        "{disk:?}"
    );
}

/// Item 6 of issue 16, the other half: a reload that removes the notifier of a pending page
/// keeps the page queued (a warning, not "failed"); a later reload that brings the notifier
/// back delivers it, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_removing_a_notifier_keeps_its_page_queued() {
    let rig = Rig::new(None, &["web-1"], 25.0, true).await;
    let run = rig.run();
    wait_for("the first attempt", || !rig.hook.pages().is_empty()).await;

    // The notifier goes (CRITICAL now routed to a webhook nobody answers: not our hook).
    rig.config("other", "http://127.0.0.1:9/x");
    run.signal(libc::SIGHUP);
    wait_for("the warning", || {
        rig.log().contains(
            "notifier \"hook\" is no longer in the file: its 1 pending notifications stay queued",
        )
    })
    .await;
    *rig.hook.down.lock().unwrap() = false;
    cycles(&rig.render, 12).await;
    assert!(rig.hook.delivered().is_empty(), "{:?}", rig.hook.pages());
    let c = counts(&rig.state).await;
    assert_eq!((c.pending >= 1, c.failed), (true, 0), "{c:?}");

    // It comes back: the queued page goes out, once.
    rig.config("hook", &rig.url);
    run.signal(libc::SIGHUP);
    rig.delivered_once(run).await;
    let c = counts(&rig.state).await;
    assert_eq!((c.delivered, c.failed), (1, 0), "{c:?}");
}
