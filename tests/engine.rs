//! Engine behaviour with real threads and real pinned cores.
//!
//! Many tests hold a core busy with a "gate" request (custom validator 900 spins until the
//! test opens the gate) so that what waits in the rings can be arranged and observed.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use warden::config::{EngineConfig, Executor, PerPriority};
use warden::{
    Classification, Config, DenyReason, Engine, EngineBuilder, Handle, Operation, Priority,
    Request, StageResult, Verdict,
};

const GATE: u16 = 900;
const LOG: u16 = 901;

struct Gate(Arc<AtomicBool>);
impl Gate {
    fn new() -> Gate {
        Gate(Arc::new(AtomicBool::new(false)))
    }
    fn open(&self) {
        self.0.store(true, SeqCst);
    }
}

fn config(cores: usize) -> Config {
    let mut c = Config {
        engine: EngineConfig {
            cores,
            spin_before_park_us: 20,
            ..Default::default()
        },
        ..Default::default()
    };
    // On a machine with fewer CPUs than cores, run unpinned rather than fail.
    if cores > warden::config::available_cpus().len() {
        c.engine.pin = false;
    }
    c
}

/// A builder with the gate (900) and an order log (901) registered.
fn builder(gate: &Gate, log: &Arc<Mutex<Vec<u64>>>) -> EngineBuilder {
    let g = gate.0.clone();
    let l = log.clone();
    Engine::builder()
        .custom(GATE, "gate", move |_, _| {
            while !g.load(SeqCst) {
                std::hint::spin_loop();
            }
            StageResult::Pass
        })
        .custom(LOG, "log", move |r, _| {
            l.lock().unwrap().push(r.nonce);
            StageResult::Pass
        })
}

/// An agent name routed to `core`.
fn agent_on(h: &Handle, tenant: &str, core: usize, skip: usize) -> String {
    (0..)
        .map(|i| format!("agent-{i}"))
        .filter(|a| h.owner_core(tenant, a) == core)
        .nth(skip)
        .unwrap()
}

/// Holds the core owning (t, agent) busy until the gate opens; returns the waiting thread.
/// (With caller-runs that thread may run the gate request itself, holding the core's baton:
/// the core's state is held all the same, and what is queued behind waits.)
fn hold_core(h: &Handle, agent: &str) -> std::thread::JoinHandle<Verdict> {
    let h = h.clone();
    let agent = agent.to_string();
    let t = std::thread::spawn(move || {
        h.validate(
            &Request::new(Operation::Custom(GATE))
                .tenant("t")
                .agent(&agent)
                .priority(Priority::Critical),
        )
    });
    // wait until the core has picked the gate request up
    std::thread::sleep(Duration::from_millis(50));
    t
}

#[test]
fn strict_priority_order_when_a_backlog_drains() {
    let gate = Gate::new();
    let log = Arc::new(Mutex::new(vec![]));
    // Deadlines far beyond the test's duration: this test is about strict order, not aging.
    let mut cfg = config(1);
    cfg.rings.aging_deadline_us = PerPriority {
        critical: 60_000_000,
        high: 60_000_000,
        medium: 60_000_000,
        low: 60_000_000,
        background: 60_000_000,
    };
    let engine = builder(&gate, &log).config(cfg).build().unwrap();
    let h = engine.handle();
    let blocker = hold_core(&h, "blocker");
    // Queue 4 of each priority, lowest first, each unique (nonce = prio*10 + i; distinct
    // content so none is a cache hit).
    let contents: Vec<String> = (0..50).map(|i| format!("c{i}")).collect();
    let mut futs = vec![];
    for p in Priority::ALL.iter().rev() {
        for i in 0..4u64 {
            let n = p.index() as u64 * 10 + i;
            let r = Request::new(Operation::Custom(LOG))
                .tenant("t")
                .agent("x")
                .priority(*p)
                .nonce(n)
                .content(contents[n as usize].as_bytes());
            futs.push(h.validate_async(&r));
        }
    }
    gate.open();
    for f in futs {
        assert!(pollster::block_on(f).is_allowed());
    }
    assert!(blocker.join().unwrap().is_allowed());
    let order = log.lock().unwrap().clone();
    let prios: Vec<u64> = order.iter().map(|n| n / 10).collect();
    let mut sorted = prios.clone();
    sorted.sort();
    assert_eq!(prios, sorted, "served in priority order: {order:?}");
    // FIFO within a priority
    for p in 0..5u64 {
        let within: Vec<u64> = order.iter().copied().filter(|n| n / 10 == p).collect();
        assert_eq!(within, (0..4).map(|i| p * 10 + i).collect::<Vec<_>>());
    }
}

#[test]
fn aging_serves_a_waiting_background_request_before_fresher_critical_ones() {
    let mut cfg = config(1);
    cfg.rings.aging_deadline_us.background = 2_000;
    let gate = Gate::new();
    let log = Arc::new(Mutex::new(vec![]));
    let engine = builder(&gate, &log).config(cfg).build().unwrap();
    let h = engine.handle();
    let blocker = hold_core(&h, "blocker");
    let bg = h.validate_async(
        &Request::new(Operation::Custom(LOG))
            .tenant("t")
            .agent("bg")
            .priority(Priority::Background)
            .nonce(999),
    );
    // The background request now waits past its 2 ms deadline...
    std::thread::sleep(Duration::from_millis(10));
    // ...and a flood of fresh critical requests arrives.
    let contents: Vec<String> = (0..64).map(|i| format!("c{i}")).collect();
    let crit: Vec<_> = (0..64u64)
        .map(|i| {
            h.validate_async(
                &Request::new(Operation::Custom(LOG))
                    .tenant("t")
                    .agent("c")
                    .priority(Priority::Critical)
                    .nonce(i)
                    .content(contents[i as usize].as_bytes()),
            )
        })
        .collect();
    gate.open();
    assert!(pollster::block_on(bg).is_allowed());
    for f in crit {
        assert!(pollster::block_on(f).is_allowed());
    }
    blocker.join().unwrap();
    let order = log.lock().unwrap().clone();
    assert_eq!(
        order[0], 999,
        "the aged background request is served first: {order:?}"
    );
    assert_eq!(engine.metrics().aged, 1);
}

#[test]
fn nothing_starves_under_a_sustained_critical_flood() {
    let mut cfg = config(1);
    cfg.rings.aging_deadline_us.background = 1_000;
    let gate = Gate::new();
    gate.open();
    let log = Arc::new(Mutex::new(vec![]));
    let engine = builder(&gate, &log).config(cfg).build().unwrap();
    let h = engine.handle();
    let stop = Arc::new(AtomicBool::new(false));
    let flooders: Vec<_> = (0..2)
        .map(|t| {
            let (h, stop) = (h.clone(), stop.clone());
            std::thread::spawn(move || {
                let contents: Vec<String> = (0..64).map(|i| format!("{t}-{i}")).collect();
                let mut served = 0u64;
                while !stop.load(SeqCst) {
                    let reqs: Vec<Request> = contents
                        .iter()
                        .map(|c| {
                            Request::new(Operation::Custom(LOG))
                                .tenant("t")
                                .agent("f")
                                .content(c.as_bytes())
                        })
                        .collect();
                    served += h.validate_batch(&reqs, Priority::Critical).len() as u64;
                }
                served
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(50));
    let mut worst = Duration::ZERO;
    for i in 0..20u64 {
        let t0 = Instant::now();
        let v = h.validate(
            &Request::new(Operation::Custom(LOG))
                .tenant("t")
                .agent("bg")
                .priority(Priority::Background)
                .nonce(i),
        );
        assert!(v.is_allowed());
        worst = worst.max(t0.elapsed());
    }
    stop.store(true, SeqCst);
    let served: u64 = flooders.into_iter().map(|f| f.join().unwrap()).sum();
    assert!(served > 1000, "the flood ran ({served})");
    assert!(
        worst < Duration::from_millis(500),
        "background waited {worst:?}"
    );
}

#[test]
fn full_ring_overflows_and_an_idle_core_steals() {
    let mut cfg = config(2);
    cfg.rings.capacity = PerPriority {
        critical: 2,
        high: 2,
        medium: 2,
        low: 2,
        background: 2,
    };
    cfg.rings.overflow_capacity = 4;
    let gate = Gate::new();
    let log = Arc::new(Mutex::new(vec![]));
    let engine = builder(&gate, &log).config(cfg).build().unwrap();
    let h = engine.handle();
    let a0 = agent_on(&h, "t", 0, 0);
    let blocker = hold_core(&h, &a0);
    let mut futs = vec![];
    // Two fill core 0's high ring, four more overflow and are stolen by core 1.
    for i in 0..6u64 {
        let agent = agent_on(&h, "t", 0, 1 + i as usize);
        let r = Request::new(Operation::Custom(LOG))
            .tenant("t")
            .agent(&agent)
            .priority(Priority::High)
            .nonce(i);
        futs.push(h.validate_async(&r));
    }
    let stolen: Vec<Verdict> = futs.drain(2..).map(pollster::block_on).collect();
    for v in &stolen {
        assert!(v.is_allowed());
        assert_eq!(v.core, 1, "served by the idle core");
    }
    gate.open();
    for f in futs {
        assert_eq!(pollster::block_on(f).core, 0);
    }
    blocker.join().unwrap();
    let m = engine.metrics();
    assert_eq!(m.steals, 4);
    assert_eq!(m.overflowed[Priority::High.index()], 4);
}

#[test]
fn overload_sheds_low_and_background_first_then_denies_everything() {
    let mut cfg = config(1);
    cfg.rings.capacity = PerPriority {
        critical: 2,
        high: 2,
        medium: 2,
        low: 2,
        background: 2,
    };
    cfg.rings.overflow_capacity = 2;
    let gate = Gate::new();
    let log = Arc::new(Mutex::new(vec![]));
    let engine = builder(&gate, &log).config(cfg).build().unwrap();
    let h = engine.handle();
    let blocker = hold_core(&h, "b");
    let req = |p: Priority, i: u64| {
        Request::new(Operation::Custom(LOG))
            .tenant("t")
            .agent("x")
            .priority(p)
            .nonce(i)
    };
    let mut pending = vec![];
    // Fill every ring.
    for p in Priority::ALL {
        for i in 0..2 {
            pending.push(h.validate_async(&req(p, i)));
        }
    }
    // Low and Background are now shed at once...
    for p in [Priority::Low, Priority::Background] {
        let t0 = Instant::now();
        let v = h.validate(&req(p, 9));
        assert_eq!(v.reason, DenyReason::Overloaded);
        assert!(t0.elapsed() < Duration::from_millis(50), "shed immediately");
    }
    // ...while Critical still finds room in its overflow injector.
    let c1 = h.validate_async(&req(Priority::Critical, 5));
    let c2 = h.validate_async(&req(Priority::Critical, 6));
    // Now everything that could take a Critical is full: denied at once.
    let v = h.validate(&req(Priority::Critical, 7));
    assert_eq!(v.reason, DenyReason::Overloaded);
    gate.open();
    for f in pending.into_iter().chain([c1, c2]) {
        assert!(pollster::block_on(f).is_allowed());
    }
    blocker.join().unwrap();
    let m = engine.metrics();
    assert_eq!(m.shed[Priority::Low.index()], 1);
    assert_eq!(m.shed[Priority::Background.index()], 1);
    assert_eq!(m.shed[Priority::Critical.index()], 1);
}

#[test]
fn reserved_slots_keep_room_for_high_priorities() {
    let mut cfg = config(1);
    cfg.engine.reply_slots = 8;
    cfg.engine.reserved_slots_pct = 50;
    let gate = Gate::new();
    let log = Arc::new(Mutex::new(vec![]));
    let engine = builder(&gate, &log).config(cfg).build().unwrap();
    let h = engine.handle();
    let blocker = hold_core(&h, "b"); // holds one slot
    let req = |p: Priority, i: u64| {
        Request::new(Operation::Custom(LOG))
            .tenant("t")
            .agent("x")
            .priority(p)
            .nonce(i)
    };
    let mut pending = vec![];
    let mut bg_ok = 0;
    for i in 0..8 {
        let f = h.validate_async(&req(Priority::Background, i));
        pending.push(f);
        bg_ok += 1;
        if engine.metrics().shed[Priority::Background.index()] > 0 {
            bg_ok -= 1;
            break;
        }
    }
    assert!(
        bg_ok <= 4,
        "background took at most the unreserved half ({bg_ok})"
    );
    let crit = h.validate_async(&req(Priority::Critical, 100));
    gate.open();
    assert!(pollster::block_on(crit).is_allowed());
    for f in pending {
        let _ = pollster::block_on(f);
    }
    blocker.join().unwrap();
    assert_eq!(engine.metrics().reply_slots_free, 8);
}

#[test]
fn cache_hits_never_cross_tenant_or_classification() {
    let engine = Engine::builder()
        .config(config(1))
        .custom(5, "acme-unclassified-only", |r, _| {
            if r.tenant == "acme" && r.classification == Classification::Unclassified {
                StageResult::Pass
            } else {
                StageResult::Deny(DenyReason::Custom(5))
            }
        })
        .build()
        .unwrap();
    let h = engine.handle();
    let base = Request::new(Operation::Custom(5))
        .tenant("acme")
        .agent("a")
        .tool("x");
    let v1 = h.validate(&base);
    let v2 = h.validate(&base);
    assert!(v1.is_allowed() && !v1.cache_hit);
    assert!(v2.is_allowed() && v2.cache_hit);
    let other_tenant = h.validate(&base.tenant("evil"));
    assert!(!other_tenant.is_allowed() && !other_tenant.cache_hit);
    for c in &Classification::ALL[1..] {
        let v = h.validate(&base.classification(*c));
        assert!(!v.is_allowed() && !v.cache_hit, "{c:?}");
    }
    // and the allow is still cached for the right tenant and classification
    assert!(h.validate(&base).cache_hit);
}

#[test]
fn ttl_follows_classification_and_epoch_bump_invalidates() {
    let mut cfg = config(1);
    cfg.cache.ttl_ms.check.unclassified = 60_000;
    cfg.cache.ttl_ms.check.secret = 400;
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let engine = Engine::builder()
        .config(cfg)
        .stage(Counting(c))
        .build()
        .unwrap();
    let h = engine.handle();
    let u = Request::new(Operation::Check).tenant("t").agent("a");
    let s = u.classification(Classification::Secret);
    assert!(!h.validate(&u).cache_hit);
    assert!(!h.validate(&s).cache_hit);
    assert!(h.validate(&u).cache_hit);
    assert!(h.validate(&s).cache_hit);
    std::thread::sleep(Duration::from_millis(500));
    assert!(h.validate(&u).cache_hit, "unclassified lives 60 s");
    assert!(!h.validate(&s).cache_hit, "secret expired after 400 ms");
    assert_eq!(engine.metrics().cache_expired, 1);
    let before = calls.load(SeqCst);
    engine.bump_epoch();
    assert!(
        !h.validate(&u).cache_hit,
        "a new epoch invalidates every entry"
    );
    assert_eq!(calls.load(SeqCst), before + 1);
    assert_eq!(engine.metrics().epoch_misses, 1);
}

struct Counting(Arc<AtomicUsize>);
impl warden::Stage for Counting {
    fn name(&self) -> &str {
        "counting"
    }
    fn evaluate(&self, _: &Request<'_>, _: &mut warden::Outcome) -> StageResult {
        self.0.fetch_add(1, SeqCst);
        StageResult::Pass
    }
}

#[test]
fn many_foreign_threads_each_get_exactly_their_own_verdicts() {
    let engine = Engine::builder()
        .config(Config {
            // every request here is denied by design: do not quarantine the agents for it
            anomaly: warden::config::AnomalyConfig {
                enabled: false,
                ..Default::default()
            },
            ..config(2)
        })
        .custom(3, "echo", |r, _| {
            // deny with a code derived from the content so each verdict proves whose it is
            let code = r
                .content
                .iter()
                .fold(0u16, |a, b| a.wrapping_mul(31).wrapping_add(*b as u16));
            StageResult::Deny(DenyReason::Custom(code))
        })
        .build()
        .unwrap();
    let threads = 16;
    let per = 3000;
    let hs: Vec<_> = (0..threads)
        .map(|t| {
            let h = engine.handle();
            std::thread::spawn(move || {
                let mut got = 0;
                for i in 0..per {
                    let content = format!("{t}:{i}:{}", i % 7);
                    let expect = content
                        .bytes()
                        .fold(0u16, |a, b| a.wrapping_mul(31).wrapping_add(b as u16));
                    let agent = format!("a{}", i % 50);
                    let r = Request::new(Operation::Custom(3))
                        .tenant("t")
                        .agent(&agent)
                        .content(content.as_bytes());
                    let v = if i % 3 == 0 {
                        pollster::block_on(h.validate_async(&r))
                    } else {
                        h.validate(&r)
                    };
                    assert_eq!(
                        v.reason,
                        DenyReason::Custom(expect),
                        "thread {t} request {i}"
                    );
                    got += 1;
                }
                got
            })
        })
        .collect();
    let total: usize = hs.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(total, threads * per);
    let m = engine.metrics();
    assert_eq!(m.validations as usize, threads * per);
    assert_eq!(m.reply_slots_free, engine.config().engine.reply_slots);
}

#[test]
fn a_panicking_validator_is_contained() {
    let engine = Engine::builder()
        .config(config(1))
        .custom(4, "bomb", |r, _| {
            if r.agent == "boom" {
                panic!("validator bug");
            }
            StageResult::Pass
        })
        .build()
        .unwrap();
    let h = engine.handle();
    let v = h.validate(&Request::new(Operation::Custom(4)).tenant("t").agent("boom"));
    assert_eq!(v.reason, DenyReason::Internal);
    let v = h.validate(&Request::new(Operation::Custom(4)).tenant("t").agent("boom"));
    assert_eq!(
        v.reason,
        DenyReason::Internal,
        "internal errors are not cached"
    );
    let v = h.validate(&Request::new(Operation::Custom(4)).tenant("t").agent("fine"));
    assert!(v.is_allowed(), "the core keeps running");
    assert_eq!(engine.metrics().stage_panics, 2);
}

#[test]
fn malformed_requests_are_denied_with_the_field_named() {
    let engine = Engine::builder().config(config(1)).build().unwrap();
    let h = engine.handle();
    let v = h.validate(&Request::new(Operation::Check).agent("a"));
    assert_eq!(v.reason, DenyReason::MissingField(warden::Field::Tenant));
    let v = h.validate(&Request::new(Operation::Check).tenant("t"));
    assert_eq!(v.reason, DenyReason::MissingField(warden::Field::Agent));
    let long = "x".repeat(10_000);
    let v = h.validate(&Request::new(Operation::Check).tenant("t").agent(&long));
    assert_eq!(v.reason, DenyReason::FieldTooLarge(warden::Field::Agent));
    let big = vec![b'a'; 100_000];
    let v = h.validate(
        &Request::new(Operation::Check)
            .tenant("t")
            .agent("a")
            .content(&big),
    );
    assert_eq!(v.reason, DenyReason::ContentTooLarge);
    let v = h.validate(
        &Request::new(Operation::ValidateAgent)
            .tenant("t")
            .agent("a"),
    );
    assert_eq!(
        v.reason,
        DenyReason::NoStage,
        "no stage handles it: fail closed"
    );
    let v = h.validate(&Request::new(Operation::Custom(77)).tenant("t").agent("a"));
    assert_eq!(v.reason, DenyReason::NoStage);
    // `warden` is the agent of the audit log's own records: no request may pass for one
    let v = h.validate(&Request::new(Operation::Audit).tenant("t").agent("Warden"));
    assert_eq!(v.reason, DenyReason::Malformed(warden::Field::Agent));
    // The input checks only refuse: passing them decides nothing, so with nothing else
    // handling an operation it is still refused.
    for op in [Operation::Custom(78), Operation::AuthorizeTool] {
        let v = h.validate(
            &Request::new(op)
                .tenant("t")
                .agent("a")
                .tool("fs.read")
                .resource("/data/x"),
        );
        assert_eq!(v.reason, DenyReason::NoStage, "{op:?}");
    }
    // The core is still fine.
    assert!(h
        .validate(&Request::new(Operation::Check).tenant("t").agent("a"))
        .is_allowed());
}

#[test]
fn shutdown_answers_everything_in_flight_then_refuses() {
    let gate = Gate::new();
    let log = Arc::new(Mutex::new(vec![]));
    let engine = Arc::new(builder(&gate, &log).config(config(1)).build().unwrap());
    let h = engine.handle();
    let blocker = hold_core(&h, "b");
    let futs: Vec<_> = (0..50u64)
        .map(|i| {
            let c = format!("{i}");
            h.validate_async(
                &Request::new(Operation::Custom(LOG))
                    .tenant("t")
                    .agent("x")
                    .nonce(i)
                    .content(c.as_bytes()),
            )
        })
        .collect::<Vec<_>>();
    let e2 = engine.clone();
    let stopper = std::thread::spawn(move || e2.shutdown());
    std::thread::sleep(Duration::from_millis(50));
    assert!(!stopper.is_finished(), "shutdown waits for in-flight work");
    gate.open();
    for f in futs {
        assert!(
            pollster::block_on(f).is_allowed(),
            "accepted before shutdown: answered"
        );
    }
    blocker.join().unwrap();
    stopper.join().unwrap();
    let v = h.validate(&Request::new(Operation::Check).tenant("t").agent("a"));
    assert_eq!(v.reason, DenyReason::ShuttingDown);
    assert_eq!(log.lock().unwrap().len(), 50);
}

#[test]
fn a_slow_core_times_out_the_caller_and_the_slot_comes_back() {
    let mut cfg = config(1);
    cfg.engine.request_timeout_us = 30_000;
    // A core's own thread held up: with caller-runs the blocker's thread would run its gate
    // request itself, and a caller doing the work is not waiting for it (no timeout).
    cfg.engine.caller_runs = false;
    let gate = Gate::new();
    let log = Arc::new(Mutex::new(vec![]));
    let engine = builder(&gate, &log).config(cfg).build().unwrap();
    let h = engine.handle();
    let blocker = hold_core(&h, "b");
    let v = h.validate(&Request::new(Operation::Custom(LOG)).tenant("t").agent("x"));
    assert_eq!(v.reason, DenyReason::Timeout);
    // dropping an async request early is also safe
    drop(h.validate_async(&Request::new(Operation::Custom(LOG)).tenant("t").agent("y")));
    gate.open();
    let _ = blocker.join();
    let slots = engine.config().engine.reply_slots;
    let t0 = Instant::now();
    while engine.metrics().reply_slots_free != slots {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "abandoned slots are reclaimed"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // the blocker's own gate request (held past 30 ms) and `x` both timed out
    assert_eq!(engine.metrics().timeouts, 2);
}

#[test]
fn batch_returns_verdicts_in_order() {
    let engine = Engine::builder()
        .config(config(2))
        .custom(6, "odd-agents-denied", |r, _| {
            if r.agent.ends_with(['1', '3', '5', '7', '9']) {
                StageResult::Deny(DenyReason::Custom(6))
            } else {
                StageResult::Pass
            }
        })
        .build()
        .unwrap();
    let h = engine.handle();
    let agents: Vec<String> = (0..300).map(|i| format!("agent{i}")).collect();
    let reqs: Vec<Request> = agents
        .iter()
        .map(|a| Request::new(Operation::Custom(6)).tenant("t").agent(a))
        .collect();
    let out = h.validate_batch(&reqs, Priority::High);
    assert_eq!(out.len(), 300);
    for (i, v) in out.iter().enumerate() {
        assert_eq!(v.is_allowed(), i % 2 == 0, "{i}");
    }
}

#[test]
fn threads_executor_works_too() {
    let mut cfg = config(1);
    cfg.engine.executor = Executor::Threads;
    let engine = Engine::builder().config(cfg).build().unwrap();
    let v = engine
        .handle()
        .validate(&Request::new(Operation::Check).tenant("t").agent("a"));
    assert!(v.is_allowed());
}

#[test]
fn metrics_serialize_to_json_and_prometheus() {
    let engine = Engine::builder().config(config(1)).build().unwrap();
    let h = engine.handle();
    for _ in 0..10 {
        h.validate(&Request::new(Operation::Check).tenant("t").agent("a"));
    }
    let m = engine.metrics();
    assert_eq!(m.validations, 10);
    assert_eq!(m.cache_hits, 9);
    assert!((m.cache_hit_rate - 0.9).abs() < 1e-9);
    assert!(m.latency.p50_ns > 0 && m.latency.p99_ns >= m.latency.p50_ns);
    let j = serde_json::to_value(&m).unwrap();
    assert_eq!(j["validations"], 10);
    assert!(j["latency"]["p999_ns"].is_u64());
    let p = m.prometheus();
    assert!(p.contains("warden_validations_total 10"));
    assert!(p.contains("warden_shed_total{priority=\"background\"} 0"));
}

#[test]
fn bad_config_is_refused_by_build() {
    let mut cfg = config(1);
    cfg.engine.reply_slots = 0;
    let e = Engine::builder().config(cfg).build().err().unwrap();
    assert!(e.to_string().contains("engine.reply_slots"), "{e}");
}

#[test]
fn check_runs_the_input_checks_on_the_resource() {
    let engine = Engine::builder().config(config(1)).build().unwrap();
    let h = engine.handle();
    let ok = |r: &str| {
        h.validate(
            &Request::new(Operation::Check)
                .tenant("t")
                .agent("a")
                .resource(r),
        )
    };
    assert!(ok("/data/acme/report.csv").is_allowed());
    assert!(ok("https://api.example.com/v1").is_allowed());
    use warden::inputs::InputIssue::*;
    for (r, why) in [
        ("%2e%2e%2f%2e%2e%2fetc%2fpasswd", PathTraversal),
        ("http://api.example.com/", SchemeNotAllowed),
        ("https://169.254.169.254/latest/meta-data/", InternalAddress),
        ("/srv/app/.env", SensitiveTarget),
    ] {
        let v = ok(r);
        assert_eq!(v.reason, DenyReason::Input(why), "{r}");
        // and a denial is cached like any verdict: the second one is a hit
        assert!(ok(r).cache_hit);
    }
    assert_eq!(
        DenyReason::Input(InternalAddress).to_string(),
        "request field `resource`: the URL points at a loopback, private, link-local or internal address (SSRF)"
    );
}

/// A custom operation with a validator of its own under a policy: the policy judges the agent
/// and any tool it names, whole (grant, tenant, resource), before the validator decides; the
/// policy alone never decides one.
#[test]
fn a_custom_operation_is_judged_by_the_policy_and_decided_by_its_validator() {
    let mut cfg = config(1);
    cfg.policy.file = "examples/policy.toml".into();
    cfg.anomaly.enabled = false;
    let engine = Engine::builder()
        .config(cfg)
        .custom(7, "seven", |_, _| StageResult::Pass)
        .build()
        .unwrap();
    let h = engine.handle();
    let seven = |tool: &'static str, resource: &'static str| {
        Request::new(Operation::Custom(7))
            .tenant("acme")
            .agent("planner-1")
            .tool(tool)
            .resource(resource)
    };
    assert!(h
        .validate(&seven("fs.read", "/data/acme/q3.csv"))
        .is_allowed());
    assert_eq!(
        h.validate(&seven("fs.read", "/data/globex/x")).reason,
        DenyReason::TenantIsolation
    );
    assert_eq!(
        h.validate(&seven("deploy", "https://deploy.acme.example/v1"))
            .reason,
        DenyReason::NotGranted
    );
    let v = h.validate(
        &Request::new(Operation::Custom(8))
            .tenant("acme")
            .agent("planner-1"),
    );
    assert_eq!(v.reason, DenyReason::NoStage, "no validator for 8");
}

/// `engine.nice` is applied to every core's thread (a positive value: no privilege needed), and
/// a value outside -20..=19 is refused naming the field.
#[test]
fn cores_run_at_the_configured_nice_value() {
    let mut cfg = config(1);
    cfg.engine.nice = 7;
    let engine = Engine::builder().config(cfg).build().unwrap();
    assert!(engine
        .handle()
        .validate(&Request::new(Operation::Check).tenant("t").agent("a"))
        .is_allowed());
    let mut seen = 0;
    for t in std::fs::read_dir("/proc/self/task").unwrap() {
        let dir = t.unwrap().path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if comm.trim() != "warden-core-0" {
            continue;
        }
        let stat = std::fs::read_to_string(dir.join("stat")).unwrap();
        // fields after the parenthesised name: state is 3rd, nice the 19th
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let nice: i32 = after.split(' ').nth(16).unwrap().parse().unwrap();
        // Other tests in this process run engines of their own, whose core 0 has the same
        // name and nice 0: this engine's is the one at 7 (no other test sets 7).
        if nice == 7 {
            seen += 1;
        }
    }
    assert!(seen >= 1, "no thread named warden-core-0 runs at nice 7");
    engine.shutdown();
    let mut cfg = config(1);
    cfg.engine.nice = 25;
    let e = Engine::builder()
        .config(cfg)
        .build()
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("engine.nice"), "{e}");
}
