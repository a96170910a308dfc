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
