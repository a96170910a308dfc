//! The operations every keystore offers. The HSM core drives a `Backend` from one thread; the
//! software keystore also runs them in place, on any thread.

use super::HsmError;

/// The three keys warden uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// HMAC-SHA256: credential token tags.
    Hmac,
    /// AES-256-GCM: `encrypt` and `decrypt`.
    Data,
    /// Ed25519 or ECDSA P-256: audit checkpoints and token issuing.
    Signing,
}

impl KeyKind {
    pub const ALL: [KeyKind; 3] = [KeyKind::Hmac, KeyKind::Data, KeyKind::Signing];
    pub const fn name(self) -> &'static str {
        match self {
            KeyKind::Hmac => "hmac-sha256",
            KeyKind::Data => "aes-256-gcm",
            KeyKind::Signing => "signing",
        }
    }
}

/// A signature key's public half.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublicKey {
    Ed25519([u8; 32]),
    /// SEC1 uncompressed point (65 bytes); signatures are `r || s` (64 bytes).
    P256(Vec<u8>),
}

impl PublicKey {
    pub fn algorithm(&self) -> &'static str {
        match self {
            PublicKey::Ed25519(_) => "ed25519",
            PublicKey::P256(_) => "ecdsa-p256",
        }
    }
    pub fn bytes(&self) -> &[u8] {
        match self {
            PublicKey::Ed25519(b) => b,
            PublicKey::P256(b) => b,
        }
    }
}

/// What went wrong in a backend call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The device, module, session or login failed: the breaker opens.
    Down(String),
    /// The operation was refused on its merits (a bad tag, a bad ciphertext): no fault.
    Refused(HsmError),
}

impl From<Fault> for HsmError {
    fn from(f: Fault) -> HsmError {
        match f {
            Fault::Down(why) => HsmError::Unavailable(why),
            Fault::Refused(e) => e,
        }
    }
}

/// A keystore. Methods take `&mut self`: the HSM core owns its backend alone.
pub trait Backend: Send {
    /// `"software"` or `"pkcs11"`.
    fn kind(&self) -> &'static str;
    /// Connects (again): loads the module, finds the token, opens sessions, logs in, finds the
    /// keys. A backend that is already connected checks that it still is.
    fn connect(&mut self) -> Result<(), Fault>;
    /// Drops every session (after a fault), so the next `connect` starts afresh.
    fn disconnect(&mut self);
    fn hmac_sign(&mut self, data: &[u8]) -> Result<[u8; 32], Fault>;
    /// `Ok(false)`: the tag does not verify.
    fn hmac_verify(&mut self, data: &[u8], tag: &[u8]) -> Result<bool, Fault>;
    /// AES-256-GCM with the caller's 12-byte nonce; appends `ciphertext || tag` to `out`.
    fn encrypt(
        &mut self,
        nonce: &[u8; 12],
        plaintext: &[u8],
        aad: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), Fault>;
    /// Opens `ciphertext || tag`; appends the plaintext to `out`. A bad tag is
    /// `Refused(Verification)`.
    fn decrypt(
        &mut self,
        nonce: &[u8; 12],
        sealed: &[u8],
        aad: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), Fault>;
    fn sign(&mut self, data: &[u8]) -> Result<Vec<u8>, Fault>;
    fn public_key(&mut self) -> Result<PublicKey, Fault>;
}

/// Verifies a signature by the public key (on the caller's thread: no key needed).
pub fn verify_signature(pk: &PublicKey, data: &[u8], sig: &[u8]) -> bool {
    match pk {
        PublicKey::Ed25519(b) => {
            let (Ok(vk), Ok(s)) = (
                ed25519_dalek::VerifyingKey::from_bytes(b),
                ed25519_dalek::Signature::from_slice(sig),
            ) else {
                return false;
            };
            vk.verify_strict(data, &s).is_ok()
        }
        // P-256 verification is the token's job (warden ships no P-256 code); callers that need
        // it offline use the public key with their own tools.
        PublicKey::P256(_) => false,
    }
}
