//! The evaluation pipeline: evaluate → state → route → outbox.
//!
//! - [`evaluate`]: the [`evaluate::Backend`] trait (render API now, in-process store later),
//!   one bounded, spread, timed-out round of fetches, and observations per series.
//! - [`state`]: the per-series level machine and its SQLite rows, history and silences.
//! - [`route`]: notifications, routing and silences.
//! - [`engine`]: one cycle end to end; the run loop.

pub mod engine;
pub mod evaluate;
pub mod route;
pub mod state;
