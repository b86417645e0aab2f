//! Store benchmarks: ingest through the line parser into the cache (point by point, in
//! 64 KiB batches, and through a listener's [`Receiver`] with the load of
//! `benches/ingest-vs-carbon.sh`), a fetch of 100 series over one day of 10 s points
//! from SQLite, and index `find`/`expand` over 100k series.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use graphite::glob::GlobPattern;
use graphite::protocol::parse_line;
use graphite::store::index::Index;
use graphite::store::listen::{BadLines, Receiver};
use graphite::store::schema::Schemas;
use graphite::store::{unix_now, Store};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

fn ingest(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = rt
        .block_on(Store::open(dir.path(), Schemas::default(), u64::MAX))
        .unwrap();
    let now = unix_now();
    let mut text = Vec::new();
    for h in 0..1000 {
        for m in 0..100 {
            text.extend_from_slice(
                format!(
                    "servers.host{h:04}.cpu.metric{m:03} {}.25 {}\n",
                    h + m,
                    now - 60
                )
                .as_bytes(),
            );
        }
    }
    // Create the 100k series first: the steady state is appending to known series.
    for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let l = parse_line(line).unwrap();
        store.insert_at(l.path, l.timestamp, l.value, now);
    }
    let mut g = c.benchmark_group("store");
    g.sample_size(10);
    g.throughput(Throughput::Elements(100_000));
    g.bench_function("ingest_100k_lines", |b| {
        b.iter(|| {
            let mut n = 0;
            for line in text.split(|&b| b == b'\n') {
                if let Ok(l) = parse_line(line) {
                    n += store.insert_at(l.path, l.timestamp, l.value, now) as usize;
                }
            }
            n
        })
    });
    g.bench_function("ingest_100k_lines_batched", |b| {
        b.iter(|| {
            let mut n = 0;
            let mut rest = &text[..];
            while !rest.is_empty() {
                // Cut at the last newline of each 64 KiB, as a listener's read buffer.
                let cut = rest[..rest.len().min(64 * 1024)]
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(rest.len(), |p| p + 1);
                let (buf, tail) = rest.split_at(cut);
                rest = tail;
                let points = buf
                    .split(|&b| b == b'\n')
                    .filter_map(|l| parse_line(l).ok())
                    .map(|l| (l.path, l.timestamp, l.value));
                n += store.insert_batch_at(points, now);
            }
            n
        })
    });
    // Keep memory bounded between benchmarks.
    rt.block_on(store.flush_at(now)).unwrap();
    g.finish();
}

fn fetch(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = rt
        .block_on(Store::open(dir.path(), Schemas::default(), u64::MAX))
        .unwrap();
    let now = unix_now();
    let start = now - now % 10 - 86_400 + 10;
    for s in 0..100 {
        let path = format!("bench.fetch.s{s:03}");
        for i in 0..8640 {
            store.insert_at(&path, start + 10 * i, (s * i) as f64, now);
        }
    }
    rt.block_on(store.flush_at(now)).unwrap();
    let mut g = c.benchmark_group("store");
    g.sample_size(10);
    g.throughput(Throughput::Elements(100 * 8640));
    g.bench_function("fetch_100_series_1_day", |b| {
        b.iter_batched(
            || (),
            |_| {
                let got = rt
                    .block_on(store.fetch("bench.fetch.*", now - 86_400, now, now))
                    .unwrap();
                assert_eq!(got.len(), 100);
                got
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn index(c: &mut Criterion) {
    let mut ix = Index::default();
    for h in 0..1000u64 {
        for m in 0..100 {
            ix.insert(&format!("servers.host{h:04}.cpu.metric{m:03}"), h * 100 + m);
        }
    }
    let mut g = c.benchmark_group("index_100k");
    g.sample_size(20);
    let cases: &[(&str, &str, usize)] = &[
        ("expand_one_host", "servers.host0042.cpu.*", 100),
        (
            "expand_one_metric_all_hosts",
            "servers.*.cpu.metric007",
            1000,
        ),
        (
            "expand_braces_and_sets",
            "servers.host00{1,2}?.cpu.metric00[0-4]",
            100,
        ),
        ("expand_all", "servers.*.cpu.*", 100_000),
        ("expand_globstar", "**.metric099", 1000),
    ];
    for (name, pattern, want) in cases {
        let p = GlobPattern::new(pattern).unwrap();
        g.bench_function(*name, |b| {
            b.iter(|| {
                let got = ix.expand(&p);
                assert_eq!(got.len(), *want);
                got
            })
        });
    }
    let p = GlobPattern::new("servers.host004*").unwrap();
    g.bench_function("find_hosts_prefix", |b| {
        b.iter(|| {
            let got = ix.find(&p);
            assert_eq!(got.len(), 10);
            got
        })
    });
    g.finish();
}

/// `benches/ingest-vs-carbon.sh`'s load without the sockets: 100k series × 10 points (the
/// first interval creates the series), read 256 KiB at a time by one connection's
/// [`Receiver`] into a new store. Only the receiving is timed (its thread's CPU time with
/// `LISTENER_CPU=1`).
fn listener(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let now = unix_now();
    let t0 = now - now % 10 - 100;
    let mut load = Vec::new();
    let mut lines = Vec::new();
    // Where the first interval ends.
    let mut first = 0;
    for p in 0..10 {
        for s in 0..100_000 {
            let line = format!(
                "bench.host{:05}.metric{:02} {} {}\n",
                s / 100,
                s % 100,
                s as f64 + p as f64 * 0.5,
                t0 + 10 * p
            );
            load.extend_from_slice(line.as_bytes());
            lines.push(line);
        }
        if p == 0 {
            first = load.len();
        }
    }
    // The same lines in one random order (the script's `shuffled1`): Fisher-Yates with a
    // fixed xorshift, so every run shuffles alike.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for i in (1..lines.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        lines.swap(i, (x % (i as u64 + 1)) as usize);
    }
    let shuffled: Vec<u8> = lines.concat().into_bytes();
    let schemas = Schemas::parse(
        "[bench]\npattern = ^bench\\.\nretentions = 10s:6h\n",
        "schemas",
        "",
        "aggregation",
    )
    .unwrap();
    let peer = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    // `LISTENER_CPU=1`: time the receiving thread's CPU, not the wall clock (on a machine
    // loaded by other work, wall times of one binary move 2× from run to run).
    let cpu_time = std::env::var_os("LISTENER_CPU").is_some_and(|v| v == "1");
    let mut g = c.benchmark_group("listener");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    // The whole load, the same lines shuffled, and its first interval alone (every line
    // creates its series).
    for (name, load, lines) in [
        ("1m_lines_100k_new_series", &load[..], 1_000_000u64),
        ("1m_lines_shuffled", &shuffled[..], 1_000_000),
        ("100k_lines_100k_new_series", &load[..first], 100_000),
    ] {
        g.throughput(Throughput::Elements(lines));
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    let dir = tempfile::tempdir().unwrap();
                    let store = rt
                        .block_on(Store::open(dir.path(), schemas.clone(), u64::MAX))
                        .unwrap();
                    let bad = BadLines::default();
                    let mut rx = Receiver::new(&store, &bad, peer);
                    let (start, cpu) = (Instant::now(), thread_cpu());
                    let mut rest = load;
                    while !rest.is_empty() {
                        let n = rest.len().min(256 * 1024);
                        let used = rx.lines(&rest[..n], now);
                        assert!(used > 0, "the load holds whole lines");
                        rest = &rest[used..];
                    }
                    spent += match (cpu_time, cpu, thread_cpu()) {
                        (true, Some(a), Some(b)) => b.saturating_sub(a),
                        _ => start.elapsed(),
                    };
                    assert_eq!(store.stats.cache_points.load(Relaxed), lines);
                }
                spent
            })
        });
    }
    g.finish();
}

/// The CPU time this thread has run (Linux: the first field of `/proc/thread-self/schedstat`,
/// in nanoseconds), `None` where that is not readable.
fn thread_cpu() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = s.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

criterion_group!(benches, ingest, fetch, index, listener);
criterion_main!(benches);
