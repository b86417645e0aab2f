//! What `hostile_eval.rs` and the `render` fuzz target (`graphite/fuzz`, which includes this
//! file by path) share: a counting global allocator (bytes live on the current thread and
//! their peak) and the memory bound a render under a budget must keep.
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Bytes one budget point may stand for (docs/limits.md has the measured figure, well under
/// this).
pub const BYTES_PER_POINT: i64 = 64;
/// Fixed overhead a render may allocate beyond its budget (parsing, plans, maps, regexes).
pub const SLACK: i64 = 16 << 20;

/// The most bytes a render under a budget of `max_points` points and `max_name_bytes` name
/// bytes may have live at its peak.
pub fn byte_limit(max_points: u64, max_name_bytes: u64) -> i64 {
    max_points as i64 * BYTES_PER_POINT + 4 * max_name_bytes as i64 + SLACK
}

/// Run `f` and return its result with the peak of the bytes it had live on this thread
/// beyond what was live when it started.
pub fn peak_of<R>(f: impl FnOnce() -> R) -> (R, i64) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let r = f();
    let peak = PEAK.with(Cell::get) - base;
    (r, peak)
}

/// Counts the bytes live on the current thread, and their peak.
struct Counting;

thread_local! {
    static LIVE: Cell<i64> = const { Cell::new(0) };
    static PEAK: Cell<i64> = const { Cell::new(0) };
}

fn account(delta: i64) {
    let _ = LIVE.try_with(|live| {
        let v = live.get() + delta;
        live.set(v);
        let _ = PEAK.try_with(|p| {
            if v > p.get() {
                p.set(v);
            }
        });
    });
}

// SAFETY: every call is forwarded to the system allocator unchanged; the accounting touches
// only const-initialised thread-locals without destructors (no allocation, no re-entry).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = System.alloc(l);
        if !p.is_null() {
            account(l.size() as i64);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(l);
        if !p.is_null() {
            account(l.size() as i64);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l);
        account(-(l.size() as i64));
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let q = System.realloc(p, l, new);
        if !q.is_null() {
            account(new as i64 - l.size() as i64);
        }
        q
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;
