//! Function-library benchmarks (criterion; not timed tests):
//! - movingMedian / movingAverage windows over 1,024 points, small (5) and large (500)
//!   windows, on the window kernel and through full evaluation;
//! - the two example targets of issue 3 over 100 series × 1 day of 10 s points, end to end
//!   through `render` with an in-memory source (parsing excluded; it is benched in
//!   `parse.rs`).

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use graphite::eval::{render, MemorySource};
use graphite::expr::parse;
use graphite::functions::moving::window_values;
use graphite::functions::AggFunc;
use graphite::series::Series;

/// The issue's two example targets.
const TARGET_1: &str = "scale(divideSeries(derivative(servers.db1.mongo.globalLock.lockTime),derivative(servers.db1.mongo.globalLock.totalTime)),100)";
const TARGET_2: &str = "aliasByNode(movingMedian(groupByNode(servers.*.haproxy.*.*.check_duration,3,\"averageSeries\"),10),0)";

/// Deterministic noisy values with a few nulls.
fn values(n: usize, seed: u64) -> Vec<Option<f64>> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if x % 97 < 1 {
                None
            } else {
                Some((i as f64) * 0.5 + (x % 1000) as f64 / 10.0)
            }
        })
        .collect()
}

fn moving(c_: &mut Criterion) {
    let v = values(1024, 1);
    let budget = graphite::eval::Budget::new();
    for w in [5usize, 500] {
        c_.bench_function(&format!("kernel movingMedian 1024 pts w={w}"), |b| {
            b.iter(|| window_values(black_box(&v), w, AggFunc::Median, 0.0, &budget, "m"))
        });
        c_.bench_function(&format!("kernel movingAverage 1024 pts w={w}"), |b| {
            b.iter(|| window_values(black_box(&v), w, AggFunc::Average, 0.0, &budget, "m"))
        });
    }
    // Full evaluation: 1,024 output points at 10 s, the source holding enough history.
    let step = 10;
    let total = 1024 + 600;
    let src = MemorySource::new(vec![Series::new(
        "m.x",
        0,
        total as i64 * step,
        step,
        values(total, 2),
    )]);
    let until = total as i64 * step - step;
    let from = until - 1024 * step;
    for w in [5i64, 500] {
        for f in ["movingMedian", "movingAverage"] {
            let t = parse(&format!("{f}(m.x,{w})")).unwrap();
            c_.bench_function(&format!("render {f}(m.x,{w}) 1024 pts"), |b| {
                b.iter(|| render(std::slice::from_ref(&t), from, until, until, &src).unwrap())
            });
        }
    }
}

fn issue_targets(c_: &mut Criterion) {
    let step = 10;
    let points = 8640usize; // 1 day
    let end = points as i64 * step;
    let mut series = Vec::new();
    let mut seed = 10;
    for h in 0..10 {
        for be in 0..2 {
            for sv in 0..5 {
                seed += 1;
                series.push(Series::new(
                    format!("servers.h{h}.haproxy.backend{be}.srv{sv}.check_duration"),
                    0,
                    end,
                    step,
                    values(points, seed),
                ));
            }
        }
    }
    // The mongo counters (monotonic) sit among the 100 haproxy series.
    let counter = |k: f64| (0..points).map(|i| Some(i as f64 * k)).collect::<Vec<_>>();
    series.push(Series::new(
        "servers.db1.mongo.globalLock.lockTime",
        0,
        end,
        step,
        counter(3.0),
    ));
    series.push(Series::new(
        "servers.db1.mongo.globalLock.totalTime",
        0,
        end,
        step,
        counter(10.0),
    ));
    let src = MemorySource::new(series);
    let (from, until) = (-step, end - step);

    let t1 = parse(TARGET_1).unwrap();
    let t2 = parse(TARGET_2).unwrap();
    let mut g = c_.benchmark_group("issue targets, 100 series x 1 day of 10s");
    g.sample_size(20);
    g.bench_function("scale(divideSeries(derivative,derivative),100)", |b| {
        b.iter(|| render(std::slice::from_ref(&t1), from, until, until, &src).unwrap())
    });
    g.bench_function(
        "aliasByNode(movingMedian(groupByNode(...,3,averageSeries),10),0)",
        |b| b.iter(|| render(std::slice::from_ref(&t2), from, until, until, &src).unwrap()),
    );
    g.finish();
}

criterion_group!(benches, moving, issue_targets);
criterion_main!(benches);
