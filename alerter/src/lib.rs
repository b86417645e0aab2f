//! carbide's alerter: Graphite Pager–compatible `alerts.yml`, notifiers and a persistent
//! outbox.
//!
//! Module map:
//! - [`config`]: `alerts.yml` (Graphite Pager keys + extensions), env overrides, validation,
//!   routing of levels to notifiers (YAML decoding, `file:line:column` errors and `Secret`
//!   come from the `conf` crate).
//! - [`template`]: `{placeholder}` message templates.
//! - [`notification`]: [`notification::Notification`], levels, runbook/graph links, keys.
//! - [`notifiers`]: the `NOTIFIERS` registry and one file per notifier.
//! - [`outbox`]: SQLite outbox (record → send → mark), retries with backoff.
//! - [`pipeline`]: evaluate → state → route, one cycle end to end ([`pipeline::engine`]).
//! - [`daemon`]: the run loop: cycles, the outbox worker, the HTTP API, self-metrics, reload.
//! - [`api`]: the HTTP JSON API (states, history, silences).
//! - [`metrics`]: self-metrics and heartbeat to carbon.
//! - [`db`]: the SQLite state file: every table's schema, migrations, opening it.
//! - [`clock`]: wall time (Unix ms / s), the one place it is read.

pub mod api;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod db;
pub mod metrics;
pub mod notification;
pub mod notifiers;
pub mod outbox;
pub mod pipeline;
pub mod template;
