//! `memory.*` from /proc/meminfo, in bytes, with the kernel's (and Diamond's) field names,
//! plus used and percentage figures derived from them.

use crate::collectors::Batch;

/// The fields Diamond's MemoryCollector publishes unless `detailed` is set.
pub const DEFAULT_FIELDS: [&str; 16] = [
    "MemTotal",
    "MemFree",
    "MemAvailable",
    "Buffers",
    "Cached",
    "Active",
    "Dirty",
    "Inactive",
    "Shmem",
    "SwapTotal",
    "SwapFree",
    "SwapCached",
    "VmallocTotal",
    "VmallocUsed",
    "VmallocChunk",
    "Committed_AS",
];

/// Parse /proc/meminfo into `(name, bytes)` pairs, in file order. Values in `kB` are
/// multiplied by 1024 (the kernel's kB is KiB); unit-less values (HugePages_Total) are kept
/// as they are. Malformed lines are skipped.
pub fn parse_meminfo(text: &str) -> Vec<(&str, u64)> {
    text.lines()
        .filter_map(|line| {
            let (name, rest) = line.split_once(':')?;
            let mut cols = rest.split_ascii_whitespace();
            let value: u64 = cols.next()?.parse().ok()?;
            let value = match cols.next() {
                Some("kB") => value.checked_mul(1024)?,
                Some(_) => return None,
                None => value,
            };
            Some((name.trim(), value))
        })
        .collect()
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// Publish the fields (all of them when `detailed`) and the derived figures:
/// `MemUsed` (total − available; without MemAvailable, pre-3.14 kernels: total − free −
/// buffers − cached), `MemUsedPercentage` (Diamond), `MemAvailablePercentage`, `SwapUsed`,
/// `SwapUsedPercentage`.
pub fn publish(fields: &[(&str, u64)], detailed: bool, out: &mut Batch) {
    let get = |k: &str| fields.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
    for (name, value) in fields {
        if detailed || DEFAULT_FIELDS.contains(name) {
            out.gauge(format!("memory.{name}"), *value as f64);
        }
    }
    if let Some(total) = get("MemTotal") {
        let available = get("MemAvailable").unwrap_or_else(|| {
            ["MemFree", "Buffers", "Cached"]
                .iter()
                .filter_map(|k| get(k))
                .sum()
        });
        let used = total.saturating_sub(available);
        out.gauge("memory.MemUsed", used as f64);
        out.gauge("memory.MemUsedPercentage", percent(used, total));
        out.gauge(
            "memory.MemAvailablePercentage",
            percent(available.min(total), total),
        );
    }
    if let (Some(total), Some(free)) = (get("SwapTotal"), get("SwapFree")) {
        let used = total.saturating_sub(free);
        out.gauge("memory.SwapUsed", used as f64);
        out.gauge("memory.SwapUsedPercentage", percent(used, total));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MEMINFO: &str = "MemTotal:       24668984 kB
MemFree:        21050436 kB
MemAvailable:   23520672 kB
Buffers:          120184 kB
Cached:          2441848 kB
SwapCached:            0 kB
Active:           943812 kB
Inactive:        2093212 kB
Dirty:               236 kB
Shmem:             12104 kB
SwapTotal:       2097148 kB
SwapFree:        1048574 kB
VmallocTotal:   34359738367 kB
VmallocUsed:       23456 kB
VmallocChunk:          0 kB
Committed_AS:    1456320 kB
HugePages_Total:       0
Hugepagesize:       2048 kB
";

    fn value(b: &Batch, name: &str) -> Option<f64> {
        b.samples.iter().find(|s| s.name == name).map(|s| s.value)
    }

    #[test]
    fn parse_cases() {
        let cases: &[(&str, &[(&str, u64)])] = &[
            ("MemTotal:       1 kB\n", &[("MemTotal", 1024)]),
            ("HugePages_Total:       7\n", &[("HugePages_Total", 7)]),
            ("Weird: 1 MB\nNoValue:\nMemFree: x kB\n", &[]),
            ("", &[]),
        ];
        for (input, want) in cases {
            assert_eq!(parse_meminfo(input), *want, "input {input:?}");
        }
        assert_eq!(parse_meminfo(MEMINFO).len(), 18);
    }

    #[test]
    fn publishes_bytes_and_derived_figures() {
        let mut b = Batch::default();
        publish(&parse_meminfo(MEMINFO), false, &mut b);
        assert_eq!(value(&b, "memory.MemTotal"), Some(24668984.0 * 1024.0));
        assert_eq!(
            value(&b, "memory.MemUsed"),
            Some((24668984.0 - 23520672.0) * 1024.0)
        );
        let pct = value(&b, "memory.MemUsedPercentage").unwrap_or(-1.0);
        assert!((pct - 4.6549).abs() < 0.001, "{pct}");
        assert_eq!(value(&b, "memory.SwapUsedPercentage"), Some(50.0));
        assert_eq!(value(&b, "memory.SwapUsed"), Some(1048574.0 * 1024.0));
        // Not a default field.
        assert_eq!(value(&b, "memory.Hugepagesize"), None);
        assert_eq!(b.samples.len(), 16 + 5);

        let mut b = Batch::default();
        publish(&parse_meminfo(MEMINFO), true, &mut b);
        assert_eq!(value(&b, "memory.Hugepagesize"), Some(2048.0 * 1024.0));
    }

    #[test]
    fn old_kernel_without_memavailable_and_no_swap() {
        let text = "MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 100 kB\nCached: 300 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\n";
        let mut b = Batch::default();
        publish(&parse_meminfo(text), false, &mut b);
        assert_eq!(value(&b, "memory.MemUsed"), Some(500.0 * 1024.0));
        assert_eq!(value(&b, "memory.MemUsedPercentage"), Some(50.0));
        assert_eq!(value(&b, "memory.SwapUsedPercentage"), Some(0.0));
    }
}
