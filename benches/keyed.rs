//! What a keyed cache key costs: the hash the submitter computes over a request's wire form on
//! every submission, for wire forms of 128 B, 1 KiB and 4 KiB. warden's keyed xxh3-128 (a
//! 192-byte secret) beside the unkeyed, seeded xxh3-128 it replaced, SipHash-1-3 (128-bit) and
//! keyed BLAKE3, the stronger choices it was weighed against. `cargo bench --bench keyed`.

use criterion::{black_box, BenchmarkId, Criterion, Throughput};
use std::hash::Hasher;
use std::time::Duration;
use warden::keyed::KeyedHash;

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    let keyed = KeyedHash::random();
    let blake_key = [7u8; 32];
    let mut g = c.benchmark_group("request_key");
    for n in [128usize, 1024, 4096] {
        let wire: Vec<u8> = (0..n).map(|i| (i * 31 % 251) as u8).collect();
        g.throughput(Throughput::Bytes(n as u64));
        g.bench_with_input(
            BenchmarkId::new("xxh3_128_seeded_unkeyed", n),
            &wire,
            |b, w| b.iter(|| xxhash_rust::xxh3::xxh3_128_with_seed(black_box(&w[24..]), 0x1234)),
        );
        g.bench_with_input(
            BenchmarkId::new("xxh3_128_secret_warden", n),
            &wire,
            |b, w| b.iter(|| keyed.request(black_box(w))),
        );
        g.bench_with_input(BenchmarkId::new("siphash13_128", n), &wire, |b, w| {
            b.iter(|| {
                let mut h = siphasher::sip128::SipHasher13::new_with_keys(1, 2);
                h.write(black_box(&w[24..]));
                siphasher::sip128::Hasher128::finish128(&h).as_u128()
            })
        });
        g.bench_with_input(BenchmarkId::new("blake3_keyed", n), &wire, |b, w| {
            b.iter(|| *blake3::keyed_hash(&blake_key, black_box(&w[24..])).as_bytes())
        });
    }
    g.finish();
    c.final_summary();
}
