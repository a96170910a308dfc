//! The software keystore: the embedded default when no PKCS#11 module is configured.
//!
//! Keys live in one file created with mode 0600 on first start (`hsm.keystore_file`), three
//! lines `<kind> <hex>`; with no file configured they are made in memory at start and die with
//! the process (fine for `warden bench`, wrong for tokens that must outlive a restart). A file
//! that others may read is refused. It is `Sync` and runs operations in place on the caller's
//! thread; policy may forbid it for high classifications (`hsm.require_hsm_at`).

use super::backend::{Backend, Fault, PublicKey};
use super::HsmError;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::Aes256Gcm;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

pub struct SoftKeys {
    hmac: Zeroizing<[u8; 32]>,
    aes: Aes256Gcm,
    signing: ed25519_dalek::SigningKey,
    /// Where the keys came from, for `hsm status` (never the keys).
    pub origin: String,
}

const KINDS: [&str; 3] = ["hmac-sha256", "aes-256-gcm", "ed25519"];

impl SoftKeys {
    fn from_secrets(s: &[[u8; 32]; 3], origin: String) -> SoftKeys {
        SoftKeys {
            hmac: Zeroizing::new(s[0]),
            aes: Aes256Gcm::new_from_slice(&s[1]).expect("32-byte AES key"),
            signing: ed25519_dalek::SigningKey::from_bytes(&s[2]),
            origin,
        }
    }

    /// Fresh keys in memory.
    pub fn ephemeral() -> Result<SoftKeys, String> {
        let mut s = Zeroizing::new([[0u8; 32]; 3]);
        for k in s.iter_mut() {
            crate::secrets::random_bytes(k)?;
        }
        Ok(Self::from_secrets(&s, "memory (generated at start)".into()))
    }

    /// Opens the key file, creating it (mode 0600) with fresh keys when it does not exist.
    pub fn open_or_create(path: &std::path::Path) -> Result<SoftKeys, String> {
        use std::io::Write;
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let name = path.display();
        match std::fs::metadata(path) {
            Ok(md) => {
                if md.permissions().mode() & 0o077 != 0 {
                    return Err(format!(
                        "{name} (hsm.keystore_file): others may read it (mode {:o}); chmod 600 it",
                        md.permissions().mode() & 0o777
                    ));
                }
                let text = Zeroizing::new(crate::source::read_text_bounded(
                    std::path::Path::new(path),
                    crate::source::limits::SECRET_BYTES,
                    "the keystore file (hsm.keystore_file)",
                )?);
                let mut s = Zeroizing::new([[0u8; 32]; 3]);
                let mut seen = [false; 3];
                for (n, line) in text.lines().enumerate() {
                    let line = line.trim();
                    if line.is_empty() || line.starts_with('#') {
                        continue;
                    }
                    let bad = || {
                        format!(
                            "{name}:{}: expected `<kind> <64 hex digits>` with kind one of {KINDS:?}",
                            n + 1
                        )
                    };
                    let (kind, value) = line.split_once(' ').ok_or_else(bad)?;
                    let i = KINDS.iter().position(|k| *k == kind).ok_or_else(bad)?;
                    let v = Zeroizing::new(
                        crate::secrets::from_hex(value.trim())
                            .filter(|v| v.len() == 32)
                            .ok_or_else(bad)?,
                    );
                    s[i].copy_from_slice(&v);
                    seen[i] = true;
                }
                if let Some(i) = seen.iter().position(|s| !s) {
                    return Err(format!("{name}: no `{}` key line", KINDS[i]));
                }
                Ok(Self::from_secrets(&s, name.to_string()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut s = Zeroizing::new([[0u8; 32]; 3]);
                for k in s.iter_mut() {
                    crate::secrets::random_bytes(k)?;
                }
                let mut text = Zeroizing::new(String::from(
                    "# warden software keystore: secret keys, keep mode 0600\n",
                ));
                for (k, v) in KINDS.iter().zip(s.iter()) {
                    let line = Zeroizing::new(format!("{k} {}\n", crate::secrets::to_hex(v)));
                    text.push_str(&line);
                }
                std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
                    .and_then(|mut f| {
                        f.write_all(text.as_bytes())?;
                        f.sync_all()
                    })
                    .map_err(|e| format!("cannot create {name} (hsm.keystore_file): {e}"))?;
                Ok(Self::from_secrets(&s, name.to_string()))
            }
            Err(e) => Err(format!("cannot read {name} (hsm.keystore_file): {e}")),
        }
    }

    pub fn hmac_sign(&self, data: &[u8]) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.hmac[..]).expect("any length");
        mac.update(data);
        mac.finalize().into_bytes().into()
    }

    /// Constant-time comparison.
    pub fn hmac_verify(&self, data: &[u8], tag: &[u8]) -> bool {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.hmac[..]).expect("any length");
        mac.update(data);
        mac.verify_slice(tag).is_ok()
    }

    pub fn encrypt(&self, nonce: &[u8; 12], plaintext: &[u8], aad: &[u8], out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(plaintext);
        let tag = self
            .aes
            .encrypt_in_place_detached(nonce.into(), aad, &mut out[start..])
            .expect("AES-GCM takes up to 64 GiB");
        out.extend_from_slice(&tag);
    }

    pub fn decrypt(
        &self,
        nonce: &[u8; 12],
        sealed: &[u8],
        aad: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), HsmError> {
        let Some(split) = sealed.len().checked_sub(super::TAG_BYTES) else {
            return Err(HsmError::Malformed("sealed data shorter than its tag"));
        };
        let (ct, tag) = sealed.split_at(split);
        let start = out.len();
        out.extend_from_slice(ct);
        match self
            .aes
            .decrypt_in_place_detached(nonce.into(), aad, &mut out[start..], tag.into())
        {
            Ok(()) => Ok(()),
            Err(_) => {
                out.truncate(start);
                Err(HsmError::Verification)
            }
        }
    }

    pub fn sign(&self, data: &[u8]) -> [u8; 64] {
        use ed25519_dalek::Signer;
        self.signing.sign(data).to_bytes()
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey::Ed25519(self.signing.verifying_key().to_bytes())
    }

    /// The signing key itself, for the audit writer's checkpoints (software keystore only).
    pub fn signing_key(&self) -> &ed25519_dalek::SigningKey {
        &self.signing
    }
}

/// The software keystore as a `Backend`, so the HSM core's machinery can be driven without a
/// token (its unit tests do).
pub struct SoftBackend(pub std::sync::Arc<SoftKeys>);

impl Backend for SoftBackend {
    fn kind(&self) -> &'static str {
        "software"
    }
    fn connect(&mut self) -> Result<(), Fault> {
        Ok(())
    }
    fn disconnect(&mut self) {}
    fn hmac_sign(&mut self, data: &[u8]) -> Result<[u8; 32], Fault> {
        Ok(self.0.hmac_sign(data))
    }
    fn hmac_verify(&mut self, data: &[u8], tag: &[u8]) -> Result<bool, Fault> {
        Ok(self.0.hmac_verify(data, tag))
    }
    fn encrypt(
        &mut self,
        nonce: &[u8; 12],
        plaintext: &[u8],
        aad: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), Fault> {
        self.0.encrypt(nonce, plaintext, aad, out);
        Ok(())
    }
    fn decrypt(
        &mut self,
        nonce: &[u8; 12],
        sealed: &[u8],
        aad: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), Fault> {
        self.0
            .decrypt(nonce, sealed, aad, out)
            .map_err(Fault::Refused)
    }
    fn sign(&mut self, data: &[u8]) -> Result<Vec<u8>, Fault> {
        Ok(self.0.sign(data).to_vec())
    }
    fn public_key(&mut self) -> Result<PublicKey, Fault> {
        Ok(self.0.public_key())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_is_created_0600_reread_and_refused_when_readable_by_others() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("keys");
        let a = SoftKeys::open_or_create(&p).unwrap();
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let b = SoftKeys::open_or_create(&p).unwrap();
        assert_eq!(a.hmac_sign(b"x"), b.hmac_sign(b"x"), "same keys on reopen");
        assert_eq!(a.public_key(), b.public_key());
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = SoftKeys::open_or_create(&p).err().unwrap();
        assert!(e.contains("chmod 600"), "{e}");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&p, "hmac-sha256 00\n").unwrap();
        let e = SoftKeys::open_or_create(&p).err().unwrap();
        assert!(e.contains(":1:"), "names the line: {e}");
    }

    #[test]
    fn round_trips_and_tampering() {
        let k = SoftKeys::ephemeral().unwrap();
        let tag = k.hmac_sign(b"claims");
        assert!(k.hmac_verify(b"claims", &tag));
        assert!(!k.hmac_verify(b"claimz", &tag));
        let mut sealed = Vec::new();
        let n = [7u8; 12];
        k.encrypt(&n, b"secret text", b"aad", &mut sealed);
        let mut out = Vec::new();
        k.decrypt(&n, &sealed, b"aad", &mut out).unwrap();
        assert_eq!(out, b"secret text");
        sealed[3] ^= 1;
        out.clear();
        assert_eq!(
            k.decrypt(&n, &sealed, b"aad", &mut out),
            Err(HsmError::Verification)
        );
        assert!(out.is_empty(), "nothing of a forged plaintext is returned");
        let sig = k.sign(b"head");
        assert!(super::super::backend::verify_signature(
            &k.public_key(),
            b"head",
            &sig
        ));
    }
}
