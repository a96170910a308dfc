//! The policy stage: identity (agent registered in its tenant), rate limits, then authorization,
//! against one policy snapshot per request. It runs before the cache lookup (a pre-cache stage),
//! so a reload, an exhausted rate or a changed grant takes effect on the very next request,
//! cached verdicts included.
//!
//! Rate limits are GCRA per agent and per tenant: one `AtomicU64` theoretical arrival time per
//! agent and per tenant, updated by CAS. That is lock-free and allocation-free, and it stays
//! exact when an overflowing request is stolen by another core (DESIGN.md kept buckets on the
//! owner core; a CAS on a line that only the owner core normally touches costs the same and
//! survives stealing). Rate state lives in the snapshot: a reload starts every bucket afresh.
//!
//! Reload: the current snapshot is an `AtomicPtr`; a reload publishes a new one and retires the
//! old one into a list freed when the stage is dropped (after every core has stopped), so a
//! core never sees a freed snapshot and never touches a reference count per request.

use super::{PolicyError, Snapshot};
use crate::request::Request;
use crate::stage::{Outcome, Stage, StageResult};
use crate::time::now_ns;
use crate::types::{Classification, DenyReason, Operation};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, Ordering::*};

/// GCRA buckets for one snapshot.
struct Buckets {
    agents: Box<[AtomicU64]>,
    tenants: Box<[AtomicU64]>,
    /// This node's share of each tenant's rate and burst (`SHARE_ONE` = all of it): below
    /// one on a fleet node, where the fleet's thread sets it from every node's demand.
    tenant_shares: Box<[AtomicU32]>,
    /// Requests that reached each tenant's rate check (counted only on a fleet node with rate
    /// budgets: the demand it reports).
    tenant_demand: Box<[AtomicU64]>,
}

/// A tenant's whole rate, as a share (fixed point).
pub const SHARE_ONE: u32 = 1 << 20;

struct Live {
    policy: Snapshot,
    buckets: Buckets,
}

/// What the engine knows of agents beyond the policy (`PolicyStage::with_standing`).
struct Standing {
    keyed: std::sync::Arc<crate::keyed::KeyedHash>,
    quarantine: std::sync::Arc<crate::anomaly::Quarantine>,
}

pub struct PolicyStage {
    identity: Option<std::sync::Arc<crate::identity::Identity>>,
    /// Whether every request needs a token; when not, a token a request carries is still
    /// verified and applied (and refused `unknown_key` with no identity to verify it).
    tokens_required: bool,
    current: AtomicPtr<Live>,
    /// Trust scores the policy acts on (`min_trust`, `[trust] low`); `None` when off.
    trust: Option<std::sync::Arc<crate::trust::Trust>>,
    /// Quarantines and the agent keys they go by, for agents earlier in a delegation chain
    /// (the delegate's own is checked by its core before the cache).
    standing: Option<Standing>,
    retired: flume::Sender<Box<Live>>,
    retired_rx: flume::Receiver<Box<Live>>,
    /// Whether requests are counted per tenant (`tenant_demand`): on with fleet rate budgets.
    count_demand: AtomicBool,
}

fn live(policy: Snapshot) -> Box<Live> {
    let buckets = Buckets {
        agents: policy.agents.iter().map(|_| AtomicU64::new(0)).collect(),
        tenants: policy.tenants.iter().map(|_| AtomicU64::new(0)).collect(),
        tenant_shares: policy
            .tenants
            .iter()
            .map(|_| AtomicU32::new(SHARE_ONE))
            .collect(),
        tenant_demand: policy.tenants.iter().map(|_| AtomicU64::new(0)).collect(),
    };
    Box::new(Live { policy, buckets })
}

/// A rate and burst scaled by a share (`SHARE_ONE`: unchanged). A share never makes a limited
/// rate unlimited, and leaves a burst of at least one.
#[inline]
fn scaled(per_s: f64, burst: u32, share: u32) -> (f64, u32) {
    if share >= SHARE_ONE {
        return (per_s, burst);
    }
    let f = share.max(1) as f64 / SHARE_ONE as f64;
    (
        per_s * f,
        ((burst as f64 * f).floor() as u32).clamp(1, burst.max(1)),
    )
}

/// One GCRA step. `Err(retry_after_ns)` when over the rate.
#[inline]
fn gcra(tat: &AtomicU64, now: u64, per_s: f64, burst: u32) -> Result<(), u64> {
    if per_s <= 0.0 {
        return Ok(());
    }
    // at most a year between two requests (a rate of 1e-12/s would overflow the clock)
    let t = (1e9 / per_s).min(365.0 * 86_400.0 * 1e9) as u64;
    let tau = t.saturating_mul(burst.saturating_sub(1) as u64);
    let mut cur = tat.load(Relaxed);
    loop {
        let base = cur.max(now);
        if base - now > tau {
            return Err(base - now - tau);
        }
        match tat.compare_exchange_weak(cur, base.saturating_add(t), Relaxed, Relaxed) {
            Ok(_) => return Ok(()),
            Err(c) => cur = c,
        }
    }
}

impl PolicyStage {
    /// A policy stage; with `identity`, every request must carry a valid token.
    pub fn new(
        policy: Snapshot,
        identity: Option<std::sync::Arc<crate::identity::Identity>>,
    ) -> PolicyStage {
        let (tx, rx) = flume::unbounded();
        PolicyStage {
            tokens_required: identity.is_some(),
            identity,
            current: AtomicPtr::new(Box::into_raw(live(policy))),
            trust: None,
            standing: None,
            retired: tx,
            retired_rx: rx,
            count_demand: AtomicBool::new(false),
        }
    }

    /// Whether every request needs a token (the default with an identity), or only those that
    /// carry one are verified.
    pub fn tokens_required(mut self, required: bool) -> PolicyStage {
        self.tokens_required = required && self.identity.is_some();
        self
    }

    /// Judges by trust scores from `trust` (shared with the cores that keep them).
    pub fn with_trust(mut self, trust: Option<std::sync::Arc<crate::trust::Trust>>) -> PolicyStage {
        self.trust = trust;
        self
    }

    /// Judges agents earlier in a delegation chain by the engine's quarantines too.
    pub fn with_standing(
        mut self,
        keyed: std::sync::Arc<crate::keyed::KeyedHash>,
        quarantine: std::sync::Arc<crate::anomaly::Quarantine>,
    ) -> PolicyStage {
        self.standing = Some(Standing { keyed, quarantine });
        self
    }

    pub fn load(path: &Path) -> Result<PolicyStage, PolicyError> {
        Ok(Self::new(Snapshot::load(path)?, None))
    }

    pub fn identity(&self) -> Option<&crate::identity::Identity> {
        self.identity.as_deref()
    }

    fn live(&self) -> &Live {
        // SAFETY: `current` always holds a pointer from `Box::into_raw`; replaced pointers are
        // moved to `retired` and freed only in `Drop`, when no core can still be evaluating
        // (the pipeline owning this stage outlives every core). So the pointee is valid for
        // the lifetime of `&self`.
        unsafe { &*self.current.load(Acquire) }
    }

    /// The current policy.
    pub fn snapshot(&self) -> &Snapshot {
        &self.live().policy
    }

    /// Publishes a new policy. Requests that started before keep the old one to the end. Rate
    /// buckets start afresh; a tenant's share of a fleet-wide rate carries over by name.
    pub fn swap(&self, policy: Snapshot) {
        let fresh = live(policy);
        {
            let old = self.live();
            for (i, t) in fresh.policy.tenants.iter().enumerate() {
                if let Some(j) = old.policy.tenant_id(&t.name) {
                    let share = old.buckets.tenant_shares[j as usize].load(Relaxed);
                    fresh.buckets.tenant_shares[i].store(share, Relaxed);
                }
            }
        }
        let new = Box::into_raw(fresh);
        let old = self.current.swap(new, AcqRel);
        // SAFETY: `old` came from `Box::into_raw` and is no longer reachable through
        // `current`; it is kept alive in `retired` until `Drop`.
        let old = unsafe { Box::from_raw(old) };
        let _ = self.retired.send(old);
    }
}

/// Fleet rate budgets (control plane: the fleet's thread).
impl PolicyStage {
    /// Starts counting requests per tenant (`tenant_demand`).
    pub fn count_demand(&self) {
        self.count_demand.store(true, Relaxed);
    }

    /// Requests counted so far per rate-limited tenant of the current policy (cumulative; a
    /// policy swap starts them again from 0).
    pub fn tenant_demand(&self) -> Vec<(String, u64)> {
        let l = self.live();
        l.policy
            .tenants
            .iter()
            .enumerate()
            .filter(|(_, t)| t.rate.per_s > 0.0)
            .map(|(i, t)| (t.name.to_string(), l.buckets.tenant_demand[i].load(Relaxed)))
            .collect()
    }

    /// Sets this node's share of each tenant's rate and burst (0 to 1, by tenant name).
    pub fn set_shares(&self, share: &dyn Fn(&str) -> f64) {
        let l = self.live();
        for (i, t) in l.policy.tenants.iter().enumerate() {
            let s = share(&t.name);
            let fixed = if s.is_finite() {
                (s.clamp(0.0, 1.0) * SHARE_ONE as f64).round() as u32
            } else {
                SHARE_ONE
            };
            l.buckets.tenant_shares[i].store(fixed.max(1), Relaxed);
        }
    }

    /// This node's share of `tenant`'s rate now (1 without a fleet).
    pub fn share(&self, tenant: &str) -> Option<f64> {
        let l = self.live();
        let i = l.policy.tenant_id(tenant)? as usize;
        Some(l.buckets.tenant_shares[i].load(Relaxed) as f64 / SHARE_ONE as f64)
    }
}

impl Drop for PolicyStage {
    fn drop(&mut self) {
        // SAFETY: we own the current pointer (from `Box::into_raw`), and `&mut self` means no
        // evaluation is running.
        drop(unsafe { Box::from_raw(*self.current.get_mut()) });
        while self.retired_rx.try_recv().is_ok() {}
    }
}

impl Stage for PolicyStage {
    fn name(&self) -> &str {
        "policy"
    }
    /// Every operation: with a policy loaded, nothing is answered for a tenant or agent it does
    /// not know, nor without a token where tokens are required.
    fn handles(&self, _op: Operation) -> bool {
        true
    }
    /// A custom operation is judged by the policy (identity, grant) but decided by its own
    /// validator: with none registered it is `no_stage`, so a mistyped id fails closed.
    fn decides(&self, op: Operation) -> bool {
        !matches!(op, Operation::Custom(_))
    }
    fn pre_cache(&self) -> bool {
        true
    }
    fn evaluate(&self, req: &Request<'_>, out: &mut Outcome) -> StageResult {
        let l = self.live();
        let p = &l.policy;
        let now = now_ns();
        // A token presented is never ignored: verified and held to its limits, or refused. A
        // delegated one is also held to each agent earlier in its chain: its grants, and its
        // standing now (quarantine, trust, rate: every request made through it counts against
        // its rate, so delegating does not multiply it).
        let mut upstream_low = false;
        let mut charge = [0u64; crate::identity::chain::MAX_LINKS];
        let mut charged = 0usize;
        let verified = match &self.identity {
            Some(id) if self.tokens_required || !req.credential.is_empty() => {
                let mut upstream = |agent: &str| -> Result<Classification, DenyReason> {
                    let key = self
                        .standing
                        .as_ref()
                        .map(|s| s.keyed.agent(req.tenant, agent));
                    // The root agent is the one the chain proves took part (its issuer gave it
                    // the token); any later holder's secret was made by the one before it, who
                    // could sign in its name. So the root alone answers for the request: its
                    // record, its rate.
                    let root = charged == 0;
                    if let (true, Some(k)) = (root, key) {
                        charge[0] = k;
                        charged = 1;
                    }
                    let r = Request { agent, ..*req };
                    let g = p.authorize(&r).map_err(|_| DenyReason::Identity(OUTSIDE))?;
                    if let (Some(s), Some(k)) = (&self.standing, key) {
                        if s.quarantine.contains(k, now) {
                            return Err(DenyReason::Quarantined);
                        }
                    }
                    let (_, factor, low) = self.judge_trust(p, &g, key.unwrap_or(0), now)?;
                    upstream_low |= low;
                    if root {
                        agent_rate(l, p, &g, now, factor)?;
                    }
                    // mark the closure as past the root even without a key
                    charged = charged.max(1);
                    Ok(g.clearance)
                };
                let checked = id.check_with(req, &mut upstream);
                // a delegated request goes on its root agent's record
                out.charge = charge;
                out.charged = (charge[0] != 0) as u8;
                match checked {
                    Ok(v) => Some(v),
                    Err(reason) => return StageResult::Deny(reason),
                }
            }
            // a token with no identity to verify it: `NoIdentityStage` refuses it
            Some(_) | None => None,
        };
        // Whatever the operation, a tool named is judged as that tool: granted, within the
        // agent's and the token's level, at its classification; its resource by the resource
        // stage. (validate_agent, scan_content and crypto naming one are malformed.)
        // What follows goes on the agent's record (behaviour baseline, trust) only if the
        // request proves it comes from the agent: a token verified, or no identity configured
        // at all (then names are all there is). A request without a token where tokens are
        // optional proves nothing.
        let proven = verified.is_some() || self.identity.is_none();
        let grant = match p.authorize(req) {
            Ok(g) => g,
            Err((reason, rule)) => {
                out.rule = rule;
                // an agent the policy knows: the denial is on its record, at the score it had
                if !matches!(reason, DenyReason::UnknownTenant | DenyReason::UnknownAgent) {
                    out.trust_pct = self.trust_pct(out.agent, now);
                    out.attributed = proven;
                }
                return StageResult::Deny(reason);
            }
        };
        out.attributed = proven;
        let mut ceiling = grant.clearance;
        if let Some(v) = verified {
            if grant.level > v.max_level || grant.classification > v.clearance {
                out.rule = grant.rule;
                return StageResult::Deny(DenyReason::Identity(
                    crate::identity::token::TokenIssue::Insufficient,
                ));
            }
            ceiling = ceiling.min(v.clearance);
        }
        // Trust: the agent's score against the tool's and level's minimum; below `low` (its
        // own, or an agent's earlier in its chain), a stricter threat threshold (applied to the
        // verdict, cached or not) and a smaller rate.
        let rate_factor = match self.judge_trust(p, &grant, out.agent, now) {
            Ok((pct, factor, low)) => {
                out.trust_pct = pct;
                if low || upstream_low {
                    out.strict_deny_at = Some(p.trust.low_deny_at);
                }
                factor
            }
            Err(reason) => {
                out.trust_pct = self.trust_pct(out.agent, now);
                out.rule = grant.rule;
                return StageResult::Deny(reason);
            }
        };
        let ti = grant.tenant as usize;
        let tenant = &p.tenants[ti];
        // on a fleet node, this node's share of the tenant's fleet-wide rate
        let (per_s, burst) = scaled(
            tenant.rate.per_s,
            tenant.rate.burst,
            l.buckets.tenant_shares[ti].load(Relaxed),
        );
        if tenant.rate.per_s > 0.0 && self.count_demand.load(Relaxed) {
            l.buckets.tenant_demand[ti].fetch_add(1, Relaxed);
        }
        let limited = gcra(&l.buckets.tenants[ti], now, per_s, burst)
            .map_err(retry_ms)
            .and_then(|()| {
                // a delegated request spends its root agent's rate (above), not the delegate's:
                // the delegate named by the last link may have had no part in it
                match verified {
                    Some(v) if v.links > 0 => Ok(()),
                    _ => agent_rate(l, p, &grant, now, rate_factor),
                }
            });
        if let Err(reason) = limited {
            out.rule = super::rule::AGENT | grant.agent;
            return StageResult::Deny(reason);
        }
        out.obligations.merge(&grant.obligations);
        out.classification = out.classification.max(grant.classification);
        out.ceiling = Some(out.ceiling.map_or(ceiling, |c| c.min(ceiling)));
        out.rule = grant.rule;
        out.policy = l as *const Live as usize;
        StageResult::Pass
    }
}

const OUTSIDE: crate::identity::token::TokenIssue =
    crate::identity::token::TokenIssue::OutsideDelegation;

/// A GCRA refusal's retry-after as a denial.
fn retry_ms(retry_ns: u64) -> DenyReason {
    DenyReason::RateLimited(retry_ns.div_ceil(1_000_000).clamp(1, u16::MAX as u64) as u16)
}

/// The agent of `g` against its rate, scaled by `factor` (its trust).
fn agent_rate(
    l: &Live,
    p: &Snapshot,
    g: &super::Grant,
    now: u64,
    factor: f64,
) -> Result<(), DenyReason> {
    let a = &p.agents[g.agent as usize];
    gcra(
        &l.buckets.agents[g.agent as usize],
        now,
        a.rate.per_s * factor,
        ((a.rate.burst as f64 * factor).ceil() as u32).min(a.rate.burst),
    )
    .map_err(retry_ms)
}

impl PolicyStage {
    /// Agent `key`'s score in hundredths (`None`: trust off, or no key).
    fn trust_pct(&self, key: u64, now: u64) -> Option<u8> {
        match (&self.trust, key) {
            (Some(t), k) if k != 0 => Some(crate::trust::pct(t.score(k, now))),
            _ => None,
        }
    }

    /// The trust score of agent `key` against what `g` needs: `Ok((score in hundredths, rate
    /// factor, below `[trust] low`))`; `LowTrust` when below the tool's or level's
    /// `min_trust`. No score (trust off, or no key): `(None, 1, false)`.
    #[inline]
    fn judge_trust(
        &self,
        p: &Snapshot,
        g: &super::Grant,
        key: u64,
        now: u64,
    ) -> Result<(Option<u8>, f64, bool), DenyReason> {
        let (Some(t), true) = (&self.trust, key != 0) else {
            return Ok((None, 1.0, false));
        };
        let score = t.score(key, now);
        let pct = crate::trust::pct(score);
        if score < p.min_trust(g) {
            return Err(DenyReason::LowTrust(pct as u16));
        }
        let low = score < p.trust.low;
        let factor = if low { p.trust.low_rate_factor } else { 1.0 };
        Ok((Some(pct), factor, low))
    }
}

/// The resource half of authorization, after the cache lookup: the request's resource must
/// resolve (input checks) and match its tool's patterns (`Snapshot::authorize_resource`). It
/// depends only on the policy and on fields the cache key covers, so its verdict is cached
/// (a reload bumps the epoch), and a URL is parsed on a miss only. It judges by the snapshot
/// the pre-cache policy stage used for the same request, so a verdict never mixes two policies.
pub struct ResourceStage {
    policy: std::sync::Arc<PolicyStage>,
    schemes: Vec<&'static str>,
}

impl ResourceStage {
    /// `schemes`: the URL scheme allow-list (leaked once at start so the hot path borrows them).
    pub fn new(policy: std::sync::Arc<PolicyStage>, schemes: &[String]) -> ResourceStage {
        ResourceStage {
            policy,
            schemes: crate::inputs::leak_schemes(schemes),
        }
    }
}

impl Stage for ResourceStage {
    fn name(&self) -> &str {
        "resource"
    }
    fn handles(&self, op: Operation) -> bool {
        crate::inputs::names_resources(op)
    }
    fn decides(&self, op: Operation) -> bool {
        !matches!(op, Operation::Custom(_))
    }
    fn evaluate(&self, req: &Request<'_>, out: &mut Outcome) -> StageResult {
        let live: &Live = if out.policy == 0 {
            self.policy.live()
        } else {
            // SAFETY: `out.policy` is crate-private and written only by `PolicyStage::evaluate`
            // of this pipeline, with a pointer to its current `Live`; a replaced `Live` is
            // retired, never freed before the stage is dropped, and this stage holds the
            // policy stage (`Arc`), so the pointer is valid for as long as `self` is.
            unsafe { &*(out.policy as *const Live) }
        };
        match live.policy.authorize_resource(req, &self.schemes) {
            Ok(()) => StageResult::Pass,
            Err((reason, rule)) => {
                out.rule = rule;
                StageResult::Deny(reason)
            }
        }
    }
}

/// Where nothing verifies tokens (no policy, or a policy without token keys), a request that
/// carries one anyway is refused `unknown_key`, never served as if the token were not there.
/// A filter (it decides nothing).
pub struct NoIdentityStage;

impl Stage for NoIdentityStage {
    fn name(&self) -> &str {
        "no-identity"
    }
    fn handles(&self, _op: Operation) -> bool {
        true
    }
    fn decides(&self, _op: Operation) -> bool {
        false
    }
    fn evaluate(&self, req: &Request<'_>, _out: &mut Outcome) -> StageResult {
        if req.credential.is_empty() {
            StageResult::Pass
        } else {
            StageResult::Deny(DenyReason::Identity(
                crate::identity::token::TokenIssue::UnknownKey,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gcra_allows_burst_then_paces() {
        let tat = AtomicU64::new(0);
        let t0 = 1_000_000_000u64;
        // 10/s, burst 3: three at once, the fourth waits 100 ms
        for _ in 0..3 {
            assert_eq!(gcra(&tat, t0, 10.0, 3), Ok(()));
        }
        let retry = gcra(&tat, t0, 10.0, 3).unwrap_err();
        assert_eq!(retry, 100_000_000);
        assert_eq!(gcra(&tat, t0 + 100_000_000, 10.0, 3), Ok(()));
        assert!(gcra(&tat, t0 + 100_000_000, 10.0, 3).is_err());
        // unlimited
        assert_eq!(gcra(&tat, 0, 0.0, 0), Ok(()));
        // a rate so small its interval overflows the clock: refused after the first, no panic
        let tiny = AtomicU64::new(0);
        assert_eq!(gcra(&tiny, t0, 1e-300, 1), Ok(()));
        assert!(gcra(&tiny, t0, 1e-300, 1).is_err());
    }
}
