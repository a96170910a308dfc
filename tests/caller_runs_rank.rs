//! Caller-runs against who may serve for a core, from the second hostile review: a thread's
//! rank (policy, nice) is asked again within a millisecond and compared with each engine's
//! cores as the kernel runs them (nice inherited or set), so neither an earlier engine, a later
//! SCHED_IDLE, SCHED_RESET_ON_FORK, a negative `engine.nice` nor a niced process changes the
//! answer wrongly; a contained panic's payload is freed (bounded memory), and an async waiter's
//! waker that panics neither escapes into the thread serving it nor leaves its slot WAKING;
//! requests whose deadline passed before they were served strand nothing; shutdown returns
//! while callers serve slow requests.

#[path = "common/hogs.rs"]
mod hogs;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};
use warden::config::EngineConfig;
use warden::{Config, DenyReason, Engine, Operation, Priority, Request, StageResult};

fn cfg(cores: usize, caller_runs: bool, timeout_us: u64, nice: i32) -> Config {
    Config {
        engine: EngineConfig {
            cores,
            spin_before_park_us: 0,
            wait_spin_us: 5,
            caller_runs,
            request_timeout_us: timeout_us,
            nice,
            pin: false,
            ..Default::default()
        },
        ..Default::default()
    }
}

fn req(op: u16, nonce: u64, content: &[u8]) -> Request<'_> {
    Request::new(Operation::Custom(op))
        .tenant("t")
        .agent("a")
        .nonce(nonce)
        .content(content)
}

fn busy(d: Duration) {
    let t = Instant::now();
    while t.elapsed() < d {
        std::hint::spin_loop();
    }
}

fn set_my_nice(n: i32) {
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        assert_eq!(libc::setpriority(libc::PRIO_PROCESS, tid, n), 0);
    }
}

fn set_sched_idle() {
    unsafe {
        let p = libc::sched_param { sched_priority: 0 };
        assert_eq!(libc::sched_setscheduler(0, libc::SCHED_IDLE, &p), 0);
    }
}

fn fast_engine(nice: i32) -> Engine {
    Engine::builder()
        .config(cfg(1, true, 1_000_000, nice))
        .custom(7, "ok", |_, _| StageResult::Pass)
        .build()
        .unwrap()
}

/// Submits `n` requests, pausing so the core parks between them; returns caller_served.
fn served_by_callers(e: &Engine, n: u64) -> u64 {
    let h = e.handle();
    for i in 0..n {
        std::thread::sleep(Duration::from_millis(3));
        let c = i.to_le_bytes();
        assert!(h.validate(&req(7, i, &c)).is_allowed());
    }
    e.metrics().caller_served
}

// ---------------------------------------------------------------------------------------
// A. may_run_here's answer is cached per thread for the whole process, not per engine: a
//    thread at nice 5 that first submitted to an engine whose cores run at nice 10 keeps
//    taking batons of an engine whose cores run at nice 0.
// ---------------------------------------------------------------------------------------

#[test]
fn may_run_answer_leaks_across_engines() {
    // B's cores are started from this thread (nice 0) and run at nice 0 whatever thread uses B.
    let b = std::sync::Arc::new(fast_engine(0));
    std::thread::sleep(Duration::from_millis(30));
    // control: a nice-5 thread that only ever talks to B never serves for it
    let b1 = b.clone();
    let control = std::thread::spawn(move || {
        set_my_nice(5);
        served_by_callers(&b1, 50)
    })
    .join()
    .unwrap();
    // attacked: the same, after serving for an engine whose cores run at nice 10
    let b2 = b.clone();
    let before = b.metrics().caller_served;
    let attacked = std::thread::spawn(move || {
        set_my_nice(5);
        let a = fast_engine(10);
        std::thread::sleep(Duration::from_millis(30));
        let on_a = served_by_callers(&a, 5);
        (on_a, served_by_callers(&b2, 50))
    })
    .join()
    .unwrap();
    eprintln!("control (nice 5 -> cores at nice 0): caller_served {control}");
    eprintln!("attacked (cores at nice 10 first, then at nice 0): {attacked:?}");
    assert_eq!(control, 0);
    assert!(
        attacked.0 > 0,
        "a nice-5 thread serves for cores at nice 10"
    );
    assert_eq!(
        attacked.1 - before,
        0,
        "a nice-5 thread took the baton of an engine whose cores run at nice 0"
    );
}

// ---------------------------------------------------------------------------------------
// B. A thread that lowers its priority after its first submission keeps taking batons:
//    the starvation fix 3 closed comes back.
// ---------------------------------------------------------------------------------------

/// mode 0: submit once at normal priority, then SCHED_IDLE; 1: SCHED_IDLE from the start.
/// engine_nice: the cores' nice; bg_nice: set on bg threads (mode 2).
fn critical_behind(caller_runs: bool, mode: u8, engine_nice: i32) -> (u64, u64, Duration, u64) {
    critical_behind_t(caller_runs, mode, engine_nice, 100_000, 2)
}

fn critical_behind_t(
    caller_runs: bool,
    mode: u8,
    engine_nice: i32,
    timeout_us: u64,
    nbg: u64,
) -> (u64, u64, Duration, u64) {
    const WORK: u16 = 30;
    let e = Arc::new(
        Engine::builder()
            .config(cfg(1, caller_runs, timeout_us, engine_nice))
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
    let bg: Vec<_> = (0..nbg)
        .map(|t| {
            let (e, stop) = (e.clone(), stop.clone());
            std::thread::spawn(move || {
                let h = e.handle();
                match mode {
                    0 => {
                        let c = (t << 50).to_le_bytes();
                        let _ = h.validate(&req(WORK, 0, &c).priority(Priority::Background));
                        set_sched_idle();
                        // the contract: a thread's rank is asked again within 1 ms
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    1 => set_sched_idle(),
                    _ => {}
                }
                let mut i = 1u64;
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
    let served = e.metrics().caller_served;
    (ok, timeouts, worst, served)
}

#[test]
fn critical_behind_caller_that_went_idle_after_first_submit() {
    let r1 = critical_behind(true, 1, 0);
    eprintln!("SCHED_IDLE from the start: ok/timeouts/worst/caller_served {r1:?}");
    let r0 = critical_behind(true, 0, 0);
    eprintln!("SCHED_IDLE after first submit: ok/timeouts/worst/caller_served {r0:?}");
    assert_eq!(
        r0.1, 0,
        "critical requests timed out behind callers that switched to SCHED_IDLE after their first submission"
    );
}

// ---------------------------------------------------------------------------------------
// C. engine.nice < 0: the cores are favoured by the scheduler, but callers at nice 0 (ranked
//    below them) still take batons (`nice <= engine.nice.max(0)`).
// ---------------------------------------------------------------------------------------

#[test]
fn negative_engine_nice_callers_at_zero_take_the_baton() {
    let served = std::thread::spawn(|| {
        let e = fast_engine(-5);
        std::thread::sleep(Duration::from_millis(30));
        served_by_callers(&e, 50)
    })
    .join()
    .unwrap();
    eprintln!("engine.nice = -5, caller at nice 0: caller_served {served}");
    assert_eq!(served, 0, "nice-0 threads served for cores at nice -5");
}

#[test]
fn negative_engine_nice_critical_behind_plain_callers() {
    for cr in [false, true] {
        let r = critical_behind_t(cr, 2, -10, 10_000, 4);
        eprintln!("engine.nice -10, 4 plain bg callers, 10 ms timeout, caller_runs={cr}: {r:?}");
        // nice-0 callers rank below cores at nice -10: they never serve for them
        assert_eq!(r.3, 0, "callers at nice 0 served for cores at nice -10");
    }
}

// ---------------------------------------------------------------------------------------
// D. Deadline already past when the caller takes the baton (request_timeout_us tiny): every
//    request is a Timeout deny, the core is rung, slots come back, shutdown returns.
// ---------------------------------------------------------------------------------------

#[test]
fn tiny_timeout_nothing_stranded() {
    let e = Arc::new(
        Engine::builder()
            .config(cfg(2, true, 1, 0))
            .custom(7, "ok", |_, _| StageResult::Pass)
            .build()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(30));
    let free0 = e.metrics().reply_slots_free;
    let bar = Arc::new(Barrier::new(4));
    let ts: Vec<_> = (0..4u64)
        .map(|t| {
            let (e, bar) = (e.clone(), bar.clone());
            std::thread::spawn(move || {
                let h = e.handle();
                bar.wait();
                let mut allows = 0u64;
                for i in 0..2000u64 {
                    let c = (t << 32 | i).to_le_bytes();
                    let a = format!("a{}", i % 7);
                    let v = h.validate(&req(7, i, &c).agent(&a));
                    if v.is_allowed() {
                        allows += 1;
                    } else {
                        assert!(
                            matches!(v.reason, DenyReason::Timeout | DenyReason::Overloaded),
                            "{:?}",
                            v.reason
                        );
                    }
                }
                allows
            })
        })
        .collect();
    let allows: u64 = ts.into_iter().map(|t| t.join().unwrap()).sum();
    let t0 = Instant::now();
    loop {
        let m = e.metrics();
        if m.reply_slots_free == free0 && m.queue_depth.iter().sum::<usize>() == 0 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_millis(500),
            "slots not back after 500 ms: free {} of {free0}, depth {:?}",
            m.reply_slots_free,
            m.queue_depth
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    eprintln!(
        "tiny timeout: allows {allows}, settled after {:?}",
        t0.elapsed()
    );
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        e.shutdown();
        let _ = tx.send(());
    });
    assert!(
        rx.recv_timeout(Duration::from_secs(3)).is_ok(),
        "shutdown hung"
    );
}

// ---------------------------------------------------------------------------------------
// E. An async waiter's waker runs on whichever thread completes its request: with
//    caller-runs, an innocent caller's validate() runs it. A waker that panics unwinds out
//    of that caller's validate (no containment as for stages), and the future is left in
//    WAKING forever.
// ---------------------------------------------------------------------------------------

fn panicking_waker() -> std::task::Waker {
    use std::task::{RawWaker, RawWakerVTable};
    fn clone(p: *const ()) -> RawWaker {
        RawWaker::new(p, &VT)
    }
    fn wake(_: *const ()) {
        panic!("waker panics");
    }
    fn wake_by_ref(_: *const ()) {
        panic!("waker panics");
    }
    fn drop(_: *const ()) {}
    static VT: RawWakerVTable = RawWakerVTable::new(clone, wake, wake_by_ref, drop);
    unsafe { std::task::Waker::from_raw(RawWaker::new(std::ptr::null(), &VT)) }
}

fn waker_case(caller_runs: bool) -> (bool, bool, bool, bool) {
    const SLOW: u16 = 1;
    const FAST: u16 = 2;
    let e = Arc::new(
        Engine::builder()
            .config(cfg(1, caller_runs, 500_000, 0))
            .custom(SLOW, "slow", |_, _| {
                std::thread::sleep(Duration::from_millis(60));
                StageResult::Pass
            })
            .custom(FAST, "fast", |_, _| StageResult::Pass)
            .build()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(30));
    // X: innocent blocking caller with a slow request; takes the baton
    let ex = e.clone();
    let x = std::thread::spawn(move || {
        let h = ex.handle();
        let c = 1u64.to_le_bytes();
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            h.validate(&req(SLOW, 1, &c)).is_allowed()
        }))
    });
    std::thread::sleep(Duration::from_millis(15));
    // Y: async request queued while X holds the baton, polled with a panicking waker
    let ey = e.clone();
    let (ytx, yrx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let h = ey.handle();
        let c = 2u64.to_le_bytes();
        let mut f = Box::pin(h.validate_async(&req(FAST, 2, &c)));
        let w = panicking_waker();
        let mut cx = std::task::Context::from_waker(&w);
        let first = f.as_mut().poll(&mut cx).is_ready();
        let _ = ytx.send(("first", first));
        std::thread::sleep(Duration::from_millis(150));
        let noop = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(noop);
        let second = f.as_mut().poll(&mut cx).is_ready();
        let _ = ytx.send(("second", second));
    });
    use std::future::Future;
    let xr = x.join().unwrap();
    let x_panicked = xr.is_err();
    eprintln!(
        "caller_runs={caller_runs}: X result {:?}",
        xr.as_ref().map_err(|_| "panicked")
    );
    let first = yrx.recv_timeout(Duration::from_secs(1));
    let second = yrx.recv_timeout(Duration::from_secs(2));
    eprintln!("Y polls: {first:?} {second:?}");
    let y_hung = second.is_err();
    // does the engine still answer?
    let h = e.handle();
    let t0 = Instant::now();
    let c = 3u64.to_le_bytes();
    let v = h.validate(&req(FAST, 3, &c));
    eprintln!("after: {:?} in {:?}", v.reason, t0.elapsed());
    let still = v.is_allowed();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        e.shutdown();
        let _ = tx.send(());
    });
    let shut = rx.recv_timeout(Duration::from_secs(3)).is_ok();
    (x_panicked, y_hung, still, shut)
}

#[test]
fn panicking_waker_escapes_into_innocent_caller() {
    let r = waker_case(true);
    eprintln!(
        "caller_runs: x_panicked {} y_hung {} engine_ok {} shutdown_ok {}",
        r.0, r.1, r.2, r.3
    );
    assert!(
        !r.0,
        "an innocent caller's validate() panicked with another task's waker panic"
    );
    assert!(!r.1, "the async future hung in WAKING");
}

#[test]
fn panicking_waker_core_only() {
    let r = waker_case(false);
    eprintln!(
        "core-only: x_panicked {} y_hung {} engine_ok {} shutdown_ok {}",
        r.0, r.1, r.2, r.3
    );
}

// ---------------------------------------------------------------------------------------
// F. Shutdown while a caller holds the baton serving slow requests from many threads.
// ---------------------------------------------------------------------------------------

#[test]
fn shutdown_while_caller_serves_slow() {
    const SLOW: u16 = 1;
    let e = Arc::new(
        Engine::builder()
            .config(cfg(2, true, 80_000, 0))
            .custom(SLOW, "slow", |_, _| {
                std::thread::sleep(Duration::from_millis(15));
                StageResult::Pass
            })
            .build()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(30));
    let answered = Arc::new(AtomicU64::new(0));
    let ts: Vec<_> = (0..8u64)
        .map(|t| {
            let (e, answered) = (e.clone(), answered.clone());
            std::thread::spawn(move || {
                let h = e.handle();
                let a = format!("ag{t}");
                let mut worst = Duration::ZERO;
                for i in 0..40u64 {
                    let c = (t << 32 | i).to_le_bytes();
                    let t0 = Instant::now();
                    let v = h.validate(&req(SLOW, i, &c).agent(&a));
                    worst = worst.max(t0.elapsed());
                    answered.fetch_add(1, SeqCst);
                    if v.reason == DenyReason::ShuttingDown {
                        break;
                    }
                }
                worst
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(120));
    let t0 = Instant::now();
    let (tx, rx) = std::sync::mpsc::channel();
    let e2 = e.clone();
    std::thread::spawn(move || {
        e2.shutdown();
        let _ = tx.send(());
    });
    let shut = rx.recv_timeout(Duration::from_secs(3));
    eprintln!("shutdown took {:?}", t0.elapsed());
    assert!(shut.is_ok(), "shutdown hung");
    let worst: Vec<_> = ts.into_iter().map(|t| t.join().unwrap()).collect();
    eprintln!("worst per thread: {worst:?}");
    for w in worst {
        assert!(w < Duration::from_millis(200), "validate blocked {w:?}");
    }
}

// ---------------------------------------------------------------------------------------
// G. engine.nice = 0 means "as the process" (the cores inherit the nice of the thread that
//    builds the engine), but may_run_here compares the caller's nice with the config value
//    0, not with the cores' real nice: in a process run under `nice -n 10`, no caller ever
//    serves, though it ranks exactly as the cores do.
// ---------------------------------------------------------------------------------------

fn core_nices() -> Vec<(String, i64)> {
    let mut out = vec![];
    for t in std::fs::read_dir("/proc/self/task").unwrap() {
        let p = t.unwrap().path();
        let comm = std::fs::read_to_string(p.join("comm")).unwrap_or_default();
        if comm.starts_with("warden-core") {
            let stat = std::fs::read_to_string(p.join("stat")).unwrap();
            let after = &stat[stat.rfind(')').unwrap() + 2..];
            let f: Vec<&str> = after.split(' ').collect();
            // fields after ')' start at field 3 (state); nice is field 19
            out.push((comm.trim().to_string(), f[19 - 3].parse().unwrap()));
        }
    }
    out
}

#[test]
fn process_under_nice_10_disables_caller_runs() {
    let (served, cores) = std::thread::spawn(|| {
        set_my_nice(10); // as `nice -n 10 gateway` would leave every thread
        let e = fast_engine(0);
        std::thread::sleep(Duration::from_millis(30));
        let cores = core_nices();
        (served_by_callers(&e, 50), cores)
    })
    .join()
    .unwrap();
    eprintln!("process at nice 10, engine.nice = 0: cores {cores:?}, caller_served {served}");
    assert!(
        served > 0,
        "callers at the cores' own nice never served (caller-runs silently off)"
    );
}

// ---------------------------------------------------------------------------------------
// H. Fix 4 leaks every panic payload: a stage that panics with the request's content in its
//    message (`.unwrap()` on a parse error that quotes its input) leaks that much per request,
//    without bound, whichever thread serves.
// ---------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------
// I. sched_getscheduler ORs in SCHED_RESET_ON_FORK when that flag is set: a SCHED_IDLE (or
//    SCHED_BATCH) thread with reset-on-fork is not recognised and takes batons.
// ---------------------------------------------------------------------------------------

fn served_with_policy(policy: i32) -> (i32, u64) {
    std::thread::spawn(move || {
        let e = fast_engine(0);
        std::thread::sleep(Duration::from_millis(30));
        unsafe {
            let p = libc::sched_param { sched_priority: 0 };
            assert_eq!(libc::sched_setscheduler(0, policy, &p), 0);
        }
        let seen = unsafe { libc::sched_getscheduler(0) };
        (seen, served_by_callers(&e, 50))
    })
    .join()
    .unwrap()
}

#[test]
fn sched_idle_with_reset_on_fork_takes_batons() {
    let plain = served_with_policy(libc::SCHED_IDLE);
    let rof = served_with_policy(libc::SCHED_IDLE | libc::SCHED_RESET_ON_FORK);
    let batch_rof = served_with_policy(libc::SCHED_BATCH | libc::SCHED_RESET_ON_FORK);
    eprintln!("SCHED_IDLE: (policy, caller_served) {plain:?}; IDLE|RESET_ON_FORK {rof:?}; BATCH|RESET_ON_FORK {batch_rof:?}");
    assert_eq!(plain.1, 0);
    assert_eq!(
        rof.1, 0,
        "a SCHED_IDLE|SCHED_RESET_ON_FORK thread took batons"
    );
    assert_eq!(
        batch_rof.1, 0,
        "a SCHED_BATCH|SCHED_RESET_ON_FORK thread took batons"
    );
}
