//! Per-process-group resources (`type: process`), Diamond's ProcessResourcesCollector: named
//! groups of processes matched by name, executable or command-line regex, pid file, systemd
//! unit, user (or the agent itself), each published as sums over its processes — count (0 is
//! published: "nginx has 0 processes" is what an alert needs), CPU %, RSS, virtual memory,
//! threads, open files, disk read/write bytes (as rates) and uptime.
//!
//! One scan of the process table per run serves every group of the instance; it runs on a
//! blocking thread, so a slow `/proc` never stalls the agent's other collectors. The scan
//! reads `/proc` directly ([`procfs`]: one `stat` read per process, the rest for matched
//! processes only). The `sysinfo` scan it replaced (two passes: what matching needs for every
//! process, then CPU, memory and I/O for the matched ones) is kept as the benchmark's
//! reference ([`Reader::Sysinfo`], `benches/process-scan.sh`): it cost more CPU per run for
//! the same numbers (docs/benchmarks.md). `sysinfo` still resolves user names.

mod procfs;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System, Uid, UpdateKind};

use serde::Deserialize;

use super::{segment, Batch, Collector, CollectorConfig, Kind, Pattern};

pub const KIND: Kind = Kind {
    name: "process",
    default_path: "process",
    sample: include_str!("process.sample.yml"),
    build: super::build::<ProcessConfig>,
    circuit_breaker: false,
};

crate::collector_config! {
    /// Options of the process collector.
    pub struct ProcessConfig {
        /// Process groups by name (the path segment of their metrics).
        pub groups: BTreeMap<String, GroupConfig>,
    }
}

/// One regex or a list of them (decoded by hand: an untagged enum would hide a bad
/// pattern's error behind "did not match any variant").
#[derive(Debug, Clone)]
pub struct Patterns(Vec<Pattern>);

impl Patterns {
    fn into_vec(self) -> Vec<Pattern> {
        self.0
    }
}

impl<'de> serde::Deserialize<'de> for Patterns {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Patterns;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a regex or a list of regexes")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Patterns, E> {
                let p = Pattern::deserialize(serde::de::value::StrDeserializer::<E>::new(v))?;
                Ok(Patterns(vec![p]))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Patterns, A::Error> {
                let mut out = Vec::new();
                while let Some(p) = a.next_element::<Pattern>()? {
                    out.push(p);
                }
                Ok(Patterns(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// Which processes form a group. A process belongs to it when it matches any of `name`,
/// `exe`, `cmdline`, `pidfile`, `systemd_unit`, `selfmon` (Diamond's "or"), and, when `user`
/// is set, runs as that user. `user` alone selects all of the user's processes.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupConfig {
    /// Regexes searched in the process name (`comm`, e.g. `nginx`).
    #[serde(default)]
    pub name: Option<Patterns>,
    /// Regexes searched in the executable's path.
    #[serde(default)]
    pub exe: Option<Patterns>,
    /// Regexes searched in the command line (arguments joined by spaces).
    #[serde(default)]
    pub cmdline: Option<Patterns>,
    /// A file holding the pid of the process (read every run).
    #[serde(default)]
    pub pidfile: Option<PathBuf>,
    /// A systemd unit (`nginx.service`): every process in its cgroup.
    #[serde(default)]
    pub systemd_unit: Option<String>,
    /// Only processes of this user (a name).
    #[serde(default)]
    pub user: Option<String>,
    /// The agent's own process.
    #[serde(default)]
    pub selfmon: bool,
}

impl CollectorConfig for ProcessConfig {
    fn into_collector(self) -> anyhow::Result<Box<dyn Collector>> {
        Ok(Box::new(self.into_processes(Reader::Procfs)?))
    }
}

impl ProcessConfig {
    fn into_processes(self, reader: Reader) -> anyhow::Result<Processes> {
        if self.groups.is_empty() {
            anyhow::bail!("groups: empty; name at least one group of processes to watch");
        }
        let mut users: Option<sysinfo::Users> = None;
        let mut groups = Vec::new();
        for (name, g) in self.groups {
            let path = segment(&name, false);
            if path.is_empty() {
                anyhow::bail!("groups: a group needs a non-empty name");
            }
            let any_selector = g.name.is_some()
                || g.exe.is_some()
                || g.cmdline.is_some()
                || g.pidfile.is_some()
                || g.systemd_unit.is_some()
                || g.selfmon;
            if !any_selector && g.user.is_none() {
                anyhow::bail!(
                    "groups.{name}: say which processes: one of name, exe, cmdline, pidfile, systemd_unit, user, selfmon"
                );
            }
            let user = match g.user {
                None => None,
                Some(u) => {
                    let list = match &mut users {
                        Some(l) => l,
                        empty => empty.insert(
                            sysinfo::Users::new_with_refreshed_list()
                                .map_err(|e| anyhow::anyhow!("cannot list users: {e:?}"))?,
                        ),
                    };
                    let uid = list
                        .iter()
                        .find(|x| x.name() == u)
                        .map(|x| x.id().clone())
                        .ok_or_else(|| anyhow::anyhow!("groups.{name}.user: no user {u:?}"))?;
                    Some(uid)
                }
            };
            groups.push(Group {
                path,
                name: g.name.map(Patterns::into_vec).unwrap_or_default(),
                exe: g.exe.map(Patterns::into_vec).unwrap_or_default(),
                cmdline: g.cmdline.map(Patterns::into_vec).unwrap_or_default(),
                pidfile: g.pidfile,
                unit: g.systemd_unit.map(|u| format!("/{u}")),
                user,
                selfmon: g.selfmon,
                any_selector,
            });
        }
        Ok(Processes {
            groups: std::sync::Arc::new(groups),
            reader,
            system: None,
            scan: None,
        })
    }
}

/// How the process table is read: `/proc` directly (what the collector does), or `sysinfo`
/// (the benchmark's reference, `benches/process-scan.sh`).
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    Procfs,
    Sysinfo,
}

/// A `process` collector from its YAML text reading the table with `reader` (benchmarks).
#[doc(hidden)]
pub fn with_reader(text: &str, reader: Reader) -> anyhow::Result<Box<dyn Collector>> {
    let cfg: ProcessConfig = conf::from_str(Path::new("process.yml"), text)?;
    Ok(Box::new(cfg.into_processes(reader)?))
}

#[derive(Debug)]
struct Group {
    path: String,
    name: Vec<Pattern>,
    exe: Vec<Pattern>,
    cmdline: Vec<Pattern>,
    pidfile: Option<PathBuf>,
    /// `/<unit>`, matched against the end of a `/proc/<pid>/cgroup` path.
    unit: Option<String>,
    user: Option<Uid>,
    selfmon: bool,
    any_selector: bool,
}

/// The process table kept between runs, with each matched process's CPU time at the
/// previous scan (CPU % is measured from it over the time between scans).
pub struct Table {
    /// sysinfo's process table ([`Reader::Sysinfo`] only).
    system: Option<System>,
    cpu_ms: std::collections::HashMap<u32, u64>,
    at: Option<std::time::Instant>,
}

/// What a scan on the blocking thread gives back: the table, each group's sums, the host's
/// memory.
type ScanResult = (Table, Vec<Totals>, f64);

pub struct Processes {
    groups: std::sync::Arc<Vec<Group>>,
    reader: Reader,
    /// Kept between runs (CPU % is measured against the previous scan); taken while a scan
    /// runs.
    system: Option<Table>,
    /// The scan in flight. A run cancelled at its deadline leaves it here and the next run
    /// waits for it rather than starting a second scan (which, on a machine slow enough to
    /// miss a deadline, would only pile up work).
    scan: Option<tokio::task::JoinHandle<ScanResult>>,
}

/// Sums over one group's processes.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Totals {
    pub count: u64,
    pub cpu_percent: f64,
    pub rss: f64,
    pub vms: f64,
    pub threads: f64,
    pub fds: f64,
    pub read_bytes: f64,
    pub write_bytes: f64,
    /// Age of the oldest process, seconds.
    pub uptime: Option<f64>,
}

#[async_trait]
impl Collector for Processes {
    async fn collect(&mut self, out: &mut Batch) -> anyhow::Result<()> {
        let Processes {
            groups,
            reader,
            system,
            scan: in_flight,
        } = self;
        let pending = match &mut *in_flight {
            Some(p) => p,
            empty => {
                let mut table = match system.take() {
                    Some(t) => t,
                    None => Table {
                        system: None,
                        cpu_ms: Default::default(),
                        at: None,
                    },
                };
                if *reader == Reader::Sysinfo && table.system.is_none() {
                    table.system = Some(
                        System::new()
                            .map_err(|e| anyhow::anyhow!("cannot read processes: {e:?}"))?,
                    );
                }
                let groups = groups.clone();
                let reader = *reader;
                empty.insert(tokio::task::spawn_blocking(move || match reader {
                    Reader::Procfs => {
                        let (totals, memory) = procfs::scan(&mut table, &groups);
                        (table, totals, memory)
                    }
                    Reader::Sysinfo => scan(table, &groups),
                }))
            }
        };
        let result = pending.await;
        *in_flight = None;
        let (table, totals, total_memory) =
            result.map_err(|e| anyhow::anyhow!("process scan failed: {e}"))?;
        *system = Some(table);
        for (g, t) in groups.iter().zip(totals) {
            publish(&g.path, &t, total_memory, out);
        }
        Ok(())
    }
}

fn publish(group: &str, t: &Totals, total_memory: f64, out: &mut Batch) {
    out.gauge(format!("{group}.workers_count"), t.count as f64);
    out.gauge(format!("{group}.cpu_percent"), t.cpu_percent);
    out.gauge(format!("{group}.ext_memory_info.rss"), t.rss);
    out.gauge(format!("{group}.ext_memory_info.vms"), t.vms);
    if total_memory > 0.0 {
        out.gauge(
            format!("{group}.memory_percent"),
            t.rss / total_memory * 100.0,
        );
    }
    out.gauge(format!("{group}.num_threads"), t.threads);
    out.gauge(format!("{group}.num_fds"), t.fds);
    if t.count > 0 {
        out.counter(format!("{group}.io_counters.read_bytes"), t.read_bytes);
        out.counter(format!("{group}.io_counters.write_bytes"), t.write_bytes);
    }
    if let Some(u) = t.uptime {
        out.gauge(format!("{group}.uptime"), u);
    }
}

/// Refresh the process table once and sum each group's processes. Two passes keep the cost
/// to what the groups need: the whole table with only what matching reads (names; exe,
/// command line and user only when a group matches on them), then CPU, memory and I/O for
/// the matched processes alone (a handful of the hundreds a server runs).
fn scan(mut table: Table, groups: &[Group]) -> ScanResult {
    let Some(system) = table.system.as_mut() else {
        return (table, vec![Totals::default(); groups.len()], 0.0);
    };
    let any = |f: fn(&Group) -> bool| groups.iter().any(f);
    let mut kind = ProcessRefreshKind::nothing();
    if any(|g| g.user.is_some()) {
        kind = kind.with_user(UpdateKind::OnlyIfNotSet);
    }
    if any(|g| !g.exe.is_empty()) {
        kind = kind.with_exe(UpdateKind::OnlyIfNotSet);
    }
    if any(|g| !g.cmdline.is_empty()) {
        kind = kind.with_cmd(UpdateKind::OnlyIfNotSet);
    }
    system.refresh_processes_specifics(ProcessesToUpdate::All, true, kind);
    let pidfiles: Vec<Option<Pid>> = groups
        .iter()
        .map(|g| g.pidfile.as_deref().and_then(read_pidfile))
        .collect();
    let own = Pid::from_u32(std::process::id());
    // (pid, group index) for every match
    let mut members: Vec<(Pid, usize)> = Vec::new();
    let mut cmdline = String::new();
    for (pid, p) in system.processes() {
        if p.thread_kind().is_some() {
            continue;
        }
        let mut cgroup: Option<Option<String>> = None;
        let mut cmd_joined = false;
        for (i, (g, pidfile)) in groups.iter().zip(&pidfiles).enumerate() {
            if let Some(uid) = &g.user {
                if p.user_id() != Some(uid) {
                    continue;
                }
            }
            let matched = !g.any_selector
                || (g.selfmon && *pid == own)
                || *pidfile == Some(*pid)
                || (!g.name.is_empty() && {
                    let name = p.name().to_string_lossy();
                    g.name.iter().any(|r| r.0.is_match(&name))
                })
                || (!g.exe.is_empty()
                    && p.exe().is_some_and(|e| {
                        let e = e.to_string_lossy();
                        g.exe.iter().any(|r| r.0.is_match(&e))
                    }))
                || (!g.cmdline.is_empty() && {
                    if !cmd_joined {
                        cmdline.clear();
                        for (i, a) in p.cmd().iter().enumerate() {
                            if i > 0 {
                                cmdline.push(' ');
                            }
                            cmdline.push_str(&a.to_string_lossy());
                        }
                        cmd_joined = true;
                    }
                    !cmdline.is_empty() && g.cmdline.iter().any(|r| r.0.is_match(&cmdline))
                })
                || g.unit.as_deref().is_some_and(|unit| {
                    cgroup
                        .get_or_insert_with(|| {
                            std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()
                        })
                        .as_deref()
                        .is_some_and(|text| in_unit(text, unit))
                });
            if matched {
                members.push((*pid, i));
            }
        }
    }
    let mut pids: Vec<Pid> = members.iter().map(|(p, _)| *p).collect();
    pids.sort_unstable();
    pids.dedup();
    system.refresh_processes_specifics(
        ProcessesToUpdate::Some(&pids),
        false,
        ProcessRefreshKind::nothing()
            .with_cpu()
            .with_memory()
            .with_disk_usage(),
    );
    system.refresh_memory();
    let total_memory = system.total_memory() as f64;
    let now = std::time::Instant::now();
    let elapsed_ms = table
        .at
        .map(|at| now.duration_since(at).as_secs_f64() * 1e3)
        .filter(|ms| *ms > 0.0);
    let mut cpu_ms = std::collections::HashMap::with_capacity(pids.len());
    let mut totals = vec![Totals::default(); groups.len()];
    for (pid, i) in members {
        // A process that exited since the first pass is skipped: never an error.
        let Some(p) = system.process(pid).filter(|p| p.exists()) else {
            continue;
        };
        let t = &mut totals[i];
        t.count += 1;
        // CPU time used since the previous scan over the time between the scans (0 for a
        // process not seen then).
        let used = p.accumulated_cpu_time();
        cpu_ms.insert(pid.as_u32(), used);
        if let (Some(&before), Some(ms)) = (table.cpu_ms.get(&pid.as_u32()), elapsed_ms) {
            t.cpu_percent += used.saturating_sub(before) as f64 / ms * 100.0;
        }
        t.rss += p.memory() as f64;
        t.vms += p.virtual_memory() as f64;
        let io = p.disk_usage();
        t.read_bytes += io.total_read_bytes as f64;
        t.write_bytes += io.total_written_bytes as f64;
        t.threads += threads_of(pid).unwrap_or(0) as f64;
        t.fds += p.open_files().unwrap_or(0) as f64;
        let age = p.run_time() as f64;
        t.uptime = Some(t.uptime.map_or(age, |u| u.max(age)));
    }
    table.cpu_ms = cpu_ms;
    table.at = Some(now);
    (table, totals, total_memory)
}

/// `/proc/<pid>/cgroup` lists a path ending in `/<unit>` (or inside it, for a unit's
/// sub-cgroups).
fn in_unit(cgroup_file: &str, unit: &str) -> bool {
    cgroup_file.lines().any(|l| {
        let path = l.splitn(3, ':').nth(2).unwrap_or_default();
        path.ends_with(unit) || path.contains(&format!("{unit}/"))
    })
}

fn read_pidfile(path: &Path) -> Option<Pid> {
    let text = std::fs::read_to_string(path).ok()?;
    text.trim().parse::<u32>().ok().map(Pid::from_u32)
}

/// Field 20 of `/proc/<pid>/stat` (after the parenthesised name, which may hold spaces).
fn threads_of(pid: Pid) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    after.split(' ').nth(17)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;


    #[test]
    fn config_errors() {
        for (text, want) in [
            ("type: process\ngroups: {}\n", "groups: empty"),
            ("type: process\ngroups:\n  a: {}\n", "say which processes"),
            (
                "type: process\ngroups:\n  a:\n    nam: x\n",
                "unknown key",
            ),
            (
                "type: process\ngroups:\n  a:\n    user: surely-no-such-user-x\n",
                "no user",
            ),
            (
                "type: process\ngroups:\n  a:\n    name: '('\n",
                "invalid regex",
            ),
        ] {
            let e = KIND.load(text).err().unwrap().to_string();
            assert!(e.contains(want), "{text}: {e}");
        }
        KIND.load("type: process\ngroups:\n  a:\n    name: [x, y]\n    user: root\n").unwrap();
    }

    #[test]
    fn cgroup_units_and_stat_fields() {
        let f = "0::/system.slice/nginx.service\n";
        assert!(in_unit(f, "/nginx.service"));
        assert!(!in_unit(f, "/x.service"));
        assert!(in_unit(
            "0::/system.slice/php.service/worker\n",
            "/php.service"
        ));
        let own = threads_of(Pid::from_u32(std::process::id())).unwrap();
        assert!(own >= 1);
    }


}
