//! A bounded multi-producer ring of `u32` slot indices with a consumer-side `peek`.
//!
//! This is Dmitry Vyukov's bounded MPMC queue: every cell carries a sequence number that says
//! whose turn it is, so producers and consumers claim cells with one CAS on `tail` / `head` and
//! publish with one release store. Values are `u32` held in atomics, so the structure needs no
//! `unsafe` at all. Used as the per-core priority rings (many producers, one consumer: the owning
//! core) and as the per-priority overflow injectors (many producers, many stealers).
//!
//! Invariants:
//! - capacity is a power of two, fixed at construction; `push` on a full ring fails at once and
//!   returns the value (never blocks, never grows);
//! - every pushed value is popped exactly once (model-checked in `tests/loom.rs`);
//! - `peek` is exact when the caller is the only consumer; with several consumers it is a hint.

use crate::sync::{AtomicU32, AtomicUsize};
use crossbeam_utils::CachePadded;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

struct Cell {
    seq: AtomicUsize,
    val: AtomicU32,
}

pub struct Ring {
    cells: Box<[Cell]>,
    mask: usize,
    head: CachePadded<AtomicUsize>,
    tail: CachePadded<AtomicUsize>,
}

impl Ring {
    /// A ring holding at least `capacity` values (rounded up to a power of two, minimum 2).
    pub fn new(capacity: usize) -> Ring {
        let cap = capacity.max(2).next_power_of_two();
        let cells = (0..cap)
            .map(|i| Cell {
                seq: AtomicUsize::new(i),
                val: AtomicU32::new(0),
            })
            .collect();
        Ring {
            cells,
            mask: cap - 1,
            head: CachePadded::new(AtomicUsize::new(0)),
            tail: CachePadded::new(AtomicUsize::new(0)),
        }
    }

    pub fn capacity(&self) -> usize {
        self.mask + 1
    }

    /// Appends `v`; `Err(v)` when the ring is full.
    pub fn push(&self, v: u32) -> Result<(), u32> {
        let mut pos = self.tail.load(Relaxed);
        loop {
            let cell = &self.cells[pos & self.mask];
            let seq = cell.seq.load(Acquire);
            let dif = seq.wrapping_sub(pos) as isize;
            if dif == 0 {
                match self
                    .tail
                    .compare_exchange_weak(pos, pos.wrapping_add(1), Relaxed, Relaxed)
                {
                    Ok(_) => {
                        cell.val.store(v, Relaxed);
                        cell.seq.store(pos.wrapping_add(1), Release);
                        return Ok(());
                    }
                    Err(cur) => pos = cur,
                }
            } else if dif < 0 {
                return Err(v);
            } else {
                crate::sync::spin_hint();
                pos = self.tail.load(Relaxed);
            }
        }
    }

    /// Removes the oldest value, or `None` when empty.
    pub fn pop(&self) -> Option<u32> {
        let mut pos = self.head.load(Relaxed);
        loop {
            let cell = &self.cells[pos & self.mask];
            let seq = cell.seq.load(Acquire);
            let dif = seq.wrapping_sub(pos.wrapping_add(1)) as isize;
            if dif == 0 {
                match self
                    .head
                    .compare_exchange_weak(pos, pos.wrapping_add(1), Relaxed, Relaxed)
                {
                    Ok(_) => {
                        let v = cell.val.load(Relaxed);
                        cell.seq
                            .store(pos.wrapping_add(self.mask).wrapping_add(1), Release);
                        return Some(v);
                    }
                    Err(cur) => pos = cur,
                }
            } else if dif < 0 {
                return None;
            } else {
                crate::sync::spin_hint();
                pos = self.head.load(Relaxed);
            }
        }
    }

    /// The oldest value without removing it (exact for a single consumer).
    pub fn peek(&self) -> Option<u32> {
        let pos = self.head.load(Relaxed);
        let cell = &self.cells[pos & self.mask];
        if cell.seq.load(Acquire) == pos.wrapping_add(1) {
            Some(cell.val.load(Relaxed))
        } else {
            None
        }
    }

    /// Number of values queued (a snapshot; exact when no one is pushing or popping).
    pub fn len(&self) -> usize {
        let t = self.tail.load(Acquire);
        let h = self.head.load(Acquire);
        t.wrapping_sub(h).min(self.capacity())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn fifo_bounded_and_peek() {
        let r = Ring::new(3);
        assert_eq!(r.capacity(), 4);
        assert_eq!(r.peek(), None);
        for i in 0..4 {
            r.push(i).unwrap();
        }
        assert_eq!(r.push(9), Err(9));
        assert_eq!(r.len(), 4);
        assert_eq!(r.peek(), Some(0));
        for i in 0..4 {
            assert_eq!(r.pop(), Some(i));
        }
        assert_eq!(r.pop(), None);
        // wrap around many times
        for i in 0..1000 {
            r.push(i).unwrap();
            assert_eq!(r.peek(), Some(i));
            assert_eq!(r.pop(), Some(i));
        }
    }

    #[test]
    fn many_producers_many_consumers_exactly_once() {
        let r = Arc::new(Ring::new(64));
        let producers = 4;
        let per = 20_000u32;
        let seen = Arc::new(
            (0..producers * per)
                .map(|_| AtomicU32::new(0))
                .collect::<Vec<_>>(),
        );
        let mut hs = vec![];
        for p in 0..producers {
            let r = r.clone();
            hs.push(std::thread::spawn(move || {
                for i in 0..per {
                    let mut v = p * per + i;
                    while let Err(back) = r.push(v) {
                        v = back;
                        std::thread::yield_now();
                    }
                }
            }));
        }
        let got = Arc::new(AtomicUsize::new(0));
        for _ in 0..2 {
            let (r, seen, got) = (r.clone(), seen.clone(), got.clone());
            hs.push(std::thread::spawn(move || {
                while got.load(Relaxed) < (producers * per) as usize {
                    if let Some(v) = r.pop() {
                        seen[v as usize].fetch_add(1, Relaxed);
                        got.fetch_add(1, Relaxed);
                    } else {
                        std::thread::yield_now();
                    }
                }
            }));
        }
        for h in hs {
            h.join().unwrap();
        }
        assert!(seen.iter().all(|c| c.load(Relaxed) == 1));
    }
}
