//! The render API as graphite-web 1.1.10 speaks it for `format=json`.
//!
//! - [`model`]: the JSON body `[{"target", "tags", "datapoints": [[value|null, ts], ...]}]`,
//!   encoded byte-for-byte as graphite-web does (Python `json.dumps`, then `NaN,` → `null,`
//!   and `Infinity,` → `1e9999,`) and decoded tolerantly (`1e9999`, `NaN`, `Infinity`,
//!   integers, any key order, extra keys). Pure; no I/O.
//! - [`client`] (cargo feature `client`): an async `GET /render` client with basic auth,
//!   timeouts, no `https` → `http` downgrade, and errors that name the target but never the
//!   credentials.

pub mod model;

#[cfg(feature = "client")]
pub mod client;

pub use model::{from_json, to_json, ModelError, RenderedSeries};

#[cfg(feature = "client")]
pub use client::{RenderClient, RenderError};
