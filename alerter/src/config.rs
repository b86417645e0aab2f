//! `alerts.yml`: Graphite Pager's format, unchanged, plus carbide's extensions.
//!
//! Loading = decode (the `conf` crate, positions for syntax/unknown keys/types) → apply
//! environment variables (a set, non-empty variable wins over the file, as Graphite Pager's
//! `config.get`) → validate everything (positions found with `conf::locate`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::de::IgnoredAny;
use serde::Deserialize;

use crate::notification::{self, Action, Level};
use crate::notifiers::graphite_events::EVENTS_NOTIFIER;
use crate::notifiers::{check_url, NOTIFIERS};
use crate::notifiers::{kind_names, LegacyValue, LegacyValues, LevelSecrets, NotifierSpec};
use crate::template::{self, Template};
use conf::Secret;
use conf::{self as yaml, ConfigError, Seg};

/// Environment variables read (each wins over its lower-case key in the file): the render
/// API's, then those of the notifier kinds' Graphite Pager keys
/// ([`crate::notifiers::Legacy`]), then `api_auth`'s.
pub fn env_vars() -> Vec<&'static str> {
    let mut v = vec!["GRAPHITE_URL", "GRAPHITE_USER", "GRAPHITE_PASS"];
    v.extend(
        NOTIFIERS
            .iter()
            .filter_map(|k| k.legacy)
            .flat_map(|l| l.keys.iter().filter_map(|(_, var)| *var)),
    );
    v.extend(["CARBIDE_ALERTER_API_PASSWORD", "CARBIDE_ALERTER_API_TOKEN"]);
    v
}

/// Graphite Pager keys carbide accepts and ignores (with a warning).
pub const IGNORED_KEYS: &[&str] = &[
    "redis_url",
    "redistogo_url",
    "hipchat_key",
    "hipchat_room",
    "pushbullet_key",
    "pushbullet_devices",
    "pushbullet_contacts",
    "stdout_enabled",
];

/// The file as written. Every key is documented in `docs/alerts.md`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    /// Base of runbook links: `{docs_url}/{alert name}#{series}`.
    #[serde(default)]
    docs_url: Option<String>,
    /// Render API base URL (graphite-web, carbonapi, carbide's server). Env `GRAPHITE_URL`.
    #[serde(default)]
    graphite_url: Option<String>,
    /// Base URL of the links people open (graph pictures): what the render API is called
    /// from outside (a proxy, a public name). Default: `graphite_url`; under `carbide up`
    /// without either, its HTTP API. Set, it also tells Slack and PagerDuty they can fetch
    /// the picture (an image in the message).
    #[serde(default)]
    public_url: Option<String>,
    /// A link replacing the render URL in `{graph_url}` (e.g. a Grafana panel), with
    /// `{target}`, `{from}`, `{until}` (epoch seconds), `{alert}`, `{series}`.
    #[serde(default)]
    graph_url_template: Option<String>,
    /// HTTP basic-auth user for the render API. Env `GRAPHITE_USER`.
    #[serde(default)]
    graphite_user: Option<String>,
    /// HTTP basic-auth password. Env `GRAPHITE_PASS`.
    #[serde(default)]
    graphite_pass: Option<Secret>,
    // Graphite Pager's notifier keys: read by the kind that owns them
    // (`notifiers::pagerduty::LEGACY`, `notifiers::slack::LEGACY`; [`FileConfig::legacy`]).
    #[serde(default)]
    pagerduty_key: Option<Secret>,
    #[serde(default)]
    pagerduty_url: Option<Secret>,
    #[serde(default)]
    pagerduty: Option<LevelSecrets>,
    #[serde(default)]
    slack_url: Option<Secret>,
    #[serde(default)]
    slack: Option<LevelSecrets>,
    /// The alerts, matched in file order.
    alerts: Vec<AlertFile>,
    /// Evaluation interval.
    #[serde(default = "default_interval", with = "humantime_serde")]
    interval: Duration,
    /// SQLite file for the outbox, alert states and silences.
    #[serde(default = "default_state_file")]
    state_file: PathBuf,
    /// Named notifiers (name → `type:` and its options).
    #[serde(default)]
    notifiers: BTreeMap<String, NotifierSpec>,
    /// Which notifiers each level goes to (replaces the default routing).
    #[serde(default)]
    routes: Option<RoutesFile>,
    /// Message templates for every alert.
    #[serde(default)]
    templates: TemplatesFile,
    /// Defaults for `repeat_interval` of every alert.
    #[serde(default, with = "humantime_serde")]
    repeat_interval: Option<Duration>,
    /// Render requests in flight at most during a round.
    #[serde(default = "default_concurrency")]
    concurrency: usize,
    /// Timeout of one render request.
    #[serde(default = "default_request_timeout", with = "humantime_serde")]
    request_timeout: Duration,
    /// Address of the HTTP JSON API (states, history, silences); `off` disables it.
    #[serde(default = "default_api_listen")]
    api_listen: String,
    /// Authentication of everything on `api_listen` (API and console), as `carbide serve`'s
    /// `auth:`: basic `user` + `password`, a bearer `token`, or both (either is accepted).
    /// Env `CARBIDE_ALERTER_API_PASSWORD`, `CARBIDE_ALERTER_API_TOKEN`.
    #[serde(default)]
    api_auth: ApiAuthFile,
    /// Carbon plaintext `host:port` for the alerter's own metrics; unset: not sent.
    #[serde(default)]
    metrics_carbon: Option<String>,
    /// Path prefix of the alerter's own metrics.
    #[serde(default = "default_metrics_prefix")]
    metrics_prefix: String,
    /// A notification still undelivered this long after it was queued is marked failed
    /// (logged, counted in `notifications.expired`).
    #[serde(default = "default_page_max_age", with = "humantime_serde")]
    page_max_age: Duration,
    /// Going from WARNING/CRITICAL to NO_DATA or ERROR resolves the firing level's
    /// receivers (`true`), or keeps their incident open until data says otherwise (`false`).
    #[serde(default)]
    no_data_resolves: bool,
    /// Post a Graphite event on every level change of every alert (an alert's own `events:`
    /// wins): tags `alert <name> <level>`.
    #[serde(default)]
    events: bool,
    /// Where events go (graphite-web's or carbide's base URL; `{events_url}/events/`).
    /// Default: `graphite_url`; under `carbide up` without either, its own HTTP API.
    #[serde(default)]
    events_url: Option<String>,
    // Graphite Pager keys carbide does not act on: accepted, warned about.
    #[serde(default)]
    redis_url: Option<IgnoredAny>,
    #[serde(default)]
    redistogo_url: Option<IgnoredAny>,
    #[serde(default)]
    hipchat_key: Option<IgnoredAny>,
    #[serde(default)]
    hipchat_room: Option<IgnoredAny>,
    #[serde(default)]
    pushbullet_key: Option<IgnoredAny>,
    #[serde(default)]
    pushbullet_devices: Option<IgnoredAny>,
    #[serde(default)]
    pushbullet_contacts: Option<IgnoredAny>,
    #[serde(default)]
    stdout_enabled: Option<IgnoredAny>,
}

impl FileConfig {
    /// A top-level legacy key's value (a test checks these are exactly the keys the
    /// notifier kinds claim).
    fn legacy(&self, key: &str) -> Option<LegacyValue> {
        let text = |v: &Option<Secret>| v.clone().map(LegacyValue::Text);
        let levels = |v: &Option<LevelSecrets>| v.clone().map(LegacyValue::Levels);
        match key {
            "pagerduty_key" => text(&self.pagerduty_key),
            "pagerduty_url" => text(&self.pagerduty_url),
            "pagerduty" => levels(&self.pagerduty),
            "slack_url" => text(&self.slack_url),
            "slack" => levels(&self.slack),
            _ => None,
        }
    }

    /// Graphite Pager keys carbide does not act on, and whether each is set.
    fn ignored(&self) -> impl Iterator<Item = (&'static str, bool)> {
        let set = [
            self.redis_url.is_some(),
            self.redistogo_url.is_some(),
            self.hipchat_key.is_some(),
            self.hipchat_room.is_some(),
            self.pushbullet_key.is_some(),
            self.pushbullet_devices.is_some(),
            self.pushbullet_contacts.is_some(),
            self.stdout_enabled.is_some(),
        ];
        IGNORED_KEYS.iter().copied().zip(set)
    }
}

impl AlertFile {
    fn legacy(&self, key: &str) -> Option<&Secret> {
        match key {
            "pagerduty_key" => self.pagerduty_key.as_ref(),
            "slack_url" => self.slack_url.as_ref(),
            _ => None,
        }
    }
}

fn default_interval() -> Duration {
    Duration::from_secs(60)
}

fn default_concurrency() -> usize {
    16
}

fn default_request_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_api_listen() -> String {
    "127.0.0.1:9095".into()
}

fn default_page_max_age() -> Duration {
    crate::outbox::DEFAULT_MAX_AGE
}

fn default_metrics_prefix() -> String {
    "carbide.alerter".into()
}

fn default_state_file() -> PathBuf {
    PathBuf::from("alerter.db")
}

fn default_from() -> String {
    "-1min".to_string()
}

/// One alert as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertFile {
    /// Alert name (runbook page, dedup key).
    name: String,
    /// Graphite target expression.
    target: String,
    /// Warning threshold.
    warning: f64,
    /// Critical threshold.
    critical: f64,
    /// Render `from` (default `-1min`).
    #[serde(default = "default_from")]
    from: String,
    /// Render `until` (default: now).
    #[serde(default)]
    until: Option<String>,
    /// Series names never alerted on.
    #[serde(default)]
    exclude: Vec<String>,
    /// No data is OK rather than NO_DATA.
    #[serde(default)]
    allow_no_data: bool,
    /// Runbook base for this alert (replaces `docs_url`).
    #[serde(default)]
    doc_url: Option<String>,
    // Graphite Pager's per-alert notifier keys, read by the kind that owns them.
    #[serde(default)]
    pagerduty_key: Option<Secret>,
    #[serde(default)]
    slack_url: Option<Secret>,
    /// Comparison (`>`, `>=`, `<`, `<=`); default from the thresholds' order.
    #[serde(default)]
    op: Option<Op>,
    /// How a series' points become one value.
    #[serde(default)]
    reduce: Reduce,
    /// A breach must last this long before firing.
    #[serde(default, rename = "for", with = "humantime_serde")]
    for_: Option<Duration>,
    /// Keep firing this long after the value is back.
    #[serde(default, with = "humantime_serde")]
    keep_firing_for: Option<Duration>,
    /// What no data means.
    #[serde(default)]
    no_data: NoDataFile,
    /// Re-send while firing this often.
    #[serde(default, with = "humantime_serde")]
    repeat_interval: Option<Duration>,
    /// Routing for this alert (replaces the global one).
    #[serde(default)]
    routes: Option<RoutesFile>,
    /// Labels copied into every notification.
    #[serde(default)]
    labels: BTreeMap<String, String>,
    /// Annotations copied into every notification.
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    /// Templates for this alert.
    #[serde(default)]
    templates: TemplatesFile,
    /// Post a Graphite event on every level change (default: the file's `events`).
    #[serde(default)]
    events: Option<bool>,
}

/// Level → notifier names.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RoutesFile {
    #[serde(default)]
    warning: Vec<String>,
    #[serde(default)]
    critical: Vec<String>,
    #[serde(default)]
    no_data: Vec<String>,
    #[serde(default)]
    error: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplatesFile {
    /// One line: email subject, PagerDuty summary, Slack text.
    #[serde(default)]
    summary: Option<String>,
    /// Several lines: email body, Slack attachment text.
    #[serde(default)]
    body: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoDataFile {
    #[serde(default)]
    fetch_error: Option<NoDataRule>,
    #[serde(default)]
    vanished: Option<NoDataRule>,
    #[serde(default)]
    all_null: Option<NoDataRule>,
}

/// The level given after `cycles` consecutive evaluations in one no-data case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoDataRule {
    /// `OK`, `WARNING`, `CRITICAL`, `NO_DATA` or `ERROR`.
    pub level: Level,
    /// Consecutive cycles before the level applies (>= 1).
    #[serde(default = "one")]
    pub cycles: u32,
}

fn one() -> u32 {
    1
}

/// The three no-data cases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoDataPolicy {
    /// The render request failed (HTTP error, timeout, bad target at run time).
    pub fetch_error: NoDataRule,
    /// A series seen before is no longer returned.
    pub vanished: NoDataRule,
    /// The series is there but every point is null.
    pub all_null: NoDataRule,
}

/// The comparison deciding "worse".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Gt,
    Ge,
    Lt,
    Le,
}

impl Op {
    /// `>`, `>=`, `<` or `<=`.
    pub fn symbol(self) -> &'static str {
        match self {
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
        }
    }

    pub fn breached(self, value: f64, threshold: f64) -> bool {
        match self {
            Op::Gt => value > threshold,
            Op::Ge => value >= threshold,
            Op::Lt => value < threshold,
            Op::Le => value <= threshold,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
        }
    }

    fn higher_is_worse(self) -> bool {
        matches!(self, Op::Gt | Op::Ge)
    }
}

conf::deserialize_via_from_str!(Op);
conf::deserialize_via_from_str!(Reduce);

impl FromStr for Op {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s.trim() {
            ">" => Op::Gt,
            ">=" => Op::Ge,
            "<" => Op::Lt,
            "<=" => Op::Le,
            other => {
                return Err(format!(
                    "unknown op \"{other}\" (expected one of: >, >=, <, <=)"
                ))
            }
        })
    }
}

/// How a series' points become the one value compared with the thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Reduce {
    /// The last non-null point (Graphite Pager's behaviour).
    #[default]
    Last,
    Avg,
    Min,
    Max,
    Sum,
    /// Nearest-rank percentile, `p0`..`p100` (`p95`, `p99.9`).
    Percentile(f64),
}

impl FromStr for Reduce {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s.trim() {
            "last" => Reduce::Last,
            "avg" | "average" | "mean" => Reduce::Avg,
            "min" => Reduce::Min,
            "max" => Reduce::Max,
            "sum" => Reduce::Sum,
            p if p.starts_with('p') => match p[1..].parse::<f64>() {
                Ok(n) if (0.0..=100.0).contains(&n) => Reduce::Percentile(n),
                _ => {
                    return Err(format!(
                        "bad percentile \"{p}\" (expected p0 to p100, e.g. p95)"
                    ))
                }
            },
            other => {
                return Err(format!(
                    "unknown reduce \"{other}\" (expected one of: last, avg, min, max, sum, pNN)"
                ))
            }
        })
    }
}

impl Reduce {
    /// One value from the points (nulls skipped); `None` when every point is null.
    pub fn apply(self, points: &[Option<f64>]) -> Option<f64> {
        let mut vals = points.iter().flatten().copied().filter(|v| !v.is_nan());
        match self {
            Reduce::Last => vals.next_back(),
            Reduce::Min => vals.reduce(f64::min),
            Reduce::Max => vals.reduce(f64::max),
            Reduce::Sum => vals.reduce(|a, b| a + b),
            Reduce::Avg => {
                let (n, s) = vals.fold((0u32, 0.0), |(n, s), v| (n + 1, s + v));
                (n > 0).then(|| s / f64::from(n))
            }
            Reduce::Percentile(p) => {
                let mut v: Vec<f64> = vals.collect();
                if v.is_empty() {
                    return None;
                }
                v.sort_by(f64::total_cmp);
                let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
                Some(v[rank.clamp(1, v.len()) - 1])
            }
        }
    }
}

/// Level → notifier names, resolved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routes {
    pub warning: Vec<String>,
    pub critical: Vec<String>,
    pub no_data: Vec<String>,
    pub error: Vec<String>,
}

impl Routes {
    /// Notifiers a level fires to (OK fires to none: it resolves).
    pub fn for_level(&self, level: Level) -> &[String] {
        match level {
            Level::Ok => &[],
            Level::Warning => &self.warning,
            Level::Critical => &self.critical,
            Level::NoData => &self.no_data,
            Level::Error => &self.error,
        }
    }

    /// [`Routes::plan`] for a change `from → to`, keeping incidents open while nothing is
    /// known (`keep_open`: alerts.yml's `no_data_resolves: false`, the default): going from
    /// WARNING/CRITICAL to NO_DATA or ERROR triggers the new level's notifiers and resolves
    /// nobody — a dead host does not close its own page — and the firing level is `held`;
    /// when data says something again, the held level's notifiers are resolved (or
    /// triggered) as if the change came from it. Returns the plan and the new `held`.
    pub fn plan_held(
        &self,
        from: Level,
        to: Level,
        held: Option<Level>,
        keep_open: bool,
    ) -> (Vec<(String, Action)>, Option<Level>) {
        let firing = |l: Level| matches!(l, Level::Warning | Level::Critical);
        let unknown = |l: Level| matches!(l, Level::NoData | Level::Error);
        if keep_open && firing(from) && unknown(to) {
            let plan = self
                .plan(Level::Ok, to)
                .into_iter()
                .filter(|(_, a)| *a == Action::Trigger)
                .collect();
            return (plan, Some(from));
        }
        let Some(h) = held else {
            return (self.plan(from, to), None);
        };
        let mut plan = self.plan(from, to);
        if unknown(to) {
            // Still nothing known: the held level's incidents stay open.
            let keep = self.for_level(h);
            plan.retain(|(n, a)| !(*a == Action::Resolve && keep.contains(n)));
            return (plan, Some(h));
        }
        for (n, a) in self.plan(h, to) {
            if !plan.iter().any(|(m, _)| *m == n) {
                plan.push((n, a));
            }
        }
        (plan, None)
    }

    /// For a change `previous → level`: a notifier the new level routes to gets a trigger;
    /// one that only the previous level routed to gets a resolve.
    pub fn plan(&self, previous: Level, level: Level) -> Vec<(String, Action)> {
        let mut out: Vec<(String, Action)> = Vec::new();
        for n in self.for_level(level) {
            if !out.iter().any(|(m, _)| m == n) {
                out.push((n.clone(), Action::Trigger));
            }
        }
        for n in self.for_level(previous) {
            if !out.iter().any(|(m, _)| m == n) {
                out.push((n.clone(), Action::Resolve));
            }
        }
        out
    }

    /// Keep only the `(level, notifier)` pairs `keep` accepts.
    fn retain(&mut self, mut keep: impl FnMut(Level, &str) -> bool) {
        for (level, list) in [
            (Level::Warning, &mut self.warning),
            (Level::Critical, &mut self.critical),
            (Level::NoData, &mut self.no_data),
            (Level::Error, &mut self.error),
        ] {
            list.retain(|n| keep(level, n));
        }
    }

    fn from_file(f: RoutesFile) -> Routes {
        Routes {
            warning: f.warning,
            critical: f.critical,
            no_data: f.no_data,
            error: f.error,
        }
    }
}

/// `api_auth:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ApiAuthFile {
    /// Basic-auth user; needs a password.
    #[serde(default)]
    user: Option<String>,
    /// Basic-auth password. Env `CARBIDE_ALERTER_API_PASSWORD`.
    #[serde(default)]
    password: Option<Secret>,
    /// Bearer token (`Authorization: Bearer <token>`). Env `CARBIDE_ALERTER_API_TOKEN`.
    #[serde(default)]
    token: Option<Secret>,
}

/// Parsed templates.
#[derive(Debug, Clone, PartialEq)]
pub struct Templates {
    pub summary: Template,
    pub body: Template,
    /// The body of NO_DATA and ERROR notifications: `body` when the file sets one (for every
    /// level), else [`template::DEFAULT_MISSING_BODY`].
    pub body_missing: Template,
}

/// Render API settings.
#[derive(Debug, Clone, Default)]
pub struct GraphiteSettings {
    /// `None`: not set (`carbide up` reads its own store).
    pub url: Option<String>,
    pub user: Option<String>,
    pub password: Option<Secret>,
}

/// One validated alert.
#[derive(Debug, Clone)]
pub struct Alert {
    /// Position in the file (0-based); earlier alerts win for the same name + series.
    pub index: usize,
    pub name: String,
    pub target: String,
    pub warning: f64,
    pub critical: f64,
    pub op: Op,
    pub from: String,
    pub until: Option<String>,
    pub exclude: BTreeSet<String>,
    pub allow_no_data: bool,
    /// Runbook base: the alert's `doc_url`, else `docs_url`.
    pub docs_base: Option<String>,
    pub reduce: Reduce,
    pub for_: Duration,
    pub keep_firing_for: Duration,
    pub no_data: NoDataPolicy,
    pub repeat_interval: Option<Duration>,
    pub routes: Routes,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub templates: Templates,
    /// A Graphite event is posted on every level change.
    pub events: bool,
}

impl Alert {
    /// The level of a value (Graphite Pager: critical checked first).
    pub fn level_for(&self, value: f64) -> Level {
        if self.op.breached(value, self.critical) {
            Level::Critical
        } else if self.op.breached(value, self.warning) {
            Level::Warning
        } else {
            Level::Ok
        }
    }

    /// The threshold reported with a level (Graphite Pager's `value_for_level`).
    pub fn threshold_for(&self, level: Level) -> Option<f64> {
        match level {
            Level::Critical => Some(self.critical),
            Level::Warning | Level::Ok => Some(self.warning),
            _ => None,
        }
    }

    /// `{docs base}/{name}#{series}`.
    pub fn runbook_url(&self, series: &str) -> Option<String> {
        self.docs_base
            .as_deref()
            .map(|b| notification::runbook_url(b, &self.name, Some(series)))
    }
}

/// A loaded, validated `alerts.yml`.
#[derive(Debug, Clone)]
pub struct Config {
    pub file: PathBuf,
    pub docs_url: Option<String>,
    pub graphite: GraphiteSettings,
    pub interval: Duration,
    pub state_file: PathBuf,
    pub alerts: Vec<Alert>,
    /// Every notifier by name, including the built-in `console`, and `pagerduty` / `slack`
    /// when Graphite Pager's keys configure them.
    pub notifiers: BTreeMap<String, NotifierSpec>,
    /// Things worth a line in the log (ignored Graphite Pager keys, unused notifiers).
    pub warnings: Vec<String>,
    /// Render requests in flight at most.
    pub concurrency: usize,
    /// Per render request.
    pub request_timeout: Duration,
    /// The HTTP API address (`None`: off).
    pub api_listen: Option<std::net::SocketAddr>,
    /// The credentials everything on `api_listen` requires, from the file (none set: open;
    /// see [`Config::api_auth`]).
    pub api_auth: crate::api::ApiAuth,
    /// The credentials when the file sets none (not from the file: `carbide up` sets its HTTP
    /// API's, so its alerter port is not the open side door; a reload keeps it).
    pub api_auth_default: crate::api::ApiAuth,
    /// Carbon `host:port` for self-metrics (`None`: not sent).
    pub metrics_carbon: Option<String>,
    /// Where self-metrics go when the file sets no `metrics_carbon` (not from the file: set
    /// by the program running the alerter, e.g. `carbide up`'s own carbon port; a reload
    /// keeps it).
    pub metrics_carbon_default: Option<String>,
    /// Self-metrics path prefix.
    pub metrics_prefix: String,
    /// `public_url` from the file.
    pub public_url: Option<String>,
    /// `graph_url_template` from the file (placeholders checked).
    pub graph_url_template: Option<String>,
    /// Where graph links point when the file sets neither `public_url` nor `graphite_url`
    /// (not from the file: `carbide up` sets its HTTP API; a reload keeps it).
    pub public_url_default: Option<String>,
    /// Undelivered notifications older than this are marked failed.
    pub page_max_age: Duration,
    /// WARNING/CRITICAL → NO_DATA/ERROR resolves the firing level's receivers.
    pub no_data_resolves: bool,
    /// `events_url` from the file.
    pub events_url: Option<String>,
}

impl Config {
    /// Load `file`, with the process environment.
    pub fn load(file: &Path) -> Result<Config, ConfigError> {
        Self::load_with_env(file, &|k| std::env::var(k).ok())
    }

    /// Load with an explicit environment lookup (tests).
    pub fn load_with_env(
        file: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(file)
            .map_err(|e| ConfigError::whole_file(file, format!("cannot read: {e}")))?;
        Self::from_str_with_env(file, &text, env)
    }

    pub fn from_str_with_env(
        file: &Path,
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let f: FileConfig = yaml::from_str(file, text)?;
        Loader { file, text }.build(f, env)
    }

    /// The credentials everything on `api_listen` requires: the file's `api_auth`, else what
    /// the program running the alerter set.
    pub fn api_auth(&self) -> &crate::api::ApiAuth {
        if self.api_auth.enabled() {
            &self.api_auth
        } else {
            &self.api_auth_default
        }
    }

    /// Where graph links point ([`crate::notification::GraphLinks`]): `public_url`, else
    /// `graphite_url`, else what the program running the alerter set.
    pub fn graph_links(&self) -> crate::notification::GraphLinks {
        crate::notification::GraphLinks {
            base: self
                .public_url
                .clone()
                .or_else(|| self.graphite.url.clone())
                .or_else(|| self.public_url_default.clone()),
            template: self.graph_url_template.clone(),
            public: self.public_url.is_some(),
        }
    }

    /// The notifier `events: true` posts to when the file defines none of that name
    /// ([`EVENTS_NOTIFIER`]): a `graphite_events` notifier at `events_url`, else
    /// `graphite_url`, else what the program running the alerter set (`carbide up`: its own
    /// HTTP API), with the render API's credentials. `Ok(None)`: no alert posts events, or
    /// the file defines that notifier.
    pub fn events_notifier(&self) -> Result<Option<NotifierSpec>, String> {
        if !self.alerts.iter().any(|a| a.events) || self.notifiers.contains_key(EVENTS_NOTIFIER) {
            return Ok(None);
        }
        let url = self
            .events_url
            .clone()
            .or_else(|| self.graphite.url.clone())
            .or_else(|| self.public_url_default.clone())
            .ok_or(
                "events: true needs somewhere to post events: set events_url (or graphite_url)",
            )?;
        let spec = NotifierSpec::new(
            crate::notifiers::kind(EVENTS_NOTIFIER).ok_or("no graphite_events notifier kind")?,
            crate::notifiers::graphite_events::GraphiteEventsConfig {
                url,
                username: self.graphite.user.clone(),
                password: self.graphite.password.clone(),
                timeout: self.request_timeout,
            },
        );
        spec.validate()?;
        Ok(Some(spec))
    }

    /// `graphite_url` (or `GRAPHITE_URL`) is set: `alerter check`, `run`, `dry-run` and
    /// `replay` evaluate through a render API. (`carbide up` reads its own store instead.)
    pub fn require_render_api(&self) -> Result<(), ConfigError> {
        match &self.graphite.url {
            Some(_) => Ok(()),
            None => Err(ConfigError::whole_file(
                &self.file,
                "graphite_url is not set (nor GRAPHITE_URL): the alerter evaluates through a render API (graphite-web, carbonapi, carbide serve); set graphite_url: http://HOST:PORT, or, for a file carbide up runs with its own store, check it with alerter check --embedded",
            )),
        }
    }

    /// The notifier specs that must be built for `run`.
    pub fn notifier_names(&self) -> impl Iterator<Item = &str> {
        self.notifiers.keys().map(String::as_str)
    }
}

/// Graphite Pager's "first definition wins": returns true the first time a name + series
/// pair is seen in a round (evaluate alerts in file order and skip when false).
pub fn claim(seen: &mut BTreeSet<(String, String)>, alert: &str, series: &str) -> bool {
    seen.insert((alert.to_string(), series.to_string()))
}

struct Loader<'a> {
    file: &'a Path,
    text: &'a str,
}

impl Loader<'_> {
    /// `api_auth:` checked as `carbide serve` checks `auth:`: a user needs a password and a
    /// password a user; an empty secret (`${UNSET:-}`) is no secret, never an accepted empty
    /// credential.
    fn api_auth(
        &self,
        f: &ApiAuthFile,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<crate::api::ApiAuth, ConfigError> {
        let given = |s: &Option<Secret>| s.clone().filter(|s| !s.is_empty());
        let password = env("CARBIDE_ALERTER_API_PASSWORD")
            .map(Secret::new)
            .or(given(&f.password));
        let basic = match (f.user.clone().filter(|u| !u.is_empty()), password) {
            (Some(u), Some(p)) => Some((u, p)),
            (Some(_), None) => {
                return Err(self.err(
                    &[Seg::Key("api_auth"), Seg::Key("user")],
                    "api_auth: a user is set but no password; set api_auth.password or CARBIDE_ALERTER_API_PASSWORD",
                ))
            }
            (None, Some(_)) => {
                return Err(self.err(
                    &[Seg::Key("api_auth"), Seg::Key("password")],
                    "api_auth: a password is set but no user; set api_auth.user",
                ))
            }
            (None, None) => None,
        };
        let bearer = env("CARBIDE_ALERTER_API_TOKEN")
            .map(Secret::new)
            .or(given(&f.token));
        Ok(crate::api::ApiAuth { basic, bearer })
    }

    fn err(&self, path: &[Seg], msg: impl Into<String>) -> ConfigError {
        let (line, col) = yaml::locate(self.text, path).unwrap_or((0, 0));
        ConfigError::new(self.file, line, col, msg)
    }

    /// The whole file: settings, then the notifiers, the routes, the alerts.
    fn build(
        &self,
        mut f: FileConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let env = |k: &str| env(k).filter(|v| !v.is_empty());
        let mut warnings = Vec::new();
        for (key, set) in f.ignored() {
            if set {
                warnings.push(format!(
                    "{}: \"{key}\" is a Graphite Pager setting carbide does not use; ignored",
                    self.file.display()
                ));
            }
        }

        let graphite = GraphiteSettings {
            url: env("GRAPHITE_URL").or(f.graphite_url.take()),
            user: env("GRAPHITE_USER").or(f.graphite_user.take()),
            password: env("GRAPHITE_PASS")
                .map(Secret::new)
                .or(f.graphite_pass.take()),
        };
        if let Some(t) = &f.graph_url_template {
            crate::notification::check_graph_template(t)
                .map_err(|m| self.err(&[Seg::Key("graph_url_template")], m))?;
        }
        for (key, url) in [
            ("graphite_url", &graphite.url),
            ("docs_url", &f.docs_url),
            ("public_url", &f.public_url),
            ("events_url", &f.events_url),
        ] {
            if let Some(u) = url {
                check_url(key, u).map_err(|m| self.err(&[Seg::Key(key)], m))?;
            }
        }

        let notifiers = self.notifiers(&mut f, &env)?;
        let default_routes = f.routes.is_none().then(|| default_routes(&notifiers));
        let global_templates = self.templates(&f.templates, &[Seg::Key("templates")], None)?;
        let shared = Shared {
            notifiers: &notifiers,
            global_routes: match f.routes.take() {
                Some(r) => Routes::from_file(r),
                None => default_routes.clone().unwrap_or_default(),
            },
            default_routing: default_routes.is_some(),
            templates: global_templates,
            docs_url: f.docs_url.as_deref(),
            repeat_interval: f.repeat_interval,
            events: f.events,
        };
        let mut alerts = Vec::with_capacity(f.alerts.len());
        for (i, a) in std::mem::take(&mut f.alerts).into_iter().enumerate() {
            alerts.push(self.alert(i, a, &shared)?);
        }

        for name in notifiers.keys() {
            let used = alerts.iter().any(|a| {
                Level::ALL
                    .iter()
                    .any(|l| a.routes.for_level(*l).contains(name))
            });
            let events = name == EVENTS_NOTIFIER && alerts.iter().any(|a| a.events);
            if !used && name != "console" && !events {
                warnings.push(format!(
                    "{}: notifier \"{name}\" is never routed to (add it under routes:)",
                    self.file.display()
                ));
            }
        }

        if f.concurrency == 0 {
            return Err(self.err(&[Seg::Key("concurrency")], "concurrency must be at least 1"));
        }
        let api_listen = match f.api_listen.trim() {
            "off" | "" => None,
            a => Some(a.parse::<std::net::SocketAddr>().map_err(|e| {
                self.err(
                    &[Seg::Key("api_listen")],
                    format!(
                        "api_listen \"{a}\": {e} (expected ip:port such as 127.0.0.1:9095, or off)"
                    ),
                )
            })?),
        };
        let api_auth = self.api_auth(&f.api_auth, &env)?;
        if graphite::protocol::sanitize_path(&f.metrics_prefix)
            .ok()
            .as_deref()
            != Some(f.metrics_prefix.as_str())
        {
            return Err(self.err(
                &[Seg::Key("metrics_prefix")],
                format!(
                    "metrics_prefix \"{}\" is not a valid Graphite path (dot-separated, no spaces)",
                    f.metrics_prefix
                ),
            ));
        }
        Ok(Config {
            concurrency: f.concurrency,
            request_timeout: f.request_timeout,
            api_listen,
            api_auth,
            api_auth_default: crate::api::ApiAuth::default(),
            metrics_carbon: f.metrics_carbon,
            metrics_carbon_default: None,
            metrics_prefix: f.metrics_prefix,
            public_url: f.public_url,
            graph_url_template: f.graph_url_template,
            public_url_default: None,
            page_max_age: f.page_max_age,
            no_data_resolves: f.no_data_resolves,
            events_url: f.events_url,
            file: self.file.to_path_buf(),
            docs_url: f.docs_url,
            graphite,
            interval: f.interval,
            state_file: f.state_file,
            alerts,
            notifiers,
            warnings,
        })
    }

    /// `notifiers:` as written, each validated by its kind, then what Graphite Pager's keys
    /// (and their environment variables) make: every kind with a [`Legacy`] completes or
    /// creates the notifier named like it.
    fn notifiers(
        &self,
        f: &mut FileConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<BTreeMap<String, NotifierSpec>, ConfigError> {
        let mut notifiers = std::mem::take(&mut f.notifiers);
        for kind in NOTIFIERS {
            let Some(legacy) = kind.legacy else {
                continue;
            };
            let defined = notifiers.get(kind.name);
            if let Some(d) = defined.filter(|d| d.kind() != kind.name) {
                if legacy.keys.is_empty() {
                    continue; // nothing to give it: the file's own notifier of that name
                }
                let (key, var) = legacy.keys[0];
                return Err(self.err(
                    &[Seg::Key("notifiers"), Seg::Key(kind.name)],
                    format!(
                        "the notifier name \"{name}\" is reserved for type: {name} (it receives {} and {key}); rename this one (type: {})",
                        var.unwrap_or(key),
                        d.kind(),
                        name = kind.name,
                    ),
                ));
            }
            let mut values = LegacyValues::default();
            for &(key, var) in legacy.keys {
                let from_env = var.and_then(env).map(|v| LegacyValue::Text(Secret::new(v)));
                let from_file = f.legacy(key);
                if let Some(v) = from_env.or(from_file) {
                    values.top.insert(key, v);
                }
            }
            if let Some(key) = legacy.alert_key {
                // First definition of a name wins.
                for (i, a) in f.alerts.iter().enumerate().rev() {
                    if let Some(v) = a.legacy(key) {
                        values.per_alert.insert(a.name.clone(), (i, v.clone()));
                    }
                }
            }
            let made = (legacy.apply)(defined, &values).map_err(|e| {
                let path = match e.alert {
                    Some(i) => vec![Seg::Key("alerts"), Seg::Index(i), Seg::Key(e.key)],
                    None => vec![Seg::Key(e.key)],
                };
                self.err(&path, e.message)
            })?;
            if let Some(spec) = made {
                notifiers.insert(kind.name.to_string(), spec);
            }
        }
        for (name, spec) in &notifiers {
            spec.validate().map_err(|m| {
                self.err(
                    &[Seg::Key("notifiers"), Seg::Key(name)],
                    format!("notifier \"{name}\": {m}"),
                )
            })?;
        }
        Ok(notifiers)
    }

    /// One alert, checked against the notifiers its routes name.
    fn alert(&self, i: usize, a: AlertFile, shared: &Shared) -> Result<Alert, ConfigError> {
        let at = |key: &'static str| [Seg::Key("alerts"), Seg::Index(i), Seg::Key(key)];
        let name = a.name.trim().to_string();
        let who = format!("alert \"{name}\" (#{})", i + 1);
        if name.is_empty() {
            return Err(self.err(&at("name"), format!("alert #{}: name is empty", i + 1)));
        }
        validate_target(&a.target)
            .map_err(|m| self.err(&at("target"), format!("{who}: target: {m}")))?;
        if !a.warning.is_finite() || !a.critical.is_finite() {
            return Err(self.err(
                &at("warning"),
                format!("{who}: warning and critical must be numbers"),
            ));
        }
        let op = match a.op {
            Some(op) => {
                let wrong_order = if op.higher_is_worse() { a.warning > a.critical } else { a.warning < a.critical };
                if wrong_order {
                    return Err(self.err(&at("op"), format!(
                        "{who}: with op \"{}\" warning ({}) must not be {} critical ({}): the warning level could never be reached; swap them",
                        op.as_str(), a.warning, if op.higher_is_worse() { "above" } else { "below" }, a.critical
                    )));
                }
                op
            }
            None if a.warning < a.critical => Op::Ge,
            None if a.warning > a.critical => Op::Le,
            None => {
                return Err(self.err(&at("critical"), format!(
                    "{who}: warning and critical are both {}: the direction is ambiguous; add op: \">=\" (higher is worse) or op: \"<=\" (lower is worse), or make them differ",
                    a.critical
                )))
            }
        };
        if let Some(u) = &a.doc_url {
            check_url("doc_url", u).map_err(|m| self.err(&at("doc_url"), format!("{who}: {m}")))?;
        }
        if a.from.trim().is_empty() {
            return Err(self.err(
                &at("from"),
                format!("{who}: from is empty (Graphite Pager's default is -1min)"),
            ));
        }
        // Graphite's time syntax, as the render API will read it (checked against any now:
        // only the syntax matters here).
        let tz = graphite::attime::TimeZone::utc();
        for (key, t) in [("from", Some(&a.from)), ("until", a.until.as_ref())] {
            let Some(t) = t else { continue };
            graphite::attime::parse_time(t, 0, &tz).map_err(|e| {
                self.err(
                    &at(key),
                    format!(
                        "{who}: {key}: {e} (Graphite time: -10min, -1h, now, an epoch, 00:00_20240101)"
                    ),
                )
            })?;
        }
        let no_data = self.no_data(i, &who, &a)?;
        let routes = self.alert_routes(i, &who, &name, a.routes.clone(), shared)?;
        let templates = self.templates(
            &a.templates,
            &[Seg::Key("alerts"), Seg::Index(i), Seg::Key("templates")],
            Some(&shared.templates),
        )?;
        Ok(Alert {
            index: i,
            docs_base: a
                .doc_url
                .clone()
                .or_else(|| shared.docs_url.map(String::from)),
            name,
            target: a.target,
            warning: a.warning,
            critical: a.critical,
            op,
            from: a.from,
            until: a.until,
            exclude: a.exclude.into_iter().collect(),
            allow_no_data: a.allow_no_data,
            reduce: a.reduce,
            for_: a.for_.unwrap_or_default(),
            keep_firing_for: a.keep_firing_for.unwrap_or_default(),
            no_data,
            repeat_interval: a.repeat_interval.or(shared.repeat_interval),
            routes,
            labels: a.labels,
            annotations: a.annotations,
            templates,
            events: a.events.unwrap_or(shared.events),
        })
    }

    fn no_data(&self, i: usize, who: &str, a: &AlertFile) -> Result<NoDataPolicy, ConfigError> {
        let default_missing = if a.allow_no_data {
            Level::Ok
        } else {
            Level::NoData
        };
        let rule = |r: Option<NoDataRule>,
                    key: &'static str,
                    default: Level|
         -> Result<NoDataRule, ConfigError> {
            let r = r.unwrap_or(NoDataRule {
                level: default,
                cycles: 1,
            });
            if r.cycles == 0 {
                return Err(self.err(
                    &[
                        Seg::Key("alerts"),
                        Seg::Index(i),
                        Seg::Key("no_data"),
                        Seg::Key(key),
                    ],
                    format!("{who}: no_data.{key}.cycles must be at least 1"),
                ));
            }
            Ok(r)
        };
        Ok(NoDataPolicy {
            fetch_error: rule(a.no_data.fetch_error, "fetch_error", Level::Error)?,
            vanished: rule(a.no_data.vanished, "vanished", default_missing)?,
            all_null: rule(a.no_data.all_null, "all_null", default_missing)?,
        })
    }

    /// The alert's routes (its own, else the file's), every notifier they name known and
    /// able to send this alert at that level.
    fn alert_routes(
        &self,
        i: usize,
        who: &str,
        name: &str,
        own: Option<RoutesFile>,
        shared: &Shared,
    ) -> Result<Routes, ConfigError> {
        let notifiers = shared.notifiers;
        let routes_given = own.is_some();
        let mut routes = match own {
            Some(r) => Routes::from_file(r),
            None => shared.global_routes.clone(),
        };
        if shared.default_routing && !routes_given {
            // Graphite Pager: a level the `pagerduty:` / `slack:` maps (and the keys and
            // URLs) leave out is simply not sent there. Routes written in the file are
            // checked below instead: naming a notifier without its secret is an error.
            routes.retain(|level, n| {
                notifiers
                    .get(n)
                    .is_none_or(|spec| spec.missing(name, level).is_none())
            });
        }
        for level in Level::ALL {
            for n in routes.for_level(level) {
                let path: Vec<Seg> = if routes_given {
                    vec![
                        Seg::Key("alerts"),
                        Seg::Index(i),
                        Seg::Key("routes"),
                        Seg::Key(level_key(level)),
                    ]
                } else {
                    vec![Seg::Key("routes"), Seg::Key(level_key(level))]
                };
                let Some(spec) = notifiers.get(n) else {
                    let names: Vec<&str> = notifiers.keys().map(String::as_str).collect();
                    let hint = yaml::closest(n, names.iter().copied())
                        .map(|k| format!("did you mean \"{k}\"? "))
                        .unwrap_or_default();
                    return Err(self.err(&path, format!(
                        "{who}: {level} is routed to unknown notifier \"{n}\": {hint}(defined: {}; types: {})",
                        names.join(", "),
                        kind_names().join(", ")
                    )));
                };
                if let Some(m) = spec.missing(name, level) {
                    return Err(self.err(
                        &[Seg::Key("alerts"), Seg::Index(i), Seg::Key("name")],
                        format!("{who}: {level} is routed to \"{n}\" but there is {m}"),
                    ));
                }
            }
        }
        Ok(routes)
    }
    fn templates(
        &self,
        t: &TemplatesFile,
        path: &[Seg],
        base: Option<&Templates>,
    ) -> Result<Templates, ConfigError> {
        let one =
            |text: &Option<String>, key: &'static str, default: &str, base: Option<&Template>| {
                let mut p = path.to_vec();
                p.push(Seg::Key(key));
                match (text, base) {
                    (Some(s), _) => Template::parse(s)
                        .map_err(|m| self.err(&p, format!("templates.{key}: {m}"))),
                    (None, Some(b)) => Ok(b.clone()),
                    (None, None) => Template::parse(default).map_err(|m| self.err(&p, m)),
                }
            };
        Ok(Templates {
            summary: one(
                &t.summary,
                "summary",
                template::DEFAULT_SUMMARY,
                base.map(|b| &b.summary),
            )?,
            body: one(
                &t.body,
                "body",
                template::DEFAULT_BODY,
                base.map(|b| &b.body),
            )?,
            body_missing: one(
                &t.body,
                "body",
                template::DEFAULT_MISSING_BODY,
                base.map(|b| &b.body_missing),
            )?,
        })
    }
}

/// What every alert is built with.
struct Shared<'a> {
    notifiers: &'a BTreeMap<String, NotifierSpec>,
    /// The file's `routes:`, else the default routing.
    global_routes: Routes,
    /// No `routes:` in the file.
    default_routing: bool,
    templates: Templates,
    docs_url: Option<&'a str>,
    repeat_interval: Option<Duration>,
    /// The file's `events`.
    events: bool,
}

/// Routing without `routes:` in the file: each kind's [`NotifierKind::default_levels`] to
/// the notifier named like it, in registry order (console everywhere, Slack for every
/// level, PagerDuty for CRITICAL: Graphite Pager's behaviour).
///
/// [`NotifierKind::default_levels`]: crate::notifiers::NotifierKind::default_levels
fn default_routes(notifiers: &BTreeMap<String, NotifierSpec>) -> Routes {
    let mut r = Routes::default();
    for kind in NOTIFIERS.iter().filter(|k| notifiers.contains_key(k.name)) {
        for level in kind.default_levels {
            let list = match level {
                Level::Ok => continue, // OK resolves, it is never routed
                Level::Warning => &mut r.warning,
                Level::Critical => &mut r.critical,
                Level::NoData => &mut r.no_data,
                Level::Error => &mut r.error,
            };
            list.push(kind.name.to_string());
        }
    }
    r
}

fn level_key(level: Level) -> &'static str {
    match level {
        Level::Ok => "nominal",
        Level::Warning => "warning",
        Level::Critical => "critical",
        Level::NoData => "no_data",
        Level::Error => "error",
    }
}

/// THE one call site for target validation: [`graphite::functions::check_target`] parses
/// with graphite-web's grammar, then checks every function exists and every call's arguments
/// fit its signature in the registry (arity, types, options). The error carries the target
/// with a caret under the bad column (the bad argument, or the call missing one).
pub fn validate_target(target: &str) -> Result<(), String> {
    if target.trim().is_empty() {
        return Err("empty target".into());
    }
    graphite::functions::check_target(target)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notifiers::pagerduty::PagerDutyConfig;

    fn load(text: &str) -> Result<Config, ConfigError> {
        Config::from_str_with_env(Path::new("alerts.yml"), text, &|_| None)
    }

    const GP_README: &str = "docs_url: https://wiki.example.com/alerts
alerts:
  - name: Load
    target: aliasByNode(servers.worker-*.loadavg.01,1)
    warning: 10
    critical: 20
  - name: HAProxy check duration
    target: aliasByNode(movingMedian(groupByNode(servers.*.haproxy.*.*.check_duration,3,\"averageSeries\"),10),0)
    warning: 500
    critical: 1000
    from: -10min
";

    #[test]
    fn graphite_pager_example_loads_with_its_defaults() {
        let c = load(GP_README).unwrap();
        assert_eq!(c.alerts.len(), 2);
        let a = &c.alerts[0];
        assert_eq!(
            (a.from.as_str(), a.op, a.reduce),
            ("-1min", Op::Ge, Reduce::Last)
        );
        assert_eq!(a.level_for(20.0), Level::Critical);
        assert_eq!(a.level_for(10.0), Level::Warning);
        assert_eq!(a.level_for(9.9), Level::Ok);
        assert_eq!(c.alerts[1].from, "-10min");
        assert_eq!(
            a.runbook_url("worker-1").as_deref(),
            Some("https://wiki.example.com/alerts/Load#worker-1")
        );
        assert_eq!(a.no_data.all_null.level, Level::NoData);
        assert_eq!(a.routes.critical, vec!["console"]);
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    #[test]
    fn lower_is_worse_when_warning_above_critical() {
        let c = load("alerts:\n  - name: Free\n    target: a.b\n    warning: 2\n    critical: 1\n")
            .unwrap();
        let a = &c.alerts[0];
        assert_eq!(a.op, Op::Le);
        assert_eq!(a.level_for(0.0), Level::Critical);
        assert_eq!(a.level_for(2.0), Level::Warning);
        assert_eq!(a.level_for(3.0), Level::Ok);
    }

    #[test]
    fn equal_thresholds_without_op_is_an_error_with_position() {
        let e = load("alerts:\n  - name: X\n    target: a.b\n    warning: 5\n    critical: 5\n")
            .unwrap_err();
        assert_eq!((e.line, e.column), (5, 5), "{e}");
        assert!(e.message.contains("add op"), "{e}");
        let ok = load(
            "alerts:\n  - name: X\n    target: a.b\n    warning: 5\n    critical: 5\n    op: '>'\n",
        )
        .unwrap();
        assert_eq!(ok.alerts[0].level_for(6.0), Level::Critical);
    }

    #[test]
    fn typo_suggests_closest_key() {
        let e = load("alerts:\n  - name: X\n    target: a.b\n    warning: 5\n    critcal: 6\n")
            .unwrap_err();
        assert_eq!((e.line, e.column), (5, 5), "{e}");
        assert!(e.message.contains("did you mean \"critical\"?"), "{e}");
    }

    #[test]
    fn ignored_graphite_pager_keys_warn() {
        let c = load("redis_url: redis://x\nhipchat_key: k\nhipchat_room: r\nstdout_enabled: true\npushbullet_key: p\nalerts: []\n").unwrap();
        assert_eq!(c.warnings.len(), 5, "{:?}", c.warnings);
        assert!(c.warnings[0].contains("\"redis_url\" is a Graphite Pager setting"));
    }

    #[test]
    fn env_wins_over_file_and_builds_pagerduty() {
        let text = "pagerduty_key: from-file\ngraphite_url: http://file\nalerts:\n  - {name: L, target: a, warning: 1, critical: 2}\n";
        let env = |k: &str| match k {
            "PAGERDUTY_KEY" => Some("from-env".to_string()),
            "GRAPHITE_URL" => Some(String::new()), // empty: unset
            _ => None,
        };
        let c = Config::from_str_with_env(Path::new("a.yml"), text, &env).unwrap();
        assert_eq!(c.graphite.url.as_deref(), Some("http://file"));
        let pd = c.notifiers["pagerduty"]
            .config::<PagerDutyConfig>()
            .unwrap();
        assert_eq!(
            pd.key_for("L", Level::Critical).map(Secret::expose),
            Some("from-env")
        );
        assert_eq!(c.alerts[0].routes.critical, vec!["console", "pagerduty"]);
        assert!(c.alerts[0].routes.warning.iter().all(|n| n != "pagerduty"));
    }

    #[test]
    fn per_level_and_per_alert_keys() {
        let text = "pagerduty:\n  critical: crit-key\n  warning: warn-key\nalerts:\n  - {name: A, target: a, warning: 1, critical: 2, pagerduty_key: a-key}\n  - {name: B, target: b, warning: 1, critical: 2}\n";
        let c = load(text).unwrap();
        let pd = c.notifiers["pagerduty"]
            .config::<PagerDutyConfig>()
            .unwrap();
        assert_eq!(
            pd.key_for("A", Level::Critical).map(Secret::expose),
            Some("a-key")
        );
        assert_eq!(
            pd.key_for("B", Level::Critical).map(Secret::expose),
            Some("crit-key")
        );
        assert_eq!(
            pd.key_for("B", Level::Warning).map(Secret::expose),
            Some("warn-key")
        );
    }

    #[test]
    fn routed_pagerduty_without_key_is_an_error() {
        // Written routes need the key of every level they name (the default routing just
        // leaves PagerDuty out of a level it has no key for: per_level_maps_may_leave_out_levels).
        let text = "pagerduty:\n  warning: only-warn\nroutes:\n  critical: [pagerduty]\nalerts:\n  - name: A\n    target: a\n    warning: 1\n    critical: 2\n";
        let e = load(text).unwrap_err();
        assert!(
            e.message.contains(
                "CRITICAL is routed to \"pagerduty\" but there is no PagerDuty routing key"
            ),
            "{e}"
        );
        assert_eq!(e.line, 6);
        assert!(!e.to_string().contains("only-warn"));
    }

    #[test]
    fn unknown_notifier_in_routes() {
        let text = "routes:\n  critical: [pagerduti]\nalerts:\n  - {name: A, target: a, warning: 1, critical: 2}\n";
        let e = load(text).unwrap_err();
        assert!(e.message.contains("unknown notifier \"pagerduti\""), "{e}");
        assert_eq!((e.line, e.column), (2, 3), "{e}");
    }

    #[test]
    fn unknown_notifier_type_and_bad_values_have_positions() {
        let e = load("notifiers:\n  ops:\n    type: pagerdutty\nalerts: []\n").unwrap_err();
        assert!(e.message.contains("did you mean \"pagerduty\"?"), "{e}");
        assert_eq!(e.line, 3, "{e}");
        let e = load(
            "alerts:\n  - name: A\n    target: a\n    warning: 1\n    critical: 2\n    op: '=>'\n",
        )
        .unwrap_err();
        assert_eq!(e.line, 6, "{e}");
        assert!(e.message.contains("unknown op \"=>\""), "{e}");
        let e = load("alerts:\n  - name: A\n    target: a\n    warning: 1\n    critical: 2\n    reduce: p101\n").unwrap_err();
        assert_eq!(e.line, 6, "{e}");
        let e = load("alerts:\n  - name: A\n    target: a\n    warning: 1\n    critical: 2\n    for: 5 parsecs\n").unwrap_err();
        assert_eq!(e.line, 6, "{e}");
    }

    #[test]
    fn bad_target_points_at_column() {
        let e =
            load("alerts:\n  - name: A\n    target: sum(a.b\n    warning: 1\n    critical: 2\n")
                .unwrap_err();
        assert_eq!((e.line, e.column), (3, 5), "{e}");
        assert!(e.message.contains("at column 8\n"), "{e}");
        assert!(e.message.ends_with("sum(a.b\n         ^"), "{e:?}");
        assert!(validate_target("alias(a.b,\"x)\")").is_ok());
        assert!(validate_target("a)").unwrap_err().contains("column 2"));
        let err = validate_target("scale(sumSeriez(a.*),2)").unwrap_err();
        assert!(err.contains("unknown function \"sumSeriez\""), "{err}");
        assert!(validate_target("aliasByNode(movingMedian(groupByNode(servers.*.haproxy.*.*.check_duration,3,\"averageSeries\"),10),0)").is_ok());
    }

    #[test]
    fn per_level_maps_may_leave_out_levels() {
        // Graphite Pager: a level the maps leave out is not sent there.
        let text = "pagerduty:\n  critical: PDKEY\nslack:\n  critical: https://hooks.slack.com/services/T/B/C\n  no_data: https://hooks.slack.com/services/T/B/N\nalerts:\n  - name: Load\n    target: a.b\n    warning: 1\n    critical: 2\n";
        let c = load(text).unwrap();
        let r = &c.alerts[0].routes;
        assert_eq!(r.critical, ["console", "slack", "pagerduty"]);
        assert_eq!(r.warning, ["console"]);
        assert_eq!(r.no_data, ["console", "slack"]);
        assert_eq!(r.error, ["console"]);
        // Routes written in the file still need the secret for each level they name.
        let e = load(&format!("{text}    routes:\n      warning: [slack]\n")).unwrap_err();
        assert!(e.message.contains("no Slack webhook URL"), "{e}");
    }

    #[test]
    fn bad_template_is_an_error() {
        let e = load("templates:\n  summary: '{levle}'\nalerts: []\n").unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        assert!(e.message.contains("did you mean \"{level}\"?"), "{e}");
    }

    #[test]
    fn extensions_load() {
        let text =
            "slack_url: https://hooks.slack.com/services/T/B/SECRET\nrepeat_interval: 1h\nalerts:
  - name: Disk
    target: a.b
    warning: 80
    critical: 90
    op: '>'
    reduce: p95
    for: 5m
    keep_firing_for: 10m
    until: -1min
    allow_no_data: true
    no_data:
      fetch_error: {level: ERROR, cycles: 3}
    labels: {team: storage}
    routes:
      critical: [slack, console]
";
        let c = load(text).unwrap();
        let a = &c.alerts[0];
        assert_eq!(a.reduce, Reduce::Percentile(95.0));
        assert_eq!(a.for_, Duration::from_secs(300));
        assert_eq!(a.repeat_interval, Some(Duration::from_secs(3600)));
        assert_eq!(
            a.no_data.fetch_error,
            NoDataRule {
                level: Level::Error,
                cycles: 3
            }
        );
        assert_eq!(a.no_data.all_null.level, Level::Ok);
        assert_eq!(
            a.routes.plan(Level::Critical, Level::Ok),
            vec![
                ("slack".to_string(), Action::Resolve),
                ("console".to_string(), Action::Resolve)
            ]
        );
        assert_eq!(
            a.routes.plan(Level::Ok, Level::Critical)[0],
            ("slack".to_string(), Action::Trigger)
        );
        assert!(a.routes.plan(Level::Ok, Level::Warning).is_empty());
        assert!(!format!("{c:?}").contains("SECRET"));
    }

    #[test]
    fn reduce_functions() {
        let pts = [Some(1.0), None, Some(4.0), Some(2.0), None];
        assert_eq!(Reduce::Last.apply(&pts), Some(2.0));
        assert_eq!(Reduce::Avg.apply(&pts), Some(7.0 / 3.0));
        assert_eq!(Reduce::Min.apply(&pts), Some(1.0));
        assert_eq!(Reduce::Max.apply(&pts), Some(4.0));
        assert_eq!(Reduce::Sum.apply(&pts), Some(7.0));
        assert_eq!(Reduce::Percentile(50.0).apply(&pts), Some(2.0));
        assert_eq!(Reduce::Percentile(100.0).apply(&pts), Some(4.0));
        assert_eq!(Reduce::Last.apply(&[None, None]), None);
    }

    /// `FileConfig` / `AlertFile` declare exactly the legacy keys the notifier kinds claim,
    /// and hand each one over.
    #[test]
    fn legacy_keys_are_the_ones_notifier_kinds_claim() {
        let mut top: Vec<&str> = Vec::new();
        let mut per_alert: Vec<&str> = Vec::new();
        for l in NOTIFIERS.iter().filter_map(|k| k.legacy) {
            top.extend(l.keys.iter().map(|(k, _)| *k));
            per_alert.extend(l.alert_key);
        }
        for key in &top {
            // A scalar or a per-level map, whichever the key is.
            let handed_over = ["x", "{critical: x}"].iter().any(|v| {
                let text = format!("{key}: {v}\nalerts: []\n");
                yaml::from_str::<FileConfig>(Path::new("a.yml"), &text)
                    .is_ok_and(|f| f.legacy(key).is_some())
            });
            assert!(handed_over, "{key}");
        }
        for key in &per_alert {
            let text =
                format!("alerts:\n  - {{name: A, target: a, warning: 1, critical: 2, {key}: x}}\n");
            let f: FileConfig = yaml::from_str(Path::new("a.yml"), &text).unwrap();
            assert!(f.alerts[0].legacy(key).is_some(), "{key}");
        }
        // Nothing else: a key no kind claims is refused by the decoder, not dropped.
        for key in [
            "pagerduty_key",
            "pagerduty_url",
            "pagerduty",
            "slack_url",
            "slack",
        ] {
            assert!(top.contains(&key), "{key} is declared but no kind reads it");
        }
        assert_eq!(top.len(), 5);
        assert_eq!(per_alert, ["slack_url", "pagerduty_key"]);
        assert_eq!(
            env_vars(),
            [
                "GRAPHITE_URL",
                "GRAPHITE_USER",
                "GRAPHITE_PASS",
                "SLACK_URL",
                "PAGERDUTY_KEY",
                "PAGERDUTY_URL",
                "CARBIDE_ALERTER_API_PASSWORD",
                "CARBIDE_ALERTER_API_TOKEN"
            ]
        );
    }

    #[test]
    fn api_auth_is_checked_as_the_http_apis_auth_and_never_shown() {
        let none = load("alerts: []\n").unwrap();
        assert!(!none.api_auth().enabled());
        let c = load("api_auth:\n  user: ops\n  password: s3cret\n  token: t0ken\nalerts: []\n")
            .unwrap();
        assert_eq!(
            c.api_auth()
                .basic
                .as_ref()
                .map(|(u, p)| (u.as_str(), p.expose())),
            Some(("ops", "s3cret"))
        );
        assert_eq!(
            c.api_auth().bearer.as_ref().map(Secret::expose),
            Some("t0ken")
        );
        assert_eq!(
            c.api_auth().header().as_deref(),
            Some("Basic b3BzOnMzY3JldA==")
        );
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("t0ken"),
            "{shown}"
        );
        // The environment wins; an empty secret is none.
        let env = |k: &str| match k {
            "CARBIDE_ALERTER_API_TOKEN" => Some("from-env".to_string()),
            "CARBIDE_ALERTER_API_PASSWORD" => Some(String::new()),
            _ => None,
        };
        let c = Config::from_str_with_env(
            Path::new("a.yml"),
            "api_auth:\n  token: from-file\n  password: \"\"\nalerts: []\n",
            &env,
        )
        .unwrap();
        assert_eq!(
            c.api_auth().bearer.as_ref().map(Secret::expose),
            Some("from-env")
        );
        assert_eq!(c.api_auth().header().as_deref(), Some("Bearer from-env"));
        assert!(c.api_auth().basic.is_none());
        for (text, line, want) in [
            (
                "api_auth:\n  user: ops\nalerts: []\n",
                2,
                "a user is set but no password",
            ),
            (
                "api_auth:\n  password: p\nalerts: []\n",
                2,
                "a password is set but no user",
            ),
            (
                "api_auth:\n  usr: ops\nalerts: []\n",
                2,
                "unknown key \"usr\": did you mean \"user\"",
            ),
        ] {
            let e = load(text).unwrap_err().to_string();
            assert!(
                e.contains(want) && e.contains(&format!(":{line}:")),
                "{text}: {e}"
            );
        }
        // carbide up's default applies only while the file sets none.
        let mut c = load("alerts: []\n").unwrap();
        c.api_auth_default.bearer = Some(Secret::new("http"));
        assert_eq!(c.api_auth().header().as_deref(), Some("Bearer http"));
    }

    #[test]
    fn notifier_urls_must_be_absolute_http() {
        for (text, line, want) in [
            ("notifiers:\n  hook:\n    type: webhook\n    url: hooks.example.com/x\nalerts: []\n", 2, "notifier \"hook\": url is not an absolute http:// or https:// URL"),
            ("notifiers:\n  hook:\n    type: webhook\n    url: ftp://hooks.example.com/x\nalerts: []\n", 2, "url is not an http:// or https:// URL (scheme \"ftp\")"),
            ("slack_url: not-a-url\nalerts: []\n", 1, "slack_url is not an absolute http:// or https:// URL"),
            ("slack:\n  critical: not-a-url\nalerts: []\n", 1, "slack is not an absolute"),
            ("pagerduty_url: events.pagerduty.com\nalerts: []\n", 1, "pagerduty_url is not an absolute"),
            ("alerts:\n  - name: A\n    target: a\n    warning: 1\n    critical: 2\n    slack_url: x/y\n", 6, "slack_url is not an absolute"),
        ] {
            let e = load(text).unwrap_err();
            assert_eq!(e.line, line, "{e}");
            assert!(e.message.contains(want), "{e}");
            assert!(!e.message.contains("not-a-url") && !e.message.contains("x/y"), "{e}");
        }
    }

    #[test]
    fn reserved_legacy_names() {
        let e = load("notifiers:\n  slack:\n    type: webhook\n    url: http://h/x\nalerts: []\n")
            .unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        assert!(
            e.message.contains("the notifier name \"slack\" is reserved for type: slack (it receives SLACK_URL and slack_url)"),
            "{e}"
        );
        // console has no keys to give: a file's own "console" stays.
        let c =
            load("notifiers:\n  console:\n    type: webhook\n    url: http://h/x\nalerts: []\n")
                .unwrap();
        assert_eq!(c.notifiers["console"].kind(), "webhook");
    }

    #[test]
    fn first_definition_wins() {
        let mut seen = BTreeSet::new();
        assert!(claim(&mut seen, "Load", "worker-1"));
        assert!(!claim(&mut seen, "Load", "worker-1"));
        assert!(claim(&mut seen, "Load", "db-1"));
    }
}
