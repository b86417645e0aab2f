//! `iostat.<dev>.*` from /proc/diskstats: rates, latencies and utilisation computed from the
//! difference between two readings over the measured elapsed time (Diamond's
//! DiskUsageCollector names). The first run publishes nothing.
//!
//! Field meanings: <https://www.kernel.org/doc/Documentation/iostats.txt>.

use std::collections::HashMap;

use crate::collectors::{Batch, Pattern};

/// /proc/diskstats counts in 512-byte sectors whatever the device's sector size.
const SECTOR_BYTES: f64 = 512.0;

/// Index of each of the first 11 statistics columns (after major, minor, name).
mod col {
    pub const READS: usize = 0;
    pub const READS_MERGED: usize = 1;
    pub const READ_SECTORS: usize = 2;
    pub const READ_MS: usize = 3;
    pub const WRITES: usize = 4;
    pub const WRITES_MERGED: usize = 5;
    pub const WRITE_SECTORS: usize = 6;
    pub const WRITE_MS: usize = 7;
    pub const IN_PROGRESS: usize = 8;
    pub const IO_MS: usize = 9;
    pub const IO_MS_WEIGHTED: usize = 10;
}

/// One device's line: name and the first 11 statistics (later kernels append discard and
/// flush columns, which are ignored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskStats<'a> {
    pub name: &'a str,
    pub stats: [u64; 11],
}

/// Parse /proc/diskstats. Lines with fewer than 14 columns (partitions on 2.6.24 and older)
/// or non-numeric statistics are skipped.
pub fn parse_diskstats(text: &str) -> Vec<DiskStats<'_>> {
    text.lines()
        .filter_map(|line| {
            let mut cols = line.split_ascii_whitespace();
            cols.next()?; // major
            cols.next()?; // minor
            let name = cols.next()?;
            let mut stats = [0u64; 11];
            for s in stats.iter_mut() {
                *s = cols.next()?.parse().ok()?;
            }
            Some(DiskStats { name, stats })
        })
        .collect()
}

/// Increase of a counter between two readings. A counter that looks like a 32-bit value
/// that wrapped (older and 32-bit kernels print some fields as `unsigned int`) is unwrapped;
/// any other decrease is a reset (device replaced, stats cleared): `None`.
pub fn counter_delta(prev: u64, cur: u64) -> Option<u64> {
    const WRAP: u64 = 1 << 32;
    if cur >= prev {
        Some(cur - prev)
    } else if prev < WRAP && cur < WRAP {
        let d = cur + WRAP - prev;
        (d < WRAP / 2).then_some(d)
    } else {
        None
    }
}

/// The published figures for one device, in publishing order.
pub fn rates(
    prev: &[u64; 11],
    cur: &[u64; 11],
    elapsed_secs: f64,
) -> Option<Vec<(&'static str, f64)>> {
    if elapsed_secs <= 0.0 || !elapsed_secs.is_finite() {
        return None;
    }
    let mut d = [0f64; 11];
    for (i, v) in d.iter_mut().enumerate() {
        if i != col::IN_PROGRESS {
            *v = counter_delta(prev[i], cur[i])? as f64;
        }
    }
    let t = elapsed_secs;
    let reads = d[col::READS];
    let writes = d[col::WRITES];
    let io = reads + writes;
    let per_io = |x: f64| if io > 0.0 { x / io } else { 0.0 };
    let reads_ps = reads / t;
    let writes_ps = writes / t;
    let service_time = per_io(d[col::IO_MS]);
    Some(vec![
        ("reads_per_second", reads_ps),
        ("writes_per_second", writes_ps),
        (
            "read_byte_per_second",
            d[col::READ_SECTORS] * SECTOR_BYTES / t,
        ),
        (
            "write_byte_per_second",
            d[col::WRITE_SECTORS] * SECTOR_BYTES / t,
        ),
        ("read_requests_merged_per_second", d[col::READS_MERGED] / t),
        (
            "write_requests_merged_per_second",
            d[col::WRITES_MERGED] / t,
        ),
        ("iops", io / t),
        (
            "average_request_size_byte",
            per_io((d[col::READ_SECTORS] + d[col::WRITE_SECTORS]) * SECTOR_BYTES),
        ),
        ("await", per_io(d[col::READ_MS] + d[col::WRITE_MS])),
        (
            "read_await",
            if reads > 0.0 {
                d[col::READ_MS] / reads
            } else {
                0.0
            },
        ),
        (
            "write_await",
            if writes > 0.0 {
                d[col::WRITE_MS] / writes
            } else {
                0.0
            },
        ),
        ("service_time", service_time),
        // io_ticks can run slightly ahead of our clock: cap at 100.
        ("util_percentage", (d[col::IO_MS] / t / 10.0).min(100.0)),
        ("average_queue_length", d[col::IO_MS_WEIGHTED] / t / 1000.0),
        (
            "concurrent_io",
            (reads_ps + writes_ps) * service_time / 1000.0,
        ),
        ("io_in_progress", cur[col::IN_PROGRESS] as f64),
    ])
}

/// Diamond's raw figures for one device: the change of each counter since the previous
/// reading (per interval, not per second; sectors as bytes), and `io` = reads + writes.
/// Used once [`rates`] has succeeded for the same readings (no counter went back).
pub fn diamond_deltas(prev: &[u64; 11], cur: &[u64; 11]) -> Vec<(&'static str, f64)> {
    let d = |i: usize| counter_delta(prev[i], cur[i]).unwrap_or(0) as f64;
    vec![
        ("reads", d(col::READS)),
        ("reads_merged", d(col::READS_MERGED)),
        ("reads_byte", d(col::READ_SECTORS) * SECTOR_BYTES),
        ("reads_milliseconds", d(col::READ_MS)),
        ("writes", d(col::WRITES)),
        ("writes_merged", d(col::WRITES_MERGED)),
        ("writes_byte", d(col::WRITE_SECTORS) * SECTOR_BYTES),
        ("writes_milliseconds", d(col::WRITE_MS)),
        ("io_milliseconds", d(col::IO_MS)),
        ("io_milliseconds_weighted", d(col::IO_MS_WEIGHTED)),
        ("io", d(col::READS) + d(col::WRITES)),
    ]
}

/// Device selection, from the options.
pub struct Filter<'a> {
    pub devices: &'a Pattern,
    pub exclude: &'a Pattern,
    pub send_zero: bool,
    /// Also Diamond's raw per-interval deltas (`diamond_compat`).
    pub diamond_deltas: bool,
}

/// Keeps the previous reading per device.
#[derive(Debug, Default)]
pub struct IostatState {
    prev: HashMap<String, [u64; 11]>,
}

impl IostatState {
    /// Publish rates for selected devices present in both readings; `elapsed_secs` is the
    /// measured time since the previous reading. New devices start over; gone ones are
    /// forgotten.
    pub fn publish(
        &mut self,
        now: &[DiskStats<'_>],
        elapsed_secs: Option<f64>,
        filter: &Filter<'_>,
        out: &mut Batch,
    ) {
        let mut next = HashMap::with_capacity(self.prev.len());
        for disk in now {
            if !filter.devices.0.is_match(disk.name) || filter.exclude.0.is_match(disk.name) {
                continue;
            }
            if let (Some(prev), Some(t)) = (self.prev.get(disk.name), elapsed_secs) {
                if let Some(mut rates) = rates(prev, &disk.stats, t) {
                    if filter.diamond_deltas {
                        rates.extend(diamond_deltas(prev, &disk.stats));
                    }
                    let idle = rates.get(6).is_some_and(|(_, iops)| *iops == 0.0);
                    if filter.send_zero || !idle {
                        let dev = disk.name.replace(['/', '.'], "_");
                        for (name, v) in rates {
                            out.gauge(format!("iostat.{dev}.{name}"), v);
                        }
                    }
                }
            }
            next.insert(disk.name.to_string(), disk.stats);
        }
        self.prev = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DISKSTATS_1: &str = "   7       0 loop0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
 254       0 vda 57757 9846 7792762 68331 11124 51768 15801760 62560 0 14072 131584 5247 54 337440 660 767 31
 254       1 vda1 57000 9846 7792000 68000 11000 51768 15801000 62000 0 14000 131000
 253       0 zram0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
   8       0 sda 1 2 3
";

    fn pat(s: &str) -> Pattern {
        Pattern(regex_lite::Regex::new(s).unwrap())
    }

    #[test]
    fn parse_cases() {
        let disks = parse_diskstats(DISKSTATS_1);
        let names: Vec<&str> = disks.iter().map(|d| d.name).collect();
        assert_eq!(names, ["loop0", "vda", "vda1", "zram0"]);
        assert_eq!(
            disks[1].stats,
            [57757, 9846, 7792762, 68331, 11124, 51768, 15801760, 62560, 0, 14072, 131584]
        );
        assert!(parse_diskstats("").is_empty());
        assert!(parse_diskstats("8 0 sda 1 2 3 4 5 6 7 8 9 10 x\n").is_empty());
    }

    #[test]
    fn counter_delta_cases() {
        let cases: &[(u64, u64, Option<u64>)] = &[
            (5, 7, Some(2)),
            (7, 7, Some(0)),
            // 32-bit wrap.
            (u32::MAX as u64 - 1, 3, Some(5)),
            // A big drop inside 32 bits is a reset, not a wrap.
            (1_000_000_000, 10, None),
            // 64-bit counter going back: reset.
            (1 << 40, 5, None),
        ];
        for (prev, cur, want) in cases {
            assert_eq!(counter_delta(*prev, *cur), *want, "{prev} -> {cur}");
        }
    }

    #[test]
    fn rates_over_ten_seconds() {
        let prev = [0u64; 11];
        // 100 reads (800 sectors, 200 ms), 50 writes (400 sectors, 100 ms), 3 in flight,
        // 5000 ms busy, 20000 weighted ms.
        let cur = [100, 10, 800, 200, 50, 5, 400, 100, 3, 5000, 20000];
        let got = rates(&prev, &cur, 10.0).unwrap();
        let want: &[(&str, f64)] = &[
            ("reads_per_second", 10.0),
            ("writes_per_second", 5.0),
            ("read_byte_per_second", 800.0 * 512.0 / 10.0),
            ("write_byte_per_second", 400.0 * 512.0 / 10.0),
            ("read_requests_merged_per_second", 1.0),
            ("write_requests_merged_per_second", 0.5),
            ("iops", 15.0),
            ("average_request_size_byte", 1200.0 * 512.0 / 150.0),
            ("await", 2.0),
            ("read_await", 2.0),
            ("write_await", 2.0),
            ("service_time", 5000.0 / 150.0),
            ("util_percentage", 50.0),
            ("average_queue_length", 2.0),
            ("concurrent_io", 15.0 * (5000.0 / 150.0) / 1000.0),
            ("io_in_progress", 3.0),
        ];
        assert_eq!(got, want);
        // Busy time running ahead of the clock is capped.
        let cur = [0, 0, 0, 0, 0, 0, 0, 0, 0, 10_100, 0];
        let util = rates(&prev, &cur, 10.0).unwrap()[12];
        assert_eq!(util, ("util_percentage", 100.0));
        // A reset: nothing.
        assert_eq!(rates(&[5; 11], &[0; 11], 10.0), None);
        assert_eq!(rates(&prev, &prev, 0.0), None);
    }

    /// With `diamond_compat`, the names under `iostat.<dev>.` and `network.<iface>.` are
    /// exactly those Diamond's DiskUsageCollector (default `byte_unit: byte`) and
    /// NetworkCollector (default `byte_unit: [bit, byte]`) publish; without it, the 19 left
    /// out by design (docs/collectors/host.md) are missing and nothing else.
    #[test]
    fn diamond_compat_emits_diamond_names() {
        const DIAMOND_IOSTAT: [&str; 27] = [
            "reads",
            "reads_merged",
            "reads_byte",
            "reads_milliseconds",
            "writes",
            "writes_merged",
            "writes_byte",
            "writes_milliseconds",
            "io_in_progress",
            "io_milliseconds",
            "io_milliseconds_weighted",
            "read_requests_merged_per_second",
            "write_requests_merged_per_second",
            "reads_per_second",
            "writes_per_second",
            "read_byte_per_second",
            "write_byte_per_second",
            "average_request_size_byte",
            "io",
            "average_queue_length",
            "util_percentage",
            "read_await",
            "write_await",
            "iops",
            "service_time",
            "await",
            "concurrent_io",
        ];
        const DIAMOND_NETWORK: [&str; 18] = [
            "rx_byte",
            "rx_bit",
            "rx_packets",
            "rx_errors",
            "rx_drop",
            "rx_fifo",
            "rx_frame",
            "rx_compressed",
            "rx_multicast",
            "tx_byte",
            "tx_bit",
            "tx_packets",
            "tx_errors",
            "tx_drop",
            "tx_fifo",
            "tx_colls",
            "tx_carrier",
            "tx_compressed",
        ];
        let names = |compat: bool| {
            let devices = pat("^vda$");
            let exclude = pat("^loop");
            let filter = Filter {
                devices: &devices,
                exclude: &exclude,
                send_zero: true,
                diamond_deltas: compat,
            };
            let mut st = IostatState::default();
            let mut b = Batch::default();
            st.publish(&parse_diskstats(DISKSTATS_1), None, &filter, &mut b);
            let later = DISKSTATS_1.replace("vda 57757 9846", "vda 57857 9850");
            st.publish(&parse_diskstats(&later), Some(10.0), &filter, &mut b);
            let net = "eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n";
            super::super::network::publish(
                &super::super::network::parse_net_dev(net),
                &pat("^lo$"),
                compat,
                &mut b,
            );
            let mut got: Vec<String> = b.samples.iter().map(|s| s.name.clone()).collect();
            got.sort();
            got
        };
        let mut diamond: Vec<String> = DIAMOND_IOSTAT
            .iter()
            .map(|n| format!("iostat.vda.{n}"))
            .chain(DIAMOND_NETWORK.iter().map(|n| format!("network.eth0.{n}")))
            .collect();
        diamond.sort();
        assert_eq!(names(true), diamond);
        let without = names(false);
        let missing: Vec<&String> = diamond.iter().filter(|n| !without.contains(n)).collect();
        assert_eq!(missing.len(), 19, "{missing:?}");
        assert!(without.iter().all(|n| diamond.contains(n)), "{without:?}");
    }

    #[test]
    fn raw_deltas_are_per_interval() {
        let prev = [0u64; 11];
        let cur = [100, 10, 800, 200, 50, 5, 400, 100, 3, 5000, 20000];
        let d = diamond_deltas(&prev, &cur);
        let get = |n: &str| d.iter().find(|(k, _)| *k == n).unwrap().1;
        assert_eq!(get("reads"), 100.0);
        assert_eq!(get("writes_byte"), 400.0 * 512.0);
        assert_eq!(get("io_milliseconds"), 5000.0);
        assert_eq!(get("io"), 150.0);
    }

    #[test]
    fn state_selects_devices_and_handles_appear_disappear() {
        let devices = pat("^(x?vd[a-z]+|sd[a-z]+)$");
        let exclude = pat("^(loop|ram|zram)[0-9]*$");
        let filter = Filter {
            devices: &devices,
            exclude: &exclude,
            send_zero: true,
            diamond_deltas: false,
        };
        let mut st = IostatState::default();
        let mut b = Batch::default();
        st.publish(&parse_diskstats(DISKSTATS_1), None, &filter, &mut b);
        assert!(b.samples.is_empty(), "first run publishes nothing");

        // vda progresses, sdb appears.
        let two = DISKSTATS_1.replace("vda 57757", "vda 57857")
            + "   8      16 sdb 1 0 8 1 0 0 0 0 0 1 1\n";
        st.publish(&parse_diskstats(&two), Some(10.0), &filter, &mut b);
        let names: Vec<&str> = b.samples.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names.len(), 16, "{names:?}");
        assert!(
            names.iter().all(|n| n.starts_with("iostat.vda.")),
            "{names:?}"
        );
        let reads = b
            .samples
            .iter()
            .find(|s| s.name == "iostat.vda.reads_per_second");
        assert_eq!(reads.map(|s| s.value), Some(10.0));

        // vda disappears, sdb second reading.
        let three = "   8      16 sdb 2 0 16 2 0 0 0 0 0 2 2\n";
        let mut b = Batch::default();
        st.publish(&parse_diskstats(three), Some(10.0), &filter, &mut b);
        assert_eq!(b.samples.len(), 16);
        assert!(b.samples.iter().all(|s| s.name.starts_with("iostat.sdb.")));

        // send_zero off: an idle device is not published.
        let quiet = Filter {
            devices: &devices,
            exclude: &exclude,
            send_zero: false,
            diamond_deltas: false,
        };
        let mut b = Batch::default();
        st.publish(&parse_diskstats(three), Some(10.0), &quiet, &mut b);
        assert!(b.samples.is_empty());
    }
}
