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

use super::{keyed_level, pick_secret, LevelSecrets, Message, Notifier, NotifierConfig};
use super::{Legacy, LegacyError, LegacyValues, NotifierKind, NotifierSpec, NotifyError};
use crate::notification::Level;
use conf::Secret;

pub const KIND: NotifierKind = NotifierKind {
    name: "pagerduty",
    summary: "PagerDuty Events API v2 (trigger/resolve with dedup_key)",
    decode: super::decode::<PagerDutyConfig>,
    default_levels: &[Level::Critical],
    legacy: Some(&LEGACY),
    sample: "routing_key: {secret}\nurl: {http}/v2/enqueue\ntimeout: 5s\n",
};

/// Graphite Pager's `PAGERDUTY_KEY` / `pagerduty_key`, `PAGERDUTY_URL` / `pagerduty_url`,
/// the per-level `pagerduty:` map and an alert's `pagerduty_key` make (or complete) the
/// notifier named `pagerduty`.
const LEGACY: Legacy = Legacy {
    keys: &[
        ("pagerduty_key", Some("PAGERDUTY_KEY")),
        ("pagerduty_url", Some("PAGERDUTY_URL")),
        ("pagerduty", None),
    ],
    alert_key: Some("pagerduty_key"),
    apply: from_legacy,
};

fn from_legacy(
    defined: Option<&NotifierSpec>,
    v: &LegacyValues,
) -> Result<Option<NotifierSpec>, LegacyError> {
    v.check_urls(&["pagerduty_url"], None)?;
    let key = v.text("pagerduty_key").cloned();
    let url = v.text("pagerduty_url").map(|u| u.expose().to_string());
    let map = v.levels("pagerduty").cloned().unwrap_or_default();
    let alert_keys = v.alerts();
    let wanted = key.is_some() || !map.is_empty() || !alert_keys.is_empty() || url.is_some();
    let mut pd = match defined.and_then(|d| d.config::<PagerDutyConfig>()) {
        Some(pd) => pd.clone(),
        None if wanted => PagerDutyConfig::default(),
        None => return Ok(None),
    };
    pd.routing_key = pd.routing_key.take().or(key);
    if pd.routing_keys.is_empty() {
        pd.routing_keys = map;
    }
    if let Some(u) = url {
        pd.url = u;
    }
    pd.alert_keys = alert_keys;
    Ok(Some(NotifierSpec::new(&KIND, pd)))
}

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

impl NotifierConfig for PagerDutyConfig {
    fn validate(&self) -> Result<(), String> {
        super::check_url("url", &self.url)
    }

    fn missing(&self, alert: &str, level: Level) -> Option<String> {
        self.key_for(alert, level).is_none().then(|| {
            "no PagerDuty routing key: set PAGERDUTY_KEY (or pagerduty_key at the top or on the alert, or a pagerduty: map entry for this level)".to_string()
        })
    }

    fn build(&self) -> anyhow::Result<Box<dyn Notifier>> {
        Ok(Box::new(PagerDuty::new(self.clone())?))
    }
}

http_notifier!(PagerDuty, PagerDutyConfig);

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
    // Events v2 `images`: PagerDuty fetches `src` (only with public_url set).
    let images: Vec<serde_json::Value> = n
        .graph_image_url
        .iter()
        .map(|u| json!({"src": u, "href": n.graph_url.as_ref().unwrap_or(u), "alt": "Graph"}))
        .collect();
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
        "images": images,
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
