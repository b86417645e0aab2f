//! `webhook`: a generic JSON POST of the whole notification.
//!
//! Body: `{version:"1", action, idempotency_key, dedup_key, alert, series, level,
//! previous_level, value, threshold, runbook_url, graph_url, labels, annotations, timestamp,
//! summary, body}`; header `Idempotency-Key` repeats the key so receivers can drop re-sends.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::json;

use super::{Message, Notifier, NotifierConfig, NotifierKind, NotifyError};
use conf::Secret;

pub const KIND: NotifierKind = NotifierKind {
    name: "webhook",
    summary: "generic JSON POST of every notification",
    decode: super::decode::<WebhookConfig>,
    default_levels: &[],
    legacy: None,
    sample: "url: {http}/hook/{secret}\nheaders:\n  Authorization: Bearer {secret}\ntimeout: 5s\n",
};

/// `type: webhook`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Where to POST (may carry a token: a secret).
    pub url: Secret,
    /// Extra headers, e.g. `Authorization` (values are secrets).
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
    /// Per-request timeout.
    #[serde(default = "super::default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

impl NotifierConfig for WebhookConfig {
    fn validate(&self) -> Result<(), String> {
        super::check_url("url", self.url.expose())
    }

    fn build(&self) -> anyhow::Result<Box<dyn Notifier>> {
        Ok(Box::new(Webhook::new(self.clone())?))
    }
}

http_notifier!(Webhook, WebhookConfig);

/// The JSON body.
pub fn payload(msg: &Message) -> serde_json::Value {
    let n = &msg.notification;
    json!({
        "version": "1",
        "action": msg.action,
        "idempotency_key": msg.idempotency_key,
        "dedup_key": n.dedup_key(),
        "alert": n.alert,
        "series": n.series,
        "level": n.level,
        "previous_level": n.previous,
        "value": n.value,
        "threshold": n.threshold,
        "runbook_url": n.runbook_url,
        "graph_url": n.graph_url,
        "labels": n.labels,
        "annotations": n.annotations,
        "timestamp": n.timestamp,
        "summary": n.summary,
        "body": n.body,
        "reason": n.reason,
    })
}

#[async_trait]
impl Notifier for Webhook {
    async fn send(&self, msg: &Message) -> Result<(), NotifyError> {
        let mut headers: Vec<(&str, &str)> = vec![("Idempotency-Key", &msg.idempotency_key)];
        for (k, v) in &self.cfg.headers {
            headers.push((k, v.expose()));
        }
        let mut secrets: Vec<&str> = vec![self.cfg.url.expose()];
        secrets.extend(self.cfg.headers.values().map(|v| v.expose()));
        super::post_json(
            &self.client,
            "webhook",
            self.cfg.url.expose(),
            &payload(msg),
            &headers,
            &secrets,
        )
        .await
    }
}
