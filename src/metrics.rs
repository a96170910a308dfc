//! Metrics: per-core single-writer counters and latency histograms, merged on read.
//!
//! Invariants: the owning core is the only writer of its `CoreMetrics` (plain load + store, no
//! read-modify-write, no shared cache line with other cores); readers never block writers; a
//! read (`Engine::metrics`) is control plane and may allocate. Latencies are recorded in a
//! log-linear histogram of atomics (64 sub-buckets per power of two, about 1.6 % resolution)
//! and merged across cores into an `hdrhistogram::Histogram` when read.

use crate::types::Priority;
use crossbeam_utils::CachePadded;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// A counter with one writer. `add` is a load and a store, not a locked RMW.
#[derive(Default)]
pub(crate) struct LocalCounter(AtomicU64);

impl LocalCounter {
    #[inline]
    pub(crate) fn add(&self, n: u64) {
        self.0.store(self.0.load(Relaxed).wrapping_add(n), Relaxed);
    }
    #[inline]
    pub(crate) fn set(&self, v: u64) {
        self.0.store(v, Relaxed);
    }
    pub(crate) fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

const SUB_BITS: u32 = 6;
const SUB: usize = 1 << SUB_BITS;
const MAX_EXP: u32 = 40; // values clamp at 2^40 ns (about 18 minutes)
const BUCKETS: usize = (MAX_EXP - SUB_BITS + 2) as usize * SUB;

/// Log-linear histogram of nanosecond values, single writer.
pub(crate) struct AtomicHistogram {
    buckets: Box<[AtomicU64]>,
    sum: LocalCounter,
    max: LocalCounter,
}

impl Default for AtomicHistogram {
    fn default() -> Self {
        AtomicHistogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            sum: LocalCounter::default(),
            max: LocalCounter::default(),
        }
    }
}

#[inline]
fn bucket_of(v: u64) -> usize {
    let v = v.min((1u64 << MAX_EXP) - 1);
    if v < SUB as u64 {
        return v as usize;
    }
    let e = 63 - v.leading_zeros(); // >= SUB_BITS
    let sub = (v >> (e - SUB_BITS)) as usize - SUB;
    (e - SUB_BITS + 1) as usize * SUB + sub
}

/// The lowest value of bucket `i`.
fn bucket_low(i: usize) -> u64 {
    if i < SUB {
        return i as u64;
    }
    let e = (i / SUB) as u32 + SUB_BITS - 1;
    let sub = (i % SUB) as u64;
    (SUB as u64 + sub) << (e - SUB_BITS)
}

impl AtomicHistogram {
    #[inline]
    pub(crate) fn record(&self, v: u64) {
        let b = &self.buckets[bucket_of(v)];
        b.store(b.load(Relaxed) + 1, Relaxed);
        self.sum.add(v);
        if v > self.max.get() {
            self.max.set(v);
        }
    }
    pub(crate) fn merge_into(&self, h: &mut hdrhistogram::Histogram<u64>) {
        for (i, b) in self.buckets.iter().enumerate() {
            let n = b.load(Relaxed);
            if n > 0 {
                let lo = bucket_low(i);
                let hi = bucket_low(i + 1).max(lo + 1);
                let _ = h.record_n((lo + (hi - 1)) / 2, n);
            }
        }
    }
}

/// Per-core metrics, written only by that core.
#[derive(Default)]
pub(crate) struct CoreMetrics {
    pub processed: LocalCounter,
    pub cache_hits: LocalCounter,
    pub cache_misses: LocalCounter,
    pub allows: LocalCounter,
    pub allow_with: LocalCounter,
    pub denies: LocalCounter,
    pub stage_panics: LocalCounter,
    pub integrity_failures: LocalCounter,
    pub epoch_misses: LocalCounter,
    pub expired: LocalCounter,
    pub evictions: LocalCounter,
    pub steals: LocalCounter,
    pub aged: LocalCounter,
    pub cache_entries: LocalCounter,
    pub parks: LocalCounter,
    /// Requests served by a caller while the core slept (caller-runs).
    pub caller_served: LocalCounter,
    /// Idle spins cut short because the scheduler took the CPU away mid-spin.
    pub preempted_spins: LocalCounter,
    pub quarantine_denials: LocalCounter,
    pub latency: AtomicHistogram,
}

/// Counters written by submitting threads (shared; touched only on the overload path).
#[derive(Default)]
pub(crate) struct SubmitMetrics {
    pub shed: [CachePadded<AtomicU64>; Priority::COUNT],
    pub overflowed: [CachePadded<AtomicU64>; Priority::COUNT],
    pub timeouts: CachePadded<AtomicU64>,
}

/// Audit log counters.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq)]
pub struct AuditMetrics {
    /// Events waiting for the writer.
    pub queue_depth: usize,
    pub queued: u64,
    /// Records written (durable in the durable modes).
    pub written: u64,
    /// Requests denied `audit_backpressure` because the queue was full.
    pub backpressure: u64,
    pub write_failures: u64,
    /// Records of failed writes (their requests were denied `audit_unavailable`).
    pub failed_records: u64,
    pub checkpoints: u64,
    /// Write (and, in the durable modes, sync) calls.
    pub syncs: u64,
    /// False after a failed write, until a write succeeds.
    pub healthy: bool,
    /// Events the SIEM forwarder sent, dropped for a full queue, or failed to send (zero
    /// without `siem.syslog`).
    pub siem_sent: u64,
    pub siem_dropped: u64,
    pub siem_errors: u64,
}

/// The fleet's counters, in `Metrics`.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct FleetMetrics {
    /// Milliseconds since this node last proved it was in step (`u64::MAX`: never).
    pub state_age_ms: u64,
    /// Whether the view is fresh now (requests are served on it).
    pub fresh: bool,
    pub updates_applied: u64,
    /// Entries that failed their checks (not applied).
    pub updates_rejected: u64,
    pub published: u64,
    pub publish_failures: u64,
    /// Audit checkpoints stored off the node, in the fleet's checkpoint stream.
    pub checkpoints_published: u64,
    /// Writes that failed and were tried again.
    pub publish_retries: u64,
    pub reconnects: u64,
    /// The fleet policy's version in force (0: none received).
    pub policy_version: u64,
    /// Policy versions that did not compile here (the previous one was kept).
    pub policy_rejected: u64,
    /// Requests served while stale.
    pub stale_requests: u64,
}

/// Latency summary in nanoseconds.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq)]
pub struct Latency {
    pub count: u64,
    pub avg_ns: f64,
    pub p50_ns: u64,
    pub p95_ns: u64,
    pub p99_ns: u64,
    pub p999_ns: u64,
    pub max_ns: u64,
}

/// One core's view.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CoreSnapshot {
    pub core: usize,
    pub cpu: Option<usize>,
    pub validations: u64,
    pub cache_hits: u64,
    pub steals: u64,
    pub cache_entries: u64,
    /// Requests waiting in this core's rings, by priority (critical first).
    pub queue_depth: [usize; Priority::COUNT],
    pub latency: Latency,
}

/// A merged snapshot of every core, `Engine::metrics()`. Serializes to JSON; `prometheus()`
/// renders the text exposition format.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Metrics {
    pub cores: usize,
    pub uptime_s: f64,
    pub validations: u64,
    /// Validations per second since start.
    pub throughput_per_s: f64,
    pub allows: u64,
    pub allow_with: u64,
    pub denies: u64,
    pub cache_hits: u64,
    pub cache_misses: u64,
    pub cache_hit_rate: f64,
    pub cache_entries: u64,
    pub cache_evictions: u64,
    pub cache_expired: u64,
    pub integrity_failures: u64,
    pub epoch_misses: u64,
    pub policy_epoch: u64,
    pub stage_panics: u64,
    /// Requests denied because their agent was quarantined.
    pub quarantine_denials: u64,
    /// Quarantines started (behaviour anomalies), released by an operator, and refused because
    /// the quarantine table's probe window was full.
    pub quarantines_started: u64,
    pub quarantines_released: u64,
    pub quarantine_full: u64,
    /// Agents quarantined now.
    pub quarantined_agents: usize,
    /// Trust score changes the score table had no room for, and changes lost to concurrent
    /// writers (`trust.rs`); both 0 with trust off.
    pub trust_table_full: u64,
    pub trust_updates_lost: u64,
    /// The audit log's counters (`None`: no audit log).
    pub audit: Option<AuditMetrics>,
    /// The HSM core's counters (`None`: software keystore).
    pub hsm: Option<HsmMetrics>,
    /// The fleet's counters (`None`: no `[fleet]`).
    pub fleet: Option<FleetMetrics>,
    pub steals: u64,
    /// Requests served ahead of their priority because they waited past their aging deadline.
    pub aged: u64,
    pub core_parks: u64,
    /// Requests a caller served on a sleeping core's behalf (caller-runs, `engine.caller_runs`).
    pub caller_served: u64,
    /// Idle spins a core cut short because the scheduler took its CPU away (the CPU is shared:
    /// the core then spins less before it sleeps).
    pub preempted_spins: u64,
    /// Requests shed (`Deny(Overloaded)`) by priority (critical first; JSON: by name).
    #[serde(serialize_with = "by_priority")]
    pub shed: [u64; Priority::COUNT],
    /// Requests that went to an overflow injector by priority.
    #[serde(serialize_with = "by_priority")]
    pub overflowed: [u64; Priority::COUNT],
    pub timeouts: u64,
    /// Queue depth by priority summed over cores (critical first).
    #[serde(serialize_with = "by_priority")]
    pub queue_depth: [usize; Priority::COUNT],
    #[serde(serialize_with = "by_priority")]
    pub overflow_depth: [usize; Priority::COUNT],
    pub reply_slots_free: usize,
    pub latency: Latency,
    pub process_cpu_s: f64,
    pub process_rss_bytes: u64,
    pub per_core: Vec<CoreSnapshot>,
}

pub(crate) fn new_histogram() -> hdrhistogram::Histogram<u64> {
    hdrhistogram::Histogram::new_with_bounds(1, 1u64 << MAX_EXP, 3).expect("valid bounds")
}

pub(crate) fn summarize(h: &hdrhistogram::Histogram<u64>, sum_ns: u64, max_ns: u64) -> Latency {
    let n = h.len();
    if n == 0 {
        return Latency::default();
    }
    Latency {
        count: n,
        avg_ns: sum_ns as f64 / n as f64,
        p50_ns: h.value_at_quantile(0.50),
        p95_ns: h.value_at_quantile(0.95),
        p99_ns: h.value_at_quantile(0.99),
        p999_ns: h.value_at_quantile(0.999),
        max_ns,
    }
}

impl CoreMetrics {
    pub(crate) fn latency_parts(&self) -> (u64, u64) {
        (self.latency.sum.get(), self.latency.max.get())
    }
}

/// CPU seconds (user + system) and resident set size of this process.
pub(crate) fn process_usage() -> (f64, u64) {
    // SAFETY: getrusage writes into the zeroed struct we pass; RUSAGE_SELF is always valid.
    let cpu = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut ru) == 0 {
            let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
            tv(ru.ru_utime) + tv(ru.ru_stime)
        } else {
            0.0
        }
    };
    let rss = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096);
    (cpu, rss)
}

impl Metrics {
    /// Prometheus text exposition format.
    pub fn prometheus(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let mut c = |name: &str, help: &str, kind: &str, v: f64| {
            let _ = writeln!(
                s,
                "# HELP warden_{name} {help}\n# TYPE warden_{name} {kind}\nwarden_{name} {v}"
            );
        };
        c(
            "validations_total",
            "Requests answered by a core.",
            "counter",
            self.validations as f64,
        );
        c(
            "allows_total",
            "Allow verdicts.",
            "counter",
            self.allows as f64,
        );
        c(
            "allow_with_total",
            "Allow-with-obligations verdicts.",
            "counter",
            self.allow_with as f64,
        );
        c(
            "denies_total",
            "Deny verdicts from cores.",
            "counter",
            self.denies as f64,
        );
        c(
            "cache_hits_total",
            "Verdicts served from a cache shard.",
            "counter",
            self.cache_hits as f64,
        );
        c(
            "cache_misses_total",
            "Cache lookups that missed.",
            "counter",
            self.cache_misses as f64,
        );
        c(
            "cache_entries",
            "Cached verdicts.",
            "gauge",
            self.cache_entries as f64,
        );
        c(
            "cache_integrity_failures_total",
            "Cache entries whose integrity tag failed.",
            "counter",
            self.integrity_failures as f64,
        );
        c(
            "cache_epoch_misses_total",
            "Cache entries dropped for a stale policy epoch.",
            "counter",
            self.epoch_misses as f64,
        );
        c(
            "stage_panics_total",
            "Stage failures contained and denied.",
            "counter",
            self.stage_panics as f64,
        );
        c(
            "quarantine_denials_total",
            "Requests denied because their agent is quarantined.",
            "counter",
            self.quarantine_denials as f64,
        );
        c(
            "quarantines_started_total",
            "Agents quarantined after a behaviour anomaly.",
            "counter",
            self.quarantines_started as f64,
        );
        c(
            "quarantines_released_total",
            "Quarantines ended early by an operator.",
            "counter",
            self.quarantines_released as f64,
        );
        c(
            "quarantine_full_total",
            "Quarantines refused because the table was full (the request was still denied).",
            "counter",
            self.quarantine_full as f64,
        );
        c(
            "quarantined_agents",
            "Agents quarantined now.",
            "gauge",
            self.quarantined_agents as f64,
        );
        c(
            "trust_table_full_total",
            "Trust score changes the score table had no room for (raise trust.capacity).",
            "counter",
            self.trust_table_full as f64,
        );
        c(
            "trust_updates_lost_total",
            "Trust score changes lost to concurrent writers.",
            "counter",
            self.trust_updates_lost as f64,
        );
        if let Some(a) = &self.audit {
            for (name, help, kind, v) in [
                (
                    "audit_queue_depth",
                    "Audit events waiting for the writer.",
                    "gauge",
                    a.queue_depth as f64,
                ),
                (
                    "audit_records_written_total",
                    "Audit records written.",
                    "counter",
                    a.written as f64,
                ),
                (
                    "audit_backpressure_total",
                    "Requests denied because the audit queue was full.",
                    "counter",
                    a.backpressure as f64,
                ),
                (
                    "audit_write_failures_total",
                    "Failed audit writes (their requests were denied).",
                    "counter",
                    a.write_failures as f64,
                ),
                (
                    "audit_checkpoints_total",
                    "Signed audit checkpoints.",
                    "counter",
                    a.checkpoints as f64,
                ),
                (
                    "audit_syncs_total",
                    "Audit write or sync calls.",
                    "counter",
                    a.syncs as f64,
                ),
                (
                    "audit_healthy",
                    "1 unless the last audit write failed.",
                    "gauge",
                    a.healthy as u8 as f64,
                ),
                (
                    "siem_sent_total",
                    "Audit events sent to the syslog receiver.",
                    "counter",
                    a.siem_sent as f64,
                ),
                (
                    "siem_dropped_total",
                    "Audit events not forwarded: the forwarder's queue was full.",
                    "counter",
                    a.siem_dropped as f64,
                ),
                (
                    "siem_errors_total",
                    "Audit events whose send to the syslog receiver failed.",
                    "counter",
                    a.siem_errors as f64,
                ),
            ] {
                c(name, help, kind, v);
            }
        }
        if let Some(f) = &self.fleet {
            for (name, help, kind, v) in [
                (
                    "fleet_state_age_ms",
                    "Milliseconds since this node last proved it was in step with the fleet (-1: never).",
                    "gauge",
                    if f.state_age_ms == u64::MAX { -1.0 } else { f.state_age_ms as f64 },
                ),
                (
                    "fleet_fresh",
                    "1 while this node's view of the fleet is fresh.",
                    "gauge",
                    f.fresh as u8 as f64,
                ),
                (
                    "fleet_updates_applied_total",
                    "Fleet entries applied on this node.",
                    "counter",
                    f.updates_applied as f64,
                ),
                (
                    "fleet_updates_rejected_total",
                    "Fleet entries refused (failed their checks, or could not apply).",
                    "counter",
                    f.updates_rejected as f64,
                ),
                (
                    "fleet_published_total",
                    "Changes this node published to the fleet.",
                    "counter",
                    f.published as f64,
                ),
                (
                    "fleet_publish_failures_total",
                    "Changes applied on this node only (outbox full, or stopped before publishing).",
                    "counter",
                    f.publish_failures as f64,
                ),
                (
                    "fleet_checkpoints_published_total",
                    "Audit checkpoints stored in the fleet's checkpoint stream.",
                    "counter",
                    f.checkpoints_published as f64,
                ),
                (
                    "fleet_publish_retries_total",
                    "Fleet writes that failed and were tried again (servers away, or refusing them).",
                    "counter",
                    f.publish_retries as f64,
                ),
                (
                    "fleet_reconnects_total",
                    "Connections made to the fleet's servers.",
                    "counter",
                    f.reconnects as f64,
                ),
                (
                    "fleet_policy_version",
                    "The fleet policy version in force (0: none received).",
                    "gauge",
                    f.policy_version as f64,
                ),
                (
                    "fleet_policy_rejected_total",
                    "Fleet policy versions that did not compile here.",
                    "counter",
                    f.policy_rejected as f64,
                ),
                (
                    "fleet_stale_requests_total",
                    "Requests served while this node's view of the fleet was stale.",
                    "counter",
                    f.stale_requests as f64,
                ),
            ] {
                c(name, help, kind, v);
            }
        }
        if let Some(h) = &self.hsm {
            for (name, help, kind, v) in [
                (
                    "hsm_breaker_open",
                    "1 while the HSM circuit breaker is open or half-open.",
                    "gauge",
                    (h.breaker != "closed") as u8 as f64,
                ),
                (
                    "hsm_queue_depth",
                    "Jobs waiting for the HSM core.",
                    "gauge",
                    h.queue_depth as f64,
                ),
                (
                    "hsm_operations_total",
                    "PKCS#11 operations run by the HSM core.",
                    "counter",
                    h.operations as f64,
                ),
                (
                    "hsm_faults_total",
                    "HSM faults (module, token, session, login, slow operation).",
                    "counter",
                    h.faults as f64,
                ),
                (
                    "hsm_breaker_opens_total",
                    "Times the HSM circuit breaker opened.",
                    "counter",
                    h.breaker_opens as f64,
                ),
                (
                    "hsm_refused_total",
                    "HSM jobs refused while the breaker was open.",
                    "counter",
                    h.refused_open as f64,
                ),
                (
                    "hsm_queue_full_total",
                    "HSM jobs refused because the queue was full.",
                    "counter",
                    h.queue_full as f64,
                ),
                (
                    "hsm_batch_size_avg",
                    "Average jobs per HSM batch.",
                    "gauge",
                    h.batch_size_avg,
                ),
                (
                    "hsm_latency_p50_ns",
                    "Median time of one HSM operation.",
                    "gauge",
                    h.latency.p50_ns as f64,
                ),
                (
                    "hsm_latency_p99_ns",
                    "99th percentile time of one HSM operation.",
                    "gauge",
                    h.latency.p99_ns as f64,
                ),
            ] {
                c(name, help, kind, v);
            }
        }
        c(
            "steals_total",
            "Requests taken from an overflow injector.",
            "counter",
            self.steals as f64,
        );
        c(
            "caller_served_total",
            "Requests served by the submitting thread while the owner core slept (caller-runs).",
            "counter",
            self.caller_served as f64,
        );
        c(
            "core_preempted_spins_total",
            "Idle spins cut short because the scheduler took the core's CPU away.",
            "counter",
            self.preempted_spins as f64,
        );
        c(
            "timeouts_total",
            "Callers that timed out waiting.",
            "counter",
            self.timeouts as f64,
        );
        c(
            "policy_epoch",
            "Current policy epoch.",
            "gauge",
            self.policy_epoch as f64,
        );
        c(
            "process_cpu_seconds_total",
            "CPU time of the process.",
            "counter",
            self.process_cpu_s,
        );
        c(
            "process_resident_memory_bytes",
            "Resident memory of the process.",
            "gauge",
            self.process_rss_bytes as f64,
        );
        let _ = writeln!(
            s,
            "# HELP warden_shed_total Requests shed by priority.\n# TYPE warden_shed_total counter"
        );
        for p in Priority::ALL {
            let _ = writeln!(
                s,
                "warden_shed_total{{priority=\"{}\"}} {}",
                p.name(),
                self.shed[p.index()]
            );
        }
        let _ = writeln!(s, "# HELP warden_queue_depth Queued requests by priority.\n# TYPE warden_queue_depth gauge");
        for p in Priority::ALL {
            let _ = writeln!(
                s,
                "warden_queue_depth{{priority=\"{}\"}} {}",
                p.name(),
                self.queue_depth[p.index()]
            );
        }
        let _ = writeln!(s, "# HELP warden_latency_ns Submission-to-verdict latency.\n# TYPE warden_latency_ns summary");
        for (q, v) in [
            ("0.5", self.latency.p50_ns),
            ("0.95", self.latency.p95_ns),
            ("0.99", self.latency.p99_ns),
            ("0.999", self.latency.p999_ns),
        ] {
            let _ = writeln!(s, "warden_latency_ns{{quantile=\"{q}\"}} {v}");
        }
        let _ = writeln!(s, "warden_latency_ns_count {}", self.latency.count);
        s
    }
}

/// HSM counters, as read by `Engine::metrics`.
#[derive(Clone, Debug, Default, serde::Serialize, PartialEq)]
pub struct HsmMetrics {
    /// `"pkcs11"`.
    pub backend: &'static str,
    pub breaker: &'static str,
    /// Jobs waiting for the HSM core.
    pub queue_depth: usize,
    pub operations: u64,
    /// Faults (module, token, session, login, slow operation) that opened the breaker.
    pub faults: u64,
    pub breaker_opens: u64,
    pub probes: u64,
    /// Jobs refused because the breaker was open.
    pub refused_open: u64,
    /// Jobs refused because the queue was full.
    pub queue_full: u64,
    /// Jobs that waited longer than `hsm.timeout_us` in the queue.
    pub queue_timeouts: u64,
    pub batches: u64,
    pub batch_size_avg: f64,
    pub batch_size_max: u64,
    /// Time of one operation on the token.
    pub latency: crate::metrics::Latency,
    /// The last fault, for operators (never key material).
    pub last_fault: String,
}

/// A per-priority array as a JSON object keyed by the priorities' names.
fn by_priority<S: serde::Serializer, T: serde::Serialize>(
    v: &[T; Priority::COUNT],
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut m = s.serialize_map(Some(Priority::COUNT))?;
    for (p, x) in Priority::ALL.iter().zip(v) {
        m.serialize_entry(p.name(), x)?;
    }
    m.end()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotone_and_tight() {
        let mut last = 0;
        for v in (0..1_000_000u64).step_by(7).chain([u64::MAX, 1 << 39]) {
            let b = bucket_of(v);
            assert!(b < BUCKETS);
            if v < 1 << 39 {
                assert!(bucket_low(b) <= v && v < bucket_low(b + 1), "v={v} b={b}");
                let width = bucket_low(b + 1) - bucket_low(b);
                assert!(
                    width as f64 <= (v as f64 / 63.0).max(1.0),
                    "v={v} width={width}"
                );
            }
            if v < 1_000_000 {
                assert!(b >= last);
                last = b;
            }
        }
    }

    #[test]
    fn merge_gives_right_percentiles() {
        let h = AtomicHistogram::default();
        for v in 1..=10_000u64 {
            h.record(v * 100);
        }
        let mut m = new_histogram();
        h.merge_into(&mut m);
        let (sum, max) = (h.sum.get(), h.max.get());
        let l = summarize(&m, sum, max);
        assert_eq!(l.count, 10_000);
        let near = |a: u64, b: u64| (a as f64 - b as f64).abs() / b as f64 <= 0.02;
        assert!(near(l.p50_ns, 500_000), "{l:?}");
        assert!(near(l.p99_ns, 990_000), "{l:?}");
        assert_eq!(l.max_ns, 1_000_000);
    }
}
