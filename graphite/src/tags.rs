//! Graphite 1.1 tags, as graphite-web 1.1.10's tag database (`webapp/graphite/tags/`) has
//! them: tagged names and their canonical form, tag expressions, and an in-memory index that
//! answers `seriesByTag`, `/tags`, `/tags/findSeries` and the auto-complete endpoints. Pure:
//! no I/O (the store keeps it in step with its series, `store::tags`).
//!
//! One of four `tags.rs`: this one is the model; `store::tags` keeps the store's series in
//! it, `server::tags` is graphite-web's `/tags` HTTP API over it, and `functions::tags` holds
//! the tag functions (`seriesByTag`, `groupByTags`) of the target language.
//!
//! - A tagged name is `name;tag=value;...` (carbon's form). Its **canonical** form is
//!   `TaggedSeries.format`: the name, then the `;tag=value` strings *sorted as strings* (so
//!   `;a.b=1` sorts before `;a=2`), a repeated tag keeping its last value, and a `name=` tag
//!   replaced by the name itself. Carbon stores a series under that form, so both spellings
//!   of `cpu;host=a;dc=x` are one series.
//! - A tag expression is `tag=spec`, `tag!=spec`, `tag=~regex` or `tag!=~regex`
//!   ([`TagExpr`]). An expression that matches the empty value also matches series without
//!   the tag; at least one expression must not match the empty value. Regular expressions are
//!   anchored at the start (`^(spec)` unless the spec starts with `^`), as
//!   `LocalDatabaseTagDB` does.
//! - Every series is indexed, untagged ones with the single tag `name` (carbon tags every
//!   series it creates), so `seriesByTag('name=servers.web1.cpu')` finds plain paths too.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use regex::Regex;

use crate::eval::{EvalError, FetchRequest, Source};
use crate::protocol;
use crate::series::Series;

/// `TAGDB_AUTOCOMPLETE_LIMIT`, graphite-web's default for the auto-complete endpoints.
pub const AUTOCOMPLETE_LIMIT: usize = 100;

/// Why a tagged name or a tag expression was refused (graphite-web's wording where it has one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TagError {
    #[error("Cannot parse path {0}, no metric found")]
    NoMetric(String),
    #[error("Cannot parse path {path}, invalid segment {segment}")]
    Segment { path: String, segment: String },
    #[error("Tag may not be empty")]
    EmptyTag,
    #[error("Value for tag \"{0}\" may not be empty")]
    EmptyValue(String),
    #[error("Character \"{ch}\" is not allowed in tag \"{tag}\"")]
    TagChar { ch: char, tag: String },
    #[error("Tag values are not allowed to start with \"~\" in tag \"{0}\"")]
    TildeValue(String),
    #[error("Cannot use metric name {0} as tag value, results in emptry string")]
    EmptyName(String),
    #[error("Invalid tagspec {0} (expected tag=value, tag!=value, tag=~regex or tag!=~regex)")]
    Spec(String),
    #[error("invalid regular expression in tag expression {expr}: {message}")]
    Regex { expr: String, message: String },
    #[error("At least one tagspec must not match the empty string")]
    AllMatchEmpty,
    #[error("the query has {0} regular expressions, more than the {MAX_QUERY_REGEXES} allowed (limit max_regexes_per_query): match on fewer tags or join the alternatives into one regex")]
    TooManyRegexes(usize),
}

/// Most `=~`/`!=~` expressions one tag query may compile ([`parse_exprs`]).
pub const MAX_QUERY_REGEXES: usize = 64;

/// A series' tags, `name` included.
pub type Tags = BTreeMap<String, String>;

/// `TaggedSeries.parse_carbon`: the tags of `path` (`name;k=v;...`), `name` included. An
/// untagged path gives `{name: path}` (leading `~` stripped from the name, as graphite-web).
pub fn parse(path: &str) -> Result<Tags, TagError> {
    let mut segments = path.split(';');
    let metric = segments.next().unwrap_or_default();
    if metric.is_empty() {
        return Err(TagError::NoMetric(path.to_string()));
    }
    let mut tags = Tags::new();
    for segment in segments {
        let Some((tag, value)) = segment.split_once('=').filter(|(t, _)| !t.is_empty()) else {
            return Err(TagError::Segment {
                path: path.to_string(),
                segment: segment.to_string(),
            });
        };
        validate(tag, value)?;
        tags.insert(tag.to_string(), value.to_string());
    }
    let name = metric.trim_start_matches('~');
    if name.is_empty() {
        return Err(TagError::EmptyName(metric.to_string()));
    }
    tags.insert("name".to_string(), name.to_string());
    Ok(tags)
}

/// `TaggedSeries.validateTagAndValue`: the rules of [`protocol::valid_tag_name`] and
/// [`protocol::valid_tag_value`] (one definition, used by the line protocol too), each broken
/// rule with graphite-web's message.
fn validate(tag: &str, value: &str) -> Result<(), TagError> {
    if tag.is_empty() {
        return Err(TagError::EmptyTag);
    }
    if value.is_empty() {
        return Err(TagError::EmptyValue(tag.to_string()));
    }
    if !protocol::valid_tag_name(tag) {
        let ch = tag
            .chars()
            .find(|c| protocol::TAG_NAME_FORBIDDEN.contains(c))
            .unwrap_or(';');
        return Err(TagError::TagChar {
            ch,
            tag: tag.to_string(),
        });
    }
    if !protocol::valid_tag_value(value) {
        return Err(TagError::TildeValue(tag.to_string()));
    }
    Ok(())
}

/// `TaggedSeries.format`: the name, then the `;tag=value` strings sorted as strings.
pub fn format(tags: &Tags) -> String {
    let mut parts: Vec<String> = tags
        .iter()
        .filter(|(k, _)| k.as_str() != "name")
        .map(|(k, v)| format!(";{k}={v}"))
        .collect();
    parts.sort_unstable();
    let mut out = tags.get("name").cloned().unwrap_or_default();
    for p in parts {
        out.push_str(&p);
    }
    out
}

/// The name carbon stores `path` under: an untagged path as it is, a tagged one in canonical
/// form ([`format`] of [`parse`]). Borrowed when nothing changes (the common case).
pub fn canonical(path: &str) -> Result<Cow<'_, str>, TagError> {
    if !path.contains(';') {
        return Ok(Cow::Borrowed(path));
    }
    let c = format(&parse(path)?);
    Ok(if c == path {
        Cow::Borrowed(path)
    } else {
        Cow::Owned(c)
    })
}

/// The operator of a tag expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `=`: the value equals the spec.
    Eq,
    /// `!=`: the value differs from the spec.
    Ne,
    /// `=~`: the value matches the regex (anchored at the start).
    Match,
    /// `!=~`: the value does not match the regex.
    NotMatch,
}

/// One tag expression (`BaseTagDB.parse_tagspec` plus the regex graphite-web builds).
#[derive(Debug, Clone)]
pub struct TagExpr {
    pub tag: String,
    pub op: Op,
    pub spec: String,
    regex: Option<Regex>,
}

impl TagExpr {
    /// Parses `tag=spec`, `tag!=spec`, `tag=~regex`, `tag!=~regex` (regex
    /// `^([^;!=]+)(!?=~?)([^;]*)$`).
    pub fn parse(expr: &str) -> Result<TagExpr, TagError> {
        let bad = || TagError::Spec(expr.to_string());
        let cut = expr.find([';', '!', '=']).ok_or_else(bad)?;
        let (tag, rest) = expr.split_at(cut);
        if tag.is_empty() {
            return Err(bad());
        }
        let (op, spec) = if let Some(s) = rest.strip_prefix("!=~") {
            (Op::NotMatch, s)
        } else if let Some(s) = rest.strip_prefix("!=") {
            (Op::Ne, s)
        } else if let Some(s) = rest.strip_prefix("=~") {
            (Op::Match, s)
        } else if let Some(s) = rest.strip_prefix('=') {
            (Op::Eq, s)
        } else {
            return Err(bad());
        };
        if spec.contains(';') {
            return Err(bad());
        }
        let regex = match op {
            Op::Match | Op::NotMatch => {
                let anchored = if spec.starts_with('^') {
                    spec.to_string()
                } else {
                    format!("^({spec})")
                };
                Some(compile(&anchored).map_err(|e| TagError::Regex {
                    expr: expr.to_string(),
                    message: e.to_string(),
                })?)
            }
            _ => None,
        };
        Ok(TagExpr {
            tag: tag.to_string(),
            op,
            spec: spec.to_string(),
            regex,
        })
    }

    /// Whether the expression holds for a series whose value of the tag is `value` (`""`
    /// for a series without it). `re.match` semantics for regexes: a match starting at 0.
    pub fn matches(&self, value: &str) -> bool {
        match self.op {
            Op::Eq => value == self.spec,
            Op::Ne => value != self.spec,
            Op::Match => self.re_match(value),
            Op::NotMatch => !self.re_match(value),
        }
    }

    fn re_match(&self, value: &str) -> bool {
        self.regex
            .as_ref()
            .and_then(|r| r.find(value))
            .is_some_and(|m| m.start() == 0)
    }

    /// Whether a series *with* the tag's `value` passes, as the SQL of `LocalDatabaseTagDB`
    /// tests it for an expression that does not match empty (`REGEXP` is `re.search`).
    fn matches_present(&self, value: &str) -> bool {
        match self.op {
            Op::Eq => value == self.spec,
            Op::Ne => value != self.spec,
            Op::Match => self.regex.as_ref().is_some_and(|r| r.is_match(value)),
            Op::NotMatch => !self.regex.as_ref().is_some_and(|r| r.is_match(value)),
        }
    }

    /// Whether the expression also matches series that lack the tag.
    pub fn matches_empty(&self) -> bool {
        self.matches("")
    }
}

/// Parses every expression; an empty list or one where every expression matches the empty
/// value is refused (graphite-web's `ValueError`).
///
/// At most [`MAX_QUERY_REGEXES`] of them may be regexes (each compiled within
/// [`crate::budget::DEFAULT_MAX_REGEX_SIZE`]), so a query cannot make the server compile
/// hundreds of regexes.
pub fn parse_exprs<S: AsRef<str>>(exprs: &[S]) -> Result<Vec<TagExpr>, TagError> {
    let regexes = count_regexes(exprs);
    if regexes > MAX_QUERY_REGEXES {
        return Err(TagError::TooManyRegexes(regexes));
    }
    let parsed = exprs
        .iter()
        .map(|e| TagExpr::parse(e.as_ref()))
        .collect::<Result<Vec<_>, _>>()?;
    if parsed.iter().all(TagExpr::matches_empty) {
        return Err(TagError::AllMatchEmpty);
    }
    Ok(parsed)
}

/// One tag's values: value → the series (numbers, ascending) that have it.
#[derive(Debug, Default)]
struct TagValues {
    id: u32,
    values: BTreeMap<Arc<str>, Vec<u32>>,
}

/// The tag index: every series by each of its tags' values. Series are numbered in insertion
/// order; posting lists stay sorted because numbers only grow. Built for 100k series: `=` is
/// one lookup, `=~` scans the tag's distinct values (not the series), and the result is the
/// intersection of the posting lists of the expressions that do not match empty, then
/// filtered by the others.
#[derive(Debug, Default)]
pub struct TagIndex {
    paths: Vec<Arc<str>>,
    /// foldhash, as the store's path tables: every new series passes through here on the
    /// carbon receive path, and SipHash was a tenth of ingest's CPU.
    by_path: HashMap<Arc<str>, u32, foldhash::fast::RandomState>,
    tags: BTreeMap<String, TagValues>,
    /// Global value ids (graphite-web's `tags_tagvalue` table is shared by all tags).
    value_ids: HashMap<Arc<str>, u32, foldhash::fast::RandomState>,
}

/// A tag as `/tags` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagInfo {
    pub id: u32,
    pub tag: String,
}

/// A value as `/tags/<tag>` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueInfo {
    pub id: u32,
    pub value: String,
    pub count: usize,
}

impl TagIndex {
    /// Adds a series under its (canonical) path. Returns false if it was already there or
    /// its tags do not parse (such a series is not findable by tag, as in graphite-web).
    pub fn insert(&mut self, path: Arc<str>) -> bool {
        if self.by_path.contains_key(&path) {
            return false;
        }
        let Ok(tags) = parse(&path) else {
            return false;
        };
        let n = self.paths.len() as u32;
        self.paths.push(path.clone());
        self.by_path.insert(path.clone(), n);
        for (tag, value) in tags {
            let next_tag = self.tags.len() as u32 + 1;
            let entry = self.tags.entry(tag).or_insert_with(|| TagValues {
                id: next_tag,
                values: BTreeMap::new(),
            });
            let next_value = self.value_ids.len() as u32 + 1;
            let value: Arc<str> = match self.value_ids.get_key_value(value.as_str()) {
                Some((k, _)) => k.clone(),
                None => {
                    // An untagged series' name is its path: share the allocation.
                    let v: Arc<str> = if *path == *value {
                        path.clone()
                    } else {
                        value.into()
                    };
                    self.value_ids.insert(v.clone(), next_value);
                    v
                }
            };
            entry.values.entry(value).or_default().push(n);
        }
        true
    }

    /// Number of series indexed.
    pub fn len(&self) -> usize {
        self.paths.len()
    }

    /// Whether no series is indexed.
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    /// Whether `path` is indexed.
    pub fn contains(&self, path: &str) -> bool {
        self.by_path.contains_key(path)
    }

    /// `find_series`: the paths of the series matching every expression, sorted.
    pub fn find<S: AsRef<str>>(&self, exprs: &[S]) -> Result<Vec<String>, TagError> {
        let exprs = parse_exprs(exprs)?;
        Ok(self.find_parsed(&exprs))
    }

    /// [`TagIndex::find`] for parsed expressions (at least one not matching empty).
    pub fn find_parsed(&self, exprs: &[TagExpr]) -> Vec<String> {
        let (positive, filters): (Vec<&TagExpr>, Vec<&TagExpr>) =
            exprs.iter().partition(|e| !e.matches_empty());
        let mut sets: Vec<Vec<u32>> = positive.iter().map(|e| self.postings(e)).collect();
        sets.sort_by_key(Vec::len);
        let mut acc = match sets.first() {
            Some(s) => s.clone(),
            None => return Vec::new(),
        };
        for s in &sets[1..] {
            acc.retain(|n| s.binary_search(n).is_ok());
            if acc.is_empty() {
                break;
            }
        }
        let mut out: Vec<String> = acc
            .into_iter()
            .filter_map(|n| self.paths.get(n as usize))
            .filter(|p| {
                filters.is_empty()
                    || parse(p).is_ok_and(|tags| {
                        filters
                            .iter()
                            .all(|f| f.matches(tags.get(&f.tag).map(String::as_str).unwrap_or("")))
                    })
            })
            .map(|p| p.to_string())
            .collect();
        out.sort_unstable();
        out
    }

    /// The series (sorted numbers) that have `e.tag` with a value `e` accepts.
    fn postings(&self, e: &TagExpr) -> Vec<u32> {
        let Some(tv) = self.tags.get(&e.tag) else {
            return Vec::new();
        };
        if e.op == Op::Eq {
            return tv.values.get(e.spec.as_str()).cloned().unwrap_or_default();
        }
        let mut out: Vec<u32> = Vec::new();
        let mut lists = 0;
        for (v, s) in &tv.values {
            if e.matches_present(v) {
                out.extend_from_slice(s);
                lists += 1;
            }
        }
        if lists > 1 {
            out.sort_unstable();
        }
        out
    }

    /// `list_tags`: tags sorted by name, optionally filtered by a regex (anchored at the
    /// start unless it starts with `^`) and limited.
    pub fn list_tags(
        &self,
        filter: Option<&str>,
        limit: Option<usize>,
    ) -> Result<Vec<TagInfo>, TagError> {
        let re = filter.filter(|f| !f.is_empty()).map(anchored).transpose()?;
        Ok(self
            .tags
            .iter()
            .filter(|(t, _)| re.as_ref().is_none_or(|r| r.is_match(t)))
            .take(limit.unwrap_or(usize::MAX))
            .map(|(t, tv)| TagInfo {
                id: tv.id,
                tag: t.clone(),
            })
            .collect())
    }

    /// The id of `tag`, if any series has it (`get_tag` answers null otherwise).
    pub fn tag_id(&self, tag: &str) -> Option<u32> {
        self.tags.get(tag).map(|t| t.id)
    }

    /// `list_values`: the values of `tag` with their series counts, sorted, optionally
    /// filtered (regex anchored like [`TagIndex::list_tags`]) and limited.
    pub fn list_values(
        &self,
        tag: &str,
        filter: Option<&str>,
        limit: Option<usize>,
    ) -> Result<Vec<ValueInfo>, TagError> {
        let re = filter.filter(|f| !f.is_empty()).map(anchored).transpose()?;
        let Some(tv) = self.tags.get(tag) else {
            return Ok(Vec::new());
        };
        Ok(tv
            .values
            .iter()
            .filter(|(v, _)| re.as_ref().is_none_or(|r| r.is_match(v)))
            .take(limit.unwrap_or(usize::MAX))
            .map(|(v, s)| ValueInfo {
                id: self.value_ids.get(v).copied().unwrap_or(0),
                value: v.to_string(),
                count: s.len(),
            })
            .collect())
    }

    /// `auto_complete_tags`: without expressions, the tags starting with `prefix`; with
    /// them, the tags of the matching series other than the ones the expressions name.
    /// Sorted, at most `limit` ([`AUTOCOMPLETE_LIMIT`] by default).
    pub fn auto_complete_tags<S: AsRef<str>>(
        &self,
        exprs: &[S],
        prefix: Option<&str>,
        limit: Option<usize>,
    ) -> Result<Vec<String>, TagError> {
        let limit = limit.unwrap_or(AUTOCOMPLETE_LIMIT);
        let prefix = prefix.unwrap_or("");
        if exprs.is_empty() {
            return Ok(self
                .tags
                .keys()
                .filter(|t| t.starts_with(prefix))
                .take(limit)
                .cloned()
                .collect());
        }
        let parsed = parse_exprs(exprs)?;
        let searched: Vec<&str> = parsed.iter().map(|e| e.tag.as_str()).collect();
        let mut out = std::collections::BTreeSet::new();
        for path in self.find_parsed(&parsed) {
            let Ok(tags) = parse(&path) else { continue };
            for tag in tags.into_keys() {
                if !searched.contains(&tag.as_str()) && tag.starts_with(prefix) {
                    out.insert(tag);
                }
            }
        }
        Ok(out.into_iter().take(limit).collect())
    }

    /// `auto_complete_values`: without expressions, the values of `tag` starting with
    /// `prefix`; with them, the values of `tag` among the matching series. Sorted, at most
    /// `limit`.
    pub fn auto_complete_values<S: AsRef<str>>(
        &self,
        exprs: &[S],
        tag: &str,
        prefix: Option<&str>,
        limit: Option<usize>,
    ) -> Result<Vec<String>, TagError> {
        let limit = limit.unwrap_or(AUTOCOMPLETE_LIMIT);
        let prefix = prefix.unwrap_or("");
        if exprs.is_empty() {
            let Some(tv) = self.tags.get(tag) else {
                return Ok(Vec::new());
            };
            return Ok(tv
                .values
                .keys()
                .filter(|v| v.starts_with(prefix))
                .take(limit)
                .map(|v| v.to_string())
                .collect());
        }
        let mut all: Vec<String> = exprs.iter().map(|e| e.as_ref().to_string()).collect();
        all.push(format!("{tag}!="));
        let parsed = parse_exprs(&all)?;
        let mut out = std::collections::BTreeSet::new();
        for path in self.find_parsed(&parsed) {
            let Ok(mut tags) = parse(&path) else { continue };
            if let Some(v) = tags.remove(tag) {
                if v.starts_with(prefix) {
                    out.insert(v);
                }
            }
        }
        Ok(out.into_iter().take(limit).collect())
    }
}

/// How many of `exprs` are regex expressions (`tag=~re`, `tag!=~re`), without compiling.
pub fn count_regexes<S: AsRef<str>>(exprs: &[S]) -> usize {
    exprs
        .iter()
        .filter(|e| {
            let e = e.as_ref();
            e.find([';', '!', '='])
                .is_some_and(|i| e[i..].starts_with("=~") || e[i..].starts_with("!=~"))
        })
        .count()
}

/// The regex expressions of a fetch pattern that is a `seriesByTag(...)` call's text (0 for
/// any other pattern), for the request's regex budget.
pub fn query_regexes(pattern: &str) -> usize {
    tag_query(pattern).map_or(0, |exprs| count_regexes(&exprs))
}

/// A regex with its compiled size capped (see [`crate::budget::compile_regex`]).
fn compile(text: &str) -> Result<Regex, regex::Error> {
    let max = crate::budget::DEFAULT_MAX_REGEX_SIZE;
    regex::RegexBuilder::new(text)
        .size_limit(max)
        .dfa_size_limit(max)
        .build()
}

/// A `filter` regex as graphite-web anchors it: `^(filter)` unless it starts with `^`.
fn anchored(filter: &str) -> Result<Regex, TagError> {
    let text = if filter.starts_with('^') {
        filter.to_string()
    } else {
        format!("^({filter})")
    };
    compile(&text).map_err(|e| TagError::Regex {
        expr: filter.to_string(),
        message: e.to_string(),
    })
}

/// Tags graphite-web's functions add to a series (`series.tags['scale'] = ...`), as opposed
/// to the tags a series' name carried.
const FUNCTION_TAGS: &[&str] = &[
    "absolute",
    "add",
    "aggregatedBy",
    "areaBetween",
    "consolidateBy",
    "dashed",
    "delay",
    "derivative",
    "drawAsInfinite",
    "exp",
    "exponentialMovingAverage",
    "hitcount",
    "integral",
    "integralByInterval",
    "invert",
    "isNonNull",
    "linearRegressions",
    "log",
    "logit",
    "nPercentile",
    "nonNegativeDerivative",
    "offset",
    "offsetToZero",
    "perSecond",
    "pow",
    "referenceSeries",
    "round",
    "scale",
    "scaleToSeconds",
    "secondYAxis",
    "sigmoid",
    "smartSummarize",
    "smartSummarizeFunction",
    "squareRoot",
    "stacked",
    "stdev",
    "summarize",
    "summarizeFunction",
    "timeShift",
    "timeShiftUnit",
    "timeSliceEnd",
    "timeSliceStart",
    "transformNull",
    "xFilesFactor",
];

fn function_tag(key: &str) -> bool {
    FUNCTION_TAGS.contains(&key) || key.starts_with("moving") || key.starts_with("holtWinters")
}

/// The order graphite-web's JSON lists a series' tags in (its `tags` dict's insertion order):
/// a plain series' dict starts with `name`; a tagged series' dict is `TaggedSeries.parse` of
/// its canonical name, i.e. its tags in canonical order and then `name`. Tags functions add
/// come after, in the order the functions were applied, read from the series' name (the
/// innermost call first: a function's name further right in `name`); ones whose function is
/// not in the name come last, by key.
pub fn json_order(name: &str, tags: &Tags) -> Vec<(String, String)> {
    let mut origin: Vec<(&String, &String)> = tags
        .iter()
        .filter(|(k, _)| k.as_str() != "name" && !function_tag(k))
        .collect();
    origin.sort_by_cached_key(|(k, v)| format!(";{k}={v}"));
    let own_name = tags.get_key_value("name");
    let mut out: Vec<(String, String)> = Vec::with_capacity(tags.len());
    let push = |out: &mut Vec<(String, String)>, (k, v): (&String, &String)| {
        out.push((k.clone(), v.clone()))
    };
    if origin.is_empty() {
        own_name.into_iter().for_each(|kv| push(&mut out, kv));
    } else {
        origin.into_iter().for_each(|kv| push(&mut out, kv));
        own_name.into_iter().for_each(|kv| push(&mut out, kv));
    }
    let mut added: Vec<(&String, &String)> = tags.iter().filter(|(k, _)| function_tag(k)).collect();
    added.sort_by_cached_key(|(k, _)| match anchor(name, k) {
        Some((pos, sub)) => (0, std::cmp::Reverse(pos), sub),
        None => (1, std::cmp::Reverse(0), 0),
    });
    added.into_iter().for_each(|kv| push(&mut out, kv));
    out
}

/// Where in a series name the call that added tag `key` is: the byte position of its last
/// (innermost) occurrence, and the key's rank among the tags that call adds.
fn anchor(name: &str, key: &str) -> Option<(usize, u8)> {
    let (func, sub) = match key {
        "aggregatedBy" => {
            // `sumSeries(`, `averageSeries(`, ... or `aggregate(`: the innermost one.
            return name
                .match_indices('(')
                .filter(|(i, _)| {
                    let head = &name[..*i];
                    head.ends_with("Series") || head.ends_with("aggregate")
                })
                .map(|(i, _)| (i, 0))
                .next_back();
        }
        // timeStack names its series `timeShift(...)` and sets the unit first.
        "timeShiftUnit" => ("timeShift", 0),
        "timeShift" => ("timeShift", 1),
        "summarizeFunction" => ("summarize", 1),
        "smartSummarizeFunction" => ("smartSummarize", 1),
        k if k.starts_with("holtWinters") => {
            // holtWintersConfidenceBands names its series after the band but tags the
            // forecast, the deviation, then the bands.
            const ORDER: &[&str] = &[
                "holtWintersForecast",
                "holtWintersDeviation",
                "holtWintersConfidenceUpper",
                "holtWintersConfidenceLower",
            ];
            let rank = ORDER.iter().position(|o| *o == k).unwrap_or(ORDER.len());
            return name.rfind("holtWinters").map(|i| (i, rank as u8));
        }
        "timeSliceStart" => ("timeSlice", 0),
        "timeSliceEnd" => ("timeSlice", 1),
        k => (k, 0),
    };
    let call = format!("{func}(");
    name.rmatch_indices(call.as_str())
        .find(|(i, _)| {
            name[..*i]
                .chars()
                .next_back()
                .is_none_or(|c| !c.is_ascii_alphanumeric() && c != '_')
        })
        .map(|(i, _)| (i, sub))
}

/// Whether a fetch `pattern` selects the series `name`: a tagged pattern (with `;`) names one
/// series exactly, as graphite-web's finder looks tagged names up without globbing; anything
/// else is a glob.
pub fn path_matches(pattern: &str, glob: &crate::glob::GlobPattern, name: &str) -> bool {
    if pattern.contains(';') {
        pattern == name
    } else {
        glob.matches(name)
    }
}

/// [`TagIndex::find`] with its error as the evaluator reports it.
pub fn find_or_error(index: &TagIndex, exprs: &[String]) -> Result<Vec<String>, EvalError> {
    index.find(exprs).map_err(query_error)
}

/// A refused tag query as the evaluator reports it: an input error of `seriesByTag` (the
/// HTTP API answers 400).
pub fn query_error(e: TagError) -> EvalError {
    EvalError::Input {
        function: "seriesByTag".into(),
        message: e.to_string(),
    }
}

/// The expressions of a fetch pattern that is a `seriesByTag(...)` call's text.
fn tag_query(pattern: &str) -> Option<Vec<String>> {
    if !pattern.starts_with("seriesByTag(") {
        return None;
    }
    match crate::expr::parse(pattern) {
        Ok(crate::expr::ast::Expr::SeriesByTag { exprs, .. }) => Some(exprs),
        _ => None,
    }
}

/// [`Source::fetch`] that also answers `seriesByTag` requests, as graphite-web's
/// `STORE.fetch` does: the tag query is resolved to series names
/// ([`Source::find_tagged`]), each name is fetched as a pattern over the request's window,
/// and the series named exactly so are returned, sorted by name, with the call's text as
/// their `pathExpression`. Other requests go to the source unchanged (one `fetch` call).
pub fn fetch(source: &dyn Source, reqs: &[FetchRequest]) -> Result<Vec<Vec<Series>>, EvalError> {
    if !reqs.iter().any(|r| r.pattern.starts_with("seriesByTag(")) {
        return source.fetch(reqs);
    }
    enum Slot {
        Plain(usize),
        Tagged(Vec<usize>),
    }
    let mut sent: Vec<FetchRequest> = Vec::new();
    let mut slots = Vec::with_capacity(reqs.len());
    for r in reqs {
        match tag_query(&r.pattern) {
            Some(exprs) => {
                let names = source.find_tagged(&exprs)?;
                let mut idx = Vec::with_capacity(names.len());
                for pattern in names {
                    idx.push(sent.len());
                    sent.push(FetchRequest {
                        pattern,
                        from: r.from,
                        until: r.until,
                    });
                }
                slots.push(Slot::Tagged(idx));
            }
            None => {
                slots.push(Slot::Plain(sent.len()));
                sent.push(r.clone());
            }
        }
    }
    let mut got: Vec<Option<Vec<Series>>> = if sent.is_empty() {
        Vec::new()
    } else {
        source.fetch(&sent)?.into_iter().map(Some).collect()
    };
    let mut take = |i: usize| got.get_mut(i).and_then(Option::take).unwrap_or_default();
    Ok(reqs
        .iter()
        .zip(slots)
        .map(|(r, slot)| match slot {
            Slot::Plain(i) => take(i),
            Slot::Tagged(idx) => {
                let mut out: BTreeMap<String, Series> = BTreeMap::new();
                for i in idx {
                    let name = &sent[i].pattern;
                    for mut s in take(i) {
                        if &s.name == name {
                            s.path_expression.clone_from(&r.pattern);
                            out.entry(s.name.clone()).or_insert(s);
                        }
                    }
                }
                out.into_values().collect()
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_forms_as_carbon() {
        for (given, want) in [
            ("cpu", "cpu"),
            ("a.b.c", "a.b.c"),
            ("cpu;host=a;dc=x", "cpu;dc=x;host=a"),
            ("cpu;dc=x;host=a", "cpu;dc=x;host=a"),
            // Sorted as `;tag=value` strings: `.` (0x2e) sorts before `=` (0x3d).
            ("m;a=2;a.b=1", "m;a.b=1;a=2"),
            // A repeated tag keeps its last value; `name=` is replaced by the name.
            ("m;k=1;k=2", "m;k=2"),
            ("m;name=other;k=v", "m;k=v"),
            ("~m;k=v", "m;k=v"),
            // Values may hold `=` and `~` after the first character.
            ("m;k=a=b;j=x~", "m;j=x~;k=a=b"),
        ] {
            assert_eq!(canonical(given).unwrap(), want, "{given}");
        }
        assert!(matches!(canonical("cpu;host=a").unwrap(), Cow::Borrowed(_)));
    }

    #[test]
    fn bad_tagged_names_are_refused_with_graphite_web_messages() {
        for (given, want) in [
            (";k=v", "Cannot parse path ;k=v, no metric found"),
            ("m;k", "Cannot parse path m;k, invalid segment k"),
            ("m;=v", "Cannot parse path m;=v, invalid segment =v"),
            ("m;k=", "Value for tag \"k\" may not be empty"),
            ("m;k!=v", "Character \"!\" is not allowed in tag \"k!\""),
            ("m;k^=v", "Character \"^\" is not allowed in tag \"k^\""),
            (
                "m;k=~v",
                "Tag values are not allowed to start with \"~\" in tag \"k\"",
            ),
            ("m;k=v;", "Cannot parse path m;k=v;, invalid segment "),
        ] {
            assert_eq!(canonical(given).unwrap_err().to_string(), want, "{given}");
        }
    }

    #[test]
    fn json_order_is_graphite_webs_dict_order() {
        let order = |pairs: &[(&str, &str)]| -> Vec<String> {
            let tags: Tags = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            json_order("x", &tags).into_iter().map(|(k, _)| k).collect()
        };
        assert_eq!(
            order(&[("name", "a.b"), ("scale", "2"), ("offset", "1")]),
            ["name", "offset", "scale"]
        );
        assert_eq!(
            order(&[
                ("name", "m"),
                ("host", "a"),
                ("dc", "x"),
                ("aggregatedBy", "sum")
            ]),
            ["dc", "host", "name", "aggregatedBy"]
        );
        assert_eq!(
            order(&[("name", "m"), ("a", "2"), ("a.b", "1")]),
            ["a.b", "a", "name"]
        );
        assert_eq!(
            order(&[("name", "m"), ("movingAverage", "5")]),
            ["name", "movingAverage"]
        );
    }

    #[test]
    fn tag_expressions_parse_like_parse_tagspec() {
        for (given, tag, op, spec) in [
            ("name=cpu", "name", Op::Eq, "cpu"),
            ("host!=a", "host", Op::Ne, "a"),
            ("host=~web.*", "host", Op::Match, "web.*"),
            ("host!=~web", "host", Op::NotMatch, "web"),
            ("host=", "host", Op::Eq, ""),
            ("host!=", "host", Op::Ne, ""),
            ("k==v", "k", Op::Eq, "=v"),
            ("k=~=", "k", Op::Match, "="),
        ] {
            let e = TagExpr::parse(given).unwrap();
            assert_eq!((e.tag.as_str(), e.op, e.spec.as_str()), (tag, op, spec));
        }
        for bad in ["", "=v", "host", "host!v", "a;b=c", "a=b;c", "!=x"] {
            assert!(TagExpr::parse(bad).is_err(), "{bad}");
        }
        assert!(matches!(
            TagExpr::parse("k=~(").unwrap_err(),
            TagError::Regex { .. }
        ));
    }

    #[test]
    fn a_query_compiles_a_bounded_number_of_bounded_regexes() {
        let many: Vec<String> = (0..500).map(|i| format!("host=~h{i}.*")).collect();
        let err = index().find(&many).unwrap_err();
        assert_eq!(err, TagError::TooManyRegexes(500));
        assert!(err.to_string().contains("max_regexes_per_query"), "{err}");
        let ok: Vec<String> = (0..MAX_QUERY_REGEXES)
            .map(|i| format!("host=~h{i}"))
            .collect();
        assert!(index().find(&ok).is_ok());
        // equality expressions are not regexes
        let eq: Vec<String> = (0..500).map(|i| format!("host!=h{i}")).collect();
        assert_eq!(count_regexes(&eq), 0);
        assert!(index()
            .find(&[eq, vec!["name=cpu".to_string()]].concat())
            .is_ok());
        // a regex whose compiled form is huge is refused, not built
        let err = TagExpr::parse("host=~(a{1000}){1000}").unwrap_err();
        assert!(matches!(err, TagError::Regex { .. }), "{err}");
        assert_eq!(
            query_regexes("seriesByTag('name=cpu','host=~a','dc!=~b')"),
            2
        );
        assert_eq!(query_regexes("a.b.c"), 0);
    }

    #[test]
    fn which_expressions_match_the_empty_value() {
        for (expr, empty) in [
            ("k=v", false),
            ("k=", true),
            ("k!=v", true),
            ("k!=", false),
            ("k=~v.*", false),
            ("k=~.*", true),
            ("k=~^$", true),
            ("k!=~v", true),
            ("k!=~.*", false),
        ] {
            assert_eq!(
                TagExpr::parse(expr).unwrap().matches_empty(),
                empty,
                "{expr}"
            );
        }
        assert_eq!(
            parse_exprs(&["a!=b", "c=~.*"]).unwrap_err(),
            TagError::AllMatchEmpty
        );
        assert_eq!(
            parse_exprs::<&str>(&[]).unwrap_err(),
            TagError::AllMatchEmpty
        );
    }

    fn index() -> TagIndex {
        let mut ix = TagIndex::default();
        for p in [
            "cpu;dc=east;host=web1;role=web",
            "cpu;dc=east;host=web2;role=web",
            "cpu;dc=west;host=db1;role=db",
            "cpu;dc=west;host=web10",
            "mem;dc=east;host=web1;role=web",
            "servers.web1.load",
        ] {
            assert!(ix.insert(p.into()));
        }
        assert!(!ix.insert("cpu;dc=east;host=web1;role=web".into()));
        assert!(!ix.insert("bad;k".into()));
        ix
    }

    #[test]
    fn find_series_table() {
        let ix = index();
        let cases: &[(&[&str], &[&str])] = &[
            (
                &["name=cpu"],
                &[
                    "cpu;dc=east;host=web1;role=web",
                    "cpu;dc=east;host=web2;role=web",
                    "cpu;dc=west;host=db1;role=db",
                    "cpu;dc=west;host=web10",
                ],
            ),
            (
                &["name=cpu", "dc=west"],
                &["cpu;dc=west;host=db1;role=db", "cpu;dc=west;host=web10"],
            ),
            // =~ is anchored at the start only.
            (
                &["name=cpu", "host=~web1"],
                &["cpu;dc=east;host=web1;role=web", "cpu;dc=west;host=web10"],
            ),
            (&["name=cpu", "host=~eb"], &[]),
            (
                &["name=cpu", "host=~web1$"],
                &["cpu;dc=east;host=web1;role=web"],
            ),
            (
                &["host=~^web1|db"],
                &[
                    "cpu;dc=east;host=web1;role=web",
                    "cpu;dc=west;host=db1;role=db",
                    "cpu;dc=west;host=web10",
                    "mem;dc=east;host=web1;role=web",
                ],
            ),
            // != also matches series without the tag.
            (
                &["name=cpu", "role!=web"],
                &["cpu;dc=west;host=db1;role=db", "cpu;dc=west;host=web10"],
            ),
            // tag!= (empty spec) requires the tag.
            (
                &["name=cpu", "role!="],
                &[
                    "cpu;dc=east;host=web1;role=web",
                    "cpu;dc=east;host=web2;role=web",
                    "cpu;dc=west;host=db1;role=db",
                ],
            ),
            // tag= (empty spec) requires its absence.
            (&["name=cpu", "role="], &["cpu;dc=west;host=web10"]),
            (
                &["name=cpu", "host!=~web"],
                &["cpu;dc=west;host=db1;role=db"],
            ),
            (
                &["name=cpu", "role=~.*"],
                &[
                    "cpu;dc=east;host=web1;role=web",
                    "cpu;dc=east;host=web2;role=web",
                    "cpu;dc=west;host=db1;role=db",
                    "cpu;dc=west;host=web10",
                ],
            ),
            (
                &["dc=east", "name!=cpu"],
                &["mem;dc=east;host=web1;role=web"],
            ),
            // Untagged series are indexed by name.
            (&["name=~servers\\."], &["servers.web1.load"]),
            (&["name=nosuch"], &[]),
            (&["nosuch=x"], &[]),
        ];
        for (exprs, want) in cases {
            assert_eq!(ix.find(exprs).unwrap(), *want, "{exprs:?}");
        }
        assert_eq!(
            ix.find(&["role!=web"]).unwrap_err(),
            TagError::AllMatchEmpty
        );
    }

    #[test]
    fn tags_values_and_autocomplete() {
        let ix = index();
        let tags: Vec<String> = ix
            .list_tags(None, None)
            .unwrap()
            .into_iter()
            .map(|t| t.tag)
            .collect();
        assert_eq!(tags, ["dc", "host", "name", "role"]);
        let f: Vec<String> = ix
            .list_tags(Some("h|r"), None)
            .unwrap()
            .into_iter()
            .map(|t| t.tag)
            .collect();
        assert_eq!(f, ["host", "role"]);
        assert_eq!(ix.list_tags(None, Some(1)).unwrap().len(), 1);
        let v = ix.list_values("dc", None, None).unwrap();
        assert_eq!(
            v.iter()
                .map(|v| (v.value.as_str(), v.count))
                .collect::<Vec<_>>(),
            [("east", 3), ("west", 2)]
        );
        assert!(ix.list_values("nosuch", None, None).unwrap().is_empty());
        assert_eq!(ix.tag_id("nosuch"), None);
        let no: &[&str] = &[];
        assert_eq!(
            ix.auto_complete_tags(no, Some("r"), None).unwrap(),
            ["role"]
        );
        assert_eq!(
            ix.auto_complete_tags(&["name=cpu", "dc=west"], None, None)
                .unwrap(),
            ["host", "role"]
        );
        assert_eq!(
            ix.auto_complete_values(&["name=cpu"], "host", Some("web"), None)
                .unwrap(),
            ["web1", "web10", "web2"]
        );
        assert_eq!(
            ix.auto_complete_values(no, "host", None, Some(2)).unwrap(),
            ["db1", "web1"]
        );
    }

    #[test]
    fn a_source_without_a_tag_index_refuses_series_by_tag_clearly() {
        struct NoTags;
        impl Source for NoTags {
            fn fetch(&self, reqs: &[FetchRequest]) -> Result<Vec<Vec<Series>>, EvalError> {
                Ok(reqs.iter().map(|_| Vec::new()).collect())
            }
        }
        let target = crate::expr::parse("sumSeries(seriesByTag('name=cpu'))").unwrap();
        let err = crate::eval::render(&[target], 0, 60, 60, &NoTags).unwrap_err();
        assert!(err.to_string().contains("no tag index"), "{err}");
        // Plain targets still work.
        let plain = crate::expr::parse("a.b").unwrap();
        assert!(crate::eval::render(&[plain], 0, 60, 60, &NoTags)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn hundred_thousand_series_are_indexed_and_found() {
        let mut ix = TagIndex::default();
        for i in 0..100_000 {
            let p = format!("m{};host=h{:05};dc=dc{}", i % 100, i / 100, i % 7);
            assert!(ix.insert(canonical(&p).unwrap().into_owned().into()));
        }
        assert_eq!(ix.len(), 100_000);
        let got = ix.find(&["name=m7", "host=~h0001"]).unwrap();
        assert_eq!(got.len(), 10);
        assert!(got.iter().all(|p| p.starts_with("m7;dc=")));
        let want = (0..100_000).filter(|i| i % 7 == 3 && i % 100 != 3).count();
        assert_eq!(ix.find(&["dc=dc3", "name!=m3"]).unwrap().len(), want);
    }
}
