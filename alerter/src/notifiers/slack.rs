//! `slack`: Slack incoming webhook (Mattermost accepts the same payload).
//!
//! Payload (JSON POST): `text` (the summary), optional `channel` / `username` / `icon_emoji`,
//! and one attachment `{fallback, color, title, title_link (runbook), text (body),
//! fields:[{title: level, value, short}], ts}` — Graphite Pager's shape plus the links; with a
//! public graph link, Block Kit `blocks` (the summary, then an `image` block Slack fetches).

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::json;

use super::{keyed_level, pick_secret, LevelSecrets, Message, Notifier, NotifierConfig};
use super::{Legacy, LegacyError, LegacyValues, NotifierKind, NotifierSpec, NotifyError};
use crate::notification::{Action, Level};
use conf::Secret;

pub const KIND: NotifierKind = NotifierKind {
    name: "slack",
    summary: "Slack / Mattermost incoming webhook",
    decode: super::decode::<SlackConfig>,
    default_levels: &[Level::Warning, Level::Critical, Level::NoData, Level::Error],
    legacy: Some(&LEGACY),
    sample: "url: {http}/services/T000/B000/{secret}\nchannel: '#ops'\ntimeout: 5s\n",
};

/// Graphite Pager's `SLACK_URL` / `slack_url`, the per-level `slack:` map and an alert's
/// `slack_url` make (or complete) the notifier named `slack`.
const LEGACY: Legacy = Legacy {
    keys: &[("slack_url", Some("SLACK_URL")), ("slack", None)],
    alert_key: Some("slack_url"),
    apply: from_legacy,
};

fn from_legacy(
    defined: Option<&NotifierSpec>,
    v: &LegacyValues,
) -> Result<Option<NotifierSpec>, LegacyError> {
    v.check_urls(&["slack_url", "slack"], Some("slack_url"))?;
    let url = v.text("slack_url").cloned();
    let map = v.levels("slack").cloned().unwrap_or_default();
    let alert_urls = v.alerts();
    let wanted = url.is_some() || !map.is_empty() || !alert_urls.is_empty();
    let mut s = match defined.and_then(|d| d.config::<SlackConfig>()) {
        Some(s) => s.clone(),
        None if wanted => SlackConfig::default(),
        None => return Ok(None),
    };
    s.url = s.url.take().or(url);
    if s.urls.is_empty() {
        s.urls = map;
    }
    s.alert_urls = alert_urls;
    Ok(Some(NotifierSpec::new(&KIND, s)))
}

/// `type: slack`. The built-in `slack` notifier is made from Graphite Pager's `SLACK_URL`,
/// `slack:` and per-alert `slack_url`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    /// The incoming-webhook URL (holds a token: a secret).
    #[serde(default)]
    pub url: Option<Secret>,
    /// A webhook URL per level (Graphite Pager's `slack:` map); falls back to `url`.
    #[serde(default)]
    pub urls: LevelSecrets,
    /// Override the webhook's channel (Slack legacy webhooks, Mattermost).
    #[serde(default)]
    pub channel: Option<String>,
    /// Override the poster's name.
    #[serde(default)]
    pub username: Option<String>,
    /// Override the poster's icon, e.g. `:rotating_light:`.
    #[serde(default)]
    pub icon_emoji: Option<String>,
    /// Per-request timeout.
    #[serde(default = "super::default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Per-alert URLs (from `slack_url:` on an alert), filled in by the config loader.
    #[serde(skip)]
    pub alert_urls: BTreeMap<String, Secret>,
}

impl Default for SlackConfig {
    fn default() -> Self {
        SlackConfig {
            url: None,
            urls: LevelSecrets::default(),
            channel: None,
            username: None,
            icon_emoji: None,
            timeout: super::default_timeout(),
            alert_urls: BTreeMap::new(),
        }
    }
}

impl SlackConfig {
    pub fn url_for(&self, alert: &str, level: Level) -> Option<&Secret> {
        pick_secret(
            &self.alert_urls,
            &self.urls,
            self.url.as_ref(),
            alert,
            level,
        )
    }
}

impl NotifierConfig for SlackConfig {
    fn validate(&self) -> Result<(), String> {
        if let Some(u) = &self.url {
            super::check_url("url", u.expose())?;
        }
        for u in self.urls.values() {
            super::check_url("urls", u.expose())?;
        }
        Ok(())
    }

    fn missing(&self, alert: &str, level: Level) -> Option<String> {
        self.url_for(alert, level).is_none().then(|| {
            "no Slack webhook URL: set SLACK_URL (or slack_url at the top or on the alert, or a slack: map entry for this level)".to_string()
        })
    }

    fn build(&self) -> anyhow::Result<Box<dyn Notifier>> {
        Ok(Box::new(Slack::new(self.clone())?))
    }
}

http_notifier!(Slack, SlackConfig);

/// Graphite Pager's colours.
fn color(level: Level, action: Action) -> &'static str {
    match (action, level) {
        (Action::Resolve, _) | (_, Level::Ok) => "#00FF00",
        (_, Level::Warning) => "#FFFF00",
        (_, Level::Critical) => "#FF0000",
        _ => "#800080",
    }
}

/// Block Kit's limits (api.slack.com/reference/block-kit/blocks): an image block's URL and a
/// section's text at most 3000 characters, an image's alt text at most 2000.
const SLACK_BLOCK_URL_MAX: usize = 3000;
const SLACK_SECTION_TEXT_MAX: usize = 3000;
const SLACK_ALT_TEXT_MAX: usize = 2000;

/// `s` cut to at most `max` characters.
fn clip(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// The JSON body posted to the webhook.
pub fn payload(cfg: &SlackConfig, msg: &Message) -> serde_json::Value {
    let n = &msg.notification;
    let title = match msg.action {
        Action::Trigger => format!("{} {} {}", n.level, n.alert, n.series),
        Action::Resolve => format!("RESOLVED {} {} (now {})", n.alert, n.series, n.level),
    };
    let mut attachment = json!({
        "fallback": n.summary,
        "color": color(n.level, msg.action),
        "title": title,
        "text": n.body,
        "fields": [{"title": n.level.as_str(), "value": n.summary.replace('\n', " "), "short": false}],
        "ts": n.timestamp,
    });
    if let Some(u) = &n.runbook_url {
        attachment["title_link"] = json!(u);
    }
    // Slack fetches the picture itself: only with public_url set (a link it can reach). It is a
    // Block Kit image block; Slack then shows the blocks in place of `text`, so the summary is
    // the first block (`text` stays the notification's fallback). Block Kit refuses the whole
    // message for an image URL over 3000 characters: such a link goes in the attachment's
    // legacy `image_url`, which has no such limit.
    let mut blocks = None;
    if let Some(u) = &n.graph_image_url {
        if u.len() <= SLACK_BLOCK_URL_MAX {
            blocks = Some(json!([
                {"type": "section", "text": {"type": "plain_text", "text": clip(&n.summary, SLACK_SECTION_TEXT_MAX)}},
                {"type": "image", "image_url": u, "alt_text": clip(&format!("graph of {title}"), SLACK_ALT_TEXT_MAX)},
            ]));
        } else {
            attachment["image_url"] = json!(u);
        }
    }
    let mut body = json!({"text": n.summary, "attachments": [attachment]});
    if let Some(b) = blocks {
        body["blocks"] = b;
    }
    for (k, v) in [
        ("channel", &cfg.channel),
        ("username", &cfg.username),
        ("icon_emoji", &cfg.icon_emoji),
    ] {
        if let Some(v) = v {
            body[k] = json!(v);
        }
    }
    body
}

#[async_trait]
impl Notifier for Slack {
    async fn send(&self, msg: &Message) -> Result<(), NotifyError> {
        let n = &msg.notification;
        let url = self.cfg.url_for(&n.alert, keyed_level(msg)).ok_or_else(|| {
            NotifyError::Permanent(format!(
                "slack: no webhook URL for alert \"{}\" at {} (set SLACK_URL, slack_url or slack.{})",
                n.alert,
                keyed_level(msg),
                keyed_level(msg).as_str().to_ascii_lowercase()
            ))
        })?;
        super::post_json(
            &self.client,
            "slack webhook",
            url.expose(),
            &payload(&self.cfg, msg),
            &[],
            &[url.expose()],
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notification::{sample, Level};

    #[test]
    fn the_picture_is_an_image_only_with_a_public_url() {
        let mut n = sample(Level::Critical);
        let msg = |n: &crate::notification::Notification| Message {
            action: Action::Trigger,
            notification: n.clone(),
            idempotency_key: "k".into(),
        };
        let cfg = SlackConfig::default();
        let p = payload(&cfg, &msg(&n));
        assert!(p["attachments"][0].get("image_url").is_none(), "{p}");
        assert!(p.get("blocks").is_none(), "{p}");
        n.graph_image_url = Some("https://graphs.example.com/render/?target=a".into());
        let p = payload(&cfg, &msg(&n));
        assert_eq!(p["blocks"][0]["type"], "section");
        assert_eq!(p["blocks"][0]["text"]["text"], n.summary.as_str());
        assert_eq!(p["blocks"][1]["type"], "image");
        assert_eq!(
            p["blocks"][1]["image_url"],
            "https://graphs.example.com/render/?target=a"
        );
        assert!(p["blocks"][1]["alt_text"].as_str().is_some_and(|t| !t.is_empty()));
        assert!(p["attachments"][0].get("image_url").is_none(), "{p}");
        // Over Block Kit's 3000 characters the link goes in the attachment, not a block
        // Slack would refuse with the whole message.
        let long = format!("https://graphs.example.com/render/?target={}", "a".repeat(3000));
        n.graph_image_url = Some(long.clone());
        let p = payload(&cfg, &msg(&n));
        assert!(p.get("blocks").is_none(), "{p}");
        assert_eq!(p["attachments"][0]["image_url"], long.as_str());
        n.graph_image_url = Some("https://graphs.example.com/render/?target=a".into());
        let p = super::super::pagerduty::payload(&msg(&n), "rk");
        assert_eq!(
            p["images"][0]["src"],
            "https://graphs.example.com/render/?target=a"
        );
        assert_eq!(p["links"][1]["text"], "Graph");
    }
}
