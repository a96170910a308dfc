//! Identity: credential tokens verified against a key ring, a verified-token cache, a replay
//! window on request nonces, and revocations. Used by the policy stage before authorization.
//!
//! Invariants:
//! - every structure here is shared by all cores, bounded, lock-free and allocation-free on the
//!   request path: the token cache and the replay table are fixed arrays of atomics, revocations
//!   a papaya map (lock-free reads);
//! - a replayed nonce is refused whichever core sees it (one shared table, single-word CAS);
//! - tag comparisons are constant-time (`hmac::Mac::verify_slice`; Ed25519 `verify_strict`);
//! - secret keys are read once from files or environment variables and never logged.

pub mod chain;
pub mod token;

use crate::request::Request;
use crate::types::{Classification, DenyReason};
use ed25519_dalek::{Signature, VerifyingKey};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;
use std::sync::atomic::{AtomicU64, Ordering::*};
use token::{Alg, TokenIssue, MAX_TOKEN_BYTES};

/// A verification key.
pub enum Key {
    Ed25519(VerifyingKey),
    /// HMAC-SHA256 secret read from a file or the environment.
    Hmac(Box<[u8]>),
    /// HMAC-SHA256 by the keystore's HMAC key: in place with the software keystore; on a
    /// PKCS#11 token the tag is verified by the HSM core (`TokenIssue::NeedsHsm` tells the core
    /// to hand the request over).
    Keystore(crate::hsm::Keys),
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Key::Ed25519(_) => f.write_str("Ed25519(public)"),
            Key::Hmac(_) => f.write_str("Hmac(<secret>)"),
            Key::Keystore(k) => write!(f, "Keystore({})", k.backend()),
        }
    }
}

/// Identity settings (from `[identity]` in the config).
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    pub max_clock_skew_ms: u64,
    pub replay_window_ms: u64,
    pub replay_capacity: usize,
    pub token_cache_capacity: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_clock_skew_ms: 30_000,
            replay_window_ms: 120_000,
            replay_capacity: 1 << 20,
            token_cache_capacity: 1 << 16,
        }
    }
}

/// Cache of tokens whose tag verified: 128-bit keyed fingerprint → verified. A hit skips the
/// signature check only; claims are re-read and re-checked every time.
struct TokenCache {
    lo: Box<[AtomicU64]>,
    hi: Box<[AtomicU64]>,
    mask: usize,
}

impl TokenCache {
    fn new(cap: usize) -> TokenCache {
        let n = cap.max(2).next_power_of_two();
        TokenCache {
            lo: (0..n).map(|_| AtomicU64::new(0)).collect(),
            hi: (0..n).map(|_| AtomicU64::new(0)).collect(),
            mask: n - 1,
        }
    }
    fn contains(&self, fp: u128) -> bool {
        let (lo, hi) = ((fp as u64) | 1, (fp >> 64) as u64);
        let i = (lo >> 1) as usize & self.mask;
        let l1 = self.lo[i].load(Acquire);
        if l1 != lo {
            return false;
        }
        let h = self.hi[i].load(Acquire);
        // A writer invalidates `lo` first and publishes it last: seeing it unchanged around the
        // read of `hi` means `hi` belongs to it.
        h == hi && self.lo[i].load(Acquire) == l1
    }
    fn insert(&self, fp: u128) {
        let (lo, hi) = ((fp as u64) | 1, (fp >> 64) as u64);
        let i = (lo >> 1) as usize & self.mask;
        self.lo[i].store(0, Release);
        self.hi[i].store(hi, Release);
        self.lo[i].store(lo, Release);
    }
}

/// The replay window: one word per entry, `[fingerprint:40][expiry second:24]`, claimed by CAS.
struct ReplayTable {
    words: Box<[AtomicU64]>,
    mask: usize,
}

const PROBES: usize = 16;

impl ReplayTable {
    fn new(cap: usize) -> ReplayTable {
        let n = cap.max(PROBES).next_power_of_two();
        ReplayTable {
            words: (0..n).map(|_| AtomicU64::new(0)).collect(),
            mask: n - 1,
        }
    }

    fn live(w: u64, now_s: u64) -> bool {
        // expiry seconds are kept modulo 2^24; compare on the circle
        w != 0 && ((w & 0xff_ffff).wrapping_sub(now_s & 0xff_ffff) & 0xff_ffff) < (1 << 23)
    }

    /// Records `fp`; `Err` when it is already live (a replay) or the table has no room.
    ///
    /// One pass over at most `PROBES` slots. Words are never reset to zero (expired entries keep
    /// theirs until reused), so an entry is never stored beyond a never-used slot of its probe
    /// sequence: the scan stops at the first zero word, which in a sparse table is one or two
    /// loads. The new entry takes the first expired slot seen, or that zero slot.
    fn insert(&self, fp: u64, now_ms: u64, window_ms: u64) -> Result<(), TokenIssue> {
        let now_s = now_ms / 1000;
        let exp_s = (now_ms + window_ms).div_ceil(1000);
        // 40 fingerprint bits; bit 24 set so a live word is never zero
        let tag = (fp & !0xff_ffff) | (1 << 24);
        let word = tag | (exp_s & 0xff_ffff);
        let start = fp as usize & self.mask;
        let mut reusable: Option<(usize, u64)> = None;
        let mut i = 0;
        while i < PROBES {
            let at = (start + i) & self.mask;
            let w = self.words[at].load(Acquire);
            if w == 0 {
                let (slot, seen) = reusable.unwrap_or((at, 0));
                match self.words[slot].compare_exchange(seen, word, AcqRel, Acquire) {
                    Ok(_) => return Ok(()),
                    // Someone claimed it meanwhile (maybe with our nonce): look again.
                    Err(_) => {
                        reusable = None;
                        i = 0;
                        continue;
                    }
                }
            }
            if Self::live(w, now_s) {
                if w & !0xff_ffff == tag {
                    return Err(TokenIssue::Replayed);
                }
            } else if reusable.is_none() {
                reusable = Some((at, w));
            }
            i += 1;
        }
        match reusable {
            Some((slot, seen)) => {
                match self.words[slot].compare_exchange(seen, word, AcqRel, Acquire) {
                    Ok(_) => Ok(()),
                    Err(cur) if cur & !0xff_ffff == tag => Err(TokenIssue::Replayed),
                    Err(_) => Err(TokenIssue::ReplayWindowFull),
                }
            }
            None => Err(TokenIssue::ReplayWindowFull),
        }
    }
}

/// Key ring, caches and revocations.
pub struct Identity {
    keys: Vec<(u16, Key)>,
    settings: Settings,
    cache: TokenCache,
    replay: ReplayTable,
    /// Keys the token fingerprints and (tenant, agent) hashes: revocations, the replay window
    /// and the verified-token cache go by them (`keyed.rs`).
    keyed: crate::keyed::KeyedHash,
    revoked_agents: papaya::HashMap<u64, ()>,
    revoked_tokens: papaya::HashMap<u128, ()>,
    /// Tokens revoked on another node of the fleet, by `token_digest` (the same on every node;
    /// `revoked_tokens` is keyed by this node's secret).
    fleet_tokens: papaya::HashMap<u128, ()>,
    /// URL schemes a delegated resource prefix is judged with (`inputs.allowed_schemes`).
    schemes: Vec<&'static str>,
}

/// What identity established about a request.
#[derive(Clone, Copy, Debug)]
pub struct Verified {
    /// The lowest clearance and level along the credential's chain.
    pub clearance: crate::types::Classification,
    pub max_level: crate::types::SecurityLevel,
    /// Delegation links the credential carries (0: the token was issued to the agent itself).
    pub links: u8,
}

fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Identity {
    pub fn new(keys: Vec<(u16, Key)>, settings: Settings) -> Identity {
        Identity {
            keys,
            settings,
            cache: TokenCache::new(settings.token_cache_capacity),
            replay: ReplayTable::new(settings.replay_capacity),
            keyed: crate::keyed::KeyedHash::random(),
            revoked_agents: papaya::HashMap::new(),
            revoked_tokens: papaya::HashMap::new(),
            fleet_tokens: papaya::HashMap::new(),
            schemes: vec!["http", "https"],
        }
    }

    /// The URL schemes a delegated resource prefix is judged with (`inputs.allowed_schemes`;
    /// leaked once at start so the request path borrows them).
    pub fn with_schemes(mut self, schemes: &[String]) -> Identity {
        self.schemes = crate::inputs::leak_schemes(schemes);
        self
    }

    fn agent_key(&self, tenant: &str, agent: &str) -> u64 {
        self.keyed.agent(tenant, agent)
    }

    fn token_fp(&self, token: &[u8]) -> u128 {
        self.keyed.bytes128(token)
    }

    /// Revokes an agent: its next request is denied whichever core serves it.
    pub fn revoke_agent(&self, tenant: &str, agent: &str) {
        self.revoked_agents
            .pin()
            .insert(self.agent_key(tenant, agent), ());
    }
    pub fn release_agent(&self, tenant: &str, agent: &str) {
        self.revoked_agents
            .pin()
            .remove(&self.agent_key(tenant, agent));
    }
    /// Revokes one token, and with it every credential delegated from it. A delegated
    /// credential is named by its links, not its proof: the proof is ignored here.
    pub fn revoke_token(&self, token: &[u8]) {
        self.revoked_tokens
            .pin()
            .insert(self.token_fp(without_proof(token)), ());
    }

    /// Revokes the token whose text without its proof has `token_digest` `digest` (a
    /// revocation made on another node of the fleet), and every credential delegated from it.
    pub fn revoke_token_digest(&self, digest: u128) {
        self.fleet_tokens.pin().insert(digest, ());
    }

    fn verify_tag(
        &self,
        alg: Alg,
        key_id: u16,
        signed: &[u8],
        tag: &[u8],
    ) -> Result<(), TokenIssue> {
        let key = self
            .keys
            .iter()
            .find(|(id, _)| *id == key_id)
            .map(|(_, k)| k)
            .ok_or(TokenIssue::UnknownKey)?;
        match (alg, key) {
            (Alg::Ed25519, Key::Ed25519(vk)) => {
                let sig = Signature::from_slice(tag).map_err(|_| TokenIssue::Malformed)?;
                vk.verify_strict(signed, &sig)
                    .map_err(|_| TokenIssue::BadSignature)
            }
            (Alg::HmacSha256, Key::Hmac(secret)) => {
                let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
                    .map_err(|_| TokenIssue::UnknownKey)?;
                mac.update(signed);
                mac.verify_slice(tag).map_err(|_| TokenIssue::BadSignature)
            }
            (Alg::HmacSha256, Key::Keystore(keys)) => match keys.soft_keys() {
                Some(k) if k.hmac_verify(signed, tag) => Ok(()),
                Some(_) => Err(TokenIssue::BadSignature),
                None => Err(TokenIssue::NeedsHsm),
            },
            _ => Err(TokenIssue::UnknownKey),
        }
    }

    /// Records that the root tag of `credential` verified (the HSM core calls this after
    /// verifying it), so the request it came with, handed back to its core, passes without
    /// another trip. A delegated credential's links and proof are still checked on the core.
    pub fn remember(&self, credential: &[u8]) {
        let mut buf = [0u8; MAX_TOKEN_BYTES];
        if let Ok(p) = token::parse(credential, &mut buf) {
            let root = &credential[..credential.len() - p.rest.len()];
            self.cache.insert(self.token_fp(root));
        }
    }

    /// Verifies every signature of a credential seen for the first time, and its proof: the
    /// root's tag (unless a verified prefix of the chain is remembered), each link's signature
    /// by the holder before it, and the proof against the last holder. Each verified prefix is
    /// remembered, so the first presentation of a credential delegated from a known one costs
    /// one signature check.
    fn verify_chain(&self, c: &chain::Credential<'_>, credential: &[u8]) -> Result<(), TokenIssue> {
        let n = c.links().len();
        let mut from = None;
        if c.root.claims.holder.is_some() {
            from = (0..=n).rev().find(|&i| {
                self.cache
                    .contains(self.token_fp(&credential[..c.prefix_len(i)]))
            });
        }
        let from = match from {
            Some(i) => i,
            None => {
                let r = &c.root;
                self.verify_tag(r.claims.alg, r.claims.key_id, r.signed, r.tag)?;
                if r.claims.holder.is_some() {
                    self.cache
                        .insert(self.token_fp(&credential[..c.prefix_len(0)]));
                }
                0
            }
        };
        let mut msg = [0u8; chain::LINK_CONTEXT.len() + 64 + MAX_TOKEN_BYTES];
        for (i, l) in c.links().iter().enumerate().skip(from) {
            let holder = c.holder(i).ok_or(TokenIssue::Malformed)?;
            let vk = VerifyingKey::from_bytes(&holder.key).map_err(|_| TokenIssue::BadSignature)?;
            let sig = Signature::from_slice(l.signature).map_err(|_| TokenIssue::Malformed)?;
            let prev = c.tag_before(i);
            let len = chain::LINK_CONTEXT.len() + prev.len() + l.bytes.len();
            let m = msg.get_mut(..len).ok_or(TokenIssue::Malformed)?;
            let (ctx, tail) = m.split_at_mut(chain::LINK_CONTEXT.len());
            ctx.copy_from_slice(chain::LINK_CONTEXT);
            tail[..prev.len()].copy_from_slice(prev);
            tail[prev.len()..].copy_from_slice(l.bytes);
            vk.verify_strict(m, &sig)
                .map_err(|_| TokenIssue::BadSignature)?;
            self.cache
                .insert(self.token_fp(&credential[..c.prefix_len(i + 1)]));
        }
        if let Some(h) = c.holder(n) {
            let proof = c.proof.ok_or(TokenIssue::Malformed)?;
            if chain::proof_hash(proof) != h.proof_hash {
                return Err(TokenIssue::BadSignature);
            }
        }
        Ok(())
    }

    /// The request's tool and resource against every link's tools and resource prefix.
    fn within_links(&self, c: &chain::Credential<'_>, req: &Request<'_>) -> Result<(), TokenIssue> {
        let mut prefixed = false;
        for l in c.links() {
            if !l.allows_tool(req.tool) {
                return Err(TokenIssue::OutsideDelegation);
            }
            prefixed |= !l.resource_prefix.is_empty();
        }
        if !prefixed {
            return Ok(());
        }
        // The resource as the policy judges it: a path in its literal and decoded forms, a URL
        // as serialized and as a decoding server reads it. Every form must lie under every
        // prefix; a resource that does not resolve, or none at all, is outside.
        let all = |s: &[u8]| {
            c.links().iter().all(|l| {
                l.resource_prefix.is_empty() || chain::under(l.resource_prefix.as_bytes(), s)
            })
        };
        // A plain path (printable ASCII, no `%` to decode, no `\`, `//` or dot segment) is its
        // own decoded form: no need to resolve it (what resolving would refuse in it, the
        // resource stage refuses).
        let r = req.resource;
        if r.starts_with('/')
            && r.bytes()
                .all(|b| (0x21..0x7f).contains(&b) && b != b'%' && b != b'\\')
            && !r.contains("//")
            && !r.split('/').any(|s| s == "." || s == "..")
        {
            return if all(r.as_bytes()) {
                Ok(())
            } else {
                Err(TokenIssue::OutsideDelegation)
            };
        }
        let inside = crate::inputs::resolve(req.resource, &self.schemes, |r| match r {
            crate::inputs::Resolved::Empty => false,
            crate::inputs::Resolved::Path { raw, decoded } => all(raw.as_bytes()) && all(decoded),
            crate::inputs::Resolved::Url(u) => {
                all(u.as_str().as_bytes())
                    && crate::inputs::with_decoded_url_form(&u, |d| all(d.as_bytes()))
                        .unwrap_or(false)
            }
        });
        if inside == Ok(true) {
            Ok(())
        } else {
            Err(TokenIssue::OutsideDelegation)
        }
    }

    /// Checks the request's token, timestamp and nonce. No allocation; the signature is checked
    /// only on a token's first presentation.
    pub fn check(&self, req: &Request<'_>) -> Result<Verified, TokenIssue> {
        self.check_at(req, wall_ms())
    }

    pub fn check_at(&self, req: &Request<'_>, now_ms: u64) -> Result<Verified, TokenIssue> {
        // without a policy, an agent earlier in a chain is held to its links only
        let mut refused = None;
        self.check_inner(
            req,
            now_ms,
            &mut |_| Ok(Classification::TopSecret),
            &mut refused,
        )
    }

    /// `check`, with the engine's word on each agent earlier in a delegation chain: `upstream`
    /// returns the clearance that agent has for this request, or why it could not make the
    /// request itself now (not granted, quarantined, over its rate, too little trust), which is
    /// then the request's denial. A delegated request is thus judged by the intersection of the
    /// chain: every link's limits and every agent's standing, the delegate's own included (by
    /// the caller).
    pub fn check_with(
        &self,
        req: &Request<'_>,
        upstream: &mut dyn FnMut(&str) -> Result<Classification, DenyReason>,
    ) -> Result<Verified, DenyReason> {
        self.check_with_at(req, wall_ms(), upstream)
    }

    pub fn check_with_at(
        &self,
        req: &Request<'_>,
        now_ms: u64,
        upstream: &mut dyn FnMut(&str) -> Result<Classification, DenyReason>,
    ) -> Result<Verified, DenyReason> {
        let mut refused = None;
        self.check_inner(req, now_ms, upstream, &mut refused)
            .map_err(|issue| refused.unwrap_or(DenyReason::Identity(issue)))
    }

    /// The checks; an upstream refusal is returned as `OutsideDelegation` with its reason in
    /// `refused`.
    fn check_inner(
        &self,
        req: &Request<'_>,
        now_ms: u64,
        upstream: &mut dyn FnMut(&str) -> Result<Classification, DenyReason>,
        refused: &mut Option<DenyReason>,
    ) -> Result<Verified, TokenIssue> {
        // Bytes that verified before need only their limits decoded; others everything, and
        // their structure is checked (cheap) before any signature.
        let fp = self.token_fp(req.credential);
        let verified = self.cache.contains(fp);
        let mut buf = [0u8; 2 * MAX_TOKEN_BYTES];
        let cred = chain::parse_with(req.credential, &mut buf, !verified)?;
        let c = cred.root.claims;
        chain::check_narrowing(&cred)?;
        if !verified {
            self.verify_chain(&cred, req.credential)?;
            self.cache.insert(fp);
        }
        let skew = self.settings.max_clock_skew_ms;
        if c.expires_at_ms <= c.issued_at_ms {
            return Err(TokenIssue::Malformed);
        }
        // every link's expiry is at most the root's (`check_narrowing`): the last is the least
        let expires = cred
            .links()
            .last()
            .map_or(c.expires_at_ms, |l| l.expires_at_ms);
        if now_ms >= expires.saturating_add(skew) {
            return Err(TokenIssue::Expired);
        }
        if c.issued_at_ms > now_ms.saturating_add(skew) {
            return Err(TokenIssue::NotYetValid);
        }
        if c.tenant != req.tenant || cred.subject() != req.agent {
            return Err(TokenIssue::WrongSubject);
        }
        let links = cred.links().len();
        if !self.revoked_tokens.is_empty() {
            let revoked = self.revoked_tokens.pin();
            // a link revoked revokes every credential delegated below it
            if (0..=links).any(|i| {
                revoked.contains_key(&self.token_fp(&req.credential[..cred.prefix_len(i)]))
            }) {
                return Err(TokenIssue::Revoked);
            }
        }
        if !self.fleet_tokens.is_empty() {
            let revoked = self.fleet_tokens.pin();
            if (0..=links)
                .any(|i| revoked.contains_key(&token_digest(&req.credential[..cred.prefix_len(i)])))
            {
                return Err(TokenIssue::Revoked);
            }
        }
        if !self.revoked_agents.is_empty() {
            let revoked = self.revoked_agents.pin();
            // an agent revoked can no longer act through those it delegated to
            if cred
                .agents()
                .any(|a| revoked.contains_key(&self.agent_key(req.tenant, a)))
            {
                return Err(TokenIssue::Revoked);
            }
        }
        if req.timestamp_ms.abs_diff(now_ms) > skew {
            return Err(TokenIssue::StaleRequest);
        }
        if req.nonce == 0 {
            return Err(TokenIssue::MissingNonce);
        }
        let (mut clearance, max_level) = cred
            .links()
            .last()
            .map_or((c.clearance, c.max_level), |l| (l.clearance, l.max_level));
        if req.classification > clearance {
            return Err(TokenIssue::Insufficient);
        }
        if links > 0 {
            self.within_links(&cred, req)?;
        }
        let nfp = xxhash_rust::xxh3::xxh3_64_with_seed(
            &req.nonce.to_le_bytes(),
            self.agent_key(req.tenant, req.agent),
        );
        self.replay
            .insert(nfp, now_ms, self.settings.replay_window_ms)?;
        // Last, once the request is known fresh (a replay must not spend an upstream agent's
        // rate): each agent earlier in a chain, by the engine's word.
        if links > 0 {
            for a in cred.agents().take(links) {
                match upstream(a) {
                    Ok(cl) => clearance = clearance.min(cl),
                    Err(r) => {
                        *refused = Some(r);
                        return Err(TokenIssue::OutsideDelegation);
                    }
                }
            }
        }
        Ok(Verified {
            clearance,
            max_level,
            links: links as u8,
        })
    }
}

/// What names a credential (its text without proof) across a fleet: 128 bits of BLAKE3, the
/// same on every node, so a revocation can be shared without the token itself.
pub fn token_digest(text: &[u8]) -> u128 {
    let mut h = blake3::Hasher::new();
    h.update(b"warden fleet token\0");
    h.update(text);
    let mut b = [0u8; 16];
    b.copy_from_slice(&h.finalize().as_bytes()[..16]);
    u128::from_le_bytes(b)
}

/// A credential's text without its proof (what names it for revocation): everything up to the
/// last link's signature, or the whole of a token that is not delegable.
pub fn without_proof(credential: &[u8]) -> &[u8] {
    let mut buf = [0u8; 2 * MAX_TOKEN_BYTES];
    match chain::parse(credential, &mut buf) {
        Ok(c) => {
            let n = c.links().len();
            &credential[..c.prefix_len(n)]
        }
        Err(_) => credential,
    }
}

// ---- settings (`[identity]` in the config file) ----

/// Where a key comes from: a file (raw bytes or hex) or an environment variable (hex).
#[derive(Clone, Debug, PartialEq, Default, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeyRef {
    /// The key id tokens name.
    pub id: u16,
    pub file: String,
    pub env: String,
}

#[derive(Clone, Debug, PartialEq, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct IdentityConfig {
    /// Every request must carry a valid wdn1 token, a fresh timestamp and an unused nonce.
    /// Needs a policy. Without it, a request that carries a token anyway has it verified (with
    /// keys configured; refused `unknown_key` without) and is held to its limits.
    pub require_token: bool,
    /// Ed25519 public keys (32 bytes) that verify tokens.
    pub ed25519_public_keys: Vec<KeyRef>,
    /// HMAC-SHA256 secrets (at least 32 bytes) that verify tokens. Secret: keep the file 0600
    /// or use `env`; never put key material in this file.
    pub hmac_keys: Vec<KeyRef>,
    /// Tokens naming this key id are HMAC-tagged by the keystore's HMAC key (`[hsm]`): verified
    /// on the HSM core with a PKCS#11 module, in place with the software keystore. 0: none.
    pub keystore_hmac_key_id: u16,
    /// Tokens naming this key id are Ed25519-signed by the keystore's signature key, verified
    /// on the cores with its public key. 0: none.
    pub keystore_signing_key_id: u16,
    /// Allowed difference between a request's timestamp (and a token's times) and warden's clock.
    pub max_clock_skew_ms: u64,
    /// How long a used nonce is remembered; at least twice the skew.
    pub replay_window_ms: u64,
    /// Nonces remembered at once (a full window denies with replay_window_full, fail closed).
    pub replay_capacity: usize,
    /// Verified tokens remembered, so a repeat presentation skips the signature check.
    pub token_cache_capacity: usize,
}

impl IdentityConfig {
    /// Whether tokens can be verified here: required, or a key configured. Then a credential a
    /// request carries is always verified and its limits applied, required or not.
    pub fn verifies_tokens(&self) -> bool {
        self.require_token
            || !self.ed25519_public_keys.is_empty()
            || !self.hmac_keys.is_empty()
            || self.keystore_hmac_key_id != 0
            || self.keystore_signing_key_id != 0
    }
}

impl Default for IdentityConfig {
    fn default() -> Self {
        let s = crate::identity::Settings::default();
        IdentityConfig {
            require_token: false,
            ed25519_public_keys: Vec::new(),
            hmac_keys: Vec::new(),
            keystore_hmac_key_id: 0,
            keystore_signing_key_id: 0,
            max_clock_skew_ms: s.max_clock_skew_ms,
            replay_window_ms: s.replay_window_ms,
            replay_capacity: s.replay_capacity,
            token_cache_capacity: s.token_cache_capacity,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Classification, Operation, SecurityLevel};
    use ed25519_dalek::{Signer, SigningKey};
    use token::Claims;

    fn mint_hmac(secret: &[u8], tenant: &str, agent: &str, iat: u64, exp: u64) -> String {
        let c = Claims {
            alg: Alg::HmacSha256,
            key_id: 2,
            clearance: Classification::Secret,
            max_level: SecurityLevel::Restricted,
            issued_at_ms: iat,
            expires_at_ms: exp,
            nonce: 1,
            tenant,
            agent,
            role: "analyst",
            holder: None,
        };
        let signed = token::encode_claims(&c).unwrap();
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap();
        mac.update(&signed);
        token::assemble(&signed, &mac.finalize().into_bytes())
    }

    fn ident(ed: &SigningKey) -> Identity {
        Identity::new(
            vec![
                (1, Key::Ed25519(ed.verifying_key())),
                (2, Key::Hmac(vec![7u8; 32].into())),
            ],
            Settings::default(),
        )
    }

    const NOW: u64 = 1_800_000_000_000;

    fn req<'a>(tok: &'a str, nonce: u64) -> Request<'a> {
        Request::new(Operation::Check)
            .tenant("acme")
            .agent("a1")
            .credential(tok.as_bytes())
            .nonce(nonce)
            .timestamp_ms(NOW)
    }

    #[test]
    fn hmac_and_ed25519_tokens_verify_and_bad_ones_do_not() {
        let ed = SigningKey::from_bytes(&[9u8; 32]);
        let id = ident(&ed);
        let tok = mint_hmac(&[7u8; 32], "acme", "a1", NOW - 1000, NOW + 60_000);
        assert!(id.check_at(&req(&tok, 1), NOW).is_ok());
        // a second presentation: cache hit, new nonce
        assert!(id.check_at(&req(&tok, 2), NOW).is_ok());
        // replay of nonce 2
        assert_eq!(
            id.check_at(&req(&tok, 2), NOW).err(),
            Some(TokenIssue::Replayed)
        );
        // wrong key
        let bad = mint_hmac(&[8u8; 32], "acme", "a1", NOW - 1000, NOW + 60_000);
        assert_eq!(
            id.check_at(&req(&bad, 3), NOW).err(),
            Some(TokenIssue::BadSignature)
        );
        // tampered claims: flip the agent name in the claims, keep the tag
        let forged = tok.replacen(&tok[5..12], &"B".repeat(7), 1);
        assert!(id.check_at(&req(&forged, 4), NOW).is_err());
        // expired and not yet valid
        let old = mint_hmac(&[7u8; 32], "acme", "a1", NOW - 600_000, NOW - 60_000);
        assert_eq!(
            id.check_at(&req(&old, 5), NOW).err(),
            Some(TokenIssue::Expired)
        );
        let future = mint_hmac(&[7u8; 32], "acme", "a1", NOW + 600_000, NOW + 900_000);
        assert_eq!(
            id.check_at(&req(&future, 6), NOW).err(),
            Some(TokenIssue::NotYetValid)
        );
        // another agent's token
        let other = mint_hmac(&[7u8; 32], "acme", "a2", NOW - 1000, NOW + 60_000);
        assert_eq!(
            id.check_at(&req(&other, 7), NOW).err(),
            Some(TokenIssue::WrongSubject)
        );
        // stale request timestamp
        let r = req(&tok, 8).timestamp_ms(NOW - 120_000);
        assert_eq!(id.check_at(&r, NOW).err(), Some(TokenIssue::StaleRequest));
        // Ed25519
        let c = Claims {
            alg: Alg::Ed25519,
            key_id: 1,
            clearance: Classification::Cui,
            max_level: SecurityLevel::Safe,
            issued_at_ms: NOW,
            expires_at_ms: NOW + 1000,
            nonce: 0,
            tenant: "acme",
            agent: "a1",
            role: "",
            holder: None,
        };
        let signed = token::encode_claims(&c).unwrap();
        let t = token::assemble(&signed, &ed.sign(&signed).to_bytes());
        let v = id.check_at(&req(&t, 9), NOW).unwrap();
        assert_eq!(v.clearance, Classification::Cui);
        // clearance in the token below the request's classification
        let r = req(&t, 10).classification(Classification::Secret);
        assert_eq!(id.check_at(&r, NOW).err(), Some(TokenIssue::Insufficient));
        // unknown key id
        let c2 = Claims { key_id: 42, ..c };
        let s2 = token::encode_claims(&c2).unwrap();
        let t2 = token::assemble(&s2, &ed.sign(&s2).to_bytes());
        assert_eq!(
            id.check_at(&req(&t2, 11), NOW).err(),
            Some(TokenIssue::UnknownKey)
        );
        // revocation
        id.revoke_agent("acme", "a1");
        assert_eq!(
            id.check_at(&req(&tok, 12), NOW).err(),
            Some(TokenIssue::Revoked)
        );
        id.release_agent("acme", "a1");
        assert!(id.check_at(&req(&tok, 13), NOW).is_ok());
        id.revoke_token(tok.as_bytes());
        assert_eq!(
            id.check_at(&req(&tok, 14), NOW).err(),
            Some(TokenIssue::Revoked)
        );
    }

    #[test]
    fn replay_table_expires_and_fills_closed() {
        let t = ReplayTable::new(16);
        assert_eq!(t.insert(42, NOW, 2000), Ok(()));
        assert_eq!(t.insert(42, NOW + 1000, 2000), Err(TokenIssue::Replayed));
        assert_eq!(
            t.insert(42, NOW + 4000, 2000),
            Ok(()),
            "expired entries are reused"
        );
        let mut full = false;
        for i in 0..64u64 {
            if t.insert(i << 30 | 7, NOW + 4000, 60_000) == Err(TokenIssue::ReplayWindowFull) {
                full = true;
            }
        }
        assert!(full, "a full window fails closed");
    }

    #[test]
    fn concurrent_replays_are_caught_on_any_thread() {
        let t = std::sync::Arc::new(ReplayTable::new(1 << 12));
        for round in 0..200u64 {
            let hs: Vec<_> = (0..4)
                .map(|_| {
                    let t = t.clone();
                    std::thread::spawn(move || {
                        t.insert(round.wrapping_mul(0x9e37_79b9_7f4a_7c15), NOW, 60_000)
                            .is_ok()
                    })
                })
                .collect();
            let ok = hs
                .into_iter()
                .map(|h| h.join().unwrap())
                .filter(|&b| b)
                .count();
            assert_eq!(
                ok, 1,
                "exactly one of four concurrent uses of a nonce succeeds"
            );
        }
    }
}
