//! `Engine`, its builder, and `Handle`: how any thread submits requests and gets verdicts.
//!
//! Submission path (any thread, lock-free, allocation-free): take a reply slot from the pool,
//! encode the request into it, route by xxh3(tenant, agent) to the owning core, push the slot
//! index onto that core's ring for the request's priority (or the priority's overflow injector
//! when the ring is full; `Low` and `Background` are shed instead), ring the core's doorbell if
//! it sleeps, then wait on the slot: spin, then futex sleep, or, for `validate_async`, register a
//! waker.
//!
//! Invariants:
//! - every request gets exactly one verdict: an immediate deny (overload, shutdown, oversized),
//!   or one written by a core; shutdown answers everything accepted before it;
//! - queues are bounded: rings and injectors by config, slots by `engine.reply_slots`;
//! - overload is a deny with a reason, never a wait without bound and never an allow.

use crate::cache::{CacheKey, Shard};
use crate::config::{Config, ConfigError, Executor};
use crate::core::{CoreState, Idle};
use crate::futex;
use crate::metrics::{self, CoreMetrics, CoreSnapshot, Metrics, SubmitMetrics};
use crate::request::{Limits, Request};
use crate::ring::Ring;
use crate::slot::{
    SlotPool, ABANDONED, CLAIMED, DONE, FREE, QUEUED, WAIT_ASYNC, WAIT_THREAD, WAKING,
};
use crate::stage::{Custom, Outcome, Pipeline, Stage, StageResult};
use crate::time::now_ns;
use crate::types::{DenyReason, Priority, Verdict};
use crossbeam_utils::CachePadded;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// State of one core that other threads may touch: its rings, doorbell and metrics.
pub(crate) struct CoreShared {
    pub rings: [Ring; Priority::COUNT],
    /// Requests handed back by the HSM core (sized for every slot, so never full).
    pub resume: Ring,
    /// 1 while the core sleeps; submitters that see it swap it to 0 and futex-wake.
    pub sleeping: CachePadded<AtomicU32>,
    pub metrics: CoreMetrics,
    pub cpu: Option<usize>,
}

/// Everything shared between handles and cores. Immutable after build except atomics.
pub(crate) struct Shared {
    pub cores: Box<[CoreShared]>,
    /// Overflow injectors for `Critical`, `High`, `Medium`.
    pub overflow: [Ring; 3],
    pub pool: SlotPool,
    pub pipeline: Pipeline,
    pub limits: Limits,
    pub epoch: CachePadded<AtomicU64>,
    pub shutdown: AtomicBool,
    pub running: AtomicUsize,
    pub running_futex: AtomicU32,
    pub submit: SubmitMetrics,
    pub aging_ns: [u64; Priority::COUNT],
    pub spin_before_park_ns: u64,
    pub wait_spin_ns: u64,
    pub timeout_ns: u64,
    pub started: Instant,
    pub config: Config,
    /// The keyed hashes of cache keys, tenant tags and (tenant, agent) (`keyed.rs`).
    pub keyed: crate::keyed::KeyedHash,
    /// Agents quarantined after a behaviour anomaly, checked by every core before the cache.
    pub quarantine: crate::anomaly::Quarantine,
    pub quarantine_ns: u64,
    /// The queue to the audit writer (`None`: no audit log).
    pub audit: Option<crate::audit::writer::AuditQueue>,
    pub audit_done: AtomicBool,
    /// 1 once the writer has flushed and stopped (futex word for `shutdown`).
    pub audit_exited: AtomicU32,
    /// The keys: software keystore, or a token behind the HSM core.
    pub keys: crate::hsm::Keys,
    /// The HSM core's queue (`None`: software keystore).
    pub hsm: Option<crate::hsm::service::HsmClient>,
}

/// Why the engine could not start.
#[derive(Debug)]
pub enum BuildError {
    Config(ConfigError),
    /// The audit log could not be opened (a bad directory, a damaged log, a bad key).
    Audit(crate::audit::AuditError),
    /// The keystore could not start (an unreadable keystore file, a public key the identity
    /// configuration needs and the HSM cannot give).
    Keys(String),
    Policy(crate::policy::PolicyError),
    /// A core's executor could not start (io_uring unavailable, CPU not allowed, ...).
    Core {
        core: usize,
        message: String,
    },
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::Config(e) => write!(f, "{e}"),
            BuildError::Policy(e) => write!(f, "{e}"),
            BuildError::Audit(e) => write!(f, "audit log: {e}"),
            BuildError::Keys(m) => write!(f, "keys: {m}"),
            BuildError::Core { core, message } => write!(
                f,
                "core {core} could not start: {message} (if io_uring is unavailable here, set engine.executor = \"threads\")"
            ),
        }
    }
}
impl std::error::Error for BuildError {}

impl From<ConfigError> for BuildError {
    fn from(e: ConfigError) -> Self {
        BuildError::Config(e)
    }
}

/// Configures and starts an [`Engine`].
pub struct EngineBuilder {
    config: Config,
    stages: Vec<Arc<dyn Stage>>,
    policy: Option<crate::policy::Snapshot>,
}

impl EngineBuilder {
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }
    /// Uses this compiled policy (instead of `policy.file` from the config).
    pub fn policy(mut self, policy: crate::policy::Snapshot) -> Self {
        self.policy = Some(policy);
        self
    }
    /// Appends a stage; `Check` runs stages in the order they were added.
    pub fn stage(mut self, stage: impl Stage) -> Self {
        self.stages.push(Arc::new(stage));
        self
    }
    /// Registers a custom validator for `Operation::Custom(id)`.
    pub fn custom<F>(mut self, id: u16, name: &str, f: F) -> Self
    where
        F: Fn(&Request<'_>, &mut Outcome) -> StageResult + Send + Sync + 'static,
    {
        self.stages.push(Arc::new(Custom {
            id,
            name: name.to_string(),
            f,
        }));
        self
    }

    /// Everything `build` would check, without starting anything or writing anywhere: the
    /// config's values, the policy file, the identity keys, the threat catalogue and model, the
    /// HSM (connected and let go), the audit log (verified, read only). `Ok` carries notes for
    /// a person (what a start would find); `Err` is the error `build` would stop with.
    pub fn check(self) -> Result<Vec<String>, BuildError> {
        let cfg = self.config;
        cfg.validate()
            .map_err(|(field, message)| config_error(field, message))?;
        let mut notes = Vec::new();
        let policy = load_policy(&cfg, self.policy)?;
        if let Some(p) = &policy {
            notes.push(format!(
                "policy {}: {} tenants, {} roles, {} tools, {} agents",
                cfg.policy.file,
                p.tenants.len(),
                p.roles.len(),
                p.tools.len(),
                p.agents.len()
            ));
        }
        let (keys, fault) = crate::hsm::open(&cfg.hsm).map_err(BuildError::Keys)?;
        if let Some(f) = fault {
            notes.push(format!(
                "hsm: unusable now ({f}); a start would serve with its circuit breaker open and probe"
            ));
        }
        let checked = (|| {
            let identity = if cfg.identity.require_token {
                Some(Arc::new(load_identity(&cfg, &keys)?))
            } else {
                None
            };
            let policy =
                policy.map(|p| Arc::new(crate::policy::PolicyStage::new(p, identity.clone())));
            if !cfg.audit.dir.is_empty() {
                notes.push(crate::audit::check(&cfg.audit).map_err(BuildError::Audit)?);
            }
            builtin_stages(&cfg, 1, policy, &keys, self.stages)?;
            Ok(())
        })();
        keys.shutdown();
        checked.map(|()| notes)
    }

    /// Validates the config, allocates every ring, slot and cache shard, and starts the cores.
    pub fn build(self) -> Result<Engine, BuildError> {
        let cfg = self.config;
        cfg.validate()
            .map_err(|(field, message)| config_error(field, message))?;
        let n = cfg.core_count();
        let cpus: Vec<Option<usize>> = if !cfg.engine.pin {
            vec![None; n]
        } else if !cfg.engine.cpus.is_empty() {
            cfg.engine.cpus.iter().map(|&c| Some(c)).collect()
        } else {
            let avail = crate::config::available_cpus();
            (0..n)
                .map(|i| avail.get(i % avail.len().max(1)).copied())
                .collect()
        };
        let policy = load_policy(&cfg, self.policy)?;
        // Keys first: identity may verify with them. With a module, the HSM core starts now and
        // connects; a fault does not stop the build (the breaker opens and probes).
        let cpu_set: Vec<usize> = cpus.iter().flatten().copied().collect();
        let (keys, tag_home) = start_keys(&cfg, &cpu_set)?;
        let identity = if cfg.identity.require_token {
            Some(Arc::new(load_identity(&cfg, &keys)?))
        } else {
            None
        };
        let policy = policy.map(|p| Arc::new(crate::policy::PolicyStage::new(p, identity.clone())));
        // The audit log is opened (and a torn tail recovered) before any core starts.
        let audit_log = if cfg.audit.dir.is_empty() {
            None
        } else {
            let (log, key) = crate::audit::open(&cfg.audit, &keys).map_err(BuildError::Audit)?;
            if log.recovery.torn_bytes > 0 {
                eprintln!(
                    "warden audit: {}: cut a torn tail of {} bytes after seq {} (an unclean stop after the last checkpoint; the log verified up to it)",
                    cfg.audit.dir,
                    log.recovery.torn_bytes,
                    log.next_seq() - 1
                );
            }
            Some((log, key))
        };
        let limits = cfg.limits.limits();
        let rings = &cfg.rings;
        let resume_capacity = if keys.client().is_some() {
            cfg.engine.reply_slots
        } else {
            1
        };
        let cores = (0..n)
            .map(|i| CoreShared {
                rings: Priority::ALL.map(|p| Ring::new(rings.capacity.get(p) as usize)),
                resume: Ring::new(resume_capacity),
                sleeping: CachePadded::new(AtomicU32::new(0)),
                metrics: CoreMetrics::default(),
                cpu: cpus[i],
            })
            .collect();
        let shared = Arc::new(Shared {
            cores,
            overflow: [0; 3].map(|_| Ring::new(rings.overflow_capacity)),
            pool: SlotPool::new(
                cfg.engine.reply_slots,
                limits.max_encoded_bytes(),
                (n * 2).next_power_of_two(),
                cfg.engine.reserved_slots_pct,
            ),
            pipeline: Pipeline::new(
                builtin_stages(&cfg, n, policy.clone(), &keys, self.stages)?,
                cfg.engine.fail_mode,
            ),
            limits,
            epoch: CachePadded::new(AtomicU64::new(1)),
            shutdown: AtomicBool::new(false),
            running: AtomicUsize::new(0),
            running_futex: AtomicU32::new(0),
            submit: SubmitMetrics::default(),
            aging_ns: Priority::ALL.map(|p| rings.aging_deadline_us.get(p) * 1000),
            spin_before_park_ns: cfg.engine.spin_before_park_us * 1000,
            wait_spin_ns: cfg.engine.wait_spin_us * 1000,
            timeout_ns: cfg.engine.request_timeout_us * 1000,
            started: Instant::now(),
            config: cfg.clone(),
            keyed: crate::keyed::KeyedHash::random(),
            quarantine: crate::anomaly::Quarantine::new(cfg.anomaly.quarantine_capacity),
            quarantine_ns: cfg.anomaly.quarantine_ms.saturating_mul(1_000_000),
            audit: audit_log.as_ref().map(|_| {
                crate::audit::writer::AuditQueue::new(
                    cfg.audit.queue_capacity,
                    cfg.audit.every_request,
                    cfg.audit.mode != crate::config::AuditMode::Async,
                )
            }),
            audit_done: AtomicBool::new(false),
            audit_exited: AtomicU32::new(0),
            hsm: keys.client().cloned(),
            keys,
        });
        if let Some(home) = tag_home {
            let _ = home.set((shared.clone(), identity.clone()));
        }
        if let Some((log, key)) = audit_log {
            let sh = shared.clone();
            let a = &cfg.audit;
            let settings = crate::audit::writer::WriterSettings {
                mode: a.mode,
                group_records: a.group_records,
                group_ns: a.group_us * 1000,
                async_flush_ns: a.async_flush_ms * 1_000_000,
                checkpoint_records: a.checkpoint_records,
                checkpoint_ns: a.checkpoint_ms * 1_000_000,
            };
            std::thread::Builder::new()
                .name("warden-audit".into())
                .spawn(move || {
                    let q = sh.audit.as_ref().expect("audit queue exists with a log");
                    crate::audit::writer::run_guarded(
                        q,
                        log,
                        key,
                        settings,
                        |slot, v| crate::core::complete_audited(&sh, slot, v),
                        || sh.audit_done.load(SeqCst),
                    );
                    sh.audit_exited.store(1, SeqCst);
                    futex::wake(&sh.audit_exited, i32::MAX);
                })
                .expect("spawn the audit writer");
        }
        let tag_key = random_key();
        let (tx, rx) = flume::bounded::<(usize, Result<(), String>)>(n);
        for (i, &cpu) in cpus.iter().enumerate() {
            let shard =
                (cfg.cache.capacity_per_core > 0).then(|| Shard::new(cfg.cache.shard(), tag_key));
            let monitor = cfg.anomaly.enabled.then(|| {
                let params = crate::anomaly::Params::new(&cfg.anomaly);
                crate::anomaly::Monitor::new(cfg.anomaly.agents_per_core, params)
            });
            let core = CoreState::new(i, shared.clone(), shard, monitor);
            shared.running.fetch_add(1, SeqCst);
            spawn_core(core, cpu, cfg.engine.executor, tx.clone(), shared.clone());
        }
        let engine = Engine { shared, policy };
        for _ in 0..n {
            match rx.recv_timeout(Duration::from_secs(30)) {
                Ok((_, Ok(()))) => {}
                Ok((core, Err(message))) => {
                    engine.shutdown();
                    return Err(BuildError::Core { core, message });
                }
                Err(_) => {
                    engine.shutdown();
                    return Err(BuildError::Core {
                        core: usize::MAX,
                        message: "a core did not report within 30 s".into(),
                    });
                }
            }
        }
        Ok(engine)
    }
}

/// The policy given to the builder, or the one `policy.file` names; a config that requires
/// tokens needs one.
fn load_policy(
    cfg: &Config,
    given: Option<crate::policy::Snapshot>,
) -> Result<Option<crate::policy::Snapshot>, BuildError> {
    let policy = match given {
        Some(p) => Some(p),
        None if !cfg.policy.file.is_empty() => Some(
            crate::policy::Snapshot::load(std::path::Path::new(&cfg.policy.file))
                .map_err(BuildError::Policy)?,
        ),
        None => None,
    };
    if cfg.identity.require_token && policy.is_none() {
        return Err(config_error(
            "identity.require_token",
            "needs a policy (policy.file) to know the agents".into(),
        ));
    }
    Ok(policy)
}

/// The built-in stages in their fixed order (identity, rate limits and authorization will join
/// here, before input checks), followed by the caller's stages in registration order.
fn builtin_stages(
    cfg: &Config,
    cores: usize,
    policy: Option<Arc<crate::policy::PolicyStage>>,
    keys: &crate::hsm::Keys,
    user: Vec<Arc<dyn Stage>>,
) -> Result<Vec<Arc<dyn Stage>>, BuildError> {
    let mut all: Vec<Arc<dyn Stage>> = Vec::new();
    if let Some(p) = &policy {
        all.push(p.clone());
    }
    all.push(Arc::new(KeysStage(keys.clone())));
    match policy {
        // With a policy, resources are checked where they are matched against the tools'
        // patterns (a resource the checks refuse cannot be matched), whatever inputs.enabled.
        Some(p) => all.push(Arc::new(crate::policy::ResourceStage::new(
            p,
            &cfg.inputs.allowed_schemes,
        ))),
        None if cfg.inputs.enabled => all.push(Arc::new(crate::inputs::InputStage::new(
            &cfg.inputs.allowed_schemes,
        ))),
        None => {}
    }
    if !cfg.audit.dir.is_empty() {
        all.push(Arc::new(crate::audit::AuditStage));
    }
    if cfg.threat.enabled {
        let file = &cfg.threat.catalogue;
        let src = if file.is_empty() {
            None
        } else {
            Some(std::fs::read_to_string(file).map_err(|e| {
                config_error("threat.catalogue", format!("cannot read {file}: {e}"))
            })?)
        };
        let model = if cfg.threat.model.is_empty() {
            None
        } else {
            Some(
                crate::threat::model::Model::load(std::path::Path::new(&cfg.threat.model))
                    .map_err(|m| config_error("threat.model", m))?,
            )
        };
        // One scanner per core, plus spares for a stage run elsewhere (tests, custom drivers).
        let stage = crate::threat::ThreatStage::new(
            &cfg.threat,
            cores + 2,
            src.as_deref().map(|s| (s, file.as_str())),
            model,
        )
        .map_err(BuildError::Config)?;
        all.push(Arc::new(stage));
    }
    all.extend(user);
    Ok(all)
}

/// A configuration error found while building (the config came as a value, so no file or line).
fn config_error(field: impl Into<String>, message: String) -> BuildError {
    BuildError::Config(ConfigError {
        file: "<config>".into(),
        line: None,
        field: field.into(),
        message,
    })
}

/// Where the HSM core finds the engine once it exists, to serve core token tags.
type TagHome = Arc<std::sync::OnceLock<(Arc<Shared>, Option<Arc<crate::identity::Identity>>)>>;

/// Starts the keystore `[hsm]` names (`hsm::start`), giving the HSM core a way to serve core
/// token tags once the engine exists.
fn start_keys(
    cfg: &Config,
    core_cpus: &[usize],
) -> Result<(crate::hsm::Keys, Option<TagHome>), BuildError> {
    use crate::hsm::service::TagServer;
    if cfg.hsm.module.is_empty() {
        let (keys, _) = crate::hsm::start(&cfg.hsm, core_cpus, None).map_err(BuildError::Keys)?;
        return Ok((keys, None));
    }
    let home: TagHome = Arc::new(std::sync::OnceLock::new());
    let (h1, h2, h3) = (home.clone(), home.clone(), home.clone());
    let tags = TagServer {
        verify: Box::new(move |b, idx| match h1.get() {
            Some((sh, Some(id))) => crate::core::hsm_verify_tag(sh, id, b, idx),
            _ => Ok(crate::hsm::service::TAG_BAD),
        }),
        resume: Box::new(move |idx, core, outcome| {
            if let Some((sh, _)) = h2.get() {
                crate::core::hsm_resume(sh, idx, core, outcome);
            }
        }),
        wake: Box::new(move |core| {
            if let Some((sh, _)) = h3.get() {
                wake(&sh.cores[core as usize]);
            }
        }),
    };
    // A first connection that fails is reported, not fatal: the breaker opens and probes.
    let (keys, _) = crate::hsm::start(&cfg.hsm, core_cpus, Some(tags)).map_err(BuildError::Keys)?;
    Ok((keys, Some(home)))
}

/// The built-in stage of crypto operations: data at or above `hsm.require_hsm_at` needs the
/// HSM, and an HSM whose breaker is open cannot serve.
struct KeysStage(crate::hsm::Keys);

impl Stage for KeysStage {
    fn name(&self) -> &str {
        "keys"
    }
    fn handles(&self, op: crate::types::Operation) -> bool {
        matches!(
            op,
            crate::types::Operation::Crypto(
                crate::types::CryptoOp::Encrypt
                    | crate::types::CryptoOp::Decrypt
                    | crate::types::CryptoOp::Sign
            )
        )
    }
    fn evaluate(&self, req: &Request<'_>, _out: &mut Outcome) -> StageResult {
        if self.0.permits(req.classification).is_err() {
            return StageResult::Deny(DenyReason::HsmRequired);
        }
        if self.0.breaker() != crate::hsm::BreakerState::Closed {
            return StageResult::Deny(DenyReason::HsmUnavailable);
        }
        StageResult::Pass
    }
}

/// Loads the identity key ring named by `[identity]`; errors name the key entry.
fn load_identity(
    cfg: &Config,
    keystore: &crate::hsm::Keys,
) -> Result<crate::identity::Identity, BuildError> {
    use crate::identity::{read_key_file, Key};
    let id = &cfg.identity;
    let bad = |field: String, message: String| config_error(field, message);
    let read = |k: &crate::config::KeyRef, len: Option<usize>| -> Result<Vec<u8>, String> {
        if !k.file.is_empty() {
            return read_key_file(&k.file, len);
        }
        let v = std::env::var(&k.env)
            .map_err(|_| format!("environment variable {} is not set", k.env))?;
        crate::identity::from_hex(v.trim())
            .ok_or_else(|| format!("environment variable {} must hold the key in hex", k.env))
    };
    let mut keys = Vec::new();
    for (i, k) in id.ed25519_public_keys.iter().enumerate() {
        let b =
            read(k, Some(32)).map_err(|m| bad(format!("identity.ed25519_public_keys[{i}]"), m))?;
        let mut a = [0u8; 32];
        a.copy_from_slice(&b);
        let vk = ed25519_dalek::VerifyingKey::from_bytes(&a).map_err(|e| {
            bad(
                format!("identity.ed25519_public_keys[{i}]"),
                format!("not an Ed25519 public key: {e}"),
            )
        })?;
        keys.push((k.id, Key::Ed25519(vk)));
    }
    for (i, k) in id.hmac_keys.iter().enumerate() {
        let b = read(k, None).map_err(|m| bad(format!("identity.hmac_keys[{i}]"), m))?;
        if b.len() < 32 {
            return Err(bad(
                format!("identity.hmac_keys[{i}]"),
                "an HMAC key needs at least 32 bytes".into(),
            ));
        }
        keys.push((k.id, Key::Hmac(b.into())));
    }
    if id.keystore_hmac_key_id != 0 {
        keys.push((id.keystore_hmac_key_id, Key::Keystore(keystore.clone())));
    }
    if id.keystore_signing_key_id != 0 {
        let field = "identity.keystore_signing_key_id";
        match keystore.public_key() {
            Ok(crate::hsm::PublicKey::Ed25519(b)) => {
                let vk = ed25519_dalek::VerifyingKey::from_bytes(&b)
                    .map_err(|e| bad(field.into(), format!("keystore public key: {e}")))?;
                keys.push((id.keystore_signing_key_id, Key::Ed25519(vk)));
            }
            Ok(pk) => {
                return Err(bad(
                    field.into(),
                    format!(
                        "the keystore's signature key is {}; tokens need Ed25519",
                        pk.algorithm()
                    ),
                ))
            }
            Err(e) => {
                return Err(BuildError::Keys(format!(
                    "{field}: cannot read the signature key's public half: {e}"
                )))
            }
        }
    }
    if keys.is_empty() {
        return Err(bad(
            "identity.require_token".into(),
            "no verification keys: add ed25519_public_keys, hmac_keys, or a keystore key id".into(),
        ));
    }
    Ok(crate::identity::Identity::new(
        keys,
        crate::identity::Settings {
            max_clock_skew_ms: id.max_clock_skew_ms,
            replay_window_ms: id.replay_window_ms,
            replay_capacity: id.replay_capacity,
            token_cache_capacity: id.token_cache_capacity,
        },
    ))
}

fn random_key() -> [u8; 32] {
    let mut k = [0u8; 32];
    if crate::identity::random_bytes(&mut k).is_err() {
        // Fall back to a hash of time and address-space layout: still unpredictable enough for
        // an in-memory integrity key, and never all zeros.
        let seed = format!("{:?}{:p}", Instant::now(), &k);
        k = *blake3::hash(seed.as_bytes()).as_bytes();
    }
    k
}

fn core_loop_sync(core: &mut CoreState) {
    loop {
        if core.step(64) == 0 && core.idle() == Idle::Exit {
            break;
        }
    }
}

fn spawn_core(
    mut core: CoreState,
    cpu: Option<usize>,
    executor: Executor,
    ready: flume::Sender<(usize, Result<(), String>)>,
    shared: Arc<Shared>,
) {
    let id = core.id;
    let name = format!("warden-core-{id}");
    let ready_on_err = ready.clone();
    let shared_on_err = shared.clone();
    let spawned = std::thread::Builder::new()
        .name(name.clone())
        .spawn(move || {
            let finish = |shared: &Shared| {
                if shared.running.fetch_sub(1, SeqCst) == 1 {
                    shared.running_futex.store(1, SeqCst);
                    futex::wake(&shared.running_futex, i32::MAX);
                }
            };
            match executor {
                Executor::Glommio => {
                    let placement = match cpu {
                        Some(c) => glommio::Placement::Fixed(c),
                        None => glommio::Placement::Unbound,
                    };
                    let ex = glommio::LocalExecutorBuilder::new(placement)
                        .name(&name)
                        .io_memory(1 << 20)
                        .make();
                    match ex {
                        Ok(ex) => {
                            let _ = ready.send((id, Ok(())));
                            // The serving loop is the executor's only task and never yields
                            // to glommio's reactor: each reactor turn allocates timer
                            // sources, which the hot path must not. Tasks added to a core's
                            // executor later (I/O) must be polled from `idle`, off the
                            // serving path.
                            ex.run(async move { core_loop_sync(&mut core) });
                        }
                        Err(e) => {
                            let _ = ready.send((id, Err(e.to_string())));
                        }
                    }
                }
                Executor::Threads => {
                    if let Some(c) = cpu {
                        if !core_affinity::set_for_current(core_affinity::CoreId { id: c }) {
                            let _ = ready.send((id, Err(format!("cannot pin to CPU {c}"))));
                            finish(&shared);
                            return;
                        }
                    }
                    let _ = ready.send((id, Ok(())));
                    core_loop_sync(&mut core);
                }
            }
            finish(&shared);
        });
    if let Err(e) = spawned {
        shared_on_err.running.fetch_sub(1, SeqCst);
        let _ = ready_on_err.send((id, Err(format!("cannot spawn its thread: {e}"))));
    }
}

/// The running engine. Dropping it shuts it down.
pub struct Engine {
    shared: Arc<Shared>,
    policy: Option<Arc<crate::policy::PolicyStage>>,
}

impl Engine {
    pub fn builder() -> EngineBuilder {
        EngineBuilder {
            config: Config::default(),
            stages: Vec::new(),
            policy: None,
        }
    }

    /// A cheap, cloneable submission handle for any thread.
    pub fn handle(&self) -> Handle {
        Handle {
            shared: self.shared.clone(),
        }
    }

    /// Invalidates every cached verdict at once (policy reload, revocation). Returns the new
    /// epoch.
    pub fn bump_epoch(&self) -> u64 {
        self.shared.epoch.fetch_add(1, AcqRel) + 1
    }

    /// Compiles `path` and swaps it in atomically: requests already evaluating finish on the
    /// old policy, every later request (cached verdicts included) sees the new one. Fails,
    /// changing nothing, when the file has an error or the engine was built without a policy.
    pub fn reload_policy(&self, path: &std::path::Path) -> Result<u64, crate::policy::PolicyError> {
        let new = crate::policy::Snapshot::load(path)?;
        self.swap_policy(new)
    }

    /// Swaps in an already compiled policy (see `reload_policy`). Returns the new epoch.
    pub fn swap_policy(
        &self,
        new: crate::policy::Snapshot,
    ) -> Result<u64, crate::policy::PolicyError> {
        let Some(p) = &self.policy else {
            return Err(crate::policy::PolicyError {
                file: new.file.clone(),
                line: None,
                field: "policy.file".into(),
                message: "this engine was built without a policy; set policy.file in the config"
                    .into(),
            });
        };
        p.swap(new);
        Ok(self.bump_epoch())
    }

    /// Revokes an agent: its next request is denied on every core, cached allows included.
    /// Returns false when identity checks are not enabled (`identity.require_token`).
    pub fn revoke_agent(&self, tenant: &str, agent: &str) -> bool {
        match self.policy.as_ref().and_then(|p| p.identity()) {
            Some(id) => {
                id.revoke_agent(tenant, agent);
                self.bump_epoch();
                true
            }
            None => false,
        }
    }

    /// Lifts an agent's revocation.
    pub fn release_agent(&self, tenant: &str, agent: &str) -> bool {
        match self.policy.as_ref().and_then(|p| p.identity()) {
            Some(id) => {
                id.release_agent(tenant, agent);
                true
            }
            None => false,
        }
    }

    /// Ends an agent's quarantine now (its behaviour baselines start afresh). False when it was
    /// not quarantined.
    pub fn release_quarantine(&self, tenant: &str, agent: &str) -> bool {
        self.shared
            .quarantine
            .release(self.shared.keyed.agent(tenant, agent), now_ns())
    }

    /// Agents quarantined now, with what triggered it and the cool-down left.
    pub fn quarantined(&self) -> Vec<crate::anomaly::Quarantined> {
        self.shared.quarantine.list(now_ns())
    }

    /// Revokes one token.
    pub fn revoke_token(&self, token: &str) -> bool {
        match self.policy.as_ref().and_then(|p| p.identity()) {
            Some(id) => {
                id.revoke_token(token.as_bytes());
                self.bump_epoch();
                true
            }
            None => false,
        }
    }

    /// Explains a verdict's `rule` against the current policy.
    pub fn explain(&self, rule: u32) -> String {
        match &self.policy {
            Some(p) => p.snapshot().explain(rule),
            None => "no policy".into(),
        }
    }

    pub fn epoch(&self) -> u64 {
        self.shared.epoch.load(Acquire)
    }

    pub fn cores(&self) -> usize {
        self.shared.cores.len()
    }

    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// Names of the registered stages, in order.
    pub fn stages(&self) -> Vec<String> {
        self.shared.pipeline.stage_names()
    }

    /// Stops taking work, answers every request already accepted, and waits for the cores to
    /// exit. Idempotent; later submissions get `Deny(ShuttingDown)`.
    pub fn shutdown(&self) {
        let sh = &self.shared;
        sh.shutdown.store(true, SeqCst);
        loop {
            if sh.running.load(SeqCst) == 0 {
                break;
            }
            for c in sh.cores.iter() {
                c.sleeping.store(0, SeqCst);
                futex::wake(&c.sleeping, 1);
            }
            futex::wait(&sh.running_futex, 0, Some(Duration::from_millis(5)));
        }
        // Every core is gone, so nothing more is queued: the writer flushes, syncs and stops.
        sh.audit_done.store(true, SeqCst);
        if let Some(q) = &sh.audit {
            q.sleeping.store(0, SeqCst);
            futex::wake(&q.sleeping, 1);
        }
        if sh.audit.is_some() {
            while sh.audit_exited.load(SeqCst) == 0 {
                futex::wait(&sh.audit_exited, 0, Some(Duration::from_millis(5)));
            }
        }
        // Last the HSM core (the writer may have signed a final checkpoint with it).
        sh.keys.shutdown();
    }

    /// A merged snapshot of every core's metrics.
    pub fn metrics(&self) -> Metrics {
        self.handle().metrics()
    }

    /// The keys (software keystore or HSM): HMAC, AES-256-GCM, signatures.
    pub fn keys(&self) -> crate::hsm::Keys {
        self.shared.keys.clone()
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Submits requests from any thread. `Clone + Send + Sync`.
#[derive(Clone)]
pub struct Handle {
    shared: Arc<Shared>,
}

#[inline]
fn route(agent_hash: u64, cores: usize) -> usize {
    ((agent_hash as u128 * cores as u128) >> 64) as usize
}

impl Handle {
    /// The core that owns (tenant, agent).
    pub fn owner_core(&self, tenant: &str, agent: &str) -> usize {
        route(
            self.shared.keyed.agent(tenant, agent),
            self.shared.cores.len(),
        )
    }

    /// Puts `req` into a slot and onto a ring. `Err` is an immediate verdict.
    #[inline]
    fn submit(&self, req: &Request<'_>) -> Result<u32, Verdict> {
        let sh = &*self.shared;
        if sh.shutdown.load(Relaxed) {
            return Err(Verdict::deny(DenyReason::ShuttingDown));
        }
        let p = req.priority;
        let Some(idx) = sh.pool.acquire(p.sheddable()) else {
            sh.submit.shed[p.index()].fetch_add(1, Relaxed);
            return Err(Verdict::deny(DenyReason::Overloaded));
        };
        let slot = &sh.pool.slots[idx as usize];
        slot.state.store(CLAIMED, SeqCst);
        let give_back = |reason| {
            slot.state.store(FREE, Release);
            sh.pool.release(idx);
            Err(Verdict::deny(reason))
        };
        if sh.shutdown.load(SeqCst) {
            return give_back(DenyReason::ShuttingDown);
        }
        // SAFETY: we hold the slot in state CLAIMED: nobody else touches its buffer.
        let buf = unsafe { slot.buf_mut() };
        let len = match req.encode(buf) {
            Ok(n) => n,
            // Name the exact field over its limit when the request does not fit.
            Err(r) => return give_back(sh.limits.check(req).err().unwrap_or(r)),
        };
        let key = CacheKey::from_wire(&sh.keyed, &buf[..len], req.classification, req.tenant);
        slot.key_lo.store(key.hash as u64, Relaxed);
        slot.key_hi.store((key.hash >> 64) as u64, Relaxed);
        slot.key_tenant.store(key.tenant, Relaxed);
        let agent = sh.keyed.agent(req.tenant, req.agent);
        slot.agent.store(agent, Relaxed);
        let (kind, arg) = req.operation.code();
        slot.meta.store(
            kind as u32 | (arg as u32) << 8 | (req.classification as u32) << 24,
            Relaxed,
        );
        slot.len.store(len as u32, Relaxed);
        slot.enqueued_ns.store(now_ns(), Relaxed);
        slot.state.store(QUEUED, Release);
        let c = route(agent, sh.cores.len());
        let core = &sh.cores[c];
        if core.rings[p.index()].push(idx).is_ok() {
            fence(SeqCst);
            wake(core);
            return Ok(idx);
        }
        if !p.sheddable() && sh.overflow[p.index()].push(idx).is_ok() {
            sh.submit.overflowed[p.index()].fetch_add(1, Relaxed);
            fence(SeqCst);
            // Wake the owner and one sleeping core to steal.
            wake(core);
            if let Some(idle) = sh.cores.iter().find(|c| c.sleeping.load(Relaxed) == 1) {
                wake(idle);
            }
            return Ok(idx);
        }
        sh.submit.shed[p.index()].fetch_add(1, Relaxed);
        give_back(DenyReason::Overloaded)
    }

    /// Reads the verdict of a DONE slot and frees it.
    #[inline]
    fn take(&self, idx: u32) -> Verdict {
        let slot = &self.shared.pool.slots[idx as usize];
        // SAFETY: the caller observed DONE with acquire ordering and is the slot's waiter.
        let v = unsafe { slot.verdict() };
        slot.state.store(FREE, Release);
        self.shared.pool.release(idx);
        v
    }

    /// Waits for the verdict of a submitted slot: spin, then futex sleep, up to the timeout.
    fn wait(&self, idx: u32, submitted: u64) -> Verdict {
        let sh = &*self.shared;
        let slot = &sh.pool.slots[idx as usize];
        let spin_until = submitted + sh.wait_spin_ns;
        let mut i = 0u32;
        loop {
            if slot.state.load(Acquire) == DONE {
                return self.take(idx);
            }
            i = i.wrapping_add(1);
            if i.is_multiple_of(32) && now_ns() >= spin_until {
                break;
            }
            std::hint::spin_loop();
        }
        let deadline = submitted + sh.timeout_ns;
        match slot
            .state
            .compare_exchange(QUEUED, WAIT_THREAD, AcqRel, Acquire)
        {
            Ok(_) => {}
            Err(DONE) => return self.take(idx),
            Err(s) => debug_assert!(false, "unexpected slot state {s}"),
        }
        loop {
            let now = now_ns();
            if now >= deadline {
                match slot
                    .state
                    .compare_exchange(WAIT_THREAD, ABANDONED, AcqRel, Acquire)
                {
                    Ok(_) => {
                        sh.submit.timeouts.fetch_add(1, Relaxed);
                        return Verdict::deny(DenyReason::Timeout);
                    }
                    Err(_) => return self.take(idx), // DONE meanwhile
                }
            }
            futex::wait(
                &slot.state,
                WAIT_THREAD,
                Some(Duration::from_nanos(deadline - now)),
            );
            if slot.state.load(Acquire) == DONE {
                return self.take(idx);
            }
        }
    }

    /// Validates `req`, blocking this thread until the verdict (at most
    /// `engine.request_timeout_us`, then `Deny(Timeout)`).
    #[inline]
    pub fn validate(&self, req: &Request<'_>) -> Verdict {
        match self.submit(req) {
            Ok(idx) => self.wait(idx, now_ns()),
            Err(v) => v,
        }
    }

    /// Validates `req` without blocking: the request is submitted now, and the returned future
    /// resolves to its verdict. Works from any executor (it only uses the context's waker).
    /// Dropping the future early is safe: the core completes the request and reclaims the slot.
    pub fn validate_async(&self, req: &Request<'_>) -> ValidateFuture<'_> {
        let state = match self.submit(req) {
            Ok(idx) => FutState::Pending(idx),
            Err(v) => FutState::Ready(v),
        };
        ValidateFuture {
            handle: self,
            state,
        }
    }

    /// Validates a batch at one priority; verdicts come back in input order.
    pub fn validate_batch(&self, reqs: &[Request<'_>], priority: Priority) -> Vec<Verdict> {
        let mut out = vec![Verdict::default(); reqs.len()];
        self.validate_batch_into(reqs, priority, &mut out);
        out
    }

    /// `validate_batch` into a caller-provided slice (no allocation). Keeps up to 64 requests in
    /// flight at once so several cores work on one batch.
    ///
    /// # Panics
    /// When `out` is shorter than `reqs`.
    pub fn validate_batch_into(
        &self,
        reqs: &[Request<'_>],
        priority: Priority,
        out: &mut [Verdict],
    ) {
        assert!(
            out.len() >= reqs.len(),
            "out must hold one verdict per request"
        );
        const WINDOW: usize = 64;
        let mut pending = [(0u32, 0u64, false); WINDOW];
        for (chunk_i, chunk) in reqs.chunks(WINDOW).enumerate() {
            let base = chunk_i * WINDOW;
            for (j, r) in chunk.iter().enumerate() {
                let r = Request { priority, ..*r };
                pending[j] = match self.submit(&r) {
                    Ok(idx) => (idx, now_ns(), true),
                    Err(v) => {
                        out[base + j] = v;
                        (0, 0, false)
                    }
                };
            }
            for (j, &(idx, t, live)) in pending[..chunk.len()].iter().enumerate() {
                if live {
                    out[base + j] = self.wait(idx, t);
                }
            }
        }
    }

    /// A merged snapshot of every core's metrics.
    pub fn metrics(&self) -> Metrics {
        let sh = &*self.shared;
        let mut all = metrics::new_histogram();
        let mut m = Metrics {
            cores: sh.cores.len(),
            uptime_s: sh.started.elapsed().as_secs_f64(),
            policy_epoch: sh.epoch.load(Relaxed),
            reply_slots_free: sh.pool.free(),
            ..Metrics::default()
        };
        let (mut sum, mut max) = (0u64, 0u64);
        for (i, c) in sh.cores.iter().enumerate() {
            let cm = &c.metrics;
            let mut h = metrics::new_histogram();
            cm.latency.merge_into(&mut h);
            let (s, mx) = cm.latency_parts();
            let _ = all.add(&h);
            sum += s;
            max = max.max(mx);
            let depth = Priority::ALL.map(|p| c.rings[p.index()].len());
            for (total, d) in m.queue_depth.iter_mut().zip(depth) {
                *total += d;
            }
            m.validations += cm.processed.get();
            m.allows += cm.allows.get();
            m.allow_with += cm.allow_with.get();
            m.denies += cm.denies.get();
            m.cache_hits += cm.cache_hits.get();
            m.cache_misses += cm.cache_misses.get();
            m.cache_entries += cm.cache_entries.get();
            m.cache_evictions += cm.evictions.get();
            m.cache_expired += cm.expired.get();
            m.integrity_failures += cm.integrity_failures.get();
            m.epoch_misses += cm.epoch_misses.get();
            m.stage_panics += cm.stage_panics.get();
            m.quarantine_denials += cm.quarantine_denials.get();
            m.steals += cm.steals.get();
            m.aged += cm.aged.get();
            m.core_parks += cm.parks.get();
            m.per_core.push(CoreSnapshot {
                core: i,
                cpu: c.cpu,
                validations: cm.processed.get(),
                cache_hits: cm.cache_hits.get(),
                steals: cm.steals.get(),
                cache_entries: cm.cache_entries.get(),
                queue_depth: depth,
                latency: metrics::summarize(&h, s, mx),
            });
        }
        for p in 0..3 {
            m.overflow_depth[p] = sh.overflow[p].len();
        }
        for p in 0..Priority::COUNT {
            m.shed[p] = sh.submit.shed[p].load(Relaxed);
            m.overflowed[p] = sh.submit.overflowed[p].load(Relaxed);
        }
        m.timeouts = sh.submit.timeouts.load(Relaxed);
        let q = &sh.quarantine;
        m.quarantines_started = q.started.load(Relaxed);
        m.quarantines_released = q.released.load(Relaxed);
        m.quarantine_full = q.full.load(Relaxed);
        m.quarantined_agents = q.count(now_ns());
        if let Some(a) = &sh.audit {
            let c = &a.counters;
            m.audit = Some(metrics::AuditMetrics {
                queue_depth: a.depth(),
                queued: c.queued.load(Relaxed),
                written: c.written.load(Relaxed),
                backpressure: c.backpressure.load(Relaxed),
                write_failures: c.write_failures.load(Relaxed),
                failed_records: c.failed_records.load(Relaxed),
                checkpoints: c.checkpoints.load(Relaxed),
                syncs: c.syncs.load(Relaxed),
                healthy: a.healthy.load(Relaxed),
            });
        }
        m.hsm = sh.keys.metrics();
        m.latency = metrics::summarize(&all, sum, max);
        let lookups = m.cache_hits + m.cache_misses;
        m.cache_hit_rate = if lookups == 0 {
            0.0
        } else {
            m.cache_hits as f64 / lookups as f64
        };
        m.throughput_per_s = if m.uptime_s > 0.0 {
            m.validations as f64 / m.uptime_s
        } else {
            0.0
        };
        let (cpu, rss) = metrics::process_usage();
        m.process_cpu_s = cpu;
        m.process_rss_bytes = rss;
        m
    }
}

#[inline]
fn wake(core: &CoreShared) {
    if core.sleeping.load(Relaxed) == 1 && core.sleeping.swap(0, AcqRel) == 1 {
        futex::wake(&core.sleeping, 1);
    }
}

enum FutState {
    Pending(u32),
    Ready(Verdict),
    Finished,
}

/// The future of [`Handle::validate_async`].
pub struct ValidateFuture<'h> {
    handle: &'h Handle,
    state: FutState,
}

impl Future for ValidateFuture<'_> {
    type Output = Verdict;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Verdict> {
        match self.state {
            FutState::Finished => panic!("ValidateFuture polled after completion"),
            FutState::Ready(v) => {
                self.state = FutState::Finished;
                Poll::Ready(v)
            }
            FutState::Pending(idx) => {
                let slot = &self.handle.shared.pool.slots[idx as usize];
                let done = || {
                    // A core is between publishing and waking: it finishes in a few instructions.
                    while slot.state.load(Acquire) == WAKING {
                        std::hint::spin_loop();
                    }
                    slot.state.load(Acquire) == DONE
                };
                if done() {
                    self.state = FutState::Finished;
                    return Poll::Ready(self.handle.take(idx));
                }
                slot.waker.register(cx.waker());
                let _ = slot
                    .state
                    .compare_exchange(QUEUED, WAIT_ASYNC, AcqRel, Acquire);
                if done() {
                    self.state = FutState::Finished;
                    return Poll::Ready(self.handle.take(idx));
                }
                Poll::Pending
            }
        }
    }
}

impl Drop for ValidateFuture<'_> {
    fn drop(&mut self) {
        if let FutState::Pending(idx) = self.state {
            let slot = &self.handle.shared.pool.slots[idx as usize];
            loop {
                let cur = slot.state.load(Acquire);
                match cur {
                    DONE => {
                        let _ = self.handle.take(idx);
                        return;
                    }
                    WAKING => std::hint::spin_loop(),
                    _ => {
                        if slot
                            .state
                            .compare_exchange(cur, ABANDONED, AcqRel, Acquire)
                            .is_ok()
                        {
                            return;
                        }
                    }
                }
            }
        }
    }
}
