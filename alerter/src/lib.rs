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
//! - [`outbox`]: SQLite outbox (record → send → mark), retries with backoff, plus the
//!   alert-state and silence tables.
//! - [`pipeline`]: evaluate → state → route → outbox (the evaluator and its run loop).
//! - [`api`]: the HTTP JSON API (states, history, silences).
//! - [`metrics`]: self-metrics and heartbeat to carbon.

pub mod api;
pub mod config;
pub mod metrics;
pub mod notification;
pub mod notifiers;
pub mod outbox;
pub mod pipeline;
pub mod template;
