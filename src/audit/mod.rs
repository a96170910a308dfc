//! The tamper-evident audit log (issue 6): hash-chained records in append-only segments, signed
//! checkpoints, durability modes, recovery of a torn tail, verification.
//!
//! - `record`: the frame and the chain hash (pure, no I/O);
//! - `log`: segment files (append, rotate, recover, `HEAD` anchor) and `verify`;
//! - `writer`: the bounded lock-free queue from the cores and the writer thread.
//!
//! The checkpoint key is a software Ed25519 key (`audit.signing_key`, or `DIR/signing.key`
//! created with mode 0600 on first start, its public half in `DIR/signing.pub`) until the HSM
//! core (issue 5) holds it.

pub mod log;
pub mod record;
pub(crate) mod writer;

pub use log::{archive, verify, AuditError, Bad, Head, Log, Summary};

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Allows `audit` requests when an audit log is configured: the gateway's own audit events are
/// recorded (every `audit` verdict is audited) and never cached.
pub(crate) struct AuditStage;

impl crate::stage::Stage for AuditStage {
    fn name(&self) -> &str {
        "audit"
    }
    fn handles(&self, op: crate::Operation) -> bool {
        op == crate::Operation::Audit
    }
    fn evaluate(
        &self,
        _req: &crate::Request<'_>,
        out: &mut crate::stage::Outcome,
    ) -> crate::stage::StageResult {
        out.obligations.audit_required = true;
        crate::stage::StageResult::Pass
    }
}

/// Where the signing key of `dir` lives when `audit.signing_key` is empty.
pub fn default_key_path(dir: &Path) -> PathBuf {
    dir.join("signing.key")
}

/// Loads the checkpoint signing key from `path` (32-byte seed, raw or hex), creating it (mode
/// 0600, with `signing.pub` beside it) when it does not exist.
pub fn load_or_create_key(path: &Path) -> Result<ed25519_dalek::SigningKey, AuditError> {
    let e = |m: String| AuditError {
        path: path.to_path_buf(),
        message: m,
    };
    if !path.exists() {
        return crate::secrets::create_ed25519_key(path, &path.with_extension("pub")).map_err(e);
    }
    let b = crate::secrets::read_key_file(&path.display().to_string(), Some(32)).map_err(e)?;
    let mut seed = [0u8; 32];
    seed.copy_from_slice(&b);
    let key = ed25519_dalek::SigningKey::from_bytes(&seed);
    seed.fill(0);
    Ok(key)
}

/// What signs checkpoints: a software Ed25519 key, or the keystore's signature key (an HSM's,
/// `audit.signing_key = "keystore"`).
pub enum Signer {
    Software(ed25519_dalek::SigningKey),
    Keystore(crate::hsm::Keys),
}

impl Signer {
    /// `None` when the keystore cannot sign now (its breaker is open): the checkpoint waits.
    pub fn sign(&self, message: &[u8]) -> Option<[u8; 64]> {
        match self {
            Signer::Software(k) => {
                use ed25519_dalek::Signer as _;
                Some(k.sign(message).to_bytes())
            }
            Signer::Keystore(keys) => keys.sign(message).ok()?.try_into().ok(),
        }
    }
}

impl Signer {
    /// The public half, which verifies the checkpoints.
    pub fn public_key(&self) -> Result<ed25519_dalek::VerifyingKey, String> {
        match self {
            Signer::Software(k) => Ok(k.verifying_key()),
            Signer::Keystore(keys) => match keys.public_key() {
                Ok(crate::hsm::PublicKey::Ed25519(b)) => {
                    ed25519_dalek::VerifyingKey::from_bytes(&b).map_err(|e| e.to_string())
                }
                Ok(other) => Err(format!(
                    "the keystore's signature key is {}; audit checkpoints need Ed25519",
                    other.algorithm()
                )),
                Err(err) => Err(format!("cannot read the keystore's public key: {err}")),
            },
        }
    }
}

/// The checkpoint signer `cfg` names for the log in `dir`: the keystore's signature key
/// (`signing_key = "keystore"`), or a software key file (`DIR/signing.key` by default), made
/// when it does not exist yet.
pub fn signer(
    cfg: &AuditConfig,
    dir: &Path,
    keys: &crate::hsm::Keys,
) -> Result<Signer, AuditError> {
    if cfg.signing_key == "keystore" {
        let s = Signer::Keystore(keys.clone());
        s.public_key().map_err(|m| AuditError {
            path: dir.to_path_buf(),
            message: m,
        })?;
        return Ok(s);
    }
    let path = if cfg.signing_key.is_empty() {
        default_key_path(dir)
    } else {
        PathBuf::from(&cfg.signing_key)
    };
    Ok(Signer::Software(load_or_create_key(&path)?))
}

/// Opens the log `cfg.dir` names (creating it where the directory holds none), with its
/// checkpoint signer. `DIR/signing.pub` is the key `verify` uses by default: written for a new
/// log, and a different key than the one configured is refused (the log's checkpoints were
/// signed by another).
pub fn open(cfg: &AuditConfig, keys: &crate::hsm::Keys) -> Result<(Log, Signer), AuditError> {
    let dir = Path::new(&cfg.dir);
    std::fs::create_dir_all(dir).map_err(|e| AuditError {
        path: dir.to_path_buf(),
        message: format!("cannot create: {e}"),
    })?;
    // what the directory held before this start wrote anything (a key file, say)
    let before = log::Traces::of(dir)?;
    let signer = signer(cfg, dir, keys)?;
    let pk = signer.public_key().map_err(|m| AuditError {
        path: dir.to_path_buf(),
        message: m,
    })?;
    pin_public_key(dir, &pk)?;
    let log = Log::open_with(dir, cfg.segment_bytes, &pk, &|m| signer.sign(m), before)?;
    Ok((log, signer))
}

/// Writes `DIR/signing.pub` when it is missing; refuses when it names another key.
fn pin_public_key(dir: &Path, pk: &ed25519_dalek::VerifyingKey) -> Result<(), AuditError> {
    let path = dir.join("signing.pub");
    if std::fs::symlink_metadata(&path).is_ok() {
        let have = load_public_key(&path)?;
        if have != *pk {
            return Err(AuditError {
                path,
                message: "this log's checkpoints are verified by another key than the configured audit.signing_key; use the key that signed them, or `warden audit archive` the log to begin a new one".into(),
            });
        }
        return Ok(());
    }
    std::fs::write(
        &path,
        format!("{}\n", crate::secrets::to_hex(pk.as_bytes())),
    )
    .map_err(|x| AuditError {
        path,
        message: format!("cannot write: {x}"),
    })
}

/// What a start would find in the log `cfg.dir` names, read only: `Ok` with a sentence, or the
/// error the start would stop with. For `warden config`.
pub fn check(cfg: &AuditConfig) -> Result<String, AuditError> {
    let dir = Path::new(&cfg.dir);
    if !dir.exists() {
        return Ok(format!(
            "{}: a new audit log will be created",
            dir.display()
        ));
    }
    let t = log::Traces::of(dir)?;
    if !t.segments && !t.head {
        if t.public_key {
            return Err(AuditError {
                path: dir.to_path_buf(),
                message: "holds the public key of an audit log but neither its segments nor its HEAD: the log was removed; run `warden audit archive` on it to begin a new log deliberately".into(),
            });
        }
        return Ok(format!(
            "{}: a new audit log will be created",
            dir.display()
        ));
    }
    let pk = load_public_key(&dir.join("signing.pub"))?;
    match verify(dir, &pk, |_, _| {}) {
        Ok(s) => Ok(format!(
            "{}: an intact audit log ({} events, last checkpoint {})",
            dir.display(),
            s.events,
            s.last_checkpoint_seq
        )),
        Err(b) if b.what.contains("torn record at the end") => Ok(format!(
            "{}: an audit log with a torn tail after its last checkpoint (an unclean stop), which a start cuts",
            dir.display()
        )),
        Err(b) => Err(AuditError {
            path: dir.to_path_buf(),
            message: format!("damaged: {b}; a start refuses it; run `warden audit verify` and `warden audit archive`"),
        }),
    }
}

/// Reads an Ed25519 public key (32 bytes, raw or hex).
pub fn load_public_key(path: &Path) -> Result<ed25519_dalek::VerifyingKey, AuditError> {
    let e = |m: String| AuditError {
        path: path.to_path_buf(),
        message: m,
    };
    let b = crate::secrets::read_key_file(&path.display().to_string(), Some(32)).map_err(e)?;
    let mut a = [0u8; 32];
    a.copy_from_slice(&b);
    ed25519_dalek::VerifyingKey::from_bytes(&a)
        .map_err(|x| e(format!("not an Ed25519 public key: {x}")))
}

// ---- settings (`[audit]` in the config file) ----

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
