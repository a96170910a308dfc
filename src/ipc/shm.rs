//! The shared-memory layout one client and the server both map, and the server's private table
//! of clients. No engine code here: the cores' side (`engine/ipc.rs`) and the accept thread
//! (`ipc/server.rs`) build on it, and the Rust client (`ipc/client.rs`) and the C header
//! (`include/warden.h`) mirror it.
//!
//! ```text
//!  offset 0       header, one page: magic, version, geometry, the home core's CPU; then one
//!                 cache line each for
//!                 the request ring's tail (client writes), its head (server mirrors), the
//!                 home core's sleeping flag (server writes), the client's notify-wanted flag
//!  offset 4096    request ring: `slots` u32 entries, each a slot index (client writes)
//!  then           `slots` slots of SLOT_HEADER_BYTES + slot_bytes, 64-byte aligned:
//!                   +0   state u32: FREE 0, SUBMITTED 1, SLEEPING 2 (a waiter sleeps on the word), DONE 3
//!                   +4   len u32: request bytes in the slot (client writes)
//!                   +64  verdict, VERDICT_BYTES (server writes, before it stores DONE)
//!                   +128 request in the wire format of `request.rs` (client writes)
//! ```
//!
//! Every byte of the mapping is hostile to the server: the client can change any of it at any
//! time. The server therefore reads each word once, through an atomic, and keeps what it relies
//! on in private memory (`Cell`): its own ring head, the set of slots in flight, the geometry.
//! A slot's request is copied out before it is decoded. The memfd is sealed against shrinking
//! and growing before the client sees it, so no page the server maps can vanish under it.
//!
//! Responses go into the request's own slot rather than into a response ring. A response ring
//! written by several cores needs either a producer index in the shared memory (which the client
//! could corrupt) or an ordering among the cores; a slot's verdict and state word need one store
//! each, in any order between cores, and can never be full, so a client that stops reading
//! cannot hold a core up. The request ring stays: it tells the home core which slots to read
//! without a scan.

use crate::types::{Classification, Decision, DenyReason, Obligations, ThreatLevel, Verdict};
use std::sync::atomic::{AtomicI32, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering::*};

pub const MAGIC: u32 = 0x494e_4457; // "WDNI" little-endian
pub const VERSION: u32 = 1;
pub const HEADER_BYTES: usize = 4096;
pub const SLOT_HEADER_BYTES: usize = 128;
pub const VERDICT_OFFSET: usize = 64;
pub const VERDICT_BYTES: usize = 64;

// Header fields (byte offsets).
pub const H_MAGIC: usize = 0;
pub const H_VERSION: usize = 4;
pub const H_SLOTS: usize = 8;
pub const H_SLOT_BYTES: usize = 12;
pub const H_CLIENT: usize = 16;
pub const H_SPIN_NS: usize = 20;
/// The CPU the client's home core is pinned to (`u32::MAX`: not pinned), so a client can keep
/// its own spinning threads off it.
pub const H_HOME_CPU: usize = 24;
pub const H_TAIL: usize = 64;
pub const H_HEAD: usize = 128;
pub const H_CORE_SLEEPING: usize = 192;
pub const H_NOTIFY: usize = 256;

// Slot states.
pub const S_FREE: u32 = 0;
pub const S_SUBMITTED: u32 = 1;
pub const S_SLEEPING: u32 = 2;
pub const S_DONE: u32 = 3;

/// The most slots a client may have (the in-flight set is a fixed bit set of this size).
pub const MAX_SLOTS: usize = 1024;
/// The most clients a server may serve at once.
pub const MAX_CLIENTS: usize = 4096;

/// The geometry of one client's mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    pub slots: u32,
    pub slot_bytes: u32,
}

impl Geometry {
    pub const fn ring_offset(&self) -> usize {
        HEADER_BYTES
    }
    pub const fn slot_stride(&self) -> usize {
        (SLOT_HEADER_BYTES + self.slot_bytes as usize).next_multiple_of(64)
    }
    pub const fn slots_offset(&self) -> usize {
        (HEADER_BYTES + 4 * self.slots as usize).next_multiple_of(4096)
    }
    pub const fn slot_offset(&self, i: u32) -> usize {
        self.slots_offset() + i as usize * self.slot_stride()
    }
    pub const fn total_bytes(&self) -> usize {
        (self.slots_offset() + self.slots as usize * self.slot_stride()).next_multiple_of(4096)
    }
}

/// A shared mapping seen through atomics only. `base` points at `bytes` bytes mapped
/// read-write and shared; the owner keeps the mapping alive while any `Shm` to it is used.
#[derive(Clone, Copy)]
pub struct Shm {
    base: *mut u8,
    bytes: usize,
}

// SAFETY: every access goes through atomics on the mapping, which another process may change
// at any time anyway; the owner of the mapping (the table's cell or the client) keeps it mapped
// while `Shm` values for it are in use (see `Cell` and `client::Conn`).
unsafe impl Send for Shm {}
// SAFETY: as for `Send`.
unsafe impl Sync for Shm {}

impl Shm {
    /// # Safety
    /// `base` must point at `bytes` bytes mapped read-write, 64-byte aligned, that stay mapped
    /// while this value or a copy of it is used.
    pub unsafe fn new(base: *mut u8, bytes: usize) -> Shm {
        Shm { base, bytes }
    }

    pub fn base(&self) -> *mut u8 {
        self.base
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The atomic word of type `T` (`AtomicU32`, `AtomicU64`) at `off`, which must be aligned
    /// to its size and inside the mapping (checked).
    #[inline]
    fn word<T>(&self, off: usize) -> &T {
        let size = std::mem::size_of::<T>();
        assert!(
            off.is_multiple_of(size) && off + size <= self.bytes,
            "offset {off} outside the mapping"
        );
        // SAFETY: in bounds and aligned (checked above; the base is page-aligned); the mapping
        // lives as long as `self` is used (constructor's contract); `T` is an atomic integer
        // type with the layout of the integer, and concurrent access from other processes is
        // what atomics are for.
        unsafe { &*(self.base.add(off) as *const T) }
    }

    /// The 32-bit word at `off` (4-byte aligned, inside the mapping; checked).
    #[inline]
    pub fn u32_at(&self, off: usize) -> &AtomicU32 {
        self.word(off)
    }

    /// The 64-bit word at `off` (8-byte aligned, inside the mapping; checked).
    #[inline]
    pub fn u64_at(&self, off: usize) -> &AtomicU64 {
        self.word(off)
    }

    /// Copies `out.len()` bytes from `off` (8-byte aligned) with relaxed word loads: the bytes
    /// may change during the copy, but what lands in `out` is then private.
    #[inline]
    pub fn copy_out(&self, off: usize, out: &mut [u8]) {
        let n = out.len();
        assert!(off.is_multiple_of(8) && off + n.next_multiple_of(8) <= self.bytes);
        let mut i = 0;
        while i + 8 <= n {
            let w = self.u64_at(off + i).load(Relaxed);
            out[i..i + 8].copy_from_slice(&w.to_le_bytes());
            i += 8;
        }
        if i < n {
            let w = self.u64_at(off + i).load(Relaxed).to_le_bytes();
            out[i..].copy_from_slice(&w[..n - i]);
        }
    }

    /// Copies `src` to `off` (8-byte aligned) with relaxed word stores.
    #[inline]
    pub fn copy_in(&self, off: usize, src: &[u8]) {
        let n = src.len();
        assert!(off.is_multiple_of(8) && off + n.next_multiple_of(8) <= self.bytes);
        let mut i = 0;
        while i < n {
            let mut w = [0u8; 8];
            let k = (n - i).min(8);
            w[..k].copy_from_slice(&src[i..i + k]);
            self.u64_at(off + i).store(u64::from_le_bytes(w), Relaxed);
            i += 8;
        }
    }
}

/// Adds `fd` to the epoll set `epfd` (readable, level-triggered), the event carrying `data`.
pub fn epoll_add(epfd: i32, fd: i32, data: u64) -> std::io::Result<()> {
    let mut ev = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: data,
    };
    // SAFETY: `ev` is a live local; the kernel copies it.
    if unsafe { libc::epoll_ctl(epfd, libc::EPOLL_CTL_ADD, fd, &mut ev) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Sends one byte on a socket without ever blocking (a full buffer drops it: a wake-up is then
/// pending anyway) and without SIGPIPE.
pub fn poke(fd: i32) {
    if fd >= 0 {
        let b = [1u8];
        // SAFETY: sends one byte from a live buffer; MSG_DONTWAIT makes this call non-blocking
        // whatever the descriptor's flags.
        unsafe {
            libc::send(
                fd,
                b.as_ptr().cast(),
                1,
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        };
    }
}

/// Reads what is waiting on a socket (up to 256 bytes), never blocking. False when the other
/// end has shut down or the socket failed: readable for ever, it must leave the epoll set.
pub fn drain(fd: i32) -> bool {
    let mut b = [0u8; 256];
    // SAFETY: receives into a live local buffer of the size given; MSG_DONTWAIT makes this call
    // non-blocking whatever the descriptor's flags.
    let n = unsafe { libc::recv(fd, b.as_mut_ptr().cast(), b.len(), libc::MSG_DONTWAIT) };
    n > 0
        || (n < 0
            && matches!(
                std::io::Error::last_os_error().raw_os_error(),
                Some(libc::EAGAIN | libc::EINTR)
            ))
}

/// The verdict as the mapping carries it (little-endian, `include/warden.h` `warden_verdict`):
/// decision u8, threat level u8, classification u8, cache hit u8, reason code u16, reason
/// argument u16, indicators u32, rule u32, latency ns u32, core u16, audit required u8, trust u8,
/// memory bytes u64, file bytes u64, cpu time ms u32, operations u32, redactions u32, pad to 64.
pub fn encode_verdict(v: &Verdict) -> [u8; VERDICT_BYTES] {
    let mut b = [0u8; VERDICT_BYTES];
    b[0] = v.decision as u8;
    b[1] = v.threat_level as u8;
    b[2] = v.classification as u8;
    b[3] = v.cache_hit as u8;
    b[4..6].copy_from_slice(&v.reason.code().to_le_bytes());
    b[6..8].copy_from_slice(&v.reason.arg().to_le_bytes());
    b[8..12].copy_from_slice(&v.indicators.to_le_bytes());
    b[12..16].copy_from_slice(&v.rule.to_le_bytes());
    b[16..20].copy_from_slice(&v.latency_ns.to_le_bytes());
    b[20..22].copy_from_slice(&v.core.to_le_bytes());
    b[22] = v.obligations.audit_required as u8;
    b[23] = v.trust_pct;
    b[24..32].copy_from_slice(&v.obligations.memory_bytes.to_le_bytes());
    b[32..40].copy_from_slice(&v.obligations.file_bytes.to_le_bytes());
    b[40..44].copy_from_slice(&v.obligations.cpu_time_ms.to_le_bytes());
    b[44..48].copy_from_slice(&v.obligations.operations.to_le_bytes());
    b[48..52].copy_from_slice(&v.obligations.redactions.to_le_bytes());
    b
}

/// The verdict back from its bytes; `None` when a code is unknown (a client treats that as a
/// deny).
pub fn decode_verdict(b: &[u8; VERDICT_BYTES]) -> Option<Verdict> {
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]);
    let u32_at = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
    let u64_at = |o: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[o..o + 8]);
        u64::from_le_bytes(w)
    };
    let decision = match b[0] {
        0 => Decision::Allow,
        1 => Decision::Deny,
        2 => Decision::AllowWith,
        _ => return None,
    };
    let reason = DenyReason::from_code(u16_at(4), u16_at(6))?;
    if (decision == Decision::Deny) == (reason == DenyReason::None) {
        return None;
    }
    Some(Verdict {
        decision,
        reason,
        obligations: Obligations {
            memory_bytes: u64_at(24),
            cpu_time_ms: u32_at(40),
            file_bytes: u64_at(32),
            operations: u32_at(44),
            redactions: u32_at(48),
            audit_required: b[22] != 0,
        },
        cache_hit: b[3] != 0,
        threat_level: ThreatLevel::from_code(b[1])?,
        indicators: u32_at(8),
        classification: Classification::from_code(b[2])?,
        rule: u32_at(12),
        latency_ns: u32_at(16),
        core: u16_at(20),
        trust_pct: b[23],
    })
}

// Cell states (server-private).
pub const C_EMPTY: u32 = 0;
pub const C_LIVE: u32 = 1;
/// Being closed: the home core takes nothing more from the ring; verdicts of requests in
/// flight are still delivered; the accept thread unmaps once none is left.
pub const C_CLOSING: u32 = 2;

/// Why a client was disconnected (`Cell::fault`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Fault {
    None = 0,
    /// The ring's tail ran more than a ring's length ahead of the server's head.
    RingOverrun = 1,
    /// A ring entry named no slot of this client.
    BadSlotIndex = 2,
    /// A slot was submitted again while its request was in flight.
    SlotInFlight = 3,
    /// The socket closed (the client exited or closed it).
    Hangup = 4,
    /// The server is shutting down.
    Shutdown = 5,
    /// The client shut its end of the wake-up channel down (it would wake its core forever).
    WakeClosed = 6,
}

impl Fault {
    pub fn from_code(c: u32) -> Fault {
        match c {
            1 => Fault::RingOverrun,
            2 => Fault::BadSlotIndex,
            3 => Fault::SlotInFlight,
            4 => Fault::Hangup,
            5 => Fault::Shutdown,
            6 => Fault::WakeClosed,
            _ => Fault::None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Fault::None => "none",
            Fault::RingOverrun => "ring_overrun",
            Fault::BadSlotIndex => "bad_slot_index",
            Fault::SlotInFlight => "slot_in_flight",
            Fault::Hangup => "hangup",
            Fault::Shutdown => "shutdown",
            Fault::WakeClosed => "wake_channel_closed",
        }
    }
}

/// Per-client counters, read by the metrics endpoint.
#[derive(Default)]
pub struct ClientCounters {
    pub requests: AtomicU64,
    pub verdicts: AtomicU64,
    pub denied: AtomicU64,
    pub malformed: AtomicU64,
    pub tenant_refused: AtomicU64,
    pub wakeups_sent: AtomicU64,
}

impl ClientCounters {
    /// Zero, for a cell's next client (a counter series starts at its own zero).
    pub fn reset(&self) {
        for c in [
            &self.requests,
            &self.verdicts,
            &self.denied,
            &self.malformed,
            &self.tenant_refused,
            &self.wakeups_sent,
        ] {
            c.store(0, Relaxed);
        }
    }
}

/// The server's private state of one client. Everything the server relies on lives here, not
/// in the client's mapping.
pub struct Cell {
    pub state: AtomicU32,
    /// Bumped every time the cell is reused, and carried in each request's tag, so a verdict
    /// can never land in a later client's memory.
    pub generation: AtomicU32,
    pub home: AtomicU32,
    pub base: AtomicPtr<u8>,
    pub bytes: AtomicUsize,
    pub slots: AtomicU32,
    pub slot_bytes: AtomicU32,
    /// The ring's head as the server counts it (the home core's; mirrored into the header).
    pub head: AtomicU32,
    /// Slots whose request is in flight, one bit each.
    pub inflight: [AtomicU64; MAX_SLOTS / 64],
    pub pending: AtomicU32,
    /// Verdict deliveries under way (the mapping must stay while any is).
    pub active: AtomicU32,
    /// Set by the home core once it has seen CLOSING and will read the ring no more.
    pub home_stopped: AtomicU32,
    pub fault: AtomicU32,
    /// The server's end of the client's wake-up socket pair, or -1: the client sends a byte to
    /// ring the home core (whose epoll watches this end), the server sends one to notify the
    /// client when it asks for it. A socket end is the server's own file description, so
    /// nothing the client does to its end (flags, a full buffer) can make the server block
    /// (eventfds were shared descriptions: a client could clear O_NONBLOCK on them).
    pub wake_fd: AtomicI32,
    pub uid: AtomicU32,
    pub pid: AtomicU32,
    /// Index into `Table::tenant_sets` (+1), 0: every tenant.
    pub tenants: AtomicU32,
    pub counters: ClientCounters,
}

impl Default for Cell {
    fn default() -> Self {
        Cell {
            state: AtomicU32::new(C_EMPTY),
            generation: AtomicU32::new(0),
            home: AtomicU32::new(0),
            base: AtomicPtr::new(std::ptr::null_mut()),
            bytes: AtomicUsize::new(0),
            slots: AtomicU32::new(0),
            slot_bytes: AtomicU32::new(0),
            head: AtomicU32::new(0),
            inflight: std::array::from_fn(|_| AtomicU64::new(0)),
            pending: AtomicU32::new(0),
            active: AtomicU32::new(0),
            home_stopped: AtomicU32::new(0),
            fault: AtomicU32::new(0),
            wake_fd: AtomicI32::new(-1),
            uid: AtomicU32::new(0),
            pid: AtomicU32::new(0),
            tenants: AtomicU32::new(0),
            counters: ClientCounters::default(),
        }
    }
}

impl Cell {
    /// The client's mapping. Valid while the cell is LIVE or CLOSING with deliveries pending.
    pub fn shm(&self) -> Shm {
        // SAFETY: the accept thread maps the memfd before it publishes LIVE (release; callers
        // load the state with acquire first) and unmaps only after the cell is CLOSING, the
        // home core has stopped, and no request is pending nor any delivery active.
        unsafe { Shm::new(self.base.load(Acquire), self.bytes.load(Acquire)) }
    }

    pub fn geometry(&self) -> Geometry {
        Geometry {
            slots: self.slots.load(Relaxed),
            slot_bytes: self.slot_bytes.load(Relaxed),
        }
    }

    /// Takes up to `budget` requests off the client's ring, in order: for each, marks its slot
    /// in flight, copies its bytes into `scratch` and hands `f` the slot and the decoded
    /// request (or why it does not decode). A ring that breaks the protocol (a tail more than
    /// a ring ahead, an index outside the slots, a slot already in flight) closes the cell.
    /// Returns how many entries it took. Every slot handed to `f` is pending until its verdict
    /// is delivered.
    pub fn take_requests(
        &self,
        scratch: &mut [u8],
        budget: usize,
        mut f: impl FnMut(u32, Result<crate::request::Request<'_>, DenyReason>),
    ) -> usize {
        let m = self.shm();
        let g = self.geometry();
        let head = self.head.load(Relaxed);
        let tail = m.u32_at(H_TAIL).load(Acquire);
        let queued = tail.wrapping_sub(head);
        if queued == 0 {
            return 0;
        }
        if queued > g.slots {
            self.close(Fault::RingOverrun);
            return 0;
        }
        let take = (queued as usize).min(budget);
        let mut head = head;
        let mut taken = 0;
        for _ in 0..take {
            let entry = m
                .u32_at(g.ring_offset() + 4 * (head & (g.slots - 1)) as usize)
                .load(Relaxed);
            head = head.wrapping_add(1);
            if entry >= g.slots {
                self.close(Fault::BadSlotIndex);
                break;
            }
            let word = &self.inflight[entry as usize / 64];
            let bit = 1u64 << (entry % 64);
            if word.fetch_or(bit, AcqRel) & bit != 0 {
                self.close(Fault::SlotInFlight);
                break;
            }
            self.pending.fetch_add(1, AcqRel);
            self.counters.requests.fetch_add(1, Relaxed);
            taken += 1;
            let off = g.slot_offset(entry);
            // Read once: the client may change it after this load.
            let len = m.u32_at(off + 4).load(Relaxed) as usize;
            if len > g.slot_bytes as usize || len > scratch.len() {
                f(entry, Err(DenyReason::ContentTooLarge));
                continue;
            }
            let buf = &mut scratch[..len];
            m.copy_out(off + SLOT_HEADER_BYTES, buf);
            f(entry, crate::request::Request::decode(buf));
        }
        self.head.store(head, Relaxed);
        m.u32_at(H_HEAD).store(head, Release);
        taken
    }

    /// A live cell over memory of this process (`mem`, at least `g.total_bytes()`), for the
    /// reader's tests and fuzz target. The cell must not outlive `mem`.
    #[doc(hidden)]
    pub fn over(mem: &mut [u64], g: Geometry) -> Cell {
        assert!(mem.len() * 8 >= g.total_bytes());
        let cell = Cell::default();
        cell.base.store(mem.as_mut_ptr().cast(), Release);
        cell.bytes.store(g.total_bytes(), Release);
        cell.slots.store(g.slots, Relaxed);
        cell.slot_bytes.store(g.slot_bytes, Relaxed);
        cell.state.store(C_LIVE, Release);
        cell
    }

    /// Marks the cell closing with `fault` (the first fault wins). Returns whether it was live.
    pub fn close(&self, fault: Fault) -> bool {
        if self
            .state
            .compare_exchange(C_LIVE, C_CLOSING, AcqRel, Acquire)
            .is_ok()
        {
            self.fault.store(fault as u32, Release);
            true
        } else {
            false
        }
    }
}

/// The server's own counters (the metrics endpoint reads them).
#[derive(Default)]
pub struct ServerCounters {
    pub accepted: AtomicUsize,
    pub refused: AtomicUsize,
    pub reloads: AtomicUsize,
    pub reload_failures: AtomicUsize,
    /// Clients that left, by `Fault` code.
    pub disconnects: [AtomicUsize; 7],
}

/// The server's clients: a fixed table built at start, plus the per-core wake-up descriptors.
pub struct Table {
    pub counters: ServerCounters,
    pub cells: Box<[Cell]>,
    /// Tenant sets for restricted uids (from `serve.tenants`), immutable after start.
    pub tenant_sets: Vec<Vec<String>>,
    /// While set, requests taken off a ring are answered `shutting_down` (the server drains).
    pub draining: std::sync::atomic::AtomicBool,
}

impl Table {
    pub fn new(clients: usize, tenant_sets: Vec<Vec<String>>) -> Table {
        Table {
            counters: ServerCounters::default(),
            cells: (0..clients).map(|_| Cell::default()).collect(),
            tenant_sets,
            draining: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Whether the client in `cell` may ask for `tenant`.
    pub fn tenant_allowed(&self, cell: &Cell, tenant: &str) -> bool {
        match cell.tenants.load(Relaxed) {
            0 => true,
            k => self
                .tenant_sets
                .get(k as usize - 1)
                .is_some_and(|set| set.iter().any(|t| t == tenant)),
        }
    }
}

/// A request's tag in its engine slot: bit 63 marks a shared-memory request; then the cell
/// (bits 40..56), the cell's generation (bits 16..40, low 24 bits) and the client's slot
/// (bits 0..16).
pub const TAG_IPC: u64 = 1 << 63;

pub fn tag(cell: usize, generation: u32, slot: u32) -> u64 {
    TAG_IPC
        | (cell as u64 & 0xffff) << 40
        | (generation as u64 & 0xff_ffff) << 16
        | slot as u64 & 0xffff
}

pub fn untag(t: u64) -> (usize, u32, u32) {
    (
        ((t >> 40) & 0xffff) as usize,
        ((t >> 16) & 0xff_ffff) as u32,
        (t & 0xffff) as u32,
    )
}

/// The server's ring and slot reader against a hostile client (the fuzz target `ipc_ring` and
/// a property test): `data` is both the client's memory at each round and a script of the
/// verdicts delivered between rounds. Checks that the reader never panics, never hands out a
/// slot outside the client's slots nor one already in flight, counts exactly what it hands
/// out as pending, and closes the cell only for a protocol fault.
#[doc(hidden)]
pub fn fuzz_ring(data: &[u8]) {
    let g = Geometry {
        slots: 8,
        slot_bytes: 256,
    };
    let mut mem = vec![0u64; g.total_bytes() / 8];
    let cell = Cell::over(&mut mem, g);
    let m = cell.shm();
    let mut in_flight = [false; 8];
    let mut scratch = vec![0u8; 256];
    for (round, chunk) in data.chunks(64).enumerate().take(64) {
        // The client writes: a few words anywhere past the header, the tail, a request.
        for w in chunk.chunks(8) {
            if w.len() == 8 {
                let v = u64::from_le_bytes(w.try_into().expect("8 bytes"));
                let off = (v as usize >> 32) % (g.total_bytes() / 4) * 4;
                if off >= HEADER_BYTES || off == H_TAIL {
                    m.u32_at(off).store(v as u32, Relaxed);
                }
            }
        }
        if let Some(&k) = chunk.first() {
            let r = crate::request::Request::new(crate::types::Operation::Check)
                .tenant("acme")
                .agent("a")
                .resource("/x");
            let mut b = [0u8; 128];
            if let Ok(n) = r.encode(&mut b) {
                let slot = u32::from(k) % g.slots;
                m.copy_in(g.slot_offset(slot) + SLOT_HEADER_BYTES, &b[..n]);
                if k & 0x80 == 0 {
                    m.u32_at(g.slot_offset(slot) + 4).store(n as u32, Relaxed);
                }
            }
        }
        let before = cell.pending.load(Relaxed);
        let mut handed = 0;
        cell.take_requests(&mut scratch, 1 + round % 9, |entry, _req| {
            assert!(entry < g.slots, "slot {entry} outside the client's");
            assert!(!in_flight[entry as usize], "slot {entry} handed out twice");
            in_flight[entry as usize] = true;
            handed += 1;
        });
        assert_eq!(cell.pending.load(Relaxed), before + handed);
        if cell.state.load(Acquire) != C_LIVE {
            let f = Fault::from_code(cell.fault.load(Acquire));
            assert!(matches!(
                f,
                Fault::RingOverrun | Fault::BadSlotIndex | Fault::SlotInFlight
            ));
            return;
        }
        // Deliver some verdicts (what `engine::ipc::deliver` does to the server's state).
        for (i, f) in in_flight.iter_mut().enumerate() {
            if *f && chunk.get(1).is_some_and(|b| b >> (i % 8) & 1 == 1) {
                *f = false;
                cell.inflight[i / 64].fetch_and(!(1u64 << (i % 64)), AcqRel);
                cell.pending.fetch_sub(1, AcqRel);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verdict_survives_its_bytes_and_unknown_codes_are_refused() {
        let v = Verdict {
            decision: Decision::AllowWith,
            reason: DenyReason::None,
            obligations: Obligations {
                memory_bytes: 1 << 40,
                cpu_time_ms: 7,
                file_bytes: 99,
                operations: 3,
                redactions: 0b101,
                audit_required: true,
            },
            cache_hit: true,
            threat_level: ThreatLevel::Medium,
            indicators: 0xdead,
            classification: Classification::Secret,
            rule: 12,
            latency_ns: 345,
            core: 1,
            trust_pct: 42,
        };
        assert_eq!(decode_verdict(&encode_verdict(&v)), Some(v));
        let d = Verdict::deny(DenyReason::LowTrust(29));
        assert_eq!(decode_verdict(&encode_verdict(&d)), Some(d));
        let d = Verdict::deny(DenyReason::TenantNotPermitted);
        assert_eq!(decode_verdict(&encode_verdict(&d)), Some(d));
        let mut b = encode_verdict(&d);
        b[4] = 200;
        assert_eq!(decode_verdict(&b), None);
        let mut b = encode_verdict(&d);
        b[0] = 0; // allow with a reason
        assert_eq!(decode_verdict(&b), None);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
        #[test]
        fn the_ring_reader_holds_its_invariants_on_any_bytes(
            data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..4096)
        ) {
            fuzz_ring(&data);
        }
    }

    /// An honest client: every request handed out once, in order, decoded; then a slot
    /// submitted again while in flight closes the cell.
    #[test]
    fn an_honest_ring_hands_out_each_request_once_and_a_double_submission_closes() {
        let g = Geometry {
            slots: 8,
            slot_bytes: 256,
        };
        let mut mem = vec![0u64; g.total_bytes() / 8];
        let cell = Cell::over(&mut mem, g);
        let m = cell.shm();
        let r = crate::request::Request::new(crate::types::Operation::Check)
            .tenant("acme")
            .agent("a")
            .resource("/x");
        let mut b = [0u8; 128];
        let n = r.encode(&mut b).unwrap();
        for (i, slot) in [3u32, 5, 0].iter().enumerate() {
            m.copy_in(g.slot_offset(*slot) + SLOT_HEADER_BYTES, &b[..n]);
            m.u32_at(g.slot_offset(*slot) + 4).store(n as u32, Relaxed);
            m.u32_at(g.ring_offset() + 4 * i).store(*slot, Relaxed);
        }
        m.u32_at(H_TAIL).store(3, Release);
        let mut seen = Vec::new();
        let mut scratch = vec![0u8; 256];
        assert_eq!(
            cell.take_requests(&mut scratch, 16, |e, req| {
                assert_eq!(req.unwrap(), r);
                seen.push(e);
            }),
            3
        );
        assert_eq!(seen, [3, 5, 0]);
        assert_eq!(cell.pending.load(Relaxed), 3);
        assert_eq!(m.u32_at(H_HEAD).load(Relaxed), 3);
        m.u32_at(g.ring_offset() + 12).store(5, Relaxed);
        m.u32_at(H_TAIL).store(4, Release);
        cell.take_requests(&mut scratch, 16, |_, _| panic!("slot 5 is in flight"));
        assert_eq!(cell.state.load(Relaxed), C_CLOSING);
        assert_eq!(
            Fault::from_code(cell.fault.load(Relaxed)),
            Fault::SlotInFlight
        );
    }

    #[test]
    fn tags_round_trip() {
        let t = tag(4095, 0xab_cdef, 1023);
        assert_eq!(untag(t), (4095, 0xab_cdef, 1023));
        assert!(t & TAG_IPC != 0);
    }

    #[test]
    fn geometry_is_page_and_line_aligned() {
        let g = Geometry {
            slots: 64,
            slot_bytes: 16384,
        };
        assert_eq!(g.slots_offset() % 4096, 0);
        assert_eq!(g.slot_stride() % 64, 0);
        assert!(g.slot_offset(63) + g.slot_stride() <= g.total_bytes());
    }
}
