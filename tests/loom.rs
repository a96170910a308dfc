//! Model checks of the hand-written lock-free structures under every interleaving loom explores.
//! Run: `cargo test --features loom --test loom` (tools/test.sh does).
#![cfg(feature = "loom")]

use loom::sync::Arc;
use loom::thread;
use warden::ring::Ring;
use warden::stack::Stack;

#[test]
fn ring_two_producers_one_consumer_exactly_once() {
    loom::model(|| {
        let r = Arc::new(Ring::new(2));
        let ps: Vec<_> = (0..2)
            .map(|p| {
                let r = r.clone();
                thread::spawn(move || {
                    let _ = r.push(p + 10);
                })
            })
            .collect();
        let mut got = vec![];
        for _ in 0..2 {
            if let Some(v) = r.pop() {
                got.push(v);
            }
        }
        for p in ps {
            p.join().unwrap();
        }
        while let Some(v) = r.pop() {
            got.push(v);
        }
        got.sort();
        assert_eq!(got, vec![10, 11]);
    });
}

#[test]
fn ring_full_push_fails_and_peek_matches_pop() {
    loom::model(|| {
        let r = Arc::new(Ring::new(2));
        r.push(1).unwrap();
        let r2 = r.clone();
        let t = thread::spawn(move || {
            let a = r2.push(2).is_ok();
            let b = r2.push(3).is_ok();
            (a, b)
        });
        let head = r.peek();
        let popped = r.pop();
        assert_eq!(head, popped);
        assert_eq!(popped, Some(1));
        let (a, _b) = t.join().unwrap();
        assert!(a, "one cell was free");
    });
}

#[test]
fn stack_concurrent_pop_push_never_hands_out_an_index_twice() {
    loom::model(|| {
        let s = Arc::new(Stack::new_full(0, 2));
        let ts: Vec<_> = (0..2)
            .map(|_| {
                let s = s.clone();
                thread::spawn(move || {
                    let got = s.pop();
                    if let Some(i) = got {
                        s.push(i);
                    }
                    got
                })
            })
            .collect();
        for t in ts {
            t.join().unwrap();
        }
        let a = s.pop();
        let b = s.pop();
        assert!(a.is_some() && b.is_some() && a != b);
        assert_eq!(s.pop(), None);
    });
}

#[test]
fn stack_reserve_is_respected_concurrently() {
    loom::model(|| {
        let s = Arc::new(Stack::new_full(0, 3));
        let ts: Vec<_> = (0..2)
            .map(|_| {
                let s = s.clone();
                thread::spawn(move || s.pop_above(1))
            })
            .collect();
        let got: Vec<_> = ts.into_iter().filter_map(|t| t.join().unwrap()).collect();
        assert_eq!(got.len(), 2, "3 free, keep 1: two pops succeed");
        assert_eq!(s.len(), 1);
    });
}

/// Caller-runs (`src/engine/baton.rs`), as a model of its protocol over the real ring: a core
/// thread that serves, sets its `sleeping` word, looks at the ring again and gives up the baton
/// to park, against two submitters that push a request and then either take the baton and
/// serve, leave their request to the caller holding it, or ring the core. What must hold in
/// every interleaving: at most one holder serves at a time, and no request is left in the ring
/// with the core parked, nobody holding the baton and nobody having rung the core.
mod caller_runs {
    use loom::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicUsize, Ordering::SeqCst};
    use loom::sync::Arc;
    use loom::thread;
    use warden::ring::Ring;

    const FREE: u32 = 0;
    const CORE: u32 = 1;
    const CALLER: u32 = 2;

    struct Model {
        ring: Ring,
        baton: AtomicU32,
        sleeping: AtomicU32,
        parked: AtomicBool,
        woken: AtomicBool,
        holders: AtomicUsize,
        served: AtomicUsize,
    }

    impl Model {
        /// What a holder of the baton does: serve the ring, alone.
        fn serve_all(&self) {
            assert_eq!(self.holders.fetch_add(1, SeqCst), 0, "two holders at once");
            while self.ring.pop().is_some() {
                self.served.fetch_add(1, SeqCst);
            }
            self.holders.fetch_sub(1, SeqCst);
        }
        /// `shared::wake`.
        fn wake(&self) {
            if self.sleeping.load(SeqCst) != 0 && self.sleeping.swap(0, SeqCst) == 1 {
                self.woken.store(true, SeqCst);
            }
        }
        /// `CoreCell::run_here` (turns bounded as in the code).
        fn run_here(&self) -> bool {
            let (mut turns, mut waits) = (0, 0);
            loop {
                match self.baton.compare_exchange(FREE, CALLER, SeqCst, SeqCst) {
                    Ok(_) => {}
                    Err(CALLER) => return true,
                    Err(CORE) if self.sleeping.load(SeqCst) == 1 && waits < 2 => {
                        waits += 1;
                        thread::yield_now();
                        continue;
                    }
                    Err(_) => return turns > 0,
                }
                turns += 1;
                self.serve_all();
                self.baton.store(FREE, SeqCst);
                fence(SeqCst);
                if self.ring.is_empty() {
                    return true;
                }
                if turns >= 2 {
                    self.wake();
                    return true;
                }
            }
        }
    }

    #[test]
    fn no_request_is_stranded_and_one_holder_at_a_time() {
        let mut b = loom::model::Builder::new();
        b.preemption_bound = Some(2);
        b.check(|| {
            let m = Arc::new(Model {
                ring: Ring::new(4),
                baton: AtomicU32::new(CORE),
                sleeping: AtomicU32::new(0),
                parked: AtomicBool::new(false),
                woken: AtomicBool::new(false),
                holders: AtomicUsize::new(0),
                served: AtomicUsize::new(0),
            });
            let core = {
                let m = m.clone();
                thread::spawn(move || {
                    // `core_loop_sync`: step, then `idle` (no spin) until it parks
                    for _ in 0..3 {
                        m.serve_all();
                        m.sleeping.store(1, SeqCst);
                        fence(SeqCst);
                        if !m.ring.is_empty() {
                            m.sleeping.store(0, SeqCst);
                            continue;
                        }
                        m.parked.store(true, SeqCst);
                        m.baton.store(FREE, SeqCst); // `release_for_park`, then the futex
                        return;
                    }
                    // Still awake (a push seen half done keeps it looking, as the real core
                    // keeps stepping): it serves what comes; nothing to check.
                })
            };
            let callers: Vec<_> = (0..2u32)
                .map(|i| {
                    let m = m.clone();
                    thread::spawn(move || {
                        m.ring.push(i).unwrap();
                        fence(SeqCst);
                        if !m.run_here() {
                            m.wake();
                        }
                    })
                })
                .collect();
            core.join().unwrap();
            for c in callers {
                c.join().unwrap();
            }
            // The core parked with the baton FREE. A request still queued must have rung it
            // (it then wakes and serves); otherwise it waits for ever.
            if !m.parked.load(SeqCst) {
                return;
            }
            if !m.ring.is_empty() {
                assert!(
                    m.woken.load(SeqCst) && m.sleeping.load(SeqCst) == 0,
                    "a request stranded: queued, the core asleep and never rung"
                );
            } else {
                assert_eq!(m.served.load(SeqCst), 2);
            }
        });
    }
}
