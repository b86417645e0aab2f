//! `for` and `keep_firing_for` through the real run loop (`daemon::run_with`: state file,
//! outbox worker, notifiers) against the embedded render server (carbide's store and its
//! graphite-web-compatible HTTP API, in process). The loop's clock is injected
//! (`Ticks::Manual`: each tick is the unix time of a cycle), so minutes pass between cycles
//! without waiting and nothing depends on the wall clock but the data's placement.

mod common;

use std::path::Path;
use std::sync::Arc;

use alerter::config::Config;
use alerter::daemon::{run_with, Ticks};
use alerter::outbox::RetryPolicy;
use alerter::pipeline::engine::CycleReport;
use alerter::pipeline::evaluate::RenderBackend;
use common::Receiver;
use graphite::store::schema::Schemas;
use graphite::store::Store;
use tokio::sync::{mpsc, watch};

/// carbide's embedded server on 127.0.0.1 over a fresh store (`1s:1d`).
async fn embedded_server(dir: &Path) -> (Arc<Store>, String) {
    let schemas = Schemas::parse("[all]\npattern = .\nretentions = 1s:1d\n", "s", "", "a").unwrap();
    let store = Arc::new(Store::open(dir, schemas, 1 << 20).await.unwrap());
    let router = graphite::server::router(store.clone(), &graphite::server::HttpConfig::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(graphite::server::serve(
        listener,
        router,
        std::future::pending(),
    ));
    (store, url)
}

/// The test's side of the run loop: its clock and its reports.
struct Driver {
    at: mpsc::Sender<i64>,
    reports: mpsc::Receiver<CycleReport>,
    _shutdown: watch::Sender<bool>,
}

/// The run loop (a future to poll next to the test's steps: it holds SQLite transactions
/// across awaits, which `tokio::spawn`'s `Send` bound cannot prove) and its driver.
fn run_loop(
    cfg: &Arc<Config>,
    url: &str,
) -> (
    Driver,
    impl std::future::Future<Output = anyhow::Result<()>>,
) {
    let backend = Arc::new(
        RenderBackend::from_settings(
            &alerter::config::GraphiteSettings {
                url: Some(url.to_string()),
                ..Default::default()
            },
            cfg.request_timeout,
        )
        .unwrap(),
    );
    let (at_tx, at) = mpsc::channel(1);
    let (reports_tx, reports) = mpsc::channel(1);
    let (sd_tx, sd) = watch::channel(false);
    let fut = run_with(
        cfg.clone(),
        backend,
        RetryPolicy::default(),
        sd,
        Ticks::Manual {
            at,
            reports: reports_tx,
        },
        None,
        None,
    );
    (
        Driver {
            at: at_tx,
            reports,
            _shutdown: sd_tx,
        },
        fut,
    )
}

impl Driver {
    /// One cycle as of `t`: the level changes it made, as `"FROM->TO"`.
    async fn cycle(&mut self, t: i64) -> Vec<String> {
        self.at.send(t).await.unwrap();
        let r = self
            .reports
            .recv()
            .await
            .expect("the loop reports every cycle");
        assert_eq!(r.at, t);
        assert_eq!(r.fetch_errors, 0);
        r.changes
            .iter()
            .map(|c| format!("{}->{}", c.previous, c.level))
            .collect()
    }
}

async fn wait_requests(rx: &Receiver, n: usize) {
    for _ in 0..400 {
        if rx.requests().len() >= n {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!(
        "the receiver got {} requests, wanted {n}",
        rx.requests().len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn for_and_keep_firing_for_through_the_run_loop() {
    let dir = tempfile::tempdir().unwrap();
    let (store, url) = embedded_server(&dir.path().join("data")).await;
    let hook = Receiver::start(vec![200]).await;
    let text = format!(
        "docs_url: https://wiki.example.com/alerts
graphite_url: {url}
state_file: {state}
api_listen: off
notifiers:
  hook:
    type: webhook
    url: {hook}
routes:
  critical: [hook]
  warning: [hook]
alerts:
  - name: Load
    target: aliasByNode(servers.*.loadavg.01,1)
    warning: 10
    critical: 20
    from: -10min
    for: 2m
    keep_firing_for: 3m
",
        state = dir.path().join("state.db").display(),
        hook = hook.url("/hook"),
    );
    let cfg =
        Arc::new(Config::from_str_with_env(Path::new("alerts.yml"), &text, &|_| None).unwrap());
    // Points go in one second apart inside the render window; the newest is the value.
    let mut ts = graphite::store::unix_now() - 300;
    let set = move |v: f64| {
        ts += 1;
        assert!(store.insert("servers.web-1.loadavg.01", ts, v));
    };

    let t0 = 1_800_000_000;
    let m = |minutes: i64| t0 + 60 * minutes;
    let none = Vec::<String>::new;

    // First run of the loop. A one-minute blip does not fire: the breach must hold for
    // 2 minutes at every cycle.
    let (mut lp, run) = run_loop(&cfg, &url);
    let steps = async move {
        let mut set = set;
        set(25.0);
        assert_eq!(lp.cycle(m(0)).await, none());
        set(1.0);
        assert_eq!(lp.cycle(m(1)).await, none());
        set(25.0);
        assert_eq!(lp.cycle(m(2)).await, none(), "the blip reset the for clock");
        assert_eq!(lp.cycle(m(3)).await, none());
        set // closing the clock (dropping lp) ends the loop
    };
    let (done, mut set) = tokio::join!(run, steps);
    done.unwrap();

    // A restart keeps the pending breach (persisted with its start): it fires 2 minutes
    // after m(2). Back to normal, it keeps firing for 3 minutes; a relapse inside them
    // restarts that clock.
    let (mut lp, run) = run_loop(&cfg, &url);
    let hook2 = hook.clone();
    let steps = async move {
        let hook = hook2;
        assert_eq!(lp.cycle(m(4)).await, vec!["OK->CRITICAL"]);
        wait_requests(&hook, 1).await;
        let page = hook.requests()[0].json();
        assert_eq!(
            (&page["action"], &page["level"], &page["series"]),
            (
                &serde_json::json!("trigger"),
                &serde_json::json!("CRITICAL"),
                &serde_json::json!("web-1")
            )
        );
        assert_eq!(page["timestamp"], m(4));
        assert_eq!(page["value"], 25.0);

        set(1.0);
        assert_eq!(lp.cycle(m(5)).await, none());
        assert_eq!(lp.cycle(m(7)).await, none(), "2 of the 3 minutes");
        set(22.0);
        assert_eq!(
            lp.cycle(m(8)).await,
            none(),
            "relapse: still CRITICAL, nothing sent"
        );
        set(1.0);
        assert_eq!(lp.cycle(m(9)).await, none());
        assert_eq!(
            lp.cycle(m(11)).await,
            none(),
            "2 minutes after the relapse ended"
        );
        assert_eq!(lp.cycle(m(12)).await, vec!["CRITICAL->OK"]);
        wait_requests(&hook, 2).await;
        let resolve = hook.requests()[1].json();
        assert_eq!(resolve["action"], "resolve");
        assert_eq!(resolve["timestamp"], m(12));
        assert_eq!(lp.cycle(m(13)).await, none());
    };
    let (done, ()) = tokio::join!(run, steps);
    done.unwrap();
    assert_eq!(hook.requests().len(), 2, "one page, one resolve");
}
