//! The `carbide` package: the all-in-one command (`carbide serve`, `carbide up`) and the
//! end-to-end tests in `tests/`.
//!
//! - [`serve`]: the store, carbon listeners and HTTP API from flags / a YAML file.
//! - [`up`]: serve + the collector agent + the alerter in one process.
//! - [`backend`]: the alerter's `Backend` over the store, in process.
//! - [`yaml`]: the one module decoding YAML (`serve`'s settings file).

pub mod backend;
pub mod serve;
pub mod up;
pub mod yaml;
