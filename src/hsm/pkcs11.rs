//! The PKCS#11 backend (cryptoki): module, token, sessions, login, keys by label, operations.
//!
//! A module is loaded and `C_Initialize`d once per process and kept (a process-wide registry),
//! so several engines, `warden hsm status` and tests share it without one finalizing under
//! another. Every failure that says the device, module, session or login is gone is a
//! `Fault::Down` (the breaker opens); a bad tag or ciphertext is `Fault::Refused`.

use super::backend::{Backend, Fault, KeyKind, PublicKey};
use super::{HsmError, Labels};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error, RvError};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use std::sync::OnceLock;

/// Where the token is and how to log in (from `[hsm]`).
#[derive(Clone, Debug)]
pub struct Pkcs11Settings {
    pub module: String,
    pub token_label: String,
    /// The slot to use; `None`: the one whose token has `token_label`.
    pub slot_id: Option<u64>,
    pub pin_env: String,
    pub pin_file: String,
    pub sessions: usize,
    pub labels: Labels,
}

/// DER of the Ed25519 curve OID (1.3.101.112) and of P-256 (1.2.840.10045.3.1.7).
const ED25519_PARAMS: [u8; 5] = [0x06, 0x03, 0x2b, 0x65, 0x70];
const P256_PARAMS: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// Loaded modules by path, initialized once and never unloaded (a lock-free map; only
/// connecting touches it).
fn modules() -> &'static papaya::HashMap<String, Pkcs11> {
    static MODULES: OnceLock<papaya::HashMap<String, Pkcs11>> = OnceLock::new();
    MODULES.get_or_init(papaya::HashMap::new)
}

/// The module at `path`, loaded and initialized once per process. (Two threads loading it at
/// once both succeed: the second `C_Initialize` says already initialized, one entry is kept.)
pub fn module(path: &str) -> Result<Pkcs11, String> {
    let m = modules().pin();
    if let Some(ctx) = m.get(path) {
        return Ok(ctx.clone());
    }
    let ctx = Pkcs11::new(path).map_err(|e| format!("cannot load PKCS#11 module {path}: {e}"))?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(format!("C_Initialize of {path} failed: {e}")),
    }
    Ok(m.get_or_insert(path.to_string(), ctx).clone())
}

fn down(what: &str, e: Error) -> Fault {
    Fault::Down(format!("{what}: {e}"))
}

/// Classifies an operation's error: the device's fault, or a refusal on the input's merits.
fn op_fault(what: &str, e: Error, refused: HsmError) -> Fault {
    match e {
        Error::Pkcs11(
            RvError::SignatureInvalid
            | RvError::SignatureLenRange
            | RvError::EncryptedDataInvalid
            | RvError::EncryptedDataLenRange,
            _,
        ) => Fault::Refused(refused),
        Error::Pkcs11(RvError::DataLenRange | RvError::DataInvalid, _) => Fault::Refused(
            HsmError::Malformed("input length out of the mechanism's range"),
        ),
        e => down(what, e),
    }
}

struct Conn {
    slot: Slot,
    sessions: Vec<Session>,
    next: usize,
    hmac: ObjectHandle,
    data: ObjectHandle,
    sign: ObjectHandle,
    public: PublicKey,
}

pub struct Pkcs11Backend {
    settings: Pkcs11Settings,
    conn: Option<Conn>,
    /// Whether a probe that finds no token may finalize and initialize the module again (it
    /// closes every session of this process on the module; see `reinitialize`).
    pub reinit_when_missing: bool,
}

/// What `status` found on the token.
#[derive(Clone, Debug, Default)]
pub struct TokenReport {
    pub module: String,
    pub library: String,
    pub slot: u64,
    pub token_label: String,
    pub manufacturer: String,
    pub model: String,
    /// (kind, label, found)
    pub keys: Vec<(&'static str, String, bool)>,
    pub signing_algorithm: Option<&'static str>,
}

/// Finalizes and initializes the module again: a module that only scans its tokens at
/// `C_Initialize` (SoftHSM2) sees a token that came back only this way. Every session of this
/// process on that module closes; their owners' breakers reconnect them.
pub fn reinitialize(path: &str) -> Result<(), String> {
    let m = modules().pin();
    let Some(ctx) = m.get(path) else {
        return Ok(());
    };
    let _ = ctx.clone().finalize();
    ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .map_err(|e| format!("C_Initialize of {path} failed: {e}"))
}

/// The slot `st` names: by id (its token's label must then match a non-empty `token_label`),
/// or by the token's label.
fn find_token(ctx: &Pkcs11, st: &Pkcs11Settings) -> Result<Slot, Fault> {
    let Some(id) = st.slot_id else {
        return find_slot(ctx, &st.token_label);
    };
    let slots = ctx
        .get_slots_with_token()
        .map_err(|e| down("C_GetSlotList", e))?;
    let slot = slots
        .into_iter()
        .find(|s| s.id() == id)
        .ok_or_else(|| Fault::Down(format!("{NO_TOKEN} in slot {id} (hsm.slot_id)")))?;
    if !st.token_label.is_empty() {
        let info = ctx
            .get_token_info(slot)
            .map_err(|e| down("C_GetTokenInfo", e))?;
        if info.label().trim_end() != st.token_label {
            return Err(Fault::Down(format!(
                "slot {id} (hsm.slot_id) holds token `{}`, not `{}` (hsm.token_label)",
                info.label().trim_end(),
                st.token_label
            )));
        }
    }
    Ok(slot)
}

/// How a fault that found no token starts (`token_missing`).
const NO_TOKEN: &str = "no token";

/// Whether `f` says the token is not there at all (so re-initializing the module may find it
/// again), as opposed to a slot holding another token or a module error.
fn token_missing(f: &Fault) -> bool {
    matches!(f, Fault::Down(w) if w.starts_with(NO_TOKEN))
}

/// Finds the slot whose token has `label`.
pub fn find_slot(ctx: &Pkcs11, label: &str) -> Result<Slot, Fault> {
    let slots = ctx
        .get_slots_with_token()
        .map_err(|e| down("C_GetSlotList", e))?;
    let mut seen = Vec::new();
    let mut found = Vec::new();
    let mut unreadable = Vec::new();
    for s in slots {
        match ctx.get_token_info(s) {
            Ok(info) => {
                let l = info.label().trim_end().to_string();
                if l == label {
                    found.push(s);
                } else if !l.is_empty() {
                    // a slot with an uninitialised token has an empty label: not worth naming
                    seen.push(l);
                }
            }
            // Named in the error: the token sought may be the one that could not be read (a
            // token file rewritten by another process at that moment, say).
            Err(e) => unreadable.push(format!("slot {}: C_GetTokenInfo: {e}", s.id())),
        }
    }
    match found.as_slice() {
        [one] => Ok(*one),
        [] => Err(Fault::Down(format!(
            "{NO_TOKEN} labelled `{label}` (hsm.token_label); {}. Check that the token was made (for SoftHSM2: `softhsm2-util --show-slots`, or `tools/softhsm.sh demo DIR`) and that the module can find it (SoftHSM2 reads its token directory from the SOFTHSM2_CONF environment variable: did you `eval` what the script printed?)",
            if seen.is_empty() {
                "the module shows no initialised token".to_string()
            } else {
                format!("tokens present: {}", seen.join(", "))
            },
        ) + &if unreadable.is_empty() {
            String::new()
        } else {
            format!(
                ". Some slots could not be read, and the token may be among them: {}",
                unreadable.join("; ")
            )
        })),
        _ => Err(Fault::Down(format!(
            "{} tokens are labelled `{label}` (hsm.token_label); give hsm.slot_id to choose one",
            found.len()
        ))),
    }
}

fn find_key(s: &Session, class: ObjectClass, label: &str) -> Result<Option<ObjectHandle>, Fault> {
    let found = s
        .find_objects(&[
            Attribute::Class(class),
            Attribute::Label(label.as_bytes().to_vec()),
        ])
        .map_err(|e| down("C_FindObjects", e))?;
    Ok(found.into_iter().next())
}

fn public_of(s: &Session, public: ObjectHandle) -> Result<PublicKey, Fault> {
    let attrs = s
        .get_attributes(public, &[AttributeType::KeyType, AttributeType::EcPoint])
        .map_err(|e| down("C_GetAttributeValue", e))?;
    let mut kt = None;
    let mut point = None;
    for a in attrs {
        match a {
            Attribute::KeyType(k) => kt = Some(k),
            Attribute::EcPoint(p) => point = Some(p),
            _ => {}
        }
    }
    let p = point.ok_or_else(|| Fault::Down("signing key has no CKA_EC_POINT".into()))?;
    // CKA_EC_POINT is a DER OCTET STRING around the point (some modules give the bare point).
    let raw = match p.as_slice() {
        [0x04, n, rest @ ..] if *n as usize == rest.len() => rest.to_vec(),
        [0x04, 0x81, n, rest @ ..] if *n as usize == rest.len() => rest.to_vec(),
        other => other.to_vec(),
    };
    match kt {
        Some(k) if k == KeyType::EC_EDWARDS => {
            let b: [u8; 32] = raw
                .as_slice()
                .try_into()
                .map_err(|_| Fault::Down(format!("Ed25519 public key of {} bytes", raw.len())))?;
            Ok(PublicKey::Ed25519(b))
        }
        _ => Ok(PublicKey::P256(raw)),
    }
}

impl Pkcs11Backend {
    pub fn new(settings: Pkcs11Settings) -> Pkcs11Backend {
        Pkcs11Backend {
            settings,
            conn: None,
            reinit_when_missing: false,
        }
    }

    fn open(&self, rw: bool) -> Result<(Pkcs11, Slot, Vec<Session>), Fault> {
        let st = &self.settings;
        let ctx = module(&st.module).map_err(Fault::Down)?;
        let slot = match find_token(&ctx, st) {
            Ok(s) => s,
            // The token is gone: perhaps it came back and the module has not seen it yet.
            Err(f) if self.reinit_when_missing && token_missing(&f) => {
                reinitialize(&st.module).map_err(Fault::Down)?;
                find_token(&ctx, st)?
            }
            Err(f) => return Err(f),
        };
        let mut sessions = Vec::with_capacity(st.sessions.max(1));
        for _ in 0..st.sessions.max(1) {
            let s = if rw {
                ctx.open_rw_session(slot)
            } else {
                ctx.open_ro_session(slot)
            }
            .map_err(|e| down("C_OpenSession", e))?;
            sessions.push(s);
        }
        let pin = super::read_pin(&st.pin_env, &st.pin_file).map_err(Fault::Down)?;
        let secret = cryptoki::types::AuthPin::from(pin.as_str().to_string());
        drop(pin);
        // Login state is per token and application: one login serves every session.
        match sessions[0].login(UserType::User, Some(&secret)) {
            Ok(()) | Err(Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(Error::Pkcs11(RvError::PinIncorrect, _)) => {
                return Err(Fault::Down(format!(
                    "login to token `{}` refused: wrong PIN (hsm.pin_env / hsm.pin_file)",
                    st.token_label
                )))
            }
            Err(e) => return Err(down("C_Login", e)),
        }
        Ok((ctx, slot, sessions))
    }

    /// Creates the keys warden needs that the token lacks (idempotent). Returns, per key, its
    /// label and whether it was created now.
    pub fn init_keys(&mut self) -> Result<Vec<(&'static str, String, bool)>, Fault> {
        self.conn = None;
        let (_ctx, _slot, sessions) = self.open(true)?;
        let s = &sessions[0];
        let l = self.settings.labels.clone();
        let mut report = Vec::new();
        let label = |x: &str| Attribute::Label(x.as_bytes().to_vec());
        let gen_err = |e| down("C_GenerateKey", e);
        // HMAC-SHA256 key: a 32-byte generic secret that never leaves the token.
        let created = if find_key(s, ObjectClass::SECRET_KEY, &l.hmac)?.is_none() {
            s.generate_key(
                &Mechanism::GenericSecretKeyGen,
                &[
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::KeyType(KeyType::GENERIC_SECRET),
                    Attribute::ValueLen(32.into()),
                    Attribute::Token(true),
                    Attribute::Private(true),
                    Attribute::Sensitive(true),
                    Attribute::Extractable(false),
                    Attribute::Sign(true),
                    Attribute::Verify(true),
                    label(&l.hmac),
                ],
            )
            .map_err(gen_err)?;
            true
        } else {
            false
        };
        report.push((KeyKind::Hmac.name(), l.hmac.clone(), created));
        let created = if find_key(s, ObjectClass::SECRET_KEY, &l.data)?.is_none() {
            s.generate_key(
                &Mechanism::AesKeyGen,
                &[
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::KeyType(KeyType::AES),
                    Attribute::ValueLen(32.into()),
                    Attribute::Token(true),
                    Attribute::Private(true),
                    Attribute::Sensitive(true),
                    Attribute::Extractable(false),
                    Attribute::Encrypt(true),
                    Attribute::Decrypt(true),
                    label(&l.data),
                ],
            )
            .map_err(gen_err)?;
            true
        } else {
            false
        };
        report.push((KeyKind::Data.name(), l.data.clone(), created));
        let created = if find_key(s, ObjectClass::PRIVATE_KEY, &l.signing)?.is_none() {
            let private = |l: &str| {
                vec![
                    Attribute::Token(true),
                    Attribute::Private(true),
                    Attribute::Sensitive(true),
                    Attribute::Extractable(false),
                    Attribute::Sign(true),
                    Attribute::Label(l.as_bytes().to_vec()),
                ]
            };
            let public = |params: &[u8], l: &str| {
                vec![
                    Attribute::Token(true),
                    Attribute::Private(false),
                    Attribute::Verify(true),
                    Attribute::EcParams(params.to_vec()),
                    Attribute::Label(l.as_bytes().to_vec()),
                ]
            };
            // Ed25519 where the token has it, else ECDSA P-256.
            let ed = s.generate_key_pair(
                &Mechanism::EccEdwardsKeyPairGen,
                &public(&ED25519_PARAMS, &l.signing),
                &private(&l.signing),
            );
            if ed.is_err() {
                s.generate_key_pair(
                    &Mechanism::EccKeyPairGen,
                    &public(&P256_PARAMS, &l.signing),
                    &private(&l.signing),
                )
                .map_err(|e| down("C_GenerateKeyPair", e))?;
            }
            true
        } else {
            false
        };
        report.push((KeyKind::Signing.name(), l.signing.clone(), created));
        Ok(report)
    }

    /// Module, token and keys, for `warden hsm status`.
    pub fn report(&mut self) -> Result<TokenReport, Fault> {
        let st = self.settings.clone();
        let ctx = module(&st.module).map_err(Fault::Down)?;
        let lib = ctx.get_library_info().map_err(|e| down("C_GetInfo", e))?;
        let slot = find_token(&ctx, &st)?;
        let ti = ctx
            .get_token_info(slot)
            .map_err(|e| down("C_GetTokenInfo", e))?;
        let mut r = TokenReport {
            module: st.module.clone(),
            library: format!(
                "{} {}",
                lib.manufacturer_id().trim_end(),
                lib.library_description().trim_end()
            ),
            slot: slot.id(),
            token_label: ti.label().trim_end().to_string(),
            manufacturer: ti.manufacturer_id().trim_end().to_string(),
            model: ti.model().trim_end().to_string(),
            ..TokenReport::default()
        };
        let (_c, _s, sessions) = self.open(false)?;
        let s = &sessions[0];
        for (kind, class, label) in [
            (KeyKind::Hmac, ObjectClass::SECRET_KEY, &st.labels.hmac),
            (KeyKind::Data, ObjectClass::SECRET_KEY, &st.labels.data),
            (
                KeyKind::Signing,
                ObjectClass::PRIVATE_KEY,
                &st.labels.signing,
            ),
        ] {
            let found = find_key(s, class, label)?.is_some();
            r.keys.push((kind.name(), label.clone(), found));
        }
        if let Some(pubh) = find_key(s, ObjectClass::PUBLIC_KEY, &st.labels.signing)? {
            r.signing_algorithm = Some(public_of(s, pubh)?.algorithm());
        }
        Ok(r)
    }

    fn connect_inner(&mut self) -> Result<(), Fault> {
        let (_ctx, slot, sessions) = self.open(false)?;
        let l = &self.settings.labels;
        let s = &sessions[0];
        let missing = |kind: KeyKind, label: &str| {
            Fault::Down(format!(
                "the token has no {} key labelled `{label}`; run `warden hsm init`",
                kind.name()
            ))
        };
        let hmac = find_key(s, ObjectClass::SECRET_KEY, &l.hmac)?
            .ok_or_else(|| missing(KeyKind::Hmac, &l.hmac))?;
        let data = find_key(s, ObjectClass::SECRET_KEY, &l.data)?
            .ok_or_else(|| missing(KeyKind::Data, &l.data))?;
        let sign = find_key(s, ObjectClass::PRIVATE_KEY, &l.signing)?
            .ok_or_else(|| missing(KeyKind::Signing, &l.signing))?;
        let pubh = find_key(s, ObjectClass::PUBLIC_KEY, &l.signing)?
            .ok_or_else(|| missing(KeyKind::Signing, &l.signing))?;
        let public = public_of(s, pubh)?;
        self.conn = Some(Conn {
            slot,
            sessions,
            next: 0,
            hmac,
            data,
            sign,
            public,
        });
        Ok(())
    }

    /// The next session in turn, and the connection's keys.
    fn conn(&mut self) -> Result<(&Session, &Conn), Fault> {
        if self.conn.is_none() {
            return Err(Fault::Down("not connected".into()));
        }
        let c = self.conn.as_mut().expect("checked");
        c.next = (c.next + 1) % c.sessions.len();
        let c = self.conn.as_ref().expect("checked");
        Ok((&c.sessions[c.next], c))
    }

    /// The slot in use (for tests that close its sessions underneath).
    pub fn slot_id(&self) -> Option<u64> {
        self.conn.as_ref().map(|c| c.slot.id())
    }
}

impl Backend for Pkcs11Backend {
    fn kind(&self) -> &'static str {
        "pkcs11"
    }

    fn connect(&mut self) -> Result<(), Fault> {
        if let Some(c) = &self.conn {
            // Still logged in and the session still there?
            if c.sessions[0].get_session_info().is_ok() {
                return Ok(());
            }
            self.conn = None;
        }
        self.connect_inner()
    }

    fn disconnect(&mut self) {
        // Dropping the sessions closes them; a session the token already closed is ignored.
        self.conn = None;
    }

    fn hmac_sign(&mut self, data: &[u8]) -> Result<[u8; 32], Fault> {
        let (s, c) = self.conn()?;
        let tag = s
            .sign(&Mechanism::Sha256Hmac, c.hmac, data)
            .map_err(|e| down("C_Sign (HMAC)", e))?;
        tag.as_slice()
            .try_into()
            .map_err(|_| Fault::Down(format!("HMAC of {} bytes", tag.len())))
    }

    fn hmac_verify(&mut self, data: &[u8], tag: &[u8]) -> Result<bool, Fault> {
        if tag.len() != 32 {
            return Ok(false);
        }
        let (s, c) = self.conn()?;
        match s.verify(&Mechanism::Sha256Hmac, c.hmac, data, tag) {
            Ok(()) => Ok(true),
            Err(e) => match op_fault("C_Verify (HMAC)", e, HsmError::Verification) {
                Fault::Refused(_) => Ok(false),
                f => Err(f),
            },
        }
    }

    fn encrypt(
        &mut self,
        nonce: &[u8; 12],
        plaintext: &[u8],
        aad: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), Fault> {
        let mut iv = *nonce;
        let (s, c) = self.conn()?;
        let params = GcmParams::new(&mut iv, aad, 128.into())
            .map_err(|e| Fault::Down(format!("GCM parameters: {e}")))?;
        let ct = s
            .encrypt(&Mechanism::AesGcm(params), c.data, plaintext)
            .map_err(|e| op_fault("C_Encrypt (AES-GCM)", e, HsmError::Verification))?;
        out.extend_from_slice(&ct);
        Ok(())
    }

    fn decrypt(
        &mut self,
        nonce: &[u8; 12],
        sealed: &[u8],
        aad: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), Fault> {
        if sealed.len() < super::TAG_BYTES {
            return Err(Fault::Refused(HsmError::Malformed(
                "sealed data shorter than its tag",
            )));
        }
        let mut iv = *nonce;
        let (s, c) = self.conn()?;
        let params = GcmParams::new(&mut iv, aad, 128.into())
            .map_err(|e| Fault::Down(format!("GCM parameters: {e}")))?;
        let pt = match s.decrypt(&Mechanism::AesGcm(params), c.data, sealed) {
            Ok(pt) => pt,
            Err(e) => {
                return Err(
                    match op_fault("C_Decrypt (AES-GCM)", e, HsmError::Verification) {
                        // Some modules (SoftHSM2) report a failed tag check as a general error.
                        // If the session is healthy the ciphertext was at fault, not the device:
                        // hostile ciphertexts must not be able to open the breaker.
                        Fault::Down(_) if s.get_session_info().is_ok() => {
                            Fault::Refused(HsmError::Verification)
                        }
                        f => f,
                    },
                );
            }
        };
        out.extend_from_slice(&pt);
        Ok(())
    }

    fn sign(&mut self, data: &[u8]) -> Result<Vec<u8>, Fault> {
        let (s, c) = self.conn()?;
        let mech = match c.public {
            PublicKey::Ed25519(_) => Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
            PublicKey::P256(_) => Mechanism::EcdsaSha256,
        };
        s.sign(&mech, c.sign, data)
            .map_err(|e| down("C_Sign (signature key)", e))
    }

    fn public_key(&mut self) -> Result<PublicKey, Fault> {
        let (_, c) = self.conn()?;
        Ok(c.public.clone())
    }
}
