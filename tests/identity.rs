//! Identity end to end: key files made by `warden token keygen`, tokens minted by
//! `warden token issue`, verified by an engine configured with `[identity]`.

use std::process::Command;
use warden::config::{EngineConfig, IdentityConfig, KeyRef, PolicyConfig};
use warden::identity::token::TokenIssue;
use warden::{Classification, Config, DenyReason, Engine, Operation, Request};

fn warden(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

struct Setup {
    _dir: tempfile::TempDir,
    engine: Engine,
    ed_key: String,
    hmac_key: String,
}

fn setup(cores: usize) -> Setup {
    setup_with(cores, true)
}

/// `setup`, with tokens required or only verified when presented.
fn setup_with(cores: usize, require_token: bool) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap().to_string();
    warden(&["token", "keygen", "--out", &d]);
    let meta = std::fs::metadata(format!("{d}/ed25519.key")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        meta.permissions().mode() & 0o777,
        0o600,
        "the secret seed is private"
    );
    let hmac_key = format!("{d}/hmac.key");
    std::fs::write(
        &hmac_key,
        "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n",
    )
    .unwrap();
    // a secret key file only its owner may read (warden refuses one others may)
    std::fs::set_permissions(
        &hmac_key,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let cfg = Config {
        engine: EngineConfig {
            cores,
            spin_before_park_us: 20,
            pin: cores <= warden::config::available_cpus().len(),
            ..Default::default()
        },
        policy: PolicyConfig {
            file: "examples/policy.toml".into(),
        },
        // these tests replay and revoke on purpose, again and again: behaviour anomalies
        // (tested in tests/threat.rs) would quarantine the agent midway, and the denials would
        // lower its trust score below examples/policy.toml's min_trust (tests/trust.rs)
        anomaly: warden::config::AnomalyConfig {
            enabled: false,
            ..Default::default()
        },
        trust: warden::trust::TrustConfig {
            enabled: false,
            ..Default::default()
        },
        identity: IdentityConfig {
            require_token,
            ed25519_public_keys: vec![KeyRef {
                id: 1,
                file: format!("{d}/ed25519.pub"),
                env: String::new(),
            }],
            hmac_keys: vec![KeyRef {
                id: 2,
                file: hmac_key.clone(),
                env: String::new(),
            }],
            ..Default::default()
        },
        ..Default::default()
    };
    let engine = Engine::builder().config(cfg).build().unwrap();
    Setup {
        engine,
        ed_key: format!("{d}/ed25519.key"),
        hmac_key,
        _dir: dir,
    }
}

fn issue(s: &Setup, agent: &str, extra: &[&str]) -> String {
    let mut args = vec!["token", "issue", "--tenant", "acme", "--agent", agent];
    if !extra.contains(&"--clearance") {
        args.extend_from_slice(&["--clearance", "secret"]);
    }
    args.extend_from_slice(extra);
    if !extra.contains(&"--hmac-key") {
        args.extend_from_slice(&["--ed25519-key", &s.ed_key]);
    }
    warden(&args)
}

fn req<'a>(tok: &'a str, nonce: u64) -> Request<'a> {
    Request::new(Operation::Check)
        .tenant("acme")
        .agent("planner-1")
        .tool("fs.read")
        .resource("/data/acme/q3.csv")
        .classification(Classification::Cui)
        .credential(tok.as_bytes())
        .nonce(nonce)
        .timestamp_ms(now_ms())
}

#[test]
fn tokens_from_the_cli_verify_and_every_failure_is_named() {
    let s = setup(1);
    let h = s.engine.handle();
    let ed = issue(&s, "planner-1", &[]);
    assert!(ed.starts_with("wdn1."), "{ed}");
    let v = h.validate(&req(&ed, 1));
    assert!(v.is_allowed(), "{v:?}");
    let hm = issue(
        &s,
        "planner-1",
        &["--hmac-key", &s.hmac_key, "--key-id", "2"],
    );
    assert!(h.validate(&req(&hm, 2)).is_allowed());
    let id = |issue| DenyReason::Identity(issue);
    // no token
    let v = h.validate(
        &Request::new(Operation::Check)
            .tenant("acme")
            .agent("planner-1")
            .nonce(3)
            .timestamp_ms(now_ms()),
    );
    assert_eq!(v.reason, id(TokenIssue::Missing));
    // replayed nonce, even though the verdict for these bytes is cached
    assert_eq!(h.validate(&req(&ed, 1)).reason, id(TokenIssue::Replayed));
    // tampered token: one character of the signature changed
    let mut bad = ed.clone().into_bytes();
    let last = bad.len() - 3;
    bad[last] = if bad[last] == b'A' { b'B' } else { b'A' };
    let bad = String::from_utf8(bad).unwrap();
    assert_eq!(
        h.validate(&req(&bad, 4)).reason,
        id(TokenIssue::BadSignature)
    );
    // A one-second token is accepted within its life (and the 30 s clock skew after it:
    // expiry is enforced with the skew, tested past the skew in identity::tests).
    let short = issue(&s, "planner-1", &["--ttl", "1"]);
    assert!(h.validate(&req(&short, 5)).is_allowed());
    // someone else's token
    let other = issue(&s, "ops-bot", &[]);
    assert_eq!(
        h.validate(&req(&other, 6)).reason,
        id(TokenIssue::WrongSubject)
    );
    // no nonce: a token needs one, or a captured request replays
    let v = h.validate(&req(&ed, 0));
    assert_eq!(v.reason, id(TokenIssue::MissingNonce));
    // stale request
    let mut stale = req(&ed, 7);
    stale.timestamp_ms -= 120_000;
    assert_eq!(h.validate(&stale).reason, id(TokenIssue::StaleRequest));
    // a token with lower clearance than the request's classification
    let low = issue(&s, "planner-1", &["--clearance", "unclassified"]);
    assert_eq!(
        h.validate(&req(&low, 8)).reason,
        id(TokenIssue::Insufficient)
    );
    // a token whose level is below the tool's
    let safe = issue(&s, "planner-1", &["--max-level", "safe"]);
    assert_eq!(
        h.validate(&req(&safe, 9)).reason,
        id(TokenIssue::Insufficient)
    );
}

/// The hostile review's finding: a token's clearance was compared with the classification the
/// request claimed, not with the effective one after the tool's was applied.
#[test]
fn clearance_covers_the_effective_classification_not_the_claimed_one() {
    let s = setup(1);
    let h = s.engine.handle();
    let low = issue(&s, "planner-1", &["--clearance", "unclassified"]);
    // fs.read is a cui tool: claiming nothing (unclassified) still handles cui data
    let r = Request::new(Operation::Check)
        .tenant("acme")
        .agent("planner-1")
        .tool("fs.read")
        .resource("/data/acme/x")
        .credential(low.as_bytes())
        .nonce(1)
        .timestamp_ms(now_ms());
    assert_eq!(
        h.validate(&r).reason,
        DenyReason::Identity(TokenIssue::Insufficient)
    );
    // cleared for cui: allowed, at cui
    let cui = issue(&s, "planner-1", &["--clearance", "cui"]);
    let v = h.validate(&r.credential(cui.as_bytes()).nonce(2));
    assert!(v.is_allowed(), "{v:?}");
    assert_eq!(v.classification, Classification::Cui);
}

/// With a policy, every operation needs a known tenant and agent (and a token where tokens
/// are required): `crypto_sign` and `scan_content` were answered for an unknown tenant.
#[test]
fn every_operation_needs_identity_under_a_policy() {
    use warden::types::CryptoOp;
    let s = setup(1);
    let h = s.engine.handle();
    let tok = issue(&s, "planner-1", &[]);
    for (n, op) in [
        Operation::Crypto(CryptoOp::Sign),
        Operation::Crypto(CryptoOp::Encrypt),
        Operation::ScanContent,
        Operation::ValidateAgent,
        Operation::Audit,
    ]
    .into_iter()
    .enumerate()
    {
        let n = n as u64 * 10;
        let base = Request::new(op)
            .content(b"hello")
            .nonce(100 + n)
            .timestamp_ms(now_ms());
        let unknown = base.tenant("nobody").agent("planner-1");
        assert_eq!(
            h.validate(&unknown).reason,
            DenyReason::Identity(TokenIssue::Missing),
            "{op:?}"
        );
        let unknown = unknown.credential(tok.as_bytes()).nonce(101 + n);
        assert_eq!(
            h.validate(&unknown).reason,
            DenyReason::Identity(TokenIssue::WrongSubject),
            "{op:?}"
        );
        let mine = base.tenant("acme").agent("planner-1");
        assert_eq!(
            h.validate(&mine).reason,
            DenyReason::Identity(TokenIssue::Missing),
            "{op:?}"
        );
    }
}

#[test]
fn revocation_takes_effect_on_the_next_request_cached_allows_included() {
    let s = setup(1);
    let h = s.engine.handle();
    let tok = issue(&s, "planner-1", &[]);
    assert!(h.validate(&req(&tok, 1)).is_allowed());
    assert!(
        h.validate(&req(&tok, 2)).cache_hit,
        "the post-cache verdict is cached"
    );
    assert!(s.engine.revoke_agent("acme", "planner-1"));
    assert_eq!(
        h.validate(&req(&tok, 3)).reason,
        DenyReason::Identity(TokenIssue::Revoked)
    );
    assert!(s.engine.release_agent("acme", "planner-1"));
    assert!(h.validate(&req(&tok, 4)).is_allowed());
    assert!(s.engine.revoke_token(&tok));
    assert_eq!(
        h.validate(&req(&tok, 5)).reason,
        DenyReason::Identity(TokenIssue::Revoked)
    );
}

#[test]
fn a_replayed_nonce_is_denied_whichever_core_sees_it() {
    let s = setup(2);
    let tok = issue(&s, "planner-1", &[]);
    for round in 0..50u64 {
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let (h, tok) = (s.engine.handle(), tok.clone());
                std::thread::spawn(move || h.validate(&req(&tok, 1000 + round)).is_allowed())
            })
            .collect();
        let allowed = hs
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|&a| a)
            .count();
        assert_eq!(allowed, 1, "round {round}: exactly one use of the nonce");
    }
}

/// The fourth review: with keys configured but tokens not required, a token a request carries
/// anyway was ignored (expired, for another agent, garbage, or capped below the request: all
/// allowed). A token presented is verified and held to its limits, required or not; without
/// keys to verify it, it is refused.
#[test]
fn a_token_presented_is_verified_even_when_not_required() {
    let s = setup_with(1, false);
    let h = s.engine.handle();
    let plain = Request::new(Operation::Check)
        .tenant("acme")
        .agent("planner-1")
        .tool("fs.read")
        .resource("/data/acme/q3.csv")
        .classification(Classification::Cui);
    assert!(h.validate(&plain).is_allowed(), "no token: not required");
    let good = issue(&s, "planner-1", &[]);
    assert!(h.validate(&req(&good, 1)).is_allowed());
    let capped = issue(&s, "planner-1", &["--clearance", "unclassified"]);
    let other = issue(&s, "ops-bot", &[]);
    for (tok, want, what) in [
        (
            capped.as_str(),
            TokenIssue::Insufficient,
            "capped below cui",
        ),
        (other.as_str(), TokenIssue::WrongSubject, "another agent's"),
        ("wdn1.garbage.garbage", TokenIssue::Malformed, "garbage"),
    ] {
        let v = h.validate(&req(tok, 2 + want as u64));
        assert_eq!(v.reason, DenyReason::Identity(want), "{what}");
    }
    drop(h);
    // no keys: a token cannot be verified, so it is refused, not ignored
    let cfg = Config {
        policy: PolicyConfig {
            file: "examples/policy.toml".into(),
        },
        ..Default::default()
    };
    let e = Engine::builder().config(cfg).build().unwrap();
    let v = e.handle().validate(&req(&good, 9));
    assert_eq!(v.reason, DenyReason::Identity(TokenIssue::UnknownKey));
    assert!(e.handle().validate(&plain).is_allowed());
    // a custom operation the policy knows the agent for, but no validator of its own: a
    // mistyped id fails closed
    let v = e.handle().validate(
        &Request::new(Operation::Custom(65535))
            .tenant("acme")
            .agent("planner-1"),
    );
    assert_eq!(v.reason, DenyReason::NoStage);
    drop(e);
    // no policy at all: nothing verifies a token, so one presented is refused, not ignored
    let e = Engine::builder().config(Config::default()).build().unwrap();
    let v = e.handle().validate(&req(&good, 10));
    assert_eq!(v.reason, DenyReason::Identity(TokenIssue::UnknownKey));
    assert!(e.handle().validate(&plain).is_allowed());
}

#[test]
fn require_token_without_keys_or_policy_is_refused_at_build() {
    let cfg = Config {
        identity: IdentityConfig {
            require_token: true,
            ..Default::default()
        },
        ..Default::default()
    };
    let e = Engine::builder()
        .config(cfg)
        .build()
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("identity.require_token"), "{e}");
}

/// The rule of clearance, as a model checked exhaustively through the engine: for every token
/// clearance and token level, every request classification and every tool of two agents of
/// `examples/policy.toml`, a `check` is allowed exactly when the model allows it, and an allowed
/// verdict's classification is the effective one (the higher of the request's and the tool's),
/// never above the token's clearance nor the agent's.
#[test]
fn clearance_model_holds_for_every_token_request_and_tool() {
    const CLASSES: [&str; 5] = [
        "unclassified",
        "cui",
        "confidential",
        "secret",
        "top_secret",
    ];
    let s = setup(1);
    let h = s.engine.handle();
    // (tool, its classification, its level, whether it writes, a resource it grants)
    type Tool<'a> = (&'a str, u8, u8, bool, &'a str);
    // (agent, its clearance, its level, its tools)
    let agents: [(&str, u8, u8, &[Tool]); 2] = [
        (
            "planner-1",
            3,
            1,
            &[
                ("fs.read", 1, 1, false, "/data/acme/q3.csv"),
                ("http.get", 0, 1, false, "https://api.acme.example/v1/x"),
                ("search", 0, 0, false, ""),
            ],
        ),
        (
            "ops-bot",
            3,
            2,
            &[
                ("fs.read", 1, 1, false, "/data/acme/q3.csv"),
                ("fs.write", 3, 1, true, "/data/acme/out/r.csv"),
                ("deploy", 2, 2, true, "https://deploy.acme.example/v2"),
                ("search", 0, 0, false, ""),
            ],
        ),
    ];
    let mut nonce = 1_000;
    let mut allowed = 0;
    for (agent, a_clear, a_level, tools) in agents {
        for (tok_clear, tok_name) in CLASSES.iter().enumerate() {
            for (tok_level, level_name) in ["safe", "restricted", "privileged"].iter().enumerate() {
                // planner-1's burst is 200 requests: its safe-level tokens are left out
                // (150 requests), so no rate limit stands between the model and the verdicts
                if agent == "planner-1" && tok_level == 0 {
                    continue;
                }
                let tok = issue(
                    &s,
                    agent,
                    &["--clearance", tok_name, "--max-level", level_name],
                );
                for &(tool, t_class, t_level, writes, resource) in tools {
                    for (c, _) in CLASSES.iter().enumerate() {
                        nonce += 1;
                        let r = Request::new(Operation::Check)
                            .tenant("acme")
                            .agent(agent)
                            .tool(tool)
                            .resource(resource)
                            .classification(Classification::from_code(c as u8).unwrap())
                            .credential(tok.as_bytes())
                            .nonce(nonce)
                            .timestamp_ms(now_ms());
                        let v = h.validate(&r);
                        let effective = (c as u8).max(t_class);
                        let model = t_level <= a_level
                            && t_level <= tok_level as u8
                            && effective <= a_clear
                            && effective <= tok_clear as u8
                            && (!writes || t_class >= c as u8);
                        let case = format!(
                            "{agent} token {tok_name}/{level_name}, {tool} at {}: {v:?}",
                            CLASSES[c]
                        );
                        assert_eq!(v.is_allowed(), model, "{case}");
                        if v.is_allowed() {
                            allowed += 1;
                            assert_eq!(v.classification as u8, effective, "{case}");
                        }
                    }
                }
            }
        }
    }
    assert!(allowed > 20, "the model allows something: {allowed}");
}
