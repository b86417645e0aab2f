//! carbide's configuration plumbing, shared by every binary (collector, sql-to-graphite,
//! alerter, carbide serve/up). The only crate of the workspace that uses `serde_yaml`
//! (archived upstream: swapping it is this crate only).
//!
//! Module map:
//! - [`error`]: [`ConfigError`], printed `file:line:column: message`.
//! - [`yaml`]: decoding ([`from_str`], [`load`]), messages with "did you mean" and duration /
//!   size hints, and positions of values found after decoding ([`value_position`],
//!   [`locate`]).
//! - [`env`]: `${NAME}` substitution inside every scalar of every file.
//! - [`suggest`]: [`closest`], the known name nearest to a typo.
//! - [`secret`]: [`Secret`], a string that never prints itself.

pub mod env;
pub mod error;
pub mod secret;
pub mod suggest;
pub mod yaml;

pub use error::{ConfigError, ConfigErrors};
pub use secret::Secret;
pub use suggest::closest;
pub use yaml::{deserialize_from_str, from_str, load, locate, read_type, value_position, Seg};
