//! The render entry point: a target (with `template` variables) and a window, evaluated by
//! `eval::render_with` over an in-memory source under a small budget and a deadline.
//!
//! Input: byte 0 picks the window, byte 1 a template variable value, the rest is the target
//! (UTF-8). Nothing may panic, overflow the stack or hang (`-timeout`), the budget's
//! high-water mark never passes its limit, and the bytes the render allocates (a counting
//! allocator, shared with `tests/hostile_eval.rs` in `tests/budget_kit/`) stay within the
//! budget × bytes per point plus a fixed slack: zero budget overruns.
#![no_main]

#[path = "../../tests/budget_kit/mod.rs"]
mod budget_kit;

use std::sync::OnceLock;
use std::time::Duration;

use budget_kit::{byte_limit, peak_of};
use graphite::eval::{render_with, Budget, EvalError, MemorySource};
use graphite::series::Series;
use libfuzzer_sys::fuzz_target;

const MAX_POINTS: u64 = 100_000;
const MAX_NAME_BYTES: u64 = 1 << 20;
const DAY: i64 = 86_400;

fn source() -> &'static MemorySource {
    static SRC: OnceLock<MemorySource> = OnceLock::new();
    SRC.get_or_init(|| {
        let mk = |name: &str, step: i64, f: &dyn Fn(usize) -> Option<f64>| {
            let n = (DAY / step) as usize;
            Series::new(name, 0, DAY, step, (0..n).map(f).collect())
        };
        MemorySource::new(vec![
            mk("a.b", 60, &|i| Some(i as f64)),
            mk("a.c", 60, &|i| {
                (i % 3 != 0).then_some((i % 17) as f64 - 8.0)
            }),
            mk("a.d", 60, &|_| None),
            mk("a.e.f", 300, &|i| Some(((i as f64) / 10.0).sin())),
            mk("b.x", 10, &|i| Some((i % 5) as f64)),
            mk("cpu;host=h1;dc=x", 60, &|i| Some((i % 100) as f64)),
            mk("cpu;host=h2;dc=y", 60, &|i| Some((i % 7) as f64)),
        ])
    })
}

const WINDOWS: &[(i64, i64)] = &[
    (0, DAY),
    (DAY - 3600, DAY),
    (0, 10 * 365 * DAY),
    (-DAY, 0),
    (DAY / 2, DAY / 2 + 1),
    (-(1 << 40), 1 << 40),
    (0, 60),
    (DAY, 2 * DAY),
];

const VARS: &[&str] = &["a.b", "1", "-1", "'x'", "a.*", "1000000000", "(.*)", ""];

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let (from, until) = WINDOWS[data[0] as usize % WINDOWS.len()];
    let var = VARS[data[1] as usize % VARS.len()];
    let Ok(target) = std::str::from_utf8(&data[2..]) else {
        return;
    };
    let Ok(expr) = graphite::expr::parse_with_vars(target, &[("x", var)]) else {
        return;
    };
    let src = source();
    let budget = Budget::new()
        .with_max_points(MAX_POINTS)
        .with_max_name_bytes(MAX_NAME_BYTES)
        .with_timeout(Duration::from_secs(2));
    let (r, peak) = peak_of(|| render_with(&[expr], from, until, until, src, &budget));
    assert!(
        budget.high_water() <= MAX_POINTS,
        "high-water {} over the budget",
        budget.high_water()
    );
    let limit = byte_limit(MAX_POINTS, MAX_NAME_BYTES);
    assert!(
        peak <= limit,
        "allocated {peak} bytes at peak, over the {limit} a budget of {MAX_POINTS} points allows"
    );
    if let Err(e) = &r {
        assert!(!matches!(e, EvalError::NeedData(_)), "leaked {e:?}");
        let _ = e.to_string();
    }
    drop(r);
});
