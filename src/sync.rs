//! Atomics shim: std's atomics normally, loom's with the `loom` feature, so the hand-written
//! lock-free structures (`ring`, `stack`) are model-checked by `tests/loom.rs`.

#[cfg(feature = "loom")]
pub(crate) use loom::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize};
#[cfg(not(feature = "loom"))]
pub(crate) use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize};

#[cfg(feature = "loom")]
#[inline]
pub(crate) fn spin_hint() {
    loom::thread::yield_now();
}
#[cfg(not(feature = "loom"))]
#[inline]
pub(crate) fn spin_hint() {
    std::hint::spin_loop();
}
