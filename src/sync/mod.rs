//! The building blocks below the engine and the audit writer: the only hand-written lock-free
//! structures (`ring`, a bounded MPMC ring of `u32` with `peek`; `stack`, a bounded LIFO of
//! `u32` with an ABA tag), and `futex`, how threads sleep and wake. They import nothing of
//! warden's.
//!
//! Atomics shim: std's atomics normally, loom's with the `loom` feature, so `ring` and `stack`
//! are model-checked by `tests/loom.rs`.

pub mod futex;
#[doc(hidden)]
pub mod ring;
#[doc(hidden)]
pub mod stack;

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

/// CPU ids this process may run on.
pub fn available_cpus() -> Vec<usize> {
    match core_affinity::get_core_ids() {
        Some(ids) if !ids.is_empty() => ids.into_iter().map(|c| c.id).collect(),
        _ => (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect(),
    }
}
