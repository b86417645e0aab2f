//! The embedded store (work in progress).
pub mod index;
pub mod schema;
