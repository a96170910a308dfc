//! What delegation and trust cost on the request path, each beside its baseline from the same
//! run. `cargo bench --bench delegation`.
//!
//! - Identity alone (`Identity::check_at`, no engine): an ordinary Ed25519 token and a
//!   credential delegated once, on their first presentation (every signature checked; for the
//!   delegated one also with its root already seen) and repeated (verified-token cache hit).
//! - The engine: a `Check` hit with trust scores off, and on with a policy that consults them
//!   (`min_trust` on the tool's level, `[trust] low`), alternating in rounds so drift in the
//!   machine falls on both alike; and the score lookup alone.

use criterion::{black_box, Criterion};
use ed25519_dalek::{Signer, SigningKey};
use std::time::{Duration, Instant};
use warden::identity::chain::{self, LinkSpec};
use warden::identity::token::{assemble, encode_claims, Alg, Claims};
use warden::identity::{Identity, Key, Settings};
use warden::{Classification, Config, Engine, Operation, Request, SecurityLevel};

const NOW: u64 = 1_800_000_000_000;

fn root(sk: &SigningKey, nonce: u64, delegable: bool) -> (String, [u8; 32]) {
    let holder = delegable.then(|| chain::new_holder(2).unwrap());
    let c = Claims {
        alg: Alg::Ed25519,
        key_id: 1,
        clearance: Classification::Secret,
        max_level: SecurityLevel::Restricted,
        issued_at_ms: NOW - 1000,
        expires_at_ms: NOW + 3_600_000,
        nonce,
        tenant: "acme",
        agent: "ops-bot",
        role: "",
        holder: holder.map(|h| h.0),
    };
    let signed = encode_claims(&c).unwrap();
    let t = assemble(&signed, &sk.sign(&signed).to_bytes());
    match holder {
        Some((_, secret)) => (chain::with_proof(&t, &secret), secret),
        None => (t, [0; 32]),
    }
}

fn delegated(root: &(String, [u8; 32]), nonce: u64) -> String {
    chain::append(
        &root.0,
        &root.1,
        &LinkSpec {
            agent: "planner-1",
            clearance: Classification::Cui,
            max_level: SecurityLevel::Restricted,
            expires_at_ms: NOW + 600_000,
            depth: 0,
            resource_prefix: "/data/acme/reports",
            tools: &["fs.read"],
        },
        nonce,
    )
    .unwrap()
    .0
}

fn req<'a>(agent: &'a str, cred: &'a str, nonce: u64) -> Request<'a> {
    Request::new(Operation::Check)
        .tenant("acme")
        .agent(agent)
        .tool("fs.read")
        .resource("/data/acme/reports/q3.csv")
        .classification(Classification::Cui)
        .credential(cred.as_bytes())
        .nonce(nonce)
        .timestamp_ms(NOW)
}

/// Median and p99 of `f` over `n` calls, in ns.
fn timed(n: usize, mut f: impl FnMut(usize)) -> (u64, u64) {
    let mut h = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 10_000_000_000, 3).unwrap();
    for i in 0..n {
        let t = Instant::now();
        f(i);
        h.record(t.elapsed().as_nanos() as u64).unwrap();
    }
    (h.value_at_quantile(0.5), h.value_at_quantile(0.99))
}

fn row(name: &str, (p50, p99): (u64, u64), base: Option<u64>) {
    let ratio = base.map_or(String::new(), |b| {
        format!("  {:.2}x", p50 as f64 / b as f64)
    });
    println!("{name:<58} p50 {p50:>7} ns  p99 {p99:>7} ns{ratio}");
}

const POLICY: &str = r#"
[trust]
low = 0.5
[levels.restricted]
memory_mb = 100
cpu_ms = 5000
file_mb = 10
min_trust = 0.3
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

fn main() {
    let sk = SigningKey::from_bytes(&[42u8; 32]);
    // every request of the run is at the same instant, so no nonce expires: room for them all
    let id = Identity::new(
        vec![(1, Key::Ed25519(sk.verifying_key()))],
        Settings {
            replay_capacity: 1 << 23,
            ..Settings::default()
        },
    );
    const N: usize = 2000;
    let plain: Vec<String> = (0..N as u64).map(|i| root(&sk, i, false).0).collect();
    let roots: Vec<_> = (0..N as u64).map(|i| root(&sk, i, true)).collect();
    let cold: Vec<String> = roots.iter().map(|r| delegated(r, 1)).collect();
    let roots2: Vec<_> = (0..N as u64)
        .map(|i| root(&sk, N as u64 + i, true))
        .collect();
    let warm: Vec<String> = roots2.iter().map(|r| delegated(r, 2)).collect();
    let mut nonce = 0u64;
    let mut next = || {
        nonce += 1;
        nonce
    };
    println!("\n== identity alone (Identity::check_at), one thread ==");
    let base = timed(N, |i| {
        assert!(id.check_at(&req("ops-bot", &plain[i], next()), NOW).is_ok());
    });
    row("ordinary token, first presentation (1 verify)", base, None);
    let t = timed(N, |i| {
        assert!(id
            .check_at(&req("planner-1", &cold[i], next()), NOW)
            .is_ok());
    });
    row(
        "delegated once, first presentation, root unseen",
        t,
        Some(base.0),
    );
    for r in &roots2 {
        assert!(id.check_at(&req("ops-bot", &r.0, next()), NOW).is_ok());
    }
    let t = timed(N, |i| {
        assert!(id
            .check_at(&req("planner-1", &warm[i], next()), NOW)
            .is_ok());
    });
    row(
        "delegated once, first presentation, root seen before",
        t,
        Some(base.0),
    );
    let rep = timed(200_000, |i| {
        assert!(id
            .check_at(&req("ops-bot", &plain[i % N], next()), NOW)
            .is_ok());
    });
    row("ordinary token, repeated (cache hit)", rep, None);
    let t = timed(200_000, |i| {
        let r = id.check_at(&req("planner-1", &cold[i % N], next()), NOW);
        assert!(r.is_ok(), "{r:?}");
    });
    row("delegated once, repeated (cache hit)", t, Some(rep.0));

    // ---- trust on a Check hit ----
    let build = |trust: bool| {
        Engine::builder()
            .config(Config {
                engine: warden::config::EngineConfig {
                    cores: 1,
                    ..Default::default()
                },
                trust: warden::trust::TrustConfig {
                    enabled: trust,
                    ..Default::default()
                },
                ..Default::default()
            })
            .policy(warden::policy::Snapshot::from_toml(POLICY, "bench.toml").unwrap())
            .build()
            .unwrap()
    };
    let (off, on) = (build(false), build(true));
    let (ho, hn) = (off.handle(), on.handle());
    let hit = Request::new(Operation::Check)
        .tenant("acme")
        .agent("planner-1")
        .tool("fs.read")
        .resource("/data/acme/reports/q3.csv");
    assert!(ho.validate(&hit).is_allowed());
    let v = hn.validate(&hit);
    assert!(v.is_allowed() && v.trust_pct == 80, "{v:?}");
    println!("\n== Check hit, 1 core, foreign thread: trust off and on, 10 alternating rounds ==");
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..10 {
        a.push(timed(50_000, |_| assert!(ho.validate(&hit).cache_hit)).0);
        b.push(timed(50_000, |_| assert!(hn.validate(&hit).cache_hit)).0);
    }
    a.sort_unstable();
    b.sort_unstable();
    println!(
        "hit p50, median of rounds: trust off {} ns, on {} ns (difference {} ns)",
        a[5],
        b[5],
        b[5] as i64 - a[5] as i64
    );
    let t = warden::trust::Trust::new(
        &warden::trust::TrustConfig::default(),
        warden::ThreatLevel::High,
    );
    t.adjust(77, -0.5, 1_000_000_000);
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .configure_from_args();
    let mut g = c.benchmark_group("parse");
    g.bench_function("ordinary_token", |bch| {
        bch.iter(|| {
            let mut buf = [0u8; 2 * warden::identity::token::MAX_TOKEN_BYTES];
            black_box(chain::parse(black_box(plain[0].as_bytes()), &mut buf).is_ok())
        })
    });
    g.bench_function("delegated_once", |bch| {
        bch.iter(|| {
            let mut buf = [0u8; 2 * warden::identity::token::MAX_TOKEN_BYTES];
            black_box(chain::parse(black_box(cold[0].as_bytes()), &mut buf).is_ok())
        })
    });
    g.bench_function("resource_resolve", |bch| {
        bch.iter(|| {
            black_box(warden::inputs::resolve(
                black_box("/data/acme/reports/q3.csv"),
                &["https"],
                |_| 1,
            ))
        })
    });
    g.finish();
    let mut g = c.benchmark_group("trust");
    let mut now = 2_000_000_000u64;
    g.bench_function("score_of_an_agent_with_an_entry", |bch| {
        bch.iter(|| {
            now += 1000;
            black_box(t.score(black_box(77), now))
        })
    });
    g.bench_function("score_of_an_agent_at_the_baseline", |bch| {
        bch.iter(|| black_box(t.score(black_box(78), now)))
    });
    g.bench_function("check_hit_trust_off", |bch| {
        bch.iter(|| black_box(ho.validate(&hit)))
    });
    g.bench_function("check_hit_trust_on", |bch| {
        bch.iter(|| black_box(hn.validate(&hit)))
    });
    g.finish();
    c.final_summary();
}
