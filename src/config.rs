//! `Config`: one TOML file, every field defaulted (documented in `examples/warden.toml`).
//!
//! Invariant: a config that loads is valid; every rejection is a `ConfigError` that names the
//! file, the line and the dotted field, and says what to do. Loading happens once, at start or on
//! reload, never on the hot path.

use crate::cache::{Eviction, ShardConfig, TtlTable};
use crate::request::Limits;
use crate::types::{Classification, Priority};
use serde::Deserialize;
use std::path::Path;

/// A configuration error a person can act on: file, line, field, what to do.
pub type ConfigError = crate::source::SourceError;

/// What an internal failure yields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailMode {
    /// A stage failure denies (`Internal`). The only safe choice for production.
    #[default]
    Closed,
    /// A stage failure allows with the `audit_required` obligation. Overload, timeouts and
    /// malformed requests still deny. For staged roll-outs only.
    Open,
}

/// How the core executors run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Executor {
    /// A pinned glommio `LocalExecutor` per core (io_uring).
    #[default]
    Glommio,
    /// A plain pinned thread per core: for kernels where io_uring is unavailable.
    Threads,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// Number of cores; 0 means every CPU this process may run on.
    pub cores: usize,
    /// Explicit CPU ids to pin cores to (empty: the first `cores` CPUs of the affinity mask).
    pub cpus: Vec<usize>,
    /// Pin each core's thread to its CPU.
    pub pin: bool,
    pub executor: Executor,
    /// How long an idle core spins before it sleeps (latency vs idle CPU).
    pub spin_before_park_us: u64,
    /// How long a blocking `validate` spins for its verdict before it sleeps.
    pub wait_spin_us: u64,
    /// A caller waiting longer than this gets `Deny(Timeout)`.
    pub request_timeout_us: u64,
    pub fail_mode: FailMode,
    /// Preallocated reply slots shared by all submitters (each holds one encoded request).
    pub reply_slots: usize,
    /// Percentage of reply slots that `Low` and `Background` requests may not take, so that
    /// higher priorities still get slots when the engine is saturated.
    pub reserved_slots_pct: u8,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            cores: 0,
            cpus: Vec::new(),
            pin: true,
            executor: Executor::Glommio,
            spin_before_park_us: 100,
            wait_spin_us: 50,
            request_timeout_us: 1_000_000,
            fail_mode: FailMode::Closed,
            reply_slots: 4096,
            reserved_slots_pct: 25,
        }
    }
}

/// One value per priority.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerPriority {
    pub critical: u64,
    pub high: u64,
    pub medium: u64,
    pub low: u64,
    pub background: u64,
}

impl PerPriority {
    pub fn get(&self, p: Priority) -> u64 {
        match p {
            Priority::Critical => self.critical,
            Priority::High => self.high,
            Priority::Medium => self.medium,
            Priority::Low => self.low,
            Priority::Background => self.background,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RingsConfig {
    /// Ring capacity per priority, per core (rounded up to a power of two).
    #[serde(deserialize_with = "partial_capacity")]
    pub capacity: PerPriority,
    /// Aging: a request that has waited this long (µs) is served before any fresher request,
    /// whatever its priority, so nothing starves.
    #[serde(deserialize_with = "partial_aging")]
    pub aging_deadline_us: PerPriority,
    /// Capacity of each overflow injector (`critical`, `high`, `medium`; `low` and `background`
    /// never overflow: they are shed first).
    pub overflow_capacity: usize,
}

impl Default for RingsConfig {
    fn default() -> Self {
        RingsConfig {
            capacity: PerPriority {
                critical: 1024,
                high: 1024,
                medium: 1024,
                low: 512,
                background: 256,
            },
            aging_deadline_us: PerPriority {
                critical: 500,
                high: 2_000,
                medium: 10_000,
                low: 50_000,
                background: 200_000,
            },
            overflow_capacity: 4096,
        }
    }
}

/// Deserializers of tables whose every key is optional (`capacity = { critical = 2048 }`), the
/// keys left out taking the defaults of the table's default value.
macro_rules! partial_tables {
    ($ty:ident $fields:tt: $($name:ident = $default:expr;)*) => {
        $(partial_table!($name, $ty $fields, $default);)*
    };
}

macro_rules! partial_table {
    ($name:ident, $ty:ident { $($f:ident),* }, $default:expr) => {
        fn $name<'de, D: serde::Deserializer<'de>>(d: D) -> Result<$ty, D::Error> {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Partial {
                $($f: Option<u64>,)*
            }
            let p = Partial::deserialize(d)?;
            let def: $ty = $default;
            Ok($ty { $($f: p.$f.unwrap_or(def.$f),)* })
        }
    };
}

partial_tables!(PerPriority { critical, high, medium, low, background }:
    partial_capacity = RingsConfig::default().capacity;
    partial_aging = RingsConfig::default().aging_deadline_us;
);
partial_tables!(TtlByClass { unclassified, cui, confidential, secret, top_secret }:
    partial_ttl_validate_agent = TtlConfig::default().validate_agent;
    partial_ttl_authorize_tool = TtlConfig::default().authorize_tool;
    partial_ttl_scan_content = TtlConfig::default().scan_content;
    partial_ttl_check = TtlConfig::default().check;
    partial_ttl_crypto_verify = TtlConfig::default().crypto_verify;
    partial_ttl_custom_base = TtlConfig::default().custom_base;
);

/// TTLs in milliseconds per classification; 0 = never cached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TtlByClass {
    pub unclassified: u64,
    pub cui: u64,
    pub confidential: u64,
    pub secret: u64,
    pub top_secret: u64,
}

impl TtlByClass {
    fn from_row(r: [u64; 5]) -> Self {
        TtlByClass {
            unclassified: r[0],
            cui: r[1],
            confidential: r[2],
            secret: r[3],
            top_secret: r[4],
        }
    }
    fn row(&self) -> [u64; 5] {
        [
            self.unclassified,
            self.cui,
            self.confidential,
            self.secret,
            self.top_secret,
        ]
    }
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TtlConfig {
    #[serde(deserialize_with = "partial_ttl_validate_agent")]
    pub validate_agent: TtlByClass,
    #[serde(deserialize_with = "partial_ttl_authorize_tool")]
    pub authorize_tool: TtlByClass,
    #[serde(deserialize_with = "partial_ttl_scan_content")]
    pub scan_content: TtlByClass,
    #[serde(deserialize_with = "partial_ttl_check")]
    pub check: TtlByClass,
    #[serde(deserialize_with = "partial_ttl_crypto_verify")]
    pub crypto_verify: TtlByClass,
    /// Base TTL of custom operations; it doubles every `adaptive_hits_per_step` hits.
    #[serde(deserialize_with = "partial_ttl_custom_base")]
    pub custom_base: TtlByClass,
    pub adaptive_max_ms: u64,
    pub adaptive_hits_per_step: u32,
}

impl Default for TtlConfig {
    fn default() -> Self {
        let t = TtlTable::default();
        TtlConfig {
            validate_agent: TtlByClass::from_row(t.ms[0]),
            authorize_tool: TtlByClass::from_row(t.ms[1]),
            scan_content: TtlByClass::from_row(t.ms[2]),
            check: TtlByClass::from_row(t.ms[3]),
            crypto_verify: TtlByClass::from_row(t.ms[4]),
            custom_base: TtlByClass::from_row(t.ms[5]),
            adaptive_max_ms: t.adaptive_max_ms,
            adaptive_hits_per_step: t.adaptive_hits_per_step,
        }
    }
}

impl TtlConfig {
    pub fn table(&self) -> TtlTable {
        TtlTable {
            ms: [
                self.validate_agent.row(),
                self.authorize_tool.row(),
                self.scan_content.row(),
                self.check.row(),
                self.crypto_verify.row(),
                self.custom_base.row(),
            ],
            adaptive_max_ms: self.adaptive_max_ms,
            adaptive_hits_per_step: self.adaptive_hits_per_step,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvictionName {
    #[default]
    S3fifo,
    Lru,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// Entries per core (0 disables caching).
    pub capacity_per_core: usize,
    pub eviction: EvictionName,
    /// Check each hit's keyed blake3 tag; a mismatch is a miss, counted.
    pub verify_integrity: bool,
    pub ttl_ms: TtlConfig,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            capacity_per_core: 65_536,
            eviction: EvictionName::S3fifo,
            verify_integrity: true,
            ttl_ms: TtlConfig::default(),
        }
    }
}

impl CacheConfig {
    pub fn shard(&self) -> ShardConfig {
        ShardConfig {
            capacity: self.capacity_per_core,
            eviction: match self.eviction {
                EvictionName::S3fifo => Eviction::S3Fifo,
                EvictionName::Lru => Eviction::Lru,
            },
            verify_integrity: self.verify_integrity,
            ttl: self.ttl_ms.table(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    pub max_id_bytes: usize,
    pub max_credential_bytes: usize,
    pub max_resource_bytes: usize,
    pub max_content_bytes: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        let l = Limits::default();
        LimitsConfig {
            max_id_bytes: l.max_id_bytes,
            max_credential_bytes: l.max_credential_bytes,
            max_resource_bytes: l.max_resource_bytes,
            max_content_bytes: l.max_content_bytes,
        }
    }
}

impl LimitsConfig {
    pub fn limits(&self) -> Limits {
        Limits {
            max_id_bytes: self.max_id_bytes,
            max_credential_bytes: self.max_credential_bytes,
            max_resource_bytes: self.max_resource_bytes,
            max_content_bytes: self.max_content_bytes,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InputsConfig {
    /// Run the built-in input checks (paths and URLs) on `check` and `authorize_tool`.
    pub enabled: bool,
    /// URL schemes a resource may use.
    pub allowed_schemes: Vec<String>,
}

impl Default for InputsConfig {
    fn default() -> Self {
        InputsConfig {
            enabled: true,
            allowed_schemes: vec!["https".into()],
        }
    }
}

/// A threat level as written in the config.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
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

/// What the threat scan does with content longer than `max_scan_bytes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Oversize {
    /// Deny with `content_too_large`.
    #[default]
    Deny,
    /// Scan the first `max_scan_bytes` and judge on that.
    ScanPrefix,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ThreatConfig {
    /// Scan the content of `check` and `scan_content` requests.
    pub enabled: bool,
    /// Deny at or above this level; below it, a request where something fired is allowed with
    /// obligations (audit required, the fired categories to redact).
    pub deny_at: LevelName,
    /// Longest content scanned, bytes.
    pub max_scan_bytes: usize,
    /// Longer content: `deny` or `scan_prefix`.
    pub oversize: Oversize,
    /// A pattern catalogue file replacing the built-in one (empty: built-in).
    pub catalogue: String,
    /// An n-gram model weights file (`tools/threat-model`); empty: patterns only.
    pub model: String,
}

impl Default for ThreatConfig {
    fn default() -> Self {
        ThreatConfig {
            enabled: true,
            deny_at: LevelName::High,
            max_scan_bytes: 65536,
            oversize: Oversize::Deny,
            catalogue: String::new(),
            model: String::new(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
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
    pub threat_level: LevelName,
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
            threat_level: LevelName::Medium,
            quarantine_ms: 60000,
            quarantine_capacity: 1024,
        }
    }
}

/// When an audit record is acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditMode {
    /// Once fdatasynced (every drained batch is synced).
    Always,
    /// Once its group is synced (group commit by count and time).
    #[default]
    Group,
    /// Buffered, acknowledged at once (development).
    Async,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// Directory of the log; empty: no audit log.
    pub dir: String,
    pub mode: AuditMode,
    /// Audit every request; otherwise only verdicts with `audit_required` and `audit` requests.
    pub every_request: bool,
    /// Events queued between the cores and the writer; full → `audit_backpressure`. Each
    /// queued event holds its fields inline (about 2.2 KiB), allocated at start.
    pub queue_capacity: usize,
    /// A segment is closed and the next one started past this size, bytes.
    pub segment_bytes: u64,
    /// Group commit: sync when this many records wait, or `group_us` after the first one.
    pub group_records: u64,
    pub group_us: u64,
    /// Async mode: write (and sync) at least this often, milliseconds.
    pub async_flush_ms: u64,
    /// A signed checkpoint every this many records or milliseconds, whichever first.
    pub checkpoint_records: u64,
    pub checkpoint_ms: u64,
    /// Ed25519 seed file of the checkpoint key; empty: `<dir>/signing.key`, created (0600) on
    /// first start with `<dir>/signing.pub` beside it; `"keystore"`: the signature key of
    /// `[hsm]` (on an HSM, it never leaves the token), its public key written to
    /// `<dir>/signing.pub`.
    pub signing_key: String,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            dir: String::new(),
            mode: AuditMode::Group,
            every_request: false,
            queue_capacity: 8192,
            segment_bytes: 64 << 20,
            group_records: 256,
            group_us: 2000,
            async_flush_ms: 100,
            checkpoint_records: 10000,
            checkpoint_ms: 1000,
            signing_key: String::new(),
        }
    }
}

/// Where a key comes from: a file (raw bytes or hex) or an environment variable (hex).
#[derive(Clone, Debug, PartialEq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeyRef {
    /// The key id tokens name.
    pub id: u16,
    pub file: String,
    pub env: String,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IdentityConfig {
    /// Every `check`, `validate_agent` and `authorize_tool` request must carry a valid wdn1
    /// token, a fresh timestamp and an unused nonce. Needs a policy.
    pub require_token: bool,
    /// Ed25519 public keys (32 bytes) that verify tokens.
    pub ed25519_public_keys: Vec<KeyRef>,
    /// HMAC-SHA256 secrets (at least 32 bytes) that verify tokens. Secret: keep the file 0600
    /// or use `env`; never put key material in this file.
    pub hmac_keys: Vec<KeyRef>,
    /// Tokens naming this key id are HMAC-tagged by the keystore's HMAC key (`[hsm]`): verified
    /// on the HSM core with a PKCS#11 module, in place with the software keystore. 0: none.
    pub keystore_hmac_key_id: u16,
    /// Tokens naming this key id are Ed25519-signed by the keystore's signature key, verified
    /// on the cores with its public key. 0: none.
    pub keystore_signing_key_id: u16,
    /// Allowed difference between a request's timestamp (and a token's times) and warden's clock.
    pub max_clock_skew_ms: u64,
    /// How long a used nonce is remembered; at least twice the skew.
    pub replay_window_ms: u64,
    /// Nonces remembered at once (a full window denies with replay_window_full, fail closed).
    pub replay_capacity: usize,
    /// Verified tokens remembered, so a repeat presentation skips the signature check.
    pub token_cache_capacity: usize,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        let s = crate::identity::Settings::default();
        IdentityConfig {
            require_token: false,
            ed25519_public_keys: Vec::new(),
            hmac_keys: Vec::new(),
            keystore_hmac_key_id: 0,
            keystore_signing_key_id: 0,
            max_clock_skew_ms: s.max_clock_skew_ms,
            replay_window_ms: s.replay_window_ms,
            replay_capacity: s.replay_capacity,
            token_cache_capacity: s.token_cache_capacity,
        }
    }
}

/// Keys: a PKCS#11 token served by the HSM core, or the software keystore.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HsmConfig {
    /// Path of the PKCS#11 module (e.g. /usr/lib/softhsm/libsofthsm2.so); empty: the software
    /// keystore.
    pub module: String,
    /// Label of the token to use.
    pub token_label: String,
    /// Slot id of the token to use; -1: find it by `token_label` (with both, they must agree).
    pub slot_id: i64,
    /// Environment variable holding the user PIN (read first).
    pub pin_env: String,
    /// File holding the user PIN (read when the variable is unset); keep it 0600.
    pub pin_file: String,
    /// Sessions the HSM core opens and uses in turn.
    pub sessions: usize,
    /// Jobs taken from the queue at once.
    pub batch_size: usize,
    /// Jobs waiting for the HSM core; full → the request is denied `overloaded`.
    pub queue_capacity: usize,
    /// An operation slower than this opens the breaker; a job that waited longer is refused.
    pub timeout_us: u64,
    /// First probe after the breaker opens; doubles up to `max_retry_ms`.
    pub retry_ms: u64,
    pub max_retry_ms: u64,
    /// The HSM core spins this long for work before it blocks.
    pub spin_us: u64,
    /// Pin the HSM core to a CPU the cores do not use, when there is one.
    pub pin: bool,
    /// Labels of the keys (`warden hsm init` creates them).
    pub hmac_key_label: String,
    pub data_key_label: String,
    pub signing_key_label: String,
    /// Data classified at or above this needs the HSM: the software keystore refuses it
    /// ("unclassified" ... "top_secret", or "never").
    pub require_hsm_at: String,
    /// Software keystore file (created 0600 on first start); empty: keys made in memory at
    /// start, lost at exit.
    pub keystore_file: String,
    /// When a probe finds the token gone, finalize and initialize the module again so a token
    /// that came back is seen (closes every session of this process on the module).
    pub reinitialize_on_missing_token: bool,
}

impl Default for HsmConfig {
    fn default() -> Self {
        HsmConfig {
            module: String::new(),
            token_label: "warden".into(),
            slot_id: -1,
            pin_env: "WARDEN_HSM_PIN".into(),
            pin_file: String::new(),
            sessions: 2,
            batch_size: 32,
            queue_capacity: 4096,
            timeout_us: 100_000,
            retry_ms: 250,
            max_retry_ms: 30_000,
            spin_us: 200,
            pin: true,
            hmac_key_label: "warden-token-hmac".into(),
            data_key_label: "warden-data".into(),
            signing_key_label: "warden-signing".into(),
            require_hsm_at: "secret".into(),
            keystore_file: String::new(),
            reinitialize_on_missing_token: true,
        }
    }
}

impl HsmConfig {
    /// The classification from which the HSM is required (`None`: never).
    pub fn require_hsm_at(&self) -> Option<Classification> {
        Classification::parse(&self.require_hsm_at)
    }
    pub fn labels(&self) -> crate::hsm::Labels {
        crate::hsm::Labels {
            hmac: self.hmac_key_label.clone(),
            data: self.data_key_label.clone(),
            signing: self.signing_key_label.clone(),
        }
    }
    pub fn pkcs11(&self) -> crate::hsm::pkcs11::Pkcs11Settings {
        crate::hsm::pkcs11::Pkcs11Settings {
            module: self.module.clone(),
            token_label: self.token_label.clone(),
            slot_id: u64::try_from(self.slot_id).ok(),
            pin_env: self.pin_env.clone(),
            pin_file: self.pin_file.clone(),
            sessions: self.sessions,
            labels: self.labels(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    /// Policy file (see `examples/policy.toml`); empty: no policy stage, so identity,
    /// authorization and rate limits are not checked.
    pub file: String,
}

/// The whole configuration. `Config::default()` is the embedded default.
#[derive(Clone, Debug, PartialEq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub engine: EngineConfig,
    pub rings: RingsConfig,
    pub cache: CacheConfig,
    pub limits: LimitsConfig,
    pub inputs: InputsConfig,
    pub policy: PolicyConfig,
    pub identity: IdentityConfig,
    pub threat: ThreatConfig,
    pub anomaly: AnomalyConfig,
    pub audit: AuditConfig,
    pub hsm: HsmConfig,
}

impl Config {
    /// Reads and validates a TOML file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let name = path.display().to_string();
        let src = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: name.clone(),
            line: None,
            field: "-".into(),
            message: format!("cannot read the config file: {e}"),
        })?;
        Self::from_toml(&src, &name)
    }

    /// Parses and validates TOML text; `file` names it in errors.
    pub fn from_toml(src: &str, file: &str) -> Result<Config, ConfigError> {
        // The path to the value at fault (`rings.capacity.critical`), not only its own key.
        let cfg: Config =
            serde_path_to_error::deserialize(toml::Deserializer::new(src)).map_err(|e| {
                let path = e.path().to_string();
                let mut se = crate::source::from_toml_error(e.inner(), src, file);
                if !path.is_empty() && path != "." && path != "?" {
                    se.field = path;
                }
                se
            })?;
        cfg.validate().map_err(|(field, message)| ConfigError {
            file: file.into(),
            line: crate::source::line_of_dotted(src, &field),
            field,
            message,
        })?;
        Ok(cfg)
    }

    /// Semantic checks; returns (dotted field, what to do).
    pub fn validate(&self) -> Result<(), (String, String)> {
        let e = |f: &str, m: String| Err((f.to_string(), m));
        let avail = available_cpus().len();
        if self.engine.cores > 1024 {
            return e(
                "engine.cores",
                format!(
                    "{} cores is more than warden supports (1024); use 0 for every CPU",
                    self.engine.cores
                ),
            );
        }
        if !self.engine.cpus.is_empty()
            && self.engine.cores != 0
            && self.engine.cpus.len() != self.engine.cores
        {
            return e(
                "engine.cpus",
                format!(
                    "lists {} CPUs but engine.cores is {}; give one CPU per core or set cores = 0",
                    self.engine.cpus.len(),
                    self.engine.cores
                ),
            );
        }
        if self.engine.cpus.len() > 1024 {
            return e(
                "engine.cpus",
                format!(
                    "lists {} CPUs; warden runs at most 1024 cores",
                    self.engine.cpus.len()
                ),
            );
        }
        if self.engine.pin {
            let allowed = available_cpus();
            for (i, c) in self.engine.cpus.iter().enumerate() {
                if !allowed.contains(c) {
                    return e(
                        "engine.cpus",
                        format!(
                            "entry {i} is CPU {c}, which this process may not run on (it may use CPUs {allowed:?}); list those, or set pin = false"
                        ),
                    );
                }
            }
        }
        if self.engine.cores > avail && self.engine.pin && self.engine.cpus.is_empty() {
            return e("engine.cores", format!("{} cores requested but this process may run on {avail} CPUs; lower it, set pin = false, or use 0", self.engine.cores));
        }
        if self.engine.reply_slots < 2 || self.engine.reply_slots > crate::stack::MAX_INDICES {
            return e(
                "engine.reply_slots",
                format!("must be between 2 and {}", crate::stack::MAX_INDICES),
            );
        }
        if self.engine.reserved_slots_pct > 90 {
            return e(
                "engine.reserved_slots_pct",
                "must be at most 90 (percent)".into(),
            );
        }
        if self.engine.request_timeout_us == 0 {
            return e(
                "engine.request_timeout_us",
                "must be positive (microseconds)".into(),
            );
        }
        for p in Priority::ALL {
            let c = self.rings.capacity.get(p);
            if c == 0 || c > 1 << 20 {
                return e(
                    &format!("rings.capacity.{}", p.name()),
                    "must be between 1 and 1048576".into(),
                );
            }
            if self.rings.aging_deadline_us.get(p) == 0 {
                return e(
                    &format!("rings.aging_deadline_us.{}", p.name()),
                    "must be positive (microseconds)".into(),
                );
            }
        }
        if self.rings.overflow_capacity == 0 || self.rings.overflow_capacity > 1 << 20 {
            return e(
                "rings.overflow_capacity",
                "must be between 1 and 1048576".into(),
            );
        }
        if self.cache.capacity_per_core > 1 << 26 {
            return e(
                "cache.capacity_per_core",
                "must be at most 67108864 entries".into(),
            );
        }
        for (i, sch) in self.inputs.allowed_schemes.iter().enumerate() {
            let ok = sch.starts_with(|c: char| c.is_ascii_alphabetic())
                && sch
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
            if !ok {
                return e(
                    "inputs.allowed_schemes",
                    format!("entry {i} (`{sch}`) is not a URL scheme such as \"https\""),
                );
            }
        }
        let t = &self.threat;
        if t.max_scan_bytes == 0 || t.max_scan_bytes > 1 << 24 {
            return e(
                "threat.max_scan_bytes",
                "must be between 1 and 16777216 (bytes)".into(),
            );
        }
        let a = &self.anomaly;
        if a.agents_per_core < 16 || a.agents_per_core > 1 << 22 {
            return e(
                "anomaly.agents_per_core",
                "must be between 16 and 4194304".into(),
            );
        }
        if a.window_ms == 0 || a.quarantine_ms == 0 {
            let f = if a.window_ms == 0 {
                "anomaly.window_ms"
            } else {
                "anomaly.quarantine_ms"
            };
            return e(f, "must be positive (milliseconds)".into());
        }
        for (f, v) in [
            ("anomaly.rate_alpha", a.rate_alpha),
            ("anomaly.alpha", a.alpha),
            ("anomaly.deny_ratio_max", a.deny_ratio_max),
            ("anomaly.threat_ratio_max", a.threat_ratio_max),
        ] {
            if !(v > 0.0 && v <= 1.0) {
                return e(f, "must be in (0, 1]".into());
            }
        }
        if !(a.rate_factor >= 1.0 && a.rate_factor.is_finite()) {
            return e("anomaly.rate_factor", "must be a finite number >= 1".into());
        }
        if !a.quarantine_capacity.is_power_of_two()
            || a.quarantine_capacity < 16
            || a.quarantine_capacity > 1 << 20
        {
            return e(
                "anomaly.quarantine_capacity",
                "must be a power of two between 16 and 1048576".into(),
            );
        }
        let au = &self.audit;
        if au.queue_capacity < 2 || au.queue_capacity > crate::stack::MAX_INDICES {
            return e(
                "audit.queue_capacity",
                format!("must be between 2 and {}", crate::stack::MAX_INDICES),
            );
        }
        for (f, v) in [
            ("audit.group_records", au.group_records),
            ("audit.group_us", au.group_us),
            ("audit.async_flush_ms", au.async_flush_ms),
            ("audit.checkpoint_records", au.checkpoint_records),
            ("audit.checkpoint_ms", au.checkpoint_ms),
        ] {
            if v == 0 {
                return e(f, "must be positive".into());
            }
        }
        if au.segment_bytes < 1 << 16 || au.segment_bytes > 1 << 30 {
            return e(
                "audit.segment_bytes",
                "must be between 65536 and 1073741824 (bytes)".into(),
            );
        }
        let h = &self.hsm;
        if h.require_hsm_at != "never" && h.require_hsm_at().is_none() {
            return e(
                "hsm.require_hsm_at",
                "must be one of unclassified, cui, confidential, secret, top_secret, never".into(),
            );
        }
        for (f, v, lo, hi) in [
            ("hsm.sessions", h.sessions as u64, 1, 64),
            ("hsm.batch_size", h.batch_size as u64, 1, 4096),
            ("hsm.queue_capacity", h.queue_capacity as u64, 1, 1 << 20),
            ("hsm.timeout_us", h.timeout_us, 1, 60_000_000),
            ("hsm.retry_ms", h.retry_ms, 1, 3_600_000),
            (
                "hsm.max_retry_ms",
                h.max_retry_ms,
                h.retry_ms.max(1),
                3_600_000,
            ),
        ] {
            if v < lo || v > hi {
                return e(f, format!("must be between {lo} and {hi}"));
            }
        }
        for (f, v) in [
            ("hsm.hmac_key_label", &h.hmac_key_label),
            ("hsm.data_key_label", &h.data_key_label),
            ("hsm.signing_key_label", &h.signing_key_label),
        ] {
            if v.is_empty() {
                return e(f, "must not be empty".into());
            }
        }
        if h.slot_id < -1 {
            return e(
                "hsm.slot_id",
                "must be a slot id, or -1 to find the token by its label".into(),
            );
        }
        if !h.module.is_empty() && h.token_label.is_empty() && h.slot_id < 0 {
            return e(
                "hsm.token_label",
                "must name the token to use (or set hsm.slot_id)".into(),
            );
        }
        let id = &self.identity;
        if id.replay_window_ms < 2 * id.max_clock_skew_ms {
            return e("identity.replay_window_ms", format!("must be at least twice identity.max_clock_skew_ms ({} ms), or a stale request could be replayed after its nonce is forgotten", 2 * id.max_clock_skew_ms));
        }
        if id.replay_capacity < 16 || id.replay_capacity > 1 << 28 {
            return e(
                "identity.replay_capacity",
                "must be between 16 and 268435456".into(),
            );
        }
        if id.token_cache_capacity < 2 || id.token_cache_capacity > 1 << 26 {
            return e(
                "identity.token_cache_capacity",
                "must be between 2 and 67108864".into(),
            );
        }
        for (kind, keys) in [
            ("ed25519_public_keys", &id.ed25519_public_keys),
            ("hmac_keys", &id.hmac_keys),
        ] {
            for (i, k) in keys.iter().enumerate() {
                if k.file.is_empty() == k.env.is_empty() {
                    return e(
                        &format!("identity.{kind}"),
                        format!("entry {i} needs exactly one of `file` or `env`"),
                    );
                }
            }
        }
        if self.cache.ttl_ms.adaptive_hits_per_step == 0 {
            return e(
                "cache.ttl_ms.adaptive_hits_per_step",
                "must be positive".into(),
            );
        }
        let l = &self.limits;
        for (name, v) in [
            ("limits.max_id_bytes", l.max_id_bytes),
            ("limits.max_credential_bytes", l.max_credential_bytes),
            ("limits.max_resource_bytes", l.max_resource_bytes),
            ("limits.max_content_bytes", l.max_content_bytes),
        ] {
            if v == 0 || v > 64 << 20 {
                return e(name, "must be between 1 and 67108864 bytes".into());
            }
        }
        Ok(())
    }

    /// Number of cores this config starts.
    pub fn core_count(&self) -> usize {
        if self.engine.cores != 0 {
            self.engine.cores
        } else if !self.engine.cpus.is_empty() {
            self.engine.cpus.len()
        } else {
            available_cpus().len().max(1)
        }
    }
}

/// The line of a dotted field (`threat.catalogue`) in config source, where it is written.
pub fn line_of_field(src: &str, dotted: &str) -> Option<usize> {
    crate::source::line_of_dotted(src, dotted)
}

/// CPU ids this process may run on.
pub fn available_cpus() -> Vec<usize> {
    match core_affinity::get_core_ids() {
        Some(ids) if !ids.is_empty() => ids.into_iter().map(|c| c.id).collect(),
        _ => (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_default() {
        assert_eq!(Config::from_toml("", "x.toml").unwrap(), Config::default());
    }

    #[test]
    fn example_config_parses_and_matches_defaults() {
        let src = include_str!("../examples/warden.toml");
        let cfg = Config::from_toml(src, "examples/warden.toml").unwrap();
        assert_eq!(
            cfg,
            Config::default(),
            "examples/warden.toml must document the defaults"
        );
    }

    #[test]
    fn unknown_field_names_file_line_and_field() {
        let src = "[engine]\ncores = 1\nspin_befor_park_us = 3\n";
        let e = Config::from_toml(src, "w.toml").unwrap_err();
        assert_eq!(e.file, "w.toml");
        assert_eq!(e.line, Some(3));
        assert_eq!(e.field, "engine.spin_befor_park_us");
        assert!(e.to_string().starts_with("w.toml:3:"), "{e}");
    }

    #[test]
    fn wrong_type_names_line() {
        let src = "[cache]\n\ncapacity_per_core = \"big\"\n";
        let e = Config::from_toml(src, "w.toml").unwrap_err();
        assert_eq!(e.line, Some(3), "{e}");
        assert_eq!(e.field, "cache.capacity_per_core");
    }

    #[test]
    fn tables_of_optional_keys_take_the_defaults_of_the_keys_left_out() {
        let c = Config::from_toml("[rings]\ncapacity = { critical = 2048 }\n", "w.toml").unwrap();
        assert_eq!(c.rings.capacity.critical, 2048);
        assert_eq!(c.rings.capacity.high, RingsConfig::default().capacity.high);
        let c = Config::from_toml("[cache.ttl_ms.check]\nsecret = 7\n", "w.toml").unwrap();
        assert_eq!(c.cache.ttl_ms.check.secret, 7);
        assert_eq!(c.cache.ttl_ms.check.cui, TtlConfig::default().check.cui);
        let e = Config::from_toml("[rings]\ncapacity = { critcal = 1 }\n", "w.toml").unwrap_err();
        assert_eq!(e.field, "rings.capacity.critcal", "{e}");
        let e = Config::from_toml("[engine]\ncpus = [999999]\n", "w.toml").unwrap_err();
        assert_eq!((e.field.as_str(), e.line), ("engine.cpus", Some(2)), "{e}");
    }

    #[test]
    fn semantic_error_names_dotted_field_and_line() {
        let src = "[rings]\noverflow_capacity = 8\n[rings.capacity]\ncritical = 4\nhigh = 4\nmedium = 4\nlow = 0\nbackground = 4\n";
        let e = Config::from_toml(src, "w.toml").unwrap_err();
        assert_eq!(e.field, "rings.capacity.low");
        assert_eq!(e.line, Some(7), "{e}");
        let src = "[engine]\nreply_slots = 1\n";
        let e = Config::from_toml(src, "w.toml").unwrap_err();
        assert_eq!((e.field.as_str(), e.line), ("engine.reply_slots", Some(2)));
        let src = "[cache.ttl_ms]\ncheck = { unclassified = 1, cui = 1, confidential = 1, secret = 1, top_secret = 1 }\nadaptive_hits_per_step = 0\n";
        let e = Config::from_toml(src, "w.toml").unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.line),
            ("cache.ttl_ms.adaptive_hits_per_step", Some(3))
        );
    }

    #[test]
    fn a_syntax_error_with_no_key_still_names_something() {
        // found by the config_toml fuzz target
        let e = Config::from_toml("\n[", "w.toml").unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
        assert_eq!(e.field, "(syntax)");
    }

    #[test]
    fn missing_file_is_a_clear_error() {
        let e = Config::load(Path::new("/nonexistent/warden.toml")).unwrap_err();
        assert!(e.to_string().contains("cannot read the config file"), "{e}");
    }
}
