//! Notifiers: each sends ONE message and says whether a failure is worth retrying. Retry,
//! backoff, ordering and dedup belong to the outbox ([`crate::outbox`]), never to a notifier.
//!
//! Adding a notifier: one file here, one line in [`NOTIFIERS`], one variant in
//! [`NotifierSpec`] (its `type:` name).

pub mod console;
pub mod email;
pub mod pagerduty;
pub mod slack;
pub mod webhook;

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::notification::{Action, Level, Notification};
use crate::secret::Secret;

/// What one notifier is asked to deliver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub action: Action,
    pub notification: Notification,
    /// Stored with the message; webhook and email receivers get it to dedup.
    pub idempotency_key: String,
}

/// Why a send failed. The variant is the retry decision; the text never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    /// The receiver is down, slow, rate-limiting or failing (5xx): the outbox tries again.
    #[error("{0} (will retry)")]
    Retryable(String),
    /// The receiver refused the message (4xx, bad address, bad key): retrying cannot help.
    #[error("{0} (not retried)")]
    Permanent(String),
}

impl NotifyError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, NotifyError::Retryable(_))
    }

    /// Classify an HTTP status: 408, 425, 429 and 5xx are worth another try.
    pub fn from_status(what: &str, status: reqwest::StatusCode, body: &str) -> NotifyError {
        let body: String = body.chars().take(200).collect();
        let msg = format!("{what} answered {status}: {}", body.trim());
        if status.is_server_error() || matches!(status.as_u16(), 408 | 425 | 429) {
            NotifyError::Retryable(msg)
        } else {
            NotifyError::Permanent(msg)
        }
    }

    /// A transport error from reqwest, with the URL (which may hold a token) removed.
    pub fn from_reqwest(what: &str, e: reqwest::Error) -> NotifyError {
        let e = e.without_url();
        let mut msg = format!("{what}: {e}");
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            msg.push_str(&format!(": {s}"));
            src = s.source();
        }
        if e.is_builder() || e.is_redirect() {
            NotifyError::Permanent(msg)
        } else {
            NotifyError::Retryable(msg)
        }
    }
}

/// One notifier: deliver one message.
#[async_trait]
pub trait Notifier: Send + Sync + std::fmt::Debug {
    async fn send(&self, msg: &Message) -> Result<(), NotifyError>;
}

/// A notifier type as the docs and `alerter check` list it.
#[derive(Debug)]
pub struct NotifierKind {
    /// The `type:` value under `notifiers:`.
    pub name: &'static str,
    /// One line for the docs.
    pub summary: &'static str,
}

/// Every notifier type.
pub static NOTIFIERS: &[NotifierKind] = &[
    console::KIND,
    email::KIND,
    slack::KIND,
    pagerduty::KIND,
    webhook::KIND,
];

/// One entry under `notifiers:` (a name → this). `type:` picks the variant.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum NotifierSpec {
    Console(console::ConsoleConfig),
    Email(email::EmailConfig),
    Slack(slack::SlackConfig),
    Pagerduty(pagerduty::PagerDutyConfig),
    Webhook(webhook::WebhookConfig),
}

impl NotifierSpec {
    pub fn kind(&self) -> &'static str {
        match self {
            NotifierSpec::Console(_) => console::KIND.name,
            NotifierSpec::Email(_) => email::KIND.name,
            NotifierSpec::Slack(_) => slack::KIND.name,
            NotifierSpec::Pagerduty(_) => pagerduty::KIND.name,
            NotifierSpec::Webhook(_) => webhook::KIND.name,
        }
    }

    /// Build the notifier. Fails only on local problems (bad address syntax, TLS setup).
    pub fn build(&self) -> anyhow::Result<Box<dyn Notifier>> {
        Ok(match self {
            NotifierSpec::Console(c) => Box::new(console::Console::new(c.clone())),
            NotifierSpec::Email(c) => Box::new(email::Email::new(c.clone())?),
            NotifierSpec::Slack(c) => Box::new(slack::Slack::new(c.clone())?),
            NotifierSpec::Pagerduty(c) => Box::new(pagerduty::PagerDuty::new(c.clone())?),
            NotifierSpec::Webhook(c) => Box::new(webhook::Webhook::new(c.clone())?),
        })
    }
}

/// A secret per level, as Graphite Pager's `pagerduty:` / `slack:` maps.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LevelSecrets {
    /// Used for OK (Graphite Pager's `nominal`).
    #[serde(default)]
    pub nominal: Option<Secret>,
    #[serde(default)]
    pub warning: Option<Secret>,
    #[serde(default)]
    pub critical: Option<Secret>,
    #[serde(default)]
    pub no_data: Option<Secret>,
    /// carbide's ERROR level (fetch failures).
    #[serde(default)]
    pub error: Option<Secret>,
}

impl LevelSecrets {
    pub fn get(&self, level: Level) -> Option<&Secret> {
        match level {
            Level::Ok => self.nominal.as_ref(),
            Level::Warning => self.warning.as_ref(),
            Level::Critical => self.critical.as_ref(),
            Level::NoData => self.no_data.as_ref(),
            Level::Error => self.error.as_ref(),
        }
        .filter(|s| !s.is_empty())
    }

    pub fn is_empty(&self) -> bool {
        Level::ALL.iter().all(|l| self.get(*l).is_none())
    }
}

/// The secret for `alert` at `level`: the alert's own (`pagerduty_key` / `slack_url`), else the
/// level's, else the default.
pub fn pick_secret<'a>(
    per_alert: &'a BTreeMap<String, Secret>,
    per_level: &'a LevelSecrets,
    default: Option<&'a Secret>,
    alert: &str,
    level: Level,
) -> Option<&'a Secret> {
    per_alert
        .get(alert)
        .or_else(|| per_level.get(level))
        .or(default)
        .filter(|s| !s.is_empty())
}

/// The level whose secret a message uses: a resolve goes where its trigger went.
pub fn keyed_level(msg: &Message) -> Level {
    match msg.action {
        Action::Trigger => msg.notification.level,
        Action::Resolve => msg.notification.previous,
    }
}

pub(crate) fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

/// A reqwest client with a timeout, rustls, no redirects to other hosts' secrets.
pub(crate) fn http_client(timeout: Duration) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("carbide-alerter/", env!("CARGO_PKG_VERSION")))
        .build()?)
}

/// The pieces of a secret that a receiver might echo: the whole value and, for a URL, its
/// path, query and every longer path segment (webhook tokens live there).
fn secret_fragments(secret: &str) -> Vec<String> {
    let mut out = vec![secret.to_string()];
    if let Ok(url) = reqwest::Url::parse(secret) {
        if url.path().len() > 1 {
            out.push(url.path().to_string());
        }
        if let Some(q) = url.query() {
            out.push(q.to_string());
        }
        out.extend(
            url.path_segments()
                .into_iter()
                .flatten()
                .filter(|s| s.len() >= 8)
                .map(String::from),
        );
    }
    out.retain(|s| !s.is_empty());
    // Longest first, so a segment does not break up a longer match.
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out
}

/// POST a JSON body, classify the outcome. Every string in `secrets` is blanked out of the
/// error text (a receiver may echo the request back).
pub(crate) async fn post_json(
    client: &reqwest::Client,
    what: &str,
    url: &str,
    body: &serde_json::Value,
    headers: &[(&str, &str)],
    secrets: &[&str],
) -> Result<(), NotifyError> {
    let mut req = client.post(url).json(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req
        .send()
        .await
        .map_err(|e| NotifyError::from_reqwest(what, e))?;
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let mut text = resp.text().await.unwrap_or_default();
    for s in secrets.iter().flat_map(|s| secret_fragments(s)) {
        text = text.replace(&s, "[redacted]");
    }
    Err(NotifyError::from_status(what, status, &text))
}
