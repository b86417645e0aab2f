//! Scheduling collector instances: one tokio task per instance, each on its own interval,
//! started at interval boundaries (plus a fixed per-instance jitter), each run under a hard
//! deadline. A run turns the collector's [`Batch`] into Graphite lines: whitelist/blacklist,
//! counter rates, paths, encoding, one timestamp per run, one [`Chunk`] per run.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use graphite::protocol::{encode_line, EncodeError};
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

use crate::breaker::{Breaker, Change};
use crate::collectors::{self, Batch, Collector, Pattern, SampleKind};
use crate::config::{LoadedInstance, Settings};
use crate::events::{
    AgentStats, ChunkSubmitted, CircuitClosed, CircuitOpened, CollectorFailed, CollectorRan,
    CollectorRecovered, CollectorTimedOut, InputRejected, InstanceStats, MetricsDropped,
};
use crate::paths::PathBuilder;
use crate::rates::Rates;
use crate::sender::Chunk;

/// Where finished chunks go (the sender in the agent; a buffer in `--once` and tests).
pub type Submit = Arc<dyn Fn(Chunk) + Send + Sync>;

/// Diamond's metric filters: `search` semantics against the collector-relative name. With a
/// non-empty whitelist a name must match one of its patterns; a blacklist match drops it.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub whitelist: Vec<Pattern>,
    pub blacklist: Vec<Pattern>,
}

impl Filter {
    pub fn allows(&self, name: &str) -> bool {
        (self.whitelist.is_empty() || self.whitelist.iter().any(|p| p.0.is_match(name)))
            && !self.blacklist.iter().any(|p| p.0.is_match(name))
    }
}

/// Time to wait from `now` (wall clock) until the next multiple of `interval` since the
/// epoch, plus `offset`. A start exactly on a boundary runs at once.
pub fn until_next_boundary(now: SystemTime, interval: Duration, offset: Duration) -> Duration {
    let since = now
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let iv = interval.as_nanos().max(1);
    let off = offset.as_nanos() % iv;
    let phase = (since + iv - off) % iv; // how far past the last (boundary + offset)
    let wait = if phase == 0 { 0 } else { iv - phase };
    Duration::from_nanos(wait.min(u128::from(u64::MAX)) as u64)
}

/// Epoch seconds, rounded to the nearest second (the run's single timestamp).
pub fn unix_now() -> i64 {
    (since_epoch().as_millis() as i64 + 500) / 1000
}

/// Time since the epoch by the wall clock (0 before 1970): the crate's one reading of it as
/// a Unix time.
pub fn since_epoch() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// The timestamp of a run that was due at `due` (a tick of its interval): the wall-clock
/// time it was due, rounded to the nearest second. Using the due time rather than the time
/// the run actually starts keeps runs of one instance on distinct timestamps even when the
/// machine is so loaded that a run starts more than half a second late (the late run and the
/// next, on-time one would otherwise share a second, and carbon would keep only one).
pub fn due_timestamp(due: Instant) -> i64 {
    timestamp_of(due, Instant::now(), SystemTime::now())
}

fn timestamp_of(due: Instant, now: Instant, wall_now: SystemTime) -> i64 {
    let since = wall_now
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .saturating_sub(now.saturating_duration_since(due));
    (since.as_millis() as i64 + 500) / 1000
}

/// What one run produced.
#[derive(Debug, Default)]
pub struct RunOutcome {
    pub chunk: Chunk,
    /// The collector reported counters (so a second sample would add their rates).
    pub had_counters: bool,
    /// The run failed or timed out.
    pub failed: bool,
}

/// One collector instance and everything the runtime keeps about it.
pub struct Worker {
    /// Name in logs and self-metrics: the path segment, or the type for host-level instances.
    pub name: String,
    collector: Box<dyn Collector>,
    pub interval: Duration,
    timeout: Duration,
    /// Fixed offset after each boundary (the jitter, drawn once).
    offset: Duration,
    paths: PathBuilder,
    filter: Filter,
    rates: Rates,
    /// For service collectors: stops calling a failing service for a while.
    breaker: Option<Breaker>,
    pub stats: Arc<InstanceStats>,
    agent: Arc<AgentStats>,
}

impl Worker {
    pub fn new(inst: LoadedInstance, settings: &Settings, agent: Arc<AgentStats>) -> Self {
        let offset = if settings.jitter.is_zero() {
            Duration::ZERO
        } else {
            let nanos = u64::try_from(settings.jitter.as_nanos()).unwrap_or(u64::MAX);
            Duration::from_nanos(fastrand::u64(0..nanos))
        };
        let common = inst.instance.common;
        let breaker = collectors::kind(&common.kind)
            .filter(|k| k.circuit_breaker)
            .map(|_| Breaker::new(inst.interval));
        Worker {
            paths: PathBuilder::new(&settings.base, &inst.segment, settings.suffix.as_deref())
                .tagged(&inst.tags),
            name: if inst.segment.is_empty() {
                common.kind.clone()
            } else {
                inst.segment
            },
            collector: inst.instance.collector,
            interval: inst.interval,
            timeout: inst.timeout,
            offset,
            filter: Filter {
                whitelist: common.whitelist,
                blacklist: common.blacklist,
            },
            rates: Rates::default(),
            breaker,
            stats: Arc::new(InstanceStats::default()),
            agent,
        }
    }

    /// Whether a run due now may call the collector (the circuit breaker, when the instance
    /// has one, may say no during a cool-down).
    fn may_run(&self) -> bool {
        self.breaker
            .as_ref()
            .is_none_or(|b| b.allows(Instant::now()))
    }

    /// Tell the circuit breaker how a run went.
    fn record_run(&mut self, failed: bool) {
        let Some(b) = &mut self.breaker else { return };
        match b.record(failed, Instant::now(), fastrand::f64()) {
            Change::None => {
                let n = u64::from(b.failures());
                self.stats.consecutive_failures.store(n, Relaxed);
            }
            Change::Opened { failures, cooldown } => CircuitOpened {
                collector: &self.name,
                failures,
                cooldown,
            }
            .emit(&self.stats),
            Change::Closed { failures } => CircuitClosed {
                collector: &self.name,
                failures,
            }
            .emit(&self.stats),
        }
    }

    /// One run under the deadline, encoded with `timestamp`.
    pub async fn run_once(&mut self, timestamp: i64) -> RunOutcome {
        let started = Instant::now();
        let mut batch = Batch::default();
        let result = tokio::time::timeout(self.timeout, self.collector.collect(&mut batch)).await;
        let duration = started.elapsed();
        let mut failed = false;
        match result {
            Err(_) => {
                CollectorTimedOut {
                    collector: &self.name,
                    timeout: self.timeout,
                }
                .emit(&self.stats);
                return RunOutcome {
                    failed: true,
                    ..RunOutcome::default()
                };
            }
            Ok(Err(error)) => {
                failed = true;
                CollectorFailed {
                    collector: &self.name,
                    error: &error,
                }
                .emit(&self.stats);
            }
            Ok(Ok(())) => CollectorRecovered {
                collector: &self.name,
            }
            .emit(&self.stats),
        }
        if batch.rejected > 0 {
            InputRejected {
                collector: &self.name,
                count: batch.rejected,
                example: batch.rejected_example.as_deref().unwrap_or_default(),
            }
            .emit(&self.stats);
        }
        let measured_at = Instant::now();
        let mut chunk = Chunk::default();
        let mut had_counters = false;
        let mut dropped: Option<(u64, String, EncodeError)> = None;
        self.rates.begin_run();
        for sample in &batch.samples {
            if !self.filter.allows(&sample.name) {
                continue;
            }
            let value = match sample.kind {
                SampleKind::Gauge => sample.value,
                SampleKind::Counter => {
                    had_counters = true;
                    match self.rates.rate(&sample.name, sample.value, measured_at) {
                        Some(v) => v,
                        None => continue,
                    }
                }
            };
            let encoded = self
                .paths
                .metric(&sample.name)
                .and_then(|path| encode_line(&mut chunk.data, &path, value, timestamp));
            match encoded {
                Ok(()) => chunk.lines += 1,
                Err(reason) => match &mut dropped {
                    Some((n, _, _)) => *n += 1,
                    None => dropped = Some((1, sample.name.clone(), reason)),
                },
            }
        }
        self.rates.end_run();
        if let Some((count, example, reason)) = &dropped {
            MetricsDropped {
                collector: &self.name,
                count: *count,
                example,
                reason: *reason,
            }
            .emit(&self.stats, &self.agent);
        }
        CollectorRan {
            collector: &self.name,
            duration,
            lines: u64::from(chunk.lines),
        }
        .emit(&self.stats);
        RunOutcome {
            chunk,
            had_counters,
            failed,
        }
    }
}

/// How a worker task is asked to stop (sent on its watch channel).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stop {
    Running,
    /// Finish the run in progress (a reload), then stop.
    AfterRun,
    /// Abandon the run in progress (shutdown).
    Now,
}

/// The worker's schedule: wait for the next boundary (+ jitter), run, repeat, until told to
/// stop. Returns the worker (its collector and rate state) when it stops.
pub async fn run_loop(mut w: Worker, submit: Submit, mut stop: watch::Receiver<Stop>) -> Worker {
    let first = Instant::now() + until_next_boundary(SystemTime::now(), w.interval, w.offset);
    let mut ticker = tokio::time::interval_at(first, w.interval);
    // A run never exceeds the interval (timeout <= interval), but a stalled machine can
    // miss ticks: skip them rather than bunch runs up.
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    loop {
        let due = tokio::select! {
            biased;
            r = stop.wait_for(|s| *s != Stop::Running) => { let _ = r; break; }
            due = ticker.tick() => due,
        };
        if !w.may_run() {
            continue;
        }
        let ts = due_timestamp(due);
        let outcome = tokio::select! {
            biased;
            r = stop.wait_for(|s| *s == Stop::Now) => { let _ = r; break; }
            o = w.run_once(ts) => o,
        };
        w.record_run(outcome.failed);
        if outcome.chunk.lines > 0 {
            ChunkSubmitted {
                collector: &w.name,
                lines: u64::from(outcome.chunk.lines),
            }
            .emit(Some(&w.stats), &w.agent);
            submit(outcome.chunk);
        }
    }
    w
}

/// A running worker task.
pub struct Running {
    /// Identity for reloads: file, file text and the global settings that shape paths.
    pub key: String,
    pub name: String,
    pub stats: Arc<InstanceStats>,
    stop: watch::Sender<Stop>,
    task: tokio::task::JoinHandle<Worker>,
}

impl Running {
    pub fn start(w: Worker, key: String, submit: Submit) -> Running {
        let (stop, rx) = watch::channel(Stop::Running);
        let name = w.name.clone();
        let stats = w.stats.clone();
        let task = tokio::spawn(run_loop(w, submit, rx));
        Running {
            key,
            name,
            stats,
            stop,
            task,
        }
    }

    /// Ask to stop; await [`Running::join`] afterwards.
    pub fn signal(&self, how: Stop) {
        let _ = self.stop.send(how);
    }

    pub async fn join(self) {
        if let Err(e) = self.task.await {
            tracing::error!(
                collector = self.name,
                "collector task ended abnormally: {e}"
            );
        }
    }
}

/// Stop tasks (concurrently) and wait for all of them.
pub async fn stop_all(tasks: Vec<Running>, how: Stop) {
    for t in &tasks {
        t.signal(how);
    }
    for t in tasks {
        t.join().await;
    }
}

/// The identity of an instance across reloads.
pub fn instance_key(inst: &LoadedInstance, settings: &Settings) -> String {
    format!(
        "{}\0{}\0{}",
        inst.file.display(),
        inst.text,
        settings.fingerprint()
    )
}

/// Run `workers` once each (concurrently), taking a second sample `gap` later for those that
/// report counters so their rates appear. Returns the lines in worker order and how many
/// runs failed.
pub async fn once(workers: Vec<Worker>, gap: Duration) -> (Vec<u8>, usize) {
    let mut set = tokio::task::JoinSet::new();
    for (i, mut w) in workers.into_iter().enumerate() {
        set.spawn(async move {
            let mut out = w.run_once(unix_now()).await;
            if out.had_counters && !out.failed {
                tokio::time::sleep(gap).await;
                out = w.run_once(unix_now()).await;
            }
            (i, out)
        });
    }
    let mut results = Vec::new();
    while let Some(r) = set.join_next().await {
        match r {
            Ok(r) => results.push(r),
            Err(e) => tracing::error!("collector task ended abnormally: {e}"),
        }
    }
    results.sort_by_key(|(i, _)| *i);
    let failed = results.iter().filter(|(_, o)| o.failed).count();
    let mut data = Vec::new();
    for (_, o) in results {
        data.extend_from_slice(&o.chunk.data);
    }
    (data, failed)
}

/// Total lines handed over so far (the agent logs it at exit).
pub fn submitted(agent: &AgentStats) -> u64 {
    agent.submitted.load(Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::{Common, Instance};
    use std::path::PathBuf;
    use std::sync::atomic::AtomicU64;
    use std::sync::Mutex;

    fn settings() -> Settings {
        Settings {
            global_file: None,
            collectors_dir: PathBuf::from("collectors.d"),
            base: "servers.h".into(),
            suffix: None,
            interval: Duration::from_secs(10),
            jitter: Duration::ZERO,
            shutdown_timeout: Duration::from_secs(1),
            sender: Default::default(),
            tags: Default::default(),
        }
    }

    fn worker(c: Box<dyn Collector>, segment: &str, interval: u64, timeout: u64) -> Worker {
        worker_with(c, segment, interval, timeout, Common::default())
    }

    fn worker_with(
        c: Box<dyn Collector>,
        segment: &str,
        interval: u64,
        timeout: u64,
        common: Common,
    ) -> Worker {
        let inst = LoadedInstance {
            file: PathBuf::from(format!("{segment}.yml")),
            stem: segment.into(),
            text: String::new(),
            segment: segment.into(),
            interval: Duration::from_secs(interval),
            timeout: Duration::from_secs(timeout),
            tags: String::new(),
            instance: Instance {
                common,
                collector: c,
            },
        };
        Worker::new(inst, &settings(), Arc::new(AgentStats::default()))
    }

    /// Produces fixed samples; counts its runs.
    struct Fake {
        runs: Arc<AtomicU64>,
        counter: f64,
    }

    #[async_trait::async_trait]
    impl Collector for Fake {
        async fn collect(&mut self, out: &mut Batch) -> anyhow::Result<()> {
            self.runs.fetch_add(1, Relaxed);
            out.gauge("load.01", 0.5);
            out.gauge("bad.nan", f64::NAN);
            out.gauge("bad..name", 1.0);
            out.gauge("disk./var.free", 3.0);
            self.counter += 100.0;
            out.counter("net.rx", self.counter);
            Ok(())
        }
    }

    /// Never returns.
    struct Hang {
        runs: Arc<AtomicU64>,
    }

    #[async_trait::async_trait]
    impl Collector for Hang {
        async fn collect(&mut self, _out: &mut Batch) -> anyhow::Result<()> {
            self.runs.fetch_add(1, Relaxed);
            std::future::pending::<()>().await;
            Ok(())
        }
    }

    /// Fails while `down` is set; counts its calls.
    struct Flaky {
        calls: Arc<AtomicU64>,
        down: Arc<std::sync::atomic::AtomicBool>,
    }

    #[async_trait::async_trait]
    impl Collector for Flaky {
        async fn collect(&mut self, out: &mut Batch) -> anyhow::Result<()> {
            self.calls.fetch_add(1, Relaxed);
            if self.down.load(Relaxed) {
                anyhow::bail!("connection refused");
            }
            out.gauge("up", 1.0);
            Ok(())
        }
    }

    fn lines(chunk: &Chunk) -> Vec<String> {
        String::from_utf8(chunk.data.clone())
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn filters_follow_diamond() {
        let p = |s: &str| Pattern(regex_lite::Regex::new(s).unwrap());
        let f = Filter::default();
        assert!(f.allows("anything"));
        let f = Filter {
            whitelist: vec![p("^cpu\\."), p("load")],
            blacklist: vec![p("steal$")],
        };
        assert!(f.allows("cpu.total.user"));
        assert!(f.allows("system.loadavg")); // search, not full match
        assert!(!f.allows("cpu.total.steal"));
        assert!(!f.allows("memory.free"));
        let f = Filter {
            whitelist: vec![],
            blacklist: vec![p("^network\\.lo\\.")],
        };
        assert!(!f.allows("network.lo.rx_bytes"));
        assert!(f.allows("network.eth0.rx_bytes"));
    }

    #[test]
    fn alignment_maths() {
        let t = |s: u64, ms: u64| UNIX_EPOCH + Duration::from_secs(s) + Duration::from_millis(ms);
        let s = Duration::from_secs;
        assert_eq!(until_next_boundary(t(100, 0), s(10), s(0)), s(0));
        assert_eq!(until_next_boundary(t(101, 0), s(10), s(0)), s(9));
        assert_eq!(
            until_next_boundary(t(109, 500), s(10), s(0)),
            Duration::from_millis(500)
        );
        assert_eq!(until_next_boundary(t(101, 0), s(10), s(3)), s(2));
        assert_eq!(until_next_boundary(t(104, 0), s(10), s(3)), s(9));
        assert_eq!(until_next_boundary(t(103, 0), s(10), s(3)), s(0));
        assert_eq!(until_next_boundary(t(59, 0), s(60), s(0)), s(1));
    }

    #[tokio::test(start_paused = true)]
    async fn run_encodes_rates_paths_and_counts_drops() {
        let runs = Arc::new(AtomicU64::new(0));
        let mut w = worker(
            Box::new(Fake {
                runs: runs.clone(),
                counter: 0.0,
            }),
            "fake",
            10,
            10,
        );
        let first = w.run_once(1000).await;
        assert!(first.had_counters && !first.failed);
        assert_eq!(
            lines(&first.chunk),
            [
                "servers.h.fake.load.01 0.5 1000",
                "servers.h.fake.disk._var.free 3 1000"
            ]
        );
        assert_eq!(first.chunk.lines, 2);
        assert_eq!(w.stats.dropped.load(Relaxed), 2);
        tokio::time::advance(Duration::from_secs(4)).await;
        let second = w.run_once(1010).await;
        // 100 more over a measured 4 s (not the nominal 10 s interval): 25/s
        assert!(lines(&second.chunk).contains(&"servers.h.fake.net.rx 25 1010".to_string()));
        assert_eq!(w.stats.runs.load(Relaxed), 2);
        assert_eq!(w.stats.dropped.load(Relaxed), 4);
        assert_eq!(runs.load(Relaxed), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn whitelist_applies_before_publishing() {
        let common = Common {
            whitelist: vec![Pattern(regex_lite::Regex::new("^load").unwrap())],
            ..Common::default()
        };
        let mut w = worker_with(
            Box::new(Fake {
                runs: Arc::default(),
                counter: 0.0,
            }),
            "fake",
            10,
            10,
            common,
        );
        let out = w.run_once(5).await;
        assert_eq!(lines(&out.chunk), ["servers.h.fake.load.01 0.5 5"]);
        assert_eq!(w.stats.dropped.load(Relaxed), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn hung_run_is_cancelled_and_fast_collector_keeps_schedule() {
        let fast_runs = Arc::new(AtomicU64::new(0));
        let hung_runs = Arc::new(AtomicU64::new(0));
        let fast = worker(
            Box::new(Fake {
                runs: fast_runs.clone(),
                counter: 0.0,
            }),
            "fast",
            1,
            1,
        );
        let hung = worker(
            Box::new(Hang {
                runs: hung_runs.clone(),
            }),
            "hung",
            10,
            2,
        );
        let hung_stats = hung.stats.clone();
        let chunks = Arc::new(Mutex::new(Vec::<Chunk>::new()));
        let sink = chunks.clone();
        let submit: Submit = Arc::new(move |c| sink.lock().unwrap().push(c));
        let a = Running::start(fast, "a".into(), submit.clone());
        let b = Running::start(hung, "b".into(), submit);
        // Let both reach their first boundary, then 60 s of (paused, auto-advanced) time.
        tokio::time::sleep(Duration::from_secs(70)).await;
        let fast_before = fast_runs.load(Relaxed);
        let timeouts_before = hung_stats.timeouts.load(Relaxed);
        tokio::time::sleep(Duration::from_secs(60)).await;
        let fast_in_60 = fast_runs.load(Relaxed) - fast_before;
        let timeouts_in_60 = hung_stats.timeouts.load(Relaxed) - timeouts_before;
        stop_all(vec![a, b], Stop::Now).await;
        // every 1 s run happened while the other collector hung in each of its runs
        assert!(
            (59..=61).contains(&fast_in_60),
            "fast ran {fast_in_60} times"
        );
        // 6 deadlines fall in any 60 s window (5 or 7 only if one lands exactly on an edge)
        assert!(
            (5..=7).contains(&timeouts_in_60),
            "{timeouts_in_60} timeouts"
        );
        // Every hung run was cancelled at its deadline and counted, except possibly the one
        // in flight when the test stopped everything.
        let (timeouts, started) = (hung_stats.timeouts.load(Relaxed), hung_runs.load(Relaxed));
        assert!(
            started.checked_sub(timeouts).is_some_and(|d| d <= 1),
            "{started} hung runs started, {timeouts} counted as timeouts"
        );
        assert_eq!(hung_stats.runs.load(Relaxed), 0);
        let chunks = chunks.lock().unwrap();
        assert!(chunks.iter().all(|c| c.lines > 0));
        assert!(chunks.len() as u64 >= fast_in_60);
    }

    #[tokio::test(start_paused = true)]
    async fn stop_after_run_lets_the_run_finish() {
        let runs = Arc::new(AtomicU64::new(0));
        let hung = worker(Box::new(Hang { runs: runs.clone() }), "hung", 10, 5);
        let stats = hung.stats.clone();
        let submit: Submit = Arc::new(|_| {});
        let r = Running::start(hung, "k".into(), submit);
        // wait until a run is in progress
        while runs.load(Relaxed) == 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        stop_all(vec![r], Stop::AfterRun).await;
        // the in-progress run reached its deadline (it was not abandoned)
        assert_eq!(stats.timeouts.load(Relaxed), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn once_takes_a_second_sample_for_counters() {
        let runs = Arc::new(AtomicU64::new(0));
        let w = worker(
            Box::new(Fake {
                runs: runs.clone(),
                counter: 0.0,
            }),
            "fake",
            10,
            10,
        );
        let (data, failed) = once(vec![w], Duration::from_secs(1)).await;
        assert_eq!(failed, 0);
        assert_eq!(runs.load(Relaxed), 2);
        let text = String::from_utf8(data).unwrap();
        let rx = text
            .lines()
            .find(|l| l.starts_with("servers.h.fake.net.rx "))
            .unwrap();
        assert!(rx.starts_with("servers.h.fake.net.rx 100 "), "{rx}");
    }

    #[tokio::test(start_paused = true)]
    async fn circuit_breaker_stops_calling_a_failing_service_and_closes_on_success() {
        let calls = Arc::new(AtomicU64::new(0));
        let down = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let mut w = worker(
            Box::new(Flaky {
                calls: calls.clone(),
                down: down.clone(),
            }),
            "svc",
            1,
            1,
        );
        w.breaker = Some(Breaker::new(Duration::from_secs(1)));
        let stats = w.stats.clone();
        let chunks = Arc::new(Mutex::new(Vec::<Chunk>::new()));
        let sink = chunks.clone();
        let submit: Submit = Arc::new(move |c| sink.lock().unwrap().push(c));
        let r = Running::start(w, "k".into(), submit);
        // 3 failures open it; over the next 60 s the cool-downs grow (1, 2, 4, 8, then 10
        // intervals, ±25%): far fewer calls than the 60 a closed breaker would make.
        while calls.load(Relaxed) < 3 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(stats.circuit_open.load(Relaxed));
        let before = calls.load(Relaxed);
        tokio::time::sleep(Duration::from_secs(60)).await;
        let retries = calls.load(Relaxed) - before;
        assert!((3..=9).contains(&retries), "{retries} calls while open");
        assert!(stats.consecutive_failures.load(Relaxed) >= 6);
        assert_eq!(stats.errors.load(Relaxed), calls.load(Relaxed));
        // the service is back: the next retry (at most 12.5 s away) closes it
        down.store(false, Relaxed);
        tokio::time::sleep(Duration::from_secs(13)).await;
        assert!(!stats.circuit_open.load(Relaxed));
        assert_eq!(stats.consecutive_failures.load(Relaxed), 0);
        let after_close = calls.load(Relaxed);
        tokio::time::sleep(Duration::from_secs(10)).await;
        // closed: called every interval again
        assert!(calls.load(Relaxed) - after_close >= 9);
        stop_all(vec![r], Stop::Now).await;
        assert!(!chunks.lock().unwrap().is_empty());
    }

    #[test]
    fn a_late_run_keeps_the_second_it_was_due() {
        let wall = UNIX_EPOCH + Duration::from_millis(1_000_010);
        let now = Instant::now();
        // On time (a few ms late): the boundary's second.
        assert_eq!(
            timestamp_of(now - Duration::from_millis(10), now, wall),
            1000
        );
        // 700 ms late: still the second it was due, so the next (on-time) run at 1001 does
        // not share its timestamp.
        let wall_late = wall + Duration::from_millis(690);
        assert_eq!(
            timestamp_of(now - Duration::from_millis(700), now, wall_late),
            1000
        );
        // Due in the future (clock skew between the monotonic and wall clocks): now.
        assert_eq!(timestamp_of(now + Duration::from_secs(1), now, wall), 1000);
    }
}
