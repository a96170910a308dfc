//! A fleet of gateway nodes sharing what one learns: agent revocations, quarantines and the
//! policy, through a NATS JetStream key-value bucket (`[fleet]`, feature `fleet`).
//!
//! Three parts, split as quinn splits `quinn-proto` from its I/O:
//! - `state`: what a bucket entry means (keys, records, their checks) and the `Tracker`, the
//!   state machine that decides which entry to apply, which to skip as stale or as this node's
//!   own echo, and when the node is in step with the bucket. No I/O; tested alone.
//! - `node` (feature `fleet`): the control-plane thread, a current-thread tokio runtime running
//!   async-nats. It watches the bucket and applies entries through `Apply`, publishes what this
//!   node does (`Outbox`), and keeps the `Gate` fresh while it is in step.
//! - here: the settings, the `Gate` every core reads, the `Outbox` the engine writes to, and
//!   the counters.
//!
//! Invariants:
//! - the request path never waits on the network: a core reads one atomic (`Gate::stale`),
//!   and a publish is a bounded `try_send` that never blocks;
//! - fail closed: a node is fresh only after a round trip to the servers showed that it has
//!   applied every entry the bucket holds; past `stale_after_ms` without that, requests are
//!   denied `fleet_stale` (or allowed with `audit_required`, `when_stale`);
//! - nothing is lost silently: a publish that cannot be queued, an entry that fails its
//!   checks and a policy that does not compile are each counted and logged.

pub mod state;

#[cfg(feature = "fleet")]
mod node;
#[cfg(feature = "fleet")]
pub use node::{operator_key, published_checkpoints, push_policy, put_signed, Node};

use crossbeam_utils::CachePadded;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering::*};

/// What a node does with requests once its view of the fleet is older than `stale_after_ms`.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum WhenStale {
    /// Deny every request `fleet_stale` (fail closed).
    #[default]
    Deny,
    /// Evaluate as usual, and add the `audit_required` obligation to every allow.
    AuditRequired,
}

/// `[fleet]`: the servers and the bucket a node shares its state through. Off (the default)
/// while `servers` is empty.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct FleetConfig {
    /// NATS server URLs (`nats://127.0.0.1:4222`, `tls://...`); empty: no fleet.
    pub servers: Vec<String>,
    /// This node's name in what it publishes; empty: the host name.
    pub node_id: String,
    /// A NATS credentials file (`.creds`: a user JWT and its nkey seed); empty: none.
    pub creds_file: String,
    /// The environment variable holding a NATS token; empty: none.
    pub token_env: String,
    /// A NATS user name, with its password in the environment variable `password_env`.
    pub user: String,
    pub password_env: String,
    /// The fleet operator's Ed25519 public key (hex, as `warden token keygen` writes
    /// `ed25519.pub`). A record that widens access (a release, a policy) is applied only when
    /// this key signed it (`warden fleet release`, `warden policy push --operator-key`); empty:
    /// such records are refused, and the fleet only ever narrows.
    pub operator_public_key: String,
    /// The JetStream key-value bucket (created when missing).
    pub bucket: String,
    /// The JetStream stream the nodes' signed audit checkpoints go to (created when missing,
    /// subjects `<stream>.<node id>`; deletes and purges refused), which `warden audit verify
    /// --fleet` pins a log against.
    pub checkpoint_stream: String,
    /// Replicas of the bucket when this node creates it (1, or up to the cluster's size).
    pub replicas: usize,
    /// How old this node's view of the fleet may get before `when_stale` applies: the longest
    /// a node cut off from its servers serves on what it knew (a revocation made elsewhere
    /// meanwhile is missed that long). Keep it above JetStream's leader election (4 to 9 s
    /// with nats-server's Raft timeouts): while the bucket has no leader no node can prove it
    /// is in step, and below that every node would deny through an election.
    pub stale_after_ms: u64,
    pub when_stale: WhenStale,
    /// How often the node checks that it is in step with the bucket (a round trip to the
    /// servers); at most half of `stale_after_ms`.
    pub heartbeat_ms: u64,
    /// How long a connection attempt and a request to the servers may take.
    pub request_timeout_ms: u64,
    /// Local changes waiting to be published; past it a change is applied here only, counted
    /// (`fleet_publish_failures`) and logged.
    pub outbox_capacity: usize,
    /// Fleet-wide rate budgets: every this often each node reports its demand per tenant, and
    /// each tenant's `rate_per_s` and `burst` in the policy are shared out among the nodes by
    /// demand. 0: off (every node enforces each tenant's whole rate itself).
    pub rebalance_ms: u64,
}

impl Default for FleetConfig {
    fn default() -> Self {
        FleetConfig {
            servers: Vec::new(),
            node_id: String::new(),
            creds_file: String::new(),
            token_env: String::new(),
            user: String::new(),
            password_env: String::new(),
            operator_public_key: String::new(),
            bucket: "warden".into(),
            checkpoint_stream: "warden_checkpoints".into(),
            replicas: 1,
            stale_after_ms: 15000,
            when_stale: WhenStale::Deny,
            heartbeat_ms: 250,
            request_timeout_ms: 2000,
            outbox_capacity: 16384,
            rebalance_ms: 1000,
        }
    }
}

/// The longest node id.
pub const MAX_NODE_ID: usize = 64;

/// A name NATS takes as one subject token, and warden as a node id or bucket name.
pub(crate) fn name_ok(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl FleetConfig {
    pub fn enabled(&self) -> bool {
        !self.servers.is_empty()
    }

    /// Semantic checks; (dotted field, what to do).
    pub fn validate(&self) -> Result<(), (String, String)> {
        let err = |f: &str, m: String| Err((format!("fleet.{f}"), m));
        if !self.enabled() {
            return Ok(());
        }
        if !cfg!(feature = "fleet") {
            return err(
                "servers",
                "this warden was built without the `fleet` feature; rebuild it with \
                 `cargo build --release --features fleet`, or leave fleet.servers empty"
                    .into(),
            );
        }
        for (i, s) in self.servers.iter().enumerate() {
            let u = url::Url::parse(s).map_err(|e| {
                (
                    format!("fleet.servers[{i}]"),
                    format!("`{s}` is not a URL ({e}); write nats://HOST:PORT"),
                )
            })?;
            if !matches!(u.scheme(), "nats" | "tls") || u.host_str().is_none_or(str::is_empty) {
                return Err((
                    format!("fleet.servers[{i}]"),
                    format!("`{s}`: write nats://HOST:PORT or tls://HOST:PORT"),
                ));
            }
            if !u.username().is_empty() || u.password().is_some() {
                return Err((
                    format!("fleet.servers[{i}]"),
                    "credentials do not belong in a server URL (the config is not a secret); \
                     use fleet.creds_file, fleet.token_env or fleet.user with fleet.password_env"
                        .into(),
                ));
            }
        }
        if !self.node_id.is_empty() && !name_ok(&self.node_id, MAX_NODE_ID) {
            return err(
                "node_id",
                format!("1 to {MAX_NODE_ID} letters, digits, `_` or `-`"),
            );
        }
        if !name_ok(&self.bucket, 64) {
            return err("bucket", "1 to 64 letters, digits, `_` or `-`".into());
        }
        if !name_ok(&self.checkpoint_stream, 64)
            || self.checkpoint_stream == format!("KV_{}", self.bucket)
        {
            return err(
                "checkpoint_stream",
                "1 to 64 letters, digits, `_` or `-`, not the bucket's own stream".into(),
            );
        }
        if !(1..=5).contains(&self.replicas) {
            return err(
                "replicas",
                "1 to 5 (JetStream's limit; at most the cluster's size)".into(),
            );
        }
        if self.stale_after_ms < 100 {
            return err(
                "stale_after_ms",
                "at least 100 (a node needs a few heartbeats to prove it is in step)".into(),
            );
        }
        if self.heartbeat_ms == 0 || self.heartbeat_ms.saturating_mul(2) > self.stale_after_ms {
            return err(
                "heartbeat_ms",
                format!(
                    "1 to half of fleet.stale_after_ms ({})",
                    self.stale_after_ms / 2
                ),
            );
        }
        if self.request_timeout_ms == 0 {
            return err("request_timeout_ms", "at least 1".into());
        }
        if self.rebalance_ms != 0 && self.rebalance_ms < 50 {
            return err(
                "rebalance_ms",
                "0 (off) or at least 50 (each pass is a write every node reads)".into(),
            );
        }
        if !(1..=1 << 20).contains(&self.outbox_capacity) {
            return err("outbox_capacity", "1 to 1048576".into());
        }
        let methods = [
            !self.creds_file.is_empty(),
            !self.token_env.is_empty(),
            !self.user.is_empty(),
        ];
        if methods.iter().filter(|m| **m).count() > 1 {
            return err(
                "creds_file",
                "set one of fleet.creds_file, fleet.token_env and fleet.user".into(),
            );
        }
        if self.user.is_empty() != self.password_env.is_empty() {
            return err(
                "password_env",
                "fleet.user and fleet.password_env go together".into(),
            );
        }
        Ok(())
    }

    /// The node id in use: `node_id`, or the host name made to fit.
    pub fn node_name(&self) -> String {
        if !self.node_id.is_empty() {
            return self.node_id.clone();
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let s: String = host
            .trim()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .take(MAX_NODE_ID)
            .collect();
        if s.is_empty() {
            "node".into()
        } else {
            s
        }
    }
}

/// Whether this node may serve on what it knows of the fleet: read by every core on every
/// request (one load), kept fresh by the control-plane thread.
pub struct Gate {
    mode: WhenStale,
    /// Monotonic nanoseconds until which the view counts as fresh (0: never synced).
    fresh_until_ns: CachePadded<AtomicU64>,
    /// Requests served while stale (denied, or allowed with `audit_required`).
    pub(crate) stale_requests: AtomicU64,
}

impl Gate {
    /// A fleet node's gate: stale until the first sync. Without a fleet, one that is fresh
    /// for ever.
    pub fn new(cfg: &FleetConfig) -> Gate {
        Gate {
            mode: cfg.when_stale,
            fresh_until_ns: CachePadded::new(AtomicU64::new(if cfg.enabled() {
                0
            } else {
                u64::MAX
            })),
            stale_requests: AtomicU64::new(0),
        }
    }

    /// `Some(mode)` when the view is stale at `now_ns`.
    #[inline]
    pub fn stale(&self, now_ns: u64) -> Option<WhenStale> {
        if now_ns < self.fresh_until_ns.load(Acquire) {
            return None;
        }
        self.stale_requests.fetch_add(1, Relaxed);
        Some(self.mode)
    }

    /// The view is in step with the bucket as of `synced_ns`: fresh until `synced_ns` plus
    /// the staleness limit. Never moves the limit back.
    pub fn synced(&self, synced_ns: u64, stale_after_ns: u64) {
        self.fresh_until_ns
            .fetch_max(synced_ns.saturating_add(stale_after_ns), AcqRel);
    }

    /// Monotonic nanoseconds until which the view is fresh (0: never synced).
    pub fn fresh_until_ns(&self) -> u64 {
        self.fresh_until_ns.load(Acquire)
    }
}

/// What the control-plane thread has done, for `Metrics`.
#[derive(Default)]
pub struct Stats {
    pub applied: AtomicU64,
    pub rejected: AtomicU64,
    pub published: AtomicU64,
    pub publish_failures: AtomicU64,
    /// Audit checkpoints stored in the checkpoint stream.
    pub checkpoints: AtomicU64,
    /// Writes that failed and were tried again (the servers away, or refusing them).
    pub publish_retries: AtomicU64,
    pub reconnects: AtomicU64,
    pub policy_version: AtomicU64,
    pub policy_rejected: AtomicU64,
    /// Monotonic nanoseconds of the last proof of being in step (0: never).
    pub synced_ns: AtomicU64,
}

/// Where the engine leaves its changes for the control-plane thread. Bounded; never blocks.
#[derive(Clone)]
pub struct Outbox {
    #[cfg(feature = "fleet")]
    tx: tokio::sync::mpsc::Sender<state::Record>,
    /// The newest audit checkpoint, in a lane of its own (a newer one replaces it).
    #[cfg(feature = "fleet")]
    checkpoint: std::sync::Arc<tokio::sync::watch::Sender<Option<state::Record>>>,
    pub stats: std::sync::Arc<Stats>,
}

impl Outbox {
    /// Queues a change made here (an agent or quarantine record); false (counted, logged) when
    /// the outbox is full or the thread has stopped.
    pub fn publish(&self, c: state::Record) -> bool {
        #[cfg(feature = "fleet")]
        {
            if let state::Record::Checkpoint { .. } = c {
                self.checkpoint.send_replace(Some(c));
                return true;
            }
            match self.tx.try_send(c) {
                Ok(()) => true,
                Err(e) => {
                    self.stats.publish_failures.fetch_add(1, Relaxed);
                    let c = e.into_inner();
                    eprintln!(
                        "warden: fleet: {c:?} is applied on this node only: the outbox is full \
                         (fleet.outbox_capacity) or the fleet thread stopped"
                    );
                    false
                }
            }
        }
        #[cfg(not(feature = "fleet"))]
        {
            let _ = c;
            false
        }
    }
}

/// How the control-plane thread changes the engine's state (implemented by the engine; the
/// fleet never imports it). Applying never publishes.
pub trait Apply: Send + Sync + 'static {
    /// Revokes (`revoked`) or releases an agent. False when identity checks are off.
    fn agent(&self, tenant: &str, agent: &str, revoked: bool) -> bool;
    /// Quarantines an agent until `until_unix_ms` (wall clock), or releases it (0 or past).
    fn quarantine(&self, tenant: &str, agent: &str, until_unix_ms: u64) -> bool;
    /// Revokes a token (and what was delegated from it) by `identity::token_digest`. False
    /// when identity checks are off.
    fn token(&self, digest: u128) -> bool;
    /// Starts counting requests per rate-limited tenant (fleet rate budgets).
    fn count_demand(&self);
    /// Requests counted per rate-limited tenant so far (cumulative).
    fn demand(&self) -> Vec<(String, u64)>;
    /// Sets this node's share of each tenant's rate and burst.
    fn set_shares(&self, share: &dyn Fn(&str) -> f64);
    /// Compiles and swaps in a policy; `Err` says why it was refused (the old one stays).
    fn policy(&self, toml: &str, name: &str) -> Result<(), String>;
}

/// The fleet's counters now, for `Metrics`.
pub fn metrics(gate: &Gate, stats: &Stats, now_ns: u64) -> crate::metrics::FleetMetrics {
    let synced = stats.synced_ns.load(Acquire);
    crate::metrics::FleetMetrics {
        state_age_ms: if synced == 0 {
            u64::MAX
        } else {
            now_ns.saturating_sub(synced) / 1_000_000
        },
        fresh: now_ns < gate.fresh_until_ns(),
        updates_applied: stats.applied.load(Relaxed),
        updates_rejected: stats.rejected.load(Relaxed),
        published: stats.published.load(Relaxed),
        publish_failures: stats.publish_failures.load(Relaxed),
        checkpoints_published: stats.checkpoints.load(Relaxed),
        publish_retries: stats.publish_retries.load(Relaxed),
        reconnects: stats.reconnects.load(Relaxed),
        policy_version: stats.policy_version.load(Relaxed),
        policy_rejected: stats.policy_rejected.load(Relaxed),
        stale_requests: gate.stale_requests.load(Relaxed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gate_is_stale_until_synced_and_again_past_the_limit() {
        let cfg = FleetConfig {
            servers: vec!["nats://127.0.0.1:4222".into()],
            ..FleetConfig::default()
        };
        let g = Gate::new(&cfg);
        assert_eq!(g.stale(1), Some(WhenStale::Deny));
        g.synced(1_000, 500);
        assert_eq!(g.stale(1_499), None);
        assert_eq!(g.stale(1_500), Some(WhenStale::Deny));
        // an older proof never shortens a newer one
        g.synced(10, 500);
        assert_eq!(g.stale(1_499), None);
        assert_eq!(g.stale_requests.load(Relaxed), 2);
        assert_eq!(Gate::new(&FleetConfig::default()).stale(u64::MAX - 1), None);
    }

    #[test]
    fn fleet_settings_are_checked() {
        let ok = FleetConfig {
            servers: vec!["nats://127.0.0.1:4222".into()],
            ..FleetConfig::default()
        };
        if cfg!(feature = "fleet") {
            assert_eq!(ok.validate(), Ok(()));
        } else {
            assert_eq!(ok.validate().unwrap_err().0, "fleet.servers");
        }
        let bad = |c: FleetConfig| c.validate().unwrap_err().0;
        if cfg!(feature = "fleet") {
            for (s, field) in [
                ("http://x:1", "fleet.servers[0]"),
                ("nats://u:p@x:1", "fleet.servers[0]"),
                ("not a url", "fleet.servers[0]"),
            ] {
                let c = FleetConfig {
                    servers: vec![s.into()],
                    ..ok.clone()
                };
                assert_eq!(bad(c), field, "{s}");
            }
            let c = FleetConfig {
                heartbeat_ms: 8000,
                ..ok.clone()
            };
            assert_eq!(bad(c), "fleet.heartbeat_ms");
            let c = FleetConfig {
                bucket: "a.b".into(),
                ..ok.clone()
            };
            assert_eq!(bad(c), "fleet.bucket");
            let c = FleetConfig {
                node_id: "n 1".into(),
                ..ok.clone()
            };
            assert_eq!(bad(c), "fleet.node_id");
            let c = FleetConfig {
                user: "u".into(),
                ..ok.clone()
            };
            assert_eq!(bad(c), "fleet.password_env");
            let c = FleetConfig {
                token_env: "T".into(),
                creds_file: "/x".into(),
                ..ok.clone()
            };
            assert_eq!(bad(c), "fleet.creds_file");
        }
        assert_eq!(FleetConfig::default().validate(), Ok(()));
    }
}
