//! The cache-hit path allocates nothing after warm-up, with and without an audit log: a counting
//! global allocator counts every allocation in the process (caller threads, core threads and the
//! audit writer alike) across thousands of hits.

mod common {
    pub mod counting;
}
use common::counting::{allocations_during, settle};
use warden::config::EngineConfig;
use warden::{Config, Engine, Handle, Operation, Priority, Request, StageResult, Verdict};

/// The counter is process-wide: the tests here take turns, so one's set-up never lands in the
/// other's measured window.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Warms the engine up with `reqs` (fill the cache, touch every slot and thread-local), then
/// sends them `rounds` times, one by one and as a batch; returns (cache hits, allocations).
fn hits_and_allocations(h: &Handle, reqs: &[Request<'_>], rounds: usize) -> (u32, u64) {
    settle();
    let mut out = vec![Verdict::default(); reqs.len()];
    for _ in 0..3 {
        for r in reqs {
            h.validate(r);
        }
        h.validate_batch_into(reqs, Priority::High, &mut out);
    }
    let (allocs, hits) = allocations_during(|| {
        let mut hits = 0;
        for _ in 0..rounds {
            for r in reqs {
                hits += h.validate(r).cache_hit as u32;
            }
            h.validate_batch_into(reqs, Priority::High, &mut out);
            hits += out.iter().filter(|v| v.cache_hit).count() as u32;
        }
        hits
    });
    (hits, allocs)
}

#[test]
fn cache_hit_path_is_allocation_free() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let engine = Engine::builder()
        .config(Config {
            engine: EngineConfig {
                cores: 2.min(warden::config::available_cpus().len()),
                ..Default::default()
            },
            ..Default::default()
        })
        .custom(1, "pass", |_, _| StageResult::Pass)
        .build()
        .unwrap();
    let h = engine.handle();
    let agents: Vec<String> = (0..64).map(|i| format!("agent-{i}")).collect();
    let content = vec![b'x'; 1024];
    let reqs: Vec<Request> = agents
        .iter()
        .map(|a| {
            Request::new(Operation::Custom(1))
                .tenant("acme")
                .agent(a)
                .tool("http.get")
                .content(&content)
        })
        .collect();
    let (hits, allocs) = hits_and_allocations(&h, &reqs, 200);
    assert_eq!(hits, 200 * 2 * 64, "every request was a cache hit");
    assert_eq!(allocs, 0, "allocations on the cache-hit path");
    engine.shutdown();
}

/// The same hits with every request audited (durable `always` mode, so each answer waits for the
/// writer): the hand-off to the audit writer and the writer's batches allocate nothing either.
/// Checkpoints (which write the HEAD file) are pushed out of the measured window.
#[test]
fn audited_hit_path_is_allocation_free() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::builder()
        .config(Config {
            engine: EngineConfig {
                cores: 1,
                ..Default::default()
            },
            audit: warden::config::AuditConfig {
                dir: dir.path().display().to_string(),
                mode: warden::config::AuditMode::Always,
                every_request: true,
                checkpoint_records: u64::MAX / 2,
                checkpoint_ms: 3_600_000,
                ..Default::default()
            },
            ..Default::default()
        })
        .custom(1, "pass", |_, _| StageResult::Pass)
        .build()
        .unwrap();
    let h = engine.handle();
    let agents: Vec<String> = (0..16).map(|i| format!("agent-{i}")).collect();
    let reqs: Vec<Request> = agents
        .iter()
        .map(|a| {
            Request::new(Operation::Custom(1))
                .tenant("acme")
                .agent(a)
                .tool("http.get")
                .resource("/data/x")
        })
        .collect();
    let (hits, allocs) = hits_and_allocations(&h, &reqs, 20);
    assert_eq!(hits, 20 * 2 * 16, "every request was a cache hit");
    assert_eq!(allocs, 0, "allocations on the audited hit path");
    let written = engine.metrics().audit.unwrap().written;
    engine.shutdown();
    assert!(written >= 20 * 2 * 16, "{written}");
}

/// Caller-runs: with the core's thread asleep between requests, the submitting thread serves
/// each hit itself (it takes the core's baton); that path allocates nothing either.
#[test]
fn a_caller_serving_its_core_allocates_nothing() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let e = Engine::builder()
        .config(Config {
            engine: EngineConfig {
                cores: 1,
                pin: false,
                spin_before_park_us: 0,
                wait_spin_us: 5,
                caller_runs: true,
                ..Default::default()
            },
            ..Default::default()
        })
        .custom(1, "pass", |_, _| StageResult::Pass)
        .build()
        .unwrap();
    let h = e.handle();
    let agents: Vec<String> = (0..8).map(|i| format!("agent-{i}")).collect();
    let reqs: Vec<Request> = agents
        .iter()
        .map(|a| {
            Request::new(Operation::Custom(1))
                .tenant("t")
                .agent(a)
                .content(b"x")
        })
        .collect();
    let pace = std::time::Duration::from_micros(300); // the core parks in between
    for _ in 0..3 {
        for r in &reqs {
            std::thread::sleep(pace);
            assert!(h.validate(r).is_allowed());
        }
    }
    let served0 = e.metrics().caller_served;
    let (allocs, hits) = allocations_during(|| {
        let mut hits = 0u32;
        for _ in 0..20 {
            for r in &reqs {
                std::thread::sleep(pace);
                hits += h.validate(r).cache_hit as u32;
            }
        }
        hits
    });
    let served = e.metrics().caller_served - served0;
    assert!(hits > 100, "{hits} hits of 160");
    assert!(served > 100, "callers served only {served} of 160");
    assert_eq!(allocs, 0, "{allocs} allocations in 160 caller-served hits");
}
