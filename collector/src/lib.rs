//! carbide's collector agent.
//!
//! Module map:
//! - [`config`]: the global settings file and loading/validating `collectors.d/` (YAML
//!   decoding, errors with file:line:column and `Secret` come from the `conf` crate).
//! - [`collectors`]: the `Collector` trait, the `KINDS` registry and one file per collector.
//! - [`runtime`]: one task per instance: schedule, deadline, filters, rates, encoding.
//! - [`breaker`]: the circuit breaker that pauses a service collector failing in a row.
//! - [`rates`], [`paths`]: counter rates over measured time; metric path building.
//! - [`events`], [`selfmetrics`]: internal events (log + count) and the agent's own metrics.
//! - [`agent`]: the running agent: sender, signals (SIGHUP reload, SIGTERM flush).
//! - [`sender`]: queue, disk spool and connections to carbon.
//! - [`sql`]: business metrics from SQL (the `sql-to-graphite` binary and the `sql` collector;
//!   feature `sql`).
//!
//! Cargo features: one per service collector type (`haproxy`, `rabbitmq`, `mongodb`, `sql`,
//! `exec`, `nginx`, `redis`, `memcached`, `postgres`, `mysql`, `process`), all on by default; `host` is always built. See [`collectors::KINDS`].

pub mod agent;
pub mod breaker;
pub mod collectors;
pub mod config;
pub mod events;
pub mod paths;
pub mod rates;
pub mod runtime;
pub mod selfmetrics;
pub mod sender;
#[cfg(feature = "sql")]
pub mod sql;
