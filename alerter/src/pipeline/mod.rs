//! The evaluation pipeline: evaluate → state → route (the run loop around it is
//! [`crate::daemon`]; what it enqueues, [`crate::outbox`] delivers).
//!
//! - [`evaluate`]: the [`evaluate::Backend`] trait (render API now, in-process store later),
//!   one bounded, spread, timed-out round of fetches, and observations per series.
//! - [`state`]: the per-series level machine and its SQLite rows, history and silences.
//! - [`route`]: notifications, routing and silences.
//! - [`engine`]: one cycle end to end: fetch, states, due messages, one transaction.

pub mod engine;
pub mod evaluate;
pub mod route;
pub mod state;
