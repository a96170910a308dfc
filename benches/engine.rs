//! Engine benchmarks: the cache hit on the owning core, the foreign-thread round trip on a hit,
//! batches; each beside the `Mutex<HashMap>` + thread-pool design in the same run.
//! `cargo bench --bench engine` (prints percentile tables first, then criterion's estimates).

mod common;

use common::{lookup_or_compute, PoolBaseline};
use criterion::{black_box, BenchmarkId, Criterion, Throughput};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use warden::cache::{CacheKey, Shard};
use warden::config::EngineConfig;
use warden::{Config, Engine, Limits, Operation, Priority, Request, StageResult, Verdict};

fn engine(cores: usize) -> Engine {
    Engine::builder()
        .config(Config {
            engine: EngineConfig {
                cores,
                ..Default::default()
            },
            ..Default::default()
        })
        .custom(1, "pass", |_, _| StageResult::Pass)
        .build()
        .unwrap()
}

struct Pop {
    agents: Vec<String>,
    content: Vec<u8>,
}
impl Pop {
    fn new(n: usize, content_bytes: usize) -> Pop {
        Pop {
            agents: (0..n).map(|i| format!("agent-{i}")).collect(),
            content: vec![b'x'; content_bytes],
        }
    }
    fn req(&self, i: usize) -> Request<'_> {
        Request::new(Operation::Custom(1))
            .tenant("acme")
            .agent(&self.agents[i % self.agents.len()])
            .tool("http.get")
            .resource("https://api.example.com/v1/items")
            .content(&self.content)
    }
}

fn percentiles(name: &str, n: usize, mut f: impl FnMut(usize)) -> (u64, u64) {
    let mut h = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 10_000_000_000, 3).unwrap();
    for i in 0..n / 10 {
        f(i);
    }
    for i in 0..n {
        let t = Instant::now();
        f(i);
        h.record(t.elapsed().as_nanos() as u64).unwrap();
    }
    let (p50, p99) = (h.value_at_quantile(0.5), h.value_at_quantile(0.99));
    println!(
        "{name:<44} p50 {:>7} ns  p99 {:>7} ns  p999 {:>8} ns",
        p50,
        p99,
        h.value_at_quantile(0.999)
    );
    (p50, p99)
}

/// The owning core's work on a hit: read the header, take the key the submitter computed, probe
/// the shard, check tenant, classification, epoch, TTL and the blake3 tag. Beside it: the same
/// lookup in a `Mutex<HashMap>`, the tag switched off, and the submitter's key computation.
fn hit_on_core(c: &mut Criterion) {
    let pop = Pop::new(1024, 1024);
    let wires: Vec<Vec<u8>> = (0..1024)
        .map(|i| {
            let r = pop.req(i);
            let mut w = vec![0u8; r.encoded_len()];
            r.encode(&mut w).unwrap();
            w
        })
        .collect();
    let keyed = &*common::KEYED;
    let keys: Vec<CacheKey> = wires
        .iter()
        .map(|w| {
            let r = Request::decode(w).unwrap();
            CacheKey::from_wire(keyed, w, r.classification, r.tenant)
        })
        .collect();
    let allow = Verdict {
        decision: warden::Decision::Allow,
        ..Verdict::deny(warden::DenyReason::None)
    };
    let mk = |verify: bool| {
        let mut cfg = Config::default().cache.shard();
        cfg.verify_integrity = verify;
        let mut shard = Shard::new(cfg, [9; 32]);
        for k in &keys {
            shard.insert(k, Operation::Custom(1), &allow, 0, 1);
        }
        shard
    };
    let (mut tagged, mut untagged) = (mk(true), mk(false));
    let core_hit = |shard: &mut Shard, i: usize| -> Verdict {
        let w = &wires[i & 1023];
        let op = Operation::from_code(w[24], u16::from_le_bytes([w[26], w[27]])).unwrap();
        let class = warden::Classification::from_code(w[25]).unwrap();
        let k = CacheKey {
            classification: class,
            ..keys[i & 1023]
        };
        shard.get(&k, op, 1, 1).unwrap()
    };
    let baseline: Mutex<HashMap<u128, Verdict>> = Mutex::new(HashMap::new());
    for w in &wires {
        lookup_or_compute(&baseline, w);
    }
    let base_hit =
        |i: usize| -> Verdict { *baseline.lock().unwrap().get(&keys[i & 1023].hash).unwrap() };
    let limits = Limits::default();
    let submit_key = |i: usize| -> CacheKey {
        let w = &wires[i & 1023];
        let r = Request::decode(w).unwrap();
        limits.check(&r).unwrap();
        CacheKey::from_wire(keyed, w, r.classification, r.tenant)
    };
    println!(
        "\n== cache hit on the owning core (1 KiB content, 1024 keys; timer overhead included) =="
    );
    percentiles(
        "warden core hit (header+probe+checks+tag)",
        1_000_000,
        |i| {
            black_box(core_hit(&mut tagged, i));
        },
    );
    percentiles("baseline Mutex<HashMap> hit (same key)", 1_000_000, |i| {
        black_box(base_hit(i));
    });
    percentiles("empty timed loop (timer overhead)", 1_000_000, |i| {
        black_box(i);
    });
    let mut g = c.benchmark_group("hit_on_core");
    g.throughput(Throughput::Elements(1));
    let mut i = 0usize;
    g.bench_function("warden_core_hit", |b| {
        b.iter(|| {
            i += 1;
            black_box(core_hit(&mut tagged, i))
        })
    });
    g.bench_function("warden_core_hit_no_tag", |b| {
        b.iter(|| {
            i += 1;
            black_box(core_hit(&mut untagged, i))
        })
    });
    g.bench_function("baseline_mutex_hashmap_hit", |b| {
        b.iter(|| {
            i += 1;
            black_box(base_hit(i))
        })
    });
    g.bench_function("submitter_decode_check_key_1k", |b| {
        b.iter(|| {
            i += 1;
            black_box(submit_key(i))
        })
    });
    g.bench_function("baseline_full_decode_key_lock_lookup_1k", |b| {
        b.iter(|| {
            i += 1;
            black_box(lookup_or_compute(&baseline, &wires[i & 1023]))
        })
    });
    g.finish();
}

/// Foreign thread → core → reply on a cache hit.
fn foreign_round_trip(c: &mut Criterion) {
    let pop = Pop::new(1024, 1024);
    let e = engine(1);
    let h = e.handle();
    for i in 0..1024 {
        h.validate(&pop.req(i));
    }
    let pool = PoolBaseline::new(1);
    for i in 0..1024 {
        pool.validate(&pop.req(i));
    }
    println!("\n== foreign thread -> core -> reply, cache hit (1 core / 1 pool worker) ==");
    percentiles("warden Handle::validate", 300_000, |i| {
        black_box(h.validate(&pop.req(i)));
    });
    percentiles("baseline thread pool + Mutex<HashMap>", 300_000, |i| {
        black_box(pool.validate(&pop.req(i)));
    });
    let mut g = c.benchmark_group("foreign_round_trip_hit");
    g.throughput(Throughput::Elements(1));
    let mut i = 0usize;
    g.bench_function("warden_validate", |b| {
        b.iter(|| {
            i += 1;
            black_box(h.validate(&pop.req(i)))
        })
    });
    g.bench_function("baseline_pool_mutex_hashmap", |b| {
        b.iter(|| {
            i += 1;
            black_box(pool.validate(&pop.req(i)))
        })
    });
    g.finish();
    drop(pool);
    e.shutdown();
}

/// validate_batch_into of hits, by batch size.
fn batch(c: &mut Criterion) {
    let pop = Pop::new(1024, 256);
    let e = engine(1);
    let h = e.handle();
    let reqs: Vec<Request> = (0..256).map(|i| pop.req(i)).collect();
    let mut out = vec![Verdict::default(); 256];
    h.validate_batch_into(&reqs, Priority::High, &mut out);
    let pool = PoolBaseline::new(1);
    let mut g = c.benchmark_group("batch_hits");
    for n in [16usize, 64, 256] {
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("warden_validate_batch", n), &n, |b, &n| {
            b.iter(|| h.validate_batch_into(&reqs[..n], Priority::High, &mut out[..n]))
        });
        g.bench_with_input(
            BenchmarkId::new("baseline_pool_sequential", n),
            &n,
            |b, &n| {
                b.iter(|| {
                    for r in &reqs[..n] {
                        black_box(pool.validate(r));
                    }
                })
            },
        );
    }
    g.finish();
    e.shutdown();
}

/// Per-core capacity on cache hits: the core is held by a gate request while 8,192 hits queue in
/// its rings; the gate opens and the time until every verdict is written measures what the core
/// alone sustains (the submitting thread is out of the timed window). Repeated 20 times.
fn drain_rate() {
    use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
    use std::sync::Arc;
    const N: usize = 8192;
    let gate = Arc::new(AtomicBool::new(false));
    let g = gate.clone();
    let mut cfg = Config {
        engine: EngineConfig {
            cores: 1,
            reply_slots: N + 64,
            ..Default::default()
        },
        ..Default::default()
    };
    cfg.rings.capacity.medium = N as u64;
    let e = Engine::builder()
        .config(cfg)
        .custom(1, "pass", |_, _| StageResult::Pass)
        .custom(9, "gate", move |_, _| {
            while !g.load(SeqCst) {
                std::hint::spin_loop();
            }
            StageResult::Pass
        })
        .build()
        .unwrap();
    let h = e.handle();
    let pop = Pop::new(1024, 256);
    for i in 0..1024 {
        h.validate(&pop.req(i));
    }
    let mut rates = vec![];
    for round in 0..20 {
        gate.store(false, SeqCst);
        let h2 = h.clone();
        let gate_req = std::thread::spawn(move || {
            let agent = format!("gate-{round}");
            h2.validate(
                &Request::new(Operation::Custom(9))
                    .tenant("acme")
                    .agent(&agent),
            )
        });
        std::thread::sleep(Duration::from_millis(20));
        let reqs: Vec<Request> = (0..N).map(|i| pop.req(i)).collect();
        let mut futs: Vec<_> = reqs.iter().map(|r| h.validate_async(r)).collect();
        // One ring, served in order: the last request queued is the last one answered.
        let last = futs.pop().unwrap();
        let t0 = Instant::now();
        gate.store(true, SeqCst);
        assert!(pollster::block_on(last).cache_hit);
        let dt = t0.elapsed();
        for f in futs {
            assert!(pollster::block_on(f).cache_hit);
        }
        gate_req.join().unwrap();
        rates.push(N as f64 / dt.as_secs_f64());
    }
    rates.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "\n== per-core drain rate on cache hits (1 core, 8,192 queued, 20 rounds) ==\n\
         median {:.2} M/s   min {:.2} M/s   max {:.2} M/s",
        rates[10] / 1e6,
        rates[0] / 1e6,
        rates[19] / 1e6
    );
    e.shutdown();
}

fn main() {
    drain_rate();
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
        .configure_from_args();
    hit_on_core(&mut c);
    foreign_round_trip(&mut c);
    batch(&mut c);
    c.final_summary();
}
