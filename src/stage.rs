//! The stage interface and the pipeline that runs registered stages.
//!
//! A stage is a plain function of (its own immutable state, the request) returning pass or a
//! deny reason, and adding to an `Outcome` (obligations, threat level, indicators, rule). Stages
//! never block and must not allocate on the hot path. Later stages (identity, rate limits,
//! authorization, input checks, threat scan) implement the same trait.
//!
//! Invariants:
//! - the table of which stages run for which operation is computed once at build time;
//!   selecting the stages of a request is an array index (fixed operations) or a binary search
//!   (custom operations), never an allocation;
//! - a stage that panics is contained with `catch_unwind`: the request is denied with
//!   `Internal` (or allowed with `audit_required` in fail-open mode), the panic is counted, and
//!   the core keeps running;
//! - an operation no stage handles is denied with `NoStage` (fail closed). `Check` is handled by
//!   the built-in request-shape check, which always runs first, so `Check` with no other stage
//!   allows every well-formed request: register stages to make it decide.

use crate::config::FailMode;
use crate::request::Request;
use crate::types::{
    Classification, CryptoOp, Decision, DenyReason, Obligations, Operation, ThreatLevel, Verdict,
};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

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
}

/// One step of the validation pipeline.
pub trait Stage: Send + Sync + 'static {
    /// A short stable name, used in metrics and explanations.
    fn name(&self) -> &str;
    /// Whether this stage runs for `op`. The default: only for `Check`.
    fn handles(&self, op: Operation) -> bool {
        op == Operation::Check
    }
    /// Judges `req`. Must not block; should not allocate.
    fn evaluate(&self, req: &Request<'_>, out: &mut Outcome) -> StageResult;
}

/// A custom validator for `Operation::Custom(id)` built from a closure.
pub(crate) struct Custom<F> {
    pub id: u16,
    pub name: String,
    pub f: F,
}

impl<F> Stage for Custom<F>
where
    F: Fn(&Request<'_>, &mut Outcome) -> StageResult + Send + Sync + 'static,
{
    fn name(&self) -> &str {
        &self.name
    }
    fn handles(&self, op: Operation) -> bool {
        op == Operation::Custom(self.id)
    }
    fn evaluate(&self, req: &Request<'_>, out: &mut Outcome) -> StageResult {
        (self.f)(req, out)
    }
}

const FIXED_OPS: [Operation; 9] = [
    Operation::ValidateAgent,
    Operation::AuthorizeTool,
    Operation::ScanContent,
    Operation::Check,
    Operation::Crypto(CryptoOp::Encrypt),
    Operation::Crypto(CryptoOp::Decrypt),
    Operation::Crypto(CryptoOp::Sign),
    Operation::Crypto(CryptoOp::Verify),
    Operation::Audit,
];

fn fixed_index(op: Operation) -> Option<usize> {
    FIXED_OPS.iter().position(|o| *o == op)
}

/// Registered stages and the per-operation table, frozen at build time.
pub(crate) struct Pipeline {
    stages: Box<[Arc<dyn Stage>]>,
    fixed: [Box<[u16]>; 9],
    custom: Box<[(u16, Box<[u16]>)]>,
    fail_mode: FailMode,
}

/// The result of running the pipeline.
pub(crate) struct Run {
    pub verdict: Verdict,
    pub panicked: bool,
}

impl Pipeline {
    pub(crate) fn new(stages: Vec<Arc<dyn Stage>>, fail_mode: FailMode) -> Pipeline {
        let select = |op: Operation| -> Box<[u16]> {
            (0..stages.len() as u16)
                .filter(|&i| stages[i as usize].handles(op))
                .collect()
        };
        let fixed = FIXED_OPS.map(select);
        let mut ids: Vec<u16> = (0..=u16::MAX)
            .filter(|&id| stages.iter().any(|s| s.handles(Operation::Custom(id))))
            .collect();
        ids.dedup();
        let custom = ids
            .into_iter()
            .map(|id| (id, select(Operation::Custom(id))))
            .collect();
        Pipeline {
            stages: stages.into_boxed_slice(),
            fixed,
            custom,
            fail_mode,
        }
    }

    fn stages_for(&self, op: Operation) -> Option<&[u16]> {
        match op {
            Operation::Custom(id) => self
                .custom
                .binary_search_by_key(&id, |(i, _)| *i)
                .ok()
                .map(|i| &*self.custom[i].1),
            _ => fixed_index(op).map(|i| &*self.fixed[i]),
        }
    }

    pub(crate) fn stage_names(&self) -> Vec<String> {
        self.stages.iter().map(|s| s.name().to_string()).collect()
    }

    /// Runs the stages for `req` (already shape-checked) in registration order.
    pub(crate) fn run(&self, req: &Request<'_>) -> Run {
        let mut out = Outcome {
            classification: req.classification,
            ..Outcome::default()
        };
        let list = match self.stages_for(req.operation) {
            Some(l) if !l.is_empty() => l,
            // `Check` is always handled by the request-shape check that ran before us.
            _ if req.operation == Operation::Check => &[],
            _ => {
                return Run {
                    verdict: Verdict::deny(DenyReason::NoStage),
                    panicked: false,
                }
            }
        };
        for &i in list {
            let stage = &self.stages[i as usize];
            match catch_unwind(AssertUnwindSafe(|| stage.evaluate(req, &mut out))) {
                Ok(StageResult::Pass) => {}
                Ok(StageResult::Deny(reason)) => {
                    return Run {
                        verdict: Verdict {
                            reason,
                            threat_level: out.threat_level,
                            indicators: out.indicators,
                            classification: out.classification,
                            rule: out.rule,
                            ..Verdict::deny(reason)
                        },
                        panicked: false,
                    }
                }
                Err(_) => {
                    let verdict = match self.fail_mode {
                        FailMode::Closed => Verdict::deny(DenyReason::Internal),
                        FailMode::Open => Verdict {
                            decision: Decision::AllowWith,
                            reason: DenyReason::None,
                            obligations: Obligations {
                                audit_required: true,
                                ..Obligations::NONE
                            },
                            ..Verdict::deny(DenyReason::None)
                        },
                    };
                    return Run {
                        verdict,
                        panicked: true,
                    };
                }
            }
        }
        let decision = if out.obligations.is_empty() {
            Decision::Allow
        } else {
            Decision::AllowWith
        };
        Run {
            verdict: Verdict {
                decision,
                reason: DenyReason::None,
                obligations: out.obligations,
                cache_hit: false,
                threat_level: out.threat_level,
                indicators: out.indicators,
                classification: out.classification,
                rule: out.rule,
                latency_ns: 0,
                core: 0,
            },
            panicked: false,
        }
    }
}
