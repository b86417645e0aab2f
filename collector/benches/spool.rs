//! Spool throughput: lines appended, then read back and committed, per second.
//! `cargo bench -p carbide-collector --bench spool`

use std::hint::black_box;

use collector::sender::spool::{Spool, SpoolOptions};
use collector::sender::FsyncPolicy;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

/// A chunk of `lines` typical agent lines (~60 bytes each).
fn chunk(lines: u32) -> Vec<u8> {
    let mut data = Vec::new();
    for i in 0..lines {
        data.extend_from_slice(
            format!(
                "servers.web-01.cpu.cpu{}.user {}.25 {}\n",
                i % 8,
                i,
                1_700_000_000 + i
            )
            .as_bytes(),
        );
    }
    data
}

fn bench(c: &mut Criterion) {
    const LINES_PER_CHUNK: u32 = 100;
    const CHUNKS: u64 = 200;
    let data = chunk(LINES_PER_CHUNK);
    let opts = SpoolOptions {
        max_bytes: 1 << 30,
        segment_bytes: 8 << 20,
        fsync: FsyncPolicy::Never,
    };
    let mut g = c.benchmark_group("spool");
    g.throughput(Throughput::Elements(CHUNKS * u64::from(LINES_PER_CHUNK)));
    g.bench_function("append_at_cap", |b| {
        // Steady state of a long outage: every append past the 64 MiB cap drops a segment.
        let dir = tempfile::tempdir().unwrap();
        let capped = SpoolOptions {
            max_bytes: 64 << 20,
            ..opts
        };
        let mut s = Spool::open(dir.path(), capped).unwrap();
        b.iter(|| {
            for _ in 0..CHUNKS {
                s.append(black_box(&data), LINES_PER_CHUNK).unwrap();
            }
        });
    });
    g.bench_function("append_then_read", |b| {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), opts).unwrap();
        b.iter(|| {
            for _ in 0..CHUNKS {
                s.append(black_box(&data), LINES_PER_CHUNK).unwrap();
            }
            let mut lines = 0;
            while let Some(batch) = s.read_batch(64 << 10).unwrap() {
                lines += batch.lines;
                s.commit(&batch).unwrap();
            }
            assert_eq!(lines, CHUNKS * u64::from(LINES_PER_CHUNK));
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
