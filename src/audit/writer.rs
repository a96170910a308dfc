//! The audit queue (cores → writer) and the writer thread.
//!
//! Queue: a fixed slab of `Pending` cells, a lock-free free list of cell indices (`Stack`) and a
//! bounded ring of ready indices (`Ring`). A core pops a free cell, copies the event into it
//! (inline bytes, no allocation), pushes its index; when no cell is free the request is denied
//! with `AuditBackpressure`, counted, never dropped silently.
//!
//! Writer: one thread off the hot path. It drains the ring, stages records, adds a signed
//! checkpoint every `checkpoint_records` records or `checkpoint_ms`, and flushes by mode:
//! `always` writes and fdatasyncs every drained batch; `group` waits until `group_records`
//! records or `group_us` since the first staged one; `async` writes when 64 KiB are staged or
//! every `async_flush_ms`, and syncs only then. In the durable modes the writer completes the
//! requests' reply slots itself after the sync: a request is answered only once its record is
//! durable. A failed write answers those requests `AuditUnavailable` and is rolled back.

use super::log::Log;
use super::record::Event;
use crate::request::Request;
use crate::sync::ring::Ring;
use crate::sync::stack::Stack;
use crate::types::{Classification, DenyReason, Operation, Verdict};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::*};

/// Bytes of tenant, agent, tool, action and resource a queued event holds inline.
pub const PENDING_BYTES: usize = 2048;
/// Bytes a truncation mark takes at most: `...[+4294967295 bytes, blake3 0123456789abcdef]`.
const MARK_BYTES: usize = 52;

/// Writes into `out` the mark of `s` cut at `kept` bytes: how many bytes were cut and the first
/// 8 bytes of the BLAKE3 digest of the whole field, so a reader can tell a record was cut and
/// check a candidate value against it. Returns its length. No allocation.
fn truncation_mark(s: &str, kept: usize, out: &mut [u8]) -> usize {
    use std::io::Write;
    let d = blake3::hash(s.as_bytes());
    let h = d.as_bytes();
    let mut cur = std::io::Cursor::new(out);
    let _ = write!(
        cur,
        "...[+{} bytes, blake3 {:02x}{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}]",
        s.len() - kept,
        h[0],
        h[1],
        h[2],
        h[3],
        h[4],
        h[5],
        h[6],
        h[7]
    );
    cur.position() as usize
}
pub(crate) const NO_SLOT: u32 = u32::MAX;

pub(crate) struct Pending {
    pub verdict: Verdict,
    pub time_ns: u64,
    pub operation: Operation,
    pub origin: crate::types::ContentOrigin,
    pub classification: Classification,
    pub slot: u32,
    lens: [u16; 6],
    bytes: [u8; PENDING_BYTES],
}

impl Pending {
    fn fields(&self) -> [&str; 6] {
        let mut out = [""; 6];
        let mut off = 0;
        for (i, &n) in self.lens.iter().enumerate() {
            let n = n as usize;
            out[i] = std::str::from_utf8(&self.bytes[off..off + n]).unwrap_or("");
            off += n;
        }
        out
    }

    pub(crate) fn event(&self) -> Event<'_> {
        let [tenant, agent, tool, action, resource, chain] = self.fields();
        Event {
            time_ns: self.time_ns,
            latency_ns: self.verdict.latency_ns,
            core: self.verdict.core,
            decision: self.verdict.decision,
            reason: self.verdict.reason,
            classification: self.classification,
            operation: self.operation,
            origin: self.origin,
            tenant,
            agent,
            tool,
            action,
            resource,
            chain,
        }
    }
}

struct Cell(UnsafeCell<Pending>);

/// Counters of the audit path.
#[derive(Default)]
pub(crate) struct AuditCounters {
    pub queued: AtomicU64,
    pub written: AtomicU64,
    pub backpressure: AtomicU64,
    pub write_failures: AtomicU64,
    pub failed_records: AtomicU64,
    pub checkpoints: AtomicU64,
    pub syncs: AtomicU64,
}

pub(crate) struct AuditQueue {
    cells: Box<[Cell]>,
    free: Stack,
    ready: Ring,
    /// 1 while the writer sleeps; a submitter that sees it wakes the writer (futex).
    pub sleeping: AtomicU32,
    pub counters: AuditCounters,
    pub healthy: AtomicBool,
    /// Audit every request, not only those whose verdict requires it.
    pub every_request: bool,
    /// Whether requests wait for their record to be durable.
    pub durable: bool,
    /// Told of each checkpoint once HEAD names it (the fleet publishes it off the node).
    pub on_checkpoint: std::sync::OnceLock<CheckpointSink>,
}

/// Where a durable checkpoint goes: (seq, head, signature). Must not block.
pub type CheckpointSink = Box<dyn Fn(u64, &[u8; 32], &[u8; 64]) + Send + Sync>;

// SAFETY: a cell is written only by the thread that popped its index from `free` and read only
// by the writer after popping it from `ready`; the Treiber stack and the ring publish the index
// with release/acquire, so the write happens-before the read, and the index returns to `free`
// only after the writer is done with the cell.
unsafe impl Sync for AuditQueue {}

impl AuditQueue {
    pub(crate) fn new(capacity: usize, every_request: bool, durable: bool) -> AuditQueue {
        let capacity = capacity.clamp(2, crate::sync::stack::MAX_INDICES);
        AuditQueue {
            cells: (0..capacity)
                .map(|_| {
                    Cell(UnsafeCell::new(Pending {
                        verdict: Verdict::deny(DenyReason::None),
                        time_ns: 0,
                        operation: Operation::Audit,
                        origin: crate::types::ContentOrigin::Prompt,
                        classification: Classification::Unclassified,
                        slot: NO_SLOT,
                        lens: [0; 6],
                        bytes: [0; PENDING_BYTES],
                    }))
                })
                .collect(),
            free: Stack::new_full(0, capacity),
            ready: Ring::new(capacity),
            sleeping: AtomicU32::new(0),
            counters: AuditCounters::default(),
            healthy: AtomicBool::new(true),
            every_request,
            durable,
            on_checkpoint: std::sync::OnceLock::new(),
        }
    }

    /// Whether `v` for an operation `op` must be audited.
    #[inline]
    pub(crate) fn wants(&self, op: Operation, v: &Verdict) -> bool {
        self.every_request || v.obligations.audit_required || op == Operation::Audit
    }

    /// Claims a free cell; `None` (counted as backpressure) when the queue is full.
    #[inline]
    pub(crate) fn reserve(&self) -> Option<u32> {
        let i = self.free.pop();
        if i.is_none() {
            self.counters.backpressure.fetch_add(1, Relaxed);
        }
        i
    }

    /// Fills the reserved cell `i` and hands it to the writer.
    pub(crate) fn push(&self, i: u32, req: &Request<'_>, v: &Verdict, time_ns: u64, slot: u32) {
        // SAFETY: `i` came from `reserve` (the free list), so no other thread touches this cell
        // until we push it to `ready` (see the `Sync` impl).
        let p = unsafe { &mut *self.cells[i as usize].0.get() };
        p.verdict = *v;
        p.time_ns = time_ns;
        p.operation = req.operation;
        p.origin = req.origin;
        p.classification = v.classification.max(req.classification);
        p.slot = slot;
        // the delegation chain the credential presents, if any (decoded here, on the core,
        // only for a credential with links)
        // For an allow it is the chain identity verified; a denial may have come before (or
        // because) it verified, so it is the chain as presented, marked `?`.
        // (the buffer is made only for a credential that may carry links)
        let mut names: [u8; 1 + crate::identity::chain::MAX_CHAIN_NAMES_BYTES];
        let chain = if crate::identity::chain::may_have_links(req.credential) {
            names = [0u8; 1 + crate::identity::chain::MAX_CHAIN_NAMES_BYTES];
            let n = crate::identity::chain::chain_names(req.credential, &mut names[1..]);
            names[0] = b'?';
            let from = (v.decision != crate::types::Decision::Deny) as usize;
            match n {
                0 => "",
                n => std::str::from_utf8(&names[from..1 + n]).unwrap_or(""),
            }
        } else {
            ""
        };
        let fields = [
            req.tenant,
            req.agent,
            req.tool,
            req.action,
            req.resource,
            chain,
        ];
        let mut off = 0;
        for (k, s) in fields.into_iter().enumerate() {
            // Room for this field: what is left, less what the later fields need at least (a
            // truncation mark each). A field that does not fit keeps a prefix and a mark with
            // its full length and digest, never silently a prefix (rare: only past 2 KiB).
            let later: usize = fields[k + 1..]
                .iter()
                .map(|f| f.len().min(MARK_BYTES))
                .sum();
            let room = PENDING_BYTES - off - later;
            if s.len() <= room {
                p.bytes[off..off + s.len()].copy_from_slice(s.as_bytes());
                p.lens[k] = s.len() as u16;
                off += s.len();
                continue;
            }
            let mut n = room - MARK_BYTES;
            while !s.is_char_boundary(n) {
                n -= 1;
            }
            p.bytes[off..off + n].copy_from_slice(&s.as_bytes()[..n]);
            let mark = truncation_mark(s, n, &mut p.bytes[off + n..off + room]);
            p.lens[k] = (n + mark) as u16;
            off += n + mark;
        }
        // The ring holds as many indices as there are cells: this push cannot fail.
        let pushed = self.ready.push(i).is_ok();
        debug_assert!(pushed);
        self.counters.queued.fetch_add(1, Relaxed);
        std::sync::atomic::fence(SeqCst);
        if self.sleeping.load(SeqCst) == 1 {
            self.sleeping.store(0, SeqCst);
            crate::sync::futex::wake(&self.sleeping, 1);
        }
    }

    /// Events waiting for the writer.
    pub(crate) fn depth(&self) -> usize {
        self.ready.len()
    }
}

/// Writer settings, from `AuditConfig`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WriterSettings {
    pub mode: super::AuditMode,
    pub group_records: u64,
    pub group_ns: u64,
    pub async_flush_ns: u64,
    pub checkpoint_records: u64,
    pub checkpoint_ns: u64,
}

/// The writer loop. `complete` answers a reply slot; `done` says when to stop (shutdown and
/// every core gone).
/// Runs the writer and, should it panic, keeps the engine answering: every request still
/// waiting for its record (staged, or queued later) is denied `AuditUnavailable`, so no waiter
/// hangs and shutdown completes.
pub(crate) fn run_guarded(
    q: &AuditQueue,
    log: Log,
    key: crate::audit::Signer,
    s: WriterSettings,
    forward: Option<&super::siem::Forwarder>,
    complete: impl Fn(u32, Verdict),
    done: impl Fn() -> bool,
) {
    let mut acks: Vec<(u32, Verdict)> = Vec::with_capacity(q.cells.len());
    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run(q, log, key, s, forward, &complete, &done, &mut acks)
    }));
    match ran {
        Ok(()) => return,
        Err(payload) => crate::engine::drop_payload(payload),
    }
    eprintln!("warden audit: the writer failed; audited requests are denied (audit_unavailable) from now on");
    q.healthy.store(false, Relaxed);
    let unavailable = Verdict::deny(DenyReason::AuditUnavailable);
    while let Some((slot, _)) = acks.pop() {
        complete(slot, unavailable);
    }
    loop {
        while let Some(i) = q.ready.pop() {
            // SAFETY: as in `run`: the index came from `ready`.
            let slot = unsafe { (*q.cells[i as usize].0.get()).slot };
            q.free.push(i);
            q.counters.failed_records.fetch_add(1, Relaxed);
            if slot != NO_SLOT {
                complete(slot, unavailable);
            }
        }
        if done() && q.ready.is_empty() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
}

#[allow(clippy::too_many_arguments)] // the writer's state, handed over once at start
fn run(
    q: &AuditQueue,
    mut log: Log,
    key: crate::audit::Signer,
    s: WriterSettings,
    forward: Option<&super::siem::Forwarder>,
    complete: &impl Fn(u32, Verdict),
    done: &impl Fn() -> bool,
    acks: &mut Vec<(u32, Verdict)>,
) {
    use super::AuditMode;
    use crate::time::now_ns;
    let mut first_staged_ns = 0u64;
    let mut last_flush_ns = now_ns();
    let mut since_checkpoint = 0u64;
    let mut last_checkpoint_ns = now_ns();
    let mut pending_head: Option<(u64, [u8; 32], [u8; 64])> = None;
    // Records carry wall-clock time: the cores stamp the monotonic clock, shifted here.
    let wall_offset_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
        .saturating_sub(now_ns());
    loop {
        let mut got = 0u64;
        while let Some(i) = q.ready.pop() {
            // SAFETY: the index came from `ready`, so the submitter finished writing the cell;
            // it goes back to `free` below, after the last read.
            let p = unsafe { &*q.cells[i as usize].0.get() };
            if log.staged() == 0 {
                first_staged_ns = now_ns();
            }
            let mut e = p.event();
            e.time_ns = e.time_ns.saturating_add(wall_offset_ns);
            let seq = log.stage_event(&e);
            if let Some(f) = forward {
                // never blocks: a full queue drops the event and counts it
                f.offer(seq, &e);
            }
            if p.slot != NO_SLOT {
                acks.push((p.slot, p.verdict));
            }
            q.free.push(i);
            got += 1;
            since_checkpoint += 1;
            if log.staged_bytes() >= 4 << 20 {
                break;
            }
        }
        let now = now_ns();
        let stopping = done();
        if since_checkpoint > 0
            && (since_checkpoint >= s.checkpoint_records
                || now - last_checkpoint_ns >= s.checkpoint_ns
                || stopping)
        {
            if let Some(head) = log.stage_checkpoint_with(&|m| key.sign(m), now) {
                pending_head = Some(head);
                since_checkpoint = 0;
                q.counters.checkpoints.fetch_add(1, Relaxed);
            }
            last_checkpoint_ns = now;
        }
        let staged = log.staged();
        let due = staged > 0
            && match s.mode {
                AuditMode::Always => true,
                AuditMode::Group => {
                    staged >= s.group_records || now - first_staged_ns >= s.group_ns || stopping
                }
                AuditMode::Async => {
                    log.staged_bytes() >= 64 << 10
                        || now - last_flush_ns >= s.async_flush_ns
                        || stopping
                }
            };
        if due {
            let res = log.flush(s.mode != AuditMode::Async);
            last_flush_ns = now_ns();
            q.counters.syncs.fetch_add(1, Relaxed);
            match res {
                Ok(()) => {
                    q.counters.written.fetch_add(staged, Relaxed);
                    // HEAD names the newest checkpoint: until it does, the records after the
                    // one it names could be cut without a trace, so a failed HEAD write fails
                    // the batch (its requests denied; their records stay in the log, which
                    // then holds more allows than were answered, never fewer) and is retried.
                    let head_ok = match pending_head {
                        Some((seq, head, sig)) => match log.write_head(seq, &head, &sig) {
                            Ok(()) => {
                                pending_head = None;
                                if let Some(f) = q.on_checkpoint.get() {
                                    f(seq, &head, &sig);
                                }
                                true
                            }
                            Err(e) => {
                                eprintln!("warden audit: {e}; the batch's requests are denied (audit_unavailable) until HEAD can be written");
                                false
                            }
                        },
                        None => true,
                    };
                    q.healthy.store(head_ok, Relaxed);
                    if !head_ok {
                        q.counters.write_failures.fetch_add(1, Relaxed);
                    }
                    // pop, not drain: should anything panic, what is left is still listed for
                    // `run_guarded` to deny
                    while let Some((slot, v)) = acks.pop() {
                        complete(
                            slot,
                            if head_ok {
                                v
                            } else {
                                Verdict::deny(DenyReason::AuditUnavailable)
                            },
                        );
                    }
                }
                Err(e) => {
                    eprintln!("warden audit: {e}; {staged} records not written, their requests denied (audit_unavailable)");
                    q.counters.write_failures.fetch_add(1, Relaxed);
                    q.counters.failed_records.fetch_add(staged, Relaxed);
                    q.healthy.store(false, Relaxed);
                    pending_head = None;
                    while let Some((slot, _)) = acks.pop() {
                        complete(slot, Verdict::deny(DenyReason::AuditUnavailable));
                    }
                }
            }
        }
        if stopping && q.ready.is_empty() && log.staged() == 0 {
            let _ = log.flush(true);
            return;
        }
        if got == 0 {
            // Sleep until a submitter rings, or until the group / async deadline.
            let wait_ns = match s.mode {
                AuditMode::Group if log.staged() > 0 => s
                    .group_ns
                    .saturating_sub(now_ns() - first_staged_ns)
                    .max(1_000),
                AuditMode::Async if log.staged() > 0 => s.async_flush_ns,
                _ => 10_000_000,
            };
            q.sleeping.store(1, SeqCst);
            std::sync::atomic::fence(SeqCst);
            if q.ready.is_empty() && !done() {
                crate::sync::futex::wait(
                    &q.sleeping,
                    1,
                    Some(std::time::Duration::from_nanos(wait_ns)),
                );
            }
            q.sleeping.store(0, SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_refuses_and_counts_and_cells_come_back() {
        let q = AuditQueue::new(2, false, true);
        let a = q.reserve().unwrap();
        let b = q.reserve().unwrap();
        assert_ne!(a, b);
        assert_eq!(q.reserve(), None);
        assert_eq!(q.counters.backpressure.load(Relaxed), 1);
        let long = "r".repeat(5000);
        let req = Request::new(Operation::Audit)
            .tenant("t")
            .agent("a")
            .resource(&long);
        q.push(a, &req, &Verdict::deny(DenyReason::None), 1, 7);
        assert_eq!(q.depth(), 1);
        let i = q.ready.pop().unwrap();
        // SAFETY: popped from `ready` in this single-threaded test: the cell is ours.
        let p = unsafe { &*q.cells[i as usize].0.get() };
        let e = p.event();
        assert_eq!((e.tenant, e.agent, p.slot), ("t", "a", 7));
        assert!(e.resource.len() <= PENDING_BYTES - 2);
        let d = blake3::hash(long.as_bytes()).to_hex();
        let (kept, mark) = e
            .resource
            .split_once("...[+")
            .expect("a cut field is marked");
        assert!(long.starts_with(kept), "a prefix of the value is kept");
        assert_eq!(
            mark,
            format!("{} bytes, blake3 {}]", long.len() - kept.len(), &d[..16]),
            "the mark says how much was cut and whose digest it is"
        );
        q.free.push(i);
        assert!(q.reserve().is_some());
    }

    /// Whatever the five fields' lengths (and multi-byte characters at the cut), every field
    /// is kept whole or as a valid UTF-8 prefix with its mark; never silently cut, never a
    /// later field lost to an earlier one.
    #[test]
    fn every_cut_field_is_marked_and_every_field_keeps_its_place() {
        let q = AuditQueue::new(1, true, false);
        let lens = [
            0usize, 1, 51, 52, 53, 400, 2000, 2046, 2047, 2048, 2049, 5000, 70_000,
        ];
        let mut seed = 7u64;
        for round in 0..400 {
            let mut pick = || {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                lens[(seed >> 33) as usize % lens.len()]
            };
            let f: Vec<String> = (0..5)
                .map(|k| {
                    let n = pick();
                    // é is two bytes: cuts land inside characters half the time
                    if (round + k) % 2 == 0 {
                        "x".repeat(n)
                    } else {
                        "é".repeat(n / 2)
                    }
                })
                .collect();
            let req = Request::new(Operation::Audit)
                .tenant(&f[0])
                .agent(&f[1])
                .tool(&f[2])
                .action(&f[3])
                .resource(&f[4]);
            let i = q.reserve().unwrap();
            q.push(i, &req, &Verdict::deny(DenyReason::None), 1, 0);
            let i = q.ready.pop().unwrap();
            // SAFETY: popped from `ready` in this single-threaded test: the cell is ours.
            let p = unsafe { &*q.cells[i as usize].0.get() };
            let e = p.event();
            let got = [e.tenant, e.agent, e.tool, e.action, e.resource];
            assert!(p.lens.iter().map(|&n| n as usize).sum::<usize>() <= PENDING_BYTES);
            for (g, w) in got.iter().zip(&f) {
                if g == w {
                    continue;
                }
                let (kept, mark) = g
                    .split_once("...[+")
                    .unwrap_or_else(|| panic!("{g:?} unmarked"));
                assert!(w.starts_with(kept));
                assert!(mark.starts_with(&format!("{} bytes, blake3 ", w.len() - kept.len())));
            }
            q.free.push(i);
        }
    }

    #[test]
    fn a_queued_event_is_about_2_kib_as_the_config_says() {
        let n = std::mem::size_of::<Cell>();
        assert!((2048..2300).contains(&n), "{n}");
    }

    #[test]
    fn what_is_audited() {
        let q = AuditQueue::new(4, false, true);
        let mut v = Verdict::deny(DenyReason::None);
        assert!(!q.wants(Operation::Check, &v));
        assert!(q.wants(Operation::Audit, &v));
        v.obligations.audit_required = true;
        assert!(q.wants(Operation::Check, &v));
        let all = AuditQueue::new(4, true, false);
        assert!(all.wants(Operation::Check, &Verdict::deny(DenyReason::None)));
    }

    #[test]
    fn a_writer_that_panics_still_answers_every_waiting_request() {
        use std::cell::RefCell;
        let d = tempfile::tempdir().unwrap();
        let q = AuditQueue::new(8, true, true);
        for slot in 1..=3u32 {
            let i = q.reserve().unwrap();
            let req = Request::new(Operation::Audit).tenant("t").agent("a");
            q.push(i, &req, &Verdict::deny(DenyReason::None), 1, slot);
        }
        let answered = RefCell::new(Vec::new());
        let complete = |slot: u32, v: Verdict| {
            let first = answered.borrow().is_empty();
            answered.borrow_mut().push((slot, v.reason));
            assert!(
                !first,
                "the first answer fails: the writer panics mid-batch"
            );
        };
        let settings = WriterSettings {
            mode: crate::audit::AuditMode::Always,
            group_records: 1,
            group_ns: 1,
            async_flush_ns: 1,
            checkpoint_records: 100,
            checkpoint_ns: u64::MAX / 2,
        };
        let sk = ed25519_dalek::SigningKey::from_bytes(&[1; 32]);
        let log = Log::open(d.path(), 1 << 20, &sk).unwrap();
        let key = crate::audit::Signer::Software(sk);
        run_guarded(&q, log, key, settings, None, complete, || true);
        let mut got = answered.into_inner();
        got.sort_by_key(|g| g.0);
        // all three answered exactly once: the one being answered when it panicked, and the two
        // left, denied
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), vec![1, 2, 3]);
        assert_eq!(
            got.iter()
                .filter(|g| g.1 == DenyReason::AuditUnavailable)
                .count(),
            2
        );
    }
}
