//! Test servers shared by the end-to-end tests.
pub mod mongo_wire;
