//! The sender's configuration (`sender:` in the agent's global YAML) and destination syntax.
//! Every key is documented in `docs/sender.md`.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::placement::{Member, Mode, Placement};

/// Where and how lines are sent. Part of the global config file under `sender:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SenderConfig {
    /// Carbon plaintext receivers. `host:port` or `tcp://host:port` (TCP), `udp://host:port`
    /// (UDP, datagrams split at line boundaries); `=NAME` after the port names the instance
    /// (`host:port=a`), as in the relays' configurations.
    #[serde(default = "default_destinations", deserialize_with = "destinations")]
    pub destinations: Vec<String>,
    /// Which destinations get a line: `all` (each gets every line), a relay's consistent
    /// hash (`carbon_ch`, `carbon_ch_py`, `fnv1a_ch`, `jump_fnv1a_ch`) or `any_of` /
    /// `failover` (`docs/sender.md`, "Placement").
    #[serde(default)]
    pub placement: Mode,
    /// With a consistent hash: how many distinct destinations get each line.
    #[serde(default = "default_replication")]
    pub replication: usize,
    /// Directory of the on-disk spool used while a destination is down (one subdirectory per
    /// destination). `None` here means memory only; the agent's config resolution never
    /// leaves it `None` (it fills in `config::default_spool_dir`).
    #[serde(default)]
    pub spool_dir: Option<PathBuf>,
    /// Disk the spool may use, in bytes, shared evenly by the destinations. At the cap the
    /// oldest segment is dropped (counted in `lines_dropped` and logged).
    #[serde(default = "default_spool_max_bytes")]
    pub spool_max_bytes: u64,
    /// Size in bytes at which a spool segment file is closed and a new one started.
    #[serde(default = "default_spool_segment_bytes")]
    pub spool_segment_bytes: u64,
    /// When spooled data is fsync'ed: `always` (every append), `never` (left to the kernel),
    /// or an interval such as `1s`.
    #[serde(default)]
    pub fsync: FsyncPolicy,
    /// In-memory queue per destination, in bytes; beyond it lines go to the spool (or, without
    /// a spool, the oldest queued lines are dropped and counted).
    #[serde(default = "default_queue_max_bytes")]
    pub queue_max_bytes: u64,
    /// Most bytes written to a destination in one write.
    #[serde(default = "default_batch_bytes")]
    pub batch_bytes: u64,
    /// A write that makes no progress for this long, or lines written that the peer has not
    /// read for this long (carbon pauses reading under flow control), closes the connection;
    /// the lines not known to be read are sent again on the next one.
    #[serde(default = "default_write_timeout", with = "humantime_serde")]
    pub write_timeout: Duration,
    /// The TCP send buffer (`SO_SNDBUF`) of each connection, in bytes (the kernel doubles it).
    #[serde(default = "default_send_buffer_bytes")]
    pub send_buffer_bytes: u64,
    /// Most bytes written to a destination and not yet known to be read by it; they stay in
    /// the queue or spool until then, and are sent again if the connection is lost.
    #[serde(default = "default_inflight_max_bytes")]
    pub inflight_max_bytes: u64,
    /// How long one connection attempt may take (DNS resolution included).
    #[serde(default = "default_connect_timeout", with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// First delay before reconnecting; doubles per failure up to `reconnect_max`, with jitter.
    #[serde(default = "default_reconnect_min", with = "humantime_serde")]
    pub reconnect_min: Duration,
    /// Longest delay between reconnection attempts.
    #[serde(default = "default_reconnect_max", with = "humantime_serde")]
    pub reconnect_max: Duration,
    /// Replay speed of spooled lines after an outage, in lines per second per destination
    /// (0 = unlimited), so carbon is not flooded. Fresh lines are not limited.
    #[serde(default = "default_replay_lines_per_second")]
    pub replay_lines_per_second: u64,
    /// Largest UDP datagram, in bytes; datagrams are split at line boundaries.
    #[serde(default = "default_udp_max_datagram")]
    pub udp_max_datagram: u64,
}

impl Default for SenderConfig {
    fn default() -> Self {
        SenderConfig {
            destinations: default_destinations(),
            placement: Mode::All,
            replication: default_replication(),
            spool_dir: None,
            spool_max_bytes: default_spool_max_bytes(),
            spool_segment_bytes: default_spool_segment_bytes(),
            fsync: FsyncPolicy::default(),
            queue_max_bytes: default_queue_max_bytes(),
            batch_bytes: default_batch_bytes(),
            write_timeout: default_write_timeout(),
            send_buffer_bytes: default_send_buffer_bytes(),
            inflight_max_bytes: default_inflight_max_bytes(),
            connect_timeout: default_connect_timeout(),
            reconnect_min: default_reconnect_min(),
            reconnect_max: default_reconnect_max(),
            replay_lines_per_second: default_replay_lines_per_second(),
            udp_max_datagram: default_udp_max_datagram(),
        }
    }
}

fn default_destinations() -> Vec<String> {
    vec!["127.0.0.1:2003".to_string()]
}
fn default_replication() -> usize {
    1
}
fn default_spool_max_bytes() -> u64 {
    1 << 30
}
fn default_spool_segment_bytes() -> u64 {
    8 << 20
}
fn default_queue_max_bytes() -> u64 {
    4 << 20
}
fn default_batch_bytes() -> u64 {
    64 << 10
}
fn default_write_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_send_buffer_bytes() -> u64 {
    256 << 10
}
fn default_inflight_max_bytes() -> u64 {
    1 << 20
}
fn default_connect_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_reconnect_min() -> Duration {
    Duration::from_millis(200)
}
fn default_reconnect_max() -> Duration {
    Duration::from_secs(30)
}
fn default_replay_lines_per_second() -> u64 {
    20_000
}
fn default_udp_max_datagram() -> u64 {
    1400
}

/// Each destination is parsed while its scalar is read, so a bad one (`carbon.example.com`
/// without a port) is an error at its own `file:line:column`, flow style included.
fn destinations<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    struct Dest(String);
    impl std::str::FromStr for Dest {
        type Err = String;
        fn from_str(s: &str) -> Result<Self, String> {
            Target::parse(s).map(|_| Dest(s.to_string()))
        }
    }
    conf::deserialize_via_from_str!(Dest);
    let list = Vec::<Dest>::deserialize(d)?;
    Ok(list.into_iter().map(|d| d.0).collect())
}

impl SenderConfig {
    /// Check everything that can be checked without I/O. Called by [`super::spawn`]; the
    /// runtime may call it at load time (`collector check`).
    pub fn validate(&self) -> Result<(), String> {
        if self.destinations.is_empty() {
            return Err(
                "sender.destinations is empty: list at least one carbon receiver, e.g. `127.0.0.1:2003`"
                    .into(),
            );
        }
        self.placement()?;
        let mut seen = std::collections::HashSet::new();
        for d in &self.destinations {
            if !seen.insert(spool_subdir(d)) {
                return Err(format!("sender.destinations lists {d:?} twice"));
            }
        }
        if self.batch_bytes == 0 || self.queue_max_bytes == 0 || self.udp_max_datagram == 0 {
            return Err(
                "sender.batch_bytes, queue_max_bytes and udp_max_datagram must be > 0".into(),
            );
        }
        if self.spool_dir.is_some() && self.spool_max_bytes < 4096 * self.destinations.len() as u64
        {
            return Err(format!(
                "sender.spool_max_bytes = {} is too small: allow at least 4096 bytes per destination",
                self.spool_max_bytes
            ));
        }
        if !(4096..=(64 << 20)).contains(&self.send_buffer_bytes) {
            return Err(format!(
                "sender.send_buffer_bytes = {} is out of range: 4096 to 67108864",
                self.send_buffer_bytes
            ));
        }
        if self.inflight_max_bytes < self.batch_bytes {
            return Err(format!(
                "sender.inflight_max_bytes = {} must be at least batch_bytes ({})",
                self.inflight_max_bytes, self.batch_bytes
            ));
        }
        if self.reconnect_min.is_zero() || self.reconnect_max < self.reconnect_min {
            return Err("sender.reconnect_min must be > 0 and <= reconnect_max".into());
        }
        if self.write_timeout.is_zero() || self.connect_timeout.is_zero() {
            return Err("sender.write_timeout and connect_timeout must be > 0".into());
        }
        Ok(())
    }

    /// The placement of `destinations` (checked: members the ring cannot tell apart,
    /// `replication` out of range).
    pub fn placement(&self) -> Result<Placement, String> {
        let members = self
            .destinations
            .iter()
            .map(|d| Target::parse_member(d).map(|(_, m)| m))
            .collect::<Result<Vec<_>, _>>()?;
        Placement::new(self.placement, members, self.replication)
    }
}

/// When the spool is fsync'ed. Written `always`, `never` or a duration (`1s`, `500ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// After every append (slowest; nothing spooled is lost on a power cut).
    Always,
    /// At most this long after an append.
    Interval(Duration),
    /// Never explicitly; the kernel writes back on its own schedule.
    Never,
}

impl Default for FsyncPolicy {
    fn default() -> Self {
        FsyncPolicy::Interval(Duration::from_secs(1))
    }
}

impl<'de> Deserialize<'de> for FsyncPolicy {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        FsyncPolicy::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl FsyncPolicy {
    /// Parse `always`, `never` or a human duration.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.trim() {
            "always" => Ok(FsyncPolicy::Always),
            "never" => Ok(FsyncPolicy::Never),
            other => match humantime::parse_duration(other) {
                Ok(d) if d.is_zero() => Ok(FsyncPolicy::Always),
                Ok(d) => Ok(FsyncPolicy::Interval(d)),
                Err(_) => Err(format!(
                    "invalid fsync policy {other:?}: expected `always`, `never` or a duration like `1s`"
                )),
            },
        }
    }
}

/// A parsed destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `host:port`, resolved again on every connection attempt.
    Tcp(String),
    /// `host:port` for UDP datagrams.
    Udp(String),
}

impl Target {
    /// Parse `host:port`, `tcp://host:port` or `udp://host:port`, each optionally followed by
    /// `=INSTANCE`.
    pub fn parse(s: &str) -> Result<Target, String> {
        Target::parse_member(s).map(|(t, _)| t)
    }

    /// [`Target::parse`], and the destination as a ring member: host (IPv6 brackets removed),
    /// port, instance. Instance names are `[A-Za-z0-9_.-]`; hosts must not hold quotes or
    /// backslashes (carbon-relay's ring key is the Python text of `(host, instance)`).
    pub fn parse_member(s: &str) -> Result<(Target, Member), String> {
        let (s, instance) = match s.split_once('=') {
            Some((a, i)) => {
                if i.is_empty()
                    || !i
                        .bytes()
                        .all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(&c))
                {
                    return Err(format!(
                        "destination {s:?}: the instance name after `=` must be letters, digits, `_`, `.` or `-`"
                    ));
                }
                (a, Some(i.to_string()))
            }
            None => (s, None),
        };
        let (udp, addr) = if let Some(rest) = s.strip_prefix("udp://") {
            (true, rest)
        } else if let Some(rest) = s.strip_prefix("tcp://") {
            (false, rest)
        } else if s.contains("://") {
            return Err(format!(
                "destination {s:?}: unknown scheme (use `host:port`, `tcp://host:port` or `udp://host:port`)"
            ));
        } else {
            (false, s)
        };
        let bad = || {
            format!("destination {s:?}: expected `host:port` (e.g. `127.0.0.1:2003`, `[::1]:2003`)")
        };
        let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
        let port = port
            .parse::<u16>()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(bad)?;
        if host.is_empty()
            || host
                .bytes()
                .any(|c| !c.is_ascii_graphic() || b"'\"\\".contains(&c))
        {
            return Err(bad());
        }
        let target = if udp {
            Target::Udp(addr.to_string())
        } else {
            Target::Tcp(addr.to_string())
        };
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let member = Member {
            host: host.to_string(),
            port,
            instance,
        };
        Ok((target, member))
    }
}

/// The spool subdirectory of one destination: the destination text with every character
/// outside `[A-Za-z0-9.-]` replaced by `_`.
pub fn spool_subdir(dest: &str) -> String {
    dest.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_destinations() {
        assert_eq!(
            Target::parse("127.0.0.1:2003").unwrap(),
            Target::Tcp("127.0.0.1:2003".into())
        );
        assert_eq!(
            Target::parse("tcp://carbon:2003").unwrap(),
            Target::Tcp("carbon:2003".into())
        );
        assert_eq!(
            Target::parse("udp://[::1]:2003").unwrap(),
            Target::Udp("[::1]:2003".into())
        );
        for bad in ["carbon", ":2003", "carbon:x", "carbon:0", "http://c:1"] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(spool_subdir("udp://a:1"), "udp___a_1");
    }

    #[test]
    fn parses_fsync_policies() {
        assert_eq!(FsyncPolicy::parse("always"), Ok(FsyncPolicy::Always));
        assert_eq!(FsyncPolicy::parse("never"), Ok(FsyncPolicy::Never));
        assert_eq!(
            FsyncPolicy::parse("250ms"),
            Ok(FsyncPolicy::Interval(Duration::from_millis(250)))
        );
        assert!(FsyncPolicy::parse("often").is_err());
    }

    #[test]
    fn decodes_yaml_with_defaults_and_rejects_unknown_keys() {
        let cfg: SenderConfig = conf::from_str(
            std::path::Path::new("t.yml"),
            "destinations: [\"a:1\", \"udp://b:2\"]\nfsync: 2s\nwrite_timeout: 3s\n",
        )
        .unwrap();
        assert_eq!(cfg.fsync, FsyncPolicy::Interval(Duration::from_secs(2)));
        assert_eq!(cfg.write_timeout, Duration::from_secs(3));
        assert_eq!(cfg.batch_bytes, 64 << 10);
        assert!(cfg.validate().is_ok());
        assert!(
            conf::from_str::<SenderConfig>(std::path::Path::new("t.yml"), "destination: [a]")
                .is_err()
        );
        let dup = SenderConfig {
            destinations: vec!["a:1".into(), "a:1".into()],
            ..SenderConfig::default()
        };
        assert!(dup.validate().is_err());
    }

    #[test]
    fn decodes_placements_and_refuses_rings_the_relays_cannot_build() {
        let path = std::path::Path::new("t.yml");
        let cfg: SenderConfig = conf::from_str(
            path,
            "destinations: [\"10.0.0.1:2003=a\", \"udp://[::1]:2004=b\"]\nplacement: carbon_ch\nreplication: 2\n",
        )
        .unwrap();
        assert_eq!((cfg.placement, cfg.replication), (Mode::CarbonCh, 2));
        assert!(cfg.validate().is_ok());
        let (t, m) = Target::parse_member("udp://[::1]:2004=b").unwrap();
        assert_eq!(t, Target::Udp("[::1]:2004".into()));
        assert_eq!(
            (m.host.as_str(), m.port, m.instance.as_deref()),
            ("::1", 2004, Some("b"))
        );
        assert!(conf::from_str::<SenderConfig>(path, "placement: carbon").is_err());
        for bad in ["a:1=", "a:1=x y", "a'b:1"] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
        let same_host = SenderConfig {
            destinations: vec!["h:1".into(), "h:2".into()],
            placement: Mode::CarbonCh,
            ..SenderConfig::default()
        };
        let e = same_host.validate().unwrap_err();
        assert!(e.contains("instance name"), "{e}");
        let too_many = SenderConfig {
            destinations: vec!["h:1=a".into(), "h:2=b".into()],
            placement: Mode::CarbonCh,
            replication: 3,
            ..SenderConfig::default()
        };
        assert!(too_many.validate().is_err());
    }
}
