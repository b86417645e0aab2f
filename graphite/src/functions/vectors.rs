//! Test vectors ported from graphite-web 1.1.10 `webapp/tests/test_functions.py`
//! (Copyright 2008 Orbitz WorldWide and contributors, Apache-2.0). Each input series is
//! fetched by its own path so path expressions equal names, as in those tests.
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

// ---------------------------------------------------------------------------------------
// Table of graphite-web 1.1.10 `test_functions.py` vectors. Each row names the graphite-web
// test it comes from; the target is Graphite text parsed by the real parser. Inputs are
// fetched by their own paths (`group(a,b,...)` keeps graphite-web's input order and makes
// each path expression equal the series name, as `_gen_series_list_with_data` does).
// ---------------------------------------------------------------------------------------

/// One ported vector: graphite-web test name, input series, target, expected output
/// (name, values) in order, and the expected (start, end, step) of every output series
/// (`None`: the first input's).
struct Vector {
    test: &'static str,
    data: Vec<Series>,
    target: String,
    want: Vec<(String, Vec<Option<f64>>)>,
    times: Option<(i64, i64, i64)>,
    /// Round results to this many decimals before comparing (graphite-web's test rounds its
    /// results the same way, and its expected values are rounded literals).
    round: Option<i32>,
    /// The request window `(from, until)` (default: the first input's span).
    window: Option<(i64, i64)>,
}

impl Vector {
    fn rounded(mut self, digits: i32) -> Self {
        self.round = Some(digits);
        self
    }
}

fn v(
    test: &'static str,
    data: Vec<Series>,
    target: impl Into<String>,
    want: Vec<(String, Vec<Option<f64>>)>,
) -> Vector {
    Vector {
        test,
        data,
        target: target.into(),
        want,
        times: None,
        round: None,
        window: None,
    }
}

/// A vector over the request window `(from, until)` with whisper alignment (the first point is
/// one step after `from`); graphite-web's moving* tests mock the widened re-fetch, which here
/// is the source series itself. Outputs span `(from + 1, until + 1)` at step 1.
fn vw(
    test: &'static str,
    data: Vec<Series>,
    target: &str,
    window: (i64, i64),
    want: Vec<(String, Vec<Option<f64>>)>,
) -> Vector {
    let mut vec = v(test, data, target, want);
    vec.window = Some(window);
    vec.times = Some((window.0 + 1, window.1 + 1, 1));
    vec
}

/// `(name, values)` for an expected output series.
fn w(name: impl Into<String>, values: Vec<Option<f64>>) -> (String, Vec<Option<f64>>) {
    (name.into(), values)
}

/// The input series of `data`, as an expected output (filters and sorts keep them as is).
fn same(data: &[Series], order: &[usize]) -> Vec<(String, Vec<Option<f64>>)> {
    order
        .iter()
        .map(|&k| w(data[k].name.clone(), data[k].values.clone()))
        .collect()
}

/// `group(a,b,...)` over the names of `data`, in order.
fn grp(data: &[Series]) -> String {
    let names: Vec<&str> = data.iter().map(|s| s.name.as_str()).collect();
    format!("group({})", names.join(","))
}

/// Runs every vector, collecting failures so one run reports all disagreements.
fn verify_all(vectors: Vec<Vector>) {
    let mut failures = Vec::new();
    let count = vectors.len();
    for vec in vectors {
        let result = std::panic::catch_unwind(|| {
            let mut out = match vec.window {
                Some((from, until)) => run_window(&vec.data, t(&vec.target), from, until),
                None => run(&vec.data, t(&vec.target)),
            };
            if let Some(digits) = vec.round {
                let k = 10f64.powi(digits);
                for s in &mut out {
                    for x in s.values.iter_mut().flatten() {
                        *x = (*x * k).round() / k;
                    }
                }
            }
            let want: Vec<(&str, &[Option<f64>])> = vec
                .want
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_slice()))
                .collect();
            check(&out, &want);
            let times = vec
                .times
                .unwrap_or_else(|| (vec.data[0].start, vec.data[0].end, vec.data[0].step));
            for s in &out {
                check_times(s, times.0, times.1, times.2);
            }
        });
        if let Err(e) = result {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failures.push(format!("{} `{}`: {msg}", vec.test, vec.target));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {count} vectors failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
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

/// `_gen_series_list_with_data` with the four `collectd.test-dbN.load.value` keys at step 60.
fn db4_60(data: [&[i64]; 4]) -> Vec<Series> {
    data.iter()
        .enumerate()
        .map(|(k, d)| ser_step(&db_name(k + 1), 60, &o(d)))
        .collect()
}

/// The data most step-60 filter tests share.
fn filter_data() -> Vec<Series> {
    db4_60([
        &[1, 2, 3, 4, 5, 4, 3, 5, 6, 7],
        &[X; 10],
        &[1, 2, X, X, X, 4, 3, 2, 1, 0],
        &[10, 9, 8, 7, 6, 7, 8, 9, 10, X],
    ])
}

fn range_vals(from: i64, to: i64, step: i64) -> Vec<Option<f64>> {
    (from..to)
        .step_by(step as usize)
        .map(|x| Some(x as f64))
        .collect()
}

/// Applies `f` to every value of every gen3 series (None stays None). db3 comes out of the
/// fetch null-padded to the request window (the span of db1), as a whisper fetch would give it.
fn map_gen3(name: &str, f: impl Fn(f64) -> Option<f64>) -> Vec<(String, Vec<Option<f64>>)> {
    gen3()
        .iter()
        .map(|s| {
            let mut values: Vec<Option<f64>> = s.values.iter().map(|v| v.and_then(&f)).collect();
            values.resize(101, None);
            w(name.replace("{}", &s.name), values)
        })
        .collect()
}

#[test]
fn graphite_web_aggregate_vectors() {
    let g = gen3();
    let g2 = || gen3()[..2].to_vec();
    let both = format!("{},{}", db_name(1), db_name(2));
    let db5_all = db_paths(5)
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let mut mul = vec![N; 20];
    mul[1] = Some(32.0);
    mul[5] = Some(7776.0);
    mul[9] = Some(100000.0);
    let web = |names: [&str; 4], data: [[i64; 3]; 4]| -> Vec<Series> {
        names
            .iter()
            .zip(data)
            .map(|(n, d)| ser(n, &o(&d)))
            .collect()
    };
    let mut wild = web(
        [
            "web.host-1.avg-response.value",
            "web.host-2.avg-response.value",
            "web.host-3.avg-response.value",
            "web.host-4.avg-response.value",
        ],
        [[1, 10, 11], [2, 20, 21], [3, 30, 31], [4, 40, 41]],
    );
    // graphite-web's second list reuses the first list's names (its TimeSeries are passed
    // directly); here each input must have its own path, and nodes 2 and 3 are removed anyway.
    wild.extend(web(
        [
            "web.host-4.total-request.value",
            "web.host-3.total-request.value",
            "web.host-1.total-request.value",
            "web.host-2.total-request.value",
        ],
        [[4, 8, 12], [3, 7, 11], [1, 5, 9], [2, 6, 10]],
    ));
    let wild_target = format!("multiplySeriesWithWildcards({},2,3)", grp(&wild));
    let r101 = range_vals(0, 101, 1);
    verify_all(vec![
        v(
            "test_sumSeries",
            g.clone(),
            format!("sumSeries({both})"),
            vec![w(format!("sumSeries({both})"), range_vals(0, 202, 2))],
        ),
        v(
            "test_sumSeriesWithWildcards",
            g2(),
            format!("sumSeriesWithWildcards(group({both}),0,1)"),
            vec![w("load.value", range_vals(0, 202, 2))],
        ),
        v(
            "test_averageSeriesWithWildcards",
            g2(),
            format!("averageSeriesWithWildcards(group({both}),0,1)"),
            vec![w("load.value", r101.clone())],
        ),
        v(
            "test_multiplySeriesWithWildcards",
            wild,
            wild_target,
            vec![
                w("web.host-1", o(&[1, 50, 99])),
                w("web.host-2", o(&[4, 120, 210])),
                w("web.host-3", o(&[9, 210, 341])),
                w("web.host-4", o(&[16, 320, 492])),
            ],
        ),
        v(
            "test_diffSeries",
            g.clone(),
            format!("diffSeries({both})"),
            vec![w(format!("diffSeries({both})"), vec![Some(0.0); 101])],
        ),
        v(
            "test_aggregate_median",
            g.clone(),
            format!("aggregate(group({both}),'median')"),
            vec![w(format!("medianSeries({both})"), r101.clone())],
        ),
        v(
            "test_aggregate_stripSeries",
            g.clone(),
            format!("aggregate(group({both}),'medianSeries')"),
            vec![w(format!("medianSeries({both})"), r101.clone())],
        ),
        v(
            "test_averageSeries",
            g.clone(),
            format!("averageSeries({both})"),
            vec![w(format!("averageSeries({both})"), r101.clone())],
        ),
        v(
            "test_stddevSeries",
            g.clone(),
            format!("stddevSeries({both})"),
            vec![w(format!("stddevSeries({both})"), vec![Some(0.0); 101])],
        ),
        v(
            "test_minSeries",
            g.clone(),
            format!("minSeries({both})"),
            vec![w(format!("minSeries({both})"), r101.clone())],
        ),
        v(
            "test_maxSeries",
            g.clone(),
            format!("maxSeries({both})"),
            vec![w(format!("maxSeries({both})"), r101.clone())],
        ),
        v(
            "test_rangeOfSeries",
            g.clone(),
            format!("rangeOfSeries({both})"),
            vec![w(format!("rangeOfSeries({both})"), vec![Some(0.0); 101])],
        ),
        v(
            "test_percentileOfSeries",
            g.clone(),
            format!("percentileOfSeries(group({both}),90)"),
            vec![w(format!("percentileOfSeries({},90)", db_name(1)), r101)],
        ),
        v(
            "test_multiplySeries",
            db5(),
            format!("multiplySeries({db5_all})"),
            vec![w(format!("multiplySeries({db5_all})"), mul)],
        ),
        v(
            "test_multiplySeries_single",
            db5()[..1].to_vec(),
            format!("multiplySeries({})", db_name(1)),
            same(&db5(), &[0]),
        ),
        v(
            "test_countSeries",
            filter_data(),
            format!("countSeries({})", grp(&filter_data())),
            vec![w(
                format!(
                    "countSeries({})",
                    (1..=4).map(db_name).collect::<Vec<_>>().join(",")
                ),
                vec![Some(4.0); 10],
            )],
        ),
    ]);
}

#[test]
fn graphite_web_transform_vectors() {
    let neg = || {
        vec![ser(
            "collectd.test-db1.load.value",
            &o(&[
                -10, -9, -8, -7, X, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
            ]),
        )]
    };
    let plus10 = o(&[
        0, 1, 2, 3, X, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20,
    ]);
    let n1 = db_name(1);
    let all3 = grp(&gen3());
    let per = |d: &[i64]| vec![ser_step("test", 60, &o(d))];
    let log_data = db4_60([
        &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
        &[X; 10],
        &[-1, -2, X, X, X, -6, -7, -8, -9, -10],
        &[1, 2, 3, 4, 5, 6, 7, 8, 9, X],
    ]);
    let logs = |d: &Series| -> Vec<Option<f64>> {
        d.values
            .iter()
            .map(|v| v.filter(|x| *x > 0.0).map(f64::log10))
            .collect()
    };
    let rounding = || {
        vec![Series::new(
            db_name(1),
            0,
            11,
            1,
            vec![
                Some(1.111),
                Some(2.222),
                Some(3.333),
                Some(4.444),
                Some(5.555),
                Some(6.666),
                Some(7.777),
                Some(8.888),
                Some(9.999),
                Some(0.0),
                N,
            ],
        )]
    };
    let pow_data = vec![
        Series::new(
            db_name(1),
            0,
            11,
            1,
            vec![
                Some(1.0),
                Some(2.0),
                Some(3.0),
                Some(4.0),
                Some(5.0),
                Some(6.0),
                Some(7.0),
                Some(8.0),
                Some(9.0),
                Some(0.0),
                Some(312.1),
            ],
        ),
        Series::new(
            db_name(2),
            0,
            11,
            1,
            vec![
                Some(1.0),
                Some(3.0),
                Some(5.0),
                Some(7.0),
                N,
                Some(6.0),
                Some(4.0),
                Some(8.0),
                Some(0.0),
                Some(10.0),
                Some(234.2),
            ],
        ),
    ];
    verify_all(vec![
        v(
            "test_absolute",
            neg(),
            format!("absolute({n1})"),
            vec![w(
                format!("absolute({n1})"),
                o(&[
                    10, 9, 8, 7, X, 5, 4, 3, 2, 1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
                ]),
            )],
        ),
        v(
            "test_offset",
            neg(),
            format!("offset({n1},10)"),
            vec![w(format!("offset({n1},10)"), plus10.clone())],
        ),
        v(
            "test_offsetToZero",
            neg(),
            format!("offsetToZero({n1})"),
            vec![w(format!("offsetToZero({n1})"), plus10)],
        ),
        v(
            "test_perSecond_nones",
            per(&[0, 60, X, 180, X, X, 360, 420, X, 540]),
            "perSecond(test)",
            vec![w("perSecond(test)", o(&[X, 1, X, X, X, X, X, 1, X, X]))],
        ),
        v(
            "test_perSecond_nones (scaleToSeconds(nonNegativeDerivative) form)",
            per(&[0, 60, X, 180, X, X, 360, 420, X, 540]),
            "scaleToSeconds(nonNegativeDerivative(test),1)",
            vec![w(
                "scaleToSeconds(nonNegativeDerivative(test),1)",
                o(&[X, 1, X, X, X, X, X, 1, X, X]),
            )],
        ),
        // graphite-web's last point is 60**256 + 15360, a Python big integer beyond f64's
        // range; the first nine points are ported.
        v(
            "test_perSecond (first 9 points)",
            per(&[0, 120, 240, 480, 960, 1920, 3840, 7680, 15360]),
            "perSecond(test)",
            vec![w("perSecond(test)", o(&[X, 2, 2, 4, 8, 16, 32, 64, 128]))],
        ),
        v(
            "test_perSecond_max (scaleToSeconds(nonNegativeDerivative) form)",
            per(&[0, 120, 240, 480, 960, 900, 120, 240, 119, 479]),
            "scaleToSeconds(nonNegativeDerivative(test,480),1)",
            vec![w(
                "scaleToSeconds(nonNegativeDerivative(test),1)",
                o(&[X, 2, 2, 4, X, X, X, 2, 6, 6]),
            )],
        ),
        v(
            "test_isNonNull",
            filter_data(),
            format!("isNonNull({})", grp(&filter_data())),
            filter_data()
                .iter()
                .map(|s| {
                    w(
                        format!("isNonNull({})", s.name),
                        s.values
                            .iter()
                            .map(|v| Some(if v.is_some() { 1.0 } else { 0.0 }))
                            .collect(),
                    )
                })
                .collect(),
        ),
        v(
            "test_logarithm",
            log_data.clone(),
            format!("logarithm({})", grp(&log_data)),
            log_data
                .iter()
                .map(|s| w(format!("log({}, 10)", s.name), logs(s)))
                .collect(),
        ),
        v(
            "test_round",
            rounding(),
            format!("round({n1})"),
            vec![w(
                format!("round({n1})"),
                o(&[1, 2, 3, 4, 6, 7, 8, 9, 10, 0, X]),
            )],
        ),
        v(
            "test_round_precision",
            rounding(),
            format!("round({n1},2)"),
            vec![w(
                format!("round({n1},2)"),
                vec![
                    Some(1.11),
                    Some(2.22),
                    Some(3.33),
                    Some(4.44),
                    Some(5.55),
                    Some(6.67),
                    Some(7.78),
                    Some(8.89),
                    Some(10.0),
                    Some(0.0),
                    N,
                ],
            )],
        ),
        v(
            "test_powSeries",
            pow_data,
            format!("powSeries({n1},{})", db_name(2)),
            vec![w(
                format!("powSeries({n1},{})", db_name(2)),
                vec![
                    Some(1.0),
                    Some(8.0),
                    Some(243.0),
                    Some(16384.0),
                    N,
                    Some(46656.0),
                    Some(2401.0),
                    Some(16777216.0),
                    Some(1.0),
                    Some(0.0),
                    N,
                ],
            )],
        ),
        v(
            "test_scale",
            gen3(),
            format!("scale({all3},2)"),
            map_gen3("scale({},2)", |x| Some(x * 2.0)),
        ),
        v(
            "test_add",
            gen3(),
            format!("add({all3},1.23)"),
            map_gen3("add({},1)", |x| Some(x + 1.23)),
        ),
        v(
            "test_sigmoid",
            gen3(),
            format!("sigmoid({all3})"),
            map_gen3("sigmoid({})", |x| Some(1.0 / (1.0 + (-x).exp()))),
        ),
        v(
            "test_logit",
            gen3(),
            format!("logit({all3})"),
            map_gen3("logit({})", |x| {
                let r = (x / (1.0 - x)).ln();
                (x != 1.0 && r.is_finite()).then_some(r)
            }),
        ),
        v(
            "test_exp",
            gen3(),
            format!("exp({all3})"),
            map_gen3("exp({})", |x| Some(x.exp())),
        ),
        v(
            "test_pow",
            gen3(),
            format!("pow({all3},2)"),
            map_gen3("pow({},2)", |x| Some(x.powi(2))),
        ),
        v(
            "test_squareRoot",
            gen3(),
            format!("squareRoot({all3})"),
            map_gen3("squareRoot({})", |x| Some(x.sqrt())),
        ),
        v(
            "test_invert",
            gen3(),
            format!("invert({all3})"),
            map_gen3("invert({})", |x| (x != 0.0).then(|| 1.0 / x)),
        ),
    ]);
}

#[test]
fn graphite_web_filter_vectors() {
    let fd = filter_data();
    let fdg = grp(&fd);
    let by = |name: &str, arg: &str| format!("{name}({fdg},{arg})");
    let max_above = db4_60([
        &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
        &[X; 10],
        &[1, 2, X, X, X, 6, 7, 8, 9, 10],
        &[1, 2, 3, 4, 5, 4, 3, 2, 1, X],
    ]);
    let min_above = db4_60([
        &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
        &[X; 10],
        &[10, 9, X, X, X, 6, 7, 8, 9, 10],
        &[10, 9, 8, 7, 6, 7, 8, 9, 10, X],
    ]);
    let below = db4_60([
        &[1, 2, 3, 4, 5, 4, 3, 2, 1, 0],
        &[X; 10],
        &[1, 2, X, X, X, 4, 3, 2, 1, 0],
        &[10, 9, 8, 7, 6, 7, 8, 9, 10, X],
    ]);
    let ex = db4_60([
        &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
        &[X; 10],
        &[1, 2, X, X, X, 6, 7, 8, 9, 10],
        &[1, 2, 3, 4, 5, 6, 7, 8, 9, X],
    ]);
    // test_highest_max: unnamed lists range(20), range(50), range(30), range(40); named here
    // and null-padded to one length (the fetch window is the first input's span).
    let hm: Vec<Series> = [20, 50, 30, 40]
        .iter()
        .zip(["m.a", "m.b", "m.c", "m.d"])
        .map(|(n, name)| {
            let mut vals = range_vals(0, *n, 1);
            vals.resize(50, None);
            ser(name, &vals)
        })
        .collect();
    let hmg = grp(&hm);
    let order = [1, 3, 2, 0];
    let mut rows = vec![
        v(
            "test_maximumAbove",
            max_above.clone(),
            format!("maximumAbove({},5)", grp(&max_above)),
            same(&max_above, &[0, 2]),
        ),
        v(
            "test_minimumAbove",
            min_above.clone(),
            format!("minimumAbove({},5)", grp(&min_above)),
            same(&min_above, &[2, 3]),
        ),
        v(
            "test_maximumBelow",
            below.clone(),
            format!("maximumBelow({},5)", grp(&below)),
            same(&below, &[0, 1, 2]),
        ),
        v(
            "test_minimumBelow",
            below.clone(),
            format!("minimumBelow({},5)", grp(&below)),
            same(&below, &[0, 1, 2]),
        ),
        v(
            "test_highestCurrent",
            fd.clone(),
            by("highestCurrent", "2"),
            same(&fd, &[3, 0]),
        ),
        v(
            "test_lowestCurrent",
            fd.clone(),
            by("lowestCurrent", "2"),
            same(&fd, &[1, 2]),
        ),
        v(
            "test_currentAbove",
            fd.clone(),
            by("currentAbove", "2"),
            same(&fd, &[0, 3]),
        ),
        v(
            "test_currentBelow",
            fd.clone(),
            by("currentBelow", "2"),
            same(&fd, &[1, 2]),
        ),
        v(
            "test_highestAverage",
            fd.clone(),
            by("highestAverage", "2"),
            same(&fd, &[3, 0]),
        ),
        v(
            "test_lowestAverage",
            fd.clone(),
            by("lowestAverage", "2"),
            same(&fd, &[1, 2]),
        ),
        v(
            "test_averageAbove",
            fd.clone(),
            by("averageAbove", "2"),
            same(&fd, &[0, 3]),
        ),
        v(
            "test_averageBelow",
            fd.clone(),
            by("averageBelow", "2"),
            same(&fd, &[1, 2]),
        ),
        v(
            "test_exclude",
            ex.clone(),
            format!("exclude({},'.*db2')", grp(&ex)),
            same(&ex, &[0, 2, 3]),
        ),
        v(
            "test_grep",
            ex.clone(),
            format!("grep({},'.*db2')", grp(&ex)),
            same(&ex, &[1]),
        ),
        v(
            "test_limit",
            gen3(),
            format!("limit({},2)", grp(&gen3())),
            same(&gen3(), &[0, 1]),
        ),
    ];
    for n in 1..=5 {
        rows.push(v(
            "test_highest_max",
            hm.clone(),
            format!("highestMax({hmg},{n})"),
            same(&hm, &order[..n.min(4)]),
        ));
    }
    verify_all(rows);
}

#[test]
fn graphite_web_remove_and_null_vectors() {
    let g = gen3();
    let gg = grp(&g);
    // gen3 as fetched: db3 null-padded to the 101-point window.
    let fetched = |k: usize| {
        let mut vals = g[k].values.clone();
        vals.resize(101, None);
        vals
    };
    let each = |name: &str, f: &dyn Fn(usize, Option<f64>) -> Option<f64>| {
        (0..3)
            .map(|k| {
                w(
                    name.replace("{}", &g[k].name),
                    fetched(k).into_iter().map(|x| f(k, x)).collect(),
                )
            })
            .collect::<Vec<_>>()
    };
    let keep_if = |p: fn(f64) -> bool| move |_: usize, x: Option<f64>| x.filter(|v| p(*v));
    let mut reference = g[0].clone();
    reference.name = "ref.series".into();
    for (k, x) in reference.values.iter_mut().enumerate() {
        if k % 2 != 0 {
            *x = None;
        }
    }
    let mut with_ref = g.clone();
    with_ref.push(reference.clone());
    verify_all(vec![
        v(
            "test_remove_above_percentile",
            g.clone(),
            format!("removeAbovePercentile({gg},50)"),
            each("removeAbovePercentile({}, 50)", &|k, x| {
                if k == 2 {
                    x
                } else {
                    x.filter(|v| *v <= 50.0)
                }
            }),
        ),
        v(
            "test_remove_above_percentile_float",
            g.clone(),
            format!("removeAbovePercentile({gg},0.1)"),
            each("removeAbovePercentile({}, 0.1)", &|k, x| {
                if k == 2 {
                    x
                } else {
                    x.filter(|v| *v <= 0.0)
                }
            }),
        ),
        v(
            "test_remove_below_percentile",
            g.clone(),
            format!("removeBelowPercentile({gg},50)"),
            each("removeBelowPercentile({}, 50)", &|k, x| {
                if k == 2 {
                    x
                } else {
                    x.filter(|v| *v >= 50.0)
                }
            }),
        ),
        v(
            "test_remove_below_percentile_float",
            g.clone(),
            format!("removeBelowPercentile({gg},0.1)"),
            each("removeBelowPercentile({}, 0.1)", &|_, x| x),
        ),
        v(
            "test_remove_above_value",
            g.clone(),
            format!("removeAboveValue({gg},5)"),
            each("removeAboveValue({}, 5)", &keep_if(|v| v <= 5.0)),
        ),
        v(
            "test_remove_above_value_float",
            g.clone(),
            format!("removeAboveValue({gg},0.1)"),
            each("removeAboveValue({}, 0.1)", &keep_if(|v| v <= 0.1)),
        ),
        v(
            "test_remove_below_value",
            g.clone(),
            format!("removeBelowValue({gg},5)"),
            each("removeBelowValue({}, 5)", &keep_if(|v| v >= 5.0)),
        ),
        v(
            "test_remove_below_value_float",
            g.clone(),
            format!("removeBelowValue({gg},0.1)"),
            each("removeBelowValue({}, 0.1)", &keep_if(|v| v >= 0.1)),
        ),
        v(
            "test_transform_null",
            g.clone(),
            format!("transformNull({gg},-5)"),
            each("transformNull({},-5)", &|_, x| x.or(Some(-5.0))),
        ),
        v(
            "test_transform_null_reference",
            with_ref.clone(),
            format!("transformNull({gg},-5,ref.series)"),
            each("transformNull({},-5,referenceSeries)", &|_, x| x)
                .into_iter()
                .map(|(n, vals)| {
                    let vals = vals
                        .iter()
                        .zip(&reference.values)
                        .map(|(x, r)| x.or(r.map(|_| -5.0)))
                        .collect();
                    (n, vals)
                })
                .collect(),
        ),
    ]);
}

#[test]
fn graphite_web_sort_and_alias_vectors() {
    let sorted: Vec<Series> = [(3, 10), (2, 5), (4, 1), (1, 7)]
        .iter()
        .map(|(db, x)| ser(&db_name(*db), &vec![Some(*x as f64); 100]))
        .collect();
    let sg = grp(&sorted);
    let totals = vec![
        ser("t.0", &o(&[1000, 100, 10, 0])),
        ser("t.1", &o(&[1000, 100, 10, 1])),
    ];
    let g = gen3();
    let gg = grp(&g);
    let padded = |k: usize| {
        let mut vals = g[k].values.clone();
        vals.resize(101, None);
        vals
    };
    let renamed = |names: [&str; 3]| -> Vec<(String, Vec<Option<f64>>)> {
        (0..3).map(|k| w(names[k], padded(k))).collect()
    };
    // test_aliasByMetric: the inputs named like function calls are made with alias().
    let metric_data = {
        let mut d = db4_60([
            &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
            &[X; 10],
            &[1, 2, X, X, X, 6, 7, 8, 9, 10],
            &[1, 2, 3, 4, 5, 6, 7, 8, 9, X],
        ]);
        for name in ["x.db5", "x.db6", "a", "a.b", "a.b.c"] {
            d.push(ser_step(name, 60, &o(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10])));
        }
        d
    };
    let metric_target = format!(
        "aliasByMetric(group({},alias(x.db5,'scaleToSeconds(collectd.test-db5.load.value, 1)'),alias(x.db6,'sumSeries(collectd.test-db6.load.value)'),a,a.b,a.b.c))",
        (1..=4).map(db_name).collect::<Vec<_>>().join(",")
    );
    let metric_want: Vec<_> = [
        "value", "value", "value", "value", "value", "value", "a", "b", "c",
    ]
    .iter()
    .zip(&metric_data)
    .map(|(n, s)| w(*n, s.values.clone()))
    .collect();
    let one = || vec![ser(&db_name(1), &[Some(1.0)])];
    let by_node_names = [
        "sum(collectd.test-db1.load.value)",
        "sum(sum(collectd.test-db1.load.value))",
        "divide(collectd.test-db1.load.value, 5)",
    ];
    let mut rows = vec![
        v(
            "test_sortByName",
            sorted.clone(),
            format!("sortByName({sg})"),
            same(&sorted, &[3, 1, 0, 2]),
        ),
        v(
            "test_sortByName_natural",
            sorted.clone(),
            format!("sortByName({sg},true)"),
            same(&sorted, &[3, 1, 0, 2]),
        ),
        v(
            "test_sortByMaxima",
            sorted.clone(),
            format!("sortByMaxima({sg})"),
            same(&sorted, &[0, 3, 1, 2]),
        ),
        v(
            "test_sortByMinima",
            sorted.clone(),
            format!("sortByMinima({sg})"),
            same(&sorted, &[2, 1, 3, 0]),
        ),
        v(
            "test_sorting_by_total",
            totals.clone(),
            format!("sortByTotal({})", grp(&totals)),
            same(&totals, &[1, 0]),
        ),
        v(
            "test_alias",
            g.clone(),
            format!("alias({gg},'Ni!')"),
            renamed(["Ni!", "Ni!", "Ni!"]),
        ),
        v(
            "test_alias_sub",
            g.clone(),
            format!("aliasSub({gg},'^\\w+','Shrubbery')"),
            renamed([
                "Shrubbery.test-db1.load.value",
                "Shrubbery.test-db2.load.value",
                "Shrubbery.test-db3.load.value",
            ]),
        ),
        v(
            "test_alias_by_node (1)",
            g.clone(),
            format!("aliasByNode({gg},1)"),
            renamed(["test-db1", "test-db2", "test-db3"]),
        ),
        v(
            "test_alias_by_node (1, 0)",
            g.clone(),
            format!("aliasByNode({gg},1,0)"),
            renamed([
                "test-db1.collectd",
                "test-db2.collectd",
                "test-db3.collectd",
            ]),
        ),
        v(
            "test_alias_by_node (-1, 0)",
            g.clone(),
            format!("aliasByNode({gg},-1,0)"),
            renamed(["value.collectd", "value.collectd", "value.collectd"]),
        ),
        v(
            "test_aliasByMetric",
            metric_data.clone(),
            metric_target,
            metric_want,
        ),
    ];
    for name in by_node_names {
        rows.push(v(
            "test_alias_by_node (names with calls)",
            one(),
            format!("aliasByNode(alias({},'{name}'),1)", db_name(1)),
            vec![w("test-db1", vec![Some(1.0)])],
        ));
    }
    verify_all(rows);
}

#[test]
fn graphite_web_group_by_vectors() {
    // `_generate_mr_series`: four one-point null series. graphite-web's tests call
    // groupByNode(s) directly with the callback 'keepLastValue', which its render path only
    // accepts because ENFORCE_INPUT_VALIDATION is off (keepLastValue is no aggregator);
    // carbide follows the declared parameter types (tests/graphite-web/README.md), so these
    // rows use the aggregator 'sum', which gives the same names and (null) values, and the
    // 'keepLastValue' form is checked to be an error below.
    let mr: Vec<Series> = [
        "group.server1.metric1",
        "group.server1.metric2",
        "group.server2.metric1",
        "group.server2.metric2",
    ]
    .iter()
    .map(|n| ser(n, &[N]))
    .collect();
    let mg = grp(&mr);
    let nulls = |names: &[&str]| -> Vec<(String, Vec<Option<f64>>)> {
        names.iter().map(|n| w(*n, vec![N])).collect()
    };
    let one = || vec![ser(&db_name(1), &[Some(1.0)])];
    let mut rows = vec![
        v(
            "test_groupByNode (0)",
            mr.clone(),
            format!("groupByNode({mg},0,'sum')"),
            nulls(&["group"]),
        ),
        v(
            "test_groupByNode (1)",
            mr.clone(),
            format!("groupByNode({mg},1,'sum')"),
            nulls(&["server1", "server2"]),
        ),
        v(
            "test_groupByNodes (1)",
            mr.clone(),
            format!("groupByNodes({mg},'sum',1)"),
            nulls(&["server1", "server2"]),
        ),
        v(
            "test_groupByNodes (1, 2)",
            mr.clone(),
            format!("groupByNodes({mg},'sum',1,2)"),
            nulls(&[
                "server1.metric1",
                "server1.metric2",
                "server2.metric1",
                "server2.metric2",
            ]),
        ),
        v(
            "test_groupByNodes (1, 0)",
            mr.clone(),
            format!("groupByNodes({mg},'sum',1,0)"),
            nulls(&["server1.group", "server2.group"]),
        ),
        v(
            "test_groupByNodes (range, 1, 0)",
            mr.clone(),
            format!("groupByNodes({mg},'range',1,0)"),
            nulls(&["server1.group", "server2.group"]),
        ),
        v(
            "test_groupByNodes (average, no nodes)",
            mr.clone(),
            format!("groupByNodes({mg},'average')"),
            nulls(&[""]),
        ),
    ];
    for name in [
        "sum(collectd.test-db1.load.value)",
        "sum(sum(collectd.test-db1.load.value))",
        "divide(collectd.test-db1.load.value, 5)",
        "scaleToSeconds(divide(collectd.test-db1.load.value, 5),1)",
    ] {
        rows.push(v(
            "test_groupByNode (names with calls)",
            one(),
            format!("groupByNode(alias({},'{name}'),3,'sum')", db_name(1)),
            vec![w("value", vec![Some(1.0)])],
        ));
    }
    rows.push(v(
        "test_groupByNode (plain name)",
        one(),
        format!("groupByNode({},3,'sum')", db_name(1)),
        vec![w("value", vec![Some(1.0)])],
    ));
    verify_all(rows);
    let err = run_err(&mr, t(&format!("groupByNode({mg},1,'keepLastValue')")));
    assert!(err.contains("keepLastValue"), "{err}");
}

/// Float literals with `NA` for None (transcribed from graphite-web's tests).
const NA: f64 = f64::NAN;
fn ff(xs: &[f64]) -> Vec<Option<f64>> {
    xs.iter().map(|x| (!x.is_nan()).then_some(*x)).collect()
}

// The rows below are transcribed from graphite-web's literals (inputs and rounded expected
// values); where graphite-web passes series of different lengths, each pair is fetched on its
// own with the longer series defining the window (graphite-web pads with None the same way).
#[test]
fn graphite_web_as_percent_and_divide_vectors() {
    verify_all(vec![
        v("test_asPercent_no_seriesList2", vec![ser("collectd.test-db1.load.value", &ff(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0, 17.0, 18.0, 19.0, 20.0])),
ser("collectd.test-db2.load.value", &ff(&[NA, 2.0, NA, 4.0, NA, 6.0, NA, 8.0, NA, 10.0, NA, 12.0, NA, 14.0, NA, 16.0, NA, 18.0, NA, 20.0])),
ser("collectd.test-db3.load.value", &ff(&[1.0, 2.0, NA, NA, NA, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0, 17.0, NA, NA, NA])),
ser("collectd.test-db4.load.value", &ff(&[1.0, 2.0, 3.0, 4.0, NA, 6.0, NA, NA, 9.0, 10.0, 11.0, NA, 13.0, NA, NA, NA, NA, 18.0, 19.0, 20.0])),
ser("collectd.test-db5.load.value", &ff(&[1.0, 2.0, NA, NA, NA, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0, 17.0, 18.0, NA, NA]))], "asPercent(group(collectd.test-db1.load.value,collectd.test-db2.load.value,collectd.test-db3.load.value,collectd.test-db4.load.value,collectd.test-db5.load.value))", vec![
w("asPercent(collectd.test-db1.load.value,sumSeries(collectd.test-db1.load.value,collectd.test-db2.load.value,collectd.test-db3.load.value,collectd.test-db4.load.value,collectd.test-db5.load.value))", ff(&[25.0, 20.0, 50.0, 33.33, 100.0, 20.0, 33.33, 25.0, 25.0, 20.0, 25.0, 25.0, 25.0, 25.0, 33.33, 25.0, 33.33, 25.0, 50.0, 33.33])),
w("asPercent(collectd.test-db2.load.value,sumSeries(collectd.test-db1.load.value,collectd.test-db2.load.value,collectd.test-db3.load.value,collectd.test-db4.load.value,collectd.test-db5.load.value))", ff(&[NA, 20.0, NA, 33.33, NA, 20.0, NA, 25.0, NA, 20.0, NA, 25.0, NA, 25.0, NA, 25.0, NA, 25.0, NA, 33.33])),
w("asPercent(collectd.test-db3.load.value,sumSeries(collectd.test-db1.load.value,collectd.test-db2.load.value,collectd.test-db3.load.value,collectd.test-db4.load.value,collectd.test-db5.load.value))", ff(&[25.0, 20.0, NA, NA, NA, 20.0, 33.33, 25.0, 25.0, 20.0, 25.0, 25.0, 25.0, 25.0, 33.33, 25.0, 33.33, NA, NA, NA])),
w("asPercent(collectd.test-db4.load.value,sumSeries(collectd.test-db1.load.value,collectd.test-db2.load.value,collectd.test-db3.load.value,collectd.test-db4.load.value,collectd.test-db5.load.value))", ff(&[25.0, 20.0, 50.0, 33.33, NA, 20.0, NA, NA, 25.0, 20.0, 25.0, NA, 25.0, NA, NA, NA, NA, 25.0, 50.0, 33.33])),
w("asPercent(collectd.test-db5.load.value,sumSeries(collectd.test-db1.load.value,collectd.test-db2.load.value,collectd.test-db3.load.value,collectd.test-db4.load.value,collectd.test-db5.load.value))", ff(&[25.0, 20.0, NA, NA, NA, 20.0, 33.33, 25.0, 25.0, 20.0, 25.0, 25.0, 25.0, 25.0, 33.33, 25.0, 33.33, 25.0, NA, NA])),
]).rounded(2),
        v("test_asPercent_seriesList2_multi", vec![ser("collectd.test-db1.load.value", &ff(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0, 17.0, 18.0, 19.0, 20.0])),
ser("collectd.test-db2.load.value", &ff(&[NA, 2.0, NA, 4.0, NA, 6.0, NA, 8.0, NA, 10.0, NA, 12.0, NA, 14.0, NA, 16.0, NA, 18.0, NA, 20.0])),
ser("collectd.test-db3.load.value", &ff(&[1.0, 2.0, NA, NA, NA, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0, 17.0, NA, NA, NA])),
ser("collectd.test-db4.load.value", &ff(&[1.0, 2.0, 3.0, 4.0, NA, 6.0, NA, NA, 9.0, 10.0, 11.0, NA, 13.0, NA, NA, NA, NA, 18.0, 19.0, 20.0])),
ser("collectd.test-db5.load.value", &ff(&[1.0, 2.0, NA, NA, NA, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0, 17.0, 18.0, NA, NA]))], "asPercent(group(collectd.test-db1.load.value,collectd.test-db2.load.value,collectd.test-db3.load.value,collectd.test-db4.load.value,collectd.test-db5.load.value),group(collectd.test-db1.load.value,collectd.test-db2.load.value,collectd.test-db3.load.value,collectd.test-db4.load.value,collectd.test-db5.load.value))", vec![
w("asPercent(collectd.test-db1.load.value,collectd.test-db1.load.value)", ff(&[100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0])),
w("asPercent(collectd.test-db2.load.value,collectd.test-db2.load.value)", ff(&[NA, 100.0, NA, 100.0, NA, 100.0, NA, 100.0, NA, 100.0, NA, 100.0, NA, 100.0, NA, 100.0, NA, 100.0, NA, 100.0])),
w("asPercent(collectd.test-db3.load.value,collectd.test-db3.load.value)", ff(&[100.0, 100.0, NA, NA, NA, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, NA, NA, NA])),
w("asPercent(collectd.test-db4.load.value,collectd.test-db4.load.value)", ff(&[100.0, 100.0, 100.0, 100.0, NA, 100.0, NA, NA, 100.0, 100.0, 100.0, NA, 100.0, NA, NA, NA, NA, 100.0, 100.0, 100.0])),
w("asPercent(collectd.test-db5.load.value,collectd.test-db5.load.value)", ff(&[100.0, 100.0, NA, NA, NA, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, NA, NA])),
]).rounded(2),
        v("test_asPercent_seriesList2_nodes_total", vec![ser("collectd.test-db1.load.value", &ff(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0, 17.0, 18.0, 19.0, 20.0])),
ser("collectd.test-db2.load.value", &ff(&[NA, 2.0, NA, 4.0, NA, 6.0, NA, 8.0, NA, 10.0, NA, 12.0, NA, 14.0, NA, 16.0, NA, 18.0, NA, 20.0])),
ser("collectd.test-db3.load.value", &ff(&[1.0, 2.0, NA, NA, NA, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0, 17.0, NA, NA, NA])),
ser("collectd.test-db4.load.value", &ff(&[1.0, 2.0, 3.0, 4.0, NA, 6.0, NA, NA, 9.0, 10.0, 11.0, NA, 13.0, NA, NA, NA, NA, 18.0, 19.0, 20.0])),
ser("collectd.test-db5.load.value", &ff(&[1.0, 2.0, NA, NA, NA, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0, 17.0, 18.0, NA, NA])),
ser("collectd.test-db1.load.avg", &ff(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0, 17.0, 18.0, 19.0, 20.0])),
ser("collectd.test-db2.load.avg", &ff(&[NA, 2.0, NA, 4.0, NA, 6.0, NA, 8.0, NA, 10.0, NA, 12.0, NA, 14.0, NA, 16.0, NA, 18.0, NA, 20.0])),
ser("collectd.test-db3.load.avg", &ff(&[1.0, 2.0, NA, NA, NA, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0, 17.0, NA, NA, NA])),
ser("collectd.test-db4.load.avg", &ff(&[1.0, 2.0, 3.0, 4.0, NA, 6.0, NA, NA, 9.0, 10.0, 11.0, NA, 13.0, NA, NA, NA, NA, 18.0, 19.0, 20.0])),
ser("collectd.test-db6.load.avg", &ff(&[1.0, 2.0, NA, NA, NA, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0, 17.0, 18.0, NA, NA])),
ser("collectd.test-db1.load.total", &ff(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0, 17.0, 18.0, 19.0, 20.0])),
ser("collectd.test-db2.load.total", &ff(&[NA, 2.0, NA, 4.0, NA, 6.0, NA, 8.0, NA, 10.0, NA, 12.0, NA, 14.0, NA, 16.0, NA, 18.0, NA, 20.0])),
ser("collectd.test-db3.load.total", &ff(&[1.0, 2.0, NA, NA, NA, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0, 17.0, NA, NA, NA])),
ser("collectd.test-db4.load.total", &ff(&[1.0, 2.0, 3.0, 4.0, NA, 6.0, NA, NA, 9.0, 10.0, 11.0, NA, 13.0, NA, NA, NA, NA, 18.0, 19.0, 20.0])),
ser("collectd.test-db5.load.total", &ff(&[1.0, 2.0, NA, NA, NA, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0, 17.0, 18.0, NA, NA])),
ser("collectd.test-db5.load.total2", &ff(&[1.0, 2.0, NA, NA, NA, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0, 17.0, 18.0, NA, NA])),
ser("collectd.test-db7.load.total", &ff(&[1.0, 2.0, NA, NA, NA, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0, 17.0, 18.0, NA, NA]))], "asPercent(group(collectd.test-db1.load.value,collectd.test-db2.load.value,collectd.test-db3.load.value,collectd.test-db4.load.value,collectd.test-db5.load.value,collectd.test-db1.load.avg,collectd.test-db2.load.avg,collectd.test-db3.load.avg,collectd.test-db4.load.avg,collectd.test-db6.load.avg),group(collectd.test-db1.load.total,collectd.test-db2.load.total,collectd.test-db3.load.total,collectd.test-db4.load.total,collectd.test-db5.load.total,collectd.test-db5.load.total2,collectd.test-db7.load.total),1)", vec![
w("asPercent(collectd.test-db1.load.value,collectd.test-db1.load.total)", ff(&[100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0])),
w("asPercent(collectd.test-db1.load.avg,collectd.test-db1.load.total)", ff(&[100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0])),
w("asPercent(collectd.test-db2.load.value,collectd.test-db2.load.total)", ff(&[NA, 100.0, NA, 100.0, NA, 100.0, NA, 100.0, NA, 100.0, NA, 100.0, NA, 100.0, NA, 100.0, NA, 100.0, NA, 100.0])),
w("asPercent(collectd.test-db2.load.avg,collectd.test-db2.load.total)", ff(&[NA, 100.0, NA, 100.0, NA, 100.0, NA, 100.0, NA, 100.0, NA, 100.0, NA, 100.0, NA, 100.0, NA, 100.0, NA, 100.0])),
w("asPercent(collectd.test-db3.load.value,collectd.test-db3.load.total)", ff(&[100.0, 100.0, NA, NA, NA, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, NA, NA, NA])),
w("asPercent(collectd.test-db3.load.avg,collectd.test-db3.load.total)", ff(&[100.0, 100.0, NA, NA, NA, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, NA, NA, NA])),
w("asPercent(collectd.test-db4.load.value,collectd.test-db4.load.total)", ff(&[100.0, 100.0, 100.0, 100.0, NA, 100.0, NA, NA, 100.0, 100.0, 100.0, NA, 100.0, NA, NA, NA, NA, 100.0, 100.0, 100.0])),
w("asPercent(collectd.test-db4.load.avg,collectd.test-db4.load.total)", ff(&[100.0, 100.0, 100.0, 100.0, NA, 100.0, NA, NA, 100.0, 100.0, 100.0, NA, 100.0, NA, NA, NA, NA, 100.0, 100.0, 100.0])),
w("asPercent(collectd.test-db5.load.value,sumSeries(collectd.test-db5.load.total,collectd.test-db5.load.total2))", ff(&[50.0, 50.0, NA, NA, NA, 50.0, 50.0, 50.0, 50.0, 50.0, 50.0, 50.0, 50.0, 50.0, 50.0, 50.0, 50.0, 50.0, NA, NA])),
w("asPercent(collectd.test-db6.load.avg,MISSING)", ff(&[NA, NA, NA, NA, NA, NA, NA, NA, NA, NA, NA, NA, NA, NA, NA, NA, NA, NA, NA, NA])),
w("asPercent(MISSING,collectd.test-db7.load.total)", ff(&[NA, NA, NA, NA, NA, NA, NA, NA, NA, NA, NA, NA, NA, NA, NA, NA, NA, NA, NA, NA])),
]).rounded(2),
        v("test_asPercent_seriesList2_nodes_no_total", vec![ser("collectd.test-db1.load.value", &ff(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0, 17.0, 18.0, 19.0, 20.0])),
ser("collectd.test-db2.load.value", &ff(&[NA, 2.0, NA, 4.0, NA, 6.0, NA, 8.0, NA, 10.0, NA, 12.0, NA, 14.0, NA, 16.0, NA, 18.0, NA, 20.0])),
ser("collectd.test-db3.load.value", &ff(&[1.0, 2.0, NA, NA, NA, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0, 17.0, NA, NA, NA])),
ser("collectd.test-db4.load.value", &ff(&[1.0, 2.0, 3.0, 4.0, NA, 6.0, NA, NA, 9.0, 10.0, 11.0, NA, 13.0, NA, NA, NA, NA, 18.0, 19.0, 20.0])),
ser("collectd.test-db5.load.value", &ff(&[1.0, 2.0, NA, NA, NA, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0, 17.0, 18.0, NA, NA])),
ser("collectd.test-db1.load.avg", &ff(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0, 17.0, 18.0, 19.0, 20.0])),
ser("collectd.test-db2.load.avg", &ff(&[NA, 2.0, NA, 4.0, NA, 6.0, NA, 8.0, NA, 10.0, NA, 12.0, NA, 14.0, NA, 16.0, NA, 18.0, NA, 20.0])),
ser("collectd.test-db3.load.avg", &ff(&[1.0, 2.0, NA, NA, NA, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0, 17.0, NA, NA, NA])),
ser("collectd.test-db4.load.avg", &ff(&[1.0, 2.0, 3.0, 4.0, NA, 6.0, NA, NA, 9.0, 10.0, 11.0, NA, 13.0, NA, NA, NA, NA, 18.0, 19.0, 20.0])),
ser("collectd.test-db6.load.avg", &ff(&[1.0, 2.0, NA, NA, NA, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0, 17.0, 18.0, NA, NA]))], "asPercent(group(collectd.test-db1.load.value,collectd.test-db2.load.value,collectd.test-db3.load.value,collectd.test-db4.load.value,collectd.test-db5.load.value,collectd.test-db1.load.avg,collectd.test-db2.load.avg,collectd.test-db3.load.avg,collectd.test-db4.load.avg,collectd.test-db6.load.avg),None,1)", vec![
w("asPercent(collectd.test-db1.load.value,sumSeries(collectd.test-db1.load.value,collectd.test-db1.load.avg))", ff(&[50.0, 50.0, 50.0, 50.0, 50.0, 50.0, 50.0, 50.0, 50.0, 50.0, 50.0, 50.0, 50.0, 50.0, 50.0, 50.0, 50.0, 50.0, 50.0, 50.0])),
w("asPercent(collectd.test-db1.load.avg,sumSeries(collectd.test-db1.load.value,collectd.test-db1.load.avg))", ff(&[50.0, 50.0, 50.0, 50.0, 50.0, 50.0, 50.0, 50.0, 50.0, 50.0, 50.0, 50.0, 50.0, 50.0, 50.0, 50.0, 50.0, 50.0, 50.0, 50.0])),
w("asPercent(collectd.test-db2.load.value,sumSeries(collectd.test-db2.load.value,collectd.test-db2.load.avg))", ff(&[NA, 50.0, NA, 50.0, NA, 50.0, NA, 50.0, NA, 50.0, NA, 50.0, NA, 50.0, NA, 50.0, NA, 50.0, NA, 50.0])),
w("asPercent(collectd.test-db2.load.avg,sumSeries(collectd.test-db2.load.value,collectd.test-db2.load.avg))", ff(&[NA, 50.0, NA, 50.0, NA, 50.0, NA, 50.0, NA, 50.0, NA, 50.0, NA, 50.0, NA, 50.0, NA, 50.0, NA, 50.0])),
w("asPercent(collectd.test-db3.load.value,sumSeries(collectd.test-db3.load.value,collectd.test-db3.load.avg))", ff(&[50.0, 50.0, NA, NA, NA, 50.0, 50.0, 50.0, 50.0, 50.0, 50.0, 50.0, 50.0, 50.0, 50.0, 50.0, 50.0, NA, NA, NA])),
w("asPercent(collectd.test-db3.load.avg,sumSeries(collectd.test-db3.load.value,collectd.test-db3.load.avg))", ff(&[50.0, 50.0, NA, NA, NA, 50.0, 50.0, 50.0, 50.0, 50.0, 50.0, 50.0, 50.0, 50.0, 50.0, 50.0, 50.0, NA, NA, NA])),
w("asPercent(collectd.test-db4.load.value,sumSeries(collectd.test-db4.load.value,collectd.test-db4.load.avg))", ff(&[50.0, 50.0, 50.0, 50.0, NA, 50.0, NA, NA, 50.0, 50.0, 50.0, NA, 50.0, NA, NA, NA, NA, 50.0, 50.0, 50.0])),
w("asPercent(collectd.test-db4.load.avg,sumSeries(collectd.test-db4.load.value,collectd.test-db4.load.avg))", ff(&[50.0, 50.0, 50.0, 50.0, NA, 50.0, NA, NA, 50.0, 50.0, 50.0, NA, 50.0, NA, NA, NA, NA, 50.0, 50.0, 50.0])),
w("asPercent(collectd.test-db5.load.value,collectd.test-db5.load.value)", ff(&[100.0, 100.0, NA, NA, NA, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, NA, NA])),
w("asPercent(collectd.test-db6.load.avg,collectd.test-db6.load.avg)", ff(&[100.0, 100.0, NA, NA, NA, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, NA, NA])),
]).rounded(2),
        v("test_divideSeriesLists", vec![ser("collectd.test-db1.load.value1", &ff(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0, 17.0, 18.0, 19.0, 20.0])),
ser("collectd.test-db2.load.value1", &ff(&[NA, 2.0, NA, 4.0, NA, 6.0, NA, 8.0, NA, 10.0, NA, 12.0, NA, 14.0, NA, 16.0, NA, 18.0, NA, 20.0])),
ser("collectd.test-db1.load.value2", &ff(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0, 17.0, 18.0, 19.0, 20.0])),
ser("collectd.test-db2.load.value2", &ff(&[NA, 19.0, 18.0, NA, 16.0, 15.0, 14.0, 13.0, 12.0, 11.0, 10.0, 9.0, 8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0]))], "divideSeriesLists(group(collectd.test-db1.load.value1,collectd.test-db2.load.value1),group(collectd.test-db1.load.value2,collectd.test-db2.load.value2))", vec![
w("divideSeries(collectd.test-db1.load.value1,collectd.test-db1.load.value2)", ff(&[1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0])),
w("divideSeries(collectd.test-db2.load.value1,collectd.test-db2.load.value2)", ff(&[NA, 0.11, NA, NA, NA, 0.4, NA, 0.62, NA, 0.91, NA, 1.33, NA, 2.0, NA, 3.2, NA, 6.0, NA, 20.0])),
]).rounded(2),
    ]);
}

// The carbon rows transcribe graphite-web's data literally (3.141, 2.718 are data, not π and e);
// rows are pushed one per series pair.
#[allow(clippy::approx_constant, clippy::vec_init_then_push)]
#[test]
fn graphite_web_series_lists_vectors() {
    let mut rows = Vec::new();
    rows.push(
        v(
            "test_sumSeriesLists (mining.other.shipped)",
            vec![
                ser(
                    "mining.other.shipped",
                    &ff(&[
                        1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0,
                        15.0, 16.0, 17.0, 18.0, 19.0, 20.0,
                    ]),
                ),
                ser(
                    "mining.other.extracted",
                    &ff(&[
                        1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0,
                        15.0, 16.0, 17.0, 18.0, 19.0, 20.0,
                    ]),
                ),
            ],
            "sumSeriesLists(mining.other.shipped,mining.other.extracted)",
            vec![w(
                "sumSeries(mining.other.shipped,mining.other.extracted)",
                ff(&[
                    2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 14.0, 16.0, 18.0, 20.0, 22.0, 24.0, 26.0, 28.0,
                    30.0, 32.0, 34.0, 36.0, 38.0, 40.0,
                ]),
            )],
        )
        .rounded(2),
    );
    rows.push(
        v(
            "test_sumSeriesLists (mining.diamond.shipped)",
            vec![
                ser(
                    "mining.diamond.shipped",
                    &ff(&[
                        0.0, -1.0, -1.0, 2.0, 3.0, -5.0, -8.0, 13.0, 21.0, -34.0, -55.0, 89.0,
                        144.0, -233.0, -377.0,
                    ]),
                ),
                ser(
                    "mining.diamond.extracted",
                    &ff(&[
                        0.0, 1.0, -1.0, 2.0, -3.0, 5.0, -8.0, 13.0, -21.0, 34.0, -55.0, 89.0,
                        -144.0, 233.0, -377.0,
                    ]),
                ),
            ],
            "sumSeriesLists(mining.diamond.shipped,mining.diamond.extracted)",
            vec![w(
                "sumSeries(mining.diamond.shipped,mining.diamond.extracted)",
                ff(&[
                    0.0, 0.0, -2.0, 4.0, 0.0, 0.0, -16.0, 26.0, 0.0, 0.0, -110.0, 178.0, 0.0, 0.0,
                    -754.0,
                ]),
            )],
        )
        .rounded(2),
    );
    rows.push(
        v(
            "test_sumSeriesLists (mining.graphite.shipped)",
            vec![
                ser(
                    "mining.graphite.extracted",
                    &ff(&[
                        NA, 9.0, 8.0, NA, 6.0, NA, 4.0, 3.0, 2.0, NA, 0.0, -1.0, NA, -3.0, -4.0,
                        -5.0, NA, NA, -8.0, -9.0, -10.0,
                    ]),
                ),
                ser(
                    "mining.graphite.shipped",
                    &ff(&[
                        NA, 2.3, NA, -4.5, NA, 6.7, NA, -8.9, NA, 10.111, NA, -12.13, NA, 14.15,
                        NA, -16.17, NA, 18.19, NA, -20.21,
                    ]),
                ),
            ],
            "sumSeriesLists(mining.graphite.shipped,mining.graphite.extracted)",
            vec![w(
                "sumSeries(mining.graphite.shipped,mining.graphite.extracted)",
                ff(&[
                    NA, 11.3, 8.0, -4.5, 6.0, 6.7, 4.0, -5.9, 2.0, 10.11, 0.0, -13.13, NA, 11.15,
                    -4.0, -21.17, NA, 18.19, -8.0, -29.21, -10.0,
                ]),
            )],
        )
        .rounded(2),
    );
    rows.push(
        v(
            "test_sumSeriesLists (mining.carbon.shipped)",
            vec![
                ser(
                    "mining.carbon.shipped",
                    &ff(&[
                        3.141, NA, 2.718, 6.022, 6.674, NA, 6.626, 1.602, 2.067, 9.274, NA, 5.555,
                    ]),
                ),
                ser(
                    "mining.carbon.extracted",
                    &ff(&[
                        7.22, NA, 2.718, NA, 2.54, -1.234, -6.16, -13.37, NA, -7.77, 0.128, 8.912,
                    ]),
                ),
            ],
            "sumSeriesLists(mining.carbon.shipped,mining.carbon.extracted)",
            vec![w(
                "sumSeries(mining.carbon.shipped,mining.carbon.extracted)",
                ff(&[
                    10.36, NA, 5.44, 6.02, 9.21, -1.23, 0.47, -11.77, 2.07, 1.5, 0.13, 14.47,
                ]),
            )],
        )
        .rounded(2),
    );
    rows.push(
        v(
            "test_diffSeriesLists (mining.other.shipped)",
            vec![
                ser(
                    "mining.other.shipped",
                    &ff(&[
                        1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0,
                        15.0, 16.0, 17.0, 18.0, 19.0, 20.0,
                    ]),
                ),
                ser(
                    "mining.other.extracted",
                    &ff(&[
                        1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0,
                        15.0, 16.0, 17.0, 18.0, 19.0, 20.0,
                    ]),
                ),
            ],
            "diffSeriesLists(mining.other.shipped,mining.other.extracted)",
            vec![w(
                "diffSeries(mining.other.shipped,mining.other.extracted)",
                ff(&[
                    0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
                    0.0, 0.0, 0.0, 0.0,
                ]),
            )],
        )
        .rounded(2),
    );
    rows.push(
        v(
            "test_diffSeriesLists (mining.diamond.shipped)",
            vec![
                ser(
                    "mining.diamond.shipped",
                    &ff(&[
                        0.0, -1.0, -1.0, 2.0, 3.0, -5.0, -8.0, 13.0, 21.0, -34.0, -55.0, 89.0,
                        144.0, -233.0, -377.0,
                    ]),
                ),
                ser(
                    "mining.diamond.extracted",
                    &ff(&[
                        0.0, 1.0, -1.0, 2.0, -3.0, 5.0, -8.0, 13.0, -21.0, 34.0, -55.0, 89.0,
                        -144.0, 233.0, -377.0,
                    ]),
                ),
            ],
            "diffSeriesLists(mining.diamond.shipped,mining.diamond.extracted)",
            vec![w(
                "diffSeries(mining.diamond.shipped,mining.diamond.extracted)",
                ff(&[
                    0.0, -2.0, 0.0, 0.0, 6.0, -10.0, 0.0, 0.0, 42.0, -68.0, 0.0, 0.0, 288.0,
                    -466.0, 0.0,
                ]),
            )],
        )
        .rounded(2),
    );
    rows.push(
        v(
            "test_diffSeriesLists (mining.graphite.shipped)",
            vec![
                ser(
                    "mining.graphite.extracted",
                    &ff(&[
                        NA, 9.0, 8.0, NA, 6.0, NA, 4.0, 3.0, 2.0, NA, 0.0, -1.0, NA, -3.0, -4.0,
                        -5.0, NA, NA, -8.0, -9.0, -10.0,
                    ]),
                ),
                ser(
                    "mining.graphite.shipped",
                    &ff(&[
                        NA, 2.3, NA, -4.5, NA, 6.7, NA, -8.9, NA, 10.111, NA, -12.13, NA, 14.15,
                        NA, -16.17, NA, 18.19, NA, -20.21,
                    ]),
                ),
            ],
            "diffSeriesLists(mining.graphite.shipped,mining.graphite.extracted)",
            vec![w(
                "diffSeries(mining.graphite.shipped,mining.graphite.extracted)",
                ff(&[
                    NA, -6.7, 8.0, -4.5, 6.0, 6.7, 4.0, -11.9, 2.0, 10.11, 0.0, -11.13, NA, 17.15,
                    -4.0, -11.17, NA, 18.19, -8.0, -11.21, -10.0,
                ]),
            )],
        )
        .rounded(2),
    );
    rows.push(
        v(
            "test_diffSeriesLists (mining.carbon.shipped)",
            vec![
                ser(
                    "mining.carbon.shipped",
                    &ff(&[
                        3.141, NA, 2.718, 6.022, 6.674, NA, 6.626, 1.602, 2.067, 9.274, NA, 5.555,
                    ]),
                ),
                ser(
                    "mining.carbon.extracted",
                    &ff(&[
                        7.22, NA, 2.718, NA, 2.54, -1.234, -6.16, -13.37, NA, -7.77, 0.128, 8.912,
                    ]),
                ),
            ],
            "diffSeriesLists(mining.carbon.shipped,mining.carbon.extracted)",
            vec![w(
                "diffSeries(mining.carbon.shipped,mining.carbon.extracted)",
                ff(&[
                    -4.08, NA, 0.0, 6.02, 4.13, -1.23, 12.79, 14.97, 2.07, 17.04, 0.13, -3.36,
                ]),
            )],
        )
        .rounded(2),
    );
    rows.push(
        v(
            "test_multiplySeriesLists (mining.other.shipped)",
            vec![
                ser(
                    "mining.other.shipped",
                    &ff(&[
                        1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0,
                        15.0, 16.0, 17.0, 18.0, 19.0, 20.0,
                    ]),
                ),
                ser(
                    "mining.other.extracted",
                    &ff(&[
                        1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0,
                        15.0, 16.0, 17.0, 18.0, 19.0, 20.0,
                    ]),
                ),
            ],
            "multiplySeriesLists(mining.other.shipped,mining.other.extracted)",
            vec![w(
                "multiplySeries(mining.other.shipped,mining.other.extracted)",
                ff(&[
                    1.0, 4.0, 9.0, 16.0, 25.0, 36.0, 49.0, 64.0, 81.0, 100.0, 121.0, 144.0, 169.0,
                    196.0, 225.0, 256.0, 289.0, 324.0, 361.0, 400.0,
                ]),
            )],
        )
        .rounded(2),
    );
    rows.push(
        v(
            "test_multiplySeriesLists (mining.diamond.shipped)",
            vec![
                ser(
                    "mining.diamond.shipped",
                    &ff(&[
                        0.0, -1.0, -1.0, 2.0, 3.0, -5.0, -8.0, 13.0, 21.0, -34.0, -55.0, 89.0,
                        144.0, -233.0, -377.0,
                    ]),
                ),
                ser(
                    "mining.diamond.extracted",
                    &ff(&[
                        0.0, 1.0, -1.0, 2.0, -3.0, 5.0, -8.0, 13.0, -21.0, 34.0, -55.0, 89.0,
                        -144.0, 233.0, -377.0,
                    ]),
                ),
            ],
            "multiplySeriesLists(mining.diamond.shipped,mining.diamond.extracted)",
            vec![w(
                "multiplySeries(mining.diamond.shipped,mining.diamond.extracted)",
                ff(&[
                    0.0, -1.0, 1.0, 4.0, -9.0, -25.0, 64.0, 169.0, -441.0, -1156.0, 3025.0, 7921.0,
                    -20736.0, -54289.0, 142129.0,
                ]),
            )],
        )
        .rounded(2),
    );
    rows.push(
        v(
            "test_multiplySeriesLists (mining.graphite.shipped)",
            vec![
                ser(
                    "mining.graphite.extracted",
                    &ff(&[
                        NA, 9.0, 8.0, NA, 6.0, NA, 4.0, 3.0, 2.0, NA, 0.0, -1.0, NA, -3.0, -4.0,
                        -5.0, NA, NA, -8.0, -9.0, -10.0,
                    ]),
                ),
                ser(
                    "mining.graphite.shipped",
                    &ff(&[
                        NA, 2.3, NA, -4.5, NA, 6.7, NA, -8.9, NA, 10.111, NA, -12.13, NA, 14.15,
                        NA, -16.17, NA, 18.19, NA, -20.21,
                    ]),
                ),
            ],
            "multiplySeriesLists(mining.graphite.shipped,mining.graphite.extracted)",
            vec![w(
                "multiplySeries(mining.graphite.shipped,mining.graphite.extracted)",
                ff(&[
                    NA, 20.7, NA, NA, NA, NA, NA, -26.7, NA, NA, NA, 12.13, NA, -42.45, NA, 80.85,
                    NA, NA, NA, 181.89, NA,
                ]),
            )],
        )
        .rounded(2),
    );
    rows.push(
        v(
            "test_multiplySeriesLists (mining.carbon.shipped)",
            vec![
                ser(
                    "mining.carbon.shipped",
                    &ff(&[
                        3.141, NA, 2.718, 6.022, 6.674, NA, 6.626, 1.602, 2.067, 9.274, NA, 5.555,
                    ]),
                ),
                ser(
                    "mining.carbon.extracted",
                    &ff(&[
                        7.22, NA, 2.718, NA, 2.54, -1.234, -6.16, -13.37, NA, -7.77, 0.128, 8.912,
                    ]),
                ),
            ],
            "multiplySeriesLists(mining.carbon.shipped,mining.carbon.extracted)",
            vec![w(
                "multiplySeries(mining.carbon.shipped,mining.carbon.extracted)",
                ff(&[
                    22.68, NA, 7.39, NA, 16.95, NA, -40.82, -21.42, NA, -72.06, NA, 49.51,
                ]),
            )],
        )
        .rounded(2),
    );
    rows.push(v(
        "test_aggregateSeriesLists_max (mining.other.shipped)",
        vec![
            ser(
                "mining.other.shipped",
                &ff(&[
                    1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0,
                    15.0, 16.0, 17.0, 18.0, 19.0, 20.0,
                ]),
            ),
            ser(
                "mining.other.extracted",
                &ff(&[
                    1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0,
                    15.0, 16.0, 17.0, 18.0, 19.0, 20.0,
                ]),
            ),
        ],
        "aggregateSeriesLists(mining.other.shipped,mining.other.extracted,'max')",
        vec![w(
            "maxSeries(mining.other.shipped,mining.other.extracted)",
            ff(&[
                1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0,
                16.0, 17.0, 18.0, 19.0, 20.0,
            ]),
        )],
    ));
    rows.push(v(
        "test_aggregateSeriesLists_max (mining.diamond.shipped)",
        vec![
            ser(
                "mining.diamond.shipped",
                &ff(&[
                    0.0, -1.0, -1.0, 2.0, 3.0, -5.0, -8.0, 13.0, 21.0, -34.0, -55.0, 89.0, 144.0,
                    -233.0, -377.0,
                ]),
            ),
            ser(
                "mining.diamond.extracted",
                &ff(&[
                    0.0, 1.0, -1.0, 2.0, -3.0, 5.0, -8.0, 13.0, -21.0, 34.0, -55.0, 89.0, -144.0,
                    233.0, -377.0,
                ]),
            ),
        ],
        "aggregateSeriesLists(mining.diamond.shipped,mining.diamond.extracted,'max')",
        vec![w(
            "maxSeries(mining.diamond.shipped,mining.diamond.extracted)",
            ff(&[
                0.0, 1.0, -1.0, 2.0, 3.0, 5.0, -8.0, 13.0, 21.0, 34.0, -55.0, 89.0, 144.0, 233.0,
                -377.0,
            ]),
        )],
    ));
    rows.push(v(
        "test_aggregateSeriesLists_max (mining.graphite.shipped)",
        vec![
            ser(
                "mining.graphite.extracted",
                &ff(&[
                    NA, 9.0, 8.0, NA, 6.0, NA, 4.0, 3.0, 2.0, NA, 0.0, -1.0, NA, -3.0, -4.0, -5.0,
                    NA, NA, -8.0, -9.0, -10.0,
                ]),
            ),
            ser(
                "mining.graphite.shipped",
                &ff(&[
                    NA, 2.3, NA, -4.5, NA, 6.7, NA, -8.9, NA, 10.111, NA, -12.13, NA, 14.15, NA,
                    -16.17, NA, 18.19, NA, -20.21,
                ]),
            ),
        ],
        "aggregateSeriesLists(mining.graphite.shipped,mining.graphite.extracted,'max')",
        vec![w(
            "maxSeries(mining.graphite.shipped,mining.graphite.extracted)",
            ff(&[
                NA, 9.0, 8.0, -4.5, 6.0, 6.7, 4.0, 3.0, 2.0, 10.111, 0.0, -1.0, NA, 14.15, -4.0,
                -5.0, NA, 18.19, -8.0, -9.0, -10.0,
            ]),
        )],
    ));
    rows.push(v(
        "test_aggregateSeriesLists_max (mining.carbon.shipped)",
        vec![
            ser(
                "mining.carbon.shipped",
                &ff(&[
                    3.141, NA, 2.718, 6.022, 6.674, NA, 6.626, 1.602, 2.067, 9.274, NA, 5.555,
                ]),
            ),
            ser(
                "mining.carbon.extracted",
                &ff(&[
                    7.22, NA, 2.718, NA, 2.54, -1.234, -6.16, -13.37, NA, -7.77, 0.128, 8.912,
                ]),
            ),
        ],
        "aggregateSeriesLists(mining.carbon.shipped,mining.carbon.extracted,'max')",
        vec![w(
            "maxSeries(mining.carbon.shipped,mining.carbon.extracted)",
            ff(&[
                7.22, NA, 2.718, 6.022, 6.674, -1.234, 6.626, 1.602, 2.067, 9.274, 0.128, 8.912,
            ]),
        )],
    ));
    rows.push(v(
        "test_aggregateSeriesLists_min (mining.other.shipped)",
        vec![
            ser(
                "mining.other.shipped",
                &ff(&[
                    1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0,
                    15.0, 16.0, 17.0, 18.0, 19.0, 20.0,
                ]),
            ),
            ser(
                "mining.other.extracted",
                &ff(&[
                    1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0,
                    15.0, 16.0, 17.0, 18.0, 19.0, 20.0,
                ]),
            ),
        ],
        "aggregateSeriesLists(mining.other.shipped,mining.other.extracted,'min')",
        vec![w(
            "minSeries(mining.other.shipped,mining.other.extracted)",
            ff(&[
                1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0,
                16.0, 17.0, 18.0, 19.0, 20.0,
            ]),
        )],
    ));
    rows.push(v(
        "test_aggregateSeriesLists_min (mining.diamond.shipped)",
        vec![
            ser(
                "mining.diamond.shipped",
                &ff(&[
                    0.0, -1.0, -1.0, 2.0, 3.0, -5.0, -8.0, 13.0, 21.0, -34.0, -55.0, 89.0, 144.0,
                    -233.0, -377.0,
                ]),
            ),
            ser(
                "mining.diamond.extracted",
                &ff(&[
                    0.0, 1.0, -1.0, 2.0, -3.0, 5.0, -8.0, 13.0, -21.0, 34.0, -55.0, 89.0, -144.0,
                    233.0, -377.0,
                ]),
            ),
        ],
        "aggregateSeriesLists(mining.diamond.shipped,mining.diamond.extracted,'min')",
        vec![w(
            "minSeries(mining.diamond.shipped,mining.diamond.extracted)",
            ff(&[
                0.0, -1.0, -1.0, 2.0, -3.0, -5.0, -8.0, 13.0, -21.0, -34.0, -55.0, 89.0, -144.0,
                -233.0, -377.0,
            ]),
        )],
    ));
    rows.push(v(
        "test_aggregateSeriesLists_min (mining.graphite.shipped)",
        vec![
            ser(
                "mining.graphite.extracted",
                &ff(&[
                    NA, 9.0, 8.0, NA, 6.0, NA, 4.0, 3.0, 2.0, NA, 0.0, -1.0, NA, -3.0, -4.0, -5.0,
                    NA, NA, -8.0, -9.0, -10.0,
                ]),
            ),
            ser(
                "mining.graphite.shipped",
                &ff(&[
                    NA, 2.3, NA, -4.5, NA, 6.7, NA, -8.9, NA, 10.111, NA, -12.13, NA, 14.15, NA,
                    -16.17, NA, 18.19, NA, -20.21,
                ]),
            ),
        ],
        "aggregateSeriesLists(mining.graphite.shipped,mining.graphite.extracted,'min')",
        vec![w(
            "minSeries(mining.graphite.shipped,mining.graphite.extracted)",
            ff(&[
                NA, 2.3, 8.0, -4.5, 6.0, 6.7, 4.0, -8.9, 2.0, 10.111, 0.0, -12.13, NA, -3.0, -4.0,
                -16.17, NA, 18.19, -8.0, -20.21, -10.0,
            ]),
        )],
    ));
    rows.push(v(
        "test_aggregateSeriesLists_min (mining.carbon.shipped)",
        vec![
            ser(
                "mining.carbon.shipped",
                &ff(&[
                    3.141, NA, 2.718, 6.022, 6.674, NA, 6.626, 1.602, 2.067, 9.274, NA, 5.555,
                ]),
            ),
            ser(
                "mining.carbon.extracted",
                &ff(&[
                    7.22, NA, 2.718, NA, 2.54, -1.234, -6.16, -13.37, NA, -7.77, 0.128, 8.912,
                ]),
            ),
        ],
        "aggregateSeriesLists(mining.carbon.shipped,mining.carbon.extracted,'min')",
        vec![w(
            "minSeries(mining.carbon.shipped,mining.carbon.extracted)",
            ff(&[
                3.141, NA, 2.718, 6.022, 2.54, -1.234, -6.16, -13.37, 2.067, -7.77, 0.128, 5.555,
            ]),
        )],
    ));
    rows.push(
        v(
            "test_aggregateSeriesLists_avg (mining.other.shipped)",
            vec![
                ser(
                    "mining.other.shipped",
                    &ff(&[
                        1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0,
                        15.0, 16.0, 17.0, 18.0, 19.0, 20.0,
                    ]),
                ),
                ser(
                    "mining.other.extracted",
                    &ff(&[
                        1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0,
                        15.0, 16.0, 17.0, 18.0, 19.0, 20.0,
                    ]),
                ),
            ],
            "aggregateSeriesLists(mining.other.shipped,mining.other.extracted,'avg')",
            vec![w(
                "avgSeries(mining.other.shipped,mining.other.extracted)",
                ff(&[
                    1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0,
                    15.0, 16.0, 17.0, 18.0, 19.0, 20.0,
                ]),
            )],
        )
        .rounded(2),
    );
    rows.push(
        v(
            "test_aggregateSeriesLists_avg (mining.diamond.shipped)",
            vec![
                ser(
                    "mining.diamond.shipped",
                    &ff(&[
                        0.0, -1.0, -1.0, 2.0, 3.0, -5.0, -8.0, 13.0, 21.0, -34.0, -55.0, 89.0,
                        144.0, -233.0, -377.0,
                    ]),
                ),
                ser(
                    "mining.diamond.extracted",
                    &ff(&[
                        0.0, 1.0, -1.0, 2.0, -3.0, 5.0, -8.0, 13.0, -21.0, 34.0, -55.0, 89.0,
                        -144.0, 233.0, -377.0,
                    ]),
                ),
            ],
            "aggregateSeriesLists(mining.diamond.shipped,mining.diamond.extracted,'avg')",
            vec![w(
                "avgSeries(mining.diamond.shipped,mining.diamond.extracted)",
                ff(&[
                    0.0, 0.0, -1.0, 2.0, 0.0, 0.0, -8.0, 13.0, 0.0, 0.0, -55.0, 89.0, 0.0, 0.0,
                    -377.0,
                ]),
            )],
        )
        .rounded(2),
    );
    rows.push(
        v(
            "test_aggregateSeriesLists_avg (mining.graphite.shipped)",
            vec![
                ser(
                    "mining.graphite.extracted",
                    &ff(&[
                        NA, 9.0, 8.0, NA, 6.0, NA, 4.0, 3.0, 2.0, NA, 0.0, -1.0, NA, -3.0, -4.0,
                        -5.0, NA, NA, -8.0, -9.0, -10.0,
                    ]),
                ),
                ser(
                    "mining.graphite.shipped",
                    &ff(&[
                        NA, 2.3, NA, -4.5, NA, 6.7, NA, -8.9, NA, 10.111, NA, -12.13, NA, 14.15,
                        NA, -16.17, NA, 18.19, NA, -20.21,
                    ]),
                ),
            ],
            "aggregateSeriesLists(mining.graphite.shipped,mining.graphite.extracted,'avg')",
            vec![w(
                "avgSeries(mining.graphite.shipped,mining.graphite.extracted)",
                ff(&[
                    NA, 5.65, 8.0, -4.5, 6.0, 6.7, 4.0, -2.95, 2.0, 10.11, 0.0, -6.57, NA, 5.58,
                    -4.0, -10.59, NA, 18.19, -8.0, -14.61, -10.0,
                ]),
            )],
        )
        .rounded(2),
    );
    rows.push(
        v(
            "test_aggregateSeriesLists_avg (mining.carbon.shipped)",
            vec![
                ser(
                    "mining.carbon.shipped",
                    &ff(&[
                        3.141, NA, 2.718, 6.022, 6.674, NA, 6.626, 1.602, 2.067, 9.274, NA, 5.555,
                    ]),
                ),
                ser(
                    "mining.carbon.extracted",
                    &ff(&[
                        7.22, NA, 2.718, NA, 2.54, -1.234, -6.16, -13.37, NA, -7.77, 0.128, 8.912,
                    ]),
                ),
            ],
            "aggregateSeriesLists(mining.carbon.shipped,mining.carbon.extracted,'avg')",
            vec![w(
                "avgSeries(mining.carbon.shipped,mining.carbon.extracted)",
                ff(&[
                    5.18, NA, 2.72, 6.02, 4.61, -1.23, 0.23, -5.88, 2.07, 0.75, 0.13, 7.23,
                ]),
            )],
        )
        .rounded(2),
    );
    verify_all(rows);
}

#[test]
fn graphite_web_error_vectors() {
    let d = db5();
    let all = grp(&d);
    let one = db_name(1);
    // (graphite-web test, target, text the error must contain)
    let rows = [
        (
            "test_asPercent_error",
            format!("asPercent({all},group({one},{one}))"),
            "asPercent",
        ),
        (
            "test_asPercent_seriesList2_nodes_invalid_total",
            format!("asPercent({one},1000,1)"),
            "asPercent",
        ),
        (
            "test_divideSeries_error",
            format!("divideSeries({all},group({one},{one}))"),
            "exactly 1",
        ),
        (
            "test_aggregate_invalidFunc",
            format!("aggregate({all},'blahSeries')"),
            "blahSeries",
        ),
        (
            "test_percentileOfSeries_0th_percentile",
            format!("percentileOfSeries({all},0)"),
            "percent",
        ),
    ];
    for (test, target, needle) in rows {
        let err = run_err(&d, t(&target));
        assert!(err.contains(needle), "{test}: `{target}` gave: {err}");
    }
}

#[test]
fn graphite_web_moving_vectors() {
    let mut rows = vec![
        vw(
            "test_movingWindow_xFilesFactor",
            vec![Series::new(
                "collectd.test-db0.load.value",
                10,
                30,
                1,
                ff(&[
                    NA, NA, NA, NA, NA, NA, NA, NA, NA, NA, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0,
                    8.0, 9.0,
                ]),
            )],
            "movingWindow(collectd.test-db0.load.value,10, 'average', 0.5)",
            (19, 29),
            vec![w(
                r#"movingAverage(collectd.test-db0.load.value,10)"#,
                ff(&[NA, NA, NA, NA, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5]),
            )],
        ),
        vw(
            "test_movingMedian_evaluateTarget_returns_none",
            vec![Series::new(
                "collectd.test-db0.load.value",
                10,
                25,
                1,
                ff(&[NA, NA, NA, NA, NA, NA, NA, NA, NA, NA, NA, NA, NA, NA, NA]),
            )],
            "movingMedian(collectd.test-db0.load.value,10)",
            (19, 24),
            vec![w(
                r#"movingMedian(collectd.test-db0.load.value,10)"#,
                ff(&[NA, NA, NA, NA, NA]),
            )],
        ),
        vw(
            "test_movingMedian_evaluateTarget_returns_half_none",
            vec![Series::new(
                "collectd.test-db0.load.value",
                10,
                30,
                1,
                ff(&[
                    NA, NA, NA, NA, NA, NA, NA, NA, NA, NA, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0,
                    8.0, 9.0,
                ]),
            )],
            "movingMedian(collectd.test-db0.load.value,10)",
            (19, 29),
            vec![w(
                r#"movingMedian(collectd.test-db0.load.value,10)"#,
                ff(&[0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5]),
            )],
        ),
        vw(
            "test_movingMedian_integerWindowSize",
            vec![Series::new(
                "collectd.test-db0.load.value",
                600,
                700,
                1,
                ff(&[
                    0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0,
                    15.0, 16.0, 17.0, 18.0, 19.0, 20.0, 21.0, 22.0, 23.0, 24.0, 25.0, 26.0, 27.0,
                    28.0, 29.0, 30.0, 31.0, 32.0, 33.0, 34.0, 35.0, 36.0, 37.0, 38.0, 39.0, 40.0,
                    41.0, 42.0, 43.0, 44.0, 45.0, 46.0, 47.0, 48.0, 49.0, 50.0, 51.0, 52.0, 53.0,
                    54.0, 55.0, 56.0, 57.0, 58.0, 59.0, 60.0, 61.0, 62.0, 63.0, 64.0, 65.0, 66.0,
                    67.0, 68.0, 69.0, 70.0, 71.0, 72.0, 73.0, 74.0, 75.0, 76.0, 77.0, 78.0, 79.0,
                    80.0, 81.0, 82.0, 83.0, 84.0, 85.0, 86.0, 87.0, 88.0, 89.0, 90.0, 91.0, 92.0,
                    93.0, 94.0, 95.0, 96.0, 97.0, 98.0, 99.0,
                ]),
            )],
            "movingMedian(collectd.test-db0.load.value,60)",
            (659, 699),
            vec![w(
                r#"movingMedian(collectd.test-db0.load.value,60)"#,
                ff(&[
                    30.5, 31.5, 32.5, 33.5, 34.5, 35.5, 36.5, 37.5, 38.5, 39.5, 40.5, 41.5, 42.5,
                    43.5, 44.5, 45.5, 46.5, 47.5, 48.5, 49.5, 50.5, 51.5, 52.5, 53.5, 54.5, 55.5,
                    56.5, 57.5, 58.5, 59.5, 60.5, 61.5, 62.5, 63.5, 64.5, 65.5, 66.5, 67.5, 68.5,
                    69.5,
                ]),
            )],
        ),
        vw(
            "test_movingMedian_stringWindowSize",
            vec![Series::new(
                "collectd.test-db0.load.value",
                600,
                700,
                1,
                ff(&[
                    0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0,
                    15.0, 16.0, 17.0, 18.0, 19.0, 20.0, 21.0, 22.0, 23.0, 24.0, 25.0, 26.0, 27.0,
                    28.0, 29.0, 30.0, 31.0, 32.0, 33.0, 34.0, 35.0, 36.0, 37.0, 38.0, 39.0, 40.0,
                    41.0, 42.0, 43.0, 44.0, 45.0, 46.0, 47.0, 48.0, 49.0, 50.0, 51.0, 52.0, 53.0,
                    54.0, 55.0, 56.0, 57.0, 58.0, 59.0, 60.0, 61.0, 62.0, 63.0, 64.0, 65.0, 66.0,
                    67.0, 68.0, 69.0, 70.0, 71.0, 72.0, 73.0, 74.0, 75.0, 76.0, 77.0, 78.0, 79.0,
                    80.0, 81.0, 82.0, 83.0, 84.0, 85.0, 86.0, 87.0, 88.0, 89.0, 90.0, 91.0, 92.0,
                    93.0, 94.0, 95.0, 96.0, 97.0, 98.0, 99.0,
                ]),
            )],
            "movingMedian(collectd.test-db0.load.value,'-1min')",
            (659, 699),
            vec![w(
                r#"movingMedian(collectd.test-db0.load.value,"-1min")"#,
                ff(&[
                    30.5, 31.5, 32.5, 33.5, 34.5, 35.5, 36.5, 37.5, 38.5, 39.5, 40.5, 41.5, 42.5,
                    43.5, 44.5, 45.5, 46.5, 47.5, 48.5, 49.5, 50.5, 51.5, 52.5, 53.5, 54.5, 55.5,
                    56.5, 57.5, 58.5, 59.5, 60.5, 61.5, 62.5, 63.5, 64.5, 65.5, 66.5, 67.5, 68.5,
                    69.5,
                ]),
            )],
        ),
        vw(
            "test_movingAverage_evaluateTarget_returns_none",
            vec![Series::new(
                "collectd.test-db0.load.value",
                10,
                25,
                1,
                ff(&[NA, NA, NA, NA, NA, NA, NA, NA, NA, NA, NA, NA, NA, NA, NA]),
            )],
            "movingAverage(collectd.test-db0.load.value,10)",
            (19, 24),
            vec![w(
                r#"movingAverage(collectd.test-db0.load.value,10)"#,
                ff(&[NA, NA, NA, NA, NA]),
            )],
        ),
        vw(
            "test_movingAverage_evaluateTarget_returns_half_none",
            vec![Series::new(
                "collectd.test-db0.load.value",
                10,
                30,
                1,
                ff(&[
                    NA, NA, NA, NA, NA, NA, NA, NA, NA, NA, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0,
                    8.0, 9.0,
                ]),
            )],
            "movingAverage(collectd.test-db0.load.value,10)",
            (19, 29),
            vec![w(
                r#"movingAverage(collectd.test-db0.load.value,10)"#,
                ff(&[0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5]),
            )],
        ),
        vw(
            "test_movingAverage_integerWindowSize",
            vec![Series::new(
                "collectd.test-db0.load.value",
                600,
                700,
                1,
                ff(&[
                    0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0,
                    15.0, 16.0, 17.0, 18.0, 19.0, 20.0, 21.0, 22.0, 23.0, 24.0, 25.0, 26.0, 27.0,
                    28.0, 29.0, 30.0, 31.0, 32.0, 33.0, 34.0, 35.0, 36.0, 37.0, 38.0, 39.0, 40.0,
                    41.0, 42.0, 43.0, 44.0, 45.0, 46.0, 47.0, 48.0, 49.0, 50.0, 51.0, 52.0, 53.0,
                    54.0, 55.0, 56.0, 57.0, 58.0, 59.0, 60.0, 61.0, 62.0, 63.0, 64.0, 65.0, 66.0,
                    67.0, 68.0, 69.0, 70.0, 71.0, 72.0, 73.0, 74.0, 75.0, 76.0, 77.0, 78.0, 79.0,
                    80.0, 81.0, 82.0, 83.0, 84.0, 85.0, 86.0, 87.0, 88.0, 89.0, 90.0, 91.0, 92.0,
                    93.0, 94.0, 95.0, 96.0, 97.0, 98.0, 99.0,
                ]),
            )],
            "movingAverage(collectd.test-db0.load.value,60)",
            (659, 699),
            vec![w(
                r#"movingAverage(collectd.test-db0.load.value,60)"#,
                ff(&[
                    30.5, 31.5, 32.5, 33.5, 34.5, 35.5, 36.5, 37.5, 38.5, 39.5, 40.5, 41.5, 42.5,
                    43.5, 44.5, 45.5, 46.5, 47.5, 48.5, 49.5, 50.5, 51.5, 52.5, 53.5, 54.5, 55.5,
                    56.5, 57.5, 58.5, 59.5, 60.5, 61.5, 62.5, 63.5, 64.5, 65.5, 66.5, 67.5, 68.5,
                    69.5,
                ]),
            )],
        ),
        vw(
            "test_movingAverage_stringWindowSize",
            vec![Series::new(
                "collectd.test-db0.load.value",
                600,
                700,
                1,
                ff(&[
                    0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0,
                    15.0, 16.0, 17.0, 18.0, 19.0, 20.0, 21.0, 22.0, 23.0, 24.0, 25.0, 26.0, 27.0,
                    28.0, 29.0, 30.0, 31.0, 32.0, 33.0, 34.0, 35.0, 36.0, 37.0, 38.0, 39.0, 40.0,
                    41.0, 42.0, 43.0, 44.0, 45.0, 46.0, 47.0, 48.0, 49.0, 50.0, 51.0, 52.0, 53.0,
                    54.0, 55.0, 56.0, 57.0, 58.0, 59.0, 60.0, 61.0, 62.0, 63.0, 64.0, 65.0, 66.0,
                    67.0, 68.0, 69.0, 70.0, 71.0, 72.0, 73.0, 74.0, 75.0, 76.0, 77.0, 78.0, 79.0,
                    80.0, 81.0, 82.0, 83.0, 84.0, 85.0, 86.0, 87.0, 88.0, 89.0, 90.0, 91.0, 92.0,
                    93.0, 94.0, 95.0, 96.0, 97.0, 98.0, 99.0,
                ]),
            )],
            "movingAverage(collectd.test-db0.load.value,'-1min')",
            (659, 699),
            vec![w(
                r#"movingAverage(collectd.test-db0.load.value,"-1min")"#,
                ff(&[
                    30.5, 31.5, 32.5, 33.5, 34.5, 35.5, 36.5, 37.5, 38.5, 39.5, 40.5, 41.5, 42.5,
                    43.5, 44.5, 45.5, 46.5, 47.5, 48.5, 49.5, 50.5, 51.5, 52.5, 53.5, 54.5, 55.5,
                    56.5, 57.5, 58.5, 59.5, 60.5, 61.5, 62.5, 63.5, 64.5, 65.5, 66.5, 67.5, 68.5,
                    69.5,
                ]),
            )],
        ),
        vw(
            "test_movingMin_evaluateTarget_returns_none",
            vec![Series::new(
                "collectd.test-db0.load.value",
                10,
                25,
                1,
                ff(&[NA, NA, NA, NA, NA, NA, NA, NA, NA, NA, NA, NA, NA, NA, NA]),
            )],
            "movingMin(collectd.test-db0.load.value,10)",
            (19, 24),
            vec![w(
                r#"movingMin(collectd.test-db0.load.value,10)"#,
                ff(&[NA, NA, NA, NA, NA]),
            )],
        ),
        vw(
            "test_movingMin_evaluateTarget_returns_half_none",
            vec![Series::new(
                "collectd.test-db0.load.value",
                10,
                30,
                1,
                ff(&[
                    NA, NA, NA, NA, NA, NA, NA, NA, NA, NA, 2.0, 1.0, 2.0, 1.0, 2.0, 1.0, 2.0, 1.0,
                    2.0, 1.0,
                ]),
            )],
            "movingMin(collectd.test-db0.load.value,10)",
            (19, 29),
            vec![w(
                r#"movingMin(collectd.test-db0.load.value,10)"#,
                ff(&[2.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]),
            )],
        ),
        vw(
            "test_movingMin_integerWindowSize",
            vec![Series::new(
                "collectd.test-db0.load.value",
                10,
                30,
                1,
                ff(&[
                    NA, NA, NA, NA, NA, NA, NA, NA, NA, NA, 10.0, 1.0, 10.0, 1.0, 10.0, 1.0, 10.0,
                    1.0, 10.0, 1.0,
                ]),
            )],
            "movingMin(collectd.test-db0.load.value,10)",
            (19, 29),
            vec![w(
                r#"movingMin(collectd.test-db0.load.value,10)"#,
                ff(&[10.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]),
            )],
        ),
        vw(
            "test_movingMin_stringWindowSize",
            vec![Series::new(
                "collectd.test-db0.load.value",
                600,
                700,
                1,
                ff(&[
                    10.0, 1.0, 10.0, 1.0, 10.0, 1.0, 10.0, 1.0, 10.0, 1.0, 10.0, 1.0, 10.0, 1.0,
                    10.0, 1.0, 10.0, 1.0, 10.0, 1.0, 10.0, 1.0, 10.0, 1.0, 10.0, 1.0, 10.0, 1.0,
                    10.0, 1.0, 10.0, 1.0, 10.0, 1.0, 10.0, 1.0, 10.0, 1.0, 10.0, 1.0, 10.0, 1.0,
                    10.0, 1.0, 10.0, 1.0, 10.0, 1.0, 10.0, 1.0, 10.0, 1.0, 10.0, 1.0, 10.0, 1.0,
                    10.0, 1.0, 10.0, 1.0, 10.0, 1.0, 10.0, 1.0, 10.0, 1.0, 10.0, 1.0, 10.0, 1.0,
                    10.0, 1.0, 10.0, 1.0, 10.0, 1.0, 10.0, 1.0, 10.0, 1.0, 10.0, 1.0, 10.0, 1.0,
                    10.0, 1.0, 10.0, 1.0, 10.0, 1.0, 10.0, 1.0, 10.0, 1.0, 10.0, 1.0, 10.0, 1.0,
                    10.0, 1.0,
                ]),
            )],
            "movingMin(collectd.test-db0.load.value,'-1min')",
            (659, 699),
            vec![w(
                r#"movingMin(collectd.test-db0.load.value,"-1min")"#,
                ff(&[
                    1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0,
                    1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0,
                    1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0,
                ]),
            )],
        ),
        vw(
            "test_movingMax_evaluateTarget_returns_none",
            vec![Series::new(
                "collectd.test-db0.load.value",
                10,
                25,
                1,
                ff(&[NA, NA, NA, NA, NA, NA, NA, NA, NA, NA, NA, NA, NA, NA, NA]),
            )],
            "movingMax(collectd.test-db0.load.value,10)",
            (19, 24),
            vec![w(
                r#"movingMax(collectd.test-db0.load.value,10)"#,
                ff(&[NA, NA, NA, NA, NA]),
            )],
        ),
        vw(
            "test_movingMax_evaluateTarget_returns_half_none",
            vec![Series::new(
                "collectd.test-db0.load.value",
                10,
                30,
                1,
                ff(&[
                    NA, NA, NA, NA, NA, NA, NA, NA, NA, NA, 1.0, 2.0, 1.0, 2.0, 1.0, 2.0, 1.0, 2.0,
                    1.0, 2.0,
                ]),
            )],
            "movingMax(collectd.test-db0.load.value,10)",
            (19, 29),
            vec![w(
                r#"movingMax(collectd.test-db0.load.value,10)"#,
                ff(&[1.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0]),
            )],
        ),
        vw(
            "test_movingMax_integerWindowSize",
            vec![Series::new(
                "collectd.test-db0.load.value",
                10,
                30,
                1,
                ff(&[
                    NA, NA, NA, NA, NA, NA, NA, NA, NA, NA, 1.0, 2.0, 1.0, 2.0, 1.0, 2.0, 1.0, 2.0,
                    1.0, 2.0,
                ]),
            )],
            "movingMax(collectd.test-db0.load.value,10)",
            (19, 29),
            vec![w(
                r#"movingMax(collectd.test-db0.load.value,10)"#,
                ff(&[1.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0]),
            )],
        ),
        vw(
            "test_movingMax_stringWindowSize",
            vec![Series::new(
                "collectd.test-db0.load.value",
                600,
                700,
                1,
                ff(&[
                    1.0, 10.0, 1.0, 10.0, 1.0, 10.0, 1.0, 10.0, 1.0, 10.0, 1.0, 10.0, 1.0, 10.0,
                    1.0, 10.0, 1.0, 10.0, 1.0, 10.0, 1.0, 10.0, 1.0, 10.0, 1.0, 10.0, 1.0, 10.0,
                    1.0, 10.0, 1.0, 10.0, 1.0, 10.0, 1.0, 10.0, 1.0, 10.0, 1.0, 10.0, 1.0, 10.0,
                    1.0, 10.0, 1.0, 10.0, 1.0, 10.0, 1.0, 10.0, 1.0, 10.0, 1.0, 10.0, 1.0, 10.0,
                    1.0, 10.0, 1.0, 10.0, 1.0, 10.0, 1.0, 10.0, 1.0, 10.0, 1.0, 10.0, 1.0, 10.0,
                    1.0, 10.0, 1.0, 10.0, 1.0, 10.0, 1.0, 10.0, 1.0, 10.0, 1.0, 10.0, 1.0, 10.0,
                    1.0, 10.0, 1.0, 10.0, 1.0, 10.0, 1.0, 10.0, 1.0, 10.0, 1.0, 10.0, 1.0, 10.0,
                    1.0, 10.0,
                ]),
            )],
            "movingMax(collectd.test-db0.load.value,'-1min')",
            (659, 699),
            vec![w(
                r#"movingMax(collectd.test-db0.load.value,"-1min")"#,
                ff(&[
                    10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0,
                    10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0,
                    10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0,
                    10.0,
                ]),
            )],
        ),
        vw(
            "test_movingSum_evaluateTarget_returns_none",
            vec![Series::new(
                "collectd.test-db0.load.value",
                10,
                25,
                1,
                ff(&[NA, NA, NA, NA, NA, NA, NA, NA, NA, NA, NA, NA, NA, NA, NA]),
            )],
            "movingSum(collectd.test-db0.load.value,10)",
            (19, 24),
            vec![w(
                r#"movingSum(collectd.test-db0.load.value,10)"#,
                ff(&[NA, NA, NA, NA, NA]),
            )],
        ),
        vw(
            "test_movingSum_evaluateTarget_returns_half_none",
            vec![Series::new(
                "collectd.test-db0.load.value",
                10,
                30,
                1,
                ff(&[
                    NA, NA, NA, NA, NA, NA, NA, NA, NA, NA, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0,
                    8.0, 9.0,
                ]),
            )],
            "movingSum(collectd.test-db0.load.value,10)",
            (19, 29),
            vec![w(
                r#"movingSum(collectd.test-db0.load.value,10)"#,
                ff(&[0.0, 1.0, 3.0, 6.0, 10.0, 15.0, 21.0, 28.0, 36.0, 45.0]),
            )],
        ),
        vw(
            "test_movingSum_integerWindowSize",
            vec![Series::new(
                "collectd.test-db0.load.value",
                600,
                700,
                1,
                ff(&[
                    1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0,
                    1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0,
                    1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0,
                    1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0,
                    1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0,
                    1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0,
                    1.0, 1.0, 1.0, 1.0,
                ]),
            )],
            "movingSum(collectd.test-db0.load.value,60)",
            (659, 699),
            vec![w(
                r#"movingSum(collectd.test-db0.load.value,60)"#,
                ff(&[
                    60.0, 60.0, 60.0, 60.0, 60.0, 60.0, 60.0, 60.0, 60.0, 60.0, 60.0, 60.0, 60.0,
                    60.0, 60.0, 60.0, 60.0, 60.0, 60.0, 60.0, 60.0, 60.0, 60.0, 60.0, 60.0, 60.0,
                    60.0, 60.0, 60.0, 60.0, 60.0, 60.0, 60.0, 60.0, 60.0, 60.0, 60.0, 60.0, 60.0,
                    60.0,
                ]),
            )],
        ),
        vw(
            "test_movingSum_stringWindowSize",
            vec![Series::new(
                "collectd.test-db0.load.value",
                600,
                700,
                1,
                ff(&[
                    1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0,
                    1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0,
                    1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0,
                    1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0,
                    1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0,
                    1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0,
                    1.0, 1.0, 1.0, 1.0,
                ]),
            )],
            "movingSum(collectd.test-db0.load.value,'-1min')",
            (659, 699),
            vec![w(
                r#"movingSum(collectd.test-db0.load.value,"-1min")"#,
                ff(&[
                    60.0, 60.0, 60.0, 60.0, 60.0, 60.0, 60.0, 60.0, 60.0, 60.0, 60.0, 60.0, 60.0,
                    60.0, 60.0, 60.0, 60.0, 60.0, 60.0, 60.0, 60.0, 60.0, 60.0, 60.0, 60.0, 60.0,
                    60.0, 60.0, 60.0, 60.0, 60.0, 60.0, 60.0, 60.0, 60.0, 60.0, 60.0, 60.0, 60.0,
                    60.0,
                ]),
            )],
        ),
    ];
    // `*_evaluateTarget_returns_empty_list`: nothing matches → no series.
    for f in [
        "movingMedian",
        "movingAverage",
        "movingMin",
        "movingMax",
        "movingSum",
    ] {
        rows.push(vw(
            "test_movingX_evaluateTarget_returns_empty_list",
            vec![ser("other.series", &[Some(1.0)])],
            &format!("{f}(collectd.test-db0.load.value,60)"),
            (609, 709),
            vec![],
        ));
    }
    verify_all(rows);
    // test_movingWindow_invalidFunc
    let d = vec![ser("collectd.test-db0.load.value", &range_vals(10, 25, 1))];
    let err = run_err(
        &d,
        t("movingWindow(collectd.test-db0.load.value,5,'invalid')"),
    );
    assert!(err.contains("invalid"), "{err}");
}

#[test]
fn graphite_web_holt_winters_vectors() {
    // graphite-web mocks the bootstrap re-fetch with the same series one week earlier; here
    // the source holds that whole week plus the requested 10 points of step 600.
    const START: i64 = 2_678_400; // 1970-02-01
    const WEEK: i64 = 7 * 86_400;
    let hw = |name: &str, offset: f64| {
        let points = WEEK / 600 + 10;
        Series::new(
            name,
            START - WEEK,
            START - WEEK + points * 600,
            600,
            (0..points)
                .map(|k| Some(offset + (k % 10) as f64))
                .collect(),
        )
    };
    let lower = ff(&[
        0.2841206166091448,
        1.0581027098774411,
        0.3338172102994683,
        0.5116859493263242,
        -0.18199175514936972,
        0.2366173792019426,
        -1.2941554508809152,
        -0.513426806531049,
        -0.7970905542723132,
        0.09868900726536012,
    ]);
    let upper = ff(&[
        8.424944558327624,
        9.409422251880809,
        10.607070189221787,
        10.288439865038768,
        9.491556863132963,
        9.474595784593738,
        8.572310478053845,
        8.897670449095346,
        8.941566968508148,
        9.409728797779282,
    ]);
    let window = (START - 1, START + 6000 - 1);
    let mk = |test, data, target: &str, want| {
        let mut vec = v(test, data, target, want);
        vec.window = Some(window);
        vec.times = Some((START, START + 6000, 600));
        vec
    };
    let aberr = || {
        let mut x = [0.0; 10];
        x[2] = -0.3338172102994683;
        ff(&x)
    };
    verify_all(vec![
        mk(
            "test_holtWintersConfidenceBands",
            vec![hw("collectd.test-db0.load.value", 0.0)],
            "holtWintersConfidenceBands(collectd.test-db0.load.value)",
            vec![
                w(
                    "holtWintersConfidenceLower(collectd.test-db0.load.value)",
                    lower.clone(),
                ),
                w(
                    "holtWintersConfidenceUpper(collectd.test-db0.load.value)",
                    upper.clone(),
                ),
            ],
        ),
        mk(
            "test_holtWintersConfidenceArea",
            vec![hw("collectd.test-db0.load.value", 0.0)],
            "holtWintersConfidenceArea(collectd.test-db0.load.value)",
            vec![
                w(
                    "holtWintersConfidenceArea(collectd.test-db0.load.value)",
                    lower,
                ),
                w(
                    "holtWintersConfidenceArea(collectd.test-db0.load.value)",
                    upper,
                ),
            ],
        ),
        // Adapted: graphite-web's mock gives the bootstrap re-fetch other values than the
        // request series at the same times (request 0..9, re-fetch 8, 9, 0..7), so its
        // aberrations (-0.284, -0.058, 0...) compare 0..9 with the bands. With one consistent
        // source the actual values are 8, 9, 0..7; by graphite-web's rule (actual minus the
        // band it leaves, else 0) only the third point (0 < lower 0.3338) is an aberration.
        mk(
            "test_holtWintersAberration (consistent source)",
            vec![
                hw("collectd.test-db0.load.value", 0.0),
                hw("collectd.test-db1.load.value", 10.0),
            ],
            "holtWintersAberration(group(collectd.test-db0.load.value,collectd.test-db1.load.value))",
            vec![
                w(
                    "holtWintersAberration(collectd.test-db0.load.value)",
                    aberr(),
                ),
                w(
                    "holtWintersAberration(collectd.test-db1.load.value)",
                    aberr(),
                ),
            ],
        ),
    ]);
}

#[test]
fn graphite_web_graph_and_legend_vectors() {
    let stack_in = db4_60([
        &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
        &[X, 2, X, 4, X, 6, X, 8, X, 10],
        &[1, 2, X, X, X, 6, 7, 8, 9, 10],
        &[1, 2, 3, 4, 5, 6, 7, 8, 9, X],
    ]);
    let stack_out = [
        o(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]),
        o(&[X, 4, X, 8, X, 12, X, 16, X, 20]),
        o(&[2, 6, X, X, X, 18, 14, 24, 18, 30]),
        o(&[3, 8, 6, 12, 10, 24, 21, 32, 27, X]),
    ];
    let stacked_named = |f: &dyn Fn(&str) -> String| -> Vec<(String, Vec<Option<f64>>)> {
        (0..4)
            .map(|k| w(f(&db_name(k + 1)), stack_out[k].clone()))
            .collect()
    };
    let cacti_in = filter_data_cacti();
    let cacti = |names: [&str; 4]| -> Vec<(String, Vec<Option<f64>>)> {
        names
            .iter()
            .zip(&cacti_in)
            .map(|(n, s)| w(format!("{} {n}", s.name), s.values.clone()))
            .collect()
    };
    let plain = [
        "Current:10.00    Max:10.00    Min:1.00    ",
        "Current:nan      Max:nan      Min:nan     ",
        "Current:10.00    Max:10.00    Min:1.00    ",
        "Current:9.00     Max:9.00     Min:1.00    ",
    ];
    let units = [
        "Current:10.00 b    Max:10.00 b    Min:1.00 b    ",
        "Current:nan        Max:nan        Min:nan       ",
        "Current:10.00 b    Max:10.00 b    Min:1.00 b    ",
        "Current:9.00 b     Max:9.00 b     Min:1.00 b    ",
    ];
    let legend_in = vec![
        ser("foo", &o(&[10000, 20000, -30000, -40000, X])),
        ser("bar", &o(&[0, 10000, 20000, -30000, -40000])),
        ser("baz", &[N; 5]),
    ];
    let lg = grp(&legend_in);
    let legend = |names: [&str; 3]| -> Vec<(String, Vec<Option<f64>>)> {
        names
            .iter()
            .zip(&legend_in)
            .map(|(n, s)| w(*n, s.values.clone()))
            .collect()
    };
    let area_in = db4_60([
        &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
        &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
        &[1; 10],
        &[1; 10],
    ])[..2]
        .to_vec();
    let area_vals = o(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    let foo = vec![ser("foo", &o(&[-10000, -20000, -30000, -40000]))];
    verify_all(vec![
        v(
            "test_stacked",
            stack_in.clone(),
            format!("stacked({})", grp(&stack_in)),
            stacked_named(&|n| format!("stacked({n})")),
        ),
        v(
            "test_stacked_with_name",
            stack_in.clone(),
            format!("stacked({},'my_fun_stack')", grp(&stack_in)),
            stacked_named(&|n| n.to_string()),
        ),
        v(
            "test_areaBetween",
            area_in.clone(),
            format!("areaBetween({})", grp(&area_in)),
            vec![
                w(format!("areaBetween({})", db_name(2)), area_vals.clone()),
                w(format!("areaBetween({})", db_name(2)), area_vals),
            ],
        ),
        v(
            "test_cactiStyle",
            cacti_in.clone(),
            format!("cactiStyle({})", grp(&cacti_in)),
            cacti(plain),
        ),
        v(
            "test_cactiStyle_units",
            cacti_in.clone(),
            format!("cactiStyle({},units='b')", grp(&cacti_in)),
            cacti(units),
        ),
        v(
            "test_cactiStyle_binary",
            cacti_in.clone(),
            format!("cactiStyle({},'binary')", grp(&cacti_in)),
            cacti(plain),
        ),
        v(
            "test_cactiStyle_binary_units",
            cacti_in.clone(),
            format!("cactiStyle({},'binary','b')", grp(&cacti_in)),
            cacti(units),
        ),
        v(
            "test_legendValue_with_system_preserves_sign",
            foo.clone(),
            "legendValue(foo,'avg','si')",
            vec![w("foo                 avg  -25.00k   ", foo[0].values.clone())],
        ),
        // Adapted: graphite-web's inputs are Python ints, printed `-40000`; fetched data is
        // always float (whisper), which graphite-web prints with `%s` as `-40000.0`.
        v(
            "test_legendValue_all (float data)",
            legend_in.clone(),
            format!("legendValue({lg},'avg','total','min','max','last')"),
            legend([
                "foo (avg: -10000.0) (total: -40000.0) (min: -40000.0) (max: 20000.0) (last: -40000.0)",
                "bar (avg: -8000.0) (total: -40000.0) (min: -40000.0) (max: 20000.0) (last: -40000.0)",
                "baz (avg: None) (total: None) (min: None) (max: None) (last: None)",
            ]),
        ),
        v(
            "test_legendValue_all_si",
            legend_in.clone(),
            format!("legendValue({lg},'avg','total','min','max','last','si')"),
            legend([
                "foo                 avg  -10.00k   total-40.00k   min  -40.00k   max  20.00k    last -40.00k   ",
                "bar                 avg  -8.00k    total-40.00k   min  -40.00k   max  20.00k    last -40.00k   ",
                "baz                 avg  None      totalNone      min  None      max  None      last None      ",
            ]),
        ),
        v(
            "test_legendValue_all_binary",
            legend_in.clone(),
            format!("legendValue({lg},'avg','total','min','max','last','binary')"),
            legend([
                "foo                 avg  -9.77Ki   total-39.06Ki  min  -39.06Ki  max  19.53Ki   last -39.06Ki  ",
                "bar                 avg  -7.81Ki   total-39.06Ki  min  -39.06Ki  max  19.53Ki   last -39.06Ki  ",
                "baz                 avg  None      totalNone      min  None      max  None      last None      ",
            ]),
        ),
    ]);
}

/// test_legendValue_invalid_none: graphite-web renders `(bogus: (?))` only because
/// ENFORCE_INPUT_VALIDATION is off; carbide follows the declared options and errors
/// (tests/graphite-web/README.md).
#[test]
fn graphite_web_legend_value_invalid_option_is_an_error() {
    let d = vec![ser("foo", &o(&[1, 2]))];
    let err = run_err(&d, t("legendValue(foo,'avg','bogus')"));
    assert!(err.contains("bogus"), "{err}");
}

/// The data of graphite-web's cactiStyle tests.
fn filter_data_cacti() -> Vec<Series> {
    db4_60([
        &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
        &[X; 10],
        &[1, 2, X, X, X, 6, 7, 8, 9, 10],
        &[1, 2, 3, 4, 5, 6, 7, 8, 9, X],
    ])
}

#[test]
fn graphite_web_case_and_apply_vectors() {
    // graphite-web's names '' and '!@#$%^&*()_+' are not paths: they are made with alias().
    let d = vec![
        ser("m.a", &[Some(1.0)]),
        ser("normal.metric.name.with.normal.length", &[Some(1.0)]),
        ser("NORMAL.METRIC.NAME.WITH.NORMAL.LENGTH", &[Some(1.0)]),
        ser("m.A", &[Some(1.0)]),
    ];
    let n = "normal.metric.name.with.normal.length";
    let big = "NORMAL.METRIC.NAME.WITH.NORMAL.LENGTH";
    let one = |name: &str| vec![w(name, vec![Some(1.0)])];
    let disk: Vec<Series> = [
        ("servers.s1.disk.bytes_used", [10, 20, 30]),
        ("servers.s1.disk.bytes_free", [90, 80, 70]),
        ("servers.s2.disk.bytes_used", [1, 2, 3]),
        ("servers.s2.disk.bytes_free", [99, 98, 97]),
    ]
    .iter()
    .map(|(name, d)| ser(name, &o(d)))
    .collect();
    let dg = grp(&disk);
    let pct = [ff(&[0.10, 0.20, 0.30]), ff(&[0.01, 0.02, 0.03])];
    let mut rows = vec![
        v("test_upper_without_positions", d.clone(), "upper(alias(m.a,''))", one("")),
        v("test_upper_without_positions", d.clone(), "upper(alias(m.a,'a'))", one("A")),
        v("test_upper_without_positions", d.clone(), format!("upper({n})"), one(big)),
        v(
            "test_upper_without_positions",
            d.clone(),
            "upper(alias(m.a,'!@#$%^&*()_+'))",
            one("!@#$%^&*()_+"),
        ),
        v(
            "test_upper_with_one_position",
            d.clone(),
            format!("upper({n},10)"),
            one("normal.metRic.name.with.normal.length"),
        ),
        v(
            "test_upper_with_one_position",
            d.clone(),
            format!("upper(upper({n},10),0)"),
            one("Normal.metRic.name.with.normal.length"),
        ),
        v(
            "test_upper_with_one_position",
            d.clone(),
            format!("upper(upper(upper({n},10),0),-1)"),
            one("Normal.metRic.name.with.normal.lengtH"),
        ),
        v(
            "test_upper_with_one_position",
            d.clone(),
            format!("upper(upper(upper(upper({n},10),0),-1),1000)"),
            one("Normal.metRic.name.with.normal.lengtH"),
        ),
        v(
            "test_upper_with_one_position",
            d.clone(),
            "upper(alias(m.a,''),10)",
            one(""),
        ),
        v(
            "test_upper_with_multiple_positions",
            d.clone(),
            format!("upper({n},0,15,100,-3,-1,-1000)"),
            one("Normal.metric.nAme.with.normal.lenGtH"),
        ),
        v("test_lower_without_positions", d.clone(), "lower(m.A)", one("m.a")),
        v("test_lower_without_positions", d.clone(), format!("lower({big})"), one(n)),
        v(
            "test_lower_without_positions",
            d.clone(),
            "lower(alias(m.a,'!@#$%^&*()_+'))",
            one("!@#$%^&*()_+"),
        ),
        v(
            "test_lower_with_one_position",
            d.clone(),
            format!("lower({big},10)"),
            one("NORMAL.METrIC.NAME.WITH.NORMAL.LENGTH"),
        ),
        v(
            "test_lower_with_one_position",
            d.clone(),
            format!("lower(lower(lower(lower({big},10),0),-1),1000)"),
            one("nORMAL.METrIC.NAME.WITH.NORMAL.LENGTh"),
        ),
        v(
            "test_lower_with_multiple_positions",
            d.clone(),
            format!("lower({big},0,15,100,-3,-1,-1000)"),
            one("nORMAL.METRIC.NaME.WITH.NORMAL.LENgTh"),
        ),
        // Adapted names: graphite-web's mocked fetcher gives each fetched series its own name
        // as path expression (`sumSeries(servers.s1.disk.bytes_used,servers.s1.disk.bytes_free)`);
        // a real fetch keeps the glob as path expression, as the conformance goldens record.
        v(
            "test_applyByNode",
            disk.clone(),
            format!("applyByNode({dg},1,'divideSeries(%.disk.bytes_used, sumSeries(%.disk.bytes_*))')"),
            vec![
                w(
                    "divideSeries(servers.s1.disk.bytes_used,sumSeries(servers.s1.disk.bytes_*))",
                    pct[0].clone(),
                ),
                w(
                    "divideSeries(servers.s2.disk.bytes_used,sumSeries(servers.s2.disk.bytes_*))",
                    pct[1].clone(),
                ),
            ],
        ),
        v(
            "test_applyByNode_newName",
            disk.clone(),
            format!("applyByNode({dg},1,'divideSeries(%.disk.bytes_used, sumSeries(%.disk.bytes_*))','%.disk.pct_used')"),
            vec![
                w("servers.s1.disk.pct_used", pct[0].clone()),
                w("servers.s2.disk.pct_used", pct[1].clone()),
            ],
        ),
    ];
    // Time functions over a whisper-aligned window: graphite-web's mocked fetcher returns all
    // 11 points whatever the window; a whisper-style fetch of the 10-minute window gives 10.
    let tv = vec![Series::new(
        "test.value",
        0,
        660,
        60,
        o(&[X, X, X, 3, X, 5, 6, X, 7, X, X]),
    )];
    let mut shift = v(
        "test_timeShift (10 of 11 points)",
        tv.clone(),
        "timeShift(test.value,'-10minutes')",
        vec![w(
            "timeShift(test.value, \"-10minutes\")",
            o(&[X, X, X, 3, X, 5, 6, X, 7, X]),
        )],
    );
    shift.window = Some((599, 1199));
    shift.times = Some((600, 1200, 60));
    rows.push(shift);
    let mut shift_dst = v(
        "test_timeShift_alignDST (10 of 11 points; UTC, so no DST shift)",
        tv.clone(),
        "timeShift(test.value,'-10minutes',true,true)",
        vec![w(
            "timeShift(test.value, \"-10minutes\")",
            o(&[X, X, X, 3, X, 5, 6, X, 7, X]),
        )],
    );
    shift_dst.window = Some((599, 1199));
    shift_dst.times = Some((600, 1200, 60));
    rows.push(shift_dst);
    let sliced = vec![Series::new(
        "test.value",
        0,
        660,
        60,
        o(&[X, 1, 2, 3, X, 5, 6, X, 7, 8, 9]),
    )];
    // Adapted: graphite-web walks the points with a clock starting at the request's
    // startTime, not at the series start. Its mocked series starts at startTime; a
    // whisper-style fetch starts one step after `from` (-1 here), so the clock reads 179 at
    // the point of 180 and that point (3) falls outside [180, 480], while 480 (clock 479)
    // stays in.
    let mut slice = v(
        "test_timeSlice (10 of 11 points, whisper-aligned start)",
        sliced,
        "timeSlice(test.value,'00:03 19700101','00:08 19700101')",
        vec![w(
            "timeSlice(test.value, 180, 480)",
            o(&[X, X, X, X, X, 5, 6, X, 7, X]),
        )],
    );
    slice.window = Some((-1, 599));
    slice.times = Some((0, 600, 60));
    rows.push(slice);
    verify_all(rows);
}

#[test]
fn graphite_web_summarize_vectors() {
    let names = [
        "servers.s1.disk.bytes_used",
        "servers.s1.disk.bytes_free",
        "servers.s2.disk.bytes_used",
        "servers.s2.disk.bytes_free",
    ];
    let disk = vec![
        ser(names[0], &range_vals(0, 240, 1)),
        ser(
            names[1],
            &(0..240).map(|x| Some(-x as f64)).collect::<Vec<_>>(),
        ),
        ser(names[2], &[N; 240]),
        ser(names[3], &range_vals(0, 480, 2)),
    ];
    let dg = grp(&disk);
    let per = |label: &dyn Fn(&str) -> String, rows: [&[f64]; 4]| {
        names
            .iter()
            .zip(rows)
            .map(|(n, r)| w(label(n), ff(r)))
            .collect::<Vec<_>>()
    };
    let timed = |mut vec: Vector, times: (i64, i64, i64)| {
        vec.times = Some(times);
        vec
    };
    let nulls = [NA; 4];
    let mut rows = vec![timed(
        v(
            "test_hitcount_1minute_alignToFrom_false",
            disk.clone(),
            format!("hitcount({dg},'1minute')"),
            per(
                &|n| format!("hitcount({n}, \"1minute\")"),
                [
                    &[1770.0, 5370.0, 8970.0, 12570.0],
                    &[-1770.0, -5370.0, -8970.0, -12570.0],
                    &nulls,
                    &[3540.0, 10740.0, 17940.0, 25140.0],
                ],
            ),
        ),
        (0, 240, 60),
    )];
    let summarize: [(&str, [&[f64]; 4]); 5] = [
        (
            "sum",
            [
                &[1770.0, 5370.0, 8970.0, 12570.0],
                &[-1770.0, -5370.0, -8970.0, -12570.0],
                &nulls,
                &[3540.0, 10740.0, 17940.0, 25140.0],
            ],
        ),
        (
            "avg",
            [
                &[29.5, 89.5, 149.5, 209.5],
                &[-29.5, -89.5, -149.5, -209.5],
                &nulls,
                &[59.0, 179.0, 299.0, 419.0],
            ],
        ),
        (
            "last",
            [
                &[59.0, 119.0, 179.0, 239.0],
                &[-59.0, -119.0, -179.0, -239.0],
                &nulls,
                &[118.0, 238.0, 358.0, 478.0],
            ],
        ),
        (
            "max",
            [
                &[59.0, 119.0, 179.0, 239.0],
                &[0.0, -60.0, -120.0, -180.0],
                &nulls,
                &[118.0, 238.0, 358.0, 478.0],
            ],
        ),
        (
            "min",
            [
                &[0.0, 60.0, 120.0, 180.0],
                &[-59.0, -119.0, -179.0, -239.0],
                &nulls,
                &[0.0, 120.0, 240.0, 360.0],
            ],
        ),
    ];
    for (func, want) in summarize {
        rows.push(timed(
            v(
                "test_summarize_1minute_alignToFrom",
                disk.clone(),
                format!("summarize({dg},'1minute','{func}',true)"),
                per(
                    &|n| format!("summarize({n}, \"1minute\", \"{func}\", true)"),
                    want,
                ),
            ),
            (0, 240, 60),
        ));
    }
    // test_summarize_xFilesFactor: graphite-web sets the series' xFilesFactor attribute;
    // here the xFilesFactor() function sets it.
    let mut xff_vals = vec![Some(1.0); 100];
    xff_vals.extend([N; 60]);
    xff_vals.extend(vec![Some(1.0); 90]);
    let xff_data = vec![ser("collectd.test-db0.load.value", &xff_vals)];
    let xff_rows: [(&str, [f64; 5]); 6] = [
        ("0", [60.0, 40.0, 20.0, 60.0, 10.0]),
        ("0.1", [60.0, 40.0, 20.0, 60.0, 10.0]),
        ("0.25", [60.0, 40.0, 20.0, 60.0, NA]),
        ("0.5", [60.0, 40.0, NA, 60.0, NA]),
        ("0.75", [60.0, NA, NA, 60.0, NA]),
        ("1", [60.0, NA, NA, 60.0, NA]),
    ];
    for (xff, want) in xff_rows {
        rows.push(timed(
            v(
                "test_summarize_xFilesFactor",
                xff_data.clone(),
                format!(
                    "summarize(xFilesFactor(collectd.test-db0.load.value,{xff}),'1minute','sum',true)"
                ),
                vec![w(
                    "summarize(collectd.test-db0.load.value, \"1minute\", \"sum\", true)",
                    ff(&want),
                )],
            ),
            (0, 300, 60),
        ));
    }
    verify_all(rows);
}

#[test]
fn graphite_web_selection_vectors() {
    let pct: Vec<Series> = [(1, 7.0), (2, 5.0), (3, 10.0), (4, 1.0)]
        .iter()
        .map(|(db, x)| ser(&db_name(*db), &vec![Some(*x); 100]))
        .collect();
    let pg = grp(&pct);
    let foo_bar = vec![
        ser_step(
            "test.foo",
            60,
            &o(&[10, 10, 10, 3, 10, 5, 6, 10, 7, 10, 10]),
        ),
        ser_step("test.bar", 60, &o(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9])),
        ser_step("test.baz", 60, &o(&[1; 10])),
        ser_step("test.blah", 60, &o(&[5; 10])),
    ];
    let padded = |k: usize| {
        let mut vals = foo_bar[k].values.clone();
        vals.resize(11, None);
        w(foo_bar[k].name.clone(), vals)
    };
    // useSeriesAbove: graphite-web's mocked fetcher returns test.foo at 0..600 whatever the
    // window; here test.foo (its first 10 points) lies in the requested window 600..1200.
    let above = vec![
        Series::new("test.value", 600, 1200, 60, range_vals(0, 10, 1)),
        Series::new(
            "test.foo",
            600,
            1200,
            60,
            o(&[10, 10, 10, 3, 10, 5, 6, 10, 7, 10]),
        ),
    ];
    let empties = vec![
        ser("t.0", &o(&[1000, 100, 10, 0])),
        ser("t.1", &o(&[2000, 200, X, X])),
        ser("t.2", &[N; 4]),
    ];
    let eg = grp(&empties);
    let uniq: Vec<Series> = [(3, 10.0), (2, 5.0), (4, 1.0)]
        .iter()
        .map(|(db, x)| ser(&db_name(*db), &vec![Some(*x); 100]))
        .collect();
    let sine = [
        0.4418244833187319,
        2.624330297809573,
        -5.440716964379951,
        7.73928862147125,
        -9.301280920157128,
        9.978032744219705,
        -9.705134889047493,
        8.508560145797974,
        -6.502191365954637,
        3.876982770359131,
    ];
    let mut sin_row = v(
        "test_sinFunction",
        vec![ser("unused", &[N])],
        "sinFunction('sine test',10)",
        vec![w("sine test", ff(&sine))],
    );
    sin_row.window = Some((600, 1200));
    sin_row.times = Some((600, 1200, 60));
    let mut rows = vec![
        v(
            "test_averageOutsidePercentile_30",
            pct.clone(),
            format!("averageOutsidePercentile({pg},30)"),
            same(&pct, &[1, 2, 3]),
        ),
        v(
            "test_averageOutsidePercentile_70",
            pct.clone(),
            format!("averageOutsidePercentile({pg},70)"),
            same(&pct, &[1, 2, 3]),
        ),
        v(
            "test_removeBetweenPercentile_30",
            pct.clone(),
            format!("removeBetweenPercentile({pg},30)"),
            same(&pct, &[1, 2, 3]),
        ),
        v(
            "test_removeBetweenPercentile_70",
            pct.clone(),
            format!("removeBetweenPercentile({pg},70)"),
            same(&pct, &[1, 2, 3]),
        ),
        v(
            "test_fallbackSeries",
            foo_bar.clone(),
            "fallbackSeries(test.foo,test.bar)",
            same(&foo_bar, &[0]),
        ),
        v(
            "test_mostDeviant",
            foo_bar.clone(),
            format!("mostDeviant({},2)", grp(&foo_bar)),
            vec![padded(1), padded(0)],
        ),
        v(
            "test_stdev_Nones",
            vec![ser_step("test.foo", 60, &[N; 10])],
            "stdev(test.foo,2)",
            vec![w("stdev(test.foo,2)", vec![N; 10])],
        ),
        v(
            "test_useSeriesAbove",
            above.clone(),
            "useSeriesAbove(test.value,8,'value','foo')",
            same(&above, &[1]),
        ),
        v(
            "test_useSeriesAbove_no_match",
            above.clone(),
            "useSeriesAbove(test.value,20,'value','foo')",
            vec![],
        ),
        v(
            "test_useSeriesAbove_fetch_returns_None",
            above[..1].to_vec(),
            "useSeriesAbove(test.value,8,'value','foo')",
            vec![],
        ),
        // graphite-web's input repeats db2 with other values; one path has one series here.
        v(
            "test_unique (adapted: repeated path)",
            uniq.clone(),
            format!("unique(group({},{}))", grp(&uniq), db_name(2)),
            same(&uniq, &[0, 1, 2]),
        ),
        sin_row,
    ];
    // test_check_empty_lists (removeEmptySeries with xFilesFactor)
    for (arg, keep) in [
        ("", &[0, 1][..]),
        (",0", &[0, 1]),
        (",0.25", &[0, 1]),
        (",0.5", &[0, 1]),
        (",0.75", &[0]),
        (",1", &[0]),
    ] {
        rows.push(v(
            "test_check_empty_lists",
            empties.clone(),
            format!("removeEmptySeries({eg}{arg})"),
            same(&empties, keep),
        ));
    }
    verify_all(rows);
}

#[test]
fn graphite_web_line_vectors() {
    let fd = filter_data();
    let fg = grp(&fd);
    // Lines drawn over the request window (constantLine's three points from `from` to
    // `until`) need the data inside that window: the same values at step 6 in 3606..3660.
    let shifted: Vec<Series> = fd
        .iter()
        .map(|s| Series::new(s.name.clone(), 3606, 3666, 6, s.values.clone()))
        .collect();
    let sg = grp(&shifted);
    let lines = |n: usize, vals: [Option<f64>; 4], labels: [&str; 4]| {
        (0..4)
            .map(|k| {
                w(
                    format!("aggregateLine({}, {})", db_name(k + 1), labels[k]),
                    vec![vals[k]; n],
                )
            })
            .collect::<Vec<_>>()
    };
    let on_window = |mut vec: Vector| {
        vec.window = Some((3600, 3660));
        vec.times = Some((3600, 3660, 30));
        vec
    };
    let avg = [
        Some(4.0),
        N,
        Some(1.8571428571428572),
        Some(8.222222222222221),
    ];
    let avg_labels = ["4", "None", "1.85714", "8.22222"];
    let rows = vec![
        on_window(v(
            "test_aggregateLine_default",
            shifted.clone(),
            format!("aggregateLine({sg})"),
            lines(3, avg, avg_labels),
        )),
        v(
            "test_aggregateLine_avg",
            fd.clone(),
            format!("aggregateLine({fg},'avg',keepStep=true)"),
            lines(10, avg, avg_labels),
        ),
        // graphite-web's request window is empty (start = end = 3600, step 0); the line
        // shape here follows the 60 s window.
        on_window(v(
            "test_aggregateLine_min (60 s window)",
            shifted.clone(),
            format!("aggregateLine({sg},'min')"),
            lines(
                3,
                [Some(1.0), N, Some(0.0), Some(6.0)],
                ["1", "None", "0", "6"],
            ),
        )),
        v(
            "test_aggregateLine_max",
            fd.clone(),
            format!("aggregateLine({fg},'max',keepStep=true)"),
            lines(
                10,
                [Some(7.0), N, Some(4.0), Some(10.0)],
                ["7", "None", "4", "10"],
            ),
        ),
        // Adapted names: graphite-web's test passes the int 7 straight to the function; the
        // render path converts the `float` parameter first, so the name is `7.0` (the
        // conformance goldens record `constantLine(42)` → `42.0`, `threshold(50)` → `50.0`).
        on_window(v(
            "test_threshold_default (60 s window, float name)",
            shifted.clone(),
            "threshold(7)",
            vec![w("7.0", vec![Some(7.0); 3])],
        )),
        on_window(v(
            "test_threshold_label_color (60 s window)",
            shifted.clone(),
            "threshold(7,'MyLine','blue')",
            vec![w("MyLine", vec![Some(7.0); 3])],
        )),
        on_window(v(
            "test_constantLine (float name)",
            shifted.clone(),
            "constantLine(1)",
            vec![w("1.0", vec![Some(1.0); 3])],
        )),
    ];
    verify_all(rows);
    let err = run_err(&fd, t(&format!("aggregateLine({fg},'bad')")));
    assert!(err.contains("bad"), "test_aggregateLine_bad: {err}");
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

#[test]
fn graphite_web_evaluator_vectors() {
    let disk: Vec<Series> = [
        ("servers.s1.disk.bytes_used", [10, 20, 30]),
        ("servers.s1.disk.bytes_free", [90, 80, 70]),
        ("servers.s2.disk.bytes_used", [1, 2, 3]),
        ("servers.s2.disk.bytes_free", [99, 98, 97]),
    ]
    .iter()
    .map(|(name, d)| ser(name, &o(d)))
    .collect();
    let sorted = vec![
        w("s1.bytes_free", o(&[90, 80, 70])),
        w("s1.bytes_used", o(&[10, 20, 30])),
        w("s2.bytes_free", o(&[99, 98, 97])),
        w("s2.bytes_used", o(&[1, 2, 3])),
    ];
    // graphite-web's list misses a comma after its first query, so its first query is the
    // concatenation of two; the two are ported separately.
    let mut rows: Vec<Vector> = [
        "aliasByNode(sortByName(servers.*.disk.*),1,3)",
        "servers.*.disk.*|sortByName()|aliasByNode(1,3)",
        "sortByName(servers.*.disk.*)|aliasByNode(1,3)",
        "aliasByNode(servers.*.disk.*|sortByName(),1,3)",
        "servers.*.disk.* | sortByName() | aliasByNode(1,3)",
    ]
    .iter()
    .map(|q| v("test_pipedCall", disk.clone(), *q, sorted.clone()))
    .collect();
    // Adapted: graphite-web's mocked fetcher makes each series' path expression its own name
    // and keeps its insertion order; a real fetch keeps the glob as path expression and lists
    // matches sorted, as the conformance goldens record
    // (`asPercent(servers.web*.cpu.total.*,None,1)` → `...,sumSeries(servers.web*.cpu.total.*))`).
    rows.push(
        v(
            "test_none_arg (real-fetch names and order)",
            disk.clone(),
            "asPercent(servers.*.disk.*, None, 1)",
            [
                ("servers.s1.disk.bytes_free", [90.0, 80.0, 70.0]),
                ("servers.s1.disk.bytes_used", [10.0, 20.0, 30.0]),
                ("servers.s2.disk.bytes_free", [99.0, 98.0, 97.0]),
                ("servers.s2.disk.bytes_used", [1.0, 2.0, 3.0]),
            ]
            .iter()
            .map(|(n, vals)| {
                w(
                    format!("asPercent({n},sumSeries(servers.*.disk.*))"),
                    ff(vals),
                )
            })
            .collect(),
        )
        .rounded(2),
    );
    verify_all(rows);
}

#[test]
fn graphite_web_time_and_reduce_vectors() {
    let r20 = || vec![ser(&db_name(1), &range_vals(0, 20, 1))];
    let mut neg_in = vec![N, N];
    neg_in.extend(range_vals(2, 20, 1));
    let mut neg_out = range_vals(2, 20, 1);
    neg_out.extend([N, N]);
    let n1 = db_name(1);
    // timeStack: graphite-web's mocked fetcher returns the same 11 points for every shifted
    // window; here the source repeats the same 10-point pattern every 10 minutes, so each
    // shifted whisper-aligned window sees those 10 points.
    let pattern = o(&[X, X, X, 3, X, 5, 6, X, 7, X]);
    let periodic = vec![Series::new(
        "test.value",
        -1800,
        1200,
        60,
        pattern.iter().cycle().take(50).copied().collect(),
    )];
    let mut stack = v(
        "test_timeStack (10 of 11 points)",
        periodic,
        "timeStack(test.value,'10minutes',0,3)",
        (0..3)
            .map(|k| {
                w(
                    format!("timeShift(test.value, -10minutes, {k})"),
                    pattern.clone(),
                )
            })
            .collect(),
    );
    stack.window = Some((599, 1199));
    stack.times = Some((600, 1200, 60));
    // linearRegression: graphite-web mocks the fetch of the regression window; here one
    // series holds 3, 5, 6, 8 at 180, 300, 360, 480 (the line t/60) and the request window
    // 1200..1440 (whisper-aligned: graphite-web's 7 points from 1200 to 1500 become 5).
    let mut lr_vals = vec![N; 25];
    lr_vals[3] = Some(3.0);
    lr_vals[5] = Some(5.0);
    lr_vals[6] = Some(6.0);
    lr_vals[8] = Some(8.0);
    let mut lr = v(
        "test_linearRegression (5 of 7 points)",
        vec![Series::new("test.value", 0, 1500, 60, lr_vals)],
        "linearRegression(test.value,'00:03 19700101','00:08 19700101')",
        vec![w(
            "linearRegression(test.value, 180, 480)",
            ff(&[20.0, 21.0, 22.0, 23.0, 24.0]),
        )],
    );
    lr.window = Some((1199, 1499));
    lr.times = Some((1200, 1500, 60));
    let chan: Vec<Series> = [
        ("chan.pow.1", [0, 30]),
        ("chan.pow.2", [10, 40]),
        ("chan.pow.3", [20, 50]),
        ("chan.freq.1", [0, 101]),
        ("chan.freq.2", [0, 102]),
        ("chan.freq.3", [0, 103]),
    ]
    .iter()
    .map(|(n, d)| ser(n, &o(d)))
    .collect();
    let mr: Vec<Series> = [
        ("group.server1.bytes_used", 1),
        ("group.server1.total_bytes", 2),
        ("group.server2.bytes_used", 3),
        ("group.server2.total_bytes", 4),
    ]
    .iter()
    .map(|(n, x)| ser(n, &[Some(*x as f64)]))
    .collect();
    let mr_nulls: Vec<Series> = [
        "group.server1.metric1",
        "group.server1.metric2",
        "group.server2.metric1",
        "group.server2.metric2",
    ]
    .iter()
    .map(|n| ser(n, &[N]))
    .collect();
    verify_all(vec![
        v(
            "test_delay_too_many_steps",
            r20(),
            format!("delay({n1},25)"),
            vec![w(format!("delay({n1},25)"), vec![N; 20])],
        ),
        v(
            "test_delay_negative",
            vec![ser(&n1, &neg_in)],
            format!("delay({n1},-2)"),
            vec![w(format!("delay({n1},-2)"), neg_out)],
        ),
        v(
            "test_delay_negative_too_many_steps",
            r20(),
            format!("delay({n1},-25)"),
            vec![w(format!("delay({n1},-25)"), vec![N; 20])],
        ),
        stack,
        lr,
        v(
            "test_alias_query",
            chan.clone(),
            "aliasQuery(group(chan.pow.1,chan.pow.2,chan.pow.3),'chan\\.pow\\.([0-9]+)','chan.freq.\\1','Channel %d MHz')",
            vec![
                w("Channel 101 MHz", o(&[0, 30])),
                w("Channel 102 MHz", o(&[10, 40])),
                w("Channel 103 MHz", o(&[20, 50])),
            ],
        ),
        v(
            "test_reduceSeries_asPercent",
            mr.clone(),
            "reduceSeries(mapSeries(group.server*.*,1),'asPercent',2,'bytes_used','total_bytes')",
            vec![
                w("group.server1.reduce.asPercent", vec![Some(50.0)]),
                w("group.server2.reduce.asPercent", vec![Some(75.0)]),
            ],
        ),
        v(
            "test_mapSeries",
            mr_nulls.clone(),
            "mapSeries(group.server*.metric*,1)",
            same(&mr_nulls, &[0, 1, 2, 3]),
        ),
    ]);
    // test_alias_query: a query that finds no series is an error.
    let err = run_err(
        &chan,
        t("aliasQuery(chan.pow.1,'chan\\.pow\\.([0-9]+)','chan.fred.\\1','Channel %d MHz')"),
    );
    assert!(!err.is_empty());
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

#[test]
fn graphite_web_substr_per_second_and_empty_vectors() {
    let ex = filter_data_cacti();
    let eg = grp(&ex);
    let renamed = |names: [&str; 4]| -> Vec<(String, Vec<Option<f64>>)> {
        names
            .iter()
            .zip(&ex)
            .map(|(n, s)| w(*n, s.values.clone()))
            .collect()
    };
    let short = [
        "test-db1.load",
        "test-db2.load",
        "test-db3.load",
        "test-db4.load",
    ];
    let full = [db_name(1), db_name(2), db_name(3), db_name(4)];
    let full = [
        full[0].as_str(),
        full[1].as_str(),
        full[2].as_str(),
        full[3].as_str(),
    ];
    let mut rows = vec![
        v(
            "test_substr",
            ex.clone(),
            format!("substr({eg},1,3)"),
            renamed(short),
        ),
        v(
            "test_substr_no_args",
            ex.clone(),
            format!("substr({eg})"),
            renamed(full),
        ),
        // The `_function` variants: names wrapped in a call are unwrapped first.
        v(
            "test_substr_function_no_args",
            ex.clone(),
            format!("substr(scale({eg},1))"),
            renamed(full),
        ),
        v(
            "test_substr_function",
            ex.clone(),
            format!("substr(scale({eg},1),1,3)"),
            renamed(short),
        ),
        // graphite-web's tenth point is 60**256 + 336, a Python big integer beyond f64's
        // range; the first nine points are ported (values rounded to 6 places as its
        // 3.333333 literal).
        v(
            "test_perSecond_float (first 9 points)",
            vec![ser_step(
                "test",
                60,
                &o(&[0, 90, 186, 291, 411, 561, 747, 136, 336]),
            )],
            "perSecond(test,maxValue=1000)",
            vec![w(
                "perSecond(test)",
                ff(&[NA, 1.5, 1.6, 1.75, 2.0, 2.5, 3.1, 6.5, 3.333333]),
            )],
        )
        .rounded(6),
    ];
    // The `*_empty_list` / `*_emptySeries` tests: a series list that matches nothing gives
    // no series.
    for target in [
        "sumSeries(nothing.here)",
        "sumSeriesWithWildcards(nothing.here,0)",
        "averageSeriesWithWildcards(nothing.here,0)",
        "aggregate(nothing.here,'sum')",
        "percentileOfSeries(nothing.here,90)",
        "maximumAbove(nothing.here,1)",
        "minimumAbove(nothing.here,1)",
        "maximumBelow(nothing.here,1)",
        "minimumBelow(nothing.here,1)",
        "highestCurrent(nothing.here,1)",
        "highestMax(nothing.here,1)",
        "lowestCurrent(nothing.here,1)",
        "currentAbove(nothing.here,1)",
        "currentBelow(nothing.here,1)",
        "highestAverage(nothing.here,1)",
        "lowestAverage(nothing.here,1)",
        "averageAbove(nothing.here,1)",
        "averageBelow(nothing.here,1)",
        "cactiStyle(nothing.here)",
        "timeShift(nothing.here,'-10minutes')",
        "timeStack(nothing.here,'-10minutes',0,3)",
        "exponentialMovingAverage(nothing.here,30)",
        "movingMedian(nothing.here,10)",
        "movingAverage(nothing.here,10)",
        "movingMin(nothing.here,10)",
        "movingMax(nothing.here,10)",
        "movingSum(nothing.here,10)",
    ] {
        rows.push(v("test_*_empty_list", ex.clone(), target, vec![]));
    }
    verify_all(rows);
}
