//! Test vectors ported from graphite-web 1.1.10 `webapp/tests/test_functions.py`
//! (Copyright 2008 Orbitz WorldWide and contributors, Apache-2.0). Each input series is
//! fetched by its own path so path expressions equal names, as in those tests.
//!
//! Most of them are data: `graphite/tests/graphite_web_vectors.jsonl`, run by
//! `graphite/tests/graphite_web.rs` (one test per graphite-web test name). This file keeps
//! the cases that check more than names, times and values (attributes, several requests,
//! every function over odd arguments) and carbide's own cases beside them; what follows
//! applies to both.
//!
//! Every case runs the target text through the real parser and evaluator over an in-memory
//! source (whisper-style alignment: the first point is one step after `from`) and checks
//! names, start/end/step, values (null-aware, 1e-9 relative) and that the source was not
//! mutated. Cases named "(adapted ...)" or carrying a comment differ from graphite-web's
//! vector only where its test relies on something a real render does not do (a mocked
//! fetch returning points outside the window or with other values, Python ints where
//! fetched data is float, mocked path expressions, parameter validation that graphite-web
//! 1.1.10 leaves off); the conformance goldens decide those.
//!
//! Not ported: tests of internal helpers (safe*, gcd/lcm, xffValues, normalize, matchSeries,
//! formatPathExpressions, _getPercentile); smartSummarize alignTo_* and hitcount 1day/1hour/
//! 1minute (graphite-web mocks the aligned re-fetch to start exactly at the aligned start,
//! a whisper fetch starts one step later, so every bucket differs; covered by the
//! conformance goldens in summarize.json); holtWintersForecast (its mock yields no values);
//! exponentialMovingAverage integer/string/half_none (the mock returns the request series
//! as its own widened re-fetch); timeShift_resetEnd_False (needs a fetch returning points past
//! the window); randomWalk (mocks random); tag functions (mocked tag DB); graph options
//! (color, alpha, dashed, lineWidth, secondYAxis, drawAsInfinite, verticalLine: options are
//! not rendered as data); weightedAverage mismatched/empty lists; perSecond's 60**256 point.

use super::testkit::*;
use crate::series::Series;

const N: Option<f64> = None;

fn o(xs: &[i64]) -> Vec<Option<f64>> {
    xs.iter()
        .map(|x| {
            if *x == i64::MIN {
                None
            } else {
                Some(*x as f64)
            }
        })
        .collect()
}
const X: i64 = i64::MIN; // null in `o(...)`

/// The five `collectd.test-dbN.load.value` series most graphite-web tests share.
fn db5() -> Vec<Series> {
    let data = [
        o(&[
            1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20,
        ]),
        o(&[
            X, 2, X, 4, X, 6, X, 8, X, 10, X, 12, X, 14, X, 16, X, 18, X, 20,
        ]),
        o(&[
            1, 2, X, X, X, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, X, X, X,
        ]),
        o(&[
            1, 2, 3, 4, X, 6, X, X, 9, 10, 11, X, 13, X, X, X, X, 18, 19, 20,
        ]),
        o(&[
            1, 2, X, X, X, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, X, X,
        ]),
    ];
    data.iter()
        .enumerate()
        .map(|(i, d)| ser(&format!("collectd.test-db{}.load.value", i + 1), d))
        .collect()
}

fn db_paths(n: usize) -> Vec<Expr> {
    (1..=n)
        .map(|i| p(&format!("collectd.test-db{i}.load.value")))
        .collect()
}

fn db_name(i: usize) -> String {
    format!("collectd.test-db{i}.load.value")
}

#[test]
fn keep_last_value_limit_2() {
    let mut d = db5();
    d.push(ser(
        "collectd.test-db6.load.value",
        &o(&[
            1, X, 3, X, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, X,
        ]),
    ));
    let out = run(&d, c("keepLastValue", vec![c("group", db_paths(6)), i(2)]));
    let want = [
        o(&[
            1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20,
        ]),
        o(&[
            X, 2, 2, 4, 4, 6, 6, 8, 8, 10, 10, 12, 12, 14, 14, 16, 16, 18, 18, 20,
        ]),
        o(&[
            1, 2, X, X, X, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, X, X, X,
        ]),
        o(&[
            1, 2, 3, 4, 4, 6, 6, 6, 9, 10, 11, 11, 13, X, X, X, X, 18, 19, 20,
        ]),
        o(&[
            1, 2, X, X, X, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 18, 18,
        ]),
        o(&[
            1, 1, 3, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 19,
        ]),
    ];
    let names: Vec<String> = (1..=6)
        .map(|i| format!("keepLastValue({})", db_name(i)))
        .collect();
    let rows: Vec<(&str, &[Option<f64>])> = names
        .iter()
        .map(String::as_str)
        .zip(want.iter().map(Vec::as_slice))
        .collect();
    check(&out, &rows);
}

#[test]
fn interpolate_vectors() {
    let out = run(&db5(), c("interpolate", vec![c("group", db_paths(5))]));
    let want = [
        o(&[
            1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20,
        ]),
        o(&[
            X, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20,
        ]),
        o(&[
            1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, X, X, X,
        ]),
        o(&[
            1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20,
        ]),
        o(&[
            1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, X, X,
        ]),
    ];
    for (k, s) in out.iter().enumerate() {
        assert_eq!(s.name, format!("interpolate({})", db_name(k + 1)));
        assert_values(&s.values, &want[k], &s.name);
    }
}

#[test]
fn changed_vectors() {
    for (input, want) in [
        (
            o(&[1, 2, 3, 4, 4, 5, 5, 5, 6, 7]),
            o(&[0, 1, 1, 1, 0, 1, 0, 0, 1, 1]),
        ),
        (
            o(&[X, X, X, X, 0, 0, 0, X, X, 1]),
            o(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
        ),
    ] {
        let out = run(&[ser("c.x", &input)], c("changed", vec![p("c.x")]));
        check(&out, &[("changed(c.x)", &want)]);
    }
}

#[test]
fn delay_vectors() {
    let mut v: Vec<Option<f64>> = (0..18).map(|x| Some(x as f64)).collect();
    v.extend([N, N]);
    let out = run(&[ser("d", &v)], c("delay", vec![p("d"), i(2)]));
    let mut want = vec![N, N];
    want.extend((0..18).map(|x| Some(x as f64)));
    check(&out, &[("delay(d,2)", &want)]);
    let out = run(&[ser("d", &v)], c("delay", vec![p("d"), i(25)]));
    check(&out, &[("delay(d,25)", &[N; 20])]);
}

#[test]
fn as_percent_without_total() {
    let out = run(&db5(), c("asPercent", vec![c("group", db_paths(5))]));
    let total = format!(
        "sumSeries({})",
        (1..=5).map(db_name).collect::<Vec<_>>().join(",")
    );
    let t = 100.0 / 3.0;
    let want: [Vec<Option<f64>>; 2] = [
        vec![
            Some(25.0),
            Some(20.0),
            Some(50.0),
            Some(t),
            Some(100.0),
            Some(20.0),
            Some(t),
            Some(25.0),
            Some(25.0),
            Some(20.0),
            Some(25.0),
            Some(25.0),
            Some(25.0),
            Some(25.0),
            Some(t),
            Some(25.0),
            Some(t),
            Some(25.0),
            Some(50.0),
            Some(t),
        ],
        vec![
            N,
            Some(20.0),
            N,
            Some(t),
            N,
            Some(20.0),
            N,
            Some(25.0),
            N,
            Some(20.0),
            N,
            Some(25.0),
            N,
            Some(25.0),
            N,
            Some(25.0),
            N,
            Some(25.0),
            N,
            Some(t),
        ],
    ];
    assert_eq!(out.len(), 5);
    for k in 0..2 {
        assert_eq!(
            out[k].name,
            format!("asPercent({},{total})", db_name(k + 1))
        );
        assert_values(&out[k].values, &want[k], &out[k].name);
    }
}

#[test]
fn divide_series_by_one() {
    let out = run(
        &db5(),
        c(
            "divideSeries",
            vec![c("group", db_paths(5)), p("collectd.test-db1.load.value")],
        ),
    );
    assert_eq!(out.len(), 5);
    assert_eq!(
        out[1].name,
        format!("divideSeries({},{})", db_name(2), db_name(1))
    );
    let want: Vec<Option<f64>> = (0..20)
        .map(|k| if k % 2 == 0 { None } else { Some(1.0) })
        .collect();
    assert_values(&out[1].values, &want, "db2/db1");
}

#[test]
fn derivative_family() {
    let s = |d: &[i64]| vec![ser_step("test", 60, &o(d))];
    let cases: Vec<(Expr, Vec<i64>, &str, Vec<i64>)> = vec![
        (
            c("derivative", vec![p("test")]),
            vec![X, 1, 2, 3, 4, 5, X, 6, 7, 8],
            "derivative(test)",
            vec![X, X, 1, 1, 1, 1, X, X, 1, 1],
        ),
        (
            c("nonNegativeDerivative", vec![p("test")]),
            vec![X, 1, 2, 3, 4, 5, X, 3, 2, 1],
            "nonNegativeDerivative(test)",
            vec![X, X, 1, 1, 1, 1, X, X, X, X],
        ),
        (
            c("nonNegativeDerivative", vec![p("test"), i(5)]),
            vec![0, 1, 2, 3, 4, 5, 0, 1, 2, 3],
            "nonNegativeDerivative(test)",
            vec![X, 1, 1, 1, 1, 1, 1, 1, 1, 1],
        ),
        (
            c("nonNegativeDerivative", vec![p("test"), i(6), i(1)]),
            vec![0, 1, 2, 3, 4, 5, 2, 3, 4, 5],
            "nonNegativeDerivative(test)",
            vec![X, X, 1, 1, 1, 1, 3, 1, 1, 1],
        ),
        (
            c("perSecond", vec![p("test"), i(480)]),
            vec![0, 120, 240, 480, 960, 900, 120, 240, 119, 479],
            "perSecond(test)",
            vec![X, 2, 2, 4, X, X, X, 2, 6, 6],
        ),
        (
            c("integral", vec![p("test")]),
            vec![X, 1, 2, 3, 4, 5, X, 6, 7, 8],
            "integral(test)",
            vec![X, 1, 3, 6, 10, 15, X, 21, 28, 36],
        ),
    ];
    for (target, input, name, want) in cases {
        let out = run(&s(&input), target);
        check(&out, &[(name, &o(&want))]);
        check_times(&out[0], 0, 600, 60);
    }
}

#[test]
fn scale_to_seconds_vectors() {
    let d = vec![ser_step(
        "collectd.test-db2.load.value",
        60,
        &o(&[X, 2, X, 4, X, 6, X, 8, X, 10]),
    )];
    let out = run(
        &d,
        c(
            "scaleToSeconds",
            vec![p("collectd.test-db2.load.value"), i(30)],
        ),
    );
    check(
        &out,
        &[(
            "scaleToSeconds(collectd.test-db2.load.value,30)",
            &[
                N,
                Some(1.0),
                N,
                Some(2.0),
                N,
                Some(3.0),
                N,
                Some(4.0),
                N,
                Some(5.0),
            ],
        )],
    );
}

#[test]
fn n_percentile_vectors() {
    let configs: Vec<Vec<Option<f64>>> = vec![
        o(&[15, 35, 20, 40, 50]),
        (1..=100).map(|x| Some(x as f64)).collect(),
        (1..=200).map(|x| Some(x as f64)).collect(),
        (0..100).map(|x| Some(x as f64)).collect(),
        [N, N, N]
            .into_iter()
            .chain((0..300).map(|x| Some(x as f64)))
            .collect(),
    ];
    for (cfg, want) in configs.iter().zip([20.0, 31.0, 61.0, 30.0, 90.0]) {
        let out = run(&[ser("t.x", cfg)], c("nPercentile", vec![p("t.x"), i(30)]));
        check(
            &out,
            &[("nPercentile(t.x, 30)", &vec![Some(want); cfg.len()])],
        );
    }
}

#[test]
fn count_series_vector() {
    let d = vec![
        ser_step(
            "collectd.test-db1.load.value",
            60,
            &o(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]),
        ),
        ser_step("collectd.test-db2.load.value", 60, &[N; 10]),
    ];
    let out = run(&d, c("countSeries", vec![c("group", db_paths(2))]));
    check(
        &out,
        &[(
            &format!("countSeries({},{})", db_name(1), db_name(2)),
            &[Some(2.0); 10],
        )],
    );
    check_times(&out[0], 0, 600, 60);
}

fn disk() -> Vec<Series> {
    let r = |v: Vec<i64>| o(&v);
    vec![
        ser("servers.s1.disk.bytes_used", &r((0..240).collect())),
        ser(
            "servers.s1.disk.bytes_free",
            &r((0..240).map(|x| -x).collect()),
        ),
        ser("servers.s2.disk.bytes_used", &[N; 240]),
        ser(
            "servers.s2.disk.bytes_free",
            &r((0..240).map(|x| 2 * x).collect()),
        ),
    ]
}

#[test]
fn summarize_1minute() {
    let targets = [
        "servers.s1.disk.bytes_used",
        "servers.s1.disk.bytes_free",
        "servers.s2.disk.bytes_used",
        "servers.s2.disk.bytes_free",
    ];
    let sums = [
        o(&[1770, 5370, 8970, 12570, X]),
        o(&[-1770, -5370, -8970, -12570, X]),
        vec![N; 5],
        o(&[3540, 10740, 17940, 25140, X]),
    ];
    for (t, want) in targets.iter().zip(&sums) {
        let out = run(&disk(), c("summarize", vec![p(t), s("1minute")]));
        check(
            &out,
            &[(&format!("summarize({t}, \"1minute\", \"sum\")"), want)],
        );
        check_times(&out[0], 0, 300, 60);
    }
    let out = run(
        &disk(),
        c("summarize", vec![p(targets[3]), s("1minute"), s("avg")]),
    );
    assert_values(
        &out[0].values,
        &[Some(59.0), Some(179.0), Some(299.0), Some(419.0), N],
        "avg",
    );
}

#[test]
fn hitcount_1minute() {
    let t = "servers.s1.disk.bytes_used";
    let out = run(&disk(), c("hitcount", vec![p(t), s("1minute")]));
    check(
        &out,
        &[(
            &format!("hitcount({t}, \"1minute\")"),
            &o(&[1770, 5370, 8970, 12570]),
        )],
    );
    check_times(&out[0], 0, 240, 60);
    // alignToInterval re-fetches from the minute boundary; whisper's alignment puts the first
    // point one step after it, so graphite-web's mocked vector is not reproducible here:
    // check the shape instead (5 buckets from the first fetched point).
    let out = run(&disk(), c("hitcount", vec![p(t), s("1minute"), b(true)]));
    assert_eq!(out[0].name, format!("hitcount({t}, \"1minute\", true)"));
    check_times(&out[0], -59, 241, 60);
}

#[test]
fn moving_median_integer_window() {
    // graphite-web: data 0..100 at 600..700 (the widened fetch), window 60 → medians
    // x + 0.5 for x in 30..70, from 660.
    let d = vec![Series::new(
        "collectd.test-db0.load.value",
        600,
        700,
        1,
        (0..100).map(|x| Some(x as f64)).collect(),
    )];
    let out = run_window(
        &d,
        c(
            "movingMedian",
            vec![p("collectd.test-db0.load.value"), i(60)],
        ),
        659,
        699,
    );
    assert_eq!(out[0].name, "movingMedian(collectd.test-db0.load.value,60)");
    check_times(&out[0], 660, 700, 1);
    let want: Vec<Option<f64>> = (30..70).map(|x| Some(x as f64 + 0.5)).collect();
    assert_values(&out[0].values, &want, "movingMedian");
}

#[test]
fn stdev_vector() {
    let d = vec![ser_step(
        "test.foo",
        60,
        &o(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]),
    )];
    let out = run(&d, c("stdev", vec![p("test.foo"), i(2)]));
    let mut want = vec![Some(0.0)];
    want.extend([Some(0.5); 9]);
    check(&out, &[("stdev(test.foo,2)", &want)]);
}

#[test]
fn integral_by_interval_resets_on_request_relative_boundaries() {
    // graphite-web's vector shifted by one step: the request starts at 0, whisper's first
    // point is at 60, and the 2-minute boundaries are counted from the request start.
    let d = vec![Series::new(
        "test",
        60,
        660,
        60,
        o(&[X, 1, 2, 3, 4, 5, X, 6, 7, 8]),
    )];
    let out = run_window(
        &d,
        c("integralByInterval", vec![p("test"), s("2min")]),
        0,
        600,
    );
    check(
        &out,
        &[(
            "integralByInterval(test,'2min')",
            &o(&[0, 1, 3, 3, 7, 5, 5, 6, 13, 8]),
        )],
    );
}

#[test]
fn more_functions_table() {
    let d = vec![
        ser("m.a", &[Some(0.0), Some(0.5), None, Some(2.0)]),
        ser("m.b", &[Some(2.0), Some(2.0), Some(3.0), Some(1.0)]),
        ser("m.c", &[Some(4.0), Some(6.0), Some(5.0), Some(3.0)]),
    ];
    type Row<'a> = (Expr, Vec<(&'a str, Vec<Option<f64>>)>);
    let rows: Vec<Row> = vec![
        (
            c("sigmoid", vec![p("m.a")]),
            vec![(
                "sigmoid(m.a)",
                vec![
                    Some(0.5),
                    Some(1.0 / (1.0 + (-0.5f64).exp())),
                    N,
                    Some(1.0 / (1.0 + (-2.0f64).exp())),
                ],
            )],
        ),
        (
            c("logit", vec![p("m.a")]),
            vec![("logit(m.a)", vec![N, Some(0.0), N, N])],
        ),
        (
            c("minMax", vec![p("m.c")]),
            vec![(
                "minMax(m.c)",
                vec![Some(1.0 / 3.0), Some(1.0), Some(2.0 / 3.0), Some(0.0)],
            )],
        ),
        (
            c("powSeries", vec![p("m.b"), p("m.c")]),
            vec![(
                "powSeries(m.b,m.c)",
                vec![Some(16.0), Some(64.0), Some(243.0), Some(1.0)],
            )],
        ),
        (
            c("unique", vec![p("m.a"), p("m.*")]),
            vec![
                ("m.a", vec![Some(0.0), Some(0.5), N, Some(2.0)]),
                ("m.b", vec![Some(2.0), Some(2.0), Some(3.0), Some(1.0)]),
                ("m.c", vec![Some(4.0), Some(6.0), Some(5.0), Some(3.0)]),
            ],
        ),
        (
            c("fallbackSeries", vec![p("nope"), p("m.b")]),
            vec![("m.b", vec![Some(2.0), Some(2.0), Some(3.0), Some(1.0)])],
        ),
        (
            c("aggregateLine", vec![p("m.b"), s("max"), b(true)]),
            vec![("aggregateLine(m.b, 3)", vec![Some(3.0); 4])],
        ),
        // averages 0.83, 2, 4.5; percentiles 2 and 4.5 (exclusive bounds) keep all three
        (
            c("averageOutsidePercentile", vec![p("m.*"), i(70)]),
            vec![
                ("m.a", vec![Some(0.0), Some(0.5), N, Some(2.0)]),
                ("m.b", vec![Some(2.0), Some(2.0), Some(3.0), Some(1.0)]),
                ("m.c", vec![Some(4.0), Some(6.0), Some(5.0), Some(3.0)]),
            ],
        ),
        (
            c("removeBetweenPercentile", vec![p("m.*"), i(70)]),
            vec![
                ("m.a", vec![Some(0.0), Some(0.5), N, Some(2.0)]),
                ("m.b", vec![Some(2.0), Some(2.0), Some(3.0), Some(1.0)]),
                ("m.c", vec![Some(4.0), Some(6.0), Some(5.0), Some(3.0)]),
            ],
        ),
        (
            c("stdev", vec![p("m.b"), i(2), f(1.0)]),
            vec![("stdev(m.b,2)", vec![N, Some(0.0), Some(0.5), Some(1.0)])],
        ),
    ];
    for (target, want) in rows {
        let out = run(&d, target.clone());
        let want: Vec<(&str, &[Option<f64>])> =
            want.iter().map(|(n, v)| (*n, v.as_slice())).collect();
        check(&out, &want);
    }
    let names_of = |t: Expr| run(&d, t).into_iter().map(|s| s.name).collect::<Vec<_>>();
    assert_eq!(names_of(c("upper", vec![p("m.a")])), ["M.A"]);
    assert_eq!(names_of(c("upper", vec![p("m.a"), i(-1)])), ["m.A"]);
    assert_eq!(
        names_of(c("lower", vec![c("alias", vec![p("m.a"), s("AbC")])])),
        ["abc"]
    );
    assert_eq!(
        names_of(c("substr", vec![c("scale", vec![p("m.a"), i(1)]), i(1)])),
        ["a"]
    );
    assert_eq!(names_of(c("aliasByTags", vec![p("m.a"), i(0)])), ["m"]);
    assert_eq!(names_of(c("identity", vec![s("t")])), ["t"]);
    assert_eq!(
        names_of(c("aggregateLine", vec![p("m.a")])),
        ["aggregateLine(m.a, 0.833333)"]
    );
}

#[test]
fn exponential_moving_average() {
    let d = vec![ser_step(
        "e",
        60,
        &(0..20).map(|x| Some(x as f64)).collect::<Vec<_>>(),
    )];
    let out = run_window(
        &d,
        c("exponentialMovingAverage", vec![p("e"), i(3)]),
        600,
        1080,
    );
    assert_eq!(out[0].name, "exponentialMovingAverage(e,3)");
    assert_eq!(out[0].start, 660);
    // preview fetched from 480: first value = avg(8, 9, 10) = 9, then ema with k = 0.5
    assert_eq!(out[0].values[0], Some(9.0));
    assert_eq!(out[0].values[1], Some(10.0)); // 0.5*11 + 0.5*9
}

#[test]
fn hostile_intervals_are_errors_not_oom() {
    let d = vec![ser_step("big", 1000, &[Some(1.0); 4])];
    let until = 2 * super::MAX_POINTS;
    let src_err = {
        let src = crate::eval::MemorySource::new(d);
        crate::eval::render(
            &[c("summarize", vec![p("big"), s("1s")])],
            0,
            until,
            until,
            &src,
        )
        .unwrap_err()
    };
    assert!(
        src_err.to_string().contains("max_points_per_request"),
        "{src_err}"
    );
}

#[test]
fn issue_example_targets() {
    let mut d = Vec::new();
    for h in 0..3 {
        for be in 0..2 {
            d.push(ser_step(
                &format!("servers.h{h}.haproxy.backend{be}.srv0.check_duration"),
                10,
                &vals(&(0..100).map(|x| (x + h + be) as f64).collect::<Vec<_>>()),
            ));
        }
    }
    d.push(ser_step(
        "servers.db1.mongo.globalLock.lockTime",
        10,
        &vals(&(0..100).map(|x| 3.0 * x as f64).collect::<Vec<_>>()),
    ));
    d.push(ser_step(
        "servers.db1.mongo.globalLock.totalTime",
        10,
        &vals(&(0..100).map(|x| 10.0 * x as f64).collect::<Vec<_>>()),
    ));
    let t1 = c(
        "scale",
        vec![
            c(
                "divideSeries",
                vec![
                    c(
                        "derivative",
                        vec![p("servers.db1.mongo.globalLock.lockTime")],
                    ),
                    c(
                        "derivative",
                        vec![p("servers.db1.mongo.globalLock.totalTime")],
                    ),
                ],
            ),
            i(100),
        ],
    );
    let out = run_window(&d, t1, 490, 990);
    assert_eq!(
        out[0].name,
        "scale(divideSeries(derivative(servers.db1.mongo.globalLock.lockTime),derivative(servers.db1.mongo.globalLock.totalTime)),100)"
    );
    assert_eq!(out[0].values[0], None);
    assert!(out[0].values[1..]
        .iter()
        .all(|v| (v.unwrap() - 30.0).abs() < 1e-9));
    let t2 = c(
        "aliasByNode",
        vec![
            c(
                "movingMedian",
                vec![
                    c(
                        "groupByNode",
                        vec![
                            p("servers.*.haproxy.*.*.check_duration"),
                            i(3),
                            s("averageSeries"),
                        ],
                    ),
                    i(10),
                ],
            ),
            i(0),
        ],
    );
    let out = run_window(&d, t2, 490, 990);
    assert_eq!(names(&out), ["backend0", "backend1"]);
    check_times(&out[0], 500, 1000, 10);
    // backend0 average at t is t/10 + 1; the median of the 10 points ending at t is t/10 - 3.5
    assert_values(
        &out[0].values,
        &vals(&(50..100).map(|x| x as f64 + 1.0 - 4.5).collect::<Vec<_>>()),
        "backend0",
    );
}

#[test]
fn compress_periodic_gaps_vectors() {
    let data = [
        o(&[X, 1, X, X, 2, X, X, 3, X, X, 4, X, X, 5, X, X]),
        o(&[X, X, 1, X, X, 2, X, X, 3, X, X, 4, X, X, 5, X]),
        o(&[X, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, X, X]),
        o(&[X, 1, X, 3, X, 5, X, 7, X, 9, X, 11, X, 13, X, 15]),
        o(&[X, 1, 2, 3, X, 5, X, 7, X, 9, X, X, X, 13, X, X]),
        o(&[1, 2, 3, X, X, X, X, X, X, X, X, X, 13, 14, 15]),
    ];
    let d: Vec<Series> = data
        .iter()
        .enumerate()
        .map(|(k, v)| {
            Series::new(
                format!("collectd.test-db{k}.load.value"),
                100,
                250,
                10,
                v.clone(),
            )
        })
        .collect();
    let paths: Vec<Expr> = (0..6)
        .map(|k| p(&format!("collectd.test-db{k}.load.value")))
        .collect();
    // whisper-style fetch of [90, 240) returns the 15 points 100..240, as graphite-web's
    // `range(start, end, step)` sees them.
    let out = run_window(
        &d,
        c("compressPeriodicGaps", vec![c("group", paths)]),
        90,
        240,
    );
    let want: [(i64, i64, i64, Vec<Option<f64>>); 6] = [
        (110, 230, 30, o(&[1, 2, 3, 4, 5])),
        (120, 240, 30, o(&[1, 2, 3, 4, 5])),
        (100, 250, 10, data[2][..15].to_vec()),
        (110, 230, 20, o(&[1, 3, 5, 7, 9, 11, 13])),
        (100, 250, 10, data[4][..15].to_vec()),
        (100, 250, 10, data[5].clone()),
    ];
    for (k, (s, (start, end, step, values))) in out.iter().zip(want).enumerate() {
        assert_eq!(
            s.name,
            format!("compressPeriodicGaps(collectd.test-db{k}.load.value)")
        );
        check_times(s, start, end, step);
        assert_values(&s.values, &values, &s.name);
    }
}

#[test]
fn weighted_average_vector() {
    let out = run(
        &db5(),
        c(
            "weightedAverage",
            vec![c("group", db_paths(5)), c("group", db_paths(5)), i(1)],
        ),
    );
    let all = (1..=5).map(db_name).collect::<Vec<_>>().join(",");
    assert_eq!(out[0].name, format!("weightedAverage({all}, {all}, 1)"));
    // each key pairs a series with itself: sum(x²)/sum(x) per point, as graphite-web computes
    let d = db5();
    let want: Vec<Option<f64>> = (0..20)
        .map(|k| {
            let xs: Vec<f64> = d.iter().filter_map(|s| s.values[k]).collect();
            Some(xs.iter().map(|x| x * x).sum::<f64>() / xs.iter().sum::<f64>())
        })
        .collect();
    assert_values(&out[0].values, &want, "weightedAverage");
}

#[test]
fn time_stack_and_generators() {
    let d = [ser_step(
        "ts",
        60,
        &(0..100).map(|x| Some(x as f64)).collect::<Vec<_>>(),
    )];
    let out = run_window(
        &d,
        c("timeStack", vec![p("ts"), s("10min"), i(0), i(3)]),
        3000,
        3600,
    );
    assert_eq!(
        names(&out),
        [
            "timeShift(ts, -10min, 0)",
            "timeShift(ts, -10min, 1)",
            "timeShift(ts, -10min, 2)"
        ]
    );
    assert_eq!(out[1].values[0], Some(41.0));
    assert_eq!(out[2].start, out[0].start);
    let out = run_window(&d, c("time", vec![s("t"), i(300)]), 0, 900);
    check(&out, &[("t", &[Some(0.0), Some(300.0), Some(600.0)])]);
    let out = run_window(&d, c("sinFunction", vec![s("s"), i(2)]), 0, 120);
    check(&out, &[("s", &[Some(0.0), Some(60f64.sin() * 2.0)])]);
}

/// Every registered function, called with a spread of odd arguments over odd data (nulls,
/// two steps, an all-null series, a series shorter than its window), must return a result or
/// an error — never panic.
#[test]
fn no_function_panics_on_odd_arguments() {
    let d = vec![
        ser_step("x.a", 10, &o(&[1, X, 3, 0, -5, X, 7, 8, X, 10, 11, 12])),
        ser_step("x.b", 60, &o(&[X, 2])),
        ser_step("x.c", 10, &[N; 12]),
        ser_step("x.d", 10, &o(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])),
    ];
    let arg_sets: Vec<Vec<Expr>> = vec![
        vec![],
        vec![p("x.*")],
        vec![p("x.*"), i(0)],
        vec![p("x.*"), i(-3)],
        vec![p("x.*"), i(2), i(1)],
        vec![p("x.*"), i(1_000)],
        vec![p("x.*"), i(1_000_000_000)],
        vec![p("x.*"), s("1min")],
        vec![p("x.*"), s("-1h"), s("sum")],
        vec![p("x.*"), s("sum"), i(1), i(-1)],
        vec![p("x.*"), s("sum"), s(">"), i(1)],
        vec![p("x.*"), f(0.5)],
        vec![p("x.*"), f(150.0)],
        vec![p("x.*"), p("x.*")],
        vec![p("x.a"), p("x.b")],
        vec![p("x.*"), none()],
        vec![p("x.*"), b(true)],
        vec![p("x.*"), s("(")],
        vec![p("x.*"), s("x"), s(r"\9")],
        vec![p("nothing")],
        vec![p("nothing"), i(1)],
        vec![i(5)],
        vec![s("a")],
        vec![f(1.0)],
    ];
    // seriesByTag parses to a fetch, not a call (its own tests are in tags.rs).
    for func in super::FUNCTIONS.iter().filter(|f| f.name != "seriesByTag") {
        for args in &arg_sets {
            let target = c(func.name, args.clone());
            let src = crate::eval::MemorySource::new(d.clone());
            let _ = crate::eval::render(std::slice::from_ref(&target), 0, 110, 110, &src);
        }
    }
}

/// graphite-web's `_generate_series_list`: db1 and db2 are 0..=100, db3 is [1, None × 4].
fn gen3() -> Vec<Series> {
    let r: Vec<Option<f64>> = (0..=100).map(|x| Some(x as f64)).collect();
    vec![
        ser("collectd.test-db1.load.value", &r),
        ser("collectd.test-db2.load.value", &r),
        ser("collectd.test-db3.load.value", &[Some(1.0), N, N, N, N]),
    ]
}

fn range_vals(from: i64, to: i64, step: i64) -> Vec<Option<f64>> {
    (from..to)
        .step_by(step as usize)
        .map(|x| Some(x as f64))
        .collect()
}

/// `group(a,b,...)` over the names of `data`, in order.
fn grp(data: &[Series]) -> String {
    let names: Vec<&str> = data.iter().map(|s| s.name.as_str()).collect();
    format!("group({})", names.join(","))
}

#[test]
fn graphite_web_attribute_vectors() {
    use crate::series::Consolidation;
    let g = gen3();
    let gg = grp(&g);
    // test_cumulative / test_consolidateBy: the consolidation function is set, names follow.
    let out = run(&g, t(&gg));
    assert!(out
        .iter()
        .all(|s| s.consolidation == Consolidation::Average));
    let out = run(&g, t(&format!("cumulative({gg})")));
    assert!(out.iter().all(|s| s.consolidation == Consolidation::Sum));
    for func in ["sum", "average", "avg_zero", "min", "max", "first", "last"] {
        let out = run(&g, t(&format!("consolidateBy({gg},'{func}')")));
        assert_eq!(out.len(), 3, "test_consolidateBy {func}");
        for s in &out {
            assert_eq!(
                Some(s.consolidation),
                Consolidation::parse(func),
                "test_consolidateBy {func}"
            );
        }
    }
    // test_xFilesFactor
    let out = run(&g, t(&gg));
    assert!(out.iter().all(|s| s.x_files_factor == 0.0));
    let out = run(&g, t(&format!("xFilesFactor({gg},0.5)")));
    assert_eq!(out.len(), 3);
    assert!(out.iter().all(|s| s.x_files_factor == 0.5));
}

/// test_smartSummarize_alignToFrom: graphite-web's test gets a TypeError only because its
/// mocked evaluateTarget returns nothing and the series list is None. graphite-web 1.1.10
/// itself logs "Deprecated parameter 'alignToFrom' is being ignored" for a boolean alignTo
/// and summarizes unaligned, which is what is checked here.
#[test]
fn graphite_web_smart_summarize_bool_align_is_ignored() {
    let d = vec![ser("servers.s1.disk.bytes_used", &range_vals(0, 100, 1))];
    let with_bool = run(
        &d,
        t("smartSummarize(servers.s1.disk.bytes_used,'1min','max',true)"),
    );
    let without = run(
        &d,
        t("smartSummarize(servers.s1.disk.bytes_used,'1min','max')"),
    );
    assert_eq!(with_bool.len(), 1);
    assert_eq!(format!("{with_bool:?}"), format!("{without:?}"));
}
