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
use fantoccini::actions::{
    InputSource, KeyAction, KeyActions, MouseActions, PointerAction, MOUSE_BUTTON_LEFT,
};
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

/// A Chrome DevTools Protocol command sent through chromedriver's `goog/cdp/execute`
/// (device metrics, emulated media): what WebDriver itself has no command for.
#[derive(Debug)]
struct Cdp {
    cmd: &'static str,
    params: serde_json::Value,
}

impl fantoccini::wd::WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!(
            "session/{}/goog/cdp/execute",
            session.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(json!({"cmd": self.cmd, "params": self.params}).to_string()),
        )
    }
}

impl Browser {
    async fn cdp(&self, cmd: &'static str, params: serde_json::Value) {
        self.client
            .issue_cmd(Cdp { cmd, params })
            .await
            .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    }

    /// Evaluate `script` (a function body) in the page.
    async fn js(&self, script: &str) -> serde_json::Value {
        self.client.execute(script, vec![]).await.unwrap()
    }

    /// Press `keys` one after the other on whatever has the focus (the keyboard, not an
    /// element's send_keys).
    async fn press(&self, keys: &str) {
        let mut a = KeyActions::new("keyboard".into());
        for c in keys.chars() {
            a = a
                .then(KeyAction::Down { value: c })
                .then(KeyAction::Up { value: c });
        }
        self.client.perform_actions(a).await.unwrap();
    }

    /// Ctrl+A: select the focused field's text (typing then replaces it).
    async fn select_all(&self) {
        let ctrl = '\u{E009}';
        let a = KeyActions::new("keyboard".into())
            .then(KeyAction::Down { value: ctrl })
            .then(KeyAction::Down { value: 'a' })
            .then(KeyAction::Up { value: 'a' })
            .then(KeyAction::Up { value: ctrl });
        self.client.perform_actions(a).await.unwrap();
    }

    async fn active_id(&self) -> String {
        self.js("return document.activeElement && document.activeElement.id || ''")
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Wait until `script` (returning a boolean) is true.
    async fn wait_js(&self, what: &str, script: &str) {
        let end = Instant::now() + WAIT;
        while self.js(script).await != json!(true) {
            assert!(
                Instant::now() < end,
                "{what} never happened; the page: {}",
                self.text("body").await
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Move the mouse to (x, y) relative to the centre of `e`.
    async fn hover(&self, e: &fantoccini::elements::Element, x: f64, y: f64) {
        let m = MouseActions::new("mouse".into()).then(PointerAction::MoveToElement {
            element: e.clone(),
            duration: Some(Duration::from_millis(50)),
            x,
            y,
        });
        self.client.perform_actions(m).await.unwrap();
    }
}

/// The plot's columns where the first palette colour (#1f77b4, the first target's line) is
/// drawn, read from the chart's canvas: one flag per canvas pixel column.
const FIRST_SERIES_COLUMNS: &str = "
    const c = document.querySelector('#chart .uplot canvas');
    const ctx = c.getContext('2d');
    const img = ctx.getImageData(0, 0, c.width, c.height).data;
    const cols = [];
    for (let x = 0; x < c.width; x++) {
      let hit = false;
      for (let y = 0; y < c.height && !hit; y++) {
        const i = (y * c.width + x) * 4;
        const d = Math.abs(img[i] - 31) + Math.abs(img[i + 1] - 119) + Math.abs(img[i + 2] - 180);
        hit = img[i + 3] > 90 && d < 60;
      }
      cols.push(hit);
    }
    return { cols, cssWidth: c.getBoundingClientRect().width, dpr: window.devicePixelRatio };
";

/// Runs of `true` in `cols`: (first, last) index of each.
fn runs(cols: &[bool]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, &c) in cols.iter().chain([false].iter()).enumerate() {
        match (c, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push((s, i - 1));
                start = None;
            }
            _ => {}
        }
    }
    out
}

/// `carbide up` in `d` with the host collector (fixed host `uphost`, every second) and
/// `alerts` as alerts.yml.
fn up(d: &Path, alerts: &str) -> Carbide {
    common::up_host_agent(d);
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

/// The chart itself: auto-refresh asks `/render` again, hovering shows each series' name and
/// value under the cursor (none in a hole), a legend click hides a series and another shows
/// it, and a series' nulls are a gap in its line (read from the canvas).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chart_refreshes_hovers_toggles_and_leaves_nulls_as_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let c = up(dir.path(), QUIET_ALERTS);
    // 10 s points (the default schema's step) for 3 minutes, 4 minutes of nothing, then 3
    // minutes again, ending 10 minutes after t0.
    let now = common::now();
    let t0 = now - now % 10 - 600;
    let mut lines = String::new();
    for i in 0..60 {
        if !(18..42).contains(&i) {
            lines.push_str(&format!("test.gappy {} {}\n", 5 + i % 3, t0 + i * 10));
        }
    }
    common::send_lines(c.carbon, &lines);
    let stored = common::wait_until(WAIT, || {
        let (_, body) = c.get("/render?target=test.gappy&from=-15min&format=json");
        common::series(&body)
            .iter()
            .any(|(_, pts)| pts.iter().filter(|(v, _)| v.is_some()).count() >= 36)
    });
    assert!(stored, "the points of test.gappy were not stored");
    // The chart's second series comes from the agent `carbide up` runs: wait for its first
    // point too, or the page may load before the series exists (its legend then lacks it).
    let agent = common::wait_until(WAIT, || {
        let (_, body) = c.get("/render?target=servers.uphost.loadavg.01&from=-15min&format=json");
        common::series(&body)
            .iter()
            .any(|(_, pts)| pts.iter().any(|(v, _)| v.is_some()))
    });
    assert!(agent, "the agent's servers.uphost.loadavg.01 never arrived");

    let b = Browser::start(1280, 800).await;
    b.client
        .goto(&format!(
            "http://{}/#/graph?target=test.gappy&target=servers.uphost.loadavg.01&from=-15min&refresh=10s",
            c.http
        ))
        .await
        .unwrap();
    b.wait_for("#chart .uplot canvas").await;
    let legend = b.wait_text("#chart .u-legend", "test.gappy").await;
    assert!(legend.contains("servers.uphost.loadavg.01"), "{legend}");

    // Auto-refresh: /render is asked again while the page stays.
    let renders = "return performance.getEntriesByType('resource').filter((e) => e.name.includes('/render?')).length";
    let first = b.js(renders).await.as_u64().unwrap();
    assert!(first >= 1);
    b.wait_js("an auto-refresh", &format!("{renders} > {first}"))
        .await;
    b.wait_for("#chart .uplot canvas").await;

    // Nulls are a gap: the first series' colour is on two runs of columns with a hole
    // between them as wide as the four minutes without points.
    let shot = b.js(FIRST_SERIES_COLUMNS).await;
    let cols: Vec<bool> = serde_json::from_value(shot["cols"].clone()).unwrap();
    let width = cols.len();
    let mut drawn = runs(&cols);
    // Anti-aliasing may split a run by a column or two: join runs closer than 4 columns.
    drawn.dedup_by(|next, prev| {
        if next.0 <= prev.1 + 4 {
            prev.1 = next.1;
            true
        } else {
            false
        }
    });
    assert_eq!(
        drawn.len(),
        2,
        "the line's runs of columns: {drawn:?} of {width}"
    );
    let (a, z) = (drawn[0], drawn[1]);
    let gap = z.0 - a.1;
    assert!(
        gap * 100 > width * 15,
        "the hole is {gap} of {width} columns: {drawn:?}"
    );
    assert!(
        (a.1 - a.0) * 100 > width * 8 && (z.1 - z.0) * 100 > width * 8,
        "{drawn:?} of {width}"
    );

    // Hover: the legend shows the value under the cursor, and none in the hole.
    let canvas = b.wait_for("#chart .uplot canvas").await;
    let dpr = shot["dpr"].as_f64().unwrap_or(1.0);
    let css_width = shot["cssWidth"].as_f64().unwrap();
    let at = |col: usize| col as f64 / dpr - css_width / 2.0;
    let value = "#chart .u-legend tr.u-series:nth-child(2) td.u-value";
    b.hover(&canvas, at((z.0 + z.1) / 2), 0.0).await;
    let end = Instant::now() + WAIT;
    loop {
        let v = b.text(value).await;
        if ["5", "6", "7"].contains(&v.trim()) {
            break;
        }
        assert!(Instant::now() < end, "hovering the second run shows {v:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let time = b
        .text("#chart .u-legend tr.u-series:nth-child(1) td.u-value")
        .await;
    assert!(
        time.chars().any(|c| c.is_ascii_digit()),
        "the time: {time:?}"
    );
    b.screenshot("graph-hover").await;
    b.hover(&canvas, at((a.1 + z.0) / 2), 0.0).await;
    let end = Instant::now() + WAIT;
    loop {
        let v = b.text(value).await;
        if !v.chars().any(|c| c.is_ascii_digit()) {
            break;
        }
        assert!(
            Instant::now() < end,
            "hovering the hole shows a value: {v:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The legend toggles a series: off, its line is gone; on again, it is back.
    let entry = "#chart .u-legend tr.u-series:nth-child(2)";
    let label = format!("{entry} .u-label");
    // The pointer leaves the plot first, as a person's would on the way to the legend.
    let heading = b.wait_for("main h1").await;
    b.hover(&heading, 0.0, 0.0).await;
    b.js(&format!(
        "document.querySelector('{label}').scrollIntoView({{block: 'center'}}); return true"
    ))
    .await;
    b.wait_for(&label).await.click().await.unwrap();
    b.wait_js(
        "the series switched off",
        &format!("return document.querySelector('{entry}').classList.contains('u-off')"),
    )
    .await;
    let off: Vec<bool> =
        serde_json::from_value(b.js(FIRST_SERIES_COLUMNS).await["cols"].clone()).unwrap();
    assert!(off.iter().all(|c| !c), "the hidden series is still drawn");
    b.screenshot("graph-legend-off").await;
    b.wait_for(&label).await.click().await.unwrap();
    b.wait_js(
        "the series switched on",
        &format!("return !document.querySelector('{entry}').classList.contains('u-off')"),
    )
    .await;
    let on: Vec<bool> =
        serde_json::from_value(b.js(FIRST_SERIES_COLUMNS).await["cols"].clone()).unwrap();
    assert!(
        on.iter().filter(|c| **c).count() > width / 10,
        "the series is not drawn again"
    );
    b.close().await;
    assert!(c.stop());
}

/// The status page shows the pipeline's own metrics (store, agent, alerter) with their latest
/// values; the target builder picks a metric from the tree, wraps it in functions with their
/// parameters and writes the target field, which graphs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_and_the_target_builder() {
    let dir = tempfile::tempdir().unwrap();
    let c = up(dir.path(), QUIET_ALERTS);
    let b = Browser::start(1280, 800).await;
    b.client
        .goto(&format!("http://{}/#/status", c.http))
        .await
        .unwrap();
    let nav = b.wait_text("#nav", "Status").await;
    assert!(nav.contains("Graph") && nav.contains("Alerts"), "{nav}");
    // The store's points received (a rate: needs two self-metric rounds), the agent's spool,
    // the alerter's pending notifications and its fetch errors.
    let received = b
        .wait_text("tr[data-row='points-received'] td.latest", "/s")
        .await;
    assert!(received.contains("ago"), "{received}");
    let spool = b
        .wait_text(
            "tr[data-row='spool-bytes'][data-series='uphost'] td.latest",
            " B",
        )
        .await;
    assert!(spool.contains("ago"), "{spool}");
    let pending = b
        .wait_text("tr[data-row='notifications-pending'] td.latest", "ago")
        .await;
    assert!(pending.starts_with('0'), "nothing to send: {pending}");
    b.wait_text("tr[data-row='bad-lines'] td.latest", "ago")
        .await;
    // The last hour is drawn: pixels on the row's small canvas.
    b.wait_js(
        "the points-received sparkline drawn",
        "const c = document.querySelector(\"tr[data-row='points-received'] .sparkline canvas\");
         if (!c) return false;
         const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
         for (let i = 3; i < d.length; i += 4) if (d[i] > 0) return true;
         return false;",
    )
    .await;
    b.screenshot("status").await;
    // Each row opens its target on the graph page.
    b.wait_for("tr[data-row='points-received'] a[href^='#/graph']")
        .await
        .click()
        .await
        .unwrap();
    b.wait_text("#chart .u-legend", "points received").await;
    assert!(
        b.hash().await.contains("carbide.store.points_received"),
        "{}",
        b.hash().await
    );

    // The builder: pick servers ▸ uphost ▸ loadavg ▸ 01 from its tree.
    b.client
        .goto(&format!("http://{}/#/graph", c.http))
        .await
        .unwrap();
    b.wait_for("#builder > summary")
        .await
        .click()
        .await
        .unwrap();
    for id in ["servers", "servers.uphost", "servers.uphost.loadavg"] {
        b.wait_for(&format!("#builder-tree li[data-id='{id}'] > button"))
            .await
            .click()
            .await
            .unwrap();
    }
    b.wait_for("#builder-tree li[data-id='servers.uphost.loadavg.01'] > button")
        .await
        .click()
        .await
        .unwrap();
    let expr = || async {
        b.client
            .find(Locator::Css("#builder-expr"))
            .await
            .unwrap()
            .prop("value")
            .await
            .unwrap()
            .unwrap_or_default()
    };
    assert_eq!(expr().await, "servers.uphost.loadavg.01");
    let choose = |name: &'static str| {
        let b = &b;
        async move {
            b.wait_for(&format!("#builder-fn option[value='{name}']"))
                .await;
            b.client
                .find(Locator::Css("#builder-fn"))
                .await
                .unwrap()
                .select_by_value(name)
                .await
                .unwrap();
        }
    };
    // A required parameter left empty is refused, naming it; the target stays.
    choose("movingAverage").await;
    b.wait_for("#builder-param-windowSize").await;
    b.wait_for("#builder-wrap").await.click().await.unwrap();
    b.wait_text("#builder-message", "windowSize is required")
        .await;
    assert_eq!(expr().await, "servers.uphost.loadavg.01");
    b.wait_for("#builder-param-windowSize")
        .await
        .send_keys("5")
        .await
        .unwrap();
    b.wait_for("#builder-wrap").await.click().await.unwrap();
    assert_eq!(expr().await, "movingAverage(servers.uphost.loadavg.01,5)");
    // Wrapped again: a string parameter is quoted.
    choose("alias").await;
    b.wait_for("#builder-param-newName")
        .await
        .send_keys("smooth load")
        .await
        .unwrap();
    b.wait_for("#builder-wrap").await.click().await.unwrap();
    let built = "alias(movingAverage(servers.uphost.loadavg.01,5),'smooth load')";
    assert_eq!(expr().await, built);
    b.screenshot("builder").await;
    b.wait_for("#builder-use").await.click().await.unwrap();
    let target = b.wait_for("input.target").await;
    assert_eq!(target.prop("value").await.unwrap().as_deref(), Some(built));
    b.wait_for("#draw").await.click().await.unwrap();
    b.wait_text("#chart .u-legend", "smooth load").await;
    assert!(
        b.hash().await.contains("target=alias"),
        "{}",
        b.hash().await
    );
    b.screenshot("builder-graphed").await;
    b.close().await;
    assert!(c.stop());
}

/// Every page at phone width (390×844) without horizontal scrolling; dark and light as the
/// browser prefers (emulated through DevTools); the silence form reached and submitted by the
/// keyboard alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phone_width_dark_mode_and_the_keyboard() {
    let dir = tempfile::tempdir().unwrap();
    let alerts = "interval: 1s\napi_listen: off\ndocs_url: http://127.0.0.1:9/runbooks\n\
                  alerts:\n  - name: Load\n    target: servers.*.loadavg.01\n    \
                  warning: -2\n    critical: -1\n";
    let c = up(dir.path(), alerts);
    let b = Browser::start(1280, 800).await;
    let base = format!("http://{}/", c.http);
    b.cdp(
        "Emulation.setDeviceMetricsOverride",
        json!({"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": true}),
    )
    .await;
    for (page, ready) in [
        ("metrics", "#tree li[data-id='servers'] > button"),
        (
            "graph?target=servers.uphost.loadavg.01",
            "#chart .uplot canvas",
        ),
        ("status", "tr[data-row='points-received'] td.latest strong"),
        ("alerts", "section[data-alert='Load'] .mini-chart canvas"),
        ("silences", "#silence-form"),
        ("history", "#outbox-counts"),
    ] {
        b.client.goto(&format!("{base}#/{page}")).await.unwrap();
        b.wait_for(ready).await;
        let w = b
            .js("return [document.documentElement.scrollWidth, document.body.scrollWidth, window.innerWidth]")
            .await;
        assert_eq!(w[2], json!(390), "{page}: the viewport {w}");
        assert!(
            w[0].as_u64() <= Some(390) && w[1].as_u64() <= Some(390),
            "{page} scrolls sideways at 390 px: [document, body, viewport] = {w}"
        );
        if page == "alerts" {
            // The stacked cells say what they are: their column's heading before the value.
            let value = b
                .js("const td = document.querySelector(\"tr[data-series='servers.uphost.loadavg.01'] td:nth-child(3)\");
                     return [td.dataset.label, getComputedStyle(td, '::before').content]")
                .await;
            assert_eq!(value[0], json!("Value"), "{value}");
            assert_ne!(value[1], json!("none"), "{value}");
        }
        let name = page.split('?').next().unwrap();
        b.screenshot(&format!("phone-{name}")).await;
    }

    // Dark and light, as the browser prefers: the page's own colours follow.
    let colours = "const s = getComputedStyle(document.body); return [s.backgroundColor, s.color]";
    for (scheme, bg, fg) in [
        ("dark", "rgb(15, 20, 25)", "rgb(216, 222, 228)"),
        ("light", "rgb(255, 255, 255)", "rgb(29, 33, 39)"),
    ] {
        b.cdp(
            "Emulation.setEmulatedMedia",
            json!({"features": [{"name": "prefers-color-scheme", "value": scheme}]}),
        )
        .await;
        b.client.goto(&format!("{base}#/alerts")).await.unwrap();
        b.client.refresh().await.unwrap();
        b.wait_for("section[data-alert='Load'] .mini-chart canvas")
            .await;
        assert_eq!(b.js(colours).await, json!([bg, fg]), "{scheme}");
        b.screenshot(&format!("{scheme}-alerts-phone")).await;
    }
    b.cdp("Emulation.clearDeviceMetricsOverride", json!({}))
        .await;
    b.cdp(
        "Emulation.setEmulatedMedia",
        json!({"features": [{"name": "prefers-color-scheme", "value": "dark"}]}),
    )
    .await;
    b.client
        .goto(&format!("{base}#/graph?target=servers.uphost.loadavg.01"))
        .await
        .unwrap();
    b.client.refresh().await.unwrap();
    b.wait_for("#chart .uplot canvas").await;
    assert_eq!(b.js(colours).await[0], json!("rgb(15, 20, 25)"));
    b.screenshot("dark-graph").await;

    // The keyboard alone: from a fresh page, Tab reaches the skip link first, then the
    // silence form; typing fills it and Enter submits it.
    b.client.goto(&format!("{base}#/silences")).await.unwrap();
    b.client.refresh().await.unwrap();
    b.wait_for("#silence-form").await;
    b.press("\u{E004}").await;
    assert_eq!(
        b.js("return document.activeElement.className").await,
        json!("skip"),
        "the first Tab stop is the skip link"
    );
    let mut tabs = 1;
    while b.active_id().await != "silence-alert" {
        b.press("\u{E004}").await;
        tabs += 1;
        assert!(tabs < 40, "Tab never reached the silence form");
    }
    b.select_all().await;
    b.press("Load\u{E004}").await;
    assert_eq!(b.active_id().await, "silence-series");
    b.select_all().await;
    b.press("servers.uphost.*\u{E004}").await;
    assert_eq!(b.active_id().await, "silence-duration");
    b.select_all().await;
    b.press("15m\u{E004}").await;
    assert_eq!(b.active_id().await, "silence-comment");
    b.press("typed, never clicked\u{E007}").await;
    b.wait_text("#silence-message", "added").await;
    let listed = b.wait_text("#silences", "typed, never clicked").await;
    assert!(listed.contains("servers.uphost.*"), "{listed}");
    b.screenshot("keyboard-silence").await;
    b.close().await;
    assert!(c.stop());
}
