//! Notifiers: each sends ONE message and says whether a failure is worth retrying. Retry,
//! backoff, ordering and dedup belong to the outbox ([`crate::outbox`]), never to a notifier.
//!
//! Adding a notifier: one file here (its options struct implementing [`NotifierConfig`], its
//! [`Notifier`], and a `pub const KIND`) and its name in the `registry!` line. The registry drives
//! everything else: decoding `notifiers: NAME: {type: ..}`, "did you mean" for type names,
//! validation at load time, Graphite Pager's legacy keys and environment variables
//! ([`Legacy`]), the default routing, and the shared test kit (`tests/notifier_kit.rs`, which
//! loads every kind's [`NotifierKind::sample`] and sends through it against real receivers).

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::notification::{Action, Level, Notification};
use conf::Secret;

/// `http_notifier!(Name, NameConfig)`: `Name` is the [`HttpNotifier`] of the options
/// `NameConfig` (which have a `timeout`); its `impl Notifier` is the notifier's own.
macro_rules! http_notifier {
    ($name:ident, $config:ty) => {
        pub type $name = super::HttpNotifier<$config>;

        impl super::HttpOptions for $config {
            fn timeout(&self) -> std::time::Duration {
                self.timeout
            }
        }
    };
}

/// The registry: each name is a module of this directory with a `pub const KIND`.
macro_rules! registry {
    ($($name:ident),* $(,)?) => {
        $(pub mod $name;)*

        /// Every notifier type, in the order the default routing lists them.
        pub static NOTIFIERS: &[NotifierKind] = &[$($name::KIND),*];
    };
}

// One name a line (braces: rustfmt leaves the list as written, so adding a notifier stays a
// one-line diff).
registry! {
    console,
    email,
    slack,
    pagerduty,
    webhook,
    graphite_events,
}

/// The registered kind named `name`.
pub fn kind(name: &str) -> Option<&'static NotifierKind> {
    NOTIFIERS.iter().find(|k| k.name == name)
}

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

/// A notifier's options (`notifiers: NAME:` minus `type:`), decoded by serde with
/// `deny_unknown_fields`. `Debug` must never show a secret (hold them as [`Secret`]).
pub trait NotifierConfig: DynEq + fmt::Debug + Send + Sync {
    /// Everything a send needs that can be checked at load time (addresses, absolute
    /// http(s) URLs, readable files). The message names the option, never a secret.
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }

    /// Why a message for `alert` at `level` could not be sent here (a missing secret), if it
    /// could not: routing it there is a configuration error, and the default routing leaves
    /// it out.
    fn missing(&self, _alert: &str, _level: Level) -> Option<String> {
        None
    }

    /// Build the notifier. Fails only on local problems (bad address syntax, TLS setup).
    fn build(&self) -> anyhow::Result<Box<dyn Notifier>>;
}

/// Equality and downcasting for `dyn NotifierConfig` (a reload compares definitions to follow
/// a renamed notifier). Implemented for every `PartialEq` type: nothing to write per notifier.
pub trait DynEq: Any {
    fn as_any(&self) -> &dyn Any;
    fn eq_dyn(&self, other: &dyn Any) -> bool;
}

impl<T: PartialEq + Any> DynEq for T {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn eq_dyn(&self, other: &dyn Any) -> bool {
        other.downcast_ref::<T>() == Some(self)
    }
}

/// A notifier type: its `type:` name and everything the registry needs of it.
pub struct NotifierKind {
    /// The `type:` value under `notifiers:`.
    pub name: &'static str,
    /// One line for the docs.
    pub summary: &'static str,
    /// Decode the options (everything but `type:`); [`decode`] for a serde type.
    pub decode: fn(serde_json::Value) -> Result<Arc<dyn NotifierConfig>, serde_json::Error>,
    /// Levels the default routing (a file without `routes:`) sends to the notifier named like
    /// this kind, when there is one: Graphite Pager's console, Slack and PagerDuty.
    pub default_levels: &'static [Level],
    /// Graphite Pager's keys and environment variables this kind owns, if any.
    pub legacy: Option<&'static Legacy>,
    /// The options of a working example (YAML, indented under `notifiers: NAME:`), for the
    /// docs and the test kit. Placeholders: `{http}` an HTTP receiver's base URL, `{smtp}`
    /// an SMTP server's port, `{secret}` a secret the kit checks never leaks.
    pub sample: &'static str,
}

impl fmt::Debug for NotifierKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

/// [`NotifierKind::decode`] for a serde options type.
pub fn decode<T: NotifierConfig + DeserializeOwned>(
    v: serde_json::Value,
) -> Result<Arc<dyn NotifierConfig>, serde_json::Error> {
    Ok(Arc::new(serde_json::from_value::<T>(v)?))
}

/// Graphite Pager's configuration of a notifier kind: top-level keys (each with the
/// environment variable that wins over it), a key on each alert, and how they make (or
/// complete) the notifier named like the kind.
pub struct Legacy {
    /// `(key, environment variable)`.
    pub keys: &'static [(&'static str, Option<&'static str>)],
    /// The key an alert may carry (`pagerduty_key`, `slack_url`).
    pub alert_key: Option<&'static str>,
    /// From the notifier the file defines under the kind's name (if any) and the legacy
    /// values: the notifier, or `None` when nothing configures one.
    pub apply:
        fn(Option<&NotifierSpec>, &LegacyValues) -> Result<Option<NotifierSpec>, LegacyError>,
}

/// A Graphite Pager value as the file's schema decoded it (a scalar is kept as written:
/// `pagerduty_key: 0123` stays `0123`).
#[derive(Clone)]
pub enum LegacyValue {
    /// A key, URL or other scalar (`PAGERDUTY_KEY`, `slack_url`).
    Text(Secret),
    /// A per-level map (`pagerduty:`, `slack:`).
    Levels(LevelSecrets),
}

/// The legacy values found: top-level (environment applied) and the alerts' own key (first
/// definition of a name wins). Holds secrets: no `Debug`.
#[derive(Default)]
pub struct LegacyValues {
    pub top: BTreeMap<&'static str, LegacyValue>,
    /// Alert name → (its index in the file, the value of [`Legacy::alert_key`]).
    pub per_alert: BTreeMap<String, (usize, Secret)>,
}

/// A bad legacy value: which key (and alert), and why (never the value).
#[derive(Debug)]
pub struct LegacyError {
    pub key: &'static str,
    /// The alert's index when the key is an alert's.
    pub alert: Option<usize>,
    pub message: String,
}

impl LegacyValues {
    /// A top-level scalar key.
    pub fn text(&self, key: &str) -> Option<&Secret> {
        match self.top.get(key) {
            Some(LegacyValue::Text(s)) => Some(s),
            _ => None,
        }
    }

    /// A top-level per-level map.
    pub fn levels(&self, key: &str) -> Option<&LevelSecrets> {
        match self.top.get(key) {
            Some(LegacyValue::Levels(l)) => Some(l),
            _ => None,
        }
    }

    /// The alerts' own values by alert name.
    pub fn alerts(&self) -> BTreeMap<String, Secret> {
        self.per_alert
            .iter()
            .map(|(name, (_, v))| (name.clone(), v.clone()))
            .collect()
    }

    /// `check` on every URL given (top-level `key`s and the alerts' values), the error
    /// placed at the key.
    pub fn check_urls(
        &self,
        keys: &[&'static str],
        alert_key: Option<&'static str>,
    ) -> Result<(), LegacyError> {
        for &key in keys {
            let urls: Vec<&Secret> = match self.top.get(key) {
                Some(LegacyValue::Text(s)) => vec![s],
                Some(LegacyValue::Levels(l)) => l.values().collect(),
                None => vec![],
            };
            for u in urls {
                check_url(key, u.expose()).map_err(|message| LegacyError {
                    key,
                    alert: None,
                    message,
                })?;
            }
        }
        for (i, u) in alert_key.iter().flat_map(|_| self.per_alert.values()) {
            let key = alert_key.unwrap_or_default();
            check_url(key, u.expose()).map_err(|message| LegacyError {
                key,
                alert: Some(*i),
                message,
            })?;
        }
        Ok(())
    }
}

/// One entry under `notifiers:` (a name → this): its kind and decoded options.
#[derive(Clone)]
pub struct NotifierSpec {
    pub kind: &'static NotifierKind,
    config: Arc<dyn NotifierConfig>,
}

impl NotifierSpec {
    pub fn new(kind: &'static NotifierKind, config: impl NotifierConfig) -> NotifierSpec {
        NotifierSpec {
            kind,
            config: Arc::new(config),
        }
    }

    /// The `type:` name.
    pub fn kind(&self) -> &'static str {
        self.kind.name
    }

    /// The options, as the kind's own type (`None`: another kind).
    pub fn config<T: Any>(&self) -> Option<&T> {
        self.config.as_any().downcast_ref()
    }

    pub fn validate(&self) -> Result<(), String> {
        self.config.validate()
    }

    pub fn missing(&self, alert: &str, level: Level) -> Option<String> {
        self.config.missing(alert, level)
    }

    /// Build the notifier. Fails only on local problems (bad address syntax, TLS setup).
    pub fn build(&self) -> anyhow::Result<Box<dyn Notifier>> {
        self.config.build()
    }
}

impl PartialEq for NotifierSpec {
    fn eq(&self, other: &Self) -> bool {
        self.kind.name == other.kind.name && self.config.eq_dyn(other.config.as_any())
    }
}

impl fmt::Debug for NotifierSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({:?})", self.kind.name, self.config)
    }
}

/// `{type: NAME, ...options}`: `type` is looked up in [`NOTIFIERS`] as soon as it is read
/// (an unknown one is reported at its position, with the closest name), the options are
/// decoded by the kind.
impl<'de> Deserialize<'de> for NotifierSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = NotifierSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a notifier: type and its options")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<NotifierSpec, A::Error> {
                use serde::de::Error;
                let mut kind = None;
                let mut options = serde_json::Map::new();
                while let Some(key) = map.next_key::<String>()? {
                    if key == "type" {
                        let name: String = map.next_value()?;
                        kind = Some(
                            self::kind(&name)
                                .ok_or_else(|| A::Error::unknown_variant(&name, kind_names()))?,
                        );
                    } else {
                        let v: serde_json::Value = map.next_value()?;
                        options.insert(key, v);
                    }
                }
                let kind = kind.ok_or_else(|| A::Error::missing_field("type"))?;
                let config = (kind.decode)(serde_json::Value::Object(options))
                    .map_err(|e| A::Error::custom(e.to_string()))?;
                Ok(NotifierSpec { kind, config })
            }
        }
        d.deserialize_map(V)
    }
}

/// The registry's names, as serde's `expected` list.
pub fn kind_names() -> &'static [&'static str] {
    static NAMES: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    NAMES.get_or_init(|| NOTIFIERS.iter().map(|k| k.name).collect())
}

/// An absolute `http://` or `https://` URL, or why not (without the URL: it may hold a token).
pub fn check_url(what: &str, url: &str) -> Result<(), String> {
    match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.has_host() => Ok(()),
        Ok(u) => Err(format!(
            "{what} is not an http:// or https:// URL (scheme \"{}\")",
            u.scheme()
        )),
        Err(e) => Err(format!(
            "{what} is not an absolute http:// or https:// URL ({e})"
        )),
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

    /// The secrets set (empty ones left out).
    pub fn values(&self) -> impl Iterator<Item = &Secret> {
        Level::ALL.iter().filter_map(|l| self.get(*l))
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

/// The options of a notifier that sends over HTTP.
pub trait HttpOptions {
    /// Per-request timeout.
    fn timeout(&self) -> Duration;
}

/// A notifier that sends over HTTP (PagerDuty, Slack, webhook): its options and a client
/// whose requests time out after the options' `timeout`.
#[derive(Debug)]
pub struct HttpNotifier<C> {
    pub(crate) cfg: C,
    pub(crate) client: reqwest::Client,
}

impl<C: HttpOptions> HttpNotifier<C> {
    pub fn new(cfg: C) -> anyhow::Result<Self> {
        let client = http_client(cfg.timeout())?;
        Ok(HttpNotifier { cfg, client })
    }
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
