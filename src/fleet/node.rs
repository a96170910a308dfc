//! The fleet's control-plane thread: async-nats on a current-thread tokio runtime of its own,
//! never on a core and never on the request path. It drives the `Tracker` (`state.rs`) with
//! the bucket's watch, the engine's changes (`Outbox`) and heartbeats:
//!
//! - watch: `watch_all_from_revision(1)` delivers every entry ever written, then each new one, in
//!   stream order; an entry is applied through `Apply` when the tracker says so. A watch that
//!   ends or fails is made again from the next revision not processed, so nothing between is
//!   missed.
//! - publish: one write at a time, in the order the engine made them (so two changes to one
//!   key land in order); a write that fails is retried, with back-off, until it is stored.
//! - heartbeat: every `heartbeat_ms` the bucket's stream reports its last sequence; once every
//!   revision up to it has been processed, the gate is fresh for `stale_after_ms` from when the
//!   question was sent. While the servers are away no answer comes, and the gate goes stale.

use super::state::{Budgets, Record, Step, Tracker};
use super::{Apply, FleetConfig, Gate, Outbox, Stats};
use async_nats::jetstream::{self, kv};
use futures_util::StreamExt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering::*;
use std::sync::Arc;
use std::time::Duration;

type BoxFut<T> = Pin<Box<dyn Future<Output = T> + Send>>;
/// A heartbeat's question in flight: when it was asked, and the stream's (last sequence, when
/// it was made).
type Asking = (u64, BoxFut<Result<(u64, i128), String>>);
/// A published checkpoint: (seq, head, signature).
pub type PublishedCheckpoint = (u64, [u8; 32], [u8; 64]);

/// The running control-plane thread. Dropping it stops the thread.
pub struct Node {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Node {
    /// Starts the thread for `cfg` (already validated). Returns it with the outbox the engine
    /// publishes through. Fails only for what will not change by waiting: a credential that
    /// cannot be read, or a thread that cannot start. Unreachable servers are waited for
    /// (the gate stays stale meanwhile).
    pub fn start(
        cfg: &FleetConfig,
        gate: Arc<Gate>,
        apply: Arc<dyn Apply>,
    ) -> Result<(Node, Outbox), String> {
        let auth = Auth::read(cfg)?;
        let stats = Arc::new(Stats::default());
        let (tx, rx) = tokio::sync::mpsc::channel(cfg.outbox_capacity);
        let (cp_tx, cp_rx) = tokio::sync::watch::channel(None);
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
        let operator = operator_key(cfg)?;
        let run = Run {
            operator,
            cfg: cfg.clone(),
            node: cfg.node_name(),
            gate,
            stats: stats.clone(),
            apply,
        };
        let thread = std::thread::Builder::new()
            .name("warden-fleet".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        eprintln!(
                            "warden: fleet: no runtime ({e}); this node stays stale (fail closed)"
                        );
                        return;
                    }
                };
                rt.block_on(run.main(auth, rx, cp_rx, stop_rx));
            })
            .map_err(|e| format!("fleet: cannot start its thread: {e}"))?;
        Ok((
            Node {
                stop: Some(stop_tx),
                thread: Some(thread),
            },
            Outbox {
                tx,
                checkpoint: Arc::new(cp_tx),
                stats,
            },
        ))
    }

    /// Stops the thread: what is queued is published first, for up to `request_timeout_ms`;
    /// what is left then is counted and logged as lost.
    pub fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The operator's public key (`fleet.operator_public_key`), read at start.
pub fn operator_key(cfg: &FleetConfig) -> Result<Option<ed25519_dalek::VerifyingKey>, String> {
    if cfg.operator_public_key.is_empty() {
        return Ok(None);
    }
    let b = crate::secrets::read_key_file(&cfg.operator_public_key, Some(32))
        .map_err(|e| format!("fleet.operator_public_key: {e}"))?;
    let mut k = [0u8; 32];
    k.copy_from_slice(&b);
    ed25519_dalek::VerifyingKey::from_bytes(&k)
        .map(Some)
        .map_err(|e| format!("fleet.operator_public_key: not an Ed25519 public key ({e})"))
}

/// Credentials, read once at start (never logged).
enum Auth {
    None,
    Creds(String),
    Token(String),
    User(String, String),
}

impl Auth {
    fn read(cfg: &FleetConfig) -> Result<Auth, String> {
        let env = |field: &str, var: &str| {
            std::env::var(var).map_err(|_| {
                format!("fleet.{field}: the environment variable {var} is not set (or not UTF-8)")
            })
        };
        Ok(if !cfg.creds_file.is_empty() {
            let bytes = crate::secrets::read_secret_key_file(&cfg.creds_file, None)
                .map_err(|e| format!("fleet.creds_file: {e}"))?;
            Auth::Creds(
                String::from_utf8(bytes).map_err(|_| {
                    format!("fleet.creds_file: {} is not UTF-8 text", cfg.creds_file)
                })?,
            )
        } else if !cfg.token_env.is_empty() {
            Auth::Token(env("token_env", &cfg.token_env)?)
        } else if !cfg.user.is_empty() {
            Auth::User(cfg.user.clone(), env("password_env", &cfg.password_env)?)
        } else {
            Auth::None
        })
    }

    fn options(self) -> Result<async_nats::ConnectOptions, String> {
        let o = async_nats::ConnectOptions::new();
        Ok(match self {
            Auth::None => o,
            Auth::Creds(c) => o
                .credentials(&c)
                .map_err(|e| format!("fleet.creds_file: not a NATS credentials file ({e})"))?,
            Auth::Token(t) => o.token(t),
            Auth::User(u, p) => o.user_and_password(u, p),
        })
    }
}

/// Connects a client for one-off use (`warden policy push`): waits for the connection.
async fn connect(cfg: &FleetConfig, auth: Auth) -> Result<async_nats::Client, String> {
    let t = Duration::from_millis(cfg.request_timeout_ms);
    auth.options()?
        .name("warden-cli")
        .connection_timeout(t)
        .request_timeout(Some(t))
        .connect(cfg.servers.clone())
        .await
        .map_err(|e| format!("fleet: cannot reach {:?}: {e}", cfg.servers))
}

/// The state bucket (created when missing): a key-value bucket over a stream that keeps every
/// entry ever written and refuses deletes, purges and roll-ups, so what one node's
/// credentials write can be added to, never erased; a node reads it from its first entry.
async fn bucket(js: &jetstream::Context, cfg: &FleetConfig) -> Result<kv::Store, String> {
    js.get_or_create_stream(append_only(cfg))
        .await
        .map_err(|e| format!("bucket `{}`: {e}", cfg.bucket))?;
    js.get_key_value(&cfg.bucket)
        .await
        .map_err(|e| format!("bucket `{}`: {e}", cfg.bucket))
}

/// The state bucket's stream.
fn append_only(cfg: &FleetConfig) -> jetstream::stream::Config {
    jetstream::stream::Config {
        name: format!("KV_{}", cfg.bucket),
        description: Some(
            "warden fleet state: revocations, quarantines, releases, policy; append-only".into(),
        ),
        subjects: vec![format!("$KV.{}.>", cfg.bucket)],
        max_messages_per_subject: APPEND_ONLY_HISTORY,
        discard: jetstream::stream::DiscardPolicy::New,
        deny_delete: true,
        deny_purge: true,
        allow_rollup: false,
        allow_direct: true,
        num_replicas: cfg.replicas,
        storage: jetstream::stream::StorageType::File,
        max_message_size: super::state::MAX_VALUE_BYTES as i32,
        ..Default::default()
    }
}

/// Entries kept per key: all of them, in practice.
const APPEND_ONLY_HISTORY: i64 = 1 << 40;

/// Whether a stream's settings still keep everything written (someone with the JetStream API
/// could have changed them): checked at every heartbeat; a node does not count itself in step
/// on a bucket that can forget.
fn still_append_only(c: &jetstream::stream::Config) -> bool {
    c.deny_delete
        && c.deny_purge
        && !c.allow_rollup
        && c.max_messages_per_subject >= APPEND_ONLY_HISTORY
        && c.max_age.is_zero()
        && c.max_messages < 0
        && c.max_bytes < 0
}

/// The demand bucket (`<bucket>_demand`, one entry per node, the newest only): rate budgets
/// only, which a writer can skew (less admitted) but not use to widen access.
async fn demand_bucket(js: &jetstream::Context, cfg: &FleetConfig) -> Result<kv::Store, String> {
    let name = format!("{}_demand", cfg.bucket);
    match js.get_key_value(&name).await {
        Ok(kv) => Ok(kv),
        Err(_) => js
            .create_key_value(kv::Config {
                bucket: name.clone(),
                description: "warden fleet: each node's demand per tenant".into(),
                history: 1,
                num_replicas: cfg.replicas,
                storage: jetstream::stream::StorageType::File,
                max_value_size: super::state::MAX_VALUE_BYTES as i32,
                ..Default::default()
            })
            .await
            .map_err(|e| format!("bucket `{name}`: {e}")),
    }
}

/// The checkpoint stream (created when missing): append-only, as far as the API goes.
async fn checkpoint_stream(js: &jetstream::Context, cfg: &FleetConfig) -> Result<(), String> {
    js.get_or_create_stream(jetstream::stream::Config {
        name: cfg.checkpoint_stream.clone(),
        description: Some("warden fleet: signed audit checkpoints, one subject per node".into()),
        subjects: vec![format!("{}.>", cfg.checkpoint_stream)],
        deny_delete: true,
        deny_purge: true,
        num_replicas: cfg.replicas,
        storage: jetstream::stream::StorageType::File,
        // full, a node's subject takes nothing more (a flood shows as checkpoints refused)
        // rather than dropping its oldest: nothing published is ever pushed out
        max_messages_per_subject: 1_000_000,
        discard: jetstream::stream::DiscardPolicy::New,
        discard_new_per_subject: true,
        ..Default::default()
    })
    .await
    .map(|_| ())
    .map_err(|e| format!("stream `{}`: {e}", cfg.checkpoint_stream))
}

/// The stream's last sequence: what a node must have processed to be in step.
/// and when the stream was made (a stream deleted and made again numbers from 1 anew).
async fn last_sequence(js: jetstream::Context, stream: String) -> Result<(u64, i128), String> {
    let s = js
        .get_stream(&stream)
        .await
        .map_err(|e| format!("stream info: {e}"))?;
    let i = s.cached_info();
    if !still_append_only(&i.config) {
        return Err(format!(
            "the bucket's stream `{stream}` no longer keeps everything written (deletes, purges, roll-ups or limits allowed): not in step until it does; make it again, or name another fleet.bucket"
        ));
    }
    Ok((i.state.last_sequence, i.created.unix_timestamp_nanos()))
}

struct Run {
    /// The operator's public key: what widens access must be signed by it.
    operator: Option<ed25519_dalek::VerifyingKey>,
    cfg: FleetConfig,
    node: String,
    gate: Arc<Gate>,
    stats: Arc<Stats>,
    apply: Arc<dyn Apply>,
}

impl Run {
    fn apply(&self, r: Record) {
        let ok = match &r {
            Record::Agent {
                tenant,
                agent,
                revoked,
            } => self.apply.agent(tenant, agent, *revoked),
            Record::Quarantine {
                tenant,
                agent,
                until_unix_ms,
            } => self.apply.quarantine(tenant, agent, *until_unix_ms),
            Record::Token { .. } => r.token_digest().is_some_and(|d| self.apply.token(d)),
            // (taken by `step`, which holds the budgets; the tracker refuses checkpoints)
            Record::Demand { .. } | Record::Checkpoint { .. } => return,
            Record::Policy { version, toml, .. } => {
                match self.apply.policy(toml, &format!("fleet policy v{version}")) {
                    Ok(()) => {
                        self.stats.policy_version.store(*version, Relaxed);
                        true
                    }
                    Err(e) => {
                        self.stats.policy_rejected.fetch_add(1, Relaxed);
                        eprintln!(
                            "warden: fleet: policy version {version} does not compile on this \
                             node; the previous one stays in force: {e}"
                        );
                        return;
                    }
                }
            }
        };
        if ok {
            self.stats.applied.fetch_add(1, Relaxed);
        } else {
            self.stats.rejected.fetch_add(1, Relaxed);
            eprintln!("warden: fleet: {r:?} cannot apply on this node (identity checks are off, or the quarantine table is full)");
        }
    }

    fn step(&self, t: &mut Tracker, e: kv::Entry) {
        let value = match e.operation {
            kv::Operation::Put => Some(&e.value[..]),
            kv::Operation::Delete | kv::Operation::Purge => None,
        };
        // when the server stored it (what a release must be newer than)
        let written_ms = (e.created.unix_timestamp_nanos().max(0) / 1_000_000) as u64;
        match t.on_entry(&e.key, value, e.revision, written_ms) {
            Step::Apply(r) => self.apply(r),
            Step::Skip(_) => {}
            Step::Reject(why) => {
                self.stats.rejected.fetch_add(1, Relaxed);
                eprintln!(
                    "warden: fleet: entry `{}` (revision {}) refused: {why}",
                    e.key, e.revision
                );
            }
        }
    }

    async fn main(
        self,
        auth: Auth,
        mut rx: tokio::sync::mpsc::Receiver<Record>,
        mut cp: tokio::sync::watch::Receiver<Option<Record>>,
        mut stop: tokio::sync::oneshot::Receiver<()>,
    ) {
        let timeout = Duration::from_millis(self.cfg.request_timeout_ms);
        let stale_after_ns = self.cfg.stale_after_ms.saturating_mul(1_000_000);
        let stats = self.stats.clone();
        let node = self.node.clone();
        let opts = match auth.options() {
            Ok(o) => o,
            Err(e) => {
                eprintln!("warden: fleet: {e}; this node stays stale (fail closed)");
                return;
            }
        };
        let client = match opts
            .name(format!("warden-{node}"))
            .connection_timeout(timeout)
            .request_timeout(Some(timeout))
            .retry_on_initial_connect()
            .max_reconnects(None)
            .event_callback(move |ev| {
                let stats = stats.clone();
                async move {
                    match ev {
                        async_nats::Event::Connected => {
                            stats.reconnects.fetch_add(1, Relaxed);
                        }
                        async_nats::Event::Disconnected => {
                            eprintln!("warden: fleet: disconnected from the servers; serving on what this node knows until fleet.stale_after_ms");
                        }
                        _ => {}
                    }
                }
            })
            .connect(self.cfg.servers.clone())
            .await
        {
            Ok(c) => c,
            Err(e) => {
                eprintln!("warden: fleet: {e}; this node stays stale (fail closed)");
                return;
            }
        };
        let js = jetstream::new(client);
        let stream = format!("KV_{}", self.cfg.bucket);
        let heartbeat = Duration::from_millis(self.cfg.heartbeat_ms);
        // the bucket, once the servers answer
        let mut said = Said::default();
        let (kv, dkv) = loop {
            tokio::select! {
                r = async {
                    let kv = bucket(&js, &self.cfg).await?;
                    let dkv = demand_bucket(&js, &self.cfg).await?;
                    checkpoint_stream(&js, &self.cfg).await?;
                    Ok::<_, String>((kv, dkv))
                } => match r {
                    Ok(kvs) => break kvs,
                    Err(e) => {
                        said.say(&e);
                        tokio::select! {
                            _ = tokio::time::sleep(heartbeat) => {}
                            _ = &mut stop => return,
                        }
                    }
                },
                _ = &mut stop => return,
            }
        };
        let mut t = Tracker::new(self.node.clone(), incarnation()).with_operator(self.operator);
        let mut watch: Option<kv::Watch> = None;
        let mut making: Option<BoxFut<Result<kv::Watch, String>>> = None;
        // one write at a time: (key, op, bytes, attempt) and the write's future
        let mut writing: Option<(String, u64, Vec<u8>, u32)> = None;
        let mut put: Option<BoxFut<Result<u64, String>>> = None;
        let mut retry_at: Option<tokio::time::Instant> = None;
        let mut asking: Option<Asking> = None;
        // when the bucket's stream was made, as first seen
        let mut stream_made: Option<i128> = None;
        // (last sequence to reach, when it was asked)
        let mut target: Option<(u64, u64)> = None;
        // since when the heartbeats have found the watch behind the bucket
        let mut behind_since: Option<u64> = None;
        let heartbeat_ns = self.cfg.heartbeat_ms.saturating_mul(1_000_000);
        // fleet rate budgets: a pass every `rebalance_ms`; a demand entry in flight
        let mut budgets = (self.cfg.rebalance_ms > 0).then(|| {
            self.apply.count_demand();
            // a node silent this long is gone: past the staleness limit it denies everything
            // anyway, so its share is taken back only then (never an overshoot)
            Budgets::new(
                self.node.clone(),
                stale_after_ns.saturating_add(self.cfg.rebalance_ms.saturating_mul(1_000_000)),
            )
        });
        let mut rebalance =
            tokio::time::interval(Duration::from_millis(self.cfg.rebalance_ms.max(1)));
        rebalance.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut demand_put: Option<BoxFut<Result<u64, String>>> = None;
        // every node's demand entry (the newest of each), from the demand bucket
        let mut dwatch: Option<kv::Watch> = None;
        let mut dmaking: Option<BoxFut<Result<kv::Watch, String>>> = None;
        let mut tick = tokio::time::interval(heartbeat);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // the checkpoint lane: only the newest checkpoint matters, so it never queues behind
        // (or holds up) the bucket's writes: (its bytes, a number), the publish in flight, and
        // when to try again
        let subject = format!("{}.{}", self.cfg.checkpoint_stream, self.node);
        let mut cp_open = true;
        let mut cp_pending: Option<(Vec<u8>, u64)> = None;
        let mut cp_put: Option<(u64, BoxFut<Result<u64, String>>)> = None;
        let mut cp_retry_at: Option<tokio::time::Instant> = None;
        let mut cp_made = 0u64;
        // asked to stop: what the engine queued is published first, until this deadline
        let mut stopping: Option<tokio::time::Instant> = None;
        loop {
            if let Some(deadline) = stopping {
                // (a checkpoint the engine sent just before it asked to stop may still sit in
                // the lane, not yet taken into `cp_pending`: that is not drained)
                let cp_waiting = cp_open && cp.has_changed().unwrap_or(false);
                let drained =
                    writing.is_none() && rx.is_empty() && cp_pending.is_none() && !cp_waiting;
                if drained || tokio::time::Instant::now() >= deadline {
                    break;
                }
            }
            if watch.is_none() && making.is_none() {
                let kv = kv.clone();
                let from = t.processed() + 1;
                making = Some(Box::pin(async move {
                    // every entry from the first: a narrowing stays in force unless a release
                    // newer than it follows, whatever was written after
                    kv.watch_all_from_revision(from)
                        .await
                        .map_err(|e| format!("watch: {e}"))
                }));
            }
            if budgets.is_some() && dwatch.is_none() && dmaking.is_none() {
                let dkv = dkv.clone();
                dmaking = Some(Box::pin(async move {
                    dkv.watch_with_history(">")
                        .await
                        .map_err(|e| format!("demand watch: {e}"))
                }));
            }
            if put.is_none() && retry_at.is_none() {
                if let Some((key, _, bytes, _)) = &writing {
                    let (kv, key, bytes) = (kv.clone(), key.clone(), bytes.clone());
                    put = Some(Box::pin(async move {
                        kv.put(key, bytes.into()).await.map_err(|e| format!("{e}"))
                    }));
                }
            }
            if cp_put.is_none() && cp_retry_at.is_none() {
                if let Some((bytes, n)) = &cp_pending {
                    let (js, subject, bytes) = (js.clone(), subject.clone(), bytes.clone());
                    cp_put = Some((
                        *n,
                        Box::pin(async move {
                            let ack = js
                                .publish(subject, bytes.into())
                                .await
                                .map_err(|e| format!("{e}"))?;
                            ack.await.map(|a| a.sequence).map_err(|e| format!("{e}"))
                        }),
                    ));
                }
            }
            tokio::select! {
                r = async { dmaking.as_mut().unwrap().await }, if dmaking.is_some() => {
                    dmaking = None;
                    match r {
                        Ok(w) => dwatch = Some(w),
                        Err(e) => {
                            said.say(&e);
                            tokio::time::sleep(heartbeat.min(Duration::from_millis(100))).await;
                        }
                    }
                }
                e = async { dwatch.as_mut().unwrap().next().await }, if dwatch.is_some() => match e {
                    Some(Ok(e)) if e.operation == kv::Operation::Put => {
                        match super::state::decode(&e.key, &e.value).map(|w| w.record) {
                            Ok(Record::Demand { node, per_s }) => {
                                if let Some(b) = budgets.as_mut() {
                                    // counted from when it arrives, by this node's own
                                    // clock: another clock (the writer's, the server's)
                                    // ahead of it could make every live node look gone and
                                    // this one take the whole rate. An entry read at start
                                    // from a node long gone so counts for one more staleness
                                    // limit (less admitted, never more).
                                    b.on_demand(&node, per_s, crate::time::now_ns(), 0);
                                    self.shares(b);
                                }
                            }
                            Ok(_) | Err(_) => {
                                self.stats.rejected.fetch_add(1, Relaxed);
                                said.say(&format!("demand entry `{}` refused", e.key));
                            }
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => said.say(&format!("demand watch: {e}")),
                    None => dwatch = None,
                },
                r = cp.changed(), if cp_open => match r {
                    Ok(()) => {
                        let rec = cp.borrow_and_update().clone();
                        if let Some(rec) = rec {
                            let (_, bytes) = t.plain(rec);
                            cp_made += 1;
                            cp_pending = Some((bytes, cp_made));
                        }
                    }
                    Err(_) => cp_open = false,
                },
                r = async { cp_put.as_mut().unwrap().1.as_mut().await }, if cp_put.is_some() => {
                    let (n, _) = cp_put.take().expect("a checkpoint in flight");
                    match r {
                        Ok(_) => {
                            self.stats.checkpoints.fetch_add(1, Relaxed);
                            if cp_pending.as_ref().is_some_and(|(_, p)| *p == n) {
                                cp_pending = None;
                            }
                        }
                        Err(e) => {
                            self.stats.publish_retries.fetch_add(1, Relaxed);
                            said.say(&format!("publishing an audit checkpoint to `{subject}`: {e}"));
                            cp_retry_at = Some(tokio::time::Instant::now() + heartbeat.max(Duration::from_millis(100)));
                        }
                    }
                }
                _ = async { tokio::time::sleep_until(cp_retry_at.unwrap()).await }, if cp_retry_at.is_some() => {
                    cp_retry_at = None;
                }
                _ = &mut stop, if stopping.is_none() => {
                    stopping = Some(tokio::time::Instant::now() + timeout);
                }
                _ = async { tokio::time::sleep_until(stopping.unwrap()).await }, if stopping.is_some() => {}
                r = async { making.as_mut().unwrap().await }, if making.is_some() => {
                    making = None;
                    match r {
                        Ok(w) => watch = Some(w),
                        Err(e) => {
                            said.say(&e);
                            tokio::time::sleep(heartbeat.min(Duration::from_millis(100))).await;
                        }
                    }
                }
                e = async { watch.as_mut().unwrap().next().await }, if watch.is_some() => {
                    match e {
                        Some(Ok(e)) => {
                            self.step(&mut t, e);
                            if let Some((last, asked_ns)) = target {
                                if t.caught_up(last) {
                                    self.synced(asked_ns, stale_after_ns);
                                    target = None;
                                    behind_since = None;
                                }
                            }
                        }
                        Some(Err(e)) => eprintln!("warden: fleet: watch: {e}"),
                        None => watch = None,
                    }
                }
                c = rx.recv(), if writing.is_none() => {
                    let Some(c) = c else { break };
                    let (key, bytes, op) = t.local(c);
                    writing = Some((key, op, bytes, 0));
                }
                r = async { put.as_mut().unwrap().await }, if put.is_some() => {
                    put = None;
                    let (key, op, _, attempt) = writing.as_mut().expect("a put has its write");
                    match r {
                        Ok(rev) => {
                            self.stats.published.fetch_add(1, Relaxed);
                            if let Some(rec) = t.acknowledged(key, *op, rev) {
                                self.apply(rec);
                            }
                            writing = None;
                        }
                        Err(e) => {
                            self.stats.publish_retries.fetch_add(1, Relaxed);
                            *attempt += 1;
                            if *attempt == 1 || attempt.is_power_of_two() {
                                eprintln!("warden: fleet: publishing `{key}` failed ({e}); retrying (attempt {attempt})");
                            }
                            let wait = Duration::from_millis(10u64 << (*attempt).min(7));
                            retry_at = Some(tokio::time::Instant::now() + wait);
                        }
                    }
                }
                _ = async { tokio::time::sleep_until(retry_at.unwrap()).await }, if retry_at.is_some() => {
                    retry_at = None;
                }
                r = async { asking.as_mut().unwrap().1.as_mut().await }, if asking.is_some() => {
                    let (asked_ns, _) = asking.take().expect("asked");
                    match r {
                        Ok((last, made)) if stream_made.is_some_and(|m| m != made) => {
                            // the stream was made again (a store lost, a bucket deleted and
                            // made anew): its sequences start over, so read it from the start
                            eprintln!("warden: fleet: the bucket's stream was made anew (now at sequence {last}); reading it again from the start");
                            stream_made = Some(made);
                            t.rewatch();
                            watch = None;
                            making = None;
                            target = None;
                            behind_since = None;
                        }
                        Ok((last, made)) if t.caught_up(last) => {
                            stream_made = Some(made);
                            self.synced(asked_ns, stale_after_ns);
                            target = None;
                            behind_since = None;
                        }
                        Ok((last, made)) => {
                            stream_made = Some(made);
                            target = Some((last, asked_ns));
                            // Behind for four heartbeats: the watch's consumer went with a
                            // server (or stalled); make it again from the next revision.
                            let since = *behind_since.get_or_insert(asked_ns);
                            if asked_ns.saturating_sub(since) > 4 * heartbeat_ns {
                                eprintln!("warden: fleet: the watch is behind the bucket (at revision {}, the bucket at {last}); watching again from there", t.processed());
                                watch = None;
                                making = None;
                                behind_since = None;
                            }
                        }
                        Err(e) => said.say(&format!("asking the bucket's last sequence: {e}")),
                    }
                }
                _ = rebalance.tick(), if budgets.is_some() => {
                    let b = budgets.as_mut().expect("budgets");
                    let per_s = b.sample(self.apply.demand(), crate::time::now_ns());
                    if demand_put.is_none() {
                        let (key, bytes) = t.plain(Record::Demand { node: self.node.clone(), per_s });
                        let kv = dkv.clone();
                        demand_put = Some(Box::pin(async move {
                            kv.put(key, bytes.into()).await.map_err(|e| format!("{e}"))
                        }));
                    }
                    self.shares(b);
                }
                r = async { demand_put.as_mut().unwrap().await }, if demand_put.is_some() => {
                    demand_put = None;
                    if let Err(e) = r {
                        said.say(&format!("publishing this node's demand: {e}"));
                    }
                }
                _ = tick.tick() => {
                    if asking.is_none() {
                        let (js, stream) = (js.clone(), stream.clone());
                        let f: BoxFut<Result<(u64, i128), String>> = Box::pin(async move {
                            match tokio::time::timeout(timeout, last_sequence(js, stream)).await {
                                Ok(r) => r,
                                Err(_) => Err("timed out".into()),
                            }
                        });
                        asking = Some((crate::time::now_ns(), f));
                    }
                }
            }
        }
        let lost = rx.len() + usize::from(writing.is_some()) + usize::from(cp_pending.is_some());
        if lost > 0 {
            self.stats.publish_failures.fetch_add(lost as u64, Relaxed);
            eprintln!("warden: fleet: {lost} changes made here were not published before the node stopped");
        }
    }

    /// This node's share of every tenant's rate, from the demand entries it holds.
    fn shares(&self, b: &Budgets) {
        let now = crate::time::now_ns();
        self.apply.set_shares(&|t| b.share(t, now));
    }

    fn synced(&self, asked_ns: u64, stale_after_ns: u64) {
        self.stats.synced_ns.fetch_max(asked_ns, AcqRel);
        self.gate.synced(asked_ns, stale_after_ns);
    }
}

/// A failure that repeats is logged when it first happens, when it changes, and every 100th
/// time, so a node waiting for its servers does not flood its log.
#[derive(Default)]
struct Said {
    last: String,
    times: u64,
}

impl Said {
    fn say(&mut self, e: &str) {
        if e == self.last {
            self.times += 1;
            if !self.times.is_multiple_of(100) {
                return;
            }
        } else {
            self.last = e.to_string();
            self.times = 0;
        }
        eprintln!(
            "warden: fleet: {e}; trying again (repeated {} times)",
            self.times
        );
    }
}

fn incarnation() -> u64 {
    let mut b = [0u8; 8];
    if crate::secrets::random_bytes(&mut b).is_err() {
        return crate::time::now_ns() ^ u64::from(std::process::id()) << 32;
    }
    u64::from_le_bytes(b)
}

/// Runs `f` with a client connected to the fleet's servers, on a runtime of its own (the
/// CLI's one-off commands).
fn with_client<T, F, Fut>(cfg: &FleetConfig, f: F) -> Result<T, String>
where
    F: FnOnce(async_nats::Client) -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let auth = Auth::read(cfg)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("fleet: no runtime: {e}"))?;
    rt.block_on(async {
        let client = connect(cfg, auth).await?;
        f(client).await
    })
}

/// Every checkpoint `node` published, oldest first: (seq, head, signature), and how many
/// messages on its subject were refused (not a checkpoint of that node). For `warden audit
/// verify --fleet`, which pins the highest whose signature holds: a checkpoint published
/// again later (a replay, or a node restarted on a rolled-back log) never lowers it. An error
/// when the node published nothing.
pub fn published_checkpoints(
    cfg: &FleetConfig,
    node: &str,
) -> Result<(Vec<PublishedCheckpoint>, usize), String> {
    // a node id is a subject token: a `.`, `*` or `>` in one would read other nodes' subjects
    if !super::name_ok(node, super::MAX_NODE_ID) {
        return Err(format!(
            "fleet: node id `{node}`: 1 to {} letters, digits, `_` or `-`",
            super::MAX_NODE_ID
        ));
    }
    let timeout = Duration::from_millis(cfg.request_timeout_ms.max(1000));
    with_client(cfg, |client| async move {
        let js = jetstream::new(client);
        let stream = js
            .get_stream(&cfg.checkpoint_stream)
            .await
            .map_err(|e| format!("fleet: stream `{}`: {e}", cfg.checkpoint_stream))?;
        let subject = format!("{}.{node}", cfg.checkpoint_stream);
        stream
            .get_last_raw_message_by_subject(&subject)
            .await
            .map_err(|e| format!("fleet: no checkpoint of node `{node}` in `{}` ({e}): nothing off the node vouches for this log", cfg.checkpoint_stream))?;
        let consumer = stream
            .create_consumer(jetstream::consumer::pull::OrderedConfig {
                filter_subject: subject.clone(),
                deliver_policy: jetstream::consumer::DeliverPolicy::All,
                ..Default::default()
            })
            .await
            .map_err(|e| format!("fleet: reading `{subject}`: {e}"))?;
        let mut msgs = consumer
            .messages()
            .await
            .map_err(|e| format!("fleet: reading `{subject}`: {e}"))?;
        let (mut out, mut refused) = (Vec::new(), 0usize);
        loop {
            let m = match tokio::time::timeout(timeout, msgs.next()).await {
                Ok(Some(Ok(m))) => m,
                Ok(Some(Err(e))) => return Err(format!("fleet: reading `{subject}`: {e}")),
                Ok(None) | Err(_) => {
                    return Err(format!("fleet: reading `{subject}` stopped before its end"))
                }
            };
            let pending = m.info().map(|i| i.pending).unwrap_or(0);
            match super::state::decode(&format!("checkpoint.{node}"), &m.payload).map(|w| w.record)
            {
                Ok(Record::Checkpoint {
                    seq,
                    head,
                    signature,
                    ..
                }) => {
                    match (
                        crate::secrets::from_hex(&head),
                        crate::secrets::from_hex(&signature),
                    ) {
                        (Some(h), Some(s)) if h.len() == 32 && s.len() == 64 => {
                            let mut hb = [0u8; 32];
                            let mut sb = [0u8; 64];
                            hb.copy_from_slice(&h);
                            sb.copy_from_slice(&s);
                            out.push((seq, hb, sb));
                        }
                        _ => refused += 1,
                    }
                }
                _ => refused += 1,
            }
            if pending == 0 {
                return Ok((out, refused));
            }
        }
    })
}

/// How long the CLI keeps trying through servers that do not answer (a JetStream leader
/// election takes 4 to 9 s).
fn cli_patience(cfg: &FleetConfig) -> Duration {
    Duration::from_millis(cfg.request_timeout_ms.saturating_mul(10).max(20_000))
}

/// The name the CLI writes under.
fn cli_origin(cfg: &FleetConfig) -> super::state::Origin {
    let node = format!("cli-{}", cfg.node_name());
    super::state::Origin {
        node: node.chars().take(super::MAX_NODE_ID).collect(),
        incarnation: incarnation(),
        op: 1,
    }
}

/// `warden fleet release` and `unquarantine`: stores `record`, signed by the operator's key
/// (what a node needs before it widens access).
pub fn put_signed(
    cfg: &FleetConfig,
    record: Record,
    operator: &ed25519_dalek::SigningKey,
) -> Result<u64, String> {
    with_client(cfg, |client| async move {
        let js = jetstream::new(client.clone());
        let key = record.key();
        let bytes = super::state::encode(&super::state::signed(cli_origin(cfg), record, operator));
        // through a leader election (a server of a cluster lost), tried again for a while
        let deadline = tokio::time::Instant::now() + cli_patience(cfg);
        loop {
            let r = async {
                let kv = bucket(&js, cfg).await?;
                kv.put(&key, bytes.clone().into())
                    .await
                    .map_err(|e| format!("fleet: storing `{key}`: {e}"))
            }
            .await;
            match r {
                Ok(rev) => {
                    let _ = client.flush().await;
                    return Ok(rev);
                }
                Err(e) if tokio::time::Instant::now() >= deadline => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        }
    })
}

/// `warden policy push FILE`: compiles the policy here, then stores it in the fleet's bucket,
/// signed by the operator's key, as the next version: above the current one
/// (compare-and-set, so two pushes never share a number) and at least the time in
/// milliseconds (so a push after the bucket was lost still rises above what nodes saw).
/// Returns the version.
pub fn push_policy(
    cfg: &FleetConfig,
    toml: &str,
    file: &str,
    operator: &ed25519_dalek::SigningKey,
) -> Result<u64, String> {
    crate::policy::Snapshot::from_toml(toml, file).map_err(|e| e.to_string())?;
    with_client(cfg, |client| async move {
        let js = jetstream::new(client.clone());
        let deadline = tokio::time::Instant::now() + cli_patience(cfg);
        let kv = loop {
            match bucket(&js, cfg).await {
                Ok(kv) => break kv,
                Err(e) if tokio::time::Instant::now() >= deadline => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        };
        let mut last = String::new();
        for _ in 0..16 {
            let cur = kv
                .entry(super::state::POLICY_KEY)
                .await
                .map_err(|e| format!("fleet: reading the current policy: {e}"))?;
            let (version, revision) = match &cur {
                Some(e) if e.operation == kv::Operation::Put => {
                    match super::state::decode(super::state::POLICY_KEY, &e.value) {
                        Ok(w) => match w.record {
                            Record::Policy { version, .. } => (version, e.revision),
                            _ => (0, e.revision),
                        },
                        Err(_) => (0, e.revision),
                    }
                }
                Some(e) => (0, e.revision),
                None => (0, 0),
            };
            let next = version
                .checked_add(1)
                .filter(|v| *v <= super::state::max_policy_version())
                .ok_or_else(|| {
                    format!(
                        "fleet: the current policy's version {version} is from the future (a wrong clock, or an entry written past the CLI); nodes refuse versions more than a day ahead"
                    )
                })?
                .max(crate::time::wall_ns() / 1_000_000);
            let w = super::state::signed(
                cli_origin(cfg),
                Record::policy(next, toml.to_string()),
                operator,
            );
            let bytes = super::state::encode(&w);
            let r = if revision == 0 {
                kv.create(super::state::POLICY_KEY, bytes.into())
                    .await
                    .map_err(|e| e.to_string())
            } else {
                kv.update(super::state::POLICY_KEY, bytes.into(), revision)
                    .await
                    .map_err(|e| e.to_string())
            };
            match r {
                Ok(_) => {
                    let _ = client.flush().await;
                    return Ok(next);
                }
                // another push won the race (or the write failed): read the current version
                // and go again
                Err(e) => {
                    last = e;
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
            }
        }
        Err(format!(
            "fleet: the policy was not stored after 16 attempts (another push raced each one, \
             or the servers refused it): {last}"
        ))
    })
}
