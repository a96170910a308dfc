//! A counting global allocator for the allocation tests: every allocation and reallocation in the
//! process (any thread) increments `ALLOCS`. Included by each test binary that installs it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};

pub struct Counting;
pub static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: delegates to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, SeqCst);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, SeqCst);
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static A: Counting = Counting;

/// Allocations made while `f` runs (by any thread).
pub fn allocations_during<R>(f: impl FnOnce() -> R) -> (u64, R) {
    let before = ALLOCS.load(SeqCst);
    let r = f();
    (ALLOCS.load(SeqCst) - before, r)
}

/// Waits until no thread in the process has allocated for three looks 20 ms apart (at most 5 s):
/// threads that finish their start-up after `build` returns (glommio's blocking-pool threads
/// allocate their channel's wait slot when they first block, whenever the machine schedules
/// them) are done before a window is measured. They are not the hit path.
#[allow(dead_code)] // `tests/alloc_free_scan.rs` includes this file and measures no engine
pub fn settle() {
    let mut last = ALLOCS.load(SeqCst);
    let mut quiet = 0;
    for _ in 0..250 {
        std::thread::sleep(std::time::Duration::from_millis(20));
        let now = ALLOCS.load(SeqCst);
        quiet = if now == last { quiet + 1 } else { 0 };
        if quiet == 3 {
            return;
        }
        last = now;
    }
}
