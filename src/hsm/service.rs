//! The HSM core: one thread that owns a `Backend` and serves jobs from a bounded flume queue,
//! a batch at a time; the circuit breaker; `Keys`, the handle callers use.
//!
//! Jobs are of two kinds. A core's token tag (`TokenTag`) carries only the reply slot's index:
//! the core hands the slot over with the job (as it does to the audit writer), the HSM core reads
//! the token from the slot, verifies the tag, remembers a verified token in the identity cache,
//! writes the outcome into the slot and pushes it back onto the core's resume ring. A caller's
//! operation (`Call`) carries its bytes and a reply channel.
//!
//! Breaker: closed → (a fault: module, token, session or login lost, or an operation slower than
//! `hsm.timeout_us`) → open: every HSM-dependent job is answered `Unavailable` at once, and cores
//! deny without queueing → after `hsm.retry_ms` (doubling to `hsm.max_retry_ms`) half-open: one
//! probe reconnects and runs an HMAC → closed, or open again.

use super::backend::{Backend, Fault, PublicKey};
use super::soft::SoftKeys;
use super::HsmError;
use crate::metrics::AtomicHistogram;
use crate::time::now_ns;
use crate::types::Classification;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering::*};
use std::sync::Arc;
use std::time::Duration;

/// The breaker's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// The HSM serves.
    Closed,
    /// Faulted: HSM-dependent work is refused until a probe succeeds.
    Open,
    /// A probe is reconnecting.
    HalfOpen,
}

impl BreakerState {
    fn from_u8(v: u8) -> BreakerState {
        match v {
            0 => BreakerState::Closed,
            2 => BreakerState::HalfOpen,
            _ => BreakerState::Open,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

/// What the HSM core found for a core's token tag (kept in the slot's `hsm` word, low byte).
pub(crate) const TAG_VERIFIED: u32 = 1;
pub(crate) const TAG_BAD: u32 = 2;
pub(crate) const TAG_UNAVAILABLE: u32 = 3;
pub(crate) const TAG_MALFORMED: u32 = 4;

/// A caller's operation.
pub(crate) enum Call {
    HmacSign(Vec<u8>),
    HmacVerify(Vec<u8>, Vec<u8>),
    Encrypt(Vec<u8>, Vec<u8>),
    Decrypt(Vec<u8>, Vec<u8>),
    Sign(Vec<u8>),
    PublicKey,
}

pub(crate) enum Work {
    TokenTag { idx: u32, core: u16 },
    Call(Call, flume::Sender<Result<Vec<u8>, HsmError>>),
    Stop,
}

pub(crate) struct Job {
    pub enqueued_ns: u64,
    pub work: Work,
}

pub use crate::metrics::HsmMetrics;

/// State shared between the HSM core, the cores and `Keys`.
pub(crate) struct HsmShared {
    state: AtomicU8,
    pub kind: &'static str,
    ops: AtomicU64,
    faults: AtomicU64,
    opens: AtomicU64,
    probes: AtomicU64,
    refused_open: AtomicU64,
    pub queue_full: AtomicU64,
    queue_timeouts: AtomicU64,
    batches: AtomicU64,
    batch_jobs: AtomicU64,
    batch_max: AtomicU64,
    latency: AtomicHistogram,
    /// The last fault's text, for operators: a one-entry lock-free map (written by the HSM
    /// core on a fault, read by metrics).
    last_fault: papaya::HashMap<(), String>,
    pub stopped: AtomicBool,
}

impl HsmShared {
    fn new(kind: &'static str) -> HsmShared {
        HsmShared {
            state: AtomicU8::new(1),
            kind,
            ops: AtomicU64::new(0),
            faults: AtomicU64::new(0),
            opens: AtomicU64::new(0),
            probes: AtomicU64::new(0),
            refused_open: AtomicU64::new(0),
            queue_full: AtomicU64::new(0),
            queue_timeouts: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            batch_jobs: AtomicU64::new(0),
            batch_max: AtomicU64::new(0),
            latency: AtomicHistogram::default(),
            last_fault: papaya::HashMap::new(),
            stopped: AtomicBool::new(false),
        }
    }
    #[inline]
    pub fn breaker(&self) -> BreakerState {
        BreakerState::from_u8(self.state.load(Acquire))
    }
    #[inline]
    pub fn closed(&self) -> bool {
        self.state.load(Acquire) == 0
    }
    fn fault(&self, why: String) {
        self.faults.fetch_add(1, Relaxed);
        if self.state.swap(1, AcqRel) != 1 {
            self.opens.fetch_add(1, Relaxed);
        }
        eprintln!("warden hsm: {why}; HSM-dependent requests are denied until a probe reconnects");
        self.last_fault.pin().insert((), why);
    }
    pub fn metrics(&self, queue_depth: usize) -> HsmMetrics {
        let mut h = hdrhistogram::Histogram::<u64>::new(3).expect("histogram");
        self.latency.merge_into(&mut h);
        let batches = self.batches.load(Relaxed);
        HsmMetrics {
            backend: self.kind,
            breaker: self.breaker().name(),
            queue_depth,
            operations: self.ops.load(Relaxed),
            faults: self.faults.load(Relaxed),
            breaker_opens: self.opens.load(Relaxed),
            probes: self.probes.load(Relaxed),
            refused_open: self.refused_open.load(Relaxed),
            queue_full: self.queue_full.load(Relaxed),
            queue_timeouts: self.queue_timeouts.load(Relaxed),
            batches,
            batch_size_avg: if batches > 0 {
                self.batch_jobs.load(Relaxed) as f64 / batches as f64
            } else {
                0.0
            },
            batch_size_max: self.batch_max.load(Relaxed),
            latency: crate::metrics::summarize(&h, 0, h.max()),
            last_fault: self.last_fault.pin().get(&()).cloned().unwrap_or_default(),
        }
    }
}

/// The HSM core's settings (from `[hsm]`).
#[derive(Clone, Copy, Debug)]
pub struct ServiceSettings {
    pub queue_capacity: usize,
    pub batch_size: usize,
    pub timeout_ns: u64,
    pub retry_ns: u64,
    pub max_retry_ns: u64,
    pub spin_ns: u64,
    pub cpu: Option<usize>,
}

/// The sending side, held by the engine's shared state and by every `Keys`.
#[derive(Clone)]
pub(crate) struct HsmClient {
    pub tx: flume::Sender<Job>,
    pub shared: Arc<HsmShared>,
    timeout: Duration,
    spin_ns: u64,
}

impl HsmClient {
    pub fn depth(&self) -> usize {
        self.tx.len()
    }

    /// Queues a core's token tag; `false` when the queue is full.
    #[inline]
    pub fn token_tag(&self, idx: u32, core: u16) -> bool {
        let job = Job {
            enqueued_ns: now_ns(),
            work: Work::TokenTag { idx, core },
        };
        if self.tx.try_send(job).is_ok() {
            true
        } else {
            self.shared.queue_full.fetch_add(1, Relaxed);
            false
        }
    }

    fn call(&self, call: Call) -> Result<Vec<u8>, HsmError> {
        if self.shared.stopped.load(Acquire) {
            return Err(HsmError::Unavailable("the HSM core stopped".into()));
        }
        if !self.shared.closed() {
            self.shared.refused_open.fetch_add(1, Relaxed);
            return Err(HsmError::Unavailable(format!(
                "circuit breaker {}",
                self.shared.breaker().name()
            )));
        }
        let (rtx, rrx) = flume::bounded(1);
        // Alone in the queue: spin for the answer. Behind others: sleep at once, leaving the
        // CPU to the HSM core (spinning callers starve it on a small machine).
        let alone = self.tx.is_empty();
        let job = Job {
            enqueued_ns: now_ns(),
            work: Work::Call(call, rtx),
        };
        match self.tx.try_send(job) {
            Ok(()) => {}
            Err(flume::TrySendError::Full(_)) => {
                self.shared.queue_full.fetch_add(1, Relaxed);
                return Err(HsmError::Unavailable("the HSM queue is full".into()));
            }
            Err(flume::TrySendError::Disconnected(_)) => {
                return Err(HsmError::Unavailable("the HSM core stopped".into()))
            }
        }
        // Spin for about one operation's time before sleeping: a futex wake-up costs as much
        // as a software token's whole operation.
        let spin_until = now_ns() + if alone { self.spin_ns } else { 0 };
        loop {
            match rrx.try_recv() {
                Ok(r) => return r,
                Err(flume::TryRecvError::Disconnected) => {
                    return Err(HsmError::Unavailable("the HSM core stopped".into()))
                }
                Err(flume::TryRecvError::Empty) if now_ns() < spin_until => std::hint::spin_loop(),
                Err(flume::TryRecvError::Empty) => break,
            }
        }
        rrx.recv_timeout(self.timeout).unwrap_or_else(|_| {
            // No answer within four times hsm.timeout_us: the HSM is slower than the timeout,
            // which opens the breaker, here as when the HSM core measures it. (Left to the HSM
            // core alone, a caller could see the timeout while the breaker still read closed.)
            let why = format!(
                "no answer within {} µs (hsm.timeout_us, four times over)",
                self.timeout.as_micros()
            );
            if self.shared.closed() {
                self.shared.fault(why.clone());
            }
            Err(HsmError::Unavailable(why))
        })
    }
}

/// Starts the HSM core thread around `backend`. It connects first and reports through the
/// returned receiver (`Err` names the fault; the thread keeps probing either way). `tags`
/// serves core token tags (given the engine's shared state once it exists).
pub(crate) fn spawn(
    mut backend: Box<dyn Backend>,
    settings: ServiceSettings,
    tags: Option<TagServer>,
) -> (HsmClient, flume::Receiver<Result<(), String>>) {
    let (tx, rx) = flume::bounded::<Job>(settings.queue_capacity.max(1));
    let shared = Arc::new(HsmShared::new(backend.kind()));
    let (ready_tx, ready_rx) = flume::bounded(1);
    let sh = shared.clone();
    std::thread::Builder::new()
        .name("warden-hsm".into())
        .spawn(move || {
            if let Some(cpu) = settings.cpu {
                core_affinity::set_for_current(core_affinity::CoreId { id: cpu });
            }
            let first = backend.connect().and_then(|()| probe(&mut *backend));
            let report = match first {
                Ok(()) => {
                    sh.state.store(0, Release);
                    Ok(())
                }
                Err(f) => {
                    let why = fault_text(f);
                    sh.fault(why.clone());
                    Err(why)
                }
            };
            let _ = ready_tx.send(report);
            let mut tags = tags;
            // Jobs taken but not yet answered live here, outside the unwind, with the token
            // tag being verified.
            let mut batch = std::collections::VecDeque::with_capacity(settings.batch_size.max(1));
            let mut current = None;
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                run(
                    &mut *backend,
                    &rx,
                    &sh,
                    settings,
                    &mut tags,
                    &mut batch,
                    &mut current,
                )
            }));
            if let Err(payload) = ran {
                crate::engine::drop_payload(payload);
                // Contained: nobody waiting on the HSM core is stranded. Every job from now on
                // is answered `Unavailable` until the engine stops it.
                sh.fault("the HSM core panicked; restart warden to use the HSM again".into());
                if let (Some((idx, core)), Some(t)) = (current, tags.as_mut()) {
                    (t.resume)(idx, core, TAG_UNAVAILABLE);
                    (t.wake)(core);
                }
                drain_unavailable(batch.drain(..).map(Ok).chain(rx.iter().map(Ok)), &mut tags);
            }
            sh.stopped.store(true, Release);
        })
        .expect("spawn the HSM core");
    (
        HsmClient {
            tx,
            shared,
            timeout: Duration::from_nanos(settings.timeout_ns.max(1_000_000) * 4),
            spin_ns: settings.spin_ns,
        },
        ready_rx,
    )
}

/// Verifies the token tag in a slot with the backend.
pub(crate) type VerifyTag = dyn FnMut(&mut dyn Backend, u32) -> Result<u32, Fault> + Send;

/// Serves core token tags: reads a slot, answers it, resumes the core.
pub(crate) struct TagServer {
    /// Verifies the tag of the token in slot `idx`: `TAG_VERIFIED`, `TAG_BAD`, `TAG_MALFORMED`,
    /// or the backend's fault.
    pub verify: Box<VerifyTag>,
    /// Writes the outcome into the slot and pushes it onto the core's resume ring.
    pub resume: Box<dyn FnMut(u32, u16, u32) + Send>,
    /// Wakes a core that may sleep (once per batch).
    pub wake: Box<dyn FnMut(u16) + Send>,
}

fn fault_text(f: Fault) -> String {
    match f {
        Fault::Down(w) => w,
        Fault::Refused(e) => format!("probe refused: {e}"),
    }
}

fn probe(b: &mut dyn Backend) -> Result<(), Fault> {
    let tag = b.hmac_sign(b"warden hsm probe")?;
    match b.hmac_verify(b"warden hsm probe", &tag)? {
        true => Ok(()),
        false => Err(Fault::Down("probe HMAC did not verify".into())),
    }
}

/// After a panic: answers every job `Unavailable` until `Stop` (or every sender is gone).
fn drain_unavailable(jobs: impl Iterator<Item = Result<Job, ()>>, tags: &mut Option<TagServer>) {
    for job in jobs.flatten() {
        match job.work {
            Work::Stop => return,
            Work::TokenTag { idx, core } => {
                if let Some(t) = tags.as_mut() {
                    (t.resume)(idx, core, TAG_UNAVAILABLE);
                    (t.wake)(core);
                }
            }
            Work::Call(_, reply) => {
                let _ = reply.send(Err(HsmError::Unavailable("the HSM core panicked".into())));
            }
        }
    }
}

fn run(
    b: &mut dyn Backend,
    rx: &flume::Receiver<Job>,
    sh: &HsmShared,
    st: ServiceSettings,
    tags: &mut Option<TagServer>,
    batch: &mut std::collections::VecDeque<Job>,
    current: &mut Option<(u32, u16)>,
) {
    let cap = st.batch_size.max(1);
    let mut woken: Vec<u16> = Vec::with_capacity(64);
    let mut backoff = st.retry_ns.max(1);
    let mut next_probe = now_ns() + backoff;
    loop {
        // Probe when open and due.
        let now = now_ns();
        if !sh.closed() && now >= next_probe {
            sh.state.store(2, Release);
            sh.probes.fetch_add(1, Relaxed);
            b.disconnect();
            match b.connect().and_then(|()| probe(b)) {
                Ok(()) => {
                    sh.state.store(0, Release);
                    backoff = st.retry_ns.max(1);
                    eprintln!("warden hsm: reconnected; the breaker is closed");
                }
                Err(f) => {
                    sh.state.store(1, Release);
                    sh.last_fault.pin().insert((), fault_text(f));
                    backoff = (backoff * 2).min(st.max_retry_ns.max(backoff));
                }
            }
            next_probe = now_ns() + backoff;
        }
        // Wait for work: spin a little, then block until the next probe is due.
        let first = {
            let spin_until = now_ns() + st.spin_ns;
            let mut got = None;
            while got.is_none() && now_ns() < spin_until {
                match rx.try_recv() {
                    Ok(j) => got = Some(j),
                    Err(flume::TryRecvError::Disconnected) => return,
                    Err(flume::TryRecvError::Empty) => std::hint::spin_loop(),
                }
            }
            match got {
                Some(j) => j,
                None => {
                    let wait = if sh.closed() {
                        Duration::from_millis(50)
                    } else {
                        Duration::from_nanos(next_probe.saturating_sub(now_ns()).max(100_000))
                    };
                    match rx.recv_timeout(wait) {
                        Ok(j) => j,
                        Err(flume::RecvTimeoutError::Timeout) => continue,
                        Err(flume::RecvTimeoutError::Disconnected) => return,
                    }
                }
            }
        };
        batch.push_back(first);
        while batch.len() < cap {
            match rx.try_recv() {
                Ok(j) => batch.push_back(j),
                Err(_) => break,
            }
        }
        let n = batch.len() as u64;
        sh.batches.fetch_add(1, Relaxed);
        sh.batch_jobs.fetch_add(n, Relaxed);
        if n > sh.batch_max.load(Relaxed) {
            sh.batch_max.store(n, Relaxed);
        }
        let mut stop = false;
        while let Some(job) = batch.pop_front() {
            if let Work::Stop = job.work {
                stop = true;
                continue;
            }
            let waited = now_ns().saturating_sub(job.enqueued_ns);
            let refuse: Option<HsmError> = if !sh.closed() {
                sh.refused_open.fetch_add(1, Relaxed);
                Some(HsmError::Unavailable(format!(
                    "circuit breaker {}",
                    sh.breaker().name()
                )))
            } else if waited > st.timeout_ns {
                // The HSM is not keeping up with what it is offered: a timeout, like a slow
                // operation. The breaker opens; a probe closes it again after retry_ms.
                sh.queue_timeouts.fetch_add(1, Relaxed);
                let why = format!(
                    "a job waited {} µs in the HSM queue, more than hsm.timeout_us",
                    waited / 1000
                );
                sh.fault(why.clone());
                Some(HsmError::Unavailable(why))
            } else {
                None
            };
            match job.work {
                Work::Stop => {}
                Work::TokenTag { idx, core } => {
                    let Some(t) = tags.as_mut() else { continue };
                    let outcome = match refuse {
                        Some(_) => TAG_UNAVAILABLE,
                        None => {
                            let t0 = now_ns();
                            *current = Some((idx, core));
                            let r = (t.verify)(b, idx);
                            let faulted = matches!(r, Err(Fault::Down(_)));
                            if let Err(Fault::Down(why)) = &r {
                                sh.fault(why.clone());
                            }
                            after_op(sh, t0, st.timeout_ns, faulted);
                            r.unwrap_or(TAG_UNAVAILABLE)
                        }
                    };
                    (t.resume)(idx, core, outcome);
                    *current = None;
                    if !woken.contains(&core) {
                        woken.push(core);
                    }
                }
                Work::Call(call, reply) => {
                    let r = match refuse {
                        Some(e) => Err(e),
                        None => {
                            let t0 = now_ns();
                            let r = execute(b, call);
                            let faulted = matches!(r, Err(Fault::Down(_)));
                            if let Err(Fault::Down(why)) = &r {
                                sh.fault(why.clone());
                            }
                            after_op(sh, t0, st.timeout_ns, faulted);
                            r.map_err(HsmError::from)
                        }
                    };
                    let _ = reply.send(r);
                }
            }
        }
        // One wake per core per batch.
        if let Some(t) = tags.as_mut() {
            for core in woken.drain(..) {
                (t.wake)(core);
            }
        }
        if stop {
            return;
        }
    }
}

/// Records an operation's time; a fault, or an operation slower than the timeout, opens the
/// breaker.
/// (A fault was already recorded by the caller.)
fn after_op(sh: &HsmShared, t0: u64, timeout_ns: u64, faulted: bool) {
    let took = now_ns().saturating_sub(t0);
    sh.ops.fetch_add(1, Relaxed);
    sh.latency.record(took);
    if !faulted && took > timeout_ns && sh.closed() {
        sh.fault(format!(
            "an operation took {} µs, more than hsm.timeout_us",
            took / 1000
        ));
    }
}

fn execute(b: &mut dyn Backend, call: Call) -> Result<Vec<u8>, Fault> {
    match call {
        Call::HmacSign(d) => b.hmac_sign(&d).map(|t| t.to_vec()),
        Call::HmacVerify(d, t) => b.hmac_verify(&d, &t).map(|ok| vec![ok as u8]),
        Call::Encrypt(pt, aad) => {
            // The nonce comes from the kernel's generator: one syscall instead of a second
            // PKCS#11 call (C_GenerateRandom costs as much as the encryption on a software
            // token); 96 random bits per message under one key, as NIST SP 800-38D allows.
            let mut nonce = [0u8; super::NONCE_BYTES];
            crate::secrets::random_bytes(&mut nonce).map_err(Fault::Down)?;
            let mut out = Vec::with_capacity(super::NONCE_BYTES + pt.len() + super::TAG_BYTES);
            out.extend_from_slice(&nonce);
            b.encrypt(&nonce, &pt, &aad, &mut out)?;
            Ok(out)
        }
        Call::Decrypt(sealed, aad) => {
            let Some(body) = sealed.get(super::NONCE_BYTES..) else {
                return Err(Fault::Refused(HsmError::Malformed(
                    "sealed data shorter than its nonce",
                )));
            };
            let nonce: [u8; super::NONCE_BYTES] = sealed[..super::NONCE_BYTES]
                .try_into()
                .expect("length checked");
            let mut out = Vec::with_capacity(body.len());
            b.decrypt(&nonce, body, &aad, &mut out)?;
            Ok(out)
        }
        Call::Sign(d) => b.sign(&d),
        Call::PublicKey => b.public_key().map(|pk| {
            let mut v = vec![matches!(pk, PublicKey::P256(_)) as u8];
            v.extend_from_slice(pk.bytes());
            v
        }),
    }
}

#[derive(Clone)]
enum Inner {
    Soft(Arc<SoftKeys>),
    Hsm(HsmClient),
}

/// The keys, wherever they live: `Engine::keys()`. `Clone + Send + Sync`. Calls to an HSM
/// queue a job on the HSM core and wait for its answer (they allocate; they are not the
/// validation hot path); software keys answer in place.
#[derive(Clone)]
pub struct Keys {
    inner: Inner,
    require_hsm_at: Option<Classification>,
}

/// Refuses data that a token's tag covers (it begins `wdn1`), so the keystore's general signing
/// calls cannot mint tokens for the keys tokens name.
fn refuse_token_prefix(data: &[u8]) -> Result<(), HsmError> {
    if data.starts_with(crate::identity::token::SIGNED_PREFIX) {
        return Err(HsmError::Malformed(
            "data that begins as a wdn1 token does is signed only by token issue",
        ));
    }
    Ok(())
}

impl Keys {
    pub(crate) fn soft(keys: Arc<SoftKeys>, require_hsm_at: Option<Classification>) -> Keys {
        Keys {
            inner: Inner::Soft(keys),
            require_hsm_at,
        }
    }
    pub(crate) fn hsm(client: HsmClient, require_hsm_at: Option<Classification>) -> Keys {
        Keys {
            inner: Inner::Hsm(client),
            require_hsm_at,
        }
    }
    pub(crate) fn client(&self) -> Option<&HsmClient> {
        match &self.inner {
            Inner::Hsm(c) => Some(c),
            Inner::Soft(_) => None,
        }
    }
    pub(crate) fn soft_keys(&self) -> Option<&Arc<SoftKeys>> {
        match &self.inner {
            Inner::Soft(k) => Some(k),
            Inner::Hsm(_) => None,
        }
    }

    /// `"software"` or `"pkcs11"`.
    pub fn backend(&self) -> &'static str {
        match &self.inner {
            Inner::Soft(_) => "software",
            Inner::Hsm(c) => c.shared.kind,
        }
    }

    /// The breaker (always closed for software keys).
    pub fn breaker(&self) -> BreakerState {
        match &self.inner {
            Inner::Soft(_) => BreakerState::Closed,
            Inner::Hsm(c) => c.shared.breaker(),
        }
    }

    /// Whether data of `class` may be handled by these keys (`hsm.require_hsm_at`).
    pub fn permits(&self, class: Classification) -> Result<(), HsmError> {
        match (&self.inner, self.require_hsm_at) {
            (Inner::Soft(_), Some(at)) if class >= at => Err(HsmError::HsmRequired(class)),
            _ => Ok(()),
        }
    }

    /// HMAC-SHA256 of `data` under the keystore's HMAC key. Data that begins as a token's signed
    /// part does (`wdn1`) is refused: tokens name this key (`identity.keystore_hmac_key_id`),
    /// so a gateway that tags what an agent sends would otherwise mint tokens for it
    /// (`token_hmac_sign` tags tokens).
    pub fn hmac_sign(&self, data: &[u8]) -> Result<[u8; 32], HsmError> {
        refuse_token_prefix(data)?;
        self.token_hmac_sign(data)
    }

    /// `hmac_sign` for a token's signed part (`warden token issue --keystore hmac`).
    pub fn token_hmac_sign(&self, data: &[u8]) -> Result<[u8; 32], HsmError> {
        match &self.inner {
            Inner::Soft(k) => Ok(k.hmac_sign(data)),
            Inner::Hsm(c) => c.call(Call::HmacSign(data.to_vec())).and_then(|v| {
                v.try_into()
                    .map_err(|_| HsmError::Unavailable("HMAC of the wrong size".into()))
            }),
        }
    }

    /// `Ok(())` when `tag` is the HMAC of `data`; `Err(Verification)` when it is not.
    pub fn hmac_verify(&self, data: &[u8], tag: &[u8]) -> Result<(), HsmError> {
        let ok = match &self.inner {
            Inner::Soft(k) => k.hmac_verify(data, tag),
            Inner::Hsm(c) => c.call(Call::HmacVerify(data.to_vec(), tag.to_vec()))? == [1],
        };
        if ok {
            Ok(())
        } else {
            Err(HsmError::Verification)
        }
    }

    /// AES-256-GCM under the data key: returns `nonce (12) || ciphertext || tag (16)`. The
    /// nonce is random (the token's generator on an HSM). `class` is checked against
    /// `hsm.require_hsm_at`.
    pub fn encrypt(
        &self,
        class: Classification,
        plaintext: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>, HsmError> {
        self.permits(class)?;
        match &self.inner {
            Inner::Soft(k) => {
                let mut nonce = [0u8; super::NONCE_BYTES];
                crate::secrets::random_bytes(&mut nonce).map_err(HsmError::Unavailable)?;
                let mut out =
                    Vec::with_capacity(super::NONCE_BYTES + plaintext.len() + super::TAG_BYTES);
                out.extend_from_slice(&nonce);
                k.encrypt(&nonce, plaintext, aad, &mut out);
                Ok(out)
            }
            Inner::Hsm(c) => c.call(Call::Encrypt(plaintext.to_vec(), aad.to_vec())),
        }
    }

    /// Opens what `encrypt` sealed; a modified byte anywhere is `Err(Verification)`.
    pub fn decrypt(
        &self,
        class: Classification,
        sealed: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>, HsmError> {
        self.permits(class)?;
        match &self.inner {
            Inner::Soft(k) => {
                if sealed.len() < super::NONCE_BYTES {
                    return Err(HsmError::Malformed("sealed data shorter than its nonce"));
                }
                let (n, body) = sealed.split_at(super::NONCE_BYTES);
                let nonce: [u8; 12] = n.try_into().expect("split at 12");
                let mut out = Vec::with_capacity(body.len());
                k.decrypt(&nonce, body, aad, &mut out)?;
                Ok(out)
            }
            Inner::Hsm(c) => c.call(Call::Decrypt(sealed.to_vec(), aad.to_vec())),
        }
    }

    /// Signs with the signature key (Ed25519: 64 bytes; ECDSA P-256: `r || s`, 64 bytes). Data
    /// that begins as a token's signed part does (`wdn1`) is refused, as for `hmac_sign`
    /// (`token_sign` signs tokens); audit checkpoints sign a message with a context of their own.
    pub fn sign(&self, data: &[u8]) -> Result<Vec<u8>, HsmError> {
        refuse_token_prefix(data)?;
        self.token_sign(data)
    }

    /// `sign` for a token's signed part (`warden token issue --keystore ed25519`).
    pub fn token_sign(&self, data: &[u8]) -> Result<Vec<u8>, HsmError> {
        match &self.inner {
            Inner::Soft(k) => Ok(k.sign(data).to_vec()),
            Inner::Hsm(c) => c.call(Call::Sign(data.to_vec())),
        }
    }

    pub fn public_key(&self) -> Result<PublicKey, HsmError> {
        match &self.inner {
            Inner::Soft(k) => Ok(k.public_key()),
            Inner::Hsm(c) => {
                let v = c.call(Call::PublicKey)?;
                match (v.first(), v.get(1..)) {
                    (Some(0), Some(b)) => b
                        .try_into()
                        .map(PublicKey::Ed25519)
                        .map_err(|_| HsmError::Unavailable("bad Ed25519 public key".into())),
                    (Some(1), Some(b)) => Ok(PublicKey::P256(b.to_vec())),
                    _ => Err(HsmError::Unavailable("bad public key".into())),
                }
            }
        }
    }

    /// HSM counters (`None` for software keys).
    pub fn metrics(&self) -> Option<HsmMetrics> {
        self.client().map(|c| c.shared.metrics(c.depth()))
    }

    /// Stops the HSM core after the jobs already queued (waits up to 5 s); later calls are
    /// refused. Call it before the process exits, so no PKCS#11 call is cut off midway.
    pub fn shutdown(&self) {
        let Some(c) = self.client() else { return };
        if c.shared.stopped.load(Acquire) {
            return;
        }
        let stop = Job {
            enqueued_ns: 0,
            work: Work::Stop,
        };
        let _ = c.tx.send_timeout(stop, Duration::from_secs(5));
        let until = std::time::Instant::now() + Duration::from_secs(5);
        while !c.shared.stopped.load(Acquire) && std::time::Instant::now() < until {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hsm::soft::SoftBackend;
    use std::sync::Mutex;

    fn settings() -> ServiceSettings {
        ServiceSettings {
            queue_capacity: 64,
            batch_size: 8,
            timeout_ns: 1_000_000_000,
            retry_ns: 10_000_000,
            max_retry_ns: 50_000_000,
            spin_ns: 10_000,
            cpu: None,
        }
    }

    #[test]
    fn calls_through_the_service_thread_round_trip() {
        let soft = Arc::new(SoftKeys::ephemeral().unwrap());
        let (client, ready) = spawn(Box::new(SoftBackend(soft.clone())), settings(), None);
        ready.recv().unwrap().unwrap();
        let keys = Keys::hsm(client.clone(), None);
        let tag = keys.hmac_sign(b"abc").unwrap();
        assert_eq!(
            tag,
            soft.hmac_sign(b"abc"),
            "the service ran the backend's HMAC"
        );
        keys.hmac_verify(b"abc", &tag).unwrap();
        assert_eq!(keys.hmac_verify(b"abd", &tag), Err(HsmError::Verification));
        let sealed = keys
            .encrypt(Classification::Secret, b"payload", b"ctx")
            .unwrap();
        assert_eq!(
            keys.decrypt(Classification::Secret, &sealed, b"ctx")
                .unwrap(),
            b"payload"
        );
        assert_eq!(
            keys.decrypt(Classification::Secret, &sealed, b"other"),
            Err(HsmError::Verification)
        );
        assert_eq!(
            keys.decrypt(Classification::Secret, &sealed[..5], b"ctx"),
            Err(HsmError::Malformed("sealed data shorter than its nonce"))
        );
        // a token's signed part is not signed by the general calls: no token minted through
        // a gateway that signs what agents send
        for data in [&b"wdn1"[..], b"wdn1\x01claims"] {
            assert!(matches!(keys.sign(data), Err(HsmError::Malformed(_))));
            assert!(matches!(keys.hmac_sign(data), Err(HsmError::Malformed(_))));
        }
        assert_eq!(
            keys.token_hmac_sign(b"wdn1x").unwrap(),
            soft.hmac_sign(b"wdn1x")
        );
        assert!(keys.token_sign(b"wdn1x").is_ok());
        let pk = keys.public_key().unwrap();
        let sig = keys.sign(b"head").unwrap();
        assert!(super::super::backend::verify_signature(&pk, b"head", &sig));
        let m = keys.metrics().unwrap();
        assert!(m.operations >= 7 && m.batches >= 1, "{m:?}");
        client
            .tx
            .send(Job {
                enqueued_ns: 0,
                work: Work::Stop,
            })
            .unwrap();
    }

    proptest::proptest! {
        /// Sealed data is untrusted input: any bytes are refused cleanly, never a panic, and
        /// what `encrypt` sealed opens to the same plaintext.
        #[test]
        fn decrypt_takes_any_bytes_and_round_trips(
            junk in proptest::collection::vec(proptest::num::u8::ANY, 0..96),
            pt in proptest::collection::vec(proptest::num::u8::ANY, 0..256),
            aad in proptest::collection::vec(proptest::num::u8::ANY, 0..32),
        ) {
            let keys = Keys::soft(Arc::new(SoftKeys::ephemeral().unwrap()), None);
            proptest::prop_assert!(keys.decrypt(Classification::Cui, &junk, &aad).is_err());
            let sealed = keys.encrypt(Classification::Cui, &pt, &aad).unwrap();
            proptest::prop_assert_eq!(keys.decrypt(Classification::Cui, &sealed, &aad).unwrap(), pt);
        }
    }

    /// A backend that panics on its second HMAC (the first is the start-up probe's).
    struct Panicky(u32);
    impl Backend for Panicky {
        fn kind(&self) -> &'static str {
            "pkcs11"
        }
        fn connect(&mut self) -> Result<(), Fault> {
            Ok(())
        }
        fn disconnect(&mut self) {}
        fn hmac_sign(&mut self, _: &[u8]) -> Result<[u8; 32], Fault> {
            Ok([0; 32])
        }
        fn hmac_verify(&mut self, _: &[u8], _: &[u8]) -> Result<bool, Fault> {
            self.0 += 1;
            if self.0 > 1 {
                panic!("a module bug");
            }
            Ok(true)
        }
        fn encrypt(
            &mut self,
            _: &[u8; 12],
            _: &[u8],
            _: &[u8],
            _: &mut Vec<u8>,
        ) -> Result<(), Fault> {
            Ok(())
        }
        fn decrypt(
            &mut self,
            _: &[u8; 12],
            _: &[u8],
            _: &[u8],
            _: &mut Vec<u8>,
        ) -> Result<(), Fault> {
            Ok(())
        }
        fn sign(&mut self, _: &[u8]) -> Result<Vec<u8>, Fault> {
            Ok(vec![0; 64])
        }
        fn public_key(&mut self) -> Result<PublicKey, Fault> {
            Ok(PublicKey::Ed25519([0; 32]))
        }
    }

    #[test]
    fn a_panicking_hsm_core_strands_no_one() {
        let resumed = Arc::new(Mutex::new(Vec::new()));
        let r = resumed.clone();
        let tags = TagServer {
            verify: Box::new(|b, _| b.hmac_verify(b"x", b"y").map(|_| TAG_VERIFIED)),
            resume: Box::new(move |idx, _, outcome| r.lock().unwrap().push((idx, outcome))),
            wake: Box::new(|_| {}),
        };
        let (client, ready) = spawn(Box::new(Panicky(0)), settings(), Some(tags));
        ready.recv().unwrap().unwrap();
        // Three tags queued at once: the first panics, the other two wait in the batch.
        for idx in 0..3 {
            assert!(client.token_tag(idx, 0));
        }
        let until = std::time::Instant::now() + Duration::from_secs(5);
        while resumed.lock().unwrap().len() < 3 {
            assert!(
                std::time::Instant::now() < until,
                "stranded: {:?}",
                resumed.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        let got = resumed.lock().unwrap().clone();
        assert!(got.iter().all(|&(_, o)| o == TAG_UNAVAILABLE), "{got:?}");
        let keys = Keys::hsm(client.clone(), None);
        assert!(matches!(
            keys.hmac_sign(b"x"),
            Err(HsmError::Unavailable(_))
        ));
        assert_eq!(keys.breaker(), BreakerState::Open);
        keys.shutdown();
        assert!(client.shared.stopped.load(Acquire));
    }

    #[test]
    fn software_keys_refuse_classifications_that_need_the_hsm() {
        let keys = Keys::soft(
            Arc::new(SoftKeys::ephemeral().unwrap()),
            Some(Classification::Secret),
        );
        assert!(keys
            .encrypt(Classification::Confidential, b"x", b"")
            .is_ok());
        assert_eq!(
            keys.encrypt(Classification::Secret, b"x", b""),
            Err(HsmError::HsmRequired(Classification::Secret))
        );
        assert_eq!(
            keys.decrypt(Classification::TopSecret, b"x", b""),
            Err(HsmError::HsmRequired(Classification::TopSecret))
        );
    }
}
