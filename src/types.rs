//! The vocabulary of DESIGN.md as plain `Copy` types: classifications, priorities, operations,
//! verdicts, deny reasons and obligations.
//!
//! Invariant: every type here is `Copy`, has a stable numeric code (`code()` / `from_code()`), and
//! formats without allocating on the hot path. Codes are part of the wire format and of the JSON
//! output; never renumber, only append.

use core::fmt;

/// Data classification, ordered `Unclassified < Cui < Confidential < Secret < TopSecret`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(u8)]
pub enum Classification {
    #[default]
    Unclassified = 0,
    Cui = 1,
    Confidential = 2,
    Secret = 3,
    TopSecret = 4,
}

impl Classification {
    pub const ALL: [Classification; 5] = [
        Classification::Unclassified,
        Classification::Cui,
        Classification::Confidential,
        Classification::Secret,
        Classification::TopSecret,
    ];
    pub const fn code(self) -> u8 {
        self as u8
    }
    pub const fn from_code(c: u8) -> Option<Self> {
        match c {
            0 => Some(Self::Unclassified),
            1 => Some(Self::Cui),
            2 => Some(Self::Confidential),
            3 => Some(Self::Secret),
            4 => Some(Self::TopSecret),
            _ => None,
        }
    }
    pub const fn name(self) -> &'static str {
        match self {
            Self::Unclassified => "unclassified",
            Self::Cui => "cui",
            Self::Confidential => "confidential",
            Self::Secret => "secret",
            Self::TopSecret => "top_secret",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == s)
    }
}

/// Request priority: picks the ring a request waits in. `Critical` is served first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(u8)]
pub enum Priority {
    Critical = 0,
    High = 1,
    #[default]
    Medium = 2,
    Low = 3,
    Background = 4,
}

impl Priority {
    pub const COUNT: usize = 5;
    pub const ALL: [Priority; 5] = [
        Priority::Critical,
        Priority::High,
        Priority::Medium,
        Priority::Low,
        Priority::Background,
    ];
    pub const fn index(self) -> usize {
        self as usize
    }
    pub const fn from_code(c: u8) -> Option<Self> {
        match c {
            0 => Some(Self::Critical),
            1 => Some(Self::High),
            2 => Some(Self::Medium),
            3 => Some(Self::Low),
            4 => Some(Self::Background),
            _ => None,
        }
    }
    pub const fn name(self) -> &'static str {
        match self {
            Self::Critical => "critical",
            Self::High => "high",
            Self::Medium => "medium",
            Self::Low => "low",
            Self::Background => "background",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == s)
    }
    /// `Low` and `Background` are shed first: they never use the overflow injector and never
    /// take the reserved share of reply slots.
    pub const fn sheddable(self) -> bool {
        matches!(self, Self::Low | Self::Background)
    }
}

/// What a tool may touch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(u8)]
pub enum SecurityLevel {
    Safe = 0,
    #[default]
    Restricted = 1,
    Privileged = 2,
}

/// Crypto sub-operations. Encrypt, decrypt and sign are never cached (a cached ciphertext would
/// repeat a nonce); verify results are cached like any other verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum CryptoOp {
    Encrypt = 0,
    Decrypt = 1,
    Sign = 2,
    Verify = 3,
}

/// What is validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    ValidateAgent,
    AuthorizeTool,
    ScanContent,
    /// Every registered stage, in order.
    Check,
    Crypto(CryptoOp),
    Audit,
    /// A custom validator registered with [`crate::EngineBuilder::custom`].
    Custom(u16),
}

impl Operation {
    /// (kind, argument) as carried in the wire header.
    pub const fn code(self) -> (u8, u16) {
        match self {
            Self::ValidateAgent => (0, 0),
            Self::AuthorizeTool => (1, 0),
            Self::ScanContent => (2, 0),
            Self::Check => (3, 0),
            Self::Crypto(c) => (4, c as u16),
            Self::Audit => (5, 0),
            Self::Custom(id) => (6, id),
        }
    }
    pub const fn from_code(kind: u8, arg: u16) -> Option<Self> {
        Some(match (kind, arg) {
            (0, 0) => Self::ValidateAgent,
            (1, 0) => Self::AuthorizeTool,
            (2, 0) => Self::ScanContent,
            (3, 0) => Self::Check,
            (4, 0) => Self::Crypto(CryptoOp::Encrypt),
            (4, 1) => Self::Crypto(CryptoOp::Decrypt),
            (4, 2) => Self::Crypto(CryptoOp::Sign),
            (4, 3) => Self::Crypto(CryptoOp::Verify),
            (5, 0) => Self::Audit,
            (6, id) => Self::Custom(id),
            _ => return None,
        })
    }
    /// Whether the operation scans a request's content (`check`, `scan_content`), and so takes
    /// a `ContentOrigin`.
    pub const fn scans_content(self) -> bool {
        matches!(self, Self::Check | Self::ScanContent)
    }
    /// (kind, argument) with the content's origin, as the wire form and audit records carry
    /// them: for an operation that scans content the argument is the origin. None for a data or
    /// user origin on an operation that scans nothing (it has no place to go).
    pub const fn code_with(self, origin: ContentOrigin) -> Option<(u8, u16)> {
        let (kind, arg) = self.code();
        match (self.scans_content(), origin) {
            (true, o) => Some((kind, o.code())),
            (false, ContentOrigin::Prompt) => Some((kind, arg)),
            (false, ContentOrigin::Data | ContentOrigin::User) => None,
        }
    }
    /// The inverse of `code_with`: None for an unknown kind or argument (an origin other than
    /// 0, 1 or 2 for an operation that scans content).
    pub const fn from_code_with(kind: u8, arg: u16) -> Option<(Self, ContentOrigin)> {
        match Self::from_code(kind, 0) {
            Some(op) if op.scans_content() => match ContentOrigin::from_code(arg) {
                Some(o) => Some((op, o)),
                None => None,
            },
            _ => match Self::from_code(kind, arg) {
                Some(op) => Some((op, ContentOrigin::Prompt)),
                None => None,
            },
        }
    }
    /// Parses `check`, `validate_agent`, `crypto_verify`, `custom:7`, ...
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "validate_agent" => Self::ValidateAgent,
            "authorize_tool" => Self::AuthorizeTool,
            "scan_content" => Self::ScanContent,
            "check" => Self::Check,
            "crypto_encrypt" => Self::Crypto(CryptoOp::Encrypt),
            "crypto_decrypt" => Self::Crypto(CryptoOp::Decrypt),
            "crypto_sign" => Self::Crypto(CryptoOp::Sign),
            "crypto_verify" => Self::Crypto(CryptoOp::Verify),
            "audit" => Self::Audit,
            _ => {
                // digits only: `custom:+7` and `custom:07` are not spellings of `custom:7`
                let id = s.strip_prefix("custom:")?;
                let canonical =
                    id.bytes().all(|b| b.is_ascii_digit()) && (id == "0" || !id.starts_with('0'));
                if !canonical {
                    return None;
                }
                Self::Custom(id.parse().ok()?)
            }
        })
    }
}

/// Where the content of a `check` or `scan_content` request comes from, which the threat scan
/// weighs: text written to the agent (`Prompt`, the default: a message, the agent's own tool
/// input), text the agent read (`Data`: a tool's result, a fetched page, a retrieved document, a
/// mail), or a person's message in a chat (`User`). In data, words addressed to the model that
/// reads them (an order to it or to its reply, a claim to have set its task) are out of place,
/// and the catalogue's `data_weight` weighs them more. In a person's message, commands, paths
/// and code quoted in prose are mentions (a question about `/etc/hosts` runs nothing): technical
/// evidence there counts at most Medium, and the tool call that may follow is checked as
/// `Prompt`, in full. The wire form carries it in the operation argument of kinds 2 and 3.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum ContentOrigin {
    #[default]
    Prompt = 0,
    Data = 1,
    User = 2,
}

impl ContentOrigin {
    pub const ALL: [ContentOrigin; 3] = [
        ContentOrigin::Prompt,
        ContentOrigin::Data,
        ContentOrigin::User,
    ];
    pub const fn code(self) -> u16 {
        self as u16
    }
    pub const fn from_code(c: u16) -> Option<Self> {
        match c {
            0 => Some(Self::Prompt),
            1 => Some(Self::Data),
            2 => Some(Self::User),
            _ => None,
        }
    }
    pub const fn name(self) -> &'static str {
        match self {
            Self::Prompt => "prompt",
            Self::Data => "data",
            Self::User => "user",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == s)
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ValidateAgent => f.write_str("validate_agent"),
            Self::AuthorizeTool => f.write_str("authorize_tool"),
            Self::ScanContent => f.write_str("scan_content"),
            Self::Check => f.write_str("check"),
            Self::Crypto(CryptoOp::Encrypt) => f.write_str("crypto_encrypt"),
            Self::Crypto(CryptoOp::Decrypt) => f.write_str("crypto_decrypt"),
            Self::Crypto(CryptoOp::Sign) => f.write_str("crypto_sign"),
            Self::Crypto(CryptoOp::Verify) => f.write_str("crypto_verify"),
            Self::Audit => f.write_str("audit"),
            Self::Custom(id) => write!(f, "custom:{id}"),
        }
    }
}

/// A request field, named in deny reasons about malformed input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Field {
    Tenant = 0,
    Agent = 1,
    Credential = 2,
    Tool = 3,
    Action = 4,
    Resource = 5,
    Content = 6,
    Operation = 7,
    Classification = 8,
    Priority = 9,
    Timestamp = 10,
    Nonce = 11,
    Header = 12,
}

impl Field {
    pub const fn name(self) -> &'static str {
        match self {
            Self::Tenant => "tenant",
            Self::Agent => "agent",
            Self::Credential => "credential",
            Self::Tool => "tool",
            Self::Action => "action",
            Self::Resource => "resource",
            Self::Content => "content",
            Self::Operation => "operation",
            Self::Classification => "classification",
            Self::Priority => "priority",
            Self::Timestamp => "timestamp",
            Self::Nonce => "nonce",
            Self::Header => "header",
        }
    }
    pub const fn from_code(c: u8) -> Option<Self> {
        Some(match c {
            0 => Self::Tenant,
            1 => Self::Agent,
            2 => Self::Credential,
            3 => Self::Tool,
            4 => Self::Action,
            5 => Self::Resource,
            6 => Self::Content,
            7 => Self::Operation,
            8 => Self::Classification,
            9 => Self::Priority,
            10 => Self::Timestamp,
            11 => Self::Nonce,
            12 => Self::Header,
            _ => return None,
        })
    }
}

/// Why a request was denied. Each variant has a stable numeric code and a stable snake_case
/// name (used in JSON and metrics), and explains itself through `Display`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum DenyReason {
    /// Not a denial: the verdict allows.
    #[default]
    None,
    /// A required field is empty.
    MissingField(Field),
    /// A field is longer than the configured limit.
    FieldTooLarge(Field),
    /// A field is not well formed (bad UTF-8, bad enum code, inconsistent lengths).
    Malformed(Field),
    /// Content exceeds `limits.max_content_bytes`.
    ContentTooLarge,
    /// Every ring and overflow queue that could take the request was full, or no reply slot was
    /// free; the request was shed without being evaluated.
    Overloaded,
    /// A stage failed (it panicked, or returned an internal error). Counted in metrics.
    Internal,
    /// No registered stage handles the operation, so nothing could allow it.
    NoStage,
    /// The engine is shutting down and takes no new work.
    ShuttingDown,
    /// No verdict arrived within `engine.request_timeout_us`.
    Timeout,
    /// A custom validator denied; the value is the validator's own code.
    Custom(u16),
    /// The resource failed the input checks (traversal, SSRF, ...).
    Input(InputIssue),
    /// The tenant is not in the policy.
    UnknownTenant,
    /// The agent is not registered in the request's tenant.
    UnknownAgent,
    /// The tool is not in the policy.
    UnknownTool,
    /// The agent's role does not grant the tool.
    NotGranted,
    /// The tool's security level is above the agent's maximum.
    LevelTooHigh,
    /// Bell-LaPadula: the data is classified above the agent's clearance (no read up).
    ReadUp,
    /// Bell-LaPadula: the agent holds data classified above the sink it writes to (no write down).
    WriteDown,
    /// The resource belongs to another tenant that has not shared it.
    TenantIsolation,
    /// The resource matches none of the tool's patterns for this tenant.
    ResourceNotAllowed,
    /// The agent or its tenant exceeded its rate; the value is the retry-after in milliseconds.
    RateLimited(u16),
    /// The credential token, the request's timestamp or nonce failed identity checks.
    Identity(TokenIssue),
    /// The threat scan scored the content at or above `threat.deny_at`; the value is the level.
    ThreatDetected(ThreatLevel),
    /// The agent is quarantined after a behaviour anomaly, until its cool-down ends or an
    /// operator releases it.
    Quarantined,
    /// The audit queue is full: a request whose verdict must be audited was refused rather than
    /// answered without its record (backpressure, counted in metrics).
    AuditBackpressure,
    /// The audit record could not be written (disk full, read-only directory, I/O error).
    AuditUnavailable,
    /// The request needs the HSM (a token tag by its key, or a crypto operation) and the HSM
    /// is down: its circuit breaker is open, or it did not answer in time.
    HsmUnavailable,
    /// A crypto operation on data at or above `hsm.require_hsm_at` while only the software
    /// keystore is configured.
    HsmRequired,
    /// A shared-memory client asked for a tenant its uid may not use (`serve.tenants`).
    TenantNotPermitted,
    /// The agent's trust score is below the `min_trust` its tool or the tool's level needs; the
    /// value is the score in hundredths.
    LowTrust(u16),
    /// The threat scan rated the content at or above the policy's `trust.low_deny_at`, which
    /// applies while the agent's trust is below `trust.low`; the value is the level.
    ThreatAtLowTrust(ThreatLevel),
    /// This node's view of the fleet's state (revocations, quarantines, policy) is older than
    /// `fleet.stale_after_ms` and `fleet.when_stale` is `deny`.
    FleetStale,
}

impl DenyReason {
    /// Stable numeric code (the wire format's reason code; the field code rides separately).
    pub const fn code(self) -> u16 {
        match self {
            Self::None => 0,
            Self::MissingField(_) => 1,
            Self::FieldTooLarge(_) => 2,
            Self::Malformed(_) => 3,
            Self::ContentTooLarge => 4,
            Self::Overloaded => 5,
            Self::Internal => 6,
            Self::NoStage => 7,
            Self::ShuttingDown => 8,
            Self::Timeout => 9,
            Self::Custom(_) => 10,
            Self::Input(_) => 11,
            Self::UnknownTenant => 12,
            Self::UnknownAgent => 13,
            Self::UnknownTool => 14,
            Self::NotGranted => 15,
            Self::LevelTooHigh => 16,
            Self::ReadUp => 17,
            Self::WriteDown => 18,
            Self::TenantIsolation => 19,
            Self::ResourceNotAllowed => 20,
            Self::RateLimited(_) => 21,
            Self::Identity(_) => 22,
            Self::ThreatDetected(_) => 23,
            Self::Quarantined => 24,
            Self::AuditBackpressure => 25,
            Self::AuditUnavailable => 26,
            Self::HsmUnavailable => 27,
            Self::HsmRequired => 28,
            Self::TenantNotPermitted => 29,
            Self::LowTrust(_) => 30,
            Self::ThreatAtLowTrust(_) => 31,
            Self::FleetStale => 32,
        }
    }
    /// The argument carried with the code: a field code or a custom code.
    pub const fn arg(self) -> u16 {
        match self {
            Self::MissingField(f) | Self::FieldTooLarge(f) | Self::Malformed(f) => f as u16,
            Self::Custom(c) => c,
            Self::Input(i) => i as u16,
            Self::RateLimited(ms) => ms,
            Self::Identity(i) => i as u16,
            Self::ThreatDetected(l) | Self::ThreatAtLowTrust(l) => l as u16,
            Self::LowTrust(pct) => pct,
            _ => 0,
        }
    }
    pub const fn from_code(code: u16, arg: u16) -> Option<Self> {
        let field = if arg <= u8::MAX as u16 {
            Field::from_code(arg as u8)
        } else {
            None
        };
        Some(match code {
            0 => Self::None,
            1 => Self::MissingField(match field {
                Some(f) => f,
                None => return None,
            }),
            2 => Self::FieldTooLarge(match field {
                Some(f) => f,
                None => return None,
            }),
            3 => Self::Malformed(match field {
                Some(f) => f,
                None => return None,
            }),
            4 => Self::ContentTooLarge,
            5 => Self::Overloaded,
            6 => Self::Internal,
            7 => Self::NoStage,
            8 => Self::ShuttingDown,
            9 => Self::Timeout,
            10 => Self::Custom(arg),
            11 => Self::Input(match InputIssue::from_code(arg as u8) {
                Some(i) if arg <= u8::MAX as u16 => i,
                _ => return None,
            }),
            12 => Self::UnknownTenant,
            13 => Self::UnknownAgent,
            14 => Self::UnknownTool,
            15 => Self::NotGranted,
            16 => Self::LevelTooHigh,
            17 => Self::ReadUp,
            18 => Self::WriteDown,
            19 => Self::TenantIsolation,
            20 => Self::ResourceNotAllowed,
            21 => Self::RateLimited(arg),
            22 => Self::Identity(match TokenIssue::from_code(arg as u8) {
                Some(i) if arg <= u8::MAX as u16 => i,
                _ => return None,
            }),
            23 => Self::ThreatDetected(match ThreatLevel::from_code(arg as u8) {
                Some(l) if arg <= u8::MAX as u16 => l,
                _ => return None,
            }),
            24 => Self::Quarantined,
            25 => Self::AuditBackpressure,
            26 => Self::AuditUnavailable,
            27 => Self::HsmUnavailable,
            28 => Self::HsmRequired,
            29 => Self::TenantNotPermitted,
            30 if arg <= 100 => Self::LowTrust(arg),
            31 => Self::ThreatAtLowTrust(match ThreatLevel::from_code(arg as u8) {
                Some(l) if arg <= u8::MAX as u16 => l,
                _ => return None,
            }),
            32 => Self::FleetStale,
            _ => return None,
        })
    }
    /// Every name `name` gives, for checking a name a person wrote (`warden policy test`).
    pub fn names() -> Vec<&'static str> {
        let mut v: Vec<&'static str> = (0..=u8::MAX as u16)
            .filter_map(|k| Self::from_code(k, 0).map(Self::name))
            .collect();
        v.extend((0..=u8::MAX).filter_map(|c| InputIssue::from_code(c).map(InputIssue::name)));
        v.extend((0..=u8::MAX).filter_map(|c| TokenIssue::from_code(c).map(TokenIssue::name)));
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Stable machine name, e.g. `missing_field`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::MissingField(_) => "missing_field",
            Self::FieldTooLarge(_) => "field_too_large",
            Self::Malformed(_) => "malformed",
            Self::ContentTooLarge => "content_too_large",
            Self::Overloaded => "overloaded",
            Self::Internal => "internal",
            Self::NoStage => "no_stage",
            Self::ShuttingDown => "shutting_down",
            Self::Timeout => "timeout",
            Self::Custom(_) => "custom",
            Self::Input(i) => i.name(),
            Self::UnknownTenant => "unknown_tenant",
            Self::UnknownAgent => "unknown_agent",
            Self::UnknownTool => "unknown_tool",
            Self::NotGranted => "not_granted",
            Self::LevelTooHigh => "level_too_high",
            Self::ReadUp => "read_up",
            Self::WriteDown => "write_down",
            Self::TenantIsolation => "tenant_isolation",
            Self::ResourceNotAllowed => "resource_not_allowed",
            Self::RateLimited(_) => "rate_limited",
            Self::Identity(i) => i.name(),
            Self::ThreatDetected(_) => "threat_detected",
            Self::Quarantined => "quarantined",
            Self::AuditBackpressure => "audit_backpressure",
            Self::AuditUnavailable => "audit_unavailable",
            Self::HsmUnavailable => "hsm_unavailable",
            Self::HsmRequired => "hsm_required",
            Self::TenantNotPermitted => "tenant_not_permitted",
            Self::LowTrust(_) => "low_trust",
            Self::ThreatAtLowTrust(_) => "threat_at_low_trust",
            Self::FleetStale => "fleet_stale",
        }
    }
    /// Transient reasons are about the engine's state, not the request: never cached.
    pub const fn is_transient(self) -> bool {
        matches!(
            self,
            Self::Overloaded
                | Self::Internal
                | Self::ShuttingDown
                | Self::Timeout
                | Self::RateLimited(_)
                | Self::Identity(TokenIssue::ReplayWindowFull)
                | Self::Quarantined
                | Self::AuditBackpressure
                | Self::AuditUnavailable
                | Self::HsmUnavailable
                | Self::LowTrust(_)
                | Self::FleetStale
        )
    }
}

impl fmt::Display for DenyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("allowed"),
            Self::MissingField(x) => write!(f, "request field `{}` is missing or empty", x.name()),
            Self::FieldTooLarge(x) => write!(
                f,
                "request field `{}` is longer than the configured limit (see [limits] in the config)",
                x.name()
            ),
            Self::Malformed(x @ (Field::Tool | Field::Resource)) => write!(
                f,
                "request field `{}` is malformed, or given to an operation that takes none (validate_agent, scan_content and crypto_* name no tool and no resource)",
                x.name()
            ),
            Self::Malformed(x) => write!(f, "request field `{}` is malformed", x.name()),
            Self::ContentTooLarge => {
                f.write_str("content is larger than limits.max_content_bytes")
            }
            Self::Overloaded => f.write_str(
                "warden is overloaded: the request was shed before evaluation; retry with backoff",
            ),
            Self::Internal => {
                f.write_str("a validation stage failed internally; denied (fail closed)")
            }
            Self::NoStage => f.write_str("no validation stage is registered for this operation"),
            Self::ShuttingDown => f.write_str("warden is shutting down"),
            Self::Timeout => f.write_str("no verdict within engine.request_timeout_us"),
            Self::Custom(c) => write!(f, "denied by a custom validator (code {c})"),
            Self::Input(i) => write!(f, "request field `resource`: {i}"),
            Self::UnknownTenant => f.write_str("request field `tenant`: no such tenant in the policy"),
            Self::UnknownAgent => f.write_str("request field `agent`: no such agent registered in this tenant"),
            Self::UnknownTool => f.write_str("request field `tool`: no such tool in the policy"),
            Self::NotGranted => f.write_str("the agent's role does not grant this tool"),
            Self::LevelTooHigh => f.write_str("the tool's security level is above the agent's maximum"),
            Self::ReadUp => f.write_str("no read up: the data is classified above the agent's clearance"),
            Self::WriteDown => f.write_str("no write down: the agent holds data classified above the sink it writes to"),
            Self::TenantIsolation => f.write_str("request field `resource`: it belongs to another tenant that has not shared it"),
            Self::ResourceNotAllowed => f.write_str("request field `resource`: it matches none of the tool's patterns for this tenant"),
            Self::RateLimited(ms) => write!(f, "rate limit exceeded; retry after {ms} ms"),
            Self::Identity(i) => f.write_str(i.explain()),
            Self::ThreatDetected(l) => write!(
                f,
                "request field `content`: the threat scan rated it {} (at or above threat.deny_at)",
                l.name()
            ),
            Self::Quarantined => f.write_str(
                "the agent is quarantined after a behaviour anomaly; it is released when the \
                 cool-down (anomaly.quarantine_ms) ends or by an operator",
            ),
            Self::AuditBackpressure => f.write_str(
                "the audit queue is full, and this verdict must be audited: retry with backoff \
                 (or raise audit.queue_capacity)",
            ),
            Self::AuditUnavailable => f.write_str(
                "the audit record could not be written (see warden's log: disk full, read-only \
                 directory or I/O error); denied rather than unaudited",
            ),
            Self::HsmUnavailable => f.write_str(
                "the HSM is unavailable (circuit breaker open, or no answer within \
                 hsm.timeout_us); requests that need it are denied until a probe reconnects",
            ),
            Self::HsmRequired => f.write_str(
                "data at this classification needs the HSM (hsm.require_hsm_at), and only the \
                 software keystore is configured (set hsm.module)",
            ),
            Self::TenantNotPermitted => f.write_str(
                "this client's uid may not ask for the request's tenant (serve.tenants in the \
                 server's config lists the tenants each uid may use)",
            ),
            Self::LowTrust(pct) => write!(
                f,
                "a trust score ({}.{:02}: the agent's, or that of an agent earlier in its \
                 delegation chain) is below the min_trust the tool or its level needs; it returns \
                 toward trust.baseline with time (trust.half_life_s)",
                pct / 100,
                pct % 100
            ),
            Self::ThreatAtLowTrust(l) => write!(
                f,
                "request field `content`: the threat scan rated it {}, denied because the agent's \
                 trust score is below the policy's trust.low, where trust.low_deny_at applies",
                l.name()
            ),
            Self::FleetStale => f.write_str(
                "this node has not been in step with the fleet's servers for fleet.stale_after_ms \
                 (revocations, quarantines or the policy may have changed elsewhere); it serves \
                 again once it reconnects and catches up (see the fleet_* metrics)",
            ),
        }
    }
}

/// Allow, deny, or allow with obligations the gateway must enforce.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum Decision {
    Allow = 0,
    #[default]
    Deny = 1,
    AllowWith = 2,
}

impl Decision {
    pub const fn name(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
            Self::AllowWith => "allow_with",
        }
    }
}

/// Threat level from the scan stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(u8)]
pub enum ThreatLevel {
    #[default]
    None = 0,
    Low = 1,
    Medium = 2,
    High = 3,
    Critical = 4,
}

impl ThreatLevel {
    pub const fn from_code(c: u8) -> Option<Self> {
        Some(match c {
            0 => Self::None,
            1 => Self::Low,
            2 => Self::Medium,
            3 => Self::High,
            4 => Self::Critical,
            _ => return None,
        })
    }
    pub const fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }
}

/// What the gateway must enforce on an allowed action. All zero means "nothing".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Obligations {
    /// Maximum memory the action may use, bytes (0 = no limit imposed).
    pub memory_bytes: u64,
    /// Maximum CPU time, milliseconds (0 = no limit imposed).
    pub cpu_time_ms: u32,
    /// Maximum file size the action may write, bytes (0 = no limit imposed).
    pub file_bytes: u64,
    /// Maximum number of operations (0 = no limit imposed).
    pub operations: u32,
    /// Bit set of content categories the gateway must redact before forwarding.
    pub redactions: u32,
    /// The gateway must record an audit entry for this action.
    pub audit_required: bool,
}

impl Obligations {
    pub const NONE: Obligations = Obligations {
        memory_bytes: 0,
        cpu_time_ms: 0,
        file_bytes: 0,
        operations: 0,
        redactions: 0,
        audit_required: false,
    };
    pub fn is_empty(&self) -> bool {
        *self == Self::NONE
    }
    /// Combines two sets of obligations, keeping the stricter of each limit.
    pub fn merge(&mut self, o: &Obligations) {
        fn min_nz<T: Ord + Copy + Default>(a: T, b: T) -> T {
            let z = T::default();
            if a == z {
                b
            } else if b == z {
                a
            } else {
                a.min(b)
            }
        }
        self.memory_bytes = min_nz(self.memory_bytes, o.memory_bytes);
        self.cpu_time_ms = min_nz(self.cpu_time_ms, o.cpu_time_ms);
        self.file_bytes = min_nz(self.file_bytes, o.file_bytes);
        self.operations = min_nz(self.operations, o.operations);
        self.redactions |= o.redactions;
        self.audit_required |= o.audit_required;
    }
}

/// The answer to one request. `Copy`, 64 bytes or so, written into a preallocated reply slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Verdict {
    pub decision: Decision,
    /// Why it was denied (`DenyReason::None` when allowed).
    pub reason: DenyReason,
    pub obligations: Obligations,
    /// Served from the cache shard.
    pub cache_hit: bool,
    pub threat_level: ThreatLevel,
    /// Bit set of threat categories that fired.
    pub indicators: u32,
    /// Effective classification of the action.
    pub classification: Classification,
    /// The rule that decided (0 = none), for `explain`.
    pub rule: u32,
    /// Nanoseconds from submission to verdict, measured on the core.
    pub latency_ns: u32,
    /// The core that answered (`u16::MAX` when answered before reaching a core).
    pub core: u16,
    /// The agent's trust score the request was judged at, in hundredths (0..=100);
    /// `trust::NO_TRUST` (255) when none was consulted (trust off, or decided before the
    /// policy).
    pub trust_pct: u8,
}

impl Verdict {
    /// A denial decided before the request reached a core.
    pub const fn deny(reason: DenyReason) -> Verdict {
        Verdict {
            decision: Decision::Deny,
            reason,
            obligations: Obligations::NONE,
            cache_hit: false,
            threat_level: ThreatLevel::None,
            indicators: 0,
            classification: Classification::Unclassified,
            rule: 0,
            latency_ns: 0,
            core: u16::MAX,
            trust_pct: crate::trust::NO_TRUST,
        }
    }
    pub fn is_allowed(&self) -> bool {
        self.decision != Decision::Deny
    }
    /// The decision-relevant bytes, covered by the cache entry's integrity tag. Excludes the
    /// per-delivery fields (cache_hit, latency, core).
    pub fn cache_bytes(&self) -> [u8; 40] {
        let mut b = [0u8; 40];
        b[0] = self.decision as u8;
        b[1..3].copy_from_slice(&self.reason.code().to_le_bytes());
        b[3..5].copy_from_slice(&self.reason.arg().to_le_bytes());
        b[5] = self.threat_level as u8;
        b[6] = self.classification as u8;
        b[7] = self.obligations.audit_required as u8;
        b[8..16].copy_from_slice(&self.obligations.memory_bytes.to_le_bytes());
        b[16..24].copy_from_slice(&self.obligations.file_bytes.to_le_bytes());
        b[24..28].copy_from_slice(&self.obligations.cpu_time_ms.to_le_bytes());
        b[28..32].copy_from_slice(&self.obligations.operations.to_le_bytes());
        b[32..36].copy_from_slice(&self.obligations.redactions.to_le_bytes());
        b[36..40].copy_from_slice(&(self.indicators ^ self.rule.rotate_left(16)).to_le_bytes());
        b
    }
}

/// A threat level as a config file writes it (`threat.deny_at`, `anomaly.threat_level`).
/// A threat level as written in the config.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LevelName {
    Low,
    Medium,
    High,
    Critical,
}

impl LevelName {
    pub fn level(self) -> crate::types::ThreatLevel {
        use crate::types::ThreatLevel as T;
        match self {
            Self::Low => T::Low,
            Self::Medium => T::Medium,
            Self::High => T::High,
            Self::Critical => T::Critical,
        }
    }
}

// ---- why a request field was refused: the input checks' and identity's reasons ----

/// Why a resource was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum InputIssue {
    /// `..` (or any dot-only segment) in any encoding.
    PathTraversal = 0,
    /// A NUL byte, raw or encoded.
    NulByte = 1,
    /// A backslash separator, a drive letter or a UNC prefix.
    ForeignSeparator = 2,
    /// A path component over 255 bytes.
    ComponentTooLong = 3,
    /// An overlong or invalid UTF-8 sequence, or still encoded after the last decoding pass.
    BadEncoding = 4,
    /// A URL scheme not on the allow-list.
    SchemeNotAllowed = 5,
    /// A URL whose host is loopback, private, link-local or otherwise internal.
    InternalAddress = 6,
    /// A URL that cannot be parsed, or that hides its host behind userinfo.
    MalformedUrl = 7,
    /// The resource is longer than the checks accept.
    TooLong = 8,
    /// A control character (newline, tab, DEL, ...), raw or encoded: header or command injection.
    ControlCharacter = 9,
    /// A well-known sensitive target: server configuration, credential or OS secret files.
    SensitiveTarget = 10,
}

impl InputIssue {
    pub const fn from_code(c: u8) -> Option<Self> {
        Some(match c {
            0 => Self::PathTraversal,
            1 => Self::NulByte,
            2 => Self::ForeignSeparator,
            3 => Self::ComponentTooLong,
            4 => Self::BadEncoding,
            5 => Self::SchemeNotAllowed,
            6 => Self::InternalAddress,
            7 => Self::MalformedUrl,
            8 => Self::TooLong,
            9 => Self::ControlCharacter,
            10 => Self::SensitiveTarget,
            _ => return None,
        })
    }
    pub const fn name(self) -> &'static str {
        match self {
            Self::PathTraversal => "path_traversal",
            Self::NulByte => "nul_byte",
            Self::ForeignSeparator => "foreign_separator",
            Self::ComponentTooLong => "component_too_long",
            Self::BadEncoding => "bad_encoding",
            Self::SchemeNotAllowed => "scheme_not_allowed",
            Self::InternalAddress => "internal_address",
            Self::MalformedUrl => "malformed_url",
            Self::TooLong => "too_long",
            Self::ControlCharacter => "control_character",
            Self::SensitiveTarget => "sensitive_target",
        }
    }
}

impl core::fmt::Display for InputIssue {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::PathTraversal => "the resource path climbs out of its directory (`..`, a dot-only segment, or one of only invisible characters or blanks, possibly encoded)",
            Self::NulByte => "the resource contains a NUL byte (possibly encoded)",
            Self::ForeignSeparator => "the resource uses a backslash, a drive letter or a UNC prefix; resources are POSIX paths",
            Self::ComponentTooLong => "a component of the resource path is longer than 255 bytes",
            Self::BadEncoding => "the resource uses an overlong or invalid encoding",
            Self::SchemeNotAllowed => "the URL scheme is not on the allow-list",
            Self::InternalAddress => "the URL points at a loopback, private, link-local or internal address (SSRF)",
            Self::MalformedUrl => "the URL is malformed or hides its host behind userinfo",
            Self::TooLong => "the resource is too long to check",
            Self::ControlCharacter => "the resource contains a control character (possibly encoded)",
            Self::SensitiveTarget => "the resource names a sensitive file (server configuration, credentials, OS secrets)",
        })
    }
}

/// Why a token was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum TokenIssue {
    Missing = 0,
    Malformed = 1,
    UnknownKey = 2,
    BadSignature = 3,
    Expired = 4,
    NotYetValid = 5,
    /// The token's tenant or agent is not the request's.
    WrongSubject = 6,
    /// The request's nonce was already seen in the replay window.
    Replayed = 7,
    Revoked = 8,
    /// The request's timestamp is outside the allowed clock skew.
    StaleRequest = 9,
    /// The replay window is full: fail closed until entries expire.
    ReplayWindowFull = 10,
    /// The token allows less than the request needs (clearance or level).
    Insufficient = 11,
    /// Internal: the tag must be verified by the HSM core. The core hands the request over and
    /// never answers with it; should it surface anyway, it is a denial (fail closed).
    NeedsHsm = 12,
    /// The request carries no nonce (0): with tokens required, every request needs one, or a
    /// captured request could be replayed.
    MissingNonce = 13,
    /// A delegation link grants more than the link before it (clearance, level, expiry, depth,
    /// tools or resources), or the chain is longer than its root allows.
    Widened = 14,
    /// The request's tool or resource is outside what a delegation link allows.
    OutsideDelegation = 15,
}

impl TokenIssue {
    pub const fn from_code(c: u8) -> Option<Self> {
        Some(match c {
            0 => Self::Missing,
            1 => Self::Malformed,
            2 => Self::UnknownKey,
            3 => Self::BadSignature,
            4 => Self::Expired,
            5 => Self::NotYetValid,
            6 => Self::WrongSubject,
            7 => Self::Replayed,
            8 => Self::Revoked,
            9 => Self::StaleRequest,
            10 => Self::ReplayWindowFull,
            11 => Self::Insufficient,
            12 => Self::NeedsHsm,
            13 => Self::MissingNonce,
            14 => Self::Widened,
            15 => Self::OutsideDelegation,
            _ => return None,
        })
    }
    pub const fn name(self) -> &'static str {
        match self {
            Self::Missing => "token_missing",
            Self::Malformed => "token_malformed",
            Self::UnknownKey => "token_unknown_key",
            Self::BadSignature => "token_bad_signature",
            Self::Expired => "token_expired",
            Self::NotYetValid => "token_not_yet_valid",
            Self::WrongSubject => "token_wrong_subject",
            Self::Replayed => "replayed",
            Self::Revoked => "revoked",
            Self::StaleRequest => "stale_request",
            Self::ReplayWindowFull => "replay_window_full",
            Self::Insufficient => "token_insufficient",
            Self::NeedsHsm => "token_needs_hsm",
            Self::MissingNonce => "nonce_missing",
            Self::Widened => "delegation_widened",
            Self::OutsideDelegation => "delegation_exceeded",
        }
    }
    pub const fn explain(self) -> &'static str {
        match self {
            Self::Missing => "request field `credential`: a wdn1 token is required",
            Self::Malformed => "request field `credential`: not a well-formed wdn1 token",
            Self::UnknownKey => "request field `credential`: signed by a key warden does not know",
            Self::BadSignature => "request field `credential`: the signature does not verify",
            Self::Expired => "request field `credential`: the token has expired",
            Self::NotYetValid => "request field `credential`: the token is issued in the future",
            Self::WrongSubject => {
                "request field `credential`: the token names another tenant or agent"
            }
            Self::Replayed => "request field `nonce`: already used within the replay window",
            Self::Revoked => "the agent or token has been revoked",
            Self::StaleRequest => {
                "request field `timestamp_ms`: not within identity.max_clock_skew_ms of warden's clock (milliseconds since the Unix epoch)"
            }
            Self::ReplayWindowFull => "the replay window is full; retry shortly",
            Self::Insufficient => "the token's clearance or level is below what the request needs",
            Self::NeedsHsm => "request field `credential`: its tag must be verified by the HSM",
            Self::MissingNonce => {
                "request field `nonce`: a request with a token needs a fresh nonce (not 0)"
            }
            Self::Widened => {
                "request field `credential`: a delegation link grants more than the one before it"
            }
            Self::OutsideDelegation => {
                "request fields `tool`/`resource`: outside what the credential's chain allows (a link's tools or resource prefix, or what an agent earlier in the chain may do itself)"
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for c in Classification::ALL {
            assert_eq!(Classification::from_code(c.code()), Some(c));
            assert_eq!(Classification::parse(c.name()), Some(c));
        }
        for p in Priority::ALL {
            assert_eq!(Priority::from_code(p as u8), Some(p));
            assert_eq!(Priority::parse(p.name()), Some(p));
        }
        for op in [
            Operation::ValidateAgent,
            Operation::AuthorizeTool,
            Operation::ScanContent,
            Operation::Check,
            Operation::Crypto(CryptoOp::Encrypt),
            Operation::Crypto(CryptoOp::Verify),
            Operation::Audit,
            Operation::Custom(65535),
        ] {
            let (k, a) = op.code();
            assert_eq!(Operation::from_code(k, a), Some(op));
            assert_eq!(Operation::parse(&op.to_string()), Some(op));
        }
        for r in [
            DenyReason::None,
            DenyReason::MissingField(Field::Agent),
            DenyReason::FieldTooLarge(Field::Content),
            DenyReason::Malformed(Field::Header),
            DenyReason::Overloaded,
            DenyReason::Custom(77),
            DenyReason::Input(InputIssue::InternalAddress),
            DenyReason::WriteDown,
            DenyReason::RateLimited(1500),
            DenyReason::Identity(TokenIssue::Replayed),
            DenyReason::ThreatDetected(ThreatLevel::Critical),
            DenyReason::Quarantined,
            DenyReason::AuditBackpressure,
            DenyReason::AuditUnavailable,
            DenyReason::HsmUnavailable,
            DenyReason::HsmRequired,
            DenyReason::TenantNotPermitted,
        ] {
            assert_eq!(DenyReason::from_code(r.code(), r.arg()), Some(r));
        }
        assert_eq!(DenyReason::from_code(1, 999), None);
        assert_eq!(Operation::from_code(3, 1), None);
    }

    #[test]
    fn obligations_merge_keeps_stricter() {
        let mut a = Obligations {
            memory_bytes: 100,
            cpu_time_ms: 0,
            ..Obligations::NONE
        };
        a.merge(&Obligations {
            memory_bytes: 50,
            cpu_time_ms: 7,
            audit_required: true,
            ..Obligations::NONE
        });
        assert_eq!(a.memory_bytes, 50);
        assert_eq!(a.cpu_time_ms, 7);
        assert!(a.audit_required);
    }
}
