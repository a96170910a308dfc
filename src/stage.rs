//! The stage interface: what every stage (policy, input checks, threat scan, the keystore's
//! rules, the audit stage, a gateway's own) implements. The pipeline that runs them is the
//! engine's (`engine/pipeline.rs`).
//!
//! A stage is a plain function of (its own immutable state, the request) returning pass or a
//! deny reason, and adding to an `Outcome` (obligations, threat level, indicators, rule). Stages
//! never block and must not allocate on the hot path.

use crate::request::Request;
use crate::types::{Classification, DenyReason, Obligations, Operation, ThreatLevel};

/// What a stage says about a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StageResult {
    Pass,
    Deny(DenyReason),
}

/// What stages accumulate for the verdict of an allowed request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub obligations: Obligations,
    pub threat_level: ThreatLevel,
    pub indicators: u32,
    /// Effective classification (starts as the request's; stages may raise it).
    pub classification: Classification,
    /// The rule that decided, for explanations (0 = none).
    pub rule: u32,
    /// The highest classification the requester is cleared for (set by the policy stage from
    /// the agent's clearance and its token's): a verdict above it is a denial, whichever stage
    /// raised the classification.
    pub(crate) ceiling: Option<Classification>,
    /// The policy snapshot the pre-cache policy stage judged this request by, for the stages
    /// after the cache lookup that judge it by the same policy (0: none). Written only by the
    /// policy stage; user stages cannot name it.
    pub(crate) policy: usize,
    /// The request's agent key (`keyed::agent`), from the slot: what trust scores go by
    /// (0: unknown here, and no score is consulted).
    pub(crate) agent: u64,
    /// The trust score the policy stage judged the request at, in hundredths.
    pub(crate) trust_pct: Option<u8>,
    /// A stricter threat threshold for this request (the agent's trust is low): a verdict
    /// whose threat level reaches it is a denial (`merge`), cached verdicts included.
    pub(crate) strict_deny_at: Option<ThreatLevel>,
    /// For a delegated credential: the agent whose record the request goes on (trust score,
    /// behaviour baseline) instead of the slot's agent: the chain's root agent, the only one the
    /// chain proves took part (every later holder's secret was made by the holder before it).
    /// Room for more, `charged` of them used (0: the slot's agent).
    pub(crate) charge: [u64; crate::identity::chain::MAX_LINKS],
    pub(crate) charged: u8,
    /// Whether the request proves it comes from its agent (a verified token, or no identity
    /// configured), so that its verdict goes on an agent's record at all.
    pub(crate) attributed: bool,
}

/// One step of the validation pipeline.
pub trait Stage: Send + Sync + 'static {
    /// A short stable name, used in metrics and explanations.
    fn name(&self) -> &str;
    /// Whether this stage runs for `op`. The default: only for `Check`.
    fn handles(&self, op: Operation) -> bool {
        op == Operation::Check
    }
    /// Whether this stage runs before the cache lookup, on every request (identity, rate
    /// limits, authorization: what must hold even for a cached verdict). Default: no, its
    /// result is part of the cached verdict.
    fn pre_cache(&self) -> bool {
        false
    }
    /// Whether this stage's pass decides `op` (the default) or only filters it, refusing what is
    /// malformed (the built-in input checks; the policy for custom operations, which need a
    /// validator of their own). An operation whose only stages are filters is denied
    /// `NoStage`, as one with no stage is: passing a filter allows nothing.
    fn decides(&self, _op: Operation) -> bool {
        true
    }
    /// Judges `req`. Must not block; should not allocate.
    fn evaluate(&self, req: &Request<'_>, out: &mut Outcome) -> StageResult;
}
