//! graphite-web 1.1.10's recorded conformance data (`graphite/tests/conformance/`) as the
//! HTTP tests replay it: the fixtures as carbon lines, carbon's schemas of the recording, the
//! goldens to skip over HTTP, the request of an entry and the comparison of answers. Used by
//! `tests/http_conformance.rs` (one node) and `tests/cluster.rs` (graphite-web over three).
#![allow(dead_code)]

use std::fmt::Write as _;
use std::path::PathBuf;

use serde_json::Value as Json;

use super::enc;

/// The recorded data: fixtures, goldens, known differences.
pub fn conformance_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("graphite/tests/conformance")
}

/// carbon's schemas of the fixtures, as the recording had them.
pub const SCHEMAS: &str = "\
[multi]
pattern = ^multi\\.
retentions = 10s:6h,60s:2d,600s:7d

[stats]
pattern = ^stats\\.
retentions = 60s:10d

[default]
pattern = .*
retentions = 10s:2d
";

/// The fixtures as carbon lines: every archive's known points, coarse archives only where no
/// finer archive reaches (the store rolls finer points up itself, as whisper did).
pub fn fixture_lines(f: &Json, now: i64) -> String {
    let mut out = String::new();
    for (path, file) in f["series"].as_object().unwrap() {
        let archives = file["archives"].as_array().unwrap();
        for (i, a) in archives.iter().enumerate().rev() {
            let step = a["step"].as_i64().unwrap();
            let start = a["data_start"].as_i64().unwrap();
            let finer = if i == 0 {
                None
            } else {
                Some(archives[i - 1]["retention"].as_i64().unwrap())
            };
            for (k, v) in a["values"].as_array().unwrap().iter().enumerate() {
                let Some(v) = v.as_f64() else { continue };
                let ts = start + k as i64 * step;
                if finer.is_some_and(|r| now - ts <= r) {
                    // The slot straddling the finer archive's edge: whisper stored a finer
                    // point at exactly `now - retention` and rolled it up, but its fetch
                    // (which starts one step later) did not record it. Recover that point
                    // from the recorded average.
                    if let Some(x) = edge_point(&archives[i - 1], ts, step, v) {
                        let _ = writeln!(
                            out,
                            "{} {} {ts}",
                            respelled(path),
                            graphite::series::py_float(x.1)
                        );
                    }
                    continue;
                }
                let _ = writeln!(
                    out,
                    "{} {} {ts}",
                    respelled(path),
                    graphite::series::py_float(v)
                );
            }
        }
    }
    out
}

/// For a coarse slot `[ts, ts + step)` holding the average `avg` of the finer archive's
/// points, of which exactly the first was not recorded: `(ts, that point)`.
/// A tagged fixture name with its tags in reverse order (`m;a=1;b=2` → `m;b=2;a=1`): the
/// store must file it under the canonical name graphite-web recorded.
fn respelled(path: &str) -> String {
    let mut parts: Vec<&str> = path.split(';').collect();
    parts[1..].reverse();
    parts.join(";")
}

fn edge_point(finer: &Json, ts: i64, step: i64, avg: f64) -> Option<(i64, f64)> {
    let fstep = finer["step"].as_i64()?;
    let fstart = finer["data_start"].as_i64()?;
    if fstart - ts != fstep {
        return None;
    }
    let vals = finer["values"].as_array()?;
    let n = (step / fstep) as usize;
    let known: Option<Vec<f64>> = vals.iter().take(n - 1).map(Json::as_f64).collect();
    let known = known?;
    (known.len() == n - 1).then(|| (ts, avg * n as f64 - known.iter().sum::<f64>()))
}

fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

/// Structural equality, numbers within 1e-9 relative, object key order ignored.
pub fn same(got: &Json, want: &Json, at: &str) -> Result<(), String> {
    match (got, want) {
        (Json::Number(g), Json::Number(w)) => {
            let (g, w) = (g.as_f64().unwrap(), w.as_f64().unwrap());
            close(g, w)
                .then_some(())
                .ok_or(format!("{at}: got {g}, want {w}"))
        }
        (Json::Array(g), Json::Array(w)) => {
            if g.len() != w.len() {
                return Err(format!("{at}: {} items, want {}", g.len(), w.len()));
            }
            g.iter()
                .zip(w)
                .enumerate()
                .try_for_each(|(i, (g, w))| same(g, w, &format!("{at}[{i}]")))
        }
        (Json::Object(g), Json::Object(w)) => {
            let gk: Vec<&String> = g.keys().collect();
            let wk: Vec<&String> = w.keys().collect();
            if gk != wk {
                return Err(format!("{at}: keys {gk:?}, want {wk:?}"));
            }
            g.iter()
                .try_for_each(|(k, v)| same(v, &w[k], &format!("{at}.{k}")))
        }
        (g, w) if g == w => Ok(()),
        (g, w) => Err(format!("{at}: got {g}, want {w}")),
    }
}

pub fn known_differences() -> Vec<String> {
    std::fs::read_to_string(conformance_dir().join("known_differences.txt"))
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            l.rsplit_once(" # ")
                .map_or(l, |(t, _)| t)
                .trim()
                .to_string()
        })
        .collect()
}

/// Targets the HTTP replays skip: `known_differences.txt` (deliberate evaluator differences,
/// covered in-process), targets reading `special.allnull`, also through `special.*` (a whisper
/// file with no points exists for graphite-web; a series that never received a point does not
/// exist in carbide), `verticalLine` without a label (graphite-web writes the Python `None`
/// name as `null`; carbide's names are strings, "None").
pub fn skipped(target: &str, known: &[String]) -> bool {
    known.iter().any(|s| s == target)
        || target.contains("allnull")
        || target.contains("special.*")
        || target.starts_with("verticalLine(")
}

/// The golden files, sorted, each as (family, entries).
pub fn goldens() -> Vec<(String, Vec<Json>)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(conformance_dir().join("golden"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|f| {
            let family = f.file_stem().unwrap().to_string_lossy().into_owned();
            let entries: Json =
                serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
            (family, entries.as_array().unwrap().clone())
        })
        .collect()
}

/// An entry's render request (`format=json`, the recorded `from`/`until`, `now` and params).
pub fn request(e: &Json, now: i64) -> String {
    let mut q = format!(
        "/render?format=json&now={now}&target={}&from={}&until={}",
        enc(e["target"].as_str().unwrap()),
        enc(e["from"].as_str().unwrap()),
        enc(e["until"].as_str().unwrap())
    );
    if let Some(params) = e.get("params").and_then(Json::as_object) {
        for (k, v) in params {
            let _ = write!(q, "&{}={}", enc(k), enc(v.as_str().unwrap_or("")));
        }
    }
    q
}

/// carbide's answer (`status`, `body`) against the entry's recorded one: a 200 body equal to
/// graphite-web's by [`same`], graphite-web's errors errors, and a 400 where graphite-web
/// rendered what it parsed of a malformed target (a partial parse).
pub fn check(e: &Json, status: u16, body: &str) -> Result<(), String> {
    check_as(e, status, body, true)
}

/// graphite-web's own answer (as a cluster front end) against the one it recorded: partial
/// parses included, as recorded.
pub fn check_graphite_web(e: &Json, status: u16, body: &str) -> Result<(), String> {
    check_as(e, status, body, false)
}

fn check_as(e: &Json, status: u16, body: &str, carbide: bool) -> Result<(), String> {
    let want_status = e["status"].as_i64().unwrap();
    let partial = carbide && e.get("graphite_partial_parse").is_some();
    match (want_status, status) {
        _ if partial => (status == 400)
            .then_some(())
            .ok_or(format!("partial parse must be a 400, got {status}")),
        (200, 200) => serde_json::from_str::<Json>(body)
            .map_err(|e| format!("not JSON: {e}"))
            .and_then(|got| same(&got, &e["body"], "body")),
        (200, s) => Err(format!("answered {s}: {body}")),
        (_, s) if s >= 400 => Ok(()),
        (w, s) => Err(format!("graphite-web answered {w}, this {s}")),
    }
}
