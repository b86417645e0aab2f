//! CPU per run of the `process` collector: reading `/proc` directly (what it does) against
//! the `sysinfo` scan it replaced, for the same groups in the same run. Rounds alternate the
//! two readers; each round runs each reader `RUNS` times and measures process CPU time (user +
//! system, all threads: the scan runs on a blocking thread). Prints per-run CPU, the
//! sysinfo/procfs ratio of each round and their median, and checks that both readers found
//! the same processes. Run by `benches/process-scan.sh`.

use std::time::Duration;

use collector::collectors::process::{with_reader, Reader};
use collector::collectors::{Batch, Collector};

fn process_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid clock id and out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// CPU time of `runs` runs, in ms per run.
fn measure(rt: &tokio::runtime::Runtime, c: &mut Box<dyn Collector>, runs: usize) -> f64 {
    let mut batch = Batch::default();
    let start = process_cpu_time();
    for _ in 0..runs {
        batch.samples.clear();
        rt.block_on(c.collect(&mut batch)).expect("process scan");
    }
    process_cpu_time().saturating_sub(start).as_secs_f64() * 1e3 / runs as f64
}

fn counts(rt: &tokio::runtime::Runtime, c: &mut Box<dyn Collector>) -> Vec<(String, f64)> {
    let mut batch = Batch::default();
    rt.block_on(c.collect(&mut batch)).expect("process scan");
    let mut v: Vec<(String, f64)> = batch
        .samples
        .iter()
        .filter(|s| s.name.ends_with("workers_count") || s.name.ends_with("num_threads"))
        .map(|s| (s.name.clone(), s.value))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is understood.
    let rounds = env("ROUNDS", 7);
    let runs = env("RUNS", 50);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime");
    let configs = [
        (
            "5 groups by name (the collectd side-by-side set)",
            "type: process\ngroups:\n  nginx: {name: '^nginx$'}\n  redis: {name: '^redis-server$'}\n  \
             memcached: {name: '^memcached$'}\n  postgres: {name: '^postgres$'}\n  \
             mariadb: {name: '^mariadbd$'}\n",
        ),
        (
            "name, exe, cmdline, user and selfmon groups",
            "type: process\ngroups:\n  postgres: {name: '^postgres$'}\n  \
             pgexe: {exe: 'postgresql/.*/bin/postgres$'}\n  \
             py: {cmdline: 'python3? '}\n  rootsh: {name: 'sh$', user: root}\n  \
             agent: {selfmon: true}\n",
        ),
    ];
    let procs = std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter(|e| {
                    e.file_name()
                        .to_str()
                        .is_some_and(|n| n.parse::<u32>().is_ok())
                })
                .count()
        })
        .unwrap_or(0);
    println!("processes on this machine: {procs}; {rounds} rounds × {runs} runs per reader");
    for (what, yaml) in configs {
        let mut procfs = with_reader(yaml, Reader::Procfs).expect("config");
        let mut sysinfo = with_reader(yaml, Reader::Sysinfo).expect("config");
        // Prime both (the first run sees every process for the first time).
        let a = counts(&rt, &mut procfs);
        let b = counts(&rt, &mut sysinfo);
        let same = a == b;
        let mut ratios = Vec::new();
        let mut p_ms = Vec::new();
        let mut s_ms = Vec::new();
        for _ in 0..rounds {
            let p = measure(&rt, &mut procfs, runs);
            let s = measure(&rt, &mut sysinfo, runs);
            p_ms.push(p);
            s_ms.push(s);
            ratios.push(s / p);
        }
        let median = |v: &mut Vec<f64>| {
            v.sort_by(|a, b| a.total_cmp(b));
            v[v.len() / 2]
        };
        println!("{what}:");
        println!(
            "  CPU per run, median: procfs {:.3} ms, sysinfo {:.3} ms; sysinfo/procfs per round {:?}, median {:.2}x",
            median(&mut p_ms),
            median(&mut s_ms),
            ratios.iter().map(|r| (r * 100.0).round() / 100.0).collect::<Vec<_>>(),
            median(&mut ratios.clone())
        );
        println!(
            "  same processes and threads found by both: {}",
            if same {
                "yes".to_string()
            } else {
                format!("NO\n  procfs  {a:?}\n  sysinfo {b:?}")
            }
        );
    }
}
