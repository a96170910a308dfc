//! `Engine`, its builder, and `Handle`: how any thread submits requests and gets verdicts.
//!
//! Submission path (any thread, lock-free, allocation-free): take a reply slot from the pool,
//! encode the request into it, route by xxh3(tenant, agent) to the owning core, push the slot
//! index onto that core's ring for the request's priority (or the priority's overflow injector
//! when the ring is full; `Low` and `Background` are shed instead), ring the core's doorbell if
//! it sleeps, then wait on the slot: spin, then futex sleep, or, for `validate_async`, register a
//! waker.
//!
//! Invariants:
//! - every request gets exactly one verdict: an immediate deny (overload, shutdown, oversized),
//!   or one written by a core; shutdown answers everything accepted before it;
//! - queues are bounded: rings and injectors by config, slots by `engine.reply_slots`;
//! - overload is a deny with a reason, never a wait without bound and never an allow.

mod baton;
mod build;
mod core;
mod ipc;
mod pipeline;
mod shared;
mod slot;

pub use build::{BuildError, EngineBuilder};

pub(crate) use shared::{wake, CoreShared, Shared};

pub(crate) use self::core::{complete_audited, hsm_resume, hsm_verify_tag};
pub(crate) use pipeline::drop_payload;

use crate::cache::{CacheKey, Shard};
use crate::config::{Config, ConfigError, Executor};
use crate::engine::slot::{
    SlotPool, ABANDONED, CLAIMED, DONE, FREE, QUEUED, WAIT_ASYNC, WAIT_THREAD, WAKING,
};
use crate::metrics::{self, CoreMetrics, CoreSnapshot, Metrics, SubmitMetrics};
use crate::request::Request;
use crate::stage::{Outcome, Stage, StageResult};
use crate::sync::futex;
use crate::sync::ring::Ring;
use crate::time::now_ns;
use crate::types::{DenyReason, Priority, Verdict};
use crossbeam_utils::CachePadded;
use pipeline::{Custom, Pipeline};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// The running engine. Dropping it shuts it down.
pub struct Engine {
    shared: Arc<Shared>,
    policy: Option<Arc<crate::policy::PolicyStage>>,
    /// The cores' states, for caller-runs (`engine.caller_runs`; `None`: off).
    runs: Option<Arc<[baton::CoreCell]>>,
    /// The fleet's control-plane thread (`[fleet]`; `None`: no fleet).
    #[cfg(feature = "fleet")]
    fleet: std::sync::Mutex<Option<crate::fleet::Node>>,
}

/// How the fleet's thread changes this engine's state: as the `Engine` methods do, without
/// publishing (the change came from the fleet).
#[cfg_attr(not(feature = "fleet"), allow(dead_code))]
struct FleetApply {
    shared: Arc<Shared>,
    policy: Option<Arc<crate::policy::PolicyStage>>,
}

fn wall_ms() -> u64 {
    crate::time::wall_ns() / 1_000_000
}

/// Revokes or releases an agent; false without identity checks.
fn set_revoked(
    sh: &Shared,
    policy: &Option<Arc<crate::policy::PolicyStage>>,
    tenant: &str,
    agent: &str,
    revoked: bool,
) -> bool {
    match policy.as_ref().and_then(|p| p.identity()) {
        Some(id) if revoked => {
            id.revoke_agent(tenant, agent);
            sh.epoch.fetch_add(1, AcqRel);
            true
        }
        Some(id) => {
            id.release_agent(tenant, agent);
            true
        }
        None => false,
    }
}

/// Quarantines an agent until `until_ns` (monotonic) on every core; false when the table has
/// no room for it.
fn set_quarantine(sh: &Shared, tenant: &str, agent: &str, until_ns: u64, now: u64) -> bool {
    let key = sh.keyed.agent(tenant, agent);
    if !sh.quarantine.insert(key, until_ns, now) {
        return false;
    }
    sh.quarantine
        .name(key, tenant, agent, crate::anomaly::Trigger::Operator);
    if let Some(t) = &sh.trust {
        t.incident(key, now);
    }
    true
}

impl crate::fleet::Apply for FleetApply {
    fn agent(&self, tenant: &str, agent: &str, revoked: bool) -> bool {
        set_revoked(&self.shared, &self.policy, tenant, agent, revoked)
    }

    fn quarantine(&self, tenant: &str, agent: &str, until_unix_ms: u64) -> bool {
        let (sh, now) = (&*self.shared, now_ns());
        if until_unix_ms == 0 {
            sh.quarantine.release(sh.keyed.agent(tenant, agent), now);
            return true;
        }
        // an end already past (or a clock ahead of the writer's) is nothing to apply, never a
        // release: only an explicit 0 releases
        let left_ms = until_unix_ms.saturating_sub(wall_ms());
        if left_ms == 0 {
            return true;
        }
        set_quarantine(
            sh,
            tenant,
            agent,
            now.saturating_add(left_ms.saturating_mul(1_000_000)),
            now,
        )
    }

    fn token(&self, digest: u128) -> bool {
        match self.policy.as_ref().and_then(|p| p.identity()) {
            Some(id) => {
                id.revoke_token_digest(digest);
                self.shared.epoch.fetch_add(1, AcqRel);
                true
            }
            None => false,
        }
    }

    fn count_demand(&self) {
        if let Some(p) = &self.policy {
            p.count_demand();
        }
    }

    fn demand(&self) -> Vec<(String, u64)> {
        self.policy
            .as_ref()
            .map_or_else(Vec::new, |p| p.tenant_demand())
    }

    fn set_shares(&self, share: &dyn Fn(&str) -> f64) {
        if let Some(p) = &self.policy {
            p.set_shares(share);
        }
    }

    fn policy(&self, toml: &str, name: &str) -> Result<(), String> {
        let Some(p) = &self.policy else {
            return Err(
                "this node was built without a policy (policy.file); a fleet policy needs one \
                 to replace"
                    .into(),
            );
        };
        let new = crate::policy::Snapshot::from_toml(toml, name).map_err(|e| e.to_string())?;
        p.swap(new);
        self.shared.epoch.fetch_add(1, AcqRel);
        Ok(())
    }
}

impl Engine {
    pub fn builder() -> EngineBuilder {
        EngineBuilder::default()
    }

    /// A cheap, cloneable submission handle for any thread.
    pub fn handle(&self) -> Handle {
        Handle {
            shared: self.shared.clone(),
            runs: self.runs.clone(),
        }
    }

    /// Invalidates every cached verdict at once (policy reload, revocation). Returns the new
    /// epoch.
    pub fn bump_epoch(&self) -> u64 {
        self.shared.epoch.fetch_add(1, AcqRel) + 1
    }

    /// Compiles `path` and swaps it in atomically: requests already evaluating finish on the
    /// old policy, every later request (cached verdicts included) sees the new one. Fails,
    /// changing nothing, when the file has an error or the engine was built without a policy.
    pub fn reload_policy(&self, path: &std::path::Path) -> Result<u64, crate::policy::PolicyError> {
        let new = crate::policy::Snapshot::load(path)?;
        self.swap_policy(new)
    }

    /// Swaps in an already compiled policy (see `reload_policy`). Returns the new epoch.
    pub fn swap_policy(
        &self,
        new: crate::policy::Snapshot,
    ) -> Result<u64, crate::policy::PolicyError> {
        let Some(p) = &self.policy else {
            return Err(crate::policy::PolicyError {
                file: new.file.clone(),
                line: None,
                field: "policy.file".into(),
                message: "this engine was built without a policy; set policy.file in the config"
                    .into(),
            });
        };
        p.swap(new);
        Ok(self.bump_epoch())
    }

    /// Tells warden how an agent's action went, as the gateway saw it (a sandbox violation, a
    /// human override, a success, peer feedback): it moves the agent's trust score, which the
    /// policy acts on from the next request. Returns false when trust is off (`trust.enabled`)
    /// or, with a policy, when the policy does not know the agent (nothing would read it).
    pub fn report(&self, tenant: &str, agent: &str, outcome: crate::trust::Report) -> bool {
        let Some(t) = &self.shared.trust else {
            return false;
        };
        if let Some(p) = &self.policy {
            let s = p.snapshot();
            if s.tenant_id(tenant)
                .and_then(|t| s.agent_id(t, agent))
                .is_none()
            {
                return false;
            }
        }
        t.report(self.shared.keyed.agent(tenant, agent), outcome, now_ns());
        true
    }

    /// Sets an agent's trust score (an operator's decision after an investigation; `warden
    /// policy test` cases with `trust = ...`). It decays toward the baseline from there.
    /// Returns false when trust is off.
    pub fn set_trust(&self, tenant: &str, agent: &str, score: f32) -> bool {
        match &self.shared.trust {
            Some(t) => {
                t.set(self.shared.keyed.agent(tenant, agent), score, now_ns());
                true
            }
            None => false,
        }
    }

    /// An agent's trust score now, in [0, 1] (`None` when trust is off).
    pub fn trust(&self, tenant: &str, agent: &str) -> Option<f32> {
        let t = self.shared.trust.as_ref()?;
        Some(t.score(self.shared.keyed.agent(tenant, agent), now_ns()))
    }

    /// Revokes an agent: its next request is denied on every core, cached allows included.
    /// Returns false when identity checks are not enabled (`identity.require_token`).
    /// With `[fleet]`, the revocation is published and every node applies it.
    pub fn revoke_agent(&self, tenant: &str, agent: &str) -> bool {
        self.set_revoked(tenant, agent, true)
    }

    /// Lifts an agent's revocation on this node. With `[fleet]`, a release widens access, so
    /// it is not published from a node: `warden fleet release`, signed by the operator's key,
    /// releases an agent on every node (a node's own credentials can only narrow).
    pub fn release_agent(&self, tenant: &str, agent: &str) -> bool {
        set_revoked(&self.shared, &self.policy, tenant, agent, false)
    }

    fn set_revoked(&self, tenant: &str, agent: &str, revoked: bool) -> bool {
        if !set_revoked(&self.shared, &self.policy, tenant, agent, revoked) {
            return false;
        }
        self.publish(crate::fleet::state::Record::Agent {
            tenant: tenant.into(),
            agent: agent.into(),
            revoked,
        });
        true
    }

    /// Hands a change to the fleet's thread (nothing without `[fleet]`).
    fn publish(&self, c: crate::fleet::state::Record) {
        if let Some(o) = self.shared.fleet_out.get() {
            o.publish(c);
        }
    }

    /// Ends an agent's quarantine on this node now (its behaviour baselines start afresh).
    /// False when it was not quarantined here. With `[fleet]`, as `release_agent`: `warden
    /// fleet unquarantine`, signed by the operator's key, ends it on every node.
    pub fn release_quarantine(&self, tenant: &str, agent: &str) -> bool {
        self.shared
            .quarantine
            .release(self.shared.keyed.agent(tenant, agent), now_ns())
    }

    /// Quarantines an agent for `duration_ms` (an operator's decision): every request it makes,
    /// and every request made through a credential it delegated, is denied `quarantined` on
    /// every core until then or `release_quarantine`. Counts as an incident for its trust score.
    /// False when the quarantine table has no room for it.
    /// With `[fleet]`, every node quarantines it until the same wall-clock time.
    pub fn quarantine(&self, tenant: &str, agent: &str, duration_ms: u64) -> bool {
        let now = now_ns();
        let until = now.saturating_add(duration_ms.saturating_mul(1_000_000));
        if !set_quarantine(&self.shared, tenant, agent, until, now) {
            return false;
        }
        self.publish(crate::fleet::state::Record::Quarantine {
            tenant: tenant.into(),
            agent: agent.into(),
            until_unix_ms: wall_ms().saturating_add(duration_ms).max(1),
        });
        true
    }

    /// This node's share of `tenant`'s rate and burst (1 without fleet rate budgets; `None`
    /// without a policy, or for a tenant it does not know).
    pub fn tenant_share(&self, tenant: &str) -> Option<f64> {
        self.policy.as_ref()?.share(tenant)
    }

    /// Starts the fleet's control-plane thread (`[fleet]`).
    #[cfg(feature = "fleet")]
    pub(crate) fn start_fleet(&self) -> Result<(), String> {
        let apply = Arc::new(FleetApply {
            shared: self.shared.clone(),
            policy: self.policy.clone(),
        });
        let (node, outbox) =
            crate::fleet::Node::start(&self.shared.config.fleet, self.shared.fleet.clone(), apply)?;
        // every checkpoint HEAD names goes off the node, to the checkpoint stream
        if let Some(q) = &self.shared.audit {
            let (out, node) = (outbox.clone(), self.shared.config.fleet.node_name());
            let _ = q.on_checkpoint.set(Box::new(move |seq, head, sig| {
                out.publish(crate::fleet::state::Record::Checkpoint {
                    node: node.clone(),
                    seq,
                    head: crate::secrets::to_hex(head),
                    signature: crate::secrets::to_hex(sig),
                });
            }));
        }
        let _ = self.shared.fleet_out.set(outbox);
        *self.fleet.lock().unwrap_or_else(|e| e.into_inner()) = Some(node);
        Ok(())
    }

    /// Agents quarantined now, with what triggered it and the cool-down left.
    pub fn quarantined(&self) -> Vec<crate::anomaly::Quarantined> {
        self.shared.quarantine.list(now_ns())
    }

    /// Revokes one token, and every credential delegated from it (on every node, with
    /// `[fleet]`: what is published is its digest, never the token).
    pub fn revoke_token(&self, token: &str) -> bool {
        match self.policy.as_ref().and_then(|p| p.identity()) {
            Some(id) => {
                id.revoke_token(token.as_bytes());
                self.bump_epoch();
                let text = crate::identity::without_proof(token.as_bytes());
                self.publish(crate::fleet::state::Record::token(
                    crate::identity::token_digest(text),
                ));
                true
            }
            None => false,
        }
    }

    /// Explains a verdict's `rule` against the current policy.
    pub fn explain(&self, rule: u32) -> String {
        match &self.policy {
            Some(p) => p.snapshot().explain(rule),
            None => "no policy".into(),
        }
    }

    pub fn epoch(&self) -> u64 {
        self.shared.epoch.load(Acquire)
    }

    pub fn cores(&self) -> usize {
        self.shared.cores.len()
    }

    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// Names of the registered stages, in order.
    pub fn stages(&self) -> Vec<String> {
        self.shared.pipeline.stage_names()
    }

    /// Stops taking work, answers every request already accepted, and waits for the cores to
    /// exit. Idempotent; later submissions get `Deny(ShuttingDown)`.
    pub fn shutdown(&self) {
        let sh = &self.shared;
        sh.shutdown.store(true, SeqCst);
        loop {
            if sh.running.load(SeqCst) == 0 {
                break;
            }
            for c in sh.cores.iter() {
                c.sleeping.store(0, SeqCst);
                futex::wake(&c.sleeping, 1);
                shared::ring_eventfd(c.wake_fd.load(SeqCst));
            }
            futex::wait(&sh.running_futex, 0, Some(Duration::from_millis(5)));
        }
        // Every core is gone, so nothing more is queued: the writer flushes, syncs and stops.
        sh.audit_done.store(true, SeqCst);
        if let Some(q) = &sh.audit {
            q.sleeping.store(0, SeqCst);
            futex::wake(&q.sleeping, 1);
        }
        if sh.audit.is_some() {
            while sh.audit_exited.load(SeqCst) == 0 {
                futex::wait(&sh.audit_exited, 0, Some(Duration::from_millis(5)));
            }
        }
        // Then the fleet's thread, once the writer's last checkpoint is queued for it.
        #[cfg(feature = "fleet")]
        if let Some(mut n) = self.fleet.lock().unwrap_or_else(|e| e.into_inner()).take() {
            n.stop();
        }
        // Last the HSM core (the writer may have signed a final checkpoint with it).
        sh.keys.shutdown();
    }

    /// Whether a policy is loaded (`policy.file` or `EngineBuilder::policy`).
    pub fn has_policy(&self) -> bool {
        self.policy.is_some()
    }

    /// The CPUs the cores are pinned to (empty when unpinned).
    pub fn core_cpus(&self) -> Vec<usize> {
        self.shared.cores.iter().filter_map(|c| c.cpu).collect()
    }

    /// A merged snapshot of every core's metrics.
    pub fn metrics(&self) -> Metrics {
        self.handle().metrics()
    }

    /// Makes the cores serve the shared-memory clients of `table` (`warden serve`): each core
    /// gets an eventfd and an epoll set to sleep in, and from then on reads the rings of the
    /// clients whose home it is. Once per engine.
    pub fn attach_ipc(&self, table: Arc<crate::ipc::shm::Table>) -> std::io::Result<()> {
        if self.shared.ipc.get().is_some() {
            return Err(std::io::Error::other(
                "shared-memory clients already attached to this engine",
            ));
        }
        for c in self.shared.cores.iter() {
            // SAFETY: plain descriptor-creating calls with constant flags.
            let (efd, epfd) = unsafe {
                (
                    libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC),
                    libc::epoll_create1(libc::EPOLL_CLOEXEC),
                )
            };
            if efd < 0 || epfd < 0 {
                let e = std::io::Error::last_os_error();
                // SAFETY: closes descriptors this call made (a negative one is skipped).
                unsafe {
                    if efd >= 0 {
                        libc::close(efd);
                    }
                    if epfd >= 0 {
                        libc::close(epfd);
                    }
                }
                return Err(e);
            }
            crate::ipc::shm::epoll_add(epfd, efd, ipc::OWN_EVENTFD | efd as u64)?;
            c.wake_fd.store(efd, SeqCst);
            c.epoll_fd.store(epfd, SeqCst);
        }
        self.shared
            .ipc
            .set(table)
            .map_err(|_| std::io::Error::other("shared-memory clients already attached"))?;
        for c in self.shared.cores.iter() {
            shared::wake(c);
            futex::wake(&c.sleeping, 1);
        }
        Ok(())
    }

    /// The epoll set of core `core` (where a client's doorbell is registered), or -1.
    pub fn core_epoll_fd(&self, core: usize) -> i32 {
        self.shared
            .cores
            .get(core)
            .map_or(-1, |c| c.epoll_fd.load(SeqCst))
    }

    /// Wakes core `core` if it sleeps (a client's cell changed state).
    pub fn wake_core(&self, core: usize) {
        if let Some(c) = self.shared.cores.get(core) {
            shared::wake(c);
        }
    }

    /// The keys (software keystore or HSM): HMAC, AES-256-GCM, signatures.
    pub fn keys(&self) -> crate::hsm::Keys {
        self.shared.keys.clone()
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Submits requests from any thread. `Clone + Send + Sync`.
#[derive(Clone)]
pub struct Handle {
    shared: Arc<Shared>,
    /// The cores' states, for caller-runs (`None`: off).
    runs: Option<Arc<[baton::CoreCell]>>,
}

#[inline]
fn route(agent_hash: u64, cores: usize) -> usize {
    ((agent_hash as u128 * cores as u128) >> 64) as usize
}

/// Puts `req` into a slot and onto its owner core's ring. `Err` is an immediate verdict. `tag`
/// is 0 for a request whose submitter waits on the slot, or a shared-memory client's tag
/// (`ipc::shm::tag`): the core then delivers the verdict into that client's memory and frees
/// the slot itself.
#[inline]
pub(crate) fn submit(sh: &Shared, req: &Request<'_>, tag: u64) -> Result<u32, Verdict> {
    submit_or_run(sh, req, tag, None, 0)
}

/// `submit`, and with `runs` (caller-runs, `baton.rs`): when the owner core sleeps, serve its
/// rings on this thread instead of ringing its doorbell.
#[inline]
fn submit_or_run(
    sh: &Shared,
    req: &Request<'_>,
    tag: u64,
    runs: Option<&[baton::CoreCell]>,
    started: u64,
) -> Result<u32, Verdict> {
    if sh.shutdown.load(Relaxed) {
        return Err(Verdict::deny(DenyReason::ShuttingDown));
    }
    let p = req.priority;
    let Some(idx) = sh.pool.acquire(p.sheddable()) else {
        sh.submit.shed[p.index()].fetch_add(1, Relaxed);
        return Err(Verdict::deny(DenyReason::Overloaded));
    };
    let slot = &sh.pool.slots[idx as usize];
    slot.state.store(CLAIMED, SeqCst);
    slot.ipc.store(tag, Relaxed);
    let give_back = |reason| {
        slot.state.store(FREE, Release);
        sh.pool.release(idx);
        Err(Verdict::deny(reason))
    };
    if sh.shutdown.load(SeqCst) {
        return give_back(DenyReason::ShuttingDown);
    }
    // SAFETY: we hold the slot in state CLAIMED: nobody else touches its buffer.
    let buf = unsafe { slot.buf_mut() };
    let len = match req.encode(buf) {
        Ok(n) => n,
        // Name the exact field over its limit when the request does not fit.
        Err(r) => return give_back(sh.limits.check(req).err().unwrap_or(r)),
    };
    let key = CacheKey::from_wire(&sh.keyed, &buf[..len], req.classification, req.tenant);
    slot.key_lo.store(key.hash as u64, Relaxed);
    slot.key_hi.store((key.hash >> 64) as u64, Relaxed);
    slot.key_tenant.store(key.tenant, Relaxed);
    let agent = sh.keyed.agent(req.tenant, req.agent);
    slot.agent.store(agent, Relaxed);
    let (kind, arg) = req.operation.code();
    slot.meta.store(
        kind as u32 | (arg as u32) << 8 | (req.classification as u32) << 24,
        Relaxed,
    );
    slot.len.store(len as u32, Relaxed);
    slot.enqueued_ns.store(now_ns(), Relaxed);
    slot.state.store(QUEUED, Release);
    let c = route(agent, sh.cores.len());
    let core = &sh.cores[c];
    if core.rings[p.index()].push(idx).is_ok() {
        fence(SeqCst);
        if let Some(cells) = runs {
            if cells[c].run_here(sh, c, started) {
                return Ok(idx);
            }
        }
        wake(core);
        return Ok(idx);
    }
    if !p.sheddable() && sh.overflow[p.index()].push(idx).is_ok() {
        sh.submit.overflowed[p.index()].fetch_add(1, Relaxed);
        fence(SeqCst);
        // Wake the owner and one sleeping core to steal.
        wake(core);
        if let Some(idle) = sh.cores.iter().find(|c| c.sleeping.load(Relaxed) == 1) {
            wake(idle);
        }
        return Ok(idx);
    }
    sh.submit.shed[p.index()].fetch_add(1, Relaxed);
    give_back(DenyReason::Overloaded)
}

pub use ipc::wake_data as ipc_wake_data;

impl Handle {
    /// The core that owns (tenant, agent).
    pub fn owner_core(&self, tenant: &str, agent: &str) -> usize {
        route(
            self.shared.keyed.agent(tenant, agent),
            self.shared.cores.len(),
        )
    }

    /// Puts `req` into a slot and onto a ring. `Err` is an immediate verdict.
    #[inline]
    fn submit(&self, req: &Request<'_>, started: u64) -> Result<u32, Verdict> {
        submit_or_run(&self.shared, req, 0, self.runs.as_deref(), started)
    }

    /// Reads the verdict of a DONE slot and frees it.
    #[inline]
    fn take(&self, idx: u32) -> Verdict {
        let slot = &self.shared.pool.slots[idx as usize];
        // SAFETY: the caller observed DONE with acquire ordering and is the slot's waiter.
        let v = unsafe { slot.verdict() };
        slot.state.store(FREE, Release);
        self.shared.pool.release(idx);
        v
    }

    /// Waits for the verdict of a submitted slot: spin, then futex sleep, up to the timeout.
    fn wait(&self, idx: u32, submitted: u64) -> Verdict {
        let sh = &*self.shared;
        let slot = &sh.pool.slots[idx as usize];
        let spin_until = submitted + sh.wait_spin_ns;
        let mut last = submitted;
        let mut i = 0u32;
        loop {
            if slot.state.load(Acquire) == DONE {
                return self.take(idx);
            }
            i = i.wrapping_add(1);
            if i.is_multiple_of(32) {
                let now = now_ns();
                // Past the budget, or descheduled mid-spin (the CPU is shared: spinning on it
                // only keeps the core that would answer from running): sleep.
                if now >= spin_until || now.saturating_sub(last) > self::core::PREEMPTED_NS {
                    break;
                }
                last = now;
            }
            std::hint::spin_loop();
        }
        let deadline = submitted + sh.timeout_ns;
        match slot
            .state
            .compare_exchange(QUEUED, WAIT_THREAD, AcqRel, Acquire)
        {
            Ok(_) => {}
            Err(DONE) => return self.take(idx),
            Err(s) => debug_assert!(false, "unexpected slot state {s}"),
        }
        loop {
            let now = now_ns();
            if now >= deadline {
                match slot
                    .state
                    .compare_exchange(WAIT_THREAD, ABANDONED, AcqRel, Acquire)
                {
                    Ok(_) => {
                        sh.submit.timeouts.fetch_add(1, Relaxed);
                        return Verdict::deny(DenyReason::Timeout);
                    }
                    Err(_) => return self.take(idx), // DONE meanwhile
                }
            }
            futex::wait(
                &slot.state,
                WAIT_THREAD,
                Some(Duration::from_nanos(deadline - now)),
            );
            if slot.state.load(Acquire) == DONE {
                return self.take(idx);
            }
        }
    }

    /// Validates `req`, blocking this thread until the verdict (at most
    /// `engine.request_timeout_us`, then `Deny(Timeout)`).
    #[inline]
    pub fn validate(&self, req: &Request<'_>) -> Verdict {
        // The deadline counts from before the submission: a caller that serves its core's
        // rings itself (caller-runs) spends part of its wait there.
        let started = now_ns();
        match self.submit(req, started) {
            Ok(idx) => self.wait(idx, started),
            Err(v) => v,
        }
    }

    /// Validates `req` without blocking: the request is submitted now, and the returned future
    /// resolves to its verdict. Works from any executor (it only uses the context's waker).
    /// Dropping the future early is safe: the core completes the request and reclaims the slot.
    pub fn validate_async(&self, req: &Request<'_>) -> ValidateFuture<'_> {
        let state = match self.submit(req, now_ns()) {
            Ok(idx) => FutState::Pending(idx),
            Err(v) => FutState::Ready(v),
        };
        ValidateFuture {
            handle: self,
            state,
        }
    }

    /// Validates a batch at one priority; verdicts come back in input order.
    pub fn validate_batch(&self, reqs: &[Request<'_>], priority: Priority) -> Vec<Verdict> {
        let mut out = vec![Verdict::default(); reqs.len()];
        self.validate_batch_into(reqs, priority, &mut out);
        out
    }

    /// `validate_batch` into a caller-provided slice (no allocation). Keeps up to 64 requests in
    /// flight at once so several cores work on one batch.
    ///
    /// # Panics
    /// When `out` is shorter than `reqs`.
    pub fn validate_batch_into(
        &self,
        reqs: &[Request<'_>],
        priority: Priority,
        out: &mut [Verdict],
    ) {
        assert!(
            out.len() >= reqs.len(),
            "out must hold one verdict per request"
        );
        const WINDOW: usize = 64;
        let mut pending = [(0u32, 0u64, false); WINDOW];
        for (chunk_i, chunk) in reqs.chunks(WINDOW).enumerate() {
            let base = chunk_i * WINDOW;
            for (j, r) in chunk.iter().enumerate() {
                let r = Request { priority, ..*r };
                let started = now_ns();
                pending[j] = match self.submit(&r, started) {
                    Ok(idx) => (idx, started, true),
                    Err(v) => {
                        out[base + j] = v;
                        (0, 0, false)
                    }
                };
            }
            for (j, &(idx, t, live)) in pending[..chunk.len()].iter().enumerate() {
                if live {
                    out[base + j] = self.wait(idx, t);
                }
            }
        }
    }

    /// A merged snapshot of every core's metrics.
    pub fn metrics(&self) -> Metrics {
        let sh = &*self.shared;
        let mut all = metrics::new_histogram();
        let mut m = Metrics {
            cores: sh.cores.len(),
            uptime_s: sh.started.elapsed().as_secs_f64(),
            policy_epoch: sh.epoch.load(Relaxed),
            reply_slots_free: sh.pool.free(),
            ..Metrics::default()
        };
        let (mut sum, mut max) = (0u64, 0u64);
        for (i, c) in sh.cores.iter().enumerate() {
            let cm = &c.metrics;
            let mut h = metrics::new_histogram();
            cm.latency.merge_into(&mut h);
            let (s, mx) = cm.latency_parts();
            let _ = all.add(&h);
            sum += s;
            max = max.max(mx);
            let depth = Priority::ALL.map(|p| c.rings[p.index()].len());
            for (total, d) in m.queue_depth.iter_mut().zip(depth) {
                *total += d;
            }
            m.validations += cm.processed.get();
            m.allows += cm.allows.get();
            m.allow_with += cm.allow_with.get();
            m.denies += cm.denies.get();
            m.cache_hits += cm.cache_hits.get();
            m.cache_misses += cm.cache_misses.get();
            m.cache_entries += cm.cache_entries.get();
            m.cache_evictions += cm.evictions.get();
            m.cache_expired += cm.expired.get();
            m.integrity_failures += cm.integrity_failures.get();
            m.epoch_misses += cm.epoch_misses.get();
            m.stage_panics += cm.stage_panics.get();
            m.quarantine_denials += cm.quarantine_denials.get();
            m.steals += cm.steals.get();
            m.aged += cm.aged.get();
            m.core_parks += cm.parks.get();
            m.caller_served += cm.caller_served.get();
            m.preempted_spins += cm.preempted_spins.get();
            m.per_core.push(CoreSnapshot {
                core: i,
                cpu: c.cpu,
                validations: cm.processed.get(),
                cache_hits: cm.cache_hits.get(),
                steals: cm.steals.get(),
                cache_entries: cm.cache_entries.get(),
                queue_depth: depth,
                latency: metrics::summarize(&h, s, mx),
            });
        }
        for p in 0..3 {
            m.overflow_depth[p] = sh.overflow[p].len();
        }
        for p in 0..Priority::COUNT {
            m.shed[p] = sh.submit.shed[p].load(Relaxed);
            m.overflowed[p] = sh.submit.overflowed[p].load(Relaxed);
        }
        m.timeouts = sh.submit.timeouts.load(Relaxed);
        let q = &sh.quarantine;
        m.quarantines_started = q.started.load(Relaxed);
        m.quarantines_released = q.released.load(Relaxed);
        m.quarantine_full = q.full.load(Relaxed);
        m.quarantined_agents = q.count(now_ns());
        if let Some(t) = &sh.trust {
            m.trust_table_full = t.full.load(Relaxed);
            m.trust_updates_lost = t.lost.load(Relaxed);
        }
        if let Some(a) = &sh.audit {
            let c = &a.counters;
            m.audit = Some(metrics::AuditMetrics {
                queue_depth: a.depth(),
                queued: c.queued.load(Relaxed),
                written: c.written.load(Relaxed),
                backpressure: c.backpressure.load(Relaxed),
                write_failures: c.write_failures.load(Relaxed),
                failed_records: c.failed_records.load(Relaxed),
                checkpoints: c.checkpoints.load(Relaxed),
                syncs: c.syncs.load(Relaxed),
                healthy: a.healthy.load(Relaxed),
                siem_sent: sh.siem.as_ref().map_or(0, |s| s.sent.load(Relaxed)),
                siem_dropped: sh.siem.as_ref().map_or(0, |s| s.dropped.load(Relaxed)),
                siem_errors: sh.siem.as_ref().map_or(0, |s| s.errors.load(Relaxed)),
            });
        }
        m.hsm = sh.keys.metrics();
        if let Some(o) = sh.fleet_out.get() {
            m.fleet = Some(crate::fleet::metrics(&sh.fleet, &o.stats, now_ns()));
        }
        m.latency = metrics::summarize(&all, sum, max);
        let lookups = m.cache_hits + m.cache_misses;
        m.cache_hit_rate = if lookups == 0 {
            0.0
        } else {
            m.cache_hits as f64 / lookups as f64
        };
        m.throughput_per_s = if m.uptime_s > 0.0 {
            m.validations as f64 / m.uptime_s
        } else {
            0.0
        };
        let (cpu, rss) = metrics::process_usage();
        m.process_cpu_s = cpu;
        m.process_rss_bytes = rss;
        m
    }
}

enum FutState {
    Pending(u32),
    Ready(Verdict),
    Finished,
}

/// The future of [`Handle::validate_async`].
pub struct ValidateFuture<'h> {
    handle: &'h Handle,
    state: FutState,
}

impl Future for ValidateFuture<'_> {
    type Output = Verdict;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Verdict> {
        match self.state {
            FutState::Finished => panic!("ValidateFuture polled after completion"),
            FutState::Ready(v) => {
                self.state = FutState::Finished;
                Poll::Ready(v)
            }
            FutState::Pending(idx) => {
                let slot = &self.handle.shared.pool.slots[idx as usize];
                let done = || {
                    // A core is between publishing and waking: it finishes in a few instructions.
                    while slot.state.load(Acquire) == WAKING {
                        std::hint::spin_loop();
                    }
                    slot.state.load(Acquire) == DONE
                };
                if done() {
                    self.state = FutState::Finished;
                    return Poll::Ready(self.handle.take(idx));
                }
                slot.waker.register(cx.waker());
                let _ = slot
                    .state
                    .compare_exchange(QUEUED, WAIT_ASYNC, AcqRel, Acquire);
                if done() {
                    self.state = FutState::Finished;
                    return Poll::Ready(self.handle.take(idx));
                }
                Poll::Pending
            }
        }
    }
}

impl Drop for ValidateFuture<'_> {
    fn drop(&mut self) {
        if let FutState::Pending(idx) = self.state {
            let slot = &self.handle.shared.pool.slots[idx as usize];
            loop {
                let cur = slot.state.load(Acquire);
                match cur {
                    DONE => {
                        let _ = self.handle.take(idx);
                        return;
                    }
                    WAKING => std::hint::spin_loop(),
                    _ => {
                        if slot
                            .state
                            .compare_exchange(cur, ABANDONED, AcqRel, Acquire)
                            .is_ok()
                        {
                            return;
                        }
                    }
                }
            }
        }
    }
}
