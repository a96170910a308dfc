//! warden: a security validation data plane for AI-agent traffic.
//!
//! Gateways embed warden (or reach it over shared memory) and ask, for every agent action: may
//! this agent, in this tenant, at this classification, do this with this input? warden answers
//! in microseconds with a [`Verdict`]: allow, deny with a reason, or allow with obligations.
//!
//! ```
//! use warden::{Engine, Request, Operation, Classification, StageResult, DenyReason};
//! let engine = Engine::builder()
//!     .config(warden::Config { engine: warden::config::EngineConfig { cores: 1, ..Default::default() }, ..Default::default() })
//!     .custom(1, "no-shell", |req, _out| if req.tool == "shell" {
//!         StageResult::Deny(DenyReason::Custom(1)) } else { StageResult::Pass })
//!     .build()?;
//! let h = engine.handle();
//! let v = h.validate(&Request::new(Operation::Custom(1)).tenant("acme").agent("a1").tool("shell"));
//! assert!(!v.is_allowed());
//! engine.shutdown();
//! # Ok::<(), warden::BuildError>(())
//! ```
//!
//! See ARCHITECTURE.md for the map of modules and their invariants.

pub mod anomaly;
pub mod audit;
pub mod cache;
pub mod config;
pub mod engine;
pub mod fleet;
pub mod global;
pub mod hsm;
pub mod identity;
pub mod inputs;
pub mod ipc;
pub mod json;
pub mod keyed;
pub mod metrics;
pub mod policy;
pub mod request;
pub mod secrets;
pub mod source;
pub mod stage;
pub mod sync;
pub mod threat;
pub mod time;
pub mod trust;
pub mod types;
pub mod workload;

pub use config::Config;
pub use engine::{BuildError, Engine, EngineBuilder, Handle, ValidateFuture};
pub use metrics::Metrics;
pub use request::{Limits, Request};
pub use stage::{Outcome, Stage, StageResult};
#[doc(hidden)]
pub use sync::{ring, stack};
pub use types::{
    Classification, ContentOrigin, CryptoOp, Decision, DenyReason, Field, Obligations, Operation,
    Priority, SecurityLevel, ThreatLevel, Verdict,
};

/// mimalloc, the allocator warden's binary uses; library users may adopt it with
/// `#[global_allocator] static A: warden::alloc::MiMalloc = warden::alloc::MiMalloc;`.
#[cfg(feature = "mimalloc")]
pub mod alloc {
    pub use mimalloc::MiMalloc;
}

/// The README's examples compile and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
