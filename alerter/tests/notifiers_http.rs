//! Slack, PagerDuty v2 and webhook payloads checked by a real local HTTP receiver. (The
//! shared kit over every notifier — retry classification, no secret in any error or Debug
//! string — is notifier_kit.rs.)

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use alerter::notification::{Action, Level};
use alerter::notifiers::pagerduty::{PagerDuty, PagerDutyConfig};
use alerter::notifiers::slack::{Slack, SlackConfig};
use alerter::notifiers::webhook::{Webhook, WebhookConfig};
use alerter::notifiers::{LevelSecrets, Notifier};
use common::*;
use conf::Secret;

const SECRET: &str = "SEKRET-9f3a77";

fn pagerduty(url: String) -> PagerDuty {
    let cfg = PagerDutyConfig {
        routing_key: Some(Secret::new(SECRET)),
        routing_keys: LevelSecrets {
            warning: Some(Secret::new("warn-key")),
            ..Default::default()
        },
        url,
        timeout: Duration::from_secs(5),
        alert_keys: BTreeMap::new(),
    };
    PagerDuty::new(cfg).unwrap()
}

fn slack(url: String) -> Slack {
    Slack::new(SlackConfig {
        url: Some(Secret::new(url)),
        channel: Some("#ops".into()),
        username: Some("carbide".into()),
        ..Default::default()
    })
    .unwrap()
}

fn webhook(url: String) -> Webhook {
    Webhook::new(WebhookConfig {
        url: Secret::new(url),
        headers: BTreeMap::from([(
            "Authorization".into(),
            Secret::new(format!("Bearer {SECRET}")),
        )]),
        timeout: Duration::from_secs(5),
    })
    .unwrap()
}

#[tokio::test]
async fn pagerduty_v2_trigger_and_resolve_payloads() {
    let rx = Receiver::start(vec![202]).await;
    let pd = pagerduty(rx.url("/v2/enqueue"));
    pd.send(&message(
        Action::Trigger,
        Level::Critical,
        Level::Ok,
        "pagerduty",
    ))
    .await
    .unwrap();
    pd.send(&message(
        Action::Resolve,
        Level::Ok,
        Level::Critical,
        "pagerduty",
    ))
    .await
    .unwrap();
    // A WARNING trigger uses the warning routing key.
    pd.send(&message(
        Action::Trigger,
        Level::Warning,
        Level::Ok,
        "pagerduty",
    ))
    .await
    .unwrap();
    let got = rx.requests();
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].path, "/v2/enqueue");
    let t = got[0].json();
    assert_eq!(t["routing_key"], SECRET);
    assert_eq!(t["event_action"], "trigger");
    assert_eq!(t["dedup_key"], "HAProxy check duration lb-1");
    assert_eq!(
        t["payload"]["summary"],
        "CRITICAL alert for HAProxy check duration lb-1"
    );
    assert_eq!(t["payload"]["source"], "lb-1");
    assert_eq!(t["payload"]["severity"], "critical");
    assert_eq!(t["payload"]["timestamp"], "2023-11-14T22:13:20Z");
    assert_eq!(t["payload"]["custom_details"]["value"], 1234.0);
    assert_eq!(t["payload"]["custom_details"]["labels"]["team"], "edge");
    assert_eq!(
        t["links"][0]["href"],
        "https://wiki.example.com/alerts/HAProxy%20check%20duration#lb-1"
    );
    assert_eq!(t["links"][0]["text"], "Runbook");
    assert!(t["links"][1]["href"]
        .as_str()
        .unwrap()
        .starts_with("https://graphite.example.com/render/?"));
    let r = got[1].json();
    assert_eq!(r["event_action"], "resolve");
    assert_eq!(r["dedup_key"], t["dedup_key"]);
    assert_eq!(
        r["routing_key"], SECRET,
        "a resolve goes to the key its trigger used"
    );
    assert_eq!(got[2].json()["routing_key"], "warn-key");
    assert_eq!(got[0].headers["content-type"], "application/json");
}

#[tokio::test]
async fn slack_payload_is_mattermost_compatible() {
    let rx = Receiver::start(vec![200]).await;
    let s = slack(rx.url(&format!("/services/T000/B000/{SECRET}")));
    s.send(&message(
        Action::Trigger,
        Level::Critical,
        Level::Warning,
        "slack",
    ))
    .await
    .unwrap();
    s.send(&message(
        Action::Resolve,
        Level::Ok,
        Level::Critical,
        "slack",
    ))
    .await
    .unwrap();
    let got = rx.requests();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].path, format!("/services/T000/B000/{SECRET}"));
    let b = got[0].json();
    assert_eq!(b["text"], "CRITICAL alert for HAProxy check duration lb-1");
    assert_eq!(b["channel"], "#ops");
    assert_eq!(b["username"], "carbide");
    let a = &b["attachments"][0];
    assert_eq!(a["color"], "#FF0000");
    assert_eq!(
        a["title_link"],
        "https://wiki.example.com/alerts/HAProxy%20check%20duration#lb-1"
    );
    assert_eq!(a["fields"][0]["title"], "CRITICAL");
    assert!(a["text"].as_str().unwrap().contains("1234"));
    let r = got[1].json();
    assert_eq!(r["attachments"][0]["color"], "#00FF00");
    assert!(r["attachments"][0]["title"]
        .as_str()
        .unwrap()
        .starts_with("RESOLVED"));
}

#[tokio::test]
async fn webhook_payload_and_idempotency_header() {
    let rx = Receiver::start(vec![204]).await;
    let w = webhook(rx.url("/hook"));
    let m = message(Action::Trigger, Level::NoData, Level::Ok, "webhook");
    w.send(&m).await.unwrap();
    let got = rx.requests();
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].headers["idempotency-key"],
        m.idempotency_key.as_str()
    );
    assert_eq!(
        got[0].headers["authorization"],
        format!("Bearer {SECRET}").as_str()
    );
    let b = got[0].json();
    for (k, v) in [
        ("version", "1"),
        ("action", "trigger"),
        ("level", "NO_DATA"),
        ("previous_level", "OK"),
        ("series", "lb-1"),
        ("alert", "HAProxy check duration"),
    ] {
        assert_eq!(b[k], v, "{k}");
    }
    assert_eq!(b["idempotency_key"], m.idempotency_key.as_str());
    assert_eq!(b["dedup_key"], "HAProxy check duration lb-1");
    assert_eq!(b["threshold"], 1000.0);
    assert_eq!(b["annotations"]["note"], "check backends");
}
