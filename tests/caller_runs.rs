//! Caller-runs (`engine.caller_runs`, `src/engine/baton.rs`): while a core sleeps, the thread
//! that submits to it serves the core's rings itself. What must hold: one thread at a time
//! runs a core's state (a stage that notices two at once fails the test), every request gets
//! exactly its own verdict whichever thread served it, nothing is stranded when submitters
//! race the core's thread going to sleep and waking, and the switch turns it off.

#[path = "common/hogs.rs"]
mod hogs;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;
use warden::config::EngineConfig;
use warden::{Config, Engine, Operation, Request, StageResult};

const CHECKED: u16 = 910;

/// One core (so every request runs on the same core state), parking at once when idle.
fn config(caller_runs: bool, spin_us: u64) -> Config {
    Config {
        engine: EngineConfig {
            cores: 1,
            spin_before_park_us: spin_us,
            wait_spin_us: 5,
            caller_runs,
            ..Default::default()
        },
        ..Default::default()
    }
}

/// An engine whose custom stage 910 fails the run if two threads are inside the core's state
/// at once, and answers each request with a verdict that names it (the rule is the nonce's
/// low 32 bits), so a verdict given to the wrong waiter is caught.
fn engine(cfg: Config, overlap: Arc<AtomicBool>, inside: Arc<AtomicBool>) -> Engine {
    Engine::builder()
        .config(cfg)
        .custom(CHECKED, "checked", move |r, out| {
            if inside.swap(true, SeqCst) {
                overlap.store(true, SeqCst);
            }
            // a little work, so that overlapping holders would be likely to meet here
            for _ in 0..50 {
                std::hint::spin_loop();
            }
            out.rule = r.nonce as u32;
            inside.store(false, SeqCst);
            StageResult::Pass
        })
        .build()
        .unwrap()
}

fn request(nonce: u64, content: &[u8]) -> Request<'_> {
    Request::new(Operation::Custom(CHECKED))
        .tenant("t")
        .agent("a")
        .nonce(nonce)
        .content(content)
}

/// Threads submitting blocking and async requests with pauses between them, so the core
/// keeps going to sleep and callers keep taking its baton. Returns (answered, caller_served,
/// served in all).
fn storm(caller_runs: bool) -> (u64, u64, u64) {
    let overlap = Arc::new(AtomicBool::new(false));
    let inside = Arc::new(AtomicBool::new(false));
    let e = Arc::new(engine(config(caller_runs, 0), overlap.clone(), inside));
    let answered = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let (e, answered) = (e.clone(), answered.clone());
            std::thread::spawn(move || {
                let h = e.handle();
                for i in 0..1_500u64 {
                    let nonce = t << 32 | i;
                    // distinct content: every request is a miss that runs the stage
                    let content = nonce.to_le_bytes();
                    let v = if i % 3 == 0 {
                        pollster::block_on(h.validate_async(&request(nonce, &content)))
                    } else {
                        h.validate(&request(nonce, &content))
                    };
                    assert!(v.is_allowed(), "{v:?}");
                    assert_eq!(v.rule, nonce as u32, "a verdict reached the wrong waiter");
                    answered.fetch_add(1, SeqCst);
                    if i % 7 == 0 {
                        // let the core's thread go to sleep
                        std::thread::sleep(Duration::from_micros(200));
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert!(
        !overlap.load(SeqCst),
        "two threads ran the core's state at once"
    );
    let m = e.metrics();
    (answered.load(SeqCst), m.caller_served, m.validations)
}

#[test]
fn one_holder_at_a_time_and_every_verdict_to_its_own_waiter() {
    let (answered, by_callers, all) = storm(true);
    assert_eq!(answered, 6_000);
    assert_eq!(all, 6_000, "every request served exactly once");
    assert!(by_callers > 0, "callers served none of {all}");
}

#[test]
fn off_means_only_the_cores_serve() {
    let (answered, by_callers, _) = storm(false);
    assert_eq!(answered, 6_000);
    assert_eq!(by_callers, 0);
}

/// Async submissions that are never waited on until all are sent: with the core asleep at
/// the start, the first submitter serves; the others race it and the core's thread. Every
/// one must be answered (none left in a ring with the core asleep and nobody ringing it).
#[test]
fn async_bursts_are_never_stranded() {
    let overlap = Arc::new(AtomicBool::new(false));
    let inside = Arc::new(AtomicBool::new(false));
    let e = Arc::new(engine(config(true, 0), overlap.clone(), inside));
    for round in 0..200u64 {
        std::thread::sleep(Duration::from_micros(300)); // the core sleeps
        let threads: Vec<_> = (0..3u64)
            .map(|t| {
                let e = e.clone();
                std::thread::spawn(move || {
                    let h = e.handle();
                    let contents: Vec<[u8; 8]> = (0..8u64)
                        .map(|i| (round << 16 | t << 8 | i).to_le_bytes())
                        .collect();
                    let futs: Vec<_> = contents
                        .iter()
                        .enumerate()
                        .map(|(i, c)| {
                            h.validate_async(&request(round << 16 | t << 8 | i as u64, c))
                        })
                        .collect();
                    for f in futs {
                        // a stranded request would time out (1 s) and be denied
                        assert!(pollster::block_on(f).is_allowed());
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    }
    assert!(!overlap.load(SeqCst));
    let m = e.metrics();
    assert_eq!(m.validations, 200 * 3 * 8);
    assert_eq!(m.timeouts, 0);
}

/// The adaptive spin: a core whose spin is interrupted by the scheduler counts it and spins
/// less; here both CPUs are kept busy by spinning threads while requests trickle in, so
/// preemptions happen, and every request is still answered.
#[test]
fn a_shared_cpu_cuts_the_spin_short_and_loses_nothing() {
    let overlap = Arc::new(AtomicBool::new(false));
    let inside = Arc::new(AtomicBool::new(false));
    let e = Arc::new(engine(config(true, 2_000), overlap.clone(), inside));
    let stop = Arc::new(AtomicBool::new(false));
    let busy = hogs::spawn(2, &stop);
    let h = e.handle();
    for i in 0..3_000u64 {
        let c = i.to_le_bytes();
        assert!(h.validate(&request(i, &c)).is_allowed());
    }
    stop.store(true, SeqCst);
    for b in busy {
        b.join().unwrap();
    }
    assert!(!overlap.load(SeqCst));
    assert_eq!(e.metrics().validations, 3_000);
}
