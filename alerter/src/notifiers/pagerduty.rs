//! `pagerduty`: PagerDuty Events API v2.
//!
//! `POST {url}` (default `https://events.pagerduty.com/v2/enqueue`) with
//! `{routing_key, event_action: trigger|resolve, dedup_key, payload: {summary, source,
//! severity, timestamp, component, group, custom_details}, links: [{href, text}]}`.
//! `dedup_key` is the stable alert+series key, so a re-sent trigger updates the same incident
//! and a resolve closes it: PagerDuty makes the outbox's at-least-once delivery exactly-once.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::json;

use super::{keyed_level, pick_secret, LevelSecrets, Message, Notifier, NotifierKind, NotifyError};
use crate::notification::Level;
use crate::secret::Secret;

pub const KIND: NotifierKind = NotifierKind {
    name: "pagerduty",
    summary: "PagerDuty Events API v2 (trigger/resolve with dedup_key)",
};

pub const DEFAULT_URL: &str = "https://events.pagerduty.com/v2/enqueue";

fn default_url() -> String {
    DEFAULT_URL.to_string()
}

/// `type: pagerduty`. The built-in `pagerduty` notifier is made from Graphite Pager's
/// `PAGERDUTY_KEY`, `pagerduty:` and per-alert `pagerduty_key`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PagerDutyConfig {
    /// The integration's routing key (Events API v2), used when no more specific key is set.
    #[serde(default)]
    pub routing_key: Option<Secret>,
    /// A routing key per level (Graphite Pager's `pagerduty:` map).
    #[serde(default)]
    pub routing_keys: LevelSecrets,
    /// The Events API endpoint (override for a proxy or tests).
    #[serde(default = "default_url")]
    pub url: String,
    /// Per-request timeout.
    #[serde(default = "super::default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Per-alert keys (from `pagerduty_key:` on an alert), filled in by the config loader.
    #[serde(skip)]
    pub alert_keys: BTreeMap<String, Secret>,
}

impl Default for PagerDutyConfig {
    fn default() -> Self {
        PagerDutyConfig {
            routing_key: None,
            routing_keys: LevelSecrets::default(),
            url: default_url(),
            timeout: super::default_timeout(),
            alert_keys: BTreeMap::new(),
        }
    }
}

impl PagerDutyConfig {
    pub fn key_for(&self, alert: &str, level: Level) -> Option<&Secret> {
        pick_secret(
            &self.alert_keys,
            &self.routing_keys,
            self.routing_key.as_ref(),
            alert,
            level,
        )
    }
}

#[derive(Debug)]
pub struct PagerDuty {
    cfg: PagerDutyConfig,
    client: reqwest::Client,
}

impl PagerDuty {
    pub fn new(cfg: PagerDutyConfig) -> anyhow::Result<Self> {
        let client = super::http_client(cfg.timeout)?;
        Ok(PagerDuty { cfg, client })
    }
}

fn severity(level: Level) -> &'static str {
    match level {
        Level::Critical => "critical",
        Level::Warning => "warning",
        Level::NoData | Level::Error => "error",
        Level::Ok => "info",
    }
}

/// The JSON body, with the routing key given separately (so tests can check the rest).
pub fn payload(msg: &Message, routing_key: &str) -> serde_json::Value {
    let n = &msg.notification;
    let ts = humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + Duration::from_secs(n.timestamp.max(0).unsigned_abs()),
    )
    .to_string();
    let mut links = Vec::new();
    if let Some(u) = &n.runbook_url {
        links.push(json!({"href": u, "text": "Runbook"}));
    }
    if let Some(u) = &n.graph_url {
        links.push(json!({"href": u, "text": "Graph"}));
    }
    let summary: String = n.summary.chars().take(1024).collect();
    json!({
        "routing_key": routing_key,
        "event_action": msg.action,
        "dedup_key": n.dedup_key(),
        "payload": {
            "summary": summary,
            "source": n.series,
            "severity": severity(n.level),
            "timestamp": ts,
            "component": n.series,
            "group": n.alert,
            "custom_details": {
                "alert": n.alert,
                "series": n.series,
                "level": n.level,
                "previous_level": n.previous,
                "value": n.value,
                "threshold": n.threshold,
                "labels": n.labels,
                "annotations": n.annotations,
                "body": n.body,
                "reason": n.reason,
            },
        },
        "links": links,
        "client": "carbide alerter",
    })
}

#[async_trait]
impl Notifier for PagerDuty {
    async fn send(&self, msg: &Message) -> Result<(), NotifyError> {
        let n = &msg.notification;
        let level = keyed_level(msg);
        let key = self.cfg.key_for(&n.alert, level).ok_or_else(|| {
            NotifyError::Permanent(format!(
                "pagerduty: no routing key for alert \"{}\" at {level} (set PAGERDUTY_KEY, pagerduty_key or pagerduty.{})",
                n.alert,
                level.as_str().to_ascii_lowercase()
            ))
        })?;
        super::post_json(
            &self.client,
            "pagerduty events API",
            &self.cfg.url,
            &payload(msg, key.expose()),
            &[],
            &[key.expose()],
        )
        .await
    }
}
