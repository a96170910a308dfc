//! What handles, cores, the HSM core and the audit writer share: the cores' rings, doorbells
//! and metrics, the slot pool, the pipeline, the epoch, the quarantine table, the queues to the
//! audit writer and the HSM core. Built once; immutable after build except its atomics.

use super::pipeline::Pipeline;
use super::slot::SlotPool;
use crate::config::Config;
use crate::metrics::{CoreMetrics, SubmitMetrics};
use crate::request::Limits;
use crate::sync::futex;
use crate::sync::ring::Ring;
use crate::types::Priority;
use crossbeam_utils::CachePadded;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, AtomicUsize, Ordering::*};
use std::time::Instant;

/// State of one core that other threads may touch: its rings, doorbell and metrics.
pub(crate) struct CoreShared {
    pub rings: [Ring; Priority::COUNT],
    /// Requests handed back by the HSM core (sized for every slot, so never full).
    pub resume: Ring,
    /// 1 while the core sleeps on the futex, 2 while it sleeps in `epoll_wait` (it serves
    /// shared-memory clients); submitters that see it swap it to 0 and wake it the same way.
    pub sleeping: CachePadded<AtomicU32>,
    /// The core's eventfd and epoll set while it serves shared-memory clients (-1 before).
    pub wake_fd: AtomicI32,
    pub epoll_fd: AtomicI32,
    pub metrics: CoreMetrics,
    pub cpu: Option<usize>,
}

/// Everything shared between handles and cores. Immutable after build except atomics.
pub(crate) struct Shared {
    pub cores: Box<[CoreShared]>,
    /// Overflow injectors for `Critical`, `High`, `Medium`.
    pub overflow: [Ring; 3],
    pub pool: SlotPool,
    pub pipeline: Pipeline,
    pub limits: Limits,
    pub epoch: CachePadded<AtomicU64>,
    pub shutdown: AtomicBool,
    pub running: AtomicUsize,
    pub running_futex: AtomicU32,
    /// The cores' threads' nice value as the kernel reports it once they run (the process's,
    /// or `engine.nice`): callers ranked below it never run a core's state (`baton.rs`).
    pub cores_nice: AtomicI32,
    pub submit: SubmitMetrics,
    pub aging_ns: [u64; Priority::COUNT],
    pub spin_before_park_ns: u64,
    pub wait_spin_ns: u64,
    pub timeout_ns: u64,
    pub started: Instant,
    pub config: Config,
    /// The keyed hashes of cache keys, tenant tags and (tenant, agent) (`keyed.rs`).
    pub keyed: std::sync::Arc<crate::keyed::KeyedHash>,
    /// Trust scores (`[trust]`), shared with the policy stage; `None` when off.
    pub trust: Option<std::sync::Arc<crate::trust::Trust>>,
    /// Agents quarantined after a behaviour anomaly, checked by every core before the cache.
    pub quarantine: std::sync::Arc<crate::anomaly::Quarantine>,
    pub quarantine_ns: u64,
    /// The queue to the audit writer (`None`: no audit log).
    pub audit: Option<crate::audit::writer::AuditQueue>,
    pub audit_done: AtomicBool,
    /// 1 once the writer has flushed and stopped (futex word for `shutdown`).
    pub audit_exited: AtomicU32,
    /// The keys: software keystore, or a token behind the HSM core.
    pub keys: crate::hsm::Keys,
    /// The HSM core's queue (`None`: software keystore).
    pub hsm: Option<crate::hsm::service::HsmClient>,
    /// The shared-memory clients, once `warden serve` attached them (`Engine::attach_ipc`).
    pub ipc: std::sync::OnceLock<std::sync::Arc<crate::ipc::shm::Table>>,
    /// The SIEM forwarder's counters (`None`: no forwarding).
    pub siem: Option<std::sync::Arc<crate::audit::siem::SiemCounters>>,
    /// Whether this node's view of the fleet is fresh (always open without `[fleet]`).
    pub fleet: std::sync::Arc<crate::fleet::Gate>,
    /// Where this node's revocations and quarantines go to the fleet, once its thread runs.
    pub fleet_out: std::sync::OnceLock<crate::fleet::Outbox>,
}

impl Shared {
    /// Whether core `c` has requests queued: on its resume ring, its rings, or an overflow
    /// injector (what its `step` takes).
    pub(crate) fn has_queued(&self, c: usize) -> bool {
        let me = &self.cores[c];
        !me.resume.is_empty()
            || me.rings.iter().any(|r| !r.is_empty())
            || self.overflow.iter().any(|r| !r.is_empty())
    }
}

#[inline]
pub(crate) fn wake(core: &CoreShared) {
    if core.sleeping.load(Relaxed) != 0 {
        match core.sleeping.swap(0, AcqRel) {
            1 => futex::wake(&core.sleeping, 1),
            2 => ring_eventfd(core.wake_fd.load(Relaxed)),
            _ => {}
        }
    }
}

/// Adds one to an eventfd (a wake-up); a full counter or a closed fd is harmless here.
pub(crate) fn ring_eventfd(fd: i32) {
    if fd >= 0 {
        let one = 1u64.to_ne_bytes();
        // SAFETY: writes 8 bytes from a live local buffer to a descriptor; no memory is shared.
        unsafe { libc::write(fd, one.as_ptr().cast(), 8) };
    }
}
