//! Key material: the kernel's random source, hex, and key files (raw or hex, read bounded,
//! secret ones created 0600). Used by identity, the keystores, the audit log and the keyed
//! hashes; control plane, except `random_bytes` at start.

/// Fills `buf` from the kernel's random source (getrandom(2): no file descriptor, one syscall
/// for up to 256 bytes). The one random source of warden: keys, nonces, AES-GCM IVs.
pub fn random_bytes(buf: &mut [u8]) -> Result<(), String> {
    let mut done = 0;
    while done < buf.len() {
        // SAFETY: the pointer and length describe the unfilled tail of `buf`, which we own.
        let n = unsafe {
            libc::getrandom(
                buf[done..].as_mut_ptr() as *mut libc::c_void,
                buf.len() - done,
                0,
            )
        };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(format!("getrandom failed: {e}"));
        }
        done += n as usize;
    }
    Ok(())
}

/// Lower-case hex of `b`.
pub fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The bytes of hex text (`None`: odd length or a non-hex character).
pub fn from_hex(t: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(t.len() / 2);
    hex_decode_into(t.as_bytes(), &mut out).then_some(out)
}

/// Appends the bytes of hex text to `out` (no allocation when `out` has room); false, with
/// nothing appended, on odd length or a non-hex character.
pub fn hex_decode_into(t: &[u8], out: &mut Vec<u8>) -> bool {
    if !t.len().is_multiple_of(2) || !t.iter().all(u8::is_ascii_hexdigit) {
        return false;
    }
    let nibble = |c: u8| (c as char).to_digit(16).unwrap_or(0) as u8;
    out.extend(t.chunks(2).map(|p| nibble(p[0]) << 4 | nibble(p[1])));
    true
}

/// Opens a new file: `create_new` (never over an existing file), never through a symlink.
fn create(path: &std::path::Path, mode: u32) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// Writes `secret` as hex into a new file of mode 0600 (it must not exist yet; read back with
/// `read_secret_key_file`).
pub fn create_secret_file(path: &std::path::Path, secret: &[u8]) -> Result<(), String> {
    use std::io::Write;
    create(path, 0o600)
        .and_then(|mut f| {
            writeln!(f, "{}", to_hex(secret))?;
            f.sync_all()
        })
        .map_err(|e| {
            format!(
                "cannot create {} (it must not exist yet): {e}",
                path.display()
            )
        })
}

/// Creates a new Ed25519 key pair: the secret seed in `secret` (hex, mode 0600) and, when given,
/// the public key in `public` (hex); neither may exist yet. Both read back with `read_key_file`.
pub fn create_ed25519_key(
    secret: &std::path::Path,
    public: Option<&std::path::Path>,
) -> Result<ed25519_dalek::SigningKey, String> {
    use std::io::Write;
    let mut seed = [0u8; 32];
    random_bytes(&mut seed)?;
    let key = ed25519_dalek::SigningKey::from_bytes(&seed);
    let written = create_secret_file(secret, &seed);
    seed.fill(0);
    written?;
    if let Some(public) = public {
        create(public, 0o644)
            .and_then(|mut f| writeln!(f, "{}", to_hex(key.verifying_key().as_bytes())))
            .map_err(|e| {
                format!(
                    "cannot create {} (it must not exist yet): {e}",
                    public.display()
                )
            })?;
    }
    Ok(key)
}

/// `read_key_file` for a secret key: also refused when others than its owner may read or
/// write it (the mode of the file opened, not of a path looked at before).
pub fn read_secret_key_file(path: &str, len: Option<usize>) -> Result<Vec<u8>, String> {
    read_key(path, len, true, 0)
}

/// `read_key_file` for a file of warden's own (a log's `signing.pub`): a symlink is refused
/// (`O_NOFOLLOW`), not followed.
pub fn read_own_key_file(path: &str, len: Option<usize>) -> Result<Vec<u8>, String> {
    read_key(path, len, false, libc::O_NOFOLLOW)
}

/// `read_secret_key_file` for a secret of warden's own (a log's `signing.key`): a symlink is
/// refused, not followed.
pub fn read_own_secret_key_file(path: &str, len: Option<usize>) -> Result<Vec<u8>, String> {
    read_key(path, len, true, libc::O_NOFOLLOW)
}

/// Reads a key file: raw bytes of the expected length, or hex text. Errors name the file.
pub fn read_key_file(path: &str, len: Option<usize>) -> Result<Vec<u8>, String> {
    read_key(path, len, false, 0)
}

fn read_key(path: &str, len: Option<usize>, secret: bool, flags: i32) -> Result<Vec<u8>, String> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    // A key file is a few dozen bytes: read at most 4 KiB, so a path to a device or a huge
    // file is an error, not an allocation; opened without blocking, so a FIFO is refused, not
    // waited on.
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | flags)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) if flags & libc::O_NOFOLLOW != 0 => {
                format!(
                    "key file {path}: a symlink; warden reads its own files only where they lie"
                )
            }
            _ => format!("cannot read key file {path}: {e}"),
        })?;
    let m = f
        .metadata()
        .map_err(|e| format!("cannot read key file {path}: {e}"))?;
    if !m.is_file() {
        return Err(format!("key file {path}: not a regular file"));
    }
    let mode = m.permissions().mode();
    if secret && mode & 0o077 != 0 {
        return Err(format!(
            "key file {path}: others than its owner may use this secret key (mode {:o}); chmod 600 it",
            mode & 0o777
        ));
    }
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut std::io::Read::take(f, 4097), &mut bytes)
        .map_err(|e| format!("cannot read key file {path}: {e}"))?;
    if bytes.len() > 4096 {
        return Err(format!(
            "key file {path}: more than 4096 bytes; a key file holds one key, raw or hex"
        ));
    }
    let text = String::from_utf8_lossy(&bytes);
    let t = text.trim();
    let decoded = match from_hex(t) {
        Some(d) if !d.is_empty() => d,
        _ => bytes,
    };
    if let Some(n) = len {
        if decoded.len() != n {
            return Err(format!(
                "key file {path}: expected {n} bytes (raw or hex), found {}",
                decoded.len()
            ));
        }
    } else if decoded.len() < 32 {
        return Err(format!(
            "key file {path}: an HMAC key needs at least 32 bytes"
        ));
    }
    Ok(decoded)
}
