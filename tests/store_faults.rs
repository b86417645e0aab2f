//! `carbide serve` under a real full disk: its data directory on a small tmpfs that is filled
//! and freed while points arrive. Counts, not timings: every point the store took in before
//! the fault, during it and after it is queryable, and still is after a kill -9 once flushes
//! have committed again; and a clean shutdown while the disk is still full says so and exits
//! non-zero, bounded, keeping everything flushed before (docs/store.md, "Crash-loss bound").

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{enc, now, send_lines, series, wait_until, Carbide, Tmpfs};

fn serve(dir: &std::path::Path, data: &std::path::Path) -> Carbide {
    Carbide::start(
        dir,
        &[
            "serve",
            "--config",
            "serve.yml",
            "--data-dir",
            data.to_str().unwrap(),
            "--carbon-tcp",
            "127.0.0.1:0",
            "--carbon-udp",
            "off",
            "--http-listen",
            "127.0.0.1:0",
        ],
    )
}

/// A data directory on a fresh tmpfs of `size`, and a working directory whose `serve.yml`
/// flushes and reports every 200 ms (plus `extra` settings).
struct Rig {
    fs: Tmpfs,
    dir: tempfile::TempDir,
    data: std::path::PathBuf,
}

impl Rig {
    fn new(size: &str, extra: &str) -> Rig {
        let fs = Tmpfs::mount(size);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("serve.yml"),
            format!("flush_interval: 200ms\nself_metrics_interval: 200ms\n{extra}"),
        )
        .unwrap();
        let data = fs.path().join("data");
        Rig { fs, dir, data }
    }

    fn serve(&self) -> Carbide {
        serve(self.dir.path(), &self.data)
    }

    /// `carbide serve`'s log so far (every start of this rig).
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("carbide.log")).unwrap_or_default()
    }
}

/// Send `text` and wait until every point of `want` is queryable under `pattern`.
fn send_and_wait(c: &Carbide, pattern: &str, text: &str, want: &BTreeMap<(String, i64), f64>) {
    send_lines(c.carbon, text);
    assert!(
        wait_until(Duration::from_secs(60), || known(c, pattern).len()
            == want.len()),
        "not every point of {pattern} arrived"
    );
}

/// `series` series `prefix.sNNNN` of `n` points every 10 s ending at `end`; value =
/// series * 1000 + index. Returns the lines and the points they carry.
fn batch(prefix: &str, series: usize, n: i64, end: i64) -> (String, BTreeMap<(String, i64), f64>) {
    let mut text = String::new();
    let mut want = BTreeMap::new();
    for s in 0..series {
        let path = format!("{prefix}.s{s:04}");
        for i in 0..n {
            let ts = end - (n - 1 - i) * 10;
            let v = (s * 1000) as f64 + i as f64;
            text.push_str(&format!("{path} {v} {ts}\n"));
            want.insert((path.clone(), ts), v);
        }
    }
    (text, want)
}

/// Every known point of `pattern` over the last hour.
fn known(c: &Carbide, pattern: &str) -> BTreeMap<(String, i64), f64> {
    let (st, body) = c.get(&format!(
        "/render?target={}&from=-1h&format=json",
        enc(pattern)
    ));
    assert_eq!(st, 200, "{body}");
    let mut out = BTreeMap::new();
    for (name, pts) in series(&body) {
        for (v, t) in pts {
            if let Some(v) = v {
                out.insert((name.clone(), t), v);
            }
        }
    }
    out
}

/// `got` must equal `want`; otherwise say how many points of each prefix are missing.
fn same(got: &BTreeMap<(String, i64), f64>, want: &BTreeMap<(String, i64), f64>, when: &str) {
    if got == want {
        return;
    }
    let mut missing: BTreeMap<&str, usize> = BTreeMap::new();
    for (k, v) in want {
        if got.get(k) != Some(v) {
            *missing
                .entry(k.0.rsplit_once('.').map_or("", |p| p.0))
                .or_default() += 1;
        }
    }
    let extra = got.keys().filter(|k| !want.contains_key(*k)).count();
    panic!(
        "{when}: {} of {} points missing or wrong {missing:?}, {extra} unexpected",
        missing.values().sum::<usize>(),
        want.len()
    );
}

/// The store's own counter `carbide.store.NAME` (its latest report).
fn counter(c: &Carbide, name: &str) -> f64 {
    let (_, body) = c.get(&format!(
        "/render?target=carbide.store.{name}&from=-5min&format=json"
    ));
    series(&body)
        .into_iter()
        .flat_map(|(_, p)| p)
        .filter_map(|(v, _)| v)
        .fold(0.0, f64::max)
}

/// Wait until `n` more flushes than now have been reported: the counter lags by at most one
/// report, so at least `n - 1` flushes started after this call and committed.
fn wait_flushes(c: &Carbide, n: f64) {
    let f0 = counter(c, "flushes");
    assert!(
        wait_until(Duration::from_secs(90), || counter(c, "flushes") >= f0 + n),
        "no {n} flushes after {f0}"
    );
}

#[test]
fn transient_disk_full_loses_no_point() {
    let rig = Rig::new("12m", "");
    let (fs, log) = (&rig.fs, || rig.log());
    let end = now() - now() % 10 - 10;
    let c = rig.serve();

    // Before the fault: flushed normally.
    let (text, mut want) = batch("df.before", 20, 30, end);
    send_and_wait(&c, "df.before.*", &text, &want);
    wait_flushes(&c, 3.0);

    // The disk fills up; new series arrive (new rows and pages: the flush must grow the
    // database) and flushes fail.
    let filled = fs.fill();
    assert!(filled > 0);
    let (text, during) = batch("df.during", 1000, 30, end);
    send_lines(c.carbon, &text);
    want.extend(during);
    assert!(
        wait_until(Duration::from_secs(60), || log()
            .matches("store flush failed")
            .count()
            >= 2),
        "no failed flush on a full disk:\n{}",
        log()
    );
    // Cached meanwhile: all queryable while the disk is full (once the listener has read
    // them: sending returns when the kernel has the bytes).
    wait_until(Duration::from_secs(60), || known(&c, "df.*.*") == want);
    same(&known(&c, "df.*.*"), &want, "while the disk is full");

    // Space is back: later flushes commit everything, including what failed before.
    fs.free();
    let (text, after) = batch("df.after", 20, 30, end);
    send_lines(c.carbon, &text);
    want.extend(after);
    wait_flushes(&c, 4.0);
    same(&known(&c, "df.*.*"), &want, "after the disk was freed");

    // Committed for real: a kill -9 now loses nothing that was received before those
    // flushes started.
    c.kill9();
    let c = rig.serve();
    same(&known(&c, "df.*.*"), &want, "after a kill -9 and restart");
    assert!(c.stop(), "carbide serve did not exit cleanly");
}

/// A long disk-full: the cache fills up to `max_cache_points` and the listeners stop reading
/// (back-pressure) instead of growing or dropping; once space is back every point sent is
/// stored, none was dropped, and the cache never passed its hard bound.
#[test]
fn disk_full_with_a_full_cache_pauses_and_loses_nothing() {
    let rig = Rig::new("16m", "max_cache_points: 20000\n");
    let (fs, log) = (&rig.fs, || rig.log());
    let end = now() - now() % 10 - 10;
    let c = rig.serve();
    let (text, want) = batch("bp.x", 1000, 300, end);
    wait_flushes(&c, 2.0);
    fs.fill();
    let carbon = c.carbon;
    let sender = std::thread::spawn(move || send_lines(carbon, &text));
    assert!(
        wait_until(Duration::from_secs(60), || {
            let l = log();
            l.contains("store flush failed") && l.contains("store cache full: pausing")
        }),
        "no pause on a full cache with a full disk:\n{}",
        log()
    );
    fs.free();
    sender.join().unwrap();
    assert!(
        wait_until(Duration::from_secs(120), || known(&c, "bp.x.*").len()
            == want.len()),
        "not every point arrived"
    );
    wait_flushes(&c, 3.0);
    assert_eq!(counter(&c, "points_dropped_cache_full"), 0.0);
    let most = counter(&c, "cache_points");
    assert!(
        most <= (20_000 + graphite::store::HARD_CACHE_SLACK) as f64,
        "cache grew to {most} points"
    );
    c.kill9();
    let c = rig.serve();
    same(
        &known(&c, "bp.x.*"),
        &want,
        "after the disk-full with a full cache and a kill -9",
    );
    assert!(c.stop());
}

/// A clean shutdown while the disk is still full cannot write the cache: it logs the error and
/// exits non-zero within a bounded time (never hangs retrying), and what was flushed before the
/// disk filled is intact at the next start.
#[test]
fn shutdown_while_the_disk_is_full_exits_non_zero_and_keeps_what_was_flushed() {
    let rig = Rig::new("12m", "");
    let (fs, log) = (&rig.fs, || rig.log());
    let end = now() - now() % 10 - 10;
    let c = rig.serve();
    let (text, want) = batch("sd.before", 20, 30, end);
    send_and_wait(&c, "sd.before.*", &text, &want);
    wait_flushes(&c, 3.0);

    fs.fill();
    let (text, during) = batch("sd.during", 1000, 30, end);
    send_lines(c.carbon, &text);
    assert!(
        wait_until(Duration::from_secs(60), || log()
            .contains("store flush failed")),
        "no failed flush on a full disk:\n{}",
        log()
    );
    assert!(
        wait_until(Duration::from_secs(60), || known(&c, "sd.during.*").len()
            == during.len()),
        "not all cached while the disk is full"
    );
    let status = c
        .stop_within(Duration::from_secs(60))
        .unwrap_or_else(|| panic!("no exit within 60 s of SIGTERM on a full disk:\n{}", log()));
    assert!(
        !status.success(),
        "a shutdown that could not write the cache exited {status}:\n{}",
        log()
    );
    let tail = log();
    let tail = &tail[tail.rfind("SIGTERM: stopping").unwrap_or(0)..];
    assert!(
        tail.to_lowercase().contains("full") || tail.contains("No space"),
        "the shutdown does not name the full disk:\n{tail}"
    );

    // Space is back: the database opens, and everything flushed before the disk filled is
    // there.
    fs.free();
    let c = rig.serve();
    same(
        &known(&c, "sd.before.*"),
        &want,
        "after a shutdown on a full disk",
    );
    assert!(
        c.stop(),
        "carbide serve did not exit cleanly once space was back"
    );
}
