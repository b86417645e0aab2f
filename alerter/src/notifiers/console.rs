//! `console`: one line per message on standard output (or standard error).

use async_trait::async_trait;
use serde::Deserialize;

use super::{Legacy, LegacyError, LegacyValues, Message, Notifier, NotifierConfig, NotifierKind};
use super::{NotifierSpec, NotifyError};
use crate::notification::{Action, Level};

pub const KIND: NotifierKind = NotifierKind {
    name: "console",
    summary: "one line per notification on stdout/stderr",
    decode: super::decode::<ConsoleConfig>,
    default_levels: &[Level::Warning, Level::Critical, Level::NoData, Level::Error],
    legacy: Some(&LEGACY),
    sample: "stderr: true\n",
};

/// Graphite Pager always prints: a `console` notifier exists in every file (the file may
/// define its own under that name).
const LEGACY: Legacy = Legacy {
    keys: &[],
    alert_key: None,
    apply: always,
};

fn always(
    defined: Option<&NotifierSpec>,
    _: &LegacyValues,
) -> Result<Option<NotifierSpec>, LegacyError> {
    Ok(Some(defined.cloned().unwrap_or_else(|| {
        NotifierSpec::new(&KIND, ConsoleConfig::default())
    })))
}

/// `type: console`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    /// Write to standard error instead of standard output.
    #[serde(default)]
    pub stderr: bool,
}

impl NotifierConfig for ConsoleConfig {
    fn build(&self) -> anyhow::Result<Box<dyn Notifier>> {
        Ok(Box::new(Console::new(self.clone())))
    }
}

#[derive(Debug)]
pub struct Console {
    cfg: ConsoleConfig,
}

impl Console {
    pub fn new(cfg: ConsoleConfig) -> Self {
        Console { cfg }
    }
}

/// The line printed for a message.
pub fn line(msg: &Message) -> String {
    let n = &msg.notification;
    let what = match msg.action {
        Action::Trigger => n.level.to_string(),
        Action::Resolve => format!("RESOLVED ({} -> {})", n.previous, n.level),
    };
    // A date a person reads (UTC), not epoch seconds.
    let when = humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(n.timestamp.max(0).unsigned_abs()),
    );
    let mut line = format!("{when} {what}: {}", n.summary);
    if let Some(v) = n.value {
        line.push_str(&format!(" value={}", crate::notification::human_value(v)));
    }
    if let Some(r) = &n.reason {
        line.push_str(&format!(" reason={r:?}"));
    }
    if let Some(u) = &n.runbook_url {
        line.push_str(&format!(" runbook={u}"));
    }
    if let Some(u) = &n.graph_url {
        line.push_str(&format!(" graph={u}"));
    }
    line
}

#[async_trait]
impl Notifier for Console {
    async fn send(&self, msg: &Message) -> Result<(), NotifyError> {
        use std::io::Write;
        let text = line(msg) + "\n";
        let res = if self.cfg.stderr {
            std::io::stderr().lock().write_all(text.as_bytes())
        } else {
            std::io::stdout().lock().write_all(text.as_bytes())
        };
        res.map_err(|e| NotifyError::Retryable(format!("console: cannot write: {e}")))
    }
}
