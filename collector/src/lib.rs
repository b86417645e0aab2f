//! carbide's collector agent.
//!
//! Module map:
//! - [`yaml`]: the only place config YAML is decoded; errors carry file:line:column.
//! - [`collectors`]: the `Collector` trait, the `KINDS` registry and one file per collector.
//! - [`sender`]: queue, disk spool and connections to carbon.

pub mod collectors;
pub mod sender;
pub mod yaml;
