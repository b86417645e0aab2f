//! Target parsing and glob matching throughput: the two targets users alert on (issue 3), and
//! one glob matched against a 100k-path index (compiled once, matched per path).
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use graphite::expr::parse;
use graphite::glob::GlobPattern;

const TARGETS: [&str; 2] = [
    "scale(divideSeries(derivative(servers.db1.mongo.globalLock.lockTime),derivative(servers.db1.mongo.globalLock.totalTime)),100)",
    "aliasByNode(movingMedian(groupByNode(servers.*.haproxy.*.*.check_duration,3,\"averageSeries\"),10),0)",
];

fn parse_targets(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse");
    for (i, t) in TARGETS.iter().enumerate() {
        g.throughput(Throughput::Bytes(t.len() as u64));
        g.bench_function(format!("issue_target_{}", i + 1), |b| {
            b.iter(|| parse(black_box(t)).map(|e| matches!(e, graphite::expr::ast::Expr::Call(_))))
        });
    }
    g.finish();
}

/// 100k paths shaped like a real tree: 500 hosts × 4 services × 50 metrics.
fn index() -> Vec<String> {
    let services = ["haproxy", "mongo", "cpu", "disk"];
    let mut v = Vec::with_capacity(100_000);
    for h in 0..500 {
        for s in services {
            for m in 0..50 {
                v.push(format!("servers.host{h:03}.{s}.backend{}.metric{m}", m % 5));
            }
        }
    }
    v
}

fn glob_match(c: &mut Criterion) {
    let paths = index();
    let mut g = c.benchmark_group("glob_100k");
    g.throughput(Throughput::Elements(paths.len() as u64));
    for pat in [
        "servers.*.haproxy.*.metric7",
        "servers.host0[0-4]?.{cpu,disk}.backend*.metric1*",
        "servers.host123.mongo.backend2.metric42",
        "servers.**.metric3",
    ] {
        let glob = GlobPattern::new(pat).unwrap();
        g.bench_function(pat, |b| {
            b.iter(|| paths.iter().filter(|p| glob.matches(p)).count())
        });
    }
    g.finish();
}

criterion_group!(benches, parse_targets, glob_match);
criterion_main!(benches);
