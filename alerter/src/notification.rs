//! What a notifier is asked to deliver: a [`Notification`] (one alert, one series, one level
//! change) plus the [`Action`] routing chose for that notifier.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::{Deserialize, Serialize};

/// The level of one alert for one series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(into = "String")]
pub enum Level {
    Ok,
    Warning,
    Critical,
    NoData,
    Error,
}

impl Level {
    pub const ALL: [Level; 5] = [
        Level::Ok,
        Level::Warning,
        Level::Critical,
        Level::NoData,
        Level::Error,
    ];

    /// `OK`, `WARNING`, `CRITICAL`, `NO_DATA`, `ERROR`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Ok => "OK",
            Level::Warning => "WARNING",
            Level::Critical => "CRITICAL",
            Level::NoData => "NO_DATA",
            Level::Error => "ERROR",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Level {
    type Err = String;
    /// Case-insensitive; `nominal` (Graphite Pager's name) is `OK`.
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "ok" | "nominal" => Ok(Level::Ok),
            "warning" => Ok(Level::Warning),
            "critical" => Ok(Level::Critical),
            "no_data" | "nodata" => Ok(Level::NoData),
            "error" => Ok(Level::Error),
            _ => Err(format!(
                "unknown level \"{s}\" (expected one of: OK, WARNING, CRITICAL, NO_DATA, ERROR)"
            )),
        }
    }
}

conf::deserialize_via_from_str!(Level);

impl From<Level> for String {
    fn from(l: Level) -> String {
        l.as_str().to_string()
    }
}

/// What a notifier does with a notification: open/update an incident, or close it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Trigger,
    Resolve,
}

/// One level change (or repeat) of one alert for one series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// The alert's `name`.
    pub alert: String,
    /// The series name as the render API returned it (usually an alias).
    pub series: String,
    pub level: Level,
    pub previous: Level,
    /// The reduced value that decided the level; `None` for no data / errors.
    pub value: Option<f64>,
    /// The threshold that was passed (critical for CRITICAL, else warning).
    pub threshold: Option<f64>,
    /// `{docs_url}/{alert name}#{series}`, URL-encoded.
    pub runbook_url: Option<String>,
    /// A render URL graphing the target with both thresholds.
    pub graph_url: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// Unix seconds of the evaluation that produced it.
    pub timestamp: i64,
    /// One line (email subject, PagerDuty summary, Slack text), from the `summary` template.
    pub summary: String,
    /// Several lines, from the `body` template.
    pub body: String,
    /// Why the level is ERROR (the render error), or NO_DATA; `None` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Notification {
    /// The stable key of this alert and series: `"{alert} {series}"` as Graphite Pager's
    /// `alert_key`, capped at 255 bytes (PagerDuty's `dedup_key` limit) with a hash suffix.
    pub fn dedup_key(&self) -> String {
        dedup_key(&self.alert, &self.series)
    }

    /// Unique per event and notifier: the outbox refuses a second row with the same key.
    pub fn idempotency_key(&self, notifier: &str) -> String {
        format!(
            "{:016x}-{}-{}-{}",
            fnv1a(self.dedup_key().as_bytes()),
            self.level,
            self.timestamp,
            notifier
        )
    }
}

/// See [`Notification::dedup_key`].
pub fn dedup_key(alert: &str, series: &str) -> String {
    let key = format!("{alert} {series}");
    if key.len() <= 255 {
        return key;
    }
    let mut cut = 238;
    while !key.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}~{:016x}", &key[..cut], fnv1a(key.as_bytes()))
}

/// FNV-1a 64: stable across versions and platforms (std's hasher is not).
fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Characters left alone in a path segment / fragment: RFC 3986 unreserved.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `{base}/{alert name}#{series}` with the name and series percent-encoded, as Graphite Pager
/// builds it (its `doc_url` per alert replaces `docs_url` as the base).
pub fn runbook_url(base: &str, alert: &str, series: Option<&str>) -> String {
    let mut url = format!(
        "{}/{}",
        base.trim_end_matches('/'),
        utf8_percent_encode(alert, UNRESERVED)
    );
    if let Some(series) = series {
        url.push('#');
        url.extend(utf8_percent_encode(series, UNRESERVED));
    }
    url
}

/// A render URL graphing `target` and both thresholds over the last 20 minutes, as Graphite
/// Pager's graph link (but an `https` base stays `https`).
pub fn graph_url(graphite_url: &str, target: &str, warning: f64, critical: f64) -> String {
    let q = |s: &str| utf8_percent_encode(s, UNRESERVED).to_string();
    format!(
        "{}/render/?width=586&height=308&target={}&target={}&target={}&from=-20mins",
        graphite_url.trim_end_matches('/'),
        q(target),
        q(&format!("threshold({warning},\"Warning\")")),
        q(&format!("threshold({critical},\"Critical\")")),
    )
}

#[cfg(test)]
pub(crate) fn sample(level: Level) -> Notification {
    Notification {
        reason: None,
        alert: "Load average".into(),
        series: "web-1".into(),
        level,
        previous: Level::Ok,
        value: Some(23.5),
        threshold: Some(20.0),
        runbook_url: Some(runbook_url(
            "https://wiki/alerts",
            "Load average",
            Some("web-1"),
        )),
        graph_url: Some(graph_url("https://graphite", "servers.*.load", 10.0, 20.0)),
        labels: BTreeMap::from([("team".into(), "ops".into())]),
        annotations: BTreeMap::new(),
        timestamp: 1_700_000_000,
        summary: "CRITICAL alert for Load average web-1".into(),
        body: "The current value is 23.5".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runbook_link_is_encoded() {
        assert_eq!(
            runbook_url(
                "https://wiki.example.com/alerts/",
                "HAProxy check duration",
                Some("web 1#a/b")
            ),
            "https://wiki.example.com/alerts/HAProxy%20check%20duration#web%201%23a%2Fb"
        );
        assert_eq!(runbook_url("http://w", "Load", None), "http://w/Load");
    }

    #[test]
    fn graph_link_keeps_https_and_encodes_target() {
        let u = graph_url("https://g.example.com", "aliasByNode(a.*.b,1)", 10.0, 20.5);
        assert!(u.starts_with("https://g.example.com/render/?width=586&height=308&target=aliasByNode%28a.%2A.b%2C1%29&"), "{u}");
        assert!(u.contains("threshold%2820.5%2C%22Critical%22%29"), "{u}");
    }

    #[test]
    fn keys_are_stable_and_bounded() {
        let n = sample(Level::Critical);
        assert_eq!(n.dedup_key(), "Load average web-1");
        assert_eq!(
            n.idempotency_key("pagerduty"),
            n.idempotency_key("pagerduty")
        );
        assert_ne!(n.idempotency_key("pagerduty"), n.idempotency_key("slack"));
        let long = dedup_key(&"é".repeat(200), "s");
        assert!(long.len() <= 255, "{}", long.len());
        assert_ne!(long, dedup_key(&"é".repeat(201), "s"));
    }

    #[test]
    fn levels_parse_graphite_pager_names() {
        assert_eq!("nominal".parse::<Level>(), Ok(Level::Ok));
        assert_eq!("NO_DATA".parse::<Level>(), Ok(Level::NoData));
        assert!("bad".parse::<Level>().is_err());
    }
}
