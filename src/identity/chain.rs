//! Delegation: a delegable wdn1 token followed by links, each made offline by the holder of the
//! one before it, each narrower than its parent, and a proof that the presenter holds the last.
//!
//! ```text
//! wdn1.<claims>.<tag>[.<link>.<signature>]*.<proof>     (each part base64url, no padding)
//! ```
//!
//! The design is Biscuit's (public-key chaining, offline attenuation), cut down to wdn1's fixed
//! caveats so that it needs no Datalog and no allocation:
//! - each holder has a secret (32 random bytes) it never sends: from it come an Ed25519 signing
//!   key and a proof (both SHA-256 of the secret under their own context);
//! - a delegable root's claims carry a holder: the public key and SHA-256 of the proof;
//! - a link names the agent it delegates to, its own limits and the next holder; it is signed by
//!   the previous holder's key over `wdn1-link`, the previous tag or signature, and the link;
//! - the last holder's proof ends the token. Whoever sees a token can present it (it is a bearer
//!   credential, as every token is) but cannot extend it: that needs the holder's secret, which
//!   the proof does not reveal. Nobody can drop a link (that needs an earlier holder's proof,
//!   which the token does not carry) or widen one (its signature would not verify).
//!
//! Macaroons chain HMACs instead: cheaper, but a verifier must know the root secret, and an
//! Ed25519 root (which warden verifies with a public key) would have to reveal what chains the
//! next link. A proof is a hash preimage rather than a signature, so a presentation costs one
//! SHA-256, not another signature check.
//!
//! Link, little-endian:
//!
//! ```text
//!  0 u8 version (1)   1 u8 depth (links that may follow)   2 u8 clearance   3 u8 max level
//!  4 u64 expires at, ms since the Unix epoch               12 u64 nonce
//! 20 next holder's Ed25519 public key (32)                 52 SHA-256 of its proof (32)
//! 84 u8 agent length, agent (the delegate), u8 resource prefix length, prefix (empty: any),
//!    u8 tool count (0: any), then each tool as u8 length, name
//! ```
//!
//! Invariants (property tests in `tests/delegation.rs`, fuzz target `token`):
//! - `parse` never panics and never allocates; every length is checked against its input;
//! - a link whose clearance, level, expiry, depth, tools or prefix exceed its parent's is
//!   refused (`Widened`) — so a chain never grants what its root does not;
//! - any byte changed anywhere is refused: the tag, each signature and the proof hash cover
//!   every byte, and base64 is decoded canonically (no second spelling of the same bytes).

use super::token::{self, Holder, Parsed, TokenIssue, MAX_TOKEN_BYTES};
use crate::types::{Classification, SecurityLevel};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};

/// Most links a chain may have (a root's depth is at most this).
pub const MAX_LINKS: usize = 4;
/// Most tools a link may name.
pub const MAX_TOOLS: usize = 16;
/// What a link's signature covers begins with these bytes.
pub const LINK_CONTEXT: &[u8] = b"wdn1-link";
const LINK_FIXED: usize = 84;

fn sha(context: &[u8], bytes: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(context);
    h.update(bytes);
    h.finalize().into()
}

/// SHA-256 of a proof, as a holder commits to it.
pub fn proof_hash(proof: &[u8; 32]) -> [u8; 32] {
    sha(b"wdn1-holder-proof-hash", proof)
}

/// The proof a holder presents, from its secret.
pub fn proof_of(secret: &[u8; 32]) -> [u8; 32] {
    sha(b"wdn1-holder-proof", secret)
}

/// The key a holder signs the next link with, from its secret.
fn signing_key(secret: &[u8; 32]) -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&sha(b"wdn1-holder-sign", secret))
}

/// One link of a chain, borrowing from the caller's buffer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Link<'a> {
    pub clearance: Classification,
    pub max_level: SecurityLevel,
    pub expires_at_ms: u64,
    pub nonce: u64,
    /// The delegate: the agent that presents the chain when this link is the last.
    pub agent: &'a str,
    /// Resource prefix the delegate is held to (empty: no restriction).
    pub resource_prefix: &'a str,
    /// Tools as stored: `count` names, each `u8 length, name` (count 0: no restriction).
    tools: &'a [u8],
    tool_count: u8,
    pub holder: Holder,
    /// The link's bytes (what its signature covers after the context and previous tag).
    pub bytes: &'a [u8],
    pub signature: &'a [u8],
}

impl<'a> Link<'a> {
    /// The tools this link names, in order (none: any tool).
    pub fn tools(&self) -> impl Iterator<Item = &'a str> + 'a {
        let mut rest = self.tools;
        (0..self.tool_count).map_while(move |_| {
            let (&n, tail) = rest.split_first()?;
            let name = tail.get(..n as usize)?;
            rest = &tail[n as usize..];
            core::str::from_utf8(name).ok()
        })
    }
    /// Whether the link restricts tools, and if so whether it names `tool`.
    pub fn allows_tool(&self, tool: &str) -> bool {
        self.tool_count == 0 || self.tools().any(|t| t == tool)
    }
}

/// A parsed credential: the root token, its links and the proof.
pub struct Credential<'a> {
    pub root: Parsed<'a>,
    links: [Link<'a>; MAX_LINKS],
    n: usize,
    /// The last holder's proof (`None` for a token that is not delegable).
    pub proof: Option<&'a [u8; 32]>,
    /// `ends[i]`: length of the token's text up to the end of link `i` (0: the root's tag).
    /// The text up to there names that link and all before it: revocations and the
    /// verified-token cache go by it.
    ends: [usize; MAX_LINKS + 1],
}

impl<'a> Credential<'a> {
    pub fn links(&self) -> &[Link<'a>] {
        &self.links[..self.n]
    }
    /// The text naming the root and the first `i` links.
    pub fn prefix_len(&self, i: usize) -> usize {
        self.ends[i]
    }
    /// The agent that presents this credential: the last link's delegate, or the root's agent.
    pub fn subject(&self) -> &'a str {
        self.links()
            .last()
            .map_or(self.root.claims.agent, |l| l.agent)
    }
    /// The holder the next link (or the proof) answers to after `i` links.
    pub fn holder(&self, i: usize) -> Option<Holder> {
        if i == 0 {
            self.root.claims.holder
        } else {
            Some(self.links[i - 1].holder)
        }
    }
    /// The tag or signature a link after `i` links signs over.
    pub fn tag_before(&self, i: usize) -> &'a [u8] {
        if i == 0 {
            self.root.tag
        } else {
            self.links[i - 1].signature
        }
    }
    /// The agents of the chain, root first.
    pub fn agents(&self) -> impl Iterator<Item = &'a str> + '_ {
        std::iter::once(self.root.claims.agent).chain(self.links().iter().map(|l| l.agent))
    }
}

/// Parses a whole credential into `buf` (root claims first, then links). No allocation.
pub fn parse<'a>(
    credential: &'a [u8],
    buf: &'a mut [u8; 2 * MAX_TOKEN_BYTES],
) -> Result<Credential<'a>, TokenIssue> {
    parse_with(credential, buf, true)
}

/// `parse`; with `tags` false the tag, the signatures and the proof are not decoded (they are
/// empty): for a credential whose bytes verified before, where only the limits are needed.
pub fn parse_with<'a>(
    credential: &'a [u8],
    buf: &'a mut [u8; 2 * MAX_TOKEN_BYTES],
    tags: bool,
) -> Result<Credential<'a>, TokenIssue> {
    let (root_buf, links_buf) = buf.split_at_mut(MAX_TOKEN_BYTES);
    let root_buf: &'a mut [u8; MAX_TOKEN_BYTES] =
        root_buf.try_into().map_err(|_| TokenIssue::Malformed)?;
    let root = token::parse_with(credential, root_buf, tags)?;
    let mut c = Credential {
        ends: [credential.len() - root.rest.len(); MAX_LINKS + 1],
        links: [Link::default(); MAX_LINKS],
        n: 0,
        proof: None,
        root,
    };
    let Some(holder) = c.root.claims.holder else {
        return Ok(c);
    };
    // `.link.sig` pairs, then `.proof`
    let mut rest = c.root.rest;
    let mut out: &'a mut [u8] = links_buf;
    let mut parts = 0usize;
    let mut segs: [&'a [u8]; 2 * MAX_LINKS + 1] = [&[]; 2 * MAX_LINKS + 1];
    while let Some(tail) = rest.strip_prefix(b".") {
        if parts == segs.len() {
            return Err(TokenIssue::Malformed);
        }
        let end = tail.iter().position(|&b| b == b'.').unwrap_or(tail.len());
        segs[parts] = &tail[..end];
        parts += 1;
        rest = &tail[end..];
    }
    if !rest.is_empty() || parts.is_multiple_of(2) {
        return Err(TokenIssue::Malformed);
    }
    let n = parts / 2;
    if n > holder.depth as usize {
        return Err(TokenIssue::Widened);
    }
    let mut pos = credential.len() - c.root.rest.len();
    for i in 0..n {
        let (b64, s64) = (segs[2 * i], segs[2 * i + 1]);
        pos += 2 + b64.len() + s64.len();
        c.ends[i + 1] = pos;
        let (bytes, o) = decode(b64, out)?;
        let (sig, o) = if tags { decode(s64, o)? } else { (&[][..], o) };
        out = o;
        if tags && sig.len() != 64 {
            return Err(TokenIssue::Malformed);
        }
        c.links[i] = link(bytes, sig)?;
    }
    for e in &mut c.ends[n + 1..] {
        *e = pos;
    }
    if tags {
        let (proof, _) = decode(segs[2 * n], out)?;
        c.proof = Some(proof.try_into().map_err(|_| TokenIssue::Malformed)?);
    }
    c.n = n;
    Ok(c)
}

/// Decodes one base64url part into the front of `out`; returns it and what is left.
fn decode<'a>(b64: &[u8], out: &'a mut [u8]) -> Result<(&'a [u8], &'a mut [u8]), TokenIssue> {
    if b64.is_empty() || b64.len() / 4 * 3 + 3 > out.len() {
        return Err(TokenIssue::Malformed);
    }
    let n = URL_SAFE_NO_PAD
        .decode_slice(b64, out)
        .map_err(|_| TokenIssue::Malformed)?;
    let (got, left) = out.split_at_mut(n);
    Ok((got, left))
}

fn link<'a>(b: &'a [u8], signature: &'a [u8]) -> Result<Link<'a>, TokenIssue> {
    if b.len() < LINK_FIXED + 3 || b[0] != 1 || b[1] as usize >= MAX_LINKS {
        return Err(TokenIssue::Malformed);
    }
    let u64_at = |o: usize| {
        let mut x = [0u8; 8];
        x.copy_from_slice(&b[o..o + 8]);
        u64::from_le_bytes(x)
    };
    let clearance = Classification::from_code(b[2]).ok_or(TokenIssue::Malformed)?;
    let max_level = level(b[3]).ok_or(TokenIssue::Malformed)?;
    let mut key = [0u8; 32];
    let mut proof_hash = [0u8; 32];
    key.copy_from_slice(&b[20..52]);
    proof_hash.copy_from_slice(&b[52..84]);
    let mut pos = LINK_FIXED;
    let mut take = || -> Result<&'a [u8], TokenIssue> {
        let len = *b.get(pos).ok_or(TokenIssue::Malformed)? as usize;
        let s = b.get(pos + 1..pos + 1 + len).ok_or(TokenIssue::Malformed)?;
        pos += 1 + len;
        Ok(s)
    };
    let agent = core::str::from_utf8(take()?).map_err(|_| TokenIssue::Malformed)?;
    let prefix = core::str::from_utf8(take()?).map_err(|_| TokenIssue::Malformed)?;
    let tool_count = *b.get(pos).ok_or(TokenIssue::Malformed)?;
    pos += 1;
    if agent.is_empty() || tool_count as usize > MAX_TOOLS || !prefix_shape(prefix) {
        return Err(TokenIssue::Malformed);
    }
    let tools_at = pos;
    for _ in 0..tool_count {
        let len = *b.get(pos).ok_or(TokenIssue::Malformed)? as usize;
        let name = b.get(pos + 1..pos + 1 + len).ok_or(TokenIssue::Malformed)?;
        if len == 0 || core::str::from_utf8(name).is_err() {
            return Err(TokenIssue::Malformed);
        }
        pos += 1 + len;
    }
    if pos != b.len() {
        return Err(TokenIssue::Malformed);
    }
    Ok(Link {
        clearance,
        max_level,
        expires_at_ms: u64_at(4),
        nonce: u64_at(12),
        agent,
        resource_prefix: prefix,
        tools: &b[tools_at..],
        tool_count,
        holder: Holder {
            depth: b[1],
            key,
            proof_hash,
        },
        bytes: b,
        signature,
    })
}

fn level(c: u8) -> Option<SecurityLevel> {
    Some(match c {
        0 => SecurityLevel::Safe,
        1 => SecurityLevel::Restricted,
        2 => SecurityLevel::Privileged,
        _ => return None,
    })
}

/// Room for `chain_names`: every agent of a full chain and the separators (names needing
/// escapes are cut to fit).
pub const MAX_CHAIN_NAMES_BYTES: usize = (MAX_LINKS + 1) * 256;

/// Whether `credential` can hold a link at all (a cheap look: a token without links has two
/// dots, a delegable one with its proof three, one link adds two).
pub fn may_have_links(credential: &[u8]) -> bool {
    credential.iter().filter(|&&b| b == b'.').count() >= 5
}

/// Writes the agents of a delegated credential, root first, `>`-joined, into `out` and returns
/// the length; 0 for a credential without links or one that does not parse. No signature is
/// checked: this names what was presented. No allocation.
pub fn chain_names(credential: &[u8], out: &mut [u8]) -> usize {
    if !may_have_links(credential) {
        return 0;
    }
    let mut buf = [0u8; 2 * MAX_TOKEN_BYTES];
    let Ok(c) = parse(credential, &mut buf) else {
        return 0;
    };
    if c.links().is_empty() {
        return 0;
    }
    // Names are percent-encoded where they hold `>`, `%`, `?` or anything but printable ASCII,
    // so the chain reads one way only (and `?` stays free to mark a chain as presented); a
    // chain that does not fit is cut and ends `%--` (which no name can make: `%` is escaped).
    if out.len() < 3 {
        return 0;
    }
    let cut = |out: &mut [u8], n: usize| {
        let m = n.min(out.len() - 3);
        out[m..m + 3].copy_from_slice(b"%--");
        m + 3
    };
    let mut n = 0;
    for (i, a) in c.agents().enumerate() {
        if i > 0 {
            if n + 1 + 3 > out.len() {
                return cut(out, n);
            }
            out[n] = b'>';
            n += 1;
        }
        for &ch in a.as_bytes() {
            // every byte outside printable ASCII too: no lookalike `>`, no bidirectional
            // override can make a chain read otherwise
            let esc = matches!(ch, b'>' | b'%' | b'?') || !(0x20..0x7f).contains(&ch);
            let need = if esc { 3 } else { 1 };
            if n + need + 3 > out.len() {
                return cut(out, n);
            }
            if esc {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out[n..n + 3].copy_from_slice(&[
                    b'%',
                    HEX[(ch >> 4) as usize],
                    HEX[(ch & 15) as usize],
                ]);
            } else {
                out[n] = ch;
            }
            n += need;
        }
    }
    n
}

/// Whether `prefix` (a path or URL prefix) covers `s`: equal, or `s` continues it after a `/`.
pub fn under(prefix: &[u8], s: &[u8]) -> bool {
    s.starts_with(prefix)
        && (s.len() == prefix.len() || prefix.ends_with(b"/") || s[prefix.len()] == b'/')
}

/// Checks that every link is no wider than the one before it (the root for the first).
/// Structural: no signature is checked here.
pub fn check_narrowing(c: &Credential<'_>) -> Result<(), TokenIssue> {
    let r = &c.root.claims;
    let (mut clearance, mut level, mut expires, mut depth) = (
        r.clearance,
        r.max_level,
        r.expires_at_ms,
        r.holder.map_or(0, |h| h.depth),
    );
    let mut prev: Option<&Link<'_>> = None;
    for l in c.links() {
        if l.clearance > clearance
            || l.max_level > level
            || l.expires_at_ms > expires
            || l.holder.depth >= depth
        {
            return Err(TokenIssue::Widened);
        }
        if let Some(p) = prev {
            if !p.resource_prefix.is_empty()
                && !under(p.resource_prefix.as_bytes(), l.resource_prefix.as_bytes())
            {
                return Err(TokenIssue::Widened);
            }
            if p.tool_count != 0 && (l.tool_count == 0 || !l.tools().all(|t| p.allows_tool(t))) {
                return Err(TokenIssue::Widened);
            }
        }
        (clearance, level, expires, depth) =
            (l.clearance, l.max_level, l.expires_at_ms, l.holder.depth);
        prev = Some(l);
    }
    Ok(())
}

/// What a delegate may do, as given to `delegate`.
#[derive(Clone, Debug, Default)]
pub struct Caveats {
    /// The agent the new link delegates to.
    pub agent: String,
    /// Lower than the parent's, or `None` for the parent's.
    pub clearance: Option<Classification>,
    pub max_level: Option<SecurityLevel>,
    /// Expiry; `None` (or later than the parent's) is the parent's.
    pub expires_at_ms: Option<u64>,
    /// Links that may follow the new one; `None` for one fewer than the parent allows.
    pub depth: Option<u8>,
    /// Resource prefix (must lie under the parent's); empty for the parent's.
    pub resource_prefix: String,
    /// Tools (a subset of the parent's); empty for the parent's.
    pub tools: Vec<String>,
}

/// Appends a link to `credential` (its last holder's, with `secret` that holder's secret) and
/// returns the delegate's credential and secret. Refuses, naming the field, anything wider than
/// the parent.
pub fn delegate(
    credential: &str,
    secret: &[u8; 32],
    caveats: &Caveats,
    nonce: u64,
) -> Result<(String, [u8; 32]), String> {
    let mut buf = [0u8; 2 * MAX_TOKEN_BYTES];
    let (c, parent_holder) = held(credential, secret, &mut buf)?;
    if parent_holder.depth == 0 {
        return Err("the credential may not be delegated further (its depth is used up)".into());
    }
    let (p_clear, p_level, p_exp) = match c.links().last() {
        Some(l) => (l.clearance, l.max_level, l.expires_at_ms),
        None => (
            c.root.claims.clearance,
            c.root.claims.max_level,
            c.root.claims.expires_at_ms,
        ),
    };
    let p_prefix = c.links().last().map_or("", |l| l.resource_prefix);
    let clearance = caveats.clearance.unwrap_or(p_clear);
    if clearance > p_clear {
        return Err(format!(
            "--clearance {}: above the parent's {}",
            clearance.name(),
            p_clear.name()
        ));
    }
    let max_level = caveats.max_level.unwrap_or(p_level);
    if max_level > p_level {
        return Err("--max-level: above the parent's".into());
    }
    let expires = caveats.expires_at_ms.unwrap_or(p_exp).min(p_exp);
    let depth = caveats.depth.unwrap_or(parent_holder.depth - 1);
    if depth >= parent_holder.depth {
        return Err(format!(
            "--depth {depth}: the parent allows at most {} more after this link",
            parent_holder.depth - 1
        ));
    }
    let prefix = if caveats.resource_prefix.is_empty() {
        p_prefix
    } else {
        caveats.resource_prefix.as_str()
    };
    if !p_prefix.is_empty() && !under(p_prefix.as_bytes(), prefix.as_bytes()) {
        return Err(format!(
            "--resource {prefix}: not under the parent's prefix {p_prefix}"
        ));
    }
    check_prefix(prefix)?;
    let parent_tools: Vec<&str> = c.links().last().map_or(Vec::new(), |l| l.tools().collect());
    let tools: Vec<&str> = if caveats.tools.is_empty() {
        parent_tools.clone()
    } else {
        caveats.tools.iter().map(String::as_str).collect()
    };
    if !parent_tools.is_empty() {
        if let Some(t) = tools.iter().find(|t| !parent_tools.contains(t)) {
            return Err(format!("--tool {t}: the parent does not allow it"));
        }
    }
    if tools.len() > MAX_TOOLS {
        return Err(format!("at most {MAX_TOOLS} tools"));
    }
    append(
        credential,
        secret,
        &LinkSpec {
            agent: &caveats.agent,
            clearance,
            max_level,
            expires_at_ms: expires,
            depth,
            resource_prefix: prefix,
            tools: &tools,
        },
        nonce,
    )
}

/// A credential its holder may extend: parsed, delegable, with the proof of its last holder,
/// whose secret `secret` is.
fn held<'a>(
    credential: &'a str,
    secret: &[u8; 32],
    buf: &'a mut [u8; 2 * MAX_TOKEN_BYTES],
) -> Result<(Credential<'a>, Holder), String> {
    let c = parse(credential.as_bytes(), buf)
        .map_err(|e| format!("the credential to delegate: {}", e.explain()))?;
    let holder = c
        .holder(c.links().len())
        .ok_or("the credential is not delegable: issue it with --delegable DEPTH")?;
    let proof = c.proof.ok_or("the credential carries no proof")?;
    if proof_hash(proof) != holder.proof_hash {
        return Err("the credential's proof does not match its holder: it was altered".into());
    }
    if proof_of(secret) != *proof || signing_key(secret).verifying_key().as_bytes() != &holder.key {
        return Err("the holder key is not this credential's (each credential has its own)".into());
    }
    Ok((c, holder))
}

/// One link as `append` writes it.
#[derive(Clone, Copy, Debug)]
pub struct LinkSpec<'s> {
    pub agent: &'s str,
    pub clearance: Classification,
    pub max_level: SecurityLevel,
    pub expires_at_ms: u64,
    pub depth: u8,
    pub resource_prefix: &'s str,
    pub tools: &'s [&'s str],
}

/// Appends a link as given, signed with the credential's proof, and a fresh proof for the
/// delegate. It checks only that the credential is delegable and its proof is its holder's:
/// `delegate` refuses widening before calling it; the verifier refuses it whoever wrote the link
/// (tests write wide links with this on purpose).
pub fn append(
    credential: &str,
    secret: &[u8; 32],
    spec: &LinkSpec<'_>,
    nonce: u64,
) -> Result<(String, [u8; 32]), String> {
    let mut buf = [0u8; 2 * MAX_TOKEN_BYTES];
    let (c, _) = held(credential, secret, &mut buf)?;
    let n = c.links().len();
    if spec.agent.is_empty() || spec.agent.len() > 255 {
        return Err("--agent: 1 to 255 bytes".into());
    }
    if spec.tools.len() > MAX_TOOLS {
        return Err(format!("at most {MAX_TOOLS} tools"));
    }
    let (next, next_secret) = new_holder(spec.depth.max(1))?;
    let mut b = Vec::with_capacity(128);
    b.push(1);
    b.push(spec.depth);
    b.push(spec.clearance as u8);
    b.push(spec.max_level as u8);
    b.extend_from_slice(&spec.expires_at_ms.to_le_bytes());
    b.extend_from_slice(&nonce.to_le_bytes());
    b.extend_from_slice(&next.key);
    b.extend_from_slice(&next.proof_hash);
    for s in [spec.agent, spec.resource_prefix] {
        if s.len() > 255 {
            return Err(format!("`{s}` is longer than 255 bytes"));
        }
        b.push(s.len() as u8);
        b.extend_from_slice(s.as_bytes());
    }
    b.push(spec.tools.len() as u8);
    for t in spec.tools {
        if t.is_empty() || t.len() > 255 {
            return Err(format!("--tool `{t}`: 1 to 255 bytes"));
        }
        b.push(t.len() as u8);
        b.extend_from_slice(t.as_bytes());
    }
    let signer = signing_key(secret);
    let sig = {
        use ed25519_dalek::Signer;
        let mut m = Vec::with_capacity(LINK_CONTEXT.len() + 64 + b.len());
        m.extend_from_slice(LINK_CONTEXT);
        m.extend_from_slice(c.tag_before(n));
        m.extend_from_slice(&b);
        signer.sign(&m).to_bytes()
    };
    let head = &credential[..c.prefix_len(n)];
    let out = format!(
        "{head}.{}.{}.{}",
        URL_SAFE_NO_PAD.encode(&b),
        URL_SAFE_NO_PAD.encode(sig),
        URL_SAFE_NO_PAD.encode(proof_of(&next_secret))
    );
    if out.len() > MAX_TOKEN_BYTES {
        return Err(format!(
            "the delegated credential would be {} bytes; at most {MAX_TOKEN_BYTES} are accepted (shorter names, fewer tools or fewer links)",
            out.len()
        ));
    }
    Ok((out, next_secret))
}

/// The shape every link's prefix must have, checked when a link is parsed (no allocation): empty,
/// or printable ASCII without `%`, `\` or `.`/`..` segments, and either an absolute path without
/// `//` or a URL (`scheme://` then no `//` after the authority) without userinfo (`@`).
fn prefix_shape(p: &str) -> bool {
    if p.is_empty() {
        return true;
    }
    let b = p.as_bytes();
    if !b.iter().all(|&c| (0x21..0x7f).contains(&c)) || p.contains(['%', '\\', '@']) {
        return false;
    }
    let path = match p.find("://") {
        Some(i) if i > 0 && b[..i].iter().all(|c| c.is_ascii_alphanumeric()) => {
            match p[i + 3..].find('/') {
                Some(j) => &p[i + 3 + j..],
                None => "",
            }
        }
        Some(_) => return false,
        None if p.starts_with('/') => p,
        None => return false,
    };
    !path.contains("//") && !path.split('/').any(|s| s == "." || s == "..")
}

/// A resource prefix a delegator may give: a URL exactly as warden serializes it (no userinfo),
/// or an absolute path with no `.`/`..` segment, no `//`, no `%` and no `\`.
pub fn check_prefix(prefix: &str) -> Result<(), String> {
    if prefix.is_empty() {
        return Ok(());
    }
    if prefix.contains("://") {
        let u = url::Url::parse(prefix).map_err(|e| format!("--resource {prefix}: {e}"))?;
        if u.as_str() != prefix {
            return Err(format!(
                "--resource {prefix}: write the URL as warden reads it: {}",
                u.as_str()
            ));
        }
    }
    if !prefix_shape(prefix) {
        return Err(format!(
            "--resource {prefix}: an absolute path or a URL, printable ASCII, without `.`/`..` segments, `//` in the path, `%`, `\\` or `@`"
        ));
    }
    Ok(())
}

/// A new holder: what a token or link commits to, and the secret the holder keeps.
pub fn new_holder(depth: u8) -> Result<(Holder, [u8; 32]), String> {
    let mut secret = [0u8; 32];
    crate::secrets::random_bytes(&mut secret)?;
    Ok((
        Holder {
            depth,
            key: *signing_key(&secret).verifying_key().as_bytes(),
            proof_hash: proof_hash(&proof_of(&secret)),
        },
        secret,
    ))
}

/// A delegable token as it is presented: the token followed by its holder's proof (made from
/// the holder's secret, which stays with the holder).
pub fn with_proof(token: &str, secret: &[u8; 32]) -> String {
    format!("{token}.{}", URL_SAFE_NO_PAD.encode(proof_of(secret)))
}
