//! `EngineBuilder`: from a `Config` (and the caller's stages) to a running `Engine`: the policy,
//! the keys (software keystore or the HSM core), identity, the built-in stages in their order,
//! the audit log, the slots and rings, then one core per CPU. `check` runs every fallible step
//! without starting anything (`warden config`).

use super::baton::CoreCell;
use super::core::{park, CoreState, Idle};
use super::*;

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
#[derive(Default)]
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
        check_trust_capacity(&cfg, policy.as_ref())?;
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
            let identity = if cfg.identity.verifies_tokens() {
                Some(Arc::new(load_identity(&cfg, &keys)?))
            } else {
                None
            };
            let policy = policy.map(|p| {
                Arc::new(
                    crate::policy::PolicyStage::new(p, identity.clone())
                        .tokens_required(cfg.identity.require_token),
                )
            });
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
        let identity = if cfg.identity.verifies_tokens() {
            Some(Arc::new(load_identity(&cfg, &keys)?))
        } else {
            None
        };
        check_trust_capacity(&cfg, policy.as_ref())?;
        let trust = cfg.trust.enabled.then(|| {
            Arc::new(crate::trust::Trust::new(
                &cfg.trust,
                cfg.threat.deny_at.level(),
            ))
        });
        let keyed = Arc::new(crate::keyed::KeyedHash::random());
        let quarantine = Arc::new(crate::anomaly::Quarantine::new(
            cfg.anomaly.quarantine_capacity,
        ));
        let policy = policy.map(|p| {
            Arc::new(
                crate::policy::PolicyStage::new(p, identity.clone())
                    .tokens_required(cfg.identity.require_token)
                    .with_trust(trust.clone())
                    .with_standing(keyed.clone(), quarantine.clone()),
            )
        });
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
            if log.recovery.unsigned > 0 {
                eprintln!(
                    "warden audit: {}: {} records after the last signed checkpoint were unsigned (an unclean stop, or records someone appended); a record now names them before this start signs them",
                    cfg.audit.dir, log.recovery.unsigned
                );
            }
            Some((log, key))
        };
        // The SIEM forwarder (its socket opened now, so a bad target fails the build).
        let siem = if cfg.siem.syslog.is_empty() || audit_log.is_none() {
            None
        } else {
            Some(
                crate::audit::siem::Forwarder::start(&cfg.siem)
                    .map_err(|m| config_error("siem.syslog", m))?,
            )
        };
        let siem_counters = siem.as_ref().map(|f| f.counters.clone());
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
                wake_fd: std::sync::atomic::AtomicI32::new(-1),
                epoll_fd: std::sync::atomic::AtomicI32::new(-1),
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
            )
            .map_err(|m| {
                config_error(
                    "engine.reply_slots",
                    format!("{m}; lower engine.reply_slots or the limits on request size"),
                )
            })?,
            pipeline: Pipeline::new(
                builtin_stages(&cfg, n, policy.clone(), &keys, self.stages)?,
                cfg.engine.fail_mode,
            ),
            limits,
            epoch: CachePadded::new(AtomicU64::new(1)),
            shutdown: AtomicBool::new(false),
            running: AtomicUsize::new(0),
            running_futex: AtomicU32::new(0),
            cores_nice: std::sync::atomic::AtomicI32::new(0),
            submit: SubmitMetrics::default(),
            aging_ns: Priority::ALL.map(|p| rings.aging_deadline_us.get(p) * 1000),
            spin_before_park_ns: cfg.engine.spin_before_park_us * 1000,
            wait_spin_ns: cfg.engine.wait_spin_us * 1000,
            timeout_ns: cfg.engine.request_timeout_us * 1000,
            started: Instant::now(),
            config: cfg.clone(),
            keyed,
            trust,
            quarantine,
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
            ipc: std::sync::OnceLock::new(),
            fleet: Arc::new(crate::fleet::Gate::new(&cfg.fleet)),
            fleet_out: std::sync::OnceLock::new(),
            siem: siem_counters,
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
            let forwarder = siem;
            std::thread::Builder::new()
                .name("warden-audit".into())
                .spawn(move || {
                    let q = sh.audit.as_ref().expect("audit queue exists with a log");
                    crate::audit::writer::run_guarded(
                        q,
                        log,
                        key,
                        settings,
                        forwarder.as_ref(),
                        |slot, v| crate::engine::complete_audited(&sh, slot, v),
                        || sh.audit_done.load(SeqCst),
                    );
                    // The forwarder sends what it holds before the writer says it has exited.
                    drop(forwarder);
                    sh.audit_exited.store(1, SeqCst);
                    futex::wake(&sh.audit_exited, i32::MAX);
                })
                .expect("spawn the audit writer");
        }
        let tag_key = random_key();
        let (tx, rx) = flume::bounded::<(usize, Result<(), String>)>(n);
        let mut cells = Vec::with_capacity(n);
        for (i, _) in cpus.iter().enumerate() {
            let shard =
                (cfg.cache.capacity_per_core > 0).then(|| Shard::new(cfg.cache.shard(), tag_key));
            let monitor = cfg.anomaly.enabled.then(|| {
                let params = crate::anomaly::Params::new(&cfg.anomaly);
                crate::anomaly::Monitor::new(cfg.anomaly.agents_per_core, params)
            });
            cells.push(CoreCell::new(CoreState::new(
                i,
                shared.clone(),
                shard,
                monitor,
            )));
        }
        let cells: Arc<[CoreCell]> = cells.into();
        for (i, &cpu) in cpus.iter().enumerate() {
            shared.running.fetch_add(1, SeqCst);
            spawn_core(
                cells.clone(),
                i,
                cpu,
                cfg.engine.executor,
                tx.clone(),
                shared.clone(),
            );
        }
        let engine = Engine {
            shared,
            policy,
            runs: cfg.engine.caller_runs.then(|| cells.clone()),
            #[cfg(feature = "fleet")]
            fleet: std::sync::Mutex::new(None),
        };
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
        #[cfg(feature = "fleet")]
        if cfg.fleet.enabled() {
            if let Err(message) = engine.start_fleet() {
                engine.shutdown();
                return Err(config_error("fleet", message));
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
    if cfg.identity.verifies_tokens() && policy.is_none() {
        return Err(config_error(
            "identity",
            "token keys are configured but no policy (policy.file) is loaded, so no token would \
             ever be checked; load a policy, or remove the keys"
                .into(),
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
    if policy.as_ref().and_then(|p| p.identity()).is_none() {
        all.push(Arc::new(crate::policy::NoIdentityStage));
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
            Some(
                crate::source::read_text_bounded(
                    std::path::Path::new(file),
                    crate::source::limits::CATALOGUE_BYTES,
                    "the catalogue",
                )
                .map_err(|m| config_error("threat.catalogue", m))?,
            )
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
        file: "the configuration".into(),
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
            Some((sh, Some(id))) => crate::engine::hsm_verify_tag(sh, id, b, idx),
            _ => Ok(crate::hsm::service::TAG_BAD),
        }),
        resume: Box::new(move |idx, core, outcome| {
            if let Some((sh, _)) = h2.get() {
                crate::engine::hsm_resume(sh, idx, core, outcome);
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
    use crate::identity::Key;
    use crate::secrets::read_key_file;
    let id = &cfg.identity;
    let bad = |field: String, message: String| config_error(field, message);
    let read = |k: &crate::config::KeyRef, len: Option<usize>| -> Result<Vec<u8>, String> {
        if !k.file.is_empty() {
            // a public key may be read by anyone; a secret one (HMAC) only by its owner
            return match len {
                Some(_) => read_key_file(&k.file, len),
                None => crate::secrets::read_secret_key_file(&k.file, len),
            };
        }
        let v = std::env::var(&k.env)
            .map_err(|_| format!("environment variable {} is not set", k.env))?;
        crate::secrets::from_hex(v.trim())
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
    )
    .with_schemes(&cfg.inputs.allowed_schemes))
}

/// Every agent of the policy must fit in the trust table twice over (probing), or a penalty
/// could be lost for want of room and the agent read at the baseline.
fn check_trust_capacity(
    cfg: &Config,
    policy: Option<&crate::policy::Snapshot>,
) -> Result<(), BuildError> {
    match policy {
        Some(p)
            if cfg.trust.enabled
                && p.agents.len().saturating_mul(2) > cfg.trust.capacity.next_power_of_two() =>
        {
            Err(config_error(
                "trust.capacity",
                format!(
                    "{} agents in the policy need a capacity of at least {}",
                    p.agents.len(),
                    p.agents.len() * 2
                ),
            ))
        }
        _ => Ok(()),
    }
}

fn random_key() -> [u8; 32] {
    let mut k = [0u8; 32];
    if crate::secrets::random_bytes(&mut k).is_err() {
        // Fall back to a hash of time and address-space layout: still unpredictable enough for
        // an in-memory integrity key, and never all zeros.
        let seed = format!("{:?}{:p}", Instant::now(), &k);
        k = *blake3::hash(seed.as_bytes()).as_bytes();
    }
    k
}

/// The core's thread: serve and spin holding the core's baton; give it up to sleep (callers
/// may run the core meanwhile, `baton.rs`) and take it back on waking.
fn core_loop_sync(cell: &CoreCell, sh: &Shared, id: usize) {
    cell.take_for_core();
    loop {
        // SAFETY: this thread holds the baton as CORE: taken above or after the last park.
        let core = unsafe { cell.state() };
        if core.step(64) > 0 {
            continue;
        }
        match core.idle() {
            Idle::Work => {}
            Idle::Exit => {
                cell.exit();
                break;
            }
            Idle::Park(timeout) => {
                cell.release_for_park();
                let mut slept_ns = park(sh, id, timeout);
                // A caller holds the baton and nothing waits beyond what it serves: sleep again
                // (it rings the core if it leaves work behind).
                while !cell.take_after_park(sh, id) {
                    let me = &sh.cores[id];
                    me.sleeping.store(1, SeqCst);
                    std::sync::atomic::fence(SeqCst);
                    if sh.has_queued(id) || sh.shutdown.load(SeqCst) {
                        me.sleeping.store(0, SeqCst);
                        continue;
                    }
                    slept_ns = slept_ns.saturating_add(park(sh, id, timeout));
                }
                // SAFETY: the baton is ours again.
                unsafe { cell.state() }.woke(slept_ns);
            }
        }
    }
}

fn spawn_core(
    cells: Arc<[CoreCell]>,
    id: usize,
    cpu: Option<usize>,
    executor: Executor,
    ready: flume::Sender<(usize, Result<(), String>)>,
    shared: Arc<Shared>,
) {
    let nice = shared.config.engine.nice;
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
            if nice != 0 {
                // SAFETY: plain syscalls about this thread alone.
                let r = unsafe {
                    let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
                    libc::setpriority(libc::PRIO_PROCESS, tid, nice)
                };
                if r != 0 {
                    let err = std::io::Error::last_os_error();
                    let _ = ready.send((
                        id,
                        Err(format!(
                            "cannot set its nice value to {nice}: {err} (below 0 needs CAP_SYS_NICE or root; set engine.nice = 0)"
                        )),
                    ));
                    finish(&shared);
                    return;
                }
            }
            // What the kernel says this thread's nice is now (inherited, or set above).
            // SAFETY: plain syscalls about this thread alone; errno read right after.
            unsafe {
                let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
                *libc::__errno_location() = 0;
                let n = libc::getpriority(libc::PRIO_PROCESS, tid);
                if !(n == -1 && *libc::__errno_location() != 0) {
                    shared.cores_nice.store(n, SeqCst);
                }
            }
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
                            // The serving loop is the executor's only task and never yields
                            // to glommio's reactor: each reactor turn allocates timer
                            // sources, which the hot path must not. Tasks added to a core's
                            // executor later (I/O) must be polled from `idle`, off the
                            // serving path. Ready is said from inside that task, once `run`
                            // has allocated it: said before `run`, a core thread the machine
                            // had not scheduled yet made those allocations after `build`
                            // returned, in the middle of the hit path's first requests
                            // (`tests/alloc_free.rs` saw 6, 1 run in 30 beside six busy
                            // shells).
                            ex.run(async {
                                let _ = ready.send((id, Ok(())));
                                core_loop_sync(&cells[id], &shared, id)
                            });
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
                    core_loop_sync(&cells[id], &shared, id);
                }
            }
            finish(&shared);
        });
    if let Err(e) = spawned {
        shared_on_err.running.fetch_sub(1, SeqCst);
        let _ = ready_on_err.send((id, Err(format!("cannot spawn its thread: {e}"))));
    }
}
