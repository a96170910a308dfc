//! Eviction policy comparison: hit ratio of S3-FIFO and LRU on Zipf traces (printed), and the
//! cost of a lookup-or-insert step for each (criterion). `cargo bench --bench cache`.

use criterion::{black_box, Criterion};
use std::time::Duration;
use warden::cache::{CacheKey, Eviction, Shard, ShardConfig, TtlTable};
use warden::workload::{Rng, Zipf};
use warden::{Classification, Operation, Verdict};

fn key(i: u64) -> CacheKey {
    let h = xxhash_rust::xxh3::xxh3_128(&i.to_le_bytes());
    CacheKey {
        hash: h,
        tenant: 7,
        classification: Classification::Unclassified,
    }
}

fn shard(ev: Eviction, cap: usize) -> Shard {
    Shard::new(
        ShardConfig {
            capacity: cap,
            eviction: ev,
            verify_integrity: true,
            ttl: TtlTable::default(),
        },
        [3; 32],
    )
}

fn hit_ratio(ev: Eviction, universe: usize, cap: usize, s: f64, n: usize) -> f64 {
    let z = Zipf::new(universe, s);
    let mut rng = Rng(42);
    let mut sh = shard(ev, cap);
    let op = Operation::Check;
    let v = Verdict::default();
    let mut hits = 0;
    // Scatter ranks so popular keys are not adjacent integers.
    for _ in 0..n {
        let k = key((z.sample(rng.unit()) as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        if sh.get(&k, op, 1, 1).is_ok() {
            hits += 1;
        } else {
            sh.insert(&k, op, &v, 1, 1);
        }
    }
    hits as f64 / n as f64
}

fn main() {
    println!(
        "\n== eviction: hit ratio on Zipf traces (universe 1,000,000 keys, 2,000,000 requests) =="
    );
    println!(
        "{:<8} {:>10} {:>10} {:>10} {:>8}",
        "zipf s", "capacity", "s3fifo", "lru", "winner"
    );
    for s in [0.7, 0.9, 1.0, 1.2] {
        for cap in [10_000usize, 100_000] {
            let a = hit_ratio(Eviction::S3Fifo, 1_000_000, cap, s, 2_000_000);
            let b = hit_ratio(Eviction::Lru, 1_000_000, cap, s, 2_000_000);
            println!(
                "{s:<8} {cap:>10} {:>9.2}% {:>9.2}% {:>8}",
                a * 100.0,
                b * 100.0,
                if a >= b { "s3fifo" } else { "lru" }
            );
        }
    }
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
        .configure_from_args();
    let mut g = c.benchmark_group("lookup_or_insert_zipf1");
    for (name, ev) in [("s3fifo", Eviction::S3Fifo), ("lru", Eviction::Lru)] {
        let z = Zipf::new(1_000_000, 1.0);
        let mut rng = Rng(7);
        let keys: Vec<CacheKey> = (0..65_536)
            .map(|_| key((z.sample(rng.unit()) as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)))
            .collect();
        let mut sh = shard(ev, 65_536);
        let v = Verdict::default();
        let mut i = 0usize;
        g.bench_function(name, |b| {
            b.iter(|| {
                i = (i + 1) & 65_535;
                let k = &keys[i];
                if sh.get(k, Operation::Check, 1, 1).is_err() {
                    sh.insert(k, Operation::Check, &v, 1, 1);
                }
                black_box(&sh);
            })
        });
    }
    g.finish();
    c.final_summary();
}
