//! The web console in real Chromium (Debian's `chromium` + `chromium-driver`, installed by
//! tests/run), driven over WebDriver: a real `carbide up` with a host collector and a fixture
//! alert, opened at `/`. Screenshots of each page are saved under
//! `$CARGO_TARGET_TMPDIR/console/` (the path is printed).

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Carbide;
use fantoccini::actions::{InputSource, MouseActions, PointerAction, MOUSE_BUTTON_LEFT};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

/// How long a page may take to show what a test waits for (generous: a shared CI machine).
const WAIT: Duration = Duration::from_secs(60);

/// `chromedriver` on a free loopback port, and a headless Chromium session through it.
struct Browser {
    driver: Child,
    client: Client,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn start(width: u32, height: u32) -> Browser {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let driver = Command::new("chromedriver")
            .args([format!("--port={port}"), "--allowed-ips=127.0.0.1".into()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian chromium-driver, installed by tests/run)");
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let end = Instant::now() + WAIT;
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(
                Instant::now() < end,
                "chromedriver did not listen on {addr}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--no-first-run",
                    "--disable-extensions",
                    format!("--user-data-dir={}", profile.path().display()),
                    format!("--window-size={width},{height}"),
                ],
            }),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://{addr}"))
            .await
            .expect("a Chromium session");
        Browser {
            driver,
            client,
            _profile: profile,
        }
    }

    async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }

    /// The first element matching `css` once it is shown.
    async fn wait_for(&self, css: &str) -> fantoccini::elements::Element {
        let end = Instant::now() + WAIT;
        loop {
            if let Ok(e) = self.client.find(Locator::Css(css)).await {
                if e.is_displayed().await.unwrap_or(false) {
                    return e;
                }
            }
            assert!(
                Instant::now() < end,
                "{css} never shown; the page: {}",
                self.text("body").await
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Wait until `css`'s text contains `want`; the text.
    async fn wait_text(&self, css: &str, want: &str) -> String {
        let end = Instant::now() + WAIT;
        loop {
            let t = self.text(css).await;
            if t.contains(want) {
                return t;
            }
            assert!(
                Instant::now() < end,
                "{css} never said {want:?}; it says {t:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn text(&self, css: &str) -> String {
        match self.client.find(Locator::Css(css)).await {
            Ok(e) => e.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    async fn hash(&self) -> String {
        let url = self.client.current_url().await.unwrap();
        url.fragment().unwrap_or_default().to_string()
    }

    /// Save a screenshot as a test artifact; its path.
    async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.unwrap();
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, &png).unwrap();
        // A real picture of the page, not an empty one.
        let decoder = png::Decoder::new(std::io::Cursor::new(&png));
        let info = decoder.read_info().unwrap();
        assert!(info.info().width >= 300, "{name}: {}", info.info().width);
        eprintln!("screenshot: {}", path.display());
        path
    }
}

/// `carbide up` in `d` with the host collector (fixed host `uphost`, every second) and
/// `alerts` as alerts.yml.
fn up(d: &Path, alerts: &str) -> Carbide {
    std::fs::create_dir_all(d.join("collectors.d")).unwrap();
    std::fs::write(
        d.join("collectors.d/host.yml"),
        "type: host\ninterval: 1s\n",
    )
    .unwrap();
    std::fs::write(
        d.join("collector.yml"),
        "hostname_method: fixed\nhostname: uphost\n",
    )
    .unwrap();
    std::fs::write(d.join("alerts.yml"), alerts).unwrap();
    Carbide::start(d, &common::up_args(&["--alerter-api", "off"]))
}

const QUIET_ALERTS: &str = "interval: 1s\nalerts:\n  - name: Load\n    target: servers.*.loadavg.01\n    warning: 100000\n    critical: 200000\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_opens_at_the_root_of_carbide_up() {
    let dir = tempfile::tempdir().unwrap();
    let c = up(dir.path(), QUIET_ALERTS);
    let b = Browser::start(1280, 800).await;
    b.client.goto(&format!("http://{}/", c.http)).await.unwrap();
    // The script ran under the Content-Security-Policy: it built the navigation and the
    // metrics page, whose tree lists what the agent sent.
    let nav = b.wait_text("#nav", "Metrics").await;
    assert!(nav.contains("Graph"), "{nav}");
    b.wait_text("#tree", "servers").await;
    b.screenshot("metrics").await;
    b.close().await;
    assert!(c.stop());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browse_to_a_metric_graph_it_and_zoom() {
    let dir = tempfile::tempdir().unwrap();
    let c = up(dir.path(), QUIET_ALERTS);
    let b = Browser::start(1280, 800).await;
    b.client.goto(&format!("http://{}/", c.http)).await.unwrap();
    // servers ▸ uphost ▸ loadavg ▸ 01, by the tree's buttons.
    for id in ["servers", "servers.uphost", "servers.uphost.loadavg"] {
        b.wait_for(&format!("li[data-id='{id}'] > button"))
            .await
            .click()
            .await
            .unwrap();
    }
    b.wait_for("li[data-id='servers.uphost.loadavg.01'] > a")
        .await
        .click()
        .await
        .unwrap();
    assert!(
        b.hash().await.contains("target=servers.uphost.loadavg.01"),
        "{}",
        b.hash().await
    );
    // The chart and its legend with the series' name; points arrive every second.
    b.wait_for("#chart .uplot canvas").await;
    b.wait_text("#chart .u-legend", "servers.uphost.loadavg.01")
        .await;
    b.screenshot("graph").await;

    // Drag across the middle of the plot: the URL gets the absolute range zoomed to.
    let over = b.wait_for("#chart .u-over").await;
    let (_, _, w, _) = over.rectangle().await.unwrap();
    let drag = MouseActions::new("mouse".into())
        .then(PointerAction::MoveToElement {
            element: over.clone(),
            duration: None,
            x: -w / 4.0,
            y: 0.0,
        })
        .then(PointerAction::Down {
            button: MOUSE_BUTTON_LEFT,
        })
        .then(PointerAction::MoveToElement {
            element: over.clone(),
            duration: Some(Duration::from_millis(200)),
            x: w / 4.0,
            y: 0.0,
        })
        .then(PointerAction::Up {
            button: MOUSE_BUTTON_LEFT,
        });
    b.client.perform_actions(drag).await.unwrap();
    let end = Instant::now() + WAIT;
    let (from, until) = loop {
        let hash = b.hash().await;
        let q = hash.split_once('?').map_or("", |(_, q)| q).to_string();
        let get = |k: &str| {
            q.split('&')
                .find_map(|kv| kv.strip_prefix(&format!("{k}=")))
                .and_then(|v| v.parse::<i64>().ok())
        };
        if let (Some(f), Some(u)) = (get("from"), get("until")) {
            break (f, u);
        }
        assert!(Instant::now() < end, "no zoomed range in the URL: {hash}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // About half of the default hour, in the past.
    assert!(until > from, "{from}..{until}");
    assert!(
        (until - from) > 600 && (until - from) < 3000,
        "{from}..{until}"
    );
    b.wait_for("#chart .uplot canvas").await;
    b.screenshot("graph-zoomed").await;
    b.close().await;
    assert!(c.stop());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn targets_complete_function_names_and_show_parse_errors_at_their_column() {
    let dir = tempfile::tempdir().unwrap();
    let c = up(dir.path(), QUIET_ALERTS);
    let b = Browser::start(1280, 800).await;
    b.client
        .goto(&format!("http://{}/#/graph", c.http))
        .await
        .unwrap();
    let input = b.wait_for("input.target").await;
    input.send_keys("sumSer").await.unwrap();
    let list = b.wait_text("ul.completions", "sumSeries").await;
    assert!(list.lines().next() == Some("sumSeries"), "{list}");
    // Arrow down to it, Enter takes it.
    input.send_keys("\u{E015}\u{E007}").await.unwrap();
    assert_eq!(
        input.prop("value").await.unwrap().as_deref(),
        Some("sumSeries(")
    );
    input.send_keys("servers.*.loadavg.01").await.unwrap();
    b.wait_for("#draw").await.click().await.unwrap();
    let err = b.wait_text("#parse-error", "at column").await;
    assert!(err.contains("at column 31"), "{err}");
    // The page was drawn anew from the URL: the target is kept, marked invalid.
    let input = b.wait_for("input.target").await;
    assert_eq!(
        input.prop("value").await.unwrap().as_deref(),
        Some("sumSeries(servers.*.loadavg.01")
    );
    assert_eq!(
        input.attr("aria-invalid").await.unwrap().as_deref(),
        Some("true")
    );
    // The caret is put at the column the parser reports (0-based 30 = column 31).
    let at = b
        .client
        .execute(
            "return document.querySelector('input.target').selectionStart",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(at, json!(30));
    b.screenshot("graph-parse-error").await;
    b.close().await;
    assert!(c.stop());
}

/// The `alerter` binary beside `carbide` (built with the workspace; built here if missing).
fn alerter_bin() -> PathBuf {
    let bin = Path::new(common::CARBIDE).with_file_name("alerter");
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let st = Command::new(cargo)
            .args(["build", "-p", "carbide-alerter", "--bin", "alerter"])
            .status()
            .unwrap();
        assert!(st.success(), "cannot build the alerter binary");
    }
    bin
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_fires_is_silenced_from_the_page_and_the_cli_lists_the_silence() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Load above -1 is CRITICAL at once: the alert fires on the first cycle.
    let alerts = "interval: 1s\napi_listen: off\nstate_file: data/alerter.db\n\
                  docs_url: http://127.0.0.1:9/runbooks\nalerts:\n  - name: Load\n    \
                  target: servers.*.loadavg.01\n    warning: -2\n    critical: -1\n";
    let c = up(d, alerts);
    let b = Browser::start(1280, 800).await;
    b.client
        .goto(&format!("http://{}/#/alerts", c.http))
        .await
        .unwrap();
    let nav = b.wait_text("#nav", "Alerts").await;
    assert!(nav.contains("Silences") && nav.contains("Metrics"), "{nav}");
    let row = b
        .wait_text("tr[data-series='servers.uphost.loadavg.01']", "CRITICAL")
        .await;
    assert!(row.contains(">= -1"), "the threshold: {row}");
    let runbook = b
        .wait_for("section[data-alert='Load'] a[href*='runbooks']")
        .await;
    assert_eq!(
        runbook.attr("href").await.unwrap().as_deref(),
        Some("http://127.0.0.1:9/runbooks/Load#servers.uphost.loadavg.01")
    );
    // The small graph of the target with its thresholds.
    b.wait_for("section[data-alert='Load'] .mini-chart canvas")
        .await;
    b.screenshot("alerts").await;

    // Silence it from its row: the form comes prefilled with the alert and the series.
    b.wait_for("tr[data-series='servers.uphost.loadavg.01'] a.silence-link")
        .await
        .click()
        .await
        .unwrap();
    let duration = b.wait_for("#silence-duration").await;
    assert_eq!(
        b.client
            .find(Locator::Css("#silence-alert"))
            .await
            .unwrap()
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some("Load")
    );
    duration.clear().await.unwrap();
    duration.send_keys("30m").await.unwrap();
    b.client
        .find(Locator::Css("#silence-comment"))
        .await
        .unwrap()
        .send_keys("maintenance, from the console")
        .await
        .unwrap();
    b.wait_for("#silence-add").await.click().await.unwrap();
    b.wait_text("#silence-message", "added").await;
    b.wait_text("#silences", "maintenance, from the console")
        .await;
    b.screenshot("silences").await;

    // The alerter's own CLI sees it in the state file.
    let out = Command::new(alerter_bin())
        .args(["silence", "list", "-f", "alerts.yml"])
        .current_dir(d)
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{listed}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        listed.contains("Load") && listed.contains("servers.uphost.loadavg.01"),
        "{listed}"
    );
    assert!(listed.contains("maintenance, from the console"), "{listed}");

    // The alerts page shows the series as silenced; the history shows it firing.
    b.client
        .goto(&format!("http://{}/#/alerts", c.http))
        .await
        .unwrap();
    b.wait_text("tr[data-series='servers.uphost.loadavg.01']", "silenced")
        .await;
    b.client
        .goto(&format!("http://{}/#/history", c.http))
        .await
        .unwrap();
    b.wait_text("#history", "CRITICAL").await;
    b.wait_text("#outbox-counts", "pending").await;
    b.screenshot("history").await;
    b.close().await;
    assert!(c.stop());
}
