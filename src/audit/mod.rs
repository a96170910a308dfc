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

pub use log::{verify, AuditError, Bad, Log, Summary};

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
        return crate::identity::create_ed25519_key(path, &path.with_extension("pub")).map_err(e);
    }
    let b = crate::identity::read_key_file(&path.display().to_string(), Some(32)).map_err(e)?;
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

/// The keystore as the checkpoint signer: its signature key must be Ed25519 (what `verify`
/// checks). Writes `<dir>/signing.pub` with its public key, or, when one is there already,
/// refuses a different key (that log's checkpoints were signed by another).
pub fn keystore_signer(dir: &Path, keys: &crate::hsm::Keys) -> Result<Signer, AuditError> {
    let path = dir.join("signing.pub");
    let e = |m: String| AuditError {
        path: path.clone(),
        message: m,
    };
    let pk = match keys.public_key() {
        Ok(crate::hsm::PublicKey::Ed25519(b)) => b,
        Ok(other) => {
            return Err(e(format!(
                "the keystore's signature key is {}; audit checkpoints need Ed25519",
                other.algorithm()
            )))
        }
        Err(err) => return Err(e(format!("cannot read the keystore's public key: {err}"))),
    };
    if path.exists() {
        let have = load_public_key(&path)?;
        if have.to_bytes() != pk {
            return Err(e(
                "this log's checkpoints are verified by another key than the keystore's; use a new audit.dir for a new key".into(),
            ));
        }
    } else {
        std::fs::write(&path, format!("{}\n", crate::identity::to_hex(&pk)))
            .map_err(|x| e(format!("cannot write: {x}")))?;
    }
    Ok(Signer::Keystore(keys.clone()))
}

/// Reads an Ed25519 public key (32 bytes, raw or hex).
pub fn load_public_key(path: &Path) -> Result<ed25519_dalek::VerifyingKey, AuditError> {
    let e = |m: String| AuditError {
        path: path.to_path_buf(),
        message: m,
    };
    let b = crate::identity::read_key_file(&path.display().to_string(), Some(32)).map_err(e)?;
    let mut a = [0u8; 32];
    a.copy_from_slice(&b);
    ed25519_dalek::VerifyingKey::from_bytes(&a)
        .map_err(|x| e(format!("not an Ed25519 public key: {x}")))
}
