//! Trust scores: one number in [0, 1] per agent, built from what warden sees and what the
//! gateway reports, decaying back toward a baseline; the policy tightens checks on low scores
//! (`[trust]` and `min_trust` in the policy file, `PolicyStage`).
//!
//! The seed's weighting (recent behaviour +0.3, each incident −0.5, peer feedback +0.2,
//! clamped) sums counts over a history. warden keeps no history on the request path, so the
//! score is a running value instead: every event moves it by its weight, clamped to [0, 1], and
//! between events its distance from the baseline halves every `half_life_s`. One incident at the
//! seed's −0.5 thus takes an agent at the 0.8 baseline to 0.3, and it is back above 0.7 after
//! about two and a half half-lives. The weights per kind (`TrustConfig`) are the seed's where it
//! names one (incident 0.5, peer 0.2, success 0.3 spread as 0.03 a report so that one good
//! outcome cannot undo an incident) and small for what is often an honest mistake (a denial by
//! the agent's own fault 0.05).
//!
//! What does not count, after a hostile review: a request that does not prove it comes from the
//! agent (a missing, forged or replayed token, an unknown name: anyone could send those to frame
//! an agent, or fill the table), and so no refused signature counts either; a rate-limit hit or
//! a `threat_at_low_trust` denial (at low trust the rate and the threshold tighten, so counting
//! them would let a low score feed itself); a delegated request's events go to its chain's root
//! agent, the only one the chain proves took part (every later holder's secret is made by the
//! holder before it, who can sign in its name). A verdict counts only when the policy judged a
//! known agent that the request proves it comes from (`Outcome::attributed`).
//!
//! Invariants:
//! - one table of `(agent, state)` atomic pairs shared by all cores, fixed at build time; the
//!   owner core writes an agent's entry after each verdict (a stolen request's verdict is
//!   written by the core that served it, the gateway's reports by its thread); every core and
//!   the control plane read it. Reads are two or three loads and one `exp2`; writes a bounded
//!   CAS loop (`CAS_TRIES`, a lost update is counted). No lock, no allocation;
//! - an agent with no entry is at the baseline; an entry is made only when a score moves, and
//!   an entry back at the baseline may be reused, so a full table loses only entries that say
//!   nothing (`full` counts the rest, and the agent is then read at its last entry or the
//!   baseline);
//! - a denial caused by trust itself (`LowTrust`, `ThreatAtLowTrust`, a tightened rate) or by
//!   quarantine never lowers the score again: a low score cannot feed itself;
//! - the score a request was judged at rides in its verdict (`Verdict::trust_pct`).

use crate::types::{Decision, DenyReason, ThreatLevel, Verdict};
use serde::Deserialize;
use std::sync::atomic::{AtomicU64, Ordering::*};

/// Scores and weights (`[trust]` in the config).
#[derive(Clone, Debug, PartialEq, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrustConfig {
    /// Keep trust scores (the policy acts on them only where it sets `min_trust` or
    /// `[trust] low`).
    pub enabled: bool,
    /// Where every agent starts and where scores return to.
    pub baseline: f64,
    /// A score's distance from the baseline halves every this many seconds.
    pub half_life_s: f64,
    /// An incident: the agent quarantined, or a sandbox violation reported by the gateway.
    pub incident: f64,
    /// A request with a threat at or above `threat.deny_at` (high by default).
    pub threat: f64,
    /// A request denied by the agent's own fault (authorization, input checks), the agent
    /// authenticated.
    pub denial: f64,
    /// A human overrode what the agent did (reported).
    pub human_override: f64,
    /// A tool call that went well (reported; the seed's recent behaviour).
    pub success: f64,
    /// Peer feedback in [-1, 1] (reported) moves the score by this much times the feedback.
    pub peer: f64,
    /// Agents whose score is away from the baseline at once (a power of two is used).
    pub capacity: usize,
}

impl Default for TrustConfig {
    fn default() -> Self {
        TrustConfig {
            enabled: true,
            baseline: 0.8,
            half_life_s: 600.0,
            incident: 0.5,
            threat: 0.25,
            denial: 0.05,
            human_override: 0.25,
            success: 0.03,
            peer: 0.2,
            capacity: 1 << 16,
        }
    }
}

impl TrustConfig {
    /// Checks every field; `Err((field, message))`.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let unit = |f: &'static str, v: f64| {
            if (0.0..=1.0).contains(&v) {
                Ok(())
            } else {
                Err((f, format!("{v}: must be between 0 and 1")))
            }
        };
        unit("trust.baseline", self.baseline)?;
        unit("trust.incident", self.incident)?;
        unit("trust.threat", self.threat)?;
        unit("trust.denial", self.denial)?;
        unit("trust.human_override", self.human_override)?;
        unit("trust.success", self.success)?;
        unit("trust.peer", self.peer)?;
        if !(self.half_life_s >= 0.001 && self.half_life_s <= 365.0 * 86_400.0) {
            return Err((
                "trust.half_life_s",
                format!("{}: must be between 0.001 and one year", self.half_life_s),
            ));
        }
        if self.capacity == 0 || self.capacity > 1 << 24 {
            return Err((
                "trust.capacity",
                format!("{}: must be between 1 and 16777216", self.capacity),
            ));
        }
        Ok(())
    }
}

/// What the gateway reports about an agent's action (`Engine::report`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Report {
    /// The tool call went well.
    Success,
    /// The tool call broke out of, or failed, a sandbox check: an incident.
    SandboxViolation,
    /// A human overrode what the agent did.
    HumanOverride,
    /// Another agent's (or a reviewer's) opinion, from -1 (bad) to 1 (good).
    Peer(f32),
}

const PROBE: usize = 16;
const CAS_TRIES: usize = 8;
const SCORE_ONE: u64 = u16::MAX as u64;
/// Set in every stored state, so that no score (0 included, at time 0) reads as "no entry".
const STORED: u64 = 1 << 47;
const TIME_MASK: u64 = STORED - 1;

#[derive(Clone, Copy, Debug)]
struct Weights {
    baseline: f32,
    /// 1 / half-life in milliseconds.
    per_ms: f32,
    incident: f32,
    threat: f32,
    denial: f32,
    human_override: f32,
    success: f32,
    peer: f32,
    threat_level: ThreatLevel,
}

/// The shared score table.
pub struct Trust {
    agents: Box<[AtomicU64]>,
    /// `[score: u16 (0..=65535 for 0..=1)][1][time: u47, ms on `time::now_ns`'s clock]`; 0 only
    /// before the entry's first write.
    states: Box<[AtomicU64]>,
    mask: usize,
    w: Weights,
    /// Score changes that found no entry to keep them in.
    pub full: AtomicU64,
    /// Score changes lost to `CAS_TRIES` concurrent writers in a row.
    pub lost: AtomicU64,
}

fn pack(score: f32, now_ms: u64) -> u64 {
    let s = (score.clamp(0.0, 1.0) * SCORE_ONE as f32).round() as u64;
    (s << 48) | STORED | (now_ms & TIME_MASK)
}

impl Trust {
    /// A table for `c`; `threat_level` is `threat.deny_at` (a threat at or above it counts).
    pub fn new(c: &TrustConfig, threat_level: ThreatLevel) -> Trust {
        let n = c.capacity.max(PROBE).next_power_of_two();
        Trust {
            agents: (0..n).map(|_| AtomicU64::new(0)).collect(),
            states: (0..n).map(|_| AtomicU64::new(0)).collect(),
            mask: n - 1,
            w: Weights {
                baseline: c.baseline as f32,
                per_ms: (1.0 / (c.half_life_s * 1000.0)) as f32,
                incident: c.incident as f32,
                threat: c.threat as f32,
                denial: c.denial as f32,
                human_override: c.human_override as f32,
                success: c.success as f32,
                peer: c.peer as f32,
                threat_level,
            },
            full: AtomicU64::new(0),
            lost: AtomicU64::new(0),
        }
    }

    pub fn baseline(&self) -> f32 {
        self.w.baseline
    }

    /// The score a packed state stands for at `now_ms`.
    #[inline]
    fn decayed(&self, state: u64, now_ms: u64) -> f32 {
        let s = (state >> 48) as f32 / SCORE_ONE as f32;
        let dt = (now_ms & TIME_MASK).saturating_sub(state & TIME_MASK) as f32;
        let b = self.w.baseline;
        b + (s - b) * (-(dt * self.w.per_ms)).exp2()
    }

    /// `agent`'s score at `now_ns` (the baseline when it has none). The lowest of its entries,
    /// should two writers have made two.
    #[inline]
    pub fn score(&self, agent: u64, now_ns: u64) -> f32 {
        let agent = agent.max(1);
        let now_ms = now_ns / 1_000_000;
        let start = (agent as usize).wrapping_mul(0x9e37_79b9) & self.mask;
        let mut best: Option<f32> = None;
        for i in 0..PROBE {
            let at = (start + i) & self.mask;
            let a = self.agents[at].load(Acquire);
            if a == 0 {
                break;
            }
            if a == agent {
                let st = self.states[at].load(Acquire);
                // the slot was not handed to another agent while we read it
                if self.agents[at].load(Acquire) == agent && st != 0 {
                    let s = self.decayed(st, now_ms);
                    best = Some(best.map_or(s, |b: f32| b.min(s)));
                }
            }
        }
        best.unwrap_or(self.w.baseline)
    }

    /// Moves `agent`'s score by `delta` at `now_ns`.
    pub fn adjust(&self, agent: u64, delta: f32, now_ns: u64) {
        if delta == 0.0 || !delta.is_finite() {
            return;
        }
        let now_ms = now_ns / 1_000_000;
        if let Some(at) = self.entry(agent.max(1), now_ms) {
            self.update(at, delta, now_ms);
        }
    }

    /// Sets `agent`'s score (an operator's decision, or a test's), from which it decays.
    pub fn set(&self, agent: u64, score: f32, now_ns: u64) {
        if !score.is_finite() {
            return;
        }
        let now_ms = now_ns / 1_000_000;
        if let Some(at) = self.entry(agent.max(1), now_ms) {
            self.states[at].store(pack(score, now_ms), Release);
        }
    }

    /// The slot of `agent`'s entry, made if it has none (`None`, counted, when there is no
    /// room).
    fn entry(&self, agent: u64, now_ms: u64) -> Option<usize> {
        let start = (agent as usize).wrapping_mul(0x9e37_79b9) & self.mask;
        let mut free: Option<(usize, u64)> = None;
        for i in 0..PROBE {
            let at = (start + i) & self.mask;
            let a = self.agents[at].load(Acquire);
            if a == agent {
                return Some(at);
            }
            if a == 0 {
                free.get_or_insert((at, 0));
                break;
            }
            // an entry back at its baseline says nothing: it may be reused
            if free.is_none() {
                let st = self.states[at].load(Acquire);
                if (self.decayed(st, now_ms) - self.w.baseline).abs() < 0.002 {
                    free = Some((at, a));
                }
            }
        }
        let Some((at, seen)) = free else {
            self.full.fetch_add(1, Relaxed);
            return None;
        };
        // Claim the slot: its state first reads as the baseline now, then the agent is named.
        // A reader that sees the new name and an older state takes the lower of what it finds.
        if self.agents[at]
            .compare_exchange(seen, agent, AcqRel, Acquire)
            .is_err()
        {
            // someone else took it (perhaps for this agent): one more pass finds it or fails
            let found = (0..PROBE)
                .map(|i| (start + i) & self.mask)
                .find(|&at| self.agents[at].load(Acquire) == agent);
            if found.is_none() {
                self.lost.fetch_add(1, Relaxed);
            }
            return found;
        }
        self.states[at].store(pack(self.w.baseline, now_ms), Release);
        Some(at)
    }

    fn update(&self, at: usize, delta: f32, now_ms: u64) {
        let mut cur = self.states[at].load(Acquire);
        for _ in 0..CAS_TRIES {
            let s = if cur == 0 {
                self.w.baseline
            } else {
                self.decayed(cur, now_ms)
            };
            let new = pack(s + delta, now_ms);
            match self.states[at].compare_exchange_weak(cur, new, AcqRel, Acquire) {
                Ok(_) => return,
                Err(c) => cur = c,
            }
        }
        self.lost.fetch_add(1, Relaxed);
    }

    /// How much a verdict moves its agent's score (0: not at all). Only a verdict the policy
    /// made for a known, authenticated agent counts (it carries a score).
    #[inline]
    pub fn weight_of(&self, v: &Verdict) -> f32 {
        let w = &self.w;
        if v.trust_pct == NO_TRUST {
            return 0.0;
        }
        if v.threat_level >= w.threat_level {
            return -w.threat;
        }
        if v.decision != Decision::Deny {
            return 0.0;
        }
        match v.reason {
            // trust, quarantine and the rates they tighten do not feed a low score; an
            // identity failure proves nothing about who sent it; engine faults are not the
            // agent's
            DenyReason::LowTrust(_)
            | DenyReason::ThreatAtLowTrust(_)
            | DenyReason::RateLimited(_)
            | DenyReason::Quarantined
            | DenyReason::Identity(_)
            | DenyReason::UnknownTenant
            | DenyReason::UnknownAgent
            | DenyReason::None
            | DenyReason::NoStage => 0.0,
            r if r.is_transient() => 0.0,
            _ => -w.denial,
        }
    }

    /// Records one verdict for `agent`.
    #[inline]
    pub fn observe(&self, agent: u64, v: &Verdict, now_ns: u64) {
        let d = self.weight_of(v);
        if d != 0.0 {
            self.adjust(agent, d, now_ns);
        }
    }

    /// An agent quarantined: an incident.
    pub fn incident(&self, agent: u64, now_ns: u64) {
        self.adjust(agent, -self.w.incident, now_ns);
    }

    /// A gateway's report.
    pub fn report(&self, agent: u64, r: Report, now_ns: u64) {
        let w = &self.w;
        let d = match r {
            Report::Success => w.success,
            Report::SandboxViolation => -w.incident,
            Report::HumanOverride => -w.human_override,
            Report::Peer(x) if x.is_finite() => w.peer * x.clamp(-1.0, 1.0),
            Report::Peer(_) => 0.0,
        };
        self.adjust(agent, d, now_ns);
    }
}

/// The score as the verdict carries it: hundredths, rounded down (so a score just under a
/// threshold never shows as the threshold).
pub fn pct(score: f32) -> u8 {
    (score.clamp(0.0, 1.0) * 100.0).floor() as u8
}

/// `Verdict::trust_pct` when no score was consulted.
pub const NO_TRUST: u8 = u8::MAX;

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Trust {
        Trust::new(
            &TrustConfig {
                capacity: 64,
                half_life_s: 1.0,
                ..TrustConfig::default()
            },
            ThreatLevel::High,
        )
    }

    const S: u64 = 1_000_000_000;

    #[test]
    fn incidents_lower_the_score_and_time_brings_it_back() {
        let t = table();
        assert_eq!(t.score(42, 0), 0.8);
        t.incident(42, 10 * S);
        let s = t.score(42, 10 * S);
        assert!((s - 0.3).abs() < 0.001, "{s}");
        // one half-life: the distance from the baseline halves
        let s = t.score(42, 11 * S);
        assert!((s - 0.55).abs() < 0.001, "{s}");
        t.incident(42, 11 * S);
        assert!(t.score(42, 11 * S) < 0.06);
        t.incident(42, 11 * S);
        assert_eq!(t.score(42, 11 * S), 0.0, "clamped at 0");
        assert!((t.score(42, 30 * S) - 0.8).abs() < 0.001);
        // others are untouched
        assert_eq!(t.score(43, 11 * S), 0.8);
        for _ in 0..50 {
            t.report(44, Report::Success, 12 * S);
        }
        assert_eq!(t.score(44, 12 * S), 1.0, "clamped at 1");
        t.report(44, Report::Peer(f32::NAN), 12 * S);
        t.report(44, Report::Peer(-9.0), 12 * S);
        assert!((t.score(44, 12 * S) - 0.8).abs() < 0.001);
    }

    fn judged(r: DenyReason) -> Verdict {
        Verdict {
            trust_pct: 80,
            ..Verdict::deny(r)
        }
    }

    #[test]
    fn trust_and_quarantine_denials_do_not_feed_themselves() {
        let t = table();
        for r in [
            DenyReason::LowTrust(10),
            DenyReason::ThreatAtLowTrust(ThreatLevel::Medium),
            DenyReason::RateLimited(5),
            DenyReason::Quarantined,
            DenyReason::Identity(crate::types::TokenIssue::BadSignature),
            DenyReason::Identity(crate::types::TokenIssue::Replayed),
            DenyReason::UnknownAgent,
            DenyReason::Overloaded,
        ] {
            assert_eq!(t.weight_of(&judged(r)), 0.0, "{r:?}");
        }
        assert!(t.weight_of(&judged(DenyReason::NotGranted)) < 0.0);
        // a verdict the policy did not judge an agent for (no score) never counts
        assert_eq!(t.weight_of(&Verdict::deny(DenyReason::NotGranted)), 0.0);
        let mut v = judged(DenyReason::None);
        v.decision = Decision::Allow;
        assert_eq!(t.weight_of(&v), 0.0);
        v.threat_level = ThreatLevel::Critical;
        assert_eq!(t.weight_of(&v), -0.25);
    }

    #[test]
    fn a_score_of_zero_at_time_zero_is_a_score() {
        let t = table();
        t.set(9, 0.0, 0);
        assert_eq!(t.score(9, 0), 0.0);
        t.adjust(9, -0.1, 0);
        assert_eq!(t.score(9, 0), 0.0);
    }

    #[test]
    fn a_full_table_reuses_entries_back_at_the_baseline_and_counts_the_rest() {
        let t = table();
        // 64 slots; agents that all probe from different starts fill it
        for a in 1..=200u64 {
            t.incident(a, S);
        }
        assert!(t.full.load(Relaxed) > 0);
        // every stored agent reads low; none reads above its true score
        let low = (1..=200u64).filter(|&a| t.score(a, S) < 0.5).count();
        assert!(low >= 64 - 1, "{low}");
        // ten half-lives later every entry is back at the baseline and may be reused
        t.incident(1000, 11 * S);
        assert!(t.score(1000, 11 * S) < 0.5);
    }

    #[test]
    fn concurrent_writers_lose_nothing_or_count_it() {
        let t = std::sync::Arc::new(Trust::new(
            &TrustConfig {
                capacity: 1024,
                half_life_s: 1e6,
                // two steps of the score's 1/65535 resolution: no rounding in the sum
                success: 2.0 / 65535.0,
                ..TrustConfig::default()
            },
            ThreatLevel::High,
        ));
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let t = t.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        t.report(7, Report::Success, S);
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        let lost = t.lost.load(Relaxed) as f64;
        let s = t.score(7, S) as f64;
        let start = (0.8f64 * 65535.0).round();
        let applied = ((s * 65535.0).round() - start) / 2.0;
        assert_eq!(applied + lost, 4000.0, "applied {applied}, lost {lost}");
    }
}
