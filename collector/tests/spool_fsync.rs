//! The power-loss window of the spool (docs/sender.md, "Power loss / kernel crash"): a test
//! cannot cut the power, but it can watch what reaches stable storage. The real `collector`
//! binary runs under `strace -f -y` (every syscall's file descriptor shown with its path)
//! through an outage (lines spooled), a replay (the cursor rewritten) and a shutdown; every
//! write to a spool segment or the cursor must be followed by an `fdatasync`/`fsync` of that
//! file — with `fsync: always` before the next write to it, with `fsync: 1s` within the
//! interval (plus a second of slack for scheduling under strace: the bound is the point, not
//! a speed). Whatever was written and not yet synced is what a power cut could take.

mod common;

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use common::agent::{spool_dest_dir, spool_segment_bytes, submitted_events, write, Agent};
use common::receiver::{Receiver, Sink};
use common::{free_port, wait_until};

const LIMIT: Duration = Duration::from_secs(90);

fn strace_available() -> bool {
    Command::new("strace")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// One traced syscall on a spool file.
#[derive(Debug)]
struct Call {
    ts: f64,
    kind: Kind,
    path: String,
}

#[derive(Debug, PartialEq)]
enum Kind {
    Write,
    Sync,
    /// The file was removed (a delivered segment): its unsynced data is no longer needed.
    Unlink,
}

/// The writes, syncs and removals of files under `spool` in an `strace -f -ttt -y` log
/// (a relative path of `unlink` is relative to `cwd`, of `unlinkat` to its directory fd's). A call that was
/// interrupted by another thread's (`<unfinished ...>`) is taken at its start, which names the
/// file: for a write, when it began; for a sync, also when it began — so a write counts as
/// covered only by a sync that started after it.
fn spool_calls(trace: &str, spool: &str, cwd: &str) -> Vec<Call> {
    let mut out = Vec::new();
    for line in trace.lines() {
        // "PID TS name(FD</path>, ..." (strace -f -o prefixes the thread id)
        let Some((pid, rest)) = line.split_once(' ') else {
            continue;
        };
        let Some((ts, rest)) = rest.trim_start().split_once(' ') else {
            continue;
        };
        let (Ok(_), Ok(ts)) = (pid.parse::<u32>(), ts.parse::<f64>()) else {
            continue;
        };
        let rest = rest.trim_start();
        if rest.starts_with("<...") {
            continue; // a resumption: the call was recorded at its start
        }
        let Some((name, args)) = rest.split_once('(') else {
            continue;
        };
        let kind = match name {
            "write" | "pwrite64" | "writev" | "pwritev" | "pwritev2" => Kind::Write,
            "fsync" | "fdatasync" => Kind::Sync,
            "unlink" | "unlinkat" => Kind::Unlink,
            _ => continue,
        };
        let path = if kind == Kind::Unlink {
            // unlinkat(AT_FDCWD</dir>, "spool/…/3.seg", 0) or unlink("…"): the quoted
            // path, relative to the directory fd's path (or the working directory)
            let Some(p) = args.split('"').nth(1) else {
                continue;
            };
            let base = args
                .split('"')
                .next()
                .and_then(|a| a.split_once('<'))
                .and_then(|(_, d)| d.split_once('>'))
                .map_or(cwd, |(d, _)| d);
            if p.starts_with('/') {
                p.to_string()
            } else {
                format!("{base}/{p}")
            }
        } else {
            // write(7</…/spool/…/3.seg>, …)
            let Some(p) = args
                .split_once('<')
                .and_then(|(_, p)| p.split_once('>'))
                .map(|(p, _)| p.trim_end_matches(" (deleted)"))
            else {
                continue;
            };
            p.to_string()
        };
        // The lock file holds the holder's pid and command line (for the "in use" message of a
        // second sender), not spooled data: it need not be synced.
        if !path.starts_with(spool) || path.ends_with("/lock") {
            continue;
        }
        if rest.contains("= -1") {
            continue; // failed: neither wrote nor synced
        }
        out.push(Call { ts, kind, path });
    }
    out
}

/// The writes never followed by a sync (or removal) of their file, the longest wait from a
/// write to the sync (or removal) that covered it, and the number of writes; `strict`: a sync
/// must come before the next write to the file.
fn check(calls: &[Call], strict: bool) -> (Vec<String>, f64, usize) {
    // path -> start of the oldest write not yet synced
    let mut pending: HashMap<&str, f64> = HashMap::new();
    let mut worst: f64 = 0.0;
    let mut writes = 0;
    for c in calls {
        match c.kind {
            Kind::Sync | Kind::Unlink => {
                if let Some(t) = pending.remove(c.path.as_str()) {
                    worst = worst.max(c.ts - t);
                }
            }
            Kind::Write => {
                writes += 1;
                if strict {
                    assert!(
                        !pending.contains_key(c.path.as_str()),
                        "fsync: always, yet {} was written again before a sync",
                        c.path
                    );
                }
                pending.entry(c.path.as_str()).or_insert(c.ts);
            }
        }
    }
    (
        pending.keys().map(|p| p.to_string()).collect(),
        worst,
        writes,
    )
}

/// Run the agent under strace with `fsync: <policy>` through an outage, a replay and a
/// shutdown; the spool calls of the trace and the spool directory's path.
async fn traced_run(policy: &str) -> (Vec<Call>, String) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    write(
        dir.path(),
        "collector.yml",
        &format!(
            "hostname_method: fixed\n\
             hostname: fs\n\
             interval: 1s\n\
             sender:\n  \
               destinations: [\"127.0.0.1:{port}\"]\n  \
               spool_dir: spool\n  \
               fsync: {policy}\n  \
               spool_segment_bytes: 4096\n  \
               reconnect_min: 50ms\n  \
               reconnect_max: 200ms\n  \
               replay_lines_per_second: 500\n"
        ),
    );
    write(dir.path(), "collectors.d/host.yml", "type: host\n");
    let trace = dir.path().join("trace");
    let agent = Agent::start_under(
        dir.path(),
        &[
            "strace",
            "-f",
            "-qq",
            "-ttt",
            "-y",
            "-e",
            "trace=write,pwrite64,writev,pwritev,pwritev2,fsync,fdatasync,unlink,unlinkat",
            "-o",
            trace.to_str().unwrap(),
        ],
    );
    let spool = spool_dest_dir(&dir.path().join("spool"), &format!("127.0.0.1:{port}"));
    // The outage: four cycles spooled, into several segments (4 KiB each).
    wait_until("four cycles spooled during the outage", LIMIT, || {
        submitted_events(&agent.log(), Some("host")).1 >= 4 && spool_segment_bytes(&spool) > 8192
    })
    .await;
    // The replay, paced, so the cursor is rewritten many times; then fresh lines.
    let sink = Sink::default();
    let recv = Receiver::start(port, sink.clone()).await;
    wait_until("the spool replayed", LIMIT, || {
        spool_segment_bytes(&spool) == 0 && sink.len() > 0
    })
    .await;
    // SIGTERM to the agent itself (strace's child); strace exits with its status.
    let children =
        std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", agent.pid())).unwrap();
    let pid: i32 = children.split_whitespace().next().unwrap().parse().unwrap();
    // SAFETY: kill(2) on the traced agent, our grandchild.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let (status, log) = agent.wait(LIMIT);
    assert!(status.success(), "agent exit status {status}; log:\n{log}");
    recv.stop().await;
    let text = std::fs::read_to_string(&trace).unwrap();
    let cwd = std::fs::canonicalize(dir.path()).unwrap();
    let spool = cwd
        .join(spool.strip_prefix(dir.path()).unwrap())
        .to_string_lossy()
        .into_owned();
    let calls = spool_calls(&text, &spool, &cwd.to_string_lossy());
    assert!(
        [Kind::Write, Kind::Sync, Kind::Unlink]
            .iter()
            .all(|k| calls.iter().any(|c| c.kind == *k)),
        "no spool writes, syncs or removals traced under {spool}; agent log:\n{log}"
    );
    (calls, spool)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fsync_always_syncs_every_spool_write_before_the_next() {
    if !strace_available() {
        panic!("strace is missing (tests/run installs it)");
    }
    let (calls, spool) = traced_run("always").await;
    let (unsynced, _, writes) = check(&calls, true);
    assert!(
        unsynced.is_empty(),
        "writes under {spool} never synced: {unsynced:?}"
    );
    assert!(writes >= 4, "{writes} spool writes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fsync_interval_syncs_every_spool_write_within_the_interval() {
    if !strace_available() {
        panic!("strace is missing (tests/run installs it)");
    }
    let (calls, spool) = traced_run("1s").await;
    let (unsynced, worst, writes) = check(&calls, false);
    assert!(
        unsynced.is_empty(),
        "writes under {spool} never synced: {unsynced:?}"
    );
    assert!(writes >= 4, "{writes} spool writes");
    eprintln!("{writes} spool writes; the longest wait for a sync: {worst:.3} s");
    assert!(
        worst <= 2.0,
        "a spool write waited {worst:.3} s for its sync (fsync: 1s)"
    );
}
