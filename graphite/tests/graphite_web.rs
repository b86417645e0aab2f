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
//! must contain). Values are numbers, `null`, or "nan"/"inf"/"-inf". Every run also checks
//! that the source's series were not mutated.
//!
//! Names in parentheses ("test_groupByNode (plain name)") are carbide's cases beside
//! graphite-web's of that name; what was adapted and what is not ported is listed in
//! `graphite/src/functions/vectors.rs`, whose carbide-specific tests stay in the crate.

use std::collections::BTreeMap;

use graphite::eval::{render, MemorySource};
use graphite::series::Series;
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
    if let Some(digits) = v.get("round").and_then(Json::as_i64) {
        let k = 10f64.powi(digits as i32);
        for s in &mut out {
            for x in s.values.iter_mut().flatten() {
                *x = (*x * k).round() / k;
            }
        }
    }
    let want = v["want"]
        .as_array()
        .ok_or("want: not an array")?
        .iter()
        .map(series)
        .collect::<Result<Vec<_>, _>>()?;
    let names = |s: &[Series]| s.iter().map(|s| s.name.clone()).collect::<Vec<_>>();
    if names(&out) != names(&want) {
        return Err(format!(
            "names differ: got {:?}, want {:?}",
            names(&out),
            names(&want)
        ));
    }
    for (g, w) in out.iter().zip(&want) {
        if (g.start, g.end, g.step) != (w.start, w.end, w.step) {
            return Err(format!(
                "{}: start/end/step {:?}, want {:?}",
                g.name,
                (g.start, g.end, g.step),
                (w.start, w.end, w.step)
            ));
        }
        let equal = g.values.len() == w.values.len()
            && g.values.iter().zip(&w.values).all(|(a, b)| same(*a, *b));
        if !equal {
            return Err(format!(
                "{}: values {:?}, want {:?}",
                g.name, g.values, w.values
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
