//! The HSM core against a real SoftHSM2 token: every operation's round trip, token tags made by
//! the token and verified through the HSM core by the identity stage, concurrent requests from
//! four threads, and each fault produced for real (missing module, wrong PIN, sessions closed
//! underneath, token directory removed, slow operations) and recovered from.
//!
//! The tokens come from `tools/softhsm.sh setup` (tools/test.sh runs it and exports the
//! variables); run alone, this file runs the script itself. Each fault test has a token of its
//! own, since PKCS#11 login state is per token and process.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use warden::config::{AnomalyConfig, EngineConfig, HsmConfig, IdentityConfig};
use warden::hsm::{BreakerState, HsmError};
use warden::identity::token::{assemble, encode_claims, Alg, Claims, TokenIssue};
use warden::{
    Classification, Config, CryptoOp, DenyReason, Engine, Operation, Request, SecurityLevel,
};

#[path = "common/softhsm.rs"]
mod softhsm;

struct Tokens {
    module: String,
    pin_file: String,
    token_dir: PathBuf,
}

/// The tokens, made by `tools/softhsm.sh`; their keys are made once per process by `keys()`.
fn tokens() -> &'static Tokens {
    static T: OnceLock<Tokens> = OnceLock::new();
    T.get_or_init(|| {
        let (module, pin_file, token_dir) = softhsm::setup();
        Tokens {
            module,
            pin_file,
            token_dir,
        }
    })
}

/// Every token's keys, once, before any test runs in parallel (two `hsm init`s racing on one
/// token could both create a key). The child process of the removed-token test skips this: it
/// must not write to the other tokens' files while the parent's tests read them (SoftHSM2's file
/// store is shared between processes, and a token file read while another process rewrites it
/// cannot be read for that moment).
fn keys() -> &'static Tokens {
    static K: OnceLock<()> = OnceLock::new();
    let t = tokens();
    K.get_or_init(|| {
        for label in [
            "warden-test",
            "warden-fault-1",
            "warden-fault-2",
            "warden-fault-3",
            "warden-fault-4",
        ] {
            let cfg = HsmConfig {
                module: t.module.clone(),
                token_label: label.into(),
                pin_env: String::new(),
                pin_file: t.pin_file.clone(),
                ..HsmConfig::default()
            };
            warden::hsm::init(&cfg).unwrap();
        }
    });
    t
}

fn hsm_config(label: &str) -> HsmConfig {
    let t = if std::env::var_os(CHILD).is_some() {
        tokens()
    } else {
        keys()
    };
    HsmConfig {
        module: t.module.clone(),
        token_label: label.into(),
        pin_env: String::new(),
        pin_file: t.pin_file.clone(),
        retry_ms: 20,
        max_retry_ms: 100,
        pin: false,
        ..HsmConfig::default()
    }
}

/// Set in the removed-token test's child process, which uses only its own token's keys.
const CHILD: &str = "WARDEN_TEST_HSM_CHILD";

/// The token's keys exist (created once, in `keys()`).
fn init(label: &str) {
    let created = warden::hsm::init(&hsm_config(label)).unwrap();
    assert!(
        created.iter().all(|k| !k.2),
        "keys of {label} made in keys()"
    );
}

fn engine(hsm: HsmConfig, identity: IdentityConfig, cores: usize) -> Engine {
    let mut cfg = softhsm::engine_config(hsm, identity, cores);
    cfg.engine.spin_before_park_us = 20;
    Engine::builder().config(cfg).build().unwrap()
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn crypto(op: CryptoOp, class: Classification) -> Request<'static> {
    Request::new(Operation::Crypto(op))
        .tenant("acme")
        .agent("planner-1")
        .classification(class)
}

fn check() -> Request<'static> {
    Request::new(Operation::Check)
        .tenant("acme")
        .agent("planner-1")
        .tool("fs.read")
        .resource("/data/acme/q3.csv")
}

#[test]
fn every_operation_round_trips_on_the_token_and_tampering_is_caught() {
    init("warden-test");
    let e = engine(hsm_config("warden-test"), IdentityConfig::default(), 1);
    let keys = e.keys();
    assert_eq!(keys.backend(), "pkcs11");
    assert_eq!(keys.breaker(), BreakerState::Closed);
    // HMAC
    let tag = keys.hmac_sign(b"claims").unwrap();
    keys.hmac_verify(b"claims", &tag).unwrap();
    assert_eq!(
        keys.hmac_verify(b"claimz", &tag),
        Err(HsmError::Verification)
    );
    let mut bad = tag;
    bad[0] ^= 1;
    assert_eq!(
        keys.hmac_verify(b"claims", &bad),
        Err(HsmError::Verification)
    );
    assert_eq!(
        keys.hmac_verify(b"claims", &tag[..31]),
        Err(HsmError::Verification)
    );
    // AES-256-GCM: Secret data is what the HSM is for
    let sealed = keys
        .encrypt(Classification::Secret, b"launch codes", b"tenant=acme")
        .unwrap();
    assert_eq!(sealed.len(), 12 + 12 + 16);
    assert_ne!(&sealed[12..24], b"launch codes");
    assert_eq!(
        keys.decrypt(Classification::Secret, &sealed, b"tenant=acme")
            .unwrap(),
        b"launch codes"
    );
    let again = keys
        .encrypt(Classification::Secret, b"launch codes", b"tenant=acme")
        .unwrap();
    assert_ne!(sealed, again, "a fresh nonce every time");
    for i in [0, 12, sealed.len() - 1] {
        let mut t = sealed.clone();
        t[i] ^= 0x80;
        assert_eq!(
            keys.decrypt(Classification::Secret, &t, b"tenant=acme"),
            Err(HsmError::Verification),
            "byte {i} modified"
        );
    }
    assert_eq!(
        keys.decrypt(Classification::Secret, &sealed, b"tenant=evil"),
        Err(HsmError::Verification)
    );
    assert!(matches!(
        keys.decrypt(Classification::Secret, &sealed[..20], b""),
        Err(HsmError::Malformed(_))
    ));
    // Signature key: Ed25519 on SoftHSM2, verified with its public key
    let pk = keys.public_key().unwrap();
    assert_eq!(pk.algorithm(), "ed25519");
    let sig = keys.sign(b"checkpoint head").unwrap();
    assert!(warden::hsm::backend::verify_signature(
        &pk,
        b"checkpoint head",
        &sig
    ));
    assert!(!warden::hsm::backend::verify_signature(
        &pk,
        b"checkpoint heaD",
        &sig
    ));
    // crypto requests at Secret are allowed while the HSM serves
    let h = e.handle();
    let v = h.validate(&crypto(CryptoOp::Encrypt, Classification::Secret));
    assert!(v.is_allowed(), "{v:?}");
    let m = e.metrics().hsm.expect("HSM metrics");
    assert!(m.operations >= 10 && m.breaker == "closed", "{m:?}");
    assert!(e
        .metrics()
        .prometheus()
        .contains("warden_hsm_operations_total"));
}

fn mint(keys: &warden::hsm::Keys, alg: Alg, key_id: u16, agent: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let c = Claims {
        alg,
        key_id,
        clearance: Classification::Secret,
        max_level: SecurityLevel::Restricted,
        issued_at_ms: now - 1000,
        expires_at_ms: now + 600_000,
        nonce: 9,
        tenant: "acme",
        agent,
        role: "analyst",
        holder: None,
    };
    let signed = encode_claims(&c).unwrap();
    let tag = match alg {
        Alg::HmacSha256 => keys.token_hmac_sign(&signed).unwrap().to_vec(),
        Alg::Ed25519 => keys.token_sign(&signed).unwrap(),
    };
    assemble(&signed, &tag)
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[test]
fn token_tags_made_by_the_token_are_verified_through_the_hsm_core_under_concurrency() {
    init("warden-test");
    let identity = IdentityConfig {
        require_token: true,
        keystore_hmac_key_id: 5,
        keystore_signing_key_id: 6,
        ..Default::default()
    };
    let e = engine(hsm_config("warden-test"), identity, 2);
    let keys = e.keys();
    let h = e.handle();
    let tok = mint(&keys, Alg::HmacSha256, 5, "planner-1");
    let ops_before = e.metrics().hsm.unwrap().operations;
    let req = |t: &'static str, n: u64| {
        check()
            .classification(Classification::Cui)
            .credential(t.as_bytes())
            .nonce(n)
            .timestamp_ms(now_ms())
    };
    let tok: &'static str = Box::leak(tok.into_boxed_str());
    let v = h.validate(&req(tok, 1));
    assert!(v.is_allowed(), "{v:?}");
    assert_eq!(
        e.metrics().hsm.unwrap().operations,
        ops_before + 1,
        "the first presentation went to the HSM core"
    );
    let v = h.validate(&req(tok, 2));
    assert!(v.is_allowed(), "{v:?}");
    assert_eq!(
        e.metrics().hsm.unwrap().operations,
        ops_before + 1,
        "the second came from the verified-token cache"
    );
    // a tag the token did not make
    let mut forged = tok.as_bytes().to_vec();
    let last = forged.len() - 10;
    forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
    let forged: &'static str = Box::leak(String::from_utf8(forged).unwrap().into_boxed_str());
    assert_eq!(
        h.validate(&req(forged, 3)).reason,
        DenyReason::Identity(TokenIssue::BadSignature)
    );
    // Ed25519 tokens signed by the token's signature key verify on the cores
    let ed: &'static str = Box::leak(mint(&keys, Alg::Ed25519, 6, "planner-1").into_boxed_str());
    assert!(h.validate(&req(ed, 4)).is_allowed());
    // Many first presentations at once, from four threads (one agent, so one owner core; the
    // HSM core takes them in batches): every one
    // answered, each correctly.
    let toks: Vec<&'static str> = (0..64)
        .map(|i| {
            let t = mint(&keys, Alg::HmacSha256, 5, "planner-1");
            let mut b = t.into_bytes();
            if i % 4 == 3 {
                // a character inside the tag (all six bits of it count)
                let at = b.len() - 10;
                b[at] = if b[at] == b'A' { b'B' } else { b'A' };
            }
            &*Box::leak(String::from_utf8(b).unwrap().into_boxed_str())
        })
        .collect();
    std::thread::scope(|s| {
        for (w, chunk) in toks.chunks(16).enumerate() {
            let h = h.clone();
            s.spawn(move || {
                for (i, t) in chunk.iter().enumerate() {
                    let n = 1000 + (w * 16 + i) as u64;
                    let v = h.validate(&req(t, n));
                    let tampered = (w * 16 + i) % 4 == 3;
                    if tampered {
                        assert!(!v.is_allowed(), "tampered token {n} allowed");
                    } else {
                        assert!(v.is_allowed(), "token {n}: {v:?}");
                    }
                }
            });
        }
    });
    let m = e.metrics();
    assert_eq!(m.validations, 4 + 64);
    assert!(m.hsm.unwrap().batches > 0);
}

#[test]
fn a_missing_module_opens_the_breaker_and_the_rest_keeps_serving_until_it_appears() {
    init("warden-fault-1");
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("libpkcs11.so");
    let mut cfg = hsm_config("warden-fault-1");
    cfg.module = module.display().to_string();
    let e = engine(cfg, IdentityConfig::default(), 1);
    let keys = e.keys();
    assert_ne!(keys.breaker(), BreakerState::Closed);
    let m = e.metrics().hsm.unwrap();
    assert!(m.last_fault.contains("cannot load"), "{}", m.last_fault);
    let h = e.handle();
    assert_eq!(
        h.validate(&crypto(CryptoOp::Encrypt, Classification::Secret))
            .reason,
        DenyReason::HsmUnavailable
    );
    assert!(matches!(
        keys.hmac_sign(b"x"),
        Err(HsmError::Unavailable(_))
    ));
    assert!(h.validate(&check()).is_allowed(), "the rest keeps serving");
    // The module appears: a probe loads it and the breaker closes.
    std::os::unix::fs::symlink(&tokens().module, &module).unwrap();
    wait_for("the breaker to close", || {
        keys.breaker() == BreakerState::Closed
    });
    assert!(h
        .validate(&crypto(CryptoOp::Encrypt, Classification::Secret))
        .is_allowed());
    let sealed = keys.encrypt(Classification::Secret, b"x", b"").unwrap();
    assert_eq!(
        keys.decrypt(Classification::Secret, &sealed, b"").unwrap(),
        b"x"
    );
}

#[test]
fn a_wrong_pin_keeps_the_breaker_open_until_the_pin_is_right() {
    init("warden-fault-2");
    let dir = tempfile::tempdir().unwrap();
    let pin = dir.path().join("pin");
    std::fs::write(&pin, "000000\n").unwrap();
    let mut cfg = hsm_config("warden-fault-2");
    cfg.pin_file = pin.display().to_string();
    let e = engine(cfg, IdentityConfig::default(), 1);
    let keys = e.keys();
    assert_ne!(keys.breaker(), BreakerState::Closed);
    let m = e.metrics().hsm.unwrap();
    assert!(m.last_fault.contains("wrong PIN"), "{}", m.last_fault);
    assert!(!m.last_fault.contains("000000"), "the PIN is never shown");
    assert_eq!(
        e.handle()
            .validate(&crypto(CryptoOp::Decrypt, Classification::TopSecret))
            .reason,
        DenyReason::HsmUnavailable
    );
    std::fs::copy(&tokens().pin_file, &pin).unwrap();
    wait_for("the breaker to close", || {
        keys.breaker() == BreakerState::Closed
    });
    keys.hmac_sign(b"x").unwrap();
}

/// Closes every session of `slot` through the module itself, as another application or a
/// token reset would.
fn close_all_sessions(module: &str, slot: u64) {
    let path = std::ffi::CString::new(module).unwrap();
    // SAFETY: dlopen of the module warden already loaded (RTLD_NOLOAD: no new load) and a call
    // of its exported C_CloseAllSessions with a slot id, as PKCS#11 defines it.
    unsafe {
        let h = libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_NOLOAD);
        assert!(!h.is_null(), "module not loaded");
        let f = libc::dlsym(h, c"C_CloseAllSessions".as_ptr());
        assert!(!f.is_null());
        let f: extern "C" fn(libc::c_ulong) -> libc::c_ulong = std::mem::transmute(f);
        assert_eq!(f(slot as libc::c_ulong), 0, "C_CloseAllSessions");
    }
}

#[test]
fn sessions_closed_underneath_are_a_fault_and_a_probe_reopens_them() {
    init("warden-fault-3");
    let e = engine(hsm_config("warden-fault-3"), IdentityConfig::default(), 1);
    let keys = e.keys();
    keys.hmac_sign(b"x").unwrap();
    let slot = {
        let ctx = warden::hsm::pkcs11::module(&tokens().module).unwrap();
        warden::hsm::pkcs11::find_slot(&ctx, "warden-fault-3")
            .ok()
            .unwrap()
            .id()
    };
    close_all_sessions(&tokens().module, slot);
    // The next operation finds its session gone: a fault, the breaker opens.
    assert!(matches!(
        keys.hmac_sign(b"x"),
        Err(HsmError::Unavailable(_))
    ));
    assert!(e.metrics().hsm.unwrap().faults >= 1);
    wait_for("the breaker to close", || {
        keys.breaker() == BreakerState::Closed
    });
    let t = keys.hmac_sign(b"y").unwrap();
    keys.hmac_verify(b"y", &t).unwrap();
}

/// Recovering from a removed token re-initializes the module, which closes every session of the
/// process on it: the test runs in a process of its own (this binary again, one test).
#[test]
fn a_removed_token_directory_is_a_fault_until_it_is_back() {
    keys();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .env(CHILD, "1")
        .args(["--ignored", "--exact", "removed_token_child", "--nocapture"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 passed"));
}

#[test]
#[ignore = "run by a_removed_token_directory_is_a_fault_until_it_is_back in its own process"]
fn removed_token_child() {
    init("warden-fault-4");
    let e = engine(hsm_config("warden-fault-4"), IdentityConfig::default(), 1);
    let keys = e.keys();
    keys.hmac_sign(b"x").unwrap();
    // Find the token's directory by its label in the token files.
    let t = tokens();
    let token_dir = std::fs::read_dir(&t.token_dir)
        .unwrap()
        .map(|d| d.unwrap().path())
        .find(|p| {
            std::fs::read(p.join("token.object"))
                .map(|b| b.windows(14).any(|w| w == b"warden-fault-4"))
                .unwrap_or(false)
        })
        .expect("token directory of warden-fault-4");
    let aside = t.token_dir.parent().unwrap().join("fault-4-aside");
    std::fs::rename(&token_dir, &aside).unwrap();
    wait_for("the fault to be seen", || {
        keys.hmac_sign(b"x").is_err() && keys.breaker() != BreakerState::Closed
    });
    assert_eq!(
        e.handle()
            .validate(&crypto(CryptoOp::Sign, Classification::Secret))
            .reason,
        DenyReason::HsmUnavailable
    );
    std::fs::rename(&aside, &token_dir).unwrap();
    wait_for("the breaker to close", || {
        keys.breaker() == BreakerState::Closed
    });
    keys.hmac_sign(b"x").unwrap();
}

#[test]
fn an_operation_slower_than_the_timeout_opens_the_breaker() {
    init("warden-test");
    let mut cfg = hsm_config("warden-test");
    cfg.timeout_us = 1;
    cfg.retry_ms = 60_000;
    cfg.max_retry_ms = 60_000;
    let e = engine(cfg, IdentityConfig::default(), 1);
    let keys = e.keys();
    // The first operation takes more than 1 µs on any token.
    let _ = keys.hmac_sign(b"x");
    assert_ne!(keys.breaker(), BreakerState::Closed);
    let m = e.metrics().hsm.unwrap();
    assert!(m.last_fault.contains("hsm.timeout_us"), "{}", m.last_fault);
    assert!(matches!(
        keys.hmac_sign(b"x"),
        Err(HsmError::Unavailable(_))
    ));
    assert!(e.handle().validate(&check()).is_allowed());
}

#[test]
fn the_software_keystore_refuses_what_needs_the_hsm() {
    let e = engine(HsmConfig::default(), IdentityConfig::default(), 1);
    let keys = e.keys();
    assert_eq!(keys.backend(), "software");
    let h = e.handle();
    assert_eq!(
        h.validate(&crypto(CryptoOp::Encrypt, Classification::Secret))
            .reason,
        DenyReason::HsmRequired
    );
    assert!(h
        .validate(&crypto(CryptoOp::Encrypt, Classification::Confidential))
        .is_allowed());
    assert_eq!(
        keys.encrypt(Classification::TopSecret, b"x", b""),
        Err(HsmError::HsmRequired(Classification::TopSecret))
    );
    let sealed = keys.encrypt(Classification::Cui, b"x", b"").unwrap();
    assert_eq!(
        keys.decrypt(Classification::Cui, &sealed, b"").unwrap(),
        b"x"
    );
}

fn cli(args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn hsm_init_and_status_from_the_cli() {
    let t = tokens();
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, label: &str, pin: &str| {
        let p = dir.path().join(name);
        std::fs::write(
            &p,
            format!(
                "[hsm]\nmodule = \"{}\"\ntoken_label = \"{label}\"\npin_env = \"\"\npin_file = \"{pin}\"\n",
                t.module
            ),
        )
        .unwrap();
        p.display().to_string()
    };
    let good = write("good.toml", "warden-test", &t.pin_file);
    let (rc, out) = cli(&["-c", &good, "hsm", "init"]);
    assert_eq!(rc, 0, "{out}");
    let (rc, again) = cli(&["-c", &good, "hsm", "init"]);
    assert_eq!(rc, 0, "{again}");
    assert_eq!(again.matches("present").count(), 3, "idempotent: {again}");
    let (rc, out) = cli(&["-c", &good, "hsm", "status"]);
    assert_eq!(rc, 0, "{out}");
    assert!(
        out.contains("usable") && out.contains("HMAC sign + verify"),
        "{out}"
    );
    let wrong = write("wrong.toml", "warden-test-nope", &t.pin_file);
    let (rc, out) = cli(&["-c", &wrong, "hsm", "status"]);
    assert_eq!(rc, 1, "{out}");
    assert!(
        out.contains("no token labelled `warden-test-nope`"),
        "{out}"
    );
    let missing = write("missing.toml", "warden-test", &t.pin_file).replace("good", "missing");
    std::fs::write(
        &missing,
        std::fs::read_to_string(&missing)
            .unwrap()
            .replace(&t.module, "/nonexistent/libpkcs11.so"),
    )
    .unwrap();
    let (rc, out) = cli(&["-c", &missing, "hsm", "status"]);
    assert_eq!(rc, 1, "{out}");
    assert!(out.contains("cannot load PKCS#11 module"), "{out}");
    // a token minted by the token's HMAC key from the CLI
    let (rc, tok) = cli(&[
        "-c",
        &good,
        "token",
        "issue",
        "--tenant",
        "acme",
        "--agent",
        "a1",
        "--keystore",
        "hmac",
    ]);
    assert_eq!(rc, 0, "{tok}");
    assert!(tok.starts_with("wdn1."), "{tok}");
}

#[test]
fn audit_checkpoints_are_signed_by_the_token_and_verify() {
    init("warden-test");
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config {
        engine: EngineConfig {
            cores: 1,
            pin: false,
            ..Default::default()
        },
        anomaly: AnomalyConfig {
            enabled: false,
            ..Default::default()
        },
        audit: warden::config::AuditConfig {
            dir: dir.path().display().to_string(),
            every_request: true,
            checkpoint_records: 10,
            signing_key: "keystore".into(),
            ..Default::default()
        },
        hsm: hsm_config("warden-test"),
        ..Default::default()
    };
    let e = Engine::builder().config(cfg.clone()).build().unwrap();
    let h = e.handle();
    for i in 0..50u64 {
        let v = h.validate(&check().nonce(i));
        assert!(v.is_allowed(), "{v:?}");
    }
    let pk = match e.keys().public_key().unwrap() {
        warden::hsm::PublicKey::Ed25519(b) => b,
        other => panic!("{other:?}"),
    };
    drop(e);
    let written = warden::audit::load_public_key(&dir.path().join("signing.pub")).unwrap();
    assert_eq!(written.to_bytes(), pk, "signing.pub is the token's key");
    let sum = warden::audit::verify(dir.path(), &written, |_, _| {}).unwrap();
    assert!(sum.checkpoints >= 5, "{sum:?}");
    // A log whose checkpoints another key signed is refused with the keystore's key.
    let other = tempfile::tempdir().unwrap();
    let mut c2 = cfg;
    c2.audit.dir = other.path().display().to_string();
    c2.audit.signing_key = String::new();
    drop(Engine::builder().config(c2.clone()).build().unwrap());
    c2.audit.signing_key = "keystore".into();
    let err = Engine::builder()
        .config(c2)
        .build()
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("another key"), "{err}");
}

#[test]
fn the_token_can_be_named_by_slot_id() {
    init("warden-test");
    let ctx = warden::hsm::pkcs11::module(&tokens().module).unwrap();
    let id = warden::hsm::pkcs11::find_slot(&ctx, "warden-test")
        .ok()
        .unwrap()
        .id();
    let mut cfg = hsm_config("");
    cfg.slot_id = id as i64;
    let (keys, fault) = warden::hsm::open(&cfg).unwrap();
    assert_eq!(fault, None);
    keys.hmac_sign(b"x").unwrap();
    keys.shutdown();
    // slot and label both given: they must agree
    cfg.token_label = "warden-fault-1".into();
    let (keys, fault) = warden::hsm::open(&cfg).unwrap();
    let fault = fault.expect("a slot holding another token is a fault");
    assert!(fault.contains("holds token `warden-test`"), "{fault}");
    keys.shutdown();
}
