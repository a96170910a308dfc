//! A bounded lock-free LIFO of `u32` indices (the free list of reply slots).
//!
//! A Treiber stack whose links live in an array of atomics and whose head word packs
//! `[tag:24][count:20][index:20]`: the tag defeats ABA (a CAS against a head that was popped and
//! pushed back in between fails because the tag moved), the count lets admission control read
//! how many indices are free from the same word it CASes, and LIFO order hands out the slot
//! used most recently, whose cache lines are still warm. No `unsafe`.
//!
//! Invariants: at most 2^20 - 1 indices; an index is in the stack at most once if callers push
//! only indices they popped (model-checked in `tests/loom.rs`); `pop` on empty returns `None`.

use crate::sync::{AtomicU32, AtomicU64};
use crossbeam_utils::CachePadded;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

const IDX_BITS: u32 = 20;
const NIL: u64 = (1 << IDX_BITS) - 1;
/// Largest number of indices a stack can hold.
pub const MAX_INDICES: usize = NIL as usize;

#[inline]
fn pack(tag: u64, count: u64, idx: u64) -> u64 {
    (tag << 40) | (count << 20) | idx
}
#[inline]
fn unpack(w: u64) -> (u64, u64, u64) {
    (w >> 40, (w >> 20) & NIL, w & NIL)
}

pub struct Stack {
    head: CachePadded<AtomicU64>,
    next: Box<[AtomicU32]>,
    base: u32,
}

impl Stack {
    /// A stack that manages indices `base .. base + len`, initially all present (lowest on top).
    pub fn new_full(base: u32, len: usize) -> Stack {
        assert!(
            len <= MAX_INDICES,
            "a stack holds at most {MAX_INDICES} indices"
        );
        let next = (0..len)
            .map(|i| {
                AtomicU32::new(if i + 1 < len {
                    (i + 1) as u32
                } else {
                    NIL as u32
                })
            })
            .collect();
        let head = if len == 0 { NIL } else { 0 };
        Stack {
            head: CachePadded::new(AtomicU64::new(pack(0, len as u64, head))),
            next,
            base,
        }
    }

    pub fn owns(&self, idx: u32) -> bool {
        idx.wrapping_sub(self.base) < self.next.len() as u32
    }

    /// Number of free indices now.
    pub fn len(&self) -> usize {
        unpack(self.head.load(Relaxed)).1 as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Pops an index if more than `keep` are present (`keep` reserves a share for others).
    pub fn pop_above(&self, keep: usize) -> Option<u32> {
        let mut h = self.head.load(Acquire);
        loop {
            let (tag, count, idx) = unpack(h);
            if idx == NIL || count as usize <= keep {
                return None;
            }
            let nxt = self.next[idx as usize].load(Relaxed) as u64;
            let new = pack((tag + 1) & 0xff_ffff, count - 1, nxt);
            match self.head.compare_exchange_weak(h, new, Acquire, Acquire) {
                Ok(_) => return Some(self.base + idx as u32),
                Err(cur) => {
                    h = cur;
                    crate::sync::spin_hint();
                }
            }
        }
    }

    pub fn pop(&self) -> Option<u32> {
        self.pop_above(0)
    }

    /// Returns an index obtained from `pop` on this stack.
    pub fn push(&self, global_idx: u32) {
        debug_assert!(self.owns(global_idx));
        let idx = global_idx - self.base;
        let mut h = self.head.load(Relaxed);
        loop {
            let (tag, count, top) = unpack(h);
            self.next[idx as usize].store(top as u32, Relaxed);
            let new = pack((tag + 1) & 0xff_ffff, count + 1, idx as u64);
            match self.head.compare_exchange_weak(h, new, Release, Relaxed) {
                Ok(_) => return,
                Err(cur) => {
                    h = cur;
                    crate::sync::spin_hint();
                }
            }
        }
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU8;
    use std::sync::Arc;

    #[test]
    fn lifo_count_and_reserve() {
        let s = Stack::new_full(100, 4);
        assert_eq!(s.len(), 4);
        assert_eq!(s.pop(), Some(100));
        assert_eq!(s.pop(), Some(101));
        s.push(100);
        assert_eq!(s.pop(), Some(100));
        assert_eq!(s.len(), 2);
        assert_eq!(s.pop_above(2), None);
        assert_eq!(s.pop_above(1), Some(102));
        assert_eq!(s.pop(), Some(103));
        assert_eq!(s.pop(), None);
        assert!(s.owns(103) && !s.owns(104) && !s.owns(99));
    }

    #[test]
    fn concurrent_pop_push_never_duplicates() {
        let n = 64;
        let s = Arc::new(Stack::new_full(0, n));
        let owned = Arc::new((0..n).map(|_| AtomicU8::new(0)).collect::<Vec<_>>());
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let (s, owned) = (s.clone(), owned.clone());
                std::thread::spawn(move || {
                    for _ in 0..50_000 {
                        if let Some(i) = s.pop() {
                            assert_eq!(owned[i as usize].fetch_add(1, Relaxed), 0, "double pop");
                            owned[i as usize].fetch_sub(1, Relaxed);
                            s.push(i);
                        }
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(s.len(), n);
    }
}
