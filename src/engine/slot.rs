//! Reply slots: preallocated, fixed-size cells through which a request travels from a submitting
//! thread to a core and its verdict travels back.
//!
//! A slot holds the encoded request (wire format of `request.rs`) and, later, the verdict. Its
//! `state` word is the protocol; whoever the state names owns the buffers:
//!
//! ```text
//!  FREE ──pool.acquire──▶ CLAIMED ──encode, QUEUED, ring push──▶ QUEUED
//!  QUEUED ──waiter sleeps──▶ WAIT_THREAD / WAIT_ASYNC
//!  QUEUED | WAIT_* ──core writes verdict, swap──▶ DONE (WAKING while an async waker is called)
//!  QUEUED | WAIT_* ──caller gives up (timeout, future dropped)──▶ ABANDONED
//!  DONE ──waiter reads verdict──▶ FREE, back to the pool
//!  ABANDONED ──core finishes it──▶ FREE, back to the pool (by the core)
//! ```
//!
//! Invariants: between `acquire` and the ring push only the submitter touches `buf`; between
//! the ring pop and the swap to DONE only the core touches `buf` and `verdict`; after DONE only
//! the waiter reads `verdict`. The ring push/pop (release/acquire) and the state swap
//! (acq-rel) order those hand-overs. Every accepted request gets exactly one verdict, read by
//! exactly one waiter, or is reclaimed by the core if the waiter left.

use crate::sync::stack::Stack;
use crate::types::Verdict;
use atomic_waker::AtomicWaker;
use std::cell::{Cell, UnsafeCell};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering::*};

pub(crate) const FREE: u32 = 0;
pub(crate) const CLAIMED: u32 = 1;
pub(crate) const QUEUED: u32 = 2;
pub(crate) const WAIT_THREAD: u32 = 3;
pub(crate) const WAIT_ASYNC: u32 = 4;
pub(crate) const DONE: u32 = 5;
pub(crate) const ABANDONED: u32 = 6;
pub(crate) const WAKING: u32 = 7;

#[repr(align(64))]
pub(crate) struct Slot {
    pub state: AtomicU32,
    pub len: AtomicU32,
    /// Operation kind, argument and classification (`kind | arg << 8 | class << 24`), copied
    /// from the header by the submitter so a cache hit never touches the request buffer.
    pub meta: AtomicU32,
    pub enqueued_ns: AtomicU64,
    /// Cache key of the encoded request, computed by the submitter while the bytes were hot in
    /// its cache (`key_lo`, `key_hi`: the keyed request hash; `tenant`: the keyed tenant tag).
    pub key_lo: AtomicU64,
    pub key_hi: AtomicU64,
    pub key_tenant: AtomicU64,
    /// Hash of (tenant, agent) (`KeyedHash::agent`), for quarantine and behaviour baselines
    /// without decoding the request.
    pub agent: AtomicU64,
    /// HSM hand-off: `rounds << 8 | outcome`. Written by the owner of the slot: the core when it
    /// hands a token tag to the HSM core (rounds), the HSM core before it pushes the slot back
    /// onto the core's resume ring (outcome). Zero for a request that never went there.
    pub hsm: AtomicU32,
    /// 0, or the shared-memory client this request came from (`ipc::shm::tag`): written by the
    /// submitter before QUEUED; the core that completes the slot delivers the verdict there
    /// and frees the slot (no waiter).
    pub ipc: AtomicU64,
    pub waker: AtomicWaker,
    /// This slot's request buffer, `buf_bytes` long, inside the pool's `Region`.
    buf: *mut u8,
    buf_bytes: usize,
    verdict: UnsafeCell<Verdict>,
}

// SAFETY: `buf` and `verdict` are only accessed by the party the `state` protocol above names
// as owner, and every hand-over is ordered by a release/acquire pair (ring push/pop, state
// swap), so no two threads ever access them concurrently. `buf` points into the pool's region,
// which lives as long as the pool (and so as every slot), and no two slots' buffers overlap.
unsafe impl Sync for Slot {}
// SAFETY: as for `Sync`; the pointer is to memory owned by the pool, not by a thread.
unsafe impl Send for Slot {}

impl Slot {
    /// The encoding buffer. Caller: the submitter that claimed this slot (state CLAIMED).
    ///
    /// # Safety
    /// The caller must own the slot in state CLAIMED; no other reference to `buf` may exist.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn buf_mut(&self) -> &mut [u8] {
        // SAFETY: exclusive ownership per the caller's contract; `buf..buf + buf_bytes` is this
        // slot's part of the live region.
        unsafe { std::slice::from_raw_parts_mut(self.buf, self.buf_bytes) }
    }

    /// The encoded request. Caller: the core that popped this slot from a ring.
    ///
    /// # Safety
    /// The caller must have popped this slot's index from a ring and not yet completed it.
    pub(crate) unsafe fn wire(&self) -> &[u8] {
        let len = self.len.load(Relaxed) as usize;
        // SAFETY: the submitter finished writing before the ring push (release), which our pop
        // acquired; nobody writes `buf` until the slot is FREE again. The length is clamped to
        // the buffer, so a bad `len` cannot read past it.
        unsafe { std::slice::from_raw_parts(self.buf, len.min(self.buf_bytes)) }
    }

    /// # Safety
    /// The caller must be the core processing this slot, before it swaps the state to DONE.
    pub(crate) unsafe fn set_verdict(&self, v: Verdict) {
        // SAFETY: only the processing core writes the verdict, before publishing DONE.
        unsafe { *self.verdict.get() = v }
    }

    /// # Safety
    /// The caller must be the waiter and must have observed DONE (acquire).
    pub(crate) unsafe fn verdict(&self) -> Verdict {
        // SAFETY: the core's write happened before its release of DONE, which we acquired.
        unsafe { *self.verdict.get() }
    }
}

/// The slots' request buffers: one private anonymous mapping whose pages the kernel makes on
/// first write. Every slot can take the largest request the limits admit, but a slot costs
/// resident memory only for the bytes its requests have written: 4,096 slots of 77 KiB are
/// 315 MiB of address space and, for small requests, one page each. A slot that once held a
/// large request keeps its pages (no syscall on the request path to give them back).
struct Region {
    ptr: *mut u8,
    bytes: usize,
}

// SAFETY: the region is plain memory; which thread may touch which slot's part of it is the
// slot protocol's business (see `Slot`).
unsafe impl Send for Region {}
// SAFETY: as above.
unsafe impl Sync for Region {}

impl Region {
    fn new(bytes: usize) -> Result<Region, String> {
        let bytes = bytes.max(1);
        // SAFETY: a fresh anonymous mapping; no existing memory is affected. Checked below.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(format!(
                "cannot map {bytes} bytes for the reply slots' buffers: {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(Region {
            ptr: ptr.cast(),
            bytes,
        })
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once; the slots pointing into it are
        // dropped with the pool that owns this region.
        unsafe { libc::munmap(self.ptr.cast(), self.bytes) };
    }
}

/// All slots and their free lists, sharded so submitting threads rarely share a cache line.
pub(crate) struct SlotPool {
    pub slots: Box<[Slot]>,
    /// Owns the memory the slots' `buf` pointers point into; dropped after them.
    _region: Region,
    shards: Box<[Stack]>,
    per_shard: usize,
    /// Per-shard number of slots that sheddable priorities may not take.
    reserve: usize,
}

static NEXT_HINT: AtomicUsize = AtomicUsize::new(0);
thread_local! {
    static HINT: Cell<usize> = const { Cell::new(usize::MAX) };
}

fn thread_hint() -> usize {
    HINT.with(|h| {
        let v = h.get();
        if v != usize::MAX {
            return v;
        }
        let v = NEXT_HINT.fetch_add(1, Relaxed);
        h.set(v);
        v
    })
}

impl SlotPool {
    pub(crate) fn new(
        count: usize,
        buf_bytes: usize,
        shards: usize,
        reserved_pct: u8,
    ) -> Result<SlotPool, String> {
        let shards = shards.clamp(1, count.max(1));
        let per_shard = count.div_ceil(shards);
        // Each buffer starts on a cache line of its own.
        let stride = buf_bytes.div_ceil(64) * 64;
        let total = stride
            .checked_mul(count)
            .ok_or_else(|| format!("{count} slots of {buf_bytes} bytes overflow"))?;
        let region = Region::new(total)?;
        let slots = (0..count)
            .map(|i| Slot {
                state: AtomicU32::new(FREE),
                len: AtomicU32::new(0),
                meta: AtomicU32::new(0),
                enqueued_ns: AtomicU64::new(0),
                key_lo: AtomicU64::new(0),
                key_hi: AtomicU64::new(0),
                key_tenant: AtomicU64::new(0),
                agent: AtomicU64::new(0),
                hsm: AtomicU32::new(0),
                ipc: AtomicU64::new(0),
                waker: AtomicWaker::new(),
                // SAFETY: `i * stride + buf_bytes <= count * stride = total`: inside the region.
                buf: unsafe { region.ptr.add(i * stride) },
                buf_bytes,
                verdict: UnsafeCell::new(Verdict::default()),
            })
            .collect();
        let stacks = (0..shards)
            .map(|s| {
                let base = s * per_shard;
                let len = per_shard.min(count.saturating_sub(base));
                Stack::new_full(base as u32, len)
            })
            .collect();
        Ok(SlotPool {
            slots,
            _region: region,
            shards: stacks,
            per_shard,
            reserve: per_shard * reserved_pct as usize / 100,
        })
    }

    /// Takes a free slot, preferring this thread's shard. `sheddable` requests may not take
    /// the reserved share of any shard.
    #[inline]
    pub(crate) fn acquire(&self, sheddable: bool) -> Option<u32> {
        let keep = if sheddable { self.reserve } else { 0 };
        let n = self.shards.len();
        let start = thread_hint() % n;
        for i in 0..n {
            let s = &self.shards[(start + i) % n];
            if let Some(idx) = s.pop_above(keep) {
                return Some(idx);
            }
        }
        None
    }

    /// Returns a slot (its state must already be FREE).
    #[inline]
    pub(crate) fn release(&self, idx: u32) {
        self.shards[idx as usize / self.per_shard].push(idx);
    }

    pub(crate) fn free(&self) -> usize {
        self.shards.iter().map(|s| s.len()).sum()
    }

    /// True when no slot is claimed, queued or being waited on (all FREE or DONE).
    pub(crate) fn settled(&self) -> bool {
        self.slots
            .iter()
            .all(|s| matches!(s.state.load(SeqCst), FREE | DONE))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every slot's buffer is its own, whole, inside the region: filling each with its index
    /// and reading all back finds no overlap and no short buffer (odd sizes included, so the
    /// stride's rounding is exercised).
    #[test]
    fn slot_buffers_are_disjoint_and_whole() {
        for (count, bytes) in [(1, 1), (7, 100), (64, 4097), (3, 77 * 1024)] {
            let pool = SlotPool::new(count, bytes, 2, 25).unwrap();
            for (i, s) in pool.slots.iter().enumerate() {
                // SAFETY: the test owns every slot; no other reference to any buffer exists.
                let b = unsafe { s.buf_mut() };
                assert_eq!(b.len(), bytes);
                b.fill(i as u8);
                s.len.store(bytes as u32 + 10, Relaxed);
            }
            for (i, s) in pool.slots.iter().enumerate() {
                // SAFETY: as above; `len` past the buffer is clamped to it.
                let w = unsafe { s.wire() };
                assert_eq!(w.len(), bytes);
                assert!(
                    w.iter().all(|&x| x == i as u8),
                    "slot {i} of {count}×{bytes}"
                );
            }
        }
    }
}
