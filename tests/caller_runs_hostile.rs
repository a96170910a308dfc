//! Caller-runs (`src/engine/baton.rs`) under attack, from its hostile review: a caller
//! serving others' slow requests must still return near its own deadline; a stage whose panic
//! payload panics when dropped must not escape into an innocent caller nor wedge shutdown;
//! stages that call back into the engine time out rather than deadlock; a thread the scheduler
//! ranks low (SCHED_IDLE, nice 19) must not hold a core's queue hostage behind CPU hogs; and
//! storms of blocking, async, dropped and batched requests over two cores, with shutdown
//! racing them, give every waiter its own verdict with one thread per core state. Each case
//! runs with caller-runs off too, as the reference.

#[path = "common/hogs.rs"]
mod hogs;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Barrier, OnceLock};
use std::time::{Duration, Instant};
use warden::config::EngineConfig;
use warden::{Config, DenyReason, Engine, Handle, Operation, Priority, Request, StageResult};

fn cfg(cores: usize, caller_runs: bool, timeout_us: u64) -> Config {
    let mut c = Config {
        engine: EngineConfig {
            cores,
            spin_before_park_us: 0,
            wait_spin_us: 5,
            caller_runs,
            request_timeout_us: timeout_us,
            ..Default::default()
        },
        ..Default::default()
    };
    if cores > warden::config::available_cpus().len() {
        c.engine.pin = false;
    }
    c
}

fn req(op: u16, nonce: u64, content: &[u8]) -> Request<'_> {
    Request::new(Operation::Custom(op))
        .tenant("t")
        .agent("a")
        .nonce(nonce)
        .content(content)
}

/// Shuts `e` down from another thread and fails the test if that takes over `secs`.
fn shuts_down_within(e: Arc<Engine>, secs: u64, what: &str) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        e.shutdown();
        let _ = tx.send(());
    });
    assert!(rx.recv_timeout(Duration::from_secs(secs)).is_ok(), "{what}");
}

fn busy(d: Duration) {
    let t = Instant::now();
    while t.elapsed() < d {
        std::hint::spin_loop();
    }
}

// ---------------------------------------------------------------------------------------
// 1. validate() must return within request_timeout_us (then Deny(Timeout)). With
//    caller-runs a caller that took the baton serves other callers' slow requests first.
// ---------------------------------------------------------------------------------------

fn slow_burst(caller_runs: bool) -> Vec<(Duration, bool)> {
    const SLOW: u16 = 1;
    let e = Arc::new(
        Engine::builder()
            .config(cfg(1, caller_runs, 50_000)) // 50 ms timeout
            .custom(SLOW, "slow", |_, _| {
                std::thread::sleep(Duration::from_millis(40));
                StageResult::Pass
            })
            .build()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(50)); // the core sleeps
    let n = 8;
    let bar = Arc::new(Barrier::new(n));
    let ts: Vec<_> = (0..n as u64)
        .map(|t| {
            let (e, bar) = (e.clone(), bar.clone());
            std::thread::spawn(move || {
                let h = e.handle();
                let c = t.to_le_bytes();
                bar.wait();
                let t0 = Instant::now();
                let v = h.validate(&req(SLOW, t, &c));
                (t0.elapsed(), v.is_allowed())
            })
        })
        .collect();
    ts.into_iter().map(|t| t.join().unwrap()).collect()
}

#[test]
fn validate_returns_within_request_timeout_caller_runs() {
    let r = slow_burst(true);
    eprintln!("caller_runs=true: {r:?}");
    let worst = r.iter().map(|x| x.0).max().unwrap();
    assert!(
        worst < Duration::from_millis(150),
        "a validate with request_timeout_us = 50 ms blocked for {worst:?}"
    );
}

#[test]
fn validate_returns_within_request_timeout_core_only() {
    let r = slow_burst(false);
    eprintln!("caller_runs=false: {r:?}");
    let worst = r.iter().map(|x| x.0).max().unwrap();
    assert!(
        worst < Duration::from_millis(150),
        "a validate with request_timeout_us = 50 ms blocked for {worst:?}"
    );
}

// ---------------------------------------------------------------------------------------
// 2. A stage whose panic payload panics when dropped: pipeline's catch_unwind returns Err,
//    the payload is dropped outside of it. With caller-runs this unwinds out of an
//    innocent caller's validate(); the popped slot is never completed.
// ---------------------------------------------------------------------------------------

struct Bomb;
impl Drop for Bomb {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("payload drop");
        }
    }
}

fn bomb_engine(caller_runs: bool) -> Arc<Engine> {
    Arc::new(
        Engine::builder()
            .config(cfg(1, caller_runs, 200_000))
            .custom(5, "bomb", |_, _| std::panic::panic_any(Bomb))
            .custom(6, "ok", |_, _| StageResult::Pass)
            .build()
            .unwrap(),
    )
}

fn bomb_run(caller_runs: bool) {
    let e = bomb_engine(caller_runs);
    std::thread::sleep(Duration::from_millis(30));
    let h = e.handle();
    let r = std::thread::spawn(move || {
        let c = [1u8];
        h.validate(&req(5, 1, &c))
    })
    .join();
    eprintln!(
        "bomb validate: {:?}",
        r.as_ref().map(|v| (v.decision, v.reason))
    );
    assert!(
        r.is_ok(),
        "validate() itself panicked: the panic escaped the stage containment"
    );
    let v = r.unwrap();
    assert!(!v.is_allowed());
    // the engine must still serve, and shut down
    let h = e.handle();
    let c = [2u8];
    let v = h.validate(&req(6, 2, &c));
    assert!(v.is_allowed(), "{v:?}");
    shuts_down_within(e, 5, "shutdown hung after a stage panic");
}

#[test]
fn bomb_payload_caller_runs() {
    bomb_run(true);
}

#[test]
fn bomb_payload_core_only() {
    bomb_run(false);
}

/// An innocent thread serves a bomb submitted by someone else: its own validate() panics.
#[test]
fn bomb_payload_hits_innocent_caller() {
    let e = bomb_engine(true);
    let hold = Arc::new(AtomicBool::new(false));
    // hold the baton with a slow request from thread A so that B's bomb queues behind it, then
    // A serves B's bomb in the same turn.
    let e2 = Arc::new(
        Engine::builder()
            .config(cfg(1, true, 300_000))
            .custom(5, "bomb", |_, _| std::panic::panic_any(Bomb))
            .custom(7, "slow", {
                let hold = hold.clone();
                move |_, _| {
                    hold.store(true, SeqCst);
                    std::thread::sleep(Duration::from_millis(50));
                    StageResult::Pass
                }
            })
            .custom(6, "ok", |_, _| StageResult::Pass)
            .build()
            .unwrap(),
    );
    drop(e);
    std::thread::sleep(Duration::from_millis(30));
    let ea = e2.clone();
    let a = std::thread::spawn(move || {
        let h = ea.handle();
        let c = [7u8];
        h.validate(&req(7, 7, &c))
    });
    while !hold.load(SeqCst) {
        std::thread::yield_now();
    }
    let eb = e2.clone();
    let b = std::thread::spawn(move || {
        let h = eb.handle();
        let c = [5u8];
        h.validate(&req(5, 5, &c))
    });
    let ra = a.join();
    let rb = b.join();
    eprintln!(
        "A (innocent slow request): {:?}; B (bomb): {:?}",
        ra.as_ref().map(|v| (v.decision, v.reason)),
        rb.as_ref().map(|v| (v.decision, v.reason))
    );
    assert!(ra.is_ok(), "innocent caller A's validate() panicked");
    assert!(rb.is_ok(), "B's validate() panicked");
}

// ---------------------------------------------------------------------------------------
// 3. Re-entrancy: a stage that calls Handle::validate on the same or another core.
// ---------------------------------------------------------------------------------------

fn reentrant(cores: usize, caller_runs: bool, threads: u64, per: u64) -> (u64, u64, Duration) {
    const INNER: u16 = 20;
    const OUTER: u16 = 21;
    let handle: Arc<OnceLock<Handle>> = Arc::new(OnceLock::new());
    let hs = handle.clone();
    let inside = Arc::new(AtomicUsize::new(0));
    let e = Arc::new(
        Engine::builder()
            .config(cfg(cores, caller_runs, 30_000))
            .custom(INNER, "inner", |r, out| {
                out.rule = r.nonce as u32;
                StageResult::Pass
            })
            .custom(OUTER, "outer", move |r, out| {
                let h = hs.get().unwrap();
                // another agent: may route to another core
                let agent = format!("inner-{}", r.nonce % 7);
                let c = r.nonce.to_le_bytes();
                let v = h.validate(
                    &Request::new(Operation::Custom(INNER))
                        .tenant("t")
                        .agent(&agent)
                        .nonce(r.nonce ^ 0xdead)
                        .content(&c),
                );
                out.rule = r.nonce as u32;
                if v.is_allowed() {
                    assert_eq!(
                        v.rule,
                        (r.nonce ^ 0xdead) as u32,
                        "inner verdict not its own"
                    );
                    StageResult::Pass
                } else {
                    StageResult::Deny(v.reason)
                }
            })
            .build()
            .unwrap(),
    );
    let _ = inside;
    handle.set(e.handle()).ok();
    std::thread::sleep(Duration::from_millis(20));
    let allowed = Arc::new(AtomicU64::new(0));
    let denied = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    let ts: Vec<_> = (0..threads)
        .map(|t| {
            let (e, allowed, denied) = (e.clone(), allowed.clone(), denied.clone());
            std::thread::spawn(move || {
                let h = e.handle();
                for i in 0..per {
                    let nonce = t << 20 | i;
                    let c = nonce.to_le_bytes();
                    let agent = format!("outer-{}", i % 5);
                    let r = Request::new(Operation::Custom(OUTER))
                        .tenant("t")
                        .agent(&agent)
                        .nonce(nonce)
                        .content(&c);
                    let v = h.validate(&r);
                    if v.is_allowed() {
                        assert_eq!(v.rule, nonce as u32, "outer verdict not its own");
                        allowed.fetch_add(1, SeqCst);
                    } else {
                        if denied.fetch_add(1, SeqCst) < 3 {
                            eprintln!("deny: {:?}", v.reason);
                        }
                    }
                }
            })
        })
        .collect();
    for t in ts {
        t.join().unwrap();
    }
    let el = t0.elapsed();
    shuts_down_within(e, 10, "shutdown hung");
    (allowed.load(SeqCst), denied.load(SeqCst), el)
}

#[test]
fn reentrant_same_core_does_not_deadlock() {
    let (a, d, el) = reentrant(1, true, 1, 5);
    eprintln!("1 core: allowed {a} denied {d} in {el:?}");
}

#[test]
fn reentrant_two_cores_many_threads() {
    let (a, d, el) = reentrant(2, true, 4, 200);
    eprintln!("2 cores caller-runs: allowed {a} denied {d} in {el:?}");
}

#[test]
fn reentrant_two_cores_many_threads_core_only() {
    let (a, d, el) = reentrant(2, false, 4, 200);
    eprintln!("2 cores core-only: allowed {a} denied {d} in {el:?}");
}

// ---------------------------------------------------------------------------------------
// 4. Priority: a caller on a low-priority OS thread (SCHED_IDLE) holding the baton while
//    serving Background requests; Critical requests from a normal thread, with the CPUs busy.
// ---------------------------------------------------------------------------------------

fn set_sched_idle() {
    // SAFETY: plain syscall on this thread.
    unsafe {
        let p = libc::sched_param { sched_priority: 0 };
        let r = libc::sched_setscheduler(0, libc::SCHED_IDLE, &p);
        assert_eq!(
            r,
            0,
            "sched_setscheduler: {}",
            std::io::Error::last_os_error()
        );
    }
}

fn critical_behind_idle_caller(caller_runs: bool) -> (u64, u64, Duration) {
    critical_behind(caller_runs, 0, 2)
}

/// mode 0: SCHED_IDLE background submitters; 1: nice 19; 2: no change.
fn critical_behind(caller_runs: bool, mode: u8, nbg: u64) -> (u64, u64, Duration) {
    const WORK: u16 = 30;
    let e = Arc::new(
        Engine::builder()
            .config(Config {
                engine: EngineConfig {
                    cores: 1,
                    spin_before_park_us: 0,
                    wait_spin_us: 5,
                    caller_runs,
                    request_timeout_us: 100_000,
                    pin: false,
                    ..Default::default()
                },
                ..Default::default()
            })
            .custom(WORK, "work", |_, _| {
                busy(Duration::from_micros(500));
                StageResult::Pass
            })
            .build()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(20));
    let stop = Arc::new(AtomicBool::new(false));
    let hogs = hogs::spawn(1, &stop);
    // background submitters on SCHED_IDLE threads
    let bg: Vec<_> = (0..nbg)
        .map(|t| {
            let (e, stop) = (e.clone(), stop.clone());
            std::thread::spawn(move || {
                match mode {
                    0 => set_sched_idle(),
                    1 => unsafe {
                        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
                        assert_eq!(libc::setpriority(libc::PRIO_PROCESS, tid, 19), 0);
                    },
                    _ => {}
                }
                let h = e.handle();
                let mut i = 0u64;
                while !stop.load(SeqCst) {
                    let c = (t << 40 | i).to_le_bytes();
                    let _ = h.validate(&req(WORK, i, &c).priority(Priority::Background));
                    i += 1;
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    let h = e.handle();
    let (mut ok, mut timeouts) = (0u64, 0u64);
    let mut worst = Duration::ZERO;
    for i in 0..100u64 {
        let c = (1u64 << 60 | i).to_le_bytes();
        let t0 = Instant::now();
        let v = h.validate(&req(WORK, i, &c).priority(Priority::Critical));
        worst = worst.max(t0.elapsed());
        if v.is_allowed() {
            ok += 1;
        } else if v.reason == DenyReason::Timeout {
            timeouts += 1;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    stop.store(true, SeqCst);
    for t in hogs.into_iter().chain(bg) {
        t.join().unwrap();
    }
    (ok, timeouts, worst)
}

#[test]
fn critical_not_starved_by_idle_priority_caller() {
    let (ok, to, worst) = critical_behind_idle_caller(true);
    eprintln!("caller-runs: critical ok {ok} timeouts {to} worst {worst:?}");
    assert_eq!(
        to, 0,
        "critical requests timed out behind a SCHED_IDLE caller holding the baton"
    );
}

#[test]
fn critical_not_starved_by_idle_priority_caller_core_only() {
    let (ok, to, worst) = critical_behind_idle_caller(false);
    eprintln!("core-only: critical ok {ok} timeouts {to} worst {worst:?}");
    assert_eq!(to, 0);
}

#[test]
fn reentrant_two_cores_one_thread() {
    let (a, d, el) = reentrant(2, true, 1, 100);
    eprintln!("2 cores caller-runs 1 thread: allowed {a} denied {d} in {el:?}");
}

#[test]
fn reentrant_two_cores_one_thread_core_only() {
    let (a, d, el) = reentrant(2, false, 1, 100);
    eprintln!("2 cores core-only 1 thread: allowed {a} denied {d} in {el:?}");
}

#[test]
fn critical_behind_nice19_caller() {
    for cr in [true, false] {
        let (ok, to, worst) = critical_behind(cr, 1, 2);
        eprintln!("nice 19, caller_runs={cr}: critical ok {ok} timeouts {to} worst {worst:?}");
        assert_eq!(
            to, 0,
            "critical requests timed out behind nice-19 callers (caller_runs = {cr})"
        );
    }
}

#[test]
fn critical_behind_plain_callers() {
    for cr in [true, false] {
        let (ok, to, worst) = critical_behind(cr, 2, 4);
        eprintln!("plain x4, caller_runs={cr}: critical ok {ok} timeouts {to} worst {worst:?}");
        // every critical request answered, allowed or (CPU hogs beside) timed out, never lost
        assert_eq!(ok + to, 100);
    }
}

// ---------------------------------------------------------------------------------------
// 5. Storm: 2 cores, mixed blocking / async / dropped futures / batches, all priorities, a
//    per-core overlap detector, then shutdown racing the submitters.
// ---------------------------------------------------------------------------------------

const CHK: u16 = 40;
const AGENTS: usize = 16;

struct Storm {
    e: Arc<Engine>,
    overlap: Arc<AtomicBool>,
    agents: Vec<String>,
}

fn storm_engine(cores: usize) -> Storm {
    let agents: Vec<String> = (0..AGENTS).map(|i| format!("ag{i}")).collect();
    let owner: Arc<OnceLock<Vec<usize>>> = Arc::new(OnceLock::new());
    let inside: Arc<Vec<AtomicBool>> =
        Arc::new((0..cores).map(|_| AtomicBool::new(false)).collect());
    let overlap = Arc::new(AtomicBool::new(false));
    let (o2, ov2, in2, ag2) = (
        owner.clone(),
        overlap.clone(),
        inside.clone(),
        agents.clone(),
    );
    let e = Arc::new(
        Engine::builder()
            .config(cfg(cores, true, 2_000_000))
            .custom(CHK, "chk", move |r, out| {
                let ai = ag2.iter().position(|a| a == r.agent).unwrap();
                let c = o2.get().unwrap()[ai];
                if in2[c].swap(true, SeqCst) {
                    ov2.store(true, SeqCst);
                }
                for _ in 0..((r.nonce % 200) as usize) {
                    std::hint::spin_loop();
                }
                out.rule = r.nonce as u32;
                in2[c].store(false, SeqCst);
                StageResult::Pass
            })
            .build()
            .unwrap(),
    );
    let h = e.handle();
    owner
        .set(agents.iter().map(|a| h.owner_core("t", a)).collect())
        .unwrap();
    Storm { e, overlap, agents }
}

/// Returns (allowed own, shutting-down denials, other denials, accepted-but-unanswered).
fn storm_run(threads: u64, per: u64, shutdown_after: Option<Duration>) -> (u64, u64, u64) {
    let s = storm_engine(2);
    let allowed = Arc::new(AtomicU64::new(0));
    let sd = Arc::new(AtomicU64::new(0));
    let other = Arc::new(AtomicU64::new(0));
    let agents = Arc::new(s.agents.clone());
    let ts: Vec<_> = (0..threads)
        .map(|t| {
            let (e, allowed, sd, other, agents) = (
                s.e.clone(),
                allowed.clone(),
                sd.clone(),
                other.clone(),
                agents.clone(),
            );
            std::thread::spawn(move || {
                let h = e.handle();
                let mut seed = t.wrapping_mul(0x9e3779b97f4a7c15) | 1;
                let mut rnd = || {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed
                };
                let check = |v: &warden::Verdict, nonce: u64| {
                    if v.is_allowed() {
                        assert_eq!(
                            v.rule, nonce as u32,
                            "verdict for {nonce:#x} reached the wrong waiter"
                        );
                        allowed.fetch_add(1, SeqCst);
                    } else if v.reason == DenyReason::ShuttingDown {
                        sd.fetch_add(1, SeqCst);
                    } else {
                        eprintln!("unexpected deny {:?} for {nonce:#x}", v.reason);
                        other.fetch_add(1, SeqCst);
                    }
                };
                for i in 0..per {
                    let nonce = t << 32 | i;
                    let c = nonce.to_le_bytes();
                    let prio = Priority::ALL[(rnd() % 5) as usize];
                    let agent = &agents[(rnd() % AGENTS as u64) as usize];
                    let r = Request::new(Operation::Custom(CHK))
                        .tenant("t")
                        .agent(agent)
                        .nonce(nonce)
                        .content(&c)
                        .priority(prio);
                    match rnd() % 6 {
                        0 => check(&pollster::block_on(h.validate_async(&r)), nonce),
                        1 => {
                            // dropped before polling, or after one poll
                            let mut f = Box::pin(h.validate_async(&r));
                            if rnd() % 2 == 0 {
                                let w = futures_noop_waker();
                                let mut cx = std::task::Context::from_waker(&w);
                                let _ = std::future::Future::poll(f.as_mut(), &mut cx);
                            }
                            drop(f);
                        }
                        2 => {
                            let n = (rnd() % 20) as usize + 1;
                            let cs: Vec<[u8; 8]> = (0..n)
                                .map(|j| (nonce ^ (j as u64) << 24).to_le_bytes())
                                .collect();
                            let rs: Vec<Request> = cs
                                .iter()
                                .enumerate()
                                .map(|(j, c)| {
                                    Request::new(Operation::Custom(CHK))
                                        .tenant("t")
                                        .agent(&agents[j % AGENTS])
                                        .nonce(nonce ^ (j as u64) << 24)
                                        .content(c)
                                })
                                .collect();
                            let vs = h.validate_batch(&rs, prio);
                            for (j, v) in vs.iter().enumerate() {
                                check(v, nonce ^ (j as u64) << 24);
                            }
                        }
                        _ => check(&h.validate(&r), nonce),
                    }
                    if rnd() % 13 == 0 {
                        std::thread::sleep(Duration::from_micros(rnd() % 300));
                    }
                }
            })
        })
        .collect();
    if let Some(d) = shutdown_after {
        std::thread::sleep(d);
        let (tx, rx) = std::sync::mpsc::channel();
        let e2 = s.e.clone();
        std::thread::spawn(move || {
            e2.shutdown();
            let _ = tx.send(());
        });
        assert!(
            rx.recv_timeout(Duration::from_secs(10)).is_ok(),
            "shutdown hung"
        );
    }
    for t in ts {
        t.join().unwrap();
    }
    assert!(!s.overlap.load(SeqCst), "two threads in one core's state");
    let m = s.e.metrics();
    eprintln!(
        "allowed {} shutting-down {} other {} | validations {} caller_served {} parks {} timeouts {} free {}",
        allowed.load(SeqCst),
        sd.load(SeqCst),
        other.load(SeqCst),
        m.validations,
        m.caller_served,
        m.core_parks,
        m.timeouts,
        m.reply_slots_free
    );
    assert_eq!(m.timeouts, 0);
    (allowed.load(SeqCst), sd.load(SeqCst), other.load(SeqCst))
}

fn futures_noop_waker() -> std::task::Waker {
    std::task::Waker::noop().clone()
}

#[test]
fn storm_two_cores() {
    let (_, _, other) = storm_run(6, 3_000, None);
    assert_eq!(other, 0);
}

#[test]
fn storm_with_shutdown() {
    for _ in 0..5 {
        let (_, _, other) = storm_run(6, 100_000, Some(Duration::from_millis(300)));
        assert_eq!(other, 0);
    }
}
