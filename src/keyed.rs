//! Keyed hashes: every hash whose collision decides something is keyed with secrets drawn from
//! the kernel at start, never seen outside the process.
//!
//! What depends on them: a cache hit serves the verdict of the entry whose request key equals
//! this request's (`request`: 128 bits over everything the key covers, the operation and
//! classification included); an entry also stores its tenant (`tenant`) and classification
//! and checks them; routing, the behaviour baselines and the quarantine table go by `agent`;
//! identity's revocations and replay window by its own instance's `agent` and `token`.
//!
//! What a hit rests on: that nobody outside the process knows the 192-byte secrets, and that
//! xxh3 keyed by a secret they do not know gives them no way to find two inputs with one
//! 128-bit value other than trying about 2^64 of them. xxh3 makes no cryptographic claim; it
//! was chosen over SipHash and keyed BLAKE3 because the key is computed on every submission
//! over the whole request, content included, where those cost 10–30× more (PERF.md "Keyed
//! hashes"). Unkeyed, with a public seed, a crafted pair of requests could share a key and the
//! second would be served the first one's verdict.

use xxhash_rust::xxh3::{xxh3_128_with_secret, xxh3_64_with_secret};

/// Bytes of one xxh3 secret.
pub const SECRET_BYTES: usize = 192;

/// Three independent secrets: requests, tenants, agents.
pub struct KeyedHash {
    request: Box<[u8; SECRET_BYTES]>,
    tenant: Box<[u8; SECRET_BYTES]>,
    agent: Box<[u8; SECRET_BYTES]>,
}

impl KeyedHash {
    /// Secrets from the kernel's random source (`getrandom`); if it fails, from BLAKE3 over the
    /// time and the address-space layout (unpredictable enough for a process lifetime, never
    /// constant).
    pub fn random() -> KeyedHash {
        let mut all = [0u8; 3 * SECRET_BYTES];
        if crate::secrets::random_bytes(&mut all).is_err() {
            let seed = format!("{:?}{:p}", std::time::Instant::now(), &all);
            blake3::Hasher::new_derive_key("warden keyed hash fallback")
                .update(seed.as_bytes())
                .finalize_xof()
                .fill(&mut all);
        }
        let take = |i: usize| -> Box<[u8; SECRET_BYTES]> {
            let mut s = Box::new([0u8; SECRET_BYTES]);
            s.copy_from_slice(&all[i * SECRET_BYTES..(i + 1) * SECRET_BYTES]);
            s
        };
        let k = KeyedHash {
            request: take(0),
            tenant: take(1),
            agent: take(2),
        };
        all.fill(0);
        k
    }

    /// The key of an encoded request: everything from `request::KEYED_FROM` on (operation,
    /// classification, field lengths and fields; not priority, timestamp or nonce).
    #[inline]
    pub fn request(&self, wire: &[u8]) -> u128 {
        xxh3_128_with_secret(
            wire.get(crate::request::KEYED_FROM..).unwrap_or(&[]),
            &self.request[..],
        )
    }

    /// A tenant's tag, which a cache entry stores and checks.
    #[inline]
    pub fn tenant(&self, tenant: &str) -> u64 {
        xxh3_64_with_secret(tenant.as_bytes(), &self.tenant[..])
    }

    /// (tenant, agent), never 0: what routing, baselines, quarantines and revocations go by.
    /// Two independent keyed hashes, so that ("ab", "c") and ("a", "bc") differ and no pair
    /// can be aimed at another without the secrets.
    #[inline]
    pub fn agent(&self, tenant: &str, agent: &str) -> u64 {
        (xxh3_64_with_secret(agent.as_bytes(), &self.agent[..])
            ^ self.tenant(tenant).wrapping_mul(0x9e37_79b9_7f4a_7c15))
        .max(1)
    }

    /// 128 bits of arbitrary bytes under the request secret (tokens, for the verified-token
    /// cache and revocations).
    #[inline]
    pub fn bytes128(&self, b: &[u8]) -> u128 {
        xxh3_128_with_secret(b, &self.request[..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_disagree_and_pairs_do_not_shift() {
        let (a, b) = (KeyedHash::random(), KeyedHash::random());
        assert_ne!(a.tenant("acme"), b.tenant("acme"));
        assert_ne!(a.agent("acme", "x"), b.agent("acme", "x"));
        assert_ne!(a.agent("ab", "c"), a.agent("a", "bc"));
        assert_ne!(a.agent("acme", "x"), a.agent("x", "acme"));
        assert_eq!(a.agent("acme", "x"), a.agent("acme", "x"));
        // the request key covers operation and classification (bytes 24 and 25) and ignores
        // priority, timestamp and nonce (bytes 3 and 8..24)
        let mut w = vec![0u8; 64];
        let k = a.request(&w);
        w[3] = 9;
        w[8] = 1;
        w[23] = 1;
        assert_eq!(a.request(&w), k);
        w[24] = 1;
        assert_ne!(a.request(&w), k);
    }
}
