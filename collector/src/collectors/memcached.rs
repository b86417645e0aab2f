//! memcached (`type: memcached`): the `stats` command over one kept connection (TCP or unix
//! socket), with Diamond's MemcachedCollector names (the stat names themselves). Diamond's
//! gauges stay gauges; every other numeric stat is an ever-growing counter and becomes a
//! per-second rate in the runtime.

use std::path::PathBuf;

use anyhow::Context;
use async_trait::async_trait;

use super::stream::{Address, Conn};
use super::{Batch, Collector, CollectorConfig, Kind};

pub const KIND: Kind = Kind {
    name: "memcached",
    default_path: "memcached",
    sample: include_str!("memcached.sample.yml"),
    build: super::build::<MemcachedConfig>,
    circuit_breaker: true,
};

/// At most this many `STAT` lines per reply (memcached 1.6 sends about 90).
const MAX_LINES: usize = 4096;

crate::collector_config! {
    /// Options of the memcached collector.
    pub struct MemcachedConfig {
        /// `host:port` of the server; `127.0.0.1:11211` when neither this nor `socket` is set.
        #[serde(default)]
        pub address: Option<String>,
        /// The server's unix socket (`-s` / `SOCKET`) instead of `address`.
        #[serde(default)]
        pub socket: Option<PathBuf>,
    }
}

impl CollectorConfig for MemcachedConfig {
    fn into_collector(self) -> anyhow::Result<Box<dyn Collector>> {
        Ok(Box::new(Memcached {
            address: Address::from_config(self.address, self.socket, "127.0.0.1:11211")?,
            conn: None,
            line: Vec::new(),
        }))
    }
}

pub struct Memcached {
    address: Address,
    /// Kept between runs; dropped after any error or a cancelled run (the next reconnects).
    conn: Option<Conn>,
    line: Vec<u8>,
}

/// Stats that are levels, not counters (Diamond's `GAUGES`, plus the newer ones of the same
/// nature).
const GAUGES: &[&str] = &[
    "bytes",
    "connection_structures",
    "curr_connections",
    "curr_items",
    "threads",
    "reserved_fds",
    "limit_maxbytes",
    "hash_power_level",
    "hash_bytes",
    "hash_is_expanding",
    "uptime",
    "accepting_conns",
    "max_connections",
    "slab_global_page_pool",
    "slab_reassign_running",
    "lru_crawler_running",
    "log_watchers",
    "read_buf_count",
    "read_buf_bytes",
    "read_buf_bytes_free",
    "response_obj_count",
    "response_obj_bytes",
];

/// Stats that are not metrics (identities, clocks, settings).
const IGNORED: &[&str] = &[
    "pid",
    "time",
    "version",
    "libevent",
    "pointer_size",
    "rusage_user",
    "rusage_system",
];

#[async_trait]
impl Collector for Memcached {
    async fn collect(&mut self, out: &mut Batch) -> anyhow::Result<()> {
        let mut conn = match self.conn.take() {
            Some(c) => c,
            None => Conn::connect(&self.address).await?,
        };
        conn.send(b"stats\r\n")
            .await
            .with_context(|| format!("{}: sending stats", self.address))?;
        let mut lines = 0;
        loop {
            conn.read_line(&mut self.line, 1024).await.map_err(|e| {
                if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    anyhow::anyhow!("{}: stats: the server closed the connection", self.address)
                } else {
                    anyhow::anyhow!("{}: stats: {e}", self.address)
                }
            })?;
            let line = String::from_utf8_lossy(&self.line);
            if line == "END" {
                break;
            }
            lines += 1;
            if lines > MAX_LINES {
                anyhow::bail!("{}: stats: more than {MAX_LINES} lines", self.address);
            }
            let mut parts = line.split(' ');
            let (Some("STAT"), Some(name), Some(value)) =
                (parts.next(), parts.next(), parts.next())
            else {
                anyhow::bail!(
                    "{}: stats: unexpected reply {:?} (is this a memcached server?)",
                    self.address,
                    line.chars().take(100).collect::<String>()
                );
            };
            if IGNORED.contains(&name) {
                // CPU seconds: published as a rate under Diamond-like names below.
                if let ("rusage_user" | "rusage_system", Ok(v)) = (name, value.parse::<f64>()) {
                    out.counter(format!("cpu.{}", &name[7..]), v);
                }
                continue;
            }
            let Ok(v) = value.parse::<f64>() else {
                continue;
            };
            if GAUGES.contains(&name) {
                out.gauge(name, v);
            } else {
                out.counter(name, v);
            }
        }
        self.conn = Some(conn);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;


    #[test]
    fn config_errors() {
        for (text, want) in [
            ("type: memcached\naddress: h:1\nsocket: /x\n", "not both"),
            ("type: memcached\naddress: h\n", "host:port"),
            ("type: memcached\nport: 1\n", "unknown key"),
        ] {
            let e = KIND.load(text).err().unwrap().to_string();
            assert!(e.contains(want), "{text}: {e}");
        }
    }


}
