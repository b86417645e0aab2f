//! The `carbide serve` / `carbide up` settings file (`--config FILE`): the one schema of the
//! store's, the listeners' and the HTTP API's settings. Every key is optional; its default is
//! the one of `ServerConfig::default` / `HttpConfig::default` (not repeated here), and
//! command-line flags override the file. Documented in `docs/store.md` ("carbide serve");
//! decoded by the `conf` crate (positions, `${ENV}`, suggestions).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use conf::{ConfigError, Secret, Seg};
use serde::{Deserialize, Deserializer};

/// `carbide serve --config FILE`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeFile {
    /// Carbon plaintext TCP listener: `ip:port`, or `off` (or `null`) to disable it.
    #[serde(default, deserialize_with = "listen")]
    pub carbon_tcp: Option<Listen>,
    /// Carbon plaintext UDP listener: `ip:port`, or `off` (or `null`) to disable it.
    #[serde(default, deserialize_with = "listen")]
    pub carbon_udp: Option<Listen>,
    /// The HTTP API (`ip:port`).
    #[serde(default)]
    pub http_listen: Option<SocketAddr>,
    /// Directory holding the SQLite database; relative to the working directory.
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
    /// carbon's `storage-schemas.conf`, read as carbon reads it.
    #[serde(default)]
    pub schemas: Option<PathBuf>,
    /// carbon's `storage-aggregation.conf`.
    #[serde(default)]
    pub aggregation: Option<PathBuf>,
    /// How often cached points are written to SQLite (the kill -9 loss bound); at least 100ms.
    #[serde(default, with = "humantime_serde")]
    pub flush_interval: Option<Duration>,
    /// How often `carbide.store.*` self-metrics are written (`0s` disables).
    #[serde(default, with = "humantime_serde")]
    pub self_metrics_interval: Option<Duration>,
    /// Unflushed points at which the listeners pause (hard bound a quarter above).
    #[serde(default)]
    pub max_cache_points: Option<u64>,
    /// Optional authentication of the HTTP API.
    #[serde(default)]
    pub auth: AuthFile,
    /// Limits of the HTTP API and the carbon listener against hostile clients.
    #[serde(default)]
    pub limits: LimitsFile,
}

/// A listener setting: an address, or disabled (`off`, `null`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listen {
    Off,
    At(SocketAddr),
}

impl Listen {
    pub fn addr(self) -> Option<SocketAddr> {
        match self {
            Listen::Off => None,
            Listen::At(a) => Some(a),
        }
    }
}

impl std::str::FromStr for Listen {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "off" => Ok(Listen::Off),
            a => a.parse().map(Listen::At).map_err(|e| {
                format!("{a:?}: {e} (expected ip:port such as 127.0.0.1:2003, or off)")
            }),
        }
    }
}

/// `carbon_tcp: null` disables the listener, as `off` does (absent keeps the default).
fn listen<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Listen>, D::Error> {
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Option<Listen>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("ip:port, or off")
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(Some(Listen::Off))
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(Some(Listen::Off))
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            conf::deserialize_from_str(d).map(Some)
        }
    }
    d.deserialize_option(V)
}

/// `auth:`. Secrets may instead come from the environment (`CARBIDE_HTTP_PASSWORD`,
/// `CARBIDE_HTTP_TOKEN`, or `${NAME}` in the file), which keeps them out of the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthFile {
    /// Basic-auth user; needs a password.
    #[serde(default)]
    pub user: Option<String>,
    /// Basic-auth password.
    #[serde(default)]
    pub password: Option<Secret>,
    /// Bearer token (`Authorization: Bearer <token>`).
    #[serde(default)]
    pub token: Option<Secret>,
}

/// `limits:` (every one in docs/limits.md).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsFile {
    /// Targets per `/render` request.
    #[serde(default)]
    pub max_targets: Option<usize>,
    /// Points one render may read (16 bytes each while evaluated).
    #[serde(default)]
    pub max_points_per_request: Option<u64>,
    /// Bytes of series names one render may hold.
    #[serde(default)]
    pub max_name_bytes_per_request: Option<u64>,
    /// Regular expressions one render may compile.
    #[serde(default)]
    pub max_regexes_per_request: Option<u64>,
    /// Request body bytes.
    #[serde(default)]
    pub max_body_bytes: Option<usize>,
    /// Nodes one find/expand may return (and items one index.json or /tags answer lists).
    #[serde(default)]
    pub max_find_results: Option<usize>,
    /// Longest run of one request's work, then 504.
    #[serde(default, with = "humantime_serde")]
    pub render_timeout: Option<Duration>,
    /// Longest wait for a render slot, then 503.
    #[serde(default, with = "humantime_serde")]
    pub render_queue_timeout: Option<Duration>,
    /// Requests whose work runs at once (default two per core).
    #[serde(default)]
    pub max_concurrent_renders: Option<usize>,
    /// Widest and tallest `format=png`/`svg` picture, pixels.
    #[serde(default)]
    pub max_picture_side: Option<u32>,
    /// Most pixels (width × height) of one picture; 4 bytes each while drawn.
    #[serde(default)]
    pub max_picture_pixels: Option<u64>,
    /// Longest `title`, `vtitle` or `vtitleRight` of a picture, in characters.
    #[serde(default)]
    pub max_picture_text_chars: Option<usize>,
    /// Open HTTP connections; one more is answered 503 and closed.
    #[serde(default)]
    pub max_http_connections: Option<usize>,
    /// Headers, then body, of an HTTP request must each arrive within this; idle keep-alive
    /// connections are closed after it.
    #[serde(default, with = "humantime_serde")]
    pub http_read_timeout: Option<Duration>,
    /// Open carbon TCP connections; more are closed at once and counted.
    #[serde(default)]
    pub max_carbon_connections: Option<usize>,
    /// A carbon TCP connection that sends nothing for this long is closed.
    #[serde(default, with = "humantime_serde")]
    pub carbon_idle_timeout: Option<Duration>,
}

/// A decoded settings file with its text, so checks after decoding can name positions.
#[derive(Debug, Default)]
pub struct Loaded {
    pub file: Option<PathBuf>,
    pub text: String,
    pub cfg: ServeFile,
}

impl Loaded {
    /// Read and decode `file` (`None`: no file, every default).
    pub fn load(file: Option<&Path>) -> Result<Loaded, ConfigError> {
        let Some(file) = file else {
            return Ok(Loaded::default());
        };
        let text = std::fs::read_to_string(file)
            .map_err(|e| ConfigError::whole_file(file, format!("cannot read: {e}")))?;
        let cfg: Option<ServeFile> = conf::from_str(file, &text)?;
        Ok(Loaded {
            file: Some(file.to_path_buf()),
            text,
            cfg: cfg.unwrap_or_default(),
        })
    }

    /// An error about the value at `path` (`["limits", "render_timeout"]`), positioned when
    /// the file says it; otherwise (a flag or the default) about the command line.
    pub fn error(&self, path: &[&str], message: impl Into<String>) -> ConfigError {
        let segs: Vec<Seg> = path.iter().map(|k| Seg::Key(k)).collect();
        match (&self.file, conf::locate(&self.text, &segs)) {
            (Some(f), Some((line, col))) => {
                // `locate` gives the key; point at its value, as decoding errors do.
                let at = self.text.lines().nth(line - 1).and_then(|l| {
                    let key = path.last()?;
                    let after = l[col - 1..].strip_prefix(key)?.strip_prefix(':')?;
                    Some(col + key.len() + 1 + (after.len() - after.trim_start().len()))
                });
                ConfigError::new(f, line, at.unwrap_or(col), message)
            }
            (Some(f), None) => {
                ConfigError::whole_file(f, format!("{}: {}", path.join("."), message.into()))
            }
            (None, _) => ConfigError::whole_file(
                Path::new("(command line)"),
                format!("{}: {}", path.join("."), message.into()),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(text: &str) -> Result<ServeFile, ConfigError> {
        conf::from_str::<Option<ServeFile>>(Path::new("s.yml"), text).map(Option::unwrap_or_default)
    }

    #[test]
    fn decodes_every_key_and_rejects_unknown_ones() {
        let f = decode(
            "carbon_tcp: off\ncarbon_udp: null\nhttp_listen: 127.0.0.1:0\ndata_dir: d\nflush_interval: 2s\n\
             auth: {user: u, password: p}\nlimits: {max_targets: 3, render_timeout: 2s, carbon_idle_timeout: 1m, max_picture_side: 900, max_picture_pixels: 90000, max_picture_text_chars: 7}\n",
        )
        .unwrap();
        assert_eq!(f.carbon_tcp, Some(Listen::Off));
        assert_eq!(f.carbon_udp, Some(Listen::Off));
        assert_eq!(f.flush_interval, Some(Duration::from_secs(2)));
        assert_eq!(f.limits.max_targets, Some(3));
        assert_eq!(f.limits.render_timeout, Some(Duration::from_secs(2)));
        assert_eq!(f.limits.carbon_idle_timeout, Some(Duration::from_secs(60)));
        assert_eq!(f.limits.max_picture_side, Some(900));
        assert_eq!(f.limits.max_picture_pixels, Some(90_000));
        assert_eq!(f.limits.max_picture_text_chars, Some(7));
        assert_eq!(f.auth.user.as_deref(), Some("u"));
        assert_eq!(f.auth.password.as_ref().map(Secret::expose), Some("p"));
        let f = decode("carbon_tcp: 127.0.0.1:2004\n").unwrap();
        assert_eq!(
            f.carbon_tcp,
            Some(Listen::At(([127, 0, 0, 1], 2004).into()))
        );
        assert_eq!(f.carbon_udp, None);
        let err = decode("http_lisen: x\n").unwrap_err().to_string();
        assert!(
            err.starts_with("s.yml:1:1: unknown key \"http_lisen\": did you mean \"http_listen\"?"),
            "{err}"
        );
        let err = decode("data_dir: d\ncarbon_tcp: nowhere\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("s.yml:2:13: carbon_tcp: \"nowhere\": invalid socket address"),
            "{err}"
        );
        assert!(decode("").is_ok());
    }

    #[test]
    fn checks_after_decoding_point_at_the_value() {
        let text = "data_dir: d\nlimits:\n  max_targets: 3\n  render_timeout:   0s\n";
        let l = Loaded {
            file: Some("s.yml".into()),
            text: text.into(),
            cfg: decode(text).unwrap(),
        };
        let e = l.error(&["limits", "render_timeout"], "must be more than zero");
        assert_eq!(e.to_string(), "s.yml:4:21: must be more than zero");
        let e = l.error(&["flush_interval"], "too short");
        assert_eq!(e.to_string(), "s.yml: flush_interval: too short");
    }
}
