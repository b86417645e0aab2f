//! Redis (`type: redis`): the server's `INFO` over one kept connection (TCP or unix socket),
//! with Diamond's RedisCollector names (`clients.connected`, `memory.internal_view`,
//! `keyspace.hits`, `db0.keys`, …) plus persistence and replication state. Counters
//! (commands, connections, hits/misses, evictions, CPU seconds) become per-second rates in the
//! runtime. The protocol is two RESP commands (`AUTH` when configured, then `INFO`), so no
//! client library is needed.

use std::path::PathBuf;

use anyhow::Context;
use async_trait::async_trait;

use conf::Secret;
use super::stream::{Address, Conn};
use super::{Batch, Collector, CollectorConfig, Kind};

pub const KIND: Kind = Kind {
    name: "redis",
    default_path: "redis",
    sample: include_str!("redis.sample.yml"),
    build: super::build::<RedisConfig>,
    circuit_breaker: true,
};

/// The largest `INFO` reply accepted (a real one is a few KiB; thousands of databases or
/// replicas stay far below this).
const MAX_REPLY: usize = 4 << 20;

crate::collector_config! {
    /// Options of the Redis collector.
    pub struct RedisConfig {
        /// `host:port` of the server; `127.0.0.1:6379` when neither this nor `socket` is set.
        #[serde(default)]
        pub address: Option<String>,
        /// The server's unix socket (`unixsocket` in redis.conf) instead of `address`.
        #[serde(default)]
        pub socket: Option<PathBuf>,
        /// ACL user (Redis 6+); with only `password`, the `default` user.
        #[serde(default)]
        pub username: Option<String>,
        /// `requirepass` or the ACL user's password; never logged.
        #[serde(default)]
        pub password: Option<Secret>,
    }
}

impl CollectorConfig for RedisConfig {
    fn into_collector(self) -> anyhow::Result<Box<dyn Collector>> {
        let address = Address::from_config(self.address, self.socket, "127.0.0.1:6379")?;
        if self.username.is_some() && self.password.is_none() {
            anyhow::bail!("username is set but password is not");
        }
        let mut request = Vec::new();
        if let Some(pw) = &self.password {
            let mut args = vec!["AUTH"];
            if let Some(u) = &self.username {
                args.push(u);
            }
            args.push(pw.expose());
            resp_command(&mut request, &args);
        }
        Ok(Box::new(Redis {
            address,
            auth: request,
            conn: None,
            line: Vec::new(),
            reply: Vec::new(),
        }))
    }
}

/// `args` as a RESP array of bulk strings.
fn resp_command(out: &mut Vec<u8>, args: &[&str]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

pub struct Redis {
    address: Address,
    /// The `AUTH` command, sent once per connection (empty without a password). Holds the
    /// password: never formatted.
    auth: Vec<u8>,
    /// Kept between runs; dropped after any error (the next run reconnects).
    conn: Option<Conn>,
    line: Vec<u8>,
    reply: Vec<u8>,
}

#[async_trait]
impl Collector for Redis {
    async fn collect(&mut self, out: &mut Batch) -> anyhow::Result<()> {
        // A run cancelled at its deadline leaves `conn` taken: the next run reconnects
        // instead of reading a stale reply.
        let conn = match self.conn.take() {
            Some(c) => c,
            None => {
                let mut c = Conn::connect(&self.address).await?;
                if !self.auth.is_empty() {
                    c.send(&self.auth)
                        .await
                        .with_context(|| format!("{}: sending AUTH", self.address))?;
                    self.reply.clear();
                    read_reply(&mut c, &mut self.line, &mut self.reply)
                        .await
                        .map_err(|e| {
                            anyhow::anyhow!(
                                "{}: AUTH: {e} (check username and password)",
                                self.address
                            )
                        })?;
                }
                c
            }
        };
        let mut conn = conn;
        conn.send(b"*1\r\n$4\r\nINFO\r\n")
            .await
            .with_context(|| format!("{}: sending INFO", self.address))?;
        self.reply.clear();
        read_reply(&mut conn, &mut self.line, &mut self.reply)
            .await
            .map_err(|e| anyhow::anyhow!("{}: INFO: {e}", self.address))?;
        self.conn = Some(conn);
        parse_info(&String::from_utf8_lossy(&self.reply), crate::runtime::since_epoch().as_secs_f64(), out);
        Ok(())
    }
}


/// One RESP reply: a simple string (`+OK`), an error (`-ERR …`, returned as `Err`) or a bulk
/// string (its bytes appended to `reply`).
async fn read_reply(
    conn: &mut Conn,
    line: &mut Vec<u8>,
    reply: &mut Vec<u8>,
) -> anyhow::Result<()> {
    conn.read_line(line, 1024).await.map_err(io_error)?;
    match line.first() {
        Some(b'+') => Ok(()),
        Some(b'-') => {
            let text = String::from_utf8_lossy(&line[1..]);
            anyhow::bail!(
                "the server answered {:?}",
                text.chars().take(200).collect::<String>()
            )
        }
        Some(b'$') => {
            let len: usize = std::str::from_utf8(&line[1..])
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| anyhow::anyhow!("not a Redis reply (bad bulk length)"))?;
            if len > MAX_REPLY {
                anyhow::bail!("reply of {len} bytes is larger than {MAX_REPLY}");
            }
            conn.read_exact(reply, len + 2).await.map_err(io_error)?;
            reply.truncate(reply.len() - 2);
            Ok(())
        }
        _ => anyhow::bail!("not a Redis reply (is this a Redis server?)"),
    }
}

fn io_error(e: std::io::Error) -> anyhow::Error {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        anyhow::anyhow!("the server closed the connection")
    } else {
        anyhow::anyhow!("{e}")
    }
}

/// `INFO` field → Diamond's name, gauge.
const GAUGES: &[(&str, &str)] = &[
    ("connected_clients", "clients.connected"),
    ("blocked_clients", "clients.blocked"),
    ("used_memory", "memory.internal_view"),
    ("used_memory_rss", "memory.external_view"),
    ("used_memory_peak", "memory.peak"),
    ("maxmemory", "memory.maxmemory"),
    ("mem_fragmentation_ratio", "memory.fragmentation_ratio"),
    ("uptime_in_seconds", "process.uptime"),
    ("pubsub_channels", "pubsub.channels"),
    ("pubsub_patterns", "pubsub.patterns"),
    ("connected_slaves", "slaves.connected"),
    ("rdb_changes_since_last_save", "last_save.changes_since"),
    ("rdb_last_save_time", "last_save.time"),
    ("loading", "persistence.loading"),
    (
        "rdb_bgsave_in_progress",
        "persistence.rdb_bgsave_in_progress",
    ),
    ("aof_enabled", "persistence.aof_enabled"),
    (
        "aof_rewrite_in_progress",
        "persistence.aof_rewrite_in_progress",
    ),
    ("master_repl_offset", "replication.master_repl_offset"),
    // replicas only
    (
        "master_last_io_seconds_ago",
        "replication.master_last_io_seconds_ago",
    ),
    (
        "master_sync_in_progress",
        "replication.master_sync_in_progress",
    ),
    ("slave_repl_offset", "replication.slave_repl_offset"),
];

/// `INFO` field → Diamond's name, counter (published as a per-second rate).
const COUNTERS: &[(&str, &str)] = &[
    ("total_commands_processed", "process.commands_processed"),
    ("total_connections_received", "process.connections_received"),
    ("keyspace_hits", "keyspace.hits"),
    ("keyspace_misses", "keyspace.misses"),
    ("evicted_keys", "keys.evicted"),
    ("expired_keys", "keys.expired"),
    ("rejected_connections", "clients.rejected"),
    ("used_cpu_sys", "cpu.parent.sys"),
    ("used_cpu_user", "cpu.parent.user"),
    ("used_cpu_sys_children", "cpu.children.sys"),
    ("used_cpu_user_children", "cpu.children.user"),
];

/// `INFO` text into samples. `now` (epoch seconds) gives `last_save.time_since`.
pub fn parse_info(text: &str, now: f64, out: &mut Batch) {
    let mut master_offset = None;
    let mut replicas: Vec<(usize, f64, Option<f64>)> = Vec::new();
    for line in text.lines() {
        let Some((key, value)) = line.trim_end().split_once(':') else {
            continue;
        };
        if let Some((_, name)) = GAUGES.iter().find(|(k, _)| *k == key) {
            if let Ok(v) = value.parse::<f64>() {
                out.gauge(*name, v);
                if key == "rdb_last_save_time" {
                    out.gauge("last_save.time_since", (now - v).max(0.0).round());
                }
                if key == "master_repl_offset" {
                    master_offset = Some(v);
                }
            }
            continue;
        }
        if let Some((_, name)) = COUNTERS.iter().find(|(k, _)| *k == key) {
            if let Ok(v) = value.parse::<f64>() {
                out.counter(*name, v);
            }
            continue;
        }
        match key {
            "role" => out.gauge("replication.master", f64::from(value == "master")),
            "master_link_status" => {
                out.gauge("replication.master_link_up", f64::from(value == "up"))
            }
            "rdb_last_bgsave_status" => {
                out.gauge("persistence.rdb_last_bgsave_ok", f64::from(value == "ok"))
            }
            "aof_last_write_status" => {
                out.gauge("persistence.aof_last_write_ok", f64::from(value == "ok"))
            }
            _ if key.starts_with("db") && key[2..].bytes().all(|b| b.is_ascii_digit()) => {
                for (field, v) in fields(value) {
                    if matches!(field, "keys" | "expires" | "avg_ttl") {
                        if let Ok(v) = v.parse::<f64>() {
                            out.gauge(format!("{key}.{field}"), v);
                        }
                    }
                }
            }
            _ if key.starts_with("slave") && key[5..].bytes().all(|b| b.is_ascii_digit()) => {
                let Ok(n) = key[5..].parse::<usize>() else {
                    continue;
                };
                let mut lag = None;
                let mut offset = None;
                for (field, v) in fields(value) {
                    match field {
                        "lag" => lag = v.parse::<f64>().ok(),
                        "offset" => offset = v.parse::<f64>().ok(),
                        _ => {}
                    }
                }
                if let Some(lag) = lag {
                    replicas.push((n, lag, offset));
                }
            }
            _ => {}
        }
    }
    for (n, lag, offset) in replicas {
        out.gauge(format!("slaves.{n}.lag"), lag);
        if let (Some(master), Some(offset)) = (master_offset, offset) {
            out.gauge(format!("slaves.{n}.offset_lag"), (master - offset).max(0.0));
        }
    }
}

/// `a=1,b=2` pairs.
fn fields(value: &str) -> impl Iterator<Item = (&str, &str)> {
    value.split(',').filter_map(|kv| kv.split_once('='))
}

#[cfg(test)]
mod tests {
    use super::*;


    #[test]
    fn info_becomes_diamond_names() {
        let info = "# Server\r\nredis_version:7.0.15\r\nuptime_in_seconds:100\r\n# Clients\r\nconnected_clients:3\r\n# Persistence\r\nrdb_last_save_time:1000\r\nrdb_last_bgsave_status:ok\r\naof_last_write_status:err\r\n# Stats\r\nkeyspace_hits:7\r\n# Replication\r\nrole:master\r\nconnected_slaves:1\r\nslave0:ip=127.0.0.1,port=7001,state=online,offset=90,lag=1\r\nmaster_repl_offset:100\r\n# CPU\r\nused_cpu_sys:1.5\r\n# Keyspace\r\ndb0:keys=1000,expires=2,avg_ttl=0\r\ndb12:keys=1,expires=0,avg_ttl=0\r\n";
        let mut b = Batch::default();
        parse_info(info, 1010.0, &mut b);
        let get = |n: &str| {
            b.samples
                .iter()
                .find(|s| s.name == n)
                .map(|s| (s.value, s.kind))
        };
        use crate::collectors::SampleKind::*;
        assert_eq!(get("clients.connected"), Some((3.0, Gauge)));
        assert_eq!(get("process.uptime"), Some((100.0, Gauge)));
        assert_eq!(get("last_save.time_since"), Some((10.0, Gauge)));
        assert_eq!(get("persistence.rdb_last_bgsave_ok"), Some((1.0, Gauge)));
        assert_eq!(get("persistence.aof_last_write_ok"), Some((0.0, Gauge)));
        assert_eq!(get("keyspace.hits"), Some((7.0, Counter)));
        assert_eq!(get("cpu.parent.sys"), Some((1.5, Counter)));
        assert_eq!(get("replication.master"), Some((1.0, Gauge)));
        assert_eq!(get("slaves.0.lag"), Some((1.0, Gauge)));
        assert_eq!(get("slaves.0.offset_lag"), Some((10.0, Gauge)));
        assert_eq!(get("db0.keys"), Some((1000.0, Gauge)));
        assert_eq!(get("db0.expires"), Some((2.0, Gauge)));
        assert_eq!(get("db12.keys"), Some((1.0, Gauge)));
        assert_eq!(get("redis_version"), None);
    }

    #[test]
    fn resp_encoding() {
        let mut out = Vec::new();
        resp_command(&mut out, &["AUTH", "pw"]);
        assert_eq!(out, b"*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n");
    }

    #[test]
    fn config_errors() {
        for (text, want) in [
            ("type: redis\naddress: h:1\nsocket: /x\n", "not both"),
            ("type: redis\naddress: nohost\n", "host:port"),
            ("type: redis\nusername: u\n", "password is not"),
        ] {
            let e = KIND.load(text).err().unwrap().to_string();
            assert!(e.contains(want), "{text}: {e}");
        }
        KIND.load("type: redis\n").unwrap();
    }


}
