//! CPU time and heap allocations per run of one configured collector instance, against
//! whatever it talks to (a real HAProxy, RabbitMQ, …):
//!
//!     cargo run --release -p carbide-collector --example collector_cost -- collectors.d/haproxy.yml 200
//!
//! Runs the instance's `collect` N times (after 3 warm-up runs) on a single-threaded tokio
//! runtime and prints, per run: CPU time of the whole process (user + system, getrusage),
//! allocations and bytes allocated (a counting global allocator), and samples produced. Only
//! the collector's own work is measured, not the runtime's encoding of lines.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use collector::collectors::{kind, Batch};

struct Counting;
static ALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator, only counting.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        BYTES.fetch_add(l.size() as u64, Relaxed);
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        BYTES.fetch_add(new as u64, Relaxed);
        System.realloc(p, l, new)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn cpu_micros() -> u64 {
    // SAFETY: getrusage fills the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    us(ru.ru_utime) + us(ru.ru_stime)
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let file = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: collector_cost <collector file.yml> [runs]"))?;
    let runs: u64 = args.next().map(|n| n.parse()).transpose()?.unwrap_or(100);
    let text = std::fs::read_to_string(&file)?;
    let type_name = text
        .lines()
        .find_map(|l| l.strip_prefix("type:"))
        .map(str::trim)
        .ok_or_else(|| anyhow::anyhow!("{file}: no `type:` line"))?;
    let k = kind(type_name).ok_or_else(|| anyhow::anyhow!("unknown type {type_name}"))?;
    let mut inst = (k.build)(std::path::Path::new(&file), &text)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut samples = 0;
        for _ in 0..3 {
            let mut b = Batch::default();
            inst.collector.collect(&mut b).await?;
            samples = b.samples.len();
        }
        let (cpu0, a0, b0) = (cpu_micros(), ALLOCS.load(Relaxed), BYTES.load(Relaxed));
        for _ in 0..runs {
            let mut b = Batch::default();
            inst.collector.collect(&mut b).await?;
        }
        let (cpu1, a1, b1) = (cpu_micros(), ALLOCS.load(Relaxed), BYTES.load(Relaxed));
        println!(
            "{type_name} ({file}): {runs} runs, per run: {:.0} µs CPU, {} allocations, {} KiB allocated, {samples} samples",
            (cpu1 - cpu0) as f64 / runs as f64,
            (a1 - a0) / runs,
            (b1 - b0) / runs / 1024,
        );
        anyhow::Ok(())
    })
}
