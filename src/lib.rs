//! The `carbide` package: the all-in-one command (`carbide serve`, `carbide up`) and the
//! end-to-end tests in `tests/`.
//!
//! - [`serve`]: the store, carbon listeners and HTTP API from flags / a YAML file.
//! - [`up`]: serve + the collector agent + the alerter in one process.
//! - [`backend`]: the alerter's `Backend` over the store, in process.
//! - [`config`]: `serve`'s settings file, the one schema of the store's and the API's
//!   settings (decoded by the `conf` crate).

pub mod backend;
pub mod config;

/// A startup error that is the user's to fix (a missing file, a busy port, a bad setting):
/// `carbide` exits with status 2 for it (1 for failures at run time).
#[derive(Debug)]
pub struct StartupError(pub String);

impl std::fmt::Display for StartupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartupError {}

pub mod serve;
pub mod up;
