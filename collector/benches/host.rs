//! CPU time of one host collection run (all groups, second and later runs: the path that
//! computes CPU percentages and I/O rates). Measured as process CPU time (user + system, all
//! threads, so the blocking statvfs thread counts), not wall time.
//! `HOST_BENCH_PRINT=1` also prints one run's samples.

use std::path::Path;
use std::time::Duration;

use collector::collectors::{host, Batch};
use criterion::{criterion_group, criterion_main, Criterion};

fn process_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid clock id and out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn collect(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime");
    let mut instance =
        (host::KIND.build)(Path::new("host.yml"), "type: host\n").expect("host config");
    let mut batch = Batch::default();
    // Prime the previous readings so every run measures the full path.
    let _ = rt.block_on(instance.collector.collect(&mut batch));
    std::thread::sleep(Duration::from_millis(50));
    batch.samples.clear();
    let _ = rt.block_on(instance.collector.collect(&mut batch));
    if std::env::var_os("HOST_BENCH_PRINT").is_some() {
        for s in &batch.samples {
            eprintln!("{} {} {:?}", s.name, s.value, s.kind);
        }
    }
    eprintln!("samples per run: {}", batch.samples.len());
    c.bench_function("host collect, CPU time per run", |b| {
        b.iter_custom(|iters| {
            let start = process_cpu_time();
            for _ in 0..iters {
                batch.samples.clear();
                let _ = rt.block_on(instance.collector.collect(&mut batch));
            }
            process_cpu_time().saturating_sub(start)
        })
    });
}

criterion_group!(benches, collect);
criterion_main!(benches);
