//! The pipeline: which stages run for which operation, run in order with panics contained, and
//! the pre-cache outcome merged with a cached or computed verdict.
//!
//! Invariants:
//! - the table of which stages run for which operation is computed once at build time;
//!   selecting the stages of a request is an array index (fixed operations) or a binary search
//!   (custom operations), never an allocation;
//! - a stage that panics is contained with `catch_unwind` (its payload dropped inside another,
//!   so a payload that panics in `Drop` cannot escape, `drop_payload`): the request is denied with
//!   `Internal` (or allowed with `audit_required` in fail-open mode), the panic is counted, and
//!   the core keeps running;
//! - an operation no stage handles, or only stages that do not decide (`Stage::decides`: the
//!   built-in input checks), is denied with `NoStage` (fail closed). `Check` is handled by
//!   the built-in request-shape check, which always runs first, so `Check` with no other stage
//!   allows every well-formed request: register stages to make it decide;
//! - a verdict whose classification is above the requester's clearance (`Outcome::ceiling`) is
//!   a denial, whichever stage raised it (`merge`).

use crate::config::FailMode;
use crate::request::Request;
use crate::stage::{Outcome, Stage, StageResult};
use crate::types::{CryptoOp, Decision, DenyReason, Obligations, Operation, Verdict};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

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

/// The stages one operation runs: before the cache lookup, and on a miss.
struct Lists {
    pre: Box<[u16]>,
    post: Box<[u16]>,
    /// Whether a stage that decides (`Stage::decides`) is among them; without one the
    /// operation is denied `NoStage`.
    decides: bool,
}

/// Registered stages and the per-operation tables, frozen at build time.
pub(crate) struct Pipeline {
    stages: Box<[Arc<dyn Stage>]>,
    fixed: [Lists; 9],
    custom: Box<[(u16, Lists)]>,
    fail_mode: FailMode,
}

/// The result of running the pipeline.
pub(crate) struct Run {
    pub verdict: Verdict,
    pub panicked: bool,
}

impl Pipeline {
    pub(crate) fn new(stages: Vec<Arc<dyn Stage>>, fail_mode: FailMode) -> Pipeline {
        let select = |op: Operation| -> Lists {
            let pick = |pre: bool| {
                (0..stages.len() as u16)
                    .filter(|&i| {
                        stages[i as usize].handles(op) && stages[i as usize].pre_cache() == pre
                    })
                    .collect()
            };
            Lists {
                pre: pick(true),
                post: pick(false),
                decides: stages.iter().any(|s| s.handles(op) && s.decides(op)),
            }
        };
        let fixed = FIXED_OPS.map(select);
        // A custom operation that only filters handle has no table: it is denied `NoStage`.
        let ids: Vec<u16> = (0..=u16::MAX)
            .filter(|&id| {
                stages
                    .iter()
                    .any(|s| s.handles(Operation::Custom(id)) && s.decides(Operation::Custom(id)))
            })
            .collect();
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

    fn lists(&self, op: Operation) -> Option<&Lists> {
        match op {
            Operation::Custom(id) => self
                .custom
                .binary_search_by_key(&id, |(i, _)| *i)
                .ok()
                .map(|i| &self.custom[i].1),
            _ => fixed_index(op).map(|i| &self.fixed[i]),
        }
    }

    /// Whether `op` has stages that must run before the cache lookup.
    #[inline]
    pub(crate) fn has_pre(&self, op: Operation) -> bool {
        self.lists(op).is_some_and(|l| !l.pre.is_empty())
    }

    fn failed(&self) -> Run {
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
        Run {
            verdict,
            panicked: true,
        }
    }

    /// Runs `list` in order over `out`; `Some(run)` when one denied or failed.
    fn run_list(&self, list: &[u16], req: &Request<'_>, out: &mut Outcome) -> Option<Run> {
        for &i in list {
            let stage = &self.stages[i as usize];
            match catch_unwind(AssertUnwindSafe(|| stage.evaluate(req, out))) {
                Ok(StageResult::Pass) => {}
                Ok(StageResult::Deny(reason)) => {
                    return Some(Run {
                        verdict: Verdict {
                            reason,
                            threat_level: out.threat_level,
                            indicators: out.indicators,
                            classification: out.classification,
                            rule: out.rule,
                            ..Verdict::deny(reason)
                        },
                        panicked: false,
                    })
                }
                Err(payload) => {
                    drop_payload(payload);
                    return Some(self.failed());
                }
            }
        }
        None
    }

    /// Runs the pre-cache stages: their outcome (to merge with the cached or computed
    /// post-cache verdict), and `Some(run)` when one denied or failed.
    pub(crate) fn run_pre(&self, req: &Request<'_>, agent: u64) -> (Outcome, Option<Run>) {
        let mut out = Outcome {
            classification: req.classification,
            agent,
            ..Outcome::default()
        };
        if let Some(l) = self.lists(req.operation) {
            if let Some(mut run) = self.run_list(&l.pre, req, &mut out) {
                // a denial still says what trust score it was judged at
                run.verdict.trust_pct = out.trust_pct.unwrap_or(crate::trust::NO_TRUST);
                return (out, Some(run));
            }
        }
        (out, None)
    }

    /// Runs the post-cache stages (already shape-checked; pre-cache stages already passed
    /// when there are any, and `pre` is their outcome). An operation with no stage at all is
    /// denied with `NoStage`.
    pub(crate) fn run(&self, req: &Request<'_>, pre: &Outcome) -> Run {
        let mut out = Outcome {
            classification: req.classification,
            policy: pre.policy,
            ..Outcome::default()
        };
        let list: &[u16] = match self.lists(req.operation) {
            Some(l) if l.decides => &l.post,
            // `Check` is always handled by the request-shape check that ran before us.
            _ if req.operation == Operation::Check => &[],
            _ => {
                return Run {
                    verdict: Verdict::deny(DenyReason::NoStage),
                    panicked: false,
                }
            }
        };
        if let Some(run) = self.run_list(list, req, &mut out) {
            return run;
        }
        Run {
            verdict: allow(&out),
            panicked: false,
        }
    }

    pub(crate) fn stage_names(&self) -> Vec<String> {
        self.stages.iter().map(|s| s.name().to_string()).collect()
    }
}

/// The verdict of an allowed outcome.
fn allow(out: &Outcome) -> Verdict {
    Verdict {
        decision: if out.obligations.is_empty() {
            Decision::Allow
        } else {
            Decision::AllowWith
        },
        reason: DenyReason::None,
        obligations: out.obligations,
        cache_hit: false,
        threat_level: out.threat_level,
        indicators: out.indicators,
        classification: out.classification,
        rule: out.rule,
        latency_ns: 0,
        core: 0,
        trust_pct: crate::trust::NO_TRUST,
    }
}

/// Combines the pre-cache outcome with the post-cache verdict (cached or fresh): a deny stays a
/// deny; otherwise obligations keep the stricter of each limit, classification the higher.
pub(crate) fn merge(pre: &Outcome, post: Verdict) -> Verdict {
    let trust_pct = pre.trust_pct.unwrap_or(crate::trust::NO_TRUST);
    if post.decision == Decision::Deny {
        return Verdict { trust_pct, ..post };
    }
    if pre.strict_deny_at.is_some_and(|l| post.threat_level >= l) {
        // The agent's trust is low: a threat below the usual threshold is enough.
        return Verdict {
            threat_level: post.threat_level,
            indicators: post.indicators,
            classification: post.classification,
            rule: pre.rule,
            trust_pct,
            ..Verdict::deny(DenyReason::ThreatAtLowTrust(post.threat_level))
        };
    }
    let classification = post.classification.max(pre.classification);
    if pre.ceiling.is_some_and(|c| classification > c) {
        // A stage raised the classification above what the requester is cleared for.
        return Verdict {
            classification,
            rule: pre.rule,
            trust_pct,
            ..Verdict::deny(DenyReason::ReadUp)
        };
    }
    let mut o = post.obligations;
    o.merge(&pre.obligations);
    Verdict {
        decision: if o.is_empty() {
            Decision::Allow
        } else {
            Decision::AllowWith
        },
        obligations: o,
        classification,
        rule: if post.rule != 0 { post.rule } else { pre.rule },
        threat_level: post.threat_level.max(pre.threat_level),
        indicators: post.indicators | pre.indicators,
        trust_pct,
        ..post
    }
}

/// Drops a caught panic's payload without letting a panic in its `Drop` escape: that second
/// payload, whose `Drop` may panic again, is leaked instead (only a payload type that panics
/// when dropped gets there; ordinary payloads, however large, are freed).
pub(crate) fn drop_payload(payload: Box<dyn std::any::Any + Send>) {
    if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        std::mem::forget(again);
    }
}
