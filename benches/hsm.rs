//! HSM speed on a real SoftHSM2 token. `cargo bench --bench hsm` (it makes its own throw-away
//! token with tools/softhsm.sh).
//!
//! 1. Latency of each operation from one caller: through the HSM core (`Keys`) against direct
//!    cryptoki calls on a session of the same token, in the same run (the HSM core's cost is
//!    the difference), and the software keystore for scale.
//! 2. Throughput of HMAC sign at equal concurrency (1, 2, 4 callers): direct calls (each caller
//!    its own session) against the HSM core with batches of 32 and with batches of 1.
//! 3. A `Check` with an HMAC token tagged by the token: a repeat presentation (verified-token
//!    cache hit, no HSM) against a first presentation (a trip through the HSM core).

use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use std::time::{Duration, Instant};
use warden::config::{HsmConfig, IdentityConfig};
use warden::identity::token::{assemble, encode_claims, Alg, Claims};
use warden::{Classification, Engine, Operation, Request, SecurityLevel};

#[path = "../tests/common/softhsm.rs"]
mod softhsm;

struct Token {
    module: String,
    pin: String,
}

fn token() -> Token {
    // The bench's own tokens (not the tests'): setup() makes them when the variables are unset.
    let (module, pin, _) = softhsm::setup();
    Token { module, pin }
}

fn hsm_config(t: &Token, batch: usize) -> HsmConfig {
    HsmConfig {
        module: t.module.clone(),
        token_label: "warden-test".into(),
        pin_env: String::new(),
        pin_file: t.pin.clone(),
        batch_size: batch,
        pin: false,
        ..HsmConfig::default()
    }
}

struct Direct {
    s: Session,
    hmac: ObjectHandle,
    aes: ObjectHandle,
    sign: ObjectHandle,
}

fn direct(t: &Token) -> Direct {
    let ctx = warden::hsm::pkcs11::module(&t.module).unwrap();
    let slot = warden::hsm::pkcs11::find_slot(&ctx, "warden-test")
        .ok()
        .unwrap();
    let s = ctx.open_ro_session(slot).unwrap();
    let pin = std::fs::read_to_string(&t.pin).unwrap();
    let _ = s.login(
        UserType::User,
        Some(&cryptoki::types::AuthPin::from(pin.trim().to_string())),
    );
    let find = |class, label: &str| {
        s.find_objects(&[
            Attribute::Class(class),
            Attribute::Label(label.as_bytes().to_vec()),
        ])
        .unwrap()[0]
    };
    let (hmac, aes, sign) = (
        find(ObjectClass::SECRET_KEY, "warden-token-hmac"),
        find(ObjectClass::SECRET_KEY, "warden-data"),
        find(ObjectClass::PRIVATE_KEY, "warden-signing"),
    );
    Direct { s, hmac, aes, sign }
}

/// Median and p99 of `n` timed calls, microseconds.
fn time(n: usize, mut f: impl FnMut()) -> (f64, f64) {
    for _ in 0..n / 10 {
        f();
    }
    let mut v: Vec<u64> = (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_nanos() as u64
        })
        .collect();
    v.sort_unstable();
    (v[n / 2] as f64 / 1000.0, v[n * 99 / 100] as f64 / 1000.0)
}

fn latency(t: &Token) {
    println!("== latency from one caller, µs (p50 / p99), 2000 calls each ==");
    let e = engine(t, 32, IdentityConfig::default());
    let keys = e.keys();
    let d = direct(t);
    let soft = warden::hsm::soft::SoftKeys::ephemeral().unwrap();
    let data = [7u8; 256];
    let pt = [5u8; 1024];
    let tag = keys.hmac_sign(&data).unwrap();
    let sealed = keys.encrypt(Classification::Secret, &pt, b"aad").unwrap();
    let n = 2000;
    let row = |name: &str, direct: (f64, f64), core: (f64, f64), soft: (f64, f64)| {
        println!(
            "{name:<22} direct {:>7.1} / {:>7.1}   hsm core {:>7.1} / {:>7.1}   ({:+.0} % at p50)   software {:>6.2} / {:>6.2}",
            direct.0,
            direct.1,
            core.0,
            core.1,
            (core.0 / direct.0 - 1.0) * 100.0,
            soft.0,
            soft.1
        );
    };
    row(
        "hmac sign 256 B",
        time(n, || {
            d.s.sign(&Mechanism::Sha256Hmac, d.hmac, &data).unwrap();
        }),
        time(n, || {
            keys.hmac_sign(&data).unwrap();
        }),
        time(n, || {
            soft.hmac_sign(&data);
        }),
    );
    row(
        "hmac verify 256 B",
        time(n, || {
            d.s.verify(&Mechanism::Sha256Hmac, d.hmac, &data, &tag)
                .unwrap();
        }),
        time(n, || {
            keys.hmac_verify(&data, &tag).unwrap();
        }),
        time(n, || {
            soft.hmac_verify(&data, &tag);
        }),
    );
    let mut out = Vec::with_capacity(2048);
    row(
        "aes-gcm encrypt 1 KiB",
        time(n, || {
            let mut iv = [1u8; 12];
            let p = GcmParams::new(&mut iv, b"aad", 128.into()).unwrap();
            d.s.encrypt(&Mechanism::AesGcm(p), d.aes, &pt).unwrap();
        }),
        time(n, || {
            keys.encrypt(Classification::Secret, &pt, b"aad").unwrap();
        }),
        time(n, || {
            out.clear();
            soft.encrypt(&[1u8; 12], &pt, b"aad", &mut out);
        }),
    );
    let direct_sealed = {
        let mut iv = [1u8; 12];
        let p = GcmParams::new(&mut iv, b"aad", 128.into()).unwrap();
        d.s.encrypt(&Mechanism::AesGcm(p), d.aes, &pt).unwrap()
    };
    let mut soft_sealed = Vec::new();
    soft.encrypt(&[1u8; 12], &pt, b"aad", &mut soft_sealed);
    row(
        "aes-gcm decrypt 1 KiB",
        time(n, || {
            let mut iv = [1u8; 12];
            let p = GcmParams::new(&mut iv, b"aad", 128.into()).unwrap();
            d.s.decrypt(&Mechanism::AesGcm(p), d.aes, &direct_sealed)
                .unwrap();
        }),
        time(n, || {
            keys.decrypt(Classification::Secret, &sealed, b"aad")
                .unwrap();
        }),
        time(n, || {
            out.clear();
            soft.decrypt(&[1u8; 12], &soft_sealed, b"aad", &mut out)
                .unwrap();
        }),
    );
    row(
        "ed25519 sign 256 B",
        time(n / 4, || {
            let m = Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure));
            d.s.sign(&m, d.sign, &data).unwrap();
        }),
        time(n / 4, || {
            keys.sign(&data).unwrap();
        }),
        time(n / 4, || {
            soft.sign(&data);
        }),
    );
    let m = keys.metrics().unwrap();
    println!(
        "time inside the HSM core per operation (all of the above): p50 {:.1} µs",
        m.latency.p50_ns as f64 / 1000.0
    );
}

fn throughput(t: &Token) {
    println!("== hmac sign throughput, operations/s (3 s per cell) ==");
    let secs = Duration::from_secs(3);
    let run = |threads: usize, f: &(dyn Fn(usize) -> Box<dyn FnMut() + Send> + Sync)| -> f64 {
        let stop = std::sync::atomic::AtomicBool::new(false);
        let total = std::sync::atomic::AtomicU64::new(0);
        let t0 = Instant::now();
        std::thread::scope(|s| {
            for i in 0..threads {
                let mut op = f(i);
                let (stop, total) = (&stop, &total);
                s.spawn(move || {
                    let mut n = 0u64;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        op();
                        n += 1;
                    }
                    total.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                });
            }
            std::thread::sleep(secs);
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        });
        total.into_inner() as f64 / t0.elapsed().as_secs_f64()
    };
    let data = [7u8; 256];
    let (e32, e1) = (
        engine(t, 32, IdentityConfig::default()),
        engine(t, 1, IdentityConfig::default()),
    );
    let (batched, single) = (e32.keys(), e1.keys());
    for threads in [1usize, 2, 4] {
        let direct_ops = run(threads, &|_| {
            let d = direct(t);
            Box::new(move || {
                d.s.sign(&Mechanism::Sha256Hmac, d.hmac, &data).unwrap();
            })
        });
        let b = batched.clone();
        let core32 = run(threads, &move |_| {
            let k = b.clone();
            Box::new(move || {
                k.hmac_sign(&data).unwrap();
            })
        });
        let sgl = single.clone();
        let core1 = run(threads, &move |_| {
            let k = sgl.clone();
            Box::new(move || {
                k.hmac_sign(&data).unwrap();
            })
        });
        println!(
            "{threads} caller(s): direct {direct_ops:>9.0}   hsm core batch 32 {core32:>9.0} ({:.2}x direct)   batch 1 {core1:>9.0} ({:.2}x batch 32)",
            core32 / direct_ops,
            core1 / core32
        );
    }
    let m = batched.metrics().unwrap();
    println!(
        "batch 32 engine: {} batches, {:.1} jobs per batch on average, largest {}",
        m.batches, m.batch_size_avg, m.batch_size_max
    );
}

fn engine(t: &Token, batch: usize, identity: IdentityConfig) -> Engine {
    let mut cfg = softhsm::engine_config(hsm_config(t, batch), identity, 1);
    cfg.engine.wait_spin_us = std::env::var("WAIT_SPIN_US")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    Engine::builder().config(cfg).build().unwrap()
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn token_check(t: &Token) {
    println!("== Check with an HMAC token tagged by the token, µs (p50 / p99) ==");
    let e = engine(
        t,
        32,
        IdentityConfig {
            require_token: true,
            keystore_hmac_key_id: 5,
            max_clock_skew_ms: 600_000,
            replay_window_ms: 1_200_000,
            ..Default::default()
        },
    );
    let keys = e.keys();
    let h = e.handle();
    let n = 2000;
    let now = now_ms();
    let toks: Vec<String> = (0..n + n / 10 + 1)
        .map(|i| {
            let c = Claims {
                alg: Alg::HmacSha256,
                key_id: 5,
                clearance: Classification::Secret,
                max_level: SecurityLevel::Restricted,
                issued_at_ms: now,
                expires_at_ms: now + 3_600_000,
                nonce: i as u64,
                tenant: "acme",
                agent: "ops-bot",
                role: "operator",
                holder: None,
            };
            let signed = encode_claims(&c).unwrap();
            assemble(&signed, &keys.hmac_sign(&signed).unwrap())
        })
        .collect();
    let mut nonce = 0u64;
    let mut req = |tok: &str| {
        nonce += 1;
        // ops-bot: no rate limit in examples/policy.toml
        let r = Request::new(Operation::Check)
            .tenant("acme")
            .agent("ops-bot")
            .tool("search")
            .classification(Classification::Cui)
            .credential(tok.as_bytes())
            .nonce(nonce)
            .timestamp_ms(now_ms());
        let v = h.validate(&r);
        assert!(v.is_allowed(), "{v:?}");
    };
    let mut i = 1;
    let uncached = time(n, || {
        req(&toks[i]);
        i += 1;
    });
    let cached = time(n, || req(&toks[0]));
    println!(
        "cached (repeat presentation) {:>7.1} / {:>7.1}   uncached (via the HSM core) {:>7.1} / {:>7.1}   ({:.0}x)",
        cached.0,
        cached.1,
        uncached.0,
        uncached.1,
        uncached.0 / cached.0
    );
    let m = e.metrics();
    let hm = m.hsm.unwrap();
    println!(
        "of which the HSM operation: p50 {:.1} µs over {} operations; engine latency p50 {:.1} µs",
        hm.latency.p50_ns as f64 / 1000.0,
        hm.operations,
        m.latency.p50_ns as f64 / 1000.0
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let t = token();
    warden::hsm::init(&hsm_config(&t, 32)).unwrap();
    latency(&t);
    throughput(&t);
    token_check(&t);
}
