//! `loadavg.*` from /proc/loadavg and `uptime.*` from /proc/uptime.

use crate::collectors::Batch;

/// The fields of /proc/loadavg: `0.52 0.58 0.59 2/1093 12345`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadAvg {
    pub one: f64,
    pub five: f64,
    pub fifteen: f64,
    pub running: u64,
    pub total: u64,
}

/// Parse /proc/loadavg; `None` when it does not have the five expected fields.
pub fn parse_loadavg(text: &str) -> Option<LoadAvg> {
    let mut cols = text.split_ascii_whitespace();
    let one = cols.next()?.parse().ok()?;
    let five = cols.next()?.parse().ok()?;
    let fifteen = cols.next()?.parse().ok()?;
    let (running, total) = cols.next()?.split_once('/')?;
    Some(LoadAvg {
        one,
        five,
        fifteen,
        running: running.parse().ok()?,
        total: total.parse().ok()?,
    })
}

/// Publish Diamond's LoadAverageCollector names; `_normalized` divides by the number of
/// online CPUs (skipped when that is unknown).
pub fn publish(load: &LoadAvg, cpus: usize, out: &mut Batch) {
    for (name, v) in [("01", load.one), ("05", load.five), ("15", load.fifteen)] {
        out.gauge(format!("loadavg.{name}"), v);
        if cpus > 0 {
            out.gauge(format!("loadavg.{name}_normalized"), v / cpus as f64);
        }
    }
    out.gauge("loadavg.processes_running", load.running as f64);
    out.gauge("loadavg.processes_total", load.total as f64);
}

/// Seconds since boot, the first field of /proc/uptime (`776.48 1299.19`).
pub fn parse_uptime(text: &str) -> Option<f64> {
    text.split_ascii_whitespace()
        .next()?
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite() && *v >= 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_cases() {
        let cases: &[(&str, Option<LoadAvg>)] = &[
            (
                "1.01 0.56 0.25 3/108 11917\n",
                Some(LoadAvg {
                    one: 1.01,
                    five: 0.56,
                    fifteen: 0.25,
                    running: 3,
                    total: 108,
                }),
            ),
            ("1.01 0.56 0.25 3 11917\n", None),
            ("1.01 0.56\n", None),
            ("", None),
        ];
        for (input, want) in cases {
            assert_eq!(parse_loadavg(input), *want, "input {input:?}");
        }
        let up: &[(&str, Option<f64>)] = &[
            ("776.48 1299.19\n", Some(776.48)),
            ("", None),
            ("-1 0\n", None),
            ("nan 0\n", None),
        ];
        for (input, want) in up {
            assert_eq!(parse_uptime(input), *want, "input {input:?}");
        }
    }

    #[test]
    fn normalized_by_cpus() {
        let load = parse_loadavg("2.00 1.00 0.50 1/100 1\n");
        let mut b = Batch::default();
        publish(
            &load.unwrap_or(LoadAvg {
                one: 0.0,
                five: 0.0,
                fifteen: 0.0,
                running: 0,
                total: 0,
            }),
            4,
            &mut b,
        );
        let got: Vec<(&str, f64)> = b
            .samples
            .iter()
            .map(|s| (s.name.as_str(), s.value))
            .collect();
        assert_eq!(
            got,
            [
                ("loadavg.01", 2.0),
                ("loadavg.01_normalized", 0.5),
                ("loadavg.05", 1.0),
                ("loadavg.05_normalized", 0.25),
                ("loadavg.15", 0.5),
                ("loadavg.15_normalized", 0.125),
                ("loadavg.processes_running", 1.0),
                ("loadavg.processes_total", 100.0),
            ]
        );
    }
}
