//! The cache-hit path allocates nothing after warm-up: a counting global allocator counts every
//! allocation in the process (caller threads and core threads alike) across thousands of hits.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use warden::config::EngineConfig;
use warden::{Config, Engine, Operation, Priority, Request, StageResult, Verdict};

struct Counting;
static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: delegates to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, SeqCst);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, SeqCst);
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static A: Counting = Counting;

#[test]
fn cache_hit_path_is_allocation_free() {
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
    let mut out = vec![Verdict::default(); reqs.len()];
    // warm-up: fill the cache, touch every slot and thread-local
    for _ in 0..3 {
        for r in &reqs {
            h.validate(r);
        }
        h.validate_batch_into(&reqs, Priority::High, &mut out);
    }
    let before = ALLOCS.load(SeqCst);
    let mut hits = 0;
    for _ in 0..200 {
        for r in &reqs {
            hits += h.validate(r).cache_hit as u32;
        }
        h.validate_batch_into(&reqs, Priority::High, &mut out);
        hits += out.iter().filter(|v| v.cache_hit).count() as u32;
    }
    let after = ALLOCS.load(SeqCst);
    assert_eq!(hits, 200 * 2 * 64, "every request was a cache hit");
    assert_eq!(after - before, 0, "allocations on the cache-hit path");
    engine.shutdown();
}
