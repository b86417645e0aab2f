//! carbide's alerter. Not built yet: see the alerter issue. This crate is a workspace member
//! so the layout is fixed from the start.
