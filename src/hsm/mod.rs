//! Keys: the HSM core (PKCS#11 through cryptoki, on a thread of its own) and the software
//! keystore that stands in for it when no module is configured (the embedded default).
//!
//! warden needs three keys, found by label: an HMAC-SHA256 key that tags credential tokens, an
//! AES-256 key that seals data (`encrypt`, `decrypt`), and a signature key (Ed25519, or ECDSA
//! P-256 where the token has no Ed25519) for audit checkpoints and token issuing.
//!
//! - `backend.rs`: the `Backend` trait both keystores implement (the swappable engine);
//! - `soft.rs`: the software keystore (a 0600 file, or keys made in memory at start);
//! - `pkcs11.rs`: the PKCS#11 backend (module, token, sessions, login, key lookup, operations);
//! - `service.rs`: the HSM core thread (bounded queue, batches, circuit breaker, metrics) and
//!   `Keys`, the handle every caller uses.
//!
//! Invariants:
//! - the hot path never calls PKCS#11: a core hands a token tag to the HSM core over a bounded
//!   queue and serves other requests until the answer comes back on its resume ring;
//! - with the breaker open, HSM-dependent work is refused at once (`HsmUnavailable`); nothing
//!   else in the engine notices;
//! - secret key material never leaves the token (PKCS#11) and is never formatted; the PIN comes
//!   from an environment variable or a file, is zeroized after login and never logged.

pub mod backend;
pub mod pkcs11;
pub mod service;
pub mod soft;

pub use backend::{Backend, Fault, KeyKind, PublicKey};
pub use service::{BreakerState, Keys};

use crate::types::Classification;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

/// Why a key operation was not done.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HsmError {
    /// The HSM is down (breaker open), its queue is full, or the call timed out; retry later.
    Unavailable(String),
    /// The software keystore refuses data classified at or above `hsm.require_hsm_at`.
    HsmRequired(Classification),
    /// A tag, signature or ciphertext did not verify.
    Verification,
    /// The input is not what the operation takes (sealed data shorter than nonce and tag).
    Malformed(&'static str),
}

impl std::fmt::Display for HsmError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HsmError::Unavailable(why) => write!(f, "HSM unavailable: {why}"),
            HsmError::HsmRequired(c) => write!(
                f,
                "data classified {} needs the HSM (hsm.require_hsm_at), but no PKCS#11 module is configured (hsm.module)",
                c.name()
            ),
            HsmError::Verification => f.write_str("verification failed"),
            HsmError::Malformed(what) => write!(f, "malformed input: {what}"),
        }
    }
}
impl std::error::Error for HsmError {}

/// Bytes of the AES-GCM nonce that starts sealed data.
pub const NONCE_BYTES: usize = 12;
/// Bytes of the AES-GCM tag that ends sealed data.
pub const TAG_BYTES: usize = 16;

/// Key labels (from `[hsm]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Labels {
    pub hmac: String,
    pub data: String,
    pub signing: String,
}

impl Labels {
    pub fn of(&self, k: KeyKind) -> &str {
        match k {
            KeyKind::Hmac => &self.hmac,
            KeyKind::Data => &self.data,
            KeyKind::Signing => &self.signing,
        }
    }
}

/// Reads the PIN: from the environment variable `env` if set, else from `file`. The caller
/// zeroizes the result; errors never contain the PIN.
pub fn read_pin(env: &str, file: &str) -> Result<zeroize::Zeroizing<String>, String> {
    if !env.is_empty() {
        if let Ok(v) = std::env::var(env) {
            return Ok(zeroize::Zeroizing::new(v.trim().to_string()));
        }
    }
    if !file.is_empty() {
        let raw = zeroize::Zeroizing::new(crate::source::read_text_bounded(
            std::path::Path::new(file),
            crate::source::limits::SECRET_BYTES,
            "the PIN file (hsm.pin_file)",
        )?);
        return Ok(zeroize::Zeroizing::new(raw.trim().to_string()));
    }
    Err(format!(
        "no PIN: set the environment variable {} (hsm.pin_env) or hsm.pin_file",
        if env.is_empty() { "<unset>" } else { env }
    ))
}

/// Starts the keystore `cfg` names: the software keystore (no `module`), or the HSM core around
/// the PKCS#11 module, pinned to a CPU outside `core_cpus` when one is free. Waits for the HSM
/// core's first connection attempt and returns its fault, if any (the breaker is then open and
/// probing). `tags` lets the HSM core serve core token tags (the engine's).
pub(crate) fn start(
    cfg: &HsmConfig,
    core_cpus: &[usize],
    tags: Option<service::TagServer>,
) -> Result<(Keys, Option<String>), String> {
    let require = cfg.require_hsm_at();
    if cfg.module.is_empty() {
        let soft = if cfg.keystore_file.is_empty() {
            soft::SoftKeys::ephemeral()
        } else {
            soft::SoftKeys::open_or_create(std::path::Path::new(&cfg.keystore_file))
        }?;
        return Ok((Keys::soft(Arc::new(soft), require), None));
    }
    let cpu = if cfg.pin {
        crate::sync::available_cpus()
            .into_iter()
            .find(|c| !core_cpus.contains(c))
    } else {
        None
    };
    let settings = service::ServiceSettings {
        queue_capacity: cfg.queue_capacity,
        batch_size: cfg.batch_size,
        timeout_ns: cfg.timeout_us * 1000,
        retry_ns: cfg.retry_ms * 1_000_000,
        max_retry_ns: cfg.max_retry_ms * 1_000_000,
        spin_ns: cfg.spin_us * 1000,
        cpu,
    };
    let mut backend = Box::new(pkcs11::Pkcs11Backend::new(cfg.pkcs11()));
    backend.reinit_when_missing = cfg.reinitialize_on_missing_token;
    let (client, ready) = service::spawn(backend, settings, tags);
    let first = match ready.recv_timeout(Duration::from_secs(30)) {
        Ok(Ok(())) => None,
        Ok(Err(why)) => Some(why),
        Err(_) => Some("the HSM core did not connect within 30 s".into()),
    };
    Ok((Keys::hsm(client, require), first))
}

/// Opens the keys `cfg` names without an engine (the CLI's `token issue --keystore` and
/// `hsm status`). With a module, an HSM core thread serves them until the returned `Keys` and
/// every clone of it are dropped.
pub fn open(cfg: &HsmConfig) -> Result<(Keys, Option<String>), String> {
    start(cfg, &[], None)
}

/// Creates the keys warden needs on the token `cfg` names, where missing (idempotent). Returns
/// per key: kind, label, created now.
pub fn init(cfg: &HsmConfig) -> Result<Vec<(&'static str, String, bool)>, String> {
    if cfg.module.is_empty() {
        return Err("hsm.module is empty: `hsm init` creates keys on a PKCS#11 token".into());
    }
    pkcs11::Pkcs11Backend::new(cfg.pkcs11())
        .init_keys()
        .map_err(|f| match f {
            Fault::Down(w) => w,
            Fault::Refused(e) => e.to_string(),
        })
}

/// What `warden hsm status` reports.
#[derive(Clone, Debug, Default)]
pub struct Status {
    pub backend: &'static str,
    /// Module, library, slot and token (PKCS#11), or the keystore file (software).
    pub details: Vec<(String, String)>,
    /// (kind, label, present)
    pub keys: Vec<(&'static str, String, bool)>,
    /// Median time of an HMAC sign plus verify through the keystore, nanoseconds.
    pub test_op_ns: Option<u64>,
    /// Why it is not usable (`None`: usable).
    pub problem: Option<String>,
}

/// Inspects the keystore `cfg` names and times a test operation through it.
pub fn status(cfg: &HsmConfig) -> Status {
    let mut st = Status {
        backend: if cfg.module.is_empty() {
            "software"
        } else {
            "pkcs11"
        },
        ..Status::default()
    };
    if cfg.module.is_empty() {
        st.details.push((
            "keystore".into(),
            if cfg.keystore_file.is_empty() {
                "memory (hsm.keystore_file is empty: keys made at start)".into()
            } else {
                cfg.keystore_file.clone()
            },
        ));
    } else {
        match pkcs11::Pkcs11Backend::new(cfg.pkcs11()).report() {
            Ok(r) => {
                st.details
                    .push(("module".into(), format!("{} ({})", r.module, r.library)));
                st.details.push((
                    "token".into(),
                    format!(
                        "{} (slot {}, {} {})",
                        r.token_label, r.slot, r.manufacturer, r.model
                    ),
                ));
                if let Some(a) = r.signing_algorithm {
                    st.details.push(("signing algorithm".into(), a.into()));
                }
                st.keys = r.keys;
                if let Some((k, l, _)) = st.keys.iter().find(|k| !k.2) {
                    st.problem = Some(format!(
                        "the {k} key `{l}` is missing: run `warden hsm init`"
                    ));
                }
            }
            Err(f) => {
                st.problem = Some(match f {
                    Fault::Down(w) => w,
                    Fault::Refused(e) => e.to_string(),
                });
                return st;
            }
        }
    }
    if st.problem.is_some() {
        return st;
    }
    match open(cfg) {
        Ok((_, Some(fault))) => st.problem = Some(fault),
        Ok((keys, None)) => {
            let mut times = Vec::with_capacity(101);
            for _ in 0..101 {
                let t0 = std::time::Instant::now();
                let r = keys
                    .hmac_sign(b"warden hsm status")
                    .and_then(|t| keys.hmac_verify(b"warden hsm status", &t));
                if let Err(e) = r {
                    st.problem = Some(format!("test operation failed: {e}"));
                    return st;
                }
                times.push(t0.elapsed().as_nanos() as u64);
            }
            times.sort_unstable();
            st.test_op_ns = Some(times[50]);
            keys.shutdown();
        }
        Err(e) => st.problem = Some(e),
    }
    st
}

// ---- settings (`[hsm]` in the config file) ----

/// Keys: a PKCS#11 token served by the HSM core, or the software keystore.
#[derive(Clone, Debug, PartialEq, Deserialize, serde::Serialize)]
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
