//! `Config`: one TOML file, every field defaulted (documented in `examples/warden.toml`).
//!
//! Invariant: a config that loads is valid; every rejection is a `ConfigError` that names the
//! file, the line and the dotted field, and says what to do. Loading happens once, at start or on
//! reload, never on the hot path.

use crate::types::Priority;
use serde::Deserialize;
use std::path::Path;

/// A configuration error a person can act on: file, line, field, what to do.
pub type ConfigError = crate::source::SourceError;

// Each module owns its settings; the config file is their sections, assembled here.
pub use crate::anomaly::AnomalyConfig;
pub use crate::audit::{AuditConfig, AuditMode};
pub use crate::cache::{CacheConfig, EvictionName, TtlByClass, TtlConfig};
pub use crate::hsm::HsmConfig;
pub use crate::identity::{IdentityConfig, KeyRef};
pub use crate::inputs::InputsConfig;
pub use crate::policy::PolicyConfig;
pub use crate::request::LimitsConfig;
pub use crate::sync::available_cpus;
pub use crate::threat::{LevelName, Oversize, ThreatConfig};

/// What an internal failure yields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Executor {
    /// A pinned glommio `LocalExecutor` per core (io_uring).
    #[default]
    Glommio,
    /// A plain pinned thread per core: for kernels where io_uring is unavailable.
    Threads,
}

#[derive(Clone, Debug, PartialEq, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// Number of cores; 0 means one per CPU this process may run on with `caller_runs` (a
    /// core's thread sleeps while callers serve its requests, and stops spinning once the
    /// scheduler shows the CPU is shared), and half of them without it, leaving the others
    /// to the gateway's own threads (a core that spins competes with every thread that
    /// submits).
    pub cores: usize,
    /// Explicit CPU ids to pin cores to (empty: the first `cores` CPUs of the affinity mask).
    pub cpus: Vec<usize>,
    /// Pin each core's thread to its CPU.
    pub pin: bool,
    pub executor: Executor,
    /// How long an idle core spins before it sleeps (latency vs idle CPU).
    pub spin_before_park_us: u64,
    /// The cores' threads' nice value (-20 to 19; 0: as the process). Where the gateway's own
    /// busy threads share the CPUs, a core that the scheduler prefers answers in microseconds
    /// instead of after their time slices (PERF.md "Open-loop load"); below 0 needs
    /// CAP_SYS_NICE (or root), and a start without it fails saying so.
    pub nice: i32,
    /// How long a blocking `validate` spins for its verdict before it sleeps.
    pub wait_spin_us: u64,
    /// Caller-runs: a thread that submits to a core that sleeps serves the core's rings itself
    /// (its own request among them, none started past its own deadline) instead of waking the
    /// core's thread and waiting for the scheduler to run it. Never from a thread the scheduler
    /// ranks below the cores, nor in an engine serving shared-memory clients. Off: every
    /// request is served by a core's own thread.
    pub caller_runs: bool,
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
            nice: 0,
            wait_spin_us: 50,
            caller_runs: true,
            request_timeout_us: 1_000_000,
            fail_mode: FailMode::Closed,
            reply_slots: 4096,
            reserved_slots_pct: 25,
        }
    }
}

/// One value per priority.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
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

#[derive(Clone, Debug, PartialEq, Deserialize, serde::Serialize)]
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

crate::source::partial_tables!(PerPriority { critical, high, medium, low, background }:
    partial_capacity = RingsConfig::default().capacity;
    partial_aging = RingsConfig::default().aging_deadline_us;
);

/// The whole configuration. `Config::default()` is the embedded default.
#[derive(Clone, Debug, PartialEq, Default, Deserialize, serde::Serialize)]
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
    pub serve: crate::ipc::ServeConfig,
    pub siem: crate::audit::siem::SiemConfig,
    pub trust: crate::trust::TrustConfig,
    pub fleet: crate::fleet::FleetConfig,
}

impl Config {
    /// Reads and validates a TOML file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let name = path.display().to_string();
        let src = crate::source::read_text_bounded(
            path,
            crate::source::limits::CONFIG_BYTES,
            "the config file",
        )
        .map_err(|message| ConfigError {
            file: name.clone(),
            line: None,
            field: "-".into(),
            message,
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
        self.serve.validate()?;
        self.siem.validate(&self.audit.dir)?;
        self.fleet.validate()?;
        self.trust.check().map_err(|(f, m)| (f.to_string(), m))?;
        let e = |f: &str, m: String| Err((f.to_string(), m));
        let avail = available_cpus().len();
        if !(-20..=19).contains(&self.engine.nice) {
            return e(
                "engine.nice",
                format!(
                    "{} is no nice value; give -20 (most favoured) to 19 (least), or 0",
                    self.engine.nice
                ),
            );
        }
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
        for (i, c) in self.engine.cpus.iter().enumerate() {
            if self.engine.cpus[..i].contains(c) {
                return e(
                    "engine.cpus",
                    format!("CPU {c} is listed twice; two cores pinned to one CPU only take turns"),
                );
            }
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
        if self.engine.reply_slots < 2 || self.engine.reply_slots > crate::sync::stack::MAX_INDICES
        {
            return e(
                "engine.reply_slots",
                format!("must be between 2 and {}", crate::sync::stack::MAX_INDICES),
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
        if au.queue_capacity < 2 || au.queue_capacity > crate::sync::stack::MAX_INDICES {
            return e(
                "audit.queue_capacity",
                format!("must be between 2 and {}", crate::sync::stack::MAX_INDICES),
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
        let ids = id
            .ed25519_public_keys
            .iter()
            .chain(&id.hmac_keys)
            .map(|k| k.id);
        for (i, k) in ids.clone().enumerate() {
            if ids.clone().take(i).any(|j| j == k) {
                return e(
                    "identity",
                    format!("key id {k} is given twice (ed25519_public_keys and hmac_keys share one id space); a token names one key by its id"),
                );
            }
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
        // Every reply slot holds a buffer of the largest encoded request: their product is
        // the memory the slots may take (mapped lazily, touched as requests fill them).
        let slot_bytes = l.limits().max_encoded_bytes() as u64;
        let total = slot_bytes.saturating_mul(self.engine.reply_slots as u64);
        if total > MAX_SLOT_MEMORY_BYTES {
            return e(
                "engine.reply_slots",
                format!(
                    "{} slots of {} bytes each (the largest request the limits.max_*_bytes admit) is {} MiB, over the {} MiB bound; lower engine.reply_slots or the limits",
                    self.engine.reply_slots,
                    slot_bytes,
                    total >> 20,
                    MAX_SLOT_MEMORY_BYTES >> 20
                ),
            );
        }
        Ok(())
    }

    /// Number of cores this config starts.
    pub fn core_count(&self) -> usize {
        if self.engine.cores != 0 {
            self.engine.cores
        } else if !self.engine.cpus.is_empty() {
            self.engine.cpus.len()
        } else if self.engine.caller_runs {
            // A core's thread sleeps while the callers serve its requests themselves, so a core
            // per CPU costs the gateway's threads nothing and lets them serve in parallel.
            available_cpus().len().max(1)
        } else {
            (available_cpus().len() / 2).max(1)
        }
    }
}

/// The most memory the reply slots may take: `engine.reply_slots` × the largest encoded
/// request (8 GiB).
pub const MAX_SLOT_MEMORY_BYTES: u64 = 8 << 30;

/// The line of a dotted field (`threat.catalogue`) in config source, where it is written.
pub fn line_of_field(src: &str, dotted: &str) -> Option<usize> {
    crate::source::line_of_dotted(src, dotted)
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
        // slots × the largest request: bounded, the error names both
        let src = "[engine]\nreply_slots = 65536\n[limits]\nmax_content_bytes = 67108864\n";
        let e = Config::from_toml(src, "w.toml").unwrap_err();
        assert_eq!((e.field.as_str(), e.line), ("engine.reply_slots", Some(2)));
        assert!(e.to_string().contains("limits.max_"), "{e}");
        let src = "[engine]\nreply_slots = 64\n[limits]\nmax_content_bytes = 67108864\n";
        Config::from_toml(src, "w.toml").unwrap();
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
