//! Behaviour anomalies and quarantine (automatic remediation).
//!
//! Two parts, both without I/O:
//! - `Monitor`, one per core, owned by the core (no sharing, no atomics): per-agent baselines in
//!   a fixed set-associative table (4 ways, least recently seen replaced). Each verdict updates
//!   the agent's request-rate window and baseline (an EWMA of per-window counts), and EWMAs of
//!   its denial rate (denials by the agent's own fault: identity, authorization, input checks,
//!   threats, malformed requests; not rate limits, overload or engine faults) and of threat hits.
//!   Crossing a threshold returns a `Trigger` and resets the agent's EWMAs.
//! - `Quarantine`, shared by all cores: a fixed open-addressing table of (agent, until) atomics.
//!   Every request checks it before the cache (one atomic load when nobody is quarantined: the
//!   latest `until` of all quarantines is kept apart and compared first). Lookups and inserts
//!   are lock-free and allocation-free; names for operators live in a side map written only
//!   when an agent is quarantined (a rare control event, which may allocate).
//!
//! Invariants: the table sizes are fixed at build time; every probe is bounded (`PROBE`); a
//! quarantined agent is denied on every core until `until` or a release; a full quarantine table
//! denies the triggering agent's request but records nothing (counted in `quarantine_full`).

use crate::types::{Decision, DenyReason, ThreatLevel, Verdict};
use serde::Deserialize;
use std::sync::atomic::{AtomicU64, Ordering::*};

/// What pushed an agent into quarantine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// A window's request count far above the agent's baseline.
    RateBurst,
    /// Too large a share of the agent's requests denied by its own fault.
    Denials,
    /// Too large a share of its requests carried threats.
    Threats,
    /// An operator (`Engine::quarantine`).
    Operator,
}

impl Trigger {
    /// The `action` of the audit record a quarantine writes.
    pub fn audit_action(self) -> &'static str {
        match self {
            Self::RateBurst => "quarantine:rate_burst",
            Self::Denials => "quarantine:denials",
            Self::Threats => "quarantine:threats",
            Self::Operator => "quarantine:operator",
        }
    }
}

#[derive(Clone, Copy, Default)]
struct Entry {
    agent: u64,
    last_ns: u64,
    window_start_ns: u64,
    window_count: u32,
    windows: u32,
    requests: u32,
    rate_baseline: f32,
    deny: f32,
    threat: f32,
}

/// Thresholds, copied from `AnomalyConfig`.
#[derive(Clone, Copy, Debug)]
pub struct Params {
    window_ns: u64,
    rate_alpha: f32,
    rate_warmup_windows: u32,
    rate_factor: f32,
    rate_min_per_window: u32,
    alpha: f32,
    min_requests: u32,
    deny_ratio_max: f32,
    threat_ratio_max: f32,
    threat_level: ThreatLevel,
}

impl Params {
    pub fn new(c: &AnomalyConfig) -> Params {
        Params {
            window_ns: c.window_ms.saturating_mul(1_000_000),
            rate_alpha: c.rate_alpha as f32,
            rate_warmup_windows: c.rate_warmup_windows,
            rate_factor: c.rate_factor as f32,
            rate_min_per_window: c.rate_min_per_window,
            alpha: c.alpha as f32,
            min_requests: c.min_requests,
            deny_ratio_max: c.deny_ratio_max as f32,
            threat_ratio_max: c.threat_ratio_max as f32,
            threat_level: c.threat_level.level(),
        }
    }
}

const WAYS: usize = 4;

/// Per-core behaviour baselines.
pub struct Monitor {
    entries: Box<[Entry]>,
    set_mask: usize,
    p: Params,
}

/// Whether a denial is the agent's own doing (counted toward its deny rate). An identity
/// failure is not: nothing proves the agent sent it (a missing or forged token, a replay), and
/// counting it would let anyone quarantine any agent by naming it.
fn agents_fault(r: DenyReason) -> bool {
    !r.is_transient()
        && !matches!(
            r,
            DenyReason::NoStage | DenyReason::None | DenyReason::Identity(_)
        )
}

impl Monitor {
    /// A monitor for about `agents` agents (rounded up to a power of two).
    pub fn new(agents: usize, p: Params) -> Monitor {
        let sets = (agents / WAYS).max(1).next_power_of_two();
        Monitor {
            entries: vec![Entry::default(); sets * WAYS].into_boxed_slice(),
            set_mask: sets - 1,
            p,
        }
    }

    fn entry(&mut self, agent: u64, now: u64) -> &mut Entry {
        let agent = agent.max(1); // 0 marks an empty way
        let base = ((agent >> 7) as usize & self.set_mask) * WAYS;
        let set = &mut self.entries[base..base + WAYS];
        let mut victim = 0;
        for (i, e) in set.iter().enumerate() {
            if e.agent == agent {
                return &mut set[i];
            }
            if e.last_ns < set[victim].last_ns {
                victim = i;
            }
        }
        set[victim] = Entry {
            agent,
            last_ns: now,
            window_start_ns: now,
            ..Entry::default()
        };
        &mut set[victim]
    }

    /// Records one verdict for `agent` at `now`; `Some` when the agent crossed a threshold.
    #[inline]
    pub fn observe(&mut self, agent: u64, v: &Verdict, now: u64) -> Option<Trigger> {
        let p = self.p;
        let e = self.entry(agent, now);
        e.last_ns = now;
        // Rate: close the window(s) that ended, folding the count into the baseline and
        // decaying it for windows with no request at all.
        let since = now.saturating_sub(e.window_start_ns);
        if since >= p.window_ns {
            let windows = since / p.window_ns;
            let keep = 1.0 - p.rate_alpha;
            e.rate_baseline += p.rate_alpha * (e.window_count as f32 - e.rate_baseline);
            e.rate_baseline *= keep.powi((windows - 1).min(1 << 16) as i32);
            e.windows = e.windows.saturating_add(1);
            e.window_count = 0;
            e.window_start_ns = now - since % p.window_ns;
        }
        e.window_count = e.window_count.saturating_add(1);
        e.requests = e.requests.saturating_add(1);
        let denied = v.decision == Decision::Deny && agents_fault(v.reason);
        let threat = v.threat_level >= p.threat_level;
        e.deny += p.alpha * (denied as u8 as f32 - e.deny);
        e.threat += p.alpha * (threat as u8 as f32 - e.threat);
        let trigger = if e.windows >= p.rate_warmup_windows
            && e.window_count > p.rate_min_per_window
            && e.window_count as f32 > p.rate_factor * e.rate_baseline
        {
            Some(Trigger::RateBurst)
        } else if e.requests >= p.min_requests && e.threat > p.threat_ratio_max {
            Some(Trigger::Threats)
        } else if e.requests >= p.min_requests && e.deny > p.deny_ratio_max {
            Some(Trigger::Denials)
        } else {
            None
        };
        if trigger.is_some() {
            // a released agent starts afresh (its rate baseline is kept)
            e.requests = 0;
            e.deny = 0.0;
            e.threat = 0.0;
            e.window_count = 0;
        }
        trigger
    }
}

const PROBE: usize = 16;

/// A slot's `until_ns` while an insert claims it: the claim is a compare-and-swap of an
/// expired or empty slot's `until_ns` to this, so no other insert takes the slot before the
/// claimer has written its agent and its `until_ns` (claiming by the agent word alone let a
/// second insert read the fresh claim, `until_ns` still 0, as expired and take it: the first
/// agent's quarantine was lost, found under load). A reader may meanwhile see the slot's old
/// agent as quarantined: a denial for a few nanoseconds, never an allow.
const CLAIMING_NS: u64 = u64::MAX;

struct QSlot {
    agent: AtomicU64,
    until_ns: AtomicU64,
}

/// One quarantined agent, for operators.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Quarantined {
    pub tenant: String,
    pub agent: String,
    /// What triggered it (`None` for the moment between the quarantine and the recording of
    /// its names).
    pub trigger: Option<Trigger>,
    /// Cool-down left, milliseconds.
    pub remaining_ms: u64,
}

/// The quarantine table shared by all cores.
pub struct Quarantine {
    slots: Box<[QSlot]>,
    mask: usize,
    /// The latest `until` of any quarantine: when `now` is past it nobody is quarantined, and
    /// a request costs this one load.
    latest_until_ns: AtomicU64,
    names: papaya::HashMap<u64, (String, String, Trigger)>,
    pub(crate) started: AtomicU64,
    pub(crate) released: AtomicU64,
    pub(crate) full: AtomicU64,
}

impl Quarantine {
    /// A table for `capacity` agents (a power of two).
    pub fn new(capacity: usize) -> Quarantine {
        let capacity = capacity.max(PROBE).next_power_of_two();
        Quarantine {
            slots: (0..capacity)
                .map(|_| QSlot {
                    agent: AtomicU64::new(0),
                    until_ns: AtomicU64::new(0),
                })
                .collect(),
            mask: capacity - 1,
            latest_until_ns: AtomicU64::new(0),
            names: papaya::HashMap::new(),
            started: AtomicU64::new(0),
            released: AtomicU64::new(0),
            full: AtomicU64::new(0),
        }
    }

    /// Whether `agent` is quarantined at `now`.
    #[inline]
    pub fn contains(&self, agent: u64, now: u64) -> bool {
        if now >= self.latest_until_ns.load(Acquire) {
            return false;
        }
        let agent = agent.max(1);
        for i in 0..PROBE {
            let s = &self.slots[(agent as usize).wrapping_add(i) & self.mask];
            match s.agent.load(Acquire) {
                // slots never return to 0: the chain ends here, unless the slot is being
                // claimed (an insert past it may have gone on meanwhile)
                0 if s.until_ns.load(Acquire) != CLAIMING_NS => return false,
                a if a == agent => return s.until_ns.load(Acquire) > now,
                _ => {}
            }
        }
        false
    }

    /// Quarantines `agent` until `until_ns`. False when its probe window is full of live
    /// quarantines.
    pub fn insert(&self, agent: u64, until_ns: u64, now: u64) -> bool {
        let agent = agent.max(1);
        // (`CLAIMING_NS` marks a claim: a quarantine without end stops a nanosecond short)
        let until_ns = until_ns.min(CLAIMING_NS - 1);
        let idx = |i: usize| (agent as usize).wrapping_add(i) & self.mask;
        // already present (live or expired): extend in place, unless another insert is
        // claiming the slot (it is no longer this agent's: the extension would be lost)
        for i in 0..PROBE {
            let s = &self.slots[idx(i)];
            match s.agent.load(Acquire) {
                a if a == agent => {
                    let extended = s.until_ns.fetch_update(AcqRel, Acquire, |u| {
                        (u != CLAIMING_NS).then_some(u.max(until_ns))
                    });
                    if extended.is_ok() {
                        self.latest_until_ns.fetch_max(until_ns, AcqRel);
                        return true;
                    }
                }
                0 if s.until_ns.load(Acquire) != CLAIMING_NS => break,
                _ => {}
            }
        }
        // else the first empty or expired slot of the window, claimed through its `until_ns`
        // (`CLAIMING_NS`): the agent is written only once the slot is this insert's
        for i in 0..PROBE {
            let s = &self.slots[idx(i)];
            let until = s.until_ns.load(Acquire);
            if until > now {
                continue; // live, or being claimed
            }
            if s.until_ns
                .compare_exchange(until, CLAIMING_NS, AcqRel, Acquire)
                .is_ok()
            {
                s.agent.store(agent, Release);
                s.until_ns.store(until_ns, Release);
                self.latest_until_ns.fetch_max(until_ns, AcqRel);
                return true;
            }
        }
        self.full.fetch_add(1, Relaxed);
        false
    }

    /// Records the names behind a new quarantine (control plane: allocates).
    pub(crate) fn name(&self, agent: u64, tenant: &str, name: &str, trigger: Trigger) {
        self.names.pin().insert(
            agent.max(1),
            (tenant.to_string(), name.to_string(), trigger),
        );
    }

    /// Ends `agent`'s quarantine now. False when it was not quarantined.
    pub fn release(&self, agent: u64, now: u64) -> bool {
        let agent = agent.max(1);
        let mut was = false;
        for i in 0..PROBE {
            let s = &self.slots[(agent as usize).wrapping_add(i) & self.mask];
            match s.agent.load(Acquire) {
                0 => break,
                // every copy (two cores may have quarantined the agent at the same moment)
                // (a slot being claimed is another insert's: left to it)
                a if a == agent => {
                    was |= s
                        .until_ns
                        .fetch_update(AcqRel, Acquire, |u| {
                            (u != CLAIMING_NS && u > now).then_some(0)
                        })
                        .is_ok();
                }
                _ => {}
            }
        }
        if was {
            self.released.fetch_add(1, Relaxed);
        }
        was
    }

    /// Agents quarantined at `now`, with names where known.
    pub fn list(&self, now: u64) -> Vec<Quarantined> {
        let names = self.names.pin();
        let mut v: Vec<Quarantined> = self
            .slots
            .iter()
            .filter_map(|s| {
                let a = s.agent.load(Acquire);
                let u = s.until_ns.load(Acquire);
                (a != 0 && u > now && u != CLAIMING_NS).then(|| {
                    let (tenant, agent, trigger) = match names.get(&a) {
                        Some((t, n, tr)) => (t.clone(), n.clone(), Some(*tr)),
                        None => (String::new(), format!("#{a:016x}"), None),
                    };
                    Quarantined {
                        tenant,
                        agent,
                        trigger,
                        remaining_ms: (u - now) / 1_000_000,
                    }
                })
            })
            .collect();
        v.sort_by(|a, b| (&a.tenant, &a.agent).cmp(&(&b.tenant, &b.agent)));
        v
    }

    /// Agents quarantined at `now`.
    pub fn count(&self, now: u64) -> usize {
        if now >= self.latest_until_ns.load(Acquire) {
            return 0;
        }
        self.slots
            .iter()
            .filter(|s| {
                let u = s.until_ns.load(Acquire);
                s.agent.load(Acquire) != 0 && u > now && u != CLAIMING_NS
            })
            .count()
    }
}

// ---- settings (`[anomaly]` in the config file) ----

#[derive(Clone, Debug, PartialEq, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnomalyConfig {
    /// Track per-agent behaviour and quarantine agents that cross a threshold.
    pub enabled: bool,
    /// Agents tracked per core (least recently seen are forgotten first).
    pub agents_per_core: usize,
    /// Rate window, milliseconds: the rate baseline is an EWMA of per-window counts.
    pub window_ms: u64,
    /// Weight of the newest window in the rate baseline (0..1).
    pub rate_alpha: f64,
    /// Windows an agent must have been seen in before its rate is judged.
    pub rate_warmup_windows: u32,
    /// A window count above rate_factor x baseline (and above rate_min_per_window) is a burst.
    pub rate_factor: f64,
    pub rate_min_per_window: u32,
    /// Weight of the newest request in the deny-rate and threat-rate EWMAs (0..1).
    pub alpha: f64,
    /// Requests an agent must have made before its deny and threat rates are judged.
    pub min_requests: u32,
    /// Quarantine when the EWMA of denials (by the agent's own fault) exceeds this (0..1).
    pub deny_ratio_max: f64,
    /// Quarantine when the EWMA of threat hits exceeds this (0..1).
    pub threat_ratio_max: f64,
    /// A verdict at or above this threat level counts as a threat hit.
    pub threat_level: crate::types::LevelName,
    /// How long a quarantine lasts, milliseconds.
    pub quarantine_ms: u64,
    /// Agents quarantined at once, across all cores (power of two).
    pub quarantine_capacity: usize,
}

impl Default for AnomalyConfig {
    fn default() -> Self {
        AnomalyConfig {
            enabled: true,
            agents_per_core: 4096,
            window_ms: 1000,
            rate_alpha: 0.125,
            rate_warmup_windows: 10,
            rate_factor: 20.0,
            rate_min_per_window: 1000,
            alpha: 0.0625,
            min_requests: 16,
            deny_ratio_max: 0.5,
            threat_ratio_max: 0.25,
            threat_level: crate::types::LevelName::Medium,
            quarantine_ms: 60000,
            quarantine_capacity: 1024,
        }
    }
}

#[cfg(test)]
mod tests {
    static KEYED: std::sync::LazyLock<crate::keyed::KeyedHash> =
        std::sync::LazyLock::new(crate::keyed::KeyedHash::random);

    use super::*;

    const MS: u64 = 1_000_000;

    fn params() -> Params {
        Params::new(&AnomalyConfig::default())
    }

    fn deny(r: DenyReason) -> Verdict {
        Verdict::deny(r)
    }

    fn allow() -> Verdict {
        Verdict {
            decision: Decision::Allow,
            ..Verdict::deny(DenyReason::None)
        }
    }

    #[test]
    fn repeated_denials_trigger_after_min_requests_and_reset() {
        let mut m = Monitor::new(64, params());
        let mut t = 0;
        for i in 1..=15 {
            assert_eq!(m.observe(7, &deny(DenyReason::NotGranted), t), None, "{i}");
            t += MS;
        }
        assert_eq!(
            m.observe(7, &deny(DenyReason::NotGranted), t),
            Some(Trigger::Denials)
        );
        // reset: it takes min_requests again
        assert_eq!(m.observe(7, &deny(DenyReason::NotGranted), t + MS), None);
        // another agent is unaffected
        assert_eq!(m.observe(8, &allow(), t), None);
    }

    #[test]
    fn rate_limits_and_engine_faults_are_not_the_agents_fault() {
        let mut m = Monitor::new(64, params());
        for i in 0..200 {
            for r in [
                DenyReason::RateLimited(5),
                DenyReason::Overloaded,
                DenyReason::Timeout,
            ] {
                assert_eq!(m.observe(9, &deny(r), i * MS), None);
            }
        }
    }

    #[test]
    fn threat_hits_trigger_before_denials() {
        let mut m = Monitor::new(64, params());
        let mut hit = deny(DenyReason::ThreatDetected(ThreatLevel::High));
        hit.threat_level = ThreatLevel::High;
        let mut got = None;
        for i in 0..16 {
            got = m.observe(3, &hit, i * MS);
        }
        assert_eq!(got, Some(Trigger::Threats));
        // a history of clean requests tolerates a few hits
        let mut m = Monitor::new(64, params());
        for i in 0..100 {
            assert_eq!(m.observe(3, &allow(), i * MS), None);
        }
        let mut low = allow();
        low.threat_level = ThreatLevel::Medium;
        assert_eq!(m.observe(3, &low, 200 * MS), None);
        assert_eq!(m.observe(3, &low, 201 * MS), None);
    }

    #[test]
    fn a_burst_over_the_baseline_triggers_after_warmup() {
        let mut m = Monitor::new(64, params());
        let s = 1000 * MS;
        // 12 windows of 100 requests: the baseline settles near 100
        for w in 0..12u64 {
            for k in 0..100u64 {
                assert_eq!(m.observe(5, &allow(), w * s + k * MS), None);
            }
        }
        // then 3,000 in one window: above 20 x baseline and above the floor
        let mut got = None;
        for k in 0..3000u64 {
            got = got.or(m.observe(5, &allow(), 12 * s + k * 1000));
        }
        assert_eq!(got, Some(Trigger::RateBurst));
        // steady high traffic without history never triggers before warm-up
        let mut m = Monitor::new(64, params());
        for k in 0..100_000u64 {
            assert_eq!(m.observe(6, &allow(), k * 10_000), None);
        }
    }

    #[test]
    fn the_table_forgets_the_least_recently_seen() {
        // 16 agents → 4 sets of 4 ways; these five agents all fall in set 0
        let mut m = Monitor::new(16, params());
        let agent = |k: u64| (4 * k + 4) << 7;
        let denied = deny(DenyReason::NotGranted);
        // four agents, each one denial short of the threshold, seen in order 0, 1, 2, 3
        for a in 0..4 {
            for i in 0..15 {
                assert_eq!(m.observe(agent(a), &denied, a * 100 + i), None);
            }
        }
        // a fifth agent takes the way of the least recently seen (agent 0)
        assert_eq!(m.observe(agent(4), &denied, 1_000), None);
        // agent 1 is still tracked: its 16th denial triggers
        assert_eq!(m.observe(agent(1), &denied, 1_001), Some(Trigger::Denials));
        // agent 0 was forgotten: it starts afresh, far from the threshold
        assert_eq!(m.observe(agent(0), &denied, 1_002), None);
    }

    #[test]
    fn quarantine_holds_until_expiry_or_release() {
        let q = Quarantine::new(16);
        assert!(!q.contains(42, 0));
        assert!(q.insert(42, 100, 0));
        assert!(q.contains(42, 50));
        assert!(!q.contains(43, 50));
        assert!(!q.contains(42, 100));
        assert_eq!(q.count(50), 1);
        assert!(q.release(42, 60));
        assert!(!q.contains(42, 61));
        assert!(!q.release(42, 62));
        // expired and released slots are reused; a full window says so
        for a in 0..64u64 {
            let _ = q.insert(a * 16 + 1, 1_000, 200);
        }
        assert!(q.full.load(Relaxed) > 0);
        assert!(q.insert(5, 2_000, 1_500), "expired slots are reused");
        assert!(q.contains(5, 1_600));
    }

    #[test]
    fn concurrent_inserts_and_lookups_agree() {
        let q = std::sync::Arc::new(Quarantine::new(1024));
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                let q = q.clone();
                std::thread::spawn(move || {
                    // a quarter of the capacity: linear probing stays short
                    for a in 0..64u64 {
                        let id = KEYED.agent("t", &format!("{t}-{a}"));
                        assert!(q.insert(id, u64::MAX, 0));
                        assert!(q.contains(id, 1));
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(q.count(1), 256);
    }

    /// Inserts that race for the same slots, started together: every agent inserted is found
    /// afterwards, in its own slot (a claim taken through the agent word alone let a second
    /// insert read the fresh claim as expired and take it: a quarantine lost, under load).
    #[test]
    fn racing_inserts_into_one_window_lose_no_quarantine() {
        const THREADS: u64 = 4;
        const EACH: u64 = 3;
        for round in 0..300u64 {
            let q = std::sync::Arc::new(Quarantine::new(64));
            let start = std::sync::Arc::new(std::sync::Barrier::new(THREADS as usize));
            let threads: Vec<_> = (0..THREADS)
                .map(|t| {
                    let (q, start) = (q.clone(), start.clone());
                    std::thread::spawn(move || {
                        start.wait();
                        // every agent's window begins at slot 5
                        for a in 0..EACH {
                            let id = ((round * 64 + t * EACH + a + 1) << 6) | 5;
                            assert!(q.insert(id, 1_000 + a, 10));
                        }
                    })
                })
                .collect();
            threads.into_iter().for_each(|t| t.join().unwrap());
            for t in 0..THREADS {
                for a in 0..EACH {
                    let id = ((round * 64 + t * EACH + a + 1) << 6) | 5;
                    assert!(q.contains(id, 11), "round {round}: agent {t}/{a} lost");
                }
            }
            assert_eq!(q.count(11), (THREADS * EACH) as usize);
        }
    }

    /// A quarantine without end (`u64::MAX`) is one, not a slot left claimed forever.
    #[test]
    fn a_quarantine_without_end_is_held_and_released() {
        let q = Quarantine::new(16);
        assert!(q.insert(7, u64::MAX, 0));
        assert!(q.contains(7, u64::MAX - 2));
        assert_eq!(q.list(1).len(), 1);
        assert!(q.release(7, 1));
        assert!(!q.contains(7, 2));
        assert!(q.insert(8, 100, 2), "the released slot is taken again");
        assert!(q.contains(8, 3));
    }
}
