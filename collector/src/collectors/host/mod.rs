//! Host metrics (`type: host`): CPU, memory, load, disk space, disk I/O, network, uptime,
//! with Diamond's names (docs/collectors/host.md lists every metric).
//!
//! Everything is read from /proc (and statvfs(3)): every group needs a field `sysinfo` does
//! not expose (jiffies per state, Buffers/Cached, processes running, free vs available
//! blocks and inodes, diskstats busy time, interface drops), and one read of one file per
//! group keeps a run well under a millisecond of CPU.
//!
//! Parsing is pure (`parse_*` over text, tested on fixtures); this module reads the files,
//! keeps the previous readings that percentages and I/O rates need, and fills the batch.

mod cpu;
mod diskspace;
mod iostat;
mod loadavg;
mod memory;
mod network;

use std::io::Read;
use std::time::Instant;

use async_trait::async_trait;

use super::{Batch, Collector, CollectorConfig, Kind, Pattern};

pub const KIND: Kind = Kind {
    name: "host",
    default_path: "",
    sample: include_str!("../host.sample.yml"),
    build: super::build::<HostConfig>,
    circuit_breaker: false,
};

crate::collector_config! {
    /// Options of the host collector.
    pub struct HostConfig {
        /// Publish `cpu.cpuN.*` for every core as well as `cpu.total.*` (Diamond `percore`).
        #[serde(default = "crate::collectors::default_true")]
        pub percore: bool,
        /// Publish every /proc/meminfo field and every /proc/net/dev column, not only the
        /// ones Diamond publishes by default.
        #[serde(default)]
        pub detailed: bool,
        /// Filesystem types reported under `diskspace.` (Diamond `filesystems`); pseudo
        /// filesystems (proc, sysfs, tmpfs, devtmpfs, cgroup, overlay, …) are not listed.
        #[serde(default = "default_filesystems")]
        pub filesystems: Vec<String>,
        /// Mount points matching one of these regexes are not reported (Diamond
        /// `exclude_filters`), e.g. `^/mnt/backup`.
        #[serde(default)]
        pub exclude_mounts: Vec<Pattern>,
        /// Block devices reported under `iostat.` (Diamond `devices`): whole disks by default,
        /// partitions left out.
        #[serde(default = "default_devices")]
        pub devices: Pattern,
        /// Block devices never reported, even when `devices` matches them.
        #[serde(default = "default_exclude_devices")]
        pub exclude_devices: Pattern,
        /// Publish `iostat.<dev>.*` for a device that did no I/O during the interval (zeros).
        /// Diamond's default is false (an idle disk leaves gaps); ours is true.
        #[serde(default = "crate::collectors::default_true")]
        pub send_zero: bool,
        /// Network interfaces not reported under `network.`.
        #[serde(default = "default_exclude_interfaces")]
        pub exclude_interfaces: Pattern,
        /// Also publish every path Diamond's host collectors publish, in Diamond's units:
        /// the raw per-interval `iostat` deltas (`reads`, `writes_byte`, `io_milliseconds`,
        /// …) and all sixteen `/proc/net/dev` columns, so dashboards built on Diamond keep
        /// working.
        #[serde(default)]
        pub diamond_compat: bool,
    }
}

fn default_filesystems() -> Vec<String> {
    [
        "ext2",
        "ext3",
        "ext4",
        "xfs",
        "btrfs",
        "zfs",
        "f2fs",
        "vfat",
        "glusterfs",
        "nfs",
        "nfs4",
        "ntfs",
        "hfs",
        "fat32",
        "fat16",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// A built-in pattern (a constant, tested to compile: never input-driven).
fn builtin(re: &str) -> Pattern {
    Pattern(regex_lite::Regex::new(re).expect("built-in pattern compiles"))
}

const DEFAULT_DEVICES: &str =
    r"^(sd[a-z]+|x?vd[a-z]+|hd[a-z]+|nvme[0-9]+n[0-9]+|mmcblk[0-9]+|md[0-9]+|dm-[0-9]+)$";
const DEFAULT_EXCLUDE_DEVICES: &str = r"^(loop|ram|zram)[0-9]*$";
const DEFAULT_EXCLUDE_INTERFACES: &str = r"^lo$";

fn default_devices() -> Pattern {
    builtin(DEFAULT_DEVICES)
}
fn default_exclude_devices() -> Pattern {
    builtin(DEFAULT_EXCLUDE_DEVICES)
}
fn default_exclude_interfaces() -> Pattern {
    builtin(DEFAULT_EXCLUDE_INTERFACES)
}

impl CollectorConfig for HostConfig {
    fn into_collector(self) -> anyhow::Result<Box<dyn Collector>> {
        Ok(Box::new(Host::new(self)))
    }
}

/// The host collector: options plus the previous readings of /proc/stat and /proc/diskstats.
pub struct Host {
    cfg: HostConfig,
    buf: String,
    cpu: cpu::CpuState,
    iostat: iostat::IostatState,
    last_diskstats: Option<Instant>,
}

impl Host {
    pub fn new(cfg: HostConfig) -> Self {
        Host {
            cfg,
            buf: String::with_capacity(16 * 1024),
            cpu: cpu::CpuState::default(),
            iostat: iostat::IostatState::default(),
            last_diskstats: None,
        }
    }
}

/// Read a whole (small) file into `buf`, reusing its allocation.
fn read_into(path: &str, buf: &mut String) -> Result<(), String> {
    buf.clear();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_string(buf))
        .map(|_| ())
        .map_err(|e| format!("cannot read {path}: {e}"))
}

#[async_trait]
impl Collector for Host {
    async fn collect(&mut self, out: &mut Batch) -> anyhow::Result<()> {
        let mut errors: Vec<String> = Vec::new();
        let buf = &mut self.buf;

        // Disk space first, on a blocking thread: statvfs on a hung network mount must not
        // stall the runtime. The rest runs meanwhile.
        let space = match read_into("/proc/mounts", buf) {
            Ok(()) => {
                let mounts: Vec<diskspace::Mount> = diskspace::parse_mounts(buf)
                    .into_iter()
                    .filter(|m| {
                        diskspace::selected(m, &self.cfg.filesystems, &self.cfg.exclude_mounts)
                    })
                    .collect();
                Some(tokio::task::spawn_blocking(move || {
                    diskspace::measure(mounts)
                }))
            }
            Err(e) => {
                errors.push(e);
                None
            }
        };

        let mut cpus = 0;
        match read_into("/proc/stat", buf) {
            Ok(()) => {
                let times = cpu::parse_proc_stat(buf);
                cpus = times.iter().filter(|c| c.name != "total").count();
                self.cpu.publish(times, self.cfg.percore, out);
            }
            Err(e) => errors.push(e),
        }

        match read_into("/proc/meminfo", buf) {
            Ok(()) => memory::publish(&memory::parse_meminfo(buf), self.cfg.detailed, out),
            Err(e) => errors.push(e),
        }

        match read_into("/proc/loadavg", buf) {
            Ok(()) => match loadavg::parse_loadavg(buf) {
                Some(load) => loadavg::publish(&load, cpus, out),
                None => errors.push(format!("cannot parse /proc/loadavg: {:?}", buf.trim())),
            },
            Err(e) => errors.push(e),
        }

        match read_into("/proc/uptime", buf) {
            Ok(()) => match loadavg::parse_uptime(buf) {
                Some(secs) => out.gauge("uptime.minutes", secs / 60.0),
                None => errors.push(format!("cannot parse /proc/uptime: {:?}", buf.trim())),
            },
            Err(e) => errors.push(e),
        }

        match read_into("/proc/diskstats", buf) {
            Ok(()) => {
                let now = Instant::now();
                let elapsed = self
                    .last_diskstats
                    .map(|t| now.duration_since(t).as_secs_f64());
                self.last_diskstats = Some(now);
                let filter = iostat::Filter {
                    devices: &self.cfg.devices,
                    exclude: &self.cfg.exclude_devices,
                    send_zero: self.cfg.send_zero,
                    diamond_deltas: self.cfg.diamond_compat,
                };
                self.iostat
                    .publish(&iostat::parse_diskstats(buf), elapsed, &filter, out);
            }
            Err(e) => errors.push(e),
        }

        match read_into("/proc/net/dev", buf) {
            Ok(()) => network::publish(
                &network::parse_net_dev(buf),
                &self.cfg.exclude_interfaces,
                self.cfg.detailed || self.cfg.diamond_compat,
                out,
            ),
            Err(e) => errors.push(e),
        }

        if let Some(task) = space {
            match task.await {
                Ok((results, errs)) => {
                    diskspace::publish(results, out);
                    errors.extend(errs);
                }
                Err(e) => errors.push(format!("disk space task failed: {e}")),
            }
        }

        if errors.is_empty() {
            Ok(())
        } else {
            Err(anyhow::anyhow!("{}", errors.join("; ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::collectors::SampleKind;

    fn config(text: &str) -> HostConfig {
        conf::from_str(Path::new("host.yml"), text).unwrap()
    }

    #[test]
    fn builtin_patterns_compile_and_select() {
        for re in [
            DEFAULT_DEVICES,
            DEFAULT_EXCLUDE_DEVICES,
            DEFAULT_EXCLUDE_INTERFACES,
        ] {
            assert!(regex_lite::Regex::new(re).is_ok(), "{re}");
        }
        let dev = default_devices();
        for (name, want) in [
            ("sda", true),
            ("sda1", false),
            ("vda", true),
            ("xvdb", true),
            ("nvme0n1", true),
            ("nvme0n1p2", false),
            ("mmcblk0", true),
            ("mmcblk0p1", false),
            ("dm-0", true),
            ("md127", true),
            ("loop0", false),
            ("zram0", false),
        ] {
            assert_eq!(dev.0.is_match(name), want, "{name}");
        }
        assert!(default_exclude_devices().0.is_match("loop7"));
        assert!(default_exclude_interfaces().0.is_match("lo"));
        assert!(!default_exclude_interfaces().0.is_match("lo0x"));
    }


    #[test]
    fn options_decode_and_typos_are_errors() {
        let cfg =
            config("type: host\npercore: false\nfilesystems: [ext4]\nexclude_mounts: ['^/boot']\n");
        assert!(!cfg.percore);
        assert_eq!(cfg.filesystems, ["ext4"]);
        assert!(cfg.send_zero);
        let err = conf::from_str::<HostConfig>(
            Path::new("host.yml"),
            "type: host\npercor: false\n",
        )
        .unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.message.contains("percore"), "{}", err.message);
        let err = conf::from_str::<HostConfig>(
            Path::new("host.yml"),
            "type: host\ndevices: '('\n",
        )
        .unwrap_err();
        assert!(err.message.contains("invalid regex"), "{}", err.message);
    }

    /// Runs the collector twice on this machine: names present, values sane.
    #[tokio::test]
    async fn collects_this_machine() {
        let mut host = Host::new(config("type: host\n"));
        let mut first = Batch::default();
        host.collect(&mut first).await.unwrap();
        assert!(
            !first
                .samples
                .iter()
                .any(|s| s.name.starts_with("cpu.total.")),
            "first run must not publish cpu percentages"
        );
        assert!(!first.samples.iter().any(|s| s.name.starts_with("iostat.")));

        // Let some jiffies pass (a count of /proc/stat changes, not a time assertion).
        let start = cpu::parse_proc_stat(&std::fs::read_to_string("/proc/stat").unwrap());
        let total = |c: &[cpu::CpuTimes]| c[0].jiffies.iter().take(8).sum::<u64>();
        while total(&cpu::parse_proc_stat(
            &std::fs::read_to_string("/proc/stat").unwrap(),
        )) < total(&start) + 20
        {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }

        let mut b = Batch::default();
        host.collect(&mut b).await.unwrap();
        let get = |n: &str| b.samples.iter().find(|s| s.name == n).map(|s| s.value);
        for name in [
            "cpu.cpu_count",
            "cpu.total.user",
            "cpu.total.idle",
            "cpu.cpu0.system",
            "memory.MemTotal",
            "memory.MemAvailable",
            "memory.MemUsedPercentage",
            "memory.SwapTotal",
            "loadavg.01",
            "loadavg.15_normalized",
            "loadavg.processes_total",
            "uptime.minutes",
        ] {
            assert!(get(name).is_some(), "{name} missing");
        }
        let sum: f64 = cpu::FIELDS[..8]
            .iter()
            .filter_map(|f| get(&format!("cpu.total.{f}")))
            .sum();
        assert!((sum - 100.0).abs() < 0.01, "cpu.total.* sums to {sum}");
        for s in &b.samples {
            assert!(s.value.is_finite() && s.value >= 0.0, "{s:?}");
            let is_pct = s.name.starts_with("cpu.cpu") && s.name != "cpu.cpu_count"
                || s.name.starts_with("cpu.total.")
                || s.name.contains("Percentage")
                || s.name.contains("percent");
            if is_pct {
                assert!(s.value <= 100.0, "{s:?}");
            }
        }
        assert!(get("memory.MemTotal").unwrap_or(0.0) > get("memory.MemUsed").unwrap_or(f64::MAX));
        // Every network sample is a counter, everything else a gauge.
        for s in &b.samples {
            let want = if s.name.starts_with("network.") {
                SampleKind::Counter
            } else {
                SampleKind::Gauge
            };
            assert_eq!(s.kind, want, "{}", s.name);
        }
        // The root filesystem is real here unless / is an overlay (containers).
        let root_fs = diskspace::parse_mounts(&std::fs::read_to_string("/proc/mounts").unwrap())
            .into_iter()
            .rfind(|m| m.mount_point == "/")
            .map(|m| m.fs_type);
        if root_fs
            .as_deref()
            .is_some_and(|t| default_filesystems().iter().any(|f| f == t))
        {
            let free = get("diskspace.root.byte_percentfree");
            assert!(free.is_some_and(|v| v > 0.0 && v <= 100.0), "{free:?}");
            assert!(get("diskspace.root.byte_used").is_some());
        }
        assert!(!b.samples.iter().any(|s| s.name.starts_with("network.lo.")));
        assert!(!b.samples.iter().any(|s| s.name.starts_with("iostat.loop")));
    }
}
