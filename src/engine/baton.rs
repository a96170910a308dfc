//! Who runs a core's state: its own thread, or, while that thread sleeps, a caller.
//!
//! Each core's `CoreState` sits in a `CoreCell` with a baton word. The core's thread holds the
//! baton while it serves and spins; it hands the baton back only after `idle` has set the
//! core's `sleeping` word and seen the rings empty, and takes it again when it wakes. While
//! the core sleeps, a thread that has just queued a request for it may take the baton itself
//! (caller-runs, `engine.caller_runs`), serve what the core's rings hold, its own request
//! among them, and give the baton back, instead of ringing the doorbell and waiting for the
//! scheduler to run the core's thread. Where the gateway's own threads keep every CPU busy,
//! that wake-up is what costs milliseconds (PERF.md "Sharing CPUs with the gateway").
//!
//! Invariants:
//! - at most one thread holds a core's baton, and only the holder touches its `CoreState`;
//!   every hand-over is a release store or CAS followed by an acquire CAS, so each holder sees
//!   everything the previous one wrote (the cache shard, the monitor, the metrics counters,
//!   which are single-writer: one holder at a time);
//! - a caller takes the baton only from `FREE` (never from the core's thread, never in an
//!   engine serving shared-memory clients, never from a thread the scheduler ranks below the
//!   cores' threads as the kernel runs them, asked again within a millisecond:
//!   `may_run_here`) and never waits for it: it takes it at once, or leaves its request to the caller
//!   who holds it, or rings the doorbell as before. The core's thread waits for the baton only
//!   while a caller serves (at most `CALLER_TURNS` steps of `CALLER_BUDGET`, and no request
//!   started past the caller's own deadline, so `validate` still returns within about
//!   `request_timeout_us` plus one request);
//! - no request is stranded: a submitter pushes, fences (SeqCst), then tries the baton; a
//!   holder gives the baton back (SeqCst), fences, then looks at the rings and serves what it
//!   finds or rings the doorbell. So a request is either served by the submitter, or seen by
//!   the holder, or the core's thread is rung;
//! - a panic while a caller holds the baton (stages contain their own, so only a bug) gives the
//!   baton back through a guard.

use super::core::CoreState;
use super::shared::{wake, Shared};
use crate::time::now_ns;
use std::cell::Cell;
use std::cell::UnsafeCell;
use std::sync::atomic::{fence, AtomicU32, Ordering::*};

/// Nobody runs the core's state: its thread sleeps (or has not started).
pub(crate) const FREE: u32 = 0;
/// The core's own thread runs it.
pub(crate) const CORE: u32 = 1;
/// A caller runs it while the core's thread sleeps.
pub(crate) const CALLER: u32 = 2;
/// The core has exited: nobody runs it again.
pub(crate) const GONE: u32 = 3;

/// Steps of up to `CALLER_BUDGET` requests a caller serves in one turn with the baton. Small:
/// a caller's own latency grows with what it serves for others, and a queue that outgrows
/// this is the core's work (the caller then rings it).
const CALLER_ROUNDS: usize = 1;
const CALLER_BUDGET: usize = 16;
/// Times a caller takes the baton again for requests queued while it held it.
const CALLER_TURNS: usize = 2;

/// One core's state and its baton.
pub(crate) struct CoreCell {
    baton: crossbeam_utils::CachePadded<AtomicU32>,
    state: UnsafeCell<CoreState>,
}

// SAFETY: `state` is only touched by the thread that holds the baton (see the module's
// invariants): won by an acquire CAS, handed back by a release store, so no two threads ever
// access it at once and each access happens-after the previous holder's. `CoreState` is `Send`
// (it is moved to the core's thread at start).
unsafe impl Sync for CoreCell {}

impl CoreCell {
    pub(crate) fn new(state: CoreState) -> CoreCell {
        CoreCell {
            baton: crossbeam_utils::CachePadded::new(AtomicU32::new(FREE)),
            state: UnsafeCell::new(state),
        }
    }

    /// The core's thread takes its baton (at start, and after each park), waiting while a
    /// caller finishes its few steps.
    pub(crate) fn take_for_core(&self) {
        let mut i = 0u32;
        while self
            .baton
            .compare_exchange_weak(FREE, CORE, Acquire, Relaxed)
            .is_err()
        {
            // A caller serves at most `CALLER_TURNS` short steps, unless a stage is slow or
            // the caller lost its CPU: spin, then yield, then nap.
            i = i.saturating_add(1);
            if i < 256 {
                std::hint::spin_loop();
            } else if i < 1024 {
                std::thread::yield_now();
            } else {
                std::thread::sleep(std::time::Duration::from_micros(20));
            }
        }
    }

    /// The core's thread, woken, takes its baton back unless a caller holds it with nothing
    /// left queued beyond what that caller serves: then the caller looks at the rings when it
    /// gives the baton back (and rings the core if it leaves work), so the core goes back to
    /// sleep instead of waiting on a CPU the gateway's threads want (returns false). With work
    /// queued, or shutting down, it waits for the baton (returns true once it holds it).
    pub(crate) fn take_after_park(&self, sh: &Shared, c: usize) -> bool {
        if self
            .baton
            .compare_exchange(FREE, CORE, Acquire, Relaxed)
            .is_ok()
        {
            return true;
        }
        if self.baton.load(Relaxed) == CALLER
            && sh.ipc.get().is_none()
            && !sh.shutdown.load(Relaxed)
            && !sh.has_queued(c)
        {
            return false;
        }
        self.take_for_core();
        true
    }

    /// The core's thread runs `f` on its state.
    ///
    /// # Safety
    /// The calling thread holds the baton as `CORE` (after `take_for_core`, before
    /// `release_for_park` or `exit`), and does not call this again while `f` runs.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn state(&self) -> &mut CoreState {
        debug_assert_eq!(self.baton.load(Relaxed), CORE);
        // SAFETY: the caller holds the baton (this function's contract).
        unsafe { &mut *self.state.get() }
    }

    /// The core's thread gives the baton up before it sleeps; callers may run its state now.
    pub(crate) fn release_for_park(&self) {
        self.baton.store(FREE, SeqCst);
    }

    /// The core's thread leaves for good: no caller takes the baton after this.
    pub(crate) fn exit(&self) {
        self.baton.store(GONE, Release);
    }

    /// Caller-runs: unless core `c`'s own thread holds its baton (it serves, or is about to
    /// sleep), serve its rings on this thread until the caller's own deadline (`started_ns`, when
    /// it began to submit, plus `engine.request_timeout_us`) and
    /// give the baton back. Returns true when the request queued by the caller is taken care
    /// of: served here, or left to another caller who holds the baton (it looks at the rings
    /// again when it gives the baton back). Returns false when the core's thread must be rung
    /// as before. Never with shared-memory clients attached (`warden serve`: its cores sleep in
    /// epoll, and their clients' rings are theirs to read), nor from a thread the scheduler
    /// ranks below the cores (`may_run_here`).
    pub(crate) fn run_here(&self, sh: &Shared, c: usize, started_ns: u64) -> bool {
        if sh.ipc.get().is_some() || !may_run_here(sh, started_ns) {
            return false;
        }
        let until_ns = started_ns.saturating_add(sh.timeout_ns);
        let core = &sh.cores[c];
        let mut turns = 0;
        let mut handover_waits = 0u32;
        loop {
            // Look before the CAS: while the core's thread holds the baton (it serves at high
            // rates), a failing CAS from every submitter would still take the line exclusive.
            let seen = self.baton.load(Relaxed);
            let took = if seen == FREE {
                self.baton.compare_exchange(FREE, CALLER, Acquire, Relaxed)
            } else {
                Err(seen)
            };
            match took {
                Ok(_) => {}
                // Another caller serves: our request was queued before we looked (a SeqCst
                // fence after the push), and it looks at the rings after it gives the baton
                // back (a SeqCst store and fence), so one of us sees the other.
                Err(CALLER) => return true,
                // The core's thread is between `idle` and its sleep: it lets go of the baton
                // within instructions, unless the scheduler takes its CPU right there.
                Err(CORE) if core.sleeping.load(Relaxed) == 1 && handover_waits < 64 => {
                    handover_waits += 1;
                    std::hint::spin_loop();
                    continue;
                }
                // The core's thread holds it (serving), or has exited: ring it, as without
                // caller-runs (after our turns: it will serve the rest).
                Err(_) => return turns > 0,
            }
            turns += 1;
            let exhausted = self.serve_turn(until_ns);
            fence(SeqCst);
            if !sh.has_queued(c) {
                return true;
            }
            // Queued while we held the baton: serve it rather than leave it to a wake-up,
            // unless we have served our share or our time, which is then the core's.
            if exhausted || turns >= CALLER_TURNS || now_ns() >= until_ns {
                wake(core);
                return true;
            }
        }
    }

    /// Serves up to `CALLER_ROUNDS` steps holding the baton as `CALLER`, then gives it back.
    /// Returns whether every round was full (more may be queued).
    fn serve_turn(&self, until_ns: u64) -> bool {
        // Gives the baton back even if a step panics (stages contain their own panics).
        struct Give<'a>(&'a AtomicU32);
        impl Drop for Give<'_> {
            fn drop(&mut self) {
                self.0.store(FREE, SeqCst);
            }
        }
        let _give = Give(&self.baton);
        // SAFETY: the caller won the baton (FREE → CALLER, acquire); `_give` hands it back.
        let st = unsafe { &mut *self.state.get() };
        let mut served = 0u64;
        let mut full = true;
        st.forget_clock();
        for _ in 0..CALLER_ROUNDS {
            let n = st.step_until(CALLER_BUDGET, until_ns);
            served += n as u64;
            if n < CALLER_BUDGET {
                full = false;
                break;
            }
        }
        st.forget_clock();
        st.count_caller_served(served);
        full
    }
}

thread_local! {
    /// This thread's scheduling as last asked: (asked at, ns; ranked low by its policy; nice).
    static RANK: Cell<(u64, bool, i32)> = const { Cell::new((0, false, 0)) };
}

/// How often a thread's scheduling policy and nice value are asked again: a thread that lowers
/// its priority stops taking batons within this long.
const RANK_TTL_NS: u64 = 1_000_000;

/// A thread the scheduler ranks below the cores' threads (`SCHED_IDLE` or `SCHED_BATCH`, with or
/// without `SCHED_RESET_ON_FORK`, or a nice value above the cores' as the kernel reports it)
/// does not take a core's baton: while it held it, everything queued on that core would wait
/// for that thread's CPU time, critical requests included. Asked at most once a millisecond
/// per thread (two syscalls), and compared with this engine's cores each time.
fn may_run_here(sh: &Shared, now: u64) -> bool {
    RANK.with(|r| {
        let (at, mut low, mut nice) = r.get();
        if at == 0 || now.saturating_sub(at) > RANK_TTL_NS {
            // SAFETY: plain syscalls about the calling thread alone; errno is read right after.
            unsafe {
                let policy = libc::sched_getscheduler(0) & !libc::SCHED_RESET_ON_FORK;
                let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
                *libc::__errno_location() = 0;
                let n = libc::getpriority(libc::PRIO_PROCESS, tid);
                let unknown = policy < 0 || (n == -1 && *libc::__errno_location() != 0);
                low = unknown || policy == libc::SCHED_IDLE || policy == libc::SCHED_BATCH;
                nice = n;
            }
            r.set((now.max(1), low, nice));
        }
        !low && nice <= sh.cores_nice.load(Relaxed)
    })
}
