//! Credential tokens: `wdn1.<claims>.<tag>`, both parts base64url without padding.
//!
//! Claims are a compact little-endian layout:
//!
//! ```text
//!  0 u8 version (1)      1 u8 algorithm (1 Ed25519, 2 HMAC-SHA256)   2 u16 key id
//!  4 u8 clearance        5 u8 max security level    6 u8 delegation depth   7 u8 reserved (0)
//!  8 u64 issued at, ms since the Unix epoch                        16 u64 expires at, ms
//! 24 u64 nonce          32 u8 tenant length, tenant, u8 agent length, agent, u8 role length, role
//! then, only when the delegation depth is not 0: the holder's Ed25519 public key (32 bytes) and
//! SHA-256 of the holder's proof (32 bytes)
//! ```
//!
//! The tag signs (Ed25519) or MACs (HMAC-SHA256) the bytes `wdn1` followed by the raw claims.
//! A delegable token (depth 1..=`chain::MAX_LINKS`) is followed by delegation links and a proof
//! (`chain.rs`); `parse` reads the root and returns what follows its tag in `rest`.
//!
//! Invariants: `parse` never panics, never allocates, and checks every length against its input;
//! a token longer than `MAX_TOKEN_BYTES` is refused before any decoding.

use crate::types::{Classification, SecurityLevel};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

pub const PREFIX: &str = "wdn1.";
/// What a token's tag covers begins with these bytes, then the claims.
pub const SIGNED_PREFIX: &[u8; 4] = b"wdn1";
pub const MAX_TOKEN_BYTES: usize = 2048;
const MAX_CLAIMS_BYTES: usize = 32 + 3 * 256 + 64;
const FIXED: usize = 32;

/// Signature algorithm of a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alg {
    Ed25519 = 1,
    HmacSha256 = 2,
}

impl Alg {
    pub const fn tag_len(self) -> usize {
        match self {
            Alg::Ed25519 => 64,
            Alg::HmacSha256 => 32,
        }
    }
}

/// Who may use and delegate a delegable token: an Ed25519 public key that signs the next link,
/// and SHA-256 of the proof (`chain::proof_hash`) a presentation must carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Holder {
    /// How many links may follow (1..=`chain::MAX_LINKS` at the root).
    pub depth: u8,
    pub key: [u8; 32],
    pub proof_hash: [u8; 32],
}

/// Decoded claims, borrowing the strings from the caller's buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Claims<'a> {
    pub alg: Alg,
    pub key_id: u16,
    pub clearance: Classification,
    pub max_level: SecurityLevel,
    pub issued_at_ms: u64,
    pub expires_at_ms: u64,
    pub nonce: u64,
    pub tenant: &'a str,
    pub agent: &'a str,
    pub role: &'a str,
    /// `Some` for a delegable token.
    pub holder: Option<Holder>,
}

pub use crate::types::TokenIssue;

/// A parsed token: claims plus where the signed bytes and the tag are.
pub struct Parsed<'a> {
    pub claims: Claims<'a>,
    /// `wdn1` followed by the raw claims (the signed message), in the caller's buffer.
    pub signed: &'a [u8],
    pub tag: &'a [u8],
    /// The token's bytes after the tag: empty, or `.` and the links and proof of a delegable
    /// token (`chain::parse` reads them).
    pub rest: &'a [u8],
}

/// Decodes `token` into `buf` (at least `MAX_TOKEN_BYTES`). No allocation.
pub fn parse<'a>(
    token: &'a [u8],
    buf: &'a mut [u8; MAX_TOKEN_BYTES],
) -> Result<Parsed<'a>, TokenIssue> {
    parse_with(token, buf, true)
}

/// `parse`; with `tags` false the tag is not decoded (`tag` is empty): for a token whose bytes
/// verified before (the verified-token cache holds them), where only the claims are needed.
pub fn parse_with<'a>(
    token: &'a [u8],
    buf: &'a mut [u8; MAX_TOKEN_BYTES],
    tags: bool,
) -> Result<Parsed<'a>, TokenIssue> {
    if token.is_empty() {
        return Err(TokenIssue::Missing);
    }
    if token.len() > MAX_TOKEN_BYTES || !token.starts_with(PREFIX.as_bytes()) {
        return Err(TokenIssue::Malformed);
    }
    let rest = &token[PREFIX.len()..];
    let dot = rest
        .iter()
        .position(|&c| c == b'.')
        .ok_or(TokenIssue::Malformed)?;
    let (c64, after) = (&rest[..dot], &rest[dot + 1..]);
    let end = after.iter().position(|&c| c == b'.').unwrap_or(after.len());
    let (t64, rest) = after.split_at(end);
    if c64.len() > MAX_CLAIMS_BYTES * 4 / 3 + 4 || t64.len() > 90 {
        return Err(TokenIssue::Malformed);
    }
    buf[..4].copy_from_slice(SIGNED_PREFIX);
    let (head, tail) = buf.split_at_mut(4 + MAX_CLAIMS_BYTES + 4);
    let n = URL_SAFE_NO_PAD
        .decode_slice(c64, &mut head[4..])
        .map_err(|_| TokenIssue::Malformed)?;
    let m = if tags {
        URL_SAFE_NO_PAD
            .decode_slice(t64, &mut tail[..96])
            .map_err(|_| TokenIssue::Malformed)?
    } else {
        0
    };
    let signed: &'a [u8] = &head[..4 + n];
    let tag: &'a [u8] = &tail[..m];
    let c = &signed[4..];
    if c.len() < FIXED + 3 || c[0] != 1 || c[7] != 0 || c[6] as usize > super::chain::MAX_LINKS {
        return Err(TokenIssue::Malformed);
    }
    let alg = match c[1] {
        1 => Alg::Ed25519,
        2 => Alg::HmacSha256,
        _ => return Err(TokenIssue::Malformed),
    };
    if tags && tag.len() != alg.tag_len() {
        return Err(TokenIssue::Malformed);
    }
    let u64_at = |o: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&c[o..o + 8]);
        u64::from_le_bytes(b)
    };
    let clearance = Classification::from_code(c[4]).ok_or(TokenIssue::Malformed)?;
    let max_level = match c[5] {
        0 => SecurityLevel::Safe,
        1 => SecurityLevel::Restricted,
        2 => SecurityLevel::Privileged,
        _ => return Err(TokenIssue::Malformed),
    };
    let mut pos = FIXED;
    let mut take = || -> Result<&'a str, TokenIssue> {
        let len = *c.get(pos).ok_or(TokenIssue::Malformed)? as usize;
        let s = c.get(pos + 1..pos + 1 + len).ok_or(TokenIssue::Malformed)?;
        pos += 1 + len;
        core::str::from_utf8(s).map_err(|_| TokenIssue::Malformed)
    };
    let (tenant, agent, role) = (take()?, take()?, take()?);
    let holder = if c[6] == 0 {
        None
    } else {
        let h = c.get(pos..pos + 64).ok_or(TokenIssue::Malformed)?;
        pos += 64;
        let mut key = [0u8; 32];
        let mut proof_hash = [0u8; 32];
        key.copy_from_slice(&h[..32]);
        proof_hash.copy_from_slice(&h[32..]);
        Some(Holder {
            depth: c[6],
            key,
            proof_hash,
        })
    };
    if pos != c.len() || tenant.is_empty() || agent.is_empty() {
        return Err(TokenIssue::Malformed);
    }
    // Only a delegable token has anything after its tag.
    if holder.is_none() != rest.is_empty() {
        return Err(TokenIssue::Malformed);
    }
    Ok(Parsed {
        claims: Claims {
            alg,
            key_id: u16::from_le_bytes([c[2], c[3]]),
            clearance,
            max_level,
            issued_at_ms: u64_at(8),
            expires_at_ms: u64_at(16),
            nonce: u64_at(24),
            tenant,
            agent,
            role,
            holder,
        },
        signed,
        tag,
        rest,
    })
}

/// Encodes claims (for `warden token issue` and tests). Returns the signed message
/// (`wdn1` + raw claims). Fails when a string is longer than 255 bytes or empty where required.
pub fn encode_claims(c: &Claims<'_>) -> Result<Vec<u8>, String> {
    let mut v = Vec::with_capacity(64);
    v.extend_from_slice(SIGNED_PREFIX);
    v.push(1);
    v.push(c.alg as u8);
    v.extend_from_slice(&c.key_id.to_le_bytes());
    v.push(c.clearance as u8);
    v.push(c.max_level as u8);
    match c.holder {
        Some(h) if h.depth == 0 || h.depth as usize > super::chain::MAX_LINKS => {
            return Err(format!(
                "a delegable token allows 1 to {} links, not {}",
                super::chain::MAX_LINKS,
                h.depth
            ))
        }
        Some(h) => v.push(h.depth),
        None => v.push(0),
    }
    v.push(0);
    v.extend_from_slice(&c.issued_at_ms.to_le_bytes());
    v.extend_from_slice(&c.expires_at_ms.to_le_bytes());
    v.extend_from_slice(&c.nonce.to_le_bytes());
    for (name, s) in [("tenant", c.tenant), ("agent", c.agent), ("role", c.role)] {
        if s.len() > 255 {
            return Err(format!("{name} is longer than 255 bytes"));
        }
        if s.is_empty() && name != "role" {
            return Err(format!("{name} is required"));
        }
        v.push(s.len() as u8);
        v.extend_from_slice(s.as_bytes());
    }
    if let Some(h) = c.holder {
        v.extend_from_slice(&h.key);
        v.extend_from_slice(&h.proof_hash);
    }
    Ok(v)
}

/// Assembles `wdn1.<claims>.<tag>` from the signed message and the tag.
pub fn assemble(signed: &[u8], tag: &[u8]) -> String {
    format!(
        "{PREFIX}{}.{}",
        URL_SAFE_NO_PAD.encode(&signed[4..]),
        URL_SAFE_NO_PAD.encode(tag)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn claims<'a>(tenant: &'a str, agent: &'a str) -> Claims<'a> {
        Claims {
            alg: Alg::HmacSha256,
            key_id: 7,
            clearance: Classification::Secret,
            max_level: SecurityLevel::Restricted,
            issued_at_ms: 1_700_000_000_000,
            expires_at_ms: 1_700_000_360_000,
            nonce: 99,
            tenant,
            agent,
            role: "analyst",
            holder: None,
        }
    }

    #[test]
    fn round_trip() {
        let c = claims("acme", "planner-1");
        let signed = encode_claims(&c).unwrap();
        let tok = assemble(&signed, &[5u8; 32]);
        let mut buf = [0u8; MAX_TOKEN_BYTES];
        let p = parse(tok.as_bytes(), &mut buf).unwrap();
        assert_eq!(p.claims, c);
        assert_eq!(p.signed, &signed[..]);
        assert_eq!(p.tag, &[5u8; 32]);
    }

    #[test]
    fn refuses_damage() {
        let mut buf = [0u8; MAX_TOKEN_BYTES];
        assert_eq!(parse(b"", &mut buf).err(), Some(TokenIssue::Missing));
        for bad in [
            &b"wdn2.abc.def"[..],
            b"wdn1.",
            b"wdn1.abc",
            b"wdn1.!!!.AAAA",
            b"bearer xyz",
        ] {
            assert_eq!(
                parse(bad, &mut buf).err(),
                Some(TokenIssue::Malformed),
                "{bad:?}"
            );
        }
        let signed = encode_claims(&claims("acme", "a")).unwrap();
        // tag of the wrong length for the algorithm
        let tok = assemble(&signed, &[1u8; 64]);
        assert_eq!(
            parse(tok.as_bytes(), &mut buf).err(),
            Some(TokenIssue::Malformed)
        );
        // trailing garbage in the claims
        let mut s2 = signed.clone();
        s2.push(0);
        let tok = assemble(&s2, &[1u8; 32]);
        assert_eq!(
            parse(tok.as_bytes(), &mut buf).err(),
            Some(TokenIssue::Malformed)
        );
        let long = vec![b'A'; MAX_TOKEN_BYTES + 1];
        assert_eq!(parse(&long, &mut buf).err(), Some(TokenIssue::Malformed));
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let mut buf = [0u8; MAX_TOKEN_BYTES];
            let _ = parse(&bytes, &mut buf);
            let mut t = b"wdn1.".to_vec();
            t.extend_from_slice(&bytes);
            let _ = parse(&t, &mut buf);
        }

        #[test]
        fn parse_never_panics_on_mutated_tokens(pos in 0usize..400, val in any::<u8>(), tenant in "[a-z]{1,20}", agent in "[a-z0-9-]{1,30}") {
            let signed = encode_claims(&claims(&tenant, &agent)).unwrap();
            let mut tok = assemble(&signed, &[9u8; 32]).into_bytes();
            let p = pos % tok.len();
            tok[p] = val;
            let mut buf = [0u8; MAX_TOKEN_BYTES];
            let _ = parse(&tok, &mut buf);
        }
    }
}
