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
