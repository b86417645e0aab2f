//! Sending encoded lines to carbon: bounded memory queue, disk spool, connections.
//!
//! The runtime hands whole lines to a [`SenderHandle`]; the sender owns everything after that.

use std::path::PathBuf;

use serde::Deserialize;

/// Where and how lines are sent. Part of the global config file under `sender:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SenderConfig {
    /// Carbon plaintext receivers; each gets every line. `host:port` (TCP) or `udp://host:port`.
    #[serde(default = "default_destinations")]
    pub destinations: Vec<String>,
    /// Directory of the on-disk spool used while a destination is down.
    #[serde(default)]
    pub spool_dir: Option<PathBuf>,
}

impl Default for SenderConfig {
    fn default() -> Self {
        SenderConfig {
            destinations: default_destinations(),
            spool_dir: None,
        }
    }
}

fn default_destinations() -> Vec<String> {
    vec!["127.0.0.1:2003".to_string()]
}

/// A batch of complete encoded lines (each ending in `\n`).
#[derive(Debug, Clone, Default)]
pub struct Chunk {
    pub data: Vec<u8>,
    pub lines: u32,
}

/// Counters and gauges the sender exposes for self-metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SenderStats {
    /// Lines waiting in memory.
    pub queued_lines: u64,
    /// Bytes in the on-disk spool.
    pub spool_bytes: u64,
    /// Lines written to destinations (per destination, summed).
    pub lines_sent: u64,
    /// Lines dropped because the spool cap was reached (or unencodable), counted and logged.
    pub lines_dropped: u64,
    /// Reconnections made to destinations.
    pub reconnects: u64,
}

/// The runtime's way into the sender. Cheap to clone.
#[derive(Clone)]
pub struct SenderHandle {
    tx: tokio::sync::mpsc::UnboundedSender<Chunk>,
    stats: std::sync::Arc<std::sync::Mutex<SenderStats>>,
    task: std::sync::Arc<std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

/// Start the sender's tasks on the current tokio runtime.
///
/// PLACEHOLDER implementation (TCP to the first destination, no spool): the sender issue
/// replaces the internals; the API (`spawn`, `submit`, `stats`, `shutdown`) stays.
pub fn spawn(cfg: SenderConfig) -> anyhow::Result<SenderHandle> {
    use tokio::io::AsyncWriteExt;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Chunk>();
    let stats = std::sync::Arc::new(std::sync::Mutex::new(SenderStats::default()));
    let st = stats.clone();
    let dest = cfg
        .destinations
        .first()
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no destination"))?;
    let task = tokio::spawn(async move {
        let mut conn: Option<tokio::net::TcpStream> = None;
        while let Some(chunk) = rx.recv().await {
            if conn.is_none() {
                conn = tokio::net::TcpStream::connect(&dest).await.ok();
            }
            let ok = match conn.as_mut() {
                Some(c) => c.write_all(&chunk.data).await.is_ok(),
                None => false,
            };
            if let Ok(mut s) = st.lock() {
                if ok {
                    s.lines_sent += u64::from(chunk.lines);
                } else {
                    s.lines_dropped += u64::from(chunk.lines);
                }
            }
            if !ok {
                conn = None;
            }
        }
        if let Some(mut c) = conn {
            let _ = c.shutdown().await;
        }
    });
    Ok(SenderHandle {
        tx,
        stats,
        task: std::sync::Arc::new(std::sync::Mutex::new(Some(task))),
    })
}

impl SenderHandle {
    /// Hand over complete lines. Never blocks and never loses a line silently: memory queue,
    /// then disk spool; only at the spool cap are the oldest lines dropped (and counted).
    pub fn submit(&self, chunk: Chunk) {
        let _ = self.tx.send(chunk);
    }

    /// Current counters, for self-metrics.
    pub fn stats(&self) -> SenderStats {
        self.stats.lock().map(|s| *s).unwrap_or_default()
    }

    /// Flush what is queued to the destinations (or persist it to the spool) within
    /// `timeout`, then stop. Called on SIGTERM.
    pub async fn shutdown(self, timeout: std::time::Duration) -> anyhow::Result<()> {
        let task = self.task.lock().ok().and_then(|mut t| t.take());
        drop(self.tx);
        if let Some(task) = task {
            let _ = tokio::time::timeout(timeout, task).await;
        }
        Ok(())
    }
}
