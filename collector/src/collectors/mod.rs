//! Collectors and their registry.
//!
//! A collector is one file here plus one line in [`KINDS`]. It owns its options struct
//! (declared with [`collector_config!`], which adds the settings every instance accepts) and
//! implements [`Collector`]: fill a [`Batch`] with collector-relative names and values, and
//! return. It never sleeps, retries or schedules; the runtime owns intervals, deadlines,
//! rates, filtering, paths and self-metrics.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;

use crate::yaml::{self, ConfigError};

// Each service collector is behind the cargo feature of its `type:` name (all on by default),
// so a host-only build (`--no-default-features`) leaves out the HTTP/TLS, MongoDB and SQL
// client stacks. The host collector is always built.
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub mod dbserver;
#[cfg(feature = "exec")]
pub mod exec;
#[cfg(feature = "haproxy")]
pub mod haproxy;
pub mod host;
#[cfg(feature = "memcached")]
pub mod memcached;
#[cfg(feature = "mongodb")]
pub mod mongodb;
#[cfg(feature = "mysql")]
pub mod mysql;
#[cfg(feature = "nginx")]
pub mod nginx;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "process")]
pub mod process;
#[cfg(feature = "rabbitmq")]
pub mod rabbitmq;
#[cfg(feature = "redis")]
pub mod redis;
pub mod secret;
#[cfg(any(feature = "haproxy", feature = "rabbitmq", feature = "nginx"))]
pub mod service;
#[cfg(feature = "sql")]
pub mod sql;
#[cfg(any(feature = "redis", feature = "memcached"))]
pub mod stream;

/// Every collector type compiled into this build. Adding a collector: one file, one line
/// here (under its feature) and its name in [`ALL_KINDS`].
pub const KINDS: &[Kind] = &[
    host::KIND,
    #[cfg(feature = "haproxy")]
    haproxy::KIND,
    #[cfg(feature = "rabbitmq")]
    rabbitmq::KIND,
    #[cfg(feature = "mongodb")]
    mongodb::KIND,
    #[cfg(feature = "sql")]
    sql::KIND,
    #[cfg(feature = "exec")]
    exec::KIND,
    #[cfg(feature = "nginx")]
    nginx::KIND,
    #[cfg(feature = "redis")]
    redis::KIND,
    #[cfg(feature = "memcached")]
    memcached::KIND,
    #[cfg(feature = "postgres")]
    postgres::KIND,
    #[cfg(feature = "mysql")]
    mysql::KIND,
    #[cfg(feature = "process")]
    process::KIND,
];

/// Every collector type carbide has, compiled in or not; each but `host` is also the name of
/// the cargo feature that compiles it in.
pub const ALL_KINDS: &[&str] = &[
    "host",
    "haproxy",
    "rabbitmq",
    "mongodb",
    "sql",
    "exec",
    "nginx",
    "redis",
    "memcached",
    "postgres",
    "mysql",
    "process",
];

/// Look a collector type up by its `type:` name.
pub fn kind(name: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.name == name)
}

/// True for a type carbide has but this build was compiled without.
pub fn not_compiled_in(name: &str) -> bool {
    ALL_KINDS.contains(&name) && kind(name).is_none()
}

/// One collector type: its name, its sample config (embedded in docs) and how to build an
/// instance from a config file's text.
pub struct Kind {
    /// The `type:` value in `collectors.d/*.yml`.
    pub name: &'static str,
    /// The path segment after `<prefix>.<host>.` when the instance sets no `path:`. Empty
    /// puts the metrics right under the host, as Diamond's CPU, memory, ... collectors do
    /// (`servers.web1.cpu.total.user`).
    pub default_path: &'static str,
    /// A commented sample config file for this type.
    pub sample: &'static str,
    /// Decode one config file into a ready instance. Validation happens here, at load time.
    pub build: fn(file: &Path, text: &str) -> Result<Instance, ConfigError>,
    /// The runtime's circuit breaker guards its instances (`crate::breaker`): true for the
    /// collectors that call a service, false for those that read the local host.
    pub circuit_breaker: bool,
}

/// A configured collector instance, ready for the runtime.
pub struct Instance {
    pub common: Common,
    pub collector: Box<dyn Collector>,
}

/// One collection run. Implementations fill `out` and return; a failure is an `Err`
/// (counted and logged by the runtime, which keeps whatever was put in `out` before it).
#[async_trait]
pub trait Collector: Send {
    async fn collect(&mut self, out: &mut Batch) -> anyhow::Result<()>;
}

/// What one run produced, with names relative to the collector (`cpu.total.user`).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Batch {
    pub samples: Vec<Sample>,
    /// Input the collector could not turn into a metric (an exec command's malformed lines):
    /// counted in the instance's `dropped` self-metric and logged with the first as example.
    pub rejected: u64,
    pub rejected_example: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub value: f64,
    pub kind: SampleKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleKind {
    /// Published as is.
    Gauge,
    /// A monotonically increasing counter: the runtime publishes its per-second rate over the
    /// measured time between two runs, nothing on the first run and nothing when it goes back.
    Counter,
}

impl Batch {
    pub fn gauge(&mut self, name: impl Into<String>, value: f64) {
        self.samples.push(Sample {
            name: name.into(),
            value,
            kind: SampleKind::Gauge,
        });
    }

    pub fn counter(&mut self, name: impl Into<String>, value: f64) {
        self.samples.push(Sample {
            name: name.into(),
            value,
            kind: SampleKind::Counter,
        });
    }

    /// Count a piece of input that is not a metric; `why` (the first one's) is logged.
    pub fn reject(&mut self, why: String) {
        self.rejected += 1;
        self.rejected_example.get_or_insert(why);
    }
}

/// A name turned into one path level: lowercased if asked, every character outside
/// `[A-Za-z0-9_-]` (including `.`) replaced by `_`.
pub fn segment(name: &str, lowercase: bool) -> String {
    name.chars()
        .map(|c| {
            let c = if lowercase { c.to_ascii_lowercase() } else { c };
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A regex compiled when the config is decoded, so a bad pattern is an error with a
/// file:line:column like any other.
#[derive(Debug, Clone)]
pub struct Pattern(pub regex_lite::Regex);

impl<'de> serde::Deserialize<'de> for Pattern {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        regex_lite::Regex::new(&s).map(Pattern).map_err(|e| {
            // The regex crate's message spans lines (pattern, caret, error): keep the last.
            let text = e.to_string();
            let why = text.lines().last().unwrap_or_default().trim();
            let why = why.strip_prefix("error: ").unwrap_or(why);
            serde::de::Error::custom(format!("invalid regex {s:?}: {why}"))
        })
    }
}

/// The settings every collector instance accepts, next to its own options.
#[derive(Debug, Clone, Default)]
pub struct Common {
    /// The collector's type name.
    pub kind: String,
    /// Collection interval; the global default when unset.
    pub interval: Option<Duration>,
    /// Hard deadline for one run; defaults to the interval.
    pub timeout: Option<Duration>,
    /// Path segment after `<prefix>.<host>.`; the type name when unset.
    pub path: Option<String>,
    /// Diamond semantics: when non-empty, only names matching one of these are published.
    pub whitelist: Vec<Pattern>,
    /// Names matching one of these are never published.
    pub blacklist: Vec<Pattern>,
    /// Off: the instance is loaded and validated but not run.
    pub enabled: bool,
}

/// Access to the common settings of a collector's options struct.
pub trait CollectorConfig: serde::de::DeserializeOwned {
    fn common(&self) -> Common;
    fn into_collector(self) -> anyhow::Result<Box<dyn Collector>>;
}

/// Build an [`Instance`] from a file's text for any options struct; what [`Kind::build`]
/// usually points at.
pub fn build<C: CollectorConfig>(file: &Path, text: &str) -> Result<Instance, ConfigError> {
    let cfg: C = yaml::from_str(file, text)?;
    let common = cfg.common();
    let collector = cfg
        .into_collector()
        .map_err(|e| ConfigError::whole_file(file, format!("{e:#}")))?;
    Ok(Instance { common, collector })
}

pub fn default_true() -> bool {
    true
}

#[doc(hidden)]
pub mod __private {
    pub use super::default_true;
    pub use humantime_serde;
}

/// Declare a collector's options struct. Adds the common fields (`type`, `interval`,
/// `timeout`, `path`, `whitelist`, `blacklist`, `enabled`) and `deny_unknown_fields`, so a
/// typo in any key is an error with its position. Implement `into_collector` yourself via
/// [`CollectorConfig`]; the macro provides `common_settings()`. Only usable inside this
/// crate (serde's attribute paths cannot name `$crate`).
#[macro_export]
macro_rules! collector_config {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$fmeta:meta])* pub $field:ident : $ty:ty ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            /// The collector type.
            #[serde(rename = "type")]
            pub kind: String,
            /// Collection interval (`10s`, `1m`); the global default when unset.
            #[serde(default, with = "crate::collectors::__private::humantime_serde")]
            pub interval: Option<std::time::Duration>,
            /// Hard deadline for one run; defaults to the interval.
            #[serde(default, with = "crate::collectors::__private::humantime_serde")]
            pub timeout: Option<std::time::Duration>,
            /// Path segment after `<prefix>.<host>.`; the type name when unset.
            #[serde(default)]
            pub path: Option<String>,
            /// Only names matching one of these regexes are published (when non-empty).
            #[serde(default)]
            pub whitelist: Vec<$crate::collectors::Pattern>,
            /// Names matching one of these regexes are never published.
            #[serde(default)]
            pub blacklist: Vec<$crate::collectors::Pattern>,
            /// Set to false to keep the file but not run the instance.
            #[serde(default = "crate::collectors::__private::default_true")]
            pub enabled: bool,
            $( $(#[$fmeta])* pub $field: $ty, )*
        }

        impl $name {
            /// The common settings of this instance.
            pub fn common_settings(&self) -> $crate::collectors::Common {
                $crate::collectors::Common {
                    kind: self.kind.clone(),
                    interval: self.interval,
                    timeout: self.timeout,
                    path: self.path.clone(),
                    whitelist: self.whitelist.clone(),
                    blacklist: self.blacklist.clone(),
                    enabled: self.enabled,
                }
            }
        }
    };
}
