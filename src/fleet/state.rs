//! What the fleet's bucket holds, and the state machine that applies it (no I/O).
//!
//! Keys: `agent.<h>` (an agent's revocation), `quarantine.<h>` (its quarantine), `policy` (the
//! policy bundle); `<h>` is 32 hex digits of BLAKE3 over the tenant and agent names, so any
//! name fits NATS's key alphabet and every node derives the same key. Values are JSON
//! (`Wire`): the record, and the origin (node, incarnation, operation number) that lets a node
//! recognise its own writes when the watch brings them back.
//!
//! Releases are writes (`revoked: false`, `until_unix_ms: 0`), not deletes, so that they carry
//! their origin too; a delete made by hand (`nats kv del`) releases an agent whose names this
//! node has seen.
//!
//! The `Tracker` decides, for each entry the watch delivers in stream order:
//! - a remote entry for a key this node has a write in flight for is older than that write
//!   (the watch delivers in the stream's order, and the echo of the write comes before
//!   anything sequenced after it): it is held, not applied; if the write's acknowledged
//!   revision shows the held entry is newer after all (the echo was skipped by a re-watch),
//!   the held entry is applied then (a write is retried until stored, never given up);
//! - this node's own echo is not applied again (the change was applied when made) and clears
//!   the write in flight;
//! - a policy applies only when its version is above the last one seen;
//! - an entry that fails its checks is rejected (counted and logged by the caller).
//!
//! The node is in step once it has processed every revision up to the stream's last sequence
//! (`caught_up`), which the I/O layer learns from a round trip to the servers.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The largest value read from the bucket (a policy bundle of `POLICY_BYTES` in JSON).
pub const MAX_VALUE_BYTES: usize = 2 * crate::source::limits::POLICY_BYTES as usize + 4096;
/// The longest tenant or agent name in a record (as a request's fields).
pub const MAX_NAME_BYTES: usize = 255;
pub const POLICY_KEY: &str = "policy";
/// The highest policy version a node applies now: a day ahead of its clock in milliseconds
/// (a version from further ahead would hold back every later push).
pub fn max_policy_version() -> u64 {
    crate::time::wall_ns() / 1_000_000 + 86_400_000
}

/// The most tenants one demand entry may name.
pub const MAX_DEMAND_TENANTS: usize = 100_000;

/// One fact about the fleet.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Record {
    /// An agent revoked, or released (`revoked: false`).
    Agent {
        tenant: String,
        agent: String,
        revoked: bool,
    },
    /// An agent quarantined until a wall-clock time (0: released).
    Quarantine {
        tenant: String,
        agent: String,
        until_unix_ms: u64,
    },
    /// A token revoked, with every credential delegated from it: `identity::token_digest` of
    /// its text without proof, 32 hex digits (the token itself never leaves the node).
    Token { digest: String },
    /// A node's demand: requests a second that reached each rate-limited tenant's rate check
    /// there over the last rebalance interval. Every node reads every node's, and takes its
    /// share of each tenant's fleet-wide rate from them (`Budgets`).
    Demand {
        node: String,
        per_s: std::collections::BTreeMap<String, f64>,
    },
    /// A signed audit checkpoint of a node's log, once its HEAD names it: the sequence
    /// number, the chain head and the log key's signature over them (hex). Published to the
    /// checkpoint stream, never to the bucket; `warden audit verify --fleet` reads the last.
    Checkpoint {
        node: String,
        seq: u64,
        head: String,
        signature: String,
    },
    /// The policy bundle: its text, numbered, with its SHA-256.
    Policy {
        version: u64,
        sha256: String,
        toml: String,
    },
}

/// Who wrote an entry: a node, its incarnation (random per process start), and the write's
/// number in that incarnation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Origin {
    pub node: String,
    pub incarnation: u64,
    pub op: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Wire {
    pub v: u8,
    pub origin: Origin,
    pub record: Record,
    /// The fleet operator's Ed25519 signature (hex) over the record and `issued_at_ms`
    /// (`operator_message`): what a record that widens access (`Record::widens`) must carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    /// When the operator signed it (wall clock, ms): a release applies only when it is newer
    /// than every revocation or quarantine of its key the node has read, so an old signed
    /// release written again (a replay) lifts nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_at_ms: Option<u64>,
}

/// What the operator's key signs for `record`: a domain, then the record as JSON (serde's
/// output for these types is the same on every node).
pub fn operator_message(record: &Record, issued_at_ms: u64) -> Vec<u8> {
    let mut m = b"warden fleet operator\0".to_vec();
    m.extend_from_slice(&issued_at_ms.to_le_bytes());
    m.extend_from_slice(&serde_json::to_vec(record).expect("a Record always serializes"));
    m
}

/// Signs `record` with the operator's key: the wire form to store.
pub fn signed(origin: Origin, record: Record, key: &ed25519_dalek::SigningKey) -> Wire {
    signed_at(origin, record, key, crate::time::wall_ns() / 1_000_000)
}

/// `signed`, as of `issued_at_ms`.
pub fn signed_at(
    origin: Origin,
    record: Record,
    key: &ed25519_dalek::SigningKey,
    issued_at_ms: u64,
) -> Wire {
    use ed25519_dalek::Signer;
    let sig = key.sign(&operator_message(&record, issued_at_ms));
    Wire {
        v: 1,
        origin,
        record,
        operator: Some(crate::secrets::to_hex(&sig.to_bytes())),
        issued_at_ms: Some(issued_at_ms),
    }
}

fn name_hash(tenant: &str, agent: &str) -> String {
    let mut h = blake3::Hasher::new();
    h.update(b"warden fleet agent\0");
    h.update(&(tenant.len() as u32).to_le_bytes());
    h.update(tenant.as_bytes());
    h.update(&(agent.len() as u32).to_le_bytes());
    h.update(agent.as_bytes());
    crate::secrets::to_hex(&h.finalize().as_bytes()[..16])
}

pub fn agent_key(tenant: &str, agent: &str) -> String {
    format!("agent.{}", name_hash(tenant, agent))
}

pub fn quarantine_key(tenant: &str, agent: &str) -> String {
    format!("quarantine.{}", name_hash(tenant, agent))
}

pub fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    crate::secrets::to_hex(&sha2::Sha256::digest(b))
}

impl Record {
    /// Whether applying it can let through what was refused: a release of an agent or of a
    /// quarantine, or a policy. Such a record must be signed by the fleet's operator key: a
    /// node's bucket credentials (one compromised node) can narrow what the fleet allows,
    /// never widen it.
    pub fn widens(&self) -> bool {
        matches!(
            self,
            Record::Agent { revoked: false, .. }
                | Record::Quarantine {
                    until_unix_ms: 0,
                    ..
                }
                | Record::Policy { .. }
        )
    }

    /// A token's revocation, from `identity::token_digest`.
    pub fn token(digest: u128) -> Record {
        Record::Token {
            digest: format!("{digest:032x}"),
        }
    }

    /// The digest of a token record.
    pub fn token_digest(&self) -> Option<u128> {
        match self {
            Record::Token { digest } => u128::from_str_radix(digest, 16).ok(),
            _ => None,
        }
    }

    /// The key this record lives under.
    pub fn key(&self) -> String {
        match self {
            Record::Agent { tenant, agent, .. } => agent_key(tenant, agent),
            Record::Quarantine { tenant, agent, .. } => quarantine_key(tenant, agent),
            Record::Token { digest } => format!("token.{digest}"),
            Record::Demand { node, .. } => format!("demand.{node}"),
            Record::Checkpoint { node, .. } => format!("checkpoint.{node}"),
            Record::Policy { .. } => POLICY_KEY.into(),
        }
    }

    pub fn policy(version: u64, toml: String) -> Record {
        Record::Policy {
            version,
            sha256: sha256_hex(toml.as_bytes()),
            toml,
        }
    }
}

fn names_ok(tenant: &str, agent: &str) -> Result<(), String> {
    for (what, s) in [("tenant", tenant), ("agent", agent)] {
        if s.is_empty() || s.len() > MAX_NAME_BYTES {
            return Err(format!("record.{what}: 1 to {MAX_NAME_BYTES} bytes"));
        }
    }
    Ok(())
}

/// Reads one entry's value, checking everything a writer could get wrong or forge: size,
/// JSON shape, version, names, that the record belongs under `key`, and a policy's hash.
pub fn decode(key: &str, value: &[u8]) -> Result<Wire, String> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(format!(
            "{} bytes, more than the {MAX_VALUE_BYTES} a fleet entry may hold",
            value.len()
        ));
    }
    let w: Wire = serde_json::from_slice(value).map_err(|e| format!("not a fleet entry: {e}"))?;
    if w.v != 1 {
        return Err(format!("v: version {} is not 1", w.v));
    }
    let n = &w.origin.node;
    if !super::name_ok(n, super::MAX_NODE_ID) {
        return Err("origin.node: 1 to 64 letters, digits, `_` or `-`".into());
    }
    match &w.record {
        Record::Agent { tenant, agent, .. } | Record::Quarantine { tenant, agent, .. } => {
            names_ok(tenant, agent)?
        }
        Record::Demand { node, per_s } => {
            if node != n {
                return Err("record.node: a demand entry written by another node".into());
            }
            if per_s.len() > MAX_DEMAND_TENANTS {
                return Err(format!(
                    "record.per_s: more than {MAX_DEMAND_TENANTS} tenants"
                ));
            }
            for (t, d) in per_s {
                if t.is_empty() || t.len() > MAX_NAME_BYTES || !d.is_finite() || *d < 0.0 {
                    return Err(format!(
                        "record.per_s: `{t}` = {d} (a tenant name and a rate of 0 or more)"
                    ));
                }
            }
        }
        Record::Checkpoint {
            node,
            head,
            signature,
            ..
        } => {
            if node != n {
                return Err("record.node: a checkpoint published by another node".into());
            }
            let hex = |h: &str, len: usize| {
                h.len() == len
                    && h.bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            };
            if !hex(head, 64) || !hex(signature, 128) {
                return Err(
                    "record.head and record.signature: 64 and 128 lowercase hex digits".into(),
                );
            }
        }
        Record::Token { digest } => {
            if digest.len() != 32
                || !digest
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            {
                return Err("record.digest: 32 lowercase hex digits".into());
            }
        }
        Record::Policy {
            version,
            sha256,
            toml,
        } => {
            if *version == 0 {
                return Err("record.version: versions start at 1".into());
            }
            if *sha256 != sha256_hex(toml.as_bytes()) {
                return Err("record.sha256 does not match the policy text".into());
            }
        }
    }
    let want = w.record.key();
    if want != key {
        return Err(format!(
            "a record for `{want}` stored under `{key}` (written by hand, or tampered with)"
        ));
    }
    Ok(w)
}

pub fn encode(w: &Wire) -> Vec<u8> {
    serde_json::to_vec(w).expect("a Wire always serializes")
}

/// Whether a record narrows what its key allows (a revocation, a quarantine).
fn narrows(r: &Record) -> bool {
    matches!(
        r,
        Record::Agent { revoked: true, .. }
            | Record::Quarantine {
                until_unix_ms: 1..,
                ..
            }
    )
}

/// What to do with one entry.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    Apply(Record),
    Skip(&'static str),
    Reject(String),
}

#[derive(Debug)]
struct InFlight {
    op: u64,
    /// The write's revision once acknowledged.
    revision: Option<u64>,
    /// The newest remote entry seen meanwhile: (revision, record).
    held: Option<(u64, Record)>,
}

/// The fleet state machine of one node (see the module's doc).
#[derive(Debug)]
pub struct Tracker {
    node: String,
    incarnation: u64,
    next_op: u64,
    in_flight: HashMap<String, InFlight>,
    /// Names behind the keys seen, for deletes made by hand.
    names: HashMap<String, (String, String)>,
    /// The highest revision the watch has delivered.
    processed: u64,
    /// The highest policy version seen (applied or refused).
    policy_seen: u64,
    /// The fleet operator's public key (`fleet.operator_public_key`): records that widen
    /// access are applied only under its signature (none: never).
    operator: Option<ed25519_dalek::VerifyingKey>,
    /// Per key, when the newest revocation or quarantine read for it was stored (ms, the
    /// server's clock; a local one's, this node's): a release must be signed after it.
    narrowed_ms: HashMap<String, u64>,
}

impl Tracker {
    pub fn new(node: String, incarnation: u64) -> Tracker {
        Tracker {
            node,
            incarnation,
            next_op: 1,
            in_flight: HashMap::new(),
            names: HashMap::new(),
            processed: 0,
            policy_seen: 0,
            operator: None,
            narrowed_ms: HashMap::new(),
        }
    }

    /// Applies records that widen access when the operator's `key` signed them.
    pub fn with_operator(mut self, key: Option<ed25519_dalek::VerifyingKey>) -> Tracker {
        self.operator = key;
        self
    }

    fn operator_signed(&self, w: &Wire) -> bool {
        let (Some(key), Some(sig)) = (&self.operator, &w.operator) else {
            return false;
        };
        let Some(sig) = crate::secrets::from_hex(sig)
            .and_then(|b| ed25519_dalek::Signature::from_slice(&b).ok())
        else {
            return false;
        };
        let issued = w.issued_at_ms.unwrap_or(0);
        key.verify_strict(&operator_message(&w.record, issued), &sig)
            .is_ok()
    }

    /// The bytes of a record that is never contended (this node's demand): no write in flight
    /// is recorded for it.
    pub fn plain(&mut self, record: Record) -> (String, Vec<u8>) {
        let key = record.key();
        let (bytes, _) = self.wire(record);
        (key, bytes)
    }

    /// `record` as this node's next write: its bytes and number.
    fn wire(&mut self, record: Record) -> (Vec<u8>, u64) {
        let op = self.next_op;
        self.next_op += 1;
        let w = Wire {
            v: 1,
            origin: Origin {
                node: self.node.clone(),
                incarnation: self.incarnation,
                op,
            },
            record,
            operator: None,
            issued_at_ms: None,
        };
        (encode(&w), op)
    }

    /// A change made on this node: its key, the bytes to write, and the write's number.
    pub fn local(&mut self, record: Record) -> (String, Vec<u8>, u64) {
        self.local_at(record, crate::time::wall_ns() / 1_000_000)
    }

    /// `local`, made at `now_ms`.
    pub fn local_at(&mut self, record: Record, now_ms: u64) -> (String, Vec<u8>, u64) {
        let key = record.key();
        if let Record::Agent { tenant, agent, .. } | Record::Quarantine { tenant, agent, .. } =
            &record
        {
            self.names
                .insert(key.clone(), (tenant.clone(), agent.clone()));
        }
        if narrows(&record) {
            let t = self.narrowed_ms.entry(key.clone()).or_insert(0);
            *t = (*t).max(now_ms);
        }
        let (bytes, op) = self.wire(record);
        let held = self.in_flight.remove(&key).and_then(|f| f.held);
        self.in_flight.insert(
            key.clone(),
            InFlight {
                op,
                revision: None,
                held,
            },
        );
        (key, bytes, op)
    }

    /// The write `op` to `key` was stored at `revision`. Returns a held remote entry that
    /// turned out to be newer than it (to apply now).
    pub fn acknowledged(&mut self, key: &str, op: u64, revision: u64) -> Option<Record> {
        let f = self.in_flight.get_mut(key)?;
        if f.op != op {
            return None;
        }
        f.revision = Some(revision);
        match f.held.take() {
            Some((r, rec)) if r > revision => {
                self.in_flight.remove(key);
                Some(rec)
            }
            _ => None,
        }
    }

    /// Whether every revision up to `last_sequence` has been processed.
    pub fn caught_up(&self, last_sequence: u64) -> bool {
        self.processed >= last_sequence
    }

    pub fn processed(&self) -> u64 {
        self.processed
    }

    /// The watch starts again from the bucket's current values (the stream was made anew): no
    /// revision from before means anything now, so writes in flight hold nothing back. The
    /// policy versions seen stay (they only rise).
    pub fn rewatch(&mut self) {
        self.processed = 0;
        self.in_flight.clear();
    }

    /// An entry the watch delivered, in stream order. `value` is `None` for a delete or purge.
    /// `written_ms`: when the server stored it.
    pub fn on_entry(
        &mut self,
        key: &str,
        value: Option<&[u8]>,
        revision: u64,
        written_ms: u64,
    ) -> Step {
        self.processed = self.processed.max(revision);
        let Some(value) = value else {
            // a delete or purge carries no signature: it releases nothing
            return if self.names.contains_key(key) || key == POLICY_KEY {
                Step::Reject(format!(
                    "a delete of `{key}`: a release or a policy must be an entry signed by the operator's key (warden fleet release, warden policy push)"
                ))
            } else {
                Step::Skip("a delete of a key whose names this node never saw")
            };
        };
        let w = match decode(key, value) {
            Ok(w) => w,
            Err(e) => return Step::Reject(e),
        };

        if let Record::Checkpoint { .. } = &w.record {
            return Step::Reject(
                "a checkpoint in the bucket (checkpoints go to their stream)".into(),
            );
        }
        if let Record::Demand { .. } = &w.record {
            return Step::Reject(
                "a demand entry in the state bucket (demand has a bucket of its own)".into(),
            );
        }
        if let Record::Policy { version, .. } = &w.record {
            if !self.operator_signed(&w) {
                return Step::Reject(Self::unsigned(&self.operator));
            }
            if *version > max_policy_version() {
                return Step::Reject(format!(
                    "policy version {version} is more than a day ahead of this node's clock"
                ));
            }
            if *version <= self.policy_seen {
                return Step::Skip("a policy version already seen");
            }
            self.policy_seen = *version;
            return Step::Apply(w.record);
        }
        if let Record::Agent { tenant, agent, .. } | Record::Quarantine { tenant, agent, .. } =
            &w.record
        {
            self.names
                .insert(key.to_string(), (tenant.clone(), agent.clone()));
        }
        if narrows(&w.record) {
            let t = self.narrowed_ms.entry(key.to_string()).or_insert(0);
            *t = (*t).max(written_ms);
        }
        // This node's own echo is not applied again, unless it narrows and no newer write of
        // this node's is in flight for the key: then applying it again is what the node
        // already holds, or
        // restores it where a remote entry sequenced before it was applied after the change
        // was made (a watch made again reads entries the node had not yet seen: an operator's
        // release written before this node's second revocation once undid that revocation
        // here, found by tests/fleet.rs under a loaded suite). An echo forged in its name can
        // narrow only, as any bucket writer can.
        if w.origin.node == self.node && w.origin.incarnation == self.incarnation {
            let latest = match self.in_flight.get(key) {
                Some(f) if w.origin.op >= f.op => {
                    self.in_flight.remove(key);
                    true
                }
                Some(_) => false,
                // in stream order, as every other entry: the last one read stands
                None => true,
            };
            if latest && narrows(&w.record) {
                return Step::Apply(w.record);
            }
            return Step::Skip("this node's own write, applied when made");
        }
        if w.record.widens() && !self.operator_signed(&w) {
            return Step::Reject(Self::unsigned(&self.operator));
        }
        if w.record.widens() {
            let issued = w.issued_at_ms.unwrap_or(0);
            if self.narrowed_ms.get(key).is_some_and(|n| issued <= *n) {
                return Step::Reject(format!(
                    "a release signed at {issued} ms, not after the last revocation or quarantine of `{key}`: written again (a replay), or signed on a clock behind the servers'"
                ));
            }
        }
        self.remote(key, revision, w.record)
    }

    fn unsigned(operator: &Option<ed25519_dalek::VerifyingKey>) -> String {
        if operator.is_none() {
            "a release or a policy, and this node has no fleet.operator_public_key to check one with".into()
        } else {
            "a release or a policy not signed by the fleet's operator key (fleet.operator_public_key)".into()
        }
    }

    fn remote(&mut self, key: &str, revision: u64, record: Record) -> Step {
        match self.in_flight.get_mut(key) {
            None => Step::Apply(record),
            Some(f) => match f.revision {
                Some(r) if revision > r => {
                    self.in_flight.remove(key);
                    Step::Apply(record)
                }
                Some(_) => Step::Skip("older than this node's own write"),
                None => {
                    f.held = Some((revision, record));
                    Step::Skip("held until this node's own write is acknowledged")
                }
            },
        }
    }
}

/// Fleet-wide rate budgets: each node's share of each tenant's rate, from every node's demand
/// (no I/O). With the same entries every node computes shares that sum to 1.
#[derive(Debug)]
pub struct Budgets {
    me: String,
    /// A node whose last entry is older than this no longer counts.
    dead_after_ns: u64,
    /// Per node: when its last entry was written (local monotonic nanoseconds, as near as
    /// known), and its demand.
    view: HashMap<String, (u64, std::collections::BTreeMap<String, f64>)>,
    /// This node's counters at the last sample, and when.
    prev: HashMap<String, u64>,
    prev_ns: u64,
}

/// The most nodes whose demand a node keeps.
pub const MAX_FLEET_NODES: usize = 4096;

/// Of each tenant's rate, the least any live node holds, summed over the nodes (so a node with
/// no demand yet can still admit a little).
pub const MIN_SHARE_TOTAL: f64 = 0.2;

impl Budgets {
    pub fn new(me: String, dead_after_ns: u64) -> Budgets {
        Budgets {
            me,
            dead_after_ns,
            view: HashMap::new(),
            prev: HashMap::new(),
            prev_ns: 0,
        }
    }

    /// This node's demand since the last sample, per second, from cumulative counters.
    pub fn sample(
        &mut self,
        counters: Vec<(String, u64)>,
        now_ns: u64,
    ) -> std::collections::BTreeMap<String, f64> {
        let dt = now_ns.saturating_sub(self.prev_ns).max(1) as f64 / 1e9;
        let first = self.prev_ns == 0;
        let mut out = std::collections::BTreeMap::new();
        let mut next = HashMap::with_capacity(counters.len());
        for (t, c) in counters {
            // a counter that went back (a policy swap) counts from 0
            let before = self.prev.get(&t).copied().filter(|p| *p <= c).unwrap_or(0);
            let d = c - before;
            if !first && d > 0 {
                out.insert(t.clone(), d as f64 / dt);
            }
            next.insert(t, c);
        }
        self.prev = next;
        self.prev_ns = now_ns;
        out
    }

    /// A node's demand entry, written `age_ns` ago.
    pub fn on_demand(
        &mut self,
        node: &str,
        per_s: std::collections::BTreeMap<String, f64>,
        now_ns: u64,
        age_ns: u64,
    ) {
        // bounded: past MAX_FLEET_NODES names, the silent go first, then new names are ignored
        // (a bucket writer inventing nodes can shrink shares, as any writer can deny; it
        // cannot grow memory)
        if !self.view.contains_key(node) && self.view.len() >= MAX_FLEET_NODES {
            let dead = self.dead_after_ns;
            self.view
                .retain(|_, (at, _)| now_ns.saturating_sub(*at) <= dead);
            if self.view.len() >= MAX_FLEET_NODES {
                return;
            }
        }
        self.view
            .insert(node.to_string(), (now_ns.saturating_sub(age_ns), per_s));
    }

    /// The nodes counted at `now_ns` (this node always).
    pub fn live(&self, now_ns: u64) -> usize {
        let others = self
            .view
            .iter()
            .filter(|(n, (at, _))| {
                **n != self.me && now_ns.saturating_sub(*at) <= self.dead_after_ns
            })
            .count();
        others + 1
    }

    /// This node's share of `tenant` at `now_ns`.
    pub fn share(&self, tenant: &str, now_ns: u64) -> f64 {
        let n = self.live(now_ns) as f64;
        let floor = MIN_SHARE_TOTAL / n;
        let demand = |node: &str| -> f64 {
            self.view
                .get(node)
                .and_then(|(_, m)| m.get(tenant))
                .copied()
                .unwrap_or(0.0)
        };
        let mine = demand(&self.me);
        let total: f64 = mine
            + self
                .view
                .iter()
                .filter(|(k, (at, _))| {
                    **k != self.me && now_ns.saturating_sub(*at) <= self.dead_after_ns
                })
                .map(|(k, _)| demand(k))
                .sum::<f64>();
        if total <= 0.0 {
            return 1.0 / n;
        }
        floor + (1.0 - MIN_SHARE_TOTAL) * mine / total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rec(revoked: bool) -> Record {
        Record::Agent {
            tenant: "t".into(),
            agent: "a".into(),
            revoked,
        }
    }

    fn operator() -> ed25519_dalek::SigningKey {
        ed25519_dalek::SigningKey::from_bytes(&[7; 32])
    }

    /// A tracker that knows the operator's key.
    fn tracker() -> Tracker {
        Tracker::new("me".into(), 1).with_operator(Some(operator().verifying_key()))
    }

    /// Another node's entry; the operator's signature on what widens access.
    fn remote(op: u64, r: Record) -> Vec<u8> {
        remote_at(op, r, crate::time::wall_ns() / 1_000_000)
    }

    /// `remote`, a widening signed at `issued_ms`.
    fn remote_at(op: u64, r: Record, issued_ms: u64) -> Vec<u8> {
        let origin = Origin {
            node: "other".into(),
            incarnation: 9,
            op,
        };
        if r.widens() {
            return encode(&signed_at(origin, r, &operator(), issued_ms));
        }
        encode(&Wire {
            v: 1,
            origin,
            record: r,
            operator: None,
            issued_at_ms: None,
        })
    }

    #[test]
    fn a_remote_entry_applies_and_an_echo_does_not() {
        let mut t = tracker();
        let k = agent_key("t", "a");
        assert_eq!(
            t.on_entry(&k, Some(&remote(1, rec(true))), 1, 0),
            Step::Apply(rec(true))
        );
        let (key, bytes, op) = t.local(rec(false));
        assert_eq!(key, k);
        assert_eq!(t.acknowledged(&k, op, 2), None);
        assert!(matches!(t.on_entry(&k, Some(&bytes), 2, 0), Step::Skip(_)));
        assert!(t.caught_up(2) && !t.caught_up(3));
        // after the echo, remote entries apply again
        assert_eq!(
            t.on_entry(&k, Some(&remote(2, rec(true))), 3, 0),
            Step::Apply(rec(true))
        );
    }

    /// The wrong allow this guards against: release, then revoke, on this node; the release's
    /// echo must not undo the revocation.
    #[test]
    fn an_older_echo_never_undoes_a_newer_local_change() {
        let mut t = tracker();
        let (k, release, _) = t.local_at(rec(false), 1);
        let (_, revoke, op2) = t.local_at(rec(true), 2);
        assert!(matches!(
            t.on_entry(&k, Some(&release), 5, 0),
            Step::Skip(_)
        ));
        // a remote release sequenced before this node's revocation
        assert!(matches!(
            t.on_entry(&k, Some(&remote(1, rec(false))), 6, 0),
            Step::Skip(_)
        ));
        assert_eq!(t.acknowledged(&k, op2, 7), None);
        // the revocation's own echo, this node's latest write, is applied again: what the
        // node holds already
        assert_eq!(t.on_entry(&k, Some(&revoke), 7, 0), Step::Apply(rec(true)));
    }

    /// The wrong allow the fleet suite found: this node revoked, an operator's release was
    /// applied after it (a watch made again delivered it late), then the revocation's echo came.
    /// The echo restores the revocation; an older own echo while a newer write is in flight
    /// does not apply.
    #[test]
    fn an_own_revocation_echo_restores_what_a_late_release_undid() {
        let mut t = tracker();
        let (k, revoke, op) = t.local_at(rec(true), 1);
        assert_eq!(t.acknowledged(&k, op, 2), None);
        assert_eq!(t.on_entry(&k, Some(&revoke), 2, 0), Step::Apply(rec(true)));
        let (_, older, _) = t.local_at(rec(true), 3);
        let (_, _, _) = t.local_at(rec(true), 4);
        assert!(matches!(t.on_entry(&k, Some(&older), 5, 0), Step::Skip(_)));
    }

    #[test]
    fn a_held_entry_applies_when_the_ack_shows_it_newer() {
        let mut t = tracker();
        let (k, _, op) = t.local_at(rec(true), 1);
        // the watch (re-made) skipped the echo: a newer remote release comes first
        assert!(matches!(
            t.on_entry(&k, Some(&remote(1, rec(false))), 9, 0),
            Step::Skip(_)
        ));
        assert_eq!(t.acknowledged(&k, op, 8), Some(rec(false)));
        assert_eq!(t.acknowledged(&k, op, 8), None);
    }

    #[test]
    fn policies_apply_in_rising_versions_only() {
        let mut t = tracker();
        let p = |v| remote(1, Record::policy(v, format!("# v{v}\n")));
        assert!(matches!(
            t.on_entry(POLICY_KEY, Some(&p(2)), 1, 0),
            Step::Apply(_)
        ));
        assert!(matches!(
            t.on_entry(POLICY_KEY, Some(&p(2)), 2, 0),
            Step::Skip(_)
        ));
        assert!(matches!(
            t.on_entry(POLICY_KEY, Some(&p(1)), 3, 0),
            Step::Skip(_)
        ));
        assert!(matches!(
            t.on_entry(POLICY_KEY, Some(&p(3)), 4, 0),
            Step::Apply(_)
        ));
    }

    #[test]
    fn forged_and_misplaced_entries_are_rejected() {
        let mut t = tracker();
        let k = agent_key("t", "a");
        // under another agent's key
        let other = agent_key("t", "b");
        assert!(matches!(
            t.on_entry(&other, Some(&remote(1, rec(false))), 1, 0),
            Step::Reject(_)
        ));
        // a policy whose hash does not match its text
        let mut w: Wire =
            serde_json::from_slice(&remote(1, Record::policy(1, "a".into()))).unwrap();
        if let Record::Policy { toml, .. } = &mut w.record {
            *toml = "b".into();
        }
        assert!(matches!(
            t.on_entry(POLICY_KEY, Some(&encode(&w)), 2, 0),
            Step::Reject(_)
        ));
        for bad in [
            &b"{}"[..],
            b"null",
            b"{\"v\":2,\"origin\":{\"node\":\"n\",\"incarnation\":1,\"op\":1},\"record\":{\"kind\":\"agent\",\"tenant\":\"t\",\"agent\":\"a\",\"revoked\":true}}",
            b"{\"v\":1,\"origin\":{\"node\":\"\",\"incarnation\":1,\"op\":1},\"record\":{\"kind\":\"agent\",\"tenant\":\"t\",\"agent\":\"a\",\"revoked\":true}}",
            b"{\"v\":1,\"origin\":{\"node\":\"n\",\"incarnation\":1,\"op\":1},\"record\":{\"kind\":\"agent\",\"tenant\":\"t\",\"agent\":\"a\",\"revoked\":true,\"x\":1}}",
        ] {
            assert!(matches!(t.on_entry(&k, Some(bad), 3, 0), Step::Reject(_)));
        }
        let big = vec![b' '; MAX_VALUE_BYTES + 1];
        assert!(matches!(t.on_entry(&k, Some(&big), 4, 0), Step::Reject(_)));
        assert!(t.caught_up(4));
    }

    #[test]
    fn a_delete_by_hand_releases_nothing() {
        let mut t = tracker();
        let k = agent_key("t", "a");
        assert!(matches!(t.on_entry(&k, None, 1, 0), Step::Skip(_)));
        let _ = t.on_entry(&k, Some(&remote(1, rec(true))), 2, 0);
        assert!(matches!(t.on_entry(&k, None, 3, 0), Step::Reject(_)));
        assert!(matches!(
            t.on_entry(POLICY_KEY, None, 4, 0),
            Step::Reject(_)
        ));
    }

    /// The second review's wrong allow: the operator's old signed release, written again after
    /// the agent was revoked anew, lifts nothing (and a fresh release does).
    #[test]
    fn an_old_signed_release_written_again_lifts_nothing() {
        let mut t = tracker();
        let k = agent_key("t", "a");
        assert!(matches!(
            t.on_entry(&k, Some(&remote_at(1, rec(true), 0)), 1, 1_000),
            Step::Apply(_)
        ));
        let release = remote_at(2, rec(false), 2_000);
        assert_eq!(
            t.on_entry(&k, Some(&release), 2, 2_001),
            Step::Apply(rec(false))
        );
        assert!(matches!(
            t.on_entry(&k, Some(&remote_at(3, rec(true), 0)), 3, 3_000),
            Step::Apply(_)
        ));
        assert!(matches!(
            t.on_entry(&k, Some(&release), 4, 4_000),
            Step::Reject(_)
        ));
        // signed after the revocation: applies
        assert_eq!(
            t.on_entry(&k, Some(&remote_at(5, rec(false), 3_500)), 5, 4_100),
            Step::Apply(rec(false))
        );
        // and the issue time is under the signature: changed, it fails
        let mut w: Wire = serde_json::from_slice(&release).unwrap();
        w.issued_at_ms = Some(9_999);
        let _ = t.on_entry(&k, Some(&remote_at(6, rec(true), 0)), 6, 5_000);
        assert!(matches!(
            t.on_entry(&k, Some(&encode(&w)), 7, 6_000),
            Step::Reject(_)
        ));
    }

    /// The review's wrong allows: a bucket writer (one compromised node) releasing an agent or
    /// installing a policy. Only the operator's signature widens access.
    #[test]
    fn releases_and_policies_need_the_operators_signature() {
        let k = agent_key("t", "a");
        let unsigned = |r: Record| {
            encode(&Wire {
                v: 1,
                origin: Origin {
                    node: "other".into(),
                    incarnation: 9,
                    op: 1,
                },
                record: r,
                operator: None,
                issued_at_ms: None,
            })
        };
        let q0 = Record::Quarantine {
            tenant: "t".into(),
            agent: "a".into(),
            until_unix_ms: 0,
        };
        let qk = quarantine_key("t", "a");
        let p = Record::policy(5, "# open\n".into());
        for mut t in [tracker(), Tracker::new("me".into(), 1)] {
            assert!(matches!(
                t.on_entry(&k, Some(&unsigned(rec(false))), 1, 0),
                Step::Reject(_)
            ));
            assert!(matches!(
                t.on_entry(&qk, Some(&unsigned(q0.clone())), 2, 0),
                Step::Reject(_)
            ));
            assert!(matches!(
                t.on_entry(POLICY_KEY, Some(&unsigned(p.clone())), 3, 0),
                Step::Reject(_)
            ));
            // signed by another key
            let other = ed25519_dalek::SigningKey::from_bytes(&[8; 32]);
            let o = Origin {
                node: "x".into(),
                incarnation: 1,
                op: 1,
            };
            let forged = encode(&signed(o.clone(), rec(false), &other));
            assert!(matches!(
                t.on_entry(&k, Some(&forged), 4, 0),
                Step::Reject(_)
            ));
            // a signature moved onto another record
            let mut moved = signed(o, rec(false), &operator());
            moved.record = Record::Agent {
                tenant: "t".into(),
                agent: "b".into(),
                revoked: false,
            };
            let kb = agent_key("t", "b");
            assert!(matches!(
                t.on_entry(&kb, Some(&encode(&moved)), 5, 0),
                Step::Reject(_)
            ));
            // narrowing needs no signature
            assert!(matches!(
                t.on_entry(&k, Some(&unsigned(rec(true))), 6, 0),
                Step::Apply(_)
            ));
        }
        let mut t = tracker();
        assert_eq!(
            t.on_entry(&k, Some(&remote(1, rec(false))), 1, 0),
            Step::Apply(rec(false))
        );
        assert!(matches!(
            t.on_entry(POLICY_KEY, Some(&remote(2, p)), 2, 0),
            Step::Apply(_)
        ));
    }

    /// A model of the rule: after any interleaving of local writes, their acknowledgements and
    /// the stream's entries (each write appears in the stream at its acknowledged revision,
    /// remote writes anywhere), the last record applied or made locally for the key equals the
    /// stream's last record for it.
    #[derive(Clone, Debug)]
    enum Ev {
        Local(bool),
        Remote(bool),
        Deliver,
        Ack,
    }

    fn ev() -> impl Strategy<Value = Ev> {
        prop_oneof![
            any::<bool>().prop_map(Ev::Local),
            any::<bool>().prop_map(Ev::Remote),
            Just(Ev::Deliver),
            Just(Ev::Ack),
        ]
    }

    proptest! {
        #[test]
        fn the_node_converges_on_the_streams_last_write(evs in proptest::collection::vec(ev(), 0..40)) {
            let mut t = tracker();
            let k = agent_key("t", "a");
            // the stream: (bytes, record, when stored); writes are sequenced when made, at a
            // logical clock (one tick an event) that the operator's signatures also follow
            let mut stream: Vec<(Vec<u8>, Record, u64)> = Vec::new();
            let mut clock = 0u64;
            let mut delivered = 0usize;
            // local writes not yet acknowledged: (op, revision)
            let mut unacked: std::collections::VecDeque<(u64, u64)> = Default::default();
            let mut state: Option<Record> = None;
            let mut rop = 0;
            for e in evs {
                clock += 1;
                match e {
                    Ev::Local(b) => {
                        let (_, bytes, op) = t.local_at(rec(b), clock);
                        stream.push((bytes, rec(b), clock));
                        unacked.push_back((op, stream.len() as u64));
                        state = Some(rec(b));
                    }
                    Ev::Remote(b) => {
                        rop += 1;
                        stream.push((remote_at(rop, rec(b), clock), rec(b), clock));
                    }
                    Ev::Deliver if delivered < stream.len() => {
                        let (bytes, _, at) = &stream[delivered];
                        delivered += 1;
                        if let Step::Apply(r) = t.on_entry(&k, Some(bytes), delivered as u64, *at) {
                            state = Some(r);
                        }
                    }
                    Ev::Ack => {
                        if let Some((op, r)) = unacked.pop_front() {
                            if let Some(rec) = t.acknowledged(&k, op, r) {
                                state = Some(rec);
                            }
                        }
                    }
                    Ev::Deliver => {}
                }
            }
            // drain: every ack, then every entry
            while let Some((op, r)) = unacked.pop_front() {
                if let Some(rec) = t.acknowledged(&k, op, r) {
                    state = Some(rec);
                }
            }
            while delivered < stream.len() {
                let (bytes, _, at) = &stream[delivered];
                delivered += 1;
                if let Step::Apply(r) = t.on_entry(&k, Some(bytes), delivered as u64, *at) {
                    state = Some(r);
                }
            }
            prop_assert_eq!(state, stream.last().map(|(_, r, _)| r.clone()));
            prop_assert!(t.caught_up(stream.len() as u64));
        }

        /// Every node computing from the same entries: the shares of each tenant sum to 1,
        /// and none is below its floor.
        #[test]
        fn shares_from_the_same_entries_sum_to_one(
            demand in proptest::collection::vec(proptest::collection::vec(0.0f64..1e6, 3), 1..8),
        ) {
            let nodes: Vec<String> = (0..demand.len()).map(|i| format!("n{i}")).collect();
            let views: Vec<Budgets> = nodes.iter().map(|me| {
                let mut b = Budgets::new(me.clone(), 1_000);
                for (n, d) in nodes.iter().zip(&demand) {
                    let m = d.iter().enumerate().map(|(t, v)| (format!("t{t}"), *v)).collect();
                    b.on_demand(n, m, 5_000, 0);
                }
                b
            }).collect();
            for t in ["t0", "t1", "t2", "t9"] {
                let sum: f64 = views.iter().map(|b| b.share(t, 5_500)).sum();
                prop_assert!((sum - 1.0).abs() < 1e-9, "{t}: {sum}");
                for b in &views {
                    prop_assert!(b.share(t, 5_500) >= MIN_SHARE_TOTAL / nodes.len() as f64 - 1e-12);
                }
            }
            // a node silent past the limit no longer counts: the others' shares grow
            if nodes.len() > 1 {
                let mut b = Budgets::new("n0".into(), 1_000);
                b.on_demand("n1", Default::default(), 5_000, 0);
                prop_assert_eq!(b.live(5_500), 2);
                prop_assert_eq!(b.live(6_001), 1);
                prop_assert_eq!(b.share("t0", 6_001), 1.0);
            }
        }

        #[test]
        fn decode_never_panics(key in "[a-z.0-9]{0,40}", value in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode(&key, &value);
        }

        #[test]
        fn decode_reads_back_what_encode_wrote(t in "[^\\x00]{1,40}", a in "[^\\x00]{1,40}", revoked: bool, until: u64) {
            for r in [
                Record::Agent { tenant: t.clone(), agent: a.clone(), revoked },
                Record::Quarantine { tenant: t.clone(), agent: a.clone(), until_unix_ms: until },
                Record::token(u128::from(until) << 64 | u128::from(revoked)),
                Record::Demand { node: "n-1".into(), per_s: [(t.clone(), (until % 1_000_000) as f64 / 4.0)].into() },
            ] {
                let w = Wire { v: 1, origin: Origin { node: "n-1".into(), incarnation: until, op: 3 }, record: r.clone(), operator: None, issued_at_ms: None };
                prop_assert_eq!(decode(&r.key(), &encode(&w)), Ok(w));
            }
        }
    }
}
