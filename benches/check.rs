//! The full `Check`: identity (Ed25519 token, replay window, revocation), rate limits,
//! authorization, input checks and the threat scan, over 1 KiB of prose, through a 1-core engine from a foreign
//! thread. Measured on a verdict-cache miss (token already verified, and on its first
//! presentation) and on a hit; beside it, the same engine with no policy (shape and input checks
//! only); then misses over the varied speed corpus (`benches/corpus/`: 1 KiB texts of prompts,
//! role-play prompts, documents, licences, manual pages, code and tables), where the repeated
//! sentence is the best case. `cargo bench --bench check`.

mod corpus;

use criterion::{black_box, Criterion};
use ed25519_dalek::{Signer, SigningKey};
use std::time::{Duration, Instant};
use warden::config::{EngineConfig, IdentityConfig, KeyRef};
use warden::identity::token::{assemble, encode_claims, Alg, Claims};
use warden::policy::Snapshot;
use warden::{Classification, Config, Engine, Operation, Request, SecurityLevel};

const POLICY: &str = r#"
[[tenants]]
name = "acme"
[[roles]]
name = "analyst"
tools = ["fs.read"]
[[tools]]
name = "fs.read"
level = "restricted"
classification = "cui"
[tools.resources]
acme = ["/data/acme/**"]
[[agents]]
name = "planner-1"
tenant = "acme"
role = "analyst"
clearance = "secret"
"#;

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn mint(sk: &SigningKey, nonce: u64) -> String {
    let now = now_ms();
    let c = Claims {
        alg: Alg::Ed25519,
        key_id: 1,
        clearance: Classification::Secret,
        max_level: SecurityLevel::Restricted,
        issued_at_ms: now,
        expires_at_ms: now + 3_600_000,
        nonce,
        tenant: "acme",
        agent: "planner-1",
        role: "analyst",
        holder: None,
    };
    let signed = encode_claims(&c).unwrap();
    assemble(&signed, &sk.sign(&signed).to_bytes())
}

fn percentiles(name: &str, n: usize, mut f: impl FnMut(usize)) {
    let mut h = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 10_000_000_000, 3).unwrap();
    for i in 0..n {
        let t = Instant::now();
        f(i);
        h.record(t.elapsed().as_nanos() as u64).unwrap();
    }
    println!(
        "{name:<52} p50 {:>7} ns  p99 {:>8} ns  mean {:>8.0} ns",
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.99),
        h.mean()
    );
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let sk = SigningKey::from_bytes(&[42u8; 32]);
    let pubfile = dir.path().join("ed.pub");
    std::fs::write(&pubfile, sk.verifying_key().as_bytes()).unwrap();
    let engine_cfg = EngineConfig {
        cores: 1,
        ..Default::default()
    };
    // the engine under test, and the same engine without the threat stage: the miss's scan
    // share, measured in the same run
    let build = |scan: bool| {
        Engine::builder()
            .config(Config {
                engine: engine_cfg.clone(),
                identity: IdentityConfig {
                    require_token: true,
                    ed25519_public_keys: vec![KeyRef {
                        id: 1,
                        file: pubfile.display().to_string(),
                        env: String::new(),
                    }],
                    // A 2 s window (nonces live up to 3 s: expiry is kept in whole seconds) over
                    // 8 M entries: the hit loop's ~700 K requests/s keep it about a quarter full.
                    // (A 5 s window over 4 M entries filled up once hits took 1.4 µs, and the
                    // table then denied, failing closed, with `replay_window_full`.)
                    max_clock_skew_ms: 1_000,
                    replay_window_ms: 2_000,
                    replay_capacity: 1 << 23,
                    ..Default::default()
                },
                threat: warden::config::ThreatConfig {
                    enabled: scan,
                    ..Default::default()
                },
                ..Default::default()
            })
            .policy(Snapshot::from_toml(POLICY, "bench.toml").unwrap())
            .build()
            .unwrap()
    };
    let with_policy = build(true);
    let no_scan = build(false);
    let plain = Engine::builder()
        .config(Config {
            engine: engine_cfg,
            ..Default::default()
        })
        .build()
        .unwrap();
    let token = mint(&sk, 1);
    let fresh: Vec<String> = (0..3000).map(|i| mint(&sk, 1000 + i)).collect();
    // 1 KiB of ordinary prose (the threat stage scans it on every miss); the first 16 bytes
    // carry a hex counter so that each miss is a distinct request.
    let prose =
        b"Please summarise the attached report for the board and flag any figures that look off. ";
    let mut content: Vec<u8> = prose.iter().copied().cycle().take(1024).collect();
    let stamp = |content: &mut [u8], n: u64| {
        for (k, c) in content[..16].iter_mut().enumerate() {
            *c = b"0123456789abcdef"[(n >> (4 * k)) as usize & 15];
        }
    };
    let (h, hp, hn) = (with_policy.handle(), plain.handle(), no_scan.handle());
    let mut nonce = 1u64;
    // the verdict on one request of the agent's with this token, content and nonce
    let verdict = |h: &warden::Handle, tok: &str, content: &[u8], nonce: u64| {
        h.validate(
            &Request::new(Operation::Check)
                .tenant("acme")
                .agent("planner-1")
                .tool("fs.read")
                .resource("/data/acme/reports/q3.csv")
                .classification(Classification::Cui)
                .credential(tok.as_bytes())
                .content(content)
                .nonce(nonce)
                .timestamp_ms(now_ms()),
        )
    };
    let request = |h: &warden::Handle, tok: &str, content: &[u8], nonce: u64| -> bool {
        let v = verdict(h, tok, content, nonce);
        assert!(v.is_allowed(), "{v:?}");
        v.cache_hit
    };
    let req = |tok: &str, content: &[u8], nonce: u64| request(&h, tok, content, nonce);
    println!("\n== full Check, 1 KiB content, 1 core, foreign thread (timer overhead ~47 ns) ==");
    percentiles("miss, token verified before (Ed25519)", 50_000, |i| {
        nonce += 1;
        stamp(&mut content, i as u64 + 1_000_000);
        assert!(!req(&token, &content, nonce));
    });
    percentiles("miss without the threat stage (same engine)", 50_000, |i| {
        nonce += 1;
        stamp(&mut content, i as u64 + 5_000_000);
        assert!(!request(&hn, &token, &content, nonce));
    });
    percentiles(
        "miss, token's first presentation (Ed25519 verify)",
        fresh.len(),
        |i| {
            nonce += 1;
            stamp(&mut content, i as u64 + 9_000_000);
            assert!(!req(&fresh[i], &content, nonce));
        },
    );
    // the varied corpus: 2,800 English texts of 1 KiB, each made distinct per request by the
    // same stamp (the scan may deny some: a verdict is a verdict, its time is measured)
    let mut varied: Vec<Vec<u8>> = corpus::texts(1024, 400)
        .into_iter()
        .filter(|(c, _)| corpus::ENGLISH.contains(&c.as_str()))
        .flat_map(|(_, t)| t)
        .collect();
    let mut denied = 0u32;
    percentiles("miss, varied 1 KiB English (speed corpus)", 50_000, |i| {
        nonce += 1;
        let n = varied.len();
        let text = &mut varied[i % n];
        stamp(text, i as u64 + 20_000_000);
        let v = verdict(&h, &token, text, nonce);
        denied += u32::from(!v.is_allowed());
        assert!(!v.cache_hit);
    });
    println!("  ({denied} of 50000 denied by the scan)");
    stamp(&mut content, 0);
    nonce += 1;
    req(&token, &content, nonce);
    percentiles("hit (identity, rate, authz still run)", 100_000, |_| {
        nonce += 1;
        assert!(req(&token, &content, nonce));
    });
    fn plain_req(content: &[u8]) -> Request<'_> {
        Request::new(Operation::Check)
            .tenant("acme")
            .agent("planner-1")
            .tool("fs.read")
            .resource("/data/acme/reports/q3.csv")
            .content(content)
    }
    percentiles("baseline: same engine, no policy, hit", 100_000, |_| {
        black_box(hp.validate(&plain_req(&content)));
    });
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(1))
        .sample_size(10)
        .configure_from_args();
    let mut g = c.benchmark_group("check_1k");
    let mut i = 0u64;
    g.bench_function("miss_token_cached", |b| {
        b.iter(|| {
            i += 1;
            nonce += 1;
            stamp(&mut content, i + 50_000_000);
            req(&token, &content, nonce)
        })
    });
    stamp(&mut content, 0);
    g.bench_function("hit", |b| {
        b.iter(|| {
            nonce += 1;
            req(&token, &content, nonce)
        })
    });
    g.bench_function("baseline_no_policy_hit", |b| {
        b.iter(|| black_box(hp.validate(&plain_req(&content))))
    });
    g.finish();
    c.final_summary();
}
