//! `cpu.*` from /proc/stat: percent of time per state, for all CPUs (`total`) and per core.
//!
//! /proc/stat holds jiffy counters since boot; a percentage needs two readings, so the
//! collector keeps the previous one and the first run publishes only `cpu_count`.

use std::collections::HashMap;

use crate::collectors::Batch;

/// The /proc/stat columns in order, with Diamond's names.
pub const FIELDS: [&str; 10] = [
    "user",
    "nice",
    "system",
    "idle",
    "iowait",
    "irq",
    "softirq",
    "steal",
    "guest",
    "guest_nice",
];

/// `guest` and `guest_nice` are already counted in `user` and `nice`, so the time that
/// elapsed is the sum of the first eight columns only.
const ACCOUNTED: usize = 8;

/// One `cpu…` line: its name (`total` for the aggregate line) and its jiffy counters (as many
/// columns as this kernel prints, at most 10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuTimes {
    pub name: String,
    pub jiffies: Vec<u64>,
}

/// Parse the `cpu` lines of /proc/stat. Lines that are not `cpu…` are ignored; a `cpu` line
/// with a non-numeric column is skipped whole rather than misread.
pub fn parse_proc_stat(text: &str) -> Vec<CpuTimes> {
    text.lines()
        .filter(|l| l.starts_with("cpu"))
        .filter_map(|line| {
            let mut cols = line.split_ascii_whitespace();
            let name = cols.next()?;
            let name = if name == "cpu" { "total" } else { name };
            let jiffies = cols
                .take(FIELDS.len())
                .map(|c| c.parse::<u64>().ok())
                .collect::<Option<Vec<u64>>>()?;
            if jiffies.len() < 4 {
                return None;
            }
            Some(CpuTimes {
                name: name.to_string(),
                jiffies,
            })
        })
        .collect()
}

/// Percent of the elapsed time spent in each state between two readings of one CPU, or
/// `None` when no time elapsed or a counter went back (CPU hot-plugged, counters reset):
/// publishing nothing beats publishing a spike.
pub fn percentages(prev: &[u64], cur: &[u64]) -> Option<Vec<f64>> {
    let n = prev.len().min(cur.len());
    let mut deltas = Vec::with_capacity(n);
    for (p, c) in prev.iter().zip(cur).take(n) {
        deltas.push(c.checked_sub(*p)?);
    }
    let elapsed: u64 = deltas.iter().take(ACCOUNTED).sum();
    if elapsed == 0 {
        return None;
    }
    Some(
        deltas
            .iter()
            .map(|d| (*d as f64 * 100.0 / elapsed as f64).min(100.0))
            .collect(),
    )
}

/// Keeps the previous reading per CPU name.
#[derive(Debug, Default)]
pub struct CpuState {
    prev: HashMap<String, Vec<u64>>,
}

impl CpuState {
    /// Publish percentages for every CPU that was also present last time, then remember this
    /// reading. A CPU that went offline simply disappears; one that comes back starts over.
    pub fn publish(&mut self, now: Vec<CpuTimes>, percore: bool, out: &mut Batch) {
        let cores = now.iter().filter(|c| c.name != "total").count();
        out.gauge("cpu.cpu_count", cores as f64);
        let mut next = HashMap::with_capacity(now.len());
        for cpu in now {
            if percore || cpu.name == "total" {
                if let Some(prev) = self.prev.get(&cpu.name) {
                    if let Some(pcts) = percentages(prev, &cpu.jiffies) {
                        for (field, pct) in FIELDS.iter().zip(pcts) {
                            out.gauge(format!("cpu.{}.{field}", cpu.name), pct);
                        }
                    }
                }
            }
            next.insert(cpu.name, cpu.jiffies);
        }
        self.prev = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT_1: &str = "cpu  11945 4656 7298 129919 705 0 69 35 0 0
cpu0 5411 2547 3113 66036 165 0 9 18 0 0
cpu1 6533 2108 4185 63883 539 0 60 17 0 0
intr 229757 0 0 0 0
ctxt 386833
btime 1763784000
processes 11917
procs_running 3
procs_blocked 0
softirq 1 2 3
";

    #[test]
    fn parses_cpu_lines_only() {
        let cpus = parse_proc_stat(STAT_1);
        let names: Vec<&str> = cpus.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["total", "cpu0", "cpu1"]);
        assert_eq!(
            cpus[0].jiffies,
            [11945, 4656, 7298, 129919, 705, 0, 69, 35, 0, 0]
        );
    }

    #[test]
    fn parse_edge_cases() {
        // (input, expected (name, number of columns))
        let cases: &[(&str, &[(&str, usize)])] = &[
            // Linux 2.6.24: no steal/guest/guest_nice.
            (
                "cpu  1 2 3 4 5 6 7\ncpu0 1 2 3 4 5 6 7\n",
                &[("total", 7), ("cpu0", 7)],
            ),
            // Future kernels with extra columns: extra ignored.
            ("cpu  1 2 3 4 5 6 7 8 9 10 11 12\n", &[("total", 10)]),
            // Garbage in one line skips that line only.
            ("cpu  1 2 x 4\ncpu0 1 2 3 4\n", &[("cpu0", 4)]),
            // Too few columns.
            ("cpu  1 2\n", &[]),
            ("", &[]),
            // A CPU offline: numbering has a hole.
            (
                "cpu  1 2 3 4\ncpu0 1 2 3 4\ncpu2 1 2 3 4\n",
                &[("total", 4), ("cpu0", 4), ("cpu2", 4)],
            ),
        ];
        for (input, want) in cases {
            let got: Vec<(String, usize)> = parse_proc_stat(input)
                .into_iter()
                .map(|c| (c.name, c.jiffies.len()))
                .collect();
            let want: Vec<(String, usize)> =
                want.iter().map(|(n, l)| (n.to_string(), *l)).collect();
            assert_eq!(got, want, "input {input:?}");
        }
    }

    #[test]
    fn percentages_cases() {
        // (prev, cur, expected)
        type Case<'a> = (&'a [u64], &'a [u64], Option<&'a [f64]>);
        let cases: &[Case] = &[
            // 100 jiffies: 50 user, 25 system, 25 idle.
            (
                &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                &[50, 0, 25, 25, 0, 0, 0, 0, 0, 0],
                Some(&[50.0, 0.0, 25.0, 25.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
            ),
            // Guest time is inside user: not counted twice.
            (
                &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                &[40, 0, 0, 60, 0, 0, 0, 0, 40, 0],
                Some(&[40.0, 0.0, 0.0, 60.0, 0.0, 0.0, 0.0, 0.0, 40.0, 0.0]),
            ),
            // No time elapsed.
            (&[1, 2, 3, 4], &[1, 2, 3, 4], None),
            // A counter went back (reset): nothing.
            (&[100, 2, 3, 4], &[50, 2, 3, 90], None),
            // Old kernel, four columns.
            (
                &[0, 0, 0, 0],
                &[1, 1, 1, 1],
                Some(&[25.0, 25.0, 25.0, 25.0]),
            ),
        ];
        for (prev, cur, want) in cases {
            let got = percentages(prev, cur);
            assert_eq!(got.as_deref(), *want, "prev {prev:?} cur {cur:?}");
        }
    }

    fn names(b: &Batch) -> Vec<String> {
        b.samples.iter().map(|s| s.name.clone()).collect()
    }

    #[test]
    fn first_run_publishes_no_percentages_and_offline_cpu_disappears() {
        let mut st = CpuState::default();
        let mut b = Batch::default();
        st.publish(parse_proc_stat(STAT_1), true, &mut b);
        assert_eq!(names(&b), ["cpu.cpu_count"]);

        // cpu1 goes offline.
        let stat_2 = "cpu  12045 4656 7298 130019 705 0 69 35 0 0
cpu0 5511 2547 3113 66136 165 0 9 18 0 0
";
        let mut b = Batch::default();
        st.publish(parse_proc_stat(stat_2), true, &mut b);
        let n = names(&b);
        assert_eq!(n.len(), 1 + 2 * FIELDS.len(), "{n:?}");
        assert!(n.contains(&"cpu.cpu0.user".to_string()));
        assert!(!n.iter().any(|n| n.starts_with("cpu.cpu1.")));
        let user = b.samples.iter().find(|s| s.name == "cpu.total.user");
        assert_eq!(user.map(|s| s.value), Some(50.0));
        assert_eq!(b.samples[0].value, 1.0, "cpu_count");

        // cpu1 comes back: first reading again, no percentages for it yet.
        let stat_3 = "cpu  12245 4656 7298 130119 705 0 69 35 0 0
cpu0 5611 2547 3113 66136 165 0 9 18 0 0
cpu1 6633 2108 4185 63983 539 0 60 17 0 0
";
        let mut b = Batch::default();
        st.publish(parse_proc_stat(stat_3), true, &mut b);
        let n = names(&b);
        assert!(n.contains(&"cpu.cpu0.user".to_string()), "{n:?}");
        assert!(!n.iter().any(|n| n.starts_with("cpu.cpu1.")), "{n:?}");
    }

    #[test]
    fn percore_off_publishes_total_only() {
        let mut st = CpuState::default();
        let mut b = Batch::default();
        st.publish(parse_proc_stat(STAT_1), false, &mut b);
        let stat_2 = STAT_1
            .replace("cpu  11945", "cpu  12945")
            .replace("cpu0 5411", "cpu0 6411");
        st.publish(parse_proc_stat(&stat_2), false, &mut b);
        assert!(names(&b).iter().all(|n| !n.starts_with("cpu.cpu0")));
        assert!(names(&b).contains(&"cpu.total.idle".to_string()));
    }
}
