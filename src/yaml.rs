//! The one module of the `carbide` binary that decodes YAML: the `carbide serve` / `carbide
//! up` settings file (`--config FILE`). Every key is optional; command-line flags override
//! the file. Documented in `docs/store.md` ("carbide serve").

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// `carbide serve --config FILE`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeFile {
    /// Carbon plaintext TCP listener (`ip:port`, or `off`). Default `127.0.0.1:2003`.
    #[serde(default)]
    pub carbon_tcp: Option<String>,
    /// Carbon plaintext UDP listener (`ip:port`, or `off`). Default `127.0.0.1:2003`.
    #[serde(default)]
    pub carbon_udp: Option<String>,
    /// The HTTP API (`ip:port`). Default `127.0.0.1:8080`.
    #[serde(default)]
    pub http_listen: Option<SocketAddr>,
    /// Directory holding the SQLite database; relative to the working directory. Default `data`.
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
    /// carbon's `storage-schemas.conf`, read as carbon reads it. Default: carbide's built-in
    /// `10s:1d,1m:30d,10m:1y` for everything.
    #[serde(default)]
    pub schemas: Option<PathBuf>,
    /// carbon's `storage-aggregation.conf`. Default: average, xFilesFactor 0.5.
    #[serde(default)]
    pub aggregation: Option<PathBuf>,
    /// How often cached points are written to SQLite (the kill -9 loss bound). Default `5s`.
    #[serde(default, with = "humantime_serde")]
    pub flush_interval: Option<Duration>,
    /// How often `carbide.store.*` self-metrics are written (`0s` disables). Default `10s`.
    #[serde(default, with = "humantime_serde")]
    pub self_metrics_interval: Option<Duration>,
    /// Unflushed points beyond which new points are dropped and counted. Default 20000000.
    #[serde(default)]
    pub max_cache_points: Option<u64>,
    /// Optional authentication of the HTTP API.
    #[serde(default)]
    pub auth: AuthFile,
    /// Limits of the HTTP API against hostile requests.
    #[serde(default)]
    pub limits: LimitsFile,
}

/// `auth:`. Secrets may instead come from the environment (`CARBIDE_HTTP_PASSWORD`,
/// `CARBIDE_HTTP_TOKEN`), which keeps them out of the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthFile {
    /// Basic-auth user; needs a password.
    #[serde(default)]
    pub user: Option<String>,
    /// Basic-auth password.
    #[serde(default)]
    pub password: Option<String>,
    /// Bearer token (`Authorization: Bearer <token>`).
    #[serde(default)]
    pub token: Option<String>,
}

/// `limits:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsFile {
    /// Targets per `/render` request. Default 200.
    #[serde(default)]
    pub max_targets: Option<usize>,
    /// Points one render may read (16 bytes each while evaluated). Default 10000000.
    #[serde(default)]
    pub max_points_per_request: Option<u64>,
    /// Bytes of series names one render may hold. Default 67108864.
    #[serde(default)]
    pub max_name_bytes_per_request: Option<u64>,
    /// Regular expressions one render may compile. Default 256.
    #[serde(default)]
    pub max_regexes_per_request: Option<u64>,
    /// Request body bytes. Default 1048576.
    #[serde(default)]
    pub max_body_bytes: Option<usize>,
    /// Nodes one find/expand may return (and items one index.json or /tags answer lists).
    /// Default 200000.
    #[serde(default)]
    pub max_find_results: Option<usize>,
    /// Longest run of one request's work, then 504. Default `10s`.
    #[serde(default, with = "humantime_serde")]
    pub render_timeout: Option<Duration>,
    /// Longest wait for a render slot, then 503. Default `10s`.
    #[serde(default, with = "humantime_serde")]
    pub render_queue_timeout: Option<Duration>,
    /// Requests whose work runs at once. Default two per core.
    #[serde(default)]
    pub max_concurrent_renders: Option<usize>,
    /// Open HTTP connections; one more is answered 503 and closed. Default 1024.
    #[serde(default)]
    pub max_http_connections: Option<usize>,
    /// Headers, then body, of an HTTP request must each arrive within this; idle keep-alive
    /// connections are closed after it. Default `10s`.
    #[serde(default, with = "humantime_serde")]
    pub http_read_timeout: Option<Duration>,
    /// Open carbon TCP connections; more are closed at once and counted. Default 4096.
    #[serde(default)]
    pub max_carbon_connections: Option<usize>,
    /// A carbon TCP connection that sends nothing for this long is closed. Default `10m`.
    #[serde(default, with = "humantime_serde")]
    pub carbon_idle_timeout: Option<Duration>,
}

/// Read and decode `file`; the error names the file, line and column.
pub fn load_serve_file(file: &Path) -> anyhow::Result<ServeFile> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", file.display()))?;
    decode(file, &text)
}

fn decode(file: &Path, text: &str) -> anyhow::Result<ServeFile> {
    if text.trim().is_empty() {
        return Ok(ServeFile::default());
    }
    serde_yaml::from_str(text).map_err(|e| {
        let pos = e
            .location()
            .map(|l| format!(":{}:{}", l.line(), l.column()))
            .unwrap_or_default();
        anyhow::anyhow!(
            "{}{pos}: {e} (see docs/store.md for the keys of carbide serve's file)",
            file.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_every_key_and_rejects_unknown_ones() {
        let f = decode(
            Path::new("s.yml"),
            "carbon_tcp: off\nhttp_listen: 127.0.0.1:0\ndata_dir: d\nflush_interval: 2s\n\
             auth: {user: u, password: p}\nlimits: {max_targets: 3, render_timeout: 2s, carbon_idle_timeout: 1m}\n",
        )
        .unwrap();
        assert_eq!(f.carbon_tcp.as_deref(), Some("off"));
        assert_eq!(f.flush_interval, Some(Duration::from_secs(2)));
        assert_eq!(f.limits.max_targets, Some(3));
        assert_eq!(f.limits.render_timeout, Some(Duration::from_secs(2)));
        assert_eq!(f.limits.carbon_idle_timeout, Some(Duration::from_secs(60)));
        assert_eq!(f.auth.user.as_deref(), Some("u"));
        let err = decode(Path::new("s.yml"), "http_lisen: x\n").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("s.yml:1:1") && msg.contains("http_lisen"),
            "{msg}"
        );
        assert!(decode(Path::new("s.yml"), "").is_ok());
    }
}
