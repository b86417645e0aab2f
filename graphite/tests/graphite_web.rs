//! graphite-web 1.1.10's function test vectors (`webapp/tests/test_functions.py`, Copyright
//! 2008 Orbitz WorldWide and contributors, Apache-2.0), as data: `graphite_web_vectors.jsonl`,
//! one vector per line, run by this one loop. There is one test per graphite-web test name,
//! so `cargo test -p graphite --test graphite_web test_sumSeries` runs that one's vectors.
//!
//! A vector: `test` (graphite-web's test name), `target` (Graphite text, through the real
//! parser), the request window `from`/`until`, the input series `data` (each fetched by its
//! own path, so path expressions equal names as in graphite-web's tests; whisper alignment:
//! the first point is one step after `from`), and either `want` (the output series in order:
//! name, start, end, step, values; compared null-aware within 1e-9 relative, after rounding
//! to `round` decimals when given, as graphite-web's test rounds) or `error` (text the error
//! must contain), or `same_as` (another target whose answer over the same data this one's
//! must equal in every field). A `want` series may leave out what its test does not check:
//! `start`/`end`/`step` (all three or none) and `values`; it may add the attributes
//! `consolidation` (graphite-web's `consolidationFunc`) and `xFilesFactor`. Values are
//! numbers, `null`, or "nan"/"inf"/"-inf". Every run also checks that the source's series
//! were not mutated.
//!
//! Names in parentheses ("test_groupByNode (plain name)") are carbide's cases beside
//! graphite-web's of that name; names starting `carbide:` are carbide's own end-to-end
//! examples (targets from the issues, functions graphite-web's tests leave out).
//!
//! Adapted cases differ from graphite-web's vector only where its test relies on something a
//! real render does not do (a mocked fetch returning points outside the window or with other
//! values, Python ints where fetched data is float, mocked path expressions, parameter
//! validation that graphite-web 1.1.10 leaves off); the conformance goldens decide those.
//!
//! Not ported: tests of internal helpers (safe*, gcd/lcm, xffValues, normalize, matchSeries,
//! formatPathExpressions, _getPercentile); smartSummarize alignTo_* and hitcount 1day/1hour/
//! 1minute (graphite-web mocks the aligned re-fetch to start exactly at the aligned start,
//! a whisper fetch starts one step later, so every bucket differs; covered by the
//! conformance goldens in summarize.json); holtWintersForecast (its mock yields no values);
//! exponentialMovingAverage string/half_none (the mock returns the request series as its own
//! widened re-fetch); timeShift_resetEnd_False (needs a fetch returning points past the
//! window); randomWalk (mocks random); tag functions (mocked tag DB); graph options (color,
//! alpha, dashed, lineWidth, secondYAxis, drawAsInfinite, verticalLine: options are not
//! rendered as data); weightedAverage mismatched/empty lists; perSecond's 60**256 point.

use std::collections::BTreeMap;

use graphite::eval::{render, MemorySource};
use graphite::series::{Consolidation, Series};
use libtest_mimic::{Arguments, Failed, Trial};
use serde_json::Value as Json;

const VECTORS: &str = include_str!("graphite_web_vectors.jsonl");

fn values(v: &Json) -> Result<Vec<Option<f64>>, String> {
    v.as_array()
        .ok_or("values: not an array")?
        .iter()
        .map(|x| match x {
            Json::Null => Ok(None),
            Json::Number(n) => n.as_f64().map(Some).ok_or(format!("bad number {n}")),
            Json::String(s) => match s.as_str() {
                "nan" => Ok(Some(f64::NAN)),
                "inf" => Ok(Some(f64::INFINITY)),
                "-inf" => Ok(Some(f64::NEG_INFINITY)),
                other => Err(format!("bad value {other:?}")),
            },
            other => Err(format!("bad value {other}")),
        })
        .collect()
}

fn int(v: &Json, key: &str) -> Result<i64, String> {
    v[key].as_i64().ok_or(format!("{key}: not an integer"))
}

fn series(v: &Json) -> Result<Series, String> {
    Ok(Series::new(
        v["name"].as_str().ok_or("name: not a string")?,
        int(v, "start")?,
        int(v, "end")?,
        int(v, "step")?,
        values(&v["values"])?,
    ))
}

fn same(got: Option<f64>, want: Option<f64>) -> bool {
    match (got, want) {
        (None, None) => true,
        (Some(g), Some(w)) => {
            g == w || (g.is_nan() && w.is_nan()) || (g - w).abs() <= 1e-9 * w.abs().max(g.abs())
        }
        _ => false,
    }
}

/// Runs one vector; the error says what differs.
fn run(v: &Json) -> Result<(), String> {
    let target = v["target"].as_str().ok_or("target: not a string")?;
    let data = v["data"]
        .as_array()
        .ok_or("data: not an array")?
        .iter()
        .map(series)
        .collect::<Result<Vec<_>, _>>()?;
    let (from, until) = (int(v, "from")?, int(v, "until")?);
    let expr = graphite::expr::parse(target).map_err(|e| format!("does not parse: {e}"))?;
    let src = MemorySource::new(data);
    let before = format!("{src:?}");
    let out = render(&[expr], from, until, until, &src);
    if format!("{src:?}") != before {
        return Err("the source's series were mutated".into());
    }
    if let Some(needle) = v.get("error") {
        let needle = needle.as_str().ok_or("error: not a string")?;
        return match out {
            Err(e) if e.to_string().contains(needle) => Ok(()),
            Err(e) => Err(format!("error {e:?} does not contain {needle:?}")),
            Ok(s) => Err(format!("expected an error, got {} series", s.len())),
        };
    }
    let mut out = out.map_err(|e| format!("evaluation failed: {e}"))?;
    if let Some(other) = v.get("same_as") {
        let other = other.as_str().ok_or("same_as: not a string")?;
        let expr = graphite::expr::parse(other).map_err(|e| format!("same_as: {e}"))?;
        let want = render(&[expr], from, until, until, &src)
            .map_err(|e| format!("same_as {other:?} failed: {e}"))?;
        return if format!("{out:?}") == format!("{want:?}") {
            Ok(())
        } else {
            Err(format!("differs from {other:?}: {out:?}\nwant {want:?}"))
        };
    }
    if let Some(digits) = v.get("round").and_then(Json::as_i64) {
        let k = 10f64.powi(digits as i32);
        for s in &mut out {
            for x in s.values.iter_mut().flatten() {
                *x = (*x * k).round() / k;
            }
        }
    }
    let want = v["want"].as_array().ok_or("want: not an array")?;
    let names = out.iter().map(|s| s.name.as_str()).collect::<Vec<_>>();
    let want_names = want
        .iter()
        .map(|w| w["name"].as_str().ok_or("want: a name is not a string"))
        .collect::<Result<Vec<_>, _>>()?;
    if names != want_names {
        return Err(format!("names differ: got {names:?}, want {want_names:?}"));
    }
    for (g, w) in out.iter().zip(want) {
        check_series(g, w)?;
    }
    Ok(())
}

/// Compares what `want` states of one output series (see the module docs).
fn check_series(g: &Series, w: &Json) -> Result<(), String> {
    if w.get("step").is_some() {
        let times = (int(w, "start")?, int(w, "end")?, int(w, "step")?);
        if (g.start, g.end, g.step) != times {
            return Err(format!(
                "{}: start/end/step {:?}, want {times:?}",
                g.name,
                (g.start, g.end, g.step)
            ));
        }
    }
    if let Some(want) = w.get("values") {
        let want = values(want)?;
        let equal =
            g.values.len() == want.len() && g.values.iter().zip(&want).all(|(a, b)| same(*a, *b));
        if !equal {
            return Err(format!("{}: values {:?}, want {want:?}", g.name, g.values));
        }
    }
    if let Some(func) = w.get("consolidation") {
        let func = func.as_str().ok_or("consolidation: not a string")?;
        let want = Consolidation::parse(func).ok_or(format!("consolidation {func:?}?"))?;
        if g.consolidation != want {
            return Err(format!(
                "{}: consolidation {:?}, want {want:?}",
                g.name, g.consolidation
            ));
        }
    }
    if let Some(xff) = w.get("xFilesFactor") {
        let xff = xff.as_f64().ok_or("xFilesFactor: not a number")?;
        if g.x_files_factor != xff {
            return Err(format!(
                "{}: xFilesFactor {}, want {xff}",
                g.name, g.x_files_factor
            ));
        }
    }
    Ok(())
}

fn main() {
    let args = Arguments::from_args();
    let mut by_test: BTreeMap<String, Vec<Json>> = BTreeMap::new();
    for (n, line) in VECTORS.lines().enumerate() {
        let v: Json = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("graphite_web_vectors.jsonl:{}: {e}", n + 1));
        let test = v["test"].as_str().unwrap_or("(unnamed)").to_string();
        by_test.entry(test).or_default().push(v);
    }
    assert!(by_test.len() > 200, "only {} tests", by_test.len());
    let trials = by_test
        .into_iter()
        .map(|(test, vectors)| {
            Trial::test(test, move || {
                let failures: Vec<String> = vectors
                    .iter()
                    .filter_map(|v| run(v).err().map(|e| format!("`{}`: {e}", v["target"])))
                    .collect();
                if failures.is_empty() {
                    Ok(())
                } else {
                    Err(Failed::from(failures.join("\n")))
                }
            })
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}
