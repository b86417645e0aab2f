//! Collectors and their registry.
//!
//! A collector is one file here plus one line in the registry below (which makes [`KINDS`]
//! and [`ALL_KINDS`]). It owns its options struct
//! (declared with [`collector_config!`], which adds the settings every instance accepts) and
//! implements [`Collector`]: fill a [`Batch`] with collector-relative names and values, and
//! return. It never sleeps, retries or schedules; the runtime owns intervals, deadlines,
//! rates, filtering, paths and self-metrics.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;

use conf::{self as yaml, ConfigError};

// Shared code of several collectors, not collectors themselves.
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub mod dbserver;
#[cfg(any(feature = "haproxy", feature = "rabbitmq", feature = "nginx"))]
pub mod service;
#[cfg(any(feature = "redis", feature = "memcached"))]
pub mod stream;

/// Declares the collector modules, [`KINDS`] and [`ALL_KINDS`] from one list: a module name
/// (= its `type:` name), after the cargo feature that compiles it in, if any.
macro_rules! registry {
    ($( $(#[cfg(feature = $feature:literal)])? $kind:ident, )*) => {
        $( $(#[cfg(feature = $feature)])? pub mod $kind; )*

        /// Every collector type compiled into this build, in [`ALL_KINDS`] order.
        pub const KINDS: &[Kind] = &[ $( $(#[cfg(feature = $feature)])? $kind::KIND, )* ];

        /// Every collector type carbide has, compiled in or not (for the "compiled without"
        /// error).
        pub const ALL_KINDS: &[&str] = &[ $( stringify!($kind), )* ];

        /// The cargo features that compile a collector in (each its collector's type name).
        pub const FEATURES: &[&str] = &[ $( $($feature,)? )* ];
    };
}

// The collector registry. Adding a collector: its file (`<kind>.rs`, with `pub const KIND`,
// its `<kind>.sample.yml` and `docs/collectors/<kind>.md`) and one line here. A service
// collector is behind the cargo feature of its `type:` name (all on by default), so a
// host-only build (`--no-default-features`) leaves out the HTTP/TLS, MongoDB and SQL client
// stacks; `host` is always built.
registry! {
    host,
    #[cfg(feature = "haproxy")] haproxy,
    #[cfg(feature = "rabbitmq")] rabbitmq,
    #[cfg(feature = "mongodb")] mongodb,
    #[cfg(feature = "sql")] sql,
    #[cfg(feature = "exec")] exec,
    #[cfg(feature = "nginx")] nginx,
    #[cfg(feature = "redis")] redis,
    #[cfg(feature = "memcached")] memcached,
    #[cfg(feature = "postgres")] postgres,
    #[cfg(feature = "mysql")] mysql,
    #[cfg(feature = "process")] process,
}

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
    /// Usually `build::<TheOptionsStruct>`.
    pub build: fn(file: &Path, text: &str) -> Result<Instance, ConfigError>,
    /// The runtime's circuit breaker guards its instances (`crate::breaker`): true for the
    /// collectors that call a service, false for those that read the local host.
    pub circuit_breaker: bool,
}

impl Kind {
    /// Build an instance from `text` as if read from `collectors.d/<name>.yml`.
    pub fn load(&self, text: &str) -> Result<Instance, ConfigError> {
        (self.build)(
            &Path::new("collectors.d").join(format!("{}.yml", self.name)),
            text,
        )
    }
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
    /// Graphite 1.1 tags for this instance's metrics (over the global `tags:`).
    pub tags: std::collections::BTreeMap<String, String>,
}

/// The common settings of an options struct; [`collector_config!`] implements it.
pub trait HasCommon {
    fn common(&self) -> Common;
}

/// A collector's options struct (declared with [`collector_config!`]): how it becomes a
/// collector.
pub trait CollectorConfig: serde::de::DeserializeOwned + HasCommon {
    /// Checks that need the file's text (positions of values); run before `into_collector`.
    fn check(&self, _file: &Path, _text: &str) -> Result<(), ConfigError> {
        Ok(())
    }
    /// The ready collector; an error is reported against the whole file.
    fn into_collector(self) -> anyhow::Result<Box<dyn Collector>>;
}

/// Build an [`Instance`] from a file's text for any options struct; what [`Kind::build`]
/// points at.
pub fn build<C: CollectorConfig>(file: &Path, text: &str) -> Result<Instance, ConfigError> {
    let cfg: C = yaml::from_str(file, text)?;
    cfg.check(file, text)?;
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
/// typo in any key is an error with its position, and implements [`HasCommon`]; implement
/// [`CollectorConfig`] yourself. Only usable inside this crate (serde's attribute paths
/// cannot name `$crate`).
#[macro_export]
macro_rules! collector_config {
    // `with dsn`: a collector of a database server (postgres, mysql, sql) also takes `dsn:`
    // or `dsn_env:` (resolved by `sql::dsn_of`), declared here once.
    (
        $(#[$meta:meta])*
        pub struct $name:ident with dsn {
            $( $(#[$fmeta:meta])* pub $field:ident : $ty:ty ),* $(,)?
        }
    ) => {
        $crate::collector_config! {
            $(#[$meta])*
            pub struct $name {
                /// The server's DSN (`postgres://user:password@host:port/db`, `mysql://`,
                /// `mariadb://`, `sqlite:///path`; each collector names the drivers it reads).
                /// Prefer `dsn_env`, which keeps the password out of the file.
                #[serde(default)]
                pub dsn: Option<$crate::collectors::sql::SecretDsn>,
                /// Name of an environment variable holding the DSN.
                #[serde(default)]
                pub dsn_env: Option<String>,
                $( $(#[$fmeta])* pub $field: $ty, )*
            }
        }
    };
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
            /// Graphite 1.1 tags for this instance's metrics, over the global `tags:`.
            #[serde(default)]
            pub tags: std::collections::BTreeMap<String, String>,
            $( $(#[$fmeta])* pub $field: $ty, )*
        }

        impl $crate::collectors::HasCommon for $name {
            fn common(&self) -> $crate::collectors::Common {
                $crate::collectors::Common {
                    kind: self.kind.clone(),
                    interval: self.interval,
                    timeout: self.timeout,
                    path: self.path.clone(),
                    whitelist: self.whitelist.clone(),
                    blacklist: self.blacklist.clone(),
                    enabled: self.enabled,
                    tags: self.tags.clone(),
                }
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_doc(rel: &str) -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    /// One registry: every compiled kind is named like its module and listed once, in order.
    #[test]
    fn registry_names_match() {
        let names: Vec<&str> = KINDS.iter().map(|k| k.name).collect();
        let compiled: Vec<&str> = ALL_KINDS
            .iter()
            .copied()
            .filter(|n| kind(n).is_some())
            .collect();
        assert_eq!(names, compiled, "a KIND.name differs from its module name");
        #[cfg(all(
            feature = "haproxy",
            feature = "rabbitmq",
            feature = "mongodb",
            feature = "sql",
            feature = "exec",
            feature = "nginx",
            feature = "redis",
            feature = "memcached",
            feature = "postgres",
            feature = "mysql",
            feature = "process"
        ))]
        assert_eq!(names, ALL_KINDS);
        assert!(ALL_KINDS
            .iter()
            .all(|n| !not_compiled_in(n) || kind(n).is_none()));
    }

    /// Every kind's sample parses and builds, and its docs page shows it verbatim.
    #[test]
    fn every_sample_builds_and_is_in_its_docs() {
        // The samples of the SQL collectors read their DSN from these.
        std::env::set_var("SHOP_DSN", "sqlite:///nonexistent.db");
        std::env::set_var(
            "CARBIDE_PG_DSN",
            "postgres://carbide:pw@127.0.0.1:5432/postgres",
        );
        std::env::set_var("CARBIDE_MYSQL_DSN", "mysql://carbide:pw@127.0.0.1:3306/");
        for kind in KINDS {
            let file = format!("collectors.d/{}.yml", kind.name);
            let instance = (kind.build)(Path::new(&file), kind.sample)
                .unwrap_or_else(|e| panic!("{}.sample.yml: {e}", kind.name));
            assert_eq!(instance.common.kind, kind.name);
            let doc = format!("docs/collectors/{}.md", kind.name);
            assert!(
                read_doc(&doc).contains(kind.sample.trim_end()),
                "{doc}: paste {}.sample.yml verbatim",
                kind.name
            );
        }
    }

    /// docs/configuration.md's "Collector types" table has one row per registered type, in
    /// registry order: its name, its cargo feature (named after it) and its page.
    #[test]
    fn configuration_docs_list_every_kind() {
        let docs = read_doc("docs/configuration.md");
        let table = docs
            .split("## Collector types")
            .nth(1)
            .and_then(|t| t.split("\n## ").next())
            .expect("docs/configuration.md: no \"## Collector types\" section");
        let rows: Vec<Vec<&str>> = table
            .lines()
            .filter(|l| l.starts_with("| `"))
            .map(|l| l.trim_matches('|').split(" | ").map(str::trim).collect())
            .collect();
        let want: Vec<Vec<String>> = ALL_KINDS
            .iter()
            .map(|n| {
                let feature = match FEATURES.contains(n) {
                    true => format!("`{n}`"),
                    false => "always built".to_string(),
                };
                vec![
                    format!("`{n}`"),
                    feature,
                    format!("[{n}](collectors/{n}.md)"),
                ]
            })
            .collect();
        let got: Vec<Vec<String>> = rows
            .iter()
            .map(|r| r.iter().take(3).map(|c| c.to_string()).collect())
            .collect();
        assert_eq!(
            got, want,
            "docs/configuration.md \"Collector types\": one row per registry! entry, in order \
             (type, cargo feature, page)"
        );
        assert!(
            rows.iter().all(|r| r.len() == 4 && !r[3].is_empty()),
            "docs/configuration.md \"Collector types\": every row says what it reads"
        );
        // Every feature that compiles a collector in is named after its collector.
        assert!(
            FEATURES.iter().all(|f| ALL_KINDS.contains(f)),
            "{FEATURES:?}"
        );
        for name in ALL_KINDS {
            assert!(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join(format!("../docs/collectors/{name}.md"))
                    .is_file(),
                "docs/collectors/{name}.md is missing"
            );
        }
    }
}
