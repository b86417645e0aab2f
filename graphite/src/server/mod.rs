//! The graphite-web-compatible HTTP API over the embedded [`crate::store`] (cargo feature
//! `http`). What dashboards (Grafana's Graphite datasource) and alerters use, answered in
//! graphite-web 1.1.10's shapes; see `docs/store.md` ("HTTP API").
//!
//! - [`source`]: [`StoreSource`], an [`eval::Source`](crate::eval::Source) over
//!   [`Store::fetch`](crate::store::Store::fetch), with the per-request points limit.
//! - [`output`]: the `format=json` / `csv` bodies (maxDataPoints consolidation, noNullPoints)
//!   and the find/expand JSON, byte-for-byte as graphite-web writes them. Pure.
//! - [`remote`]: the `format=pickle` / `msgpack` answers a graphite-web cluster front end
//!   reads from its nodes (`CLUSTER_SERVERS`).
//! - [`carbonapi`]: carbonapi's backend protocols (`carbonapi_v2_pb`, `carbonapi_v3_pb`,
//!   `/_internal/capabilities/`) over go-graphite's `.proto` files (`graphite/proto/`).
//! - [`http`]: the axum router, parameters, authentication, limits and errors.
//! - [`events`]: graphite-web's events API (`/events/`, `/events/get_data`) over the store.
//! - [`tags`]: graphite-web's `/tags` API (tag lists, values, findSeries, auto-complete).
//! - [`work`]: the bounded pool every request's work runs in (slots, queue timeout,
//!   deadline, cancellation when the client leaves or the server stops).
//! - [`listen`]: the HTTP listener (connection cap, header read timeout, shutdown grace).
//!
//! Every limit, its default and what happens at it: `docs/limits.md`.

pub mod carbonapi;
pub mod events;
pub mod http;
pub mod listen;
pub mod output;
pub mod remote;
pub mod source;
pub mod tags;
pub mod work;

pub use http::{api, api_with, router, serve, Auth, HttpConfig, Limits};
pub use source::StoreSource;
