//! Replays graphite-web 1.1.10's recorded answers (`tests/conformance/golden/*.json`, made by
//! `tests/graphite-web/record.py`) with no Python: a [`Source`] serves the recorded raw data
//! (`fixtures.json`) with whisper's fetch rules, every golden target is parsed and evaluated
//! with the recorded `from`/`until`/`now`, and the result must match graphite-web's JSON: same
//! target names, same timestamps, null for null, values within 1e-9 relative, same tags, and
//! the same whisper reads (`fetches`: each function's extra fetch window, worked out before
//! fetching).
//! Entries graphite-web answered with 400/500 must be errors here; entries graphite-web only
//! partly parsed (`graphite_partial_parse`) must be parse errors.
//!
//! Deliberate differences are listed, one target per line with a reason, in
//! `tests/conformance/known_differences.txt`; the test fails on any other mismatch and on a
//! listed target that now matches (so the list stays small and true).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use graphite::attime::{parse_time, TimeZone};
use graphite::eval::{render, request_window, EvalError, FetchRequest, Source};
use graphite::expr::ast::Expr;
use graphite::expr::parse_with_vars;
use graphite::glob::GlobPattern;
use graphite::series::Series;
use serde_json::Value as Json;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance")
}

/// One archive of a whisper file, as recorded.
struct Archive {
    retention: i64,
    step: i64,
    data_start: i64,
    values: Vec<Option<f64>>,
}

struct File {
    max_retention: i64,
    archives: Vec<Archive>,
}

/// The recorded whisper files, answering fetches as whisper 1.1.10's `file_fetch` does.
struct WhisperFixtures {
    now: i64,
    files: BTreeMap<String, File>,
    /// Every `[from, until]` window asked for (to compare with graphite-web's `fetches`).
    windows: std::cell::RefCell<std::collections::BTreeSet<(i64, i64)>>,
}

impl WhisperFixtures {
    fn load() -> Self {
        let text = std::fs::read_to_string(dir().join("fixtures.json")).unwrap();
        let j: Json = serde_json::from_str(&text).unwrap();
        let now = j["now"].as_i64().unwrap();
        let mut files = BTreeMap::new();
        for (path, f) in j["series"].as_object().unwrap() {
            let archives = f["archives"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| Archive {
                    retention: a["retention"].as_i64().unwrap(),
                    step: a["step"].as_i64().unwrap(),
                    data_start: a["data_start"].as_i64().unwrap(),
                    values: a["values"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(Json::as_f64)
                        .collect(),
                })
                .collect();
            files.insert(
                path.clone(),
                File {
                    max_retention: f["maxRetention"].as_i64().unwrap(),
                    archives,
                },
            );
        }
        Self {
            now,
            files,
            windows: Default::default(),
        }
    }

    /// whisper's `file_fetch(fh, fromTime, untilTime, now)`; `None` where whisper returns
    /// nothing (the window is entirely in the future or before the retention).
    fn fetch_one(&self, path: &str, file: &File, from: i64, until: i64) -> Option<Series> {
        let now = self.now;
        let oldest = now - file.max_retention;
        if from > now || until < oldest {
            return None;
        }
        let from = from.max(oldest);
        let until = until.min(now);
        let diff = now - from;
        let archive = file
            .archives
            .iter()
            .find(|a| a.retention >= diff)
            .or(file.archives.last())?;
        let step = archive.step;
        let from_i = from - from.rem_euclid(step) + step;
        let mut until_i = until - until.rem_euclid(step) + step;
        if from_i == until_i {
            until_i += step;
        }
        let values = (0..(until_i - from_i) / step)
            .map(|k| {
                let off = from_i + k * step - archive.data_start;
                if off < 0 {
                    return None;
                }
                archive.values.get((off / step) as usize).copied().flatten()
            })
            .collect();
        // graphite-web 1.1.10 ignores the file's aggregationMethod and xFilesFactor here:
        // fetched series consolidate by average with the request's xFilesFactor (default 0).
        Some(Series::new(path, from_i, until_i, step, values))
    }
}

impl Source for WhisperFixtures {
    fn fetch(&self, reqs: &[FetchRequest]) -> Result<Vec<Vec<Series>>, EvalError> {
        reqs.iter()
            .map(|r| {
                let glob = GlobPattern::new(&r.pattern).map_err(|e| EvalError::Source {
                    pattern: r.pattern.clone(),
                    message: e.to_string(),
                })?;
                // graphite-web's `fetches` lists the windows of reads that found files.
                let matches = |p: &str| graphite::tags::path_matches(&r.pattern, &glob, p);
                if self.files.keys().any(|p| matches(p)) {
                    self.windows.borrow_mut().insert((r.from, r.until));
                }
                Ok(self
                    .files
                    .iter()
                    .filter(|(p, _)| matches(p))
                    .filter_map(|(p, f)| self.fetch_one(p, f, r.from, r.until))
                    .map(|mut s| {
                        s.path_expression.clone_from(&r.pattern);
                        s
                    })
                    .collect())
            })
            .collect()
    }

    /// The recording entered every fixture series into graphite-web's tag database (as
    /// carbon does), so every file is in the index.
    fn find_tagged(&self, exprs: &[String]) -> Result<Vec<String>, EvalError> {
        let mut index = graphite::tags::TagIndex::default();
        for p in self.files.keys() {
            index.insert(p.as_str().into());
        }
        graphite::tags::find_or_error(&index, exprs)
    }
}

/// graphite-web's `renderViewJson` consolidation for `maxDataPoints`: `(timestamp, value)`.
fn datapoints(series: &[Series], max_points: Option<usize>) -> Vec<Vec<(Option<f64>, i64)>> {
    let start = series.iter().map(|s| s.start).min().unwrap_or(0);
    let end = series.iter().map(|s| s.end).max().unwrap_or(0);
    let range = end - start;
    series
        .iter()
        .map(|s| {
            let mut s = s.clone();
            let mut vpp = 1usize;
            match max_points {
                Some(1) => vpp = s.values.len().max(1),
                Some(m) => {
                    let n = range as f64 / s.step as f64;
                    if (m as f64) < n {
                        vpp = (n / m as f64).ceil() as usize;
                        let spp = vpp as i64 * s.step;
                        let nudge = spp + s.start.rem_euclid(s.step) - s.start.rem_euclid(spp);
                        s.start += nudge;
                        let lose = (nudge / s.step) as usize;
                        if lose > 1 {
                            s.values.drain(..(lose - 1).min(s.values.len()));
                        }
                    }
                }
                None => {}
            }
            let values = s.consolidated(vpp);
            let spp = s.step * vpp as i64;
            values
                .into_iter()
                .zip((s.start..=s.end).step_by(spp as usize))
                .collect()
        })
        .collect()
}

struct Entry {
    family: String,
    target: String,
    from: String,
    until: String,
    vars: Vec<(String, String)>,
    max_points: Option<usize>,
    status: i64,
    body: Json,
    partial: bool,
    /// The windows graphite-web passed to whisper.
    fetches: std::collections::BTreeSet<(i64, i64)>,
}

fn load_entries() -> Vec<Entry> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir().join("golden"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let family = f.file_stem().unwrap().to_string_lossy().into_owned();
        let j: Json = serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
        for e in j.as_array().unwrap() {
            let params = e.get("params").and_then(Json::as_object);
            let vars = params
                .into_iter()
                .flatten()
                .filter_map(|(k, v)| {
                    let name = k.strip_prefix("template[")?.strip_suffix(']')?;
                    Some((name.to_string(), v.as_str()?.to_string()))
                })
                .collect();
            let max_points = params
                .and_then(|p| p.get("maxDataPoints"))
                .and_then(Json::as_str)
                .and_then(|s| s.parse().ok());
            out.push(Entry {
                family: family.clone(),
                target: e["target"].as_str().unwrap().to_string(),
                from: e["from"].as_str().unwrap().to_string(),
                until: e["until"].as_str().unwrap().to_string(),
                vars,
                max_points,
                status: e["status"].as_i64().unwrap(),
                body: e["body"].clone(),
                partial: e.get("graphite_partial_parse").is_some(),
                fetches: e["fetches"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|w| (w[0].as_i64().unwrap(), w[1].as_i64().unwrap()))
                    .collect(),
            });
        }
    }
    out
}

/// The outermost function of a target (`path` for a bare path), for the summary.
fn function_of(target: &str) -> String {
    match target.find('(') {
        Some(i) if i > 0 && target[..i].bytes().all(|b| b.is_ascii_alphanumeric()) => {
            target[..i].to_string()
        }
        _ => "path".to_string(),
    }
}

fn close(g: f64, w: f64) -> bool {
    g == w || (g.is_nan() && w.is_nan()) || (g - w).abs() <= 1e-9 * g.abs().max(w.abs())
}

fn json_value(v: &Json) -> Option<f64> {
    match v {
        Json::Null => None,
        Json::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            _ => panic!("unexpected value {s:?}"),
        },
        other => other.as_f64(),
    }
}

/// Compares carbide's series with graphite-web's JSON; `Err` describes the first difference.
fn compare(got: &[Series], max_points: Option<usize>, want: &Json) -> Result<(), String> {
    let want = want.as_array().ok_or("golden body is not a list")?;
    let got_names: Vec<&str> = got.iter().map(|s| s.name.as_str()).collect();
    // A series named by Python's None (`verticalLine` without a label) renders as `null`;
    // carbide's names are strings, and graphite-web's own `str()` of it is "None".
    let want_names: Vec<&str> = want
        .iter()
        .map(|w| w["target"].as_str().unwrap_or("None"))
        .collect();
    if got_names != want_names {
        return Err(format!(
            "names differ:\n      got  {got_names:?}\n      want {want_names:?}"
        ));
    }
    let points = datapoints(got, max_points);
    for ((s, pts), w) in got.iter().zip(&points).zip(want) {
        let wpts = w["datapoints"].as_array().unwrap();
        let wts: Vec<i64> = wpts.iter().map(|p| p[1].as_i64().unwrap()).collect();
        let gts: Vec<i64> = pts.iter().map(|p| p.1).collect();
        if gts != wts {
            return Err(format!(
                "{}: timestamps differ: got {} points {:?}..{:?} (step {}), want {} points {:?}..{:?}",
                s.name,
                gts.len(),
                gts.first(),
                gts.last(),
                s.step,
                wts.len(),
                wts.first(),
                wts.last()
            ));
        }
        for ((g, t), wp) in pts.iter().zip(wpts) {
            let wv = json_value(&wp[0]);
            let ok = match (g, wv) {
                (None, None) => true,
                (Some(g), Some(w)) => close(*g, w),
                _ => false,
            };
            if !ok {
                return Err(format!(
                    "{}: value at {t} differs: got {g:?}, want {wv:?}",
                    s.name
                ));
            }
        }
        let wtags: BTreeMap<String, String> = w["tags"]
            .as_object()
            .map(|o| {
                o.iter()
                    .map(|(k, v)| {
                        let v = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                        (k.clone(), v)
                    })
                    .collect()
            })
            .unwrap_or_default();
        if s.tags != wtags {
            return Err(format!(
                "{}: tags differ: got {:?}, want {wtags:?}",
                s.name, s.tags
            ));
        }
    }
    Ok(())
}

/// Runs one entry; `Err` describes the mismatch.
fn replay(src: &WhisperFixtures, e: &Entry) -> Result<(), String> {
    let vars: Vec<(&str, &str)> = e
        .vars
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    // graphite-web's render view drops blank targets before evaluating anything.
    if e.target.trim().is_empty() && e.status == 200 {
        return compare(&[], e.max_points, &e.body);
    }
    let parsed = parse_with_vars(&e.target, &vars);
    if e.partial {
        return match parsed {
            Err(_) => Ok(()),
            Ok(x) => Err(format!(
                "graphite-web parsed only a prefix; carbide must report a parse error, parsed {x}"
            )),
        };
    }
    let tz = TimeZone::utc();
    src.windows.borrow_mut().clear();
    let result = parsed.map_err(|e| e.to_string()).and_then(|expr: Expr| {
        let from = parse_time(&e.from, src.now, &tz).map_err(|e| e.to_string())?;
        let until = parse_time(&e.until, src.now, &tz).map_err(|e| e.to_string())?;
        let (from, until) = request_window(from, until).map_err(|e| e.to_string())?;
        render(&[expr], from, until, src.now, src).map_err(|e| e.to_string())
    });
    match (e.status, result) {
        (200, Ok(got)) => {
            compare(&got, e.max_points, &e.body)?;
            let windows = std::mem::take(&mut *src.windows.borrow_mut());
            if windows != e.fetches {
                return Err(format!(
                    "fetched windows differ: carbide {windows:?}, graphite-web {:?}",
                    e.fetches
                ));
            }
            Ok(())
        }
        (200, Err(err)) => Err(format!("carbide failed: {err}")),
        (_, Err(_)) => Ok(()),
        (status, Ok(got)) => Err(format!(
            "graphite-web answered {status}, carbide returned {} series",
            got.len()
        )),
    }
}

/// `known_differences.txt`: `target # reason` per line; `#` lines and blank lines ignored.
fn known_differences() -> HashMap<String, String> {
    let text = std::fs::read_to_string(dir().join("known_differences.txt")).unwrap_or_default();
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (t, reason) = l.rsplit_once(" # ").unwrap_or((l, ""));
            assert!(
                !reason.trim().is_empty(),
                "known difference without a reason: {l}"
            );
            (t.trim().to_string(), reason.trim().to_string())
        })
        .collect()
}

/// One replayed entry: golden family, target with its window, and the outcome.
type Outcome = (String, String, Result<(), String>);

/// Every function a target calls.
fn calls(e: &Expr, out: &mut Vec<String>) {
    match e {
        Expr::Call(c) => {
            out.push(c.name.clone());
            c.args.iter().for_each(|a| calls(a, out));
            c.kwargs.iter().for_each(|(_, a)| calls(a, out));
        }
        Expr::SeriesByTag { .. } => out.push("seriesByTag".into()),
        _ => {}
    }
}

/// Replays every golden entry; also returns, per function, how many passing goldens with
/// data (status 200) call it.
fn run_all() -> (Vec<Outcome>, usize, BTreeMap<String, usize>) {
    let src = WhisperFixtures::load();
    let entries = load_entries();
    let n = entries.len();
    let mut verified: BTreeMap<String, usize> = BTreeMap::new();
    let out = entries
        .iter()
        .map(|e| {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| replay(&src, e)))
                .unwrap_or_else(|_| Err("panicked".into()));
            if r.is_ok() && e.status == 200 && !e.partial {
                let vars: Vec<(&str, &str)> = e
                    .vars
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                if let Ok(expr) = parse_with_vars(&e.target, &vars) {
                    let mut names = Vec::new();
                    calls(&expr, &mut names);
                    names.sort();
                    names.dedup();
                    for name in names {
                        *verified.entry(name).or_default() += 1;
                    }
                }
            }
            (
                e.family.clone(),
                format!("{}  [from={} until={}]", e.target, e.from, e.until),
                r,
            )
        })
        .collect();
    (out, n, verified)
}

/// docs/functions.md, generated from graphite-web's function list, carbide's registry and
/// the goldens that pass.
fn functions_doc(verified: &BTreeMap<String, usize>) -> String {
    let gw: Vec<Json> =
        serde_json::from_str(&std::fs::read_to_string(dir().join("functions.json")).unwrap())
            .unwrap();
    let mut rows: BTreeMap<String, (Option<String>, Option<&str>)> = BTreeMap::new();
    for g in &gw {
        rows.insert(
            g["name"].as_str().unwrap().to_string(),
            (g["group"].as_str().map(str::to_string), None),
        );
    }
    for f in graphite::functions::FUNCTIONS {
        rows.entry(f.name.to_string()).or_insert((None, None)).1 = Some(f.group);
    }
    let known = known_differences();
    let in_gw = gw.len();
    let supported = rows
        .values()
        .filter(|r| r.0.is_some() && r.1.is_some())
        .count();
    let verified_gw = rows
        .iter()
        .filter(|(k, r)| r.0.is_some() && r.1.is_some() && verified.contains_key(*k))
        .count();
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Functions\n\n\
         <!-- Generated by `cargo test -p graphite --test conformance` from graphite-web's \
         function list (`graphite/tests/conformance/functions.json`), carbide's registry \
         (`graphite::functions::FUNCTIONS`) and the goldens that pass. Do not edit: run it \
         with `UPDATE_GOLDEN=1` to rewrite. -->\n\n\
         graphite-web 1.1.10 has {in_gw} functions; carbide supports {supported} of them and \
         {} of those are **verified**: at least one recorded graphite-web answer that calls \
         the function (`graphite/tests/conformance/golden/`) is reproduced exactly by \
         `cargo test`. Deliberate differences are listed in \
         `graphite/tests/conformance/known_differences.txt` ({} entries).\n\n\
         | function | group | carbide | verified against graphite-web |\n\
         | --- | --- | --- | --- |",
        verified_gw,
        known.len()
    );
    for (name, (gw_group, ours)) in &rows {
        let group = gw_group.as_deref().or(*ours).unwrap_or("");
        let support = match (gw_group, ours) {
            (Some(_), Some(_)) => "yes",
            (Some(_), None) => "no",
            (None, Some(_)) => "yes (not in graphite-web 1.1.10)",
            (None, None) => unreachable!(),
        };
        let ver = match verified.get(name) {
            Some(n) if ours.is_some() => {
                format!("yes ({n} golden{})", if *n == 1 { "" } else { "s" })
            }
            _ => "no".to_string(),
        };
        let _ = writeln!(md, "| `{name}` | {group} | {support} | {ver} |");
    }
    md
}

#[test]
fn goldens_match_graphite_web() {
    let known = known_differences();
    let (results, n, verified) = run_all();
    assert!(n > 600, "only {n} golden entries found");
    let mut by_function: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut by_family: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut failures = String::new();
    let mut allowed = 0usize;
    let mut known_seen: HashMap<&str, bool> = HashMap::new();
    for (family, what, r) in &results {
        let target = what.split("  [from=").next().unwrap_or(what);
        let func = function_of(target);
        let f = by_function.entry(func.clone()).or_default();
        let fam = by_family.entry(family.clone()).or_default();
        match r {
            Ok(()) => {
                f.0 += 1;
                fam.0 += 1;
                if known.contains_key(target) {
                    known_seen.entry(target).or_insert(false);
                }
            }
            Err(msg) => {
                f.1 += 1;
                fam.1 += 1;
                if known.contains_key(target) {
                    allowed += 1;
                    known_seen.insert(target, true);
                } else {
                    let _ = writeln!(failures, "[{family}] {what}\n    {msg}");
                }
            }
        }
    }
    let pass: usize = by_family.values().map(|v| v.0).sum();
    let fail: usize = by_family.values().map(|v| v.1).sum();
    println!("conformance: {pass} pass / {fail} fail of {n} ({allowed} failures allowlisted)");
    for (k, (p, f)) in &by_family {
        println!("  family {k:14} {p:4} pass {f:4} fail");
    }
    for (k, (p, f)) in by_function.iter().filter(|(_, v)| v.1 > 0) {
        println!("  function {k:30} {p:4} pass {f:4} fail");
    }
    let stale: Vec<&&str> = known_seen
        .iter()
        .filter(|(_, failed)| !**failed)
        .map(|(t, _)| t)
        .collect();
    let unknown: Vec<&String> = known
        .keys()
        .filter(|t| !known_seen.contains_key(t.as_str()))
        .collect();
    if !failures.is_empty() {
        println!("\nmismatches:\n{failures}");
    }
    let doc_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/functions.md");
    let doc = functions_doc(&verified);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&doc_path, &doc).unwrap();
    }
    let committed = std::fs::read_to_string(&doc_path).unwrap_or_default();
    assert!(
        committed == doc,
        "docs/functions.md is stale: rerun with UPDATE_GOLDEN=1 and commit it"
    );
    assert!(
        stale.is_empty(),
        "known_differences.txt lists targets that now match graphite-web: {stale:?}"
    );
    assert!(
        unknown.is_empty(),
        "known_differences.txt lists targets not in any golden: {unknown:?}"
    );
    assert!(
        failures.is_empty(),
        "{} golden(s) differ from graphite-web (see the list above)",
        fail - allowed
    );
}

/// carbide's `/functions` description against graphite-web's (`functions.json`, recorded by
/// `tests/graphite-web/functions_list.py` from the real graphite-web 1.1.10): for every
/// function both have, the same group, aggregator flag and parameters in order — name, type,
/// required, multiple, default and options — so every declared default is graphite-web's.
#[test]
fn functions_description_matches_graphite_web() {
    let gw: Vec<Json> =
        serde_json::from_str(&std::fs::read_to_string(dir().join("functions.json")).unwrap())
            .unwrap();
    let ours = graphite::functions::describe::functions_json();
    let mut diffs = Vec::new();
    let mut shared = 0;
    let mut checked_defaults = 0;
    for g in &gw {
        let name = g["name"].as_str().unwrap();
        let Some(o) = ours.get(name) else { continue };
        shared += 1;
        if o["group"] != g["group"] {
            diffs.push(format!(
                "{name}: group {} vs graphite-web {}",
                o["group"], g["group"]
            ));
        }
        // One parameter as comparable text; a whole float default compares equal to an int
        // one, and a `null` option is left out (graphite-web's "None is allowed", which
        // carbide takes for every optional parameter: not given).
        let param = |p: &Json| -> String {
            let default = match &p["default"] {
                Json::Number(n) => n.as_f64().map_or(n.to_string(), |f| format!("{f}")),
                other => other.to_string(),
            };
            let options = p.get("options").map(|o| {
                let o: Vec<&Json> = o
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|v| !v.is_null())
                    .collect();
                serde_json::to_string(&o).unwrap()
            });
            format!(
                "{}:{}{}{}{}{}",
                p["name"].as_str().unwrap(),
                p["type"].as_str().unwrap(),
                if p["required"] == true { "!" } else { "" },
                if p["multiple"] == true { "*" } else { "" },
                if p.get("default").is_some() {
                    format!("={default}")
                } else {
                    String::new()
                },
                match options {
                    Some(opts) => format!(" in {opts}"),
                    None => String::new(),
                }
            )
        };
        let sig = |ps: &Json| -> Vec<String> { ps.as_array().unwrap().iter().map(param).collect() };
        let (a, b) = (sig(&o["params"]), sig(&g["params"]));
        for k in 0..a.len().max(b.len()) {
            if a.get(k) != b.get(k) {
                diffs.push(format!(
                    "{name}: param {k}: {:?} vs graphite-web {:?}",
                    a.get(k),
                    b.get(k)
                ));
            }
        }
        // What is applied when a call leaves a parameter out: the Python signature's default
        // (`None` = none). Parameters the signature names otherwise (`alignDst` is `alignDST`
        // there) or takes as `*args` are not in it.
        let func = graphite::functions::lookup(name).unwrap();
        let signature = g["signature"].as_array().unwrap();
        for p in func.params {
            let Some(arg) = signature.iter().find(|a| a["name"] == p.name) else {
                continue;
            };
            let py = &arg["default"];
            checked_defaults += 1;
            let ours = p.default.map(|_| {
                graphite::functions::describe::param_json(&graphite::functions::Param {
                    required: false,
                    doc_default: None,
                    ..*p
                })["default"]
                    .clone()
            });
            let same = match (&ours, py) {
                (None, Json::Null) => true,
                (Some(Json::Number(a)), Json::Number(b)) => a.as_f64() == b.as_f64(),
                (Some(a), b) => a == b,
                (None, _) => false,
            };
            if !same {
                diffs.push(format!(
                    "{name}: {} applies default {} vs graphite-web's function {py}",
                    p.name,
                    ours.map_or("none".to_string(), |d| d.to_string()),
                ));
            }
        }
    }
    println!(
        "{shared} functions shared with graphite-web ({checked_defaults} parameters in both \
         signatures), {} differences",
        diffs.len()
    );
    for d in &diffs {
        println!("  {d}");
    }
    assert!(shared > 120, "only {shared} shared functions");
    assert!(
        checked_defaults > 250,
        "only {checked_defaults} parameters checked"
    );
    assert!(
        diffs.is_empty(),
        "{} description differences from graphite-web (see the list above)",
        diffs.len()
    );
}

/// The keys of the `"tags":{...}` object on one series line of a golden file, in the order
/// graphite-web wrote them (serde_json's map would sort them).
fn raw_tag_keys(line: &str) -> Vec<String> {
    let Some(start) = line.find("\"tags\":{") else {
        return Vec::new();
    };
    let b = &line.as_bytes()[start + 8..];
    let (mut i, mut keys, mut is_key) = (0, Vec::new(), true);
    while i < b.len() && b[i] != b'}' {
        if b[i] == b'"' {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            if is_key {
                keys.push(serde_json::from_slice::<String>(&b[i..=j]).unwrap());
            }
            is_key = !is_key;
            i = j + 1;
        } else {
            i += 1;
        }
    }
    keys
}

/// graphite-web writes a series' tags in its dict's insertion order; `graphite::tags::json_order`
/// must give the same order (the replays above compare tags as maps).
#[test]
fn tag_order_matches_graphite_web() {
    let src = WhisperFixtures::load();
    let mut checked = 0;
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir().join("golden"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for path in files {
        let family = path.file_stem().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(path).unwrap();
        let mut series_lines = text.lines().filter(|l| l.starts_with("  {\"target\""));
        let entries: Json = serde_json::from_str(&text).unwrap();
        for e in entries.as_array().unwrap() {
            let Some(body) = e["body"].as_array() else {
                continue;
            };
            let lines: Vec<&str> = series_lines.by_ref().take(body.len()).collect();
            if e["status"] != 200 || e.get("params").is_some() {
                continue;
            }
            let target = e["target"].as_str().unwrap();
            let Ok(expr) = parse_with_vars(target, &[]) else {
                continue;
            };
            let tz = TimeZone::utc();
            let from = parse_time(e["from"].as_str().unwrap(), src.now, &tz).unwrap();
            let until = parse_time(e["until"].as_str().unwrap(), src.now, &tz).unwrap();
            let Ok((from, until)) = request_window(from, until) else {
                continue;
            };
            let Ok(got) = render(&[expr], from, until, src.now, &src) else {
                continue;
            };
            if got.len() != lines.len() {
                continue;
            }
            for (s, line) in got.iter().zip(&lines) {
                let ours: Vec<String> = graphite::tags::json_order(&s.name, &s.tags)
                    .into_iter()
                    .map(|(k, _)| k)
                    .collect();
                let want = raw_tag_keys(line);
                // Tag values are compared by the replay; a set that differs is its failure.
                if ours.len() == want.len() {
                    assert_eq!(ours, want, "[{family}] {target}: tag order of {}", s.name);
                    checked += 1;
                }
            }
        }
    }
    eprintln!("tag order checked for {checked} series");
    assert!(checked > 100, "only {checked} series checked");
}

/// The static check `alerter check` uses (`graphite::functions::check_target`: parse, known
/// functions, signatures) accepts every target graphite-web rendered with 200: no false
/// positives over the corpus.
#[test]
fn check_target_accepts_every_rendered_target() {
    let known = known_differences();
    let mut checked = 0;
    let mut rejected = Vec::new();
    for e in load_entries() {
        if e.status != 200 || e.partial || e.target.trim().is_empty() || !e.vars.is_empty() {
            continue;
        }
        if known.contains_key(&e.target) {
            continue; // carbide deliberately errors there (listed with the reason)
        }
        checked += 1;
        if let Err(err) = graphite::functions::check_target(&e.target) {
            rejected.push(format!("{}: {err}", e.target));
        }
    }
    assert!(rejected.is_empty(), "rejected:\n{}", rejected.join("\n"));
    assert!(checked > 200, "only {checked} targets checked");
    println!("check_target accepted all {checked} rendered targets");
}
