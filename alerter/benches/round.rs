//! Benchmark (not a test): one evaluation round of 10,000 alert series against a local
//! render server, wall time and CPU of the alerter process.
//!
//! `cargo bench -p carbide-alerter --bench round`
//!
//! The render server (graphite-web's JSON, 1,000 hosts × 10 metrics held in memory) runs in
//! a child process (this binary re-executed), so the CPU reported (getrusage) is the
//! alerter's alone: fetching, JSON decoding, state machine, SQLite writes, outbox rows.
//! Scenarios:
//! - `10 alerts x 1000 hosts`: 10 glob targets (`aliasByNode(servers.*.mK,1)`), each
//!   returning 1,000 series;
//! - `10000 alerts x 1 series`: 10,000 alert definitions, one render request each.
//!
//! Round 1 inserts every state row; later rounds write only changes (steady state).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use alerter::config::Config;
use alerter::outbox::Outbox;
use alerter::pipeline::engine::{Engine, Mode};
use alerter::pipeline::evaluate::{FetchPlan, RenderBackend};
use axum::extract::Query;
use graphite::glob::GlobPattern;
use graphite::render::{to_json, RenderedSeries};

const HOSTS: usize = 1000;
const METRICS: usize = 10;

fn value(h: usize, m: usize) -> f64 {
    ((h * 31 + m * 17) % 30) as f64
}

async fn server() {
    let now = 1_700_000_000i64;
    let mut paths = Vec::new();
    for h in 0..HOSTS {
        for m in 0..METRICS {
            paths.push((format!("servers.host-{h:04}.m{m}"), value(h, m)));
        }
    }
    let paths = Arc::new(paths);
    let app = axum::Router::new().route(
        "/render",
        axum::routing::get(move |Query(q): Query<BTreeMap<String, String>>| {
            let paths = paths.clone();
            async move {
                let target = q.get("target").cloned().unwrap_or_default();
                // aliasByNode(GLOB,1)
                let glob = target
                    .trim_start_matches("aliasByNode(")
                    .trim_end_matches(",1)")
                    .to_string();
                let g = GlobPattern::new(&glob).unwrap();
                let series: Vec<RenderedSeries> = paths
                    .iter()
                    .filter(|(p, _)| g.matches(p))
                    .map(|(p, v)| RenderedSeries {
                        target: p.split('.').nth(1).unwrap_or("").to_string(),
                        tags: vec![("name".into(), p.clone())],
                        datapoints: (0..6).map(|i| (Some(*v), now - 50 + i * 10)).collect(),
                    })
                    .collect();
                to_json(&series)
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("{}", l.local_addr().unwrap());
    axum::serve(l, app).await.unwrap();
}

fn cpu() -> Duration {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into the struct we own.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

async fn scenario(name: &str, url: &str, targets: Vec<String>, dir: &Path) {
    let mut text = format!(
        "graphite_url: {url}\nstate_file: {}\nconcurrency: 16\nalerts:\n",
        dir.join(format!("{}.db", name.replace(' ', "_"))).display()
    );
    for (i, t) in targets.iter().enumerate() {
        text.push_str(&format!(
            "  - {{name: A{i}, target: '{t}', warning: 20, critical: 27}}\n"
        ));
    }
    let cfg =
        Arc::new(Config::from_str_with_env(Path::new("bench.yml"), &text, &|_| None).unwrap());
    let outbox = Outbox::open(&cfg.state_file).await.unwrap();
    let backend =
        Arc::new(RenderBackend::from_settings(&cfg.graphite, Duration::from_secs(30)).unwrap());
    let plan = FetchPlan {
        concurrency: 16,
        timeout: Duration::from_secs(30),
        spread: Duration::ZERO,
    };
    let mut e = Engine::new(cfg, backend, Some(outbox), plan).await.unwrap();
    for round in 1..=3 {
        let (t0, c0) = (Instant::now(), cpu());
        let r = e
            .cycle(1_700_000_000 + round * 60, Mode::Live)
            .await
            .unwrap();
        let (wall, cpu) = (t0.elapsed(), cpu() - c0);
        let series: usize = r.levels.values().sum();
        println!(
            "{name:<26} round {round}: {series} alert series, {} requests, {} notifications; wall {:>7.1} ms, CPU {:>7.1} ms ({:.2} % of one core at a 60 s interval)",
            targets.len(),
            r.messages.len(),
            wall.as_secs_f64() * 1000.0,
            cpu.as_secs_f64() * 1000.0,
            cpu.as_secs_f64() / 60.0 * 100.0
        );
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    if std::env::var_os("ALERTER_BENCH_SERVER").is_some() {
        rt.block_on(server());
        return;
    }
    if std::env::args().any(|a| a == "--list") {
        return; // cargo bench --list
    }
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .env("ALERTER_BENCH_SERVER", "1")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = format!("http://{}", line.trim());
    let dir = tempfile::tempdir().unwrap();
    rt.block_on(async {
        let globs: Vec<String> = (0..METRICS)
            .map(|m| format!("aliasByNode(servers.*.m{m},1)"))
            .collect();
        scenario("10 alerts x 1000 hosts", &url, globs, dir.path()).await;
        let singles: Vec<String> = (0..HOSTS)
            .flat_map(|h| {
                (0..METRICS).map(move |m| format!("aliasByNode(servers.host-{h:04}.m{m},1)"))
            })
            .collect();
        scenario("10000 alerts x 1 series", &url, singles, dir.path()).await;
    });
    let _ = child.kill();
    let _ = child.wait();
}
