//! Test kit shared by the integration tests: a line-counting TCP receiver, a real
//! carbon-cache, a MongoDB wire-protocol test server and the agent binary as a child process.
//! Each test file uses a part of it.
#![allow(dead_code)]

pub mod agent;
pub mod carbon;
#[cfg(feature = "mongodb")]
pub mod mongo_wire;
pub mod receiver;

use std::time::Duration;

/// Poll `cond` every 10 ms until it holds; panic with `what` after `limit`. Bounds a wait, never
/// asserts a duration.
pub async fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let end = tokio::time::Instant::now() + limit;
    while !cond() {
        if tokio::time::Instant::now() > end {
            panic!("timed out after {limit:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port on 127.0.0.1")
}

/// `assert_eq!` for long line lists: reports the lengths and the first difference only.
#[track_caller]
pub fn assert_lines_eq(got: &[String], want: &[String], what: &str) {
    if got == want {
        return;
    }
    let first = got
        .iter()
        .zip(want)
        .position(|(g, w)| g != w)
        .unwrap_or(got.len().min(want.len()));
    let ctx = |v: &[String]| v[first.saturating_sub(2)..(first + 3).min(v.len())].to_vec();
    panic!(
        "{what}: got {} lines, want {}; first difference at index {first}:\n got: {:?}\nwant: {:?}",
        got.len(),
        want.len(),
        ctx(got),
        ctx(want)
    );
}
