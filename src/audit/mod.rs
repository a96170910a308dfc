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
pub mod siem;
pub(crate) mod writer;

pub use log::{verify, verify_pinned, verify_pinned_all, AuditError, Bad, Head, Log, Summary};

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
/// 0600) when it does not exist.
pub fn load_or_create_key(path: &Path) -> Result<ed25519_dalek::SigningKey, AuditError> {
    let e = |m: String| AuditError {
        path: path.to_path_buf(),
        message: m,
    };
    if std::fs::symlink_metadata(path).is_err() {
        return crate::secrets::create_ed25519_key(path, None).map_err(e);
    }
    load_own_key(path)
}

fn load_key(path: &Path) -> Result<ed25519_dalek::SigningKey, AuditError> {
    read_32(path, crate::secrets::read_secret_key_file).map(signing_key)
}

/// `DIR/signing.key`: warden's own file, read where it lies (a symlink is refused).
fn load_own_key(path: &Path) -> Result<ed25519_dalek::SigningKey, AuditError> {
    read_32(path, crate::secrets::read_own_secret_key_file).map(signing_key)
}

fn signing_key(mut seed: [u8; 32]) -> ed25519_dalek::SigningKey {
    let key = ed25519_dalek::SigningKey::from_bytes(&seed);
    seed.fill(0);
    key
}

/// A 32-byte key file read by `read`, its errors naming the file.
fn read_32(
    path: &Path,
    read: fn(&str, Option<usize>) -> Result<Vec<u8>, String>,
) -> Result<[u8; 32], AuditError> {
    let mut b = read(&path.display().to_string(), Some(32)).map_err(|m| AuditError {
        path: path.to_path_buf(),
        message: m,
    })?;
    let mut a = [0u8; 32];
    a.copy_from_slice(&b);
    b.fill(0);
    Ok(a)
}

/// An Ed25519 public key from its 32 bytes, the error naming the file.
fn verifying_key(path: &Path, b: [u8; 32]) -> Result<ed25519_dalek::VerifyingKey, AuditError> {
    ed25519_dalek::VerifyingKey::from_bytes(&b).map_err(|x| AuditError {
        path: path.to_path_buf(),
        message: format!("not an Ed25519 public key: {x}"),
    })
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
/// (`signing_key = "keystore"`), a key file `cfg.signing_key` names (which must exist), or
/// `DIR/signing.key`, which must be a regular file of warden's and is made (0600) only when
/// `may_create`: when the directory holds no log, since a new key for an existing log would
/// sign checkpoints its public key does not verify.
pub fn signer(
    cfg: &AuditConfig,
    dir: &Path,
    keys: &crate::hsm::Keys,
    may_create: bool,
) -> Result<Signer, AuditError> {
    let e = |path: &Path, message: String| AuditError {
        path: path.to_path_buf(),
        message,
    };
    if cfg.signing_key == "keystore" {
        let s = Signer::Keystore(keys.clone());
        s.public_key().map_err(|m| e(dir, m))?;
        return Ok(s);
    }
    if !cfg.signing_key.is_empty() {
        let path = Path::new(&cfg.signing_key);
        if !path.is_file() {
            return Err(e(
                path,
                "audit.signing_key names no key file; give the path of an Ed25519 seed (32 bytes, raw or hex), or leave it empty for DIR/signing.key".into(),
            ));
        }
        return Ok(Signer::Software(load_key(path)?));
    }
    let path = default_key_path(dir);
    match std::fs::symlink_metadata(&path) {
        Ok(m) if m.file_type().is_file() => Ok(Signer::Software(load_own_key(&path)?)),
        Ok(_) => Err(e(
            &path,
            "is not a regular file; warden writes only regular files here".into(),
        )),
        Err(_) if may_create => Ok(Signer::Software(load_or_create_key(&path)?)),
        Err(_) => Err(e(
            &path,
            "is missing while the directory holds an audit log: the key that signs its checkpoints is gone; restore it, or `warden audit archive` the log to begin a new one".into(),
        )),
    }
}

/// Opens the log `cfg.dir` names (creating it where the directory holds none), with its
/// checkpoint signer. `DIR/signing.pub` is the key `verify` uses by default: a different key
/// than the one configured is refused (the log's checkpoints were signed by another), and a new
/// log writes it.
pub fn open(cfg: &AuditConfig, keys: &crate::hsm::Keys) -> Result<(Log, Signer), AuditError> {
    let dir = Path::new(&cfg.dir);
    std::fs::create_dir_all(dir).map_err(|e| AuditError {
        path: dir.to_path_buf(),
        message: format!("cannot create: {e}"),
    })?;
    // what the directory held before this start wrote anything
    let before = log::Traces::of(dir)?;
    let fresh = !(before.segments || before.head || before.public_key || before.key);
    let signer = signer(cfg, dir, keys, fresh)?;
    let pk = signer.public_key().map_err(|m| AuditError {
        path: dir.to_path_buf(),
        message: m,
    })?;
    let pub_path = dir.join("signing.pub");
    if before.public_key && load_public_key_own(&pub_path)? != pk {
        return Err(AuditError {
            path: pub_path,
            message: "this log's checkpoints are verified by another key than the configured audit.signing_key; use the key that signed them, or `warden audit archive` the log to begin a new one".into(),
        });
    }
    let log = Log::open_with(dir, cfg.segment_bytes, &pk, &|m| signer.sign(m), before)?;
    if std::fs::symlink_metadata(&pub_path).is_err() {
        // the log verified with this key: put its public half back
        log::write_new(
            &pub_path,
            format!("{}\n", crate::secrets::to_hex(pk.as_bytes())).as_bytes(),
        )?;
    }
    Ok((log, signer))
}

/// `DIR/signing.pub`, which must be a regular file (warden's own, not a link elsewhere): the
/// key a log's own directory names, as `audit verify` and `audit tail` read it by default.
pub fn load_public_key_own(path: &Path) -> Result<ed25519_dalek::VerifyingKey, AuditError> {
    verifying_key(path, read_32(path, crate::secrets::read_own_key_file)?)
}

/// Moves the log `cfg.dir` names aside, as it is, into `DIR/archive-<time>/`, and begins a new
/// log whose first record names the archive and its digest (`verify` checks that it is still
/// there, unchanged). Signs the new log with the configured key, or `DIR/signing.key` (made
/// when missing). Refuses while another process writes the log. Returns the archive's path.
pub fn archive(cfg: &AuditConfig, keys: &crate::hsm::Keys) -> Result<PathBuf, AuditError> {
    let dir = Path::new(&cfg.dir);
    if !dir.is_dir() {
        return Err(AuditError {
            path: dir.to_path_buf(),
            message: "is not a directory".into(),
        });
    }
    let lock = log::lock(dir)?;
    let (to, origin) = log::move_aside(dir)?;
    let signer = signer(cfg, dir, keys, true)?;
    let pk = signer.public_key().map_err(|m| AuditError {
        path: dir.to_path_buf(),
        message: m,
    })?;
    drop(Log::create(
        dir,
        cfg.segment_bytes,
        &pk,
        &|m| signer.sign(m),
        Some(&origin),
        lock,
    )?);
    Ok(to)
}

/// What a start would find in the log `cfg.dir` names, read only: `Ok` with a sentence, or the
/// error the start would stop with. For `warden config`.
pub fn check(cfg: &AuditConfig) -> Result<String, AuditError> {
    let dir = Path::new(&cfg.dir);
    let e = |path: &Path, message: String| AuditError {
        path: path.to_path_buf(),
        message,
    };
    // the key a start would sign with, read only (a start makes DIR/signing.key only for a
    // directory that holds no log)
    if !cfg.signing_key.is_empty() && cfg.signing_key != "keystore" {
        let path = Path::new(&cfg.signing_key);
        if !path.is_file() {
            return Err(e(path, "audit.signing_key names no key file".into()));
        }
        load_key(path)?;
    }
    match std::fs::metadata(dir) {
        Err(_) => {
            // the nearest directory that exists must let this process create the log in it
            let mut up = dir.parent();
            while let Some(p) = up {
                if p.as_os_str().is_empty() || p.exists() {
                    break;
                }
                up = p.parent();
            }
            let base = match up {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            if !base.is_dir() || !writable(base) {
                return Err(e(
                    dir,
                    format!(
                        "cannot be created: {} is not a directory this process may write",
                        base.display()
                    ),
                ));
            }
            return Ok(format!(
                "{}: a new audit log will be created",
                dir.display()
            ));
        }
        Ok(m) if !m.is_dir() => return Err(e(dir, "is not a directory".into())),
        Ok(_) if !writable(dir) => {
            return Err(e(dir, "is not a directory this process may write".into()))
        }
        Ok(_) => {}
    }
    let t = log::Traces::of(dir)?;
    let tmp = dir.join("HEAD.tmp");
    if std::fs::symlink_metadata(&tmp).is_ok_and(|m| !m.file_type().is_file()) {
        return Err(e(
            &tmp,
            "is not a regular file, so a start could not record its checkpoints through it; remove it".into(),
        ));
    }
    if !t.segments && !t.head {
        if t.public_key || t.key {
            return Err(e(
                dir,
                "holds the key of an audit log but neither its segments nor its HEAD: the log was removed; run `warden audit archive` on it to begin a new log deliberately".into(),
            ));
        }
        return Ok(format!(
            "{}: a new audit log will be created",
            dir.display()
        ));
    }
    if cfg.signing_key.is_empty() && !t.key {
        return Err(e(
            &default_key_path(dir),
            "is missing while the directory holds an audit log; restore it".into(),
        ));
    }
    let pub_path = dir.join("signing.pub");
    let pk = load_public_key_own(&pub_path)?;
    // the software key a start would sign with must be the one the log's checkpoints verify
    // by (the keystore's key is checked at start, where the keystore is open)
    let signing = match cfg.signing_key.as_str() {
        "keystore" => None,
        "" => Some(load_own_key(&default_key_path(dir))?),
        file => Some(load_key(Path::new(file))?),
    };
    if signing.is_some_and(|k| k.verifying_key() != pk) {
        return Err(e(
            &pub_path,
            "this log's checkpoints are verified by another key than the one a start would sign with; use the key that signed them, or `warden audit archive` the log to begin a new one".into(),
        ));
    }
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
        Err(b) => Err(e(
            dir,
            format!("damaged: {b}; a start refuses it; run `warden audit verify` and `warden audit archive`"),
        )),
    }
}

/// Whether this process may create files in `dir`: access(2) says so (W_OK and X_OK), and the
/// file system is neither mounted read-only nor a kernel pseudo file system (proc, sysfs,
/// cgroup), where access(2) tells root yes and a create still fails.
fn writable(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: a valid NUL-terminated path; access reads it and nothing else.
    if unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) } != 0 {
        return false;
    }
    // SAFETY: statfs writes into the zeroed struct we own and reads the path only.
    let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c.as_ptr(), &mut fs) } != 0 {
        return false;
    }
    const PSEUDO: [i64; 4] = [0x9fa0, 0x6265_6572, 0x2762_3f4b, 0x6367_7270]; // proc, sysfs, cgroup, cgroup2
                                                                              // SAFETY: as above, for statvfs.
    let mut vfs: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut vfs) } != 0 {
        return false;
    }
    let read_only = vfs.f_flag & libc::ST_RDONLY != 0;
    #[allow(clippy::unnecessary_cast)] // f_type's width differs between targets
    let kind = fs.f_type as i64;
    !read_only && !PSEUDO.contains(&kind)
}

/// Reads an Ed25519 public key (32 bytes, raw or hex).
pub fn load_public_key(path: &Path) -> Result<ed25519_dalek::VerifyingKey, AuditError> {
    verifying_key(path, read_32(path, crate::secrets::read_key_file)?)
}

// ---- settings (`[audit]` in the config file) ----

/// When an audit record is acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
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

#[derive(Clone, Debug, PartialEq, Deserialize, serde::Serialize)]
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
