//! `network.<iface>.*` from /proc/net/dev, published as counters: the runtime turns them into
//! per-second rates (as Diamond's NetworkCollector does).

use crate::collectors::{Batch, Pattern};

/// The 16 columns of /proc/net/dev, with Diamond's names (`rx_bytes` is published as
/// `rx_byte` and `rx_bit`).
pub const COLUMNS: [&str; 16] = [
    "rx_bytes",
    "rx_packets",
    "rx_errors",
    "rx_drop",
    "rx_fifo",
    "rx_frame",
    "rx_compressed",
    "rx_multicast",
    "tx_bytes",
    "tx_packets",
    "tx_errors",
    "tx_drop",
    "tx_fifo",
    "tx_colls",
    "tx_carrier",
    "tx_compressed",
];

/// Columns published unless `detailed` is set.
const DEFAULT_COLUMNS: [usize; 8] = [0, 1, 2, 3, 8, 9, 10, 11];
const ALL_COLUMNS: [usize; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];

/// One interface's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfaceStats<'a> {
    pub name: &'a str,
    pub counters: [u64; 16],
}

/// Parse /proc/net/dev (two header lines, then `iface: 16 numbers`). Malformed lines are
/// skipped.
pub fn parse_net_dev(text: &str) -> Vec<IfaceStats<'_>> {
    text.lines()
        .filter_map(|line| {
            let (name, rest) = line.split_once(':')?;
            let mut counters = [0u64; 16];
            let mut cols = rest.split_ascii_whitespace();
            for c in counters.iter_mut() {
                *c = cols.next()?.parse().ok()?;
            }
            Some(IfaceStats {
                name: name.trim(),
                counters,
            })
        })
        .collect()
}

/// Publish counters for interfaces not matching `exclude`. Dots in interface names (VLANs:
/// `eth0.100`) become `_` so they do not add a path level.
pub fn publish(ifaces: &[IfaceStats<'_>], exclude: &Pattern, detailed: bool, out: &mut Batch) {
    for iface in ifaces {
        if exclude.0.is_match(iface.name) {
            continue;
        }
        let dev = iface.name.replace('.', "_");
        let columns: &[usize] = if detailed {
            &ALL_COLUMNS
        } else {
            &DEFAULT_COLUMNS
        };
        for &i in columns {
            let v = iface.counters[i] as f64;
            match COLUMNS[i] {
                "rx_bytes" | "tx_bytes" => {
                    let dir = &COLUMNS[i][..2];
                    out.counter(format!("network.{dev}.{dir}_byte"), v);
                    out.counter(format!("network.{dev}.{dir}_bit"), v * 8.0);
                }
                name => out.counter(format!("network.{dev}.{name}"), v),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::SampleKind;

    const NET_DEV: &str = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:    3193      29    0    0    0     0          0         0     3193      29    0    0    0     0       0          0
  eth0: 111904715    5726    1    2    0     0          0         0   386358    3424    3    4    0     0       0          0
eth0.100:  10 1 0 0 0 0 0 0 20 2 0 0 0 0 0 0
broken: 1 2 3
";

    fn lo() -> Pattern {
        Pattern(regex_lite::Regex::new("^lo$").unwrap())
    }

    #[test]
    fn parse_cases() {
        let ifaces = parse_net_dev(NET_DEV);
        let names: Vec<&str> = ifaces.iter().map(|i| i.name).collect();
        assert_eq!(names, ["lo", "eth0", "eth0.100"]);
        assert_eq!(ifaces[1].counters[0], 111904715);
        assert_eq!(ifaces[1].counters[11], 4);
        assert!(parse_net_dev("").is_empty());
    }

    #[test]
    fn publishes_counters_for_included_interfaces() {
        let mut b = Batch::default();
        publish(&parse_net_dev(NET_DEV), &lo(), false, &mut b);
        assert!(b.samples.iter().all(|s| s.kind == SampleKind::Counter));
        assert!(!b.samples.iter().any(|s| s.name.starts_with("network.lo.")));
        // 8 columns, bytes twice (byte and bit): 10 per interface.
        assert_eq!(b.samples.len(), 2 * 10);
        let get = |n: &str| b.samples.iter().find(|s| s.name == n).map(|s| s.value);
        assert_eq!(get("network.eth0.rx_byte"), Some(111904715.0));
        assert_eq!(get("network.eth0.rx_bit"), Some(111904715.0 * 8.0));
        assert_eq!(get("network.eth0.tx_drop"), Some(4.0));
        assert_eq!(get("network.eth0_100.tx_byte"), Some(20.0));

        let mut b = Batch::default();
        publish(&parse_net_dev(NET_DEV), &lo(), true, &mut b);
        assert_eq!(b.samples.len(), 2 * 18);
        assert!(b
            .samples
            .iter()
            .any(|s| s.name == "network.eth0.tx_carrier"));
    }
}
