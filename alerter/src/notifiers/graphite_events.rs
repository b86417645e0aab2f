//! `graphite_events`: a Graphite event (`POST {url}/events/`, graphite-web 1.1's events API,
//! which `carbide serve` speaks too) per message, so dashboards (Grafana's Graphite
//! annotations, `events()` targets) show when alerts changed level.
//!
//! Body: `{"what": "<alert> <LEVEL>", "tags": ["alert", "<alert>", "<level>"], "data":
//! "<summary>\n<series> was <PREVIOUS>, value <value>", "when": <timestamp>}` — the level in
//! the tags in lower case (`alert disk critical` is what an annotation query asks for).
//! `events: true` (alerts.yml, globally or per alert) sends every level change here; a
//! notifier of this type may also be routed to like any other.

use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::json;

use super::{Message, Notifier, NotifierConfig, NotifierKind, NotifyError};
use conf::Secret;

pub const KIND: NotifierKind = NotifierKind {
    name: "graphite_events",
    summary: "a Graphite event (graphite-web's or carbide's /events/) per level change",
    decode: super::decode::<GraphiteEventsConfig>,
    default_levels: &[],
    legacy: None,
    sample: "url: {http}\nusername: alerts\npassword: {secret}\ntimeout: 5s\n",
};

/// The notifier `events: true` sends to (defined from `events_url` or `graphite_url` unless
/// the file defines one of this name).
pub const EVENTS_NOTIFIER: &str = "graphite_events";

/// `type: graphite_events`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GraphiteEventsConfig {
    /// graphite-web's (or carbide's) base URL; events are posted to `{url}/events/`.
    pub url: String,
    /// HTTP basic auth user.
    #[serde(default)]
    pub username: Option<String>,
    /// HTTP basic auth password.
    #[serde(default)]
    pub password: Option<Secret>,
    /// Per-request timeout.
    #[serde(default = "super::default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

impl NotifierConfig for GraphiteEventsConfig {
    fn validate(&self) -> Result<(), String> {
        super::check_url("url", &self.url)?;
        if self.password.is_some() && self.username.is_none() {
            return Err("password is set but username is not".into());
        }
        Ok(())
    }

    fn build(&self) -> anyhow::Result<Box<dyn Notifier>> {
        self.validate().map_err(anyhow::Error::msg)?;
        Ok(Box::new(GraphiteEvents {
            client: super::http_client(self.timeout)?,
            endpoint: format!("{}/events/", self.url.trim_end_matches('/')),
            cfg: self.clone(),
        }))
    }
}

#[derive(Debug)]
pub struct GraphiteEvents {
    cfg: GraphiteEventsConfig,
    endpoint: String,
    client: reqwest::Client,
}

/// The event posted for a message.
pub fn payload(msg: &Message) -> serde_json::Value {
    let n = &msg.notification;
    let mut data = format!("{}\n{} was {}", n.summary, n.series, n.previous);
    if let Some(v) = n.value {
        data.push_str(&format!(", value {}", crate::notification::human_value(v)));
    }
    if let Some(r) = &n.reason {
        data.push_str(&format!("\nreason: {r}"));
    }
    json!({
        "what": format!("{} {}", n.alert, n.level),
        "tags": ["alert", n.alert, n.level.as_str().to_ascii_lowercase()],
        "data": data,
        "when": n.timestamp,
    })
}

#[async_trait]
impl Notifier for GraphiteEvents {
    async fn send(&self, msg: &Message) -> Result<(), NotifyError> {
        let mut req = self.client.post(&self.endpoint).json(&payload(msg));
        if let Some(user) = &self.cfg.username {
            req = req.basic_auth(user, self.cfg.password.as_ref().map(Secret::expose));
        }
        let resp = req
            .send()
            .await
            .map_err(|e| NotifyError::from_reqwest("graphite events", e))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let mut text = resp.text().await.unwrap_or_default();
        if let Some(p) = &self.cfg.password {
            if !p.is_empty() {
                text = text.replace(p.expose(), "[redacted]");
            }
        }
        Err(NotifyError::from_status("graphite events", status, &text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notification::{Action, Level, Notification};

    #[test]
    fn the_event_names_the_alert_and_level_in_tags() {
        let n = Notification {
            alert: "Disk free".into(),
            series: "db-1".into(),
            level: Level::Critical,
            previous: Level::Warning,
            value: Some(4.123456),
            threshold: Some(5.0),
            runbook_url: None,
            graph_url: None,
            graph_image_url: None,
            labels: Default::default(),
            annotations: Default::default(),
            timestamp: 1_700_000_000,
            summary: "CRITICAL alert for Disk free db-1".into(),
            body: String::new(),
            reason: None,
            graph_png: None,
        };
        let msg = Message {
            action: Action::Trigger,
            idempotency_key: "k".into(),
            notification: n,
        };
        let p = payload(&msg);
        assert_eq!(p["what"], "Disk free CRITICAL");
        assert_eq!(p["tags"], json!(["alert", "Disk free", "critical"]));
        assert_eq!(p["when"], 1_700_000_000);
        assert_eq!(
            p["data"],
            "CRITICAL alert for Disk free db-1\ndb-1 was WARNING, value 4.123"
        );
    }
}
