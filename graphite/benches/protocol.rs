//! Lines encoded and parsed per second (issue: aim ≥ 5 M lines/s encoded on one core).
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use graphite::protocol::{encode_line, parse_line, parse_value_ts};

fn paths() -> Vec<String> {
    (0..1000)
        .map(|i| format!("servers.web-{:03}.cpu.cpu{}.user", i % 100, i % 16))
        .collect()
}

fn encode(c: &mut Criterion) {
    let paths = paths();
    let values: Vec<f64> = (0..1000).map(|i| i as f64 * 0.37 + 0.001).collect();
    let mut g = c.benchmark_group("protocol");
    g.throughput(Throughput::Elements(paths.len() as u64));
    g.bench_function("encode_line", |b| {
        let mut buf = Vec::with_capacity(64 * 1024);
        b.iter(|| {
            buf.clear();
            for (p, v) in paths.iter().zip(&values) {
                let _ = encode_line(&mut buf, p, *v, 1_700_000_000);
            }
            buf.len()
        })
    });
    let mut text = Vec::new();
    for (p, v) in paths.iter().zip(&values) {
        let _ = encode_line(&mut text, p, *v, 1_700_000_000);
    }
    g.bench_function("parse_line", |b| {
        b.iter(|| {
            text.split(|&c| c == b'\n')
                .filter(|l| !l.is_empty())
                .filter_map(|l| parse_line(l).ok())
                .count()
        })
    });
    // What a listener reads after a path it recognised: the values and timestamps of
    // `benches/ingest-vs-carbon.sh` (`12345.5 1700000000`), one after another.
    let mut rests = Vec::new();
    let mut starts = Vec::new();
    for i in 0..1000 {
        starts.push(rests.len());
        rests.extend_from_slice(format!("{} 1700000000\n", i as f64 * 0.5 + 10_000.0).as_bytes());
    }
    g.bench_function("parse_value_ts", |b| {
        b.iter(|| {
            starts
                .iter()
                .filter_map(|&s| parse_value_ts(&rests[s..]))
                .map(|(v, t, _)| v as i64 + t)
                .sum::<i64>()
        })
    });
    g.finish();
}

criterion_group!(benches, encode);
criterion_main!(benches);
