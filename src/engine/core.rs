//! One core: the state it owns and the loop that serves its rings.
//!
//! `CoreState` is a state machine with no I/O: `step` serves up to a batch of requests and
//! returns how many; `idle` decides whether to spin, sleep or exit. A driver (a pinned glommio
//! executor, or a plain pinned thread) calls them; tests can call them directly.
//!
//! Invariants:
//! - the cache shard is owned here and touched by no other thread;
//! - selection is strict priority (critical first, each priority's overflow injector right
//!   after the core's own ring of that priority) except that the ring head which has waited
//!   longest past its aging deadline is served first, so nothing starves;
//! - every popped slot is completed exactly once, with a verdict, whatever its bytes hold;
//! - nothing here allocates, locks or makes a syscall on the serving path; the only syscalls
//!   are the futex sleep when idle and the futex wake of a waiter that went to sleep.

use super::pipeline::merge;
use super::shared::Shared;
use super::slot::{ABANDONED, DONE, FREE, WAIT_ASYNC, WAIT_THREAD, WAKING};
use crate::cache::{CacheKey, Miss, Shard};
use crate::hsm::service::{TAG_BAD, TAG_MALFORMED, TAG_VERIFIED};
use crate::identity::token::TokenIssue;
use crate::metrics::CoreMetrics;
use crate::request::Request;
use crate::stage::Outcome;
use crate::sync::futex;

/// The outcome of no pre-cache stage.
const NO_PRE: Outcome = Outcome {
    obligations: crate::types::Obligations::NONE,
    threat_level: crate::types::ThreatLevel::None,
    indicators: 0,
    classification: Classification::Unclassified,
    rule: 0,
    ceiling: None,
    policy: 0,
    agent: 0,
    trust_pct: None,
    strict_deny_at: None,
    charge: [0; crate::identity::chain::MAX_LINKS],
    charged: 0,
    attributed: true,
};
use crate::time::now_ns;
use crate::types::{Classification, Decision, DenyReason, Operation, Priority, Verdict};
use std::sync::atomic::{fence, Ordering::*};
use std::sync::Arc;
use std::time::Duration;

/// What an idle core should do next.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Idle {
    /// Work arrived (or may have): call `step` again.
    Work,
    /// Shutting down and nothing is left in flight: leave the loop.
    Exit,
    /// Nothing to do: the core's `sleeping` word is set and the rings were seen empty after it
    /// was; the driver gives up the core's baton and sleeps (`park`) for at most this long.
    Park(Duration),
}

/// A gap this long between two looks at the clock while spinning means the scheduler took
/// the CPU away: the CPU is shared, and spinning on it only delays whoever shares it.
pub(crate) const PREEMPTED_NS: u64 = 50_000;
/// One request taking this long on a core (a 64 KiB scan takes about 0.1 ms; an HSM
/// operation is handed off, not waited for) means the scheduler took the CPU away mid-request.
const PREEMPTED_SERVE_NS: u64 = 1_000_000;
/// After the CPU was taken away, the spin does not grow back for this long at first, doubled
/// each time the CPU is taken away again within a minute, up to `CONTENDED_HOLD_MAX_NS`: where
/// the gateway's busy threads share the CPUs, the core sleeps and callers serve (`baton.rs`),
/// and each try at spinning again costs one of them a time slice.
const CONTENDED_HOLD_NS: u64 = 250_000_000;
const CONTENDED_HOLD_MAX_NS: u64 = 16_000_000_000;
const CONTENDED_FORGET_NS: u64 = 60_000_000_000;

pub(crate) struct CoreState {
    pub id: usize,
    shared: Arc<Shared>,
    shard: Option<Shard>,
    /// Behaviour baselines of the agents this core serves (`None`: anomaly detection is off).
    monitor: Option<crate::anomaly::Monitor>,
    /// Requests this core handed to the HSM core that have not come back yet: while there are
    /// any, the core does not sleep (the answer comes within microseconds; a futex wake-up
    /// would cost more than the token's operation).
    hsm_pending: u32,
    /// Where a shared-memory client's request is copied before it is decoded (sized when the
    /// server attaches its clients, once).
    ipc_scratch: Vec<u8>,
    /// Where the next step starts reading clients' rings (round robin).
    ipc_next: usize,
    /// How long `idle` spins before it parks now (adaptive, at most `spin_before_park_ns`):
    /// zero once the scheduler is seen taking the CPU away (the CPU is shared, `contended`),
    /// doubled when a park ended sooner than the full budget (spinning would have caught the
    /// work) and the CPU has not been taken away for `CONTENDED_HOLD_NS`.
    spin_ns: u64,
    /// Until when the spin stays at zero: the last time the CPU was seen taken away, plus
    /// `CONTENDED_HOLD_NS`.
    contended_until_ns: u64,
    /// The hold the next contention sets (`CONTENDED_HOLD_NS`, doubling).
    hold_ns: u64,
    /// When this core last looked at the clock while running (0: it has just woken): a gap
    /// past `PREEMPTED_NS` before the next look means the scheduler took its CPU away.
    last_ns: u64,
}

impl CoreState {
    pub(crate) fn new(
        id: usize,
        shared: Arc<Shared>,
        shard: Option<Shard>,
        monitor: Option<crate::anomaly::Monitor>,
    ) -> CoreState {
        CoreState {
            id,
            shard,
            monitor,
            hsm_pending: 0,
            ipc_scratch: Vec::new(),
            ipc_next: 0,
            // With caller-runs a core starts as if its CPU were shared: it sleeps whenever its
            // rings are empty and callers serve, and only spins once parks show it would pay
            // (`woke`) after the first hold. Without, it spins from the start.
            spin_ns: if shared.config.engine.caller_runs {
                0
            } else {
                shared.spin_before_park_ns
            },
            contended_until_ns: if shared.config.engine.caller_runs {
                now_ns().saturating_add(CONTENDED_HOLD_NS)
            } else {
                0
            },
            hold_ns: CONTENDED_HOLD_NS,
            last_ns: 0,
            shared,
        }
    }

    /// Picks the next slot to serve.
    #[inline]
    fn next(&self, now: u64) -> Option<u32> {
        let sh = &*self.shared;
        let me = &sh.cores[self.id];
        // Requests back from the HSM core first: they have waited longest.
        if let Some(idx) = me.resume.pop() {
            return Some(idx);
        }
        // Aging: the most overdue head among the non-critical rings goes first.
        let mut best: Option<usize> = None;
        let mut best_over = 0u64;
        for p in 1..Priority::COUNT {
            if let Some(idx) = me.rings[p].peek() {
                let waited =
                    now.saturating_sub(sh.pool.slots[idx as usize].enqueued_ns.load(Relaxed));
                let deadline = sh.aging_ns[p];
                if waited > deadline && waited - deadline >= best_over {
                    best_over = waited - deadline;
                    best = Some(p);
                }
            }
        }
        if let Some(p) = best {
            if let Some(idx) = me.rings[p].pop() {
                me.metrics.aged.add(1);
                return Some(idx);
            }
        }
        for p in 0..Priority::COUNT {
            if let Some(idx) = me.rings[p].pop() {
                return Some(idx);
            }
            if let Some(ov) = sh.overflow.get(p) {
                if let Some(idx) = ov.pop() {
                    me.metrics.steals.add(1);
                    return Some(idx);
                }
            }
        }
        None
    }

    /// Serves up to `budget` requests; returns how many it served.
    pub(crate) fn step(&mut self, budget: usize) -> usize {
        self.step_until(budget, u64::MAX)
    }

    /// `step`, starting no request after `until_ns` (a caller serving on the core's behalf
    /// stops at its own request's deadline).
    pub(crate) fn step_until(&mut self, budget: usize, until_ns: u64) -> usize {
        let mut n = 0;
        let mut ingested = 0;
        // Shared-memory clients whose home is this core: their requests go onto the owners'
        // rings (this one's too), and are served below in the engine's priority order.
        if let Some(t) = self.shared.ipc.get() {
            if self.ipc_scratch.is_empty() {
                self.ipc_scratch = vec![0; self.shared.limits.max_encoded_bytes()];
            }
            // Its own budget: what the rings hold is served below with the whole of `budget`.
            ingested = super::ipc::ingest(
                &self.shared,
                t,
                self.id,
                &mut self.ipc_scratch,
                budget,
                self.ipc_next,
            );
            self.ipc_next = self.ipc_next.wrapping_add(1);
        }
        let mut now = now_ns();
        if self.last_ns != 0 && now.saturating_sub(self.last_ns) > PREEMPTED_NS {
            self.contended(now);
        }
        while n < budget && now < until_ns {
            let Some(idx) = self.next(now) else { break };
            let before = now;
            now = self.serve(idx, now);
            if now.saturating_sub(before) > PREEMPTED_SERVE_NS {
                self.contended(now);
            }
            n += 1;
        }
        self.last_ns = now;
        if n > 0 {
            if let Some(s) = &self.shard {
                let m = &self.shared.cores[self.id].metrics;
                m.cache_entries.set(s.len() as u64);
                m.evictions.set(s.evictions());
            }
        }
        n + ingested
    }

    /// Evaluates one slot and completes it. Returns the time after completion.
    #[inline]
    fn serve(&mut self, idx: u32, now: u64) -> u64 {
        let id = self.id;
        let sh = &*self.shared;
        let shard = &mut self.shard;
        let monitor = &mut self.monitor;
        let slot = &sh.pool.slots[idx as usize];
        let m = &sh.cores[id].metrics;
        // SAFETY: we popped `idx` from a ring, so we own the slot's buffers until DONE.
        let wire = unsafe { slot.wire() };
        let epoch = sh.epoch.load(Acquire);
        // The fast path reads only the operation, classification and key the submitter stored
        // in the slot's first cache line. A hit means an entry inserted for byte-identical
        // fields (same 128-bit key, same tenant and classification, checked by the shard),
        // which already passed decode and the shape check, so neither is repeated.
        let key = header_key(slot);
        let agent = slot.agent.load(Relaxed);
        // Back from the HSM core? (The resume ring's push/pop ordered the HSM core's write.)
        let hsm_word = slot.hsm.load(Relaxed);
        if hsm_word & 0xff != 0 {
            self.hsm_pending = self.hsm_pending.saturating_sub(1);
        }
        let from_hsm = match hsm_word & 0xff {
            0 => None,
            TAG_VERIFIED => {
                // The token is now in the verified-token cache: serve the request normally.
                slot.hsm.store(hsm_word & !0xff, Relaxed);
                None
            }
            TAG_BAD => Some(DenyReason::Identity(TokenIssue::BadSignature)),
            TAG_MALFORMED => Some(DenyReason::Identity(TokenIssue::Malformed)),
            _ => Some(DenyReason::HsmUnavailable),
        };
        // A quarantined agent is denied before anything else, cached verdicts included (one
        // atomic load when nobody is quarantined).
        // (an operator's quarantine holds with the anomaly monitor off too)
        let quarantined = sh.quarantine.contains(agent, now);
        // A fleet node whose view of the fleet is stale (one load; always fresh without one).
        let stale = sh.fleet.stale(now);
        let pre = key.is_some_and(|(op, _)| sh.pipeline.has_pre(op));
        let hit = match (&mut *shard, key) {
            _ if quarantined => {
                m.quarantine_denials.add(1);
                Some(Verdict::deny(DenyReason::Quarantined))
            }
            _ if stale == Some(crate::fleet::WhenStale::Deny) => {
                Some(Verdict::deny(DenyReason::FleetStale))
            }
            _ if from_hsm.is_some() => from_hsm.map(Verdict::deny),
            (Some(s), Some((op, k))) if !pre => lookup(s, m, &k, op, now, epoch),
            _ => None,
        };
        // whose record the verdict goes on: the slot's agent, or a delegated chain's signers
        let mut charge = ([0u64; crate::identity::chain::MAX_LINKS], 0u8);
        // whether it goes on anyone's record: without pre-cache stages (no policy) names are
        // all there is; with them, the policy stage says (a verified token)
        let mut attributed = !pre;
        let mut verdict = match hit {
            Some(v) => v,
            None => match Request::decode(wire) {
                Err(reason) => Verdict::deny(reason),
                Ok(req) => match sh.limits.check(&req) {
                    Err(reason) => Verdict::deny(reason),
                    // Pre-cache stages (identity, rate limits, authorization) run on every
                    // request; then the cache, then the post-cache stages on a miss.
                    Ok(()) if pre => match sh.pipeline.run_pre(&req, agent) {
                        (out, Some(run)) => {
                            if run.panicked {
                                m.stage_panics.add(1);
                            }
                            charge = (out.charge, out.charged);
                            attributed = out.attributed;
                            run.verdict
                        }
                        (out, None) => {
                            charge = (out.charge, out.charged);
                            attributed = out.attributed;
                            let cached = match (&mut *shard, key) {
                                (Some(s), Some((op, k))) => lookup(s, m, &k, op, now, epoch),
                                _ => None,
                            };
                            let post = match cached {
                                Some(v) => v,
                                None => miss(sh, shard, id, key, &req, &out, now, epoch),
                            };
                            merge(&out, post)
                        }
                    },
                    Ok(()) => miss(sh, shard, id, key, &req, &NO_PRE, now, epoch),
                },
            },
        };
        // Identity needs the HSM to verify this token's tag: hand the slot to the HSM core and
        // serve others meanwhile; it comes back on the resume ring.
        if verdict.reason == DenyReason::Identity(TokenIssue::NeedsHsm) {
            match defer_to_hsm(sh, slot, idx, id) {
                Ok(()) => {
                    self.hsm_pending += 1;
                    return now;
                }
                Err(reason) => verdict = Verdict::deny(reason),
            }
        }
        // Stale with `when_stale = "audit_required"`: allowed, but the gateway must audit it.
        if stale == Some(crate::fleet::WhenStale::AuditRequired)
            && verdict.decision != Decision::Deny
        {
            verdict.decision = Decision::AllowWith;
            verdict.obligations.audit_required = true;
        }
        // The request is answered now: a slot that went to the HSM core starts clean next time.
        if hsm_word != 0 {
            slot.hsm.store(0, Relaxed);
        }
        let done = now_ns();
        verdict.latency_ns = done
            .saturating_sub(slot.enqueued_ns.load(Relaxed))
            .min(u32::MAX as u64) as u32;
        verdict.core = id as u16;
        // Audit: claim a queue cell now (a full queue turns the verdict into a denial), hand the
        // record over last, after everything that reads the slot's bytes: in the durable modes
        // the writer answers the slot, and from then on it may be reused.
        let mut audit: Option<(u32, Request<'_>)> = None;
        if let Some(q) = &sh.audit {
            let op = key.map(|(op, _)| op).unwrap_or(Operation::Audit);
            if q.wants(op, &verdict) {
                // an undecodable request was denied before any stage: nothing to audit
                if let Ok(req) = Request::decode(wire) {
                    match q.reserve() {
                        Some(cell) => audit = Some((cell, req)),
                        None => {
                            verdict = Verdict {
                                core: id as u16,
                                latency_ns: verdict.latency_ns,
                                ..Verdict::deny(DenyReason::AuditBackpressure)
                            }
                        }
                    }
                }
            }
        }
        m.processed.add(1);
        match verdict.decision {
            Decision::Allow => m.allows.add(1),
            Decision::AllowWith => m.allow_with.add(1),
            Decision::Deny => m.denies.add(1),
        }
        m.latency.record(verdict.latency_ns as u64);
        let charged: &[u64] = match (attributed, charge.1) {
            (false, _) => &[],
            (true, 0) => std::slice::from_ref(&agent),
            (true, n) => &charge.0[..n as usize],
        };
        if let (Some(mon), false) = (monitor, quarantined) {
            for &a in charged {
                if let Some(t) = mon.observe(a, &verdict, now) {
                    start_quarantine(sh, a, t, wire, now);
                }
            }
        }
        if let Some(t) = &sh.trust {
            for &a in charged {
                t.observe(a, &verdict, now);
            }
        }
        match (audit, &sh.audit) {
            (Some((cell, req)), Some(q)) if q.durable => q.push(cell, &req, &verdict, done, idx),
            (Some((cell, req)), Some(q)) => {
                q.push(cell, &req, &verdict, done, crate::audit::writer::NO_SLOT);
                complete(sh, idx, verdict);
            }
            _ => complete(sh, idx, verdict),
        }
        done
    }

    fn has_work(&self) -> bool {
        let sh = &*self.shared;
        if sh
            .ipc
            .get()
            .is_some_and(|t| super::ipc::has_work(t, self.id))
        {
            return true;
        }
        sh.has_queued(self.id)
    }

    /// Forgets when the core last looked at the clock: a caller's turn with the baton starts
    /// and ends with this, so the time between holders is not taken for a preemption.
    pub(crate) fn forget_clock(&mut self) {
        self.last_ns = 0;
    }

    /// Counts requests a caller served on this core's behalf (caller-runs, `baton.rs`).
    pub(crate) fn count_caller_served(&self, n: u64) {
        self.shared.cores[self.id].metrics.caller_served.add(n);
    }

    /// Called when `step` found nothing: spins for the adaptive budget (`spin_ns`), then
    /// sets the core's `sleeping` word and, if the rings are still empty, tells the driver to
    /// park. Makes no syscall: the sleep is the driver's (`park`), after it gave up the baton.
    pub(crate) fn idle(&mut self) -> Idle {
        // The spin adapts only where callers can serve while the core sleeps; otherwise (caller
        // -runs off, or `warden serve`, whose callers are other processes) a core that stopped
        // spinning would only add a wake-up to every request, so it spins the full budget.
        let callers = self.shared.config.engine.caller_runs && self.shared.ipc.get().is_none();
        let spin_ns = if callers {
            self.spin_ns
        } else {
            self.shared.spin_before_park_ns
        };
        let start = now_ns();
        let mut last = start;
        let mut i = 0u32;
        let mut preempted = false;
        loop {
            if self.has_work() {
                return Idle::Work;
            }
            i = i.wrapping_add(1);
            if i.is_multiple_of(8) {
                let now = now_ns();
                if now.saturating_sub(last) > PREEMPTED_NS && callers {
                    // Descheduled mid-spin: the CPU is shared; stop spinning and sleep.
                    preempted = true;
                    break;
                }
                last = now;
                self.last_ns = now;
                if now.saturating_sub(start) >= spin_ns {
                    break;
                }
            }
            std::hint::spin_loop();
        }
        if preempted {
            self.contended(now_ns());
        }
        let sh = &*self.shared;
        let me = &sh.cores[self.id];
        if sh.shutdown.load(SeqCst) && sh.pool.settled() && !self.has_work() {
            return Idle::Exit;
        }
        // Waiting for the HSM core: keep spinning (unless it has stopped).
        if self.hsm_pending > 0
            && sh
                .hsm
                .as_ref()
                .is_some_and(|h| !h.shared.stopped.load(Relaxed))
        {
            return Idle::Work;
        }
        // Serving shared-memory clients, the core sleeps in epoll on its eventfd and their
        // doorbells (a futex cannot wait on those); otherwise on the futex.
        let ipc = sh.ipc.get().filter(|_| me.epoll_fd.load(Relaxed) >= 0);
        let mode = if ipc.is_some() { 2 } else { 1 };
        me.sleeping.store(mode, SeqCst);
        if let Some(t) = ipc {
            super::ipc::set_sleeping(t, self.id, 1);
        }
        fence(SeqCst);
        if self.has_work() {
            me.sleeping.store(0, Relaxed);
            if let Some(t) = ipc {
                super::ipc::set_sleeping(t, self.id, 0);
            }
            return Idle::Work;
        }
        me.metrics.parks.add(1);
        // While shutting down, poll for the last in-flight submissions instead of sleeping long.
        Idle::Park(if sh.shutdown.load(SeqCst) {
            Duration::from_micros(200)
        } else {
            Duration::from_millis(10_000)
        })
    }

    /// The driver is back from a park of `slept_ns`: a park that ended sooner than the full
    /// spin budget means spinning would have found the work, so the budget grows back.
    pub(crate) fn woke(&mut self, slept_ns: u64) {
        let max = self.shared.spin_before_park_ns;
        self.last_ns = 0;
        if slept_ns < max && now_ns() >= self.contended_until_ns {
            self.spin_ns = (self.spin_ns.saturating_mul(2)).clamp(1_000.min(max), max);
        }
    }

    /// The scheduler took this core's CPU away (mid-spin or mid-request): the CPU is shared
    /// with busy threads, so the core stops spinning and sleeps whenever its rings are empty,
    /// leaving callers to serve (`baton.rs`), for at least `CONTENDED_HOLD_NS`.
    fn contended(&mut self, now: u64) {
        self.spin_ns = 0;
        // Taken away again soon after the last hold: hold longer; after a quiet minute, afresh.
        self.hold_ns = if now.saturating_sub(self.contended_until_ns) < CONTENDED_FORGET_NS {
            (self.hold_ns.saturating_mul(2)).min(CONTENDED_HOLD_MAX_NS)
        } else {
            CONTENDED_HOLD_NS
        };
        self.contended_until_ns = now.saturating_add(self.hold_ns);
        self.shared.cores[self.id].metrics.preempted_spins.add(1);
    }
}

/// Sleeps core `id` after `Idle::Park` (futex, or epoll when it serves shared-memory clients)
/// until a submitter rings it or `timeout` passes; clears its `sleeping` word. Returns the
/// nanoseconds slept. Touches no `CoreState`: callers may be running it meanwhile.
pub(crate) fn park(sh: &Shared, id: usize, timeout: Duration) -> u64 {
    let me = &sh.cores[id];
    let t0 = now_ns();
    let ipc = sh.ipc.get().filter(|_| me.epoll_fd.load(Relaxed) >= 0);
    match ipc {
        Some(t) => {
            super::ipc::epoll_sleep(
                t,
                me.epoll_fd.load(Relaxed),
                timeout.as_millis().max(1) as i32,
            );
            super::ipc::set_sleeping(t, id, 0);
        }
        None => futex::wait(&me.sleeping, 1, Some(timeout)),
    }
    me.sleeping.store(0, Relaxed);
    now_ns().saturating_sub(t0)
}

/// Quarantines `agent` (a rare event: this path may allocate, to record the names).
#[cold]
fn start_quarantine(
    sh: &Shared,
    agent: u64,
    trigger: crate::anomaly::Trigger,
    wire: &[u8],
    now: u64,
) {
    if sh
        .quarantine
        .insert(agent, now.saturating_add(sh.quarantine_ns), now)
    {
        sh.quarantine.started.fetch_add(1, Relaxed);
        if let Some(t) = &sh.trust {
            t.incident(agent, now);
        }
        if let Ok(req) = Request::decode(wire) {
            // The agent is the request's, or (charged for a delegated request) one that
            // signed its chain: found by its key among the chain's names.
            let mut buf = [0u8; 2 * crate::identity::token::MAX_TOKEN_BYTES];
            let name = if sh.keyed.agent(req.tenant, req.agent) == agent {
                req.agent
            } else {
                crate::identity::chain::parse_with(req.credential, &mut buf, false)
                    .ok()
                    .and_then(|c| c.agents().find(|a| sh.keyed.agent(req.tenant, a) == agent))
                    .unwrap_or(req.agent)
            };
            let req = Request { agent: name, ..req };
            sh.quarantine.name(agent, req.tenant, req.agent, trigger);
            // and, on a fleet node, every other node quarantines it too
            if let Some(o) = sh.fleet_out.get() {
                o.publish(crate::fleet::state::Record::Quarantine {
                    tenant: req.tenant.into(),
                    agent: req.agent.into(),
                    until_unix_ms: (crate::time::wall_ns() / 1_000_000)
                        .saturating_add(sh.quarantine_ns / 1_000_000)
                        .max(1),
                });
            }
            // The quarantine itself is audited: the agent, the request that crossed the
            // threshold, and the trigger as the action (best effort: a full queue counts it as
            // backpressure; nobody waits on this record).
            if let Some(q) = &sh.audit {
                if let Some(cell) = q.reserve() {
                    let ev = Request {
                        action: trigger.audit_action(),
                        ..req
                    };
                    let v = Verdict::deny(crate::types::DenyReason::Quarantined);
                    q.push(cell, &ev, &v, now, crate::audit::writer::NO_SLOT);
                }
            }
        }
    }
}

/// Hands a request whose token tag needs the HSM to the HSM core. `Err`: the reason to deny
/// with now (breaker open, queue full, or the request already went round too often).
#[cold]
fn defer_to_hsm(
    sh: &Shared,
    slot: &super::slot::Slot,
    idx: u32,
    core: usize,
) -> Result<(), DenyReason> {
    let Some(h) = &sh.hsm else {
        return Err(DenyReason::HsmUnavailable);
    };
    if !h.shared.closed() {
        return Err(DenyReason::HsmUnavailable);
    }
    // A verified token is cached; it needs a second trip only if its cache entry was replaced
    // in the microseconds between; a third is refused (bounded work per request).
    let rounds = slot.hsm.load(Relaxed) >> 8;
    if rounds >= 2 {
        return Err(DenyReason::HsmUnavailable);
    }
    slot.hsm.store((rounds + 1) << 8, Relaxed);
    if h.token_tag(idx, core as u16) {
        Ok(())
    } else {
        slot.hsm.store(0, Relaxed);
        Err(DenyReason::Overloaded)
    }
}

/// On the HSM core: verifies the tag of the token in slot `idx` with the backend's HMAC key.
pub(crate) fn hsm_verify_tag(
    sh: &Shared,
    identity: &crate::identity::Identity,
    backend: &mut dyn crate::hsm::Backend,
    idx: u32,
) -> Result<u32, crate::hsm::Fault> {
    let slot = &sh.pool.slots[idx as usize];
    // SAFETY: the core handed this slot to the HSM core with the job and touches it again only
    // after the HSM core pushes it back onto its resume ring; the request bytes are not written
    // by anyone in between.
    let wire = unsafe { slot.wire() };
    let Ok(req) = Request::decode(wire) else {
        return Ok(TAG_MALFORMED);
    };
    let mut buf = [0u8; crate::identity::token::MAX_TOKEN_BYTES];
    let Ok(parsed) = crate::identity::token::parse(req.credential, &mut buf) else {
        return Ok(TAG_MALFORMED);
    };
    if backend.hmac_verify(parsed.signed, parsed.tag)? {
        identity.remember(req.credential);
        Ok(TAG_VERIFIED)
    } else {
        Ok(TAG_BAD)
    }
}

/// On the HSM core: records the outcome in the slot and gives it back to its core.
pub(crate) fn hsm_resume(sh: &Shared, idx: u32, core: u16, outcome: u32) {
    let slot = &sh.pool.slots[idx as usize];
    slot.hsm
        .store((slot.hsm.load(Relaxed) & !0xff) | outcome, Relaxed);
    let ring = &sh.cores[core as usize].resume;
    // The resume ring holds every slot of the pool, so this push cannot find it full.
    while ring.push(idx).is_err() {
        std::hint::spin_loop();
    }
}

/// The operation and cache key of a slot, from what the submitter stored beside the request
/// (same cache line as the state word), not from the request buffer.
#[inline]
fn header_key(slot: &super::slot::Slot) -> Option<(Operation, CacheKey)> {
    let meta = slot.meta.load(Relaxed);
    let op = Operation::from_code(meta as u8, (meta >> 8) as u16)?;
    let classification = Classification::from_code((meta >> 24) as u8)?;
    let hash = (slot.key_lo.load(Relaxed) as u128) | ((slot.key_hi.load(Relaxed) as u128) << 64);
    Some((
        op,
        CacheKey {
            hash,
            tenant: slot.key_tenant.load(Relaxed),
            classification,
        },
    ))
}

#[inline]
fn lookup(
    shard: &mut Shard,
    m: &CoreMetrics,
    key: &CacheKey,
    op: Operation,
    now: u64,
    epoch: u64,
) -> Option<Verdict> {
    match shard.get(key, op, now, epoch) {
        Ok(v) => {
            m.cache_hits.add(1);
            Some(Verdict {
                cache_hit: true,
                ..v
            })
        }
        Err(miss) => {
            match miss {
                Miss::Uncacheable => {}
                Miss::Absent => m.cache_misses.add(1),
                Miss::Expired => {
                    m.cache_misses.add(1);
                    m.expired.add(1);
                }
                Miss::StaleEpoch => {
                    m.cache_misses.add(1);
                    m.epoch_misses.add(1);
                }
                Miss::Integrity => {
                    m.cache_misses.add(1);
                    m.integrity_failures.add(1);
                }
            }
            None
        }
    }
}

/// A cache miss: run the post-cache stages and store the verdict unless it is transient.
#[inline]
#[allow(clippy::too_many_arguments)] // the serving loop's state, passed apart to keep borrows split
fn miss(
    sh: &Shared,
    shard: &mut Option<Shard>,
    id: usize,
    key: Option<(Operation, CacheKey)>,
    req: &Request<'_>,
    pre: &Outcome,
    now: u64,
    epoch: u64,
) -> Verdict {
    let v = run_pipeline(sh, id, req, pre);
    if let (Some(s), Some((op, k))) = (shard, key) {
        if !v.reason.is_transient() && op == req.operation {
            s.insert(&k, op, &v, now, epoch);
        }
    }
    v
}

#[inline]
fn run_pipeline(sh: &Shared, id: usize, req: &Request<'_>, pre: &Outcome) -> Verdict {
    let run = sh.pipeline.run(req, pre);
    if run.panicked {
        sh.cores[id].metrics.stage_panics.add(1);
    }
    run.verdict
}

/// Completes a slot whose record the audit writer made durable: the latency then includes the
/// wait for the disk.
pub(crate) fn complete_audited(sh: &Shared, idx: u32, mut v: Verdict) {
    let slot = &sh.pool.slots[idx as usize];
    v.latency_ns = now_ns()
        .saturating_sub(slot.enqueued_ns.load(Relaxed))
        .min(u32::MAX as u64) as u32;
    complete(sh, idx, v);
}

/// Publishes the verdict and wakes or reclaims according to the waiter's state.
#[inline]
fn complete(sh: &Shared, idx: u32, v: Verdict) {
    let slot = &sh.pool.slots[idx as usize];
    // A shared-memory client's request: the verdict goes into its memory, the slot back to
    // the pool (no waiter here). The tag was written before QUEUED, which our pop acquired.
    let tag = slot.ipc.load(Relaxed);
    if tag != 0 {
        if let Some(t) = sh.ipc.get() {
            super::ipc::deliver(t, tag, &v);
        }
        slot.ipc.store(0, Relaxed);
        slot.state.store(FREE, Release);
        sh.pool.release(idx);
        return;
    }
    // SAFETY: we own the slot until the swap below publishes DONE.
    unsafe { slot.set_verdict(v) };
    let mut cur = slot.state.load(Acquire);
    loop {
        let next = if cur == WAIT_ASYNC { WAKING } else { DONE };
        match slot.state.compare_exchange_weak(cur, next, AcqRel, Acquire) {
            Ok(_) => break,
            Err(c) => cur = c,
        }
    }
    match cur {
        WAIT_THREAD => futex::wake(&slot.state, 1),
        WAIT_ASYNC => {
            // The waiter's waker is foreign code and runs here, on the core or on a caller
            // serving for it: a panic in it must not unwind out of the serving loop, nor leave
            // the slot WAKING (its future would spin, and shutdown wait, for ever).
            let woke = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| slot.waker.wake()));
            slot.state.store(DONE, Release);
            if let Err(payload) = woke {
                super::drop_payload(payload);
            }
        }
        ABANDONED => {
            slot.state.store(FREE, Release);
            sh.pool.release(idx);
        }
        _ => {}
    }
}
