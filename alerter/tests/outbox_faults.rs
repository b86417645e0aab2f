//! Fault tests: the outbox with real notifiers and a real HTTP receiver.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use alerter::clock::now_ms;
use alerter::notification::{Action, Level};
use alerter::notifiers::pagerduty::{PagerDuty, PagerDutyConfig};
use alerter::notifiers::Notifier;
use alerter::outbox::{Counts, NotifierMap, Outbox, RetryPolicy};
use common::*;
use conf::Secret;

fn pd(url: String) -> NotifierMap {
    let n = PagerDuty::new(PagerDutyConfig {
        routing_key: Some(Secret::new("key")),
        url,
        ..Default::default()
    })
    .unwrap();
    BTreeMap::from([("pagerduty".to_string(), Arc::new(n) as Arc<dyn Notifier>)])
}

fn fast() -> RetryPolicy {
    RetryPolicy {
        initial: Duration::from_millis(5),
        max: Duration::from_millis(20),
        ..RetryPolicy::default()
    }
}

async fn wait_delivered(ob: &Outbox, n: u64) -> Counts {
    for _ in 0..1000 {
        let c = ob.counts().await.unwrap();
        if c.delivered >= n {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    ob.counts().await.unwrap()
}

#[tokio::test]
async fn receiver_down_then_back_gets_each_page_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let ob = Outbox::open(&dir.path().join("state.db")).await.unwrap();
    let addr = free_addr(); // nothing listens yet
    let notifiers = pd(format!("http://{addr}/v2/enqueue"));
    let trigger = message(Action::Trigger, Level::Critical, Level::Ok, "pagerduty");
    let resolve = message(Action::Resolve, Level::Ok, Level::Critical, "pagerduty");
    ob.enqueue("pagerduty", &trigger).await.unwrap();
    ob.enqueue("pagerduty", &resolve).await.unwrap();

    // Down: a pass tries the head once, keeps both rows.
    let s = ob.deliver_due(&notifiers, &fast(), now_ms()).await.unwrap();
    assert_eq!((s.delivered, s.retried), (0, 1));
    assert_eq!(ob.counts().await.unwrap().pending, 2);

    // Back up (first answer 503, then 202): the worker delivers both, once each, in order.
    let rx = Receiver::start_on(addr, vec![503, 202]).await;
    let (tx, shutdown) = tokio::sync::watch::channel(false);
    let worker = {
        let ob = ob.clone();
        tokio::spawn(async move { ob.run(notifiers, fast(), shutdown).await })
    };
    let c = wait_delivered(&ob, 2).await;
    tx.send(true).unwrap();
    worker.await.unwrap();
    assert_eq!(
        c,
        Counts {
            pending: 0,
            delivered: 2,
            failed: 0,
            expired: 0
        }
    );
    let got = rx.requests();
    assert_eq!(got.len(), 3, "one 503, then each page once");
    let actions: Vec<String> = got
        .iter()
        .map(|g| g.json()["event_action"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(actions, ["trigger", "trigger", "resolve"]);
}

#[tokio::test]
async fn pending_rows_survive_a_crash_and_are_sent_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let rx = Receiver::start(vec![202]).await;
    let trigger = message(Action::Trigger, Level::Critical, Level::Ok, "pagerduty");
    {
        let ob = Outbox::open(&path).await.unwrap();
        ob.enqueue("pagerduty", &trigger).await.unwrap();
        // Crash mid-delivery: the receiver got it, the row was never marked delivered.
        pd(rx.url("/v2/enqueue"))["pagerduty"]
            .send(&trigger)
            .await
            .unwrap();
        drop(ob); // no close(), no mark
    }
    let ob = Outbox::open(&path).await.unwrap();
    // The evaluator re-enqueues the same event after restart: no second row.
    assert!(!ob.enqueue("pagerduty", &trigger).await.unwrap());
    let s = ob
        .deliver_due(&pd(rx.url("/v2/enqueue")), &fast(), now_ms())
        .await
        .unwrap();
    assert_eq!(s.delivered, 1);
    let s = ob
        .deliver_due(&pd(rx.url("/v2/enqueue")), &fast(), now_ms())
        .await
        .unwrap();
    assert_eq!(s.delivered, 0, "nothing left to send");
    let got = rx.requests();
    // At-least-once: sent again exactly once after the restart, with the same dedup_key, so
    // PagerDuty keeps one incident.
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].json()["dedup_key"], got[1].json()["dedup_key"]);
    assert_eq!(
        ob.counts().await.unwrap(),
        Counts {
            pending: 0,
            delivered: 1,
            failed: 0,
            expired: 0
        }
    );
}

#[tokio::test]
async fn permanent_rejection_is_failed_not_retried() {
    let dir = tempfile::tempdir().unwrap();
    let ob = Outbox::open(&dir.path().join("state.db")).await.unwrap();
    let rx = Receiver::start(vec![400, 202]).await;
    ob.enqueue(
        "pagerduty",
        &message(Action::Trigger, Level::Critical, Level::Ok, "pagerduty"),
    )
    .await
    .unwrap();
    ob.enqueue(
        "pagerduty",
        &message(
            Action::Trigger,
            Level::Warning,
            Level::Critical,
            "pagerduty",
        ),
    )
    .await
    .unwrap();
    let s = ob
        .deliver_due(&pd(rx.url("/")), &fast(), now_ms())
        .await
        .unwrap();
    assert_eq!((s.delivered, s.failed, s.retried), (1, 1, 0));
    assert_eq!(
        ob.counts().await.unwrap(),
        Counts {
            pending: 0,
            delivered: 1,
            failed: 1,
            expired: 0
        }
    );
    assert_eq!(rx.requests().len(), 2);
}
