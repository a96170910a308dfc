//! The cores' side of shared-memory clients (`warden serve`): a core takes requests off the
//! rings of the clients it is home to and submits them like any in-process caller, and the core
//! that completes a client's request writes the verdict into that client's slot.
//!
//! Invariants:
//! - the client's bytes are hostile and may change while read: the ring's tail, each entry and
//!   each length are read once and checked against what the server keeps privately (its own
//!   head, the in-flight bit set, the geometry); a request is copied into the core's own buffer
//!   before anything decodes it;
//! - a client that breaks the ring protocol is closed (only it); a request the server took off
//!   the ring is always answered in the client's slot, unless the client is gone;
//! - the engine slot of a client's request is freed by the core that completes it (there is no
//!   waiter in this process);
//! - the mapping is never touched once the accept thread may unmap it: delivery counts itself
//!   in `active` and the request in `pending` until its last store.

use super::shared::Shared;
use crate::ipc::shm::{self, Cell, Table, C_CLOSING, C_LIVE};
use crate::sync::futex;
use crate::types::{DenyReason, Verdict};
use std::sync::atomic::Ordering::*;

/// Takes up to `budget` requests off the rings of the clients whose home is `core`; returns how
/// many it took.
pub(crate) fn ingest(
    sh: &Shared,
    t: &Table,
    core: usize,
    scratch: &mut [u8],
    budget: usize,
    start: usize,
) -> usize {
    let mut n = 0;
    let cells = t.cells.len();
    // Round robin from `start`, at most PER_CLIENT a client a step, so one busy client (or one
    // refilling its ring with requests denied at once) cannot starve the others.
    for k in 0..cells {
        let ci = (start + k) % cells;
        let cell = &t.cells[ci];
        let Some(state) = mine(cell, core) else {
            continue;
        };
        if state == C_CLOSING {
            let ack = cell.generation.load(Relaxed).wrapping_add(1);
            if cell.home_stopped.load(Relaxed) != ack {
                cell.home_stopped.store(ack, Release);
            }
            continue;
        }
        // Awake: a client that still reads "sleeping" (new, or set while this core slept) would
        // ring the doorbell on every push.
        let m = cell.shm();
        let sleeping = m.u32_at(shm::H_CORE_SLEEPING);
        if sleeping.load(Relaxed) != 0 {
            sleeping.store(0, SeqCst);
        }
        if n >= budget {
            break;
        }
        n += ingest_client(sh, t, ci, cell, scratch, (budget - n).min(PER_CLIENT));
    }
    n
}

/// Requests taken from one client's ring in one step at most.
const PER_CLIENT: usize = 16;

/// The cell's state if `core` is its home for the incarnation the state belongs to, read as a
/// consistent snapshot: the generation is bumped when a cell is finished, before it can be
/// reused, and every field of a new incarnation is written before it goes LIVE, so equal
/// generations around the reads mean state and home belong together. `None`: not this core's
/// (or empty).
#[inline]
fn mine(cell: &Cell, core: usize) -> Option<u32> {
    let g1 = cell.generation.load(Acquire);
    let state = cell.state.load(Acquire);
    if state != C_LIVE && state != C_CLOSING {
        return None;
    }
    let home = cell.home.load(Acquire) as usize;
    let g2 = cell.generation.load(Acquire);
    (g1 == g2 && home == core).then_some(state)
}

fn ingest_client(
    sh: &Shared,
    t: &Table,
    ci: usize,
    cell: &Cell,
    scratch: &mut [u8],
    budget: usize,
) -> usize {
    let generation = cell.generation.load(Relaxed);
    cell.take_requests(scratch, budget, |entry, req| {
        let tag = shm::tag(ci, generation, entry);
        let verdict = match req {
            Err(reason) => {
                cell.counters.malformed.fetch_add(1, Relaxed);
                Verdict::deny(reason)
            }
            Ok(_) if t.draining.load(Relaxed) => Verdict::deny(DenyReason::ShuttingDown),
            Ok(req) if !t.tenant_allowed(cell, req.tenant) => {
                cell.counters.tenant_refused.fetch_add(1, Relaxed);
                Verdict::deny(DenyReason::TenantNotPermitted)
            }
            Ok(req) => match super::submit(sh, &req, tag) {
                Ok(_) => return,
                Err(v) => v,
            },
        };
        deliver(t, tag, &verdict);
    })
}

/// Writes `v` into the slot `tag` names, marks it done, wakes its waiter if it sleeps.
pub(crate) fn deliver(t: &Table, tag: u64, v: &Verdict) {
    let (ci, generation, entry) = shm::untag(tag);
    let Some(cell) = t.cells.get(ci) else { return };
    cell.active.fetch_add(1, SeqCst);
    // The cell is not reused while a request of it is pending, so the generation matches; the
    // check keeps a bug elsewhere from writing into another client's memory.
    if cell.generation.load(Acquire) & 0xff_ffff == generation {
        let m = cell.shm();
        let g = cell.geometry();
        if entry < g.slots {
            let off = g.slot_offset(entry);
            m.copy_in(off + shm::VERDICT_OFFSET, &shm::encode_verdict(v));
            cell.counters.verdicts.fetch_add(1, Relaxed);
            if v.reason != DenyReason::None {
                cell.counters.denied.fetch_add(1, Relaxed);
            }
            // Free for resubmission before DONE is visible: an honest client reuses the slot
            // only after it saw DONE.
            cell.inflight[entry as usize / 64].fetch_and(!(1u64 << (entry % 64)), AcqRel);
            let state = m.u32_at(off);
            if state.swap(shm::S_DONE, AcqRel) == shm::S_SLEEPING {
                futex::wake_shared(state, i32::MAX);
                cell.counters.wakeups_sent.fetch_add(1, Relaxed);
            }
            // Ordered after the DONE swap against the client's store of H_NOTIFY and its re-check
            // of the state (a Dekker pair: each side stores, fences, loads).
            std::sync::atomic::fence(SeqCst);
            if m.u32_at(shm::H_NOTIFY).load(Relaxed) != 0 {
                shm::poke(cell.wake_fd.load(Relaxed));
            }
            cell.pending.fetch_sub(1, AcqRel);
        }
    }
    cell.active.fetch_sub(1, SeqCst);
}

/// Whether a client of `core` has something on its ring (or a closing one waits for the core's
/// acknowledgement).
pub(crate) fn has_work(t: &Table, core: usize) -> bool {
    t.cells.iter().any(|cell| match mine(cell, core) {
        Some(C_LIVE) => cell.shm().u32_at(shm::H_TAIL).load(Relaxed) != cell.head.load(Relaxed),
        Some(_) => cell.home_stopped.load(Relaxed) != cell.generation.load(Relaxed).wrapping_add(1),
        None => false,
    })
}

/// Tells the clients of `core` that it sleeps (1) or is awake (0): a client rings its doorbell
/// after a push only when it reads 1.
pub(crate) fn set_sleeping(t: &Table, core: usize, v: u32) {
    for cell in t.cells.iter() {
        if mine(cell, core) == Some(C_LIVE) {
            cell.shm().u32_at(shm::H_CORE_SLEEPING).store(v, SeqCst);
        }
    }
}

/// Epoll data of the core's own eventfd; a client's socket carries `wake_data`.
pub(crate) const OWN_EVENTFD: u64 = 1 << 63;

/// The epoll data of a client's wake-up socket: its cell, the cell's generation (low 19 bits)
/// and the descriptor, so an event that arrives after the client left (its number reused) is
/// recognised and ignored.
pub fn wake_data(cell: usize, generation: u32, fd: i32) -> u64 {
    (cell as u64 & 0xfff) << 51 | (generation as u64 & 0x7_ffff) << 32 | fd as u32 as u64
}

/// Sleeps in the core's epoll set (its own eventfd and its clients' wake-up sockets) for at
/// most `timeout_ms`, then drains what woke it, never blocking: the eventfd is the server's
/// own (non-blocking), a socket is read with MSG_DONTWAIT.
pub(crate) fn epoll_sleep(t: &Table, epoll_fd: i32, timeout_ms: i32) {
    let mut events = [libc::epoll_event { events: 0, u64: 0 }; 16];
    // SAFETY: `events` is a live array of 16 entries, as the count says.
    let n = unsafe { libc::epoll_wait(epoll_fd, events.as_mut_ptr(), 16, timeout_ms) };
    for e in events.iter().take(n.max(0) as usize) {
        let data = e.u64;
        if data & OWN_EVENTFD != 0 {
            let mut buf = [0u8; 8];
            // SAFETY: reads 8 bytes into a live local buffer from the core's own eventfd, made
            // non-blocking and never shared with a client.
            unsafe { libc::read((data & 0xffff_ffff) as i32, buf.as_mut_ptr().cast(), 8) };
        } else {
            let fd = data as u32 as i32;
            let ci = ((data >> 51) & 0xfff) as usize;
            let generation = ((data >> 32) & 0x7_ffff) as u32;
            let Some(cell) = t.cells.get(ci) else {
                continue;
            };
            // Still the client this event was registered for? (Otherwise its descriptor was
            // closed, and its number may be another's now: leave it alone.)
            if cell.wake_fd.load(Acquire) != fd
                || cell.generation.load(Acquire) & 0x7_ffff != generation
            {
                continue;
            }
            if !shm::drain(fd) {
                // Shut down by the client: readable for ever. Out of the set, and the client
                // out; the accept thread closes the descriptor later (and calls it a hangup if
                // the client's connection is gone too).
                // SAFETY: removes a descriptor of the server's from our epoll set; an error
                // only means it was not there any more.
                unsafe { libc::epoll_ctl(epoll_fd, libc::EPOLL_CTL_DEL, fd, std::ptr::null_mut()) };
                cell.close(shm::Fault::WakeClosed);
            }
        }
    }
}
