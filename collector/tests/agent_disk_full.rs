//! The real `collector` binary with its spool on a tiny tmpfs that fills up while carbon is
//! down: every line is either delivered later or counted as dropped, the logs say why, at a
//! bounded rate, no empty segment is left behind, and a SIGTERM that had to drop lines exits
//! with status 1. Needs root (it mounts a tmpfs), as the CI and `tests/run` are.

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::agent::{spool_dest_dir, stopped_lines_submitted, write, Agent};
use common::receiver::{Receiver, Sink};
use common::{free_port, wait_until};

const LIMIT: Duration = Duration::from_secs(90);

/// A tmpfs of `size` mounted on `dir`, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .expect("running mount");
        assert!(
            out.status.success(),
            "mount -t tmpfs failed (this test needs root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// `N` of `key=N` in a log line.
fn field(line: &str, key: &str) -> Option<u64> {
    let at = line.find(&format!(" {key}="))? + key.len() + 2;
    line[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .ok()
}

/// Lines the log says were dropped (every drop is logged, with its count).
fn logged_drops(log: &str) -> u64 {
    log.lines()
        .filter(|l| l.contains("dropped lines"))
        .filter_map(|l| field(l, "lines"))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_spool_disk_counts_every_dropped_line_and_exits_1() {
    let tmp = tempfile::tempdir().unwrap();
    let spool_dir = tmp.path().join("spool");
    let _fs = Tmpfs::mount(&spool_dir, "32k");
    let port = free_port();
    write(
        tmp.path(),
        "collector.yml",
        &format!(
            "hostname_method: fixed\n\
             hostname: full\n\
             interval: 1s\n\
             sender:\n  \
               destinations: [\"127.0.0.1:{port}\"]\n  \
               spool_dir: spool\n  \
               queue_max_bytes: 8192\n  \
               reconnect_min: 50ms\n  \
               reconnect_max: 200ms\n  \
               replay_lines_per_second: 0\n"
        ),
    );
    write(tmp.path(), "collectors.d/host.yml", "type: host\n");
    let dest = spool_dest_dir(&spool_dir, &format!("127.0.0.1:{port}"));

    // Carbon is down: the spool fills the 32 KiB disk, then memory fills, then lines drop.
    let first = Agent::start(tmp.path());
    wait_until("the disk full and lines dropped", LIMIT, || {
        let log = first.log();
        log.contains("spool write failed") && log.contains("dropped lines")
    })
    .await;
    // Several more intervals against the full disk.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let segs: Vec<u64> = std::fs::read_dir(&dest)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "seg"))
        .map(|e| e.metadata().unwrap().len())
        .collect();
    assert!(
        segs.iter().all(|&n| n > 8),
        "a segment holding no record: {segs:?}"
    );
    first.signal(libc::SIGTERM);
    let (status, log1) = tokio::task::block_in_place(|| first.wait(LIMIT));
    assert_eq!(
        status.code(),
        Some(1),
        "lines dropped at shutdown: exit 1\n{log1}"
    );
    assert!(!log1.contains("no spool_dir configured"), "{log1}");
    assert!(
        log1.contains("the spool could not be written"),
        "the shutdown drop names the spool\n{log1}"
    );
    // One error line per 10 s, not one per failed append.
    let errors = log1.matches("spool write failed").count();
    assert!(errors <= 3, "{errors} spool error lines\n{log1}");
    let submitted1 = stopped_lines_submitted(&log1).expect("collector stopped line");
    let stopped = log1
        .lines()
        .find(|l| l.contains("collector stopped"))
        .unwrap();
    let dropped1 = field(stopped, "lines_dropped").unwrap();
    assert!(dropped1 > 0, "{log1}");
    assert_eq!(
        logged_drops(&log1),
        dropped1,
        "every drop is logged\n{log1}"
    );

    // Carbon is back: the next agent delivers what the spool kept.
    let sink = Sink::default();
    let recv = Receiver::start(port, sink.clone()).await;
    let second = Agent::start(tmp.path());
    wait_until("the spool replayed", LIMIT, || {
        common::agent::spool_segment_bytes(&dest) == 0 && sink.len() > 0
    })
    .await;
    let (submitted2, log2) = tokio::task::block_in_place(|| second.stop(LIMIT));
    let stopped = log2
        .lines()
        .find(|l| l.contains("collector stopped"))
        .unwrap();
    assert_eq!(field(stopped, "lines_dropped"), Some(0), "{log2}");
    let want = submitted1 - dropped1 + submitted2;
    let distinct = |s: &Sink| {
        s.lines()
            .iter()
            .filter_map(|l| {
                let mut f = l.split(' ');
                Some((f.next()?.to_string(), f.nth(1)?.to_string()))
            })
            .collect::<HashSet<_>>()
            .len() as u64
    };
    wait_until("every kept line received", LIMIT, || {
        distinct(&sink) >= want
    })
    .await;
    recv.stop().await;
    assert_eq!(
        distinct(&sink),
        want,
        "lines submitted {} = received + dropped {dropped1}",
        submitted1 + submitted2
    );
}
