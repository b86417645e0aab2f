//! Every function of the registry, called with extreme arguments built from its typed
//! signature (negative, zero, huge, reversed windows, hostile regexes, generators as input,
//! nesting and pipes as deep as the parser allows), evaluated through `eval::render_with`
//! over a `MemorySource` under a small budget, each render on a thread with a 2 MiB stack
//! (what tokio's blocking threads get):
//! - it returns series or a clean `EvalError` — never a panic, a stack overflow or an abort;
//! - the budget's high-water mark stays within its limit;
//! - the bytes the render really allocated (a counting allocator, per thread) stay within
//!   the budget × the documented bytes per point, plus the name budget and a fixed slack.
//!
//! Generated from `FUNCTIONS`: a new function is covered without editing this file.
//! `HOSTILE_VERBOSE=1` prints each target before it runs (to find the one that aborts).

mod budget_kit;

use std::time::Duration;

use budget_kit::{byte_limit, peak_of, BYTES_PER_POINT};
use graphite::eval::{render_with, Budget, EvalError, MemorySource};
use graphite::functions::{ParamType, FUNCTIONS};
use graphite::series::Series;

/// The budget every hostile render gets.
const MAX_POINTS: u64 = 200_000;
const MAX_NAME_BYTES: u64 = 1 << 20;

const STEP: i64 = 60;
const DAY: i64 = 86_400;

fn source() -> MemorySource {
    let n = (DAY / STEP) as usize;
    let mk = |name: &str, f: &dyn Fn(usize) -> Option<f64>| {
        Series::new(name, 0, DAY, STEP, (0..n).map(f).collect())
    };
    MemorySource::new(vec![
        mk("a.b", &|i| Some(i as f64)),
        mk("a.c", &|i| (i % 3 != 0).then_some((i % 17) as f64 - 8.0)),
        mk("a.d", &|_| None),
        mk("a.e.f", &|i| Some(((i as f64) / 10.0).sin())),
        mk("cpu;host=h1;dc=x", &|i| Some((i % 100) as f64)),
        mk("cpu;host=h2;dc=y", &|i| Some((i % 7) as f64)),
    ])
}

/// Extreme values of a parameter type, as target text.
fn extremes(ty: ParamType) -> &'static [&'static str] {
    use ParamType as T;
    match ty {
        T::SeriesList | T::SeriesLists => &[
            "a.*",
            "nope.*",
            "sin('g',1,1)",
            "time('t',1)",
            "identity('i')",
            "movingAverage(a.b,1)",
            "a.b|scale(2)|offset(1)|movingSum(3)",
            "seriesByTag('name=cpu')",
            "group(a.*,a.*,a.*,a.*)",
            "aliasSub(a.b,'(.*)','\\1\\1\\1\\1\\1\\1\\1\\1')",
            "timeShift(a.b,'-30d')",
        ],
        T::Int => &[
            "0",
            "-1",
            "-1000000000",
            "2147483647",
            "9223372036854775807",
        ],
        T::Float => &["0", "-1e308", "1e308", "inf", "-inf", "0.5"],
        T::IntOrInf => &["0", "-1", "inf", "2147483647"],
        T::Bool => &["true", "false"],
        T::Node => &["0", "-1", "1000", "-1000"],
        T::NodeOrTag => &["0", "-1000", "'name'", "'host'", "'nosuch'"],
        T::String => &[
            "''",
            "'(.*)'",
            "'\\1\\1\\1\\1\\1\\1\\1\\1\\1\\1'",
            "'%'",
            "'sumSeries(%.*)'",
            "'(a+)+$'",
            "'((((((((((x))))))))))'",
            "'a{1000}{1000}'",
            "'['",
        ],
        T::Interval => &["'1s'", "'-30d'", "'1000y'", "'-1s'", "'0s'", "'1min'"],
        T::IntOrInterval => &[
            "0",
            "-1000000000",
            "1000000000",
            "'1s'",
            "'-30d'",
            "'1000y'",
        ],
        T::AggFunc => &["'sum'", "'median'", "'multiply'", "'last'", "'stddev'"],
        T::AggOrSeriesFunc => &["'sumSeries'", "'median'", "'diff'"],
        T::Any => &["1", "'x'", "a.b", "-1"],
        T::Date => &["'-1000y'", "'now'", "'20991231'", "'-1s'", "'19700101'"],
        T::Tag => &["'name'", "'host'", "''"],
    }
}

/// An ordinary value of a parameter type.
fn normal(ty: ParamType, options: &[&str]) -> String {
    use ParamType as T;
    if let Some(o) = options.first() {
        return format!("'{o}'");
    }
    match ty {
        T::SeriesList | T::SeriesLists => "a.*",
        T::Int | T::IntOrInf => "2",
        T::Float => "1.5",
        T::Bool => "false",
        T::Node | T::NodeOrTag => "0",
        T::String => "'x'",
        T::Interval => "'5min'",
        T::IntOrInterval => "3",
        T::AggFunc | T::AggOrSeriesFunc => "'sum'",
        T::Any => "1",
        T::Date => "'-1h'",
        T::Tag => "'name'",
    }
    .to_string()
}

/// The targets for one function: its required arguments, then each parameter in turn set to
/// each extreme value, then nesting and pipes.
fn targets(f: &graphite::functions::Function) -> Vec<String> {
    let params = f.params;
    let normals: Vec<String> = params.iter().map(|p| normal(p.ty, p.options)).collect();
    let required = params.iter().take_while(|p| p.required).count().max(1);
    let call = |args: &[String]| format!("{}({})", f.name, args.join(","));
    let base: Vec<String> = normals
        .iter()
        .take(required.min(params.len()))
        .cloned()
        .collect();
    let mut out = vec![call(&base)];
    for (i, p) in params.iter().enumerate() {
        let values: Vec<String> = if p.options.is_empty() {
            extremes(p.ty).iter().map(|v| v.to_string()).collect()
        } else {
            p.options.iter().map(|o| format!("'{o}'")).collect()
        };
        for v in values {
            let mut args: Vec<String> = normals[..i].to_vec();
            args.push(v);
            out.push(call(&args));
            if p.multiple {
                // many of them
                let mut args: Vec<String> = normals[..i].to_vec();
                args.extend(std::iter::repeat_n(
                    args.last().cloned().unwrap_or_default(),
                    50,
                ));
                out.push(call(&args));
            }
        }
    }
    if params
        .first()
        .is_some_and(|p| matches!(p.ty, ParamType::SeriesList | ParamType::SeriesLists))
    {
        let rest: Vec<String> = normals[1..required.min(params.len())].to_vec();
        let wrap = |inner: String| {
            let mut args = vec![inner];
            args.extend(rest.iter().cloned());
            call(&args)
        };
        // nested in itself
        let mut nested = "a.*".to_string();
        for _ in 0..graphite::expr::parse::MAX_DEPTH {
            nested = wrap(nested);
        }
        out.push(nested);
        // piped into itself (the parser's depth limit counts pipes)
        let piece = format!("|{}({})", f.name, rest.join(","));
        out.push(format!(
            "a.*{}",
            piece.repeat(graphite::expr::parse::MAX_DEPTH)
        ));
        out.push(format!("a.*{}", piece.repeat(3000)));
        // over each window-re-evaluating wrapper
        for w in [
            "movingAverage({},1)",
            "timeStack({},'1min',0,20)",
            "holtWintersForecast({},'1d')",
        ] {
            out.push(w.replace("{}", &wrap("a.*".into())));
        }
    }
    out
}

#[derive(Debug)]
enum Outcome {
    Ok,
    Refused(EvalError),
    Unparsed,
    Panicked(String),
}

/// Renders `target` on a fresh 2 MiB-stack thread; returns what happened, the budget's
/// high-water mark and the peak bytes the thread allocated.
fn run(src: &MemorySource, target: &str, from: i64, until: i64) -> (Outcome, u64, i64) {
    run_with(src, target, from, until, MAX_POINTS)
}

fn run_with(
    src: &MemorySource,
    target: &str,
    from: i64,
    until: i64,
    max_points: u64,
) -> (Outcome, u64, i64) {
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name(target.chars().take(60).collect())
            .stack_size(2 << 20)
            .spawn_scoped(scope, || {
                let Ok(expr) = graphite::expr::parse(target) else {
                    return (Outcome::Unparsed, 0, 0);
                };
                let budget = Budget::new()
                    .with_max_points(max_points)
                    .with_max_name_bytes(MAX_NAME_BYTES)
                    .with_timeout(Duration::from_secs(20));
                let (outcome, peak) =
                    peak_of(
                        || match render_with(&[expr], from, until, until, src, &budget) {
                            Ok(_) => Outcome::Ok,
                            Err(e) => Outcome::Refused(e),
                        },
                    );
                (outcome, budget.high_water(), peak)
            })
            .expect("spawn")
            .join()
            .unwrap_or_else(|e| {
                let msg = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                (Outcome::Panicked(msg), 0, 0)
            })
    })
}

#[test]
fn every_function_survives_extreme_arguments() {
    let src = source();
    let verbose = std::env::var_os("HOSTILE_VERBOSE").is_some();
    let limit = byte_limit(MAX_POINTS, MAX_NAME_BYTES);
    let mut failures = Vec::new();
    let (mut ok, mut refused, mut unparsed) = (0, 0, 0);
    let mut refusals: std::collections::BTreeMap<String, usize> = Default::default();
    for f in FUNCTIONS {
        for (k, target) in targets(f).into_iter().enumerate() {
            // The first target of each function also runs over ten years.
            let windows: &[(i64, i64)] = if k == 0 {
                &[(0, DAY), (DAY - 3600, DAY), (0, 10 * 365 * DAY)]
            } else {
                &[(0, DAY)]
            };
            for &(from, until) in windows {
                if verbose {
                    eprintln!("{from}..{until} {target}");
                }
                let (outcome, high, peak) = run(&src, &target, from, until);
                match &outcome {
                    Outcome::Ok => ok += 1,
                    Outcome::Unparsed => unparsed += 1,
                    Outcome::Panicked(m) => failures.push(format!("{target}: panicked: {m}")),
                    Outcome::Refused(e) => {
                        refused += 1;
                        let kind = format!("{e:?}");
                        let kind = kind.split([' ', '(', '{']).next().unwrap_or("").to_string();
                        *refusals.entry(kind).or_default() += 1;
                        if matches!(e, EvalError::NeedData(_)) {
                            failures.push(format!("{target}: leaked NeedData: {e}"));
                        }
                    }
                }
                if high > MAX_POINTS {
                    failures.push(format!("{target}: high-water {high} > {MAX_POINTS}"));
                }
                if peak > limit {
                    failures.push(format!(
                        "{target} ({from}..{until}): allocated {peak} bytes at peak, over the \
                         {limit} a budget of {MAX_POINTS} points allows ({outcome:?})"
                    ));
                }
            }
        }
    }
    eprintln!(
        "hostile_eval: {} functions, {ok} ok, {refused} refused {refusals:?}, {unparsed} \
         rejected by the parser",
        FUNCTIONS.len()
    );
    assert!(
        ok > 1000,
        "too few renders succeeded ({ok}): the generator is broken"
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The examples of issue 15, each refused cleanly or answered within the budget.
#[test]
fn issue_examples_are_bounded() {
    let src = source();
    let big = format!(
        "aliasSub(aliasSub(aliasSub(a.b,'(.*)','{r}'),'(.*)','{r}'),'(.*)','{r}')",
        r = "\\1".repeat(50)
    );
    let nested_ma = (0..60).fold("a.b".to_string(), |t, _| format!("movingAverage({t},1)"));
    let nested_ts = (0..6).fold("a.b".to_string(), |t, _| {
        format!("timeStack({t},'1min',0,10)")
    });
    let cases: &[(&str, i64, i64)] = &[
        ("time('t',1)", 0, 1 << 40),
        ("identity('i')", 0, 1 << 40),
        ("sin('s',1,1)", 0, 1 << 40),
        ("movingAverage(constantLine(1),-1000000000)", 0, DAY),
        ("sumSeries(sin('a',1,1),sin('b',1,2147483647))", 0, DAY),
        ("summarize(a.*,'1s')", 0, 69 * DAY),
        ("holtWintersForecast(a.b,'-30d')", 0, DAY),
        ("timeStack(a.b,'1s',0,1000)", 0, DAY),
        (&big, 0, DAY),
        (&nested_ma, 0, DAY),
        (&nested_ts, 0, DAY),
        ("hitcount(a.b,'1s')", 0, 10 * 365 * DAY),
        ("nPercentile(summarize(a.b,'1s'),50)", 0, DAY),
    ];
    for (target, from, until) in cases {
        let (outcome, high, peak) = run(&src, target, *from, *until);
        assert!(high <= MAX_POINTS, "{target}: high-water {high}");
        assert!(
            peak < byte_limit(MAX_POINTS, MAX_NAME_BYTES),
            "{target}: {peak} bytes"
        );
        match outcome {
            Outcome::Ok => {}
            Outcome::Refused(e) => assert!(
                matches!(e, EvalError::OverBudget { .. } | EvalError::Input { .. }),
                "{target}: {e}"
            ),
            Outcome::Unparsed => panic!("{target}: does not parse"),
            Outcome::Panicked(m) => panic!("{target}: panicked: {m}"),
        }
    }
}

/// What one budget point costs in memory, for a typical render (docs/limits.md quotes it):
/// peak bytes the render allocated ÷ the budget's high-water mark.
#[test]
fn bytes_per_point_of_a_typical_render() {
    let n = (DAY / STEP) as usize;
    let series: Vec<Series> = (0..100)
        .map(|h| {
            let v = (0..n).map(|i| Some(((i * h) % 97) as f64)).collect();
            Series::new(format!("servers.web{h:03}.cpu.user"), 0, DAY, STEP, v)
        })
        .collect();
    let src = MemorySource::new(series);
    let mut worst = 0f64;
    for target in [
        "servers.*.cpu.user",
        "sumSeries(servers.*.cpu.user)",
        "aliasByNode(movingAverage(servers.*.cpu.user,10),1)",
        "highestMax(scale(servers.*.cpu.user,2),5)",
        "summarize(servers.*.cpu.user,'10min','max')",
    ] {
        let (outcome, high, peak) = run_with(&src, target, 0, DAY, 10_000_000);
        assert!(matches!(outcome, Outcome::Ok), "{target}: {outcome:?}");
        let per = peak as f64 / high as f64;
        eprintln!("{target}: {peak} bytes at peak, {high} points charged: {per:.1} bytes/point");
        worst = worst.max(per);
    }
    eprintln!("bytes per point, worst of the typical renders: {worst:.1}");
    assert!(worst < BYTES_PER_POINT as f64, "{worst} bytes per point");
}

/// Every registered function, called with a spread of odd arguments whatever its signature
/// says (none, wrong types, negative, huge, a regex that does not compile, a missing path) over
/// odd data (nulls, two steps, an all-null series, a series shorter than its window), returns
/// series or an error — never a panic.
#[test]
fn no_function_panics_on_odd_arguments() {
    let ser = |name: &str, step: i64, values: &[Option<f64>]| {
        Series::new(name, 0, values.len() as i64 * step, step, values.to_vec())
    };
    let n = |xs: &[i64]| -> Vec<Option<f64>> {
        xs.iter()
            .map(|x| (*x != i64::MIN).then_some(*x as f64))
            .collect()
    };
    const X: i64 = i64::MIN; // null in `n(...)`
    let data = vec![
        ser("x.a", 10, &n(&[1, X, 3, 0, -5, X, 7, 8, X, 10, 11, 12])),
        ser("x.b", 60, &n(&[X, 2])),
        ser("x.c", 10, &[None; 12]),
        ser("x.d", 10, &[Some(0.0); 12]),
    ];
    let arg_sets = [
        "",
        "x.*",
        "x.*,0",
        "x.*,-3",
        "x.*,2,1",
        "x.*,1000",
        "x.*,1000000000",
        "x.*,'1min'",
        "x.*,'-1h','sum'",
        "x.*,'sum',1,-1",
        "x.*,'sum','>',1",
        "x.*,0.5",
        "x.*,150.0",
        "x.*,x.*",
        "x.a,x.b",
        "x.*,None",
        "x.*,true",
        "x.*,'('",
        r"x.*,'x','\9'",
        "nothing",
        "nothing,1",
        "5",
        "'a'",
        "1.0",
    ];
    // seriesByTag parses to a fetch, not a call (its own tests are in tags.rs).
    for f in FUNCTIONS.iter().filter(|f| f.name != "seriesByTag") {
        for args in arg_sets {
            let text = format!("{}({args})", f.name);
            let target = graphite::expr::parse(&text)
                .unwrap_or_else(|e| panic!("{text} does not parse: {e}"));
            let src = MemorySource::new(data.clone());
            let _ = graphite::eval::render(&[target], 0, 110, 110, &src);
        }
    }
}
