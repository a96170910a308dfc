//! The monotonic clock of the hot path: nanoseconds since the first call in this process.
//! `Instant::now` reads the vDSO clock (no syscall).

use std::sync::OnceLock;
use std::time::Instant;

static ANCHOR: OnceLock<Instant> = OnceLock::new();

#[inline]
pub fn now_ns() -> u64 {
    ANCHOR.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// Wall-clock time, nanoseconds since the Unix epoch (0 before 1970). Control plane: records
/// and file names, never the request path.
pub fn wall_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
