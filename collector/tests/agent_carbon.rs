//! End to end: the real `collector` binary with a `type: host` instance sends to a real
//! carbon-cache; the points are read back from whisper and checked against /proc.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::agent::{write, Agent};
use common::carbon::Carbon;

const STOP: Duration = Duration::from_secs(30);

fn proc_meminfo_kib(key: &str) -> f64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap();
    text.lines()
        .find_map(|l| {
            let rest = l.strip_prefix(key)?.strip_prefix(':')?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .unwrap_or_else(|| panic!("{key} not in /proc/meminfo"))
}

fn proc_loadavg_1() -> f64 {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap();
    text.split_whitespace().next().unwrap().parse().unwrap()
}

fn values(points: &[(i64, Option<f64>)]) -> Vec<(i64, f64)> {
    points
        .iter()
        .filter_map(|(t, v)| v.map(|v| (*t, v)))
        .collect()
}

#[test]
fn host_metrics_reach_carbon_with_diamond_names_and_true_values() {
    let carbon = Carbon::start();
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "collector.yml",
        &format!(
            "hostname_method: fixed\nhostname: e2e\ninterval: 1s\nsender:\n  destinations: [\"{}\"]\n  spool_dir: spool\n",
            carbon.addr()
        ),
    );
    write(tmp.path(), "collectors.d/host.yml", "type: host\n");
    let agent = Agent::start(tmp.path());

    // Gauges: MemTotal is exactly /proc/meminfo's, in bytes.
    let mem = values(&carbon.fetch("servers.e2e.memory.MemTotal"));
    let want = proc_meminfo_kib("MemTotal") * 1024.0;
    assert!(!mem.is_empty());
    for (t, v) in &mem {
        assert_eq!(*v, want, "MemTotal at {t}");
    }
    let avail = values(&carbon.fetch("servers.e2e.memory.MemAvailable"));
    assert!(
        avail.iter().all(|(_, v)| *v > 0.0 && *v <= want),
        "{avail:?}"
    );
    let pct = values(&carbon.fetch("servers.e2e.memory.MemUsedPercentage"));
    assert!(
        pct.iter().all(|(_, v)| (0.0..=100.0).contains(v)),
        "{pct:?}"
    );

    // Load average: non-negative and close to what the kernel says now (it moves slowly).
    let load = values(&carbon.fetch("servers.e2e.loadavg.01"));
    let now = proc_loadavg_1();
    for (t, v) in &load {
        assert!(
            *v >= 0.0 && (v - now).abs() <= 1.0 + now * 0.5,
            "loadavg.01 {v} at {t}, /proc/loadavg says {now}"
        );
    }
    for m in ["05", "15", "processes_total"] {
        let v = values(&carbon.fetch(&format!("servers.e2e.loadavg.{m}")));
        assert!(v.iter().all(|(_, x)| *x >= 0.0), "loadavg.{m}: {v:?}");
    }

    // CPU percentages (rates: the first sample publishes nothing, so wait for two points):
    // each in 0..=100, and the states of one timestamp add up to about 100.
    let states = [
        "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
    ];
    let mut by_ts: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
    for s in states {
        let pts = carbon.fetch_until(&format!("servers.e2e.cpu.total.{s}"), |p| {
            p.iter().filter(|(_, v)| v.is_some()).count() >= 2
        });
        for (t, v) in values(&pts) {
            assert!((0.0..=100.0).contains(&v), "cpu.total.{s} = {v} at {t}");
            by_ts.entry(t).or_default().push(v);
        }
    }
    let complete: Vec<_> = by_ts
        .iter()
        .filter(|(_, v)| v.len() == states.len())
        .collect();
    assert!(!complete.is_empty(), "no timestamp with every cpu state");
    for (t, v) in complete {
        let sum: f64 = v.iter().sum();
        assert!(
            (99.0..=101.0).contains(&sum),
            "cpu.total.* at {t} add up to {sum}"
        );
    }

    // Per-core CPU, disk space and the agent's own metrics are there too.
    let core = values(&carbon.fetch("servers.e2e.cpu.cpu0.idle"));
    assert!(
        core.iter().all(|(_, v)| (0.0..=100.0).contains(v)),
        "{core:?}"
    );
    let sent = values(&carbon.fetch("servers.e2e.carbide.collector.sender.lines_sent"));
    assert!(sent.iter().all(|(_, v)| *v >= 0.0), "{sent:?}");
    let runs = values(
        &carbon.fetch_until("servers.e2e.carbide.collector.host.runs", |p| {
            p.iter().any(|(_, v)| v.is_some_and(|v| v >= 1.0))
        }),
    );
    assert!(runs.iter().any(|(_, v)| *v >= 1.0), "{runs:?}");
    let errors = values(&carbon.fetch("servers.e2e.carbide.collector.host.errors"));
    assert!(errors.iter().all(|(_, v)| *v == 0.0), "{errors:?}");

    // Nothing at the wrong place: no `host.` level, no unsanitised names.
    assert!(!carbon
        .dir()
        .join("storage/whisper/servers/e2e/host")
        .exists());

    let (submitted, log) = agent.stop(STOP);
    assert!(submitted > 0, "{log}");
}
