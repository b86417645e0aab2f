//! The evaluation pipeline end to end with real parts: a render server on 127.0.0.1 whose
//! values change between cycles, the SQLite state file, the outbox, and real HTTP receivers
//! for PagerDuty v2, Slack and a webhook.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use alerter::clock::now_ms;
use alerter::config::Config;
use alerter::notification::Level;
use alerter::outbox::{NotifierMap, Outbox, RetryPolicy};
use alerter::pipeline::engine::{Engine, Mode};
use alerter::pipeline::evaluate::{FetchPlan, RenderBackend};
use common::render::RenderServer;
use common::Receiver;

struct Rig {
    render: RenderServer,
    pd: Receiver,
    slack: Receiver,
    hook: Receiver,
    dir: tempfile::TempDir,
}

impl Rig {
    async fn start() -> Rig {
        Rig {
            render: RenderServer::start().await,
            pd: Receiver::start(vec![202]).await,
            slack: Receiver::start(vec![200]).await,
            hook: Receiver::start(vec![200]).await,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn config(&self, extra_alert: &str) -> Config {
        let text = format!(
            "docs_url: https://wiki.example.com/alerts
graphite_url: {render}
pagerduty_key: pd-routing-key
pagerduty_url: {pd}
slack_url: {slack}
state_file: {state}
notifiers:
  hook:
    type: webhook
    url: {hook}
routes:
  warning: [slack, hook]
  critical: [pagerduty, slack, hook]
  no_data: [hook]
alerts:
  - name: Load average
    target: aliasByNode(servers.*.loadavg.01,1)
    warning: 10
    critical: 20
{extra_alert}",
            render = self.render.url(),
            pd = self.pd.url("/v2/enqueue"),
            slack = self.slack.url("/services/T/B/x"),
            hook = self.hook.url("/hook"),
            state = self.dir.path().join("state.db").display(),
        );
        Config::from_str_with_env(Path::new("alerts.yml"), &text, &|_| None).unwrap()
    }

    async fn engine(&self, cfg: &Config) -> (Engine, Outbox, NotifierMap) {
        let cfg = Arc::new(cfg.clone());
        let outbox = Outbox::open(&cfg.state_file).await.unwrap();
        let mut notifiers = NotifierMap::new();
        for (name, spec) in &cfg.notifiers {
            if name != "console" {
                notifiers.insert(name.clone(), Arc::from(spec.build().unwrap()));
            } else {
                notifiers.insert(name.clone(), Arc::new(Quiet));
            }
        }
        let backend =
            Arc::new(RenderBackend::from_settings(&cfg.graphite, Duration::from_secs(5)).unwrap());
        let plan = FetchPlan {
            concurrency: 4,
            timeout: Duration::from_secs(5),
            spread: Duration::ZERO,
        };
        let e = Engine::new(cfg, backend, Some(outbox.clone()), plan)
            .await
            .unwrap();
        (e, outbox, notifiers)
    }

    /// (receiver, action/event, level) for every request so far.
    fn got(&self) -> Vec<(&'static str, String, String)> {
        let mut out = Vec::new();
        for r in self.pd.requests() {
            let j = r.json();
            out.push((
                "pd",
                j["event_action"].as_str().unwrap().to_string(),
                j["payload"]["severity"].as_str().unwrap().to_string(),
            ));
        }
        for r in self.slack.requests() {
            let j = r.json();
            out.push((
                "slack",
                String::new(),
                j["text"].as_str().unwrap().to_string(),
            ));
        }
        for r in self.hook.requests() {
            let j = r.json();
            out.push((
                "hook",
                j["action"].as_str().unwrap().to_string(),
                j["level"].as_str().unwrap().to_string(),
            ));
        }
        out
    }
}

/// The console notifier without output noise in tests.
#[derive(Debug)]
struct Quiet;

#[async_trait::async_trait]
impl alerter::notifiers::Notifier for Quiet {
    async fn send(
        &self,
        _: &alerter::notifiers::Message,
    ) -> Result<(), alerter::notifiers::NotifyError> {
        Ok(())
    }
}

async fn cycle(
    e: &mut Engine,
    ob: &Outbox,
    n: &NotifierMap,
    now: i64,
) -> alerter::pipeline::engine::CycleReport {
    let r = e.cycle(now, Mode::Live).await.unwrap();
    let fast = RetryPolicy {
        initial: Duration::from_millis(1),
        max: Duration::from_millis(1),
        ..RetryPolicy::default()
    };
    ob.deliver_due(n, &fast, now_ms()).await.unwrap();
    r
}

#[tokio::test]
async fn ok_warning_critical_ok_sends_exactly_the_right_pages() {
    let rig = Rig::start().await;
    let cfg = rig.config("");
    let (mut e, ob, n) = rig.engine(&cfg).await;
    rig.render.set("servers.web-1.loadavg.01", Some(5.0));
    rig.render.set("servers.web-2.loadavg.01", Some(1.0));

    let r = cycle(&mut e, &ob, &n, 1000).await;
    assert!(r.changes.is_empty() && r.messages.is_empty());
    assert_eq!(r.levels[&Level::Ok], 2);
    assert!(rig.got().is_empty());

    rig.render.set("servers.web-1.loadavg.01", Some(15.0));
    cycle(&mut e, &ob, &n, 1060).await;
    assert_eq!(
        rig.got(),
        vec![
            (
                "slack",
                "".into(),
                "WARNING alert for Load average web-1".into()
            ),
            ("hook", "trigger".into(), "WARNING".into()),
        ]
    );

    rig.render.set("servers.web-1.loadavg.01", Some(25.0));
    cycle(&mut e, &ob, &n, 1120).await;
    let got = rig.got();
    assert_eq!(got.len(), 5, "{got:?}");
    assert!(got.contains(&("pd", "trigger".into(), "critical".into())));
    assert!(got.contains(&(
        "slack",
        "".into(),
        "CRITICAL alert for Load average web-1".into()
    )));
    assert_eq!(got[4], ("hook", "trigger".into(), "CRITICAL".into()));

    // Unchanged: nothing new.
    cycle(&mut e, &ob, &n, 1180).await;
    assert_eq!(rig.got().len(), 5);

    rig.render.set("servers.web-1.loadavg.01", Some(1.0));
    cycle(&mut e, &ob, &n, 1240).await;
    let got = rig.got();
    assert_eq!(got.len(), 8, "{got:?}");
    let pd = rig.pd.requests();
    assert_eq!(pd.len(), 2);
    let (trigger, resolve) = (pd[0].json(), pd[1].json());
    assert_eq!(resolve["event_action"], "resolve");
    assert_eq!(trigger["dedup_key"], "Load average web-1");
    assert_eq!(resolve["dedup_key"], trigger["dedup_key"]);
    assert_eq!(trigger["routing_key"], "pd-routing-key");
    assert_eq!(
        trigger["links"][0]["href"],
        "https://wiki.example.com/alerts/Load%20average#web-1"
    );
    let hook = rig.hook.requests();
    assert_eq!(hook.len(), 3);
    let last = hook[2].json();
    assert_eq!(
        (
            last["action"].as_str(),
            last["level"].as_str(),
            last["previous_level"].as_str()
        ),
        (Some("resolve"), Some("OK"), Some("CRITICAL"))
    );
    assert_eq!(
        last["runbook_url"],
        "https://wiki.example.com/alerts/Load%20average#web-1"
    );
    assert_eq!(last["value"], 1.0);
    assert_eq!(hook[1].json()["threshold"], 20.0);
    assert!(hook[1].json()["graph_url"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{}/render/?", rig.render.url())));
    // Slack got the resolve too (it was routed the CRITICAL).
    assert_eq!(rig.slack.requests().len(), 3);
    // History keeps the three changes, newest first.
    let h = e.store().unwrap().history(10).await.unwrap();
    let levels: Vec<(Level, Level)> = h.iter().map(|h| (h.previous, h.level)).collect();
    assert_eq!(
        levels,
        vec![
            (Level::Critical, Level::Ok),
            (Level::Warning, Level::Critical),
            (Level::Ok, Level::Warning)
        ]
    );
}

#[tokio::test]
async fn restart_while_firing_neither_repages_nor_forgets_the_resolve() {
    let rig = Rig::start().await;
    let cfg = rig.config("");
    rig.render.set("servers.web-1.loadavg.01", Some(25.0));
    {
        let (mut e, ob, n) = rig.engine(&cfg).await;
        cycle(&mut e, &ob, &n, 1000).await;
        ob.close().await;
    }
    assert_eq!(rig.pd.requests().len(), 1);
    let (mut e, ob, n) = rig.engine(&cfg).await;
    let r = cycle(&mut e, &ob, &n, 1060).await;
    assert!(r.messages.is_empty(), "{:?}", r.messages);
    assert_eq!(rig.pd.requests().len(), 1, "no re-page after restart");
    rig.render.set("servers.web-1.loadavg.01", Some(0.5));
    cycle(&mut e, &ob, &n, 1120).await;
    let pd = rig.pd.requests();
    assert_eq!(pd.len(), 2);
    assert_eq!(pd[1].json()["event_action"], "resolve");
}

#[tokio::test]
async fn no_data_policies_for_fetch_error_vanished_and_all_null() {
    let rig = Rig::start().await;
    let cfg = rig.config(
        "    no_data:
      fetch_error: {level: ERROR, cycles: 2}
      vanished: {level: NO_DATA, cycles: 2}
",
    );
    let (mut e, ob, n) = rig.engine(&cfg).await;
    rig.render.set("servers.web-1.loadavg.01", Some(1.0));
    rig.render.set("servers.web-2.loadavg.01", Some(1.0));
    cycle(&mut e, &ob, &n, 0).await;
    // web-2 vanishes: NO_DATA after two cycles, routed to the hook.
    rig.render.remove("servers.web-2.loadavg.01");
    let r = cycle(&mut e, &ob, &n, 60).await;
    assert!(r.changes.is_empty());
    let r = cycle(&mut e, &ob, &n, 120).await;
    assert_eq!(r.changes.len(), 1);
    assert_eq!(
        (r.changes[0].series.as_str(), r.changes[0].level),
        ("web-2", Level::NoData)
    );
    assert_eq!(rig.hook.requests()[0].json()["level"], "NO_DATA");
    // web-1 all null: NO_DATA at once (default rule).
    rig.render.set("servers.web-1.loadavg.01", None);
    let r = cycle(&mut e, &ob, &n, 180).await;
    assert_eq!(r.changes[0].level, Level::NoData);
    // The render API fails: ERROR after two cycles for every known series.
    rig.render
        .data
        .lock()
        .unwrap()
        .fail
        .push("aliasByNode(servers.*.loadavg.01,1)".into());
    assert!(cycle(&mut e, &ob, &n, 240).await.changes.is_empty());
    let r = cycle(&mut e, &ob, &n, 300).await;
    let mut got: Vec<(String, Level)> = r
        .changes
        .iter()
        .map(|c| (c.series.clone(), c.level))
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("web-1".into(), Level::Error),
            ("web-2".into(), Level::Error)
        ]
    );
    assert_eq!(r.fetch_errors, 1);
    // Back: both resolve to OK; the hook (routed NO_DATA) gets resolves.
    rig.render.data.lock().unwrap().fail.clear();
    rig.render.set("servers.web-1.loadavg.01", Some(1.0));
    rig.render.set("servers.web-2.loadavg.01", Some(1.0));
    let r = cycle(&mut e, &ob, &n, 360).await;
    assert_eq!(r.changes.len(), 2);
    assert!(r.changes.iter().all(|c| c.level == Level::Ok));
    let hook = rig.hook.requests();
    let last: Vec<String> = hook
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r.json()["action"].as_str().unwrap(),
                r.json()["level"].as_str().unwrap()
            )
        })
        .collect();
    // NO_DATA → ERROR: ERROR routes nowhere here, so the hook (told NO_DATA) gets a resolve;
    // ERROR → OK then has nobody to tell.
    assert_eq!(
        last,
        [
            "trigger NO_DATA",
            "trigger NO_DATA",
            "resolve ERROR",
            "resolve ERROR"
        ]
    );
}

#[tokio::test]
async fn silence_holds_the_page_and_it_is_sent_when_the_silence_ends() {
    let rig = Rig::start().await;
    let cfg = rig.config("");
    let (mut e, ob, n) = rig.engine(&cfg).await;
    let store = e.store().unwrap().clone();
    let id = store
        .add_silence("Load*", "web-*", "deploy", "test", 0, 10_000)
        .await
        .unwrap();
    rig.render.set("servers.web-1.loadavg.01", Some(25.0));
    rig.render.set("servers.db-1.loadavg.01", Some(25.0));
    let r = cycle(&mut e, &ob, &n, 1000).await;
    assert_eq!(r.held, 1);
    assert_eq!(r.changes.iter().filter(|c| c.silenced).count(), 1);
    let pd = rig.pd.requests();
    assert_eq!(pd.len(), 1, "db-1 pages, web-1 is silenced");
    assert_eq!(pd[0].json()["dedup_key"], "Load average db-1");
    // Still silenced: still held.
    assert_eq!(cycle(&mut e, &ob, &n, 1060).await.held, 1);
    store.expire_silence(id, 1100).await.unwrap();
    let r = cycle(&mut e, &ob, &n, 1120).await;
    assert_eq!(r.held, 0);
    assert!(
        r.changes.is_empty(),
        "the level did not change; the held page is sent"
    );
    let pd = rig.pd.requests();
    assert_eq!(pd.len(), 2);
    assert_eq!(pd[1].json()["dedup_key"], "Load average web-1");
    assert_eq!(pd[1].json()["event_action"], "trigger");

    // A change that comes and goes inside a silence sends nothing afterwards.
    let id = store
        .add_silence("*", "db-1", "", "", 1130, 10_000)
        .await
        .unwrap();
    rig.render.set("servers.db-1.loadavg.01", Some(1.0));
    cycle(&mut e, &ob, &n, 1180).await;
    rig.render.set("servers.db-1.loadavg.01", Some(25.0));
    cycle(&mut e, &ob, &n, 1240).await;
    store.expire_silence(id, 1250).await.unwrap();
    let r = cycle(&mut e, &ob, &n, 1300).await;
    assert!(r.messages.is_empty());
    assert_eq!(rig.pd.requests().len(), 2);
}

#[tokio::test]
async fn repeat_interval_resends_while_firing() {
    let rig = Rig::start().await;
    let cfg = rig.config("    repeat_interval: 5m\n");
    let (mut e, ob, n) = rig.engine(&cfg).await;
    rig.render.set("servers.web-1.loadavg.01", Some(25.0));
    for t in (0..=600).step_by(60) {
        cycle(&mut e, &ob, &n, t).await;
    }
    let pd = rig.pd.requests();
    assert_eq!(pd.len(), 3, "at 0, 300 and 600");
    assert!(pd
        .iter()
        .all(|r| r.json()["event_action"] == "trigger"
            && r.json()["dedup_key"] == "Load average web-1"));
}

#[tokio::test]
async fn for_and_keep_firing_for_through_the_engine() {
    let rig = Rig::start().await;
    let cfg = rig.config("    for: 2m\n    keep_firing_for: 2m\n");
    let (mut e, ob, n) = rig.engine(&cfg).await;
    rig.render.set("servers.web-1.loadavg.01", Some(25.0));
    let mut fired = Vec::new();
    for t in [0, 60, 120, 180] {
        let r = cycle(&mut e, &ob, &n, t).await;
        fired.extend(r.changes.iter().map(|c| (t, c.level)));
    }
    rig.render.set("servers.web-1.loadavg.01", Some(1.0));
    for t in [240, 300, 360, 420] {
        let r = cycle(&mut e, &ob, &n, t).await;
        fired.extend(r.changes.iter().map(|c| (t, c.level)));
    }
    assert_eq!(fired, vec![(120, Level::Critical), (360, Level::Ok)]);
    let pd = rig.pd.requests();
    assert_eq!(pd.len(), 2);
    assert_eq!(pd[0].json()["event_action"], "trigger");
    assert_eq!(pd[1].json()["event_action"], "resolve");
    // The API view shows the pending level while it waits.
    rig.render.set("servers.web-1.loadavg.01", Some(25.0));
    cycle(&mut e, &ob, &n, 480).await;
    let view = e.snapshot.read().unwrap().clone();
    assert_eq!(
        (view[0].level, view[0].pending),
        (Level::Ok, Some(Level::Critical))
    );
}
