//! Retention and aggregation rules, read from carbon's own `storage-schemas.conf` and
//! `storage-aggregation.conf` as they are.
//!
//! Semantics follow carbon (`carbon/storage.py`) and whisper:
//! - sections are scanned in file order and the first whose `pattern` regex *searches* (not
//!   anchors) the metric name wins; a name no section matches gets carbon's built-in default;
//! - `retentions = 10s:1d,1m:30d` — precision and retention each a number with an optional unit
//!   (`s m h d w y`, or any prefix of `seconds minutes hours days weeks years` as whisper takes
//!   them); a bare retention is a point count (legacy `60:1440` form);
//! - archive lists are validated as whisper does (ascending precision, each precision divides
//!   the next, each archive covers more time, enough points to consolidate);
//! - `xFilesFactor` in `[0, 1]` (default 0.5) and `aggregationMethod` (default `average`) come
//!   from the first matching aggregation section; keys are case-insensitive (configparser).
//!
//! Unlike carbon, a malformed section is an error at load time (naming file, line and fix)
//! rather than a log line and a silently different retention.

use std::fmt;
use std::path::Path;

use regex::Regex;

/// One archive: a slot every `step` seconds, kept for `points` slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Archive {
    /// Seconds per point.
    pub step: i64,
    /// Number of points kept.
    pub points: i64,
}

impl Archive {
    /// Seconds of history this archive covers.
    pub fn retention(&self) -> i64 {
        self.step * self.points
    }
}

/// How the points of a finer archive are folded into one slot of the next coarser one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregation {
    Average,
    Sum,
    Min,
    Max,
    Last,
    /// whisper's `avg_zero`: missing points count as 0.
    AvgZero,
    /// whisper's `absmax`: the value with the largest magnitude.
    AbsMax,
    /// whisper's `absmin`: the value with the smallest magnitude.
    AbsMin,
}

impl Aggregation {
    /// Parse whisper's method names.
    pub fn parse(s: &str) -> Option<Aggregation> {
        Some(match s {
            "average" | "avg" => Aggregation::Average,
            "sum" => Aggregation::Sum,
            "min" => Aggregation::Min,
            "max" => Aggregation::Max,
            "last" => Aggregation::Last,
            "avg_zero" => Aggregation::AvgZero,
            "absmax" => Aggregation::AbsMax,
            "absmin" => Aggregation::AbsMin,
            _ => return None,
        })
    }

    /// whisper's name for the method.
    pub fn name(self) -> &'static str {
        match self {
            Aggregation::Average => "average",
            Aggregation::Sum => "sum",
            Aggregation::Min => "min",
            Aggregation::Max => "max",
            Aggregation::Last => "last",
            Aggregation::AvgZero => "avg_zero",
            Aggregation::AbsMax => "absmax",
            Aggregation::AbsMin => "absmin",
        }
    }

    /// Aggregate the known values of one coarse slot (`total` finer slots, in time order), as
    /// whisper's `aggregate()` does. `known` is never empty.
    pub fn apply(self, known: &[f64], total: usize) -> f64 {
        let n = known.len() as f64;
        match self {
            Aggregation::Average => known.iter().sum::<f64>() / n,
            Aggregation::Sum => known.iter().sum(),
            Aggregation::Min => known.iter().copied().fold(f64::INFINITY, f64::min),
            Aggregation::Max => known.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            Aggregation::Last => known[known.len() - 1],
            Aggregation::AvgZero => known.iter().sum::<f64>() / total.max(1) as f64,
            Aggregation::AbsMax => {
                known.iter().copied().fold(
                    0.0,
                    |a: f64, b: f64| {
                        if b.abs() > a.abs() {
                            b
                        } else {
                            a
                        }
                    },
                )
            }
            Aggregation::AbsMin => {
                known[1..].iter().copied().fold(
                    known[0],
                    |a: f64, b: f64| {
                        if b.abs() < a.abs() {
                            b
                        } else {
                            a
                        }
                    },
                )
            }
        }
    }
}

/// Everything the store needs to know about one series: its archives and rollup rule.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesSchema {
    /// Archives, finest first.
    pub archives: Vec<Archive>,
    pub aggregation: Aggregation,
    pub x_files_factor: f64,
}

impl SeriesSchema {
    /// Longest retention of all archives (whisper's `maxRetention`).
    pub fn max_retention(&self) -> i64 {
        self.archives
            .iter()
            .map(Archive::retention)
            .max()
            .unwrap_or(0)
    }

    /// Index of the finest archive whose retention covers `age` seconds, as whisper picks it
    /// for both writes and reads.
    pub fn archive_for_age(&self, age: i64) -> Option<usize> {
        self.archives.iter().position(|a| a.retention() >= age)
    }

    /// The retentions in carbon's syntax, e.g. `10:8640,60:43200` (stored with each series).
    pub fn retentions_string(&self) -> String {
        self.archives
            .iter()
            .map(|a| format!("{}:{}", a.step, a.points))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Why a schema file or retention string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}: {message}")]
pub struct SchemaError {
    /// `file:line` or the string being parsed.
    pub origin: String,
    pub message: String,
}

fn err(origin: impl fmt::Display, message: impl Into<String>) -> SchemaError {
    SchemaError {
        origin: origin.to_string(),
        message: message.into(),
    }
}

fn unit_seconds(unit: &str) -> Option<i64> {
    if unit.is_empty() {
        return None;
    }
    const UNITS: [(&str, i64); 6] = [
        ("seconds", 1),
        ("minutes", 60),
        ("hours", 3600),
        ("days", 86_400),
        ("weeks", 7 * 86_400),
        ("years", 365 * 86_400),
    ];
    UNITS
        .iter()
        .find(|(name, _)| name.starts_with(unit))
        .map(|&(_, s)| s)
}

/// `(\d+)([a-z]+)?` → (number, unit multiplier or None for a bare number).
fn split_number(s: &str) -> Option<(i64, Option<i64>)> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let n: i64 = s[..digits].parse().ok()?;
    let unit = &s[digits..];
    if unit.is_empty() {
        return Some((n, None));
    }
    if !unit.bytes().all(|b| b.is_ascii_lowercase()) {
        return None;
    }
    Some((n, Some(unit_seconds(unit)?)))
}

/// Parse one retention definition (`10s:1d`, `60:1440`).
pub fn parse_archive(def: &str) -> Result<Archive, SchemaError> {
    let def = def.trim();
    let Some((precision, points)) = def.split_once(':') else {
        return Err(err(
            format!("retention {def:?}"),
            "expected `precision:retention`, e.g. `10s:1d`",
        ));
    };
    let step = match split_number(precision) {
        Some((n, unit)) => n * unit.unwrap_or(1),
        None => {
            return Err(err(
                format!("retention {def:?}"),
                format!("invalid precision {precision:?} (a number with unit s, m, h, d, w or y)"),
            ))
        }
    };
    if step <= 0 {
        return Err(err(format!("retention {def:?}"), "precision must be > 0"));
    }
    let points = match split_number(points) {
        Some((n, None)) => n,
        Some((n, Some(unit))) => n * unit / step,
        None => {
            return Err(err(
                format!("retention {def:?}"),
                format!("invalid retention {points:?} (a point count, or a number with unit s, m, h, d, w or y)"),
            ))
        }
    };
    if points <= 0 {
        return Err(err(
            format!("retention {def:?}"),
            "retention must hold at least one point",
        ));
    }
    Ok(Archive { step, points })
}

/// Parse and validate `10s:1d,1m:30d,10m:1y` (whisper's `validateArchiveList`).
pub fn parse_retentions(s: &str) -> Result<Vec<Archive>, SchemaError> {
    let mut archives = s
        .split(',')
        .map(parse_archive)
        .collect::<Result<Vec<_>, _>>()?;
    validate_archives(&mut archives).map_err(|m| err(format!("retentions {s:?}"), m))?;
    Ok(archives)
}

/// Most archives a retentions line may have (the store's cache keeps a point's archive in
/// five bits; carbon's own defaults have one to three).
pub const MAX_ARCHIVES: usize = 32;

fn validate_archives(archives: &mut [Archive]) -> Result<(), String> {
    if archives.is_empty() {
        return Err("no archives".into());
    }
    if archives.len() > MAX_ARCHIVES {
        return Err(format!(
            "{} archives; at most {MAX_ARCHIVES} are supported",
            archives.len()
        ));
    }
    archives.sort_by_key(|a| a.step);
    for pair in archives.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        if a.step == b.step {
            return Err(format!("two archives with the same precision {}s", a.step));
        }
        if b.step % a.step != 0 {
            return Err(format!(
                "precision {}s is not a multiple of {}s; coarser precisions must divide evenly",
                b.step, a.step
            ));
        }
        if b.retention() <= a.retention() {
            return Err(format!(
                "archive {}s:{} must cover more time than {}s:{}",
                b.step, b.points, a.step, a.points
            ));
        }
        if a.points < b.step / a.step {
            return Err(format!(
                "archive {}s:{} has too few points to consolidate into {}s",
                a.step, a.points, b.step
            ));
        }
    }
    Ok(())
}

/// One `[section]` of an INI file as configparser reads it: lower-cased keys.
struct Section {
    name: String,
    line: usize,
    keys: Vec<(String, String, usize)>,
}

impl Section {
    fn get(&self, key: &str) -> Option<(&str, usize)> {
        self.keys
            .iter()
            .rev()
            .find(|(k, _, _)| k == key)
            .map(|(_, v, l)| (v.as_str(), *l))
    }
}

fn parse_ini(text: &str, file: &str) -> Result<Vec<Section>, SchemaError> {
    let mut sections: Vec<Section> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            let Some(name) = rest.strip_suffix(']') else {
                return Err(err(
                    format!("{file}:{line_no}"),
                    "section header must be `[name]`",
                ));
            };
            sections.push(Section {
                name: name.to_owned(),
                line: line_no,
                keys: Vec::new(),
            });
            continue;
        }
        let Some(pos) = line.find(['=', ':']) else {
            return Err(err(
                format!("{file}:{line_no}"),
                format!("expected `key = value`, found {line:?}"),
            ));
        };
        let Some(section) = sections.last_mut() else {
            return Err(err(
                format!("{file}:{line_no}"),
                "`key = value` before the first `[section]`",
            ));
        };
        let key = line[..pos].trim().to_ascii_lowercase();
        section
            .keys
            .push((key, line[pos + 1..].trim().to_owned(), line_no));
    }
    Ok(sections)
}

fn compile(pattern: &str, origin: String) -> Result<Pattern, SchemaError> {
    let regex = Regex::new(pattern)
        .map_err(|e| err(origin, format!("invalid pattern {pattern:?}: {e}")))?;
    Ok(Pattern::new(pattern, regex))
}

/// A section's `pattern`: the regex, searched as carbon's `re.search` does, with the two
/// shapes most files use tested without it (every new series is matched against the
/// sections in turn): one that matches every path (`.*`), and `^` followed by a literal
/// (`^carbon\.`), a prefix test.
#[derive(Debug, Clone)]
struct Pattern {
    regex: Regex,
    fast: Fast,
}

#[derive(Debug, Clone, PartialEq)]
enum Fast {
    Any,
    Prefix(String),
    No,
}

impl Pattern {
    fn new(pattern: &str, regex: Regex) -> Pattern {
        let fast = match pattern {
            // A search for these finds an empty match at the start of any string.
            "" | "^" | ".*" | "^.*" => Fast::Any,
            _ => pattern
                .strip_prefix('^')
                .and_then(literal)
                .map_or(Fast::No, Fast::Prefix),
        };
        Pattern { regex, fast }
    }

    #[inline]
    fn is_match(&self, path: &str) -> bool {
        match &self.fast {
            Fast::Any => true,
            Fast::Prefix(p) => path.starts_with(p.as_str()),
            Fast::No => self.regex.is_match(path),
        }
    }
}

/// The text `re` matches if it is a plain literal: ASCII letters, digits, `_`, `-` and
/// punctuation escaped with a backslash; `None` for anything else.
fn literal(re: &str) -> Option<String> {
    let mut out = String::with_capacity(re.len());
    let mut chars = re.chars();
    while let Some(c) = chars.next() {
        match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '_' | '-' => out.push(c),
            '\\' => match chars.next()? {
                e @ ('.' | '\\' | '+' | '*' | '?' | '(' | ')' | '|' | '[' | ']' | '{' | '}'
                | '^' | '$' | '-' | '#' | '&' | '~') => out.push(e),
                _ => return None,
            },
            _ => return None,
        }
    }
    Some(out)
}

/// The rules of both files, ready to classify series.
#[derive(Debug, Clone)]
pub struct Schemas {
    retentions: Vec<(String, Pattern, Vec<Archive>)>,
    aggregations: Vec<(String, Pattern, Option<f64>, Option<Aggregation>)>,
}

/// carbide's defaults when no schema file is given: 10 s for a day, 1 min for 30 days,
/// 10 min for a year — host metrics arrive every 10 s or more.
pub const DEFAULT_SCHEMAS: &str = "\
[carbide]
pattern = ^carbide\\.
retentions = 10s:1d,1m:30d,10m:1y

[default]
pattern = .*
retentions = 10s:1d,1m:30d,10m:1y
";

/// carbon's built-in default for a series no section matches: one minute for seven days.
const CARBON_DEFAULT: Archive = Archive {
    step: 60,
    points: 60 * 24 * 7,
};

impl Default for Schemas {
    fn default() -> Self {
        match Schemas::parse(DEFAULT_SCHEMAS, "<built-in>", "", "<built-in>") {
            Ok(s) => s,
            // The built-in text is tested; fall back to carbon's own default regardless.
            Err(_) => Schemas {
                retentions: Vec::new(),
                aggregations: Vec::new(),
            },
        }
    }
}

impl Schemas {
    /// Parse the text of `storage-schemas.conf` and `storage-aggregation.conf`; the names are
    /// used in errors.
    pub fn parse(
        schemas: &str,
        schemas_name: &str,
        aggregation: &str,
        aggregation_name: &str,
    ) -> Result<Schemas, SchemaError> {
        let mut retentions = Vec::new();
        for s in parse_ini(schemas, schemas_name)? {
            let origin = |l: usize| format!("{schemas_name}:{l}: [{}]", s.name);
            let Some((pattern, pl)) = s.get("pattern") else {
                return Err(err(origin(s.line), "missing `pattern = <regex>`"));
            };
            let Some((ret, rl)) = s.get("retentions") else {
                return Err(err(
                    origin(s.line),
                    "missing `retentions = <precision:retention,...>`, e.g. `10s:1d,1m:30d`",
                ));
            };
            let regex = compile(pattern, origin(pl))?;
            let archives = parse_retentions(ret).map_err(|e| err(origin(rl), e.to_string()))?;
            retentions.push((s.name.clone(), regex, archives));
        }
        let mut aggregations = Vec::new();
        for s in parse_ini(aggregation, aggregation_name)? {
            let origin = |l: usize| format!("{aggregation_name}:{l}: [{}]", s.name);
            let Some((pattern, pl)) = s.get("pattern") else {
                return Err(err(origin(s.line), "missing `pattern = <regex>`"));
            };
            let regex = compile(pattern, origin(pl))?;
            let xff = match s.get("xfilesfactor") {
                None => None,
                Some((v, l)) => match v.parse::<f64>() {
                    Ok(x) if (0.0..=1.0).contains(&x) => Some(x),
                    _ => {
                        return Err(err(
                            origin(l),
                            format!("xFilesFactor {v:?} must be a number between 0 and 1"),
                        ))
                    }
                },
            };
            let method = match s.get("aggregationmethod") {
                None => None,
                Some((v, l)) => match Aggregation::parse(v) {
                    Some(m) => Some(m),
                    None => return Err(err(
                        origin(l),
                        format!("aggregationMethod {v:?} is not one of average, sum, min, max, last, avg_zero, absmax, absmin"),
                    )),
                },
            };
            aggregations.push((s.name.clone(), regex, xff, method));
        }
        Ok(Schemas {
            retentions,
            aggregations,
        })
    }

    /// Read both files; `None` means carbide's default retentions / whisper's default
    /// aggregation (average, xFilesFactor 0.5).
    pub fn load(
        schemas: Option<&Path>,
        aggregation: Option<&Path>,
    ) -> Result<Schemas, SchemaError> {
        let read = |p: &Path| {
            std::fs::read_to_string(p).map_err(|e| {
                err(
                    p.display(),
                    format!("cannot read: {e} (check the path in the store config)"),
                )
            })
        };
        let (s_text, s_name) = match schemas {
            Some(p) => (read(p)?, p.display().to_string()),
            None => (DEFAULT_SCHEMAS.to_owned(), "<built-in>".to_owned()),
        };
        let (a_text, a_name) = match aggregation {
            Some(p) => (read(p)?, p.display().to_string()),
            None => (String::new(), "<built-in>".to_owned()),
        };
        Schemas::parse(&s_text, &s_name, &a_text, &a_name)
    }

    /// The schema of a new series named `path`.
    pub fn classify(&self, path: &str) -> SeriesSchema {
        self.schema_of(self.rules_of(path))
    }

    /// Which sections `path` matches (the first of each file), without building its schema:
    /// series matching the same sections share one schema, built once by
    /// [`Schemas::schema_of`].
    pub fn rules_of(&self, path: &str) -> RulesOf {
        RulesOf {
            retention: self
                .retentions
                .iter()
                .position(|(_, re, _)| re.is_match(path)),
            aggregation: self
                .aggregations
                .iter()
                .position(|(_, re, _, _)| re.is_match(path)),
        }
    }

    /// The schema of a series matching the sections `rules` (from [`Schemas::rules_of`] of
    /// these same rules).
    pub fn schema_of(&self, rules: RulesOf) -> SeriesSchema {
        let archives = rules
            .retention
            .and_then(|i| self.retentions.get(i))
            .map(|(_, _, a)| a.clone())
            .unwrap_or_else(|| vec![CARBON_DEFAULT]);
        let (xff, method) = rules
            .aggregation
            .and_then(|i| self.aggregations.get(i))
            .map(|(_, _, x, m)| (*x, *m))
            .unwrap_or((None, None));
        SeriesSchema {
            archives,
            aggregation: method.unwrap_or(Aggregation::Average),
            x_files_factor: xff.unwrap_or(0.5),
        }
    }
}

/// The sections of `storage-schemas.conf` and `storage-aggregation.conf` a path matches
/// (indexes, `None` for none): [`Schemas::rules_of`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RulesOf {
    pub retention: Option<usize>,
    pub aggregation: Option<usize>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Debian's `/etc/carbon/storage-schemas.conf` (graphite-carbon), comments abridged.
    const CARBON_SCHEMAS: &str = "\
# Schema definitions for Whisper files. Entries are scanned in order,
# and first match wins. This file is scanned for changes every 60 seconds.
#
#    [name]
#    pattern = regex
#    retentions = timePerPoint:timeToStore, timePerPoint:timeToStore, ...

# Carbon's internal metrics. This entry should match what is specified in
# CARBON_METRIC_PREFIX and CARBON_METRIC_INTERVAL settings
[carbon]
pattern = ^carbon\\.
retentions = 60:90d

[default]
pattern = .*
retentions = 60s:1d,5m:30d,1h:3y
";

    /// carbon's `storage-aggregation.conf.example` (blank lines added).
    const CARBON_AGGREGATION: &str = "\
# Aggregation methods for whisper files. Entries are scanned in order,
# and first match wins. This file is scanned for changes every 60 seconds
#
#  [name]
#  pattern = <regex>
#  xFilesFactor = <float between 0 and 1>
#  aggregationMethod = <average|sum|last|max|min>
#
[min]
pattern = \\.min$
xFilesFactor = 0.1
aggregationMethod = min

[max]
pattern = \\.max$
xFilesFactor = 0.1
aggregationMethod = max

[sum]
pattern = \\.count$
xFilesFactor = 0
aggregationMethod = max

[default_average]
pattern = .*
xFilesFactor = 0.5
aggregationMethod = average
";

    fn a(step: i64, points: i64) -> Archive {
        Archive { step, points }
    }

    #[test]
    fn parses_carbons_own_files() {
        let s = Schemas::parse(CARBON_SCHEMAS, "schemas", CARBON_AGGREGATION, "agg").unwrap();
        let c = s.classify("carbon.agents.host.metricsReceived");
        assert_eq!(c.archives, vec![a(60, 90 * 1440)]);
        let d = s.classify("servers.web1.cpu.user");
        assert_eq!(d.archives, vec![a(60, 1440), a(300, 8640), a(3600, 26280)]);
        assert_eq!(d.aggregation, Aggregation::Average);
        assert_eq!(d.x_files_factor, 0.5);
        let m = s.classify("latency.min");
        assert_eq!((m.aggregation, m.x_files_factor), (Aggregation::Min, 0.1));
        // `.count` → max with xFilesFactor 0, as the example file says.
        let n = s.classify("requests.count");
        assert_eq!((n.aggregation, n.x_files_factor), (Aggregation::Max, 0.0));
        // Pattern is searched, not anchored: `x.min.y` does not end in `.min`.
        assert_eq!(s.classify("x.min.y").aggregation, Aggregation::Average);
    }

    #[test]
    fn first_match_wins_and_defaults_apply() {
        let s = Schemas::parse(
            "[a]\npattern = ^web\nretentions = 10s:1h\n[b]\npattern = web\nretentions = 1m:1d\n",
            "s",
            "[x]\nPATTERN = cpu\naggregationMethod = sum\n",
            "a",
        )
        .unwrap();
        assert_eq!(s.classify("web.cpu").archives, vec![a(10, 360)]);
        assert_eq!(s.classify("my.web").archives, vec![a(60, 1440)]);
        // No section matches: carbon's built-in default, one minute for a week.
        assert_eq!(s.classify("db.load").archives, vec![a(60, 10080)]);
        // Matching aggregation section without xFilesFactor: whisper's 0.5.
        let c = s.classify("web.cpu");
        assert_eq!((c.aggregation, c.x_files_factor), (Aggregation::Sum, 0.5));
        let d = s.classify("db.load");
        assert_eq!(
            (d.aggregation, d.x_files_factor),
            (Aggregation::Average, 0.5)
        );
    }

    #[test]
    fn retention_syntax_table() {
        let ok: &[(&str, Archive)] = &[
            ("10s:1d", a(10, 8640)),
            ("60:1440", a(60, 1440)),
            ("1m:30d", a(60, 43200)),
            ("10m:1y", a(600, 52560)),
            ("1h:3y", a(3600, 26280)),
            ("1w:5y", a(604_800, 260)),
            ("1min:2hours", a(60, 120)),
            ("5sec:60", a(5, 60)),
            (" 15s:7d ", a(15, 40320)),
        ];
        for (def, want) in ok {
            assert_eq!(parse_archive(def).unwrap(), *want, "{def}");
        }
        for bad in [
            "10s", "10x:1d", "s:1d", "10s:d", "0s:1d", "10s:5s", "1M:1d", "-1:5",
        ] {
            assert!(parse_archive(bad).is_err(), "{bad} should be rejected");
        }
    }

    /// The prefix and match-all shortcuts agree with the regex on every path.
    #[test]
    fn pattern_shortcuts_agree_with_the_regex() {
        let cases: &[(&str, Fast)] = &[
            (".*", Fast::Any),
            ("", Fast::Any),
            ("^", Fast::Any),
            ("^.*", Fast::Any),
            (r"^carbon\.", Fast::Prefix("carbon.".into())),
            (r"^a_b-c\.\(x\)", Fast::Prefix("a_b-c.(x)".into())),
            ("^servers", Fast::Prefix("servers".into())),
            ("carbon", Fast::No),
            (r"^carbon\..*\.cpu$", Fast::No),
            (r"^a\b", Fast::No),
            (r"^a\d", Fast::No),
            ("^a.b", Fast::No),
            ("^(?i)abc", Fast::No),
            ("^a|b", Fast::No),
            (r"\.count$", Fast::No),
            ("^ab*", Fast::No),
        ];
        let paths = [
            "",
            "carbon",
            "carbon.agents.x",
            "xcarbon.y",
            "a_b-c.(x)",
            "a_b-c.(x).y",
            "servers",
            "servers.web1.cpu",
            "a.b",
            "axb",
            "ABC.d",
            "b",
            "carbon.x.cpu",
            "req.count",
            "a",
        ];
        for (pattern, fast) in cases {
            let p = Pattern::new(pattern, Regex::new(pattern).unwrap());
            assert_eq!(&p.fast, fast, "{pattern}");
            for path in paths {
                assert_eq!(
                    p.is_match(path),
                    p.regex.is_match(path),
                    "{pattern} on {path:?}"
                );
            }
        }
    }

    #[test]
    fn archive_lists_validated_like_whisper() {
        // 33 archives, each twice the step and retention of the last.
        let many: String = (0..33)
            .map(|i| format!("{}s:10", 1u64 << i))
            .collect::<Vec<_>>()
            .join(",");
        assert_eq!(
            parse_retentions(&many[..many.rfind(',').unwrap()])
                .unwrap()
                .len(),
            32
        );
        assert_eq!(
            parse_retentions("1m:30d,10s:1d").unwrap(),
            vec![a(10, 8640), a(60, 43200)],
            "sorted by precision"
        );
        let bad = [
            ("180s:7d,300s:30d", "not a multiple"),
            ("60s:1d,60s:2d", "same precision"),
            ("10s:1d,60s:1d", "more time"),
            ("10s:5,60s:1d", "too few points"),
            (&many, "at most 32"),
        ];
        for (def, why) in bad {
            let e = parse_retentions(def).unwrap_err().to_string();
            assert!(e.contains(why), "{def}: {e}");
        }
    }

    #[test]
    fn file_errors_name_line_and_fix() {
        let e = Schemas::parse("[a]\npattern = x\nretentions = 10q:1d\n", "s.conf", "", "a")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("s.conf:3: [a]"), "{e}");
        let e = Schemas::parse("[a]\nretentions = 10s:1d\n", "s.conf", "", "a")
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing `pattern"), "{e}");
        let e = Schemas::parse("", "s", "[a]\npattern=.\nxFilesFactor = 2\n", "a.conf")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("a.conf:3"), "{e}");
        let e = Schemas::parse("", "s", "[a]\npattern=.\naggregationMethod = median\n", "a")
            .unwrap_err()
            .to_string();
        assert!(e.contains("median"), "{e}");
        let e = Schemas::parse("[a]\npattern = (\nretentions=1s:1m\n", "s", "", "a")
            .unwrap_err()
            .to_string();
        assert!(e.contains("invalid pattern"), "{e}");
    }

    #[test]
    fn builtin_defaults_suit_host_metrics() {
        let s = Schemas::default();
        let c = s.classify("servers.h.cpu.total.user");
        assert_eq!(c.archives, vec![a(10, 8640), a(60, 43200), a(600, 52560)]);
        assert_eq!(c.archive_for_age(3600), Some(0));
        assert_eq!(c.archive_for_age(86_400), Some(0));
        assert_eq!(c.archive_for_age(86_401), Some(1));
        assert_eq!(c.archive_for_age(400 * 86_400), None);
        assert_eq!(c.retentions_string(), "10:8640,60:43200,600:52560");
    }

    #[test]
    fn aggregation_methods_match_whisper() {
        let v = [3.0, -5.0, 1.0];
        let cases = [
            (Aggregation::Average, -1.0 / 3.0),
            (Aggregation::Sum, -1.0),
            (Aggregation::Min, -5.0),
            (Aggregation::Max, 3.0),
            (Aggregation::Last, 1.0),
            (Aggregation::AvgZero, -0.25),
            (Aggregation::AbsMax, -5.0),
            (Aggregation::AbsMin, 1.0),
        ];
        for (m, want) in cases {
            assert_eq!(m.apply(&v, 4), want, "{}", m.name());
            assert_eq!(Aggregation::parse(m.name()), Some(m));
        }
    }
}
