//! The per-core verdict cache: single owner, bounded, classification- and tenant-safe.
//!
//! Invariants:
//! - owned by exactly one core (`&mut self` everywhere; not `Sync`); no locks, no atomics;
//! - never allocates after `Shard::new`; capacity is fixed;
//! - the key covers operation, classification, tenant, agent, credential, tool, action, resource
//!   and content (xxh3-128 over the wire form, priority, timestamp and nonce excluded), and each
//!   entry also stores the tenant hash and classification it was computed for, checked on hit:
//!   an entry never serves another tenant or classification even on a 128-bit collision;
//! - a hit requires: same policy epoch, unexpired TTL, and (when enabled) a keyed blake3 tag over
//!   the entry that still matches; any failure removes the entry and is reported as its own kind
//!   of miss so metrics can count it;
//! - operations whose TTL is 0 (audit, encrypt, decrypt, sign) are never stored.

mod index;
mod policy;

pub use policy::Eviction;

use crate::request::HEADER_BYTES;
use crate::types::{Classification, CryptoOp, Operation, Verdict};
use index::Index;
use policy::Policy;
use serde::Deserialize;

/// Rows of the TTL table. `Custom` holds the base TTL of the adaptive custom-operation rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TtlRow {
    ValidateAgent = 0,
    AuthorizeTool = 1,
    ScanContent = 2,
    Check = 3,
    CryptoVerify = 4,
    Custom = 5,
}

/// TTL in milliseconds per (operation, classification); 0 means never cached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TtlTable {
    pub ms: [[u64; 5]; 6],
    /// Adaptive TTL for custom operations: the TTL doubles every `adaptive_hits_per_step` hits,
    /// up to `adaptive_max_ms`.
    pub adaptive_max_ms: u64,
    pub adaptive_hits_per_step: u32,
}

impl Default for TtlTable {
    /// The seed's defaults: agent validation 60 s unclassified/CUI, 30 s confidential, 5 s secret
    /// and above; threat detection 5 s; crypto verification 5 s; custom adaptive from 1 s to 60 s.
    fn default() -> Self {
        let agent = [60_000, 60_000, 30_000, 5_000, 5_000];
        TtlTable {
            ms: [
                agent,
                agent,
                [5_000; 5],
                [5_000, 5_000, 5_000, 5_000, 5_000],
                [5_000; 5],
                [1_000; 5],
            ],
            adaptive_max_ms: 60_000,
            adaptive_hits_per_step: 8,
        }
    }
}

impl TtlTable {
    /// The row for an operation, or `None` when it is never cached.
    pub fn row(op: Operation) -> Option<TtlRow> {
        Some(match op {
            Operation::ValidateAgent => TtlRow::ValidateAgent,
            Operation::AuthorizeTool => TtlRow::AuthorizeTool,
            Operation::ScanContent => TtlRow::ScanContent,
            Operation::Check => TtlRow::Check,
            Operation::Crypto(CryptoOp::Verify) => TtlRow::CryptoVerify,
            Operation::Custom(_) => TtlRow::Custom,
            Operation::Audit | Operation::Crypto(_) => return None,
        })
    }
    /// Base TTL in nanoseconds (0 = never cache).
    pub fn ttl_ns(&self, op: Operation, c: Classification) -> u64 {
        match Self::row(op) {
            Some(r) => self.ms[r as usize][c as usize].saturating_mul(1_000_000),
            None => 0,
        }
    }
}

/// A request's cache identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheKey {
    pub hash: u128,
    pub tenant: u64,
    pub classification: Classification,
}

impl CacheKey {
    /// Key of an encoded request (`wire` is the output of `Request::encode`): the keyed hash
    /// of everything but priority, timestamp and nonce (operation and classification
    /// included), in one pass, and the keyed tag of its tenant (`keyed.rs`).
    #[inline]
    pub fn from_wire(
        keyed: &crate::keyed::KeyedHash,
        wire: &[u8],
        c: Classification,
        tenant: &str,
    ) -> CacheKey {
        debug_assert!(wire.len() >= HEADER_BYTES);
        CacheKey {
            hash: keyed.request(wire),
            tenant: keyed.tenant(tenant),
            classification: c,
        }
    }
}

/// Why a lookup missed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Miss {
    Absent,
    Expired,
    /// Computed under an older policy epoch.
    StaleEpoch,
    /// The integrity tag did not match: the entry was corrupted in memory.
    Integrity,
    /// The operation is never cached.
    Uncacheable,
}

#[derive(Clone, Copy)]
struct Entry {
    key: u128,
    tenant: u64,
    verdict: Verdict,
    inserted_ns: u64,
    ttl_ns: u64,
    epoch: u64,
    hits: u32,
    classification: Classification,
    adaptive: bool,
    tag: [u8; 16],
}

/// Cache configuration for one shard.
#[derive(Clone, Copy, Debug)]
pub struct ShardConfig {
    pub capacity: usize,
    pub eviction: Eviction,
    pub verify_integrity: bool,
    pub ttl: TtlTable,
}

/// One core's cache.
pub struct Shard {
    entries: Box<[Entry]>,
    free: Box<[u32]>,
    free_len: usize,
    index: Index,
    policy: Policy,
    tag_key: [u8; 32],
    cfg: ShardConfig,
    len: usize,
    evictions: u64,
}

impl Shard {
    /// `tag_key` keys the integrity tags; the engine draws it from the OS at start.
    pub fn new(cfg: ShardConfig, tag_key: [u8; 32]) -> Shard {
        let cap = cfg.capacity.max(1);
        let blank = Entry {
            key: 0,
            tenant: 0,
            verdict: Verdict::default(),
            inserted_ns: 0,
            ttl_ns: 0,
            epoch: 0,
            hits: 0,
            classification: Classification::Unclassified,
            adaptive: false,
            tag: [0; 16],
        };
        Shard {
            entries: vec![blank; cap].into_boxed_slice(),
            free: (0..cap as u32).rev().collect(),
            free_len: cap,
            index: Index::new(cap),
            policy: Policy::new(cfg.eviction, cap),
            tag_key,
            cfg: ShardConfig {
                capacity: cap,
                ..cfg
            },
            len: 0,
            evictions: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn capacity(&self) -> usize {
        self.cfg.capacity
    }
    pub fn evictions(&self) -> u64 {
        self.evictions
    }
    pub fn ttl(&self) -> &TtlTable {
        &self.cfg.ttl
    }

    fn tag(&self, e: &Entry) -> [u8; 16] {
        let mut m = [0u8; 64];
        m[..16].copy_from_slice(&e.key.to_le_bytes());
        m[16..56].copy_from_slice(&e.verdict.cache_bytes());
        let mix = e.epoch
            ^ e.inserted_ns.rotate_left(21)
            ^ e.ttl_ns.rotate_left(42)
            ^ e.tenant.rotate_left(7)
            ^ ((e.classification as u64) << 59)
            ^ ((e.adaptive as u64) << 63);
        m[56..].copy_from_slice(&mix.to_le_bytes());
        let h = blake3::keyed_hash(&self.tag_key, &m);
        let mut t = [0u8; 16];
        t.copy_from_slice(&h.as_bytes()[..16]);
        t
    }

    fn effective_ttl_ns(&self, e: &Entry) -> u64 {
        if !e.adaptive {
            return e.ttl_ns;
        }
        let steps = (e.hits / self.cfg.ttl.adaptive_hits_per_step.max(1)).min(20);
        (e.ttl_ns << steps).min(
            self.cfg
                .ttl
                .adaptive_max_ms
                .saturating_mul(1_000_000)
                .max(e.ttl_ns),
        )
    }

    fn remove_idx(&mut self, idx: u32) {
        let key = self.entries[idx as usize].key;
        let entries = &self.entries;
        self.index.remove(key, idx, |i| entries[i as usize].key);
        self.len -= 1;
        if self.policy.on_remove(idx) {
            self.free[self.free_len] = idx;
            self.free_len += 1;
        }
    }

    /// Looks `key` up at time `now_ns` under policy `epoch`.
    #[inline]
    pub fn get(
        &mut self,
        key: &CacheKey,
        op: Operation,
        now_ns: u64,
        epoch: u64,
    ) -> Result<Verdict, Miss> {
        if TtlTable::row(op).is_none() {
            return Err(Miss::Uncacheable);
        }
        let entries = &self.entries;
        let idx = self
            .index
            .find(key.hash, |i| entries[i as usize].key)
            .ok_or(Miss::Absent)?;
        let e = self.entries[idx as usize];
        if e.tenant != key.tenant || e.classification != key.classification {
            return Err(Miss::Absent);
        }
        if e.epoch != epoch {
            self.remove_idx(idx);
            return Err(Miss::StaleEpoch);
        }
        if now_ns.saturating_sub(e.inserted_ns) >= self.effective_ttl_ns(&e) {
            self.remove_idx(idx);
            return Err(Miss::Expired);
        }
        if self.cfg.verify_integrity && !ct_eq(&self.tag(&e), &e.tag) {
            self.remove_idx(idx);
            return Err(Miss::Integrity);
        }
        self.entries[idx as usize].hits = e.hits.saturating_add(1);
        self.policy.on_hit(idx);
        Ok(e.verdict)
    }

    /// Stores a verdict. Does nothing for never-cached operations or a zero TTL. Replaces an
    /// existing entry of the same key. Returns whether an entry was evicted to make room.
    pub fn insert(
        &mut self,
        key: &CacheKey,
        op: Operation,
        verdict: &Verdict,
        now_ns: u64,
        epoch: u64,
    ) -> bool {
        let ttl_ns = self.cfg.ttl.ttl_ns(op, key.classification);
        if ttl_ns == 0 {
            return false;
        }
        let entries = &self.entries;
        if let Some(old) = self.index.find(key.hash, |i| entries[i as usize].key) {
            self.remove_idx(old);
        }
        let mut evicted = false;
        if self.free_len == 0 {
            let entries = &self.entries;
            match self.policy.evict(|i| entries[i as usize].key) {
                Some(v) => {
                    if v.live {
                        let k = self.entries[v.idx as usize].key;
                        let entries = &self.entries;
                        self.index.remove(k, v.idx, |i| entries[i as usize].key);
                        self.len -= 1;
                        self.evictions += 1;
                        evicted = true;
                    }
                    self.free[self.free_len] = v.idx;
                    self.free_len += 1;
                }
                None => return false,
            }
        }
        self.free_len -= 1;
        let idx = self.free[self.free_len];
        let mut e = Entry {
            key: key.hash,
            tenant: key.tenant,
            verdict: Verdict {
                cache_hit: false,
                latency_ns: 0,
                core: 0,
                trust_pct: crate::trust::NO_TRUST,
                ..*verdict
            },
            inserted_ns: now_ns,
            ttl_ns,
            epoch,
            hits: 0,
            classification: key.classification,
            adaptive: matches!(op, Operation::Custom(_)),
            tag: [0; 16],
        };
        e.tag = self.tag(&e);
        self.entries[idx as usize] = e;
        self.index.insert(key.hash, idx);
        self.policy.on_insert(idx, key.hash);
        self.len += 1;
        evicted
    }

    /// Test and fault-injection hook: flips one bit of the stored verdict of `key`, as a memory
    /// fault or a stray write would. Returns whether the entry was found.
    #[doc(hidden)]
    pub fn corrupt_for_test(&mut self, key: &CacheKey, bit: u32) -> bool {
        let entries = &self.entries;
        match self.index.find(key.hash, |i| entries[i as usize].key) {
            Some(i) => {
                let e = &mut self.entries[i as usize];
                e.verdict.obligations.memory_bytes ^= 1u64 << (bit % 64);
                true
            }
            None => false,
        }
    }
}

/// Constant-time comparison of two tags.
#[inline]
fn ct_eq(a: &[u8; 16], b: &[u8; 16]) -> bool {
    let mut d = 0u8;
    for i in 0..16 {
        d |= a[i] ^ b[i];
    }
    d == 0
}

// ---- settings (`[cache]` in the config file) ----

/// TTLs in milliseconds per classification; 0 = never cached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct TtlByClass {
    pub unclassified: u64,
    pub cui: u64,
    pub confidential: u64,
    pub secret: u64,
    pub top_secret: u64,
}

impl TtlByClass {
    fn from_row(r: [u64; 5]) -> Self {
        TtlByClass {
            unclassified: r[0],
            cui: r[1],
            confidential: r[2],
            secret: r[3],
            top_secret: r[4],
        }
    }
    fn row(&self) -> [u64; 5] {
        [
            self.unclassified,
            self.cui,
            self.confidential,
            self.secret,
            self.top_secret,
        ]
    }
}

#[derive(Clone, Debug, PartialEq, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TtlConfig {
    #[serde(deserialize_with = "partial_ttl_validate_agent")]
    pub validate_agent: TtlByClass,
    #[serde(deserialize_with = "partial_ttl_authorize_tool")]
    pub authorize_tool: TtlByClass,
    #[serde(deserialize_with = "partial_ttl_scan_content")]
    pub scan_content: TtlByClass,
    #[serde(deserialize_with = "partial_ttl_check")]
    pub check: TtlByClass,
    #[serde(deserialize_with = "partial_ttl_crypto_verify")]
    pub crypto_verify: TtlByClass,
    /// Base TTL of custom operations; it doubles every `adaptive_hits_per_step` hits.
    #[serde(deserialize_with = "partial_ttl_custom_base")]
    pub custom_base: TtlByClass,
    pub adaptive_max_ms: u64,
    pub adaptive_hits_per_step: u32,
}

impl Default for TtlConfig {
    fn default() -> Self {
        let t = TtlTable::default();
        TtlConfig {
            validate_agent: TtlByClass::from_row(t.ms[0]),
            authorize_tool: TtlByClass::from_row(t.ms[1]),
            scan_content: TtlByClass::from_row(t.ms[2]),
            check: TtlByClass::from_row(t.ms[3]),
            crypto_verify: TtlByClass::from_row(t.ms[4]),
            custom_base: TtlByClass::from_row(t.ms[5]),
            adaptive_max_ms: t.adaptive_max_ms,
            adaptive_hits_per_step: t.adaptive_hits_per_step,
        }
    }
}

impl TtlConfig {
    pub fn table(&self) -> TtlTable {
        TtlTable {
            ms: [
                self.validate_agent.row(),
                self.authorize_tool.row(),
                self.scan_content.row(),
                self.check.row(),
                self.crypto_verify.row(),
                self.custom_base.row(),
            ],
            adaptive_max_ms: self.adaptive_max_ms,
            adaptive_hits_per_step: self.adaptive_hits_per_step,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EvictionName {
    #[default]
    S3fifo,
    Lru,
}

#[derive(Clone, Debug, PartialEq, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// Entries per core (0 disables caching).
    pub capacity_per_core: usize,
    pub eviction: EvictionName,
    /// Check each hit's keyed blake3 tag; a mismatch is a miss, counted.
    pub verify_integrity: bool,
    pub ttl_ms: TtlConfig,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            capacity_per_core: 65_536,
            eviction: EvictionName::S3fifo,
            verify_integrity: true,
            ttl_ms: TtlConfig::default(),
        }
    }
}

impl CacheConfig {
    pub fn shard(&self) -> ShardConfig {
        ShardConfig {
            capacity: self.capacity_per_core,
            eviction: match self.eviction {
                EvictionName::S3fifo => Eviction::S3Fifo,
                EvictionName::Lru => Eviction::Lru,
            },
            verify_integrity: self.verify_integrity,
            ttl: self.ttl_ms.table(),
        }
    }
}

crate::source::partial_tables!(TtlByClass { unclassified, cui, confidential, secret, top_secret }:
    partial_ttl_validate_agent = TtlConfig::default().validate_agent;
    partial_ttl_authorize_tool = TtlConfig::default().authorize_tool;
    partial_ttl_scan_content = TtlConfig::default().scan_content;
    partial_ttl_check = TtlConfig::default().check;
    partial_ttl_crypto_verify = TtlConfig::default().crypto_verify;
    partial_ttl_custom_base = TtlConfig::default().custom_base;
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Request;
    use crate::types::{Decision, DenyReason};

    fn cfg(cap: usize, eviction: Eviction) -> ShardConfig {
        ShardConfig {
            capacity: cap,
            eviction,
            verify_integrity: true,
            ttl: TtlTable::default(),
        }
    }

    static KEYED: std::sync::LazyLock<crate::keyed::KeyedHash> =
        std::sync::LazyLock::new(crate::keyed::KeyedHash::random);

    fn key(op: Operation, tenant: &str, agent: &str, c: Classification) -> CacheKey {
        let r = Request::new(op)
            .tenant(tenant)
            .agent(agent)
            .classification(c);
        let mut buf = vec![0u8; r.encoded_len()];
        r.encode(&mut buf).unwrap();
        CacheKey::from_wire(&KEYED, &buf, c, tenant)
    }

    fn allow() -> Verdict {
        Verdict {
            decision: Decision::Allow,
            ..Verdict::deny(DenyReason::None)
        }
    }

    const S: u64 = 1_000_000_000;

    #[test]
    fn tenant_and_classification_never_cross() {
        for ev in [Eviction::S3Fifo, Eviction::Lru] {
            let mut s = Shard::new(cfg(64, ev), [7; 32]);
            let op = Operation::ValidateAgent;
            let k = key(op, "acme", "a", Classification::Cui);
            s.insert(&k, op, &allow(), 0, 1);
            assert!(s.get(&k, op, 1, 1).is_ok());
            let other_tenant = key(op, "evil", "a", Classification::Cui);
            assert_eq!(s.get(&other_tenant, op, 1, 1), Err(Miss::Absent));
            let other_class = key(op, "acme", "a", Classification::Secret);
            assert_eq!(s.get(&other_class, op, 1, 1), Err(Miss::Absent));
            // Even a forged key with the same hash but another tenant or class is refused.
            let forged = CacheKey {
                tenant: other_tenant.tenant,
                ..k
            };
            assert_eq!(s.get(&forged, op, 1, 1), Err(Miss::Absent));
            let forged = CacheKey {
                classification: Classification::TopSecret,
                ..k
            };
            assert_eq!(s.get(&forged, op, 1, 1), Err(Miss::Absent));
        }
    }

    #[test]
    fn ttl_per_classification() {
        let mut s = Shard::new(cfg(64, Eviction::S3Fifo), [7; 32]);
        let op = Operation::ValidateAgent;
        let u = key(op, "t", "a", Classification::Unclassified);
        let sec = key(op, "t", "a", Classification::Secret);
        s.insert(&u, op, &allow(), 0, 0);
        s.insert(&sec, op, &allow(), 0, 0);
        assert!(s.get(&sec, op, 5 * S - 1, 0).is_ok());
        assert_eq!(s.get(&sec, op, 5 * S, 0), Err(Miss::Expired));
        assert!(s.get(&u, op, 59 * S, 0).is_ok());
        assert_eq!(s.get(&u, op, 60 * S, 0), Err(Miss::Expired));
    }

    #[test]
    fn never_cached_operations() {
        let mut s = Shard::new(cfg(64, Eviction::S3Fifo), [7; 32]);
        for op in [
            Operation::Audit,
            Operation::Crypto(CryptoOp::Encrypt),
            Operation::Crypto(CryptoOp::Decrypt),
            Operation::Crypto(CryptoOp::Sign),
        ] {
            let k = key(op, "t", "a", Classification::Unclassified);
            s.insert(&k, op, &allow(), 0, 0);
            assert_eq!(s.get(&k, op, 1, 0), Err(Miss::Uncacheable));
        }
        assert!(s.is_empty());
        let op = Operation::Crypto(CryptoOp::Verify);
        let k = key(op, "t", "a", Classification::Secret);
        s.insert(&k, op, &allow(), 0, 0);
        assert!(s.get(&k, op, 4 * S, 0).is_ok());
        assert_eq!(s.get(&k, op, 5 * S, 0), Err(Miss::Expired));
    }

    #[test]
    fn stale_epoch_is_a_miss() {
        let mut s = Shard::new(cfg(64, Eviction::Lru), [7; 32]);
        let op = Operation::Check;
        let k = key(op, "t", "a", Classification::Unclassified);
        s.insert(&k, op, &allow(), 0, 3);
        assert_eq!(s.get(&k, op, 1, 4), Err(Miss::StaleEpoch));
        assert_eq!(
            s.get(&k, op, 1, 3),
            Err(Miss::Absent),
            "stale entry was removed"
        );
    }

    #[test]
    fn flipped_bit_is_detected() {
        for bit in [0, 13, 63] {
            let mut s = Shard::new(cfg(64, Eviction::S3Fifo), [7; 32]);
            let op = Operation::Check;
            let k = key(op, "t", "a", Classification::Unclassified);
            s.insert(&k, op, &allow(), 0, 0);
            assert!(s.corrupt_for_test(&k, bit));
            assert_eq!(s.get(&k, op, 1, 0), Err(Miss::Integrity));
            assert_eq!(s.get(&k, op, 1, 0), Err(Miss::Absent));
        }
    }

    #[test]
    fn adaptive_ttl_grows_with_hits_up_to_cap() {
        let mut s = Shard::new(cfg(64, Eviction::S3Fifo), [7; 32]);
        let op = Operation::Custom(3);
        let k = key(op, "t", "a", Classification::Unclassified);
        s.insert(&k, op, &allow(), 0, 0);
        // base 1 s; after 8 hits it doubles to 2 s
        for _ in 0..8 {
            assert!(s.get(&k, op, S / 2, 0).is_ok());
        }
        assert!(s.get(&k, op, S + S / 2, 0).is_ok());
        for _ in 0..200 {
            let _ = s.get(&k, op, S + S / 2, 0);
        }
        assert!(s.get(&k, op, 59 * S, 0).is_ok());
        assert_eq!(s.get(&k, op, 60 * S, 0), Err(Miss::Expired));
    }

    #[test]
    fn bounded_under_churn_both_policies() {
        for ev in [Eviction::S3Fifo, Eviction::Lru] {
            let mut s = Shard::new(cfg(100, ev), [1; 32]);
            let op = Operation::Check;
            let mut evictions = 0;
            for i in 0..10_000u32 {
                let k = key(op, "t", &i.to_string(), Classification::Unclassified);
                evictions += s.insert(&k, op, &allow(), i as u64, 0) as u64;
                assert!(s.len() <= 100);
                // an expired/stale removal in the middle of churn
                if i % 7 == 0 {
                    let _ = s.get(&k, op, i as u64, 1);
                }
            }
            assert!(evictions > 8_000, "{ev:?}: {evictions}");
            assert_eq!(evictions, s.evictions());
        }
    }
}
