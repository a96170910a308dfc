//! The monotonic clock of the hot path: nanoseconds since the first call in this process.
//! `Instant::now` reads the vDSO clock (no syscall).

use std::sync::OnceLock;
use std::time::Instant;

static ANCHOR: OnceLock<Instant> = OnceLock::new();

#[inline]
pub fn now_ns() -> u64 {
    ANCHOR.get_or_init(Instant::now).elapsed().as_nanos() as u64
}
