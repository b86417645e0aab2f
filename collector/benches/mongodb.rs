//! CPU time and allocations per MongoDB collection run against the wire-protocol test
//! server (`tests/common/mongo_wire.rs`), for each fixture version. Prints one line per
//! version; compare with Diamond's ~18 ms of CPU per MongoDB collection.
//!
//! `cargo bench -p carbide-collector --bench mongodb`
//!
//! The test server runs on its own thread (its work is not counted); the collector runs on a
//! single-threaded runtime on the measuring thread, so the driver's own background work
//! (connection monitoring) is included. A run is what the agent does each interval: the
//! collector's commands, then filters, rates, paths and encoding (`Worker::run_once`).

#[path = "../tests/common/mongo_wire.rs"]
mod mongo_wire;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;

use collector::config::{self, Sources};
use collector::events::AgentStats;
use collector::runtime::Worker;

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
    static BYTES: Cell<u64> = const { Cell::new(0) };
}

fn count(size: usize) {
    let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
    let _ = BYTES.try_with(|c| c.set(c.get() + size as u64));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        count(l.size());
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        count(new);
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// User + system CPU time of the calling thread, in µs.
fn thread_cpu_us() -> u64 {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage fills the struct we own.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    us(ru.ru_utime) + us(ru.ru_stime)
}

const RUNS: u64 = 200;

fn main() {
    // `cargo bench` passes `--bench`; a filter argument selects versions.
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    for version in ["3.x", "4.4", "6.0", "7.0"] {
        if !filter.is_empty() && !filter.iter().any(|f| version.contains(f.as_str())) {
            continue;
        }
        bench(version, "");
        bench(
            version,
            "databases: '.*'\ncollections: true\nreplica_set: true\n",
        );
    }
}

fn bench(version: &str, extra: &str) {
    // the server, on its own thread and runtime
    let (tx, rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let v = version.to_string();
    let server = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let s = mongo_wire::MongoWire::start(&v).await;
            tx.send(s.addr).unwrap();
            let _ = stop_rx.await;
            drop(s);
        });
    });
    let addr = rx.recv().unwrap();

    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("collector.yml"),
        "hostname_method: fixed\nhostname: bench\n",
    )
    .unwrap();
    std::fs::create_dir(tmp.path().join("collectors.d")).unwrap();
    std::fs::write(
        tmp.path().join("collectors.d/mongo.yml"),
        format!("type: mongodb\nuri: mongodb://{addr}/\n{extra}"),
    )
    .unwrap();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let loaded = config::load(&Sources {
        config: Some(tmp.path().join("collector.yml")),
        collectors_dir: Some(tmp.path().join("collectors.d")),
    })
    .unwrap_or_else(|e| panic!("{e:?}"));
    let settings = loaded.settings;
    let inst = loaded.instances.into_iter().next().unwrap();
    let mut w = Worker::new(inst, &settings, Arc::new(AgentStats::default()));
    let (lines, cpu, allocs, bytes) = rt.block_on(async {
        // warm up: connect, handshake, first rates
        for i in 0..5 {
            let out = w.run_once(i).await;
            assert!(!out.failed);
        }
        let (c0, a0, b0) = (thread_cpu_us(), ALLOCS.get(), BYTES.get());
        let mut lines = 0;
        for i in 0..RUNS {
            let out = w.run_once(100 + i as i64).await;
            assert!(!out.failed);
            lines = out.chunk.lines;
        }
        (
            lines,
            thread_cpu_us() - c0,
            ALLOCS.get() - a0,
            BYTES.get() - b0,
        )
    });
    drop(w);
    let _ = stop_tx.send(());
    server.join().unwrap();
    println!(
        "mongodb {version:>3} {:<28} {lines:>4} lines/run  {:>7.1} µs CPU/run  {:>6} allocs/run  {:>8} bytes allocated/run  (Diamond: ~18000 µs)",
        if extra.is_empty() { "serverStatus" } else { "+dbStats+collStats+replset" },
        cpu as f64 / RUNS as f64,
        allocs / RUNS,
        bytes / RUNS,
    );
}
