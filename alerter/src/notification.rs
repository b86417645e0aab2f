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
    /// A link to a picture of the target with both thresholds drawn (a render URL, or
    /// `graph_url_template`'s link).
    pub graph_url: Option<String>,
    /// The render URL of that picture when `public_url` says others (Slack, PagerDuty) can
    /// fetch it: Slack shows it as an image, PagerDuty in `images`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graph_image_url: Option<String>,
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
    /// The graph of the target around the firing time (a PNG, as `graph_url` draws it),
    /// drawn at the cycle from the data the alert saw, for notifiers that carry the
    /// picture itself (email, inline). Kept base64 in the outbox.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "png_base64")]
    pub graph_png: Option<Vec<u8>>,
}

/// `Option<Vec<u8>>` as a base64 string.
mod png_base64 {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(b)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|t| {
                base64::engine::general_purpose::STANDARD
                    .decode(t)
                    .map_err(serde::de::Error::custom)
            })
            .transpose()
    }
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

/// A render URL drawing `target` and both thresholds (orange and red lines) over the last
/// hour, as Graphite Pager's graph link: no `format`, so graphite-web and carbide answer a
/// PNG (an `https` base stays `https`).
pub fn graph_url(graphite_url: &str, target: &str, warning: f64, critical: f64) -> String {
    let q = |s: &str| utf8_percent_encode(s, UNRESERVED).to_string();
    let (width, height) = GRAPH_SIZE;
    let mut url = format!(
        "{}/render/?width={width}&height={height}",
        graphite_url.trim_end_matches('/')
    );
    for t in graph_targets(target, warning, critical) {
        url.push_str("&target=");
        url.push_str(&q(&t));
    }
    url.push_str("&from=-1h");
    url
}

/// The size of an alert's graph (its link and the email's picture), pixels.
pub const GRAPH_SIZE: (u32, u32) = (586, 308);

/// What an alert's graph draws: its target and both thresholds as orange and red lines.
pub fn graph_targets(target: &str, warning: f64, critical: f64) -> Vec<String> {
    vec![
        target.to_string(),
        format!("threshold({warning},\"Warning\",\"orange\")"),
        format!("threshold({critical},\"Critical\",\"red\")"),
    ]
}

/// Where graph links point: `base` (`public_url`, else `graphite_url`, else the render API
/// of `carbide up`) and an optional `graph_url_template` replacing the render URL (e.g. a
/// Grafana panel) with `{target}`, `{from}`, `{until}`, `{alert}`, `{series}` filled in,
/// URL-encoded.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GraphLinks {
    pub base: Option<String>,
    pub template: Option<String>,
    /// `public_url` is set: others can fetch the picture (Slack image, PagerDuty images).
    pub public: bool,
}

/// The placeholders of `graph_url_template`.
pub const GRAPH_TEMPLATE_VARS: &[&str] = &["target", "from", "until", "alert", "series"];

/// Checks `graph_url_template`'s placeholders.
pub fn check_graph_template(t: &str) -> Result<(), String> {
    let mut rest = t;
    while let Some(i) = rest.find('{') {
        let Some(j) = rest[i..].find('}') else {
            return Err("unclosed \"{\"".into());
        };
        let name = &rest[i + 1..i + j];
        if !GRAPH_TEMPLATE_VARS.contains(&name) {
            return Err(format!(
                "unknown placeholder \"{{{name}}}\" (expected one of: {})",
                GRAPH_TEMPLATE_VARS.join(", ")
            ));
        }
        rest = &rest[i + j + 1..];
    }
    Ok(())
}

impl GraphLinks {
    /// `(graph_url, graph_image_url)` for an alert's target at `now`.
    pub fn urls(
        &self,
        alert: &str,
        series: &str,
        target: &str,
        warning: f64,
        critical: f64,
        now: i64,
    ) -> (Option<String>, Option<String>) {
        let render = self
            .base
            .as_deref()
            .map(|b| graph_url(b, target, warning, critical));
        let link = match &self.template {
            Some(t) => {
                let q = |s: &str| utf8_percent_encode(s, UNRESERVED).to_string();
                Some(
                    t.replace("{target}", &q(target))
                        .replace("{from}", &(now - 3600).to_string())
                        .replace("{until}", &now.to_string())
                        .replace("{alert}", &q(alert))
                        .replace("{series}", &q(series)),
                )
            }
            None => render.clone(),
        };
        let image = render.filter(|_| self.public);
        (link, image)
    }
}

/// A value as a person reads it: at most four significant digits below 1000, whole numbers
/// above (`18.09090909090909` → `18.09`, `0.00123456` → `0.001235`, `123456.7` → `123457`).
pub fn human_value(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    if v.abs() >= 1000.0 {
        return format!("{:.0}", v.round());
    }
    if v == 0.0 {
        return "0".into();
    }
    let digits = 4 - 1 - v.abs().log10().floor() as i32;
    let decimals = digits.clamp(0, 12) as usize;
    let s = format!("{v:.decimals$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    if s == "-0" {
        "0".into()
    } else {
        s
    }
}

#[cfg(test)]
pub(crate) fn sample(level: Level) -> Notification {
    Notification {
        reason: None,
        graph_png: None,
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
        graph_image_url: None,
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
        assert!(
            u.contains("threshold%2820.5%2C%22Critical%22%2C%22red%22%29"),
            "{u}"
        );
        assert!(!u.contains("format="), "a picture, not JSON: {u}");
    }

    #[test]
    fn graph_links_follow_public_url_and_the_template() {
        let l = GraphLinks {
            base: Some("http://127.0.0.1:8080".into()),
            template: None,
            public: false,
        };
        let (link, image) = l.urls("Load", "web1", "a.b", 1.0, 2.0, 1000);
        assert!(link.unwrap().starts_with("http://127.0.0.1:8080/render/?"));
        assert_eq!(image, None);
        let l = GraphLinks {
            base: Some("https://g.example.com".into()),
            template: Some(
                "https://grafana/d/x?var-t={target}&from={from}000&to={until}000".into(),
            ),
            public: true,
        };
        let (link, image) = l.urls("Load", "web1", "a.*", 1.0, 2.0, 7200);
        assert_eq!(
            link.unwrap(),
            "https://grafana/d/x?var-t=a.%2A&from=3600000&to=7200000"
        );
        assert!(image.unwrap().starts_with("https://g.example.com/render/?"));
        assert!(check_graph_template("x{target}{until}").is_ok());
        assert!(check_graph_template("x{tagret}")
            .unwrap_err()
            .contains("tagret"));
        assert_eq!(
            GraphLinks::default().urls("a", "s", "t", 1.0, 2.0, 0),
            (None, None)
        );
    }

    #[test]
    fn values_read_sensibly() {
        assert_eq!(human_value(18.09090909090909), "18.09");
        assert_eq!(human_value(0.00123456), "0.001235");
        assert_eq!(human_value(123456.7), "123457");
        assert_eq!(human_value(20.0), "20");
        assert_eq!(human_value(23.5), "23.5");
        assert_eq!(human_value(-2.25), "-2.25");
        assert_eq!(human_value(0.0), "0");
        assert_eq!(human_value(999.96), "1000");
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
