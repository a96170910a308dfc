//! The policy: tenants, roles, tools and agents from one TOML file (`examples/policy.toml`),
//! compiled at load time into an immutable `Snapshot` whose decisions are a few table lookups.
//!
//! Invariants:
//! - a `Snapshot` is immutable; reloading builds a new one and swaps it whole, so a decision is
//!   made against exactly one policy;
//! - `authorize` allocates nothing and does a bounded number of hash lookups (tenant, agent,
//!   tool) plus one bit test and the tool's resource patterns for the tenants involved;
//! - every name in the file is resolved at load time; an unknown reference, a duplicate, or a
//!   bad value is an error naming the file, line and field;
//! - every deny names the rule that decided it (`Verdict::rule`, rendered by `explain`).

pub mod glob;
mod stage;

pub use stage::{NoIdentityStage, PolicyStage, ResourceStage};

use crate::inputs::Resolved;
use crate::request::Request;
use crate::source::{line_of, render, Lines, Seg};
use crate::types::{Classification, DenyReason, Obligations, SecurityLevel};
use glob::Glob;
use serde::Deserialize;
use std::collections::HashMap;
use std::path::Path;
use xxhash_rust::xxh3::Xxh3DefaultBuilder;

type Map<V> = HashMap<Box<str>, V, Xxh3DefaultBuilder>;

/// A policy error a person can act on: file, line, field, what to do.
pub type PolicyError = crate::source::SourceError;

// ---- the file ----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    levels: LevelsFile,
    #[serde(default)]
    tenants: Vec<TenantFile>,
    #[serde(default)]
    roles: Vec<RoleFile>,
    #[serde(default)]
    tools: Vec<ToolFile>,
    #[serde(default)]
    agents: Vec<AgentFile>,
    #[serde(default)]
    trust: TrustFile,
}

/// `[trust]`: how the policy acts on agents' trust scores (`trust.rs`).
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct TrustFile {
    /// Below this score an agent is judged strictly (0: never).
    low: f64,
    /// The threat level denied for an agent below `low` (instead of `threat.deny_at`).
    low_deny_at: crate::types::LevelName,
    /// An agent below `low` gets this share of its rate and burst.
    low_rate_factor: f64,
}

impl Default for TrustFile {
    fn default() -> Self {
        TrustFile {
            low: 0.0,
            low_deny_at: crate::types::LevelName::Medium,
            low_rate_factor: 0.5,
        }
    }
}

#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(deny_unknown_fields)]
struct LimitsFile {
    memory_mb: u64,
    cpu_ms: u32,
    file_mb: u64,
    #[serde(default)]
    operations: u32,
    /// The lowest trust score an agent may use a tool of this level at (0: any).
    #[serde(default)]
    min_trust: f64,
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct LevelsFile {
    safe: LimitsFile,
    restricted: LimitsFile,
    privileged: LimitsFile,
}

impl Default for LevelsFile {
    /// The operational guide's resource limits.
    fn default() -> Self {
        LevelsFile {
            safe: LimitsFile {
                memory_mb: 10,
                cpu_ms: 1_000,
                file_mb: 0,
                operations: 0,
                min_trust: 0.0,
            },
            restricted: LimitsFile {
                memory_mb: 100,
                cpu_ms: 5_000,
                file_mb: 10,
                operations: 0,
                min_trust: 0.0,
            },
            privileged: LimitsFile {
                memory_mb: 1_024,
                cpu_ms: 30_000,
                file_mb: 100,
                operations: 0,
                min_trust: 0.0,
            },
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantFile {
    name: String,
    /// Tenants whose agents may reach this tenant's resources.
    #[serde(default)]
    shares_with: Vec<String>,
    #[serde(default)]
    rate_per_s: f64,
    #[serde(default)]
    burst: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleFile {
    name: String,
    #[serde(default)]
    tools: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ToolFile {
    name: String,
    #[serde(default = "restricted")]
    level: String,
    #[serde(default = "unclassified")]
    classification: String,
    #[serde(default = "read")]
    access: String,
    /// Resource patterns per tenant name.
    #[serde(default)]
    resources: HashMap<String, Vec<String>>,
    /// The lowest trust score an agent may use this tool at (0: any).
    #[serde(default)]
    min_trust: f64,
}

fn restricted() -> String {
    "restricted".into()
}
fn unclassified() -> String {
    "unclassified".into()
}
fn read() -> String {
    "read".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentFile {
    name: String,
    tenant: String,
    role: String,
    #[serde(default = "unclassified")]
    clearance: String,
    #[serde(default = "restricted")]
    max_level: String,
    #[serde(default)]
    rate_per_s: f64,
    #[serde(default)]
    burst: u32,
}

// ---- the compiled snapshot ----

/// Whether a tool reads from or writes to its resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

/// A GCRA rate: requests per second and burst (0 = unlimited).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    pub per_s: f64,
    pub burst: u32,
}

#[derive(Debug)]
pub struct Tenant {
    pub name: Box<str>,
    /// `shared_from[t]`: tenant `t` shared its resources with this tenant.
    pub shared_from: Box<[bool]>,
    pub rate: Rate,
    pub line: usize,
}

#[derive(Debug)]
pub struct Tool {
    pub name: Box<str>,
    pub level: SecurityLevel,
    pub classification: Classification,
    pub access: Access,
    /// Patterns per tenant id (empty: the tool takes no resource in that tenant).
    pub patterns: Box<[Box<[Glob]>]>,
    /// The lowest trust score an agent may use it at (0: any).
    pub min_trust: f32,
    pub line: usize,
}

#[derive(Debug)]
pub struct Agent {
    pub name: Box<str>,
    pub tenant: u32,
    pub role: u32,
    pub clearance: Classification,
    pub max_level: SecurityLevel,
    pub rate: Rate,
    pub line: usize,
}

#[derive(Debug)]
pub struct Role {
    pub name: Box<str>,
    /// `grants[tool]`.
    pub grants: Box<[bool]>,
    pub line: usize,
}

/// The compiled, immutable policy.
#[derive(Debug)]
pub struct Snapshot {
    pub file: String,
    pub tenants: Vec<Tenant>,
    pub roles: Vec<Role>,
    pub tools: Vec<Tool>,
    pub agents: Vec<Agent>,
    pub limits: [Obligations; 3],
    /// How the policy acts on trust scores.
    pub trust: TrustRules,
    tenant_ids: Map<u32>,
    tool_ids: Map<u32>,
    /// Per tenant: agent name → agent id.
    agent_ids: Vec<Map<u32>>,
}

/// The policy's `[trust]` and `min_trust` settings, compiled.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrustRules {
    /// Below this score an agent is judged strictly (0: never).
    pub low: f32,
    pub low_deny_at: crate::types::ThreatLevel,
    pub low_rate_factor: f64,
    /// `min_trust` per tool level.
    pub level_min: [f32; 3],
}

/// What an allowed request carries out of authorization.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grant {
    pub obligations: Obligations,
    /// Security level of the tool (`Safe` when the request names none).
    pub level: SecurityLevel,
    /// The effective classification: the higher of the request's and the tool's.
    pub classification: Classification,
    /// The agent's clearance: no verdict for this request may carry a higher classification.
    pub clearance: Classification,
    pub agent: u32,
    pub tenant: u32,
    pub rule: u32,
}

/// Rule ids: the entity kind in the top byte, its index below.
pub mod rule {
    pub const TENANT: u32 = 1 << 24;
    pub const AGENT: u32 = 2 << 24;
    pub const TOOL: u32 = 3 << 24;
    pub const ROLE: u32 = 4 << 24;
}

fn level_name(l: SecurityLevel) -> &'static str {
    match l {
        SecurityLevel::Safe => "safe",
        SecurityLevel::Restricted => "restricted",
        SecurityLevel::Privileged => "privileged",
    }
}

impl Snapshot {
    /// Loads and compiles a policy file.
    pub fn load(path: &Path) -> Result<Snapshot, PolicyError> {
        let name = path.display().to_string();
        let src = crate::source::read_text_bounded(
            path,
            crate::source::limits::POLICY_BYTES,
            "the policy file",
        )
        .map_err(|message| PolicyError {
            file: name.clone(),
            line: None,
            field: "-".into(),
            message,
        })?;
        Self::from_toml(&src, &name)
    }

    /// Compiles policy text; `file` names it in errors. Returns the first error (by line).
    pub fn from_toml(src: &str, file: &str) -> Result<Snapshot, PolicyError> {
        Self::from_toml_all(src, file).map_err(|mut v| v.swap_remove(0))
    }

    /// Compiles policy text, reporting every semantic error (sorted by line). A syntax or type
    /// error stops at the first, since the rest of the file cannot be read reliably.
    pub fn from_toml_all(src: &str, file: &str) -> Result<Snapshot, Vec<PolicyError>> {
        let f: File =
            toml::from_str(src).map_err(|e| vec![crate::source::from_toml_error(&e, src, file)])?;
        let doc = src.parse::<toml_edit::ImDocument<String>>().ok();
        let lines = Lines::new(src);
        let err = |path: &[Seg], message: String| PolicyError {
            file: file.into(),
            line: doc.as_ref().and_then(|d| line_of(&lines, d, path)),
            field: render(path),
            message,
        };
        let line = |path: &[Seg]| {
            doc.as_ref()
                .and_then(|d| line_of(&lines, d, path))
                .unwrap_or(0)
        };

        // A score threshold: between 0 and 1.
        let unit = |errs: &mut Vec<PolicyError>, path: &[Seg], v: f64| -> f32 {
            if (0.0..=1.0).contains(&v) {
                v as f32
            } else {
                errs.push(err(path, format!("{v}: a trust score is between 0 and 1")));
                0.0
            }
        };
        // Semantic errors are collected, not returned at the first: a bad value gets a
        // placeholder so compilation goes on and every problem in the file is reported.
        let mut errs: Vec<PolicyError> = Vec::new();
        const CLASSES: &str = "expected unclassified, cui, confidential, secret or top_secret";
        const LEVELS: &str = "expected safe, restricted or privileged";
        // Listed in "unknown ..." errors: built once, however many errors name them.
        let tenant_list = names(f.tenants.iter().map(|t| &t.name));
        let tool_list = names(f.tools.iter().map(|t| &t.name));
        let role_list = names(f.roles.iter().map(|r| &r.name));
        let tenant_names = || &tenant_list;

        let mut tenant_ids: Map<u32> = Map::default();
        let mut seen = Names::default();
        for (i, t) in f.tenants.iter().enumerate() {
            let at = [Seg::K("tenants"), Seg::I(i), Seg::K("name")];
            match seen.admit("tenant", &t.name) {
                Err(m) => errs.push(err(&at, m)),
                Ok(()) => {
                    tenant_ids.insert(t.name.as_str().into(), i as u32);
                }
            }
        }
        let nt = f.tenants.len();
        let mut shared: Vec<Vec<bool>> =
            (0..nt).map(|i| (0..nt).map(|j| i == j).collect()).collect();
        // `a.shares_with = [b]`: b's agents may reach a's resources, i.e. b is shared from a.
        for (i, t) in f.tenants.iter().enumerate() {
            for (j, other) in t.shares_with.iter().enumerate() {
                match tenant_ids.get(other.as_str()) {
                    Some(&o) => shared[o as usize][i] = true,
                    None => errs.push(err(
                        &[
                            Seg::K("tenants"),
                            Seg::I(i),
                            Seg::K("shares_with"),
                            Seg::I(j),
                        ],
                        format!(
                            "unknown tenant `{other}`; defined tenants: {}",
                            tenant_names()
                        ),
                    )),
                }
            }
        }
        let mut rate = |path: &[Seg], r: f64, b: u32| -> Rate {
            if !(r == 0.0 || (0.001..=1e9).contains(&r)) {
                errs.push(err(
                    path,
                    "rate_per_s must be 0 (unlimited) or between 0.001 and 1e9".into(),
                ));
                return Rate {
                    per_s: 0.0,
                    burst: 0,
                };
            }
            Rate {
                per_s: r,
                burst: if r > 0.0 { b.max(1) } else { 0 },
            }
        };
        let tenants: Vec<Tenant> = f
            .tenants
            .iter()
            .zip(shared)
            .enumerate()
            .map(|(i, (t, shared))| Tenant {
                name: t.name.as_str().into(),
                shared_from: shared.into(),
                rate: rate(
                    &[Seg::K("tenants"), Seg::I(i), Seg::K("rate_per_s")],
                    t.rate_per_s,
                    t.burst,
                ),
                line: line(&[Seg::K("tenants"), Seg::I(i)]),
            })
            .collect();
        let mut agent_rates = Vec::with_capacity(f.agents.len());
        for (i, a) in f.agents.iter().enumerate() {
            agent_rates.push(rate(
                &[Seg::K("agents"), Seg::I(i), Seg::K("rate_per_s")],
                a.rate_per_s,
                a.burst,
            ));
        }

        let mut tool_ids: Map<u32> = Map::default();
        let mut tool_names = Names::default();
        let mut tools = Vec::with_capacity(f.tools.len());
        for (i, t) in f.tools.iter().enumerate() {
            let at = |k: &'static str| [Seg::K("tools"), Seg::I(i), Seg::K(k)];
            match tool_names.admit("tool", &t.name) {
                Err(m) => errs.push(err(&at("name"), m)),
                Ok(()) => {
                    tool_ids.insert(t.name.as_str().into(), i as u32);
                }
            }
            let level = parse_level(&t.level).unwrap_or_else(|| {
                errs.push(err(
                    &at("level"),
                    format!("unknown level `{}`; {LEVELS}", t.level),
                ));
                SecurityLevel::Restricted
            });
            let classification = Classification::parse(&t.classification).unwrap_or_else(|| {
                errs.push(err(
                    &at("classification"),
                    format!("unknown classification `{}`; {CLASSES}", t.classification),
                ));
                Classification::Unclassified
            });
            let access = match t.access.as_str() {
                "read" => Access::Read,
                "write" => Access::Write,
                other => {
                    errs.push(err(
                        &at("access"),
                        format!("unknown access `{other}`; expected read or write"),
                    ));
                    Access::Read
                }
            };
            let mut patterns: Vec<Vec<Glob>> = vec![Vec::new(); nt];
            let mut keys: Vec<&String> = t.resources.keys().collect();
            keys.sort();
            for tenant in keys {
                let path = [
                    Seg::K("tools"),
                    Seg::I(i),
                    Seg::K("resources"),
                    Seg::Key(tenant.clone()),
                ];
                let Some(&tid) = tenant_ids.get(tenant.as_str()) else {
                    errs.push(err(
                        &path,
                        format!(
                            "unknown tenant `{tenant}`; defined tenants: {}",
                            tenant_names()
                        ),
                    ));
                    continue;
                };
                for p in &t.resources[tenant] {
                    match url_pattern(p).and_then(|p| Glob::new(&p)) {
                        Ok(g) => patterns[tid as usize].push(g),
                        Err(m) => errs.push(err(&path, m)),
                    }
                }
            }
            tools.push(Tool {
                name: t.name.as_str().into(),
                level,
                classification,
                access,
                patterns: patterns.into_iter().map(Vec::into_boxed_slice).collect(),
                min_trust: unit(&mut errs, &at("min_trust"), t.min_trust),
                line: line(&[Seg::K("tools"), Seg::I(i)]),
            });
        }

        let mut role_ids: Map<u32> = Map::default();
        let mut role_names = Names::default();
        let mut roles = Vec::with_capacity(f.roles.len());
        for (i, r) in f.roles.iter().enumerate() {
            match role_names.admit("role", &r.name) {
                Err(m) => errs.push(err(&[Seg::K("roles"), Seg::I(i), Seg::K("name")], m)),
                Ok(()) => {
                    role_ids.insert(r.name.as_str().into(), i as u32);
                }
            }
            let mut grants = vec![false; tools.len()];
            for (j, tool) in r.tools.iter().enumerate() {
                match tool_ids.get(tool.as_str()) {
                    Some(&tid) => grants[tid as usize] = true,
                    None => errs.push(err(
                        &[Seg::K("roles"), Seg::I(i), Seg::K("tools"), Seg::I(j)],
                        format!("unknown tool `{tool}`; defined tools: {}", tool_list),
                    )),
                }
            }
            roles.push(Role {
                name: r.name.as_str().into(),
                grants: grants.into(),
                line: line(&[Seg::K("roles"), Seg::I(i)]),
            });
        }

        let mut agent_ids: Vec<Map<u32>> = (0..nt).map(|_| Map::default()).collect();
        let mut agent_names: Vec<Names> = (0..nt).map(|_| Names::default()).collect();
        let mut agents = Vec::with_capacity(f.agents.len());
        for ((i, a), rate) in f.agents.iter().enumerate().zip(agent_rates) {
            let at = |k: &'static str| [Seg::K("agents"), Seg::I(i), Seg::K(k)];
            let tenant = tenant_ids.get(a.tenant.as_str()).copied();
            if tenant.is_none() {
                errs.push(err(
                    &at("tenant"),
                    format!(
                        "unknown tenant `{}`; defined tenants: {}",
                        a.tenant,
                        tenant_names()
                    ),
                ));
            }
            let role = role_ids.get(a.role.as_str()).copied().unwrap_or_else(|| {
                errs.push(err(
                    &at("role"),
                    format!("unknown role `{}`; defined roles: {}", a.role, role_list),
                ));
                0
            });
            let clearance = Classification::parse(&a.clearance).unwrap_or_else(|| {
                errs.push(err(
                    &at("clearance"),
                    format!("unknown classification `{}`; {CLASSES}", a.clearance),
                ));
                Classification::Unclassified
            });
            let max_level = parse_level(&a.max_level).unwrap_or_else(|| {
                errs.push(err(
                    &at("max_level"),
                    format!("unknown level `{}`; {LEVELS}", a.max_level),
                ));
                SecurityLevel::Safe
            });
            if let Some(t) = tenant {
                match agent_names[t as usize].admit("agent", &a.name) {
                    Err(m) => {
                        errs.push(err(&at("name"), format!("{m} (in tenant `{}`)", a.tenant)))
                    }
                    Ok(()) => {
                        agent_ids[t as usize].insert(a.name.as_str().into(), i as u32);
                    }
                }
            }
            agents.push(Agent {
                name: a.name.as_str().into(),
                tenant: tenant.unwrap_or(0),
                role,
                clearance,
                max_level,
                rate,
                line: line(&[Seg::K("agents"), Seg::I(i)]),
            });
        }
        let level_min = [
            unit(
                &mut errs,
                &[Seg::K("levels"), Seg::K("safe"), Seg::K("min_trust")],
                f.levels.safe.min_trust,
            ),
            unit(
                &mut errs,
                &[Seg::K("levels"), Seg::K("restricted"), Seg::K("min_trust")],
                f.levels.restricted.min_trust,
            ),
            unit(
                &mut errs,
                &[Seg::K("levels"), Seg::K("privileged"), Seg::K("min_trust")],
                f.levels.privileged.min_trust,
            ),
        ];
        let trust = TrustRules {
            low: unit(&mut errs, &[Seg::K("trust"), Seg::K("low")], f.trust.low),
            low_deny_at: f.trust.low_deny_at.level(),
            low_rate_factor: {
                let r = f.trust.low_rate_factor;
                if !(0.01..=1.0).contains(&r) {
                    errs.push(err(
                        &[Seg::K("trust"), Seg::K("low_rate_factor")],
                        format!("{r}: must be between 0.01 and 1"),
                    ));
                }
                r
            },
            level_min,
        };
        if !errs.is_empty() {
            errs.sort_by_key(|e| e.line.unwrap_or(usize::MAX));
            if errs.len() > MAX_REPORTED_ERRORS {
                let more = errs.len() - MAX_REPORTED_ERRORS;
                errs.truncate(MAX_REPORTED_ERRORS);
                errs.push(PolicyError {
                    file: file.into(),
                    line: None,
                    field: "-".into(),
                    message: format!(
                        "{more} more errors not shown ({} in all); fix these first",
                        MAX_REPORTED_ERRORS + more
                    ),
                });
            }
            return Err(errs);
        }
        let lim = |l: LimitsFile| Obligations {
            memory_bytes: l.memory_mb << 20,
            cpu_time_ms: l.cpu_ms,
            file_bytes: l.file_mb << 20,
            operations: l.operations,
            redactions: 0,
            audit_required: false,
        };
        let mut limits = [
            lim(f.levels.safe),
            lim(f.levels.restricted),
            lim(f.levels.privileged),
        ];
        limits[SecurityLevel::Privileged as usize].audit_required = true;
        Ok(Snapshot {
            file: file.into(),
            tenants,
            roles,
            tools,
            agents,
            limits,
            trust,
            tenant_ids,
            tool_ids,
            agent_ids,
        })
    }

    /// The lowest trust score `g` may be used at: its level's `min_trust` and its tool's.
    #[inline]
    pub fn min_trust(&self, g: &Grant) -> f32 {
        let level = self.trust.level_min[g.level as usize];
        if g.rule & !0xff_ffff == rule::TOOL {
            let tool = &self.tools[(g.rule & 0xff_ffff) as usize];
            level.max(tool.min_trust)
        } else {
            level
        }
    }

    pub fn tenant_id(&self, name: &str) -> Option<u32> {
        self.tenant_ids.get(name).copied()
    }
    pub fn agent_id(&self, tenant: u32, name: &str) -> Option<u32> {
        self.agent_ids.get(tenant as usize)?.get(name).copied()
    }
    pub fn tool_id(&self, name: &str) -> Option<u32> {
        self.tool_ids.get(name).copied()
    }

    /// Decides whether the request's agent may use its tool, at the request's classification.
    /// No allocation. The resource is judged apart, by `authorize_resource`.
    ///
    /// Order: tenant known → agent registered in it → (no tool: the agent's clearance covers
    /// the request's classification) → tool known → role grants tool → tool level ≤ agent
    /// maximum → the effective classification, the higher of the request's and the tool's, is
    /// within the agent's clearance (no read up; for a write no blind write up either: an agent
    /// never handles data above its clearance) → for a write, the tool's classification is at
    /// least the request's (no write down).
    pub fn authorize(&self, req: &Request<'_>) -> Result<Grant, (DenyReason, u32)> {
        let tenant = self
            .tenant_id(req.tenant)
            .ok_or((DenyReason::UnknownTenant, 0))?;
        let agent_id = self
            .agent_id(tenant, req.agent)
            .ok_or((DenyReason::UnknownAgent, rule::TENANT | tenant))?;
        let agent = &self.agents[agent_id as usize];
        let a_rule = rule::AGENT | agent_id;
        let data = req.classification;
        if req.tool.is_empty() {
            // Identity only (no tool): the agent is known in its tenant and cleared for the
            // classification it acts at.
            if agent.clearance < data {
                return Err((DenyReason::ReadUp, a_rule));
            }
            return Ok(Grant {
                obligations: Obligations::NONE,
                level: SecurityLevel::Safe,
                classification: data,
                clearance: agent.clearance,
                agent: agent_id,
                tenant,
                rule: a_rule,
            });
        }
        let tool_id = self
            .tool_id(req.tool)
            .ok_or((DenyReason::UnknownTool, a_rule))?;
        let tool = &self.tools[tool_id as usize];
        let t_rule = rule::TOOL | tool_id;
        if !self.roles[agent.role as usize].grants[tool_id as usize] {
            return Err((DenyReason::NotGranted, rule::ROLE | agent.role));
        }
        if tool.level > agent.max_level {
            return Err((DenyReason::LevelTooHigh, a_rule));
        }
        let effective = data.max(tool.classification);
        if agent.clearance < effective {
            return Err((DenyReason::ReadUp, a_rule));
        }
        if tool.access == Access::Write && tool.classification < data {
            return Err((DenyReason::WriteDown, t_rule));
        }
        Ok(Grant {
            obligations: self.limits[tool.level as usize],
            level: tool.level,
            classification: effective,
            clearance: agent.clearance,
            agent: agent_id,
            tenant,
            rule: t_rule,
        })
    }

    /// The whole decision, as the engine makes it in two halves: `authorize`, then
    /// `authorize_resource` with the URL scheme allow-list `schemes`.
    pub fn decide(&self, req: &Request<'_>, schemes: &[&str]) -> Result<Grant, (DenyReason, u32)> {
        let g = self.authorize(req)?;
        self.authorize_resource(req, schemes)?;
        Ok(g)
    }

    /// Decides whether the request's resource is one its tool may reach for its tenant: the
    /// resource is resolved by the input checks (`inputs::resolve`: a path decoded, a URL as a
    /// WHATWG parser reads it; anything they refuse is refused here with their reason), then
    /// must match one of the tool's patterns for the agent's tenant, or for a tenant that shared
    /// with it. A tool with patterns needs a resource; a tool without any takes none.
    pub fn authorize_resource(
        &self,
        req: &Request<'_>,
        schemes: &[&str],
    ) -> Result<(), (DenyReason, u32)> {
        let tenant = self
            .tenant_id(req.tenant)
            .ok_or((DenyReason::UnknownTenant, 0))?;
        let Some(tool_id) = self.tool_id(req.tool) else {
            if req.tool.is_empty() {
                // No tool: there is nothing to match a resource against, so naming one is
                // refused (a gateway that forgot the tool must not get an unchecked allow).
                return if req.resource.is_empty() {
                    Ok(())
                } else {
                    Err((DenyReason::ResourceNotAllowed, 0))
                };
            }
            return Err((DenyReason::UnknownTool, 0));
        };
        let tool = &self.tools[tool_id as usize];
        let t_rule = rule::TOOL | tool_id;
        let takes_resources = tool.patterns.iter().any(|p| !p.is_empty());
        let judge = |matches: &dyn Fn(&Glob) -> bool| {
            if tool.patterns[tenant as usize].iter().any(matches) {
                return Ok(());
            }
            // Another tenant's resource: allowed only if that tenant shared with ours.
            let mut foreign = false;
            for (t, pats) in tool.patterns.iter().enumerate() {
                if t as u32 != tenant && pats.iter().any(matches) {
                    if self.tenants[tenant as usize].shared_from[t] {
                        return Ok(());
                    }
                    foreign = true;
                }
            }
            Err(if foreign {
                (DenyReason::TenantIsolation, t_rule)
            } else {
                (DenyReason::ResourceNotAllowed, t_rule)
            })
        };
        let decided = crate::inputs::resolve(req.resource, schemes, |res| match &res {
            Resolved::Empty if takes_resources => Err((DenyReason::ResourceNotAllowed, t_rule)),
            Resolved::Empty => Ok(()),
            Resolved::Path { raw, decoded } => {
                judge(&|g: &Glob| g.matches(raw) && g.matches_path(decoded))
            }
            // A URL must match as serialized and as a decoding server reads its path.
            Resolved::Url(u) => crate::inputs::with_decoded_url_form(u, |d| {
                judge(&|g: &Glob| g.matches(u.as_str()) && g.matches(d))
            })
            .unwrap_or(Err((DenyReason::ResourceNotAllowed, t_rule))),
        });
        match decided {
            Ok(r) => r,
            Err(issue) => Err((DenyReason::Input(issue), t_rule)),
        }
    }

    /// A sentence naming the rule a verdict came from, with its place in the file.
    pub fn explain(&self, rule: u32) -> String {
        let idx = (rule & 0xff_ffff) as usize;
        match rule & 0xff00_0000 {
            rule::TENANT => self
                .tenants
                .get(idx)
                .map(|t| format!("tenant `{}` ({}:{})", t.name, self.file, t.line)),
            rule::AGENT => self.agents.get(idx).map(|a| {
                format!(
                    "agent `{}` ({}:{}): role `{}`, clearance {}, max level {}",
                    a.name,
                    self.file,
                    a.line,
                    self.roles[a.role as usize].name,
                    a.clearance.name(),
                    level_name(a.max_level)
                )
            }),
            rule::TOOL => self.tools.get(idx).map(|t| {
                format!(
                    "tool `{}` ({}:{}): level {}, classification {}, {}",
                    t.name,
                    self.file,
                    t.line,
                    level_name(t.level),
                    t.classification.name(),
                    if t.access == Access::Read {
                        "reads"
                    } else {
                        "writes"
                    }
                )
            }),
            rule::ROLE => self
                .roles
                .get(idx)
                .map(|r| format!("role `{}` ({}:{})", r.name, self.file, r.line)),
            _ => None,
        }
        .unwrap_or_else(|| "no rule".into())
    }
}

/// A URL pattern in the form resources are matched in: as a WHATWG parser serializes it (scheme
/// and host lower-cased, default port dropped, dot segments resolved), since a URL resource is
/// matched by what the parser made of it. Paths are kept as written.
fn url_pattern(p: &str) -> Result<String, String> {
    if !crate::inputs::is_url(p) {
        return Ok(p.to_string());
    }
    let ser = url::Url::parse(p).map(String::from).map_err(|e| {
        format!("`{p}` reads as a URL (it starts with a scheme) but a URL parser refuses it: {e}")
    })?;
    // The host is pinned: a star may stand for leading labels (`*.acme.example`) and nothing
    // else there, since `**` or a star beside the host would match past it (`**.acme.example`
    // matches `evil.com/.acme.example`, `acme.example*` matches `acme.example.evil.com`).
    let rest = ser.split_once("://").map_or("", |x| x.1);
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    if authority
        .strip_prefix("*.")
        .unwrap_or(authority)
        .contains('*')
    {
        return Err(format!(
            "`{p}`: a star in a URL pattern's host may only stand for its leading labels (`https://*.acme.example/**`); the host is what the pattern pins"
        ));
    }
    Ok(ser)
}

/// Longest tenant, agent, role or tool name.
pub const MAX_NAME_BYTES: usize = 128;

/// The names of one kind seen so far, by their lower-case form.
#[derive(Default)]
struct Names(HashMap<String, String>);

impl Names {
    /// Admits `name` for `kind`, or says why not. A name is ASCII letters, digits and `._:@-`,
    /// starting with a letter or digit, at most `MAX_NAME_BYTES` bytes: ASCII only, so no two
    /// names can look alike in another script (`acme` with a Cyrillic `а`), no NUL or control
    /// character can hide in one, and no two names of a kind may differ only in case (`ACME`
    /// beside `acme`), since a person reading a log or a policy cannot tell them apart.
    fn admit(&mut self, kind: &str, name: &str) -> Result<(), String> {
        if name.is_empty() {
            return Err(format!("a {kind} needs a name"));
        }
        if name.len() > MAX_NAME_BYTES {
            return Err(format!(
                "a {kind} name may be at most {MAX_NAME_BYTES} bytes; this one has {}",
                name.len()
            ));
        }
        let ok = name
            .bytes()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
            && name.bytes().all(|c| {
                c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b':' | b'@' | b'-')
            });
        if !ok {
            return Err(format!(
                "{kind} name {name:?} may hold only ASCII letters, digits and `._:@-`, starting with a letter or digit (so that no two names look alike)"
            ));
        }
        match self.0.insert(name.to_ascii_lowercase(), name.to_string()) {
            None => Ok(()),
            Some(first) if first == name => Err(format!("{kind} `{name}` is defined twice")),
            Some(first) => Err(format!(
                "{kind} `{name}` differs from {kind} `{first}` only in case; names must differ in more than case"
            )),
        }
    }
}

fn parse_level(s: &str) -> Option<SecurityLevel> {
    Some(match s {
        "safe" => SecurityLevel::Safe,
        "restricted" => SecurityLevel::Restricted,
        "privileged" => SecurityLevel::Privileged,
        _ => return None,
    })
}

/// Most errors one policy check reports (the rest are counted in one last error).
pub const MAX_REPORTED_ERRORS: usize = 200;

/// The defined names of a kind, for an error message: at most 20, then a count.
fn names<'a>(it: impl Iterator<Item = &'a String>) -> String {
    let mut v: Vec<&str> = Vec::new();
    let mut more = 0usize;
    for s in it {
        if v.len() < 20 {
            v.push(s.as_str());
        } else {
            more += 1;
        }
    }
    match (v.is_empty(), more) {
        (true, _) => "(none)".into(),
        (false, 0) => v.join(", "),
        (false, n) => format!("{} and {n} more", v.join(", ")),
    }
}

// ---- settings (`[policy]` in the config file) ----

#[derive(Clone, Debug, PartialEq, Default, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    /// Policy file (see `examples/policy.toml`); empty: no policy stage, so identity,
    /// authorization and rate limits are not checked.
    pub file: String,
}
